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

/* What stands in the way of renaming a to to, as a line for the user
 * (-1 with error_last()); asked again once the database has its new
 * name, since the engine served others meanwhile. */
static int rename_check(struct engine *e, struct app *a, const char *to)
{
	size_t i;

	if (!app_name_valid(to))
		return error_set("invalid app name '%s'", to);
	if (!strcmp(a->name, to))
		return error_set("'%s' is already its name", to);
	if (app_find(e, to))
		return error_set("app '%s' already exists", to);
	if (a->deploy || a->waiting)
		return error_set("'%s' is deploying: rename it when the deploy is done",
				 a->name);
	if (a->removing)
		return error_set("'%s' is being removed", a->name);
	if (a->renaming)
		return error_set("'%s' is being renamed; try again when that is done",
				 a->name);
	if (!e->pg && has_berth_database(a))
		return error_set("'%s' has a database, and PostgreSQL is not available to rename it; nothing renamed",
				 a->name);
	if (certs_app_rename_check(e->certs, a->name, to) < 0) {
		char *why = xstrdup(error_last());

		error_set("%s; nothing renamed", why);
		free(why);
		return -1;
	}
	for (i = 0; i < ARRAY_SIZE(renamed); i++) {
		char *path = engine_path(e, renamed[i], to);
		int in_way = exists(path);

		if (in_way)
			error_set("'%s' is in the way of the new name; nothing renamed",
				  path);
		free(path);
		if (in_way)
			return -1;
	}
	return 0;
}

/* A database rename in flight: the app is marked renaming meanwhile (no
 * second rename, no rm). */
struct rename_req {
	struct engine *e;
	struct app *a;
	struct client *c;	/* NULL when giving the name back */
	char *from;
	char *to;
};

static void rename_req_free(struct rename_req *r)
{
	if (r->c)
		client_unref(r->c);
	free(r->from);
	free(r->to);
	free(r);
}

static void name_back_done(void *arg, int result, const char *out)
{
	struct rename_req *r = arg;

	(void)out;
	r->a->renaming--;
	if (result < 0)
		log_warnx("%s: cannot give the database its name back: %s",
			  r->to, error_last());
	rename_req_free(r);
}

/* The database was renamed, and the rest of the rename did not happen:
 * its name back (off the loop too). */
static void database_name_back(struct engine *e, struct app *a,
			       const char *from, const char *to)
{
	struct rename_req *r = xcalloc(1, sizeof(*r));

	r->e = e;
	r->a = a;
	r->from = xstrdup(to);
	r->to = xstrdup(from);
	a->renaming++;
	postgres_rename_async(e->pg, to, from, name_back_done, r);
}

static void rename_rest(struct engine *e, struct app *a, const char *to,
			char *db_url, struct client *c);

/* A user rename in flight (isolate_rename_app(): usermod in a child). */
struct user_req {
	struct engine *e;
	struct app *a;
	struct client *c;	/* NULL when giving the name back */
	char *from;
	char *to;
	char *db_url;		/* the database's new URL, if it has one */
};

static void user_req_free(struct user_req *u)
{
	if (u->c)
		client_unref(u->c);
	free(u->from);
	free(u->to);
	free(u->db_url);
	free(u);
}

static void user_back_done(void *arg, int result)
{
	struct user_req *u = arg;

	u->a->renaming--;
	if (result < 0)
		log_warnx("%s: cannot give the app's user its name back: %s",
			  u->from, error_last());
	user_req_free(u);
}

/* The user was renamed, and the rest of the rename did not happen: its
 * name back (off the loop too). */
static void user_name_back(struct engine *e, struct app *a,
			   const char *from, const char *to)
{
	struct user_req *u = xcalloc(1, sizeof(*u));
	int r;

	u->e = e;
	u->a = a;
	u->from = xstrdup(to);
	u->to = xstrdup(from);
	a->renaming++;
	r = isolate_rename_app(e->iso, to, from, user_back_done, u);
	if (r == 0)
		return;
	a->renaming--;
	if (r < 0)
		log_warnx("%s: cannot give the app's user its name back: %s",
			  to, error_last());
	user_req_free(u);
}

static void rename_database_done(void *arg, int result, const char *out)
{
	struct rename_req *r = arg;
	struct app *a = r->a;

	a->renaming--;
	if (result < 0) {
		client_error(r->c, "cannot rename the database of '%s': %s; nothing renamed",
			     r->from, error_last());
	} else if (rename_check(r->e, a, r->to) < 0) {
		client_error(r->c, "%s", error_last());
		database_name_back(r->e, a, r->from, r->to);
	} else {
		rename_rest(r->e, a, r->to, xstrdup(out), r->c);
	}
	rename_req_free(r);
}

void app_cmd_rename(struct engine *e, struct app *a, const char *to,
		    struct client *c)
{
	struct rename_req *r;
	char *ident;

	if (rename_check(e, a, to) < 0) {
		client_error(c, "%s", error_last());
		return;
	}
	if (!has_berth_database(a)) {
		rename_rest(e, a, to, NULL, c);
		return;
	}
	/* the database first: the step most likely to be refused (a
	 * pg:backup under way), and it changes nothing when it is.  Off
	 * the loop: the engine serves others meanwhile. */
	ident = postgres_ident(to);
	client_data(c, "-----> Renaming the database of %s to %s (its connections to it are closed)",
		    a->name, ident);
	free(ident);
	r = xcalloc(1, sizeof(*r));
	r->e = e;
	r->a = a;
	r->c = c;
	client_ref(c);
	r->from = xstrdup(a->name);
	r->to = xstrdup(to);
	a->renaming++;
	postgres_rename_async(e->pg, a->name, to, rename_database_done, r);
}

static void rename_folders(struct engine *e, struct app *a, const char *to,
			   char *db_url, struct client *c);

static void user_renamed(void *arg, int result)
{
	struct user_req *u = arg;
	struct app *a = u->a;
	char *db_url = u->db_url;

	a->renaming--;
	u->db_url = NULL;
	if (result < 0) {
		client_error(u->c, "cannot rename the app's user: %s; nothing renamed",
			     error_last());
		if (db_url)
			database_name_back(u->e, a, u->from, u->to);
		free(db_url);
	} else if (rename_check(u->e, a, u->to) < 0) {
		/* the engine served others meanwhile */
		client_error(u->c, "%s", error_last());
		user_name_back(u->e, a, u->from, u->to);
		if (db_url)
			database_name_back(u->e, a, u->from, u->to);
		free(db_url);
	} else {
		rename_folders(u->e, a, u->to, db_url, u->c);
	}
	user_req_free(u);
}

/* The user first, in a child (usermod), so a new app of the old name
 * gets a user of its own; the rest from its callback.  db_url is taken:
 * the database has its new name already when it is set. */
static void rename_rest(struct engine *e, struct app *a, const char *to,
			char *db_url, struct client *c)
{
	struct user_req *u = xcalloc(1, sizeof(*u));
	int r;

	u->e = e;
	u->a = a;
	u->c = c;
	client_ref(c);
	u->from = xstrdup(a->name);
	u->to = xstrdup(to);
	u->db_url = db_url;
	a->renaming++;
	r = isolate_rename_app(e->iso, a->name, to, user_renamed, u);
	if (r == 0)
		return;
	/* done already (no users to move), or failed: as from the loop */
	user_renamed(u, r > 0 ? 0 : -1);
}

/* The folders, the certificate, the route and the config, the user and
 * (when db_url is set, taken) the database having their new names. */
static void rename_folders(struct engine *e, struct app *a, const char *to,
			   char *db_url, struct client *c)
{
	char *from = xstrdup(a->name), *logdir = NULL, *url = NULL;
	char *envpath = NULL;
	size_t i, done = 0;
	int r;

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
	if (certs_app_rename(e->certs, from, to) < 0)
		goto undo;
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
	user_name_back(e, a, from, to);
	if (db_url)
		database_name_back(e, a, from, to);
out:
	free(from);
	free(logdir);
	free(url);
	free(db_url);
	free(envpath);
}
