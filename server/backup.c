/* backup: see backup.h. */
#include "backup.h"

#include <errno.h>
#include <fcntl.h>
#include <glob.h>
#include <pwd.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "app.h"
#include "control.h"
#include "postgres.h"
#include "spawn.h"
#include "util.h"
#include "banned.h"

#define DUMP_MAGIC "PGDMP"
#define PSQL_INPUT_MAX (64L * 1024 * 1024)

/* ---- the engine: does the app have a database, and where ---- */

struct answer {
	struct buf data;
};

static int take_line(void *arg, enum control_kind kind, const char *text)
{
	struct answer *a = arg;

	if (kind == CONTROL_DATA) {
		buf_addstr(&a->data, text);
		buf_addstr(&a->data, "\n");
	}
	return 0;
}

/* 0 with *url set, else the exit status (io->error called). */
static int database_url(const char *root, char *app, struct backup_io *io,
			char **url)
{
	char *pg[] = { "pg", app, NULL };
	char *get[] = { "config", app, "get", "DATABASE_URL", NULL };
	struct answer a;
	char *err = NULL;
	int r, ret = 1;

	*url = NULL;
	buf_init(&a.data, 1 << 20);
	r = control_call(root, 2, pg, take_line, &a, &err);
	if (r == 0) {
		buf_reset(&a.data);
		free(err);
		err = NULL;
		r = control_call(root, 4, get, take_line, &a, &err);
	}
	if (r < 0) {
		io->error(io->ctx, "the server is not running (cannot reach the engine)");
		ret = 111;
		goto out;
	}
	if (r > 0) {
		io->error(io->ctx, err ? err : "failed");
		goto out;
	}
	if (a.data.len)
		a.data.data[strcspn(a.data.data, "\n")] = '\0';
	if (!a.data.len || !a.data.data[0]) {
		io->error(io->ctx, "the app's DATABASE_URL is empty");
		goto out;
	}
	*url = xstrdup(a.data.data);
	ret = 0;
out:
	free(err);
	buf_release(&a.data);
	return ret;
}

/* ---- running the PostgreSQL client programs ---- */

/* The newest /usr/lib/postgresql/N/bin/NAME (the embedded cluster's own
 * version), else NAME from PATH. */
static char *pg_program(const char *name)
{
	char *pattern = xasprintf("/usr/lib/postgresql/*/bin/%s", name);
	char *best = NULL;
	long best_v = -1;
	glob_t g;
	size_t i;

	if (glob(pattern, 0, NULL, &g) == 0) {
		for (i = 0; i < g.gl_pathc; i++) {
			const char *v = g.gl_pathv[i] + strlen("/usr/lib/postgresql/");
			long n = strtol(v, NULL, 10);

			if (n > best_v && access(g.gl_pathv[i], X_OK) == 0) {
				best_v = n;
				free(best);
				best = xstrdup(g.gl_pathv[i]);
			}
		}
		globfree(&g);
	}
	free(pattern);
	return best ? best : spawn_which(name);
}

struct pgrun {
	struct strv argv;
	struct strv env;
	struct spawn sp;
	int err_fd;		/* memfd with the child's stderr */
	char *dbname;
};

static int pgrun_init(struct pgrun *r, const char *prog, const char *url,
		      struct backup_io *io)
{
	char *path = pg_program(prog);
	const char *db;
	long i;

	memset(r, 0, sizeof(*r));
	r->err_fd = -1;
	spawn_init(&r->sp);
	if (!path) {
		io->error(io->ctx, "cannot find PostgreSQL's client programs (install postgresql-client)");
		return -1;
	}
	strv_push(&r->argv, path);
	free(path);
	strv_push(&r->env, "PATH=/usr/bin:/bin");
	strv_push(&r->env, "HOME=/");
	strv_push(&r->env, "PGCONNECT_TIMEOUT=10");
	strv_push(&r->env, "PGAPPNAME=berth");
	strv_push(&r->env, "PSQL_HISTORY=/dev/null");
	if (postgres_url_env(url, &r->env) < 0) {
		io->error(io->ctx, "the app's DATABASE_URL is not one berth can use");
		return -1;
	}
	i = strv_env_find(&r->env, "PGDATABASE");
	db = i >= 0 ? r->env.v[i] + strlen("PGDATABASE=") : "";
	r->dbname = xstrdup(db);
	r->err_fd = memfd_create("pg-stderr", MFD_CLOEXEC);
	if (r->err_fd < 0) {
		io->error(io->ctx, "cannot make a buffer for the client's errors");
		return -1;
	}
	r->sp.err = r->err_fd;
	/* The URL is the app's (its pusher may change it): root does not
	 * connect for it. */
	if (geteuid() == 0) {
		struct passwd *pw = getpwnam("nobody");

		if (!pw) {
			io->error(io->ctx, "no user 'nobody' to run the PostgreSQL client as");
			return -1;
		}
		r->sp.flags |= SPAWN_DROP_PRIV;
		r->sp.uid = pw->pw_uid;
		r->sp.gid = pw->pw_gid;
	}
	return 0;
}

static int pgrun_start(struct pgrun *r, struct backup_io *io)
{
	r->sp.argv = r->argv.v;
	r->sp.envp = r->env.v;
	r->sp.dir = "/";
	if (spawn_start(&r->sp) < 0) {
		io->error(io->ctx, error_last());
		return -1;
	}
	return 0;
}

/* The child's first error line (its stderr), for the user. */
static void pgrun_report(struct pgrun *r, int status, struct backup_io *io)
{
	char text[4096], how[64], *line = NULL, *p, *save = NULL;
	ssize_t n = pread(r->err_fd, text, sizeof(text) - 1, 0);

	text[n > 0 ? n : 0] = '\0';
	for (save = text, p = str_token(&save, "\n"); p; p = str_token(&save, "\n")) {
		if (!line)
			line = p;
		if (strstr(p, "error:") || strstr(p, "FATAL:")) {
			line = p;
			break;
		}
	}
	if (line) {
		io->error(io->ctx, line);
	} else {
		char *msg = xasprintf("%s %s", r->argv.v[0],
				      spawn_describe_status(status, how, sizeof(how)));

		io->error(io->ctx, msg);
		free(msg);
	}
}

static int pgrun_wait(struct pgrun *r)
{
	int status = -1;

	if (r->sp.pid > 0 && spawn_wait(&r->sp, &status) < 0)
		status = -1;
	r->sp.pid = 0;
	return status;
}

static void pgrun_release(struct pgrun *r)
{
	if (r->sp.pid > 0) {
		kill(r->sp.pid, SIGKILL);
		pgrun_wait(r);
	}
	if (r->err_fd >= 0)
		close(r->err_fd);
	strv_release(&r->argv);
	strv_release(&r->env);
	free(r->dbname);
}

/* ---- local files ---- */

struct fdio {
	int fd;
};

static ssize_t fd_read(void *ctx, void *buf, size_t len)
{
	struct fdio *f = ctx;
	ssize_t n;

	do
		n = read(f->fd, buf, len);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return error_setsys("read");
	return n;
}

static int fd_write(void *ctx, const void *buf, size_t len)
{
	struct fdio *f = ctx;

	return write_all(f->fd, buf, len);
}

/* ---- pg:backup ---- */

/* Bytes to or from somewhere other than io's own ends (a local file). */
struct stream {
	void *ctx;
	ssize_t (*read)(void *ctx, void *buf, size_t len);
	int (*write)(void *ctx, const void *buf, size_t len);
};

void backup_say_error(struct backup_io *io, const char *fmt, ...)
{
	va_list ap;
	char *msg;

	va_start(ap, fmt);
	msg = xvasprintf(fmt, ap);
	va_end(ap);
	if (io->error)
		io->error(io->ctx, msg);
	free(msg);
}

static int dump(const char *url, struct stream *to, struct backup_io *io)
{
	struct pgrun r;
	int out[2] = { -1, -1 }, status, ret = 1;
	char chunk[65536];
	ssize_t n;

	if (pgrun_init(&r, "pg_dump", url, io) < 0)
		goto out;
	if (pipe2(out, O_CLOEXEC) < 0) {
		backup_say_error(io, "cannot make a pipe: %s", strerror(errno));
		goto out;
	}
	strv_push(&r.argv, "--format=custom");
	strv_push(&r.argv, "--no-password");
	strv_pushf(&r.argv, "--dbname=%s", r.dbname);
	r.sp.out = out[1];
	if (pgrun_start(&r, io) < 0)
		goto out;
	close(out[1]);
	out[1] = -1;
	for (;;) {
		n = read(out[0], chunk, sizeof(chunk));
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		if (to->write(to->ctx, chunk, (size_t)n) < 0) {
			backup_say_error(io, "cannot write the dump: %s", error_last());
			goto out;
		}
	}
	status = pgrun_wait(&r);
	if (status != 0) {
		pgrun_report(&r, status, io);
		goto out;
	}
	ret = 0;
out:
	if (out[0] >= 0)
		close(out[0]);
	if (out[1] >= 0)
		close(out[1]);
	pgrun_release(&r);
	return ret;
}

/* A FILE is written under a temporary name and renamed when the dump is
 * whole: a failed backup never truncates an older one. */
static int cmd_backup(const char *url, const char *file, struct backup_io *io)
{
	struct stream to = { io->ctx, io->read, io->write };
	struct fdio f = { -1 };
	char *tmp = NULL;
	int ret = 1;

	if (file && strcmp(file, "-")) {
		tmp = xasprintf("%s.part%d", file, (int)getpid());
		f.fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
		if (f.fd < 0) {
			backup_say_error(io, "cannot create '%s': %s", file,
				  strerror(errno));
			goto out;
		}
		to.ctx = &f;
		to.write = fd_write;
	} else if (io->local && isatty(1)) {
		backup_say_error(io, "refusing to write a binary dump to a terminal: give a FILE or redirect stdout");
		goto out;
	}
	ret = dump(url, &to, io);
	if (f.fd >= 0) {
		if (ret == 0 && file_commit(f.fd, tmp, file) < 0) {
			backup_say_error(io, "%s", error_last());
			ret = 1;
		} else if (ret != 0) {
			close(f.fd);
		}
		f.fd = -1;
		if (ret != 0)
			unlink(tmp);
	}
out:
	free(tmp);
	return ret;
}

/* ---- pg:restore ---- */

/* Tables in the app's database (outside the catalogs), or -1. */
static long count_tables(const char *url, struct backup_io *io)
{
	struct pgrun r;
	int out[2] = { -1, -1 }, status;
	char text[64];
	ssize_t n, got = 0;
	long count = -1;

	if (pgrun_init(&r, "psql", url, io) < 0)
		goto out;
	if (pipe2(out, O_CLOEXEC) < 0) {
		backup_say_error(io, "cannot make a pipe: %s", strerror(errno));
		goto out;
	}
	strv_push(&r.argv, "-XAtq");
	strv_push(&r.argv, "--no-password");
	strv_push(&r.argv, "-v");
	strv_push(&r.argv, "ON_ERROR_STOP=1");
	strv_push(&r.argv, "-c");
	strv_push(&r.argv, "SELECT count(*) FROM pg_catalog.pg_tables WHERE "
		  "schemaname NOT IN ('pg_catalog', 'information_schema')");
	r.sp.out = out[1];
	if (pgrun_start(&r, io) < 0)
		goto out;
	close(out[1]);
	out[1] = -1;
	while ((n = read(out[0], text + got, sizeof(text) - 1 - (size_t)got)) > 0)
		got += n;
	text[got] = '\0';
	status = pgrun_wait(&r);
	if (status != 0) {
		pgrun_report(&r, status, io);
		goto out;
	}
	text[strcspn(text, "\n")] = '\0';
	count = parse_long(text, 1L << 40);
	if (count < 0)
		backup_say_error(io, "cannot count the tables of the database");
out:
	if (out[0] >= 0)
		close(out[0]);
	if (out[1] >= 0)
		close(out[1]);
	pgrun_release(&r);
	return count;
}

/* Read exactly len bytes unless the input ends first; bytes read. */
static ssize_t read_full(struct stream *from, char *buf, size_t len)
{
	size_t got = 0;
	ssize_t n;

	while (got < len) {
		n = from->read(from->ctx, buf + got, len - got);
		if (n < 0)
			return -1;
		if (n == 0)
			break;
		got += (size_t)n;
	}
	return (ssize_t)got;
}

static int restore(const char *url, int force, struct stream *from,
		   struct backup_io *io)
{
	struct pgrun r;
	int in[2] = { -1, -1 }, status, ret = 1;
	char chunk[65536];
	ssize_t n;
	long tables;
	void (*old_pipe)(int) = SIG_ERR;

	memset(&r, 0, sizeof(r));
	r.err_fd = -1;
	n = read_full(from, chunk, strlen(DUMP_MAGIC));
	if (n < 0) {
		backup_say_error(io, "cannot read the dump: %s", error_last());
		goto out;
	}
	if (n != (ssize_t)strlen(DUMP_MAGIC) ||
	    memcmp(chunk, DUMP_MAGIC, strlen(DUMP_MAGIC))) {
		backup_say_error(io, "not a pg_dump custom-format archive (make one with pg:backup)");
		goto out;
	}
	tables = count_tables(url, io);
	if (tables < 0)
		goto out;
	if (tables > 0 && !force) {
		backup_say_error(io, "the database has %ld table%s: add --force to replace what the dump holds",
			  tables, tables == 1 ? "" : "s");
		goto out;
	}
	if (pgrun_init(&r, "pg_restore", url, io) < 0)
		goto out;
	if (pipe2(in, O_CLOEXEC) < 0) {
		backup_say_error(io, "cannot make a pipe: %s", strerror(errno));
		goto out;
	}
	/* One transaction: a dump that fails half-way changes nothing. */
	strv_push(&r.argv, "--format=custom");
	strv_push(&r.argv, "--no-password");
	strv_push(&r.argv, "--no-owner");
	strv_push(&r.argv, "--no-acl");
	strv_push(&r.argv, "--single-transaction");
	strv_push(&r.argv, "--exit-on-error");
	if (force) {
		strv_push(&r.argv, "--clean");
		strv_push(&r.argv, "--if-exists");
	}
	strv_pushf(&r.argv, "--dbname=%s", r.dbname);
	r.sp.in = in[0];
	if (pgrun_start(&r, io) < 0)
		goto out;
	close(in[0]);
	in[0] = -1;
	old_pipe = signal(SIGPIPE, SIG_IGN);
	n = (ssize_t)strlen(DUMP_MAGIC);
	while (n > 0) {
		if (write_all(in[1], chunk, (size_t)n) < 0)
			break;	/* pg_restore stopped: its status says why */
		n = from->read(from->ctx, chunk, sizeof(chunk));
		if (n < 0) {
			backup_say_error(io, "cannot read the dump: %s", error_last());
			goto out;
		}
	}
	close(in[1]);
	in[1] = -1;
	status = pgrun_wait(&r);
	if (status != 0) {
		pgrun_report(&r, status, io);
		goto out;
	}
	ret = 0;
out:
	if (old_pipe != SIG_ERR)
		signal(SIGPIPE, old_pipe);
	if (in[0] >= 0)
		close(in[0]);
	if (in[1] >= 0)
		close(in[1]);
	pgrun_release(&r);
	return ret;
}

static int cmd_restore(const char *url, const char *file, int force,
		       struct backup_io *io)
{
	struct stream from = { io->ctx, io->read, io->write };
	struct fdio f = { -1 };
	int ret;

	if (strcmp(file, "-")) {
		f.fd = open(file, O_RDONLY | O_CLOEXEC);
		if (f.fd < 0) {
			backup_say_error(io, "cannot open '%s': %s", file,
				  strerror(errno));
			return 1;
		}
		from.ctx = &f;
		from.read = fd_read;
	}
	ret = restore(url, force, &from, io);
	if (f.fd >= 0)
		close(f.fd);
	return ret;
}

/* ---- pg:psql ---- */

static const char *take_terminal(void *arg)
{
	return ioctl(0, TIOCSCTTY, 0) < 0 ? "TIOCSCTTY" : NULL;
}

/* With fds (a local terminal, or an SSH session's): psql on them, and ^C
 * is psql's. */
static int psql_fds(struct pgrun *r, struct backup_io *io)
{
	void (*old_int)(int), (*old_quit)(int);
	int status;

	r->sp.in = io->in_fd;
	r->sp.out = io->out_fd;
	close(r->err_fd);
	r->err_fd = -1;
	r->sp.err = io->err_fd;
	if (io->tty_relay) {
		r->sp.flags |= SPAWN_NEW_SESSION;
		r->sp.child_setup = take_terminal;
		if (io->term)
			strv_pushf(&r->env, "TERM=%s", io->term);
	}
	old_int = signal(SIGINT, SIG_IGN);
	old_quit = signal(SIGQUIT, SIG_IGN);
	if (pgrun_start(r, io) < 0) {
		status = -1;
	} else {
		if (io->tty_relay && io->tty_relay(io->ctx) < 0)
			kill(r->sp.pid, SIGHUP);
		status = pgrun_wait(r);
	}
	signal(SIGINT, old_int);
	signal(SIGQUIT, old_quit);
	if (status < 0)
		return 1;
	return WIFEXITED(status) ? WEXITSTATUS(status) : 1;
}

/* Without (an SSH channel with no terminal): the whole input first, then
 * psql's output, errors included, back on the channel. */
static int psql_stream(struct pgrun *r, struct backup_io *io)
{
	int in = -1, out[2] = { -1, -1 }, status, ret = 1;
	char chunk[65536];
	ssize_t n;
	long total = 0;

	in = memfd_create("psql-input", MFD_CLOEXEC);
	if (in < 0 || pipe2(out, O_CLOEXEC) < 0) {
		backup_say_error(io, "cannot make a buffer: %s", strerror(errno));
		goto out;
	}
	while ((n = io->read(io->ctx, chunk, sizeof(chunk))) > 0) {
		total += n;
		if (total > PSQL_INPUT_MAX) {
			backup_say_error(io, "input too long for psql without a terminal (use ssh -t)");
			goto out;
		}
		if (write_all(in, chunk, (size_t)n) < 0) {
			backup_say_error(io, "%s", error_last());
			goto out;
		}
	}
	if (n < 0) {
		backup_say_error(io, "%s", error_last());
		goto out;
	}
	lseek(in, 0, SEEK_SET);
	r->sp.in = in;
	r->sp.out = out[1];
	r->sp.err = out[1];
	if (pgrun_start(r, io) < 0)
		goto out;
	close(out[1]);
	out[1] = -1;
	while ((n = read(out[0], chunk, sizeof(chunk))) > 0)
		if (io->write(io->ctx, chunk, (size_t)n) < 0)
			break;
	status = pgrun_wait(r);
	ret = WIFEXITED(status) ? WEXITSTATUS(status) : 1;
out:
	if (in >= 0)
		close(in);
	if (out[0] >= 0)
		close(out[0]);
	if (out[1] >= 0)
		close(out[1]);
	return ret;
}

static int cmd_psql(const char *url, struct backup_io *io)
{
	struct pgrun r;
	int ret = 1;

	if (pgrun_init(&r, "psql", url, io) < 0)
		goto out;
	strv_push(&r.argv, "--no-password");
	strv_pushf(&r.argv, "--dbname=%s", r.dbname);
	if (io->in_fd >= 0)
		ret = psql_fds(&r, io);
	else
		ret = psql_stream(&r, io);
out:
	pgrun_release(&r);
	return ret;
}

/* ---- the commands ---- */

int backup_read_all(struct backup_io *io, struct buf *out)
{
	char chunk[65536];
	ssize_t n;

	while ((n = io->read(io->ctx, chunk, sizeof(chunk))) > 0)
		if (buf_add(out, chunk, (size_t)n) < 0) {
			buf_reset(out);
			return ERR_INVALID;
		}
	return n < 0 ? -1 : 0;
}

int backup_is_command(const char *cmd)
{
	return !strcmp(cmd, "pg:backup") || !strcmp(cmd, "pg:restore") ||
	       !strcmp(cmd, "pg:psql");
}

int backup_command(const char *root, int argc, char **argv,
		   struct backup_io *io)
{
	const char *cmd = argv[0], *file = NULL;
	char *url = NULL;
	int force = 0, i, ret = 100;

	for (i = 2; i < argc; i++) {
		if (!strcmp(cmd, "pg:restore") && !strcmp(argv[i], "--force"))
			force = 1;
		else if (!file && strcmp(cmd, "pg:psql") &&
			 (argv[i][0] != '-' || !strcmp(argv[i], "-")))
			file = argv[i];
		else
			goto usage;
	}
	if (argc < 2 || (!strcmp(cmd, "pg:restore") && !file))
		goto usage;
	if (!app_name_valid(argv[1])) {
		backup_say_error(io, "invalid app name '%s'", argv[1]);
		return 1;
	}
	if (file && strcmp(file, "-") && !io->local) {
		backup_say_error(io, "%s over ssh reads stdin and writes stdout: use '-' (ssh HOST %s %s - ...)",
			  cmd, cmd, argv[1]);
		return 1;
	}
	ret = database_url(root, argv[1], io, &url);
	if (ret)
		return ret;
	if (!strcmp(cmd, "pg:backup"))
		ret = cmd_backup(url, file, io);
	else if (!strcmp(cmd, "pg:restore"))
		ret = cmd_restore(url, file, force, io);
	else
		ret = cmd_psql(url, io);
	free(url);
	return ret;
usage:
	if (!strcmp(cmd, "pg:backup"))
		backup_say_error(io, "usage: pg:backup APP [FILE|-]");
	else if (!strcmp(cmd, "pg:restore"))
		backup_say_error(io, "usage: pg:restore APP FILE|- [--force]");
	else
		backup_say_error(io, "usage: pg:psql APP");
	return 100;
}
