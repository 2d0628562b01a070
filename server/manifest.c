/* manifest: see manifest.h and docs/manifest.md.  Each parser fills the
 * manifest it is given; on failure the caller releases it. */
#include "manifest.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "appjson.h"
#include "buildpack.h"
#include "cgroup.h"
#include "safefs.h"
#include "ytree.h"
#include "banned.h"

#define MANIFEST_FILE_MAX (1024 * 1024)
#define MAX_PROCS 64
#define MAX_HOSTS 256
#define MAX_SCALE 100
#define VALUE_MAX 4096		/* paths, URLs, names from a manifest */
#define MAX_CRONS 64
#define ENV_FILE_MAX_VARS 4096

/* A value made safe to quote in a one-line message. */
static const char *shown(const char *s, char *out, size_t len)
{
	size_t i;

	for (i = 0; s[i] && i + 4 < len; i++)
		out[i] = (unsigned char)s[i] < 0x20 || s[i] == 0x7f ? '?' : s[i];
	if (s[i]) {
		memcpy(out + i, "...", 3);
		i += 3;
	}
	out[i] = '\0';
	return out;
}

static int at_error(const char *fname, int line, int col, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
static int at_error(const char *fname, int line, int col, const char *fmt, ...)
{
	char msg[900];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	return error_set("%s:%d:%d: %s", fname, line, col, msg);
}

#define node_error(fname, n, ...) at_error(fname, (n)->line, (n)->col, __VA_ARGS__)

void manifest_init(struct manifest *m)
{
	memset(m, 0, sizeof(*m));
	m->health_path = xstrdup("/");
	m->health_timeout_ms = -1;
	m->health_max_status = 499;
	m->drain_ms = -1;
	m->watch_ms = -1;
	m->stop_timeout_ms = -1;
	m->settle_ms = -1;
	m->res_memory = -1;
	m->res_cpu_millis = -1;
	m->res_processes = -1;
	m->health_attempts = -1;
	m->health_attempt_timeout_ms = -1;
	m->health_wait_ms = -1;
	m->health_initial_delay_ms = -1;
}

static void cron_spec_release(struct cron_spec *c)
{
	free(c->schedule);
	free(c->cmd);
	free(c->origin);
}

void manifest_release(struct manifest *m)
{
	size_t i;

	for (i = 0; i < m->nprocs; i++) {
		free(m->procs[i].type);
		free(m->procs[i].cmd);
		strv_release(&m->procs[i].argv);
	}
	free(m->procs);
	free(m->source);
	free(m->release_cmd);
	free(m->health_path);
	strv_release(&m->hosts);
	strv_release(&m->static_hosts);
	free(m->buildpack);
	strv_release(&m->pipeline);
	free(m->static_root);
	strv_release(&m->env);
	free(m->webhook);
	strv_release(&m->buildpacks);
	free(m->predeploy_cmd);
	free(m->postdeploy_cmd);
	free(m->first_deploy_cmd);
	free(m->health_content);
	for (i = 0; i < m->ncrons; i++)
		cron_spec_release(&m->crons[i]);
	free(m->crons);
	for (i = 0; i < m->nformation; i++)
		free(m->formation[i].type);
	free(m->formation);
	strv_release(&m->env_required);
	strv_release(&m->env_generate);
	strv_release(&m->ignored);
	memset(m, 0, sizeof(*m));
}

int host_name_valid(const char *host)
{
	const char *p = host;
	size_t label = 0, total;

	if (!host)
		return 0;
	total = strlen(host);
	if (!total || total > 253)
		return 0;
	if (!strncmp(p, "*.", 2))
		p += 2;
	if (!*p)
		return 0;
	for (; *p; p++) {
		if (*p == '.') {
			/* no empty label, none ending in '-' */
			if (!label || p[-1] == '-')
				return 0;
			label = 0;
			continue;
		}
		if (!isalnum((unsigned char)*p) && *p != '-')
			return 0;
		if (*p == '-' && !label)
			return 0;
		if (++label > 63)
			return 0;
	}
	return label && p[-1] != '-';
}

const struct proc_spec *manifest_proc(const struct manifest *m,
				      const char *type)
{
	size_t i;

	for (i = 0; i < m->nprocs; i++)
		if (!strcmp(m->procs[i].type, type))
			return &m->procs[i];
	return NULL;
}

/* Add a process type (checked by the caller); borrowed pointer back. */
static struct proc_spec *proc_add(struct manifest *m, const char *type)
{
	struct proc_spec *p;

	m->procs = xrealloc(m->procs, (m->nprocs + 1) * sizeof(*m->procs));
	p = &m->procs[m->nprocs++];
	memset(p, 0, sizeof(*p));
	p->type = xstrdup(type);
	p->scale = 1;
	p->order = ORDER_START_FIRST;
	return p;
}

/* ---- Procfile ---- */

/* Length of cmd[0..len) before an inline " #comment" (outside quotes). */
static size_t cut_comment(const char *cmd, size_t len)
{
	char quote = 0;
	size_t i;

	for (i = 0; i < len; i++) {
		char c = cmd[i];

		if (quote == '\'') {
			if (c == '\'')
				quote = 0;
		} else if (quote == '"') {
			if (c == '\\')
				i++;
			else if (c == '"')
				quote = 0;
		} else if (c == '\\') {
			i++;
		} else if (c == '\'' || c == '"') {
			quote = c;
		} else if (c == '#' && (i == 0 || cmd[i - 1] == ' ' || cmd[i - 1] == '\t')) {
			return i;
		}
	}
	return len;
}

int manifest_parse_procfile(struct manifest *m, const char *buf, size_t len,
			    const char *fname)
{
	size_t pos = 0;
	int lineno = 0;
	char tmp[80];

	while (pos < len) {
		const char *line = buf + pos, *nl, *nul;
		size_t l, i, colon, tend, cstart, cend;
		char *type, *cmd;

		lineno++;
		nl = memchr(line, '\n', len - pos);
		l = nl ? (size_t)(nl - line) : len - pos;
		pos += l + (nl ? 1 : 0);
		nul = memchr(line, '\0', l);
		if (nul)
			return at_error(fname, lineno, (int)(nul - line) + 1,
					"NUL byte in line");
		if (l && line[l - 1] == '\r')
			l--;
		for (i = 0; i < l && (line[i] == ' ' || line[i] == '\t'); i++)
			;
		if (i == l || line[i] == '#')
			continue;
		for (colon = i; colon < l && line[colon] != ':'; colon++)
			;
		if (colon == l)
			return at_error(fname, lineno, (int)i + 1,
					"expected 'type: command'");
		for (tend = colon; tend > i && (line[tend - 1] == ' ' ||
						line[tend - 1] == '\t'); tend--)
			;
		type = xstrndup(line + i, tend - i);
		if (!proc_type_valid(type)) {
			at_error(fname, lineno, (int)i + 1,
				 "invalid process type '%s' (use a-z, 0-9, _ and -, at most 32)",
				 shown(type, tmp, sizeof(tmp)));
			free(type);
			return -1;
		}
		for (cstart = colon + 1; cstart < l && (line[cstart] == ' ' ||
							line[cstart] == '\t'); cstart++)
			;
		cend = cstart + cut_comment(line + cstart, l - cstart);
		while (cend > cstart && (line[cend - 1] == ' ' || line[cend - 1] == '\t'))
			cend--;
		if (cend == cstart) {
			at_error(fname, lineno, (int)colon + 1,
				 "process type '%s' has no command", type);
			free(type);
			return -1;
		}
		cmd = xstrndup(line + cstart, cend - cstart);
		if (!strcmp(type, "release")) {
			if (m->release_cmd) {
				at_error(fname, lineno, (int)i + 1,
					 "duplicate process type 'release'");
				goto fail;
			}
			m->release_cmd = cmd;
		} else {
			if (manifest_proc(m, type)) {
				at_error(fname, lineno, (int)i + 1,
					 "duplicate process type '%s'", type);
				goto fail;
			}
			if (m->nprocs >= MAX_PROCS) {
				at_error(fname, lineno, (int)i + 1,
					 "too many process types (at most %d)", MAX_PROCS);
				goto fail;
			}
			proc_add(m, type)->cmd = cmd;
		}
		free(type);
		continue;
fail:
		free(type);
		free(cmd);
		return -1;
	}
	return 0;
}

/* ---- shared YAML value readers ---- */

/* A scalar that is a usable string; else an error naming the field. */
static int get_str(const char **out, const struct ynode *n, const char *fname,
		   const char *field)
{
	if (n->kind != YNODE_SCALAR)
		return node_error(fname, n, "'%s' must be a string, not %s",
				  field, ynode_kind_name(n));
	if (!ynode_is_str(n))
		return node_error(fname, n, "'%s' must not contain NUL bytes", field);
	*out = n->value;
	return 0;
}

/* A string of printable characters without spaces (URLs, names). */
static int get_word(const char **out, const struct ynode *n, const char *fname,
		    const char *field)
{
	const char *s;
	size_t i;

	if (get_str(&s, n, fname, field) < 0)
		return -1;
	if (!*s)
		return node_error(fname, n, "'%s' must not be empty", field);
	if (strlen(s) > VALUE_MAX)
		return node_error(fname, n, "'%s' is too long", field);
	for (i = 0; s[i]; i++)
		if ((unsigned char)s[i] <= 0x20 || s[i] == 0x7f)
			return node_error(fname, n,
					  "'%s' must not contain spaces or control characters",
					  field);
	*out = s;
	return 0;
}

static int get_bool(int *out, const struct ynode *n, const char *fname,
		    const char *field)
{
	int b = ynode_bool(n);

	if (b < 0)
		return node_error(fname, n, "'%s' must be true or false", field);
	*out = b;
	return 0;
}

static int get_ms(long *out, const struct ynode *n, const char *fname,
		  const char *field, long min, long max)
{
	long v = ynode_is_str(n) ? parse_duration_ms(n->value) : -1;

	if (v < 0)
		return node_error(fname, n, "'%s' must be a duration like 2s", field);
	if (v < min || v > max)
		return node_error(fname, n, "'%s' must be from %ldms to %lds",
				  field, min, max / 1000);
	*out = v;
	return 0;
}

static int get_int(int *out, const struct ynode *n, const char *fname,
		   const char *field, long min, long max)
{
	long v = ynode_is_str(n) ? parse_long(n->value, 1L << 30) : -1;

	if (v < min || v > max)
		return node_error(fname, n, "'%s' must be a number from %ld to %ld",
				  field, min, max);
	*out = (int)v;
	return 0;
}

/* A string, or a list of strings: each goes to fn. */
static int each_str(const struct ynode *n, const char *fname, const char *field,
		    int (*fn)(struct manifest *, const struct ynode *,
			      const char *, const char *, const char *),
		    struct manifest *m)
{
	const char *s;
	size_t i;

	if (n->kind == YNODE_MAP)
		return node_error(fname, n, "'%s' must be a list, not a mapping", field);
	if (n->kind == YNODE_SCALAR) {
		if (get_str(&s, n, fname, field) < 0)
			return -1;
		return fn(m, n, s, fname, field);
	}
	for (i = 0; i < n->nkids; i++) {
		if (get_str(&s, n->kids[i], fname, field) < 0)
			return -1;
		if (fn(m, n->kids[i], s, fname, field) < 0)
			return -1;
	}
	return 0;
}

static int add_host(struct manifest *m, const struct ynode *n, const char *host,
		    const char *fname, const char *field)
{
	char tmp[80];
	size_t i;

	if (!host_name_valid(host))
		return node_error(fname, n, "'%s' has an invalid host name '%s'",
				  field, shown(host, tmp, sizeof(tmp)));
	for (i = 0; i < m->static_hosts.n; i++)
		if (!strcasecmp(m->static_hosts.v[i], host))
			return node_error(fname, n, "host '%s' is the static folder's already: a host goes to the web processes or to the folder, not both",
					  shown(host, tmp, sizeof(tmp)));
	for (i = 0; i < m->hosts.n; i++)
		if (!strcasecmp(m->hosts.v[i], host))
			return 0;
	if (m->hosts.n >= MAX_HOSTS)
		return node_error(fname, n, "too many hosts (at most %d)", MAX_HOSTS);
	strv_push(&m->hosts, host);
	return 0;
}

/* A host of the static folder (kept apart until static_hosts_join()). */
static int add_static_host(struct manifest *m, const struct ynode *n,
			   const char *host, const char *fname,
			   const char *field)
{
	char tmp[80];
	size_t i;

	if (!host_name_valid(host))
		return node_error(fname, n, "'%s' has an invalid host name '%s'",
				  field, shown(host, tmp, sizeof(tmp)));
	for (i = 0; i < m->hosts.n; i++)
		if (!strcasecmp(m->hosts.v[i], host))
			return node_error(fname, n, "host '%s' is the web processes' already: a host goes to the web processes or to the folder, not both",
					  shown(host, tmp, sizeof(tmp)));
	for (i = 0; i < m->static_hosts.n; i++)
		if (!strcasecmp(m->static_hosts.v[i], host))
			return 0;
	if (m->hosts.n + m->static_hosts.n >= MAX_HOSTS)
		return node_error(fname, n, "too many hosts (at most %d)", MAX_HOSTS);
	strv_push(&m->static_hosts, host);
	return 0;
}

/* After the file: the static folder's hosts are the app's too, after
 * the web processes' (the first host stays the main one). */
static void static_hosts_join(struct manifest *m)
{
	size_t i;

	for (i = 0; i < m->static_hosts.n; i++)
		strv_push(&m->hosts, m->static_hosts.v[i]);
}

/* A built-in step name, or "hook:NAME" for the app's .berth/hooks/NAME. */
static int step_name_valid(const char *s)
{
	size_t n;

	if (s && !strncmp(s, "hook:", 5))
		s += 5;
	if (!s || s[0] == '.' || s[0] == '-')
		return 0;
	for (n = 0; s[n]; n++)
		if (!(isalnum((unsigned char)s[n]) || s[n] == '_' || s[n] == '-' ||
		      s[n] == '.'))
			return 0;
	return n >= 1 && n <= 64;
}

static int add_step(struct manifest *m, const struct ynode *n, const char *step,
		    const char *fname, const char *field)
{
	char tmp[80];

	if (!step_name_valid(step))
		return node_error(fname, n, "'%s' has an invalid step name '%s'",
				  field, shown(step, tmp, sizeof(tmp)));
	strv_push(&m->pipeline, step);
	return 0;
}

/* A buildpack spec (buildpack.h), its error at the node. */
static int check_buildpack(const struct ynode *n, const char *spec,
			   const char *fname)
{
	struct buildpack_spec bs;

	if (buildpack_spec_parse(&bs, spec) < 0) {
		char *why = xstrdup(error_last());

		node_error(fname, n, "%s", why);
		free(why);
		return -1;
	}
	buildpack_spec_release(&bs);
	return 0;
}

static int add_buildpack(struct manifest *m, const struct ynode *n,
			 const char *spec, const char *fname, const char *field)
{
	(void)field;
	if (check_buildpack(n, spec, fname) < 0)
		return -1;
	if (m->buildpacks.n >= BUILDPACK_LIST_MAX)
		return node_error(fname, n, "more than %d buildpacks",
				  BUILDPACK_LIST_MAX);
	strv_push(&m->buildpacks, spec);
	return 0;
}

/* env: a mapping NAME: value (scalars; null is ""). */
static int read_env(struct manifest *m, const struct ynode *n, const char *fname,
		    const char *field)
{
	size_t i;
	char tmp[80];

	if (n->kind != YNODE_MAP)
		return node_error(fname, n, "'%s' must be a mapping of NAME: value, not %s",
				  field, ynode_kind_name(n));
	for (i = 0; i < ynode_map_len(n); i++) {
		const struct ynode *k = ynode_map_key(n, i), *v = ynode_map_val(n, i);
		const char *val = "";

		if (!ynode_is_str(k) || !env_key_valid(k->value))
			return node_error(fname, k, "'%s' has an invalid variable name '%s'",
					  field, shown(k->value, tmp, sizeof(tmp)));
		if (manifest_env_reserved(k->value))
			return node_error(fname, k, "'%s' cannot set %s (berth sets it for each process)",
					  field, k->value);
		if (!ynode_is_null(v) && get_str(&val, v, fname, field) < 0)
			return -1;
		strv_env_set(&m->env, k->value, val);
	}
	return 0;
}

/*
 * Clean a relative path lexically, against 'base' (a cleaned relative
 * folder or ""): the result may not climb above the bundle root.  For
 * nginx's sake only [A-Za-z0-9._/-] and '+' are allowed.  "" is the root.
 */
static int clean_rel_path(char **out, const char *base, const char *path)
{
	char *joined = *base ? xasprintf("%s/%s", base, path) : xstrdup(path);
	char *res = xmalloc(strlen(joined) + 1), *p, *e;
	size_t n = 0;
	int ret = -1;

	*out = NULL;
	if (*path == '/')
		goto out;
	for (p = joined; *p; p++)
		if (!isalnum((unsigned char)*p) && !strchr("._/-+", *p))
			goto out;
	for (p = joined; *p; p = *e ? e + 1 : e) {
		size_t clen;

		e = strchrnul(p, '/');
		clen = (size_t)(e - p);
		if (!clen || (clen == 1 && p[0] == '.'))
			continue;
		if (clen == 2 && p[0] == '.' && p[1] == '.') {
			if (!n)
				goto out;	/* above the root */
			while (n > 0 && res[n - 1] != '/')
				n--;
			if (n > 0)
				n--;
			continue;
		}
		if (n)
			res[n++] = '/';
		memcpy(res + n, p, clen);
		n += clen;
	}
	res[n] = '\0';
	*out = res;
	res = NULL;
	ret = 0;
out:
	free(joined);
	free(res);
	return ret;
}

static int read_static(struct manifest *m, const struct ynode *n,
		       const char *fname, const char *field, const char *base)
{
	const char *s;
	char *clean;
	char tmp[80];
	size_t i;

	if (n->kind == YNODE_MAP && !strcmp(field, "static")) {
		/* app.yaml: static: {root: public, hosts: [...]} */
		const struct ynode *root = NULL;

		for (i = 0; i < ynode_map_len(n); i++) {
			const struct ynode *k = ynode_map_key(n, i);
			const struct ynode *v = ynode_map_val(n, i);

			if (!strcmp(k->value, "root"))
				root = v;
			else if (!strcmp(k->value, "hosts")) {
				if (!ynode_is_null(v) &&
				    each_str(v, fname, "static.hosts",
					     add_static_host, m) < 0)
					return -1;
			} else
				return node_error(fname, k, "unknown key 'static.%s' (use root and hosts)",
						  shown(k->value, tmp, sizeof(tmp)));
		}
		if (!root || ynode_is_null(root))
			return node_error(fname, n, "'static' needs 'root'");
		return read_static(m, root, fname, "static.root", base);
	}

	if (get_str(&s, n, fname, field) < 0)
		return -1;
	if (!*s || clean_rel_path(&clean, base, s) < 0)
		return node_error(fname, n,
				  "'%s' must be a folder inside the bundle (letters, digits, . _ - + /)",
				  field);
	free(m->static_root);
	m->static_root = *clean ? clean : (free(clean), xstrdup("."));
	return 0;
}

/* ---- app.yaml ---- */

static int read_process(struct manifest *m, const struct ynode *k,
			const struct ynode *v, const char *fname)
{
	struct proc_spec *p;
	const char *type = k->value, *cmd = NULL;
	char field[64], tmp[80];
	size_t i;
	int scale = 1, scale_set = 0;
	enum proc_order order = ORDER_START_FIRST;

	if (!ynode_is_str(k) || !proc_type_valid(type))
		return node_error(fname, k,
				  "invalid process type '%s' (use a-z, 0-9, _ and -, at most 32)",
				  shown(k->value, tmp, sizeof(tmp)));
	snprintf(field, sizeof(field), "processes.%s", type);
	if (v->kind == YNODE_MAP) {
		for (i = 0; i < ynode_map_len(v); i++) {
			const struct ynode *pk = ynode_map_key(v, i);
			const struct ynode *pv = ynode_map_val(v, i);
			char sub[96];

			snprintf(sub, sizeof(sub), "%s.%s", field, pk->value);
			if (!strcmp(pk->value, "command")) {
				if (get_str(&cmd, pv, fname, sub) < 0)
					return -1;
			} else if (!strcmp(pk->value, "scale")) {
				if (get_int(&scale, pv, fname, sub, 0, MAX_SCALE) < 0)
					return -1;
				scale_set = 1;
			} else if (!strcmp(pk->value, "order")) {
				if (ynode_is_str(pv) && !strcmp(pv->value, "start-first"))
					order = ORDER_START_FIRST;
				else if (ynode_is_str(pv) && !strcmp(pv->value, "stop-first"))
					order = ORDER_STOP_FIRST;
				else
					return node_error(fname, pv,
							  "'%s' must be start-first or stop-first",
							  sub);
			} else {
				return node_error(fname, pk, "unknown key '%s' in '%s'",
						  shown(pk->value, tmp, sizeof(tmp)), field);
			}
		}
		if (!cmd)
			return node_error(fname, v, "'%s' needs a 'command'", field);
	} else if (get_str(&cmd, v, fname, field) < 0) {
		return -1;
	}
	while (*cmd == ' ' || *cmd == '\t')
		cmd++;
	if (!*cmd)
		return node_error(fname, v, "'%s' has an empty command", field);
	if (!strcmp(type, "release")) {
		if (m->release_cmd)
			return node_error(fname, k, "'release' is set twice");
		m->release_cmd = xstrdup(cmd);
		return 0;
	}
	if (manifest_proc(m, type))
		return node_error(fname, k, "duplicate process type '%s'", type);
	if (m->nprocs >= MAX_PROCS)
		return node_error(fname, k, "too many process types (at most %d)",
				  MAX_PROCS);
	p = proc_add(m, type);
	p->cmd = xstrdup(cmd);
	p->scale = scale;
	p->scale_set = scale_set;
	p->order = order;
	return 0;
}

static int read_healthcheck(struct manifest *m, const struct ynode *n,
			    const char *fname)
{
	const struct ynode *path = NULL;
	char tmp[80];
	size_t i;

	if (n->kind == YNODE_SCALAR) {
		path = n;
	} else if (n->kind == YNODE_MAP) {
		for (i = 0; i < ynode_map_len(n); i++) {
			const struct ynode *k = ynode_map_key(n, i);
			const struct ynode *v = ynode_map_val(n, i);

			if (!strcmp(k->value, "path")) {
				path = v;
			} else if (!strcmp(k->value, "timeout")) {
				if (get_ms(&m->health_timeout_ms, v, fname,
					   "healthcheck.timeout", 100, 3600000) < 0)
					return -1;
			} else if (!strcmp(k->value, "max_status")) {
				if (get_int(&m->health_max_status, v, fname,
					    "healthcheck.max_status", 200, 599) < 0)
					return -1;
			} else {
				return node_error(fname, k, "unknown key '%s' in 'healthcheck'",
						  shown(k->value, tmp, sizeof(tmp)));
			}
		}
	} else {
		return node_error(fname, n, "'healthcheck' must be a mapping, not %s",
				  ynode_kind_name(n));
	}
	if (path) {
		const char *s;

		if (get_word(&s, path, fname, "healthcheck.path") < 0)
			return -1;
		if (*s != '/')
			return node_error(fname, path,
					  "'healthcheck.path' must start with '/'");
		free(m->health_path);
		m->health_path = xstrdup(s);
	}
	return 0;
}

/* resources: memory, cpu, processes (each process's cgroup limits). */
static int read_resources(struct manifest *m, const struct ynode *n,
			  const char *fname)
{
	char tmp[80];
	size_t i;

	if (n->kind != YNODE_MAP)
		return node_error(fname, n, "'resources' must be a mapping, not %s",
				  ynode_kind_name(n));
	for (i = 0; i < ynode_map_len(n); i++) {
		const struct ynode *k = ynode_map_key(n, i);
		const struct ynode *v = ynode_map_val(n, i);
		const char *s;

		if (ynode_is_null(v))
			continue;
		if (!strcmp(k->value, "memory")) {
			uint64_t bytes;

			if (get_word(&s, v, fname, "resources.memory") < 0)
				return -1;
			if (cgroup_parse_size(s, &bytes) < 0 ||
			    bytes < 4ULL << 20 || bytes > 1ULL << 50)
				return node_error(fname, v,
						  "'resources.memory' must be a size from 4M, like 256M or 1G");
			m->res_memory = (long long)bytes;
		} else if (!strcmp(k->value, "cpu")) {
			long millis;

			if (get_word(&s, v, fname, "resources.cpu") < 0)
				return -1;
			if (cgroup_parse_cpu(s, &millis) < 0 || millis < 10 ||
			    millis > 1024000)
				return node_error(fname, v,
						  "'resources.cpu' must be a number of cores from 0.01, like 0.5 or 2");
			m->res_cpu_millis = millis;
		} else if (!strcmp(k->value, "processes")) {
			int procs;

			if (get_int(&procs, v, fname, "resources.processes",
				    1, 1000000) < 0)
				return -1;
			m->res_processes = procs;
		} else {
			return node_error(fname, k, "unknown key '%s' in 'resources'",
					  shown(k->value, tmp, sizeof(tmp)));
		}
	}
	return 0;
}

static int read_app_key(struct manifest *m, const struct ynode *k,
			const struct ynode *v, const char *fname)
{
	const char *key = k->value, *s;
	char tmp[80];
	size_t i;

	if (ynode_is_null(v))
		return 0;	/* "key:" with no value: as if absent */
	if (!strcmp(key, "processes")) {
		if (v->kind != YNODE_MAP)
			return node_error(fname, v,
					  "'processes' must be a mapping of type: command, not %s",
					  ynode_kind_name(v));
		for (i = 0; i < ynode_map_len(v); i++)
			if (read_process(m, ynode_map_key(v, i), ynode_map_val(v, i),
					 fname) < 0)
				return -1;
		return 0;
	}
	if (!strcmp(key, "release")) {
		if (get_str(&s, v, fname, "release") < 0)
			return -1;
		if (!*s)
			return node_error(fname, v, "'release' has an empty command");
		if (m->release_cmd)
			return node_error(fname, k, "'release' is set twice");
		m->release_cmd = xstrdup(s);
		return 0;
	}
	if (!strcmp(key, "healthcheck"))
		return read_healthcheck(m, v, fname);
	if (!strcmp(key, "resources"))
		return read_resources(m, v, fname);
	if (!strcmp(key, "drain"))
		return get_ms(&m->drain_ms, v, fname, "drain", 0, 3600000);
	if (!strcmp(key, "watch"))
		return get_ms(&m->watch_ms, v, fname, "watch", 0, 3600000);
	if (!strcmp(key, "stop_timeout"))
		return get_ms(&m->stop_timeout_ms, v, fname, "stop_timeout", 0, 3600000);
	if (!strcmp(key, "settle"))
		return get_ms(&m->settle_ms, v, fname, "settle", 0, 600000);
	if (!strcmp(key, "hosts"))
		return each_str(v, fname, "hosts", add_host, m);
	if (!strcmp(key, "postgres"))
		return get_bool(&m->postgres, v, fname, "postgres");
	if (!strcmp(key, "buildpack")) {
		if (get_word(&s, v, fname, "buildpack") < 0 ||
		    check_buildpack(v, s, fname) < 0)
			return -1;
		if (m->buildpacks.n)
			return node_error(fname, k, "use 'buildpack' or 'buildpacks', not both");
		free(m->buildpack);
		m->buildpack = xstrdup(s);
		return 0;
	}
	if (!strcmp(key, "buildpacks")) {
		if (m->buildpack)
			return node_error(fname, k, "use 'buildpack' or 'buildpacks', not both");
		return each_str(v, fname, "buildpacks", add_buildpack, m);
	}
	if (!strcmp(key, "dotenv"))
		return get_bool(&m->dotenv, v, fname, "dotenv");
	if (!strcmp(key, "pipeline"))
		return each_str(v, fname, "pipeline", add_step, m);
	if (!strcmp(key, "static"))
		return read_static(m, v, fname, "static", "");
	if (!strcmp(key, "env"))
		return read_env(m, v, fname, "env");
	if (!strcmp(key, "socket")) {
		if (get_word(&s, v, fname, "socket") < 0)
			return -1;
		if (!strcmp(s, "auto"))
			m->socket = SOCKET_AUTO;
		else if (!strcmp(s, "inherit"))
			m->socket = SOCKET_INHERIT;
		else if (!strcmp(s, "none"))
			m->socket = SOCKET_NONE;
		else
			return node_error(fname, v,
					  "'socket' must be auto, inherit or none");
		return 0;
	}
	if (!strcmp(key, "webhook")) {
		if (get_word(&s, v, fname, "webhook") < 0)
			return -1;
		if (strncmp(s, "http://", 7) && strncmp(s, "https://", 8))
			return node_error(fname, v,
					  "'webhook' must be an http:// or https:// URL");
		free(m->webhook);
		m->webhook = xstrdup(s);
		return 0;
	}
	return node_error(fname, k, "unknown key '%s'", shown(key, tmp, sizeof(tmp)));
}

int manifest_parse_app_yaml(struct manifest *m, const char *buf, size_t len,
			    const char *fname)
{
	struct ynode *root = NULL;
	size_t i;
	int ret = -1;

	if (ytree_parse(&root, buf, len, fname) < 0)
		return -1;
	if (!root || ynode_is_null(root)) {
		ret = 0;	/* an empty app.yaml: all defaults */
		goto out;
	}
	if (root->kind != YNODE_MAP) {
		node_error(fname, root, "expected a mapping of settings, not %s",
			   ynode_kind_name(root));
		goto out;
	}
	for (i = 0; i < ynode_map_len(root); i++)
		if (read_app_key(m, ynode_map_key(root, i), ynode_map_val(root, i),
				 fname) < 0)
			goto out;
	static_hosts_join(m);
	ret = 0;
out:
	ynode_free(root);
	return ret;
}

/* ---- Keter ---- */

struct keter {
	struct manifest *m;
	const char *fname;
	char *absdir;		/* the release root, absolute */
	int webapps, statics, backgrounds;
};

/* exec is relative to config/ and must stay in the bundle. */
static int keter_argv(struct keter *kt, struct strv *argv,
		      const struct ynode *exec, const struct ynode *args)
{
	const char *s;
	char *rel = NULL;
	size_t i;

	if (get_str(&s, exec, kt->fname, "exec") < 0)
		return -1;
	if (!*s || clean_rel_path(&rel, "config", s) < 0 || !*rel) {
		free(rel);
		return node_error(kt->fname, exec,
				  "'exec' must be a path inside the bundle, relative to config/");
	}
	strv_pushf(argv, "%s/%s", kt->absdir, rel);
	free(rel);
	if (!args || ynode_is_null(args))
		return 0;
	if (args->kind != YNODE_SEQ)
		return node_error(kt->fname, args, "'args' must be a list, not %s",
				  ynode_kind_name(args));
	for (i = 0; i < args->nkids; i++) {
		if (get_str(&s, args->kids[i], kt->fname, "args") < 0)
			return -1;
		strv_push(argv, s);
	}
	return 0;
}

/* Keter keys berth accepts and ignores (TLS, middleware, timeouts,
 * restart policy: the engine has its own). */
static int keter_ignored(const char *key)
{
	static const char *const keys[] = {
		"ssl", "forward-env", "connection-time-bound",
		"ensure-alive-time-bound", "middleware", "port-env-vars",
		"requires-secure", "restart-count", "restart-delay-seconds",
		"directory-listing",
	};
	size_t i;

	for (i = 0; i < ARRAY_SIZE(keys); i++)
		if (!strcmp(key, keys[i]))
			return 1;
	return 0;
}

static int keter_plugins(struct keter *kt, const struct ynode *n)
{
	char tmp[80];
	size_t i;

	if (ynode_is_null(n))
		return 0;
	if (n->kind != YNODE_MAP)
		return node_error(kt->fname, n, "'plugins' must be a mapping, not %s",
				  ynode_kind_name(n));
	for (i = 0; i < ynode_map_len(n); i++) {
		const struct ynode *k = ynode_map_key(n, i);

		if (strcmp(k->value, "postgres"))
			return node_error(kt->fname, k, "unknown plugin '%s'",
					  shown(k->value, tmp, sizeof(tmp)));
		if (get_bool(&kt->m->postgres, ynode_map_val(n, i), kt->fname,
			     "plugins.postgres") < 0)
			return -1;
	}
	return 0;
}

/* One process (webapp or background) from a mapping with exec/args/env. */
static int keter_process(struct keter *kt, const struct ynode *map,
			 const char *type, int webapp, int flat)
{
	const struct ynode *exec = NULL, *args = NULL;
	struct proc_spec *p;
	struct strv argv = STRV_INIT;
	char tmp[80];
	size_t i;

	for (i = 0; i < ynode_map_len(map); i++) {
		const struct ynode *k = ynode_map_key(map, i);
		const struct ynode *v = ynode_map_val(map, i);
		const char *key = k->value;

		if (!strcmp(key, "type") || keter_ignored(key))
			continue;
		/* the flat form's other keys, read by keter_flat() */
		if (flat && (!strcmp(key, "plugins") || !strcmp(key, "static-hosts")))
			continue;
		if (!strcmp(key, "exec"))
			exec = v;
		else if (!strcmp(key, "args"))
			args = v;
		else if (!strcmp(key, "env")) {
			if (!ynode_is_null(v) && read_env(kt->m, v, kt->fname, "env") < 0)
				return -1;
		} else if (webapp && (!strcmp(key, "host") || !strcmp(key, "hosts") ||
				      !strcmp(key, "extra-hosts"))) {
			if (!ynode_is_null(v) && each_str(v, kt->fname, key, add_host, kt->m) < 0)
				return -1;
		} else if (webapp && !strcmp(key, "postgres")) {
			if (get_bool(&kt->m->postgres, v, kt->fname, "postgres") < 0)
				return -1;
		} else {
			return node_error(kt->fname, k, "unknown key '%s'",
					  shown(key, tmp, sizeof(tmp)));
		}
	}
	if (!exec)
		return node_error(kt->fname, map, "'%s' needs 'exec'",
				  webapp ? "webapp" : "background");
	if (keter_argv(kt, &argv, exec, args) < 0) {
		strv_release(&argv);
		return -1;
	}
	p = proc_add(kt->m, type);
	p->argv = argv;
	p->scale_set = 1;	/* Keter runs every stanza it is given */
	return 0;
}

static int keter_static(struct keter *kt, const struct ynode *map)
{
	const struct ynode *root = NULL;
	char tmp[80];
	size_t i;

	if (kt->statics++)
		return node_error(kt->fname, map, "only one static-files stanza is supported");
	for (i = 0; i < ynode_map_len(map); i++) {
		const struct ynode *k = ynode_map_key(map, i);
		const struct ynode *v = ynode_map_val(map, i);

		if (!strcmp(k->value, "type") || keter_ignored(k->value))
			continue;
		if (!strcmp(k->value, "root"))
			root = v;
		else if (!strcmp(k->value, "host") || !strcmp(k->value, "hosts")) {
			if (!ynode_is_null(v) &&
			    each_str(v, kt->fname, k->value, add_static_host,
				     kt->m) < 0)
				return -1;
		} else
			return node_error(kt->fname, k, "unknown key '%s'",
					  shown(k->value, tmp, sizeof(tmp)));
	}
	if (!root)
		return node_error(kt->fname, map, "'static-files' needs 'root'");
	return read_static(kt->m, root, kt->fname, "root", "config");
}

static int keter_stanza(struct keter *kt, const struct ynode *st)
{
	const struct ynode *type;
	char name[32], tmp[80];

	if (st->kind != YNODE_MAP)
		return node_error(kt->fname, st, "a stanza must be a mapping, not %s",
				  ynode_kind_name(st));
	type = ynode_map_get(st, "type");
	if (!type)
		return node_error(kt->fname, st, "stanza needs a 'type'");
	if (!ynode_is_str(type))
		return node_error(kt->fname, type, "'type' must be a string");
	if (!strcmp(type->value, "webapp")) {
		if (kt->webapps++)
			return node_error(kt->fname, st, "only one webapp stanza is supported");
		return keter_process(kt, st, "web", 1, 0);
	}
	if (!strcmp(type->value, "background")) {
		if (kt->backgrounds >= MAX_PROCS - 1)
			return node_error(kt->fname, st, "too many background stanzas");
		snprintf(name, sizeof(name), "background%d", ++kt->backgrounds);
		return keter_process(kt, st, name, 0, 0);
	}
	if (!strcmp(type->value, "static-files"))
		return keter_static(kt, st);
	if (!strcmp(type->value, "redirect") || !strcmp(type->value, "reverse-proxy"))
		return node_error(kt->fname, type, "stanza type '%s' is not supported",
				  type->value);
	return node_error(kt->fname, type, "unknown stanza type '%s'",
			  shown(type->value, tmp, sizeof(tmp)));
}

/* Keter's older flat form: the webapp's keys at the top. */
static int keter_flat(struct keter *kt, const struct ynode *root)
{
	const struct ynode *exec = ynode_map_get(root, "exec");
	char tmp[80];
	size_t i;

	for (i = 0; i < ynode_map_len(root); i++) {
		const struct ynode *k = ynode_map_key(root, i);
		const struct ynode *v = ynode_map_val(root, i);
		const char *key = k->value;

		if (!strcmp(key, "exec") || !strcmp(key, "args") ||
		    !strcmp(key, "env") || !strcmp(key, "host") ||
		    !strcmp(key, "extra-hosts") || !strcmp(key, "postgres") ||
		    keter_ignored(key))
			continue;
		if (!strcmp(key, "plugins")) {
			if (keter_plugins(kt, v) < 0)
				return -1;
		} else if (!strcmp(key, "static-hosts")) {
			size_t j;

			if (ynode_is_null(v))
				continue;
			if (v->kind != YNODE_SEQ)
				return node_error(kt->fname, v, "'static-hosts' must be a list");
			for (j = 0; j < v->nkids; j++) {
				if (v->kids[j]->kind != YNODE_MAP)
					return node_error(kt->fname, v->kids[j],
							  "'static-hosts' entries must be mappings with host and root");
				if (keter_static(kt, v->kids[j]) < 0)
					return -1;
			}
		} else if (!strcmp(key, "redirects")) {
			return node_error(kt->fname, k, "'redirects' is not supported");
		} else {
			return node_error(kt->fname, k, "unknown key '%s'",
					  shown(key, tmp, sizeof(tmp)));
		}
	}
	if (!exec) {
		if (!kt->statics)
			return node_error(kt->fname, root, "keter.yaml needs 'exec' or 'stanzas'");
		/* static files only: the hosts and postgres still count */
		for (i = 0; i < ynode_map_len(root); i++) {
			const struct ynode *k = ynode_map_key(root, i);
			const struct ynode *v = ynode_map_val(root, i);

			if (ynode_is_null(v))
				continue;
			if (!strcmp(k->value, "args") || !strcmp(k->value, "env"))
				return node_error(kt->fname, k, "'%s' needs 'exec'", k->value);
			if ((!strcmp(k->value, "host") || !strcmp(k->value, "extra-hosts")) &&
			    each_str(v, kt->fname, k->value, add_host, kt->m) < 0)
				return -1;
			if (!strcmp(k->value, "postgres") &&
			    get_bool(&kt->m->postgres, v, kt->fname, "postgres") < 0)
				return -1;
		}
		return 0;
	}
	kt->webapps++;
	return keter_process(kt, root, "web", 1, 1);
}

int manifest_parse_keter(struct manifest *m, const char *buf, size_t len,
			 const char *fname, const char *dir)
{
	struct ynode *root = NULL;
	const struct ynode *stanzas;
	struct keter kt;
	char cwd[4096];
	size_t i;
	int ret = -1;

	memset(&kt, 0, sizeof(kt));
	kt.m = m;
	kt.fname = fname;
	if (!dir || !*dir)
		return error_set("no release folder for '%s'", fname);
	if (*dir == '/') {
		kt.absdir = xstrdup(dir);
	} else {
		if (!getcwd(cwd, sizeof(cwd)))
			return error_setsys("cannot get the current folder");
		kt.absdir = xasprintf("%s/%s", cwd, dir);
	}
	if (ytree_parse(&root, buf, len, fname) < 0)
		goto out;
	if (!root || root->kind != YNODE_MAP) {
		if (root)
			node_error(fname, root, "expected a mapping of settings, not %s",
				   ynode_kind_name(root));
		else
			error_set("%s: empty file", fname);
		goto out;
	}
	stanzas = ynode_map_get(root, "stanzas");
	if (!stanzas) {
		if (keter_flat(&kt, root) < 0)
			goto out;
	} else {
		for (i = 0; i < ynode_map_len(root); i++) {
			const struct ynode *k = ynode_map_key(root, i);
			char tmp[80];

			if (!strcmp(k->value, "stanzas"))
				continue;
			if (!strcmp(k->value, "plugins")) {
				if (keter_plugins(&kt, ynode_map_val(root, i)) < 0)
					goto out;
				continue;
			}
			node_error(fname, k, "unknown key '%s'",
				   shown(k->value, tmp, sizeof(tmp)));
			goto out;
		}
		if (stanzas->kind != YNODE_SEQ) {
			node_error(fname, stanzas, "'stanzas' must be a list, not %s",
				   ynode_kind_name(stanzas));
			goto out;
		}
		for (i = 0; i < stanzas->nkids; i++)
			if (keter_stanza(&kt, stanzas->kids[i]) < 0)
				goto out;
		if (!kt.webapps && !kt.backgrounds && !kt.statics) {
			node_error(fname, stanzas, "'stanzas' has nothing to run or serve");
			goto out;
		}
	}
	static_hosts_join(m);
	ret = 0;
out:
	ynode_free(root);
	free(kt.absdir);
	return ret;
}

/* ---- buildpack bin/release ---- */

/* config_vars: NAME: value into m->env where m lacks NAME; the names
 * berth sets itself are skipped. */
static int add_config_vars(struct manifest *m, const struct ynode *vars,
			   const char *fname)
{
	size_t i;
	char tmp[80];

	if (vars->kind != YNODE_MAP)
		return node_error(fname, vars, "'config_vars' must be a mapping of NAME: value, not %s",
				  ynode_kind_name(vars));
	for (i = 0; i < ynode_map_len(vars); i++) {
		const struct ynode *k = ynode_map_key(vars, i);
		const struct ynode *v = ynode_map_val(vars, i);
		const char *val = "";

		if (!ynode_is_str(k) || !env_key_valid(k->value))
			return node_error(fname, k, "'config_vars' has an invalid variable name '%s'",
					  shown(k->value, tmp, sizeof(tmp)));
		if (!ynode_is_null(v) && get_str(&val, v, fname, "config_vars") < 0)
			return -1;
		if (!manifest_env_reserved(k->value) &&
		    strv_env_find(&m->env, k->value) < 0)
			strv_env_set(&m->env, k->value, val);
	}
	return 0;
}

int manifest_parse_release_yaml(struct manifest *m, const char *buf,
				size_t len)
{
	const char *fname = "bin/release";
	struct ynode *root = NULL;
	const struct ynode *types, *vars;
	char tmp[80];
	size_t i;
	int ret = -1;

	if (ytree_parse(&root, buf, len, fname) < 0)
		return -1;
	if (!root || ynode_is_null(root)) {
		ret = 0;
		goto out;
	}
	if (root->kind != YNODE_MAP) {
		node_error(fname, root, "expected a mapping, not %s",
			   ynode_kind_name(root));
		goto out;
	}
	/* other keys (addons, ...) belong to other platforms: ignored */
	types = ynode_map_get(root, "default_process_types");
	if (types && !ynode_is_null(types)) {
		if (types->kind != YNODE_MAP) {
			node_error(fname, types,
				   "'default_process_types' must be a mapping, not %s",
				   ynode_kind_name(types));
			goto out;
		}
		for (i = 0; i < ynode_map_len(types); i++) {
			const struct ynode *k = ynode_map_key(types, i);
			const struct ynode *v = ynode_map_val(types, i);
			const char *cmd;

			if (!ynode_is_str(k) || !proc_type_valid(k->value)) {
				node_error(fname, k, "invalid process type '%s'",
					   shown(k->value, tmp, sizeof(tmp)));
				goto out;
			}
			if (ynode_is_null(v))
				continue;
			if (get_str(&cmd, v, fname, "default_process_types") < 0)
				goto out;
			if (!*cmd)
				continue;
			/* the app's own Procfile or app.yaml wins */
			if (!strcmp(k->value, "release")) {
				if (!m->release_cmd)
					m->release_cmd = xstrdup(cmd);
				continue;
			}
			if (manifest_proc(m, k->value))
				continue;
			if (m->nprocs >= MAX_PROCS) {
				node_error(fname, k, "too many process types (at most %d)",
					   MAX_PROCS);
				goto out;
			}
			proc_add(m, k->value)->cmd = xstrdup(cmd);
		}
	}
	vars = ynode_map_get(root, "config_vars");
	if (vars && !ynode_is_null(vars) &&
	    add_config_vars(m, vars, fname) < 0)
		goto out;
	ret = 0;
out:
	ynode_free(root);
	return ret;
}

int manifest_parse_buildpack_config(struct manifest *m, const char *buf,
				    size_t len, const char *fname)
{
	struct ynode *root = NULL;
	char tmp[80];
	size_t i;
	int ret = -1;

	if (ytree_parse(&root, buf, len, fname) < 0)
		return -1;
	if (!root || ynode_is_null(root)) {
		ret = 0;
		goto out;
	}
	if (root->kind != YNODE_MAP) {
		node_error(fname, root, "expected a mapping, not %s",
			   ynode_kind_name(root));
		goto out;
	}
	for (i = 0; i < ynode_map_len(root); i++) {
		const struct ynode *k = ynode_map_key(root, i);
		const struct ynode *v = ynode_map_val(root, i);

		if (strcmp(k->value, "config_vars")) {
			node_error(fname, k, "unknown key '%s'",
				   shown(k->value, tmp, sizeof(tmp)));
			goto out;
		}
		if (!ynode_is_null(v) && add_config_vars(m, v, fname) < 0)
			goto out;
	}
	ret = 0;
out:
	ynode_free(root);
	return ret;
}

/* ---- KEY=VALUE files: Piku's ENV, .env ---- */

static int env_file_error(const char *fname, int line, size_t col,
			  const char *msg)
{
	return error_set("%s:%d:%zu: %s", fname, line, col + 1, msg);
}

/*
 * A '$' reference at v[0] (of n chars): $NAME or ${NAME} naming a key set
 * earlier in this file (vars) is replaced by its value; anything else is
 * kept as written.  Returns the number of chars used.
 */
static size_t expand_one(struct buf *out, const char *v, size_t n,
			 const struct strv *vars)
{
	size_t start, end, next;
	long at = -1;
	char *name;

	if (n >= 2 && v[1] == '{') {
		const char *close = memchr(v + 2, '}', n - 2);

		if (!close) {
			buf_add(out, v, 1);
			return 1;
		}
		start = 2;
		end = (size_t)(close - v);
		next = end + 1;
	} else {
		start = end = 1;
		while (end < n && (isalnum((unsigned char)v[end]) || v[end] == '_'))
			end++;
		next = end;
	}
	name = xstrndup(v + start, end - start);
	if (end > start && env_key_valid(name))
		at = strv_env_find(vars, name);
	if (at >= 0)
		buf_addstr(out, strchr(vars->v[at], '=') + 1);
	else
		buf_add(out, v, next);
	free(name);
	return next;
}

int manifest_parse_env_file(struct manifest *m, const char *buf, size_t len,
			    const char *fname, struct strv *skipped)
{
	struct strv vars = STRV_INIT;
	struct buf val = BUF_INIT;
	size_t pos = 0;
	int lineno = 0, ret = -1;

	while (pos < len) {
		const char *line = buf + pos, *nl = memchr(line, '\n', len - pos);
		size_t l = nl ? (size_t)(nl - line) : len - pos, a = 0, k, v, e;
		char *key = NULL;

		pos += l + (nl ? 1 : 0);
		lineno++;
		if (memchr(line, '\0', l)) {
			env_file_error(fname, lineno, 0, "NUL byte in line");
			goto out;
		}
		if (l && line[l - 1] == '\r')
			l--;
		while (a < l && (line[a] == ' ' || line[a] == '\t'))
			a++;
		if (a == l || line[a] == '#')
			continue;
		if (l - a > 7 && !strncmp(line + a, "export", 6) &&
		    (line[a + 6] == ' ' || line[a + 6] == '\t')) {
			a += 7;
			while (a < l && (line[a] == ' ' || line[a] == '\t'))
				a++;
		}
		for (k = a; k < l && line[k] != '='; k++)
			;
		if (k == l) {
			env_file_error(fname, lineno, a, "expected NAME=value");
			goto out;
		}
		for (e = k; e > a && (line[e - 1] == ' ' || line[e - 1] == '\t'); e--)
			;
		key = xstrndup(line + a, e - a);
		if (!env_key_valid(key)) {
			char tmp[80];

			error_set("%s:%d:%zu: invalid variable name '%s'", fname,
				  lineno, a + 1, shown(key, tmp, sizeof(tmp)));
			free(key);
			goto out;
		}
		for (v = k + 1; v < l && (line[v] == ' ' || line[v] == '\t'); v++)
			;
		buf_reset(&val);
		if (v < l && (line[v] == '"' || line[v] == '\'')) {
			char q = line[v];
			size_t i = v + 1;

			while (i < l && line[i] != q) {
				if (q == '"' && line[i] == '\\' && i + 1 < l) {
					buf_add(&val, line[i + 1] == 'n' ? "\n" :
						&line[i + 1], 1);
					i += 2;
				} else if (q == '"' && line[i] == '$') {
					i += expand_one(&val, line + i, l - i,
							&vars);
				} else {
					buf_add(&val, &line[i++], 1);
				}
			}
			if (i >= l) {
				env_file_error(fname, lineno, v,
					       "quote is not closed");
				free(key);
				goto out;
			}
		} else {
			size_t end = v, i;

			/* an unquoted value ends at " #" (a comment) */
			while (end < l && !(line[end] == '#' && end > v &&
					    (line[end - 1] == ' ' ||
					     line[end - 1] == '\t')))
				end++;
			while (end > v && (line[end - 1] == ' ' ||
					   line[end - 1] == '\t'))
				end--;
			for (i = v; i < end;) {
				if (line[i] == '$')
					i += expand_one(&val, line + i, end - i,
							&vars);
				else
					buf_add(&val, &line[i++], 1);
			}
		}
		if (vars.n >= ENV_FILE_MAX_VARS) {
			env_file_error(fname, lineno, a, "too many variables");
			free(key);
			goto out;
		}
		strv_env_set(&vars, key, val.data ? val.data : "");
		free(key);
	}
	for (pos = 0; pos < vars.n; pos++) {
		char *eq = strchr(vars.v[pos], '=');

		*eq = '\0';
		if (manifest_env_reserved(vars.v[pos])) {
			if (skipped)
				strv_pushf(skipped, "%s: %s", fname, vars.v[pos]);
		} else if (strv_env_find(&m->env, vars.v[pos]) < 0) {
			strv_env_set(&m->env, vars.v[pos], eq + 1);
		}
		*eq = '=';
	}
	ret = 0;
out:
	strv_release(&vars);
	buf_release(&val);
	return ret;
}

/* ---- merging, crons, formation ---- */

static void take_str(char **dst, char **src)
{
	if (!*dst && *src) {
		*dst = *src;
		*src = NULL;
	}
}

void manifest_merge_defaults(struct manifest *m, struct manifest *from)
{
	size_t i;

	take_str(&m->release_cmd, &from->release_cmd);
	take_str(&m->predeploy_cmd, &from->predeploy_cmd);
	take_str(&m->postdeploy_cmd, &from->postdeploy_cmd);
	take_str(&m->first_deploy_cmd, &from->first_deploy_cmd);
	take_str(&m->health_content, &from->health_content);
	take_str(&m->buildpack, &from->buildpack);
	if (!m->static_root && from->static_root)
		for (i = 0; i < from->static_hosts.n; i++)
			strv_push(&m->static_hosts, from->static_hosts.v[i]);
	take_str(&m->static_root, &from->static_root);
	take_str(&m->webhook, &from->webhook);
	if (!strcmp(m->health_path, "/") && from->health_path) {
		free(m->health_path);
		m->health_path = from->health_path;
		from->health_path = NULL;
	}
	if (m->health_timeout_ms < 0)
		m->health_timeout_ms = from->health_timeout_ms;
	if (m->health_attempts < 0)
		m->health_attempts = from->health_attempts;
	if (m->health_attempt_timeout_ms < 0)
		m->health_attempt_timeout_ms = from->health_attempt_timeout_ms;
	if (m->health_wait_ms < 0)
		m->health_wait_ms = from->health_wait_ms;
	if (m->health_initial_delay_ms < 0)
		m->health_initial_delay_ms = from->health_initial_delay_ms;
	if (!m->buildpack && !m->buildpacks.n)
		for (i = 0; i < from->buildpacks.n; i++)
			strv_push(&m->buildpacks, from->buildpacks.v[i]);
	for (i = 0; i < from->env.n; i++) {
		char *eq = strchr(from->env.v[i], '=');

		*eq = '\0';
		if (strv_env_find(&m->env, from->env.v[i]) < 0)
			strv_env_set(&m->env, from->env.v[i], eq + 1);
		*eq = '=';
	}
	for (i = 0; i < from->nprocs; i++) {
		struct proc_spec *p = &from->procs[i];

		if (manifest_proc(m, p->type) || m->nprocs >= MAX_PROCS)
			continue;
		m->procs = xrealloc(m->procs, (m->nprocs + 1) * sizeof(*m->procs));
		m->procs[m->nprocs++] = *p;
		memset(p, 0, sizeof(*p));
	}
	if (from->ncrons) {
		m->crons = xrealloc(m->crons, (m->ncrons + from->ncrons) *
				    sizeof(*m->crons));
		memcpy(m->crons + m->ncrons, from->crons,
		       from->ncrons * sizeof(*m->crons));
		m->ncrons += from->ncrons;
		FREE_AND_NULL(from->crons);
		from->ncrons = 0;
	}
	if (from->nformation) {
		m->formation = xrealloc(m->formation, (m->nformation +
						       from->nformation) *
					sizeof(*m->formation));
		memcpy(m->formation + m->nformation, from->formation,
		       from->nformation * sizeof(*m->formation));
		m->nformation += from->nformation;
		FREE_AND_NULL(from->formation);
		from->nformation = 0;
	}
	for (i = 0; i < from->env_required.n; i++)
		strv_push(&m->env_required, from->env_required.v[i]);
	for (i = 0; i < from->env_generate.n; i++)
		strv_push(&m->env_generate, from->env_generate.v[i]);
	for (i = 0; i < from->ignored.n; i++)
		strv_push(&m->ignored, from->ignored.v[i]);
	if (!m->postgres)
		m->postgres = from->postgres;
	for (i = 0; i < from->hosts.n; i++)
		strv_push(&m->hosts, from->hosts.v[i]);
}

int manifest_take_crons(struct manifest *m, const char *fname)
{
	size_t i = 0;

	while (i < m->nprocs) {
		struct proc_spec *p = &m->procs[i];
		struct cron_spec c;
		int r;

		memset(&c, 0, sizeof(c));
		if (strncmp(p->type, "cron", 4) || !p->cmd) {
			i++;
			continue;
		}
		r = cron_split(&c.expr, &c.schedule, &c.cmd, p->cmd);
		if (r == ERR_NOTFOUND) {
			i++;
			continue;
		}
		if (r < 0) {
			char *why = xstrdup(error_last());

			error_set("%s: process type '%s': %s", fname, p->type,
				  why);
			free(why);
			return -1;
		}
		if (m->ncrons >= MAX_CRONS) {
			cron_spec_release(&c);
			return error_set("%s: too many cron entries (at most %d)",
					 fname, MAX_CRONS);
		}
		c.origin = xasprintf("%s '%s'", fname, p->type);
		m->crons = xrealloc(m->crons, (m->ncrons + 1) * sizeof(*m->crons));
		m->crons[m->ncrons++] = c;
		free(p->type);
		free(p->cmd);
		strv_release(&p->argv);
		memmove(p, p + 1, (m->nprocs - i - 1) * sizeof(*p));
		m->nprocs--;
	}
	return 0;
}

void manifest_apply_formation(struct manifest *m)
{
	size_t i, j;

	for (i = 0; i < m->nformation; i++)
		for (j = 0; j < m->nprocs; j++)
			if (!strcmp(m->procs[j].type, m->formation[i].type) &&
			    !m->procs[j].scale_set) {
				m->procs[j].scale = m->formation[i].quantity;
				m->procs[j].scale_set = 1;
			}
}

/* ---- the loader ---- */

/* By descriptors, never following a link: the release is the app's (a
 * Procfile linked to /etc/shadow is refused, not read as root). */
static int load_file(struct buf *b, const char *dir, const char *name,
		     int *found)
{
	int ret = safefs_read_in(b, dir, name, MANIFEST_FILE_MAX);

	*found = 0;
	if (ret == ERR_NOTFOUND)
		return 0;
	*found = 1;
	if (ret == ERR_TOOBIG)
		return error_set("'%s' is too large (over %d bytes)", name,
				 MANIFEST_FILE_MAX);
	return ret < 0 ? -1 : 0;
}

/* Heroku's and Dokku's rule for Procfile types: with a web type, only
 * web runs (1 process) unless app.json's formation gives a count; other
 * types (a one-off "migrate", a "console", a buildpack's "rake") start at
 * 0 until scaled.  An app without web (a worker-only app) runs each of
 * its types once, or nothing would run at all. */
static void procfile_default_scale(struct manifest *m)
{
	size_t i;

	if (!manifest_proc(m, "web"))
		return;
	for (i = 0; i < m->nprocs; i++)
		if (!m->procs[i].scale_set && strcmp(m->procs[i].type, "web"))
			m->procs[i].scale = 0;
}

/* What sits beside the manifest: app.json, ENV, .env (when asked), the
 * buildpacks' config_vars; then crons out of the process types and
 * app.json's formation onto them.  procs_from names the file the
 * process types came from. */
static int load_extras(struct manifest *m, const char *dir, struct buf *b,
		       const char *procs_from)
{
	int found;

	/* the app's own cron: types first, then app.json's entries */
	if (manifest_take_crons(m, procs_from) < 0)
		return -1;
	if (load_file(b, dir, "app.json", &found) < 0)
		return -1;
	if (found) {
		struct manifest j;
		int r;

		manifest_init(&j);
		r = appjson_parse(&j, b->data ? b->data : "", b->len,
				  "app.json");
		if (r == 0)
			manifest_merge_defaults(m, &j);
		manifest_release(&j);
		if (r < 0)
			return -1;
	}
	if (load_file(b, dir, "ENV", &found) < 0)
		return -1;
	if (found && manifest_parse_env_file(m, b->data ? b->data : "", b->len,
					     "ENV", NULL) < 0)
		return -1;
	if (m->dotenv) {
		if (load_file(b, dir, ".env", &found) < 0)
			return -1;
		if (found && manifest_parse_env_file(m, b->data ? b->data : "",
						     b->len, ".env", NULL) < 0)
			return -1;
	}
	if (load_file(b, dir, MANIFEST_BUILDPACK_CONFIG, &found) < 0)
		return -1;
	if (found && manifest_parse_buildpack_config(m, b->data ? b->data : "",
						     b->len,
						     MANIFEST_BUILDPACK_CONFIG) < 0)
		return -1;
	manifest_apply_formation(m);
	if (procs_from && !strcmp(procs_from, "Procfile"))
		procfile_default_scale(m);
	return 0;
}

int manifest_load(struct manifest *m, const char *dir)
{
	struct buf b = BUF_INIT;
	const char *procs_from = NULL;
	int found, ret = -1;

	if (load_file(&b, dir, "app.yaml", &found) < 0)
		goto out;
	if (found) {
		m->source = xstrdup("app.yaml");
		procs_from = "app.yaml";
		if (manifest_parse_app_yaml(m, b.data ? b.data : "", b.len,
					    "app.yaml") < 0)
			goto out;
		if (!m->nprocs) {
			if (load_file(&b, dir, "Procfile", &found) < 0)
				goto out;
			procs_from = "Procfile";
			if (found && manifest_parse_procfile(m, b.data ? b.data : "",
							     b.len, "Procfile") < 0)
				goto out;
		}
		ret = 0;
		goto out;
	}
	if (load_file(&b, dir, "Procfile", &found) < 0)
		goto out;
	if (found) {
		m->source = xstrdup("Procfile");
		procs_from = "Procfile";
		ret = manifest_parse_procfile(m, b.data ? b.data : "", b.len,
					      "Procfile");
		goto out;
	}
	if (load_file(&b, dir, "config/keter.yaml", &found) < 0)
		goto out;
	if (found) {
		m->source = xstrdup("config/keter.yaml");
		procs_from = "config/keter.yaml";
		ret = manifest_parse_keter(m, b.data ? b.data : "", b.len,
					   "config/keter.yaml", dir);
		goto out;
	}
	error_set("no app.yaml, Procfile or config/keter.yaml in bundle");
out:
	if (ret == 0)
		ret = load_extras(m, dir, &b, procs_from);
	/* a release that runs and serves nothing is a mistake, not a deploy */
	if (ret == 0 && !m->nprocs && !m->static_root && !m->ncrons)
		ret = error_set("%s: no processes to run%s", m->source,
				strcmp(m->source, "app.yaml") ? "" :
				" (no 'processes', no Procfile, no 'static')");
	buf_release(&b);
	return ret;
}
