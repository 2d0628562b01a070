/*
 * appstats: see appstats.h.
 */
#include "appstats.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "app.h"
#include "engine.h"
#include "isolate.h"
#include "loop.h"
#include "postgres.h"
#include "release.h"
#include "util.h"
#include "banned.h"

/* Upper edges (ms) of the service time bins; the last one is open. */
static const long bin_edges[] = {
	1, 2, 3, 5, 7, 10, 15, 20, 30, 50, 70, 100, 150, 200, 300, 500, 700,
	1000, 1500, 2000, 3000, 5000, 7000, 10000, 15000, 20000, 30000, 60000,
};
#define NBINS (ARRAY_SIZE(bin_edges) + 1)

struct bucket {
	int64_t minute;
	uint32_t requests;
	uint32_t errors;
	uint32_t bins[NBINS];
};

struct proc_mem {
	struct proc_mem *next;
	char name[48];
	long pid;
	uint64_t last_cpu_usec;
	int64_t last_ms;
	double cpu_pct;
	int64_t minute[APPSTATS_MINUTES];
	uint32_t kib[APPSTATS_MINUTES];
	int seen;		/* in the latest sample of its app */
};

struct app_stats {
	struct app_stats *next;
	char name[APP_NAME_MAX + 1];
	struct bucket *ring;	/* APPSTATS_MINUTES, on the first request */
	struct proc_mem *procs;
	long long db_bytes;	/* its database's size, -1: not known */
	int64_t db_asked_ms;	/* when it was last asked (now_ms()) */
	int db_asking;		/* a question is in flight */
};

struct appstats {
	struct app_stats *apps;
	struct loop *loop;
	uint64_t timer;
};

struct appstats *appstats_new(void)
{
	return xcalloc(1, sizeof(struct appstats));
}

static void app_stats_free(struct app_stats *as)
{
	struct proc_mem *p, *next;

	for (p = as->procs; p; p = next) {
		next = p->next;
		free(p);
	}
	free(as->ring);
	free(as);
}

void appstats_free(struct appstats *st)
{
	struct app_stats *as, *next;

	if (!st)
		return;
	for (as = st->apps; as; as = next) {
		next = as->next;
		app_stats_free(as);
	}
	free(st);
}

static struct app_stats *find(const struct appstats *st, const char *app)
{
	struct app_stats *as;

	for (as = st->apps; as; as = as->next)
		if (!strcmp(as->name, app))
			return as;
	return NULL;
}

static struct app_stats *get(struct appstats *st, const char *app)
{
	struct app_stats *as = find(st, app);

	if (as || strlen(app) > APP_NAME_MAX)
		return as;
	as = xcalloc(1, sizeof(*as));
	as->db_bytes = -1;
	snprintf(as->name, sizeof(as->name), "%s", app);
	as->next = st->apps;
	st->apps = as;
	return as;
}

void appstats_forget(struct appstats *st, const char *app)
{
	struct app_stats **pp, *as;

	for (pp = &st->apps; (as = *pp); pp = &as->next) {
		if (!strcmp(as->name, app)) {
			*pp = as->next;
			app_stats_free(as);
			return;
		}
	}
}

void appstats_rename(struct appstats *st, const char *from, const char *to)
{
	struct app_stats *as = find(st, from);

	if (!as || strlen(to) > APP_NAME_MAX)
		return;
	appstats_forget(st, to);
	snprintf(as->name, sizeof(as->name), "%s", to);
	as->db_bytes = -1;
	as->db_asked_ms = 0;
}

static size_t slot_of(int64_t minute)
{
	int64_t m = minute % APPSTATS_MINUTES;

	return (size_t)(m < 0 ? m + APPSTATS_MINUTES : m);
}

void appstats_request(struct appstats *st, const char *app, int status,
		      long service_ms, int64_t now_s)
{
	struct app_stats *as = get(st, app);
	int64_t minute = now_s / 60;
	struct bucket *b;
	size_t i;

	if (!as)
		return;
	if (!as->ring)
		as->ring = xcalloc(APPSTATS_MINUTES, sizeof(*as->ring));
	b = &as->ring[slot_of(minute)];
	if (b->minute != minute) {
		memset(b, 0, sizeof(*b));
		b->minute = minute;
	}
	for (i = 0; i < ARRAY_SIZE(bin_edges); i++)
		if (service_ms <= bin_edges[i])
			break;
	b->requests++;
	if (status >= 500 && status <= 599)
		b->errors++;
	b->bins[i]++;
}

static long p95_of(const struct bucket *b)
{
	/* the smallest bin edge with at least 95% of requests at or below */
	uint64_t want = ((uint64_t)b->requests * 95 + 99) / 100, sum = 0;
	size_t i;

	if (!b->requests)
		return -1;
	for (i = 0; i < NBINS; i++) {
		sum += b->bins[i];
		if (sum >= want)
			break;
	}
	return i < ARRAY_SIZE(bin_edges) ? bin_edges[i] :
		bin_edges[ARRAY_SIZE(bin_edges) - 1] + 1;
}

void appstats_minutes(const struct appstats *st, const char *app,
		      int64_t now_s, struct appstats_minute *out)
{
	const struct app_stats *as = find(st, app);
	int64_t now = now_s / 60;
	size_t i;

	for (i = 0; i < APPSTATS_MINUTES; i++) {
		int64_t m = now - (APPSTATS_MINUTES - 1) + (int64_t)i;
		const struct bucket *b = as && as->ring ?
			&as->ring[slot_of(m)] : NULL;

		memset(&out[i], 0, sizeof(out[i]));
		out[i].minute = m;
		out[i].p95_ms = -1;
		if (b && b->minute == m) {
			out[i].requests = b->requests;
			out[i].errors = b->errors;
			out[i].p95_ms = p95_of(b);
		}
	}
}

static struct proc_mem *proc_find(const struct app_stats *as,
				  const char *proc)
{
	struct proc_mem *p;

	for (p = as ? as->procs : NULL; p; p = p->next)
		if (!strcmp(p->name, proc))
			return p;
	return NULL;
}

void appstats_mem_sample(struct appstats *st, const char *app,
			 const char *proc, long pid, uint64_t rss,
			 uint64_t cpu_usec, int64_t now_ms, double *cpu_pct)
{
	struct app_stats *as = get(st, app);
	struct proc_mem *p = proc_find(as, proc);
	int64_t minute = now_ms / 60000;
	size_t s = slot_of(minute);

	*cpu_pct = -1;
	if (!as || strlen(proc) >= sizeof(p->name))
		return;
	if (!p) {
		p = xcalloc(1, sizeof(*p));
		snprintf(p->name, sizeof(p->name), "%s", proc);
		p->next = as->procs;
		p->cpu_pct = -1;
		as->procs = p;
	}
	p->seen = 1;
	if (p->pid != pid || cpu_usec < p->last_cpu_usec) {
		p->pid = pid;
		p->cpu_pct = -1;
		p->last_cpu_usec = cpu_usec;
		p->last_ms = now_ms;
	} else if (now_ms - p->last_ms >= 1000) {
		/* a sample less than a second after the last keeps its
		 * figure: too short a span to mean much */
		p->cpu_pct = (double)(cpu_usec - p->last_cpu_usec) / 10.0 /
			     (double)(now_ms - p->last_ms);
		p->last_cpu_usec = cpu_usec;
		p->last_ms = now_ms;
	}
	p->minute[s] = minute;
	p->kib[s] = (uint32_t)(rss / 1024 > UINT32_MAX ? UINT32_MAX :
			       rss / 1024);
	*cpu_pct = p->cpu_pct;
}

void appstats_mem_minutes(const struct appstats *st, const char *app,
			  const char *proc, int64_t now_s, uint64_t *kib)
{
	const struct proc_mem *p = proc_find(find(st, app), proc);
	int64_t now = now_s / 60;
	size_t i;

	for (i = 0; i < APPSTATS_MINUTES; i++) {
		int64_t m = now - (APPSTATS_MINUTES - 1) + (int64_t)i;
		size_t s = slot_of(m);

		kib[i] = p && p->minute[s] == m ? p->kib[s] : 0;
	}
}

/* --- the engine's part --- */

/* Sample every live process of a; forget processes that are gone.
 * cpu (may be NULL) gets each one's CPU use, in the order of procs. */
static void sample_app(struct appstats *st, struct app *a, double *cpu,
		       size_t max)
{
	struct app_stats *as;
	struct proc_mem **pp, *pm;
	struct proc *p;
	int64_t now = (int64_t)time(NULL) * 1000;
	size_t i = 0;

	as = get(st, a->name);
	if (!as)
		return;
	for (pm = as->procs; pm; pm = pm->next)
		pm->seen = 0;
	for (p = a->live ? a->live->procs : NULL; p; p = p->next, i++) {
		uint64_t rss = 0, cpu_usec = 0;
		double pct = -1;

		/* the process's cgroup (its children too) when isolated */
		if (p->pid > 0 && p->state == PROC_UP &&
		    isolate_usage(a->eng->iso, p->pid, &rss, &cpu_usec) == 0)
			appstats_mem_sample(st, a->name, p->name, (long)p->pid,
					    rss, cpu_usec, now, &pct);
		else if ((pm = proc_find(as, p->name)))
			pm->seen = 1;	/* restarting: keep its history */
		if (cpu && i < max)
			cpu[i] = pct;
	}
	for (pp = &as->procs; (pm = *pp);) {
		if (!pm->seen) {
			*pp = pm->next;
			free(pm);
		} else {
			pp = &pm->next;
		}
	}
	error_clear();
}

static void on_sample_timer(struct loop *l, void *arg)
{
	struct engine *e = arg;
	struct appstats *st = e->stats;
	struct app_stats **pp, *as;
	struct app *a;

	st->timer = loop_add_timer(l, APPSTATS_SAMPLE_MS, on_sample_timer, e);
	for (a = e->apps; a; a = a->next)
		if (!a->removing && a->live)
			sample_app(st, a, NULL, 0);
	/* apps removed since: their numbers go with them */
	for (pp = &st->apps; (as = *pp);) {
		if (!app_find(e, as->name)) {
			*pp = as->next;
			app_stats_free(as);
		} else {
			pp = &as->next;
		}
	}
}

void appstats_start(struct engine *e)
{
	e->stats = appstats_new();
	e->stats->loop = e->loop;
	e->stats->timer = loop_add_timer(e->loop, APPSTATS_SAMPLE_MS,
					 on_sample_timer, e);
}

void appstats_stop(struct engine *e)
{
	if (!e->stats)
		return;
	if (e->stats->timer)
		loop_del_timer(e->stats->loop, e->stats->timer);
	appstats_free(e->stats);
	e->stats = NULL;
}

#define DB_SIZE_EVERY_MS 30000L

static void on_db_size(void *arg, const char *app, long long bytes)
{
	struct app_stats *as = find(arg, app);

	if (!as)
		return;
	as->db_asking = 0;
	as->db_bytes = bytes;
}

/* The size last known (-1: none yet), and a fresh question when it is
 * old: the answer comes for a later "stats". */
static long long db_size(struct engine *e, struct app *a)
{
	struct app_stats *as = get(e->stats, a->name);

	if (!as)
		return -1;
	if (e->pg && !as->db_asking && (!as->db_asked_ms ||
	    now_ms() - as->db_asked_ms >= DB_SIZE_EVERY_MS)) {
		as->db_asked_ms = now_ms();
		if (postgres_size_async(e->pg, a->name, on_db_size,
					e->stats) == 0)
			as->db_asking = 1;
		error_clear();
	}
	return as->db_bytes;
}

/* A process keeps crashing: waiting to restart after at least three
 * crashes in a row, each soon after its start (the back-off doubled). */
static int crash_looping(const struct proc *p)
{
	return p->state == PROC_BACKOFF && p->restarts >= 3 &&
	       p->restart.backoff.next_ms >= 8000;
}

static void add_series(struct buf *b, const char *label)
{
	buf_reset(b);
	buf_addstr(b, label);
}

void appstats_cmd(struct engine *e, struct app *a, const char *step,
		  struct client *c)
{
	struct appstats_minute mins[APPSTATS_MINUTES];
	uint64_t kib[APPSTATS_MINUTES];
	double cpu[64];
	struct buf line = BUF_INIT, typed = BUF_INIT;
	struct strv hosts = STRV_INIT;
	const char *state;
	long long db_bytes = -1;
	int64_t now_s = (int64_t)time(NULL);
	struct proc *p;
	int *nums = NULL, crashing = 0;
	size_t i, k, n;

	if (!e->stats) {
		client_error(c, "stats are not kept");
		return;
	}
	for (i = 0; i < ARRAY_SIZE(cpu); i++)
		cpu[i] = -1;
	sample_app(e->stats, a, cpu, ARRAY_SIZE(cpu));
	appstats_minutes(e->stats, a->name, now_s, mins);
	client_data(c, "minute %lld", (long long)(now_s / 60));
	/* for programs, typed: "fields minute=N requests=A,B,...
	 * errors=... p95=..." (one number a minute, oldest first, "-" for
	 * none), then one line a process, a host and a release */
	buf_addf(&typed, "minute=%lld requests=", (long long)(now_s / 60));
	add_series(&line, "requests");
	for (i = 0; i < APPSTATS_MINUTES; i++) {
		buf_addf(&line, " %lu", mins[i].requests);
		buf_addf(&typed, "%s%lu", i ? "," : "", mins[i].requests);
	}
	client_data(c, "%s", line.data);
	buf_addstr(&typed, " errors=");
	add_series(&line, "errors");
	for (i = 0; i < APPSTATS_MINUTES; i++) {
		buf_addf(&line, " %lu", mins[i].errors);
		buf_addf(&typed, "%s%lu", i ? "," : "", mins[i].errors);
	}
	client_data(c, "%s", line.data);
	buf_addstr(&typed, " p95=");
	add_series(&line, "p95");
	for (i = 0; i < APPSTATS_MINUTES; i++) {
		if (i)
			buf_addstr(&typed, ",");
		if (mins[i].p95_ms < 0) {
			buf_addstr(&line, " -");
			buf_addstr(&typed, "-");
		} else {
			buf_addf(&line, " %ld", mins[i].p95_ms);
			buf_addf(&typed, "%ld", mins[i].p95_ms);
		}
	}
	client_data(c, "%s", line.data);
	client_fields(c, "%s", typed.data);
	for (p = a->live ? a->live->procs : NULL, k = 0; p;
	     p = p->next, k++) {
		uint64_t rss = 0, cpu_usec = 0;
		char pct[24] = "-";

		if (p->pid > 0 && p->state == PROC_UP &&
		    isolate_usage(e->iso, p->pid, &rss, &cpu_usec) < 0)
			rss = 0;
		if (k < ARRAY_SIZE(cpu) && cpu[k] >= 0)
			snprintf(pct, sizeof(pct), "%.1f", cpu[k]);
		state = p->state == PROC_UP ? "up" :
			p->state == PROC_STARTING ? "starting" :
			p->state == PROC_BACKOFF ? "restarting" :
			p->state == PROC_STOPPING ? "stopping" : "stopped";
		client_data(c, "proc %s %ld %s %d %llu %s", p->name,
			    (long)p->pid, state, p->restarts,
			    (unsigned long long)rss, pct);
		buf_reset(&typed);
		buf_addf(&typed, "process=%s pid=%ld state=%s restarts=%d rss=%llu cpu=%s mem=",
			 p->name, (long)p->pid, state, p->restarts,
			 (unsigned long long)rss, pct);
		appstats_mem_minutes(e->stats, a->name, p->name, now_s, kib);
		buf_reset(&line);
		buf_addf(&line, "mem %s", p->name);
		for (i = 0; i < APPSTATS_MINUTES; i++) {
			if (i)
				buf_addstr(&typed, ",");
			if (kib[i]) {
				buf_addf(&line, " %llu",
					 (unsigned long long)kib[i]);
				buf_addf(&typed, "%llu",
					 (unsigned long long)kib[i]);
			} else {
				buf_addstr(&line, " -");
				buf_addstr(&typed, "-");
			}
		}
		client_data(c, "%s", line.data);
		client_fields(c, "%s", typed.data);
		crashing |= crash_looping(p);
	}
	error_clear();
	if (crashing)
		client_data(c, "status crash-looping");
	if (step)
		client_data(c, "step %s", step);
	if (app_has_database(a)) {
		char *db = postgres_ident(a->name);
		long long bytes = db_bytes = db_size(e, a);

		if (bytes >= 0)
			client_data(c, "database %s %lld", db, bytes);
		else
			client_data(c, "database %s -", db);
		free(db);
	}
	client_data(c, "host %s.%s", a->name, e->cfg->domain);
	client_fields(c, "host=%s.%s", a->name, e->cfg->domain);
	app_hosts_list(a, &hosts);
	for (i = 0; i < hosts.n; i++) {
		client_data(c, "host %s", hosts.v[i]);
		client_fields(c, "host=%s", hosts.v[i]);
	}
	strv_release(&hosts);
	if (a->maintenance)
		client_data(c, "maintenance on");
	n = release_list(a->dir, &nums);
	for (i = n; i-- > 0;) {
		char *pusher = release_meta_get(a->dir, nums[i], "pusher");
		char *conf = release_meta_get(a->dir, nums[i], "config");

		client_data(c, "release %d pusher %s config %s", nums[i],
			    pusher && *pusher ? pusher : "-",
			    conf && *conf ? conf : "-");
		buf_reset(&typed);
		buf_addf(&typed, "release=%d", nums[i]);
		control_field_add(&typed, "pusher", pusher);
		control_field_add(&typed, "config", conf);
		client_fields(c, "%s", typed.data);
		free(pusher);
		free(conf);
	}
	free(nums);
	/* the app's state, for programs */
	buf_reset(&typed);
	buf_addf(&typed, "crash-looping=%d maintenance=%d", crashing,
		 a->maintenance ? 1 : 0);
	control_field_add(&typed, "step", step);
	if (app_has_database(a)) {
		char *db = postgres_ident(a->name);

		control_field_add(&typed, "database", db);
		if (db_bytes >= 0)
			buf_addf(&typed, " database-bytes=%lld", db_bytes);
		free(db);
	}
	client_ok_fields(c, "%s", typed.data);
	buf_release(&typed);
	buf_release(&line);
}
