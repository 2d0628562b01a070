/* status: see status.h. */
#include "status.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "app.h"
#include "certs.h"
#include "config.h"
#include "engine.h"
#include "nginx.h"
#include "router.h"
#include "log.h"
#include "loop.h"
#include "postgres.h"
#include "runner.h"
#include "safefs.h"
#include "stateformat.h"
#include "util.h"
#include "version.h"
#include "banned.h"

/* Seconds since this process started, from /proc (no engine hook). */
static long process_uptime(void)
{
	struct buf stat = BUF_INIT, up = BUF_INIT;
	const char *p;
	unsigned long long start = 0;
	double boot = 0;
	long ticks = sysconf(_SC_CLK_TCK), ret = -1;
	int field;

	if (ticks <= 0 || read_file(&stat, "/proc/self/stat", 4096) < 0 ||
	    read_file(&up, "/proc/uptime", 256) < 0)
		goto out;
	/* field 22, counting from the one after the ")" of the name (3) */
	p = strrchr(stat.data, ')');
	for (field = 2; p && field < 22; field++)
		p = strchr(p + 1, ' ');
	if (!p || sscanf(p + 1, "%llu", &start) != 1 ||
	    sscanf(up.data, "%lf", &boot) != 1)
		goto out;
	ret = (long)(boot - (double)start / (double)ticks);
	if (ret < 0)
		ret = 0;
out:
	buf_release(&stat);
	buf_release(&up);
	return ret;
}

static void format_duration(char *out, size_t len, long s)
{
	if (s >= 86400)
		snprintf(out, len, "%ldd %ldh %ldm", s / 86400, s % 86400 / 3600,
			 s % 3600 / 60);
	else if (s >= 3600)
		snprintf(out, len, "%ldh %ldm %lds", s / 3600, s % 3600 / 60,
			 s % 60);
	else if (s >= 60)
		snprintf(out, len, "%ldm %lds", s / 60, s % 60);
	else
		snprintf(out, len, "%lds", s);
}

void status_format_bytes(char *out, size_t len, unsigned long long n)
{
	static const char *const units[] = { "B", "KiB", "MiB", "GiB", "TiB" };
	double v = (double)n;
	size_t u = 0;

	while (v >= 1024 && u + 1 < ARRAY_SIZE(units)) {
		v /= 1024;
		u++;
	}
	if (u == 0)
		snprintf(out, len, "%llu B", n);
	else
		snprintf(out, len, "%.1f %s", v, units[u]);
}

static int add_size(const struct safefs_entry *ent, void *arg)
{
	*(unsigned long long *)arg += (unsigned long long)ent->st.st_blocks * 512;
	return 0;
}

/*
 * Disk used under path (0 if it does not exist).  Through safefs: the
 * build cache and releases are trees a pusher controls, and root never
 * follows a link in them.
 */
unsigned long long status_disk_used(const char *path)
{
	unsigned long long total = 0;
	struct stat st;
	int fd = safefs_open_top(path);

	if (fd < 0)
		return 0;
	if (fstat(fd, &st) == 0)
		total = (unsigned long long)st.st_blocks * 512;
	if (safefs_walk(fd, ".", add_size, &total) < 0)
		log_debug("status: %s: %s", path, error_last());
	close(fd);
	return total;
}

/* The routing table and how far nginx's copy is behind it. */
static void status_routes(struct engine *e, struct client *c)
{
	struct router *r = nginx_router(e->nginx);
	size_t n = router_pending(r);
	unsigned long long v = (unsigned long long)router_version(r);

	if (n)
		client_data(c, "routing table: version %llu, %zu request%s to "
			    "nginx under way", v, n, n == 1 ? "" : "s");
	else if (router_in_sync(r))
		client_data(c, "routing table: version %llu, nginx has it", v);
	else
		client_data(c, "routing table: version %llu, nginx is behind "
			    "(it gets the whole table again)", v);
}

static void status_nginx(struct engine *e, struct client *c)
{
	char *pidfile;
	struct buf b = BUF_INIT;
	long pid = -1;

	if (!e->nginx) {
		client_data(c, "nginx: not configured");
		return;
	}
	if (e->cfg->nginx && !strcmp(e->cfg->nginx, "system")) {
		client_data(c, "nginx: system nginx (files in %s)",
			    e->cfg->nginx_conf_dir ? e->cfg->nginx_conf_dir : "?");
		return;
	}
	pidfile = engine_path(e, "nginx/logs/nginx.pid");
	if (read_file(&b, pidfile, 64) == 0) {
		b.data[strcspn(b.data, "\n")] = '\0';
		pid = parse_long(b.data, 1L << 30);
	}
	if (pid > 0 && kill((pid_t)pid, 0) == 0)
		client_data(c, "nginx: running (pid %ld, http %s)", pid,
			    nginx_http_addr(e->nginx));
	else
		client_data(c, "nginx: not running (restarting)");
	buf_release(&b);
	free(pidfile);
}

static void status_postgres(struct engine *e, struct client *c)
{
	int pid;

	if (e->cfg->postgres) {
		client_data(c, "postgres: external server (berth.yaml 'postgres')");
		return;
	}
	if (!e->pg) {
		client_data(c, "postgres: unavailable (see the engine's log)");
		return;
	}
	pid = postgres_running(e->pg);
	if (pid > 0)
		client_data(c, "postgres: running (embedded, pid %d)", pid);
	else
		client_data(c, "postgres: not running (embedded, starts when an app asks)");
}

/*
 * Walks of the disk in a child: the loop goes on meanwhile.  One engine
 * a process: the jobs in flight are this file's (status_disk_cancel_all()).
 */
struct disk_job {
	struct disk_job *next;
	struct runner r;
	struct strv paths;
	struct buf out;			/* one decimal figure a line */
	unsigned long long *sizes;
	status_disk_fn done;
	void *arg;
	uint64_t timer;			/* the answer of a walk made here */
};

static struct disk_job *disk_jobs;

static int disk_child(void *arg, int out, int err)
{
	struct disk_job *j = arg;
	struct buf b = BUF_INIT;
	size_t i;
	int ret = 0;

	(void)err;
	/* a walk nobody waits for ends with the engine */
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	for (i = 0; i < j->paths.n; i++)
		buf_addf(&b, "%llu\n", status_disk_used(j->paths.v[i]));
	if (write_all(out, b.data, b.len) < 0)
		ret = 1;
	buf_release(&b);
	return ret;
}

static void disk_job_end(struct disk_job *j, const unsigned long long *sizes)
{
	struct disk_job **jp;

	for (jp = &disk_jobs; *jp; jp = &(*jp)->next)
		if (*jp == j) {
			*jp = j->next;
			break;
		}
	j->done(j->arg, sizes);
	strv_release(&j->paths);
	buf_release(&j->out);
	free(j->sizes);
	free(j);
}

static void disk_child_done(struct runner *r, int result, void *arg)
{
	struct disk_job *j = arg;
	char *p = j->out.data, *end;
	size_t i;

	if (result < 0 || !WIFEXITED(r->status) || WEXITSTATUS(r->status))
		log_warnx("status: the disk walk failed: %s",
			  result < 0 ? error_last() : "its child exited badly");
	for (i = 0; p && i < j->paths.n; i++) {
		unsigned long long n = strtoull(p, &end, 10);

		if (end == p || *end != '\n')
			break;
		j->sizes[i] = n;
		p = end + 1;
	}
	disk_job_end(j, j->sizes);
}

static void disk_walked_here(struct loop *l, void *arg)
{
	struct disk_job *j = arg;

	(void)l;
	j->timer = 0;
	disk_job_end(j, j->sizes);
}

void status_disk_async(struct loop *l, char *const *paths, size_t n,
		       status_disk_fn done, void *arg)
{
	struct disk_job *j = xcalloc(1, sizeof(*j));
	size_t i;

	for (i = 0; i < n; i++)
		strv_push(&j->paths, paths[i]);
	j->sizes = xcalloc(n ? n : 1, sizeof(*j->sizes));
	j->done = done;
	j->arg = arg;
	buf_init(&j->out, 64);
	j->next = disk_jobs;
	disk_jobs = j;
	runner_init(&j->r);
	j->r.child_main = disk_child;
	j->r.child_arg = j;
	j->r.capture[RUNNER_OUT] = &j->out;
	j->r.capture_max = 64 + 24 * n;
	if (runner_start(&j->r, l, disk_child_done, j) == 0)
		return;
	/* no child: walked here, answered from the loop all the same */
	log_warnx("status: %s; walking the disk in the engine", error_last());
	for (i = 0; i < n; i++)
		j->sizes[i] = status_disk_used(paths[i]);
	j->timer = loop_add_timer(l, 0, disk_walked_here, j);
}

void status_disk_cancel_all(struct loop *l)
{
	struct disk_job *j;

	while ((j = disk_jobs)) {
		if (runner_running(&j->r))
			runner_cancel(&j->r);
		if (j->timer)
			loop_del_timer(l, j->timer);
		disk_job_end(j, NULL);
	}
}

/* The parts of an app's disk figure, as status and apps:info show them. */
static const char *const disk_parts[][2] = {
	{ "repository", "apps/%s/repo.git" },
	{ "releases", "apps/%s/releases" },
	{ "logs", "logs/%s" },
	{ "cache", "cache/%s" },
};

void status_disk_paths(struct engine *e, const char *app, struct strv *out)
{
	size_t i;

	for (i = 0; i < ARRAY_SIZE(disk_parts); i++) {
		char *p = engine_path(e, disk_parts[i][1], app);

		strv_push(out, p);
		free(p);
	}
}

/* The rest of "status", once the disk is walked. */
struct status_rest {
	struct engine *e;
	struct client *c;
	struct strv apps;
};

static void status_rest_send(void *arg, const unsigned long long *sizes)
{
	struct status_rest *sr = arg;
	struct buf line = BUF_INIT;
	unsigned long long total;
	char human[32];
	size_t i, k;

	if (!sizes) {
		client_error(sr->c, "the engine is stopping");
		goto out;
	}
	for (i = 0; i < sr->apps.n; i++) {
		const unsigned long long *n = sizes + i * STATUS_DISK_PARTS;

		for (total = 0, k = 0; k < STATUS_DISK_PARTS; k++)
			total += n[k];
		status_format_bytes(human, sizeof(human), total);
		buf_reset(&line);
		buf_addf(&line, "  %s %s (", sr->apps.v[i], human);
		for (k = 0; k < STATUS_DISK_PARTS; k++) {
			status_format_bytes(human, sizeof(human), n[k]);
			buf_addf(&line, "%s%s %s", k ? ", " : "",
				 disk_parts[k][0], human);
		}
		buf_addstr(&line, ")");
		client_data(sr->c, "%s", line.data);
	}
	certs_status(sr->e, sr->c);
	client_ok(sr->c);
out:
	client_unref(sr->c);
	strv_release(&sr->apps);
	buf_release(&line);
	free(sr);
}

void status_cmd(struct engine *e, struct client *c)
{
	struct app *a;
	struct proc *p;
	struct status_rest *sr;
	struct strv paths = STRV_INIT;
	char up[64], since[32];
	long secs = process_uptime();
	int napps = 0, running = 0, stopped = 0, nprocs = 0;

	client_data(c, "berth %s", BERTH_VERSION);
	if (secs >= 0) {
		format_duration(up, sizeof(up), secs);
		time_iso(since, sizeof(since), time(NULL) - secs);
		client_data(c, "uptime: %s (since %s, pid %d)", up, since,
			    (int)getpid());
	}
	client_data(c, "state: %s (format %d)", e->cfg->root,
		    stateformat_read(e->cfg->root));
	status_nginx(e, c);
	if (e->nginx)
		status_routes(e, c);
	status_postgres(e, c);
	for (a = e->apps; a; a = a->next) {
		napps++;
		if (a->stopped)
			stopped++;
		else if (a->live)
			running++;
		if (a->live)
			for (p = a->live->procs; p; p = p->next)
				if (p->pid > 0)
					nprocs++;
	}
	client_data(c, "apps: %d (%d running, %d stopped)", napps, running,
		    stopped);
	client_data(c, "processes: %d", nprocs);
	client_data(c, "disk:%s", e->apps ? "" : " no apps");
	/* the figures come from a child; the answer ends when it is done */
	sr = xcalloc(1, sizeof(*sr));
	sr->e = e;
	sr->c = c;
	client_ref(c);
	for (a = e->apps; a; a = a->next) {
		strv_push(&sr->apps, a->name);
		status_disk_paths(e, a->name, &paths);
	}
	status_disk_async(e->loop, paths.v, paths.n, status_rest_send, sr);
	strv_release(&paths);
}
