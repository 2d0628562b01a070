#include "clonepack.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "packfile.h"
#include "util.h"
#include "banned.h"

/* a writer's half-written file older than this is a dead session's */
#define CLONEPACK_STALE_S 3600

struct clonepack_writer {
	char *dir, *tmp, *final;
	int fd;
	int failed;
};

static int id_cmp(const void *a, const void *b)
{
	return memcmp(a, b, PACK_ID_LEN);
}

void clonepack_key(char out[41], const unsigned char *ids, size_t n,
		   unsigned flags)
{
	unsigned char *sorted = xmalloc(n ? n * PACK_ID_LEN : 1);
	unsigned char md[PACK_ID_LEN], fl = (unsigned char)flags;
	struct pack_hash h;
	size_t i;

	memcpy(sorted, ids, n * PACK_ID_LEN);
	qsort(sorted, n, PACK_ID_LEN, id_cmp);
	pack_hash_init(&h);
	pack_hash_update(&h, "berth clonepack 1\n", 18);
	pack_hash_update(&h, &fl, 1);
	for (i = 0; i < n; i++) {
		/* the same id wanted twice is the same request */
		if (i && !memcmp(sorted + i * PACK_ID_LEN,
				 sorted + (i - 1) * PACK_ID_LEN, PACK_ID_LEN))
			continue;
		pack_hash_update(&h, sorted + i * PACK_ID_LEN, PACK_ID_LEN);
	}
	pack_hash_final(&h, md);
	pack_id_hex(out, md);
	free(sorted);
}

static char *pack_path(const char *repo_path, const char *key)
{
	size_t n = strlen(repo_path);

	return xasprintf("%s%s" CLONEPACK_DIR "/%s.pack", repo_path,
			 n && repo_path[n - 1] == '/' ? "" : "/", key);
}

int clonepack_open(const char *repo_path, const char *key, size_t *size)
{
	char *path = pack_path(repo_path, key);
	unsigned char head[4];
	struct stat st;
	int fd;

	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	free(path);
	if (fd < 0)
		return -1;
	/* a pack is at least its header and trailer */
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) ||
	    st.st_size < 12 + PACK_ID_LEN ||
	    pread(fd, head, 4, 0) != 4 || memcmp(head, "PACK", 4)) {
		close(fd);
		return -1;
	}
	*size = (size_t)st.st_size;
	return fd;
}

int clonepack_any(const char *repo_path)
{
	size_t n = strlen(repo_path);
	char *dir = xasprintf("%s%s" CLONEPACK_DIR, repo_path,
			      n && repo_path[n - 1] == '/' ? "" : "/");
	struct dirent *de;
	int any = 0;
	DIR *d = opendir(dir);

	free(dir);
	if (!d)
		return 0;
	while (!any && (de = readdir(d))) {
		size_t len = strlen(de->d_name);

		any = len > 5 && de->d_name[0] != '.' &&
		      strncmp(de->d_name, "tmp-", 4) &&
		      !strcmp(de->d_name + len - 5, ".pack");
	}
	closedir(d);
	return any;
}

int clonepack_lock(const char *repo_path)
{
	size_t n = strlen(repo_path);
	char *dir = xasprintf("%s%s" CLONEPACK_DIR, repo_path,
			      n && repo_path[n - 1] == '/' ? "" : "/");
	char *path = xasprintf("%s/lock", dir);
	int fd = -1;

	if (mkdir(dir, 0755) < 0 && errno != EEXIST) {
		error_setsys("cannot make '%s'", dir);
		goto out;
	}
	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644);
	if (fd < 0) {
		error_setsys("cannot open '%s'", path);
		goto out;
	}
	if (flock(fd, LOCK_EX) < 0) {
		error_setsys("cannot lock '%s'", path);
		close(fd);
		fd = -1;
	}
out:
	free(dir);
	free(path);
	return fd;
}

struct clonepack_writer *clonepack_begin(const char *repo_path,
					 const char *key)
{
	struct clonepack_writer *w = xcalloc(1, sizeof(*w));
	size_t n = strlen(repo_path);

	w->dir = xasprintf("%s%s" CLONEPACK_DIR, repo_path,
			   n && repo_path[n - 1] == '/' ? "" : "/");
	w->final = pack_path(repo_path, key);
	w->tmp = xasprintf("%s/tmp-XXXXXX", w->dir);
	if (mkdir(w->dir, 0755) < 0 && errno != EEXIST)
		goto fail;
	w->fd = mkostemp(w->tmp, O_CLOEXEC);
	if (w->fd < 0)
		goto fail;
	return w;
fail:
	free(w->dir);
	free(w->final);
	free(w->tmp);
	free(w);
	return NULL;
}

void clonepack_add(struct clonepack_writer *w, const void *data, size_t len)
{
	if (!w || w->failed)
		return;
	if (write_all(w->fd, data, len) < 0)
		w->failed = 1;
}

/* Remove the other kept packs and dead writers' files. */
static void remove_others(struct clonepack_writer *w)
{
	const char *keep = strrchr(w->final, '/') + 1;
	time_t now = time(NULL);
	struct dirent *de;
	struct stat st;
	DIR *d;
	int dfd;

	d = opendir(w->dir);
	if (!d)
		return;
	dfd = dirfd(d);
	while ((de = readdir(d))) {
		if (de->d_name[0] == '.' || !strcmp(de->d_name, keep) ||
		    !strcmp(de->d_name, "lock"))
			continue;
		if (!strncmp(de->d_name, "tmp-", 4) &&
		    (fstatat(dfd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0 ||
		     now - st.st_mtime < CLONEPACK_STALE_S))
			continue;
		unlinkat(dfd, de->d_name, 0);
	}
	closedir(d);
}

static void writer_free(struct clonepack_writer *w)
{
	if (w->fd >= 0)
		close(w->fd);
	free(w->dir);
	free(w->final);
	free(w->tmp);
	free(w);
}

void clonepack_commit(struct clonepack_writer *w)
{
	if (!w)
		return;
	/* on disk before it has its name: a crash leaves no torn pack */
	if (w->failed || fchmod(w->fd, 0444) < 0 || fdatasync(w->fd) < 0 ||
	    rename(w->tmp, w->final) < 0) {
		clonepack_abort(w);
		return;
	}
	remove_others(w);
	writer_free(w);
}

void clonepack_abort(struct clonepack_writer *w)
{
	if (!w)
		return;
	unlink(w->tmp);
	writer_free(w);
}
