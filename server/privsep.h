/*
 * privsep: the two halves of an SSH session process as root (OpenSSH's
 * privilege separation).  The process the engine started (root, "the
 * monitor") loads the host keys, forks, and its child drops for good to
 * berth-ssh before it reads a byte from the client: libssh's key exchange,
 * authentication and the channel's requests run there.  The child asks the
 * monitor, over a SOCK_SEQPACKET socketpair, whether a public key may log
 * in, and once authenticated hands it the request it parsed from the
 * client's command (the root half reads no command line) and relays the
 * channel's bytes (session.c says what each message means).
 *
 * These are the pieces both halves share: whole messages of one type byte
 * and a payload, and the drop.  Everything blocks (up to timeout_ms).
 */
#ifndef BERTH_PRIVSEP_H
#define BERTH_PRIVSEP_H

#include <stddef.h>
#include <sys/types.h>

struct appuser;
struct buf;

/* the largest payload of one message */
#define PRIVSEP_MSG_MAX (64 * 1024)

/* A connected pair (SOCK_SEQPACKET, close-on-exec): 0 or -1. */
int privsep_pair(int sv[2]);

/*
 * One message.  flags 0 blocks; MSG_DONTWAIT returns ERR_BUSY when the
 * peer has not taken enough yet.  -1 (error set) when the peer is gone.
 */
int privsep_send(int fd, char type, const void *data, size_t len, int flags);

/*
 * The next message: 1 with *type, the payload in buf (NUL-terminated,
 * buf holds PRIVSEP_MSG_MAX + 1 bytes) and its length in *len; 0 when
 * nothing came within timeout_ms (-1: wait for ever); -1 at the peer's end
 * or on an error (a message too long counts as one).
 */
int privsep_recv(int fd, char *type, char *buf, size_t *len, int timeout_ms);

/*
 * The request message ('r'): what the client asked for, parsed by the
 * berth-ssh half (which splits the exec command into words and knows a
 * git service from an engine command), so that the root half reads no
 * command line.  NUL-separated fields:
 *   KIND VERSION PTY TERM COLS ROWS ARG...
 * KIND "git": two ARGs, the service ("git-receive-pack",
 * "git-upload-pack", "git-upload-archive") and a valid app name.  KIND
 * "cmd": 1 .. PRIVSEP_WORDS_MAX ARGs, the command's words, each non-empty
 * with no control character but tab, newline and carriage return (the
 * key text of "keys add" read from stdin is one word).  VERSION is the
 * git protocol version the client asked for (GIT_PROTOCOL, read by the
 * berth-ssh half): "0", "1" or "2".  PTY is "0" or "1", TERM shorter than 64 bytes of [A-Za-z0-9._+-], COLS and
 * ROWS 0 .. 9999.  Nothing else is accepted: no empty field, no field
 * more.  The strings point into the message.
 */
#define PRIVSEP_WORDS_MAX 256	/* CONTROL_MAX_WORDS */

struct privsep_request {
	int git;			/* 1: a git service */
	int svc;			/* enum gitsvc_service, when git */
	const char *app;		/* when git */
	const char *words[PRIVSEP_WORDS_MAX];	/* when not git */
	size_t nwords;
	int version;			/* git protocol version, 0 .. 2 */
	int pty;
	const char *term;
	int cols, rows;
};

/*
 * Build a request into out (appended): 0, or ERR_INVALID when it would
 * not pass privsep_parse_request() (too long: "command too long").
 */
int privsep_encode_request(struct buf *out, int git, int svc,
			   const char *app, const char *const *words,
			   size_t nwords, int version, int pty,
			   const char *term, int cols, int rows);

/* Parse m (len bytes, m[len] == '\0'): 0, or ERR_INVALID if malformed. */
int privsep_parse_request(const char *m, size_t len,
			  struct privsep_request *out);

/*
 * The key question ('k'): "V|N TYPE BASE64", V when libssh checked the
 * client's signature, TYPE a key type name (1..63 bytes of
 * [a-z0-9@.-]), BASE64 the key blob as base64 (1..PRIVSEP_KEY_B64_MAX
 * bytes, '=' only at its end).  Parsed into out; the root half compares
 * the text with authorized_keys' lines and never decodes it.
 */
#define PRIVSEP_KEY_B64_MAX 8192

struct privsep_key {
	int verified;
	char type[64];
	const char *b64;	/* into the message */
};

/* A window change ('w'): "COLS ROWS", each 1 .. 9999 in plain digits.
 * 0, or ERR_INVALID if malformed. */
int privsep_parse_winsize(const char *m, size_t len, int *cols, int *rows);

/* Parse m (len bytes, m[len] == '\0'): 0, or ERR_INVALID if malformed. */
int privsep_parse_key(const char *m, size_t len, struct privsep_key *out);

/* A decimal number from the other half, -1 .. 100000; -2 if not one. */
int privsep_number(const char *p);

/*
 * The user sessions drop to: berth-ssh, made by the engine at start
 * (appuser.h), checked to be berth's (name, comment, number).  0, or -1
 * with error_last() (missing or not berth's: the session must not go on).
 */
int privsep_user(const char *root, struct appuser *u);

/*
 * Become u for good (groups, gid, uid, all three of each), die with the
 * parent monitor_pid, check that root cannot be had back, and keep out
 * of every other process of u (procguard.h).  0 or -1.
 * Async-signal-safe enough for a child of a single-threaded process.
 */
int privsep_drop(const struct appuser *u, pid_t monitor_pid);

/*
 * fn(arg) in a jail, as u: a child (runner_call_as(), its jail) that
 * keeps no fd but 0-2, chroots into jail (a folder u may use, holding
 * only fn's input), drops to u for good (privsep_drop(), this process
 * its monitor) and calls fn there, where it names its files from "/".
 * For parsing outside input as root without parsing it as root.  Blocks
 * until the child ends (no deadline).  0 if fn returned 0; else -1 with
 * error_last(): fn's error as one line of text (control bytes shown as
 * '?', at most RUNNER_CALL_REASON_MAX bytes), start_msg when the jail or
 * the drop failed, or "WHAT exited with status N" when the child said
 * nothing.
 */
int privsep_call_jailed(const struct appuser *u, const char *jail,
			int (*fn)(void *arg), void *arg, const char *what,
			const char *start_msg);

#endif
