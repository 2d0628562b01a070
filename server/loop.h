/*
 * loop: the single-threaded event loop (epoll) every long-lived process
 * runs: fd callbacks and one-shot timers.  Callbacks may add and remove
 * fds and timers, including their own.
 */
#ifndef BERTH_LOOP_H
#define BERTH_LOOP_H

#include <stdint.h>

struct loop;

enum loop_events {
	LOOP_READ = 1 << 0,
	LOOP_WRITE = 1 << 1,
	LOOP_ERROR = 1 << 2,	/* reported only: hang-up or error */
};

typedef void (*loop_fd_fn)(struct loop *l, int fd, unsigned events,
			   void *arg);
typedef void (*loop_timer_fn)(struct loop *l, void *arg);

struct loop *loop_new(void);
/* Frees the loop; does not close registered fds. */
void loop_free(struct loop *l);

/* Watch fd for events (LOOP_READ|LOOP_WRITE). One callback per fd. */
int loop_add_fd(struct loop *l, int fd, unsigned events, loop_fd_fn fn,
		void *arg);
int loop_mod_fd(struct loop *l, int fd, unsigned events);
/* Stop watching fd (does not close it). Safe for unknown fds. */
void loop_del_fd(struct loop *l, int fd);

/* Call fn once after ms milliseconds. Returns a non-zero timer id. */
uint64_t loop_add_timer(struct loop *l, long ms, loop_timer_fn fn, void *arg);
/* Cancel a pending timer; 0 and fired ids are ignored. */
void loop_del_timer(struct loop *l, uint64_t id);

/* Run until loop_stop(); returns 0, or -1 on an epoll failure. */
int loop_run(struct loop *l);
void loop_stop(struct loop *l);

#endif
