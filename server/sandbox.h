/*
 * sandbox: what an app's process sees of the host, set up in the child
 * between fork and exec (spawn's child_setup), and then the app's user.
 *
 * sandbox_enter(), in this order, dying (returning the step that failed)
 * at the first error:
 *   1. unshare(CLONE_NEWNS) and make every mount private, so nothing done
 *      here reaches the host's mount table;
 *   2. bind-mount the release folder at /app (nosuid, nodev; read-only with
 *      SANDBOX_APP_READONLY): Heroku's path, which buildpacks and Dokku's
 *      sample apps assume;
 *   3. cover each 'hide' path with an empty tmpfs of mode 000: berth's
 *      state folder (ROOT: every app's repository, config, releases and
 *      logs, the SSH host key, authorized_keys, the database admin's
 *      conninfo), so the app sees none of it.  The release stays visible
 *      at /app, bound before the cover.  Each 'show' folder beneath a
 *      hidden one (the embedded PostgreSQL's socket folder) is bound back
 *      at its own path; that cover is then mode 0711 (its skeleton of
 *      folders can be passed through, not listed) and read-only;
 *   4. with SANDBOX_PRIVATE_TMP, fresh tmpfs at /tmp, /var/tmp and /dev/shm
 *      (mode 1777), so apps share no scratch space; with SANDBOX_HIDE_PIDS
 *      a procfs of its own with hidepid=2, so other users'
 *      processes (other apps, berth) are not even listed;
 *   5. chdir to 'workdir' (default /app);
 *   6. setgroups(0), setresgid(gid), setresuid(uid), checked; uid 0 or
 *      gid 0 is refused before anything else is done;
 *   7. PR_SET_NO_NEW_PRIVS, so no setuid program gives root back.
 *
 * The caller (spawn) does the cgroup before this (moving into a cgroup
 * needs root) and exits the child if this fails.  Paths are absolute and
 * berth's own (root's up to the release folder itself); 'app_path' must
 * exist on the host as a folder: sandbox_prepare() makes /app (root, 0755)
 * once, in the parent.
 */
#ifndef BERTH_SANDBOX_H
#define BERTH_SANDBOX_H

#include <stddef.h>
#include <sys/types.h>

#define SANDBOX_APP_PATH "/app"
#define SANDBOX_HIDE_MAX 8
#define SANDBOX_SHOW_MAX 12

enum sandbox_flags {
	SANDBOX_PRIVATE_TMP = 1 << 0,
	SANDBOX_HIDE_PIDS = 1 << 1,
	SANDBOX_APP_READONLY = 1 << 2,
};

/* How a 'show' folder is bound back (0: writable, no programs run from
 * it: the PostgreSQL socket folder) */
enum sandbox_show_flags {
	SANDBOX_SHOW_READONLY = 1 << 0,
	SANDBOX_SHOW_EXEC = 1 << 1,	/* programs may run from it */
};

struct sandbox {
	const char *release;	/* shown at app_path */
	const char *app_path;	/* NULL: SANDBOX_APP_PATH */
	const char *workdir;	/* NULL: app_path */
	const char *hide[SANDBOX_HIDE_MAX];
	size_t n_hide;
	/* folders beneath a hidden one shown again (a missing one is left
	 * out); absolute, no "." or ".." */
	const char *show[SANDBOX_SHOW_MAX];
	unsigned show_flags[SANDBOX_SHOW_MAX];	/* sandbox_show_flags */
	size_t n_show;
	uid_t uid;		/* never 0 */
	gid_t gid;		/* never 0 */
	unsigned flags;
};

/*
 * In the parent, before forking: check the paths (absolute, existing
 * folders) and make app_path if it is missing.  0, or -1 with
 * error_last() saying what is wrong.
 */
int sandbox_prepare(const struct sandbox *sb);

/*
 * In the child, between fork and exec, as root: the steps above.  NULL
 * when done (the process is now the app's user in its own view of the
 * file system); else the name of the step that failed, with errno set,
 * and the child must _exit() (it may be half set up).  Async-signal-safe:
 * only system calls, no allocation.  Usable as spawn's child_setup
 * (sandbox_child_setup takes the struct as void *).
 */
const char *sandbox_enter(const struct sandbox *sb);
const char *sandbox_child_setup(void *sb);

/*
 * Steps 1 to 5 only, and PR_SET_NO_NEW_PRIVS: the view of the file
 * system, still as root, for a child that drops to the app's user itself
 * afterwards (a build's programs, whose spawn or fork drops).  uid and
 * gid are not looked at.  Same contract as sandbox_enter().
 */
const char *sandbox_enter_view(const struct sandbox *sb);

#endif
