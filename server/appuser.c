/* appuser: see appuser.h. */
#include "appuser.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "runner.h"
#include "spawn.h"
#include "banned.h"

#define HASHED_PREFIX_LEN 16
#define TOOL_TIMEOUT_MS 60000
#define PWBUF 16384

/* Tools' exit codes (shadow's useradd(8), groupadd(8), userdel(8)). */
#define E_UID_IN_USE 4		/* useradd: uid taken; groupadd: gid taken */
#define E_NAME_IN_USE 9
#define E_USER_BUSY 8		/* userdel: the user runs processes */
#define E_GROUP_NOTFOUND 6	/* groupdel */

static const char *const tools[] = {
	"/usr/sbin/useradd", "/usr/sbin/userdel",
	"/usr/sbin/groupadd", "/usr/sbin/groupdel",
};

/* berth's own users, whose names an app's must not take */
static const char *const reserved[] = { "www", "ssh" };

static uint32_t fnv1a(const char *s)
{
	uint32_t h = 2166136261u;

	while (*s) {
		h ^= (unsigned char)*s++;
		h *= 16777619u;
	}
	return h;
}

int appuser_name(char *out, size_t len, const char *app)
{
	size_t plen = strlen(APPUSER_PREFIX), alen, i;
	int hashed = 0;

	if (!app_name_valid(app)) {
		error_set("invalid app name '%.80s'", app);
		return ERR_INVALID;
	}
	alen = strlen(app);
	if (plen + alen > APPUSER_NAME_MAX)
		hashed = 1;
	for (i = 0; i < ARRAY_SIZE(reserved); i++)
		if (!strcmp(app, reserved[i]))
			hashed = 1;
	if (len <= APPUSER_NAME_MAX)
		return error_set("name buffer too small");
	if (!hashed)
		snprintf(out, len, "%s%s", APPUSER_PREFIX, app);
	else
		snprintf(out, len, "%s%.*s_%08x", APPUSER_PREFIX,
			 HASHED_PREFIX_LEN, app, fnv1a(app));
	return 0;
}

/* ---- the user database ---- */

static int run_tool(char *const *argv)
{
	char *env[] = { "PATH=/usr/sbin:/usr/bin:/sbin:/bin", "LANG=C", NULL };
	struct buf out = BUF_INIT;
	int r;

	r = runner_capture(argv, env, "/", &out, 4096,
		      TOOL_TIMEOUT_MS);
	if (r > 0) {
		/* keep the tool's own words for the log */
		char *nl = out.data ? strchr(out.data, '\n') : NULL;

		if (nl)
			*nl = '\0';
		error_set("%s failed (%d): %s", argv[0], r,
			  out.data ? out.data : "");
	}
	buf_release(&out);
	return r;
}

/*
 * Is 'name' berth's user with comment 'gecos'?  0 with *u filled,
 * ERR_NOTFOUND if neither a user nor a group has the name, ERR_EXISTS if
 * something else has it.
 */
static int check_ours(const struct appuser_sys *sys, const char *name,
		      const char *gecos, struct appuser *u)
{
	struct passwd pw, *pwr = NULL;
	struct group gr, *grr = NULL;
	char *buf = xmalloc(PWBUF);
	int ret = ERR_EXISTS;

	errno = 0;
	if (getpwnam_r(name, &pw, buf, PWBUF, &pwr) != 0) {
		ret = error_setsys("cannot look user '%s' up", name);
		goto out;
	}
	if (!pwr) {
		if (getgrnam_r(name, &gr, buf, PWBUF, &grr) != 0) {
			ret = error_setsys("cannot look group '%s' up", name);
			goto out;
		}
		if (!grr) {
			error_set("no user '%s'", name);
			ret = ERR_NOTFOUND;
			goto out;
		}
		error_set("group '%s' exists and is not berth's", name);
		goto out;
	}
	if (strcmp(pw.pw_gecos ? pw.pw_gecos : "", gecos) ||
	    pw.pw_uid == 0 || pw.pw_gid == 0 || pw.pw_uid != pw.pw_gid ||
	    pw.pw_uid < sys->first || pw.pw_uid > sys->last) {
		error_set("user '%s' exists and is not berth's", name);
		goto out;
	}
	u->uid = pw.pw_uid;
	u->gid = pw.pw_gid;
	if (getgrgid_r(u->gid, &gr, buf, PWBUF, &grr) != 0 || !grr ||
	    strcmp(gr.gr_name, name)) {
		error_set("group of user '%s' is not berth's", name);
		goto out;
	}
	snprintf(u->name, sizeof(u->name), "%s", name);
	u->isolated = 1;
	ret = 0;
out:
	free(buf);
	return ret;
}

static int id_taken(uid_t id)
{
	struct passwd pw, *pwr = NULL;
	struct group gr, *grr = NULL;
	char *buf = xmalloc(PWBUF);
	int taken;

	taken = getpwuid_r(id, &pw, buf, PWBUF, &pwr) != 0 || pwr ||
		getgrgid_r(id, &gr, buf, PWBUF, &grr) != 0 || grr;
	free(buf);
	return taken;
}

/* A group by this name in our range, and no user by it. */
static int leftover_group(const struct appuser_sys *sys, const char *name)
{
	struct passwd pw, *pwr = NULL;
	struct group gr, *grr = NULL;
	char *buf = xmalloc(PWBUF);
	int r;

	r = getpwnam_r(name, &pw, buf, PWBUF, &pwr) == 0 && !pwr &&
	    getgrnam_r(name, &gr, buf, PWBUF, &grr) == 0 && grr &&
	    gr.gr_gid >= sys->first && gr.gr_gid <= sys->last &&
	    gr.gr_gid != 0 && (!gr.gr_mem || !gr.gr_mem[0]);
	free(buf);
	return r;
}

/* ---- the state file ---- */

/*
 * Users are the host's, state folders are not: two engines (two state
 * folders) making berth-www, or the same app name, at once would each
 * see the other's fresh group as one a crash left and remove it.  A
 * lock of the host's, held while a user is made, keeps them in turn.
 * No /run: only the state folder's lock.
 */
#define HOST_LOCK "/run/berth-users.lock"

static int lock_host(void)
{
	int fd = open(HOST_LOCK, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW,
		      0600);

	if (fd < 0)
		return errno == ENOENT ? -2 :
			error_setsys("cannot open '%s'", HOST_LOCK);
	while (flock(fd, LOCK_EX) < 0) {
		if (errno != EINTR) {
			error_setsys("cannot lock '%s'", HOST_LOCK);
			close(fd);
			return -1;
		}
	}
	return fd;
}

static int lock_state(const struct appuser_sys *sys)
{
	char *path = xasprintf("%s/lock", sys->state_dir);
	int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);

	if (fd < 0) {
		error_setsys("cannot open '%s'", path);
	} else if (flock(fd, LOCK_EX) < 0) {
		error_setsys("cannot lock '%s'", path);
		close(fd);
		fd = -1;
	}
	free(path);
	return fd;
}

static long read_next(const struct appuser_sys *sys)
{
	char *path = xasprintf("%s/%s", sys->state_dir, APPUSER_STATE_FILE);
	struct buf b = BUF_INIT;
	long v = (long)sys->first;

	if (path_exists(path)) {
		if (read_file(&b, path, 64) < 0) {
			v = -1;
			goto out;
		}
		b.data[strcspn(b.data, "\n")] = '\0';
		v = parse_long(b.data, (long)sys->last + 1);
		if (v < 0) {
			error_set("bad number in '%s'", path);
			goto out;
		}
		if (v < (long)sys->first)
			v = (long)sys->first;
	}
out:
	buf_release(&b);
	free(path);
	return v;
}

static int write_next(const struct appuser_sys *sys, long v)
{
	char *path = xasprintf("%s/%s", sys->state_dir, APPUSER_STATE_FILE);
	char text[32];
	int r;

	snprintf(text, sizeof(text), "%ld\n", v);
	r = write_file_atomic(path, text, strlen(text), 0600);
	free(path);
	return r;
}

/*
 * apps:rename leaves a note of which user an app name now maps to
 * (STATE/names/APP: one user name): the renamed app keeps its user (usermod
 * cannot rename a user that runs processes), and its old name gets a new,
 * hashed one, so a new app of that name never shares the renamed app's uid.
 */
static int name_for(const struct appuser_sys *sys, const char *app,
		    char *out, size_t len)
{
	char *path;
	struct buf b = BUF_INIT;
	int r;

	r = appuser_name(out, len, app);
	if (r < 0)
		return r;
	path = xasprintf("%s/names/%s", sys->state_dir, app);
	if (path_exists(path)) {
		size_t n;

		if (read_file(&b, path, 64) < 0) {
			r = -1;
			goto out;
		}
		b.data[strcspn(b.data, "\n")] = '\0';
		n = strlen(b.data);
		if (n <= strlen(APPUSER_PREFIX) || n > APPUSER_NAME_MAX ||
		    strncmp(b.data, APPUSER_PREFIX, strlen(APPUSER_PREFIX)) ||
		    strspn(b.data, "abcdefghijklmnopqrstuvwxyz0123456789_-") != n) {
			r = error_set("bad user name in '%s'", path);
			goto out;
		}
		snprintf(out, len, "%s", b.data);
	}
out:
	buf_release(&b);
	free(path);
	return r;
}

static int write_name(const struct appuser_sys *sys, const char *app,
		      const char *name)
{
	char *dir = xasprintf("%s/names", sys->state_dir);
	char *path = xasprintf("%s/%s", dir, app), *text;
	int r = -1;

	if (mkdir(dir, 0700) < 0 && errno != EEXIST) {
		error_setsys("cannot make '%s'", dir);
		goto out;
	}
	text = xasprintf("%s\n", name);
	r = write_file_atomic(path, text, strlen(text), 0600);
	free(text);
out:
	free(dir);
	free(path);
	return r;
}

/* ---- the API ---- */

int appuser_init(struct appuser_sys *sys, const char *state_dir)
{
	size_t i;

	memset(sys, 0, sizeof(*sys));
	sys->first = APPUSER_UID_MIN;
	sys->last = APPUSER_UID_MAX;
	sys->state_dir = xstrdup(state_dir);
	sys->www_name = xstrdup(APPUSER_WWW);
	if (geteuid() != 0)
		return 0;
	for (i = 0; i < ARRAY_SIZE(tools); i++)
		if (access(tools[i], X_OK) < 0) {
			error_setsys("cannot isolate apps: '%s'", tools[i]);
			appuser_release(sys);
			return -1;
		}
	if (mkdir_p(state_dir, 0700) < 0) {
		appuser_release(sys);
		return -1;
	}
	sys->isolated = 1;
	return 0;
}

void appuser_release(struct appuser_sys *sys)
{
	free(sys->state_dir);
	free(sys->www_name);
	memset(sys, 0, sizeof(*sys));
}

int appuser_init_root(struct appuser_sys *sys, const char *root)
{
	char *dir = xasprintf("%s/users", root);
	int r = appuser_init(sys, dir);

	free(dir);
	return r;
}

int appuser_call(const char *root,
		 int (*fn)(const struct appuser_sys *sys, struct appuser *u),
		 struct appuser *u)
{
	struct appuser_sys sys;
	int r;

	if (appuser_init_root(&sys, root) < 0)
		return -1;
	r = fn(&sys, u);
	appuser_release(&sys);
	return r;
}

static void current_user(struct appuser *u)
{
	struct passwd *pw = getpwuid(geteuid());

	memset(u, 0, sizeof(*u));
	u->uid = geteuid();
	u->gid = getegid();
	if (pw)
		snprintf(u->name, sizeof(u->name), "%s", pw->pw_name);
	else
		snprintf(u->name, sizeof(u->name), "%ld", (long)u->uid);
}

/* groupadd, then useradd, with the next free number of the range. */
static int create(const struct appuser_sys *sys, const char *name_in,
		  const char *gecos_in, struct appuser *u)
{
	char id[32], name[APPUSER_NAME_MAX + 1], gecos[128];
	char *gadd[] = { "/usr/sbin/groupadd", "--system", "--gid", id, name,
			 NULL };
	char *uadd[] = { "/usr/sbin/useradd", "--system", "--uid", id,
			 "--gid", id, "--no-create-home",
			 "--home-dir", "/nonexistent",
			 "--shell", "/usr/sbin/nologin", "--no-log-init",
			 "--comment", gecos, name, NULL };
	char *gdel[] = { "/usr/sbin/groupdel", name, NULL };
	long next;
	int lock, host, r, ret = -1;

	snprintf(name, sizeof(name), "%s", name_in);
	snprintf(gecos, sizeof(gecos), "%s", gecos_in);
	host = lock_host();
	if (host == -1)
		return -1;
	lock = lock_state(sys);
	if (lock < 0) {
		if (host >= 0)
			close(host);
		return -1;
	}
	/* someone else may have made it while we waited */
	r = check_ours(sys, name, gecos, u);
	if (r == ERR_EXISTS && leftover_group(sys, name)) {
		/* our groupadd, then a crash before useradd */
		if (run_tool(gdel) != 0)
			goto out;
		r = check_ours(sys, name, gecos, u);
	}
	if (r != ERR_NOTFOUND) {
		ret = r;
		goto out;
	}
	next = read_next(sys);
	if (next < 0)
		goto out;
	for (;; next++) {
		if (next > (long)sys->last) {
			error_set("no user ids left in %ld..%ld",
				  (long)sys->first, (long)sys->last);
			goto out;
		}
		if (next == 0 || id_taken((uid_t)next))
			continue;
		snprintf(id, sizeof(id), "%ld", next);
		r = run_tool(gadd);
		if (r == E_UID_IN_USE)
			continue;	/* taken since we looked */
		if (r != 0) {
			if (r == E_NAME_IN_USE)
				ret = ERR_EXISTS;
			goto out;
		}
		r = run_tool(uadd);
		if (r == 0)
			break;
		{
			char *msg = xstrdup(error_last());

			run_tool(gdel);
			error_set("%s", msg);
			free(msg);
		}
		if (r == E_UID_IN_USE)
			continue;
		if (r == E_NAME_IN_USE)
			ret = ERR_EXISTS;
		goto out;
	}
	/* the number is spent even if what follows fails */
	if (write_next(sys, next + 1) < 0)
		goto out;
	ret = check_ours(sys, name, gecos, u);
out:
	close(lock);
	if (host >= 0)
		close(host);
	return ret;
}

static int ensure_named(const struct appuser_sys *sys, const char *name,
			const char *gecos, struct appuser *u, int make)
{
	int r;

	memset(u, 0, sizeof(*u));
	if (!sys->isolated) {
		current_user(u);
		return 0;
	}
	r = check_ours(sys, name, gecos, u);
	if (make && (r == ERR_NOTFOUND ||
		     (r == ERR_EXISTS && leftover_group(sys, name))))
		return create(sys, name, gecos, u);
	return r;
}

int appuser_ensure(const struct appuser_sys *sys, const char *app,
		   struct appuser *u)
{
	char name[APPUSER_NAME_MAX + 1], *gecos;
	int r;

	r = name_for(sys, app, name, sizeof(name));
	if (r < 0)
		return r;
	gecos = xasprintf("berth app %s", app);
	r = ensure_named(sys, name, gecos, u, 1);
	free(gecos);
	return r;
}

int appuser_lookup(const struct appuser_sys *sys, const char *app,
		   struct appuser *u)
{
	char name[APPUSER_NAME_MAX + 1], *gecos;
	int r;

	r = name_for(sys, app, name, sizeof(name));
	if (r < 0)
		return r;
	gecos = xasprintf("berth app %s", app);
	r = ensure_named(sys, name, gecos, u, 0);
	free(gecos);
	return r;
}

int appuser_rename(const struct appuser_sys *sys, const char *from,
		   const char *to)
{
	char oname[APPUSER_NAME_MAX + 1], fresh[APPUSER_NAME_MAX + 1];
	char gecos[128], *ogecos = NULL, *key;
	char *umod[] = { "/usr/sbin/usermod", "--comment", gecos, oname,
			 NULL };
	struct appuser u;
	int r, lock = -1, ret = -1;

	if (!sys->isolated)
		return 0;
	if (name_for(sys, from, oname, sizeof(oname)) < 0 ||
	    !app_name_valid(to))
		return error_set("invalid app name");
	ogecos = xasprintf("berth app %s", from);
	lock = lock_state(sys);
	if (lock < 0)
		goto out;
	r = check_ours(sys, oname, ogecos, &u);
	if (r == ERR_NOTFOUND) {
		ret = 0;	/* never ran as root yet: nothing to move */
		goto out;
	}
	if (r < 0) {
		ret = r;
		goto out;
	}
	/* a user the new name had (an app of that name whose state was
	 * lost) is left alone: the note below points the name elsewhere */
	snprintf(gecos, sizeof(gecos), "berth app %s", to);
	/* the old name's next user: hashed with this uid, so never this one
	 * nor one an earlier rename left */
	key = xasprintf("%s/%lu", from, (unsigned long)u.uid);
	snprintf(fresh, sizeof(fresh), "%s%.*s_%08x", APPUSER_PREFIX,
		 HASHED_PREFIX_LEN, from, fnv1a(key));
	free(key);
	if (run_tool(umod) != 0)
		goto out;
	if (write_name(sys, to, oname) < 0 || write_name(sys, from, fresh) < 0) {
		char *msg = xstrdup(error_last());

		char *undo = xasprintf("%s/names/%s", sys->state_dir, to);

		unlink(undo);	/* it may have been written */
		free(undo);
		snprintf(gecos, sizeof(gecos), "berth app %s", from);
		run_tool(umod);
		error_set("%s", msg);
		free(msg);
		goto out;
	}
	ret = 0;
out:
	if (lock >= 0)
		close(lock);
	free(ogecos);
	return ret;
}

int appuser_ensure_www(const struct appuser_sys *sys, struct appuser *u)
{
	return ensure_named(sys, sys->www_name, "berth nginx workers", u, 1);
}

int appuser_ensure_ssh(const struct appuser_sys *sys, struct appuser *u)
{
	return ensure_named(sys, APPUSER_SSH, "berth SSH sessions", u, 1);
}

int appuser_lookup_ssh(const struct appuser_sys *sys, struct appuser *u)
{
	return ensure_named(sys, APPUSER_SSH, "berth SSH sessions", u, 0);
}

int appuser_remove(const struct appuser_sys *sys, const char *app)
{
	char name[APPUSER_NAME_MAX + 1], *gecos = NULL;
	char *udel[] = { "/usr/sbin/userdel", name, NULL };
	char *gdel[] = { "/usr/sbin/groupdel", name, NULL };
	struct appuser u;
	int r, lock = -1, ret = -1;

	r = name_for(sys, app, name, sizeof(name));
	if (r < 0)
		return r;
	if (!sys->isolated) {
		error_set("apps are not isolated: no user to remove");
		return ERR_NOTFOUND;
	}
	lock = lock_state(sys);
	if (lock < 0)
		return -1;
	gecos = xasprintf("berth app %s", app);
	r = check_ours(sys, name, gecos, &u);
	if (r < 0) {
		ret = r;
		goto out;
	}
	r = run_tool(udel);
	if (r != 0) {
		if (r == E_USER_BUSY) {
			error_set("user '%s' still runs processes", name);
			ret = ERR_BUSY;
		}
		goto out;
	}
	/* userdel takes the group along where USERGROUPS_ENAB says so */
	r = run_tool(gdel);
	if (r != 0 && r != E_GROUP_NOTFOUND)
		goto out;
	ret = 0;
out:
	free(gecos);
	if (lock >= 0)
		close(lock);
	return ret;
}
