/*
 * clusterroute: "route: group" (docs/cluster.md, clusterjobs.h).
 *
 * Every host of a cluster whose advertise_address is an IPv4 address
 * runs a route listener (nginx.c, ADDR:route_port) where its nginx
 * answers from its own processes only, stores that port in berth_hosts,
 * and keeps in berth_serving which apps have a web process up here
 * (written when that changes).  A host with "route: group" reads, every
 * heartbeat, which other hosts of each app's group serve it (up,
 * heartbeating, the app not stopped, a web process up there) and gives
 * them to the engine's route_remote hook; an
 * app whose set changed gets its route again (liveroute_settle()) once
 * no deploy of it runs, so its requests go round robin over the
 * processes here and those hosts.  A host that stops heartbeating leaves
 * the set within CLUSTER_DOWN_AFTER_S and a heartbeat.
 */
#include "clusterjobs.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "app.h"
#include "cluster.h"
#include "config.h"
#include "engine.h"
#include "liveroute.h"
#include "log.h"
#include "logger.h"
#include "nginx.h"
#include "router.h"
#include "util.h"
#include "banned.h"

/* cluster.c's connection, lent at cjobs_new()/croute_new() */
static const struct cluster_link *lk;

struct croute_app {
	struct croute_app *next;
	char *app;
	struct route_remote *v;
	size_t n;
	struct strv names;	/* v's hosts and addresses, owned */
	char *sig;		/* "HOST@ADDR:PORT ..." as read */
	char *applied;		/* the sig the route last got here */
	int seen;
};

struct cluster_route {
	struct cluster *cl;
	struct engine *e;
	struct croute_app *apps;	/* route: group only */
	int querying;
	int group;			/* route: group */
	int listening;			/* a route listener here */
	struct strv serving;		/* "APP=1" or "APP=0" as last written */
};

static struct croute_app *capp_find(struct cluster_route *r, const char *app)
{
	struct croute_app *x;

	for (x = r->apps; x; x = x->next)
		if (!strcmp(x->app, app))
			return x;
	return NULL;
}

static void capp_clear(struct croute_app *x)
{
	strv_release(&x->names);
	free(x->v);
	x->v = NULL;
	x->n = 0;
}

static void capp_free(struct croute_app *x)
{
	capp_clear(x);
	free(x->app);
	free(x->sig);
	free(x->applied);
	free(x);
}

static size_t route_remote(void *arg, const struct app *a,
			   const struct route_remote **out)
{
	struct croute_app *x = capp_find(arg, a->name);

	*out = x ? x->v : NULL;
	return x ? x->n : 0;
}

/* Routes whose set changed, for apps here that no deploy moves now. */
static void apply(struct cluster_route *r)
{
	struct croute_app *x;

	for (x = r->apps; x; x = x->next) {
		const char *sig = x->sig ? x->sig : "";
		struct app *a;

		if (x->applied && !strcmp(x->applied, sig))
			continue;
		a = app_find(r->e, x->app);
		if (!a || !a->live || a->deploy || a->stopped ||
		    a->maintenance || a->removing)
			continue;	/* its next deploy or settle takes it */
		if (liveroute_settle(r->e, a) < 0) {
			log_warnx("cluster: route of '%s': %s", a->name,
				  error_last());
			continue;
		}
		free(x->applied);
		x->applied = xstrdup(sig);
		if (a->log)
			logger_linef(a->log, "berth", "cluster: requests here also go to %s",
				     *sig ? sig : "no other host (this host's processes only)");
	}
}

static void on_rows(struct cluster *cl, PGresult *res, void *arg)
{
	struct cluster_route *r = arg;
	struct croute_app *x, **pp;
	struct buf sig = BUF_INIT;
	int i, nrows;

	r->querying = 0;
	if (!res || PQresultStatus(res) != PGRES_TUPLES_OK)
		return;
	for (x = r->apps; x; x = x->next)
		x->seen = 0;
	nrows = PQntuples(res);
	for (i = 0; i < nrows;) {
		const char *app = PQgetvalue(res, i, 0);
		struct route_remote *v = NULL;
		struct strv names = STRV_INIT;
		size_t n = 0, j;
		int k;

		buf_reset(&sig);
		for (k = i; k < nrows && !strcmp(PQgetvalue(res, k, 0), app);
		     k++) {
			const char *host = PQgetvalue(res, k, 1);
			const char *addr = PQgetvalue(res, k, 2);
			long port = strtol(PQgetvalue(res, k, 3), NULL, 10);
			struct in_addr in;

			if (inet_pton(AF_INET, addr, &in) != 1 || port <= 0 ||
			    port > 65535 || strlen(host) >= 48 ||
			    strspn(host, "abcdefghijklmnopqrstuvwxyz"
				   "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-")
			    != strlen(host) || n >= ROUTER_MAX_PEERS)
				continue;
			v = xrealloc(v, (n + 1) * sizeof(*v));
			strv_push(&names, host);
			strv_push(&names, addr);
			v[n].port = (int)port;
			n++;
			buf_addf(&sig, "%s%s@%s:%ld", sig.len ? " " : "",
				 host, addr, port);
		}
		for (j = 0; j < n; j++) {
			v[j].host = names.v[2 * j];
			v[j].addr = names.v[2 * j + 1];
		}
		x = capp_find(r, app);
		if (!x) {
			x = xcalloc(1, sizeof(*x));
			x->app = xstrdup(app);
			x->next = r->apps;
			r->apps = x;
		}
		x->seen = 1;
		if (!x->sig || strcmp(x->sig, sig.data ? sig.data : "")) {
			capp_clear(x);
			x->v = v;
			x->n = n;
			x->names = names;
			free(x->sig);
			x->sig = xstrdup(sig.data ? sig.data : "");
		} else {
			strv_release(&names);
			free(v);
		}
		i = k;
	}
	/* an app no other host runs now: this host's processes only */
	for (x = r->apps; x; x = x->next) {
		if (!x->seen && x->sig && *x->sig) {
			capp_clear(x);
			free(x->sig);
			x->sig = xstrdup("");
		}
	}
	buf_release(&sig);
	apply(r);
	for (pp = &r->apps; (x = *pp);) {
		if (!x->seen && !app_find(r->e, x->app)) {
			*pp = x->next;
			capp_free(x);
		} else {
			pp = &x->next;
		}
	}
}

/* 1 if a web process of a is up here (what the route listener has). */
static int serves_here(const struct app *a)
{
	const struct proc *p;

	if (!a->live || a->stopped || a->maintenance || a->removing)
		return 0;
	for (p = a->live->procs; p; p = p->next)
		if (p->port && p->state == PROC_UP && !p->port_pending)
			return 1;
	return 0;
}

static int serving_said(const struct cluster_route *r, const char *word)
{
	size_t i;

	for (i = 0; i < r->serving.n; i++)
		if (!strcmp(r->serving.v[i], word))
			return 1;
	return 0;
}

/* berth_serving: what changed since the last tick, for the others. */
static void write_serving(struct cluster_route *r)
{
	struct strv now = STRV_INIT;
	const struct app *a;
	size_t i;

	for (a = r->e->apps; a; a = a->next)
		strv_pushf(&now, "%s=%d", a->name, serves_here(a));
	/* an app gone from here: not served any more */
	for (i = 0; i < r->serving.n; i++) {
		const char *w = r->serving.v[i];
		size_t len = strcspn(w, "=");
		size_t k;
		int found = 0;

		for (k = 0; k < now.n && !found; k++)
			found = !strncmp(now.v[k], w, len) &&
				now.v[k][len] == '=';
		if (!found && !strcmp(w + len, "=1"))
			strv_pushf(&now, "%.*s=0", (int)len, w);
	}
	for (i = 0; i < now.n; i++) {
		char *app, *eq;
		const char *v[3];

		if (serving_said(r, now.v[i]))
			continue;
		app = xstrdup(now.v[i]);
		eq = strrchr(app, '=');
		*eq = '\0';
		v[0] = lk->host_name(r->cl);
		v[1] = app;
		v[2] = eq[1] == '1' ? "true" : "false";
		lk->query(r->cl, "INSERT INTO berth_serving (host, app, "
			      "serving) VALUES ($1, $2, $3::boolean) "
			      "ON CONFLICT (host, app) DO UPDATE SET "
			      "serving = EXCLUDED.serving", 3, v, NULL, NULL);
		free(app);
	}
	strv_release(&r->serving);
	r->serving = now;
}

void croute_tick(struct cluster_route *r)
{
	char down[16];
	const char *v[2] = { NULL, down };

	if (!r || !lk->is_ready(r->cl))
		return;
	if (r->listening)
		write_serving(r);
	if (!r->group || r->querying)
		return;
	v[0] = lk->host_name(r->cl);
	snprintf(down, sizeof(down), "%d", CLUSTER_DOWN_AFTER_S);
	r->querying = 1;
	lk->query(r->cl,
		      "SELECT x.app, h.name, h.address, h.route_port "
		      "FROM berth_host_apps x "
		      "JOIN berth_hosts h ON h.name = x.host "
		      "JOIN berth_apps a ON a.name = x.app "
		      "WHERE h.name <> $1 AND h.route_port > 0 "
		      "AND NOT h.removing AND a.grp = ANY (h.groups) "
		      "AND h.heartbeat > now() - make_interval(secs => $2::int) "
		      "AND NOT a.stopped AND x.status IN ('live', 'rolled back') "
		      "AND EXISTS (SELECT 1 FROM berth_serving s WHERE "
		      " s.host = h.name AND s.app = x.app AND s.serving) "
		      "ORDER BY x.app, h.name COLLATE \"C\"", 2, v, on_rows, r);
}

/* This host's route listener, for the others. */
void croute_ready(struct cluster_route *r, struct cluster *cl)
{
	char port[16];
	const char *v[2] = { lk->host_name(cl), port };

	snprintf(port, sizeof(port), "%d", r->listening ?
		 r->e->cfg->route_port : 0);
	lk->query(cl, "UPDATE berth_hosts SET route_port = $2::int "
		      "WHERE name = $1", 2, v, NULL, NULL);
	/* written again: the table may have lost what this host said */
	strv_release(&r->serving);
	croute_tick(r);
}

struct cluster_route *croute_new(struct cluster *cl, struct engine *e,
				 const struct cluster_link *link)
{
	struct cluster_route *r = xcalloc(1, sizeof(*r));
	char *listen = nginx_route_listen(e->cfg);

	lk = link;
	r->cl = cl;
	r->e = e;
	r->listening = listen && e->nginx;
	free(listen);
	r->group = e->cfg->route && !strcmp(e->cfg->route, "group");
	if (r->group) {
		e->route_remote = route_remote;
		e->route_remote_arg = r;
	}
	return r;
}

void croute_lost(struct cluster_route *r)
{
	if (r)
		r->querying = 0;
}

void croute_free(struct cluster_route *r)
{
	if (!r)
		return;
	if (r->e->route_remote_arg == r) {
		r->e->route_remote = NULL;
		r->e->route_remote_arg = NULL;
	}
	while (r->apps) {
		struct croute_app *x = r->apps;

		r->apps = x->next;
		capp_free(x);
	}
	strv_release(&r->serving);
	free(r);
}
