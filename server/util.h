/*
 * util: small helpers every subsystem uses.
 *
 * Errors: a function that fails returns -1 (or a named negative code) and
 * describes the failure with error_set(); the caller reads it with
 * error_last() and passes it up unchanged.  The text is one line, lower
 * case, no full stop, subject in quotes: "cannot open 'app.yaml'".
 *
 * Memory: x*alloc() abort on out-of-memory; the caller frees with free().
 */
#ifndef BERTH_UTIL_H
#define BERTH_UTIL_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#define FREE_AND_NULL(p) do { free(p); (p) = NULL; } while (0)

/* Longest app name; names are [a-z0-9-], not starting or ending with '-'. */
#define APP_NAME_MAX 63

enum {
	ERR_NOTFOUND = -2,	/* the named thing does not exist */
	ERR_EXISTS = -3,	/* it already exists */
	ERR_INVALID = -4,	/* bad input from the user */
	ERR_BUSY = -5,		/* try again later */
	ERR_TOOBIG = -6,	/* larger than the limit it is read with */
	ERR_USAGE = -7,		/* the words do not fit the command: the
				 * error is its usage ("usage: ...") */
};

/* Record the last error (printf-style) and return -1. */
int error_set(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Same, with ": strerror(errno)" appended. */
int error_setsys(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* The last error's text; never NULL ("" if none). Borrowed. */
const char *error_last(void);
void error_clear(void);

void *xmalloc(size_t n);
void *xcalloc(size_t nmemb, size_t size);
void *xrealloc(void *p, size_t n);
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t n);
/* printf into a fresh string the caller frees. */
char *xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
char *xvasprintf(const char *fmt, va_list ap) __attribute__((format(printf, 1, 0)));
/* The value of a hex digit, or -1. */
int hex_value(char c);

/*
 * Growable byte buffer, always NUL-terminated: data is never NULL once
 * made by BUF_INIT or buf_init() (an empty buffer points at a shared "",
 * which nobody writes: alloc 0 means it owns no memory), so b.data is a
 * string to read as is.  A struct zeroed by memset() is also usable (its
 * first append allocates) but its data is NULL until then.  'max' 0
 * means unbounded; otherwise an append that would pass 'max' fails with
 * -1 (for buffers fed from outside).  buf_release() frees and leaves an
 * empty buffer; buf_detach() hands the string (always malloc'd) to the
 * caller.  Allocation failure aborts (xmalloc).
 */
struct buf {
	char *data;
	size_t len;
	size_t alloc;
	size_t max;
};
extern char buf_empty_[1];
#define BUF_INIT { buf_empty_, 0, 0, 0 }
void buf_init(struct buf *b, size_t max);
int buf_add(struct buf *b, const void *data, size_t len);
int buf_addstr(struct buf *b, const char *s);
int buf_addf(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void buf_consume(struct buf *b, size_t n);	/* drop n bytes from the front */
void buf_reset(struct buf *b);
void buf_release(struct buf *b);
char *buf_detach(struct buf *b);		/* caller frees; buffer is reset */

/* 1 if 'name' is a valid app name, else 0. */
int app_name_valid(const char *name);
/* 1 if 'key' is a valid config var name ([A-Za-z_][A-Za-z0-9_]*), else 0. */
int env_key_valid(const char *key);
/* 1 if the environment name is one berth sets for every process (PORT,
 * DYNO, BERTH_*): manifests (manifest.h, appjson.h) cannot give it. */
int manifest_env_reserved(const char *key);
/* 1 if 'type' is a valid process type name ([a-z0-9_-]{1,32}). */
int proc_type_valid(const char *type);

/* Milliseconds on the monotonic clock. */
int64_t now_ms(void);
/* UTC time as 2026-11-21T23:00:00Z into out (at least 21 bytes). */
void time_iso(char *out, size_t len, time_t t);

/* Make a directory and its parents (mode for each new one). */
int mkdir_p(const char *path, mode_t mode);
/* Remove a tree; a missing path is fine.  Does not follow symlinks. */
int rm_rf(const char *path);
/*
 * Write data to path atomically: path.new, fsync, rename, fsync the
 * directory.  mode is the file's mode.
 */
int write_file_atomic(const char *path, const void *data, size_t len, mode_t mode);
/*
 * Finish a file written under a temporary name: fsync and close fd (always
 * closed), rename tmp to path, fsync the folder.  On failure tmp is left
 * for the caller to unlink.
 */
int file_commit(int fd, const char *tmp, const char *path);
/* Read a whole file (at most max bytes, else error). NUL-terminated. */
int read_file(struct buf *out, const char *path, size_t max);
/* Copy a file (for bundles from outside the state directory). */
int copy_file(const char *from, const char *to, mode_t mode);
int path_exists(const char *path);

int set_cloexec(int fd);
int set_nonblock(int fd);
/* write() all of it, retrying on EINTR/short writes; blocking fds only. */
int write_all(int fd, const void *data, size_t len);

/* Parse a non-negative decimal integer (whole string), -1 if not one. */
long parse_long(const char *s, long max);

/* The next token of *cursor, delimited by any byte of delims (runs of them
 * count as one, leading ones are skipped); the delimiter after it is
 * overwritten with NUL and *cursor moves past it.  NULL when no token is
 * left (or *cursor is NULL).  The state lives in the caller's cursor, so
 * loops nest (strtok and strtok_r are banned, see banned.h). */
char *str_token(char **cursor, const char *delims);
/* The entries of dir named by a positive number ("3", not "3.meta"),
 * ascending, into *out (malloc'd, NULL when none); their count.  A
 * folder that cannot be read has none. */
size_t dir_numbers(const char *dir, int **out);
/* Parse a duration "2", "2s", "500ms", "1.5s", "1m" into ms; -1 if bad. */
long parse_duration_ms(const char *s);

/* A NULL-terminated string vector that owns its strings. */
struct strv {
	char **v;
	size_t n;
	size_t alloc;
};
#define STRV_INIT { NULL, 0, 0 }
void strv_push(struct strv *sv, const char *s);	/* copies s */
void strv_pushf(struct strv *sv, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void strv_release(struct strv *sv);
/* Find "KEY=" in an env vector; the index or -1. */
long strv_env_find(const struct strv *sv, const char *key);
/* Set KEY=VALUE in an env vector, replacing an existing entry. */
void strv_env_set(struct strv *sv, const char *key, const char *value);
/* The value of KEY in an env vector (borrowed), or NULL. */
const char *strv_env_get(const struct strv *sv, const char *key);
/* Remove KEY from an env vector, if there. */
void strv_env_unset(struct strv *sv, const char *key);
/* Push a copy of every string of from onto to. */
void strv_copy(struct strv *to, const struct strv *from);

/* Standard base64 (RFC 4648, '=' padding optional, no line breaks) into
 * out, NUL-terminated; -1 (ERR_INVALID) on any other character. */
int base64_decode(struct buf *out, const char *in);

#endif
