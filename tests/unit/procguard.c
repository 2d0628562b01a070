/*
 * procguard: two processes that dropped to the same user through
 * privsep_drop(), as two sessions' berth-ssh halves do.  The attacker
 * tries every way the kernel gives a process of the same uid to signal,
 * trace, read or slow down the victim; each fails, while it can still
 * signal itself and set its own limits.  A third process of the same
 * uid without the guard shows what the uid alone would allow.
 */
#include <errno.h>
#include <pthread.h>
#include <fcntl.h>
#include <grp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/ptrace.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>
#include <linux/sockios.h>

#include "appuser.h"
#include "privsep.h"
#include "procguard.h"
#include "tap.h"
#include "util.h"
#include "banned.h"

#define USER_UID 65534

static char secret[] = "victim-secret-4711";
static volatile sig_atomic_t got_usr1;

static void on_usr1(int sig)
{
	(void)sig;
	got_usr1 = 1;
}

static int out_fd = -1;

/* One finding of the attacker: "ok NAME" or "no NAME (errno)". */
static void say(int good, const char *what)
{
	char line[256];
	int n = snprintf(line, sizeof(line), "%s %s (%s)\n",
			 good ? "ok" : "no", what, strerror(errno));

	if (write(out_fd, line, (size_t)n) < 0)
		_exit(3);
}

/* The call failed with EPERM (or EACCES where the kernel says so). */
#define REFUSED_AS(call, e, what) do {				\
		errno = 0;						\
		long r_ = (long)(call);					\
		say(r_ < 0 && errno == (e), what);			\
	} while (0)
#define REFUSED(call, e) REFUSED_AS(call, e, #call " refused")

static struct appuser user(void)
{
	struct appuser u;

	memset(&u, 0, sizeof(u));
	snprintf(u.name, sizeof(u.name), "nobody");
	u.uid = USER_UID;
	u.gid = USER_UID;
	u.isolated = 1;
	return u;
}

static void attack(pid_t v)
{
	char path[64], buf[64];
	struct iovec local = { buf, sizeof(buf) }, remote = { secret, 8 };
	struct rlimit rl = { 0, 0 };
	siginfo_t si;
	int fd, p[2];

	/* signal 0 where a broken guard would reach beyond the victim */
	REFUSED(kill(v, 0), EPERM);
	REFUSED(kill(v, SIGTERM), EPERM);
	REFUSED(kill(-1, 0), EPERM);
	REFUSED(kill(0, 0), EPERM);
	REFUSED(syscall(SYS_tkill, v, SIGTERM), EPERM);
	REFUSED(syscall(SYS_tgkill, v, v, SIGTERM), EPERM);
	memset(&si, 0, sizeof(si));
	si.si_code = SI_QUEUE;
	si.si_pid = getpid();
	si.si_uid = getuid();
	REFUSED(syscall(SYS_rt_sigqueueinfo, v, SIGTERM, &si), EPERM);
	REFUSED(syscall(SYS_rt_tgsigqueueinfo, v, v, SIGTERM, &si), EPERM);
	/* a high word the kernel would drop does not pass for our pid */
	REFUSED(syscall(SYS_kill, (long)v | (1L << 32), SIGTERM), EPERM);
	REFUSED(ptrace(PTRACE_ATTACH, v, NULL, NULL), EPERM);
	REFUSED(ptrace(PTRACE_SEIZE, v, NULL, NULL), EPERM);
	REFUSED(process_vm_readv(v, &local, 1, &remote, 1, 0), EPERM);
	snprintf(path, sizeof(path), "/proc/%ld/mem", (long)v);
	REFUSED_AS(open(path, O_RDONLY | O_CLOEXEC), EACCES,
		   "/proc/VICTIM/mem refused");
	snprintf(path, sizeof(path), "/proc/%ld/environ", (long)v);
	REFUSED_AS(open(path, O_RDONLY | O_CLOEXEC), EACCES,
		   "/proc/VICTIM/environ refused");
	snprintf(path, sizeof(path), "/proc/%ld/fd/0", (long)v);
	REFUSED_AS(open(path, O_RDONLY | O_CLOEXEC), EACCES,
		   "/proc/VICTIM/fd/0 refused");
	REFUSED(syscall(SYS_pidfd_open, v, 0), EPERM);
	snprintf(path, sizeof(path), "/proc/%ld", (long)v);
	fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	REFUSED(syscall(SYS_pidfd_send_signal, fd, 0, NULL, 0), EPERM);
	if (fd >= 0)
		close(fd);
	REFUSED(syscall(SYS_kcmp, getpid(), v, 0, 0, 0), EPERM);
	REFUSED(prlimit(v, RLIMIT_CPU, &rl, NULL), EPERM);
	REFUSED(setpriority(PRIO_PROCESS, (id_t)v, 19), EPERM);
	/* a group that does not exist: ESRCH without the guard */
	REFUSED(setpriority(PRIO_PGRP, 0x7ffffff0, 19), EPERM);
	REFUSED(syscall(SYS_ioprio_set, 1, v, 7), EPERM);
	REFUSED(syscall(SYS_sched_setaffinity, v, 0, NULL), EPERM);
	if (pipe(p) == 0) {
		REFUSED(fcntl(p[0], F_SETOWN, v), EPERM);
		REFUSED(fcntl(p[0], F_SETOWN, -v), EPERM);
		REFUSED(ioctl(p[0], FIOSETOWN, &v), EPERM);
		close(p[0]);
		close(p[1]);
	}
#ifdef __x86_64__
	/* x32's kill: the same number with the x32 bit */
	REFUSED(syscall(0x40000000L | SYS_kill, v, 0), EPERM);
	{
		/* i386's kill (37) through int $0x80, in a child: a kernel
		 * without the 32-bit entry may kill it instead */
		pid_t c = fork();
		int st;

		if (c == 0) {
			long ret;

			/* no kernel entry: die quietly of SIGSEGV, sanitizer
			 * or not */
			signal(SIGSEGV, SIG_DFL);
			/* the 32-bit entry zeroes r8-r11 on the way out */
			__asm__ volatile ("int $0x80" : "=a"(ret)
					  : "a"(37L), "b"((long)v), "c"(0L)
					  : "memory", "r8", "r9", "r10",
					    "r11");
			_exit(ret == 0 ? 42 : 0);
		}
		errno = 0;
		say(c > 0 && waitpid(c, &st, 0) == c &&
		    !(WIFEXITED(st) && WEXITSTATUS(st) == 42),
		    "i386 kill through int $0x80 refused");
	}
#endif
	/* what it may still do to itself */
	errno = 0;
	signal(SIGUSR1, on_usr1);
	say(raise(SIGUSR1) == 0 && got_usr1, "raise() reaches itself");
	say(kill(getpid(), 0) == 0, "kill(getpid(), 0) works");
	say(getrlimit(RLIMIT_NOFILE, &rl) == 0 &&
	    setrlimit(RLIMIT_NOFILE, &rl) == 0, "its own limits");
	say(setpriority(PRIO_PROCESS, 0, 5) == 0, "its own priority");
	say(prctl(PR_GET_DUMPABLE, 0, 0, 0, 0) == 0, "not dumpable");
	say(prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0) == 1, "no_new_privs");
}

/*
 * A child of the guarded process inherits its filter and with it the
 * parent's pid: without procguard_fork_child() it signals the parent
 * (and whoever gets that pid once the parent ended); with it, neither
 * the parent nor anything else.  The guarded process stands in for the
 * git child, its child for the repack it forks.
 */
static void fork_child(void)
{
	pid_t me = getpid(), c;
	int st;

	c = fork();
	if (c < 0) {
		say(0, "fork() for the fork guard");
		return;
	}
	if (c == 0) {
		errno = 0;
		say(kill(me, 0) == 0, "an unguarded fork signals its "
		    "parent's pid (the gap)");
		_exit(0);
	}
	errno = 0;
	say(waitpid(c, &st, 0) == c && WIFEXITED(st) &&
	    WEXITSTATUS(st) == 0, "the unguarded fork ended");
	c = fork();
	if (c < 0) {
		say(0, "fork() for the fork guard");
		return;
	}
	if (c == 0) {
		struct rlimit rl;

		if (procguard_fork_child() < 0) {
			say(0, "procguard_fork_child()");
			_exit(0);
		}
		REFUSED_AS(kill(me, 0), EPERM, "after procguard_fork_child(), "
			   "kill(parent's pid) refused");
		REFUSED_AS(kill(me, SIGKILL), EPERM, "kill(parent's pid, "
			   "SIGKILL) refused");
		REFUSED_AS(syscall(SYS_tgkill, me, me, SIGUSR1), EPERM,
			   "tgkill(parent's pid) refused");
		REFUSED_AS(syscall(SYS_rt_sigqueueinfo, me, SIGUSR1, NULL),
			   EPERM, "rt_sigqueueinfo(parent's pid) refused");
		REFUSED_AS(kill(getpid(), 0), EPERM, "kill(own pid) refused "
			   "too: the two filters leave no pid");
		errno = 0;
		say(getrlimit(RLIMIT_NOFILE, &rl) == 0 &&
		    prlimit(0, RLIMIT_NOFILE, &rl, NULL) == 0,
		    "the fork still sets its own limits");
		errno = 0;
		say(setpriority(PRIO_PROCESS, 0, 10) == 0,
		    "the fork still lowers its own priority");
		_exit(0);
	}
	errno = 0;
	say(waitpid(c, &st, 0) == c && WIFEXITED(st) &&
	    WEXITSTATUS(st) == 0, "the guarded fork ended");
	errno = 0;
	say(kill(me, 0) == 0, "the guarded process still signals itself");
}

static void *thread_main(void *arg)
{
	return arg;
}

/* After procguard_forbid_fork(): threads yes, processes no. */
static void no_fork(void)
{
	static int token;
	pthread_t t;
	void *back = NULL;
	pid_t c;

#if defined(__SANITIZE_ADDRESS__)
	/* off under a sanitizer (procguard.h) */
	errno = 0;
	say(1, "forbid_fork() is off under a sanitizer");
	return;
#endif
	if (procguard_forbid_fork() < 0) {
		say(0, "procguard_forbid_fork()");
		return;
	}
	errno = 0;
	say(pthread_create(&t, NULL, thread_main, &token) == 0 &&
	    pthread_join(t, &back) == 0 && back == &token, "a thread starts");
	errno = 0;
	c = fork();
	if (c == 0)
		_exit(0);
	say(c < 0 && errno == EPERM, "fork() refused");
	REFUSED(syscall(SYS_clone, SIGCHLD, 0, 0, 0, 0), EPERM);
#ifdef SYS_vfork
	REFUSED(syscall(SYS_vfork), EPERM);
#endif
	REFUSED(syscall(SYS_clone3, NULL, 0), ENOSYS);
}

static pid_t start_victim(int *ready, int *hold)
{
	struct appuser u = user();
	pid_t parent = getpid(), pid;
	int r[2], h[2];
	char c;

	if (pipe2(r, O_CLOEXEC) < 0 || pipe2(h, O_CLOEXEC) < 0)
		abort();
	pid = fork();
	if (pid < 0)
		abort();
	if (pid == 0) {
		close(r[0]);
		close(h[1]);
		if (privsep_drop(&u, parent) < 0)
			_exit(2);
		if (write(r[1], "r", 1) != 1)
			_exit(2);
		/* until the parent closes its end */
		while (read(h[0], &c, 1) > 0)
			;
		_exit(secret[0] == 'v' ? 0 : 1);
	}
	close(r[1]);
	close(h[0]);
	*ready = r[0];
	*hold = h[1];
	return pid;
}

/* Run fn in a child of the same user; its findings become tests. */
static void run_as_user(pid_t v, int guarded)
{
	struct appuser u = user();
	pid_t parent = getpid(), pid;
	char buf[8192];
	size_t have = 0;
	ssize_t n;
	int p[2], st;
	char *line, *nl;

	if (pipe2(p, O_CLOEXEC) < 0)
		abort();
	pid = fork();
	if (pid < 0)
		abort();
	if (pid == 0) {
		close(p[0]);
		out_fd = p[1];
		if (guarded) {
			if (privsep_drop(&u, parent) < 0)
				_exit(2);
			attack(v);
			fork_child();
			no_fork();
		} else {
			char path[64];

			/* the uid alone, as without the guard */
			if (setgroups(0, NULL) < 0 ||
			    setresgid(u.gid, u.gid, u.gid) < 0 ||
			    setresuid(u.uid, u.uid, u.uid) < 0)
				_exit(2);
			errno = 0;
			say(kill(v, 0) == 0, "kill(victim, 0) works for "
			    "the same uid without a guard");
			snprintf(path, sizeof(path), "/proc/%ld/mem", (long)v);
			REFUSED_AS(open(path, O_RDONLY | O_CLOEXEC), EACCES,
				   "/proc/VICTIM/mem refused: the victim "
				   "is not dumpable");
		}
		_exit(0);
	}
	close(p[1]);
	while (have < sizeof(buf) - 1 &&
	       (n = read(p[0], buf + have, sizeof(buf) - 1 - have)) > 0)
		have += (size_t)n;
	buf[have] = '\0';
	close(p[0]);
	ok(waitpid(pid, &st, 0) == pid && WIFEXITED(st) &&
	   WEXITSTATUS(st) == 0, "%s process ran",
	   guarded ? "the guarded" : "the unguarded");
	for (line = buf; *line; line = nl + 1) {
		nl = strchr(line, '\n');
		if (!nl)
			break;
		*nl = '\0';
		ok(!strncmp(line, "ok ", 3), "%s: %s",
		   guarded ? "guarded" : "unguarded", line + 3);
	}
}

int main(void)
{
	pid_t v;
	int ready, hold, st;
	char c;

	if (geteuid() != 0) {
		skip("not root: nothing to drop from");
		return tap_done();
	}
	if (!procguard_filter_supported()) {
		skip("no process guard on this architecture");
		return tap_done();
	}
	v = start_victim(&ready, &hold);
	ok(read(ready, &c, 1) == 1, "the victim dropped and waits");
	run_as_user(v, 0);
	run_as_user(v, 1);
	ok(waitpid(v, &st, WNOHANG) == 0 && kill(v, 0) == 0,
	   "the victim is still running, untouched");
	close(hold);
	ok(waitpid(v, &st, 0) == v && WIFEXITED(st) && WEXITSTATUS(st) == 0,
	   "the victim ends on its own");
	close(ready);
	return tap_done();
}
