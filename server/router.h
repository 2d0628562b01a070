/*
 * router: the routing table inside nginx, owned by the engine.
 *
 * nginx carries berth's router (server/router.lua on lua-nginx-module,
 * docs/nginx.md): for every request it looks up the host, then the app's
 * route, in a shared dictionary, and proxies to the live release's web
 * processes, serves a static release, or answers a short 404/503 page.
 * This module is the engine's side of it.  It keeps the whole table in
 * memory, writes it to a file that nginx loads in its master before any
 * worker starts (so a restarted nginx routes from its first request), and
 * sends every change to nginx's control listener, a unix socket in a
 * folder only the engine's user can enter.  Nothing an app does reloads
 * nginx.
 *
 * The table:
 *   hosts   HOST -> APP, or APP's static folder.  Every app owns
 *           APP.DOMAIN and the hosts it claims.  An exact host belongs
 *           to one app, and so does a wildcard "*.SUFFIX".  A request's
 *           host matches its exact entry, else the longest wildcard:
 *           a.b.example.com tries *.b.example.com, then *.example.com,
 *           then *.com.
 *   routes  APP -> what its requests get (struct route).
 * Its text form, used for the file and for every change sent:
 *   version N
 *   route APP live REL PROC:PORT... [HOST@ADDR:PORT...]
 *             [fallback REL PROC:PORT...]
 *   route APP static REL ROOT
 *   route APP stopped|noweb|maintenance    route APP crashing|starting SECS
 *   static APP REL ROOT    unstatic APP   (the static folder beside a
 *                          live route: struct route's static_root)
 *   host HOST APP    host HOST APP static (the host takes the app's
 *                    static folder, else its route)
 *   unhost HOST    unroute APP
 *   forget APP REL   purge APP      (drop request counts)
 *
 * Requests of a live release are counted (routed, in nginx; finished,
 * in nginx's log phase in system mode, from nginx's access_log in own
 * mode: see router_log_start()), per app and release number, so the engine can stop an old release as
 * soon as its requests are done (router_drain_start()).  A switch is one
 * entry: a new request sees the old route or the new one, and one counted
 * on the old release is seen by the engine's next count.
 *
 * The engine's table is the truth; nginx's copy follows.  A call that
 * changes the table checks it, changes it in memory and writes the file
 * (rename, no fsync: the engine writes it anew at every start) at once,
 * and queues one HTTP request to nginx's control listener (a unix
 * socket): the requests go out one at a time, in the order the calls
 * made them, each answered within ROUTER_TIMEOUT_MS of going out (about
 * 0.1 ms when nginx is well).  A caller that must know nginx took a
 * change before it goes on (the deploy's switch and revert) passes a
 * router_done_fn, or waits with router_when_applied().
 *   - nginx not running (restarting): the change counts as taken: nginx
 *     loads the file when it starts, and router_nginx_up() sends the
 *     whole table if it started from an older file.
 *   - nginx refuses or does not answer in time: the engine's table keeps
 *     the change, nginx is out of sync (router_in_sync() 0), the waiters
 *     hear "not ok" with the reason, and nginx gets the whole table: with
 *     the next change, or from the loop every ROUTER_RESYNC_MS until it
 *     takes it.  A switch that failed so is for its caller to revert.
 *   - an update nginx gets with a version it has already (it loaded a
 *     newer file, or a request given up on arrives late) changes nothing.
 * The router owns the queue; a waiter's arg is the caller's, who cancels
 * the wait (router_wait_cancel()) before it goes.
 *
 * Blocking: with a loop (router_set_loop()) no call waits for nginx,
 * and no callback runs inside the call that gave it: the loop sends the
 * requests and calls back.  Without one (engine start and stop, tests),
 * every call that queues a request sends what is queued at once and
 * waits for the answers, up to ROUTER_TIMEOUT_MS each, and calls back
 * before it returns.  router_counts() always blocks (tests).  Writing
 * the file is a local write, never waited for by nginx.
 *
 * Errors: -1 with error_last(); ERR_INVALID for a bad name, host, port or
 * root; ERR_EXISTS for a host another app owns ("host 'x' belongs to app
 * 'y'"); ERR_NOTFOUND for an unknown app; ERR_BUSY when nginx cannot be
 * asked (router_counts()).  A call that fails so changes nothing.
 * Without a loop, a change nginx did not take returns -1 too (the table
 * keeps it, as above).
 */
#ifndef BERTH_ROUTER_H
#define BERTH_ROUTER_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "routerlog.h"

struct buf;
struct loop;
struct router;

#define ROUTER_TIMEOUT_MS 2000
#define ROUTER_RESYNC_MS 1000
#define ROUTER_MAX_HOSTS 256
#define ROUTER_MAX_PEERS 1024

enum route_kind {
	ROUTE_STARTING,		/* 503 "app is starting", Retry-After */
	ROUTE_LIVE,		/* proxy to the release's web processes */
	ROUTE_STATIC,		/* files under root */
	ROUTE_STOPPED,		/* 503 "app is stopped" */
	ROUTE_NO_WEB,		/* 503 "no web process" */
	ROUTE_CRASHING,		/* 503 "app is crashing", Retry-After */
	ROUTE_MAINTENANCE,	/* 503 "app is under maintenance" */
};

/* One listening web process: proc "web.1" ([A-Za-z0-9._-], < 48). */
struct route_peer {
	const char *proc;
	int port;		/* on 127.0.0.1 */
};

/*
 * Another host of a cluster that runs the app ("route: group",
 * docs/cluster.md): its route listener, where that host's nginx answers
 * from its own processes only.
 */
struct route_remote {
	const char *host;	/* its name ([A-Za-z0-9._-], < 48) */
	const char *addr;	/* an IPv4 address */
	int port;
};

/* What an app's requests get; the caller keeps ownership. */
struct route {
	enum route_kind kind;
	int release;		/* LIVE, STATIC: the release answering */
	const struct route_peer *peers;	/* LIVE: round robin; ports of
					 * one proc: the one that last
					 * answered, then the others */
	size_t npeers;		/* LIVE with 0 peers (and no remote) reads
				 * as NO_WEB */
	/* LIVE: other hosts taking the app's requests too, in the round
	 * robin with the processes here ("route: group") */
	const struct route_remote *remote;
	size_t nremote;
	/*
	 * LIVE, during the watch after a switch: the previous release's
	 * processes, tried only when no port of this release takes the
	 * connection (one crashed).  Such a request counts for the
	 * previous release, so its drain waits for it.
	 */
	const struct route_peer *fallback;
	size_t nfallback;
	int fallback_release;
	const char *root;	/* STATIC: absolute folder, no spaces */
	int retry_after;	/* CRASHING, STARTING: seconds, 1-3600 */
	/*
	 * LIVE, NO_WEB, CRASHING: a static folder beside the web processes
	 * (Keter's static-files next to a webapp).  Requests for the hosts
	 * in static_hosts (some of the app's hosts, as given to
	 * router_app_set()) get the files under static_root, release
	 * 'release'; the app's other hosts get the route above.  NULL or
	 * no hosts: none.  Other kinds ignore it: a stopped app, one in
	 * maintenance or starting answers its page on every host.
	 */
	const char *static_root;
	char *const *static_hosts;
	size_t nstatic_hosts;
};

struct router_opts {
	const char *table_path;		/* the file nginx loads at start */
	const char *control_socket;	/* nginx's control listener */
	const char *probe_socket;	/* nginx's probe listener */
	const char *domain;		/* APP.DOMAIN is every app's host */
	/*
	 * Own mode: nginx's access_log of the public listeners
	 * (ROUTERLOG_ACCESS_FORMAT), or NULL (system mode: the Lua log
	 * phase sends the router log and counts requests finished).
	 */
	const char *access_log;
};

/*
 * Load the previous table file, if any: its apps come back with their
 * hosts and the route "starting" (their processes are gone), until the
 * engine sets them again; router_drop_stale() removes those it did not.
 * Writes the file; does not talk to nginx (it may not run yet).
 */
int router_init(struct router **out, const struct router_opts *o);
/* Drops what is queued unsent, without calling back (the file has it:
 * nginx loads it at its start); set the loop to NULL first to send it. */
void router_free(struct router *r);

/* Check hosts (APP.DOMAIN implied) for app without changing anything. */
int router_hosts_check(const struct router *r, const char *app,
		       char *const *hosts, size_t nhosts);

/*
 * Create or change app: its hosts beyond APP.DOMAIN (replacing the ones
 * it had) and its route.  No-op (no file write, no request) if both are
 * unchanged.  Does not touch the route kept for router_revert().
 */
int router_app_set(struct router *r, const char *app, char *const *hosts,
		   size_t nhosts, const struct route *rt);

/*
 * Change app's hosts beyond APP.DOMAIN, keeping its route (domains:add,
 * domains:remove).  For an app the router does not know yet, only
 * checks them.
 */
int router_app_hosts(struct router *r, const char *app, char *const *hosts,
		     size_t nhosts);

/* What the router knows about the release a switch took traffic from. */
struct router_switch {
	int had_live;		/* the app had a live route before */
	int release;		/* its release */
	long inflight;		/* its requests in flight right after */
	long done;		/* its requests finished until then (-1: not
				 * known: nginx was not running or did not
				 * answer) */
};

/*
 * How a request to nginx ended, for its waiter.  error and res belong to
 * the router and last for the call only.
 */
struct router_done {
	int ok;			/* nginx took it (or is not running: it
				 * loads the file when it starts) */
	const char *error;	/* !ok: why ("nginx's router does not
				 * answer (2000 ms)") */
	struct router_switch sw;	/* router_switch(): the release it
					 * replaced, counted at the switch */
	int status;		/* router_post(): the HTTP status nginx
				 * answered (0: none, or not running) */
	const char *answer;	/* router_post(): the body of that answer
				 * (NULL without one) */
};
typedef void (*router_done_fn)(void *arg, const struct router_done *res);

/*
 * Requests from now on go out from the loop l (NULL: at once, after
 * what is queued went out, waiting for each).  The engine sets it once
 * its loop runs, and NULL once it stopped.  Idempotent.
 */
void router_set_loop(struct router *r, struct loop *l);

/*
 * The switch: router_app_set(), and the hosts and route app had are kept
 * for router_revert().  Every new request sees the new route once nginx
 * took it (one entry in nginx changes).  fn (may be NULL) is called once,
 * when nginx answered or the time ran out, with the release it replaced
 * as nginx counted it at the switch; *wait (may be NULL) takes the id
 * that router_wait_cancel() takes (0 without a loop: fn was called).
 * ERR_NOTFOUND for an app never set; on any error fn is never called.
 * If res->ok is 0, the table has the new route but nginx may not: the
 * caller reverts (router_revert()).
 */
int router_switch(struct router *r, const char *app, char *const *hosts,
		  size_t nhosts, const struct route *rt, router_done_fn fn,
		  void *arg, uint64_t *wait);

/*
 * Back to the hosts and route before the last router_switch() (a
 * rollback during the watch), in the table at once and then in nginx; fn
 * and wait as router_switch()'s.  A host another app claimed since
 * stays with it.  ERR_NOTFOUND if there is nothing to go back to.
 */
int router_revert(struct router *r, const char *app, router_done_fn fn,
		  void *arg, uint64_t *wait);

/*
 * fn once every request queued so far was answered (or timed out): ok if
 * the last change sent was taken.  The id for router_wait_cancel() (0
 * without a loop: fn was called).
 */
uint64_t router_when_applied(struct router *r, router_done_fn fn, void *arg);
/*
 * A request of another module to nginx's control listener (the
 * certificate table: POST body to path), queued after every change made
 * so far and before those made later, sent and answered as they are.
 * fn (may be NULL) is called once with ok 1 if nginx answered 200 or is
 * not running (it loads its files when it starts), else ok 0 with the
 * reason (and status and answer if nginx answered something else).  The
 * routing table's state is not touched.  The id for router_wait_cancel()
 * (0 without a loop: fn was called before this returned).
 */
uint64_t router_post(struct router *r, const char *path, const char *body,
		     size_t len, router_done_fn fn, void *arg);
/* fn of that wait is not called (the request still goes out).  0 and
 * ids already called are ignored.  Cancel every wait whose arg dies. */
void router_wait_cancel(struct router *r, uint64_t id);
/* Requests queued or in flight (tests, status). */
size_t router_pending(const struct router *r);

/* Remove app: its hosts, route and counts.  Unknown apps are fine. */
int router_app_remove(struct router *r, const char *app);

/* FROM's route and hosts under the name TO, in one change
 * whose new entries come before the old ones go (no request finds a host
 * of the app without a route meanwhile; its request counters start
 * afresh); FROM.DOMAIN becomes TO.DOMAIN.
 * 0 when FROM is not in the table; ERR_EXISTS when TO is. */
int router_app_rename(struct router *r, const char *from, const char *to);

/* Remove the apps loaded from the old file that nobody set since. */
int router_drop_stale(struct router *r);
/* Keep app (hosts and route as loaded) through router_drop_stale(). */
void router_keep(struct router *r, const char *app);

struct router_counts {
	long inflight;		/* routed to it, not finished */
	long done;		/* finished since counting began (own mode:
				 * but those that ended before the release's
				 * last switch away, read after it) */
};

/*
 * Ask nginx for a release's counts, on a connection of its own, outside
 * the queue: blocks up to ROUTER_TIMEOUT_MS (tests; the drain asks in
 * the queue).  ERR_BUSY if nginx does not answer.
 */
int router_counts(struct router *r, const char *app, int release,
		  struct router_counts *out);

/* Drop a stopped release's counts in nginx (best effort, queued). */
int router_forget(struct router *r, const char *app, int release);

/*
 * Drain watch: once no route leads to a release any more, poll nginx
 * (every 20 ms, from the loop) until the release has nothing in flight,
 * or max_ms passed (a count asked just before is waited for: up to
 * ROUTER_TIMEOUT_MS more).  Counts are asked in the queue, after every
 * change made before.  fn is called once from the loop (never from inside
 * router_drain_start()) unless cancelled; finished counts the requests
 * the release finished meanwhile ("Drained release 4 (12 requests
 * finished in 80 ms)"): since the switch if sw (router_switch()'s out,
 * or NULL) is about this release, else since the first count.  While
 * nginx does not answer, the drain waits for max_ms.  The handle belongs
 * to this module and is freed after fn returns; cancel every drain
 * before router_free().
 */
struct router_drain;
struct router_drain_result {
	int drained;		/* 1: nothing left in flight; 0: time ran out */
	long finished;		/* requests it finished since the switch */
	long left;		/* in flight when time ran out */
	long elapsed_ms;
};
typedef void (*router_drain_fn)(void *arg,
				const struct router_drain_result *res);
struct router_drain *router_drain_start(struct router *r, struct loop *l,
					const char *app, int release,
					const struct router_switch *sw,
					long max_ms, router_drain_fn fn,
					void *arg);
void router_drain_cancel(struct router_drain *d);

/*
 * nginx (re)started and is up: learn the uid its workers run as, and send
 * the whole table unless nginx already has this version (queued; without
 * a loop, done when it returns).  nginx.c calls it; 0 even if nginx cannot
 * be reached (the next change retries).
 */
int router_nginx_up(struct router *r);
/*
 * Own mode: the public listeners have no Lua log phase.  nginx's
 * access_log (buffered, flushed every 100 ms) holds a line per request,
 * which names no app: this module reads the file, names each line's app,
 * release and process from its host and upstream port (the ports of
 * every live route it set, kept until router_forget() of the release or
 * the app's removal; the app must answer for the line's host), and frees
 * what it read (punched out of the file: nginx only appends, so the file
 * takes no disk space beyond what is unread, needs no rotation, and
 * nginx no signal).  Lines of no known port are dropped (counted), and
 * so are those whose port went to the answer listener: it sends their
 * lines itself, over routerlog's socket.  A release's requests finished
 * are its lines read; in flight, those nginx routed to it less those
 * (router_counts() reads the file before asking nginx: every line read
 * is of a request counted by then, so in flight is never taken for less
 * than it is).  So a drain ends up to one flush (100 ms) after its last
 * request.  Its finished count is exact: each line carries its request's
 * end time ($msec), and router_switch() notes the wall-clock time just
 * before the switch went to nginx, so the lines read after it of
 * requests that ended before it
 * (nginx had not written them yet) are not counted finished since the
 * switch (router_counts()' done leaves them out; in flight still counts
 * every line).  A new nginx master counts from 0, and so do the lines
 * (router_nginx_up()).
 *
 * router_log_start(): read every 100 ms from loop l, and give the lines
 * (as routerlog_parse() makes them) to fn; router_log_stop() before
 * router_free().  Without it, the file is read only for counts.  The
 * file is made (mode 0640) by router_init().  Does nothing in system
 * mode.
 */
void router_log_start(struct router *r, struct loop *l, routerlog_fn fn,
		      void *arg);
void router_log_stop(struct router *r);
/* Read the file now (for tests). */
void router_log_read(struct router *r);
/* Lines dropped: did not parse; named no port this module knows. */
void router_log_stats(const struct router *r, unsigned long *bad,
		      unsigned long *unknown);

/* Send the whole table to nginx (queued; without a loop, now). */
int router_sync(struct router *r);

/* 1 when nginx has acknowledged the current version. */
int router_in_sync(const struct router *r);
uint64_t router_version(const struct router *r);
/* uid of nginx's workers (from nginx itself), or -1 if not known yet. */
long router_worker_uid(const struct router *r);
/*
 * The probe listener: requests there are routed like public ones (by
 * Host), or to one port with "X-Berth-Peer: PORT" (a release that is not
 * live yet), are not counted nor logged, and every answer says which
 * peer answered in X-Berth-Upstream.  The public listener does none of
 * this.  Borrowed.
 */
const char *router_probe_socket(const struct router *r);
/*
 * The hosts app answers for (APP.DOMAIN first), appended to out; 0, or
 * ERR_NOTFOUND for an app the table does not have.
 */
struct strv;
int router_app_host_list(const struct router *r, const char *app,
			 struct strv *out);
/* Render the table as the file holds it (for tests and bench). */
void router_render(const struct router *r, struct buf *out);

#endif
