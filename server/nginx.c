/*
 * nginx: see nginx.h.  How berth drives nginx, and why, is told in
 * docs/nginx.md; comments here say only what the code alone does not.
 */
#include "nginx.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "log.h"
#include "loop.h"
#include "reaper.h"
#include "spawn.h"
#include "util.h"

#define NGINX_CHECK_TIMEOUT_MS 20000
#define NGINX_OUT_MAX 65536
#define NGINX_START_WAIT_MS 5000
#define NGINX_STOP_WAIT_MS 10000
#define NGINX_BACKOFF_MIN_MS 1000
#define NGINX_BACKOFF_MAX_MS 30000
/* An nginx that stayed up this long earns a fresh, short back-off. */
#define NGINX_STABLE_MS 10000
#define NGINX_READY_POLL_MS 50
#define NGINX_MAX_HOSTS 256
#define NGINX_MAX_PORTS 1024
#define NGINX_CONF_MAX (1024 * 1024)
#define NGINX_PATH_ENV \
	"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

struct nginx {
	struct loop *loop;
	int system;		/* 1: a system nginx we only configure */
	char *bin;		/* absolute path of the nginx binary */
	char *prefix;		/* own: ROOT/nginx */
	char *conf_dir;		/* where app files live */
	char *listen;		/* http_listen, for nginx's "listen" */
	char *addr;		/* http_listen as "host:port" for clients */
	char *domain;
	long stop_timeout_ms;
	int run_as_root;

	/* Own mode: the supervised master. */
	pid_t pid;		/* -1 when not running */
	int wanted;		/* nginx_start() called, nginx_stop() not */
	int ready;		/* the master wrote its pid file */
	int reload_pending;	/* a reload asked for before it was ready */
	int64_t started_ms;
	long backoff_ms;
	uint64_t restart_timer;
	uint64_t ready_timer;
	int64_t ready_deadline;
};

/* --- small helpers ------------------------------------------------ */

static char *path_join(const char *dir, const char *name)
{
	return xasprintf("%s/%s", dir, name);
}

static char *app_file(const struct nginx *ng, const char *name)
{
	if (ng->system)
		return xasprintf("%s/berth-%s.conf", ng->conf_dir, name);
	return xasprintf("%s/%s.conf", ng->conf_dir, name);
}

static int fsync_dir(const char *dir)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	if (fd < 0)
		return error_setsys("cannot open '%s'", dir);
	if (fsync(fd) < 0 && errno != EINVAL) {
		close(fd);
		return error_setsys("cannot sync '%s'", dir);
	}
	close(fd);
	return 0;
}

/* Write path (not atomically: callers write NAME.new files with it). */
static int write_new_file(const char *path, const char *data, size_t len)
{
	int fd, ret = -1;

	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		return error_setsys("cannot create '%s'", path);
	if (write_all(fd, data, len) < 0 || fsync(fd) < 0) {
		error_setsys("cannot write '%s'", path);
		goto out;
	}
	ret = 0;
out:
	if (close(fd) < 0 && ret == 0)
		ret = error_setsys("cannot write '%s'", path);
	return ret;
}

/*
 * Host names reach nginx's config: only what a server_name can hold
 * without quoting.  Wildcard placement ("a.*.b") is left to nginx -t,
 * which knows its own rules and says so clearly.
 */
static int host_valid(const char *h)
{
	size_t i, n = strlen(h);

	if (n == 0 || n > 253)
		return 0;
	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)h[i];

		if (!isalnum(c) && c != '.' && c != '-' && c != '*' &&
		    c != '_')
			return 0;
	}
	return 1;
}

/* A path we put inside double quotes in nginx's config. */
static int conf_path_valid(const char *p)
{
	size_t i, n = strlen(p);

	if (n == 0 || n >= PATH_MAX || p[0] != '/')
		return 0;
	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)p[i];

		if (c < 0x20 || c == 0x7f || c == '"' || c == '\'' ||
		    c == '\\' || c == '$' || c == ';' || c == '{' ||
		    c == '}')
			return 0;
	}
	return 1;
}

/*
 * http_listen is "HOST:PORT", "[V6]:PORT" or "PORT".  nginx takes all of
 * them as they are; clients need a host, so a bare port means loopback.
 */
static int parse_listen(const char *s, char **listen, char **addr)
{
	const char *colon;
	size_t i, n = strlen(s);
	long port;

	if (n == 0 || n > 300)
		return error_set("invalid http_listen '%s'", s);
	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];

		if (!isalnum(c) && c != '.' && c != ':' && c != '[' &&
		    c != ']' && c != '-')
			return error_set("invalid http_listen '%s'", s);
	}
	colon = strrchr(s, ':');
	port = parse_long(colon ? colon + 1 : s, 65535);
	if (port <= 0 || (colon && colon == s))
		return error_set("invalid http_listen '%s'", s);
	*listen = xstrdup(s);
	if (!colon)
		*addr = xasprintf("127.0.0.1:%ld", port);
	else if (!strncmp(s, "0.0.0.0:", 8) || !strncmp(s, "*:", 2))
		*addr = xasprintf("127.0.0.1:%ld", port);
	else if (!strncmp(s, "[::]:", 5))
		*addr = xasprintf("[::1]:%ld", port);
	else
		*addr = xstrdup(s);
	return 0;
}

/*
 * nginx -t says what is wrong in an "[emerg]" line, either as
 * "nginx: [emerg] MSG" or "2026/11/21 23:54:35 [emerg] 12#12: MSG".
 * Keep the first such line as "nginx: MSG".
 */
static int set_nginx_error(const char *out, const char *fallback)
{
	static const char *const levels[] = { "[emerg] ", "[alert] ",
		"[crit] ", "[error] " };
	const char *line = out;

	while (line && *line) {
		const char *end = strchr(line, '\n');
		size_t len = end ? (size_t)(end - line) : strlen(line);
		size_t k;

		for (k = 0; k < ARRAY_SIZE(levels); k++) {
			const char *p = memmem(line, len, levels[k],
					       strlen(levels[k]));
			const char *q;

			if (!p)
				continue;
			p += strlen(levels[k]);
			/* "12#12: " is the pid and thread id */
			q = p;
			while (q < line + len && isdigit((unsigned char)*q))
				q++;
			if (q > p && q < line + len && *q == '#') {
				q++;
				while (q < line + len &&
				       isdigit((unsigned char)*q))
					q++;
				if (q + 1 < line + len && q[0] == ':' &&
				    q[1] == ' ')
					p = q + 2;
			}
			len -= (size_t)(p - line);
			while (len && isspace((unsigned char)p[len - 1]))
				len--;
			return error_set("nginx: %.*s", (int)len, p);
		}
		line = end ? end + 1 : NULL;
	}
	return error_set("%s", fallback);
}

/* Run the nginx binary with args; its complaint becomes the error. */
static int run_nginx(const struct nginx *ng, const char *const *args,
		     const char *what)
{
	struct strv argv = STRV_INIT;
	struct buf out = BUF_INIT;
	char *envp[] = { NGINX_PATH_ENV, NULL };
	int ret = -1, st;
	size_t i;

	strv_push(&argv, ng->bin);
	for (i = 0; args[i]; i++)
		strv_push(&argv, args[i]);
	st = spawn_run(argv.v, envp, NULL, &out, NGINX_OUT_MAX,
		       NGINX_CHECK_TIMEOUT_MS);
	if (st < 0)
		goto out;
	if (st != 0) {
		set_nginx_error(out.data ? out.data : "", what);
		goto out;
	}
	ret = 0;
out:
	strv_release(&argv);
	buf_release(&out);
	return ret;
}

/* --- rendering ---------------------------------------------------- */

static const char mime_types[] =
	"\ttypes {\n"
	"\t\ttext/html html htm;\n"
	"\t\ttext/css css;\n"
	"\t\ttext/plain txt;\n"
	"\t\ttext/xml xml;\n"
	"\t\ttext/csv csv;\n"
	"\t\ttext/markdown md;\n"
	"\t\tapplication/javascript js mjs;\n"
	"\t\tapplication/json json map;\n"
	"\t\tapplication/manifest+json webmanifest;\n"
	"\t\tapplication/wasm wasm;\n"
	"\t\tapplication/pdf pdf;\n"
	"\t\tapplication/zip zip;\n"
	"\t\tapplication/gzip gz;\n"
	"\t\tapplication/rss+xml rss;\n"
	"\t\tapplication/atom+xml atom;\n"
	"\t\timage/png png;\n"
	"\t\timage/jpeg jpg jpeg;\n"
	"\t\timage/gif gif;\n"
	"\t\timage/webp webp;\n"
	"\t\timage/avif avif;\n"
	"\t\timage/svg+xml svg svgz;\n"
	"\t\timage/x-icon ico;\n"
	"\t\tfont/woff woff;\n"
	"\t\tfont/woff2 woff2;\n"
	"\t\tfont/ttf ttf;\n"
	"\t\tfont/otf otf;\n"
	"\t\taudio/mpeg mp3;\n"
	"\t\taudio/ogg ogg;\n"
	"\t\tvideo/mp4 mp4;\n"
	"\t\tvideo/webm webm;\n"
	"\t}\n"
	"\tdefault_type application/octet-stream;\n";

/*
 * Variables the app files use, at http level: in own mode inside
 * nginx.conf, in system mode as a file of their own in the conf dir.
 * Named berth_* so they cannot clash with a system's own maps.
 */
static const char berth_maps[] =
	"\tmap $http_upgrade $berth_connection {\n"
	"\t\tdefault upgrade;\n"
	"\t\t'' close;\n"
	"\t}\n"
	"\tmap $http_host $berth_host {\n"
	"\t\t'' $host;\n"
	"\t\tdefault $http_host;\n"
	"\t}\n"
	/* which upstream answered, only for requests that ask */
	"\tmap $http_x_berth_probe $berth_upstream {\n"
	"\t\t'1' $upstream_addr;\n"
	"\t\tdefault '';\n"
	"\t}\n";

/*
 * The main nginx.conf of own mode.  conf_d is the folder of app files it
 * includes; error_log is a path or "stderr" (for nginx -t, whose
 * complaints we read from its output).
 */
static void render_main(struct buf *b, const struct nginx *ng,
			const char *conf_d, const char *error_log,
			const char *pid_file)
{
	buf_addstr(b, "# generated by berth: edits are overwritten\n");
	buf_addstr(b, "daemon off;\n");
	buf_addstr(b, "master_process on;\n");
	buf_addstr(b, "worker_processes auto;\n");
	buf_addf(b, "pid \"%s\";\n", pid_file);
	buf_addf(b, "error_log \"%s\" warn;\n", error_log);
	/*
	 * As root, workers stay root: the state directory (and the static
	 * sites in it) is often readable by root only.  Static sites stop
	 * symlinks that leave the site (see the app files).
	 */
	if (ng->run_as_root)
		buf_addstr(b, "user root root;\n");
	/* Old workers after a reload: finish, but never for long. */
	buf_addstr(b, "worker_shutdown_timeout 10s;\n");
	buf_addstr(b, "events {\n\tworker_connections 4096;\n}\n");
	buf_addstr(b, "http {\n");
	buf_addstr(b, "\taccess_log off;\n");
	buf_addstr(b, "\tserver_tokens off;\n");
	buf_addstr(b, "\tsendfile on;\n");
	buf_addstr(b, "\ttcp_nopush on;\n");
	buf_addstr(b, mime_types);
	buf_addf(b, "\tclient_body_temp_path \"%s/tmp/body\";\n", ng->prefix);
	buf_addf(b, "\tproxy_temp_path \"%s/tmp/proxy\";\n", ng->prefix);
	buf_addf(b, "\tfastcgi_temp_path \"%s/tmp/fastcgi\";\n", ng->prefix);
	buf_addf(b, "\tuwsgi_temp_path \"%s/tmp/uwsgi\";\n", ng->prefix);
	buf_addf(b, "\tscgi_temp_path \"%s/tmp/scgi\";\n", ng->prefix);
	/*
	 * Keep-alive: a reload closes idle client connections, and a client
	 * that sends on one at that moment sees an error.  The settings
	 * that make this rarer are measured in docs/nginx.md.
	 */
	buf_addstr(b, "\tkeepalive_timeout 65s;\n");
	buf_addstr(b, berth_maps);
	buf_addstr(b, "\tserver {\n");
	buf_addf(b, "\t\tlisten %s default_server;\n", ng->listen);
	buf_addstr(b, "\t\tserver_name _;\n");
	buf_addstr(b, "\t\tdefault_type text/plain;\n");
	buf_addstr(b, "\t\tlocation / {\n"
		      "\t\t\treturn 404 \"no app for this host\\n\";\n"
		      "\t\t}\n");
	buf_addstr(b, "\t}\n");
	buf_addf(b, "\tinclude \"%s/*.conf\";\n", conf_d);
	buf_addstr(b, "}\n");
}

static int render_app(struct buf *b, const struct nginx *ng,
		      const struct nginx_app *app)
{
	size_t i;

	if (!app->name || !app_name_valid(app->name))
		return error_set("invalid app name '%s'",
				 app->name ? app->name : "");
	if (app->nhosts > NGINX_MAX_HOSTS)
		return error_set("too many hosts for '%s'", app->name);
	for (i = 0; i < app->nhosts; i++)
		if (!host_valid(app->hosts[i]))
			return error_set("invalid host '%s'", app->hosts[i]);
	if (app->nports > NGINX_MAX_PORTS)
		return error_set("too many ports for '%s'", app->name);
	for (i = 0; i < app->nports; i++)
		if (app->ports[i] <= 0 || app->ports[i] > 65535)
			return error_set("invalid port %d", app->ports[i]);
	if (app->static_root && !conf_path_valid(app->static_root))
		return error_set("invalid static root '%s'", app->static_root);

	buf_addf(b, "# generated by berth for app '%s': "
		 "edits are overwritten\n", app->name);
	if (app->nports) {
		buf_addf(b, "upstream berth_%s {\n", app->name);
		for (i = 0; i < app->nports; i++)
			buf_addf(b, "\tserver 127.0.0.1:%d max_fails=0;\n",
				 app->ports[i]);
		buf_addstr(b, "}\n");
	}
	buf_addstr(b, "server {\n");
	buf_addf(b, "\tlisten %s;\n", ng->listen);
	buf_addf(b, "\tserver_name %s.%s", app->name, ng->domain);
	for (i = 0; i < app->nhosts; i++)
		buf_addf(b, " %s", app->hosts[i]);
	buf_addstr(b, ";\n");
	buf_addstr(b, "\tclient_max_body_size 100m;\n");
	buf_addstr(b, "\tadd_header X-Berth-Upstream $berth_upstream "
		      "always;\n");
	if (app->nports) {
		buf_addstr(b, "\tlocation / {\n");
		buf_addf(b, "\t\tproxy_pass http://berth_%s;\n", app->name);
		buf_addstr(b,
			"\t\tproxy_http_version 1.1;\n"
			"\t\tproxy_set_header Host $berth_host;\n"
			"\t\tproxy_set_header X-Real-IP $remote_addr;\n"
			"\t\tproxy_set_header X-Forwarded-For "
			"$proxy_add_x_forwarded_for;\n"
			"\t\tproxy_set_header X-Forwarded-Proto $scheme;\n"
			"\t\tproxy_set_header X-Request-Start \"t=${msec}\";\n"
			"\t\tproxy_set_header Upgrade $http_upgrade;\n"
			"\t\tproxy_set_header Connection $berth_connection;\n"
			"\t\tproxy_connect_timeout 2s;\n"
			"\t\tproxy_read_timeout 300s;\n"
			"\t\tproxy_send_timeout 300s;\n"
			/* a refused idle slot is retried on the live one */
			"\t\tproxy_next_upstream error timeout "
			"http_502 http_503 http_504;\n"
			"\t\tproxy_next_upstream_tries 0;\n"
			"\t}\n");
	} else if (app->static_root) {
		/*
		 * The root is a symlink the engine swaps by rename(): resolve
		 * it on every request (no open_file_cache), but refuse
		 * symlinks inside the site, which could point anywhere.
		 */
		buf_addf(b, "\troot \"%s\";\n", app->static_root);
		buf_addstr(b, "\tdisable_symlinks on from=$document_root;\n");
		buf_addstr(b, "\topen_file_cache off;\n");
		buf_addstr(b, "\tindex index.html index.htm;\n");
		buf_addstr(b, "\tlocation / {\n"
			      "\t\ttry_files $uri $uri/ =404;\n"
			      "\t}\n");
		/* never a dotfile (.env, .git*, .berth/, .profile.d/): a
		 * pusher's secrets and berth's own files; .well-known/ (RFC
		 * 8615) is public by definition */
		buf_addstr(b, "\tlocation ~ /\\.(?!well-known/) {\n"
			      "\t\treturn 404;\n"
			      "\t}\n");
	} else {
		buf_addstr(b, "\tdefault_type text/plain;\n");
		buf_addstr(b, "\tlocation / {\n"
			      "\t\treturn 503 \"no web process\\n\";\n"
			      "\t}\n");
	}
	buf_addstr(b, "}\n");
	return 0;
}

/* --- own mode: files and checks ----------------------------------- */

static int write_main_conf(const struct nginx *ng)
{
	struct buf b = BUF_INIT;
	char *conf = path_join(ng->prefix, "nginx.conf");
	char *log = path_join(ng->prefix, "logs/error.log");
	char *pid = path_join(ng->prefix, "logs/nginx.pid");
	struct buf cur = BUF_INIT;
	int ret = 0;

	render_main(&b, ng, ng->conf_dir, log, pid);
	if (read_file(&cur, conf, NGINX_CONF_MAX) == 0 && cur.len == b.len &&
	    !memcmp(cur.data, b.data, b.len))
		goto out;
	ret = write_file_atomic(conf, b.data, b.len, 0644);
out:
	buf_release(&b);
	buf_release(&cur);
	free(conf);
	free(log);
	free(pid);
	return ret;
}

/*
 * Check the whole configuration as it would be with app file 'name'
 * replaced by 'newfile' (NULL: without that app).  A scratch folder
 * ROOT/nginx/check holds a copy of nginx.conf that includes links to
 * every current app file but that one, plus the new one.
 */
static int check_own(const struct nginx *ng, const char *name,
		     const char *newfile)
{
	char *check = path_join(ng->prefix, "check");
	char *check_d = path_join(check, "conf.d");
	char *conf = path_join(check, "nginx.conf");
	char *pid = path_join(check, "nginx.pid");
	char *skip = name ? xasprintf("%s.conf", name) : NULL;
	struct buf b = BUF_INIT;
	DIR *d = NULL;
	struct dirent *de;
	int ret = -1;

	if (rm_rf(check) < 0 || mkdir_p(check_d, 0755) < 0)
		goto out;
	d = opendir(ng->conf_dir);
	if (!d) {
		error_setsys("cannot open '%s'", ng->conf_dir);
		goto out;
	}
	while ((de = readdir(d))) {
		size_t n = strlen(de->d_name);
		char *from, *to;
		int r;

		if (n < 6 || strcmp(de->d_name + n - 5, ".conf") ||
		    de->d_name[0] == '.')
			continue;
		if (skip && !strcmp(de->d_name, skip))
			continue;
		from = path_join(ng->conf_dir, de->d_name);
		to = path_join(check_d, de->d_name);
		r = symlink(from, to);
		if (r < 0)
			error_setsys("cannot link '%s'", to);
		free(from);
		free(to);
		if (r < 0)
			goto out;
	}
	if (newfile) {
		char *to = path_join(check_d, skip);
		int r = symlink(newfile, to);

		if (r < 0)
			error_setsys("cannot link '%s'", to);
		free(to);
		if (r < 0)
			goto out;
	}
	render_main(&b, ng, check_d, "stderr", pid);
	if (write_new_file(conf, b.data, b.len) < 0)
		goto out;
	{
		const char *args[] = { "-t", "-q", "-p", ng->prefix, "-c", conf,
				       NULL };

		ret = run_nginx(ng, args, "nginx rejected the configuration");
	}
out:
	if (d)
		closedir(d);
	buf_release(&b);
	free(check);
	free(check_d);
	free(conf);
	free(pid);
	free(skip);
	return ret;
}

static int check_system(const struct nginx *ng)
{
	const char *args[] = { "-t", "-q", NULL };

	return run_nginx(ng, args, "nginx rejected the configuration");
}

/* --- own mode: the supervised process ----------------------------- */

/* pgrp and state of a process from /proc/PID/stat; -1 if gone. */
static int proc_stat(pid_t pid, pid_t *pgrp, char *state, char *comm,
		     size_t commlen)
{
	char path[64], data[1024];
	char *open_p, *close_p;
	ssize_t n;
	int fd;
	int pg;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	n = read(fd, data, sizeof(data) - 1);
	close(fd);
	if (n <= 0)
		return -1;
	data[n] = '\0';
	open_p = strchr(data, '(');
	close_p = strrchr(data, ')');
	if (!open_p || !close_p || close_p < open_p)
		return -1;
	if (comm) {
		size_t k = (size_t)(close_p - open_p - 1);

		if (k >= commlen)
			k = commlen - 1;
		memcpy(comm, open_p + 1, k);
		comm[k] = '\0';
	}
	/* after "(comm) ": state ppid pgrp */
	if (sscanf(close_p + 1, " %c %*d %d", state, &pg) != 2)
		return -1;
	*pgrp = pg;
	return 0;
}

/*
 * Signal every live nginx process of process group pgrp (the master
 * leads its group: we start it with its own).  Returns how many there
 * were.  Workers outlive a killed master and keep the port, so they are
 * found by group, not by parent.
 */
static int signal_group(pid_t pgrp, int sig)
{
	DIR *d = opendir("/proc");
	struct dirent *de;
	int count = 0;

	if (!d)
		return 0;
	while ((de = readdir(d))) {
		pid_t pid, pg;
		char state, comm[64];
		long v = parse_long(de->d_name, INT_MAX);

		if (v <= 0)
			continue;
		pid = (pid_t)v;
		if (proc_stat(pid, &pg, &state, comm, sizeof(comm)) < 0)
			continue;
		if (pg != pgrp || state == 'Z' || strcmp(comm, "nginx"))
			continue;
		count++;
		if (sig)
			kill(pid, sig);
	}
	closedir(d);
	return count;
}

static void sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

/* Wait until no nginx of group pgrp is left, KILLing after timeout_ms. */
static void wait_group_gone(pid_t pgrp, long timeout_ms)
{
	int64_t deadline = now_ms() + timeout_ms;
	int killed = 0;

	while (signal_group(pgrp, 0) > 0) {
		if (now_ms() >= deadline) {
			if (killed) {
				log_warnx("nginx processes of group %d "
					  "will not die", (int)pgrp);
				return;
			}
			signal_group(pgrp, SIGKILL);
			killed = 1;
			deadline = now_ms() + 5000;
		}
		sleep_ms(20);
	}
}

static pid_t read_pid_file(const struct nginx *ng)
{
	char *path = path_join(ng->prefix, "logs/nginx.pid");
	struct buf b = BUF_INIT;
	long v = -1;

	if (read_file(&b, path, 64) == 0) {
		while (b.len && isspace((unsigned char)b.data[b.len - 1]))
			b.data[--b.len] = '\0';
		v = parse_long(b.data, INT_MAX);
	}
	buf_release(&b);
	free(path);
	error_clear();
	return v > 0 ? (pid_t)v : -1;
}

/* 1 if pid is an nginx master started with our prefix. */
static int is_our_master(const struct nginx *ng, pid_t pid)
{
	char path[64];
	struct buf b = BUF_INIT;
	char *want;
	size_t i;
	int ret = 0;

	snprintf(path, sizeof(path), "/proc/%d/cmdline", (int)pid);
	if (read_file(&b, path, 65536) < 0) {
		error_clear();
		goto out;
	}
	/* the master's title is "nginx: master process ARGS" */
	for (i = 0; i < b.len; i++)
		if (b.data[i] == '\0')
			b.data[i] = ' ';
	want = xasprintf(" -p %s ", ng->prefix);
	ret = !strncmp(b.data, "nginx: master process", 21) &&
	      strstr(b.data, want) != NULL;
	free(want);
out:
	buf_release(&b);
	return ret;
}

/* A master (and its workers) left by an engine that was killed. */
static void stop_stale(const struct nginx *ng)
{
	pid_t pid = read_pid_file(ng);
	char *pidfile;

	if (pid <= 0)
		return;
	if (is_our_master(ng, pid)) {
		log_warnx("stopping stale nginx (pid %d)", (int)pid);
		kill(pid, SIGQUIT);
		wait_group_gone(pid, 3000);
	} else if (kill(pid, 0) < 0 && errno == ESRCH) {
		/* the master is gone; its workers may still hold the port */
		if (signal_group(pid, 0) > 0)
			log_warnx("stopping stale nginx workers (group %d)",
				  (int)pid);
		wait_group_gone(pid, 0);
	}
	pidfile = path_join(ng->prefix, "logs/nginx.pid");
	unlink(pidfile);
	free(pidfile);
}

static void on_exit_nginx(pid_t pid, int status, void *arg);
static void ready_poll(struct loop *l, void *arg);

static long error_log_size(const struct nginx *ng)
{
	char *path = path_join(ng->prefix, "logs/error.log");
	struct stat st;
	long n = stat(path, &st) == 0 ? (long)st.st_size : 0;

	free(path);
	return n;
}

/* The first complaint nginx logged since offset, as the error. */
static int error_from_log(const struct nginx *ng, long offset,
			  const char *fallback)
{
	char *path = path_join(ng->prefix, "logs/error.log");
	struct buf b = BUF_INIT;
	int ret;

	if (read_file(&b, path, 16 * 1024 * 1024) == 0 &&
	    (size_t)offset <= b.len)
		ret = set_nginx_error(b.data + offset, fallback);
	else
		ret = error_set("%s", fallback);
	buf_release(&b);
	free(path);
	return ret;
}

static int spawn_nginx(struct nginx *ng)
{
	char *envp[] = { NGINX_PATH_ENV, NULL };
	char *argv[] = { ng->bin, "-p", ng->prefix, "-c", "nginx.conf", NULL };
	struct spawn s;
	char *pidfile = path_join(ng->prefix, "logs/nginx.pid");

	unlink(pidfile);
	free(pidfile);
	spawn_init(&s);
	s.argv = argv;
	s.envp = envp;
	s.dir = "/";	/* every path is absolute; pin no folder */
	s.err = 2;	/* complaints before error_log reach our log */
	s.flags = SPAWN_NEW_PGRP;
	if (spawn_start(&s) < 0)
		return -1;
	ng->pid = s.pid;
	ng->ready = 0;
	ng->reload_pending = 0;	/* it reads the current files */
	ng->started_ms = now_ms();
	reaper_watch(ng->pid, on_exit_nginx, ng);
	return 0;
}

static void schedule_ready_poll(struct nginx *ng)
{
	if (!ng->loop || ng->ready_timer)
		return;
	ng->ready_deadline = now_ms() + 60000;
	ng->ready_timer = loop_add_timer(ng->loop, NGINX_READY_POLL_MS,
					 ready_poll, ng);
}

/* The workers of our master that still accept: not shutting down. */
static size_t accepting_workers(const struct nginx *ng, pid_t *out,
				size_t max)
{
	DIR *d = opendir("/proc");
	struct dirent *de;
	size_t n = 0;

	if (!d)
		return 0;
	while ((de = readdir(d)) && n < max) {
		pid_t pid, pg;
		char state, comm[64], path[64];
		struct buf b = BUF_INIT;
		long v = parse_long(de->d_name, INT_MAX);

		if (v <= 0 || (pid_t)v == ng->pid)
			continue;
		pid = (pid_t)v;
		if (proc_stat(pid, &pg, &state, comm, sizeof(comm)) < 0 ||
		    pg != ng->pid || state == 'Z' || strcmp(comm, "nginx"))
			continue;
		snprintf(path, sizeof(path), "/proc/%d/cmdline", (int)pid);
		if (read_file(&b, path, 4096) == 0 &&
		    !strncmp(b.data, "nginx: worker process", 21) &&
		    !strstr(b.data, "shutting down"))
			out[n++] = pid;
		buf_release(&b);
	}
	closedir(d);
	error_clear();
	return n;
}

/*
 * HUP, then wait until the workers of the old configuration stop
 * accepting.  nginx starts the new workers, sleeps 100 ms, and only then
 * tells the old ones to quit: until then a request may meet either
 * configuration, and a caller that confirms a change through nginx would
 * be fooled.  So a reload returns once the change is all there is.
 */
static void reload_and_wait(struct nginx *ng)
{
	pid_t old[256], now[256];
	size_t nold, nnow, i, j;
	int64_t deadline;

	ng->reload_pending = 0;
	nold = accepting_workers(ng, old, ARRAY_SIZE(old));
	if (kill(ng->pid, SIGHUP) < 0) {
		log_warn("%s: cannot signal nginx (pid %d)", __func__,
			 (int)ng->pid);
		return;
	}
	deadline = now_ms() + 5000;
	for (;;) {
		int left = 0, fresh = 0;

		sleep_ms(5);
		nnow = accepting_workers(ng, now, ARRAY_SIZE(now));
		for (i = 0; i < nnow; i++) {
			for (j = 0; j < nold && old[j] != now[i]; j++)
				;
			if (j < nold)
				left++;
			else
				fresh++;
		}
		if (!left && fresh)
			return;
		if (now_ms() > deadline) {
			log_warnx("nginx (pid %d) is slow to reload",
				  (int)ng->pid);
			return;
		}
	}
}

/*
 * Up: the master wrote its pid file (its sockets are bound, its signal
 * handlers set) and has started workers (so a reload can tell the old
 * ones from the new).
 */
static int is_up(const struct nginx *ng)
{
	pid_t w;

	return read_pid_file(ng) == ng->pid && accepting_workers(ng, &w, 1);
}

/* Reload if nginx can take it now, else as soon as it is up. */
static void send_reload(struct nginx *ng)
{
	if (ng->pid <= 0)
		return;	/* the next start reads the files anyway */
	if (!ng->ready) {
		/* HUP before nginx set up its handlers would kill it */
		ng->reload_pending = 1;
		schedule_ready_poll(ng);
		return;
	}
	reload_and_wait(ng);
}

static void ready_poll(struct loop *l, void *arg)
{
	struct nginx *ng = arg;

	ng->ready_timer = 0;
	if (ng->pid <= 0)
		return;
	if (is_up(ng)) {
		ng->ready = 1;
		log_info("nginx is up (pid %d)", (int)ng->pid);
		if (ng->reload_pending)
			reload_and_wait(ng);
		return;
	}
	if (now_ms() > ng->ready_deadline)
		return;
	ng->ready_timer = loop_add_timer(l, NGINX_READY_POLL_MS, ready_poll,
					 ng);
}

static void restart_nginx(struct loop *l, void *arg)
{
	struct nginx *ng = arg;

	ng->restart_timer = 0;
	if (!ng->wanted || ng->pid > 0)
		return;
	if (spawn_nginx(ng) < 0) {
		long delay = ng->backoff_ms;

		log_warnx("cannot restart nginx: %s", error_last());
		ng->backoff_ms = delay * 2 > NGINX_BACKOFF_MAX_MS ?
			NGINX_BACKOFF_MAX_MS : delay * 2;
		ng->restart_timer = loop_add_timer(l, delay, restart_nginx, ng);
		return;
	}
	log_info("nginx restarted (pid %d)", (int)ng->pid);
	schedule_ready_poll(ng);
}

static void on_exit_nginx(pid_t pid, int status, void *arg)
{
	struct nginx *ng = arg;
	char why[64];
	long ran, delay;

	if (pid != ng->pid)
		return;
	ng->pid = -1;
	ng->ready = 0;
	if (ng->ready_timer) {
		loop_del_timer(ng->loop, ng->ready_timer);
		ng->ready_timer = 0;
	}
	/* orphaned workers would keep the port from the next master */
	signal_group(pid, SIGKILL);
	if (!ng->wanted)
		return;
	/* 1 s, then doubling while it keeps dying young */
	ran = (long)(now_ms() - ng->started_ms);
	if (ran >= NGINX_STABLE_MS || ng->backoff_ms < NGINX_BACKOFF_MIN_MS)
		ng->backoff_ms = NGINX_BACKOFF_MIN_MS;
	delay = ng->backoff_ms;
	ng->backoff_ms = delay * 2 > NGINX_BACKOFF_MAX_MS ?
		NGINX_BACKOFF_MAX_MS : delay * 2;
	log_warnx("nginx (pid %d) %s; restarting in %ld ms", (int)pid,
		  spawn_describe_status(status, why, sizeof(why)), delay);
	if (ng->loop)
		ng->restart_timer = loop_add_timer(ng->loop, delay,
						   restart_nginx, ng);
}

/*
 * System mode: the maps every app file needs, in berth-maps.conf.  A
 * system nginx that does not include the folder at http level fails the
 * check here, at start, with nginx's own words.
 */
static int write_system_maps(const struct nginx *ng)
{
	char *path = path_join(ng->conf_dir, "berth-maps.conf");
	struct buf b = BUF_INIT, cur = BUF_INIT;
	int ret = 0, had;

	buf_addstr(&b, "# generated by berth: edits are overwritten\n");
	buf_addstr(&b, berth_maps);
	had = read_file(&cur, path, NGINX_CONF_MAX) == 0;
	error_clear();
	if (had && cur.len == b.len && !memcmp(cur.data, b.data, b.len))
		goto out;
	ret = write_file_atomic(path, b.data, b.len, 0644);
	if (ret == 0 && check_system(ng) < 0) {
		char *msg = xstrdup(error_last());

		if (had)
			write_file_atomic(path, cur.data, cur.len, 0644);
		else
			unlink(path);
		ret = error_set("%s", msg);
		free(msg);
	}
out:
	buf_release(&b);
	buf_release(&cur);
	free(path);
	return ret;
}

/* --- the interface ------------------------------------------------ */

int nginx_init(struct nginx **out, const struct config *cfg,
	       struct loop *l)
{
	struct nginx *ng = xcalloc(1, sizeof(*ng));
	const char *bin = cfg->nginx_bin ? cfg->nginx_bin : "nginx";
	const char *mode = cfg->nginx ? cfg->nginx : "own";
	const char *domain = cfg->domain ? cfg->domain : "localhost";
	int ret = -1;

	*out = NULL;
	ng->loop = l;
	ng->pid = -1;
	ng->run_as_root = geteuid() == 0;
	ng->stop_timeout_ms = cfg->stop_timeout_ms > 0 &&
		cfg->stop_timeout_ms < NGINX_STOP_WAIT_MS ?
		cfg->stop_timeout_ms : NGINX_STOP_WAIT_MS;
	if (!strcmp(mode, "system")) {
		ng->system = 1;
	} else if (strcmp(mode, "own")) {
		error_set("invalid nginx mode '%s' (want 'own' or 'system')",
			  mode);
		goto out;
	}
	ng->bin = spawn_which(bin);
	if (!ng->bin) {
		/* root's sbin may be missing from a unit's PATH */
		char *sbin = xasprintf("/usr/sbin/%s", bin);

		if (!strchr(bin, '/') && access(sbin, X_OK) == 0)
			ng->bin = sbin;
		else
			free(sbin);
	}
	if (!ng->bin) {
		error_set("cannot find nginx '%s'", bin);
		goto out;
	}
	if (!host_valid(domain) || strchr(domain, '*')) {
		error_set("invalid domain '%s'", domain);
		goto out;
	}
	ng->domain = xstrdup(domain);
	if (parse_listen(cfg->http_listen ? cfg->http_listen :
			 "127.0.0.1:8080", &ng->listen, &ng->addr) < 0)
		goto out;

	if (ng->system) {
		struct stat st;

		if (!cfg->nginx_conf_dir || !*cfg->nginx_conf_dir) {
			error_set("nginx 'system' needs nginx_conf_dir");
			goto out;
		}
		if (stat(cfg->nginx_conf_dir, &st) < 0 ||
		    !S_ISDIR(st.st_mode)) {
			error_set("cannot use nginx_conf_dir '%s'",
				  cfg->nginx_conf_dir);
			goto out;
		}
		ng->conf_dir = xstrdup(cfg->nginx_conf_dir);
		if (write_system_maps(ng) < 0)
			goto out;
		ret = 0;
		goto out;
	}

	if (!cfg->root || cfg->root[0] != '/') {
		error_set("state directory must be an absolute path");
		goto out;
	}
	ng->prefix = path_join(cfg->root, "nginx");
	if (!conf_path_valid(ng->prefix)) {
		error_set("unusable state directory '%s' for nginx", cfg->root);
		goto out;
	}
	ng->conf_dir = path_join(ng->prefix, "conf.d");
	{
		static const char *const dirs[] = { "conf.d", "logs", "tmp" };
		size_t i;

		for (i = 0; i < ARRAY_SIZE(dirs); i++) {
			char *p = path_join(ng->prefix, dirs[i]);
			int r = mkdir_p(p, 0755);

			free(p);
			if (r < 0)
				goto out;
		}
	}
	/* leftovers of a change that was cut short */
	{
		DIR *d = opendir(ng->conf_dir);
		struct dirent *de;

		if (!d) {
			error_setsys("cannot open '%s'", ng->conf_dir);
			goto out;
		}
		while ((de = readdir(d))) {
			size_t n = strlen(de->d_name);

			if (n > 4 && !strcmp(de->d_name + n - 4, ".new")) {
				char *p = path_join(ng->conf_dir, de->d_name);

				unlink(p);
				free(p);
			}
		}
		closedir(d);
	}
	if (write_main_conf(ng) < 0)
		goto out;
	if (check_own(ng, NULL, NULL) < 0)
		goto out;
	ret = 0;
	error_clear();
out:
	if (ret < 0) {
		nginx_free(ng);
		return -1;
	}
	*out = ng;
	return 0;
}

int nginx_start(struct nginx *ng)
{
	int64_t deadline;
	long log_off;

	if (ng->system)
		return 0;
	if (ng->pid > 0)
		return 0;
	stop_stale(ng);
	log_off = error_log_size(ng);
	if (spawn_nginx(ng) < 0)
		return -1;
	ng->wanted = 1;
	ng->backoff_ms = NGINX_BACKOFF_MIN_MS;
	/*
	 * The master writes its pid file once its sockets are bound and
	 * its signal handlers set: then it serves, and a HUP is safe.
	 */
	deadline = now_ms() + NGINX_START_WAIT_MS;
	for (;;) {
		int status;
		pid_t r = waitpid(ng->pid, &status, WNOHANG);

		if (r == ng->pid) {
			char why[64];
			char *msg = xasprintf("nginx %s",
				spawn_describe_status(status, why,
						      sizeof(why)));

			reaper_forget(ng->pid);
			signal_group(ng->pid, SIGKILL);
			ng->pid = -1;
			ng->wanted = 0;
			error_from_log(ng, log_off, msg);
			free(msg);
			return -1;
		}
		if (is_up(ng))
			break;
		if (now_ms() > deadline) {
			/* keep it: it may be slow; the loop will notice */
			log_warnx("nginx (pid %d) is slow to start",
				  (int)ng->pid);
			schedule_ready_poll(ng);
			return 0;
		}
		sleep_ms(10);
	}
	ng->ready = 1;
	log_info("nginx is up (pid %d) on %s", (int)ng->pid, ng->addr);
	return 0;
}

int nginx_app_set(struct nginx *ng, const struct nginx_app *app)
{
	struct buf b = BUF_INIT, cur = BUF_INIT;
	char *path = NULL, *newpath = NULL;
	int have_cur = 0, ret = -1, r;

	if (render_app(&b, ng, app) < 0)
		goto out;
	path = app_file(ng, app->name);
	newpath = xasprintf("%s.new", path);
	r = read_file(&cur, path, NGINX_CONF_MAX);
	if (r == 0) {
		have_cur = 1;
		if (cur.len == b.len && !memcmp(cur.data, b.data, b.len)) {
			ret = 0;
			goto out;
		}
	} else if (r != ERR_NOTFOUND) {
		goto out;
	}
	error_clear();
	if (write_new_file(newpath, b.data, b.len) < 0)
		goto out;
	if (!ng->system) {
		if (check_own(ng, app->name, newpath) < 0) {
			unlink(newpath);
			goto out;
		}
		if (rename(newpath, path) < 0) {
			error_setsys("cannot rename '%s'", newpath);
			unlink(newpath);
			goto out;
		}
		if (fsync_dir(ng->conf_dir) < 0)
			goto out;
		send_reload(ng);
		ret = 0;
		goto out;
	}
	/*
	 * A system nginx's config includes files by its own pattern, so the
	 * new file is checked in place and the old one put back on failure.
	 */
	if (rename(newpath, path) < 0) {
		error_setsys("cannot rename '%s'", newpath);
		unlink(newpath);
		goto out;
	}
	if (check_system(ng) < 0) {
		char *msg = xstrdup(error_last());

		if (have_cur)
			write_file_atomic(path, cur.data, cur.len, 0644);
		else
			unlink(path);
		error_set("%s", msg);
		free(msg);
		goto out;
	}
	if (fsync_dir(ng->conf_dir) < 0 || nginx_reload(ng) < 0)
		goto out;
	ret = 0;
out:
	buf_release(&b);
	buf_release(&cur);
	free(path);
	free(newpath);
	return ret;
}

int nginx_app_remove(struct nginx *ng, const char *name)
{
	char *path;
	int ret = 0;

	if (!name || !app_name_valid(name))
		return error_set("invalid app name '%s'", name ? name : "");
	path = app_file(ng, name);
	if (unlink(path) < 0) {
		if (errno != ENOENT)
			ret = error_setsys("cannot remove '%s'", path);
		free(path);
		return ret;
	}
	ret = fsync_dir(ng->conf_dir);
	free(path);
	if (ret == 0)
		ret = nginx_reload(ng);
	return ret;
}

int nginx_reload(struct nginx *ng)
{
	const char *args[] = { "-s", "reload", NULL };

	if (!ng->system) {
		send_reload(ng);
		return 0;
	}
	if (run_nginx(ng, args, "cannot reload nginx") < 0)
		return -1;
	/*
	 * The workers of a system nginx are not ours to watch: give its
	 * master the 100 ms it sleeps before the old workers stop
	 * accepting (see reload_and_wait()), and a margin.
	 */
	sleep_ms(200);
	return 0;
}

void nginx_stop(struct nginx *ng)
{
	pid_t pid;
	int64_t deadline;
	int status;

	if (!ng || ng->system)
		return;
	ng->wanted = 0;
	if (ng->restart_timer) {
		loop_del_timer(ng->loop, ng->restart_timer);
		ng->restart_timer = 0;
	}
	if (ng->ready_timer) {
		loop_del_timer(ng->loop, ng->ready_timer);
		ng->ready_timer = 0;
	}
	ng->reload_pending = 0;
	pid = ng->pid;
	if (pid <= 0)
		return;
	reaper_forget(pid);
	kill(pid, SIGQUIT);
	deadline = now_ms() + ng->stop_timeout_ms;
	for (;;) {
		pid_t r = waitpid(pid, &status, WNOHANG);

		if (r == pid || (r < 0 && errno != EINTR))
			break;
		if (now_ms() >= deadline) {
			log_warnx("nginx (pid %d) did not quit; killing it",
				  (int)pid);
			signal_group(pid, SIGKILL);
			kill(pid, SIGKILL);
			while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
				;
			break;
		}
		sleep_ms(20);
	}
	wait_group_gone(pid, 2000);
	ng->pid = -1;
	ng->ready = 0;
}

void nginx_free(struct nginx *ng)
{
	if (!ng)
		return;
	nginx_stop(ng);
	free(ng->bin);
	free(ng->prefix);
	free(ng->conf_dir);
	free(ng->listen);
	free(ng->addr);
	free(ng->domain);
	free(ng);
}

const char *nginx_http_addr(const struct nginx *ng)
{
	return ng ? ng->addr : "127.0.0.1:8080";
}
