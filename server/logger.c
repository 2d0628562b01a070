/* logger: see logger.h. */
#include "logger.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "client.h"
#include "log.h"
#include "banned.h"

#define LOG_KEEP 3
/* A follower that cannot keep up is dropped rather than growing memory. */
#define FOLLOWER_MAX_PENDING (4 * 1024 * 1024)
/* logger_read_after() reads no more in one go */
#define LOG_READ_MAX (16 * 1024 * 1024)

struct follower {
	struct client *c;
	struct follower *next;
	int ended;		/* answered (fell behind): drop it */
	char *want;		/* or NULL: every line */
};

struct logger {
	char *dir;
	char *path;
	int fd;
	long max_bytes;
	long size;
	struct follower *followers;
	int sending;		/* in log_one()'s walk of followers */
};

static int logger_reopen(struct logger *lg)
{
	struct stat st;

	if (lg->fd >= 0)
		close(lg->fd);
	lg->fd = open(lg->path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
	if (lg->fd < 0)
		return error_setsys("cannot open '%s'", lg->path);
	lg->size = fstat(lg->fd, &st) == 0 ? (long)st.st_size : 0;
	return 0;
}

struct logger *logger_open(const char *dir, long max_bytes)
{
	char *path = xasprintf("%s/app.log", dir);
	struct logger *lg;

	if (mkdir_p(dir, 0750) < 0) {
		free(path);
		return NULL;
	}
	lg = logger_open_file(path, max_bytes);
	free(path);
	return lg;
}

struct logger *logger_open_file(const char *path, long max_bytes)
{
	struct logger *lg;
	const char *slash = strrchr(path, '/');

	lg = xcalloc(1, sizeof(*lg));
	lg->dir = slash ? xstrndup(path, (size_t)(slash - path)) : xstrdup(".");
	lg->path = xstrdup(path);
	lg->fd = -1;
	lg->max_bytes = max_bytes;
	if (logger_reopen(lg) < 0) {
		free(lg->dir);
		free(lg->path);
		free(lg);
		return NULL;
	}
	return lg;
}

static void follower_closed(struct client *c, void *arg)
{
	logger_unfollow(arg, c);
}

void logger_end_followers(struct logger *lg)
{
	struct follower *f, *next;

	if (!lg)
		return;
	for (f = lg->followers; f; f = next) {
		next = f->next;
		client_on_close(f->c, NULL, NULL);
		client_ok(f->c);
		client_unref(f->c);
		free(f->want);
		free(f);
	}
	lg->followers = NULL;
}

void logger_free(struct logger *lg)
{
	if (!lg)
		return;
	logger_end_followers(lg);
	if (lg->fd >= 0)
		close(lg->fd);
	free(lg->dir);
	free(lg->path);
	free(lg);
}

static void rotate(struct logger *lg)
{
	char from[4096], to[4096];
	int i;

	for (i = LOG_KEEP - 1; i >= 1; i--) {
		snprintf(from, sizeof(from), "%s.%d", lg->path, i);
		snprintf(to, sizeof(to), "%s.%d", lg->path, i + 1);
		rename(from, to);
	}
	snprintf(to, sizeof(to), "%s.1", lg->path);
	if (rename(lg->path, to) < 0)
		log_warn("cannot rotate '%s'", lg->path);
	if (logger_reopen(lg) < 0)
		log_warnx("%s", error_last());
}

static void log_one(struct logger *lg, const char *source, const char *text,
		    size_t len);

void logger_line(struct logger *lg, const char *source, const char *text,
		 size_t len)
{
	const char *nl = memchr(text, '\n', len);

	if (!nl) {
		log_one(lg, source, text, len);
		return;
	}
	/* A message of several lines is several lines, never "\x0a". */
	for (; nl; nl = memchr(text, '\n', len)) {
		if (nl > text)
			log_one(lg, source, text, (size_t)(nl - text));
		len -= (size_t)(nl + 1 - text);
		text = nl + 1;
	}
	if (len)
		log_one(lg, source, text, len);
}

static void log_one(struct logger *lg, const char *source, const char *text,
		    size_t len)
{
	struct buf line = BUF_INIT;
	char stamp[32];
	struct follower *f, **pf;
	size_t i;

	time_iso(stamp, sizeof(stamp), time(NULL));
	buf_addf(&line, "%s %s ", stamp, source);
	for (i = 0; i < len; i++) {
		unsigned char ch = (unsigned char)text[i];

		if (ch == '\r' && i + 1 == len)
			break;
		if (ch < 0x20 && ch != '\t')
			buf_addf(&line, "\\x%02x", ch);
		else
			buf_add(&line, &text[i], 1);
	}
	if (lg->fd >= 0) {
		buf_add(&line, "\n", 1);
		if (write_all(lg->fd, line.data, line.len) < 0)
			log_warn("cannot write '%s'", lg->path);
		lg->size += (long)line.len;
		line.len--;
		line.data[line.len] = '\0';
		if (lg->size > lg->max_bytes)
			rotate(lg);
	}
	/*
	 * A write can find the follower gone and close it, whose close
	 * callback would unlink the follower under our feet: while we walk,
	 * logger_unfollow() leaves the list to us, and we drop whoever is
	 * gone after the write.
	 */
	lg->sending++;
	for (pf = &lg->followers; (f = *pf);) {
		if (!client_gone(f->c) &&
		    client_pending(f->c) > FOLLOWER_MAX_PENDING) {
			client_error(f->c, "log follower fell behind");
			f->ended = 1;
		} else if (!f->want ||
			   logger_source_matches(f->want, source,
						 strlen(source)))
			client_data(f->c, "%s", line.data);
		if (!client_gone(f->c) && !f->ended) {
			pf = &f->next;
			continue;
		}
		*pf = f->next;
		client_on_close(f->c, NULL, NULL);
		client_unref(f->c);
		free(f->want);
		free(f);
	}
	lg->sending--;
	buf_release(&line);
}

void logger_linef(struct logger *lg, const char *source, const char *fmt, ...)
{
	va_list ap;
	char *p;

	va_start(ap, fmt);
	p = xvasprintf(fmt, ap);
	va_end(ap);
	logger_line(lg, source, p, strlen(p));
	free(p);
}

int logger_source_matches(const char *want, const char *source,
			  size_t len)
{
	static const char *const scripts[] = { "release", "predeploy",
					       "postdeploy" };
	size_t k = strlen(want), i;

	/* every process of the app: not the router, berth, a build or a
	 * deploy script */
	if (!strcmp(want, "app")) {
		for (i = 0; i < ARRAY_SIZE(scripts); i++)
			if (len == strlen(scripts[i]) &&
			    !memcmp(source, scripts[i], len))
				return 0;
		return !(len == 6 && !memcmp(source, "router", 6)) &&
		       !(len == 5 && !memcmp(source, "berth", 5)) &&
		       !(len == 5 && !memcmp(source, "build", 5));
	}
	if (!strcmp(want, "release")) {
		for (i = 0; i < ARRAY_SIZE(scripts); i++)
			if (len == strlen(scripts[i]) &&
			    !memcmp(source, scripts[i], len))
				return 1;
		return 0;
	}
	if (len == k && !memcmp(source, want, k))
		return 1;
	/* a type: "web" takes web.1, web.2 ... */
	return len > k + 1 && !memcmp(source, want, k) && source[k] == '.' &&
		!memchr(want, '.', k);
}

const char *logger_line_source(const char *line, size_t *len)
{
	const char *s = strchr(line, ' '), *e;

	if (!s)
		return NULL;
	s++;
	e = strchr(s, ' ');
	*len = e ? (size_t)(e - s) : strlen(s);
	return s;
}

void logger_follow(struct logger *lg, struct client *c, const char *want)
{
	struct follower *f = xcalloc(1, sizeof(*f));

	client_ref(c);
	f->c = c;
	f->want = want ? xstrdup(want) : NULL;
	f->next = lg->followers;
	lg->followers = f;
	client_on_close(c, follower_closed, lg);
}

void logger_unfollow(struct logger *lg, struct client *c)
{
	struct follower *f, **pf;

	if (lg->sending)
		return;		/* log_one() drops it (c is gone) */
	for (pf = &lg->followers; (f = *pf); pf = &f->next) {
		if (f->c == c) {
			*pf = f->next;
			client_unref(c);
			free(f->want);
			free(f);
			return;
		}
	}
}

/* path opened to read: -1 when it is missing (errno ENOENT) or cannot
 * be opened (error set).  nonblock: a FIFO in its place does not hold
 * the caller up (the loop's reads); else it does, as any file read
 * there does: the tail, in a child but for short ones. */
static int open_log(const char *path, int nonblock, struct stat *st)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC | (nonblock ? O_NONBLOCK : 0));

	if (fd < 0) {
		if (errno != ENOENT)
			error_setsys("cannot open '%s'", path);
		return -1;
	}
	if (fstat(fd, st) < 0) {
		error_setsys("cannot stat '%s'", path);
		close(fd);
		errno = EIO;
		return -1;
	}
	return fd;
}

/*
 * The last n lines of the open file fd (of size bytes: what was there
 * when it was opened) into out; *taken says how many lines that was
 * (fewer when the file is shorter).  A file that is not a regular one
 * (a FIFO has no size) is empty.
 */
static int tail_file(int fd, off_t size, const char *path, long n,
		     struct buf *out, long *taken)
{
	off_t pos;
	long lines = 0;
	char chunk[8192];
	off_t start = 0;

	*taken = 0;
	pos = size;
	/* Scan backwards for n+1 newlines (the last byte is a newline). */
	while (pos > 0 && n > 0) {
		size_t want = pos > (off_t)sizeof(chunk) ? sizeof(chunk) : (size_t)pos;
		ssize_t got;
		ssize_t i;

		pos -= (off_t)want;
		got = pread(fd, chunk, want, pos);
		if (got != (ssize_t)want)
			return error_setsys("cannot read '%s'", path);
		for (i = got - 1; i >= 0; i--) {
			if (chunk[i] != '\n' || pos + i == size - 1)
				continue;
			if (++lines == n) {
				start = pos + i + 1;
				goto found;
			}
		}
	}
	/* The whole file: one more line than the newlines before its end. */
	start = 0;
	if (size > 0)
		lines++;
found:
	if (n > 0) {
		off_t at = start;

		while (at < size) {
			size_t want = size - at > (off_t)sizeof(chunk) ?
				sizeof(chunk) : (size_t)(size - at);
			ssize_t got = pread(fd, chunk, want, at);

			if (got <= 0)
				break;
			buf_add(out, chunk, (size_t)got);
			at += got;
		}
		*taken = lines;
	}
	return 0;
}

/*
 * The current file first; when it holds fewer than n lines (it was just
 * rotated), the rest comes from the rotated one, older lines first.
 */
int logger_tail(const char *dir, long n, struct buf *out)
{
	return logger_tail_at(dir, n, out, NULL);
}

int logger_tail_at(const char *dir, long n, struct buf *out,
		   struct logger_pos *end)
{
	char *path = xasprintf("%s/app.log", dir);
	int ret = logger_tail_file_at(path, n, out, end);

	free(path);
	return ret;
}

int logger_tail_file(const char *path, long n, struct buf *out)
{
	return logger_tail_file_at(path, n, out, NULL);
}

/*
 * Both files are opened before either is read, the current one first:
 * its size is where the tail ends.  A rotation in between makes the
 * "older" file the one just opened (same identity): the older one is
 * then path.2.
 */
int logger_tail_file_at(const char *path, long n, struct buf *out,
			struct logger_pos *end)
{
	char *old_path = xasprintf("%s.1", path);
	struct buf cur = BUF_INIT;
	struct stat st, old_st;
	long taken = 0, old_taken = 0;
	int fd, old_fd = -1, ret = -1;

	memset(&st, 0, sizeof(st));
	fd = open_log(path, 0, &st);
	if (fd < 0 && errno != ENOENT)
		goto out;
	if (fd < 0)
		memset(&st, 0, sizeof(st));
	if (end) {
		end->dev = st.st_dev;
		end->ino = st.st_ino;
		end->off = S_ISREG(st.st_mode) ? st.st_size : 0;
	}
	if (!S_ISREG(st.st_mode))
		st.st_size = 0;
	if (fd >= 0 && tail_file(fd, st.st_size, path, n, &cur, &taken) < 0)
		goto out;
	if (taken < n) {
		old_fd = open_log(old_path, 0, &old_st);
		if (old_fd >= 0 && fd >= 0 && old_st.st_dev == st.st_dev &&
		    old_st.st_ino == st.st_ino) {
			close(old_fd);
			free(old_path);
			old_path = xasprintf("%s.2", path);
			old_fd = open_log(old_path, 0, &old_st);
		}
		if (old_fd < 0 && errno != ENOENT)
			goto out;
		if (old_fd >= 0 &&
		    tail_file(old_fd, S_ISREG(old_st.st_mode) ?
			      old_st.st_size : 0, old_path, n - taken, out,
			      &old_taken) < 0)
			goto out;
	}
	if (cur.len)
		buf_add(out, cur.data, cur.len);
	ret = 0;
out:
	if (fd >= 0)
		close(fd);
	if (old_fd >= 0)
		close(old_fd);
	buf_release(&cur);
	free(old_path);
	return ret;
}

static int same_file(const struct logger_pos *pos, const struct stat *st)
{
	return S_ISREG(st->st_mode) && pos->dev == st->st_dev &&
		pos->ino == st->st_ino;
}

/*
 * The identity can lie: a file rotated out is deleted, and a newer one
 * may get its inode number.  A place that is ours ends a line within
 * the file; one that does not is taken for a file rotated out.
 */
static int pos_plausible(int fd, const struct stat *st,
			 const struct logger_pos *pos)
{
	char c;

	if (pos->off > st->st_size)
		return 0;
	return pos->off == 0 ||
		(pread(fd, &c, 1, pos->off - 1) == 1 && c == '\n');
}

/* The kept file k of lg (0: lg->path, k: lg->path.k) opened to read, a
 * regular file; -1 if there is none. */
static int open_kept(const struct logger *lg, int k, struct stat *st)
{
	char *path = k ? xasprintf("%s.%d", lg->path, k) : xstrdup(lg->path);
	int fd = open_log(path, 1, st);

	free(path);
	if (fd >= 0 && !S_ISREG(st->st_mode)) {
		close(fd);
		fd = -1;
	}
	return fd;
}

/*
 * Where pos is now: the kept file with its identity (its index in *k),
 * or else the oldest kept file, from its start (pos's file was rotated
 * out, or there was none: every kept file is newer).  -1 if there is
 * none but the current one, which the caller reads then.
 */
static int find_pos(const struct logger *lg, struct logger_pos *pos,
		    struct stat *st, int *k)
{
	int fd, i, oldest = -1;

	for (i = 1; i <= LOG_KEEP; i++) {
		fd = open_kept(lg, i, st);
		if (fd < 0)
			continue;
		if (same_file(pos, st) && pos_plausible(fd, st, pos)) {
			*k = i;
			return fd;
		}
		close(fd);
		oldest = i;
	}
	if (oldest < 0)
		return -1;
	fd = open_kept(lg, oldest, st);
	if (fd < 0)
		return -1;
	pos->dev = st->st_dev;
	pos->ino = st->st_ino;
	pos->off = 0;
	*k = oldest;
	return fd;
}

int logger_read_after(struct logger *lg, struct logger_pos *pos, size_t max,
		      struct buf *out)
{
	struct stat cur, st;
	size_t added = 0;
	int fd = -1, k, round, ret = 0;

	if (!lg || lg->fd < 0 || fstat(lg->fd, &cur) < 0)
		return 1;	/* nothing is written: nothing to catch up */
	for (round = 0; round <= LOG_KEEP && added < max; round++) {
		off_t left;
		size_t want, took;
		ssize_t got;
		char *nl, *chunk;

		if (same_file(pos, &cur)) {
			k = 0;
			fd = open_kept(lg, 0, &st);
			if (fd < 0 || !same_file(pos, &st)) {
				/* moved away under us: follow from now */
				ret = 1;
				break;
			}
			if (!pos_plausible(fd, &st, pos)) {
				/* not ours: ours was rotated out */
				close(fd);
				fd = -1;
				pos->dev = 0;
				pos->ino = 0;
				pos->off = 0;
				continue;
			}
		} else {
			fd = find_pos(lg, pos, &st, &k);
			if (fd < 0) {
				pos->dev = cur.st_dev;
				pos->ino = cur.st_ino;
				pos->off = 0;
				continue;
			}
		}
		left = st.st_size > pos->off ? st.st_size - pos->off : 0;
		want = max - added;
		if (left < (off_t)want)
			want = (size_t)left;
		if (want > LOG_READ_MAX)
			want = LOG_READ_MAX;
		chunk = xmalloc(want ? want : 1);
		got = want ? pread(fd, chunk, want, pos->off) : 0;
		if (got < 0) {
			free(chunk);
			ret = error_setsys("cannot read '%s'", lg->path);
			break;
		}
		took = (size_t)got;
		/* whole lines, unless one line alone is longer than max */
		if ((off_t)took < left) {
			nl = memrchr(chunk, '\n', took);
			if (nl)
				took = (size_t)(nl + 1 - chunk);
			else if (added)
				took = 0;
		}
		buf_add(out, chunk, took);
		free(chunk);
		added += took;
		pos->off += (off_t)took;
		if (pos->off < st.st_size)
			break;		/* max reached: more next time */
		if (k == 0) {
			ret = 1;	/* the end of what is written now */
			break;
		}
		/* the end of a rotated file: the next newer one, from its
		 * start */
		close(fd);
		fd = k == 1 ? -1 : open_kept(lg, k - 1, &st);
		if (fd >= 0) {
			pos->dev = st.st_dev;
			pos->ino = st.st_ino;
		} else {
			pos->dev = cur.st_dev;
			pos->ino = cur.st_ino;
		}
		pos->off = 0;
		if (fd >= 0) {
			close(fd);
			fd = -1;
		}
	}
	if (fd >= 0)
		close(fd);
	return ret;
}

int logger_tail_source(const char *dir, long n, const char *source,
		       struct buf *out)
{
	struct buf all = BUF_INIT, line = BUF_INIT;
	size_t start, end, i, len;
	const char *src;
	long kept = 0;

	if (!source)
		return logger_tail(dir, n, out);
	/* Read back as far as a tail goes, then keep source's newest n,
	 * moved (newest last) to the end of the buffer. */
	if (logger_tail(dir, 100000, &all) < 0) {
		buf_release(&all);
		return -1;
	}
	start = end = all.len;
	while (end > 0 && kept < n) {
		i = end - 1;	/* end - 1: the line's newline, or its end */
		while (i > 0 && all.data[i - 1] != '\n')
			i--;
		buf_reset(&line);
		buf_add(&line, all.data + i, end - i);
		src = logger_line_source(line.data, &len);
		if (src && logger_source_matches(source, src, len)) {
			start -= end - i;
			memmove(all.data + start, line.data, end - i);
			kept++;
		}
		end = i;
	}
	buf_add(out, all.data + start, all.len - start);
	buf_release(&line);
	buf_release(&all);
	return 0;
}
