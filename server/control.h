/*
 * control: the engine's request protocol over a unix socket, and the
 * client side used by the CLI and by SSH sessions.
 *
 * Request: one line, at most CONTROL_LINE_MAX bytes, the words of a
 * command separated by single spaces.  Each word is percent-encoded:
 * bytes outside [A-Za-z0-9._,:/@+=^~-] become %XX, so a word never holds a
 * space, a newline or a NUL, and "logs myapp -n 100" reads as itself.
 *
 * Response: lines.  The last one is "ok" or "error: MESSAGE", then the
 * engine closes the connection.  A data line that would read as one of
 * those (or starts with a backslash) is sent with a leading backslash,
 * which the client removes.
 */
#ifndef BERTH_CONTROL_H
#define BERTH_CONTROL_H

#include <stddef.h>

#include "util.h"

#define CONTROL_LINE_MAX 16384
#define CONTROL_MAX_WORDS 256
#define CONTROL_SOCKET "run/berth.sock"	/* under the state directory */

/* Split and decode a request line (without its newline) into argv.
 * Fails on an empty line, bad escapes, NUL bytes or too many words. */
int control_parse_request(struct strv *argv, const char *line, size_t len);
/* Encode argv as one request line, newline included. */
void control_encode_request(struct buf *out, int argc, char *const *argv);
/* Append a response data line (escaped as needed, newline added). */
void control_encode_data(struct buf *out, const char *line, size_t len);

enum control_kind {
	CONTROL_DATA,
	CONTROL_OK,
	CONTROL_ERROR,	/* text is the message after "error: " */
};

/* Incremental response reader: feed bytes, get whole lines. */
struct control_reader {
	struct buf in;
};
typedef int (*control_line_fn)(void *arg, enum control_kind kind,
			       const char *text);
void control_reader_init(struct control_reader *r);
/* Calls fn for each complete line; stops and returns fn's value if it is
 * non-zero.  -1 if a line exceeds the limit. */
int control_reader_feed(struct control_reader *r, const char *data,
			size_t len, control_line_fn fn, void *arg);
void control_reader_release(struct control_reader *r);

/* 1 if an error message is about usage (exit status 100 for the CLI and
 * over SSH): it starts with "usage: " or "unknown command ". */
int control_error_is_usage(const char *msg);

/* Connect to ROOT/run/berth.sock; a CLOEXEC blocking fd, or -1. */
int control_connect(const char *root);

/*
 * Send one request and read the response to its end, calling fn for each
 * line (data lines and the final one).  Returns 0 on "ok", 1 on "error:"
 * (message in *errmsg if given, caller frees), -1 when the engine could
 * not be reached or hung up early (error_last()).
 */
int control_call(const char *root, int argc, char *const *argv,
		 control_line_fn fn, void *arg, char **errmsg);

#endif
