/* liveroute: the deploy path's calls into the router; see liveroute.h. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "app.h"
#include "appstats.h"
#include "config.h"
#include "engine.h"
#include "health.h"
#include "liveroute.h"
#include "logger.h"
#include "log.h"
#include "loop.h"
#include "nginx.h"
#include "routerlog.h"
#include "util.h"
#include "banned.h"

/* A route built from runs; owns its arrays. */
struct built {
	struct route rt;
	struct route_peer *peers, *fallback;
	char *root;
	char *static_root;
};

static size_t web_peers(const struct run *run, struct route_peer **out)
{
	const struct proc *p;
	size_t n = 0;

	*out = NULL;
	if (!run)
		return 0;
	for (p = run->procs; p; p = p->next) {
		/* a restarted one whose port is not known to be its own
		 * yet gets nothing (app.c, on_port_timer()) */
		if (!p->port || p->state != PROC_UP || p->port_pending)
			continue;
		*out = xrealloc(*out, (n + 1) * sizeof(**out));
		(*out)[n].proc = p->name;
		(*out)[n].port = proc_http_port(p);
		n++;
	}
	return n;
}

/* Seconds until a crashed web process is restarted; 0 if none waits. */
static int crash_wait_s(const struct run *run)
{
	const struct proc *p;
	long ms = 0;

	for (p = run->procs; p; p = p->next) {
		if (p->port && p->state == PROC_BACKOFF &&
		    p->restart.backoff.next_ms > ms)
			ms = p->restart.backoff.next_ms;
		if (p->port && (p->port_pending ||
				p->state == PROC_STARTING) && ms < 1000)
			ms = 1000;
	}
	if (ms <= 0)
		return 0;
	return ms / 1000 < 1 ? 1 : ms / 1000 > 3600 ? 3600 : (int)(ms / 1000);
}

static void build(struct engine *e, const struct app *a,
		  const struct run *run, const struct run *old,
		  struct built *b)
{
	memset(b, 0, sizeof(*b));
	if (a->maintenance) {
		/* maintenance:on: every request gets the 503 page */
		b->rt.kind = ROUTE_MAINTENANCE;
		b->rt.release = run ? run->number : 0;
		return;
	}
	if (!run) {
		b->rt.kind = a->stopped ? ROUTE_STOPPED : ROUTE_STARTING;
		b->rt.retry_after = 5;
		return;
	}
	b->rt.release = run->number;
	b->rt.npeers = web_peers(run, &b->peers);
	b->rt.peers = b->peers;
	/* route: group: the other hosts of the cluster too, even when
	 * every process here is down */
	if (e->route_remote && !run->m.static_root)
		b->rt.nremote = e->route_remote(e->route_remote_arg, a,
						&b->rt.remote);
	if (b->rt.npeers || b->rt.nremote) {
		b->rt.kind = ROUTE_LIVE;
		b->rt.nfallback = web_peers(old, &b->fallback);
		b->rt.fallback = b->fallback;
		b->rt.fallback_release = old ? old->number : 0;
		if (old && old->number == run->number) {
			/* a restart of the same release: its counts are
			 * one, so no fallback to tell apart */
			b->rt.nfallback = 0;
			b->rt.fallback = NULL;
		}
	} else if (crash_wait_s(run) > 0) {
		/* every web process crashed and waits to be restarted */
		b->rt.kind = ROUTE_CRASHING;
		b->rt.retry_after = crash_wait_s(run);
	} else if (run->m.static_root) {
		b->rt.kind = ROUTE_STATIC;
		b->root = engine_path(e, "run/%s.static", a->name);
		b->rt.root = b->root;
	} else {
		b->rt.kind = ROUTE_NO_WEB;
	}
	/*
	 * Keter's static-files beside a webapp (app.yaml's static: with
	 * hosts): those hosts get this release's static copy (app.c's
	 * copy_static(), RUNDIR.www), so the switch and a revert move the
	 * folder with the processes, in the same table entry change.
	 */
	if (b->rt.kind != ROUTE_STATIC && run->m.static_root &&
	    run->m.static_hosts.n) {
		b->static_root = xasprintf("%s.www", run->dir);
		b->rt.static_root = b->static_root;
		b->rt.static_hosts = run->m.static_hosts.v;
		b->rt.nstatic_hosts = run->m.static_hosts.n;
	}
}

static void built_free(struct built *b)
{
	free(b->peers);
	free(b->fallback);
	free(b->root);
	free(b->static_root);
}

static int hosts_has(const struct strv *sv, const char *s)
{
	size_t i;

	for (i = 0; i < sv->n; i++)
		if (!strcmp(sv->v[i], s))
			return 1;
	return 0;
}

/* The hosts an app answers beyond APP.DOMAIN: its release's (m, may be
 * NULL) and those domains:add gave it. */
static void app_hosts(const struct app *a, const struct manifest *m,
		      struct strv *out)
{
	size_t i;

	for (i = 0; m && i < m->hosts.n; i++)
		strv_push(out, m->hosts.v[i]);
	for (i = 0; i < a->domains.n; i++)
		if (!hosts_has(out, a->domains.v[i]))
			strv_push(out, a->domains.v[i]);
}

static struct router *router_of(struct engine *e)
{
	return e->nginx ? nginx_router(e->nginx) : NULL;
}

int liveroute_claim(struct engine *e, struct app *a, const struct manifest *m)
{
	struct router *r = router_of(e);
	struct strv hosts = STRV_INIT;
	struct built b;
	int ret;

	if (!r)
		return 0;
	app_hosts(a, m, &hosts);
	if (router_hosts_check(r, a->name, hosts.v, hosts.n) < 0) {
		ret = -1;
		goto out;
	}
	ret = 0;
	if (a->live)
		goto out;
	build(e, a, NULL, NULL, &b);
	if (!a->stopped && !a->maintenance)
		b.rt.kind = ROUTE_STARTING;
	ret = router_app_set(r, a->name, hosts.v, hosts.n, &b.rt);
	built_free(&b);
out:
	strv_release(&hosts);
	return ret < 0 ? -1 : 0;
}

/* Without nginx there is nothing to wait for: fn at once. */
static int done_now(router_done_fn fn, void *arg, uint64_t *wait)
{
	struct router_done res;

	if (wait)
		*wait = 0;
	memset(&res, 0, sizeof(res));
	res.ok = 1;
	res.sw.release = -1;
	res.sw.done = -1;
	if (fn)
		fn(arg, &res);
	return 0;
}

int liveroute_switch(struct engine *e, struct app *a, const struct run *run,
		     const struct run *old, router_done_fn fn, void *arg,
		     uint64_t *wait)
{
	struct router *r = router_of(e);
	struct strv hosts = STRV_INIT;
	struct built b;
	int ret;

	if (!r)
		return done_now(fn, arg, wait);
	build(e, a, run, old, &b);
	app_hosts(a, &run->m, &hosts);
	ret = router_switch(r, a->name, hosts.v, hosts.n, &b.rt, fn, arg,
			    wait);
	built_free(&b);
	strv_release(&hosts);
	return ret < 0 ? -1 : 0;
}

int liveroute_settle(struct engine *e, struct app *a)
{
	struct router *r = router_of(e);
	struct strv hosts = STRV_INIT;
	struct built b;
	int ret;

	if (!r || !a->live)
		return 0;
	build(e, a, a->live, NULL, &b);
	app_hosts(a, &a->live->m, &hosts);
	ret = router_app_set(r, a->name, hosts.v, hosts.n, &b.rt);
	built_free(&b);
	strv_release(&hosts);
	return ret < 0 ? -1 : 0;
}

void liveroute_keep(struct engine *e, struct app *a)
{
	struct router *r = router_of(e);

	if (r)
		router_keep(r, a->name);
}

void liveroute_forget_others(struct engine *e)
{
	struct router *r = router_of(e);

	if (r && router_drop_stale(r) < 0)
		log_warnx("router: %s", error_last());
}

int liveroute_revert(struct engine *e, struct app *a, router_done_fn fn,
		     void *arg, uint64_t *wait)
{
	struct router *r = router_of(e);

	if (!r)
		return done_now(fn, arg, wait);
	return router_revert(r, a->name, fn, arg, wait) < 0 ? -1 : 0;
}

void liveroute_wait_cancel(struct engine *e, uint64_t id)
{
	struct router *r;

	if (!id)
		return;		/* nothing waits (nginx may be gone) */
	r = router_of(e);
	if (r)
		router_wait_cancel(r, id);
}

struct liveroute_applied {
	struct liveroute_applied *next;
	struct app *a;
	uint64_t wait;		/* the router's, 0 while it is called */
	liveroute_applied_fn fn;
	void *arg;
};

static void applied_unlink(struct liveroute_applied *w)
{
	struct liveroute_applied **pp;

	for (pp = &w->a->route_waits; *pp; pp = &(*pp)->next)
		if (*pp == w) {
			*pp = w->next;
			return;
		}
}

static void on_applied(void *arg, const struct router_done *res)
{
	struct liveroute_applied *w = arg;

	applied_unlink(w);
	w->fn(w->a, res, w->arg);
	free(w);
}

void liveroute_when_applied(struct engine *e, struct app *a,
			    liveroute_applied_fn fn, void *arg)
{
	struct router *r = router_of(e);
	struct liveroute_applied *w;
	uint64_t id;

	if (!r) {
		/* no nginx: nothing to wait for */
		struct router_done res;

		memset(&res, 0, sizeof(res));
		res.ok = 1;
		res.sw.release = -1;
		res.sw.done = -1;
		fn(a, &res, arg);
		return;
	}
	w = xcalloc(1, sizeof(*w));
	w->a = a;
	w->fn = fn;
	w->arg = arg;
	w->next = a->route_waits;
	a->route_waits = w;
	/* without a loop, on_applied() ran already and w is gone (id 0) */
	id = router_when_applied(r, on_applied, w);
	if (id)
		w->wait = id;
}

void liveroute_applied_drop(struct app *a)
{
	struct liveroute_applied *w;

	while ((w = a->route_waits)) {
		a->route_waits = w->next;
		liveroute_wait_cancel(a->eng, w->wait);
		w->fn(a, NULL, w->arg);
		free(w);
	}
}

void liveroute_async(struct engine *e, int on)
{
	struct router *r = router_of(e);

	if (r)
		router_set_loop(r, on ? e->loop : NULL);
}

int liveroute_state(struct engine *e, struct app *a, enum route_kind kind,
		    int retry_after)
{
	struct router *r = router_of(e);
	struct route rt;
	struct strv hosts = STRV_INIT;
	int ret;

	if (!r)
		return 0;
	memset(&rt, 0, sizeof(rt));
	rt.kind = a->maintenance ? ROUTE_MAINTENANCE : kind;
	rt.retry_after = retry_after > 0 ? retry_after : 5;
	app_hosts(a, a->live ? &a->live->m : NULL, &hosts);
	ret = router_app_set(r, a->name, hosts.v, hosts.n, &rt);
	strv_release(&hosts);
	return ret < 0 ? -1 : 0;
}

int liveroute_hosts_changed(struct engine *e, struct app *a)
{
	struct router *r = router_of(e);
	struct strv hosts = STRV_INIT;
	int ret;

	if (!r)
		return 0;
	app_hosts(a, a->live ? &a->live->m : NULL, &hosts);
	ret = router_app_hosts(r, a->name, hosts.v, hosts.n);
	strv_release(&hosts);
	return ret;
}

int liveroute_rename(struct engine *e, struct app *a, const char *old)
{
	struct router *r = router_of(e);

	if (!r)
		return 0;
	if (router_app_rename(r, old, a->name) < 0)
		return -1;
	return liveroute_refresh(e, a);
}

int liveroute_refresh(struct engine *e, struct app *a)
{
	struct router *r = router_of(e);

	if (!r)
		return 0;
	if (a->maintenance || !a->live)
		return liveroute_state(e, a, a->stopped ? ROUTE_STOPPED :
				       ROUTE_STARTING, 5);
	if (a->stopped)
		return liveroute_state(e, a, ROUTE_STOPPED, 0);
	return liveroute_settle(e, a);
}

const char *liveroute_probe_header(int port, char *buf, size_t size)
{
	snprintf(buf, size, "X-Berth-Peer: %d", port);
	return buf;
}

static void on_router_lines(void *arg, const struct routerlog_line *lines,
			    size_t n)
{
	struct engine *e = arg;
	int64_t now_s = (int64_t)time(NULL);
	size_t i;

	for (i = 0; i < n; i++) {
		struct app *a = app_find(e, lines[i].app);

		if (a && a->log)
			logger_line(a->log, "router", lines[i].text,
				    lines[i].len);
		if (a && e->stats)
			appstats_request(e->stats, a->name, lines[i].status,
					 lines[i].service_ms, now_s);
	}
}

void liveroute_log_open(struct engine *e)
{
	struct routerlog *rl;

	if (!e->nginx || e->routerlog)
		return;
	if (routerlog_open(&rl, e->loop, nginx_log_socket(e->nginx),
			   on_router_lines, e) < 0) {
		log_warnx("router log: %s", error_last());
		return;
	}
	routerlog_allow_uid(rl, router_worker_uid(nginx_router(e->nginx)));
	e->routerlog = rl;
	/* own mode: the public listeners' lines, from nginx's access_log */
	router_log_start(nginx_router(e->nginx), e->loop, on_router_lines, e);
}

void liveroute_log_close(struct engine *e)
{
	if (e->nginx)
		router_log_stop(nginx_router(e->nginx));
	if (e->routerlog)
		routerlog_free(e->routerlog);
	e->routerlog = NULL;
}

/* ---------- the watch's health checks ---------- */

struct watched {
	struct livewatch *w;
	struct proc *p;
	struct health *h;	/* the check running, or NULL */
	uint64_t timer;		/* the next check, or 0 */
	int fails;		/* in a row */
};

struct livewatch {
	struct engine *e;
	livewatch_fn fn;
	void *arg;
	struct watched *ps;
	size_t n;
	long max_status;
	char *path;
	char *content;		/* app.json's healthchecks content, or NULL */
	int done;		/* fn was called: no more checks */
};

static void watched_next(struct watched *x, long after);

static void on_watch_check(void *arg, const struct health_result *r)
{
	struct watched *x = arg;
	struct livewatch *w = x->w;
	char *why;

	x->h = NULL;		/* finished: health.c frees it */
	if (r->ok) {
		x->fails = 0;
		watched_next(x, LIVEWATCH_INTERVAL_MS);
		return;
	}
	if (++x->fails < LIVEWATCH_FAILS) {
		watched_next(x, LIVEWATCH_INTERVAL_MS);
		return;
	}
	if (w->done)
		return;
	w->done = 1;
	why = xasprintf("failed its health check (%s)",
			r->error && r->error[0] ? r->error :
			"no healthy answer");
	/* fn may stop (free) the watch: this check is already let go */
	w->fn(w->arg, x->p, why);
	free(why);
}

static void on_watch_timer(struct loop *l, void *arg)
{
	struct watched *x = arg;
	struct livewatch *w = x->w;
	struct health_req req;
	char *url;

	x->timer = 0;
	if (w->done)
		return;
	url = xasprintf("http://127.0.0.1:%d%s", proc_http_port(x->p), w->path);
	memset(&req, 0, sizeof(req));
	req.url = url;
	req.max_status = w->max_status;
	req.timeout_ms = LIVEWATCH_TIMEOUT_MS;
	req.interval_ms = LIVEWATCH_TIMEOUT_MS;
	req.once = 1;
	req.want_body = w->content;
	x->h = health_start(&req, on_watch_check, x);
	free(url);
	if (!x->h) {
		log_warnx("%s: cannot check %s during the watch: %s",
			  x->p->app->name, x->p->name, error_last());
		watched_next(x, LIVEWATCH_INTERVAL_MS);
	}
}

static void watched_next(struct watched *x, long after)
{
	x->timer = loop_add_timer(x->w->e->loop, after, on_watch_timer, x);
}

struct livewatch *liveroute_watch_start(struct engine *e, struct run *run,
					livewatch_fn fn, void *arg)
{
	struct livewatch *w;
	struct proc *p;
	size_t n = 0;

	for (p = run->procs; p; p = p->next)
		if (p->port && p->state == PROC_UP)
			n++;
	if (!n) {
		error_set("no web process is up");
		return NULL;
	}
	w = xcalloc(1, sizeof(*w));
	w->e = e;
	w->fn = fn;
	w->arg = arg;
	w->max_status = run->m.health_max_status;
	w->path = xstrdup(run->m.health_path ? run->m.health_path : "/");
	w->content = run->m.health_content ? xstrdup(run->m.health_content) : NULL;
	w->ps = xcalloc(n, sizeof(*w->ps));
	for (p = run->procs; p; p = p->next) {
		if (!p->port || p->state != PROC_UP)
			continue;
		w->ps[w->n].w = w;
		w->ps[w->n].p = p;
		/* the first at once: the switch came from a passed check,
		 * but the next could fail already */
		watched_next(&w->ps[w->n], 0);
		w->n++;
	}
	return w;
}

void liveroute_watch_stop(struct livewatch *w)
{
	size_t i;

	if (!w)
		return;
	for (i = 0; i < w->n; i++) {
		health_cancel(w->ps[i].h);
		loop_del_timer(w->e->loop, w->ps[i].timer);
	}
	free(w->ps);
	free(w->path);
	free(w->content);
	free(w);
}
