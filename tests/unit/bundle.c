/* bundle: unpack refuses every way out of the destination; pack and
 * unpack round-trip.  Tarballs are made here with libarchive. */
#include <archive.h>
#include <archive_entry.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "bundle.h"
#include "util.h"
#include "tap.h"
#include "banned.h"

enum { T_FILE, T_DIR, T_SYMLINK, T_HARDLINK, T_FIFO, T_CHR };

struct ent {
	int type;
	const char *name;
	const char *data;	/* file content, or link target */
	int mode;
};

static char top[256];		/* scratch: top/tars, top/out/PARENT/dest */

static void make_tar(const char *path, const struct ent *ents, size_t n)
{
	struct archive *a = archive_write_new();
	size_t i;

	archive_write_add_filter_gzip(a);
	archive_write_set_format_pax_restricted(a);
	if (archive_write_open_filename(a, path) != ARCHIVE_OK)
		abort();
	for (i = 0; i < n; i++) {
		struct archive_entry *e = archive_entry_new();
		const struct ent *t = &ents[i];

		archive_entry_set_pathname(e, t->name);
		archive_entry_set_perm(e, t->mode ? t->mode : 0644);
		switch (t->type) {
		case T_FILE:
			archive_entry_set_filetype(e, AE_IFREG);
			archive_entry_set_size(e, strlen(t->data));
			break;
		case T_DIR:
			archive_entry_set_filetype(e, AE_IFDIR);
			archive_entry_set_perm(e, t->mode ? t->mode : 0755);
			break;
		case T_SYMLINK:
			archive_entry_set_filetype(e, AE_IFLNK);
			archive_entry_set_symlink(e, t->data);
			break;
		case T_HARDLINK:
			archive_entry_set_filetype(e, AE_IFREG);
			archive_entry_set_hardlink(e, t->data);
			archive_entry_set_size(e, 0);
			break;
		case T_FIFO:
			archive_entry_set_filetype(e, AE_IFIFO);
			break;
		case T_CHR:
			archive_entry_set_filetype(e, AE_IFCHR);
			archive_entry_set_rdev(e, makedev(1, 3));
			break;
		}
		if (archive_write_header(a, e) != ARCHIVE_OK)
			abort();
		if (t->type == T_FILE)
			archive_write_data(a, t->data, strlen(t->data));
		archive_entry_free(e);
	}
	archive_write_close(a);
	archive_write_free(a);
}

/* Number of entries under dir (recursive, not following links). */
static int count_tree(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	int n = 0;

	if (!d)
		return 0;
	while ((de = readdir(d))) {
		char path[1024];
		struct stat st;

		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		n++;
		snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		if (!lstat(path, &st) && S_ISDIR(st.st_mode))
			n += count_tree(path);
	}
	closedir(d);
	return n;
}

static char *slurp(const char *path)
{
	struct buf b = BUF_INIT;

	if (read_file(&b, path, 1 << 20) < 0)
		return NULL;
	return buf_detach(&b);
}

/*
 * Unpack a tarball made of ents into top/out/p/dest and expect a refusal
 * whose message contains 'want'; then nothing may exist under top/out but
 * the empty parent p (which holds dest), and nothing next to top.
 */
static void refused(const char *what, const struct ent *ents, size_t n,
		    const char *want)
{
	char tar[300], parent[300], dest[320], outdir[300];
	int r;

	snprintf(tar, sizeof(tar), "%s/tars/t.tar.gz", top);
	snprintf(outdir, sizeof(outdir), "%s/out", top);
	snprintf(parent, sizeof(parent), "%s/out/p", top);
	snprintf(dest, sizeof(dest), "%s/out/p/dest", top);
	rm_rf(outdir);
	mkdir_p(parent, 0755);
	make_tar(tar, ents, n);
	r = bundle_unpack(tar, dest);
	ok(r < 0, "%s: refused", what);
	ok(strstr(error_last(), want) != NULL, "%s: error '%s' names '%s'", what,
	   error_last(), want);
	ok(!path_exists(dest), "%s: dest removed", what);
	ok(count_tree(outdir) == 1, "%s: nothing written outside dest (%d entries)",
	   what, count_tree(outdir));
	/* top holds tars/, tars/t.tar.gz, out/ and out/p/: nothing else */
	ok(count_tree(top) == 4, "%s: nothing written next to the scratch dirs", what);
	unlink(tar);
}

int main(void)
{
	char tar[300], dest[300], path[400], *s;
	struct stat st;
	char out[BUNDLE_PATH_MAX];

	snprintf(top, sizeof(top), "/tmp/berth-unit-bundle-XXXXXX");
	if (!mkdtemp(top))
		return 1;
	snprintf(path, sizeof(path), "%s/tars", top);
	mkdir(path, 0755);
	snprintf(path, sizeof(path), "%s/out", top);
	mkdir(path, 0755);

	/* the lexical checks */
	ok(bundle_entry_path_ok("./app.yaml", out, sizeof(out)) == 0 &&
	   !strcmp(out, "app.yaml"), "leading ./ stripped");
	ok(bundle_entry_path_ok("a//b/./c/", out, sizeof(out)) == 0 &&
	   !strcmp(out, "a/b/c"), "empty and . components dropped");
	ok(bundle_entry_path_ok("./", out, sizeof(out)) == 0 && !*out, "./ is the root");
	ok(bundle_entry_path_ok("../x", out, sizeof(out)) < 0 &&
	   !strcmp(error_last(), "bundle entry '../x' leaves the bundle"),
	   "../x refused: %s", error_last());
	ok(bundle_entry_path_ok("a/../../x", out, sizeof(out)) < 0, "a/../../x refused");
	ok(bundle_entry_path_ok("a/..", out, sizeof(out)) < 0, "any .. refused");
	ok(bundle_entry_path_ok("/etc/passwd", out, sizeof(out)) < 0, "absolute refused");
	ok(bundle_entry_path_ok("a..b/..c", out, sizeof(out)) == 0, "dots in names are fine");
	ok(bundle_symlink_ok("lib/x", "../bin/y") == 0, "link up one from lib/ ok");
	ok(bundle_symlink_ok("x", "../y") < 0, "link above root refused");
	ok(bundle_symlink_ok("a/b/x", "../../y") == 0, "link to the root's child ok");
	ok(bundle_symlink_ok("a/b/x", "../../../y") < 0, "link one too far refused");
	ok(bundle_symlink_ok("y", "a/..") < 0, "name then .. refused (a may be a link)");
	ok(bundle_symlink_ok("y", "/etc") < 0, "absolute target refused");
	ok(bundle_symlink_ok("y", "") < 0, "empty target refused");
	ok(bundle_symlink_ok("y", "./a/./b") == 0, "./a/./b fine");

	/* a good bundle */
	{
		const struct ent good[] = {
			{ T_DIR, "./", NULL, 0755 },
			{ T_FILE, "./app.yaml", "processes:\n  web: ./bin/run\n", 0644 },
			{ T_DIR, "./bin", NULL, 0755 },
			{ T_FILE, "./bin/run", "#!/bin/sh\necho hi\n", 04755 },
			{ T_SYMLINK, "./bin/alias", "run", 0 },
			{ T_SYMLINK, "./top", "bin/run", 0 },
			{ T_HARDLINK, "./bin/again", "bin/run", 0 },
			{ T_DIR, "lib/deep/er", NULL, 0500 },
			{ T_SYMLINK, "lib/deep/er/up", "../../../app.yaml", 0 },
		};

		snprintf(tar, sizeof(tar), "%s/tars/good.tar.gz", top);
		snprintf(dest, sizeof(dest), "%s/out/good", top);
		make_tar(tar, good, ARRAY_SIZE(good));
		ok(bundle_unpack(tar, dest) == 0, "good bundle unpacks: %s", error_last());
		snprintf(path, sizeof(path), "%s/bin/run", dest);
		ok(stat(path, &st) == 0 && (st.st_mode & 0111) == 0111,
		   "exec bits kept");
		ok((st.st_mode & 07000) == 0, "setuid dropped");
		ok(st.st_uid == getuid(), "owned by us");
		s = slurp(path);
		ok(s && !strcmp(s, "#!/bin/sh\necho hi\n"), "content kept");
		free(s);
		snprintf(path, sizeof(path), "%s/top", dest);
		s = slurp(path);
		ok(s && !strncmp(s, "#!/bin/sh", 9), "symlink inside works");
		free(s);
		snprintf(path, sizeof(path), "%s/bin/again", dest);
		ok(stat(path, &st) == 0 && st.st_nlink == 2, "hard link inside made");
		snprintf(path, sizeof(path), "%s/lib/deep/er/up", dest);
		s = slurp(path);
		ok(s && !strncmp(s, "processes:", 10), "deep link up to root works");
		free(s);
		snprintf(path, sizeof(path), "%s/lib/deep/er", dest);
		ok(stat(path, &st) == 0 && (st.st_mode & 0700) == 0700,
		   "directories stay writable by us");
		ok(bundle_unpack(tar, dest) < 0 && strstr(error_last(), "cannot create"),
		   "existing dest refused: %s", error_last());
		ok(path_exists(dest), "existing dest left alone");

		/* pack it again and unpack the copy */
		snprintf(path, sizeof(path), "%s/tars/repacked.tar.gz", top);
		ok(bundle_pack(dest, path) == 0, "pack: %s", error_last());
		snprintf(tar, sizeof(tar), "%s/tars/repacked.tar.gz.new", top);
		ok(!path_exists(tar), "no .new left behind");
		snprintf(dest, sizeof(dest), "%s/out/again", top);
		ok(bundle_unpack(path, dest) == 0, "repacked bundle unpacks: %s",
		   error_last());
		snprintf(path, sizeof(path), "%s/bin/run", dest);
		ok(stat(path, &st) == 0 && (st.st_mode & 0777) == 0755,
		   "exec bits survive a round trip");
		snprintf(path, sizeof(path), "%s/bin/alias", dest);
		ok(lstat(path, &st) == 0 && S_ISLNK(st.st_mode),
		   "symlink survives a round trip");
		snprintf(path, sizeof(path), "%s/out/good", top);
		ok(count_tree(path) == count_tree(dest), "same number of entries");
		snprintf(path, sizeof(path), "%s/tars", top);
		rm_rf(path);
		mkdir(path, 0755);
		snprintf(path, sizeof(path), "%s/out", top);
		rm_rf(path);
		mkdir(path, 0755);
	}

	{
		const struct ent e[] = { { T_FILE, "ok", "x", 0 },
					 { T_FILE, "../x", "evil", 0 } };
		refused("dotdot", e, ARRAY_SIZE(e), "bundle entry '../x' leaves the bundle");
	}
	{
		const struct ent e[] = { { T_FILE, "a/../../../x", "evil", 0 } };
		refused("deep dotdot", e, ARRAY_SIZE(e), "leaves the bundle");
	}
	{
		char abs[400];
		struct ent e[] = { { T_FILE, NULL, "evil", 0 } };

		snprintf(abs, sizeof(abs), "%s/out/abs", top);
		e[0].name = abs;
		refused("absolute", e, ARRAY_SIZE(e), "has an absolute path");
	}
	{
		const struct ent e[] = { { T_SYMLINK, "x", "../../etc", 0 } };
		refused("escaping symlink", e, ARRAY_SIZE(e),
			"bundle entry 'x' links outside the bundle ('../../etc')");
	}
	{
		const struct ent e[] = { { T_SYMLINK, "x", "/etc", 0 } };
		refused("absolute symlink", e, ARRAY_SIZE(e), "links outside the bundle");
	}
	{
		const struct ent e[] = { { T_SYMLINK, "x", "..", 0 },
					 { T_FILE, "x/evil", "evil", 0 } };
		refused("symlink up then a file through it", e, ARRAY_SIZE(e),
			"'x' links outside");
	}
	{
		const struct ent e[] = { { T_SYMLINK, "a", ".", 0 },
					 { T_SYMLINK, "b", "a/..", 0 },
					 { T_FILE, "b/evil", "evil", 0 } };
		refused("link chain a -> . , b -> a/..", e, ARRAY_SIZE(e),
			"'b' links outside");
	}
	{
		const struct ent e[] = { { T_DIR, "sub", NULL, 0 },
					 { T_SYMLINK, "l", "sub", 0 },
					 { T_FILE, "l/f", "through", 0 } };
		refused("file written through an inside symlink", e, ARRAY_SIZE(e),
			"'l/f'");
	}
	{
		/* a later entry of the same name replaces the link itself */
		const struct ent e[] = { { T_DIR, "sub", NULL, 0 },
					 { T_SYMLINK, "f", "sub/target", 0 },
					 { T_FILE, "f", "replaces the link", 0 } };

		snprintf(tar, sizeof(tar), "%s/tars/over.tar.gz", top);
		snprintf(dest, sizeof(dest), "%s/out/over", top);
		make_tar(tar, e, ARRAY_SIZE(e));
		ok(bundle_unpack(tar, dest) == 0, "file over a symlink: %s", error_last());
		snprintf(path, sizeof(path), "%s/f", dest);
		ok(lstat(path, &st) == 0 && S_ISREG(st.st_mode),
		   "file over a symlink replaces the link");
		snprintf(path, sizeof(path), "%s/sub/target", dest);
		ok(!path_exists(path), "file over a symlink: nothing written through it");
		unlink(tar);
		rm_rf(dest);
	}
	{
		const struct ent e[] = { { T_HARDLINK, "h", "../victim", 0 } };
		refused("hardlink outside", e, ARRAY_SIZE(e),
			"bundle entry 'h' links outside the bundle ('../victim')");
	}
	{
		char abs[400];
		struct ent e[] = { { T_HARDLINK, "h", NULL, 0 } };

		snprintf(abs, sizeof(abs), "%s/tars/t.tar.gz", top);
		e[0].data = abs;
		refused("hardlink to an absolute path", e, ARRAY_SIZE(e),
			"links outside the bundle");
	}
	{
		const struct ent e[] = { { T_DIR, "a", NULL, 0 },
					 { T_DIR, "a/b", NULL, 0 },
					 { T_SYMLINK, "a/b/l", "../..", 0 },
					 { T_HARDLINK, "h", "a/b/l", 0 } };
		refused("hardlink to a symlink", e, ARRAY_SIZE(e), "not a file in the bundle");
	}
	{
		const struct ent e[] = { { T_FIFO, "fifo", NULL, 0 } };
		refused("fifo", e, ARRAY_SIZE(e), "bundle entry 'fifo' is not a file, directory or symlink");
	}
	{
		const struct ent e[] = { { T_CHR, "null", NULL, 0 } };
		refused("device node", e, ARRAY_SIZE(e), "not a file, directory or symlink");
	}

	/* not a tarball at all */
	snprintf(tar, sizeof(tar), "%s/tars/junk.tar.gz", top);
	write_file_atomic(tar, "this is not gzip\n", 17, 0644);
	snprintf(dest, sizeof(dest), "%s/out/junk", top);
	ok(bundle_unpack(tar, dest) < 0 && strstr(error_last(), "junk.tar.gz"),
	   "junk refused: %s", error_last());
	ok(!path_exists(dest), "junk: dest removed");
	unlink(tar);
	snprintf(tar, sizeof(tar), "%s/tars/missing.tar.gz", top);
	ok(bundle_unpack(tar, dest) < 0 && strstr(error_last(), "cannot open bundle"),
	   "missing tarball: %s", error_last());
	ok(!path_exists(dest), "missing tarball: no dest");

	rm_rf(top);
	return tap_done();
}
