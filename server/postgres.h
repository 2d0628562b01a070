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
 * What blocks, in the calling process (the engine's loop): nothing that
 * waits for PostgreSQL.  postgres_when_ready() makes the embedded cluster
 * ready on the loop: as root, the system user "berth" made on first use
 * (useradd in a child, at most 30 s), initdb on first use in a child the
 * loop watches
 * (runner_start(), at most 300 s), the postmaster's start, and a probe
 * every 50 ms until it accepts (at most 30 s), each a non-blocking
 * connection the loop watches (given up after 5 s).  Restarts after a
 * crash only spawn (supervise.h).  The calls on an app's database
 * (postgres_*_async()) wait for that, then connect and run their
 * statements in a child of the engine the loop watches (connect_timeout
 * 5 s, statements of at most 60 s, the whole at most 180 s), and answer
 * through a callback; postgres_size_async() asks over a non-blocking
 * connection on the loop, after a child looked up an outside server's
 * host name (pgresolve.h; the op's children look it up themselves).  The
 * embedded cluster is reached over its unix socket: no lookup.
 *
 * What still blocks, and for how long: at the engine's start, before
 * its loop runs, with a cluster already made, its user is looked up (made
 * if it went missing: useradd, at most 30 s); a postmaster left over by a
 * killed engine is stopped and waited for when ours starts (at most 40 s;
 * such a postmaster is found at the engine's start, before the loop);
 * postgres_shutdown() waits for ours to stop (at most about 40 s, at the
 * engine's exit).
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
 * under way share it.  The postgres_*_async() calls below call it
 * themselves.
 */
struct postgres_wait;
typedef void (*postgres_ready_fn)(void *arg, int result);
int postgres_when_ready(struct postgres *pg, postgres_ready_fn fn,
			void *arg, struct postgres_wait **w);
/* fn will not be called (w NULL: nothing).  Once fn was called, w is
 * gone: forget it there.  The initdb or start under way goes on. */
void postgres_wait_cancel(struct postgres *pg, struct postgres_wait *w);
/*
 * The calls on an app's database, off the loop.  Each returns at once
 * with the op under way (never NULL), and later calls fn(arg, result,
 * out) once, from the loop, never from inside the call: result 0 with out
 * (borrowed for the call), or a negative code with error_last() and out
 * NULL.  Names are checked (ERR_INVALID) and copied.  The embedded
 * cluster is made ready first (postgres_when_ready(): created on first
 * use only by postgres_provision_async(); the others find nothing there
 * without one).  Once fn was called the op is gone: forget it there.
 * Never called after postgres_free().
 */
struct postgres_op;
typedef void (*postgres_done_fn)(void *arg, int result, const char *out);

/* Ensure the app's role and database exist (reused when they do); out
 * is its DATABASE_URL. */
struct postgres_op *postgres_provision_async(struct postgres *pg,
					     const char *app,
					     postgres_done_fn fn, void *arg);
/* Drop the app's database and role (and its saved URL); out is "". */
struct postgres_op *postgres_drop_async(struct postgres *pg, const char *app,
					postgres_done_fn fn, void *arg);
/*
 * The app from is renamed to: its role and database become to's (the
 * role keeps its password; its saved URL moves too), and out is the new
 * DATABASE_URL.  A database is renamed only with nobody in it: the app's
 * role may not log in meanwhile and its connections (its processes', a
 * pg:psql's) are closed first.  Sessions of anyone else, and the app's
 * pg:backup or pg:restore (pg_dump, pg_restore), are never cut: they make
 * it fail with ERR_BUSY, naming them.  ERR_NOTFOUND: from has no
 * database; ERR_EXISTS: to's names are taken.  Any failure changes
 * nothing.  Takes up to about 10 s.
 */
struct postgres_op *postgres_rename_async(struct postgres *pg,
					  const char *from, const char *to,
					  postgres_done_fn fn, void *arg);
/* out: "database berth_myapp, 7.9 MB\n"; ERR_NOTFOUND without one. */
struct postgres_op *postgres_info_async(struct postgres *pg, const char *app,
					postgres_done_fn fn, void *arg);
/* fn will not be called (op NULL: nothing).  A statement already sent
 * runs to its end (a rename is never cut half way). */
void postgres_op_cancel(struct postgres *pg, struct postgres_op *op);
/*
 * The size of app's database in bytes, asked without blocking: a
 * non-blocking libpq connection watched by the loop.  fn(arg, app, bytes)
 * is called once from the loop, bytes -1 when it could not tell (no such
 * database, an error, no answer within 10 s, the outside server's name
 * looked up included); never when postgres_free()
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
