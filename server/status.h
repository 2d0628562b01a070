/*
 * status: "berth status", the host at a glance: engine version and
 * uptime, the state folder and its format, nginx and PostgreSQL, apps and
 * processes, disk used per app, certificates.
 *
 * The disk figures walk the app's folders (repository, releases, logs,
 * build cache) without following links (a release is a tree the app
 * controls): as long as a "du" of them (0.6 s for a build cache of
 * 50,000 files, warm), so a child walks them (status_disk_async()) and
 * the answer ends when it is done; the loop goes on meanwhile.
 */
#ifndef BERTH_STATUS_H
#define BERTH_STATUS_H

#include <stddef.h>

struct engine;
struct client;
struct loop;
struct strv;

/* In the loop; its answer ends from the loop, once the disk is walked. */
void status_cmd(struct engine *e, struct client *c);
/* Bytes on disk under path, links not followed (0 if missing).  Blocks
 * for the whole walk: for a child (status_disk_async()). */
unsigned long long status_disk_used(const char *path);

/*
 * status_disk_used() of each of paths, in a child: done(arg, sizes) runs
 * once, from the loop and never from inside this call, with sizes[i] for
 * paths[i] (0 where the child gave nothing: logged).  paths are copied.
 * A child that cannot start: the walk is made here (logged), the answer
 * still comes from the loop.  status_disk_cancel_all() (engine exit)
 * kills the walks in flight and calls their done with sizes NULL.
 */
typedef void (*status_disk_fn)(void *arg, const unsigned long long *sizes);
void status_disk_async(struct loop *l, char *const *paths, size_t n,
		       status_disk_fn done, void *arg);
void status_disk_cancel_all(struct loop *l);
/* An app's parts as status shows them (repository, releases, logs,
 * cache), STATUS_DISK_PARTS paths appended to out. */
#define STATUS_DISK_PARTS 4
void status_disk_paths(struct engine *e, const char *app, struct strv *out);
/* "12.3 MiB" */
void status_format_bytes(char *out, size_t len, unsigned long long n);

#endif
