/*
 * privsep: the two halves of an SSH session process as root (OpenSSH's
 * privilege separation).  The process the engine started (root, "the
 * monitor") loads the host keys, forks, and its child drops for good to
 * berth-ssh before it reads a byte from the client: libssh's key exchange,
 * authentication and the channel's requests run there.  The child asks the
 * monitor, over a SOCK_SEQPACKET socketpair, whether a public key may log
 * in, and once authenticated hands it the command and relays the
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
 * The command message, parsed (session.c builds it): NUL-separated
 * COMMAND, PROTO, HAS_PROTO ("0"/"1"), PTY ("0"/"1"), TERM, COLS, ROWS.
 * The strings point into the message.
 */
struct privsep_command {
	const char *command;
	const char *git_protocol;	/* NULL: the client asked for none */
	int pty;
	const char *term;		/* shorter than 64 bytes */
	int cols, rows;			/* 0 .. 9999 */
};

/* Parse m (len bytes, m[len] == '\0'): 0, or ERR_INVALID if malformed. */
int privsep_parse_command(const char *m, size_t len,
			  struct privsep_command *out);

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

#endif
