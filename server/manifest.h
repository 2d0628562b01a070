/*
 * manifest: what a release runs, read from its unpacked folder: app.yaml
 * (berth's own), else a Procfile, else Keter's config/keter.yaml.  Also
 * parses the YAML a buildpack's bin/release prints.  All YAML through
 * libyaml; every error names the file, line and field:
 * "app.yaml:3:8: 'drain' must be a duration like 2s".
 *
 * Formats (see docs/manifest.md):
 *   Procfile: "type: command" lines, '#' comments (whole-line and inline
 *   " #..."), blank lines; type [a-z0-9_-]{1,32}; "release" is the release
 *   phase, not a process.
 *   app.yaml: processes (map type -> command string, or map with command,
 *   scale, order: start-first|stop-first), release, healthcheck {path,
 *   timeout, max_status}, drain, stop_timeout, settle, hosts [..], postgres,
 *   buildpack, pipeline [..], static (a folder served by nginx, or
 *   {root, hosts}: the folder on those hosts only), env {K: V},
 *   webhook.  With no processes in app.yaml, the Procfile beside it is read.
 *   keter.yaml: exec (relative to config/), args, env, host, extra-hosts,
 *   postgres, plugins.postgres, and stanzas with type webapp/background/
 *   static-files.
 *
 * Beside the manifest, manifest_load() also reads, when they are there
 * (docs/manifest.md): Heroku's and Dokku's app.json (appjson.h), Piku's
 * ENV file, a .env file when app.yaml says "dotenv: true", and the
 * buildpacks' config_vars the build left in .berth/buildpack-config.yaml;
 * each only adds what the app's own files do not set.  Procfile types
 * whose name starts with "cron" and whose command starts with a schedule
 * (Piku's "cron: 0 * * * * cmd") become cron entries, not processes.
 */
#ifndef BERTH_MANIFEST_H
#define BERTH_MANIFEST_H

#include <stddef.h>

#include "cron.h"
#include "util.h"

enum proc_order {
	ORDER_START_FIRST = 0,	/* new starts, then old stops (default) */
	ORDER_STOP_FIRST,	/* old stops, then new starts (queue consumers) */
};

/* app.yaml "socket:": how a web process gets its listening socket. */
enum socket_mode {
	SOCKET_AUTO = 0,	/* a socket handed on a port of its own, and
				 * PORT: it answers on either (default) */
	SOCKET_INHERIT,		/* a socket handed on PORT itself */
	SOCKET_NONE,		/* PORT only: the process binds it */
};

struct proc_spec {
	char *type;		/* "web", "worker", ... */
	char *cmd;		/* run as /bin/sh -c cmd; NULL when argv is used */
	struct strv argv;	/* exec form (Keter's exec + args); argv.v[0] absolute */
	int scale;		/* default count (1) */
	int scale_set;		/* 1: app.yaml's scale:, app.json's formation
				 * or a Keter stanza gave it; 0: the default
				 * above */
	enum proc_order order;
};

/* A scheduled command (app.json "cron", Piku's cron: process types). */
struct cron_spec {
	char *schedule;		/* as written: "0 * * * *", "@daily" */
	struct cron_expr expr;	/* parsed (cron.h) */
	char *cmd;		/* run as /bin/sh -c cmd */
	char *origin;		/* for messages: "app.json cron[0]",
				 * "Procfile 'cron'" */
	int replace;		/* concurrency_policy: replace: a run still
				 * going when the next is due is stopped;
				 * otherwise the new run is skipped */
	int paused;		/* Dokku's maintenance: true: not run */
};

/* app.json "formation": the initial count of a process type. */
struct formation_spec {
	char *type;
	int quantity;		/* 0 to 100 */
};

struct manifest {
	char *source;		/* "app.yaml", "Procfile" or "config/keter.yaml" */
	struct proc_spec *procs;
	size_t nprocs;
	char *release_cmd;	/* Procfile/app.yaml "release:" or NULL */
	char *health_path;	/* "/" */
	long health_timeout_ms;	/* -1: server default */
	int health_max_status;	/* 499: anything below 500 is healthy */
	long drain_ms;		/* -1: server default */
	long watch_ms;		/* -1: server default */
	long stop_timeout_ms;	/* -1: server default */
	long settle_ms;		/* -1: server default */
	struct strv hosts;	/* extra host names, validated */
	int postgres;		/* 1 if the app asks for a database */
	char *buildpack;	/* or NULL */
	struct strv pipeline;	/* step names, empty: default pipeline */
	char *static_root;	/* folder (relative, validated) nginx serves, or NULL */
	struct strv static_hosts;	/* hosts (also in hosts) that get the
					 * static folder while web processes
					 * take the others: Keter's
					 * static-files beside a webapp,
					 * app.yaml's static: {hosts} */
	struct strv env;	/* KEY=VALUE from the manifest */
	char *webhook;		/* or NULL */
	/* resources: each process's limits; -1: berth.yaml's default */
	long long res_memory;	/* bytes ("memory: 256M") */
	long res_cpu_millis;	/* thousandths of a core ("cpu: 0.5") */
	long res_processes;	/* "processes: 200" */
	struct strv buildpacks;	/* app.yaml "buildpacks:" (or app.json's),
				 * in order; empty: see buildpack */
	int dotenv;		/* app.yaml "dotenv: true": .env is read */
	/* app.json "scripts", run by the engine in the new release: */
	char *predeploy_cmd;	/* scripts.dokku.predeploy: before the new
				 * processes start, every deploy */
	char *postdeploy_cmd;	/* scripts.dokku.postdeploy: once the release
				 * is live, every deploy */
	char *first_deploy_cmd;	/* scripts.postdeploy (Heroku's): once the
				 * release is live, on the app's first deploy
				 * only */
	/* app.json healthchecks.web (Dokku): -1 / NULL when not given */
	int health_attempts;	/* checks before giving up */
	long health_attempt_timeout_ms;	/* one check's time limit */
	long health_wait_ms;	/* between checks */
	long health_initial_delay_ms;	/* before the first */
	char *health_content;	/* the body must contain it */
	struct cron_spec *crons;
	size_t ncrons;
	struct formation_spec *formation;	/* app.json "formation" */
	size_t nformation;
	struct strv env_required;	/* app.json env names with no value
					 * that the app needs set */
	struct strv env_generate;	/* app.json env names with
					 * "generator": "secret" */
	struct strv ignored;	/* what app.json asks that berth does not do:
				 * "addons", "formation.web.size", ... */
	enum socket_mode socket;
};

void manifest_init(struct manifest *m);
void manifest_release(struct manifest *m);

/*
 * Read the manifest of an unpacked release in 'dir'.  A folder with none
 * of the three files is an error ("no app.yaml, Procfile or
 * config/keter.yaml in bundle"), and so is one whose manifest has no
 * process and no static folder ("Procfile: no processes to run").
 * Relative exec paths are resolved against dir; they must stay inside it.
 * On failure m is partly filled: release it.
 */
int manifest_load(struct manifest *m, const char *dir);

/* The parsers behind it, on a buffer; 'fname' is used in messages. */
int manifest_parse_procfile(struct manifest *m, const char *buf, size_t len,
			    const char *fname);
int manifest_parse_app_yaml(struct manifest *m, const char *buf, size_t len,
			    const char *fname);
/* dir: the release root, for resolving exec against config/. */
int manifest_parse_keter(struct manifest *m, const char *buf, size_t len,
			 const char *fname, const char *dir);

/* A buildpack's bin/release output: default_process_types (and
 * config_vars) into m's procs (and env).  Existing procs are kept. */
int manifest_parse_release_yaml(struct manifest *m, const char *buf,
				size_t len);

/*
 * Take into m what m lacks from 'from' (another source of settings for
 * the same release, e.g. app.json's): m's own values win; env, crons,
 * formation and the lists are added.  'from' is emptied (release it).
 */
void manifest_merge_defaults(struct manifest *m, struct manifest *from);

/*
 * Environment defaults from a KEY=VALUE file (Piku's ENV, a .env): '#'
 * comment lines and blank lines skipped, "export " before a key allowed,
 * spaces around the key and value trimmed; a value in matching single or
 * double quotes loses them (double quotes: \n \" \\ \$ are
 * unescaped); $NAME and ${NAME} naming a key set earlier in the same file
 * are replaced (others are left as written, as Piku does).  Only keys m
 * lacks are added.  Names berth sets itself (PORT, DYNO, BERTH_*) are
 * skipped and named in *skipped (may be NULL), as "ENV: PORT".  Errors:
 * "ENV:3:1: expected NAME=value".
 */
int manifest_parse_env_file(struct manifest *m, const char *buf, size_t len,
			    const char *fname, struct strv *skipped);

/* The buildpacks' config_vars file the pipeline writes
 * (.berth/buildpack-config.yaml: a mapping with config_vars), into m's
 * env where m lacks the key. */
int manifest_parse_buildpack_config(struct manifest *m, const char *buf,
				    size_t len, const char *fname);

/* Process types named cron* whose command starts with a schedule become
 * cron entries (Piku).  A bad schedule there is an error naming fname. */
int manifest_take_crons(struct manifest *m, const char *fname);

/* app.json's formation onto the process types (scale, scale_set); types
 * the app does not have are left in m->formation only. */
void manifest_apply_formation(struct manifest *m);

/* Where the pipeline leaves the buildpacks' config_vars in a build. */
#define MANIFEST_BUILDPACK_CONFIG ".berth/buildpack-config.yaml"

/* The spec for a type, or NULL. Borrowed. */
const struct proc_spec *manifest_proc(const struct manifest *m,
				      const char *type);
/* 1 if 'host' is a valid host name for nginx (letters, digits, '-', '.',
 * optional leading "*." wildcard), else 0. */
int host_name_valid(const char *host);

#endif
