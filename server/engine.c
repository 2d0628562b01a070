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
#include "certs.h"
#include "config.h"
#include "control.h"
#include "appstats.h"
#include "dashboard.h"
#include "health.h"
#include "isolate.h"
#include "liveroute.h"
#include "log.h"
#include "loop.h"
#include "nginx.h"
#include "pipeline.h"
#include "postgres.h"
#include "reaper.h"
#include "serverlog.h"
#include "spawn.h"
#include "stateformat.h"
#include "sshd.h"
#include "banned.h"

#define CLIENT_MAX_OUT (64 * 1024 * 1024)
#define SHUTDOWN_GRACE_MS 10000
#define CLIENT_FINISH_MS 2000	/* at exit, for queued answers to go out */

struct client {
	struct engine *e;
	struct client *prev, *next;	/* e->clients */
	int fd;
	int refs;
	int gone;		/* peer hung up or connection closed */
	int finished;		/* final line queued */
	int dispatched;
	struct buf in;
	struct buf out;
	void (*on_close)(struct client *, void *);
	void *on_close_arg;
	void (*on_input)(struct client *, const char *, size_t, void *);
	void *on_input_arg;
	int fds[CLIENT_MAX_FDS];	/* passed with the request, until taken */
	size_t nfds;
};

char *engine_path(const struct engine *e, const char *fmt, ...)
{
	va_list ap;
	char *rel, *p;

	va_start(ap, fmt);
	rel = xvasprintf(fmt, ap);
	va_end(ap);
	p = xasprintf("%s/%s", e->cfg->root, rel);
	free(rel);
	return p;
}

void engine_spawn_as_app_user(const struct engine *e, struct spawn *s)
{
	if (!e->drop_priv)
		return;
	s->flags |= SPAWN_DROP_PRIV;
	s->uid = e->run_uid;
	s->gid = e->run_gid;
}

/* ---------- control clients ---------- */

static void client_close(struct client *c);

static void client_close_fds(struct client *c)
{
	size_t i;

	for (i = 0; i < c->nfds; i++)
		if (c->fds[i] >= 0)
			close(c->fds[i]);
	c->nfds = 0;
}

size_t client_take_fds(struct client *c, int *fds, size_t max)
{
	size_t i, n;

	if (!c)
		return 0;
	n = c->nfds < max ? c->nfds : max;
	for (i = 0; i < n; i++) {
		fds[i] = c->fds[i];
		c->fds[i] = -1;
	}
	client_close_fds(c);
	return n;
}

void client_ref(struct client *c)
{
	if (c)
		c->refs++;
}

void client_unref(struct client *c)
{
	if (!c || --c->refs > 0)
		return;
	if (c->fd >= 0) {
		loop_del_fd(c->e->loop, c->fd);
		close(c->fd);
	}
	if (c->prev)
		c->prev->next = c->next;
	else
		c->e->clients = c->next;
	if (c->next)
		c->next->prev = c->prev;
	buf_release(&c->in);
	buf_release(&c->out);
	client_close_fds(c);
	free(c);
}

int client_gone(const struct client *c)
{
	return !c || c->gone;
}

size_t client_pending(const struct client *c)
{
	return c ? c->out.len : 0;
}

void client_on_input(struct client *c,
		     void (*fn)(struct client *, const char *, size_t, void *),
		     void *arg)
{
	if (!c)
		return;
	c->on_input = fn;
	c->on_input_arg = arg;
}

void client_on_close(struct client *c, void (*fn)(struct client *, void *),
		     void *arg)
{
	if (!c)
		return;
	c->on_close = fn;
	c->on_close_arg = arg;
}

static void client_flush(struct client *c)
{
	ssize_t n;

	while (c->out.len) {
		n = write(c->fd, c->out.data, c->out.len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			break;
		if (n <= 0) {
			client_close(c);
			return;
		}
		buf_consume(&c->out, (size_t)n);
	}
	if (c->out.len) {
		loop_mod_fd(c->e->loop, c->fd, LOOP_READ | LOOP_WRITE);
		return;
	}
	if (c->finished) {
		client_close(c);
		return;
	}
	loop_mod_fd(c->e->loop, c->fd, LOOP_READ);
}

static void client_queue(struct client *c, const char *data, size_t len)
{
	if (!c || c->gone || c->finished)
		return;
	buf_add(&c->out, data, len);
	if (c->out.len > CLIENT_MAX_OUT) {
		client_close(c);
		return;
	}
	client_flush(c);
}

void client_data(struct client *c, const char *fmt, ...)
{
	struct buf b = BUF_INIT;
	va_list ap;
	char *p, *line, *nl;

	if (!c || c->gone || c->finished)
		return;
	va_start(ap, fmt);
	p = xvasprintf(fmt, ap);
	va_end(ap);
	/* One data line per text line. */
	for (line = p; ; line = nl + 1) {
		nl = strchr(line, '\n');
		if (!nl) {
			if (*line || line == p)
				control_encode_data(&b, line, strlen(line));
			break;
		}
		control_encode_data(&b, line, (size_t)(nl - line));
	}
	client_queue(c, b.data, b.len);
	buf_release(&b);
	free(p);
}

/*
 * Queue the final line; the connection closes once it is written.  A
 * write that finds the peer gone closes c at once, which may drop its
 * last reference: hold one while c is still read here.
 */
static void client_finish(struct client *c, const char *line, size_t len)
{
	client_ref(c);
	client_queue(c, line, len);
	if (!c->gone) {
		c->finished = 1;
		client_flush(c);
	}
	client_unref(c);
}

void client_ok(struct client *c)
{
	if (!c || c->gone || c->finished)
		return;
	client_finish(c, "ok\n", 3);
}

void client_error(struct client *c, const char *fmt, ...)
{
	struct buf b = BUF_INIT;
	va_list ap;
	char *p, *q;

	if (!c || c->gone || c->finished)
		return;
	va_start(ap, fmt);
	p = xvasprintf(fmt, ap);
	va_end(ap);
	/* The final line is one line: a message of several goes out whole
	 * first, in order, then its first line as the error. */
	q = strchr(p, '\n');
	client_ref(c);		/* client_data() may close it */
	if (q) {
		client_data(c, " !     %s", p);
		*q = '\0';
	}
	buf_addf(&b, "error: %s\n", p);
	client_finish(c, b.data, b.len);
	client_unref(c);
	buf_release(&b);
	free(p);
}

static void client_close(struct client *c)
{
	void (*fn)(struct client *, void *);

	if (c->gone)
		return;
	c->gone = 1;
	if (c->fd >= 0) {
		loop_del_fd(c->e->loop, c->fd);
		close(c->fd);
		c->fd = -1;
	}
	fn = c->on_close;
	c->on_close = NULL;
	if (fn)
		fn(c, c->on_close_arg);
	client_unref(c);	/* the connection's own reference */
}

/*
 * Engine exit: what is queued for clients (the last lines and "ok" of
 * followers, answers to deploys cut short) still goes out, for at most
 * timeout_ms in all; then every connection is closed.
 */
static void clients_finish(struct engine *e, long timeout_ms)
{
	int64_t deadline = now_ms() + timeout_ms;
	struct client *c, *next;
	struct pollfd pfd;

	for (c = e->clients; c; c = c->next) {
		while (c->fd >= 0 && c->out.len && now_ms() < deadline) {
			ssize_t n;

			pfd.fd = c->fd;
			pfd.events = POLLOUT;
			if (poll(&pfd, 1, (int)(deadline - now_ms())) <= 0)
				break;
			n = write(c->fd, c->out.data, c->out.len);
			if (n < 0 && (errno == EINTR || errno == EAGAIN))
				continue;
			if (n <= 0)
				break;
			buf_consume(&c->out, (size_t)n);
		}
	}
	for (c = e->clients; c; c = next) {
		next = c->next;
		c->refs = 1;	/* whoever held it is gone by now */
		if (!c->gone)
			client_close(c);	/* its on_close runs, then it goes */
		else
			client_unref(c);
	}
}

static void client_dispatch(struct client *c, size_t linelen)
{
	struct strv argv = STRV_INIT;

	c->dispatched = 1;
	client_ref(c);
	if (control_parse_request(&argv, c->in.data, linelen) < 0) {
		client_error(c, "bad request: %s", error_last());
	} else {
		commands_dispatch(c->e, c, (int)argv.n, argv.v);
		/* What came after the request line is the command's input. */
		if (!c->gone && c->on_input && c->in.len > linelen + 1)
			c->on_input(c, c->in.data + linelen + 1,
				    c->in.len - linelen - 1, c->on_input_arg);
	}
	buf_release(&c->in);
	strv_release(&argv);
	client_unref(c);	/* c may be gone after this */
}

/*
 * Read from a client; descriptors passed along with its request (run's
 * stdin, stdout, stderr) are kept for the command to take.  Any that
 * come later, or beyond the few a request may carry, are closed.
 */
static ssize_t client_recv(struct client *c, int fd, char *buf, size_t len)
{
	union {
		struct cmsghdr h;
		char space[CMSG_SPACE(sizeof(int) * CLIENT_MAX_FDS)];
	} ctl;
	struct iovec iov = { buf, len };
	struct msghdr msg;
	struct cmsghdr *cm;
	ssize_t n;

	memset(&msg, 0, sizeof(msg));
	msg.msg_iov = &iov;
	msg.msg_iovlen = 1;
	msg.msg_control = ctl.space;
	msg.msg_controllen = sizeof(ctl.space);
	n = recvmsg(fd, &msg, MSG_CMSG_CLOEXEC);
	if (n < 0)
		return n;
	for (cm = CMSG_FIRSTHDR(&msg); cm; cm = CMSG_NXTHDR(&msg, cm)) {
		size_t k, got;
		int *in;

		if (cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_RIGHTS)
			continue;
		got = (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		in = (int *)(void *)CMSG_DATA(cm);
		for (k = 0; k < got; k++) {
			if (!c->dispatched && c->nfds < CLIENT_MAX_FDS)
				c->fds[c->nfds++] = in[k];
			else
				close(in[k]);
		}
	}
	return n;
}

/*
 * Whatever this calls (a write, an error answer, the command, its input
 * callback) may close c and drop the connection's reference: a reference
 * of our own keeps c until we are done with it.
 */
static void on_client(struct loop *l, int fd, unsigned events, void *arg)
{
	struct client *c = arg;
	char chunk[4096];
	ssize_t n;
	char *nl;

	client_ref(c);
	if (events & LOOP_WRITE) {
		client_flush(c);
		if (c->gone)
			goto out;
	}
	if (!(events & LOOP_READ))
		goto out;
	n = client_recv(c, fd, chunk, sizeof(chunk));
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		goto out;
	if (n <= 0) {
		client_close(c);
		goto out;
	}
	if (c->dispatched) {
		/* one request per connection; the rest is its input, or
		 * ignored */
		if (c->on_input)
			c->on_input(c, chunk, (size_t)n, c->on_input_arg);
		goto out;
	}
	if (buf_add(&c->in, chunk, (size_t)n) < 0) {
		client_error(c, "request too long");
		goto out;
	}
	nl = memchr(c->in.data, '\n', c->in.len);
	if (nl)
		client_dispatch(c, (size_t)(nl - c->in.data));
	else if (c->in.len > CONTROL_LINE_MAX)
		client_error(c, "request too long");
out:
	client_unref(c);	/* c may be gone after this */
}

static void on_control(struct loop *l, int fd, unsigned events, void *arg)
{
	struct engine *e = arg;
	struct client *c;
	int cfd;

	cfd = accept4(fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
	if (cfd < 0)
		return;
	c = xcalloc(1, sizeof(*c));
	c->e = e;
	c->fd = cfd;
	c->refs = 1;
	buf_init(&c->in, CONTROL_LINE_MAX + 4096);
	if (loop_add_fd(l, cfd, LOOP_READ, on_client, c) < 0) {
		close(cfd);
		free(c);
		return;
	}
	c->next = e->clients;
	if (c->next)
		c->next->prev = c;
	e->clients = c;
}

static int control_listen(struct engine *e)
{
	struct sockaddr_un sa;
	char *path = engine_path(e, "%s", CONTROL_SOCKET);
	mode_t old;
	int fd = -1, ret = -1;

	memset(&sa, 0, sizeof(sa));
	sa.sun_family = AF_UNIX;
	if (strlen(path) >= sizeof(sa.sun_path)) {
		error_set("state directory path too long for a socket: '%s'", path);
		goto out;
	}
	memcpy(sa.sun_path, path, strlen(path) + 1);
	unlink(path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0) {
		error_setsys("socket");
		goto out;
	}
	/* Only root (the owner) may talk to the engine. */
	old = umask(077);
	ret = bind(fd, (struct sockaddr *)&sa, sizeof(sa));
	umask(old);
	if (ret < 0 || listen(fd, 64) < 0) {
		ret = error_setsys("cannot listen on '%s'", path);
		goto out;
	}
	chmod(path, 0600);
	e->ctl_fd = fd;
	fd = -1;
	ret = loop_add_fd(e->loop, e->ctl_fd, LOOP_READ, on_control, e);
out:
	if (fd >= 0)
		close(fd);
	free(path);
	return ret;
}

/* ---------- incoming folder ---------- */

/* The app a file of incoming/ deploys: 0, ERR_INVALID for a bundle
 * whose name is no app name (name holds it, cut to len), -1 otherwise. */
static int incoming_name(const char *file, char *name, size_t len)
{
	size_t n = strlen(file), k = 0;

	if (n > 7 && !strcmp(file + n - 7, ".tar.gz"))
		k = n - 7;
	else if (n > 6 && !strcmp(file + n - 6, ".keter"))
		k = n - 6;
	if (!k)
		return -1;
	snprintf(name, len, "%.*s", (int)k, file);
	return k < len && app_name_valid(name) ? 0 : ERR_INVALID;
}

static void incoming_deploy(struct engine *e, const char *file)
{
	char name[APP_NAME_MAX + 1];
	char *path;
	struct deploy_opts o;
	struct app *a;
	int r = incoming_name(file, name, sizeof(name));

	if (r == ERR_INVALID) {
		log_warnx("incoming: ignoring '%s': invalid app name '%s' (use a-z, 0-9 and '-', at most %d characters)",
			  file, name, APP_NAME_MAX);
		return;
	}
	if (r < 0) {
		if (file[0] != '.')
			log_warnx("incoming: ignoring '%s' (want NAME.tar.gz or NAME.keter)",
				  file);
		return;
	}
	a = app_find(e, name);
	if (a && a->remove_after_deploy) {
		log_info("incoming: '%s' is back: app '%s' stays", file, name);
		a->remove_after_deploy = 0;
	}
	path = engine_path(e, "incoming/%s", file);
	memset(&o, 0, sizeof(o));
	o.bundle = path;
	o.source = "incoming";
	log_info("incoming: deploying '%s' from '%s'", name, file);
	app_deploy(e, name, DEPLOY_NEW, &o, NULL);
	free(path);
}

static void on_incoming(struct loop *l, int fd, unsigned events, void *arg)
{
	struct engine *e = arg;
	char buf[8192] __attribute__((aligned(__alignof__(struct inotify_event))));
	ssize_t n;
	char *p;

	n = read(fd, buf, sizeof(buf));
	if (n <= 0)
		return;
	for (p = buf; p < buf + n;) {
		struct inotify_event *ev = (struct inotify_event *)p;
		char name[APP_NAME_MAX + 1];

		p += sizeof(*ev) + ev->len;
		if (!ev->len)
			continue;
		if (ev->mask & (IN_CLOSE_WRITE | IN_MOVED_TO)) {
			incoming_deploy(e, ev->name);
		} else if ((ev->mask & (IN_DELETE | IN_MOVED_FROM)) &&
			   incoming_name(ev->name, name, sizeof(name)) == 0) {
			struct app *a = app_find(e, name);

			if (a && (a->deploy || a->waiting)) {
				log_info("incoming: '%s' deleted: app '%s' goes once its deploy ends",
					 ev->name, name);
				a->remove_after_deploy = 1;
			} else if (a) {
				log_info("incoming: '%s' deleted, removing app '%s'",
					 ev->name, name);
				app_cmd_rm(a, 0, NULL);
			}
		}
	}
}

static void incoming_start(struct engine *e)
{
	char *dir = engine_path(e, "incoming");
	DIR *dh;
	struct dirent *de;

	e->incoming_fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	if (e->incoming_fd < 0 ||
	    inotify_add_watch(e->incoming_fd, dir, IN_CLOSE_WRITE | IN_MOVED_TO |
			      IN_DELETE | IN_MOVED_FROM) < 0 ||
	    loop_add_fd(e->loop, e->incoming_fd, LOOP_READ, on_incoming, e) < 0) {
		log_warn("cannot watch '%s'", dir);
		free(dir);
		return;
	}
	/* Bundles dropped while the engine was down, for apps not yet here. */
	dh = opendir(dir);
	while (dh && (de = readdir(dh))) {
		char name[APP_NAME_MAX + 1];

		if (incoming_name(de->d_name, name, sizeof(name)) == 0 &&
		    !app_find(e, name))
			incoming_deploy(e, de->d_name);
	}
	if (dh)
		closedir(dh);
	free(dir);
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
	    str_differs(was->run_user, next.run_user))
		log_warnx("SIGHUP: listen addresses, domain, ports, nginx, postgres and user change only with a restart");
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
	char exe[PATH_MAX];
	ssize_t n;
	int ret = 1;

	memset(&e, 0, sizeof(e));
	e.cfg = cfg;
	e.ctl_fd = e.sig_fd = e.incoming_fd = -1;
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
	if (isolate_init(e.iso, cfg->root) < 0)
		goto out;
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
	if (control_listen(&e) < 0)
		goto out;
	if (sshd_start(&e.sshd, cfg, e.loop, e.self_exe) < 0)
		goto out;
	appstats_start(&e);
	liveroute_log_open(&e);
	/* apps serve without it: a dashboard that cannot start is a warning */
	if (dashboard_start(&dash, cfg, e.loop, e.self_exe) < 0)
		log_warnx("dashboard: %s", error_last());
	apps_load(&e);
	certs_start(e.certs);
	incoming_start(&e);
	log_info("serving %s (ssh %s, http %s, domain %s)", cfg->root,
		 cfg->ssh_listen, cfg->http_listen, cfg->domain);
	printf("berth: ready\n");
	fflush(stdout);
	if (loop_run(e.loop) < 0)
		log_warnx("%s", error_last());
	ret = 0;
out:
	if (ret)
		log_warnx("%s", error_last());
	dashboard_stop(dash);
	if (e.sshd)
		sshd_stop(e.sshd);
	certs_free(e.certs);
	e.certs = NULL;
	apps_shutdown(&e);
	liveroute_log_close(&e);
	if (e.nginx) {
		nginx_stop(e.nginx);
		nginx_free(e.nginx);
	}
	if (e.pg) {
		postgres_shutdown(e.pg);
		postgres_free(e.pg);
	}
	apps_free(&e);
	appstats_stop(&e);
	serverlog_end_followers();
	clients_finish(&e, CLIENT_FINISH_MS);
	if (e.iso) {
		isolate_release(e.iso);
		free(e.iso);
	}
	health_shutdown();
	if (e.file_cfg.root)
		config_release(&e.file_cfg);
	ports_release(&e.ports);
	free(e.self_exe);
	if (e.ctl_fd >= 0) {
		char *p = engine_path(&e, "%s", CONTROL_SOCKET);

		unlink(p);
		free(p);
		close(e.ctl_fd);
	}
	log_info("stopped");
	/* before the loop goes: followers of the log get their "ok" */
	serverlog_close();
	loop_free(e.loop);
	return ret;
}
