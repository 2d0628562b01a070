/* sandbox: see sandbox.h. */
#include "sandbox.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <grp.h>
#include <sched.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util.h"
#include "banned.h"

static const char *app_path(const struct sandbox *sb)
{
	return sb->app_path ? sb->app_path : SANDBOX_APP_PATH;
}

static int is_dir(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

int sandbox_prepare(const struct sandbox *sb)
{
	const char *app = app_path(sb);
	size_t i;

	if (sb->uid == 0 || sb->gid == 0)
		return error_set("refusing to run an app as root");
	if (!sb->release || sb->release[0] != '/' || !is_dir(sb->release))
		return error_set("release folder '%s' is not there",
				 sb->release ? sb->release : "");
	if (app[0] != '/')
		return error_set("'%s' is not an absolute path", app);
	if (sb->n_hide > SANDBOX_HIDE_MAX)
		return error_set("too many folders to hide");
	for (i = 0; i < sb->n_hide; i++)
		if (!sb->hide[i] || sb->hide[i][0] != '/' ||
		    !is_dir(sb->hide[i]))
			return error_set("folder to hide '%s' is not there",
					 sb->hide[i] ? sb->hide[i] : "");
	if (!is_dir(app)) {
		if (mkdir(app, 0755) < 0 && errno != EEXIST)
			return error_setsys("cannot make '%s'", app);
		if (!is_dir(app))
			return error_set("'%s' is not a folder", app);
	}
	return 0;
}

/* An empty tmpfs over path; mode as "mode=000". */
static int cover(const char *path, unsigned long flags, const char *opts)
{
	return mount("tmpfs", path, "tmpfs", flags, opts);
}

/* Is 'path' strictly beneath the folder 'dir'? */
static int beneath(const char *path, const char *dir)
{
	size_t n = strlen(dir);

	return !strncmp(path, dir, n) && path[n] == '/' && path[n + 1];
}

/* "/proc/self/fd/N" into buf, without allocating (async-signal-safe). */
static void fd_path(char *buf, size_t len, int fd)
{
	static const char pre[] = "/proc/self/fd/";
	char digits[16];
	size_t n = 0, i;

	do {
		digits[n++] = (char)('0' + fd % 10);
		fd /= 10;
	} while (fd && n < sizeof(digits));
	if (sizeof(pre) + n > len) {
		buf[0] = '\0';
		return;
	}
	memcpy(buf, pre, sizeof(pre) - 1);
	for (i = 0; i < n; i++)
		buf[sizeof(pre) - 1 + i] = digits[n - 1 - i];
	buf[sizeof(pre) - 1 + n] = '\0';
}

/* The folders of 'path' below the cover 'top', made in the cover. */
static int make_skeleton(const char *top, const char *path)
{
	char buf[PATH_MAX];
	size_t n = strlen(path), i;

	if (n >= sizeof(buf))
		return -1;
	memcpy(buf, path, n + 1);
	for (i = strlen(top) + 1; i <= n; i++) {
		if (buf[i] != '/' && buf[i] != '\0')
			continue;
		buf[i] = '\0';
		if (mkdir(buf, 0711) < 0 && errno != EEXIST)
			return -1;
		buf[i] = path[i];
	}
	return 0;
}

/* Bind the 'show' folders beneath the fresh cover 'top' back at their
 * paths (fds[]: open on them, -1 when missing). */
static int show_beneath(const struct sandbox *sb, const char *top,
			const int *fds)
{
	char src[64];
	size_t i;

	for (i = 0; i < sb->n_show; i++) {
		if (fds[i] < 0 || !beneath(sb->show[i], top))
			continue;
		unsigned long flags = MS_REMOUNT | MS_BIND | MS_NOSUID |
				      MS_NODEV;

		if (!(sb->show_flags[i] & SANDBOX_SHOW_EXEC))
			flags |= MS_NOEXEC;
		if (sb->show_flags[i] & SANDBOX_SHOW_READONLY)
			flags |= MS_RDONLY;
		fd_path(src, sizeof(src), fds[i]);
		if (make_skeleton(top, sb->show[i]) < 0 ||
		    mount(src, sb->show[i], NULL, MS_BIND, NULL) < 0 ||
		    mount(NULL, sb->show[i], NULL, flags, NULL) < 0)
			return -1;
	}
	return 0;
}

/* Cover 'top', showing again the 'show' folders beneath it (open as
 * fds[], -1 when missing). */
static const char *cover_showing(const struct sandbox *sb, const char *top,
				 const int *fds)
{
	unsigned long flags = MS_NOSUID | MS_NODEV | MS_NOEXEC;
	size_t i, shown = 0;

	for (i = 0; i < sb->n_show; i++)
		if (fds[i] >= 0 && beneath(sb->show[i], top))
			shown++;
	if (!shown)
		return cover(top, flags | MS_RDONLY, "size=4k,mode=000") < 0 ?
			"hiding a folder" : NULL;
	if (cover(top, flags, "size=64k,mode=0711") < 0)
		return "hiding a folder";
	if (show_beneath(sb, top, fds) < 0)
		return "showing a folder again";
	if (mount("tmpfs", top, "tmpfs", MS_REMOUNT | MS_RDONLY | flags,
		  "size=64k,mode=0711") < 0)
		return "hiding a folder";
	return NULL;
}

/* Steps 1 to 5 (sandbox.h). */
static const char *enter_view(const struct sandbox *sb)
{
	const char *app = app_path(sb);
	unsigned long bind_flags = MS_NOSUID | MS_NODEV;
	int show_fd[SANDBOX_SHOW_MAX];
	const char *failed;
	size_t i;

	if (unshare(CLONE_NEWNS) < 0)
		return "unshare";
	if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
		return "making mounts private";
	if (mount(sb->release, app, NULL, MS_BIND | MS_REC, NULL) < 0)
		return "binding the release";
	if (sb->flags & SANDBOX_APP_READONLY)
		bind_flags |= MS_RDONLY;
	if (mount(NULL, app, NULL, MS_REMOUNT | MS_BIND | bind_flags,
		  NULL) < 0)
		return "remounting the release";
	/* held open: once their parent is covered no path reaches them */
	for (i = 0; i < SANDBOX_SHOW_MAX; i++) {
		show_fd[i] = -1;
		if (i >= sb->n_show)
			continue;
		show_fd[i] = open(sb->show[i], O_PATH | O_DIRECTORY |
				  O_NOFOLLOW | O_CLOEXEC);
		if (show_fd[i] < 0 && errno != ENOENT)
			return "opening a folder to show";
	}
	failed = NULL;
	for (i = 0; !failed && i < sb->n_hide && i < SANDBOX_HIDE_MAX; i++)
		failed = cover_showing(sb, sb->hide[i], show_fd);
	if (sb->flags & SANDBOX_PRIVATE_TMP) {
		static const char *const tmps[] = { "/tmp", "/var/tmp",
						    "/dev/shm" };

		for (i = 0; i < ARRAY_SIZE(tmps); i++) {
			struct stat st;

			if (stat(tmps[i], &st) < 0 || !S_ISDIR(st.st_mode))
				continue;
			if (!failed && cover(tmps[i], MS_NOSUID | MS_NODEV,
					     "mode=1777") < 0)
				failed = "private /tmp";
			/* a state folder under /tmp (tests) keeps what
			 * it shows */
			if (!failed && show_beneath(sb, tmps[i], show_fd) < 0)
				failed = "showing a folder again";
		}
	}
	for (i = 0; i < SANDBOX_SHOW_MAX; i++)
		if (show_fd[i] >= 0)
			close(show_fd[i]);
	if (failed)
		return failed;
	if ((sb->flags & SANDBOX_HIDE_PIDS) &&
	    mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC,
		  "hidepid=2") < 0)
		return "private /proc";
	if (chdir(sb->workdir ? sb->workdir : app) < 0)
		return "chdir";
	return NULL;
}

const char *sandbox_enter_view(const struct sandbox *sb)
{
	const char *failed = enter_view(sb);

	if (failed)
		return failed;
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
		return "no_new_privs";
	return NULL;
}

const char *sandbox_enter(const struct sandbox *sb)
{
	const char *failed;

	if (sb->uid == 0 || sb->gid == 0) {
		errno = EPERM;
		return "refusing uid or gid 0";
	}
	failed = enter_view(sb);
	if (failed)
		return failed;
	if (setgroups(0, NULL) < 0)
		return "setgroups";
	if (setresgid(sb->gid, sb->gid, sb->gid) < 0)
		return "setresgid";
	if (setresuid(sb->uid, sb->uid, sb->uid) < 0)
		return "setresuid";
	/* a kernel that ignored us must not leave root behind */
	if (geteuid() == 0 || getuid() == 0 || getegid() == 0) {
		errno = EPERM;
		return "dropping root";
	}
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
		return "no_new_privs";
	return NULL;
}

const char *sandbox_child_setup(void *sb)
{
	return sandbox_enter(sb);
}
