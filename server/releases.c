/* releases: see releases.h. */
#include "releases.h"

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "deployout.h"
#include "engine.h"
#include "isolate.h"
#include "log.h"
#include "logger.h"
#include "release.h"
#include "runner.h"
#include "safefs.h"
#include "banned.h"

/*
 * nginx serves a static site from a copy root makes beside the release
 * (run/APP-N-....www: root's, folders 0755, files 0644), never from the
 * release folder, which is the app's user's: that user could swap the
 * site's folder for a link to /etc at any moment.  The copy is made by
 * descriptors and refuses a link anywhere in the site (safefs.h).
 */
static char *static_copy_path(const struct run *r)
{
	return xasprintf("%s.www", r->dir);
}

/*
 * Folders to delete (a removed app's, a retired release's: gigabytes,
 * maybe) are renamed into ROOT/tmp at once, so their names are free, and
 * deleted there by a child: the loop does not wait for rm -rf.  ROOT/tmp
 * is wiped at start, so an engine that dies meanwhile leaves nothing for
 * good.  One engine a process: the children in flight are this file's.
 */
struct trash_job {
	struct trash_job *next;
	struct runner r;
	struct strv paths;
	const char *fail_msg;
};

static struct trash_job *trash_jobs;

static int trash_child(void *arg, int out, int err)
{
	struct trash_job *t = arg;
	size_t i;
	int ret = 0;

	(void)out;
	for (i = 0; i < t->paths.n; i++)
		if (rm_rf(t->paths.v[i]) < 0) {
			const char *msg = error_last();

			if (err >= 0 && write_all(err, msg, strlen(msg)) < 0)
				ret = 2;
			ret = ret ? ret : 1;
		}
	return ret;
}

static void trash_free(struct trash_job *t)
{
	struct trash_job **tp;

	for (tp = &trash_jobs; *tp; tp = &(*tp)->next)
		if (*tp == t) {
			*tp = t->next;
			break;
		}
	strv_release(&t->paths);
	free(t);
}

static void trash_done(struct runner *r, int result, void *arg)
{
	struct trash_job *t = arg;

	if (result < 0)
		log_warnx("%s", error_last());
	else if (!WIFEXITED(r->status) || WEXITSTATUS(r->status) != 0)
		log_warnx("%s", t->fail_msg);
	trash_free(t);
}

struct trash_job *trash_new(const char *fail_msg)
{
	struct trash_job *t = xcalloc(1, sizeof(*t));

	t->fail_msg = fail_msg;
	return t;
}

void trash_add(struct engine *e, struct trash_job *t, const char *path,
	       const char *app)
{
	static unsigned long seq;
	char *to;

	if (!path_exists(path))
		return;
	to = engine_path(e, "tmp/removed-%s-%ld-%lu", app, (long)getpid(),
			 ++seq);
	if (rename(path, to) == 0) {
		strv_push(&t->paths, to);
	} else if (rm_rf(path) < 0) {
		log_warnx("%s", error_last());
	}
	free(to);
}

void trash_start(struct trash_job *t, struct loop *l)
{
	size_t i;

	if (!t->paths.n) {
		strv_release(&t->paths);
		free(t);
		return;
	}
	runner_init(&t->r);
	t->r.child_main = trash_child;
	t->r.child_arg = t;
	t->next = trash_jobs;
	trash_jobs = t;
	if (l && runner_start(&t->r, l, trash_done, t) == 0)
		return;
	if (l)
		log_warnx("%s", error_last());
	for (i = 0; i < t->paths.n; i++)
		if (rm_rf(t->paths.v[i]) < 0)
			log_warnx("%s", error_last());
	trash_free(t);
}

void trash_cancel_all(void)
{
	while (trash_jobs) {
		struct trash_job *t = trash_jobs;

		runner_cancel(&t->r);
		trash_free(t);
	}
}

void trash_run_dirs(struct trash_job *t, const struct run *r)
{
	struct engine *e = r->app->eng;
	char *www = static_copy_path(r);

	trash_add(e, t, r->dir, r->app->name);
	trash_add(e, t, www, r->app->name);
	free(www);
}

void run_remove_dirs(const struct run *r)
{
	struct trash_job *t =
		trash_new("cannot delete the folders of a stopped release");

	trash_run_dirs(t, r);
	trash_start(t, r->app->eng->loop);
}

/*
 * In the unpack child, before the release is handed to the app's user
 * and before any of the app's code runs: the static site's copy, if the
 * manifest names one (a manifest that does not load is the engine's to
 * report).
 */
int copy_static(struct engine *e, const struct run *r)
{
	struct manifest m;
	char *parent = engine_path(e, "run"), *www = static_copy_path(r);
	int src = -1, dst = -1, ret = 0;

	manifest_init(&m);
	if (manifest_load(&m, r->dir) < 0 || !m.static_root)
		goto out;
	src = safefs_open_top(r->dir);
	dst = src < 0 ? -1 : safefs_open_top(parent);
	if (src < 0 || dst < 0)
		ret = -1;
	else
		ret = safefs_copy_tree(src, m.static_root, dst,
				       strrchr(www, '/') + 1, NULL);
	if (ret < 0) {
		char *why = xstrdup(error_last());

		error_set("static site '%s': %s", m.static_root, why);
		free(why);
	}
out:
	if (src >= 0)
		close(src);
	if (dst >= 0)
		close(dst);
	manifest_release(&m);
	free(parent);
	free(www);
	return ret < 0 ? -1 : 0;
}

int swap_static(struct engine *e, const struct run *r)
{
	struct app *a = r->app;
	char *link = engine_path(e, "run/%s.static", a->name);
	char *tmp = xasprintf("%s.new", link);
	char *target = static_copy_path(r);
	int ret = 0;

	if (!path_exists(target)) {
		ret = error_set("static site '%s': no copy of it was made",
				r->m.static_root);
		goto out;
	}
	unlink(tmp);
	if (symlink(target, tmp) < 0 || rename(tmp, link) < 0) {
		ret = error_setsys("cannot switch '%s'", link);
		unlink(tmp);
	}
out:
	free(link);
	free(tmp);
	free(target);
	return ret;
}

/* The release's meta file, "deploying" until it is live or failed. */
int record_release(const struct run *r, struct release_info *ri)
{
	struct strv types = STRV_INIT;
	size_t i;
	int ret;

	for (i = 0; i < r->m.nprocs; i++)
		strv_push(&types, r->m.procs[i].type);
	ri->types = types.n ? types.v : (char *const[]){ NULL };
	ret = release_meta_write(r->app->dir, r->number, ri, "deploying");
	ri->types = NULL;
	strv_release(&types);
	return ret;
}

/* The release folder belongs to the user its processes run as. */
static uid_t chown_uid;
static gid_t chown_gid;

static int chown_one(const char *path, const struct stat *st, int flag,
		     struct FTW *ftw)
{
	if (lchown(path, chown_uid, chown_gid) < 0)
		return error_setsys("cannot chown '%s'", path);
	return 0;
}

static int chown_tree(const char *dir, uid_t uid, gid_t gid)
{
	/* Runs in the unpack child only: the statics are that process's. */
	chown_uid = uid;
	chown_gid = gid;
	return nftw(dir, chown_one, 32, FTW_PHYS) == 0 ? 0 : -1;
}

/* In the unpack child: the release to the user its processes run as. */
int give_release(const struct engine *e, const struct run *run)
{
	uid_t uid;
	gid_t gid;
	int r = isolate_app_user(e->iso, run->app->name, &uid, &gid);

	/* The app's alone: nginx's workers (berth-www) and other users do
	 * not enter it, whatever modes the bundle's files carry.  Before
	 * any code of the app runs, so no link can be swapped in. */
	if (r == 0) {
		if (isolate_give_tree(run->dir, uid, gid) < 0)
			return -1;
		if (chmod(run->dir, 0700) < 0)
			return error_setsys("cannot close '%s'", run->dir);
		return 0;
	}
	if (r != ERR_NOTFOUND)
		return -1;
	if (!e->drop_priv)
		return 0;
	return chown_tree(run->dir, e->run_uid, e->run_gid);
}

/* A push's build output, line by line into the app's log, and all of
 * it (the lines the pusher saw) into its output record. */
struct build_log {
	struct engine *e;
	char *name;
	struct buf partial;
	struct client *c;
	struct deployout *out;
};

struct client *build_log_client(struct build_log *bl)
{
	return bl->c;
}

struct deployout *build_log_output(struct build_log *bl)
{
	return bl->out;
}

#define BUILD_LINE_MAX 16384

static void build_log_line(struct build_log *bl, const char *line, size_t len)
{
	/* Looked up each time: the app may be removed during its build. */
	struct app *a = app_find(bl->e, bl->name);

	if (a && a->log)
		logger_line(a->log, "build", line, len);
}

static void on_build_input(struct client *c, const char *data, size_t len,
			   void *arg)
{
	struct build_log *bl = arg;
	char *nl;

	deployout_add(bl->out, data, len);
	buf_add(&bl->partial, data, len);
	while ((nl = memchr(bl->partial.data, '\n', bl->partial.len))) {
		build_log_line(bl, bl->partial.data,
			       (size_t)(nl - bl->partial.data));
		buf_consume(&bl->partial, (size_t)(nl - bl->partial.data) + 1);
	}
	if (bl->partial.len > BUILD_LINE_MAX) {
		build_log_line(bl, bl->partial.data, bl->partial.len);
		buf_reset(&bl->partial);
	}
}

static void on_build_close(struct client *c, void *arg)
{
	struct build_log *bl = arg;
	struct app *a = app_find(bl->e, bl->name);

	if (bl->partial.len)
		build_log_line(bl, bl->partial.data, bl->partial.len);
	if (a && a->building == bl)
		a->building = NULL;
	deployout_unref(bl->out);
	buf_release(&bl->partial);
	free(bl->name);
	free(bl);
}

void build_log_open(struct engine *e, struct app *a, struct client *c)
{
	const char *name = a->name;
	struct build_log *bl;

	bl = xcalloc(1, sizeof(*bl));
	bl->e = e;
	bl->name = xstrdup(name);
	bl->c = c;
	if (deployout_open(&bl->out, a->dir, "push", NULL,
			   e->cfg->keep_releases) < 0)
		log_warnx("%s: %s", name, error_last());
	if (a->building)	/* one build at a time: a stale one */
		log_warnx("%s: a second build's output while one is open",
			  name);
	a->building = bl;
	client_on_input(c, on_build_input, bl);
	client_on_close(c, on_build_close, bl);
}
