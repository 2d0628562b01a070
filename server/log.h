/*
 * log: the daemon's own log (never the apps' logs: see logger.h).
 * Lines go to stderr, prefixed with the time and the process title.
 * All functions keep errno.  Only main() and child start-up call fatal().
 */
#ifndef BERTH_LOG_H
#define BERTH_LOG_H

/* verbose: 0 info, 1 debug. title: e.g. "engine", "session". */
void log_init(int verbose, const char *title);
void log_settitle(const char *title);
/*
 * A second destination for every line besides stderr (the engine's own
 * log file): fn gets "TITLE[PID]:" and the line, without time stamp or
 * newline.  Only the process that set it calls fn (a forked child that
 * logs writes to stderr alone), and never re-entered from fn.  NULL
 * removes it.
 */
typedef void (*log_sink_fn)(void *arg, const char *source, const char *line);
void log_set_sink(log_sink_fn fn, void *arg);
void log_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));	/* adds strerror */
void log_warnx(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_debug(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void fatal(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
void fatalx(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

#endif
