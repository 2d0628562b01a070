/* export: see export.h. */
#include "export.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "app.h"
#include "applife.h"
#include "backup.h"
#include "bundle.h"
#include "control.h"
#include "appuser.h"
#include "engine.h"
#include "gitsep.h"
#include "privsep.h"
#include "safefs.h"
#include "util.h"
#include "banned.h"

#define EXPORT_FORMAT "berth-export 1"
#define STATE_MAX (1 << 20)


int export_is_command(const char *cmd)
{
	return !strcmp(cmd, "export") || !strcmp(cmd, "import");
}

/* A release number: digits only, no leading zero, not too long. */
static long release_number(const char *s)
{
	if (!s[0] || s[0] == '0' || strlen(s) > 9)
		return -1;
	return parse_long(s, 1L << 30);
}

/* ---- talking to the engine ---- */

struct relay {
	struct backup_io *io;
	int quiet;
};

static int relay_line(void *arg, enum control_kind kind, const char *text)
{
	struct relay *r = arg;

	if (kind != CONTROL_DATA || r->quiet || !r->io->write)
		return 0;
	if (r->io->write(r->io->ctx, text, strlen(text)) < 0 ||
	    r->io->write(r->io->ctx, "\n", 1) < 0)
		return 0;	/* the result still counts */
	return 0;
}

/* One request; 0, or the exit status after io->error. */
static int call_engine(const char *root, int argc, char **argv,
		       struct backup_io *io, int quiet)
{
	struct relay r = { io, quiet };
	char *err = NULL;
	int ret = control_call(root, argc, argv, relay_line, &r, &err);

	if (ret < 0) {
		backup_say_error(io, "the server is not running (cannot reach the engine)");
		ret = 111;
	} else if (ret > 0) {
		backup_say_error(io, "%s", err ? err : "failed");
		ret = 1;
	}
	free(err);
	return ret;
}

/* ---- export ---- */

/* "release N" and the "scale ..." lines of ROOT/apps/NAME/state. */
static int read_state(const char *appdir, long *release, struct buf *scale)
{
	char *path = xasprintf("%s/state", appdir);
	struct buf b = BUF_INIT;
	char *line, *save = NULL;
	int ret = -1;

	*release = 0;
	if (read_file(&b, path, STATE_MAX) < 0)
		goto out;
	for (save = b.data, line = str_token(&save, "\n"); line;
	     line = str_token(&save, "\n")) {
		if (!strncmp(line, "release ", 8))
			*release = parse_long(line + 8, 1L << 30);
		else if (!strncmp(line, "scale ", 6))
			buf_addf(scale, "%s\n", line);
	}
	ret = 0;
out:
	buf_release(&b);
	free(path);
	return ret;
}

static int link_or_copy(const char *from, const char *to, mode_t mode)
{
	if (link(from, to) == 0)
		return 0;
	return copy_file(from, to, mode);
}

/* The export's folder, filled from ROOT/apps/NAME. */
static int stage_export(const char *appdir, const char *name, long live,
			const struct buf *scale, const char *stage)
{
	char *from = NULL, *to = NULL;
	struct buf head = BUF_INIT;
	struct dirent *de;
	DIR *dh = NULL;
	int src = -1, dst = -1, ret = -1;

	from = xasprintf("%s/releases", appdir);
	to = xasprintf("%s/releases", stage);
	if (mkdir(to, 0750) < 0 || !(dh = opendir(from))) {
		error_setsys("cannot read '%s'", from);
		goto out;
	}
	while ((de = readdir(dh))) {
		long n = release_number(de->d_name);
		char *f, *t;

		if (n <= 0)
			continue;
		t = xasprintf("%s/%ld", to, n);
		if (mkdir(t, 0750) < 0) {
			error_setsys("cannot make '%s'", t);
			free(t);
			goto out;
		}
		free(t);
		f = xasprintf("%s/%ld/meta", from, n);
		t = xasprintf("%s/%ld/meta", to, n);
		if (path_exists(f) && copy_file(f, t, 0640) < 0) {
			free(f);
			free(t);
			goto out;
		}
		free(f);
		free(t);
	}
	FREE_AND_NULL(from);
	FREE_AND_NULL(to);
	from = xasprintf("%s/releases/%ld/bundle.tar.gz", appdir, live);
	to = xasprintf("%s/releases/%ld/bundle.tar.gz", stage, live);
	if (link_or_copy(from, to, 0640) < 0)
		goto out;
	FREE_AND_NULL(from);
	FREE_AND_NULL(to);
	from = xasprintf("%s/env", appdir);
	to = xasprintf("%s/env", stage);
	if (path_exists(from) ? copy_file(from, to, 0600) < 0 :
	    write_file_atomic(to, "", 0, 0600) < 0)
		goto out;
	FREE_AND_NULL(from);
	FREE_AND_NULL(to);
	/* The repository is a tree pushes write: copied without following
	 * anything in it (a link refuses the copy). */
	from = xasprintf("%s/repo.git", appdir);
	if (path_exists(from)) {
		src = safefs_open_top(appdir);
		dst = safefs_open_top(stage);
		if (src < 0 || dst < 0 ||
		    safefs_copy_tree(src, "repo.git", dst, "repo.git", NULL) < 0)
			goto out;
	}
	buf_addf(&head, "%s\napp %s\nrelease %ld\n", EXPORT_FORMAT, name, live);
	if (scale->len)
		buf_add(&head, scale->data, scale->len);
	FREE_AND_NULL(to);
	to = xasprintf("%s/berth-export", stage);
	if (write_file_atomic(to, head.data, head.len, 0640) < 0)
		goto out;
	ret = 0;
out:
	if (dh)
		closedir(dh);
	if (src >= 0)
		close(src);
	if (dst >= 0)
		close(dst);
	buf_release(&head);
	free(from);
	free(to);
	return ret;
}

/* Copy the file at path to io (or to FILE, through a temporary name). */
static int send_file(const char *path, const char *file, struct backup_io *io)
{
	char chunk[65536], *tmp = NULL;
	int in = -1, out = -1, ret = -1;
	ssize_t n;

	in = open(path, O_RDONLY | O_CLOEXEC);
	if (in < 0) {
		backup_say_error(io, "cannot open '%s': %s", path, strerror(errno));
		goto out;
	}
	if (file) {
		tmp = xasprintf("%s.part%d", file, (int)getpid());
		out = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
		if (out < 0) {
			backup_say_error(io, "cannot create '%s': %s", file,
				  strerror(errno));
			FREE_AND_NULL(tmp);
			goto out;
		}
	}
	for (;;) {
		n = read(in, chunk, sizeof(chunk));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			backup_say_error(io, "cannot read '%s': %s", path,
				  strerror(errno));
			goto out;
		}
		if (n == 0)
			break;
		if (out >= 0 ? write_all(out, chunk, (size_t)n) < 0 :
		    io->write(io->ctx, chunk, (size_t)n) < 0) {
			backup_say_error(io, "cannot write the export: %s",
				  out >= 0 ? strerror(errno) : error_last());
			goto out;
		}
	}
	if (out >= 0) {
		int fd = out;

		out = -1;
		if (file_commit(fd, tmp, file) < 0) {
			backup_say_error(io, "%s", error_last());
			goto out;
		}
		FREE_AND_NULL(tmp);
	}
	ret = 0;
out:
	if (in >= 0)
		close(in);
	if (out >= 0)
		close(out);
	if (tmp) {
		unlink(tmp);
		free(tmp);
	}
	return ret;
}

static int cmd_export(const char *root, char *name, const char *file,
		      struct backup_io *io)
{
	char *check[] = { "releases", name, NULL };
	char *appdir = NULL, *stage = NULL, *tarball = NULL;
	struct buf scale = BUF_INIT;
	long live = 0;
	int ret;

	if (file && !strcmp(file, "-"))
		file = NULL;
	if (!file && io->local && isatty(1)) {
		backup_say_error(io, "refusing to write an archive to a terminal: give a FILE or redirect stdout");
		return 1;
	}
	ret = call_engine(root, 2, check, io, 1);
	if (ret)
		return ret;
	ret = 1;
	appdir = xasprintf("%s/apps/%s", root, name);
	if (read_state(appdir, &live, &scale) < 0) {
		backup_say_error(io, "%s", error_last());
		goto out;
	}
	if (live <= 0) {
		backup_say_error(io, "'%s' has no live release to export", name);
		goto out;
	}
	stage = xasprintf("%s/tmp/export.XXXXXX", root);
	if (!mkdtemp(stage)) {
		backup_say_error(io, "cannot make a folder in '%s/tmp': %s", root,
			  strerror(errno));
		FREE_AND_NULL(stage);
		goto out;
	}
	tarball = xasprintf("%s.tar.gz", stage);
	if (stage_export(appdir, name, live, &scale, stage) < 0 ||
	    bundle_pack(stage, tarball) < 0) {
		backup_say_error(io, "%s", error_last());
		goto out;
	}
	if (send_file(tarball, file, io) < 0)
		goto out;
	ret = 0;
out:
	if (stage)
		rm_rf(stage);
	if (tarball)
		unlink(tarball);
	buf_release(&scale);
	free(appdir);
	free(stage);
	free(tarball);
	return ret;
}

/* ---- import, client side ---- */

static int spool_input(const char *path, struct backup_io *io)
{
	char chunk[65536];
	ssize_t n;
	int fd, ret = -1;

	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0) {
		backup_say_error(io, "cannot create '%s': %s", path, strerror(errno));
		return -1;
	}
	while ((n = io->read(io->ctx, chunk, sizeof(chunk))) > 0)
		if (write_all(fd, chunk, (size_t)n) < 0) {
			backup_say_error(io, "cannot write '%s': %s", path,
				  strerror(errno));
			goto out;
		}
	if (n < 0) {
		backup_say_error(io, "cannot read the archive: %s", error_last());
		goto out;
	}
	ret = 0;
out:
	close(fd);
	return ret;
}

/* Copy the file at path into the new file dest (0600). */
static int copy_in(const char *path, const char *dest)
{
	char chunk[65536];
	ssize_t n;
	int in, out = -1, ret = -1;

	in = open(path, O_RDONLY | O_CLOEXEC);
	if (in < 0)
		return error_setsys("cannot read '%s'", path);
	out = open(dest, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (out < 0) {
		error_setsys("cannot create '%s'", dest);
		goto out;
	}
	while ((n = read(in, chunk, sizeof(chunk))) > 0)
		if (write_all(out, chunk, (size_t)n) < 0) {
			error_setsys("cannot write '%s'", dest);
			goto out;
		}
	if (n < 0) {
		error_setsys("cannot read '%s'", path);
		goto out;
	}
	ret = 0;
out:
	close(in);
	if (out >= 0)
		close(out);
	return ret;
}

/* A link in the unpacked tree must stay inside it. */
static int link_inside(const struct safefs_entry *e, void *arg)
{
	(void)arg;
	if (S_ISLNK(e->st.st_mode) && bundle_symlink_ok(e->path, e->link) < 0)
		return ERR_INVALID;
	return 0;
}

/* In the jail, as berth-ssh: /in.tar.gz unpacked into /app. */
static int unpack_jailed(void *arg)
{
	(void)arg;
	return bundle_unpack("/in.tar.gz", "/app");
}

/*
 * As root: unpack STAGE/u/in.tar.gz (berth-ssh's) into STAGE/app without
 * parsing it as root: unpack_jailed() unpacks it in a jail in STAGE/u, as
 * berth-ssh (privsep_call_jailed()); then root takes the tree by
 * descriptors: every entry root's (safefs_chown_tree() changes links
 * themselves and refuses devices and hard links), no link leading out of
 * it, and only then moves it to STAGE/app.  0, or -1 with error_last()
 * (the unpacker's own error when it failed, as one line).
 */
static int unpack_unprivileged(const struct appuser *u, const char *stage)
{
	char *top = xasprintf("%s/u", stage);
	int ufd = -1, sfd = -1, ret = -1;

	if (privsep_call_jailed(u, top, unpack_jailed, NULL, "the unpacker",
				"cannot start the unpacker") < 0)
		goto out;
	ufd = safefs_open_top(top);
	sfd = safefs_open_top(stage);
	if (ufd < 0 || sfd < 0)
		goto out;
	if (safefs_chown_tree(ufd, "app", 0, 0) < 0 ||
	    safefs_walk(ufd, "app", link_inside, NULL) < 0)
		goto out;
	if (renameat(ufd, "app", sfd, "app") < 0) {
		error_setsys("cannot move the unpacked export");
		goto out;
	}
	ret = 0;
out:
	if (ufd >= 0)
		close(ufd);
	if (sfd >= 0)
		close(sfd);
	free(top);
	return ret;
}

static int cmd_import(const char *root, char *name, const char *file,
		      struct backup_io *io)
{
	char *exists[] = { "ps", name, NULL };
	char *req[4] = { "import-staged", name, NULL, NULL };
	char *stage = NULL, *tarball = NULL, *dest = NULL, *head = NULL;
	struct buf b = BUF_INIT;
	int ret = 1, fd = -1;

	/* An app of that name: refused before any byte is read. */
	if (control_call(root, 2, exists, NULL, NULL, NULL) == 0) {
		backup_say_error(io, "app '%s' already exists", name);
		return 1;
	}
	stage = xasprintf("%s/tmp/import.XXXXXX", root);
	if (!mkdtemp(stage)) {
		backup_say_error(io, "cannot make a folder in '%s/tmp': %s", root,
			  strerror(errno));
		FREE_AND_NULL(stage);
		goto out;
	}
	if (geteuid() == 0) {
		/* as root, the archive is unpacked by berth-ssh in a jail */
		struct appuser u;
		char *dir = xasprintf("%s/u", stage);

		tarball = xasprintf("%s/in.tar.gz", dir);
		if (privsep_user(root, &u) < 0 ||
		    (mkdir(dir, 0700) < 0 &&
		     error_setsys("cannot make a folder") < 0) ||
		    (chown(dir, u.uid, u.gid) < 0 &&
		     error_setsys("cannot hand a folder over") < 0)) {
			backup_say_error(io, "cannot import: %s", error_last());
			free(dir);
			goto out;
		}
		free(dir);
		if (!strcmp(file, "-")) {
			if (spool_input(tarball, io) < 0)
				goto out;
		} else if (copy_in(file, tarball) < 0) {
			backup_say_error(io, "%s", error_last());
			goto out;
		}
		if (chown(tarball, u.uid, u.gid) < 0 ||
		    unpack_unprivileged(&u, stage) < 0) {
			backup_say_error(io, "not a berth export: %s",
					 error_last());
			goto out;
		}
		dest = xasprintf("%s/app", stage);
	} else if (!strcmp(file, "-")) {
		tarball = xasprintf("%s/in.tar.gz", stage);
		if (spool_input(tarball, io) < 0)
			goto out;
	} else {
		tarball = xstrdup(file);
		if (access(file, R_OK) < 0) {
			backup_say_error(io, "cannot read '%s': %s", file,
				  strerror(errno));
			goto out;
		}
	}
	if (!dest) {
		dest = xasprintf("%s/app", stage);
		if (bundle_unpack(tarball, dest) < 0) {
			backup_say_error(io, "not a berth export: %s",
					 error_last());
			goto out;
		}
	}
	head = xasprintf("%s/berth-export", dest);
	/* a link there is refused, never followed */
	if (safefs_read_in(&b, dest, "berth-export", STATE_MAX) < 0 ||
	    strncmp(b.data, EXPORT_FORMAT "\n", strlen(EXPORT_FORMAT) + 1)) {
		backup_say_error(io, "not a berth export (no '%s' line in berth-export)",
			  EXPORT_FORMAT);
		goto out;
	}
	/* berth-ssh's from the start, not root's until a first transfer */
	fd = safefs_open_top(dest);
	if (fd < 0 || gitsep_repo_give(root, fd, name) < 0) {
		backup_say_error(io, "cannot import the repository: %s",
				 error_last());
		goto out;
	}
	req[2] = dest;
	ret = call_engine(root, 3, req, io, 0);
out:
	if (fd >= 0)
		close(fd);
	if (stage)
		rm_rf(stage);
	buf_release(&b);
	free(stage);
	free(tarball);
	free(dest);
	free(head);
	return ret;
}

int export_command(const char *root, int argc, char **argv,
		   struct backup_io *io)
{
	const char *cmd = argv[0];
	const char *file = argc > 2 ? argv[2] : NULL;

	if (argc < 2 || argc > 3 || (!strcmp(cmd, "import") && argc != 3)) {
		backup_say_error(io, !strcmp(cmd, "export") ?
			  "usage: export APP [FILE|-]" :
			  "usage: import NAME FILE|-");
		return 100;
	}
	if (!app_name_valid(argv[1])) {
		backup_say_error(io, "invalid app name '%s'", argv[1]);
		return 1;
	}
	if (file && strcmp(file, "-") && !io->local) {
		backup_say_error(io, "%s over ssh uses stdin and stdout: use '-'", cmd);
		return 1;
	}
	if (!strcmp(cmd, "export"))
		return cmd_export(root, argv[1], file, io);
	return cmd_import(root, argv[1], file, io);
}

/* ---- import, engine side ---- */

/* Only folders that import made: ROOT/tmp/import.XXXXXX/app. */
static int staged_dir_ok(const struct engine *e, const char *dir)
{
	char *prefix = engine_path(e, "tmp/import.");
	size_t n = strlen(prefix);
	const char *rest = dir + n;
	struct stat st;
	int ok;

	ok = !strncmp(dir, prefix, n) && strlen(rest) == 6 + 4 &&
	     strspn(rest, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789") == 6 &&
	     !strcmp(rest + 6, "/app") && lstat(dir, &st) == 0 &&
	     S_ISDIR(st.st_mode);
	free(prefix);
	return ok;
}

/* env without DATABASE_URL (the old host's), only KEY=VALUE lines. */
static int clean_env(const char *dir)
{
	char *path = xasprintf("%s/env", dir);
	struct buf in = BUF_INIT, out = BUF_INIT;
	char *line, *save = NULL;
	int ret = -1;

	if (path_exists(path) && read_file(&in, path, STATE_MAX) < 0)
		goto out;
	if (in.len)
		for (save = in.data, line = str_token(&save, "\n"); line;
		     line = str_token(&save, "\n")) {
			if (!strchr(line, '=') || line[0] == '=' ||
			    !strncmp(line, "DATABASE_URL=", 13))
				continue;
			buf_addf(&out, "%s\n", line);
		}
	ret = write_file_atomic(path, out.data ? out.data : "", out.len, 0600);
out:
	buf_release(&in);
	buf_release(&out);
	free(path);
	return ret;
}

int export_parse_header(const char *text, size_t len, long *release,
			struct buf *scale)
{
	char *copy = xstrndup(text, len);
	char *line, *save = NULL;
	int first = 1, ret = ERR_INVALID;

	*release = 0;
	if (strlen(copy) != len) {
		error_set("berth-export holds a NUL byte");
		goto out;
	}
	for (save = copy, line = str_token(&save, "\n"); line;
	     line = str_token(&save, "\n")) {
		if (first) {
			if (strcmp(line, EXPORT_FORMAT)) {
				error_set("not a berth export (no '%s' line)",
					  EXPORT_FORMAT);
				goto out;
			}
			first = 0;
		} else if (!strncmp(line, "release ", 8)) {
			*release = release_number(line + 8);
		} else if (!strncmp(line, "scale ", 6) && line[6] &&
			   strspn(line + 6, "abcdefghijklmnopqrstuvwxyz"
				  "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-=") ==
			   strlen(line + 6)) {
			buf_addf(scale, "%s\n", line);
		}
	}
	if (first) {
		error_set("not a berth export (no '%s' line)", EXPORT_FORMAT);
		goto out;
	}
	if (*release <= 0) {
		error_set("the export names no live release");
		goto out;
	}
	ret = 0;
out:
	free(copy);
	return ret;
}

/* ROOT/apps/NAME/state for the imported app: the live release, the
 * highest number handed out, the scale. */
static int write_state(const char *dir, const struct buf *head)
{
	char *rel = xasprintf("%s/releases", dir);
	char *path = xasprintf("%s/state", dir);
	char *bundle = NULL;
	struct buf st = BUF_INIT, scale = BUF_INIT;
	struct dirent *de;
	struct stat sb;
	long live = 0, next = 0;
	DIR *dh = NULL;
	int ret = -1;

	if (export_parse_header(head->data, head->len, &live, &scale) < 0)
		goto out;
	bundle = xasprintf("%s/%ld/bundle.tar.gz", rel, live);
	if (!(dh = opendir(rel))) {
		error_set("the export holds no releases");
		goto out;
	}
	while ((de = readdir(dh))) {
		long n = release_number(de->d_name);

		if (n > next)
			next = n;
	}
	if (lstat(bundle, &sb) < 0 || !S_ISREG(sb.st_mode)) {
		error_set("the export holds no bundle for release %ld", live);
		goto out;
	}
	buf_addf(&st, "release %ld\nnext %ld\nstopped 0\n", live,
		 next > live ? next : live);
	if (scale.len)
		buf_add(&st, scale.data, scale.len);
	ret = write_file_atomic(path, st.data, st.len, 0640);
out:
	if (dh)
		closedir(dh);
	buf_release(&st);
	buf_release(&scale);
	free(bundle);
	free(rel);
	free(path);
	return ret;
}

void export_cmd_import_staged(struct engine *e, struct client *c, int argc,
			      char **argv)
{
	const char *name = argv[1], *dir = argv[2];
	char *appdir = NULL, *head = NULL;
	struct buf b = BUF_INIT;

	if (!app_name_valid(name)) {
		client_error(c, "invalid app name '%s'", name);
		goto out;
	}
	if (!staged_dir_ok(e, dir)) {
		client_error(c, "import-staged takes only folders that import made");
		goto out;
	}
	appdir = engine_path(e, "apps/%s", name);
	if (app_find(e, name) || path_exists(appdir)) {
		client_error(c, "app '%s' already exists", name);
		goto out;
	}
	head = xasprintf("%s/berth-export", dir);
	if (read_file(&b, head, STATE_MAX) < 0 ||
	    write_state(dir, &b) < 0 || clean_env(dir) < 0) {
		client_error(c, "%s", error_last());
		goto out;
	}
	unlink(head);
	if (chmod(dir, 0750) < 0 || rename(dir, appdir) < 0) {
		client_error(c, "cannot move the import to '%s': %s", appdir,
			     strerror(errno));
		goto out;
	}
	client_data(c, "-----> Imported %s", name);
	app_adopt(e, name, c);
out:
	buf_release(&b);
	free(appdir);
	free(head);
}
