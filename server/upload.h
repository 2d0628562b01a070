/*
 * upload: the server side of `git clone` and `git fetch` (upload-pack) on
 * libgit2; docs/git.md.  Runs in a session process (or under "berth
 * git-serve-stdio"): every call blocks on the transport.
 */
#ifndef BERTH_UPLOAD_H
#define BERTH_UPLOAD_H

#include "gitsvc.h"

struct config;

/*
 * Serve one clone/fetch of ROOT/apps/APP/repo.git over io: advertise the
 * refs, negotiate, send the pack.  An app without a repository gets
 * "ERR no app 'APP' (push to it first)".  Returns the exit status for
 * the client: 0 when the client got what it asked for.
 */
int upload_pack(const struct config *cfg, const char *app,
		struct gitsvc_io *io);

#endif
