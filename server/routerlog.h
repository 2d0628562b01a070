/*
 * routerlog: the router's log lines, from nginx's workers to the engine.
 *
 * nginx's workers keep one record per request of an app (server/
 * router.lua: own mode's answer listener, for the router's own answers
 * and static releases, and system mode's public listener) and send them
 * in batches, every 100 ms, over a unix stream socket this module
 * listens on.  Own mode's public listeners write nginx's access_log
 * instead (below; router.c reads it).  A record is 13 fields separated
 * by NUL bytes and ended by a newline:
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
	int status;		/* its HTTP status, for the stats */
	long service_ms;	/* its service time */
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

/*
 * nginx's own access_log line for a routed request (the router's log
 * without a Lua log phase, docs/bench.md): log_format ROUTERLOG_ACCESS_
 * FORMAT with escape=none, ten fields separated by tabs.  nginx answers
 * 400 to a tab, CR, LF or NUL in a request line or a Host, so no field
 * holds a separator; the URI comes last and takes the rest of the line.
 * Bytes of the URI and host are kept as they are (the formatter quotes
 * and escapes them).  router.c reads them (router_log_start()).
 */
#define ROUTERLOG_ACCESS_FORMAT \
	"$host\t$upstream_addr\t$status\t$body_bytes_sent\t$request_time\t" \
	"$msec\t$request_method\t$request_id\t$remote_addr\t$request_uri"

struct routerlog_access {
	const char *host;	/* not NUL-terminated: host_len bytes */
	size_t host_len;
	int port;		/* the last peer of $upstream_addr if it is
				 * 127.0.0.1:PORT (a routed process), else 0
				 * (the answer listener, no peer) */
	int status;		/* three digits: 000 when nginx sent none */
	long bytes;		/* body bytes sent */
	long ms;		/* $request_time, in milliseconds */
	long long end_ms;	/* $msec: when it ended (its line was
				 * written), ms since the epoch */
	const char *method;	/* the rest as host: pointer and length */
	size_t method_len;
	const char *id;
	size_t id_len;
	const char *addr;
	size_t addr_len;
	const char *uri;
	size_t uri_len;
};

/*
 * Parse one line (without its newline) of len bytes.  0, or -1 if it is
 * not such a line (field count, a number, a method, request id or address
 * that is not one word, an empty URI, longer than ROUTERLOG_LINE_MAX).
 * The pointers in a point into line.
 */
int routerlog_access_parse(const char *line, size_t len,
			   struct routerlog_access *a);

/*
 * The record routerlog_parse() takes (the format of the Lua router's
 * lines) for a parsed line, once the caller knows whose it is: app,
 * process proc ("web.1", "static"), release rel, deny ("" or "stopped",
 * "noweb", ...).  Appended to rec, newline included.
 */
void routerlog_access_record(const struct routerlog_access *a,
			     const char *app, const char *proc, int rel,
			     const char *deny, struct buf *rec);

#endif
