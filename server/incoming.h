/*
 * incoming: bundles dropped into ROOT/incoming deploy (as Keter's
 * incoming folder): NAME.tar.gz or NAME.keter deploys app NAME when the
 * file is written or moved in; deleting it removes the app (once a
 * deploy of it running ends).  Bundles already there at start deploy
 * apps not yet known.  Other names are logged and ignored.
 *
 * In the engine's loop: an inotify descriptor (e->incoming_fd), read
 * without blocking.  What it does with a bundle is the engine's, through
 * the handlers it gives incoming_start(): this file calls neither the
 * deploy nor the command handlers by name.
 */
#ifndef BERTH_INCOMING_H
#define BERTH_INCOMING_H

#include "app.h"

struct engine;

/* Both required.  deploy: start (or queue) a deploy, as app_deploy()
 * (here always DEPLOY_NEW, source "incoming", no client).  remove: remove
 * the app as "rm NAME" does. */
struct incoming_handlers {
	void (*deploy)(struct engine *e, const char *name,
		       enum deploy_kind kind, const struct deploy_opts *o,
		       struct client *c);
	void (*remove)(struct app *a);
};

/* Watch ROOT/incoming and deploy what is there; a folder that cannot be
 * watched is logged (the engine runs on without it).  h is borrowed for
 * the engine's life. */
void incoming_start(struct engine *e, const struct incoming_handlers *h);

#endif
