/* cluster: see cluster.h and docs/cluster.md. */
#include "cluster.h"

#include <errno.h>
#include <fcntl.h>
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/wait.h>
#include <unistd.h>

#include "app.h"
#include "clusterjobs.h"
#include "appcommands.h"
#include "config.h"
#include "control.h"
#include "engine.h"
#include "log.h"
#include "logger.h"
#include "loop.h"
#include "pgresolve.h"
#include "release.h"
#include "runner.h"
#include "util.h"
#include "version.h"
#include "banned.h"

#define HEARTBEAT_MS 2000
#define RECONCILE_MS 5000
#define CONNECT_TIMEOUT_MS 10000
#define RESOLVE_TIMEOUT_MS 10000	/* the host name's lookup, before */
#define RETRY_MIN_MS 500
#define RETRY_MAX_MS 5000
#define QUERY_STUCK_MS 60000	/* an answer this late: drop the connection */
#define CHUNK_BYTES (1024 * 1024)
#define BUNDLE_MAX (4L * 1024 * 1024 * 1024)
#define CHANNEL "berth_cluster"
#define SCHEMA_VERSION 4
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
	/* 2: how a release rolls out, set by the host that published it */
	"ALTER TABLE berth_apps ADD COLUMN IF NOT EXISTS rollout text "
	" NOT NULL DEFAULT 'one-by-one';"
	/* 2: start, stop, restart and scale, cluster-wide: the state
	 * every host of the group converges to, and what each applied */
	"ALTER TABLE berth_apps"
	" ADD COLUMN IF NOT EXISTS stopped boolean NOT NULL DEFAULT false,"
	" ADD COLUMN IF NOT EXISTS restarts int NOT NULL DEFAULT 0,"
	" ADD COLUMN IF NOT EXISTS op_version int NOT NULL DEFAULT 0;"
	"ALTER TABLE berth_host_apps"
	" ADD COLUMN IF NOT EXISTS op_version int NOT NULL DEFAULT 0,"
	" ADD COLUMN IF NOT EXISTS restarts int NOT NULL DEFAULT 0;"
	/* "cluster rm HOST": it stops its apps, then deletes its row */
	"ALTER TABLE berth_hosts"
	" ADD COLUMN IF NOT EXISTS removing boolean NOT NULL DEFAULT false;"
	/* "ps APP" and "logs APP" on any host: a request, answered by each
	 * host of the app's group with its lines */
	"CREATE TABLE IF NOT EXISTS berth_requests ("
	" id bigserial PRIMARY KEY, kind text NOT NULL, app text NOT NULL,"
	" n int NOT NULL DEFAULT 0, asker text NOT NULL,"
	" asked timestamptz NOT NULL DEFAULT now());"
	"CREATE TABLE IF NOT EXISTS berth_answers ("
	" request bigint NOT NULL REFERENCES berth_requests ON DELETE CASCADE,"
	" host text NOT NULL, seq int NOT NULL, line text NOT NULL,"
	" PRIMARY KEY (request, host, seq));"
	"UPDATE berth_schema SET version = 2 WHERE version < 2;"
	/* 3: who holds a host name (the host id file of its state folder),
	 * and why a host failed a config change, start, stop, restart or
	 * scale (reported to the command that asked) */
	"ALTER TABLE berth_hosts ADD COLUMN IF NOT EXISTS identity text;"
	"ALTER TABLE berth_host_apps"
	" ADD COLUMN IF NOT EXISTS op_failed int NOT NULL DEFAULT 0,"
	" ADD COLUMN IF NOT EXISTS config_failed int NOT NULL DEFAULT 0,"
	" ADD COLUMN IF NOT EXISTS error text;"
	"UPDATE berth_schema SET version = 3 WHERE version < 3;"
	/* 4: "logs -f APP" across hosts (clusterjobs.c), and "route: group"
	 * (clusterroute.c): each host's route listener and where the app
	 * has a web process up */
	"CREATE TABLE IF NOT EXISTS berth_follows ("
	" id bigserial PRIMARY KEY, app text NOT NULL,"
	" asker text NOT NULL, n int NOT NULL DEFAULT 0,"
	" asked timestamptz NOT NULL DEFAULT now());"
	"ALTER TABLE berth_hosts ADD COLUMN IF NOT EXISTS"
	" route_port int NOT NULL DEFAULT 0;"
	"CREATE TABLE IF NOT EXISTS berth_serving ("
	" host text NOT NULL REFERENCES berth_hosts"
	"  ON DELETE CASCADE, app text NOT NULL,"
	" serving boolean NOT NULL, PRIMARY KEY (host, app));"
	"UPDATE berth_schema SET version = 4 WHERE version < 4;"
	"COMMIT;";

struct cluster;
/* res: the first failed result of the query, else its last; NULL when
 * it could not run (no connection).  Borrowed: freed after the call. */
typedef void (*cl_result_fn)(struct cluster *cl, PGresult *res, void *arg);

/* Queries of one transaction, queued together; done() after the last. */
struct cl_job {
	int failed;
	int lost;		/* failed for want of a connection */
	char *error;
	void (*done)(struct cluster *cl, struct cl_job *job);
	char *app;
	int number;		/* publish: the local release */
	int release;		/* the cluster's release it became */
	struct client *c;
	char *group;		/* publish: the app's group, as stored */
	char *commit, *source;	/* publish: as the deploy had them */
	struct strv changes;	/* publish_config: the changes */
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
	/* its bundle being written to path by a child (on_chunks()) */
	struct cluster *cl;
	struct runner writer;
	struct buf writer_err;
	char *path;
};

/* What this host has applied (the tables may not know it yet). */
struct cl_applied {
	struct cl_applied *next;
	char *app;
	int release;
	int config_version;
	int config_failed;	/* a config version whose deploy failed */
	int rolled_back;	/* a release this host went back from */
	int op_version;		/* the start/stop/restart/scale state applied */
	int restarts;
	int op_pending;		/* a restart or scale for it runs here */
};

/*
 * A push (or deploy) whose client waits while its release rolls out: each
 * other host of the group is reported once, as it takes the release,
 * fails it, goes back, or is down.
 */
struct cl_opwatch;
struct cl_gate;

struct cl_watch {
	struct cl_watch *next;
	struct cluster *cl;
	struct client *c;
	char *app;
	int number;		/* the local release (the answer's release=) */
	int release;		/* the cluster's */
	struct strv said;	/* "HOST STATE" lines already reported */
	int halted;		/* a host failed it */
	char *failed_on;
	int querying;
	int64_t progress_ms;	/* when something last changed */
	uint64_t timer;
};

/* CL_REMOVED: "cluster rm" took this host out; it stays out (its apps
 * stopped) until "cluster join" (docs/cluster.md). */
enum cl_state { CL_DOWN, CL_CONNECTING, CL_READY, CL_REMOVED };

struct cl_publish;

struct cluster {
	struct cl_publish *publishes;	/* bundles being read to publish */
	struct engine *e;
	char *conninfo;
	char *name;
	char *identity;		/* the host id file's: who holds the name */
	char *address;
	char *groups;		/* "{web,api}", a text[] literal */
	char *first_group;
	PGconn *conn;
	struct pgresolve *lookup;	/* the host name's, before conn */
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
	struct cl_watch *watches;
	struct cl_opwatch *opwatches;
	struct cl_gate *gates;
	char *last_error;
	char *removed_path;	/* STATE/cluster/removed: out until join */
	int refused;		/* the name is held by another live host */
	int registered;		/* this host's row is ours: it acts */
	int leaving;		/* "cluster rm": stopping its apps, then out */
	uint64_t leave_timer;
	struct cluster_jobs *jobs;	/* clusterjobs.c */
};

/* connected, and registered under this host's name */
#define JOINED(cl) ((cl)->state == CL_READY && (cl)->registered)

static void reconcile(struct cluster *cl);
static void answer_requests(struct cluster *cl);
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
	if (job->c)
		client_unref(job->c);
	free(job->group);
	free(job->commit);
	free(job->source);
	strv_release(&job->changes);
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
		job->lost = !res;
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
		q->job->lost = !res;
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
	pgresolve_cancel(cl->lookup);
	cl->lookup = NULL;
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
	if (JOINED(cl) || !cl->last_error ||
	    strcmp(cl->last_error, line))
		log_warnx("cluster: %s (retrying)", line);
	free(cl->last_error);
	cl->last_error = line;
	cl->state = CL_DOWN;
	cl->registered = 0;
	stop_timers(cl);
	close_conn(cl);
	cl->reconciling = cl->reconcile_again = cl->heartbeat_queued = 0;
	fail_all(cl);
	cjobs_lost(cl->jobs);
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
		notified |= !cjobs_notify(cl->jobs, n->relname, n->extra);
		PQfreemem(n);
	}
	if (notified) {
		answer_requests(cl);
		reconcile(cl);
	}
}

/* ---------- query helpers: one transaction per change ---------- */

#define STR_(x) #x
#define STR(x) STR_(x)
/* $N::int seconds after which a host counts as down */
#define DOWN_SECS STR(CLUSTER_DOWN_AFTER_S)

static void q_notify(struct cluster *cl, struct cl_job *job,
		     const char *note)
{
	const char *v[1] = { note };

	q_text(cl, job, NULL, NULL, "SELECT pg_notify('" CHANNEL "', $1)",
	       1, v);
}

/* Open job's transaction; its queries follow, then job_commit(). */
static struct cl_job *job_begin(struct cluster *cl, struct cl_job *job)
{
	q_push(cl, job, NULL, NULL, 0, "BEGIN", 0, NULL, NULL);
	return job;
}

/* The app's row, locked until the commit (it exists, or nothing). */
static void q_lock_app(struct cluster *cl, struct cl_job *job,
		       const char *app)
{
	const char *v[1] = { app };

	q_text(cl, job, NULL, NULL,
	       "SELECT 1 FROM berth_apps WHERE name = $1 FOR UPDATE", 1, v);
}

/* NOTIFY (note says what changed), COMMIT, then job->done; send. */
static void job_commit(struct cluster *cl, struct cl_job *job,
		       const char *note)
{
	q_notify(cl, job, note);
	q_push(cl, NULL, job_end, job, 0, "COMMIT", 0, NULL, NULL);
	pump(cl);
}

/* ---------- joining ---------- */

static void leave(struct cluster *cl);
static void joined(struct cluster *cl);

/*
 * A name is held by the host whose identity (its host id file) it
 * carries: a host with another identity takes it only once its holder
 * is down (a rebuilt machine), never from a live one (docs/cluster.md).
 */
static void on_registered(struct cluster *cl, PGresult *res, void *arg)
{
	char *why;

	if (!res_ok(res))
		return;		/* lost: the retry registers again */
	if (PQntuples(res) == 1) {
		cl->refused = 0;
		joined(cl);
		return;
	}
	why = xasprintf("host name '%s' is held by another live host of the cluster: give this host a 'host_name:' of its own in berth.yaml (it tries again meanwhile)",
			cl->name);
	cl->refused = 1;
	connection_lost(cl, why);
	free(why);
}

static void register_host(struct cluster *cl)
{
	const char *v[5] = { cl->name, cl->address, cl->groups, BERTH_VERSION,
			     cl->identity };
	struct cl_job *job = job_begin(cl, xcalloc(1, sizeof(*job)));

	/* a down host's name taken by a new identity: its rows go */
	q_text(cl, job, NULL, NULL,
	       "DELETE FROM berth_host_apps WHERE host = $1 AND EXISTS "
	       "(SELECT 1 FROM berth_hosts WHERE name = $1 AND identity IS "
	       " DISTINCT FROM $2 AND heartbeat <= now() - make_interval("
	       " secs => " DOWN_SECS "))", 2, (const char *const[]){ v[0], v[4] });
	q_text(cl, job, on_registered, NULL,
	       "INSERT INTO berth_hosts (name, address, groups, version, "
	       "heartbeat, started, identity) VALUES ($1, $2, $3::text[], $4, "
	       "now(), now(), $5) ON CONFLICT (name) DO UPDATE SET "
	       "address = $2, groups = $3::text[], version = $4, "
	       "heartbeat = now(), identity = $5, removing = CASE WHEN "
	       " berth_hosts.identity IS DISTINCT FROM $5 THEN false ELSE "
	       " berth_hosts.removing END "
	       "WHERE berth_hosts.identity IS NULL OR berth_hosts.identity = $5 "
	       " OR berth_hosts.heartbeat <= now() - make_interval(secs => "
	       DOWN_SECS ") RETURNING name", 5, v);
	q_push(cl, NULL, job_end, job, 0, "COMMIT", 0, NULL, NULL);
}

static void on_heartbeat_done(struct cluster *cl, PGresult *res, void *arg)
{
	cl->heartbeat_queued = 0;
	if (res && !res_ok(res))
		log_warnx("cluster: heartbeat: %s", first_line(res_error(res)));
	else if (res && PQntuples(res) == 0 && !cl->leaving)
		/* another host took the name while this one was cut off */
		connection_lost(cl, "this host's name was taken by another host while it was away");
	else if (res && PQntuples(res) == 1 &&
		 PQgetvalue(res, 0, 0)[0] == 't' && !cl->leaving)
		leave(cl);
}

static void on_heartbeat(struct loop *l, void *arg)
{
	struct cluster *cl = arg;
	const char *v[2] = { cl->name, cl->identity };

	cl->heartbeat_timer = loop_add_timer(l, HEARTBEAT_MS, on_heartbeat, cl);
	if (cl->inflight && now_ms() - cl->inflight_ms > QUERY_STUCK_MS) {
		connection_lost(cl, "no answer from the cluster database for 60 s");
		return;
	}
	cjobs_tick(cl->jobs);
	if (cl->heartbeat_queued)
		return;
	cl->heartbeat_queued = 1;
	q_text(cl, NULL, on_heartbeat_done, NULL,
	       "UPDATE berth_hosts SET heartbeat = now() WHERE name = $1 "
	       "AND identity = $2 RETURNING removing", 2, v);
	pump(cl);
}

static void on_reconcile_timer(struct loop *l, void *arg)
{
	struct cluster *cl = arg;

	cl->reconcile_timer = loop_add_timer(l, RECONCILE_MS,
					     on_reconcile_timer, cl);
	answer_requests(cl);
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

/*
 * The tables made or migrated only when they are older than this
 * version: ALTER TABLE locks a table even when it has the column, and a
 * host that reconnects (or is refused and tries again) must not stall
 * the others' queries.
 */
static void on_schema_version(struct cluster *cl, PGresult *res, void *arg)
{
	if (!res)
		return;		/* lost: the next connect asks again */
	if (!res_ok(res) || PQntuples(res) != 1 ||
	    num_of(PQgetvalue(res, 0, 0)) < SCHEMA_VERSION)
		q_push(cl, NULL, on_schema, NULL, 0, schema_sql, -1, NULL,
		       NULL);
	q_push(cl, NULL, NULL, NULL, 0, "LISTEN " CHANNEL, -1, NULL, NULL);
	register_host(cl);
}

/* Connected: the tables, then this host's row (or a refusal). */
static void ready(struct cluster *cl)
{
	loop_del_timer(cl->e->loop, cl->connect_timer);
	cl->connect_timer = 0;
	cl->state = CL_READY;
	PQsetNoticeProcessor(cl->conn, quiet_notice, NULL);
	set_events(cl, LOOP_READ);
	q_text(cl, NULL, on_schema_version, NULL,
	       "SELECT version FROM berth_schema", 0, NULL);
	pump(cl);
}

static void gates_open(struct cluster *cl);

/* Registered under this host's name: heartbeat, reconcile, serve. */
static void joined(struct cluster *cl)
{
	const char *v[1] = { cl->name };

	cl->backoff_ms = RETRY_MIN_MS;
	cl->registered = 1;
	FREE_AND_NULL(cl->last_error);
	q_text(cl, NULL, on_joined, NULL,
	       "SELECT pg_notify('" CHANNEL "', $1)", 1, v);
	/* removed while it was away: it leaves now */
	q_text(cl, NULL, on_heartbeat_done, NULL,
	       "SELECT removing FROM berth_hosts WHERE name = $1", 1, v);
	cl->heartbeat_timer = loop_add_timer(cl->e->loop, HEARTBEAT_MS,
					     on_heartbeat, cl);
	cl->reconcile_timer = loop_add_timer(cl->e->loop, RECONCILE_MS,
					     on_reconcile_timer, cl);
	cjobs_ready(cl->jobs);
	pump(cl);
	reconcile(cl);
	gates_open(cl);
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

/* Connect, with the addresses looked up (h, or NULL: none to look up). */
static void connect_to(struct cluster *cl, const struct pgresolve_hosts *h)
{
	/* Defaults first: the conninfo (dbname, expanded) may override them,
	 * and the looked-up hosts override its own.  A cut network must
	 * end the connection within seconds, not the kernel's two hours,
	 * so that the host reconnects and catches up. */
	const char *keys[] = { "keepalives_idle", "keepalives_interval",
			       "keepalives_count", "tcp_user_timeout",
			       "application_name", "dbname", "host",
			       "hostaddr", "port", NULL };
	const char *vals[] = { "5", "2", "3", "15000", "berth-cluster",
			       cl->conninfo, h ? h->host : NULL,
			       h ? h->hostaddr : NULL, h ? h->port : NULL,
			       NULL };
	int fd;

	cl->conn = PQconnectStartParams(keys, vals, 1);
	if (!cl->conn || PQstatus(cl->conn) == CONNECTION_BAD ||
	    PQsetnonblocking(cl->conn, 1) < 0) {
		connection_lost(cl, cl->conn ? PQerrorMessage(cl->conn) :
				"out of memory");
		return;
	}
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

static void on_resolved(void *arg, int result, const struct pgresolve_hosts *h)
{
	struct cluster *cl = arg;

	cl->lookup = NULL;
	if (result < 0)
		connection_lost(cl, error_last());
	else
		connect_to(cl, h);
}

/*
 * libpq would resolve the database's host name inside
 * PQconnectStartParams(), blocking the loop for as long as DNS takes: a
 * child looks it up first, anew at each attempt (addresses change).
 */
static void connect_start(struct cluster *cl)
{
	int r;

	cl->state = CL_CONNECTING;
	r = pgresolve_start(&cl->lookup, cl->e->loop, cl->conninfo,
			    RESOLVE_TIMEOUT_MS, on_resolved, cl);
	if (r < 0)
		connection_lost(cl, error_last());
	else if (r > 0)
		connect_to(cl, NULL);
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

/* Forget what was applied: the tables' word counts again. */
static void applied_reset(struct cl_applied *ap)
{
	ap->release = ap->config_version = ap->config_failed = 0;
	ap->rolled_back = ap->op_version = ap->restarts = 0;
	ap->op_pending = 0;
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
	if (runner_running(&p->writer)) {
		runner_cancel(&p->writer);
		unlink(p->path);
	}
	free(p->app);
	free(p->commit);
	free(p->path);
	buf_release(&p->writer_err);
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

	if (!JOINED(cl))
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
	job = job_begin(cl, xcalloc(1, sizeof(*job)));
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
	job_commit(cl, job, app);
}

/* A config version (config) or start/stop/restart/scale state (op) this
 * host failed, and why: the command that asked reports it. */
static void record_failure(struct cluster *cl, const char *app, int config,
			   int version, const char *why)
{
	char ver[16];
	const char *v[4] = { cl->name, app, ver, why ? why : "failed" };

	if (!JOINED(cl))
		return;
	int_text(ver, sizeof(ver), version);
	q_text(cl, NULL, NULL, NULL, config ?
	       "WITH up AS (UPDATE berth_host_apps SET config_failed = $3::int, "
	       " error = $4, updated = now() WHERE host = $1 AND app = $2 "
	       " RETURNING app) SELECT pg_notify('" CHANNEL "', app) FROM up" :
	       "WITH up AS (UPDATE berth_host_apps SET op_failed = $3::int, "
	       " error = $4, updated = now() WHERE host = $1 AND app = $2 "
	       " RETURNING app) SELECT pg_notify('" CHANNEL "', app) FROM up",
	       4, v);
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

/* The config of an app that does not run here: changed in its env file
 * (its next start takes it), as "config set" does for a stopped app. */
static int config_save_here(struct app *a, const struct strv *changes)
{
	struct strv env = STRV_INIT;
	char *path = xasprintf("%s/env", a->dir);
	size_t i;
	int ret;

	strv_copy(&env, &a->env);
	for (i = 0; i < changes->n; i++) {
		const char *eq = strchr(changes->v[i], '=');
		char *key = xstrndup(changes->v[i], eq ?
				     (size_t)(eq - changes->v[i]) :
				     strlen(changes->v[i]));

		if (eq)
			strv_env_set(&env, key, eq + 1);
		else
			strv_env_unset(&env, key);
		free(key);
	}
	ret = env_file_write(path, &env);
	if (ret < 0) {
		log_warnx("cluster: cannot save the config of '%s': %s",
			  a->name, error_last());
	} else {
		strv_release(&a->env);
		a->env = env;
		memset(&env, 0, sizeof(env));
	}
	strv_release(&env);
	free(path);
	return ret;
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
		/* nothing runs: saved, for its next start */
		if (a && a->release && config_save_here(a, &changes) == 0) {
			record(cl, p->app, 0, 0, p->config_version, 0, "live",
			       NULL);
			applied_get(cl, p->app)->config_version =
				p->config_version;
		}
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

/* What the writer child writes: the rows of a fetch, in the child's copy
 * of the engine's memory. */
struct chunks_out {
	PGresult *res;
	const char *path;
};

/* In the child: the chunks into the file, in order. */
static int write_chunks(void *arg, int out, int err)
{
	struct chunks_out *w = arg;
	long total = 0;
	int fd, i;
	const char *msg;

	(void)out;
	fd = open(w->path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC |
		  O_NOFOLLOW, 0600);
	if (fd < 0) {
		error_setsys("cannot create '%s'", w->path);
		goto fail;
	}
	for (i = 0; i < PQntuples(w->res); i++) {
		int len = PQgetlength(w->res, i, 0);

		total += len;
		if (total > BUNDLE_MAX ||
		    write_all(fd, PQgetvalue(w->res, i, 0), (size_t)len) < 0) {
			close(fd);
			error_set("cannot write '%s'", w->path);
			goto fail;
		}
	}
	if (close(fd) < 0) {
		error_setsys("cannot write '%s'", w->path);
		goto fail;
	}
	return 0;
fail:
	msg = error_last();
	if (err >= 0 && write_all(err, msg, strlen(msg)) < 0)
		return 2;
	return 1;
}

static void on_chunks_written(struct runner *r, int result, void *arg)
{
	struct cl_pending *p = arg;
	struct cluster *cl = p->cl;

	if (result < 0) {
		log_warnx("cluster: %s", error_last());
	} else if (!WIFEXITED(r->status) || WEXITSTATUS(r->status) != 0) {
		if (p->writer_err.len)
			log_warnx("cluster: %.*s", (int)p->writer_err.len,
				  p->writer_err.data);
		else
			log_warnx("cluster: cannot write '%s'", p->path);
		result = -1;
	}
	if (result == 0) {
		pending_deploy(cl, p, p->path);
	} else {
		unlink(p->path);
		pending_drop(cl, p);
	}
}

/* The fetched bundle (hundreds of MB, maybe) is written to disk by a
 * child; the deploy starts from its exit. */
static void on_chunks(struct cluster *cl, PGresult *res, void *arg)
{
	struct cl_pending *p = arg;
	struct chunks_out w;
	char *dir = NULL;

	if (!res_ok(res) || p->failed || PQntuples(res) == 0) {
		log_warnx("cluster: cannot read release %d of '%s': %s",
			  p->release, p->app, res_ok(res) ?
			  "no bundle stored" : first_line(res_error(res)));
		pending_drop(cl, p);
		return;
	}
	dir = engine_path(cl->e, "run/cluster");
	free(p->path);
	p->path = xasprintf("%s/%s.%d.tar.gz", dir, p->app, p->release);
	if (mkdir_p(dir, 0700) < 0) {
		log_warnx("cluster: %s", error_last());
		free(dir);
		pending_drop(cl, p);
		return;
	}
	free(dir);
	w.res = res;
	w.path = p->path;
	p->cl = cl;
	runner_init(&p->writer);
	p->writer.child_main = write_chunks;
	p->writer.child_arg = &w;	/* read by the child only, at once */
	buf_release(&p->writer_err);	/* a zeroed buf made valid too */
	p->writer.capture[RUNNER_ERR] = &p->writer_err;
	p->writer.capture_max = 1024;
	if (runner_start(&p->writer, cl->e->loop, on_chunks_written, p) < 0) {
		log_warnx("cluster: %s", error_last());
		pending_drop(cl, p);
	}
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

/* The newest release before the live one that went live here and
 * still has its bundle; 0: none. */
static int release_before_live(const struct app *a)
{
	int *nums, number = 0;
	size_t n = release_list(a->dir, &nums), i;
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
	return number;
}

/*
 * Back to local release number, code and config, as "rollback" does
 * (without publishing it); the tables then say this host runs cluster
 * release 'release' (0: as they say now), "rolled back".
 */
static void go_back_here(struct cluster *cl, struct app *a, int number,
			 int release)
{
	struct deploy_opts o;
	struct cl_pending *p;

	p = xcalloc(1, sizeof(*p));
	p->app = xstrdup(a->name);
	p->release = release;
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

/*
 * The rollout of release stopped (a host failed it) after this host had
 * switched: back to the local release live before it.
 */
static void rollback_here(struct cluster *cl, struct app *a, int release)
{
	int number = release_before_live(a);

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
	go_back_here(cl, a, number, release - 1);
}

/* The start/stop/restart/scale state of one app, as the tables say. */
struct cl_ops {
	int op_version, stopped, restarts;
	int my_op_version, my_restarts;
	const char *scale;	/* "web=2 worker=1", or "" */
	int wait;		/* a live host before this one has not applied
				 * it yet (restarts roll, host by host) */
	int has_row;		/* berth_host_apps has this host's row */
};

static void record_op(struct cluster *cl, const char *app, int op_version,
		      int restarts)
{
	char ov[16], rs[16];
	const char *v[4] = { cl->name, app, ov, rs };

	if (!JOINED(cl))
		return;		/* the next reconcile applies it again */
	int_text(ov, sizeof(ov), op_version);
	int_text(rs, sizeof(rs), restarts);
	q_text(cl, NULL, NULL, NULL,
	       "WITH up AS (UPDATE berth_host_apps SET op_version = $3::int, "
	       " restarts = $4::int, updated = now() "
	       " WHERE host = $1 AND app = $2 RETURNING app) "
	       "SELECT pg_notify('" CHANNEL "', app) FROM up", 4, v);
	pump(cl);
}

/*
 * Bring the cluster's start/stop/restart/scale state of app here.  1 if
 * something was started (the rest waits for the next round).
 */
static int apply_ops(struct cluster *cl, struct app *a, struct cl_applied *ap,
		     const struct cl_ops *o)
{
	int have_op = o->my_op_version > ap->op_version ? o->my_op_version :
		ap->op_version;
	int have_restarts = o->my_restarts > ap->restarts ? o->my_restarts :
		ap->restarts;
	struct strv want = STRV_INIT;
	char *copy, *save, *tok;
	size_t i;

	if (o->op_version <= have_op)
		return 0;
	if (o->wait && !o->stopped && o->restarts > have_restarts)
		return 0;	/* a rolling restart: not this host's turn */
	ap->op_version = o->op_version;
	ap->restarts = o->restarts;
	if (o->stopped && !a->stopped) {
		log_info("cluster: stopping '%s', as the cluster says", a->name);
		logger_linef(a->log, "berth", "cluster: stopping, as the cluster says");
		app_cmd_stop(a, NULL);
		record_op(cl, a->name, o->op_version, o->restarts);
		return 1;
	}
	if (!o->stopped && a->stopped) {
		log_info("cluster: starting '%s', as the cluster says", a->name);
		logger_linef(a->log, "berth", "cluster: starting, as the cluster says");
		app_cmd_start(a, NULL);
		if (a->deploy || a->waiting) {
			ap->op_pending = o->op_version;	/* recorded at its end */
			return 1;
		}
		record_op(cl, a->name, o->op_version, o->restarts);
		if (a->stopped)
			record_failure(cl, a->name, 0, o->op_version,
				       "could not start");
		return 1;
	}
	if (o->stopped) {
		record_op(cl, a->name, o->op_version, o->restarts);
		return 0;
	}
	copy = xstrdup(o->scale);
	for (save = copy; (tok = str_token(&save, " ")) != NULL; ) {
		for (i = 0; i < a->scale.n && strcmp(a->scale.v[i], tok); i++)
			;
		if (i == a->scale.n)
			strv_push(&want, tok);
	}
	free(copy);
	if (want.n) {
		log_info("cluster: scaling '%s', as the cluster says", a->name);
		logger_linef(a->log, "berth", "cluster: scaling, as the cluster says");
		ap->op_pending = o->op_version;
		app_cmd_scale(a, (int)want.n, want.v, NULL);
	} else if (o->restarts > have_restarts) {
		log_info("cluster: restarting '%s', as the cluster says (host by host)",
			 a->name);
		logger_linef(a->log, "berth", "cluster: restarting, as the cluster says");
		ap->op_pending = o->op_version;
		app_cmd_restart(a, NULL);
	}
	strv_release(&want);
	if (ap->op_pending && (a->deploy || a->waiting))
		return 1;	/* recorded when that deploy ends */
	ap->op_pending = 0;
	record_op(cl, a->name, o->op_version, o->restarts);
	return 0;
}

/* One app of this host's groups, as the tables say. */
static void reconcile_app(struct cluster *cl, const char *name, int release,
			  int config_version, int my_release, int my_failed,
			  int my_config, int wait, int halted,
			  const struct cl_ops *ops)
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
	/* stopped when it left this host's groups (or the host left the
	 * cluster), and back: it starts, then takes what it missed */
	if (here && !ops->has_row && a->stopped && !ops->stopped) {
		log_info("cluster: '%s' is in this host's groups again: starting it",
			 name);
		logger_linef(a->log, "berth", "cluster: in this host's groups again: starting");
		applied_reset(ap);
		app_cmd_start(a, NULL);
		/* the row says it runs here (the cluster's release comes
		 * next), so that a move out stops it again */
		record(cl, name, 0, 0, 0, 0, "live", NULL);
		return;
	}
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
	/* a release on its way here was fetched above; else the start,
	 * stop, restart and scale state applies to what runs here (a
	 * host that went back from a failed release too) */
	if (here && apply_ops(cl, a, ap, ops))
		return;
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
	for (i = 0; i < PQntuples(res); i++) {
		struct cl_ops o;

		o.op_version = num_of(PQgetvalue(res, i, 8));
		o.stopped = PQgetvalue(res, i, 9)[0] == 't';
		o.restarts = num_of(PQgetvalue(res, i, 10));
		o.my_op_version = num_of(PQgetvalue(res, i, 11));
		o.my_restarts = num_of(PQgetvalue(res, i, 12));
		o.scale = PQgetvalue(res, i, 13);
		o.wait = PQgetvalue(res, i, 14)[0] == 't';
		o.has_row = PQgetvalue(res, i, 15)[0] == 't';
		reconcile_app(cl, PQgetvalue(res, i, 0),
			      num_of(PQgetvalue(res, i, 1)),
			      num_of(PQgetvalue(res, i, 2)),
			      num_of(PQgetvalue(res, i, 3)),
			      num_of(PQgetvalue(res, i, 4)),
			      num_of(PQgetvalue(res, i, 5)),
			      PQgetvalue(res, i, 6)[0] == 't',
			      PQgetvalue(res, i, 7)[0] == 't', &o);
	}
	if (cl->reconcile_again) {
		cl->reconcile_again = 0;
		reconcile(cl);
	}
	pump(cl);
}

/*
 * The app's group no longer is one of this host's: it stops here (the
 * hosts of its group run it), and this host's row of it goes, so that
 * it starts again if the app comes back (reconcile_app).
 */
static void on_moved_out(struct cluster *cl, PGresult *res, void *arg)
{
	int i;

	for (i = 0; res_ok(res) && i < PQntuples(res); i++) {
		const char *name = PQgetvalue(res, i, 0);
		struct app *a = app_find(cl->e, name);
		const char *v[3] = { cl->name, name, cl->groups };

		if (pending_find(cl, name) || (a && (a->deploy || a->waiting)))
			continue;	/* the next round */
		if (a && !a->stopped && !a->removing) {
			log_info("cluster: '%s' left this host's groups: stopping it here",
				 name);
			logger_linef(a->log, "berth", "cluster: moved to a group this host is not in: stopping");
			app_cmd_stop(a, NULL);
		}
		applied_reset(applied_get(cl, name));
		q_text(cl, NULL, NULL, NULL,
		       "WITH gone AS (DELETE FROM berth_host_apps x USING "
		       " berth_apps a WHERE x.host = $1 AND x.app = $2 "
		       " AND a.name = x.app AND NOT (a.grp = ANY ($3::text[])) "
		       " RETURNING x.app) "
		       "SELECT pg_notify('" CHANNEL "', app) FROM gone", 3, v);
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
	const char *v[2] = { cl->name, cl->groups };

	if (!JOINED(cl) || cl->e->stopping || cl->leaving)
		return;
	if (cl->reconciling) {
		cl->reconcile_again = 1;
		return;
	}
	cl->reconciling = 1;
	q_text(cl, NULL, on_reconcile, NULL,
	       "SELECT a.name, a.release, a.config_version, "
	       " COALESCE(m.release, 0), COALESCE(m.failed, 0), "
	       " COALESCE(m.config_version, 0), "
	       " EXISTS (SELECT 1 FROM berth_hosts h LEFT JOIN "
	       "  berth_host_apps x ON x.host = h.name AND x.app = a.name "
	       "  WHERE h.name COLLATE \"C\" < $1 AND a.grp = ANY (h.groups) "
	       "  AND h.heartbeat > now() - make_interval(secs => " DOWN_SECS ") "
	       "  AND COALESCE(x.release, 0) < a.release "
	       "  AND COALESCE(x.failed, 0) <> a.release "
	       "  AND a.rollout <> 'parallel'), "
	       " EXISTS (SELECT 1 FROM berth_host_apps x WHERE x.app = a.name "
	       "  AND x.failed = a.release AND x.host <> $1), "
	       " a.op_version, a.stopped, a.restarts, "
	       " COALESCE(m.op_version, 0), COALESCE(m.restarts, 0), "
	       " COALESCE((SELECT string_agg(s.type || '=' || s.count, ' ' "
	       "  ORDER BY s.type) FROM berth_scale s WHERE s.app = a.name), ''), "
	       " EXISTS (SELECT 1 FROM berth_hosts h LEFT JOIN "
	       "  berth_host_apps x ON x.host = h.name AND x.app = a.name "
	       "  WHERE h.name COLLATE \"C\" < $1 AND a.grp = ANY (h.groups) "
	       "  AND h.heartbeat > now() - make_interval(secs => " DOWN_SECS ") "
	       "  AND COALESCE(x.op_version, 0) < a.op_version), "
	       " m.host IS NOT NULL "
	       "FROM berth_apps a LEFT JOIN berth_host_apps m "
	       " ON m.app = a.name AND m.host = $1 "
	       "WHERE a.grp = ANY ($2::text[]) AND a.release > 0 "
	       "ORDER BY a.name", 2, v);
	/* apps moved out of this host's groups ("apps:set-group") */
	q_text(cl, NULL, on_moved_out, NULL,
	       "SELECT x.app FROM berth_host_apps x JOIN berth_apps a "
	       " ON a.name = x.app WHERE x.host = $1 "
	       " AND NOT (a.grp = ANY ($2::text[])) ORDER BY x.app", 2, v);
	pump(cl);
}

/* ---------- a push's rollout, reported per host ---------- */

static void watch_free(struct cluster *cl, struct cl_watch *w)
{
	struct cl_watch **pp;

	for (pp = &cl->watches; *pp; pp = &(*pp)->next) {
		if (*pp == w) {
			*pp = w->next;
			break;
		}
	}
	loop_del_timer(cl->e->loop, w->timer);
	cjobs_rollout_done(cl->jobs, w->app);
	client_unref(w->c);
	free(w->app);
	free(w->failed_on);
	strv_release(&w->said);
	free(w);
}

/* Say "host: what" once; 1 if it was new. */
static int watch_say(struct cl_watch *w, const char *host, const char *what,
		     const char *line)
{
	char *key = xasprintf("%s %s", host, what);
	size_t i;
	int isnew = 1;

	for (i = 0; i < w->said.n && isnew; i++)
		isnew = strcmp(w->said.v[i], key) != 0;
	if (isnew) {
		strv_push(&w->said, key);
		client_data(w->c, "-----> %s: %s", host, line);
		w->progress_ms = now_ms();
	}
	free(key);
	return isnew;
}

static void watch_end_ok(struct cluster *cl, struct cl_watch *w)
{
	client_ok_fields(w->c, "release=%d", w->number);
	watch_free(cl, w);
}

static void watch_poll(struct loop *l, void *arg);

static void on_watch_rows(struct cluster *cl, PGresult *res, void *arg)
{
	struct cl_watch *w = arg;
	long patience = cl->e->cfg->health_timeout_ms + 60000;
	int i, waiting = 0, going_back = 0, newer = 0;

	w->querying = 0;
	if (client_gone(w->c)) {
		watch_free(cl, w);
		return;
	}
	/* first: did any host fail it (the hosts before it go back) */
	for (i = 0; res_ok(res) && i < PQntuples(res); i++)
		if (num_of(PQgetvalue(res, i, 3)) == w->release)
			w->halted = 1;
	for (i = 0; res_ok(res) && i < PQntuples(res); i++) {
		const char *host = PQgetvalue(res, i, 0);
		int up = PQgetvalue(res, i, 1)[0] == 't';
		int rel = num_of(PQgetvalue(res, i, 2));
		int failed = num_of(PQgetvalue(res, i, 3));
		const char *status = PQgetvalue(res, i, 4);
		char line[160];

		if (num_of(PQgetvalue(res, i, 5)) > w->release)
			newer = num_of(PQgetvalue(res, i, 5));
		if (failed == w->release) {
			snprintf(line, sizeof(line), "release %d of %s failed here; the rollout stops",
				 w->release, w->app);
			if (watch_say(w, host, "failed", line) && !w->failed_on)
				w->failed_on = xstrdup(host);
			continue;
		}
		if (!strcmp(host, cl->name) && rel == w->release &&
		    strcmp(status, "rolled back")) {
			/* this host: live, said by the deploy */
			if (w->halted)
				going_back++;
			continue;
		}
		if (rel >= w->release && !strcmp(status, "live")) {
			snprintf(line, sizeof(line), "release %d of %s is live",
				 w->release, w->app);
			watch_say(w, host, "live", line);
			if (w->halted)
				going_back++;
			continue;
		}
		if (!strcmp(status, "rolled back") && rel < w->release) {
			snprintf(line, sizeof(line), "went back to the release before");
			watch_say(w, host, "back", line);
			continue;
		}
		if (!up) {
			snprintf(line, sizeof(line), "down; it takes release %d when it is back",
				 w->release);
			watch_say(w, host, "down", line);
			continue;
		}
		if (!w->halted)
			waiting++;
	}
	if (newer && !w->halted) {
		client_data(w->c, "-----> release %d of %s rolls out now, in place of this one",
			    newer, w->app);
		watch_end_ok(cl, w);
		return;
	}
	if (w->halted && (!going_back || now_ms() - w->progress_ms > patience)) {
		client_error(w->c, "release %d of %s failed on %s: the rollout stopped and the hosts that had it went back to the release before",
			     w->release, w->app, w->failed_on ? w->failed_on :
			     "a host");
		watch_free(cl, w);
		return;
	}
	if (!w->halted && res_ok(res) && !waiting) {
		client_data(w->c, "-----> release %d of %s is on every host of its group that is up",
			    w->release, w->app);
		watch_end_ok(cl, w);
		return;
	}
	if (now_ms() - w->progress_ms > patience) {
		client_data(w->c, "-----> still rolling out after %ld s without news: 'cluster status' shows how it goes",
			    patience / 1000);
		watch_end_ok(cl, w);
		return;
	}
	w->timer = loop_add_timer(cl->e->loop, 500, watch_poll, w);
}

static void watch_poll(struct loop *l, void *arg)
{
	struct cl_watch *w = arg;
	struct cluster *cl = w->cl;
	const char *v[1] = { w->app };

	w->timer = 0;
	if (client_gone(w->c)) {
		watch_free(cl, w);
		return;
	}
	if (!JOINED(cl)) {
		on_watch_rows(cl, NULL, w);
		return;
	}
	w->querying = 1;
	q_text(cl, NULL, on_watch_rows, w,
	       "SELECT h.name, h.heartbeat > now() - make_interval(secs => "
	       DOWN_SECS "), COALESCE(x.release, 0), COALESCE(x.failed, 0), "
	       " COALESCE(x.status, ''), a.release "
	       "FROM berth_apps a JOIN berth_hosts h ON a.grp = ANY (h.groups) "
	       "LEFT JOIN berth_host_apps x ON x.host = h.name "
	       " AND x.app = a.name "
	       "WHERE a.name = $1 ORDER BY h.name COLLATE \"C\"", 1, v);
	pump(cl);
}

/* The client of the push that made cluster release 'release' waits for
 * the rollout (it holds a reference, passed here). */
static void watch_start(struct cluster *cl, struct client *c,
			const char *app, int number, int release,
			const char *group)
{
	struct cl_watch *w = xcalloc(1, sizeof(*w));

	w->cl = cl;
	w->c = c;
	w->app = xstrdup(app);
	w->number = number;
	w->release = release;
	w->progress_ms = now_ms();
	w->next = cl->watches;
	cl->watches = w;
	client_data(c, "-----> Cluster release %d of %s: rolling out to the hosts of group %s (%s)",
		    release, app, group ? group : "?",
		    cl->e->cfg->rollout && !strcmp(cl->e->cfg->rollout,
						   "parallel") ?
		    "all at once" : "one host at a time");
	watch_poll(cl->e->loop, w);
}

/* ---------- waiting for the database before a change ---------- */

/*
 * A change asked while the database is unreachable waits for it, at most
 * cluster_wait, saying so every few seconds; then it fails and changes
 * nothing.  Two kinds: a command not run yet (run again when the
 * database is back), and a release or config change live here whose
 * store was cut (stored again; else this host goes back to the release
 * before it).
 */
struct cl_gate {
	struct cl_gate *next;
	struct cluster *cl;
	struct client *c;
	int64_t until, said_ms;
	uint64_t timer;
	/* a command: run again through redo */
	struct strv argv;
	void (*redo)(void *arg, struct client *c, int argc, char **argv);
	void *redo_arg;
	/* a publish */
	char *app, *commit, *source;
	int number, config;
	struct strv changes;
};

#define GATE_TICK_MS 500
#define GATE_SAY_MS 5000

static void publish_release(struct cluster *cl, struct app *a, int number,
			    const char *commit, const char *source,
			    struct client *c);
static void publish_config(struct cluster *cl, struct app *a,
			   const struct strv *changes, struct client *c);

static void gate_free(struct cluster *cl, struct cl_gate *g)
{
	struct cl_gate **pp;

	for (pp = &cl->gates; *pp; pp = &(*pp)->next) {
		if (*pp == g) {
			*pp = g->next;
			break;
		}
	}
	loop_del_timer(cl->e->loop, g->timer);
	client_unref(g->c);
	strv_release(&g->argv);
	strv_release(&g->changes);
	free(g->app);
	free(g->commit);
	free(g->source);
	free(g);
}

static const char *why_unreachable(const struct cluster *cl)
{
	return cl->last_error ? cl->last_error : "connecting";
}

/* The wait is over without the database: nothing changes. */
static void gate_give_up(struct cluster *cl, struct cl_gate *g)
{
	long secs = cl->e->cfg->cluster_wait_ms / 1000;
	struct app *a;
	int before = 0;

	if (g->redo) {
		client_error(g->c, "cannot reach the cluster database for %ld s (%s): nothing was changed",
			     secs, why_unreachable(cl));
		return;
	}
	a = app_find(cl->e, g->app);
	if (a && a->release == g->number && !a->deploy)
		before = release_before_live(a);
	if (before) {
		log_warnx("cluster: %s of '%s' could not be stored in the cluster: back to release %d here",
			  g->config ? "the config change" : "the release",
			  g->app, before);
		logger_linef(a->log, "berth", "cluster: not stored in the cluster (database unreachable): back to release %d",
			     before);
		go_back_here(cl, a, before, 0);
		client_error(g->c, "%s%d of %s could not be stored in the cluster: its database was unreachable for %ld s (%s); this host went back to release %d: nothing was changed",
			     g->config ? "the config change in release " :
			     "release ", g->number, g->app, secs,
			     why_unreachable(cl), before);
		return;
	}
	log_warnx("cluster: release %d of '%s' is live here but not in the cluster: %s",
		  g->number, g->app, why_unreachable(cl));
	client_error(g->c, "release %d of %s is live on this host only: the cluster database was unreachable for %ld s (%s)",
		     g->number, g->app, secs, why_unreachable(cl));
}

static void gate_tick(struct loop *l, void *arg)
{
	struct cl_gate *g = arg;
	struct cluster *cl = g->cl;
	int64_t now = now_ms();

	g->timer = 0;
	if (g->c && client_gone(g->c) && g->redo) {
		gate_free(cl, g);
		return;
	}
	if (now >= g->until || cl->state == CL_REMOVED || cl->refused) {
		gate_give_up(cl, g);
		gate_free(cl, g);
		return;
	}
	if (now - g->said_ms >= GATE_SAY_MS) {
		client_data(g->c, "-----> still no cluster database (%s): retrying, %lld s left",
			    why_unreachable(cl),
			    (long long)((g->until - now + 999) / 1000));
		g->said_ms = now;
	}
	g->timer = loop_add_timer(l, GATE_TICK_MS, gate_tick, g);
}

static struct cl_gate *gate_add(struct cluster *cl, struct client *c)
{
	struct cl_gate *g = xcalloc(1, sizeof(*g));

	g->cl = cl;
	g->c = c;
	g->until = now_ms() + cl->e->cfg->cluster_wait_ms;
	g->said_ms = now_ms();
	g->next = cl->gates;
	cl->gates = g;
	g->timer = loop_add_timer(cl->e->loop, GATE_TICK_MS, gate_tick, g);
	return g;
}

/* The database is back (joined): what waited goes on, oldest first. */
static void gates_open(struct cluster *cl)
{
	struct cl_gate *list = cl->gates, *g, *rev = NULL;

	cl->gates = NULL;
	while ((g = list)) {
		list = g->next;
		g->next = rev;
		rev = g;
	}
	while ((g = rev)) {
		struct app *a;

		rev = g->next;
		g->next = NULL;
		client_data(g->c, "-----> the cluster database answers again");
		if (g->redo) {
			g->redo(g->redo_arg, g->c, (int)g->argv.n, g->argv.v);
		} else if ((a = app_find(cl->e, g->app)) != NULL) {
			if (g->config)
				publish_config(cl, a, &g->changes, g->c);
			else
				publish_release(cl, a, g->number, g->commit,
						g->source, g->c);
			g->c = NULL;	/* the publish holds it now */
		} else {
			client_error(g->c, "app '%s' was removed meanwhile",
				     g->app);
		}
		g->next = cl->gates;	/* for gate_free's walk */
		cl->gates = g;
		gate_free(cl, g);
	}
}

/* Commands that change what the cluster runs. */
static int changes_cluster(int argc, char **argv)
{
	static const char *const words[] = { "deploy", "stop", "start",
		"restart", "scale", "rollback", NULL };
	int i;

	if (argc >= 3 && !strcmp(argv[0], "config"))
		return !strcmp(argv[2], "set") || !strcmp(argv[2], "unset");
	for (i = 0; words[i]; i++)
		if (!strcmp(argv[0], words[i]))
			return 1;
	return 0;
}

int cluster_gate(struct cluster *cl, struct client *c, int argc,
		 char **argv,
		 void (*redo)(void *arg, struct client *c, int argc,
			      char **argv),
		 void *arg)
{
	struct cl_gate *g;
	int i;

	if (!cl || cl->state == CL_REMOVED || JOINED(cl) ||
	    !changes_cluster(argc, argv))
		return 0;
	if (cl->refused) {
		client_error(c, "%s", cl->last_error);
		return 1;
	}
	client_ref(c);
	g = gate_add(cl, c);
	for (i = 0; i < argc; i++)
		strv_push(&g->argv, argv[i]);
	g->redo = redo;
	g->redo_arg = arg;
	client_data(c, "-----> the cluster database is unreachable (%s): waiting up to %ld s for it before changing anything",
		    why_unreachable(cl), cl->e->cfg->cluster_wait_ms / 1000);
	return 1;
}

/* A change live here whose store could not be made: stored once the
 * database is back (c: its client, a reference handed over). */
static void gate_publish(struct cluster *cl, const char *app, int number,
			 const char *commit, const char *source,
			 const struct strv *changes, struct client *c)
{
	struct cl_gate *g = gate_add(cl, c);

	g->app = xstrdup(app);
	g->number = number;
	g->commit = commit ? xstrdup(commit) : NULL;
	g->source = source ? xstrdup(source) : NULL;
	if (changes) {
		g->config = 1;
		strv_copy(&g->changes, changes);
	}
	log_warnx("cluster: %s of '%s' is live here, not yet in the cluster: %s (retrying)",
		  changes ? "the config change" : "the release", app,
		  why_unreachable(cl));
	client_data(c, "-----> the cluster database is unreachable (%s): storing release %d of %s there when it is back, for at most %ld s",
		    why_unreachable(cl), number, app,
		    cl->e->cfg->cluster_wait_ms / 1000);
}

/* ---------- config, start, stop, restart, scale: reported per host ---------- */

/*
 * The command's client waits while each host of the app's group applies
 * the change it made (config version or op version 'version'); each host
 * is said once: done, failed (and why) or down.  It fails if a live host
 * failed it.
 */
struct cl_opwatch {
	struct cl_opwatch *next;
	struct cluster *cl;
	struct client *c;
	char *app;
	char *what;		/* "config", "stop", "start", "restart", "scale" */
	int version;		/* 0: not stored yet */
	int local;		/* this host's part has ended */
	int number;		/* this host's release, for "ok release=N" */
	struct strv said;
	char *failed_on, *failure;
	int querying;
	int64_t progress_ms;
	uint64_t timer;
};

static void opwatch_free(struct cluster *cl, struct cl_opwatch *w)
{
	struct cl_opwatch **pp;

	for (pp = &cl->opwatches; *pp; pp = &(*pp)->next) {
		if (*pp == w) {
			*pp = w->next;
			break;
		}
	}
	loop_del_timer(cl->e->loop, w->timer);
	client_unref(w->c);
	free(w->app);
	free(w->what);
	free(w->failed_on);
	free(w->failure);
	strv_release(&w->said);
	free(w);
}

static struct cl_opwatch *opwatch_add(struct cluster *cl, struct client *c,
				      const char *app, const char *what)
{
	struct cl_opwatch *w = xcalloc(1, sizeof(*w));

	client_ref(c);
	w->cl = cl;
	w->c = c;
	w->app = xstrdup(app);
	w->what = xstrdup(what);
	w->progress_ms = now_ms();
	w->next = cl->opwatches;
	cl->opwatches = w;
	return w;
}

/* The watch of app's 'what' still waiting for its stored version. */
static struct cl_opwatch *opwatch_unstored(struct cluster *cl,
					   const char *app, const char *what)
{
	struct cl_opwatch *w;

	for (w = cl->opwatches; w; w = w->next)
		if (!strcmp(w->app, app) && !strcmp(w->what, what) &&
		    !w->version)
			return w;
	return NULL;
}

/* The watch of app still waiting for this host's part to end. */
static struct cl_opwatch *opwatch_unended(struct cluster *cl,
					  const char *app)
{
	struct cl_opwatch *w;

	for (w = cl->opwatches; w; w = w->next)
		if (!strcmp(w->app, app) && !w->local)
			return w;
	return NULL;
}

static const char *op_done_word(const char *what)
{
	return !strcmp(what, "config") ? "config applied" :
	       !strcmp(what, "stop") ? "stopped" :
	       !strcmp(what, "start") ? "started" :
	       !strcmp(what, "restart") ? "restarted" : "scaled";
}

static void opwatch_poll(struct loop *l, void *arg);

static void opwatch_end(struct cluster *cl, struct cl_opwatch *w)
{
	if (w->failed_on)
		client_error(w->c, "the %s of %s failed on %s: %s", w->what,
			     w->app, w->failed_on, w->failure);
	else if (w->number)
		client_ok_fields(w->c, "release=%d", w->number);
	else
		client_ok(w->c);
	opwatch_free(cl, w);
}

/* Rows: host, up, applied version, failed version, error. */
static void on_opwatch_rows(struct cluster *cl, PGresult *res, void *arg)
{
	struct cl_opwatch *w = arg;
	long patience = cl->e->cfg->health_timeout_ms +
		cl->e->cfg->stop_timeout_ms + 60000;
	int i, waiting = 0;

	w->querying = 0;
	if (client_gone(w->c)) {
		opwatch_free(cl, w);
		return;
	}
	for (i = 0; res_ok(res) && i < PQntuples(res); i++) {
		const char *host = PQgetvalue(res, i, 0);
		int up = PQgetvalue(res, i, 1)[0] == 't';
		int have = num_of(PQgetvalue(res, i, 2));
		int failed = num_of(PQgetvalue(res, i, 3));
		const char *why = PQgetvalue(res, i, 4);
		char line[600], key[300];
		size_t k;
		int isnew = 1;

		if (failed >= w->version && failed) {
			snprintf(key, sizeof(key), "%s failed", host);
			snprintf(line, sizeof(line), "-----> %s: failed: %s",
				 host, *why ? why : "failed");
			if (!w->failed_on) {
				w->failed_on = xstrdup(host);
				w->failure = xstrdup(*why ? why : "failed");
			}
		} else if (have >= w->version) {
			snprintf(key, sizeof(key), "%s done", host);
			snprintf(line, sizeof(line), "-----> %s: %s %s %s",
				 host, w->app, !strcmp(w->what, "config") ?
				 "has its" : "is", !strcmp(w->what, "config") ?
				 "new config" : op_done_word(w->what));
		} else if (!up) {
			snprintf(key, sizeof(key), "%s down", host);
			snprintf(line, sizeof(line), "-----> %s: down; it follows when it is back",
				 host);
		} else {
			waiting++;
			continue;
		}
		for (k = 0; k < w->said.n && isnew; k++)
			isnew = strcmp(w->said.v[k], key) != 0;
		if (isnew) {
			strv_push(&w->said, key);
			client_data(w->c, "%s", line);
			w->progress_ms = now_ms();
		}
	}
	if (res_ok(res) && !waiting) {
		if (!w->failed_on)
			client_data(w->c, "-----> %s: done on every host of the group of %s that is up",
				    w->what, w->app);
		opwatch_end(cl, w);
		return;
	}
	if (now_ms() - w->progress_ms > patience) {
		client_data(w->c, "-----> no news for %ld s: 'ps %s' shows how the other hosts are",
			    patience / 1000, w->app);
		opwatch_end(cl, w);
		return;
	}
	w->timer = loop_add_timer(cl->e->loop, 500, opwatch_poll, w);
}

static void opwatch_poll(struct loop *l, void *arg)
{
	struct cl_opwatch *w = arg;
	struct cluster *cl = w->cl;
	const char *v[1] = { w->app };
	int config = !strcmp(w->what, "config");

	w->timer = 0;
	if (!JOINED(cl)) {
		on_opwatch_rows(cl, NULL, w);
		return;
	}
	w->querying = 1;
	q_text(cl, NULL, on_opwatch_rows, w, config ?
	       "SELECT h.name, h.heartbeat > now() - make_interval(secs => "
	       DOWN_SECS "), COALESCE(x.config_version, 0), "
	       " COALESCE(x.config_failed, 0), COALESCE(x.error, '') "
	       "FROM berth_apps a JOIN berth_hosts h ON a.grp = ANY (h.groups) "
	       "LEFT JOIN berth_host_apps x ON x.host = h.name "
	       " AND x.app = a.name "
	       "WHERE a.name = $1 AND NOT h.removing "
	       "ORDER BY h.name COLLATE \"C\"" :
	       "SELECT h.name, h.heartbeat > now() - make_interval(secs => "
	       DOWN_SECS "), COALESCE(x.op_version, 0), "
	       " COALESCE(x.op_failed, 0), COALESCE(x.error, '') "
	       "FROM berth_apps a JOIN berth_hosts h ON a.grp = ANY (h.groups) "
	       "LEFT JOIN berth_host_apps x ON x.host = h.name "
	       " AND x.app = a.name "
	       "WHERE a.name = $1 AND NOT h.removing "
	       "ORDER BY h.name COLLATE \"C\"", 1, v);
	pump(cl);
}

/* Both known (the version stored, this host's part ended): report. */
static void opwatch_kick(struct cluster *cl, struct cl_opwatch *w)
{
	if (!w->version || !w->local || w->timer || w->querying)
		return;
	client_data(w->c, "-----> %s of %s: each host of its group applies it",
		    w->what, w->app);
	opwatch_poll(cl->e->loop, w);
}

/*
 * A deploy of a command ended here (start, restart, scale): the watch of
 * that command takes its client and reports the other hosts; 1 if it
 * did.  A failed one answered its client already: the watch goes.
 */
static int opwatch_local_end(struct cluster *cl, struct deploy_end *end)
{
	struct cl_opwatch *w = opwatch_unended(cl, end->app->name);

	if (!w || end->kind == DEPLOY_RESTORE)
		return 0;
	if (!end->ok) {
		opwatch_free(cl, w);
		return 0;
	}
	if (end->client != w->c)
		return 0;	/* another deploy of the app */
	end->client_taken = 1;
	w->local = 1;
	w->number = end->number;
	opwatch_kick(cl, w);
	return 1;
}

/* ---------- publishing what went live here ---------- */

static void on_published(struct cluster *cl, struct cl_job *job)
{
	struct app *a = app_find(cl->e, job->app);

	if (job->failed && job->lost && a && !cl->e->stopping &&
	    cl->state != CL_REMOVED) {
		/* the session that held the rollout lock went with the
		 * connection: the retry publishes when the database is back */
		cjobs_rollout_done(cl->jobs, job->app);
		gate_publish(cl, job->app, job->number, job->commit,
			     job->source, NULL, job->c);
		job->c = NULL;
		return;
	}
	if (job->failed || !job->c || !job->release)
		cjobs_rollout_done(cl->jobs, job->app);	/* no watch */
	if (job->failed) {
		log_warnx("cluster: release %d of '%s' is live here but not in the cluster: %s",
			  job->number, job->app, first_line(job->error));
		if (a)
			logger_linef(a->log, "berth", "cluster: release %d is not in the cluster: %s",
				     job->number, first_line(job->error));
		if (job->c) {
			client_data(job->c, " !     release %d is live on this host only: it could not be stored in the cluster: %s",
				    job->number, first_line(job->error));
			client_ok_fields(job->c, "release=%d", job->number);
		}
		return;
	}
	log_info("cluster: release %d of '%s' stored as cluster release %d",
		 job->number, job->app, job->release);
	if (a)
		logger_linef(a->log, "berth", "cluster: release %d stored as cluster release %d; rolling out",
			     job->number, job->release);
	if (job->c && job->release) {
		watch_start(cl, job->c, job->app, job->number, job->release,
			    job->group);
		job->c = NULL;	/* the watch holds it now */
	}
}

static void on_release_number(struct cluster *cl, PGresult *res, void *arg)
{
	struct cl_job *job = arg;

	if (!res_ok(res) || PQntuples(res) != 1)
		return;
	job->release = num_of(PQgetvalue(res, 0, 0));
	free(job->group);
	job->group = xstrdup(PQgetvalue(res, 0, 1));
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

/* The app's row, made with its group if it is new, and locked. */
static void q_app_row(struct cluster *cl, struct cl_job *job,
		      const char *app)
{
	const char *v[2] = { app, new_app_group(cl) };

	q_text(cl, job, NULL, NULL,
	       "INSERT INTO berth_apps (name, grp) VALUES ($1, $2) "
	       "ON CONFLICT (name) DO NOTHING", 2, v);
	q_lock_app(cl, job, app);
}

/*
 * A release's bundle is read by a child and comes over a pipe, so the loop
 * does not wait for hundreds of MB of disk; the publish goes on from the
 * child's exit (publish_read()).
 */
struct cl_publish {
	struct cl_publish *next;
	struct cluster *cl;
	char *app, *path, *commit, *source;
	int number;
	struct client *c;	/* the pusher's (a reference), or NULL */
	struct runner r;
	struct buf bundle, err;
};

static void publish_free(struct cluster *cl, struct cl_publish *pb)
{
	struct cl_publish **pp;

	for (pp = &cl->publishes; *pp; pp = &(*pp)->next)
		if (*pp == pb) {
			*pp = pb->next;
			break;
		}
	runner_cancel(&pb->r);
	if (pb->c)
		client_unref(pb->c);
	free(pb->app);
	free(pb->path);
	free(pb->commit);
	free(pb->source);
	buf_release(&pb->bundle);
	buf_release(&pb->err);
	free(pb);
}

/* In the child: the file, whole (read_file()'s bound and errors). */
static int read_bundle(void *arg, int out, int err)
{
	struct cl_publish *pb = arg;
	struct buf b = BUF_INIT;
	const char *msg;

	if (read_file(&b, pb->path, BUNDLE_MAX) == 0 &&
	    write_all(out, b.data, b.len) == 0)
		return 0;
	msg = error_last();
	if (err >= 0 && write_all(err, msg, strlen(msg)) < 0)
		return 2;
	return 1;
}

static void publish_bundle(struct cluster *cl, struct app *a, int number,
			   const char *commit, const char *source,
			   struct client *c, const struct buf *bundle);

/* The publish fails before anything was asked of the database. */
static void publish_unread(struct cluster *cl, const char *app, int number,
			   struct client *c, const char *why)
{
	cjobs_rollout_done(cl->jobs, app);
	log_warnx("cluster: release %d of '%s' not published: %s",
		  number, app, why);
	if (c) {
		client_data(c, " !     release %d is live on this host only: %s",
			    number, why);
		client_ok_fields(c, "release=%d", number);
		client_unref(c);
	}
}

static void on_bundle_read(struct runner *r, int result, void *arg)
{
	struct cl_publish *pb = arg;
	struct cluster *cl = pb->cl;
	struct client *c = pb->c;
	struct app *a;

	pb->c = NULL;
	if (result == 0 && (!WIFEXITED(r->status) ||
			    WEXITSTATUS(r->status) != 0)) {
		if (pb->err.len)
			error_set("%.*s", (int)pb->err.len, pb->err.data);
		else
			error_set("cannot read '%s'", pb->path);
		result = -1;
	}
	if (result < 0) {
		char *why = xstrdup(error_last());

		publish_unread(cl, pb->app, pb->number, c, why);
		free(why);
	} else if (!(a = app_find(cl->e, pb->app))) {
		cjobs_rollout_done(cl->jobs, pb->app);
		if (c) {
			client_error(c, "app '%s' is gone: release %d is not published",
				     pb->app, pb->number);
			client_unref(c);
		}
	} else {
		publish_bundle(cl, a, pb->number, pb->commit, pb->source, c,
			       &pb->bundle);
	}
	publish_free(cl, pb);
}

/* c: the pusher's client (a reference handed over), or NULL. */
static void publish_release(struct cluster *cl, struct app *a, int number,
			    const char *commit, const char *source,
			    struct client *c)
{
	struct cl_publish *pb = xcalloc(1, sizeof(*pb));

	pb->cl = cl;
	pb->app = xstrdup(a->name);
	pb->path = release_path(a->dir, number, "bundle.tar.gz");
	pb->commit = commit ? xstrdup(commit) : NULL;
	pb->source = source ? xstrdup(source) : NULL;
	pb->number = number;
	pb->c = c;
	buf_init(&pb->bundle, 0);
	buf_init(&pb->err, 0);
	runner_init(&pb->r);
	pb->r.child_main = read_bundle;
	pb->r.child_arg = pb;
	pb->r.capture[RUNNER_OUT] = &pb->bundle;
	pb->r.capture[RUNNER_ERR] = &pb->err;
	pb->r.capture_max = BUNDLE_MAX;
	pb->next = cl->publishes;
	cl->publishes = pb;
	if (runner_start(&pb->r, cl->e->loop, on_bundle_read, pb) == 0)
		return;
	pb->c = NULL;
	publish_unread(cl, a->name, number, c, error_last());
	publish_free(cl, pb);
}

/* The bundle read: the release into the tables, then NOTIFY. */
static void publish_bundle(struct cluster *cl, struct app *a, int number,
			   const char *commit, const char *source,
			   struct client *c, const struct buf *bundle)
{
	struct cl_job *job = NULL;
	char num[16], size[24], seq[16];
	const char *v[6];
	size_t off, i;
	int k = 0;

	job = xcalloc(1, sizeof(*job));
	job->app = xstrdup(a->name);
	job->number = number;
	job->commit = commit ? xstrdup(commit) : NULL;
	job->source = source ? xstrdup(source) : NULL;
	job->c = c;
	job->done = on_published;
	int_text(num, sizeof(num), number);
	snprintf(size, sizeof(size), "%zu", bundle->len);
	job_begin(cl, job);
	q_app_row(cl, job, a->name);
	v[0] = a->name;
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
	for (off = 0; off < bundle->len || off == 0; off += CHUNK_BYTES) {
		size_t n = bundle->len - off < CHUNK_BYTES ? bundle->len - off :
			CHUNK_BYTES;
		const char *cv[3] = { a->name, seq, bundle->data + off };
		int lens[3] = { -1, -1, (int)n };

		int_text(seq, sizeof(seq), k++);
		q_push(cl, job, NULL, NULL, 0,
		       "INSERT INTO berth_release_chunks (app, number, seq, data) "
		       "VALUES ($1, (SELECT max(number) FROM berth_releases "
		       "WHERE app = $1), $2::int, $3)", 3, cv, lens);
		if (!bundle->len)
			break;
	}
	v[1] = cl->name;
	v[2] = cl->e->cfg->rollout ? cl->e->cfg->rollout : "one-by-one";
	q_text(cl, job, on_release_number, job,
	       "UPDATE berth_apps SET origin = $2, rollout = $3, release = "
	       "(SELECT max(number) FROM berth_releases WHERE app = $1) "
	       "WHERE name = $1 RETURNING release, grp", 3, v);
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
	job_commit(cl, job, a->name);
}

static void on_config_version(struct cluster *cl, PGresult *res, void *arg)
{
	struct cl_job *job = arg;

	if (res_ok(res) && PQntuples(res) == 1)
		job->release = num_of(PQgetvalue(res, 0, 0));
}

static void on_config_published(struct cluster *cl, struct cl_job *job)
{
	struct app *a = app_find(cl->e, job->app);
	struct cl_opwatch *w;

	if (job->failed && job->lost && a && !cl->e->stopping &&
	    cl->state != CL_REMOVED) {
		gate_publish(cl, job->app, job->number, NULL, NULL,
			     &job->changes, job->c);
		job->c = NULL;
		return;
	}
	if (job->failed) {
		log_warnx("cluster: the config change of '%s' is live here but not in the cluster: %s",
			  job->app, first_line(job->error));
		if (job->c) {
			client_data(job->c, " !     the config change is live on this host only: it could not be stored in the cluster: %s",
				    first_line(job->error));
			client_ok_fields(job->c, "release=%d", job->number);
		}
		return;
	}
	log_info("cluster: config of '%s' stored", job->app);
	applied_get(cl, job->app)->config_version = job->release;
	if (!job->c || !job->release)
		return;
	w = opwatch_add(cl, job->c, job->app, "config");
	w->version = job->release;
	w->local = 1;
	w->number = job->number;
	opwatch_kick(cl, w);
}

/* Only the keys changed here: a change made meanwhile on another host
 * to other keys stays.  c: the client of the change (a reference handed
 * over), or NULL. */
static void publish_config(struct cluster *cl, struct app *a,
			   const struct strv *changes, struct client *c)
{
	struct cl_job *job = xcalloc(1, sizeof(*job));
	const char *v[3] = { a->name, NULL, NULL };
	size_t i;

	job->app = xstrdup(a->name);
	job->done = on_config_published;
	job->c = c;
	job->number = a->release;
	strv_copy(&job->changes, changes);
	job_begin(cl, job);
	q_app_row(cl, job, a->name);
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
	q_text(cl, job, on_config_version, job,
	       "UPDATE berth_apps SET config_version = config_version + 1 "
	       "WHERE name = $1 RETURNING config_version", 1, v);
	v[1] = cl->name;
	/* this host has it: live here already */
	q_text(cl, job, NULL, NULL,
	       "UPDATE berth_host_apps x SET config_version = a.config_version, "
	       " config_failed = 0, status = 'live', updated = now() "
	       "FROM berth_apps a "
	       "WHERE a.name = $1 AND x.app = $1 AND x.host = $2", 2, v);
	q_text(cl, job, NULL, NULL,
	       "INSERT INTO berth_deploys (app, release, host, source, result) "
	       "SELECT $1, release, $2, 'config', 'live' FROM berth_apps "
	       "WHERE name = $1", 2, v);
	job_commit(cl, job, a->name);
}

/* cjobs_rollout()'s publish, once this host holds the rollout lock */
static void publish_named(struct cluster *cl, const char *app, int number,
			  const char *commit, const char *source,
			  struct client *c)
{
	struct app *a = app_find(cl->e, app);

	if (a) {
		publish_release(cl, a, number, commit, source, c);
		return;
	}
	cjobs_rollout_done(cl->jobs, app);
	if (c) {
		client_error(c, "app '%s' is gone: release %d is not published",
			     app, number);
		client_unref(c);
	}
}

static void on_deploy_end(void *arg, struct deploy_end *end)
{
	struct cluster *cl = arg;
	struct app *a = end->app;
	struct cl_pending *p;
	struct client *c = NULL;

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
			record_failure(cl, a->name, 1, p->config_version,
				       end->error);
		}
		pending_drop(cl, p);
		return;
	}
	/* a start, restart or scale asked here: its command hears each
	 * host now */
	opwatch_local_end(cl, end);
	if (end->kind != DEPLOY_RESTORE) {
		/* a restart or scale (a restart with saved config is a new
		 * release): done here, the next host's turn */
		struct cl_applied *ap = applied_get(cl, a->name);

		if (ap->op_pending) {
			record_op(cl, a->name, ap->op_pending, ap->restarts);
			if (!end->ok) {
				log_warnx("cluster: the start, restart or scale of '%s' failed here",
					  a->name);
				record_failure(cl, a->name, 0, ap->op_pending,
					       end->error);
			}
			ap->op_pending = 0;
		}
	}
	if (end->kind == DEPLOY_RESTART)
		return;
	if (end->kind != DEPLOY_NEW || !end->ok || cl->state == CL_REMOVED)
		return;
	/* the client hears how the change reaches each host */
	if (end->client && !end->client_taken && !client_gone(end->client)) {
		client_ref(end->client);
		end->client_taken = 1;
		c = end->client;
	}
	if (!JOINED(cl)) {
		gate_publish(cl, a->name, end->number, end->commit,
			     end->source, end->source && !strcmp(end->source,
			     "config") ? end->env_changes : NULL, c);
		return;
	}
	if (end->source && !strcmp(end->source, "config")) {
		publish_config(cl, a, end->env_changes, c);
		return;
	}
	/* one rollout of an app at a time, cluster-wide (clusterjobs.c) */
	cjobs_rollout(cl->jobs, a->name, end->number, end->commit,
		      end->source, c, publish_named);
}

/* ---------- start, stop, restart, scale: published ---------- */

static void on_op_number(struct cluster *cl, PGresult *res, void *arg)
{
	struct cl_job *job = arg;
	struct cl_applied *ap;
	struct app *a;

	if (!res_ok(res) || PQntuples(res) != 1)
		return;
	ap = applied_get(cl, job->app);
	ap->op_version = num_of(PQgetvalue(res, 0, 0));
	ap->restarts = num_of(PQgetvalue(res, 0, 1));
	job->release = ap->op_version;
	if (strcmp(job->group, "restart") && strcmp(job->group, "scale"))
		return;		/* stop, start: recorded with it */
	/* the next host's turn comes when this host's restart ended */
	a = app_find(cl->e, job->app);
	if (a && (a->deploy || a->waiting))
		ap->op_pending = ap->op_version;
	else
		record_op(cl, job->app, ap->op_version, ap->restarts);
}

static void on_op_published(struct cluster *cl, struct cl_job *job)
{
	struct cl_opwatch *w = opwatch_unstored(cl, job->app, job->group);

	if (job->failed)
		log_warnx("cluster: the %s of '%s' was done here but not stored in the cluster: %s",
			  job->group, job->app, first_line(job->error));
	else if (job->release)
		log_info("cluster: %s of '%s' stored; the group's hosts follow",
			 job->group, job->app);
	if (!w)
		return;
	if (job->failed || !job->release) {
		/* not in the cluster (or not stored): this host's answer */
		if (job->failed)
			client_data(w->c, " !     the %s was done on this host only: it could not be stored in the cluster: %s",
				    w->what, first_line(job->error));
		if (w->local)
			opwatch_end(cl, w);
		else
			opwatch_free(cl, w);	/* its deploy answers */
		return;
	}
	w->version = job->release;
	opwatch_kick(cl, w);
}

void cluster_app_op(struct cluster *cl, const char *app, const char *op,
		    int argc, char **argv, struct client *c)
{
	struct cl_job *job;
	const char *v[3] = { app, op, NULL };
	struct app *a;
	int i;

	if (!cl || !JOINED(cl))
		return;
	a = app_find(cl->e, app);
	/* a deploy here ends by handing c over (start, restart, scale) */
	if (c && strcmp(op, "stop") && !(a && (a->deploy || a->waiting)))
		c = NULL;
	if (c)
		opwatch_add(cl, c, app, op)->local = !strcmp(op, "stop");
	job = xcalloc(1, sizeof(*job));
	job->app = xstrdup(app);
	job->group = xstrdup(op);	/* what was done, for the log */
	job->done = on_op_published;
	job_begin(cl, job);
	q_lock_app(cl, job, app);
	for (i = 0; !strcmp(op, "scale") && i < argc; i++) {
		const char *eq = strchr(argv[i], '=');
		char *type;

		if (!eq)
			continue;
		type = xstrndup(argv[i], (size_t)(eq - argv[i]));
		v[1] = type;
		v[2] = eq + 1;
		q_text(cl, job, NULL, NULL,
		       "INSERT INTO berth_scale (app, type, count) "
		       "SELECT $1, $2, $3::int WHERE EXISTS (SELECT 1 FROM "
		       "berth_apps WHERE name = $1) ON CONFLICT (app, type) "
		       "DO UPDATE SET count = EXCLUDED.count", 3, v);
		free(type);
	}
	v[1] = op;
	q_text(cl, job, on_op_number, job,
	       "UPDATE berth_apps SET op_version = op_version + 1, "
	       " stopped = CASE $2 WHEN 'stop' THEN true WHEN 'start' THEN "
	       " false ELSE stopped END, restarts = restarts + "
	       " ($2 = 'restart')::int WHERE name = $1 "
	       "RETURNING op_version, restarts", 2, v);
	v[1] = cl->name;
	v[2] = op;
	/* a stop or start is done here; a restart or scale once its
	 * deploy ends (on_op_number, on_deploy_end) */
	q_text(cl, job, NULL, NULL,
	       "UPDATE berth_host_apps x SET op_version = a.op_version, "
	       " restarts = a.restarts, op_failed = 0 FROM berth_apps a "
	       "WHERE a.name = $1 AND x.app = $1 AND x.host = $2 "
	       "AND $3 IN ('stop', 'start')", 3, v);
	q_text(cl, job, NULL, NULL,
	       "INSERT INTO berth_deploys (app, release, host, source, result) "
	       "SELECT $1, release, $2, $3, 'done' FROM berth_apps "
	       "WHERE name = $1", 3, v);
	job_commit(cl, job, app);
}

static int refuse_unless_ready(struct cluster *cl, struct client *c);

/* ---------- leaving: "cluster rm HOST" ---------- */

static void removed_here(struct cluster *cl);

static void on_left(struct cluster *cl, PGresult *res, void *arg)
{
	if (!res_ok(res)) {
		log_warnx("cluster: cannot leave: %s (trying again)",
			  first_line(res_error(res)));
		cl->leaving = 0;	/* the next heartbeat starts again */
		return;
	}
	log_warnx("cluster: removed from the cluster ('cluster rm'): its apps here are stopped; it stays out, across restarts, until 'cluster join'");
	removed_here(cl);
	if (write_file_atomic(cl->removed_path, "removed by 'cluster rm'\n",
			      24, 0600) < 0)
		log_warnx("cluster: %s (a restart joins again)", error_last());
}

static void on_leave_timer(struct loop *l, void *arg)
{
	struct cluster *cl = arg;
	const char *v[1] = { cl->name };

	cl->leave_timer = 0;
	if (!JOINED(cl)) {
		cl->leaving = 0;
		return;
	}
	q_text(cl, NULL, on_left, NULL,
	       "WITH gone AS (DELETE FROM berth_hosts WHERE name = $1 "
	       " AND removing RETURNING name) "
	       "SELECT pg_notify('" CHANNEL "', name) FROM gone", 1, v);
	pump(cl);
}

static void on_leave_apps(struct cluster *cl, PGresult *res, void *arg)
{
	int i;

	if (!res_ok(res)) {
		cl->leaving = 0;
		return;
	}
	for (i = 0; i < PQntuples(res); i++) {
		struct app *a = app_find(cl->e, PQgetvalue(res, i, 0));

		if (!a || a->stopped || a->removing)
			continue;
		log_info("cluster: removed from the cluster: stopping '%s'",
			 a->name);
		logger_linef(a->log, "berth", "cluster: this host leaves the cluster: stopping");
		app_cmd_stop(a, NULL);
	}
	/* its processes get stop_timeout to end, then the row goes */
	cl->leave_timer = loop_add_timer(cl->e->loop,
					 cl->e->cfg->stop_timeout_ms + 500,
					 on_leave_timer, cl);
}

/* Out of the cluster: no connection, nothing published or applied. */
static void removed_here(struct cluster *cl)
{
	stop_timers(cl);
	loop_del_timer(cl->e->loop, cl->retry_timer);
	cl->retry_timer = 0;
	close_conn(cl);
	cl->state = CL_REMOVED;
	cl->registered = 0;
	cl->leaving = 0;
	fail_all(cl);
	FREE_AND_NULL(cl->last_error);
	cl->last_error = xstrdup("this host was removed from the cluster ('cluster rm'): run 'cluster join' on it to join again, or take 'cluster:' out of its berth.yaml");
}

void cluster_cmd_join(struct cluster *cl, struct client *c)
{
	if (!cl) {
		client_error(c, "this host is not in a cluster (set 'cluster:' in berth.yaml)");
		return;
	}
	if (cl->state != CL_REMOVED) {
		client_error(c, "this host is in the cluster already ('cluster status' shows it)");
		return;
	}
	if (unlink(cl->removed_path) < 0 && errno != ENOENT) {
		client_error(c, "cannot remove '%s': %s", cl->removed_path,
			     strerror(errno));
		return;
	}
	FREE_AND_NULL(cl->last_error);
	cl->state = CL_DOWN;
	cl->backoff_ms = RETRY_MIN_MS;
	log_info("cluster: joining again as %s ('cluster join')", cl->name);
	connect_start(cl);
	client_data(c, "-----> Joining the cluster as %s: the apps of groups %s come back here ('cluster status' shows it)",
		    cl->name, cl->groups);
	client_ok(c);
}

/* Someone ran "cluster rm" for this host: stop the apps the cluster
 * placed here, then delete this host's row and stay out. */
static void leave(struct cluster *cl)
{
	const char *v[1] = { cl->name };

	cl->leaving = 1;
	log_warnx("cluster: this host is being removed from the cluster: stopping its apps");
	q_text(cl, NULL, on_leave_apps, NULL,
	       "SELECT app FROM berth_host_apps WHERE host = $1", 1, v);
	pump(cl);
}

struct cl_rm {
	struct cluster *cl;
	struct client *c;
	char *host;
	int64_t until;
	uint64_t timer;
};

static void rm_free(struct cl_rm *r)
{
	loop_del_timer(r->cl->e->loop, r->timer);
	client_unref(r->c);
	free(r->host);
	free(r);
}

static void rm_poll(struct loop *l, void *arg);

static void on_rm_poll(struct cluster *cl, PGresult *res, void *arg)
{
	struct cl_rm *r = arg;

	if (res_ok(res) && PQntuples(res) == 0) {
		client_data(r->c, "-----> %s stopped its apps and left the cluster",
			    r->host);
		client_ok(r->c);
		rm_free(r);
		return;
	}
	if (client_gone(r->c) || now_ms() > r->until) {
		client_data(r->c, "-----> %s has not left yet: it stops its apps and leaves when it sees the change ('cluster status' shows it as leaving)",
			    r->host);
		client_ok(r->c);
		rm_free(r);
		return;
	}
	r->timer = loop_add_timer(cl->e->loop, 500, rm_poll, r);
}

static void rm_poll(struct loop *l, void *arg)
{
	struct cl_rm *r = arg;
	const char *v[1] = { r->host };

	r->timer = 0;
	if (!JOINED(r->cl)) {
		on_rm_poll(r->cl, NULL, r);
		return;
	}
	q_text(r->cl, NULL, on_rm_poll, r,
	       "SELECT 1 FROM berth_hosts WHERE name = $1", 1, v);
	pump(r->cl);
}

static void on_rm_marked(struct cluster *cl, PGresult *res, void *arg)
{
	struct cl_rm *r = arg;

	if (!res_ok(res)) {
		client_error(r->c, "cannot remove '%s': %s", r->host,
			     first_line(res_error(res)));
		rm_free(r);
		return;
	}
	if (PQntuples(res) == 0) {
		client_error(r->c, "no host '%s' in the cluster ('cluster status' lists them)",
			     r->host);
		rm_free(r);
		return;
	}
	if (PQgetvalue(res, 0, 0)[0] != 't') {
		client_data(r->c, "-----> %s is down: it stops its apps and leaves the cluster when it comes back; the other hosts of its groups run them meanwhile",
			    r->host);
		client_ok(r->c);
		rm_free(r);
		return;
	}
	client_data(r->c, "-----> Stopping the apps on %s, then it leaves the cluster",
		    r->host);
	r->until = now_ms() + cl->e->cfg->stop_timeout_ms + 60000;
	rm_poll(cl->e->loop, r);
}

void cluster_cmd_rm(struct cluster *cl, const char *host, struct client *c)
{
	struct cl_rm *r;
	const char *v[1] = { host };

	if (refuse_unless_ready(cl, c) < 0)
		return;
	if (!*host || strlen(host) > 253 ||
	    strspn(host, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-:_") != strlen(host)) {
		client_error(c, "invalid host name '%s'", host);
		return;
	}
	if (!strcmp(host, cl->name)) {
		client_error(c, "'%s' is the host that answers: run 'cluster rm %s' on another host of the cluster",
			     host, host);
		return;
	}
	r = xcalloc(1, sizeof(*r));
	r->cl = cl;
	r->c = c;
	r->host = xstrdup(host);
	client_ref(c);
	q_text(cl, NULL, on_rm_marked, r,
	       "WITH up AS (UPDATE berth_hosts SET removing = true "
	       " WHERE name = $1 RETURNING name, "
	       " heartbeat > now() - make_interval(secs => " DOWN_SECS ") "
	       " AS live) "
	       "SELECT live, pg_notify('" CHANNEL "', name) FROM up", 1, v);
	pump(cl);
}

/* ---------- "ps APP" and "logs APP" across the cluster ---------- */

#define ASK_WAIT_MS 5000	/* hosts that have not answered by then */
#define ASK_POLL_MS 200
#define LOG_TAIL_BYTES (4L * 1024 * 1024)

/* The last n lines of the app's log here (oldest first), into out. */
static void log_tail(struct cluster *cl, const char *app, long n,
		     struct buf *out)
{
	char *path = engine_path(cl->e, "logs/%s/app.log", app);
	struct strv lines = STRV_INIT;
	char *data = NULL, *line, *save;
	off_t size, from;
	ssize_t got = 0;
	size_t i;
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);

	free(path);
	if (fd < 0)
		return;
	size = lseek(fd, 0, SEEK_END);
	from = size > LOG_TAIL_BYTES ? size - LOG_TAIL_BYTES : 0;
	if (size > 0) {
		data = xmalloc((size_t)(size - from) + 1);
		got = pread(fd, data, (size_t)(size - from), from);
	}
	close(fd);
	if (got <= 0) {
		free(data);
		return;
	}
	data[got] = '\0';
	save = data;
	if (from > 0)	/* a cut first line */
		str_token(&save, "\n");
	while ((line = str_token(&save, "\n")) != NULL)
		if (*line)
			strv_push(&lines, line);
	for (i = lines.n > (size_t)n ? lines.n - (size_t)n : 0; i < lines.n; i++)
		buf_addf(out, "%s%s", out->len ? "\n" : "", lines.v[i]);
	strv_release(&lines);
	free(data);
}

/* This host's processes of app, one line each (ps's columns). */
static void ps_lines(struct cluster *cl, const char *app, struct buf *out)
{
	struct app *a = app_find(cl->e, app);
	int64_t now = now_ms();
	struct proc *p;

	if (!a) {
		buf_addstr(out, "-            (the app is not here)");
		return;
	}
	buf_addf(out, "=%s, release %d", app_status_word(a), a->release);
	for (p = a->live ? a->live->procs : NULL; p; p = p->next) {
		char port[12] = "-", up[24] = "-";

		if (p->oneoff)
			continue;
		if (p->port)
			snprintf(port, sizeof(port), "%d", proc_http_port(p));
		if (p->state == PROC_UP)
			snprintf(up, sizeof(up), "%llds",
				 (long long)((now - p->started_ms) / 1000));
		buf_addf(out, "\n%-12s %-8d %-6s %-11s %-9s %d", p->name,
			 (int)p->pid, port, p->state == PROC_UP ? "up" :
			 p->state == PROC_STARTING ? "starting" :
			 p->state == PROC_BACKOFF ? "crashed" :
			 p->state == PROC_STOPPING ? "stopping" : "stopped",
			 up, p->restarts);
	}
}

/* Answer the requests this host has not answered yet. */
static void on_requests(struct cluster *cl, PGresult *res, void *arg)
{
	int i;

	for (i = 0; res_ok(res) && i < PQntuples(res); i++) {
		const char *id = PQgetvalue(res, i, 0);
		const char *kind = PQgetvalue(res, i, 1);
		const char *app = PQgetvalue(res, i, 2);
		long n = num_of(PQgetvalue(res, i, 3));
		struct buf lines = BUF_INIT;
		const char *v[3];

		if (!app_name_valid(app))
			continue;
		if (!strcmp(kind, "logs"))
			log_tail(cl, app, n, &lines);
		else
			ps_lines(cl, app, &lines);
		v[0] = id;
		v[1] = cl->name;
		v[2] = lines.data ? lines.data : "";
		/* seq 0 says "answered", the lines follow from 1 */
		q_text(cl, NULL, NULL, NULL,
		       "INSERT INTO berth_answers (request, host, seq, line) "
		       "SELECT $1::bigint, $2, 0, '' UNION ALL "
		       "SELECT $1::bigint, $2, ord::int, line FROM "
		       "unnest(string_to_array(NULLIF($3, ''), E'\\n')) "
		       "WITH ORDINALITY AS t(line, ord) "
		       "ON CONFLICT DO NOTHING", 3, v);
		buf_release(&lines);
	}
	pump(cl);
}

static void answer_requests(struct cluster *cl)
{
	const char *v[2] = { cl->name, cl->groups };

	if (!JOINED(cl) || cl->leaving)
		return;
	q_text(cl, NULL, on_requests, NULL,
	       "SELECT r.id, r.kind, r.app, r.n FROM berth_requests r "
	       "JOIN berth_apps a ON a.name = r.app "
	       "WHERE r.asked > now() - interval '30 seconds' "
	       "AND a.grp = ANY ($2::text[]) AND NOT EXISTS (SELECT 1 FROM "
	       "berth_answers x WHERE x.request = r.id AND x.host = $1) "
	       "ORDER BY r.id", 2, v);
	pump(cl);
}

struct cl_ask {
	struct cluster *cl;
	struct client *c;
	char *kind, *app;
	long n;
	char id[24];
	int64_t until;
	uint64_t timer;
};

static void ask_free(struct cl_ask *k)
{
	const char *v[1] = { k->id };

	if (k->id[0] && k->cl->state == CL_READY) {
		q_text(k->cl, NULL, NULL, NULL,
		       "DELETE FROM berth_requests WHERE id = $1::bigint",
		       1, v);
		pump(k->cl);
	}
	loop_del_timer(k->cl->e->loop, k->timer);
	client_unref(k->c);
	free(k->kind);
	free(k->app);
	free(k);
}

struct ask_line {
	const char *host, *line;
	int seq;
};

static int ask_line_cmp(const void *x, const void *y)
{
	const struct ask_line *a = x, *b = y;
	size_t la = strcspn(a->line, " "), lb = strcspn(b->line, " ");
	int r = strncmp(a->line, b->line, la < lb ? la : lb);

	if (r == 0 && la != lb)
		r = la < lb ? -1 : 1;
	if (r == 0)
		r = strcmp(a->host, b->host);
	return r ? r : a->seq - b->seq;
}

/* Rows: host, seq, line, up, answered (host-major, seq order). */
static void ask_print(struct cl_ask *k, PGresult *res)
{
	int i, nrows = PQntuples(res);

	if (!strcmp(k->kind, "ps")) {
		client_data(k->c, "%-20s %-12s %-8s %-6s %-11s %-9s %s", "HOST",
			    "PROCESS", "PID", "PORT", "STATE", "UPTIME",
			    "RESTARTS");
		for (i = 0; i < nrows; i++) {
			const char *host = PQgetvalue(res, i, 0);
			const char *line = PQgetvalue(res, i, 2);
			int seq = num_of(PQgetvalue(res, i, 1));

			if (PQgetisnull(res, i, 1)) {
				client_data(k->c, "%-20s %-12s (%s: no answer)",
					    host, "-", PQgetvalue(res, i, 3)[0] ==
					    't' ? "up" : "down");
				continue;
			}
			if (seq == 0 || line[0] == '=')
				continue;
			client_data(k->c, "%-20s %s", host, line);
		}
	} else {
		struct ask_line *lines = xcalloc((size_t)nrows + 1,
						 sizeof(*lines));
		size_t n = 0, j;

		for (i = 0; i < nrows; i++) {
			if (PQgetisnull(res, i, 1)) {
				client_data(k->c, "-----> %s: no answer (%s)",
					    PQgetvalue(res, i, 0),
					    PQgetvalue(res, i, 3)[0] == 't' ?
					    "up" : "down");
				continue;
			}
			if (num_of(PQgetvalue(res, i, 1)) == 0)
				continue;
			lines[n].host = PQgetvalue(res, i, 0);
			lines[n].seq = num_of(PQgetvalue(res, i, 1));
			lines[n].line = PQgetvalue(res, i, 2);
			n++;
		}
		qsort(lines, n, sizeof(*lines), ask_line_cmp);
		/* TIME HOST the rest of the line */
		for (j = 0; j < n; j++) {
			size_t t = strcspn(lines[j].line, " ");

			client_data(k->c, "%.*s %s%s", (int)t, lines[j].line,
				    lines[j].host, lines[j].line + t);
		}
		free(lines);
	}
	client_ok(k->c);
}

static void ask_poll(struct loop *l, void *arg);

static void on_ask_rows(struct cluster *cl, PGresult *res, void *arg)
{
	struct cl_ask *k = arg;
	int i, missing = 0;

	if (!res_ok(res)) {
		client_error(k->c, "cannot read the answers: %s",
			     first_line(res_error(res)));
		ask_free(k);
		return;
	}
	if (PQntuples(res) == 0) {
		/* an app the cluster does not know: this host's alone */
		struct app *a = app_find(cl->e, k->app);

		if (!strcmp(k->kind, "ps") && a)
			app_cmd_ps(a, k->c);
		else if (a)
			app_cmd_logs(cl->e, k->app, k->n, 0, NULL, k->c);
		else
			client_error_code(k->c, CONTROL_ERR_NOTFOUND,
					  "app '%s' does not exist", k->app);
		ask_free(k);
		return;
	}
	for (i = 0; i < PQntuples(res); i++)
		if (PQgetisnull(res, i, 1) && PQgetvalue(res, i, 3)[0] == 't')
			missing++;
	if (missing && now_ms() < k->until && !client_gone(k->c)) {
		k->timer = loop_add_timer(cl->e->loop, ASK_POLL_MS, ask_poll,
					  k);
		return;
	}
	ask_print(k, res);
	ask_free(k);
}

static void ask_poll(struct loop *l, void *arg)
{
	struct cl_ask *k = arg;
	const char *v[2] = { k->id, k->app };

	k->timer = 0;
	if (!JOINED(k->cl)) {
		client_error(k->c, "lost the cluster database: %s",
			     k->cl->last_error ? k->cl->last_error : "");
		ask_free(k);
		return;
	}
	/* every host of the app's group, its lines or NULL if none yet */
	q_text(k->cl, NULL, on_ask_rows, k,
	       "SELECT h.name, x.seq, x.line, "
	       " h.heartbeat > now() - make_interval(secs => " DOWN_SECS ") "
	       "FROM berth_apps a JOIN berth_hosts h ON a.grp = ANY (h.groups) "
	       "LEFT JOIN berth_answers x ON x.request = $1::bigint "
	       " AND x.host = h.name "
	       "WHERE a.name = $2 AND NOT h.removing "
	       "ORDER BY h.name COLLATE \"C\", x.seq", 2, v);
	pump(k->cl);
}

static void on_asked(struct cluster *cl, PGresult *res, void *arg)
{
	struct cl_ask *k = arg;

	if (!res_ok(res) || PQntuples(res) != 1) {
		client_error(k->c, "cannot ask the cluster's hosts: %s",
			     first_line(res_error(res)));
		ask_free(k);
		return;
	}
	snprintf(k->id, sizeof(k->id), "%s", PQgetvalue(res, 0, 0));
	k->until = now_ms() + ASK_WAIT_MS;
	k->timer = loop_add_timer(cl->e->loop, ASK_POLL_MS, ask_poll, k);
}

/* Ask every host of app's group (this one too) for its lines. */
static void ask(struct cluster *cl, const char *kind, const char *app,
		long n, struct client *c)
{
	struct cl_ask *k = xcalloc(1, sizeof(*k));
	char num[24];
	const char *v[4] = { kind, app, num, cl->name };

	k->cl = cl;
	k->c = c;
	k->kind = xstrdup(kind);
	k->app = xstrdup(app);
	k->n = n;
	client_ref(c);
	snprintf(num, sizeof(num), "%ld", n);
	/* requests nobody deleted (an asker that died) go after a minute */
	q_text(cl, NULL, NULL, NULL,
	       "DELETE FROM berth_requests WHERE asked < now() - "
	       "interval '1 minute'", 0, NULL);
	q_text(cl, NULL, on_asked, k,
	       "WITH r AS (INSERT INTO berth_requests (kind, app, n, asker) "
	       " VALUES ($1, $2, $3::int, $4) RETURNING id) "
	       "SELECT id, pg_notify('" CHANNEL "', 'ask') FROM r", 4, v);
	pump(cl);
}

int cluster_cmd_ps(struct cluster *cl, struct app *a, struct client *c)
{
	if (!cl || !JOINED(cl))
		return -1;
	ask(cl, "ps", a->name, 0, c);
	return 0;
}

int cluster_cmd_logs(struct cluster *cl, const char *app, long n,
		     struct client *c)
{
	if (!cl || !JOINED(cl))
		return -1;
	ask(cl, "logs", app, n, c);
	return 0;
}

/* ---------- for clusterjobs.c ---------- */

/* What clusterjobs.c and clusterroute.c may do with the connection */
static void link_query(struct cluster *cl, const char *sql, int n,
		       const char *const *vals, cj_result_fn fn, void *arg)
{
	q_text(cl, NULL, fn, arg, sql, n, vals);
	pump(cl);
}

static int link_is_ready(const struct cluster *cl)
{
	return JOINED(cl);
}

static const char *link_host_name(const struct cluster *cl)
{
	return cl->name;
}

static const struct cluster_link jobs_link = {
	link_query, link_is_ready, link_host_name
};

int cluster_cmd_logs_follow(struct cluster *cl, const char *app, long n,
			    struct client *c)
{
	return cjobs_logs_follow(cl && JOINED(cl) ? cl->jobs : NULL, app, n, c);
}

/* ---------- commands ---------- */

static int refuse_unless_ready(struct cluster *cl, struct client *c)
{
	if (!cl) {
		client_error(c, "this host is not in a cluster (set 'cluster:' in berth.yaml)");
		return -1;
	}
	if (cl->state == CL_REMOVED || cl->refused) {
		client_error(c, "%s", cl->last_error);
		return -1;
	}
	if (!JOINED(cl)) {
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
			    PQgetvalue(res, i, 6)[0] == 't' ? "gone" :
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
	       "  FROM berth_host_apps x WHERE x.host = h.name), '-'), "
	       " h.removing "
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
		client_error_code(job->c, CONTROL_ERR_NOTFOUND,
				  "app '%s' does not exist", job->app);
	else
		client_ok(job->c);
	job_free(job);	/* drops the client */
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

/*
 * Who this host is, whatever its name: a random id kept in
 * STATE/cluster/host-id, made on the first start.  It holds the host's
 * name in berth_hosts (docs/cluster.md).
 */
static int host_identity(char **out, struct engine *e)
{
	char *dir = engine_path(e, "cluster");
	char *path = engine_path(e, "cluster/host-id");
	struct buf b = BUF_INIT;
	unsigned char raw[16];
	char hex[2 * sizeof(raw) + 2];
	size_t i;
	int ret = -1, r;

	*out = NULL;
	r = read_file(&b, path, 256);
	if (r == 0) {
		while (b.len && b.data[b.len - 1] == '\n')
			b.data[--b.len] = '\0';
		if (b.len < 16 || b.len > 64 || strspn(b.data,
		    "0123456789abcdef") != b.len) {
			error_set("'%s' is not a host id (delete it: a new one is made)",
				  path);
			goto out;
		}
		*out = xstrdup(b.data);
		ret = 0;
		goto out;
	}
	if (r != ERR_NOTFOUND)
		goto out;	/* read_file said why */
	if (getrandom(raw, sizeof(raw), 0) != (ssize_t)sizeof(raw)) {
		error_setsys("getrandom");
		goto out;
	}
	for (i = 0; i < sizeof(raw); i++)
		snprintf(hex + 2 * i, 3, "%02x", raw[i]);
	hex[2 * sizeof(raw)] = '\n';
	if (mkdir_p(dir, 0700) < 0 ||
	    write_file_atomic(path, hex, 2 * sizeof(raw) + 1, 0600) < 0)
		goto out;
	hex[2 * sizeof(raw)] = '\0';
	*out = xstrdup(hex);
	ret = 0;
out:
	buf_release(&b);
	free(dir);
	free(path);
	return ret;
}

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
	cl->removed_path = engine_path(e, "cluster/removed");
	if (host_identity(&cl->identity, e) < 0) {
		cluster_free(cl);
		return -1;
	}
	e->on_deploy_end = on_deploy_end;
	e->on_deploy_end_arg = cl;
	cl->jobs = cjobs_new(cl, e, &jobs_link);
	*out = cl;
	if (path_exists(cl->removed_path)) {
		removed_here(cl);
		log_warnx("cluster: %s", cl->last_error);
		return 0;
	}
	log_info("cluster: joining as %s (groups %s)", cl->name, cl->groups);
	connect_start(cl);
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
	loop_del_timer(cl->e->loop, cl->leave_timer);
	cl->state = CL_DOWN;
	close_conn(cl);
	fail_all(cl);
	while (cl->watches) {
		client_data(cl->watches->c, "-----> this engine stops; the rollout goes on: 'cluster status' shows how");
		watch_end_ok(cl, cl->watches);
	}
	while (cl->opwatches) {
		client_data(cl->opwatches->c, "-----> this engine stops; the other hosts go on: 'ps %s' shows them",
			    cl->opwatches->app);
		opwatch_end(cl, cl->opwatches);
	}
	while (cl->gates) {
		if (cl->gates->redo)
			client_error(cl->gates->c, "the engine stops: nothing was changed");
		else
			client_error(cl->gates->c, "the engine stops: the change is live on this host only");
		gate_free(cl, cl->gates);
	}
	while (cl->publishes) {
		if (cl->publishes->c)
			client_error(cl->publishes->c, "the engine stops: the change is live on this host only");
		publish_free(cl, cl->publishes);
	}
	cjobs_free(cl->jobs);
	while (cl->pending)
		pending_drop(cl, cl->pending);
	while (cl->applied) {
		struct cl_applied *ap = cl->applied;

		cl->applied = ap->next;
		free(ap->app);
		free(ap);
	}
	free(cl->conninfo);
	free(cl->identity);
	free(cl->removed_path);
	free(cl->name);
	free(cl->address);
	free(cl->groups);
	free(cl->first_group);
	free(cl->last_error);
	free(cl);
}

int cluster_joined(const struct cluster *cl)
{
	return cl && JOINED(cl);
}
