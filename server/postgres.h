/*
 * postgres: databases for apps that ask ("postgres: true").
 *
 * With cfg->postgres set (a conninfo of a role that may create roles and
 * databases) berth uses that server.  Otherwise it runs an embedded
 * cluster under ROOT/postgres (initdb on first use, as an unprivileged
 * user, supervised by the engine, listening on a unix socket in
 * ROOT/postgres/run and on no TCP port).
 *
 * Per app: role and database named "berth_NAME" with '-' as '_' (quoted
 * with PQescapeIdentifier anyway), a random password, CONNECT revoked
 * from PUBLIC.  Calls block for at most a few seconds (connect_timeout).
 */
#ifndef BERTH_POSTGRES_H
#define BERTH_POSTGRES_H

#include "util.h"

struct config;
struct loop;
struct postgres;

int postgres_init(struct postgres **out, const struct config *cfg,
		  struct loop *l);
/* Ensure the app's role and database exist (reused when they do);
 * *url gets DATABASE_URL (caller frees).  Starts the embedded cluster
 * on first use. */
int postgres_provision(struct postgres *pg, const char *app, char **url);
/* Drop the app's database and role. */
int postgres_drop(struct postgres *pg, const char *app);
/* "database berth_myapp, 7.9 MB" lines into out. */
int postgres_info(struct postgres *pg, const char *app, struct buf *out);
/* Stop the embedded cluster (fast shutdown), if running. */
void postgres_shutdown(struct postgres *pg);
void postgres_free(struct postgres *pg);

#endif
