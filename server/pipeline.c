/* pipeline: see pipeline.h and docs/pipeline.md. */
#include "pipeline.h"
#include "packset.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pwd.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <curl/curl.h>
#include <git2.h>

#include "appfiles.h"
#include "bundle.h"
#include "buildpack.h"
#include "config.h"
#include "control.h"
#include "gitsvc.h"
#include "log.h"
#include "isolate.h"
#include "manifest.h"
#include "paths.h"
#include "privenv.h"
#include "safefs.h"
#include "runner.h"
#include "spawn.h"
#include "submodule.h"
#include "treelimits.h"
#include "banned.h"

#define LOST_ENGINE_WAIT_MS 60000	/* for a restarted engine to answer */
#define BUILD_PATH "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
#define OUT_LINE_MAX 4096	/* longer output lines are split */
#define DETECT_MAX 4096		/* bin/detect stdout kept */
#define RELEASE_MAX (256 * 1024)	/* bin/release stdout kept */
#define APP_YAML_MAX (1024 * 1024)
#define CONFIG_MAX_VARS 4096
#define WEBHOOK_TIMEOUT_MS 5000L

const char *const pipeline_builtin_buildpacks[] = {
	"node", "python", "make", "static", "procfile", NULL,
};

/* Built-in step names; anything else must be "hook:NAME". */
enum step_kind {
	STEP_HOOKS,		/* pre-build, post-build, post-deploy */
	STEP_BUILDPACK,
	STEP_PACK,
	STEP_DEPLOY,
	STEP_CUSTOM,		/* hook:NAME from .berth/hooks/NAME */
};

struct step {
	enum step_kind kind;
	char *name;		/* as written: "pre-build", "hook:lint" */
	const char *hook;	/* hook file name for STEP_HOOKS/STEP_CUSTOM */
};

static const char *const default_steps[] = {
	"pre-build", "buildpack", "post-build", "pack", "deploy", "post-deploy",
};

/* ---- output for the user ---- */

/*
 * What the user sees of a build also goes to the app's log: the engine's
 * "build-log APP" connection gets a copy of every line written to the
 * user's fd (build_log_open()).  One build per process, so one copy.
 */
static int log_copy_fd = -1;	/* the engine connection */
static int log_copy_of = -1;	/* the user's fd whose lines it copies */

static void out_write(int fd, const char *data, size_t len)
{
	/* The pusher may have hung up; the build goes on regardless. */
	if (fd >= 0 && len)
		(void)write_all(fd, data, len);
	if (fd >= 0 && len && fd == log_copy_of && log_copy_fd >= 0 &&
	    write_all(log_copy_fd, data, len) < 0) {
		close(log_copy_fd);	/* the engine went away */
		log_copy_fd = -1;
	}
}

static void say(int fd, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static void say(int fd, const char *fmt, ...)
{
	char line[OUT_LINE_MAX + 2];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(line, sizeof(line) - 1, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if ((size_t)n > sizeof(line) - 2)
		n = (int)sizeof(line) - 2;
	line[n++] = '\n';
	out_write(fd, line, (size_t)n);
}

void pipeline_format_line(struct buf *out, const char *line, size_t len)
{
	if (len && line[len - 1] == '\r')
		len--;
	if (!(len >= 6 && !memcmp(line, "----->", 6)) &&
	    !(len >= 2 && !memcmp(line, " !", 2)) &&
	    !(len >= 7 && !memcmp(line, "       ", 7)))
		buf_addstr(out, "       ");
	buf_add(out, line, len);
	buf_addstr(out, "\n");
}

/* ---- running one program ---- */

struct run {
	char *const *argv;
	char *const *envp;
	const char *dir;
	int out;		/* user's fd for formatted output */
	struct buf *capture;	/* stdout kept here (bounded) instead of shown */
	size_t capture_max;
	int64_t deadline;	/* now_ms() clock, 0: none */
	long uid, gid;		/* >= 0: drop to this user */
};

static void run_init(struct run *r)
{
	memset(r, 0, sizeof(*r));
	r->out = -1;
	r->uid = r->gid = -1;
}

/* Every program of the build joins its cgroup (isolate.h) before it
 * drops root. */
static const char *build_child_setup(void *arg)
{
	(void)arg;
	return isolate_build_enter();
}

/* A line of a build program, shown to the user formatted. */
static void run_line(void *arg, enum runner_stream stream, const char *line,
		     size_t len)
{
	const struct run *r = arg;
	struct buf o = BUF_INIT;

	(void)stream;
	pipeline_format_line(&o, line, len);
	out_write(r->out, o.data, o.len);
	buf_release(&o);
}

/*
 * Run to completion (runner.h); *status as from waitpid.  -1 if it could
 * not start or ran out of time (then its whole process group is killed).
 * Processes it leaves behind are killed when it exits, so a stray daemon
 * cannot hold the build open.
 */
static int run_prog(struct run *r, int *status)
{
	struct runner rn;
	int64_t now = now_ms();

	runner_init(&rn);
	rn.spawn.argv = r->argv;
	rn.spawn.envp = r->envp;
	rn.spawn.dir = r->dir;
	rn.spawn.flags = SPAWN_DIE_WITH_PARENT;
	rn.spawn.child_setup = build_child_setup;
	if (r->uid >= 0) {
		rn.spawn.flags |= SPAWN_DROP_PRIV;
		rn.spawn.uid = (uid_t)r->uid;
		rn.spawn.gid = (gid_t)r->gid;
	}
	rn.on_line = run_line;
	rn.arg = r;
	rn.line_streams = 1u << RUNNER_ERR;
	if (r->capture) {
		rn.capture[RUNNER_OUT] = r->capture;
		rn.capture_max = r->capture_max;
	} else {
		rn.line_streams |= 1u << RUNNER_OUT;
	}
	if (r->deadline) {
		if (r->deadline <= now)
			return error_set("build timed out");
		rn.timeout_ms = (long)(r->deadline - now);
		rn.timeout_msg = "build timed out";
	}
	if (runner_run(&rn) < 0)
		return -1;
	*status = rn.status;
	return 0;
}

/* ---- checkout ---- */

static int git_fail(const char *what)
{
	const git_error *e = git_error_last();

	return error_set("%s: %s", what, e && e->message ? e->message :
			 "unknown error");
}

static int commit_valid(const char *commit)
{
	size_t i;

	if (!commit || strlen(commit) != 40)
		return 0;
	for (i = 0; i < 40; i++)
		if (!isxdigit((unsigned char)commit[i]) ||
		    isupper((unsigned char)commit[i]))
			return 0;
	return 1;
}

int pipeline_checkout(const char *repo, const char *commit, const char *dir)
{
	git_repository *r = NULL;
	git_commit *c = NULL;
	git_tree *t = NULL;
	git_oid oid;
	git_checkout_options co;
	int ret = -1;

	if (!commit_valid(commit))
		return error_set("invalid commit id '%s'", commit ? commit : "");
	git_libgit2_init();
	if (git_checkout_options_init(&co, GIT_CHECKOUT_OPTIONS_VERSION) < 0) {
		git_fail("checkout options");
		goto out;
	}
	if (git_repository_open_bare(&r, repo) < 0) {
		git_fail("cannot open repository");
		goto out;
	}
	if (git_oid_fromstr(&oid, commit) < 0 ||
	    git_commit_lookup(&c, r, &oid) < 0) {
		error_set("no commit '%s' in the repository", commit);
		goto out;
	}
	if (git_commit_tree(&t, c) < 0) {
		git_fail("cannot read the commit's tree");
		goto out;
	}
	co.checkout_strategy = GIT_CHECKOUT_FORCE |
			       GIT_CHECKOUT_DONT_UPDATE_INDEX;
	co.target_directory = dir;
	/* with a work tree (in memory only), gitlinks become empty folders
	 * that submodule_update() fills */
	if (git_repository_set_workdir(r, dir, 0) < 0) {
		git_fail("cannot check out the commit");
		goto out;
	}
	if (git_checkout_tree(r, (git_object *)t, &co) < 0) {
		git_fail("cannot check out the commit");
		goto out;
	}
	ret = 0;
out:
	git_tree_free(t);
	git_commit_free(c);
	git_repository_free(r);
	git_libgit2_shutdown();
	return ret;
}

/* ---- buildpacks ---- */

static int is_exec_file(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0 && S_ISREG(st.st_mode) &&
	       (st.st_mode & 0111);
}

static char *try_pack(const char *base, const char *name)
{
	char *d = xasprintf("%s/%s", base, name);
	char *compile = xasprintf("%s/bin/compile", d);
	int found = is_exec_file(compile);

	free(compile);
	if (found)
		return d;
	free(d);
	return NULL;
}

int pipeline_buildpack_find(char **dir, const char *root, const char *name)
{
	char *base = NULL, *found = NULL;

	*dir = NULL;
	if (name[0] == '/') {
		char *compile = xasprintf("%s/bin/compile", name);
		int ok = is_exec_file(compile);

		free(compile);
		if (!ok)
			return error_set("no buildpack at '%s' (it needs an "
					 "executable bin/compile)", name), ERR_NOTFOUND;
		*dir = xstrdup(name);
		return 0;
	}
	/* A bare name must not reach a path as anything but one component. */
	if (!app_name_valid(name))
		return error_set("invalid buildpack name '%s'", name), ERR_INVALID;
	if (root) {
		base = xasprintf("%s/buildpacks", root);
		found = try_pack(base, name);
		FREE_AND_NULL(base);
	}
	if (!found) {
		struct strv dirs = STRV_INIT;
		size_t i;

		paths_share_dirs(&dirs);
		for (i = 0; !found && i < dirs.n; i++) {
			base = xasprintf("%s/buildpacks", dirs.v[i]);
			found = try_pack(base, name);
			FREE_AND_NULL(base);
		}
		strv_release(&dirs);
	}
	if (!found)
		return error_set("no buildpack named '%s'", name), ERR_NOTFOUND;
	*dir = found;
	return 0;
}

int pipeline_write_env_dir(const char *dir, char *const *env)
{
	size_t i;

	for (i = 0; env && env[i]; i++) {
		const char *eq = strchr(env[i], '=');
		char *key, *path;
		int fd;

		if (!eq)
			continue;
		key = xstrndup(env[i], (size_t)(eq - env[i]));
		if (!env_key_valid(key)) {
			error_set("invalid config var name '%s'", key);
			free(key);
			return -1;
		}
		path = xasprintf("%s/%s", dir, key);
		free(key);
		fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC |
			  O_NOFOLLOW, 0600);
		if (fd < 0) {
			error_setsys("cannot create '%s'", path);
			free(path);
			return -1;
		}
		if (write_all(fd, eq + 1, strlen(eq + 1)) < 0 || close(fd) < 0) {
			error_setsys("cannot write '%s'", path);
			free(path);
			return -1;
		}
		free(path);
	}
	return 0;
}

void pipeline_build_init(struct pipeline_build *b)
{
	memset(b, 0, sizeof(*b));
	b->out = -1;
	b->drop_uid = b->drop_gid = -1;
}

void pipeline_build_release(struct pipeline_build *b)
{
	FREE_AND_NULL(b->detected);
	FREE_AND_NULL(b->pack);
}

static void run_from_build(struct run *r, const struct pipeline_build *b,
			   char *const *env)
{
	run_init(r);
	r->envp = env;
	r->dir = b->build_dir;
	r->out = b->out;
	r->deadline = b->deadline;
	r->uid = b->drop_uid;
	r->gid = b->drop_gid;
}

/* bin/detect: 1 if it applies (name in *detected), 0 if not, -1 error. */
static int pack_detect(const struct pipeline_build *b, const char *packdir,
		       const char *label, char *const *env, char **detected)
{
	struct run r;
	struct buf so = BUF_INIT;
	char *prog = xasprintf("%s/bin/detect", packdir);
	struct strv argv = STRV_INIT;
	int status, ret = -1;
	size_t n;

	*detected = NULL;
	strv_push(&argv, prog);
	strv_push(&argv, b->build_dir);
	run_from_build(&r, b, env);
	r.argv = argv.v;
	r.capture = &so;
	r.capture_max = DETECT_MAX;
	if (!is_exec_file(prog)) {
		error_set("buildpack '%s' has no executable bin/detect", label);
		goto out;
	}
	if (run_prog(&r, &status) < 0)
		goto out;
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		ret = 0;
		goto out;
	}
	/* The first line, trimmed, is the name shown to the user. */
	n = strcspn(so.data, "\r\n");
	while (n && isspace((unsigned char)so.data[n - 1]))
		n--;
	{
		size_t start = 0;

		while (start < n && isspace((unsigned char)so.data[start]))
			start++;
		*detected = xstrndup(so.data + start, n - start);
	}
	if (!**detected) {
		free(*detected);
		*detected = xstrdup("Custom");
	}
	ret = 1;
out:
	buf_release(&so);
	strv_release(&argv);
	free(prog);
	return ret;
}

static int exit_fail(const char *what, int status)
{
	char why[64];

	return error_set("%s %s", what,
			 spawn_describe_status(status, why, sizeof(why)));
}

/*
 * Write a file of the build folder as root (read it with
 * safefs_read_in()), by descriptors and never through a link (the folder
 * is the pusher's: a committed symlink named Procfile.new must not send
 * root's writes elsewhere).  rel is "NAME" or "DIR/NAME" (one folder,
 * made if missing).
 */
static int build_write(const struct pipeline_build *b, const char *rel,
		       const char *data, size_t len)
{
	const char *slash = strchr(rel, '/'), *base = slash ? slash + 1 : rel;
	int top = -1, dfd = -1, fd = -1, ret = -1;
	char *dir = NULL, *tmp = xasprintf("%s.new", base);

	top = safefs_open_top(b->build_dir);
	if (top < 0)
		goto out;
	if (slash) {
		dir = xstrndup(rel, (size_t)(slash - rel));
		if (mkdirat(top, dir, 0755) == 0 && b->drop_uid >= 0 &&
		    fchownat(top, dir, (uid_t)b->drop_uid, (gid_t)b->drop_gid,
			     AT_SYMLINK_NOFOLLOW) < 0) {
			error_setsys("cannot hand '%s' over", dir);
			goto out;
		}
		dfd = safefs_openat(top, dir, O_RDONLY | O_DIRECTORY, 0);
		if (dfd < 0)
			goto out;
	} else {
		dfd = top;
		top = -1;
	}
	if (unlinkat(dfd, tmp, 0) < 0 && errno != ENOENT) {
		error_setsys("cannot remove '%s'", tmp);
		goto out;
	}
	fd = openat(dfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW |
		    O_CLOEXEC, 0644);
	if (fd < 0) {
		error_setsys("cannot create '%s'", rel);
		goto out;
	}
	if (write_all(fd, data, len) < 0 ||
	    (b->drop_uid >= 0 &&
	     fchown(fd, (uid_t)b->drop_uid, (gid_t)b->drop_gid) < 0)) {
		error_setsys("cannot write '%s'", rel);
		goto out;
	}
	close(fd);
	fd = -1;
	if (renameat(dfd, tmp, dfd, base) < 0) {
		error_setsys("cannot write '%s'", rel);
		goto out;
	}
	ret = 0;
out:
	if (fd >= 0) {
		close(fd);
		unlinkat(dfd, tmp, 0);
	}
	if (dfd >= 0)
		close(dfd);
	if (top >= 0)
		close(top);
	free(dir);
	free(tmp);
	return ret;
}

/* What the buildpacks of one build leave for the release. */
struct packs_out {
	struct manifest last;	/* the last bin/release's process types */
	struct strv config_vars;	/* every bin/release's, later wins */
};

/* bin/release of one buildpack: its YAML into po. */
static int pack_release(const struct pipeline_build *b, const char *packdir,
			char *const *env, struct packs_out *po)
{
	struct run r;
	struct buf so = BUF_INIT;
	struct manifest rel;
	char *prog = xasprintf("%s/bin/release", packdir);
	struct strv argv = STRV_INIT;
	int status, ret = -1;
	size_t i;

	manifest_init(&rel);
	/* Later buildpacks' defaults replace earlier ones (Heroku's rule:
	 * the last buildpack names the process types). */
	manifest_release(&po->last);
	manifest_init(&po->last);
	/* bin/release is optional here (static and make print nothing). */
	if (!is_exec_file(prog)) {
		ret = 0;
		goto out;
	}
	strv_push(&argv, prog);
	strv_push(&argv, b->build_dir);
	run_from_build(&r, b, env);
	r.argv = argv.v;
	r.capture = &so;
	r.capture_max = RELEASE_MAX;
	if (run_prog(&r, &status) < 0)
		goto out;
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		exit_fail("bin/release", status);
		goto out;
	}
	for (i = 0; i < so.len; i++)
		if (!isspace((unsigned char)so.data[i]))
			break;
	if (i == so.len) {
		ret = 0;
		goto out;
	}
	if (manifest_parse_release_yaml(&rel, so.data, so.len) < 0)
		goto out;
	for (i = 0; i < rel.env.n; i++) {
		char *eq = strchr(rel.env.v[i], '=');

		*eq = '\0';
		strv_env_set(&po->config_vars, rel.env.v[i], eq + 1);
		*eq = '=';
	}
	strv_release(&rel.env);
	manifest_release(&po->last);	/* the empty one made above */
	po->last = rel;
	manifest_init(&rel);
	ret = 0;
out:
	manifest_release(&rel);
	buf_release(&so);
	strv_release(&argv);
	free(prog);
	return ret;
}

/* The app's Procfile plus the last buildpack's default process types
 * it lacks. */
static int write_process_types(const struct pipeline_build *b,
			       const struct manifest *defaults)
{
	struct buf pf = BUF_INIT;
	struct manifest app;
	int r, ret = -1, has_procfile;
	size_t i, added = 0;

	if (b->app_has_processes || !defaults->nprocs)
		return 0;
	manifest_init(&app);
	r = safefs_read_in(&pf, b->build_dir, "Procfile", APP_YAML_MAX);
	if (r < 0 && r != ERR_NOTFOUND)
		goto out;
	has_procfile = r == 0;
	if (has_procfile && manifest_parse_procfile(&app, pf.data, pf.len,
						    "Procfile") < 0)
		goto out;
	if (pf.len && pf.data[pf.len - 1] != '\n')
		buf_addstr(&pf, "\n");
	for (i = 0; i < defaults->nprocs; i++) {
		const struct proc_spec *ps = &defaults->procs[i];

		if (manifest_proc(&app, ps->type))
			continue;	/* the app's Procfile wins */
		if (!ps->cmd || strchr(ps->cmd, '\n') || strchr(ps->cmd, '\r') ||
		    !proc_type_valid(ps->type)) {
			error_set("bin/release gave a bad process type '%s'",
				  ps->type ? ps->type : "");
			goto out;
		}
		if (!added && has_procfile)
			buf_addstr(&pf, "# from the buildpack's defaults\n");
		buf_addf(&pf, "%s: %s\n", ps->type, ps->cmd);
		added++;
	}
	if (added && build_write(b, "Procfile", pf.data, pf.len) < 0)
		goto out;
	ret = 0;
out:
	manifest_release(&app);
	buf_release(&pf);
	return ret;
}

/* A YAML double-quoted scalar. */
static void yaml_str(struct buf *o, const char *s)
{
	buf_addstr(o, "\"");
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;

		if (c == '"' || c == '\\')
			buf_addf(o, "\\%c", c);
		else if (c == '\n')
			buf_addstr(o, "\\n");
		else if (c < 0x20 || c == 0x7f)
			buf_addf(o, "\\x%02x", c);
		else
			buf_add(o, s, 1);
	}
	buf_addstr(o, "\"");
}

/* config_vars for the engine: defaults under the app's own config. */
static int write_config_vars(const struct pipeline_build *b,
			     const struct strv *vars)
{
	struct buf o = BUF_INIT;
	size_t i;
	int ret;

	if (!vars->n)
		return 0;
	buf_addstr(&o, "# the buildpacks' config_vars (bin/release), written "
		   "by berth: defaults\n# under the app's own config\n"
		   "config_vars:\n");
	for (i = 0; i < vars->n; i++) {
		char *eq = strchr(vars->v[i], '=');

		buf_addf(&o, "  %.*s: ", (int)(eq - vars->v[i]), vars->v[i]);
		yaml_str(&o, eq + 1);
		buf_addstr(&o, "\n");
	}
	ret = build_write(b, MANIFEST_BUILDPACK_CONFIG, o.data, o.len);
	buf_release(&o);
	return ret;
}

/* After a buildpack's compile, its "export" file (Heroku's multi-buildpack
 * contract) is sourced, and what it sets is the environment of the
 * buildpacks after it.  env is replaced. */
static int source_export(const struct pipeline_build *b, const char *packdir,
			 struct strv *env)
{
	static const char *const drop[] = { "PWD", "OLDPWD", "SHLVL", "_" };
	char *path = xasprintf("%s/export", packdir);
	struct strv argv = STRV_INIT, next = STRV_INIT;
	struct buf so = BUF_INIT;
	struct stat st;
	struct run r;
	size_t pos;
	int status, ret = -1;

	if (lstat(path, &st) < 0 || !S_ISREG(st.st_mode)) {
		ret = 0;
		goto out;
	}
	strv_push(&argv, "/bin/sh");
	strv_push(&argv, "-c");
	strv_push(&argv, ". \"$1\" >&2 && exec env -0");
	strv_push(&argv, "export");
	strv_push(&argv, path);
	run_from_build(&r, b, env->v);
	r.argv = argv.v;
	r.capture = &so;
	r.capture_max = RELEASE_MAX;
	if (run_prog(&r, &status) < 0)
		goto out;
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		exit_fail("its export file", status);
		goto out;
	}
	for (pos = 0; pos < so.len;) {
		const char *e = so.data + pos, *eq;
		size_t n = strnlen(e, so.len - pos), i;
		char *key;
		int keep = 1;

		pos += n + 1;
		eq = memchr(e, '=', n);
		if (!eq)
			continue;
		key = xstrndup(e, (size_t)(eq - e));
		for (i = 0; i < ARRAY_SIZE(drop); i++)
			if (!strcmp(key, drop[i]))
				keep = 0;
		if (keep && env_key_valid(key) && pos <= so.len)
			strv_push(&next, e);
		free(key);
	}
	strv_release(env);
	*env = next;
	memset(&next, 0, sizeof(next));
	ret = 0;
out:
	strv_release(&next);
	strv_release(&argv);
	buf_release(&so);
	free(path);
	return ret;
}

/* Compile, release and export of one buildpack in packdir. */
static int pack_run(const struct pipeline_build *b, const char *packdir,
		    struct strv *env, struct packs_out *po, int last)
{
	struct strv argv = STRV_INIT;
	char *compile = xasprintf("%s/bin/compile", packdir);
	struct run r;
	int status, ret = -1;

	strv_push(&argv, compile);
	strv_push(&argv, b->build_dir);
	strv_push(&argv, b->cache_dir);
	strv_push(&argv, b->env_dir);
	run_from_build(&r, b, env->v);
	r.argv = argv.v;
	if (run_prog(&r, &status) < 0)
		goto out;
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		exit_fail("bin/compile", status);
		goto out;
	}
	if (pack_release(b, packdir, env->v, po) < 0)
		goto out;
	if (!last && source_export(b, packdir, env) < 0)
		goto out;
	ret = 0;
out:
	strv_release(&argv);
	free(compile);
	return ret;
}

/* This build's own copy of the buildpack a spec names, in dest. */
static int pack_materialize(const struct pipeline_build *b,
			    const struct buildpack_spec *s, const char *dest)
{
	struct buildpack_fetch f;
	char *src = NULL;
	int ret = -1, r;

	if (s->kind != BUILDPACK_URL) {
		if (pipeline_buildpack_find(&src, b->root, s->name) < 0)
			return -1;
		ret = buildpack_copy(src, dest, b->drop_uid, b->drop_gid,
				     b->deadline);
		free(src);
		return ret;
	}
	say(b->out, "-----> Fetching buildpack %s", s->text);
	if (mkdir(dest, 0700) < 0)
		return error_setsys("cannot create '%s'", dest);
	buildpack_fetch_init(&f);
	f.url = s->url;
	f.ref = s->ref;
	f.cache = b->pack_cache;
	f.dest = dest;
	f.state_root = b->root;
	f.uid = b->drop_uid;
	f.gid = b->drop_gid;
	f.child_setup = isolate_build_child;
	f.deadline = b->deadline;
	/* the fetch writes the app's clones; a file:// URL may name a
	 * folder of the host's /tmp */
	if (isolate_build_show(b->pack_cache, 0) < 0) {
		buildpack_fetch_release(&f);
		return -1;
	}
	isolate_build_fetching(1);
	r = buildpack_fetch(&f);
	isolate_build_fetching(0);
	isolate_build_unshow(b->pack_cache);
	if (r == 0) {
		if (f.stale)
			say(b->out, " !     cannot fetch it (%s): using the "
			    "copy fetched before, at %.7s", f.stale, f.commit);
		else
			say(b->out, "       at %s%s%.7s%s", s->ref ? s->ref : "",
			    s->ref ? " (" : "", f.commit, s->ref ? ")" : "");
		ret = 0;
	}
	buildpack_fetch_release(&f);
	return ret;
}

/* The listed buildpacks, in order, each checked by its bin/detect. */
static int run_listed(struct pipeline_build *b, char *const *packs,
		      struct packs_out *po)
{
	struct strv env = STRV_INIT, names = STRV_INIT, detected = STRV_INIT;
	char *tmp = NULL, *dest = NULL, *det = NULL;
	size_t i, n = 0;
	int ret = -1, d, shown = 0;

	while (packs[n])
		n++;
	for (i = 0; b->env && b->env[i]; i++)
		strv_push(&env, b->env[i]);
	tmp = xasprintf("%s/tmp", b->root);
	if (mkdir_p(tmp, 0755) < 0)
		goto out;
	free(tmp);
	tmp = xasprintf("%s/tmp/buildpacks-XXXXXX", b->root);
	if (!mkdtemp(tmp)) {
		error_setsys("cannot create '%s'", tmp);
		FREE_AND_NULL(tmp);
		goto out;
	}
	if (b->drop_uid >= 0 &&
	    lchown(tmp, (uid_t)b->drop_uid, (gid_t)b->drop_gid) < 0) {
		error_setsys("cannot hand '%s' over", tmp);
		goto out;
	}
	/* this build's copies: they may write their "export" file */
	if (isolate_build_show(tmp, SANDBOX_SHOW_EXEC) < 0)
		goto out;
	shown = 1;
	if (n > 1 || b->packs_from)
		say(b->out, "-----> Buildpacks%s%s: %zu", b->packs_from ?
		    " from " : "", b->packs_from ? b->packs_from : "", n);
	for (i = 0; i < n; i++) {
		struct buildpack_spec s;

		if (buildpack_spec_parse(&s, packs[i]) < 0)
			goto out;
		FREE_AND_NULL(dest);
		dest = xasprintf("%s/%zu", tmp, i + 1);
		d = pack_materialize(b, &s, dest);
		if (d == 0) {
			d = pack_detect(b, dest, s.text, env.v, &det);
			if (d == 0)
				error_set("buildpack '%s' does not apply to "
					  "this app (its bin/detect said no)",
					  s.text);
		}
		if (d <= 0) {
			buildpack_spec_release(&s);
			goto out;
		}
		say(b->out, "-----> %s app detected", det);
		strv_push(&names, s.kind == BUILDPACK_NAME ? s.name : s.text);
		strv_push(&detected, det);
		FREE_AND_NULL(det);
		buildpack_spec_release(&s);
		if (pack_run(b, dest, &env, po, i + 1 == n) < 0)
			goto out;
	}
	{
		struct buf j = BUF_INIT;

		for (i = 0; i < names.n; i++)
			buf_addf(&j, "%s%s", i ? "," : "", names.v[i]);
		b->pack = buf_detach(&j);
		for (i = 0; i < detected.n; i++)
			buf_addf(&j, "%s%s", i ? ", " : "", detected.v[i]);
		b->detected = buf_detach(&j);
	}
	ret = 0;
out:
	if (shown)
		isolate_build_unshow(tmp);
	if (tmp && rm_rf(tmp) < 0)
		log_warnx("%s: %s", __func__, error_last());
	free(tmp);
	free(dest);
	free(det);
	strv_release(&env);
	strv_release(&names);
	strv_release(&detected);
	return ret;
}

/* No choice made: the first built-in whose bin/detect says yes, run where
 * it is installed. */
static int run_detected(struct pipeline_build *b, struct packs_out *po)
{
	struct strv env = STRV_INIT;
	char *packdir = NULL, *detected = NULL;
	size_t i, found = 0;
	int ret = -1, d, r;

	for (i = 0; b->env && b->env[i]; i++)
		strv_push(&env, b->env[i]);
	for (i = 0; pipeline_builtin_buildpacks[i]; i++) {
		const char *name = pipeline_builtin_buildpacks[i];

		/* An install may leave out a language it has no runtime
		 * for. */
		if (pipeline_buildpack_find(&packdir, b->root, name) < 0)
			continue;
		found++;
		/* read-only: it is the install's (or ROOT/buildpacks') */
		if (isolate_build_show(packdir, SANDBOX_SHOW_READONLY |
				       SANDBOX_SHOW_EXEC) < 0)
			goto out;
		d = pack_detect(b, packdir, name, env.v, &detected);
		if (d > 0) {
			b->pack = xstrdup(name);
			break;
		}
		isolate_build_unshow(packdir);
		if (d < 0)
			goto out;
		FREE_AND_NULL(packdir);
	}
	if (!found) {
		error_set("cannot find the built-in buildpacks (see "
			  "docs/buildpacks.md)");
		goto out;
	}
	if (!b->pack) {
		error_set("no buildpack applies to this app (add a Procfile or "
			  "app.yaml, or set BUILDPACK)");
		goto out;
	}
	say(b->out, "-----> %s app detected", detected);
	r = pack_run(b, packdir, &env, po, 1);
	isolate_build_unshow(packdir);
	if (r < 0)
		goto out;
	b->detected = detected;
	detected = NULL;
	ret = 0;
out:
	strv_release(&env);
	free(detected);
	free(packdir);
	return ret;
}

int pipeline_buildpack(struct pipeline_build *b)
{
	char *one[2] = { NULL, NULL };
	struct packs_out po;
	int ret = -1;

	FREE_AND_NULL(b->detected);
	FREE_AND_NULL(b->pack);
	manifest_init(&po.last);
	memset(&po.config_vars, 0, sizeof(po.config_vars));
	if (b->packs && b->packs[0]) {
		ret = run_listed(b, b->packs, &po);
	} else if (b->force) {
		one[0] = (char *)(uintptr_t)b->force;
		ret = run_listed(b, one, &po);
	} else {
		ret = run_detected(b, &po);
	}
	if (ret == 0 && (write_process_types(b, &po.last) < 0 ||
			 write_config_vars(b, &po.config_vars) < 0))
		ret = -1;
	if (ret < 0) {
		FREE_AND_NULL(b->pack);
		FREE_AND_NULL(b->detected);
	}
	manifest_release(&po.last);
	strv_release(&po.config_vars);
	return ret;
}

/* ---- one run of the pipeline ---- */

struct pl {
	const struct pipeline_opts *o;
	const char *root;
	char *build_dir;
	char *cache_dir;
	char *env_dir;
	char *work_dir;		/* the build's own scratch, or NULL */
	char *bundle;
	struct strv config;	/* KEY=VALUE from the engine */
	struct manifest m;	/* the checkout's app.yaml */
	int have_manifest;
	struct appfiles af;	/* its app.json, .buildpacks, ... */
	struct step *steps;
	size_t nsteps;
	char *detected;
	char *pack;
	int64_t start, deadline;
	long release;		/* from the engine's "ok release=N"; -1 */
	long deploying;		/* from "fields release=N"; 0 */
	int deployed;
	int outcome_said;	/* the failure message says what runs now */
	long uid, gid;		/* the app's user when we are root, else -1 */
	int per_app_user;	/* uid is the app's own (not 'user:') */
	int lock_fd;		/* ROOT/cache/NAME.lock, or -1 */
};

static const char *config_get(const struct pl *p, const char *key)
{
	long i = strv_env_find(&p->config, key);

	return i < 0 ? NULL : strchr(p->config.v[i], '=') + 1;
}

struct config_state {
	struct strv *vars;
	int bad;
};

/* "config NAME" gives each var as "fields var=KEY=VALUE" (encoded);
 * its data lines are for people. */
static int config_line(void *arg, enum control_kind kind, const char *text)
{
	struct config_state *cs = arg;
	struct buf var = BUF_INIT;
	const char *eq;
	char *key;

	if (kind != CONTROL_FIELDS ||
	    control_field_decode(text, "var", &var) < 0 ||
	    !(eq = strchr(var.data, '='))) {
		buf_release(&var);
		return 0;
	}
	if (cs->vars->n >= CONFIG_MAX_VARS) {
		cs->bad = 1;
		buf_release(&var);
		return 0;
	}
	key = xstrndup(var.data, (size_t)(eq - var.data));
	if (env_key_valid(key))
		strv_push(cs->vars, var.data);
	free(key);
	buf_release(&var);
	return 0;
}

static int load_config(struct pl *p)
{
	struct strv argv = STRV_INIT;
	struct config_state cs = { &p->config, 0 };
	struct control_result res;
	int r, ret = -1;

	strv_push(&argv, "config");
	strv_push(&argv, p->o->app);
	r = control_call_result(p->root, 2, argv.v, config_line, &cs, &res);
	strv_release(&argv);
	if (r < 0)
		goto out;
	if (r == 1) {
		/* A first push: the engine learns of the app at its first
		 * deploy, and it has no config vars before that. */
		if (!strcmp(res.code, CONTROL_ERR_NOTFOUND))
			ret = 0;
		else
			error_set("cannot read config vars: %s",
				  res.message ? res.message : "");
		goto out;
	}
	if (cs.bad) {
		error_set("too many config vars");
		goto out;
	}
	ret = 0;
out:
	control_result_release(&res);
	return ret;
}

/* The environment of hooks and buildpacks, never our own. */
static void build_env(struct pl *p, struct strv *env, const char *step,
		      int with_config)
{
	size_t i;

	if (with_config)
		for (i = 0; i < p->config.n; i++)
			strv_push(env, p->config.v[i]);
	/* Ours come last so a config var cannot replace them. */
	strv_env_set(env, "PATH", BUILD_PATH);
	strv_env_set(env, "HOME", p->build_dir);
	strv_env_set(env, "LANG", "C.UTF-8");
	strv_env_set(env, "STACK", "berth");
	strv_env_set(env, "SOURCE_VERSION", p->o->commit);
	strv_env_set(env, "BERTH_APP", p->o->app);
	strv_env_set(env, "BERTH_COMMIT", p->o->commit);
	strv_env_set(env, "BERTH_PUSHER", p->o->pusher ? p->o->pusher : "");
	strv_env_set(env, "BERTH_STEP", step);
	strv_env_set(env, "BERTH_BUILD_DIR", p->build_dir);
	strv_env_set(env, "BERTH_CACHE_DIR", p->cache_dir);
	if (p->release > 0) {
		char n[32];

		snprintf(n, sizeof(n), "%ld", p->release);
		strv_env_set(env, "BERTH_RELEASE", n);
	}
}

static int hook_name_valid(const char *s)
{
	size_t i, n = strlen(s);

	if (!n || n > 64 || s[0] == '.' || s[0] == '-')
		return 0;
	for (i = 0; i < n; i++)
		if (!isalnum((unsigned char)s[i]) && !strchr("._-", s[i]))
			return 0;
	return 1;
}

static void steps_free(struct pl *p)
{
	size_t i;

	for (i = 0; i < p->nsteps; i++)
		free(p->steps[i].name);
	FREE_AND_NULL(p->steps);
	p->nsteps = 0;
}

static int steps_resolve(struct pl *p)
{
	const char *const *names = default_steps;
	size_t n = ARRAY_SIZE(default_steps), i, j;
	int pack_at = -1, deploy_at = -1;

	if (p->have_manifest && p->m.pipeline.n) {
		names = (const char *const *)p->m.pipeline.v;
		n = p->m.pipeline.n;
	}
	p->steps = xcalloc(n, sizeof(*p->steps));
	for (i = 0; i < n; i++) {
		struct step *s = &p->steps[i];
		const char *nm = names[i];

		s->name = xstrdup(nm);
		p->nsteps = i + 1;
		if (!strcmp(nm, "pre-build") || !strcmp(nm, "post-build") ||
		    !strcmp(nm, "post-deploy")) {
			s->kind = STEP_HOOKS;
			s->hook = s->name;
		} else if (!strcmp(nm, "buildpack")) {
			s->kind = STEP_BUILDPACK;
		} else if (!strcmp(nm, "pack")) {
			s->kind = STEP_PACK;
			pack_at = (int)i;
		} else if (!strcmp(nm, "deploy")) {
			s->kind = STEP_DEPLOY;
			deploy_at = (int)i;
		} else if (!strncmp(nm, "hook:", 5) && hook_name_valid(nm + 5)) {
			s->kind = STEP_CUSTOM;
			s->hook = s->name + 5;
			continue;
		} else {
			return error_set("app.yaml: unknown pipeline step '%s'",
					 nm), ERR_INVALID;
		}
		for (j = 0; j < i; j++)
			if (!strcmp(p->steps[j].name, nm))
				return error_set("app.yaml: pipeline step '%s' "
						 "appears twice", nm), ERR_INVALID;
	}
	if (deploy_at < 0)
		return error_set("app.yaml: the pipeline has no 'deploy' step"),
		       ERR_INVALID;
	if (pack_at < 0 || pack_at > deploy_at)
		return error_set("app.yaml: the pipeline needs 'pack' before "
				 "'deploy'"), ERR_INVALID;
	return 0;
}

/* Run one hook program; -1 with a one-line reason if it fails. */
static int run_hook(struct pl *p, const char *path, const char *label,
		    const char *step, int trusted)
{
	struct strv env = STRV_INIT;
	struct run r;
	struct strv argv = STRV_INIT;
	int status, ret = -1;

	strv_push(&argv, path);
	say(p->o->out, "-----> Running %s hook '%s'", step, label);
	build_env(p, &env, step, 1);
	if (trusted == 2) {
		/* berth.yaml's privileged_hooks: root, a fixed environment */
		struct strv fixed = STRV_INIT;

		privenv_build(&fixed, env.v);
		strv_release(&env);
		env = fixed;
	}
	run_init(&r);
	r.argv = argv.v;
	r.envp = env.v;
	r.dir = p->build_dir;
	r.out = p->o->out;
	r.deadline = p->deadline;
	/* The server's own hooks get the app's config, so they run as the
	 * app's user too (with a per-app user; the shared 'user:' keeps
	 * them as the server). */
	if (!trusted || (trusted == 1 && p->per_app_user)) {
		r.uid = p->uid;
		r.gid = p->gid;
	}
	if (run_prog(&r, &status) < 0)
		goto out;
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		char why[64];

		error_set("%s hook '%s' %s", step, label,
			  spawn_describe_status(status, why, sizeof(why)));
		goto out;
	}
	ret = 0;
out:
	strv_release(&env);
	strv_release(&argv);
	return ret;
}

/* ---- privilege drop for builds ---- */

/* By descriptors, never following a link: the tree is the pusher's. */
static int chown_tree(const char *path, long uid, long gid)
{
	int top = safefs_open_top(path), r;

	if (top < 0)
		return -1;
	r = safefs_chown_tree(top, ".", (uid_t)uid, (gid_t)gid);
	close(top);
	return r < 0 ? -1 : 0;
}

static int name_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* ROOT/hooks/STEP.d/ (server-wide, in name order), then the app's
 * .berth/hooks/STEP. */
static int run_hooks(struct pl *p, const char *step, int custom)
{
	struct strv names = STRV_INIT;
	char *dir = NULL, *path = NULL;
	DIR *d = NULL;
	struct dirent *de;
	size_t i, ran = 0;
	int ret = -1, shown = 0;

	if (!custom) {
		dir = xasprintf("%s/hooks/%s.d", p->root, step);
		d = opendir(dir);
		if (!d && errno != ENOENT) {
			error_setsys("cannot read '%s'", dir);
			goto out;
		}
		while (d && (de = readdir(d))) {
			const char *n = de->d_name;
			size_t len = strlen(n);

			/* Like run-parts: no dot files, no backups. */
			if (n[0] == '.' || n[len - 1] == '~' ||
			    (len > 7 && !strcmp(n + len - 7, ".sample")))
				continue;
			strv_push(&names, n);
		}
		if (names.n)
			qsort(names.v, names.n, sizeof(char *), name_cmp);
		/* the server's hooks, read-only, while they run */
		if (names.n && isolate_build_show(dir, SANDBOX_SHOW_READONLY |
						  SANDBOX_SHOW_EXEC) < 0)
			goto out;
		shown = names.n > 0;
		for (i = 0; i < names.n; i++) {
			FREE_AND_NULL(path);
			path = xasprintf("%s/%s", dir, names.v[i]);
			if (!is_exec_file(path))
				continue;
			if (run_hook(p, path, names.v[i], step,
				     privenv_hook_listed(p->o->cfg ?
							 p->o->cfg->privileged_hooks :
							 NULL, step, names.v[i]) ?
				     2 : 1) < 0)
				goto out;
			ran++;
		}
		if (shown)
			isolate_build_unshow(dir);
		shown = 0;
		/* What the server's hooks made must stay the build user's. */
		if (ran && p->uid >= 0 &&
		    chown_tree(p->build_dir, p->uid, p->gid) < 0)
			goto out;
	}
	FREE_AND_NULL(path);
	path = xasprintf("%s/.berth/hooks/%s", p->build_dir, step);
	if (is_exec_file(path)) {
		char *label = xasprintf(".berth/hooks/%s", step);
		int r = run_hook(p, path, label, custom ? "custom" : step, 0);

		free(label);
		if (r < 0)
			goto out;
	} else if (custom) {
		if (path_exists(path))
			error_set("hook '.berth/hooks/%s' is not executable",
				  step);
		else
			error_set("no hook '.berth/hooks/%s' in the app", step);
		goto out;
	}
	ret = 0;
out:
	if (shown)
		isolate_build_unshow(dir);
	if (d)
		closedir(d);
	free(dir);
	free(path);
	strv_release(&names);
	return ret;
}

static int step_buildpack(struct pl *p)
{
	struct pipeline_build b;
	struct strv env = STRV_INIT, set = STRV_INIT;
	const char *force, *url;
	char *cache = NULL, *appdir;
	int ret;

	pipeline_build_init(&b);
	/* The config vars win over the app's files: the operator can always
	 * override what the pushed code asks for.  Then app.yaml, then
	 * .buildpacks (Dokku, Heroku's multi-buildpack), then app.json. */
	force = config_get(p, "BUILDPACK");
	url = config_get(p, "BUILDPACK_URL");
	/* buildpacks:set's list comes between the two (packset.h) */
	appdir = xasprintf("%s/apps/%s", p->root, p->o->app);
	if (packset_read(appdir, &set) < 0) {
		say(p->o->out, " !     %s", error_last());
		free(appdir);
		return -1;
	}
	free(appdir);
	if (force && *force) {
		b.force = force;
	} else if (url && *url) {
		b.force = url;
		b.packs_from = "config BUILDPACK_URL";
	} else if (set.n) {
		b.packs = set.v;
		b.packs_from = "buildpacks:set";
	} else if (p->have_manifest && p->m.buildpacks.n) {
		b.packs = p->m.buildpacks.v;
		b.packs_from = "app.yaml";
	} else if (p->have_manifest && p->m.buildpack) {
		b.force = p->m.buildpack;
	} else if (p->af.has_buildpacks_file && p->af.buildpacks.n) {
		b.packs = p->af.buildpacks.v;
		b.packs_from = ".buildpacks";
	} else if (p->af.json.buildpacks.n) {
		b.packs = p->af.json.buildpacks.v;
		b.packs_from = "app.json";
	}
	/* Buildpacks see config vars only in ENV_DIR (Heroku's API). */
	build_env(p, &env, "buildpack", 0);
	cache = xasprintf("%s/cache/%s.buildpacks", p->root, p->o->app);
	b.root = p->root;
	b.build_dir = p->build_dir;
	b.cache_dir = p->cache_dir;
	b.env_dir = p->env_dir;
	b.env = env.v;
	b.pack_cache = cache;
	b.app_has_processes = p->have_manifest && p->m.nprocs > 0;
	b.out = p->o->out;
	b.deadline = p->deadline;
	b.drop_uid = p->uid;
	b.drop_gid = p->gid;
	ret = pipeline_buildpack(&b);
	if (ret == 0) {
		free(p->detected);
		free(p->pack);
		p->detected = b.detected;
		p->pack = b.pack;
		b.detected = b.pack = NULL;
	}
	pipeline_build_release(&b);
	strv_release(&env);
	strv_release(&set);
	free(cache);
	return ret;
}

static int step_pack(struct pl *p)
{
	char *tmpl = NULL;
	struct stat st;
	int fd;

	tmpl = xasprintf("%s/tmp/bundle-%s-XXXXXX.tar.gz", p->root, p->o->app);
	fd = mkstemps(tmpl, 7);
	if (fd < 0) {
		error_setsys("cannot create '%s'", tmpl);
		free(tmpl);
		return -1;
	}
	close(fd);
	free(p->bundle);
	p->bundle = tmpl;
	if (bundle_pack(p->build_dir, p->bundle) < 0)
		return -1;
	if (stat(p->bundle, &st) < 0)
		return error_setsys("cannot stat '%s'", p->bundle);
	if (st.st_size >= 1024 * 1024)
		say(p->o->out, "-----> Packing bundle (%.1f MB)",
		    (double)st.st_size / (1024.0 * 1024.0));
	else
		say(p->o->out, "-----> Packing bundle (%.1f KB)",
		    (double)st.st_size / 1024.0);
	return 0;
}

struct deploy_state {
	struct pl *p;
};

static int deploy_line(void *arg, enum control_kind kind, const char *text)
{
	struct deploy_state *ds = arg;
	long n;

	/* "fields release=N": the number of the release being deployed */
	if (kind == CONTROL_FIELDS &&
	    (n = control_field_long(text, "release")) > 0)
		ds->p->deploying = n;
	if (kind != CONTROL_DATA)
		return 0;
	say(ds->p->o->out, "%s", text);
	return 0;
}

/* ---- when the engine goes away during the deploy ---- */

/* The answer to "releases APP": "ok live=N newest=M status=WORD". */
struct releases_state {
	long live;		/* the release live, 0 none; -1 no answer */
	long newest;
	char status[32];	/* of the newest: "interrupted", ... */
};

static int releases_line(void *arg, enum control_kind kind, const char *text)
{
	struct releases_state *rs = arg;

	if (kind != CONTROL_OK)
		return 0;
	rs->live = control_field_long(text, "live");
	rs->newest = control_field_long(text, "newest");
	if (control_field(text, "status", rs->status, sizeof(rs->status)) < 0)
		rs->status[0] = '\0';
	return 0;
}

/*
 * The engine hung up in the middle of the deploy (it crashed, or was
 * stopped): whether the release went live is the engine's to say, not
 * ours to guess.  Ask it (a supervisor restarts it; a new engine restores
 * what was live) and tell the user; 0 if release p->deploying is live.
 */
static int ask_after_lost_engine(struct pl *p, const char *why)
{
	struct strv argv = STRV_INIT;
	struct releases_state rs;
	int64_t until = now_ms() + LOST_ENGINE_WAIT_MS;
	int r = -1, said = 0;

	strv_push(&argv, "releases");
	strv_push(&argv, p->o->app);
	say(p->o->out, " !     lost the engine during the deploy (%s)", why);
	while (now_ms() < until) {
		memset(&rs, 0, sizeof(rs));
		rs.live = -1;
		r = control_call(p->root, 2, argv.v, releases_line, &rs, NULL);
		if (r == 0 && rs.live >= 0)
			break;
		if (!said++)
			say(p->o->out, "-----> Waiting for the engine to say what became of release %ld",
			    p->deploying);
		usleep(500 * 1000);
	}
	strv_release(&argv);
	p->outcome_said = 1;
	if (r != 0 || rs.live < 0) {
		if (p->deploying)
			return error_set("no engine answers: whether release %ld of %s went live is unknown (see 'releases %s')",
					 p->deploying, p->o->app, p->o->app);
		return error_set("no engine answers: see 'releases %s'",
				 p->o->app);
	}
	if (p->deploying && rs.live == p->deploying) {
		say(p->o->out, "-----> The engine came back with release %ld of %s live",
		    p->deploying, p->o->app);
		p->release = p->deploying;
		return 0;
	}
	if (!p->deploying)
		return error_set("the engine stopped before the deploy began; %s",
				 rs.live ? "the release that ran still runs" :
				 "nothing runs");
	if (rs.newest != p->deploying || !rs.status[0])
		snprintf(rs.status, sizeof(rs.status), "gone");
	if (rs.live)
		return error_set("the engine stopped during the deploy: release %ld is %s, release %ld of %s is live",
				 p->deploying, rs.status, rs.live, p->o->app);
	return error_set("the engine stopped during the deploy: release %ld is %s, and no release of %s is live",
			 p->deploying, rs.status, p->o->app);
}

static int step_deploy(struct pl *p)
{
	struct strv argv = STRV_INIT;
	struct deploy_state ds = { p };
	struct control_result res;
	int r, ret = -1, copy_of;
	long n;

	strv_push(&argv, "deploy");
	strv_push(&argv, p->o->app);
	strv_push(&argv, p->bundle);
	strv_push(&argv, "--move");
	strv_push(&argv, "--source");
	strv_push(&argv, "push");
	strv_push(&argv, "--commit");
	strv_push(&argv, p->o->commit);
	if (p->o->pusher && *p->o->pusher) {
		strv_push(&argv, "--pusher");
		strv_push(&argv, p->o->pusher);
	}
	if (p->pack) {
		strv_push(&argv, "--buildpack");
		strv_push(&argv, p->pack);
	}
	/* The engine logs the deploy itself: no copy of these lines. */
	copy_of = log_copy_of;
	log_copy_of = -1;
	r = control_call_result(p->root, (int)argv.n, argv.v, deploy_line,
				&ds, &res);
	log_copy_of = copy_of;
	if (r < 0 && p->deploying) {
		/* Hung up mid-deploy: what runs now is the engine's answer. */
		char *why = xstrdup(error_last());

		r = ask_after_lost_engine(p, why);
		free(why);
		if (r < 0)
			goto out;
	} else if (r < 0) {
		goto out;
	} else if (r == 1) {
		error_set("%s", res.message ? res.message : "deploy failed");
		goto out;
	} else if ((n = control_field_long(res.fields, "release")) > 0) {
		/* the engine's "ok release=N": the release that went live */
		p->release = n;
	}
	p->deployed = 1;
	ret = 0;
out:
	control_result_release(&res);
	strv_release(&argv);
	return ret;
}

/* ---- webhook ---- */

static void json_str(struct buf *b, const char *s)
{
	buf_addstr(b, "\"");
	for (; s && *s; s++) {
		unsigned char c = (unsigned char)*s;

		if (c == '"' || c == '\\')
			buf_addf(b, "\\%c", c);
		else if (c < 0x20)
			buf_addf(b, "\\u%04x", c);
		else
			buf_add(b, s, 1);
	}
	buf_addstr(b, "\"");
}

static size_t discard_body(char *ptr, size_t size, size_t nmemb, void *ud)
{
	(void)ptr;
	(void)ud;
	return size * nmemb;
}

static void webhook_post(struct pl *p, const char *url, const char *status)
{
	struct buf body = BUF_INIT;
	struct curl_slist *hdr = NULL;
	CURL *c = NULL;
	CURLcode rc;
	long code = 0;

	buf_addstr(&body, "{\"app\":");
	json_str(&body, p->o->app);
	if (p->release > 0)
		buf_addf(&body, ",\"release\":%ld", p->release);
	else
		buf_addstr(&body, ",\"release\":null");
	buf_addstr(&body, ",\"commit\":");
	json_str(&body, p->o->commit);
	buf_addstr(&body, ",\"status\":");
	json_str(&body, status);
	buf_addf(&body, ",\"duration_ms\":%lld}",
		 (long long)(now_ms() - p->start));
	c = curl_easy_init();
	if (!c) {
		say(p->o->out, " !     warning: webhook: cannot start libcurl");
		goto out;
	}
	hdr = curl_slist_append(NULL, "Content-Type: application/json");
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdr);
	curl_easy_setopt(c, CURLOPT_POSTFIELDS, body.data);
	curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long)body.len);
	curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, WEBHOOK_TIMEOUT_MS);
	curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, 2000L);
	curl_easy_setopt(c, CURLOPT_USERAGENT, "berth-webhook");
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, discard_body);
	rc = curl_easy_perform(c);
	if (rc != CURLE_OK) {
		say(p->o->out, " !     warning: webhook '%s' failed: %s", url,
		    curl_easy_strerror(rc));
		goto out;
	}
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
	if (code < 200 || code > 299)
		say(p->o->out, " !     warning: webhook '%s' answered %ld", url,
		    code);
out:
	curl_slist_free_all(hdr);
	if (c)
		curl_easy_cleanup(c);
	buf_release(&body);
}

static void webhooks(struct pl *p, const char *status)
{
	const char *server = p->o->cfg ? p->o->cfg->webhook : NULL;
	const char *app = p->have_manifest ? p->m.webhook : NULL;

	if (server && *server)
		webhook_post(p, server, status);
	if (app && *app && !(server && !strcmp(server, app)))
		webhook_post(p, app, status);
}

static int resolve_run_user(struct pl *p)
{
	const char *user = p->o->cfg ? p->o->cfg->run_user : NULL;
	struct passwd pw, *res = NULL;
	char pwbuf[4096];
	struct appuser au;

	p->uid = p->gid = -1;
	if (geteuid() == 0) {
		/* As root every app builds as its own user (appuser.h). */
		if (isolate_build_user(p->root, p->o->app, &au) < 0)
			return -1;
		p->uid = (long)au.uid;
		p->gid = (long)au.gid;
		p->per_app_user = 1;
		return 0;
	}
	if (!user || !*user)
		return 0;
	if (getpwnam_r(user, &pw, pwbuf, sizeof(pwbuf), &res) != 0 || !res)
		return error_set("no user '%s' (config 'user')", user);
	p->uid = (long)pw.pw_uid;
	p->gid = (long)pw.pw_gid;
	return 0;
}

/*
 * The pushed tree, checked against the checkout limits and checked out
 * into the (empty) build folder.  As root this is the app's user's work,
 * in a child in the build's cgroup: the repository is written by
 * berth-ssh (gitsep.h), so root never opens it by path, and its objects,
 * alternates or refs reach nothing the app's user could not read itself.
 */
/* checkout_commit()'s child, as the app's user: the repository is
 * berth-ssh's, read through the group; the init is held so the settings
 * last. */
static int checkout_as_user(void *arg)
{
	struct pl *p = arg;

	if (git_libgit2_init() >= 0)
		gitsvc_lg2_repo_only();
	return treelimits_check_commit(p->o->repo, p->o->commit,
				       p->o->cfg) < 0 ||
	       pipeline_checkout(p->o->repo, p->o->commit,
				 p->build_dir) < 0 ? -1 : 0;
}

static int checkout_commit(struct pl *p)
{
	struct runner_call call = {
		.fn = checkout_as_user, .arg = p,
		.setup = isolate_build_child,
		.setup_msg = "cannot become the app's user for the checkout",
		.uid = p->uid, .gid = p->gid, .what = "checkout",
	};

	if (geteuid() != 0 || !p->per_app_user)
		return treelimits_check_commit(p->o->repo, p->o->commit,
					       p->o->cfg) < 0 ||
		       pipeline_checkout(p->o->repo, p->o->commit,
					 p->build_dir) < 0 ? -1 : 0;
	if (chown(p->build_dir, (uid_t)p->uid, (gid_t)p->gid) < 0)
		return error_setsys("cannot hand over the build folder");
	return runner_call_as(&call);
}

/* ---- the whole run ---- */

/*
 * What the pusher reads names no absolute path of the server: the build
 * folder's paths become the app's own (".berth/hooks/pre-build"), the
 * others are said relative to the state folder ("tmp/bundle-...").
 * Fresh string.
 */
static char *unpath(const struct pl *p, const char *msg)
{
	const char *from[] = { p->build_dir, p->env_dir, p->cache_dir,
			       p->work_dir, p->root };
	const char *to[] = { ".", "ENV_DIR", "CACHE_DIR", "build", "" };
	struct buf b = BUF_INIT;
	const char *m = msg;
	size_t i;

	while (*m) {
		for (i = 0; i < ARRAY_SIZE(from); i++) {
			size_t n = from[i] ? strlen(from[i]) : 0;

			if (!n || strncmp(m, from[i], n) ||
			    (m[n] != '/' && m[n] != '\0' && m[n] != '\'' &&
			     m[n] != ':' && m[n] != ' '))
				continue;
			m += n;
			if (!*to[i] || (!strcmp(to[i], ".") && *m == '/')) {
				if (*m == '/')
					m++;
			} else {
				buf_addstr(&b, to[i]);
			}
			break;
		}
		if (i == ARRAY_SIZE(from))
			buf_add(&b, m++, 1);
	}
	return buf_detach(&b);
}

/* The app's log gets a copy of what the user sees (out_write()); the
 * engine makes the app on a first push, so "apps" lists it and "logs"
 * shows its build whatever the build's fate.  No engine: no copy (the
 * deploy step will say why). */
static void build_log_open(struct pl *p)
{
	char *argv[] = { "build-log", (char *)(uintptr_t)p->o->app, NULL };
	struct buf req = BUF_INIT;
	int fd = control_connect(p->root);

	if (fd < 0)
		return;
	control_encode_request(&req, 2, argv);
	if (write_all(fd, req.data, req.len) < 0) {
		close(fd);
		fd = -1;
	}
	buf_release(&req);
	log_copy_fd = fd;
	log_copy_of = fd >= 0 ? p->o->out : -1;
}

/* The commit's submodules, as the build user (submodule.h). */
static int checkout_submodules(struct pl *p)
{
	struct submodule_opts so;
	char *tmp = xasprintf("%s/tmp", p->root);
	int ret;

	memset(&so, 0, sizeof(so));
	so.repo = p->o->repo;
	so.commit = p->o->commit;
	so.dir = p->build_dir;
	so.state_root = p->root;
	so.tmp = p->work_dir ? p->work_dir : tmp;
	so.uid = p->uid;
	so.gid = p->gid;
	so.child_setup = isolate_build_child;
	so.out = p->o->out;
	so.deadline = p->deadline;
	/* the app's own repository, read-only, for the fetch */
	if (isolate_build_show(p->o->repo, SANDBOX_SHOW_READONLY) < 0) {
		free(tmp);
		return -1;
	}
	isolate_build_fetching(1);
	ret = submodule_update(&so);
	isolate_build_fetching(0);
	isolate_build_unshow(p->o->repo);
	free(tmp);
	return ret;
}

static int read_app_yaml(struct pl *p)
{
	struct buf y = BUF_INIT;
	int top, r, ret = -1;

	/* root reads the pusher's tree: never through a link */
	top = safefs_open_top(p->build_dir);
	if (top < 0)
		return -1;
	r = safefs_read(&y, top, "app.yaml", APP_YAML_MAX);
	close(top);
	if (r == ERR_NOTFOUND) {
		ret = 0;
		goto out;
	}
	if (r < 0)
		goto out;
	if (manifest_parse_app_yaml(&p->m, y.data, y.len, "app.yaml") < 0)
		goto out;
	p->have_manifest = 1;
	ret = 0;
out:
	buf_release(&y);
	return ret;
}

static void say_line(void *arg, const char *line)
{
	const struct pl *p = arg;

	say(p->o->out, "%s", line);
}

/* app.json, .buildpacks, ENV, .env, Dockerfile, crons (appfiles.h) */
static int read_app_files(struct pl *p)
{
	return appfiles_read(&p->af, p->build_dir,
			     p->have_manifest ? &p->m : NULL, p->config.v,
			     say_line, p);
}

/*
 * One build of an app at a time: two would share (and spoil) its cache.
 * The lock is ROOT/cache/NAME.lock (app names have no '.', so no app's
 * cache is ever called that), held until the process exits.
 */
static int lock_builds(struct pl *p)
{
	char *path = xasprintf("%s/cache/%s.lock", p->root, p->o->app);
	char *dir = xasprintf("%s/cache", p->root);
	int said = 0, ret = -1;

	if (mkdir_p(dir, 0755) < 0)
		goto out;
	p->lock_fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (p->lock_fd < 0) {
		error_setsys("cannot open '%s'", path);
		goto out;
	}
	while (flock(p->lock_fd, LOCK_EX | LOCK_NB) < 0) {
		if (errno != EWOULDBLOCK && errno != EINTR) {
			error_setsys("cannot lock '%s'", path);
			goto out;
		}
		if (!said++)
			say(p->o->out, "-----> Waiting for another build of %s",
			    p->o->app);
		if (p->deadline && now_ms() >= p->deadline) {
			error_set("build timed out waiting for another build");
			goto out;
		}
		usleep(200 * 1000);
	}
	ret = 0;
out:
	free(path);
	free(dir);
	return ret;
}

int pipeline_tmp_app(const char *entry, char *app, size_t len)
{
	static const char *const prefix[] = { "build-", "env-", "bundle-",
					      "work-" };
	size_t n = strlen(entry), i, k;

	if (n > 7 && !strcmp(entry + n - 7, ".tar.gz"))
		n -= 7;
	for (i = 0; i < ARRAY_SIZE(prefix); i++) {
		k = strlen(prefix[i]);
		if (strncmp(entry, prefix[i], k) || n < k + 8 ||
		    entry[n - 7] != '-')
			continue;
		if (n - 7 - k >= len)
			return -1;
		memcpy(app, entry + k, n - 7 - k);
		app[n - 7 - k] = '\0';
		return app_name_valid(app) ? 0 : -1;
	}
	return -1;
}

int pipeline_lock_try(const char *root, const char *app)
{
	char *path = xasprintf("%s/cache/%s.lock", root, app);
	int fd = open(path, O_RDWR | O_CLOEXEC | O_NOFOLLOW);
	int ret = fd;

	if (fd < 0) {
		ret = errno == ENOENT ? ERR_NOTFOUND :
			error_setsys("cannot open '%s'", path);
	} else if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
		ret = errno == EWOULDBLOCK ? ERR_BUSY :
			error_setsys("cannot lock '%s'", path);
		close(fd);
	}
	free(path);
	return ret;
}

static int make_dirs(struct pl *p)
{
	char *tmp = xasprintf("%s/tmp", p->root);
	int ret = -1;

	/* Locked first: while the lock is held, a new engine leaves this
	 * build's files in tmp/ alone (pipeline_tmp_app()). */
	if (lock_builds(p) < 0 || mkdir_p(tmp, 0755) < 0)
		goto out;
	p->build_dir = xasprintf("%s/build-%s-XXXXXX", tmp, p->o->app);
	if (!mkdtemp(p->build_dir)) {
		error_setsys("cannot create '%s'", p->build_dir);
		FREE_AND_NULL(p->build_dir);
		goto out;
	}
	p->env_dir = xasprintf("%s/env-%s-XXXXXX", tmp, p->o->app);
	if (!mkdtemp(p->env_dir)) {
		error_setsys("cannot create '%s'", p->env_dir);
		FREE_AND_NULL(p->env_dir);
		goto out;
	}
	p->cache_dir = xasprintf("%s/cache/%s", p->root, p->o->app);
	if (p->o->clean_cache) {
		char *packs = xasprintf("%s/cache/%s.buildpacks", p->root,
					p->o->app);
		int r;

		say(p->o->out, "-----> Clearing the build cache");
		r = rm_rf(p->cache_dir) < 0 || rm_rf(packs) < 0 ? -1 : 0;
		free(packs);
		if (r < 0)
			goto out;
	}
	if (mkdir_p(p->cache_dir, 0755) < 0)
		goto out;
	ret = 0;
out:
	free(tmp);
	return ret;
}

/*
 * As root with a per-app user: the build's scratch, ROOT/tmp/work-APP-X
 * (the app user's, 0700; its app/ is the build's /app), and the view of
 * the file system every program of the build gets (isolate.h).
 */
static int build_view(struct pl *p)
{
	char *app = NULL;
	int ret = -1;

	if (!p->per_app_user || geteuid() != 0)
		return 0;
	p->work_dir = xasprintf("%s/tmp/work-%s-XXXXXX", p->root, p->o->app);
	if (!mkdtemp(p->work_dir)) {
		error_setsys("cannot create '%s'", p->work_dir);
		FREE_AND_NULL(p->work_dir);
		goto out;
	}
	app = xasprintf("%s/app", p->work_dir);
	if (mkdir(app, 0755) < 0 ||
	    chown(app, (uid_t)p->uid, (gid_t)p->gid) < 0 ||
	    chown(p->work_dir, (uid_t)p->uid, (gid_t)p->gid) < 0) {
		error_setsys("cannot make '%s'", app);
		goto out;
	}
	if (isolate_build_view(p->root, p->build_dir, p->cache_dir,
			       p->env_dir, p->work_dir, (uid_t)p->uid,
			       (gid_t)p->gid) < 0)
		goto out;
	ret = 0;
out:
	free(app);
	return ret;
}

static int run_steps(struct pl *p)
{
	size_t i;

	for (i = 0; i < p->nsteps; i++) {
		struct step *s = &p->steps[i];
		int r = 0;

		switch (s->kind) {
		case STEP_HOOKS:
			r = run_hooks(p, s->hook, 0);
			break;
		case STEP_CUSTOM:
			r = run_hooks(p, s->hook, 1);
			break;
		case STEP_BUILDPACK:
			r = step_buildpack(p);
			break;
		case STEP_PACK:
			r = step_pack(p);
			break;
		case STEP_DEPLOY:
			r = step_deploy(p);
			break;
		}
		if (r == 0)
			continue;
		if (p->deployed) {
			/* Live already: a late step cannot take it back. */
			say(p->o->out, " !     warning: step '%s' failed: %s",
			    s->name, error_last());
			continue;
		}
		if (s->kind == STEP_DEPLOY)
			return -1;
		{
			char *why = xstrdup(error_last());

			error_set("step '%s' failed: %s", s->name, why);
			free(why);
		}
		return -1;
	}
	return 0;
}

int pipeline_run(const struct pipeline_opts *o)
{
	struct cgroup_limits lim;
	struct pl p;
	char short_id[8];
	char *why = NULL;
	int ret = -1;

	memset(&p, 0, sizeof(p));
	p.o = o;
	p.release = -1;
	p.lock_fd = -1;
	p.start = now_ms();
	manifest_init(&p.m);
	/* A pusher who hangs up must not kill the build half-way. */
	signal(SIGPIPE, SIG_IGN);
	if (!o->cfg || !o->cfg->root)
		return error_set("pipeline: no state directory");
	p.root = o->cfg->root;
	if (!app_name_valid(o->app))
		return error_set("invalid app name '%s'", o->app ? o->app : "");
	if (!commit_valid(o->commit))
		return error_set("invalid commit id '%s'",
				 o->commit ? o->commit : "");
	if (o->skip_deploy) {
		say(o->out, "-----> Skipping build and deploy (push option "
		    "skip-deploy)");
		return 0;
	}
	appfiles_init(&p.af);
	if (o->cfg->build_timeout_ms > 0)
		p.deadline = p.start + o->cfg->build_timeout_ms;
	snprintf(short_id, sizeof(short_id), "%.7s", o->commit);
	build_log_open(&p);
	say(o->out, "-----> Building %s (commit %s)", o->app, short_id);
	if (resolve_run_user(&p) < 0 || make_dirs(&p) < 0)
		goto out;
	/* berth.yaml's limits until app.yaml is read */
	isolate_limits(&lim, o->cfg, NULL);
	if (p.per_app_user && isolate_build_open(p.root, o->app, &lim) < 0)
		goto out;
	/* A tree bomb or a huge blob is refused before the checkout. */
	if (checkout_commit(&p) < 0)
		goto out;
	if (load_config(&p) < 0)
		goto out;
	if (pipeline_write_env_dir(p.env_dir, p.config.v) < 0)
		goto out;
	if (p.uid >= 0 && (chown_tree(p.build_dir, p.uid, p.gid) < 0 ||
			   chown_tree(p.cache_dir, p.uid, p.gid) < 0 ||
			   chmod(p.cache_dir, 0700) < 0 ||
			   chown_tree(p.env_dir, p.uid, p.gid) < 0))
		goto out;
	if (build_view(&p) < 0 || checkout_submodules(&p) < 0)
		goto out;
	if (read_app_yaml(&p) < 0 || read_app_files(&p) < 0 ||
	    steps_resolve(&p) < 0)
		goto out;
	/* the build gets the limits its processes will have */
	isolate_limits(&lim, o->cfg, &p.m);
	if (isolate_build_set_limits(&lim) < 0)
		goto out;
	if (run_steps(&p) < 0)
		goto out;
	ret = 0;
out:
	if (ret < 0) {
		char limit[256];

		if (isolate_build_limit_hit(limit, sizeof(limit)))
			why = xasprintf("%s: %s", limit, error_last());
		else
			why = xstrdup(error_last());
		{
			char *shown = unpath(&p, why);

			free(why);
			why = shown;
		}
		say(o->out, " !     %s", why);
		if (!p.deployed && !p.outcome_said)
			say(o->out, " !     push rejected: the running release "
			    "is unchanged");
		webhooks(&p, "failed");
	} else {
		webhooks(&p, "deployed");
	}
	/* what the build left running (a daemon it started) dies here */
	isolate_build_close();
	if (p.build_dir && rm_rf(p.build_dir) < 0)
		log_warnx("%s: %s", __func__, error_last());
	if (p.env_dir && rm_rf(p.env_dir) < 0)
		log_warnx("%s: %s", __func__, error_last());
	if (p.work_dir && rm_rf(p.work_dir) < 0)
		log_warnx("%s: %s", __func__, error_last());
	if (p.bundle)
		unlink(p.bundle);	/* gone already when the engine moved it */
	if (p.lock_fd >= 0)
		close(p.lock_fd);
	if (log_copy_fd >= 0)
		close(log_copy_fd);
	log_copy_fd = log_copy_of = -1;
	free(p.build_dir);
	free(p.env_dir);
	free(p.work_dir);
	free(p.cache_dir);
	free(p.bundle);
	free(p.detected);
	free(p.pack);
	steps_free(&p);
	strv_release(&p.config);
	manifest_release(&p.m);
	appfiles_release(&p.af);
	if (why) {
		error_set("%s", why);
		free(why);
	}
	return ret;
}
