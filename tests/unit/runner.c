/* runner.c: lines, capture, the deadline and its group kill, the linger
 * after a child whose stray keeps the pipe, a forked function, ticks;
 * each both ways: runner_run() and runner_start() on a loop. */
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/wait.h>
#include <unistd.h>

#include "loop.h"
#include "reaper.h"
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

/* The loop as the engine runs it: SIGCHLD through a signalfd to the
 * reaper, and a heartbeat that shows the loop turning meanwhile. */
struct async {
	struct loop *loop;
	int sigfd;
	int result, done, beats;
	uint64_t beat;
};

static void on_sigchld(struct loop *l, int fd, unsigned events, void *arg)
{
	struct signalfd_siginfo si;

	(void)l;
	(void)events;
	(void)arg;
	while (read(fd, &si, sizeof(si)) == (ssize_t)sizeof(si))
		;
	reaper_reap();
}

static void on_beat(struct loop *l, void *arg)
{
	struct async *a = arg;

	a->beats++;
	a->beat = loop_add_timer(l, 20, on_beat, a);
}

static void on_done(struct runner *r, int result, void *arg)
{
	struct async *a = arg;

	(void)r;
	a->result = result;
	a->done = 1;
	loop_del_timer(a->loop, a->beat);
	a->beat = 0;
	loop_stop(a->loop);
}

static struct async as;

static int run_async(struct runner *r)
{
	if (!as.loop) {
		sigset_t set;

		sigemptyset(&set);
		sigaddset(&set, SIGCHLD);
		sigprocmask(SIG_BLOCK, &set, NULL);
		as.loop = loop_new();
		as.sigfd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
		loop_add_fd(as.loop, as.sigfd, LOOP_READ, on_sigchld, NULL);
	}
	as.done = 0;
	as.beats = 0;
	if (runner_start(r, as.loop, on_done, &as) < 0)
		return -1;
	as.beat = loop_add_timer(as.loop, 20, on_beat, &as);
	loop_run(as.loop);
	return as.result;
}

static int async_mode;

static int sh(struct got *g, const char *script, long timeout_ms)
{
	char *argv[] = { "/bin/sh", "-c", (char *)(uintptr_t)script, NULL };
	struct runner r;
	int ret;

	buf_release(&g->out);
	buf_release(&g->err);
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
	ret = async_mode ? run_async(&r) : runner_run(&r);
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

static int extra_fd = -1;

/* In the jail: the folder's own file at "/", the caller's fd closed, and
 * an error of two lines. */
static int in_jail(void *arg)
{
	(void)arg;
	if (access("/only-this", F_OK) < 0)
		return error_set("no /only-this in the jail");
	if (fcntl(extra_fd, F_GETFD) >= 0)
		return error_set("the caller's fd is open in the jail");
	return error_set("first line\nsecond\tline");
}

/* runner_call_as() with a jail (as root): it is entered, nothing of the
 * caller's is open there, the error comes back as one line. */
static void call_in_jail(void)
{
	char top[] = "/tmp/berth-unit-runner-XXXXXX", path[64];
	struct runner_call call = {
		.fn = in_jail, .uid = -1, .gid = -1, .what = "the jailed",
		.setup_msg = "cannot start the jailed", .one_line = 1,
	};
	int fd;

	if (geteuid() != 0) {
		skip("not root: no chroot");
		skip("not root: no chroot");
		return;
	}
	if (!mkdtemp(top))
		return;
	snprintf(path, sizeof(path), "%s/only-this", top);
	fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
	if (fd >= 0)
		close(fd);
	extra_fd = open("/", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	call.jail = top;
	ok(runner_call_as(&call) == -1 &&
	   !strcmp(error_last(), "first line?second?line"),
	   "a jail: entered, no fd of the caller's, the error as one line (%s)",
	   error_last());
	call.jail = "/no/such/folder";
	ok(runner_call_as(&call) == -1 &&
	   !strcmp(error_last(), "cannot start the jailed"),
	   "a jail that cannot be entered: setup_msg (%s)", error_last());
	close(extra_fd);
	unlink(path);
	rmdir(top);
}

static void both_ways(void)
{
	const char *how = async_mode ? "runner_start" : "runner_run";
	struct got g;
	int64_t t0;
	int rc;

	buf_init(&g.out, 0);
	buf_init(&g.err, 0);
	printf("# %s\n", how);
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
	if (async_mode)
		ok(as.beats >= 5, "the loop ran on meanwhile (%d beats)",
		   as.beats);
	buf_release(&g.out);
	buf_release(&g.err);
}

int main(void)
{
	struct got g;
	struct buf cap = BUF_INIT;
	struct runner r;
	int rc;

	both_ways();
	async_mode = 1;
	both_ways();
	{
		/* given up: no callback, the group killed, nothing left */
		char *argv[] = { "/bin/sh", "-c", "sleep 30", NULL };
		int fired = 0;

		runner_init(&r);
		r.spawn.argv = argv;
		r.spawn.envp = env;
		r.line_streams = 1u << RUNNER_OUT;
		r.on_line = on_line;
		r.arg = &g;
		ok(runner_start(&r, as.loop, on_done, &fired) == 0 &&
		   runner_running(&r), "runner_start: running");
		runner_cancel(&r);
		ok(!runner_running(&r) && r.fd[1] < 0 && !fired,
		   "runner_cancel: stopped, fds closed, no callback");
		runner_init(&r);
		r.spawn.argv = (char *[]){ "/no/such/program", NULL };
		r.spawn.envp = env;
		ok(runner_start(&r, as.loop, on_done, &fired) == -1 &&
		   strstr(error_last(), "cannot run") && !runner_running(&r),
		   "runner_start of a program that cannot start: -1 (%s)",
		   error_last());
	}
	async_mode = 0;


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
	call_in_jail();
	return tap_done();
}
