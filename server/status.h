/*
 * status: "berth status", the host at a glance: engine version and
 * uptime, the state folder and its format, nginx and PostgreSQL, apps and
 * processes, disk used per app, certificates.
 *
 * The disk figures walk the app's folders (repository, releases, logs,
 * build cache) without following links (a release is a tree the app
 * controls), so the answer takes as long as a "du" of them.
 */
#ifndef BERTH_STATUS_H
#define BERTH_STATUS_H

struct engine;
struct client;

void status_cmd(struct engine *e, struct client *c);

#endif
