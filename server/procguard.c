/* procguard: see procguard.h. */
#include "procguard.h"

#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <linux/sockios.h>

#include "util.h"
#include "banned.h"

#if defined(__x86_64__)
#define GUARD_ARCH AUDIT_ARCH_X86_64
#elif defined(__aarch64__) && defined(__AARCH64EL__)
#define GUARD_ARCH AUDIT_ARCH_AARCH64
#endif

#if defined(__SANITIZE_ADDRESS__)
#define GUARD_SANITIZER 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(leak_sanitizer)
#define GUARD_SANITIZER 1
#endif
#endif
#ifndef GUARD_SANITIZER
#define GUARD_SANITIZER 0
#endif

#ifdef GUARD_ARCH

#ifndef F_SETOWN_EX
#define F_SETOWN_EX 15
#endif
#ifndef IOPRIO_WHO_PROCESS
#define IOPRIO_WHO_PROCESS 1
#endif

#define RET_ALLOW SECCOMP_RET_ALLOW
#define RET_DENY (SECCOMP_RET_ERRNO | (EPERM & SECCOMP_RET_DATA))

/* Both architectures are little-endian: an argument's low word first. */
#define ARG_LO(n) ((uint32_t)offsetof(struct seccomp_data, args[n]))
#define ARG_HI(n) (ARG_LO(n) + 4)

/* How each guarded call is judged. */
enum rule_kind {
	SELF,		/* args[arg] must be our pid */
	SELF_OR_0,	/* our pid, or 0 ("me") */
	WHICH_SELF,	/* args[0] == which and args[1] our pid or 0 */
	CMD_DENY,	/* refused when args[arg] is v1 or v2 */
	DENY,		/* refused */
};

struct rule {
	long nr;
	enum rule_kind kind;
	int arg;
	uint32_t v1, v2;
};

static const struct rule rules[] = {
	{ __NR_kill, SELF, 0, 0, 0 },
	{ __NR_tkill, SELF, 0, 0, 0 },
	{ __NR_tgkill, SELF, 0, 0, 0 },
	{ __NR_rt_sigqueueinfo, SELF, 0, 0, 0 },
	{ __NR_rt_tgsigqueueinfo, SELF, 0, 0, 0 },
	{ __NR_process_vm_readv, SELF, 0, 0, 0 },
	{ __NR_process_vm_writev, SELF, 0, 0, 0 },
	{ __NR_prlimit64, SELF_OR_0, 0, 0, 0 },
	{ __NR_sched_setaffinity, SELF_OR_0, 0, 0, 0 },
	{ __NR_sched_setparam, SELF_OR_0, 0, 0, 0 },
	{ __NR_sched_setscheduler, SELF_OR_0, 0, 0, 0 },
	{ __NR_sched_setattr, SELF_OR_0, 0, 0, 0 },
	{ __NR_setpriority, WHICH_SELF, 0, PRIO_PROCESS, 0 },
	{ __NR_ioprio_set, WHICH_SELF, 0, IOPRIO_WHO_PROCESS, 0 },
	{ __NR_fcntl, CMD_DENY, 1, F_SETOWN, F_SETOWN_EX },
	{ __NR_ioctl, CMD_DENY, 1, FIOSETOWN, SIOCSPGRP },
#if !GUARD_SANITIZER
	{ __NR_ptrace, DENY, 0, 0, 0 },
#endif
	{ __NR_kcmp, DENY, 0, 0, 0 },
	{ __NR_pidfd_open, DENY, 0, 0, 0 },
	{ __NR_pidfd_send_signal, DENY, 0, 0, 0 },
	{ __NR_pidfd_getfd, DENY, 0, 0, 0 },
};

/* Room for the head and the longest body of each rule. */
#define PROG_MAX (8 + ARRAY_SIZE(rules) * 12)

struct prog {
	struct sock_filter f[PROG_MAX];
	unsigned short n;
};

static void emit(struct prog *p, uint16_t code, uint32_t k, uint8_t jt,
		 uint8_t jf)
{
	struct sock_filter s = { code, jt, jf, k };

	p->f[p->n++] = s;
}

#define LD(p, off) emit(p, BPF_LD | BPF_W | BPF_ABS, (off), 0, 0)
#define RET(p, v) emit(p, BPF_RET | BPF_K, (v), 0, 0)

/*
 * A rule's body runs once the call's number matched and ends in its
 * returns; jumps are counted to them.  This one allows the call when
 * argument n is our pid (or 0), all 64 bits of it: a high word the
 * kernel would drop is refused, never matched on its low word alone.
 */
static void body_self(struct prog *p, int n, uint32_t self, int or0)
{
	/* 0 ld hi; 1 jeq 0 ?: deny; 2 ld lo; 3 jeq self: allow;
	 * [4 jeq 0: allow]; deny; allow */
	uint8_t deny_from1 = or0 ? 3 : 2;

	LD(p, ARG_HI(n));
	emit(p, BPF_JMP | BPF_JEQ | BPF_K, 0, 0, deny_from1);
	LD(p, ARG_LO(n));
	emit(p, BPF_JMP | BPF_JEQ | BPF_K, self, or0 ? 2 : 1, 0);
	if (or0)
		emit(p, BPF_JMP | BPF_JEQ | BPF_K, 0, 1, 0);
	RET(p, RET_DENY);
	RET(p, RET_ALLOW);
}

static void build(struct prog *p, uint32_t self)
{
	size_t i;

	p->n = 0;
	LD(p, offsetof(struct seccomp_data, arch));
	emit(p, BPF_JMP | BPF_JEQ | BPF_K, GUARD_ARCH, 1, 0);
	RET(p, RET_DENY);
	LD(p, offsetof(struct seccomp_data, nr));
#ifdef __x86_64__
	/* x32 calls carry this bit and numbers of their own */
	emit(p, BPF_JMP | BPF_JGE | BPF_K, 0x40000000u, 0, 1);
	RET(p, RET_DENY);
#endif
	for (i = 0; i < ARRAY_SIZE(rules); i++) {
		const struct rule *r = &rules[i];
		unsigned short skip_at;

		LD(p, offsetof(struct seccomp_data, nr));
		skip_at = p->n;
		emit(p, BPF_JMP | BPF_JEQ | BPF_K, (uint32_t)r->nr, 0, 0);
		switch (r->kind) {
		case SELF:
		case SELF_OR_0:
			body_self(p, r->arg, self, r->kind == SELF_OR_0);
			break;
		case WHICH_SELF:
			LD(p, ARG_LO(0));
			/* not 'which': to body_self's deny, its 6th */
			emit(p, BPF_JMP | BPF_JEQ | BPF_K, r->v1, 0, 5);
			body_self(p, 1, self, 1);
			break;
		case CMD_DENY:
			LD(p, ARG_LO(r->arg));
			emit(p, BPF_JMP | BPF_JEQ | BPF_K, r->v1, 2, 0);
			emit(p, BPF_JMP | BPF_JEQ | BPF_K, r->v2, 1, 0);
			RET(p, RET_ALLOW);
			RET(p, RET_DENY);
			break;
		case DENY:
			RET(p, RET_DENY);
			break;
		}
		p->f[skip_at].jf = (uint8_t)(p->n - skip_at - 1);
	}
	RET(p, RET_ALLOW);
}

/* Threads only: clone without CLONE_THREAD, fork and vfork refused,
 * clone3 (whose flags a filter cannot read) said missing, so that
 * glibc's pthread_create() falls back to clone. */
static void build_no_fork(struct prog *p)
{
	p->n = 0;
	LD(p, offsetof(struct seccomp_data, arch));
	emit(p, BPF_JMP | BPF_JEQ | BPF_K, GUARD_ARCH, 1, 0);
	RET(p, RET_DENY);
	LD(p, offsetof(struct seccomp_data, nr));
#ifdef __x86_64__
	emit(p, BPF_JMP | BPF_JGE | BPF_K, 0x40000000u, 0, 1);
	RET(p, RET_DENY);
	emit(p, BPF_JMP | BPF_JEQ | BPF_K, __NR_fork, 0, 1);
	RET(p, RET_DENY);
	emit(p, BPF_JMP | BPF_JEQ | BPF_K, __NR_vfork, 0, 1);
	RET(p, RET_DENY);
#endif
	emit(p, BPF_JMP | BPF_JEQ | BPF_K, __NR_clone3, 0, 1);
	RET(p, SECCOMP_RET_ERRNO | (ENOSYS & SECCOMP_RET_DATA));
	emit(p, BPF_JMP | BPF_JEQ | BPF_K, __NR_clone, 0, 3);
	/* the flags are the first argument on both architectures */
	LD(p, ARG_LO(0));
	emit(p, BPF_JMP | BPF_JSET | BPF_K, 0x00010000u /* CLONE_THREAD */,
	     1, 0);
	RET(p, RET_DENY);
	RET(p, RET_ALLOW);
}

int procguard_filter_supported(void)
{
	return 1;
}

static int load(struct prog *p)
{
	struct sock_fprog fp;

	fp.len = p->n;
	fp.filter = p->f;
	if (prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &fp, 0, 0) < 0)
		return error_setsys("cannot install the process guard");
	return 0;
}

/* Set once this process (or the parent it was forked from) has one. */
static int filter_on;

static int install_filter(void)
{
	struct prog p;

	build(&p, (uint32_t)syscall(SYS_getpid));
	if (load(&p) < 0)
		return -1;
	filter_on = 1;
	return 0;
}

int procguard_fork_child(void)
{
	if (!filter_on)
		return 0;
	return install_filter();
}

int procguard_forbid_fork(void)
{
	struct prog p;

	/* LeakSanitizer stops the world from a clone of its own */
	if (GUARD_SANITIZER)
		return 0;
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
		return error_setsys("cannot set no_new_privs");
	build_no_fork(&p);
	return load(&p);
}

#else

int procguard_filter_supported(void)
{
	return 0;
}

static int install_filter(void)
{
	return ERR_NOTFOUND;
}

int procguard_fork_child(void)
{
	return 0;
}

int procguard_forbid_fork(void)
{
	return 0;
}

#endif

int procguard_install(void)
{
	int r;

	if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) < 0)
		return error_setsys("cannot make the process undumpable");
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
		return error_setsys("cannot set no_new_privs");
	r = install_filter();
	if (r == ERR_NOTFOUND)
		error_set("no process guard on this architecture: berth-ssh "
			  "processes may signal each other");
	return r;
}
