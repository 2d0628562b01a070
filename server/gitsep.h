/*
 * gitsep: a session's git transfer out of root (docs/security.md).  In a
 * session split in two (privsep.h), the root monitor checks the key's
 * access to the app, then hands the transfer to a child that drops for
 * good to berth-ssh, with the app's group as its only group: receive-pack,
 * upload-pack and upload-archive run there, pack parsing, indexing and
 * every write into the repository included.  The repository,
 * ROOT/apps/APP/repo.git, is berth-ssh's with the app's group, mode 2750:
 * the app's own user reads it (the build's checkout, submodules), no
 * other app can, and root never opens it by path.
 *
 * The monitor stays root for what needs it: making the repository's
 * folder on a first push, handing an older root-owned repository over
 * (by descriptors, never following a link), and building the pushed
 * commit (receive_build(), whose checkout runs as the app's user).  The
 * child asks for the build with one message, and gets its output and
 * result back, over a SOCK_SEQPACKET pair (one type byte, privsep.h):
 *   child -> monitor  'D' "NEW OLD CLEAN REF"   build NEW (the deploy
 *                         branch's new commit, 40 hex digits), OLD its
 *                         old one, CLEAN "0"/"1" (push option
 *                         clean-cache), REF the branch; once per push
 *                     'x' "STATUS[ ERROR]"  the transfer's exit status
 *   monitor -> child  'l' a line of the build's output, 't' a keepalive,
 *                     'R' "0" live, "1 REASON" failed, "-1 ERROR"
 * The monitor believes only the commit to build, and only from a push:
 * the app and the pusher are its own.  Everything blocks.
 */
#ifndef BERTH_GITSEP_H
#define BERTH_GITSEP_H

#include <stddef.h>

#include "gitsvc.h"

struct config;

#define GITSEP_REF_MAX 1024

/* A build request, parsed. */
struct gitsep_deploy {
	char commit[41];	/* lower-case hex, never all zero */
	char old[41];		/* lower-case hex, zero for a new branch */
	int clean_cache;
	char ref[GITSEP_REF_MAX + 1];	/* refs/..., for the log */
};

/*
 * Parse a 'D' payload m (len bytes, m[len] == '\0'): 0, or ERR_INVALID
 * with error_last() if anything is off.  Pure.
 */
int gitsep_parse_deploy(const char *m, size_t len, struct gitsep_deploy *out);

/*
 * As root, in a session's monitor: run service svc for app over io (the
 * channel, relayed by the session's berth-ssh half) in a child that is
 * berth-ssh, as gitserve_run() would (same arguments, same result: the
 * exit status for the client, or -1 with error_last() when the transfer
 * could not start).  The caller has checked the key's access to app.
 * The caller must not read io while this runs; the child's messages come
 * over a pair of this call's own.
 */
int gitsep_run(const struct config *cfg, enum gitsvc_service svc,
	       const char *app, const char *pusher, int version,
	       struct gitsvc_io *io);

/*
 * gitsep_run() for a transfer started at the host as root ("berth
 * git-serve-stdio", pusher "local", no key to check): berth-ssh is made
 * first if the engine has not made it yet.  Same results.
 */
int gitsep_run_local(const struct config *cfg, enum gitsvc_service svc,
		     const char *app, const char *pusher, int version,
		     struct gitsvc_io *io);

/*
 * As root: the repository "repo.git" beneath dirfd (an app's folder, or
 * one being made into it, as import does) handed to berth-ssh with the
 * app's group, mode 2750, by descriptors, never following a link; the
 * app's user and berth-ssh are made if missing.  0 (also when there is
 * no repository, or not root: nothing to hand over), or -1 with
 * error_last().
 */
int gitsep_repo_give(const char *root, int dirfd, const char *app);

/*
 * As root, at the engine's start: 0 if berth-ssh can reach the state
 * folder (every folder above it searchable by others); else -1 with
 * error_last() naming the first folder in the way.  Pushes and clones
 * fail there, with a one-line error that names no path.
 */
int gitsep_check_reach(const char *root);

#endif
