/*
 * nginx: the proxy in front of every app, and the home of berth's router.
 *
 * berth's nginx configuration never names an app.  It carries the router
 * (router.h, server/router.lua on lua-nginx-module): a table in nginx's
 * shared memory, read on every request, that the engine changes at run
 * time through a unix socket.  So nothing an app does (a new app, its
 * removal, hosts, scale, a deploy, a static site) reloads nginx; the
 * configuration is written once, at start, and changes only with berth's
 * own settings (http_listen).  docs/nginx.md tells why and how.
 *
 * Own mode (default): nginx runs as a supervised child of the engine from
 * ROOT/nginx (nginx.conf, logs/, tmp/), listening on cfg->http_listen,
 * with lua-nginx-module loaded by its nginx.conf.  System mode: berth
 * writes cfg->nginx_conf_dir/berth.conf, which the system's nginx.conf
 * includes at http level; the system nginx must load the module.
 *
 * Both: ROOT/nginx/routes is the table nginx loads at start,
 * ROOT/nginx/lua/router.lua the code, ROOT/nginx/sock/ (mode 0700) the
 * control and probe listeners, ROOT/nginx/router.sock where nginx sends
 * router log lines (routerlog.h).  HTTPS (docs/https.md): with
 * https_listen, a TLS listener whose certificate is picked per handshake
 * by ROOT/nginx/lua/certs.lua from the table ROOT/nginx/certs (certs.h);
 * ROOT/acme/.well-known/acme-challenge/ is served on plain HTTP for every
 * host, before routing.
 *
 * What blocks, in the calling process (the engine).  While the engine's
 * loop runs, nothing here waits: a restart after a crash only spawns,
 * readiness is polled on the loop's timers (supervise.h), log rotation
 * sends USR1, and the routing table changes over the router's socket
 * from the loop (router.h: queued requests, answered in callbacks;
 * router_nginx_up() too).  Nothing an app does reloads nginx or runs
 * "nginx -t".
 * The waits happen at start-up, before the engine's loop runs and before
 * its control socket and SSH listener open, and at shutdown, after the
 * loop ended; so no request waits on them:
 *  - "nginx -t" (and, in system mode, "nginx -s reload"), in a child
 *    waited for, at most 20 s each (runner.h): nginx_init(),
 *    nginx_proxy_set(), nginx_start() in system mode (then at most 5 s
 *    for the router to answer);
 *  - nginx_start() in own mode: first the stale nginx a killed engine
 *    left (its pid file, or nginx processes with this prefix's error log
 *    open, at most 16 groups): QUIT, at most 3 s, then KILL and at most
 *    5 s more, each group (its port must be free for the new master);
 *    then until nginx serves, at most 5 s (a slower one is polled on the
 *    loop's timers after);
 *  - nginx_stop(): QUIT, then at most stop_timeout (capped) before KILL.
 * nginx_reload() and nginx_reopen_logs() have no caller in the loop;
 * they wait as the start does (own: HUP, then /proc polled until the old
 * workers stopped accepting, at most 5 s; system: "nginx -s" and 200 ms).
 * A reload asked for before nginx was up is sent from the loop once it
 * is (HUP alone: nobody waits on it there).
  */
#ifndef BERTH_NGINX_H
#define BERTH_NGINX_H

#include <stddef.h>

struct config;
struct loop;
struct nginx;
struct router;

/*
 * Prepare ROOT/nginx (own) or berth.conf (system): write the
 * configuration, check it with "nginx -t", load the routing table.  A
 * system nginx is reloaded by nginx_start() if berth.conf changed (a new
 * berth), once, whatever was set in between (nginx_proxy_set()).
 */
int nginx_init(struct nginx **out, const struct config *cfg,
	       struct loop *l);
/*
 * Own mode: start the supervised nginx (restarted if it dies, with the
 * table loaded before its first request).  Blocks while stale nginx
 * groups die (see above), then until it serves (at most 5 s).  System
 * mode: reload it if berth.conf is not what it had at nginx_init(), then
 * ask it for its table version.  Before the engine's loop serves: the
 * engine opens its control socket after this returns.
 */
int nginx_start(struct nginx *ng);
/* The routing table; owned by ng, valid until nginx_free(). */
struct router *nginx_router(struct nginx *ng);

/*
 * An app described at once, as its old per-app file did: every slot port
 * (two per web process, "web.N" for ports 2N-2 and 2N-1), or a static
 * root, or neither (no web process).  This sets the app's route and hosts
 * in the router: no file, no reload.  Errors are the router's.  The
 * deploy path does not use it: it routes to the processes that passed
 * their check, through liveroute.h.
 */
struct nginx_app {
	const char *name;
	char *const *hosts;	/* hosts beyond NAME.DOMAIN */
	size_t nhosts;
	const int *ports;	/* every upstream slot port (2 per web process) */
	size_t nports;
	const char *static_root;/* absolute path of the swapped symlink, or NULL */
};
int nginx_app_set(struct nginx *ng, const struct nginx_app *app);
/* Remove an app's route and hosts. */
int nginx_app_remove(struct nginx *ng, const char *name);

/*
 * Graceful reload of the running nginx (own: HUP, returning once the old
 * workers stopped accepting; system: "nginx -s reload").  Only berth's
 * own settings need it; nothing here calls it for an app.
 */
int nginx_reload(struct nginx *ng);
/* nginx reopens its log files (own: USR1; system: "nginx -s reopen"). */
int nginx_reopen_logs(struct nginx *ng);
/* Own mode: stop nginx (QUIT, then KILL after a timeout). */
void nginx_stop(struct nginx *ng);
void nginx_free(struct nginx *ng);
/* A server of berth's own: requests for 'host' go to the unix socket
 * 'sock'; file NAME.conf, NAME holding a '_'; host NULL removes it. */
int nginx_proxy_set(struct nginx *ng, const char *name, const char *host,
		    const char *sock);
/* "127.0.0.1:8080": where to send requests to reach apps through nginx. */
const char *nginx_http_addr(const struct nginx *ng);
/* The unix socket of the probe listener (router_probe_socket()). */
const char *nginx_probe_socket(const struct nginx *ng);
/* Where nginx's workers send router log lines (routerlog_open()). */
const char *nginx_log_socket(const struct nginx *ng);
/* The control listener's unix socket (router.h, certs.h). */
const char *nginx_control_socket(const struct nginx *ng);
/* https_listen as nginx listens, or NULL when HTTPS is off; its port. */
const char *nginx_https_addr(const struct nginx *ng);
int nginx_https_port(const struct nginx *ng);
/* A cluster host's route listener, "ADDR:PORT" (fresh string): its
 * advertise_address (an IPv4 address of this machine: a bind to it is
 * tried) and route_port; NULL when not in a cluster or the address is
 * not one (docs/cluster.md). */
char *nginx_route_listen(const struct config *cfg);
/* How many times nginx was reloaded (HUP or -s reload) since init. */
unsigned long nginx_reloads(const struct nginx *ng);

#endif
