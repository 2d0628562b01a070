/*
 * cgroup: a control group per app (and per build), so that the kernel
 * bounds what its processes use and kills every one of them on demand.
 *
 * Layouts, detected by cgroup_sys_init() from /proc/self/mountinfo and
 * /proc/self/cgroup:
 *
 *   CGROUP_V2      one cgroup2 hierarchy with the controllers (Debian 12,
 *                  /sys/fs/cgroup).  Everything below works.
 *   CGROUP_HYBRID  v1 controllers (memory, pids, cpu, cpuacct, freezer,
 *                  each where it is mounted, combined mounts such as
 *                  cpu,cpuacct included) plus a cgroup2 hierarchy without
 *                  controllers (/sys/fs/cgroup/unified).  Limits come from
 *                  v1; CPU use and the kill from v2 (cpu.stat and
 *                  cgroup.kill exist in every v2 cgroup).
 *   CGROUP_V1      v1 controllers only.  The kill freezes (v1 freezer),
 *                  lists and SIGKILLs, thaws, until the group is empty.
 *   CGROUP_NONE    not root, or nothing usable mounted: every call but
 *                  cgroup_sys_*() and the parse helpers fails with
 *                  ERR_NOTFOUND; callers run apps without limits.
 *
 * What each layout gives:
 *
 *                         V2            HYBRID              V1
 *   memory limit          memory.max    memory.limit_in_bytes (both)
 *   swap counted in it    memory.swap.max=0   memory.memsw.limit_in_bytes
 *   cpu limit             cpu.max       cpu.cfs_quota_us    cpu.cfs_quota_us
 *   process limit         pids.max      pids.max            pids.max
 *   memory use            memory.current  memory.usage_in_bytes (both)
 *   cpu use               cpu.stat      v2 cpu.stat         cpuacct.usage
 *   OOM kills             memory.events memory.oom_control  (same)
 *   kill all              cgroup.kill   v2 cgroup.kill      freezer loop
 *                         (cgroup.freeze loop before 5.14)
 *
 * A controller that is missing (say, no pids anywhere) makes the limit it
 * would carry fail with ERR_NOTFOUND and leaves the rest working; 'feat'
 * in struct cgroup_sys says what is there.
 *
 * Where the groups live: for each hierarchy, under the cgroup this process
 * is in (so a service manager's delegation and its own accounting hold),
 * in a folder named by 'parent' ("berth"): e.g. on Debian 12 under
 * systemd /sys/fs/cgroup/system.slice/berth.service/berth/app-NAME.  On
 * pure v2 a cgroup whose children have controllers may hold no process,
 * so when berth's own cgroup is not the root, init moves this process
 * into a leaf next to 'parent' ("PARENT.engine") first; that fails with a
 * clear error if others share the cgroup (give berth its own, with
 * Delegate=yes under systemd).
 *
 * Only root can move processes or write limits; the files are root's, so
 * an app cannot leave its group or raise its limits.
 *
 * Blocking: everything is a few small file operations on cgroupfs, except
 * cgroup_kill() and cgroup_wait_empty(), which sleep and look again (1 ms
 * doubling to 50 ms) until done or their time limit.  With a limit of 0
 * they do not sleep: one kill (cgroup.kill, or one freeze, kill and thaw
 * round on v1) and one look, which is how the engine's loop uses them
 * (isolate.h: a group that is not empty yet is looked at again from a
 * timer).  Waiting is for the processes that have nothing else to do: a
 * build's session, an engine at start or exit.  Not thread-safe; the fds
 * are CLOEXEC.
 */
#ifndef BERTH_CGROUP_H
#define BERTH_CGROUP_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "util.h"

enum cgroup_layout {
	CGROUP_NONE,
	CGROUP_V1,
	CGROUP_HYBRID,
	CGROUP_V2,
};

/* What the host offers; bits of struct cgroup_sys 'feat'. */
enum cgroup_feat {
	CGROUP_MEMORY = 1 << 0,		/* memory limit, use and OOM count */
	CGROUP_PIDS = 1 << 1,		/* process limit */
	CGROUP_CPU = 1 << 2,		/* cpu limit */
	CGROUP_CPUSTAT = 1 << 3,	/* cpu use */
	CGROUP_FREEZE = 1 << 4,		/* freezer (v1) or cgroup.freeze */
	CGROUP_KILL = 1 << 5,		/* cgroup.kill */
};
#define CGROUP_NFEAT 6

enum cgroup_init_flags {
	/* Ignore any cgroup2 hierarchy: a hybrid host then works as V1
	 * (tests use it to prove the freezer kill). */
	CGROUP_INIT_NO_V2 = 1 << 0,
	/* Work even when not root (tests of a delegated tree). */
	CGROUP_INIT_ANY_USER = 1 << 1,
};

#define CGROUP_MAX_HIER 8
#define CGROUP_NAME_MAX 128

struct cgroup_hier {
	int version;		/* 1 or 2 */
	unsigned feat;		/* the enum cgroup_feat this one serves */
	char *mount;		/* where it is mounted */
	char *dir;		/* absolute path of the parent folder */
	int dir_fd;		/* open on dir, after cgroup_sys_init() */
};

struct cgroup_sys {
	enum cgroup_layout layout;
	unsigned feat;
	struct cgroup_hier hier[CGROUP_MAX_HIER];
	size_t n_hier;
	int by_feat[CGROUP_NFEAT];	/* index into hier, or -1 */
	char *parent;
	char *v2_leaf;		/* pure v2: the leaf init moved us into */
};

/* One group: its folder in every hierarchy. */
struct cgroup {
	const struct cgroup_sys *sys;	/* borrowed; must outlive this */
	char name[CGROUP_NAME_MAX + 1];
	int dir_fd[CGROUP_MAX_HIER];
	int procs_fd[CGROUP_MAX_HIER];	/* cgroup.procs, for cgroup_enter() */
	unsigned skip;		/* bit i: enter/attach leave hierarchy i alone */
};

struct cgroup_limits {
	uint64_t memory;	/* bytes, RAM and swap together; 0: none */
	long cpu_millis;	/* thousandths of a core (500: half); 0: none */
	long processes;		/* most processes and threads; 0: none */
};

struct cgroup_usage {
	uint64_t memory;	/* bytes charged now */
	uint64_t cpu_usec;	/* CPU time used since created */
	uint64_t oom_kills;	/* processes the OOM killer took here */
	size_t processes;	/* in it now */
	uint64_t pids_refused;	/* forks refused at the process limit */
	unsigned have;		/* CGROUP_MEMORY, CGROUP_CPUSTAT, CGROUP_PIDS:
				 * valid fields */
};

/*
 * Detect the layout and make the parent folder in each hierarchy (mode
 * 0755, owned by root), enabling memory, pids and cpu for its children on
 * v2.  'parent' is one name such as "berth".  Not root (without
 * CGROUP_INIT_ANY_USER): 0 with layout CGROUP_NONE.  Nothing mounted:
 * the same.  -1 when something is there but unusable (error_last() says
 * what), and nothing is left half made.
 */
int cgroup_sys_init(struct cgroup_sys *sys, const char *parent,
		    unsigned flags);
/*
 * Use the parent folders another process of berth made (the engine's
 * ROOT/run/cgroups: 'dirs', one absolute folder a line), making and
 * moving nothing: each hierarchy of this host that holds a listed folder
 * serves what it serves (on v2, the controllers that folder hands its
 * children).  For builds, which run in SSH session processes.  Not root
 * or nothing listed: 0 with CGROUP_NONE.
 */
int cgroup_sys_join(struct cgroup_sys *sys, const char *dirs);
/* Close and free; the folders stay. */
void cgroup_sys_release(struct cgroup_sys *sys);
/* "cgroup v2", "cgroup v1 with a v2 hierarchy", ... for a log line. */
const char *cgroup_layout_name(enum cgroup_layout layout);

/*
 * The pure part of init, for tests: fill sys from the text of
 * /proc/self/mountinfo, of /proc/self/cgroup, and of the v2 cgroup's
 * cgroup.controllers (NULL: none).  Opens nothing; dir_fd stay -1 and
 * CGROUP_KILL/CGROUP_FREEZE on v2 are assumed (init checks the files).
 */
int cgroup_sys_detect(struct cgroup_sys *sys, const char *parent,
		      const char *mountinfo, const char *self_cgroup,
		      const char *v2_controllers, unsigned flags);

/* 1 if name can name a group: [a-z0-9][a-z0-9._-]*, at most
 * CGROUP_NAME_MAX, no "..". */
int cgroup_name_valid(const char *name);

/*
 * Open the group 'name' under the parent, making it if 'create' (an
 * existing one is fine).  cg needs no init.  ERR_NOTFOUND if it does not
 * exist and !create, or the layout is CGROUP_NONE.
 */
int cgroup_open(struct cgroup *cg, const struct cgroup_sys *sys,
		const char *name, int create);
/* Close the fds; the group stays.  Safe on a closed or zeroed one. */
void cgroup_close(struct cgroup *cg);

/*
 * Set every limit (0 fields lift theirs).  A limit asked for that the
 * host cannot set fails with ERR_NOTFOUND, the others still set.
 *
 * With no CPU limit, a v1 cpu hierarchy that serves nothing else the
 * group needs (CPU use read from v2 or a cpuacct of its own) is left out
 * of later cgroup_enter()/cgroup_attach(): a v1 group is one scheduling
 * entity weighing as much as a single process at the root, so every app
 * put there would share one process's CPU against everything else on the
 * host (a deploy under load then took three times as long).  On v2 the
 * cpu controller is the subtree's, and a service manager's slice already
 * weighs the service as a whole.
 */
int cgroup_set_limits(struct cgroup *cg, const struct cgroup_limits *lim);

/*
 * Move the calling process into the group, in every hierarchy.  Only
 * write(2) on fds cgroup_open() made: async-signal-safe, for a child
 * between fork and exec (before it drops root).  0, or -1 with errno set.
 */
int cgroup_enter(const struct cgroup *cg);
/* Move process 'pid' in (by the parent, before it lets the child go). */
int cgroup_attach(const struct cgroup *cg, pid_t pid);

/*
 * SIGKILL every process in the group so that none escapes (setsid and
 * double forks included: membership is the kernel's, not a process
 * group's), then wait until it is empty, at most timeout_ms (0: one
 * round, no sleep).  0 when empty; ERR_BUSY if processes are still there
 * at the deadline.
 * Killed processes are reaped by their parents as usual; a zombie is no
 * longer in the group, so this returns before anyone reaps.
 */
int cgroup_kill(const struct cgroup *cg, long timeout_ms);
/* 0 once no process is left, ERR_BUSY at the deadline (0 ms: look once). */
int cgroup_wait_empty(const struct cgroup *cg, long timeout_ms);
/* The pids in it now; *pids is the caller's to free (NULL when none). */
int cgroup_pids(const struct cgroup *cg, pid_t **pids, size_t *n);

/* Remove the group's folders (closing cg).  ERR_BUSY while processes are
 * in it (cg stays open then); a group already gone is fine. */
int cgroup_remove(struct cgroup *cg);

/* What the group uses now; fields the host cannot tell are 0 and their
 * bit is clear in u->have. */
int cgroup_usage(const struct cgroup *cg, struct cgroup_usage *u);
/* One process's resident memory and CPU time, from /proc. */
int cgroup_pid_usage(pid_t pid, uint64_t *rss, uint64_t *cpu_usec);

/* ---- parsing, exposed for tests ---- */

/* The value of "KEY N" in a flat-keyed file (memory.events, cpu.stat,
 * memory.oom_control); ERR_NOTFOUND if the key is not there. */
int cgroup_parse_key(const char *text, const char *key, uint64_t *val);
/* cpu.max text for a limit: "50000 100000", or "max 100000" for 0. */
void cgroup_format_cpu_max(char *out, size_t len, long cpu_millis);
/* Parse a size for 'memory:' ("256M", "1G", "512k", "1048576") into
 * bytes; ERR_INVALID if it is not one. */
int cgroup_parse_size(const char *s, uint64_t *bytes);
/* Parse 'cpu:' ("0.5", "2", "1.25") into thousandths of a core. */
int cgroup_parse_cpu(const char *s, long *millis);

#endif
