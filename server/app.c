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
#include "appstate.h"
#include "bundle.h"
#include "certs.h"
#include "config.h"
#include "deployout.h"
#include "domains.h"
#include "engine.h"
#include "health.h"
#include "handoff.h"
#include "isolate.h"
#include "liveroute.h"
#include "log.h"
#include "logger.h"
#include "loop.h"
#include "nginx.h"
#include "postgres.h"
#include "reaper.h"
#include "release.h"
#include "safefs.h"
#include "spawn.h"
#include "banned.h"

#define BACKOFF_MIN_MS 1000
#define BACKOFF_MAX_MS 60000
#define BACKOFF_RESET_AFTER_MS 30000
#define PORT_POLL_MS 100	/* a restarted web process: is its port its own yet? */
#define CONFIRM_TIMEOUT_MS 10000
#define FAIL_STOP_MS 3000
#define PORT_HINT_MS 5000	/* a web process should listen by then */

enum deploy_step {
	STEP_WAITING,
	STEP_UNPACK,
	STEP_RELEASE_PHASE,
	STEP_STOP_FIRST,
	STEP_READY,
	STEP_CONFIRM,
	STEP_WATCH,
	STEP_DRAIN,
	STEP_RETIRE,
	STEP_FAILING,
};

struct check_ctx {
	struct deploy *d;
	size_t i;
	struct proc *p;		/* readiness: the process checked */
	int port;		/* on this port */
	long other;		/* the check of its other port, or -1 */
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
	struct strv scale_changes;	/* "type=N" asked for by scale */
	struct strv scale;	/* what this deploy runs: a->scale + changes;
				 * a->scale takes it once the release is live */
	struct strv env_changes;	/* config set/unset asked for */
	int from_live;		/* DEPLOY_NEW of the bundle live at start */
	int env_changed;	/* run->env differs from a->env: a->env takes
				 * it once the release is live */
	char *config_change;	/* "+KEY -KEY" against the release before */
	char *detail;		/* with error: the last output lines of the
				 * process at fault, indented, one per line */
	uint64_t hint_timer;	/* "is not listening on PORT yet" */
	int switched;		/* the router sends users to run */
	struct router_switch sw;
	struct router_drain *drain;
	struct livewatch *livewatch;	/* health checks during the watch */
	int64_t t_live;
	struct strv undo_scale;	/* a->scale and a->env before commit_live(), */
	struct strv undo_env;	/* put back if the watch fails */
	int committed, undo_env_set;
	/* app.json's scripts and the release phase (run_script()) */
	int pre_stage, post_stage;
	const char *script_label;	/* "release", "predeploy", ... */
	void (*script_next)(struct deploy *d);
	struct deployout *out;	/* its kept output (deployout.h), or NULL */
	int out_of_push;	/* out is a push's: the pipeline says the
				 * outcome there itself */
};

static void deploy_next(struct app *a);
static void deploy_fail(struct deploy *d, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static void deploy_fail_tail(struct deploy *d, const struct buf *tail,
			     const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void on_port_hint(struct loop *l, void *arg);
static void run_free(struct run *r);
static void cron_run_exited(struct proc *p, const char *why);
static void oneoff_answer(struct proc *p);
static void app_remove_now(struct app *a);
static void watch_failed(struct deploy *d, struct proc *p, const char *why);
static void commit_undo(struct deploy *d);
static void run_script(struct deploy *d, const char *label, char *cmd,
		       void (*next)(struct deploy *d));

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
	deployout_addf(d->out, "%s", p);
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

static void strv_copy(struct strv *to, const struct strv *from)
{
	size_t i;

	for (i = 0; i < from->n; i++)
		strv_push(to, from->v[i]);
}

struct app *app_find(struct engine *e, const char *name)
{
	struct app *a;

	for (a = e->apps; a; a = a->next)
		if (!strcmp(a->name, name) && !a->removing)
			return a;
	return NULL;
}

/* The count of a process type: its "type=N" in scale, else the manifest's. */
static int scale_of(const struct strv *scale, const struct proc_spec *spec)
{
	size_t i, k = strlen(spec->type);

	for (i = 0; i < scale->n; i++)
		if (!strncmp(scale->v[i], spec->type, k) &&
		    scale->v[i][k] == '=')
			return (int)parse_long(scale->v[i] + k + 1, 100);
	return spec->scale;
}

/* "type=N" entries of changes replace those of the same type in scale. */
static void scale_merge(struct strv *scale, const struct strv *changes)
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

static int app_save(struct app *a)
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

static int env_save(struct app *a)
{
	char *path = xasprintf("%s/env", a->dir);
	int ret = env_file_write(path, &a->env);

	free(path);
	return ret;
}

static void app_set_note(struct app *a, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static void app_set_note(struct app *a, const char *fmt, ...)
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
	for (i = 0; i < r->env.n; i++) {
		eq = strchr(r->env.v[i], '=');
		if (eq) {
			char *k = xstrndup(r->env.v[i],
					   (size_t)(eq - r->env.v[i]));

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
	/* the terminal is the client's: its type is too */
	if (p && p->tty && p->term[0])
		strv_env_set(env, "TERM", p->term);
	else if (p && p->tty && !strv_env_get(env, "TERM"))
		strv_push(env, "TERM=xterm");
	if (p) {
		strv_pushf(env, "BERTH_PROCESS=%s", p->name);
		strv_pushf(env, "DYNO=%s", p->name);
		if (p->port)
			strv_pushf(env, "PORT=%d", p->port);
	}
	/* Only the socket berth hands over may be named: a stale value
	 * from the config would point a server at the wrong fd. */
	if (p && p->sock_fd >= 0)
		handoff_env(env, p->sock_port, p->spec->type);
	else
		handoff_env_clear(env);
}

/* ---------- runs and processes ---------- */

/* Processes being stopped together (stop_procs()). */
struct stop_group {
	size_t left;
	void (*done)(void *arg);
	void *arg;
};

static void app_proc_output(struct proc *p, const char *line, size_t len);
static void app_proc_crashed(struct proc *p, int status);

static struct proc *proc_new(struct run *r, const struct proc_spec *spec,
			     int index, int port)
{
	struct proc *p = xcalloc(1, sizeof(*p)), **pp;

	p->app = r->app;
	p->run = r;
	p->spec = spec;
	p->index = index;
	p->port = port;
	p->sock_fd = -1;
	p->out_fd = -1;
	backoff_init(&p->backoff, BACKOFF_MIN_MS, BACKOFF_MAX_MS,
		     BACKOFF_RESET_AFTER_MS);
	p->state = PROC_DEAD;
	p->on_output = app_proc_output;
	p->on_crash = app_proc_crashed;
	snprintf(p->name, sizeof(p->name), "%s.%d", spec->type, index);
	for (pp = &r->procs; *pp; pp = &(*pp)->next)
		;
	*pp = p;
	return p;
}

static int proc_spawn(struct proc *p)
{
	const struct engine *e = p->app->eng;
	struct proc_user u = { e->drop_priv, e->run_uid, e->run_gid };
	struct strv env = STRV_INIT;
	int ret;

	build_env(&env, p->app, p->run, p);
	ret = proc_start(p, env.v, &u);
	strv_release(&env);
	return ret;
}

static void stop_group_exit(struct proc *p, void *arg);

static void run_free(struct run *r)
{
	struct proc *p, *next;
	size_t i;

	if (!r)
		return;
	for (p = r->procs; p; p = next) {
		next = p->next;
		/* A stop still waiting for this process never ends now: its
		 * group goes with the last member (engine exit only). */
		if (p->on_exit == stop_group_exit) {
			struct stop_group *g = p->on_exit_arg;

			if (--g->left == 0)
				free(g);
		}
		oneoff_answer(p);
		proc_free(p);
	}
	loop_del_timer(r->app->eng->loop, r->cron_timer);
	for (i = 0; r->cron_specs && i < r->m.ncrons; i++)
		free(r->cron_specs[i].type);
	free(r->cron_specs);
	free(r->cron_next);
	manifest_release(&r->m);
	strv_release(&r->env);
	free(r->dir);
	free(r);
}

/* Output of a process (its on_output). */
static void app_proc_output(struct proc *p, const char *line, size_t len)
{
	if (p->app->log)
		logger_line(p->app->log, p->name, line, len);
	if (p->run->deploy && p->run->deploy->c &&
	    p->run->deploy->step < STEP_CONFIRM) {
		/* Show a starting process's first words to the deployer. */
	}
}

/* A live web process went down or came back: the route follows, except
 * during the watch, which has its own answer (watch_failed()). */
static void live_route_changed(struct proc *p)
{
	struct app *a = p->app;

	if (!p->port || p->run != a->live ||
	    (a->deploy && a->deploy->step == STEP_WATCH))
		return;
	if (liveroute_settle(a->eng, a) < 0)
		log_warnx("%s: %s", a->name, error_last());
}

/*
 * A restarted web process that binds PORT itself: its port was free
 * while it was down, and another user's program may have taken it.  Poll
 * until the app's own socket listens there, then route to it; a port
 * held by anyone else kills the process, which is restarted with
 * back-off as any crash is, and never routed to meanwhile.  A socket the
 * engine holds (handoff.h) was never free: no check.
 */
static void on_port_timer(struct loop *l, void *arg)
{
	struct proc *p = arg;
	int r;

	p->timer = 0;
	if (!p->port_pending || p->state != PROC_UP || p->pid <= 0)
		return;
	r = isolate_port_owned(p->app->eng->iso, p->app->name, p->port);
	if (r == 0 || r == -1) {	/* not yet, or not known */
		if (r < 0)
			log_warnx("%s %s: %s", p->app->name, p->name,
				  error_last());
		p->timer = loop_add_timer(l, PORT_POLL_MS, on_port_timer, p);
		return;
	}
	if (r < 0) {
		logger_linef(p->app->log, "berth", "%s: %s; killing it",
			     p->name, error_last());
		log_warnx("%s %s: %s", p->app->name, p->name, error_last());
		kill(-p->pgid, SIGKILL);
		return;
	}
	p->port_pending = 0;
	live_route_changed(p);
}

static int needs_port_check(const struct proc *p)
{
	return p->port && !(p->sock_fd >= 0 &&
			    proc_http_port(p) == p->sock_port);
}

static void on_restart_timer(struct loop *l, void *arg)
{
	struct proc *p = arg;

	p->timer = 0;
	if (proc_spawn(p) < 0) {
		logger_linef(p->app->log, "berth", "cannot restart %s: %s",
			     p->name, error_last());
		p->state = PROC_BACKOFF;
		p->timer = loop_add_timer(l, backoff_failed(&p->backoff),
					  on_restart_timer, p);
	} else if (needs_port_check(p)) {
		p->port_pending = 1;
		p->timer = loop_add_timer(l, PORT_POLL_MS, on_port_timer, p);
	}
	live_route_changed(p);
}

/* A process exited on its own, not stopped (its on_crash): restart it, or
 * fail the deploy or watch it belongs to. */
static void app_proc_crashed(struct proc *p, int status)
{
	struct app *a = p->app;
	struct run *r = p->run;
	char why[64];
	long delay;

	spawn_describe_status(status, why, sizeof(why));
	if (p->oneoff) {
		cron_run_exited(p, why);
		return;
	}
	if (a->deploy && a->deploy->step == STEP_WATCH && r == a->live &&
	    p->port) {
		watch_failed(a->deploy, p, why);
		return;
	}
	if (r->deploy && r->deploy->run == r) {
		struct buf tail = BUF_INIT;

		proc_tail(p, &tail);
		deploy_fail_tail(r->deploy, &tail, "%s %s while starting",
				 p->name, why);
		buf_release(&tail);
		return;
	}
	if (!r->supervised || a->eng->stopping) {
		logger_linef(a->log, "berth", "%s %s", p->name, why);
		return;
	}
	delay = backoff_exited(&p->backoff, p->started_ms);
	p->restarts++;
	p->state = PROC_BACKOFF;
	logger_linef(a->log, "berth", "%s %s; restarting in %ld ms", p->name,
		     why, delay);
	p->timer = loop_add_timer(a->eng->loop, delay, on_restart_timer, p);
	live_route_changed(p);
}

/* Stop a set of processes; call done(arg) once all have exited. */

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

/* ---------- cron ---------- */

/* Wall-clock milliseconds (cron schedules follow the calendar). */
static int64_t wall_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* When entry i runs next, strictly after the second 'after_ms' is in;
 * 0 if its schedule never comes (e.g. "0 0 30 2 *"). */
static int64_t cron_when(const struct run *r, size_t i, int64_t after_ms)
{
	time_t next;

	if (cron_next(&next, &r->m.crons[i].expr, (time_t)(after_ms / 1000),
		      CRON_LOCAL) < 0)
		return 0;
	return (int64_t)next * 1000;
}

static void on_cron_timer(struct loop *l, void *arg);

/* The timer for the soonest entry; re-read at least hourly, so a clock
 * that was set meanwhile is followed. */
static void cron_arm(struct run *r)
{
	int64_t now = wall_ms(), soonest = 0, wait;
	size_t i;

	loop_del_timer(r->app->eng->loop, r->cron_timer);
	r->cron_timer = 0;
	for (i = 0; i < r->m.ncrons; i++)
		if (r->cron_next[i] && (!soonest || r->cron_next[i] < soonest))
			soonest = r->cron_next[i];
	if (!soonest)
		return;
	wait = soonest - now;
	if (wait < 0)
		wait = 0;
	if (wait > 3600 * 1000)
		wait = 3600 * 1000;
	r->cron_timer = loop_add_timer(r->app->eng->loop, (long)wait + 5,
				       on_cron_timer, r);
}

static struct proc *cron_running(struct run *r, int index)
{
	struct proc *p;

	for (p = r->procs; p; p = p->next)
		if (p->oneoff && p->index == index && p->state != PROC_DEAD)
			return p;
	return NULL;
}

static void cron_replaced_exit(struct proc *p, void *arg)
{
	cron_run_exited(p, "stopped");
}

/* Entry i is due: a one-off process "cron.N" of the live release, with
 * the app's environment; a run still going is not started twice. */
static void cron_start(struct run *r, size_t i)
{
	struct app *a = r->app;
	const struct cron_spec *cs = &r->m.crons[i];
	struct proc *p = cron_running(r, (int)i + 1);

	if (p && !cs->replace) {
		logger_linef(a->log, "berth",
			     "%s is still running: this run of '%s' is skipped",
			     p->name, cs->schedule);
		return;
	}
	if (p) {
		logger_linef(a->log, "berth",
			     "%s is still running: stopped for the next run",
			     p->name);
		p->on_exit = cron_replaced_exit;
		p->on_exit_arg = NULL;
		proc_stop(p, a->eng->cfg->stop_timeout_ms);
	}
	p = proc_new(r, &r->cron_specs[i], (int)i + 1, 0);
	p->oneoff = 1;
	logger_linef(a->log, "berth", "%s: running '%s' (%s)", p->name,
		     cs->cmd, cs->schedule);
	if (proc_spawn(p) < 0) {
		logger_linef(a->log, "berth", "%s: cannot start: %s", p->name,
			     error_last());
		cron_run_exited(p, NULL);
	}
}

static void on_cron_timer(struct loop *l, void *arg)
{
	struct run *r = arg;
	struct app *a = r->app;
	int64_t now = wall_ms();
	size_t i;

	r->cron_timer = 0;
	for (i = 0; i < r->m.ncrons; i++) {
		if (!r->cron_next[i] || r->cron_next[i] > now)
			continue;
		r->cron_next[i] = cron_when(r, i, now);
		if (r->m.crons[i].paused || a->stopped || a->removing ||
		    a->eng->stopping || a->live != r || !r->supervised)
			continue;
		cron_start(r, i);
	}
	cron_arm(r);
}

/* A one-off (cron.N, run.N) ended (or never started, why NULL): say
 * so, answer its client, and it is gone. */
static void cron_run_exited(struct proc *p, const char *why)
{
	struct run *r = p->run;
	struct proc **pp;

	if (why)
		logger_linef(p->app->log, "berth", "%s %s", p->name, why);
	oneoff_answer(p);
	for (pp = &r->procs; *pp && *pp != p; pp = &(*pp)->next)
		;
	if (*pp)
		*pp = p->next;
	proc_free(p);
}

/* An attached run's client: its exit status as a shell gives it (128 +
 * the signal when killed), or an error when it did not run to its end. */
static void oneoff_answer(struct proc *p)
{
	struct client *c = p->client;
	int st = p->last_status;

	if (!c)
		return;
	p->client = NULL;
	client_on_close(c, NULL, NULL);
	if (p->pid > 0 || !p->started_ms)
		client_error(c, "%s was stopped before it ended", p->name);
	else
		client_ok_fields(c, "exit-status=%d", WIFSIGNALED(st) ?
				 128 + WTERMSIG(st) : WEXITSTATUS(st));
	client_unref(c);
}

static void run_stopped_exit(struct proc *p, void *arg)
{
	cron_run_exited(p, "stopped: its client hung up");
}

/* The client of an attached run went away: so does the run. */
static void run_client_gone(struct client *c, void *arg)
{
	struct proc *p = arg;

	p->client = NULL;
	client_unref(c);
	if (p->pid <= 0)
		return;
	p->on_exit = run_stopped_exit;
	p->on_exit_arg = NULL;
	proc_stop(p, p->app->eng->cfg->stop_timeout_ms);
}

void app_cmd_run(struct app *a, const char *cmd, int detached,
		 const char *term, struct client *c)
{
	struct run *r = a->live;
	struct proc_spec *spec;
	struct proc *p;
	int fds[CLIENT_MAX_FDS];
	size_t nfds = 0, i;

	if (!detached)
		nfds = client_take_fds(c, fds, CLIENT_MAX_FDS);
	if (!detached && nfds != 3) {
		client_error(c, "run needs the caller's stdin, stdout and stderr: use 'berth run' or ssh (or run:detached)");
		goto out;
	}
	if (a->removing) {
		client_error(c, "'%s' is being removed", a->name);
		goto out;
	}
	if (!r || !a->release) {
		client_error(c, "'%s' has no live release yet: push it first",
			     a->name);
		goto out;
	}
	spec = xcalloc(1, sizeof(*spec));
	spec->type = xstrdup("run");
	spec->cmd = xstrdup(cmd);
	p = proc_new(r, spec, ++a->run_seq, 0);
	p->own_spec = spec;
	p->oneoff = 1;
	if (!detached) {
		p->attached = 1;
		for (i = 0; i < 3; i++) {
			p->stdio[i] = fds[i];
			fds[i] = -1;
		}
		nfds = 0;
		p->tty = isatty(p->stdio[0]);
		if (term)
			snprintf(p->term, sizeof(p->term), "%s", term);
	}
	logger_linef(a->log, "berth", "%s: running %s%s", p->name, cmd,
		     detached ? " (detached)" : "");
	if (proc_spawn(p) < 0) {
		client_error(c, "cannot start %s: %s", p->name, error_last());
		cron_run_exited(p, NULL);
		goto out;
	}
	if (detached) {
		client_data(c, "-----> Started %s (pid %d): ssh HOST logs %s -p %s",
			    p->name, (int)p->pid, a->name, p->name);
		client_ok(c);
		goto out;
	}
	p->client = c;
	client_ref(c);
	client_on_close(c, run_client_gone, p);
out:
	for (i = 0; i < nfds; i++)
		if (fds[i] >= 0)
			close(fds[i]);
}

/* The release goes live: its cron entries start to count. */
static void cron_begin(struct run *r)
{
	int64_t now = wall_ms();
	size_t i;

	if (!r->m.ncrons || r->cron_specs)
		return;
	r->cron_specs = xcalloc(r->m.ncrons, sizeof(*r->cron_specs));
	r->cron_next = xcalloc(r->m.ncrons, sizeof(*r->cron_next));
	for (i = 0; i < r->m.ncrons; i++) {
		r->cron_specs[i].type = xstrdup("cron");
		r->cron_specs[i].cmd = r->m.crons[i].cmd;
		r->cron_specs[i].scale = 0;
		r->cron_next[i] = cron_when(r, i, now);
	}
	cron_arm(r);
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
	liveroute_watch_stop(d->livewatch);
	if (d->drain)
		router_drain_cancel(d->drain);
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
	deployout_unref(d->out);
	free(d->bundle_in);
	free(d->commit);
	free(d->pusher);
	free(d->buildpack);
	free(d->source);
	free(d->error);
	strv_release(&d->scale_changes);
	strv_release(&d->scale);
	strv_release(&d->undo_scale);
	strv_release(&d->undo_env);
	strv_release(&d->env_changes);
	free(d->config_change);
	free(d->detail);
	loop_del_timer(d->e->loop, d->hint_timer);
	free(d);
}

static void deploy_finish(struct deploy *d, int ok)
{
	struct app *a = d->a;

	if (!ok && d->detail)
		deployout_addf(d->out, " !     %s, last output:\n%s",
			       d->error, d->detail);
	if (!ok && !d->out_of_push)
		deployout_addf(d->out, " !     %s", d->error ? d->error :
			       "deploy failed");
	deployout_set_status(d->out, ok ? "succeeded" : "failed");

	if (d->c) {
		if (ok) {
			/* for programs (the push's pipeline): which went live */
			client_ok_fields(d->c, "release=%d", d->number);
		} else {
			/* The header, then the lines, in order; the last line
			 * of the answer is the one-line reason. */
			if (d->detail)
				client_data(d->c, " !     %s, last output:\n%s",
					    d->error, d->detail);
			client_error(d->c, "%s", d->error ? d->error :
				     "deploy failed");
		}
	}
	a->deploy = NULL;
	if (d->e->on_deploy_end) {
		struct deploy_end end;

		memset(&end, 0, sizeof(end));
		end.app = a;
		end.kind = d->kind;
		end.source = d->source;
		end.number = d->number;
		end.ok = ok;
		end.env_changes = &d->env_changes;
		end.commit = d->commit;
		d->e->on_deploy_end(d->e->on_deploy_end_arg, &end);
	}
	deploy_free(d);
	/* Its bundle left incoming/ meanwhile (not while the engine stops:
	 * apps_shutdown() walks the list this would change). */
	if (a->remove_after_deploy && !a->eng->stopping) {
		a->remove_after_deploy = 0;
		logger_linef(a->log, "berth", "its bundle left incoming/: removing %s",
			     a->name);
		app_cmd_rm(a, 0, NULL);
		return;
	}
	deploy_next(a);
}

static void on_restore_retry(struct loop *l, void *arg)
{
	struct app *a = arg;

	a->retry_timer = 0;
	if (a->live || a->stopped || a->removing || !a->release)
		return;		/* someone acted meanwhile */
	if (a->deploy || a->waiting) {
		/* never supersede a deploy someone asked for */
		a->retry_timer = loop_add_timer(l, 1000, on_restore_retry, a);
		return;
	}
	app_deploy(a->eng, a->name, DEPLOY_RESTORE, NULL, NULL);
}

/* A restore at engine start failed: try again, as a crashed process
 * would be, 1 s later, then 2, 4, ... up to a minute. */
static void restore_retry_later(struct app *a)
{
	struct engine *e = a->eng;

	a->retry_ms = a->retry_ms ? a->retry_ms * 2 : BACKOFF_MIN_MS;
	if (a->retry_ms > BACKOFF_MAX_MS)
		a->retry_ms = BACKOFF_MAX_MS;
	loop_del_timer(e->loop, a->retry_timer);
	a->retry_at = now_ms() + a->retry_ms;
	a->retry_timer = loop_add_timer(e->loop, a->retry_ms, on_restore_retry, a);
	logger_linef(a->log, "berth", "restoring release %d again in %ld ms",
		     a->release, a->retry_ms);
}

static void restore_retry_cancel(struct app *a)
{
	loop_del_timer(a->eng->loop, a->retry_timer);
	a->retry_timer = 0;
	a->retry_ms = 0;
}

/* After a failure: new processes are gone; clean up and answer. */
/*
 * nginx serves a static site from a copy root makes beside the release
 * (run/APP-N-....www: root's, folders 0755, files 0644), never from the
 * release folder, which is the app's user's: that user could swap the
 * site's folder for a link to /etc at any moment.  The copy is made by
 * descriptors and refuses a link anywhere in the site (safefs.h).
 */
static char *static_copy_path(const struct run *r)
{
	return xasprintf("%s.www", r->dir);
}

/* The run's folder and its static copy, if any: 0 or -1 (logged). */
static int run_remove_dirs(const struct run *r)
{
	char *www = static_copy_path(r);
	int ret = rm_rf(r->dir);

	if (ret < 0)
		log_warnx("%s", error_last());
	if (rm_rf(www) < 0) {
		log_warnx("%s", error_last());
		ret = -1;
	}
	free(www);
	return ret;
}

static void fail_cleanup(void *arg)
{
	struct deploy *d = arg;
	struct app *a = d->a;
	struct proc **ps = NULL;
	size_t n, i;
	int stopping = d->e->stopping;

	if (d->run) {
		run_remove_dirs(d->run);
		d->run->deploy = NULL;
		run_free(d->run);
		d->run = NULL;
	}
	/* Bring back what we stopped first (unless all is stopping). */
	if (d->stopped_first && d->old && a->live == d->old && !stopping) {
		n = run_procs(d->old, &ps, NULL, NULL);
		for (i = 0; i < n; i++)
			if (ps[i]->state == PROC_DEAD && proc_spawn(ps[i]) < 0)
				logger_linef(a->log, "berth", "cannot restart %s: %s",
					     ps[i]->name, error_last());
		free(ps);
	}
	if (d->kind == DEPLOY_NEW && d->number) {
		/* Keep the record (releases lists it), not the bundle. */
		release_drop_bundle(a->dir, d->number);
		if (release_set_status(a->dir, d->number,
				       stopping ? "interrupted" : "failed") < 0)
			log_warnx("%s", error_last());
		release_prune(a->dir, d->e->cfg->keep_releases, a->release);
	}
	if (stopping) {
		/* Cut short, not failed: the app is as it was. */
		logger_linef(a->log, "berth", "deploy interrupted: %s", d->error);
		deploy_finish(d, 0);
		return;
	}
	if (d->source && !strcmp(d->source, "incoming"))
		log_warnx("incoming: deploy of '%s' failed: %s", a->name,
			  d->error);
	free(a->last_result);
	a->last_result = xstrdup("failed");
	app_set_note(a, "%s failed: %s", d->kind == DEPLOY_RESTORE ? "restore" :
		     "deploy", d->error);
	app_save(a);
	logger_linef(a->log, "berth", "deploy failed: %s", d->error);
	if (d->kind == DEPLOY_RESTORE && !a->live)
		restore_retry_later(a);
	if (d->created_app && !a->live && a->release == 0 && !a->waiting &&
	    !(d->source && !strcmp(d->source, "incoming"))) {
		char *repo = xasprintf("%s/repo.git", a->dir);

		/* A first deploy that failed leaves no app behind, unless a
		 * push already stored its repository, or it came from
		 * incoming/, where nobody else would see why. */
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

static void deploy_failv(struct deploy *d, const struct buf *detail,
			 const char *fmt, va_list ap)
	__attribute__((format(printf, 3, 0)));

static void deploy_fail(struct deploy *d, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	deploy_failv(d, NULL, fmt, ap);
	va_end(ap);
}

/* deploy_fail() with the last output lines of the process at fault. */
static void deploy_fail_tail(struct deploy *d, const struct buf *tail,
			     const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	deploy_failv(d, tail, fmt, ap);
	va_end(ap);
}

static void deploy_failv(struct deploy *d, const struct buf *detail,
			 const char *fmt, va_list ap)
{
	struct proc **ps = NULL;
	size_t i, n;

	if (d->step == STEP_FAILING)
		return;
	d->step = STEP_FAILING;
	free(d->error);
	d->error = xvasprintf(fmt, ap);
	if (detail && detail->len)
		d->detail = xstrndup(detail->data, detail->len);
	loop_del_timer(d->e->loop, d->hint_timer);
	d->hint_timer = 0;
	for (i = 0; i < d->nchecks; i++)
		health_cancel(d->checks[i]);
	d->nchecks = 0;
	FREE_AND_NULL(d->checks);
	FREE_AND_NULL(d->check_ctx);
	loop_del_timer(d->e->loop, d->timer);
	d->timer = 0;
	liveroute_watch_stop(d->livewatch);
	d->livewatch = NULL;
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

static void retire_done(void *arg)
{
	struct deploy *d = arg;
	struct app *a = d->a;

	if (d->old) {
		run_remove_dirs(d->old);
		if (d->old->number != d->number || d->kind != DEPLOY_NEW)
			say(d, "-----> Stopped release %d", d->old->number);
		if (d->old->number != a->release && d->e->nginx)
			router_forget(nginx_router(d->e->nginx), a->name,
				      d->old->number);
		run_free(d->old);
		d->old = NULL;
	}
	/* Fewer web processes than slots: give the spare ports back (the
	 * route names only the live processes' ports). */
	if (a->nslots > 2 * d->web_count && d->web_count > 0) {
		size_t keep = 2 * d->web_count, i;

		for (i = keep; i < a->nslots; i++)
			ports_put(&d->e->ports, a->slots[i]);
		a->nslots = keep;
		app_save(a);
	}
	release_prune(a->dir, d->e->cfg->keep_releases, a->release);
	say(d, "-----> Release %d of %s is live (%lld ms)", d->number, a->name,
	    (long long)(now_ms() - d->t0));
	if (a->live && (d->web_count || a->live->m.static_root)) {
		char *url = app_url(a);

		say(d, "       %s", url);
		free(url);
	}
	deploy_finish(d, 1);
}

static void stop_old(struct deploy *d)
{
	struct proc **ps = NULL;
	size_t n;

	d->step = STEP_RETIRE;
	n = run_procs(d->old, &ps, NULL, NULL);
	stop_procs(ps, n, stop_timeout(d, d->old), retire_done, d);
	free(ps);
}

static void on_drain_timer(struct loop *l, void *arg)
{
	struct deploy *d = arg;

	d->timer = 0;
	stop_old(d);
}

/* The router counted the old release's requests down (or time ran out). */
static void on_drained(void *arg, const struct router_drain_result *res)
{
	struct deploy *d = arg;

	d->drain = NULL;
	if (res->drained)
		say(d, "-----> Drained release %d (%ld request%s finished in %ld ms)",
		    d->old->number, res->finished, res->finished == 1 ? "" : "s",
		    res->elapsed_ms);
	else
		say(d, "-----> Drain time of release %d ran out after %ld ms (%ld request%s finished, %ld still running)",
		    d->old->number, res->elapsed_ms, res->finished,
		    res->finished == 1 ? "" : "s", res->left);
	stop_old(d);
}

/*
 * The watch is over (or there was none): the old release gets no request
 * any more, even as a fallback; stop it once the router says its requests
 * are done, or after the drain time.
 */
static void watch_over(struct deploy *d)
{
	struct app *a = d->a;
	long drain = a->live->m.drain_ms >= 0 ? a->live->m.drain_ms :
		d->e->cfg->drain_ms;

	liveroute_watch_stop(d->livewatch);
	d->livewatch = NULL;
	if (liveroute_settle(d->e, a) < 0)
		log_warnx("%s: %s", a->name, error_last());
	d->step = STEP_DRAIN;
	if (!d->old || !d->old->procs) {
		d->timer = loop_add_timer(d->e->loop, 0, on_drain_timer, d);
		return;
	}
	/* A restart keeps the release number: its counts mix with the new
	 * processes', so only the drain time tells. */
	if (d->e->nginx && d->old->number != a->release)
		d->drain = router_drain_start(nginx_router(d->e->nginx),
					      d->e->loop, a->name,
					      d->old->number, &d->sw, drain,
					      on_drained, d);
	if (!d->drain)
		d->timer = loop_add_timer(d->e->loop, drain, on_drain_timer, d);
}

static void on_watch_timer(struct loop *l, void *arg)
{
	struct deploy *d = arg;

	d->timer = 0;
	watch_over(d);
}

/*
 * A web process of the release just switched to died or failed its
 * health check during the watch: traffic goes back to the old release at once, the new one is stopped
 * and the deploy fails with the reason.
 */
static void watch_failed(struct deploy *d, struct proc *p, const char *why)
{
	struct app *a = d->a;
	double after = (double)(now_ms() - d->t_live) / 1000.0;

	liveroute_watch_stop(d->livewatch);
	d->livewatch = NULL;
	if (liveroute_revert(d->e, a) < 0)
		log_warnx("%s: cannot switch back: %s", a->name, error_last());
	loop_del_timer(d->e->loop, d->timer);
	d->timer = 0;
	d->run = a->live;
	d->run->supervised = 0;
	d->run->deploy = d;
	a->live = d->old;
	a->live->supervised = 1;
	a->release = d->old->number;
	commit_undo(d);
	d->switched = 0;
	say(d, "-----> Switched traffic back to release %d", d->old->number);
	app_save(a);
	deploy_fail(d, "rolled back: %s %s, %.1f s after going live", p->name,
		    why, after);
}

static void on_watch_check_failed(void *arg, struct proc *p, const char *why)
{
	watch_failed(arg, p, why);
}

/*
 * In the unpack child, before the release is handed to the app's user
 * and before any of the app's code runs: the static site's copy, if the
 * manifest names one (a manifest that does not load is the engine's to
 * report).
 */
static int copy_static(struct deploy *d)
{
	struct manifest m;
	char *parent = engine_path(d->e, "run"), *www = static_copy_path(d->run);
	int src = -1, dst = -1, ret = 0;

	manifest_init(&m);
	if (manifest_load(&m, d->run->dir) < 0 || !m.static_root)
		goto out;
	src = safefs_open_top(d->run->dir);
	dst = src < 0 ? -1 : safefs_open_top(parent);
	if (src < 0 || dst < 0)
		ret = -1;
	else
		ret = safefs_copy_tree(src, m.static_root, dst,
				       strrchr(www, '/') + 1, NULL);
	if (ret < 0) {
		char *why = xstrdup(error_last());

		error_set("static site '%s': %s", m.static_root, why);
		free(why);
	}
out:
	if (src >= 0)
		close(src);
	if (dst >= 0)
		close(dst);
	manifest_release(&m);
	free(parent);
	free(www);
	return ret < 0 ? -1 : 0;
}

static int swap_static(struct deploy *d)
{
	struct app *a = d->a;
	char *link = engine_path(d->e, "run/%s.static", a->name);
	char *tmp = xasprintf("%s.new", link);
	char *target = static_copy_path(d->run);
	int ret = 0;

	if (!path_exists(target)) {
		ret = error_set("static site '%s': no copy of it was made",
				d->run->m.static_root);
		goto out;
	}
	unlink(tmp);
	if (symlink(target, tmp) < 0 || rename(tmp, link) < 0) {
		ret = error_setsys("cannot switch '%s'", link);
		unlink(tmp);
	}
out:
	free(link);
	free(tmp);
	free(target);
	return ret;
}

/*
 * The one point where a deploy becomes the app's truth: the state file
 * names the new release and its scale.  If it cannot be written, memory
 * stays as it was too, and the deploy fails with the old release serving.
 */
/*
 * A deploy that changes the config (config set/unset, rollback) replaces
 * ROOT/apps/NAME/env; the old file stays linked as env.prev until the
 * state is written too, so either both change or neither: a rename back
 * needs no disk space.
 */
static int env_commit(struct app *a, const struct strv *env, char **prev)
{
	char *path = xasprintf("%s/env", a->dir);
	int ret = -1;

	*prev = xasprintf("%s/env.prev", a->dir);
	unlink(*prev);
	if (path_exists(path) && link(path, *prev) < 0) {
		error_setsys("cannot keep '%s'", path);
		goto out;
	}
	if (env_file_write(path, env) < 0) {
		unlink(*prev);
		goto out;
	}
	ret = 0;
out:
	if (ret < 0)
		FREE_AND_NULL(*prev);
	free(path);
	return ret;
}

static void env_commit_undo(struct app *a, char *prev)
{
	char *path = xasprintf("%s/env", a->dir);

	if (path_exists(prev) ? rename(prev, path) < 0 : unlink(path) < 0)
		log_warn("app '%s': cannot put back '%s'", a->name, path);
	free(path);
}

/*
 * The one point where a deploy becomes the app's truth: the state file
 * names the new release and its scale (and the app's env file its config,
 * if that changed).  If they cannot be written, memory and disk stay as
 * they were, and the deploy fails with the old release serving.
 */
static int commit_live(struct deploy *d)
{
	struct app *a = d->a;
	struct strv old_scale = a->scale;
	char *old_result = a->last_result, *old_note = a->note, *prev = NULL;
	int old_release = a->release, old_unusable = a->unusable;
	int env_changed = d->kind == DEPLOY_NEW &&
		!env_equal(&d->run->env, &a->env);

	if (env_changed && env_commit(a, &d->run->env, &prev) < 0)
		return -1;
	a->release = d->number;
	a->scale = d->scale;
	a->last_result = xstrdup("ok");
	a->note = NULL;
	a->unusable = 0;
	if (app_save(a) < 0) {
		free(a->last_result);
		a->last_result = old_result;
		a->note = old_note;
		a->unusable = old_unusable;
		a->scale = old_scale;
		a->release = old_release;
		if (prev)
			env_commit_undo(a, prev);
		free(prev);
		return -1;
	}
	if (prev) {
		unlink(prev);
		free(prev);
	}
	restore_retry_cancel(a);
	if (env_changed) {
		/* kept until the watch is over: a rollback puts it back */
		d->undo_env = a->env;
		d->undo_env_set = 1;
		memset(&a->env, 0, sizeof(a->env));
		strv_copy(&a->env, &d->run->env);
	}
	free(old_result);
	free(old_note);
	d->undo_scale = old_scale;
	d->committed = 1;
	memset(&d->scale, 0, sizeof(d->scale));
	return 0;
}

/* The watch failed after commit_live(): the config and scale go back. */
static void commit_undo(struct deploy *d)
{
	struct app *a = d->a;
	char *path;

	if (!d->committed)
		return;
	strv_release(&a->scale);
	a->scale = d->undo_scale;
	memset(&d->undo_scale, 0, sizeof(d->undo_scale));
	if (d->undo_env_set) {
		path = xasprintf("%s/env", a->dir);
		if (env_file_write(path, &d->undo_env) < 0)
			log_warnx("%s", error_last());
		free(path);
		strv_release(&a->env);
		a->env = d->undo_env;
		memset(&d->undo_env, 0, sizeof(d->undo_env));
		d->undo_env_set = 0;
	}
	d->committed = 0;
}

static int has_up_web(const struct run *r)
{
	const struct proc *p;

	for (p = r->procs; p; p = p->next)
		if (p->port && p->state == PROC_UP)
			return 1;
	return 0;
}

static void go_live(struct deploy *d)
{
	struct app *a = d->a;
	long watch;

	if (d->run->m.static_root && d->web_count && swap_static(d) < 0) {
		deploy_fail(d, "%s", error_last());
		return;
	}
	if (!d->switched) {
		if (liveroute_switch(d->e, a, d->run, d->old, &d->sw) < 0) {
			deploy_fail(d, "the router refused the switch: %s",
				    error_last());
			return;
		}
		d->switched = 1;
	}
	d->t_live = now_ms();
	if (d->t_ready && d->e->nginx && (d->web_count || d->run->m.static_root))
		say(d, "-----> Switched traffic to release %d (%lld ms after it was ready)",
		    d->number, (long long)(now_ms() - d->t_ready));
	else if (d->web_count || d->run->m.static_root)
		say(d, "-----> Switched traffic to release %d", d->number);
	if (commit_live(d) < 0) {
		if (liveroute_revert(d->e, a) < 0)
			log_warnx("%s: cannot switch back: %s", a->name,
				  error_last());
		d->switched = 0;
		deploy_fail(d, "cannot record release %d as live: %s",
			    d->number, error_last());
		return;
	}
	d->run->supervised = 1;
	d->run->deploy = NULL;
	if (d->old)
		d->old->supervised = 0;
	a->live = d->run;
	cron_begin(a->live);
	if (d->kind == DEPLOY_NEW &&
	    release_set_status(a->dir, d->number, "deployed") < 0)
		log_warnx("%s", error_last());
	d->run = NULL;
	watch = a->live->m.watch_ms >= 0 ? a->live->m.watch_ms :
		d->e->cfg->watch_ms;
	if (!d->old || !has_up_web(d->old) || !d->web_count)
		watch = 0;	/* nothing to go back to */
	if (watch > 0) {
		d->step = STEP_WATCH;
		say(d, "-----> Watching release %d for %ld ms (release %d stays ready)",
		    d->number, watch, d->old->number);
		d->timer = loop_add_timer(d->e->loop, watch, on_watch_timer, d);
		d->livewatch = liveroute_watch_start(d->e, a->live,
						     on_watch_check_failed, d);
		if (!d->livewatch)
			log_warnx("%s: no health checks during the watch: %s",
				  a->name, error_last());
		return;
	}
	watch_over(d);
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
		if (d->switched && liveroute_revert(d->e, d->a) < 0)
			log_warnx("%s", error_last());
		d->switched = 0;
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
	char *url = NULL, *host = NULL, *want = NULL, peer[40];
	struct health *h;

	d->step = STEP_CONFIRM;
	for (p = d->run->procs; p && !p->port; p = p->next)
		;
	if (!d->e->nginx || (!p && !d->run->m.static_root)) {
		go_live(d);
		return;
	}
	if (!p && d->run->m.static_root) {
		if (swap_static(d) < 0) {
			deploy_fail(d, "%s", error_last());
			return;
		}
		/* a static site is switched, then checked through nginx */
		if (liveroute_switch(d->e, d->a, d->run, d->old, &d->sw) < 0) {
			deploy_fail(d, "the router refused the switch: %s",
				    error_last());
			return;
		}
		d->switched = 1;
	}
	url = xasprintf("http://%s%s", nginx_http_addr(d->e->nginx),
			d->run->m.health_path ? d->run->m.health_path : "/");
	host = xasprintf("%s.%s", d->a->name, d->e->cfg->domain);
	want = xasprintf("127.0.0.1:%d", p ? proc_http_port(p) : 0);
	memset(&req, 0, sizeof(req));
	req.url = url;
	req.host = host;
	req.max_status = d->run->m.health_max_status;
	req.interval_ms = 10;
	req.timeout_ms = CONFIRM_TIMEOUT_MS;
	req.unix_socket = nginx_probe_socket(d->e->nginx);
	if (p) {
		/* through nginx to this process only: users do not see it
		 * until the switch */
		req.header = liveroute_probe_header(proc_http_port(p), peer,
						    sizeof(peer));
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

/* The readiness check found where p answers: an app that bound PORT
 * itself gets no socket on a restart. */
static void proc_found_port(struct proc *p, int port)
{
	p->serves_on = port;
	if (port != p->sock_port)
		proc_close_socket(p);
}

/* Once the new processes are up and healthy, on a new release: app.json's
 * postdeploy (Dokku's, every deploy; Heroku's, the app's first deploy
 * only), before the release is confirmed through nginx, so a failing
 * script fails the deploy while the old release still serves. */
static void after_ready(struct deploy *d)
{
	const struct manifest *m = &d->run->m;
	int stage = d->post_stage++;

	if (d->kind == DEPLOY_NEW) {
		if (stage == 0 && m->postdeploy_cmd) {
			run_script(d, "postdeploy", m->postdeploy_cmd,
				   after_ready);
			return;
		}
		if (stage <= 1 && m->first_deploy_cmd && !d->a->release) {
			d->post_stage = 2;
			run_script(d, "postdeploy", m->first_deploy_cmd,
				   after_ready);
			return;
		}
	}
	confirm(d);
}

static void on_ready(void *arg, const struct health_result *r)
{
	struct check_ctx *cx = arg;
	struct deploy *d = cx->d;
	struct proc *p;

	d->checks[cx->i] = NULL;	/* finished: health.c frees it */
	if (!r->ok && cx->other >= 0 && d->checks[cx->other])
		return;		/* it may still answer on its other port */
	if (!r->ok) {
		struct buf tail = BUF_INIT;

		for (p = d->run->procs; p; p = p->next)
			if (p->port)
				proc_tail(p, &tail);
		deploy_fail_tail(d, &tail, "not ready after %ld ms: %s",
				 r->elapsed_ms,
				 r->error ? r->error : "no healthy answer");
		buf_release(&tail);
		return;
	}
	if (cx->other >= 0 && d->checks[cx->other]) {
		health_cancel(d->checks[cx->other]);
		d->checks[cx->other] = NULL;
	}
	if (cx->p)
		proc_found_port(cx->p, cx->port);
	if (--d->pending > 0)
		return;
	loop_del_timer(d->e->loop, d->hint_timer);
	d->hint_timer = 0;
	FREE_AND_NULL(d->checks);
	FREE_AND_NULL(d->check_ctx);
	d->nchecks = 0;
	/* The answer came from the port: it must be this app's, not from
	 * a program that bound the port before the app did (isolate.h). */
	for (p = d->run->procs; p; p = p->next) {
		if (p->port && isolate_port_check(d->e->iso, d->a->name,
						  p->port) < 0) {
			deploy_fail(d, "%s: %s", p->name, error_last());
			return;
		}
	}
	d->t_ready = now_ms();
	say(d, "-----> Healthy after %lld ms", (long long)(d->t_ready - d->t_spawn));
	after_ready(d);
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
	after_ready(d);
}

/*
 * A web process's listening socket, bound before it starts and handed
 * over at fd 3 (handoff.h; why this way: docs/start-server.md).  "auto"
 * binds a port the kernel picks, beside PORT, so that an app which binds
 * $PORT itself still finds it free; the readiness check then learns
 * which of the two the process answers on.  "inherit" binds PORT itself.
 */
static int proc_prepare_socket(struct proc *p, enum socket_mode mode)
{
	if (mode == SOCKET_NONE)
		return 0;
	if (handoff_open(mode == SOCKET_INHERIT ? p->port : 0, &p->sock_fd,
			 &p->sock_port) < 0)
		return -1;
	if (mode == SOCKET_INHERIT)
		p->serves_on = p->port;
	return 0;
}

static int start_check(struct deploy *d, struct proc *p, int port,
		       long timeout, long other)
{
	struct run *r = d->run;
	struct health_req req;
	struct check_ctx *cx = &d->check_ctx[d->nchecks];
	char *url;

	url = xasprintf("http://127.0.0.1:%d%s", port,
			r->m.health_path ? r->m.health_path : "/");
	memset(&req, 0, sizeof(req));
	req.url = url;
	req.max_status = r->m.health_max_status;
	req.interval_ms = r->m.health_wait_ms > 0 ?
		r->m.health_wait_ms : d->e->cfg->health_interval_ms;
	req.timeout_ms = timeout;
	/* app.json's healthchecks.web: content, timeout per attempt,
	 * initialDelay */
	req.want_body = r->m.health_content;
	req.attempt_timeout_ms = r->m.health_attempt_timeout_ms > 0 ?
		r->m.health_attempt_timeout_ms : 0;
	req.initial_delay_ms = r->m.health_initial_delay_ms > 0 ?
		r->m.health_initial_delay_ms : 0;
	cx->d = d;
	cx->i = d->nchecks;
	cx->p = p;
	cx->port = port;
	cx->other = other;
	d->checks[d->nchecks] = health_start(&req, on_ready, cx);
	free(url);
	if (!d->checks[d->nchecks])
		return -1;
	d->nchecks++;
	return 0;
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

		n = scale_of(&d->scale, spec);
		if (n == 0 && d->kind == DEPLOY_NEW)
			say(d, "-----> %s: scale 0, not started (berth scale %s %s=1 starts it)",
			    spec->type, d->a->name, spec->type);
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
			if (port && proc_prepare_socket(p, r->m.socket) < 0) {
				deploy_fail(d, "cannot bind a socket for %s: %s",
					    p->name, error_last());
				return;
			}
			if (port && p->sock_fd >= 0 && !p->serves_on)
				say(d, "-----> Starting %s on port %d (or its socket on port %d)",
				    p->name, port, p->sock_port);
			else if (port)
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
	d->hint_timer = loop_add_timer(d->e->loop, timeout > 2 * PORT_HINT_MS ?
				       PORT_HINT_MS : timeout / 2, on_port_hint, d);
	/* up to two checks a process: PORT and the socket handed over */
	d->checks = xcalloc(2 * d->pending, sizeof(*d->checks));
	d->check_ctx = xcalloc(2 * d->pending, sizeof(*d->check_ctx));
	for (p = r->procs; p; p = p->next) {
		int both;

		if (!p->port)
			continue;
		both = p->sock_fd >= 0 && !p->serves_on;
		if (start_check(d, p, proc_http_port(p), timeout,
				both ? (long)d->nchecks + 1 : -1) < 0 ||
		    (both && start_check(d, p, p->sock_port, timeout,
					 (long)d->nchecks - 1) < 0)) {
			deploy_fail(d, "cannot check %s: %s", p->name, error_last());
			return;
		}
	}
}

/*
 * A web process that does not listen on its PORT a few seconds after it
 * started most often listens on a port of its own choosing: say so while
 * the health check goes on waiting.
 */
static void on_port_hint(struct loop *l, void *arg)
{
	struct deploy *d = arg;
	struct proc *p;

	d->hint_timer = 0;
	for (p = d->run->procs; p; p = p->next)
		if (p->port && !p->serves_on && p->state == PROC_UP &&
		    port_bindable(p->port))
			say(d, " !     %s is not listening on PORT=%d yet: does it read $PORT?",
			    p->name, p->port);
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
		deployout_addf(d->out, "       %.*s", (int)len,
			       d->helper_out.data);
		logger_line(d->a->log, d->script_label, d->helper_out.data,
			    len);
		buf_consume(&d->helper_out, len + 1);
	}
}

static void drain_helper(struct deploy *d)
{
	while (d->helper_fd >= 0)
		on_helper_output(d->e->loop, d->helper_fd, LOOP_READ, d);
}

static void on_script_exit(pid_t pid, int status, void *arg)
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
		deployout_addf(d->out, "       %s", d->helper_out.data);
		logger_line(d->a->log, d->script_label, d->helper_out.data,
			    d->helper_out.len);
		buf_reset(&d->helper_out);
	}
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		deploy_fail(d, "%s command %s", d->script_label,
			    spawn_describe_status(status, why, sizeof(why)));
		return;
	}
	d->script_next(d);
}

/* A deploy script (the release phase, app.json's predeploy and
 * postdeploy): /bin/sh -c cmd in the new release, as the app's user,
 * with its environment; its output streamed to the pusher and logged
 * under 'label'.  Then next(d), or the deploy fails. */
static void run_script(struct deploy *d, const char *label, char *cmd,
		       void (*next)(struct deploy *d))
{
	struct strv env = STRV_INIT;
	struct spawn s;
	struct isolate_spawn is;
	struct cgroup_limits lim;
	int pfd[2];
	char *argv[] = { "/bin/sh", "-c", NULL, NULL };

	d->step = STEP_RELEASE_PHASE;
	d->script_label = label;
	d->script_next = next;
	say(d, "-----> Running %s command: %s", label, cmd);
	if (pipe2(pfd, O_CLOEXEC) < 0) {
		deploy_fail(d, "pipe: %s", strerror(errno));
		return;
	}
	build_env(&env, d->a, d->run, NULL);
	strv_pushf(&env, "BERTH_PROCESS=%s", label);
	argv[2] = cmd;
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
	reaper_watch(s.pid, on_script_exit, d);
}

/* Before the new processes start, on a new release: app.json's predeploy
 * (Dokku), then the Procfile's release phase; each in turn. */
static void release_phase(struct deploy *d)
{
	const struct manifest *m = &d->run->m;
	int stage = d->pre_stage++;

	if (d->kind != DEPLOY_NEW) {
		stop_first(d);
		return;
	}
	if (stage == 0 && m->predeploy_cmd) {
		run_script(d, "predeploy", m->predeploy_cmd, release_phase);
		return;
	}
	if (stage <= 1 && m->release_cmd) {
		d->pre_stage = 2;
		run_script(d, "release", m->release_cmd, release_phase);
		return;
	}
	stop_first(d);
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

/* The release's meta file, "deploying" until it is live or failed. */
static int record_release(struct deploy *d)
{
	struct release_info ri;
	struct strv types = STRV_INIT;
	size_t i;
	int ret;

	for (i = 0; i < d->run->m.nprocs; i++)
		strv_push(&types, d->run->m.procs[i].type);
	memset(&ri, 0, sizeof(ri));
	ri.source = d->source;
	ri.commit = d->commit;
	ri.pusher = d->pusher;
	ri.buildpack = d->buildpack;
	ri.from = d->from_release;
	ri.config = d->config_change;
	ri.types = types.n ? types.v : (char *const[]){ NULL };
	ret = release_meta_write(d->a->dir, d->number, &ri, "deploying");
	strv_release(&types);
	return ret;
}

static void prepare(struct deploy *d)
{
	struct app *a = d->a;
	struct run *r = d->run;
	const struct proc_spec *web = manifest_proc(&r->m, "web");
	size_t old_nslots = a->nslots, i;
	char *why = NULL;

	d->web_count = web ? (size_t)scale_of(&d->scale, web) : 0;
	if (d->kind == DEPLOY_NEW && record_release(d) < 0) {
		deploy_fail(d, "cannot record release %d: %s", d->number,
			    error_last());
		return;
	}
	/* A database for apps that ask, kept in the config vars. */
	if (r->m.postgres && !strv_env_get(&r->env, "DATABASE_URL") &&
	    strv_env_get(&a->env, "DATABASE_URL")) {
		strv_env_set(&r->env, "DATABASE_URL",
			     strv_env_get(&a->env, "DATABASE_URL"));
	} else if (r->m.postgres && !strv_env_get(&r->env, "DATABASE_URL")) {
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
		/* The database exists now, whatever becomes of the deploy:
		 * the app's config keeps its URL at once. */
		strv_env_set(&a->env, "DATABASE_URL", url);
		strv_env_set(&r->env, "DATABASE_URL", url);
		free(url);
		if (env_save(a) < 0) {
			deploy_fail(d, "%s", error_last());
			return;
		}
	}
	if (d->kind == DEPLOY_NEW &&
	    release_env_write(a->dir, d->number, &r->env) < 0) {
		deploy_fail(d, "cannot record the config of release %d: %s",
			    d->number, error_last());
		return;
	}
	if (ensure_slots(d, d->web_count) < 0) {
		why = xstrdup(error_last());
		goto undo_slots;
	}
	if (liveroute_claim(d->e, a, &r->m) < 0) {
		why = xstrdup(error_last());
		goto undo_slots;
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

	/* The app's alone: nginx's workers (berth-www) and other users do
	 * not enter it, whatever modes the bundle's files carry.  Before
	 * any code of the app runs, so no link can be swapped in. */
	if (r == 0) {
		if (isolate_give_tree(d->run->dir, uid, gid) < 0)
			return -1;
		if (chmod(d->run->dir, 0700) < 0)
			return error_setsys("cannot close '%s'", d->run->dir);
		return 0;
	}
	if (r != ERR_NOTFOUND)
		return -1;
	if (!d->e->drop_priv)
		return 0;
	return chown_tree(d->run->dir, d->e->run_uid, d->e->run_gid);
}

/* The config a deploy's release runs with: its own for a restart or a
 * restore, release N's for a rollback to N, else the app's with the
 * changes asked for. */
static int deploy_env(struct deploy *d, struct strv *env)
{
	struct app *a = d->a;
	int from = d->kind != DEPLOY_NEW ? a->release :
		d->from_live ? 0 : d->from_release;
	size_t i;
	int r = from ? release_env_read(a->dir, from, env) : ERR_NOTFOUND;

	if (r == ERR_NOTFOUND)	/* none, or kept before berth kept them */
		strv_copy(env, &a->env);
	else if (r < 0)
		return -1;
	for (i = 0; i < d->env_changes.n; i++) {
		const char *c = d->env_changes.v[i], *eq = strchr(c, '=');

		if (eq) {
			char *k = xstrndup(c, (size_t)(eq - c));

			strv_env_set(env, k, eq + 1);
			free(k);
		} else {
			strv_env_unset(env, c);
		}
	}
	return 0;
}

/* What the deploy changes in the config, against what runs now. */
static void deploy_config_change(struct deploy *d, const struct strv *env)
{
	struct app *a = d->a;
	struct strv before = STRV_INIT;
	struct buf b = BUF_INIT;

	if (a->live)
		strv_copy(&before, &a->live->env);
	else if (a->release &&
		 release_env_read(a->dir, a->release, &before) == ERR_NOTFOUND)
		strv_copy(&before, &a->env);
	release_config_change(&b, &before, env);
	d->config_change = b.len ? buf_detach(&b) : NULL;
	buf_release(&b);
	strv_release(&before);
}

static void deploy_start(struct deploy *d)
{
	struct app *a = d->a;
	char *bundle = NULL, *rdir = NULL;
	struct strv env = STRV_INIT;
	int pfd[2] = { -1, -1 };
	pid_t pid;
	size_t i;
	static unsigned seq;

	d->t0 = now_ms();
	d->old = a->live;
	for (i = 0; i < a->scale.n; i++)
		strv_push(&d->scale, a->scale.v[i]);
	scale_merge(&d->scale, &d->scale_changes);
	if (d->from_live) {
		d->from_release = a->release;
		if (!a->release) {
			deploy_fail(d, "'%s' has no release to change", a->name);
			goto out;
		}
		free(d->buildpack);
		free(d->commit);
		d->buildpack = release_meta_get(a->dir, a->release, "buildpack");
		d->commit = release_meta_get(a->dir, a->release, "commit");
		deployout_set_commit(d->out, d->commit);
	}
	if (deploy_env(d, &env) < 0) {
		deploy_fail(d, "%s", error_last());
		goto out;
	}
	if (d->kind == DEPLOY_NEW) {
		int n = a->next_release + 1;

		d->env_changed = !env_equal(&env, &a->env);
		deploy_config_change(d, &env);
		rdir = release_path(a->dir, n, NULL);
		bundle = release_path(a->dir, n, "bundle.tar.gz");
		if (mkdir_p(rdir, 0750) < 0) {
			deploy_fail(d, "%s", error_last());
			goto out;
		}
		if (d->from_release) {
			char *from = release_path(a->dir, d->from_release,
						  "bundle.tar.gz");

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
		/* Written to state with the next deploy that goes live; after
		 * a crash, apps_load() counts the folders. */
		a->next_release = n;
		d->number = n;
		deployout_set_release(d->out, n);
		say(d, "-----> Deploying release %d of %s", n, a->name);
		client_fields(d->c, "release=%d", n);
	} else {
		d->number = a->release;
		deployout_set_release(d->out, d->number);
		rdir = release_path(a->dir, a->release, NULL);
		bundle = release_path(a->dir, a->release, "bundle.tar.gz");
		say(d, "-----> %s release %d of %s",
		    d->kind == DEPLOY_RESTORE ? "Restoring" : "Restarting",
		    d->number, a->name);
	}
	d->run = xcalloc(1, sizeof(*d->run));
	d->run->app = a;
	d->run->number = d->number;
	d->run->deploy = d;
	d->run->env = env;
	memset(&env, 0, sizeof(env));
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
		    copy_static(d) == 0 && give_release(d) == 0)
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
	strv_release(&env);
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

/* A new app: its folders, its state, its log.  Not while an app of that
 * name is still being removed (its folders are going). */
static int app_make(struct engine *e, const char *name, struct app **out)
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

void app_cmd_create(struct engine *e, const char *name, struct client *c)
{
	struct app *a;

	if (!app_name_valid(name)) {
		client_error(c, "invalid app name '%s' (use a-z, 0-9 and '-', at most %d characters)",
			     name, APP_NAME_MAX);
		return;
	}
	if (app_find(e, name)) {
		client_error(c, "app '%s' already exists", name);
		return;
	}
	if (app_make(e, name, &a) < 0) {
		client_error(c, "%s", error_last());
		return;
	}
	logger_linef(a->log, "berth", "created %s", name);
	client_data(c, "-----> Created %s: push to it, or set its config first", name);
	client_ok(c);
}

/* A push's build output, line by line into the app's log, and all of
 * it (the lines the pusher saw) into its output record. */
struct build_log {
	struct engine *e;
	char *name;
	struct buf partial;
	struct client *c;
	struct deployout *out;
};

static struct client *build_log_client(struct build_log *bl)
{
	return bl->c;
}

static struct deployout *build_log_output(struct build_log *bl)
{
	return bl->out;
}

#define BUILD_LINE_MAX 16384

static void build_log_line(struct build_log *bl, const char *line, size_t len)
{
	/* Looked up each time: the app may be removed during its build. */
	struct app *a = app_find(bl->e, bl->name);

	if (a && a->log)
		logger_line(a->log, "build", line, len);
}

static void on_build_input(struct client *c, const char *data, size_t len,
			   void *arg)
{
	struct build_log *bl = arg;
	char *nl;

	deployout_add(bl->out, data, len);
	buf_add(&bl->partial, data, len);
	while ((nl = memchr(bl->partial.data, '\n', bl->partial.len))) {
		build_log_line(bl, bl->partial.data,
			       (size_t)(nl - bl->partial.data));
		buf_consume(&bl->partial, (size_t)(nl - bl->partial.data) + 1);
	}
	if (bl->partial.len > BUILD_LINE_MAX) {
		build_log_line(bl, bl->partial.data, bl->partial.len);
		buf_reset(&bl->partial);
	}
}

static void on_build_close(struct client *c, void *arg)
{
	struct build_log *bl = arg;
	struct app *a = app_find(bl->e, bl->name);

	if (bl->partial.len)
		build_log_line(bl, bl->partial.data, bl->partial.len);
	if (a && a->building == bl)
		a->building = NULL;
	deployout_unref(bl->out);
	buf_release(&bl->partial);
	free(bl->name);
	free(bl);
}

void app_cmd_build_log(struct engine *e, const char *name, struct client *c)
{
	struct build_log *bl;
	struct app *a;

	if (!app_name_valid(name)) {
		client_error(c, "invalid app name '%s'", name);
		return;
	}
	a = app_find(e, name);
	if (!a) {
		/* A first push: the app exists from now on, deploy or not. */
		if (app_make(e, name, &a) < 0) {
			client_error(c, "%s", error_last());
			return;
		}
		logger_linef(a->log, "berth", "created %s by a push", name);
	}
	bl = xcalloc(1, sizeof(*bl));
	bl->e = e;
	bl->name = xstrdup(name);
	bl->c = c;
	if (deployout_open(&bl->out, a->dir, "push", NULL,
			   e->cfg->keep_releases) < 0)
		log_warnx("%s: %s", name, error_last());
	if (a->building)	/* one build at a time: a stale one */
		log_warnx("%s: a second build's output while one is open",
			  name);
	a->building = bl;
	client_on_input(c, on_build_input, bl);
	client_on_close(c, on_build_close, bl);
}

/*
 * The deploy's kept output: a push's goes on in the record its build
 * opened (what the build's connection sent before the deploy was asked
 * for comes first); any other new release or restart gets a record of
 * its own.  A restore at engine start is no one's deploy: none.
 */
static struct client *build_log_client(struct build_log *bl);
static struct deployout *build_log_output(struct build_log *bl);

static void deploy_output_open(struct deploy *d, const struct deploy_opts *o)
{
	struct app *a = d->a;
	const char *kind;

	if (d->kind == DEPLOY_NEW && d->source && !strcmp(d->source, "push") &&
	    a->building) {
		client_read_input(build_log_client(a->building));
		if (a->building) {
			d->out = build_log_output(a->building);
			deployout_ref(d->out);
			deployout_set_commit(d->out, d->commit);
			d->out_of_push = 1;
			return;
		}
	}
	if (d->kind == DEPLOY_RESTORE)
		return;
	kind = d->kind == DEPLOY_RESTART ? "restart" :
	       d->from_live ? "config" : d->source ? d->source : "cli";
	if (deployout_open(&d->out, a->dir, kind,
			   o && o->commit ? o->commit : NULL,
			   d->e->cfg->keep_releases) < 0)
		log_warnx("%s: %s", a->name, error_last());
}

void app_deploy(struct engine *e, const char *name, enum deploy_kind kind,
		const struct deploy_opts *o, struct client *c)
{
	struct app *a;
	struct deploy *d;
	int created = 0;
	size_t i;

	if (!app_name_valid(name)) {
		if (c)
			client_error(c, "invalid app name '%s' (use a-z, 0-9 and '-', at most %d characters)",
				     name, APP_NAME_MAX);
		return;
	}
	a = app_find(e, name);
	if (kind != DEPLOY_NEW && (!a || !a->release)) {
		if (c && a)
			client_error(c, "'%s' has no release yet", name);
		else if (c)
			client_error_code(c, CONTROL_ERR_NOTFOUND,
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
		if (app_make(e, name, &a) < 0) {
			if (c)
				client_error(c, "%s", error_last());
			return;
		}
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
		d->from_live = o->from_live;
		if (o->scale)
			scale_merge(&d->scale_changes, o->scale);
		if (o->env_changes)
			for (i = 0; i < o->env_changes->n; i++)
				strv_push(&d->env_changes, o->env_changes->v[i]);
	}
	deploy_output_open(d, o);
	if (o && o->intro)
		say(d, "%s", o->intro);
	if (a->waiting) {
		struct deploy *old = a->waiting;

		if (old->c)
			client_error(old->c, "superseded by a newer deploy of '%s'",
				     a->name);
		if (!old->out_of_push)
			deployout_addf(old->out, " !     superseded by a newer deploy of '%s'",
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

/* Stop every process of r that is not stopping already. */
static void stop_run(struct run *r, long timeout_ms)
{
	struct proc *p;

	if (!r)
		return;
	r->supervised = 0;
	for (p = r->procs; p; p = p->next)
		if (p->state != PROC_STOPPING && p->state != PROC_DEAD)
			proc_stop(p, timeout_ms);
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
		struct deploy *d = a->deploy;

		if (a->waiting) {
			struct deploy *w = a->waiting;

			a->waiting = NULL;
			if (w->c)
				client_error(w->c, "the engine is stopping: the deploy of '%s' did not start",
					     a->name);
			deploy_free(w);
		}
		if (!a->shutdown_said && (a->live || d)) {
			a->shutdown_said = 1;
			logger_linef(a->log, "berth", "stopping with the engine");
		}
		loop_del_timer(e->loop, a->retry_timer);
		a->retry_timer = 0;
		if (d && d->step == STEP_DRAIN) {
			loop_del_timer(e->loop, d->timer);
			d->timer = 0;
			on_drain_timer(e->loop, d);
		} else if (d && d->step != STEP_RETIRE) {
			deploy_fail(d, "the engine is stopping");
		}
		stop_run(a->live, timeout);
		if (a->deploy) {
			stop_run(a->deploy->run, timeout);
			stop_run(a->deploy->old, timeout);
		}
	}
}

void apps_free(struct engine *e)
{
	struct app *a;

	while ((a = e->apps)) {
		struct deploy *d = a->deploy;

		e->apps = a->next;
		if (d) {
			if (d->c)
				client_error(d->c, "the engine stopped before the deploy of '%s' ended",
					     a->name);
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

void app_cmd_url(struct app *a, struct client *c)
{
	char *url = app_url(a);
	struct strv hosts = STRV_INIT;
	size_t i;

	client_data(c, "%s", url);
	free(url);
	/* then its other hosts: app.yaml's, and domains:add's */
	app_hosts_list(a, &hosts);
	for (i = 0; i < hosts.n; i++) {
		url = app_host_url(a, hosts.v[i]);
		client_data(c, "%s", url);
		free(url);
	}
	strv_release(&hosts);
	client_ok(c);
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

void app_cmd_apps(struct engine *e, struct client *c, const char *key)
{
	struct app *a;

	client_data(c, "%-24s %-10s %-8s %s", "NAME", "STATUS", "RELEASE",
		    "PROCESSES");
	for (a = e->apps; a; a = a->next) {
		struct buf procs = BUF_INIT;
		struct proc *p;
		char rel[16];

		if (a->removing ||
		    (key && access_check(e->cfg->root, a->name, key, 0) != 0))
			continue;
		if (a->live)
			for (p = a->live->procs; p; p = p->next)
				buf_addf(&procs, "%s%s", procs.len ? " " : "",
					 p->name);
		snprintf(rel, sizeof(rel), a->release ? "v%d" : "-", a->release);
		if (a->note && !a->deploy && a->retry_timer)
			buf_addf(&procs, "%s(%s; next try in %lld s)",
				 procs.len ? "  " : "-  ", a->note,
				 (long long)((a->retry_at - now_ms() + 999) / 1000));
		else if (a->note && !a->deploy)
			buf_addf(&procs, "%s(%s)", procs.len ? "  " : "-  ",
				 a->note);
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
				snprintf(port, sizeof(port), "%d",
					 proc_http_port(p));
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

/* Keep the last n lines of out whose source want takes. */
static void logs_filter(struct buf *out, const char *want, long n)
{
	struct buf keep = BUF_INIT;
	char *line, *save = NULL;
	struct strv lines = STRV_INIT;
	size_t i, from;

	if (!out->len)
		return;
	for (save = out->data, line = str_token(&save, "\n"); line;
	     line = str_token(&save, "\n")) {
		size_t len;
		const char *src = logger_line_source(line, &len);

		if (src && logger_source_matches(want, src, len))
			strv_push(&lines, line);
	}
	from = lines.n > (size_t)n ? lines.n - (size_t)n : 0;
	for (i = from; i < lines.n; i++)
		buf_addf(&keep, "%s\n", lines.v[i]);
	strv_release(&lines);
	buf_release(out);
	*out = keep;
}

void app_cmd_logs(struct engine *e, const char *name, long n, int follow,
		  const char *want, struct client *c)
{
	struct app *a = app_find(e, name);
	char *dir = engine_path(e, "logs/%s", name);
	struct buf out = BUF_INIT;
	char *line, *save = NULL;

	if (!a) {
		client_error_code(c, CONTROL_ERR_NOTFOUND,
				  "app '%s' does not exist", name);
		goto out;
	}
	if (logger_tail(dir, want ? 100000 : n, &out) < 0) {
		client_error(c, "%s", error_last());
		goto out;
	}
	if (want)
		logs_filter(&out, want, n);
	if (out.len)
		for (save = out.data, line = str_token(&save, "\n"); line;
		     line = str_token(&save, "\n"))
			client_data(c, "%s", line);
	if (follow && a->log)
		logger_follow(a->log, c, want);
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
	restore_retry_cancel(a);
	logger_linef(a->log, "berth", "stopping %s", a->name);
	if (liveroute_state(a->eng, a, ROUTE_STOPPED, 0) < 0)
		log_warnx("%s: %s", a->name, error_last());
	if (a->live)
		a->live->supervised = 0;
	n = run_procs(a->live, &ps, NULL, NULL);
	client_ref(c);
	client_data(c, "-----> Stopping %zu process%s of %s", n,
		    n == 1 ? "" : "es", a->name);
	stop_procs(ps, n, a->eng->cfg->stop_timeout_ms, stop_done, c);
	free(ps);
}

/* Restart a's release; config saved since it went live (set
 * --no-restart, or set while stopped) makes a new release of the live
 * bundle instead. */
static void restart_with_saved_config(struct app *a, struct client *c)
{
	struct strv renv = STRV_INIT;
	struct deploy_opts o;

	if (a->release &&
	    release_env_read(a->dir, a->release, &renv) == 0 &&
	    !env_equal(&renv, &a->env)) {
		memset(&o, 0, sizeof(o));
		o.source = "config";
		o.from_live = 1;
		app_deploy(a->eng, a->name, DEPLOY_NEW, &o, c);
	} else {
		app_deploy(a->eng, a->name, DEPLOY_RESTART, NULL, c);
	}
	strv_release(&renv);
}

/* An explicit restart applies config saved with set --no-restart (as
 * Dokku's ps:restart does); crash restarts and restores never do. */
void app_cmd_restart(struct app *a, struct client *c)
{
	restart_with_saved_config(a, c);
}

/* ps:restart APP PROC: the processes restarted together. */
struct proc_restart {
	struct client *c;
	size_t left;
	struct buf failed;
	char *what;
};

static void proc_restart_exit(struct proc *p, void *arg)
{
	struct proc_restart *pr = arg;

	p->on_exit = NULL;
	p->on_exit_arg = NULL;
	if (!p->app->eng->stopping && p->run == p->app->live &&
	    proc_spawn(p) < 0) {
		buf_addf(&pr->failed, "%s%s: %s", pr->failed.len ? "; " : "",
			 p->name, error_last());
		logger_linef(p->app->log, "berth", "cannot restart %s: %s",
			     p->name, error_last());
	}
	live_route_changed(p);
	if (--pr->left)
		return;
	if (pr->failed.len)
		client_error(pr->c, "%s", pr->failed.data);
	else {
		client_data(pr->c, "-----> Restarted %s", pr->what);
		client_ok(pr->c);
	}
	client_unref(pr->c);
	buf_release(&pr->failed);
	free(pr->what);
	free(pr);
}

/* "web" takes web.1, web.2...; "web.2" only itself. */
static int proc_picked(const struct proc *p, const void *arg)
{
	const char *want = arg;
	size_t k = strlen(p->spec->type);

	if (p->oneoff)
		return 0;
	if (!strcmp(p->name, want))
		return 1;
	return !strchr(want, '.') && !strncmp(want, p->name, k) &&
	       !want[k];
}

static int web_left_up(const struct run *r, const char *want)
{
	const struct proc *p;

	for (p = r->procs; p; p = p->next)
		if (p->port && p->state == PROC_UP && !proc_picked(p, want))
			return 1;
	return 0;
}

void app_cmd_restart_proc(struct app *a, const char *want,
			  struct client *c)
{
	struct proc **ps = NULL;
	struct proc_restart *pr;
	size_t n, i;
	int web = 0;

	if (a->deploy) {
		client_error(c, "'%s' is deploying; try again when it is done",
			     a->name);
		return;
	}
	if (!a->live) {
		client_error(c, "'%s' has no running release", a->name);
		return;
	}
	n = run_procs(a->live, &ps, proc_picked, want);
	if (!n) {
		client_error(c, "'%s' has no process '%s' (see ps %s)", a->name,
			     want, a->name);
		goto out;
	}
	for (i = 0; i < n; i++)
		web |= ps[i]->port != 0;
	if (web && !web_left_up(a->live, want)) {
		/* every web process: the zero-downtime restart of the app */
		client_data(c, "-----> %s is every web process of %s: restarting the app with no downtime",
			    want, a->name);
		app_cmd_restart(a, c);
		goto out;
	}
	pr = xcalloc(1, sizeof(*pr));
	pr->c = c;
	pr->left = n;
	pr->what = xstrdup(want);
	client_ref(c);
	logger_linef(a->log, "berth", "restarting %s", want);
	for (i = 0; i < n; i++) {
		ps[i]->on_exit = proc_restart_exit;
		ps[i]->on_exit_arg = pr;
	}
	for (i = 0; i < n; i++) {
		/* out of the route first: the other web processes answer */
		ps[i]->state = ps[i]->pid > 0 ? PROC_STOPPING : ps[i]->state;
		if (ps[i]->port)
			live_route_changed(ps[i]);
		if (ps[i]->state == PROC_STOPPING)
			ps[i]->state = PROC_UP;
		proc_stop(ps[i], a->eng->cfg->stop_timeout_ms);
	}
out:
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
	/* config set while it was stopped makes a new release */
	restart_with_saved_config(a, c);
}

void app_cmd_scale(struct app *a, int argc, char **argv, struct client *c)
{
	struct strv changes = STRV_INIT;
	struct deploy_opts o;
	int i;

	if (!a->live && (a->release || a->deploy)) {
		client_error(c, "'%s' is not running a release", a->name);
		goto out;
	}
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
		if (a->live ? !manifest_proc(&a->live->m, type) :
		    !proc_type_valid(type)) {
			client_error(c, a->live ?
				     "no process type '%s' in release %d of '%s'" :
				     "invalid process type '%s'",
				     type, a->release, a->name);
			free(type);
			goto out;
		}
		strv_pushf(&changes, "%s=%ld", type, n);
		free(type);
	}
	if (!a->live) {
		/* before the first deploy: kept, and the first deploy
		 * starts with it (over app.json's formation) */
		scale_merge(&a->scale, &changes);
		if (app_save(a) < 0) {
			client_error(c, "%s", error_last());
			goto out;
		}
		for (i = 0; i < (int)changes.n; i++)
			client_data(c, "-----> %s: kept for the first deploy of %s",
				    changes.v[i], a->name);
		client_ok(c);
		goto out;
	}
	/* a->scale changes only when the new processes are live; the
	 * changes apply to the scale of that moment (see deploy_start()). */
	memset(&o, 0, sizeof(o));
	o.scale = &changes;
	app_deploy(a->eng, a->name, DEPLOY_RESTART, &o, c);
out:
	strv_release(&changes);
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

/* Apply "KEY=VALUE" sets and "KEY" unsets to env. */
static void env_apply(struct strv *env, const struct strv *changes)
{
	size_t i;

	for (i = 0; i < changes->n; i++) {
		const char *ch = changes->v[i], *eq = strchr(ch, '=');

		if (eq) {
			char *k = xstrndup(ch, (size_t)(eq - ch));

			strv_env_set(env, k, eq + 1);
			free(k);
		} else {
			strv_env_unset(env, ch);
		}
	}
}

/* Check "set K=V..." or "unset K..." words into changes; -1 after
 * answering c. */
static int config_changes(struct strv *changes, int set, int argc,
			  char **argv, struct client *c)
{
	int i;

	for (i = 0; i < argc; i++) {
		char *eq = set ? strchr(argv[i], '=') : NULL, *k;
		const char *v;

		if (set && !eq) {
			client_error(c, "config set: expected KEY=VALUE, got '%s'",
				     argv[i]);
			return -1;
		}
		k = set ? xstrndup(argv[i], (size_t)(eq - argv[i])) :
			xstrdup(argv[i]);
		if (!env_key_valid(k)) {
			client_error(c, "invalid config var name '%s'", k);
			free(k);
			return -1;
		}
		for (v = set ? eq + 1 : ""; *v; v++)
			if ((unsigned char)*v < 0x20 && *v != '\t') {
				client_error(c, "the value of '%s' holds a control character%s",
					     k, *v == '\n' ?
					     " (a new line: multi-line values are not supported yet)" : "");
				free(k);
				return -1;
			}
		free(k);
		strv_push(changes, argv[i]);
	}
	return 0;
}

void app_cmd_config(struct app *a, int argc, char **argv, struct client *c)
{
	struct strv changes = STRV_INIT, env = STRV_INIT, words = STRV_INIT;
	struct buf dec = BUF_INIT;
	int i, first = 1, no_restart = 0, encoded = 0;
	size_t j;
	struct deploy_opts o;
	char *path = NULL;

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
	/* Dokku's flags: --no-restart (saved, applied at the next deploy or
	 * restart), --encoded (set: values in base64) */
	for (; first < argc && !strncmp(argv[first], "--", 2); first++) {
		if (!strcmp(argv[first], "--no-restart"))
			no_restart = 1;
		else if (!strcmp(argv[first], "--encoded") &&
			 !strcmp(argv[0], "set"))
			encoded = 1;
		else
			break;
	}
	if ((strcmp(argv[0], "set") && strcmp(argv[0], "unset")) ||
	    argc <= first) {
		client_error(c, "usage: config NAME [set [--no-restart] [--encoded] K=V... | unset [--no-restart] K... | get K]");
		return;
	}
	for (i = first; i < argc; i++) {
		char *eq = strchr(argv[i], '=');

		if (!encoded || !eq) {
			strv_push(&words, argv[i]);
			continue;
		}
		buf_reset(&dec);
		if (base64_decode(&dec, eq + 1) < 0 ||
		    (dec.len && memchr(dec.data, '\0', dec.len))) {
			client_error(c, "the value of '%.*s' is not base64 of a text",
				     (int)(eq - argv[i]), argv[i]);
			goto out;
		}
		strv_pushf(&words, "%.*s=%s", (int)(eq - argv[i]), argv[i],
			   dec.data ? dec.data : "");
	}
	if (config_changes(&changes, !strcmp(argv[0], "set"), (int)words.n,
			   words.v, c) < 0)
		goto out;
	if (a->live && !a->stopped && !no_restart) {
		/*
		 * A config change is a new release of the same bundle.  The
		 * app's config changes only if it goes live: until then (and
		 * if it fails) a->env and ROOT/apps/NAME/env are as they were.
		 */
		memset(&o, 0, sizeof(o));
		o.source = "config";
		o.from_live = 1;
		o.env_changes = &changes;
		app_deploy(a->eng, a->name, DEPLOY_NEW, &o, c);
		goto out;
	}
	/* Nothing runs: the config is what the next release will get. */
	strv_copy(&env, &a->env);
	env_apply(&env, &changes);
	path = xasprintf("%s/env", a->dir);
	if (env_file_write(path, &env) < 0) {
		client_error(c, "cannot save the config of '%s': %s", a->name,
			     error_last());
		goto out;
	}
	strv_release(&a->env);
	a->env = env;
	memset(&env, 0, sizeof(env));
	client_data(c, "-----> Config of %s saved; it applies at the next %s",
		    a->name, no_restart && a->live && !a->stopped ?
		    "deploy or restart" : a->release ? "start" : "deploy");
	client_ok(c);
out:
	free(path);
	strv_release(&changes);
	strv_release(&words);
	strv_release(&env);
	buf_release(&dec);
}

static void releases_answer(struct app *a, struct client *c, int newest)
{
	char *st = newest ? release_meta_get(a->dir, newest, "status") : NULL;

	client_ok_fields(c, "live=%d newest=%d status=%s", a->release, newest,
			 newest == a->release && newest ? "live" :
			 st && *st && !strpbrk(st, " =\n") ? st : "none");
	free(st);
}

void app_cmd_releases(struct app *a, struct client *c)
{
	int *nums;
	size_t n = release_list(a->dir, &nums), i;

	client_data(c, "%-8s %-11s %-12s %-21s %-10s %s", "RELEASE", "STATUS",
		    "COMMIT", "TIME", "BUILDPACK", "SOURCE");
	for (i = n; i-- > 0;) {
		char *st = release_meta_get(a->dir, nums[i], "status");
		char *commit = release_meta_get(a->dir, nums[i], "commit");
		char *t = release_meta_get(a->dir, nums[i], "time");
		char *bp = release_meta_get(a->dir, nums[i], "buildpack");
		char *src = release_meta_get(a->dir, nums[i], "source");
		char *conf = release_meta_get(a->dir, nums[i], "config");
		char rel[16];

		snprintf(rel, sizeof(rel), "v%d%s", nums[i],
			 nums[i] == a->release ? "*" : "");
		if (conf)
			client_data(c, "%-8s %-11s %-12.10s %-21s %-10s %-9s config: %s",
				    rel, nums[i] == a->release ? "live" :
				    (st ? st : "?"), commit ? commit : "-",
				    t ? t : "-", bp ? bp : "-", src ? src : "-",
				    conf);
		else
			client_data(c, "%-8s %-11s %-12.10s %-21s %-10s %s", rel,
				    nums[i] == a->release ? "live" :
				    (st ? st : "?"), commit ? commit : "-",
				    t ? t : "-", bp ? bp : "-", src ? src : "-");
		free(st);
		free(commit);
		free(t);
		free(bp);
		free(src);
		free(conf);
	}
	/* for programs: what is live, and what became of the newest */
	releases_answer(a, c, n ? nums[n - 1] : 0);
	free(nums);
}

static void output_list(struct app *a, struct client *c)
{
	int *nums;
	size_t n = deployout_list(a->dir, &nums), i;

	client_data(c, "%-7s %-8s %-10s %-9s %-21s %s", "DEPLOY", "RELEASE",
		    "STATUS", "KIND", "TIME", "COMMIT");
	for (i = n; i-- > 0;) {
		struct deployout_info in;
		char rel[16];

		if (deployout_info_read(a->dir, nums[i], &in) < 0)
			continue;
		snprintf(rel, sizeof(rel), in.release ? "v%d" : "-",
			 in.release);
		client_data(c, "%-7d %-8s %-10s %-9s %-21s %.10s", in.deploy,
			    rel, in.status, in.kind, in.time,
			    in.commit[0] ? in.commit : "-");
	}
	free(nums);
	client_ok(c);
}

void app_cmd_releases_output(struct app *a, int argc, char **argv,
			     struct client *c)
{
	struct buf b = BUF_INIT;
	struct deployout *open_rec;
	int release = 0, deploy = 0, follow = 1, i, r;
	char *line, *nl;

	for (i = 2; i < argc; i++) {
		long v;

		if (!strcmp(argv[i], "--list")) {
			output_list(a, c);
			return;
		} else if (!strcmp(argv[i], "--no-follow")) {
			follow = 0;
		} else if (!strcmp(argv[i], "--deploy") && i + 1 < argc &&
			   (v = parse_long(argv[i + 1], 1L << 30)) > 0) {
			deploy = (int)v;
			i++;
		} else if (!release && !deploy &&
			   (v = parse_long(argv[i][0] == 'v' ? argv[i] + 1 :
					   argv[i], 1L << 30)) > 0) {
			release = (int)v;
		} else {
			client_error(c, "usage: releases:output NAME [N]");
			return;
		}
	}
	if (!deploy) {
		r = deployout_find(a->dir, release, &deploy);
		if (r == ERR_NOTFOUND && !release) {
			client_error(c, "'%s' has no deploy output kept yet",
				     a->name);
			return;
		}
		if (r == ERR_NOTFOUND) {
			char *dir = release_path(a->dir, release, NULL);
			int known = path_exists(dir);

			free(dir);
			if (known)
				client_error(c, "release %d of '%s' has no output kept (made before berth kept deploy output)",
					     release, a->name);
			else
				client_error(c, "'%s' has no release %d",
					     a->name, release);
			return;
		}
	}
	r = deployout_read(a->dir, deploy, &b);
	if (r == ERR_NOTFOUND) {
		client_error(c, "'%s' has no deploy %d output kept", a->name,
			     deploy);
		goto out;
	}
	if (r < 0) {
		client_error(c, "%s", error_last());
		goto out;
	}
	/* The engine is one thread: what the file holds now and what the
	 * record writes from here on are the whole output, in order. */
	for (line = b.data; line && *line; line = nl ? nl + 1 : NULL) {
		nl = strchr(line, '\n');
		if (nl)
			*nl = '\0';
		client_data(c, "%s", line);
	}
	open_rec = deployout_find_open(a->dir, deploy);
	if (open_rec && follow)
		deployout_follow(open_rec, c);
	else
		client_ok(c);
out:
	buf_release(&b);
}

void app_cmd_rollback(struct app *a, int number, struct client *c)
{
	int *nums;
	size_t n = release_list(a->dir, &nums), i;
	struct deploy_opts o;
	char *bundle = NULL, *bp, *commit, *intro;

	if (number == 0) {
		/* The newest release before the live one that went live. */
		for (i = n; i-- > 0;) {
			if (nums[i] >= a->release)
				continue;
			if (release_went_live(a->dir, nums[i])) {
				number = nums[i];
				break;
			}
		}
		if (!number) {
			client_error(c, "'%s' has no earlier release to roll back to",
				     a->name);
			goto out;
		}
	}
	bundle = release_path(a->dir, number, "bundle.tar.gz");
	if (!path_exists(bundle)) {
		char *dir = release_path(a->dir, number, NULL);

		if (path_exists(dir))
			client_error(c, "release %d of '%s' never went live: nothing to roll back to",
				     number, a->name);
		else
			client_error(c, "release %d of '%s' does not exist",
				     number, a->name);
		free(dir);
		goto out;
	}
	/* Its code and its config: a release is both. */
	memset(&o, 0, sizeof(o));
	o.source = "rollback";
	o.from_release = number;
	bp = release_meta_get(a->dir, number, "buildpack");
	commit = release_meta_get(a->dir, number, "commit");
	o.buildpack = bp;
	o.commit = commit;
	intro = xasprintf("-----> Rolling back %s to release %d", a->name,
			  number);
	o.intro = intro;
	app_deploy(a->eng, a->name, DEPLOY_NEW, &o, c);
	free(intro);
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
		for (save = out.data, line = str_token(&save, "\n"); line;
		     line = str_token(&save, "\n"))
			client_data(c, "%s", line);
	buf_release(&out);
	client_ok(c);
}

/* ---------- read by the stats (appstats.c) ---------- */

const char *app_deploy_step(const struct app *a)
{
	static const char *const names[] = {
		[STEP_WAITING] = "waiting",
		[STEP_UNPACK] = "unpacking",
		[STEP_RELEASE_PHASE] = "release phase",
		[STEP_STOP_FIRST] = "stopping the old processes",
		[STEP_READY] = "starting processes",
		[STEP_CONFIRM] = "checking through the router",
		[STEP_WATCH] = "watching the new processes",
		[STEP_DRAIN] = "draining the old release",
		[STEP_RETIRE] = "retiring the old release",
		[STEP_FAILING] = "failing",
	};

	if (!a->deploy || (size_t)a->deploy->step >= ARRAY_SIZE(names) ||
	    !names[a->deploy->step])
		return NULL;
	return names[a->deploy->step];
}

int app_has_database(const struct app *a)
{
	return strv_env_get(&a->env, "DATABASE_URL") != NULL;
}
