/*
 * pipeline: turns a pushed commit into a running release.
 *
 * Runs in a child of the SSH session, never in the engine.  Steps
 * (default): pre-build hooks -> buildpack -> post-build hooks -> pack ->
 * deploy -> post-deploy hooks (docs/pipeline.md); app.yaml's "pipeline:"
 * may reorder, add or skip them.  "deploy" is a request to the engine
 * ("deploy NAME BUNDLE ..."), whose progress lines are passed on.
 *
 * All output for the person pushing is written, a line at a time, to
 * o->out (the session turns it into "remote:" lines).
 */
#ifndef BERTH_PIPELINE_H
#define BERTH_PIPELINE_H

#include <stdint.h>

#include "util.h"

struct config;

struct pipeline_opts {
	const struct config *cfg;
	const char *app;
	const char *repo;	/* bare repository */
	const char *commit;	/* hex id of the commit to build */
	const char *pusher;	/* who pushed (key name) */
	int skip_deploy;	/* push option skip-deploy: build nothing */
	int clean_cache;	/* push option clean-cache */
	int out;		/* fd for the user's output */
};

/* 0 if the new release is live; -1 with error_last() a one-line reason
 * (used for the ref's "ng" line). */
int pipeline_run(const struct pipeline_opts *o);

/*
 * A build holds ROOT/cache/APP.lock for as long as it runs, taken before
 * it makes its files in ROOT/tmp: build-APP-XXXXXX, env-APP-XXXXXX and
 * bundle-APP-XXXXXX.tar.gz.  So an engine that starts while the session
 * of a push is still building (its engine died) can tell them apart:
 *
 * pipeline_tmp_app(): the app an entry of ROOT/tmp belongs to, into app
 * (len bytes, APP_NAME_MAX + 1 is enough); -1 if it is no build's file.
 * pipeline_lock_try(): take APP's build lock without waiting: an fd to
 * close when done; ERR_BUSY while a build runs, ERR_NOTFOUND if no build
 * ever ran, -1 on other errors.
 */
int pipeline_tmp_app(const char *entry, char *app, size_t len);
int pipeline_lock_try(const char *root, const char *app);

/*
 * The pieces pipeline_run() is made of, public for tests and for the
 * local "build this folder" use.
 */

/* Check out 'commit' (40 hex digits) of the bare repository 'repo' into
 * 'dir', which must exist and be empty. */
int pipeline_checkout(const char *repo, const char *commit, const char *dir);

/*
 * Where the buildpack 'name' lives: an absolute path is taken as it is
 * (it must hold bin/compile); a bare name ([a-z0-9-]) is looked up in
 * ROOT/buildpacks/NAME, then DIR/buildpacks/NAME for each folder of
 * paths_share_dirs() (the install's share/berth, then the build tree).
 * *dir is fresh (caller frees).  ERR_NOTFOUND if it is nowhere.
 */
int pipeline_buildpack_find(char **dir, const char *root, const char *name);

/* The built-in buildpacks in detection order, NULL-terminated. */
extern const char *const pipeline_builtin_buildpacks[];

/* Write each KEY=VALUE of env (NULL-terminated) as file KEY holding VALUE
 * into the existing folder dir (Heroku's ENV_DIR). */
int pipeline_write_env_dir(const char *dir, char *const *env);

/* One line of build or hook output as the user sees it, appended to out
 * with its newline: lines starting with "----->", " !" or 7 spaces go as
 * they are, others get 7 spaces in front (Heroku's indent). */
void pipeline_format_line(struct buf *out, const char *line, size_t len);

/*
 * The buildpack step on a checked-out folder (docs/buildpacks.md).  The
 * buildpacks are 'packs' (specs, buildpack.h, in order), else 'force'
 * (one spec), else the first built-in whose bin/detect says yes.  Listed
 * ones each get a copy of their own for this build (a git URL is fetched
 * into 'pack_cache' first), must say yes in bin/detect, and run
 * bin/compile BUILD CACHE ENV_DIR, then bin/release; the "export" file a
 * buildpack leaves in its folder is sourced into the environment of the
 * ones after it.  The last bin/release's default process types are
 * written into BUILD/Procfile (types already in the app's Procfile win;
 * nothing when the app's app.yaml lists processes), and every
 * bin/release's config_vars into BUILD/.berth/buildpack-config.yaml
 * (MANIFEST_BUILDPACK_CONFIG), defaults under the app's own config.
 * Output goes to 'out' a line at a time.  'deadline' is on the now_ms()
 * clock (0: none).  'drop_uid'/'drop_gid' >= 0: run the buildpacks (and
 * the fetches and copies) as that user.
 */
struct pipeline_build {
	const char *root;	/* state directory, for ROOT/buildpacks */
	const char *build_dir;
	const char *cache_dir;
	const char *env_dir;
	char *const *env;	/* environment of bin/ programs */
	const char *force;	/* one spec, or NULL */
	char *const *packs;	/* specs, NULL-terminated, or NULL */
	const char *packs_from;	/* where they came from, for the user */
	const char *pack_cache;	/* the app's buildpack clones */
	int app_has_processes;	/* app.yaml lists processes: leave Procfile */
	int out;
	int64_t deadline;
	long drop_uid, drop_gid;
	char *detected;		/* out: what bin/detect printed, ", " between
				 * buildpacks (caller frees) */
	char *pack;		/* out: buildpack names, paths or URLs, ","
				 * between them (caller frees) */
};
void pipeline_build_init(struct pipeline_build *b);
int pipeline_buildpack(struct pipeline_build *b);
void pipeline_build_release(struct pipeline_build *b);

#endif
