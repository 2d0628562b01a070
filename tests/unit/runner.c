/* runner.c: lines, capture, the deadline and its group kill, the linger
 * after a child whose stray keeps the pipe, a forked function, ticks. */
#include <signal.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "runner.h"
#include "tap.h"
#include "util.h"
#include "banned.h"

static char *env[] = { "PATH=/usr/bin:/bin", NULL };

struct got {
	struct buf out, err;
	int ticks;
};

static void on_line(void *arg, enum runner_stream s, const char *line,
		    size_t len)
{
	struct got *g = arg;
	struct buf *b = s == RUNNER_OUT ? &g->out : &g->err;

	buf_add(b, "[", 1);
	buf_add(b, line, len);
	buf_add(b, "]", 1);
}

static void on_tick(void *arg)
{
	((struct got *)arg)->ticks++;
}

static int sh(struct got *g, const char *script, long timeout_ms)
{
	char *argv[] = { "/bin/sh", "-c", (char *)(uintptr_t)script, NULL };
	struct runner r;
	int ret;

	buf_init(&g->out, 0);
	buf_init(&g->err, 0);
	g->ticks = 0;
	runner_init(&r);
	r.spawn.argv = argv;
	r.spawn.envp = env;
	r.on_line = on_line;
	r.arg = g;
	r.line_streams = 1u << RUNNER_OUT | 1u << RUNNER_ERR;
	r.timeout_ms = timeout_ms;
	r.tick_ms = 100;
	r.on_tick = on_tick;
	ret = runner_run(&r);
	if (ret == 0)
		ret = WIFEXITED(r.status) ? WEXITSTATUS(r.status) : 256;
	return ret;
}

static int child_says(void *arg, int out, int err)
{
	(void)err;
	if (write(out, arg, strlen(arg)) < 0)
		return 9;
	return 7;
}

int main(void)
{
	struct got g;
	struct buf cap = BUF_INIT;
	struct runner r;
	int64_t t0;
	int rc;

	rc = sh(&g, "printf 'a\\nb\\r\\nc\\rd'; echo oops >&2; exit 3", 0);
	ok(rc == 3, "exit status comes back (%d)", rc);
	ok(!strcmp(g.out.data, "[a][b][c][d]"),
	   "lines: \\n, \\r\\n, a bare \\r and a last line without one (%s)",
	   g.out.data);
	ok(!strcmp(g.err.data, "[oops]"), "stderr is its own stream (%s)",
	   g.err.data);

	t0 = now_ms();
	rc = sh(&g, "echo started; sleep 30 & sleep 30; echo never", 300);
	ok(rc == -1 && strstr(error_last(), "timed out"),
	   "the deadline: -1, timed out (%s)", error_last());
	ok(now_ms() - t0 < 10000, "and the background sleep did not hold it (the group was killed)");
	ok(!strcmp(g.out.data, "[started]"), "lines before the deadline are delivered");

	t0 = now_ms();
	rc = sh(&g, "setsid sleep 30 & echo done", 0);
	ok(rc == 0 && !strcmp(g.out.data, "[done]"),
	   "a stray outside the group keeps the pipe: still done (%d)", rc);
	ok(now_ms() - t0 < 10000, "within the linger after the child exited");

	rc = sh(&g, "sleep 0.5; echo late", 0);
	ok(rc == 0 && g.ticks >= 1, "quiet for a tick: on_tick (%d)", g.ticks);

	rc = runner_capture((char *[]){ "/bin/sh", "-c",
			"echo 0123456789; echo err >&2", NULL },
			env, NULL, &cap, 5, 0);
	ok(rc == 0 && !strcmp(cap.data, "01234"),
	   "capture: merged, bounded (%s)", cap.data);
	buf_release(&cap);
	rc = runner_capture((char *[]){ "/no/such/program", NULL }, env, NULL,
			    &cap, 100, 0);
	ok(rc == -1 && strstr(error_last(), "cannot run"),
	   "a program that cannot start: -1 (%s)", error_last());
	rc = runner_capture((char *[]){ "/bin/sh", "-c", "kill -9 $$", NULL },
			    env, NULL, &cap, 100, 0);
	ok(rc == -1 && strstr(error_last(), "signal 9"),
	   "killed by a signal: -1 (%s)", error_last());
	buf_release(&cap);

	runner_init(&r);
	r.child_main = child_says;
	r.child_arg = "from a function\n";
	buf_init(&g.out, 0);
	buf_init(&g.err, 0);
	r.on_line = on_line;
	r.arg = &g;
	r.line_streams = 1u << RUNNER_OUT;
	rc = runner_run(&r);
	ok(rc == 0 && WIFEXITED(r.status) && WEXITSTATUS(r.status) == 7 &&
	   !strcmp(g.out.data, "[from a function]"),
	   "a forked function: its lines and its status (%s)", g.out.data);
	buf_release(&g.out);
	buf_release(&g.err);
	return tap_done();
}
