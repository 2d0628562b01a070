/*
 * spawn: the one way berth starts a program (git run-command style).
 *
 * Fill a struct spawn, call spawn_start(): it forks and execve()s
 * s->argv[0] (an absolute path, or a bare name looked up in PATH of the
 * *child's* environment, else /usr/local/bin:/usr/bin:/bin).  No shell is
 * involved unless the caller puts /bin/sh in argv itself.  An exec failure
 * comes back as spawn_start() == -1 with error_last() saying why, over a
 * CLOEXEC pipe, so the caller never sees a child that "started" but was
 * never the program.
 *
 * Only the fds named here reach the child (0, 1, 2 and s->extra_fds from
 * fd 3 on); everything else the caller has open must be CLOEXEC.
 * The caller keeps ownership of every fd it passes in and closes them.
 */
#ifndef BERTH_SPAWN_H
#define BERTH_SPAWN_H

#include <sys/types.h>
#include <stddef.h>

#include "util.h"

enum spawn_flags {
	SPAWN_NEW_PGRP = 1 << 0,	/* setpgid(0, 0): own process group */
	SPAWN_NEW_SESSION = 1 << 1,	/* setsid() */
	SPAWN_DROP_PRIV = 1 << 2,	/* setgroups/setresgid/setresuid to uid/gid */
	SPAWN_DIE_WITH_PARENT = 1 << 3,	/* PR_SET_PDEATHSIG SIGKILL */
	SPAWN_CTTY = 1 << 4,		/* with SPAWN_NEW_SESSION: fd 0 (a
					 * terminal) becomes the controlling
					 * terminal */
};

struct spawn {
	char *const *argv;	/* argv[0] is the program */
	char *const *envp;	/* NULL: empty environment */
	const char *dir;	/* working directory, NULL: inherit */
	int in, out, err;	/* fds for 0/1/2; -1 means /dev/null */
	const int *extra_fds;	/* become fd 3, 4, ... in the child */
	size_t n_extra_fds;
	unsigned flags;
	uid_t uid;		/* for SPAWN_DROP_PRIV */
	gid_t gid;
	/*
	 * Run in the child once its fds are in place, before 'dir' and
	 * SPAWN_DROP_PRIV (e.g. cgroup_enter, sandbox_enter): NULL when
	 * done, else what failed, with errno set, and the start fails as a
	 * failed exec does.  Async-signal-safe code only.
	 */
	const char *(*child_setup)(void *arg);
	void *child_arg;
	/*
	 * NULL, or one of envp's strings with room for
	 * LISTENER_PID_VAR_LEN bytes: the child writes "LISTEN_PID=<its
	 * pid>" into it before exec (systemd's socket protocol names the
	 * process that reads it, and that pid is known only after fork).
	 */
	char *listen_pid_var;
	pid_t pid;		/* out: the child */
};

void spawn_init(struct spawn *s);
/* Fork and exec; 0 with s->pid set, -1 on failure (nothing left running).
 * Blocks until the child has exec'd or failed (its child_setup included:
 * milliseconds), never until it ends. */
int spawn_start(struct spawn *s);
/* Block until the child exits; *status as from waitpid. */
int spawn_wait(struct spawn *s, int *status);

/* Reading a child's output, a deadline, a group kill: runner.h. */

/* "exited with status 3" / "killed by signal 9" for a waitpid status. */
const char *spawn_describe_status(int status, char *out, size_t len);

/* Look name up in PATH; returns a fresh string or NULL. */
char *spawn_which(const char *name);

#endif
