/*
 * listener: listening sockets that berth binds and hands to a program
 * which accepts on them, in the two forms servers read:
 *
 *   SERVER_STARTER_PORT=8000=3;127.0.0.1:8001=4;/run/app.sock=5
 *                                       (Server::Starter's format)
 *   LISTEN_FDS=3 LISTEN_PID=1234 LISTEN_FDNAMES=8000:127.0.0.1_8001:...
 *                                       (systemd socket activation)
 *
 * Port specs are Server::Starter's: "PORT", "HOST:PORT", "[V6]:PORT",
 * each optionally prefixed "u" on the port for UDP ("u53", "[::1]:u53")
 * and suffixed "=FD" to ask for a descriptor number; a path is a unix
 * socket.  Parsing is pure (no DNS, no sockets); listener_open() does the
 * rest.  Callers own each struct listener and release it with
 * listener_release(), which closes the socket if it is still open.
 */
#ifndef BERTH_LISTENER_H
#define BERTH_LISTENER_H

#include <stddef.h>
#include <sys/types.h>

#include "util.h"

/* At most this many sockets are handed to one program. */
#define LISTENER_MAX 128
/* Room for "LISTEN_PID=" and any pid, with its NUL. */
#define LISTENER_PID_VAR_LEN 32

enum listener_kind {
	LISTENER_TCP,
	LISTENER_UDP,
	LISTENER_UNIX,
};

/* listener_open()'s expected failures; errno says why, error_last() too. */
enum {
	LISTENER_ERR_RESOLVE = -10,	/* host name or address not usable */
	LISTENER_ERR_BIND = -11,
	LISTENER_ERR_LISTEN = -12,
	LISTENER_ERR_STALE = -13,	/* cannot remove an old unix socket */
};

struct listener {
	enum listener_kind kind;
	/* The key in SERVER_STARTER_PORT: "8000", "127.0.0.1:8000",
	 * "[::1]:8000" or the path as given.  Owned. */
	char *name;
	char *host;		/* NULL: every IPv4 address.  Owned. */
	int ipv6;		/* host is an IPv6 literal */
	int port;		/* 0..65535 */
	char *path;		/* unix socket path.  Owned. */
	int want_fd;		/* "=FD" asked for this number, else -1 */
	int fd;			/* -1 until opened */
	/* After LISTENER_ERR_RESOLVE: the resolver's reason alone ("Name
	 * or service not known"), for a caller that words the error its
	 * own way; error_last() has the whole message. */
	char resolve_why[128];
};

void listener_init(struct listener *l);
/* Close the socket (if open) and free the strings; l is then re-inited. */
void listener_release(struct listener *l);

/*
 * Parse a Server::Starter port spec (whitespace around the parts is
 * allowed, as in the original).  0 on success; ERR_INVALID if it is not
 * one, with error_last() "invalid port 'SPEC'".  l must be fresh.
 */
int listener_parse_port(struct listener *l, const char *spec);
/* A unix socket at path (at most 107 bytes, not empty): 0 or ERR_INVALID. */
int listener_parse_path(struct listener *l, const char *path);

/*
 * Make the socket: resolve the host (IPv4 names through the resolver;
 * IPv6 only as literals, bound with IPV6_V6ONLY), SO_REUSEADDR, bind,
 * listen(backlog) unless UDP.  A unix socket is bound with umask 0 (mode
 * 0777, as the original does); a socket file already at the path is
 * removed first (*replaced is set to 1), anything else there is left
 * alone and binding fails.  The new fd is CLOEXEC.  Blocks on DNS.
 * Returns 0, -1 (socket() failed) or a LISTENER_ERR_* code (RESOLVE:
 * the reason in l->resolve_why too).
 */
int listener_open(struct listener *l, int backlog, int *replaced);

/* Move the socket to descriptor fd (dup2, then close the old one). */
int listener_move_to(struct listener *l, int fd);
/* Whether the socket survives exec: 1 keeps it, 0 closes it on exec. */
int listener_set_inherit(struct listener *l, int inherit);

/*
 * "name=fd;name=fd": the value of SERVER_STARTER_PORT, appended to out.
 * first < 0 names each socket's own fd; else socket i is named as fd
 * first + i (where listener_child_place() or spawn puts it).
 */
void listener_format_server_starter(struct buf *out,
				    const struct listener *ls, size_t n,
				    int first);
/*
 * The value of LISTEN_FDNAMES: each name with the characters systemd
 * forbids in a name (':' and controls) written as '_', joined with ':'.
 */
void listener_format_fdnames(struct buf *out, const struct listener *ls,
			     size_t n);

/*
 * For a forked child before exec (async-signal-safe): put fds[i] at
 * descriptor first + i, without CLOEXEC, as systemd's protocol wants
 * (first is 3).  Other descriptors are left alone.  0, or -1 with errno.
 */
int listener_child_place(const int *fds, size_t n, int first);
/* For a forked child (async-signal-safe): "LISTEN_PID=<pid>" into buf. */
void listener_pid_var(char buf[LISTENER_PID_VAR_LEN], pid_t pid);

#endif
