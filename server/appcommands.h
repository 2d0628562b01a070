/*
 * appcommands: the handlers of the app commands.  commands.c parses a
 * request and checks who may send it; these act and answer c, each
 * exactly once (at once, or when what they started ends: a deploy, a
 * stop, a one-off run).  The app's state changes only as the handler
 * says; a bad argument is answered with an error and changes nothing.
 *
 * In the engine's loop.  What blocks it: logs reads a tail of at most
 * 1000 lines, unfiltered, in the loop (a longer or filtered one, up to
 * 100000 lines, about 1 s for 10 MiB on a loaded VM, is read by a child;
 * with -f the lines written meanwhile are then read from where the
 * child's tail ended, 256 KiB a turn, before the follow starts);
 * rm renames the app's folders aside (a child deletes them,
 * releases.h); the rest starts work that ends in a
 * callback (pg and rm --drop-database ask PostgreSQL off the loop,
 * postgres.h; rm marks the app removing while its database is dropped,
 * and a failed drop leaves it as it was).
 */
#ifndef BERTH_APPCOMMANDS_H
#define BERTH_APPCOMMANDS_H

#include "app.h"

struct client;
struct engine;

/* key: only the apps that key reaches (access.h), as a non-admin; NULL:
 * every app */
void app_cmd_apps(struct engine *e, struct client *c, const char *key);
/* A new app with no release ("apps" lists it as new). */
void app_cmd_create(struct engine *e, const char *name, struct client *c);
/* A push's build: what c sends after its request goes into the app's log
 * line by line (source "build"); the app is made if it does not exist. */
void app_cmd_build_log(struct engine *e, const char *name, struct client *c);
void app_cmd_ps(struct app *a, struct client *c);
/* want: NULL, or only the lines of a process, a type or a source
 * (logger_source_matches()). */
void app_cmd_logs(struct engine *e, const char *name, long n, int follow,
		  const char *want, struct client *c);
/* Engine exit: the tails being read (or sent, or caught up with before a
 * follow) are given up, their children killed; a client gets "the engine
 * is stopping", or "ok" once its tail was sent (as followers do). */
void app_cmd_logs_cancel_all(void);
/*
 * stop: the route answers 503 "app is stopped" at once; the processes get
 * TERM once nginx has that route (liveroute_when_applied()), or after
 * its deadline (c hears why), then c gets ok when they exited.  A start
 * before nginx answered keeps them running; rm stops them itself.  c may
 * be NULL (the cluster).  rm the same: route first, TERM after.
 */
void app_cmd_stop(struct app *a, struct client *c);
void app_cmd_restart(struct app *a, struct client *c);
void app_cmd_start(struct app *a, struct client *c);
/* "restart APP PROC": only a type (web, worker) or a process (worker.2):
 * stopped and started again, web ones out of the route meanwhile (TERM
 * once nginx has that route, or after its deadline); when that is every
 * web process, the app's zero-downtime restart instead. */
void app_cmd_restart_proc(struct app *a, const char *want,
			  struct client *c);
void app_cmd_scale(struct app *a, int argc, char **argv, struct client *c);
void app_cmd_rm(struct app *a, int drop_db, struct client *c);
void app_cmd_config(struct app *a, int argc, char **argv, struct client *c);
void app_cmd_releases(struct app *a, struct client *c);
/*
 * "releases:output APP [N]": the kept output of the deploy that made
 * release N, or of the newest deploy (deployout.h); one still running
 * is followed until it ends.  Also --deploy D (a record by its own
 * number: a failed build has no release), --no-follow, and --list (the
 * records, newest first: DEPLOY RELEASE STATUS KIND TIME COMMIT).
 */
void app_cmd_releases_output(struct app *a, int argc, char **argv,
			     struct client *c);
void app_cmd_rollback(struct app *a, int number, struct client *c);
void app_cmd_pg(struct app *a, struct client *c);
/* "url NAME": where the app answers (http://NAME.DOMAIN[:PORT]/). */
void app_cmd_url(struct app *a, struct client *c);
/*
 * "run APP CMD..." (oneoff.c parses): a one-off process "run.N" of the
 * live release, with its environment, folder and user, started the way
 * the app's processes are.  Attached: stdin, stdout and stderr are the
 * three descriptors c passed with its request (a terminal becomes the
 * controlling terminal); c gets "ok exit-status=N" when it ends,
 * and a client that hangs up stops it; on a terminal, TERM is term (the
 * client's: "run:term APP TERM CMD...") or else xterm.  Detached (c answered at once):
 * its output goes to the app's log as run.N.  cmd is a shell command.
 */
void app_cmd_run(struct app *a, const char *cmd, int detached,
		 const char *term, struct client *c);

#endif
