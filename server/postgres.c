/*
 * postgres: see postgres.h and docs/postgres.md.
 *
 * Layout of the embedded cluster (ROOT/postgres, owned by the engine's
 * user, 0755):
 *   data/            the cluster, owned by the database user, 0700
 *   run/             unix socket and its lock file, owned by the database
 *                    user, 0755 so that apps running as anyone can connect
 *   admin.conninfo   superuser conninfo with its password (0600)
 *   apps/NAME.url    each app's DATABASE_URL (0600), so that provision
 *                    hands out the same password every time
 *   postgres.log     the postmaster's stdout and stderr
 *
 * PostgreSQL refuses to run as root, so as root the cluster belongs to a
 * system user "berth" (made with useradd when missing).  The engine starts
 * the postmaster itself, watches it with the reaper and restarts it with a
 * back-off.  A postmaster left over from an engine that was killed (found
 * through data/postmaster.pid) is stopped with a fast shutdown before ours
 * starts: we never adopt a process we cannot reap or supervise.
 */
#include "postgres.h"

#include <errno.h>
#include <fcntl.h>
#include <glob.h>
#include <libgen.h>
#include <limits.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <libpq-fe.h>

#include "config.h"
#include "log.h"
#include "loop.h"
#include "pgresolve.h"
#include "reaper.h"
#include "runner.h"
#include "spawn.h"
#include "supervise.h"
#include "banned.h"

#define PG_USER "berth"
#define PG_SUPERUSER "postgres"
#define PG_PORT "5432"
#define PG_CONNECT_TIMEOUT "5"
#define PG_STATEMENT_TIMEOUT "SET statement_timeout = '60s'"
#define PG_READY_MS 30000	/* start-up, crash recovery included */
#define PG_STOP_MS 30000	/* fast shutdown, then immediate */
#define PG_BACKOFF_MIN 1000
#define PG_BACKOFF_MAX 30000
#define PG_STABLE_MS 30000	/* up this long: the back-off starts over */
#define PG_LOG_MAX (10L * 1024 * 1024)
#define PG_INITDB_MS 300000
#define IDENT_MAX 63		/* NAMEDATALEN - 1 */
#define SUN_PATH_MAX 107
#define CHILD_PATH "PATH=/usr/local/bin:/usr/bin:/bin"

struct postgres {
	struct loop *loop;
	char *external;		/* admin conninfo of an outside server */
	/* embedded only */
	char *dir;		/* ROOT/postgres */
	char *data;
	char *run;
	char *apps;
	char *conninfo_path;
	char *log_path;
	char *bindir;		/* found on first use */
	char *bindir_conf;	/* postgres_bindir, or NULL */
	char *password;		/* superuser's, read on first use */
	int drop_priv;
	uid_t uid;
	gid_t gid;
	pid_t pid;		/* our postmaster, 0 if none */
	int accepting;		/* and it answered since it started */
	int exit_status;	/* how the last one ended */
	struct supervisor sup;	/* restarts it */
	struct size_req *sizes;	/* postgres_size_async() in flight */
	struct postgres_op *ops;	/* postgres_*_async() in flight */
	/* postgres_when_ready(): who waits, and what runs for them */
	struct postgres_wait *waits;
	int preparing;		/* initdb runs, or the start is polled */
	struct runner initdb;
	struct runner useradd;	/* PG_USER made on first use, as root */
	struct buf useradd_out;
	int stopping;		/* preparing_stop(): nothing starts now */
	char *initdb_prog, *initdb_tmp, *initdb_pwfile;
	uint64_t ready_timer;
	int64_t ready_deadline;
	/* the poll's connection attempt: non-blocking, on the loop */
	PGconn *probe;
	int probe_fd;
	uint64_t probe_timer;
};

struct postgres_wait {
	struct postgres_wait *next;
	postgres_ready_fn fn;
	void *arg;
};

static int start_postmaster(struct postgres *pg);

/* The first line of a libpq message, which ends in "\n" and may go on
 * with DETAIL/HINT lines.  Into a static buffer: used at once. */
static const char *first_line(const char *msg)
{
	static char line[512];
	size_t n;

	if (!msg)
		msg = "";
	n = strcspn(msg, "\n");
	if (n >= sizeof(line))
		n = sizeof(line) - 1;
	memcpy(line, msg, n);
	line[n] = '\0';
	return line;
}

static int pq_error(PGconn *conn, PGresult *res)
{
	const char *msg = res ? PQresultErrorMessage(res) : NULL;

	if (!msg || !*msg)
		msg = PQerrorMessage(conn);
	return error_set("postgres: %s", first_line(msg));
}

static int random_hex(char *out, size_t bytes)
{
	unsigned char raw[64];
	size_t got = 0, i;

	if (bytes > sizeof(raw))
		return error_set("too many random bytes");
	while (got < bytes) {
		ssize_t n = getrandom(raw + got, bytes - got, 0);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return error_setsys("getrandom");
		got += (size_t)n;
	}
	for (i = 0; i < bytes; i++)
		snprintf(out + 2 * i, 3, "%02x", raw[i]);
	return 0;
}

char *postgres_ident(const char *app)
{
	char *id;
	size_t i, n = strlen(app);

	if (6 + n <= IDENT_MAX) {
		id = xasprintf("berth_%s", app);
		for (i = 6; id[i]; i++)
			if (id[i] == '-')
				id[i] = '_';
		return id;
	}
	/*
	 * PostgreSQL cuts names at 63 bytes, which would fold long app names
	 * that share a prefix into one role.  These get "berth__", a hash
	 * of the whole name and a prefix of it: a short name never has '_'
	 * after "berth_", so the two forms cannot meet.
	 */
	{
		uint64_t h = 0xcbf29ce484222325ULL;	/* FNV-1a 64 */
		char prefix[IDENT_MAX + 1];

		for (i = 0; i < n; i++) {
			h ^= (unsigned char)app[i];
			h *= 0x100000001b3ULL;
		}
		snprintf(prefix, sizeof(prefix), "%.*s",
			 IDENT_MAX - 7 - 16 - 1, app);
		id = xasprintf("berth__%016llx_%s", (unsigned long long)h,
			       prefix);
		for (i = 7; id[i]; i++)
			if (id[i] == '-')
				id[i] = '_';
		return id;
	}
}

/* Percent-encode a socket directory for a URL query value. */
static void url_add_encoded(struct buf *b, const char *s)
{
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;

		if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
		    (c >= '0' && c <= '9') || strchr("/-._~", c))
			buf_add(b, s, 1);
		else
			buf_addf(b, "%%%02X", c);
	}
}

/* DATABASE_URL for one app; host is a socket directory or a host name. */
static char *build_url(const char *host, const char *port, const char *user,
		       const char *password, const char *db, int ssl)
{
	struct buf b = BUF_INIT;

	buf_addf(&b, "postgresql://%s:%s@", user, password);
	if (host && host[0] == '/') {
		buf_addf(&b, "/%s?host=", db);
		url_add_encoded(&b, host);
		buf_addf(&b, "&port=%s", port ? port : PG_PORT);
	} else {
		if (!host || !*host)
			host = "localhost";
		if (strchr(host, ':'))
			buf_addf(&b, "[%s]", host);
		else
			buf_addstr(&b, host);
		buf_addf(&b, ":%s/%s", port && *port ? port : PG_PORT, db);
		if (ssl)
			buf_addstr(&b, "?sslmode=require");
	}
	return buf_detach(&b);
}

int postgres_url_env(const char *url, struct strv *env)
{
	static const struct {
		const char *keyword;
		const char *var;
	} map[] = {
		{ "host", "PGHOST" },
		{ "port", "PGPORT" },
		{ "user", "PGUSER" },
		{ "password", "PGPASSWORD" },
		{ "password", "PGPASS" },	/* Keter's name for it */
		{ "dbname", "PGDATABASE" },
	};
	PQconninfoOption *opts, *o;
	char *err = NULL;
	size_t i;

	opts = PQconninfoParse(url, &err);
	if (!opts) {
		error_set("bad DATABASE_URL: %s",
			  err ? first_line(err) : "out of memory");
		PQfreemem(err);
		return ERR_INVALID;
	}
	for (i = 0; i < ARRAY_SIZE(map); i++)
		for (o = opts; o->keyword; o++)
			if (!strcmp(o->keyword, map[i].keyword) && o->val &&
			    *o->val)
				strv_env_set(env, map[i].var, o->val);
	PQconninfoFree(opts);
	return 0;
}

/* The value of one keyword of a conninfo string or URL, or NULL. */
static char *conninfo_get(const char *conninfo, const char *keyword)
{
	PQconninfoOption *opts, *o;
	char *err = NULL, *val = NULL;

	opts = PQconninfoParse(conninfo, &err);
	PQfreemem(err);
	if (!opts)
		return NULL;
	for (o = opts; o->keyword; o++)
		if (!strcmp(o->keyword, keyword) && o->val && *o->val)
			val = xstrdup(o->val);
	PQconninfoFree(opts);
	return val;
}

/* A conninfo value in single quotes, for admin.conninfo. */
static void conninfo_add(struct buf *b, const char *key, const char *val)
{
	buf_addf(b, "%s%s='", b->len ? " " : "", key);
	for (; *val; val++) {
		if (*val == '\'' || *val == '\\')
			buf_add(b, "\\", 1);
		buf_add(b, val, 1);
	}
	buf_add(b, "'", 1);
}

/* --- the embedded cluster ------------------------------------------- */

static long version_of(const char *bindir)
{
	/* /usr/lib/postgresql/15/bin -> 15 */
	const char *end = bindir + strlen(bindir) - strlen("/bin");
	const char *p = end;

	while (p > bindir && p[-1] != '/')
		p--;
	return strtol(p, NULL, 10);
}

static int find_bindir(struct postgres *pg)
{
	glob_t g;
	size_t i;
	long best = -1;
	char *found = NULL;
	struct buf v = BUF_INIT;
	char *vfile;

	if (pg->bindir)
		return 0;
	if (pg->bindir_conf) {
		char *postgres = xasprintf("%s/postgres", pg->bindir_conf);
		char *initdb = xasprintf("%s/initdb", pg->bindir_conf);
		int ok = access(postgres, X_OK) == 0 &&
			access(initdb, X_OK) == 0;

		free(postgres);
		free(initdb);
		if (!ok)
			return error_set("cannot find PostgreSQL's 'initdb' and "
					 "'postgres' in postgres_bindir '%s'",
					 pg->bindir_conf);
		pg->bindir = xstrdup(pg->bindir_conf);
		return 0;
	}
	/* a cluster runs only under its own major version: prefer it when
	 * several are installed */
	vfile = xasprintf("%s/PG_VERSION", pg->data);
	if (read_file(&v, vfile, 64) == 0) {
		long major;

		v.data[strcspn(v.data, "\n")] = '\0';
		major = parse_long(v.data, 1000);
		if (major > 0) {
			char *dir = xasprintf("/usr/lib/postgresql/%ld/bin",
					      major);
			char *bin = xasprintf("%s/postgres", dir);

			if (access(bin, X_OK) == 0)
				found = dir;
			else
				free(dir);
			free(bin);
		}
	}
	buf_release(&v);
	free(vfile);
	if (found) {
		pg->bindir = found;
		return 0;
	}
	if (glob("/usr/lib/postgresql/*/bin", GLOB_ONLYDIR, NULL, &g) == 0) {
		for (i = 0; i < g.gl_pathc; i++) {
			char *postgres = xasprintf("%s/postgres", g.gl_pathv[i]);
			char *initdb = xasprintf("%s/initdb", g.gl_pathv[i]);
			long ver = version_of(g.gl_pathv[i]);

			if (access(postgres, X_OK) == 0 &&
			    access(initdb, X_OK) == 0 && ver > best) {
				best = ver;
				free(found);
				found = xstrdup(g.gl_pathv[i]);
			}
			free(postgres);
			free(initdb);
		}
		globfree(&g);
	}
	if (!found) {
		char *initdb = spawn_which("initdb");
		char *postgres = spawn_which("postgres");

		if (initdb && postgres)
			found = xstrdup(dirname(postgres));
		free(initdb);
		free(postgres);
	}
	if (!found)
		return error_set("cannot find PostgreSQL's 'initdb' and "
				 "'postgres' (install postgresql)");
	pg->bindir = found;
	return 0;
}

/* Who runs the cluster: the current user, or "berth" when we are root. */
static int find_user(struct postgres *pg)
{
	struct passwd *pw;
	struct buf out = BUF_INIT;
	int ret;

	if (geteuid() != 0) {
		pg->uid = geteuid();
		pg->gid = getegid();
		pg->drop_priv = 0;
		return 0;
	}
	pw = getpwnam(PG_USER);
	if (!pw) {
		char *argv[] = { "useradd", "--system", "--no-create-home",
				 "--shell", "/usr/sbin/nologin", PG_USER, NULL };
		char *envp[] = { CHILD_PATH ":/usr/sbin:/sbin", NULL };

		ret = runner_capture(argv, envp, NULL, &out, 4096, 30000);
		if (ret != 0) {
			if (ret > 0)
				error_set("cannot create user '%s': %s",
					  PG_USER, first_line(out.data));
			buf_release(&out);
			return -1;
		}
		buf_release(&out);
		log_info("created system user '%s' for PostgreSQL", PG_USER);
		pw = getpwnam(PG_USER);
		if (!pw)
			return error_set("cannot find user '%s'", PG_USER);
	}
	if (pw->pw_uid == 0)
		return error_set("user '%s' must not be root", PG_USER);
	pg->uid = pw->pw_uid;
	pg->gid = pw->pw_gid;
	pg->drop_priv = 1;
	return 0;
}

/* Can uid/gid walk down to path?  PostgreSQL chdir()s into its data. */
static int check_searchable(const struct postgres *pg, const char *path)
{
	char *copy = xstrdup(path);
	char *p = copy;
	int ret = 0;

	if (!pg->drop_priv)
		goto out;
	for (;;) {
		struct stat st;
		char *slash = strchr(p + 1, '/');

		if (slash)
			*slash = '\0';
		if (stat(copy[0] ? copy : "/", &st) < 0) {
			ret = error_setsys("cannot stat '%s'", copy);
			goto out;
		}
		if (!(st.st_uid == pg->uid ? st.st_mode & S_IXUSR :
		      st.st_gid == pg->gid ? st.st_mode & S_IXGRP :
		      st.st_mode & S_IXOTH)) {
			ret = error_set("'%s' is not searchable by user '%s': "
					"put the state directory elsewhere "
					"(e.g. /var/lib/berth)", copy, PG_USER);
			goto out;
		}
		if (!slash)
			break;
		*slash = '/';
		p = slash;
	}
out:
	free(copy);
	return ret;
}

static int make_dir(const struct postgres *pg, const char *path, mode_t mode,
		    int give)
{
	if (mkdir(path, mode) < 0 && errno != EEXIST)
		return error_setsys("cannot create '%s'", path);
	if (chmod(path, mode) < 0)
		return error_setsys("cannot chmod '%s'", path);
	if (give && pg->drop_priv && chown(path, pg->uid, pg->gid) < 0)
		return error_setsys("cannot chown '%s'", path);
	return 0;
}

static int cluster_exists(const struct postgres *pg)
{
	char *v = xasprintf("%s/PG_VERSION", pg->data);
	int ret = path_exists(v);

	free(v);
	return ret;
}

/* Run a PostgreSQL tool as the cluster's user; output goes to the log. */
/* A PostgreSQL program, as the database user, in its own process group
 * (a ^C meant for the engine must not reach it first), output to logfd. */
static void pg_spawn_prepare(struct postgres *pg, struct spawn *s,
			     char *const *argv, char *const *envp, int logfd)
{
	spawn_init(s);
	s->argv = argv;
	s->envp = envp;
	s->dir = pg->dir;
	s->out = logfd;
	s->err = logfd;
	s->flags = SPAWN_NEW_PGRP | (pg->drop_priv ? SPAWN_DROP_PRIV : 0);
	s->uid = pg->uid;
	s->gid = pg->gid;
}

static int write_admin_conninfo(struct postgres *pg)
{
	struct buf b = BUF_INIT;
	int ret;

	conninfo_add(&b, "host", pg->run);
	conninfo_add(&b, "port", PG_PORT);
	conninfo_add(&b, "user", PG_SUPERUSER);
	conninfo_add(&b, "password", pg->password);
	conninfo_add(&b, "dbname", "postgres");
	buf_add(&b, "\n", 1);
	ret = write_file_atomic(pg->conninfo_path, b.data, b.len, 0600);
	buf_release(&b);
	return ret;
}

/*
 * initdb into data.new, then rename: a cluster that exists is a whole
 * one.  The superuser's password reaches initdb through a file that only
 * the database user can read and that is gone when initdb is.  initdb
 * runs in a child the loop watches (runner_start()); initdb_done() goes
 * on.
 */
static void initdb_done(struct runner *r, int result, void *arg);

static void initdb_cleanup(struct postgres *pg, int failed)
{
	if (pg->initdb_pwfile)
		unlink(pg->initdb_pwfile);
	if (failed && pg->initdb_tmp)
		rm_rf(pg->initdb_tmp);
	FREE_AND_NULL(pg->initdb_prog);
	FREE_AND_NULL(pg->initdb_tmp);
	FREE_AND_NULL(pg->initdb_pwfile);
}

static int create_cluster_start(struct postgres *pg)
{
	char *envp[] = { CHILD_PATH, "LC_ALL=C", "LANG=C", NULL };
	char password[65];
	char *pwopt = NULL;
	char *argv[] = { NULL, "-D", NULL, "-U", PG_SUPERUSER, NULL,
			 "-A", "scram-sha-256", "-E", "UTF8", "--locale=C",
			 "--no-instructions", NULL };
	int fd = -1, logfd = -1, ret = -1;

	pg->initdb_tmp = xasprintf("%s.new", pg->data);
	pg->initdb_pwfile = xasprintf("%s/initdb.pw", pg->dir);
	pg->initdb_prog = xasprintf("%s/initdb", pg->bindir);
	pwopt = xasprintf("--pwfile=%s", pg->initdb_pwfile);
	argv[0] = pg->initdb_prog;
	argv[2] = pg->initdb_tmp;
	argv[5] = pwopt;
	if (random_hex(password, 32) < 0)
		goto out;
	free(pg->password);
	pg->password = xstrdup(password);
	if (write_admin_conninfo(pg) < 0)
		goto out;
	if (rm_rf(pg->initdb_tmp) < 0 ||
	    make_dir(pg, pg->initdb_tmp, 0700, 1) < 0)
		goto out;
	unlink(pg->initdb_pwfile);
	fd = open(pg->initdb_pwfile, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC,
		  0600);
	if (fd < 0) {
		error_setsys("cannot create '%s'", pg->initdb_pwfile);
		goto out;
	}
	if ((pg->drop_priv && fchown(fd, pg->uid, pg->gid) < 0) ||
	    write_all(fd, password, strlen(password)) < 0 ||
	    write_all(fd, "\n", 1) < 0) {
		error_setsys("cannot write '%s'", pg->initdb_pwfile);
		goto out;
	}
	logfd = open(pg->log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC,
		     0600);
	if (logfd < 0) {
		error_setsys("cannot open '%s'", pg->log_path);
		goto out;
	}
	log_info("creating PostgreSQL cluster in '%s'", pg->data);
	runner_init(&pg->initdb);
	pg_spawn_prepare(pg, &pg->initdb.spawn, argv, envp, logfd);
	pg->initdb.timeout_ms = PG_INITDB_MS;
	if (runner_start(&pg->initdb, pg->loop, initdb_done, pg) < 0)
		goto out;
	ret = 0;
out:
	if (fd >= 0)
		close(fd);
	if (logfd >= 0)
		close(logfd);	/* the child has its own */
	if (ret < 0)
		initdb_cleanup(pg, 1);
	explicit_bzero(password, sizeof(password));
	free(pwopt);
	return ret;
}

/* initdb ended: the cluster is whole (renamed into place), or gone. */
static int create_cluster_end(struct postgres *pg, int result, int status)
{
	char why[64];
	int ret = -1;

	if (result < 0)
		goto out;
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		error_set("'%s' %s (see '%s')", pg->initdb_prog,
			  spawn_describe_status(status, why, sizeof(why)),
			  pg->log_path);
		goto out;
	}
	if (rename(pg->initdb_tmp, pg->data) < 0) {
		error_setsys("cannot rename '%s'", pg->initdb_tmp);
		goto out;
	}
	ret = 0;
out:
	initdb_cleanup(pg, ret < 0);
	return ret;
}

static int load_password(struct postgres *pg)
{
	struct buf b = BUF_INIT;
	char *host = NULL;
	int ret;

	if (pg->password)
		return 0;
	ret = read_file(&b, pg->conninfo_path, 65536);
	if (ret < 0)
		goto out;
	pg->password = conninfo_get(b.data, "password");
	host = conninfo_get(b.data, "host");
	if (!pg->password)
		ret = error_set("no password in '%s'", pg->conninfo_path);
	else if (!host || strcmp(host, pg->run))
		ret = write_admin_conninfo(pg);	/* the root moved */
out:
	free(host);
	buf_release(&b);
	return ret;
}

/*
 * Read /proc/PID/stat: the command name (comm), the state letter and the
 * parent's pid.  0, or -1 if there is no such process.
 */
static int proc_stat(pid_t pid, char *comm, size_t len, char *state,
		     pid_t *ppid, uid_t *uid)
{
	char path[64], line[512];
	struct stat st;
	FILE *f;
	char *open_paren, *close_paren;
	int parent, ret = -1;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	f = fopen(path, "re");
	if (!f)
		return -1;
	if (fstat(fileno(f), &st) < 0 || !fgets(line, sizeof(line), f))
		goto out;
	open_paren = strchr(line, '(');
	close_paren = strrchr(line, ')');
	if (!open_paren || !close_paren || close_paren < open_paren ||
	    sscanf(close_paren + 1, " %c %d", state, &parent) != 2)
		goto out;
	snprintf(comm, len, "%.*s", (int)(close_paren - open_paren - 1),
		 open_paren + 1);
	*ppid = (pid_t)parent;
	*uid = st.st_uid;
	ret = 0;
out:
	fclose(f);
	return ret;
}

/*
 * 1 if pid is a live (not zombie) process named postgres, owned by the
 * cluster's user and working in our data directory (a postmaster chdir()s
 * there): a pid reused by another cluster of the same user is not ours.
 */
static int is_postmaster(const struct postgres *pg, pid_t pid)
{
	char comm[32], state, link[64], cwd[PATH_MAX], data[PATH_MAX];
	pid_t ppid;
	uid_t uid;
	ssize_t n;

	if (proc_stat(pid, comm, sizeof(comm), &state, &ppid, &uid) < 0 ||
	    uid != pg->uid || state == 'Z' || strcmp(comm, "postgres"))
		return 0;
	snprintf(link, sizeof(link), "/proc/%d/cwd", (int)pid);
	n = readlink(link, cwd, sizeof(cwd) - 1);
	if (n < 0 || !realpath(pg->data, data))
		return 0;
	cwd[n] = '\0';
	return !strcmp(cwd, data);
}

/* 1 if pid's parent is another live berth: an engine that still runs
 * this cluster (two engines on one state directory). */
static int owned_by_other_engine(pid_t pid, pid_t *parent)
{
	char comm[32], state;
	pid_t ppid, pp;
	uid_t uid;

	if (proc_stat(pid, comm, sizeof(comm), &state, &ppid, &uid) < 0 ||
	    ppid <= 1 || ppid == getpid())
		return 0;
	*parent = ppid;
	return proc_stat(ppid, comm, sizeof(comm), &state, &pp, &uid) == 0 &&
	       state != 'Z' && !strcmp(comm, "berth");
}

static int wait_gone(const struct postgres *pg, pid_t pid, long ms)
{
	int64_t deadline = now_ms() + ms;

	while (is_postmaster(pg, pid)) {
		if (now_ms() > deadline)
			return -1;
		nanosleep(&(struct timespec){ 0, 50 * 1000 * 1000 }, NULL);
	}
	return 0;
}

/*
 * A postmaster that outlived a killed engine still holds the cluster.
 * Stop it the way postgres_shutdown would (fast, then immediate), so the
 * one we start is ours to supervise.
 */
static int stop_stale(struct postgres *pg)
{
	char *pidfile = xasprintf("%s/postmaster.pid", pg->data);
	struct buf b = BUF_INIT;
	long pid;
	pid_t engine;
	int ret = 0;

	if (read_file(&b, pidfile, 65536) < 0)
		goto out;
	b.data[strcspn(b.data, "\n")] = '\0';
	pid = parse_long(b.data, INT_MAX);
	if (pid <= 1 || pid == pg->pid || !is_postmaster(pg, (pid_t)pid))
		goto out;
	/* an orphan has init (or a subreaper) as parent; a postmaster whose
	 * parent is a live engine is that engine's: leave it alone */
	if (owned_by_other_engine((pid_t)pid, &engine)) {
		ret = error_set("PostgreSQL in '%s' is run by another engine "
				"(pid %d)", pg->data, (int)engine);
		goto out;
	}
	log_warnx("stopping PostgreSQL left running as pid %ld", pid);
	kill((pid_t)pid, SIGINT);
	if (wait_gone(pg, (pid_t)pid, PG_STOP_MS) == 0)
		goto out;
	kill((pid_t)pid, SIGQUIT);
	if (wait_gone(pg, (pid_t)pid, 5000) == 0)
		goto out;
	kill((pid_t)pid, SIGKILL);
	wait_gone(pg, (pid_t)pid, 5000);
out:
	buf_release(&b);
	free(pidfile);
	return ret;
}

/* The supervisor's start: the postmaster again, unless it runs. */
static int restart_postmaster(void *arg)
{
	struct postgres *pg = arg;

	return pg->pid ? 0 : start_postmaster(pg);
}

static void restart_failed(void *arg, long delay_ms)
{
	(void)arg;
	log_warnx("cannot start PostgreSQL: %s; trying again in %ld ms",
		  error_last(), delay_ms);
}

/* Our postmaster has gone: note it, and start again after a back-off. */
static void exited(struct postgres *pg, int status)
{
	char why[64];
	long delay;

	pg->pid = 0;
	pg->accepting = 0;
	pg->exit_status = status;
	delay = supervisor_exited(&pg->sup);
	log_warnx("PostgreSQL %s; starting it again in %ld ms",
		  spawn_describe_status(status, why, sizeof(why)), delay);
}

static void on_exit_cb(pid_t pid, int status, void *arg)
{
	struct postgres *pg = arg;

	if (pid == pg->pid)
		exited(pg, status);
}

static int open_log(struct postgres *pg)
{
	struct stat st;
	int fd;

	if (stat(pg->log_path, &st) == 0 && st.st_size > PG_LOG_MAX) {
		char *old = xasprintf("%s.1", pg->log_path);

		if (rename(pg->log_path, old) < 0)
			log_warn("cannot rotate '%s'", pg->log_path);
		free(old);
	}
	fd = open(pg->log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC,
		  0600);
	if (fd < 0)
		return error_setsys("cannot open '%s'", pg->log_path);
	return fd;
}

static int start_postmaster(struct postgres *pg)
{
	char *envp[] = { CHILD_PATH, "LC_ALL=C", "LANG=C", NULL };
	char *postgres = xasprintf("%s/postgres", pg->bindir);
	char *argv[] = { postgres, "-D", pg->data, "-k", pg->run,
			 "-p", PG_PORT, "-c", "listen_addresses=",
			 "-c", "unix_socket_permissions=0777", NULL };
	struct spawn s;
	int logfd = -1, ret = -1;

	if (pg->pid) {
		free(postgres);
		return 0;
	}
	supervisor_cancel(&pg->sup);
	if (stop_stale(pg) < 0)
		goto out;
	/* the socket directory is shared with apps; the lock file in it
	 * must be the database user's to write */
	if (make_dir(pg, pg->run, 0755, 1) < 0)
		goto out;
	logfd = open_log(pg);
	if (logfd < 0)
		goto out;
	pg_spawn_prepare(pg, &s, argv, envp, logfd);
	if (spawn_start(&s) < 0)
		goto out;
	pg->pid = s.pid;
	pg->accepting = 0;
	supervisor_started(&pg->sup);
	reaper_watch(s.pid, on_exit_cb, pg);
	log_info("PostgreSQL started as pid %d", (int)s.pid);
	ret = 0;
out:
	if (logfd >= 0)
		close(logfd);
	free(postgres);
	return ret;
}

/*
 * Our postmaster may have died with the loop not running to tell us
 * (we are inside a request): reap it here.  1 if it had exited.
 */
static int reap_own(struct postgres *pg, int *status)
{
	pid_t r;

	if (!pg->pid)
		return 0;
	r = waitpid(pg->pid, status, WNOHANG);
	if (r != pg->pid)
		return 0;
	reaper_forget(r);
	exited(pg, *status);
	return 1;
}

/* One look, without asking it: 1 while our postmaster may yet accept
 * connections, -1 with the reason when it will not. */
static int ready_check(struct postgres *pg, int64_t deadline)
{
	char why[64];
	int status;

	if (reap_own(pg, &status) || (!pg->pid && pg->exit_status)) {
		status = pg->exit_status;
		return error_set("cannot reach PostgreSQL: it %s (see '%s')",
				 spawn_describe_status(status, why,
						       sizeof(why)),
				 pg->log_path);
	}
	if (!pg->pid)
		return error_set("cannot reach PostgreSQL: not running");
	if (now_ms() > deadline)
		return error_set("cannot reach PostgreSQL: not ready "
				 "after %d s (see '%s')",
				 PG_READY_MS / 1000, pg->log_path);
	return 1;
}

/* What must hold before the cluster is used, made or started: the
 * programs, the user, the folders.  Quick (but see find_user()). */
static int prepare_dirs(struct postgres *pg)
{
	if (find_bindir(pg) < 0 || find_user(pg) < 0)
		return -1;
	if (make_dir(pg, pg->dir, 0755, 0) < 0 ||
	    make_dir(pg, pg->apps, 0700, 0) < 0)
		return -1;
	if (check_searchable(pg, pg->dir) < 0)
		return -1;
	if (strlen(pg->run) + strlen("/.s.PGSQL." PG_PORT) > SUN_PATH_MAX)
		return error_set("socket directory '%s' is too long for a "
				 "unix socket", pg->run);
	return 0;
}

/*
 * For admin_connect(), which runs in an op's child (op_child()): the
 * engine made the cluster ready before it forked (postgres_when_ready()),
 * and a child never starts a postmaster nor waits for one to start (it
 * could not supervise it): a postmaster gone meanwhile is an error.
 */
static int ensure_running(struct postgres *pg)
{
	if (!cluster_exists(pg))
		return error_set("PostgreSQL's cluster in '%s' does not exist "
				 "yet", pg->data);
	if (load_password(pg) < 0)
		return -1;
	if (!pg->pid)
		return error_set("cannot reach PostgreSQL: not running");
	return 0;
}

/* --- postgres_when_ready(): the same, on the loop -------------------- */

/* Tell everyone waiting: result 0, or -1 with error_last(). */
static void waits_done(struct postgres *pg, int result)
{
	struct postgres_wait *w = pg->waits;
	char *msg = result < 0 ? xstrdup(error_last()) : NULL;

	pg->waits = NULL;
	pg->preparing = 0;
	while (w) {
		struct postgres_wait *next = w->next;

		if (msg)
			error_set("%s", msg);
		w->fn(w->arg, result);
		free(w);
		w = next;
	}
	free(msg);
}

/*
 * The start-up poll asks the postmaster every 50 ms whether it accepts
 * connections, the way PQping() would, but with a non-blocking connection
 * the loop watches: a postmaster that does not answer (stopped, or slow
 * on a loaded host) never holds the engine.  A connection, or any error
 * the server itself sends but "the database system is starting up" (and
 * its kin), says it accepts.
 */
#define PROBE_MS 5000		/* one attempt, as connect_timeout */

static void admin_params(const struct postgres *pg, const char *connect_timeout,
			 const char **keys, const char **vals);
static void ready_tick(struct loop *l, void *arg);

static void probe_end(struct postgres *pg)
{
	if (pg->probe_fd >= 0)
		loop_del_fd(pg->loop, pg->probe_fd);
	pg->probe_fd = -1;
	loop_del_timer(pg->loop, pg->probe_timer);
	pg->probe_timer = 0;
	PQfinish(pg->probe);
	pg->probe = NULL;
}

/* The attempt ended: answered says whether the server did. */
static void probe_done(struct postgres *pg, int answered)
{
	probe_end(pg);
	if (answered) {
		pg->accepting = 1;
		waits_done(pg, 0);
		return;
	}
	pg->ready_timer = loop_add_timer(pg->loop, 50, ready_tick, pg);
}

static int probe_answered(PGconn *conn)
{
	const char *msg;

	if (PQstatus(conn) == CONNECTION_OK)
		return 1;
	msg = PQerrorMessage(conn);
	return msg && strstr(msg, "FATAL:") &&
	       !strstr(msg, "the database system is");
}

static void probe_on_fd(struct loop *l, int fd, unsigned events, void *arg);

static int probe_watch(struct postgres *pg, unsigned events)
{
	int fd = PQsocket(pg->probe);

	if (fd < 0)
		return -1;
	if (fd == pg->probe_fd)
		return loop_mod_fd(pg->loop, fd, events);
	if (pg->probe_fd >= 0)
		loop_del_fd(pg->loop, pg->probe_fd);
	pg->probe_fd = -1;
	if (loop_add_fd(pg->loop, fd, events, probe_on_fd, pg) < 0)
		return -1;
	pg->probe_fd = fd;
	return 0;
}

static void probe_on_fd(struct loop *l, int fd, unsigned events, void *arg)
{
	struct postgres *pg = arg;

	(void)l;
	(void)fd;
	(void)events;
	switch (PQconnectPoll(pg->probe)) {
	case PGRES_POLLING_READING:
		if (probe_watch(pg, LOOP_READ) < 0)
			probe_done(pg, 0);
		return;
	case PGRES_POLLING_WRITING:
		if (probe_watch(pg, LOOP_WRITE) < 0)
			probe_done(pg, 0);
		return;
	case PGRES_POLLING_OK:
		probe_done(pg, 1);
		return;
	default:
		probe_done(pg, probe_answered(pg->probe));
		return;
	}
}

static void probe_on_timeout(struct loop *l, void *arg)
{
	struct postgres *pg = arg;

	(void)l;
	pg->probe_timer = 0;
	probe_done(pg, 0);
}

static void ready_tick(struct loop *l, void *arg)
{
	struct postgres *pg = arg;
	const char *keys[8], *vals[8];
	int r;

	(void)l;
	pg->ready_timer = 0;
	r = ready_check(pg, pg->ready_deadline);
	if (r < 0) {
		waits_done(pg, r);
		return;
	}
	admin_params(pg, NULL, keys, vals);
	pg->probe = PQconnectStartParams(keys, vals, 1);
	if (!pg->probe || PQstatus(pg->probe) == CONNECTION_BAD ||
	    PQsetnonblocking(pg->probe, 1) < 0 ||
	    probe_watch(pg, LOOP_WRITE) < 0) {
		probe_done(pg, pg->probe && probe_answered(pg->probe));
		return;
	}
	pg->probe_timer = loop_add_timer(pg->loop, PROBE_MS,
					 probe_on_timeout, pg);
}

/* The cluster exists: start it unless it runs, then poll for it. */
static int start_and_poll(struct postgres *pg)
{
	int status;

	if (load_password(pg) < 0)
		return -1;
	reap_own(pg, &status);
	if (!pg->pid && start_postmaster(pg) < 0)
		return -1;
	pg->exit_status = 0;
	pg->ready_deadline = now_ms() + PG_READY_MS;
	pg->ready_timer = loop_add_timer(pg->loop, 0, ready_tick, pg);
	return 0;
}

static void initdb_done(struct runner *r, int result, void *arg)
{
	struct postgres *pg = arg;

	if (create_cluster_end(pg, result, r->status) < 0 ||
	    start_and_poll(pg) < 0)
		waits_done(pg, -1);
}

/* The folders, then initdb in a child or the postmaster's start. */
static int prepare_and_start(struct postgres *pg)
{
	if (prepare_dirs(pg) < 0)
		return -1;
	return !cluster_exists(pg) ? create_cluster_start(pg) :
	       start_and_poll(pg);
}

/* As root with no PG_USER yet: find_user() would run useradd. */
static int user_missing(const struct postgres *pg)
{
	(void)pg;
	return geteuid() == 0 && !getpwnam(PG_USER);
}

static void useradd_done(struct runner *r, int result, void *arg)
{
	struct postgres *pg = arg;

	if (result == 0 && (!WIFEXITED(r->status) ||
			    WEXITSTATUS(r->status) != 0)) {
		error_set("cannot create user '%s': %s", PG_USER,
			  first_line(pg->useradd_out.data));
		result = -1;
	}
	buf_release(&pg->useradd_out);
	if (pg->stopping)
		return;
	if (result == 0) {
		log_info("created system user '%s' for PostgreSQL", PG_USER);
		if (prepare_and_start(pg) < 0)
			result = -1;
	}
	if (result < 0)
		waits_done(pg, -1);
}

/* useradd in a child (about 0.1 s, more if another tool holds the user
 * database's lock); the start goes on from useradd_done(). */
static int useradd_start(struct postgres *pg)
{
	char *argv[] = { "useradd", "--system", "--no-create-home",
			 "--shell", "/usr/sbin/nologin", PG_USER, NULL };
	char *envp[] = { CHILD_PATH ":/usr/sbin:/sbin", NULL };

	runner_init(&pg->useradd);
	pg->useradd.spawn.argv = argv;
	pg->useradd.spawn.envp = envp;
	pg->useradd.capture[RUNNER_OUT] = &pg->useradd_out;
	pg->useradd.capture_max = 4096;
	pg->useradd.merge = 1;
	pg->useradd.timeout_ms = 30000;
	if (runner_start(&pg->useradd, pg->loop, useradd_done, pg) < 0) {
		buf_release(&pg->useradd_out);
		return error_set("cannot create user '%s': %s", PG_USER,
				 error_last());
	}
	return 0;
}

int postgres_when_ready(struct postgres *pg, postgres_ready_fn fn,
			void *arg, struct postgres_wait **out)
{
	struct postgres_wait *w, **tail;
	int status;

	*out = NULL;
	if (pg->external)
		return 1;
	reap_own(pg, &status);
	if (pg->pid && pg->accepting && !pg->preparing)
		return 1;
	if (!pg->preparing) {
		if (user_missing(pg)) {
			if (useradd_start(pg) < 0)
				return -1;
		} else if (prepare_and_start(pg) < 0) {
			return -1;
		}
		pg->preparing = 1;
	}
	w = xcalloc(1, sizeof(*w));
	w->fn = fn;
	w->arg = arg;
	for (tail = &pg->waits; *tail; tail = &(*tail)->next)
		;
	*tail = w;
	*out = w;
	return 0;
}

void postgres_wait_cancel(struct postgres *pg, struct postgres_wait *w)
{
	struct postgres_wait **p;

	if (!pg || !w)
		return;
	for (p = &pg->waits; *p; p = &(*p)->next) {
		if (*p == w) {
			*p = w->next;
			free(w);
			return;
		}
	}
}

/* --- connections and SQL ---------------------------------------------- */

/* "role does not exist, skipping" and friends are expected: debug only */
static void quiet_notice(void *arg, const char *msg)
{
	log_debug("postgres: %s", first_line(msg));
}

/*
 * The keywords and values (NULL-ended, at most 8 with it) of a connection
 * as the superuser to the "postgres" database: the embedded cluster's
 * socket, or the external conninfo (later keywords win over those in its
 * expansion); connect_timeout too unless NULL.  The caller has the
 * embedded cluster running and its password loaded.
 */
static void admin_params(const struct postgres *pg, const char *connect_timeout,
			 const char **keys, const char **vals)
{
	int n = 0;

	if (pg->external) {
		keys[n] = "dbname";
		vals[n++] = pg->external;
	} else {
		keys[n] = "host";
		vals[n++] = pg->run;
		keys[n] = "port";
		vals[n++] = PG_PORT;
		keys[n] = "user";
		vals[n++] = PG_SUPERUSER;
		keys[n] = "password";
		vals[n++] = pg->password;
		keys[n] = "dbname";
		vals[n++] = "postgres";
	}
	if (connect_timeout) {
		keys[n] = "connect_timeout";
		vals[n++] = connect_timeout;
	}
	keys[n] = "application_name";
	vals[n++] = "berth";
	keys[n] = NULL;
	vals[n] = NULL;
}

static int admin_connect(struct postgres *pg, PGconn **out)
{
	const char *keys[8], *vals[8];
	PGconn *conn;
	PGresult *res;

	*out = NULL;
	if (!pg->external && ensure_running(pg) < 0)
		return -1;
	admin_params(pg, PG_CONNECT_TIMEOUT, keys, vals);
	conn = PQconnectdbParams(keys, vals, 1);
	if (!conn)
		return error_set("cannot reach PostgreSQL: out of memory");
	if (PQstatus(conn) != CONNECTION_OK) {
		error_set("cannot reach PostgreSQL: %s",
			  first_line(PQerrorMessage(conn)));
		PQfinish(conn);
		return -1;
	}
	/* a lock held elsewhere must not hold the engine forever */
	res = PQexec(conn, PG_STATEMENT_TIMEOUT);
	if (PQresultStatus(res) != PGRES_COMMAND_OK) {
		pq_error(conn, res);
		PQclear(res);
		PQfinish(conn);
		return -1;
	}
	PQclear(res);
	PQsetNoticeProcessor(conn, quiet_notice, NULL);
	*out = conn;
	return 0;
}

static int exec_sql(PGconn *conn, const char *sql)
{
	PGresult *res = PQexec(conn, sql);
	int ret = 0;

	if (PQresultStatus(res) != PGRES_COMMAND_OK &&
	    PQresultStatus(res) != PGRES_TUPLES_OK)
		ret = pq_error(conn, res);
	PQclear(res);
	return ret;
}

/* "CREATE ROLE %s" with one or two quoted identifiers and a literal. */
static int exec_fmt(PGconn *conn, const char *fmt, const char *a,
		    const char *b)
{
	char *sql = xasprintf(fmt, a, b ? b : "");
	int ret = exec_sql(conn, sql);

	free(sql);
	return ret;
}

/* 1 if "SELECT 1 FROM catalog WHERE column = name" finds a row, 0 if
 * not, -1 on error. */
static int row_exists(PGconn *conn, const char *sql, const char *name)
{
	const char *params[1] = { name };
	PGresult *res = PQexecParams(conn, sql, 1, NULL, params, NULL, NULL, 0);
	int ret;

	if (PQresultStatus(res) != PGRES_TUPLES_OK)
		ret = pq_error(conn, res);
	else
		ret = PQntuples(res) > 0;
	PQclear(res);
	return ret;
}

#define ROLE_EXISTS "SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = $1"
#define DB_EXISTS "SELECT 1 FROM pg_catalog.pg_database WHERE datname = $1"

static char *url_path(const struct postgres *pg, const char *app)
{
	return xasprintf("%s/%s.url", pg->apps, app);
}

/* The password berth handed out before, or a fresh one. */
static int app_password(const struct postgres *pg, const char *app,
			char **out)
{
	char *path = url_path(pg, app);
	struct buf b = BUF_INIT;
	char fresh[65];
	int ret;

	*out = NULL;
	ret = read_file(&b, path, 65536);
	if (ret == 0) {
		b.data[strcspn(b.data, "\n")] = '\0';
		*out = conninfo_get(b.data, "password");
	} else if (ret != ERR_NOTFOUND) {
		goto out;
	}
	ret = 0;
	if (!*out) {
		ret = random_hex(fresh, 32);
		if (ret == 0)
			*out = xstrdup(fresh);
		explicit_bzero(fresh, sizeof(fresh));
	}
out:
	buf_release(&b);
	free(path);
	return ret;
}

static int app_check(const char *app)
{
	if (!app_name_valid(app))
		return error_set("invalid app name '%s'", app ? app : "");
	return 0;
}

/* The DATABASE_URL of role and database ident on the server conn reaches. */
static char *url_for(const struct postgres *pg, PGconn *conn,
		     const char *ident, const char *password)
{
	const char *host = pg->external ? (PQhost(conn) ? PQhost(conn) : "") :
		pg->run;

	return build_url(host, pg->external ? PQport(conn) : PG_PORT, ident,
			 password, ident, pg->external && PQsslInUse(conn));
}

static int postgres_provision(struct postgres *pg, const char *app, char **url)
{
	PGconn *conn = NULL;
	char *ident = NULL, *password = NULL, *verifier = NULL;
	char *role_q = NULL, *pw_q = NULL, *u = NULL, *path = NULL;
	int r, ret = -1;

	*url = NULL;
	if (app_check(app) < 0)
		return ERR_INVALID;
	if (admin_connect(pg, &conn) < 0)
		goto out;
	ident = postgres_ident(app);
	if (app_password(pg, app, &password) < 0)
		goto out;
	u = url_for(pg, conn, ident, password);
	/* saved before the role is made: a retry reuses this password */
	path = url_path(pg, app);
	if (write_file_atomic(path, u, strlen(u), 0600) < 0)
		goto out;
	role_q = PQescapeIdentifier(conn, ident, strlen(ident));
	/* the server sees a SCRAM verifier, never the password itself */
	verifier = PQencryptPasswordConn(conn, password, ident, NULL);
	if (!role_q || !verifier) {
		pq_error(conn, NULL);
		goto out;
	}
	pw_q = PQescapeLiteral(conn, verifier, strlen(verifier));
	if (!pw_q) {
		pq_error(conn, NULL);
		goto out;
	}
	r = row_exists(conn, ROLE_EXISTS, ident);
	if (r < 0)
		goto out;
	if (exec_fmt(conn, r ? "ALTER ROLE %s WITH LOGIN PASSWORD %s" :
		     "CREATE ROLE %s WITH LOGIN PASSWORD %s", role_q,
		     pw_q) < 0)
		goto out;
	/* A CREATEROLE admin that is no superuser must be a member of the
	 * role to make it a database's owner (and to drop it later). */
	if (strcmp(PQparameterStatus(conn, "is_superuser") ?
		   PQparameterStatus(conn, "is_superuser") : "off", "on") &&
	    exec_fmt(conn, "GRANT %s TO CURRENT_USER", role_q, NULL) < 0)
		goto out;
	r = row_exists(conn, DB_EXISTS, ident);
	if (r < 0)
		goto out;
	if (!r) {
		if (exec_fmt(conn, "CREATE DATABASE %s OWNER %s", role_q,
			     role_q) < 0)
			goto out;
		log_info("created database '%s' for app '%s'", ident, app);
	}
	if (exec_fmt(conn, "REVOKE CONNECT, TEMPORARY ON DATABASE %s "
		     "FROM PUBLIC", role_q, NULL) < 0 ||
	    exec_fmt(conn, "GRANT CONNECT, TEMPORARY ON DATABASE %s TO %s",
		     role_q, role_q) < 0)
		goto out;
	/* our own cluster: apps see their database and nothing else */
	if (!pg->external &&
	    exec_sql(conn, "REVOKE CONNECT, TEMPORARY ON DATABASE postgres, "
		     "template1 FROM PUBLIC") < 0)
		goto out;
	*url = u;
	u = NULL;
	ret = 0;
out:
	if (password)
		explicit_bzero(password, strlen(password));
	free(password);
	PQfreemem(verifier);
	PQfreemem(role_q);
	PQfreemem(pw_q);
	PQfinish(conn);
	free(ident);
	free(u);
	free(path);
	return ret;
}

/* Embedded and never created: nothing to drop or show, and no reason to
 * initdb a cluster just to find that out. */
static int nothing_there(struct postgres *pg)
{
	return !pg->external && !cluster_exists(pg);
}

static int postgres_drop(struct postgres *pg, const char *app)
{
	PGconn *conn = NULL;
	char *ident = NULL, *q = NULL, *path = NULL;
	int ret = -1;

	if (app_check(app) < 0)
		return ERR_INVALID;
	path = url_path(pg, app);
	if (nothing_there(pg)) {
		ret = 0;
		goto out;
	}
	if (admin_connect(pg, &conn) < 0)
		goto out;
	ident = postgres_ident(app);
	q = PQescapeIdentifier(conn, ident, strlen(ident));
	if (!q) {
		pq_error(conn, NULL);
		goto out;
	}
	if (exec_fmt(conn, PQserverVersion(conn) >= 130000 ?
		     "DROP DATABASE IF EXISTS %s WITH (FORCE)" :
		     "DROP DATABASE IF EXISTS %s", q, NULL) < 0 ||
	    exec_fmt(conn, "DROP ROLE IF EXISTS %s", q, NULL) < 0)
		goto out;
	log_info("dropped database '%s' of app '%s'", ident, app);
	ret = 0;
out:
	if (ret == 0 && unlink(path) < 0 && errno != ENOENT)
		ret = error_setsys("cannot remove '%s'", path);
	PQfreemem(q);
	PQfinish(conn);
	free(ident);
	free(path);
	return ret;
}

/* Sessions on database db that a rename must not cut: anyone's but the
 * app's role, and the app's own pg:backup and pg:restore (pg_dump,
 * pg_restore), listed into out as "pg_dump (pid 12)"; -1 on error. */
static int other_sessions(PGconn *conn, const char *db, const char *role,
			  struct buf *out)
{
	const char *params[2] = { db, role };
	PGresult *res;
	int i, n;

	res = PQexecParams(conn, "SELECT coalesce(nullif(application_name, "
			   "''), usename::text, 'a session'), pid "
			   "FROM pg_catalog.pg_stat_activity "
			   "WHERE datname = $1 AND pid <> pg_backend_pid() "
			   "AND backend_type = 'client backend' AND "
			   "(usename IS DISTINCT FROM $2 OR application_name "
			   "IN ('pg_dump', 'pg_restore'))", 2, NULL, params,
			   NULL, NULL, 0);
	if (PQresultStatus(res) != PGRES_TUPLES_OK) {
		pq_error(conn, res);
		PQclear(res);
		return -1;
	}
	n = PQntuples(res);
	for (i = 0; i < n && i < 3; i++)
		buf_addf(out, "%s%.40s (pid %s)", i ? ", " : "",
			 PQgetvalue(res, i, 0), PQgetvalue(res, i, 1));
	if (n > 3)
		buf_addf(out, " and %d more", n - 3);
	PQclear(res);
	return n;
}

/* Close the connections of the app's role to db (its processes', a
 * pg:psql's): they would hold the rename off. */
static int close_app_sessions(PGconn *conn, const char *db,
			      const char *role)
{
	const char *params[2] = { db, role };
	PGresult *res;
	int ret = 0;

	res = PQexecParams(conn, "SELECT pg_catalog.pg_terminate_backend(pid) "
			   "FROM pg_catalog.pg_stat_activity "
			   "WHERE datname = $1 AND usename = $2 "
			   "AND pid <> pg_backend_pid() AND application_name "
			   "NOT IN ('pg_dump', 'pg_restore')", 2, NULL, params,
			   NULL, NULL, 0);
	if (PQresultStatus(res) != PGRES_TUPLES_OK)
		ret = pq_error(conn, res);
	PQclear(res);
	return ret;
}

static int postgres_rename(struct postgres *pg, const char *from, const char *to,
		    char **url)
{
	PGconn *conn = NULL;
	struct buf busy = BUF_INIT;
	char *old_id = NULL, *new_id = NULL, *old_q = NULL, *new_q = NULL;
	char *password = NULL, *verifier = NULL, *pw_q = NULL, *u = NULL;
	char *old_path = NULL, *new_path = NULL;
	int r, ret = -1, nologin = 0, url_written = 0;

	*url = NULL;
	if (app_check(from) < 0 || app_check(to) < 0)
		return ERR_INVALID;
	old_id = postgres_ident(from);
	new_id = postgres_ident(to);
	old_path = url_path(pg, from);
	new_path = url_path(pg, to);
	if (nothing_there(pg)) {
		error_set("app '%s' has no database", from);
		ret = ERR_NOTFOUND;
		goto out;
	}
	if (admin_connect(pg, &conn) < 0)
		goto out;
	r = row_exists(conn, DB_EXISTS, old_id);
	if (r <= 0) {
		if (r == 0) {
			error_set("app '%s' has no database '%s'", from,
				  old_id);
			ret = ERR_NOTFOUND;
		}
		goto out;
	}
	if ((r = row_exists(conn, DB_EXISTS, new_id)) != 0 ||
	    (r = row_exists(conn, ROLE_EXISTS, new_id)) != 0) {
		if (r > 0) {
			error_set("PostgreSQL already has a database or role "
				  "'%s' (kept when an app '%s' was removed?): "
				  "drop it first, or pick another name",
				  new_id, to);
			ret = ERR_EXISTS;
		}
		goto out;
	}
	r = other_sessions(conn, old_id, old_id, &busy);
	if (r != 0) {
		if (r > 0) {
			error_set("database '%s' is in use by %s: rename when "
				  "they are done", old_id, busy.data);
			ret = ERR_BUSY;
		}
		goto out;
	}
	if (app_password(pg, from, &password) < 0)
		goto out;
	old_q = PQescapeIdentifier(conn, old_id, strlen(old_id));
	new_q = PQescapeIdentifier(conn, new_id, strlen(new_id));
	/* MD5 verifiers are salted with the role's name: a fresh one */
	verifier = PQencryptPasswordConn(conn, password, new_id, NULL);
	if (!old_q || !new_q || !verifier) {
		pq_error(conn, NULL);
		goto out;
	}
	pw_q = PQescapeLiteral(conn, verifier, strlen(verifier));
	if (!pw_q) {
		pq_error(conn, NULL);
		goto out;
	}
	u = url_for(pg, conn, new_id, password);
	if (write_file_atomic(new_path, u, strlen(u), 0600) < 0)
		goto out;
	url_written = 1;
	/* no new connections of the app from here, then none left: a
	 * database is renamed only with nobody in it */
	if (exec_fmt(conn, "ALTER ROLE %s NOLOGIN", old_q, NULL) < 0)
		goto out;
	nologin = 1;
	if (close_app_sessions(conn, old_id, old_id) < 0)
		goto out;
	/* one transaction: both names change, or neither.  The rename
	 * waits (up to 5 s) for the closed sessions to end. */
	if (exec_sql(conn, "BEGIN") < 0)
		goto out;
	if (exec_fmt(conn, "ALTER DATABASE %s RENAME TO %s", old_q,
		     new_q) < 0 ||
	    exec_fmt(conn, "ALTER ROLE %s RENAME TO %s", old_q, new_q) < 0 ||
	    exec_fmt(conn, "ALTER ROLE %s WITH LOGIN PASSWORD %s", new_q,
		     pw_q) < 0 ||
	    exec_sql(conn, "COMMIT") < 0) {
		char *why = xstrdup(error_last());

		exec_sql(conn, "ROLLBACK");
		error_set("%s", why);
		free(why);
		goto out;
	}
	nologin = 0;
	if (unlink(old_path) < 0 && errno != ENOENT)
		log_warn("cannot remove '%s'", old_path);
	log_info("renamed database '%s' of app '%s' to '%s' (app '%s')",
		 old_id, from, new_id, to);
	*url = u;
	u = NULL;
	ret = 0;
out:
	if (nologin) {
		char *why = xstrdup(error_last());

		if (exec_fmt(conn, "ALTER ROLE %s LOGIN", old_q, NULL) < 0)
			log_warnx("cannot let '%s' log in again: %s", old_id,
				  error_last());
		error_set("%s", why);
		free(why);
	}
	if (ret < 0 && url_written)
		unlink(new_path);
	if (password)
		explicit_bzero(password, strlen(password));
	free(password);
	PQfreemem(verifier);
	PQfreemem(pw_q);
	PQfreemem(old_q);
	PQfreemem(new_q);
	PQfinish(conn);
	buf_release(&busy);
	free(old_id);
	free(new_id);
	free(old_path);
	free(new_path);
	free(u);
	return ret;
}

static int postgres_info(struct postgres *pg, const char *app, struct buf *out)
{
	PGconn *conn = NULL;
	PGresult *res = NULL;
	char *ident = NULL;
	const char *params[1];
	int ret = -1;

	if (app_check(app) < 0)
		return ERR_INVALID;
	ident = postgres_ident(app);
	if (nothing_there(pg)) {
		error_set("app '%s' has no database", app);
		ret = ERR_NOTFOUND;
		goto out;
	}
	if (admin_connect(pg, &conn) < 0)
		goto out;
	params[0] = ident;
	res = PQexecParams(conn, "SELECT datname, "
			   "pg_catalog.pg_size_pretty("
			   "pg_catalog.pg_database_size(datname)) "
			   "FROM pg_catalog.pg_database WHERE datname = $1",
			   1, NULL, params, NULL, NULL, 0);
	if (PQresultStatus(res) != PGRES_TUPLES_OK) {
		pq_error(conn, res);
		goto out;
	}
	if (PQntuples(res) == 0) {
		error_set("app '%s' has no database", app);
		ret = ERR_NOTFOUND;
		goto out;
	}
	if (buf_addf(out, "database %s, %s\n", PQgetvalue(res, 0, 0),
		     PQgetvalue(res, 0, 1)) < 0) {
		error_set("output too long");
		goto out;
	}
	ret = 0;
out:
	PQclear(res);
	PQfinish(conn);
	free(ident);
	return ret;
}

/* --- the calls above, off the loop -------------------------------------- */

/*
 * Each op runs one of the calls above in a child of the engine, forked
 * by the runner and watched by the loop, once postgres_when_ready() says
 * the cluster accepts: its connect and its statements wait there, never
 * in the engine.  The child writes its answer to a pipe: the result, the
 * error text, then the output (a URL, info lines):
 *   "-3\nPostgreSQL already has ...\n" or "0\n\npostgresql://..."
 */
#define PG_OP_MS 180000
#define PG_OP_OUT_MAX 65536

enum op_kind {
	OP_PROVISION,
	OP_DROP,
	OP_RENAME,
	OP_INFO,
};

struct postgres_op {
	struct postgres_op *next;
	struct postgres *pg;
	enum op_kind kind;
	char *app;
	char *to;		/* OP_RENAME */
	postgres_done_fn fn;	/* NULL once cancelled */
	void *arg;
	struct postgres_wait *wait;
	struct runner run;
	struct buf answer;	/* the child's */
	uint64_t timer;		/* an answer known without asking */
	int result;
	char *msg;
	char *out;
};

static void op_free(struct postgres_op *op)
{
	struct postgres_op **pp;

	for (pp = &op->pg->ops; *pp; pp = &(*pp)->next) {
		if (*pp == op) {
			*pp = op->next;
			break;
		}
	}
	postgres_wait_cancel(op->pg, op->wait);
	if (runner_running(&op->run))
		runner_cancel(&op->run);
	loop_del_timer(op->pg->loop, op->timer);
	free(op->app);
	free(op->to);
	buf_release(&op->answer);
	free(op->msg);
	free(op->out);
	free(op);
}

/* Call back with op->result, op->msg and op->out, then free op. */
static void op_done(struct postgres_op *op)
{
	postgres_done_fn fn = op->fn;

	if (fn) {
		if (op->result < 0)
			error_set("%s", op->msg ? op->msg : "unknown error");
		fn(op->arg, op->result, op->result < 0 ? NULL :
		   op->out ? op->out : "");
	}
	op_free(op);
}

static void op_on_timer(struct loop *l, void *arg)
{
	struct postgres_op *op = arg;

	(void)l;
	op->timer = 0;
	op_done(op);
}

/* The answer is known now (ret, and error_last() when ret < 0): given
 * from the loop, never from inside the call that started op. */
static void op_answer_later(struct postgres_op *op, int ret, const char *out)
{
	op->result = ret;
	if (ret < 0)
		op->msg = xstrdup(error_last());
	if (out)
		op->out = xstrdup(out);
	op->timer = loop_add_timer(op->pg->loop, 0, op_on_timer, op);
}

/* In the child: the call, its answer to fd out. */
static int op_child(void *arg, int out, int err)
{
	struct postgres_op *op = arg;
	struct postgres *pg = op->pg;
	struct buf b = BUF_INIT, res = BUF_INIT;
	char *url = NULL;
	int ret = -1;

	(void)err;
	/* the engine's sockets and pipes are not ours to hold open: a
	 * peer the engine closes must see it closed now */
	if (out > 3)
		close_range(3, (unsigned)out - 1, 0);
	close_range((unsigned)out + 1, ~0U, 0);
	switch (op->kind) {
	case OP_PROVISION:
		ret = postgres_provision(pg, op->app, &url);
		break;
	case OP_DROP:
		ret = postgres_drop(pg, op->app);
		break;
	case OP_RENAME:
		ret = postgres_rename(pg, op->app, op->to, &url);
		break;
	case OP_INFO:
		ret = postgres_info(pg, op->app, &res);
		break;
	}
	buf_addf(&b, "%d\n%s\n", ret, ret < 0 ? first_line(error_last()) :
		 "");
	if (ret == 0 && url)
		buf_addstr(&b, url);
	else if (ret == 0)
		buf_add(&b, res.data ? res.data : "", res.len);
	ret = write_all(out, b.data, b.len) < 0 ? 1 : 0;
	if (url)
		explicit_bzero(url, strlen(url));
	free(url);
	buf_release(&b);
	buf_release(&res);
	return ret;
}

static void op_child_done(struct runner *r, int result, void *arg)
{
	struct postgres_op *op = arg;
	char why[64], *p = op->answer.data, *nl, *msg_end;
	long ret;

	if (result < 0) {
		op->result = -1;
		op->msg = xstrdup(error_last());
		goto out;
	}
	nl = p ? strchr(p, '\n') : NULL;
	msg_end = nl ? strchr(nl + 1, '\n') : NULL;
	if (!WIFEXITED(r->status) || WEXITSTATUS(r->status) != 0 ||
	    !msg_end) {
		op->result = -1;
		op->msg = xasprintf("postgres: the request's process %s",
				    spawn_describe_status(r->status, why,
							  sizeof(why)));
		goto out;
	}
	*nl = '\0';
	*msg_end = '\0';
	ret = strtol(p, NULL, 10);
	op->result = ret < 0 && ret >= ERR_TOOBIG ? (int)ret :
		ret < 0 ? -1 : 0;
	if (op->result < 0)
		op->msg = xstrdup(nl + 1);
	else
		op->out = xstrdup(msg_end + 1);
out:
	if (op->answer.data)
		explicit_bzero(op->answer.data, op->answer.len);
	op_done(op);
}

static void op_fork(struct postgres_op *op)
{
	struct runner *r = &op->run;

	runner_init(r);
	r->child_main = op_child;
	r->child_arg = op;
	r->capture[RUNNER_OUT] = &op->answer;
	r->capture_max = PG_OP_OUT_MAX;
	r->timeout_ms = PG_OP_MS;
	r->timeout_msg = "cannot reach PostgreSQL: no answer within "
		"180 s";
	if (runner_start(r, op->pg->loop, op_child_done, op) < 0)
		op_answer_later(op, -1, NULL);
}

static void op_on_ready(void *arg, int result)
{
	struct postgres_op *op = arg;

	op->wait = NULL;
	if (result < 0) {
		op->result = -1;
		op->msg = xstrdup(error_last());
		op_done(op);
		return;
	}
	op_fork(op);
}

static struct postgres_op *op_start(struct postgres *pg, enum op_kind kind,
				    const char *app, const char *to,
				    postgres_done_fn fn, void *arg)
{
	struct postgres_op *op = xcalloc(1, sizeof(*op));
	int r;

	op->pg = pg;
	op->kind = kind;
	op->app = xstrdup(app ? app : "");
	op->to = to ? xstrdup(to) : NULL;
	op->fn = fn;
	op->arg = arg;
	runner_init(&op->run);
	op->next = pg->ops;
	pg->ops = op;
	if (app_check(op->app) < 0 || (to && app_check(to) < 0)) {
		op_answer_later(op, ERR_INVALID, NULL);
		return op;
	}
	/* embedded and never made: nothing to drop or show, and no reason
	 * to initdb a cluster just to find that out */
	if (kind != OP_PROVISION && nothing_there(pg)) {
		if (kind == OP_DROP) {
			char *path = url_path(pg, app);
			int ret = 0;

			if (unlink(path) < 0 && errno != ENOENT)
				ret = error_setsys("cannot remove '%s'", path);
			free(path);
			op_answer_later(op, ret, NULL);
		} else {
			error_set("app '%s' has no database", app);
			op_answer_later(op, ERR_NOTFOUND, NULL);
		}
		return op;
	}
	r = postgres_when_ready(pg, op_on_ready, op, &op->wait);
	if (r < 0)
		op_answer_later(op, -1, NULL);
	else if (r == 1)
		op_fork(op);
	return op;
}

struct postgres_op *postgres_provision_async(struct postgres *pg,
					     const char *app,
					     postgres_done_fn fn, void *arg)
{
	return op_start(pg, OP_PROVISION, app, NULL, fn, arg);
}

struct postgres_op *postgres_drop_async(struct postgres *pg, const char *app,
					postgres_done_fn fn, void *arg)
{
	return op_start(pg, OP_DROP, app, NULL, fn, arg);
}

struct postgres_op *postgres_rename_async(struct postgres *pg,
					  const char *from, const char *to,
					  postgres_done_fn fn, void *arg)
{
	return op_start(pg, OP_RENAME, from, to, fn, arg);
}

struct postgres_op *postgres_info_async(struct postgres *pg, const char *app,
					postgres_done_fn fn, void *arg)
{
	return op_start(pg, OP_INFO, app, NULL, fn, arg);
}

void postgres_op_cancel(struct postgres *pg, struct postgres_op *op)
{
	(void)pg;
	if (!op)
		return;
	if (runner_running(&op->run)) {
		/* a statement under way runs to its end: a rename must not
		 * stop half way; nobody is told */
		op->fn = NULL;
		return;
	}
	op_free(op);
}

/* --- a database's size, without blocking --------------------------------- */

#define SIZE_TIMEOUT_MS 10000

struct size_req {
	struct size_req *next;
	struct postgres *pg;
	struct pgresolve *lookup;	/* an outside server's name, first */
	PGconn *conn;
	int fd;			/* registered with the loop, or -1 */
	int querying;		/* connected, query sent */
	uint64_t timer;
	char *app;
	char *ident;
	postgres_size_fn fn;
	void *arg;
};

static void size_free(struct size_req *r)
{
	struct size_req **pp;

	for (pp = &r->pg->sizes; *pp; pp = &(*pp)->next) {
		if (*pp == r) {
			*pp = r->next;
			break;
		}
	}
	if (r->fd >= 0)
		loop_del_fd(r->pg->loop, r->fd);
	if (r->timer)
		loop_del_timer(r->pg->loop, r->timer);
	pgresolve_cancel(r->lookup);
	PQfinish(r->conn);
	free(r->app);
	free(r->ident);
	free(r);
}

static void size_done(struct size_req *r, long long bytes)
{
	postgres_size_fn fn = r->fn;
	void *arg = r->arg;
	char *app = xstrdup(r->app);

	size_free(r);
	fn(arg, app, bytes);
	free(app);
}

static void size_on_fd(struct loop *l, int fd, unsigned events, void *arg);

/* Watch the connection's socket for 'events' (it may change while
 * connecting). */
static int size_watch(struct size_req *r, unsigned events)
{
	int fd = PQsocket(r->conn);

	if (fd < 0)
		return -1;
	if (fd != r->fd) {
		if (r->fd >= 0)
			loop_del_fd(r->pg->loop, r->fd);
		r->fd = -1;
		if (loop_add_fd(r->pg->loop, fd, events, size_on_fd, r) < 0)
			return -1;
		r->fd = fd;
		return 0;
	}
	return loop_mod_fd(r->pg->loop, fd, events);
}

static void size_on_fd(struct loop *l, int fd, unsigned events, void *arg)
{
	struct size_req *r = arg;
	const char *params[1];
	PGresult *res;
	long long bytes = -1;

	if (!r->querying) {
		switch (PQconnectPoll(r->conn)) {
		case PGRES_POLLING_READING:
			if (size_watch(r, LOOP_READ) < 0)
				size_done(r, -1);
			return;
		case PGRES_POLLING_WRITING:
			if (size_watch(r, LOOP_WRITE) < 0)
				size_done(r, -1);
			return;
		case PGRES_POLLING_OK:
			break;
		default:
			size_done(r, -1);
			return;
		}
		params[0] = r->ident;
		if (!PQsendQueryParams(r->conn, "SELECT pg_catalog."
				       "pg_database_size(datname) FROM "
				       "pg_catalog.pg_database WHERE "
				       "datname = $1", 1, NULL, params, NULL,
				       NULL, 0) ||
		    size_watch(r, LOOP_READ) < 0) {
			size_done(r, -1);
			return;
		}
		r->querying = 1;
		/* a short query: it leaves in one write, or the next
		 * read's PQconsumeInput() flushes the rest */
		if (PQflush(r->conn) < 0)
			size_done(r, -1);
		return;
	}
	if (!PQconsumeInput(r->conn)) {
		size_done(r, -1);
		return;
	}
	if (PQflush(r->conn) < 0) {
		size_done(r, -1);
		return;
	}
	if (PQisBusy(r->conn))
		return;
	while ((res = PQgetResult(r->conn))) {
		if (PQresultStatus(res) == PGRES_TUPLES_OK &&
		    PQntuples(res) == 1)
			bytes = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
		PQclear(res);
	}
	size_done(r, bytes);
}

static void size_on_timeout(struct loop *l, void *arg)
{
	struct size_req *r = arg;

	r->timer = 0;
	size_done(r, -1);
}

/* Connect, with the outside server's addresses (h, or NULL: none
 * looked up); 0, or -1 with error_last(). */
static int size_connect(struct size_req *r, const struct pgresolve_hosts *h)
{
	const char *keys[11], *vals[11];
	int n;

	admin_params(r->pg, NULL, keys, vals);
	for (n = 0; keys[n]; n++)
		;
	if (h) {
		keys[n] = "host";
		vals[n++] = h->host;
		keys[n] = "hostaddr";
		vals[n++] = h->hostaddr;
		keys[n] = "port";
		vals[n++] = h->port;
		keys[n] = NULL;
		vals[n] = NULL;
	}
	r->conn = PQconnectStartParams(keys, vals, 1);
	if (!r->conn || PQstatus(r->conn) == CONNECTION_BAD ||
	    PQsetnonblocking(r->conn, 1) < 0 ||
	    size_watch(r, LOOP_WRITE) < 0)
		return error_set("cannot reach PostgreSQL: %s", r->conn ?
				 first_line(PQerrorMessage(r->conn)) :
				 "out of memory");
	return 0;
}

static void size_resolved(void *arg, int result,
			  const struct pgresolve_hosts *h)
{
	struct size_req *r = arg;

	r->lookup = NULL;
	if (result < 0 || size_connect(r, h) < 0) {
		/* as a size that cannot be told: stats says nothing */
		log_debug("postgres: %s", error_last());
		size_done(r, -1);
	}
}

int postgres_size_async(struct postgres *pg, const char *app,
			postgres_size_fn fn, void *arg)
{
	struct size_req *r;
	int looked_up = 1;

	if (app_check(app) < 0)
		return ERR_INVALID;
	if (!pg->external) {
		/* never starts the cluster: only asks one that runs */
		if (!pg->pid)
			return error_set("PostgreSQL is not running");
		if (!pg->password && load_password(pg) < 0)
			return -1;
	}
	r = xcalloc(1, sizeof(*r));
	r->pg = pg;
	r->fd = -1;
	r->fn = fn;
	r->arg = arg;
	r->app = xstrdup(app);
	r->ident = postgres_ident(app);
	r->next = pg->sizes;
	pg->sizes = r;
	/* libpq would resolve an outside server's host name on the loop:
	 * a child looks it up first, anew each time */
	if (pg->external)
		looked_up = pgresolve_start(&r->lookup, pg->loop,
					    pg->external, 0, size_resolved,
					    r);
	if (looked_up < 0 || (looked_up > 0 && size_connect(r, NULL) < 0)) {
		size_free(r);
		return -1;
	}
	/* the lookup, the connection and the answer, all within it */
	r->timer = loop_add_timer(pg->loop, SIZE_TIMEOUT_MS, size_on_timeout,
				  r);
	return 0;
}

/* --- life cycle --------------------------------------------------------- */

int postgres_init(struct postgres **out, const struct config *cfg,
		  struct loop *l)
{
	struct postgres *pg = xcalloc(1, sizeof(*pg));

	*out = NULL;
	pg->loop = l;
	pg->probe_fd = -1;
	runner_init(&pg->initdb);
	runner_init(&pg->useradd);
	supervisor_init(&pg->sup, l, PG_BACKOFF_MIN, PG_BACKOFF_MAX,
			PG_STABLE_MS, restart_postmaster, restart_failed, pg);
	pg->dir = xasprintf("%s/postgres", cfg->root);
	pg->data = xasprintf("%s/data", pg->dir);
	pg->run = xasprintf("%s/run", pg->dir);
	pg->apps = xasprintf("%s/apps", pg->dir);
	pg->conninfo_path = xasprintf("%s/admin.conninfo", pg->dir);
	pg->log_path = xasprintf("%s/postgres.log", pg->dir);
	if (cfg->postgres_bindir)
		pg->bindir_conf = xstrdup(cfg->postgres_bindir);
	if (cfg->postgres && *cfg->postgres) {
		char *err = NULL;
		PQconninfoOption *opts = PQconninfoParse(cfg->postgres, &err);

		if (!opts) {
			error_set("bad 'postgres' conninfo: %s",
				  err ? first_line(err) : "out of memory");
			PQfreemem(err);
			postgres_free(pg);
			return ERR_INVALID;
		}
		PQconninfoFree(opts);
		pg->external = xstrdup(cfg->postgres);
		if (mkdir_p(pg->apps, 0700) < 0) {
			postgres_free(pg);
			return -1;
		}
	} else if (cluster_exists(pg)) {
		/* apps that use it come back with the engine: start it now,
		 * without waiting; the first caller waits for it */
		if (find_bindir(pg) < 0 || find_user(pg) < 0 ||
		    load_password(pg) < 0 || start_postmaster(pg) < 0) {
			postgres_free(pg);
			return -1;
		}
	}
	*out = pg;
	return 0;
}

int postgres_running(const struct postgres *pg)
{
	return pg && pg->pid ? (int)pg->pid : 0;
}

/* The engine stops: initdb is given up (its half-made cluster removed),
 * the poll ends, and nobody waiting is called back. */
static void preparing_stop(struct postgres *pg)
{
	struct postgres_wait *w;

	if (runner_running(&pg->initdb)) {
		runner_cancel(&pg->initdb);
		initdb_cleanup(pg, 1);
	}
	if (runner_running(&pg->useradd)) {
		/* a useradd killed half way leaves the user database locked */
		pg->stopping = 1;
		runner_wait(&pg->useradd);
	}
	loop_del_timer(pg->loop, pg->ready_timer);
	pg->ready_timer = 0;
	probe_end(pg);
	pg->preparing = 0;
	while ((w = pg->waits)) {
		pg->waits = w->next;
		free(w);
	}
}

void postgres_shutdown(struct postgres *pg)
{
	int64_t deadline;
	int status;
	pid_t pid;

	if (!pg)
		return;
	supervisor_cancel(&pg->sup);
	preparing_stop(pg);
	if (!pg->pid)
		return;
	pid = pg->pid;
	pg->pid = 0;
	reaper_forget(pid);
	kill(pid, SIGINT);	/* fast shutdown: roll back, checkpoint, exit */
	deadline = now_ms() + PG_STOP_MS;
	for (;;) {
		pid_t r = waitpid(pid, &status, WNOHANG);

		if (r == pid || (r < 0 && errno == ECHILD))
			break;
		if (now_ms() > deadline) {
			log_warnx("PostgreSQL did not stop in time; "
				  "sending SIGQUIT");
			kill(pid, SIGQUIT);
			deadline = now_ms() + 5000;
			while (waitpid(pid, &status, WNOHANG) == 0 &&
			       now_ms() < deadline)
				nanosleep(&(struct timespec){ 0, 50000000 },
					  NULL);
			kill(pid, SIGKILL);
			waitpid(pid, &status, 0);
			break;
		}
		nanosleep(&(struct timespec){ 0, 20 * 1000 * 1000 }, NULL);
	}
	log_info("PostgreSQL stopped");
}

void postgres_free(struct postgres *pg)
{
	if (!pg)
		return;
	while (pg->sizes)
		size_free(pg->sizes);	/* no answer: the engine is going */
	while (pg->ops)
		op_free(pg->ops);	/* children killed, nobody told */
	preparing_stop(pg);
	supervisor_cancel(&pg->sup);
	if (pg->pid)
		reaper_forget(pg->pid);
	free(pg->external);
	free(pg->dir);
	free(pg->data);
	free(pg->run);
	free(pg->apps);
	free(pg->conninfo_path);
	free(pg->log_path);
	free(pg->bindir);
	free(pg->bindir_conf);
	if (pg->password)
		explicit_bzero(pg->password, strlen(pg->password));
	free(pg->password);
	free(pg);
}
