/*
 * nginx: the proxy in front of every app.
 *
 * Own mode (default): nginx runs as a supervised child of the engine from
 * ROOT/nginx (nginx.conf, conf.d/NAME.conf, logs/, temp folders),
 * listening on cfg->http_listen.  System mode: files go to
 * cfg->nginx_conf_dir and the system nginx is reloaded ("nginx -s reload").
 *
 * A routine deploy never reloads nginx.  Each web process has a fixed pair
 * of ports (slots) in its app's upstream, both "max_fails=0"; a release
 * runs on one slot of each pair and the next release starts on the other.
 * nginx's proxy_next_upstream retries a connection refused by the idle
 * slot on the live one, so the swap is the moment the old process stops
 * listening: no reload, no lost request.  The upstream changes (and nginx
 * reloads) only when the set of slots or the hosts change: a new app, a new
 * web scale, new hosts.  Static sites are served from a symlink the engine
 * swaps with rename(), also without a reload.
 *
 * Every change is written to NAME.conf.new, checked with "nginx -t" on the
 * whole configuration including the new file, and only then renamed into
 * place and loaded; a failed check leaves the old file and returns -1 with
 * nginx's own message in error_last().
 */
#ifndef BERTH_NGINX_H
#define BERTH_NGINX_H

#include <stddef.h>

struct config;
struct loop;
struct nginx;

struct nginx_app {
	const char *name;
	char *const *hosts;	/* hosts beyond NAME.DOMAIN */
	size_t nhosts;
	const int *ports;	/* every upstream slot port (2 per web process) */
	size_t nports;
	const char *static_root;/* absolute path of the swapped symlink, or NULL */
};

/* Prepare ROOT/nginx (or check the system conf dir). */
int nginx_init(struct nginx **out, const struct config *cfg,
	       struct loop *l);
/* Own mode: start the supervised nginx (restarted if it dies). */
int nginx_start(struct nginx *ng);
/* Write (or rewrite) an app's file, check, load. No-op if unchanged. */
int nginx_app_set(struct nginx *ng, const struct nginx_app *app);
/* Remove an app's file and reload. */
int nginx_app_remove(struct nginx *ng, const char *name);
/* Graceful reload of the running nginx. */
int nginx_reload(struct nginx *ng);
/* Own mode: stop nginx (QUIT, then KILL after a timeout). */
void nginx_stop(struct nginx *ng);
void nginx_free(struct nginx *ng);
/* A server of berth's own: requests for 'host' go to the unix socket
 * 'sock'; file NAME.conf, NAME holding a '_'; host NULL removes it. */
int nginx_proxy_set(struct nginx *ng, const char *name, const char *host,
		    const char *sock);
/* "127.0.0.1:8080": where to send requests to reach apps through nginx. */
const char *nginx_http_addr(const struct nginx *ng);

#endif
