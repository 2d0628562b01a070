/*
 * health.c unit test: readiness checks driven by the loop, against real
 * python3 http.server processes: one that listens late, one that answers
 * 500, a port nobody listens on, header checks, Host, and cancelling
 * (also from another check's callback).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tap.h"
#include "lib-http.h"

#include "health.h"
#include "log.h"
#include "banned.h"

struct got {
	int calls;
	struct health_result r;
	char error[256];
	struct health *cancel;	/* cancel this one from the callback */
	struct loop *l;
	int *pending;
};

static void on_result(void *arg, const struct health_result *r)
{
	struct got *g = arg;

	g->calls++;
	g->r = *r;
	snprintf(g->error, sizeof(g->error), "%s", r->error ? r->error : "");
	g->r.error = g->error;
	if (g->cancel) {
		health_cancel(g->cancel);
		g->cancel = NULL;
		(*g->pending)--;
	}
	if (g->pending && --(*g->pending) == 0)
		loop_stop(g->l);
}

static struct loop *l;

/* Run one check to its end (or 'limit' ms). */
static struct health *run_one(const struct health_req *req, struct got *g,
			      long limit)
{
	int pending = 1;
	struct health *h;

	memset(g, 0, sizeof(*g));
	g->l = l;
	g->pending = &pending;
	h = health_start(req, on_result, g);
	if (h)
		test_run_loop(l, limit);
	return h;
}

static void cancel_timer(struct loop *lp, void *arg)
{
	struct health **h = arg;

	health_cancel(*h);
	*h = NULL;
}

int main(void)
{
	int late_port = test_free_port(), bad_port = test_free_port();
	int none_port = test_free_port(), ok_port = test_free_port();
	pid_t late, bad, good;
	char url[128], url_bad[128], url_none[128], url_ok[128], slot[32];
	struct health_req req;
	struct got g, g2;
	struct health *h, *h2;

	log_init(0, "health-test");
	l = loop_new();
	if (!l || test_watch_children(l) < 0)
		fatal("setup");
	ok(health_init(l) == 0, "init");
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/", late_port);
	snprintf(url_bad, sizeof(url_bad), "http://127.0.0.1:%d/", bad_port);
	snprintf(url_none, sizeof(url_none), "http://127.0.0.1:%d/health",
		 none_port);
	snprintf(url_ok, sizeof(url_ok), "http://127.0.0.1:%d/", ok_port);

	late = test_slot_server(late_port, 200, 0.8);
	bad = test_slot_server(bad_port, 500, 0);
	good = test_slot_server(ok_port, 200, 0);
	ok(late > 0 && bad > 0 && good > 0, "servers started");

	memset(&req, 0, sizeof(req));
	req.url = url;
	req.max_status = 499;
	req.interval_ms = 50;
	req.timeout_ms = 10000;
	h = run_one(&req, &g, 15000);
	ok(h && g.calls == 1 && g.r.ok == 1 && g.r.status == 200,
	   "a server that listens late becomes ready (%ld, %s)", g.r.status,
	   g.error);
	ok(g.r.elapsed_ms >= 500 && g.r.elapsed_ms < 5000,
	   "after its delay (%ld ms)", g.r.elapsed_ms);

	req.url = url_bad;
	req.timeout_ms = 700;
	run_one(&req, &g, 5000);
	ok(g.calls == 1 && g.r.ok == 0 && g.r.status == 500 &&
	   strstr(g.error, "500"),
	   "a 500 is not ready (%ld, %s)", g.r.status, g.error);
	ok(g.r.elapsed_ms >= 650 && g.r.elapsed_ms < 1500,
	   "it fails at the timeout (%ld ms)", g.r.elapsed_ms);
	req.max_status = 599;
	run_one(&req, &g, 5000);
	ok(g.calls == 1 && g.r.ok == 1 && g.r.status == 500,
	   "unless max_status allows it");
	req.max_status = 499;

	req.url = url_none;
	req.timeout_ms = 600;
	run_one(&req, &g, 5000);
	ok(g.calls == 1 && g.r.ok == 0 && g.r.status == 0 &&
	   strstr(g.error, "onnect"),
	   "nobody listening: not ready (%s)", g.error);
	ok(g.r.elapsed_ms >= 550 && g.r.elapsed_ms < 1500,
	   "after the timeout (%ld ms)", g.r.elapsed_ms);

	/* once: one attempt, its outcome at once (the watch's checks) */
	req.once = 1;
	req.timeout_ms = 5000;
	req.interval_ms = 5000;
	run_one(&req, &g, 8000);
	ok(g.calls == 1 && g.r.ok == 0 && g.r.elapsed_ms < 2500,
	   "once: a refused connection fails the check at once (%ld ms, %s)",
	   g.r.elapsed_ms, g.error);
	req.url = url_bad;
	run_one(&req, &g, 8000);
	ok(g.calls == 1 && g.r.ok == 0 && g.r.status == 500 &&
	   g.r.elapsed_ms < 2500,
	   "once: so does a 500 (%ld ms)", g.r.elapsed_ms);
	req.url = url;
	run_one(&req, &g, 8000);
	ok(g.calls == 1 && g.r.ok == 1, "once: a 200 passes (%s)", g.error);
	req.once = 0;
	req.interval_ms = 50;
	req.timeout_ms = 600;
	req.url = url_none;

	/* headers */
	req.url = url_ok;
	req.timeout_ms = 3000;
	req.host = "myapp.example";
	req.want_header = "X-Seen-Host";
	req.want_value = "myapp.example";
	run_one(&req, &g, 5000);
	ok(g.calls == 1 && g.r.ok == 1, "Host is sent (%s)", g.error);
	snprintf(slot, sizeof(slot), "%d", ok_port);
	req.host = NULL;
	req.want_header = "x-slot";
	req.want_value = slot;
	run_one(&req, &g, 5000);
	ok(g.calls == 1 && g.r.ok == 1,
	   "a wanted header matches case-insensitively (%s)", g.error);
	req.want_value = "1";
	req.timeout_ms = 400;
	run_one(&req, &g, 5000);
	ok(g.calls == 1 && g.r.ok == 0 && g.r.status == 200 &&
	   strstr(g.error, "X-Slot") == NULL && strstr(g.error, "x-slot: 1"),
	   "a wrong value is not ready (%s)", g.error);
	req.want_header = "X-Chain";
	snprintf(slot, sizeof(slot), "127.0.0.1:%d", ok_port);
	req.want_value = slot;
	req.timeout_ms = 3000;
	run_one(&req, &g, 5000);
	ok(g.calls == 1 && g.r.ok == 1,
	   "a list matches by its last element (%s)", g.error);
	req.want_value = "127.0.0.1:1";
	req.timeout_ms = 400;
	run_one(&req, &g, 5000);
	ok(g.calls == 1 && g.r.ok == 0,
	   "but not by an earlier one (%s)", g.error);
	req.want_header = NULL;
	req.want_value = NULL;

	/* cancel from a timer while the check keeps failing */
	req.url = url_none;
	req.timeout_ms = 5000;
	memset(&g, 0, sizeof(g));
	h = health_start(&req, on_result, &g);
	loop_add_timer(l, 300, cancel_timer, &h);
	test_run_loop(l, 800);
	ok(h == NULL && g.calls == 0, "a cancelled check never calls back");
	health_cancel(NULL);

	/* cancel one check from another's callback */
	{
		int pending = 2;

		memset(&g, 0, sizeof(g));
		memset(&g2, 0, sizeof(g2));
		g.l = g2.l = l;
		g.pending = g2.pending = &pending;
		req.url = url_none;
		req.timeout_ms = 5000;
		h2 = health_start(&req, on_result, &g2);
		req.url = url_ok;
		h = health_start(&req, on_result, &g);
		g.cancel = h2;
		test_run_loop(l, 3000);
		ok(h && h2 && g.calls == 1 && g.r.ok == 1 && g2.calls == 0 &&
		   pending == 0,
		   "a callback can cancel another check");
	}

	/* many at once */
	{
		struct got gs[8];
		int pending = 8, i, good_n = 0;

		req.url = url_ok;
		for (i = 0; i < 8; i++) {
			memset(&gs[i], 0, sizeof(gs[i]));
			gs[i].l = l;
			gs[i].pending = &pending;
			health_start(&req, on_result, &gs[i]);
		}
		test_run_loop(l, 5000);
		for (i = 0; i < 8; i++)
			good_n += gs[i].calls == 1 && gs[i].r.ok;
		ok(good_n == 8, "eight checks at once (%d ok)", good_n);
	}

	req.url = "ftp://x/";
	ok(health_start(&req, on_result, &g) == NULL &&
	   strstr(error_last(), "invalid health check url"),
	   "a bad url is refused: %s", error_last());

	/* a check still running at shutdown is dropped quietly */
	req.url = url_none;
	memset(&g, 0, sizeof(g));
	health_start(&req, on_result, &g);
	health_shutdown();
	ok(g.calls == 0, "shutdown drops running checks");

	test_stop_child(late);
	test_stop_child(bad);
	test_stop_child(good);
	loop_free(l);
	return tap_done();
}
