/* clusterjobs: see clusterjobs.h and docs/cluster.md. */
#include "clusterjobs.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "app.h"
#include "cluster.h"
#include "engine.h"
#include "log.h"
#include "logger.h"
#include "loop.h"
#include "manifest.h"
#include "util.h"
#include "banned.h"

/* cluster.c's connection, lent at cjobs_new()/croute_new() */
static const struct cluster_link *lk;

#define TAIL_POLL_MS 250
#define TAIL_READ_MAX (256 * 1024)
#define NOTIFY_MAX 7000		/* PostgreSQL's payload limit is 8000 */
#define FOLLOW_STALE "30 seconds"
#define ROLLOUT_HOLD_MAX_MS (15L * 60 * 1000)

/* A cron entry of an app here, and whether this host holds its lock. */
struct cj_lock {
	struct cj_lock *next;
	struct cluster_jobs *j;
	char *app;
	char *key;		/* APP \n SCHEDULE \n COMMAND */
	char *label;		/* "cron.N ('SCHEDULE')" */
	int held, asking, seen;
};

/* A follow another host (or this one) asked for: this host's lines. */
struct cj_tail {
	struct cj_tail *next;
	struct cluster_jobs *j;
	char *id, *app;
	long n;
	off_t off;
	int seen;
	uint64_t timer;
};

/* A "logs -f" asked here. */
struct cj_follow {
	struct cj_follow *next;
	struct cluster_jobs *j;
	struct client *c;
	char *app;
	char id[24];
	long n;
	int asking, gone;
	int writing;	/* follow_lines() is writing to c: a close waits */
};

/* The rollout lock of an app, held while rollouts from here go on. */
struct cj_roll {
	struct cj_roll *next;
	char *app;
	int held;		/* rollouts from here under it */
	int64_t since;
};

/* A publish asking for the rollout lock. */
struct cj_ask_roll {
	struct cluster_jobs *j;
	char *app, *commit, *source;
	int number;
	struct client *c;
	cj_publish_fn publish;
};

struct cluster_jobs {
	struct cluster *cl;
	struct engine *e;
	struct cj_lock *locks;
	struct cj_tail *tails;
	struct cj_follow *follows;
	struct cj_roll *rolls;
	int listening;
	int scanning, scan_again;
	int table_ready;
	struct cluster_route *route;	/* route: group (clusterroute.c) */
};

/* ---------- single-writer cron entries ---------- */

static struct cj_lock *lock_find(struct cluster_jobs *j, const char *key)
{
	struct cj_lock *l;

	for (l = j->locks; l; l = l->next)
		if (!strcmp(l->key, key))
			return l;
	return NULL;
}

static char *cron_key(const char *app, const struct cron_spec *cs)
{
	return xasprintf("%s\n%s\n%s", app, cs->schedule, cs->cmd);
}

/* The engine's cron_may_run: only the host holding the entry's lock. */
static int cron_may_run(void *arg, struct app *a, const struct cron_spec *cs)
{
	struct cluster_jobs *j = arg;
	char *key = cron_key(a->name, cs);
	struct cj_lock *l = lock_find(j, key);

	free(key);
	return l && l->held;
}

static void cron_say(struct cluster_jobs *j, struct cj_lock *l,
		     const char *what)
{
	struct app *a = app_find(j->e, l->app);

	log_info("cluster: %s of '%s' %s", l->label, l->app, what);
	if (a && a->log)
		logger_linef(a->log, "berth", "cluster: %s %s", l->label, what);
}

static void on_cron_lock(struct cluster *cl, PGresult *res, void *arg)
{
	struct cj_lock *l = arg;

	l->asking = 0;
	if (!res || PQresultStatus(res) != PGRES_TUPLES_OK ||
	    PQntuples(res) != 1 || PQgetvalue(res, 0, 0)[0] != 't')
		return;
	l->held = 1;
	cron_say(l->j, l, "runs on this host (it holds the entry's lock in the cluster)");
}

static void lock_free(struct cj_lock *l)
{
	free(l->app);
	free(l->key);
	free(l->label);
	free(l);
}

static void cron_sweep(struct cluster_jobs *j)
{
	struct cj_lock *l, **pp;
	struct app *a;
	char cls[16];

	snprintf(cls, sizeof(cls), "%d", CJ_CRON_CLASS);
	for (l = j->locks; l; l = l->next)
		l->seen = 0;
	for (a = j->e->apps; a; a = a->next) {
		size_t i;

		if (!a->live || a->removing)
			continue;
		for (i = 0; i < a->live->m.ncrons; i++) {
			char *key = cron_key(a->name, &a->live->m.crons[i]);

			l = lock_find(j, key);
			if (!l) {
				l = xcalloc(1, sizeof(*l));
				l->j = j;
				l->app = xstrdup(a->name);
				l->key = key;
				l->label = xasprintf("cron.%zu ('%s')", i + 1,
						     a->live->m.crons[i].schedule);
				l->next = j->locks;
				j->locks = l;
			} else {
				free(key);
			}
			l->seen = 1;
		}
	}
	for (pp = &j->locks; (l = *pp);) {
		const char *v[2] = { cls, l->key };

		if (l->asking) {
			pp = &l->next;
			continue;
		}
		if (l->seen && !l->held) {
			l->asking = 1;
			lk->query(j->cl,
				      "SELECT pg_try_advisory_lock($1::int, "
				      "hashtext($2))", 2, v, on_cron_lock, l);
			pp = &l->next;
			continue;
		}
		if (l->seen) {
			pp = &l->next;
			continue;
		}
		if (l->held) {
			lk->query(j->cl,
				      "SELECT pg_advisory_unlock($1::int, "
				      "hashtext($2))", 2, v, NULL, NULL);
			cron_say(j, l, "is no longer run by this host");
		}
		*pp = l->next;
		lock_free(l);
	}
}

/* ---------- logs -f: this host's lines for a follow ---------- */

static void tail_free(struct cluster_jobs *j, struct cj_tail *t)
{
	loop_del_timer(j->e->loop, t->timer);
	free(t->id);
	free(t->app);
	free(t);
}

/* Send lines (each ending in '\n') as notifications of at most
 * NOTIFY_MAX bytes: "ID HOST" then the lines. */
static void tail_send(struct cluster_jobs *j, struct cj_tail *t,
		      const char *data, size_t len)
{
	const char *host = lk->host_name(j->cl);
	struct buf msg = BUF_INIT;
	size_t pos = 0;

	while (pos < len) {
		const char *nl = memchr(data + pos, '\n', len - pos);
		size_t n = nl ? (size_t)(nl - (data + pos)) : len - pos;
		size_t keep = n > NOTIFY_MAX - 200 ? NOTIFY_MAX - 200 : n;

		if (msg.len && msg.len + keep + 1 > NOTIFY_MAX) {
			const char *v[2] = { CJ_LOGS_CHANNEL, msg.data };

			lk->query(j->cl, "SELECT pg_notify($1, $2)", 2, v,
				      NULL, NULL);
			buf_release(&msg);
		}
		if (!msg.len)
			buf_addf(&msg, "%s %s", t->id, host);
		if (n)
			buf_addf(&msg, "\n%.*s", (int)keep, data + pos);
		pos += n + 1;
	}
	if (msg.len) {
		const char *v[2] = { CJ_LOGS_CHANNEL, msg.data };

		lk->query(j->cl, "SELECT pg_notify($1, $2)", 2, v, NULL,
			      NULL);
	}
	buf_release(&msg);
}

static void on_tail_timer(struct loop *l, void *arg)
{
	struct cj_tail *t = arg;
	struct cluster_jobs *j = t->j;
	char *path = engine_path(j->e, "logs/%s/app.log", t->app);
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	struct stat st;
	char *data = NULL;
	ssize_t got;

	t->timer = loop_add_timer(l, TAIL_POLL_MS, on_tail_timer, t);
	free(path);
	if (fd < 0)
		return;
	if (fstat(fd, &st) < 0 || st.st_size == t->off)
		goto out;
	if (st.st_size < t->off)	/* rotated: the new file from its start */
		t->off = 0;
	data = xmalloc(TAIL_READ_MAX);
	got = pread(fd, data, TAIL_READ_MAX, t->off);
	if (got > 0) {
		/* whole lines only; the rest comes with the next read */
		char *end = memrchr(data, '\n', (size_t)got);

		if (end) {
			size_t n = (size_t)(end - data) + 1;

			tail_send(j, t, data, n);
			t->off += (off_t)n;
		} else if (got == TAIL_READ_MAX) {
			t->off += got;	/* one line this long: dropped */
		}
	}
out:
	free(data);
	close(fd);
}

/* A follow of an app here: its last n lines, then what comes. */
static void tail_start(struct cluster_jobs *j, const char *id,
		       const char *app, long n)
{
	struct cj_tail *t = xcalloc(1, sizeof(*t));
	char *path = engine_path(j->e, "logs/%s/app.log", app);
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	struct stat st;

	t->j = j;
	t->id = xstrdup(id);
	t->app = xstrdup(app);
	t->n = n;
	t->seen = 1;
	t->next = j->tails;
	j->tails = t;
	if (fd >= 0 && fstat(fd, &st) == 0) {
		off_t from = st.st_size > TAIL_READ_MAX ?
			st.st_size - TAIL_READ_MAX : 0;
		char *data = xmalloc(TAIL_READ_MAX + 1);
		ssize_t got = n > 0 ? pread(fd, data, (size_t)(st.st_size - from),
					    from) : 0;

		t->off = st.st_size;
		if (got > 0) {
			/* the last n whole lines */
			size_t end = (size_t)got, start;
			long k = 0;

			while (end > 0 && data[end - 1] != '\n')
				end--;
			t->off = from + (off_t)end;
			start = end;
			while (start > 0 && k <= n) {
				start--;
				if (start == 0 || data[start - 1] == '\n')
					k++;
				if (k == n && (start == 0 ||
					       data[start - 1] == '\n'))
					break;
			}
			if (from > 0 && start == 0) {
				/* a cut first line */
				char *nl = memchr(data, '\n', end);

				start = nl ? (size_t)(nl - data) + 1 : end;
			}
			if (end > start)
				tail_send(j, t, data + start, end - start);
		}
		free(data);
	}
	if (fd >= 0)
		close(fd);
	free(path);
	t->timer = loop_add_timer(j->e->loop, TAIL_POLL_MS, on_tail_timer, t);
}

static void scan_follows(struct cluster_jobs *j);

static void on_follow_rows(struct cluster *cl, PGresult *res, void *arg)
{
	struct cluster_jobs *j = arg;
	struct cj_tail *t, **pp;
	int i;

	j->scanning = 0;
	if (!res || PQresultStatus(res) != PGRES_TUPLES_OK)
		return;
	for (t = j->tails; t; t = t->next)
		t->seen = 0;
	for (i = 0; i < PQntuples(res); i++) {
		const char *id = PQgetvalue(res, i, 0);
		const char *app = PQgetvalue(res, i, 1);

		if (!app_name_valid(app) || !app_find(j->e, app))
			continue;
		for (t = j->tails; t && strcmp(t->id, id); t = t->next)
			;
		if (t)
			t->seen = 1;
		else
			tail_start(j, id, app, strtol(PQgetvalue(res, i, 2),
						      NULL, 10));
	}
	for (pp = &j->tails; (t = *pp);) {
		if (t->seen) {
			pp = &t->next;
			continue;
		}
		*pp = t->next;
		tail_free(j, t);
	}
	if (j->scan_again) {
		j->scan_again = 0;
		scan_follows(j);
	}
}

static void scan_follows(struct cluster_jobs *j)
{
	if (!j->table_ready || !lk->is_ready(j->cl))
		return;
	if (j->scanning) {
		j->scan_again = 1;
		return;
	}
	j->scanning = 1;
	lk->query(j->cl,
		      "SELECT id, app, n FROM berth_follows "
		      "WHERE asked > now() - interval '" FOLLOW_STALE "' "
		      "ORDER BY id", 0, NULL, on_follow_rows, j);
}

/* ---------- logs -f: the asker ---------- */

static void follow_free(struct cluster_jobs *j, struct cj_follow *f)
{
	struct cj_follow **pp;

	for (pp = &j->follows; *pp; pp = &(*pp)->next) {
		if (*pp == f) {
			*pp = f->next;
			break;
		}
	}
	if (f->c) {
		client_on_close(f->c, NULL, NULL);
		client_unref(f->c);
	}
	free(f->app);
	free(f);
}

/* A follow ends: its row goes; the last one here stops listening. */
static void follow_end(struct cluster_jobs *j, struct cj_follow *f)
{
	if (f->id[0] && lk->is_ready(j->cl)) {
		const char *v[1] = { f->id };

		lk->query(j->cl, "DELETE FROM berth_follows "
			      "WHERE id = $1::bigint", 1, v, NULL, NULL);
	}
	follow_free(j, f);
	if (!j->follows && j->listening && lk->is_ready(j->cl)) {
		lk->query(j->cl, "UNLISTEN " CJ_LOGS_CHANNEL, 0, NULL,
			      NULL, NULL);
		j->listening = 0;
	}
}

static void on_follow_close(struct client *c, void *arg)
{
	struct cj_follow *f = arg;

	f->gone = 1;
	if (!f->asking && !f->writing)
		follow_end(f->j, f);
}

static void on_follow_inserted(struct cluster *cl, PGresult *res, void *arg)
{
	struct cj_follow *f = arg;
	struct cluster_jobs *j = f->j;

	f->asking = 0;
	if (res && PQresultStatus(res) == PGRES_TUPLES_OK &&
	    PQntuples(res) == 1)
		snprintf(f->id, sizeof(f->id), "%s", PQgetvalue(res, 0, 0));
	if (f->gone) {
		follow_end(j, f);
		return;
	}
	if (!f->id[0]) {
		/* the error ends the connection: its close must not free f */
		client_on_close(f->c, NULL, NULL);
		client_error(f->c, "cannot follow the logs of the cluster's hosts: %s",
			     res ? PQresultErrorMessage(res) :
			     "no connection to the cluster database");
		follow_free(j, f);
		return;
	}
	/* every host scans now */
	lk->query(cl, "SELECT pg_notify('berth_cluster', 'follow')", 0,
		      NULL, NULL, NULL);
}

int cjobs_logs_follow(struct cluster_jobs *j, const char *app, long n,
		      struct client *c)
{
	struct cj_follow *f;
	char num[24];
	const char *v[3] = { app, NULL, num };

	if (!j || !j->table_ready || !lk->is_ready(j->cl))
		return -1;
	v[1] = lk->host_name(j->cl);
	f = xcalloc(1, sizeof(*f));
	f->j = j;
	f->c = c;
	f->app = xstrdup(app);
	f->n = n;
	f->asking = 1;
	client_ref(c);
	client_on_close(c, on_follow_close, f);
	f->next = j->follows;
	j->follows = f;
	snprintf(num, sizeof(num), "%ld", n);
	if (!j->listening) {
		lk->query(j->cl, "LISTEN " CJ_LOGS_CHANNEL, 0, NULL, NULL,
			      NULL);
		j->listening = 1;
	}
	/* follows nobody refreshed (an asker that died) go */
	lk->query(j->cl, "DELETE FROM berth_follows WHERE asked < "
		      "now() - interval '1 minute'", 0, NULL, NULL, NULL);
	lk->query(j->cl, "INSERT INTO berth_follows (app, asker, n) "
		      "VALUES ($1, $2, $3::int) RETURNING id", 3, v,
		      on_follow_inserted, f);
	return 0;
}

/* "ID HOST\nLINE\nLINE": each line as TIME HOST the rest. */
static void follow_lines(struct cluster_jobs *j, const char *payload)
{
	size_t idlen = strcspn(payload, " ");
	const char *host = payload + idlen, *p;
	size_t hostlen;
	struct cj_follow *f;

	if (!*host)
		return;
	host++;
	hostlen = strcspn(host, "\n");
	for (f = j->follows; f; f = f->next)
		if (f->id[0] && strlen(f->id) == idlen &&
		    !strncmp(f->id, payload, idlen))
			break;
	if (!f || f->gone)
		return;
	/* a write the client cannot take closes it (on_follow_close) */
	f->writing = 1;
	for (p = host + hostlen; *p == '\n' && !f->gone;) {
		const char *line = p + 1;
		size_t len = strcspn(line, "\n");
		size_t t = strcspn(line, " ");

		if (t > len)
			t = len;
		if (len)
			client_data(f->c, "%.*s %.*s%.*s", (int)t, line,
				    (int)hostlen, host, (int)(len - t),
				    line + t);
		p = line + len;
	}
	f->writing = 0;
	if (f->gone)
		follow_end(j, f);
}

/* ---------- rollouts, one at a time per app ---------- */

static struct cj_roll *roll_get(struct cluster_jobs *j, const char *app,
				int create)
{
	struct cj_roll *r;

	for (r = j->rolls; r; r = r->next)
		if (!strcmp(r->app, app))
			return r;
	if (!create)
		return NULL;
	r = xcalloc(1, sizeof(*r));
	r->app = xstrdup(app);
	r->next = j->rolls;
	j->rolls = r;
	return r;
}

static void ask_roll_free(struct cj_ask_roll *k)
{
	free(k->app);
	free(k->commit);
	free(k->source);
	free(k);
}

static void on_rollout_lock(struct cluster *cl, PGresult *res, void *arg)
{
	struct cj_ask_roll *k = arg;
	struct cluster_jobs *j = k->j;

	if (!res) {
		/* no connection: published as without a lock (it says) */
		k->publish(cl, k->app, k->number, k->commit, k->source, k->c);
	} else if (PQresultStatus(res) == PGRES_TUPLES_OK &&
		   PQntuples(res) == 1 && PQgetvalue(res, 0, 0)[0] == 't') {
		struct cj_roll *r = roll_get(j, k->app, 1);

		r->held++;
		r->since = now_ms();
		k->publish(cl, k->app, k->number, k->commit, k->source, k->c);
	} else {
		struct app *a = app_find(j->e, k->app);

		log_warnx("cluster: release %d of '%s' is live here only: a rollout of it from another host is under way",
			  k->number, k->app);
		if (a && a->log)
			logger_linef(a->log, "berth", "cluster: release %d is live on this host only: a rollout from another host is under way; the cluster's release replaces it here",
				     k->number);
		if (k->c) {
			client_error(k->c, "a rollout of %s from another host is under way: release %d is live on this host only, until that rollout replaces it here; push again when 'cluster status' shows it done",
				     k->app, k->number);
			client_unref(k->c);
		}
	}
	ask_roll_free(k);
}

void cjobs_rollout(struct cluster_jobs *j, const char *app, int number,
		   const char *commit, const char *source, struct client *c,
		   cj_publish_fn publish)
{
	struct cj_roll *r = roll_get(j, app, 0);
	struct cj_ask_roll *k;
	char cls[16];
	const char *v[2] = { cls, app };

	if (r && r->held) {
		/* a newer release from here: it replaces the one rolling */
		r->held++;
		publish(j->cl, app, number, commit, source, c);
		return;
	}
	k = xcalloc(1, sizeof(*k));
	k->j = j;
	k->app = xstrdup(app);
	k->commit = commit ? xstrdup(commit) : NULL;
	k->source = source ? xstrdup(source) : NULL;
	k->number = number;
	k->c = c;
	k->publish = publish;
	snprintf(cls, sizeof(cls), "%d", CJ_ROLLOUT_CLASS);
	lk->query(j->cl, "SELECT pg_try_advisory_lock($1::int, "
		      "hashtext($2))", 2, v, on_rollout_lock, k);
}

static void roll_release(struct cluster_jobs *j, struct cj_roll *r)
{
	struct cj_roll **pp;
	char cls[16];
	const char *v[2] = { cls, r->app };

	snprintf(cls, sizeof(cls), "%d", CJ_ROLLOUT_CLASS);
	if (lk->is_ready(j->cl))
		lk->query(j->cl, "SELECT pg_advisory_unlock($1::int, "
			      "hashtext($2))", 2, v, NULL, NULL);
	for (pp = &j->rolls; *pp; pp = &(*pp)->next) {
		if (*pp == r) {
			*pp = r->next;
			break;
		}
	}
	free(r->app);
	free(r);
}

void cjobs_rollout_done(struct cluster_jobs *j, const char *app)
{
	struct cj_roll *r = j ? roll_get(j, app, 0) : NULL;

	if (!r || !r->held)
		return;
	if (--r->held == 0)
		roll_release(j, r);
}

/* ---------- the connection's life ---------- */

void cjobs_ready(struct cluster_jobs *j)
{
	/* the tables are cluster.c's schema (version 4), made before the
	 * host registered */
	j->table_ready = 1;
	scan_follows(j);
	croute_ready(j->route, j->cl);
	cjobs_tick(j);
}

void cjobs_lost(struct cluster_jobs *j)
{
	struct cj_lock *l;

	j->table_ready = 0;
	j->listening = 0;
	croute_lost(j->route);
	j->scanning = j->scan_again = 0;
	for (l = j->locks; l; l = l->next) {
		if (l->held)
			cron_say(j, l, "waits for the cluster database (its lock went with the connection)");
		l->held = 0;
	}
	while (j->tails) {
		struct cj_tail *t = j->tails;

		j->tails = t->next;
		tail_free(j, t);
	}
	while (j->follows) {
		struct cj_follow *f = j->follows;

		/* the error ends the connection, whose close would free f */
		client_on_close(f->c, NULL, NULL);
		if (!f->gone)
			client_error(f->c, "lost the cluster database: 'logs -f' ends");
		follow_free(j, f);
	}
	while (j->rolls) {
		struct cj_roll *r = j->rolls;

		j->rolls = r->next;
		free(r->app);
		free(r);
	}
}

void cjobs_tick(struct cluster_jobs *j)
{
	struct cj_follow *f;
	struct cj_roll *r, *next;
	struct buf ids = BUF_INIT;

	if (!lk->is_ready(j->cl))
		return;
	cron_sweep(j);
	for (f = j->follows; f; f = f->next)
		if (f->id[0] && !f->gone)
			buf_addf(&ids, "%s%s", ids.len ? "," : "{", f->id);
	if (ids.len) {
		const char *v[1];

		buf_addstr(&ids, "}");
		v[0] = ids.data;
		lk->query(j->cl, "UPDATE berth_follows SET asked = now() "
			      "WHERE id = ANY ($1::bigint[])", 1, v, NULL,
			      NULL);
	}
	buf_release(&ids);
	scan_follows(j);
	croute_tick(j->route);
	/* a rollout whose end was never heard of does not hold forever */
	for (r = j->rolls; r; r = next) {
		next = r->next;
		if (r->held && now_ms() - r->since > ROLLOUT_HOLD_MAX_MS) {
			log_warnx("cluster: the rollout of '%s' from here is let go after %ld minutes",
				  r->app, ROLLOUT_HOLD_MAX_MS / 60000);
			roll_release(j, r);
		}
	}
}

int cjobs_notify(struct cluster_jobs *j, const char *channel,
		 const char *payload)
{
	if (!strcmp(channel, CJ_LOGS_CHANNEL)) {
		follow_lines(j, payload ? payload : "");
		return 1;
	}
	scan_follows(j);
	return 0;
}

struct cluster_jobs *cjobs_new(struct cluster *cl, struct engine *e,
			       const struct cluster_link *link)
{
	struct cluster_jobs *j = xcalloc(1, sizeof(*j));

	lk = link;
	j->cl = cl;
	j->e = e;
	j->e->cron_may_run = cron_may_run;
	j->e->cron_may_run_arg = j;
	j->route = croute_new(cl, e, link);
	return j;
}

void cjobs_free(struct cluster_jobs *j)
{
	struct cj_lock *l;

	if (!j)
		return;
	if (j->e->cron_may_run_arg == j) {
		j->e->cron_may_run = NULL;
		j->e->cron_may_run_arg = NULL;
	}
	for (l = j->locks; l; l = l->next)
		l->held = 0;	/* the engine stops: nothing to say */
	cjobs_lost(j);
	croute_free(j->route);
	while (j->locks) {
		l = j->locks;
		j->locks = l->next;
		lock_free(l);
	}
	free(j);
}
