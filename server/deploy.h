/*
 * deploy: the deploy state machine of an app (docs/architecture.md,
 * "Deploy states"; docs/deploy.md tells it from the user's side).
 * app_deploy() (app.h) starts one or queues it; one runs per app at a
 * time, the newest request waits and older waiting ones are superseded.
 * Any failure before the switch stops the new processes, deletes their
 * folder and leaves the running release untouched.
 *
 * Runs in the engine's loop; nothing here blocks: unpacking and the
 * release phase run in children, health checks are asynchronous, every
 * step ends in a callback.  The client of a deploy is answered exactly
 * once, when it ends (ok release=N, or the error).
 */
#ifndef BERTH_DEPLOY_H
#define BERTH_DEPLOY_H

#include <stdint.h>
#include <sys/types.h>

#include "app.h"
#include "liveroute.h"

struct loop;

enum deploy_step {
	STEP_WAITING,
	STEP_UNPACK,
	STEP_RELEASE_PHASE,
	STEP_STOP_FIRST,
	STEP_READY,
	STEP_POSTDEPLOY,
	STEP_CONFIRM,
	STEP_WATCH,
	STEP_DRAIN,
	STEP_RETIRE,
	STEP_FAILING,
	STEP_COUNT
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
	pid_t helper;		/* unpack or release phase child */
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
	struct router_drain *drain;
	struct livewatch *livewatch;	/* health checks during the watch */
	int64_t t_live;
	struct strv undo_scale;	/* a->scale and a->env before commit_live(), */
	struct strv undo_env;	/* put back if the watch fails */
	int committed, undo_env_set;
	/* app.json's scripts and the release phase (run_script()) */
	int pre_stage, post_stage;
	const char *script_label;	/* "release", "predeploy", ... */
	struct deployout *out;	/* its kept output (deployout.h), or NULL */
	int out_of_push;	/* out is a push's: the pipeline says the
				 * outcome there itself */
};

void deploy_fail(struct deploy *d, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
void deploy_fail_tail(struct deploy *d, const struct buf *tail,
		      const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
void deploy_free(struct deploy *d);
void on_drain_timer(struct loop *l, void *arg);
void restore_retry_cancel(struct app *a);
void watch_failed(struct deploy *d, struct proc *p, const char *why);

#endif
