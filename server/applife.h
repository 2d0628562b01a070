/*
 * applife: the apps' life with the engine, above their deploys: bringing
 * every app back at start (apps_load()), adopting one imported
 * (app_adopt()), removing one (app_remove_now()), stopping them all with
 * the engine (apps_shutdown(), apps_free()).  app.c below keeps the
 * registry and the state files; deploy.c (which these start and stop)
 * reaches app_remove_now() only through the callback the engine gives
 * it (deploy.h).
 *
 * Runs in the engine's loop.  app_remove() renames the app's folders
 * (repository, releases, cache, logs, its live release's run folders)
 * into ROOT/tmp, where a child deletes them (releases.h: trash_*()), and
 * its user goes in a child (isolate_remove_app()).  apps_free(),
 * at exit, waits for users still being removed (folders still being
 * deleted are left to the wipe of ROOT/tmp at the next start).  The rest
 * reads or writes small files.  A deploy started here is asynchronous.
 */
#ifndef BERTH_APPLIFE_H
#define BERTH_APPLIFE_H

#include "app.h"

/* Load every app from ROOT/apps and bring each back on its release. */
int apps_load(struct engine *e);
/* Load an app whose folder ROOT/apps/NAME was just put in place (import)
 * and bring it up on its release as an engine start would; c (may be
 * NULL) is answered when it serves or fails.  -1 if it exists. */
int app_adopt(struct engine *e, const char *name, struct client *c);
/*
 * Delete every trace of an app whose processes are gone, and free it.
 * Its user and group go last, in a child: done(arg) (may be NULL) runs
 * once they are gone, or could not go (that is logged), from the loop,
 * or from inside this call when there is no user to remove.
 */
void app_remove(struct app *a, void (*done)(void *arg), void *arg);
/* app_remove() without a callback (deploy.h's remove_now). */
void app_remove_now(struct app *a);
/* The engine is stopping: deploys end (interrupted, or live ones retire
 * the old release at once), waiting ones are answered, every process gets
 * TERM, then KILL after the stop timeout; nothing restarts any more. */
void apps_shutdown(struct engine *e);
/* Free every app and what it holds (engine exit, after apps_shutdown()):
 * processes still running are killed. */
void apps_free(struct engine *e);

#endif
