/*
 * appstats: numbers per app for "stats NAME" and the dashboard's plots,
 * kept in the engine's memory only (an engine restart starts them over).
 *
 * - Requests, 5xx answers and service times per minute over the last
 *   hour, from the router's lines: appstats_request(), fed by whoever
 *   reads the router log (liveroute.c).  One ring of APPSTATS_MINUTES
 *   buckets per app that got a request, made on its first one (about
 *   8 KiB); the p95 comes from a histogram of fixed, roughly logarithmic
 *   edges, so it is the upper edge of the bin it falls in.
 * - Each process's resident memory once a minute over the last hour, and
 *   its CPU use between two samples: appstats_start() samples every
 *   process on a one-minute timer, and "stats NAME" takes a fresh sample
 *   of that app's processes too.  /proc only (cgroup_pid_usage()): small
 *   reads that never block.  60 samples per process (240 bytes).
 *
 * Stats of an app that no longer exists are dropped at the next sample.
 * Nothing here allocates per request once an app's ring exists.
 */
#ifndef BERTH_APPSTATS_H
#define BERTH_APPSTATS_H

#include <stdint.h>

struct app;
struct client;
struct engine;
struct appstats;

#define APPSTATS_MINUTES 60
#define APPSTATS_SAMPLE_MS 60000L

/* One minute of one app, as read back; p95_ms is -1 with no request. */
struct appstats_minute {
	int64_t minute;		/* unix time / 60 */
	unsigned long requests;
	unsigned long errors;	/* status 500-599 */
	long p95_ms;
};

/* --- the pure part (no engine): tested in tests/unit/appstats.c --- */

struct appstats *appstats_new(void);
void appstats_free(struct appstats *st);	/* NULL is fine */
/* One answered request of app (any name: it is only a key). */
void appstats_request(struct appstats *st, const char *app, int status,
		      long service_ms, int64_t now_s);
/* The APPSTATS_MINUTES minutes ending with now_s's, oldest first.
 * Minutes with no request have zeros (and p95_ms -1). */
void appstats_minutes(const struct appstats *st, const char *app,
		      int64_t now_s, struct appstats_minute *out);
/* Record a memory sample (bytes) of process 'proc' of app at now_s; a new
 * pid restarts its CPU baseline.  *cpu_pct gets the CPU use (percent of
 * one core) since the previous sample, or -1 when there is none yet. */
void appstats_mem_sample(struct appstats *st, const char *app,
			 const char *proc, long pid, uint64_t rss,
			 uint64_t cpu_usec, int64_t now_ms, double *cpu_pct);
/* Memory of proc per minute (KiB, 0: no sample), oldest first. */
void appstats_mem_minutes(const struct appstats *st, const char *app,
			  const char *proc, int64_t now_s, uint64_t *kib);
/* Drop what is kept of app. */
void appstats_forget(struct appstats *st, const char *app);
/* What is kept of from is to's now (apps:rename; what to had is
 * dropped); its database size is asked again. */
void appstats_rename(struct appstats *st, const char *from, const char *to);

/* --- the engine's part --- */

/* Make e->stats and start sampling memory every APPSTATS_SAMPLE_MS. */
void appstats_start(struct engine *e);
void appstats_stop(struct engine *e);
/*
 * "stats NAME": answers c with lines (oldest minute first):
 *   minute M                       the newest minute (unix time / 60)
 *   requests N N ...               60 counts
 *   errors N N ...                 60 counts of 5xx answers
 *   p95 MS|- ...                   60 values
 *   proc NAME PID STATE RESTARTS RSS CPU    CPU: percent or "-"
 *   mem NAME KIB|- ...             60 values per process
 *   status crash-looping           when a process keeps crashing
 *   step STEP                      what a running deploy is doing
 *   database NAME BYTES|-          when the app has one; the size is
 *                                  asked without blocking (postgres_size_
 *                                  async()) at most every 30 s and shown
 *                                  from the next "stats" on
 *   host NAME                      one per host name it answers
 *   release N pusher P config C    per release: who pushed, what changed
 * step: what a's running deploy is doing (app_deploy_step(), asked by
 * the caller: the deploy is above this file), or NULL.
 */
void appstats_cmd(struct engine *e, struct app *a, const char *step,
		  struct client *c);

#endif
