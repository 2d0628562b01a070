/*
 * main: the one berth binary.  "berth serve" runs the engine; "berth
 * session" is the per-connection SSH process the engine starts; every
 * other command is a request to the engine over its control socket.
 * Exit codes: 0 ok, 1 failed, 100 usage, 111 engine unreachable.
 */
#include <errno.h>
#include <limits.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "commands.h"
#include "backup.h"
#include "certs.h"
#include "config.h"
#include "control.h"
#include "dashboard.h"
#include "engine.h"
#include "export.h"
#include "gitsep.h"
#include "gitserve.h"
#include "keys.h"
#include "log.h"
#include "oneoff.h"
#include "session.h"
#include "startserver.h"
#include "util.h"
#include "version.h"
#include "banned.h"

static void usage(FILE *f)
{
	fprintf(f,
		"usage: berth [--root DIR] serve [--ssh-listen ADDR:PORT] [--http-listen ADDR:PORT]\n"
		"                                [--domain NAME] [-v]\n"
		"       berth [--root DIR] config-check\n"
		"       berth [--root DIR] COMMAND [ARGS...]\n"
		"       berth start-server [OPTIONS] -- COMMAND [ARGS...]  (also as start_server)\n"
		"\n"
		"The state directory is --root, else $BERTH_ROOT, else /var/lib/berth for\n"
		"root and ~/.berth for other users.  --root DIR may follow the command too.\n"
		"'berth help' lists the commands, 'berth COMMAND --help' shows one.\n");
}

/* "berth help": everything, without asking the engine. */
static void help_all(void)
{
	struct buf b = BUF_INIT;

	usage(stdout);
	commands_describe(&b);
	printf("\nCommands (the engine must be running; the same over ssh):\n%s",
	       b.data ? b.data : "");
	buf_release(&b);
}

/* "berth COMMAND --help" */
static int help_one(const char *cmd)
{
	const char *help = NULL, *use;

	if (!strcmp(cmd, "serve") || !strcmp(cmd, "config-check")) {
		help_all();
		return 0;
	}
	use = commands_usage(cmd, &help);
	if (!use) {
		fprintf(stderr, "berth: unknown command '%s' (try 'berth help')\n",
			cmd);
		return 100;
	}
	printf("usage: berth %s\n  %s\n", use, help);
	return 0;
}

/*
 * "--root DIR" (or --root=DIR) anywhere after the command: taken out of
 * argv, the last one wins.  100 if --root has no value.
 */
static int take_root(int *argc, char **argv, char **root)
{
	int i = 0, k = 0;

	while (i < *argc) {
		if (!strcmp(argv[i], "--root")) {
			if (i + 1 >= *argc) {
				fprintf(stderr, "berth: --root needs a value\n");
				return 100;
			}
			free(*root);
			*root = xstrdup(argv[i + 1]);
			i += 2;
		} else if (!strncmp(argv[i], "--root=", 7)) {
			free(*root);
			*root = xstrdup(argv[i] + 7);
			i++;
		} else {
			argv[k++] = argv[i++];
		}
	}
	argv[k] = NULL;
	*argc = k;
	return 0;
}

static int wants_help(int argc, char **argv)
{
	int i;

	for (i = 0; i < argc; i++)
		if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h"))
			return 1;
	return 0;
}

static char *default_root(void)
{
	const char *env = getenv("BERTH_ROOT");
	const char *home;

	if (env && *env)
		return xstrdup(env);
	if (getuid() == 0)
		return xstrdup("/var/lib/berth");
	home = getenv("HOME");
	if (!home || !*home) {
		struct passwd *pw = getpwuid(getuid());

		home = pw ? pw->pw_dir : "/tmp";
	}
	return xasprintf("%s/.berth", home);
}

/* The state directory as an absolute path (it may not exist yet). */
static char *absolute_root(const char *root)
{
	char cwd[PATH_MAX];

	if (root[0] == '/')
		return xstrdup(root);
	if (!getcwd(cwd, sizeof(cwd)))
		return xstrdup(root);
	return xasprintf("%s/%s", cwd, root);
}

static int load_config(struct config *cfg, const char *root)
{
	config_init(cfg, root);
	if (config_load(cfg) < 0) {
		fprintf(stderr, "berth: %s\n", error_last());
		config_release(cfg);
		return -1;
	}
	return 0;
}

static int cmd_serve(const char *root, int argc, char **argv)
{
	struct config cfg;
	int i, verbose = 0, ret;

	if (load_config(&cfg, root) < 0)
		return 1;
	for (i = 0; i < argc; i++) {
		const char *key = NULL;

		if (!strcmp(argv[i], "--ssh-listen"))
			key = "ssh_listen";
		else if (!strcmp(argv[i], "--http-listen"))
			key = "http_listen";
		else if (!strcmp(argv[i], "--domain"))
			key = "domain";
		else if (!strcmp(argv[i], "-v") || !strcmp(argv[i], "--verbose")) {
			verbose = 1;
			continue;
		} else {
			fprintf(stderr, "berth serve: unknown option '%s'\n", argv[i]);
			usage(stderr);
			config_release(&cfg);
			return 100;
		}
		if (i + 1 >= argc) {
			fprintf(stderr, "berth serve: %s needs a value\n", argv[i]);
			config_release(&cfg);
			return 100;
		}
		if (config_set(&cfg, key, argv[++i]) < 0) {
			fprintf(stderr, "berth serve: %s\n", error_last());
			config_release(&cfg);
			return 100;
		}
	}
	log_init(verbose, "berth");
	ret = engine_serve(&cfg);
	config_release(&cfg);
	return ret;
}

/* "berth config-check": read berth.yaml as "serve" would, say if it is
 * fine and show every setting (defaults included). */
static int cmd_config_check(const char *root)
{
	struct config cfg;
	struct buf out = BUF_INIT;

	if (load_config(&cfg, root) < 0)
		return 1;
	config_show(&cfg, &out);
	fputs(out.data ? out.data : "", stdout);
	printf("configuration OK\n");
	buf_release(&out);
	config_release(&cfg);
	return 0;
}

static int cmd_session(const char *root)
{
	struct config cfg;
	int ret;

	log_init(0, "session");
	if (load_config(&cfg, root) < 0)
		return 1;
	ret = session_main(&cfg, 3, 4);
	config_release(&cfg);
	return ret;
}

/* The dashboard's provider: the control socket, as the CLI uses it. */
static int dash_call(void *ctx, int argc, char *const *argv,
		     control_line_fn fn, void *arg, struct control_result *res)
{
	return control_call_result(ctx, argc, argv, fn, arg, res);
}

static int dash_open(void *ctx, int argc, char *const *argv)
{
	struct buf req = BUF_INIT;
	int fd = control_connect(ctx);

	if (fd < 0)
		return -1;
	control_encode_request(&req, argc, argv);
	if (write_all(fd, req.data, req.len) < 0) {
		error_setsys("cannot send request");
		close(fd);
		fd = -1;
	}
	buf_release(&req);
	return fd;
}

struct key_find {
	const char *key;
	int found;
};

static int key_find_line(void *arg, enum control_kind kind, const char *text)
{
	struct key_find *kf = arg;
	char name[256];

	if (kind == CONTROL_FIELDS &&
	    control_field(text, "key", name, sizeof(name)) == 0 &&
	    !strcmp(name, kf->key))
		kf->found = 1;
	return 0;
}

/* Whether a key of that name is there, from the typed fields of the
 * engine's "keys" (one "fields key=NAME ..." a key): 1, 0, or -1 when
 * the engine is not reachable. */
static int dash_key_exists(void *ctx, const char *key)
{
	char *argv[] = { "keys", NULL };
	struct key_find kf = { key, 0 };
	struct control_result res;
	int r;

	r = control_call_result(ctx, 1, argv, key_find_line, &kf, &res);
	control_result_release(&res);
	if (r < 0) {
		log_warnx("cannot ask the engine for the keys: %s",
			 error_last());
		return -1;
	}
	return r == 0 && kf.found;
}

/* "berth dashboard-serve": the dashboard's HTTP server, started by the
 * engine with its listening socket as fd 3. */
static int cmd_dashboard_serve(const char *root, int argc, char **argv)
{
	struct dashboard_provider p;
	struct dashboard_opts o;
	struct config cfg;
	int ret, i;

	log_init(0, "dashboard");
	if (load_config(&cfg, root) < 0)
		return 1;
	for (i = 0; i + 1 < argc; i += 2) {
		if ((strcmp(argv[i], "--http-listen") &&
		     strcmp(argv[i], "--domain")) ||
		    config_set(&cfg, strcmp(argv[i], "--domain") ?
			       "http_listen" : "domain", argv[i + 1]) < 0) {
			fprintf(stderr, "berth: dashboard-serve: bad option '%s'\n",
				argv[i]);
			config_release(&cfg);
			return 100;
		}
	}
	p.ctx = cfg.root;
	p.call = dash_call;
	p.open = dash_open;
	p.key_exists = dash_key_exists;
	o.cfg = &cfg;
	o.listen_fd = 3;
	o.provider = &p;
	ret = dashboard_serve(&o);
	config_release(&cfg);
	return ret;
}

static int cmd_git_stdio(const char *root, int argc, char **argv)
{
	struct config cfg;
	int ret;

	if (argc != 1) {
		fprintf(stderr, "usage: berth git-serve-stdio [--root DIR] 'COMMAND'\n");
		return 100;
	}
	log_init(0, "git");
	if (load_config(&cfg, root) < 0)
		return 1;
	/* as root, the transfer runs as berth-ssh (gitsep.h) */
	ret = gitserve_stdio_main(&cfg, argv[0], geteuid() == 0 ?
				  gitsep_run_local : gitserve_run);
	config_release(&cfg);
	return ret;
}

static int print_line(void *arg, enum control_kind kind, const char *text)
{
	if (kind == CONTROL_DATA) {
		fputs(text, stdout);
		fputc('\n', stdout);
		fflush(stdout);
	}
	return 0;
}

static int read_all(FILE *f, struct buf *out)
{
	char chunk[4096];
	size_t n;

	while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
		if (buf_add(out, chunk, n) < 0)
			return -1;
	return ferror(f) ? error_setsys("read") : 0;
}

/* Client-side shaping of a few commands before they are sent. */
static int prepare_request(struct strv *req, int argc, char **argv)
{
	int i;

	for (i = 0; i < argc; i++) {
		if (!argv[i][0]) {
			fprintf(stderr, "berth: empty argument\n");
			return 100;
		}
	}
	if (!strcmp(argv[0], "deploy") && argc >= 3) {
		char *abs = realpath(argv[2], NULL);

		if (!abs) {
			fprintf(stderr, "berth: cannot read bundle '%s': %s\n",
				argv[2], strerror(errno));
			return 1;
		}
		strv_push(req, argv[0]);
		strv_push(req, argv[1]);
		strv_push(req, abs);
		free(abs);
		for (i = 3; i < argc; i++)
			strv_push(req, argv[i]);
		return 0;
	}
	if (!strcmp(argv[0], "keys") && argc >= 3 && !strcmp(argv[1], "add")) {
		struct buf text = BUF_INIT;
		int admin = 0, k = 2;
		const char *name = NULL;
		FILE *f;

		buf_init(&text, 64 * 1024);
		for (;;) {
			if (k < argc && !strcmp(argv[k], "--admin")) {
				admin = 1;
				k++;
			} else if (k + 1 < argc && !strcmp(argv[k], "--name")) {
				name = argv[k + 1];
				k += 2;
			} else {
				break;
			}
		}
		if (k + 1 != argc) {
			fprintf(stderr, "usage: berth keys add [--admin] [--name NAME] FILE|-\n");
			return 100;
		}
		f = strcmp(argv[k], "-") ? fopen(argv[k], "r") : stdin;
		if (!f || read_all(f, &text) < 0) {
			fprintf(stderr, "berth: cannot read '%s': %s\n", argv[k],
				f ? error_last() : strerror(errno));
			if (f && f != stdin)
				fclose(f);
			buf_release(&text);
			return 1;
		}
		if (f != stdin)
			fclose(f);
		strv_push(req, "keys");
		strv_push(req, "add");
		if (admin)
			strv_push(req, "--admin");
		if (name) {
			strv_push(req, "--name");
			strv_push(req, name);
		}
		strv_push(req, text.data ? text.data : "");
		buf_release(&text);
		return 0;
	}
	for (i = 0; i < argc; i++)
		strv_push(req, argv[i]);
	if (!strcmp(argv[0], "rm") && argc == 2) {
		char answer[256];

		/* As Dokku does: without --force, the app's name typed back
		 * (or piped in: echo NAME | berth rm NAME) confirms. */
		fprintf(stderr, " !     This removes '%s': its processes, releases, repository and logs.\n"
			" !     To proceed, type the app's name: ", argv[1]);
		if (!fgets(answer, sizeof(answer), stdin)) {
			fprintf(stderr, "\nerror: refusing to remove '%s' without confirmation: type its name or add --force\n",
				argv[1]);
			return 1;
		}
		answer[strcspn(answer, "\r\n")] = '\0';
		if (strcmp(answer, argv[1])) {
			fprintf(stderr, "error: '%s' does not match '%s'; nothing removed\n",
				answer, argv[1]);
			return 1;
		}
		strv_push(req, "--force");
	}
	return 0;
}

static ssize_t stdin_read(void *ctx, void *buf, size_t len)
{
	ssize_t n;

	do
		n = read(0, buf, len);
	while (n < 0 && errno == EINTR);
	return n < 0 ? error_setsys("cannot read stdin") : n;
}

static int stdout_write(void *ctx, const void *buf, size_t len)
{
	return write_all(1, buf, len) < 0 ? error_setsys("stdout") : 0;
}

static void stderr_error(void *ctx, const char *msg)
{
	fprintf(stderr, "error: %s\n", msg);
}

/* pg:backup, pg:restore, pg:psql, export, import: run here, not in the
 * engine. */
static int cmd_backup(const char *root, int argc, char **argv)
{
	struct backup_io io = {
		.read = stdin_read, .write = stdout_write,
		.error = stderr_error, .local = 1,
		.in_fd = 0, .out_fd = 1, .err_fd = 2,
	};

	if (export_is_command(argv[0]))
		return export_command(root, argc, argv, &io);
	if (!strcmp(argv[0], "certs:add"))
		return certs_add_command(root, argc, argv, &io);
	return backup_command(root, argc, argv, &io);
}

/* run's answer: "ok exit-status=N" holds the command's own status; data
 * lines are berth's, on stderr so the command's output stays its own. */
static int run_line(void *arg, enum control_kind kind, const char *text)
{
	int *status = arg;
	long st;

	if (kind == CONTROL_OK &&
	    (st = control_field_long(text, "exit-status")) >= 0 && st <= 255)
		*status = (int)st;
	if (kind != CONTROL_DATA)
		return 0;
	fprintf(stderr, "%s\n", text);
	return 0;
}

/* "run APP CMD...": the engine starts it on our own stdin, stdout and
 * stderr (passed over the control socket) and says how it ended. */
static int cmd_run_attached(const char *root, int argc, char **argv)
{
	static const int fds[3] = { 0, 1, 2 };
	struct strv req = STRV_INIT;
	const char *term = getenv("TERM");
	struct control_result res;
	int status = -1, ret, i;

	/* on a terminal the process gets ours, and our TERM with it */
	if (argc >= 3 && isatty(0) && oneoff_term_valid(term)) {
		strv_push(&req, "run:term");
		strv_push(&req, argv[1]);
		strv_push(&req, term);
		for (i = 2; i < argc; i++)
			strv_push(&req, argv[i]);
		argc = (int)req.n;
		argv = req.v;
	}
	fflush(stdout);
	ret = control_call_fds(root, argc, argv, fds, 3, run_line, &status,
			       &res);
	if (ret < 0) {
		fprintf(stderr, "berth: %s\n", error_last());
		ret = 111;
	} else if (ret > 0) {
		fprintf(stderr, "error: %s\n",
			res.message ? res.message : "failed");
		ret = control_error_status(res.code);
	} else {
		ret = status < 0 ? 1 : status;
	}
	control_result_release(&res);
	strv_release(&req);
	return ret;
}

static int cmd_client(const char *root, int argc, char **argv)
{
	struct strv req = STRV_INIT;
	struct control_result res = { 0 };
	int ret;

	ret = prepare_request(&req, argc, argv);
	if (ret)
		goto out;
	if (!strcmp(req.v[0], "run")) {
		ret = cmd_run_attached(root, (int)req.n, req.v);
		goto out;
	}
	ret = control_call_result(root, (int)req.n, req.v, print_line, NULL,
				  &res);
	if (ret < 0) {
		fprintf(stderr, "berth: %s\n", error_last());
		ret = 111;
	} else if (ret > 0) {
		fprintf(stderr, "error: %s\n",
			res.message ? res.message : "failed");
		ret = control_error_status(res.code);
	}
out:
	control_result_release(&res);
	strv_release(&req);
	return ret;
}

int main(int argc, char **argv)
{
	char *root = NULL, *abs;
	const char *name = strrchr(argv[0], '/');
	const char *cmd;
	struct buf why = BUF_INIT;
	int i = 1, ret, nargs;
	char **args;

	/* Installed as "start_server" too: the drop-in for Server::Starter's. */
	if (!strcmp(name ? name + 1 : argv[0], "start_server"))
		return startserver_main(argc, argv);
	if (argc > 1 && !strcmp(argv[1], "start-server"))
		return startserver_main(argc - 1, argv + 1);

	while (i < argc && argv[i][0] == '-') {
		if (!strcmp(argv[i], "--root") && i + 1 < argc) {
			free(root);
			root = xstrdup(argv[i + 1]);
			i += 2;
		} else if (!strncmp(argv[i], "--root=", 7)) {
			free(root);
			root = xstrdup(argv[i] + 7);
			i++;
		} else if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
			help_all();
			free(root);
			return 0;
		} else if (!strcmp(argv[i], "--version")) {
			printf("berth %s\n", BERTH_VERSION);
			free(root);
			return 0;
		} else {
			fprintf(stderr, "berth: unknown option '%s'\n", argv[i]);
			usage(stderr);
			free(root);
			return 100;
		}
	}
	if (i >= argc) {
		usage(stderr);
		free(root);
		return 100;
	}
	cmd = argv[i];
	args = argv + i + 1;
	nargs = argc - i - 1;
	/* run's words after the app name are the command's own, --root
	 * and --help included */
	if (!strcmp(cmd, "run") || !strcmp(cmd, "run:detached")) {
		if (nargs >= 1 && wants_help(1, args)) {
			free(root);
			return help_one(cmd);
		}
	} else if (take_root(&nargs, args, &root)) {
		free(root);
		return 100;
	}
	/* What needs no engine, and no state directory. */
	if (strcmp(cmd, "session") && strcmp(cmd, "git-serve-stdio") &&
	    strcmp(cmd, "dashboard-serve") && strcmp(cmd, "run") &&
	    strcmp(cmd, "run:detached") && wants_help(nargs, args)) {
		free(root);
		return help_one(cmd);
	}
	if (!strcmp(cmd, "help") && nargs <= 1) {
		free(root);
		if (nargs == 1)
			return help_one(args[0]);
		help_all();
		return 0;
	}
	if (!strcmp(cmd, "version") && nargs == 0) {
		free(root);
		printf("berth %s\n", BERTH_VERSION);
		return 0;
	}
	if (!root)
		root = default_root();
	abs = absolute_root(root);
	free(root);
	if (!strcmp(cmd, "serve")) {
		ret = cmd_serve(abs, nargs, args);
	} else if (!strcmp(cmd, "session")) {
		ret = cmd_session(abs);
	} else if (!strcmp(cmd, "config-check")) {
		if (nargs) {
			fprintf(stderr, "usage: berth [--root DIR] config-check\n");
			ret = 100;
		} else {
			ret = cmd_config_check(abs);
		}
	} else if (!strcmp(cmd, "dashboard-serve")) {
		ret = cmd_dashboard_serve(abs, nargs, args);
	} else if (!strcmp(cmd, "git-serve-stdio")) {
		ret = cmd_git_stdio(abs, nargs, args);
	} else if (backup_is_command(cmd) || export_is_command(cmd) ||
		   !strcmp(cmd, "certs:add")) {
		ret = cmd_backup(abs, nargs + 1, args - 1);
	} else if ((ret = commands_check(nargs + 1, args - 1, &why)) < 0) {
		/* Caught here, the engine need not be running to say it. */
		if (ret == ERR_USAGE)
			fprintf(stderr, "usage: berth %s\n", why.data);
		else
			fprintf(stderr, "error: %s\n", why.data);
		ret = 100;
	} else {
		ret = cmd_client(abs, nargs + 1, args - 1);
	}
	buf_release(&why);
	free(abs);
	return ret;
}
