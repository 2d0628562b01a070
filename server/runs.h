/*
 * runs: a release's processes as they run, in the engine (struct run,
 * struct proc in app.h): their environment, starting them, restarting
 * one that crashed (back-off from BACKOFF_MIN_MS, doubling up to
 * BACKOFF_MAX_MS), stopping a set of them together, and the live
 * release's cron entries.  process.c below starts, reads and stops one
 * process; this file decides what happens when it exits.
 *
 * Runs in the engine's loop; nothing here blocks: a stop or a restart
 * ends later, in a callback or a timer, and a start whose app's user is
 * missing or being renamed waits for the child that makes or renames it
 * (isolate_user_ready()).  Errors: proc_spawn() returns -1 with
 * error_last() set; nothing else fails.
 */
#ifndef BERTH_RUNS_H
#define BERTH_RUNS_H

#include <stddef.h>

#include "app.h"

#define BACKOFF_MIN_MS 1000
#define BACKOFF_MAX_MS 60000

/*
 * What this file asks of the deploy above it (deploy.h), as callbacks
 * the engine sets once at start (runs_set_hooks()); a NULL member, or
 * none set, answers 0.
 *   watching(a): 1 while a's deploy watches its new release (a live web
 *     process going down is the watch's to handle, not the route's).
 *   proc_crashed(p, why): p crashed; 1 if a deploy took it (it fails,
 *     or its watch switches back), 0 if the crash is this file's to
 *     handle (restart with back-off).
 */
struct runs_hooks {
	int (*watching)(const struct app *a);
	int (*proc_crashed)(struct proc *p, const char *why);
};
/* h is copied. */
void runs_set_hooks(const struct runs_hooks *h);

/* The environment of process p of run r (p NULL: of a deploy script),
 * pushed onto env: the manifest's, the release's config, BERTH_*, PORT
 * and the hand-off socket's variables. */
void build_env(struct strv *env, const struct app *a,
	       const struct run *r, const struct proc *p);
/* A new process of r, not started, appended to r->procs (r owns it). */
struct proc *proc_new(struct run *r, const struct proc_spec *spec,
		      int index, int port);
/*
 * Start p, as the engine's run user (or its app's), with build_env():
 * 0, or -1 with error_last() if it cannot start.  0 also when it waits
 * for its app's user (PROC_STARTING, pid 0): removed by hand and made
 * again (useradd in a child), or being renamed (apps:rename's usermod).
 * It starts from the loop once the user is there (a restarted web
 * process's route follows); if that start fails, it fails as a crash
 * does: a one-line error in the app's log and the deploy it belongs to
 * fails, a one-off's client gets the error, or a supervised process is
 * tried again after the back-off.  proc_stop() and proc_free() end the
 * wait.
 */
int proc_spawn(struct proc *p);
/* Free r and its processes (NULL is fine); a one-off's client is
 * answered. */
void run_free(struct run *r);
/* A live web process went down or came back: the route follows, except
 * during a deploy's watch (hooks.watching). */
void live_route_changed(struct proc *p);
/* TERM the n processes ps (KILL after timeout_ms); done(arg) once every
 * one exited, at once if n is 0.  ps itself is not kept. */
void stop_procs(struct proc **ps, size_t n, long timeout_ms,
		void (*done)(void *arg), void *arg);
/* Stops of r's processes begun by stop_procs() with this arg no longer
 * call done(arg) (its owner is being freed).  r may be NULL. */
void stop_procs_forget(struct run *r, void *arg);
/* The processes of r that pick takes (NULL: all) into *out, which the
 * caller frees: how many.  r may be NULL. */
size_t run_procs(struct run *r, struct proc ***out,
		 int (*pick)(const struct proc *, const void *),
		 const void *arg);
/* Stop every process of r not stopping already (r may be NULL); none is
 * restarted any more. */
void stop_run(struct run *r, long timeout_ms);
/* r went live: its cron entries start to count. */
void cron_begin(struct run *r);
/* A one-off (cron.N, run.N) ended, or never started (why NULL): logged,
 * its client answered, and it is freed. */
void cron_run_exited(struct proc *p, const char *why);

#endif
