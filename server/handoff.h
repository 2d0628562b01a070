/*
 * handoff: the listening socket berth binds for a web process before the
 * process starts, handed over the way servers built for a superdaemon
 * read it (docs/start-server.md, "Socket hand-off"):
 *
 *   SERVER_STARTER_PORT=127.0.0.1:PORT=3    Server::Starter (Starlet, ...)
 *   LISTEN_FDS=1 LISTEN_FDNAMES=web LISTEN_PID=<the process>
 *                                           systemd (gunicorn, puma, ...)
 *
 * The socket sits at descriptor 3 in the child.  LISTEN_PID can only be
 * known after fork: spawn fills it in (struct spawn's listen_pid_var).
 * PORT is set as always, by the caller.
 *
 * The socket is TCP on 127.0.0.1 (nginx is the only client), listening,
 * SO_REUSEADDR, CLOEXEC in the engine.  The caller owns the fd.
 */
#ifndef BERTH_HANDOFF_H
#define BERTH_HANDOFF_H

#include "util.h"

/*
 * Bind and listen on 127.0.0.1:port (0: a free port the kernel picks).
 * 0 with *fd and *bound_port set, or -1 with error_last()
 * ("cannot bind 127.0.0.1:PORT: Address already in use").
 */
int handoff_open(int port, int *fd, int *bound_port);

/*
 * The variables that hand the socket at fd 3 on bound_port over, into
 * env (set or replaced); name goes into LISTEN_FDNAMES.  Any LISTEN_PID
 * already in env is removed: the child sets its own.
 */
void handoff_env(struct strv *env, int bound_port, const char *name);

/* Remove the hand-off variables from env (a process that gets none). */
void handoff_env_clear(struct strv *env);

#endif
