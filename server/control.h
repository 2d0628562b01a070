/*
 * control: the engine's request protocol over a unix socket, and the
 * client side used by the CLI and by SSH sessions.
 *
 * Request: one line, at most CONTROL_LINE_MAX bytes, the words of a
 * command separated by single spaces.  Each word is percent-encoded:
 * bytes outside [A-Za-z0-9._,:/@+=^~-] become %XX, so a word never holds a
 * space, a newline or a NUL, and "logs myapp -n 100" reads as itself.
 *
 * Response: lines.  Data lines are for people and no program reads
 * meaning from their words.  Data for programs comes on typed lines: a
 * command that runs a while may send fields before its end,
 *
 *   fields KEY=VALUE ...        data for programs, not the end (a
 *                               deploy: "fields release=5" once the
 *                               number of its release is known)
 *
 * and the last line is typed, then the engine closes the connection:
 *
 *   ok                          done
 *   ok KEY=VALUE ...            done, with data for programs
 *                               (a deploy: "ok release=5")
 *   error: MESSAGE              failed, MESSAGE for people
 *   error CODE: MESSAGE         failed, and CODE ([a-z]+) says how for
 *                               programs ("error notfound: app 'x' does
 *                               not exist")
 *
 * A data line that would read as one of those (it is "ok", starts with
 * "ok ", "fields " or "error", or with a backslash) is sent with a
 * leading backslash, which the client removes.  Readers for people show
 * data lines and the message of an error, never fields.
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
	CONTROL_OK,	/* text is the KEY=VALUE fields, "" if none */
	CONTROL_ERROR,	/* text is the message after "error: " or
			 * "error CODE: " */
	CONTROL_FIELDS,	/* not the end: text is the KEY=VALUE fields of a
			 * "fields" line (control_field_long() reads them) */
};

/* Error codes of the last line (a message without one is a plain
 * failure). */
#define CONTROL_ERR_NOTFOUND "notfound"	/* the app (or release) named
					 * does not exist */
#define CONTROL_ERR_USAGE "usage"	/* the words are no command, or not
					 * its arguments: the message is
					 * "usage: ..." or "unknown command
					 * ..." */
#define CONTROL_CODE_MAX 32

/* Incremental response reader: feed bytes, get whole lines. */
struct control_reader {
	struct buf in;
	char code[CONTROL_CODE_MAX];	/* of the last error line read, or "" */
};
typedef int (*control_line_fn)(void *arg, enum control_kind kind,
			       const char *text);
void control_reader_init(struct control_reader *r);
/* Calls fn for each complete line; stops and returns fn's value if it is
 * non-zero.  -1 if a line exceeds the limit. */
int control_reader_feed(struct control_reader *r, const char *data,
			size_t len, control_line_fn fn, void *arg);
void control_reader_release(struct control_reader *r);

/* The value of KEY in the fields of an ok or fields line ("release=5
 * x=y") as a number >= 0, or -1 if it is not there (or not a number). */
long control_field_long(const char *fields, const char *key);
/* The value of KEY as a string into out (size bytes with its NUL): 0, or
 * -1 if it is not there or does not fit. */
int control_field(const char *fields, const char *key, char *out,
		  size_t size);

/* A field's value that may hold any byte but NUL (a config var's
 * value): appended to out with each byte up to a space, '%' and DEL as
 * %XX, so it holds no space or newline. */
void control_field_encode(struct buf *out, const char *value);
/* " KEY=VALUE" appended to out (a fields line being built), the value
 * encoded as control_field_encode() does; NULL or "" is sent as "-". */
void control_field_add(struct buf *out, const char *key, const char *value);
/* The value of KEY, decoded from control_field_encode(), into out
 * (reset first): 0, or -1 if it is not there or badly encoded. */
int control_field_decode(const char *fields, const char *key,
			 struct buf *out);

/* The exit status of a command that ended with "error CODE: ..." (code
 * "" for a plain "error: ..."), for the CLI and over SSH: 100 for
 * CONTROL_ERR_USAGE, else 1. */
int control_error_status(const char *code);

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

/* What a call ended with, for programs: control_call_result() fills it;
 * control_result_release() frees its strings. */
struct control_result {
	char *fields;			/* of "ok ...", "" if none */
	char code[CONTROL_CODE_MAX];	/* of "error CODE: ...", "" if none */
	char *message;			/* of an error */
};
/* control_call(), keeping the last line's data in *res (released by the
 * caller, also on failure). */
int control_call_result(const char *root, int argc, char *const *argv,
			control_line_fn fn, void *arg,
			struct control_result *res);
void control_result_release(struct control_result *res);

/*
 * Send one request on fd (from control_connect()), with up to 3
 * descriptors passed along (SCM_RIGHTS; the caller keeps its own
 * copies).  0, or -1 with error_last().
 */
int control_send_request(int fd, int argc, char *const *argv,
			 const int *fds, size_t nfds);
/* control_call_result(), passing fds with the request ("run": the
 * command's stdin, stdout and stderr). */
int control_call_fds(const char *root, int argc, char *const *argv,
		     const int *fds, size_t nfds, control_line_fn fn,
		     void *arg, struct control_result *res);

#endif
