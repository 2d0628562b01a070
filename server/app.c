/* app: see app.h. */
#include "app.h"

#include <dirent.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "access.h"
#include "appstate.h"
#include "certs.h"
#include "deploy.h"
#include "deployout.h"
#include "domains.h"
#include "engine.h"
#include "isolate.h"
#include "liveroute.h"
#include "log.h"
#include "logger.h"
#include "loop.h"
#include "nginx.h"
#include "release.h"
#include "releases.h"
#include "runs.h"
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
static void app_load_state(struct app *a)
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

static struct app *app_new(struct engine *e, const char *name)
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
	domains_load(a);
	for (pp = &e->apps; *pp && strcmp((*pp)->name, name) < 0;
	     pp = &(*pp)->next)
		;
	a->next = *pp;
	*pp = a;
	return a;
}

static void app_free(struct app *a)
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

static void app_unlink(struct app *a)
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

/* ---------- loading and shutdown ---------- */

int apps_load(struct engine *e)
{
	char *dir = engine_path(e, "apps");
	DIR *dh;
	struct dirent *de;
	struct app *a;

	dh = opendir(dir);
	if (!dh) {
		free(dir);
		return 0;
	}
	while ((de = readdir(dh))) {
		int n;

		if (!app_name_valid(de->d_name))
			continue;
		a = app_new(e, de->d_name);
		app_load_state(a);
		deployout_mark_interrupted(a->dir);
		/* Deploys an engine that died (kill -9) left half-way. */
		n = release_mark_interrupted(a->dir, a->release);
		if (n > 0) {
			log_info("app '%s': %d deploy%s interrupted by the last engine's end",
				 a->name, n, n == 1 ? "" : "s");
			logger_linef(a->log, "berth", "%d deploy%s interrupted by the engine's end",
				     n, n == 1 ? "" : "s");
		}
	}
	closedir(dh);
	free(dir);
	for (a = e->apps; a; a = a->next)
		liveroute_keep(e, a);
	liveroute_forget_others(e);
	for (a = e->apps; a; a = a->next) {
		if (a->release && !a->stopped && !a->unusable)
			app_deploy(e, a->name, DEPLOY_RESTORE, NULL, NULL);
		else if (a->release &&
			 liveroute_state(e, a, ROUTE_STOPPED, 0) < 0)
			log_warnx("%s: %s", a->name, error_last());
	}
	return 0;
}

/*
 * The engine is stopping (e->stopping is set): no process is restarted
 * any more, a waiting deploy is answered, a running one is cut short (its
 * release recorded as interrupted), one already live finishes its
 * retirement at once.  Every process gets TERM, then KILL after the stop
 * timeout.  Called again at exit, where it changes nothing new.
 */
int app_adopt(struct engine *e, const char *name, struct client *c)
{
	struct app *a;

	if (app_find(e, name))
		return error_set("app '%s' already exists", name);
	a = app_new(e, name);
	app_load_state(a);
	if (a->release && !a->stopped)
		app_deploy(e, a->name, DEPLOY_RESTORE, NULL, c);
	else if (c)
		client_ok(c);
	return 0;
}

void apps_shutdown(struct engine *e)
{
	struct app *a;
	long timeout = e->cfg->stop_timeout_ms;

	for (a = e->apps; a; a = a->next) {
		if (a->waiting)
			deploy_drop_waiting(a, "the engine is stopping: the deploy of '%s' did not start",
					    a->name);
		if (!a->shutdown_said && (a->live || a->deploy)) {
			a->shutdown_said = 1;
			logger_linef(a->log, "berth", "stopping with the engine");
		}
		loop_del_timer(e->loop, a->retry_timer);
		a->retry_timer = 0;
		deploy_shutdown(a, timeout);
		stop_run(a->live, timeout);
	}
}

void apps_free(struct engine *e)
{
	struct app *a;

	while ((a = e->apps)) {
		e->apps = a->next;
		deploy_app_free(a);
		if (a->rm_client)
			client_unref(a->rm_client);
		run_free(a->live);
		loop_del_timer(e->loop, a->retry_timer);
		app_free(a);
	}
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

/* Delete every trace of an app whose processes are gone. */
void app_remove_now(struct app *a)
{
	struct engine *e = a->eng;
	char *p;

	restore_retry_cancel(a);
	if (e->nginx && nginx_app_remove(e->nginx, a->name) < 0)
		log_warnx("%s", error_last());
	certs_app_removed(e->certs, a->name);
	p = engine_path(e, "run/%s.static", a->name);
	unlink(p);
	free(p);
	if (a->live) {
		run_remove_dirs(a->live);
		run_free(a->live);
		a->live = NULL;
	}
	p = engine_path(e, "cache/%s", a->name);
	rm_rf(p);
	free(p);
	p = engine_path(e, "logs/%s", a->name);
	logger_free(a->log);
	a->log = NULL;
	rm_rf(p);
	free(p);
	if (rm_rf(a->dir) < 0)
		log_warnx("%s", error_last());
	if (isolate_remove_app(e->iso, a->name) < 0)
		log_warnx("%s", error_last());
	access_forget(e->cfg->root, a->name);
	app_unlink(a);
	app_free(a);
}

int app_has_database(const struct app *a)
{
	return strv_env_get(&a->env, "DATABASE_URL") != NULL;
}
