/*
 * health: readiness checks over HTTP with libcurl's multi interface,
 * driven by the engine's loop (never blocking it).
 *
 * A check polls GET url every interval_ms until a response with status
 * <= max_status arrives (ok), or timeout_ms passes (fail).  host, if not
 * NULL, is sent as the Host header (to check an app through nginx).
 * If want_header/want_value are set, a response counts only if it carries
 * that header with that value (to confirm which release answered: nginx's
 * probe listener adds X-Berth-Upstream, router.h).  want_value NULL: any
 * value will do.  A list ("A, B" or "A : B", as nginx's $upstream_addr
 * after a retry) matches by its last element: the server that answered.
 * unix_socket, if set, is where to connect instead of the url's host and
 * port (the url's path still counts); header is one more request header
 * ("X-Berth-Peer: 20004").
 *
 * Each attempt gets ~1 s to connect and at most the time left; a refused
 * connection or a bad answer is retried interval_ms later (with once,
 * it is the result: a check that makes a single attempt).  The body is
 * read only when want_body asks for a string in it (app.json's
 * healthchecks "content").  Proxies from the environment are ignored.
 *
 * Lifetime: the check belongs to this module.  fn runs from the loop
 * (never inside health_start), exactly once unless the check was
 * cancelled first; the check is freed when fn returns, so drop the
 * pointer in fn.  fn may start and cancel other checks; cancelling the
 * check whose fn is running does nothing.
 */
#ifndef BERTH_HEALTH_H
#define BERTH_HEALTH_H

struct loop;
struct health;

struct health_result {
	int ok;			/* 1 healthy */
	long status;		/* last HTTP status, 0 if none */
	long elapsed_ms;	/* from start to the answer (or timeout) */
	const char *error;	/* last failure in words, borrowed */
};

typedef void (*health_fn)(void *arg, const struct health_result *r);

int health_init(struct loop *l);
void health_shutdown(void);

struct health_req {
	const char *url;		/* http://127.0.0.1:PORT/path */
	const char *host;		/* or NULL */
	long max_status;		/* e.g. 499 */
	long interval_ms;
	long timeout_ms;
	const char *want_header;	/* or NULL */
	const char *want_value;
	const char *unix_socket;	/* or NULL */
	const char *header;		/* "Name: value", or NULL */
	const char *want_body;		/* or NULL: the body (its first
					 * 64 KiB) must contain it */
	long attempt_timeout_ms;	/* 0: each attempt may take what is
					 * left of timeout_ms */
	long initial_delay_ms;		/* 0: the first attempt at once */
	int once;			/* one attempt of at most timeout_ms:
					 * its outcome is the result */
	int attempts;			/* 0: as many as timeout_ms allows;
					 * else fail after that many tries
					 * that reached the app (a refused
					 * connection is not one) */
};

/* Start a check; fn is called exactly once unless cancelled first. */
struct health *health_start(const struct health_req *req, health_fn fn,
			    void *arg);
/* Cancel a running check; fn is not called. NULL is a no-op. */
void health_cancel(struct health *h);

#endif
