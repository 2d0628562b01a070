/*
 * gitserve: the front end of berth's git services.  It takes the exec
 * command git's ssh transport sent, runs the service it names (receive.c
 * for a push, upload.c for a clone or fetch, gitarchive.c for git archive
 * --remote) over a transport, and turns
 * the result into an exit status.  The SSH session calls gitserve_run()
 * with its channel; "berth git-serve-stdio" runs the same over stdin and
 * stdout (tests, OpenSSH forced commands).  Everything blocks: it runs in
 * a session process, never in the engine.
 */
#ifndef BERTH_GITSERVE_H
#define BERTH_GITSERVE_H

#include "gitsvc.h"

struct config;

/*
 * Run service svc for app over io; pusher names the key's user (NULL for
 * a clone); version: the protocol the client asked for
 * (gitsvc_protocol_version()).  Returns the exit status for the client
 * (0 ok, 1 refused or failed); a failure has been told to the client on
 * io and logged.
 */
int gitserve_run(const struct config *cfg, enum gitsvc_service svc,
		 const char *app, const char *pusher, int version,
		 struct gitsvc_io *io);

/*
 * "berth git-serve-stdio ROOT 'COMMAND'": run the git service that
 * COMMAND names (as git's ssh transport would send it) over stdin/stdout,
 * for tests and for use as an OpenSSH forced command.  pusher: "local";
 * the protocol version comes from the GIT_PROTOCOL environment variable.
 * run runs the transfer: gitserve_run() here, or, as root, the caller's
 * way out of root (gitsep.h), with the same arguments and results (-1
 * with error_last(): it could not start, said on stderr).  Returns the
 * exit status (100 when COMMAND is not a git command).
 */
int gitserve_stdio_main(const struct config *cfg, const char *cmdline,
			int (*run)(const struct config *cfg,
				   enum gitsvc_service svc, const char *app,
				   const char *pusher, int version,
				   struct gitsvc_io *io));

#endif
