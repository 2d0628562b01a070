/*
 * gitarchive: the server side of `git archive --remote` (git's
 * upload-archive): a tar, tar.gz or zip of a tree of the app's
 * repository, made with libarchive; docs/git.md.
 *
 * The request is "argument ARG" pkt-lines and a flush, as git's
 * archive client sends them: --format=tar|tgz|tar.gz|zip, --prefix=DIR/,
 * -0..-9, -v, --list, --worktree-attributes (ignored), then REF[:PATH]
 * and paths.  As git's upload-archive does by default, only refs may be
 * named (a branch, a tag, HEAD; not a bare commit id).  A bad request is
 * answered "NACK reason"; otherwise "ACK", a flush, the archive on
 * side-band 1, a flush.  Blocks on the transport; runs in a session
 * process.
 */
#ifndef BERTH_GITARCHIVE_H
#define BERTH_GITARCHIVE_H

#include "gitsvc.h"
#include "util.h"

struct config;

#define ARCHIVE_MAX_ARGS 64	/* git's own limit */

struct archive_request {
	char *format;		/* tar (default), tgz, tar.gz, zip */
	char *prefix;		/* in front of every path, "" by default */
	char *treeish;		/* REF or REF:PATH */
	struct strv paths;	/* only these (files or folders), if any */
	int list;		/* --list: name the formats instead */
};

void archive_request_init(struct archive_request *req);
void archive_request_release(struct archive_request *req);

/*
 * Parse the client's arguments (each without "argument " and LF) into
 * req.  0, or -1 with the reason in error_last() (what the NACK says).
 */
int archive_request_parse(struct archive_request *req, char *const *args,
			  size_t n);

/* Serve one "git archive --remote" of app over io; the exit status. */
int upload_archive(const struct config *cfg, const char *app,
		   struct gitsvc_io *io);

#endif
