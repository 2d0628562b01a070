/* isolate: see isolate.h. */
#include "isolate.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <linux/sock_diag.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"
#include "listener.h"
#include "log.h"
#include "loop.h"
#include "manifest.h"
#include "runner.h"
#include "safefs.h"
#include "spawn.h"
#include "util.h"
#include "banned.h"

#define DEFAULT_ROOT "/var/lib/berth"
#define KILL_TIMEOUT_MS 3000
#define DYING_FIRST_MS 2	/* the first look after a kill, then doubled */
#define DYING_MAX_MS 50
#define USER_JOB_TIMEOUT_MS 150000	/* userdel and groupdel, 60 s each */

struct isolate_group {
	struct isolate_group *next;
	pid_t pid;
	struct cgroup cg;
	char app[64];
	int64_t deadline;	/* dying: removed by then, or given up */
};

enum job_kind {
	JOB_REMOVE,		/* isolate_remove_app(): userdel, groupdel */
	JOB_RENAME,		/* isolate_rename_app(): usermod */
	JOB_MAKE,		/* isolate_user_ready(): useradd, folders given */
};

/* An app's user being made, renamed or removed in a child.  Spawns of
 * the app's programs wait for it (isolate_user_ready()). */
struct isolate_job {
	struct isolate_job *next;
	struct isolate *iso;
	enum job_kind kind;
	char app[64];
	char to[64];		/* a rename's new name */
	char tree[PATH_MAX];	/* JOB_MAKE: a release folder to give, or "" */
	struct runner r;
	struct buf err;
	int started;		/* 0: waits for the app's dying groups */
	isolate_done_fn done;
	void *arg;
	struct isolate_wait *waiters;	/* spawns that go on after it */
};

/* FNV-1a, for a parent name per state folder. */
static uint32_t hash32(const char *s)
{
	uint32_t h = 2166136261u;

	for (; *s; s++) {
		h ^= (unsigned char)*s;
		h *= 16777619u;
	}
	return h;
}

/*
 * nginx's workers (berth-www) must pass every folder down to the state
 * folder to reach the static copies, router.sock and the dashboard's
 * socket: one that only its owner enters (a state folder under /root)
 * breaks them, so say which, once, at start.
 */
static void www_reach_check(const struct isolate *iso, const char *root)
{
	char *path = xstrdup(root), *slash;
	struct stat st;

	for (;;) {
		if (stat(path[0] ? path : "/", &st) == 0 && S_ISDIR(st.st_mode) &&
		    !(st.st_mode & S_IXOTH) &&
		    !(st.st_uid == iso->www.uid && (st.st_mode & S_IXUSR)) &&
		    !(st.st_gid == iso->www.gid && (st.st_mode & S_IXGRP))) {
			log_warnx("nginx's workers (%s) cannot enter '%s' (mode %04o): static sites, the dashboard and router logs fail until every folder down to '%s' is searchable by others (chmod o+x)",
				  iso->www.name, path[0] ? path : "/",
				  (unsigned)(st.st_mode & 07777), root);
			break;
		}
		slash = strrchr(path, '/');
		if (!slash || !path[0])
			break;
		*slash = '\0';
	}
	free(path);
}

/* "APP.build-PID" of a build whose session still runs (isolate_build_*):
 * an engine that starts again leaves it to the build. */
static int build_running(const char *name)
{
	const char *b = strstr(name, ".build-");
	long pid = b ? parse_long(b + 7, INT32_MAX) : -1;

	return pid > 1 && (kill((pid_t)pid, 0) == 0 || errno == EPERM);
}

/* What a crashed engine of this state folder left: kill it, remove it. */
static void clear_leftovers(struct isolate *iso)
{
	const struct cgroup_hier *h = &iso->cg.hier[0];
	DIR *d;
	struct dirent *de;
	struct strv names = STRV_INIT;
	size_t i;
	int fd;

	if (!iso->cg.n_hier || h->dir_fd < 0)
		return;
	fd = dup(h->dir_fd);
	if (fd < 0 || !(d = fdopendir(fd))) {
		if (fd >= 0)
			close(fd);
		return;
	}
	while ((de = readdir(d)))
		if (de->d_type == DT_DIR && cgroup_name_valid(de->d_name) &&
		    strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
			strv_push(&names, de->d_name);
	closedir(d);
	for (i = 0; i < names.n; i++) {
		struct cgroup cg;

		if (build_running(names.v[i]))
			continue;
		if (cgroup_open(&cg, &iso->cg, names.v[i], 0) < 0)
			continue;
		if (cgroup_kill(&cg, KILL_TIMEOUT_MS) < 0 ||
		    cgroup_remove(&cg) < 0) {
			log_warnx("cgroup %s left by an earlier run: %s",
				  names.v[i], error_last());
			cgroup_close(&cg);
		}
	}
	strv_release(&names);
}

static void write_cgroup_list(struct isolate *iso)
{
	struct buf b = BUF_INIT;
	char *path;
	size_t i;

	for (i = 0; i < iso->cg.n_hier; i++)
		buf_addf(&b, "%s\n", iso->cg.hier[i].dir);
	path = xasprintf("%s/run/cgroups", iso->root);
	if (write_file_atomic(path, b.data ? b.data : "", b.len, 0644) < 0)
		log_warnx("%s", error_last());
	free(path);
	buf_release(&b);
}

int isolate_init(struct isolate *iso, const char *root, struct loop *l)
{
	char parent[32], *users;
	int r;

	memset(iso, 0, sizeof(*iso));
	iso->loop = l;
	iso->root = xstrdup(root);
	iso->pg_run = xasprintf("%s/postgres/run", root);
	if (geteuid() != 0) {
		log_warnx("not running as root: apps are not isolated (they run "
			  "as this user, without their own users, limits or "
			  "/app; see docs/security.md)");
		return 0;
	}
	users = xasprintf("%s/users", root);
	r = appuser_init(&iso->users, users);
	free(users);
	if (r < 0)
		return -1;
	/* Another engine (another state folder) may be making it now. */
	if (appuser_ensure_www(&iso->users, &iso->www) < 0) {
		char why[256];

		snprintf(why, sizeof(why), "%s", error_last());
		if (appuser_ensure_www(&iso->users, &iso->www) < 0) {
			appuser_release(&iso->users);
			return error_set("no user for nginx's workers: %s", why);
		}
	}
	/* SSH sessions drop to it before they read their client (session.h) */
	if (appuser_ensure_ssh(&iso->users, &iso->ssh) < 0) {
		char why[256];

		snprintf(why, sizeof(why), "%s", error_last());
		if (appuser_ensure_ssh(&iso->users, &iso->ssh) < 0) {
			appuser_release(&iso->users);
			return error_set("no user for SSH sessions: %s", why);
		}
	}
	www_reach_check(iso, root);
	if (!strcmp(root, DEFAULT_ROOT))
		snprintf(parent, sizeof(parent), "berth");
	else
		snprintf(parent, sizeof(parent), "berth-%08x", hash32(root));
	if (cgroup_sys_init(&iso->cg, parent, 0) < 0) {
		appuser_release(&iso->users);
		return error_set("cgroups: %s", error_last());
	}
	if (iso->cg.layout == CGROUP_NONE)
		log_warnx("no usable cgroups: apps run without memory, CPU and "
			  "process limits");
	else
		log_info("isolation: a user per app, %s, /app",
			 cgroup_layout_name(iso->cg.layout));
	clear_leftovers(iso);
	write_cgroup_list(iso);
	/* Builds run as app users outside a sandbox: other apps' repositories
	 * and logs are not theirs to read. */
	{
		static const char *const closed[] = { "apps", "logs" };
		static const mode_t modes[] = { 0711, 0700 };
		size_t i;

		for (i = 0; i < ARRAY_SIZE(closed); i++) {
			char *p = xasprintf("%s/%s", root, closed[i]);

			if (chmod(p, modes[i]) < 0 && errno != ENOENT)
				log_warn("chmod %s", p);
			free(p);
		}
	}
	iso->on = 1;
	return 0;
}

void isolate_release(struct isolate *iso)
{
	while (iso->groups)
		isolate_end(iso, iso->groups->pid);
	isolate_finish_now(iso);
	if (iso->on) {
		cgroup_sys_release(&iso->cg);
		appuser_release(&iso->users);
	}
	free(iso->root);
	free(iso->pg_run);
	memset(iso, 0, sizeof(*iso));
}

/*
 * The app's user, made if missing.  Another process (a build, the
 * unpacker) may be making it at the same moment: when making fails, a
 * user that is there now and is berth's for this app is the answer.
 */
static int ensure_user(const struct appuser_sys *sys, const char *app,
		       struct appuser *u)
{
	char why[256];

	if (appuser_ensure(sys, app, u) == 0)
		return 0;
	snprintf(why, sizeof(why), "%s", error_last());
	if (appuser_lookup(sys, app, u) == 0)
		return 0;
	return error_set("no user for app '%s': %s", app, why);
}

/* Between fork and exec: the group, then the sandbox (which drops root). */
static const char *child_setup(void *arg)
{
	struct isolate_spawn *is = arg;
	const char *failed;

	if (is->have_cg && cgroup_enter(&is->cg) < 0)
		return "joining the app's cgroup";
	failed = sandbox_enter(&is->sb);
	if (failed)
		return failed;
	/* A change of credentials clears the parent-death signal. */
	if (is->die_with_parent) {
		if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0)
			return "parent-death signal";
		if (getppid() == 1)
			return "the engine is gone";
	}
	return NULL;
}

int isolate_spawn_prepare(struct isolate *iso, struct isolate_spawn *is,
			  const char *app, const char *release,
			  const struct cgroup_limits *lim, struct spawn *s)
{
	struct appuser u;
	char name[CGROUP_NAME_MAX + 1];

	memset(is, 0, sizeof(*is));
	is->iso = iso;
	if (!iso || !iso->on)
		return 0;
	snprintf(is->app, sizeof(is->app), "%s", app);
	/* the engine made sure first (isolate_user_ready()): only a look */
	if (iso->loop ? appuser_lookup(&iso->users, app, &u) < 0 :
	    ensure_user(&iso->users, app, &u) < 0)
		return error_set("no user for app '%s': %s", app,
				 error_last());
	is->sb.release = release;
	is->sb.hide[is->sb.n_hide++] = iso->root;
	/* the embedded PostgreSQL's socket (DATABASE_URL's host=); its
	 * roles need their passwords (scram-sha-256) */
	is->sb.show[is->sb.n_show++] = iso->pg_run;
	is->sb.uid = u.uid;
	is->sb.gid = u.gid;
	is->sb.flags = SANDBOX_PRIVATE_TMP | SANDBOX_HIDE_PIDS;
	if (sandbox_prepare(&is->sb) < 0)
		return -1;
	if (iso->cg.layout != CGROUP_NONE) {
		snprintf(name, sizeof(name), "%s.%lu", app, ++iso->next_id);
		if (cgroup_open(&is->cg, &iso->cg, name, 1) < 0)
			return error_set("cgroup for '%s': %s", app,
					 error_last());
		is->have_cg = 1;
		int r = lim ? cgroup_set_limits(&is->cg, lim) : 0;

		if (r < 0) {
			if (r != ERR_NOTFOUND) {
				isolate_abort(is);
				return error_set("limits for '%s': %s", app,
						 error_last());
			}
			log_warnx("%s: %s", app, error_last());
		}
	}
	if (s->argv) {
		size_t i, rl = strlen(release);

		for (i = 0; s->argv[i]; i++) {
			const char *v = s->argv[i];

			if (!strncmp(v, release, rl) &&
			    (v[rl] == '\0' || v[rl] == '/'))
				strv_pushf(&is->argv, "%s%s", SANDBOX_APP_PATH,
					   v + rl);
			else
				strv_push(&is->argv, v);
		}
		s->argv = is->argv.v;
	}
	if (s->envp) {
		size_t i, rl = strlen(release);

		for (i = 0; s->envp[i]; i++) {
			const char *kv = s->envp[i], *eq = strchr(kv, '=');

			if (kv == s->listen_pid_var) {
				/* the child writes its pid into it: a copy
				 * with room for that (listener.h) */
				strv_pushf(&is->env, "%-*s",
					   LISTENER_PID_VAR_LEN - 1, kv);
				s->listen_pid_var = is->env.v[is->env.n - 1];
			} else if (eq && !strncmp(eq + 1, release, rl) &&
			    (eq[1 + rl] == '\0' || eq[1 + rl] == '/'))
				strv_pushf(&is->env, "%.*s=%s%s",
					   (int)(eq - kv), kv,
					   SANDBOX_APP_PATH, eq + 1 + rl);
			else
				strv_push(&is->env, kv);
		}
		s->envp = is->env.v;
	}
	is->die_with_parent = (s->flags & SPAWN_DIE_WITH_PARENT) != 0;
	s->flags &= ~(unsigned)SPAWN_DROP_PRIV;
	s->dir = NULL;		/* the sandbox goes to /app */
	s->child_setup = child_setup;
	s->child_arg = is;
	return 0;
}

void isolate_started(struct isolate_spawn *is, pid_t pid)
{
	struct isolate_group *g;

	strv_release(&is->env);
	strv_release(&is->argv);
	if (!is->have_cg)
		return;
	g = xcalloc(1, sizeof(*g));
	g->pid = pid;
	g->cg = is->cg;
	snprintf(g->app, sizeof(g->app), "%s", is->app);
	g->next = is->iso->groups;
	is->iso->groups = g;
	is->have_cg = 0;
}

/* ---- groups that die: killed at once, removed from a timer ---- */

static void dying_poll(struct loop *l, void *arg);

static int app_dying(const struct isolate *iso, const char *app)
{
	const struct isolate_group *g;

	for (g = iso->dying; g; g = g->next)
		if (!strcmp(g->app, app))
			return 1;
	return 0;
}

static void jobs_kick(struct isolate *iso);

/* Kill once more and try to remove: 1 when the group is gone (or given
 * up, with a warning: removing failed, or the deadline passed), 0 while
 * it still empties. */
static int dying_step(struct isolate_group *g, int64_t now)
{
	char name[CGROUP_NAME_MAX + 1];
	int r;

	memcpy(name, g->cg.name, sizeof(name));
	r = cgroup_kill(&g->cg, 0);
	if (r == 0) {
		r = cgroup_remove(&g->cg);
		if (r == 0)
			return 1;
		if (!g->cg.sys) {
			/* closed: its folders would not go */
			log_warnx("cgroup %s: %s", name, error_last());
			return 1;
		}
	}
	if (r == ERR_BUSY && now < g->deadline)
		return 0;
	log_warnx("cgroup %s: %s", name, error_last());
	cgroup_close(&g->cg);
	return 1;
}

/*
 * The group is the engine's no more: kill what is in it and remove it.
 * A group that is empty at once (the usual case: cgroup.kill takes
 * effect before this returns, and a zombie is no longer a member) goes
 * now; one whose processes take longer to die (a task in
 * uninterruptible sleep) is looked at again from a timer, at most
 * KILL_TIMEOUT_MS, instead of the loop waiting for it.
 */
static void group_retire(struct isolate *iso, struct isolate_group *g)
{
	g->deadline = now_ms() + KILL_TIMEOUT_MS;
	if (dying_step(g, now_ms())) {
		free(g);
		return;
	}
	g->next = iso->dying;
	iso->dying = g;
	if (!iso->dying_timer && iso->loop) {
		iso->dying_wait = DYING_FIRST_MS;
		iso->dying_timer = loop_add_timer(iso->loop, iso->dying_wait,
						  dying_poll, iso);
	}
	if (!iso->loop) {
		/* no loop (a test): as before, wait here */
		while (iso->dying) {
			struct isolate_group *d = iso->dying;

			iso->dying = d->next;
			if (cgroup_kill(&d->cg, KILL_TIMEOUT_MS) < 0 ||
			    cgroup_remove(&d->cg) < 0) {
				log_warnx("cgroup %s: %s", d->cg.name,
					  error_last());
				cgroup_close(&d->cg);
			}
			free(d);
		}
	}
}

static void dying_poll(struct loop *l, void *arg)
{
	struct isolate *iso = arg;
	struct isolate_group **gp = &iso->dying, *g;
	int64_t now = now_ms();

	iso->dying_timer = 0;
	while ((g = *gp)) {
		if (dying_step(g, now)) {
			*gp = g->next;
			free(g);
		} else {
			gp = &g->next;
		}
	}
	if (iso->dying) {
		if (iso->dying_wait < DYING_MAX_MS)
			iso->dying_wait *= 2;
		iso->dying_timer = loop_add_timer(l, iso->dying_wait,
						  dying_poll, iso);
	}
	jobs_kick(iso);
}

/* At exit: what still dies is waited for here. */
static void dying_finish_now(struct isolate *iso)
{
	struct isolate_group *g;

	if (iso->dying_timer)
		loop_del_timer(iso->loop, iso->dying_timer);
	iso->dying_timer = 0;
	while ((g = iso->dying)) {
		iso->dying = g->next;
		if (cgroup_kill(&g->cg, KILL_TIMEOUT_MS) < 0 ||
		    cgroup_remove(&g->cg) < 0) {
			log_warnx("cgroup %s: %s", g->cg.name, error_last());
			cgroup_close(&g->cg);
		}
		free(g);
	}
}

void isolate_abort(struct isolate_spawn *is)
{
	struct isolate_group *g;

	strv_release(&is->env);
	strv_release(&is->argv);
	if (!is->have_cg)
		return;
	g = xcalloc(1, sizeof(*g));
	g->cg = is->cg;
	snprintf(g->app, sizeof(g->app), "%s", is->app);
	is->have_cg = 0;
	group_retire(is->iso, g);
}

static struct isolate_group **find_group(struct isolate *iso, pid_t pid)
{
	struct isolate_group **gp;

	for (gp = &iso->groups; *gp; gp = &(*gp)->next)
		if ((*gp)->pid == pid)
			return gp;
	return NULL;
}

uint64_t isolate_end(struct isolate *iso, pid_t pid)
{
	struct isolate_group **gp, *g;
	struct cgroup_usage u;
	uint64_t ooms = 0;

	if (!iso || pid <= 0 || !(gp = find_group(iso, pid)))
		return 0;
	g = *gp;
	*gp = g->next;
	/* the OOM kills were counted when they happened */
	if (cgroup_usage(&g->cg, &u) == 0 && (u.have & CGROUP_MEMORY))
		ooms = u.oom_kills;
	group_retire(iso, g);
	return ooms;
}

int isolate_usage(struct isolate *iso, pid_t pid, uint64_t *memory,
		  uint64_t *cpu_usec)
{
	struct isolate_group **gp = iso && pid > 0 ? find_group(iso, pid) : NULL;
	struct cgroup_usage u;
	uint64_t rss = 0, cpu = 0;

	*memory = *cpu_usec = 0;
	if (pid <= 0)
		return -1;
	if (gp && cgroup_usage(&(*gp)->cg, &u) == 0) {
		if (u.have & CGROUP_MEMORY)
			*memory = u.memory;
		if (u.have & CGROUP_CPUSTAT)
			*cpu_usec = u.cpu_usec;
		if ((u.have & (CGROUP_MEMORY | CGROUP_CPUSTAT)) ==
		    (CGROUP_MEMORY | CGROUP_CPUSTAT))
			return 0;
	}
	if (cgroup_pid_usage(pid, &rss, &cpu) < 0)
		return -1;
	if (!*memory)
		*memory = rss;
	if (!*cpu_usec)
		*cpu_usec = cpu;
	return 0;
}

int isolate_app_user(struct isolate *iso, const char *app, uid_t *uid,
		     gid_t *gid)
{
	struct appuser u;

	if (!iso || !iso->on)
		return ERR_NOTFOUND;
	if (ensure_user(&iso->users, app, &u) < 0)
		return -1;
	*uid = u.uid;
	*gid = u.gid;
	return 0;
}

int isolate_build_user(const char *root, const char *app, struct appuser *u)
{
	struct appuser_sys sys;
	char *dir = xasprintf("%s/users", root);
	int r = appuser_init(&sys, dir);

	free(dir);
	if (r < 0)
		return -1;
	r = ensure_user(&sys, app, u);
	appuser_release(&sys);
	if (r == 0 && u->isolated) {
		/* ROOT/apps/APP: only root and this app's user get in (the
		 * build fetches submodules through its repository). */
		dir = xasprintf("%s/apps/%s", root, app);
		if (chown(dir, 0, u->gid) < 0 || chmod(dir, 0710) < 0)
			r = error_setsys("cannot close the folder of app '%s'", app);
		free(dir);
	}
	return r < 0 ? -1 : 0;
}

int isolate_give_tree(const char *dir, uid_t uid, gid_t gid)
{
	int fd = safefs_open_top(dir), r;

	if (fd < 0)
		return -1;
	r = safefs_chown_tree(fd, ".", uid, gid);
	close(fd);
	return r < 0 ? -1 : 0;
}

/* ---- making, renaming or removing an app's user in a child ---- */

/* 1 if the folder 'dir' is not uid's (a user made again has a new
 * number, and the release it starts was given to the old one). */
static int tree_not_users(const char *dir, uid_t uid)
{
	struct stat st;

	return dir && *dir && stat(dir, &st) == 0 && st.st_uid != uid;
}

/* The app's user, made if missing, and the release folder 'tree' (if
 * any, and not the user's already) given to it. */
static int make_user(struct isolate *iso, const char *app, const char *tree)
{
	struct appuser u;

	if (ensure_user(&iso->users, app, &u) < 0)
		return -1;
	if (!tree_not_users(tree, u.uid))
		return 0;
	if (isolate_give_tree(tree, u.uid, u.gid) < 0 || chmod(tree, 0700) < 0)
		return error_set("cannot give '%s' to the user of app '%s': %s",
				 tree, app, error_last());
	return 0;
}

/* In the child: the tools, and the lock a build may hold meanwhile. */
static int job_child(void *arg, int out, int err)
{
	struct isolate_job *j = arg;
	const char *msg;
	int r;

	(void)out;
	switch (j->kind) {
	case JOB_RENAME:
		r = appuser_rename(&j->iso->users, j->app, j->to) < 0 ? -1 : 0;
		break;
	case JOB_MAKE:
		r = make_user(j->iso, j->app, j->tree);
		break;
	default:
		r = appuser_remove(&j->iso->users, j->app);
		break;
	}
	if (r == 0 || (r == ERR_NOTFOUND && j->kind == JOB_REMOVE))
		return 0;
	msg = error_last();
	if (err >= 0 && write_all(err, msg, strlen(msg)) < 0)
		return 2;
	return 1;
}

static void job_unlink(struct isolate_job *j)
{
	struct isolate_job **jp;

	for (jp = &j->iso->jobs; *jp; jp = &(*jp)->next)
		if (*jp == j) {
			*jp = j->next;
			break;
		}
}

/*
 * The job's end: its callback (apps:rename's takes the new name), then
 * the spawns that waited for it, then it is freed.  Out of the list
 * first, so a spawn that looks again starts afresh; a waiter may be
 * taken off (isolate_user_unwait()) by another one's callback.
 */
static void job_end(struct isolate_job *j, int result)
{
	struct isolate_wait *w;
	char why[RUNNER_CALL_REASON_MAX];

	job_unlink(j);
	snprintf(why, sizeof(why), "%s", result < 0 ? error_last() : "");
	if (j->done)
		j->done(j->arg, result);
	while ((w = j->waiters)) {
		j->waiters = w->next;
		w->next = NULL;
		w->job = NULL;
		/* only a user that could not be made fails them: after a
		 * rename or a removal they look again */
		if (j->kind == JOB_MAKE && result < 0) {
			error_set("%s", why);
			w->done(w->arg, -1);
		} else {
			w->done(w->arg, 0);
		}
	}
	buf_release(&j->err);
	free(j);
}

static const char *job_verb(const struct isolate_job *j)
{
	return j->kind == JOB_RENAME ? "renaming" :
		j->kind == JOB_MAKE ? "making" : "removing";
}

static void job_done(struct runner *r, int result, void *arg)
{
	struct isolate_job *j = arg;

	if (result == 0 && (!WIFEXITED(r->status) ||
			    WEXITSTATUS(r->status) != 0)) {
		char why[64];

		if (j->err.len)
			error_set("%.*s", (int)j->err.len, j->err.data);
		else
			error_set("%s the user of '%s': %s", job_verb(j),
				  j->app, spawn_describe_status(r->status, why,
								sizeof(why)));
		result = -1;
	} else if (result < 0) {
		error_set("%s the user of '%s': %s", job_verb(j), j->app,
			  error_last());
	}
	job_end(j, result);
}

static int job_start(struct isolate_job *j)
{
	runner_init(&j->r);
	j->r.child_main = job_child;
	j->r.child_arg = j;
	j->r.capture[RUNNER_ERR] = &j->err;
	j->r.capture_max = 1024;
	j->r.timeout_ms = USER_JOB_TIMEOUT_MS;
	if (runner_start(&j->r, j->iso->loop, job_done, j) < 0)
		return -1;
	j->started = 1;
	return 0;
}

/* Jobs that waited for their app's groups to die, whose groups are gone. */
static void jobs_kick(struct isolate *iso)
{
	struct isolate_job *j;

again:
	for (j = iso->jobs; j; j = j->next) {
		if (j->started || app_dying(iso, j->app))
			continue;
		if (job_start(j) < 0) {
			job_end(j, -1);
			goto again;	/* the list changed */
		}
	}
}

static struct isolate_job *job_new(struct isolate *iso, enum job_kind kind,
				   const char *app, isolate_done_fn done,
				   void *arg)
{
	struct isolate_job *j = xcalloc(1, sizeof(*j));

	j->iso = iso;
	j->kind = kind;
	snprintf(j->app, sizeof(j->app), "%s", app);
	j->done = done;
	j->arg = arg;
	return j;
}

static void job_add(struct isolate_job *j)
{
	j->next = j->iso->jobs;
	j->iso->jobs = j;
}

int isolate_remove_app(struct isolate *iso, const char *app,
		       isolate_done_fn done, void *arg)
{
	struct isolate_job *j;

	if (!iso || !iso->on)
		return 1;
	if (!iso->loop) {
		int r = appuser_remove(&iso->users, app);

		return r == 0 || r == ERR_NOTFOUND ? 1 : -1;
	}
	j = job_new(iso, JOB_REMOVE, app, done, arg);
	/* userdel refuses a user whose processes still die */
	if (!app_dying(iso, app) && job_start(j) < 0) {
		free(j);
		return -1;
	}
	job_add(j);
	return 0;
}

int isolate_rename_app(struct isolate *iso, const char *from, const char *to,
		       isolate_done_fn done, void *arg)
{
	struct isolate_job *j;

	if (!iso || !iso->on)
		return 1;
	if (!iso->loop)
		return appuser_rename(&iso->users, from, to) < 0 ? -1 : 1;
	if (strlen(from) >= sizeof(j->app) || strlen(to) >= sizeof(j->to))
		return error_set("invalid app name");
	j = job_new(iso, JOB_RENAME, from, done, arg);
	snprintf(j->to, sizeof(j->to), "%s", to);
	if (job_start(j) < 0) {
		free(j);
		return -1;
	}
	job_add(j);
	return 0;
}

/* The job that changes the user of the app named 'app' (under its old
 * name or its new one), if one does. */
static struct isolate_job *job_of(struct isolate *iso, const char *app)
{
	struct isolate_job *j;

	for (j = iso->jobs; j; j = j->next)
		if (!strcmp(j->app, app) ||
		    (j->kind == JOB_RENAME && !strcmp(j->to, app)))
			return j;
	return NULL;
}

static void job_wait(struct isolate_job *j, struct isolate_wait *w,
		     isolate_done_fn done, void *arg)
{
	struct isolate_wait **wp;

	w->done = done;
	w->arg = arg;
	w->job = j;
	w->next = NULL;
	for (wp = &j->waiters; *wp; wp = &(*wp)->next)
		;
	*wp = w;
}

int isolate_user_ready(struct isolate *iso, const char *app,
		       const char *release, struct isolate_wait *w,
		       isolate_done_fn done, void *arg)
{
	struct isolate_job *j;
	struct appuser u;

	if (!iso || !iso->on)
		return 1;
	isolate_user_unwait(iso, w);
	j = job_of(iso, app);
	if (j) {
		job_wait(j, w, done, arg);
		return 0;
	}
	if (appuser_lookup(&iso->users, app, &u) == 0 &&
	    !tree_not_users(release, u.uid))
		return 1;
	if (!iso->loop)
		return make_user(iso, app, release) < 0 ? -1 : 1;
	if (strlen(app) >= sizeof(j->app) ||
	    (release && strlen(release) >= sizeof(j->tree)))
		return error_set("invalid app name or release folder");
	/* missing (removed by hand, say), or another's by that name: the
	 * child makes it, or says why not */
	j = job_new(iso, JOB_MAKE, app, NULL, NULL);
	snprintf(j->tree, sizeof(j->tree), "%s", release ? release : "");
	if (job_start(j) < 0) {
		char why[RUNNER_CALL_REASON_MAX];

		snprintf(why, sizeof(why), "%s", error_last());
		free(j);
		return error_set("cannot make the user of app '%s': %s", app,
				 why);
	}
	job_add(j);
	job_wait(j, w, done, arg);
	return 0;
}

void isolate_user_unwait(struct isolate *iso, struct isolate_wait *w)
{
	struct isolate_wait **wp;

	(void)iso;
	if (!w || !w->job)
		return;
	for (wp = &w->job->waiters; *wp; wp = &(*wp)->next)
		if (*wp == w) {
			*wp = w->next;
			break;
		}
	w->job = NULL;
	w->next = NULL;
}

int isolate_user_waiting(const struct isolate_wait *w)
{
	return w && w->job != NULL;
}

void isolate_finish_now(struct isolate *iso)
{
	dying_finish_now(iso);
	while (iso->jobs) {
		struct isolate_job *j = iso->jobs;

		if (j->started) {
			runner_wait(&j->r);	/* calls job_done() */
		} else {
			int r = appuser_remove(&iso->users, j->app);

			job_end(j, r == 0 || r == ERR_NOTFOUND ? 0 : -1);
		}
	}
}

void isolate_limits(struct cgroup_limits *lim, const struct config *cfg,
		    const struct manifest *m)
{
	long cpu = 0;

	memset(lim, 0, sizeof(*lim));
	lim->memory = m && m->res_memory >= 0 ? (uint64_t)m->res_memory :
		(uint64_t)(cfg->res_memory > 0 ? cfg->res_memory : 0);
	if (cfg->res_cpu && cgroup_parse_cpu(cfg->res_cpu, &cpu) < 0)
		cpu = 0;
	lim->cpu_millis = m && m->res_cpu_millis >= 0 ? m->res_cpu_millis : cpu;
	lim->processes = m && m->res_processes >= 0 ? m->res_processes :
		cfg->res_processes;
}

/* Listeners on 'port' in a /proc/net/tcp text: those of neither 'uid'
 * nor root (counted, one of them in *other), and of 'uid' (in *own). */
static int port_scan(const char *text, int port, uid_t uid, uid_t *other,
		     int *own)
{
	const char *line = text;
	int n = 0;

	while (line && *line) {
		const char *nl = strchr(line, '\n');
		unsigned lport, st;
		unsigned long luid;
		char local[80];

		/* "sl local rem st tx:rx tr:when retr uid ..."; the header
		 * line does not scan */
		if (sscanf(line, " %*s %79s %*s %x %*s %*s %*s %lu", local,
			   &st, &luid) == 3 && st == 0x0A) {
			const char *colon = strrchr(local, ':');

			/* root's is the engine's own: a socket it bound and
			 * handed over (LISTEN_FDS); root could take any
			 * port anyway */
			if (colon && sscanf(colon + 1, "%x", &lport) == 1 &&
			    (int)lport == port) {
				if ((uid_t)luid == uid) {
					(*own)++;
				} else if (luid != 0) {
					*other = (uid_t)luid;
					n++;
				}
			}
		}
		line = nl ? nl + 1 : NULL;
	}
	return n;
}

int isolate_port_foreign(const char *text, int port, uid_t uid,
			 uid_t *other)
{
	int own = 0;

	return port_scan(text, port, uid, other, &own);
}

/* NLMSG_OK, whose mixed-sign comparison clang refuses (-Wsign-compare) */
static int nlmsg_fits(const struct nlmsghdr *h, int left)
{
	return left >= (int)sizeof(*h) && h->nlmsg_len >= sizeof(*h) &&
	       h->nlmsg_len <= (unsigned int)left;
}

/*
 * The listeners on 'port' of one address family, from the kernel's
 * socket diagnostics: only the table of listening sockets is walked, so
 * the cost follows the number of listeners, not of every connection on
 * the host (/proc/net/tcp lists those too, and formats each as text: on
 * a busy host that read took milliseconds per deploy, growing with the
 * apps).  As port_scan(); -1 if netlink cannot be used.
 */
static int listeners_scan(int family, int port, uid_t uid, uid_t *other,
			  int *own)
{
	struct {
		struct nlmsghdr nlh;
		struct inet_diag_req_v2 r;
	} req;
	union {
		char bytes[16384];
		struct nlmsghdr align;
	} in;
	int fd, n = 0, done = 0, ret = -1;

	fd = socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_SOCK_DIAG);
	if (fd < 0)
		return -1;
	memset(&req, 0, sizeof(req));
	req.nlh.nlmsg_len = sizeof(req);
	req.nlh.nlmsg_type = SOCK_DIAG_BY_FAMILY;
	req.nlh.nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
	req.r.sdiag_family = (unsigned char)family;
	req.r.sdiag_protocol = IPPROTO_TCP;
	req.r.idiag_states = 1U << 10;	/* TCP_LISTEN */
	if (send(fd, &req, sizeof(req), 0) != (ssize_t)sizeof(req))
		goto out;
	while (!done) {
		ssize_t k = recv(fd, in.bytes, sizeof(in.bytes), 0);
		struct nlmsghdr *h = &in.align;
		int left;	/* NLMSG_NEXT may take it below 0 */

		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0)
			goto out;
		left = (int)k;
		for (; nlmsg_fits(h, left); h = NLMSG_NEXT(h, left)) {
			const struct inet_diag_msg *m = NLMSG_DATA(h);

			if (h->nlmsg_type == NLMSG_DONE) {
				done = 1;
				break;
			}
			if (h->nlmsg_type == NLMSG_ERROR ||
			    h->nlmsg_len < NLMSG_LENGTH(sizeof(*m)))
				goto out;
			/* root's is the engine's own (isolate_port_foreign) */
			if (m->idiag_state != 10 ||
			    ntohs(m->id.idiag_sport) != port)
				continue;
			if ((uid_t)m->idiag_uid == uid) {
				(*own)++;
			} else if (m->idiag_uid != 0) {
				*other = (uid_t)m->idiag_uid;
				n++;
			}
		}
	}
	ret = n;
out:
	close(fd);
	return ret;
}

/* The listeners on 'port', v4 and v6: 0 with *own counted, ERR_INVALID
 * when another user holds one, -1 if the tables cannot be read. */
static int port_listeners(struct isolate *iso, const char *app, int port,
			  int *own)
{
	static const char *const tables[] = { "/proc/net/tcp",
					      "/proc/net/tcp6" };
	static const int families[] = { AF_INET, AF_INET6 };
	struct appuser u;
	struct buf b = BUF_INIT;
	uid_t other = 0;
	size_t i;
	int ret = 0, n = 0;

	*own = 0;
	if (appuser_lookup(&iso->users, app, &u) < 0)
		return -1;
	for (i = 0; i < ARRAY_SIZE(families); i++) {
		n = listeners_scan(families[i], port, u.uid, &other, own);
		if (n != 0)
			break;
	}
	if (n > 0) {
		error_set("port %d is held by a program of another user (uid %ld), not by %s",
			  port, (long)other, app);
		return ERR_INVALID;
	}
	if (n == 0)
		return 0;
	/* no netlink here: the text tables */
	*own = 0;
	for (i = 0; i < ARRAY_SIZE(tables) && !ret; i++) {
		buf_reset(&b);
		ret = read_file(&b, tables[i], 64L << 20);
		if (ret == ERR_NOTFOUND) {
			ret = 0;	/* no IPv6 */
			continue;
		}
		if (ret < 0)
			break;
		if (b.data && port_scan(b.data, port, u.uid, &other, own) > 0) {
			error_set("port %d is held by a program of another user (uid %ld), not by %s",
				  port, (long)other, app);
			ret = ERR_INVALID;
		}
	}
	buf_release(&b);
	return ret;
}

int isolate_port_check(struct isolate *iso, const char *app, int port)
{
	int own;

	if (!iso || !iso->on || port <= 0)
		return 0;
	return port_listeners(iso, app, port, &own);
}

int isolate_port_owned(struct isolate *iso, const char *app, int port)
{
	int own, r;

	if (!iso || !iso->on || port <= 0)
		return 1;
	r = port_listeners(iso, app, port, &own);
	if (r < 0)
		return r;
	return own > 0;
}

/* ---- builds ---- */

static struct {
	struct cgroup_sys sys;
	struct cgroup cg;
	struct cgroup_limits lim;
	uint64_t ooms, refused;	/* counts when it was made */
	int on;
} build = { .on = 0 };

int isolate_build_open(const char *root, const char *app,
		       const struct cgroup_limits *lim)
{
	char name[CGROUP_NAME_MAX + 1], *path;
	struct buf dirs = BUF_INIT;
	struct cgroup_usage u;
	int r, ret = -1;

	if (build.on || geteuid() != 0)
		return 0;
	path = xasprintf("%s/run/cgroups", root);
	r = read_file(&dirs, path, 64 * 1024);
	free(path);
	if (r == ERR_NOTFOUND) {
		error_clear();
		ret = 0;	/* no engine ran here as root */
		goto out;
	}
	if (r < 0 || cgroup_sys_join(&build.sys, dirs.data ? dirs.data : "") < 0)
		goto out;
	if (build.sys.layout == CGROUP_NONE) {
		ret = 0;
		goto out;
	}
	snprintf(name, sizeof(name), "%s.build-%ld", app, (long)getpid());
	r = cgroup_open(&build.cg, &build.sys, name, 1);
	if (r < 0) {
		error_set("cgroup for the build of '%s': %s", app, error_last());
		cgroup_sys_release(&build.sys);
		goto out;
	}
	build.lim = *lim;
	r = cgroup_set_limits(&build.cg, lim);
	if (r < 0 && r != ERR_NOTFOUND) {
		error_set("limits for the build of '%s': %s", app, error_last());
		cgroup_remove(&build.cg);
		cgroup_close(&build.cg);
		cgroup_sys_release(&build.sys);
		goto out;
	}
	if (cgroup_usage(&build.cg, &u) == 0) {
		build.ooms = u.oom_kills;
		build.refused = u.pids_refused;
	}
	build.on = 1;
	ret = 0;
out:
	buf_release(&dirs);
	return ret;
}

int isolate_build_set_limits(const struct cgroup_limits *lim)
{
	int r;

	if (!build.on)
		return 0;
	r = cgroup_set_limits(&build.cg, lim);
	if (r < 0 && r != ERR_NOTFOUND)
		return error_set("limits for the build: %s", error_last());
	build.lim = *lim;
	return 0;
}

/* The build's view (isolate.h); strings owned here. */
static struct {
	struct sandbox sb;
	char *paths[4];		/* release, hide, workdir */
	size_t n_paths;
	int on;
} view = { .on = 0 };

static const char *view_keep(const char *path)
{
	if (view.n_paths >= ARRAY_SIZE(view.paths))
		return NULL;
	view.paths[view.n_paths] = xstrdup(path);
	return view.paths[view.n_paths++];
}

static void view_forget(void)
{
	size_t i;

	for (i = 0; i < view.n_paths; i++)
		FREE_AND_NULL(view.paths[i]);
	for (i = 0; i < view.sb.n_show; i++)
		free((char *)(uintptr_t)view.sb.show[i]);
	memset(&view, 0, sizeof(view));
}

int isolate_build_show(const char *path, unsigned flags)
{
	if (!view.on)
		return 0;
	if (view.sb.n_show >= SANDBOX_SHOW_MAX)
		return error_set("too many folders shown to the build");
	view.sb.show_flags[view.sb.n_show] = flags;
	view.sb.show[view.sb.n_show++] = xstrdup(path);
	return 0;
}

void isolate_build_unshow(const char *path)
{
	size_t i = view.sb.n_show;

	if (!view.on)
		return;
	/* the last one of that path */
	while (i-- > 0) {
		if (strcmp(view.sb.show[i], path))
			continue;
		free((char *)(uintptr_t)view.sb.show[i]);
		memmove(&view.sb.show[i], &view.sb.show[i + 1],
			(view.sb.n_show - i - 1) * sizeof(view.sb.show[0]));
		memmove(&view.sb.show_flags[i], &view.sb.show_flags[i + 1],
			(view.sb.n_show - i - 1) *
			sizeof(view.sb.show_flags[0]));
		view.sb.n_show--;
		return;
	}
}

int isolate_build_view(const char *root, const char *build_dir,
		       const char *cache_dir, const char *env_dir,
		       const char *work, uid_t uid, gid_t gid)
{
	char *app = NULL, *pg = NULL;
	int ret = -1;

	if (geteuid() != 0)
		return 0;
	view_forget();
	view.on = 1;
	app = xasprintf("%s/app", work);
	pg = xasprintf("%s/postgres/run", root);
	view.sb.release = view_keep(app);
	view.sb.hide[view.sb.n_hide++] = view_keep(root);
	view.sb.uid = uid;
	view.sb.gid = gid;
	view.sb.workdir = view_keep(build_dir);
	view.sb.flags = SANDBOX_PRIVATE_TMP | SANDBOX_HIDE_PIDS;
	if (isolate_build_show(build_dir, SANDBOX_SHOW_EXEC) < 0 ||
	    isolate_build_show(cache_dir, SANDBOX_SHOW_EXEC) < 0 ||
	    isolate_build_show(env_dir, SANDBOX_SHOW_READONLY) < 0 ||
	    isolate_build_show(work, SANDBOX_SHOW_EXEC) < 0 ||
	    isolate_build_show(pg, 0) < 0)
		goto out;
	if (sandbox_prepare(&view.sb) < 0)
		goto out;
	ret = 0;
out:
	if (ret < 0)
		view_forget();
	free(app);
	free(pg);
	return ret;
}

void isolate_build_fetching(int on)
{
	if (!view.on)
		return;
	if (on)
		view.sb.flags &= ~(unsigned)SANDBOX_PRIVATE_TMP;
	else
		view.sb.flags |= SANDBOX_PRIVATE_TMP;
}

const char *isolate_build_enter(void)
{
	if (build.on && cgroup_enter(&build.cg) < 0)
		return "joining the build's cgroup";
	return view.on ? sandbox_enter_view(&view.sb) : NULL;
}

int isolate_build_child(void)
{
	return isolate_build_enter() ? -1 : 0;
}

static void mib(char *out, size_t len, uint64_t bytes)
{
	if (bytes % (1024 * 1024) == 0)
		snprintf(out, len, "%llu MiB",
			 (unsigned long long)(bytes >> 20));
	else
		snprintf(out, len, "%llu bytes", (unsigned long long)bytes);
}

int isolate_build_limit_hit(char *why, size_t len)
{
	struct cgroup_usage u;
	char size[64];

	if (!build.on || cgroup_usage(&build.cg, &u) < 0)
		return 0;
	if ((u.have & CGROUP_MEMORY) && u.oom_kills > build.ooms &&
	    build.lim.memory) {
		mib(size, sizeof(size), build.lim.memory);
		snprintf(why, len, "the build reached its memory limit (%s; "
			 "resources.memory in app.yaml)", size);
		return 1;
	}
	if ((u.have & CGROUP_PIDS) && u.pids_refused > build.refused &&
	    build.lim.processes) {
		snprintf(why, len, "the build reached its limit of %ld "
			 "processes (resources.processes in app.yaml)",
			 build.lim.processes);
		return 1;
	}
	return 0;
}

void isolate_build_close(void)
{
	view_forget();
	if (!build.on)
		return;
	if (cgroup_kill(&build.cg, KILL_TIMEOUT_MS) < 0)
		log_warnx("cgroup %s: %s", build.cg.name, error_last());
	if (cgroup_remove(&build.cg) < 0) {
		log_warnx("cgroup %s: %s", build.cg.name, error_last());
		cgroup_close(&build.cg);
	}
	cgroup_sys_release(&build.sys);
	build.on = 0;
}
