/*
 * procguard: one berth-ssh process cannot reach another.  Every SSH
 * session's network half and every git transfer child runs as the same
 * user, berth-ssh (privsep.h, gitsep.h), and the kernel lets a process
 * trace, read the memory of and signal any process of its own uid.  So
 * each of them, right after it dropped root, calls procguard_install():
 *
 *   - PR_SET_DUMPABLE 0: no process of the same uid may ptrace it or open
 *     its /proc/PID/mem, environ, fd/ or maps (the kernel asks for
 *     CAP_SYS_PTRACE then); none of these processes ever execs, which
 *     would set it back;
 *   - PR_SET_NO_NEW_PRIVS, then a seccomp filter: the calls that signal,
 *     trace or change another process by number (kill, tkill, tgkill,
 *     rt_sigqueueinfo, rt_tgsigqueueinfo, process_vm_readv/writev, and
 *     prlimit64, sched_set*, setpriority, ioprio_set, which can kill or
 *     starve one) are allowed for its own pid only (0 too where it means
 *     "me"), compared with the pid at install time; ptrace, kcmp and the
 *     pidfd calls are refused; fcntl F_SETOWN/F_SETOWN_EX and ioctl
 *     FIOSETOWN/SIOCSPGRP (SIGIO to any process of the uid) are refused.
 *     Refused calls fail with EPERM.  A system call of another ABI (i386
 *     or x32 on x86_64, arm32 on aarch64) is refused whatever it is.
 *
 * Children it forks inherit the filter with its pid: they could signal
 * their parent, and whatever process gets its pid once it ended, so a
 * child calls procguard_fork_child() below first thing;
 * procguard_forbid_fork() is for processes that never fork.
 * The filter knows the system call numbers of x86_64 and aarch64, the
 * architectures Debian 12's berth runs on; elsewhere it is left off and
 * procguard_install() says so (ERR_NOTFOUND), the rest still done.  Under
 * a sanitizer ptrace stays allowed (LeakSanitizer stops the process's
 * threads with it at exit); the dumpable flag still keeps others out.
 *
 * Async-signal-safe: it may run between fork and exec.
 */
#ifndef BERTH_PROCGUARD_H
#define BERTH_PROCGUARD_H

/*
 * As the unprivileged user, after the drop: the guard above for this
 * process.  0; ERR_NOTFOUND when this architecture has no filter (the
 * dumpable flag is off); -1 with error_last() when a step failed.
 */
int procguard_install(void);

/*
 * Children a process forks inherit its filter, and with it its pid: once
 * the parent is gone and the pid is given to another berth-ssh process,
 * they could signal that one.  A process that never forks (a session's
 * network half) closes that with this: from now on it may start threads,
 * never processes (EPERM; clone3 is ENOSYS, so glibc falls back to
 * clone).  0, or -1 with error_last().  Nothing on an architecture
 * without a filter, nor under a sanitizer (LeakSanitizer clones).
 */
int procguard_forbid_fork(void);

/*
 * In a child forked by a guarded process, first thing: a second filter,
 * built with the child's pid, stacked on the inherited one (the kernel
 * runs both, and the stricter answer wins).  The inherited filter allows
 * the calls of the list above for the parent's pid only, this one for
 * the child's only: together, for no pid, so the child signals nothing
 * (abort() still ends it: glibc falls back to a fault when raise()
 * fails), and the parent's pid, reused once the parent ended, is out of
 * reach.  Limits and priority "for me" (0) stay allowed.  0, also when
 * this process has no filter (nothing to close); -1 with error_last().
 * Async-signal-safe.
 */
int procguard_fork_child(void);

/* 1 if procguard_install() installs a filter on this architecture. */
int procguard_filter_supported(void);

#endif
