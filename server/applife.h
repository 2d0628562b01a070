/*
 * applife: the apps' life with the engine, above their deploys: bringing
 * every app back at start (apps_load()), adopting one imported
 * (app_adopt()), removing one (app_remove_now()), stopping them all with
 * the engine (apps_shutdown(), apps_free()).  app.c below keeps the
 * registry and the state files; deploy.c (which these start and stop)
 * reaches app_remove_now() only through the callback the engine gives
 * it (deploy.h).
 *
 * Runs in the engine's loop.  What blocks it: app_remove_now() deletes
 * the app's folders (as long as they are big); the rest reads or writes
 * small files.  A deploy started here is asynchronous.
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
/* Delete every trace of an app whose processes are gone, and free it. */
void app_remove_now(struct app *a);
/* The engine is stopping: deploys end (interrupted, or live ones retire
 * the old release at once), waiting ones are answered, every process gets
 * TERM, then KILL after the stop timeout; nothing restarts any more. */
void apps_shutdown(struct engine *e);
/* Free every app and what it holds (engine exit, after apps_shutdown()):
 * processes still running are killed. */
void apps_free(struct engine *e);

#endif
