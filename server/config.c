/* config: see config.h.  The descriptor table drives defaults and
 * config_set(); YAML loading walks the same table. */
#include "config.h"

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

enum ctype { C_STR, C_INT, C_MS, C_BYTES };

struct cdesc {
	const char *key;
	enum ctype type;
	size_t off;
	const char *def;
	long min, max;
};

#define F(field) offsetof(struct config, field)
static const struct cdesc descs[] = {
	{ "ssh_listen", C_STR, F(ssh_listen), "0.0.0.0:2222", 0, 0 },
	{ "http_listen", C_STR, F(http_listen), "127.0.0.1:8080", 0, 0 },
	{ "domain", C_STR, F(domain), "localhost", 0, 0 },
	{ "port_min", C_INT, F(port_min), "20000", 1024, 65535 },
	{ "port_max", C_INT, F(port_max), "29999", 1024, 65535 },
	{ "drain", C_MS, F(drain_ms), "2s", 0, 3600000 },
	{ "stop_timeout", C_MS, F(stop_timeout_ms), "10s", 0, 3600000 },
	{ "health_timeout", C_MS, F(health_timeout_ms), "60s", 100, 3600000 },
	{ "health_interval", C_MS, F(health_interval_ms), "50ms", 5, 60000 },
	{ "settle", C_MS, F(settle_ms), "1s", 0, 600000 },
	{ "deploy_branch", C_STR, F(deploy_branch), NULL, 0, 0 },
	{ "max_pack_size", C_BYTES, F(max_pack_bytes), "1073741824", 1024, 1L << 40 },
	{ "build_timeout", C_MS, F(build_timeout_ms), "15m", 1000, 86400000 },
	{ "keep_releases", C_INT, F(keep_releases), "10", 1, 10000 },
	{ "log_max_size", C_BYTES, F(log_max_bytes), "10485760", 4096, 1L << 40 },
	{ "max_sessions", C_INT, F(max_sessions), "32", 1, 10000 },
	{ "nginx", C_STR, F(nginx), "own", 0, 0 },
	{ "nginx_conf_dir", C_STR, F(nginx_conf_dir), NULL, 0, 0 },
	{ "nginx_bin", C_STR, F(nginx_bin), "nginx", 0, 0 },
	{ "postgres", C_STR, F(postgres), NULL, 0, 0 },
	{ "webhook", C_STR, F(webhook), NULL, 0, 0 },
	{ "user", C_STR, F(run_user), NULL, 0, 0 },
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

static int set_desc(struct config *c, const struct cdesc *d, const char *value)
{
	char *base = (char *)c;
	long v;

	switch (d->type) {
	case C_STR: {
		char **p = (char **)(base + d->off);

		free(*p);
		*p = value ? xstrdup(value) : NULL;
		return 0;
	}
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
		if (set_desc(c, &descs[i], descs[i].def) < 0)
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

int config_load(struct config *c)
{
	/* berth.yaml support arrives with the YAML helpers */
	(void)c;
	return 0;
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
