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
 * from PUBLIC.
 *
 * What blocks, in the calling process (the engine's loop): the long
 * waits of the embedded cluster do not.  postgres_when_ready() makes it
 * ready on the loop: initdb on first use in a child the loop watches
 * (runner_start(), at most 300 s), the postmaster's start, and a ping
 * every 50 ms until it accepts (at most 30 s; each ping is one round trip
 * over its unix socket).  Restarts after a crash only spawn
 * (supervise.h).  What still blocks: every call but
 * postgres_when_ready() and postgres_size_async() waits for its libpq
 * round trips (connect_timeout 5 s, then statements of at most 60 s);
 * postgres_drop(), postgres_rename() and postgres_info() on a postmaster
 * that has not answered since it started (the engine's start, a restart
 * after a crash) wait for it, at most 30 s; a first use as root may run
 * useradd (at most 30 s); a postmaster left over by a killed engine is
 * stopped and waited for (at most 40 s); postgres_shutdown() waits for
 * ours to stop (at most about 40 s).
  */
#ifndef BERTH_POSTGRES_H
#define BERTH_POSTGRES_H

#include "util.h"

struct config;
struct loop;
struct postgres;

int postgres_init(struct postgres **out, const struct config *cfg,
		  struct loop *l);
/*
 * Make the server ready without blocking: for the embedded cluster,
 * create it on first use (initdb), start it if it is down, and wait on
 * the loop until it accepts connections.  1: ready now (an outside
 * server, or ours answered since it started), fn is not called.  0:
 * fn(arg, result) is called once from the loop, result 0 when ready or
 * -1 with error_last(); *w is the wait, for postgres_wait_cancel()
 * until then.  -1 with error_last(): cannot even begin (no PostgreSQL
 * installed, an unusable state directory).  Waits started while one is
 * under way share it.  Call it before postgres_provision().
 */
struct postgres_wait;
typedef void (*postgres_ready_fn)(void *arg, int result);
int postgres_when_ready(struct postgres *pg, postgres_ready_fn fn,
			void *arg, struct postgres_wait **w);
/* fn will not be called (w NULL: nothing).  Once fn was called, w is
 * gone: forget it there.  The initdb or start under way goes on. */
void postgres_wait_cancel(struct postgres *pg, struct postgres_wait *w);
/* Ensure the app's role and database exist (reused when they do);
 * *url gets DATABASE_URL (caller frees).  The embedded cluster must
 * exist (postgres_when_ready()); it is started if it is down. */
int postgres_provision(struct postgres *pg, const char *app, char **url);
/* Drop the app's database and role. */
int postgres_drop(struct postgres *pg, const char *app);
/*
 * The app from is renamed to: its role and database become to's (the
 * role keeps its password; its saved URL moves too), and *url gets the
 * new DATABASE_URL (caller frees).  A database is renamed only with
 * nobody in it: the app's role may not log in meanwhile and its
 * connections (its processes', a pg:psql's) are closed first.  Sessions
 * of anyone else, and the app's pg:backup or pg:restore (pg_dump,
 * pg_restore), are never cut: they make it fail with ERR_BUSY, naming
 * them.  ERR_NOTFOUND: from has no database; ERR_EXISTS: to's names are
 * taken.  Any failure changes nothing.  Blocks up to about 10 s.
 */
int postgres_rename(struct postgres *pg, const char *from, const char *to,
		    char **url);
/* "database berth_myapp, 7.9 MB" lines into out. */
int postgres_info(struct postgres *pg, const char *app, struct buf *out);
/*
 * The size of app's database in bytes, asked without blocking: a
 * non-blocking libpq connection watched by the loop.  fn(arg, app, bytes)
 * is called once from the loop, bytes -1 when it could not tell (no such
 * database, an error, no answer within 10 s); never when postgres_free()
 * comes first.  Never starts the embedded cluster: -1 at once when it is
 * not running.  app is copied.
 */
typedef void (*postgres_size_fn)(void *arg, const char *app,
				 long long bytes);
int postgres_size_async(struct postgres *pg, const char *app,
			postgres_size_fn fn, void *arg);
/* Stop the embedded cluster (fast shutdown), if running; an initdb
 * under way is killed and its half-made cluster removed; waits that
 * were not called back never are. */
void postgres_shutdown(struct postgres *pg);
/* Frees memory only: call postgres_shutdown() first to stop the cluster. */
void postgres_free(struct postgres *pg);

/*
 * Added for the engine and the tests:
 *
 * postgres_url_env() adds the libpq variables of a DATABASE_URL to env:
 * PGHOST PGPORT PGUSER PGPASSWORD PGDATABASE, and PGPASS (the name
 * Keter's plugin uses).  The engine calls it with the app's DATABASE_URL
 * when it builds a process's environment.  ERR_INVALID for a bad URL.
 *
 * postgres_ident() is the role and database name of an app (caller
 * frees): "berth_" + name with '-' as '_', at most 63 bytes; longer names
 * become "berth__" + a hash + a prefix of the name.
 *
 * postgres_running() is the pid of the embedded postmaster, or 0.
 */
int postgres_url_env(const char *url, struct strv *env);
char *postgres_ident(const char *app);
int postgres_running(const struct postgres *pg);

#endif
