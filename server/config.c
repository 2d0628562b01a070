/* config: see config.h.  The descriptor table drives defaults and
 * config_set(); YAML loading walks the same table. */
#include "config.h"

#include <ctype.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cgroup.h"
#include "manifest.h"
#include "util.h"
#include "ytree.h"
#include "banned.h"

#define CONFIG_FILE "berth.yaml"
#define CONFIG_FILE_MAX (256 * 1024)
#define CONFIG_MAX_SHOWN 8	/* errors listed before "and N more" */

enum ctype { C_STR, C_INT, C_MS, C_BYTES, C_PORTS };

struct cdesc {
	const char *key;
	enum ctype type;
	size_t off;
	const char *def;	/* NULL: unset by default (and may be null) */
	long min, max;
	/* a string setting's check: 0 if fine, else -1 with error_set() */
	int (*check)(const char *key, const char *value);
};

static int check_listen(const char *key, const char *value);
static int check_http_listen(const char *key, const char *value);
static int check_host(const char *key, const char *value);
static int check_branch(const char *key, const char *value);
static int check_nginx(const char *key, const char *value);
static int check_abspath(const char *key, const char *value);
static int check_word(const char *key, const char *value);
static int check_line(const char *key, const char *value);
static int check_url(const char *key, const char *value);
static int check_user(const char *key, const char *value);
static int check_cpu(const char *key, const char *value);
static int check_hook_list(const char *key, const char *value);
static int check_host_or_off(const char *key, const char *value);
static int check_listen_or_off(const char *key, const char *value);
static int check_email(const char *key, const char *value);
static int check_bool(const char *key, const char *value);
static int check_groups(const char *key, const char *value);
static int check_node_name(const char *key, const char *value);
static int check_rollout(const char *key, const char *value);
static int check_route(const char *key, const char *value);
static int check_startups(const char *key, const char *value);

#define F(field) offsetof(struct config, field)
static const struct cdesc descs[] = {
	{ "ssh_listen", C_STR, F(ssh_listen), "0.0.0.0:2222", 0, 0, check_listen },
	{ "http_listen", C_STR, F(http_listen), "127.0.0.1:8080", 0, 0, check_http_listen },
	{ "domain", C_STR, F(domain), "localhost", 0, 0, check_host },
	/* "ports: 20000-29999" sets both ends at once */
	{ "ports", C_PORTS, F(port_min), NULL, 1024, 65535, NULL },
	{ "port_min", C_INT, F(port_min), "20000", 1024, 65535, NULL },
	{ "port_max", C_INT, F(port_max), "29999", 1024, 65535, NULL },
	{ "drain", C_MS, F(drain_ms), "2s", 0, 3600000, NULL },
	{ "watch", C_MS, F(watch_ms), "10s", 0, 3600000, NULL },
	{ "stop_timeout", C_MS, F(stop_timeout_ms), "10s", 0, 3600000, NULL },
	{ "health_timeout", C_MS, F(health_timeout_ms), "60s", 100, 3600000, NULL },
	{ "health_interval", C_MS, F(health_interval_ms), "50ms", 5, 60000, NULL },
	{ "settle", C_MS, F(settle_ms), "1s", 0, 600000, NULL },
	{ "deploy_branch", C_STR, F(deploy_branch), NULL, 0, 0, check_branch },
	{ "max_pack_size", C_BYTES, F(max_pack_bytes), "1073741824", 1024, 1L << 40, NULL },
	{ "build_timeout", C_MS, F(build_timeout_ms), "15m", 1000, 86400000, NULL },
	{ "git_timeout", C_MS, F(git_timeout_ms), "10m", 1000, 86400000, NULL },
	/* the same setting by the name the SSH door's docs use */
	{ "git_idle_timeout", C_MS, F(git_timeout_ms), NULL, 1000, 86400000, NULL },
	{ "keep_releases", C_INT, F(keep_releases), "10", 1, 10000, NULL },
	{ "log_max_size", C_BYTES, F(log_max_bytes), "10485760", 4096, 1L << 40, NULL },
	{ "max_sessions", C_INT, F(max_sessions), "32", 1, 10000, NULL },
	{ "ssh_max_startups", C_STR, F(ssh_max_startups), "10:30:100", 0, 0, check_startups },
	{ "ssh_per_source_max_startups", C_INT, F(ssh_per_source_max_startups), "10", 0, 100000, NULL },
	{ "ssh_login_grace_time", C_MS, F(ssh_login_grace_ms), "120s", 1000, 3600000, NULL },
	{ "ssh_max_followers", C_INT, F(ssh_max_followers), "64", 0, 100000, NULL },
	{ "nginx", C_STR, F(nginx), "own", 0, 0, check_nginx },
	{ "nginx_conf_dir", C_STR, F(nginx_conf_dir), NULL, 0, 0, check_abspath },
	{ "nginx_bin", C_STR, F(nginx_bin), "nginx", 0, 0, check_word },
	{ "postgres", C_STR, F(postgres), NULL, 0, 0, check_line },
	{ "postgres_bindir", C_STR, F(postgres_bindir), NULL, 0, 0, check_abspath },
	{ "webhook", C_STR, F(webhook), NULL, 0, 0, check_url },
	{ "user", C_STR, F(run_user), NULL, 0, 0, check_user },
	{ "privileged_hooks", C_STR, F(privileged_hooks), NULL, 0, 0, check_hook_list },
	{ "resources.memory", C_BYTES, F(res_memory), "1073741824", 0, 1L << 50, NULL },
	{ "resources.cpu", C_STR, F(res_cpu), NULL, 0, 0, check_cpu },
	{ "resources.processes", C_INT, F(res_processes), "512", 0, 1000000, NULL },
	{ "checkout.max_files", C_INT, F(checkout_max_files), "200000", 1, 100000000, NULL },
	{ "checkout.max_bytes", C_BYTES, F(checkout_max_bytes), "536870912", 1024, 1L << 50, NULL },
	{ "checkout.max_depth", C_INT, F(checkout_max_depth), "128", 1, 4096, NULL },
	{ "dashboard_host", C_STR, F(dashboard_host), NULL, 0, 0, check_host_or_off },
	{ "dashboard_session", C_MS, F(dashboard_session_ms), "720m", 60000, 30L * 86400000, NULL },
	{ "https_listen", C_STR, F(https_listen), NULL, 0, 0, check_listen_or_off },
	{ "acme_email", C_STR, F(acme_email), NULL, 0, 0, check_email },
	{ "acme_directory", C_STR, F(acme_directory), "https://acme-v02.api.letsencrypt.org/directory", 0, 0, check_url },
	{ "acme_ca", C_STR, F(acme_ca), NULL, 0, 0, check_abspath },
	{ "acme", C_STR, F(acme), "false", 0, 0, check_bool },
	{ "cluster", C_STR, F(cluster), NULL, 0, 0, check_line },
	{ "cluster_wait", C_MS, F(cluster_wait_ms), "60s", 1000, 3600000, NULL },
	{ "groups", C_STR, F(groups), "default", 0, 0, check_groups },
	{ "host_name", C_STR, F(host_name), NULL, 0, 0, check_node_name },
	{ "advertise_address", C_STR, F(advertise_address), NULL, 0, 0, check_node_name },
	{ "rollout", C_STR, F(rollout), "one-by-one", 0, 0, check_rollout },
	/* route: group: every host of an app's group takes its requests */
	{ "route", C_STR, F(route), "local", 0, 0, check_route },
	{ "route_port", C_INT, F(route_port), "7080", 1, 65535, NULL },
};
#undef F

static long parse_bytes(const char *s)
{
	char *end;
	double v;

	if (!s || !*s || *s == '-')
		return -1;
	v = strtod(s, &end);
	if (end == s || v < 0)
		return -1;
	if (!strcmp(end, "") || !strcmp(end, "B"))
		;
	else if (!strcmp(end, "K") || !strcmp(end, "KB") || !strcmp(end, "KiB"))
		v *= 1024;
	else if (!strcmp(end, "M") || !strcmp(end, "MB") || !strcmp(end, "MiB"))
		v *= 1024 * 1024;
	else if (!strcmp(end, "G") || !strcmp(end, "GB") || !strcmp(end, "GiB"))
		v *= 1024.0 * 1024 * 1024;
	else
		return -1;
	if (v > 9e15)
		return -1;
	return (long)v;
}

static int check_chars(const char *key, const char *value, const char *extra)
{
	const char *p;

	for (p = value; *p; p++)
		if (!isalnum((unsigned char)*p) && !strchr(extra, *p))
			return error_set("'%s' has a character that is not allowed ('%c')",
					 key, isprint((unsigned char)*p) ? *p : '?');
	return 0;
}

static int check_listen(const char *key, const char *value)
{
	const char *colon = strrchr(value, ':');

	if (!colon || colon == value || parse_long(colon + 1, 65535) < 1)
		return error_set("'%s' must be ADDRESS:PORT like 127.0.0.1:8080", key);
	if (value[0] == '[') {
		if (colon[-1] != ']' || colon - value < 3)
			return error_set("'%s' must be ADDRESS:PORT like [::1]:8080", key);
	} else if (memchr(value, ':', (size_t)(colon - value))) {
		return error_set("'%s': write an IPv6 address in brackets, like [::1]:8080",
				 key);
	}
	return check_chars(key, value, ".-:[]");
}

/* nginx also takes a bare port (all addresses) */
static int check_http_listen(const char *key, const char *value)
{
	if (!strchr(value, ':')) {
		if (parse_long(value, 65535) < 1)
			return error_set("'%s' must be ADDRESS:PORT like 127.0.0.1:8080, or a port",
					 key);
		return 0;
	}
	return check_listen(key, value);
}

static int check_host(const char *key, const char *value)
{
	if (!host_name_valid(value))
		return error_set("'%s' must be a host name like example.com", key);
	return 0;
}

static int check_host_or_off(const char *key, const char *value)
{
	if (strcmp(value, "off") && !host_name_valid(value))
		return error_set("'%s' must be a host name like berth.example.com, or off",
				 key);
	return 0;
}

static int check_branch(const char *key, const char *value)
{
	size_t n = strlen(value);

	if (!n || value[0] == '-' || value[0] == '/' || value[n - 1] == '/' ||
	    value[n - 1] == '.' || strstr(value, "..") || strstr(value, "//") ||
	    strstr(value, "/.") || value[0] == '.' ||
	    (n >= 5 && !strcmp(value + n - 5, ".lock")) ||
	    check_chars(key, value, "._/-") < 0)
		return error_set("'%s' must be a branch name like main", key);
	return 0;
}

static int check_nginx(const char *key, const char *value)
{
	if (strcmp(value, "own") && strcmp(value, "system"))
		return error_set("'%s' must be own or system", key);
	return 0;
}

static int check_abspath(const char *key, const char *value)
{
	if (value[0] != '/')
		return error_set("'%s' must be an absolute path", key);
	return check_chars(key, value, "._/-+");
}

static int check_word(const char *key, const char *value)
{
	if (!*value)
		return error_set("'%s' must not be empty", key);
	return check_chars(key, value, "._/-+");
}

/* A group's name: what "apps:set-group" takes (config.h). */
int config_group_name_valid(const char *name)
{
	size_t n = strlen(name);

	if (n == 0 || n > 32 || !islower((unsigned char)name[0]))
		return 0;
	return strspn(name, "abcdefghijklmnopqrstuvwxyz0123456789-") == n;
}

/* "web,api": one to 16 group names */
static int check_groups(const char *key, const char *value)
{
	char *copy = xstrdup(value), *tok, *save = NULL;
	int n = 0, ret = 0;

	for (save = copy; (tok = str_token(&save, ",")) != NULL; ) {
		if (!config_group_name_valid(tok) || ++n > 16) {
			ret = error_set("'%s' must be a list of up to 16 group names (lower case letters, digits and '-', like web)",
					key);
			break;
		}
	}
	if (!ret && (n == 0 || value[strlen(value) - 1] == ',' ||
		     strstr(value, ",,")))
		ret = error_set("'%s' must be a list of up to 16 group names (lower case letters, digits and '-', like web)",
				key);
	free(copy);
	return ret;
}

/* how a release pushed on this host goes to the others */
static int check_rollout(const char *key, const char *value)
{
	if (strcmp(value, "one-by-one") && strcmp(value, "parallel"))
		return error_set("'%s' must be one-by-one or parallel", key);
	return 0;
}

/* which processes a host's nginx routes an app's requests to */
static int check_route(const char *key, const char *value)
{
	if (strcmp(value, "local") && strcmp(value, "group"))
		return error_set("'%s' must be local or group", key);
	return 0;
}

/* a host's name or address as other hosts see it */
static int check_node_name(const char *key, const char *value)
{
	if (!*value || strlen(value) > 253)
		return error_set("'%s' must be a host name or an address", key);
	return check_chars(key, value, ".-:_");
}

static int check_line(const char *key, const char *value)
{
	const char *p;

	if (!*value)
		return error_set("'%s' must not be empty", key);
	for (p = value; *p; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			return error_set("'%s' must not contain control characters", key);
	return 0;
}

static int check_url(const char *key, const char *value)
{
	const char *p;

	if (strncmp(value, "http://", 7) && strncmp(value, "https://", 8))
		return error_set("'%s' must be an http:// or https:// URL", key);
	for (p = value; *p; p++)
		if ((unsigned char)*p <= 0x20 || *p == 0x7f)
			return error_set("'%s' must not contain spaces or control characters",
					 key);
	return 0;
}

static int check_user(const char *key, const char *value)
{
	size_t n = strlen(value);

	if (!n || n > 32 || !(islower((unsigned char)value[0]) || value[0] == '_') ||
	    check_chars(key, value, "_-") < 0)
		return error_set("'%s' must be a user name like berth", key);
	return 0;
}

static int check_listen_or_off(const char *key, const char *value)
{
	if (!strcmp(value, "off"))
		return 0;
	return check_http_listen(key, value);
}

/* An address for the ACME account: it reaches lego's argv as one word. */
static int check_email(const char *key, const char *value)
{
	const char *at = strchr(value, '@');

	if (!at || at == value || !at[1] || strchr(at + 1, '@') ||
	    value[0] == '-' || strlen(value) > 254 ||
	    check_chars(key, value, "@._+-") < 0)
		return error_set("'%s' must be an email address like admin@example.com",
				 key);
	return 0;
}

static int check_cpu(const char *key, const char *value)
{
	long millis;

	if (cgroup_parse_cpu(value, &millis) < 0 || millis < 10 ||
	    millis > 1024000)
		return error_set("'%s' must be a number of cores like 0.5 or 2",
				 key);
	return 0;
}

static int check_bool(const char *key, const char *value)
{
	if (strcmp(value, "true") && strcmp(value, "false"))
		return error_set("'%s' must be true or false", key);
	return 0;
}

const char *config_https_listen(const struct config *c)
{
	if (c->https_listen)
		return strcmp(c->https_listen, "off") ? c->https_listen : NULL;
	if (c->acme_email && geteuid() == 0)
		return "0.0.0.0:443";
	return NULL;
}

int config_acme_all(const struct config *c)
{
	return c->acme && !strcmp(c->acme, "true");
}

int config_parse_startups(const char *spec, int *start, int *rate, int *full)
{
	long a, b, c;
	const char *p1, *p2;
	char part[16];

	if (!spec)
		return -1;
	p1 = strchr(spec, ':');
	if (!p1) {
		a = parse_long(spec, 100000);
		if (a < 1)
			return -1;
		*start = *full = (int)a;
		*rate = 100;
		return 0;
	}
	p2 = strchr(p1 + 1, ':');
	if (!p2 || (size_t)(p1 - spec) >= sizeof(part) ||
	    (size_t)(p2 - p1 - 1) >= sizeof(part))
		return -1;
	memcpy(part, spec, (size_t)(p1 - spec));
	part[p1 - spec] = '\0';
	a = parse_long(part, 100000);
	memcpy(part, p1 + 1, (size_t)(p2 - p1 - 1));
	part[p2 - p1 - 1] = '\0';
	b = parse_long(part, 100);
	c = parse_long(p2 + 1, 100000);
	if (a < 1 || b < 0 || c < a)
		return -1;
	*start = (int)a;
	*rate = (int)b;
	*full = (int)c;
	return 0;
}

static int check_startups(const char *key, const char *value)
{
	int a, b, c;

	if (config_parse_startups(value, &a, &b, &c) < 0)
		return error_set("'%s' must be START:RATE:FULL like 10:30:100 (RATE a percentage, FULL at least START), or one number",
				 key);
	return 0;
}

/* "pre-build.d/10-x post-deploy.d/20-y": STEP.d/NAME words */
static int check_hook_list(const char *key, const char *value)
{
	const char *w = value;

	if (check_chars(key, value, " ,._-/+@") < 0)
		return -1;
	while (*w) {
		size_t len;
		const char *slash;

		w += strspn(w, " ,");
		len = strcspn(w, " ,");
		if (!len)
			break;
		slash = memchr(w, '/', len);
		if (!slash || slash - w < 3 || strncmp(slash - 2, ".d", 2) ||
		    slash + 1 == w + len || memchr(slash + 1, '/', (size_t)(w + len - slash - 1)) ||
		    slash[1] == '.')
			return error_set("'%s' must list hooks as STEP.d/NAME, like post-deploy.d/10-notify",
					 key);
		w += len;
	}
	return 0;
}

/* "20000-29999" */
static int set_ports(struct config *c, const struct cdesc *d, const char *value)
{
	const char *dash = value ? strchr(value, '-') : NULL;
	char lo[16];
	long a, b;

	if (!dash || (size_t)(dash - value) >= sizeof(lo))
		return error_set("'%s' must be a range like 20000-29999", d->key);
	memcpy(lo, value, (size_t)(dash - value));
	lo[dash - value] = '\0';
	a = parse_long(lo, 65535);
	b = parse_long(dash + 1, 65535);
	if (a < d->min || b < d->min || a > d->max || b > d->max || a > b)
		return error_set("'%s' must be a range like 20000-29999 within %ld-%ld",
				 d->key, d->min, d->max);
	c->port_min = (int)a;
	c->port_max = (int)b;
	return 0;
}

static int set_desc(struct config *c, const struct cdesc *d, const char *value)
{
	char *base = (char *)c;
	long v;

	if (!value && (d->type != C_STR || d->def))
		return error_set("'%s' needs a value", d->key);
	switch (d->type) {
	case C_STR: {
		char **p = (char **)(base + d->off);

		if (value && d->check && d->check(d->key, value) < 0)
			return -1;
		free(*p);
		*p = value ? xstrdup(value) : NULL;
		return 0;
	}
	case C_PORTS:
		return set_ports(c, d, value);
	case C_INT:
		v = parse_long(value, 1L << 40);
		if (v < d->min || v > d->max)
			return error_set("'%s' must be a number from %ld to %ld",
					 d->key, d->min, d->max);
		*(int *)(base + d->off) = (int)v;
		return 0;
	case C_MS:
		v = parse_duration_ms(value);
		if (v < d->min || v > d->max)
			return error_set("'%s' must be a duration like 2s or 500ms",
					 d->key);
		*(long *)(base + d->off) = v;
		return 0;
	case C_BYTES:
		v = parse_bytes(value);
		if (v < d->min || v > d->max)
			return error_set("'%s' must be a size like 10M", d->key);
		*(long *)(base + d->off) = v;
		return 0;
	}
	return error_set("bad descriptor");
}

void config_init(struct config *c, const char *root)
{
	size_t i;

	memset(c, 0, sizeof(*c));
	c->root = xstrdup(root);
	for (i = 0; i < ARRAY_SIZE(descs); i++)
		if ((descs[i].def || descs[i].type == C_STR) &&
		    set_desc(c, &descs[i], descs[i].def) < 0)
			abort();	/* a bad default is a bug */
}

int config_set(struct config *c, const char *key, const char *value)
{
	size_t i;

	for (i = 0; i < ARRAY_SIZE(descs); i++)
		if (!strcmp(descs[i].key, key))
			return set_desc(c, &descs[i], value);
	return error_set("unknown setting '%s'", key);
}

/* Settings that only make sense together. */
static int check_whole(const struct config *c)
{
	if (c->port_min > c->port_max)
		return error_set("'port_min' (%d) is above 'port_max' (%d)",
				 c->port_min, c->port_max);
	if (!strcmp(c->nginx, "system") && !c->nginx_conf_dir)
		return error_set("'nginx: system' needs 'nginx_conf_dir'");
	return 0;
}

static void copy_config(struct config *to, const struct config *from)
{
	size_t i;

	*to = *from;
	to->root = xstrdup(from->root);
	for (i = 0; i < ARRAY_SIZE(descs); i++) {
		if (descs[i].type == C_STR) {
			char **p = (char **)((char *)to + descs[i].off);

			if (*p)
				*p = xstrdup(*p);
		}
	}
}

struct errlist {
	struct buf text;
	int count;
};

static void err_add(struct errlist *e, int line, int col, const char *msg)
{
	if (++e->count > CONFIG_MAX_SHOWN)
		return;
	if (e->text.len)
		buf_addstr(&e->text, "\n");
	if (line > 0)
		buf_addf(&e->text, "%s:%d:%d: %s", CONFIG_FILE, line, col, msg);
	else
		buf_addf(&e->text, "%s: %s", CONFIG_FILE, msg);
}

static void load_key(struct config *c, const struct ynode *k,
		     const struct ynode *v, struct errlist *errs);

/* "resources:" and "checkout:" hold settings "resources.memory", ... */
static int load_group(struct config *c, const struct ynode *k,
		      const struct ynode *v, struct errlist *errs)
{
	size_t i;

	if (strcmp(k->value, "resources") && strcmp(k->value, "checkout"))
		return 0;
	if (v->kind != YNODE_MAP) {
		char msg[120];

		snprintf(msg, sizeof(msg), "'%s' must be a mapping, not %s",
			 k->value, ynode_kind_name(v));
		err_add(errs, v->line, v->col, msg);
		return 1;
	}
	for (i = 0; i < ynode_map_len(v); i++) {
		struct ynode sub = *ynode_map_key(v, i);
		char key[64];

		snprintf(key, sizeof(key), "%s.%.40s", k->value, sub.value);
		sub.value = key;
		load_key(c, &sub, ynode_map_val(v, i), errs);
	}
	return 1;
}

static void load_key(struct config *c, const struct ynode *k,
		     const struct ynode *v, struct errlist *errs)
{
	const struct cdesc *d = NULL;
	char msg[600];
	size_t i;

	if (load_group(c, k, v, errs))
		return;
	for (i = 0; i < ARRAY_SIZE(descs); i++)
		if (!strcmp(descs[i].key, k->value))
			d = &descs[i];
	if (!d) {
		char shown[64];

		for (i = 0; k->value[i] && i + 1 < sizeof(shown); i++)
			shown[i] = isprint((unsigned char)k->value[i]) ? k->value[i] : '?';
		shown[i] = '\0';
		snprintf(msg, sizeof(msg), "unknown key '%s'", shown);
		err_add(errs, k->line, k->col, msg);
		return;
	}
	if (v->kind == YNODE_SEQ && !strcmp(d->key, "groups")) {
		struct buf joined = BUF_INIT;

		for (i = 0; i < v->nkids; i++) {
			if (v->kids[i]->kind != YNODE_SCALAR ||
			    !ynode_is_str(v->kids[i])) {
				err_add(errs, v->kids[i]->line, v->kids[i]->col,
					"'groups' must be a list of group names");
				buf_release(&joined);
				return;
			}
			buf_addf(&joined, "%s%s", i ? "," : "",
				 v->kids[i]->value);
		}
		if (set_desc(c, d, joined.data ? joined.data : "") < 0)
			err_add(errs, v->line, v->col, error_last());
		buf_release(&joined);
		return;
	}
	if (v->kind != YNODE_SCALAR) {
		snprintf(msg, sizeof(msg), "'%s' must be a single value, not %s",
			 d->key, ynode_kind_name(v));
		err_add(errs, v->line, v->col, msg);
		return;
	}
	if (!ynode_is_str(v)) {
		snprintf(msg, sizeof(msg), "'%s' must not contain NUL bytes", d->key);
		err_add(errs, v->line, v->col, msg);
		return;
	}
	if (set_desc(c, d, ynode_is_null(v) ? NULL : v->value) < 0)
		err_add(errs, v->line, v->col, error_last());
}

int config_parse(struct config *c, const char *buf, size_t len,
		 int others_can_read)
{
	struct config fresh;
	struct errlist errs = { BUF_INIT, 0 };
	struct ynode *root = NULL;
	size_t i;
	int ret = -1;

	copy_config(&fresh, c);
	if (ytree_parse(&root, buf, len, CONFIG_FILE) < 0)
		goto out;
	if (root && !ynode_is_null(root)) {
		if (root->kind != YNODE_MAP) {
			err_add(&errs, root->line, root->col,
				"expected a mapping of settings");
		} else {
			for (i = 0; i < ynode_map_len(root); i++)
				load_key(&fresh, ynode_map_key(root, i),
					 ynode_map_val(root, i), &errs);
		}
	}
	if (!errs.count && check_whole(&fresh) < 0)
		err_add(&errs, 0, 0, error_last());
	/* a password in a file others can read is refused (httpd) */
	if (!errs.count && fresh.postgres && strstr(fresh.postgres, "password") &&
	    others_can_read) {
		const struct ynode *pg = ynode_map_get(root, "postgres");

		err_add(&errs, pg ? pg->line : 0, pg ? pg->col : 0,
			"'postgres' holds a password but berth.yaml is readable by others (chmod 600 it)");
	}
	if (!errs.count && fresh.cluster && strstr(fresh.cluster, "password") &&
	    others_can_read) {
		const struct ynode *cl = ynode_map_get(root, "cluster");

		err_add(&errs, cl ? cl->line : 0, cl ? cl->col : 0,
			"'cluster' holds a password but berth.yaml is readable by others (chmod 600 it)");
	}
	if (errs.count) {
		if (errs.count > CONFIG_MAX_SHOWN)
			buf_addf(&errs.text, "\n%s: and %d more errors", CONFIG_FILE,
				 errs.count - CONFIG_MAX_SHOWN);
		error_set("%s", errs.text.data);
		goto out;
	}
	config_release(c);
	*c = fresh;
	memset(&fresh, 0, sizeof(fresh));
	ret = 0;
out:
	config_release(&fresh);
	ynode_free(root);
	buf_release(&errs.text);
	return ret;
}

int config_load(struct config *c)
{
	struct buf file = BUF_INIT;
	char *path = xasprintf("%s/%s", c->root, CONFIG_FILE);
	struct stat st;
	int ret = -1;

	if (!path_exists(path)) {
		ret = 0;
		goto out;
	}
	if (read_file(&file, path, CONFIG_FILE_MAX) < 0)
		goto out;
	if (stat(path, &st) < 0) {
		error_setsys("cannot stat '%s'", path);
		goto out;
	}
	ret = config_parse(c, file.data ? file.data : "", file.len,
			   (st.st_mode & 0044) != 0);
out:
	buf_release(&file);
	free(path);
	return ret;
}

void config_show(const struct config *c, struct buf *out)
{
	const char *base = (const char *)c;
	size_t i;

	for (i = 0; i < ARRAY_SIZE(descs); i++) {
		const struct cdesc *d = &descs[i];

		switch (d->type) {
		case C_STR: {
			const char *v = *(char *const *)(base + d->off);

			if (!v)
				buf_addf(out, "%s: ~\n", d->key);
			else if ((!strcmp(d->key, "postgres") ||
				  !strcmp(d->key, "cluster")) &&
				 strstr(v, "password"))
				buf_addf(out, "%s: (hidden: holds a password)\n", d->key);
			else
				buf_addf(out, "%s: \"%s\"\n", d->key, v);
			break;
		}
		case C_PORTS:
			buf_addf(out, "%s: %d-%d\n", d->key, c->port_min, c->port_max);
			break;
		case C_INT:
			buf_addf(out, "%s: %d\n", d->key, *(const int *)(base + d->off));
			break;
		case C_MS:
			buf_addf(out, "%s: %ldms\n", d->key, *(const long *)(base + d->off));
			break;
		case C_BYTES:
			buf_addf(out, "%s: %ld\n", d->key, *(const long *)(base + d->off));
			break;
		}
	}
}

void config_release(struct config *c)
{
	size_t i;

	for (i = 0; i < ARRAY_SIZE(descs); i++) {
		if (descs[i].type == C_STR) {
			char **p = (char **)((char *)c + descs[i].off);

			FREE_AND_NULL(*p);
		}
	}
	FREE_AND_NULL(c->root);
}
