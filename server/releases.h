/*
 * releases: a release's folders and records, for the deploy (deploy.c):
 * the run folder and the static site's copy beside it, handing the
 * unpacked release to the app's user, the release's meta file, and the
 * output record a push's build opens (its deploy goes on writing it).
 * The files themselves are release.c's and deployout.c's.
 *
 * copy_static() and give_release() run in the unpack child, never in the
 * engine; the rest run in the engine and touch only small files.
 * Errors: -1 with error_last() set.
 */
#ifndef BERTH_RELEASES_H
#define BERTH_RELEASES_H

#include "app.h"

struct deploy;
struct deployout;

/* Remove r's folder and its static copy: 0 or -1 (logged). */
int run_remove_dirs(const struct run *r);
/* In the unpack child: the static site's copy, if the manifest names
 * one. */
int copy_static(struct deploy *d);
/* Point ROOT/run/APP.static at the new release's static copy. */
int swap_static(struct deploy *d);
/* In the unpack child: the release folder to the app's user. */
int give_release(struct deploy *d);
/* The release's meta file, "deploying" until it is live or failed. */
int record_release(struct deploy *d);
/* A push's open build (a->building): its connection and its output
 * record (borrowed). */
struct client *build_log_client(struct build_log *bl);
struct deployout *build_log_output(struct build_log *bl);

#endif
