/* spawn: see spawn.h. */
#include "spawn.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "listener.h"
#include "banned.h"

void spawn_init(struct spawn *s)
{
	memset(s, 0, sizeof(*s));
	s->in = s->out = s->err = -1;
}

static const char *env_path(char *const *envp)
{
	size_t i;

	for (i = 0; envp && envp[i]; i++)
		if (!strncmp(envp[i], "PATH=", 5))
			return envp[i] + 5;
	return "/usr/local/bin:/usr/bin:/bin";
}

static char *which_in(const char *name, const char *path)
{
	char full[PATH_MAX];
	const char *p = path, *colon;

	while (p && *p) {
		size_t n;

		colon = strchr(p, ':');
		n = colon ? (size_t)(colon - p) : strlen(p);
		if (n && snprintf(full, sizeof(full), "%.*s/%s", (int)n, p,
				  name) < (int)sizeof(full) &&
		    access(full, X_OK) == 0)
			return xstrdup(full);
		p = colon ? colon + 1 : NULL;
	}
	return NULL;
}

char *spawn_which(const char *name)
{
	const char *path = getenv("PATH");

	if (strchr(name, '/'))
		return access(name, X_OK) == 0 ? xstrdup(name) : NULL;
	return which_in(name, path ? path : "/usr/local/bin:/usr/bin:/bin");
}

/* In the child: only async-signal-safe calls from here to execve. */
static void child_fail(int pipefd, const char *what)
{
	int e = errno;
	char msg[256];
	size_t n = 0, k;

	k = strlen(what);
	if (k > 200)
		k = 200;
	memcpy(msg, what, k);
	n = k;
	memcpy(msg + n, ": ", 2);
	n += 2;
	{
		const char *es = strerror(e);	/* not AS-safe in theory; glibc's is a table */

		k = strlen(es);
		if (k > sizeof(msg) - n - 1)
			k = sizeof(msg) - n - 1;
		memcpy(msg + n, es, k);
		n += k;
	}
	if (write(pipefd, msg, n) < 0)
		_exit(127);
	_exit(127);
}

static int move_fd_above(int fd, int min)
{
	int nfd;

	if (fd < 0 || fd >= min)
		return fd;
	nfd = fcntl(fd, F_DUPFD_CLOEXEC, min);
	return nfd;
}

int spawn_start(struct spawn *s)
{
	int pfd[2], nullfd = -1;
	char msg[300];
	ssize_t n;
	pid_t pid;
	char *prog = NULL;
	int status;

	if (!s->argv || !s->argv[0])
		return error_set("nothing to run");
	if (strchr(s->argv[0], '/'))
		prog = xstrdup(s->argv[0]);
	else
		prog = which_in(s->argv[0], env_path(s->envp));
	if (!prog)
		return error_set("cannot run '%s': not found", s->argv[0]);
	if (pipe2(pfd, O_CLOEXEC) < 0) {
		free(prog);
		return error_setsys("pipe");
	}
	pid = fork();
	if (pid < 0) {
		close(pfd[0]);
		close(pfd[1]);
		free(prog);
		return error_setsys("fork");
	}
	if (pid == 0) {
		int fds[3] = { s->in, s->out, s->err };
		int extra_max = 3 + (int)s->n_extra_fds;
		size_t i;
		int j;
		sigset_t none;
		char *empty_env[] = { NULL };

		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
		for (j = 1; j < NSIG; j++)
			signal(j, SIG_DFL);
		if (s->flags & SPAWN_DIE_WITH_PARENT)
			prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (s->flags & SPAWN_NEW_SESSION) {
			if (setsid() < 0)
				child_fail(pfd[1], "setsid");
		} else if (s->flags & SPAWN_NEW_PGRP) {
			if (setpgid(0, 0) < 0)
				child_fail(pfd[1], "setpgid");
		}
		/* Move every fd we will dup out of the target range first. */
		pfd[1] = move_fd_above(pfd[1], extra_max + 1);
		for (j = 0; j < 3; j++) {
			if (fds[j] < 0) {
				if (nullfd < 0) {
					nullfd = open("/dev/null", O_RDWR | O_CLOEXEC);
					if (nullfd < 0)
						child_fail(pfd[1], "/dev/null");
					nullfd = move_fd_above(nullfd, extra_max + 1);
				}
				fds[j] = nullfd;
			} else {
				fds[j] = move_fd_above(fds[j], extra_max + 1);
			}
			if (fds[j] < 0)
				child_fail(pfd[1], "dup");
		}
		if (s->n_extra_fds) {
			int local[64];

			if (s->n_extra_fds > 64)
				child_fail(pfd[1], "too many fds");
			for (i = 0; i < s->n_extra_fds; i++) {
				local[i] = move_fd_above(s->extra_fds[i],
							 extra_max + 1);
				if (local[i] < 0)
					child_fail(pfd[1], "dup");
			}
			for (i = 0; i < s->n_extra_fds; i++)
				if (dup2(local[i], 3 + (int)i) < 0)
					child_fail(pfd[1], "dup2");
		}
		for (j = 0; j < 3; j++)
			if (dup2(fds[j], j) < 0)
				child_fail(pfd[1], "dup2");
		/* EPERM: the terminal is already another session's (the
		 * caller's own, for a local "berth run"): it stays the
		 * process's stdio, without job control; never stolen */
		if ((s->flags & SPAWN_CTTY) && ioctl(0, TIOCSCTTY, 0) < 0 &&
		    errno != EPERM)
			child_fail(pfd[1], "TIOCSCTTY");
		if (s->listen_pid_var)
			listener_pid_var(s->listen_pid_var, getpid());
		if (s->child_setup) {
			const char *failed = s->child_setup(s->child_arg);

			if (failed)
				child_fail(pfd[1], failed);
		}
		if (s->dir && chdir(s->dir) < 0)
			child_fail(pfd[1], s->dir);
		if (s->flags & SPAWN_DROP_PRIV) {
			if (setgroups(0, NULL) < 0)
				child_fail(pfd[1], "setgroups");
			if (setresgid(s->gid, s->gid, s->gid) < 0)
				child_fail(pfd[1], "setresgid");
			if (setresuid(s->uid, s->uid, s->uid) < 0)
				child_fail(pfd[1], "setresuid");
		}
		execve(prog, s->argv, s->envp ? s->envp : empty_env);
		child_fail(pfd[1], s->argv[0]);
	}
	close(pfd[1]);
	free(prog);
	do
		n = read(pfd[0], msg, sizeof(msg) - 1);
	while (n < 0 && errno == EINTR);
	close(pfd[0]);
	if (n > 0) {
		msg[n] = '\0';
		while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
			;
		return error_set("cannot run %s", msg);
	}
	s->pid = pid;
	return 0;
}

int spawn_wait(struct spawn *s, int *status)
{
	int st;

	while (waitpid(s->pid, &st, 0) < 0) {
		if (errno != EINTR)
			return error_setsys("waitpid");
	}
	if (status)
		*status = st;
	return 0;
}

const char *spawn_describe_status(int status, char *out, size_t len)
{
	if (WIFEXITED(status))
		snprintf(out, len, "exited with status %d", WEXITSTATUS(status));
	else if (WIFSIGNALED(status))
		snprintf(out, len, "killed by signal %d", WTERMSIG(status));
	else
		snprintf(out, len, "stopped");
	return out;
}
