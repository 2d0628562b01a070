/*
 * supervise: restart with back-off, the one policy for what the engine
 * keeps running: nginx, the embedded PostgreSQL and each app process
 * (struct proc's restart, runs.c), all through struct supervisor.  After an unexpected exit the
 * next start waits a delay that starts at min_ms, doubles with each
 * quick death up to max_ms, and starts over once a run lasted
 * stable_ms.  A start that fails is tried again after the next delay.
 *
 * Runs in the engine's loop, on its timers: nothing here blocks (the
 * start callback is the caller's, and says itself what it blocks).
 */
#ifndef BERTH_SUPERVISE_H
#define BERTH_SUPERVISE_H

#include <stdint.h>

struct loop;

/* The delays alone (no timer): for callers that keep their own. */
struct restart_backoff {
	long min_ms, max_ms, stable_ms;
	long next_ms;		/* what the next restart waits */
};
void backoff_init(struct restart_backoff *b, long min_ms, long max_ms,
		  long stable_ms);
/* The run that began at started_ms (now_ms() clock) ended: the delay
 * before the next start (min_ms again if it lasted stable_ms). */
long backoff_exited(struct restart_backoff *b, int64_t started_ms);
/* A start failed: the delay before the next try. */
long backoff_failed(struct restart_backoff *b);

struct supervisor {
	struct restart_backoff backoff;
	int64_t started_ms;	/* the last start */
	struct loop *loop;
	uint64_t timer;		/* a restart is pending */
	unsigned long restarts;	/* starts made by the supervisor */
	/* One start: 0 (also when there is nothing to start any more), or
	 * -1 with error_last(), tried again later. */
	int (*start)(void *arg);
	/* A start failed (error_last() says why): to log it, with the
	 * delay before the next try. */
	void (*on_retry)(void *arg, long delay_ms);
	void *arg;
};
void supervisor_init(struct supervisor *s, struct loop *l, long min_ms,
		     long max_ms, long stable_ms, int (*start)(void *arg),
		     void (*on_retry)(void *arg, long delay_ms), void *arg);
/* A start was made (the first one, by the caller; or by start()). */
void supervisor_started(struct supervisor *s);
/* The process exited on its own: start it again after the back-off.
 * The delay; no second restart is queued if one is pending, and none at
 * all without a loop. */
long supervisor_exited(struct supervisor *s);
/* A start that went on after start() (or the caller's first start)
 * returned 0 failed later (a process that waited for its user): tried
 * again after the next delay, as a start that failed at once, but
 * on_retry is not called (the caller says why).  The delay. */
long supervisor_failed(struct supervisor *s);
/* No restart pending after this (a stop, or a start made by hand). */
void supervisor_cancel(struct supervisor *s);

#endif
