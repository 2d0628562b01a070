/*
 * engine: the one long-lived process per host ("berth serve").  It owns
 * the event loop, the control socket (client.h, whose requests go to the
 * command table), the apps and everything they run.  Unpacking and
 * builds run in children.
 *
 * One thread, one loop (loop.h): a handler that blocks stops every app's
 * deploy, every control request and the routing table's updates.  Most
 * work is asynchronous (children watched by the reaper, timers, the
 * router's socket).  What still blocks the loop, and how long at most:
 * a first embedded PostgreSQL (initdb 300 s, start-up 30 s) and each
 * libpq call (postgres.h); "nginx -t" and "nginx -s" (20 s) and an
 * own-mode reload's wait (5 s) (nginx.h).
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

/* What on_deploy_end hears. */
struct deploy_end {
	struct app *app;
	int kind;			/* enum deploy_kind (app.h) */
	const char *source;		/* "push", "cli", "config", ... or NULL */
	int number;			/* the local release it made or ran */
	int ok;				/* 1: that release is live */
	const struct strv *env_changes;	/* config set/unset it applied */
	const char *commit;		/* or NULL */
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
