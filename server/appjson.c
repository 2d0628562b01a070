/* appjson: see appjson.h and docs/manifest.md. */
#include "appjson.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buildpack.h"
#include "cron.h"
#include "json.h"
#include "manifest.h"
#include "util.h"
#include "banned.h"

#define IGNORED_MAX 64		/* entries listed, then "..." */
#define COMMAND_MAX (64 * 1024)
#define MAX_CRONS 64
#define MAX_FORMATION 64
#define MAX_ENV 4096
#define MAX_SCALE 100
#define SECONDS_MAX 3600.0

struct aj {
	struct manifest *m;
	const char *fname;
};

static int at(const struct aj *a, const struct jnode *n, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static int at(const struct aj *a, const struct jnode *n, const char *fmt, ...)
{
	char msg[600];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	return error_set("%s:%d:%d: %s", a->fname, n->line, n->col, msg);
}

/* A name from the file, safe to quote in a one-line message. */
static const char *shown(const char *s, char *out, size_t len)
{
	size_t i;

	for (i = 0; s[i] && i + 4 < len; i++)
		out[i] = (unsigned char)s[i] < 0x20 || s[i] == 0x7f ? '?' :
			 s[i];
	if (s[i]) {
		memcpy(out + i, "...", 3);
		i += 3;
	}
	out[i] = '\0';
	return out;
}

static void ignore(struct aj *a, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static void ignore(struct aj *a, const char *fmt, ...)
{
	struct strv *ig = &a->m->ignored;
	va_list ap;
	char *s;
	size_t i;

	if (ig->n > IGNORED_MAX)
		return;
	if (ig->n == IGNORED_MAX) {
		strv_push(ig, "...");
		return;
	}
	va_start(ap, fmt);
	s = xvasprintf(fmt, ap);
	va_end(ap);
	for (i = 0; s[i]; i++)
		if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
			s[i] = '?';
	strv_push(ig, s);
	free(s);
}

/* A key of the file as text for messages and the ignored list. */
static const char *key_text(const struct jnode *k, char *out, size_t len)
{
	return shown(jnode_is_str(k) ? k->str : "?", out, len);
}

static int is_null(const struct jnode *n)
{
	return !n || n->kind == JNODE_NULL;
}

static int want_object(const struct aj *a, const struct jnode *n,
		       const char *field)
{
	if (n->kind != JNODE_OBJECT)
		return at(a, n, "'%s' must be an object, not %s", field,
			  jnode_kind_name(n));
	return 0;
}

static int get_string(const struct aj *a, const struct jnode *n,
		      const char *field, const char **out)
{
	if (n->kind != JNODE_STRING)
		return at(a, n, "'%s' must be a string, not %s", field,
			  jnode_kind_name(n));
	if (!jnode_is_str(n))
		return at(a, n, "'%s' must not contain NUL characters", field);
	*out = n->str;
	return 0;
}

/* A shell command: a non-empty string. */
static int get_command(const struct aj *a, const struct jnode *n,
		       const char *field, char **out)
{
	const char *s, *e;

	if (get_string(a, n, field, &s) < 0)
		return -1;
	while (*s == ' ' || *s == '\t' || *s == '\n' || *s == '\r')
		s++;
	e = s + strlen(s);
	while (e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\n' ||
			 e[-1] == '\r'))
		e--;
	if (e == s)
		return at(a, n, "'%s' is an empty command", field);
	if ((size_t)(e - s) > COMMAND_MAX)
		return at(a, n, "'%s' is too long", field);
	free(*out);
	*out = xstrndup(s, (size_t)(e - s));
	return 0;
}

/* Seconds (a number, fractions fine) from 0 to an hour, into ms. */
static int get_seconds(const struct aj *a, const struct jnode *n,
		       const char *field, long *ms)
{
	if (n->kind != JNODE_NUMBER || !(n->number >= 0) ||
	    n->number > SECONDS_MAX)
		return at(a, n, "'%s' must be a number of seconds from 0 to "
			  "%.0f", field, SECONDS_MAX);
	*ms = (long)(n->number * 1000.0 + 0.5);
	return 0;
}

/* ---- scripts ---- */

static int read_dokku_scripts(struct aj *a, const struct jnode *n)
{
	size_t i;
	char k[80];

	if (want_object(a, n, "scripts.dokku") < 0)
		return -1;
	for (i = 0; i < jnode_obj_len(n); i++) {
		const struct jnode *key = jnode_obj_key(n, i);
		const struct jnode *v = jnode_obj_val(n, i);

		if (is_null(v))
			continue;
		if (!strcmp(key->str, "predeploy")) {
			if (get_command(a, v, "scripts.dokku.predeploy",
					&a->m->predeploy_cmd) < 0)
				return -1;
		} else if (!strcmp(key->str, "postdeploy")) {
			if (get_command(a, v, "scripts.dokku.postdeploy",
					&a->m->postdeploy_cmd) < 0)
				return -1;
		} else {
			ignore(a, "scripts.dokku.%s",
			       key_text(key, k, sizeof(k)));
		}
	}
	return 0;
}

static int read_scripts(struct aj *a, const struct jnode *n)
{
	size_t i, j;
	char k[80], k2[80];

	if (want_object(a, n, "scripts") < 0)
		return -1;
	for (i = 0; i < jnode_obj_len(n); i++) {
		const struct jnode *key = jnode_obj_key(n, i);
		const struct jnode *v = jnode_obj_val(n, i);

		if (is_null(v))
			continue;
		if (!strcmp(key->str, "dokku")) {
			if (read_dokku_scripts(a, v) < 0)
				return -1;
			continue;
		}
		if (strcmp(key->str, "postdeploy")) {
			ignore(a, "scripts.%s", key_text(key, k, sizeof(k)));
			continue;
		}
		/* Heroku's: a command, or {"command": ..., "size": ...} */
		if (v->kind != JNODE_OBJECT) {
			if (get_command(a, v, "scripts.postdeploy",
					&a->m->first_deploy_cmd) < 0)
				return -1;
			continue;
		}
		for (j = 0; j < jnode_obj_len(v); j++) {
			const struct jnode *pk = jnode_obj_key(v, j);
			const struct jnode *pv = jnode_obj_val(v, j);

			if (is_null(pv))
				continue;
			if (!strcmp(pk->str, "command")) {
				if (get_command(a, pv,
						"scripts.postdeploy.command",
						&a->m->first_deploy_cmd) < 0)
					return -1;
			} else {
				ignore(a, "scripts.postdeploy.%s",
				       key_text(pk, k2, sizeof(k2)));
			}
		}
		if (!a->m->first_deploy_cmd)
			return at(a, v, "'scripts.postdeploy' needs a "
				  "'command'");
	}
	return 0;
}

/* ---- env ---- */

/* A value as written: strings as they are, numbers and booleans as
 * their JSON text. */
static int env_value(const struct aj *a, const struct jnode *v,
		     const char *field, const char **out)
{
	if (v->kind == JNODE_NUMBER) {
		*out = v->str;
		return 0;
	}
	if (v->kind == JNODE_BOOL) {
		*out = v->boolean ? "true" : "false";
		return 0;
	}
	return get_string(a, v, field, out);
}

static int read_env_entry(struct aj *a, const struct jnode *key,
			  const struct jnode *v)
{
	const char *name = key->str, *value = NULL, *gen = NULL;
	char field[160], k[80];
	int required = 1;
	size_t i;

	snprintf(field, sizeof(field), "env.%s", name);
	if (v->kind != JNODE_OBJECT) {
		if (env_value(a, v, field, &value) < 0)
			return -1;
	} else {
		for (i = 0; i < jnode_obj_len(v); i++) {
			const struct jnode *ek = jnode_obj_key(v, i);
			const struct jnode *ev = jnode_obj_val(v, i);
			char sub[200];

			snprintf(sub, sizeof(sub), "%s.%s", field,
				 key_text(ek, k, sizeof(k)));
			if (is_null(ev))
				continue;
			if (!strcmp(ek->str, "value")) {
				if (env_value(a, ev, sub, &value) < 0)
					return -1;
			} else if (!strcmp(ek->str, "required")) {
				if (ev->kind != JNODE_BOOL)
					return at(a, ev, "'%s' must be true or "
						  "false", sub);
				required = ev->boolean;
			} else if (!strcmp(ek->str, "generator")) {
				if (get_string(a, ev, sub, &gen) < 0)
					return -1;
				if (strcmp(gen, "secret")) {
					ignore(a, "%s", sub);
					gen = NULL;
				}
			} else if (!strcmp(ek->str, "description")) {
				continue;
			} else {
				ignore(a, "%s", sub);
			}
		}
	}
	if (manifest_env_reserved(name)) {
		ignore(a, "env.%s (berth sets it)", name);
		return 0;
	}
	if (value) {
		strv_env_set(&a->m->env, name, value);
	} else if (gen) {
		strv_push(&a->m->env_generate, name);
	} else if (required) {
		strv_push(&a->m->env_required, name);
	}
	return 0;
}

static int read_env(struct aj *a, const struct jnode *n)
{
	size_t i;
	char k[80];

	if (want_object(a, n, "env") < 0)
		return -1;
	if (jnode_obj_len(n) > MAX_ENV)
		return at(a, n, "'env' has too many variables (at most %d)",
			  MAX_ENV);
	for (i = 0; i < jnode_obj_len(n); i++) {
		const struct jnode *key = jnode_obj_key(n, i);
		const struct jnode *v = jnode_obj_val(n, i);

		if (!jnode_is_str(key) || !env_key_valid(key->str))
			return at(a, key, "'env' has an invalid variable name "
				  "'%s'", key_text(key, k, sizeof(k)));
		if (is_null(v))
			continue;
		if (read_env_entry(a, key, v) < 0)
			return -1;
	}
	return 0;
}

/* ---- formation ---- */

static int read_formation(struct aj *a, const struct jnode *n)
{
	struct manifest *m = a->m;
	size_t i, j;
	char k[80];

	if (want_object(a, n, "formation") < 0)
		return -1;
	for (i = 0; i < jnode_obj_len(n); i++) {
		const struct jnode *key = jnode_obj_key(n, i);
		const struct jnode *v = jnode_obj_val(n, i);
		const char *type = key->str;
		char field[80];
		long q = -1;

		if (!jnode_is_str(key) || !proc_type_valid(type))
			return at(a, key, "'formation' has an invalid process "
				  "type '%s' (use a-z, 0-9, _ and -, at most "
				  "32)", key_text(key, k, sizeof(k)));
		if (is_null(v))
			continue;
		snprintf(field, sizeof(field), "formation.%s", type);
		if (want_object(a, v, field) < 0)
			return -1;
		for (j = 0; j < jnode_obj_len(v); j++) {
			const struct jnode *fk = jnode_obj_key(v, j);
			const struct jnode *fv = jnode_obj_val(v, j);

			if (is_null(fv))
				continue;
			if (strcmp(fk->str, "quantity")) {
				ignore(a, "%s.%s", field,
				       key_text(fk, k, sizeof(k)));
				continue;
			}
			if (jnode_int(fv, 0, MAX_SCALE, &q) < 0)
				return at(a, fv, "'%s.quantity' must be a "
					  "whole number from 0 to %d", field,
					  MAX_SCALE);
		}
		if (q < 0)
			continue;
		if (m->nformation >= MAX_FORMATION)
			return at(a, key, "'formation' has too many types");
		m->formation = xrealloc(m->formation, (m->nformation + 1) *
					sizeof(*m->formation));
		m->formation[m->nformation].type = xstrdup(type);
		m->formation[m->nformation].quantity = (int)q;
		m->nformation++;
	}
	return 0;
}

/* ---- healthchecks ---- */

static int path_ok(const char *s)
{
	if (s[0] != '/')
		return 0;
	for (; *s; s++)
		if ((unsigned char)*s <= 0x20 || *s == 0x7f)
			return 0;
	return 1;
}

/* One check of healthchecks.web: 1 if berth takes it, 0 if not (then
 * it is listed as ignored), -1 on error. */
static int read_check(struct aj *a, const struct jnode *c, size_t idx)
{
	struct manifest *m = a->m;
	const struct jnode *type = jnode_obj_get(c, "type");
	const struct jnode *path = jnode_obj_get(c, "path");
	long attempt_ms = -1, wait_ms = -1, delay_ms = -1, attempts = -1;
	const char *s;
	char field[64], sub[160], k[80];
	size_t i;
	int timing = 0;

	snprintf(field, sizeof(field), "healthchecks.web[%zu]", idx);
	if (want_object(a, c, field) < 0)
		return -1;
	if (!is_null(type)) {
		snprintf(sub, sizeof(sub), "%s.type", field);
		if (get_string(a, type, sub, &s) < 0)
			return -1;
		if (strcmp(s, "startup")) {
			ignore(a, "%s (type %s)", field,
			       shown(s, k, sizeof(k)));
			return 0;
		}
	}
	if (is_null(path)) {
		ignore(a, "%s (no path)", field);
		return 0;
	}
	for (i = 0; i < jnode_obj_len(c); i++) {
		const struct jnode *ck = jnode_obj_key(c, i);
		const struct jnode *cv = jnode_obj_val(c, i);
		const char *key = ck->str;

		snprintf(sub, sizeof(sub), "%s.%s", field,
			 key_text(ck, k, sizeof(k)));
		if (is_null(cv) || !strcmp(key, "type") ||
		    !strcmp(key, "name") || !strcmp(key, "description"))
			continue;
		if (!strcmp(key, "path")) {
			if (get_string(a, cv, sub, &s) < 0)
				return -1;
			if (!path_ok(s) || strlen(s) > 4096)
				return at(a, cv, "'%s' must start with '/' and "
					  "have no spaces", sub);
			free(m->health_path);
			m->health_path = xstrdup(s);
		} else if (!strcmp(key, "content")) {
			if (get_string(a, cv, sub, &s) < 0)
				return -1;
			if (strlen(s) > 4096)
				return at(a, cv, "'%s' is too long", sub);
			free(m->health_content);
			m->health_content = *s ? xstrdup(s) : NULL;
		} else if (!strcmp(key, "attempts")) {
			if (jnode_int(cv, 1, 1000, &attempts) < 0)
				return at(a, cv, "'%s' must be a whole number "
					  "from 1 to 1000", sub);
			timing = 1;
		} else if (!strcmp(key, "timeout")) {
			if (get_seconds(a, cv, sub, &attempt_ms) < 0)
				return -1;
			timing = 1;
		} else if (!strcmp(key, "wait")) {
			if (get_seconds(a, cv, sub, &wait_ms) < 0)
				return -1;
			timing = 1;
		} else if (!strcmp(key, "initialDelay")) {
			if (get_seconds(a, cv, sub, &delay_ms) < 0)
				return -1;
			timing = 1;
		} else {
			ignore(a, "%s", sub);
		}
	}
	m->health_attempts = (int)attempts;
	m->health_attempt_timeout_ms = attempt_ms;
	m->health_wait_ms = wait_ms;
	m->health_initial_delay_ms = delay_ms;
	if (timing) {
		long n = attempts < 0 ? APPJSON_ATTEMPTS : attempts;
		long one = attempt_ms < 0 ? APPJSON_TIMEOUT_S * 1000L :
			   attempt_ms;
		long between = wait_ms < 0 ? APPJSON_WAIT_S * 1000L : wait_ms;
		double total = (delay_ms < 0 ? 0 : delay_ms) +
			       (double)n * (double)(one + between);

		m->health_timeout_ms = total < 100 ? 100 :
				       total > 3600000 ? 3600000 : (long)total;
	}
	return 1;
}

static int read_healthchecks(struct aj *a, const struct jnode *n)
{
	size_t i, j;
	char k[80];
	int taken = 0;

	if (want_object(a, n, "healthchecks") < 0)
		return -1;
	for (i = 0; i < jnode_obj_len(n); i++) {
		const struct jnode *key = jnode_obj_key(n, i);
		const struct jnode *v = jnode_obj_val(n, i);

		if (is_null(v))
			continue;
		if (strcmp(key->str, "web")) {
			ignore(a, "healthchecks.%s",
			       key_text(key, k, sizeof(k)));
			continue;
		}
		if (v->kind != JNODE_ARRAY)
			return at(a, v, "'healthchecks.web' must be a list, "
				  "not %s", jnode_kind_name(v));
		for (j = 0; j < v->nkids; j++) {
			int r;

			if (taken) {
				ignore(a, "healthchecks.web[%zu] (berth runs "
				       "one check)", j);
				continue;
			}
			r = read_check(a, v->kids[j], j);
			if (r < 0)
				return -1;
			taken = r;
		}
	}
	return 0;
}

/* ---- cron ---- */

static int read_cron(struct aj *a, const struct jnode *n)
{
	struct manifest *m = a->m;
	size_t i, j;
	char k[80];

	if (n->kind != JNODE_ARRAY)
		return at(a, n, "'cron' must be a list, not %s",
			  jnode_kind_name(n));
	if (n->nkids > MAX_CRONS)
		return at(a, n, "'cron' has too many entries (at most %d)",
			  MAX_CRONS);
	for (i = 0; i < n->nkids; i++) {
		const struct jnode *e = n->kids[i];
		const struct jnode *sched = jnode_obj_get(e, "schedule");
		struct cron_spec c;
		char field[32], sub[128];
		const char *s;

		snprintf(field, sizeof(field), "cron[%zu]", i);
		if (want_object(a, e, field) < 0)
			return -1;
		memset(&c, 0, sizeof(c));
		if (is_null(sched))
			return at(a, e, "'%s' needs a 'schedule'", field);
		if (is_null(jnode_obj_get(e, "command")))
			return at(a, e, "'%s' needs a 'command'", field);
		for (j = 0; j < jnode_obj_len(e); j++) {
			const struct jnode *ck = jnode_obj_key(e, j);
			const struct jnode *cv = jnode_obj_val(e, j);

			snprintf(sub, sizeof(sub), "%s.%s", field,
				 key_text(ck, k, sizeof(k)));
			if (is_null(cv))
				continue;
			if (!strcmp(ck->str, "command")) {
				if (get_command(a, cv, sub, &c.cmd) < 0)
					goto fail;
			} else if (!strcmp(ck->str, "schedule")) {
				if (get_string(a, cv, sub, &s) < 0)
					goto fail;
				if (cron_parse(&c.expr, s) < 0) {
					char *why = xstrdup(error_last());

					at(a, cv, "'%s': %s", sub, why);
					free(why);
					goto fail;
				}
				free(c.schedule);
				c.schedule = xstrdup(s);
			} else if (!strcmp(ck->str, "maintenance")) {
				if (cv->kind != JNODE_BOOL) {
					at(a, cv, "'%s' must be true or false",
					   sub);
					goto fail;
				}
				c.paused = cv->boolean;
			} else if (!strcmp(ck->str, "concurrency_policy")) {
				if (get_string(a, cv, sub, &s) < 0)
					goto fail;
				if (!strcmp(s, "replace")) {
					c.replace = 1;
				} else if (!strcmp(s, "allow")) {
					ignore(a, "%s: allow (a run still "
					       "going is never started again)",
					       sub);
				} else if (strcmp(s, "forbid")) {
					at(a, cv, "'%s' must be forbid, "
					   "replace or allow", sub);
					goto fail;
				}
			} else {
				ignore(a, "%s", sub);
			}
		}
		c.origin = xasprintf("%s %s", a->fname, field);
		m->crons = xrealloc(m->crons,
				    (m->ncrons + 1) * sizeof(*m->crons));
		m->crons[m->ncrons++] = c;
		continue;
fail:
		free(c.cmd);
		free(c.schedule);
		return -1;
	}
	return 0;
}

/* ---- buildpacks ---- */

static int read_buildpacks(struct aj *a, const struct jnode *n)
{
	size_t i, j;
	char k[80];

	if (n->kind != JNODE_ARRAY)
		return at(a, n, "'buildpacks' must be a list, not %s",
			  jnode_kind_name(n));
	if (n->nkids > BUILDPACK_LIST_MAX)
		return at(a, n, "'buildpacks' has more than %d entries",
			  BUILDPACK_LIST_MAX);
	for (i = 0; i < n->nkids; i++) {
		const struct jnode *e = n->kids[i];
		const struct jnode *url = jnode_obj_get(e, "url");
		struct buildpack_spec bs;
		char field[40];
		const char *s;

		snprintf(field, sizeof(field), "buildpacks[%zu]", i);
		if (want_object(a, e, field) < 0)
			return -1;
		if (is_null(url))
			return at(a, e, "'%s' needs a 'url'", field);
		for (j = 0; j < jnode_obj_len(e); j++)
			if (strcmp(jnode_obj_key(e, j)->str, "url"))
				ignore(a, "%s.%s", field,
				       key_text(jnode_obj_key(e, j), k,
						sizeof(k)));
		if (get_string(a, url, "buildpacks.url", &s) < 0)
			return -1;
		if (buildpack_spec_parse(&bs, s) < 0) {
			char *why = xstrdup(error_last());

			at(a, url, "%s", why);
			free(why);
			return -1;
		}
		buildpack_spec_release(&bs);
		strv_push(&a->m->buildpacks, s);
	}
	return 0;
}

/* ---- the document ---- */

static int is_label(const char *key)
{
	static const char *const labels[] = {
		"name", "description", "keywords", "website", "repository",
		"logo", "success_url",
	};
	size_t i;

	for (i = 0; i < ARRAY_SIZE(labels); i++)
		if (!strcmp(key, labels[i]))
			return 1;
	return 0;
}

int appjson_parse(struct manifest *m, const char *buf, size_t len,
		  const char *fname)
{
	struct jnode *root = NULL;
	struct aj a = { m, fname };
	size_t i;
	char k[80];
	int ret = -1;

	if (json_parse(&root, buf, len, fname) < 0)
		return -1;
	if (root->kind != JNODE_OBJECT) {
		at(&a, root, "expected an object, not %s",
		   jnode_kind_name(root));
		goto out;
	}
	for (i = 0; i < jnode_obj_len(root); i++) {
		const struct jnode *key = jnode_obj_key(root, i);
		const struct jnode *v = jnode_obj_val(root, i);
		const char *name = key->str;
		int r = 0;

		if (is_null(v) || is_label(name))
			continue;
		if (!strcmp(name, "scripts"))
			r = read_scripts(&a, v);
		else if (!strcmp(name, "env"))
			r = read_env(&a, v);
		else if (!strcmp(name, "formation"))
			r = read_formation(&a, v);
		else if (!strcmp(name, "healthchecks"))
			r = read_healthchecks(&a, v);
		else if (!strcmp(name, "cron"))
			r = read_cron(&a, v);
		else if (!strcmp(name, "buildpacks"))
			r = read_buildpacks(&a, v);
		else
			ignore(&a, "%s", key_text(key, k, sizeof(k)));
		if (r < 0)
			goto out;
	}
	ret = 0;
out:
	jnode_free(root);
	return ret;
}
