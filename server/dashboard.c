/*
 * dashboard: logins, the HTTP server of the web dashboard, and its
 * supervision.  See dashboard.h.
 *
 * Why libmicrohttpd: the HTTP side parses whatever a browser (or anyone
 * who reaches nginx) sends; a small, fuzzed, long-kept C library does
 * that better than a parser of our own.  It runs in its own process, so
 * the engine's loop never waits on a browser and a crash here costs the
 * dashboard only.
 */
#include "dashboard.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <microhttpd.h>
#include <openssl/evp.h>

#include "access.h"
#include "config.h"
#include "log.h"
#include "loop.h"
#include "nginx.h"
#include "reaper.h"
#include "spawn.h"
#include "banned.h"

#define COOKIE_NAME "berth_session"
#define BODY_MAX (64 * 1024)
#define KEY_MAX 79
#define FORM_VALUE_MAX 4096
#define SSE_KEEPALIVE_S 15

/* The pages' CSS and JavaScript, shipped inside the binary. */
extern const char dashboard_css[];
extern const char dashboard_js[];
__asm__(".pushsection .rodata\n"
	".global dashboard_css\n"
	"dashboard_css:\n"
	".incbin \"server/www/dashboard.css\"\n"
	".byte 0\n"
	".global dashboard_js\n"
	"dashboard_js:\n"
	".incbin \"server/www/dashboard.js\"\n"
	".byte 0\n"
	".popsection\n");

/* --- small helpers ------------------------------------------------- */

static void hex_encode(char *out, const unsigned char *in, size_t n)
{
	static const char hex[] = "0123456789abcdef";
	size_t i;

	for (i = 0; i < n; i++) {
		out[2 * i] = hex[in[i] >> 4];
		out[2 * i + 1] = hex[in[i] & 15];
	}
	out[2 * n] = '\0';
}

static int random_hex(char out[DASHBOARD_TOKEN_HEX + 1])
{
	unsigned char raw[DASHBOARD_TOKEN_HEX / 2];
	size_t got = 0;
	ssize_t n;

	while (got < sizeof(raw)) {
		n = getrandom(raw + got, sizeof(raw) - got, 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return error_setsys("getrandom");
		got += (size_t)n;
	}
	hex_encode(out, raw, sizeof(raw));
	return 0;
}

static int token_valid(const char *t)
{
	size_t i;

	for (i = 0; t[i]; i++)
		if (!((t[i] >= '0' && t[i] <= '9') ||
		      (t[i] >= 'a' && t[i] <= 'f')))
			return 0;
	return i == DASHBOARD_TOKEN_HEX;
}

/* Files are named by the token's hash: a listing of the folder (or a
 * backup of it) gives no one a way in. */
static int token_hash(char out[65], const char *token)
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int n = 0;

	if (!EVP_Digest(token, strlen(token), md, &n, EVP_sha256(), NULL) ||
	    n != 32)
		return error_set("sha256 failed");
	hex_encode(out, md, 32);
	return 0;
}

static int key_name_valid(const char *k)
{
	size_t i;

	for (i = 0; k[i]; i++) {
		char c = k[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		      (c >= '0' && c <= '9') || c == '.' || c == '_' ||
		      c == '@' || c == '+' || c == '-'))
			return 0;
	}
	return i > 0 && i <= KEY_MAX && k[0] != '-';
}

/* Constant time: a wrong CSRF token tells nothing by its timing. */
static int secret_equal(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b), i;
	unsigned char d = la != lb;

	for (i = 0; i < la && i < lb; i++)
		d |= (unsigned char)(a[i] ^ b[i]);
	return d == 0;
}

char *dashboard_host(const struct config *cfg)
{
	if (cfg->dashboard_host && !strcmp(cfg->dashboard_host, "off"))
		return NULL;
	if (cfg->dashboard_host)
		return xstrdup(cfg->dashboard_host);
	return xasprintf("berth.%s", cfg->domain ? cfg->domain : "localhost");
}

/* ":8080" from http_listen, or "" for port 80. */
static void listen_port_suffix(const struct config *cfg, char *out,
			       size_t len)
{
	const char *l = cfg->http_listen ? cfg->http_listen : "127.0.0.1:8080";
	const char *colon = strrchr(l, ':');
	const char *port = colon ? colon + 1 : l;

	if (!strcmp(port, "80") || strchr(port, ']'))
		snprintf(out, len, "%s", "");
	else
		snprintf(out, len, ":%s", port);
}

char *dashboard_login_url(const struct config *cfg, const char *token)
{
	char port[16];
	char *host = dashboard_host(cfg), *url;

	listen_port_suffix(cfg, port, sizeof(port));
	url = xasprintf("http://%s%s/login?token=%s", host ? host : "-", port,
			token);
	free(host);
	return url;
}

/* --- logins and sessions ------------------------------------------ */

static char *store_dir(const char *root, const char *kind)
{
	return xasprintf("%s/%s/%s", root, DASHBOARD_DIR, kind);
}

static int ensure_dirs(const char *root)
{
	char *d = xasprintf("%s/%s", root, DASHBOARD_DIR);
	char *l = store_dir(root, "login"), *s = store_dir(root, "sessions");
	int ret = -1;

	if (mkdir_p(d, 0700) < 0 || chmod(d, 0700) < 0 ||
	    mkdir_p(l, 0700) < 0 || mkdir_p(s, 0700) < 0) {
		if (!error_last()[0])
			error_setsys("cannot make '%s'", d);
		goto out;
	}
	ret = 0;
out:
	free(d);
	free(l);
	free(s);
	return ret;
}

static void record_format(struct buf *b, const struct dashboard_session *s)
{
	buf_addf(b, "key=%s\nadmin=%d\nlocal=%d\nexpires=%lld\ncsrf=%s\n",
		 s->key, s->admin, s->local, (long long)s->expires_ms, s->csrf);
}

static int record_parse(struct dashboard_session *s, char *text)
{
	char *line, *save = NULL;
	int have_key = 0, have_exp = 0;

	memset(s, 0, sizeof(*s));
	for (save = text, line = str_token(&save, "\n"); line;
	     line = str_token(&save, "\n")) {
		char *eq = strchr(line, '=');

		if (!eq)
			continue;
		*eq++ = '\0';
		if (!strcmp(line, "key") && key_name_valid(eq)) {
			snprintf(s->key, sizeof(s->key), "%s", eq);
			have_key = 1;
		} else if (!strcmp(line, "admin")) {
			s->admin = !strcmp(eq, "1");
		} else if (!strcmp(line, "local")) {
			s->local = !strcmp(eq, "1");
		} else if (!strcmp(line, "expires")) {
			s->expires_ms = strtoll(eq, NULL, 10);
			have_exp = 1;
		} else if (!strcmp(line, "csrf") && strlen(eq) < sizeof(s->csrf)) {
			snprintf(s->csrf, sizeof(s->csrf), "%s", eq);
		}
	}
	return have_key && have_exp ? 0 : error_set("bad session record");
}

static int record_read(const char *path, struct dashboard_session *s)
{
	struct buf b = BUF_INIT;
	int r = read_file(&b, path, 4096);

	if (r == 0)
		r = record_parse(s, b.data);
	buf_release(&b);
	return r;
}

/* Remove expired records, and (key given, or all) those of key. */
static int sweep(const char *root, const char *kind, const char *key,
		 int all, int *count)
{
	char *dir = store_dir(root, kind);
	int64_t now = now_ms();
	struct dirent *de;
	DIR *d = opendir(dir);

	if (!d) {
		free(dir);
		return errno == ENOENT ? 0 : error_setsys("cannot open dir");
	}
	while ((de = readdir(d))) {
		struct dashboard_session s;
		char *p;
		int drop;

		if (de->d_name[0] == '.')
			continue;
		p = xasprintf("%s/%s", dir, de->d_name);
		drop = record_read(p, &s) < 0 || s.expires_ms <= now;
		if (!drop && (all || (key && !strcmp(s.key, key)))) {
			drop = 1;
			if (count)
				(*count)++;
		}
		if (drop)
			unlink(p);
		free(p);
	}
	closedir(d);
	free(dir);
	error_clear();
	return 0;
}

int dashboard_login_new(const char *root, const char *key, int admin,
			int local, char **token)
{
	struct dashboard_session s;
	struct buf b = BUF_INIT;
	char tok[DASHBOARD_TOKEN_HEX + 1], hash[65];
	char *path = NULL;
	int ret = -1;

	*token = NULL;
	if (!key_name_valid(key))
		return error_set("invalid key name '%.80s'", key);
	if (ensure_dirs(root) < 0)
		return -1;
	sweep(root, "login", NULL, 0, NULL);
	sweep(root, "sessions", NULL, 0, NULL);
	memset(&s, 0, sizeof(s));
	snprintf(s.key, sizeof(s.key), "%s", key);
	s.admin = admin;
	s.local = local;
	s.expires_ms = now_ms() + DASHBOARD_LOGIN_TTL_MS;
	if (random_hex(tok) < 0 || random_hex(s.csrf) < 0 ||
	    token_hash(hash, tok) < 0)
		goto out;
	record_format(&b, &s);
	path = xasprintf("%s/%s/login/%s", root, DASHBOARD_DIR, hash);
	if (write_file_atomic(path, b.data, b.len, 0600) < 0)
		goto out;
	*token = xstrdup(tok);
	ret = 0;
out:
	buf_release(&b);
	free(path);
	return ret;
}

int dashboard_revoke(const char *root, const char *key, int *count)
{
	*count = 0;
	if (key && !key_name_valid(key))
		return error_set("invalid key name '%.80s'", key);
	if (sweep(root, "login", key, key == NULL, NULL) < 0 ||
	    sweep(root, "sessions", key, key == NULL, count) < 0)
		return -1;
	return 0;
}

int dashboard_login_claim(const char *root, const char *token, long ttl_ms,
			  char **sid, struct dashboard_session *out)
{
	struct dashboard_session s;
	struct buf b = BUF_INIT;
	char hash[65], id[DASHBOARD_TOKEN_HEX + 1];
	char *path = NULL, *spath = NULL;
	int ret = ERR_NOTFOUND;

	*sid = NULL;
	if (!token_valid(token)) {
		error_set("unknown login link");
		return ERR_NOTFOUND;
	}
	if (token_hash(hash, token) < 0)
		return -1;
	path = xasprintf("%s/%s/login/%s", root, DASHBOARD_DIR, hash);
	if (record_read(path, &s) < 0) {
		error_set("unknown or used login link");
		goto out;
	}
	/* unlink decides who used it: of two tabs, one gets in */
	if (unlink(path) < 0) {
		error_set("login link already used");
		goto out;
	}
	if (s.expires_ms <= now_ms()) {
		error_set("login link expired");
		goto out;
	}
	ret = -1;
	if (random_hex(id) < 0 || random_hex(s.csrf) < 0 ||
	    token_hash(hash, id) < 0)
		goto out;
	s.expires_ms = now_ms() + ttl_ms;
	record_format(&b, &s);
	spath = xasprintf("%s/%s/sessions/%s", root, DASHBOARD_DIR, hash);
	if (write_file_atomic(spath, b.data, b.len, 0600) < 0)
		goto out;
	*sid = xstrdup(id);
	*out = s;
	ret = 0;
out:
	buf_release(&b);
	free(path);
	free(spath);
	return ret;
}

static char *session_path(const char *root, const char *sid)
{
	char hash[65];

	if (!token_valid(sid) || token_hash(hash, sid) < 0)
		return NULL;
	return xasprintf("%s/%s/sessions/%s", root, DASHBOARD_DIR, hash);
}

int dashboard_session_get(const char *root, const char *sid,
			  struct dashboard_session *out)
{
	char *path = session_path(root, sid);
	int ret = ERR_NOTFOUND;

	if (!path)
		return ERR_NOTFOUND;
	if (record_read(path, out) == 0) {
		if (out->expires_ms > now_ms())
			ret = 0;
		else
			unlink(path);
	}
	free(path);
	error_clear();
	return ret;
}

static void session_end(const char *root, const char *sid)
{
	char *path = session_path(root, sid);

	if (path)
		unlink(path);
	free(path);
}

int dashboard_may_reach(const char *root, const struct dashboard_session *s,
			const char *name)
{
	int r;

	if (!s || !s->key[0] || !app_name_valid(name))
		return 0;
	/* root at the host reaches every app, as the local CLI does; a
	 * key what it reaches over SSH: its apps, shared ones, or all for
	 * an admin (access.h) */
	if (s->local)
		return 1;
	r = access_check(root, name, s->key, s->admin);
	/* an app that does not exist is the page's 404, as over SSH */
	return r == 0 || r == ERR_NOTFOUND;
}

/* --- forms -------------------------------------------------------- */

static int url_decode(char *out, size_t outlen, const char *in, size_t len)
{
	size_t i, o = 0;

	for (i = 0; i < len; i++) {
		int c = (unsigned char)in[i];

		if (c == '+') {
			c = ' ';
		} else if (c == '%') {
			int h, l;

			if (i + 2 >= len)
				return ERR_INVALID;
			h = hex_value(in[i + 1]);
			l = hex_value(in[i + 2]);
			if (h < 0 || l < 0)
				return ERR_INVALID;
			c = h * 16 + l;
			i += 2;
		}
		if (c == 0 || o + 1 >= outlen)
			return ERR_INVALID;
		out[o++] = (char)c;
	}
	out[o] = '\0';
	return 0;
}

int dashboard_form_get(const char *body, size_t len, const char *key,
		       char *out, size_t outlen)
{
	size_t klen = strlen(key), i = 0;

	if (!outlen)
		return ERR_INVALID;
	out[0] = '\0';
	while (i < len) {
		size_t end = i, eq;

		while (end < len && body[end] != '&')
			end++;
		eq = i;
		while (eq < end && body[eq] != '=')
			eq++;
		if (eq - i == klen && !memcmp(body + i, key, klen)) {
			int r = url_decode(out, outlen, eq < end ?
					   body + eq + 1 : body + end,
					   eq < end ? end - eq - 1 : 0);

			if (r < 0)
				out[0] = '\0';	/* nothing half-decoded */
			return r;
		}
		i = end + 1;
	}
	return ERR_NOTFOUND;
}

/* --- supervision (engine side) ------------------------------------- */

struct dashboard {
	const struct config *cfg;
	struct loop *loop;
	char *self_exe;
	char *sock_path;
	int fd;
	pid_t pid;
	int64_t started_ms;
	uint64_t timer;
	int stopping;
};

static void start_child(struct dashboard *d);

static void restart_child(struct loop *l, void *arg)
{
	struct dashboard *d = arg;

	d->timer = 0;
	start_child(d);
}

static void child_exited(pid_t pid, int status, void *arg)
{
	struct dashboard *d = arg;
	char how[64];
	long delay;

	d->pid = 0;
	if (d->stopping)
		return;
	log_warnx("dashboard %d %s; restarting", (int)pid,
		  spawn_describe_status(status, how, sizeof(how)));
	delay = 1000 - (long)(now_ms() - d->started_ms);
	d->timer = loop_add_timer(d->loop, delay > 0 ? delay : 0,
				  restart_child, d);
}

static void start_child(struct dashboard *d)
{
	/* with the engine's command-line overrides, for the links shown */
	char *argv[] = { d->self_exe, "dashboard-serve", "--root",
			 d->cfg->root, "--http-listen", d->cfg->http_listen,
			 "--domain", d->cfg->domain, NULL };
	extern char **environ;
	struct spawn sp;

	spawn_init(&sp);
	sp.argv = argv;
	sp.envp = environ;
	sp.in = -1;
	sp.out = -1;
	sp.err = 2;
	sp.extra_fds = &d->fd;
	sp.n_extra_fds = 1;
	sp.flags = SPAWN_DIE_WITH_PARENT;
	d->started_ms = now_ms();
	if (spawn_start(&sp) < 0) {
		log_warnx("cannot start the dashboard: %s", error_last());
		d->timer = loop_add_timer(d->loop, 1000, restart_child, d);
		return;
	}
	d->pid = sp.pid;
	reaper_watch(sp.pid, child_exited, d);
}

int dashboard_start(struct dashboard **out, const struct config *cfg,
		    struct loop *l, const char *self_exe)
{
	struct sockaddr_un sa;
	struct dashboard *d;
	char *host = dashboard_host(cfg);
	mode_t old;
	int r;

	*out = NULL;
	if (!host)
		return 0;
	free(host);
	d = xcalloc(1, sizeof(*d));
	d->cfg = cfg;
	d->loop = l;
	d->self_exe = xstrdup(self_exe);
	d->sock_path = xasprintf("%s/%s", cfg->root, DASHBOARD_SOCKET);
	d->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (d->fd < 0) {
		error_setsys("socket");
		goto fail;
	}
	memset(&sa, 0, sizeof(sa));
	sa.sun_family = AF_UNIX;
	if (strlen(d->sock_path) >= sizeof(sa.sun_path)) {
		error_set("state directory path too long for '%s'",
			  DASHBOARD_SOCKET);
		goto fail;
	}
	memcpy(sa.sun_path, d->sock_path, strlen(d->sock_path) + 1);
	unlink(d->sock_path);
	old = umask(077);
	r = bind(d->fd, (struct sockaddr *)&sa, sizeof(sa));
	umask(old);
	/* nginx's workers may run as another user; a session cookie is
	 * what lets a request in, not the socket's mode */
	if (r < 0 || chmod(d->sock_path, 0666) < 0 || listen(d->fd, 64) < 0) {
		error_setsys("cannot listen on '%s'", d->sock_path);
		goto fail;
	}
	start_child(d);
	*out = d;
	return 0;
fail:
	if (d->fd >= 0)
		close(d->fd);
	free(d->sock_path);
	free(d->self_exe);
	free(d);
	return -1;
}

int dashboard_route(struct nginx *ng, const struct config *cfg)
{
	char *host = dashboard_host(cfg);
	char *sock = xasprintf("%s/%s", cfg->root, DASHBOARD_SOCKET);
	int ret = nginx_proxy_set(ng, "berth_dashboard", host, sock);

	free(host);
	free(sock);
	return ret;
}

void dashboard_stop(struct dashboard *d)
{
	int status, i;

	if (!d)
		return;
	d->stopping = 1;
	if (d->timer)
		loop_del_timer(d->loop, d->timer);
	if (d->pid > 0) {
		reaper_forget(d->pid);
		kill(d->pid, SIGTERM);
		for (i = 0; i < 100; i++) {
			if (waitpid(d->pid, &status, WNOHANG) != 0)
				break;
			usleep(50 * 1000);
		}
		if (i == 100) {
			kill(d->pid, SIGKILL);
			waitpid(d->pid, &status, 0);
		}
	}
	close(d->fd);
	unlink(d->sock_path);
	free(d->sock_path);
	free(d->self_exe);
	free(d);
}

/* --- the server --------------------------------------------------- */

static const struct dashboard_opts *opts;
static volatile sig_atomic_t server_stopping;

/* A command's answer: its data lines (for people: shown, never read
 * for meaning), its "fields" lines and the fields of its "ok" (for
 * programs: control.h). */
struct lines {
	struct strv v;
	struct strv fields;
	size_t bytes;
};

static void lines_release(struct lines *l)
{
	strv_release(&l->v);
	strv_release(&l->fields);
}

static int collect_line(void *arg, enum control_kind kind, const char *text)
{
	struct lines *l = arg;

	if (kind != CONTROL_DATA && kind != CONTROL_FIELDS)
		return 0;
	l->bytes += strlen(text);
	if (l->bytes > 8 * 1024 * 1024)
		return 0;
	strv_push(kind == CONTROL_DATA ? &l->v : &l->fields, text);
	return 0;
}

/* Run a command; 0 with lines (out->fields ends with the ok line's
 * fields), else *err (caller frees) and ERR_NOTFOUND when the engine
 * says the app (or release) does not exist ("error notfound: ..."), -1
 * for any other failure. */
static int run(struct lines *out, char **err, int argc, char *const *argv)
{
	struct control_result res;
	int r, ret = -1;

	memset(out, 0, sizeof(*out));
	r = opts->provider->call(opts->provider->ctx, argc, argv, collect_line,
				 out, &res);
	if (r == 0) {
		strv_push(&out->fields, res.fields ? res.fields : "");
		control_result_release(&res);
		return 0;
	}
	if (r > 0) {
		*err = xstrdup(res.message ? res.message : "failed");
		if (!strcmp(res.code, CONTROL_ERR_NOTFOUND))
			ret = ERR_NOTFOUND;
	} else {
		*err = xasprintf("engine not reachable: %s", error_last());
	}
	control_result_release(&res);
	lines_release(out);
	return ret;
}

static void json_str(struct buf *b, const char *s)
{
	buf_addstr(b, "\"");
	for (; s && *s; s++) {
		unsigned char c = (unsigned char)*s;

		if (c == '"' || c == '\\')
			buf_addf(b, "\\%c", c);
		else if (c < 0x20 || c == '<' || c == '>' || c == '&')
			buf_addf(b, "\\u%04x", c);
		else
			buf_add(b, s, 1);
	}
	buf_addstr(b, "\"");
}

static void html(struct buf *b, const char *s)
{
	for (; s && *s; s++) {
		switch (*s) {
		case '<': buf_addstr(b, "&lt;"); break;
		case '>': buf_addstr(b, "&gt;"); break;
		case '&': buf_addstr(b, "&amp;"); break;
		case '"': buf_addstr(b, "&quot;"); break;
		case '\'': buf_addstr(b, "&#39;"); break;
		default: buf_add(b, s, 1);
		}
	}
}

/* --- app data, from the command table's output --- */

struct app_row {
	char name[APP_NAME_MAX + 1];
	char status[24];
	int release;
	char procs[1024];	/* "web.1 web.2 worker.1" or "" */
	char last_deploy[32];	/* the live release's time, or "" */
};

struct proc_row {
	char name[64], state[24], uptime[24];
	int pid, port, restarts;
};

struct release_row {
	int number, live;
	char status[24], commit[48], time[32], buildpack[64], source[32];
};

/* One kept deploy output ("releases:output NAME --list"). */
struct deploy_row {
	int deploy, release;
	char status[16], kind[16], time[32], commit[48];
};

/* The decoded value of KEY into out (size bytes), "-" read as ""; ""
 * when it is not there. */
static void field_str(const char *fields, const char *key, char *out,
		      size_t size)
{
	struct buf v = BUF_INIT;

	if (control_field_decode(fields, key, &v) < 0 || !v.data ||
	    !strcmp(v.data, "-"))
		out[0] = '\0';
	else
		snprintf(out, size, "%s", v.data);
	buf_release(&v);
}

/* A number field in [0, 2^30), else 0. */
static int field_int(const char *fields, const char *key)
{
	long v = control_field_long(fields, key);

	return v > 0 && v < (1L << 30) ? (int)v : 0;
}

static int list_apps(struct app_row **out, size_t *n, char **err)
{
	char *argv[] = { "apps", NULL };
	struct lines l;
	size_t i;

	*out = NULL;
	*n = 0;
	if (run(&l, err, 1, argv) < 0)
		return -1;
	/* the table is for people; apps gives programs one "fields app=
	 * status= release= processes=a,b result=" line an app */
	*out = xcalloc(l.fields.n ? l.fields.n : 1, sizeof(**out));
	for (i = 0; i < l.fields.n; i++) {
		struct app_row *a = &(*out)[*n];
		const char *f = l.fields.v[i];
		char result[16];
		long v;
		char *comma;

		if (control_field(f, "app", a->name, sizeof(a->name)) < 0 ||
		    !app_name_valid(a->name) ||
		    control_field(f, "status", a->status,
				  sizeof(a->status)) < 0)
			continue;
		v = control_field_long(f, "release");
		a->release = v > 0 && v < (1L << 30) ? (int)v : 0;
		/* a pushed app whose first deploy failed is "new" to apps;
		 * here it is what it is */
		if (!strcmp(a->status, "new") &&
		    control_field(f, "result", result, sizeof(result)) == 0 &&
		    !strcmp(result, "failed"))
			snprintf(a->status, sizeof(a->status), "failed");
		if (control_field(f, "processes", a->procs,
				  sizeof(a->procs)) < 0 ||
		    !strcmp(a->procs, "-"))
			a->procs[0] = '\0';
		while ((comma = strchr(a->procs, ',')))
			*comma = ' ';
		(*n)++;
	}
	lines_release(&l);
	return 0;
}

static int list_releases(const char *name, struct release_row **out,
			 size_t *n, char **err)
{
	char nm[APP_NAME_MAX + 1];
	char *argv[] = { "releases", nm, NULL };
	struct lines l;
	int rc;
	size_t i;

	*out = NULL;
	*n = 0;
	snprintf(nm, sizeof(nm), "%s", name);
	rc = run(&l, err, 2, argv);
	if (rc < 0)
		return rc;
	/* the table is for people; releases gives programs one "fields
	 * release=N live=0|1 status= commit= time= buildpack= source="
	 * line a release (encoded), newest first, then its ok line's */
	*out = xcalloc(l.fields.n ? l.fields.n : 1, sizeof(**out));
	for (i = 0; i + 1 < l.fields.n; i++) {
		struct release_row *r = &(*out)[*n];
		const char *f = l.fields.v[i];
		char commit[sizeof(r->commit)];

		if (!(r->number = field_int(f, "release")))
			continue;
		r->live = control_field_long(f, "live") == 1;
		field_str(f, "status", r->status, sizeof(r->status));
		/* the short commit, as the table shows it */
		field_str(f, "commit", commit, sizeof(commit));
		snprintf(r->commit, sizeof(r->commit), "%.10s",
			 *commit ? commit : "-");
		field_str(f, "time", r->time, sizeof(r->time));
		if (!*r->time)
			snprintf(r->time, sizeof(r->time), "-");
		field_str(f, "buildpack", r->buildpack, sizeof(r->buildpack));
		if (!*r->buildpack)
			snprintf(r->buildpack, sizeof(r->buildpack), "-");
		field_str(f, "source", r->source, sizeof(r->source));
		if (!*r->source)
			snprintf(r->source, sizeof(r->source), "-");
		(*n)++;
	}
	lines_release(&l);
	return 0;
}

/* The kept deploy outputs, newest first. */
static int list_deploys(const char *name, struct deploy_row **out,
			size_t *n, char **err)
{
	char nm[APP_NAME_MAX + 1];
	char *argv[] = { "releases:output", nm, "--list", NULL };
	struct lines l;
	int r;
	size_t i;

	*out = NULL;
	*n = 0;
	snprintf(nm, sizeof(nm), "%s", name);
	r = run(&l, err, 3, argv);
	if (r < 0)
		return r;
	/* one "fields deploy=N release=N status= kind= time= commit="
	 * line a kept output (encoded), newest first */
	*out = xcalloc(l.fields.n ? l.fields.n : 1, sizeof(**out));
	for (i = 0; i + 1 < l.fields.n; i++) {
		struct deploy_row *d = &(*out)[*n];
		const char *f = l.fields.v[i];
		char commit[sizeof(d->commit)];

		if (!(d->deploy = field_int(f, "deploy")))
			continue;
		d->release = field_int(f, "release");
		field_str(f, "status", d->status, sizeof(d->status));
		field_str(f, "kind", d->kind, sizeof(d->kind));
		field_str(f, "time", d->time, sizeof(d->time));
		field_str(f, "commit", commit, sizeof(commit));
		snprintf(d->commit, sizeof(d->commit), "%.10s", commit);
		(*n)++;
	}
	lines_release(&l);
	return 0;
}

/* The deploy that made release n (its first record, not a restart's),
 * or 0 when none is kept. */
static int deploy_of_release(const struct deploy_row *d, size_t nd, int n)
{
	int found = 0;
	size_t i;

	for (i = 0; i < nd; i++)
		if (d[i].release == n && strcmp(d[i].kind, "restart"))
			found = d[i].deploy;	/* newest first: the last */
	return found;
}

static int list_procs(const char *name, struct app_row *app,
		      struct proc_row **out, size_t *n, char **err)
{
	char nm[APP_NAME_MAX + 1];
	char *argv[] = { "ps", nm, NULL };
	struct lines l;
	int r;
	size_t i;

	*out = NULL;
	*n = 0;
	snprintf(nm, sizeof(nm), "%s", name);
	r = run(&l, err, 2, argv);
	if (r < 0)
		return r;
	/* the table is for people; ps gives programs one "fields" line a
	 * process and the app's status and release in its "ok" */
	*out = xcalloc(l.fields.n ? l.fields.n : 1, sizeof(**out));
	snprintf(app->name, sizeof(app->name), "%s", name);
	for (i = 0; i < l.fields.n; i++) {
		struct proc_row *p = &(*out)[*n];
		const char *f = l.fields.v[i];
		long v;

		if (i + 1 == l.fields.n) {	/* the ok line's */
			if (control_field(f, "status", app->status,
					  sizeof(app->status)) < 0)
				app->status[0] = '\0';
			v = control_field_long(f, "release");
			app->release = v > 0 && v < (1L << 30) ? (int)v : 0;
			continue;
		}
		if (control_field(f, "process", p->name, sizeof(p->name)) < 0)
			continue;
		v = control_field_long(f, "pid");
		p->pid = v > 0 && v < (1L << 30) ? (int)v : 0;
		v = control_field_long(f, "port");
		p->port = v > 0 && v <= 65535 ? (int)v : 0;
		if (control_field(f, "state", p->state, sizeof(p->state)) < 0)
			p->state[0] = '\0';
		if (control_field(f, "uptime", p->uptime,
				  sizeof(p->uptime)) < 0)
			snprintf(p->uptime, sizeof(p->uptime), "-");
		v = control_field_long(f, "restarts");
		p->restarts = v > 0 && v < (1L << 30) ? (int)v : 0;
		(*n)++;
	}
	lines_release(&l);
	return 0;
}

static int64_t iso_to_ms(const char *iso)
{
	struct tm tm;
	char *end;

	memset(&tm, 0, sizeof(tm));
	end = strptime(iso, "%Y-%m-%dT%H:%M:%SZ", &tm);
	if (!end || *end)
		return 0;
	return (int64_t)timegm(&tm) * 1000;
}

static void ago(char *out, size_t len, const char *iso)
{
	int64_t t = iso_to_ms(iso), s;

	if (!t) {
		snprintf(out, len, "-");
		return;
	}
	s = (int64_t)time(NULL) - t / 1000;
	if (s < 0)
		s = 0;
	if (s < 120)
		snprintf(out, len, "%llds ago", (long long)s);
	else if (s < 7200)
		snprintf(out, len, "%lldmin ago", (long long)(s / 60));
	else if (s < 172800)
		snprintf(out, len, "%lldh ago", (long long)(s / 3600));
	else
		snprintf(out, len, "%lldd ago", (long long)(s / 86400));
}

static char *app_url(const char *name)
{
	char port[16];

	listen_port_suffix(opts->cfg, port, sizeof(port));
	return xasprintf("http://%s.%s%s/", name, opts->cfg->domain, port);
}

/* "web.1 web.2 worker.1" -> counts per type, in order of first sight. */
struct counts {
	char type[16][32];
	int n[16];
	size_t ntypes;
};

static void count_procs(struct counts *c, const char *procs)
{
	char tmp[1024], *tok, *save = NULL;
	size_t i;

	memset(c, 0, sizeof(*c));
	snprintf(tmp, sizeof(tmp), "%s", procs);
	for (save = tmp, tok = str_token(&save, " "); tok;
	     tok = str_token(&save, " ")) {
		tok[strcspn(tok, ".")] = '\0';
		for (i = 0; i < c->ntypes; i++)
			if (!strcmp(c->type[i], tok))
				break;
		if (i == c->ntypes) {
			if (c->ntypes == ARRAY_SIZE(c->type))
				continue;
			snprintf(c->type[i], sizeof(c->type[i]), "%s", tok);
			c->ntypes++;
		}
		c->n[i]++;
	}
}

/* The live release's time, for "last deploy". */
static void fill_last_deploy(struct app_row *a)
{
	struct release_row *rel = NULL;
	char *err = NULL;
	size_t n = 0, i;

	a->last_deploy[0] = '\0';
	if (list_releases(a->name, &rel, &n, &err) == 0)
		for (i = 0; i < n; i++)
			if (rel[i].live)
				snprintf(a->last_deploy, sizeof(a->last_deploy),
					 "%s", rel[i].time);
	free(err);
	free(rel);
}

/* --- numbers from "stats NAME" (appstats.h) --- */

#define MINUTES 60

struct proc_stat {
	char name[64];
	long long rss;		/* bytes, 0 when unknown */
	char cpu[16];		/* percent, or "-" */
	long long mem[MINUTES];	/* KiB, -1: no sample */
};

struct stats_view {
	int have;
	long long minute;
	long long requests[MINUTES], errors[MINUTES], p95[MINUTES];
	int crash_looping;
	int maintenance;	/* maintenance:on */
	/* the app page only: its certificate, from "certs NAME" */
	char cert_hosts[512], cert_issuer[128], cert_expires[64];
	char step[64];
	char database[80];
	long long db_bytes;	/* -1: not known (yet) */
	struct strv hosts;
	struct strv rels;	/* fields "release=N pusher=P config=C" */
	struct proc_stat *procs;
	size_t nprocs;
};

static void stats_release(struct stats_view *sv)
{
	strv_release(&sv->hosts);
	strv_release(&sv->rels);
	free(sv->procs);
	memset(sv, 0, sizeof(*sv));
}

/* 60 numbers, comma-separated ("-" is -1), of KEY in a fields line. */
static void field_series(const char *fields, const char *key,
			 long long *out)
{
	char val[MINUTES * 24];
	char *tok, *save;
	size_t i;

	for (i = 0; i < MINUTES; i++)
		out[i] = -1;
	if (control_field(fields, key, val, sizeof(val)) < 0)
		return;
	for (save = val, tok = str_token(&save, ","), i = 0;
	     tok && i < MINUTES; tok = str_token(&save, ","), i++)
		out[i] = strcmp(tok, "-") ? strtoll(tok, NULL, 10) : -1;
}

static const struct proc_stat *proc_stat_find(const struct stats_view *sv,
					      const char *name)
{
	size_t i;

	for (i = 0; i < sv->nprocs; i++)
		if (!strcmp(sv->procs[i].name, name))
			return &sv->procs[i];
	return NULL;
}

/* Errors leave sv empty (have 0): the page shows what it has. */
static void stats_get(const char *name, struct stats_view *sv)
{
	char nm[APP_NAME_MAX + 1];
	char *argv[] = { "stats", nm, NULL }, *err = NULL;
	struct lines l;
	size_t i;

	memset(sv, 0, sizeof(*sv));
	snprintf(nm, sizeof(nm), "%s", name);
	if (run(&l, &err, 2, argv) < 0) {
		free(err);
		return;
	}
	sv->have = 1;
	/* the lines are for people; stats gives programs "fields minute=N
	 * requests=A,B,.. errors=.. p95=..", one "fields process=..." line
	 * a process, one "fields host=..." a host, one "fields release=N
	 * pusher= config=" a release, and the app's state in its ok line */
	sv->procs = xcalloc(l.fields.n ? l.fields.n : 1, sizeof(*sv->procs));
	for (i = 0; i < l.fields.n; i++) {
		const char *f = l.fields.v[i];
		char host[256];
		long long v;

		if (i + 1 == l.fields.n) {	/* the ok line's */
			struct buf b = BUF_INIT;

			sv->crash_looping =
				control_field_long(f, "crash-looping") == 1;
			sv->maintenance =
				control_field_long(f, "maintenance") == 1;
			field_str(f, "step", sv->step, sizeof(sv->step));
			sv->db_bytes = -1;
			if (control_field_decode(f, "database", &b) == 0 &&
			    b.data && strcmp(b.data, "-")) {
				snprintf(sv->database, sizeof(sv->database),
					 "%s", b.data);
				v = control_field_long(f, "database-bytes");
				sv->db_bytes = v >= 0 ? v : -1;
			}
			buf_release(&b);
		} else if ((v = control_field_long(f, "minute")) >= 0) {
			sv->minute = v;
			field_series(f, "requests", sv->requests);
			field_series(f, "errors", sv->errors);
			field_series(f, "p95", sv->p95);
		} else if (control_field(f, "process",
					 sv->procs[sv->nprocs].name,
					 sizeof(sv->procs[0].name)) == 0) {
			struct proc_stat *p = &sv->procs[sv->nprocs];

			v = control_field_long(f, "rss");
			p->rss = v > 0 ? v : 0;
			if (control_field(f, "cpu", p->cpu, sizeof(p->cpu)) < 0)
				snprintf(p->cpu, sizeof(p->cpu), "-");
			field_series(f, "mem", p->mem);
			sv->nprocs++;
		} else if (control_field(f, "host", host, sizeof(host)) == 0) {
			strv_push(&sv->hosts, host);
		} else if (control_field_long(f, "release") > 0) {
			strv_push(&sv->rels, f);
		}
	}
	lines_release(&l);
}

/* The app's certificate ("certs NAME"); none or an error leaves the
 * fields empty: the page says plain HTTP. */
static void certs_get(const char *name, struct stats_view *sv)
{
	char nm[APP_NAME_MAX + 1];
	char *argv[] = { "certs", nm, NULL }, *err = NULL;
	struct lines l;
	size_t i;

	snprintf(nm, sizeof(nm), "%s", name);
	if (run(&l, &err, 2, argv) < 0) {
		free(err);
		return;
	}
	/* "fields app=NAME hosts=... issuer=... expires=..." (encoded),
	 * when it has a usable certificate; the lines are for people */
	for (i = 0; i < l.fields.n; i++) {
		const char *f = l.fields.v[i];
		struct buf v = BUF_INIT;
		char app[APP_NAME_MAX + 1];

		if (control_field(f, "app", app, sizeof(app)) < 0 ||
		    strcmp(app, name))
			continue;
		if (control_field_decode(f, "hosts", &v) == 0)
			snprintf(sv->cert_hosts, sizeof(sv->cert_hosts), "%s",
				 v.data);
		if (control_field_decode(f, "issuer", &v) == 0)
			snprintf(sv->cert_issuer, sizeof(sv->cert_issuer),
				 "%s", v.data);
		if (control_field_decode(f, "expires", &v) == 0)
			snprintf(sv->cert_expires, sizeof(sv->cert_expires),
				 "%s", v.data);
		buf_release(&v);
	}
	lines_release(&l);
}

/* Does the certificate's host list ("a, b, *.c") name host? */
static int cert_names(const struct stats_view *sv, const char *host)
{
	const char *p = sv->cert_hosts;
	size_t n = strlen(host);

	while (*p) {
		size_t len = strcspn(p, ",");
		const char *dot = strchr(host, '.');

		if ((len == n && !strncmp(p, host, n)) ||
		    (p[0] == '*' && dot && len == strlen(dot) + 1 &&
		     !strncmp(p + 1, dot, len - 1)))
			return 1;
		p += len;
		p += strspn(p, ", ");
	}
	return 0;
}

/* Requests per second and the percentage of 5xx answers over the last
 * five minutes (the current one counted for the part gone by). */
static void stats_recent(const struct stats_view *sv, double *rps,
			 double *err_pct)
{
	long long req = 0, bad = 0;
	double span = 4 * 60 + (double)(time(NULL) % 60) + 1;
	size_t i;

	for (i = MINUTES - 5; i < MINUTES; i++) {
		req += sv->requests[i] > 0 ? sv->requests[i] : 0;
		bad += sv->errors[i] > 0 ? sv->errors[i] : 0;
	}
	*rps = (double)req / span;
	*err_pct = req ? 100.0 * (double)bad / (double)req : 0;
}

static long long stats_rss(const struct stats_view *sv)
{
	long long sum = 0;
	size_t i;

	for (i = 0; i < sv->nprocs; i++)
		sum += sv->procs[i].rss;
	return sum;
}

/* CPU of all processes, percent of one core; -1 when none is known. */
static double stats_cpu(const struct stats_view *sv)
{
	double sum = -1;
	size_t i;

	for (i = 0; i < sv->nprocs; i++) {
		if (!strcmp(sv->procs[i].cpu, "-"))
			continue;
		sum = (sum < 0 ? 0 : sum) + strtod(sv->procs[i].cpu, NULL);
	}
	return sum;
}

static void human_bytes(char *out, size_t len, long long b)
{
	if (b <= 0)
		snprintf(out, len, "-");
	else if (b < 1024 * 1024)
		snprintf(out, len, "%lld KiB", b / 1024);
	else if (b < 1024LL * 1024 * 1024)
		snprintf(out, len, "%.1f MiB", (double)b / 1048576.0);
	else
		snprintf(out, len, "%.2f GiB", (double)b / 1073741824.0);
}

/* The status to show: crash-looping is worse than what "apps" says. */
static const char *shown_status(const char *status,
				const struct stats_view *sv)
{
	if (sv->crash_looping && strcmp(status, "stopped") &&
	    strcmp(status, "deploying"))
		return "crash-looping";
	return status;
}

static void json_series(struct buf *b, const long long *v, size_t n)
{
	size_t i;

	buf_addstr(b, "[");
	for (i = 0; i < n; i++) {
		if (v[i] < 0)
			buf_addf(b, "%snull", i ? "," : "");
		else
			buf_addf(b, "%s%lld", i ? "," : "", v[i]);
	}
	buf_addstr(b, "]");
}

/*
 * A small plot of one series (oldest first, < 0: no value) as inline
 * SVG: a line with its area, the newest value and the largest named in
 * its title.  No script and no outside resource: the CSP allows it.
 */
static void svg_plot(struct buf *b, const char *id, const char *title,
		     const double *v, size_t n, const char *unit)
{
	const double w = 300, h = 64, pad = 4;
	double max = 0, last = -1, top;
	size_t i, points = 0;
	int open = 0;

	for (i = 0; i < n; i++) {
		if (v[i] > max)
			max = v[i];
		if (v[i] >= 0) {
			last = v[i];
			points++;
		}
	}
	buf_addf(b, "<figure class=\"plot\"><figcaption>");
	html(b, title);
	buf_addstr(b, " <span class=\"now\">");
	if (last >= 0)
		buf_addf(b, "%.4g %s", last, unit);
	else
		buf_addstr(b, "no data");
	buf_addf(b, "</span></figcaption><svg id=\"%s\" class=\"plot\" "
		 "viewBox=\"0 0 %.0f %.0f\" preserveAspectRatio=\"none\" "
		 "role=\"img\" data-points=\"%zu\" data-max=\"%.4g\">"
		 "<title>", id, w, h, points, max);
	html(b, title);
	buf_addf(b, ", last hour, max %.4g %s</title>", max, unit);
	buf_addf(b, "<line class=\"axis\" x1=\"0\" y1=\"%.1f\" x2=\"%.0f\" "
		 "y2=\"%.1f\"/>", h - pad, w, h - pad);
	top = max;
	if (max <= 0)
		max = 1;
	/* one polyline per run of minutes that have a value */
	for (i = 0; i <= n; i++) {
		int has = i < n && v[i] >= 0;
		double x = n > 1 ? (double)i * w / (double)(n - 1) : 0;
		double y = h - pad - (has ? v[i] / max * (h - 2 * pad) : 0);

		if (has && !open) {
			buf_addstr(b, "<polyline points=\"");
			open = 1;
		}
		if (has) {
			buf_addf(b, "%.1f,%.1f ", x, y);
		} else if (open) {
			buf_addstr(b, "\"/>");
			open = 0;
		}
	}
	if (points == 1) {
		/* a single minute: a dot, or it would not show */
		for (i = 0; i < n; i++)
			if (v[i] >= 0)
				buf_addf(b, "<circle cx=\"%.1f\" cy=\"%.1f\" "
					 "r=\"2.5\"/>", n > 1 ?
					 (double)i * w / (double)(n - 1) : 0,
					 h - pad - v[i] / max * (h - 2 * pad));
	}
	buf_addf(b, "<text x=\"2\" y=\"11\">%.4g</text></svg></figure>",
		 top);
}

/* --- HTTP plumbing --- */

/* One request: its body (POST), capped. */
struct req {
	struct buf body;
	int too_big;
};

static enum MHD_Result send_buf(struct MHD_Connection *c, unsigned status,
				const char *ctype, struct buf *b,
				const char *cookie, const char *location)
{
	struct MHD_Response *resp;
	enum MHD_Result ret;
	size_t len = b->len;
	char *data = buf_detach(b);

	resp = MHD_create_response_from_buffer(len, data ? data : xstrdup(""),
					       MHD_RESPMEM_MUST_FREE);
	if (!resp)
		return MHD_NO;
	MHD_add_response_header(resp, "Content-Type", ctype);
	MHD_add_response_header(resp, "Cache-Control", "no-store");
	MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff");
	MHD_add_response_header(resp, "X-Frame-Options", "DENY");
	/* the login link must not leak to another site through Referer */
	MHD_add_response_header(resp, "Referrer-Policy", "no-referrer");
	MHD_add_response_header(resp, "Content-Security-Policy",
		"default-src 'none'; script-src 'self'; style-src 'self'; "
		"img-src 'self' data:; connect-src 'self'; form-action 'self'; "
		"frame-ancestors 'none'; base-uri 'none'");
	if (cookie)
		MHD_add_response_header(resp, "Set-Cookie", cookie);
	if (location)
		MHD_add_response_header(resp, "Location", location);
	ret = MHD_queue_response(c, status, resp);
	MHD_destroy_response(resp);
	return ret;
}

static enum MHD_Result send_json_error(struct MHD_Connection *c,
				       unsigned status, const char *msg)
{
	struct buf b = BUF_INIT;

	buf_addstr(&b, "{\"error\":");
	json_str(&b, msg);
	buf_addstr(&b, "}\n");
	return send_buf(c, status, "application/json", &b, NULL, NULL);
}

static void page_head(struct buf *b, const char *title,
		      const struct dashboard_session *s, const char *app)
{
	buf_addstr(b, "<!doctype html>\n<html lang=\"en\"><head>"
		   "<meta charset=\"utf-8\">"
		   "<meta name=\"viewport\" content=\"width=device-width,"
		   "initial-scale=1\"><title>");
	html(b, title);
	buf_addstr(b, " · berth</title>"
		   "<link rel=\"stylesheet\" href=\"/static/dashboard.css\">"
		   "<script src=\"/static/dashboard.js\" defer></script>"
		   "</head><body");
	if (s) {
		buf_addstr(b, " data-csrf=\"");
		html(b, s->csrf);
		buf_addstr(b, "\"");
	}
	if (app) {
		buf_addstr(b, " data-app=\"");
		html(b, app);
		buf_addstr(b, "\"");
	}
	buf_addstr(b, "><header><a class=\"brand\" href=\"/\">berth</a>");
	if (s) {
		buf_addstr(b, "<span class=\"who\">");
		html(b, s->local ? "root (local)" : s->key);
		buf_addstr(b, "</span><form method=\"post\" action=\"/logout\">"
			   "<input type=\"hidden\" name=\"csrf\" value=\"");
		html(b, s->csrf);
		buf_addstr(b, "\"><button>Log out</button></form>");
	}
	buf_addstr(b, "</header><main>");
}

static void page_foot(struct buf *b)
{
	buf_addstr(b, "</main></body></html>\n");
}

static enum MHD_Result send_message_page(struct MHD_Connection *c,
					 unsigned status, const char *title,
					 const char *msg)
{
	struct buf b = BUF_INIT;

	page_head(&b, title, NULL, NULL);
	buf_addstr(&b, "<h1>");
	html(&b, title);
	buf_addstr(&b, "</h1><p class=\"message\">");
	html(&b, msg);
	buf_addstr(&b, "</p>");
	page_foot(&b);
	return send_buf(c, status, "text/html; charset=utf-8", &b, NULL, NULL);
}

static void csrf_field(struct buf *b, const struct dashboard_session *s)
{
	buf_addstr(b, "<input type=\"hidden\" name=\"csrf\" value=\"");
	html(b, s->csrf);
	buf_addstr(b, "\">");
}

/* --- flash: an action's output, shown once on the next page --- */

static pthread_mutex_t flash_lock = PTHREAD_MUTEX_INITIALIZER;
static struct {
	char csrf[DASHBOARD_TOKEN_HEX + 1];
	char *text;
	int failed;
} flashes[32];

static void flash_set(const struct dashboard_session *s, const char *text,
		      int failed)
{
	size_t i, slot = 0;

	pthread_mutex_lock(&flash_lock);
	for (i = 0; i < ARRAY_SIZE(flashes); i++) {
		if (!strcmp(flashes[i].csrf, s->csrf) || !flashes[i].text) {
			slot = i;
			break;
		}
		slot = (size_t)rand() % ARRAY_SIZE(flashes);
	}
	free(flashes[slot].text);
	snprintf(flashes[slot].csrf, sizeof(flashes[slot].csrf), "%s", s->csrf);
	flashes[slot].text = xstrdup(text);
	flashes[slot].failed = failed;
	pthread_mutex_unlock(&flash_lock);
}

static char *flash_take(const struct dashboard_session *s, int *failed)
{
	char *t = NULL;
	size_t i;

	pthread_mutex_lock(&flash_lock);
	for (i = 0; i < ARRAY_SIZE(flashes); i++) {
		if (flashes[i].text && !strcmp(flashes[i].csrf, s->csrf)) {
			t = flashes[i].text;
			*failed = flashes[i].failed;
			flashes[i].text = NULL;
			flashes[i].csrf[0] = '\0';
			break;
		}
	}
	pthread_mutex_unlock(&flash_lock);
	return t;
}

/* --- pages and JSON --- */

static void procs_summary(struct buf *b, const char *procs, int as_json)
{
	struct counts cn;
	size_t i;

	count_procs(&cn, procs);
	if (as_json)
		buf_addstr(b, "{");
	for (i = 0; i < cn.ntypes; i++) {
		if (as_json) {
			buf_addstr(b, i ? "," : "");
			json_str(b, cn.type[i]);
			buf_addf(b, ":%d", cn.n[i]);
		} else {
			buf_addstr(b, i ? " " : "");
			html(b, cn.type[i]);
			buf_addf(b, "&nbsp;×%d", cn.n[i]);
		}
	}
	if (as_json)
		buf_addstr(b, "}");
	else if (!cn.ntypes)
		buf_addstr(b, "-");
}

static const char *reach_note =
	"A key sees the apps it created and those shared with it (sharing APP add KEYNAME); admin keys see every app.";

static enum MHD_Result apps_page(struct MHD_Connection *c,
				 const struct dashboard_session *s, int json)
{
	struct app_row *apps = NULL;
	struct buf b = BUF_INIT;
	char *err = NULL;
	size_t n = 0, i, k, shown = 0;
	enum MHD_Result ret;

	if (list_apps(&apps, &n, &err) < 0) {
		ret = json ? send_json_error(c, 502, err) :
			     send_message_page(c, 502, "Engine error", err);
		free(err);
		return ret;
	}
	if (json)
		buf_addstr(&b, "{\"apps\":[");
	else {
		page_head(&b, "Apps", s, NULL);
		buf_addstr(&b, "<h1>Apps</h1><table class=\"apps\" id=\"apps\">"
			   "<thead><tr><th>App</th><th>Status</th>"
			   "<th>Release</th><th>Processes</th><th>URL</th>"
			   "<th>Last deploy</th><th>Req/s</th><th>5xx</th>"
			   "<th>Memory</th><th>CPU</th></tr></thead><tbody>");
	}
	for (i = 0; i < n; i++) {
		struct app_row *a = &apps[i];
		struct stats_view sv;
		char *url, mem[32];
		char when[32];
		const char *status;
		double rps, errp, cpu;

		if (!dashboard_may_reach(opts->cfg->root, s, a->name))
			continue;
		fill_last_deploy(a);
		stats_get(a->name, &sv);
		stats_recent(&sv, &rps, &errp);
		cpu = stats_cpu(&sv);
		human_bytes(mem, sizeof(mem), stats_rss(&sv));
		status = shown_status(a->status, &sv);
		url = app_url(a->name);
		ago(when, sizeof(when), a->last_deploy);
		if (json) {
			buf_addstr(&b, shown ? ",{\"name\":" : "{\"name\":");
			json_str(&b, a->name);
			buf_addstr(&b, ",\"status\":");
			json_str(&b, status);
			buf_addf(&b, ",\"release\":%d,\"processes\":", a->release);
			procs_summary(&b, a->procs, 1);
			buf_addstr(&b, ",\"url\":");
			json_str(&b, url);
			buf_addstr(&b, ",\"hosts\":[");
			for (k = 0; k < sv.hosts.n; k++) {
				buf_addstr(&b, k ? "," : "");
				json_str(&b, sv.hosts.v[k]);
			}
			buf_addstr(&b, "]");
			buf_addstr(&b, ",\"last_deploy\":");
			json_str(&b, a->last_deploy);
			buf_addstr(&b, ",\"last_deploy_ago\":");
			json_str(&b, when);
			buf_addstr(&b, ",\"step\":");
			json_str(&b, sv.step);
			buf_addf(&b, ",\"rps\":%.3f,\"error_rate\":%.2f,"
				 "\"memory_bytes\":%lld,\"cpu\":", rps, errp,
				 stats_rss(&sv));
			if (cpu < 0)
				buf_addstr(&b, "null");
			else
				buf_addf(&b, "%.1f", cpu);
			buf_addstr(&b, "}");
		} else {
			buf_addstr(&b, "<tr data-app=\"");
			html(&b, a->name);
			buf_addstr(&b, "\"><td class=\"name\"><a href=\"/apps/");
			html(&b, a->name);
			buf_addstr(&b, "\">");
			html(&b, a->name);
			buf_addstr(&b, "</a></td><td class=\"status\">"
				   "<span class=\"badge s-");
			html(&b, status);
			buf_addstr(&b, "\">");
			html(&b, status);
			if (sv.step[0]) {
				buf_addstr(&b, ": ");
				html(&b, sv.step);
			}
			buf_addstr(&b, "</span></td><td class=\"release\">");
			if (a->release)
				buf_addf(&b, "v%d", a->release);
			else
				buf_addstr(&b, "-");
			buf_addstr(&b, "</td><td class=\"procs\">");
			procs_summary(&b, a->procs, 0);
			buf_addstr(&b, "</td><td class=\"url\"><a href=\"");
			html(&b, url);
			buf_addstr(&b, "\">");
			html(&b, url);
			buf_addstr(&b, "</a>");
			/* its other hosts (domains:add, app.yaml) */
			for (k = 0; k < sv.hosts.n; k++) {
				const char *h = strstr(url, "://");
				size_t hl;

				h = h ? h + 3 : url;
				hl = strcspn(h, ":/");
				if (strlen(sv.hosts.v[k]) == hl &&
				    !strncmp(h, sv.hosts.v[k], hl))
					continue;
				buf_addstr(&b, " <span class=\"host\">");
				html(&b, sv.hosts.v[k]);
				buf_addstr(&b, "</span>");
			}
			buf_addstr(&b, "</td><td class=\"deployed\">");
			html(&b, when);
			buf_addf(&b, "</td><td class=\"rps\">%.2f</td>"
				 "<td class=\"errors\">%.1f%%</td>"
				 "<td class=\"mem\">", rps, errp);
			html(&b, mem);
			buf_addstr(&b, "</td><td class=\"cpu\">");
			if (cpu < 0)
				buf_addstr(&b, "-");
			else
				buf_addf(&b, "%.1f%%", cpu);
			buf_addstr(&b, "</td></tr>");
		}
		shown++;
		free(url);
		stats_release(&sv);
	}
	if (json) {
		buf_addstr(&b, "],\"note\":");
		json_str(&b, reach_note);
		buf_addstr(&b, "}\n");
	} else {
		buf_addstr(&b, "</tbody></table>");
		if (!shown)
			buf_addstr(&b, "<p class=\"empty\">No apps yet: push "
				   "one with <code>git push deploy main</code>."
				   "</p>");
		buf_addstr(&b, "<p class=\"note\">");
		html(&b, reach_note);
		buf_addstr(&b, "</p>");
		page_foot(&b);
	}
	free(apps);
	return send_buf(c, 200, json ? "application/json" :
			"text/html; charset=utf-8", &b, NULL, NULL);
}

static int config_keys(const char *name, struct strv *keys, char **err)
{
	char nm[APP_NAME_MAX + 1];
	char *argv[] = { "config", nm, NULL };
	struct lines l;
	int r;
	size_t i;

	snprintf(nm, sizeof(nm), "%s", name);
	r = run(&l, err, 2, argv);
	if (r < 0)
		return r;
	/* one "fields var=KEY=VALUE" a var; the last fields are the ok's */
	for (i = 0; i + 1 < l.fields.n; i++) {
		struct buf var = BUF_INIT;
		char *eq;

		if (control_field_decode(l.fields.v[i], "var", &var) == 0 &&
		    (eq = strchr(var.data, '='))) {
			*eq = '\0';
			if (env_key_valid(var.data))
				strv_push(keys, var.data);
		}
		buf_release(&var);
	}
	lines_release(&l);
	return 0;
}

/* Who pushed release n and what config it changed, from the stats. */
static void rel_extra(const struct stats_view *sv, int n, char *pusher,
		      size_t plen, char *conf, size_t clen)
{
	size_t i;

	snprintf(pusher, plen, "-");
	snprintf(conf, clen, "-");
	for (i = 0; i < sv->rels.n; i++) {
		const char *f = sv->rels.v[i];

		/* "release=N pusher=P config=C" (encoded) */
		if (control_field_long(f, "release") != n)
			continue;
		field_str(f, "pusher", pusher, plen);
		if (!*pusher)
			snprintf(pusher, plen, "-");
		field_str(f, "config", conf, clen);
		if (!*conf)
			snprintf(conf, clen, "-");
		return;
	}
}

static void deploy_json(struct buf *b, const struct deploy_row *d)
{
	buf_addf(b, "{\"deploy\":%d,\"release\":", d->deploy);
	if (d->release)
		buf_addf(b, "%d", d->release);
	else
		buf_addstr(b, "null");
	buf_addstr(b, ",\"status\":");
	json_str(b, d->status);
	buf_addstr(b, ",\"kind\":");
	json_str(b, d->kind);
	buf_addstr(b, ",\"time\":");
	json_str(b, d->time);
	buf_addstr(b, ",\"commit\":");
	json_str(b, d->commit);
	buf_addstr(b, "}");
}

static void app_json(struct buf *b, const struct app_row *a,
		     const struct proc_row *p, size_t np,
		     const struct release_row *r, size_t nr,
		     const struct deploy_row *dr, size_t nd,
		     const struct strv *keys, const struct stats_view *sv)
{
	char *url = app_url(a->name);
	char pusher[80], conf[512];
	double rps, errp, cpu = stats_cpu(sv);
	size_t i;

	stats_recent(sv, &rps, &errp);
	buf_addstr(b, "{\"name\":");
	json_str(b, a->name);
	buf_addstr(b, ",\"status\":");
	json_str(b, shown_status(a->status, sv));
	buf_addf(b, ",\"release\":%d,\"url\":", a->release);
	json_str(b, url);
	buf_addstr(b, ",\"processes\":[");
	for (i = 0; i < np; i++) {
		buf_addstr(b, i ? ",{\"name\":" : "{\"name\":");
		json_str(b, p[i].name);
		buf_addf(b, ",\"pid\":%d,\"port\":%d,\"state\":", p[i].pid,
			 p[i].port > 0 ? p[i].port : 0);
		json_str(b, p[i].state);
		buf_addstr(b, ",\"uptime\":");
		json_str(b, p[i].uptime);
		buf_addf(b, ",\"restarts\":%d", p[i].restarts);
		{
			const struct proc_stat *ps = proc_stat_find(
				sv, p[i].name);

			buf_addf(b, ",\"rss_bytes\":%lld,\"cpu\":",
				 ps ? ps->rss : 0);
			if (ps && strcmp(ps->cpu, "-"))
				buf_addstr(b, ps->cpu);
			else
				buf_addstr(b, "null");
			buf_addstr(b, ",\"memory_kib\":");
			if (ps)
				json_series(b, ps->mem, MINUTES);
			else
				buf_addstr(b, "[]");
		}
		buf_addstr(b, "}");
	}
	buf_addstr(b, "],\"releases\":[");
	for (i = 0; i < nr; i++) {
		buf_addf(b, "%s{\"release\":%d,\"live\":%s,\"status\":",
			 i ? "," : "", r[i].number, r[i].live ? "true" : "false");
		json_str(b, r[i].status);
		buf_addstr(b, ",\"commit\":");
		json_str(b, r[i].commit);
		buf_addstr(b, ",\"time\":");
		json_str(b, r[i].time);
		buf_addstr(b, ",\"buildpack\":");
		json_str(b, r[i].buildpack);
		buf_addstr(b, ",\"source\":");
		json_str(b, r[i].source);
		rel_extra(sv, r[i].number, pusher, sizeof(pusher), conf,
			  sizeof(conf));
		buf_addstr(b, ",\"pusher\":");
		json_str(b, pusher);
		buf_addstr(b, ",\"config_changes\":");
		json_str(b, strcmp(conf, "-") ? conf : "");
		if (deploy_of_release(dr, nd, r[i].number))
			buf_addf(b, ",\"output\":%d",
				 deploy_of_release(dr, nd, r[i].number));
		else
			buf_addstr(b, ",\"output\":null");
		buf_addstr(b, "}");
	}
	buf_addstr(b, "],\"deploys\":[");
	for (i = 0; i < nd; i++) {
		buf_addstr(b, i ? "," : "");
		deploy_json(b, &dr[i]);
	}
	buf_addstr(b, "],\"config\":[");
	for (i = 0; i < keys->n; i++) {
		buf_addstr(b, i ? "," : "");
		json_str(b, keys->v[i]);
	}
	buf_addstr(b, "]");
	buf_addstr(b, ",\"step\":");
	json_str(b, sv->step);
	buf_addf(b, ",\"maintenance\":%s", sv->maintenance ? "true" : "false");
	buf_addstr(b, ",\"hosts\":[");
	for (i = 0; i < sv->hosts.n; i++) {
		buf_addstr(b, i ? "," : "");
		json_str(b, sv->hosts.v[i]);
	}
	buf_addstr(b, "],\"certificates\":[");
	if (sv->cert_hosts[0]) {
		buf_addstr(b, "{\"hosts\":");
		json_str(b, sv->cert_hosts);
		buf_addstr(b, ",\"issuer\":");
		json_str(b, sv->cert_issuer);
		buf_addstr(b, ",\"expires\":");
		json_str(b, sv->cert_expires);
		buf_addstr(b, "}");
	}
	buf_addstr(b, "],\"database\":");
	if (sv->database[0])
		json_str(b, sv->database);
	else
		buf_addstr(b, "null");
	if (sv->database[0] && sv->db_bytes >= 0)
		buf_addf(b, ",\"database_bytes\":%lld", sv->db_bytes);
	else
		buf_addstr(b, ",\"database_bytes\":null");
	buf_addf(b, ",\"rps\":%.3f,\"error_rate\":%.2f,"
		 "\"memory_bytes\":%lld,\"cpu\":", rps, errp, stats_rss(sv));
	if (cpu < 0)
		buf_addstr(b, "null");
	else
		buf_addf(b, "%.1f", cpu);
	buf_addf(b, ",\"stats\":{\"minute\":%lld,\"requests\":",
		 sv->minute);
	json_series(b, sv->requests, MINUTES);
	buf_addstr(b, ",\"errors\":");
	json_series(b, sv->errors, MINUTES);
	buf_addstr(b, ",\"p95_ms\":");
	json_series(b, sv->p95, MINUTES);
	buf_addstr(b, "}");
	buf_addstr(b, "}\n");
	free(url);
}

static void action_button(struct buf *b, const struct dashboard_session *s,
			  const char *app, const char *action,
			  const char *label, const char *confirm)
{
	buf_addstr(b, "<form method=\"post\" class=\"action\" action=\"/apps/");
	html(b, app);
	buf_addf(b, "/%s\"", action);
	if (confirm) {
		buf_addstr(b, " data-confirm=\"");
		html(b, confirm);
		buf_addstr(b, "\"");
	}
	buf_addstr(b, ">");
	csrf_field(b, s);
	buf_addf(b, "<button name=\"do\" value=\"%s\">", action);
	html(b, label);
	buf_addstr(b, "</button></form>");
}

/* A link to a deploy's output: the page without script, the viewer
 * below with it. */
static void output_link(struct buf *b, const char *app, int deploy)
{
	buf_addstr(b, "<a class=\"output\" href=\"/apps/");
	html(b, app);
	buf_addf(b, "/deploys/%d\" data-deploy=\"%d\" id=\"output-%d\">"
		 "Output</a>", deploy, deploy, deploy);
}

static void app_html(struct buf *b, const struct dashboard_session *s,
		     const struct app_row *a, const struct proc_row *p,
		     size_t np, const struct release_row *r, size_t nr,
		     const struct deploy_row *dr, size_t nd,
		     const struct strv *keys, const struct stats_view *sv)
{
	char *url = app_url(a->name), *flash;
	const char *status = shown_status(a->status, sv);
	struct buf procs = BUF_INIT;
	char pusher[80], conf[512];
	double series[MINUTES];
	int failed = 0;
	size_t i, pk;

	page_head(b, a->name, s, a->name);
	buf_addstr(b, "<h1>");
	html(b, a->name);
	buf_addstr(b, " <span id=\"status\" class=\"badge s-");
	html(b, status);
	buf_addstr(b, "\">");
	html(b, status);
	buf_addstr(b, "</span> <span id=\"step\" class=\"step\">");
	html(b, sv->step);
	buf_addstr(b, "</span></h1><p class=\"summary\">Live release "
		   "<b id=\"release\">");
	if (a->release)
		buf_addf(b, "v%d", a->release);
	else
		buf_addstr(b, "none");
	buf_addstr(b, "</b> · <a href=\"");
	html(b, url);
	buf_addstr(b, "\">");
	html(b, url);
	buf_addstr(b, "</a></p>");
	flash = flash_take(s, &failed);
	if (flash) {
		buf_addf(b, "<pre class=\"flash%s\" id=\"flash\">",
			 failed ? " failed" : "");
		html(b, flash);
		buf_addstr(b, "</pre>");
		free(flash);
	}

	buf_addstr(b, "<section><h2>Actions</h2><div class=\"actions\">");
	action_button(b, s, a->name, "restart", "Restart", NULL);
	if (!strcmp(a->status, "stopped"))
		action_button(b, s, a->name, "start", "Start", NULL);
	else
		action_button(b, s, a->name, "stop", "Stop",
			      "Stop every process of this app?");
	if (sv->maintenance)
		action_button(b, s, a->name, "maintenance:off",
			      "End maintenance", NULL);
	else
		action_button(b, s, a->name, "maintenance:on", "Maintenance",
			      "Answer every request with a 503 maintenance page?");
	for (i = 0; i < np; i++)
		buf_addf(&procs, "%s%s", procs.len ? " " : "", p[i].name);
	buf_addstr(b, "<form method=\"post\" class=\"action scale\" "
		   "action=\"/apps/");
	html(b, a->name);
	buf_addstr(b, "/scale\">");
	csrf_field(b, s);
	buf_addstr(b, "<input name=\"scale\" aria-label=\"scale\" "
		   "placeholder=\"web=2 worker=1\" value=\"");
	{
		struct counts cn;
		size_t k;

		count_procs(&cn, procs.len ? procs.data : "");
		for (k = 0; k < cn.ntypes; k++) {
			buf_addstr(b, k ? " " : "");
			html(b, cn.type[k]);
			buf_addf(b, "=%d", cn.n[k]);
		}
	}
	buf_addstr(b, "\"><button name=\"do\" value=\"scale\">Scale</button>"
		   "</form></div></section>");
	buf_release(&procs);

	/* the plots: per minute over the last hour */
	buf_addstr(b, "<section><h2>Last hour</h2><div class=\"plots\">");
	for (i = 0; i < MINUTES; i++)
		series[i] = sv->requests[i] > 0 ? (double)sv->requests[i] / 60 :
			    (sv->have ? 0 : -1);
	/* the current minute has only run part of its 60 s */
	if (series[MINUTES - 1] > 0)
		series[MINUTES - 1] = (double)sv->requests[MINUTES - 1] /
				      (double)(time(NULL) % 60 + 1);
	svg_plot(b, "plot-requests", "Requests", series, MINUTES, "req/s");
	for (i = 0; i < MINUTES; i++)
		series[i] = sv->requests[i] > 0 ?
			100.0 * (double)(sv->errors[i] > 0 ? sv->errors[i] : 0) /
			(double)sv->requests[i] : (sv->have ? 0 : -1);
	svg_plot(b, "plot-errors", "5xx answers", series, MINUTES, "%");
	for (i = 0; i < MINUTES; i++)
		series[i] = sv->p95[i] >= 0 ? (double)sv->p95[i] : -1;
	svg_plot(b, "plot-p95", "p95 service time", series, MINUTES, "ms");
	for (pk = 0; pk < sv->nprocs; pk++) {
		char id[96], title[96];

		for (i = 0; i < MINUTES; i++)
			series[i] = sv->procs[pk].mem[i] >= 0 ?
				(double)sv->procs[pk].mem[i] / 1024 : -1;
		snprintf(id, sizeof(id), "plot-mem-%s", sv->procs[pk].name);
		snprintf(title, sizeof(title), "Memory of %s",
			 sv->procs[pk].name);
		svg_plot(b, id, title, series, MINUTES, "MiB");
	}
	buf_addstr(b, "</div></section>");

	buf_addstr(b, "<section><h2>Processes</h2><table id=\"procs\"><thead>"
		   "<tr><th>Process</th><th>PID</th><th>Port</th>"
		   "<th>State</th><th>Uptime</th><th>Restarts</th>"
		   "<th>Memory</th><th>CPU</th></tr></thead><tbody>");
	for (i = 0; i < np; i++) {
		const struct proc_stat *ps = proc_stat_find(sv,
						      p[i].name);
		char mem[32];

		human_bytes(mem, sizeof(mem), ps ? ps->rss : 0);
		buf_addstr(b, "<tr><td>");
		html(b, p[i].name);
		buf_addf(b, "</td><td>%d</td><td>", p[i].pid);
		if (p[i].port > 0)
			buf_addf(b, "%d", p[i].port);
		else
			buf_addstr(b, "-");
		buf_addstr(b, "</td><td>");
		html(b, p[i].state);
		buf_addstr(b, "</td><td>");
		html(b, p[i].uptime);
		buf_addf(b, "</td><td>%d</td><td class=\"mem\" data-proc=\"",
			 p[i].restarts);
		html(b, p[i].name);
		buf_addstr(b, "\">");
		html(b, mem);
		buf_addstr(b, "</td><td class=\"cpu\" data-proc=\"");
		html(b, p[i].name);
		buf_addstr(b, "\">");
		if (ps && strcmp(ps->cpu, "-")) {
			html(b, ps->cpu);
			buf_addstr(b, "%");
		} else {
			buf_addstr(b, "-");
		}
		buf_addstr(b, "</td></tr>");
	}
	if (!np)
		buf_addstr(b, "<tr><td colspan=\"8\">no processes</td></tr>");
	buf_addstr(b, "</tbody></table></section>");

	buf_addstr(b, "<section><h2>Releases</h2><table id=\"releases\">"
		   "<thead><tr><th>Release</th><th>Status</th><th>Commit</th>"
		   "<th>Time</th><th>Pushed by</th><th>Buildpack</th>"
		   "<th>Source</th><th>Config changes</th><th>Output</th>"
		   "<th></th></tr></thead><tbody>");
	for (i = 0; i < nr; i++) {
		char when[32];

		ago(when, sizeof(when), r[i].time);
		buf_addf(b, "<tr data-release=\"%d\"%s><td>v%d</td><td>",
			 r[i].number, r[i].live ? " class=\"live\"" : "",
			 r[i].number);
		html(b, r[i].status);
		buf_addstr(b, "</td><td><code>");
		html(b, r[i].commit);
		buf_addstr(b, "</code></td><td title=\"");
		html(b, r[i].time);
		buf_addstr(b, "\">");
		html(b, when);
		rel_extra(sv, r[i].number, pusher, sizeof(pusher), conf,
			  sizeof(conf));
		buf_addstr(b, "</td><td class=\"pusher\">");
		html(b, pusher);
		buf_addstr(b, "</td><td>");
		html(b, r[i].buildpack);
		buf_addstr(b, "</td><td>");
		html(b, r[i].source);
		buf_addstr(b, "</td><td class=\"config-changes\"><code>");
		html(b, conf);
		buf_addstr(b, "</code></td><td>");
		if (deploy_of_release(dr, nd, r[i].number))
			output_link(b, a->name,
				    deploy_of_release(dr, nd, r[i].number));
		else
			buf_addstr(b, "-");
		buf_addstr(b, "</td><td>");
		if (!r[i].live) {
			buf_addstr(b, "<form method=\"post\" class=\"action\" "
				   "action=\"/apps/");
			html(b, a->name);
			buf_addf(b, "/rollback\" data-confirm=\"Roll back to "
				 "v%d?\">", r[i].number);
			csrf_field(b, s);
			buf_addf(b, "<input type=\"hidden\" name=\"release\" "
				 "value=\"%d\"><button name=\"do\" "
				 "value=\"rollback\" class=\"rollback\" "
				 "id=\"rollback-v%d\">Roll back</button></form>",
				 r[i].number, r[i].number);
		}
		buf_addstr(b, "</td></tr>");
	}
	buf_addstr(b, "</tbody></table></section>");

	buf_addstr(b, "<section><h2>Hosts and database</h2>"
		   "<table id=\"hosts\"><tbody>");
	for (i = 0; i < sv->hosts.n; i++) {
		buf_addstr(b, "<tr><td>Host</td><td class=\"host\">");
		html(b, sv->hosts.v[i]);
		buf_addstr(b, "</td><td class=\"cert\">");
		if (cert_names(sv, sv->hosts.v[i])) {
			buf_addstr(b, "HTTPS, expires ");
			html(b, sv->cert_expires);
			buf_addstr(b, " (");
			html(b, sv->cert_issuer);
			buf_addstr(b, ")");
		} else {
			buf_addstr(b, "no certificate (http)");
		}
		buf_addstr(b, "</td></tr>");
	}
	buf_addstr(b, "<tr><td>Database</td><td id=\"database\" "
		   "colspan=\"2\">");
	if (sv->database[0]) {
		char size[32];

		html(b, sv->database);
		human_bytes(size, sizeof(size), sv->db_bytes);
		buf_addstr(b, " · <span id=\"database-size\">");
		html(b, sv->db_bytes >= 0 ? size : "size not known yet");
		buf_addstr(b, "</span>");
	} else {
		buf_addstr(b, "none");
	}
	buf_addstr(b, "</td></tr></tbody></table></section>");

	buf_addstr(b, "<section><h2>Config</h2><table id=\"config\"><tbody>");
	for (i = 0; i < keys->n; i++) {
		buf_addstr(b, "<tr><td><code>");
		html(b, keys->v[i]);
		buf_addstr(b, "</code></td><td><span class=\"secret\">hidden"
			   "</span> <button class=\"reveal\" data-key=\"");
		html(b, keys->v[i]);
		buf_addstr(b, "\">Show</button></td></tr>");
	}
	if (!keys->n)
		buf_addstr(b, "<tr><td>no config vars</td></tr>");
	buf_addstr(b, "</tbody></table></section>");

	/* the sources logs --source takes (logger_source_matches()):
	 * every process, the router, the deploy scripts, cron and run
	 * processes, berth's own lines, then each type and process */
	buf_addstr(b, "<section><h2>Logs</h2><div class=\"logbar\">"
		   "<select id=\"log-source\" aria-label=\"source\">"
		   "<option value=\"\">all sources</option>"
		   "<option value=\"app\">app (every process)</option>"
		   "<option value=\"router\">router</option>"
		   "<option value=\"release\">release</option>"
		   "<option value=\"cron\">cron</option>"
		   "<option value=\"run\">run</option>"
		   "<option value=\"berth\">berth (deploys)</option>"
		   "<option value=\"build\">build</option>");
	{
		struct counts cn;
		size_t k;

		for (i = 0; i < np; i++)
			buf_addf(&procs, "%s%s", procs.len ? " " : "",
				 p[i].name);
		count_procs(&cn, procs.len ? procs.data : "");
		for (k = 0; k < cn.ntypes; k++) {
			if (!strcmp(cn.type[k], "cron") ||
			    !strcmp(cn.type[k], "run"))
				continue;
			buf_addstr(b, "<option>");
			html(b, cn.type[k]);
			buf_addstr(b, "</option>");
		}
		buf_release(&procs);
	}
	for (i = 0; i < np; i++) {
		buf_addstr(b, "<option>");
		html(b, p[i].name);
		buf_addstr(b, "</option>");
	}
	buf_addstr(b, "</select><input id=\"log-search\" type=\"search\" "
		   "placeholder=\"search\" aria-label=\"search\">"
		   "<button id=\"log-pause\" type=\"button\">Pause</button>"
		   "<span id=\"log-state\"></span></div>"
		   "<pre id=\"log\" class=\"log\"></pre></section>");
	buf_addstr(b, "<section><h2>Deploys</h2><p class=\"note\">The "
		   "output of each build and deploy, as its pusher saw it; "
		   "one in progress shows its lines as they come.</p>"
		   "<table id=\"deploys\"><thead><tr><th>Deploy</th>"
		   "<th>Release</th><th>Status</th><th>Kind</th>"
		   "<th>Time</th><th>Commit</th><th>Output</th></tr></thead>"
		   "<tbody>");
	for (i = 0; i < nd; i++) {
		char when[32];

		ago(when, sizeof(when), dr[i].time);
		buf_addf(b, "<tr data-deploy=\"%d\"><td>#%d</td><td>",
			 dr[i].deploy, dr[i].deploy);
		if (dr[i].release)
			buf_addf(b, "v%d", dr[i].release);
		else
			buf_addstr(b, "none");
		buf_addstr(b, "</td><td><span class=\"badge d-");
		html(b, dr[i].status);
		buf_addstr(b, "\">");
		html(b, dr[i].status);
		buf_addstr(b, "</span></td><td>");
		html(b, dr[i].kind);
		buf_addstr(b, "</td><td title=\"");
		html(b, dr[i].time);
		buf_addstr(b, "\">");
		html(b, when);
		buf_addstr(b, "</td><td><code>");
		snprintf(when, sizeof(when), "%.10s",
			 dr[i].commit[0] ? dr[i].commit : "-");
		html(b, when);
		buf_addstr(b, "</code></td><td>");
		output_link(b, a->name, dr[i].deploy);
		buf_addstr(b, "</td></tr>");
	}
	if (!nd)
		buf_addstr(b, "<tr><td colspan=\"7\">no deploys yet</td></tr>");
	buf_addstr(b, "</tbody></table><p class=\"note\">"
		   "<b id=\"deploy-title\"></b> "
		   "<span id=\"deploy-state\"></span></p>"
		   "<pre id=\"deploy-log\" class=\"log deploy\"></pre>"
		   "</section>");
	page_foot(b);
	free(url);
}

static enum MHD_Result app_page(struct MHD_Connection *c,
				const struct dashboard_session *s,
				const char *name, int json)
{
	struct app_row a;
	struct proc_row *p = NULL;
	struct release_row *r = NULL;
	struct deploy_row *dr = NULL;
	struct strv keys = STRV_INIT;
	struct stats_view sv;
	struct buf b = BUF_INIT;
	char *err = NULL;
	size_t np = 0, nr = 0, nd = 0;
	enum MHD_Result ret;
	int failed;

	memset(&a, 0, sizeof(a));
	memset(&sv, 0, sizeof(sv));
	if ((failed = list_procs(name, &a, &p, &np, &err)) < 0 ||
	    (failed = list_releases(name, &r, &nr, &err)) < 0 ||
	    (failed = list_deploys(name, &dr, &nd, &err)) < 0 ||
	    (failed = config_keys(name, &keys, &err)) < 0) {
		/* the engine's "error notfound": the page's 404 */
		unsigned st = failed == ERR_NOTFOUND ? 404 : 502;

		ret = json ? send_json_error(c, st, err) :
			     send_message_page(c, st, "Cannot show app", err);
		goto out;
	}
	/* a pushed app whose first deploy failed is "new" to ps */
	if (!strcmp(a.status, "new") && nd && !strcmp(dr[0].status, "failed"))
		snprintf(a.status, sizeof(a.status), "failed");
	stats_get(name, &sv);
	certs_get(name, &sv);
	if (json)
		app_json(&b, &a, p, np, r, nr, dr, nd, &keys, &sv);
	else
		app_html(&b, s, &a, p, np, r, nr, dr, nd, &keys, &sv);
	ret = send_buf(c, 200, json ? "application/json" :
		       "text/html; charset=utf-8", &b, NULL, NULL);
out:
	free(err);
	free(p);
	free(r);
	free(dr);
	strv_release(&keys);
	stats_release(&sv);
	return ret;
}

static enum MHD_Result config_value(struct MHD_Connection *c,
				    const char *name, const char *key)
{
	char nm[APP_NAME_MAX + 1], k[256];
	char *argv[] = { "config", nm, "get", k, NULL };
	struct buf b = BUF_INIT;
	struct lines l;
	char *err = NULL;
	enum MHD_Result ret;

	if (!env_key_valid(key) || strlen(key) >= sizeof(k))
		return send_json_error(c, 400, "invalid config key");
	snprintf(nm, sizeof(nm), "%s", name);
	snprintf(k, sizeof(k), "%s", key);
	if (run(&l, &err, 4, argv) < 0) {
		ret = send_json_error(c, 404, err);
		free(err);
		return ret;
	}
	buf_addstr(&b, "{\"key\":");
	json_str(&b, key);
	buf_addstr(&b, ",\"value\":");
	json_str(&b, l.v.n ? l.v.v[0] : "");
	buf_addstr(&b, "}\n");
	lines_release(&l);
	return send_buf(c, 200, "application/json", &b, NULL, NULL);
}

/* A line of a build or deploy: its source ("STAMP SOURCE text") is the
 * build, berth itself or a release script. */
static int deploy_line(const char *line)
{
	static const char *const sources[] = { "build", "berth", "release",
					       "predeploy", "postdeploy" };
	const char *src = strchr(line, ' '), *end;
	size_t i, len;

	if (!src)
		return 0;
	src++;
	end = strchr(src, ' ');
	len = end ? (size_t)(end - src) : strlen(src);
	for (i = 0; i < ARRAY_SIZE(sources); i++)
		if (len == strlen(sources[i]) && !memcmp(src, sources[i], len))
			return 1;
	return 0;
}

/* "?only=deploy": the lines of builds and deploys only. */
static int only_deploy(struct MHD_Connection *c)
{
	const char *o = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND,
						    "only");

	return o && !strcmp(o, "deploy");
}

static enum MHD_Result logs_json(struct MHD_Connection *c, const char *name)
{
	const char *nv = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND,
						     "n");
	char nm[APP_NAME_MAX + 1], num[24];
	char *argv[] = { "logs", nm, "-n", num, NULL };
	struct buf b = BUF_INIT;
	struct lines l;
	char *err = NULL;
	long n = nv ? parse_long(nv, 10000) : 200;
	int deploys = only_deploy(c);
	size_t i, shown = 0;
	enum MHD_Result ret;

	if (n < 0)
		return send_json_error(c, 400, "bad line count (0 to 10000)");
	snprintf(nm, sizeof(nm), "%s", name);
	snprintf(num, sizeof(num), "%ld", n);
	if (run(&l, &err, 4, argv) < 0) {
		ret = send_json_error(c, 404, err);
		free(err);
		return ret;
	}
	buf_addstr(&b, "{\"lines\":[");
	for (i = 0; i < l.v.n; i++) {
		if (deploys && !deploy_line(l.v.v[i]))
			continue;
		buf_addstr(&b, shown++ ? "," : "");
		json_str(&b, l.v.v[i]);
	}
	buf_addstr(&b, "]}\n");
	lines_release(&l);
	return send_buf(c, 200, "application/json", &b, NULL, NULL);
}

/* --- logs over Server-Sent Events --- */

struct sse {
	int fd;
	struct control_reader rd;
	struct buf out;
	size_t sent;
	int ended;
	int deploys;	/* only the lines of builds and deploys */
};

static int sse_line(void *arg, enum control_kind kind, const char *text)
{
	struct sse *e = arg;

	if (kind == CONTROL_FIELDS)
		return 0;
	if (kind == CONTROL_DATA && e->deploys && !deploy_line(text))
		return 0;
	if (kind == CONTROL_DATA) {
		buf_addstr(&e->out, "data: ");
		buf_addstr(&e->out, text);
		buf_addstr(&e->out, "\n\n");
		return 0;
	}
	buf_addstr(&e->out, "event: end\ndata: ");
	buf_addstr(&e->out, kind == CONTROL_OK ? "ok" : text);
	buf_addstr(&e->out, "\n\n");
	e->ended = 1;
	return 1;
}

/* Blocks (this connection's own thread) until there is something to
 * send: log lines, a keep-alive comment, or the end. */
static ssize_t sse_read(void *cls, uint64_t pos, char *buf, size_t max)
{
	struct sse *e = cls;
	int idle = 0;

	while (e->sent == e->out.len) {
		struct pollfd pfd = { e->fd, POLLIN, 0 };
		char chunk[8192];
		ssize_t n;
		int r;

		buf_reset(&e->out);
		e->sent = 0;
		if (e->ended || server_stopping)
			return MHD_CONTENT_READER_END_OF_STREAM;
		r = poll(&pfd, 1, 1000);
		if (r < 0 && errno != EINTR)
			return MHD_CONTENT_READER_END_WITH_ERROR;
		if (r <= 0) {
			if (++idle >= SSE_KEEPALIVE_S)
				buf_addstr(&e->out, ": keep-alive\n\n");
			continue;
		}
		n = read(e->fd, chunk, sizeof(chunk));
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			e->ended = 1;
			continue;
		}
		if (control_reader_feed(&e->rd, chunk, (size_t)n, sse_line,
					e) < 0)
			e->ended = 1;
	}
	if (max > e->out.len - e->sent)
		max = e->out.len - e->sent;
	memcpy(buf, e->out.data + e->sent, max);
	e->sent += max;
	return (ssize_t)max;
}

static void sse_free(void *cls)
{
	struct sse *e = cls;

	close(e->fd);
	control_reader_release(&e->rd);
	buf_release(&e->out);
	free(e);
}

/* A streaming command's lines as Server-Sent Events (deploys: only the
 * lines of builds and deploys), then "event: end". */
static enum MHD_Result sse_command(struct MHD_Connection *c, int argc,
				   char *const *argv, int deploys)
{
	struct MHD_Response *resp;
	struct sse *e;
	enum MHD_Result ret;
	int fd;

	fd = opts->provider->open(opts->provider->ctx, argc, argv);
	if (fd < 0)
		return send_json_error(c, 502, error_last());
	e = xcalloc(1, sizeof(*e));
	e->fd = fd;
	e->deploys = deploys;
	control_reader_init(&e->rd);
	buf_init(&e->out, 0);
	resp = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 16384,
						 sse_read, e, sse_free);
	if (!resp) {
		sse_free(e);
		return MHD_NO;
	}
	MHD_add_response_header(resp, "Content-Type", "text/event-stream");
	MHD_add_response_header(resp, "Cache-Control", "no-store");
	MHD_add_response_header(resp, "X-Accel-Buffering", "no");
	ret = MHD_queue_response(c, 200, resp);
	MHD_destroy_response(resp);
	return ret;
}

static enum MHD_Result logs_stream(struct MHD_Connection *c,
				   const char *name)
{
	const char *nv = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND,
						     "n");
	char nm[APP_NAME_MAX + 1], num[24];
	char *argv[] = { "logs", nm, "-n", num, "-f", NULL };
	long n = nv ? parse_long(nv, 10000) : 100;

	if (n < 0)
		return send_json_error(c, 400, "bad line count (0 to 10000)");
	snprintf(nm, sizeof(nm), "%s", name);
	snprintf(num, sizeof(num), "%ld", n);
	return sse_command(c, 5, argv, only_deploy(c));
}

/* --- the kept output of a deploy --- */

/*
 * "/deploys/D/output" (JSON: the lines so far), ".../output/stream"
 * (Server-Sent Events: the lines, then new ones while it runs, then
 * "event: end"), or "/deploys/D" as a page of its own (no script).
 */
static enum MHD_Result deploy_output(struct MHD_Connection *c,
				     const struct dashboard_session *s,
				     const char *name, const char *rest,
				     int json)
{
	char nm[APP_NAME_MAX + 1], num[16], *err = NULL;
	char *argv[] = { "releases:output", nm, "--deploy", num,
			 "--no-follow", NULL };
	const char *tail;
	struct buf b = BUF_INIT;
	struct lines l;
	size_t i, k;
	long d;

	k = strspn(rest, "0123456789");
	if (!k || k > 9)
		return json ? send_json_error(c, 404, "not found") :
			send_message_page(c, 404, "Not found", "no such deploy");
	snprintf(num, sizeof(num), "%.*s", (int)k, rest);
	d = parse_long(num, 1L << 30);
	tail = rest + k;
	snprintf(nm, sizeof(nm), "%s", name);
	if (json && !strcmp(tail, "/output/stream"))
		return sse_command(c, 4, argv, 0);
	if ((json && strcmp(tail, "/output")) || (!json && *tail) || d <= 0)
		return json ? send_json_error(c, 404, "not found") :
			send_message_page(c, 404, "Not found", "no such page");
	if (run(&l, &err, 5, argv) < 0) {
		enum MHD_Result ret = json ? send_json_error(c, 404, err) :
			send_message_page(c, 404, "No output", err);

		free(err);
		return ret;
	}
	if (json) {
		buf_addf(&b, "{\"deploy\":%ld,\"lines\":[", d);
		for (i = 0; i < l.v.n; i++) {
			buf_addstr(&b, i ? "," : "");
			json_str(&b, l.v.v[i]);
		}
		buf_addstr(&b, "]}\n");
	} else {
		char title[APP_NAME_MAX + 32];

		snprintf(title, sizeof(title), "%s: deploy #%ld", name, d);
		page_head(&b, title, s, NULL);
		buf_addstr(&b, "<h1>");
		html(&b, title);
		buf_addstr(&b, "</h1><p><a href=\"/apps/");
		html(&b, name);
		buf_addstr(&b, "\">Back to ");
		html(&b, name);
		buf_addstr(&b, "</a></p><pre id=\"deploy-log\" "
			   "class=\"log deploy\">");
		for (i = 0; i < l.v.n; i++) {
			html(&b, l.v.v[i]);
			buf_addstr(&b, "\n");
		}
		buf_addstr(&b, "</pre>");
		page_foot(&b);
	}
	lines_release(&l);
	return send_buf(c, 200, json ? "application/json" :
			"text/html; charset=utf-8", &b, NULL, NULL);
}

/* --- actions --- */

/* "web=2 worker=1" into argv words, checked. */
static int scale_words(struct strv *argv, const char *spec)
{
	char tmp[FORM_VALUE_MAX], *tok, *save = NULL;
	int n = 0;

	snprintf(tmp, sizeof(tmp), "%s", spec);
	for (save = tmp, tok = str_token(&save, " ,"); tok;
	     tok = str_token(&save, " ,")) {
		char *eq = strchr(tok, '=');
		size_t i;

		if (!eq || eq == tok || eq - tok > 31 ||
		    parse_long(eq + 1, 1000) < 0 || ++n > 16)
			return -1;
		for (i = 0; tok + i < eq; i++)
			if (!((tok[i] >= 'a' && tok[i] <= 'z') ||
			      (tok[i] >= '0' && tok[i] <= '9') ||
			      tok[i] == '_' || tok[i] == '-'))
				return -1;
		strv_push(argv, tok);
	}
	return n ? 0 : -1;
}

static const char *form_or_query(struct MHD_Connection *c,
				 const struct req *r, const char *key,
				 char *out, size_t len)
{
	const char *q;

	if (r->body.len &&
	    dashboard_form_get(r->body.data, r->body.len, key, out, len) == 0)
		return out;
	q = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, key);
	if (q && strlen(q) < len) {
		snprintf(out, len, "%s", q);
		return out;
	}
	return NULL;
}

static enum MHD_Result action(struct MHD_Connection *c,
			      const struct dashboard_session *s,
			      const struct req *r, const char *name,
			      const char *what, int json)
{
	struct strv argv = STRV_INIT;
	struct buf b = BUF_INIT, text = BUF_INIT;
	struct lines l;
	char val[FORM_VALUE_MAX], *err = NULL, *loc = NULL;
	enum MHD_Result ret;
	int failed;
	size_t i;

	strv_push(&argv, what);
	strv_push(&argv, name);
	if (!strcmp(what, "rollback")) {
		if (form_or_query(c, r, "release", val, sizeof(val))) {
			long n = parse_long(val[0] == 'v' ? val + 1 : val,
					    1L << 30);

			if (n <= 0) {
				ret = send_json_error(c, 400,
						      "bad release number");
				goto out;
			}
			strv_pushf(&argv, "%ld", n);
		}
	} else if (!strcmp(what, "scale")) {
		if (!form_or_query(c, r, "scale", val, sizeof(val)) ||
		    scale_words(&argv, val) < 0) {
			ret = json ? send_json_error(c, 400,
				"scale wants TYPE=N pairs, e.g. web=2 worker=1") :
				send_message_page(c, 400, "Cannot scale",
				"scale wants TYPE=N pairs, e.g. web=2 worker=1");
			goto out;
		}
	} else if (strcmp(what, "restart") && strcmp(what, "stop") &&
		   strcmp(what, "start") && strcmp(what, "maintenance:on") &&
		   strcmp(what, "maintenance:off")) {
		ret = json ? send_json_error(c, 404, "no such action") :
			     send_message_page(c, 404, "Not found",
					       "no such action");
		goto out;
	}
	log_info("%s runs '%s %s' from the dashboard", s->key, what, name);
	failed = run(&l, &err, (int)argv.n, argv.v) < 0;
	for (i = 0; !failed && i < l.v.n; i++)
		buf_addf(&text, "%s\n", l.v.v[i]);
	if (failed)
		buf_addf(&text, "error: %s\n", err);
	if (json) {
		buf_addf(&b, "{\"ok\":%s,\"output\":", failed ? "false" : "true");
		json_str(&b, text.data ? text.data : "");
		if (failed) {
			buf_addstr(&b, ",\"error\":");
			json_str(&b, err);
		}
		buf_addstr(&b, "}\n");
		ret = send_buf(c, failed ? 409 : 200, "application/json", &b,
			       NULL, NULL);
	} else {
		flash_set(s, text.data ? text.data : "done", failed);
		loc = xasprintf("/apps/%s", name);
		ret = send_buf(c, 303, "text/plain", &b, NULL, loc);
	}
	if (!failed)
		lines_release(&l);
out:
	free(err);
	free(loc);
	buf_release(&b);
	buf_release(&text);
	strv_release(&argv);
	return ret;
}

/* --- routing --- */

static int cookie_secure(struct MHD_Connection *c)
{
	const char *p = MHD_lookup_connection_value(c, MHD_HEADER_KIND,
						    "X-Forwarded-Proto");

	return p && !strcmp(p, "https");
}

static enum MHD_Result login(struct MHD_Connection *c)
{
	const char *token = MHD_lookup_connection_value(c,
				MHD_GET_ARGUMENT_KIND, "token");
	const char *next = MHD_lookup_connection_value(c,
				MHD_GET_ARGUMENT_KIND, "next");
	struct dashboard_session s;
	struct buf b = BUF_INIT;
	char *sid = NULL, *cookie, *loc;
	enum MHD_Result ret;
	int r;

	r = token ? dashboard_login_claim(opts->cfg->root, token,
					  opts->cfg->dashboard_session_ms,
					  &sid, &s) : ERR_NOTFOUND;
	if (r < 0)
		return send_message_page(c, r == ERR_NOTFOUND ? 403 : 500,
			"Cannot log in",
			r == ERR_NOTFOUND ?
			"This login link is unknown, used or expired. Run "
			"'ssh HOST dashboard' (or 'berth dashboard' on the "
			"host) for a new one." : error_last());
	log_info("%s logs in to the dashboard", s.key);
	cookie = xasprintf(COOKIE_NAME "=%s; Path=/; Max-Age=%ld; HttpOnly; "
			   "SameSite=Strict%s", sid,
			   opts->cfg->dashboard_session_ms / 1000,
			   cookie_secure(c) ? "; Secure" : "");
	/* only our own pages: never a redirect to elsewhere */
	if (next && next[0] == '/' && next[1] != '/' && next[1] != '\\' &&
	    strlen(next) < 200 && !strpbrk(next, "\r\n\"<>"))
		loc = xstrdup(next);
	else
		loc = xstrdup("/");
	ret = send_buf(c, 303, "text/plain", &b, cookie, loc);
	free(cookie);
	free(loc);
	free(sid);
	return ret;
}

static enum MHD_Result not_logged_in(struct MHD_Connection *c, int json)
{
	static const char msg[] = "Not logged in, or the session has ended. "
		"Run 'ssh HOST dashboard' (or 'berth dashboard' on the host) "
		"for a login link.";

	return json ? send_json_error(c, 401, msg) :
		      send_message_page(c, 401, "Log in", msg);
}

static enum MHD_Result route(struct MHD_Connection *c, const char *url,
			     const char *method, struct req *r)
{
	struct dashboard_session s;
	const char *sid, *rest;
	char name[APP_NAME_MAX + 1], tok[DASHBOARD_TOKEN_HEX + 2];
	int json = 0, post = !strcmp(method, "POST"), get;
	size_t n;

	get = !strcmp(method, "GET") || !strcmp(method, "HEAD");
	if (!get && !post)
		return send_json_error(c, 405, "method not allowed");
	if (r->too_big)
		return send_json_error(c, 413, "request body too large");
	if (get && !strcmp(url, "/static/dashboard.css")) {
		struct buf b = BUF_INIT;

		buf_addstr(&b, dashboard_css);
		return send_buf(c, 200, "text/css", &b, NULL, NULL);
	}
	if (get && !strcmp(url, "/static/dashboard.js")) {
		struct buf b = BUF_INIT;

		buf_addstr(&b, dashboard_js);
		return send_buf(c, 200, "text/javascript", &b, NULL, NULL);
	}
	if (get && !strcmp(url, "/login"))
		return login(c);
	if (!strncmp(url, "/api/", 5)) {
		json = 1;
		url += 4;
	}

	sid = MHD_lookup_connection_value(c, MHD_COOKIE_KIND, COOKIE_NAME);
	if (!sid || dashboard_session_get(opts->cfg->root, sid, &s) < 0)
		return not_logged_in(c, json);
	/* a key removed since login loses its session at once; when the
	 * engine cannot say, the session stays and nothing is served */
	if (!s.local) {
		int k = opts->provider->key_exists(opts->provider->ctx, s.key);

		if (k < 0) {
			static const char msg[] =
				"The engine is not reachable; try again shortly.";

			return json ? send_json_error(c, 503, msg) :
				      send_message_page(c, 503, "Unavailable",
							msg);
		}
		if (!k) {
			session_end(opts->cfg->root, sid);
			return not_logged_in(c, json);
		}
	}
	if (post) {
		const char *h = MHD_lookup_connection_value(c, MHD_HEADER_KIND,
							    "X-CSRF-Token");

		if (h && strlen(h) < sizeof(tok))
			snprintf(tok, sizeof(tok), "%s", h);
		else if (dashboard_form_get(r->body.data ? r->body.data : "",
					    r->body.len, "csrf", tok,
					    sizeof(tok)) < 0)
			tok[0] = '\0';
		if (!tok[0] || !secret_equal(tok, s.csrf)) {
			log_info("%s: refused a %s without a valid CSRF token",
				 s.key, url);
			return json ? send_json_error(c, 403,
						      "missing or wrong CSRF token") :
				send_message_page(c, 403, "Refused",
						  "missing or wrong CSRF token");
		}
	}
	if (post && !strcmp(url, "/logout")) {
		struct buf b = BUF_INIT;

		session_end(opts->cfg->root, sid);
		return send_buf(c, 303, "text/plain", &b, COOKIE_NAME
				"=; Path=/; Max-Age=0; HttpOnly; SameSite=Strict",
				"/");
	}
	if (get && json && !strcmp(url, "/session")) {
		struct buf b = BUF_INIT;

		buf_addstr(&b, "{\"key\":");
		json_str(&b, s.key);
		buf_addf(&b, ",\"admin\":%s,\"local\":%s,\"expires_in\":%lld,"
			 "\"csrf\":", s.admin ? "true" : "false",
			 s.local ? "true" : "false",
			 (long long)(s.expires_ms - now_ms()) / 1000);
		json_str(&b, s.csrf);
		buf_addstr(&b, "}\n");
		return send_buf(c, 200, "application/json", &b, NULL, NULL);
	}
	if (get && (!strcmp(url, "/") || !strcmp(url, "/apps")))
		return apps_page(c, &s, json);
	if (strncmp(url, "/apps/", 6))
		goto notfound;
	url += 6;
	n = strcspn(url, "/");
	if (n > APP_NAME_MAX)
		goto notfound;
	memcpy(name, url, n);
	name[n] = '\0';
	rest = url + n;
	if (!app_name_valid(name))
		goto notfound;
	if (!dashboard_may_reach(opts->cfg->root, &s, name))
		return json ? send_json_error(c, 403, "this key may not reach that app") :
			send_message_page(c, 403, "Refused",
					  "this key may not reach that app");
	if (get && !*rest)
		return app_page(c, &s, name, json);
	if (get && json && !strcmp(rest, "/config")) {
		const char *k = MHD_lookup_connection_value(c,
					MHD_GET_ARGUMENT_KIND, "key");

		if (k)
			return config_value(c, name, k);
		goto notfound;
	}
	if (get && json && !strcmp(rest, "/logs"))
		return logs_json(c, name);
	if (get && json && !strcmp(rest, "/logs/stream"))
		return logs_stream(c, name);
	if (get && !strncmp(rest, "/deploys/", 9))
		return deploy_output(c, &s, name, rest + 9, json);
	if (post && rest[0] == '/' && !strchr(rest + 1, '/'))
		return action(c, &s, r, name, rest + 1, json);
notfound:
	return json ? send_json_error(c, 404, "not found") :
		      send_message_page(c, 404, "Not found", "no such page");
}

static enum MHD_Result handle(void *cls, struct MHD_Connection *c,
			      const char *url, const char *method,
			      const char *version, const char *upload,
			      size_t *upload_size, void **con_cls)
{
	struct req *r = *con_cls;

	if (!r) {
		r = xcalloc(1, sizeof(*r));
		buf_init(&r->body, BODY_MAX);
		*con_cls = r;
		return MHD_YES;
	}
	if (*upload_size) {
		if (!r->too_big && buf_add(&r->body, upload, *upload_size) < 0)
			r->too_big = 1;
		*upload_size = 0;
		return MHD_YES;
	}
	return route(c, url, method, r);
}

static void completed(void *cls, struct MHD_Connection *c, void **con_cls,
		      enum MHD_RequestTerminationCode toe)
{
	struct req *r = *con_cls;

	if (r) {
		buf_release(&r->body);
		free(r);
		*con_cls = NULL;
	}
}

int dashboard_serve(const struct dashboard_opts *o)
{
	struct MHD_Daemon *d;
	sigset_t set;
	int sig = 0;

	opts = o;
	signal(SIGPIPE, SIG_IGN);
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	/* before the threads start, so they inherit the mask */
	if (pthread_sigmask(SIG_BLOCK, &set, NULL) != 0) {
		log_warnx("cannot block signals");
		return 1;
	}
	d = MHD_start_daemon(MHD_USE_THREAD_PER_CONNECTION |
			     MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_POLL,
			     0, NULL, NULL, handle, NULL,
			     MHD_OPTION_LISTEN_SOCKET, o->listen_fd,
			     MHD_OPTION_CONNECTION_LIMIT, (unsigned)128,
			     MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)120,
			     MHD_OPTION_NOTIFY_COMPLETED, completed, NULL,
			     MHD_OPTION_END);
	if (!d) {
		log_warnx("cannot start the HTTP server");
		return 1;
	}
	log_info("dashboard ready");
	while (sigwait(&set, &sig) != 0 || (sig != SIGTERM && sig != SIGINT))
		;
	server_stopping = 1;
	MHD_stop_daemon(d);
	return 0;
}
