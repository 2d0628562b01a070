/*
 * receive: the server side of `git push` (receive-pack, protocol v0) on
 * libgit2.  receive_pack() is the entry point; this header also exposes
 * the request parser on its own so it can be unit-tested and fuzzed
 * without a repository.
 *
 * The request, after our ref advertisement:
 *   PKT(shallow SP id)*              only from a shallow clone
 *   PKT(old SP new SP ref NUL caps)  first command, with capabilities
 *   PKT(old SP new SP ref)*          more commands
 *   flush
 *   [PKT(option)* flush]             only if push-options was agreed
 *   raw pack                         unless every command is a delete;
 *                                    it ends at its trailer (indexpack.h)
 */
#ifndef BERTH_RECEIVE_H
#define BERTH_RECEIVE_H

#include <stddef.h>

#include "gitsvc.h"
#include "pktline.h"
#include "util.h"

struct config;

/*
 * Serve one push to ROOT/apps/APP/repo.git (created on first push).
 * pusher names the key's user (for release metadata).  Returns the exit
 * status for the client: 0 when every ref was accepted (and deployed).
 * For the deploy it forks a child (pipeline_run()) and waitpid()s for it:
 * the caller must not ignore SIGCHLD nor reap that child itself, and every
 * fd it holds should be CLOEXEC so builds do not inherit the connection.
 * version: 1 starts the advertisement with "version 1"; push has no
 * protocol v2, so 2 is served as 0 (as git does).  The read side is read
 * only as far as the request goes (the pack ends at its trailer); the
 * caller writes nothing on the transport while this runs.
 * after_repack (may be NULL) runs in the background child that repacks
 * after an accepted push (gitrepack_after_push()): the front end passes
 * the upload side's kept clone pack, which this file does not call.
 */
int receive_pack(const struct config *cfg, const char *app,
		 const char *pusher, int version, struct gitsvc_io *io,
		 int (*after_repack)(const char *repo_path));

/* Where a build's output goes while it runs (lines without their LF). */
struct receive_build_out {
	void (*line)(void *arg, const char *line, size_t len);
	void (*tick)(void *arg);	/* quiet for a while: a keepalive */
	void *arg;
};

/*
 * Build and deploy 'commit' (40 hex digits) of app's repository, pushed
 * by pusher, in a child (pipeline_run()), and wait for it: its output to
 * out, a line at a time.  0 when it went live, 1 with *reason (a line,
 * caller frees) when it failed, -1 (error_last()) when it could not run.
 * The same rules as receive_pack() for SIGCHLD and fds.
 */
int receive_build(const struct config *cfg, const char *app,
		  const char *pusher, const char *commit, int clean_cache,
		  const struct receive_build_out *out, char **reason);

/*
 * Who builds a push's deploy branch once its objects are in: by default
 * receive_build() from this process.  A session split in two sets one
 * that asks its root half (gitsep.h); ref, old and commit (hex) are the
 * command of the deploy branch.  Returns as receive_build().  NULL fn:
 * back to the default.
 */
typedef int (*receive_builder_fn)(void *ctx, const char *ref,
				  const char *old, const char *commit,
				  int clean_cache,
				  const struct receive_build_out *out,
				  char **reason);
void receive_set_builder(receive_builder_fn fn, void *ctx);

#define PUSH_MAX_COMMANDS 1000	/* refs in one push */
#define PUSH_MAX_OPTIONS 100	/* push options in one push */
#define PUSH_OPTION_MAX 1024	/* bytes in one push option */
#define PUSH_REF_MAX 1024	/* bytes in one ref name */
#define PUSH_MAX_OBJECT ((uint64_t)2 << 30) /* one object, inflated */

enum push_caps {
	PUSH_REPORT_STATUS = 1 << 0,
	PUSH_REPORT_STATUS_V2 = 1 << 1,
	PUSH_SIDE_BAND_64K = 1 << 2,
	PUSH_QUIET = 1 << 3,
	PUSH_ATOMIC = 1 << 4,
	PUSH_OPTIONS = 1 << 5,
	PUSH_DELETE_REFS = 1 << 6,
	PUSH_OFS_DELTA = 1 << 7,
};

struct push_cmd {
	unsigned char old_id[20];	/* all zero: create */
	unsigned char new_id[20];	/* all zero: delete */
	char *ref;
	const char *error;	/* NULL while fine; else the "ng" reason */
	char *error_owned;	/* error, when it was formatted */
	int applied;		/* the ref was moved (atomic rollback) */
	int missing;		/* a delete of a ref that is not there: ok */
	const char *warning;	/* said to the pusher when it moves */
};

struct push_request {
	struct push_cmd *cmds;
	size_t n, alloc;
	unsigned caps;		/* enum push_caps the client asked for */
	char *agent;		/* client's agent=, or NULL */
	size_t n_shallow;	/* "shallow" lines (a shallow clone) */
	struct strv options;	/* push options, in order */
};

void push_request_init(struct push_request *req);
void push_request_release(struct push_request *req);

/*
 * Read the command list and (if agreed) the push options from r.
 * Returns 0 with req filled (req->n may be 0: the client had nothing to
 * push and the stream ended), or -1 on a malformed request (error_last()).
 */
int push_request_read(struct push_request *req, struct pkt_reader *r);

/*
 * Parse one command payload (without its LF) into cmd; on the first line
 * (first != 0) also the capabilities after the NUL into req.  0 or -1.
 */
int push_parse_command(struct push_request *req, struct push_cmd *cmd,
		       const char *line, size_t len, int first);

/* 1 if all 20 bytes are zero. */
int push_id_is_zero(const unsigned char *id);

/* Set a formatted "ng" reason on cmd (keeps the first one set). */
void push_cmd_fail(struct push_cmd *cmd, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

#endif
