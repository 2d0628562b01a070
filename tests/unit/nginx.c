/*
 * nginx.c unit test, against the real nginx binary: render, check, start
 * in a temporary prefix, route, reload, refuse a bad change while the old
 * file keeps serving, swap slots and static roots without a reload,
 * supervise, stop, and clean up after a killed engine.
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

static ino_t inode_of(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0 ? st.st_ino : 0;
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
	/* one turn of the loop sends the reload */
	test_run_loop(lp, 0);
	printf("ready\n");
	fflush(stdout);
	loop_run(lp);
	nginx_free(ng);
	loop_free(lp);
	config_release(&cfg);
	return 0;
}

/*
 * System mode against a stand-in "system" nginx: its own nginx.conf that
 * includes a conf dir, reached through a wrapper that adds -p and -c (so
 * "nginx -t" and "nginx -s reload" mean that instance, not the host's).
 */
static void system_mode(struct loop *l, int slot_port)
{
	char sys[PATH_MAX + 8], confd[PATH_MAX + 16], wrap[PATH_MAX + 32];
	char path[PATH_MAX + 64], sysaddr[64], expect[80];
	char *bin = spawn_which("nginx");
	struct buf b = BUF_INIT;
	struct config cfg;
	struct nginx *ng = NULL;
	struct nginx_app app;
	char *hosts[] = { "www.sys.test" };
	int ports[1] = { slot_port };
	int port = test_free_port();
	pid_t master = -1;
	ino_t ino;

	if (!bin)
		bin = xstrdup("/usr/sbin/nginx");
	snprintf(sys, sizeof(sys), "%s/sys", root);
	snprintf(confd, sizeof(confd), "%s/conf.d", sys);
	snprintf(wrap, sizeof(wrap), "%s/nginx.sh", sys);
	snprintf(sysaddr, sizeof(sysaddr), "127.0.0.1:%d", port);
	snprintf(path, sizeof(path), "%s/logs", sys);
	mkdir_p(path, 0755);
	mkdir_p(confd, 0755);
	buf_addf(&b, "daemon off;\nworker_processes 1;\n"
		 "pid %s/logs/nginx.pid;\nerror_log %s/logs/error.log;\n"
		 "%s"
		 "events {}\nhttp {\n\taccess_log off;\n"
		 "\tclient_body_temp_path %s/tmp1;\n\tproxy_temp_path %s/tmp2;\n"
		 "\tfastcgi_temp_path %s/tmp3;\n\tuwsgi_temp_path %s/tmp4;\n"
		 "\tscgi_temp_path %s/tmp5;\n"
		 "\tserver { listen %s default_server; return 404; }\n"
		 "\tinclude %s/*.conf;\n}\n",
		 sys, sys, geteuid() == 0 ? "user root root;\n" : "",
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
	ok(master > 0 && test_wait_get(sysaddr, "x", 404, NULL, 5000) == 0,
	   "a stand-in system nginx runs");

	config_init(&cfg, root);
	config_set(&cfg, "nginx", "system");
	config_set(&cfg, "nginx_conf_dir", confd);
	config_set(&cfg, "nginx_bin", wrap);
	config_set(&cfg, "http_listen", sysaddr);
	ok(nginx_init(&ng, &cfg, l) == 0 && nginx_start(ng) == 0,
	   "system mode starts: %s", error_last());
	snprintf(path, sizeof(path), "%s/berth-maps.conf", confd);
	ok(file_has(path, "$berth_upstream"), "it writes its maps");

	memset(&app, 0, sizeof(app));
	app.name = "sys";
	app.hosts = hosts;
	app.nhosts = 1;
	app.ports = ports;
	app.nports = 1;
	snprintf(expect, sizeof(expect), "slot %d", slot_port);
	snprintf(path, sizeof(path), "%s/berth-sys.conf", confd);
	ok(nginx_app_set(ng, &app) == 0 && path_exists(path) &&
	   test_wait_get(sysaddr, "www.sys.test", 200, expect, 5000) == 0,
	   "an app is written, checked and reloaded into it: %s",
	   error_last());
	ino = inode_of(path);
	hosts[0] = "a.*.b";
	ok(nginx_app_set(ng, &app) < 0 &&
	   strstr(error_last(), "invalid server name or wildcard"),
	   "a bad change is refused: %s", error_last());
	ok(file_has(path, "www.sys.test") && !file_has(path, "a.*.b") &&
	   inode_of(path) != 0, "the old file is back (inode %lu -> %lu)",
	   (unsigned long)ino, (unsigned long)inode_of(path));
	hosts[0] = "www.sys.test";
	ok(test_wait_get(sysaddr, "www.sys.test", 200, expect, 5000) == 0,
	   "and still serves");
	ok(nginx_app_remove(ng, "sys") == 0 && !path_exists(path) &&
	   test_wait_get(sysaddr, "www.sys.test", 404, NULL, 5000) == 0,
	   "removal reloads it");
	nginx_free(ng);
	ok(kill(master, 0) == 0, "berth leaves a system nginx running");
	kill(master, SIGQUIT);
	waitpid(master, NULL, 0);
	config_release(&cfg);
	free(bin);
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
	ino_t ino;
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

	ok(nginx_init(&ng, &cfg, l) == 0, "init prepares %s/nginx: %s", root,
	   error_last());
	snprintf(conf, sizeof(conf), "%s/nginx/nginx.conf", root);
	ok(file_has(conf, "daemon off;") && file_has(conf, listen) &&
	   file_has(conf, "include"), "nginx.conf is generated");
	ok(nginx_start(ng) == 0, "nginx starts: %s", error_last());
	master = pid_file();
	ok(master > 0 && kill(master, 0) == 0, "master %d runs", (int)master);
	ok(test_get(addr, "/", "nothing.localhost", NULL, &r) == 0 &&
	   r.status == 404 && strstr(r.body, "no app for this host"),
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

		ok(r0 == 0, "app file written and loaded: %s", error_last());
		printf("# check, rename and reload took %lld ms\n",
		       (long long)(now_ms() - t0));
	}
	snprintf(conf, sizeof(conf), "%s/nginx/conf.d/demo.conf", root);
	snprintf(expect, sizeof(expect), "server 127.0.0.1:%d max_fails=0;",
		 port_b);
	ok(file_has(conf, expect) && file_has(conf, "upstream berth_demo") &&
	   file_has(conf, "proxy_next_upstream error timeout"),
	   "upstream has both slots");
	snprintf(expect, sizeof(expect), "slot %d", port_a);
	ok(test_wait_get(addr, "demo.localhost", 200, expect, 5000) == 0,
	   "NAME.DOMAIN reaches slot A through nginx");
	ok(test_wait_get(addr, "www.demo.test", 200, expect, 5000) == 0,
	   "an extra host reaches it too");
	snprintf(r.hdr_name, sizeof(r.hdr_name), "X-Seen-Host");
	ok(test_get(addr, "/", "demo.localhost", NULL, &r) == 0 &&
	   !strcmp(r.hdr_value, "demo.localhost"),
	   "Host is passed on (%s)", r.hdr_value);
	snprintf(r.hdr_name, sizeof(r.hdr_name), "X-Berth-Upstream");
	ok(test_get(addr, "/", "demo.localhost", NULL, &r) == 0 && !r.has_hdr,
	   "no X-Berth-Upstream without a probe");
	snprintf(expect, sizeof(expect), "127.0.0.1:%d", port_a);
	ok(test_get(addr, "/", "demo.localhost", "X-Berth-Probe: 1", &r) == 0 &&
	   r.has_hdr && strstr(r.hdr_value, expect),
	   "a probe learns the upstream (%s)", r.hdr_value);

	ino = inode_of(conf);
	ok(nginx_app_set(ng, &app) == 0 && inode_of(conf) == ino,
	   "an unchanged app is not rewritten");

	hosts[0] = "bad;host";
	ok(nginx_app_set(ng, &app) < 0 &&
	   !strcmp(error_last(), "invalid host 'bad;host'"),
	   "a host that could break the config is refused: %s", error_last());
	hosts[0] = "a.*.b";
	ok(nginx_app_set(ng, &app) < 0 &&
	   strstr(error_last(), "nginx: invalid server name or wildcard"),
	   "nginx -t refuses a bad wildcard: %s", error_last());
	snprintf(expect, sizeof(expect), "%s.new", conf);
	ok(inode_of(conf) == ino && !path_exists(expect) &&
	   file_has(conf, "www.demo.test"),
	   "the old file stays, the new one is gone");
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
	{
		int i, good = 0;

		snprintf(expect, sizeof(expect), "slot %d", port_b);
		for (i = 0; i < 20; i++)
			if (test_get(addr, "/", "demo.localhost", NULL, &r) == 0 &&
			    r.status == 200 && strstr(r.body, expect))
				good++;
		ok(good == 20 && pid_file() == master && inode_of(conf) == ino,
		   "after the swap every request reaches B, no reload (%d/20)",
		   good);
	}

	/* an app without web processes */
	memset(&app, 0, sizeof(app));
	app.name = "idle";
	{
		int i, good = 0, r0 = nginx_app_set(ng, &app);

		/* no waiting: the reload is complete when app_set returns */
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

	/* supervision: a killed master comes back */
	kill(master, SIGKILL);
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
	ok(group_alive(master) == 0, "the dead master's workers are gone");
	master = pid_file();
	nginx_stop(ng);
	ok(group_alive(master) == 0 && kill(master, 0) < 0 &&
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
		kill(engine, SIGKILL);
		waitpid(engine, NULL, 0);
		ok(stale > 0 && kill(stale, 0) == 0,
		   "its nginx (%d) outlives it", (int)stale);
	}
	ok(nginx_init(&ng, &cfg, l) == 0 && nginx_start(ng) == 0,
	   "a new engine starts nginx anyway: %s", error_last());
	ok(pid_file() != stale && group_alive(stale) == 0,
	   "the stale nginx was stopped");
	ok(test_wait_get(addr, "demo.localhost", 200, expect, 5000) == 0,
	   "and the new one serves");
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
