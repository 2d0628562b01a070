/* gitsep: see gitsep.h. */
#include "gitsep.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "appuser.h"
#include "config.h"
#include "gitserve.h"
#include "isolate.h"
#include "log.h"
#include "privsep.h"
#include "receive.h"
#include "safefs.h"
#include "spawn.h"
#include "util.h"
#include "banned.h"

#define REPO_MODE 02750	/* berth-ssh writes, the app's group reads */

static char msg[PRIVSEP_MSG_MAX + 1];

/* ---- the build request --------------------------------------------- */

static int is_hex40(const char *p)
{
	size_t i;

	for (i = 0; i < 40; i++)
		if (!((p[i] >= '0' && p[i] <= '9') ||
		      (p[i] >= 'a' && p[i] <= 'f')))
			return 0;
	return 1;
}

/* A ref name as git allows it (git check-ref-format), under refs/. */
static int ref_ok(const char *r, size_t len)
{
	size_t i;

	if (len <= 5 || strncmp(r, "refs/", 5) || r[len - 1] == '/' ||
	    r[len - 1] == '.' ||
	    (len >= 5 && !strcmp(r + len - 5, ".lock")))
		return 0;
	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)r[i];

		if (c <= ' ' || c == 0x7f || strchr("~^:?*[\\", c))
			return 0;
		if (i + 1 < len && ((c == '.' && r[i + 1] == '.') ||
				    (c == '/' && r[i + 1] == '/') ||
				    (c == '@' && r[i + 1] == '{') ||
				    (c == '/' && r[i + 1] == '.')))
			return 0;
	}
	return 1;
}

int gitsep_parse_deploy(const char *m, size_t len, struct gitsep_deploy *out)
{
	size_t rl;

	/* NEW SP OLD SP CLEAN SP REF */
	if (len != strlen(m) || len < 84 + 6 || !is_hex40(m) || m[40] != ' ' ||
	    !is_hex40(m + 41) || m[81] != ' ' ||
	    (m[82] != '0' && m[82] != '1') || m[83] != ' ' ||
	    !strncmp(m, "0000000000000000000000000000000000000000", 40))
		goto bad;
	rl = len - 84;
	if (rl > GITSEP_REF_MAX || !ref_ok(m + 84, rl))
		goto bad;
	memcpy(out->commit, m, 40);
	out->commit[40] = '\0';
	memcpy(out->old, m + 41, 40);
	out->old[40] = '\0';
	out->clean_cache = m[82] == '1';
	memcpy(out->ref, m + 84, rl + 1);
	return 0;
bad:
	error_set("malformed build request from the git process");
	return ERR_INVALID;
}

/* ---- the child: berth-ssh ------------------------------------------- */

/* receive.h's builder in the child: the monitor builds. */
static int ask_monitor_build(void *ctx, const char *ref, const char *old,
			     const char *commit, int clean_cache,
			     const struct receive_build_out *out,
			     char **reason)
{
	int fd = *(const int *)ctx;
	char type;
	size_t len;
	char *q;
	int r;

	*reason = NULL;
	q = xasprintf("%s %s %c %s", commit, old, clean_cache ? '1' : '0', ref);
	r = privsep_send(fd, 'D', q, strlen(q), 0);
	free(q);
	if (r < 0)
		return -1;
	for (;;) {
		if (privsep_recv(fd, &type, msg, &len, -1) <= 0)
			return error_set("the session's root half is gone");
		if (type == 'l')
			out->line(out->arg, msg, len);
		else if (type == 't')
			out->tick(out->arg);
		else if (type == 'R')
			break;
	}
	if (!strcmp(msg, "0"))
		return 0;
	if (!strncmp(msg, "1 ", 2)) {
		*reason = xstrdup(msg + 2);
		return 1;
	}
	return error_set("%s", !strncmp(msg, "-1 ", 3) ? msg + 3 :
			 "bad answer from the session's root half");
}

static int refuse_link(const struct safefs_entry *e, void *arg)
{
	const char *top = arg;

	if (!S_ISLNK(e->st.st_mode))
		return 0;
	error_set("the repository holds a symbolic link, '%s/%s': refused",
		  top, e->path);
	return ERR_INVALID;
}

/*
 * Links where git looks up refs and packs by name: libgit2 would follow
 * them (as this user, who reads nothing of root's or another app's), and
 * a link in refs/ hides every loose ref.  Said once, clearly, instead.
 */
static int repo_links_check(const struct config *cfg, const char *app)
{
	static const char *const dirs[] = { "refs", "objects/pack",
					    "objects/info" };
	char *path;
	size_t i;
	int top, r = 0;

	if (!app_name_valid(app))
		return 0;	/* the service refuses it */
	path = gitsvc_repo_path(cfg, app);
	top = safefs_open_top(path);
	free(path);
	if (top < 0)
		return 0;	/* none yet: the service says so */
	for (i = 0; i < ARRAY_SIZE(dirs) && r == 0; i++) {
		struct stat st;

		if (fstatat(top, dirs[i], &st, AT_SYMLINK_NOFOLLOW) < 0)
			continue;
		r = S_ISLNK(st.st_mode) ?
			error_set("the repository holds a symbolic link, "
				  "'%s': refused", dirs[i]) :
			safefs_walk(top, dirs[i], refuse_link,
				    (void *)(uintptr_t)dirs[i]);
	}
	close(top);
	return r < 0 ? -1 : 0;
}

int gitsep_check_reach(const char *root)
{
	char *path = realpath(root, NULL), *slash;
	struct stat st;
	int ret = 0;

	if (!path)
		return error_setsys("cannot resolve the state folder");
	/* the state folder itself is root's own business: only its parents */
	for (slash = strrchr(path, '/'); slash; slash = strrchr(path, '/')) {
		*slash = '\0';
		if (stat(*path ? path : "/", &st) < 0) {
			ret = error_setsys("cannot look at '%s'",
					   *path ? path : "/");
			break;
		}
		if (!(st.st_mode & S_IXOTH)) {
			ret = error_set("'%s' is mode %04o: berth-ssh cannot "
					"reach the repositories below it "
					"(give it o+x: chmod o+x '%s')",
					path, (unsigned)(st.st_mode & 07777),
					path);
			break;
		}
		if (!*path)
			break;
	}
	free(path);
	return ret;
}

/* In the child, after the drop: the state folder reached, or one line
 * for the client that names no path (the log has it). */
static int repo_reachable(const struct config *cfg)
{
	char *apps = xasprintf("%s/apps", cfg->root);
	int ok = access(apps, X_OK) == 0 || errno != EACCES;

	if (!ok)
		log_warnx("berth-ssh cannot reach '%s': every folder above the "
			  "state folder must be searchable by others (o+x)",
			  apps);
	free(apps);
	return ok ? 0 : error_set("the server cannot reach its repositories "
				  "(its state folder is closed to berth-ssh; "
				  "the server's log says where)");
}

/* Never returns: the transfer, then its status to the monitor. */
static void __attribute__((noreturn))
child_main(const struct config *cfg, enum gitsvc_service svc,
	   const char *app, const char *pusher, int version,
	   struct gitsvc_io *io, const struct appuser *who, pid_t monitor,
	   int fd)
{
	char *st;
	int ret;

	error_clear();
	if (privsep_drop(who, monitor) < 0) {
		log_warnx("%s", error_last());
		ret = -1;
	} else {
		/* nothing here for others, whatever the folder's mode */
		umask(027);
		receive_set_builder(ask_monitor_build, &fd);
		ret = repo_reachable(cfg) < 0 || repo_links_check(cfg, app) < 0 ?
			-1 : gitserve_run(cfg, svc, app, pusher, version, io);
		if (ret < 0)
			log_warnx("'%s': %s", app, error_last());
	}
	st = ret < 0 ? xasprintf("-1 %s", error_last()) :
		xasprintf("%d", ret);
	privsep_send(fd, 'x', st, strlen(st) > PRIVSEP_MSG_MAX ?
		     PRIVSEP_MSG_MAX : strlen(st), 0);
	free(st);
	_exit(0);
}

/* ---- the monitor: root ---------------------------------------------- */

/*
 * ROOT/apps/APP/repo.git as the child needs it, by descriptors beneath
 * the app's folder (appfd), never following a link: berth-ssh's with
 * gid, REPO_MODE.  A repository of an older berth (root's) is handed over
 * whole (logged unless quiet); with 'create', a missing one is made as an
 * empty folder (the child makes the repository in it) and *made set.  0,
 * ERR_NOTFOUND (none, and none to make), or -1.
 */
static int repo_prepare(int appfd, const char *app, int create,
			const struct appuser *ssh, gid_t gid, int *made,
			int quiet)
{
	struct stat st;
	int fd = -1, ret = -1;

	*made = 0;
	if (fstatat(appfd, "repo.git", &st, AT_SYMLINK_NOFOLLOW) < 0) {
		if (errno != ENOENT)
			return error_setsys("cannot look at the repository");
		if (!create)
			return ERR_NOTFOUND;
		if (mkdirat(appfd, "repo.git", 0700) == 0)
			*made = 1;
		else if (errno != EEXIST)
			return error_setsys("cannot create the repository");
		if (fstatat(appfd, "repo.git", &st, AT_SYMLINK_NOFOLLOW) < 0)
			return error_setsys("cannot look at the repository");
	}
	if (!S_ISDIR(st.st_mode))
		return error_set("the repository of '%s' is not a folder", app);
	if (st.st_uid == ssh->uid && st.st_gid == gid &&
	    (st.st_mode & 07777) == REPO_MODE)
		return 0;
	if (!*made && !quiet)
		log_info("'%s': handing the repository to %s", app, ssh->name);
	if (safefs_chown_tree(appfd, "repo.git", ssh->uid, gid) < 0)
		goto out;
	fd = safefs_openat(appfd, "repo.git", O_RDONLY | O_DIRECTORY, 0);
	if (fd < 0)
		goto out;
	/* the mode last: a hand-over cut short is done again next time */
	if (fchmod(fd, REPO_MODE) < 0) {
		error_setsys("cannot close the repository");
		goto out;
	}
	ret = 0;
out:
	if (fd >= 0)
		close(fd);
	return ret;
}

/* Is the folder fd empty?  (It is read through a duplicate.) */
static int dir_empty(int fd)
{
	struct dirent *e;
	DIR *d;
	int dup_fd = fcntl(fd, F_DUPFD_CLOEXEC, 0), empty = 1;

	if (dup_fd < 0)
		return 0;
	d = fdopendir(dup_fd);
	if (!d) {
		close(dup_fd);
		return 0;
	}
	while ((e = readdir(d)))
		if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
			empty = 0;
	closedir(d);
	return empty;
}

/*
 * A first push that left nothing (a bad pack, no ref moved): the folder
 * this session made goes, and the app's folder and user with it if the
 * push made them.  A concurrent first push that filled it keeps it.
 */
static void repo_forget(const struct config *cfg, int appsfd, int appfd,
			const char *app, int app_made)
{
	struct appuser_sys sys;
	int fd;

	fd = safefs_openat(appfd, "repo.git", O_RDONLY | O_DIRECTORY, 0);
	if (fd < 0)
		return;
	if (flock(fd, LOCK_EX) < 0 || !dir_empty(fd) ||
	    unlinkat(appfd, "repo.git", AT_REMOVEDIR) < 0) {
		close(fd);
		return;
	}
	close(fd);
	if (!app_made || appsfd < 0 || unlinkat(appsfd, app, AT_REMOVEDIR) < 0)
		return;
	if (appuser_init_root(&sys, cfg->root) == 0) {
		if (appuser_remove(&sys, app) < 0)
			log_warnx("'%s': %s", app, error_last());
		appuser_release(&sys);
	}
}

struct fwd {
	int fd;
};

static void fwd_line(void *arg, const char *line, size_t len)
{
	struct fwd *f = arg;

	privsep_send(f->fd, 'l', line,
		     len > PRIVSEP_MSG_MAX ? PRIVSEP_MSG_MAX : len, 0);
}

static void fwd_tick(void *arg)
{
	struct fwd *f = arg;

	privsep_send(f->fd, 't', "", 0, 0);
}

/* 'D': build the commit the child named, as root (receive_build()). */
static void serve_build(const struct config *cfg, const char *app,
			const char *pusher, const struct gitsep_deploy *d,
			int fd)
{
	struct fwd f = { fd };
	struct receive_build_out out = { fwd_line, fwd_tick, &f };
	char *reason = NULL, *reply;
	int r;

	log_debug("'%s': %s builds %.7s (%s)", app, pusher, d->commit, d->ref);
	error_clear();
	r = receive_build(cfg, app, pusher, d->commit, d->clean_cache, &out,
			  &reason);
	if (r == 0)
		reply = xstrdup("0");
	else if (r > 0)
		reply = xasprintf("1 %s", reason ? reason : "build failed");
	else
		reply = xasprintf("-1 %s", error_last()[0] ? error_last() :
				  "the build could not run");
	privsep_send(fd, 'R', reply, strlen(reply) > PRIVSEP_MSG_MAX ?
		     PRIVSEP_MSG_MAX : strlen(reply), 0);
	free(reply);
	free(reason);
}

/* berth-ssh, made if the engine has not made it yet. */
static int ssh_user_ensure(const char *root, struct appuser *ssh)
{
	return appuser_call(root, appuser_ensure_ssh, ssh) < 0 ? -1 : 0;
}

int gitsep_repo_give(const char *root, int dirfd, const char *app)
{
	struct appuser_sys sys;
	struct appuser ssh, au;
	struct stat st;
	int r, made;

	if (geteuid() != 0)
		return 0;
	if (fstatat(dirfd, "repo.git", &st, AT_SYMLINK_NOFOLLOW) < 0)
		return errno == ENOENT ? 0 :
			error_setsys("cannot look at the repository");
	if (ssh_user_ensure(root, &ssh) < 0 ||
	    appuser_init_root(&sys, root) < 0)
		return -1;
	r = appuser_ensure(&sys, app, &au);
	if (r < 0)
		r = appuser_lookup(&sys, app, &au);
	appuser_release(&sys);
	if (r < 0)
		return -1;
	if (!au.isolated)
		return 0;
	return repo_prepare(dirfd, app, 0, &ssh, au.gid, &made, 1) < 0 ?
		-1 : 0;
}

int gitsep_run_local(const struct config *cfg, enum gitsvc_service svc,
		     const char *app, const char *pusher, int version,
		     struct gitsvc_io *io)
{
	struct appuser ssh;

	if (ssh_user_ensure(cfg->root, &ssh) < 0 ||
	    gitsep_check_reach(cfg->root) < 0)
		return -1;
	return gitsep_run(cfg, svc, app, pusher, version, io);
}

int gitsep_run(const struct config *cfg, enum gitsvc_service svc,
	       const char *app, const char *pusher, int version,
	       struct gitsvc_io *io)
{
	struct appuser ssh, au, who;
	struct gitsep_deploy d;
	char *apps = NULL, *appdir = NULL, *err = NULL, type;
	int sv[2] = { -1, -1 }, appsfd = -1, appfd = -1, app_made = 0;
	int made = 0, built = 0, done = 0, status = 1, r, ret = -1, wst = 0;
	int push = svc == GITSVC_RECEIVE_PACK;
	pid_t pid = -1, monitor = getpid();
	size_t len;

	if (privsep_user(cfg->root, &ssh) < 0)
		return -1;
	who = ssh;
	apps = xasprintf("%s/apps", cfg->root);
	/* an invalid name is the child's to refuse: nothing is made for it */
	appdir = app_name_valid(app) ?
		xasprintf("%s/apps/%s", cfg->root, app) : NULL;
	if (appdir && push && !path_exists(appdir)) {
		if (mkdir_p(appdir, 0755) < 0)
			goto out;
		app_made = 1;
	}
	if (appdir && path_exists(appdir)) {
		/* the app's user, and its folder closed to others */
		if (isolate_build_user(cfg->root, app, &au) < 0)
			goto out;
		appsfd = safefs_open_top(apps);
		appfd = appsfd < 0 ? -1 : safefs_openat(appsfd, app,
					O_RDONLY | O_DIRECTORY, 0);
		if (appfd < 0)
			goto out;
		r = repo_prepare(appfd, app, push, &ssh, au.gid, &made, 0);
		if (r < 0 && r != ERR_NOTFOUND)
			goto out;
		/* the app's group: through its folder (0710) to repo.git */
		who.gid = au.gid;
	}
	if (privsep_pair(sv) < 0)
		goto out;
	pid = fork();
	if (pid < 0) {
		error_setsys("cannot fork");
		goto out;
	}
	if (pid == 0) {
		close(sv[0]);
		if (appfd >= 0)
			close(appfd);
		if (appsfd >= 0)
			close(appsfd);
		child_main(cfg, svc, app, pusher, version, io, &who, monitor,
			   sv[1]);
	}
	close(sv[1]);
	sv[1] = -1;
	/* until the child's status: a background child it leaves (a
	 * repack) may hold its end open longer */
	while (!done) {
		if (privsep_recv(sv[0], &type, msg, &len, -1) <= 0)
			break;
		if (type == 'x') {
			char *sp = strchr(msg, ' ');

			status = privsep_number(sp ? (*sp = '\0', msg) : msg);
			if (sp)
				err = xstrdup(sp + 1);
			done = 1;
		} else if (type == 'D' && push && !built &&
			   gitsep_parse_deploy(msg, len, &d) == 0) {
			built = 1;
			serve_build(cfg, app, pusher, &d, sv[0]);
		} else {
			log_warnx("'%s': the git process sent a message out "
				  "of turn: closing", app);
			kill(pid, SIGKILL);
			break;
		}
	}
	while (waitpid(pid, &wst, 0) < 0 && errno == EINTR)
		;
	if (!done) {
		char desc[64];

		log_warnx("'%s': the git process %s without a status", app,
			  spawn_describe_status(wst, desc, sizeof(desc)));
		error_set("the git transfer ended unexpectedly");
		ret = -1;
	} else if (status == -1) {
		error_set("%s", err ? err : "the git process failed");
		ret = -1;
	} else {
		ret = status < 0 ? 1 : status;
	}
out:
	if (made && appfd >= 0)
		repo_forget(cfg, appsfd, appfd, app, app_made);
	else if (app_made && pid < 0 && appsfd >= 0)
		unlinkat(appsfd, app, AT_REMOVEDIR);
	if (sv[0] >= 0)
		close(sv[0]);
	if (sv[1] >= 0)
		close(sv[1]);
	if (appfd >= 0)
		close(appfd);
	if (appsfd >= 0)
		close(appsfd);
	free(err);
	free(apps);
	free(appdir);
	return ret;
}
