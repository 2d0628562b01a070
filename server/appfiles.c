/* appfiles: see appfiles.h and docs/manifest.md. */
#include "appfiles.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "appjson.h"
#include "buildpack.h"
#include "safefs.h"
#include "banned.h"

#define FILE_MAX (1024 * 1024)
#define IGNORED_LINE_MAX 600	/* the ignored list, then "and N more" */

struct af_out {
	void (*say)(void *arg, const char *line);
	void *arg;
};

static void tell(const struct af_out *o, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static void tell(const struct af_out *o, const char *fmt, ...)
{
	va_list ap;
	char *line;

	va_start(ap, fmt);
	line = xvasprintf(fmt, ap);
	va_end(ap);
	if (o->say)
		o->say(o->arg, line);
	free(line);
}

void appfiles_init(struct appfiles *af)
{
	memset(af, 0, sizeof(*af));
	manifest_init(&af->json);
}

void appfiles_release(struct appfiles *af)
{
	manifest_release(&af->json);
	strv_release(&af->buildpacks);
	memset(af, 0, sizeof(*af));
}

/* 0 read, ERR_NOTFOUND absent, else -1 / ERR_INVALID / ERR_TOOBIG with
 * the reason. */
static int read_one(struct buf *out, int top, const char *name)
{
	int r = safefs_read(out, top, name, FILE_MAX);

	if (r == ERR_TOOBIG)
		error_set("'%s' is too large (over %d bytes)", name, FILE_MAX);
	return r;
}

static int set_somewhere(const char *name, const struct manifest *app,
			 const struct manifest *json, char *const *config)
{
	size_t i, n = strlen(name);

	for (i = 0; config && config[i]; i++)
		if (!strncmp(config[i], name, n) && config[i][n] == '=')
			return 1;
	return (app && strv_env_find(&app->env, name) >= 0) ||
	       strv_env_find(&json->env, name) >= 0;
}

static void say_json(const struct af_out *o, const struct appfiles *af,
		     const struct manifest *app, char *const *config)
{
	const struct manifest *j = &af->json;
	struct buf b = BUF_INIT;
	size_t i;

	if (j->predeploy_cmd)
		buf_addstr(&b, ", predeploy");
	if (j->postdeploy_cmd)
		buf_addstr(&b, ", postdeploy");
	if (j->first_deploy_cmd)
		buf_addstr(&b, ", postdeploy on the first deploy");
	if (strcmp(j->health_path, "/") || j->health_attempts >= 0 ||
	    j->health_content)
		buf_addf(&b, ", health check %s", j->health_path);
	if (j->nformation) {
		buf_addstr(&b, ", formation");
		for (i = 0; i < j->nformation; i++)
			buf_addf(&b, " %s=%d", j->formation[i].type,
				 j->formation[i].quantity);
	}
	if (j->ncrons)
		buf_addf(&b, ", %zu cron entr%s", j->ncrons,
			 j->ncrons == 1 ? "y" : "ies");
	if (j->env.n)
		buf_addf(&b, ", %zu config default%s", j->env.n,
			 j->env.n == 1 ? "" : "s");
	if (j->buildpacks.n)
		buf_addf(&b, ", %zu buildpack%s", j->buildpacks.n,
			 j->buildpacks.n == 1 ? "" : "s");
	tell(o, "-----> app.json: %s",
	     b.len ? b.data + 2 : "nothing berth uses");
	buf_reset(&b);
	for (i = 0; i < j->ignored.n; i++) {
		if (b.len > IGNORED_LINE_MAX) {
			buf_addf(&b, " and %zu more", j->ignored.n - i);
			break;
		}
		buf_addf(&b, "%s%s", i ? ", " : "", j->ignored.v[i]);
	}
	if (b.len)
		tell(o, " !     app.json: berth ignores %s", b.data);
	buf_release(&b);
	for (i = 0; i < j->env_required.n; i++)
		if (!set_somewhere(j->env_required.v[i], app, j, config))
			tell(o, " !     app.json: config var %s is required "
			     "and not set (berth config APP set %s=...)",
			     j->env_required.v[i], j->env_required.v[i]);
	for (i = 0; i < j->env_generate.n; i++)
		if (!set_somewhere(j->env_generate.v[i], app, j, config))
			tell(o, " !     app.json: config var %s wants a "
			     "generated secret: berth does not make one, set "
			     "it (berth config APP set %s=...)",
			     j->env_generate.v[i], j->env_generate.v[i]);
}

/* ENV or .env: checked, counted, berth's own names said. */
static int env_file(const struct af_out *o, int top, const char *name,
		    const char *why)
{
	struct manifest scratch;
	struct strv skipped = STRV_INIT;
	struct buf b = BUF_INIT;
	size_t i;
	int r;

	r = read_one(&b, top, name);
	if (r == ERR_NOTFOUND) {
		buf_release(&b);
		return 0;
	}
	manifest_init(&scratch);
	if (r == 0)
		r = manifest_parse_env_file(&scratch, b.data, b.len, name,
					    &skipped);
	if (r == 0) {
		tell(o, "-----> %s: %zu setting%s, defaults under the app's "
		     "config%s", name, scratch.env.n,
		     scratch.env.n == 1 ? "" : "s", why);
		for (i = 0; i < skipped.n; i++)
			tell(o, " !     %s is set by berth: ignored",
			     skipped.v[i]);
	}
	manifest_release(&scratch);
	strv_release(&skipped);
	buf_release(&b);
	return r < 0 ? -1 : 0;
}

/* Piku's cron: types of the Procfile, and app.json's entries. */
static int crons(const struct af_out *o, int top, const struct appfiles *af,
		 const struct manifest *app)
{
	struct manifest pf;
	struct buf b = BUF_INIT;
	size_t i;
	int r = 0;

	manifest_init(&pf);
	if (!app || !app->nprocs) {
		r = read_one(&b, top, "Procfile");
		if (r == ERR_NOTFOUND)
			r = 0;
		else if (r == 0)
			r = manifest_parse_procfile(&pf, b.data, b.len,
						    "Procfile");
	} else {
		/* app.yaml's processes, copied */
		for (i = 0; i < app->nprocs; i++)
			if (app->procs[i].cmd) {
				pf.procs = xrealloc(pf.procs, (pf.nprocs + 1) *
						    sizeof(*pf.procs));
				memset(&pf.procs[pf.nprocs], 0,
				       sizeof(*pf.procs));
				pf.procs[pf.nprocs].type =
					xstrdup(app->procs[i].type);
				pf.procs[pf.nprocs].cmd =
					xstrdup(app->procs[i].cmd);
				pf.nprocs++;
			}
	}
	if (r == 0)
		r = manifest_take_crons(&pf, app && app->nprocs ? "app.yaml" :
					"Procfile");
	for (i = 0; r == 0 && i < pf.ncrons; i++)
		tell(o, "-----> Cron '%s': %s (%s)", pf.crons[i].schedule,
		     pf.crons[i].cmd, pf.crons[i].origin);
	for (i = 0; r == 0 && i < af->json.ncrons; i++)
		tell(o, "-----> Cron '%s': %s (%s)%s",
		     af->json.crons[i].schedule, af->json.crons[i].cmd,
		     af->json.crons[i].origin, af->json.crons[i].paused ?
		     ", paused (maintenance)" : "");
	manifest_release(&pf);
	buf_release(&b);
	return r < 0 ? -1 : 0;
}

int appfiles_read(struct appfiles *af, const char *dir,
		  const struct manifest *app, char *const *config,
		  void (*say)(void *arg, const char *line), void *arg)
{
	struct af_out o = { say, arg };
	struct buf b = BUF_INIT;
	struct stat st;
	int top, r, ret = -1;

	top = safefs_open_top(dir);
	if (top < 0)
		return -1;
	r = read_one(&b, top, "app.json");
	if (r < 0 && r != ERR_NOTFOUND)
		goto out;
	if (r == 0) {
		if (appjson_parse(&af->json, b.data, b.len, "app.json") < 0)
			goto out;
		af->has_json = 1;
		say_json(&o, af, app, config);
	}
	r = read_one(&b, top, ".buildpacks");
	if (r < 0 && r != ERR_NOTFOUND)
		goto out;
	if (r == 0) {
		if (buildpack_list_parse(&af->buildpacks, b.data, b.len,
					 ".buildpacks") < 0)
			goto out;
		af->has_buildpacks_file = 1;
	}
	if (env_file(&o, top, "ENV", "") < 0)
		goto out;
	if (app && app->dotenv) {
		if (env_file(&o, top, ".env", " (dotenv: true)") < 0)
			goto out;
	} else if (fstatat(top, ".env", &st, AT_SYMLINK_NOFOLLOW) == 0) {
		tell(&o, "-----> .env ignored (set dotenv: true in app.yaml to "
		     "read it)");
	}
	if (fstatat(top, "Dockerfile", &st, AT_SYMLINK_NOFOLLOW) == 0)
		tell(&o, "-----> berth builds with buildpacks, not Docker: "
		     "Dockerfile ignored");
	if (crons(&o, top, af, app) < 0)
		goto out;
	ret = 0;
out:
	close(top);
	buf_release(&b);
	return ret;
}
