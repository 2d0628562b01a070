/*
 * Unit test for postgres.c against a real, throwaway embedded cluster in a
 * temporary state directory (initdb'ed by the code under test, run as an
 * unprivileged user), then against the same server as an "external" one
 * through a non-superuser CREATEROLE CREATEDB role.
 */
#include <errno.h>
#include <glob.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <libpq-fe.h>

#include "config.h"
#include "log.h"
#include "loop.h"
#include "postgres.h"
#include "reaper.h"
#include "spawn.h"
#include "util.h"

#include "tap.h"
#include "banned.h"

static void stop_loop(struct loop *l, void *arg)
{
	loop_stop(l);
}

/* Let timers fire (the restart back-off) and reap exits for ms. */
static void run_loop(struct loop *l, long ms)
{
	reaper_reap();
	loop_add_timer(l, ms, stop_loop, NULL);
	loop_run(l);
	reaper_reap();
}

static void on_ready(void *arg, int result)
{
	*(int *)arg = result == 0 ? 1 : -1;
}

/* postgres_when_ready() to its end, the loop turning: 1 ready now, 0
 * ready after a wait on the loop, -1 failed. */
static int make_ready(struct loop *l, struct postgres *pg)
{
	struct postgres_wait *w;
	int got = 0, r, i;

	r = postgres_when_ready(pg, on_ready, &got, &w);
	if (r != 0)
		return r;
	for (i = 0; i < 6000 && !got; i++)
		run_loop(l, 50);
	return got == 1 ? 0 : -1;
}

/* The postgres_*_async() calls to their end, the loop turning, as the
 * engine's callers see them: the result, error_last(), the output. */
struct answer {
	int done;
	int result;
	char *out;
	char err[512];
};

static struct loop *test_loop;

static void on_answer(void *arg, int result, const char *out)
{
	struct answer *a = arg;

	a->done = 1;
	a->result = result;
	a->out = out ? xstrdup(out) : NULL;
	snprintf(a->err, sizeof(a->err), "%s", result < 0 ? error_last() : "");
}

static int wait_answer(struct answer *a)
{
	int i;

	for (i = 0; i < 6000 && !a->done; i++)
		run_loop(test_loop, 50);
	if (!a->done)
		return error_set("no answer in 300 s");
	if (a->result < 0)
		error_set("%s", a->err);
	return a->result;
}

static int provision(struct postgres *pg, const char *app, char **url)
{
	struct answer a = { 0 };
	int r;

	postgres_provision_async(pg, app, on_answer, &a);
	r = wait_answer(&a);
	*url = r == 0 ? a.out : NULL;
	if (r != 0)
		free(a.out);
	return r;
}

static int drop(struct postgres *pg, const char *app)
{
	struct answer a = { 0 };
	int r;

	postgres_drop_async(pg, app, on_answer, &a);
	r = wait_answer(&a);
	free(a.out);
	return r;
}

static int rename_db(struct postgres *pg, const char *from, const char *to,
		     char **url)
{
	struct answer a = { 0 };
	int r;

	postgres_rename_async(pg, from, to, on_answer, &a);
	r = wait_answer(&a);
	*url = r == 0 ? a.out : NULL;
	if (r != 0)
		free(a.out);
	return r;
}

static int db_info(struct postgres *pg, const char *app, struct buf *out)
{
	struct answer a = { 0 };
	int r;

	postgres_info_async(pg, app, on_answer, &a);
	r = wait_answer(&a);
	if (r == 0)
		buf_addstr(out, a.out);
	free(a.out);
	return r;
}

static PGconn *connect_url(const char *url, const char *dbname)
{
	const char *keys[] = { "dbname", "dbname", "connect_timeout", NULL };
	const char *vals[] = { url, dbname, "5", NULL };

	if (!dbname) {
		keys[1] = "connect_timeout";
		vals[1] = "5";
		keys[2] = NULL;
		vals[2] = NULL;
	}
	return PQconnectdbParams(keys, vals, 1);
}

/* The one value of a one-row query, or "" (a static copy). */
static const char *query1(PGconn *conn, const char *sql)
{
	static char val[256];
	PGresult *res = PQexec(conn, sql);

	val[0] = '\0';
	if (PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1)
		snprintf(val, sizeof(val), "%s", PQgetvalue(res, 0, 0));
	else if (PQresultStatus(res) != PGRES_COMMAND_OK)
		printf("# %s: %s", sql, PQresultErrorMessage(res));
	PQclear(res);
	return val;
}

static int can_connect(const char *url, const char *dbname)
{
	PGconn *c = connect_url(url, dbname);
	int ok = PQstatus(c) == CONNECTION_OK;

	if (!ok)
		printf("# connect: %.*s\n",
		       (int)strcspn(PQerrorMessage(c), "\n"),
		       PQerrorMessage(c));
	PQfinish(c);
	return ok;
}

static int pid_alive(pid_t pid)
{
	int status;

	/* the test process is every postmaster's parent: reap or probe */
	if (waitpid(pid, &status, WNOHANG) == pid)
		return 0;
	return kill(pid, 0) == 0;
}

static int have_postgres(void)
{
	glob_t g;
	int found = glob("/usr/lib/postgresql/*/bin/initdb", 0, NULL, &g) == 0;
	char *p;

	if (found)
		globfree(&g);
	if (!found && (p = spawn_which("initdb")) != NULL) {
		free(p);
		found = 1;
	}
	return found;
}

static void test_idents(void)
{
	char *id, *id2;
	char long1[64], long2[64], l57[58];

	id = postgres_ident("a");
	ok(!strcmp(id, "berth_a"), "ident of 'a' is berth_a (%s)", id);
	free(id);
	id = postgres_ident("my-app-2");
	ok(!strcmp(id, "berth_my_app_2"), "dashes become underscores (%s)", id);
	free(id);
	id = postgres_ident("0day");
	ok(!strcmp(id, "berth_0day"), "leading digit kept (%s)", id);
	free(id);

	memset(l57, 'x', 57);
	l57[57] = '\0';
	id = postgres_ident(l57);
	ok(strlen(id) == 63 && !strncmp(id, "berth_xxx", 9),
	   "57-char name fits unhashed (%zu bytes)", strlen(id));
	free(id);

	memset(long1, 'y', 63);
	long1[63] = '\0';
	memcpy(long2, long1, sizeof(long1));
	long2[62] = 'z';
	id = postgres_ident(long1);
	id2 = postgres_ident(long2);
	ok(strlen(id) <= 63 && strlen(id2) <= 63,
	   "63-char names give identifiers within NAMEDATALEN");
	ok(!strncmp(id, "berth__", 7) && strcmp(id, id2) != 0,
	   "long names sharing a prefix get distinct hashed names (%s)", id);
	free(id);
	free(id2);
}

static void test_url_env(void)
{
	struct strv env = STRV_INIT;
	long i;

	ok(postgres_url_env("postgresql://u1:p%40ss@/db1?host=/x/y%20z&port=5433",
			    &env) == 0, "url_env parses a socket URL");
	i = strv_env_find(&env, "PGHOST");
	ok(i >= 0 && !strcmp(env.v[i], "PGHOST=/x/y z"), "PGHOST decoded");
	i = strv_env_find(&env, "PGPORT");
	ok(i >= 0 && !strcmp(env.v[i], "PGPORT=5433"), "PGPORT");
	i = strv_env_find(&env, "PGPASSWORD");
	ok(i >= 0 && !strcmp(env.v[i], "PGPASSWORD=p@ss"), "PGPASSWORD");
	i = strv_env_find(&env, "PGPASS");
	ok(i >= 0 && !strcmp(env.v[i], "PGPASS=p@ss"), "PGPASS for keter");
	i = strv_env_find(&env, "PGUSER");
	ok(i >= 0 && !strcmp(env.v[i], "PGUSER=u1"), "PGUSER");
	i = strv_env_find(&env, "PGDATABASE");
	ok(i >= 0 && !strcmp(env.v[i], "PGDATABASE=db1"), "PGDATABASE");
	strv_release(&env);
	ok(postgres_url_env("postgresql://u@h:99999999999999/d?bogus=1",
			    &env) == ERR_INVALID &&
	   !strncmp(error_last(), "bad DATABASE_URL", 16),
	   "bad URL refused: %s", error_last());
	strv_release(&env);
}

int main(void)
{
	char root[] = "/tmp/berth-unit-pg.XXXXXX";
	char root2[] = "/tmp/berth-unit-pg2.XXXXXX";
	struct config cfg, cfg2;
	struct loop *l = loop_new();
	struct postgres *pg = NULL, *pg2 = NULL;
	char *url1 = NULL, *url1b = NULL, *url2 = NULL, *url3 = NULL;
	char *exturl2 = NULL;
	char *longurl = NULL, *exturl = NULL;
	char longname[64];
	struct buf info = BUF_INIT;
	struct stat st;
	PGconn *c;
	pid_t pid, pid2;
	char *path;
	int r;

	test_loop = l;
	log_init(0, "unit-postgres");
	test_idents();
	test_url_env();
	if (!have_postgres()) {
		printf("# PostgreSQL is not installed: skipping the rest\n");
		return tap_done();
	}
	if (!mkdtemp(root) || chmod(root, 0755) < 0 || !mkdtemp(root2))
		return 1;
	config_init(&cfg, root);
	config_init(&cfg2, root2);

	ok(postgres_init(&pg, &cfg, l) == 0 && pg, "init without a cluster");
	ok(postgres_running(pg) == 0, "nothing started before first use");
	r = db_info(pg, "my-app", &info);
	ok(r == ERR_NOTFOUND, "info before any database: not found (%s)",
	   error_last());
	ok(drop(pg, "my-app") == 0, "drop of nothing succeeds");
	path = xasprintf("%s/postgres/data", root);
	ok(!path_exists(path), "neither made a cluster");
	free(path);

	r = make_ready(l, pg);
	ok(r == 0, "first use: the cluster made and started on the loop (%s)",
	   r < 0 ? error_last() : r ? "ready at once?" : "ok");
	r = make_ready(l, pg);
	ok(r == 1, "then it is ready at once (%d)", r);
	r = provision(pg, "my-app", &url1);
	ok(r == 0 && url1, "first provision makes the cluster: %s",
	   r ? error_last() : "ok");
	if (r)
		goto done;
	ok(postgres_running(pg) > 0, "postmaster running");
	path = xasprintf("%s/postgres/admin.conninfo", root);
	ok(stat(path, &st) == 0 && (st.st_mode & 077) == 0,
	   "admin.conninfo is private");
	free(path);
	path = xasprintf("%s/postgres/apps/my-app.url", root);
	ok(stat(path, &st) == 0 && (st.st_mode & 077) == 0,
	   "the app's URL is kept, private");
	free(path);
	ok(!strncmp(url1, "postgresql://berth_my_app:", 26) &&
	   strstr(url1, "@/berth_my_app?host=/tmp/berth-unit-pg."),
	   "URL names role, database and socket directory");

	c = connect_url(url1, NULL);
	ok(PQstatus(c) == CONNECTION_OK, "app connects with its URL");
	ok(!strcmp(query1(c, "SELECT current_user"), "berth_my_app"),
	   "as its own role");
	ok(!strcmp(query1(c, "SELECT current_database()"), "berth_my_app"),
	   "to its own database");
	query1(c, "CREATE TABLE hits (n int)");
	query1(c, "INSERT INTO hits VALUES (1), (2)");
	ok(!strcmp(query1(c, "SELECT count(*) FROM hits"), "2"),
	   "app owns its database: creates and fills a table");
	ok(!strcmp(query1(c, "SELECT rolsuper::text FROM pg_roles "
			  "WHERE rolname = current_user"), "false"),
	   "app role is no superuser");
	PQfinish(c);

	r = provision(pg, "my-app", &url1b);
	ok(r == 0 && url1b && !strcmp(url1, url1b),
	   "second provision gives the same URL");
	c = connect_url(url1b, NULL);
	ok(!strcmp(query1(c, "SELECT count(*) FROM hits"), "2"),
	   "and the same database, rows kept");
	PQfinish(c);

	r = provision(pg, "other", &url2);
	ok(r == 0 && url2 && strcmp(url1, url2), "second app provisioned");
	ok(url2 && can_connect(url2, NULL), "second app connects");
	ok(url2 && !can_connect(url2, "berth_my_app"),
	   "second app's role cannot connect to the first app's database");
	ok(!can_connect(url1, "berth_other"),
	   "first app's role cannot connect to the second's");
	ok(!can_connect(url1, "postgres"),
	   "app roles cannot connect to the postgres database");

	memset(longname, 'q', 63);
	longname[63] = '\0';
	longname[10] = '-';
	r = provision(pg, longname, &longurl);
	ok(r == 0 && longurl && can_connect(longurl, NULL),
	   "63-character app name provisions and connects");
	ok(provision(pg, "Bad;Name", &url3) == ERR_INVALID &&
	   !url3, "invalid app name refused: %s", error_last());
	ok(provision(pg, "", &url3) == ERR_INVALID,
	   "empty app name refused");

	/* rename: the app's own session is closed, anyone else's refuses */
	{
		struct buf ci = BUF_INIT;
		char *adm = xasprintf("%s/postgres/admin.conninfo", root);
		char *newurl = NULL, *p1, *p2;
		PGconn *app, *other;

		app = connect_url(url2, NULL);
		query1(app, "CREATE TABLE t (n int)");
		query1(app, "INSERT INTO t VALUES (7)");
		read_file(&ci, adm, 0);
		other = connect_url(ci.data, "berth_other");
		ok(PQstatus(other) == CONNECTION_OK, "a superuser session "
		   "in the app's database");
		r = rename_db(pg, "other", "renamed", &newurl);
		ok(r == ERR_BUSY && !newurl &&
		   strstr(error_last(), "is in use by "),
		   "someone else's session refuses it: %s", error_last());
		ok(can_connect(url2, NULL), "and the app still logs in");
		PQfinish(other);
		r = rename_db(pg, "other", "my-app", &newurl);
		ok(r == ERR_EXISTS, "a taken name refuses it: %s",
		   error_last());
		r = rename_db(pg, "nosuch", "x", &newurl);
		ok(r == ERR_NOTFOUND, "no database: %s", error_last());
		r = rename_db(pg, "other", "renamed", &newurl);
		ok(r == 0 && newurl, "rename with the app connected: %s",
		   r ? error_last() : newurl);
		ok(!strcmp(query1(app, "SELECT 1"), ""),
		   "the app's old session was closed");
		PQfinish(app);
		ok(!can_connect(url2, NULL), "the old URL works no more");
		app = connect_url(newurl ? newurl : "", NULL);
		ok(!strcmp(query1(app, "SELECT current_user || ' ' || "
				  "current_database() || ' ' || "
				  "(SELECT n FROM t)"),
			   "berth_renamed berth_renamed 7"),
		   "the new URL reaches the rows, as the renamed role");
		PQfinish(app);
		p1 = xasprintf("%s/postgres/apps/other.url", root);
		p2 = xasprintf("%s/postgres/apps/renamed.url", root);
		ok(!path_exists(p1) && path_exists(p2), "the URL file moved");
		free(p1);
		free(p2);
		ok(!can_connect(newurl ? newurl : "", "berth_my_app"),
		   "the renamed role still reaches no other database");
		buf_release(&ci);
		free(adm);
		free(newurl);
	}

	buf_reset(&info);
	r = db_info(pg, "my-app", &info);
	ok(r == 0 && !strncmp(info.data ? info.data : "",
			      "database berth_my_app, ", 23) &&
	   (strstr(info.data, "kB") || strstr(info.data, "MB")),
	   "info: %.*s", (int)strcspn(r ? error_last() : info.data, "\n"),
	   r ? error_last() : info.data);

	/* supervision: a crashed postmaster comes back by itself */
	pid = (pid_t)postgres_running(pg);
	kill(pid, SIGKILL);
	for (r = 0; r < 100 && postgres_running(pg) == pid; r++)
		run_loop(l, 50);
	ok(postgres_running(pg) != pid, "engine noticed the crash");
	for (r = 0; r < 100 && !postgres_running(pg); r++)
		run_loop(l, 100);
	pid2 = (pid_t)postgres_running(pg);
	ok(pid2 > 0 && pid2 != pid, "restarted after the back-off");
	free(url1b);
	url1b = NULL;
	/* a start can fail while the old backends let go of shared memory;
	 * the back-off retries it */
	for (r = 0; r < 40; r++) {
		if (provision(pg, "my-app", &url1b) == 0)
			break;
		printf("# retry: %s\n", error_last());
		run_loop(l, 500);
	}
	ok(url1b && !strcmp(url1, url1b), "provision after the crash");
	c = connect_url(url1, NULL);
	ok(!strcmp(query1(c, "SELECT count(*) FROM hits"), "2"),
	   "rows survived the crash");
	PQfinish(c);

	/* stopped behind our back, and the loop has not run since: the
	 * next call notices, starts it again and waits for it */
	pid = (pid_t)postgres_running(pg);
	kill(pid, SIGINT);
	for (r = 0; r < 200; r++) {
		char p[64], line[256] = "";
		FILE *f;

		snprintf(p, sizeof(p), "/proc/%d/stat", (int)pid);
		f = fopen(p, "r");
		if (f) {
			if (!fgets(line, sizeof(line), f))
				line[0] = '\0';
			fclose(f);
		}
		if (!f || strstr(line, ") Z "))
			break;
		nanosleep(&(struct timespec){ 0, 50000000 }, NULL);
	}
	free(url1b);
	url1b = NULL;
	r = provision(pg, "my-app", &url1b);
	ok(r == 0 && postgres_running(pg) != pid,
	   "provision right after the postmaster stopped: %s",
	   r ? error_last() : "ok");

	/* a postmaster left over from a killed engine is stopped, not
	 * doubled: drop the struct without shutdown and start again */
	pid = (pid_t)postgres_running(pg);
	postgres_free(pg);
	pg = NULL;
	ok(pid_alive(pid), "old postmaster still running");
	r = postgres_init(&pg, &cfg, l);
	ok(r == 0 && postgres_running(pg) > 0 &&
	   postgres_running(pg) != pid, "init starts its own postmaster");
	ok(!pid_alive(pid), "after stopping the stale one");
	free(url1b);
	url1b = NULL;
	ok(provision(pg, "my-app", &url1b) == 0 && url1b &&
	   !strcmp(url1, url1b), "same URL from the new engine");
	c = connect_url(url1, NULL);
	ok(!strcmp(query1(c, "SELECT count(*) FROM hits"), "2"),
	   "rows still there");
	/* drop must go through with the app still connected */
	r = drop(pg, "my-app");
	ok(r == 0, "drop with the app connected: %s", r ? error_last() : "ok");
	PQfinish(c);
	ok(!can_connect(url1, NULL), "dropped app's URL no longer works");
	buf_reset(&info);
	ok(db_info(pg, "my-app", &info) == ERR_NOTFOUND,
	   "info after drop: %s", error_last());
	ok(drop(pg, "my-app") == 0, "drop twice is fine");
	free(url3);
	url3 = NULL;
	ok(provision(pg, "my-app", &url3) == 0 && url3 &&
	   strcmp(url3, url1), "provision after drop: a new password");
	c = connect_url(url3, NULL);
	ok(PQstatus(c) == CONNECTION_OK &&
	   !strcmp(query1(c, "SELECT count(*) FROM pg_class "
			  "WHERE relname = 'hits'"), "0"),
	   "and a fresh, empty database");
	PQfinish(c);

	/* external mode: the same server, through a mere CREATEROLE role */
	{
		struct buf ci = BUF_INIT;
		char *adm = xasprintf("%s/postgres/admin.conninfo", root);
		char *run = xasprintf("%s/postgres/run", root);
		PGconn *a;

		read_file(&ci, adm, 0);
		a = PQconnectdb(ci.data);
		query1(a, "CREATE ROLE berth_admin_t LOGIN CREATEROLE "
		       "CREATEDB PASSWORD 'sekrit'");
		query1(a, "GRANT CONNECT ON DATABASE postgres "
		       "TO berth_admin_t");
		PQfinish(a);
		cfg2.postgres = xasprintf("host=%s port=5432 user=berth_admin_t "
					  "password=sekrit dbname=postgres",
					  run);
		ok(postgres_init(&pg2, &cfg2, l) == 0 && pg2,
		   "init with an external server");
		r = provision(pg2, "ext-app", &exturl);
		ok(r == 0 && exturl && can_connect(exturl, NULL),
		   "external provision: %s", r ? error_last() : exturl);
		buf_reset(&info);
		ok(db_info(pg2, "ext-app", &info) == 0,
		   "external info: %s", info.data ? info.data : error_last());
		{
			char *renamed = NULL;

			r = rename_db(pg2, "ext-app", "ext-new", &renamed);
			ok(r == 0 && renamed && can_connect(renamed, NULL) &&
			   !can_connect(exturl, NULL),
			   "external rename by a CREATEROLE role: %s",
			   r ? error_last() : renamed);
			r = rename_db(pg2, "ext-new", "ext-app", &exturl2);
			ok(r == 0 && exturl2 && can_connect(exturl2, NULL),
			   "and back: %s", r ? error_last() : "ok");
			free(renamed);
			free(exturl2);
			exturl2 = NULL;
		}
		r = drop(pg2, "ext-app");
		ok(r == 0 && !can_connect(exturl, NULL), "external drop: %s",
		   r ? error_last() : "ok");
		postgres_free(pg2);
		pg2 = NULL;
		buf_release(&ci);
		free(adm);
		free(run);
	}

	/* an unreachable server: one clear line, quickly */
	{
		int64_t t0 = now_ms();

		free(cfg2.postgres);
		cfg2.postgres = xstrdup("host=/nonexistent port=1 user=x");
		ok(postgres_init(&pg2, &cfg2, l) == 0, "init does not connect");
		free(url3);
		url3 = NULL;
		r = provision(pg2, "x", &url3);
		ok(r < 0 && !strncmp(error_last(), "cannot reach PostgreSQL: ",
				     25) && !strchr(error_last(), '\n'),
		   "down server: %s", error_last());
		ok(now_ms() - t0 < 6000, "and no hang");
		postgres_free(pg2);
		pg2 = NULL;
		free(cfg2.postgres);
		cfg2.postgres = xstrdup("host='unclosed");
		ok(postgres_init(&pg2, &cfg2, l) == ERR_INVALID && !pg2,
		   "bad conninfo refused: %s", error_last());
	}

	/* as root the cluster's user must reach it: a private parent is
	 * refused up front, before initdb fails in an obscure way */
	if (geteuid() == 0) {
		char priv[] = "/tmp/berth-unit-pg3.XXXXXX";
		struct config cfg3;
		struct postgres *pg3 = NULL;
		char *root3;

		if (mkdtemp(priv)) {
			root3 = xasprintf("%s/root", priv);
			mkdir(root3, 0755);
			config_init(&cfg3, root3);
			free(url3);
			url3 = NULL;
			r = postgres_init(&pg3, &cfg3, l) == 0 ?
				provision(pg3, "x", &url3) : 0;
			ok(r < 0 && strstr(error_last(), "is not searchable by"),
			   "private state directory refused: %s",
			   error_last());
			postgres_free(pg3);
			config_release(&cfg3);
			free(root3);
			rm_rf(priv);
		}
	}

	pid = (pid_t)postgres_running(pg);
	postgres_shutdown(pg);
	ok(postgres_running(pg) == 0 && !pid_alive(pid), "shutdown stops it");
	path = xasprintf("%s/postgres/run/.s.PGSQL.5432", root);
	ok(!path_exists(path), "and removes its socket");
	free(path);
done:
	postgres_shutdown(pg);
	postgres_free(pg);
	postgres_free(pg2);
	free(url1);
	free(url1b);
	free(url2);
	free(url3);
	free(longurl);
	free(exturl);
	buf_release(&info);
	config_release(&cfg);
	config_release(&cfg2);
	loop_free(l);
	if (!tap_failed) {
		rm_rf(root);
		rm_rf(root2);
	} else {
		printf("# kept %s\n", root);
	}
	return tap_done();
}
