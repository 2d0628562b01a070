/* domains: see domains.h. */
#include "domains.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "app.h"
#include "engine.h"
#include "liveroute.h"
#include "log.h"
#include "logger.h"
#include "manifest.h"
#include "util.h"
#include "banned.h"

static int strv_has(const struct strv *sv, const char *s)
{
	size_t i;

	for (i = 0; i < sv->n; i++)
		if (!strcmp(sv->v[i], s))
			return 1;
	return 0;
}

int domain_norm(const char *in, char *out)
{
	size_t i, n = strlen(in);
	const char *name = strncmp(in, "*.", 2) ? in : in + 2;

	if (n == 0 || n > DOMAIN_HOST_MAX) {
		error_set("invalid host '%.80s': 1 to %d characters",
			  in, DOMAIN_HOST_MAX);
		return ERR_INVALID;
	}
	/* the manifest's rules for hosts, and two labels at least */
	if (!host_name_valid(in) || !strchr(name, '.')) {
		error_set("invalid host '%.80s': labels of letters, digits and '-' (not first or last), 1-63 characters, at least two labels, no port", in);
		return ERR_INVALID;
	}
	for (i = 0; i <= n; i++)
		out[i] = (char)tolower((unsigned char)in[i]);
	return 0;
}

static char *file_of(const struct app *a, const char *name)
{
	return xasprintf("%s/%s", a->dir, name);
}

void domains_load(struct app *a)
{
	char *path = file_of(a, "domains");
	struct buf b = BUF_INIT;
	char *line, *save = NULL;
	char h[DOMAIN_HOST_MAX + 1];

	strv_release(&a->domains);
	if (read_file(&b, path, 64 * 1024) == 0 && b.len) {
		for (save = b.data, line = str_token(&save, "\n"); line;
		     line = str_token(&save, "\n")) {
			if (domain_norm(line, h) < 0) {
				log_warnx("%s: %s: %s", a->name, path,
					  error_last());
				continue;
			}
			if (!strv_has(&a->domains, h) &&
			    a->domains.n < DOMAINS_MAX)
				strv_push(&a->domains, h);
		}
	}
	free(path);
	buf_release(&b);
	path = file_of(a, "maintenance");
	a->maintenance = access(path, F_OK) == 0;
	free(path);
}

static int domains_save(const struct app *a, const struct strv *hosts)
{
	char *path = file_of(a, "domains");
	struct buf b = BUF_INIT;
	size_t i;
	int ret;

	for (i = 0; i < hosts->n; i++)
		buf_addf(&b, "%s\n", hosts->v[i]);
	if (hosts->n)
		ret = write_file_atomic(path, b.data, b.len, 0644);
	else if ((ret = unlink(path)) < 0 && errno == ENOENT)
		ret = 0;
	else if (ret < 0)
		error_setsys("cannot remove '%s'", path);
	free(path);
	buf_release(&b);
	return ret;
}

/*
 * Make hosts a's domains: the router first (refusing a host another app
 * owns), then the file; if the file cannot be written, the router goes
 * back.  0, or an error answered to c.
 */
static int domains_apply(struct app *a, struct strv *hosts,
			 struct client *c)
{
	struct strv old = STRV_INIT;

	strv_copy(&old, &a->domains);
	strv_release(&a->domains);
	strv_copy(&a->domains, hosts);
	if (liveroute_hosts_changed(a->eng, a) < 0) {
		client_error(c, "%s", error_last());
		goto undo;
	}
	if (domains_save(a, hosts) < 0) {
		client_error(c, "%s", error_last());
		strv_release(&a->domains);
		strv_copy(&a->domains, &old);
		if (liveroute_hosts_changed(a->eng, a) < 0)
			log_warnx("%s: %s", a->name, error_last());
		strv_release(&old);
		return -1;
	}
	strv_release(&old);
	return 0;
undo:
	strv_release(&a->domains);
	a->domains = old;
	return -1;
}

/* 1 if host gets m's static folder (static: {root, hosts}, Keter's
 * static-files beside a webapp) */
static int is_static_host(const struct manifest *m, const char *host)
{
	size_t i;

	for (i = 0; i < m->static_hosts.n; i++)
		if (!strcasecmp(m->static_hosts.v[i], host))
			return 1;
	return 0;
}

void domains_cmd_list(struct app *a, struct client *c)
{
	char *def = xasprintf("%s.%s", a->name, a->eng->cfg->domain);
	size_t i;

	client_data(c, "%-40s %s", def, "default");
	for (i = 0; a->live && i < a->live->m.hosts.n; i++)
		client_data(c, "%-40s %s", a->live->m.hosts.v[i],
			    is_static_host(&a->live->m, a->live->m.hosts.v[i]) ?
			    "app manifest, static folder" : "app manifest");
	for (i = 0; i < a->domains.n; i++)
		client_data(c, "%-40s %s", a->domains.v[i], "domains:add");
	if (a->maintenance)
		client_data(c, "(maintenance is on: every host answers 503)");
	client_ok(c);
	free(def);
}

void domains_cmd_add(struct app *a, int argc, char **argv, struct client *c)
{
	struct strv hosts = STRV_INIT, added = STRV_INIT;
	char h[DOMAIN_HOST_MAX + 1];
	char *def = xasprintf("%s.%s", a->name, a->eng->cfg->domain);
	int i;

	strv_copy(&hosts, &a->domains);
	for (i = 0; i < argc; i++) {
		if (domain_norm(argv[i], h) < 0) {
			client_error(c, "%s", error_last());
			goto out;
		}
		if (!strcmp(h, def) || strv_has(&hosts, h) ||
		    strv_has(&added, h))
			continue;
		strv_push(&hosts, h);
		strv_push(&added, h);
	}
	if (hosts.n > DOMAINS_MAX) {
		client_error(c, "too many hosts for '%s' (at most %d)",
			     a->name, DOMAINS_MAX);
		goto out;
	}
	if (added.n && domains_apply(a, &hosts, c) < 0)
		goto out;
	for (i = 0; i < (int)added.n; i++) {
		char *url = app_host_url(a, added.v[i]);

		logger_linef(a->log, "berth", "domains: added %s",
			     added.v[i]);
		client_data(c, "-----> Added %s: %s", added.v[i], url);
		free(url);
	}
	if (!added.n)
		client_data(c, "-----> Nothing to add: '%s' has %s already",
			    a->name, argc == 1 ? "that host" : "those hosts");
	client_ok(c);
out:
	free(def);
	strv_release(&hosts);
	strv_release(&added);
}

void domains_cmd_remove(struct app *a, int argc, char **argv,
			struct client *c)
{
	struct strv hosts = STRV_INIT;
	char h[DOMAIN_HOST_MAX + 1];
	size_t k;
	int i;

	strv_copy(&hosts, &a->domains);
	for (i = 0; i < argc; i++) {
		if (domain_norm(argv[i], h) < 0) {
			client_error(c, "%s", error_last());
			goto out;
		}
		for (k = 0; k < hosts.n && strcmp(hosts.v[k], h); k++)
			;
		if (k == hosts.n) {
			client_error(c, "'%s' has no host '%s' from domains:add (see domains %s)",
				     a->name, h, a->name);
			goto out;
		}
		free(hosts.v[k]);
		memmove(hosts.v + k, hosts.v + k + 1,
			(hosts.n - k) * sizeof(*hosts.v));
		hosts.n--;
	}
	if (domains_apply(a, &hosts, c) < 0)
		goto out;
	for (i = 0; i < argc; i++)
		logger_linef(a->log, "berth", "domains: removed %s", argv[i]);
	client_data(c, "-----> Removed %d host%s from %s", argc,
		    argc == 1 ? "" : "s", a->name);
	client_ok(c);
out:
	strv_release(&hosts);
}

void domains_cmd_clear(struct app *a, struct client *c)
{
	struct strv none = STRV_INIT;
	size_t n = a->domains.n;

	if (domains_apply(a, &none, c) < 0)
		return;
	client_data(c, "-----> Removed %zu host%s from %s", n,
		    n == 1 ? "" : "s", a->name);
	client_ok(c);
}

/* maintenance:on/off waiting for nginx to have the route. */
struct maintenance_wait {
	struct client *c;
	int on;
};

static void maintenance_routed(struct app *a, const struct router_done *res,
			       void *arg)
{
	struct maintenance_wait *mw = arg;

	if (!res) {
		client_error(mw->c, "app '%s' was removed meanwhile", a->name);
	} else {
		if (!res->ok)
			client_data(mw->c, "       nginx did not take it yet (%s): it gets it with the next change",
				    res->error ? res->error : "no answer");
		client_data(mw->c, mw->on ? "-----> Maintenance on for %s: every request gets a 503 page (maintenance:off ends it)" :
			    "-----> Maintenance off for %s: requests go to the app again",
			    a->name);
		client_ok(mw->c);
	}
	client_unref(mw->c);
	free(mw);
}

void domains_cmd_maintenance(struct app *a, int on, struct client *c)
{
	char *path = file_of(a, "maintenance");
	int was = a->maintenance;
	struct maintenance_wait *mw;

	if (on && !was &&
	    write_file_atomic(path, "on\n", 3, 0644) < 0) {
		client_error(c, "%s", error_last());
		goto out;
	}
	if (!on && was && unlink(path) < 0 && errno != ENOENT) {
		client_error(c, "cannot remove '%s': %s", path,
			     strerror(errno));
		goto out;
	}
	a->maintenance = on;
	if (liveroute_refresh(a->eng, a) < 0) {
		client_error(c, "%s", error_last());
		/* the file follows the table back */
		a->maintenance = was;
		if (was)
			write_file_atomic(path, "on\n", 3, 0644);
		else
			unlink(path);
		goto out;
	}
	if (on != was)
		logger_linef(a->log, "berth", "maintenance %s",
			     on ? "on" : "off");
	/* said once nginx has it: from then on it is true */
	mw = xcalloc(1, sizeof(*mw));
	mw->c = c;
	mw->on = on;
	client_ref(c);
	liveroute_when_applied(a->eng, a, maintenance_routed, mw);
out:
	free(path);
}
