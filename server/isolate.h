/*
 * isolate: how the engine runs an app's programs when it is root: as the
 * app's own user (appuser), each process in a cgroup of its own with the
 * app's limits (cgroup), seeing its release at /app with berth's state
 * folder hidden (sandbox).  The mechanisms live in those modules; this one
 * ties them to a spawn and keeps the live groups.
 *
 * One cgroup per process (a Heroku dyno): "APP.N" under berth's parent
 * group, N counting up for the engine's life.  A process's limits are its
 * own (memory: 256M is each web.1's), the OOM killer stays inside it, and
 * when the process ends (stop, crash, retire, rm) isolate_end() kills
 * whatever is left in its group, setsid()'d children and double forks
 * included, and removes the group.
 *
 * Without root there is nothing to isolate with: 'on' is 0, every call
 * below leaves the spawn as it was, and init says so once in the log.
 *
 * Blocking, in the engine's loop: nothing waits for a process.
 * isolate_end() and isolate_abort() kill the group and remove it at once
 * when it is empty (the usual case); one whose processes take longer to
 * die is looked at again from a timer (at most 3 s), not waited for.
 * isolate_remove_app() runs userdel and groupdel in a child,
 * isolate_rename_app() usermod, and isolate_user_ready() useradd (an
 * app's user removed by hand, say) with the chown of the release folder.
 * isolate_user_ready(), isolate_spawn_prepare() (with a loop: it only
 * looks the user up, never makes it), isolate_port_check() and
 * isolate_port_owned() read the user database (under a millisecond).
 * What does wait: isolate_init() (before the loop serves anything: it
 * may make berth-www and berth-ssh, about 0.1 s each, and waits up to 3 s
 * for the groups of a crashed engine to die); isolate_app_user() (the
 * unpack child's) makes the app's user if it is missing; without a loop
 * (tests), isolate_spawn_prepare() and isolate_user_ready() make it too;
 * isolate_release() and isolate_finish_now(), at exit, wait for whatever
 * still runs.  The isolate_build_*() calls and isolate_give_tree() run in
 * a session or a child, never in the engine.
 */
#ifndef BERTH_ISOLATE_H
#define BERTH_ISOLATE_H

#include <stdint.h>
#include <sys/types.h>

#include "appuser.h"
#include "cgroup.h"
#include "sandbox.h"

struct loop;
struct spawn;
struct isolate_group;
struct isolate_job;

/* A child's work is done: 0, or -1 with error_last(). */
typedef void (*isolate_done_fn)(void *arg, int result);

/* A spawn waiting for its app's user (isolate_user_ready()); the
 * caller's, zeroed before its first use; the fields are isolate's. */
struct isolate_wait {
	struct isolate_wait *next;
	struct isolate_job *job;	/* what it waits for; NULL: nothing */
	isolate_done_fn done;
	void *arg;
};

struct isolate {
	int on;				/* root: users, cgroups, sandbox */
	struct appuser_sys users;
	struct appuser www;		/* berth-www: nginx's workers */
	struct appuser ssh;		/* berth-ssh: SSH session processes */
	struct cgroup_sys cg;		/* layout CGROUP_NONE: no limits */
	char *root;			/* berth's state folder, hidden */
	char *pg_run;			/* ROOT/postgres/run, shown again */
	struct isolate_group *groups;	/* live groups, by leader pid */
	unsigned long next_id;
	struct loop *loop;		/* NULL: wait instead (tests) */
	struct isolate_group *dying;	/* killed, not yet empty */
	uint64_t dying_timer;
	long dying_wait;
	struct isolate_job *jobs;	/* users being removed */
};

/*
 * Set up for the state folder 'root' (absolute).  Not root: on = 0 and a
 * warning once.  As root: per-app users, cgroups under "berth" (or
 * "berth-HASH" for another state folder than /var/lib/berth, so two
 * engines never share groups), groups a crashed engine left are killed
 * and removed, and ROOT/run/cgroups lists the parent folders (one a
 * line).  berth-www, the user of nginx's workers, is made if missing
 * (iso->www), and berth-ssh, the user of SSH sessions (iso->ssh).  The
 * loop 'l' (borrowed) drives what dies and the removal of users; NULL:
 * those calls wait instead.  -1 with error_last() if isolation cannot
 * be given as root.
 */
int isolate_init(struct isolate *iso, const char *root, struct loop *l);
/* Kill every group still live, close everything (isolate_finish_now()
 * first). */
void isolate_release(struct isolate *iso);
/* At exit: wait for the groups still dying and the users still being
 * removed (each one's callback runs from here). */
void isolate_finish_now(struct isolate *iso);

/* What one spawn needs until spawn_start() returns (the caller's). */
struct isolate_spawn {
	struct isolate *iso;
	struct sandbox sb;
	struct cgroup cg;
	int have_cg;
	int die_with_parent;
	char app[64];
	struct strv env;	/* the spawn's environment, paths made /app */
	struct strv argv;	/* and its arguments (keter's exec) */
};

/*
 * Before the engine spawns a program of app's (a process, a deploy
 * script) in its release folder 'release' (NULL: none): is the app's
 * user there, and is the folder its?  The answer never waits:
 *   1: yes (or not on): isolate_spawn_prepare() finds the user now.
 *   0: not yet: w is queued and done(arg, result) comes from the loop
 *      once the child that changes the user is done.  That child is
 *      apps:rename's usermod (isolate_rename_app(): a process of the app
 *      that restarts meanwhile must not look the user up half renamed),
 *      rm's userdel, or one this call started: the user is missing (its
 *      host user was removed by hand, say) or the folder is another
 *      number's (the user was made again), so useradd runs (about
 *      0.1 s, or as long as a build holds the users' lock) and the
 *      folder is given to the user (safefs, by descriptors).  result 0:
 *      call this again (it may say 0 again: another rename), the app's
 *      name may have changed meanwhile; -1 with error_last(): the user
 *      could not be made (a user of another's by that name, say).
 *  -1 with error_last(): the child could not start.
 * w stays where it is until done runs, or isolate_user_unwait() (a stop,
 * a free) takes it off; unwait is a no-op for a w that waits for
 * nothing.  Without a loop, the user is made here and 1 or -1.
 */
int isolate_user_ready(struct isolate *iso, const char *app,
		       const char *release, struct isolate_wait *w,
		       isolate_done_fn done, void *arg);
void isolate_user_unwait(struct isolate *iso, struct isolate_wait *w);
/* 1 while w waits (between isolate_user_ready()'s 0 and done). */
int isolate_user_waiting(const struct isolate_wait *w);

/*
 * Make s run as app's user in a group of its own with limits 'lim', its
 * release folder 'release' shown at /app (the working folder).  The user
 * must be there (isolate_user_ready() said 1 just before; -1 if not);
 * without a loop it is made if it is missing.  Values of s->envp that
 * name the release folder (HOME) are rewritten to /app, which is where
 * the process sees it.  Not on: nothing is changed and 0.  -1 with
 * error_last() if the app cannot be isolated (then nothing is left).
 * After spawn_start(): isolate_started() on success, isolate_abort()
 * on failure.
 */
int isolate_spawn_prepare(struct isolate *iso, struct isolate_spawn *is,
			  const char *app, const char *release,
			  const struct cgroup_limits *lim, struct spawn *s);
void isolate_started(struct isolate_spawn *is, pid_t pid);
void isolate_abort(struct isolate_spawn *is);

/*
 * The process that led group 'pid' is done: kill what is left in its
 * group and remove it, now if it is empty, else from a timer once it is
 * (or at most 3 s later, with a warning).  Returns the OOM kills counted
 * there (0 if none, or no group).  Safe to call twice or for a pid that
 * had none.
 */
uint64_t isolate_end(struct isolate *iso, pid_t pid);

/*
 * Memory (bytes) and CPU time (µs) of the process 'pid' leads: its
 * group's when it has one, else its own from /proc.  0 or -1.
 */
int isolate_usage(struct isolate *iso, pid_t pid, uint64_t *memory,
		  uint64_t *cpu_usec);

/*
 * For a child process (the unpacker): the app's user, made if missing,
 * into *uid and *gid; 0, or ERR_NOTFOUND when not on (keep the caller's).
 */
int isolate_app_user(struct isolate *iso, const char *app, uid_t *uid,
		     gid_t *gid);
/* Give the tree at 'dir' (berth's own path) to uid:gid by descriptors,
 * never following a link (safefs). */
int isolate_give_tree(const char *dir, uid_t uid, gid_t gid);

/*
 * For a build (a session process, as root): the app's user, made if it
 * is missing, with the state folder 'root'.  0, or -1 with error_last().
 */
int isolate_build_user(const char *root, const char *app, struct appuser *u);

/*
 * Before traffic goes to a web process that bound its own PORT: every
 * TCP socket listening on 'port' (v4 and v6, this network namespace)
 * must belong to the app's user (or root's: the engine's own socket,
 * bound and handed to the process).  Each app has a uid of its own, so a
 * port taken by another app, or by any other local program, between
 * the engine's check that it was free and the app's own bind, is found
 * here instead of receiving the app's requests.  0 when it does (or
 * when not on); ERR_INVALID with error_last() naming the port and the
 * uid that holds it; -1 if the tables cannot be read.  A process the
 * engine hands a socket it bound itself passes (its socket is root's):
 * that port was never free.
 */
int isolate_port_check(struct isolate *iso, const char *app, int port);
/*
 * After a crash, a web process that binds PORT itself is restarted while
 * its port was free: it gets requests only once this says 1, a socket of
 * the app's user listening on 'port' (and none of another user's).  0
 * while nothing listens there yet; ERR_INVALID, as above, when another
 * user's program does; 1 when not on.
 */
int isolate_port_owned(struct isolate *iso, const char *app, int port);
/* The pure part, for tests: the listeners on 'port' in the text of
 * /proc/net/tcp or tcp6; *other gets a uid that is neither 'uid' nor
 * root's (and the count of those is returned), else 0. */
int isolate_port_foreign(const char *text, int port, uid_t uid,
			 uid_t *other);

/*
 * Builds run in an SSH session's process, not in the engine: the build's
 * programs (buildpacks, the app's hooks, buildpack and submodule fetches,
 * as the app's user) share one cgroup, "APP.build-PID" under the engine's parent
 * folders (ROOT/run/cgroups, cgroup_sys_join()), with the app's limits.
 * One build per process, so the group is the process's:
 *
 * isolate_build_open(): make it.  0 also when there is nothing to
 * isolate with (not root, no cgroups, no engine has listed its folders):
 * then the build runs without limits, as before.
 * isolate_build_child(): in a child between fork and exec, before it
 * drops root: join the group (async-signal-safe; 0 when there is none),
 * and enter the build's view (isolate_build_view() below) when it has one.
 * isolate_build_limit_hit(): after a program failed, why, if a limit of
 * the group stopped it ("the build reached its memory limit (256 MiB;
 * ...)") into why, one line; 0 if no limit was met.
 * isolate_build_close(): kill what is left (setsid()'d daemons too) and
 * remove the group.
 */
int isolate_build_open(const char *root, const char *app,
		       const struct cgroup_limits *lim);
/* app.yaml's limits, once it is read (0 when there is no group) */
int isolate_build_set_limits(const struct cgroup_limits *lim);
int isolate_build_child(void);
int isolate_build_limit_hit(char *why, size_t len);
void isolate_build_close(void);

/*
 * The build's view of the file system, as apps have theirs (sandbox.h):
 * with a per-app user, every program of the build (the same ones that
 * join its cgroup) runs in a mount namespace of its own where berth's
 * state folder 'root' is covered (other apps' repositories, releases,
 * config and builds, the host key, authorized_keys), with a private
 * /tmp, /var/tmp and /dev/shm and a procfs that lists only its user's
 * processes.  Shown again at their own paths: the build folder and the
 * cache (writable, programs may run from them), ENV_DIR (read-only), the
 * build's work folder 'work' (its own scratch; 'work'/app is shown at
 * /app, writable, as Heroku's builds have it) and the embedded
 * PostgreSQL's socket folder; and for as long as they are named with
 * isolate_build_show(), the buildpacks of this build and the server's
 * hook folder.  The network is the host's.
 *
 * isolate_build_view(): set it up (0 when there is nothing to isolate
 * with: not root); -1 with error_last().  The strings are copied.
 * isolate_build_show() / _unshow(): add or take back one folder ('flags'
 * as sandbox_show_flags); -1 when there are too many.
 * isolate_build_fetching(): while on, fetches of buildpacks and
 * submodules run: the host's /tmp stays (a file:// URL may name a
 * folder there; they run libgit2, never the pushed code).
 * isolate_build_enter(): in a child between fork and exec, as root:
 * isolate_build_child()'s cgroup, then the view and no_new_privs; NULL,
 * or the step that failed.  isolate_build_child() does the same (-1 on
 * failure).  isolate_build_close() forgets the view.
 */
int isolate_build_view(const char *root, const char *build_dir,
		       const char *cache_dir, const char *env_dir,
		       const char *work, uid_t uid, gid_t gid);
int isolate_build_show(const char *path, unsigned flags);
void isolate_build_unshow(const char *path);
void isolate_build_fetching(int on);
const char *isolate_build_enter(void);

/*
 * apps:rename: the app's user follows its name (appuser_rename: usermod,
 * about 50 ms), in a child the loop watches, as isolate_remove_app()
 * below; spawns of the app under either name wait for it
 * (isolate_user_ready()), and go on after done has run.  0: started,
 * done(arg, result) comes from the loop (0: renamed, or nothing to
 * rename; -1 with error_last()).  1: done already (not on,
 * or no loop: renamed here), done is not called.  -1 with error_last():
 * it failed or could not start, done is not called.
 */
int isolate_rename_app(struct isolate *iso, const char *from, const char *to,
		       isolate_done_fn done, void *arg);

/*
 * rm: the app's processes are gone; remove its user and group.  They go
 * in a child the loop watches (userdel and groupdel take about 0.1 s,
 * and a build making a user holds the lock meanwhile), started once the
 * app's groups still dying are gone (userdel refuses a user that runs
 * something).  0: started, done(arg, result) comes from the loop (0: the
 * user is gone, or there was none; -1 with error_last()).  1: nothing to
 * do (not on), done is not called.  -1 with error_last(): could not
 * start, done is not called.
 */
int isolate_remove_app(struct isolate *iso, const char *app,
		       isolate_done_fn done, void *arg);

/* A release's limits: the manifest's where set (>= 0), else berth.yaml's */
struct config;
struct manifest;
void isolate_limits(struct cgroup_limits *lim, const struct config *cfg,
		    const struct manifest *m);

#endif
