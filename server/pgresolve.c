/*
 * pgresolve: a conninfo's host names looked up in a child (see
 * pgresolve.h).  The child writes one line per name, "+ADDR ADDR..." or
 * "-why", and the parent rewrites the host lists from them.  With a
 * service, whose file only libpq reads, the child also finds the hosts
 * (PQconndefaults() with PGSERVICE set, in the child only) and writes the
 * lists themselves: "=HOSTS", "=HOSTADDRS", "=PORTS", or "-why".
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <libpq-fe.h>

#include "pgresolve.h"
#include "runner.h"
#include "util.h"
#include "banned.h"

#define ADDRS_MAX 16		/* per name: more are not tried */
#define ANSWER_MAX 65536

struct pgresolve {
	struct runner run;
	struct buf answer;
	/* the conninfo's lists, one item per host */
	struct strv host, addr, port;
	int *name_of;		/* per host: its index in names, or -1 */
	struct strv names;	/* the names to look up */
	char *service;		/* named: the child finds the hosts */
	char *conninfo;		/* then, for the child */
	char *timeout_msg;
	pgresolve_fn fn;
	void *arg;
};

static void pgresolve_free(struct pgresolve *r)
{
	if (!r)
		return;
	buf_release(&r->answer);
	strv_release(&r->host);
	strv_release(&r->addr);
	strv_release(&r->port);
	strv_release(&r->names);
	free(r->name_of);
	free(r->service);
	if (r->conninfo)
		explicit_bzero(r->conninfo, strlen(r->conninfo));
	free(r->conninfo);
	free(r->timeout_msg);
	free(r);
}

/* "a,,b" as three items ("" as none) */
static void split_list(struct strv *out, const char *s)
{
	const char *comma;
	char *item;

	if (!s || !*s)
		return;
	for (;;) {
		comma = strchr(s, ',');
		if (!comma) {
			strv_push(out, s);
			return;
		}
		item = xstrndup(s, (size_t)(comma - s));
		strv_push(out, item);
		free(item);
		s = comma + 1;
	}
}

static int is_numeric(const char *host)
{
	unsigned char a[sizeof(struct in6_addr)];

	return inet_pton(AF_INET, host, a) == 1 ||
	       inet_pton(AF_INET6, host, a) == 1;
}

/* libpq's rule: a path ('@': an abstract socket) is a unix socket */
static int is_socket(const char *host)
{
	return host[0] == '/' || host[0] == '@';
}

/* The conninfo's value of key, or libpq's environment default. */
static const char *option(const PQconninfoOption *opts, const char *key,
			  const char *env)
{
	const char *v = NULL;

	for (; opts->keyword; opts++)
		if (!strcmp(opts->keyword, key))
			v = opts->val;
	/* libpq's defaults fill only what is unset */
	if (!v && env)
		v = getenv(env);
	return v && *v ? v : NULL;
}

/*
 * The hosts (host, hostaddr and port lists) into r, and the names among
 * them to look up: 0 when there are some, else 1 (none, or counts libpq
 * refuses itself, without a lookup).
 */
static int plan_lists(struct pgresolve *r, const char *host,
		      const char *hostaddr, const char *port)
{
	size_t i, n;

	split_list(&r->host, host);
	split_list(&r->addr, hostaddr);
	split_list(&r->port, port);
	n = r->host.n;
	if (!n || (r->addr.n && r->addr.n != n) ||
	    (r->port.n > 1 && r->port.n != n))
		return 1;
	while (r->addr.n < n)
		strv_push(&r->addr, "");
	r->name_of = xcalloc(n, sizeof(*r->name_of));
	for (i = 0; i < n; i++) {
		const char *h = r->host.v[i];

		r->name_of[i] = -1;
		if (!*h || is_socket(h) || *r->addr.v[i])
			continue;
		if (is_numeric(h)) {
			free(r->addr.v[i]);
			r->addr.v[i] = xstrdup(h);
			continue;
		}
		r->name_of[i] = (int)r->names.n;
		strv_push(&r->names, h);
	}
	return r->names.n ? 0 : 1;
}

/*
 * The hosts of conninfo into r, and the names among them to look up.
 * 1: none, 0: some (or a service: the child finds its hosts), -1: a
 * conninfo libpq cannot parse.
 */
static int plan(struct pgresolve *r, const char *conninfo)
{
	char *err = NULL;
	PQconninfoOption *opts = PQconninfoParse(conninfo, &err);
	const char *service;
	int ret;

	if (!opts) {
		error_set("bad conninfo: %.*s", err ? (int)strcspn(err, "\n") :
			  13, err ? err : "out of memory");
		PQfreemem(err);
		return -1;
	}
	service = option(opts, "service", "PGSERVICE");
	if (service) {
		r->service = xstrdup(service);
		r->conninfo = xstrdup(conninfo);
		ret = 0;
	} else {
		ret = plan_lists(r, option(opts, "host", "PGHOST"),
				 option(opts, "hostaddr", "PGHOSTADDR"),
				 option(opts, "port", "PGPORT"));
	}
	PQconninfoFree(opts);
	return ret;
}

/* One name's line: "+ADDR ADDR...\n" or "-why\n". */
static void lookup_one(struct buf *line, const char *name)
{
	struct addrinfo hints, *res = NULL, *ai;
	char addrs[ADDRS_MAX][NI_MAXHOST];
	int rc, n = 0, i;

	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;	/* as libpq asks */
	hints.ai_socktype = SOCK_STREAM;
	rc = getaddrinfo(name, NULL, &hints, &res);
	if (rc) {
		buf_addf(line, "-%s\n", rc == EAI_SYSTEM ? strerror(errno) :
			 gai_strerror(rc));
		return;
	}
	for (ai = res; ai && n < ADDRS_MAX; ai = ai->ai_next) {
		if (getnameinfo(ai->ai_addr, ai->ai_addrlen, addrs[n],
				sizeof(addrs[n]), NULL, 0, NI_NUMERICHOST))
			continue;
		for (i = 0; i < n; i++)
			if (!strcmp(addrs[i], addrs[n]))
				break;
		if (i == n)
			n++;
	}
	freeaddrinfo(res);
	if (!n) {
		buf_addstr(line, "-no address\n");
		return;
	}
	buf_addstr(line, "+");
	for (i = 0; i < n; i++)
		buf_addf(line, "%s%s", i ? " " : "", addrs[i]);
	buf_addstr(line, "\n");
}

static int service_child(struct pgresolve *r, int out);

/* In the child: each name's line to fd out. */
static int lookup_child(void *arg, int out, int err)
{
	struct pgresolve *r = arg;
	struct buf b;
	size_t i;
	int ret;

	(void)err;
	/* the engine's sockets and pipes are not ours to hold open */
	if (out > 3)
		close_range(3, (unsigned)out - 1, 0);
	close_range((unsigned)out + 1, ~0U, 0);
	if (r->service)
		return service_child(r, out);
	buf_init(&b, 0);
	for (i = 0; i < r->names.n; i++)
		lookup_one(&b, r->names.v[i]);
	ret = write_all(out, b.data, b.len) < 0 ? 1 : 0;
	buf_release(&b);
	return ret;
}

/* "'a'" or "'a', 'b'": the names, for a message */
static char *names_quoted(const struct pgresolve *r)
{
	struct buf b;
	size_t i;

	if (r->service)
		return xasprintf("the hosts of service '%s'", r->service);
	buf_init(&b, 0);
	for (i = 0; i < r->names.n; i++)
		buf_addf(&b, "%s'%s'", i ? ", " : "", r->names.v[i]);
	return buf_detach(&b);
}

/* The child's lines: name k's at lines[k] ('+' or '-' first). */
static int split_answer(struct pgresolve *r, char **lines)
{
	char *p = r->answer.data, *nl;
	size_t k;

	for (k = 0; k < r->names.n; k++) {
		nl = p ? strchr(p, '\n') : NULL;
		if (!nl || (*p != '+' && *p != '-'))
			return -1;
		*nl = '\0';
		lines[k] = p;
		p = nl + 1;
	}
	return 0;
}

/* The n-th host: its items (an item may be empty: the count says where
 * the commas go). */
static void add_host(struct buf *host, struct buf *addr, struct buf *port,
		     size_t *n, const char *h, const char *a, const char *p)
{
	const char *sep = (*n)++ ? "," : "";

	buf_addf(host, "%s%s", sep, h);
	buf_addf(addr, "%s%s", sep, a);
	if (p)
		buf_addf(port, "%s%s", sep, p);
}

/* The new lists from the child's lines; -1 with error_last() when no
 * host is left. */
static int rewrite(struct pgresolve *r, char **lines, struct buf *host,
		   struct buf *addr, struct buf *port)
{
	const char *failed = NULL, *why = NULL;
	size_t i, n = 0;

	for (i = 0; i < r->host.n; i++) {
		const char *p = r->port.n > 1 ? r->port.v[i] : NULL;
		char *line, *save, *a;
		int k = r->name_of[i];

		if (k < 0) {
			add_host(host, addr, port, &n, r->host.v[i],
				 r->addr.v[i], p);
			continue;
		}
		if (lines[k][0] == '-') {
			if (!failed) {
				failed = r->names.v[k];
				why = lines[k] + 1;
			}
			continue;
		}
		line = xstrdup(lines[k] + 1);
		save = line;
		while ((a = str_token(&save, " ")) != NULL)
			add_host(host, addr, port, &n, r->host.v[i], a,
				 p);
		free(line);
	}
	if (!n)
		return error_set("cannot resolve '%s': %s", failed, why);
	return 0;
}

/* The conninfo's value of key, else the service file's or libpq's
 * default (defs: PQconndefaults(), NULL when it failed). */
static const char *value_or_default(const PQconninfoOption *opts,
				    const PQconninfoOption *defs,
				    const char *key)
{
	const char *v = option(opts, key, NULL);

	return v || !defs ? v : option(defs, key, NULL);
}

/*
 * In the child, for a service: its hosts (the service file read by
 * libpq, PGSERVICE set here only), each name looked up, and the lists
 * written whole; "=\n=\n=\n" (connect as it is) when there is nothing
 * to look up, or when libpq has an error to say itself.
 */
static int service_child(struct pgresolve *r, int out)
{
	PQconninfoOption *opts, *defs = NULL;
	struct buf b, host, addr, port;
	char **lines = NULL;
	size_t i;
	int ret;

	buf_init(&b, 0);
	buf_init(&host, 0);
	buf_init(&addr, 0);
	buf_init(&port, 0);
	opts = PQconninfoParse(r->conninfo, NULL);
	if (opts && setenv("PGSERVICE", r->service, 1) == 0)
		defs = PQconndefaults();
	if (!opts || plan_lists(r, value_or_default(opts, defs, "host"),
				value_or_default(opts, defs, "hostaddr"),
				value_or_default(opts, defs, "port")) != 0) {
		buf_addstr(&b, "=\n=\n=\n");
		goto write;
	}
	for (i = 0; i < r->names.n; i++)
		lookup_one(&r->answer, r->names.v[i]);
	lines = xcalloc(r->names.n, sizeof(*lines));
	if (split_answer(r, lines) < 0 ||
	    rewrite(r, lines, &host, &addr, &port) < 0)
		buf_addf(&b, "-%s\n", error_last());
	else
		buf_addf(&b, "=%s\n=%s\n=%s\n", host.data, addr.data,
			 port.data);
write:
	ret = write_all(out, b.data, b.len) < 0 ? 1 : 0;
	PQconninfoFree(opts);
	PQconninfoFree(defs);
	free(lines);
	buf_release(&b);
	buf_release(&host);
	buf_release(&addr);
	buf_release(&port);
	return ret;
}

/* A service child's answer into h (pointing into it); -1 with
 * error_last() for its "-why". */
static int service_answer(struct pgresolve *r, struct pgresolve_hosts *h)
{
	char *p = r->answer.data, *line[3], *nl;
	int k;

	if (*p == '-') {
		p[strcspn(p, "\n")] = '\0';
		return error_set("%s", p + 1);
	}
	for (k = 0; k < 3; k++) {
		nl = strchr(p, '\n');
		if (*p != '=' || !nl)
			return ERR_INVALID;
		*nl = '\0';
		line[k] = p + 1;
		p = nl + 1;
	}
	h->host = *line[0] ? line[0] : NULL;
	h->hostaddr = *line[1] ? line[1] : NULL;
	h->port = *line[2] ? line[2] : NULL;
	return 0;
}

static void lookup_done(struct runner *run, int result, void *arg)
{
	struct pgresolve *r = arg;
	struct pgresolve_hosts h;
	struct buf host, addr, port;
	char **lines = xcalloc(r->names.n + 1, sizeof(*lines));
	char why[64], *names = NULL;

	buf_init(&host, 0);
	buf_init(&addr, 0);
	buf_init(&port, 0);
	if (result < 0)
		goto fail;	/* the deadline, or the runner's error */
	if (r->service && WIFEXITED(run->status) &&
	    WEXITSTATUS(run->status) == 0) {
		int got = service_answer(r, &h);

		if (got == 0) {
			r->fn(r->arg, 0, &h);
			goto out;
		}
		if (got == -1)
			goto fail;
	}
	if (!WIFEXITED(run->status) || WEXITSTATUS(run->status) != 0 ||
	    r->service || split_answer(r, lines) < 0) {
		names = names_quoted(r);
		error_set("cannot resolve %s: the lookup's process %s", names,
			  spawn_describe_status(run->status, why,
						sizeof(why)));
		goto fail;
	}
	if (rewrite(r, lines, &host, &addr, &port) < 0)
		goto fail;
	h.host = host.data;
	h.hostaddr = addr.data;
	h.port = port.len ? port.data : NULL;
	r->fn(r->arg, 0, &h);
	goto out;
fail:
	r->fn(r->arg, -1, NULL);
out:
	buf_release(&host);
	buf_release(&addr);
	buf_release(&port);
	free(names);
	free(lines);
	pgresolve_free(r);
}

int pgresolve_start(struct pgresolve **out, struct loop *l,
		    const char *conninfo, long timeout_ms, pgresolve_fn fn,
		    void *arg)
{
	struct pgresolve *r = xcalloc(1, sizeof(*r));
	char *names = NULL;
	int ret;

	*out = NULL;
	buf_init(&r->answer, 0);
	ret = plan(r, conninfo);
	if (ret != 0) {
		pgresolve_free(r);
		return ret;
	}
	names = names_quoted(r);
	r->timeout_msg = timeout_ms % 1000 ?
		xasprintf("cannot resolve %s: no answer within %ld ms", names,
			  timeout_ms) :
		xasprintf("cannot resolve %s: no answer within %ld s", names,
			  timeout_ms / 1000);
	free(names);
	r->fn = fn;
	r->arg = arg;
	runner_init(&r->run);
	r->run.child_main = lookup_child;
	r->run.child_arg = r;
	r->run.capture[RUNNER_OUT] = &r->answer;
	r->run.capture_max = ANSWER_MAX;
	r->run.timeout_ms = timeout_ms;
	r->run.timeout_msg = r->timeout_msg;
	if (runner_start(&r->run, l, lookup_done, r) < 0) {
		pgresolve_free(r);
		return -1;
	}
	*out = r;
	return 0;
}

void pgresolve_cancel(struct pgresolve *r)
{
	if (!r)
		return;
	runner_cancel(&r->run);
	pgresolve_free(r);
}
