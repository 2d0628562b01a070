/*
 * deploy: the deploy state machine of an app (docs/architecture.md,
 * "Deploy states"; docs/deploy.md tells it from the user's side).
 * app_deploy() (app.h) starts one or queues it; one runs per app at a
 * time, the newest request waits and older waiting ones are superseded.
 * Any failure before the switch stops the new processes, deletes their
 * folder and leaves the running release untouched.
 *
 * Runs in the engine's loop: copying the bundle into its release folder
 * (when it cannot be linked or moved there), unpacking and the deploy
 * scripts run in children, health checks and drains are asynchronous,
 * every step ends with an event (deploy.c's state table), creating the
 * app's database on its first deploy included (postgres_provision_async());
 * a finished or failed release's run folders, a failed release's
 * bundle and the releases pruned beyond keep_releases are deleted by a
 * child (releases.h).  Nothing in it waits for long.  The client of a deploy is answered exactly once, when it ends (ok
 * release=N, or the error).
 */
#ifndef BERTH_DEPLOY_H
#define BERTH_DEPLOY_H

#include "app.h"

/*
 * For the app's other files.  A deploy of a is a->deploy (running) or
 * a->waiting (the newest request waiting for it), both owned here.
 */

/* 1 while a's deploy watches its new release, or waits for nginx to
 * take its switch or its switch back: the route is the deploy's to set
 * (a crash of a live web process is the watch's to handle, not the
 * route's). */
int deploy_watching(const struct app *a);
/* p crashed (why as spawn_describe_status() says it): 1 if a deploy
 * took it (the deploy starting p fails; a watch switches back and
 * fails), 0 if the crash is the caller's to handle. */
int deploy_proc_crashed(struct proc *p, const char *why);
/* Drop a's waiting deploy, answering its client with the error. */
void deploy_drop_waiting(struct app *a, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* The engine is stopping: a's running deploy is cut short (its release
 * recorded as interrupted), or retires the old release at once if it
 * is live already; its processes get TERM, KILL after timeout_ms. */
void deploy_shutdown(struct app *a, long timeout_ms);
/* Engine exit: free a's deploys and the runs only they hold; a client
 * still waiting gets an error. */
void deploy_app_free(struct app *a);

/*
 * What a deploy asks of the files above it, as callbacks the engine sets
 * once at start (deploy_set_hooks()); both required once a deploy runs.
 *   remove_now(a): delete every trace of a, whose processes are gone (a
 *     first deploy failed: app_remove_now(), applife.h).
 *   remove(a): remove a as "rm NAME" does (its bundle left incoming/
 *     while it deployed: a->remove_after_deploy).
 * Either frees a.
 */
struct deploy_hooks {
	void (*remove_now)(struct app *a);
	void (*remove)(struct app *a);
};
/* h is copied. */
void deploy_set_hooks(const struct deploy_hooks *h);

#endif
