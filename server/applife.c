/* applife: see applife.h. */
#include "applife.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "access.h"
#include "certs.h"
#include "client.h"
#include "deploy.h"
#include "deployout.h"
#include "domains.h"
#include "engine.h"
#include "isolate.h"
#include "liveroute.h"
#include "log.h"
#include "logger.h"
#include "loop.h"
#include "nginx.h"
#include "release.h"
#include "releases.h"
#include "runner.h"
#include "runs.h"
#include "banned.h"

int apps_load(struct engine *e)
{
	char *dir = engine_path(e, "apps");
	DIR *dh;
	struct dirent *de;
	struct app *a;

	dh = opendir(dir);
	if (!dh) {
		free(dir);
		return 0;
	}
	while ((de = readdir(dh))) {
		int n;

		if (!app_name_valid(de->d_name))
			continue;
		a = app_new(e, de->d_name);
		domains_load(a);
		app_load_state(a);
		deployout_mark_interrupted(a->dir);
		/* Deploys an engine that died (kill -9) left half-way. */
		n = release_mark_interrupted(a->dir, a->release);
		if (n > 0) {
			log_info("app '%s': %d deploy%s interrupted by the last engine's end",
				 a->name, n, n == 1 ? "" : "s");
			logger_linef(a->log, "berth", "%d deploy%s interrupted by the engine's end",
				     n, n == 1 ? "" : "s");
		}
	}
	closedir(dh);
	free(dir);
	for (a = e->apps; a; a = a->next)
		liveroute_keep(e, a);
	liveroute_forget_others(e);
	for (a = e->apps; a; a = a->next) {
		if (a->release && !a->stopped && !a->unusable)
			app_deploy(e, a->name, DEPLOY_RESTORE, NULL, NULL);
		else if (a->release &&
			 liveroute_state(e, a, ROUTE_STOPPED, 0) < 0)
			log_warnx("%s: %s", a->name, error_last());
	}
	return 0;
}

int app_adopt(struct engine *e, const char *name, struct client *c)
{
	struct app *a;

	if (app_find(e, name))
		return error_set("app '%s' already exists", name);
	a = app_new(e, name);
	domains_load(a);
	app_load_state(a);
	if (a->release && !a->stopped)
		app_deploy(e, a->name, DEPLOY_RESTORE, NULL, c);
	else if (c)
		client_ok(c);
	return 0;
}

/*
 * The engine is stopping (e->stopping is set): no process is restarted
 * any more, a waiting deploy is answered, a running one is cut short (its
 * release recorded as interrupted), one already live finishes its
 * retirement at once.  Every process gets TERM, then KILL after the stop
 * timeout.  Called again at exit, where it changes nothing new.
 */
void apps_shutdown(struct engine *e)
{
	struct app *a;
	long timeout = e->cfg->stop_timeout_ms;

	for (a = e->apps; a; a = a->next) {
		if (a->waiting)
			deploy_drop_waiting(a, "the engine is stopping: the deploy of '%s' did not start",
					    a->name);
		if (!a->shutdown_said && (a->live || a->deploy)) {
			a->shutdown_said = 1;
			logger_linef(a->log, "berth", "stopping with the engine");
		}
		loop_del_timer(e->loop, a->retry_timer);
		a->retry_timer = 0;
		deploy_shutdown(a, timeout);
		stop_run(a->live, timeout);
	}
}

void apps_free(struct engine *e)
{
	struct app *a;

	/* users still being removed: their rm is answered before the
	 * control socket closes */
	if (e->iso)
		isolate_finish_now(e->iso);
	trash_cancel_all();
	while ((a = e->apps)) {
		e->apps = a->next;
		deploy_app_free(a);
		liveroute_applied_drop(a);
		if (a->rm_client)
			client_unref(a->rm_client);
		run_free(a->live);
		loop_del_timer(e->loop, a->retry_timer);
		app_free(a);
	}
}

/* The app's user is gone (or could not go: that is only logged). */
struct user_removal {
	char *name;
	void (*done)(void *arg);
	void *arg;
};

static void user_removed(void *arg, int result)
{
	struct user_removal *ur = arg;

	if (result < 0)
		log_warnx("%s", error_last());
	if (ur->done)
		ur->done(ur->arg);
	free(ur->name);
	free(ur);
}

void app_remove_now(struct app *a)
{
	app_remove(a, NULL, NULL);
}

void app_remove(struct app *a, void (*done)(void *arg), void *arg)
{
	struct engine *e = a->eng;
	struct user_removal *ur;
	struct trash_job *t = trash_new("cannot delete the folders of a removed app");
	char *p;
	int r;

	restore_retry_cancel(a);
	liveroute_applied_drop(a);
	if (e->nginx && nginx_app_remove(e->nginx, a->name) < 0)
		log_warnx("%s", error_last());
	certs_app_removed(e->certs, a->name);
	p = engine_path(e, "run/%s.static", a->name);
	unlink(p);
	free(p);
	if (a->live) {
		trash_run_dirs(t, a->live);
		run_free(a->live);
		a->live = NULL;
	}
	p = engine_path(e, "cache/%s", a->name);
	trash_add(e, t, p, a->name);
	free(p);
	p = engine_path(e, "logs/%s", a->name);
	logger_free(a->log);
	a->log = NULL;
	trash_add(e, t, p, a->name);
	free(p);
	trash_add(e, t, a->dir, a->name);
	trash_start(t, e->loop);
	/* its user last, in a child: userdel and groupdel take a while */
	ur = xcalloc(1, sizeof(*ur));
	ur->done = done;
	ur->arg = arg;
	r = isolate_remove_app(e->iso, a->name, user_removed, ur);
	access_forget(e->cfg->root, a->name);
	app_unlink(a);
	app_free(a);
	if (r != 0) {
		if (r < 0)
			log_warnx("%s", error_last());
		user_removed(ur, 0);
	}
}
