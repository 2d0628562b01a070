/*
 * apprename: "apps:rename OLD NEW".  The app's folders follow (repository
 * and releases, logs, build cache, buildpack clones, the static link),
 * its route and hosts move to NEW in the routing table (NEW.DOMAIN
 * instead of OLD.DOMAIN, its other hosts kept), and its processes keep
 * running: nothing restarts, so it keeps serving.  Refused while it
 * deploys, and for an app with a database berth made (berth_OLD, whose
 * live connections a rename of the database would cut): the error says
 * what to do instead.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "app.h"
#include "engine.h"
#include "isolate.h"
#include "liveroute.h"
#include "log.h"
#include "logger.h"
#include "postgres.h"
#include "banned.h"

/* The folders that carry the app's name, under the state directory. */
static const char *const renamed[] = {
	"apps/%s",
	"logs/%s",
	"cache/%s",
	"cache/%s.buildpacks",
	"run/%s.static",
	"access/%s",		/* its owner and collaborators (access.h) */
};

static int exists(const char *path)
{
	struct stat st;

	return lstat(path, &st) == 0;
}

/* Undo the first n renames (NEW back to OLD). */
static void rename_back(struct engine *e, const char *from, const char *to,
			size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		char *src = engine_path(e, renamed[i], to);
		char *dst = engine_path(e, renamed[i], from);

		if (exists(src) && rename(src, dst) < 0)
			log_warn("cannot rename '%s' back", src);
		free(src);
		free(dst);
	}
}

static int has_berth_database(const struct app *a)
{
	long i = strv_env_find(&a->env, "DATABASE_URL");
	char *ident;
	int ret;

	if (i < 0)
		return 0;
	ident = postgres_ident(a->name);
	ret = strstr(a->env.v[i], ident) != NULL;
	free(ident);
	return ret;
}

/* Keep e->apps sorted by name. */
static void resort(struct engine *e, struct app *a)
{
	struct app **pp;

	for (pp = &e->apps; *pp && *pp != a; pp = &(*pp)->next)
		;
	if (*pp)
		*pp = a->next;
	for (pp = &e->apps; *pp && strcmp((*pp)->name, a->name) < 0;
	     pp = &(*pp)->next)
		;
	a->next = *pp;
	*pp = a;
}

void app_cmd_rename(struct engine *e, struct app *a, const char *to,
		    struct client *c)
{
	char *from = xstrdup(a->name), *path, *logdir = NULL, *url = NULL;
	size_t i, done = 0;

	if (!app_name_valid(to)) {
		client_error(c, "invalid app name '%s'", to);
		goto out;
	}
	if (!strcmp(from, to)) {
		client_error(c, "'%s' is already its name", to);
		goto out;
	}
	if (app_find(e, to)) {
		client_error(c, "app '%s' already exists", to);
		goto out;
	}
	if (a->deploy || a->waiting) {
		client_error(c, "'%s' is deploying: rename it when the deploy is done",
			     from);
		goto out;
	}
	if (a->removing) {
		client_error(c, "'%s' is being removed", from);
		goto out;
	}
	if (has_berth_database(a)) {
		client_error(c, "'%s' has a database berth made for it: renaming it would cut its connections (move it with pg:backup %s, create %s, pg:restore %s)",
			     from, from, to, to);
		goto out;
	}
	/* a certificate names the old hosts, and would wait for a new app
	 * of the old name */
	path = engine_path(e, "certs/%s", from);
	if (exists(path)) {
		client_error(c, "'%s' has a certificate: remove it (certs:remove %s), rename, then add it again",
			     from, from);
		free(path);
		goto out;
	}
	free(path);
	for (i = 0; i < ARRAY_SIZE(renamed); i++) {
		path = engine_path(e, renamed[i], to);
		if (exists(path)) {
			client_error(c, "'%s' is in the way of the new name; nothing renamed",
				     path);
			free(path);
			goto out;
		}
		free(path);
	}
	for (i = 0; i < ARRAY_SIZE(renamed); i++, done++) {
		char *src = engine_path(e, renamed[i], from);
		char *dst = engine_path(e, renamed[i], to);
		int r = 0;

		if (exists(src))
			r = rename(src, dst);
		if (r < 0)
			error_setsys("cannot rename '%s'", src);
		free(src);
		free(dst);
		if (r < 0) {
			client_error(c, "%s; nothing renamed", error_last());
			rename_back(e, from, to, done);
			goto out;
		}
	}
	/* its user too, so a new app of the old name gets a user of its own */
	if (isolate_rename_app(e->iso, from, to) < 0) {
		client_error(c, "cannot rename the app's user: %s; nothing renamed",
			     error_last());
		rename_back(e, from, to, done);
		goto out;
	}
	/* the new name from here on; its log goes on in the moved folder */
	free(a->name);
	a->name = xstrdup(to);
	free(a->dir);
	a->dir = engine_path(e, "apps/%s", to);
	logger_free(a->log);
	logdir = engine_path(e, "logs/%s", to);
	a->log = logger_open(logdir, e->cfg->log_max_bytes);
	if (!a->log)
		log_warnx("%s", error_last());
	resort(e, a);
	if (liveroute_rename(e, a, from) < 0) {
		/* the folders moved; the route follows at the next deploy */
		log_warnx("%s: routing table: %s", to, error_last());
		client_data(c, " !     the routing table did not take the new name yet: %s",
			    error_last());
	}
	logger_linef(a->log, "berth", "renamed from %s", from);
	log_info("app '%s' renamed to '%s'", from, to);
	url = app_url(a);
	client_data(c, "-----> Renamed %s to %s: %s", from, to, url);
	client_data(c, "-----> Push to it as %s now, e.g. git remote set-url deploy ssh://HOST/%s",
		    to, to);
	client_ok(c);
out:
	free(from);
	free(logdir);
	free(url);
}
