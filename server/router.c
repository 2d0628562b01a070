/*
 * router: see router.h.  The Lua side is server/router.lua; the design,
 * and what was measured, is in docs/nginx.md.
 */
#include "router.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>

#include "log.h"
#include "loop.h"
#include "routerlog.h"
#include "util.h"
#include "banned.h"

#define ROUTER_FILE_MAX (64 * 1024 * 1024)
#define ROUTER_RESP_MAX (64 * 1024)
#define ROUTER_HOST_MAX 253
#define ROUTER_PROC_MAX 47
#define ROUTER_DRAIN_POLL_MS 20
#define ROUTER_RETRY_DEFAULT 5
#define ROUTER_LOG_READ_MS 100
#define ROUTER_LOG_CHUNK (64 * 1024)
#define ROUTER_LOG_BATCH 64
#define ROUTER_MAX_PORTS 8192
#define ROUTER_RESYNC_MS 1000

struct rapp {
	char *name;
	struct strv hosts;	/* lower case; [0] is NAME.DOMAIN */
	char *route;		/* "NAME KIND ...", as nginx stores it */
	char *sroute;		/* "NAME static REL ROOT": the static folder
				 * beside the route, or NULL */
	struct strv shosts;	/* the hosts (of hosts) that take sroute */
	int live_release;	/* release of a live route, else -1 */
	int has_prev;		/* a router_switch() left something to revert to */
	struct strv prev_hosts;
	char *prev_route;
	char *prev_sroute;
	struct strv prev_shosts;
	int prev_release;
	int stale;		/* loaded from the old file, not set since */
};

/*
 * A port a live route led to: whose lines of nginx's access_log it
 * names, and how many of them were read (a drain's finished count).
 * Kept until router_forget() of its release, or the app's removal.
 */
struct rport {
	char *app;
	int release;
	int port;
	char proc[ROUTER_PROC_MAX + 1];
	long lines;
	/* the millisecond after the last switch away from its release
	 * (CLOCK_REALTIME, 0: none), and how many lines read since ended
	 * before it: requests that were not in flight at the switch */
	int64_t cut_ms;
	long early;
};

struct router {
	char *table_path;
	char *ctl;
	char *probe;
	char *domain;
	struct rapp **apps;	/* sorted by name */
	size_t napps;
	size_t alloc;
	uint64_t version;
	int synced;
	long worker_uid;
	struct buf resp;	/* the body of the last answer */
	/* requests to nginx: the one in flight, then the queue */
	struct loop *loop;	/* NULL: each is sent at once */
	struct rq *cur;
	struct rq *q_head;
	uint64_t kick_timer;
	uint64_t resync_timer;
	int kicking;
	int last_rc;		/* of the last change sent: 0 or -1 */
	char *last_err;		/* why, when -1 */
	struct rq *rc_of;	/* queue_add() without a loop: its request */
	int rc;			/* and how it ended */
	uint64_t wait_ids;
	int warned;		/* said that nginx is out of sync */
	/* own mode: nginx's access_log of the public listeners */
	char *access_log;
	int log_fd;
	dev_t log_dev;
	ino_t log_ino;
	off_t log_off;		/* read up to here (whole lines) */
	off_t log_freed;	/* punched up to here */
	int log_nopunch;	/* the filesystem cannot punch holes */
	struct buf log_in;	/* an unfinished line */
	struct loop *log_loop;
	uint64_t log_timer;
	routerlog_fn log_fn;
	void *log_arg;
	struct rport *ports;	/* oldest first */
	size_t nports;
	size_t aports;
	unsigned long log_unknown;	/* lines of no known port */
	unsigned long log_bad;		/* lines that did not parse */
	unsigned long long nginx_boot;	/* when nginx's counts began */
};

struct router_drain {
	struct router *r;
	struct rq *rq;		/* its count asked, not answered yet */
	struct loop *loop;
	char *app;
	int release;
	long base_done;
	int64_t t0;
	int64_t deadline;
	uint64_t timer;
	router_drain_fn fn;
	void *arg;
};

/* --- names ------------------------------------------------------- */

/*
 * A host as the table keeps it: lower case labels of [a-z0-9_-], 1-63
 * characters each, at most 253 in all, optionally after "*." (a
 * wildcard).  No trailing dot, no port.
 */
static int host_norm(const char *h, char *out)
{
	size_t i = 0, n = strlen(h), label = 0;

	if (n == 0 || n > ROUTER_HOST_MAX)
		goto bad;
	if (n > 2 && h[0] == '*' && h[1] == '.') {
		out[0] = '*';
		out[1] = '.';
		i = 2;
	}
	for (; i < n; i++) {
		unsigned char c = (unsigned char)h[i];

		if (c == '.') {
			if (label == 0)
				goto bad;
			label = 0;
			out[i] = '.';
			continue;
		}
		if (!isalnum(c) && c != '-' && c != '_')
			goto bad;
		if (++label > 63)
			goto bad;
		out[i] = (char)tolower(c);
	}
	if (label == 0)
		goto bad;
	out[n] = '\0';
	return 0;
bad:
	error_set("invalid host '%s'", h);
	return ERR_INVALID;
}

static int proc_valid(const char *p)
{
	size_t i, n = p ? strlen(p) : 0;

	if (n == 0 || n > ROUTER_PROC_MAX)
		return 0;
	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)p[i];

		if (!isalnum(c) && c != '.' && c != '_' && c != '-')
			return 0;
	}
	return 1;
}

/* A folder nginx serves: absolute, no "..", nothing that ends a word. */
static int root_valid(const char *p)
{
	size_t i, n = p ? strlen(p) : 0;

	if (n < 1 || n >= PATH_MAX || p[0] != '/')
		return 0;
	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)p[i];

		if (c <= 0x20 || c == 0x7f)
			return 0;
	}
	return strstr(p, "/../") == NULL && !(n >= 3 &&
	       !strcmp(p + n - 3, "/.."));
}

static int name_check(const char *app)
{
	if (!app || !app_name_valid(app)) {
		error_set("invalid app name '%s'", app ? app : "");
		return ERR_INVALID;
	}
	return 0;
}

static int render_peers(struct buf *b, const struct route_peer *peers,
			size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		const struct route_peer *p = &peers[i];

		if (!proc_valid(p->proc)) {
			error_set("invalid process name '%s'",
				  p->proc ? p->proc : "");
			return ERR_INVALID;
		}
		if (p->port <= 0 || p->port > 65535) {
			error_set("invalid port %d", p->port);
			return ERR_INVALID;
		}
		buf_addf(b, " %s:%d", p->proc, p->port);
	}
	return 0;
}

static int render_remote(struct buf *b, const struct route_remote *rm,
			 size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		struct in_addr in;

		if (!proc_valid(rm[i].host)) {
			error_set("invalid host name '%s'",
				  rm[i].host ? rm[i].host : "");
			return ERR_INVALID;
		}
		if (!rm[i].addr || inet_pton(AF_INET, rm[i].addr, &in) != 1) {
			error_set("invalid host address '%s' (an IPv4 address)",
				  rm[i].addr ? rm[i].addr : "");
			return ERR_INVALID;
		}
		if (rm[i].port <= 0 || rm[i].port > 65535) {
			error_set("invalid port %d", rm[i].port);
			return ERR_INVALID;
		}
		buf_addf(b, " %s@%s:%d", rm[i].host, rm[i].addr, rm[i].port);
	}
	return 0;
}

/* The route's text ("NAME KIND ..."), or ERR_INVALID. */
static int route_render(const char *app, const struct route *rt,
			char **out, int *live_release)
{
	struct buf b = BUF_INIT;
	int retry = rt->retry_after ? rt->retry_after : ROUTER_RETRY_DEFAULT;

	*out = NULL;
	*live_release = -1;
	buf_addf(&b, "%s ", app);
	switch (rt->kind) {
	case ROUTE_LIVE:
		if (rt->release < 0 || rt->npeers > ROUTER_MAX_PEERS ||
		    rt->nremote > ROUTER_MAX_PEERS) {
			error_set("invalid route for '%s'", app);
			goto bad;
		}
		if (rt->npeers == 0 && rt->nremote == 0) {
			buf_addstr(&b, "noweb");
			break;
		}
		buf_addf(&b, "live %d", rt->release);
		if (render_peers(&b, rt->peers, rt->npeers) < 0 ||
		    render_remote(&b, rt->remote, rt->nremote) < 0)
			goto bad;
		if (rt->nfallback) {
			if (rt->fallback_release < 0 ||
			    rt->fallback_release == rt->release ||
			    rt->nfallback > ROUTER_MAX_PEERS) {
				error_set("invalid fallback for '%s'", app);
				goto bad;
			}
			buf_addf(&b, " fallback %d", rt->fallback_release);
			if (render_peers(&b, rt->fallback, rt->nfallback) < 0)
				goto bad;
		}
		*live_release = rt->release;
		break;
	case ROUTE_STATIC:
		if (rt->release < 0 || !root_valid(rt->root)) {
			error_set("invalid static root '%s'",
				  rt->root ? rt->root : "");
			goto bad;
		}
		buf_addf(&b, "static %d %s", rt->release, rt->root);
		break;
	case ROUTE_STOPPED:
		buf_addstr(&b, "stopped");
		break;
	case ROUTE_NO_WEB:
		buf_addstr(&b, "noweb");
		break;
	case ROUTE_MAINTENANCE:
		buf_addstr(&b, "maintenance");
		break;
	case ROUTE_CRASHING:
	case ROUTE_STARTING:
		if (retry < 1 || retry > 3600) {
			error_set("invalid Retry-After %d", retry);
			goto bad;
		}
		buf_addf(&b, "%s %d", rt->kind == ROUTE_CRASHING ?
			 "crashing" : "starting", retry);
		break;
	default:
		error_set("invalid route for '%s'", app);
		goto bad;
	}
	*out = buf_detach(&b);
	return 0;
bad:
	buf_release(&b);
	return ERR_INVALID;
}

/*
 * The static folder beside a live route ("NAME static REL ROOT"), or
 * NULL when rt has none or its kind serves the same page on every host.
 */
static int sroute_render(const char *app, const struct route *rt,
			 char **out)
{
	*out = NULL;
	if (!rt->static_root || !rt->nstatic_hosts)
		return 0;
	if (rt->kind != ROUTE_LIVE && rt->kind != ROUTE_NO_WEB &&
	    rt->kind != ROUTE_CRASHING)
		return 0;
	if (rt->release < 0 || !root_valid(rt->static_root)) {
		error_set("invalid static root '%s'", rt->static_root);
		return ERR_INVALID;
	}
	*out = xasprintf("%s static %d %s", app, rt->release, rt->static_root);
	return 0;
}

/* --- the table in memory ------------------------------------------ */

static size_t app_pos(const struct router *r, const char *name, int *found)
{
	size_t lo = 0, hi = r->napps;

	*found = 0;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = strcmp(r->apps[mid]->name, name);

		if (c == 0) {
			*found = 1;
			return mid;
		}
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

static struct rapp *app_get(const struct router *r, const char *name)
{
	int found;
	size_t i = app_pos(r, name, &found);

	return found ? r->apps[i] : NULL;
}

static int strv_has(const struct strv *sv, const char *s)
{
	size_t i;

	for (i = 0; i < sv->n; i++)
		if (!strcmp(sv->v[i], s))
			return 1;
	return 0;
}

static void rapp_free(struct rapp *a)
{
	if (!a)
		return;
	free(a->name);
	strv_release(&a->hosts);
	free(a->route);
	free(a->sroute);
	strv_release(&a->shosts);
	strv_release(&a->prev_hosts);
	free(a->prev_route);
	free(a->prev_sroute);
	strv_release(&a->prev_shosts);
	free(a);
}

static struct rapp *rapp_dup(const struct rapp *a)
{
	struct rapp *c = xcalloc(1, sizeof(*c));

	c->name = xstrdup(a->name);
	strv_copy(&c->hosts, &a->hosts);
	c->route = a->route ? xstrdup(a->route) : NULL;
	c->sroute = a->sroute ? xstrdup(a->sroute) : NULL;
	strv_copy(&c->shosts, &a->shosts);
	c->live_release = a->live_release;
	c->has_prev = a->has_prev;
	strv_copy(&c->prev_hosts, &a->prev_hosts);
	c->prev_route = a->prev_route ? xstrdup(a->prev_route) : NULL;
	c->prev_sroute = a->prev_sroute ? xstrdup(a->prev_sroute) : NULL;
	strv_copy(&c->prev_shosts, &a->prev_shosts);
	c->prev_release = a->prev_release;
	c->stale = a->stale;
	return c;
}

/* --- the ports of live routes, for nginx's access_log -------------- */

/* 1 if app's route (or the one kept for a revert) leads to p. */
static int port_routed(const struct router *r, const struct rport *p)
{
	const struct rapp *a = app_get(r, p->app);
	const char *routes[2];
	char pat[32];
	size_t i;

	if (!a)
		return 0;
	routes[0] = a->route;
	routes[1] = a->prev_route;
	snprintf(pat, sizeof(pat), ":%d", p->port);
	for (i = 0; i < 2; i++) {
		const char *m = routes[i];

		while (m && (m = strstr(m, pat))) {
			m += strlen(pat);
			if (*m == ' ' || *m == '\0')
				return 1;
		}
	}
	return 0;
}

static void port_note(struct router *r, const char *app, int release,
		      const char *proc, size_t plen, int port)
{
	struct rport *p;
	size_t i;

	for (i = 0; i < r->nports; i++) {
		p = &r->ports[i];
		if (p->port == port && p->release == release &&
		    !strcmp(p->app, app)) {
			/* another process of the release took the port */
			memcpy(p->proc, proc, plen);
			p->proc[plen] = '\0';
			return;
		}
	}
	if (r->nports == ROUTER_MAX_PORTS) {
		/* bounded: the oldest no route leads to goes (a release
		 * never forgotten), else the oldest */
		size_t k;

		for (k = 0; k < r->nports - 1; k++)
			if (!port_routed(r, &r->ports[k]))
				break;
		free(r->ports[k].app);
		memmove(r->ports + k, r->ports + k + 1,
			(r->nports - k - 1) * sizeof(*r->ports));
		r->nports--;
	}
	if (r->nports == r->aports) {
		r->aports = r->aports ? 2 * r->aports : 16;
		r->ports = xrealloc(r->ports, r->aports * sizeof(*r->ports));
	}
	p = &r->ports[r->nports++];
	memset(p, 0, sizeof(*p));
	p->app = xstrdup(app);
	p->release = release;
	p->port = port;
	memcpy(p->proc, proc, plen);
	p->proc[plen] = '\0';
}

/*
 * The ports of a route's text, "APP live REL PROC:PORT... [fallback REL
 * PROC:PORT...]" (as route_render() wrote it, so well formed).
 */
static void ports_note(struct router *r, const char *route)
{
	char app[APP_NAME_MAX + 1];
	const char *p;
	char *end;
	int rel = -1, n = 0;

	if (!r->access_log || !route ||
	    sscanf(route, "%63s live %d%n", app, &rel, &n) != 2)
		return;
	p = route + n;
	while (*p == ' ')
		p++;
	while (*p) {
		size_t wl = strcspn(p, " ");
		const char *colon = memchr(p, ':', wl);

		if (wl == 8 && !strncmp(p, "fallback", 8)) {
			p += wl;
			while (*p == ' ')
				p++;
			rel = (int)strtol(p, &end, 10);
			p = end;
		} else if (colon && (size_t)(colon - p) <= ROUTER_PROC_MAX) {
			port_note(r, app, rel, p, (size_t)(colon - p),
				  (int)strtol(colon + 1, NULL, 10));
			p += wl;
		} else {
			p += wl;
		}
		while (*p == ' ')
			p++;
	}
}

/* Drop the ports of app (release -1: of every release). */
static void ports_drop(struct router *r, const char *app, int release)
{
	size_t i = 0;

	while (i < r->nports) {
		struct rport *p = &r->ports[i];

		if (!strcmp(p->app, app) &&
		    (release < 0 || p->release == release)) {
			free(p->app);
			memmove(p, p + 1,
				(r->nports - i - 1) * sizeof(*p));
			r->nports--;
			continue;
		}
		i++;
	}
}

/* A release's lines read, and (*early) those of them read after its
 * last switch that ended before it. */
static long ports_lines(const struct router *r, const char *app,
			int release, long *early)
{
	long n = 0;
	size_t i;

	*early = 0;
	for (i = 0; i < r->nports; i++)
		if (r->ports[i].release == release &&
		    !strcmp(r->ports[i].app, app)) {
			n += r->ports[i].lines;
			*early += r->ports[i].early;
		}
	return n;
}

/* The wall clock, as nginx's $msec: ms since the epoch. */
static int64_t wall_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* A switch away from a release at cut_ms (wall clock): its lines read
 * from now on that ended before are of requests not in flight then. */
static void ports_cut(struct router *r, const char *app, int release,
		      int64_t cut_ms)
{
	size_t i;

	for (i = 0; i < r->nports; i++)
		if (r->ports[i].release == release &&
		    !strcmp(r->ports[i].app, app)) {
			r->ports[i].cut_ms = cut_ms;
			r->ports[i].early = 0;
		}
}

/* 1 if app a answers for host (exactly, or by one of its wildcards). */
static int app_has_host(const struct rapp *a, const char *host, size_t len)
{
	size_t i;

	for (i = 0; i < a->hosts.n; i++) {
		const char *h = a->hosts.v[i];
		size_t hl = strlen(h);

		if (hl == len && !memcmp(h, host, len))
			return 1;
		/* "*.example.com" takes "x.example.com" */
		if (h[0] == '*' && len > hl - 1 &&
		    !memcmp(host + len - (hl - 1), h + 1, hl - 1))
			return 1;
	}
	return 0;
}

/*
 * Whose line is it: the newest port entry with its upstream port whose
 * app answers for its host (a port freed by one app's stopped release
 * and taken by another's process never carries one app's lines into the
 * other's log).  NULL if none.
 */
static struct rport *port_whose(const struct router *r,
				const struct routerlog_access *a)
{
	char host[ROUTER_HOST_MAX + 1];
	size_t i, hl;

	if (a->port <= 0 || a->host_len > ROUTER_HOST_MAX)
		return NULL;
	/* nginx's $host is lower case already; be sure */
	for (hl = 0; hl < a->host_len; hl++)
		host[hl] = (char)tolower((unsigned char)a->host[hl]);
	host[hl] = '\0';
	for (i = r->nports; i-- > 0;) {
		struct rport *p = &r->ports[i];
		const struct rapp *ap;

		if (p->port != a->port)
			continue;
		ap = app_get(r, p->app);
		if (ap && app_has_host(ap, host, hl))
			return p;
	}
	return NULL;
}

static void app_insert(struct router *r, struct rapp *a)
{
	int found;
	size_t i = app_pos(r, a->name, &found);

	ports_note(r, a->route);
	if (found) {
		rapp_free(r->apps[i]);
		r->apps[i] = a;
		return;
	}
	if (r->napps == r->alloc) {
		r->alloc = r->alloc ? 2 * r->alloc : 16;
		r->apps = xrealloc(r->apps, r->alloc * sizeof(*r->apps));
	}
	memmove(r->apps + i + 1, r->apps + i,
		(r->napps - i) * sizeof(*r->apps));
	r->apps[i] = a;
	r->napps++;
}

static void app_delete(struct router *r, const char *name)
{
	int found;
	size_t i = app_pos(r, name, &found);

	if (!found)
		return;
	rapp_free(r->apps[i]);
	memmove(r->apps + i, r->apps + i + 1,
		(r->napps - i - 1) * sizeof(*r->apps));
	r->napps--;
}

/* The app owning host, other than 'except', or NULL. */
static const struct rapp *host_owner(const struct router *r,
				     const char *host, const char *except)
{
	size_t i;

	for (i = 0; i < r->napps; i++) {
		const struct rapp *a = r->apps[i];

		if (except && !strcmp(a->name, except))
			continue;
		if (strv_has(&a->hosts, host))
			return a;
	}
	return NULL;
}

/*
 * The full host list of app: APP.DOMAIN first, then hosts, normalised,
 * without duplicates; each free or app's own.
 */
static int hosts_build(const struct router *r, const char *app,
		       char *const *hosts, size_t nhosts, struct strv *out)
{
	char h[ROUTER_HOST_MAX + 1];
	size_t i;
	int ret;

	if ((ret = name_check(app)) < 0)
		return ret;
	if (nhosts > ROUTER_MAX_HOSTS) {
		error_set("too many hosts for '%s'", app);
		return ERR_INVALID;
	}
	for (i = 0; i <= nhosts; i++) {
		const struct rapp *owner;

		if (i == 0) {
			char *def = xasprintf("%s.%s", app, r->domain);

			ret = host_norm(def, h);
			free(def);
		} else {
			ret = host_norm(hosts[i - 1] ? hosts[i - 1] : "", h);
		}
		if (ret < 0)
			goto fail;
		owner = host_owner(r, h, app);
		if (owner) {
			error_set("host '%s' belongs to app '%s'", h,
				  owner->name);
			ret = ERR_EXISTS;
			goto fail;
		}
		if (!strv_has(out, h))
			strv_push(out, h);
	}
	return 0;
fail:
	strv_release(out);
	return ret;
}

/* --- text: the file and the changes ------------------------------- */

/* "static APP REL ROOT" from sroute "APP static REL ROOT" */
static void static_line(struct buf *b, const struct rapp *a)
{
	buf_addf(b, "static %s%s\n", a->name,
		 a->sroute + strlen(a->name) + strlen(" static"));
}

static void host_line(struct buf *b, const struct rapp *a, const char *host)
{
	buf_addf(b, "host %s %s%s\n", host, a->name,
		 strv_has(&a->shosts, host) ? " static" : "");
}

static void render_app(struct buf *b, const struct rapp *a)
{
	size_t i;

	buf_addf(b, "route %s\n", a->route);
	if (a->sroute)
		static_line(b, a);
	for (i = 0; i < a->hosts.n; i++)
		host_line(b, a, a->hosts.v[i]);
}

void router_render(const struct router *r, struct buf *out)
{
	size_t i;

	buf_addstr(out, "# berth routing table: written by the engine, "
		   "loaded by nginx at start\n");
	buf_addf(out, "version %llu\n", (unsigned long long)r->version);
	for (i = 0; i < r->napps; i++)
		render_app(out, r->apps[i]);
}

/* What changes from app 'was' (NULL: new) to 'now' (NULL: removed). */
static void render_delta(struct buf *b, const struct rapp *was,
			 const struct rapp *now)
{
	size_t i;

	if (now) {
		const char *h;

		if (!was || strcmp(was->route, now->route))
			buf_addf(b, "route %s\n", now->route);
		if (now->sroute && (!was || !was->sroute ||
				    strcmp(was->sroute, now->sroute)))
			static_line(b, now);
		for (i = 0; i < now->hosts.n; i++) {
			h = now->hosts.v[i];
			if (!was || !strv_has(&was->hosts, h) ||
			    strv_has(&was->shosts, h) !=
			    strv_has(&now->shosts, h))
				host_line(b, now, h);
		}
	}
	if (was) {
		for (i = 0; i < was->hosts.n; i++)
			if (!now || !strv_has(&now->hosts, was->hosts.v[i]))
				buf_addf(b, "unhost %s\n", was->hosts.v[i]);
		/* after the hosts: none takes the folder any more */
		if (was->sroute && (!now || !now->sroute))
			buf_addf(b, "unstatic %s\n", was->name);
	}
	if (was && !now)
		buf_addf(b, "unroute %s\npurge %s\n", was->name, was->name);
}

/*
 * The file nginx loads at start.  No fsync: after a crash of the host
 * the engine writes it again before nginx starts.
 */
static int write_table(struct router *r)
{
	struct buf b = BUF_INIT;
	char *tmp = xasprintf("%s.new", r->table_path);
	int fd = -1, ret = -1;

	router_render(r, &b);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0) {
		error_setsys("cannot create '%s'", tmp);
		goto out;
	}
	if (write_all(fd, b.data, b.len) < 0) {
		error_setsys("cannot write '%s'", tmp);
		goto out;
	}
	if (close(fd) < 0) {
		fd = -1;
		error_setsys("cannot write '%s'", tmp);
		goto out;
	}
	fd = -1;
	if (rename(tmp, r->table_path) < 0) {
		error_setsys("cannot rename '%s'", tmp);
		goto out;
	}
	ret = 0;
out:
	if (fd >= 0)
		close(fd);
	if (ret < 0)
		unlink(tmp);
	free(tmp);
	buf_release(&b);
	return ret;
}

/* --- talking to nginx ---------------------------------------------- */

/*
 * The control listener gets one HTTP/1.0 request per connection, made
 * without blocking: the queue (struct rq, oldest first) sends one at a
 * time, in the order the engine made them, each within
 * ROUTER_TIMEOUT_MS of being sent.  With a loop (router_set_loop()) the
 * loop drives it; without one, the call that queues a request drives the
 * queue to its end with poll().
 */
enum { NGINX_DOWN = 1 };

enum rq_kind {
	RQ_TABLE,	/* a change: "version N" and its delta, or the whole
			 * table (full, or when nginx is out of sync) */
	RQ_COUNTS,	/* GET /counts */
	RQ_STATUS,	/* GET /status */
	RQ_FORGET,	/* a release's counts dropped */
	RQ_BARRIER,	/* nothing sent: its waiters learn that what came
			 * before was answered */
	RQ_POST,	/* router_post(): body to path, for its waiters */
};

enum rq_phase { RQ_IDLE, RQ_CONNECT, RQ_RETRY, RQ_WRITE, RQ_READ };

struct rwaiter {
	struct rwaiter *next;
	uint64_t id;
	router_done_fn fn;
	void *arg;
};

struct rq {
	struct rq *next;
	enum rq_kind kind;
	struct buf body;	/* TABLE: the delta; FORGET: its line */
	char *path;		/* COUNTS, POST */
	int status;		/* the HTTP status nginx answered (0: none) */
	int full;		/* TABLE: send the whole table */
	uint64_t version;	/* TABLE: the version the change made */
	/* TABLE of a router_switch(): what it took traffic from */
	char *sw_app;
	struct router_switch sw;
	long sw_lines;		/* own mode: its lines read when it went out */
	struct rwaiter *waiters;
	struct rq *joined;	/* TABLE requests this one's text took in */
	/* internal requests: called when it ended (ctx NULL: cancelled) */
	void (*on_done)(struct router *r, struct rq *q, int rc);
	void *ctx;
	/* the connection */
	enum rq_phase phase;
	int fd;
	struct buf out;
	size_t out_off;
	struct buf in;
	int64_t deadline;
	int64_t sent_ms;	/* wall clock just before it was sent */
	uint64_t timer;		/* deadline, or the next connect try */
};

static void queue_kick(struct router *r);
static void req_finish(struct router *r, int rc);
static void log_read(struct router *r);
static void parse_was(const struct router *r, const char *app,
		      struct router_switch *sw);

static struct rq *rq_new(enum rq_kind kind)
{
	struct rq *q = xcalloc(1, sizeof(*q));

	q->kind = kind;
	q->fd = -1;
	buf_init(&q->body, 0);
	buf_init(&q->out, 0);
	buf_init(&q->in, ROUTER_RESP_MAX);
	return q;
}

static void rq_free(struct rq *q)
{
	while (q) {
		struct rq *next = q->joined;
		struct rwaiter *w = q->waiters;

		while (w) {
			struct rwaiter *wn = w->next;

			free(w);
			w = wn;
		}
		if (q->fd >= 0)
			close(q->fd);
		buf_release(&q->body);
		buf_release(&q->out);
		buf_release(&q->in);
		free(q->path);
		free(q->sw_app);
		free(q);
		q = next;
	}
}

static void queue_push(struct router *r, struct rq *q)
{
	struct rq **p = &r->q_head;

	while (*p)
		p = &(*p)->next;
	*p = q;
}

static uint64_t waiter_add(struct router *r, struct rq *q, router_done_fn fn,
			   void *arg)
{
	struct rwaiter *w, **p = &q->waiters;

	if (!fn)
		return 0;
	w = xcalloc(1, sizeof(*w));
	w->id = ++r->wait_ids;
	w->fn = fn;
	w->arg = arg;
	while (*p)
		p = &(*p)->next;
	*p = w;
	return w->id;
}

/* What the request says on the wire. */
static void req_render(struct router *r, struct rq *q)
{
	struct buf body = BUF_INIT;
	const char *method = "GET", *path = "/status";

	switch (q->kind) {
	case RQ_TABLE:
		method = "POST";
		if (q->full) {
			path = "/replace";
			router_render(r, &body);
		} else {
			path = "/update";
			buf_addf(&body, "version %llu\n",
				 (unsigned long long)q->version);
			buf_add(&body, q->body.data, q->body.len);
		}
		break;
	case RQ_FORGET:
		method = "POST";
		path = "/update";
		buf_add(&body, q->body.data, q->body.len);
		break;
	case RQ_POST:
		method = "POST";
		path = q->path;
		buf_add(&body, q->body.data, q->body.len);
		break;
	case RQ_COUNTS:
		path = q->path;
		break;
	case RQ_STATUS:
	case RQ_BARRIER:
		break;
	}
	buf_reset(&q->out);
	buf_addf(&q->out, "%s %s HTTP/1.0\r\nHost: berth\r\n", method, path);
	if (!strcmp(method, "POST"))
		buf_addf(&q->out, "Content-Length: %zu\r\n", body.len);
	buf_addstr(&q->out, "\r\n");
	buf_add(&q->out, body.data, body.len);
	q->out_off = 0;
	buf_release(&body);
}

/*
 * A change about to go out while nginx is out of sync goes as the whole
 * table, and takes in the changes queued behind it (the table has them):
 * they end with it.
 */
static void req_prepare_table(struct router *r, struct rq *q)
{
	struct rq **p = &q->next, **tail = &q->joined;
	int has_switch = q->sw_app != NULL;

	if (!r->synced)
		q->full = 1;
	if (q->full) {
		while (*p) {
			struct rq *t = *p;

			if (t->kind != RQ_TABLE) {
				p = &t->next;
				continue;
			}
			*p = t->next;
			t->next = NULL;
			has_switch |= t->sw_app != NULL;
			*tail = t;
			tail = &t->joined;
		}
		q->version = r->version;
	}
	/* a switch: the lines so far are of requests that ended before
	 * it (see router_counts()) */
	if (has_switch)
		log_read(r);
}

static int resp_parse(struct router *r, struct rq *q)
{
	const char *d = q->in.data, *body;
	int status = 0;

	buf_reset(&r->resp);
	if (sscanf(d, "HTTP/%*d.%*d %d", &status) != 1 ||
	    !(body = strstr(d, "\r\n\r\n")))
		return error_set("nginx's router answered no HTTP");
	q->status = status;
	body += 4;
	buf_add(&r->resp, body, q->in.len - (size_t)(body - d));
	if (status != 200) {
		size_t n = strcspn(r->resp.data, "\n");

		return error_set("nginx's router refused it (%d): %.*s",
				 status, (int)n, r->resp.data);
	}
	return 0;
}

/* Open the connection: 0 (under way), NGINX_DOWN, or -1. */
static int req_connect(struct router *r, struct rq *q)
{
	struct sockaddr_un sa;
	int fd;

	memset(&sa, 0, sizeof(sa));
	sa.sun_family = AF_UNIX;
	if (strlen(r->ctl) >= sizeof(sa.sun_path))
		return error_set("control socket path too long: '%s'", r->ctl);
	memcpy(sa.sun_path, r->ctl, strlen(r->ctl) + 1);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return error_setsys("cannot make a socket");
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0) {
		q->fd = fd;
		q->phase = RQ_WRITE;
		return 0;
	}
	if (errno == EINPROGRESS) {
		q->fd = fd;
		q->phase = RQ_CONNECT;
		return 0;
	}
	if (errno == EAGAIN || errno == EINTR) {
		/* its backlog is full (nginx is busy or stopped): again
		 * shortly, until the deadline */
		close(fd);
		q->phase = RQ_RETRY;
		return 0;
	}
	close(fd);
	if (errno == ENOENT || errno == ECONNREFUSED)
		return NGINX_DOWN;
	return error_setsys("cannot reach nginx's router on '%s'", r->ctl);
}

/*
 * Move the request on after events on its fd: 0 while under way,
 * else 1 with *rc (0, NGINX_DOWN, -1 with the error set).
 */
static int req_io(struct router *r, struct rq *q, int *rc)
{
	int err = 0;
	socklen_t el = sizeof(err);

	if (q->phase == RQ_CONNECT) {
		if (getsockopt(q->fd, SOL_SOCKET, SO_ERROR, &err, &el) < 0)
			err = errno;
		if (err == EINPROGRESS || err == EAGAIN)
			return 0;
		if (err) {
			errno = err;
			*rc = error_setsys("cannot reach nginx's router");
			return 1;
		}
		q->phase = RQ_WRITE;
	}
	while (q->phase == RQ_WRITE) {
		/* no SIGPIPE if nginx closed first */
		ssize_t n = send(q->fd, q->out.data + q->out_off,
				 q->out.len - q->out_off, MSG_NOSIGNAL);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			return 0;
		if (n < 0) {
			*rc = error_setsys("cannot send to nginx's router");
			return 1;
		}
		q->out_off += (size_t)n;
		if (q->out_off == q->out.len)
			q->phase = RQ_READ;
	}
	for (;;) {
		char chunk[4096];
		ssize_t n = read(q->fd, chunk, sizeof(chunk));

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			return 0;
		if (n < 0) {
			*rc = error_setsys("nginx's router does not answer");
			return 1;
		}
		if (n == 0)
			break;
		if (buf_add(&q->in, chunk, (size_t)n) < 0) {
			*rc = error_set("nginx's router answered too much");
			return 1;
		}
	}
	*rc = resp_parse(r, q);
	return 1;
}

/* Start the head of the queue: 1 if it ended at once (*rc). */
static int req_start(struct router *r, struct rq *q, int *rc)
{
	if (q->kind == RQ_BARRIER) {
		*rc = r->last_rc;
		return 1;
	}
	if (q->kind == RQ_TABLE)
		req_prepare_table(r, q);
	req_render(r, q);
	q->deadline = now_ms() + ROUTER_TIMEOUT_MS;
	q->sent_ms = wall_ms();
	if (q->kind == RQ_TABLE && r->access_log) {
		struct rq *t;
		long early;

		/*
		 * A switch: the lines read so far (req_prepare_table() read
		 * them) are its release's finished; those read from now on
		 * of requests that ended before this moment were not in
		 * flight at the switch either: their end time ($msec) tells.
		 * It has ms resolution, and nginx's clock is cached (a time
		 * it logs is never later than the real one): a line of that
		 * very millisecond may be of a request that ended before it,
		 * so only those from the next one on count as finished after.
		 */
		for (t = q; t; t = t->joined)
			if (t->sw_app && t->sw.had_live) {
				t->sw_lines = ports_lines(r, t->sw_app,
							  t->sw.release,
							  &early);
				ports_cut(r, t->sw_app, t->sw.release,
					  q->sent_ms + 1);
			}
	}
	*rc = req_connect(r, q);
	return *rc != 0;
}

static int req_timed_out(const struct rq *q)
{
	(void)q;
	return error_set("nginx's router does not answer (%d ms)",
			 ROUTER_TIMEOUT_MS);
}

/* Without a loop: drive the request in flight to its end. */
static int req_wait(struct router *r, struct rq *q)
{
	int rc = 0;

	for (;;) {
		struct pollfd pfd;
		int64_t left = q->deadline - now_ms();

		if (left <= 0)
			return req_timed_out(q);
		if (q->phase == RQ_RETRY) {
			poll(NULL, 0, left < 5 ? (int)left : 5);
			if ((rc = req_connect(r, q)) != 0)
				return rc;
			continue;
		}
		pfd.fd = q->fd;
		pfd.events = q->phase == RQ_READ ? POLLIN : POLLOUT;
		pfd.revents = 0;
		if (poll(&pfd, 1, (int)left) < 0 && errno != EINTR)
			return error_setsys("poll");
		if (req_io(r, q, &rc))
			return rc;
	}
}

/* Detach the request in flight from the loop. */
static void req_unwatch(struct router *r, struct rq *q)
{
	if (!r->loop)
		return;
	if (q->fd >= 0)
		loop_del_fd(r->loop, q->fd);
	loop_del_timer(r->loop, q->timer);
	q->timer = 0;
}

static void req_watch(struct router *r, struct rq *q);

static void on_req_fd(struct loop *l, int fd, unsigned events, void *arg)
{
	struct router *r = arg;
	struct rq *q = r->cur;
	int rc = 0;

	(void)l;
	(void)fd;
	(void)events;
	if (!q)
		return;
	if (req_io(r, q, &rc)) {
		req_finish(r, rc);
		return;
	}
	if (q->phase == RQ_READ)
		loop_mod_fd(r->loop, q->fd, LOOP_READ);
}

static void on_req_timer(struct loop *l, void *arg)
{
	struct router *r = arg;
	struct rq *q = r->cur;
	int rc;

	(void)l;
	if (!q)
		return;
	q->timer = 0;
	/* the deadline's timer (any phase but RQ_RETRY) */
	if (q->phase != RQ_RETRY || now_ms() >= q->deadline) {
		req_finish(r, req_timed_out(q));
		return;
	}
	/* RQ_RETRY: connect again */
	rc = req_connect(r, q);
	if (rc != 0) {
		req_finish(r, rc);
		return;
	}
	req_watch(r, q);
}

static void req_watch(struct router *r, struct rq *q)
{
	long left = (long)(q->deadline - now_ms());

	if (left < 0)
		left = 0;
	if (q->phase == RQ_RETRY) {
		q->timer = loop_add_timer(r->loop, left < 5 ? left : 5,
					  on_req_timer, r);
		return;
	}
	if (loop_add_fd(r->loop, q->fd, q->phase == RQ_READ ? LOOP_READ :
			LOOP_WRITE, on_req_fd, r) < 0) {
		req_finish(r, error_set("cannot watch nginx's router: %s",
					error_last()));
		return;
	}
	q->timer = loop_add_timer(r->loop, left, on_req_timer, r);
}

static void resync_tick(struct loop *l, void *arg);

/* What an answer to a change means for the table and its waiters. */
static void table_done(struct router *r, struct rq *q, int rc)
{
	struct router_done res;
	struct rq *t;
	const char *err = rc < 0 ? error_last() : NULL;
	char *msg = err ? xstrdup(err) : NULL;

	int was_synced = r->synced;

	if (rc == 0 && q->full) {
		r->synced = 1;
		if (r->warned)
			log_info("routing table: nginx has it again (version "
				 "%llu)", (unsigned long long)q->version);
		r->warned = 0;
	}
	if (rc != 0)
		r->synced = 0;
	r->last_rc = rc < 0 ? -1 : 0;
	free(r->last_err);
	r->last_err = msg ? xstrdup(msg) : NULL;
	if (rc < 0) {
		/* once, not at every retry while nginx hangs */
		if (was_synced || !r->warned)
			log_warnx("routing table: %s (nginx gets the whole "
				  "table again)", msg);
		r->warned = 1;
		if (r->loop && !r->resync_timer)
			r->resync_timer = loop_add_timer(r->loop,
							 ROUTER_RESYNC_MS,
							 resync_tick, r);
	}
	for (t = q; t; t = t->joined) {
		struct router_switch sw = t->sw;
		struct rwaiter *w;

		if (t->sw_app && sw.had_live && rc == 0) {
			parse_was(r, t->sw_app, &sw);
			if (r->access_log && sw.done >= 0) {
				/* own mode: nginx counts routed, the lines
				 * finished (read when it went out) */
				sw.done = t->sw_lines;
				sw.inflight -= sw.done;
				if (sw.inflight < 0)
					sw.inflight = 0;
			}
		}
		memset(&res, 0, sizeof(res));
		res.ok = rc >= 0;
		res.error = msg;
		res.sw = sw;
		/* a waiter may cancel others: take each off first */
		while ((w = t->waiters)) {
			t->waiters = w->next;
			w->fn(w->arg, &res);
			free(w);
		}
	}
	free(msg);
}

/* The request in flight ended: tell, then the next one. */
static void req_finish(struct router *r, int rc)
{
	struct rq *q = r->cur, *t;

	req_unwatch(r, q);
	if (q->fd >= 0)
		close(q->fd);
	q->fd = -1;
	r->cur = NULL;
	for (t = q; t; t = t->joined)
		if (t == r->rc_of) {
			r->rc = rc;
			r->rc_of = NULL;
		}
	if (q->kind == RQ_TABLE) {
		table_done(r, q, rc);
	} else if (q->kind == RQ_BARRIER) {
		struct router_done res;
		struct rwaiter *w;

		memset(&res, 0, sizeof(res));
		res.ok = rc >= 0;
		res.error = rc < 0 ? (r->last_err ? r->last_err :
				      "nginx has not taken every change") :
			    NULL;
		while ((w = q->waiters)) {
			q->waiters = w->next;
			w->fn(w->arg, &res);
			free(w);
		}
	} else if (q->kind == RQ_POST) {
		struct router_done res;
		struct rwaiter *w;
		char *msg = rc < 0 ? xstrdup(error_last()) : NULL;

		memset(&res, 0, sizeof(res));
		res.ok = rc >= 0;
		res.error = msg;
		res.status = q->status;
		res.answer = q->status ? r->resp.data : NULL;
		res.sw.release = -1;
		res.sw.done = -1;
		while ((w = q->waiters)) {
			q->waiters = w->next;
			w->fn(w->arg, &res);
			free(w);
		}
		free(msg);
	} else if (q->on_done) {
		q->on_done(r, q, rc);
	}
	rq_free(q);
	if (r->loop)
		error_clear();	/* nobody reads it: not the next caller's */
	queue_kick(r);
}

/* Send what is queued: from the loop, or now (no loop). */
static void queue_run(struct router *r)
{
	while (!r->cur && r->q_head) {
		struct rq *q = r->q_head;
		int rc = 0, was;

		r->q_head = q->next;
		q->next = NULL;
		r->cur = q;
		if (!req_start(r, q, &rc)) {
			if (r->loop) {
				req_watch(r, q);
				return;
			}
			rc = req_wait(r, q);
		}
		/* req_finish() kicks the queue: this loop sends the next
		 * one */
		was = r->kicking;
		r->kicking = 1;
		req_finish(r, rc);
		r->kicking = was;
	}
}

static void on_kick(struct loop *l, void *arg)
{
	struct router *r = arg;

	(void)l;
	r->kick_timer = 0;
	queue_run(r);
}

/* With a loop, the queue moves on from it (a caller never sees its own
 * callback run inside the call); without one, now. */
static void queue_kick(struct router *r)
{
	if (r->kicking)
		return;
	if (!r->loop) {
		queue_run(r);
		return;
	}
	if (!r->cur && r->q_head && !r->kick_timer)
		r->kick_timer = loop_add_timer(r->loop, 0, on_kick, r);
}

static void resync_tick(struct loop *l, void *arg)
{
	struct router *r = arg;
	struct rq *q;

	(void)l;
	r->resync_timer = 0;
	if (r->synced)
		return;
	for (q = r->q_head; q; q = q->next)
		if (q->kind == RQ_TABLE)
			return;		/* it goes as the whole table */
	q = rq_new(RQ_TABLE);
	q->full = 1;
	queue_push(r, q);
	queue_kick(r);
}

/* Queue a request; without a loop, sent at once: its rc, else 0. */
static int queue_add(struct router *r, struct rq *q)
{
	int had_loop = r->loop != NULL, saved_rc, rc;
	struct rq *saved_of;

	queue_push(r, q);
	if (had_loop) {
		queue_kick(r);
		return 0;
	}
	/* a callback may queue more meanwhile: its rc is its own */
	saved_of = r->rc_of;
	saved_rc = r->rc;
	r->rc_of = q;
	r->rc = 0;
	queue_run(r);
	rc = r->rc;
	r->rc_of = saved_of;
	r->rc = saved_rc;
	return rc;
}

/*
 * Make a change: a new version in the file, then the delta to nginx
 * (queued).  The request, or NULL (file not written, error set) if the
 * version could not be written: nothing was sent then.
 */
static struct rq *commit(struct router *r, const struct buf *delta)
{
	struct rq *q;

	r->version++;
	if (write_table(r) < 0)
		return NULL;
	q = rq_new(RQ_TABLE);
	q->version = r->version;
	buf_add(&q->body, delta->data, delta->len);
	return q;
}

/*
 * Send a change made by commit(): 0, or (without a loop) -1 if nginx did
 * not take it (error set).  The table keeps it: nginx gets the whole
 * table at the next change.
 */
static int send_change(struct router *r, struct rq *q)
{
	return queue_add(r, q) < 0 ? -1 : 0;
}

/* Put 'old' (NULL: no such app) back after commit() could not write. */
static void undo(struct router *r, const char *name, struct rapp *old)
{
	char *msg = xstrdup(error_last());

	if (old)
		app_insert(r, old);
	else
		app_delete(r, name);
	r->version++;
	if (write_table(r) < 0)
		log_warnx("routing table: %s", error_last());
	error_set("%s", msg);
	free(msg);
}

/* Replace app 'name' by 'now' (NULL: remove it): the table file now, the
 * request queued (*out, if not NULL, takes it unsent: the caller sends
 * it with send_change()). */
static int change_q(struct router *r, const char *name, struct rapp *now,
		    struct rq **out)
{
	struct rapp *cur = app_get(r, name);
	struct rapp *old = cur ? rapp_dup(cur) : NULL;
	struct buf delta = BUF_INIT;
	struct rq *q;

	if (out)
		*out = NULL;
	render_delta(&delta, old, now);
	if (now)
		app_insert(r, now);
	else
		app_delete(r, name);
	q = commit(r, &delta);
	buf_release(&delta);
	if (!q) {
		undo(r, name, old);
		return -1;
	}
	rapp_free(old);
	if (out) {
		*out = q;
		return 0;
	}
	return send_change(r, q);
}

static int change(struct router *r, const char *name, struct rapp *now)
{
	return change_q(r, name, now, NULL);
}

/* Send the whole table (POST /replace). */
int router_sync(struct router *r)
{
	struct rq *q = rq_new(RQ_TABLE);

	q->full = 1;
	return send_change(r, q);
}

void router_set_loop(struct router *r, struct loop *l)
{
	if (r->loop == l)
		return;
	if (r->loop) {
		loop_del_timer(r->loop, r->kick_timer);
		loop_del_timer(r->loop, r->resync_timer);
		r->kick_timer = r->resync_timer = 0;
		if (r->cur)
			req_unwatch(r, r->cur);
	}
	r->loop = l;
	if (l) {
		if (r->cur)
			req_watch(r, r->cur);
		queue_kick(r);
		return;
	}
	/* from now on, at once: what is queued first */
	if (r->cur)
		req_finish(r, req_wait(r, r->cur));
	queue_run(r);
}

uint64_t router_when_applied(struct router *r, router_done_fn fn, void *arg)
{
	struct rq *q = rq_new(RQ_BARRIER);
	uint64_t id = waiter_add(r, q, fn, arg);

	queue_add(r, q);
	return r->loop ? id : 0;
}

uint64_t router_post(struct router *r, const char *path, const char *body,
		     size_t len, router_done_fn fn, void *arg)
{
	struct rq *q = rq_new(RQ_POST);
	uint64_t id = waiter_add(r, q, fn, arg);

	q->path = xstrdup(path);
	buf_add(&q->body, body, len);
	queue_add(r, q);
	return r->loop ? id : 0;
}

static int waiters_drop(struct rwaiter **p, uint64_t id)
{
	for (; *p; p = &(*p)->next)
		if ((*p)->id == id) {
			struct rwaiter *w = *p;

			*p = w->next;
			free(w);
			return 1;
		}
	return 0;
}

void router_wait_cancel(struct router *r, uint64_t id)
{
	struct rq *q, *t;

	if (!id)
		return;
	for (t = r->cur; t; t = t->joined)
		if (waiters_drop(&t->waiters, id))
			return;
	for (q = r->q_head; q; q = q->next)
		for (t = q; t; t = t->joined)
			if (waiters_drop(&t->waiters, id))
				return;
}

size_t router_pending(const struct router *r)
{
	const struct rq *q;
	size_t n = r->cur ? 1 : 0;

	for (q = r->q_head; q; q = q->next)
		n++;
	return n;
}

/* --- nginx's access_log (own mode) ---------------------------------- */

#define ROUTER_LOG_LINE_CAP (64 * 1024)
#define ROUTER_LOG_READ_MAX (16 * 1024 * 1024)

/* Open the access_log, or again if nginx made a new one (removed). */
static void log_open(struct router *r)
{
	struct stat st;
	int fd;

	if (r->log_fd >= 0 && (stat(r->access_log, &st) < 0 ||
			       (st.st_dev == r->log_dev &&
				st.st_ino == r->log_ino)))
		return;
	/* replaced (a new nginx made it anew): the old one to its end first */
	if (r->log_fd >= 0 && fstat(r->log_fd, &st) == 0 &&
	    st.st_size > r->log_off + (off_t)r->log_in.len)
		return;
	/* read for writing: punching holes needs it */
	fd = open(r->access_log, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW,
		  0640);
	if (fd < 0 || fstat(fd, &st) < 0) {
		if (fd >= 0)
			close(fd);
		return;
	}
	/*
	 * A file nginx made anew is read from its start.  The one found at
	 * start is read from its end: its lines name ports of routes this
	 * engine never set (it drops such lines anyway), and what is left
	 * of it is holes (read as NULs) and lines a previous engine read.
	 * All of it is freed at the first read.
	 */
	r->log_off = r->log_fd < 0 ? st.st_size : 0;
	r->log_freed = 0;
	if (r->log_fd >= 0)
		close(r->log_fd);
	r->log_fd = fd;
	r->log_dev = st.st_dev;
	r->log_ino = st.st_ino;
	buf_reset(&r->log_in);
}

static void log_flush(struct router *r, struct buf *rec, size_t *nrec)
{
	struct routerlog_line lines[ROUTER_LOG_BATCH];
	struct buf out = BUF_INIT;
	unsigned long bad = 0;
	size_t n = 0;

	if (*nrec && r->log_fn) {
		routerlog_parse(rec->data, rec->len, lines, ROUTER_LOG_BATCH,
				&n, &bad, &out);
		r->log_bad += bad;
		if (n)
			r->log_fn(r->log_arg, lines, n);
	}
	buf_release(&out);
	buf_reset(rec);
	*nrec = 0;
}

/* One line of the access_log: counted for its release, and logged. */
static void log_line(struct router *r, const char *l, size_t len,
		     struct buf *rec, size_t *nrec)
{
	struct routerlog_access a;
	struct rport *p;

	/* the URI comes last: a longer line loses the end of it */
	if (routerlog_access_parse(l, len > ROUTERLOG_LINE_MAX ?
				   ROUTERLOG_LINE_MAX : len, &a) < 0) {
		r->log_bad++;
		return;
	}
	/* no port: the answer listener's (it logs it), or not routed */
	if (a.port == 0)
		return;
	p = port_whose(r, &a);
	if (!p) {
		r->log_unknown++;
		return;
	}
	p->lines++;
	if (a.end_ms < p->cut_ms)
		p->early++;
	if (!r->log_fn)
		return;
	routerlog_access_record(&a, p->app, p->proc, p->release, "", rec);
	if (++*nrec == ROUTER_LOG_BATCH)
		log_flush(r, rec, nrec);
}

/*
 * Read what nginx wrote since the last time (whole lines), then free
 * what was read: nginx appends, so the file needs no rotation and nginx
 * no signal.
 */
static void log_read(struct router *r)
{
	struct buf rec = BUF_INIT;
	size_t nrec = 0, total = 0;
	char *chunk;
	off_t freed_to;

	if (!r->access_log)
		return;
	log_open(r);
	if (r->log_fd < 0)
		return;
	chunk = xmalloc(ROUTER_LOG_CHUNK);
	while (total < ROUTER_LOG_READ_MAX) {
		ssize_t n = pread(r->log_fd, chunk, ROUTER_LOG_CHUNK,
				  r->log_off + (off_t)r->log_in.len);
		size_t used = 0;

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		total += (size_t)n;
		buf_add(&r->log_in, chunk, (size_t)n);
		for (;;) {
			const char *l = r->log_in.data + used;
			const char *nl = memchr(l, '\n', r->log_in.len - used);

			if (!nl)
				break;
			log_line(r, l, (size_t)(nl - l), &rec, &nrec);
			used += (size_t)(nl - l) + 1;
		}
		r->log_off += (off_t)used;
		buf_consume(&r->log_in, used);
		if (r->log_in.len > ROUTER_LOG_LINE_CAP) {
			/* no line is that long: not nginx's; skip it */
			r->log_bad++;
			r->log_off += (off_t)r->log_in.len;
			buf_reset(&r->log_in);
		}
	}
	log_flush(r, &rec, &nrec);
	buf_release(&rec);
	free(chunk);
	freed_to = r->log_off & ~(off_t)4095;
	if (!r->log_nopunch && freed_to > r->log_freed) {
		if (fallocate(r->log_fd, FALLOC_FL_PUNCH_HOLE |
			      FALLOC_FL_KEEP_SIZE, r->log_freed,
			      freed_to - r->log_freed) == 0) {
			r->log_freed = freed_to;
		} else if (errno == EOPNOTSUPP || errno == ENOSYS) {
			r->log_nopunch = 1;
			log_warnx("cannot free what was read of '%s': its "
				  "filesystem cannot punch holes",
				  r->access_log);
		}
	}
}

static void log_tick(struct loop *l, void *arg)
{
	struct router *r = arg;

	r->log_timer = 0;
	log_read(r);
	r->log_timer = loop_add_timer(l, ROUTER_LOG_READ_MS, log_tick, r);
}

void router_log_start(struct router *r, struct loop *l, routerlog_fn fn,
		      void *arg)
{
	router_log_stop(r);
	r->log_fn = fn;
	r->log_arg = arg;
	if (!r->access_log)
		return;
	r->log_loop = l;
	r->log_timer = loop_add_timer(l, ROUTER_LOG_READ_MS, log_tick, r);
}

void router_log_stop(struct router *r)
{
	if (r->log_timer)
		loop_del_timer(r->log_loop, r->log_timer);
	r->log_timer = 0;
	r->log_loop = NULL;
	r->log_fn = NULL;
	r->log_arg = NULL;
}

void router_log_read(struct router *r)
{
	log_read(r);
}

void router_log_stats(const struct router *r, unsigned long *bad,
		      unsigned long *unknown)
{
	*bad = r->log_bad;
	*unknown = r->log_unknown;
}

/* --- the interface ------------------------------------------------- */

/* An app from a line of an old table file: "route NAME KIND ...". */
static void load_route(struct router *r, const char *rest)
{
	char name[APP_NAME_MAX + 1], kind[16];
	struct rapp *a;
	char *def;
	char h[ROUTER_HOST_MAX + 1];

	if (sscanf(rest, "%63s %15s", name, kind) != 2 ||
	    !app_name_valid(name) || app_get(r, name))
		return;
	a = xcalloc(1, sizeof(*a));
	a->name = xstrdup(name);
	a->live_release = -1;
	a->stale = 1;
	/* its processes are gone with the engine that ran them */
	if (!strcmp(kind, "stopped") || !strcmp(kind, "maintenance"))
		a->route = xasprintf("%s %s", name, kind);
	else
		a->route = xasprintf("%s starting %d", name,
				     ROUTER_RETRY_DEFAULT);
	def = xasprintf("%s.%s", name, r->domain);
	if (host_norm(def, h) == 0 && !host_owner(r, h, NULL))
		strv_push(&a->hosts, h);
	free(def);
	app_insert(r, a);
}

static void load_host(struct router *r, const char *rest)
{
	char host[ROUTER_HOST_MAX + 2], name[APP_NAME_MAX + 1];
	char h[ROUTER_HOST_MAX + 1];
	struct rapp *a;

	if (sscanf(rest, "%254s %63s", host, name) != 2)
		return;
	a = app_get(r, name);
	if (!a || host_norm(host, h) < 0 || host_owner(r, h, NULL))
		return;
	strv_push(&a->hosts, h);
}

/* The old file, if any; lines that do not parse are skipped. */
static int load_table(struct router *r)
{
	struct buf b = BUF_INIT;
	char *line, *next;
	int rc = read_file(&b, r->table_path, ROUTER_FILE_MAX);

	if (rc == ERR_NOTFOUND) {
		error_clear();
		return 0;
	}
	if (rc < 0)
		return -1;
	for (line = b.data; line && *line; line = next) {
		next = strchr(line, '\n');
		if (next)
			*next++ = '\0';
		if (!strncmp(line, "version ", 8)) {
			long long v = strtoll(line + 8, NULL, 10);

			if (v > 0)
				r->version = (uint64_t)v;
		} else if (!strncmp(line, "route ", 6)) {
			load_route(r, line + 6);
		} else if (!strncmp(line, "host ", 5)) {
			load_host(r, line + 5);
		}
	}
	buf_release(&b);
	error_clear();
	return 0;
}

int router_init(struct router **out, const struct router_opts *o)
{
	struct router *r = xcalloc(1, sizeof(*r));
	char h[ROUTER_HOST_MAX + 1];

	*out = NULL;
	if (!o->domain || host_norm(o->domain, h) < 0 || h[0] == '*') {
		error_set("invalid domain '%s'", o->domain ? o->domain : "");
		goto fail;
	}
	r->domain = xstrdup(h);
	r->table_path = xstrdup(o->table_path);
	r->ctl = xstrdup(o->control_socket);
	r->probe = xstrdup(o->probe_socket ? o->probe_socket : "");
	r->worker_uid = -1;
	r->log_fd = -1;
	buf_init(&r->resp, ROUTER_RESP_MAX);
	if (o->access_log) {
		r->access_log = xstrdup(o->access_log);
		/* made now, before nginx starts: not readable by all */
		log_open(r);
		if (r->log_fd < 0) {
			error_setsys("cannot open '%s'", r->access_log);
			goto fail;
		}
	}
	if (load_table(r) < 0)
		goto fail;
	r->version++;
	if (write_table(r) < 0)
		goto fail;
	*out = r;
	return 0;
fail:
	router_free(r);
	return -1;
}

void router_free(struct router *r)
{
	size_t i;

	if (!r)
		return;
	/* what was not sent is in the file nginx loads at its start */
	if (r->loop) {
		loop_del_timer(r->loop, r->kick_timer);
		loop_del_timer(r->loop, r->resync_timer);
		if (r->cur)
			req_unwatch(r, r->cur);
	}
	rq_free(r->cur);
	while (r->q_head) {
		struct rq *q = r->q_head;

		r->q_head = q->next;
		rq_free(q);
	}
	for (i = 0; i < r->napps; i++)
		rapp_free(r->apps[i]);
	free(r->apps);
	for (i = 0; i < r->nports; i++)
		free(r->ports[i].app);
	free(r->ports);
	if (r->log_fd >= 0)
		close(r->log_fd);
	buf_release(&r->log_in);
	free(r->access_log);
	buf_release(&r->resp);
	free(r->last_err);
	free(r->table_path);
	free(r->ctl);
	free(r->probe);
	free(r->domain);
	free(r);
}

int router_hosts_check(const struct router *r, const char *app,
		       char *const *hosts, size_t nhosts)
{
	struct strv sv = STRV_INIT;
	int ret = hosts_build(r, app, hosts, nhosts, &sv);

	strv_release(&sv);
	return ret;
}

/*
 * The hosts that take a's static folder: rt's static hosts, each one of
 * a's hosts.  None when a has no static folder (the route's kind serves
 * every host alike).
 */
static int shosts_build(struct rapp *a, const struct route *rt)
{
	char h[ROUTER_HOST_MAX + 1];
	size_t i;
	int ret;

	if (!a->sroute)
		return 0;
	if (rt->nstatic_hosts > ROUTER_MAX_HOSTS) {
		error_set("too many static hosts");
		return ERR_INVALID;
	}
	for (i = 0; i < rt->nstatic_hosts; i++) {
		const char *s = rt->static_hosts[i] ? rt->static_hosts[i] : "";

		if ((ret = host_norm(s, h)) < 0)
			return ret;
		if (!strv_has(&a->hosts, h)) {
			error_set("static host '%s' is not one of the app's hosts",
				  h);
			return ERR_INVALID;
		}
		if (!strv_has(&a->shosts, h))
			strv_push(&a->shosts, h);
	}
	return 0;
}

/* A new state for app: hosts and route, the revert state kept. */
static int build(const struct router *r, const char *app,
		 char *const *hosts, size_t nhosts, const struct route *rt,
		 struct rapp **out)
{
	struct rapp *a = xcalloc(1, sizeof(*a));
	const struct rapp *cur = app_get(r, app);
	int ret;

	*out = NULL;
	if ((ret = hosts_build(r, app, hosts, nhosts, &a->hosts)) < 0 ||
	    (ret = route_render(app, rt, &a->route, &a->live_release)) < 0 ||
	    (ret = sroute_render(app, rt, &a->sroute)) < 0 ||
	    (ret = shosts_build(a, rt)) < 0) {
		rapp_free(a);
		return ret;
	}
	a->name = xstrdup(app);
	if (cur && cur->has_prev) {
		a->has_prev = 1;
		strv_copy(&a->prev_hosts, &cur->prev_hosts);
		a->prev_route = xstrdup(cur->prev_route);
		a->prev_sroute = cur->prev_sroute ?
			xstrdup(cur->prev_sroute) : NULL;
		strv_copy(&a->prev_shosts, &cur->prev_shosts);
		a->prev_release = cur->prev_release;
	}
	*out = a;
	return 0;
}

static int same_strv(const struct strv *a, const struct strv *b)
{
	size_t i;

	if (a->n != b->n)
		return 0;
	for (i = 0; i < a->n; i++)
		if (strcmp(a->v[i], b->v[i]))
			return 0;
	return 1;
}

static int same_state(const struct rapp *a, const struct rapp *b)
{
	if (strcmp(a->route, b->route) || !same_strv(&a->hosts, &b->hosts) ||
	    !same_strv(&a->shosts, &b->shosts))
		return 0;
	if (!a->sroute || !b->sroute)
		return a->sroute == b->sroute;
	return !strcmp(a->sroute, b->sroute);
}

int router_app_set(struct router *r, const char *app, char *const *hosts,
		   size_t nhosts, const struct route *rt)
{
	struct rapp *a, *cur;
	int ret = build(r, app, hosts, nhosts, rt, &a);

	if (ret < 0)
		return ret;
	cur = app_get(r, app);
	if (cur && same_state(cur, a)) {
		cur->stale = 0;
		rapp_free(a);
		return 0;
	}
	return change(r, app, a);
}

int router_app_hosts(struct router *r, const char *app, char *const *hosts,
		     size_t nhosts)
{
	struct rapp *a, *cur = app_get(r, app);
	int ret;

	if (!cur)
		return router_hosts_check(r, app, hosts, nhosts);
	a = rapp_dup(cur);
	strv_release(&a->hosts);
	if ((ret = hosts_build(r, app, hosts, nhosts, &a->hosts)) < 0) {
		rapp_free(a);
		return ret;
	}
	/* the static folder keeps those of its hosts the app still has */
	if (a->sroute) {
		struct strv keep = STRV_INIT;
		size_t i;

		for (i = 0; i < a->shosts.n; i++)
			if (strv_has(&a->hosts, a->shosts.v[i]))
				strv_push(&keep, a->shosts.v[i]);
		strv_release(&a->shosts);
		a->shosts = keep;
		if (!a->shosts.n)
			FREE_AND_NULL(a->sroute);
	}
	if (same_state(cur, a)) {
		rapp_free(a);
		return 0;
	}
	return change(r, app, a);
}

/* "was APP REL INFLIGHT DONE" in the last answer, for app. */
static void parse_was(const struct router *r, const char *app,
		      struct router_switch *sw)
{
	const char *p = r->resp.data;

	while (p && *p) {
		char name[APP_NAME_MAX + 1];
		int rel;
		long in, done;

		if (sscanf(p, "was %63s %d %ld %ld", name, &rel, &in,
			   &done) == 4 && !strcmp(name, app) &&
		    rel == sw->release) {
			sw->inflight = in;
			sw->done = done;
			return;
		}
		p = strchr(p, '\n');
		if (p)
			p++;
	}
}

int router_switch(struct router *r, const char *app, char *const *hosts,
		  size_t nhosts, const struct route *rt, router_done_fn fn,
		  void *arg, uint64_t *wait)
{
	struct rapp *a, *cur = app_get(r, app);
	struct rq *q;
	int ret;

	if (wait)
		*wait = 0;
	if (!cur) {
		error_set("no route for app '%s'", app ? app : "");
		return ERR_NOTFOUND;
	}
	if ((ret = build(r, app, hosts, nhosts, rt, &a)) < 0)
		return ret;
	a->has_prev = 1;
	strv_release(&a->prev_hosts);
	strv_copy(&a->prev_hosts, &cur->hosts);
	free(a->prev_route);
	a->prev_route = xstrdup(cur->route);
	free(a->prev_sroute);
	a->prev_sroute = cur->sroute ? xstrdup(cur->sroute) : NULL;
	strv_release(&a->prev_shosts);
	strv_copy(&a->prev_shosts, &cur->shosts);
	a->prev_release = cur->live_release;
	/* what it takes traffic from: counted when it goes out
	 * (req_prepare_table(), req_start()) */
	if (change_q(r, app, a, &q) < 0)
		return -1;
	q->sw_app = xstrdup(app);
	q->sw.had_live = a->prev_release >= 0;
	q->sw.release = a->prev_release;
	q->sw.inflight = 0;
	q->sw.done = -1;
	ret = waiter_add(r, q, fn, arg);
	if (wait && r->loop)
		*wait = (uint64_t)ret;
	send_change(r, q);
	return 0;
}

int router_revert(struct router *r, const char *app, router_done_fn fn,
		  void *arg, uint64_t *wait)
{
	struct rapp *cur = app_get(r, app), *a;
	struct rq *q;
	uint64_t id;
	size_t i;

	if (wait)
		*wait = 0;
	if (!cur || !cur->has_prev) {
		error_set("nothing to go back to for app '%s'",
			  app ? app : "");
		return ERR_NOTFOUND;
	}
	a = xcalloc(1, sizeof(*a));
	a->name = xstrdup(app);
	for (i = 0; i < cur->prev_hosts.n; i++)
		if (!host_owner(r, cur->prev_hosts.v[i], app))
			strv_push(&a->hosts, cur->prev_hosts.v[i]);
	a->route = xstrdup(cur->prev_route);
	if (cur->prev_sroute) {
		for (i = 0; i < cur->prev_shosts.n; i++)
			if (strv_has(&a->hosts, cur->prev_shosts.v[i]))
				strv_push(&a->shosts, cur->prev_shosts.v[i]);
		if (a->shosts.n)
			a->sroute = xstrdup(cur->prev_sroute);
	}
	a->live_release = cur->prev_release;
	if (change_q(r, app, a, &q) < 0)
		return -1;
	id = waiter_add(r, q, fn, arg);
	if (wait && r->loop)
		*wait = id;
	send_change(r, q);
	return 0;
}

int router_app_remove(struct router *r, const char *app)
{
	int ret = name_check(app);

	if (ret < 0)
		return ret;
	if (!app_get(r, app))
		return 0;
	log_read(r);
	if (change(r, app, NULL) < 0)
		return -1;
	ports_drop(r, app, -1);
	return 0;
}

/* "FROM rest" as "TO rest" (every route string starts with its name) */
static char *route_renamed(const char *route, const char *from, const char *to)
{
	size_t n = strlen(from);

	if (!route)
		return NULL;
	if (!strncmp(route, from, n) && route[n] == ' ')
		return xasprintf("%s%s", to, route + n);
	return xstrdup(route);
}

int router_app_rename(struct router *r, const char *from, const char *to)
{
	struct rapp *cur, *was, *now;
	struct rq *q;
	struct buf delta = BUF_INIT;
	char h[ROUTER_HOST_MAX + 1];
	char *def;
	size_t i;
	int ret;

	if ((ret = name_check(from)) < 0 || (ret = name_check(to)) < 0)
		return ret;
	cur = app_get(r, from);
	if (!cur)
		return 0;
	if (app_get(r, to)) {
		error_set("'%s' is in the routing table already", to);
		return ERR_EXISTS;
	}
	/* the lines so far under the old name */
	log_read(r);
	was = rapp_dup(cur);
	now = rapp_dup(cur);
	free(now->name);
	now->name = xstrdup(to);
	free(now->route);
	now->route = route_renamed(was->route, from, to);
	free(now->prev_route);
	now->prev_route = route_renamed(was->prev_route, from, to);
	free(now->sroute);
	now->sroute = route_renamed(was->sroute, from, to);
	free(now->prev_sroute);
	now->prev_sroute = route_renamed(was->prev_sroute, from, to);
	/* the default host NAME.DOMAIN follows the name */
	strv_release(&now->hosts);
	def = xasprintf("%s.%s", to, r->domain);
	if (host_norm(def, h) == 0 && !host_owner(r, h, from))
		strv_push(&now->hosts, h);
	free(def);
	def = xasprintf("%s.%s", from, r->domain);
	for (i = 0; i < was->hosts.n; i++)
		if (host_norm(def, h) < 0 || strcmp(was->hosts.v[i], h))
			if (!strv_has(&now->hosts, was->hosts.v[i]))
				strv_push(&now->hosts, was->hosts.v[i]);
	free(def);
	/* the new name's route and hosts first, the old name last: no
	 * moment where a host of the app points nowhere */
	if (now->route)
		buf_addf(&delta, "route %s\n", now->route);
	if (now->sroute)
		static_line(&delta, now);
	for (i = 0; i < now->hosts.n; i++)
		host_line(&delta, now, now->hosts.v[i]);
	for (i = 0; i < was->hosts.n; i++)
		if (!strv_has(&now->hosts, was->hosts.v[i]))
			buf_addf(&delta, "unhost %s\n", was->hosts.v[i]);
	if (was->sroute)
		buf_addf(&delta, "unstatic %s\n", from);
	buf_addf(&delta, "unroute %s\npurge %s\n", from, from);
	app_delete(r, from);
	app_insert(r, now);
	q = commit(r, &delta);
	buf_release(&delta);
	if (!q) {
		char *msg = xstrdup(error_last());

		app_delete(r, to);
		undo(r, from, was);
		error_set("%s", msg);
		free(msg);
		return -1;
	}
	rapp_free(was);
	/* its ports were noted for the new name (counted afresh, as
	 * nginx does) */
	ports_drop(r, from, -1);
	return send_change(r, q);
}

void router_keep(struct router *r, const char *app)
{
	struct rapp *a = app_get(r, app);

	if (a)
		a->stale = 0;
}

int router_drop_stale(struct router *r)
{
	size_t i = 0;

	while (i < r->napps) {
		if (r->apps[i]->stale) {
			char *name = xstrdup(r->apps[i]->name);
			int ret = change(r, name, NULL);

			free(name);
			if (ret < 0)
				return -1;
			continue;
		}
		i++;
	}
	return 0;
}

/* A count's answer (rc as req_finish() has it) into out. */
static int counts_parse(struct router *r, const char *app, int release,
			int rc, struct router_counts *out)
{
	out->inflight = out->done = 0;
	if (rc == NGINX_DOWN) {
		error_set("nginx is not running");
		return ERR_BUSY;
	}
	if (rc < 0)
		return ERR_BUSY;
	if (sscanf(r->resp.data, "counts %ld %ld", &out->inflight,
		   &out->done) != 2) {
		error_set("nginx's router answered '%s'", r->resp.data);
		return ERR_BUSY;
	}
	if (r->access_log) {
		long early, lines = ports_lines(r, app, release, &early);

		/* every line read is of a request no longer in flight; those
		 * that ended before the switch are not counted finished */
		out->inflight -= lines;
		if (out->inflight < 0)
			out->inflight = 0;
		out->done = lines - early;
	}
	return 0;
}

static struct rq *counts_rq(struct router *r, const char *app, int release)
{
	struct rq *q = rq_new(RQ_COUNTS);

	/*
	 * Own mode: nginx counts a request routed, and its line in the
	 * access_log says it finished.  The lines are read before nginx is
	 * asked: each is of a request counted by then, so in flight is
	 * never taken for less than it is.
	 */
	log_read(r);
	q->path = xasprintf("/counts?app=%s&release=%d", app, release);
	return q;
}

int router_counts(struct router *r, const char *app, int release,
		  struct router_counts *out)
{
	struct rq *q;
	int ret, rc = 0;

	out->inflight = out->done = 0;
	if ((ret = name_check(app)) < 0)
		return ret;
	/* on a connection of its own, outside the queue */
	q = counts_rq(r, app, release);
	if (!req_start(r, q, &rc))
		rc = req_wait(r, q);
	ret = counts_parse(r, app, release, rc, out);
	rq_free(q);
	return ret;
}

int router_forget(struct router *r, const char *app, int release)
{
	struct rq *q;
	int ret = name_check(app);

	if (ret < 0)
		return ret;
	/* its last lines first: they need its ports */
	log_read(r);
	ports_drop(r, app, release);
	q = rq_new(RQ_FORGET);
	buf_addf(&q->body, "forget %s %d\n", app, release);
	return queue_add(r, q) < 0 ? -1 : 0;
}

static void drain_finish(struct router_drain *d, int drained, long left,
			 long finished)
{
	struct router_drain_result res;

	res.drained = drained;
	res.left = left;
	res.finished = finished < 0 ? 0 : finished;
	res.elapsed_ms = (long)(now_ms() - d->t0);
	d->fn(d->arg, &res);
	free(d->app);
	free(d);
}

static void drain_poll(struct loop *l, void *arg);

/* nginx answered the drain's count (or did not). */
static void drain_counted(struct router *r, struct rq *q, int rc)
{
	struct router_drain *d = q->ctx;
	struct router_counts c = { 0, 0 };
	int known;

	if (!d)
		return;		/* cancelled */
	d->rq = NULL;
	known = counts_parse(r, d->app, d->release, rc, &c) == 0;
	if (known && d->base_done < 0)
		d->base_done = c.done;
	if (known && c.inflight <= 0) {
		drain_finish(d, 1, 0, c.done - d->base_done);
		return;
	}
	if (now_ms() >= d->deadline) {
		drain_finish(d, 0, known ? c.inflight : -1,
			     known ? c.done - d->base_done : 0);
		return;
	}
	d->timer = loop_add_timer(d->loop, ROUTER_DRAIN_POLL_MS, drain_poll,
				  d);
}

/* Ask nginx for the count, in the queue (after every change made). */
static void drain_poll(struct loop *l, void *arg)
{
	struct router_drain *d = arg;
	struct rq *q;

	(void)l;
	d->timer = 0;
	if (d->release < 0) {
		drain_finish(d, 1, 0, 0);
		return;
	}
	q = counts_rq(d->r, d->app, d->release);
	q->on_done = drain_counted;
	q->ctx = d;
	d->rq = q;
	queue_add(d->r, q);
}

struct router_drain *router_drain_start(struct router *r, struct loop *l,
					const char *app, int release,
					const struct router_switch *sw,
					long max_ms, router_drain_fn fn,
					void *arg)
{
	struct router_drain *d;

	if (name_check(app) < 0)
		return NULL;
	d = xcalloc(1, sizeof(*d));
	d->r = r;
	d->loop = l;
	d->app = xstrdup(app);
	d->release = release;
	d->base_done = sw && sw->had_live && sw->release == release ?
		sw->done : -1;
	d->t0 = now_ms();
	d->deadline = d->t0 + (max_ms > 0 ? max_ms : 0);
	d->fn = fn;
	d->arg = arg;
	d->timer = loop_add_timer(l, 0, drain_poll, d);
	return d;
}

void router_drain_cancel(struct router_drain *d)
{
	if (!d)
		return;
	loop_del_timer(d->loop, d->timer);
	if (d->rq)
		d->rq->ctx = NULL;	/* it goes on; nobody hears it */
	free(d->app);
	free(d);
}

/* nginx's /status: who its workers are, and whether it has the table. */
static void status_done(struct router *r, struct rq *q, int rc)
{
	unsigned long long v = 0, boot = 0;
	long uid = -1, dropped = 0;
	size_t i;

	(void)q;
	if (rc != 0) {
		if (rc < 0)
			log_warnx("routing table: %s", error_last());
		r->synced = 0;
		return;
	}
	if (sscanf(r->resp.data, "version %llu uid %ld dropped %ld boot %llu",
		   &v, &uid, &dropped, &boot) >= 2)
		r->worker_uid = uid;
	if (boot != r->nginx_boot) {
		/* a new master counts from 0: so do its lines (read the
		 * old one's first) */
		log_read(r);
		for (i = 0; i < r->nports; i++)
			r->ports[i].lines = 0;
		r->nginx_boot = boot;
	}
	if (v == r->version) {
		r->synced = 1;
		return;
	}
	/* the whole table next, before what is queued (it has that) */
	r->synced = 0;
	q = rq_new(RQ_TABLE);
	q->full = 1;
	q->next = r->q_head;
	r->q_head = q;
}

int router_nginx_up(struct router *r)
{
	struct rq *q = rq_new(RQ_STATUS);

	q->on_done = status_done;
	queue_add(r, q);
	error_clear();
	return 0;
}

int router_in_sync(const struct router *r)
{
	return r->synced;
}

uint64_t router_version(const struct router *r)
{
	return r->version;
}

long router_worker_uid(const struct router *r)
{
	return r->worker_uid;
}

const char *router_probe_socket(const struct router *r)
{
	return r->probe;
}

int router_app_host_list(const struct router *r, const char *app,
			 struct strv *out)
{
	const struct rapp *a = app ? app_get(r, app) : NULL;

	if (!a)
		return ERR_NOTFOUND;
	strv_copy(out, &a->hosts);
	return 0;
}
