/*
 * routerlog: the router's log lines, from nginx's workers to the engine.
 *
 * nginx's workers keep one line per request of an app, in Heroku's router
 * format (server/router.lua: at=info method=GET path="/" host=...
 * dyno=web.1 port=20001 release=4 connect=0ms service=12ms status=200
 * bytes=1234 protocol=http), and send them in batches, every 100 ms,
 * over a unix stream socket this module listens on.  On the wire each
 * line is "APP\tTEXT\n"; TEXT is printable ASCII (the router escapes the
 * rest as \xHH).
 *
 * Trust: the socket file is open to all (nginx's workers may run as
 * another user than the engine), but a connection is heard only if its
 * peer's uid (SO_PEERCRED, vouched for by the kernel) is the engine's or
 * the one given to routerlog_allow_uid() (nginx's workers:
 * router_worker_uid()); any other is closed at once.  Lines that do not
 * parse (bad app name, control bytes, longer than ROUTERLOG_LINE_MAX)
 * are dropped and counted.
 *
 * fn gets the lines of one read in one call (a batch); the strings are
 * borrowed for the call only.  Nothing here blocks.
 */
#ifndef BERTH_ROUTERLOG_H
#define BERTH_ROUTERLOG_H

#include <stddef.h>
#include <sys/types.h>

struct loop;
struct routerlog;

#define ROUTERLOG_LINE_MAX 8192

struct routerlog_line {
	const char *app;	/* a valid app name */
	const char *text;	/* the line, without app and newline */
	size_t len;
};

typedef void (*routerlog_fn)(void *arg, const struct routerlog_line *lines,
			     size_t n);

struct routerlog_stats {
	unsigned long lines;	/* handed to fn */
	unsigned long bad;	/* dropped: did not parse */
	unsigned long refused;	/* connections from a uid not allowed */
};

/* Listen on path (an old socket file there is replaced). */
int routerlog_open(struct routerlog **out, struct loop *l, const char *path,
		   routerlog_fn fn, void *arg);
/* Hear this uid too (nginx's workers); -1 for none. */
void routerlog_allow_uid(struct routerlog *rl, long uid);
void routerlog_get_stats(const struct routerlog *rl,
			 struct routerlog_stats *out);
/* Stop listening, close every connection, remove the socket file. */
void routerlog_free(struct routerlog *rl);

/*
 * The parser, for the socket and for fuzzing: split data[0..len) into
 * lines, writing NULs into data.  Fills lines (at most max), counts the
 * bad ones in *bad, and returns how many bytes it used (whole lines; the
 * rest is an unfinished line), or len if an unfinished line is already
 * longer than ROUTERLOG_LINE_MAX (it is dropped and counted).  Stops
 * early when lines is full.
 */
size_t routerlog_parse(char *data, size_t len, struct routerlog_line *lines,
		       size_t max, size_t *n, unsigned long *bad);

#endif
