/*
 * client: the engine's control socket and the connections on it
 * ("clients"), in the engine's loop.  client_listen() binds the unix
 * socket (mode 0600: root only) and hands each connection's request, one
 * line decoded by control.h, to the request handler it was given, which
 * answers with client_data() lines and ends with client_ok() or
 * client_error().  This file knows nothing of commands or apps: it only
 * calls down (loop, control, util) and up through that handler.
 *
 * A handler that needs time (deploy, logs -f) keeps a reference with
 * client_ref() and drops it with client_unref(); if the peer hangs up in
 * between, writes are dropped silently and client_gone() says so.  All
 * calls take NULL and then do nothing.  Nothing blocks: writes queue (up
 * to 64 MiB per client, then it is cut off) and go out as the socket
 * takes them; only client_server_close() waits, for at most its timeout.
 */
#ifndef BERTH_CLIENT_H
#define BERTH_CLIENT_H

#include <stddef.h>

#include "control.h"	/* the protocol, and the CONTROL_ERR_* codes */

struct loop;
struct client;
struct client_server;

/*
 * Listen on the unix socket at path (an old one is replaced) and serve
 * requests on l: on_request(c, argc, argv, arg) for each one, argv freed
 * after it returns (copy what outlives it).  0 with *out, or -1
 * (error_last()).
 */
int client_listen(struct client_server **out, struct loop *l,
		  const char *path,
		  void (*on_request)(struct client *c, int argc, char **argv,
				     void *arg),
		  void *arg);
/* At exit: what is queued still goes out for at most timeout_ms in all;
 * every connection closes (on_close runs), the socket goes; free s. */
void client_server_close(struct client_server *s, long timeout_ms);

void client_data(struct client *c, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
void client_ok(struct client *c);
/* "ok KEY=VALUE ...": the end, with data for programs (control.h). */
void client_ok_fields(struct client *c, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* "fields KEY=VALUE ...": data for programs before the end (control.h;
 * a deploy: "fields release=5" once its number is known). */
void client_fields(struct client *c, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
void client_error(struct client *c, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* "error CODE: MESSAGE": code is one of CONTROL_ERR_* (control.h). */
void client_error_code(struct client *c, const char *code,
		       const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
void client_ref(struct client *c);
void client_unref(struct client *c);
int client_gone(const struct client *c);
/* Bytes the peer sends after its request line (a command that reads
 * input, e.g. a build's log), as they come; until it hangs up. */
void client_on_input(struct client *c,
		     void (*fn)(struct client *, const char *, size_t, void *),
		     void *arg);
/* Take what the peer has sent so far, now (its on_input gets it), not
 * when the loop comes to it: a deploy orders its lines after what a
 * build's connection wrote before the deploy was asked for.  The peer
 * may hang up meanwhile (its on_close runs). */
void client_read_input(struct client *c);
/* Called once when the peer hangs up (for followers). */
void client_on_close(struct client *c, void (*fn)(struct client *, void *),
		     void *arg);
/* Descriptors the peer passed with its request (SCM_RIGHTS; run's
 * stdin, stdout and stderr), at most CLIENT_MAX_FDS: up to max of them
 * into fds, in order, now owned by the caller.  The rest are closed;
 * a request nobody takes them from has them closed with it. */
#define CLIENT_MAX_FDS 3
size_t client_take_fds(struct client *c, int *fds, size_t max);
/* Bytes queued and not yet written (to bound followers). */
size_t client_pending(const struct client *c);

#endif
