/* runs: see runs.h. */
#include "runs.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>

#include "engine.h"
#include "handoff.h"
#include "isolate.h"
#include "liveroute.h"
#include "log.h"
#include "logger.h"
#include "loop.h"
#include "postgres.h"
#include "spawn.h"
#include "banned.h"

#define BACKOFF_RESET_AFTER_MS 30000
#define PORT_POLL_MS 100	/* a restarted web process: is its port its own yet? */

static void oneoff_answer(struct proc *p);

/* ---------- process environment ---------- */

void build_env(struct strv *env, const struct app *a,
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
static int restart_proc(void *arg);
static void restart_failed(void *arg, long delay_ms);

struct proc *proc_new(struct run *r, const struct proc_spec *spec,
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
	supervisor_init(&p->restart, r->app->eng->loop, BACKOFF_MIN_MS,
			BACKOFF_MAX_MS, BACKOFF_RESET_AFTER_MS, restart_proc,
			restart_failed, p);
	p->state = PROC_DEAD;
	p->on_output = app_proc_output;
	p->on_crash = app_proc_crashed;
	snprintf(p->name, sizeof(p->name), "%s.%d", spec->type, index);
	for (pp = &r->procs; *pp; pp = &(*pp)->next)
		;
	*pp = p;
	return p;
}

static int needs_port_check(const struct proc *p);
static void on_port_timer(struct loop *l, void *arg);
static void proc_start_failed(struct proc *p, const char *msg);

/* Its user is there: start p now. */
static int spawn_now(struct proc *p)
{
	const struct engine *e = p->app->eng;
	struct proc_user u = { e->drop_priv, e->run_uid, e->run_gid };
	struct strv env = STRV_INIT;
	int ret;

	build_env(&env, p->app, p->run, p);
	ret = proc_start(p, env.v, &u);
	strv_release(&env);
	if (ret < 0) {
		p->state = PROC_DEAD;
		return -1;
	}
	supervisor_started(&p->restart);
	if (p->port_check_on_start && needs_port_check(p)) {
		p->port_pending = 1;
		p->port_timer = loop_add_timer(e->loop, PORT_POLL_MS,
					       on_port_timer, p);
	}
	p->port_check_on_start = 0;
	return 0;
}

/* The child that made (or renamed) the app's user is done: p starts now,
 * or waits again (another rename), or its start failed. */
static void user_ready(void *arg, int result)
{
	struct proc *p = arg;
	char *msg;

	if (result == 0 && !p->app->eng->stopping && proc_spawn(p) == 0) {
		if (p->state != PROC_STARTING)
			live_route_changed(p);
		return;
	}
	msg = xstrdup(p->app->eng->stopping ? "the engine is stopping" :
		      error_last());
	p->state = PROC_DEAD;
	proc_start_failed(p, msg);
	free(msg);
}

int proc_spawn(struct proc *p)
{
	int r = isolate_user_ready(p->app->eng->iso, p->app->name,
				   p->run->dir, &p->user_wait, user_ready, p);

	if (r < 0)
		return -1;
	if (r == 0) {
		/* "starting": the loop goes on, apps and ps answer */
		p->state = PROC_STARTING;
		return 0;
	}
	return spawn_now(p);
}

static void stop_group_exit(struct proc *p, void *arg);

void run_free(struct run *r)
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

static struct runs_hooks hooks;

void runs_set_hooks(const struct runs_hooks *h)
{
	hooks = *h;
}

static int deploy_watches(const struct app *a)
{
	return hooks.watching && hooks.watching(a);
}

static int deploy_took_crash(struct proc *p, const char *why)
{
	return hooks.proc_crashed && hooks.proc_crashed(p, why);
}

/* Output of a process (its on_output). */
static void app_proc_output(struct proc *p, const char *line, size_t len)
{
	if (p->app->log)
		logger_line(p->app->log, p->name, line, len);
}

/* A live web process went down or came back: the route follows, except
 * during the watch, which has its own answer (watch_failed()). */
void live_route_changed(struct proc *p)
{
	struct app *a = p->app;

	if (!p->port || p->run != a->live || deploy_watches(a))
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

	p->port_timer = 0;
	if (!p->port_pending || p->state != PROC_UP || p->pid <= 0)
		return;
	r = isolate_port_owned(p->app->eng->iso, p->app->name, p->port);
	if (r == 0 || r == -1) {	/* not yet, or not known */
		if (r < 0)
			log_warnx("%s %s: %s", p->app->name, p->name,
				  error_last());
		p->port_timer = loop_add_timer(l, PORT_POLL_MS, on_port_timer,
					       p);
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

/* The back-off after a crash is over (p->restart's start). */
static int restart_proc(void *arg)
{
	struct proc *p = arg;

	p->port_check_on_start = 1;
	if (proc_spawn(p) < 0) {
		p->port_check_on_start = 0;
		return -1;	/* restart_failed(), then a later try */
	}
	live_route_changed(p);
	return 0;
}

/* That restart failed: the supervisor tries again after delay_ms. */
static void restart_failed(void *arg, long delay_ms)
{
	struct proc *p = arg;

	(void)delay_ms;
	logger_linef(p->app->log, "berth", "cannot restart %s: %s",
		     p->name, error_last());
	p->state = PROC_BACKOFF;
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
	if (deploy_took_crash(p, why))
		return;
	if (!r->supervised || a->eng->stopping) {
		logger_linef(a->log, "berth", "%s %s", p->name, why);
		return;
	}
	delay = supervisor_exited(&p->restart);
	p->restarts++;
	p->state = PROC_BACKOFF;
	logger_linef(a->log, "berth", "%s %s; restarting in %ld ms", p->name,
		     why, delay);
	live_route_changed(p);
}

/*
 * A start that waited for the app's user failed (the user could not be
 * made): as a crash, the deploy or watch it belongs to fails, a one-off
 * is answered, and a supervised process is tried again after the
 * back-off, with one line in the app's log each time.
 */
static void proc_start_failed(struct proc *p, const char *msg)
{
	struct app *a = p->app;
	struct run *r = p->run;
	char *why = xasprintf("could not start: %s", msg);
	long delay;

	if (p->oneoff) {
		logger_linef(a->log, "berth", "%s: cannot start: %s", p->name,
			     msg);
		if (p->client) {
			struct client *c = p->client;

			p->client = NULL;
			client_on_close(c, NULL, NULL);
			client_error(c, "cannot start %s: %s", p->name, msg);
			client_unref(c);
		}
		cron_run_exited(p, NULL);
		goto out;
	}
	if (deploy_took_crash(p, why))
		goto out;
	if (!r->supervised || a->eng->stopping) {
		logger_linef(a->log, "berth", "cannot start %s: %s", p->name,
			     msg);
		goto out;
	}
	delay = supervisor_failed(&p->restart);
	p->state = PROC_BACKOFF;
	logger_linef(a->log, "berth", "cannot start %s: %s; trying again in %ld ms",
		     p->name, msg, delay);
	live_route_changed(p);
out:
	free(why);
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

void stop_procs(struct proc **ps, size_t n, long timeout_ms,
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

static void stop_group_nothing(void *arg)
{
	(void)arg;
}

void stop_procs_forget(struct run *r, void *arg)
{
	struct proc *p;

	for (p = r ? r->procs : NULL; p; p = p->next) {
		struct stop_group *g = p->on_exit_arg;

		if (p->on_exit == stop_group_exit && g->arg == arg)
			g->done = stop_group_nothing;
	}
}

size_t run_procs(struct run *r, struct proc ***out,
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
		if (a->eng->cron_may_run &&
		    !a->eng->cron_may_run(a->eng->cron_may_run_arg, a,
					  &r->m.crons[i]))
			continue;	/* another host of the cluster runs it */
		cron_start(r, i);
	}
	cron_arm(r);
}

/* A one-off (cron.N, run.N) ended (or never started, why NULL): say
 * so, answer its client, and it is gone. */
void cron_run_exited(struct proc *p, const char *why)
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

/* The release goes live: its cron entries start to count. */
void cron_begin(struct run *r)
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

/* Stop every process of r that is not stopping already. */
void stop_run(struct run *r, long timeout_ms)
{
	struct proc *p;

	if (!r)
		return;
	r->supervised = 0;
	for (p = r->procs; p; p = p->next)
		if (p->state != PROC_STOPPING && p->state != PROC_DEAD)
			proc_stop(p, timeout_ms);
}
