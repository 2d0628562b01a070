/* liveroute: the deploy path's calls into the router; see liveroute.h. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "app.h"
#include "engine.h"
#include "liveroute.h"
#include "logger.h"
#include "log.h"
#include "nginx.h"
#include "routerlog.h"
#include "util.h"

/* A route built from runs; owns its arrays. */
struct built {
	struct route rt;
	struct route_peer *peers, *fallback;
	char *root;
};

static size_t web_peers(const struct run *run, struct route_peer **out)
{
	const struct proc *p;
	size_t n = 0;

	*out = NULL;
	if (!run)
		return 0;
	for (p = run->procs; p; p = p->next) {
		if (!p->port || p->state != PROC_UP)
			continue;
		*out = xrealloc(*out, (n + 1) * sizeof(**out));
		(*out)[n].proc = p->name;
		(*out)[n].port = p->port;
		n++;
	}
	return n;
}

/* Seconds until a crashed web process is restarted; 0 if none waits. */
static int crash_wait_s(const struct run *run)
{
	const struct proc *p;
	long ms = 0;

	for (p = run->procs; p; p = p->next)
		if (p->port && p->state == PROC_BACKOFF && p->backoff_ms > ms)
			ms = p->backoff_ms;
	if (ms <= 0)
		return 0;
	return ms / 1000 < 1 ? 1 : ms / 1000 > 3600 ? 3600 : (int)(ms / 1000);
}

static void build(struct engine *e, const struct app *a,
		  const struct run *run, const struct run *old,
		  struct built *b)
{
	memset(b, 0, sizeof(*b));
	if (!run) {
		b->rt.kind = a->stopped ? ROUTE_STOPPED : ROUTE_STARTING;
		b->rt.retry_after = 5;
		return;
	}
	b->rt.release = run->number;
	b->rt.npeers = web_peers(run, &b->peers);
	b->rt.peers = b->peers;
	if (b->rt.npeers) {
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
}

static void built_free(struct built *b)
{
	free(b->peers);
	free(b->fallback);
	free(b->root);
}

static struct router *router_of(struct engine *e)
{
	return e->nginx ? nginx_router(e->nginx) : NULL;
}

int liveroute_claim(struct engine *e, struct app *a, const struct manifest *m)
{
	struct router *r = router_of(e);
	struct built b;
	int ret;

	if (!r)
		return 0;
	if (router_hosts_check(r, a->name, m->hosts.v, m->hosts.n) < 0)
		return -1;
	if (a->live)
		return 0;
	build(e, a, NULL, NULL, &b);
	if (!a->stopped)
		b.rt.kind = ROUTE_STARTING;
	ret = router_app_set(r, a->name, m->hosts.v, m->hosts.n, &b.rt);
	built_free(&b);
	return ret < 0 ? -1 : 0;
}

int liveroute_switch(struct engine *e, struct app *a, const struct run *run,
		     const struct run *old, struct router_switch *sw)
{
	struct router *r = router_of(e);
	struct built b;
	int ret;

	if (sw)
		memset(sw, 0, sizeof(*sw));
	if (!r)
		return 0;
	build(e, a, run, old, &b);
	ret = router_switch(r, a->name, run->m.hosts.v, run->m.hosts.n,
			    &b.rt, sw);
	built_free(&b);
	return ret < 0 ? -1 : 0;
}

int liveroute_settle(struct engine *e, struct app *a)
{
	struct router *r = router_of(e);
	struct built b;
	int ret;

	if (!r || !a->live)
		return 0;
	build(e, a, a->live, NULL, &b);
	ret = router_app_set(r, a->name, a->live->m.hosts.v,
			     a->live->m.hosts.n, &b.rt);
	built_free(&b);
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

int liveroute_revert(struct engine *e, struct app *a)
{
	struct router *r = router_of(e);

	if (!r)
		return 0;
	return router_revert(r, a->name) < 0 ? -1 : 0;
}

int liveroute_state(struct engine *e, struct app *a, enum route_kind kind,
		    int retry_after)
{
	struct router *r = router_of(e);
	struct route rt;
	const struct manifest *m = a->live ? &a->live->m : NULL;

	if (!r)
		return 0;
	memset(&rt, 0, sizeof(rt));
	rt.kind = kind;
	rt.retry_after = retry_after > 0 ? retry_after : 5;
	return router_app_set(r, a->name, m ? m->hosts.v : NULL,
			      m ? m->hosts.n : 0, &rt) < 0 ? -1 : 0;
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
	size_t i;

	for (i = 0; i < n; i++) {
		struct app *a = app_find(e, lines[i].app);

		if (a && a->log)
			logger_line(a->log, "router", lines[i].text,
				    lines[i].len);
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
}

void liveroute_log_close(struct engine *e)
{
	if (e->routerlog)
		routerlog_free(e->routerlog);
	e->routerlog = NULL;
}
