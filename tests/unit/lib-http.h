/*
 * lib-http.h: helpers for unit tests that talk HTTP to real servers: a
 * free port, a small python3 http.server started as a child, a blocking
 * GET with libcurl, and SIGCHLD wired to the reaper through the loop.
 */
#ifndef BERTH_TEST_LIB_HTTP_H
#define BERTH_TEST_LIB_HTTP_H

#include <arpa/inet.h>
#include <curl/curl.h>
#include <netinet/in.h>
#include <signal.h>
#include <string.h>
#include <strings.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "loop.h"
#include "reaper.h"
#include "spawn.h"
#include "util.h"

/*
 * A slot server: answers GET with STATUS (default 200) and "slot PORT",
 * headers X-Slot and X-Seen-Host, after listening DELAY seconds late;
 * GET /sleep/MS answers MS milliseconds late.
 * TERM stops it gracefully: no new connections, in-flight ones finish.
 */
static char slot_server_py[] =
	"import http.server, signal, sys, threading, time\n"
	"port = int(sys.argv[1])\n"
	"status = int(sys.argv[2]) if len(sys.argv) > 2 else 200\n"
	"delay = float(sys.argv[3]) if len(sys.argv) > 3 else 0\n"
	"class H(http.server.BaseHTTPRequestHandler):\n"
	"    protocol_version = 'HTTP/1.1'\n"
	"    def do_GET(self):\n"
	"        if self.path.startswith('/sleep/'):\n"
	"            time.sleep(int(self.path[7:]) / 1000.0)\n"
	"        body = ('slot %d\\n' % port).encode()\n"
	"        self.send_response(status)\n"
	"        self.send_header('Content-Length', str(len(body)))\n"
	"        self.send_header('X-Slot', str(port))\n"
	"        self.send_header('X-Seen-Host', self.headers.get('Host', ''))\n"
	"        self.send_header('X-Chain', '127.0.0.1:1, 127.0.0.1:%d' % port)\n"
	"        self.end_headers()\n"
	"        self.wfile.write(body)\n"
	"    def log_message(self, *a):\n"
	"        pass\n"
	"class S(http.server.ThreadingHTTPServer):\n"
	"    daemon_threads = False\n"
	"    request_queue_size = 128\n"
	"time.sleep(delay)\n"
	"srv = S(('127.0.0.1', port), H)\n"
	/* a thread started in a signal handler can deadlock in Thread.start */
	"stop = threading.Event()\n"
	"def stopper():\n"
	"    stop.wait()\n"
	"    srv.shutdown()\n"
	"threading.Thread(target=stopper, daemon=True).start()\n"
	"signal.signal(signal.SIGTERM, lambda *a: stop.set())\n"
	"srv.serve_forever()\n"
	"srv.server_close()\n";

/*
 * A free port below the kernel's ephemeral range (32768 and up): a slot
 * port there could be taken, between two servers, by the local end of one
 * of nginx's own upstream connections.
 */
static inline int test_free_port(void)
{
	static unsigned seed;
	int tries;

	if (!seed)
		seed = (unsigned)getpid() * 2654435761u ^ (unsigned)now_ms();
	for (tries = 0; tries < 1000; tries++) {
		struct sockaddr_in sa;
		int fd, port, one = 1, r;

		seed = seed * 1103515245u + 12345u;
		port = 10000 + (int)((seed >> 8) % 10000);
		fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (fd < 0)
			return -1;
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
		memset(&sa, 0, sizeof(sa));
		sa.sin_family = AF_INET;
		sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		sa.sin_port = htons((uint16_t)port);
		r = bind(fd, (struct sockaddr *)&sa, sizeof(sa));
		close(fd);
		if (r == 0)
			return port;
	}
	return -1;
}

static inline pid_t test_slot_server(int port, int status, double delay)
{
	char p[16], st[16], d[32];
	char *argv[] = { "python3", "-c", slot_server_py, p, st, d,
			 NULL };
	char *envp[] = { "PATH=/usr/local/bin:/usr/bin:/bin", NULL };
	struct spawn s;

	snprintf(p, sizeof(p), "%d", port);
	snprintf(st, sizeof(st), "%d", status);
	snprintf(d, sizeof(d), "%.3f", delay);
	spawn_init(&s);
	s.argv = argv;
	s.envp = envp;
	s.err = 2;
	if (spawn_start(&s) < 0)
		return -1;
	return s.pid;
}

/*
 * kill() for tests: only ever one process.  A pid read from a file that
 * is missing comes out as -1, and kill(-1, sig) signals every process
 * the caller may signal (all of them, as root).
 */
static inline int test_kill(pid_t pid, int sig)
{
	if (pid <= 1)
		return -1;
	return kill(pid, sig);
}

static inline void test_stop_child(pid_t pid)
{
	int st;

	if (pid <= 1)
		return;
	kill(pid, SIGTERM);
	waitpid(pid, &st, 0);
}

static inline void test_sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	nanosleep(&ts, NULL);
}

struct test_resp {
	long status;
	char body[512];
	size_t body_len;
	char hdr_name[64];	/* header to capture, set by the caller */
	char hdr_value[256];
	int has_hdr;
};

static inline size_t test_body_cb(char *p, size_t sz, size_t n, void *arg)
{
	struct test_resp *r = arg;
	size_t len = sz * n, keep = len;

	if (keep > sizeof(r->body) - 1 - r->body_len)
		keep = sizeof(r->body) - 1 - r->body_len;
	memcpy(r->body + r->body_len, p, keep);
	r->body_len += keep;
	r->body[r->body_len] = '\0';
	return len;
}

static inline size_t test_hdr_cb(char *p, size_t sz, size_t n, void *arg)
{
	struct test_resp *r = arg;
	size_t len = sz * n, k = strlen(r->hdr_name);

	if (k && len > k + 1 && !strncasecmp(p, r->hdr_name, k) &&
	    p[k] == ':') {
		size_t i = k + 1, j = len;

		while (i < j && (p[i] == ' ' || p[i] == '\t'))
			i++;
		while (j > i && (p[j - 1] == '\r' || p[j - 1] == '\n'))
			j--;
		if (j - i >= sizeof(r->hdr_value))
			j = i + sizeof(r->hdr_value) - 1;
		memcpy(r->hdr_value, p + i, j - i);
		r->hdr_value[j - i] = '\0';
		r->has_hdr = 1;
	}
	return len;
}

/* GET http://addr/path with an optional Host and extra header; 0 or -1. */
static inline int test_get(const char *addr, const char *path,
			   const char *host, const char *extra,
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
	snprintf(url, sizeof(url), "http://%s%s", addr, path);
	if (host) {
		snprintf(hb, sizeof(hb), "Host: %s", host);
		h = curl_slist_append(h, hb);
	}
	if (extra)
		h = curl_slist_append(h, extra);
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_PROXY, "");
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

static inline void test_run_loop(struct loop *l, long ms);

/* If set, waiting runs this loop (timers such as nginx's reload fire). */
static struct loop *test_loop;

/* Poll until GET answers with want_status (and body containing want). */
static inline int test_wait_get(const char *addr, const char *host,
				long want_status, const char *want,
				long timeout_ms)
{
	struct test_resp r;
	int64_t deadline = now_ms() + timeout_ms;

	memset(&r, 0, sizeof(r));
	for (;;) {
		if (test_get(addr, "/", host, NULL, &r) == 0 &&
		    r.status == want_status &&
		    (!want || strstr(r.body, want)))
			return 0;
		if (now_ms() > deadline)
			return -1;
		if (test_loop)
			test_run_loop(test_loop, 20);
		else
			test_sleep_ms(20);
	}
}

static inline void test_on_sigchld(struct loop *l, int fd, unsigned ev,
				   void *arg)
{
	struct signalfd_siginfo si;

	while (read(fd, &si, sizeof(si)) == (ssize_t)sizeof(si))
		;
	reaper_reap();
}

/* SIGCHLD as an fd event that runs the reaper, as the engine does. */
static inline int test_watch_children(struct loop *l)
{
	sigset_t set;
	int fd;

	sigemptyset(&set);
	sigaddset(&set, SIGCHLD);
	if (sigprocmask(SIG_BLOCK, &set, NULL) < 0)
		return -1;
	fd = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
	if (fd < 0)
		return -1;
	return loop_add_fd(l, fd, LOOP_READ, test_on_sigchld, NULL);
}

static inline void test_stop_loop(struct loop *l, void *arg)
{
	loop_stop(l);
}

/* Run the loop for ms milliseconds. */
static inline void test_run_loop(struct loop *l, long ms)
{
	uint64_t t = loop_add_timer(l, ms, test_stop_loop, NULL);

	loop_run(l);
	loop_del_timer(l, t);
}

#endif
