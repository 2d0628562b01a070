/* deploy: see deploy.h. */
#include "deploy.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bundle.h"
#include "deployout.h"
#include "engine.h"
#include "handoff.h"
#include "health.h"
#include "isolate.h"
#include "liveroute.h"
#include "log.h"
#include "logger.h"
#include "loop.h"
#include "nginx.h"
#include "postgres.h"
#include "reaper.h"
#include "release.h"
#include "releases.h"
#include "runs.h"
#include "spawn.h"
#include "banned.h"

#define CONFIRM_TIMEOUT_MS 10000
#define FAIL_STOP_MS 3000
#define PORT_HINT_MS 5000	/* a web process should listen by then */

enum deploy_step {
	STEP_WAITING,
	STEP_UNPACK,
	STEP_RELEASE_PHASE,
	STEP_STOP_FIRST,
	STEP_READY,
	STEP_POSTDEPLOY,
	STEP_CONFIRM,
	STEP_SWITCH,
	STEP_WATCH,
	STEP_DRAIN,
	STEP_RETIRE,
	STEP_SWITCH_BACK,
	STEP_FAILING,
	STEP_COUNT
};

struct check_ctx {
	struct deploy *d;
	size_t i;
	struct proc *p;		/* readiness: the process checked */
	int port;		/* on this port */
	long other;		/* the check of its other port, or -1 */
	/* this check failed with an answer while its twin still ran: the
	 * twin's later "timed out" must not hide what the app said */
	char answered_error[256];
};

struct deploy {
	struct engine *e;
	struct app *a;
	struct client *c;
	enum deploy_kind kind;
	enum deploy_step step;	/* only deploy_event() changes it */
	int64_t t_step;		/* when it entered step (now_ms()) */
	char *bundle_in;	/* DEPLOY_NEW: where the bundle comes from */
	int move;
	char *commit, *pusher, *buildpack, *source;
	int from_release;
	int number;
	int64_t t0, t_spawn, t_ready;
	struct run *run;	/* the new release's run */
	struct run *old;	/* the live run when we started */
	pid_t helper;		/* copy, unpack or release phase child */
	/* a bundle being copied into release copy_number's folder
	 * copy_dir (the copy child): removed if the deploy ends first */
	char *copy_dir, *copy_bundle;
	int copy_number;
	struct strv copy_env;
	int helper_fd;
	struct buf helper_out;
	struct health **checks;
	struct check_ctx *check_ctx;
	size_t nchecks, pending;
	uint64_t timer;
	int stopped_first;	/* old stop-first processes were stopped */
	size_t web_count;
	char *error;
	int created_app;
	struct strv scale_changes;	/* "type=N" asked for by scale */
	struct strv scale;	/* what this deploy runs: a->scale + changes;
				 * a->scale takes it once the release is live */
	struct strv env_changes;	/* config set/unset asked for */
	int from_live;		/* DEPLOY_NEW of the bundle live at start */
	char *config_change;	/* "+KEY -KEY" against the release before */
	char *detail;		/* with error: the last output lines of the
				 * process at fault, indented, one per line */
	uint64_t hint_timer;	/* "is not listening on PORT yet" */
	int switched;		/* the router sends users to run */
	struct router_switch sw;
	/* a switch or revert nginx has not answered yet (liveroute_wait_cancel()) */
	uint64_t route_wait;
	char *back_why;		/* STEP_SWITCH_BACK: why the deploy fails */
	int back_say;		/* and to say "Switched traffic back" */
	int switching;		/* route_wait is the switch's */
	struct router_drain *drain;
	struct livewatch *livewatch;	/* health checks during the watch */
	int64_t t_live;
	struct strv undo_scale;	/* a->scale and a->env before commit_live(), */
	struct strv undo_env;	/* put back if the watch fails */
	int committed, undo_env_set;
	/* app.json's scripts and the release phase (run_script()) */
	int pre_stage, post_stage;
	const char *script_label;	/* "release", "predeploy", ... */
	char *script_cmd;		/* a script waiting for its user */
	struct isolate_wait user_wait;	/* (isolate_user_ready()) */
	struct postgres_op *pg_op;	/* its database being made */
	struct deployout *out;	/* its kept output (deployout.h), or NULL */
	int out_of_push;	/* out is a push's: the pipeline says the
				 * outcome there itself */
};

/*
 * What ends a step of a deploy.  deploy_table says, for each state, which
 * events it waits for, the state each one leads to and what is done on
 * entering it; any other event in that state is a bug, logged and dropped.
 */
enum deploy_event {
	EV_START,		/* its turn came: the app's deploy before it ended */
	EV_UNPACKED,		/* the unpack child put the release in place */
	EV_SCRIPT_OK,		/* a deploy script (run_script()) exited 0 */
	EV_SCRIPTS_DONE,	/* no script left in this phase */
	EV_OLD_STOPPED,		/* the old processes asked to stop are gone */
	EV_READY,		/* every new process is healthy, or stayed up */
	EV_CONFIRMED,		/* nginx reaches the new release */
	EV_SWITCHED,		/* nginx took the switch to the new release */
	EV_SWITCH_BACK,		/* traffic goes back: back_why says why */
	EV_SWITCHED_BACK,	/* nginx took the revert, or did not answer */
	EV_WATCHED,		/* the watch is over, or there is none */
	EV_DRAINED,		/* the old release's requests ended, or time ran out */
	EV_FAIL,		/* deploy_fail(): d->error says why */
	EV_NEW_STOPPED,		/* failing: the new processes are gone */
	EV_COUNT
};

/* The states as apps, ps, stats and the dashboard name them. */
static const char *const deploy_step_names[STEP_COUNT] = {
	[STEP_WAITING] = "waiting",
	[STEP_UNPACK] = "unpacking",
	[STEP_RELEASE_PHASE] = "release phase",
	[STEP_STOP_FIRST] = "stopping the old processes",
	[STEP_READY] = "starting processes",
	[STEP_POSTDEPLOY] = "postdeploy",
	[STEP_CONFIRM] = "checking through the router",
	[STEP_SWITCH] = "switching traffic",
	[STEP_WATCH] = "watching the new processes",
	[STEP_DRAIN] = "draining the old release",
	[STEP_RETIRE] = "retiring the old release",
	[STEP_SWITCH_BACK] = "switching traffic back",
	[STEP_FAILING] = "failing",
};

static void deploy_next(struct app *a);

static struct deploy_hooks hooks;

void deploy_set_hooks(const struct deploy_hooks *h)
{
	hooks = *h;
}
static void on_port_hint(struct loop *l, void *arg);
static void commit_undo(struct deploy *d);
static void run_script(struct deploy *d, const char *label, char *cmd);
static void deploy_event(struct deploy *d, enum deploy_event ev);
static void deploy_fail(struct deploy *d, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static void deploy_fail_tail(struct deploy *d, const struct buf *tail,
			     const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void watch_failed(struct deploy *d, struct proc *p, const char *why);
static void on_old_stopped(void *arg);
static void on_new_stopped(void *arg);

/* ---------- small helpers ---------- */

/* A copy of the bundle cut short (its child killed): the release folder
 * goes, as if the deploy had never made it. */
static void copy_abandon(struct deploy *d)
{
	if (d->copy_dir && rm_rf(d->copy_dir) < 0)
		log_warnx("%s", error_last());
	FREE_AND_NULL(d->copy_dir);
	FREE_AND_NULL(d->copy_bundle);
	strv_release(&d->copy_env);
}

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
	isolate_user_unwait(d->e->iso, &d->user_wait);
	free(d->script_cmd);
	postgres_op_cancel(d->e->pg, d->pg_op);
	/* processes still stopping for it must not call back into d */
	stop_procs_forget(d->run, d);
	stop_procs_forget(d->old, d);
	liveroute_watch_stop(d->livewatch);
	liveroute_wait_cancel(d->e, d->route_wait);
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
	copy_abandon(d);
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
	free(d->back_why);
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
		if (ok && d->e->on_deploy_end) {
			/* answered below, unless the hook takes the client */
		} else if (ok) {
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
		end.error = d->error;
		end.client = ok ? d->c : NULL;
		d->e->on_deploy_end(d->e->on_deploy_end_arg, &end);
		if (ok && d->c && !end.client_taken)
			client_ok_fields(d->c, "release=%d", d->number);
	}
	deploy_free(d);
	/* Its bundle left incoming/ meanwhile (not while the engine stops:
	 * apps_shutdown() walks the list this would change). */
	if (a->remove_after_deploy && !a->eng->stopping) {
		a->remove_after_deploy = 0;
		logger_linef(a->log, "berth", "its bundle left incoming/: removing %s",
			     a->name);
		hooks.remove(a);
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

/*
 * Bundles and release folders that go (a failed release's bundle, the
 * releases pruned) are renamed aside and deleted by a child: unlinking a
 * bundle of 200 MB takes about 85 ms on ext4, in the loop.
 */
struct release_trash {
	struct engine *e;
	struct trash_job *t;
	const char *app;
};

static void release_trash_add(void *arg, const char *path)
{
	struct release_trash *rt = arg;

	trash_add(rt->e, rt->t, path, rt->app);
}

/* The bundle of release n (if drop_bundle) and the releases kept no
 * longer. */
static void release_trash_out(struct deploy *d, int drop_bundle)
{
	struct app *a = d->a;
	struct release_trash rt = {
		d->e, trash_new("cannot delete old releases"), a->name
	};

	if (drop_bundle)
		release_drop_bundle(a->dir, d->number, release_trash_add, &rt);
	release_prune(a->dir, d->e->cfg->keep_releases, a->release,
		      release_trash_add, &rt);
	trash_start(rt.t, d->e->loop);
}

/* After a failure: new processes are gone; clean up and answer. */
static void fail_cleanup(struct deploy *d)
{
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
		if (release_set_status(a->dir, d->number,
				       stopping ? "interrupted" : "failed") < 0)
			log_warnx("%s", error_last());
		release_trash_out(d, 1);
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
			hooks.remove_now(a);
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
	if (d->step == STEP_FAILING)
		return;
	free(d->error);
	d->error = xvasprintf(fmt, ap);
	if (detail && detail->len)
		d->detail = xstrndup(detail->data, detail->len);
	deploy_event(d, EV_FAIL);
}

/* The new processes are stopped, whatever the deploy was waiting for. */
static void fail_stop(struct deploy *d)
{
	struct proc **ps = NULL;
	size_t i, n;

	loop_del_timer(d->e->loop, d->hint_timer);
	d->hint_timer = 0;
	for (i = 0; i < d->nchecks; i++)
		health_cancel(d->checks[i]);
	d->nchecks = 0;
	FREE_AND_NULL(d->checks);
	FREE_AND_NULL(d->check_ctx);
	loop_del_timer(d->e->loop, d->timer);
	d->timer = 0;
	postgres_op_cancel(d->e->pg, d->pg_op);
	d->pg_op = NULL;
	liveroute_watch_stop(d->livewatch);
	d->livewatch = NULL;
	if (d->route_wait) {
		/* a switch (or revert) nginx has not answered: nobody waits
		 * for it now; a switch is taken back, in order after it */
		int was_switch = d->switching;

		liveroute_wait_cancel(d->e, d->route_wait);
		d->route_wait = 0;
		d->switching = 0;
		if (was_switch &&
		    liveroute_revert(d->e, d->a, NULL, NULL, NULL) < 0)
			log_warnx("%s: cannot switch back: %s", d->a->name,
				  error_last());
	}
	if (d->helper > 0) {
		kill(-d->helper, SIGKILL);
		isolate_end(d->e->iso, d->helper);
		reaper_forget(d->helper);
		d->helper = 0;
	}
	copy_abandon(d);
	if (d->helper_fd >= 0) {
		loop_del_fd(d->e->loop, d->helper_fd);
		close(d->helper_fd);
		d->helper_fd = -1;
	}
	n = run_procs(d->run, &ps, NULL, NULL);
	stop_procs(ps, n, FAIL_STOP_MS, on_new_stopped, d);
	free(ps);
}

static void retire_done(struct deploy *d)
{
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
	release_trash_out(d, 0);
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

	n = run_procs(d->old, &ps, NULL, NULL);
	stop_procs(ps, n, stop_timeout(d, d->old), on_old_stopped, d);
	free(ps);
}

static void on_drain_timer(struct loop *l, void *arg)
{
	struct deploy *d = arg;

	d->timer = 0;
	deploy_event(d, EV_DRAINED);
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
	deploy_event(d, EV_DRAINED);
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
	deploy_event(d, EV_WATCHED);
}

/* nginx took the revert (or the time ran out): now the deploy fails. */
static void on_switched_back(void *arg, const struct router_done *res)
{
	struct deploy *d = arg;

	d->route_wait = 0;
	if (!res->ok)
		log_warnx("%s: cannot switch back: %s", d->a->name,
			  res->error);
	deploy_event(d, EV_SWITCHED_BACK);
}

/* STEP_SWITCH_BACK: traffic goes back to the route before the switch. */
static void switch_back_start(struct deploy *d)
{
	d->switched = 0;
	if (liveroute_revert(d->e, d->a, on_switched_back, d,
			     &d->route_wait) < 0) {
		log_warnx("%s: cannot switch back: %s", d->a->name,
			  error_last());
		deploy_event(d, EV_SWITCHED_BACK);
	}
}

static void switched_back(struct deploy *d)
{
	if (d->back_say && d->old)
		say(d, "-----> Switched traffic back to release %d",
		    d->old->number);
	deploy_fail(d, "%s", d->back_why);
}

/* The deploy fails with why (owned) once traffic went back; say: tell
 * the pusher. */
static void switch_back(struct deploy *d, int say_it, char *why)
{
	free(d->back_why);
	d->back_why = why;
	d->back_say = say_it;
	deploy_event(d, EV_SWITCH_BACK);
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
	loop_del_timer(d->e->loop, d->timer);
	d->timer = 0;
	d->run = a->live;
	d->run->supervised = 0;
	d->run->deploy = d;
	a->live = d->old;
	a->live->supervised = 1;
	a->release = d->old->number;
	commit_undo(d);
	app_save(a);
	/* the new processes stop once nginx sends nothing more to them */
	switch_back(d, 1, xasprintf("rolled back: %s %s, %.1f s after going "
				    "live", p->name, why, after));
}

static void on_watch_check_failed(void *arg, struct proc *p, const char *why)
{
	watch_failed(arg, p, why);
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

/* nginx took the switch (or did not: back, and the deploy fails). */
static void on_switched(void *arg, const struct router_done *res)
{
	struct deploy *d = arg;

	d->route_wait = 0;
	d->switching = 0;
	if (!res->ok) {
		switch_back(d, 0, xasprintf("the router refused the switch: %s",
					    res->error));
		return;
	}
	d->sw = res->sw;
	d->switched = 1;
	deploy_event(d, EV_SWITCHED);
}

/* Ask for the switch; EV_SWITCHED once nginx took it. */
static void request_switch(struct deploy *d)
{
	d->switching = 1;
	if (liveroute_switch(d->e, d->a, d->run, d->old, on_switched, d,
			     &d->route_wait) < 0) {
		d->switching = 0;
		deploy_fail(d, "the router refused the switch: %s",
			    error_last());
	}
}

/* STEP_SWITCH: the new release takes the traffic (a static site took it
 * before its check). */
static void switch_start(struct deploy *d)
{
	if (d->switched) {
		deploy_event(d, EV_SWITCHED);
		return;
	}
	if (d->run->m.static_root && d->web_count && swap_static(d->e, d->run) < 0) {
		deploy_fail(d, "%s", error_last());
		return;
	}
	request_switch(d);
}

static void go_live(struct deploy *d)
{
	struct app *a = d->a;
	long watch;

	d->t_live = now_ms();
	if (d->t_ready && d->e->nginx && (d->web_count || d->run->m.static_root))
		say(d, "-----> Switched traffic to release %d (%lld ms after it was ready)",
		    d->number, (long long)(now_ms() - d->t_ready));
	else if (d->web_count || d->run->m.static_root)
		say(d, "-----> Switched traffic to release %d", d->number);
	if (commit_live(d) < 0) {
		switch_back(d, 0, xasprintf("cannot record release %d as live: %s",
					    d->number, error_last()));
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
	deploy_event(d, EV_WATCHED);
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
		char *why = xasprintf("nginx does not route '%s' to the new "
				      "release: %s", d->a->name,
				      r->error ? r->error : "no answer");

		if (d->switched) {
			switch_back(d, 0, why);
			return;
		}
		deploy_fail(d, "%s", why);
		free(why);
		return;
	}
	deploy_event(d, EV_CONFIRMED);
}

static void confirm_check(struct deploy *d);

static void confirm(struct deploy *d)
{
	struct proc *p;

	for (p = d->run->procs; p && !p->port; p = p->next)
		;
	if (!d->e->nginx || (!p && !d->run->m.static_root)) {
		deploy_event(d, EV_CONFIRMED);
		return;
	}
	if (!p && d->run->m.static_root) {
		if (swap_static(d->e, d->run) < 0) {
			deploy_fail(d, "%s", error_last());
			return;
		}
		/* a static site is switched, then checked through nginx:
		 * EV_SWITCHED in this state leads to confirm_check() */
		request_switch(d);
		return;
	}
	confirm_check(d);
}

/* The check through nginx's probe listener. */
static void confirm_check(struct deploy *d)
{
	struct health_req req;
	struct proc *p;
	char *url = NULL, *host = NULL, *want = NULL, peer[40];
	struct health *h;

	for (p = d->run->procs; p && !p->port; p = p->next)
		;
	url = xasprintf("http://%s%s", nginx_http_addr(d->e->nginx),
			d->run->m.health_path ? d->run->m.health_path : "/");
	host = xasprintf("%s.%s", d->a->name, d->e->cfg->domain);
	want = p ? xasprintf("127.0.0.1:%d", proc_http_port(p)) :
		xasprintf("static:%d", d->run->number);
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
		/* A static site: this release's files as nginx serves them,
		 * whatever the status (a site without index.html is valid),
		 * never the router's own 404 or 503. */
		req.max_status = 599;
		req.want_header = "X-Berth-Upstream";
		req.want_value = want;
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
			run_script(d, "postdeploy", m->postdeploy_cmd);
			return;
		}
		if (stage <= 1 && m->first_deploy_cmd && !d->a->release) {
			d->post_stage = 2;
			run_script(d, "postdeploy", m->first_deploy_cmd);
			return;
		}
	}
	deploy_event(d, EV_SCRIPTS_DONE);
}

static void on_ready(void *arg, const struct health_result *r)
{
	struct check_ctx *cx = arg;
	struct deploy *d = cx->d;
	struct proc *p;

	d->checks[cx->i] = NULL;	/* finished: health.c frees it */
	if (!r->ok && cx->other >= 0 && d->checks[cx->other]) {
		/* it may still answer on its other port */
		if (r->status > 0 && r->error)
			snprintf(cx->answered_error,
				 sizeof(cx->answered_error), "%s", r->error);
		return;
	}
	if (!r->ok) {
		struct buf tail = BUF_INIT;
		const char *why = r->error ? r->error : "no healthy answer";

		/* both ports failed: the one the app answered on says why */
		if (r->status <= 0 && cx->other >= 0 &&
		    d->check_ctx[cx->other].answered_error[0])
			why = d->check_ctx[cx->other].answered_error;

		for (p = d->run->procs; p; p = p->next)
			if (p->port)
				proc_tail(p, &tail);
		deploy_fail_tail(d, &tail, "not ready after %ld ms: %s",
				 r->elapsed_ms, why);
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
	deploy_event(d, EV_READY);
}

static void on_settle_timer(struct loop *l, void *arg)
{
	struct deploy *d = arg;
	struct proc *p;

	d->timer = 0;
	for (p = d->run->procs; p; p = p->next) {
		if (p->state == PROC_STARTING) {
			/* its user is being made (runs.h): it starts later,
			 * and must stay up as long as the others did */
			long settle = d->run->m.settle_ms >= 0 ?
				d->run->m.settle_ms : d->e->cfg->settle_ms;

			d->timer = loop_add_timer(d->e->loop, settle > 50 ?
						  settle : 50,
						  on_settle_timer, d);
			return;
		}
		if (p->state != PROC_UP) {
			deploy_fail(d, "%s did not stay up", p->name);
			return;
		}
	}
	if (d->run->procs)
		say(d, "-----> Up for %lld ms", (long long)(now_ms() - d->t_spawn));
	deploy_event(d, EV_READY);
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
	/* app.json's attempts: that many tries, as Dokku makes */
	req.attempts = r->m.health_attempts > 0 ? r->m.health_attempts : 0;
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

/*
 * Another program listens on the app's slot port: the slot moves to a
 * free port of the pool for good (the router follows the live process's
 * port, so no route changes).  The new port, or -1 if the pool is empty.
 */
static int move_slot(struct deploy *d, int port)
{
	struct app *a = d->a;
	size_t i;
	int np;

	for (i = 0; i < a->nslots && a->slots[i] != port; i++)
		;
	if (i == a->nslots || (np = ports_take(&d->e->ports)) < 0)
		return -1;
	a->slots[i] = np;
	ports_put(&d->e->ports, port);
	app_save(a);
	return np;
}

static void spawn_new(struct deploy *d)
{
	struct run *r = d->run;
	struct proc *p;
	size_t i;
	long timeout;
	int n, k;

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
				/* a restore keeps its ports and retries: what
				 * holds one is most likely the app's own process
				 * of before the engine's crash, going away */
				if (!port_bindable(port) && d->kind != DEPLOY_RESTORE) {
					int np = move_slot(d, port);

					if (np < 0) {
						deploy_fail(d, "port %d is taken by another "
							    "program and no other port is free",
							    port);
						return;
					}
					say(d, "-----> Port %d is taken by another program: "
					    "%s.%d moves to port %d", port, spec->type, k, np);
					port = np;
				} else if (!port_bindable(port)) {
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

	n = run_procs(d->old, &ps, pick_stop_first, d->run);
	if (n) {
		d->stopped_first = 1;
		say(d, "-----> Stopping %zu stop-first process%s", n,
		    n == 1 ? "" : "es");
	}
	stop_procs(ps, n, stop_timeout(d, d->old), on_old_stopped, d);
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
	if (d->step != STEP_RELEASE_PHASE && d->step != STEP_POSTDEPLOY)
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
	deploy_event(d, EV_SCRIPT_OK);
}

static void run_script(struct deploy *d, const char *label, char *cmd);

/* The app's user, that a deploy script waited for, is there (or not). */
static void script_user_ready(void *arg, int result)
{
	struct deploy *d = arg;
	char *cmd = d->script_cmd;

	d->script_cmd = NULL;
	if (result < 0)
		deploy_fail(d, "%s command could not start: %s",
			    d->script_label, error_last());
	else
		run_script(d, d->script_label, cmd);
	free(cmd);
}

/* A deploy script (the release phase, app.json's predeploy and
 * postdeploy): /bin/sh -c cmd in the new release, as the app's user,
 * with its environment; its output streamed to the pusher and logged
 * under 'label'.  Then EV_SCRIPT_OK, or the deploy fails.  An app's user
 * missing (removed by hand since the unpack made it) is made first, in
 * a child (isolate_user_ready()). */
static void run_script(struct deploy *d, const char *label, char *cmd)
{
	struct strv env = STRV_INIT;
	struct spawn s;
	struct isolate_spawn is;
	struct cgroup_limits lim;
	int pfd[2];
	char *argv[] = { "/bin/sh", "-c", NULL, NULL };
	int r;

	d->script_label = label;
	r = isolate_user_ready(d->e->iso, d->a->name, d->run->dir,
			       &d->user_wait, script_user_ready, d);
	if (r < 0) {
		deploy_fail(d, "%s command could not start: %s", label,
			    error_last());
		return;
	}
	if (r == 0) {
		free(d->script_cmd);
		d->script_cmd = xstrdup(cmd);
		return;
	}
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
		deploy_event(d, EV_SCRIPTS_DONE);
		return;
	}
	if (stage == 0 && m->predeploy_cmd) {
		run_script(d, "predeploy", m->predeploy_cmd);
		return;
	}
	if (stage <= 1 && m->release_cmd) {
		d->pre_stage = 2;
		run_script(d, "release", m->release_cmd);
		return;
	}
	deploy_event(d, EV_SCRIPTS_DONE);
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

static void prepare_rest(struct deploy *d);

/* The app's new database is made (off the loop): kept in its config at
 * once, whatever becomes of the deploy; then the rest. */
static void on_database(void *arg, int result, const char *url)
{
	struct deploy *d = arg;
	struct app *a = d->a;
	struct run *r = d->run;

	d->pg_op = NULL;
	if (result < 0) {
		deploy_fail(d, "%s", error_last());
		return;
	}
	strv_env_set(&a->env, "DATABASE_URL", url);
	strv_env_set(&r->env, "DATABASE_URL", url);
	if (env_save(a) < 0) {
		deploy_fail(d, "%s", error_last());
		return;
	}
	prepare_rest(d);
}

static void prepare(struct deploy *d)
{
	struct app *a = d->a;
	struct run *r = d->run;
	const struct proc_spec *web = manifest_proc(&r->m, "web");
	struct release_info ri;

	d->web_count = web ? (size_t)scale_of(&d->scale, web) : 0;
	memset(&ri, 0, sizeof(ri));
	ri.source = d->source;
	ri.commit = d->commit;
	ri.pusher = d->pusher;
	ri.buildpack = d->buildpack;
	ri.from = d->from_release;
	ri.config = d->config_change;
	if (d->kind == DEPLOY_NEW && record_release(d->run, &ri) < 0) {
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
		if (!d->e->pg) {
			deploy_fail(d, "'%s' asks for PostgreSQL, which is not available",
				    a->name);
			return;
		}
		say(d, "-----> Creating PostgreSQL database for %s", a->name);
		/* a first cluster takes its initdb, and the statements wait
		 * for the server: on the loop and in a child, not here */
		d->pg_op = postgres_provision_async(d->e->pg, a->name,
						    on_database, d);
		return;
	}
	prepare_rest(d);
}

/* After the database: the release's config, ports, routes, scripts. */
static void prepare_rest(struct deploy *d)
{
	struct app *a = d->a;
	struct run *r = d->run;
	size_t old_nslots = a->nslots, i;
	char *why = NULL;

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
	deploy_event(d, EV_UNPACKED);
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

static void deploy_numbered(struct deploy *d, int n);
static void copy_start(struct deploy *d, const char *from, const char *bundle,
		       const char *rdir, int n, struct strv *env);
static void unpack_start(struct deploy *d, const char *bundle,
			 struct strv *env);

static void deploy_start(struct deploy *d)
{
	struct app *a = d->a;
	char *bundle = NULL, *rdir = NULL;
	struct strv env = STRV_INIT;
	size_t i;

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

			if (link(from, bundle) < 0) {
				copy_start(d, from, bundle, rdir, n, &env);
				free(from);
				goto out;
			}
			free(from);
		} else if (!(d->move && rename(d->bundle_in, bundle) == 0)) {
			copy_start(d, d->bundle_in, bundle, rdir, n, &env);
			goto out;
		}
		deploy_numbered(d, n);
	} else {
		d->number = a->release;
		deployout_set_release(d->out, d->number);
		bundle = release_path(a->dir, a->release, "bundle.tar.gz");
		say(d, "-----> %s release %d of %s",
		    d->kind == DEPLOY_RESTORE ? "Restoring" : "Restarting",
		    d->number, a->name);
	}
	unpack_start(d, bundle, &env);
out:
	strv_release(&env);
	free(bundle);
	free(rdir);
}

/* The new release has its number: its bundle is in place. */
static void deploy_numbered(struct deploy *d, int n)
{
	struct app *a = d->a;

	/* Written to state with the next deploy that goes live; after
	 * a crash, apps_load() counts the folders. */
	a->next_release = n;
	d->number = n;
	deployout_set_release(d->out, n);
	say(d, "-----> Deploying release %d of %s", n, a->name);
	client_fields(d->c, "release=%d", n);
}

static void on_copy_exit(pid_t pid, int status, void *arg)
{
	struct deploy *d = arg;
	char *bundle;
	struct strv env;

	(void)pid;
	d->helper = 0;
	if (d->helper_fd >= 0)
		drain_helper(d);
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		char *msg = xstrdup(d->helper_out.len ? d->helper_out.data :
				    "cannot copy the bundle");

		buf_reset(&d->helper_out);
		copy_abandon(d);	/* changes nothing */
		deploy_fail(d, "%s", msg);
		free(msg);
		return;
	}
	buf_reset(&d->helper_out);
	bundle = d->copy_bundle;
	env = d->copy_env;
	d->copy_bundle = NULL;
	memset(&d->copy_env, 0, sizeof(d->copy_env));
	FREE_AND_NULL(d->copy_dir);
	deploy_numbered(d, d->copy_number);
	unpack_start(d, bundle, &env);
	strv_release(&env);
	free(bundle);
}

/*
 * A bundle that cannot be linked or moved into its release folder is
 * copied there by a child (hundreds of MB, maybe); the deploy goes on
 * from on_copy_exit().  env is taken.
 */
static void copy_start(struct deploy *d, const char *from, const char *bundle,
		       const char *rdir, int n, struct strv *env)
{
	int pfd[2] = { -1, -1 };
	pid_t pid;

	if (pipe2(pfd, O_CLOEXEC) < 0) {
		rm_rf(rdir);
		deploy_fail(d, "pipe: %s", strerror(errno));
		return;
	}
	pid = fork();
	if (pid < 0) {
		close(pfd[0]);
		close(pfd[1]);
		rm_rf(rdir);
		deploy_fail(d, "fork: %s", strerror(errno));
		return;
	}
	if (pid == 0) {
		const char *msg;

		close(pfd[0]);
		setpgid(0, 0);
		if (copy_file(from, bundle, 0640) == 0)
			_exit(0);
		msg = error_last();
		if (write_all(pfd[1], msg, strlen(msg)) < 0)
			_exit(2);
		_exit(1);
	}
	setpgid(pid, pid);
	close(pfd[1]);
	d->copy_dir = xstrdup(rdir);
	d->copy_bundle = xstrdup(bundle);
	d->copy_number = n;
	d->copy_env = *env;
	memset(env, 0, sizeof(*env));
	d->helper = pid;
	d->helper_fd = pfd[0];
	loop_add_fd(d->e->loop, pfd[0], LOOP_READ, on_helper_output, d);
	reaper_watch(pid, on_copy_exit, d);
}

/* Unpack bundle into the new run's folder, in a child; env is taken. */
static void unpack_start(struct deploy *d, const char *bundle,
			 struct strv *env)
{
	struct app *a = d->a;
	int pfd[2] = { -1, -1 };
	pid_t pid;
	static unsigned seq;

	d->run = xcalloc(1, sizeof(*d->run));
	d->run->app = a;
	d->run->number = d->number;
	d->run->deploy = d;
	d->run->env = *env;
	memset(env, 0, sizeof(*env));
	manifest_init(&d->run->m);
	d->run->dir = engine_path(d->e, "run/%s-%d-%lld-%u", a->name, d->number,
				  (long long)time(NULL), ++seq);
	/* Unpacking can take seconds for a big bundle: do it in a child. */
	if (pipe2(pfd, O_CLOEXEC) < 0) {
		deploy_fail(d, "pipe: %s", strerror(errno));
		return;
	}
	pid = fork();
	if (pid < 0) {
		close(pfd[0]);
		close(pfd[1]);
		deploy_fail(d, "fork: %s", strerror(errno));
		return;
	}
	if (pid == 0) {
		const char *msg;

		close(pfd[0]);
		if (bundle_unpack(bundle, d->run->dir) == 0 &&
		    copy_static(d->e, d->run) == 0 &&
		    give_release(d->e, d->run) == 0)
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
}

/* ---------- the state table ---------- */

static void on_old_stopped(void *arg)
{
	deploy_event(arg, EV_OLD_STOPPED);
}

static void on_new_stopped(void *arg)
{
	deploy_event(arg, EV_NEW_STOPPED);
}

struct deploy_transition {
	enum deploy_step to;		/* STEP_COUNT: no such transition */
	void (*enter)(struct deploy *d);	/* starts what 'to' waits for */
};

#define T(state, ev, next, fn) [state][ev] = { next, fn }

/* state x event -> next state, and what starts it (docs/architecture.md,
 * "Deploy states").  A transition to the same state starts its next part
 * (the next script).  EV_FAIL leads to STEP_FAILING from any other state. */
static const struct deploy_transition deploy_table[STEP_COUNT][EV_COUNT] = {
	T(STEP_WAITING, EV_START, STEP_UNPACK, deploy_start),
	T(STEP_UNPACK, EV_UNPACKED, STEP_RELEASE_PHASE, prepare),
	T(STEP_RELEASE_PHASE, EV_SCRIPT_OK, STEP_RELEASE_PHASE, release_phase),
	T(STEP_RELEASE_PHASE, EV_SCRIPTS_DONE, STEP_STOP_FIRST, stop_first),
	T(STEP_STOP_FIRST, EV_OLD_STOPPED, STEP_READY, spawn_new),
	T(STEP_READY, EV_READY, STEP_POSTDEPLOY, after_ready),
	T(STEP_POSTDEPLOY, EV_SCRIPT_OK, STEP_POSTDEPLOY, after_ready),
	T(STEP_POSTDEPLOY, EV_SCRIPTS_DONE, STEP_CONFIRM, confirm),
	T(STEP_CONFIRM, EV_CONFIRMED, STEP_SWITCH, switch_start),
	T(STEP_CONFIRM, EV_SWITCHED, STEP_CONFIRM, confirm_check),
	T(STEP_CONFIRM, EV_SWITCH_BACK, STEP_SWITCH_BACK, switch_back_start),
	T(STEP_SWITCH, EV_SWITCHED, STEP_WATCH, go_live),
	T(STEP_SWITCH, EV_SWITCH_BACK, STEP_SWITCH_BACK, switch_back_start),
	T(STEP_WATCH, EV_SWITCH_BACK, STEP_SWITCH_BACK, switch_back_start),
	T(STEP_SWITCH_BACK, EV_SWITCHED_BACK, STEP_SWITCH_BACK, switched_back),
	T(STEP_WATCH, EV_WATCHED, STEP_DRAIN, watch_over),
	T(STEP_DRAIN, EV_DRAINED, STEP_RETIRE, stop_old),
	T(STEP_RETIRE, EV_OLD_STOPPED, STEP_RETIRE, retire_done),
	T(STEP_FAILING, EV_NEW_STOPPED, STEP_FAILING, fail_cleanup),
};

#undef T

static const char *const deploy_event_names[EV_COUNT] = {
	[EV_START] = "start", [EV_UNPACKED] = "unpacked",
	[EV_SCRIPT_OK] = "script ok", [EV_SCRIPTS_DONE] = "scripts done",
	[EV_OLD_STOPPED] = "old stopped", [EV_READY] = "ready",
	[EV_CONFIRMED] = "confirmed", [EV_SWITCHED] = "switched",
	[EV_SWITCH_BACK] = "switch back", [EV_SWITCHED_BACK] = "switched back",
	[EV_WATCHED] = "watched",
	[EV_DRAINED] = "drained", [EV_FAIL] = "fail",
	[EV_NEW_STOPPED] = "new stopped",
};

/*
 * The one place a deploy changes state: look the event up, take the new
 * state, then start what it waits for.  That may end the deploy and free
 * d, or send the next event at once (a phase with nothing to do): d is
 * not touched after.
 */
static void deploy_event(struct deploy *d, enum deploy_event ev)
{
	struct deploy_transition t = deploy_table[d->step][ev];

	if (ev == EV_FAIL && d->step != STEP_FAILING)
		t = (struct deploy_transition){ STEP_FAILING, fail_stop };
	if (!t.enter) {
		log_warnx("%s: deploy: event '%s' in state '%s' dropped",
			  d->a->name, deploy_event_names[ev],
			  deploy_step_names[d->step]);
		return;
	}
	if (t.to != d->step)
		d->t_step = now_ms();
	d->step = t.to;
	t.enter(d);
}

static void deploy_next(struct app *a)
{
	struct deploy *d = a->waiting;

	if (a->deploy || !d)
		return;
	a->waiting = NULL;
	a->deploy = d;
	deploy_event(d, EV_START);
}

/*
 * The deploy's kept output: a push's goes on in the record its build
 * opened (what the build's connection sent before the deploy was asked
 * for comes first); any other new release or restart gets a record of
 * its own.  A restore at engine start is no one's deploy: none.
 */
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
	/* A client's deploy is refused while apps:rename runs: the rename
	 * would take its change back when it checks again.  A deploy no
	 * client waits for (incoming/, the cluster) waits, and the rename
	 * gives way to it. */
	if (a && a->renaming && c) {
		client_error(c, "'%s' is being renamed; deploy again when that is done",
			     name);
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

/* ---------- read by the stats (appstats.c) ---------- */

const char *app_deploy_step(const struct app *a)
{
	if (!a->deploy)
		return NULL;
	return deploy_step_names[a->deploy->step];
}

void app_deploy_describe(const struct app *a, struct buf *out)
{
	const struct deploy *d = a->deploy;
	const struct proc *p = NULL;
	size_t i;

	if (!d)
		return;
	switch (d->step) {
	case STEP_UNPACK:
		buf_addf(out, "unpacking release %d", d->number);
		break;
	case STEP_RELEASE_PHASE:
	case STEP_POSTDEPLOY:
		if (d->pg_op)
			buf_addstr(out, "waiting for PostgreSQL");
		else if (d->helper > 0 && d->script_label)
			buf_addf(out, "%s command", d->script_label);
		else
			buf_addstr(out, deploy_step_names[d->step]);
		break;
	case STEP_READY:
		/* the first process whose health check still runs */
		for (i = 0; i < d->nchecks && !p; i++)
			if (d->checks[i])
				p = d->check_ctx[i].p;
		if (p)
			buf_addf(out, "health check %s", p->name);
		else
			buf_addstr(out, "starting processes");
		break;
	case STEP_WATCH:
		buf_addf(out, "watching release %d", d->number);
		break;
	case STEP_DRAIN:
	case STEP_RETIRE:
		if (d->old)
			buf_addf(out, "%s release %d", d->step == STEP_DRAIN ?
				 "draining" : "retiring", d->old->number);
		else
			buf_addstr(out, deploy_step_names[d->step]);
		break;
	default:
		buf_addstr(out, deploy_step_names[d->step]);
		break;
	}
	buf_addf(out, " (%.1f s)", (double)(now_ms() - d->t_step) / 1000.0);
}

/* ---------- what the app's other files ask of its deploy ---------- */

int deploy_watching(const struct app *a)
{
	return a->deploy && (a->deploy->step == STEP_WATCH ||
			     a->deploy->step == STEP_SWITCH ||
			     a->deploy->step == STEP_SWITCH_BACK);
}

int deploy_proc_crashed(struct proc *p, const char *why)
{
	struct app *a = p->app;
	struct run *r = p->run;

	if (a->deploy && a->deploy->step == STEP_WATCH && r == a->live &&
	    p->port) {
		watch_failed(a->deploy, p, why);
		return 1;
	}
	if (r->deploy && r->deploy->run == r) {
		struct buf tail = BUF_INIT;

		proc_tail(p, &tail);
		deploy_fail_tail(r->deploy, &tail, "%s %s while starting",
				 p->name, why);
		buf_release(&tail);
		return 1;
	}
	return 0;
}

void deploy_drop_waiting(struct app *a, const char *fmt, ...)
{
	struct deploy *w = a->waiting;
	va_list ap;
	char *why;

	if (!w)
		return;
	a->waiting = NULL;
	if (w->c) {
		va_start(ap, fmt);
		why = xvasprintf(fmt, ap);
		va_end(ap);
		client_error(w->c, "%s", why);
		free(why);
	}
	deploy_free(w);
}

void deploy_shutdown(struct app *a, long timeout_ms)
{
	struct deploy *d = a->deploy;

	if (d && d->step == STEP_DRAIN) {
		loop_del_timer(a->eng->loop, d->timer);
		d->timer = 0;
		on_drain_timer(a->eng->loop, d);
	} else if (d && d->step != STEP_RETIRE) {
		deploy_fail(d, "the engine is stopping");
	}
	/* d may have ended meanwhile */
	if (a->deploy) {
		stop_run(a->deploy->run, timeout_ms);
		stop_run(a->deploy->old, timeout_ms);
	}
}

void deploy_app_free(struct app *a)
{
	struct deploy *d = a->deploy;

	if (d) {
		if (d->c)
			client_error(d->c, "the engine stopped before the deploy of '%s' ended",
				     a->name);
		if (d->run && d->run != a->live)
			run_free(d->run);
		if (d->old && d->old != a->live)
			run_free(d->old);
		d->run = d->old = NULL;
		deploy_free(d);
		a->deploy = NULL;
	}
	if (a->waiting)
		deploy_free(a->waiting);
	a->waiting = NULL;
}
