/*
 * nginx: see nginx.h.  How berth drives nginx, and why, is told in
 * docs/nginx.md; comments here say only what the code alone does not.
 */
#include "nginx.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>

#include "config.h"
#include "log.h"
#include "manifest.h"
#include "loop.h"
#include "reaper.h"
#include "router.h"
#include "routerlog.h"
#include "runner.h"
#include "spawn.h"
#include "supervise.h"
#include "tlscert.h"
#include "util.h"
#include "banned.h"

/* server/router.lua, built in by scripts/embed */
extern const char router_lua[];
extern const size_t router_lua_len;
/* server/certs.lua, the same way */
extern const char certs_lua[];
extern const size_t certs_lua_len;

#define NGINX_CHECK_TIMEOUT_MS 20000
#define NGINX_OUT_MAX 65536
#define NGINX_START_WAIT_MS 5000
#define NGINX_STOP_WAIT_MS 10000
#define NGINX_BACKOFF_MIN_MS 1000
#define NGINX_BACKOFF_MAX_MS 30000
/* An nginx that stayed up this long earns a fresh, short back-off. */
#define NGINX_STABLE_MS 10000
#define NGINX_READY_POLL_MS 50
#define NGINX_LOG_CHECK_MS 60000
#define NGINX_CONF_MAX (1024 * 1024)
/* sun_path holds 108 bytes with its NUL */
#define NGINX_SOCK_MAX 107
#define NGINX_PATH_ENV \
	"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

/* Where packaged nginx modules live (Debian first). */
static const char *const module_dirs[] = {
	"/usr/lib/nginx/modules",
	"/usr/lib64/nginx/modules",
	"/usr/share/nginx/modules",
	"/usr/local/nginx/modules",
};

struct nginx {
	struct loop *loop;
	struct router *router;
	int system;		/* 1: a system nginx we only configure */
	char *bin;		/* absolute path of the nginx binary */
	char *prefix;		/* own: ROOT/nginx */
	char *dir;		/* ROOT/nginx, both modes: table, code, sockets */
	char *conf;		/* own: PREFIX/nginx.conf; system: CONF_DIR/berth.conf */
	char *conf_dir;		/* system: where berth.conf lives */
	char *listen;		/* http_listen, for nginx's "listen" */
	char *addr;		/* http_listen as "host:port" for clients */
	char *domain;
	char *lua;		/* DIR/lua/router.lua */
	char *table;		/* DIR/routes */
	char *ctl_sock;		/* DIR/sock/control */
	char *probe_sock;	/* DIR/sock/probe */
	char *answer_sock;	/* DIR/answer/sock: nginx connects to itself */
	char *log_sock;		/* DIR/router.sock */
	char *access_log;	/* own: PREFIX/logs/router.log, else NULL */
	char *https_listen;	/* the HTTPS listener, or NULL for none */
	int https_port;
	char *route_listen;	/* a cluster's route listener "ADDR:PORT":
				 * other hosts' requests, answered here */
	char *certs_lua;	/* DIR/lua/certs.lua */
	char *certs_table;	/* DIR/certs: the certificates nginx loads */
	char *acme_root;	/* ROOT/acme: .well-known/acme-challenge/ */
	char *placeholder_crt;	/* DIR/placeholder.crt: before SNI picks */
	char *placeholder_key;
	char *proxy_host;	/* a server of berth's own, or NULL */
	char *proxy_sock;	/* ... and the unix socket it goes to */
	char *mod_ndk;		/* own: the modules to load */
	char *mod_lua;
	long stop_timeout_ms;
	long log_max_bytes;
	char *worker_user;	/* as root: nginx's "user", or NULL */
	unsigned long reloads;

	/* Own mode: the supervised master. */
	pid_t pid;		/* -1 when not running */
	int wanted;		/* nginx_start() called, nginx_stop() not */
	int ready;		/* the master wrote its pid file */
	int reload_pending;	/* a reload asked for before it was ready */
	struct supervisor sup;	/* restarts it (own mode) */
	uint64_t ready_timer;
	uint64_t log_timer;
	int64_t ready_deadline;

	/*
	 * System mode: berth.conf as the system nginx last loaded it (as
	 * found at init; NULL if there was none).  The file may be written
	 * more than once before nginx_start() (the dashboard's server comes
	 * after init); nginx_start() reloads once, if it differs.
	 */
	char *sys_loaded;
	int sys_started;
};

/* --- small helpers ------------------------------------------------ */

static char *path_join(const char *dir, const char *name)
{
	return xasprintf("%s/%s", dir, name);
}

static void sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

/* Write path if its content differs; 1 if it was written. */
static int write_if_changed(const char *path, const char *data, size_t len,
			    mode_t mode)
{
	struct buf cur = BUF_INIT;
	int same;

	same = read_file(&cur, path, NGINX_CONF_MAX) == 0 &&
	       cur.len == len && !memcmp(cur.data, data, len);
	buf_release(&cur);
	error_clear();
	if (same)
		return 0;
	if (write_file_atomic(path, data, len, mode) < 0)
		return -1;
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

/* A user name we put in nginx's "user" directive, unquoted. */
/*
 * The answer listener's folder: nginx's workers connect to it (static
 * sites, the 404 and 503 pages), so unlike sock/ they must pass it; as
 * root, only their group may (root:berth-www 0710); nginx makes the
 * socket itself 0666.
 */
static int answer_dir(struct nginx *ng)
{
	char *p = path_join(ng->dir, "answer");
	struct group *g = NULL;
	mode_t mode = 0700;
	int r;

	if (geteuid() == 0) {
		g = ng->worker_user ? getgrnam(ng->worker_user) : NULL;
		/* nginx's default workers (no user given) are nobody's */
		mode = g ? 0710 : 0711;
	}
	r = mkdir_p(p, mode);
	if (r == 0 && g && chown(p, 0, g->gr_gid) < 0)
		r = error_setsys("cannot chown '%s'", p);
	if (r == 0 && chmod(p, mode) < 0)
		r = error_setsys("cannot chmod '%s'", p);
	free(p);
	return r < 0 ? -1 : 0;
}

static int worker_user_valid(const char *u)
{
	size_t n = strlen(u);

	if (n == 0 || n > 31 || !(islower((unsigned char)u[0]) || u[0] == '_'))
		return 0;
	return strspn(u, "abcdefghijklmnopqrstuvwxyz0123456789_-") == n;
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
	st = runner_capture(argv.v, envp, NULL, &out, NGINX_OUT_MAX,
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

/* How a public or the probe listener proxies to the balancer's choice. */
static const char proxy_directives[] =
	"\t\t\tproxy_http_version 1.1;\n"
	"\t\t\tproxy_set_header Host $berth_host;\n"
	"\t\t\tproxy_set_header X-Real-IP $remote_addr;\n"
	"\t\t\tproxy_set_header X-Forwarded-For "
	"$proxy_add_x_forwarded_for;\n"
	"\t\t\tproxy_set_header X-Forwarded-Proto $scheme;\n"
	"\t\t\tproxy_set_header X-Request-Start \"t=${msec}\";\n"
	"\t\t\tproxy_set_header X-Request-Id $request_id;\n"
	"\t\t\tproxy_set_header Upgrade $http_upgrade;\n"
	"\t\t\tproxy_set_header Connection $berth_connection;\n"
	"\t\t\tproxy_connect_timeout 2s;\n"
	"\t\t\tproxy_read_timeout 300s;\n"
	"\t\t\tproxy_send_timeout 300s;\n"
	/* a refused port is tried on the next; a POST once sent never */
	"\t\t\tproxy_next_upstream error timeout;\n"
	"\t\t\tproxy_next_upstream_tries 0;\n";

/*
 * PUBLIC, in own mode, has no access phase: its balancer routes (a Lua
 * phase costs every request a coroutine) and sends what is not a live
 * release's to the ANSWER listener (answer/sock).  A system nginx's
 * workers may not reach that folder, so there PUBLIC_ACCESS routes in the
 * access phase as the probe does.
 */
enum listener { PUBLIC, PUBLIC_ACCESS, PROBE, ANSWER, ROUTE };

/*
 * The router's part of the configuration, at http level: in own mode
 * inside nginx.conf, in system mode the whole of berth.conf.  Every name
 * is berth_* so it cannot clash with a system's own.
 */
static void render_proxy_server(struct buf *b, enum listener which,
				int redirect)
{
	buf_addstr(b,
		"\t\tclient_max_body_size 100m;\n"
		/* the router reads its variables where they may be unset */
		"\t\tuninitialized_variable_warn off;\n"
		"\t\tlocation / {\n");
	/* plain HTTP to HTTPS for apps with a certificate (certs.lua) */
	if (redirect)
		buf_addstr(b, "\t\t\trewrite_by_lua_block { "
			   "require(\"berth.certs\").redirect() }\n");
	if (which == PROBE || which == PUBLIC_ACCESS)
		buf_addf(b, "\t\t\taccess_by_lua_block { "
			 "require(\"berth.router\").access(%s) }\n",
			 which == PROBE ? "true" : "false");
	if (which == ROUTE)
		buf_addstr(b, "\t\t\taccess_by_lua_block { "
			   "require(\"berth.router\").access(false, true) }\n");
	if (which == ANSWER)
		buf_addstr(b, "\t\t\taccess_by_lua_block { "
			   "require(\"berth.router\").answer() }\n"
			   "\t\t}\n");
	else
		/*
		 * PUBLIC's balancer has a fast path that keeps nothing in
		 * ngx.ctx; the others route in the access phase and pass
		 * their choice in ngx.ctx, to an upstream of their own.
		 */
		buf_addf(b, "\t\t\tproxy_pass http://%s;\n%s",
			 which == PUBLIC ? "berth_router" : "berth_routed",
			 proxy_directives);
	if (which == PROBE)
		buf_addstr(b, "\t\t\tproxy_hide_header X-Berth-Upstream;\n"
			      "\t\t\tadd_header X-Berth-Upstream "
			      "$upstream_addr always;\n");
	if (which != ANSWER)
		buf_addstr(b, "\t\t}\n");
	/*
	 * A static release: the root comes from the table, so a swap is
	 * one entry.  Symlinks inside the site could point anywhere:
	 * refused (the root itself may be one).
	 */
	/*
	 * The variables the router sets for a static release, declared
	 * here, where no request ever runs these "set"s (a "set" at server
	 * level would cost every request).
	 */
	if (which == PUBLIC)
		return;
	buf_addstr(b,
		"\t\tlocation @berth_variables {\n"
		"\t\t\tset $berth_app \"\";\n"
		"\t\t\tset $berth_release \"\";\n"
		"\t\t\tset $berth_root \"\";\n"
		"\t\t\treturn 404;\n"
		"\t\t}\n");
	buf_addstr(b,
		"\t\tlocation @berth_static {\n"
		"\t\t\troot $berth_root;\n"
		"\t\t\tdisable_symlinks on from=$document_root;\n"
		"\t\t\topen_file_cache off;\n"
		"\t\t\tindex index.html index.htm;\n"
		"\t\t\ttry_files $uri $uri/ =404;\n"
		/* big files go out as they are read, not via temp files */
		"\t\t\tadd_header X-Accel-Buffering no;\n");
	/*
	 * The probe says which static release answered, whatever the
	 * status: a site without index.html is ready once nginx serves
	 * it (a 403 or 404 of its own), never with the router's own 404.
	 */
	if (which == PROBE)
		buf_addstr(b, "\t\t\tadd_header X-Berth-Upstream "
			      "static:$berth_release always;\n");
	buf_addstr(b, "\t\t}\n");
}

/*
 * A public listener's router log.  Own mode: nginx's own access_log,
 * formatted in C and written in batches (no Lua log phase: it would cost
 * every request more than the whole balancer, docs/bench.md); the engine
 * reads router.log, names each line's app, release and process from its
 * host and upstream port, and frees what it read (router.h).  Lines of
 * requests the balancer sent to the answer listener name no port: that
 * listener logs them itself.  System mode: the Lua log phase, as the
 * access phase routes there.
 */
static void render_public_log(struct buf *b, const struct nginx *ng)
{
	if (ng->access_log)
		buf_addf(b, "\t\taccess_log \"%s\" berth_router "
			 "buffer=64k flush=100ms;\n", ng->access_log);
	else
		buf_addstr(b, "\t\tlog_by_lua_block { "
			      "require(\"berth.router\").log() }\n");
}

static void render_router(struct buf *b, const struct nginx *ng)
{
	enum listener public = ng->system ? PUBLIC_ACCESS : PUBLIC;

	buf_addstr(b, "\tlua_shared_dict berth_routes 16m;\n");
	buf_addstr(b, "\tlua_shared_dict berth_counts 4m;\n");
	buf_addstr(b, "\tlua_shared_dict berth_certs 16m;\n");
	if (ng->access_log)
		buf_addstr(b, "\tlog_format berth_router escape=none '"
			   ROUTERLOG_ACCESS_FORMAT "';\n");
	/* the engine being away is not nginx's error */
	buf_addstr(b, "\tlua_socket_log_errors off;\n");
	buf_addstr(b, "\tinit_by_lua_block {\n");
	buf_addf(b, "\t\tpackage.loaded[\"berth.router\"] = dofile(\"%s\")\n",
		 ng->lua);
	buf_addf(b, "\t\trequire(\"berth.router\").init(\"%s\", \"%s\",\n"
		 "\t\t\t{ \"%s\", \"%s\", \"%s\" }, \"%s\")\n", ng->table,
		 ng->log_sock, ng->ctl_sock, ng->probe_sock, ng->answer_sock,
		 ng->system ? "" : ng->answer_sock);
	buf_addf(b, "\t\tpackage.loaded[\"berth.certs\"] = dofile(\"%s\")\n",
		 ng->certs_lua);
	buf_addf(b, "\t\trequire(\"berth.certs\").init(\"%s\", %d)\n",
		 ng->certs_table, ng->https_port);
	buf_addstr(b, "\t}\n");
	buf_addstr(b,
		"\tmap $http_upgrade $berth_connection {\n"
		"\t\tdefault upgrade;\n"
		"\t\t'' close;\n"
		"\t}\n"
		"\tmap $http_host $berth_host {\n"
		"\t\t'' $host;\n"
		"\t\tdefault $http_host;\n"
		"\t}\n"
		"\tupstream berth_router {\n"
		"\t\tserver 0.0.0.1;\t# never used: the balancer picks\n"
		"\t\tbalancer_by_lua_block { "
		"require(\"berth.router\").balance_public() }\n"
		"\t}\n"
		"\tupstream berth_routed {\n"
		"\t\tserver 0.0.0.1;\t# never used: the balancer picks\n"
		"\t\tbalancer_by_lua_block { "
		"require(\"berth.router\").balance() }\n"
		"\t}\n");
	/* the public listener */
	buf_addstr(b, "\tserver {\n");
	buf_addf(b, "\t\tlisten %s default_server;\n", ng->listen);
	buf_addstr(b, "\t\tserver_name _;\n");
	/*
	 * ACME's http-01 challenge, before any routing: files under a
	 * folder only the engine writes (certs.h), for every host.
	 */
	buf_addstr(b, "\t\tlocation ^~ /.well-known/acme-challenge/ {\n");
	buf_addf(b, "\t\t\troot \"%s\";\n", ng->acme_root);
	buf_addstr(b, "\t\t\tdefault_type text/plain;\n"
		   "\t\t\tdisable_symlinks on;\n"
		   "\t\t\ttry_files $uri =404;\n"
		   "\t\t}\n");
	render_proxy_server(b, public, ng->https_listen != NULL);
	render_public_log(b, ng);
	buf_addstr(b, "\t}\n");
	/*
	 * The HTTPS listener: the same router; the certificate is picked
	 * per handshake from the server name (certs.lua), so a new one
	 * needs no reload.  The placeholder answers names without one.
	 */
	if (ng->https_listen) {
		buf_addstr(b, "\tserver {\n");
		buf_addf(b, "\t\tlisten %s ssl default_server;\n",
			 ng->https_listen);
		buf_addstr(b, "\t\tserver_name _;\n");
		/* in the server: a system nginx.conf may set its own at http */
		buf_addstr(b, "\t\tssl_protocols TLSv1.2 TLSv1.3;\n");
		buf_addstr(b, "\t\tssl_session_cache shared:berth_ssl:10m;\n");
		buf_addstr(b, "\t\tssl_session_timeout 1h;\n");
		buf_addf(b, "\t\tssl_certificate \"%s\";\n",
			 ng->placeholder_crt);
		buf_addf(b, "\t\tssl_certificate_key \"%s\";\n",
			 ng->placeholder_key);
		buf_addstr(b, "\t\tssl_certificate_by_lua_block { "
			   "require(\"berth.certs\").cert() }\n");
		buf_addstr(b, "\t\theader_filter_by_lua_block { "
			   "require(\"berth.certs\").hsts() }\n");
		render_proxy_server(b, public, 0);
		render_public_log(b, ng);
		buf_addstr(b, "\t}\n");
	}
	if (ng->proxy_host) {
		buf_addstr(b, "\tserver {\n");
		buf_addf(b, "\t\tlisten %s;\n", ng->listen);
		buf_addf(b, "\t\tserver_name %s;\n", ng->proxy_host);
		buf_addstr(b, "\t\tclient_max_body_size 64k;\n");
		buf_addstr(b, "\t\tlocation / {\n");
		buf_addf(b, "\t\t\tproxy_pass http://unix:%s:;\n",
			 ng->proxy_sock);
		buf_addstr(b, "\t\t\tproxy_http_version 1.1;\n"
			   "\t\t\tproxy_set_header Host $host;\n"
			   "\t\t\tproxy_set_header Connection \"\";\n"
			   "\t\t\tproxy_set_header X-Forwarded-Proto $scheme;\n"
			   "\t\t\tproxy_set_header X-Real-IP $remote_addr;\n"
			   /* live logs (Server-Sent Events) go out as they come */
			   "\t\t\tproxy_buffering off;\n"
			   "\t\t\tproxy_read_timeout 1h;\n"
			   "\t\t}\n\t}\n");
	}
	/*
	 * A cluster's route listener: requests other hosts pass on
	 * ("route: group", docs/cluster.md), answered by the processes
	 * here only, so no request goes round between hosts.
	 */
	if (ng->route_listen) {
		buf_addstr(b, "\tserver {\n");
		buf_addf(b, "\t\tlisten %s;\n", ng->route_listen);
		buf_addstr(b, "\t\tserver_name _;\n");
		render_proxy_server(b, ROUTE, 0);
		buf_addstr(b, "\t\tlog_by_lua_block { "
			      "require(\"berth.router\").log() }\n");
		buf_addstr(b, "\t}\n");
	}
	/* the engine's probe: a unix socket in a folder only it enters */
	buf_addstr(b, "\tserver {\n");
	buf_addf(b, "\t\tlisten \"unix:%s\";\n", ng->probe_sock);
	render_proxy_server(b, PROBE, 0);
	buf_addstr(b, "\t}\n");
	/* static sites and the router's own pages, from the balancer */
	if (public == PUBLIC) {
		buf_addstr(b, "\tserver {\n");
		buf_addf(b, "\t\tlisten \"unix:%s\";\n", ng->answer_sock);
		render_proxy_server(b, ANSWER, 0);
		/* the router's own answers and static releases: their lines */
		buf_addstr(b, "\t\tlog_by_lua_block { "
			      "require(\"berth.router\").log_answer() }\n");
		buf_addstr(b, "\t}\n");
	}
	/* the engine's control listener */
	buf_addstr(b, "\tserver {\n");
	buf_addf(b, "\t\tlisten \"unix:%s\";\n", ng->ctl_sock);
	buf_addstr(b,
		"\t\tclient_max_body_size 64m;\n"
		"\t\tclient_body_buffer_size 64m;\n"
		"\t\tlocation / {\n"
		"\t\t\tcontent_by_lua_block { "
		"require(\"berth.router\").control() }\n"
		"\t\t}\n"
		"\t\tlocation = /certs {\n"
		"\t\t\tcontent_by_lua_block { "
		"require(\"berth.certs\").control() }\n"
		"\t\t}\n"
		"\t}\n");
}

char *nginx_route_listen(const struct config *cfg)
{
	struct in_addr in;

	struct sockaddr_in sa;
	int fd, ok;

	if (!cfg->cluster || !cfg->advertise_address || cfg->route_port <= 0 ||
	    inet_pton(AF_INET, cfg->advertise_address, &in) != 1)
		return NULL;
	/* an address that is not this machine's (behind NAT) would keep
	 * nginx from starting at all: no route listener then */
	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_addr = in;
	fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	ok = fd >= 0 && bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0;
	if (fd >= 0)
		close(fd);
	if (!ok)
		return NULL;
	return xasprintf("%s:%d", cfg->advertise_address, cfg->route_port);
}

/*
 * The main nginx.conf of own mode.  error_log is a path or "stderr" (for
 * nginx -t, whose complaints we read from its output).
 */
static void render_main(struct buf *b, const struct nginx *ng,
			const char *error_log, const char *pid_file)
{
	buf_addstr(b, "# generated by berth: edits are overwritten\n");
	buf_addf(b, "load_module \"%s\";\n", ng->mod_ndk);
	buf_addf(b, "load_module \"%s\";\n", ng->mod_lua);
	buf_addstr(b, "daemon off;\n");
	buf_addstr(b, "master_process on;\n");
	buf_addstr(b, "worker_processes auto;\n");
	buf_addf(b, "pid \"%s\";\n", pid_file);
	buf_addf(b, "error_log \"%s\" warn;\n", error_log);
	/*
	 * As root, the workers that parse requests from the internet are
	 * berth-www, never root: what they read (static copies, the
	 * challenge folder, router.sock, the dashboard's socket) is open to
	 * them, berth's state is not (docs/security.md).  Without a name,
	 * nginx's own default (nobody) is still not root.
	 */
	if (ng->worker_user)
		buf_addf(b, "user %s %s;\n", ng->worker_user,
			 ng->worker_user);
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
	/* Keep-alive stays on: nothing an app does reloads nginx. */
	buf_addstr(b, "\tkeepalive_timeout 65s;\n");
	render_router(b, ng);
	buf_addstr(b, "}\n");
}

/* FNV-1a over the router's Lua code, into h. */
static uint64_t code_hash(uint64_t h, const char *p, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		h ^= (unsigned char)p[i];
		h *= 1099511628211ULL;
	}
	return h;
}

static void render_system(struct buf *b, const struct nginx *ng)
{
	uint64_t h = 14695981039346656037ULL;

	buf_addstr(b, "# generated by berth: edits are overwritten.  "
		      "Include at http level;\n"
		      "# nginx must load ndk_http_module and "
		      "ngx_http_lua_module (docs/nginx.md).\n");
	/*
	 * The system nginx keeps the Lua code it loaded until a reload:
	 * a berth whose router code changed (an upgrade) must reload it
	 * once, as for a changed berth.conf, so the code is part of it.
	 */
	h = code_hash(h, router_lua, router_lua_len);
	h = code_hash(h, certs_lua, certs_lua_len);
	buf_addf(b, "# router code %016llx\n", (unsigned long long)h);
	render_router(b, ng);
}

static int check_system(const struct nginx *ng)
{
	const char *args[] = { "-t", "-q", NULL };

	return run_nginx(ng, args, "nginx rejected the configuration");
}

/*
 * Own mode: write nginx.conf, checked first as a copy that logs to
 * stderr (so nginx -t's complaint comes back to us).
 */
static int write_own_conf(const struct nginx *ng)
{
	char *check = path_join(ng->prefix, "check.conf");
	char *pid = path_join(ng->prefix, "check.pid");
	char *log = path_join(ng->prefix, "logs/error.log");
	char *pidf = path_join(ng->prefix, "logs/nginx.pid");
	struct buf b = BUF_INIT;
	int ret = -1;

	render_main(&b, ng, "stderr", pid);
	if (write_file_atomic(check, b.data, b.len, 0644) < 0)
		goto out;
	{
		const char *args[] = { "-t", "-q", "-p", ng->prefix, "-c",
				       check, NULL };

		ret = run_nginx(ng, args, "nginx rejected the configuration");
	}
	unlink(check);
	if (ret < 0)
		goto out;
	buf_reset(&b);
	render_main(&b, ng, log, pidf);
	ret = write_if_changed(ng->conf, b.data, b.len, 0644) < 0 ? -1 : 0;
out:
	buf_release(&b);
	free(check);
	free(pid);
	free(log);
	free(pidf);
	return ret;
}

/*
 * System mode: berth.conf, checked in place with the system's nginx -t
 * (its own nginx.conf decides what is included); the old file is put
 * back if the check fails.  1 if it changed.
 */
static int write_system_conf(const struct nginx *ng)
{
	struct buf b = BUF_INIT, cur = BUF_INIT;
	int had, ret;

	render_system(&b, ng);
	had = read_file(&cur, ng->conf, NGINX_CONF_MAX) == 0;
	error_clear();
	ret = write_if_changed(ng->conf, b.data, b.len, 0644);
	if (ret == 1 && check_system(ng) < 0) {
		char *msg = xstrdup(error_last());

		if (had)
			write_file_atomic(ng->conf, cur.data, cur.len, 0644);
		else
			unlink(ng->conf);
		error_set("%s", msg);
		free(msg);
		ret = -1;
	}
	buf_release(&b);
	buf_release(&cur);
	return ret;
}

/* Files of the per-app design before the router; they would shadow it. */
static void remove_old_files(const struct nginx *ng)
{
	DIR *d;
	struct dirent *de;

	if (!ng->system) {
		char *p = path_join(ng->prefix, "conf.d");

		rm_rf(p);
		free(p);
		p = path_join(ng->prefix, "check");
		rm_rf(p);
		free(p);
		return;
	}
	d = opendir(ng->conf_dir);
	if (!d)
		return;
	while ((de = readdir(d))) {
		const char *n = de->d_name;
		size_t len = strlen(n);
		char *name;

		if (len < 12 || strncmp(n, "berth-", 6) ||
		    strcmp(n + len - 5, ".conf"))
			continue;
		name = xstrndup(n + 6, len - 11);
		if (!strcmp(name, "maps") || app_name_valid(name)) {
			char *p = path_join(ng->conf_dir, n);

			log_info("removing '%s' (berth.conf replaces it)", p);
			unlink(p);
			free(p);
		}
		free(name);
	}
	closedir(d);
}

/* The packaged module, or NULL. */
static char *find_module(const char *file)
{
	size_t i;

	for (i = 0; i < ARRAY_SIZE(module_dirs); i++) {
		char *p = path_join(module_dirs[i], file);

		if (access(p, R_OK) == 0)
			return p;
		free(p);
	}
	return NULL;
}

/* ROOT/nginx/lua/router.lua: the code init_by_lua loads. */
static int write_lua(const struct nginx *ng)
{
	char *dir = path_join(ng->dir, "lua");
	int ret = mkdir_p(dir, 0755);

	free(dir);
	if (ret < 0)
		return -1;
	if (write_if_changed(ng->certs_lua, certs_lua, certs_lua_len,
			     0644) < 0)
		return -1;
	return write_if_changed(ng->lua, router_lua, router_lua_len, 0644) < 0 ?
		-1 : 0;
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

/* 1 if pid is gone or a zombie: an orphaned master killed while no one
 * reaps it (an init that is slow to) stays a zombie, and kill(pid, 0)
 * still succeeds on it. */
static int is_dead(pid_t pid)
{
	pid_t pg;
	char state;

	return proc_stat(pid, &pg, &state, NULL, 0) < 0 || state == 'Z';
}

/* 1 if pid has path open (nginx keeps its error log open in the master
 * and in every worker). */
static int has_open(pid_t pid, const char *path)
{
	char dir[64], link[64 + 256], target[PATH_MAX];
	struct dirent *de;
	DIR *d;
	int found = 0;

	snprintf(dir, sizeof(dir), "/proc/%d/fd", (int)pid);
	d = opendir(dir);
	if (!d)
		return 0;
	while (!found && (de = readdir(d))) {
		ssize_t n;

		if (de->d_name[0] == '.')
			continue;
		snprintf(link, sizeof(link), "%s/%s", dir, de->d_name);
		n = readlink(link, target, sizeof(target) - 1);
		if (n <= 0)
			continue;
		target[n] = '\0';
		found = !strcmp(target, path);
	}
	closedir(d);
	return found;
}

/* Stop one stale group: QUIT a live master of ours, else KILL what is
 * left of its workers. */
static void stop_stale_group(const struct nginx *ng, pid_t pgrp,
			     const char *how)
{
	if (!is_dead(pgrp) && is_our_master(ng, pgrp)) {
		log_warnx("stopping stale nginx (pid %d%s)", (int)pgrp, how);
		kill(pgrp, SIGQUIT);
		wait_group_gone(pgrp, 3000);
	} else if (is_dead(pgrp) && signal_group(pgrp, 0) > 0) {
		/* the master is gone; its workers still hold the port */
		log_warnx("stopping stale nginx workers (group %d%s)",
			  (int)pgrp, how);
		wait_group_gone(pgrp, 0);
	}
}

/*
 * The nginx processes that have this prefix's error log open, by
 * process group: what a killed engine left when its pid file is gone or
 * names a master nobody reaped.  Only nginx processes are looked at.
 */
static size_t stale_groups(const struct nginx *ng, pid_t *out, size_t max)
{
	char *log = path_join(ng->prefix, "logs/error.log");
	DIR *d = opendir("/proc");
	struct dirent *de;
	size_t n = 0, i;

	while (d && (de = readdir(d))) {
		long v = parse_long(de->d_name, INT_MAX);
		pid_t pid, pg;
		char state, comm[64];

		if (v <= 0)
			continue;
		pid = (pid_t)v;
		if (pid == ng->pid || proc_stat(pid, &pg, &state, comm,
						sizeof(comm)) < 0 ||
		    state == 'Z' || strcmp(comm, "nginx") ||
		    (ng->pid > 0 && pg == ng->pid))
			continue;
		for (i = 0; i < n && out[i] != pg; i++)
			;
		if (i < n || n == max || !has_open(pid, log))
			continue;
		out[n++] = pg;
	}
	if (d)
		closedir(d);
	free(log);
	error_clear();
	return n;
}

/* A master (and its workers) left by an engine that was killed. */
static void stop_stale(const struct nginx *ng)
{
	pid_t pid = read_pid_file(ng), groups[16];
	char *pidfile;
	size_t n, i;

	if (pid > 0)
		stop_stale_group(ng, pid, "");
	/* no pid file, or more than it knows of */
	n = stale_groups(ng, groups, ARRAY_SIZE(groups));
	for (i = 0; i < n; i++)
		stop_stale_group(ng, groups[i], ", found by its open log");
	pidfile = path_join(ng->prefix, "logs/nginx.pid");
	unlink(pidfile);
	free(pidfile);
}

static void on_exit_nginx(pid_t pid, int status, void *arg);
static void ready_poll(struct loop *l, void *arg);


static void log_check(struct loop *l, void *arg);
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
	/* a killed master leaves its unix sockets, which block the bind */
	unlink(ng->ctl_sock);
	unlink(ng->probe_sock);
	unlink(ng->answer_sock);
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
	supervisor_started(&ng->sup);
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
static int send_hup(struct nginx *ng)
{
	ng->reload_pending = 0;
	if (kill(ng->pid, SIGHUP) < 0) {
		log_warn("%s: cannot signal nginx (pid %d)", __func__,
			 (int)ng->pid);
		return -1;
	}
	ng->reloads++;
	return 0;
}

static void reload_and_wait(struct nginx *ng)
{
	pid_t old[256], now[256];
	size_t nold, nnow, i, j;
	int64_t deadline;

	nold = accepting_workers(ng, old, ARRAY_SIZE(old));
	if (send_hup(ng) < 0)
		return;
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
		/* it loaded the table file; if that was older, send it */
		router_nginx_up(ng->router);
		/* from the loop: nobody waits to confirm it, so no wait */
		if (ng->reload_pending)
			send_hup(ng);
		if (!ng->log_timer)
			ng->log_timer = loop_add_timer(l, NGINX_LOG_CHECK_MS,
						       log_check, ng);
		return;
	}
	if (now_ms() > ng->ready_deadline)
		return;
	ng->ready_timer = loop_add_timer(l, NGINX_READY_POLL_MS, ready_poll,
					 ng);
}

/* The supervisor's start: nginx again, while it is wanted. */
static int restart_nginx(void *arg)
{
	struct nginx *ng = arg;

	if (!ng->wanted || ng->pid > 0)
		return 0;
	if (spawn_nginx(ng) < 0)
		return -1;
	log_info("nginx restarted (pid %d)", (int)ng->pid);
	schedule_ready_poll(ng);
	return 0;
}

static void restart_failed(void *arg, long delay_ms)
{
	(void)arg;
	log_warnx("cannot restart nginx: %s; trying again in %ld ms",
		  error_last(), delay_ms);
}

static void on_exit_nginx(pid_t pid, int status, void *arg)
{
	struct nginx *ng = arg;
	char why[64];
	long delay;

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
	delay = supervisor_exited(&ng->sup);
	log_warnx("nginx (pid %d) %s; restarting in %ld ms", (int)pid,
		  spawn_describe_status(status, why, sizeof(why)), delay);
}


/* Own mode: error.log grows past log_max_size: keep one old copy. */
static void log_check(struct loop *l, void *arg)
{
	struct nginx *ng = arg;
	char *log = path_join(ng->prefix, "logs/error.log");
	char *old = path_join(ng->prefix, "logs/error.log.1");
	struct stat st;

	ng->log_timer = loop_add_timer(l, NGINX_LOG_CHECK_MS, log_check, ng);
	if (ng->pid > 0 && ng->ready && ng->log_max_bytes > 0 &&
	    stat(log, &st) == 0 && st.st_size > ng->log_max_bytes) {
		if (rename(log, old) < 0)
			log_warn("cannot rotate '%s'", log);
		else
			nginx_reopen_logs(ng);
	}
	free(log);
	free(old);
}

/* --- the interface ------------------------------------------------ */

static int set_paths(struct nginx *ng, const char *root)
{
	if (!root || root[0] != '/')
		return error_set("state directory must be an absolute path");
	ng->dir = xasprintf("%s/nginx", root);
	if (!conf_path_valid(ng->dir))
		return error_set("unusable state directory '%s' for nginx",
				 root);
	ng->lua = path_join(ng->dir, "lua/router.lua");
	ng->table = path_join(ng->dir, "routes");
	ng->ctl_sock = path_join(ng->dir, "sock/control");
	ng->probe_sock = path_join(ng->dir, "sock/probe");
	ng->answer_sock = path_join(ng->dir, "answer/sock");
	ng->log_sock = path_join(ng->dir, "router.sock");
	ng->certs_lua = path_join(ng->dir, "lua/certs.lua");
	ng->certs_table = path_join(ng->dir, "certs");
	ng->acme_root = xasprintf("%s/acme", root);
	ng->placeholder_crt = path_join(ng->dir, "placeholder.crt");
	ng->placeholder_key = path_join(ng->dir, "placeholder.key");
	if (strlen(ng->ctl_sock) > NGINX_SOCK_MAX ||
	    strlen(ng->log_sock) > NGINX_SOCK_MAX)
		return error_set("state directory '%s' is too long for a "
				 "unix socket path", root);
	return 0;
}

int nginx_init(struct nginx **out, const struct config *cfg,
	       struct loop *l)
{
	struct nginx *ng = xcalloc(1, sizeof(*ng));
	const char *bin = cfg->nginx_bin ? cfg->nginx_bin : "nginx";
	const char *mode = cfg->nginx ? cfg->nginx : "own";
	const char *domain = cfg->domain ? cfg->domain : "localhost";
	struct router_opts ro;
	char *p;
	int ret = -1, r;

	*out = NULL;
	ng->loop = l;
	ng->pid = -1;
	supervisor_init(&ng->sup, l, NGINX_BACKOFF_MIN_MS, NGINX_BACKOFF_MAX_MS,
			NGINX_STABLE_MS, restart_nginx, restart_failed, ng);
	if (geteuid() == 0 && cfg->www_user[0]) {
		if (!worker_user_valid(cfg->www_user)) {
			error_set("invalid user '%s' for nginx's workers",
				  cfg->www_user);
			goto out;
		}
		ng->worker_user = xstrdup(cfg->www_user);
	}
	ng->log_max_bytes = cfg->log_max_bytes;
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
	ng->domain = xstrdup(domain);
	if (parse_listen(cfg->http_listen ? cfg->http_listen :
			 "127.0.0.1:8080", &ng->listen, &ng->addr) < 0)
		goto out;
	if (set_paths(ng, cfg->root) < 0)
		goto out;
	ng->route_listen = nginx_route_listen(cfg);
	if (!ng->route_listen && cfg->cluster && cfg->route &&
	    !strcmp(cfg->route, "group"))
		log_warnx("cluster: no route listener here (advertise_address must be an IPv4 address of this machine): other hosts cannot pass requests to this one");
	if (config_https_listen(cfg)) {
		char *a = NULL;

		if (parse_listen(config_https_listen(cfg), &ng->https_listen,
				 &a) < 0) {
			error_set("invalid https_listen '%s'",
				  config_https_listen(cfg));
			goto out;
		}
		ng->https_port = (int)parse_long(strrchr(a, ':') + 1, 65535);
		free(a);
		if (mkdir_p(ng->dir, 0755) < 0)
			goto out;
		if (access(ng->placeholder_crt, R_OK) < 0 &&
		    tlscert_selfsigned("berth", 3650, ng->placeholder_crt,
				       ng->placeholder_key) < 0)
			goto out;
	}
	/* the challenge folder: the engine writes, nginx reads */
	p = xasprintf("%s/.well-known/acme-challenge", ng->acme_root);
	r = mkdir_p(p, 0755);
	free(p);
	if (r < 0)
		goto out;
	if (ng->system) {
		struct stat st;

		if (!cfg->nginx_conf_dir || !*cfg->nginx_conf_dir) {
			error_set("nginx 'system' needs nginx_conf_dir");
			goto out;
		}
		if (stat(cfg->nginx_conf_dir, &st) < 0 ||
		    !S_ISDIR(st.st_mode) ||
		    !conf_path_valid(cfg->nginx_conf_dir)) {
			error_set("cannot use nginx_conf_dir '%s'",
				  cfg->nginx_conf_dir);
			goto out;
		}
		ng->conf_dir = xstrdup(cfg->nginx_conf_dir);
		ng->conf = path_join(ng->conf_dir, "berth.conf");
	} else {
		static const char *const dirs[] = { "logs", "tmp" };
		size_t i;

		ng->prefix = xstrdup(ng->dir);
		ng->access_log = path_join(ng->prefix, "logs/router.log");
		ng->conf = path_join(ng->prefix, "nginx.conf");
		ng->mod_ndk = find_module("ndk_http_module.so");
		ng->mod_lua = find_module("ngx_http_lua_module.so");
		if (!ng->mod_ndk || !ng->mod_lua) {
			error_set("nginx's Lua module is not installed "
				  "(Debian: libnginx-mod-http-lua)");
			goto out;
		}
		for (i = 0; i < ARRAY_SIZE(dirs); i++) {
			p = path_join(ng->prefix, dirs[i]);
			r = mkdir_p(p, 0755);
			free(p);
			if (r < 0)
				goto out;
		}
	}
	if (mkdir_p(ng->dir, 0755) < 0)
		goto out;
	/* the control and probe listeners: the engine's user only */
	p = path_join(ng->dir, "sock");
	r = mkdir_p(p, 0700);
	if (r == 0 && chmod(p, 0700) < 0)
		r = error_setsys("cannot chmod '%s'", p);
	free(p);
	if (r < 0)
		goto out;
	if (answer_dir(ng) < 0)
		goto out;
	if (write_lua(ng) < 0)
		goto out;
	memset(&ro, 0, sizeof(ro));
	ro.table_path = ng->table;
	ro.control_socket = ng->ctl_sock;
	ro.probe_socket = ng->probe_sock;
	ro.domain = ng->domain;
	ro.access_log = ng->access_log;
	if (router_init(&ng->router, &ro) < 0)
		goto out;
	remove_old_files(ng);
	if (!ng->system) {
		if (write_own_conf(ng) < 0)
			goto out;
	} else {
		struct buf cur = BUF_INIT;

		if (read_file(&cur, ng->conf, NGINX_CONF_MAX) == 0)
			ng->sys_loaded = xstrndup(cur.data ? cur.data : "",
						  cur.len);
		buf_release(&cur);
		error_clear();
		/* checked now; the system nginx loads it at nginx_start() */
		if (write_system_conf(ng) < 0)
			goto out;
	}
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

	if (ng->system) {
		if (!ng->sys_started) {
			struct buf cur = BUF_INIT;
			int same;

			ng->sys_started = 1;
			same = ng->sys_loaded &&
				read_file(&cur, ng->conf, NGINX_CONF_MAX) == 0 &&
				cur.len == strlen(ng->sys_loaded) &&
				!memcmp(cur.data ? cur.data : "",
					ng->sys_loaded, cur.len);
			buf_release(&cur);
			error_clear();
			/* a new berth.conf: the one reload that is berth's own */
			if (!same && nginx_reload(ng) < 0)
				return -1;
			if (!same) {
				/* its new workers take a moment on a busy
				 * host: wait for the router (at start only) */
				int64_t until = now_ms() + NGINX_START_WAIT_MS;

				router_nginx_up(ng->router);
				while (!router_in_sync(ng->router) &&
				       now_ms() < until) {
					sleep_ms(50);
					router_nginx_up(ng->router);
				}
			}
		}
		router_nginx_up(ng->router);
		if (!router_in_sync(ng->router))
			log_warnx("the system nginx does not answer on '%s': "
				  "is '%s' included, with the Lua module "
				  "loaded?", ng->ctl_sock, ng->conf);
		return 0;
	}
	if (ng->pid > 0)
		return 0;
	stop_stale(ng);
	log_off = error_log_size(ng);
	if (spawn_nginx(ng) < 0)
		return -1;
	ng->wanted = 1;
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
	router_nginx_up(ng->router);
	if (ng->loop && !ng->log_timer)
		ng->log_timer = loop_add_timer(ng->loop, NGINX_LOG_CHECK_MS,
					       log_check, ng);
	return 0;
}

struct router *nginx_router(struct nginx *ng)
{
	return ng->router;
}

int nginx_app_set(struct nginx *ng, const struct nginx_app *app)
{
	struct route_peer *peers = NULL;
	struct route rt;
	char (*names)[32] = NULL;
	size_t i;
	int ret;

	memset(&rt, 0, sizeof(rt));
	if (app->nports > ROUTER_MAX_PEERS)
		return error_set("too many ports for '%s'", app->name);
	if (app->nports) {
		peers = xcalloc(app->nports, sizeof(*peers));
		names = xcalloc(app->nports, sizeof(*names));
		for (i = 0; i < app->nports; i++) {
			snprintf(names[i], sizeof(names[i]), "web.%zu",
				 i / 2 + 1);
			peers[i].proc = names[i];
			peers[i].port = app->ports[i];
		}
		rt.kind = ROUTE_LIVE;
		rt.peers = peers;
		rt.npeers = app->nports;
	} else if (app->static_root) {
		rt.kind = ROUTE_STATIC;
		rt.root = app->static_root;
	} else {
		rt.kind = ROUTE_NO_WEB;
	}
	ret = router_app_set(ng->router, app->name, app->hosts, app->nhosts,
			     &rt);
	free(peers);
	free(names);
	return ret < 0 ? -1 : 0;
}

int nginx_app_remove(struct nginx *ng, const char *name)
{
	return router_app_remove(ng->router, name) < 0 ? -1 : 0;
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
	ng->reloads++;
	/*
	 * The workers of a system nginx are not ours to watch: give its
	 * master the 100 ms it sleeps before the old workers stop
	 * accepting (see reload_and_wait()), and a margin.
	 */
	sleep_ms(200);
	return 0;
}

int nginx_reopen_logs(struct nginx *ng)
{
	const char *args[] = { "-s", "reopen", NULL };

	if (ng->system)
		return run_nginx(ng, args, "cannot reopen nginx's logs");
	if (ng->pid > 0 && kill(ng->pid, SIGUSR1) < 0)
		return error_setsys("cannot signal nginx (pid %d)",
				    (int)ng->pid);
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
	supervisor_cancel(&ng->sup);
	if (ng->ready_timer) {
		loop_del_timer(ng->loop, ng->ready_timer);
		ng->ready_timer = 0;
	}
	if (ng->log_timer) {
		loop_del_timer(ng->loop, ng->log_timer);
		ng->log_timer = 0;
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
	router_free(ng->router);
	free(ng->bin);
	free(ng->prefix);
	free(ng->dir);
	free(ng->conf);
	free(ng->sys_loaded);
	free(ng->conf_dir);
	free(ng->listen);
	free(ng->addr);
	free(ng->domain);
	free(ng->lua);
	free(ng->table);
	free(ng->ctl_sock);
	free(ng->probe_sock);
	free(ng->answer_sock);
	free(ng->log_sock);
	free(ng->access_log);
	free(ng->proxy_host);
	free(ng->proxy_sock);
	free(ng->https_listen);
	free(ng->route_listen);
	free(ng->certs_lua);
	free(ng->certs_table);
	free(ng->acme_root);
	free(ng->placeholder_crt);
	free(ng->placeholder_key);
	free(ng->worker_user);
	free(ng->mod_ndk);
	free(ng->mod_lua);
	free(ng);
}

const char *nginx_http_addr(const struct nginx *ng)
{
	return ng ? ng->addr : "127.0.0.1:8080";
}

const char *nginx_probe_socket(const struct nginx *ng)
{
	return ng->probe_sock;
}

const char *nginx_log_socket(const struct nginx *ng)
{
	return ng->log_sock;
}

unsigned long nginx_reloads(const struct nginx *ng)
{
	return ng->reloads;
}

/*
 * A server of berth's own (the dashboard): 'host' proxied to a unix
 * socket, rendered into the configuration beside the router's server
 * (an exact server_name wins over the router's catch-all).  Called before
 * nginx_start(); host NULL: none.
 */
int nginx_proxy_set(struct nginx *ng, const char *name, const char *host,
		    const char *sock)
{
	int changed;

	if (host && (!host_name_valid(host) || !conf_path_valid(sock)))
		return error_set("invalid proxy '%s' for '%s'", name, host);
	FREE_AND_NULL(ng->proxy_host);
	FREE_AND_NULL(ng->proxy_sock);
	if (host) {
		ng->proxy_host = xstrdup(host);
		ng->proxy_sock = xstrdup(sock);
	}
	if (!ng->system)
		return write_own_conf(ng);
	changed = write_system_conf(ng);
	if (changed < 0)
		return -1;
	/* before nginx_start(), which reloads once for everything */
	return changed && ng->sys_started ? nginx_reload(ng) : 0;
}

const char *nginx_control_socket(const struct nginx *ng)
{
	return ng->ctl_sock;
}

const char *nginx_https_addr(const struct nginx *ng)
{
	return ng->https_listen;
}

int nginx_https_port(const struct nginx *ng)
{
	return ng->https_listen ? ng->https_port : 0;
}
