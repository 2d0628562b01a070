/* engine: see engine.h. */
#include "engine.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/inotify.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "app.h"
#include "appcommands.h"
#include "applife.h"
#include "certs.h"
#include "config.h"
#include "control.h"
#include "appstats.h"
#include "dashboard.h"
#include "deploy.h"
#include "gitsep.h"
#include "health.h"
#include "incoming.h"
#include "isolate.h"
#include "liveroute.h"
#include "log.h"
#include "loop.h"
#include "memtrim.h"
#include "nginx.h"
#include "pipeline.h"
#include "postgres.h"
#include "cluster.h"
#include "reaper.h"
#include "runs.h"
#include "serverlog.h"
#include "spawn.h"
#include "stateformat.h"
#include "sshd.h"
#include "status.h"
#include "banned.h"

#define SHUTDOWN_GRACE_MS 10000
#define CLIENT_FINISH_MS 2000	/* at exit, for queued answers to go out */

/* ---------- the callbacks the app's lower files call up through ---------- */

/* Its bundle left incoming/ (at once, or when its deploy ended): rm. */
static void remove_app(struct app *a)
{
	app_cmd_rm(a, 0, NULL);
}

static const struct incoming_handlers incoming_handlers = {
	.deploy = app_deploy,
	.remove = remove_app,
};

/* runs.c asks the deploy, the deploy asks applife.c and the command
 * handlers, incoming.c both (incoming_handlers): each through a
 * callback set here, never by name. */
static void set_app_hooks(void)
{
	static const struct runs_hooks runs = {
		.watching = deploy_watching,
		.proc_crashed = deploy_proc_crashed,
	};
	static const struct deploy_hooks deploy = {
		.remove_now = app_remove_now,
		.remove = remove_app,
	};

	runs_set_hooks(&runs);
	deploy_set_hooks(&deploy);
}

/* A control request: the command table runs it (commands.c). */
static void on_request(struct client *c, int argc, char **argv, void *arg)
{
	commands_dispatch(arg, c, argc, argv);
}

/* ---------- signals and shutdown ---------- */

static void on_shutdown_tick(struct loop *l, void *arg);

static int str_differs(const char *a, const char *b)
{
	return (a == NULL) != (b == NULL) || (a && strcmp(a, b));
}

/*
 * SIGHUP: read berth.yaml again.  A broken file changes nothing.  Timings
 * and limits apply from the next deploy on; what the engine bound or
 * started at launch (listen addresses, domain, ports, nginx, PostgreSQL,
 * user) needs a restart, and the log says so.  SSH sessions read the file
 * themselves, so their settings (deploy_branch, max_pack_size,
 * build_timeout, webhook) apply to the next connection anyway.
 */
static void reload_config(struct engine *e)
{
	struct config next, *c = e->cfg, *was = &e->file_cfg;

	config_init(&next, c->root);
	if (config_load(&next) < 0) {
		log_warnx("SIGHUP: berth.yaml not reloaded: %s", error_last());
		config_release(&next);
		return;
	}
	c->drain_ms = next.drain_ms;
	c->watch_ms = next.watch_ms;
	c->stop_timeout_ms = next.stop_timeout_ms;
	c->health_timeout_ms = next.health_timeout_ms;
	c->health_interval_ms = next.health_interval_ms;
	c->settle_ms = next.settle_ms;
	c->keep_releases = next.keep_releases;
	c->log_max_bytes = next.log_max_bytes;
	c->max_sessions = next.max_sessions;
	c->ssh_per_source_max_startups = next.ssh_per_source_max_startups;
	c->ssh_max_followers = next.ssh_max_followers;
	free(c->ssh_max_startups);
	c->ssh_max_startups = xstrdup(next.ssh_max_startups);
	/* Compared with the file as read before, so command-line options
	 * given to "serve" are not mistaken for changes. */
	if (str_differs(was->ssh_listen, next.ssh_listen) ||
	    str_differs(was->http_listen, next.http_listen) ||
	    str_differs(was->domain, next.domain) ||
	    was->port_min != next.port_min || was->port_max != next.port_max ||
	    str_differs(was->nginx, next.nginx) ||
	    str_differs(was->nginx_conf_dir, next.nginx_conf_dir) ||
	    str_differs(was->nginx_bin, next.nginx_bin) ||
	    str_differs(was->postgres, next.postgres) ||
	    str_differs(was->postgres_bindir, next.postgres_bindir) ||
	    str_differs(was->cluster, next.cluster) ||
	    str_differs(was->groups, next.groups) ||
	    str_differs(was->host_name, next.host_name) ||
	    str_differs(was->advertise_address, next.advertise_address) ||
	    str_differs(was->run_user, next.run_user))
		log_warnx("SIGHUP: listen addresses, domain, ports, nginx, postgres, cluster and user change only with a restart");
	log_info("SIGHUP: reloaded berth.yaml");
	config_release(was);
	*was = next;
}

static void on_signal(struct loop *l, int fd, unsigned events, void *arg)
{
	struct engine *e = arg;
	struct signalfd_siginfo si;

	while (read(fd, &si, sizeof(si)) == sizeof(si)) {
		switch (si.ssi_signo) {
		case SIGCHLD:
			reaper_reap();
			break;
		case SIGTERM:
		case SIGINT:
			if (e->stopping)
				break;
			log_info("stopping (signal %u)", si.ssi_signo);
			e->stopping = 1;
			apps_shutdown(e);
			loop_add_timer(l, 50, on_shutdown_tick, e);
			break;
		case SIGHUP:
			reload_config(e);
			break;
		}
	}
	reaper_reap();
}

static void on_shutdown_tick(struct loop *l, void *arg)
{
	struct engine *e = arg;
	static int64_t started;

	if (!started)
		started = now_ms();
	if (apps_any_running(e) && now_ms() - started < SHUTDOWN_GRACE_MS) {
		loop_add_timer(l, 50, on_shutdown_tick, e);
		return;
	}
	loop_stop(l);
}

static int signals_setup(struct engine *e)
{
	sigset_t set;

	signal(SIGPIPE, SIG_IGN);
	sigemptyset(&set);
	sigaddset(&set, SIGCHLD);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	if (sigprocmask(SIG_BLOCK, &set, NULL) < 0)
		return error_setsys("sigprocmask");
	e->sig_fd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
	if (e->sig_fd < 0)
		return error_setsys("signalfd");
	return loop_add_fd(e->loop, e->sig_fd, LOOP_READ, on_signal, e);
}

/* One engine per state directory: a second one would kill the first
 * one's apps as leftovers.  The lock lives as long as the process. */
static int lock_root(struct engine *e)
{
	char *path = engine_path(e, "engine.lock");
	int fd;

	if (mkdir_p(e->cfg->root, 0755) < 0) {
		free(path);
		return -1;
	}
	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0) {
		error_setsys("cannot open '%s'", path);
		free(path);
		return -1;
	}
	if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
		error_set("another engine is already running on '%s'",
			  e->cfg->root);
		close(fd);
		free(path);
		return -1;
	}
	free(path);
	return fd;
}

/* With "user:" in berth.yaml and the engine running as root, apps (and
 * their release commands) run as that user. */
static int resolve_run_user(struct engine *e)
{
	struct passwd pw, *res = NULL;
	char pwbuf[4096];

	if (!e->cfg->run_user || geteuid() != 0)
		return 0;
	if (getpwnam_r(e->cfg->run_user, &pw, pwbuf, sizeof(pwbuf), &res) != 0 ||
	    !res)
		return error_set("user '%s' (berth.yaml 'user') does not exist",
				 e->cfg->run_user);
	e->drop_priv = 1;
	e->run_uid = pw.pw_uid;
	e->run_gid = pw.pw_gid;
	return 0;
}

/*
 * Wipe ROOT/tmp, except the files of builds still running: the session
 * of a push outlives an engine that died, and its build goes on (its
 * deploy reaches the new engine).
 */
static void clean_tmp(struct engine *e)
{
	char *dir = engine_path(e, "tmp");
	DIR *dh = opendir(dir);
	struct dirent *de;
	char app[APP_NAME_MAX + 1];

	while (dh && (de = readdir(dh))) {
		char *p;
		int lock = -1;

		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		if (pipeline_tmp_app(de->d_name, app, sizeof(app)) == 0) {
			lock = pipeline_lock_try(e->cfg->root, app);
			if (lock == ERR_BUSY) {
				log_info("keeping 'tmp/%s': a build of '%s' is running",
					 de->d_name, app);
				continue;
			}
		}
		p = xasprintf("%s/%s", dir, de->d_name);
		if (rm_rf(p) < 0)
			log_warnx("%s", error_last());
		free(p);
		if (lock >= 0)
			close(lock);
	}
	if (dh)
		closedir(dh);
	free(dir);
}

static int make_dirs(struct engine *e)
{
	static const char *const dirs[] = {
		"apps", "cache", "logs", "run", "incoming", "keys", "host",
		"tmp", "nginx",
	};
	size_t i;
	char *p;

	if (mkdir_p(e->cfg->root, 0755) < 0)
		return -1;
	/* run/ holds only what this engine made: start empty.  So does
	 * tmp/, but for the builds still running (see below). */
	p = engine_path(e, "run");
	rm_rf(p);
	free(p);
	clean_tmp(e);
	for (i = 0; i < ARRAY_SIZE(dirs); i++) {
		p = engine_path(e, "%s", dirs[i]);
		if (mkdir_p(p, !strcmp(dirs[i], "keys") ||
			    !strcmp(dirs[i], "host") ? 0700 : 0755) < 0) {
			free(p);
			return -1;
		}
		free(p);
	}
	return 0;
}

int engine_serve(struct config *cfg)
{
	struct dashboard *dash = NULL;
	struct engine e;
	char *ctl_path = NULL;
	char exe[PATH_MAX];
	ssize_t n;
	int ret = 1;

	memset(&e, 0, sizeof(e));
	e.cfg = cfg;
	e.sig_fd = e.incoming_fd = -1;
	n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	exe[n > 0 ? n : 0] = '\0';
	e.self_exe = xstrdup(exe);
	ports_init(&e.ports, cfg->port_min, cfg->port_max);
	e.loop = loop_new();
	if (!e.loop)
		goto out;
	if (lock_root(&e) < 0 || stateformat_check(cfg->root, NULL) < 0 ||
	    resolve_run_user(&e) < 0)
		goto out;
	config_init(&e.file_cfg, cfg->root);
	if (config_load(&e.file_cfg) < 0)
		goto out;
	/* Orphans of app processes come to us, not to init: reaped at
	 * once, so a stopping process group empties as soon as it exits. */
	if (prctl(PR_SET_CHILD_SUBREAPER, 1) < 0)
		log_warn("cannot become a subreaper");
	apps_kill_leftovers(&e);
	if (make_dirs(&e) < 0 || signals_setup(&e) < 0)
		goto out;
	e.iso = xcalloc(1, sizeof(*e.iso));
	if (isolate_init(e.iso, cfg->root, e.loop) < 0)
		goto out;
	/* nginx's workers run as berth-www, not as root (nginx.h) */
	if (e.iso->on)
		snprintf(cfg->www_user, sizeof(cfg->www_user), "%s",
			 e.iso->www.name);
	/* git transfers run as berth-ssh: say now, not at the first push */
	if (e.iso->on && gitsep_check_reach(cfg->root) < 0)
		log_warnx("pushes and clones will fail: %s", error_last());
	if (serverlog_open(&e) < 0)
		log_warnx("%s", error_last());
	if (health_init(e.loop) < 0)
		goto out;
	if (nginx_init(&e.nginx, cfg, e.loop) < 0 ||
	    (e.nginx && dashboard_route(e.nginx, cfg) < 0) ||
	    certs_init(&e.certs, &e) < 0 ||
	    (e.nginx && nginx_start(e.nginx) < 0))
		goto out;
	if (postgres_init(&e.pg, cfg, e.loop) < 0) {
		/* Apps without a database still run; those with one fail
		 * their deploy with this reason. */
		log_warnx("postgres: %s", error_last());
		e.pg = NULL;
	}
	ctl_path = engine_path(&e, "%s", CONTROL_SOCKET);
	if (client_listen(&e.ctl, e.loop, ctl_path, on_request, &e) < 0)
		goto out;
	if (sshd_start(&e.sshd, cfg, e.loop, e.self_exe) < 0)
		goto out;
	appstats_start(&e);
	liveroute_log_open(&e);
	/* apps serve without it: a dashboard that cannot start is a warning */
	if (dashboard_start(&dash, cfg, e.loop, e.self_exe) < 0)
		log_warnx("dashboard: %s", error_last());
	set_app_hooks();
	apps_load(&e);
	if (cluster_start(&e.cluster, &e) < 0)
		goto out;
	certs_start(e.certs);
	incoming_start(&e, &incoming_handlers);
	log_info("serving %s (ssh %s, http %s, domain %s)", cfg->root,
		 cfg->ssh_listen, cfg->http_listen, cfg->domain);
	printf("berth: ready\n");
	fflush(stdout);
	memtrim_start(e.loop);
	/* from here on nothing waits for nginx: the loop talks to it */
	liveroute_async(&e, 1);
	if (loop_run(e.loop) < 0)
		log_warnx("%s", error_last());
	ret = 0;
out:
	/* stopping: what is queued goes to nginx now, then each change
	 * waits for its answer */
	liveroute_async(&e, 0);
	if (ret)
		log_warnx("%s", error_last());
	cluster_free(e.cluster);
	e.cluster = NULL;
	dashboard_stop(dash);
	status_disk_cancel_all(e.loop);
	app_cmd_logs_cancel_all();
	if (e.sshd)
		sshd_stop(e.sshd);
	certs_free(e.certs);
	e.certs = NULL;
	apps_shutdown(&e);
	liveroute_log_close(&e);
	if (e.nginx) {
		nginx_stop(e.nginx);
		nginx_free(e.nginx);
		e.nginx = NULL;	/* apps_free() must not reach its router */
	}
	if (e.pg) {
		postgres_shutdown(e.pg);
		postgres_free(e.pg);
	}
	apps_free(&e);
	appstats_stop(&e);
	serverlog_end_followers();
	client_server_close(e.ctl, CLIENT_FINISH_MS);
	e.ctl = NULL;
	if (e.iso) {
		isolate_release(e.iso);
		free(e.iso);
	}
	health_shutdown();
	if (e.file_cfg.root)
		config_release(&e.file_cfg);
	ports_release(&e.ports);
	free(e.self_exe);
	free(ctl_path);
	log_info("stopped");
	/* before the loop goes: followers of the log get their "ok" */
	serverlog_close();
	loop_free(e.loop);
	return ret;
}
