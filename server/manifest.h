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
 *   buildpack, pipeline [..], static (a folder served by nginx), env {K: V},
 *   webhook.  With no processes in app.yaml, the Procfile beside it is read.
 *   keter.yaml: exec (relative to config/), args, env, host, extra-hosts,
 *   postgres, plugins.postgres, and stanzas with type webapp/background/
 *   static-files.
 */
#ifndef BERTH_MANIFEST_H
#define BERTH_MANIFEST_H

#include <stddef.h>

#include "util.h"

enum proc_order {
	ORDER_START_FIRST = 0,	/* new starts, then old stops (default) */
	ORDER_STOP_FIRST,	/* old stops, then new starts (queue consumers) */
};

struct proc_spec {
	char *type;		/* "web", "worker", ... */
	char *cmd;		/* run as /bin/sh -c cmd; NULL when argv is used */
	struct strv argv;	/* exec form (Keter's exec + args); argv.v[0] absolute */
	int scale;		/* default count (1) */
	enum proc_order order;
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
	struct strv env;	/* KEY=VALUE from the manifest */
	char *webhook;		/* or NULL */
	/* resources: each process's limits; -1: berth.yaml's default */
	long long res_memory;	/* bytes ("memory: 256M") */
	long res_cpu_millis;	/* thousandths of a core ("cpu: 0.5") */
	long res_processes;	/* "processes: 200" */
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

/* The spec for a type, or NULL. Borrowed. */
const struct proc_spec *manifest_proc(const struct manifest *m,
				      const char *type);
/* 1 if 'type' is a valid process type name. */
int proc_type_valid(const char *type);
/* 1 if 'host' is a valid host name for nginx (letters, digits, '-', '.',
 * optional leading "*." wildcard), else 0. */
int host_name_valid(const char *host);

#endif
