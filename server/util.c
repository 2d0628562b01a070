/* util: see util.h. */
#include "util.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include "banned.h"

/* The last error, per thread like libgit2's (indexpack.c has workers). */
static _Thread_local char last_error[1024];

int error_set(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(last_error, sizeof(last_error), fmt, ap);
	va_end(ap);
	return -1;
}

int error_setsys(const char *fmt, ...)
{
	va_list ap;
	int saved = errno;
	size_t n;

	va_start(ap, fmt);
	vsnprintf(last_error, sizeof(last_error), fmt, ap);
	va_end(ap);
	n = strlen(last_error);
	snprintf(last_error + n, sizeof(last_error) - n, ": %s", strerror(saved));
	errno = saved;
	return -1;
}

const char *error_last(void)
{
	return last_error;
}

void error_clear(void)
{
	last_error[0] = '\0';
}

static void oom(void)
{
	static const char msg[] = "berth: out of memory\n";

	if (write(2, msg, sizeof(msg) - 1) < 0)
		abort();
	abort();
}

void *xmalloc(size_t n)
{
	void *p = malloc(n ? n : 1);

	if (!p)
		oom();
	return p;
}

void *xcalloc(size_t nmemb, size_t size)
{
	void *p = calloc(nmemb ? nmemb : 1, size ? size : 1);

	if (!p)
		oom();
	return p;
}

void *xrealloc(void *p, size_t n)
{
	p = realloc(p, n ? n : 1);
	if (!p)
		oom();
	return p;
}

char *xstrdup(const char *s)
{
	char *p = strdup(s);

	if (!p)
		oom();
	return p;
}

char *xstrndup(const char *s, size_t n)
{
	char *p = strndup(s, n);

	if (!p)
		oom();
	return p;
}

char *xvasprintf(const char *fmt, va_list ap)
{
	char *p;

	if (vasprintf(&p, fmt, ap) < 0)
		oom();
	return p;
}

char *xasprintf(const char *fmt, ...)
{
	va_list ap;
	char *p;

	va_start(ap, fmt);
	p = xvasprintf(fmt, ap);
	va_end(ap);
	return p;
}

int hex_value(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* What an empty buffer points at until its first append: never written
 * (alloc 0 says the buffer owns no memory). */
char buf_empty_[1];

void buf_init(struct buf *b, size_t max)
{
	b->data = buf_empty_;
	b->len = 0;
	b->alloc = 0;
	b->max = max;
}

static int buf_grow(struct buf *b, size_t extra)
{
	size_t want;

	if (extra > SIZE_MAX / 2 - b->len)
		return error_set("buffer too large");
	want = b->len + extra + 1;
	if (b->max && want > b->max + 1)
		return error_set("input too large (over %zu bytes)", b->max);
	if (want <= b->alloc)
		return 0;
	if (want < b->alloc * 2)
		want = b->alloc * 2;
	if (want < 64)
		want = 64;
	b->data = xrealloc(b->alloc ? b->data : NULL, want);
	b->alloc = want;
	return 0;
}

int buf_add(struct buf *b, const void *data, size_t len)
{
	if (buf_grow(b, len) < 0)
		return -1;
	if (len)
		memcpy(b->data + b->len, data, len);
	b->len += len;
	b->data[b->len] = '\0';
	return 0;
}

int buf_addstr(struct buf *b, const char *s)
{
	return buf_add(b, s, strlen(s));
}

int buf_addf(struct buf *b, const char *fmt, ...)
{
	va_list ap;
	char *p;
	int n, ret;

	va_start(ap, fmt);
	n = vasprintf(&p, fmt, ap);
	va_end(ap);
	if (n < 0)
		oom();
	ret = buf_add(b, p, (size_t)n);
	free(p);
	return ret;
}

void buf_consume(struct buf *b, size_t n)
{
	if (n >= b->len) {
		b->len = 0;
	} else {
		memmove(b->data, b->data + n, b->len - n);
		b->len -= n;
	}
	if (b->alloc)
		b->data[b->len] = '\0';
}

void buf_reset(struct buf *b)
{
	b->len = 0;
	if (b->alloc)
		b->data[0] = '\0';
}

void buf_release(struct buf *b)
{
	if (b->alloc)
		free(b->data);
	b->data = buf_empty_;
	b->len = 0;
	b->alloc = 0;
}

char *buf_detach(struct buf *b)
{
	char *p = b->alloc ? b->data : xstrdup("");

	b->data = buf_empty_;
	b->len = 0;
	b->alloc = 0;
	return p;
}

int app_name_valid(const char *name)
{
	size_t i, n;

	if (!name)
		return 0;
	n = strlen(name);
	if (n == 0 || n > APP_NAME_MAX)
		return 0;
	if (name[0] == '-' || name[n - 1] == '-')
		return 0;
	for (i = 0; i < n; i++) {
		char c = name[i];

		if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
		      c == '-'))
			return 0;
	}
	return 1;
}

int manifest_env_reserved(const char *key)
{
	return !strcmp(key, "PORT") || !strcmp(key, "DYNO") ||
	       !strncmp(key, "BERTH_", 6);
}

int proc_type_valid(const char *type)
{
	size_t n;

	if (!type)
		return 0;
	for (n = 0; type[n]; n++)
		if (!(islower((unsigned char)type[n]) ||
		      isdigit((unsigned char)type[n]) ||
		      type[n] == '_' || type[n] == '-'))
			return 0;
	return n >= 1 && n <= 32;
}

int env_key_valid(const char *key)
{
	size_t i;

	if (!key || !key[0] || strlen(key) > 255)
		return 0;
	if (!(isalpha((unsigned char)key[0]) || key[0] == '_'))
		return 0;
	for (i = 1; key[i]; i++)
		if (!(isalnum((unsigned char)key[i]) || key[i] == '_'))
			return 0;
	return 1;
}

int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void time_iso(char *out, size_t len, time_t t)
{
	struct tm tm;

	gmtime_r(&t, &tm);
	if (!strftime(out, len, "%Y-%m-%dT%H:%M:%SZ", &tm) && len)
		out[0] = '\0';
}

int mkdir_p(const char *path, mode_t mode)
{
	char tmp[PATH_MAX];
	size_t n = strlen(path);
	char *p;

	if (n == 0 || n >= sizeof(tmp))
		return error_set("bad path '%s'", path);
	memcpy(tmp, path, n + 1);
	for (p = tmp + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(tmp, mode) < 0 && errno != EEXIST)
			return error_setsys("cannot create '%s'", tmp);
		*p = '/';
	}
	if (mkdir(tmp, mode) < 0 && errno != EEXIST)
		return error_setsys("cannot create '%s'", tmp);
	return 0;
}

static int rm_rf_at(int atfd, const char *name)
{
	struct stat st;
	DIR *d;
	struct dirent *de;
	int fd, ret = 0;

	if (fstatat(atfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return errno == ENOENT ? 0 : error_setsys("cannot stat '%s'", name);
	if (!S_ISDIR(st.st_mode)) {
		if (unlinkat(atfd, name, 0) < 0 && errno != ENOENT)
			return error_setsys("cannot remove '%s'", name);
		return 0;
	}
	fd = openat(atfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return error_setsys("cannot open '%s'", name);
	d = fdopendir(fd);
	if (!d) {
		close(fd);
		return error_setsys("cannot open '%s'", name);
	}
	while ((de = readdir(d))) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		if (rm_rf_at(dirfd(d), de->d_name) < 0)
			ret = -1;
	}
	closedir(d);
	if (ret == 0 && unlinkat(atfd, name, AT_REMOVEDIR) < 0 &&
	    errno != ENOENT)
		return error_setsys("cannot remove '%s'", name);
	return ret;
}

int rm_rf(const char *path)
{
	return rm_rf_at(AT_FDCWD, path);
}

static int fsync_dir_of(const char *path)
{
	char dir[PATH_MAX];
	const char *slash = strrchr(path, '/');
	size_t n;
	int fd;

	if (!slash) {
		memcpy(dir, ".", 2);
	} else {
		n = (size_t)(slash - path);
		if (n == 0)
			n = 1;
		if (n >= sizeof(dir))
			return error_set("path too long '%s'", path);
		memcpy(dir, path, n);
		dir[n] = '\0';
	}
	fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return error_setsys("cannot open '%s'", dir);
	fsync(fd);
	close(fd);
	return 0;
}

int file_commit(int fd, const char *tmp, const char *path)
{
	if (fsync(fd) < 0) {
		error_setsys("cannot write '%s'", tmp);
		close(fd);
		return -1;
	}
	if (close(fd) < 0)
		return error_setsys("cannot write '%s'", tmp);
	if (rename(tmp, path) < 0)
		return error_setsys("cannot rename '%s'", tmp);
	return fsync_dir_of(path);
}

int write_file_atomic(const char *path, const void *data, size_t len,
		      mode_t mode)
{
	char tmp[PATH_MAX];
	int fd = -1, ret = -1;

	if (snprintf(tmp, sizeof(tmp), "%s.new", path) >= (int)sizeof(tmp))
		return error_set("path too long '%s'", path);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
	if (fd < 0) {
		error_setsys("cannot create '%s'", tmp);
		goto out;
	}
	if (write_all(fd, data, len) < 0) {
		error_setsys("cannot write '%s'", tmp);
		goto out;
	}
	ret = file_commit(fd, tmp, path);
	fd = -1;
out:
	if (fd >= 0)
		close(fd);
	if (ret < 0)
		unlink(tmp);
	return ret;
}

int read_file(struct buf *out, const char *path, size_t max)
{
	char chunk[8192];
	int fd;
	ssize_t n;
	int ret = 0;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT ?
			(error_setsys("cannot open '%s'", path), ERR_NOTFOUND) :
			error_setsys("cannot open '%s'", path);
	for (;;) {
		n = read(fd, chunk, sizeof(chunk));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			ret = error_setsys("cannot read '%s'", path);
			break;
		}
		if (n == 0)
			break;
		if (max && out->len + (size_t)n > max) {
			ret = error_set("'%s' is too large (over %zu bytes)",
					path, max);
			break;
		}
		buf_add(out, chunk, (size_t)n);
	}
	close(fd);
	if (!out->data)
		buf_add(out, "", 0);
	return ret;
}

int copy_file(const char *from, const char *to, mode_t mode)
{
	char chunk[65536];
	int in = -1, out = -1, ret = -1;
	ssize_t n;

	in = open(from, O_RDONLY | O_CLOEXEC);
	if (in < 0) {
		error_setsys("cannot open '%s'", from);
		goto out;
	}
	out = open(to, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
	if (out < 0) {
		error_setsys("cannot create '%s'", to);
		goto out;
	}
	for (;;) {
		n = read(in, chunk, sizeof(chunk));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			error_setsys("cannot read '%s'", from);
			goto out;
		}
		if (n == 0)
			break;
		if (write_all(out, chunk, (size_t)n) < 0) {
			error_setsys("cannot write '%s'", to);
			goto out;
		}
	}
	if (fsync(out) < 0) {
		error_setsys("cannot write '%s'", to);
		goto out;
	}
	ret = 0;
out:
	if (in >= 0)
		close(in);
	if (out >= 0)
		close(out);
	return ret;
}

int path_exists(const char *path)
{
	struct stat st;

	return lstat(path, &st) == 0;
}

int set_cloexec(int fd)
{
	int fl = fcntl(fd, F_GETFD);

	if (fl < 0 || fcntl(fd, F_SETFD, fl | FD_CLOEXEC) < 0)
		return error_setsys("fcntl");
	return 0;
}

int set_nonblock(int fd)
{
	int fl = fcntl(fd, F_GETFL);

	if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0)
		return error_setsys("fcntl");
	return 0;
}

int write_all(int fd, const void *data, size_t len)
{
	const char *p = data;
	ssize_t n;

	while (len) {
		n = write(fd, p, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -1;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

char *str_token(char **cursor, const char *delims)
{
	char *s = *cursor, *end;

	if (!s)
		return NULL;
	s += strspn(s, delims);
	if (!*s) {
		*cursor = s;
		return NULL;
	}
	end = s + strcspn(s, delims);
	if (*end)
		*end++ = '\0';
	*cursor = end;
	return s;
}

long parse_long(const char *s, long max)
{
	long v = 0;

	if (!s || !*s)
		return -1;
	for (; *s; s++) {
		if (*s < '0' || *s > '9')
			return -1;
		if (v > (max - (*s - '0')) / 10)
			return -1;
		v = v * 10 + (*s - '0');
	}
	return v;
}

long parse_duration_ms(const char *s)
{
	char *end;
	double v;

	if (!s || !*s || !(isdigit((unsigned char)*s) || *s == '.'))
		return -1;
	errno = 0;
	v = strtod(s, &end);
	if (errno || v < 0 || v > 86400.0 * 365)
		return -1;
	if (!*end || !strcmp(end, "s"))
		return (long)(v * 1000 + 0.5);
	if (!strcmp(end, "ms"))
		return (long)(v + 0.5);
	if (!strcmp(end, "m"))
		return (long)(v * 60000 + 0.5);
	return -1;
}

void strv_push(struct strv *sv, const char *s)
{
	if (sv->n + 2 > sv->alloc) {
		sv->alloc = sv->alloc ? sv->alloc * 2 : 8;
		sv->v = xrealloc(sv->v, sv->alloc * sizeof(*sv->v));
	}
	sv->v[sv->n++] = xstrdup(s);
	sv->v[sv->n] = NULL;
}

void strv_pushf(struct strv *sv, const char *fmt, ...)
{
	va_list ap;
	char *p;

	va_start(ap, fmt);
	p = xvasprintf(fmt, ap);
	va_end(ap);
	strv_push(sv, p);
	free(p);
}

void strv_release(struct strv *sv)
{
	size_t i;

	for (i = 0; i < sv->n; i++)
		free(sv->v[i]);
	free(sv->v);
	sv->v = NULL;
	sv->n = 0;
	sv->alloc = 0;
}

long strv_env_find(const struct strv *sv, const char *key)
{
	size_t i, k = strlen(key);

	for (i = 0; i < sv->n; i++)
		if (!strncmp(sv->v[i], key, k) && sv->v[i][k] == '=')
			return (long)i;
	return -1;
}

void strv_env_set(struct strv *sv, const char *key, const char *value)
{
	long i = strv_env_find(sv, key);
	char *p = xasprintf("%s=%s", key, value);

	if (i >= 0) {
		free(sv->v[i]);
		sv->v[i] = p;
		return;
	}
	strv_push(sv, p);
	free(p);
}

const char *strv_env_get(const struct strv *sv, const char *key)
{
	long i = strv_env_find(sv, key);

	return i < 0 ? NULL : strchr(sv->v[i], '=') + 1;
}

void strv_env_unset(struct strv *sv, const char *key)
{
	long i = strv_env_find(sv, key);

	if (i < 0)
		return;
	free(sv->v[i]);
	memmove(&sv->v[i], &sv->v[i + 1], (sv->n - (size_t)i) * sizeof(char *));
	sv->n--;
}

void strv_copy(struct strv *to, const struct strv *from)
{
	size_t i;

	for (i = 0; i < from->n; i++)
		strv_push(to, from->v[i]);
}

int base64_decode(struct buf *out, const char *in)
{
	static const char abc[] =
		"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	unsigned long acc = 0;
	int bits = 0;
	const char *p, *pos;
	size_t pad = 0;

	for (p = in; *p; p++) {
		if (*p == '=') {
			pad++;
			continue;
		}
		pos = pad ? NULL : strchr(abc, *p);
		if (!pos || !*p)
			return error_set("invalid base64 at character %zu",
					 (size_t)(p - in) + 1);
		acc = (acc << 6) | (unsigned long)(pos - abc);
		bits += 6;
		if (bits >= 8) {
			char ch = (char)((acc >> (bits - 8)) & 0xff);

			bits -= 8;
			buf_add(out, &ch, 1);
		}
	}
	if (pad > 2 || bits >= 6)
		return error_set("invalid base64: it ends short");
	buf_add(out, "", 1);
	out->len--;
	return 0;
}

static int cmp_int(const void *x, const void *y)
{
	int a = *(const int *)x, b = *(const int *)y;

	return (a > b) - (a < b);
}

size_t dir_numbers(const char *dir, int **out)
{
	DIR *dh = opendir(dir);
	struct dirent *de;
	size_t n = 0;

	*out = NULL;
	if (!dh)
		return 0;
	while ((de = readdir(dh))) {
		long v = parse_long(de->d_name, 1L << 30);

		if (v <= 0)
			continue;
		*out = xrealloc(*out, (n + 1) * sizeof(int));
		(*out)[n++] = (int)v;
	}
	closedir(dh);
	if (n)
		qsort(*out, n, sizeof(int), cmp_int);
	return n;
}
