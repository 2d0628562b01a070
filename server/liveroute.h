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
 *                                  the old ones as fallback for the watch
 *   watch ok  liveroute_settle()   the fallback goes; then the drain
 *   crash     liveroute_revert()   back to the old release, at once
 *   stop      liveroute_state()    stopped, no web process, crashing
 *
 * Every call is a no-op returning 0 when the engine runs without nginx.
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
 * processes as fallback (old may be NULL) until liveroute_settle().  sw
 * (may be NULL) is filled as router_switch() does.
 */
int liveroute_switch(struct engine *e, struct app *a, const struct run *run,
		     const struct run *old, struct router_switch *sw);

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

/* Back to the route before the last liveroute_switch(). */
int liveroute_revert(struct engine *e, struct app *a);

/* The app answers 503 with kind's page (ROUTE_STOPPED, ROUTE_NO_WEB,
 * ROUTE_CRASHING with retry_after seconds). */
int liveroute_state(struct engine *e, struct app *a, enum route_kind kind,
		    int retry_after);

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
