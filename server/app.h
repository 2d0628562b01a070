/*
 * app: the registry of deployed applications (struct app), their state
 * and config files under ROOT/apps/NAME.  The structures of a release running
 * (struct run) and of its processes (struct proc) are declared here for
 * the app's files: runs.c runs them, process.c starts one, deploy.c
 * (the deploy state machine, deploy.h) makes and swaps them, releases.c
 * keeps their folders and records, appcommands.c answers the commands.
 *
 * Loading every app at start, removing one and stopping them with the
 * engine are applife.h's, above the deploy: this file calls no file of
 * the app's above it (docs/architecture.md, "Direction of calls").
 *
 * Everything runs in the engine's loop.  What blocks it:
 * apps_kill_leftovers() reads /proc; the rest writes small files.  A
 * deploy is asynchronous: app_deploy() answers its client when it ends.
 */
#ifndef BERTH_APP_H
#define BERTH_APP_H

#include <stdint.h>
#include <sys/types.h>

#include "isolate.h"
#include "manifest.h"
#include "supervise.h"
#include "util.h"

struct engine;
struct client;
struct logger;
struct deploy;
struct health;
struct build_log;

enum proc_state {
	PROC_UP,	/* running */
	PROC_BACKOFF,	/* crashed, waiting to be restarted */
	PROC_STOPPING,	/* TERM sent, waiting for exit */
	PROC_DEAD,	/* exited and not coming back */
	PROC_STARTING,	/* waits for its app's user to be made or renamed
			 * (isolate_user_ready()), then starts */
};

#define PROC_TAIL 12

struct proc {
	struct app *app;
	struct run *run;
	struct proc *next;
	const struct proc_spec *spec;	/* borrowed from run->m */
	char name[48];			/* "web.1" */
	int index;
	int port;			/* PORT: 0 unless web */
	/*
	 * The listening socket berth bound for a web process and hands it
	 * at fd 3 (handoff.h), kept while the process may be restarted;
	 * -1 when it has none (or binds PORT itself, as it turned out).
	 */
	int sock_fd;
	int sock_port;			/* that socket's port, 0 if none */
	int serves_on;			/* where it answers, once known: port
					 * or sock_port; 0 until then */
	pid_t pid;			/* 0 when not running */
	pid_t pgid;			/* its process group, while any member lives */
	uint64_t group_timer;		/* polls a stopping group after its leader left */
	enum proc_state state;
	int64_t started_ms;
	int restarts;			/* crashes it was restarted after */
	/* Restart after a crash, with back-off (supervise.h, set up by
	 * runs.c): its timer is pending while the state is PROC_BACKOFF. */
	struct supervisor restart;
	uint64_t kill_timer;		/* KILL once a stop took too long */
	/*
	 * Restarted after a crash and binding PORT itself: the port was
	 * free meanwhile, so no request goes to it until the socket that
	 * listens there is found to be the app's own (polled on
	 * port_timer).
	 */
	int port_pending;
	uint64_t port_timer;
	int port_check_on_start;	/* a restart after a crash: as above */
	/* PROC_STARTING: its app's user is being made (useradd) or renamed
	 * (usermod) in a child; it starts from the callback (runs.c). */
	struct isolate_wait user_wait;
	int out_fd;
	struct buf partial;		/* an unfinished output line */
	char *tail[PROC_TAIL];		/* last output lines, for errors */
	int tail_pos;
	int last_status;
	int oneoff;			/* a cron or run process: gone once
					 * it exits */
	struct proc_spec *own_spec;	/* a run's command (spec points to
					 * it), freed with the process */
	int attached;			/* a run with the client's stdio: */
	int stdio[3];			/* its stdin, stdout, stderr until
					 * started (then closed here) */
	int tty;			/* stdio[0] is a terminal */
	char term[64];			/* its TERM (the client's), or "" */
	struct client *client;		/* answered with the exit status */
	/* Set by whoever makes the process (app.c), called by process.c,
	 * which knows nothing above it: each output line (without its
	 * newline), and an exit nobody asked for (a crash; status as from
	 * waitpid).  Both required. */
	void (*on_output)(struct proc *p, const char *line, size_t len);
	void (*on_crash)(struct proc *p, int status);
	/* A stop finished (proc_stop): called once, then forgotten. */
	void (*on_exit)(struct proc *p, void *arg);
	void *on_exit_arg;
};

/* A release unpacked into a folder, with its processes. */
struct run {
	struct app *app;
	int number;
	char *dir;
	struct manifest m;
	struct strv env;	/* the config vars it runs with (the release's) */
	struct proc *procs;
	int supervised;		/* restart crashed processes */
	struct deploy *deploy;	/* the deploy starting it, if any */
	/* cron entries (m.crons), run while this is the live release */
	struct proc_spec *cron_specs;	/* one per entry: type "cron" */
	int64_t *cron_next;	/* when each runs next (unix ms), 0: never */
	uint64_t cron_timer;
};

struct app {
	struct engine *eng;
	struct app *next;
	char *name;
	char *dir;		/* ROOT/apps/NAME */
	int release;		/* live release number, 0 if none */
	int next_release;	/* last number handed out */
	int stopped;		/* stopped by the user */
	struct strv scale;	/* "type=N" overrides */
	struct strv env;	/* config vars KEY=VALUE: the live release's,
				 * or, set on a stopped app, the config of
				 * the next one; ROOT/apps/NAME/env */
	int *slots;		/* 2 ports per web process */
	size_t nslots;
	char *last_result;	/* "ok" or "failed" */
	char *note;		/* why the app is not as it should be, for
				 * "apps" (a failed deploy, restore, state) */
	int unusable;		/* its state file could not be read */
	struct run *live;
	struct deploy *deploy;	/* running */
	struct deploy *waiting;	/* newest waiting */
	struct logger *log;
	struct client *rm_client;	/* rm waiting for processes, or for
					 * its database's drop */
	int removing;
	/* commands waiting for nginx to have a route change
	 * (liveroute_when_applied()) */
	struct liveroute_applied *route_waits;
	int renaming;		/* apps:rename waits for its database or
				 * its user (how many of those run) */
	uint64_t retry_timer;	/* next try of a failed restore */
	long retry_ms;		/* its back-off */
	int64_t retry_at;	/* when (now_ms() clock) */
	int shutdown_said;	/* "stopping with the engine" logged */
	int remove_after_deploy;	/* its incoming/ bundle was deleted */
	int run_seq;		/* last run.N handed out (this engine's life) */
	struct strv domains;	/* hosts added by domains:add (domains.h) */
	int maintenance;	/* maintenance:on: a 503 page for every host */
	struct build_log *building;	/* a push's build, while its
					 * connection is open (its output
					 * record goes on with its deploy) */
};

/*
 * For the app's own files (deploy.c, runs.c, releases.c, appcommands.c):
 * the registry and its state files.  All run in the engine's loop and
 * write small files only.
 */
/* A new app: its folders, state and log; -1 if an app of that name is
 * still being removed or a folder cannot be made. */
int app_make(struct engine *e, const char *name, struct app **out);
/* Write ROOT/apps/NAME/state (atomically): 0 or -1 (logged).  An app
 * whose state file could not be read keeps that file as it is. */
int app_save(struct app *a);
/* Write ROOT/apps/NAME/env from a->env: 0 or -1. */
int env_save(struct app *a);
/* Why the app is not as it should be (one line, NULL fmt: nothing). */
void app_set_note(struct app *a, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* "running", "deploying", ... (app_status_word()). */
const char *app_status(const struct app *a);
/* The count of a process type: its "type=N" in scale, else the
 * manifest's. */
int scale_of(const struct strv *scale, const struct proc_spec *spec);
/* "type=N" entries of changes replace those of the same type in scale. */
void scale_merge(struct strv *scale, const struct strv *changes);

struct app *app_find(struct engine *e, const char *name);
/* For applife.c (applife.h: loading, removing, shutdown), which is above
 * the deploy: a new app object named name, in the list (no file read or
 * made); its state and config from disk (a state file it cannot use
 * leaves it marked unusable, with the reason); out of the list; freed
 * (its port slots given back). */
struct app *app_new(struct engine *e, const char *name);
void app_load_state(struct app *a);
void app_unlink(struct app *a);
void app_free(struct app *a);
/* a's restore retry (after a failed restore at start) is off. */
void restore_retry_cancel(struct app *a);

/* 1 while any app process is still running or a deploy is ending. */
int apps_any_running(struct engine *e);
/* Kill processes left over by an earlier engine (cwd under ROOT/run). */
void apps_kill_leftovers(struct engine *e);

enum deploy_kind {
	DEPLOY_NEW,		/* a new release from a bundle */
	DEPLOY_RESTART,		/* same release, fresh processes */
	DEPLOY_RESTORE,		/* engine start: bring the release back */
};

struct deploy_opts {
	const char *bundle;	/* DEPLOY_NEW: path of the bundle */
	int move;		/* rename the bundle instead of copying */
	const char *commit;
	const char *pusher;
	const char *buildpack;
	const char *source;	/* "cli", "push", "incoming", "rollback", "config" */
	int from_release;	/* rollback: reuse this release's bundle and
				 * its config */
	int from_live;		/* config: reuse the bundle live when the
				 * deploy starts */
	const struct strv *env_changes;	/* config: "KEY=VALUE" to set, "KEY"
					 * to unset, onto the config of that
					 * moment; kept once live */
	const char *intro;	/* said first (to the client, the log and
				 * the kept output), e.g. "Rolling back" */
	const struct strv *scale;	/* "type=N" changes, applied (onto the
					 * scale of that moment) when the deploy
					 * starts and kept once it is live */
};

/* Start (or queue) a deploy; answers the client when done. c may be NULL. */
void app_deploy(struct engine *e, const char *name, enum deploy_kind kind,
		const struct deploy_opts *o, struct client *c);

/* "running", "stopped", "deploying", "new", ... as apps shows it. */
const char *app_status_word(const struct app *a);
/* "apps:rename OLD NEW" (apprename.c).  A database berth made for the
 * app is renamed first, then its user, each off the loop
 * (postgres_rename_async(), isolate_rename_app()): the app is marked
 * renaming meanwhile (rm, another rename and a client's deploy are
 * refused), and what could
 * have changed is checked again before the folders move. */
void app_cmd_rename(struct engine *e, struct app *a, const char *to,
		    struct client *c);
/* "apps:info NAME" (appinfo.c); its database's line is asked off the
 * loop (postgres_info_async()), the answer ends when it comes. */
void app_cmd_info(struct app *a, struct client *c);
/* That URL, fresh. */
char *app_url(const struct app *a);
/* The URL of another host of a (same port), fresh. */
char *app_host_url(const struct app *a, const char *host);
/* a's hosts beyond NAME.DOMAIN: its live release's, then domains:add's
 * (pushed onto out, no duplicates). */
void app_hosts_list(const struct app *a, struct strv *out);

/* What a running deploy of a is doing ("starting processes"), or NULL
 * when none runs.  Static string. */
const char *app_deploy_step(const struct app *a);
/* The state of a's running deploy with what it waits for and for how
 * long, for apps and ps: "health check web.1 (3.2 s)"; nothing when none
 * runs. */
void app_deploy_describe(const struct app *a, struct buf *out);
/* 1 if the app has a database (its config has DATABASE_URL). */
int app_has_database(const struct app *a);

/* The port a web process answers on (routing, probes, ps): where its
 * health check found it, else PORT. */
int proc_http_port(const struct proc *p);

/* Process supervision (process.c). */
/* The user app processes run as, passed down by app.c (the engine's
 * run_user): with drop_priv 0 they keep ours. */
struct proc_user {
	int drop_priv;
	uid_t uid;
	gid_t gid;
};
/* Start p now: 0 (PROC_UP), or -1 with error_last().  The app's user
 * must be there already (runs.c's proc_spawn() waits for it): here it
 * is only looked up. */
int proc_start(struct proc *p, char *const *envp, const struct proc_user *u);
/* Close berth's copy of p's hand-off socket (the process keeps its own);
 * it gets none on a restart. */
void proc_close_socket(struct proc *p);
/* TERM the process group, KILL after timeout_ms; then on_exit. */
void proc_stop(struct proc *p, long timeout_ms);
void proc_free(struct proc *p);
/* The last output lines (oldest first) into out, indented. */
void proc_tail(const struct proc *p, struct buf *out);

#endif
