/*
 * runner: run one child to its end, the one way berth does it: its output
 * read as lines (or kept whole, bounded), a deadline, and a group kill.
 * spawn.h starts a program; this file reads its pipes and waits for it.
 *
 * The child leads its own process group.  At the deadline the whole group
 * is KILLed.  When the child exits, what is left of its group is KILLed
 * too (a stray daemon must not hold a build open), and its pipes are read
 * for at most RUNNER_LINGER_MS more: what it wrote is still read, but a
 * process that left the group and keeps a pipe open is not waited for.
 *
 * Two ways to drive it, with the same rules and the same messages:
 *
 * - runner_run() blocks the calling process until the child is done: for
 *   the processes that have nothing else to do meanwhile (the build
 *   child, an SSH session) and for short calls (runner_capture()).  It
 *   reaps the child with waitpid() itself, so in the engine it must only
 *   run for programs that end within milliseconds, or before the loop
 *   runs (see the headers that call it for what they block).
 *
 * - runner_start() returns at once, and the loop (loop.h) does the rest:
 *   it reads the pipes on fd watches, keeps the deadline, the linger and
 *   the ticks on its timers, and hears the exit from the reaper
 *   (reaper.h: the process that runs the loop must call reaper_reap() on
 *   SIGCHLD, as the engine does).  on_done runs once, from the loop, when
 *   the child is done.  Nothing in it blocks: this is the engine's way to
 *   run anything that may take longer than a few milliseconds.
 *
 * Output callbacks run in the calling process, between reads.
 */
#ifndef BERTH_RUNNER_H
#define BERTH_RUNNER_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "spawn.h"
#include "util.h"

#define RUNNER_LINGER_MS 1000
#define RUNNER_LINE_MAX 4096	/* a longer line comes in pieces */

enum runner_stream {
	RUNNER_OUT = 1,		/* the child's fd 1 */
	RUNNER_ERR = 2,		/* the child's fd 2 */
};

/* One line of a stream, without its ending ("\n", "\r\n", or a bare "\r"
 * of a progress bar); a last line without one comes at the end. */
typedef void (*runner_line_fn)(void *arg, enum runner_stream stream,
			       const char *line, size_t len);

struct runner;
struct loop;

/* The child is done (runner_start()): result 0 with r->status set, or -1
 * with error_last() as runner_run() would return.  r may be freed here. */
typedef void (*runner_done_fn)(struct runner *r, int result, void *arg);

struct runner {
	/*
	 * The program: argv, envp, dir, flags, uid/gid, child_setup as
	 * spawn.h says.  The runner adds SPAWN_NEW_PGRP and sets out/err
	 * for the streams it reads; a stream it does not read goes where
	 * spawn.out/spawn.err say (-1: /dev/null).  The caller owns those
	 * fds.
	 */
	struct spawn spawn;
	/*
	 * Or, with spawn.argv NULL, a function run in a forked child (its
	 * own group too): child_main(child_arg, out, err) gets the write
	 * ends of the streams read (-1 for the others), and what it returns
	 * is the child's exit status.  fds 0-2 are left as they are.
	 */
	int (*child_main)(void *arg, int out, int err);
	void *child_arg;
	/* Streams read as lines: on_line(arg, stream, ...) for each. */
	runner_line_fn on_line;
	void *arg;
	unsigned line_streams;		/* 1 << RUNNER_OUT | 1 << RUNNER_ERR */
	/* Streams kept whole instead: capture[stream] gets at most
	 * capture_max bytes (0: no bound), the rest is read and dropped. */
	struct buf *capture[3];
	size_t capture_max;
	int merge;			/* stderr joins stdout's pipe */
	long timeout_ms;		/* 0: none */
	const char *timeout_msg;	/* the error then; NULL: "'PROG'
					 * timed out after N ms" */
	/* Called when the child has been quiet for tick_ms (keepalives). */
	long tick_ms;
	void (*on_tick)(void *arg);

	/* out */
	pid_t pid;
	int status;			/* as from waitpid */
	int timed_out;

	/* the runner's own */
	int fd[3];
	struct buf pending[3];
	int64_t deadline, linger_until, last_output;
	int exited;
	/* runner_start() only */
	struct loop *loop;
	runner_done_fn on_done;
	void *done_arg;
	uint64_t timer;			/* the next deadline, linger or tick */
	char *prog;			/* argv[0], for the messages */
};

/* Defaults: nothing read, no deadline, no callbacks. */
void runner_init(struct runner *r);
/*
 * Start the child and block until it is done.  0 with r->status set (any
 * exit status, or death by a signal), or -1 with error_last(): it could
 * not start, or ran past its deadline (r->timed_out; its group was
 * killed).  Every line is delivered and every fd closed either way.
 */
int runner_run(struct runner *r);

/*
 * Start the child and return at once; the loop runs it to its end and
 * then calls on_done(r, result, arg) once (never from inside this call).
 * r must stay where it is until then; spawn.argv and envp are needed only
 * during this call.  -1 with error_last() if it could not start: nothing
 * runs and on_done is not called.  Needs the reaper (see above).
 */
int runner_start(struct runner *r, struct loop *l, runner_done_fn on_done,
		 void *arg);
/* Give up a child runner_start() started and whose on_done has not run:
 * its group is KILLed (reaped silently later), every fd closed, and
 * on_done is never called.  Nothing happens if nothing runs. */
void runner_cancel(struct runner *r);
/*
 * Block until a child runner_start() started is done, then call its
 * on_done (from inside this call), as the loop would have: for an engine
 * that exits and must not cut a child short (a userdel killed half way
 * leaves the user database locked).  Waits as long as the child runs:
 * its deadline is kept by nobody here.  Nothing happens if nothing runs.
 */
void runner_wait(struct runner *r);
/* 1 between runner_start() and on_done (or runner_cancel()). */
int runner_running(const struct runner *r);

/*
 * A short command to completion, blocking, stdout and stderr together
 * into out (at most max bytes kept; the rest is read and dropped), with a
 * time limit in ms (0: none).  The exit status (0..255), or -1 if it
 * could not run, was killed or timed out (error_last() says which).
 */
int runner_capture(char *const *argv, char *const *envp, const char *dir,
		   struct buf *out, size_t max, long timeout_ms);

/*
 * A function of ours run as another user: in a forked child that runs
 * setup() (joins the build's cgroup; NULL: none), enters the jail if one
 * is given, drops to uid/gid with no supplementary groups (uid -1: stays
 * who it is), dies with its parent, and calls fn(arg) with umask 022 and
 * no error set.  Blocks until the child ends (runner_run(): its own
 * group, KILLed at the deadline).  0 if fn returned 0; else -1 with
 * error_last() set to the error fn left (its first
 * RUNNER_CALL_REASON_MAX bytes, carried over a pipe; with one_line, its
 * control bytes shown as '?'), setup_msg when setup(), the jail or the
 * change of user failed, timeout_msg at the deadline, or "WHAT exited
 * with status N" when the child said nothing.
 *
 * The jail: the child closes every fd but 0-2 and the pipe that carries
 * its error (an open folder would lead out of a chroot), then chroots
 * into jail and goes to its "/", as the caller still (root).  fn sees
 * only what the folder holds, under the names it has there.
 */
#define RUNNER_CALL_REASON_MAX 1024
struct runner_call {
	int (*fn)(void *arg);		/* 0, or -1 with error_last() */
	void *arg;
	int (*setup)(void);		/* 0, or non-zero: setup_msg */
	const char *setup_msg;
	long uid, gid;		/* uid -1: stays who it is */
	long timeout_ms;		/* 0: none */
	const char *timeout_msg;
	const char *what;		/* "checkout": the child's name */
	const char *jail;		/* NULL: none; see above */
	int one_line;			/* the error shown as one line */
};
int runner_call_as(const struct runner_call *call);

#endif
