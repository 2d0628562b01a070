/*
 * health: interim implementation (timer-driven curl multi); the full one
 * drives curl from the loop's fds.  See health.h.
 */
#include "health.h"

#include <curl/curl.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "loop.h"
#include "util.h"

#define TICK_MS 5

struct health {
	struct health *next;
	char *url, *host, *want_header, *want_value;
	long max_status, interval_ms, timeout_ms;
	int64_t start, next_try;
	CURL *easy;
	struct curl_slist *headers;
	int header_ok;
	char last_error[256];
	long last_status;
	health_fn fn;
	void *arg;
};

static struct loop *hloop;
static CURLM *multi;
static struct health *checks;
static uint64_t tick_timer;

static void schedule(void);

int health_init(struct loop *l)
{
	hloop = l;
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != 0)
		return error_set("curl_global_init failed");
	multi = curl_multi_init();
	if (!multi)
		return error_set("curl_multi_init failed");
	return 0;
}

void health_shutdown(void)
{
	while (checks)
		health_cancel(checks);
	if (multi)
		curl_multi_cleanup(multi);
	multi = NULL;
}

static size_t discard(char *p, size_t size, size_t n, void *arg)
{
	return size * n;
}

static size_t on_header(char *p, size_t size, size_t n, void *arg)
{
	struct health *h = arg;
	size_t len = size * n, k;

	if (!h->want_header)
		return len;
	k = strlen(h->want_header);
	if (len > k + 1 && !strncasecmp(p, h->want_header, k) && p[k] == ':') {
		const char *v = p + k + 1;
		size_t vl = len - k - 1;

		while (vl && (*v == ' ' || *v == '\t'))
			v++, vl--;
		while (vl && (v[vl - 1] == '\r' || v[vl - 1] == '\n' ||
			      v[vl - 1] == ' '))
			vl--;
		if (vl == strlen(h->want_value) && !memcmp(v, h->want_value, vl))
			h->header_ok = 1;
	}
	return len;
}

static void unlink_check(struct health *h)
{
	struct health **pp;

	for (pp = &checks; *pp; pp = &(*pp)->next)
		if (*pp == h) {
			*pp = h->next;
			return;
		}
}

static void check_free(struct health *h)
{
	if (h->easy) {
		curl_multi_remove_handle(multi, h->easy);
		curl_easy_cleanup(h->easy);
	}
	curl_slist_free_all(h->headers);
	free(h->url);
	free(h->host);
	free(h->want_header);
	free(h->want_value);
	free(h);
}

static void finish(struct health *h, int ok)
{
	struct health_result r;
	health_fn fn = h->fn;
	void *arg = h->arg;
	char err[256];

	memcpy(err, h->last_error, sizeof(err));
	r.ok = ok;
	r.status = h->last_status;
	r.elapsed_ms = (long)(now_ms() - h->start);
	r.error = err[0] ? err : NULL;
	unlink_check(h);
	check_free(h);
	fn(arg, &r);
}

static int start_try(struct health *h)
{
	long left = h->timeout_ms - (long)(now_ms() - h->start);

	h->easy = curl_easy_init();
	if (!h->easy)
		return error_set("curl_easy_init failed");
	h->header_ok = 0;
	curl_easy_setopt(h->easy, CURLOPT_URL, h->url);
	curl_easy_setopt(h->easy, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h->easy, CURLOPT_CONNECTTIMEOUT_MS, 1000L);
	curl_easy_setopt(h->easy, CURLOPT_TIMEOUT_MS, left > 100 ? left : 100L);
	curl_easy_setopt(h->easy, CURLOPT_WRITEFUNCTION, discard);
	curl_easy_setopt(h->easy, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(h->easy, CURLOPT_HEADERDATA, h);
	curl_easy_setopt(h->easy, CURLOPT_FORBID_REUSE, 1L);
	if (h->headers)
		curl_easy_setopt(h->easy, CURLOPT_HTTPHEADER, h->headers);
	curl_easy_setopt(h->easy, CURLOPT_PRIVATE, h);
	curl_multi_add_handle(multi, h->easy);
	return 0;
}

static void on_tick(struct loop *l, void *arg)
{
	int running, left;
	CURLMsg *m;
	struct health *h, *next;
	int64_t now;

	tick_timer = 0;
	curl_multi_perform(multi, &running);
	while ((m = curl_multi_info_read(multi, &left))) {
		if (m->msg != CURLMSG_DONE)
			continue;
		curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&h);
		h->last_status = 0;
		if (m->data.result == CURLE_OK) {
			curl_easy_getinfo(h->easy, CURLINFO_RESPONSE_CODE,
					  &h->last_status);
			snprintf(h->last_error, sizeof(h->last_error),
				 "HTTP status %ld", h->last_status);
			if (h->want_header && !h->header_ok)
				snprintf(h->last_error, sizeof(h->last_error),
					 "answer without %s: %s", h->want_header,
					 h->want_value);
		} else {
			snprintf(h->last_error, sizeof(h->last_error), "%s",
				 curl_easy_strerror(m->data.result));
		}
		curl_multi_remove_handle(multi, h->easy);
		curl_easy_cleanup(h->easy);
		h->easy = NULL;
		if (h->last_status > 0 && h->last_status <= h->max_status &&
		    (!h->want_header || h->header_ok)) {
			finish(h, 1);
			continue;
		}
		h->next_try = now_ms() + h->interval_ms;
	}
	now = now_ms();
	for (h = checks; h; h = next) {
		next = h->next;
		if (now - h->start >= h->timeout_ms) {
			if (!h->last_error[0])
				snprintf(h->last_error, sizeof(h->last_error),
					 "no answer");
			finish(h, 0);
			continue;
		}
		if (!h->easy && now >= h->next_try && start_try(h) < 0)
			finish(h, 0);
	}
	schedule();
}

static void schedule(void)
{
	if (checks && !tick_timer)
		tick_timer = loop_add_timer(hloop, TICK_MS, on_tick, NULL);
	if (!checks && tick_timer) {
		loop_del_timer(hloop, tick_timer);
		tick_timer = 0;
	}
}

struct health *health_start(const struct health_req *req, health_fn fn,
			    void *arg)
{
	struct health *h = xcalloc(1, sizeof(*h));

	h->url = xstrdup(req->url);
	h->max_status = req->max_status > 0 ? req->max_status : 499;
	h->interval_ms = req->interval_ms > 0 ? req->interval_ms : 50;
	h->timeout_ms = req->timeout_ms > 0 ? req->timeout_ms : 60000;
	h->fn = fn;
	h->arg = arg;
	h->start = now_ms();
	if (req->host) {
		char *hdr = xasprintf("Host: %s", req->host);

		h->headers = curl_slist_append(h->headers, hdr);
		free(hdr);
	}
	if (req->want_header) {
		h->want_header = xstrdup(req->want_header);
		h->want_value = xstrdup(req->want_value ? req->want_value : "");
		h->headers = curl_slist_append(h->headers, "X-Berth-Probe: 1");
	}
	if (start_try(h) < 0) {
		check_free(h);
		return NULL;
	}
	h->next = checks;
	checks = h;
	schedule();
	return h;
}

void health_cancel(struct health *h)
{
	if (!h)
		return;
	unlink_check(h);
	check_free(h);
	schedule();
}
