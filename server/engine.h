/*
 * engine: the one long-lived process per host ("berth serve").  It owns
 * the event loop, the control socket (client.h, whose requests go to the
 * command table), the apps and everything they run.  Unpacking and
 * builds run in children.
 *
 * One thread, one loop (loop.h): a handler that blocks stops every app's
 * deploy, every control request and the routing table's updates.  So
 * long work runs in children the loop watches (the reaper, runner.h's
 * runner_start()), on timers, or over non-blocking sockets: the
 * unpacking, the release phase, health checks, the embedded PostgreSQL's
 * first use (its user, initdb, its start-up: postgres_when_ready()) and
 * every call on an app's database (postgres.h), the lookup of an outside
 * database's host name (pgresolve.h), the routing table's and the
 * certificates' requests to nginx (router.h, certs.h: queued, each within
 * 2 s; a deploy waits for its switch in a state of its own, stop and rm
 * for their route before TERM).  An app's user is made again (useradd, when a
 * process or a deploy script starts for an app whose user was removed
 * by hand; a build or the unpack child normally makes it), removed, and
 * renamed (usermod) in a child, the process waiting meanwhile as
 * "starting" (runs.h, isolate.h); a cgroup that does not empty at once
 * is removed from a timer (isolate.h); folders to delete (an app's, run
 * folders, old releases and their bundles) are renamed into ROOT/tmp and
 * deleted by a child (releases.h); a bundle is copied into its release
 * folder by a child (deploy.h), and the cluster's bundles are read and
 * written by children (cluster.h), as the disk walks of status and
 * apps:info are (status.h), and a logs tail of over 1000 lines, with -f
 * or not (appcommands.h).
 *
 * What still blocks the loop, and how long at most: each spawn until the
 * child has exec'd (spawn.h), and each fork of a child (a few ms); the
 * state files a command changes, written whole with two fsyncs (util.h:
 * "keys add" 26 ms, "config set" 7 ms measured here); a logs tail of at
 * most 1000 lines, and "logs --server"'s tail.  nginx's checks and waits ("nginx -t", the stale masters
 * a killed engine left, its start, its stop) run only at start-up and
 * shutdown, outside the loop (nginx.h); so does what isolate waits for
 * (isolate_init(), isolate_finish_now()), the wait for a postmaster a
 * killed engine left (postgres.h), and the dashboard's stop (TERM, at
 * most 5 s, then KILL: dashboard.h).  Before the loop runs and after it
 * stopped, the router's requests are waited for (router.h).
 */
#ifndef BERTH_ENGINE_H
#define BERTH_ENGINE_H

#include <stdarg.h>
#include <sys/types.h>

#include "client.h"
#include "config.h"
#include "enginepath.h"
#include "ports.h"
#include "util.h"

struct config;
struct loop;
struct nginx;
struct routerlog;
struct appstats;
struct postgres;
struct sshd;
struct app;
struct client;
struct certs;
struct isolate;
struct cluster;
struct strv;
struct cron_spec;
struct route_remote;

/* What on_deploy_end hears. */
struct deploy_end {
	struct app *app;
	int kind;			/* enum deploy_kind (app.h) */
	const char *source;		/* "push", "cli", "config", ... or NULL */
	int number;			/* the local release it made or ran */
	int ok;				/* 1: that release is live */
	const struct strv *env_changes;	/* config set/unset it applied */
	const char *commit;		/* or NULL */
	const char *error;		/* !ok: why (one line), or NULL */
	/* ok: the deploy's client, not answered yet (or NULL).  The hook
	 * may take it (client_ref, client_taken = 1) and answer it later
	 * with client_ok_fields("release=N") or an error; else it is
	 * answered "ok release=N" when the hook returns. */
	struct client *client;
	int client_taken;
};

struct engine {
	struct config *cfg;
	struct loop *loop;
	struct nginx *nginx;
	struct routerlog *routerlog;	/* router lines into app logs */
	struct appstats *stats;		/* requests and memory per app */
	struct postgres *pg;
	struct certs *certs;		/* HTTPS certificates (certs.h) */
	struct sshd *sshd;
	struct app *apps;		/* list, sorted by name */
	struct client_server *ctl;	/* the control socket (client.h) */
	char *self_exe;
	int sig_fd;
	int incoming_fd;		/* inotify, or -1 */
	int stopping;
	struct ports ports;
	struct config file_cfg;		/* berth.yaml as last read (SIGHUP) */
	int drop_priv;			/* run apps as cfg->run_user */
	uid_t run_uid;
	gid_t run_gid;
	struct isolate *iso;		/* users, cgroups, sandbox (isolate.h) */
	struct cluster *cluster;	/* cluster: in berth.yaml, else NULL */
	/*
	 * Called once when any deploy ends, after a failed one's client
	 * was answered (the cluster publishes what went live here, and may
	 * keep a push's client to report the rollout on other hosts).  NULL: nobody
	 * listens.  The callee must not free the app.
	 */
	void (*on_deploy_end)(void *arg, struct deploy_end *end);
	void *on_deploy_end_arg;
	/*
	 * Asked when a cron entry of a live release is due: 0 skips this
	 * run (in a cluster, another host runs the entry).  NULL: every
	 * entry runs here.
	 */
	int (*cron_may_run)(void *arg, struct app *a,
			    const struct cron_spec *cs);
	void *cron_may_run_arg;
	/*
	 * "route: group": the other hosts of the cluster that take a's
	 * requests too, in *out (valid until the hook's owner is asked
	 * again); 0 and nothing else: this host's processes alone.
	 */
	size_t (*route_remote)(void *arg, const struct app *a,
			       const struct route_remote **out);
	void *route_remote_arg;
};

/* Run the engine until SIGTERM/SIGINT.  Returns the exit code. */
int engine_serve(struct config *cfg);

/* engine_path() and engine_spawn_as_app_user(): enginepath.h, below
 * the files that call them. */

/* The command table (commands.c): run argv for client c. */
void commands_dispatch(struct engine *e, struct client *c, int argc,
		       char **argv);
/* One line per command, for "help". */
void commands_help(struct client *c);
/* The table itself, without an engine: commands.h. */

#endif
