/*
 * clusterjobs: what runs on one host of a cluster at a time, and "logs
 * -f" across hosts (docs/cluster.md).  Internal to the cluster: cluster.c
 * owns the connection and calls in here; this file only queues queries
 * on that connection (through the struct cluster_link it is lent) and never waits on the network.
 *
 * Single-writer cron entries.  Every cron entry of a live release here
 * is tried, at each heartbeat, with pg_try_advisory_lock(CJ_CRON_CLASS,
 * hashtext(APP, SCHEDULE, COMMAND)) on the cluster's session.  The host
 * that gets the lock runs the entry (the engine's cron_may_run hook says
 * so to runs.c) and holds it while its session lives; the others skip
 * it.  When that host dies or loses the database, PostgreSQL ends its
 * session, the lock goes, and the next heartbeat of another host takes
 * it.  While this host is not connected it holds nothing and runs no
 * entry of a cluster app (a run missed beats a run twice).
 *
 * Rollouts.  A release that went live here is published (and rolls out)
 * only while this host holds pg_try_advisory_lock(CJ_ROLLOUT_CLASS,
 * hashtext(APP)); a publish of the same app from another host while
 * that rollout goes on waits for it (the pusher is told), then rolls
 * out.  The lock is let go when the push's report ends (every host took
 * it, one failed, or the report gave up waiting), or right after the
 * publish when nobody waits for a report.
 *
 * logs -f.  The asker inserts a row in berth_follows and LISTENs on
 * "berth_logs"; each host that runs the app reads its log file from
 * the end (after sending its last N lines) and sends new lines as
 * notifications "ID HOST\nLINE...", which the asker prints as they come,
 * "TIME HOST SOURCE text".  The asker refreshes its row every heartbeat;
 * a row 30 s old is dropped by whoever sees it.
 */
#ifndef BERTH_CLUSTERJOBS_H
#define BERTH_CLUSTERJOBS_H

#include <libpq-fe.h>

struct cluster;
struct cluster_jobs;
struct client;
struct engine;

#define CJ_CRON_CLASS 1919251571	/* advisory lock classes (int4) */
#define CJ_ROLLOUT_CLASS 1919251572
#define CJ_LOGS_CHANNEL "berth_logs"

/* ----- lent by cluster.c (calls go down: this file never names it) ----- */
typedef void (*cj_result_fn)(struct cluster *cl, PGresult *res, void *arg);
struct cluster_link {
	/* Queue a query with text parameters on the cluster's connection;
	 * fn (may be NULL) hears its result, or NULL when it could not
	 * run. */
	void (*query)(struct cluster *cl, const char *sql, int n,
		      const char *const *vals, cj_result_fn fn, void *arg);
	/* connected and registered under this host's name */
	int (*is_ready)(const struct cluster *cl);
	const char *(*host_name)(const struct cluster *cl);
};

/* ----- called by cluster.c ----- */
/* Sets the engine's cron_may_run hook.  link outlives the jobs. */
struct cluster_jobs *cjobs_new(struct cluster *cl, struct engine *e,
			       const struct cluster_link *link);
/* After the connection's own queries have failed (cluster_free). */
void cjobs_free(struct cluster_jobs *j);
/* Connected (after the schema): its table, then as at a heartbeat. */
void cjobs_ready(struct cluster_jobs *j);
/* The connection is gone, and its locks with it (after its queries
 * were failed). */
void cjobs_lost(struct cluster_jobs *j);
/* Every heartbeat: take free cron locks, let go of unused ones, keep
 * the follows fresh. */
void cjobs_tick(struct cluster_jobs *j);
/* A notification; 1 if it was this file's ("berth_logs"). */
int cjobs_notify(struct cluster_jobs *j, const char *channel,
		 const char *payload);

/* "logs -f APP [-n N]": -1 (nothing said) when not connected (j may
 * be NULL). */
int cjobs_logs_follow(struct cluster_jobs *j, const char *app, long n,
		      struct client *c);

/*
 * Publish a release that went live here once this host holds the app's
 * rollout lock: publish(cl, app, number, commit, source, c) now, or
 * later (c, referenced by the caller, is handed over to publish).
 */
typedef void (*cj_publish_fn)(struct cluster *cl, const char *app,
			      int number, const char *commit,
			      const char *source, struct client *c);
void cjobs_rollout(struct cluster_jobs *j, const char *app, int number,
		   const char *commit, const char *source, struct client *c,
		   cj_publish_fn publish);
/* The rollout of app from here ended (or was never watched). */
void cjobs_rollout_done(struct cluster_jobs *j, const char *app);

/* ----- clusterroute.c, driven by clusterjobs.c ----- */
struct cluster_route;
/* With "route: group" in berth.yaml, sets the engine's route_remote
 * hook. */
struct cluster_route *croute_new(struct cluster *cl, struct engine *e,
				 const struct cluster_link *link);
void croute_free(struct cluster_route *r);
/* Connected: this host's route port into berth_hosts. */
void croute_ready(struct cluster_route *r, struct cluster *cl);
void croute_tick(struct cluster_route *r);
void croute_lost(struct cluster_route *r);

#endif
