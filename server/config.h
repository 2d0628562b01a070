/*
 * config: the server's settings, from ROOT/berth.yaml (optional) with
 * defaults, then command-line overrides.  One descriptor table gives
 * every key its type, default and bounds; `berth config-check` and
 * `berth serve` both use it.  Errors are reported as
 * "berth.yaml:LINE:COL: message", all of them, then one failure.
 */
#ifndef BERTH_CONFIG_H
#define BERTH_CONFIG_H

#include <stddef.h>

struct config {
	char *root;		/* state directory (absolute) */
	char *ssh_listen;	/* ssh_listen: "0.0.0.0:2222" */
	char *http_listen;	/* http_listen: "127.0.0.1:8080" */
	char *domain;		/* domain: "localhost" */
	int port_min;		/* ports: pool for app processes, 20000 */
	int port_max;		/* 29999 */
	long drain_ms;		/* drain: 2s */
	long watch_ms;		/* watch: 10s, the old release stays ready after a switch */
	long stop_timeout_ms;	/* stop_timeout: 10s */
	long health_timeout_ms;	/* health_timeout: 60s */
	long cluster_wait_ms;	/* cluster_wait: 60s, a change waits that
				 * long for an unreachable cluster database */
	long health_interval_ms;/* health_interval: 50ms */
	long settle_ms;		/* settle: 1s, worker-only apps */
	char *deploy_branch;	/* deploy_branch: NULL = main or master */
	long max_pack_bytes;	/* max_pack_size: 1 GiB */
	long build_timeout_ms;	/* build_timeout: 15m */
	long git_timeout_ms;	/* git_timeout: 10m, a git client idle this long is dropped */
	int keep_releases;	/* keep_releases: 10 */
	long log_max_bytes;	/* log_max_size: 10 MiB, then rotate */
	int max_sessions;	/* max_sessions: 32 authenticated SSH sessions (followers apart) */
	char *ssh_max_startups;	/* ssh_max_startups: "10:30:100", as OpenSSH's MaxStartups */
	int ssh_per_source_max_startups; /* 10 unauthenticated from one address (0: no limit) */
	long ssh_login_grace_ms;	/* ssh_login_grace_time: 120s to authenticate and ask */
	int ssh_max_followers;	/* ssh_max_followers: 64 "logs -f" sessions (0: no limit) */
	char *nginx;		/* nginx: "own" (default) or "system" */
	char *nginx_conf_dir;	/* nginx_conf_dir: for "system", e.g. /etc/nginx/conf.d */
	char *nginx_bin;	/* nginx_bin: "nginx" */
	char *postgres;		/* postgres: conninfo of an admin role; NULL = embedded */
	char *postgres_bindir;	/* postgres_bindir: initdb and postgres of the embedded
				 * cluster; NULL = the newest /usr/lib/postgresql/N/bin */
	char *webhook;		/* webhook: URL posted after each deploy, or NULL */
	char *run_user;		/* user: unprivileged user for apps/builds when root; NULL = none */
	char *privileged_hooks;	/* privileged_hooks: "post-deploy.d/10-x ..." run as root */
	/* resources: each app process's limits unless app.yaml says (0: none) */
	long res_memory;	/* resources.memory: 1 GiB */
	char *res_cpu;		/* resources.cpu: NULL = no limit, "0.5" = half a core */
	int res_processes;	/* resources.processes: 512 */
	/* checkout: what a pushed commit may hold */
	int checkout_max_files;	/* checkout.max_files: 200000 */
	long checkout_max_bytes;/* checkout.max_bytes: 512 MiB */
	int checkout_max_depth;	/* checkout.max_depth: 128 */
	char *dashboard_host;	/* dashboard_host: NULL = berth.DOMAIN, "off" = none */
	long dashboard_session_ms;/* dashboard_session: 720m (12 hours) */
	char *https_listen;	/* https_listen: NULL = 0.0.0.0:443 as root
				 * with acme_email set, else off; "off" */
	char *acme_email;	/* acme_email: the ACME account's contact */
	char *acme_directory;	/* acme_directory: Let's Encrypt production */
	char *acme_ca;		/* acme_ca: CA bundle to trust for it, or NULL */
	char *acme;		/* acme: "true" = certs:auto for every app */
	/* cluster (docs/cluster.md): all NULL/unused without "cluster:" */
	char *cluster;		/* cluster: conninfo of the shared PostgreSQL */
	char *groups;		/* groups: "web,api" (YAML list or one word); "default" */
	char *host_name;	/* host_name: NULL = the machine's host name */
	char *advertise_address;/* advertise_address: how other hosts reach this one */
	char *rollout;		/* rollout: "one-by-one" (default) or "parallel" */
	char *route;		/* route: "local" (default) or "group" */
	int route_port;		/* route_port: the route listener's port on
				 * advertise_address (cluster hosts) */
	/* Not a setting: the user nginx's workers run as when berth is
	 * root (berth-www, made by the engine before nginx_init()); "":
	 * nginx's own default, never root. */
	char www_user[32];
};

/* The HTTPS listener in effect ("0.0.0.0:443"), or NULL for none. */
const char *config_https_listen(const struct config *c);
/* 1 when "acme: true". */
int config_acme_all(const struct config *c);

/* 1 for a cluster group's name: lower case letters, digits, '-', at most
 * 32 bytes, starting with a letter. */
int config_group_name_valid(const char *name);
/* ssh_max_startups: "START:RATE:FULL" (as OpenSSH's MaxStartups) or
 * "N" (START = FULL = N) into its parts; 0, or -1 if malformed. */
int config_parse_startups(const char *spec, int *start, int *rate, int *full);

/* Defaults only; root is copied. */
void config_init(struct config *c, const char *root);
/*
 * Read ROOT/berth.yaml over the defaults (a missing file is fine).  On
 * error returns -1, error_last() holds every problem, one per line
 * (the first 8, then "and N more"), and c is unchanged.  Unknown keys are
 * errors.  "ports: 20000-29999" sets port_min and port_max together.
 * "resources:" and "checkout:" are mappings whose keys are set as
 * "resources.memory" and so on.
 * A null value ("user: ~") resets a setting whose default is unset; the
 * others need a value.  "nginx: system" requires nginx_conf_dir.  A
 * postgres conninfo with a password in a file others can read is refused
 * (and so is a cluster one).  "groups:" takes a list of group names
 * (kept comma-separated) or one name.
 */
int config_load(struct config *c);
/* The same from a buffer (what config_load() reads); others_can_read:
 * the file's mode lets group or others read it. */
int config_parse(struct config *c, const char *buf, size_t len,
		 int others_can_read);
/* Set one key from a string (also what the YAML loader uses); the value
 * is checked ("'domain' must be a host name like example.com"). */
int config_set(struct config *c, const char *key, const char *value);
void config_release(struct config *c);
/* Append every setting as "key: value" lines (YAML), for config-check;
 * a postgres conninfo holding a password is not shown. */
struct buf;
void config_show(const struct config *c, struct buf *out);

#endif
