/*
 * logger: one log per app, ROOT/logs/NAME/app.log, surviving deploys and
 * engine restarts.  Each line: "2026-11-21T23:00:00Z web.1 text".
 * Rotated by size to app.log.1 .. app.log.3.  Followers ("logs -f")
 * get every new line as it is written.
 */
#ifndef BERTH_LOGGER_H
#define BERTH_LOGGER_H

#include <stddef.h>
#include <sys/types.h>

#include "util.h"

struct client;
struct logger;

/* dir is created if needed. */
struct logger *logger_open(const char *dir, long max_bytes);
/* The same for a log at path (its folder must exist), rotated to
 * path.1 .. path.3: the engine's own log. */
struct logger *logger_open_file(const char *path, long max_bytes);
/* Ends every follower with "ok". */
void logger_free(struct logger *lg);
/* Append text: one line per '\n'-separated part (other control chars
 * are escaped, a trailing '\r' dropped). */
void logger_line(struct logger *lg, const char *source, const char *text,
		 size_t len);
void logger_linef(struct logger *lg, const char *source, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* Follow the log: each new line to c.  want (copied; NULL: every line)
 * keeps only the lines logger_source_matches() takes. */
void logger_follow(struct logger *lg, struct client *c, const char *want);
/* 1 if a line from 'source' is what 'want' asks for: the process itself
 * ("web.1", "router", "berth"), "app" for every process (neither
 * router nor berth), its type ("web" for web.N, "cron" for cron.N, "run" for
 * run.N), or "release" for the deploy scripts (release, predeploy,
 * postdeploy). */
int logger_source_matches(const char *want, const char *source,
			  size_t len);
/* The source field of a log line ("STAMP SOURCE text"): *len bytes at
 * the return value; NULL if the line has none. */
const char *logger_line_source(const char *line, size_t *len);
/* Each follower gets its "ok" and is let go; the log stays open. */
void logger_end_followers(struct logger *lg);
void logger_unfollow(struct logger *lg, struct client *c);
/* The last n lines of the log in dir (n <= 100000). */
int logger_tail(const char *dir, long n, struct buf *out);
/*
 * A place in a log: a file (its identity, st_dev and st_ino, which
 * rotation keeps) and a byte offset in it.
 */
struct logger_pos {
	dev_t dev;
	ino_t ino;
	off_t off;
};
/* logger_tail(), and in *end (NULL: not asked) where the tail ended: the
 * current file and its size when the tail was read (dev and ino 0 when
 * there was none).  A tail read by a child, then followed from *end by
 * logger_read_after(), misses no line and repeats none. */
int logger_tail_at(const char *dir, long n, struct buf *out,
		   struct logger_pos *end);
int logger_tail_file_at(const char *path, long n, struct buf *out,
			struct logger_pos *end);
/*
 * The lines lg wrote after *pos, at most max bytes of them (whole lines,
 * unless a line is longer), appended to out; *pos moves past them, across
 * rotations (on to the next newer file; a file rotated out of the kept
 * ones is skipped to the oldest kept, from its start).  1 when *pos is
 * at the end of what lg has written: a logger_follow() in the same turn
 * of the loop then misses no line and repeats none; 0 when there is
 * more; -1 with error_last().  Reads at most max bytes (of the page cache,
 * mostly), opens nothing that can block (O_NONBLOCK, regular files only):
 * for the loop.
 */
int logger_read_after(struct logger *lg, struct logger_pos *pos, size_t max,
		      struct buf *out);
/* The last n lines that 'source' wants (logger_source_matches()). */
int logger_tail_source(const char *dir, long n, const char *source,
		       struct buf *out);
int logger_tail_file(const char *path, long n, struct buf *out);

#endif
