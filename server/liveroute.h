/*
 * liveroute: the deploy path's calls into the router (router.h).
 *
 * The routing table, not the ports an app listens on, decides where
 * users' requests go: a release's web processes are in its app's route
 * only from the switch on, after their health check and the engine's
 * probe through nginx passed.  This module turns a run (app.h) into a
 * route and keeps the calls the deploy path makes to one line each:
 *
 *   prepare   liveroute_claim()    a new app gets its hosts and the
 *                                  route "starting"; a host another app
 *                                  owns is refused, naming the owner
 *   confirm   liveroute_probe_header()  the probe reaches one new port
 *   switch    liveroute_switch()   the new release's web processes, with
 *                                  the old ones as fallback for the watch;
 *                                  the deploy goes on once nginx took it
 *   watch     liveroute_watch_start()  the new web processes stay
 *                                  health-checked until the watch ends
 *   watch ok  liveroute_settle()   the fallback goes; then the drain
 *   crash or  liveroute_revert()   back to the old release, at once
 *   failed check
 *   stop      liveroute_state()    stopped, no web process, crashing
 *
 * Every call is a no-op returning 0 when the engine runs without nginx
 * (a router_done_fn given is then called at once, ok).  No call waits for
 * nginx once liveroute_async() is on: the table changes at once and
 * nginx's copy follows (router.h).
 * Errors: -1 with error_last() (the router's, see router.h).
 */
#ifndef BERTH_LIVEROUTE_H
#define BERTH_LIVEROUTE_H

#include <stddef.h>

#include "router.h"

struct app;
struct engine;
struct manifest;
struct run;

/*
 * Before anything starts: check m's hosts (another app's exact host is
 * refused: "host 'x' belongs to app 'y'"), and give an app the router
 * does not know yet its hosts and the route "starting".  An app that has
 * a route keeps it (and its hosts) until the switch.
 */
int liveroute_claim(struct engine *e, struct app *a,
		    const struct manifest *m);

/*
 * The switch: every new request of a's hosts goes to run's web processes
 * that are up (or run's static root, or "no web process"), with old's web
 * processes as fallback (old may be NULL) until liveroute_settle().  fn,
 * arg and wait as router_switch()'s: fn hears when nginx took it (or did
 * not), with the release it replaced.
 */
int liveroute_switch(struct engine *e, struct app *a, const struct run *run,
		     const struct run *old, router_done_fn fn, void *arg,
		     uint64_t *wait);

/*
 * After the watch, or when a live web process crashed or came back:
 * a->live's route from its processes that are up, without fallback
 * ("app is crashing" with Retry-After while every one waits for its
 * restart).
 */
int liveroute_settle(struct engine *e, struct app *a);

/*
 * Engine start, once every app is loaded: apps (given one by one to
 * liveroute_keep()) keep what the old table file said about them until
 * their deploy sets them; the table forgets apps that are gone.
 */
void liveroute_keep(struct engine *e, struct app *a);
void liveroute_forget_others(struct engine *e);

/*
 * The watch's health checks: every web process of run that is up gets
 * GET its health path (healthcheck: in app.yaml) straight on its port,
 * once every LIVEWATCH_INTERVAL_MS, each answer within
 * LIVEWATCH_TIMEOUT_MS and with a status <= healthcheck.max_status.  A
 * process that fails LIVEWATCH_FAILS checks in a row (a bad status, a
 * refused connection, no answer in time) ends every check and fn is
 * called once, from the loop, with it and the reason ("failed its health
 * check (HTTP status 500)").  The processes must outlive the watch: stop
 * it before they go.  NULL if no check could be started (error_last());
 * the watch then relies on crashes alone.
 */
#define LIVEWATCH_INTERVAL_MS 250
#define LIVEWATCH_TIMEOUT_MS 2000
#define LIVEWATCH_FAILS 2
struct livewatch;
typedef void (*livewatch_fn)(void *arg, struct proc *p, const char *why);
struct livewatch *liveroute_watch_start(struct engine *e, struct run *run,
					livewatch_fn fn, void *arg);
/* Stop the checks; fn is not called any more.  NULL is a no-op. */
void liveroute_watch_stop(struct livewatch *w);

/* Back to the route before the last liveroute_switch(); fn (may be
 * NULL) hears when nginx took it, as router_revert()'s. */
int liveroute_revert(struct engine *e, struct app *a, router_done_fn fn,
		     void *arg, uint64_t *wait);
/* A wait of liveroute_switch() or liveroute_revert() is not called. */
void liveroute_wait_cancel(struct engine *e, uint64_t id);

/*
 * fn(a, res, arg) once nginx has every route change made so far (res->ok),
 * or did not take one in time (ok 0, res->error: nginx is out of sync and
 * gets the whole table again; the engine's table has the change): so a
 * command that took a's route away TERMs its processes only once no new
 * request can reach them.  From the loop, never inside this call (at
 * once only without a loop or nginx).  The wait is kept on a: if a goes
 * away first (liveroute_applied_drop(), from app_remove() and at exit),
 * fn is called with res NULL, to answer its client and free arg, and
 * must not touch a beyond its name.  a may be renamed meanwhile (the same
 * struct app).
 */
typedef void (*liveroute_applied_fn)(struct app *a,
				     const struct router_done *res,
				     void *arg);
void liveroute_when_applied(struct engine *e, struct app *a,
			    liveroute_applied_fn fn, void *arg);
/* a goes away: each of its waits is cancelled and its fn hears res NULL. */
void liveroute_applied_drop(struct app *a);
/*
 * on: requests to nginx go out from the engine's loop, and no call waits
 * for nginx (the engine turns it on before its loop runs, off after);
 * off: what is queued goes out now, and each call waits for its answer
 * (up to ROUTER_TIMEOUT_MS).
 */
void liveroute_async(struct engine *e, int on);

/* The app answers 503 with kind's page (ROUTE_STOPPED, ROUTE_NO_WEB,
 * ROUTE_CRASHING with retry_after seconds). */
int liveroute_state(struct engine *e, struct app *a, enum route_kind kind,
		    int retry_after);

/*
 * a's hosts changed (domains:add, domains:remove): the table takes them
 * at once, its route unchanged.  ERR_EXISTS ("host 'x' belongs to app
 * 'y'") or ERR_INVALID, and nothing changes.
 */
int liveroute_hosts_changed(struct engine *e, struct app *a);

/*
 * a's route from what it is now: maintenance on (the 503 page), stopped,
 * no release yet, or its live processes.  For maintenance:on/off.
 */
int liveroute_refresh(struct engine *e, struct app *a);

/* a was renamed from old (a->name is the new name): old's entry goes,
 * and a's hosts and route are set under the new name. */
int liveroute_rename(struct engine *e, struct app *a, const char *old);

/*
 * Router log lines (routerlog.h) into each app's log, with source
 * "router": listen on nginx's log socket and hear nginx's workers.
 * Errors are logged; apps run without router lines then.
 */
void liveroute_log_open(struct engine *e);
void liveroute_log_close(struct engine *e);

/* The header that sends a probe through nginx to one port of a release
 * that is not live: "X-Berth-Peer: PORT", written into buf. */
const char *liveroute_probe_header(int port, char *buf, size_t size);

#endif
