/*
 * apprename: "apps:rename OLD NEW".  The app's folders follow (repository
 * and releases, logs, build cache, buildpack clones, the static link),
 * its route and hosts move to NEW in the routing table (NEW.DOMAIN
 * instead of OLD.DOMAIN, its other hosts kept), its certificate and its
 * HTTPS settings and ACME state follow, and its processes keep running.
 * A database berth made for it (berth_OLD) becomes berth_NEW: the app's
 * connections to it are closed for the rename (a database cannot change
 * its name with anyone in it), DATABASE_URL changes in its config, and
 * its processes move onto the new URL the way a config change moves them:
 * new ones start, pass their health check and take the traffic before the
 * old ones go.  Refused while it deploys, and with a clear line and
 * nothing changed when anything is in the way.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "app.h"
#include "appstats.h"
#include "certs.h"
#include "engine.h"
#include "isolate.h"
#include "liveroute.h"
#include "log.h"
#include "logger.h"
#include "postgres.h"
#include "release.h"
#include "banned.h"

/* The folders that carry the app's name, under the state directory. */
static const char *const renamed[] = {
	"apps/%s",
	"logs/%s",
	"cache/%s",
	"cache/%s.buildpacks",
	"run/%s.static",
	"access/%s",		/* its owner and collaborators (access.h) */
};

static int exists(const char *path)
{
	struct stat st;

	return lstat(path, &st) == 0;
}

/* Undo the first n renames (NEW back to OLD). */
static void rename_back(struct engine *e, const char *from, const char *to,
			size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		char *src = engine_path(e, renamed[i], to);
		char *dst = engine_path(e, renamed[i], from);

		if (exists(src) && rename(src, dst) < 0)
			log_warn("cannot rename '%s' back", src);
		free(src);
		free(dst);
	}
}

static const char *env_get(const struct strv *env, const char *key)
{
	long i = strv_env_find(env, key);

	return i < 0 ? NULL : strchr(env->v[i], '=') + 1;
}

/* 1 if a's DATABASE_URL names the database berth made for it. */
static int has_berth_database(const struct app *a)
{
	const char *url = env_get(&a->env, "DATABASE_URL");
	struct strv pgenv = STRV_INIT;
	const char *db;
	char *ident;
	int ret = 0;

	if (!url || postgres_url_env(url, &pgenv) < 0)
		goto out;
	db = env_get(&pgenv, "PGDATABASE");
	ident = postgres_ident(a->name);
	ret = db && !strcmp(db, ident);
	free(ident);
out:
	error_clear();
	strv_release(&pgenv);
	return ret;
}

/* Keep e->apps sorted by name. */
static void resort(struct engine *e, struct app *a)
{
	struct app **pp;

	for (pp = &e->apps; *pp && *pp != a; pp = &(*pp)->next)
		;
	if (*pp)
		*pp = a->next;
	for (pp = &e->apps; *pp && strcmp((*pp)->name, a->name) < 0;
	     pp = &(*pp)->next)
		;
	a->next = *pp;
	*pp = a;
}

/* The app's processes onto its saved config (the new DATABASE_URL): a
 * new release of the live bundle, health-gated as a config change is;
 * it answers c. */
static void move_processes(struct app *a, struct client *c)
{
	struct deploy_opts o;

	memset(&o, 0, sizeof(o));
	o.source = "config";
	o.from_live = 1;
	client_data(c, "-----> Moving the processes of %s onto the new DATABASE_URL (no request is dropped: the new ones take over once healthy)",
		    a->name);
	app_deploy(a->eng, a->name, DEPLOY_NEW, &o, c);
}

void app_cmd_rename(struct engine *e, struct app *a, const char *to,
		    struct client *c)
{
	char *from = xstrdup(a->name), *path, *logdir = NULL, *url = NULL;
	char *db_url = NULL, *envpath = NULL;
	size_t i, done = 0;
	int has_db, r;

	if (!app_name_valid(to)) {
		client_error(c, "invalid app name '%s'", to);
		goto out;
	}
	if (!strcmp(from, to)) {
		client_error(c, "'%s' is already its name", to);
		goto out;
	}
	if (app_find(e, to)) {
		client_error(c, "app '%s' already exists", to);
		goto out;
	}
	if (a->deploy || a->waiting) {
		client_error(c, "'%s' is deploying: rename it when the deploy is done",
			     from);
		goto out;
	}
	if (a->removing) {
		client_error(c, "'%s' is being removed", from);
		goto out;
	}
	has_db = has_berth_database(a);
	if (has_db && !e->pg) {
		client_error(c, "'%s' has a database, and PostgreSQL is not available to rename it; nothing renamed",
			     from);
		goto out;
	}
	if (certs_app_rename_check(e->certs, from, to) < 0) {
		client_error(c, "%s; nothing renamed", error_last());
		goto out;
	}
	for (i = 0; i < ARRAY_SIZE(renamed); i++) {
		path = engine_path(e, renamed[i], to);
		if (exists(path)) {
			client_error(c, "'%s' is in the way of the new name; nothing renamed",
				     path);
			free(path);
			goto out;
		}
		free(path);
	}
	/* the database first: the step most likely to be refused (a
	 * pg:backup under way), and it changes nothing when it is */
	if (has_db) {
		char *ident = postgres_ident(to);

		client_data(c, "-----> Renaming the database of %s to %s (its connections to it are closed)",
			    from, ident);
		free(ident);
		if (postgres_rename(e->pg, from, to, &db_url) < 0) {
			client_error(c, "cannot rename the database of '%s': %s; nothing renamed",
				     from, error_last());
			goto out;
		}
	}
	for (i = 0; i < ARRAY_SIZE(renamed); i++, done++) {
		char *src = engine_path(e, renamed[i], from);
		char *dst = engine_path(e, renamed[i], to);

		r = 0;
		if (exists(src))
			r = rename(src, dst);
		if (r < 0)
			error_setsys("cannot rename '%s'", src);
		free(src);
		free(dst);
		if (r < 0)
			goto undo;
	}
	/* its user too, so a new app of the old name gets a user of its own */
	if (isolate_rename_app(e->iso, from, to) < 0) {
		error_set("cannot rename the app's user: %s", error_last());
		goto undo;
	}
	if (certs_app_rename(e->certs, from, to) < 0) {
		char *why = xstrdup(error_last());

		if (isolate_rename_app(e->iso, to, from) < 0)
			log_warnx("%s", error_last());
		error_set("%s", why);
		free(why);
		goto undo;
	}
	/* the new name from here on; its log goes on in the moved folder */
	free(a->name);
	a->name = xstrdup(to);
	free(a->dir);
	a->dir = engine_path(e, "apps/%s", to);
	logger_free(a->log);
	logdir = engine_path(e, "logs/%s", to);
	a->log = logger_open(logdir, e->cfg->log_max_bytes);
	if (!a->log)
		log_warnx("%s", error_last());
	resort(e, a);
	if (e->stats)
		appstats_rename(e->stats, from, to);
	if (liveroute_rename(e, a, from) < 0) {
		/* the folders moved; the route follows at the next deploy */
		log_warnx("%s: routing table: %s", to, error_last());
		client_data(c, " !     the routing table did not take the new name yet: %s",
			    error_last());
	}
	certs_app_rename_done(e->certs);
	if (db_url) {
		/* the database has its new name whatever comes next: the
		 * config says so at once */
		strv_env_set(&a->env, "DATABASE_URL", db_url);
		envpath = xasprintf("%s/env", a->dir);
		if (env_file_write(envpath, &a->env) < 0) {
			log_warnx("%s: %s", to, error_last());
			client_data(c, " !     cannot save the new DATABASE_URL: %s",
				    error_last());
		}
		logger_linef(a->log, "berth", "database renamed with the app: DATABASE_URL changed");
	}
	logger_linef(a->log, "berth", "renamed from %s", from);
	log_info("app '%s' renamed to '%s'", from, to);
	url = app_url(a);
	client_data(c, "-----> Renamed %s to %s: %s", from, to, url);
	client_data(c, "-----> Push to it as %s now, e.g. git remote set-url deploy ssh://HOST/%s",
		    to, to);
	if (db_url && a->live && !a->stopped) {
		move_processes(a, c);
		goto out;
	}
	if (db_url)
		client_data(c, "-----> DATABASE_URL changed; it applies when %s starts",
			    to);
	client_ok(c);
	goto out;
undo:
	client_error(c, "%s; nothing renamed", error_last());
	rename_back(e, from, to, done);
	if (db_url) {
		free(db_url);
		db_url = NULL;
		if (postgres_rename(e->pg, to, from, &db_url) < 0)
			log_warnx("%s: cannot give the database its name back: %s",
				  from, error_last());
	}
out:
	free(from);
	free(logdir);
	free(url);
	free(db_url);
	free(envpath);
}
