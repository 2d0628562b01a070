/* status: see status.h. */
#include "status.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "app.h"
#include "certs.h"
#include "config.h"
#include "engine.h"
#include "nginx.h"
#include "router.h"
#include "log.h"
#include "postgres.h"
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

static void status_disk(struct engine *e, struct client *c, struct app *a)
{
	static const char *const parts[][2] = {
		{ "repository", "apps/%s/repo.git" },
		{ "releases", "apps/%s/releases" },
		{ "logs", "logs/%s" },
		{ "cache", "cache/%s" },
	};
	unsigned long long n[ARRAY_SIZE(parts)], total = 0;
	struct buf line = BUF_INIT;
	char human[32];
	size_t i;

	for (i = 0; i < ARRAY_SIZE(parts); i++) {
		char *p = engine_path(e, parts[i][1], a->name);

		n[i] = status_disk_used(p);
		total += n[i];
		free(p);
	}
	status_format_bytes(human, sizeof(human), total);
	buf_addf(&line, "  %s %s (", a->name, human);
	for (i = 0; i < ARRAY_SIZE(parts); i++) {
		status_format_bytes(human, sizeof(human), n[i]);
		buf_addf(&line, "%s%s %s", i ? ", " : "", parts[i][0], human);
	}
	buf_addstr(&line, ")");
	client_data(c, "%s", line.data);
	buf_release(&line);
}

void status_cmd(struct engine *e, struct client *c)
{
	struct app *a;
	struct proc *p;
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
	for (a = e->apps; a; a = a->next)
		status_disk(e, c, a);
	certs_status(e, c);
	client_ok(c);
}
