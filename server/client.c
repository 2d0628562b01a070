/* client: see client.h. */
#include "client.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "control.h"
#include "loop.h"
#include "util.h"
#include "banned.h"

#define CLIENT_MAX_OUT (64 * 1024 * 1024)

struct client_server {
	struct loop *loop;
	char *path;
	int fd;
	struct client *clients;		/* open connections */
	void (*on_request)(struct client *, int, char **, void *);
	void *arg;
};

struct client {
	struct client_server *srv;
	struct client *prev, *next;	/* srv->clients */
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
		loop_del_fd(c->srv->loop, c->fd);
		close(c->fd);
	}
	if (c->prev)
		c->prev->next = c->next;
	else
		c->srv->clients = c->next;
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

/* What the socket takes now goes; the rest is moved to the front once
 * (not after every write: a queue of megabytes would be moved again and
 * again). */
static void client_flush(struct client *c)
{
	size_t done = 0;
	ssize_t n;

	while (done < c->out.len) {
		n = write(c->fd, c->out.data + done, c->out.len - done);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			break;
		if (n <= 0) {
			client_close(c);
			return;
		}
		done += (size_t)n;
	}
	buf_consume(&c->out, done);
	if (c->out.len) {
		loop_mod_fd(c->srv->loop, c->fd, LOOP_READ | LOOP_WRITE);
		return;
	}
	if (c->finished) {
		client_close(c);
		return;
	}
	loop_mod_fd(c->srv->loop, c->fd, LOOP_READ);
}

/* Behind output still queued, data waits for the socket to take that
 * (the loop's write watch): trying to write after each line of a long
 * answer cost two system calls a line and 4.3 s in the loop for
 * "logs -n 100000". */
static void client_queue(struct client *c, const char *data, size_t len)
{
	int queued;

	if (!c || c->gone || c->finished)
		return;
	queued = c->out.len > 0;
	buf_add(&c->out, data, len);
	if (c->out.len > CLIENT_MAX_OUT) {
		client_close(c);
		return;
	}
	if (!queued)
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

/* "PREFIX FIELDS\n" from fmt, or NULL when the fields hold a newline
 * (one line only: such fields are not said).  Fresh string. */
static char *fields_line(const char *prefix, const char *fmt, va_list ap)
	__attribute__((format(printf, 2, 0)));
static char *fields_line(const char *prefix, const char *fmt, va_list ap)
{
	char *fields = xvasprintf(fmt, ap), *line = NULL;

	if (!strchr(fields, '\n'))
		line = xasprintf("%s %s\n", prefix, fields);
	free(fields);
	return line;
}

void client_fields(struct client *c, const char *fmt, ...)
{
	va_list ap;
	char *line;

	if (!c || c->gone || c->finished)
		return;
	va_start(ap, fmt);
	line = fields_line("fields", fmt, ap);
	va_end(ap);
	if (line)
		client_queue(c, line, strlen(line));
	free(line);
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

void client_ok_fields(struct client *c, const char *fmt, ...)
{
	va_list ap;
	char *line;

	if (!c || c->gone || c->finished)
		return;
	va_start(ap, fmt);
	line = fields_line("ok", fmt, ap);
	va_end(ap);
	/* fields that are not one line: the end all the same */
	if (line)
		client_finish(c, line, strlen(line));
	else
		client_finish(c, "ok\n", 3);
	free(line);
}

static void client_error_va(struct client *c, const char *code,
			    const char *fmt, va_list ap)
	__attribute__((format(printf, 3, 0)));

void client_error(struct client *c, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	client_error_va(c, NULL, fmt, ap);
	va_end(ap);
}

void client_error_code(struct client *c, const char *code,
		       const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	client_error_va(c, code, fmt, ap);
	va_end(ap);
}

static void client_error_va(struct client *c, const char *code,
			    const char *fmt, va_list ap)
{
	struct buf b = BUF_INIT;
	char *p, *q;

	if (!c || c->gone || c->finished)
		return;
	p = xvasprintf(fmt, ap);
	/* The final line is one line: a message of several goes out whole
	 * first, in order, then its first line as the error. */
	q = strchr(p, '\n');
	client_ref(c);		/* client_data() may close it */
	if (q) {
		client_data(c, " !     %s", p);
		*q = '\0';
	}
	if (code)
		buf_addf(&b, "error %s: %s\n", code, p);
	else
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
		loop_del_fd(c->srv->loop, c->fd);
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
static void clients_finish(struct client_server *s, long timeout_ms)
{
	int64_t deadline = now_ms() + timeout_ms;
	struct client *c, *next;
	struct pollfd pfd;

	for (c = s->clients; c; c = c->next) {
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
	for (c = s->clients; c; c = next) {
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
		c->srv->on_request(c, (int)argv.n, argv.v, c->srv->arg);
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

/* Take what the peer has sent so far, now (client.h). */
void client_read_input(struct client *c)
{
	char chunk[4096];
	ssize_t n;

	if (!c || c->gone || !c->dispatched || !c->on_input)
		return;
	client_ref(c);
	while (!c->gone && c->on_input) {
		n = client_recv(c, c->fd, chunk, sizeof(chunk));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			break;		/* EAGAIN: nothing more yet */
		if (n == 0) {
			client_close(c);
			break;
		}
		c->on_input(c, chunk, (size_t)n, c->on_input_arg);
	}
	client_unref(c);	/* c may be gone after this */
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
	struct client_server *s = arg;
	struct client *c;
	int cfd;

	cfd = accept4(fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
	if (cfd < 0)
		return;
	c = xcalloc(1, sizeof(*c));
	c->srv = s;
	c->fd = cfd;
	c->refs = 1;
	buf_init(&c->in, CONTROL_LINE_MAX + 4096);
	if (loop_add_fd(l, cfd, LOOP_READ, on_client, c) < 0) {
		close(cfd);
		free(c);
		return;
	}
	c->next = s->clients;
	if (c->next)
		c->next->prev = c;
	s->clients = c;
}

int client_listen(struct client_server **out, struct loop *l,
		  const char *path,
		  void (*on_request)(struct client *c, int argc, char **argv,
				     void *arg),
		  void *arg)
{
	struct client_server *s = NULL;
	struct sockaddr_un sa;
	mode_t old;
	int fd = -1, ret = -1;

	*out = NULL;
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
	s = xcalloc(1, sizeof(*s));
	s->loop = l;
	s->path = xstrdup(path);
	s->on_request = on_request;
	s->arg = arg;
	s->fd = fd;
	fd = -1;
	ret = loop_add_fd(l, s->fd, LOOP_READ, on_control, s);
	if (ret < 0) {
		client_server_close(s, 0);
		s = NULL;
		goto out;
	}
	*out = s;
out:
	if (fd >= 0)
		close(fd);
	return ret;
}

void client_server_close(struct client_server *s, long timeout_ms)
{
	if (!s)
		return;
	clients_finish(s, timeout_ms);
	if (s->fd >= 0) {
		loop_del_fd(s->loop, s->fd);
		close(s->fd);
		unlink(s->path);
	}
	free(s->path);
	free(s);
}

