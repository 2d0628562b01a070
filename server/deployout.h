/*
 * deployout: the output of each deploy, kept.  Every line the person
 * who asked saw (a push's build, the release phase, the health checks,
 * the swap, the outcome) goes to a record of its own, numbered per app
 * (1, 2, ...; never handed out twice while a record is on disk):
 *
 *   APPDIR/deploys/D       the lines, as they were shown ('\n' after
 *                          each); at most DEPLOYOUT_MAX bytes, then one
 *                          "output truncated" line and the last
 *                          DEPLOYOUT_TAIL lines
 *   APPDIR/deploys/D.meta  "key value" lines: deploy, kind (push, cli,
 *                          incoming, rollback, config, restart), release
 *                          (0 until the deploy has one), status
 *                          (running, succeeded, failed,
 *                          interrupted), time, commit
 *
 * Both are root's, 0600 in a 0700 folder: the app's own user can
 * neither read a build's output (a buildpack may print secrets) nor
 * rewrite what happened.  Readers go through the engine
 * ("releases:output").
 *
 * An open record lives in the engine: the deploy (and, for a push, the
 * build's connection) holds references; the last unref ends it (still
 * running: failed), lets its followers go and prunes the app's old
 * records.  Followers get each line as it is written, exactly what the
 * file gets.  Blocking: small file writes, as the app log's.
 */
#ifndef BERTH_DEPLOYOUT_H
#define BERTH_DEPLOYOUT_H

#include <stddef.h>

#include "util.h"

#define DEPLOYOUT_DIR "deploys"		/* under the app's folder */
#define DEPLOYOUT_MAX (1L << 20)	/* bytes of lines kept in full */
#define DEPLOYOUT_TAIL 50		/* lines kept after the cap */
#define DEPLOYOUT_LINE_MAX 8192		/* longer lines are cut */

struct client;
struct deployout;

/* What D.meta says. */
struct deployout_info {
	int deploy;
	int release;		/* 0: none */
	char kind[16];
	char status[16];
	char time[32];
	char commit[48];
};

/*
 * Open a new record for the app in appdir: *out (one reference).  keep:
 * how many records to keep beside those of releases still on disk
 * (keep_releases), used when it ends.
 */
int deployout_open(struct deployout **out, const char *appdir,
		   const char *kind, const char *commit, int keep);
void deployout_ref(struct deployout *o);
/* Drop a reference; the last one ends the record (NULL is fine). */
void deployout_unref(struct deployout *o);
/* Append text: one line per '\n'-separated part. */
void deployout_add(struct deployout *o, const char *text, size_t len);
void deployout_addf(struct deployout *o, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
void deployout_set_release(struct deployout *o, int release);
/* "succeeded" or "failed" (or "running" again). */
void deployout_set_status(struct deployout *o, const char *status);
void deployout_set_commit(struct deployout *o, const char *commit);
int deployout_number(const struct deployout *o);

/* The open record D of appdir, or NULL (borrowed). */
struct deployout *deployout_find_open(const char *appdir, int deploy);
/* c gets each new line of o, then "ok" when o ends (or an error when
 * it cannot keep up). */
void deployout_follow(struct deployout *o, struct client *c);

/* The record numbers on disk, ascending, in *out (caller frees). */
size_t deployout_list(const char *appdir, int **out);
/* D.meta of record deploy; ERR_NOTFOUND when there is none. */
int deployout_info_read(const char *appdir, int deploy,
			struct deployout_info *out);
/* The record that made release (its first, not a restart's), or with
 * release 0 the newest record: *deploy.  ERR_NOTFOUND if none. */
int deployout_find(const char *appdir, int release, int *deploy);
/* The lines of record deploy into out. */
int deployout_read(const char *appdir, int deploy, struct buf *out);
/*
 * Engine start: records an engine that died left "running" end as
 * "interrupted", with a line that says so.  Returns how many.
 */
int deployout_mark_interrupted(const char *appdir);
/*
 * Keep the records that made a release still on disk, and the newest
 * 'keep' of the others (failed builds, restarts); open ones always.
 */
void deployout_prune(const char *appdir, int keep);

#endif
