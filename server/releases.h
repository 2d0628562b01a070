/*
 * releases: a release's folders and records, for the deploy (deploy.c):
 * the run folder and the static site's copy beside it, handing the
 * unpacked release to the app's user, the release's meta file, and the
 * output record a push's build opens (its deploy goes on writing it).
 * Knows no deploy: it is given the run (struct run, app.h).
 * The files themselves are release.c's and deployout.c's.
 *
 * copy_static() and give_release() run in the unpack child, never in the
 * engine; run folders are deleted by a child (trash_*()); the rest run in
 * the engine and touch only small files.
 * Errors: -1 with error_last() set.
 */
#ifndef BERTH_RELEASES_H
#define BERTH_RELEASES_H

#include "app.h"

struct deployout;
struct engine;
struct release_info;

/*
 * Folders to delete without waiting: each is renamed into ROOT/tmp at
 * once (its name is free on return) and a child deletes them there; a
 * folder that cannot be renamed is deleted at once (logged).  Errors are
 * logged, fail_msg when the child fails.  ROOT/tmp is wiped at start.
 */
struct trash_job;
struct loop;
struct trash_job *trash_new(const char *fail_msg);
/* Move path aside into t (APP names the file in ROOT/tmp). */
void trash_add(struct engine *e, struct trash_job *t, const char *path,
	       const char *app);
/* r's folder and its static copy into t. */
void trash_run_dirs(struct trash_job *t, const struct run *r);
/* Start the child that deletes t's folders, and give t up (l NULL, or a
 * child that cannot start: they are deleted here). */
void trash_start(struct trash_job *t, struct loop *l);
/* At exit: children still deleting are KILLed; what is left stays in
 * ROOT/tmp for the next start's wipe. */
void trash_cancel_all(void);
/* trash_run_dirs() and trash_start() in one: r's folders go at once. */
void run_remove_dirs(const struct run *r);
/* In the unpack child: the static site's copy beside r's folder, if r's
 * manifest names one. */
int copy_static(struct engine *e, const struct run *r);
/* Point ROOT/run/APP.static at r's static copy. */
int swap_static(struct engine *e, const struct run *r);
/* In the unpack child: r's folder to the app's user (or the engine's
 * run user). */
int give_release(const struct engine *e, const struct run *r);
/* r's meta file, with ri and r's process types: "deploying" until it
 * is live or failed. */
int record_release(const struct run *r, struct release_info *ri);
/* A push's build: what c sends after its request goes into a's log line
 * by line (source "build") and into a new output record, which the
 * push's deploy takes over; a->building until c closes. */
void build_log_open(struct engine *e, struct app *a, struct client *c);
/* A push's open build (a->building): its connection and its output
 * record (borrowed). */
struct client *build_log_client(struct build_log *bl);
struct deployout *build_log_output(struct build_log *bl);

#endif
