/*
 * runner: one child to its end (see runner.h).  The core is the reading
 * and line splitting (runner_feed, runner_finish) and the exit rules (a
 * group kill at the deadline and after the child); runner_run() drives
 * them with poll(), runner_start() with the engine's loop and reaper.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <grp.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "runner.h"
#include "loop.h"
#include "reaper.h"
#include "banned.h"

void runner_init(struct runner *r)
{
	int k;

	memset(r, 0, sizeof(*r));
	spawn_init(&r->spawn);
	r->pid = -1;
	for (k = 0; k < 3; k++) {
		r->fd[k] = -1;
		buf_init(&r->pending[k], 0);
	}
}

static int reads_stream(const struct runner *r, int k)
{
	return (r->line_streams & (1u << k)) || r->capture[k];
}

static void deliver(struct runner *r, int k, const char *line, size_t len)
{
	if (r->on_line)
		r->on_line(r->arg, (enum runner_stream)k, line, len);
}

/* Bytes of stream k as they come: kept whole, or cut into lines. */
static void runner_feed(struct runner *r, int k, const char *data, size_t n)
{
	struct buf *p = &r->pending[k];
	size_t i, start = 0;

	if (r->capture[k]) {
		struct buf *c = r->capture[k];

		if (r->capture_max && c->len + n > r->capture_max)
			n = c->len < r->capture_max ? r->capture_max - c->len : 0;
		buf_add(c, data, n);
		return;
	}
	if (!(r->line_streams & (1u << k)))
		return;
	buf_add(p, data, n);
	for (i = 0; i < p->len; i++) {
		char c = p->data[i];

		if (c == '\n') {
			size_t end = i;

			if (end > start && p->data[end - 1] == '\r')
				end--;
			deliver(r, k, p->data + start, end - start);
			start = i + 1;
		} else if (c == '\r' && i + 1 < p->len &&
			   p->data[i + 1] != '\n') {
			/* a bare \r (a progress bar) ends a line too */
			deliver(r, k, p->data + start, i - start);
			start = i + 1;
		} else if (i - start >= RUNNER_LINE_MAX) {
			deliver(r, k, p->data + start, i - start);
			start = i;
		}
	}
	buf_consume(p, start);
}

/* The end: a last line without its newline, and every fd closed. */
static void runner_finish(struct runner *r)
{
	int k;

	for (k = 1; k <= 2; k++) {
		if (r->pending[k].len) {
			size_t len = r->pending[k].len;

			if (r->pending[k].data[len - 1] == '\r')
				len--;
			deliver(r, k, r->pending[k].data, len);
		}
		buf_release(&r->pending[k]);
		if (r->fd[k] >= 0)
			close(r->fd[k]);
		r->fd[k] = -1;
	}
}

/* The child exited (reaped, status in r->status): what is left of its
 * group goes too; what it wrote is still in the pipes.  (Its pid is not
 * reused as a group id while the group has members.) */
static void runner_exited(struct runner *r)
{
	r->exited = 1;
	kill(-r->pid, SIGKILL);
	r->linger_until = now_ms() + RUNNER_LINGER_MS;
}

static void runner_kill_and_reap(struct runner *r)
{
	kill(-r->pid, SIGKILL);
	while (waitpid(r->pid, &r->status, 0) < 0 && errno == EINTR)
		;
	r->exited = 1;
}

static int start_child(struct runner *r, int outw, int errw)
{
	pid_t pid;

	if (r->spawn.argv) {
		if (outw >= 0)
			r->spawn.out = outw;
		if (errw >= 0)
			r->spawn.err = errw;
		r->spawn.flags |= SPAWN_NEW_PGRP;
		if (spawn_start(&r->spawn) < 0)
			return -1;
		r->pid = r->spawn.pid;
		return 0;
	}
	if (!r->child_main)
		return error_set("nothing to run");
	pid = fork();
	if (pid < 0)
		return error_setsys("cannot fork");
	if (pid == 0) {
		int k;

		setpgid(0, 0);
		for (k = 1; k <= 2; k++)
			if (r->fd[k] >= 0)
				close(r->fd[k]);
		_exit(r->child_main(r->child_arg, outw, errw) & 0xff);
	}
	/* both sides set it: the group exists before either goes on */
	setpgid(pid, pid);
	r->pid = pid;
	return 0;
}

/* An fd that polls readable when pid exits (Linux 5.3), or -1: then the
 * loop looks every 100 ms. */
static int pid_fd(pid_t pid)
{
#ifdef SYS_pidfd_open
	return (int)syscall(SYS_pidfd_open, pid, 0);
#else
	(void)pid;
	return -1;
#endif
}

/* How long poll() may sleep now, in ms. */
static int poll_wait(const struct runner *r, int64_t now, int pidfd)
{
	int64_t wait = r->exited ? r->linger_until - now :
		pidfd >= 0 ? INT32_MAX : 100;

	if (!r->exited && r->deadline && r->deadline - now < wait)
		wait = r->deadline - now;
	if (r->tick_ms && r->on_tick &&
	    r->last_output + r->tick_ms - now < wait)
		wait = r->last_output + r->tick_ms - now;
	return wait < 0 ? 0 : (int)wait;
}

/* The pipes of the streams read (read ends in r->fd, write ends in pw),
 * then the child; the write ends are closed either way. */
static int open_and_start(struct runner *r)
{
	int pw[3] = { -1, -1, -1 };
	int k, ret = -1;

	for (k = 1; k <= 2; k++) {
		int p[2];

		if (!reads_stream(r, k) || (k == RUNNER_ERR && r->merge))
			continue;
		if (pipe2(p, O_CLOEXEC) < 0) {
			error_setsys("cannot make a pipe");
			goto out;
		}
		r->fd[k] = p[0];
		pw[k] = p[1];
	}
	if (r->merge)
		pw[RUNNER_ERR] = pw[RUNNER_OUT];
	if (start_child(r, pw[RUNNER_OUT], pw[RUNNER_ERR]) < 0)
		goto out;
	ret = 0;
out:
	for (k = 1; k <= 2; k++)
		if (pw[k] >= 0 && !(k == RUNNER_ERR && r->merge))
			close(pw[k]);
	return ret;
}

static void set_timeout_error(const struct runner *r, const char *prog)
{
	if (r->timeout_msg)
		error_set("%s", r->timeout_msg);
	else
		error_set("'%s' timed out after %ld ms", prog, r->timeout_ms);
}

int runner_run(struct runner *r)
{
	int k, ret = -1, pidfd = -1;
	char chunk[8192];

	if (open_and_start(r) < 0)
		goto out;
	pidfd = pid_fd(r->pid);
	r->last_output = now_ms();
	r->deadline = r->timeout_ms > 0 ? r->last_output + r->timeout_ms : 0;
	for (;;) {
		struct pollfd p[3];
		int np = 0, i, rc;
		int64_t now = now_ms();

		if (!r->exited) {
			pid_t w = waitpid(r->pid, &r->status, WNOHANG);

			if (w == r->pid) {
				runner_exited(r);
			} else if (w < 0 && errno != EINTR) {
				error_setsys("cannot wait for '%s'",
					     r->spawn.argv ? r->spawn.argv[0]
					     : "a child");
				goto out;
			}
		}
		if (!r->exited && r->deadline && now >= r->deadline) {
			runner_kill_and_reap(r);
			r->timed_out = 1;
			goto out;
		}
		for (k = 1; k <= 2; k++)
			if (r->fd[k] >= 0)
				p[np++] = (struct pollfd){ r->fd[k], POLLIN, 0 };
		if (r->exited && (!np || now >= r->linger_until))
			break;
		if (!r->exited && pidfd >= 0)
			p[np++] = (struct pollfd){ pidfd, POLLIN, 0 };
		if (r->tick_ms && r->on_tick &&
		    now - r->last_output >= r->tick_ms) {
			r->on_tick(r->arg);
			r->last_output = now;
		}
		rc = poll(p, (nfds_t)np, poll_wait(r, now, pidfd));
		if (rc < 0 && errno != EINTR) {
			error_setsys("poll");
			goto out;
		}
		for (i = 0; rc > 0 && i < np; i++) {
			ssize_t n;

			if (!p[i].revents || p[i].fd == pidfd)
				continue;
			k = p[i].fd == r->fd[1] ? 1 : 2;
			n = read(r->fd[k], chunk, sizeof(chunk));
			if (n < 0 && (errno == EINTR || errno == EAGAIN))
				continue;
			if (n <= 0) {
				close(r->fd[k]);
				r->fd[k] = -1;
				continue;
			}
			r->last_output = now_ms();
			runner_feed(r, k, chunk, (size_t)n);
		}
	}
	ret = 0;
out:
	if (r->pid > 0 && !r->exited)
		runner_kill_and_reap(r);
	if (pidfd >= 0)
		close(pidfd);
	runner_finish(r);
	if (r->timed_out)
		set_timeout_error(r, r->spawn.argv ? r->spawn.argv[0] : "child");
	return ret;
}

/* --- runner_start(): the same rules, driven by the loop --------------- */

static void async_arm(struct runner *r);

/* The end: every line delivered, every fd and timer gone, then on_done
 * (which may free r: nothing touches r after it). */
static void async_done(struct runner *r, int result)
{
	runner_done_fn fn = r->on_done;
	void *arg = r->done_arg;
	int k;

	for (k = 1; k <= 2; k++)
		if (r->fd[k] >= 0)
			loop_del_fd(r->loop, r->fd[k]);
	loop_del_timer(r->loop, r->timer);
	r->timer = 0;
	runner_finish(r);
	if (r->timed_out)
		set_timeout_error(r, r->prog ? r->prog : "child");
	FREE_AND_NULL(r->prog);
	r->on_done = NULL;
	r->loop = NULL;
	if (result < 0 && !r->timed_out && !*error_last())
		error_set("cannot run a child");
	if (fn)
		fn(r, result, arg);
}

static int async_open_fds(const struct runner *r)
{
	return r->fd[1] >= 0 || r->fd[2] >= 0;
}

/* Exited, and nothing left to read (or the linger is over): done. */
static void async_check_end(struct runner *r)
{
	if (r->exited && (!async_open_fds(r) || now_ms() >= r->linger_until))
		async_done(r, 0);
	else
		async_arm(r);
}

static void async_on_exit(pid_t pid, int status, void *arg)
{
	struct runner *r = arg;

	(void)pid;
	r->status = status;
	runner_exited(r);
	async_check_end(r);
}

static void async_on_fd(struct loop *l, int fd, unsigned events, void *arg)
{
	struct runner *r = arg;
	char chunk[8192];
	int k = fd == r->fd[1] ? 1 : 2;
	ssize_t n;

	(void)l;
	(void)events;
	n = read(fd, chunk, sizeof(chunk));
	if (n < 0 && (errno == EINTR || errno == EAGAIN))
		return;
	if (n <= 0) {
		loop_del_fd(r->loop, fd);
		close(fd);
		r->fd[k] = -1;
		if (r->exited)
			async_check_end(r);
		return;
	}
	r->last_output = now_ms();
	runner_feed(r, k, chunk, (size_t)n);
}

/* The one timer: the deadline, the end of the linger, or a tick. */
static void async_on_timer(struct loop *l, void *arg)
{
	struct runner *r = arg;
	int64_t now = now_ms();

	(void)l;
	r->timer = 0;
	if (!r->exited && r->deadline && now >= r->deadline) {
		/* killed; the reaper reaps it without us */
		kill(-r->pid, SIGKILL);
		reaper_forget(r->pid);
		r->exited = 1;
		r->timed_out = 1;
		async_done(r, -1);
		return;
	}
	if (r->exited) {
		async_check_end(r);
		return;
	}
	if (r->tick_ms && r->on_tick && now - r->last_output >= r->tick_ms) {
		r->on_tick(r->arg);
		r->last_output = now;
	}
	async_arm(r);
}

/* The timer for whatever comes first; none if nothing is due. */
static void async_arm(struct runner *r)
{
	int64_t now = now_ms(), due = INT64_MAX;

	if (r->exited)
		due = r->linger_until;
	else if (r->deadline)
		due = r->deadline;
	if (!r->exited && r->tick_ms && r->on_tick &&
	    r->last_output + r->tick_ms < due)
		due = r->last_output + r->tick_ms;
	loop_del_timer(r->loop, r->timer);
	r->timer = 0;
	if (due == INT64_MAX)
		return;
	r->timer = loop_add_timer(r->loop, due > now ? (long)(due - now) : 0,
				  async_on_timer, r);
}

int runner_start(struct runner *r, struct loop *l, runner_done_fn on_done,
		 void *arg)
{
	int k;

	if (!l)
		return error_set("no loop to run a child on");
	if (open_and_start(r) < 0)
		goto fail;
	for (k = 1; k <= 2; k++) {
		if (r->fd[k] < 0)
			continue;
		/* the child's end stays blocking; ours must not block */
		if (fcntl(r->fd[k], F_SETFL,
			  fcntl(r->fd[k], F_GETFL) | O_NONBLOCK) < 0 ||
		    loop_add_fd(l, r->fd[k], LOOP_READ, async_on_fd, r) < 0) {
			int j;

			error_setsys("cannot watch a child's pipe");
			for (j = 1; j < k; j++)
				if (r->fd[j] >= 0)
					loop_del_fd(l, r->fd[j]);
			runner_kill_and_reap(r);
			goto fail;
		}
	}
	r->loop = l;
	r->on_done = on_done;
	r->done_arg = arg;
	r->prog = xstrdup(r->spawn.argv ? r->spawn.argv[0] : "child");
	r->last_output = now_ms();
	r->deadline = r->timeout_ms > 0 ? r->last_output + r->timeout_ms : 0;
	/* the reaper runs from the loop, never before this returns */
	reaper_watch(r->pid, async_on_exit, r);
	async_arm(r);
	return 0;
fail:
	runner_finish(r);
	return -1;
}

void runner_cancel(struct runner *r)
{
	if (!runner_running(r))
		return;
	if (!r->exited) {
		kill(-r->pid, SIGKILL);
		reaper_forget(r->pid);
		r->exited = 1;
	}
	r->on_done = NULL;
	async_done(r, -1);
}

void runner_wait(struct runner *r)
{
	char chunk[8192];
	int k;

	if (!runner_running(r))
		return;
	if (!r->exited) {
		/* ours to reap now, not the reaper's */
		reaper_forget(r->pid);
		while (waitpid(r->pid, &r->status, 0) < 0 && errno == EINTR)
			;
		runner_exited(r);
	}
	/* what the child wrote is in the pipes; a stray that left the group
	 * and keeps one open is not waited for (EAGAIN) */
	for (k = 1; k <= 2; k++) {
		while (r->fd[k] >= 0) {
			ssize_t n = read(r->fd[k], chunk, sizeof(chunk));

			if (n < 0 && errno == EINTR)
				continue;
			if (n <= 0) {
				loop_del_fd(r->loop, r->fd[k]);
				close(r->fd[k]);
				r->fd[k] = -1;
				break;
			}
			runner_feed(r, k, chunk, (size_t)n);
		}
	}
	async_done(r, 0);
}

int runner_running(const struct runner *r)
{
	return r->loop != NULL;
}

int runner_capture(char *const *argv, char *const *envp, const char *dir,
		   struct buf *out, size_t max, long timeout_ms)
{
	struct runner r;
	struct buf drop = BUF_INIT;
	char why[64];

	runner_init(&r);
	r.spawn.argv = argv;
	r.spawn.envp = envp;
	r.spawn.dir = dir;
	r.capture[RUNNER_OUT] = out ? out : &drop;
	r.capture_max = out ? max : 1;
	r.merge = 1;
	r.timeout_ms = timeout_ms;
	if (runner_run(&r) < 0) {
		buf_release(&drop);
		return -1;
	}
	buf_release(&drop);
	if (WIFEXITED(r.status))
		return WEXITSTATUS(r.status);
	return error_set("'%s' %s", argv[0],
			 spawn_describe_status(r.status, why, sizeof(why)));
}

/* Control bytes shown as '?': a child's word is shown as one line. */
static char *one_line(char *s)
{
	char *p;

	for (p = s; *p; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			*p = '?';
	return s;
}

/* runner_call_as()'s child: what goes wrong goes to err, for the parent. */
static int call_child(void *arg, int out, int err)
{
	const struct runner_call *c = arg;
	const char *why;

	(void)out;
	if (c->jail) {
		/* nothing of the caller's but the way to say what failed */
		if (dup2(err, 3) < 0)
			return 2;
		err = 3;
		close_range(4, ~0u, 0);
	}
	if ((c->setup && c->setup() != 0) ||
	    (c->jail && (chroot(c->jail) < 0 || chdir("/") < 0)) ||
	    (c->uid >= 0 &&
	     (setgroups(0, NULL) < 0 ||
	      setresgid((gid_t)c->gid, (gid_t)c->gid, (gid_t)c->gid) < 0 ||
	      setresuid((uid_t)c->uid, (uid_t)c->uid, (uid_t)c->uid) < 0))) {
		why = c->setup_msg ? c->setup_msg : "cannot set up the child";
		return write_all(err, why, strlen(why)) < 0 ? 2 : 3;
	}
	/* cleared by the change of user: set it after */
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	umask(022);
	error_clear();
	if (c->fn(c->arg) == 0)
		return 0;
	why = error_last();
	return write_all(err, why, strlen(why)) < 0 ? 2 : 1;
}

int runner_call_as(const struct runner_call *call)
{
	struct runner r;
	struct buf why;
	char desc[64];
	int ret = -1;

	buf_init(&why, RUNNER_CALL_REASON_MAX);
	runner_init(&r);
	r.child_main = call_child;
	r.child_arg = (void *)(uintptr_t)call;
	r.capture[RUNNER_ERR] = &why;
	r.capture_max = RUNNER_CALL_REASON_MAX;
	r.timeout_ms = call->timeout_ms;
	r.timeout_msg = call->timeout_msg;
	if (runner_run(&r) < 0)
		goto out;
	if (WIFEXITED(r.status) && WEXITSTATUS(r.status) == 0)
		ret = 0;
	else if (why.len)
		error_set("%s", call->one_line ? one_line(why.data) : why.data);
	else
		error_set("%s %s", call->what,
			  spawn_describe_status(r.status, desc, sizeof(desc)));
out:
	buf_release(&why);
	return ret;
}
