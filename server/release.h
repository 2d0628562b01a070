/*
 * release: the record of each release of an app, kept in
 * APPDIR/releases/N/ (N counts from 1 and is never handed out twice):
 *
 *   bundle.tar.gz  the code; dropped as soon as the release failed or was
 *                  interrupted (the record stays, for "releases")
 *   env            the config vars it runs with, KEY=VALUE lines, 0600
 *   meta           "key value" lines: number, time, source, commit,
 *                  pusher, buildpack, from, processes, config, status
 *
 * A release is code plus config: restarts, crash restarts and restores
 * run a release with its own env, and a rollback brings both back.
 * Status: deploying, deployed (went live, now or before), failed,
 * interrupted (the engine stopped or died during its deploy).
 *
 * The same KEY=VALUE format is the app's own config (APPDIR/env): the
 * env_file_* functions read and write both.  Every write is atomic.
 */
#ifndef BERTH_RELEASE_H
#define BERTH_RELEASE_H

#include <stddef.h>

#include "util.h"

#define RELEASE_ENV_MAX (1 << 20)	/* bytes of an env file */

/* What meta records of a new release (any field may be NULL/0). */
struct release_info {
	const char *source;	/* "push", "cli", "incoming", "config", ... */
	const char *commit;
	const char *pusher;
	const char *buildpack;
	int from;		/* rollback/config: the release it reuses */
	const char *config;	/* what changed, "+KEY -KEY" */
	char *const *types;	/* process types, NULL-terminated */
};

/* APPDIR/releases/N, or a file in it when 'file' is not NULL (fresh). */
char *release_path(const char *appdir, int n, const char *file);
/* The numbers of the releases on disk, ascending, in *out (caller frees);
 * returns how many. */
size_t release_list(const char *appdir, int **out);

/* Write the whole meta file of release n with status 'status'. */
int release_meta_write(const char *appdir, int n,
		       const struct release_info *ri, const char *status);
/* Rewrite only its status line. */
int release_set_status(const char *appdir, int n, const char *status);
/* The value of 'key' in meta (fresh), or NULL. */
char *release_meta_get(const char *appdir, int n, const char *key);
/* 1 if release n went live at some time (status deployed). */
int release_went_live(const char *appdir, int n);

/* The config a release runs with: ERR_NOTFOUND if it has none recorded
 * (releases made before berth kept one). */
int release_env_read(const char *appdir, int n, struct strv *env);
int release_env_write(const char *appdir, int n, const struct strv *env);

/* "+NEW -GONE" for what differs from 'from' to 'to' (a changed value
 * counts as set: +KEY), appended to out; nothing if they are equal. */
void release_config_change(struct buf *out, const struct strv *from,
			   const struct strv *to);
/* 1 if a and b hold the same KEY=VALUE pairs (order aside). */
int env_equal(const struct strv *a, const struct strv *b);

/*
 * What becomes of a release folder or bundle that goes: drop(arg, path)
 * must take path away (the engine renames it aside for a child to
 * delete: unlinking a bundle of 200 MB takes about 85 ms on ext4).
 * drop NULL: deleted here, at once.
 */
typedef void (*release_drop_fn)(void *arg, const char *path);

/* Drop the bundle of release n (failed or interrupted). */
void release_drop_bundle(const char *appdir, int n, release_drop_fn drop,
			 void *arg);
/*
 * Engine start (before the loop runs): releases left "deploying" (or
 * without meta) by an engine that died are marked interrupted and lose
 * their bundle, deleted here.  'live' (the
 * app's release) is never touched.  Returns how many were marked.
 */
int release_mark_interrupted(const char *appdir, int live);
/*
 * Keep the newest 'keep' releases that went live ('live' always among
 * them); a failed or interrupted record stays only while it is newer
 * than the oldest release kept, at most 'keep' of them.  A release still
 * deploying is never touched.
 */
void release_prune(const char *appdir, int keep, int live,
		   release_drop_fn drop, void *arg);

/* KEY=VALUE lines of path into env (appended); a missing file is empty. */
int env_file_read(const char *path, struct strv *env);
/* Write env to path atomically with mode 0600. */
int env_file_write(const char *path, const struct strv *env);

#endif
