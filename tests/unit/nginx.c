/*
 * nginx.c unit test, against the real nginx binary: the configuration
 * with the router, start in a temporary prefix, apps described the old
 * way (slot pairs, nginx_app_set()) routed without a reload, refusals that
 * change nothing, slot and static swaps, log reopening, supervision (a
 * killed master routes from its first request), stop, system mode, and
 * clean up after a killed engine.  The router itself: tests/unit/router.c.
 *
 * "nginx serve ROOT HTTP_PORT APP PORT..." is a helper for
 * tests/t4001-nginx-slots.sh: it starts nginx with one app on the given
 * slots, prints "ready", and runs until TERM.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "tap.h"
#include "lib-http.h"

#include "config.h"
#include "log.h"
#include "nginx.h"
#include "router.h"
#include "banned.h"

static char root[PATH_MAX];
static char addr[64];

static pid_t pid_file(void)
{
	char path[PATH_MAX + 32];
	struct buf b = BUF_INIT;
	long v = -1;

	snprintf(path, sizeof(path), "%s/nginx/logs/nginx.pid", root);
	if (read_file(&b, path, 64) == 0) {
		while (b.len && (b.data[b.len - 1] == '\n'))
			b.data[--b.len] = '\0';
		v = parse_long(b.data, INT_MAX);
	}
	buf_release(&b);
	return (pid_t)v;
}

/* Live processes in process group pg. */
static int group_alive(pid_t pg)
{
	DIR *d = opendir("/proc");
	struct dirent *de;
	int n = 0;

	if (!d)
		return -1;
	while ((de = readdir(d))) {
		char path[300], data[512], state;
		int fd, pgrp;
		ssize_t k;
		char *p;

		if (parse_long(de->d_name, INT_MAX) <= 0)
			continue;
		snprintf(path, sizeof(path), "/proc/%s/stat", de->d_name);
		fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			continue;
		k = read(fd, data, sizeof(data) - 1);
		close(fd);
		if (k <= 0)
			continue;
		data[k] = '\0';
		p = strrchr(data, ')');
		if (p && sscanf(p + 1, " %c %*d %d", &state, &pgrp) == 2 &&
		    pgrp == pg && state != 'Z')
			n++;
	}
	closedir(d);
	return n;
}

static int file_has(const char *path, const char *needle)
{
	struct buf b = BUF_INIT;
	int r = read_file(&b, path, 1 << 20) == 0 && strstr(b.data, needle);

	buf_release(&b);
	return r;
}

/* n GETs right away; how many answered 200 with want in the body */
static int count_get(int n, const char *host, const char *want)
{
	struct test_resp r;
	int i, good = 0;

	memset(&r, 0, sizeof(r));
	for (i = 0; i < n; i++)
		if (test_get(addr, "/", host, NULL, &r) == 0 &&
		    r.status == 200 && strstr(r.body, want))
			good++;
	return good;
}

static void on_signal(struct loop *lp, int fd, unsigned ev, void *arg)
{
	struct signalfd_siginfo si;

	while (read(fd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
		if (si.ssi_signo == SIGCHLD)
			reaper_reap();
		else
			loop_stop(lp);
	}
}

static int serve(int argc, char **argv)
{
	struct config cfg;
	struct loop *lp = loop_new();
	struct nginx *ng = NULL;
	struct nginx_app app;
	int ports[64];
	size_t n = 0;
	sigset_t set;
	int sfd, i;
	char listen[64];

	if (argc < 3)
		fatalx("usage: nginx serve ROOT HTTP_PORT APP PORT...");
	log_init(0, "nginx-test");
	for (i = 3; i < argc && n < ARRAY_SIZE(ports); i++)
		ports[n++] = (int)parse_long(argv[i], 65535);
	config_init(&cfg, argv[0]);
	snprintf(listen, sizeof(listen), "127.0.0.1:%s", argv[1]);
	config_set(&cfg, "http_listen", listen);
	sigemptyset(&set);
	sigaddset(&set, SIGCHLD);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigprocmask(SIG_BLOCK, &set, NULL);
	sfd = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
	if (!lp || sfd < 0 || loop_add_fd(lp, sfd, LOOP_READ, on_signal,
					  NULL) < 0)
		fatal("setup");
	if (nginx_init(&ng, &cfg, lp) < 0 || nginx_start(ng) < 0)
		fatalx("%s", error_last());
	memset(&app, 0, sizeof(app));
	app.name = argv[2];
	app.ports = ports;
	app.nports = n;
	if (nginx_app_set(ng, &app) < 0)
		fatalx("%s", error_last());
	printf("ready\n");
	fflush(stdout);
	loop_run(lp);
	nginx_free(ng);
	loop_free(lp);
	config_release(&cfg);
	return 0;
}

/* The table file, as nginx loads it at start. */
static int routes_have(const char *needle)
{
	char path[PATH_MAX + 32];

	snprintf(path, sizeof(path), "%s/nginx/routes", root);
	return file_has(path, needle);
}

/*
 * System mode against a stand-in "system" nginx: its own nginx.conf that
 * loads the Lua module and includes a conf dir, reached through a wrapper
 * that adds -p and -c (so "nginx -t" and "nginx -s reload" mean that
 * instance, not the host's).  with_lua 0: a system nginx without the
 * module, which berth must refuse with nginx's words.
 */
static pid_t start_system_nginx(const char *sys, const char *sysaddr,
				int with_lua, char *wrap, size_t wraplen)
{
	char confd[PATH_MAX + 16], path[PATH_MAX + 64], mods[512] = "";
	char *bin = spawn_which("nginx");
	char *ndk = NULL, *lua = NULL;
	struct buf b = BUF_INIT;
	pid_t master = -1;
	const char *const dirs[] = { "/usr/lib/nginx/modules",
				     "/usr/share/nginx/modules" };
	size_t i;

	if (!bin)
		bin = xstrdup("/usr/sbin/nginx");
	for (i = 0; i < ARRAY_SIZE(dirs) && with_lua && !lua; i++) {
		snprintf(path, sizeof(path), "%s/ngx_http_lua_module.so",
			 dirs[i]);
		if (path_exists(path)) {
			ndk = xasprintf("%s/ndk_http_module.so", dirs[i]);
			lua = xstrdup(path);
		}
	}
	if (ndk)
		snprintf(mods, sizeof(mods), "load_module %s;\n"
			 "load_module %s;\n", ndk, lua);
	snprintf(confd, sizeof(confd), "%s/conf.d", sys);
	snprintf(wrap, wraplen, "%s/nginx.sh", sys);
	snprintf(path, sizeof(path), "%s/logs", sys);
	mkdir_p(path, 0755);
	mkdir_p(confd, 0755);
	buf_addf(&b, "%sdaemon off;\nworker_processes 1;\n"
		 "pid %s/logs/nginx.pid;\nerror_log %s/logs/error.log;\n"
		 "%s"
		 "events {}\nhttp {\n\taccess_log off;\n"
		 "\tclient_body_temp_path %s/tmp1;\n\tproxy_temp_path %s/tmp2;\n"
		 "\tfastcgi_temp_path %s/tmp3;\n\tuwsgi_temp_path %s/tmp4;\n"
		 "\tscgi_temp_path %s/tmp5;\n"
		 "\tserver { listen %s; server_name own.sys.test; "
		 "return 200 \"the admin's own site\\n\"; }\n"
		 "\tinclude %s/*.conf;\n}\n",
		 mods, sys, sys, geteuid() == 0 ? "user root root;\n" : "",
		 sys, sys, sys, sys, sys, sysaddr, confd);
	snprintf(path, sizeof(path), "%s/nginx.conf", sys);
	write_file_atomic(path, b.data, b.len, 0644);
	buf_reset(&b);
	buf_addf(&b, "#!/bin/sh\nexec %s -p %s -c %s/nginx.conf \"$@\"\n",
		 bin, sys, sys);
	write_file_atomic(wrap, b.data, b.len, 0755);
	buf_release(&b);
	{
		char *argv[] = { wrap, NULL };
		struct spawn sp;

		spawn_init(&sp);
		sp.argv = argv;
		sp.err = 2;
		sp.flags = SPAWN_NEW_PGRP;
		if (spawn_start(&sp) == 0)
			master = sp.pid;
	}
	free(bin);
	free(ndk);
	free(lua);
	return master;
}

static void stop_system_nginx(pid_t master)
{
	if (test_kill(master, SIGQUIT) < 0)
		return;
	waitpid(master, NULL, 0);
}

static void system_mode(struct loop *l, int slot_port)
{
	char sys[PATH_MAX + 8], confd[PATH_MAX + 16], wrap[PATH_MAX + 32];
	char path[PATH_MAX + 64], sysaddr[64], expect[80], sroot[PATH_MAX + 8];
	struct config cfg;
	struct nginx *ng = NULL;
	struct nginx_app app;
	char *hosts[] = { "www.sys.test" };
	int ports[1] = { slot_port };
	int port = test_free_port();
	pid_t master;
	struct test_resp r;

	memset(&r, 0, sizeof(r));
	snprintf(sys, sizeof(sys), "%s/sys", root);
	snprintf(sroot, sizeof(sroot), "%s/sysroot", root);
	snprintf(confd, sizeof(confd), "%s/conf.d", sys);
	snprintf(sysaddr, sizeof(sysaddr), "127.0.0.1:%d", port);

	/* a system nginx without the Lua module */
	master = start_system_nginx(sys, sysaddr, 0, wrap, sizeof(wrap));
	ok(master > 0 && test_wait_get(sysaddr, "own.sys.test", 200, "admin",
				       5000) == 0,
	   "a stand-in system nginx without the Lua module runs");
	config_init(&cfg, sroot);
	config_set(&cfg, "nginx", "system");
	config_set(&cfg, "nginx_conf_dir", confd);
	config_set(&cfg, "nginx_bin", wrap);
	config_set(&cfg, "http_listen", sysaddr);
	snprintf(path, sizeof(path), "%s/berth.conf", confd);
	ok(nginx_init(&ng, &cfg, l) < 0 &&
	   strstr(error_last(), "unknown directive \"lua_shared_dict\"") &&
	   !path_exists(path),
	   "it is refused in nginx's words, and berth.conf taken back: %s",
	   error_last());
	ok(test_wait_get(sysaddr, "own.sys.test", 200, "admin", 5000) == 0,
	   "the system nginx keeps serving");
	stop_system_nginx(master);

	/* with the module, and files of the old per-app design */
	master = start_system_nginx(sys, sysaddr, 1, wrap, sizeof(wrap));
	snprintf(path, sizeof(path), "%s/berth-old.conf", confd);
	write_file_atomic(path, "# old\n", 6, 0644);
	snprintf(path, sizeof(path), "%s/berth-maps.conf", confd);
	write_file_atomic(path, "# old\n", 6, 0644);
	ok(master > 0 && test_wait_get(sysaddr, "own.sys.test", 200, "admin",
				       5000) == 0,
	   "a stand-in system nginx with the Lua module runs");
	ok(nginx_init(&ng, &cfg, l) == 0 && nginx_start(ng) == 0,
	   "system mode starts: %s", error_last());
	if (!ng) {
		stop_system_nginx(master);
		config_release(&cfg);
		return;
	}
	snprintf(path, sizeof(path), "%s/berth.conf", confd);
	ok(file_has(path, "init_by_lua_block") &&
	   file_has(path, "balancer_by_lua_block"),
	   "it writes berth.conf with the router");
	snprintf(path, sizeof(path), "%s/berth-maps.conf", confd);
	ok(!path_exists(path) &&
	   (snprintf(path, sizeof(path), "%s/berth-old.conf", confd),
	    !path_exists(path)), "and removes the files of the old design");
	ok(nginx_reloads(ng) == 1 && router_in_sync(nginx_router(ng)),
	   "one reload for berth.conf, and the router answers");

	memset(&app, 0, sizeof(app));
	app.name = "sys";
	app.hosts = hosts;
	app.nhosts = 1;
	app.ports = ports;
	app.nports = 1;
	snprintf(expect, sizeof(expect), "slot %d", slot_port);
	ok(nginx_app_set(ng, &app) == 0 &&
	   test_wait_get(sysaddr, "www.sys.test", 200, expect, 5000) == 0,
	   "an app is routed through the system nginx: %s", error_last());
	ok(test_wait_get(sysaddr, "own.sys.test", 200, "admin", 5000) == 0,
	   "the admin's own sites keep their names");
	ok(nginx_app_remove(ng, "sys") == 0 &&
	   test_wait_get(sysaddr, "www.sys.test", 404, NULL, 5000) == 0,
	   "removal routes it nowhere");
	ok(nginx_reloads(ng) == 1, "without a reload");
	nginx_free(ng);
	ng = NULL;
	ok(nginx_init(&ng, &cfg, l) == 0 && nginx_reloads(ng) == 0,
	   "a berth that finds its berth.conf unchanged does not reload");
	nginx_free(ng);
	ok(test_kill(master, 0) == 0, "berth leaves a system nginx running");
	stop_system_nginx(master);
	config_release(&cfg);
}

int main(int argc, char **argv)
{
	struct config cfg;
	struct loop *l;
	struct nginx *ng = NULL;
	struct test_resp r;
	int port_a, port_b, http_port;
	pid_t a = -1, b = -1, master, stale;
	char conf[PATH_MAX + 64], listen[64], expect[PATH_MAX + 80];
	char *hosts[] = { "www.demo.test" };
	int ports[2];
	struct nginx_app app;
	uint64_t version;
	char *tmp;

	if (argc > 1 && !strcmp(argv[1], "serve"))
		return serve(argc - 2, argv + 2);
	log_init(0, "nginx-test");
	curl_global_init(CURL_GLOBAL_DEFAULT);
	tmp = getenv("TMPDIR");
	snprintf(root, sizeof(root), "%s/berth-unit-nginx.XXXXXX",
		 tmp && *tmp ? tmp : "/tmp");
	if (!mkdtemp(root))
		fatal("mkdtemp");
	chmod(root, 0755);
	l = loop_new();
	if (!l || test_watch_children(l) < 0)
		fatal("setup");
	test_loop = l;
	http_port = test_free_port();
	port_a = test_free_port();
	port_b = test_free_port();
	snprintf(addr, sizeof(addr), "127.0.0.1:%d", http_port);
	snprintf(listen, sizeof(listen), "127.0.0.1:%d", http_port);
	config_init(&cfg, root);
	config_set(&cfg, "http_listen", listen);
	memset(&r, 0, sizeof(r));

	/* a bad listen address is refused up front */
	free(cfg.http_listen);
	cfg.http_listen = xstrdup("127.0.0.1:80;x");
	ok(nginx_init(&ng, &cfg, l) < 0 &&
	   strstr(error_last(), "invalid http_listen"),
	   "bad http_listen is refused: %s", error_last());
	config_set(&cfg, "http_listen", listen);

	/* files of the per-app design are removed */
	snprintf(conf, sizeof(conf), "%s/nginx/conf.d", root);
	mkdir_p(conf, 0755);
	snprintf(conf, sizeof(conf), "%s/nginx/conf.d/old.conf", root);
	write_file_atomic(conf, "server { listen 1; }\n", 21, 0644);
	ok(nginx_init(&ng, &cfg, l) == 0, "init prepares %s/nginx: %s", root,
	   error_last());
	ok(!path_exists(conf), "the old per-app files are gone");
	snprintf(conf, sizeof(conf), "%s/nginx/nginx.conf", root);
	ok(file_has(conf, "daemon off;") && file_has(conf, listen) &&
	   file_has(conf, "load_module") && file_has(conf, "ngx_http_lua") &&
	   file_has(conf, "init_by_lua_block") && !file_has(conf, "include"),
	   "nginx.conf loads the Lua module and names no app");
	snprintf(expect, sizeof(expect), "%s/nginx/lua/router.lua", root);
	ok(file_has(expect, "function M.balance()"),
	   "the router's code is written out");
	ok(nginx_start(ng) == 0, "nginx starts: %s", error_last());
	master = pid_file();
	ok(master > 1 && test_kill(master, 0) == 0, "master %d runs",
	   (int)master);
	ok(test_get(addr, "/", "nothing.localhost", NULL, &r) == 0 &&
	   r.status == 404 && !strcmp(r.body, "no app for this host\n"),
	   "unknown host gets 404 (%ld)", r.status);

	a = test_slot_server(port_a, 200, 0);
	ok(a > 0 && test_wait_get((snprintf(expect, sizeof(expect),
		"127.0.0.1:%d", port_a), expect), NULL, 200, "slot", 10000) == 0,
	   "slot server A is up");
	ports[0] = port_a;
	ports[1] = port_b;
	memset(&app, 0, sizeof(app));
	app.name = "demo";
	app.hosts = hosts;
	app.nhosts = 1;
	app.ports = ports;
	app.nports = 2;
	{
		int64_t t0 = now_ms();
		int r0 = nginx_app_set(ng, &app);

		ok(r0 == 0, "a new app is set: %s", error_last());
		printf("# a new app took %lld ms\n",
		       (long long)(now_ms() - t0));
	}
	snprintf(expect, sizeof(expect), "route demo live 0 web.1:%d web.1:%d",
		 port_a, port_b);
	ok(routes_have(expect) && routes_have("host www.demo.test demo"),
	   "the table has both slots and the hosts");
	snprintf(expect, sizeof(expect), "slot %d", port_a);
	ok(count_get(20, "demo.localhost", expect) == 20,
	   "NAME.DOMAIN reaches slot A through nginx, at once");
	ok(test_wait_get(addr, "www.demo.test", 200, expect, 5000) == 0,
	   "an extra host reaches it too");
	snprintf(r.hdr_name, sizeof(r.hdr_name), "X-Seen-Host");
	ok(test_get(addr, "/", "demo.localhost", NULL, &r) == 0 &&
	   !strcmp(r.hdr_value, "demo.localhost"),
	   "Host is passed on (%s)", r.hdr_value);
	snprintf(r.hdr_name, sizeof(r.hdr_name), "X-Berth-Upstream");
	ok(test_get(addr, "/", "demo.localhost", "X-Berth-Probe: 1", &r) == 0 &&
	   r.status == 200 && !r.has_hdr,
	   "X-Berth-Probe from the public learns nothing");

	version = router_version(nginx_router(ng));
	ok(nginx_app_set(ng, &app) == 0 &&
	   router_version(nginx_router(ng)) == version,
	   "an unchanged app changes nothing");
	hosts[0] = "bad;host";
	ok(nginx_app_set(ng, &app) < 0 &&
	   !strcmp(error_last(), "invalid host 'bad;host'"),
	   "a host that could break the table is refused: %s", error_last());
	hosts[0] = "a.*.b";
	ok(nginx_app_set(ng, &app) < 0 &&
	   !strcmp(error_last(), "invalid host 'a.*.b'"),
	   "and so is a bad wildcard: %s", error_last());
	ok(router_version(nginx_router(ng)) == version &&
	   routes_have("host www.demo.test demo"),
	   "the table is as it was");
	snprintf(expect, sizeof(expect), "slot %d", port_a);
	ok(test_get(addr, "/", "www.demo.test", NULL, &r) == 0 &&
	   r.status == 200 && strstr(r.body, expect),
	   "and the app is still served");
	hosts[0] = "www.demo.test";

	/* the swap: B comes up, A goes away; nginx is not touched */
	b = test_slot_server(port_b, 200, 0);
	snprintf(expect, sizeof(expect), "127.0.0.1:%d", port_b);
	ok(b > 0 && test_wait_get(expect, NULL, 200, "slot", 10000) == 0,
	   "slot server B is up");
	test_stop_child(a);
	a = -1;
	snprintf(expect, sizeof(expect), "slot %d", port_b);
	ok(count_get(20, "demo.localhost", expect) == 20 &&
	   pid_file() == master,
	   "after the swap every request reaches B");

	/* an app without web processes */
	memset(&app, 0, sizeof(app));
	app.name = "idle";
	{
		int i, good = 0, r0 = nginx_app_set(ng, &app);

		/* no waiting: the table is changed when app_set returns */
		for (i = 0; i < 50; i++)
			if (test_get(addr, "/", "idle.localhost", NULL, &r) == 0 &&
			    r.status == 503 && strstr(r.body, "no web process"))
				good++;
		ok(r0 == 0 && good == 50,
		   "a new app answers at once, from every worker (%d/50)",
		   good);
	}

	/* a static site behind a symlink swapped by rename() */
	{
		char d1[PATH_MAX + 16], d2[PATH_MAX + 16], cur[PATH_MAX + 16],
		     nxt[PATH_MAX + 16], f[PATH_MAX + 32];
		int okay;

		snprintf(d1, sizeof(d1), "%s/site1", root);
		snprintf(d2, sizeof(d2), "%s/site2", root);
		snprintf(cur, sizeof(cur), "%s/site", root);
		snprintf(nxt, sizeof(nxt), "%s/site.next", root);
		mkdir(d1, 0755);
		mkdir(d2, 0755);
		snprintf(f, sizeof(f), "%s/index.html", d1);
		write_file_atomic(f, "one\n", 4, 0644);
		snprintf(f, sizeof(f), "%s/index.html", d2);
		write_file_atomic(f, "two\n", 4, 0644);
		snprintf(f, sizeof(f), "%s/leak", d2);
		okay = symlink("/etc/passwd", f) == 0;
		okay &= symlink(d1, cur) == 0;
		memset(&app, 0, sizeof(app));
		app.name = "site";
		app.static_root = cur;
		ok(okay && nginx_app_set(ng, &app) == 0 &&
		   test_wait_get(addr, "site.localhost", 200, "one", 5000) == 0,
		   "a static site is served");
		ok(symlink(d2, nxt) == 0 && rename(nxt, cur) == 0 &&
		   test_get(addr, "/", "site.localhost", NULL, &r) == 0 &&
		   r.status == 200 && !strcmp(r.body, "two\n"),
		   "a swapped symlink is seen at once (%s)", r.body);
		ok(test_get(addr, "/leak", "site.localhost", NULL, &r) == 0 &&
		   r.status != 200,
		   "a symlink out of the site is refused (%ld)", r.status);
	}

	ok(nginx_app_remove(ng, "idle") == 0 &&
	   test_wait_get(addr, "idle.localhost", 404, NULL, 5000) == 0,
	   "a removed app is gone");
	ok(nginx_app_remove(ng, "idle") == 0, "removing it twice is fine");
	ok(nginx_app_remove(ng, "../x") < 0, "a bad name is refused");
	ok(nginx_reloads(ng) == 0 && pid_file() == master,
	   "nginx was not reloaded for any of it");

	/* log rotation: nginx reopens its error log */
	{
		char log[PATH_MAX + 64], old[PATH_MAX + 64];
		int64_t deadline = now_ms() + 5000;

		snprintf(log, sizeof(log), "%s/nginx/logs/error.log", root);
		snprintf(old, sizeof(old), "%s/nginx/logs/error.log.1", root);
		ok(rename(log, old) == 0 && nginx_reopen_logs(ng) == 0,
		   "USR1 after a rename: %s", error_last());
		while (!path_exists(log) && now_ms() < deadline)
			test_run_loop(l, 20);
		ok(path_exists(log), "nginx opens a fresh error.log");
	}

	/* supervision: a killed master comes back, with the table */
	test_kill(master, SIGKILL);
	memset(&app, 0, sizeof(app));
	app.name = "late";
	app.ports = ports + 1;
	app.nports = 1;
	ok(nginx_app_set(ng, &app) == 0,
	   "an app set while nginx is down: %s", error_last());
	{
		int64_t deadline = now_ms() + 8000;

		while (now_ms() < deadline &&
		       (pid_file() <= 0 || pid_file() == master))
			test_run_loop(l, 100);
	}
	snprintf(expect, sizeof(expect), "slot %d", port_b);
	ok(pid_file() > 0 && pid_file() != master &&
	   test_wait_get(addr, "demo.localhost", 200, expect, 5000) == 0,
	   "a killed nginx is restarted and serves again");
	ok(test_wait_get(addr, "late.localhost", 200, expect, 5000) == 0,
	   "including what was set while it was down");
	ok(group_alive(master) == 0, "the dead master's workers are gone");
	master = pid_file();
	nginx_stop(ng);
	ok(group_alive(master) == 0 && test_kill(master, 0) < 0 &&
	   test_get(addr, "/", "demo.localhost", NULL, &r) < 0,
	   "stop leaves no nginx process and no listener");
	nginx_free(ng);
	ng = NULL;

	system_mode(l, port_b);

	/* an engine killed with -9 leaves its nginx behind */
	{
		int pfd[2];
		pid_t engine;
		char c = 0;

		if (pipe(pfd) < 0)
			fatal("pipe");
		engine = fork();
		if (engine == 0) {
			struct nginx *ng2 = NULL;

			close(pfd[0]);
			if (nginx_init(&ng2, &cfg, l) < 0 || nginx_start(ng2) < 0)
				_exit(1);
			if (write(pfd[1], "u", 1) != 1)
				_exit(1);
			for (;;)
				pause();
		}
		close(pfd[1]);
		ok(read(pfd[0], &c, 1) == 1 && c == 'u',
		   "a second engine started nginx");
		close(pfd[0]);
		stale = pid_file();
		test_kill(engine, SIGKILL);
		waitpid(engine, NULL, 0);
		ok(stale > 0 && test_kill(stale, 0) == 0,
		   "its nginx (%d) outlives it", (int)stale);
	}
	ok(nginx_init(&ng, &cfg, l) == 0 && nginx_start(ng) == 0,
	   "a new engine starts nginx anyway: %s", error_last());
	ok(pid_file() != stale && group_alive(stale) == 0,
	   "the stale nginx was stopped");
	ok(test_wait_get(addr, "demo.localhost", 503, "app is starting",
			 5000) == 0,
	   "the apps it finds in the table answer 'starting' until the "
	   "engine sets them");
	ok(router_drop_stale(nginx_router(ng)) == 0 &&
	   test_wait_get(addr, "demo.localhost", 404, NULL, 5000) == 0,
	   "those it does not set are dropped");
	nginx_free(ng);

	test_stop_child(a);
	test_stop_child(b);
	loop_free(l);
	config_release(&cfg);
	if (tap_failed)
		printf("# kept %s\n", root);
	else if (rm_rf(root) < 0)
		printf("# cannot clean up: %s\n", error_last());
	curl_global_cleanup();
	return tap_done();
}
