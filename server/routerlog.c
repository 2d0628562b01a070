/*
 * routerlog: see routerlog.h.
 */
#include "routerlog.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "log.h"
#include "loop.h"
#include "util.h"

#define ROUTERLOG_CONNS 64
#define ROUTERLOG_BATCH 1024
#define ROUTERLOG_READ 65536
/* reads per wakeup per connection: others get their turn */
#define ROUTERLOG_READS 8

struct rl_conn {
	struct routerlog *rl;
	int fd;
	struct buf in;
};

struct routerlog {
	struct loop *loop;
	int fd;
	char *path;
	long allow_uid;
	routerlog_fn fn;
	void *arg;
	struct rl_conn *conns[ROUTERLOG_CONNS];
	struct routerlog_stats st;
	int64_t refused_logged_ms;
};

static int line_ok(const char *app, const char *text, size_t len)
{
	size_t i;

	if (!app_name_valid(app))
		return 0;
	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)text[i];

		if (c < 0x20 || c > 0x7e)
			return 0;
	}
	return 1;
}

size_t routerlog_parse(char *data, size_t len, struct routerlog_line *lines,
		       size_t max, size_t *n, unsigned long *bad)
{
	size_t used = 0;

	*n = 0;
	while (used < len && *n < max) {
		char *line = data + used;
		char *nl = memchr(line, '\n', len - used);
		char *tab;
		size_t llen;

		if (!nl) {
			if (len - used > ROUTERLOG_LINE_MAX) {
				(*bad)++;
				return len;
			}
			break;
		}
		llen = (size_t)(nl - line);
		used += llen + 1;
		*nl = '\0';
		tab = memchr(line, '\t', llen);
		if (!tab || llen > ROUTERLOG_LINE_MAX) {
			(*bad)++;
			continue;
		}
		*tab = '\0';
		if (!line_ok(line, tab + 1, (size_t)(nl - tab - 1))) {
			(*bad)++;
			continue;
		}
		lines[*n].app = line;
		lines[*n].text = tab + 1;
		lines[*n].len = (size_t)(nl - tab - 1);
		(*n)++;
	}
	return used;
}

static void conn_close(struct rl_conn *c)
{
	struct routerlog *rl = c->rl;
	size_t i;

	for (i = 0; i < ROUTERLOG_CONNS; i++)
		if (rl->conns[i] == c)
			rl->conns[i] = NULL;
	loop_del_fd(rl->loop, c->fd);
	close(c->fd);
	buf_release(&c->in);
	free(c);
}

/* Hand every whole line in c->in to fn, a batch at a time. */
static int deliver(struct rl_conn *c)
{
	struct routerlog *rl = c->rl;
	struct routerlog_line lines[ROUTERLOG_BATCH];

	for (;;) {
		size_t n = 0;
		size_t used = routerlog_parse(c->in.data, c->in.len, lines,
					      ARRAY_SIZE(lines), &n,
					      &rl->st.bad);

		if (n) {
			rl->st.lines += n;
			rl->fn(rl->arg, lines, n);
		}
		if (!used)
			return 0;
		buf_consume(&c->in, used);
		if (n < ARRAY_SIZE(lines))
			return 0;
	}
}

static void on_conn(struct loop *l, int fd, unsigned ev, void *arg)
{
	struct rl_conn *c = arg;
	char chunk[ROUTERLOG_READ];
	int i;

	for (i = 0; i < ROUTERLOG_READS; i++) {
		ssize_t k = read(fd, chunk, sizeof(chunk));

		if (k < 0 && (errno == EAGAIN || errno == EINTR))
			return;
		if (k <= 0) {
			deliver(c);
			conn_close(c);
			return;
		}
		if (buf_add(&c->in, chunk, (size_t)k) < 0) {
			/* cannot happen: deliver() keeps it below a line */
			conn_close(c);
			return;
		}
		deliver(c);
	}
}

static void on_accept(struct loop *l, int fd, unsigned ev, void *arg)
{
	struct routerlog *rl = arg;

	for (;;) {
		struct ucred cred;
		socklen_t clen = sizeof(cred);
		struct rl_conn *c;
		size_t i;
		int cfd = accept4(fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);

		if (cfd < 0)
			return;
		if (getsockopt(cfd, SOL_SOCKET, SO_PEERCRED, &cred,
			       &clen) < 0 ||
		    (cred.uid != geteuid() &&
		     (rl->allow_uid < 0 || (long)cred.uid != rl->allow_uid))) {
			rl->st.refused++;
			if (now_ms() - rl->refused_logged_ms > 60000) {
				rl->refused_logged_ms = now_ms();
				log_warnx("router log: refused a connection "
					  "from uid %ld (pid %ld)",
					  (long)cred.uid, (long)cred.pid);
			}
			close(cfd);
			continue;
		}
		for (i = 0; i < ROUTERLOG_CONNS && rl->conns[i]; i++)
			;
		if (i == ROUTERLOG_CONNS) {
			close(cfd);
			continue;
		}
		c = xcalloc(1, sizeof(*c));
		c->rl = rl;
		c->fd = cfd;
		/* a line at most, plus one read */
		buf_init(&c->in, ROUTERLOG_LINE_MAX + ROUTERLOG_READ + 2);
		if (loop_add_fd(rl->loop, cfd, LOOP_READ, on_conn, c) < 0) {
			close(cfd);
			buf_release(&c->in);
			free(c);
			continue;
		}
		rl->conns[i] = c;
	}
}

int routerlog_open(struct routerlog **out, struct loop *l, const char *path,
		   routerlog_fn fn, void *arg)
{
	struct routerlog *rl = xcalloc(1, sizeof(*rl));
	struct sockaddr_un sa;

	*out = NULL;
	rl->loop = l;
	rl->fd = -1;
	rl->allow_uid = -1;
	rl->fn = fn;
	rl->arg = arg;
	memset(&sa, 0, sizeof(sa));
	sa.sun_family = AF_UNIX;
	if (strlen(path) >= sizeof(sa.sun_path)) {
		error_set("socket path '%s' is too long", path);
		goto fail;
	}
	memcpy(sa.sun_path, path, strlen(path) + 1);
	rl->path = xstrdup(path);
	rl->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (rl->fd < 0) {
		error_setsys("cannot make a socket");
		goto fail;
	}
	unlink(path);
	if (bind(rl->fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		error_setsys("cannot bind '%s'", path);
		goto fail;
	}
	/* nginx's workers may be another user: SO_PEERCRED decides */
	if (chmod(path, 0666) < 0) {
		error_setsys("cannot chmod '%s'", path);
		goto fail;
	}
	if (listen(rl->fd, 64) < 0) {
		error_setsys("cannot listen on '%s'", path);
		goto fail;
	}
	if (loop_add_fd(l, rl->fd, LOOP_READ, on_accept, rl) < 0)
		goto fail;
	*out = rl;
	return 0;
fail:
	routerlog_free(rl);
	return -1;
}

void routerlog_allow_uid(struct routerlog *rl, long uid)
{
	rl->allow_uid = uid;
}

void routerlog_get_stats(const struct routerlog *rl,
			 struct routerlog_stats *out)
{
	*out = rl->st;
}

void routerlog_free(struct routerlog *rl)
{
	size_t i;

	if (!rl)
		return;
	for (i = 0; i < ROUTERLOG_CONNS; i++)
		if (rl->conns[i])
			conn_close(rl->conns[i]);
	if (rl->fd >= 0) {
		loop_del_fd(rl->loop, rl->fd);
		close(rl->fd);
		if (rl->path)
			unlink(rl->path);
	}
	free(rl->path);
	free(rl);
}
