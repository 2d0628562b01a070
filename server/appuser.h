/*
 * appuser: one Unix user (and group of the same name and number) per app,
 * so the kernel keeps apps apart; plus berth-www for nginx's workers.
 *
 * Names: "berth-" and the app's name ("berth-myapp").  Where that would
 * pass APPUSER_NAME_MAX (31, what every tool shows in full) or the app is
 * named like one of berth's own users ("www", "ssh"), the name is "berth-",
 * the app name's first 16 characters, "_" and 8 hex digits of a hash of
 * the whole name ("berth-a-very-long-app-n_1a2b3c4d"): "_" never appears
 * in an app name, so a hashed name cannot be another app's plain one.
 *
 * Numbers: uid and gid are equal, taken from a range of berth's own
 * (APPUSER_UID_MIN..APPUSER_UID_MAX: above Debian's normal users and
 * systemd's dynamic ones, below the /etc/subuid ranges), one after another
 * and never used twice: the next number is kept in a state file, so files
 * an old app left behind (in /tmp, say) never belong to a new one.
 *
 * Creation and removal run groupadd/useradd/userdel/groupdel by execve
 * with a fixed environment: system users with no home (/nonexistent), no
 * shell (/usr/sbin/nologin), no password, and "berth app NAME" as the
 * comment.  A user is berth's only if name, comment and number all say
 * so; anything else by that name is refused, never adopted (fail closed),
 * and uid or gid 0 is never handed out.
 *
 * Without root (a developer's own account) there is no isolation: 'isolated'
 * is 0, appuser_ensure() answers with the current user, and callers keep
 * running everything as that user.
 *
 * Blocking: every call waits in the calling process.  ensure (when the
 * user is missing), remove and rename run the tools, tens of ms each
 * (about 0.1 s for groupadd with useradd, or userdel with groupdel; at
 * most 60 s each), and wait for the lock on the state file, which
 * another process making a user (a build) holds as long as that takes;
 * making one also waits for a lock of the host's (another engine).
 * Lookups, and ensure of a user that exists, only read the user database
 * (under a millisecond from /etc/passwd).  So the engine's loop calls
 * none of the slow ones itself: users are made in builds and in the
 * unpack child, made again (one removed by hand), renamed and removed
 * in a child the loop watches (isolate.h); the loop only looks them up.
 */
#ifndef BERTH_APPUSER_H
#define BERTH_APPUSER_H

#include <stddef.h>
#include <sys/types.h>

#include "util.h"

#define APPUSER_PREFIX "berth-"
#define APPUSER_NAME_MAX 31
#define APPUSER_UID_MIN 70000
#define APPUSER_UID_MAX 99999
#define APPUSER_WWW "berth-www"		/* nginx's workers */
#define APPUSER_SSH "berth-ssh"		/* SSH session processes */
#define APPUSER_STATE_FILE "next-uid"	/* in the state folder */

struct appuser_sys {
	int isolated;		/* root: apps get users of their own */
	uid_t first, last;	/* the range */
	char *state_dir;	/* where APPUSER_STATE_FILE lives */
	char *www_name;		/* APPUSER_WWW (tests use another) */
};

struct appuser {
	char name[APPUSER_NAME_MAX + 1];
	uid_t uid;
	gid_t gid;
	int isolated;		/* 0: the current user, not the app's own */
};

/*
 * Set up; 'state_dir' (berth's, e.g. ROOT/users) is made 0700 if needed.
 * Not root: isolated 0 and nothing is made.  -1 if the tools are missing
 * as root (isolation was asked for and cannot be given).
 */
int appuser_init(struct appuser_sys *sys, const char *state_dir);
/* appuser_init() on berth's own state folder for users, ROOT/users. */
int appuser_init_root(struct appuser_sys *sys, const char *root);
void appuser_release(struct appuser_sys *sys);

/*
 * For a caller that needs the table for one call: ROOT/users set up
 * (appuser_init_root()), fn(sys, u) called (appuser_ensure_ssh,
 * appuser_lookup_ssh, ...), released.  fn's result (0, ERR_NOTFOUND,
 * ERR_EXISTS or -1), or -1 when it could not be set up.
 */
int appuser_call(const char *root,
		 int (*fn)(const struct appuser_sys *sys, struct appuser *u),
		 struct appuser *u);

/* The user name for an app (see above) into out; ERR_INVALID for a name
 * that is not a valid app name. */
int appuser_name(char *out, size_t len, const char *app);

/*
 * The app's user, made if it does not exist yet.  0 and *u filled.
 * ERR_EXISTS if a user or group by that name exists that is not berth's
 * user for this app; -1 on other failures (nothing half made is left).
 */
int appuser_ensure(const struct appuser_sys *sys, const char *app,
		   struct appuser *u);
/* The app's user if it exists: 0, ERR_NOTFOUND, or ERR_EXISTS as above. */
int appuser_lookup(const struct appuser_sys *sys, const char *app,
		   struct appuser *u);
/*
 * Remove the app's user and group.  Kill its processes first (its
 * cgroup): userdel refuses a user that still runs something, and so do
 * we.  ERR_NOTFOUND if there is none; ERR_EXISTS if the name is not
 * berth's (then nothing is removed).
 */
int appuser_remove(const struct appuser_sys *sys, const char *app);

/*
 * apps:rename: the app keeps its user and number (usermod cannot rename a
 * user that runs processes), so running processes and the files they own
 * stay the app's: the user's comment becomes "berth app TO" and a note in
 * STATE/names/TO names it; the old name gets a new hashed user name noted
 * the same way, so a new app of that name gets a user of its own.  0 also
 * when not isolated or when the app has no user yet; ERR_EXISTS if the
 * old one is not berth's (nothing changed then).
 */
int appuser_rename(const struct appuser_sys *sys, const char *from,
		   const char *to);

/* berth-www, for nginx's worker processes; as appuser_ensure(). */
int appuser_ensure_www(const struct appuser_sys *sys, struct appuser *u);

/*
 * berth-ssh, the user SSH session processes drop to before they read a
 * byte from their client (session.h).  appuser_ensure_ssh() makes it if
 * missing (the engine, at start); appuser_lookup_ssh() only finds it (a
 * session): ERR_NOTFOUND if missing, ERR_EXISTS if a user of that name is
 * not berth's.
 */
int appuser_ensure_ssh(const struct appuser_sys *sys, struct appuser *u);
int appuser_lookup_ssh(const struct appuser_sys *sys, struct appuser *u);

#endif
