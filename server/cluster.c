/* cluster: see cluster.h and docs/cluster.md. */
#include "cluster.h"

#include <errno.h>
#include <fcntl.h>
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "app.h"
#include "config.h"
#include "engine.h"
#include "log.h"
#include "logger.h"
#include "loop.h"
#include "release.h"
#include "util.h"
#include "version.h"
#include "banned.h"

#define HEARTBEAT_MS 2000
#define RECONCILE_MS 5000
#define CONNECT_TIMEOUT_MS 10000
#define RETRY_MIN_MS 500
#define RETRY_MAX_MS 5000
#define QUERY_STUCK_MS 60000	/* an answer this late: drop the connection */
#define CHUNK_BYTES (1024 * 1024)
#define BUNDLE_MAX (4L * 1024 * 1024 * 1024)
#define CHANNEL "berth_cluster"
#define SCHEMA_VERSION 1
/* per-host config that never leaves its host */
#define LOCAL_KEY "DATABASE_URL"

/*
 * The tables (docs/cluster.md).  One transaction under an advisory lock:
 * hosts that join at once would otherwise race on CREATE TABLE.
 */
static const char schema_sql[] =
	"BEGIN;"
	"SELECT pg_advisory_xact_lock(4242180001);"
	"CREATE TABLE IF NOT EXISTS berth_schema (version int NOT NULL);"
	"INSERT INTO berth_schema SELECT 0 WHERE NOT EXISTS "
	" (SELECT 1 FROM berth_schema);"
	"CREATE TABLE IF NOT EXISTS berth_hosts ("
	" name text PRIMARY KEY, address text NOT NULL,"
	" groups text[] NOT NULL, version text NOT NULL,"
	" heartbeat timestamptz NOT NULL, started timestamptz NOT NULL);"
	"CREATE TABLE IF NOT EXISTS berth_apps ("
	" name text PRIMARY KEY, grp text NOT NULL DEFAULT 'default',"
	" release int NOT NULL DEFAULT 0,"
	" config_version int NOT NULL DEFAULT 0, origin text);"
	"CREATE TABLE IF NOT EXISTS berth_releases ("
	" app text NOT NULL REFERENCES berth_apps ON DELETE CASCADE,"
	" number int NOT NULL, commit text, source text, origin text,"
	" size bigint NOT NULL, created timestamptz NOT NULL DEFAULT now(),"
	" PRIMARY KEY (app, number));"
	"CREATE TABLE IF NOT EXISTS berth_release_chunks ("
	" app text NOT NULL, number int NOT NULL, seq int NOT NULL,"
	" data bytea NOT NULL, PRIMARY KEY (app, number, seq),"
	" FOREIGN KEY (app, number) REFERENCES berth_releases"
	" ON DELETE CASCADE);"
	"CREATE TABLE IF NOT EXISTS berth_config ("
	" app text NOT NULL REFERENCES berth_apps ON DELETE CASCADE,"
	" key text NOT NULL, value text NOT NULL, PRIMARY KEY (app, key));"
	"CREATE TABLE IF NOT EXISTS berth_scale ("
	" app text NOT NULL REFERENCES berth_apps ON DELETE CASCADE,"
	" type text NOT NULL, count int NOT NULL, PRIMARY KEY (app, type));"
	"CREATE TABLE IF NOT EXISTS berth_host_apps ("
	" host text NOT NULL REFERENCES berth_hosts ON DELETE CASCADE,"
	" app text NOT NULL REFERENCES berth_apps ON DELETE CASCADE,"
	" release int NOT NULL DEFAULT 0, failed int NOT NULL DEFAULT 0,"
	" config_version int NOT NULL DEFAULT 0, local_release int,"
	" status text NOT NULL, updated timestamptz NOT NULL,"
	" PRIMARY KEY (host, app));"
	"CREATE TABLE IF NOT EXISTS berth_deploys ("
	" id bigserial PRIMARY KEY, app text NOT NULL, release int,"
	" host text NOT NULL, source text, result text NOT NULL,"
	" at timestamptz NOT NULL DEFAULT now());"
	"UPDATE berth_schema SET version = 1 WHERE version < 1;"
	"COMMIT;";

struct cluster;
/* res: the first failed result of the query, else its last; NULL when
 * it could not run (no connection).  Borrowed: freed after the call. */
typedef void (*cl_result_fn)(struct cluster *cl, PGresult *res, void *arg);

/* Queries of one transaction, queued together; done() after the last. */
struct cl_job {
	int failed;
	char *error;
	void (*done)(struct cluster *cl, struct cl_job *job);
	char *app;
	int number;		/* publish: the local release */
	int release;		/* the cluster's release it became */
	struct client *c;
};

struct cl_query {
	struct cl_query *next;
	char *sql;
	int nparams;		/* -1: several statements, no parameters */
	char **vals;
	int *lens;
	int *fmts;
	int binary;		/* results in binary */
	cl_result_fn fn;
	void *arg;
	struct cl_job *job;
};

/* A deploy this host started from the cluster's tables. */
struct cl_pending {
	struct cl_pending *next;
	char *app;
	int release;		/* cluster release it brings, 0: config only */
	int config_version;
	int failed;		/* a fetch step failed */
	int rollback;		/* going back to the release before */
	char *commit;
	struct strv config;	/* the cluster's KEY=VALUE */
};

/* What this host has applied (the tables may not know it yet). */
struct cl_applied {
	struct cl_applied *next;
	char *app;
	int release;
	int config_version;
	int config_failed;	/* a config version whose deploy failed */
	int rolled_back;	/* a release this host went back from */
};

enum cl_state { CL_DOWN, CL_CONNECTING, CL_READY };

struct cluster {
	struct engine *e;
	char *conninfo;
	char *name;
	char *address;
	char *groups;		/* "{web,api}", a text[] literal */
	char *first_group;
	PGconn *conn;
	enum cl_state state;
	int fd;
	unsigned events;
	uint64_t connect_timer, retry_timer, heartbeat_timer, reconcile_timer;
	long backoff_ms;
	struct cl_query *head, *tail, *inflight;
	int64_t inflight_ms;	/* when the query out was sent */
	PGresult *first_err, *last;
	int reconciling, reconcile_again, heartbeat_queued;
	struct cl_pending *pending;
	struct cl_applied *applied;
	char *last_error;
};

static void reconcile(struct cluster *cl);
static void on_fd(struct loop *l, int fd, unsigned events, void *arg);
static void connect_start(struct cluster *cl);

/* ---------- queries ---------- */

static void query_free(struct cl_query *q)
{
	int i;

	if (!q)
		return;
	for (i = 0; i < q->nparams; i++)
		free(q->vals[i]);
	free(q->vals);
	free(q->lens);
	free(q->fmts);
	free(q->sql);
	free(q);
}

/*
 * Queue a query.  vals[i] NULL is SQL NULL; lens NULL: every value is
 * text, else lens[i] >= 0 makes value i binary of that length.
 */
static void q_push(struct cluster *cl, struct cl_job *job, cl_result_fn fn,
		   void *arg, int binary, const char *sql, int n,
		   const char *const *vals, const int *lens)
{
	struct cl_query *q = xcalloc(1, sizeof(*q));
	int i;

	q->sql = xstrdup(sql);
	q->nparams = n;
	q->binary = binary;
	q->fn = fn;
	q->arg = arg;
	q->job = job;
	if (n > 0) {
		q->vals = xcalloc((size_t)n, sizeof(*q->vals));
		q->lens = xcalloc((size_t)n, sizeof(*q->lens));
		q->fmts = xcalloc((size_t)n, sizeof(*q->fmts));
	}
	for (i = 0; i < n; i++) {
		size_t len;

		if (!vals[i])
			continue;
		len = lens && lens[i] >= 0 ? (size_t)lens[i] : strlen(vals[i]);
		q->vals[i] = xmalloc(len + 1);
		memcpy(q->vals[i], vals[i], len);
		q->vals[i][len] = '\0';
		q->lens[i] = (int)len;
		q->fmts[i] = lens && lens[i] >= 0;
	}
	if (cl->tail)
		cl->tail->next = q;
	else
		cl->head = q;
	cl->tail = q;
}

static void q_text(struct cluster *cl, struct cl_job *job, cl_result_fn fn,
		   void *arg, const char *sql, int n, const char *const *vals)
{
	q_push(cl, job, fn, arg, 0, sql, n, vals, NULL);
}

static const char *res_error(const PGresult *res)
{
	const char *m = res ? PQresultErrorMessage(res) : NULL;

	return m && *m ? m : "no connection to the cluster database";
}

static int res_ok(const PGresult *res)
{
	return res && (PQresultStatus(res) == PGRES_COMMAND_OK ||
		       PQresultStatus(res) == PGRES_TUPLES_OK);
}

static void job_free(struct cl_job *job)
{
	if (!job)
		return;
	free(job->error);
	free(job->app);
	free(job);
}

/* The job's last query: report, then free it. */
static void job_end(struct cluster *cl, PGresult *res, void *arg)
{
	struct cl_job *job = arg;

	if (!res_ok(res) && !job->failed) {
		job->failed = 1;
		job->error = xstrdup(res_error(res));
	}
	if (job->done)
		job->done(cl, job);
	job_free(job);
}

static void set_events(struct cluster *cl, unsigned events)
{
	if (cl->fd < 0 || events == cl->events)
		return;
	if (loop_mod_fd(cl->e->loop, cl->fd, events) == 0)
		cl->events = events;
}

static void flush_out(struct cluster *cl)
{
	int r = PQflush(cl->conn);

	set_events(cl, LOOP_READ | (r == 1 ? LOOP_WRITE : 0));
}

static void connection_lost(struct cluster *cl, const char *why);

/* Send the next query if none is out. */
static void pump(struct cluster *cl)
{
	struct cl_query *q;
	int r;

	if (cl->state != CL_READY || cl->inflight || !cl->head)
		return;
	q = cl->head;
	cl->head = q->next;
	if (!cl->head)
		cl->tail = NULL;
	q->next = NULL;
	cl->inflight = q;
	cl->inflight_ms = now_ms();
	if (q->nparams < 0)
		r = PQsendQuery(cl->conn, q->sql);
	else
		r = PQsendQueryParams(cl->conn, q->sql, q->nparams, NULL,
				      (const char *const *)q->vals, q->lens,
				      q->fmts, q->binary);
	if (!r) {
		connection_lost(cl, PQerrorMessage(cl->conn));
		return;
	}
	flush_out(cl);
}

/* Call a query's callback with res and free the query. */
static void query_done(struct cluster *cl, struct cl_query *q,
		       PGresult *res)
{
	if (q->job && !res_ok(res) && !q->job->failed) {
		q->job->failed = 1;
		q->job->error = xstrdup(res_error(res));
	}
	if (q->fn)
		q->fn(cl, res, q->arg);
	query_free(q);
}

static void fail_all(struct cluster *cl)
{
	struct cl_query *q;

	if (cl->inflight) {
		q = cl->inflight;
		cl->inflight = NULL;
		query_done(cl, q, NULL);
	}
	while ((q = cl->head)) {
		cl->head = q->next;
		if (!cl->head)
			cl->tail = NULL;
		query_done(cl, q, NULL);
	}
	PQclear(cl->first_err);
	PQclear(cl->last);
	cl->first_err = cl->last = NULL;
}

static void stop_timers(struct cluster *cl)
{
	loop_del_timer(cl->e->loop, cl->connect_timer);
	loop_del_timer(cl->e->loop, cl->heartbeat_timer);
	loop_del_timer(cl->e->loop, cl->reconcile_timer);
	cl->connect_timer = cl->heartbeat_timer = cl->reconcile_timer = 0;
}

static void close_conn(struct cluster *cl)
{
	if (cl->fd >= 0)
		loop_del_fd(cl->e->loop, cl->fd);
	cl->fd = -1;
	cl->events = 0;
	PQfinish(cl->conn);
	cl->conn = NULL;
}

static void on_retry(struct loop *l, void *arg)
{
	struct cluster *cl = arg;

	cl->retry_timer = 0;
	connect_start(cl);
}

/* The first line of a libpq message, in a static buffer. */
static const char *first_line(const char *s)
{
	static char line[512];
	size_t n = strcspn(s ? s : "", "\n");

	if (n >= sizeof(line))
		n = sizeof(line) - 1;
	memcpy(line, s ? s : "", n);
	line[n] = '\0';
	return line;
}

static int num_of(const char *s)
{
	long v = strtol(s ? s : "0", NULL, 10);

	return v > 0 && v < (1L << 30) ? (int)v : 0;
}

static void connection_lost(struct cluster *cl, const char *why)
{
	char *line = xstrdup(first_line(why && *why ? why : "connection lost"));

	/* said once per kind of failure, not at every retry */
	if (cl->state == CL_READY || !cl->last_error ||
	    strcmp(cl->last_error, line))
		log_warnx("cluster: %s (retrying)", line);
	free(cl->last_error);
	cl->last_error = line;
	cl->state = CL_DOWN;
	stop_timers(cl);
	close_conn(cl);
	cl->reconciling = cl->reconcile_again = cl->heartbeat_queued = 0;
	fail_all(cl);
	loop_del_timer(cl->e->loop, cl->retry_timer);
	cl->retry_timer = loop_add_timer(cl->e->loop, cl->backoff_ms,
					 on_retry, cl);
	cl->backoff_ms *= 2;
	if (cl->backoff_ms > RETRY_MAX_MS)
		cl->backoff_ms = RETRY_MAX_MS;
}

static void read_results(struct cluster *cl)
{
	PGnotify *n;
	int notified = 0;

	if (!PQconsumeInput(cl->conn)) {
		connection_lost(cl, PQerrorMessage(cl->conn));
		return;
	}
	while (cl->state == CL_READY && cl->inflight && !PQisBusy(cl->conn)) {
		PGresult *res = PQgetResult(cl->conn);
		struct cl_query *q;

		if (res) {
			ExecStatusType st = PQresultStatus(res);

			if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK &&
			    st != PGRES_EMPTY_QUERY && !cl->first_err) {
				cl->first_err = res;
			} else {
				PQclear(cl->last);
				cl->last = res;
			}
			continue;
		}
		q = cl->inflight;
		cl->inflight = NULL;
		{
			/* detached first: the callback may lose the
			 * connection, which clears what is collected */
			PGresult *fe = cl->first_err, *la = cl->last;

			cl->first_err = cl->last = NULL;
			query_done(cl, q, fe ? fe : la);
			PQclear(fe);
			PQclear(la);
		}
		pump(cl);
	}
	if (cl->state != CL_READY)
		return;
	while ((n = PQnotifies(cl->conn))) {
		notified = 1;
		PQfreemem(n);
	}
	if (notified)
		reconcile(cl);
}

/* ---------- joining ---------- */

static void register_host(struct cluster *cl)
{
	const char *v[4] = { cl->name, cl->address, cl->groups, BERTH_VERSION };

	q_text(cl, NULL, NULL, NULL,
	       "INSERT INTO berth_hosts (name, address, groups, version, "
	       "heartbeat, started) VALUES ($1, $2, $3::text[], $4, now(), "
	       "now()) ON CONFLICT (name) DO UPDATE SET address = $2, "
	       "groups = $3::text[], version = $4, heartbeat = now()",
	       4, v);
}

static void on_heartbeat_done(struct cluster *cl, PGresult *res, void *arg)
{
	cl->heartbeat_queued = 0;
	if (res && !res_ok(res))
		log_warnx("cluster: heartbeat: %s", first_line(res_error(res)));
}

static void on_heartbeat(struct loop *l, void *arg)
{
	struct cluster *cl = arg;
	const char *v[1] = { cl->name };

	cl->heartbeat_timer = loop_add_timer(l, HEARTBEAT_MS, on_heartbeat, cl);
	if (cl->inflight && now_ms() - cl->inflight_ms > QUERY_STUCK_MS) {
		connection_lost(cl, "no answer from the cluster database for 60 s");
		return;
	}
	if (cl->heartbeat_queued)
		return;
	cl->heartbeat_queued = 1;
	q_text(cl, NULL, on_heartbeat_done, NULL,
	       "UPDATE berth_hosts SET heartbeat = now() WHERE name = $1",
	       1, v);
	pump(cl);
}

static void on_reconcile_timer(struct loop *l, void *arg)
{
	struct cluster *cl = arg;

	cl->reconcile_timer = loop_add_timer(l, RECONCILE_MS,
					     on_reconcile_timer, cl);
	reconcile(cl);
}

static void on_schema(struct cluster *cl, PGresult *res, void *arg)
{
	if (res && !res_ok(res))
		log_warnx("cluster: cannot create the tables: %s",
			  first_line(res_error(res)));
}

static void on_joined(struct cluster *cl, PGresult *res, void *arg)
{
	if (!res_ok(res))
		return;
	log_info("cluster: joined as %s (groups %s, address %s)", cl->name,
		 cl->groups, cl->address);
}

/* "relation already exists, skipping" and such: not for the log */
static void quiet_notice(void *arg, const char *message)
{
}

static void ready(struct cluster *cl)
{
	const char *v[1] = { cl->name };

	loop_del_timer(cl->e->loop, cl->connect_timer);
	cl->connect_timer = 0;
	cl->state = CL_READY;
	cl->backoff_ms = RETRY_MIN_MS;
	PQsetNoticeProcessor(cl->conn, quiet_notice, NULL);
	FREE_AND_NULL(cl->last_error);
	set_events(cl, LOOP_READ);
	q_push(cl, NULL, on_schema, NULL, 0, schema_sql, -1, NULL, NULL);
	q_push(cl, NULL, NULL, NULL, 0, "LISTEN " CHANNEL, -1, NULL, NULL);
	register_host(cl);
	q_text(cl, NULL, on_joined, NULL,
	       "SELECT pg_notify('" CHANNEL "', $1)", 1, v);
	cl->heartbeat_timer = loop_add_timer(cl->e->loop, HEARTBEAT_MS,
					     on_heartbeat, cl);
	cl->reconcile_timer = loop_add_timer(cl->e->loop, RECONCILE_MS,
					     on_reconcile_timer, cl);
	pump(cl);
	reconcile(cl);
}

static void connect_poll(struct cluster *cl)
{
	PostgresPollingStatusType r = PQconnectPoll(cl->conn);
	unsigned want;
	int fd;

	switch (r) {
	case PGRES_POLLING_OK:
		ready(cl);
		return;
	case PGRES_POLLING_FAILED:
		connection_lost(cl, PQerrorMessage(cl->conn));
		return;
	case PGRES_POLLING_READING:
	case PGRES_POLLING_WRITING:
	default:
		break;
	}
	/* libpq may move to another socket (several hosts in conninfo) */
	want = r == PGRES_POLLING_WRITING ? LOOP_WRITE : LOOP_READ;
	fd = PQsocket(cl->conn);
	if (fd != cl->fd) {
		if (cl->fd >= 0)
			loop_del_fd(cl->e->loop, cl->fd);
		cl->fd = -1;
		cl->events = 0;
		if (fd < 0 || loop_add_fd(cl->e->loop, fd, LOOP_READ, on_fd,
					  cl) < 0) {
			connection_lost(cl, "cannot watch the connection");
			return;
		}
		cl->fd = fd;
		cl->events = LOOP_READ;
	}
	set_events(cl, want);
}

static void on_fd(struct loop *l, int fd, unsigned events, void *arg)
{
	struct cluster *cl = arg;

	if (cl->state == CL_CONNECTING) {
		connect_poll(cl);
		return;
	}
	if (cl->state != CL_READY)
		return;
	if (events & LOOP_READ)
		cl->inflight_ms = now_ms();	/* slow, but it moves */
	if (events & LOOP_WRITE)
		flush_out(cl);
	if (cl->state == CL_READY && (events & (LOOP_READ | LOOP_ERROR)))
		read_results(cl);
}

static void on_connect_timeout(struct loop *l, void *arg)
{
	struct cluster *cl = arg;

	cl->connect_timer = 0;
	if (cl->state == CL_CONNECTING)
		connection_lost(cl, "no answer from the cluster database within 10 s");
}

static void connect_start(struct cluster *cl)
{
	/* Defaults first: the conninfo (dbname, expanded) may override them.
	 * A cut network must end the connection within seconds, not the
	 * kernel's two hours, so that the host reconnects and catches up. */
	const char *keys[] = { "keepalives_idle", "keepalives_interval",
			       "keepalives_count", "tcp_user_timeout",
			       "application_name", "dbname", NULL };
	const char *vals[] = { "5", "2", "3", "15000", "berth-cluster",
			       cl->conninfo, NULL };
	int fd;

	cl->conn = PQconnectStartParams(keys, vals, 1);
	if (!cl->conn || PQstatus(cl->conn) == CONNECTION_BAD ||
	    PQsetnonblocking(cl->conn, 1) < 0) {
		connection_lost(cl, cl->conn ? PQerrorMessage(cl->conn) :
				"out of memory");
		return;
	}
	cl->state = CL_CONNECTING;
	fd = PQsocket(cl->conn);
	if (fd < 0 || loop_add_fd(cl->e->loop, fd, LOOP_WRITE, on_fd, cl) < 0) {
		connection_lost(cl, "cannot watch the connection");
		return;
	}
	cl->fd = fd;
	cl->events = LOOP_WRITE;
	cl->connect_timer = loop_add_timer(cl->e->loop, CONNECT_TIMEOUT_MS,
					   on_connect_timeout, cl);
}

/* ---------- what this host applied ---------- */

static struct cl_applied *applied_get(struct cluster *cl, const char *app)
{
	struct cl_applied *ap;

	for (ap = cl->applied; ap; ap = ap->next)
		if (!strcmp(ap->app, app))
			return ap;
	ap = xcalloc(1, sizeof(*ap));
	ap->app = xstrdup(app);
	ap->next = cl->applied;
	cl->applied = ap;
	return ap;
}

static struct cl_pending *pending_find(struct cluster *cl, const char *app)
{
	struct cl_pending *p;

	for (p = cl->pending; p; p = p->next)
		if (!strcmp(p->app, app))
			return p;
	return NULL;
}

static void pending_drop(struct cluster *cl, struct cl_pending *p)
{
	struct cl_pending **pp;

	for (pp = &cl->pending; *pp; pp = &(*pp)->next) {
		if (*pp == p) {
			*pp = p->next;
			break;
		}
	}
	free(p->app);
	free(p->commit);
	strv_release(&p->config);
	free(p);
}

static void int_text(char *out, size_t len, int v)
{
	snprintf(out, len, "%d", v);
}

/*
 * Write what this host runs of app into the tables, then NOTIFY.
 * release/failed/config_version 0: keep what the row says.
 */
static void record(struct cluster *cl, const char *app, int release,
		   int failed, int config_version, int local,
		   const char *status, const char *source)
{
	char r[16], f[16], cv[16], lr[16];
	const char *v[7] = { cl->name, app, NULL, NULL, NULL, NULL, status };
	const char *h[5] = { app, NULL, cl->name, source, status };
	struct cl_job *job;

	if (cl->state != CL_READY)
		return;		/* the next reconcile writes it */
	int_text(r, sizeof(r), release);
	int_text(f, sizeof(f), failed);
	int_text(cv, sizeof(cv), config_version);
	int_text(lr, sizeof(lr), local);
	v[2] = release ? r : NULL;
	v[3] = failed ? f : release ? "0" : NULL;
	v[4] = config_version ? cv : NULL;
	v[5] = local ? lr : NULL;
	h[1] = release ? r : failed ? f : NULL;
	job = xcalloc(1, sizeof(*job));
	q_push(cl, job, NULL, NULL, 0, "BEGIN", 0, NULL, NULL);
	q_text(cl, job, NULL, NULL,
	       "INSERT INTO berth_host_apps (host, app, release, failed, "
	       "config_version, local_release, status, updated) "
	       "VALUES ($1, $2, COALESCE($3::int, 0), COALESCE($4::int, 0), "
	       "COALESCE($5::int, 0), $6::int, $7, now()) "
	       "ON CONFLICT (host, app) DO UPDATE SET "
	       "release = COALESCE($3::int, berth_host_apps.release), "
	       "failed = COALESCE($4::int, berth_host_apps.failed), "
	       "config_version = COALESCE($5::int, "
	       "berth_host_apps.config_version), "
	       "local_release = COALESCE($6::int, "
	       "berth_host_apps.local_release), status = $7, updated = now()",
	       7, v);
	if (source)
		q_text(cl, job, NULL, NULL,
		       "INSERT INTO berth_deploys (app, release, host, source, "
		       "result) VALUES ($1, $2::int, $3, $4, $5)", 5, h);
	q_text(cl, job, NULL, NULL, "SELECT pg_notify('" CHANNEL "', $1)",
	       1, v);
	q_push(cl, NULL, job_end, job, 0, "COMMIT", 0, NULL, NULL);
	pump(cl);
}

/* ---------- bringing the cluster's state here ---------- */

/* "KEY=VALUE" and "KEY" changes that turn have into want; the
 * host's own keys stay. */
static void config_diff(struct strv *out, const struct strv *have,
			const struct strv *want)
{
	size_t i;

	for (i = 0; i < want->n; i++) {
		const char *eq = strchr(want->v[i], '=');
		char *k = xstrndup(want->v[i], eq ? (size_t)(eq - want->v[i]) :
				   strlen(want->v[i]));
		long j = strv_env_find(have, k);

		if (strcmp(k, LOCAL_KEY) &&
		    (j < 0 || strcmp(have->v[j], want->v[i])))
			strv_push(out, want->v[i]);
		free(k);
	}
	for (i = 0; i < have->n; i++) {
		const char *eq = strchr(have->v[i], '=');
		char *k = xstrndup(have->v[i], eq ? (size_t)(eq - have->v[i]) :
				   strlen(have->v[i]));

		if (strcmp(k, LOCAL_KEY) && strv_env_find(want, k) < 0)
			strv_push(out, k);
		free(k);
	}
}

static void on_config_rows(struct cluster *cl, PGresult *res, void *arg)
{
	struct cl_pending *p = arg;
	int i;

	if (!res_ok(res)) {
		p->failed = 1;
		return;
	}
	for (i = 0; i < PQntuples(res); i++) {
		const char *k = PQgetvalue(res, i, 0), *v = PQgetvalue(res, i, 1);

		/* the env file is KEY=VALUE lines: nothing else gets in */
		if (!env_key_valid(k) || strchr(v, '\n') || strchr(v, '\r')) {
			log_warnx("cluster: '%s' has a config var berth cannot take ('%.40s'): skipped",
				  p->app, k);
			continue;
		}
		strv_pushf(&p->config, "%s=%s", k, v);
	}
}

static void on_release_row(struct cluster *cl, PGresult *res, void *arg)
{
	struct cl_pending *p = arg;

	if (!res_ok(res) || PQntuples(res) != 1) {
		p->failed = 1;
		return;
	}
	/* a commit id, or nothing (it goes into the release's meta lines) */
	if (!PQgetisnull(res, 0, 0) && PQgetlength(res, 0, 0) <= 64 &&
	    strspn(PQgetvalue(res, 0, 0), "0123456789abcdef") ==
	    (size_t)PQgetlength(res, 0, 0))
		p->commit = xstrdup(PQgetvalue(res, 0, 0));
}

/* Start the local deploy of p (its bundle at path, or none for config
 * only); the hook (on_deploy_end) records how it went. */
static void pending_deploy(struct cluster *cl, struct cl_pending *p,
			   const char *path)
{
	struct app *a = app_find(cl->e, p->app);
	struct deploy_opts o;
	struct strv changes = STRV_INIT, none = STRV_INIT;

	config_diff(&changes, a ? &a->env : &none, &p->config);
	if (!path && !changes.n) {
		/* the config is already what the cluster says */
		record(cl, p->app, 0, 0, p->config_version, 0, "live", NULL);
		applied_get(cl, p->app)->config_version = p->config_version;
		pending_drop(cl, p);
		goto out;
	}
	if (!path && (!a || !a->live || a->stopped)) {
		/* nothing runs: the next start or release takes it (left) */
		pending_drop(cl, p);
		goto out;
	}
	memset(&o, 0, sizeof(o));
	o.source = "cluster";
	o.commit = p->commit;
	o.bundle = path;
	o.move = 1;
	o.from_live = !path;
	o.env_changes = changes.n ? &changes : NULL;
	if (a)
		logger_linef(a->log, "berth", "cluster: %s",
			     path ? "bringing the cluster's release here" :
			     "applying the cluster's config");
	app_deploy(cl->e, p->app, DEPLOY_NEW, &o, NULL);
	/* refused at once (the hook never ran): try again later */
	a = app_find(cl->e, p->app);
	if (pending_find(cl, p->app) == p && (!a || (!a->deploy &&
						     !a->waiting))) {
		log_warnx("cluster: could not start the deploy of '%s'",
			  p->app);
		pending_drop(cl, p);
	}
out:
	strv_release(&changes);
}

static void on_config_only(struct cluster *cl, PGresult *res, void *arg)
{
	struct cl_pending *p = arg;

	if (!res_ok(res) || p->failed) {
		pending_drop(cl, p);
		return;
	}
	pending_deploy(cl, p, NULL);
}

static void on_chunks(struct cluster *cl, PGresult *res, void *arg)
{
	struct cl_pending *p = arg;
	char *dir = NULL, *path = NULL;
	long total = 0;
	int fd = -1, i, ok = 0;

	if (!res_ok(res) || p->failed || PQntuples(res) == 0) {
		log_warnx("cluster: cannot read release %d of '%s': %s",
			  p->release, p->app, res_ok(res) ?
			  "no bundle stored" : first_line(res_error(res)));
		goto out;
	}
	dir = engine_path(cl->e, "run/cluster");
	path = xasprintf("%s/%s.%d.tar.gz", dir, p->app, p->release);
	if (mkdir_p(dir, 0700) < 0) {
		log_warnx("cluster: %s", error_last());
		goto out;
	}
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW,
		  0600);
	if (fd < 0) {
		log_warn("cluster: cannot create '%s'", path);
		goto out;
	}
	for (i = 0; i < PQntuples(res); i++) {
		int len = PQgetlength(res, i, 0);

		total += len;
		if (total > BUNDLE_MAX ||
		    write_all(fd, PQgetvalue(res, i, 0), (size_t)len) < 0) {
			log_warnx("cluster: cannot write '%s'", path);
			goto out;
		}
	}
	if (close(fd) < 0) {
		fd = -1;
		log_warn("cluster: cannot write '%s'", path);
		goto out;
	}
	fd = -1;
	ok = 1;
out:
	if (fd >= 0)
		close(fd);
	if (ok) {
		pending_deploy(cl, p, path);
	} else {
		if (path)
			unlink(path);
		pending_drop(cl, p);
	}
	free(dir);
	free(path);
}

static void fetch(struct cluster *cl, const char *app, int release,
		  int config_version)
{
	struct cl_pending *p = xcalloc(1, sizeof(*p));
	char r[16];
	const char *v[2] = { app, r };

	p->app = xstrdup(app);
	p->release = release;
	p->config_version = config_version;
	p->next = cl->pending;
	cl->pending = p;
	int_text(r, sizeof(r), release);
	q_text(cl, NULL, on_config_rows, p,
	       "SELECT key, value FROM berth_config WHERE app = $1 "
	       "ORDER BY key", 1, v);
	if (!release) {
		q_text(cl, NULL, on_config_only, p, "SELECT 1", 0, NULL);
		return;
	}
	q_text(cl, NULL, on_release_row, p,
	       "SELECT commit FROM berth_releases WHERE app = $1 AND "
	       "number = $2::int", 2, v);
	q_push(cl, NULL, on_chunks, p, 1,
	       "SELECT data FROM berth_release_chunks WHERE app = $1 AND "
	       "number = $2::int ORDER BY seq", 2, v, NULL);
}

/*
 * The rollout of release stopped (a host failed it) after this host had
 * switched: back to the local release live before it, code and config,
 * as "rollback" does (without publishing it).
 */
static void rollback_here(struct cluster *cl, struct app *a, int release)
{
	int *nums, number = 0;
	size_t n = release_list(a->dir, &nums), i;
	struct deploy_opts o;
	struct cl_pending *p;
	char *bundle;

	for (i = n; i-- > 0 && !number;) {
		if (nums[i] >= a->release || !release_went_live(a->dir, nums[i]))
			continue;
		bundle = release_path(a->dir, nums[i], "bundle.tar.gz");
		if (path_exists(bundle))
			number = nums[i];
		free(bundle);
	}
	free(nums);
	applied_get(cl, a->name)->rolled_back = release;
	if (!number) {
		log_warnx("cluster: release %d of '%s' failed on another host, and this host has no earlier release to go back to",
			  release, a->name);
		return;
	}
	log_warnx("cluster: release %d of '%s' failed on another host: back to release %d here",
		  release, a->name, number);
	logger_linef(a->log, "berth", "cluster: release %d failed on another host: back to release %d",
		     release, number);
	p = xcalloc(1, sizeof(*p));
	p->app = xstrdup(a->name);
	p->release = release - 1;
	p->rollback = 1;
	p->config_version = 0;
	p->next = cl->pending;
	cl->pending = p;
	memset(&o, 0, sizeof(o));
	o.source = "cluster";
	o.from_release = number;
	app_deploy(cl->e, a->name, DEPLOY_NEW, &o, NULL);
	a = app_find(cl->e, p->app);
	if (pending_find(cl, p->app) == p && (!a || (!a->deploy &&
						     !a->waiting)))
		pending_drop(cl, p);
}

/* One app of this host's groups, as the tables say. */
static void reconcile_app(struct cluster *cl, const char *name, int release,
			  int config_version, int my_release, int my_failed,
			  int my_config, int wait, int halted)
{
	struct app *a;
	struct cl_applied *ap;
	int here;

	/* the name makes paths here (run/cluster/NAME.N.tar.gz) */
	if (!app_name_valid(name))
		return;
	a = app_find(cl->e, name);
	ap = applied_get(cl, name);
	here = a && a->release > 0 && !a->removing;

	if (pending_find(cl, name) || (a && (a->deploy || a->waiting)))
		return;
	/* applied while the tables could not hear it: say so now */
	if (here && ap->release > my_release && ap->release <= release) {
		record(cl, name, ap->release, 0, 0, 0, "live", NULL);
		my_release = ap->release;
	}
	if (here && halted && my_release == release && release > 1) {
		if (ap->rolled_back != release)
			rollback_here(cl, a, release);
		return;
	}
	if (!here || my_release < release) {
		if (my_failed != release && !halted && !wait) {
			log_info("cluster: bringing release %d of '%s' here",
				 release, name);
			fetch(cl, name, release, config_version);
			return;
		}
		/* not its turn, or the rollout stopped: the config still
		 * comes, onto the release this host runs */
		if (!here)
			return;
	}
	if (ap->config_version > my_config && ap->config_version <=
	    config_version) {
		record(cl, name, 0, 0, ap->config_version, 0, "live", NULL);
		my_config = ap->config_version;
	}
	if (my_config < config_version && ap->config_failed != config_version)
		fetch(cl, name, 0, config_version);
}

static void on_reconcile(struct cluster *cl, PGresult *res, void *arg)
{
	int i;

	cl->reconciling = 0;
	if (!res_ok(res)) {
		if (res)
			log_warnx("cluster: cannot read the cluster's apps: %s",
				  first_line(res_error(res)));
		return;
	}
	if (cl->e->stopping)
		return;
	for (i = 0; i < PQntuples(res); i++)
		reconcile_app(cl, PQgetvalue(res, i, 0),
			      num_of(PQgetvalue(res, i, 1)),
			      num_of(PQgetvalue(res, i, 2)),
			      num_of(PQgetvalue(res, i, 3)),
			      num_of(PQgetvalue(res, i, 4)),
			      num_of(PQgetvalue(res, i, 5)),
			      PQgetvalue(res, i, 6)[0] == 't',
			      PQgetvalue(res, i, 7)[0] == 't');
	if (cl->reconcile_again) {
		cl->reconcile_again = 0;
		reconcile(cl);
	}
	pump(cl);
}

/*
 * Per app of this host's groups: the cluster's release and config, what
 * this host has of them, whether a live host of the group that comes
 * before this one (by name) has not run the release yet (wait), and
 * whether any host failed it (halted: the rollout stopped).
 */
static void reconcile(struct cluster *cl)
{
	char down[16];
	const char *v[3] = { cl->name, cl->groups, down };

	if (cl->state != CL_READY || cl->e->stopping)
		return;
	if (cl->reconciling) {
		cl->reconcile_again = 1;
		return;
	}
	cl->reconciling = 1;
	int_text(down, sizeof(down), CLUSTER_DOWN_AFTER_S);
	q_text(cl, NULL, on_reconcile, NULL,
	       "SELECT a.name, a.release, a.config_version, "
	       " COALESCE(m.release, 0), COALESCE(m.failed, 0), "
	       " COALESCE(m.config_version, 0), "
	       " EXISTS (SELECT 1 FROM berth_hosts h LEFT JOIN "
	       "  berth_host_apps x ON x.host = h.name AND x.app = a.name "
	       "  WHERE h.name COLLATE \"C\" < $1 AND a.grp = ANY (h.groups) "
	       "  AND h.heartbeat > now() - make_interval(secs => $3::int) "
	       "  AND COALESCE(x.release, 0) < a.release "
	       "  AND COALESCE(x.failed, 0) <> a.release), "
	       " EXISTS (SELECT 1 FROM berth_host_apps x WHERE x.app = a.name "
	       "  AND x.failed = a.release AND x.host <> $1) "
	       "FROM berth_apps a LEFT JOIN berth_host_apps m "
	       " ON m.app = a.name AND m.host = $1 "
	       "WHERE a.grp = ANY ($2::text[]) AND a.release > 0 "
	       "ORDER BY a.name", 3, v);
	pump(cl);
}

/* ---------- publishing what went live here ---------- */

static void on_published(struct cluster *cl, struct cl_job *job)
{
	struct app *a = app_find(cl->e, job->app);

	if (job->failed) {
		log_warnx("cluster: release %d of '%s' is live here but not in the cluster: %s",
			  job->number, job->app, first_line(job->error));
		if (a)
			logger_linef(a->log, "berth", "cluster: release %d is not in the cluster: %s",
				     job->number, first_line(job->error));
		return;
	}
	log_info("cluster: release %d of '%s' stored as cluster release %d",
		 job->number, job->app, job->release);
	if (a)
		logger_linef(a->log, "berth", "cluster: release %d stored as cluster release %d; rolling out",
			     job->number, job->release);
}

static void on_release_number(struct cluster *cl, PGresult *res, void *arg)
{
	struct cl_job *job = arg;

	if (!res_ok(res) || PQntuples(res) != 1)
		return;
	job->release = num_of(PQgetvalue(res, 0, 0));
	applied_get(cl, job->app)->release = job->release;
}

/* A new app goes to "default", or to this host's first group when this
 * host is not in "default" (the pushing host is then in the app's). */
static const char *new_app_group(const struct cluster *cl)
{
	return strstr(cl->groups, "{default,") || strstr(cl->groups,
							  ",default,") ||
		strstr(cl->groups, ",default}") ||
		!strcmp(cl->groups, "{default}") ? "default" : cl->first_group;
}

static void publish_release(struct cluster *cl, struct app *a, int number,
			    const char *commit, const char *source)
{
	char *path = release_path(a->dir, number, "bundle.tar.gz");
	struct buf bundle = BUF_INIT;
	struct cl_job *job = NULL;
	char num[16], size[24], seq[16];
	const char *v[6];
	size_t off, i;
	int k = 0;

	if (read_file(&bundle, path, BUNDLE_MAX) < 0) {
		log_warnx("cluster: release %d of '%s' not published: %s",
			  number, a->name, error_last());
		goto out;
	}
	job = xcalloc(1, sizeof(*job));
	job->app = xstrdup(a->name);
	job->number = number;
	job->done = on_published;
	int_text(num, sizeof(num), number);
	snprintf(size, sizeof(size), "%zu", bundle.len);
	q_push(cl, job, NULL, NULL, 0, "BEGIN", 0, NULL, NULL);
	v[0] = a->name;
	v[1] = new_app_group(cl);
	q_text(cl, job, NULL, NULL,
	       "INSERT INTO berth_apps (name, grp) VALUES ($1, $2) "
	       "ON CONFLICT (name) DO NOTHING", 2, v);
	q_text(cl, job, NULL, NULL,
	       "SELECT 1 FROM berth_apps WHERE name = $1 FOR UPDATE", 1, v);
	/* the first release brings the app's config along */
	for (i = 0; i < a->env.n; i++) {
		const char *eq = strchr(a->env.v[i], '=');
		char *key;

		if (!eq)
			continue;
		key = xstrndup(a->env.v[i], (size_t)(eq - a->env.v[i]));
		if (strcmp(key, LOCAL_KEY)) {
			v[1] = key;
			v[2] = eq + 1;
			q_text(cl, job, NULL, NULL,
			       "INSERT INTO berth_config (app, key, value) "
			       "SELECT $1, $2, $3 WHERE (SELECT config_version "
			       "FROM berth_apps WHERE name = $1) = 0 "
			       "ON CONFLICT DO NOTHING", 3, v);
		}
		free(key);
	}
	q_text(cl, job, NULL, NULL,
	       "UPDATE berth_apps SET config_version = 1 "
	       "WHERE name = $1 AND config_version = 0", 1, v);
	v[1] = commit;
	v[2] = source;
	v[3] = cl->name;
	v[4] = size;
	q_text(cl, job, NULL, NULL,
	       "INSERT INTO berth_releases (app, number, commit, source, "
	       "origin, size) SELECT $1, COALESCE(max(number), 0) + 1, $2, "
	       "$3, $4, $5::bigint FROM berth_releases WHERE app = $1",
	       5, v);
	for (off = 0; off < bundle.len || off == 0; off += CHUNK_BYTES) {
		size_t n = bundle.len - off < CHUNK_BYTES ? bundle.len - off :
			CHUNK_BYTES;
		const char *cv[3] = { a->name, seq, bundle.data + off };
		int lens[3] = { -1, -1, (int)n };

		int_text(seq, sizeof(seq), k++);
		q_push(cl, job, NULL, NULL, 0,
		       "INSERT INTO berth_release_chunks (app, number, seq, data) "
		       "VALUES ($1, (SELECT max(number) FROM berth_releases "
		       "WHERE app = $1), $2::int, $3)", 3, cv, lens);
		if (!bundle.len)
			break;
	}
	v[1] = cl->name;
	q_text(cl, job, on_release_number, job,
	       "UPDATE berth_apps SET origin = $2, release = (SELECT "
	       "max(number) FROM berth_releases WHERE app = $1) "
	       "WHERE name = $1 RETURNING release", 2, v);
	v[0] = cl->name;
	v[1] = a->name;
	v[2] = num;
	q_text(cl, job, NULL, NULL,
	       "INSERT INTO berth_host_apps (host, app, release, failed, "
	       "local_release, status, updated) SELECT $1, $2, release, 0, "
	       "$3::int, 'live', now() FROM berth_apps WHERE name = $2 "
	       "ON CONFLICT (host, app) DO UPDATE SET release = "
	       "EXCLUDED.release, failed = 0, local_release = $3::int, "
	       "status = 'live', updated = now()", 3, v);
	v[0] = a->name;
	v[1] = cl->name;
	v[2] = source;
	q_text(cl, job, NULL, NULL,
	       "INSERT INTO berth_deploys (app, release, host, source, result) "
	       "SELECT $1, release, $2, $3, 'live' FROM berth_apps "
	       "WHERE name = $1", 3, v);
	q_text(cl, job, NULL, NULL, "SELECT pg_notify('" CHANNEL "', $1)",
	       1, v);
	q_push(cl, NULL, job_end, job, 0, "COMMIT", 0, NULL, NULL);
	pump(cl);
out:
	buf_release(&bundle);
	free(path);
}

static void on_config_published(struct cluster *cl, struct cl_job *job)
{
	if (job->failed)
		log_warnx("cluster: the config change of '%s' is live here but not in the cluster: %s",
			  job->app, first_line(job->error));
	else
		log_info("cluster: config of '%s' stored", job->app);
}

/* Only the keys changed here: a change made meanwhile on another host
 * to other keys stays. */
static void publish_config(struct cluster *cl, struct app *a,
			   const struct strv *changes)
{
	struct cl_job *job = xcalloc(1, sizeof(*job));
	const char *v[3] = { a->name, new_app_group(cl), NULL };
	size_t i;

	job->app = xstrdup(a->name);
	job->done = on_config_published;
	q_push(cl, job, NULL, NULL, 0, "BEGIN", 0, NULL, NULL);
	q_text(cl, job, NULL, NULL,
	       "INSERT INTO berth_apps (name, grp) VALUES ($1, $2) "
	       "ON CONFLICT (name) DO NOTHING", 2, v);
	q_text(cl, job, NULL, NULL,
	       "SELECT 1 FROM berth_apps WHERE name = $1 FOR UPDATE", 1, v);
	for (i = 0; i < changes->n; i++) {
		const char *eq = strchr(changes->v[i], '=');
		char *key = xstrndup(changes->v[i], eq ?
				     (size_t)(eq - changes->v[i]) :
				     strlen(changes->v[i]));

		v[1] = key;
		v[2] = eq ? eq + 1 : NULL;
		if (!strcmp(key, LOCAL_KEY))
			;
		else if (eq)
			q_text(cl, job, NULL, NULL,
			       "INSERT INTO berth_config (app, key, value) "
			       "VALUES ($1, $2, $3) ON CONFLICT (app, key) "
			       "DO UPDATE SET value = EXCLUDED.value", 3, v);
		else
			q_text(cl, job, NULL, NULL,
			       "DELETE FROM berth_config WHERE app = $1 "
			       "AND key = $2", 2, v);
		free(key);
	}
	q_text(cl, job, NULL, NULL,
	       "UPDATE berth_apps SET config_version = config_version + 1 "
	       "WHERE name = $1", 1, v);
	v[1] = cl->name;
	q_text(cl, job, NULL, NULL,
	       "INSERT INTO berth_deploys (app, release, host, source, result) "
	       "SELECT $1, release, $2, 'config', 'live' FROM berth_apps "
	       "WHERE name = $1", 2, v);
	q_text(cl, job, NULL, NULL, "SELECT pg_notify('" CHANNEL "', $1)",
	       1, v);
	q_push(cl, NULL, job_end, job, 0, "COMMIT", 0, NULL, NULL);
	pump(cl);
}

static void on_deploy_end(void *arg, const struct deploy_end *end)
{
	struct cluster *cl = arg;
	struct app *a = end->app;
	struct cl_pending *p;

	if (cl->e->stopping)
		return;		/* interrupted by our own stop: not a failure */
	if (end->source && !strcmp(end->source, "cluster")) {
		p = pending_find(cl, a->name);
		if (!p)
			return;
		if (end->ok) {
			struct cl_applied *ap = applied_get(cl, a->name);

			if (p->release)
				ap->release = p->release;
			if (p->config_version)
				ap->config_version = p->config_version;
			record(cl, a->name, p->release, 0, p->config_version,
			       end->number, p->rollback ? "rolled back" :
			       "live", p->rollback ? "rollback" : "cluster");
		} else if (p->rollback) {
			log_warnx("cluster: going back from release %d of '%s' failed here",
				  p->release + 1, a->name);
		} else if (p->release) {
			log_warnx("cluster: release %d of '%s' failed here: the rollout stops",
				  p->release, a->name);
			record(cl, a->name, 0, p->release, 0, 0, "failed",
			       "cluster");
		} else {
			log_warnx("cluster: config %d of '%s' failed here",
				  p->config_version, a->name);
			applied_get(cl, a->name)->config_failed =
				p->config_version;
		}
		pending_drop(cl, p);
		return;
	}
	if (end->kind != DEPLOY_NEW || !end->ok)
		return;
	if (cl->state != CL_READY) {
		log_warnx("cluster: release %d of '%s' is live here but not in the cluster: %s",
			  end->number, a->name, cl->last_error ? cl->last_error :
			  "not connected to the cluster database");
		return;
	}
	if (end->source && !strcmp(end->source, "config"))
		publish_config(cl, a, end->env_changes);
	else
		publish_release(cl, a, end->number, end->commit, end->source);
}

/* ---------- commands ---------- */

static int refuse_unless_ready(struct cluster *cl, struct client *c)
{
	if (!cl) {
		client_error(c, "this host is not in a cluster (set 'cluster:' in berth.yaml)");
		return -1;
	}
	if (cl->state != CL_READY) {
		client_error(c, "cannot reach the cluster database: %s",
			     cl->last_error ? cl->last_error : "connecting");
		return -1;
	}
	return 0;
}

static void on_status(struct cluster *cl, PGresult *res, void *arg)
{
	struct client *c = arg;
	int i;

	if (!res_ok(res)) {
		client_error(c, "cannot read the cluster's hosts: %s",
			     first_line(res_error(res)));
		client_unref(c);
		return;
	}
	client_data(c, "%-20s %-5s %-9s %-10s %-16s %-15s %s", "HOST", "STATE",
		    "HEARTBEAT", "VERSION", "GROUPS", "ADDRESS", "APPS");
	for (i = 0; i < PQntuples(res); i++) {
		long age = num_of(PQgetvalue(res, i, 4));
		char ago[24];

		snprintf(ago, sizeof(ago), "%lds ago", age);
		client_data(c, "%-20s %-5s %-9s %-10s %-16s %-15s %s",
			    PQgetvalue(res, i, 0),
			    age < CLUSTER_DOWN_AFTER_S ? "up" : "down", ago,
			    PQgetvalue(res, i, 3), PQgetvalue(res, i, 2),
			    PQgetvalue(res, i, 1), PQgetvalue(res, i, 5));
	}
	client_ok(c);
	client_unref(c);
}

void cluster_cmd_status(struct cluster *cl, struct client *c)
{
	if (refuse_unless_ready(cl, c) < 0)
		return;
	client_ref(c);
	q_text(cl, NULL, on_status, c,
	       "SELECT h.name, h.address, array_to_string(h.groups, ','), "
	       " h.version, GREATEST(0, floor(extract(epoch FROM "
	       " now() - h.heartbeat)))::bigint, "
	       " COALESCE((SELECT string_agg(x.app || '@' || x.release || "
	       "  CASE WHEN x.failed > x.release THEN '(failed ' || x.failed "
	       "  || ')' ELSE '' END, ' ' ORDER BY x.app) "
	       "  FROM berth_host_apps x WHERE x.host = h.name), '-') "
	       "FROM berth_hosts h ORDER BY h.name", 0, NULL);
	pump(cl);
}

static void on_set_group(struct cluster *cl, PGresult *res, void *arg)
{
	struct cl_job *job = arg;

	if (!res_ok(res))
		client_error(job->c, "cannot change the group: %s",
			     first_line(res_error(res)));
	else if (PQntuples(res) == 0)
		client_error(job->c, "app '%s' does not exist", job->app);
	else
		client_ok(job->c);
	client_unref(job->c);
	job_free(job);
}

void cluster_cmd_set_group(struct cluster *cl, const char *app,
			   const char *group, struct client *c)
{
	struct cl_job *job;
	const char *v[3] = { app, group, NULL };

	if (!app_name_valid(app)) {
		client_error(c, "invalid app name '%s'", app);
		return;
	}
	if (!config_group_name_valid(group)) {
		client_error(c, "invalid group '%s' (lower case letters, digits and '-', like web)",
			     group);
		return;
	}
	if (refuse_unless_ready(cl, c) < 0)
		return;
	v[2] = app_find(cl->e, app) ? "true" : "false";
	job = xcalloc(1, sizeof(*job));
	job->app = xstrdup(app);
	job->c = c;
	client_ref(c);
	q_text(cl, NULL, on_set_group, job,
	       "WITH up AS (INSERT INTO berth_apps (name, grp) "
	       " SELECT $1, $2 WHERE $3::bool OR EXISTS "
	       " (SELECT 1 FROM berth_apps WHERE name = $1) "
	       " ON CONFLICT (name) DO UPDATE SET grp = EXCLUDED.grp "
	       " RETURNING name) "
	       "SELECT name, pg_notify('" CHANNEL "', name) FROM up", 3, v);
	pump(cl);
}

/* ---------- life ---------- */

int cluster_start(struct cluster **out, struct engine *e)
{
	const struct config *cfg = e->cfg;
	struct cluster *cl;
	struct buf groups = BUF_INIT;
	char host[256], *err = NULL;
	PQconninfoOption *opts;
	char *save = NULL, *copy, *tok;

	*out = NULL;
	if (!cfg->cluster)
		return 0;
	opts = PQconninfoParse(cfg->cluster, &err);
	if (!opts) {
		error_set("'cluster' is not a valid conninfo: %s",
			  err ? err : "out of memory");
		PQfreemem(err);
		return -1;
	}
	PQconninfoFree(opts);
	if (cfg->host_name) {
		snprintf(host, sizeof(host), "%s", cfg->host_name);
	} else if (gethostname(host, sizeof(host)) < 0) {
		return error_setsys("cannot read this machine's host name");
	}
	host[sizeof(host) - 1] = '\0';
	cl = xcalloc(1, sizeof(*cl));
	cl->e = e;
	cl->fd = -1;
	cl->conninfo = xstrdup(cfg->cluster);
	cl->name = xstrdup(host);
	cl->address = xstrdup(cfg->advertise_address ? cfg->advertise_address :
			      host);
	copy = xstrdup(cfg->groups ? cfg->groups : "default");
	buf_addstr(&groups, "{");
	for (save = copy; (tok = str_token(&save, ",")) != NULL; ) {
		if (!cl->first_group)
			cl->first_group = xstrdup(tok);
		buf_addf(&groups, "%s%s", groups.len > 1 ? "," : "", tok);
	}
	buf_addstr(&groups, "}");
	free(copy);
	cl->groups = buf_detach(&groups);
	if (!cl->first_group)
		cl->first_group = xstrdup("default");
	cl->backoff_ms = RETRY_MIN_MS;
	e->on_deploy_end = on_deploy_end;
	e->on_deploy_end_arg = cl;
	log_info("cluster: joining as %s (groups %s)", cl->name, cl->groups);
	connect_start(cl);
	*out = cl;
	return 0;
}

void cluster_free(struct cluster *cl)
{
	if (!cl)
		return;
	if (cl->e->on_deploy_end_arg == cl) {
		cl->e->on_deploy_end = NULL;
		cl->e->on_deploy_end_arg = NULL;
	}
	stop_timers(cl);
	loop_del_timer(cl->e->loop, cl->retry_timer);
	cl->state = CL_DOWN;
	close_conn(cl);
	fail_all(cl);
	while (cl->pending)
		pending_drop(cl, cl->pending);
	while (cl->applied) {
		struct cl_applied *ap = cl->applied;

		cl->applied = ap->next;
		free(ap->app);
		free(ap);
	}
	free(cl->conninfo);
	free(cl->name);
	free(cl->address);
	free(cl->groups);
	free(cl->first_group);
	free(cl->last_error);
	free(cl);
}
