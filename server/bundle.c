/* bundle: see bundle.h.  The lexical checks run on every entry before
 * libarchive sees it; libarchive's own secure flags are the second line
 * (they catch writes through symlinks made by earlier entries). */
#include "bundle.h"

#include <archive.h>
#include <archive_entry.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util.h"
#include "banned.h"

#define PACK_MAX_DEPTH 256

/* An entry name made safe for a one-line message. */
static const char *shown(const char *name, char *out, size_t len)
{
	size_t i;

	for (i = 0; name[i] && i + 4 < len; i++)
		out[i] = (unsigned char)name[i] < 0x20 || name[i] == 0x7f ?
			 '?' : name[i];
	if (name[i]) {
		memcpy(out + i, "...", 3);
		i += 3;
	}
	out[i] = '\0';
	return out;
}

static int entry_error(const char *name, const char *what)
{
	char tmp[256];

	return error_set("bundle entry '%s' %s", shown(name, tmp, sizeof(tmp)),
			 what);
}

int bundle_entry_path_ok(const char *name, char *out, size_t outlen)
{
	const char *p = name, *e;
	size_t n = 0, clen;

	if (!name || !*name)
		return error_set("bundle entry with an empty name");
	if (strlen(name) >= BUNDLE_PATH_MAX || outlen < 1)
		return entry_error(name, "has too long a name");
	if (*name == '/')
		return entry_error(name, "has an absolute path");
	while (*p) {
		e = strchrnul(p, '/');
		clen = (size_t)(e - p);
		if (clen == 2 && p[0] == '.' && p[1] == '.')
			return entry_error(name, "leaves the bundle");
		if (clen && !(clen == 1 && p[0] == '.')) {
			if (n + clen + 2 > outlen)
				return entry_error(name, "has too long a name");
			if (n)
				out[n++] = '/';
			memcpy(out + n, p, clen);
			n += clen;
		}
		p = *e ? e + 1 : e;
	}
	out[n] = '\0';
	return 0;
}

int bundle_symlink_ok(const char *path, const char *target)
{
	const char *p, *e;
	long depth = 0, ups = 0;
	int seen_name = 0;
	char tmp[256], tmp2[256];

	if (!target || !*target)
		return entry_error(path, "is a symlink with an empty target");
	if (*target == '/')
		return error_set("bundle entry '%s' links outside the bundle ('%s')",
				 shown(path, tmp, sizeof(tmp)),
				 shown(target, tmp2, sizeof(tmp2)));
	/* the link's directory is as deep as its path has slashes */
	for (p = path; *p; p++)
		if (*p == '/')
			depth++;
	for (p = target; *p; p = *e ? e + 1 : e) {
		size_t clen;

		e = strchrnul(p, '/');
		clen = (size_t)(e - p);
		if (!clen || (clen == 1 && p[0] == '.'))
			continue;
		if (clen == 2 && p[0] == '.' && p[1] == '.') {
			/* "x/.." goes through x, which may be a link itself */
			if (seen_name || ++ups > depth)
				return error_set("bundle entry '%s' links outside the bundle ('%s')",
						 shown(path, tmp, sizeof(tmp)),
						 shown(target, tmp2, sizeof(tmp2)));
			continue;
		}
		seen_name = 1;
	}
	return 0;
}

static int archive_fail(struct archive *a, const char *what)
{
	const char *msg = archive_error_string(a);

	return error_set("%s: %s", what, msg ? msg : "unknown archive error");
}

static int copy_data(struct archive *in, struct archive *out,
		     const char *name, long long *total)
{
	const void *data;
	size_t size;
	la_int64_t off;
	int r;
	char what[300], tmp[256];

	snprintf(what, sizeof(what), "cannot unpack bundle entry '%s'",
		 shown(name, tmp, sizeof(tmp)));
	for (;;) {
		r = archive_read_data_block(in, &data, &size, &off);
		if (r == ARCHIVE_EOF)
			return 0;
		if (r < ARCHIVE_WARN)
			return archive_fail(in, what);
		*total += (long long)size;
		if (*total > BUNDLE_MAX_BYTES)
			return error_set("bundle unpacks to more than %lld bytes",
					 (long long)BUNDLE_MAX_BYTES);
		if (archive_write_data_block(out, data, size, off) < ARCHIVE_WARN)
			return archive_fail(out, what);
	}
}

/* Check one entry and point it into dest.  Returns 1 to skip it. */
static int prepare_entry(struct archive_entry *e, const char *realdest,
			 long long *declared)
{
	const char *name = archive_entry_pathname(e);
	const char *hl = archive_entry_hardlink(e);
	char clean[BUNDLE_PATH_MAX], cleanhl[BUNDLE_PATH_MAX], tmp[256];
	char *full = NULL;
	mode_t type = archive_entry_filetype(e), perm;
	struct stat st;
	int ret = -1;

	if (!name)
		return error_set("bundle entry with an unreadable name");
	if (bundle_entry_path_ok(name, clean, sizeof(clean)) < 0)
		return -1;
	if (!*clean) {
		if (hl || (type != AE_IFDIR && type != 0))
			return entry_error(name, "replaces the bundle's root");
		return 1;	/* "./" itself: dest already exists */
	}
	if (hl) {
		if (bundle_entry_path_ok(hl, cleanhl, sizeof(cleanhl)) < 0) {
			char tmp2[256];

			return error_set("bundle entry '%s' links outside the bundle ('%s')",
					 shown(name, tmp, sizeof(tmp)),
					 shown(hl, tmp2, sizeof(tmp2)));
		}
		if (!*cleanhl)
			return entry_error(name, "is a hard link to the bundle's root");
		full = xasprintf("%s/%s", realdest, cleanhl);
		/* a hard link to a symlink would copy the link's target to a
		 * place where it may point elsewhere: files only */
		if (lstat(full, &st) < 0 || !S_ISREG(st.st_mode)) {
			char tmp2[256];

			error_set("bundle entry '%s' is a hard link to '%s', which is not a file in the bundle",
				  shown(name, tmp, sizeof(tmp)),
				  shown(hl, tmp2, sizeof(tmp2)));
			goto out;
		}
		archive_entry_copy_hardlink(e, full);
		FREE_AND_NULL(full);
	} else if (type == AE_IFLNK) {
		if (bundle_symlink_ok(clean, archive_entry_symlink(e)) < 0)
			return -1;
	} else if (type != AE_IFREG && type != AE_IFDIR) {
		return entry_error(name, "is not a file, directory or symlink");
	}
	if (type == AE_IFREG && archive_entry_size_is_set(e)) {
		if (archive_entry_size(e) < 0)
			return entry_error(name, "has a negative size");
		*declared += archive_entry_size(e);
		if (*declared > BUNDLE_MAX_BYTES)
			return error_set("bundle unpacks to more than %lld bytes",
					 (long long)BUNDLE_MAX_BYTES);
	}
	/* exec bits stay; setuid, setgid, sticky and write access for
	 * others go; we can always read, write (and enter) what we
	 * unpacked, so rm_rf works */
	perm = archive_entry_perm(e) & 0755;
	perm |= type == AE_IFDIR ? 0700 : 0600;
	archive_entry_set_perm(e, perm);
	archive_entry_set_uid(e, getuid());
	archive_entry_set_gid(e, getgid());
	full = xasprintf("%s/%s", realdest, clean);
	archive_entry_copy_pathname(e, full);
	ret = 0;
out:
	free(full);
	return ret;
}

int bundle_unpack(const char *tarball, const char *dest)
{
	struct archive *in = NULL, *out = NULL;
	struct archive_entry *e;
	char *realdest = NULL, what[300], tmp[256];
	long long declared = 0, total = 0;
	long nentries = 0;
	int fd = -1, created = 0, ret = -1, r;
	const int flags = ARCHIVE_EXTRACT_PERM | ARCHIVE_EXTRACT_TIME |
		ARCHIVE_EXTRACT_SECURE_SYMLINKS | ARCHIVE_EXTRACT_SECURE_NODOTDOT;

	fd = open(tarball, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return error_setsys("cannot open bundle '%s'", tarball);
	if (mkdir(dest, 0755) < 0) {
		error_setsys("cannot create '%s'", dest);
		goto out;
	}
	created = 1;
	/* entries are written by absolute path under the resolved dest, so
	 * libarchive's symlink check never trips over links above it (and
	 * ARCHIVE_EXTRACT_SECURE_NOABSOLUTEPATHS is replaced by our own
	 * check of each entry's name) */
	realdest = realpath(dest, NULL);
	if (!realdest) {
		error_setsys("cannot resolve '%s'", dest);
		goto out;
	}
	in = archive_read_new();
	out = archive_write_disk_new();
	if (!in || !out) {
		error_set("cannot allocate archive state");
		goto out;
	}
	archive_read_support_filter_gzip(in);
	archive_read_support_format_tar(in);
	if (archive_read_open_fd(in, fd, 65536) != ARCHIVE_OK) {
		snprintf(what, sizeof(what), "cannot read bundle '%s'", tarball);
		archive_fail(in, what);
		goto out;
	}
	archive_write_disk_set_options(out, flags);
	for (;;) {
		r = archive_read_next_header(in, &e);
		if (r == ARCHIVE_EOF)
			break;
		if (r < ARCHIVE_WARN) {
			snprintf(what, sizeof(what), "bundle '%s' is not a valid tar.gz",
				 tarball);
			archive_fail(in, what);
			goto out;
		}
		if (++nentries > BUNDLE_MAX_ENTRIES) {
			error_set("bundle has more than %d entries", BUNDLE_MAX_ENTRIES);
			goto out;
		}
		snprintf(what, sizeof(what), "cannot unpack bundle entry '%s'",
			 archive_entry_pathname(e) ?
			 shown(archive_entry_pathname(e), tmp, sizeof(tmp)) : "?");
		r = prepare_entry(e, realdest, &declared);
		if (r < 0)
			goto out;
		if (r > 0)
			continue;
		if (archive_write_header(out, e) < ARCHIVE_WARN) {
			archive_fail(out, what);
			goto out;
		}
		if (archive_entry_size(e) > 0 &&
		    copy_data(in, out, archive_entry_pathname(e), &total) < 0)
			goto out;
		if (archive_write_finish_entry(out) < ARCHIVE_WARN) {
			archive_fail(out, what);
			goto out;
		}
	}
	/* close sets the deferred directory modes and times */
	if (archive_write_close(out) != ARCHIVE_OK) {
		archive_fail(out, "cannot finish unpacking bundle");
		goto out;
	}
	ret = 0;
out:
	if (in)
		archive_read_free(in);
	if (out)
		archive_write_free(out);
	if (fd >= 0)
		close(fd);
	free(realdest);
	if (ret < 0 && created) {
		char saved[1024];

		snprintf(saved, sizeof(saved), "%s", error_last());
		rm_rf(dest);
		error_set("%s", saved);
	}
	return ret;
}

static int pack_write_file(struct archive *a, const char *path)
{
	char data[65536];
	ssize_t n;
	int fd, ret = -1;

	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return error_setsys("cannot open '%s'", path);
	for (;;) {
		n = read(fd, data, sizeof(data));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			error_setsys("cannot read '%s'", path);
			goto out;
		}
		if (n == 0)
			break;
		if (archive_write_data(a, data, (size_t)n) != n) {
			archive_fail(a, "cannot write bundle");
			goto out;
		}
	}
	ret = 0;
out:
	close(fd);
	return ret;
}

static int pack_dir(struct archive *a, const char *dir, const char *rel,
		    int depth)
{
	struct dirent **list = NULL;
	int n, i, ret = -1;

	if (depth > PACK_MAX_DEPTH)
		return error_set("'%s' is nested too deeply to pack", dir);
	n = scandir(dir, &list, NULL, alphasort);
	if (n < 0)
		return error_setsys("cannot read '%s'", dir);
	for (i = 0; i < n; i++) {
		const char *name = list[i]->d_name;
		char *path = NULL, *relpath = NULL, target[PATH_MAX];
		struct archive_entry *e = NULL;
		struct stat st;
		ssize_t tl;
		int ok = -1;

		if (!strcmp(name, ".") || !strcmp(name, ".."))
			continue;
		path = xasprintf("%s/%s", dir, name);
		relpath = *rel ? xasprintf("%s/%s", rel, name) : xstrdup(name);
		if (lstat(path, &st) < 0) {
			error_setsys("cannot stat '%s'", path);
			goto next;
		}
		if (!S_ISREG(st.st_mode) && !S_ISDIR(st.st_mode) &&
		    !S_ISLNK(st.st_mode)) {
			ok = 0;		/* sockets, fifos: nothing to ship */
			goto next;
		}
		e = archive_entry_new();
		archive_entry_copy_stat(e, &st);
		archive_entry_set_pathname(e, relpath);
		archive_entry_set_uid(e, 0);
		archive_entry_set_gid(e, 0);
		archive_entry_set_nlink(e, S_ISDIR(st.st_mode) ? 2 : 1);
		archive_entry_set_perm(e, st.st_mode & 0777);
		if (S_ISLNK(st.st_mode)) {
			tl = readlink(path, target, sizeof(target) - 1);
			if (tl < 0) {
				error_setsys("cannot read link '%s'", path);
				goto next;
			}
			target[tl] = '\0';
			archive_entry_set_symlink(e, target);
			archive_entry_set_size(e, 0);
		} else if (S_ISDIR(st.st_mode)) {
			archive_entry_set_size(e, 0);
		}
		if (archive_write_header(a, e) < ARCHIVE_WARN) {
			archive_fail(a, "cannot write bundle");
			goto next;
		}
		if (S_ISREG(st.st_mode) && pack_write_file(a, path) < 0)
			goto next;
		if (S_ISDIR(st.st_mode) && pack_dir(a, path, relpath, depth + 1) < 0)
			goto next;
		ok = 0;
next:
		if (e)
			archive_entry_free(e);
		free(path);
		free(relpath);
		if (ok < 0)
			goto out;
	}
	ret = 0;
out:
	for (i = 0; i < n; i++)
		free(list[i]);
	free(list);
	return ret;
}

int bundle_pack(const char *srcdir, const char *tarball)
{
	struct archive *a = NULL;
	char *tmp = xasprintf("%s.new", tarball);
	int fd = -1, ret = -1, opened = 0;

	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0) {
		error_setsys("cannot create '%s'", tmp);
		goto out;
	}
	a = archive_write_new();
	if (!a) {
		error_set("cannot allocate archive state");
		goto out;
	}
	/* level 1: builds sit on the push-to-live path; size matters less */
	if (archive_write_add_filter_gzip(a) != ARCHIVE_OK ||
	    archive_write_set_filter_option(a, "gzip", "compression-level", "1") != ARCHIVE_OK ||
	    archive_write_set_format_pax_restricted(a) != ARCHIVE_OK ||
	    archive_write_open_fd(a, fd) != ARCHIVE_OK) {
		archive_fail(a, "cannot write bundle");
		goto out;
	}
	opened = 1;
	if (pack_dir(a, srcdir, "", 0) < 0)
		goto out;
	opened = 0;
	if (archive_write_close(a) != ARCHIVE_OK) {
		archive_fail(a, "cannot write bundle");
		goto out;
	}
	ret = file_commit(fd, tmp, tarball);
	fd = -1;
out:
	if (a) {
		if (opened)
			archive_write_close(a);
		archive_write_free(a);
	}
	if (fd >= 0)
		close(fd);
	if (ret < 0)
		unlink(tmp);
	free(tmp);
	return ret;
}
