/* envdir: see envdir.h. */
#include "envdir.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "banned.h"

int envdir_name_valid(const char *name)
{
	return name[0] && name[0] != '.' && !strchr(name, '=');
}

int envdir_value(char **out, const char *data, size_t len)
{
	const char *nl = memchr(data, '\n', len);
	size_t n = nl ? (size_t)(nl - data) : len;

	*out = NULL;
	if (!len)
		return ERR_NOTFOUND;
	if (n > ENVDIR_VALUE_MAX)
		return ERR_INVALID;
	/* xstrndup stops at a NUL: the environment could not carry more */
	*out = xstrndup(data, n);
	return 0;
}

/* The first ENVDIR_VALUE_MAX + 1 bytes of a regular file. */
static int read_head(struct buf *b, int dirfd, const char *name)
{
	char chunk[4096];
	struct stat st;
	ssize_t n;
	int fd, ret = -1;

	fd = openat(dirfd, name, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
	if (fd < 0)
		return -1;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode))
		goto out;
	while (b->len <= ENVDIR_VALUE_MAX) {
		n = read(fd, chunk, sizeof(chunk));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			goto out;
		if (n == 0)
			break;
		buf_add(b, chunk, (size_t)n);
		if (memchr(chunk, '\n', (size_t)n))
			break;
	}
	ret = 0;
out:
	close(fd);
	return ret;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

int envdir_read(struct strv *out, const char *dir, envdir_warn_fn *warn,
		void *arg)
{
	struct strv names = STRV_INIT;
	struct dirent *de;
	DIR *d;
	size_t i;

	d = opendir(dir);
	if (!d)
		return 0;
	while ((de = readdir(d))) {
		if (!envdir_name_valid(de->d_name))
			continue;
		if (names.n >= ENVDIR_FILES_MAX) {
			char *msg = xasprintf("envdir '%s': more than %d files, the rest ignored",
					      dir, ENVDIR_FILES_MAX);

			if (warn)
				warn(arg, msg);
			free(msg);
			break;
		}
		strv_push(&names, de->d_name);
	}
	if (names.n)
		qsort(names.v, names.n, sizeof(char *), cmp_str);
	for (i = 0; i < names.n; i++) {
		struct buf b = BUF_INIT;
		char *value = NULL;
		int rc;

		if (read_head(&b, dirfd(d), names.v[i]) < 0) {
			buf_release(&b);
			continue;
		}
		rc = envdir_value(&value, b.data ? b.data : "", b.len);
		if (rc == ERR_INVALID && warn) {
			char *msg = xasprintf("envdir '%s': the first line of '%s' is over %d bytes, ignored",
					      dir, names.v[i], ENVDIR_VALUE_MAX);

			warn(arg, msg);
			free(msg);
		}
		if (rc == 0)
			strv_pushf(out, "%s=%s", names.v[i], value);
		free(value);
		buf_release(&b);
	}
	strv_release(&names);
	closedir(d);
	return 0;
}
