/*
 * commands: the one command table.  The local CLI and SSH sessions send
 * the same requests over the control socket; this file turns argv into
 * calls on app.c, checking names and arity first so that a bad request
 * never touches state.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "access.h"
#include "app.h"
#include "appcommands.h"
#include "appstats.h"
#include "certs.h"
#include "cluster.h"
#include "commands.h"
#include "config.h"
#include "control.h"
#include "dashboard.h"
#include "domains.h"
#include "engine.h"
#include "export.h"
#include "keys.h"
#include "packset.h"
#include "oneoff.h"
#include "serverlog.h"
#include "status.h"
#include "version.h"
#include "banned.h"

struct command {
	const char *name;
	const char *usage;
	const char *help;
	int need_app;		/* argv[1] names an existing app */
	int min_args, max_args;	/* counting argv[0]; -1: no limit */
	void (*run)(struct engine *e, struct client *c, struct app *a,
		    int argc, char **argv);
	int flags;
};

enum command_flags {
	CMD_LOCAL = 1 << 0,	/* not over SSH: names paths of this host, or
				 * speaks for the engine's own sessions */
	CMD_HIDDEN = 1 << 1,	/* not in "help" */
};

static void cmd_help(struct engine *e, struct client *c, struct app *a,
		     int argc, char **argv)
{
	commands_help(c);
	client_ok(c);
}

static void cmd_version(struct engine *e, struct client *c, struct app *a,
			int argc, char **argv)
{
	client_data(c, "berth %s", BERTH_VERSION);
	client_ok(c);
}

static void cmd_ps(struct engine *e, struct client *c, struct app *a,
		   int argc, char **argv);

/* "status": the engine; "status NAME": the app's processes, as "ps NAME"
 * (Erel's name for it), on every host of its group in a cluster */
static void cmd_status(struct engine *e, struct client *c, struct app *a,
		       int argc, char **argv)
{
	if (argc == 1) {
		status_cmd(e, c);
		return;
	}
	if (!app_name_valid(argv[1])) {
		client_error(c, "invalid app name '%s'", argv[1]);
		return;
	}
	a = app_find(e, argv[1]);
	if (!a) {
		client_error_code(c, CONTROL_ERR_NOTFOUND,
				  "app '%s' does not exist", argv[1]);
		return;
	}
	cmd_ps(e, c, a, argc, argv);
}

/* Listed for "help"; the CLI and SSH sessions run these themselves
 * (backup.c), so that no dump passes through the engine's loop. */
static void cmd_client_side(struct engine *e, struct client *c,
			    struct app *a, int argc, char **argv)
{
	client_error(c, "%s runs in the berth command or over ssh, not in the engine",
		     argv[0]);
}

static void cmd_import_staged(struct engine *e, struct client *c,
			      struct app *a, int argc, char **argv)
{
	export_cmd_import_staged(e, c, argc, argv);
}

static void cmd_stats(struct engine *e, struct client *c, struct app *a,
		      int argc, char **argv)
{
	appstats_cmd(e, a, app_deploy_step(a), c);
}

/* "apps", or "apps --key NAME" from an SSH session: that key's apps */
static void cmd_apps(struct engine *e, struct client *c, struct app *a,
		     int argc, char **argv)
{
	if (argc == 3 && !strcmp(argv[1], "--key")) {
		app_cmd_apps(e, c, argv[2]);
	} else if (argc == 1) {
		app_cmd_apps(e, c, NULL);
	} else {
		client_error_code(c, CONTROL_ERR_USAGE, "usage: apps");
	}
}

static void cmd_ps(struct engine *e, struct client *c, struct app *a,
		   int argc, char **argv)
{
	/* in a cluster: every host of the app's group */
	if (cluster_cmd_ps(e->cluster, a, c) == 0)
		return;
	app_cmd_ps(a, c);
}

/* A process name (web.1) or a type (web) for logs -p. */
static int log_source_valid(const char *s)
{
	const char *dot = strchr(s, '.');
	char type[33];
	size_t k = dot ? (size_t)(dot - s) : strlen(s);

	if (k == 0 || k >= sizeof(type))
		return 0;
	memcpy(type, s, k);
	type[k] = '\0';
	if (!proc_type_valid(type))
		return 0;
	return !dot || parse_long(dot + 1, 1000) > 0;
}

static void cmd_logs(struct engine *e, struct client *c, struct app *a,
		     int argc, char **argv)
{
	long n = 100;
	int follow = 0, server = 0, i;
	const char *want = NULL;

	for (i = 1; i < argc; i++) {
		if (i == 1 && !strcmp(argv[i], "--server")) {
			server = 1;
			continue;
		}
		if (i == 1) {
			if (!app_name_valid(argv[1])) {
				client_error(c, "invalid app name '%s'", argv[1]);
				return;
			}
			if (!app_find(e, argv[1])) {
				client_error_code(c, CONTROL_ERR_NOTFOUND,
						  "app '%s' does not exist",
						  argv[1]);
				return;
			}
			continue;
		}
		if (!strcmp(argv[i], "-f") || !strcmp(argv[i], "--follow") ||
		    !strcmp(argv[i], "-t") || !strcmp(argv[i], "--tail")) {
			follow = 1;
		} else if ((!strcmp(argv[i], "-p") || !strcmp(argv[i], "--ps")) &&
			   i + 1 < argc) {
			/* Dokku's -p PROC: a process (web.1) or a type (web) */
			want = argv[++i];
			if (!log_source_valid(want)) {
				client_error(c, "invalid process '%s' (a type like web or a process like web.1)",
					     want);
				return;
			}
		} else if (!want && i == 2 && argv[i][0] != '-' &&
			   log_source_valid(argv[i])) {
			/* Piku's "logs APP PROC" */
			want = argv[i];
		} else if ((!strcmp(argv[i], "-n") || !strcmp(argv[i], "--num")) &&
			   i + 1 < argc) {
			n = parse_long(argv[++i], 100000);
			if (n < 0) {
				client_error(c, "bad line count '%s' (0 to 100000)",
					     argv[i]);
				return;
			}
		} else if ((!strcmp(argv[i], "--source") ||
			    !strcmp(argv[i], "-s")) && i + 1 < argc) {
			want = argv[++i];
			if (strlen(want) == 0 || strlen(want) > 47 ||
			    strspn(want, "abcdefghijklmnopqrstuvwxyz"
				   "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-")
			    != strlen(want)) {
				client_error(c, "bad source '%s' (app, router, berth, cron, run, release or a process like web.1)",
					     want);
				return;
			}
		} else {
			client_error_code(c, CONTROL_ERR_USAGE,
					  "usage: logs NAME|--server [-n N] [-f] [-p PROC] [--source app|router|berth|cron|run|release|PROCESS]");
			return;
		}
	}
	if (server)
		serverlog_cmd_logs(e, c, n, follow);
	else if (follow && !want &&
		 cluster_cmd_logs_follow(e->cluster, argv[1], n, c) == 0)
		;	/* every host of the cluster, as lines come */
	else if (follow || want ||
		 cluster_cmd_logs(e->cluster, argv[1], n, c) < 0)
		/* in a cluster, -p/--source read this host's log */
		app_cmd_logs(e, argv[1], n, follow, want, c);
}

static void cmd_deploy(struct engine *e, struct client *c, struct app *a,
		       int argc, char **argv)
{
	struct deploy_opts o;
	int i;

	memset(&o, 0, sizeof(o));
	o.bundle = argv[2];
	o.source = "cli";
	if (argv[2][0] != '/') {
		client_error(c, "bundle path must be absolute");
		return;
	}
	for (i = 3; i < argc; i++) {
		const char **slot = NULL;

		if (!strcmp(argv[i], "--move")) {
			o.move = 1;
			continue;
		}
		if (!strcmp(argv[i], "--commit"))
			slot = &o.commit;
		else if (!strcmp(argv[i], "--pusher"))
			slot = &o.pusher;
		else if (!strcmp(argv[i], "--buildpack"))
			slot = &o.buildpack;
		else if (!strcmp(argv[i], "--source"))
			slot = &o.source;
		if (!slot || i + 1 >= argc) {
			client_error_code(c, CONTROL_ERR_USAGE,
					  "usage: deploy NAME BUNDLE [--move] [--commit ID] [--pusher NAME] [--buildpack NAME] [--source WORD] ('%s' is not one)",
					  argv[i]);
			return;
		}
		*slot = argv[++i];
	}
	app_deploy(e, argv[1], DEPLOY_NEW, &o, c);
}

static void cmd_restart(struct engine *e, struct client *c, struct app *a,
			int argc, char **argv)
{
	if (a->stopped) {
		client_error(c, "'%s' is stopped; use start", a->name);
		return;
	}
	if (argc == 3) {
		if (!log_source_valid(argv[2])) {
			client_error(c, "invalid process '%s' (a type like web or a process like web.1)",
				     argv[2]);
			return;
		}
		app_cmd_restart_proc(a, argv[2], c);
		return;
	}
	app_cmd_restart(a, c);
	/* in a cluster, the other hosts of the group follow, one by one */
	if (a->deploy || a->waiting)
		cluster_app_op(e->cluster, a->name, "restart", 0, NULL, c);
}

static void cmd_stop(struct engine *e, struct client *c, struct app *a,
		     int argc, char **argv)
{
	if (cluster_joined(e->cluster) && !a->deploy) {
		/* c hears each host of the group stop it */
		app_cmd_stop(a, NULL);
		cluster_app_op(e->cluster, a->name, "stop", 0, NULL, c);
		return;
	}
	app_cmd_stop(a, c);
	if (a->stopped)
		cluster_app_op(e->cluster, a->name, "stop", 0, NULL, NULL);
}

static void cmd_start(struct engine *e, struct client *c, struct app *a,
		      int argc, char **argv)
{
	int was_stopped = a->stopped;

	app_cmd_start(a, c);
	if (was_stopped && !a->stopped)
		cluster_app_op(e->cluster, a->name, "start", 0, NULL, c);
}

static void cmd_scale(struct engine *e, struct client *c, struct app *a,
		      int argc, char **argv)
{
	app_cmd_scale(a, argc - 2, argv + 2, c);
	if (a->live && (a->deploy || a->waiting))
		cluster_app_op(e->cluster, a->name, "scale", argc - 2,
			       argv + 2, c);
}

static void cmd_rm(struct engine *e, struct client *c, struct app *a,
		   int argc, char **argv)
{
	int force = 0, drop = 0, i;

	for (i = 2; i < argc; i++) {
		if (!strcmp(argv[i], "--force") || !strcmp(argv[i], "-f"))
			force = 1;
		else if (!strcmp(argv[i], "--drop-database"))
			drop = 1;
		else if (!strcmp(argv[i], "--confirm") && i + 1 < argc &&
			 !strcmp(argv[i + 1], a->name))
			force = 1, i++;
		else {
			client_error_code(c, CONTROL_ERR_USAGE,
					  "usage: rm NAME --force [--drop-database]");
			return;
		}
	}
	if (!force) {
		client_error(c, "refusing to remove '%s' without confirmation: add --force",
			     a->name);
		return;
	}
	app_cmd_rm(a, drop, c);
}

static void cmd_config(struct engine *e, struct client *c, struct app *a,
		       int argc, char **argv)
{
	app_cmd_config(a, argc - 2, argv + 2, c);
}

static void cmd_releases_output(struct engine *e, struct client *c,
				struct app *a, int argc, char **argv)
{
	app_cmd_releases_output(a, argc, argv, c);
}

static void cmd_releases(struct engine *e, struct client *c, struct app *a,
			 int argc, char **argv)
{
	app_cmd_releases(a, c);
}

static void cmd_rollback(struct engine *e, struct client *c, struct app *a,
			 int argc, char **argv)
{
	long n = 0;

	if (argc == 3) {
		const char *s = argv[2][0] == 'v' ? argv[2] + 1 : argv[2];

		n = parse_long(s, 1L << 30);
		if (n <= 0) {
			client_error(c, "bad release number '%s'", argv[2]);
			return;
		}
	}
	app_cmd_rollback(a, (int)n, c);
}

static void cmd_pg(struct engine *e, struct client *c, struct app *a,
		   int argc, char **argv)
{
	app_cmd_pg(a, c);
}

static void cmd_url(struct engine *e, struct client *c, struct app *a,
		    int argc, char **argv)
{
	app_cmd_url(a, c);
}

/* "run APP CMD..." and "run:detached APP CMD...": a one-off process;
 * "run:term APP TERM CMD..." is run on the client's terminal of type
 * TERM (what ssh -t and berth run on a terminal send). */
static void cmd_run(struct engine *e, struct client *c, struct app *a,
		    int argc, char **argv)
{
	int term = !strcmp(argv[0], "run:term");
	char *cmd;

	if (term && !oneoff_term_valid(argv[2])) {
		client_error(c, "run: invalid terminal type '%.80s'", argv[2]);
		return;
	}
	cmd = oneoff_command(argc - 2 - term, argv + 2 + term);
	if (!cmd) {
		client_error(c, "%s: %s", term ? "run" : argv[0], error_last());
		return;
	}
	app_cmd_run(a, cmd, !strcmp(argv[0], "run:detached"),
		    term ? argv[2] : NULL, c);
	free(cmd);
}

static void cmd_domains(struct engine *e, struct client *c, struct app *a,
			int argc, char **argv)
{
	const char *sub = strchr(argv[0], ':');

	if (!sub || !strcmp(sub, ":report")) {
		if (argc != 2) {
			client_error_code(c, CONTROL_ERR_USAGE,
					  "usage: domains NAME");
			return;
		}
		domains_cmd_list(a, c);
	} else if (!strcmp(sub, ":add")) {
		domains_cmd_add(a, argc - 2, argv + 2, c);
	} else if (!strcmp(sub, ":remove")) {
		domains_cmd_remove(a, argc - 2, argv + 2, c);
	} else if (argc == 2) {
		domains_cmd_clear(a, c);
	} else {
		client_error_code(c, CONTROL_ERR_USAGE,
				  "usage: domains:clear NAME");
	}
}

static void cmd_buildpacks(struct engine *e, struct client *c,
			   struct app *a, int argc, char **argv)
{
	packset_cmd(a, argc, argv, c);
}

static void cmd_info(struct engine *e, struct client *c, struct app *a,
		     int argc, char **argv)
{
	app_cmd_info(a, c);
}

static void cmd_rename(struct engine *e, struct client *c, struct app *a,
		       int argc, char **argv)
{
	app_cmd_rename(e, a, argv[2], c);
}

static void cmd_maintenance(struct engine *e, struct client *c,
			    struct app *a, int argc, char **argv)
{
	domains_cmd_maintenance(a, !strcmp(argv[0], "maintenance:on"), c);
}

static void reply_buf(struct client *c, struct buf *out)
{
	char *line, *save = NULL;

	if (out->len)
		for (save = out->data, line = str_token(&save, "\n"); line;
		     line = str_token(&save, "\n"))
			client_data(c, "%s", line);
}

static void cmd_keys(struct engine *e, struct client *c, struct app *a,
		     int argc, char **argv)
{
	struct buf out = BUF_INIT;
	struct strv fields = STRV_INIT;
	int ret, admin = 0, i = 2;
	const char *name = NULL;
	size_t k;

	if (argc == 1 || (argc == 2 && !strcmp(argv[1], "list"))) {
		/* the lines for people, and one "fields key=NAME ..." a key
		 * for programs (the dashboard's login) */
		ret = keys_list(e->cfg->root, &out);
		if (ret == 0)
			ret = keys_list_fields(e->cfg->root, &fields);
	} else if (!strcmp(argv[1], "add")) {
		for (;;) {
			if (i < argc && !strcmp(argv[i], "--admin")) {
				admin = 1;
				i++;
			} else if (i + 1 < argc && !strcmp(argv[i], "--name")) {
				name = argv[i + 1];
				i += 2;
			} else {
				break;
			}
		}
		if (i + 1 != argc) {
			client_error_code(c, CONTROL_ERR_USAGE,
					  "usage: keys add [--admin] [--name NAME] KEY-TEXT");
			return;
		}
		ret = keys_add_named(e->cfg->root, argv[i], name, admin, &out);
	} else if (!strcmp(argv[1], "rm") && argc == 3) {
		ret = keys_remove(e->cfg->root, argv[2], &out);
	} else {
		client_error_code(c, CONTROL_ERR_USAGE,
				  "usage: keys [add [--admin] [--name NAME] KEY-TEXT | rm NAME]");
		return;
	}
	if (ret < 0) {
		client_error(c, "%s", error_last());
	} else {
		reply_buf(c, &out);
		for (k = 0; k < fields.n; k++)
			client_fields(c, "%s", fields.v[k]);
		client_ok(c);
	}
	buf_release(&out);
	strv_release(&fields);
}

static void cmd_sharing(struct engine *e, struct client *c, struct app *a,
			int argc, char **argv)
{
	struct buf out = BUF_INIT;
	int r;

	(void)a;
	r = access_sharing(e->cfg->root, argv[1], argc, argv, &out);
	if (r == ERR_USAGE) {
		client_error_code(c, CONTROL_ERR_USAGE, "%s", error_last());
	} else if (r < 0) {
		client_error(c, "%s", error_last());
	} else {
		reply_buf(c, &out);
		client_ok(c);
	}
	buf_release(&out);
}

static void cmd_create(struct engine *e, struct client *c, struct app *a,
		       int argc, char **argv)
{
	app_cmd_create(e, argv[1], c);
}

static void cmd_build_log(struct engine *e, struct client *c, struct app *a,
			  int argc, char **argv)
{
	app_cmd_build_log(e, argv[1], c);
}

/*
 * "dashboard [--revoke]".  An SSH session adds "--key NAME [--admin]"
 * for the key it authenticated (and refuses those words from the user);
 * without --key the request comes from root at the host.
 */
static void cmd_dashboard(struct engine *e, struct client *c, struct app *a,
			  int argc, char **argv)
{
	const char *key = DASHBOARD_LOCAL_KEY;
	int admin = 0, local = 1, revoke = 0, n = 0, i;
	char *host = NULL, *token = NULL, *url = NULL;

	for (i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--revoke")) {
			revoke = 1;
		} else if (!strcmp(argv[i], "--key") && i + 1 < argc) {
			key = argv[++i];
			local = 0;
		} else if (!strcmp(argv[i], "--admin")) {
			admin = 1;
		} else {
			client_error_code(c, CONTROL_ERR_USAGE,
					  "usage: dashboard [--revoke]");
			return;
		}
	}
	if (revoke) {
		if (dashboard_revoke(e->cfg->root, local ? NULL : key, &n) < 0) {
			client_error(c, "%s", error_last());
			return;
		}
		client_data(c, "-----> Ended %d dashboard session%s%s", n,
			    n == 1 ? "" : "s", local ? "" : " of this key");
		client_ok(c);
		return;
	}
	host = dashboard_host(e->cfg);
	if (!host) {
		client_error(c, "the dashboard is off (berth.yaml: dashboard_host: off)");
		return;
	}
	if (dashboard_login_new(e->cfg->root, key, admin || local, local,
				&token) < 0) {
		client_error(c, "%s", error_last());
		goto out;
	}
	url = dashboard_login_url(e->cfg, token);
	client_data(c, "%s", url);
	client_data(c, "-----> Open this link within 5 minutes; it works once.");
	client_ok(c);
out:
	free(host);
	free(token);
	free(url);
}

static void cmd_cluster(struct engine *e, struct client *c, struct app *a,
			int argc, char **argv)
{
	if (argc == 3 && !strcmp(argv[1], "rm")) {
		cluster_cmd_rm(e->cluster, argv[2], c);
		return;
	}
	if (argc == 2 && !strcmp(argv[1], "join")) {
		cluster_cmd_join(e->cluster, c);
		return;
	}
	if (argc != 2 || strcmp(argv[1], "status")) {
		client_error_code(c, CONTROL_ERR_USAGE,
				  "usage: cluster status | cluster rm HOST | cluster join");
		return;
	}
	cluster_cmd_status(e->cluster, c);
}

static void cmd_set_group(struct engine *e, struct client *c, struct app *a,
			  int argc, char **argv)
{
	cluster_cmd_set_group(e->cluster, argv[1], argv[2], c);
}

static void cmd_certs(struct engine *e, struct client *c, struct app *a,
		      int argc, char **argv)
{
	certs_cmd(e, c, a, argc, argv);
}

static const struct command commands[] = {
	{ "apps", "apps", "list apps: name, status, release, processes", 0, 1, 3, cmd_apps, 0 },
	{ "create", "create NAME", "make an app before its first push", 0, 2, 2, cmd_create, 0 },
	{ "ps", "ps NAME", "each process of an app: pid, port, uptime, restarts", 1, 2, 2, cmd_ps, 0 },
	{ "logs", "logs NAME|--server [-n N] [-f] [-p PROC] [--source S]", "the app's log (or the engine's); -f follows it; -p one process or type; --source router shows the router's lines", 0, 2, 9, cmd_logs, 0 },
	{ "deploy", "deploy NAME BUNDLE", "deploy a bundle (.tar.gz) as a new release", 0, 3, 13, cmd_deploy, CMD_LOCAL },
	{ "restart", "restart NAME [PROCESS]", "restart every process, with no downtime; or one type (worker) or process (worker.1)", 1, 2, 3, cmd_restart, 0 },
	{ "stop", "stop NAME", "stop every process", 1, 2, 2, cmd_stop, 0 },
	{ "start", "start NAME", "start a stopped app", 1, 2, 2, cmd_start, 0 },
	{ "scale", "scale NAME TYPE=N...", "set process counts, e.g. web=2 worker=1", 1, 3, -1, cmd_scale, 0 },
	{ "rm", "rm NAME --force", "remove an app and everything it has", 1, 2, 5, cmd_rm, 0 },
	{ "config", "config NAME [set K=V... | unset K... | get K]", "show or change config vars", 1, 2, -1, cmd_config, 0 },
	{ "releases", "releases NAME", "list releases", 1, 2, 2, cmd_releases, 0 },
	{ "releases:output", "releases:output NAME [N]", "the output of the deploy that made release N (or of the newest deploy, failed builds included); one still running is followed", 1, 2, 6, cmd_releases_output, 0 },
	{ "rollback", "rollback NAME [N]", "deploy an earlier release again", 1, 2, 3, cmd_rollback, 0 },
	{ "stats", "stats NAME", "requests, 5xx and p95 per minute over the last hour; memory and CPU per process", 1, 2, 2, cmd_stats, 0 },
	{ "run", "run NAME COMMAND...", "a one-off process in the live release's environment, on this terminal (ssh -t for an interactive one)", 1, 3, -1, cmd_run, 0 },
	{ "run:term", "run:term NAME TERM COMMAND...", "", 1, 4, -1, cmd_run, CMD_HIDDEN },
	{ "run:detached", "run:detached NAME COMMAND...", "a one-off process in the background; its output in logs as run.N", 1, 3, -1, cmd_run, 0 },
	{ "pg", "pg NAME", "the app's PostgreSQL database: name and size", 1, 2, 2, cmd_pg, 0 },
	{ "pg:backup", "pg:backup NAME [FILE|-]", "dump the app's database (pg_dump, custom format)", 0, 1, -1, cmd_client_side, 0 },
	{ "pg:restore", "pg:restore NAME FILE|- [--force]", "restore a dump into the app's database", 0, 1, -1, cmd_client_side, 0 },
	{ "pg:psql", "pg:psql NAME", "psql as the app's role (ssh -t for a terminal)", 0, 1, -1, cmd_client_side, 0 },
	{ "export", "export NAME [FILE|-]", "the app as one tar.gz: repository, live release, config, releases", 0, 1, -1, cmd_client_side, 0 },
	{ "import", "import NAME FILE|-", "make app NAME from an export and start it", 0, 1, -1, cmd_client_side, 0 },
	{ "import-staged", "import-staged NAME DIR", "(import's own step, local only)", 0, 3, 3, cmd_import_staged, 0 },
	{ "certs", "certs NAME", "the app's HTTPS certificate: issuer, hosts, expiry", 1, 2, 2, cmd_certs, 0 },
	{ "certs:auto", "certs:auto NAME", "get a certificate through ACME (http-01) and renew it 30 days before expiry", 1, 2, 2, cmd_certs, 0 },
	{ "certs:add", "certs:add NAME [CRT KEY]", "install a certificate and key (files on this host, or PEM or a tar on stdin)", 0, 1, -1, cmd_client_side, 0 },
	{ "certs:remove", "certs:remove NAME", "remove the app's certificate (plain HTTP only)", 1, 2, 2, cmd_certs, 0 },
	{ "certs:set", "certs:set NAME https_redirect|hsts VALUE", "redirect HTTP to HTTPS (true by default) or send HSTS (false by default, true or seconds)", 1, 4, 4, cmd_certs, 0 },
	{ "certs:add-staged", "certs:add-staged NAME DIR", "", 1, 3, 3, cmd_certs, CMD_LOCAL | CMD_HIDDEN },
	{ "status", "status [NAME]", "the engine: version, uptime, nginx, postgres, apps, disk; with NAME, the app's processes (as ps)", 0, 1, 2, cmd_status, 0 },
	{ "apps:rename", "apps:rename NAME NEW-NAME", "rename an app: repository, releases, logs, hosts, certificate and database follow; it keeps serving", 1, 3, 3, cmd_rename, 0 },
	{ "apps:info", "apps:info NAME", "one app at a glance: URL, hosts, release, buildpack, processes, database, disk", 1, 2, 2, cmd_info, 0 },
	{ "url", "url NAME", "where the app answers", 1, 2, 2, cmd_url, 0 },
	{ "domains", "domains NAME", "the hosts the app answers, and where each comes from", 1, 2, 2, cmd_domains, 0 },
	{ "domains:add", "domains:add NAME HOST...", "answer on more hosts, at once (no redeploy)", 1, 3, 66, cmd_domains, 0 },
	{ "domains:remove", "domains:remove NAME HOST...", "stop answering on hosts added with domains:add", 1, 3, 66, cmd_domains, 0 },
	{ "domains:clear", "domains:clear NAME", "remove every host added with domains:add", 1, 2, 2, cmd_domains, 0 },
	{ "buildpacks", "buildpacks NAME", "the buildpacks set for the app, and the one its release was built with", 1, 2, 2, cmd_buildpacks, 0 },
	{ "buildpacks:set", "buildpacks:set NAME BUILDPACK...", "build the next pushes with these (a name like python, or a git URL with an optional #ref), in order", 1, 3, 18, cmd_buildpacks, 0 },
	{ "buildpacks:add", "buildpacks:add NAME BUILDPACK...", "add buildpacks after those set", 1, 3, 18, cmd_buildpacks, 0 },
	{ "buildpacks:remove", "buildpacks:remove NAME BUILDPACK...", "remove set buildpacks", 1, 3, 18, cmd_buildpacks, 0 },
	{ "buildpacks:clear", "buildpacks:clear NAME", "back to detection (or the app's own .buildpacks, app.yaml, app.json)", 1, 2, 2, cmd_buildpacks, 0 },
	{ "maintenance:on", "maintenance:on NAME", "every request gets a 503 maintenance page, at once; the processes keep running", 1, 2, 2, cmd_maintenance, 0 },
	{ "maintenance:off", "maintenance:off NAME", "end maintenance: requests go to the app again", 1, 2, 2, cmd_maintenance, 0 },
	{ "keys", "keys [add [--admin] [--name NAME] KEY | rm NAME]", "manage SSH keys", 0, 1, 6, cmd_keys, 0 },
	{ "sharing", "sharing NAME [add KEYNAME | rm KEYNAME]", "list or change the keys that may reach an app", 1, 2, 4, cmd_sharing, 0 },
	{ "dashboard", "dashboard [--revoke]", "a one-time login link for the web dashboard; --revoke ends its sessions", 0, 1, 5, cmd_dashboard, 0 },
	{ "cluster", "cluster status | cluster rm HOST | cluster join", "the cluster's hosts: state, heartbeat, version, groups, apps; rm: that host stops its apps and leaves; join: a removed host joins again", 0, 2, 3, cmd_cluster, 0 },
	{ "apps:set-group", "apps:set-group NAME GROUP", "run the app on the cluster's hosts of GROUP (default: default)", 0, 3, 3, cmd_set_group, 0 },
	{ "version", "version", "print berth's version", 0, 1, 1, cmd_version, 0 },
	{ "help", "help", "this list", 0, 1, 2, cmd_help, 0 },
	/* A push's build: its output lines follow the request (engine.h
	 * client_on_input()); makes the app on a first push. */
	{ "build-log", "build-log NAME", "", 0, 2, 2, cmd_build_log,
	  CMD_LOCAL | CMD_HIDDEN },
};

/* Dokku's and Piku's spellings, for people moving over. */
static const struct alias {
	const char *from;
	const char *to;
	const char *sub;	/* inserted after the app name */
} aliases[] = {
	{ "apps:list", "apps", NULL },
	{ "apps:create", "create", NULL },
	{ "apps:destroy", "rm", NULL },
	{ "destroy", "rm", NULL },
	{ "config:show", "config", NULL },
	{ "config:set", "config", "set" },
	{ "config:unset", "config", "unset" },
	{ "config:get", "config", "get" },
	{ "ps:scale", "scale", NULL },
	{ "ps:restart", "restart", NULL },
	{ "ps:stop", "stop", NULL },
	{ "ps:start", "start", NULL },
	{ "ps:report", "ps", NULL },
	{ "domains:report", "domains", NULL },
	{ "apps:report", "apps:info", NULL },
	{ "rename", "apps:rename", NULL },
	{ "info", "apps:info", NULL },
	{ "domains:list", "domains", NULL },
	{ "buildpacks:report", "buildpacks", NULL },
	{ "buildpacks:list", "buildpacks", NULL },
};

void commands_describe(struct buf *out)
{
	size_t i;

	for (i = 0; i < ARRAY_SIZE(commands); i++)
		if (!(commands[i].flags & CMD_HIDDEN))
			buf_addf(out, "  %-44s %s\n", commands[i].usage,
				 commands[i].help);
}

void commands_help(struct client *c)
{
	struct buf b = BUF_INIT;

	commands_describe(&b);
	client_data(c, "usage: COMMAND [ARGS...]");
	client_data(c, "%s", b.data);
	buf_release(&b);
}

/* The command argv[0] names, Dokku's and Piku's spellings included; with
 * expanded (when not NULL) the argv it stands for. */
static const struct command *command_find(int *argc, char ***argv,
					  struct strv *expanded)
{
	size_t i;
	int k, f, flags;

	for (i = 0; i < ARRAY_SIZE(aliases); i++) {
		if (strcmp((*argv)[0], aliases[i].from))
			continue;
		/* Dokku puts flags before the app name
		 * (config:set --no-restart APP K=V): they move after it
		 * and the subcommand. */
		flags = 1;
		while (flags < *argc && !strncmp((*argv)[flags], "--", 2))
			flags++;
		strv_push(expanded, aliases[i].to);
		for (k = flags; k < *argc; k++) {
			strv_push(expanded, (*argv)[k]);
			if (k == flags) {
				if (aliases[i].sub)
					strv_push(expanded, aliases[i].sub);
				for (f = 1; f < flags; f++)
					strv_push(expanded, (*argv)[f]);
			}
		}
		*argv = expanded->v;
		*argc = (int)expanded->n;
		break;
	}
	for (i = 0; i < ARRAY_SIZE(commands); i++)
		if (!strcmp(commands[i].name, (*argv)[0]))
			return &commands[i];
	return NULL;
}

void commands_expand(int argc, char **argv, struct strv *out)
{
	struct strv expanded = STRV_INIT;
	char **args = argv;
	int n = argc, i;

	command_find(&n, &args, &expanded);
	for (i = 0; i < n; i++)
		strv_push(out, args[i]);
	strv_release(&expanded);
}

int commands_check(int argc, char **argv, struct buf *why)
{
	struct strv expanded = STRV_INIT;
	const struct command *cmd = command_find(&argc, &argv, &expanded);
	int ret = 0;

	if (!cmd) {
		buf_addf(why, "unknown command '%s' (try 'help')", argv[0]);
		ret = ERR_NOTFOUND;
	} else if (argc < cmd->min_args ||
		   (cmd->max_args >= 0 && argc > cmd->max_args)) {
		buf_addstr(why, cmd->usage);
		ret = ERR_USAGE;
	}
	strv_release(&expanded);
	return ret;
}

const char *commands_usage(const char *name, const char **help)
{
	struct strv expanded = STRV_INIT;
	char *argv[] = { (char *)(uintptr_t)name, NULL }, **args = argv;
	int argc = 1;
	const struct command *cmd = command_find(&argc, &args, &expanded);

	strv_release(&expanded);
	if (!cmd || (cmd->flags & CMD_HIDDEN))
		return NULL;
	if (help)
		*help = cmd->help;
	return cmd->usage;
}

int commands_local_only(const char *name)
{
	struct strv expanded = STRV_INIT;
	char *argv[] = { (char *)(uintptr_t)name, NULL }, **args = argv;
	int argc = 1;
	const struct command *cmd = command_find(&argc, &args, &expanded);

	strv_release(&expanded);
	return cmd && (cmd->flags & CMD_LOCAL);
}

/* A command that waited for the cluster's database, run now. */
static void commands_redo(void *arg, struct client *c, int argc,
			  char **argv)
{
	commands_dispatch(arg, c, argc, argv);
}

void commands_dispatch(struct engine *e, struct client *c, int argc,
		       char **argv)
{
	const struct command *cmd;
	struct app *a = NULL;
	struct strv expanded = STRV_INIT;
	char **args = argv;

	cmd = command_find(&argc, &args, &expanded);
	if (!cmd) {
		client_error_code(c, CONTROL_ERR_USAGE,
				  "unknown command '%s' (try 'help')", args[0]);
		goto out;
	}
	if (argc < cmd->min_args || (cmd->max_args >= 0 && argc > cmd->max_args)) {
		client_error_code(c, CONTROL_ERR_USAGE,
				  "usage: %s", cmd->usage);
		goto out;
	}
	if (cmd->need_app) {
		if (!app_name_valid(args[1])) {
			client_error(c, "invalid app name '%s'", args[1]);
			goto out;
		}
		a = app_find(e, args[1]);
		if (!a) {
			client_error_code(c, CONTROL_ERR_NOTFOUND,
					  "app '%s' does not exist", args[1]);
			goto out;
		}
	}
	/* a change while the cluster's database is away waits for it */
	if (cluster_gate(e->cluster, c, argc, args, commands_redo, e))
		goto out;
	cmd->run(e, c, a, argc, args);
out:
	strv_release(&expanded);
}
