/* app: see app.h. */
#include "app.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "access.h"
#include "bundle.h"
#include "config.h"
#include "engine.h"
#include "health.h"
#include "isolate.h"
#include "log.h"
#include "logger.h"
#include "loop.h"
#include "nginx.h"
#include "postgres.h"
#include "reaper.h"
#include "spawn.h"

#define BACKOFF_MIN_MS 1000
#define BACKOFF_MAX_MS 60000
#define BACKOFF_RESET_AFTER_MS 30000
#define CONFIRM_TIMEOUT_MS 10000
#define FAIL_STOP_MS 3000

enum deploy_step {
	STEP_WAITING,
	STEP_UNPACK,
	STEP_RELEASE_PHASE,
	STEP_STOP_FIRST,
	STEP_READY,
	STEP_CONFIRM,
	STEP_DRAIN,
	STEP_RETIRE,
	STEP_FAILING,
};

struct check_ctx {
	struct deploy *d;
	size_t i;
};

struct deploy {
	struct engine *e;
	struct app *a;
	struct client *c;
	enum deploy_kind kind;
	enum deploy_step step;
	char *bundle_in;	/* DEPLOY_NEW: where the bundle comes from */
	int move;
	char *commit, *pusher, *buildpack, *source;
	int from_release;
	int number;
	int64_t t0, t_spawn, t_ready;
	struct run *run;	/* the new release's run */
	struct run *old;	/* the live run when we started */
	pid_t helper;		/* unpack or release phase child */
	int helper_fd;
	struct buf helper_out;
	struct health **checks;
	struct check_ctx *check_ctx;
	size_t nchecks, pending;
	uint64_t timer;
	size_t waiting_exits;
	int stopped_first;	/* old stop-first processes were stopped */
	size_t web_count;
	char *error;
	int created_app;
};

static void deploy_next(struct app *a);
static void deploy_fail(struct deploy *d, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static void run_free(struct run *r);
static void app_remove_now(struct app *a);

/* ---------- small helpers ---------- */

static void say(struct deploy *d, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static void say(struct deploy *d, const char *fmt, ...)
{
	va_list ap;
	char *p;

	va_start(ap, fmt);
	p = xvasprintf(fmt, ap);
	va_end(ap);
	if (d->c)
		client_data(d->c, "%s", p);
	if (d->a->log)
		logger_line(d->a->log, "berth", p, strlen(p));
	free(p);
}

static const char *strv_env_get(const struct strv *sv, const char *key)
{
	long i = strv_env_find(sv, key);

	return i < 0 ? NULL : strchr(sv->v[i], '=') + 1;
}

static void strv_env_unset(struct strv *sv, const char *key)
{
	long i = strv_env_find(sv, key);

	if (i < 0)
		return;
	free(sv->v[i]);
	memmove(&sv->v[i], &sv->v[i + 1], (sv->n - (size_t)i) * sizeof(char *));
	sv->n--;
}

struct app *app_find(struct engine *e, const char *name)
{
	struct app *a;

	for (a = e->apps; a; a = a->next)
		if (!strcmp(a->name, name) && !a->removing)
			return a;
	return NULL;
}

static int scale_of(const struct app *a, const struct proc_spec *spec)
{
	size_t i, k = strlen(spec->type);

	for (i = 0; i < a->scale.n; i++)
		if (!strncmp(a->scale.v[i], spec->type, k) &&
		    a->scale.v[i][k] == '=')
			return (int)parse_long(a->scale.v[i] + k + 1, 100);
	return spec->scale;
}

/* ---------- state files ---------- */

static int app_save(struct app *a)
{
	struct buf b = BUF_INIT;
	char *path = xasprintf("%s/state", a->dir);
	size_t i;
	int ret;

	buf_addf(&b, "release %d\nnext %d\nstopped %d\n", a->release,
		 a->next_release, a->stopped);
	for (i = 0; i < a->scale.n; i++)
		buf_addf(&b, "scale %s\n", a->scale.v[i]);
	for (i = 0; i < a->nslots; i++)
		buf_addf(&b, "slot %d\n", a->slots[i]);
	if (a->last_result)
		buf_addf(&b, "result %s\n", a->last_result);
	ret = write_file_atomic(path, b.data, b.len, 0640);
	if (ret < 0)
		log_warnx("%s", error_last());
	buf_release(&b);
	free(path);
	return ret;
}

static int env_save(struct app *a)
{
	struct buf b = BUF_INIT;
	char *path = xasprintf("%s/env", a->dir);
	size_t i;
	int ret;

	for (i = 0; i < a->env.n; i++)
		buf_addf(&b, "%s\n", a->env.v[i]);
	ret = write_file_atomic(path, b.data ? b.data : "", b.len, 0600);
	buf_release(&b);
	free(path);
	return ret;
}

static void app_load_state(struct app *a)
{
	struct buf b = BUF_INIT;
	char *path = xasprintf("%s/state", a->dir);
	char *line, *save = NULL;

	if (read_file(&b, path, 1 << 20) == 0) {
		for (line = strtok_r(b.data, "\n", &save); line;
		     line = strtok_r(NULL, "\n", &save)) {
			char *val = strchr(line, ' ');
			long v;

			if (!val)
				continue;
			*val++ = '\0';
			v = parse_long(val, 1L << 30);

			if (!strcmp(line, "release") && v >= 0)
				a->release = (int)v;
			else if (!strcmp(line, "next") && v >= 0)
				a->next_release = (int)v;
			else if (!strcmp(line, "stopped") && v >= 0)
				a->stopped = v != 0;
			else if (!strcmp(line, "scale"))
				strv_push(&a->scale, val);
			else if (!strcmp(line, "slot")) {
				if (v <= 0 || v > 65535)
					continue;
				a->slots = xrealloc(a->slots, (a->nslots + 1) *
						    sizeof(int));
				a->slots[a->nslots++] = (int)v;
				ports_mark(&a->eng->ports, (int)v);
			} else if (!strcmp(line, "result")) {
				free(a->last_result);
				a->last_result = xstrdup(val);
			}
		}
	}
	buf_release(&b);
	free(path);
	path = xasprintf("%s/env", a->dir);
	if (read_file(&b, path, 1 << 20) == 0) {
		save = NULL;
		for (line = strtok_r(b.data, "\n", &save); line;
		     line = strtok_r(NULL, "\n", &save))
			if (strchr(line, '='))
				strv_push(&a->env, line);
	}
	buf_release(&b);
	free(path);
}

static char *release_dir(const struct app *a, int n)
{
	return xasprintf("%s/releases/%d", a->dir, n);
}

/* Release metadata: "key value" lines in releases/N/meta. */
static void meta_write(struct app *a, int n, const char *status,
		       const struct deploy *d, const struct manifest *m)
{
	char *dir = release_dir(a, n), *path = xasprintf("%s/meta", dir);
	struct buf old = BUF_INIT, b = BUF_INIT;
	char stamp[32];
	size_t i;

	if (!d) {
		/* status change only: rewrite the status line */
		if (read_file(&old, path, 1 << 16) == 0) {
			char *line, *save = NULL;

			for (line = strtok_r(old.data, "\n", &save); line;
			     line = strtok_r(NULL, "\n", &save))
				if (strncmp(line, "status ", 7))
					buf_addf(&b, "%s\n", line);
		}
		buf_addf(&b, "status %s\n", status);
	} else {
		time_iso(stamp, sizeof(stamp), time(NULL));
		buf_addf(&b, "number %d\ntime %s\nsource %s\n", n, stamp,
			 d->source ? d->source : "cli");
		if (d->commit)
			buf_addf(&b, "commit %s\n", d->commit);
		if (d->pusher)
			buf_addf(&b, "pusher %s\n", d->pusher);
		if (d->buildpack)
			buf_addf(&b, "buildpack %s\n", d->buildpack);
		if (d->from_release)
			buf_addf(&b, "from %d\n", d->from_release);
		if (m) {
			buf_addstr(&b, "processes");
			for (i = 0; i < m->nprocs; i++)
				buf_addf(&b, " %s", m->procs[i].type);
			buf_addstr(&b, "\n");
		}
		buf_addf(&b, "status %s\n", status);
	}
	if (write_file_atomic(path, b.data, b.len, 0640) < 0)
		log_warnx("%s", error_last());
	buf_release(&old);
	buf_release(&b);
	free(path);
	free(dir);
}

static char *meta_get(const struct app *a, int n, const char *key)
{
	char *dir = release_dir(a, n), *path = xasprintf("%s/meta", dir);
	struct buf b = BUF_INIT;
	char *line, *save = NULL, *val = NULL;
	size_t k = strlen(key);

	if (read_file(&b, path, 1 << 16) == 0) {
		for (line = strtok_r(b.data, "\n", &save); line;
		     line = strtok_r(NULL, "\n", &save))
			if (!strncmp(line, key, k) && line[k] == ' ') {
				free(val);
				val = xstrdup(line + k + 1);
			}
	}
	buf_release(&b);
	free(path);
	free(dir);
	return val;
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
	free(a->slots);
	free(a->last_result);
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

/* ---------- process environment ---------- */

static void build_env(struct strv *env, const struct app *a,
		      const struct run *r, const struct proc *p)
{
	size_t i;
	char *eq;

	strv_push(env, "PATH=/usr/local/bin:/usr/bin:/bin");
	strv_pushf(env, "HOME=%s", r->dir);
	strv_push(env, "LANG=C.UTF-8");
	for (i = 0; i < r->m.env.n; i++) {
		eq = strchr(r->m.env.v[i], '=');
		if (eq) {
			char *k = xstrndup(r->m.env.v[i],
					   (size_t)(eq - r->m.env.v[i]));

			strv_env_set(env, k, eq + 1);
			free(k);
		}
	}
	for (i = 0; i < a->env.n; i++) {
		eq = strchr(a->env.v[i], '=');
		if (eq) {
			char *k = xstrndup(a->env.v[i],
					   (size_t)(eq - a->env.v[i]));

			strv_env_set(env, k, eq + 1);
			free(k);
		}
	}
	/* Keter's Postgres plugin gives PG* variables as well. */
	if (strv_env_get(env, "DATABASE_URL")) {
		char *url = xstrdup(strv_env_get(env, "DATABASE_URL"));

		if (postgres_url_env(url, env) < 0)
			log_warnx("%s: bad DATABASE_URL: %s", a->name,
				  error_last());
		free(url);
	}
	strv_pushf(env, "BERTH_APP=%s", a->name);
	strv_pushf(env, "BERTH_RELEASE=%d", r->number);
	if (p) {
		strv_pushf(env, "BERTH_PROCESS=%s", p->name);
		strv_pushf(env, "DYNO=%s", p->name);
		if (p->port)
			strv_pushf(env, "PORT=%d", p->port);
	}
}

/* ---------- runs and processes ---------- */

static struct proc *proc_new(struct run *r, const struct proc_spec *spec,
			     int index, int port)
{
	struct proc *p = xcalloc(1, sizeof(*p)), **pp;

	p->app = r->app;
	p->run = r;
	p->spec = spec;
	p->index = index;
	p->port = port;
	p->out_fd = -1;
	p->backoff_ms = BACKOFF_MIN_MS;
	p->state = PROC_DEAD;
	snprintf(p->name, sizeof(p->name), "%s.%d", spec->type, index);
	for (pp = &r->procs; *pp; pp = &(*pp)->next)
		;
	*pp = p;
	return p;
}

static int proc_spawn(struct proc *p)
{
	struct strv env = STRV_INIT;
	int ret;

	build_env(&env, p->app, p->run, p);
	ret = proc_start(p, env.v);
	strv_release(&env);
	return ret;
}

static void run_free(struct run *r)
{
	struct proc *p, *next;

	if (!r)
		return;
	for (p = r->procs; p; p = next) {
		next = p->next;
		proc_free(p);
	}
	manifest_release(&r->m);
	free(r->dir);
	free(r);
}

void app_proc_output(struct proc *p, const char *line, size_t len)
{
	if (p->app->log)
		logger_line(p->app->log, p->name, line, len);
	if (p->run->deploy && p->run->deploy->c &&
	    p->run->deploy->step < STEP_CONFIRM) {
		/* Show a starting process's first words to the deployer. */
	}
}

static void on_restart_timer(struct loop *l, void *arg)
{
	struct proc *p = arg;

	p->timer = 0;
	if (proc_spawn(p) < 0) {
		logger_linef(p->app->log, "berth", "cannot restart %s: %s",
			     p->name, error_last());
		p->state = PROC_BACKOFF;
		p->timer = loop_add_timer(l, p->backoff_ms, on_restart_timer, p);
		if (p->backoff_ms < BACKOFF_MAX_MS)
			p->backoff_ms *= 2;
	}
}

void app_proc_crashed(struct proc *p, int status)
{
	struct app *a = p->app;
	struct run *r = p->run;
	char why[64];
	long delay;

	spawn_describe_status(status, why, sizeof(why));
	if (r->deploy && r->deploy->run == r) {
		struct buf tail = BUF_INIT;

		proc_tail(p, &tail);
		deploy_fail(r->deploy, "%s %s while starting%s%s", p->name, why,
			    tail.len ? ", last output:\n" : "",
			    tail.len ? tail.data : "");
		buf_release(&tail);
		return;
	}
	if (!r->supervised) {
		logger_linef(a->log, "berth", "%s %s", p->name, why);
		return;
	}
	if (now_ms() - p->started_ms >= BACKOFF_RESET_AFTER_MS)
		p->backoff_ms = BACKOFF_MIN_MS;
	delay = p->backoff_ms;
	p->restarts++;
	p->state = PROC_BACKOFF;
	logger_linef(a->log, "berth", "%s %s; restarting in %ld ms", p->name,
		     why, delay);
	p->timer = loop_add_timer(a->eng->loop, delay, on_restart_timer, p);
	if (p->backoff_ms < BACKOFF_MAX_MS)
		p->backoff_ms *= 2;
}

/* Stop a set of processes; call done(arg) once all have exited. */
struct stop_group {
	size_t left;
	void (*done)(void *arg);
	void *arg;
};

static void stop_group_exit(struct proc *p, void *arg)
{
	struct stop_group *g = arg;

	p->on_exit = NULL;
	if (--g->left == 0) {
		void (*done)(void *) = g->done;
		void *darg = g->arg;

		free(g);
		done(darg);
	}
}

static void stop_procs(struct proc **ps, size_t n, long timeout_ms,
		       void (*done)(void *arg), void *arg)
{
	struct stop_group *g;
	size_t i;

	if (n == 0) {
		done(arg);
		return;
	}
	g = xcalloc(1, sizeof(*g));
	g->left = n;
	g->done = done;
	g->arg = arg;
	for (i = 0; i < n; i++) {
		ps[i]->on_exit = stop_group_exit;
		ps[i]->on_exit_arg = g;
	}
	for (i = 0; i < n; i++)
		proc_stop(ps[i], timeout_ms);
}

static size_t run_procs(struct run *r, struct proc ***out,
			int (*pick)(const struct proc *, const void *),
			const void *arg)
{
	struct proc *p;
	size_t n = 0;

	*out = NULL;
	if (!r)
		return 0;
	for (p = r->procs; p; p = p->next) {
		if (pick && !pick(p, arg))
			continue;
		*out = xrealloc(*out, (n + 1) * sizeof(**out));
		(*out)[n++] = p;
	}
	return n;
}

/* ---------- deploy ---------- */

static long stop_timeout(const struct deploy *d, const struct run *r)
{
	if (r && r->m.stop_timeout_ms >= 0)
		return r->m.stop_timeout_ms;
	return d->e->cfg->stop_timeout_ms;
}

static void deploy_free(struct deploy *d)
{
	size_t i;

	for (i = 0; i < d->nchecks; i++)
		health_cancel(d->checks[i]);
	free(d->checks);
	free(d->check_ctx);
	loop_del_timer(d->e->loop, d->timer);
	if (d->helper > 0) {
		kill(-d->helper, SIGKILL);
		isolate_end(d->e->iso, d->helper);
		reaper_forget(d->helper);
	}
	if (d->helper_fd >= 0) {
		loop_del_fd(d->e->loop, d->helper_fd);
		close(d->helper_fd);
	}
	buf_release(&d->helper_out);
	if (d->c)
		client_unref(d->c);
	free(d->bundle_in);
	free(d->commit);
	free(d->pusher);
	free(d->buildpack);
	free(d->source);
	free(d->error);
	free(d);
}

static void deploy_finish(struct deploy *d, int ok)
{
	struct app *a = d->a;

	if (d->c) {
		if (ok)
			client_ok(d->c);
		else
			client_error(d->c, "%s", d->error ? d->error :
				     "deploy failed");
	}
	a->deploy = NULL;
	deploy_free(d);
	deploy_next(a);
}

/* After a failure: new processes are gone; clean up and answer. */
static void fail_cleanup(void *arg)
{
	struct deploy *d = arg;
	struct app *a = d->a;
	struct proc **ps = NULL;
	size_t n, i;

	if (d->run) {
		if (rm_rf(d->run->dir) < 0)
			log_warnx("%s", error_last());
		d->run->deploy = NULL;
		run_free(d->run);
		d->run = NULL;
	}
	/* Bring back what we stopped first. */
	if (d->stopped_first && d->old && a->live == d->old) {
		n = run_procs(d->old, &ps, NULL, NULL);
		for (i = 0; i < n; i++)
			if (ps[i]->state == PROC_DEAD && proc_spawn(ps[i]) < 0)
				logger_linef(a->log, "berth", "cannot restart %s: %s",
					     ps[i]->name, error_last());
		free(ps);
	}
	if (d->kind == DEPLOY_NEW && d->number) {
		char *rdir = release_dir(a, d->number);
		char *bundle = xasprintf("%s/bundle.tar.gz", rdir);

		/* Keep the record (releases lists it), not the bundle. */
		unlink(bundle);
		meta_write(a, d->number, "failed", NULL, NULL);
		free(bundle);
		free(rdir);
	}
	free(a->last_result);
	a->last_result = xstrdup("failed");
	app_save(a);
	logger_linef(a->log, "berth", "deploy failed: %s", d->error);
	if (d->created_app && !a->live && a->release == 0 && !a->waiting) {
		char *repo = xasprintf("%s/repo.git", a->dir);

		/* A first deploy that failed leaves no app behind, unless a
		 * push already stored its repository. */
		if (!path_exists(repo)) {
			free(repo);
			if (d->c)
				client_error(d->c, "%s", d->error);
			client_unref(d->c);
			d->c = NULL;
			a->deploy = NULL;
			deploy_free(d);
			app_remove_now(a);
			return;
		}
		free(repo);
	}
	deploy_finish(d, 0);
}

static void deploy_fail(struct deploy *d, const char *fmt, ...)
{
	va_list ap;
	struct proc **ps = NULL;
	size_t i, n;

	if (d->step == STEP_FAILING)
		return;
	d->step = STEP_FAILING;
	va_start(ap, fmt);
	free(d->error);
	d->error = xvasprintf(fmt, ap);
	va_end(ap);
	for (i = 0; i < d->nchecks; i++)
		health_cancel(d->checks[i]);
	d->nchecks = 0;
	FREE_AND_NULL(d->checks);
	FREE_AND_NULL(d->check_ctx);
	loop_del_timer(d->e->loop, d->timer);
	d->timer = 0;
	if (d->helper > 0) {
		kill(-d->helper, SIGKILL);
		isolate_end(d->e->iso, d->helper);
		reaper_forget(d->helper);
		d->helper = 0;
	}
	if (d->helper_fd >= 0) {
		loop_del_fd(d->e->loop, d->helper_fd);
		close(d->helper_fd);
		d->helper_fd = -1;
	}
	n = run_procs(d->run, &ps, NULL, NULL);
	stop_procs(ps, n, FAIL_STOP_MS, fail_cleanup, d);
	free(ps);
}

static size_t list_releases(const struct app *a, int **out);

/* Keep the newest cfg->keep_releases releases; never the live one. */
static void prune_releases(struct app *a)
{
	int *nums;
	size_t n = list_releases(a, &nums), i;
	size_t extra = n > (size_t)a->eng->cfg->keep_releases ?
		n - (size_t)a->eng->cfg->keep_releases : 0;

	for (i = 0; i < n && extra > 0; i++) {
		char *dir;

		if (nums[i] == a->release)
			continue;
		dir = release_dir(a, nums[i]);
		if (rm_rf(dir) < 0)
			log_warnx("%s", error_last());
		free(dir);
		extra--;
	}
	free(nums);
}

static void retire_done(void *arg)
{
	struct deploy *d = arg;
	struct app *a = d->a;
	struct nginx_app na;
	char *static_link = NULL;

	if (d->old) {
		if (rm_rf(d->old->dir) < 0)
			log_warnx("%s", error_last());
		if (d->old->number != d->number || d->kind != DEPLOY_NEW)
			say(d, "-----> Stopped release %d", d->old->number);
		run_free(d->old);
		d->old = NULL;
	}
	/* Fewer web processes than slots: shrink the upstream. */
	if (a->nslots > 2 * d->web_count && d->web_count > 0) {
		size_t keep = 2 * d->web_count, i;

		memset(&na, 0, sizeof(na));
		na.name = a->name;
		na.hosts = d->run->m.hosts.v;
		na.nhosts = d->run->m.hosts.n;
		na.ports = a->slots;
		na.nports = keep;
		if (nginx_app_set(d->e->nginx, &na) == 0) {
			for (i = keep; i < a->nslots; i++)
				ports_put(&d->e->ports, a->slots[i]);
			a->nslots = keep;
			app_save(a);
		}
	}
	free(static_link);
	prune_releases(a);
	say(d, "-----> Release %d of %s is live (%lld ms)", d->number, a->name,
	    (long long)(now_ms() - d->t0));
	deploy_finish(d, 1);
}

static void on_drain_timer(struct loop *l, void *arg)
{
	struct deploy *d = arg;
	struct proc **ps = NULL;
	size_t n;

	d->timer = 0;
	d->step = STEP_RETIRE;
	n = run_procs(d->old, &ps, NULL, NULL);
	stop_procs(ps, n, stop_timeout(d, d->old), retire_done, d);
	free(ps);
}

static int swap_static(struct deploy *d)
{
	struct app *a = d->a;
	char *link = engine_path(d->e, "run/%s.static", a->name);
	char *tmp = xasprintf("%s.new", link);
	char *target = xasprintf("%s/%s", d->run->dir, d->run->m.static_root);
	int ret = 0;

	unlink(tmp);
	if (symlink(target, tmp) < 0 || rename(tmp, link) < 0) {
		ret = error_setsys("cannot switch '%s'", link);
		unlink(tmp);
	}
	free(link);
	free(tmp);
	free(target);
	return ret;
}

static void go_live(struct deploy *d)
{
	struct app *a = d->a;
	long drain;

	if (d->run->m.static_root && d->web_count && swap_static(d) < 0) {
		deploy_fail(d, "%s", error_last());
		return;
	}
	if (d->t_ready && d->e->nginx && (d->web_count || d->run->m.static_root))
		say(d, "-----> Switched nginx (the new release answered through it %lld ms after it was ready)",
		    (long long)(now_ms() - d->t_ready));
	else if (d->web_count || d->run->m.static_root)
		say(d, "-----> Switched nginx");
	d->run->supervised = 1;
	d->run->deploy = NULL;
	if (d->old)
		d->old->supervised = 0;
	a->live = d->run;
	a->release = d->number;
	free(a->last_result);
	a->last_result = xstrdup("ok");
	app_save(a);
	if (d->kind == DEPLOY_NEW)
		meta_write(a, d->number, "deployed", NULL, NULL);
	d->run = NULL;
	d->step = STEP_DRAIN;
	drain = a->live->m.drain_ms >= 0 ? a->live->m.drain_ms :
		d->e->cfg->drain_ms;
	if (!d->old || !d->old->procs)
		drain = 0;
	d->timer = loop_add_timer(d->e->loop, drain, on_drain_timer, d);
}

static void on_confirm(void *arg, const struct health_result *r)
{
	struct check_ctx *cx = arg;
	struct deploy *d = cx->d;

	d->checks[cx->i] = NULL;	/* finished: health.c frees it */
	d->nchecks = 0;
	FREE_AND_NULL(d->checks);
	FREE_AND_NULL(d->check_ctx);
	if (!r->ok) {
		deploy_fail(d, "nginx does not route '%s' to the new release: %s",
			    d->a->name, r->error ? r->error : "no answer");
		return;
	}
	go_live(d);
}

static void confirm(struct deploy *d)
{
	struct health_req req;
	struct proc *p;
	char *url = NULL, *host = NULL, *want = NULL;
	struct health *h;

	d->step = STEP_CONFIRM;
	for (p = d->run->procs; p && !p->port; p = p->next)
		;
	if (!d->e->nginx || (!p && !d->run->m.static_root)) {
		go_live(d);
		return;
	}
	if (!p && d->run->m.static_root && swap_static(d) < 0) {
		deploy_fail(d, "%s", error_last());
		return;
	}
	url = xasprintf("http://%s%s", nginx_http_addr(d->e->nginx),
			d->run->m.health_path ? d->run->m.health_path : "/");
	host = xasprintf("%s.%s", d->a->name, d->e->cfg->domain);
	want = xasprintf("127.0.0.1:%d", p ? p->port : 0);
	memset(&req, 0, sizeof(req));
	req.url = url;
	req.host = host;
	req.max_status = d->run->m.health_max_status;
	req.interval_ms = 10;
	req.timeout_ms = CONFIRM_TIMEOUT_MS;
	if (p) {
		req.want_header = "X-Berth-Upstream";
		req.want_value = want;
	} else {
		/* A static site: its page, not the default server's 404,
		 * once nginx has loaded the new file. */
		req.max_status = 399;
	}
	d->checks = xcalloc(1, sizeof(*d->checks));
	d->check_ctx = xcalloc(1, sizeof(*d->check_ctx));
	d->check_ctx[0].d = d;
	d->check_ctx[0].i = 0;
	h = health_start(&req, on_confirm, &d->check_ctx[0]);
	free(url);
	free(host);
	free(want);
	if (!h) {
		deploy_fail(d, "cannot check through nginx: %s", error_last());
		return;
	}
	d->checks[0] = h;
	d->nchecks = 1;
}

static void on_ready(void *arg, const struct health_result *r)
{
	struct check_ctx *cx = arg;
	struct deploy *d = cx->d;

	d->checks[cx->i] = NULL;	/* finished: health.c frees it */
	if (!r->ok) {
		struct buf tail = BUF_INIT;
		struct proc *p;

		for (p = d->run->procs; p; p = p->next)
			if (p->port)
				proc_tail(p, &tail);
		deploy_fail(d, "not ready after %ld ms: %s%s%s", r->elapsed_ms,
			    r->error ? r->error : "no healthy answer",
			    tail.len ? ", last output:\n" : "",
			    tail.len ? tail.data : "");
		buf_release(&tail);
		return;
	}
	if (--d->pending > 0)
		return;
	FREE_AND_NULL(d->checks);
	FREE_AND_NULL(d->check_ctx);
	d->nchecks = 0;
	d->t_ready = now_ms();
	say(d, "-----> Healthy after %lld ms", (long long)(d->t_ready - d->t_spawn));
	confirm(d);
}

static void on_settle_timer(struct loop *l, void *arg)
{
	struct deploy *d = arg;
	struct proc *p;

	d->timer = 0;
	for (p = d->run->procs; p; p = p->next) {
		if (p->state != PROC_UP) {
			deploy_fail(d, "%s did not stay up", p->name);
			return;
		}
	}
	if (d->run->procs)
		say(d, "-----> Up for %lld ms", (long long)(now_ms() - d->t_spawn));
	confirm(d);
}

/* Which slot of web.i's pair the new process takes: not the old one's. */
static int pick_slot(struct deploy *d, int index)
{
	int a0 = d->a->slots[2 * (index - 1)], a1 = d->a->slots[2 * (index - 1) + 1];
	struct proc *p;

	if (d->old)
		for (p = d->old->procs; p; p = p->next)
			if (p->port && p->index == index &&
			    !strcmp(p->spec->type, "web") && p->pid > 0)
				return p->port == a0 ? a1 : a0;
	return a0;
}

static void spawn_new(void *arg)
{
	struct deploy *d = arg;
	struct run *r = d->run;
	struct proc *p;
	size_t i;
	long timeout;
	int n, k;

	d->step = STEP_READY;
	d->t_spawn = now_ms();
	for (i = 0; i < r->m.nprocs; i++) {
		const struct proc_spec *spec = &r->m.procs[i];

		n = scale_of(d->a, spec);
		for (k = 1; k <= n; k++) {
			int port = 0;

			if (!strcmp(spec->type, "web")) {
				port = pick_slot(d, k);
				if (!port_bindable(port)) {
					deploy_fail(d, "port %d is taken by another program", port);
					return;
				}
			}
			p = proc_new(r, spec, k, port);
			if (port)
				say(d, "-----> Starting %s on port %d", p->name, port);
			else
				say(d, "-----> Starting %s", p->name);
			if (proc_spawn(p) < 0) {
				deploy_fail(d, "cannot start %s: %s", p->name,
					    error_last());
				return;
			}
		}
	}
	timeout = r->m.health_timeout_ms >= 0 ? r->m.health_timeout_ms :
		d->e->cfg->health_timeout_ms;
	d->pending = 0;
	for (p = r->procs; p; p = p->next)
		if (p->port)
			d->pending++;
	if (d->pending == 0) {
		long settle = r->m.settle_ms >= 0 ? r->m.settle_ms :
			d->e->cfg->settle_ms;

		if (!r->procs)
			settle = 0;
		d->timer = loop_add_timer(d->e->loop, settle, on_settle_timer, d);
		return;
	}
	d->checks = xcalloc(d->pending, sizeof(*d->checks));
	d->check_ctx = xcalloc(d->pending, sizeof(*d->check_ctx));
	for (p = r->procs; p; p = p->next) {
		struct health_req req;
		char *url;

		if (!p->port)
			continue;
		url = xasprintf("http://127.0.0.1:%d%s", p->port,
				r->m.health_path ? r->m.health_path : "/");
		memset(&req, 0, sizeof(req));
		req.url = url;
		req.max_status = r->m.health_max_status;
		req.interval_ms = d->e->cfg->health_interval_ms;
		req.timeout_ms = timeout;
		d->check_ctx[d->nchecks].d = d;
		d->check_ctx[d->nchecks].i = d->nchecks;
		d->checks[d->nchecks] = health_start(&req, on_ready,
						     &d->check_ctx[d->nchecks]);
		free(url);
		if (!d->checks[d->nchecks]) {
			deploy_fail(d, "cannot check %s: %s", p->name, error_last());
			return;
		}
		d->nchecks++;
	}
}

static int pick_stop_first(const struct proc *p, const void *arg)
{
	const struct run *newrun = arg;
	const struct proc_spec *spec = manifest_proc(&newrun->m, p->spec->type);

	return spec && spec->order == ORDER_STOP_FIRST;
}

static void stop_first(struct deploy *d)
{
	struct proc **ps = NULL;
	size_t n;

	d->step = STEP_STOP_FIRST;
	n = run_procs(d->old, &ps, pick_stop_first, d->run);
	if (n) {
		d->stopped_first = 1;
		say(d, "-----> Stopping %zu stop-first process%s", n,
		    n == 1 ? "" : "es");
	}
	stop_procs(ps, n, stop_timeout(d, d->old), spawn_new, d);
	free(ps);
}

static void on_helper_output(struct loop *l, int fd, unsigned events, void *arg)
{
	struct deploy *d = arg;
	char chunk[4096];
	ssize_t n;
	char *nl;

	n = read(fd, chunk, sizeof(chunk));
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n <= 0) {
		loop_del_fd(l, fd);
		close(fd);
		d->helper_fd = -1;
		return;
	}
	buf_add(&d->helper_out, chunk, (size_t)n);
	if (d->step != STEP_RELEASE_PHASE)
		return;
	while ((nl = memchr(d->helper_out.data, '\n', d->helper_out.len))) {
		size_t len = (size_t)(nl - d->helper_out.data);

		if (d->c)
			client_data(d->c, "       %.*s", (int)len,
				    d->helper_out.data);
		logger_line(d->a->log, "release", d->helper_out.data, len);
		buf_consume(&d->helper_out, len + 1);
	}
}

static void drain_helper(struct deploy *d)
{
	while (d->helper_fd >= 0)
		on_helper_output(d->e->loop, d->helper_fd, LOOP_READ, d);
}

static void on_release_phase_exit(pid_t pid, int status, void *arg)
{
	struct deploy *d = arg;
	char why[64];

	/* Nothing it started outlives it (setsid included). */
	isolate_end(d->e->iso, pid);
	d->helper = 0;
	if (d->helper_fd >= 0) {
		set_nonblock(d->helper_fd);
		drain_helper(d);
	}
	if (d->helper_out.len) {
		if (d->c)
			client_data(d->c, "       %s", d->helper_out.data);
		logger_line(d->a->log, "release", d->helper_out.data,
			    d->helper_out.len);
		buf_reset(&d->helper_out);
	}
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		deploy_fail(d, "release command %s",
			    spawn_describe_status(status, why, sizeof(why)));
		return;
	}
	stop_first(d);
}

static void release_phase(struct deploy *d)
{
	struct strv env = STRV_INIT;
	struct spawn s;
	struct isolate_spawn is;
	struct cgroup_limits lim;
	int pfd[2];
	char *argv[] = { "/bin/sh", "-c", NULL, NULL };

	if (d->kind != DEPLOY_NEW || !d->run->m.release_cmd) {
		stop_first(d);
		return;
	}
	d->step = STEP_RELEASE_PHASE;
	say(d, "-----> Running release command: %s", d->run->m.release_cmd);
	if (pipe2(pfd, O_CLOEXEC) < 0) {
		deploy_fail(d, "pipe: %s", strerror(errno));
		return;
	}
	build_env(&env, d->a, d->run, NULL);
	strv_push(&env, "BERTH_PROCESS=release");
	argv[2] = d->run->m.release_cmd;
	spawn_init(&s);
	s.argv = argv;
	s.envp = env.v;
	s.dir = d->run->dir;
	s.out = pfd[1];
	s.err = pfd[1];
	s.flags = SPAWN_NEW_PGRP | SPAWN_DIE_WITH_PARENT;
	engine_spawn_as_app_user(d->e, &s);
	isolate_limits(&lim, d->e->cfg, &d->run->m);
	if (isolate_spawn_prepare(d->e->iso, &is, d->a->name, d->run->dir,
				  &lim, &s) < 0 || spawn_start(&s) < 0) {
		isolate_abort(&is);
		close(pfd[0]);
		close(pfd[1]);
		strv_release(&env);
		deploy_fail(d, "%s", error_last());
		return;
	}
	isolate_started(&is, s.pid);
	close(pfd[1]);
	strv_release(&env);
	set_nonblock(pfd[0]);
	d->helper = s.pid;
	d->helper_fd = pfd[0];
	loop_add_fd(d->e->loop, pfd[0], LOOP_READ, on_helper_output, d);
	reaper_watch(s.pid, on_release_phase_exit, d);
}

static int ensure_slots(struct deploy *d, size_t web)
{
	struct app *a = d->a;

	while (a->nslots < 2 * web) {
		int port = ports_take(&d->e->ports);

		if (port < 0)
			return -1;
		a->slots = xrealloc(a->slots, (a->nslots + 1) * sizeof(int));
		a->slots[a->nslots++] = port;
	}
	return 0;
}

static void prepare(struct deploy *d)
{
	struct app *a = d->a;
	struct run *r = d->run;
	const struct proc_spec *web = manifest_proc(&r->m, "web");
	struct nginx_app na;
	size_t old_nslots = a->nslots, i;
	char *static_link = NULL, *why = NULL;

	d->web_count = web ? (size_t)scale_of(a, web) : 0;
	if (d->kind == DEPLOY_NEW)
		meta_write(a, d->number, "deploying", d, &r->m);
	/* A database for apps that ask, kept in the config vars. */
	if (r->m.postgres && !strv_env_get(&a->env, "DATABASE_URL")) {
		char *url = NULL;

		if (!d->e->pg) {
			deploy_fail(d, "'%s' asks for PostgreSQL, which is not available",
				    a->name);
			return;
		}
		say(d, "-----> Creating PostgreSQL database for %s", a->name);
		if (postgres_provision(d->e->pg, a->name, &url) < 0) {
			deploy_fail(d, "%s", error_last());
			return;
		}
		strv_env_set(&a->env, "DATABASE_URL", url);
		free(url);
		if (env_save(a) < 0) {
			deploy_fail(d, "%s", error_last());
			return;
		}
	}
	if (ensure_slots(d, d->web_count) < 0) {
		why = xstrdup(error_last());
		goto undo_slots;
	}
	if (d->e->nginx && (d->web_count || r->m.static_root ||
			    r->m.hosts.n || !a->live)) {
		memset(&na, 0, sizeof(na));
		na.name = a->name;
		na.hosts = r->m.hosts.v;
		na.nhosts = r->m.hosts.n;
		na.ports = a->slots;
		na.nports = a->nslots;
		if (r->m.static_root) {
			static_link = engine_path(d->e, "run/%s.static", a->name);
			na.static_root = static_link;
			if (d->web_count == 0)
				na.nports = 0;
		}
		if (nginx_app_set(d->e->nginx, &na) < 0) {
			free(static_link);
			why = xasprintf("nginx refused the configuration: %s",
					error_last());
			goto undo_slots;
		}
		free(static_link);
	}
	if (a->nslots != old_nslots)
		app_save(a);
	release_phase(d);
	return;
undo_slots:
	/* d may be gone after deploy_fail(): undo first, then fail. */
	for (i = old_nslots; i < a->nslots; i++)
		ports_put(&d->e->ports, a->slots[i]);
	a->nslots = old_nslots;
	deploy_fail(d, "%s", why);
	free(why);
}

static void on_unpack_exit(pid_t pid, int status, void *arg)
{
	struct deploy *d = arg;

	d->helper = 0;
	if (d->helper_fd >= 0) {
		drain_helper(d);
	}
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		const char *msg = d->helper_out.len ? d->helper_out.data :
			"cannot unpack bundle";

		deploy_fail(d, "%s", msg);
		return;
	}
	buf_reset(&d->helper_out);
	if (manifest_load(&d->run->m, d->run->dir) < 0) {
		deploy_fail(d, "%s", error_last());
		return;
	}
	prepare(d);
}

/* The release folder belongs to the user its processes run as. */
static uid_t chown_uid;
static gid_t chown_gid;

static int chown_one(const char *path, const struct stat *st, int flag,
		     struct FTW *ftw)
{
	if (lchown(path, chown_uid, chown_gid) < 0)
		return error_setsys("cannot chown '%s'", path);
	return 0;
}

static int chown_tree(const char *dir, uid_t uid, gid_t gid)
{
	/* Runs in the unpack child only: the statics are that process's. */
	chown_uid = uid;
	chown_gid = gid;
	return nftw(dir, chown_one, 32, FTW_PHYS) == 0 ? 0 : -1;
}

/* In the unpack child: the release to the user its processes run as. */
static int give_release(struct deploy *d)
{
	uid_t uid;
	gid_t gid;
	int r = isolate_app_user(d->e->iso, d->a->name, &uid, &gid);

	if (r == 0)
		return isolate_give_tree(d->run->dir, uid, gid);
	if (r != ERR_NOTFOUND)
		return -1;
	if (!d->e->drop_priv)
		return 0;
	return chown_tree(d->run->dir, d->e->run_uid, d->e->run_gid);
}

static void deploy_start(struct deploy *d)
{
	struct app *a = d->a;
	char *bundle = NULL, *rdir = NULL;
	int pfd[2] = { -1, -1 };
	pid_t pid;
	static unsigned seq;

	d->t0 = now_ms();
	d->old = a->live;
	if (d->kind == DEPLOY_NEW) {
		int n = a->next_release + 1;

		rdir = release_dir(a, n);
		bundle = xasprintf("%s/bundle.tar.gz", rdir);
		if (mkdir_p(rdir, 0750) < 0) {
			deploy_fail(d, "%s", error_last());
			goto out;
		}
		if (d->from_release) {
			char *from = xasprintf("%s/releases/%d/bundle.tar.gz",
					       a->dir, d->from_release);

			if (link(from, bundle) < 0 && copy_file(from, bundle, 0640) < 0) {
				free(from);
				rm_rf(rdir);
				deploy_fail(d, "%s", error_last());
				goto out;
			}
			free(from);
		} else if (!(d->move && rename(d->bundle_in, bundle) == 0) &&
			   copy_file(d->bundle_in, bundle, 0640) < 0) {
			rm_rf(rdir);
			deploy_fail(d, "%s", error_last());
			goto out;
		}
		a->next_release = n;
		d->number = n;
		app_save(a);
		say(d, "-----> Deploying release %d of %s", n, a->name);
	} else {
		d->number = a->release;
		rdir = release_dir(a, a->release);
		bundle = xasprintf("%s/bundle.tar.gz", rdir);
		say(d, "-----> %s release %d of %s",
		    d->kind == DEPLOY_RESTORE ? "Restoring" : "Restarting",
		    d->number, a->name);
	}
	d->run = xcalloc(1, sizeof(*d->run));
	d->run->app = a;
	d->run->number = d->number;
	d->run->deploy = d;
	manifest_init(&d->run->m);
	d->run->dir = engine_path(d->e, "run/%s-%d-%lld-%u", a->name, d->number,
				  (long long)time(NULL), ++seq);
	d->step = STEP_UNPACK;
	/* Unpacking can take seconds for a big bundle: do it in a child. */
	if (pipe2(pfd, O_CLOEXEC) < 0) {
		deploy_fail(d, "pipe: %s", strerror(errno));
		goto out;
	}
	pid = fork();
	if (pid < 0) {
		close(pfd[0]);
		close(pfd[1]);
		deploy_fail(d, "fork: %s", strerror(errno));
		goto out;
	}
	if (pid == 0) {
		const char *msg;

		close(pfd[0]);
		if (bundle_unpack(bundle, d->run->dir) == 0 &&
		    give_release(d) == 0)
			_exit(0);
		msg = error_last();
		if (write_all(pfd[1], msg, strlen(msg)) < 0)
			_exit(2);
		_exit(1);
	}
	close(pfd[1]);
	d->helper = pid;
	d->helper_fd = pfd[0];
	loop_add_fd(d->e->loop, pfd[0], LOOP_READ, on_helper_output, d);
	reaper_watch(pid, on_unpack_exit, d);
out:
	free(bundle);
	free(rdir);
}

static void deploy_next(struct app *a)
{
	struct deploy *d = a->waiting;

	if (a->deploy || !d)
		return;
	a->waiting = NULL;
	a->deploy = d;
	deploy_start(d);
}

void app_deploy(struct engine *e, const char *name, enum deploy_kind kind,
		const struct deploy_opts *o, struct client *c)
{
	struct app *a;
	struct deploy *d;
	int created = 0;

	if (!app_name_valid(name)) {
		if (c)
			client_error(c, "invalid app name '%s' (use a-z, 0-9 and '-', at most %d characters)",
				     name, APP_NAME_MAX);
		return;
	}
	a = app_find(e, name);
	if (kind != DEPLOY_NEW && (!a || !a->release)) {
		if (c)
			client_error(c, a ? "'%s' has no release yet" :
				     "app '%s' does not exist", name);
		return;
	}
	if (kind == DEPLOY_NEW && o->bundle && !o->from_release) {
		struct stat st;

		if (stat(o->bundle, &st) < 0 || !S_ISREG(st.st_mode)) {
			if (c)
				client_error(c, "cannot read bundle '%s'", o->bundle);
			return;
		}
	}
	if (!a) {
		char *rel = engine_path(e, "apps/%s/releases", name);

		if (mkdir_p(rel, 0750) < 0) {
			free(rel);
			if (c)
				client_error(c, "%s", error_last());
			return;
		}
		free(rel);
		a = app_new(e, name);
		app_save(a);
		created = 1;
	}
	d = xcalloc(1, sizeof(*d));
	d->e = e;
	d->a = a;
	d->kind = kind;
	d->helper_fd = -1;
	d->created_app = created;
	if (c) {
		client_ref(c);
		d->c = c;
	}
	if (o) {
		d->bundle_in = o->bundle ? xstrdup(o->bundle) : NULL;
		d->move = o->move;
		d->commit = o->commit ? xstrdup(o->commit) : NULL;
		d->pusher = o->pusher ? xstrdup(o->pusher) : NULL;
		d->buildpack = o->buildpack ? xstrdup(o->buildpack) : NULL;
		d->source = o->source ? xstrdup(o->source) : NULL;
		d->from_release = o->from_release;
	}
	if (a->waiting) {
		struct deploy *old = a->waiting;

		if (old->c)
			client_error(old->c, "superseded by a newer deploy of '%s'",
				     a->name);
		if (old->move && old->bundle_in)
			unlink(old->bundle_in);
		deploy_free(old);
	}
	a->waiting = d;
	if (a->deploy)
		say(d, "-----> Waiting for the running deploy of %s", a->name);
	deploy_next(a);
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
		if (!app_name_valid(de->d_name))
			continue;
		a = app_new(e, de->d_name);
		app_load_state(a);
	}
	closedir(dh);
	free(dir);
	for (a = e->apps; a; a = a->next)
		if (a->release && !a->stopped)
			app_deploy(e, a->name, DEPLOY_RESTORE, NULL, NULL);
	return 0;
}

void apps_shutdown(struct engine *e)
{
	struct app *a;
	struct proc *p;

	for (a = e->apps; a; a = a->next) {
		if (a->deploy && a->deploy->run)
			for (p = a->deploy->run->procs; p; p = p->next)
				if (p->pid > 0)
					kill(-p->pid, SIGTERM);
		if (a->live)
			for (p = a->live->procs; p; p = p->next)
				if (p->pid > 0)
					kill(-p->pid, SIGTERM);
		if (a->deploy && a->deploy->old && a->deploy->old != a->live)
			for (p = a->deploy->old->procs; p; p = p->next)
				if (p->pid > 0)
					kill(-p->pid, SIGTERM);
	}
}

void apps_free(struct engine *e)
{
	struct app *a;

	while ((a = e->apps)) {
		struct deploy *d = a->deploy;

		e->apps = a->next;
		if (d) {
			if (d->run && d->run != a->live)
				run_free(d->run);
			if (d->old && d->old != a->live)
				run_free(d->old);
			deploy_free(d);
		}
		if (a->waiting)
			deploy_free(a->waiting);
		if (a->rm_client)
			client_unref(a->rm_client);
		run_free(a->live);
		app_free(a);
	}
}

int apps_any_running(struct engine *e)
{
	struct app *a;
	struct proc *p;

	for (a = e->apps; a; a = a->next) {
		if (a->live)
			for (p = a->live->procs; p; p = p->next)
				if (p->pid > 0)
					return 1;
		if (a->deploy && a->deploy->run)
			for (p = a->deploy->run->procs; p; p = p->next)
				if (p->pid > 0)
					return 1;
		if (a->deploy && a->deploy->old && a->deploy->old != a->live)
			for (p = a->deploy->old->procs; p; p = p->next)
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

static const char *proc_state_name(const struct proc *p)
{
	switch (p->state) {
	case PROC_UP:
		return "up";
	case PROC_BACKOFF:
		return "restarting";
	case PROC_STOPPING:
		return "stopping";
	case PROC_DEAD:
		return "stopped";
	}
	return "?";
}

static const char *app_status(const struct app *a)
{
	if (a->deploy)
		return "deploying";
	if (a->stopped)
		return "stopped";
	if (!a->release)
		return "new";
	if (a->live) {
		struct proc *p;

		for (p = a->live->procs; p; p = p->next)
			if (p->state != PROC_UP)
				return "degraded";
		return "running";
	}
	return "down";
}

void app_cmd_apps(struct engine *e, struct client *c)
{
	struct app *a;

	client_data(c, "%-24s %-10s %-8s %s", "NAME", "STATUS", "RELEASE",
		    "PROCESSES");
	for (a = e->apps; a; a = a->next) {
		struct buf procs = BUF_INIT;
		struct proc *p;
		char rel[16];

		if (a->removing)
			continue;
		if (a->live)
			for (p = a->live->procs; p; p = p->next)
				buf_addf(&procs, "%s%s", procs.len ? " " : "",
					 p->name);
		snprintf(rel, sizeof(rel), a->release ? "v%d" : "-", a->release);
		client_data(c, "%-24s %-10s %-8s %s", a->name, app_status(a), rel,
			    procs.len ? procs.data : "-");
		buf_release(&procs);
	}
	client_ok(c);
}

void app_cmd_ps(struct app *a, struct client *c)
{
	struct proc *p;
	int64_t now = now_ms();

	client_data(c, "%s: %s, release %d", a->name, app_status(a), a->release);
	client_data(c, "%-12s %-8s %-6s %-11s %-9s %-8s %-8s %s", "PROCESS",
		    "PID", "PORT", "STATE", "UPTIME", "RESTARTS", "MEMORY",
		    "CPU");
	if (a->live) {
		for (p = a->live->procs; p; p = p->next) {
			char port[12] = "-", up[24] = "-", mem[24] = "-",
			     cpu[24] = "-";
			uint64_t bytes, usec;

			if (p->port)
				snprintf(port, sizeof(port), "%d", p->port);
			if (p->state == PROC_UP)
				snprintf(up, sizeof(up), "%llds",
					 (long long)((now - p->started_ms) / 1000));
			if (p->pid > 0 &&
			    isolate_usage(a->eng->iso, p->pid, &bytes, &usec) == 0) {
				snprintf(mem, sizeof(mem), "%.1fM",
					 (double)bytes / (1024.0 * 1024.0));
				snprintf(cpu, sizeof(cpu), "%.2fs",
					 (double)usec / 1e6);
			}
			client_data(c, "%-12s %-8d %-6s %-11s %-9s %-8d %-8s %s",
				    p->name, (int)p->pid, port,
				    proc_state_name(p), up, p->restarts, mem, cpu);
		}
	}
	client_ok(c);
}

void app_cmd_logs(struct engine *e, const char *name, long n, int follow,
		  struct client *c)
{
	struct app *a = app_find(e, name);
	char *dir = engine_path(e, "logs/%s", name);
	struct buf out = BUF_INIT;
	char *line, *save = NULL;

	if (!a) {
		client_error(c, "app '%s' does not exist", name);
		goto out;
	}
	if (logger_tail(dir, n, &out) < 0) {
		client_error(c, "%s", error_last());
		goto out;
	}
	if (out.len)
		for (line = strtok_r(out.data, "\n", &save); line;
		     line = strtok_r(NULL, "\n", &save))
			client_data(c, "%s", line);
	if (follow && a->log)
		logger_follow(a->log, c);
	else
		client_ok(c);
out:
	buf_release(&out);
	free(dir);
}

static void stop_done(void *arg)
{
	struct client *c = arg;

	client_ok(c);
	client_unref(c);
}

void app_cmd_stop(struct app *a, struct client *c)
{
	struct proc **ps = NULL;
	size_t n;

	if (a->deploy) {
		client_error(c, "a deploy of '%s' is running; try again when it ends",
			     a->name);
		return;
	}
	a->stopped = 1;
	app_save(a);
	logger_linef(a->log, "berth", "stopping %s", a->name);
	if (a->live)
		a->live->supervised = 0;
	n = run_procs(a->live, &ps, NULL, NULL);
	client_ref(c);
	client_data(c, "-----> Stopping %zu process%s of %s", n,
		    n == 1 ? "" : "es", a->name);
	stop_procs(ps, n, a->eng->cfg->stop_timeout_ms, stop_done, c);
	free(ps);
}

void app_cmd_start(struct app *a, struct client *c)
{
	if (!a->release) {
		client_error(c, "'%s' has no release yet", a->name);
		return;
	}
	a->stopped = 0;
	app_save(a);
	app_deploy(a->eng, a->name, DEPLOY_RESTART, NULL, c);
}

void app_cmd_scale(struct app *a, int argc, char **argv, struct client *c)
{
	struct strv next = STRV_INIT;
	int i;
	size_t j;

	if (!a->live) {
		client_error(c, "'%s' is not running a release", a->name);
		goto out;
	}
	for (j = 0; j < a->scale.n; j++)
		strv_push(&next, a->scale.v[j]);
	for (i = 0; i < argc; i++) {
		char *eq = strchr(argv[i], '='), *type;
		long n;

		if (!eq) {
			client_error(c, "usage: scale NAME TYPE=N...");
			goto out;
		}
		type = xstrndup(argv[i], (size_t)(eq - argv[i]));
		n = parse_long(eq + 1, 100);
		if (n < 0) {
			client_error(c, "bad count '%s' (0 to 100)", eq + 1);
			free(type);
			goto out;
		}
		if (!manifest_proc(&a->live->m, type)) {
			client_error(c, "no process type '%s' in release %d of '%s'",
				     type, a->release, a->name);
			free(type);
			goto out;
		}
		{
			long k;
			size_t tl = strlen(type);

			for (k = (long)next.n - 1; k >= 0; k--)
				if (!strncmp(next.v[k], type, tl) &&
				    next.v[k][tl] == '=') {
					free(next.v[k]);
					memmove(&next.v[k], &next.v[k + 1],
						(next.n - (size_t)k) * sizeof(char *));
					next.n--;
				}
		}
		strv_pushf(&next, "%s=%ld", type, n);
		free(type);
	}
	strv_release(&a->scale);
	a->scale = next;
	memset(&next, 0, sizeof(next));
	app_save(a);
	app_deploy(a->eng, a->name, DEPLOY_RESTART, NULL, c);
out:
	strv_release(&next);
}

static void rm_finish(void *arg)
{
	struct app *a = arg;
	struct client *c = a->rm_client;

	a->rm_client = NULL;
	app_remove_now(a);
	if (c) {
		client_data(c, "-----> Removed %s", "app");
		client_ok(c);
		client_unref(c);
	}
}

/* Delete every trace of an app whose processes are gone. */
static void app_remove_now(struct app *a)
{
	struct engine *e = a->eng;
	char *p;

	if (e->nginx && nginx_app_remove(e->nginx, a->name) < 0)
		log_warnx("%s", error_last());
	p = engine_path(e, "run/%s.static", a->name);
	unlink(p);
	free(p);
	if (a->live) {
		rm_rf(a->live->dir);
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

void app_cmd_rm(struct app *a, int drop_db, struct client *c)
{
	struct proc **ps = NULL;
	size_t n;
	int has_db = strv_env_get(&a->env, "DATABASE_URL") != NULL;

	if (a->deploy) {
		client_error(c, "a deploy of '%s' is running; try again when it ends",
			     a->name);
		return;
	}
	if (has_db && drop_db) {
		if (!a->eng->pg || postgres_drop(a->eng->pg, a->name) < 0) {
			client_error(c, "cannot drop the database of '%s': %s",
				     a->name, a->eng->pg ? error_last() :
				     "PostgreSQL is not available");
			return;
		}
		client_data(c, "-----> Dropped the database of %s", a->name);
	} else if (has_db) {
		client_data(c, "-----> Kept the database of %s (use --drop-database to remove it)",
			    a->name);
	}
	if (a->waiting) {
		if (a->waiting->c)
			client_error(a->waiting->c, "app '%s' was removed", a->name);
		deploy_free(a->waiting);
		a->waiting = NULL;
	}
	a->removing = 1;
	client_data(c, "-----> Removing %s", a->name);
	client_ref(c);
	a->rm_client = c;
	if (a->live)
		a->live->supervised = 0;
	n = run_procs(a->live, &ps, NULL, NULL);
	stop_procs(ps, n, 3000, rm_finish, a);
	free(ps);
}

void app_cmd_config(struct app *a, int argc, char **argv, struct client *c)
{
	struct strv env = STRV_INIT;
	int i;
	size_t j;
	struct deploy_opts o;

	if (argc == 0) {
		for (j = 0; j < a->env.n; j++)
			client_data(c, "%s", a->env.v[j]);
		client_ok(c);
		return;
	}
	if (!strcmp(argv[0], "get")) {
		const char *v;

		if (argc != 2) {
			client_error(c, "usage: config NAME get KEY");
			return;
		}
		v = strv_env_get(&a->env, argv[1]);
		if (!v) {
			client_error(c, "'%s' has no config var '%s'", a->name, argv[1]);
			return;
		}
		client_data(c, "%s", v);
		client_ok(c);
		return;
	}
	if ((strcmp(argv[0], "set") && strcmp(argv[0], "unset")) || argc < 2) {
		client_error(c, "usage: config NAME [set K=V... | unset K... | get K]");
		return;
	}
	for (j = 0; j < a->env.n; j++)
		strv_push(&env, a->env.v[j]);
	for (i = 1; i < argc; i++) {
		if (!strcmp(argv[0], "set")) {
			char *eq = strchr(argv[i], '='), *k;
			const char *v;

			if (!eq) {
				client_error(c, "config set: expected KEY=VALUE, got '%s'",
					     argv[i]);
				goto out;
			}
			k = xstrndup(argv[i], (size_t)(eq - argv[i]));
			if (!env_key_valid(k)) {
				client_error(c, "invalid config var name '%s'", k);
				free(k);
				goto out;
			}
			for (v = eq + 1; *v; v++)
				if ((unsigned char)*v < 0x20 && *v != '\t') {
					client_error(c, "the value of '%s' holds a control character",
						     k);
					free(k);
					goto out;
				}
			strv_env_set(&env, k, eq + 1);
			free(k);
		} else {
			if (!env_key_valid(argv[i])) {
				client_error(c, "invalid config var name '%s'", argv[i]);
				goto out;
			}
			strv_env_unset(&env, argv[i]);
		}
	}
	strv_release(&a->env);
	a->env = env;
	memset(&env, 0, sizeof(env));
	if (env_save(a) < 0) {
		client_error(c, "%s", error_last());
		goto out;
	}
	if (!a->live || a->stopped) {
		client_data(c, "-----> Config of %s saved; it applies at the next start",
			    a->name);
		client_ok(c);
		goto out;
	}
	/* A config change is a new release of the same bundle. */
	memset(&o, 0, sizeof(o));
	o.source = "config";
	o.from_release = a->release;
	{
		char *bp = meta_get(a, a->release, "buildpack");
		char *commit = meta_get(a, a->release, "commit");

		o.buildpack = bp;
		o.commit = commit;
		app_deploy(a->eng, a->name, DEPLOY_NEW, &o, c);
		free(bp);
		free(commit);
	}
out:
	strv_release(&env);
}

static int cmp_int(const void *x, const void *y)
{
	return *(const int *)x - *(const int *)y;
}

static size_t list_releases(const struct app *a, int **out)
{
	char *dir = xasprintf("%s/releases", a->dir);
	DIR *dh = opendir(dir);
	struct dirent *de;
	size_t n = 0;

	*out = NULL;
	if (dh) {
		while ((de = readdir(dh))) {
			long v = parse_long(de->d_name, 1L << 30);

			if (v <= 0)
				continue;
			*out = xrealloc(*out, (n + 1) * sizeof(int));
			(*out)[n++] = (int)v;
		}
		closedir(dh);
	}
	free(dir);
	if (n)
		qsort(*out, n, sizeof(int), cmp_int);
	return n;
}

void app_cmd_releases(struct app *a, struct client *c)
{
	int *nums;
	size_t n = list_releases(a, &nums), i;

	client_data(c, "%-8s %-9s %-12s %-21s %-10s %s", "RELEASE", "STATUS",
		    "COMMIT", "TIME", "BUILDPACK", "SOURCE");
	for (i = n; i-- > 0;) {
		char *st = meta_get(a, nums[i], "status");
		char *commit = meta_get(a, nums[i], "commit");
		char *t = meta_get(a, nums[i], "time");
		char *bp = meta_get(a, nums[i], "buildpack");
		char *src = meta_get(a, nums[i], "source");
		char rel[16];

		snprintf(rel, sizeof(rel), "v%d%s", nums[i],
			 nums[i] == a->release ? "*" : "");
		client_data(c, "%-8s %-9s %-12.10s %-21s %-10s %s", rel,
			    nums[i] == a->release ? "live" : (st ? st : "?"),
			    commit ? commit : "-", t ? t : "-", bp ? bp : "-",
			    src ? src : "-");
		free(st);
		free(commit);
		free(t);
		free(bp);
		free(src);
	}
	free(nums);
	client_ok(c);
}

void app_cmd_rollback(struct app *a, int number, struct client *c)
{
	int *nums;
	size_t n = list_releases(a, &nums), i;
	struct deploy_opts o;
	char *bundle = NULL, *bp, *commit;

	if (number == 0) {
		/* The newest deployed release before the live one. */
		for (i = n; i-- > 0;) {
			char *st;

			if (nums[i] >= a->release)
				continue;
			st = meta_get(a, nums[i], "status");
			if (st && (!strcmp(st, "deployed") || !strcmp(st, "retired"))) {
				number = nums[i];
				free(st);
				break;
			}
			free(st);
		}
		if (!number) {
			client_error(c, "'%s' has no earlier release to roll back to",
				     a->name);
			goto out;
		}
	}
	bundle = xasprintf("%s/releases/%d/bundle.tar.gz", a->dir, number);
	if (!path_exists(bundle)) {
		client_error(c, "release %d of '%s' does not exist", number, a->name);
		goto out;
	}
	memset(&o, 0, sizeof(o));
	o.source = "rollback";
	o.from_release = number;
	bp = meta_get(a, number, "buildpack");
	commit = meta_get(a, number, "commit");
	o.buildpack = bp;
	o.commit = commit;
	client_data(c, "-----> Rolling back %s to release %d", a->name, number);
	app_deploy(a->eng, a->name, DEPLOY_NEW, &o, c);
	free(bp);
	free(commit);
out:
	free(bundle);
	free(nums);
}

void app_cmd_pg(struct app *a, struct client *c)
{
	struct buf out = BUF_INIT;
	char *line, *save = NULL;

	if (!strv_env_get(&a->env, "DATABASE_URL")) {
		client_error(c, "'%s' has no database (add 'postgres: true' to app.yaml)",
			     a->name);
		return;
	}
	if (!a->eng->pg || postgres_info(a->eng->pg, a->name, &out) < 0) {
		client_error(c, "%s", a->eng->pg ? error_last() :
			     "PostgreSQL is not available");
		buf_release(&out);
		return;
	}
	if (out.len)
		for (line = strtok_r(out.data, "\n", &save); line;
		     line = strtok_r(NULL, "\n", &save))
			client_data(c, "%s", line);
	buf_release(&out);
	client_ok(c);
}
