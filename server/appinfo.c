/*
 * appinfo: "apps:info NAME" (Dokku's apps:report, Heroku's apps:info):
 * one app at a glance, "Key: value" lines a person reads and a script
 * can grep.  The disk figures walk the app's folders in a child (as
 * status does: status.h), the database's line is asked off the loop
 * (postgres.h); the answer ends when both are in.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "app.h"
#include "domains.h"
#include "engine.h"
#include "packset.h"
#include "postgres.h"
#include "release.h"
#include "status.h"
#include "banned.h"

#define INFO_FMT "%-14s %s"

static void field(struct client *c, const char *key, const char *value)
{
	client_data(c, INFO_FMT, key, value && *value ? value : "-");
}

static void info_release(struct app *a, struct client *c)
{
	struct buf b = BUF_INIT;
	char *commit, *pusher, *when, *bp;

	if (!a->release) {
		field(c, "Release:", "none yet (push to deploy)");
		return;
	}
	commit = release_meta_get(a->dir, a->release, "commit");
	pusher = release_meta_get(a->dir, a->release, "pusher");
	when = release_meta_get(a->dir, a->release, "time");
	bp = release_meta_get(a->dir, a->release, "buildpack");
	buf_addf(&b, "v%d", a->release);
	if (commit && *commit)
		buf_addf(&b, ", commit %.12s", commit);
	if (pusher && *pusher)
		buf_addf(&b, ", by %s", pusher);
	if (when && *when)
		buf_addf(&b, ", %s", when);
	field(c, "Release:", b.data);
	field(c, "Buildpack:", bp && *bp ? bp : "none");
	buf_release(&b);
	free(commit);
	free(pusher);
	free(when);
	free(bp);
}

static void info_processes(struct app *a, struct client *c)
{
	struct buf b = BUF_INIT;
	struct proc *p;
	size_t i;

	for (p = a->live ? a->live->procs : NULL; p; p = p->next) {
		buf_addf(&b, "%s%s", b.len ? ", " : "", p->name);
		if (p->pid > 0)
			buf_addf(&b, " (pid %d%s)", (int)p->pid,
				 p->state == PROC_UP ? "" : ", not up");
		else
			buf_addstr(&b, " (down)");
	}
	field(c, "Processes:", b.len ? b.data : "none running");
	buf_reset(&b);
	for (i = 0; a->live && i < a->live->m.nprocs; i++)
		buf_addf(&b, "%s%s", b.len ? " " : "",
			 a->live->m.procs[i].type);
	for (i = 0; i < a->scale.n; i++)
		buf_addf(&b, "%s%s", i ? " " : " (scale set: ",
			 a->scale.v[i]);
	if (a->scale.n)
		buf_addstr(&b, ")");
	field(c, "Types:", b.data);
	buf_release(&b);
}

/* The lines after "Database:", known before it is asked for. */
struct info_rest {
	struct engine *e;
	struct client *c;
	char *app;
	char *config_vars;
	char *disk;
	int database;		/* DATABASE_URL set */
};

static void info_rest_send(struct info_rest *r, const char *database)
{
	field(r->c, "Database:", database);
	field(r->c, "Config vars:", r->config_vars);
	field(r->c, "Disk:", r->disk);
	client_ok(r->c);
	client_unref(r->c);
	free(r->config_vars);
	free(r->disk);
	free(r->app);
	free(r);
}

/* From the loop: the app may be gone by now, r has all it needs. */
static void info_database_done(void *arg, int result, const char *out)
{
	struct info_rest *r = arg;
	char *line;

	if (result < 0 || !*out) {
		error_clear();
		info_rest_send(r, "DATABASE_URL set (not managed by berth)");
		return;
	}
	line = xstrndup(out, strcspn(out, "\n"));
	info_rest_send(r, line);
	free(line);
}

/* The database's line, asked off the loop when berth manages it; then
 * the rest, and the answer ends.  The app may be gone by now: r has all
 * it needs. */
static void info_database(struct info_rest *r)
{
	if (!r->database) {
		info_rest_send(r, "none");
		return;
	}
	if (!r->e->pg) {
		info_rest_send(r, "DATABASE_URL set (not managed by berth)");
		return;
	}
	postgres_info_async(r->e->pg, r->app, info_database_done, r);
}

/* "repository 1.2 MiB, ..., build cache 0 B (3.4 MiB in all)" */
static char *info_disk(const unsigned long long *n)
{
	static const char *const names[STATUS_DISK_PARTS] = {
		"repository", "releases", "logs", "build cache",
	};
	unsigned long long total = 0;
	struct buf b = BUF_INIT;
	char human[32];
	size_t i;

	for (i = 0; i < STATUS_DISK_PARTS; i++) {
		total += n[i];
		status_format_bytes(human, sizeof(human), n[i]);
		buf_addf(&b, "%s%s %s", i ? ", " : "", names[i], human);
	}
	status_format_bytes(human, sizeof(human), total);
	buf_addf(&b, " (%s in all)", human);
	return buf_detach(&b);
}

/* From the loop, the disk walked: then the database's line. */
static void info_disk_done(void *arg, const unsigned long long *sizes)
{
	struct info_rest *r = arg;

	if (!sizes) {
		client_error(r->c, "the engine is stopping");
		client_unref(r->c);
		free(r->config_vars);
		free(r->app);
		free(r);
		return;
	}
	r->disk = info_disk(sizes);
	info_database(r);
}

void app_cmd_info(struct app *a, struct client *c)
{
	struct strv hosts = STRV_INIT, packs = STRV_INIT, paths = STRV_INIT;
	struct buf b = BUF_INIT;
	struct info_rest *rest;
	char *url = app_url(a);
	size_t i;

	client_data(c, "=====> %s", a->name);
	field(c, "URL:", url);
	buf_addf(&b, "%s.%s", a->name, a->eng->cfg->domain);
	app_hosts_list(a, &hosts);
	for (i = 0; i < hosts.n; i++)
		buf_addf(&b, " %s", hosts.v[i]);
	field(c, "Hosts:", b.data);
	field(c, "Status:", app_status_word(a));
	field(c, "Maintenance:", a->maintenance ? "on" : "off");
	info_release(a, c);
	if (packset_read(a->dir, &packs) == 0 && packs.n) {
		buf_reset(&b);
		for (i = 0; i < packs.n; i++)
			buf_addf(&b, "%s%s", i ? " " : "", packs.v[i]);
		field(c, "Buildpacks:", b.data);
	}
	info_processes(a, c);
	rest = xcalloc(1, sizeof(*rest));
	rest->e = a->eng;
	rest->c = c;
	client_ref(c);
	rest->app = xstrdup(a->name);
	rest->config_vars = xasprintf("%zu", a->env.n);
	rest->database = strv_env_find(&a->env, "DATABASE_URL") >= 0;
	status_disk_paths(a->eng, a->name, &paths);
	status_disk_async(a->eng->loop, paths.v, paths.n, info_disk_done, rest);
	strv_release(&paths);
	free(url);
	buf_release(&b);
	strv_release(&hosts);
	strv_release(&packs);
}
