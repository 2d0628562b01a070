/*
 * router.c, router.lua and routerlog.c against a real nginx (own mode,
 * started here in a temporary prefix) and real python3 upstreams: hosts
 * and their order, the answers for apps with nothing to route to, the
 * switch, the drain count, the revert, static releases, the probe
 * listener and what the public cannot do with it, router logs and who
 * may send them, and a killed master routing from its first request.
 *
 * "router serve ROOT HTTP_PORT" is a helper for the shell tests and the
 * bench: it starts nginx and reads commands on stdin, one per line,
 * answering each with one line on stdout (see serve()).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/un.h>

#include "tap.h"
#include "lib-http.h"

#include "config.h"
#include "log.h"
#include "nginx.h"
#include "router.h"
#include "routerlog.h"
#include "banned.h"

static char root[PATH_MAX];
static char addr[64];
static char probe_sock[PATH_MAX + 32];

/* --- helpers ------------------------------------------------------ */

/* A switch's answer into arg (a struct router_switch, or NULL). */
static void sw_copy(void *arg, const struct router_done *res)
{
	struct router_switch *out = arg;

	if (out)
		*out = res->sw;
}

static int count_lines(const char *text, const char *needle)
{
	int n = 0;
	const char *p = text;

	while (p && (p = strstr(p, needle))) {
		n++;
		p += strlen(needle);
	}
	return n;
}

static pid_t master_pid(void)
{
	char path[PATH_MAX + 32];
	struct buf b = BUF_INIT;
	long v = -1;

	snprintf(path, sizeof(path), "%s/nginx/logs/nginx.pid", root);
	if (read_file(&b, path, 64) == 0) {
		while (b.len && b.data[b.len - 1] == '\n')
			b.data[--b.len] = '\0';
		v = parse_long(b.data, INT_MAX);
	}
	buf_release(&b);
	error_clear();
	return (pid_t)v;
}

/* GET through a unix socket (the probe listener) */
static int probe_get(const char *path, const char *host, const char *extra,
		     struct test_resp *r)
{
	CURL *c = curl_easy_init();
	struct curl_slist *h = NULL;
	char url[512], hb[300];
	CURLcode rc;

	r->status = 0;
	r->body_len = 0;
	r->body[0] = '\0';
	r->has_hdr = 0;
	r->hdr_value[0] = '\0';
	if (!c)
		return -1;
	snprintf(url, sizeof(url), "http://probe%s", path);
	snprintf(hb, sizeof(hb), "Host: %s", host);
	h = curl_slist_append(h, hb);
	if (extra)
		h = curl_slist_append(h, extra);
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_UNIX_SOCKET_PATH, probe_sock);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 5000L);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, test_body_cb);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, r);
	curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, test_hdr_cb);
	curl_easy_setopt(c, CURLOPT_HEADERDATA, r);
	rc = curl_easy_perform(c);
	if (rc == CURLE_OK)
		curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r->status);
	curl_slist_free_all(h);
	curl_easy_cleanup(c);
	return rc == CURLE_OK ? 0 : -1;
}

/* n GETs; how many answered status with body containing want */
/*
 * A request is counted once it is logged, just after its answer: read the
 * counts once they hold still (nothing in flight, the same twice 100 ms
 * apart), or after 10 s on a slow machine.
 */
static int settled_counts(struct router *r, const char *app, int release,
			  struct router_counts *out)
{
	struct router_counts prev;
	int64_t dl = now_ms() + 10000;

	if (router_counts(r, app, release, &prev) < 0)
		return -1;
	for (;;) {
		test_sleep_ms(100);
		if (router_counts(r, app, release, out) < 0)
			return -1;
		if ((out->done == prev.done && out->inflight == 0) ||
		    now_ms() >= dl)
			return 0;
		prev = *out;
	}
}

static int count_get(int n, const char *host, long status, const char *want)
{
	struct test_resp r;
	int i, good = 0;

	memset(&r, 0, sizeof(r));
	for (i = 0; i < n; i++)
		if (test_get(addr, "/", host, NULL, &r) == 0 &&
		    r.status == status && (!want || strstr(r.body, want)))
			good++;
	return good;
}

static struct route live_route(int release, struct route_peer *p,
			       size_t n)
{
	struct route rt;

	memset(&rt, 0, sizeof(rt));
	rt.kind = ROUTE_LIVE;
	rt.release = release;
	rt.peers = p;
	rt.npeers = n;
	return rt;
}

static struct route kind_route(enum route_kind k, int retry)
{
	struct route rt;

	memset(&rt, 0, sizeof(rt));
	rt.kind = k;
	rt.retry_after = retry;
	return rt;
}

static void on_child_exit(pid_t pid, int status, void *arg)
{
	*(int *)arg = status;
}

/* A GET in a child process: *status becomes its exit status (0: it got
 * 200) once the loop's reaper sees it end. */
static pid_t get_in_child(const char *path, const char *host, int *status)
{
	pid_t pid = fork();

	*status = -1;
	if (pid > 0)
		reaper_watch(pid, on_child_exit, status);

	if (pid == 0) {
		struct test_resp r;

		memset(&r, 0, sizeof(r));
		_exit(test_get(addr, path, host, NULL, &r) == 0 &&
		      r.status == 200 ? 0 : 1);
	}
	return pid;
}

struct drain_seen {
	int called;
	struct router_drain_result res;
};

static void on_drained(void *arg, const struct router_drain_result *res)
{
	struct drain_seen *s = arg;

	s->called++;
	s->res = *res;
}

struct log_seen {
	struct buf lines;	/* "APP TEXT\n" */
	int calls;
	size_t most;		/* largest batch */
	FILE *out;		/* serve mode: lines go here */
};

static void on_log(void *arg, const struct routerlog_line *lines, size_t n)
{
	struct log_seen *s = arg;
	size_t i;

	s->calls++;
	if (n > s->most)
		s->most = n;
	for (i = 0; i < n; i++) {
		if (s->out) {
			fprintf(s->out, "%s %.*s\n", lines[i].app,
				(int)lines[i].len, lines[i].text);
			continue;
		}
		buf_addf(&s->lines, "%s %.*s\n", lines[i].app,
			 (int)lines[i].len, lines[i].text);
	}
	if (s->out)
		fflush(s->out);
}

/* Run the loop until cond or ms pass. */
#define RUN_UNTIL(l, cond, ms) do {					\
		int64_t dl_ = now_ms() + (ms);				\
		while (!(cond) && now_ms() < dl_)			\
			test_run_loop((l), 20);				\
	} while (0)

/* --- the helper for shell tests and the bench --------------------- */

/*
 * Route words: "live REL PROC:PORT...", "static REL ROOT", "stopped",
 * "noweb", "maintenance", "crashing SECS", "starting SECS".  peers and
 * names hold what rt points to.
 */
static int parse_route(char **w, size_t n, struct route *rt,
		       struct route_peer *peers, char (*names)[48],
		       size_t max)
{
	size_t i;

	memset(rt, 0, sizeof(*rt));
	if (n < 1)
		return -1;
	if (!strcmp(w[0], "live") && n >= 2) {
		size_t k = 0;

		rt->kind = ROUTE_LIVE;
		rt->release = (int)parse_long(w[1], INT_MAX);
		rt->peers = peers;
		for (i = 2; i < n && k < max; i++) {
			char *colon = strrchr(w[i], ':');

			if (!strcmp(w[i], "fallback") && i + 1 < n) {
				rt->npeers = k;
				rt->fallback = peers + k;
				rt->fallback_release =
					(int)parse_long(w[++i], INT_MAX);
				continue;
			}
			if (!colon || (size_t)(colon - w[i]) >= 48)
				return -1;
			memcpy(names[k], w[i], (size_t)(colon - w[i]));
			names[k][colon - w[i]] = '\0';
			peers[k].proc = names[k];
			peers[k].port = (int)parse_long(colon + 1, 65535);
			k++;
		}
		if (rt->fallback)
			rt->nfallback = k - rt->npeers;
		else
			rt->npeers = k;
		return 0;
	}
	if (!strcmp(w[0], "static") && n == 3) {
		rt->kind = ROUTE_STATIC;
		rt->release = (int)parse_long(w[1], INT_MAX);
		rt->root = w[2];
		return 0;
	}
	if (!strcmp(w[0], "stopped"))
		rt->kind = ROUTE_STOPPED;
	else if (!strcmp(w[0], "noweb"))
		rt->kind = ROUTE_NO_WEB;
	else if (!strcmp(w[0], "maintenance"))
		rt->kind = ROUTE_MAINTENANCE;
	else if (!strcmp(w[0], "crashing") || !strcmp(w[0], "starting")) {
		rt->kind = w[0][0] == 'c' ? ROUTE_CRASHING : ROUTE_STARTING;
		rt->retry_after = n > 1 ? (int)parse_long(w[1], 3600) : 0;
	} else
		return -1;
	return 0;
}

struct serve_state {
	struct loop *loop;
	struct nginx *ng;
	struct router *r;
	struct routerlog *rl;
	struct log_seen logs;
	struct buf in;
	struct router_switch last[1];
	int pending_drains;
};

static void served_drain(void *arg, const struct router_drain_result *res)
{
	struct serve_state *s = arg;

	s->pending_drains--;
	printf("drained %d finished %ld left %ld ms %ld\n", res->drained,
	       res->finished, res->left, res->elapsed_ms);
	fflush(stdout);
}

static void serve_command(struct serve_state *s, char *line)
{
	char *w[ROUTER_MAX_PEERS + 8];
	struct route_peer peers[64];
	char names[64][48];
	char *hosts[16];
	const char *first = NULL;
	size_t n = 0, nh = 0, i;
	struct route rt;
	char *tok, *save = NULL;
	int rc = 0;
	int64_t t0 = now_ms();

	for (save = line, tok = str_token(&save, " \t"); tok && n < ARRAY_SIZE(w);
	     tok = str_token(&save, " \t")) {
		if (!strncmp(tok, "first=", 6)) {
			first = tok + 6;
			continue;
		}
		if (!strncmp(tok, "hosts=", 6)) {
			char *h, *hs = NULL;

			for (hs = tok + 6, h = str_token(&hs, ","); h && nh < 16;
			     h = str_token(&hs, ","))
				hosts[nh++] = h;
			continue;
		}
		w[n++] = tok;
	}
	if (n == 0)
		return;
	if ((!strcmp(w[0], "set") || !strcmp(w[0], "switch")) && n >= 3) {
		if (parse_route(w + 2, n - 2, &rt, peers, names, 64) < 0) {
			printf("error: bad route\n");
			goto out;
		}
		if (w[0][1] == 'e') {
			rc = router_app_set(s->r, w[1], hosts, nh, &rt);
		} else {
			rc = router_switch(s->r, w[1], hosts, nh, &rt, sw_copy,
					   s->last, NULL);
		}
		if (rc < 0) {
			printf("error: %s\n", error_last());
		} else if (w[0][1] == 'w') {
			long first_us = -1;

			/* first=TEXT: how long until a request gets TEXT */
			if (first) {
				struct timespec a, b;
				struct test_resp resp;
				char host[128];
				int64_t dl = now_ms() + 5000;

				memset(&resp, 0, sizeof(resp));
				snprintf(host, sizeof(host), "%s.localhost",
					 w[1]);
				clock_gettime(CLOCK_MONOTONIC, &a);
				while (now_ms() < dl &&
				       (test_get(addr, "/", host, NULL, &resp) <
					0 || !strstr(resp.body, first)))
					;
				clock_gettime(CLOCK_MONOTONIC, &b);
				if (strstr(resp.body, first))
					first_us = (b.tv_sec - a.tv_sec) *
						1000000L + (b.tv_nsec -
							    a.tv_nsec) / 1000;
			}
			printf("ok was %d inflight %ld done %ld ms %lld "
			       "first_us %ld\n", s->last->release,
			       s->last->inflight, s->last->done,
			       (long long)(now_ms() - t0), first_us);
		} else {
			printf("ok\n");
		}
	} else if (!strcmp(w[0], "drain") && n == 4) {
		s->pending_drains++;
		router_drain_start(s->r, s->loop, w[1],
				   (int)parse_long(w[2], INT_MAX), s->last,
				   parse_long(w[3], INT_MAX), served_drain, s);
		return;	/* answered when it is done */
	} else if (!strcmp(w[0], "revert") && n == 2) {
		rc = router_revert(s->r, w[1], NULL, NULL, NULL);
		printf(rc < 0 ? "error: %s\n" : "ok\n", error_last());
	} else if (!strcmp(w[0], "remove") && n == 2) {
		rc = router_app_remove(s->r, w[1]);
		printf(rc < 0 ? "error: %s\n" : "ok\n", error_last());
	} else if (!strcmp(w[0], "counts") && n == 3) {
		struct router_counts c;

		rc = router_counts(s->r, w[1], (int)parse_long(w[2], INT_MAX),
				   &c);
		if (rc < 0)
			printf("error: %s\n", error_last());
		else
			printf("counts %ld %ld\n", c.inflight, c.done);
	} else if (!strcmp(w[0], "reloads") && n == 1) {
		printf("reloads %lu\n", nginx_reloads(s->ng));
	} else if (!strcmp(w[0], "master") && n == 1) {
		pid_t m = master_pid();

		/* a caller may signal it: never a pid that is not one */
		if (m > 1)
			printf("master %d\n", (int)m);
		else
			printf("error: no nginx master\n");
	} else if (!strcmp(w[0], "logs") && n == 2) {
		s->logs.out = fopen(w[1], "a");
		if (!s->logs.out ||
		    routerlog_open(&s->rl, s->loop, nginx_log_socket(s->ng),
				   on_log, &s->logs) < 0) {
			printf("error: %s\n", error_last());
		} else {
			/* as root the workers are not the engine's user */
			routerlog_allow_uid(s->rl, router_worker_uid(
					    nginx_router(s->ng)));
			router_log_start(s->r, s->loop, on_log, &s->logs);
			printf("ok\n");
		}
	} else if (!strcmp(w[0], "bench-apps") && n == 2) {
		/* N new apps: microseconds for the first and the last */
		long k, count = parse_long(w[1], 100000), first_us = 0;
		long last_us = 0;
		struct route_peer p = { "web.1", 20000 };
		char name[64];

		for (k = 1; k <= count; k++) {
			struct timespec a, b;

			snprintf(name, sizeof(name), "bench-a%ld", k);
			rt = live_route(1, &p, 1);
			clock_gettime(CLOCK_MONOTONIC, &a);
			if (router_app_set(s->r, name, NULL, 0, &rt) < 0)
				break;
			clock_gettime(CLOCK_MONOTONIC, &b);
			last_us = (b.tv_sec - a.tv_sec) * 1000000L +
				(b.tv_nsec - a.tv_nsec) / 1000;
			if (k == 1)
				first_us = last_us;
		}
		if (k > count)
			printf("us %ld %ld\n", first_us, last_us);
		else
			printf("error: %s\n", error_last());
	} else if (!strcmp(w[0], "bench-set") && n == 2) {
		/* N switches of app bench: microseconds each, p50 p99 max */
		long k, count = parse_long(w[1], 1000000);
		long *us = xcalloc((size_t)count + 1, sizeof(long));
		struct route_peer p = { "web.1", 20000 };

		for (k = 0; k < count; k++) {
			struct timespec a, b;

			p.port = 20000 + (int)(k % 2);
			rt = live_route((int)k + 1, &p, 1);
			clock_gettime(CLOCK_MONOTONIC, &a);
			if (router_switch(s->r, "bench", NULL, 0, &rt,
					  sw_copy, NULL, NULL) < 0)
				break;
			clock_gettime(CLOCK_MONOTONIC, &b);
			us[k] = (b.tv_sec - a.tv_sec) * 1000000L +
				(b.tv_nsec - a.tv_nsec) / 1000;
		}
		for (i = 1; i < (size_t)k; i++) {
			long v = us[i];
			size_t j = i;

			while (j > 0 && us[j - 1] > v) {
				us[j] = us[j - 1];
				j--;
			}
			us[j] = v;
		}
		if (k == count && count > 0)
			printf("us %ld %ld %ld\n", us[count / 2],
			       us[count * 99 / 100], us[count - 1]);
		else
			printf("error: %s\n", error_last());
		free(us);
	} else {
		printf("error: unknown command\n");
	}
out:
	fflush(stdout);
}

static void on_stdin(struct loop *l, int fd, unsigned ev, void *arg)
{
	struct serve_state *s = arg;
	char chunk[4096];
	ssize_t k = read(fd, chunk, sizeof(chunk));
	char *nl;

	if (k <= 0) {
		if (k < 0 && errno == EAGAIN)
			return;
		loop_del_fd(l, fd);
		loop_stop(l);
		return;
	}
	buf_add(&s->in, chunk, (size_t)k);
	while (s->in.len && (nl = memchr(s->in.data, '\n', s->in.len))) {
		size_t len = (size_t)(nl - s->in.data);
		char *line = xstrndup(s->in.data, len);

		buf_consume(&s->in, len + 1);
		serve_command(s, line);
		free(line);
	}
}

static void on_signal(struct loop *lp, int fd, unsigned ev, void *arg)
{
	struct signalfd_siginfo si;

	while (read(fd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
		if (si.ssi_signo == SIGCHLD)
			reaper_reap();
		else
			loop_stop(lp);
	}
}

static int serve(int argc, char **argv)
{
	struct config cfg;
	struct serve_state s;
	sigset_t set;
	int sfd;
	char listen[64];

	if (argc < 2)
		fatalx("usage: router serve ROOT HTTP_PORT");
	log_init(0, "router-test");
	if (snprintf(root, sizeof(root), "%s", argv[0]) >= (int)sizeof(root))
		fatalx("root too long");
	snprintf(addr, sizeof(addr), "127.0.0.1:%s", argv[1]);
	memset(&s, 0, sizeof(s));
	s.loop = loop_new();
	config_init(&cfg, argv[0]);
	snprintf(listen, sizeof(listen), "127.0.0.1:%s", argv[1]);
	config_set(&cfg, "http_listen", listen);
	sigemptyset(&set);
	sigaddset(&set, SIGCHLD);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigprocmask(SIG_BLOCK, &set, NULL);
	sfd = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
	if (!s.loop || sfd < 0 ||
	    loop_add_fd(s.loop, sfd, LOOP_READ, on_signal, NULL) < 0)
		fatal("setup");
	if (nginx_init(&s.ng, &cfg, s.loop) < 0 || nginx_start(s.ng) < 0)
		fatalx("%s", error_last());
	s.r = nginx_router(s.ng);
	set_nonblock(0);
	if (loop_add_fd(s.loop, 0, LOOP_READ, on_stdin, &s) < 0)
		fatal("stdin");
	printf("ready\n");
	fflush(stdout);
	loop_run(s.loop);
	router_log_stop(s.r);
	routerlog_free(s.rl);
	if (s.logs.out)
		fclose(s.logs.out);
	nginx_free(s.ng);
	loop_free(s.loop);
	config_release(&cfg);
	buf_release(&s.in);
	return 0;
}

/* --- the unit test ------------------------------------------------ */

static void test_hosts(struct router *r)
{
	struct route rt = kind_route(ROUTE_STOPPED, 0);
	char *bad[] = { "a.*.b" }, *bad2[] = { "x y" }, *bad3[] = { "a..b" };
	char *bad4[] = { "a.b." }, *mine[] = { "www.one.test", "*.one.test" };
	char *steal[] = { "WWW.One.Test" }, *steal2[] = { "*.one.test" };
	char *deeper[] = { "*.deep.one.test" };
	int rc;

	ok(router_hosts_check(r, "one", bad, 1) == ERR_INVALID &&
	   !strcmp(error_last(), "invalid host 'a.*.b'"),
	   "a wildcard that is not a leading '*.' is refused: %s",
	   error_last());
	ok(router_hosts_check(r, "one", bad2, 1) == ERR_INVALID &&
	   router_hosts_check(r, "one", bad3, 1) == ERR_INVALID &&
	   router_hosts_check(r, "one", bad4, 1) == ERR_INVALID,
	   "spaces, empty labels and a trailing dot are refused");
	ok(router_app_set(r, "../x", NULL, 0, &rt) == ERR_INVALID,
	   "a bad app name is refused: %s", error_last());
	ok(router_app_set(r, "one", mine, 2, &rt) == 0,
	   "app one claims www.one.test and *.one.test: %s", error_last());
	rc = router_app_set(r, "two", steal, 1, &rt);
	ok(rc == ERR_EXISTS &&
	   !strcmp(error_last(), "host 'www.one.test' belongs to app 'one'"),
	   "claiming another app's host is refused, naming the owner: %s",
	   error_last());
	ok(router_app_set(r, "two", steal2, 1, &rt) == ERR_EXISTS,
	   "and so is its wildcard");
	ok(count_get(1, "two.localhost", 404, "no app for this host") == 1,
	   "the refused app was not created");
	ok(router_app_set(r, "two", deeper, 1, &rt) == 0,
	   "a deeper wildcard is another app's to claim");
}

struct async_seen {
	int calls, ok;
	struct router_switch sw;
};

static void on_async_done(void *arg, const struct router_done *res)
{
	struct async_seen *seen = arg;

	seen->calls++;
	seen->ok = res->ok;
	seen->sw = res->sw;
}

struct post_seen {
	int *order;		/* [0]: how many; then who was called */
	int who, calls, ok, status;
	char answer[64];
};

static void on_post_done(void *arg, const struct router_done *res)
{
	struct post_seen *seen = arg;

	seen->calls++;
	seen->ok = res->ok;
	seen->status = res->status;
	snprintf(seen->answer, sizeof(seen->answer), "%s",
		 res->answer ? res->answer : "");
	seen->order[++seen->order[0]] = seen->who;
}

/* router_post(): in the queue, in order with the changes around it. */
static void test_post(struct loop *l, struct router *r)
{
	int order[8] = { 0 };
	struct post_seen ch = { order, 1, 0, 0, 0, "" };
	struct post_seen good = { order, 2, 0, 0, 0, "" };
	struct post_seen bad = { order, 3, 0, 0, 0, "" };
	struct post_seen after = { order, 4, 0, 0, 0, "" };
	static const char table[] = "# berth certificates: none\n";
	struct route rt = kind_route(ROUTE_MAINTENANCE, 0);
	uint64_t id = 0;

	ok(router_switch(r, "aq2", NULL, 0, &rt, on_post_done, &ch, &id)
	   == 0, "a change, then requests of another module");
	ok(router_post(r, "/certs", table, sizeof(table) - 1, on_post_done,
		       &good) != 0 && good.calls == 0,
	   "router_post() returns before nginx answers");
	router_post(r, "/no-such-path", "x", 1, on_post_done, &bad);
	rt = kind_route(ROUTE_STOPPED, 0);
	router_app_set(r, "aq2", NULL, 0, &rt);
	router_when_applied(r, on_post_done, &after);
	RUN_UNTIL(l, after.calls == 1, 10000);
	ok(order[0] == 4 && order[1] == 1 && order[2] == 2 &&
	   order[3] == 3 && order[4] == 4,
	   "answered in the order queued (%d %d %d %d)", order[1], order[2],
	   order[3], order[4]);
	ok(good.ok && good.status == 200, "nginx took the post (%d)",
	   good.status);
	ok(!bad.ok && bad.status == 404,
	   "a post nginx refuses: not ok, with its status (%d)", bad.status);
	ok(after.ok && router_in_sync(r),
	   "a refused post leaves the routing table in sync");
	ok(count_get(2, "aq2.localhost", 503, "app is stopped") == 2,
	   "the change after the posts is the one nginx has");
}

/*
 * With a loop: no call waits for nginx nor calls back inside itself;
 * the requests go out in order, and a cancelled wait is never called.
 */
static void test_async(struct loop *l, struct router *r, int p1, int p2)
{
	struct route_peer pa = { "web.1", p1 }, pb = { "web.1", p2 };
	struct async_seen sw, last, gone;
	struct route rt;
	uint64_t id = 0, cancelled;
	int i;

	memset(&sw, 0, sizeof(sw));
	memset(&last, 0, sizeof(last));
	memset(&gone, 0, sizeof(gone));
	router_set_loop(r, l);
	rt = live_route(1, &pa, 1);
	ok(router_app_set(r, "aq", NULL, 0, &rt) == 0 &&
	   router_pending(r) == 1, "a change is queued, not waited for");
	rt = live_route(2, &pb, 1);
	ok(router_switch(r, "aq", NULL, 0, &rt, on_async_done, &sw, &id) == 0
	   && id != 0 && sw.calls == 0,
	   "the switch returns before nginx answers: no callback inside");
	cancelled = router_when_applied(r, on_async_done, &gone);
	router_wait_cancel(r, cancelled);
	/* many changes in a row: the last one wins, in order */
	for (i = 0; i < 20; i++) {
		rt = kind_route(i % 2 ? ROUTE_STOPPED : ROUTE_MAINTENANCE, 0);
		router_app_set(r, "aq2", NULL, 0, &rt);
	}
	rt = kind_route(ROUTE_STOPPED, 0);
	router_app_set(r, "aq2", NULL, 0, &rt);
	router_when_applied(r, on_async_done, &last);
	RUN_UNTIL(l, last.calls == 1, 10000);
	ok(sw.calls == 1 && sw.ok && sw.sw.had_live && sw.sw.release == 1,
	   "the switch's callback: taken, from release %d", sw.sw.release);
	ok(last.calls == 1 && last.ok && router_pending(r) == 0 &&
	   router_in_sync(r), "every request answered, nginx in sync");
	ok(gone.calls == 0, "a cancelled wait is not called");
	ok(count_get(4, "aq.localhost", 200, "slot") == 4,
	   "the switched app answers");
	ok(count_get(2, "aq2.localhost", 503, "app is stopped") == 2,
	   "the last of 21 changes is the one nginx has");
	memset(&last, 0, sizeof(last));
	ok(router_revert(r, "aq", on_async_done, &last, &id) == 0 &&
	   last.calls == 0, "a revert returns before nginx answers");
	RUN_UNTIL(l, last.calls == 1, 10000);
	ok(last.ok, "the revert taken");
	test_post(l, r);
	router_app_remove(r, "aq");
	router_app_remove(r, "aq2");
	/* back to waiting: what is queued goes out first */
	router_set_loop(r, NULL);
	ok(router_pending(r) == 0 && router_in_sync(r),
	   "without the loop, the queue is sent at once");
}

static void test_states(struct router *r)
{
	struct route rt;
	struct test_resp resp;

	memset(&resp, 0, sizeof(resp));
	ok(count_get(1, "nobody.localhost", 404, "no app for this host") == 1,
	   "unknown host: 404 no app for this host");
	rt = kind_route(ROUTE_STOPPED, 0);
	ok(router_app_set(r, "st", NULL, 0, &rt) == 0 &&
	   count_get(20, "st.localhost", 503, "app is stopped") == 20,
	   "stopped app: 503 app is stopped, from every worker at once");
	snprintf(resp.hdr_name, sizeof(resp.hdr_name), "Content-Type");
	ok(test_get(addr, "/", "st.localhost", NULL, &resp) == 0 &&
	   !strcmp(resp.hdr_value, "text/plain") &&
	   !strcmp(resp.body, "app is stopped\n"),
	   "a short plain page (%s)", resp.hdr_value);
	rt = kind_route(ROUTE_NO_WEB, 0);
	ok(router_app_set(r, "st", NULL, 0, &rt) == 0 &&
	   count_get(5, "st.localhost", 503, "no web process") == 5,
	   "no web process: 503");
	rt = kind_route(ROUTE_MAINTENANCE, 0);
	ok(router_app_set(r, "st", NULL, 0, &rt) == 0 &&
	   count_get(5, "st.localhost", 503, "maintenance") == 5,
	   "maintenance: 503");
	rt = kind_route(ROUTE_CRASHING, 30);
	snprintf(resp.hdr_name, sizeof(resp.hdr_name), "Retry-After");
	ok(router_app_set(r, "st", NULL, 0, &rt) == 0 &&
	   test_get(addr, "/", "st.localhost", NULL, &resp) == 0 &&
	   resp.status == 503 && strstr(resp.body, "app is crashing") &&
	   !strcmp(resp.hdr_value, "30"),
	   "crash-looping: 503 with Retry-After: %s", resp.hdr_value);
	rt = kind_route(ROUTE_CRASHING, 4000);
	ok(router_app_set(r, "st", NULL, 0, &rt) == ERR_INVALID,
	   "a Retry-After beyond an hour is refused");
}

/* Wildcards and the order of matching, with three apps on real ports. */
static void test_matching(struct router *r, int port_a, int port_b)
{
	struct route_peer pa = { "web.1", port_a }, pb = { "web.1", port_b };
	struct route rt;
	char *one[] = { "*.one.test" }, *two[] = { "*.deep.one.test" };
	char *three[] = { "exact.deep.one.test" };
	char wa[32], wb[32];

	snprintf(wa, sizeof(wa), "slot %d", port_a);
	snprintf(wb, sizeof(wb), "slot %d", port_b);
	rt = live_route(1, &pa, 1);
	ok(router_app_set(r, "one", one, 1, &rt) == 0, "one: *.one.test");
	rt = live_route(1, &pb, 1);
	ok(router_app_set(r, "two", two, 1, &rt) == 0,
	   "two: *.deep.one.test");
	rt = kind_route(ROUTE_STOPPED, 0);
	ok(router_app_set(r, "three", three, 1, &rt) == 0,
	   "three: exact.deep.one.test");
	ok(count_get(1, "a.one.test", 200, wa) == 1 &&
	   count_get(1, "a.b.one.test", 200, wa) == 1,
	   "*.one.test matches any depth");
	ok(count_get(1, "x.deep.one.test", 200, wb) == 1,
	   "the longest wildcard wins");
	ok(count_get(1, "exact.deep.one.test", 503, "stopped") == 1,
	   "an exact host beats every wildcard");
	ok(count_get(1, "one.test", 404, NULL) == 1,
	   "*.one.test does not match one.test itself");
	ok(count_get(1, "A.ONE.TEST", 200, wa) == 1,
	   "hosts match without regard to case");
	ok(count_get(1, "a.one.test:8080", 200, wa) == 1,
	   "a port in Host is ignored");
	rt = live_route(1, &pa, 1);
	ok(router_app_set(r, "one", NULL, 0, &rt) == 0 &&
	   count_get(1, "a.one.test", 404, NULL) == 1 &&
	   count_get(1, "one.localhost", 200, wa) == 1,
	   "hosts dropped from an app stop routing to it");
	ok(router_app_remove(r, "two") == 0 &&
	   router_app_remove(r, "three") == 0 &&
	   count_get(1, "x.deep.one.test", 404, NULL) == 1,
	   "removed apps take their hosts along");
	rt = live_route(1, &pa, 1);
	ok(router_app_set(r, "one", one, 1, &rt) == 0 &&
	   router_app_rename(r, "one", "uno") == 0 &&
	   count_get(1, "a.one.test", 200, wa) == 1 &&
	   count_get(1, "uno.localhost", 200, wa) == 1 &&
	   count_get(1, "one.localhost", 404, NULL) == 1,
	   "a renamed app keeps its hosts and route; NAME.DOMAIN follows: %s",
	   error_last());
	rt = kind_route(ROUTE_STOPPED, 0);
	ok(router_app_set(r, "two", NULL, 0, &rt) == 0 &&
	   router_app_rename(r, "uno", "two") == ERR_EXISTS &&
	   router_app_rename(r, "gone", "three") == 0 &&
	   router_app_rename(r, "uno", "../x") == ERR_INVALID &&
	   count_get(1, "a.one.test", 200, wa) == 1,
	   "a rename onto a name in the table, or to a bad name, changes nothing");
	ok(router_app_remove(r, "two") == 0 && router_app_remove(r, "uno") == 0,
	   "and they go");
}

static void test_switch(struct loop *l, struct router *r, int p1, int p2)
{
	struct route_peer a = { "web.1", p1 }, b = { "web.1", p2 };
	struct route rt;
	struct router_switch sw;
	struct router_counts c;
	struct drain_seen seen;
	struct router_drain *d;
	char w1[32], w2[32];
	pid_t slow;
	int st = -1;

	snprintf(w1, sizeof(w1), "slot %d", p1);
	snprintf(w2, sizeof(w2), "slot %d", p2);
	rt = live_route(1, &a, 1);
	ok(router_switch(r, "sw", NULL, 0, &rt, sw_copy, NULL, NULL) == ERR_NOTFOUND,
	   "a switch needs an app: %s", error_last());
	ok(router_app_set(r, "sw", NULL, 0, &rt) == 0 &&
	   count_get(20, "sw.localhost", 200, w1) == 20,
	   "release 1 serves");
	/* a request is counted done in its log phase, after its answer */
	RUN_UNTIL(l, router_counts(r, "sw", 1, &c) == 0 && c.done >= 20,
		  5000);
	ok(router_counts(r, "sw", 1, &c) == 0 && c.inflight == 0 &&
	   c.done >= 20, "nginx counted its requests (%ld done)", c.done);
	slow = get_in_child("/sleep/700", "sw.localhost", &st);
	RUN_UNTIL(l, router_counts(r, "sw", 1, &c) == 0 && c.inflight == 1,
		  5000);
	ok(c.inflight == 1, "a slow request is in flight on release 1");
	{
		struct timespec t0, t1;

		rt = live_route(2, &b, 1);
		clock_gettime(CLOCK_MONOTONIC, &t0);
		ok(router_switch(r, "sw", NULL, 0, &rt, sw_copy, &sw, NULL) == 0,
		   "switch to release 2: %s", error_last());
		clock_gettime(CLOCK_MONOTONIC, &t1);
		printf("# a switch took %ld us\n",
		       (long)((t1.tv_sec - t0.tv_sec) * 1000000L +
			      (t1.tv_nsec - t0.tv_nsec) / 1000));
	}
	ok(sw.had_live && sw.release == 1 && sw.inflight == 1,
	   "it reports release 1 with one request in flight");
	ok(count_get(30, "sw.localhost", 200, w2) == 30,
	   "every new request goes to release 2 at once");
	memset(&seen, 0, sizeof(seen));
	d = router_drain_start(r, l, "sw", sw.release, &sw, 5000, on_drained,
			       &seen);
	ok(d && seen.called == 0, "a drain starts, without calling back yet");
	RUN_UNTIL(l, seen.called && st != -1, 8000);
	ok(seen.called == 1 && seen.res.drained && seen.res.finished == 1 &&
	   seen.res.elapsed_ms < 5000,
	   "release 1 drained: %ld request finished in %ld ms",
	   seen.res.finished, seen.res.elapsed_ms);
	ok(WIFEXITED(st) && WEXITSTATUS(st) == 0,
	   "and the slow request got its answer");

	/* a drain that runs out of time */
	slow = get_in_child("/sleep/1500", "sw.localhost", &st);
	RUN_UNTIL(l, router_counts(r, "sw", 2, &c) == 0 && c.inflight == 1,
		  5000);
	rt = live_route(3, &a, 1);
	ok(router_switch(r, "sw", NULL, 0, &rt, sw_copy, &sw, NULL) == 0 &&
	   sw.release == 2 && sw.inflight == 1, "release 3 on the first port");
	memset(&seen, 0, sizeof(seen));
	router_drain_start(r, l, "sw", sw.release, &sw, 200, on_drained,
			   &seen);
	RUN_UNTIL(l, seen.called, 5000);
	ok(seen.called == 1 && !seen.res.drained && seen.res.left == 1,
	   "a drain past its time says what is left (%ld)", seen.res.left);
	RUN_UNTIL(l, st != -1, 5000);
	ok(slow > 0 && st == 0, "and that request is answered too");

	ok(router_revert(r, "sw", NULL, NULL, NULL) == 0 &&
	   count_get(20, "sw.localhost", 200, w2) == 20,
	   "revert: release 2 serves again at once");
	ok(router_revert(r, "sw", NULL, NULL, NULL) == ERR_NOTFOUND,
	   "only one step back: %s", error_last());
	/* cancelling a drain calls nothing */
	memset(&seen, 0, sizeof(seen));
	d = router_drain_start(r, l, "sw", 2, NULL, 1000, on_drained, &seen);
	router_drain_cancel(d);
	test_run_loop(l, 100);
	ok(seen.called == 0, "a cancelled drain does not call back");

	/* nginx writes its lines every 100 ms: those of requests that
	 * ended just before a switch are read after it, and their end
	 * time says they were not in flight at the switch */
	ok(count_get(20, "sw.localhost", 200, w2) == 20,
	   "a burst of requests on release 2");
	rt = live_route(4, &a, 1);
	ok(router_switch(r, "sw", NULL, 0, &rt, sw_copy, &sw, NULL) == 0 &&
	   sw.release == 2, "release 4 right after it");
	memset(&seen, 0, sizeof(seen));
	router_drain_start(r, l, "sw", sw.release, &sw, 5000, on_drained,
			   &seen);
	RUN_UNTIL(l, seen.called, 8000);
	ok(seen.called == 1 && seen.res.drained && seen.res.finished == 0,
	   "release 2 drained with none of them counted finished during "
	   "the drain (%ld)", seen.res.finished);
	ok(router_forget(r, "sw", 1) == 0 &&
	   router_counts(r, "sw", 1, &c) == 0 && c.done == 0,
	   "a stopped release's counts can be dropped");
}

/* Two web processes, and one of them dies. */
static void test_peers(struct router *r, int p1, int p2, pid_t *b)
{
	struct route_peer two[] = { { "web.1", p1 }, { "web.2", p2 } };
	struct route rt = live_route(7, two, 2);
	char w1[32], w2[32];
	struct test_resp resp;
	int n1 = 0, n2 = 0, i;

	memset(&resp, 0, sizeof(resp));
	snprintf(w1, sizeof(w1), "slot %d", p1);
	snprintf(w2, sizeof(w2), "slot %d", p2);
	ok(router_app_set(r, "pair", NULL, 0, &rt) == 0, "two web processes");
	for (i = 0; i < 20; i++) {
		if (test_get(addr, "/", "pair.localhost", NULL, &resp) < 0)
			continue;
		n1 += resp.status == 200 && strstr(resp.body, w1) != NULL;
		n2 += resp.status == 200 && strstr(resp.body, w2) != NULL;
	}
	ok(n1 > 0 && n2 > 0 && n1 + n2 == 20,
	   "requests go to both (%d and %d of 20)", n1, n2);
	test_stop_child(*b);
	*b = -1;
	ok(count_get(20, "pair.localhost", 200, w1) == 20,
	   "one dies: every GET is answered by the other");
}

/* The watch: the new release's port is dead; the old one takes over. */
static void test_watch(struct router *r, int live, int dead)
{
	struct route_peer a = { "web.1", live }, d = { "web.1", dead };
	struct route rt = live_route(1, &a, 1);
	struct router_counts c1, c2, f1, f2;
	char want[32];

	snprintf(want, sizeof(want), "slot %d", live);
	ok(router_app_set(r, "wa", NULL, 0, &rt) == 0 &&
	   count_get(5, "wa.localhost", 200, want) == 5, "release 1 serves");
	rt = live_route(2, &d, 1);
	rt.fallback = &a;
	rt.nfallback = 1;
	rt.fallback_release = 1;
	ok(settled_counts(r, "wa", 1, &c1) == 0 &&
	   settled_counts(r, "wa", 2, &c2) == 0 &&
	   router_switch(r, "wa", NULL, 0, &rt, sw_copy, NULL, NULL) == 0,
	   "switch to release 2 with release 1 as the fallback: %s",
	   error_last());
	ok(count_get(30, "wa.localhost", 200, want) == 30,
	   "release 2 is dead: every request is answered by release 1");
	ok(settled_counts(r, "wa", 1, &f1) == 0 &&
	   settled_counts(r, "wa", 2, &f2) == 0 &&
	   f1.done - c1.done == 30 && f2.done == c2.done &&
	   f1.inflight == 0 && f2.inflight == 0,
	   "and they count for release 1 (%ld), not 2 (%ld)",
	   f1.done - c1.done, f2.done - c2.done);
	ok(router_revert(r, "wa", NULL, NULL, NULL) == 0 &&
	   count_get(10, "wa.localhost", 200, want) == 10,
	   "the rollback: release 1 alone again");
	rt.fallback_release = 2;
	ok(router_app_set(r, "wa", NULL, 0, &rt) == ERR_INVALID,
	   "a release cannot be its own fallback");
}

static void test_static(struct router *r)
{
	char d1[PATH_MAX + 16], d2[PATH_MAX + 16], f[PATH_MAX + 32];
	struct route rt;
	struct test_resp resp;
	int okay = 1;

	memset(&resp, 0, sizeof(resp));
	snprintf(d1, sizeof(d1), "%s/site1", root);
	snprintf(d2, sizeof(d2), "%s/site2", root);
	okay &= mkdir(d1, 0755) == 0 && mkdir(d2, 0755) == 0;
	snprintf(f, sizeof(f), "%s/index.html", d1);
	okay &= write_file_atomic(f, "one\n", 4, 0644) == 0;
	snprintf(f, sizeof(f), "%s/index.html", d2);
	okay &= write_file_atomic(f, "two\n", 4, 0644) == 0;
	snprintf(f, sizeof(f), "%s/leak", d2);
	okay &= symlink("/etc/passwd", f) == 0;
	memset(&rt, 0, sizeof(rt));
	rt.kind = ROUTE_STATIC;
	rt.release = 1;
	rt.root = d1;
	ok(okay && router_app_set(r, "site", NULL, 0, &rt) == 0 &&
	   count_get(10, "site.localhost", 200, "one") == 10,
	   "a static release is served from the table");
	rt.release = 2;
	rt.root = d2;
	ok(router_switch(r, "site", NULL, 0, &rt, sw_copy, NULL, NULL) == 0 &&
	   count_get(10, "site.localhost", 200, "two") == 10,
	   "the next one is served at once");
	ok(test_get(addr, "/leak", "site.localhost", NULL, &resp) == 0 &&
	   resp.status != 200 && !strstr(resp.body, "root:"),
	   "a symlink out of the site is refused (%ld)", resp.status);
	rt.root = "/srv/with space";
	ok(router_app_set(r, "site", NULL, 0, &rt) == ERR_INVALID,
	   "a root that could break the table is refused");
	rt.root = "/srv/../etc";
	ok(router_app_set(r, "site", NULL, 0, &rt) == ERR_INVALID,
	   "and so is one with '..'");
}

/*
 * Keter's static-files beside a webapp: the static hosts get the folder,
 * the app's other hosts its web processes; a switch and a revert move
 * both in one change; dotfiles are never served.
 */
static void test_static_beside(struct router *r, int p1, int p2)
{
	char d1[PATH_MAX + 16], d2[PATH_MAX + 16], f[PATH_MAX + 32];
	char w1[32], w2[32];
	struct route_peer pa = { "web.1", p1 }, pb = { "web.1", p2 };
	char *hosts[] = { "www.mix.test", "static.mix.test",
			  "*.cdn.mix.test" };
	char *shosts[] = { "static.mix.test", "*.cdn.mix.test" };
	char *notmine[] = { "other.mix.test" }, *steal[] = { "static.mix.test" };
	struct route rt;
	struct test_resp resp;
	struct buf table = BUF_INIT;
	int okay = 1;

	memset(&resp, 0, sizeof(resp));
	snprintf(w1, sizeof(w1), "slot %d", p1);
	snprintf(w2, sizeof(w2), "slot %d", p2);
	snprintf(d1, sizeof(d1), "%s/mix1", root);
	snprintf(d2, sizeof(d2), "%s/mix2", root);
	okay &= mkdir(d1, 0755) == 0 && mkdir(d2, 0755) == 0;
	snprintf(f, sizeof(f), "%s/index.html", d1);
	okay &= write_file_atomic(f, "files one\n", 10, 0644) == 0;
	snprintf(f, sizeof(f), "%s/.env", d1);
	okay &= write_file_atomic(f, "SECRET=1\n", 9, 0644) == 0;
	snprintf(f, sizeof(f), "%s/index.html", d2);
	okay &= write_file_atomic(f, "files two\n", 10, 0644) == 0;
	rt = live_route(1, &pa, 1);
	rt.static_root = d1;
	rt.static_hosts = shosts;
	rt.nstatic_hosts = 2;
	ok(okay && router_app_set(r, "mix", hosts, 3, &rt) == 0,
	   "an app with web processes and a static folder: %s",
	   error_last());
	ok(count_get(5, "static.mix.test", 200, "files one") == 5 &&
	   count_get(5, "a.cdn.mix.test", 200, "files one") == 5,
	   "its static hosts (exact and wildcard) get the folder");
	ok(count_get(5, "www.mix.test", 200, w1) == 5 &&
	   count_get(5, "mix.localhost", 200, w1) == 5,
	   "its other hosts get the web processes");
	ok(test_get(addr, "/.env", "static.mix.test", NULL, &resp) == 0 &&
	   resp.status == 404 && !strstr(resp.body, "SECRET"),
	   "a dotfile in the folder is not served (%ld)", resp.status);
	ok(probe_get("/", "static.mix.test", NULL, &resp) == 0 &&
	   resp.status == 200 && strstr(resp.body, "files one") &&
	   probe_get("/", "www.mix.test", NULL, &resp) == 0 &&
	   strstr(resp.body, w1),
	   "the probe listener routes them alike");
	router_render(r, &table);
	ok(table.data && strstr(table.data, "\nhost static.mix.test mix static\n") &&
	   strstr(table.data, "\nhost www.mix.test mix\n") &&
	   strstr(table.data, "\nstatic mix 1 /"),
	   "the table names the folder and its hosts");
	buf_release(&table);
	rt = live_route(2, &pb, 1);
	rt.static_root = d2;
	rt.static_hosts = shosts;
	rt.nstatic_hosts = 2;
	ok(router_switch(r, "mix", hosts, 3, &rt, sw_copy, NULL, NULL) == 0 &&
	   count_get(5, "static.mix.test", 200, "files two") == 5 &&
	   count_get(5, "www.mix.test", 200, w2) == 5,
	   "a switch moves both at once");
	ok(router_revert(r, "mix", NULL, NULL, NULL) == 0 &&
	   count_get(5, "static.mix.test", 200, "files one") == 5 &&
	   count_get(5, "www.mix.test", 200, w1) == 5,
	   "and a revert moves both back");
	ok(router_app_set(r, "steal", steal, 1, &rt) == ERR_EXISTS &&
	   !strcmp(error_last(),
		   "host 'static.mix.test' belongs to app 'mix'"),
	   "a static host belongs to its app: %s", error_last());
	rt.static_hosts = notmine;
	rt.nstatic_hosts = 1;
	ok(router_app_set(r, "mix", hosts, 3, &rt) == ERR_INVALID &&
	   count_get(1, "static.mix.test", 200, "files one") == 1,
	   "a static host that is not the app's is refused: %s",
	   error_last());
	rt = kind_route(ROUTE_MAINTENANCE, 0);
	rt.static_root = d1;
	rt.static_hosts = shosts;
	rt.nstatic_hosts = 2;
	ok(router_app_set(r, "mix", hosts, 3, &rt) == 0 &&
	   count_get(1, "static.mix.test", 503, "maintenance") == 1 &&
	   count_get(1, "www.mix.test", 503, "maintenance") == 1,
	   "in maintenance every host gets the page");
	rt = kind_route(ROUTE_NO_WEB, 0);
	rt.release = 1;
	rt.static_root = d1;
	rt.static_hosts = shosts;
	rt.nstatic_hosts = 2;
	ok(router_app_set(r, "mix", hosts, 3, &rt) == 0 &&
	   count_get(1, "static.mix.test", 200, "files one") == 1 &&
	   count_get(1, "www.mix.test", 503, "no web process") == 1,
	   "without web processes the folder still serves its hosts");
	ok(router_app_rename(r, "mix", "mixed") == 0 &&
	   count_get(1, "static.mix.test", 200, "files one") == 1 &&
	   count_get(1, "mixed.localhost", 503, "no web process") == 1,
	   "a rename keeps the folder on its hosts: %s", error_last());
	ok(router_app_hosts(r, "mixed", hosts, 1) == 0 &&
	   count_get(1, "static.mix.test", 404, NULL) == 1 &&
	   count_get(1, "www.mix.test", 503, "no web process") == 1,
	   "a static host removed from the app stops serving the folder");
	ok(router_app_remove(r, "mixed") == 0 &&
	   count_get(1, "www.mix.test", 404, NULL) == 1,
	   "and the app goes");
}

static void test_probe(struct router *r, int live, int next)
{
	struct route_peer p = { "web.1", live };
	struct route rt = live_route(1, &p, 1);
	struct test_resp resp;
	struct router_counts c0, c1;
	char want[64], hdr[64], wl[32], wn[32];

	memset(&resp, 0, sizeof(resp));
	snprintf(wl, sizeof(wl), "slot %d", live);
	snprintf(wn, sizeof(wn), "slot %d", next);
	ok(router_app_set(r, "pr", NULL, 0, &rt) == 0, "app pr on one port");
	snprintf(resp.hdr_name, sizeof(resp.hdr_name), "X-Berth-Upstream");
	snprintf(want, sizeof(want), "127.0.0.1:%d", live);
	ok(probe_get("/", "pr.localhost", NULL, &resp) == 0 &&
	   resp.status == 200 && !strcmp(resp.hdr_value, want),
	   "the probe listener says which peer answered (%s)",
	   resp.hdr_value);
	snprintf(hdr, sizeof(hdr), "X-Berth-Peer: %d", next);
	snprintf(want, sizeof(want), "127.0.0.1:%d", next);
	ok(probe_get("/", "pr.localhost", hdr, &resp) == 0 &&
	   resp.status == 200 && strstr(resp.body, wn) &&
	   !strcmp(resp.hdr_value, want),
	   "and reaches a release that is not live yet (%s)", resp.hdr_value);
	ok(test_get(addr, "/", "pr.localhost", "X-Berth-Probe: 1", &resp) ==
	   0 && resp.status == 200 && !resp.has_hdr,
	   "the public listener reveals no upstream to X-Berth-Probe");
	ok(test_get(addr, "/", "pr.localhost", hdr, &resp) == 0 &&
	   strstr(resp.body, wl) && !resp.has_hdr,
	   "and ignores X-Berth-Peer");
	ok(settled_counts(r, "pr", 1, &c0) == 0 &&
	   probe_get("/", "pr.localhost", NULL, &resp) == 0 &&
	   probe_get("/", "pr.localhost", NULL, &resp) == 0 &&
	   settled_counts(r, "pr", 1, &c1) == 0 &&
	   c1.done == c0.done && c1.inflight == 0,
	   "probes are not counted as user requests (%ld, %ld)", c0.done,
	   c1.done);
	{
		struct stat st;
		char dir[PATH_MAX + 16];

		snprintf(dir, sizeof(dir), "%s/nginx/sock", root);
		ok(stat(dir, &st) == 0 && (st.st_mode & 077) == 0 &&
		   st.st_uid == geteuid(),
		   "the control and probe listeners live in a folder only "
		   "the engine's user enters (%o)", st.st_mode & 0777);
	}
}

static void test_logs(struct loop *l, struct nginx *ng, struct router *r)
{
	struct routerlog *rl = NULL;
	struct log_seen seen;
	struct routerlog_stats st;
	struct test_resp resp;
	int i;

	memset(&seen, 0, sizeof(seen));
	memset(&resp, 0, sizeof(resp));
	ok(routerlog_open(&rl, l, nginx_log_socket(ng), on_log, &seen) == 0,
	   "the engine listens for router logs: %s", error_last());
	if (!rl)
		return;
	routerlog_allow_uid(rl, router_worker_uid(r));
	/* a live release's lines: from nginx's access_log */
	router_log_start(r, l, on_log, &seen);
	for (i = 0; i < 30; i++)
		test_get(addr, "/hello?x=1", "pr.localhost", NULL, &resp);
	test_get(addr, "/a\"b", "pr.localhost", NULL, &resp);
	test_get(addr, "/", "st.localhost", NULL, &resp);
	test_get(addr, "/", "site.localhost", NULL, &resp);
	test_get(addr, "/", "nobody.localhost", NULL, &resp);
	/* each worker sends its own batches: wait for the last of each */
	RUN_UNTIL(l, seen.lines.data &&
		  count_lines(seen.lines.data, "pr at=info") >= 31 &&
		  strstr(seen.lines.data, "st at=error") &&
		  strstr(seen.lines.data, "site at=") &&
		  strstr(seen.lines.data, "path=\"/a"), 5000);
	ok(seen.lines.data &&
	   strstr(seen.lines.data, "pr at=info method=GET "
		  "path=\"/hello?x=1\" host=pr.localhost request_id="),
	   "a line per request, in the app's name: %.*s",
	   (int)strcspn(seen.lines.data ? seen.lines.data : "", "\n"),
	   seen.lines.data ? seen.lines.data : "");
	ok(seen.lines.data && strstr(seen.lines.data, " dyno=web.1 port=") &&
	   strstr(seen.lines.data, " status=200 bytes=") &&
	   strstr(seen.lines.data, " service=") &&
	   strstr(seen.lines.data, " release=1 "),
	   "with process, port, release, status, bytes and time");
	ok(seen.most > 1 && seen.calls < 30,
	   "they come in batches (%d calls, up to %zu lines)", seen.calls,
	   seen.most);
	ok(seen.lines.data && (strstr(seen.lines.data, "path=\"/a\\\"b\"") ||
			       strstr(seen.lines.data, "path=\"/a%22b\"")),
	   "a quote in the path cannot end the field");
	ok(seen.lines.data && strstr(seen.lines.data,
		"st at=error code=crashing desc=\"app is crashing\""),
	   "answers without an app process are logged as errors");
	ok(seen.lines.data && strstr(seen.lines.data, "site at=info method=GET "
		  "path=\"/\" host=site.localhost ") &&
	   strstr(seen.lines.data, " dyno=static port=0 release=2 "),
	   "a static release's requests are logged too");
	ok(seen.lines.data && !strstr(seen.lines.data, "nobody"),
	   "an unknown host goes to no app's log");
	ok(seen.lines.data && count_lines(seen.lines.data, "pr at=") == 31 &&
	   count_lines(seen.lines.data, "st at=") == 1 &&
	   count_lines(seen.lines.data, "site at=") == 1,
	   "one line per request, none twice (%d, %d, %d)",
	   count_lines(seen.lines.data, "pr at="),
	   count_lines(seen.lines.data, "st at="),
	   count_lines(seen.lines.data, "site at="));
	{
		char path[PATH_MAX + 64];
		struct stat fst;

		/* a few more, so what was read passes a 4 KiB block */
		for (i = 0; i < 40; i++)
			test_get(addr, "/hello?x=2", "pr.localhost", NULL,
				 &resp);
		snprintf(path, sizeof(path), "%s/nginx/logs/router.log", root);
		RUN_UNTIL(l, count_lines(seen.lines.data, "pr at=") >= 71,
			  5000);
		ok(stat(path, &fst) == 0 && fst.st_size > 4096 &&
		   (off_t)fst.st_blocks * 512 < fst.st_size &&
		   (fst.st_mode & 07777) == 0640,
		   "what the engine read of router.log is freed, and the file "
		   "is not open to all (%lld bytes, %lld allocated, %o)",
		   (long long)fst.st_size, (long long)fst.st_blocks * 512,
		   (unsigned)(fst.st_mode & 07777));
	}
	if (geteuid() == 0) {
		pid_t pid = fork();
		int status = -1;

		if (pid == 0) {
			struct sockaddr_un sa;
			int fd;
			const char *forged = "pr\tat=info forged\n";

			/* neither root nor nginx's workers (nobody here) */
			if (setgid(64999) < 0 || setuid(64999) < 0)
				_exit(2);
			fd = socket(AF_UNIX, SOCK_STREAM, 0);
			memset(&sa, 0, sizeof(sa));
			sa.sun_family = AF_UNIX;
			snprintf(sa.sun_path, sizeof(sa.sun_path), "%s",
				 nginx_log_socket(ng));
			if (connect(fd, (struct sockaddr *)&sa,
				    sizeof(sa)) < 0)
				_exit(3);
			if (write(fd, forged, strlen(forged)) < 0)
				_exit(4);
			_exit(0);
		}
		waitpid(pid, &status, 0);
		RUN_UNTIL(l, (routerlog_get_stats(rl, &st), st.refused), 3000);
		test_run_loop(l, 100);
		ok(WIFEXITED(status) && st.refused >= 1 &&
		   !strstr(seen.lines.data ? seen.lines.data : "", "forged"),
		   "another user cannot write into app logs (%lu refused)",
		   st.refused);
	} else {
		skip("not root: no other uid to try");
	}
	router_log_stop(r);
	routerlog_free(rl);
	buf_release(&seen.lines);
}

/*
 * Own mode's lines name no app: the engine names them by the upstream
 * port of a route it set, and only for an app that answers the line's
 * host.  A port one app's release left (not forgotten yet) and another
 * app's process took carries no line into the first app's log.
 */
static void test_log_ports(struct loop *l, struct router *r, int port)
{
	struct route_peer pa = { "web.1", port }, pb = { "web.2", port };
	struct route rt = live_route(1, &pa, 1);
	struct router_counts ca, cb;
	struct log_seen seen;
	struct test_resp resp;
	int i;

	memset(&seen, 0, sizeof(seen));
	memset(&resp, 0, sizeof(resp));
	router_log_start(r, l, on_log, &seen);
	ok(router_app_set(r, "lpa", NULL, 0, &rt) == 0 &&
	   test_get(addr, "/one", "lpa.localhost", NULL, &resp) == 0 &&
	   resp.status == 200,
	   "an app's release answers on a port");
	RUN_UNTIL(l, count_lines(seen.lines.data, "lpa at=info") >= 1, 5000);
	rt = kind_route(ROUTE_STOPPED, 0);
	ok(router_app_set(r, "lpa", NULL, 0, &rt) == 0, "it stops");
	rt = live_route(7, &pb, 1);
	ok(router_app_set(r, "lpb", NULL, 0, &rt) == 0, "another app's "
	   "release takes the same port");
	for (i = 0; i < 3; i++)
		test_get(addr, "/two", "lpb.localhost", NULL, &resp);
	RUN_UNTIL(l, count_lines(seen.lines.data, "lpb at=info") >= 3, 5000);
	ok(count_lines(seen.lines.data, "lpa at=info") == 1 &&
	   count_lines(seen.lines.data, "lpb at=info method=GET path=\"/two\"")
	   == 3 && count_lines(seen.lines.data, " dyno=web.2 ") == 3 &&
	   count_lines(seen.lines.data, " release=7 ") == 3,
	   "its lines go to its log, with its process and release");
	ok(router_counts(r, "lpa", 1, &ca) == 0 && ca.done == 1 &&
	   ca.inflight == 0 &&
	   router_counts(r, "lpb", 7, &cb) == 0 && cb.done == 3 &&
	   cb.inflight == 0,
	   "each release's finished count is its lines (%ld/%ld, %ld/%ld)",
	   ca.done, ca.inflight, cb.done, cb.inflight);
	ok(router_forget(r, "lpa", 1) == 0 &&
	   router_counts(r, "lpa", 1, &ca) == 0 && ca.done == 0 &&
	   router_counts(r, "lpb", 7, &cb) == 0 && cb.done == 3,
	   "forgetting one release drops its port, not the other's");
	router_log_stop(r);
	router_app_remove(r, "lpa");
	router_app_remove(r, "lpb");
	buf_release(&seen.lines);
}

/*
 * An engine that starts finds router.log as the last one left it (lines
 * it read, holes, lines of ports it never routed): it reads from the end,
 * and frees the rest.
 */
static void test_log_start(void)
{
	static const char old[] = "x.localhost\t127.0.0.1:9\t200\t1\t"
		"0.001\t1.000\tGET\tid\t::1\t/old\n";
	static const char line[] = "x.localhost\t127.0.0.1:9\t200\t1\t"
		"0.001\t1.000\tGET\tid\t::1\t/new\n";
	char dir[PATH_MAX + 16], table[PATH_MAX + 32], log[PATH_MAX + 32];
	char ctl[PATH_MAX + 32];
	struct router_opts o;
	struct router *r = NULL;
	unsigned long bad = 9, unknown = 9;
	struct stat st;
	int fd, i;

	snprintf(dir, sizeof(dir), "%s/logstart", root);
	snprintf(table, sizeof(table), "%s/routes", dir);
	snprintf(ctl, sizeof(ctl), "%s/none.sock", dir);
	snprintf(log, sizeof(log), "%s/router.log", dir);
	mkdir(dir, 0755);
	fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0644);
	for (i = 0; fd >= 0 && i < 200; i++)
		if (write(fd, old, sizeof(old) - 1) < 0)
			break;
	memset(&o, 0, sizeof(o));
	o.table_path = table;
	o.control_socket = ctl;
	o.domain = "localhost";
	o.access_log = log;
	ok(fd >= 0 && router_init(&r, &o) == 0, "a router starts on an old "
	   "router.log");
	if (!r) {
		if (fd >= 0)
			close(fd);
		return;
	}
	router_log_read(r);
	router_log_stats(r, &bad, &unknown);
	ok(bad == 0 && unknown == 0 && stat(log, &st) == 0 &&
	   (off_t)st.st_blocks * 512 < st.st_size,
	   "it reads none of what was there, and frees it (%lu, %lu, %lld)",
	   bad, unknown, (long long)st.st_blocks);
	ok(write(fd, line, sizeof(line) - 1) == (ssize_t)sizeof(line) - 1 &&
	   (router_log_read(r), router_log_stats(r, &bad, &unknown),
	    bad == 0 && unknown == 1),
	   "it reads what comes after (a line of a port it never routed: "
	   "dropped)");
	close(fd);
	router_free(r);
}

/* The record parser on its own. */
static void test_log_parser(void)
{
	static const char good[] = "demo\0GET\0/a\"b\\\xff?x=1\0demo.test\0"
		"f00d\0" "127.0.0.1\0" "200\0" "12\0" "3\0web.1\0" "20001\0"
		"4\0\n";
	static const char deny[] = "st\0GET\0/\0st.test\0id\0::1\0" "503\0"
		"15\0" "0\0-\0" "0\0" "0\0stopped\n";
	static const char bad[] = "BAD\0GET\0/\0h\0i\0a\0" "200\0" "1\0"
		"1\0w\0" "1\0" "1\0\nx\0GET\0/\n"
		"ok\0GET\0/\0h\0i\0a\0" "200\0" "1\0" "1\0w\0" "1\0" "1\0nope\n"
		"ok\0GET\0/\0h\0i\0a\0" "2x0\0" "1\0" "1\0w\0" "1\0" "1\0\n";
	struct routerlog_line lines[8];
	struct buf in = BUF_INIT, out = BUF_INIT;
	unsigned long nbad = 0;
	size_t n = 0, used;

	buf_add(&in, good, sizeof(good) - 1);
	buf_add(&in, bad, sizeof(bad) - 1);
	buf_add(&in, deny, sizeof(deny) - 1);
	buf_add(&in, "partial\0GET", 11);
	used = routerlog_parse(in.data, in.len, lines, 8, &n, &nbad, &out);
	ok(n == 2 && nbad == 4 && used == in.len - 11,
	   "the parser keeps good records, drops bad ones, leaves a partial "
	   "one (%zu good, %lu bad)", n, nbad);
	ok(n >= 1 && !strcmp(lines[0].app, "demo") &&
	   !strcmp(lines[0].text, "at=info method=GET "
		   "path=\"/a\\\"b\\\\\\xFF?x=1\" host=demo.test request_id=f00d "
		   "fwd=\"127.0.0.1\" dyno=web.1 port=20001 release=4 "
		   "service=3ms status=200 bytes=12 protocol=http"),
	   "into Heroku's line, quotes and bytes escaped: %s",
	   n >= 1 ? lines[0].text : "");
	ok(n == 2 && !strcmp(lines[1].app, "st") &&
	   !strncmp(lines[1].text, "at=error code=stopped desc=\"app is "
		    "stopped\" method=GET", 50),
	   "the router's own answers are errors: %s",
	   n == 2 ? lines[1].text : "");
	buf_release(&in);
	buf_release(&out);
}

/* nginx's access_log lines (ROUTERLOG_ACCESS_FORMAT), parsed on their own. */
static void test_access_parser(void)
{
	static const char good[] = "demo.test\t127.0.0.1:20001, "
		"127.0.0.1:20002\t200\t12\t0.003\t1764532640.125\tGET\tf00d\t"
		"127.0.0.1\t"
		"/a\"b\\\xff?x=1\tz";
	static const char answered[] = "st.test\tunix:/s/answer/sock\t503\t"
		"15\t1.5\t1764532641.000\tGET\tid\t::1\t/";
	static const char *const bad[] = {
		"h\t127.0.0.1:1\t200\t1\t0.001\t1.000\tGET\tid\t::1",
		"h\t127.0.0.1:1\t2x0\t1\t0.001\t1.000\tGET\tid\t::1\t/",
		"h\t127.0.0.1:1\t200\t1\tsoon\t1.000\tGET\tid\t::1\t/",
		"h\t127.0.0.1:1\t200\t1\t0.001\t1.000\tG T\tid\t::1\t/",
		"h\t127.0.0.1:1\t200\t1\t0.001\t1.000\tGET\tid\t::1\t",
		"h\t127.0.0.1:1\t200\t1\t0.001\tnow\tGET\tid\t::1\t/",
		"h\t127.0.0.1:1\t200\t1\t0.001\t1764532640125.0\tGET\tid"
		"\t::1\t/",
		"h\t127.0.0.1:1\t200\t1\t0.001\tGET\tid\t::1\t/",
	};
	struct routerlog_access a;
	struct routerlog_line lines[2];
	struct buf rec = BUF_INIT, out = BUF_INIT;
	unsigned long nbad = 0;
	size_t n = 0, i, nrefused = 0;
	int r;

	r = routerlog_access_parse(good, sizeof(good) - 1, &a);
	ok(r == 0 && a.port == 20002 && a.status == 200 && a.bytes == 12 &&
	   a.ms == 3 && a.end_ms == 1764532640125LL &&
	   a.uri_len == strlen("/a\"b\\\xff?x=1\tz"),
	   "an access_log line parses: the last peer's port, its end time, "
	   "the URI to the end of the line (%d, port %d)", r, a.port);
	if (r == 0)
		routerlog_access_record(&a, "demo", "web.2", 4, "", &rec);
	routerlog_parse(rec.data, rec.len, lines, 2, &n, &nbad, &out);
	ok(n == 1 && !strcmp(lines[0].app, "demo") &&
	   !strcmp(lines[0].text, "at=info method=GET "
		   "path=\"/a\\\"b\\\\\\xFF?x=1\\x09z\" host=demo.test "
		   "request_id=f00d fwd=\"127.0.0.1\" dyno=web.2 port=20002 "
		   "release=4 service=3ms status=200 bytes=12 protocol=http"),
	   "and makes the same router line as the Lua record: %s",
	   n == 1 ? lines[0].text : "");
	r = routerlog_access_parse(answered, sizeof(answered) - 1, &a);
	ok(r == 0 && a.port == 0 && a.ms == 1500 &&
	   a.end_ms == 1764532641000LL,
	   "a request the answer listener took has no port (%d, %d)", r,
	   a.port);
	for (i = 0; i < ARRAY_SIZE(bad); i++)
		if (routerlog_access_parse(bad[i], strlen(bad[i]), &a) < 0)
			nrefused++;
	ok(nrefused == ARRAY_SIZE(bad),
	   "lines with a missing field, a bad number, time, end time or "
	   "method, or no URI are refused (%zu of %zu)", nrefused, ARRAY_SIZE(bad));
	buf_release(&rec);
	buf_release(&out);
}

/* A killed master: the next one routes from its first request. */
static void test_restart(struct loop *l, struct router *r, int port)
{
	struct route_peer p = { "web.1", port };
	struct route rt = live_route(9, &p, 1);
	struct test_resp resp;
	pid_t master = master_pid();
	int answered = 0, wrong = 0;

	if (master <= 1) {
		ok(0, "no nginx master to kill (%d)", (int)master);
		return;
	}
	int64_t deadline;
	char want[32];

	memset(&resp, 0, sizeof(resp));
	snprintf(want, sizeof(want), "slot %d", port);
	test_kill(master, SIGKILL);
	/* changed while nginx is down: only the file has it */
	ok(router_app_set(r, "late", NULL, 0, &rt) == 0,
	   "a change while nginx is down succeeds: %s", error_last());
	deadline = now_ms() + 10000;
	while (now_ms() < deadline && answered < 20) {
		if (test_get(addr, "/", "late.localhost", NULL, &resp) == 0) {
			answered++;
			if (resp.status != 200 || !strstr(resp.body, want))
				wrong++;
		}
		test_run_loop(l, 5);
	}
	ok(master_pid() != master && answered == 20 && wrong == 0,
	   "the restarted nginx routes it from its first request "
	   "(%d answered, %d wrong)", answered, wrong);
	ok(router_in_sync(r), "and has the engine's version");
}

/* route: group: other hosts' route listeners in the round robin, also
 * when no process is here; a bad address is refused. */
static void test_remote(struct router *r, int local, int other)
{
	struct route_peer lp = { "web.1", local };
	struct route_remote rm = { "host-x", "127.0.0.1", other };
	struct route_remote bad = { "host-y", "example.com", other };
	struct route rt = live_route(3, NULL, 0);
	struct buf table = BUF_INIT;
	char wl[32], wo[32];
	int n = 0, i;
	struct test_resp resp;

	memset(&resp, 0, sizeof(resp));
	snprintf(wl, sizeof(wl), "slot %d", local);
	snprintf(wo, sizeof(wo), "slot %d", other);
	rt.remote = &rm;
	rt.nremote = 1;
	ok(router_app_set(r, "grp", NULL, 0, &rt) == 0 &&
	   count_get(5, "grp.localhost", 200, wo) == 5,
	   "no process here: every request goes to the other host: %s",
	   error_last());
	router_render(r, &table);
	ok(table.data && strstr(table.data, "route grp live 3 host-x@127.0.0.1:"),
	   "the table names it HOST@ADDR:PORT");
	buf_release(&table);
	rt.peers = &lp;
	rt.npeers = 1;
	ok(router_app_set(r, "grp", NULL, 0, &rt) == 0, "a process here too");
	for (i = 0; i < 20; i++)
		if (test_get(addr, "/", "grp.localhost", NULL, &resp) == 0 &&
		    resp.status == 200 && strstr(resp.body, wl))
			n++;
	ok(n > 0 && n < 20, "requests go to both (%d of 20 here)", n);
	rt.remote = &bad;
	ok(router_app_set(r, "grp", NULL, 0, &rt) == ERR_INVALID &&
	   strstr(error_last(), "IPv4"), "a host name as address is refused");
	ok(router_app_remove(r, "grp") == 0, "removed");
}

int main(int argc, char **argv)
{
	struct config cfg;
	struct loop *l;
	struct nginx *ng = NULL;
	struct router *r;
	int http_port, p1, p2, p3;
	int64_t t_noisy;
	pid_t a = -1, b = -1, c = -1;
	char listen[64], expect[64];
	char *tmp;

	if (argc > 1 && !strcmp(argv[1], "serve"))
		return serve(argc - 2, argv + 2);
	log_init(0, "router-test");
	curl_global_init(CURL_GLOBAL_DEFAULT);
	tmp = getenv("TMPDIR");
	snprintf(root, sizeof(root), "%s/berth-unit-router.XXXXXX",
		 tmp && *tmp ? tmp : "/tmp");
	if (!mkdtemp(root))
		fatal("mkdtemp");
	chmod(root, 0755);
	snprintf(probe_sock, sizeof(probe_sock), "%s/nginx/sock/probe", root);
	l = loop_new();
	if (!l || test_watch_children(l) < 0)
		fatal("setup");
	test_loop = l;
	http_port = test_free_port();
	p1 = test_free_port();
	p2 = test_free_port();
	p3 = test_free_port();
	snprintf(addr, sizeof(addr), "127.0.0.1:%d", http_port);
	snprintf(listen, sizeof(listen), "127.0.0.1:%d", http_port);
	config_init(&cfg, root);
	config_set(&cfg, "http_listen", listen);

	test_log_parser();
	test_access_parser();
	test_log_start();
	ok(nginx_init(&ng, &cfg, l) == 0 && nginx_start(ng) == 0,
	   "nginx starts with the router: %s", error_last());
	if (!ng)
		goto out;
	r = nginx_router(ng);
	a = test_slot_server(p1, 200, 0);
	b = test_slot_server(p2, 200, 0);
	c = test_slot_server(p3, 200, 0);
	snprintf(expect, sizeof(expect), "127.0.0.1:%d", p3);
	ok(a > 0 && b > 0 && c > 0 &&
	   test_wait_get(expect, NULL, 200, "slot", 10000) == 0 &&
	   (snprintf(expect, sizeof(expect), "127.0.0.1:%d", p1),
	    test_wait_get(expect, NULL, 200, "slot", 10000) == 0) &&
	   (snprintf(expect, sizeof(expect), "127.0.0.1:%d", p2),
	    test_wait_get(expect, NULL, 200, "slot", 10000) == 0),
	   "three upstream servers run");

	test_hosts(r);
	test_states(r);
	test_matching(r, p1, p2);
	test_switch(l, r, p1, p2);
	test_async(l, r, p1, p2);
	test_static(r);
	test_static_beside(r, p1, p2);
	test_probe(r, p1, p2);
	test_logs(l, ng, r);
	test_log_ports(l, r, p1);
	t_noisy = now_ms();
	test_peers(r, p3, p2, &b);
	test_watch(r, p3, p2);
	test_remote(r, p1, p3);
	t_noisy = now_ms() - t_noisy;
	test_restart(l, r, p1);
	ok(nginx_reloads(ng) == 0, "nginx was never reloaded");
	{
		char log[PATH_MAX + 64];
		struct buf e = BUF_INIT;

		snprintf(log, sizeof(log), "%s/nginx/logs/error.log", root);
		read_file(&e, log, 1 << 24);
		/* "client: unix:" is the answer listener's (a refused
		 * symlink of a static site is a real error) */
		ok(e.data && !strstr(e.data, "router.sock") &&
		   !strstr(e.data, "to unix:") && !strstr(e.data, "lua") &&
		   !strstr(e.data, "[emerg]"),
		   "nginx's error log holds no noise from the router");
		/* dead ports: p2 from test_peers() on */
		long most = 2 * sysconf(_SC_NPROCESSORS_ONLN) *
			(t_noisy / 1000 + 2);
		int n = e.data ? count_lines(e.data, "connect() failed") : 0;

		ok(n > 0 && n <= most,
		   "a dead process costs an error line per worker per second"
		   " (%d in %lld ms)", n, (long long)t_noisy);
		buf_release(&e);
	}
	nginx_free(ng);
out:
	test_stop_child(a);
	test_stop_child(b);
	test_stop_child(c);
	loop_free(l);
	config_release(&cfg);
	if (tap_failed)
		printf("# kept %s\n", root);
	else if (rm_rf(root) < 0)
		printf("# cannot clean up: %s\n", error_last());
	curl_global_cleanup();
	return tap_done();
}
