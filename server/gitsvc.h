/*
 * gitsvc: git's server side over any byte stream: receive-pack (push) and
 * upload-pack (clone/fetch), protocol v0, implemented in the project
 * (pktline.c, receive.c, upload.c) on libgit2; docs/git.md.  The
 * transport is an SSH channel in a session process, or stdin/stdout for
 * "berth git-serve-stdio" in tests.  All calls block; they run in a
 * session process, never in the engine.
 */
#ifndef BERTH_GITSVC_H
#define BERTH_GITSVC_H

#include <stddef.h>
#include <sys/types.h>

struct config;
struct git_repository;

/* The transport.  read: up to len bytes, 0 at EOF, -1 on error.
 * write: all of len, 0 or -1. */
struct gitsvc_io {
	void *ctx;
	ssize_t (*read)(void *ctx, void *buf, size_t len);
	int (*write)(void *ctx, const void *buf, size_t len);
};

enum gitsvc_service {
	GITSVC_RECEIVE_PACK = 1,
	GITSVC_UPLOAD_PACK,
};

/*
 * Recognise an exec command from git's ssh transport:
 * "git-receive-pack 'NAME'" (also "git receive-pack", NAME.git, /NAME,
 * '/NAME.git'; same for upload-pack).  0 with *app (caller frees) a valid
 * app name; ERR_NOTFOUND if the command is not a git service at all;
 * ERR_INVALID (error_last() says why) for a git command with a bad path.
 */
int gitsvc_parse_command(const char *cmdline, enum gitsvc_service *svc,
			 char **app);

/*
 * Serve one push to ROOT/apps/APP/repo.git (created on first push).
 * pusher names the key's user (for release metadata).  Returns the exit
 * status for the client: 0 when every ref was accepted (and deployed).
 * For the deploy it forks a child (pipeline_run()) and waitpid()s for it:
 * the caller must not ignore SIGCHLD nor reap that child itself, and every
 * fd it holds should be CLOEXEC so builds do not inherit the connection.
 * The read side is read to EOF only when a pack is expected; the caller
 * writes nothing on the transport while this runs.
 */
int receive_pack(const struct config *cfg, const char *app,
		 const char *pusher, struct gitsvc_io *io);

/* Serve one clone/fetch of an existing app repository. */
int upload_pack(const struct config *cfg, const char *app,
		struct gitsvc_io *io);

/*
 * "berth git-serve-stdio ROOT 'COMMAND'": run the git service that
 * COMMAND names (as git's ssh transport would send it) over stdin/stdout,
 * for tests and for use as an OpenSSH forced command.  pusher: "local".
 * Returns the exit status.
 */
int gitsvc_stdio_main(const struct config *cfg, const char *cmdline);

/*
 * Helpers shared by receive.c and upload.c (not for other subsystems).
 */
/* ROOT/apps/APP/repo.git; caller frees. */
char *gitsvc_repo_path(const struct config *cfg, const char *app);
/* Record libgit2's last error as "WHAT: MESSAGE" and return -1. */
int gitsvc_lg2_error(const char *what);
/* Make s one printable line in place (control bytes become spaces). */
void gitsvc_oneline(char *s);
/* git_libgit2_init() plus the options a server wants; pair with
 * git_libgit2_shutdown(). */
int gitsvc_lg2_init(void);
/*
 * The start both services share: check the app name, gitsvc_lg2_init(),
 * and open the app's repository if it exists.  *path (caller frees) is
 * gitsvc_repo_path(), NULL if the name was refused.  Returns 0 with *repo
 * open; ERR_NOTFOUND with *repo NULL when there is no repository yet
 * (nothing sent, error not set); -1 on a bad name or a repository that
 * does not open, after sending the client "ERR MESSAGE" (error_last()),
 * or if libgit2 fails to start (nothing sent).  After 0 and ERR_NOTFOUND
 * libgit2 is initialised (pair with git_libgit2_shutdown()); after -1 it
 * is not.
 */
int gitsvc_repo_open(struct git_repository **repo, char **path,
		     const struct config *cfg, const char *app,
		     struct gitsvc_io *io);

#endif
