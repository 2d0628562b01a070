/*
 * commands: the one command table.  The local CLI and SSH sessions send
 * the same requests over the control socket; this file turns argv into
 * calls on app.c, checking names and arity first so that a bad request
 * never touches state.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "access.h"
#include "app.h"
#include "config.h"
#include "control.h"
#include "engine.h"
#include "keys.h"
#include "version.h"

struct command {
	const char *name;
	const char *usage;
	const char *help;
	int need_app;		/* argv[1] names an existing app */
	int min_args, max_args;	/* counting argv[0]; -1: no limit */
	void (*run)(struct engine *e, struct client *c, struct app *a,
		    int argc, char **argv);
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

static void cmd_apps(struct engine *e, struct client *c, struct app *a,
		     int argc, char **argv)
{
	app_cmd_apps(e, c);
}

static void cmd_ps(struct engine *e, struct client *c, struct app *a,
		   int argc, char **argv)
{
	app_cmd_ps(a, c);
}

static void cmd_logs(struct engine *e, struct client *c, struct app *a,
		     int argc, char **argv)
{
	long n = 100;
	int follow = 0, i;

	for (i = 2; i < argc; i++) {
		if (!strcmp(argv[i], "-f") || !strcmp(argv[i], "--follow") ||
		    !strcmp(argv[i], "-t") || !strcmp(argv[i], "--tail")) {
			follow = 1;
		} else if ((!strcmp(argv[i], "-n") || !strcmp(argv[i], "--num")) &&
			   i + 1 < argc) {
			n = parse_long(argv[++i], 100000);
			if (n < 0) {
				client_error(c, "bad line count '%s' (0 to 100000)",
					     argv[i]);
				return;
			}
		} else {
			client_error(c, "usage: logs NAME [-n N] [-f]");
			return;
		}
	}
	app_cmd_logs(e, argv[1], n, follow, c);
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
			client_error(c, "deploy: unknown option '%s'", argv[i]);
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
	app_deploy(e, a->name, DEPLOY_RESTART, NULL, c);
}

static void cmd_stop(struct engine *e, struct client *c, struct app *a,
		     int argc, char **argv)
{
	app_cmd_stop(a, c);
}

static void cmd_start(struct engine *e, struct client *c, struct app *a,
		      int argc, char **argv)
{
	app_cmd_start(a, c);
}

static void cmd_scale(struct engine *e, struct client *c, struct app *a,
		      int argc, char **argv)
{
	app_cmd_scale(a, argc - 2, argv + 2, c);
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
			client_error(c, "usage: rm NAME --force [--drop-database]");
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

static void reply_buf(struct client *c, struct buf *out)
{
	char *line, *save = NULL;

	if (out->len)
		for (line = strtok_r(out->data, "\n", &save); line;
		     line = strtok_r(NULL, "\n", &save))
			client_data(c, "%s", line);
}

static void cmd_keys(struct engine *e, struct client *c, struct app *a,
		     int argc, char **argv)
{
	struct buf out = BUF_INIT;
	int ret, admin = 0, i = 2;
	const char *name = NULL;

	if (argc == 1 || (argc == 2 && !strcmp(argv[1], "list"))) {
		ret = keys_list(e->cfg->root, &out);
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
			client_error(c, "usage: keys add [--admin] [--name NAME] KEY-TEXT");
			return;
		}
		ret = keys_add_named(e->cfg->root, argv[i], name, admin, &out);
	} else if (!strcmp(argv[1], "rm") && argc == 3) {
		ret = keys_remove(e->cfg->root, argv[2], &out);
	} else {
		client_error(c, "usage: keys [add [--admin] [--name NAME] KEY-TEXT | rm NAME]");
		return;
	}
	if (ret < 0) {
		client_error(c, "%s", error_last());
	} else {
		reply_buf(c, &out);
		client_ok(c);
	}
	buf_release(&out);
}

static void cmd_sharing(struct engine *e, struct client *c, struct app *a,
			int argc, char **argv)
{
	struct buf out = BUF_INIT;

	(void)a;
	if (access_sharing(e->cfg->root, argv[1], argc, argv, &out) < 0) {
		client_error(c, "%s", error_last());
	} else {
		reply_buf(c, &out);
		client_ok(c);
	}
	buf_release(&out);
}

static const struct command commands[] = {
	{ "apps", "apps", "list apps: name, status, release, processes", 0, 1, 1, cmd_apps },
	{ "ps", "ps NAME", "each process of an app: pid, port, uptime, restarts", 1, 2, 2, cmd_ps },
	{ "logs", "logs NAME [-n N] [-f]", "the app's log; -f follows it", 1, 2, 5, cmd_logs },
	{ "deploy", "deploy NAME BUNDLE", "deploy a bundle (.tar.gz) as a new release", 0, 3, 13, cmd_deploy },
	{ "restart", "restart NAME", "restart every process, with no downtime", 1, 2, 2, cmd_restart },
	{ "stop", "stop NAME", "stop every process", 1, 2, 2, cmd_stop },
	{ "start", "start NAME", "start a stopped app", 1, 2, 2, cmd_start },
	{ "scale", "scale NAME TYPE=N...", "set process counts, e.g. web=2 worker=1", 1, 3, -1, cmd_scale },
	{ "rm", "rm NAME --force", "remove an app and everything it has", 1, 2, 5, cmd_rm },
	{ "config", "config NAME [set K=V... | unset K... | get K]", "show or change config vars", 1, 2, -1, cmd_config },
	{ "releases", "releases NAME", "list releases", 1, 2, 2, cmd_releases },
	{ "rollback", "rollback NAME [N]", "deploy an earlier release again", 1, 2, 3, cmd_rollback },
	{ "pg", "pg NAME", "the app's PostgreSQL database: name and size", 1, 2, 2, cmd_pg },
	{ "keys", "keys [add [--admin] [--name NAME] KEY | rm NAME]", "manage SSH keys", 0, 1, 6, cmd_keys },
	{ "sharing", "sharing NAME [add KEYNAME | rm KEYNAME]", "list or change the keys that may reach an app", 1, 2, 4, cmd_sharing },
	{ "version", "version", "print berth's version", 0, 1, 1, cmd_version },
	{ "help", "help", "this list", 0, 1, 2, cmd_help },
};

/* Dokku's and Piku's spellings, for people moving over. */
static const struct alias {
	const char *from;
	const char *to;
	const char *sub;	/* inserted after the app name */
} aliases[] = {
	{ "apps:list", "apps", NULL },
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
};

void commands_help(struct client *c)
{
	size_t i;

	client_data(c, "usage: COMMAND [ARGS...]");
	for (i = 0; i < ARRAY_SIZE(commands); i++)
		client_data(c, "  %-44s %s", commands[i].usage, commands[i].help);
}

void commands_dispatch(struct engine *e, struct client *c, int argc,
		       char **argv)
{
	const struct command *cmd = NULL;
	struct app *a = NULL;
	struct strv expanded = STRV_INIT;
	char **args = argv;
	size_t i;
	int k;

	for (i = 0; i < ARRAY_SIZE(aliases); i++) {
		if (strcmp(argv[0], aliases[i].from))
			continue;
		strv_push(&expanded, aliases[i].to);
		for (k = 1; k < argc; k++) {
			strv_push(&expanded, argv[k]);
			if (k == 1 && aliases[i].sub)
				strv_push(&expanded, aliases[i].sub);
		}
		args = expanded.v;
		argc = (int)expanded.n;
		break;
	}
	for (i = 0; i < ARRAY_SIZE(commands); i++)
		if (!strcmp(commands[i].name, args[0]))
			cmd = &commands[i];
	if (!cmd) {
		client_error(c, "unknown command '%s' (try 'help')", args[0]);
		goto out;
	}
	if (argc < cmd->min_args || (cmd->max_args >= 0 && argc > cmd->max_args)) {
		client_error(c, "usage: %s", cmd->usage);
		goto out;
	}
	if (cmd->need_app) {
		if (!app_name_valid(args[1])) {
			client_error(c, "invalid app name '%s'", args[1]);
			goto out;
		}
		a = app_find(e, args[1]);
		if (!a) {
			client_error(c, "app '%s' does not exist", args[1]);
			goto out;
		}
	}
	cmd->run(e, c, a, argc, args);
out:
	strv_release(&expanded);
}
