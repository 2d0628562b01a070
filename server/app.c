/* app: see app.h. */
#include "app.h"

#include <dirent.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "appstate.h"
#include "engine.h"
#include "log.h"
#include "logger.h"
#include "loop.h"
#include "release.h"
#include "banned.h"

struct app *app_find(struct engine *e, const char *name)
{
	struct app *a;

	for (a = e->apps; a; a = a->next)
		if (!strcmp(a->name, name) && !a->removing)
			return a;
	return NULL;
}

/* The count of a process type: its "type=N" in scale, else the manifest's. */
int scale_of(const struct strv *scale, const struct proc_spec *spec)
{
	size_t i, k = strlen(spec->type);

	for (i = 0; i < scale->n; i++)
		if (!strncmp(scale->v[i], spec->type, k) &&
		    scale->v[i][k] == '=')
			return (int)parse_long(scale->v[i] + k + 1, 100);
	return spec->scale;
}

/* "type=N" entries of changes replace those of the same type in scale. */
void scale_merge(struct strv *scale, const struct strv *changes)
{
	size_t i, tl;
	long k;

	for (i = 0; i < changes->n; i++) {
		tl = strcspn(changes->v[i], "=");
		for (k = (long)scale->n - 1; k >= 0; k--)
			if (!strncmp(scale->v[k], changes->v[i], tl) &&
			    scale->v[k][tl] == '=') {
				free(scale->v[k]);
				memmove(&scale->v[k], &scale->v[k + 1],
					(scale->n - (size_t)k) * sizeof(char *));
				scale->n--;
			}
		strv_push(scale, changes->v[i]);
	}
}

/* ---------- state files ---------- */

int app_save(struct app *a)
{
	struct buf b = BUF_INIT;
	struct appstate st;
	char *path;
	int ret;

	/* A state file we could not read stays as it is, for whoever
	 * looks into it, until a deploy of the app goes live. */
	if (a->unusable)
		return 0;
	appstate_init(&st);
	st.release = a->release;
	st.next = a->next_release;
	st.stopped = a->stopped;
	st.scale = a->scale;		/* borrowed: not released below */
	st.slots = a->slots;
	st.nslots = a->nslots;
	st.result = a->last_result;
	st.reason = a->note;
	appstate_render(&st, &b);
	path = xasprintf("%s/state", a->dir);
	ret = write_file_atomic(path, b.data, b.len, 0640);
	if (ret < 0)
		log_warnx("%s", error_last());
	buf_release(&b);
	free(path);
	return ret;
}

int env_save(struct app *a)
{
	char *path = xasprintf("%s/env", a->dir);
	int ret = env_file_write(path, &a->env);

	free(path);
	return ret;
}
void app_set_note(struct app *a, const char *fmt, ...)
{
	va_list ap;
	char *p;

	free(a->note);
	a->note = NULL;
	if (!fmt)
		return;
	va_start(ap, fmt);
	a->note = xvasprintf(fmt, ap);
	va_end(ap);
	/* one line, as the state file keeps it */
	a->note[strcspn(a->note, "\n")] = '\0';
	for (p = a->note; *p; p++)
		if ((unsigned char)*p < 0x20)
			*p = ' ';
}

/* The app's state and config from disk.  A state file it cannot use
 * leaves the app empty and marked unusable, with the reason. */
void app_load_state(struct app *a)
{
	struct buf b = BUF_INIT;
	struct appstate st;
	char *path = xasprintf("%s/state", a->dir);
	int *nums = NULL;
	size_t i, n;

	appstate_init(&st);
	if (!path_exists(path)) {
		/* made by a push or "create": no release yet */
	} else if (read_file(&b, path, APPSTATE_MAX) < 0) {
		a->unusable = 1;
		app_set_note(a, "cannot use its state: %s", error_last());
	} else if (appstate_parse(&st, b.data, b.len) < 0) {
		a->unusable = 1;
		app_set_note(a, "cannot use apps/%s/state: %s", a->name,
			     error_last());
	} else {
		a->release = st.release;
		a->next_release = st.next;
		a->stopped = st.stopped;
		a->scale = st.scale;
		memset(&st.scale, 0, sizeof(st.scale));
		a->slots = st.slots;
		a->nslots = st.nslots;
		st.slots = NULL;
		for (i = 0; i < a->nslots; i++)
			ports_mark(&a->eng->ports, a->slots[i]);
		a->last_result = st.result;
		a->note = st.reason;
		st.result = st.reason = NULL;
	}
	appstate_release(&st);
	buf_release(&b);
	if (a->unusable)
		log_warnx("app '%s': %s", a->name, a->note);
	/* Numbers are never handed out twice, whatever the file said. */
	n = release_list(a->dir, &nums);
	if (n && nums[n - 1] > a->next_release)
		a->next_release = nums[n - 1];
	free(nums);
	free(path);
	path = xasprintf("%s/env", a->dir);
	if (env_file_read(path, &a->env) < 0)
		log_warnx("app '%s': %s", a->name, error_last());
	free(path);
}

/* ---------- app objects ---------- */

struct app *app_new(struct engine *e, const char *name)
{
	struct app *a = xcalloc(1, sizeof(*a)), **pp;
	char *logdir;

	a->eng = e;
	a->name = xstrdup(name);
	a->dir = engine_path(e, "apps/%s", name);
	logdir = engine_path(e, "logs/%s", name);
	a->log = logger_open(logdir, e->cfg->log_max_bytes);
	if (!a->log)
		log_warnx("%s", error_last());
	free(logdir);
	for (pp = &e->apps; *pp && strcmp((*pp)->name, name) < 0;
	     pp = &(*pp)->next)
		;
	a->next = *pp;
	*pp = a;
	return a;
}

void app_free(struct app *a)
{
	size_t i;

	for (i = 0; i < a->nslots; i++)
		ports_put(&a->eng->ports, a->slots[i]);
	logger_free(a->log);
	strv_release(&a->scale);
	strv_release(&a->env);
	strv_release(&a->domains);
	free(a->slots);
	free(a->last_result);
	free(a->note);
	free(a->name);
	free(a->dir);
	free(a);
}

void app_unlink(struct app *a)
{
	struct app **pp;

	for (pp = &a->eng->apps; *pp; pp = &(*pp)->next) {
		if (*pp == a) {
			*pp = a->next;
			return;
		}
	}
}

/* A new app: its folders, its state, its log.  Not while an app of that
 * name is still being removed (its folders are going). */
int app_make(struct engine *e, const char *name, struct app **out)
{
	struct app *a;
	char *rel;

	for (a = e->apps; a; a = a->next)
		if (!strcmp(a->name, name))
			return error_set("app '%s' is being removed; try again when it is gone",
					 name);
	rel = engine_path(e, "apps/%s/releases", name);
	if (mkdir_p(rel, 0750) < 0) {
		free(rel);
		return -1;
	}
	free(rel);
	a = app_new(e, name);
	app_save(a);
	*out = a;
	return 0;
}

/* 1 while any app process runs or a deploy is still ending. */
int apps_any_running(struct engine *e)
{
	struct app *a;
	struct proc *p;

	for (a = e->apps; a; a = a->next) {
		if (a->deploy)
			return 1;
		if (a->live)
			for (p = a->live->procs; p; p = p->next)
				if (p->pid > 0)
					return 1;
	}
	return 0;
}

void apps_kill_leftovers(struct engine *e)
{
	char *run = engine_path(e, "run/");
	size_t runlen = strlen(run);
	DIR *dh = opendir("/proc");
	struct dirent *de;
	char link[64], target[PATH_MAX];
	int killed = 0;

	if (!dh) {
		free(run);
		return;
	}
	while ((de = readdir(dh))) {
		long pid = parse_long(de->d_name, 1L << 30);
		ssize_t n;

		if (pid <= 1 || pid == getpid())
			continue;
		snprintf(link, sizeof(link), "/proc/%ld/cwd", pid);
		n = readlink(link, target, sizeof(target) - 1);
		if (n <= 0)
			continue;
		target[n] = '\0';
		if (strncmp(target, run, runlen))
			continue;
		/* A process of an app from an earlier engine: not ours now. */
		kill(-(pid_t)pid, SIGKILL);
		kill((pid_t)pid, SIGKILL);
		killed++;
	}
	closedir(dh);
	if (killed)
		log_info("killed %d leftover app process%s", killed,
			 killed == 1 ? "" : "es");
	free(run);
}

/* ---------- commands ---------- */

/* No release yet, and the one deploy that made it (a bundle, not a
 * push: a pushed app is "new" until a push goes live) failed. */
static int app_first_deploy_failed(const struct app *a)
{
	char *repo;
	int pushed;

	if (!a->last_result || strcmp(a->last_result, "failed"))
		return 0;
	repo = xasprintf("%s/repo.git", a->dir);
	pushed = path_exists(repo);
	free(repo);
	return !pushed;
}

char *app_url(const struct app *a)
{
	const char *listen = a->eng->cfg->http_listen;
	const char *colon = listen ? strrchr(listen, ':') : NULL;
	const char *port = colon ? colon + 1 : listen;

	if (!port || !*port || !strcmp(port, "80"))
		return xasprintf("http://%s.%s/", a->name, a->eng->cfg->domain);
	return xasprintf("http://%s.%s:%s/", a->name, a->eng->cfg->domain,
			 port);
}

void app_hosts_list(const struct app *a, struct strv *out)
{
	size_t i, k;

	for (i = 0; a->live && i < a->live->m.hosts.n; i++)
		strv_push(out, a->live->m.hosts.v[i]);
	for (i = 0; i < a->domains.n; i++) {
		for (k = 0; k < out->n && strcmp(out->v[k], a->domains.v[i]);
		     k++)
			;
		if (k == out->n)
			strv_push(out, a->domains.v[i]);
	}
}

char *app_host_url(const struct app *a, const char *host)
{
	const char *listen = a->eng->cfg->http_listen;
	const char *colon = listen ? strrchr(listen, ':') : NULL;
	const char *port = colon ? colon + 1 : listen;

	if (!port || !*port || !strcmp(port, "80"))
		return xasprintf("http://%s/", host);
	return xasprintf("http://%s:%s/", host, port);
}

const char *app_status(const struct app *a)
{
	if (a->deploy)
		return "deploying";
	if (a->unusable)
		return "failed";
	if (a->stopped)
		return "stopped";
	if (!a->release)
		return app_first_deploy_failed(a) ? "failed" : "new";
	if (a->live) {
		struct proc *p;

		for (p = a->live->procs; p; p = p->next)
			if (p->state != PROC_UP)
				return "degraded";
		return "running";
	}
	return "down";
}

const char *app_status_word(const struct app *a)
{
	return app_status(a);
}

int app_has_database(const struct app *a)
{
	return strv_env_get(&a->env, "DATABASE_URL") != NULL;
}

void restore_retry_cancel(struct app *a)
{
	loop_del_timer(a->eng->loop, a->retry_timer);
	a->retry_timer = 0;
	a->retry_ms = 0;
}
