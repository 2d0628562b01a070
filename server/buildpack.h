/*
 * buildpack: where a build's buildpacks come from.
 *
 * A buildpack is named in one of three ways (a "spec"):
 *   - a name, [a-z0-9-] ("node", "python", or one of ROOT/buildpacks);
 *     Heroku's shorthand "heroku/nodejs" and "heroku/python" mean
 *     berth's built-in node and python, any other "heroku/NAME" means
 *     https://github.com/heroku/heroku-buildpack-NAME.git;
 *   - an absolute path of a buildpack folder on the host;
 *   - a git URL (https://, http://, git://, ssh://, file://), with an
 *     optional "#REF": a branch, a tag or a commit (4 to 40 hex digits).
 *     No credentials are ever offered, so ssh:// works only for hosts
 *     that let anyone in.
 * Lists of specs come from a .buildpacks file (one per line, Dokku's and
 * Heroku multi-buildpack's format), app.yaml "buildpacks:" and app.json.
 *
 * A URL is cloned with libgit2 into a bare repository under the app's
 * buildpack cache (ROOT/cache/APP.buildpacks/), fetched again on each
 * later build (a commit id already there is not fetched), and its commit
 * checked out into a fresh folder for this build only.  The work runs in
 * a child process, as the build user when one is given, so a URL a
 * pusher chose is opened with no more rights than their build has; a
 * file:// URL or path inside berth's state directory is refused (other
 * apps live there).  When a fetch fails but the cache can answer the
 * ref, the cached copy is used and the caller is told why.
 *
 * Blocking: buildpack_fetch() and buildpack_copy() block until done (or
 * the deadline); they run in the pipeline's process, never the engine.
 */
#ifndef BERTH_BUILDPACK_H
#define BERTH_BUILDPACK_H

#include <stdint.h>

#include "util.h"

#define BUILDPACK_LIST_MAX 16	/* buildpacks in one build */
#define BUILDPACK_SPEC_MAX 2048	/* longest spec */

enum buildpack_kind {
	BUILDPACK_NAME,
	BUILDPACK_PATH,
	BUILDPACK_URL,
};

struct buildpack_spec {
	enum buildpack_kind kind;
	char *text;		/* as given */
	char *name;		/* NAME: the name (shorthand resolved);
				 * PATH: the path */
	char *url;		/* URL: without "#REF" */
	char *ref;		/* URL: REF, or NULL for the remote's HEAD */
};

void buildpack_spec_init(struct buildpack_spec *s);
void buildpack_spec_release(struct buildpack_spec *s);

/*
 * Parse a spec.  0, or ERR_INVALID with error_last() one line naming
 * it: "buildpack 'ftp://x' has an unsupported URL (use https://, http://,
 * git://, ssh:// or file://)".  s is filled only on success.
 */
int buildpack_spec_parse(struct buildpack_spec *s, const char *text);

/*
 * A .buildpacks file: one spec per line, blank lines and lines starting
 * with '#' skipped, spaces around a spec trimmed, CRLF fine.  Each spec is
 * checked (buildpack_spec_parse) and pushed to out.  Errors name the line:
 * ".buildpacks:3: ...".  At most BUILDPACK_LIST_MAX specs.
 */
int buildpack_list_parse(struct strv *out, const char *buf, size_t len,
			 const char *fname);

struct buildpack_fetch {
	const char *url;	/* spec's url and ref */
	const char *ref;
	const char *cache;	/* the app's clones; made if missing */
	const char *dest;	/* an existing, empty folder for the files */
	const char *state_root;	/* berth's state directory: not fetched */
	long uid, gid;		/* >= 0: work as this user (cache and dest
				 * are handed to it first) */
	int64_t deadline;	/* now_ms() clock; 0: none */
	/* NULL, or run in the child that fetches, before it drops to uid
	 * (the build's cgroup): async-signal-safe, non-zero fails it */
	int (*child_setup)(void);
	/* out */
	char commit[41];	/* the commit checked out, hex */
	char *stale;		/* set when the fetch failed and the cached
				 * copy was used: why (caller frees) */
};

void buildpack_fetch_init(struct buildpack_fetch *f);
void buildpack_fetch_release(struct buildpack_fetch *f);

/*
 * Fetch f->url into the cache and check out f->ref (the remote's HEAD
 * when NULL) into f->dest.  0 with f->commit set; -1 with a one-line
 * reason: "cannot fetch 'URL': ...", "no branch, tag or commit 'v9' in
 * 'URL'", "build timed out".
 */
int buildpack_fetch(struct buildpack_fetch *f);

/*
 * Copy the buildpack folder src into dest (which must not exist; its
 * parent must), as uid:gid when uid >= 0: every build gets its own copy,
 * so what a buildpack writes into its own folder (Heroku's "export"
 * file) stays in this build.  Symbolic links inside are copied as links.
 */
int buildpack_copy(const char *src, const char *dest, long uid, long gid,
		   int64_t deadline);

/* The folder name under the cache for url: readable and unique
 * ("heroku-buildpack-nodejs-1f2e3d4c5b6a7980").  Fresh string. */
char *buildpack_cache_name(const char *url);

#endif
