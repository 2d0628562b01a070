/*
 * process: start, watch and stop one app process.  Output goes through a
 * pipe into the engine's loop, line by line, to the process's on_output.
 * What happens when a process exits is its owner's decision (app.c:
 * restart with back-off, fail a deploy, or finish a stop), reached
 * through on_crash and on_exit: this file calls nothing above it.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "app.h"
#include "engine.h"
#include "isolate.h"
#include "listener.h"
#include "log.h"
#include "loop.h"
#include "reaper.h"
#include "spawn.h"
#include "banned.h"

#define LINE_MAX_BYTES 16384

static void proc_remember(struct proc *p, const char *line, size_t len)
{
	free(p->tail[p->tail_pos]);
	p->tail[p->tail_pos] = xstrndup(line, len);
	p->tail_pos = (p->tail_pos + 1) % PROC_TAIL;
}

void proc_tail(const struct proc *p, struct buf *out)
{
	int i;

	for (i = 0; i < PROC_TAIL; i++) {
		const char *l = p->tail[(p->tail_pos + i) % PROC_TAIL];

		if (l)
			buf_addf(out, "       %s\n", l);
	}
}

static void emit(struct proc *p, const char *line, size_t len)
{
	proc_remember(p, line, len);
	p->on_output(p, line, len);
}

static void close_output(struct proc *p)
{
	if (p->out_fd < 0)
		return;
	loop_del_fd(p->app->eng->loop, p->out_fd);
	close(p->out_fd);
	p->out_fd = -1;
	if (p->partial.len) {
		emit(p, p->partial.data, p->partial.len);
		buf_reset(&p->partial);
	}
}

static void on_output(struct loop *l, int fd, unsigned events, void *arg)
{
	struct proc *p = arg;
	char chunk[8192];
	ssize_t n;
	char *start, *nl;

	n = read(fd, chunk, sizeof(chunk));
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n <= 0) {
		close_output(p);
		return;
	}
	buf_add(&p->partial, chunk, (size_t)n);
	start = p->partial.data;
	while ((nl = memchr(start, '\n', p->partial.len -
				(size_t)(start - p->partial.data)))) {
		emit(p, start, (size_t)(nl - start));
		start = nl + 1;
	}
	buf_consume(&p->partial, (size_t)(start - p->partial.data));
	if (p->partial.len > LINE_MAX_BYTES) {
		emit(p, p->partial.data, p->partial.len);
		buf_reset(&p->partial);
	}
}

/* Log what is left in the pipe so a process's last lines are kept. */
static void drain_output(struct proc *p)
{
	char chunk[8192];
	ssize_t n;
	int rounds = 64;

	if (p->out_fd < 0)
		return;
	while (rounds-- > 0 && (n = read(p->out_fd, chunk, sizeof(chunk))) > 0) {
		char *s, *nl;

		buf_add(&p->partial, chunk, (size_t)n);
		s = p->partial.data;
		while ((nl = memchr(s, '\n', p->partial.len -
					(size_t)(s - p->partial.data)))) {
			emit(p, s, (size_t)(nl - s));
			s = nl + 1;
		}
		buf_consume(&p->partial, (size_t)(s - p->partial.data));
	}
}

static void on_kill_timer(struct loop *l, void *arg)
{
	struct proc *p = arg;

	p->kill_timer = 0;
	if (p->pgid > 0) {
		log_info("%s %s did not stop in time, killing", p->app->name,
			 p->name);
		kill(-p->pgid, SIGKILL);
	}
}

static void stop_finished(struct proc *p)
{
	struct loop *l = p->app->eng->loop;

	loop_del_timer(l, p->kill_timer);
	p->kill_timer = 0;
	loop_del_timer(l, p->group_timer);
	p->group_timer = 0;
	/* What left the process group (setsid) is still in the cgroup. */
	isolate_end(p->app->eng->iso, p->pgid);
	p->pgid = 0;
	drain_output(p);
	close_output(p);
	p->state = PROC_DEAD;
	if (p->on_exit)
		p->on_exit(p, p->on_exit_arg);
}

/* The leader is gone but its group is finishing up (a shell's child
 * running its TERM trap): wait for it, within the stop timeout. */
static void on_group_timer(struct loop *l, void *arg)
{
	struct proc *p = arg;

	p->group_timer = 0;
	if (p->pgid > 0 && kill(-p->pgid, 0) == 0) {
		p->group_timer = loop_add_timer(l, 20, on_group_timer, p);
		return;
	}
	stop_finished(p);
}

static void on_exit_status(pid_t pid, int status, void *arg)
{
	struct proc *p = arg;
	struct loop *l = p->app->eng->loop;

	p->pid = 0;
	p->last_status = status;
	if (p->state == PROC_STOPPING) {
		/* Keep reading its output: the rest of the group may still
		 * write (a closed pipe would kill it with SIGPIPE before its
		 * TERM trap has run). */
		on_group_timer(l, p);
		return;
	}
	/* A crash: what the process left in its group goes with it. */
	kill(-pid, SIGKILL);
	if (isolate_end(p->app->eng->iso, pid))
		log_warnx("%s %s: killed at its memory limit", p->app->name,
			  p->name);
	loop_del_timer(l, p->port_timer);
	p->port_timer = 0;
	p->pgid = 0;
	drain_output(p);
	close_output(p);
	p->state = PROC_DEAD;
	p->on_crash(p, status);
}

static void proc_close_stdio(struct proc *p)
{
	int i;

	for (i = 0; p->attached && i < 3; i++) {
		if (p->stdio[i] >= 0)
			close(p->stdio[i]);
		p->stdio[i] = -1;
	}
}

int proc_start(struct proc *p, char *const *envp, const struct proc_user *u)
{
	/* Source the buildpacks' .profile.d, then run the Procfile command
	 * as the app's author wrote it, passed as $1, never pasted in.  A
	 * plain "prog args" command replaces the shell; anything with shell
	 * syntax (";", "&&", "VAR=x prog", ...) runs under its own sh -c. */
	char profile_exec[] =
		"if [ -d .profile.d ]; then for f in .profile.d/*.sh; do "
		"[ -r \"$f\" ] && . \"./$f\"; done; fi; "
		"if [ \"$2\" = plain ]; then eval \"exec $1\"; "
		"else exec /bin/sh -c \"$1\"; fi";
	struct spawn s;
	char pid_var[LISTENER_PID_VAR_LEN] = "LISTEN_PID=";
	char **env_sock = NULL;
	struct isolate_spawn is;
	struct cgroup_limits lim;
	int pfd[2] = { -1, -1 };
	char *argv_sh[] = { "/bin/sh", "-c", profile_exec, "berth",
			    NULL, NULL, NULL };
	int ret = -1;

	p->port_pending = 0;
	if (!p->attached && pipe2(pfd, O_CLOEXEC) < 0)
		return error_setsys("pipe");
	spawn_init(&s);
	if (p->spec->cmd) {
		argv_sh[4] = p->spec->cmd;
		argv_sh[5] = strpbrk(p->spec->cmd, ";&|<>()$`\\\"'*?[#~=%{}\n") ?
			"shell" : "plain";
		s.argv = argv_sh;
	} else {
		s.argv = p->spec->argv.v;
	}
	s.envp = envp;
	if (p->sock_fd >= 0) {
		/* the socket at fd 3, and a LISTEN_PID the child fills in */
		size_t n = 0;

		while (envp && envp[n])
			n++;
		env_sock = xcalloc(n + 2, sizeof(*env_sock));
		memcpy(env_sock, envp, n * sizeof(*env_sock));
		env_sock[n] = pid_var;
		s.envp = env_sock;
		s.listen_pid_var = pid_var;
		s.extra_fds = &p->sock_fd;
		s.n_extra_fds = 1;
	}
	s.dir = p->run->dir;
	s.out = pfd[1];
	s.err = pfd[1];
	/* Own group, so a stop reaches the app's children too; and killed
	 * with the engine, so no app outlives a crashed engine unsupervised. */
	s.flags = SPAWN_NEW_PGRP | SPAWN_DIE_WITH_PARENT;
	if (p->attached) {
		/* a one-off on the client's own stdio (run) */
		s.in = p->stdio[0];
		s.out = p->stdio[1];
		s.err = p->stdio[2];
		s.flags = SPAWN_NEW_SESSION | SPAWN_DIE_WITH_PARENT;
		if (p->tty)
			s.flags |= SPAWN_CTTY;
	}
	if (u->drop_priv) {
		s.flags |= SPAWN_DROP_PRIV;
		s.uid = u->uid;
		s.gid = u->gid;
	}
	isolate_limits(&lim, p->app->eng->cfg, &p->run->m);
	if (isolate_spawn_prepare(p->app->eng->iso, &is, p->app->name,
				  p->run->dir, &lim, &s) < 0)
		goto out;
	if (spawn_start(&s) < 0) {
		isolate_abort(&is);
		goto out;
	}
	isolate_started(&is, s.pid);
	if (p->attached) {
		proc_close_stdio(p);
		goto started;
	}
	close(pfd[1]);
	pfd[1] = -1;
	set_nonblock(pfd[0]);
	p->out_fd = pfd[0];
	pfd[0] = -1;
	if (loop_add_fd(p->app->eng->loop, p->out_fd, LOOP_READ, on_output,
			p) < 0) {
		close(p->out_fd);
		p->out_fd = -1;
		kill(-s.pid, SIGKILL);
		isolate_end(p->app->eng->iso, s.pid);
		reaper_watch(s.pid, on_exit_status, p);
		goto out;
	}
started:
	p->pid = s.pid;
	p->pgid = s.pid;
	p->state = PROC_UP;
	p->started_ms = now_ms();
	reaper_watch(s.pid, on_exit_status, p);
	ret = 0;
out:
	free(env_sock);
	if (pfd[0] >= 0)
		close(pfd[0]);
	if (pfd[1] >= 0)
		close(pfd[1]);
	return ret;
}

void proc_close_socket(struct proc *p)
{
	if (p->sock_fd < 0)
		return;
	close(p->sock_fd);
	p->sock_fd = -1;
}

int proc_http_port(const struct proc *p)
{
	return p->serves_on ? p->serves_on : p->port;
}

void proc_stop(struct proc *p, long timeout_ms)
{
	struct loop *l = p->app->eng->loop;

	if (p->state == PROC_STOPPING)
		return;
	/* Not restarted again: the socket lives on in the process only,
	 * and goes with it. */
	proc_close_socket(p);
	supervisor_cancel(&p->restart);
	isolate_user_unwait(p->app->eng->iso, &p->user_wait);
	loop_del_timer(l, p->port_timer);
	p->port_timer = 0;
	if (p->pid <= 0) {
		/* Not running (backing off, waiting for its user, or already
		 * dead): done now. */
		stop_finished(p);
		return;
	}
	p->state = PROC_STOPPING;
	if (timeout_ms <= 0) {
		kill(-p->pid, SIGKILL);
		return;
	}
	kill(-p->pid, SIGTERM);
	p->kill_timer = loop_add_timer(l, timeout_ms, on_kill_timer, p);
}

void proc_free(struct proc *p)
{
	int i;

	if (!p)
		return;
	if (p->pid > 0)
		reaper_forget(p->pid);
	if (p->pgid > 0) {
		kill(-p->pgid, SIGKILL);
		isolate_end(p->app->eng->iso, p->pgid);
	}
	proc_close_socket(p);
	loop_del_timer(p->app->eng->loop, p->group_timer);
	if (p->out_fd >= 0) {
		loop_del_fd(p->app->eng->loop, p->out_fd);
		close(p->out_fd);
	}
	supervisor_cancel(&p->restart);
	isolate_user_unwait(p->app->eng->iso, &p->user_wait);
	loop_del_timer(p->app->eng->loop, p->port_timer);
	loop_del_timer(p->app->eng->loop, p->kill_timer);
	buf_release(&p->partial);
	for (i = 0; i < PROC_TAIL; i++)
		free(p->tail[i]);
	proc_close_stdio(p);
	if (p->own_spec) {
		free(p->own_spec->type);
		free(p->own_spec->cmd);
		strv_release(&p->own_spec->argv);
		free(p->own_spec);
	}
	free(p);
}
