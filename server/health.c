/*
 * health: see health.h.  One curl multi handle for the whole process,
 * driven by the loop through curl's socket and timer callbacks; each
 * check owns one easy handle, used for one attempt at a time.
 *
 * curl forbids calling back into the multi handle from its own
 * callbacks, so user callbacks run only after curl_multi_socket_action()
 * has returned (in drain_done()), and curl's timer callback only
 * schedules a loop timer.
 */
#include "health.h"

#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "loop.h"
#include "util.h"
#include "banned.h"

#define HEALTH_CONNECT_MS 1000L
#define HEALTH_BODY_MAX (64 * 1024)

struct health {
	struct health *next, *prev;
	char *url, *host_hdr, *extra_hdr, *want_header, *want_value, *want_body;
	char *unix_socket;
	long max_status, interval_ms, timeout_ms, attempt_ms;
	int once;
	int attempts_left;	/* -1: bounded by time only */
	health_fn fn;
	void *arg;

	CURL *easy;
	struct curl_slist *hdrs;
	int in_multi;		/* an attempt is running */
	int in_list;
	int finishing;		/* fn is running: cancel does nothing */
	uint64_t retry_timer;
	int64_t start_ms, deadline_ms;

	/* the current attempt */
	long status;
	int header_ok;
	int got_body;		/* we stopped reading once a body came */
	int body_ok;		/* want_body was found */
	struct buf body;	/* what came of it, while looking */
	long answered;		/* the status of the last answer, 0 if none */
	char errbuf[CURL_ERROR_SIZE];
	char error[256];	/* last failure in words */
};

static struct loop *hloop;
static CURLM *multi;
static uint64_t curl_timer;
static struct health *checks;
static int global_done;

static void drain_done(void);

static void list_remove(struct health *h)
{
	if (!h->in_list)
		return;
	h->in_list = 0;
	if (h->prev)
		h->prev->next = h->next;
	else
		checks = h->next;
	if (h->next)
		h->next->prev = h->prev;
	h->next = h->prev = NULL;
}

static void on_curl_timer(struct loop *l, void *arg)
{
	int running;

	curl_timer = 0;
	curl_multi_socket_action(multi, CURL_SOCKET_TIMEOUT, 0, &running);
	drain_done();
}

static int timer_cb(CURLM *m, long timeout_ms, void *userp)
{
	if (curl_timer) {
		loop_del_timer(hloop, curl_timer);
		curl_timer = 0;
	}
	if (timeout_ms >= 0)
		curl_timer = loop_add_timer(hloop, timeout_ms, on_curl_timer,
					    NULL);
	return 0;
}

static void on_socket(struct loop *l, int fd, unsigned events, void *arg)
{
	int flags = 0, running;

	if (events & LOOP_READ)
		flags |= CURL_CSELECT_IN;
	if (events & LOOP_WRITE)
		flags |= CURL_CSELECT_OUT;
	if (events & LOOP_ERROR)
		flags |= CURL_CSELECT_ERR;
	curl_multi_socket_action(multi, fd, flags, &running);
	drain_done();
}

/* socketp marks a socket the loop already watches. */
static int socket_cb(CURL *e, curl_socket_t s, int what, void *userp,
		     void *socketp)
{
	static char watched;
	unsigned ev = 0;

	if (what == CURL_POLL_REMOVE) {
		loop_del_fd(hloop, s);
		curl_multi_assign(multi, s, NULL);
		return 0;
	}
	if (what == CURL_POLL_IN || what == CURL_POLL_INOUT)
		ev |= LOOP_READ;
	if (what == CURL_POLL_OUT || what == CURL_POLL_INOUT)
		ev |= LOOP_WRITE;
	if (socketp) {
		if (loop_mod_fd(hloop, s, ev) < 0)
			return -1;
		return 0;
	}
	if (loop_add_fd(hloop, s, ev, on_socket, NULL) < 0)
		return -1;
	curl_multi_assign(multi, s, &watched);
	return 0;
}

static size_t header_cb(char *p, size_t size, size_t n, void *arg)
{
	struct health *h = arg;
	size_t len = size * n, k;
	const char *v, *end;

	/* a new response (after a 1xx) starts over */
	if (len >= 5 && !strncmp(p, "HTTP/", 5)) {
		h->header_ok = 0;
		return len;
	}
	if (!h->want_header)
		return len;
	k = strlen(h->want_header);
	if (len <= k || strncasecmp(p, h->want_header, k) || p[k] != ':')
		return len;
	v = p + k + 1;
	end = p + len;
	while (v < end && (*v == ' ' || *v == '\t'))
		v++;
	while (end > v && (end[-1] == '\r' || end[-1] == '\n' ||
			   end[-1] == ' ' || end[-1] == '\t'))
		end--;
	/*
	 * nginx's $upstream_addr lists every server it tried ("A, B", and
	 * "A : B" across groups): the last one answered.
	 */
	for (k = (size_t)(end - v); k >= 2; k--) {
		if ((v[k - 2] == ',' || v[k - 2] == ':') && v[k - 1] == ' ') {
			v += k;
			break;
		}
	}
	if (!h->want_value ||
	    ((size_t)(end - v) == strlen(h->want_value) &&
	     !memcmp(v, h->want_value, (size_t)(end - v))))
		h->header_ok = 1;
	return len;
}

/* The body matters only when want_body is set: stop at its first bytes,
 * or once the string is found (or 64 KiB came without it). */
static size_t body_cb(char *p, size_t size, size_t n, void *arg)
{
	struct health *h = arg;
	size_t len = size * n, room;

	h->got_body = 1;
	if (!h->want_body)
		return 0;
	room = HEALTH_BODY_MAX - h->body.len;
	buf_add(&h->body, p, len < room ? len : room);
	if (h->body.len && memmem(h->body.data, h->body.len, h->want_body,
				  strlen(h->want_body))) {
		h->body_ok = 1;
		return 0;
	}
	return h->body.len >= HEALTH_BODY_MAX ? 0 : len;
}

static void health_free(struct health *h)
{
	if (!h)
		return;
	if (h->retry_timer)
		loop_del_timer(hloop, h->retry_timer);
	if (h->easy) {
		if (h->in_multi)
			curl_multi_remove_handle(multi, h->easy);
		curl_easy_cleanup(h->easy);
	}
	curl_slist_free_all(h->hdrs);
	free(h->url);
	free(h->host_hdr);
	free(h->extra_hdr);
	free(h->unix_socket);
	free(h->want_header);
	free(h->want_value);
	free(h->want_body);
	buf_release(&h->body);
	free(h);
}

static void finish(struct health *h, int ok)
{
	struct health_result r;

	list_remove(h);
	if (h->retry_timer) {
		loop_del_timer(hloop, h->retry_timer);
		h->retry_timer = 0;
	}
	if (h->in_multi) {
		curl_multi_remove_handle(multi, h->easy);
		h->in_multi = 0;
	}
	memset(&r, 0, sizeof(r));
	r.ok = ok;
	r.status = h->status;
	r.elapsed_ms = (long)(now_ms() - h->start_ms);
	r.error = ok ? "" : h->error;
	h->finishing = 1;
	h->fn(h->arg, &r);
	health_free(h);
}

static void start_attempt(struct health *h);

static void on_retry(struct loop *l, void *arg)
{
	struct health *h = arg;

	h->retry_timer = 0;
	if (now_ms() >= h->deadline_ms) {
		finish(h, 0);
		return;
	}
	start_attempt(h);
}

static void start_attempt(struct health *h)
{
	long left = (long)(h->deadline_ms - now_ms());
	CURLMcode mc;

	if (left < 1)
		left = 1;
	h->status = 0;
	h->header_ok = 0;
	h->got_body = 0;
	h->body_ok = 0;
	buf_reset(&h->body);
	h->errbuf[0] = '\0';
	if (h->attempt_ms > 0 && h->attempt_ms < left)
		left = h->attempt_ms;
	curl_easy_setopt(h->easy, CURLOPT_TIMEOUT_MS, left);
	curl_easy_setopt(h->easy, CURLOPT_CONNECTTIMEOUT_MS,
			 left < HEALTH_CONNECT_MS ? left : HEALTH_CONNECT_MS);
	mc = curl_multi_add_handle(multi, h->easy);
	if (mc != CURLM_OK) {
		snprintf(h->error, sizeof(h->error), "%s",
			 curl_multi_strerror(mc));
		h->retry_timer = loop_add_timer(hloop, h->interval_ms,
						on_retry, h);
		return;
	}
	h->in_multi = 1;
}

/* One attempt ended: judge it, then finish or schedule the next. */
static void attempt_done(struct health *h, CURLcode rc)
{
	long left, wait;

	curl_multi_remove_handle(multi, h->easy);
	h->in_multi = 0;
	if (rc == CURLE_OK || (rc == CURLE_WRITE_ERROR && h->got_body)) {
		curl_easy_getinfo(h->easy, CURLINFO_RESPONSE_CODE, &h->status);
		h->answered = h->status;
		if (h->status > 0 && h->status <= h->max_status &&
		    (!h->want_header || h->header_ok) &&
		    (!h->want_body || h->body_ok)) {
			finish(h, 1);
			return;
		}
		if (h->status <= 0 || h->status > h->max_status)
			snprintf(h->error, sizeof(h->error), "HTTP status %ld",
				 h->status);
		else if (h->want_body && !h->body_ok)
			snprintf(h->error, sizeof(h->error),
				 "the answer does not contain '%.100s'",
				 h->want_body);
		else if (h->want_value)
			snprintf(h->error, sizeof(h->error),
				 "no header '%s: %s' in the answer",
				 h->want_header, h->want_value);
		else
			snprintf(h->error, sizeof(h->error),
				 "no header '%s' in the answer",
				 h->want_header);
	} else if (rc != CURLE_OPERATION_TIMEDOUT || !h->answered ||
		   now_ms() < h->deadline_ms) {
		snprintf(h->error, sizeof(h->error), "%s",
			 h->errbuf[0] ? h->errbuf : curl_easy_strerror(rc));
		h->answered = 0;
	} else {
		/* the last attempt only ran out of the time left: the
		 * answer before it says more ("HTTP status 500") */
		h->status = h->answered;
	}
	left = (long)(h->deadline_ms - now_ms());
	/* a try counts once it reached the app: a process that does not
	 * listen yet is polled as often as ever, not given up on */
	if (h->attempts_left > 0 && rc != CURLE_COULDNT_CONNECT)
		h->attempts_left--;
	if (left <= 0 || h->once || h->attempts_left == 0) {
		finish(h, 0);
		return;
	}
	wait = h->interval_ms < left ? h->interval_ms : left;
	h->retry_timer = loop_add_timer(hloop, wait, on_retry, h);
}

/*
 * Collect finished attempts.  A user callback may start or cancel other
 * checks; curl drops the messages of removed handles, so the queue stays
 * valid across those calls.
 */
static void drain_done(void)
{
	CURLMsg *msg;
	int left;

	while ((msg = curl_multi_info_read(multi, &left))) {
		char *p = NULL;

		if (msg->msg != CURLMSG_DONE)
			continue;
		curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, &p);
		if (p)
			attempt_done((struct health *)p, msg->data.result);
	}
}

int health_init(struct loop *l)
{
	if (multi)
		return 0;
	if (!global_done) {
		if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
			return error_set("cannot initialise libcurl");
		global_done = 1;
	}
	multi = curl_multi_init();
	if (!multi)
		return error_set("cannot initialise libcurl");
	hloop = l;
	curl_multi_setopt(multi, CURLMOPT_SOCKETFUNCTION, socket_cb);
	curl_multi_setopt(multi, CURLMOPT_TIMERFUNCTION, timer_cb);
	return 0;
}

void health_shutdown(void)
{
	while (checks) {
		struct health *h = checks;

		list_remove(h);
		health_free(h);
	}
	if (curl_timer) {
		loop_del_timer(hloop, curl_timer);
		curl_timer = 0;
	}
	if (multi) {
		curl_multi_cleanup(multi);
		multi = NULL;
	}
	if (global_done) {
		curl_global_cleanup();
		global_done = 0;
	}
	hloop = NULL;
}

struct health *health_start(const struct health_req *req, health_fn fn,
			    void *arg)
{
	struct health *h;

	if (!multi) {
		error_set("health checks are not initialised");
		return NULL;
	}
	if (!req->url || strncmp(req->url, "http", 4)) {
		error_set("invalid health check url '%s'",
			  req->url ? req->url : "");
		return NULL;
	}
	if (req->host && (strchr(req->host, '\r') || strchr(req->host, '\n'))) {
		error_set("invalid host '%s'", req->host);
		return NULL;
	}
	if (req->header && (strchr(req->header, '\r') ||
			    strchr(req->header, '\n') ||
			    !strchr(req->header, ':'))) {
		error_set("invalid header '%s'", req->header);
		return NULL;
	}
	h = xcalloc(1, sizeof(*h));
	h->url = xstrdup(req->url);
	h->max_status = req->max_status > 0 ? req->max_status : 499;
	h->interval_ms = req->interval_ms > 0 ? req->interval_ms : 50;
	h->timeout_ms = req->timeout_ms > 0 ? req->timeout_ms : 60000;
	h->once = req->once;
	h->attempts_left = req->attempts > 0 ? req->attempts : -1;
	h->want_header = req->want_header ? xstrdup(req->want_header) : NULL;
	h->want_value = req->want_header && req->want_value ?
		xstrdup(req->want_value) : NULL;
	h->want_body = req->want_body && *req->want_body ?
		xstrdup(req->want_body) : NULL;
	h->attempt_ms = req->attempt_timeout_ms > 0 ?
		req->attempt_timeout_ms : 0;
	h->fn = fn;
	h->arg = arg;
	h->easy = curl_easy_init();
	if (!h->easy) {
		error_set("cannot initialise libcurl");
		health_free(h);
		return NULL;
	}
	if (req->host) {
		h->host_hdr = xasprintf("Host: %s", req->host);
		h->hdrs = curl_slist_append(h->hdrs, h->host_hdr);
	}
	if (req->header) {
		h->extra_hdr = xstrdup(req->header);
		h->hdrs = curl_slist_append(h->hdrs, h->extra_hdr);
	}
	if (req->unix_socket) {
		h->unix_socket = xstrdup(req->unix_socket);
		curl_easy_setopt(h->easy, CURLOPT_UNIX_SOCKET_PATH,
				 h->unix_socket);
	}
	h->hdrs = curl_slist_append(h->hdrs, "User-Agent: berth-health");
	curl_easy_setopt(h->easy, CURLOPT_URL, h->url);
	curl_easy_setopt(h->easy, CURLOPT_HTTPHEADER, h->hdrs);
	curl_easy_setopt(h->easy, CURLOPT_PRIVATE, (char *)h);
	curl_easy_setopt(h->easy, CURLOPT_ERRORBUFFER, h->errbuf);
	curl_easy_setopt(h->easy, CURLOPT_NOSIGNAL, 1L);
	/* never through a proxy from the environment */
	curl_easy_setopt(h->easy, CURLOPT_PROXY, "");
#if LIBCURL_VERSION_NUM >= 0x075500
	curl_easy_setopt(h->easy, CURLOPT_PROTOCOLS_STR, "http,https");
#endif
	curl_easy_setopt(h->easy, CURLOPT_FOLLOWLOCATION, 0L);
	/* a kept connection could hold an old process in its drain */
	curl_easy_setopt(h->easy, CURLOPT_FORBID_REUSE, 1L);
	curl_easy_setopt(h->easy, CURLOPT_HEADERFUNCTION, header_cb);
	curl_easy_setopt(h->easy, CURLOPT_HEADERDATA, h);
	curl_easy_setopt(h->easy, CURLOPT_WRITEFUNCTION, body_cb);
	curl_easy_setopt(h->easy, CURLOPT_WRITEDATA, h);
	snprintf(h->error, sizeof(h->error), "no answer yet");
	h->start_ms = now_ms();
	h->deadline_ms = h->start_ms + h->timeout_ms;
	h->next = checks;
	if (checks)
		checks->prev = h;
	checks = h;
	h->in_list = 1;
	if (req->initial_delay_ms > 0)
		h->retry_timer = loop_add_timer(hloop, req->initial_delay_ms,
						on_retry, h);
	else
		start_attempt(h);
	return h;
}

void health_cancel(struct health *h)
{
	if (!h || h->finishing)
		return;
	list_remove(h);
	health_free(h);
}
