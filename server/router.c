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
#include <sys/stat.h>
#include <unistd.h>
#include <arpa/inet.h>

#include <curl/curl.h>

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
	CURL *curl;
	struct curl_slist *hdrs;
	struct buf resp;
	char errbuf[CURL_ERROR_SIZE];
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
	int64_t sent_ms;	/* the wall clock (wall_ms()) just before the
				 * last change went to nginx */
};

struct router_drain {
	struct router *r;
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

static size_t resp_cb(char *p, size_t sz, size_t n, void *arg)
{
	struct router *r = arg;

	if (buf_add(&r->resp, p, sz * n) < 0)
		return 0;
	return sz * n;
}

enum { NGINX_DOWN = 1 };

/*
 * One request to the control listener.  0: answered 200 (body in
 * r->resp); NGINX_DOWN: nothing listens (nginx is not running); -1: any
 * other failure, with the error set.
 */
static int control(struct router *r, const char *path, const char *body,
		   size_t len)
{
	char url[256];
	CURLcode rc;
	long status = 0;

	if (!r->curl) {
		r->curl = curl_easy_init();
		if (!r->curl)
			return error_set("cannot make a curl handle");
		r->hdrs = curl_slist_append(NULL, "Expect:");
		curl_easy_setopt(r->curl, CURLOPT_UNIX_SOCKET_PATH, r->ctl);
		curl_easy_setopt(r->curl, CURLOPT_PROXY, "");
		curl_easy_setopt(r->curl, CURLOPT_NOSIGNAL, 1L);
		curl_easy_setopt(r->curl, CURLOPT_TIMEOUT_MS,
				 (long)ROUTER_TIMEOUT_MS);
		curl_easy_setopt(r->curl, CURLOPT_CONNECTTIMEOUT_MS, 1000L);
		curl_easy_setopt(r->curl, CURLOPT_HTTPHEADER, r->hdrs);
		curl_easy_setopt(r->curl, CURLOPT_WRITEFUNCTION, resp_cb);
		curl_easy_setopt(r->curl, CURLOPT_WRITEDATA, r);
		curl_easy_setopt(r->curl, CURLOPT_ERRORBUFFER, r->errbuf);
	}
	snprintf(url, sizeof(url), "http://berth%s", path);
	curl_easy_setopt(r->curl, CURLOPT_URL, url);
	if (body) {
		curl_easy_setopt(r->curl, CURLOPT_POSTFIELDS, body);
		curl_easy_setopt(r->curl, CURLOPT_POSTFIELDSIZE_LARGE,
				 (curl_off_t)len);
	} else {
		curl_easy_setopt(r->curl, CURLOPT_HTTPGET, 1L);
	}
	buf_reset(&r->resp);
	r->errbuf[0] = '\0';
	rc = curl_easy_perform(r->curl);
	if (rc == CURLE_COULDNT_CONNECT)
		return NGINX_DOWN;
	if (rc != CURLE_OK)
		return error_set("nginx's router does not answer: %s",
				 r->errbuf[0] ? r->errbuf :
				 curl_easy_strerror(rc));
	curl_easy_getinfo(r->curl, CURLINFO_RESPONSE_CODE, &status);
	if (status != 200) {
		size_t n = strcspn(r->resp.data ? r->resp.data : "", "\n");

		return error_set("nginx's router refused it (%ld): %.*s",
				 status, (int)n,
				 r->resp.data ? r->resp.data : "");
	}
	return 0;
}

/* Send the whole table (POST /replace). */
int router_sync(struct router *r)
{
	struct buf b = BUF_INIT;
	int rc;

	router_render(r, &b);
	rc = control(r, "/replace", b.data, b.len);
	buf_release(&b);
	r->synced = rc == 0;
	if (rc == NGINX_DOWN)
		return 0;
	return rc;
}

/*
 * Make a change: a new version in the file, then the delta to nginx.
 * NGINX_DOWN is success (nginx loads the file when it starts).
 */
static int commit(struct router *r, const struct buf *delta)
{
	struct buf b = BUF_INIT;
	int rc;

	r->version++;
	if (write_table(r) < 0)
		return -1;
	r->sent_ms = wall_ms();
	if (!r->synced) {
		/* a change was lost on the way: send everything */
		rc = router_sync(r);
		return rc;
	}
	buf_addf(&b, "version %llu\n", (unsigned long long)r->version);
	buf_add(&b, delta->data, delta->len);
	rc = control(r, "/update", b.data, b.len);
	buf_release(&b);
	if (rc == NGINX_DOWN) {
		r->synced = 0;
		return 0;
	}
	return rc;
}

/*
 * Put 'old' (NULL: no such app) back after a failed commit, and tell
 * nginx the whole table, since it may hold part of the change.
 */
static void undo(struct router *r, const char *name, struct rapp *old)
{
	char *msg = xstrdup(error_last());

	if (old)
		app_insert(r, old);
	else
		app_delete(r, name);
	r->version++;
	if (write_table(r) < 0 || router_sync(r) < 0)
		log_warnx("routing table: %s", error_last());
	error_set("%s", msg);
	free(msg);
}

/* Replace app 'name' by 'now' (NULL: remove it), committed. */
static int change(struct router *r, const char *name, struct rapp *now)
{
	struct rapp *cur = app_get(r, name);
	struct rapp *old = cur ? rapp_dup(cur) : NULL;
	struct buf delta = BUF_INIT;
	int ret;

	render_delta(&delta, old, now);
	if (now)
		app_insert(r, now);
	else
		app_delete(r, name);
	ret = commit(r, &delta);
	buf_release(&delta);
	if (ret < 0) {
		undo(r, name, old);
		return -1;
	}
	rapp_free(old);
	return 0;
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
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != 0) {
		error_set("cannot initialise libcurl");
		goto fail;
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
	if (r->curl) {
		curl_easy_cleanup(r->curl);
		curl_slist_free_all(r->hdrs);
	}
	if (r->ctl)
		curl_global_cleanup();
	buf_release(&r->resp);
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
		  size_t nhosts, const struct route *rt,
		  struct router_switch *out)
{
	struct rapp *a, *cur = app_get(r, app);
	struct router_switch sw = { 0, -1, 0, -1 };
	int ret;

	if (out)
		*out = sw;
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
	/* the lines so far: none of them can be of a request still in
	 * flight at the switch (see router_counts()) */
	log_read(r);
	sw.had_live = cur->live_release >= 0;
	sw.release = cur->live_release;
	if (change(r, app, a) < 0)
		return -1;
	/*
	 * The lines read later of requests that ended before the change
	 * went to nginx were not in flight at the switch either: their end
	 * time ($msec) tells.  It has ms resolution, and nginx's clock is
	 * cached (a time it logs is never later than the real one): a line
	 * of that very millisecond may be of a request that ended before
	 * it, so only those from the next one on count as finished after.
	 */
	if (sw.had_live && r->access_log)
		ports_cut(r, app, sw.release, r->sent_ms + 1);
	if (sw.had_live && r->synced) {
		parse_was(r, app, &sw);
		if (r->access_log && sw.done >= 0) {
			long early;

			/* own mode: nginx counts routed, the lines finished
			 * (read before the switch, above) */
			sw.done = ports_lines(r, app, sw.release, &early);
			sw.inflight -= sw.done;
			if (sw.inflight < 0)
				sw.inflight = 0;
		}
	}
	if (out)
		*out = sw;
	return 0;
}

int router_revert(struct router *r, const char *app)
{
	struct rapp *cur = app_get(r, app), *a;
	size_t i;

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
	return change(r, app, a);
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
	ret = commit(r, &delta);
	buf_release(&delta);
	if (ret < 0) {
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
	return 0;
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

int router_counts(struct router *r, const char *app, int release,
		  struct router_counts *out)
{
	char path[128];
	int ret;

	out->inflight = out->done = 0;
	if ((ret = name_check(app)) < 0)
		return ret;
	/*
	 * Own mode: nginx counts a request routed, and its line in the
	 * access_log says it finished.  The lines are read before nginx is
	 * asked: each is of a request counted by then, so in flight is
	 * never taken for less than it is.
	 */
	log_read(r);
	snprintf(path, sizeof(path), "/counts?app=%s&release=%d", app,
		 release);
	ret = control(r, path, NULL, 0);
	if (ret == NGINX_DOWN) {
		error_set("nginx is not running");
		return ERR_BUSY;
	}
	if (ret < 0)
		return ERR_BUSY;
	if (!r->resp.data || sscanf(r->resp.data, "counts %ld %ld",
				    &out->inflight, &out->done) != 2) {
		error_set("nginx's router answered '%s'",
			  r->resp.data ? r->resp.data : "");
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

int router_forget(struct router *r, const char *app, int release)
{
	char *body;
	int ret = name_check(app);

	if (ret < 0)
		return ret;
	/* its last lines first: they need its ports */
	log_read(r);
	ports_drop(r, app, release);
	body = xasprintf("forget %s %d\n", app, release);
	ret = control(r, "/update", body, strlen(body));
	free(body);
	return ret < 0 ? -1 : 0;
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

static void drain_poll(struct loop *l, void *arg)
{
	struct router_drain *d = arg;
	struct router_counts c = { 0, 0 };
	int known;

	d->timer = 0;
	known = d->release >= 0 &&
		router_counts(d->r, d->app, d->release, &c) == 0;
	if (d->release < 0) {
		drain_finish(d, 1, 0, 0);
		return;
	}
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
	d->timer = loop_add_timer(l, ROUTER_DRAIN_POLL_MS, drain_poll, d);
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
	free(d->app);
	free(d);
}

int router_nginx_up(struct router *r)
{
	unsigned long long v = 0, boot = 0;
	long uid = -1, dropped = 0;
	int rc = control(r, "/status", NULL, 0);
	size_t i;

	if (rc != 0) {
		if (rc < 0)
			log_warnx("routing table: %s", error_last());
		r->synced = 0;
		error_clear();
		return 0;
	}
	if (r->resp.data && sscanf(r->resp.data, "version %llu uid %ld "
				   "dropped %ld boot %llu", &v, &uid, &dropped,
				   &boot) >= 2)
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
		return 0;
	}
	if (router_sync(r) < 0) {
		log_warnx("routing table: %s", error_last());
		error_clear();
	}
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
