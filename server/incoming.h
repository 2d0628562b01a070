/*
 * incoming: bundles dropped into ROOT/incoming deploy (as Keter's
 * incoming folder): NAME.tar.gz or NAME.keter deploys app NAME when the
 * file is written or moved in; deleting it removes the app (once a
 * deploy of it running ends).  Bundles already there at start deploy
 * apps not yet known.  Other names are logged and ignored.
 *
 * In the engine's loop: an inotify descriptor (e->incoming_fd), read
 * without blocking; each deploy is app_deploy()'s, with no client.
 */
#ifndef BERTH_INCOMING_H
#define BERTH_INCOMING_H

struct engine;

/* Watch ROOT/incoming and deploy what is there; a folder that cannot be
 * watched is logged (the engine runs on without it). */
void incoming_start(struct engine *e);

#endif
