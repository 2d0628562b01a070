/*
 * routerlog: the router's log lines, from nginx's workers to the engine.
 *
 * nginx's workers keep one record per request of an app (server/
 * router.lua) and send them in batches, every 100 ms, over a unix stream
 * socket this module listens on.  A record is 13 fields separated by NUL
 * bytes and ended by a newline:
 *   APP METHOD URI HOST REQUEST_ID ADDR STATUS BYTES MS PROC PORT REL DENY
 * (DENY: "stopped", "noweb", ... when the router answered itself).  This
 * module turns each into Heroku's router line, for the app's log:
 *   at=info method=GET path="/" host=demo.example.com request_id=...
 *   fwd="1.2.3.4" dyno=web.1 port=20001 release=4 service=12ms
 *   status=200 bytes=1234 protocol=http
 * with at=error and code=/desc= for the router's own answers and for 502
 * and 504.  Path and host are quoted with \" and \\, and bytes outside
 * printable ASCII become \xHH.  Formatting here, in C, keeps the work per
 * request inside nginx small.
 *
 * Trust: the socket file is open to all (nginx's workers may run as
 * another user than the engine), but a connection is heard only if its
 * peer's uid (SO_PEERCRED, vouched for by the kernel) is the engine's or
 * the one given to routerlog_allow_uid() (nginx's workers:
 * router_worker_uid()); any other is closed at once.  Records that do
 * not parse (a bad app name, a field count or number that is wrong, a
 * record longer than ROUTERLOG_LINE_MAX) are dropped and counted.
 *
 * fn gets the lines of one read in one call (a batch); the strings are
 * borrowed for the call only.  Nothing here blocks.
 */
#ifndef BERTH_ROUTERLOG_H
#define BERTH_ROUTERLOG_H

#include <stddef.h>
#include <sys/types.h>

struct buf;
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
 * The parser, for the socket and for fuzzing: read whole records from
 * data[0..len) (at most max), formatting each line into out (which the
 * caller owns and may reuse; lines point into it until it changes).
 * Counts the bad ones in *bad and returns how many bytes it used (whole
 * records; the rest is an unfinished one), or len if an unfinished one is
 * already longer than ROUTERLOG_LINE_MAX (it is dropped and counted).
 */
size_t routerlog_parse(const char *data, size_t len,
		       struct routerlog_line *lines, size_t max, size_t *n,
		       unsigned long *bad, struct buf *out);

#endif
