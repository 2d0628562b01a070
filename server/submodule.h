/*
 * submodule: the submodules of a commit being built, fetched and checked
 * out at their recorded commits into the build's work tree, as Heroku
 * and Dokku do (`git submodule update --init --recursive`), on libgit2.
 *
 * Each gitlink in the commit's tree must have a url in the commit's
 * .gitmodules.  Urls the host can reach are fetched: a local path or
 * file:// url (never inside berth's state directory: other apps live
 * there), http(s)://, git:// and ssh:// (no credentials are offered).
 * Relative urls ("../lib.git") name a place relative to the pusher's
 * remote, which the server cannot know: they are refused.  Nested
 * submodules are followed, up to SUBMODULE_MAX_DEPTH levels.
 *
 * The work runs in a child process, as the build user when one is given
 * (o->uid >= 0), so a url a pusher chose is opened with no more rights
 * than their build has.  Fetched repositories live in a temporary folder
 * under o->tmp and are removed afterwards.  Blocks until done; runs in
 * the pipeline's process, never in the engine.
 */
#ifndef BERTH_SUBMODULE_H
#define BERTH_SUBMODULE_H

#include <stdint.h>

#define SUBMODULE_MAX_DEPTH 8

struct submodule_opts {
	const char *repo;	/* the app's bare repository */
	const char *commit;	/* 40 hex digits: the commit checked out */
	const char *dir;	/* its work tree (pipeline_checkout()) */
	const char *state_root;	/* berth's state directory: not fetched */
	const char *tmp;	/* an existing folder for temporary files */
	long uid, gid;		/* >= 0: do the work as this user */
	int out;		/* fd for progress lines ("-----> ...") */
	int64_t deadline;	/* now_ms() clock; 0: none */
	/* NULL, or run in the child that does the work, before it drops to
	 * uid (the build's cgroup): async-signal-safe, non-zero fails it */
	int (*child_setup)(void);
};

/*
 * Fetch and check out every submodule of o->commit under o->dir.  0 when
 * there are none or all are in place; -1 with a one-line reason naming
 * the submodule in error_last() ("submodule 'lib' (URL): ...").
 */
int submodule_update(const struct submodule_opts *o);

/*
 * Whether url may be fetched by the server: 0, or -1 with the reason
 * (relative, unknown scheme, an option in disguise).  Local paths are
 * checked against the state directory at fetch time.  For tests.
 */
int submodule_url_check(const char *url);

#endif
