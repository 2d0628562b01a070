/*
 * gitsvc: what the git services share, below them: the transport they
 * read and write, the exec command that names a service and an app, and
 * helpers for receive.c (push), upload.c (clone/fetch) and gitrefs.c.
 * gitserve.c is the front end that runs a service (docs/git.md).  All
 * calls block; they run in a session process, never in the engine.
 */
#ifndef BERTH_GITSVC_H
#define BERTH_GITSVC_H

#include <stddef.h>
#include <sys/types.h>

struct config;
struct git_repository;

/*
 * The transport.  read: up to len bytes, 0 at EOF, -1 on error; with
 * timeout_ms >= 0 it fails ("timed out waiting for the client") when no
 * byte arrives for that long, < 0 waits forever.  write: all of len,
 * 0 or -1.
 */
struct gitsvc_io {
	void *ctx;
	ssize_t (*read)(void *ctx, void *buf, size_t len, int timeout_ms);
	int (*write)(void *ctx, const void *buf, size_t len);
};

enum gitsvc_service {
	GITSVC_RECEIVE_PACK = 1,
	GITSVC_UPLOAD_PACK,
	GITSVC_UPLOAD_ARCHIVE,
};

/*
 * Recognise an exec command from git's ssh transport:
 * "git-receive-pack 'NAME'" (also "git receive-pack", NAME.git, /NAME,
 * '/NAME.git', the program named by an absolute path; the same for
 * upload-pack and upload-archive).  0 with *app (caller frees) a valid
 * app name; ERR_NOTFOUND if the command is not a git service at all;
 * ERR_INVALID (error_last() says why) for a git command with a bad path.
 */
int gitsvc_parse_command(const char *cmdline, enum gitsvc_service *svc,
			 char **app);

/*
 * The protocol version a client asks for in GIT_PROTOCOL (the ssh env
 * request, or the environment of "berth git-serve-stdio"): a list of
 * "key=value" joined by ':', of which "version=N" counts, the highest
 * one we speak winning.  0 (NULL, nothing we know), 1 or 2.
 */
int gitsvc_protocol_version(const char *git_protocol);

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
/*
 * libgit2 (initialised) reads a repository's own config only: no system,
 * XDG or global file (whose HOME may be root's), no owner check (the
 * repositories are berth's, read by other users than their owner).
 * Until libgit2 is shut down for good (its last init's shutdown).
 */
void gitsvc_lg2_repo_only(void);

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
