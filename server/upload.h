/*
 * upload: the server side of `git clone` and `git fetch` (upload-pack) on
 * libgit2; docs/git.md.  Protocol v0 (and v1, the same with a version
 * line) and protocol v2 (ls-refs, fetch).  Negotiation with multi_ack and
 * multi_ack_detailed; shallow clones and fetches (deepen, deepen-since,
 * deepen-not, deepen-relative, unshallow); include-tag.  Runs in a
 * session process (or under "berth git-serve-stdio"): every call blocks
 * on the transport.
 *
 * The request parsers are public so they can be unit-tested and fuzzed
 * without a repository.
 */
#ifndef BERTH_UPLOAD_H
#define BERTH_UPLOAD_H

#include <stdint.h>

#include <git2.h>

#include "gitsvc.h"
#include "oidset.h"
#include "util.h"

struct config;

#define UPLOAD_MAX_WANTS 100000
#define UPLOAD_MAX_HAVES 1000000
#define UPLOAD_MAX_SHALLOWS 1000000
#define UPLOAD_MAX_DEEPEN_NOT 100
#define UPLOAD_INFINITE_DEPTH 0x7fffffff	/* git fetch --unshallow */

enum upload_caps {
	UPLOAD_SIDE_BAND = 1 << 0,	/* 1000-byte packets */
	UPLOAD_SIDE_BAND_64K = 1 << 1,
	UPLOAD_NO_PROGRESS = 1 << 2,
	UPLOAD_MULTI_ACK = 1 << 3,
	UPLOAD_MULTI_ACK_DETAILED = 1 << 4,
	UPLOAD_INCLUDE_TAG = 1 << 5,
	UPLOAD_OFS_DELTA = 1 << 6,
	UPLOAD_THIN_PACK = 1 << 7,
	UPLOAD_DEEPEN_RELATIVE = 1 << 8,
	UPLOAD_WAIT_FOR_DONE = 1 << 9,	/* v2 */
};

/* What a client asked for in one want list (v0) or fetch request (v2). */
struct upload_request {
	struct oidvec wants;
	struct oidvec haves;	/* v2 only; v0 haves come in rounds */
	struct oidvec shallows;	/* the client's shallow commits */
	unsigned caps;		/* enum upload_caps */
	int depth;		/* deepen N; 0: none */
	int64_t deepen_since;	/* deepen-since (seconds); 0: none */
	struct strv deepen_not;	/* deepen-not refs */
	int done;		/* v2 "done" */
};

void upload_request_init(struct upload_request *req);
void upload_request_release(struct upload_request *req);

/* 1 if the request asks for a shallow answer (deepen of any kind, or
 * shallow lines from a shallow client). */
int upload_request_is_shallow(const struct upload_request *req);

/*
 * One line of a v0 want list, without its LF: "want ID[ CAPS]" (caps on
 * the first want only), "shallow ID", "deepen N", "deepen-since T",
 * "deepen-not REF".  0, or -1 with error_last() on anything else.
 */
int upload_parse_want_line(struct upload_request *req, const char *line,
			   size_t len);

/*
 * One argument line of a v2 fetch request, without its LF: want, have,
 * done, thin-pack, no-progress, include-tag, ofs-delta, wait-for-done,
 * shallow, deepen, deepen-relative, deepen-since, deepen-not.  0 or -1.
 */
int upload_parse_fetch_arg(struct upload_request *req, const char *line,
			   size_t len);

/*
 * Serve one clone/fetch of ROOT/apps/APP/repo.git over io, in protocol
 * 'version' (0, 1 or 2, from the client's GIT_PROTOCOL): advertise the
 * refs (v2: the capabilities, then commands), negotiate, send the pack.
 * An app without a repository gets "ERR no app 'APP' (push to it
 * first)".  Returns the exit status for the client: 0 when the client got
 * what it asked for.
 */
int upload_pack(const struct config *cfg, const char *app, int version,
		struct gitsvc_io *io);

/*
 * Make the pack a `git clone` of repo_path (the bare repository's
 * folder) would get now, every branch and tag, and keep it to be sent as
 * is (clonepack.h); nothing when it is kept already, or when the
 * repository keeps no pack at all (it was never cloned in full).  Builders of one
 * repository take turns, each reading the refs once it has its turn.
 * For a background child after a push: 0, or -1 (error_last()).
 */
int upload_keep_clone_pack(const char *repo_path);

#endif
