/*
 * engine: the one long-lived process per host ("berth serve").  It owns
 * the event loop, the control socket, the apps and everything they run.
 * Nothing here blocks for long: unpacking and builds run in children.
 *
 * Control connections are "clients".  A command handler answers with
 * client_data() lines and ends with client_ok() or client_error().  A
 * handler that needs time (deploy, logs -f) keeps a reference with
 * client_ref() and drops it with client_unref(); if the peer hangs up in
 * between, writes are dropped silently and client_gone() says so.
 */
#ifndef BERTH_ENGINE_H
#define BERTH_ENGINE_H

#include <stdarg.h>
#include <sys/types.h>

#include "config.h"
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
	struct client *clients;		/* open control connections */
	char *self_exe;
	int ctl_fd;
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
	 * Called once when any deploy ends, after its client was answered
	 * (the cluster publishes what went live here).  NULL: nobody
	 * listens.  The callee must not free the app.
	 */
	void (*on_deploy_end)(void *arg, const struct deploy_end *end);
	void *on_deploy_end_arg;
};

/* Run the engine until SIGTERM/SIGINT.  Returns the exit code. */
int engine_serve(struct config *cfg);

struct spawn;
/* With "user:" set, make s run as that user (apps, release commands). */
void engine_spawn_as_app_user(const struct engine *e, struct spawn *s);

/* A path under the state directory (fresh string). */
char *engine_path(const struct engine *e, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

void client_data(struct client *c, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
void client_ok(struct client *c);
void client_error(struct client *c, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
void client_ref(struct client *c);
void client_unref(struct client *c);
int client_gone(const struct client *c);
/* Bytes the peer sends after its request line (a command that reads
 * input, e.g. a build's log), as they come; until it hangs up. */
void client_on_input(struct client *c,
		     void (*fn)(struct client *, const char *, size_t, void *),
		     void *arg);
/* Take what the peer has sent so far, now (its on_input gets it), not
 * when the loop comes to it: a deploy orders its lines after what a
 * build's connection wrote before the deploy was asked for.  The peer
 * may hang up meanwhile (its on_close runs). */
void client_read_input(struct client *c);
/* Called once when the peer hangs up (for followers). */
void client_on_close(struct client *c, void (*fn)(struct client *, void *),
		     void *arg);
/* Descriptors the peer passed with its request (SCM_RIGHTS; run's
 * stdin, stdout and stderr), at most CLIENT_MAX_FDS: up to max of them
 * into fds, in order, now owned by the caller.  The rest are closed;
 * a request nobody takes them from has them closed with it. */
#define CLIENT_MAX_FDS 3
size_t client_take_fds(struct client *c, int *fds, size_t max);
/* Bytes queued and not yet written (to bound followers). */
size_t client_pending(const struct client *c);

/* The command table (commands.c): run argv for client c. */
void commands_dispatch(struct engine *e, struct client *c, int argc,
		       char **argv);
/* One line per command, for "help". */
void commands_help(struct client *c);
/* The table itself, without an engine: commands.h. */

#endif
