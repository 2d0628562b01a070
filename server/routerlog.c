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
#include "banned.h"

#define ROUTERLOG_CONNS 64
#define ROUTERLOG_BATCH 1024
#define ROUTERLOG_READ 65536
/* reads per wakeup per connection: others get their turn */
#define ROUTERLOG_READS 8

struct rl_conn {
	struct routerlog *rl;
	int fd;
	struct buf in;
	struct buf out;		/* formatted lines of the batch */
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

#define ROUTERLOG_FIELDS 13

enum { F_APP, F_METHOD, F_URI, F_HOST, F_ID, F_ADDR, F_STATUS, F_BYTES,
       F_MS, F_PROC, F_PORT, F_REL, F_DENY };

static const struct {
	const char *code;
	const char *desc;
} denials[] = {
	{ "stopped", "app is stopped" },
	{ "noweb", "no web process" },
	{ "crashing", "app is crashing" },
	{ "maintenance", "app is under maintenance" },
	{ "starting", "app is starting" },
};

static int all_digits(const char *s, size_t n, size_t max)
{
	size_t i;

	if (n == 0 || n > max)
		return 0;
	for (i = 0; i < n; i++)
		if (s[i] < '0' || s[i] > '9')
			return 0;
	return 1;
}

/* A word that needs no quoting: [A-Za-z0-9._:-], 1-64 bytes. */
static int plain_word(const char *s, size_t n)
{
	size_t i;

	if (n == 0 || n > 64)
		return 0;
	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		      (c >= '0' && c <= '9') || c == '.' || c == '_' ||
		      c == ':' || c == '-'))
			return 0;
	}
	return 1;
}

static void add_escaped(struct buf *b, const char *s, size_t n)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t i;

	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		char e[4];

		if (c == '"' || c == '\\') {
			e[0] = '\\';
			e[1] = (char)c;
			buf_add(b, e, 2);
		} else if (c < 0x20 || c > 0x7e) {
			e[0] = '\\';
			e[1] = 'x';
			e[2] = hex[c >> 4];
			e[3] = hex[c & 15];
			buf_add(b, e, 4);
		} else {
			buf_add(b, s + i, 1);
		}
	}
}

/*
 * One record (without its newline) into out as Heroku's line; the app
 * name is written first, NUL-terminated.  0, or -1 if it does not parse.
 */
static int format_record(const char *rec, size_t len, struct buf *out,
			 int *status_out, long *ms_out)
{
	const char *f[ROUTERLOG_FIELDS];
	size_t fl[ROUTERLOG_FIELDS], i, k = 0, start = 0;
	char app[APP_NAME_MAX + 1];
	const char *deny_desc = NULL;
	long status;

	for (i = 0; i <= len; i++) {
		if (i < len && rec[i] != '\0')
			continue;
		if (k == ROUTERLOG_FIELDS)
			return -1;
		f[k] = rec + start;
		fl[k] = i - start;
		k++;
		start = i + 1;
	}
	if (k != ROUTERLOG_FIELDS || fl[F_APP] > APP_NAME_MAX)
		return -1;
	memcpy(app, f[F_APP], fl[F_APP]);
	app[fl[F_APP]] = '\0';
	if (!app_name_valid(app) || !plain_word(f[F_METHOD], fl[F_METHOD]) ||
	    !all_digits(f[F_STATUS], fl[F_STATUS], 3) ||
	    !all_digits(f[F_BYTES], fl[F_BYTES], 19) ||
	    !all_digits(f[F_MS], fl[F_MS], 12) ||
	    !plain_word(f[F_PROC], fl[F_PROC]) ||
	    !all_digits(f[F_PORT], fl[F_PORT], 5) ||
	    !all_digits(f[F_REL], fl[F_REL], 10) ||
	    (fl[F_ID] && !plain_word(f[F_ID], fl[F_ID])) ||
	    (fl[F_ADDR] && !plain_word(f[F_ADDR], fl[F_ADDR])) ||
	    fl[F_URI] == 0)
		return -1;
	if (fl[F_DENY]) {
		for (i = 0; i < ARRAY_SIZE(denials); i++)
			if (strlen(denials[i].code) == fl[F_DENY] &&
			    !memcmp(denials[i].code, f[F_DENY], fl[F_DENY]))
				deny_desc = denials[i].desc;
		if (!deny_desc)
			return -1;
	}
	status = strtol(f[F_STATUS], NULL, 10);
	*status_out = (int)status;
	*ms_out = strtol(f[F_MS], NULL, 10);
	buf_add(out, app, fl[F_APP] + 1);
	if (deny_desc)
		buf_addf(out, "at=error code=%.*s desc=\"%s\" ",
			 (int)fl[F_DENY], f[F_DENY], deny_desc);
	else if (status == 502 || status == 504)
		buf_addstr(out, "at=error desc=\"the app did not answer\" ");
	else
		buf_addstr(out, "at=info ");
	buf_addf(out, "method=%.*s path=\"", (int)fl[F_METHOD], f[F_METHOD]);
	add_escaped(out, f[F_URI], fl[F_URI]);
	buf_addstr(out, "\" host=");
	add_escaped(out, f[F_HOST], fl[F_HOST]);
	buf_addf(out, " request_id=%.*s fwd=\"%.*s\" dyno=%.*s port=%.*s "
		 "release=%.*s service=%.*sms status=%ld bytes=%.*s "
		 "protocol=http",
		 (int)fl[F_ID], f[F_ID], (int)fl[F_ADDR], f[F_ADDR],
		 (int)fl[F_PROC], f[F_PROC], (int)fl[F_PORT], f[F_PORT],
		 (int)fl[F_REL], f[F_REL], (int)fl[F_MS], f[F_MS], status,
		 (int)fl[F_BYTES], f[F_BYTES]);
	buf_add(out, "", 1);
	return 0;
}

size_t routerlog_parse(const char *data, size_t len,
		       struct routerlog_line *lines, size_t max, size_t *n,
		       unsigned long *bad, struct buf *out)
{
	size_t used = 0, i, *offs;

	*n = 0;
	buf_reset(out);
	offs = xcalloc(max ? max : 1, sizeof(*offs));
	/* status and service time go in lines[] at once: lines[i] is
	 * filled in order, and only its pointers wait for out to settle */
	while (used < len && *n < max) {
		const char *rec = data + used;
		const char *nl = memchr(rec, '\n', len - used);
		size_t rlen, mark = out->len;

		if (!nl) {
			if (len - used > ROUTERLOG_LINE_MAX) {
				(*bad)++;
				used = len;
			}
			break;
		}
		rlen = (size_t)(nl - rec);
		used += rlen + 1;
		if (rlen > ROUTERLOG_LINE_MAX ||
		    format_record(rec, rlen, out, &lines[*n].status,
				  &lines[*n].service_ms) < 0) {
			out->len = mark;
			(*bad)++;
			continue;
		}
		offs[(*n)++] = mark;
	}
	/* out may have moved while it grew: point into it now */
	for (i = 0; i < *n; i++) {
		lines[i].app = out->data + offs[i];
		lines[i].text = lines[i].app + strlen(lines[i].app) + 1;
		lines[i].len = strlen(lines[i].text);
	}
	free(offs);
	return used;
}

#define ACCESS_FIELDS 10

enum { A_HOST, A_UPSTREAM, A_STATUS, A_BYTES, A_TIME, A_END, A_METHOD,
       A_ID, A_ADDR, A_URI };

/* The port of the last peer in $upstream_addr ("a, b : c": retries, then
 * internal redirects) if it is 127.0.0.1:PORT, else 0. */
static int upstream_port(const char *s, size_t n)
{
	static const char lo[] = "127.0.0.1:";
	size_t start = n, i;
	long port = 0;

	while (start > 0 && s[start - 1] != ' ' && s[start - 1] != ',')
		start--;
	if (n - start <= sizeof(lo) - 1 ||
	    memcmp(s + start, lo, sizeof(lo) - 1) != 0 ||
	    !all_digits(s + start + sizeof(lo) - 1,
			n - start - (sizeof(lo) - 1), 5))
		return 0;
	for (i = start + sizeof(lo) - 1; i < n; i++)
		port = port * 10 + (s[i] - '0');
	return port >= 1 && port <= 65535 ? (int)port : 0;
}

/* "S.mmm" ($request_time; $msec, with up to 12 digits of seconds) into
 * milliseconds; -1 if it is not that. */
static long long seconds_ms(const char *s, size_t n, size_t max_digits)
{
	const char *dot = memchr(s, '.', n);
	size_t ip = dot ? (size_t)(dot - s) : n, fp = dot ? n - ip - 1 : 0;
	long long ms = 0;
	size_t i;

	if (!all_digits(s, ip, max_digits) ||
	    (dot && !all_digits(dot + 1, fp, 3)))
		return -1;
	for (i = 0; i < ip; i++)
		ms = ms * 10 + (s[i] - '0');
	for (i = 0; i < 3; i++)
		ms = ms * 10 + (i < fp ? dot[1 + i] - '0' : 0);
	return ms;
}

int routerlog_access_parse(const char *line, size_t len,
			   struct routerlog_access *a)
{
	const char *f[ACCESS_FIELDS];
	size_t fl[ACCESS_FIELDS], i, k = 0, start = 0;

	if (len > ROUTERLOG_LINE_MAX)
		return -1;
	for (i = 0; i <= len && k < ACCESS_FIELDS; i++) {
		/* the URI, last, takes the rest of the line */
		if (i < len && (line[i] != '\t' || k == A_URI))
			continue;
		f[k] = line + start;
		fl[k] = i - start;
		k++;
		start = i + 1;
	}
	if (k != ACCESS_FIELDS || memchr(line, '\0', len) ||
	    fl[A_STATUS] != 3 || !all_digits(f[A_STATUS], 3, 3) ||
	    !all_digits(f[A_BYTES], fl[A_BYTES], 18) ||
	    !plain_word(f[A_METHOD], fl[A_METHOD]) ||
	    (fl[A_ID] && !plain_word(f[A_ID], fl[A_ID])) ||
	    (fl[A_ADDR] && !plain_word(f[A_ADDR], fl[A_ADDR])) ||
	    fl[A_URI] == 0 || fl[A_HOST] > 255 || memchr(line, '\n', len))
		return -1;
	memset(a, 0, sizeof(*a));
	a->ms = (long)seconds_ms(f[A_TIME], fl[A_TIME], 9);
	a->end_ms = seconds_ms(f[A_END], fl[A_END], 12);
	if (a->ms < 0 || a->end_ms < 0)
		return -1;
	a->status = (int)strtol(f[A_STATUS], NULL, 10);
	a->bytes = strtol(f[A_BYTES], NULL, 10);
	a->port = upstream_port(f[A_UPSTREAM], fl[A_UPSTREAM]);
	a->host = f[A_HOST];
	a->host_len = fl[A_HOST];
	a->method = f[A_METHOD];
	a->method_len = fl[A_METHOD];
	a->id = f[A_ID];
	a->id_len = fl[A_ID];
	a->addr = f[A_ADDR];
	a->addr_len = fl[A_ADDR];
	a->uri = f[A_URI];
	a->uri_len = fl[A_URI] > 2048 ? 2048 : fl[A_URI];
	return 0;
}

void routerlog_access_record(const struct routerlog_access *a,
			     const char *app, const char *proc, int rel,
			     const char *deny, struct buf *rec)
{
	buf_addf(rec, "%s%c%.*s%c", app, 0, (int)a->method_len, a->method, 0);
	buf_add(rec, a->uri, a->uri_len);
	buf_add(rec, "", 1);
	buf_add(rec, a->host, a->host_len);
	buf_addf(rec, "%c%.*s%c%.*s%c%d%c%ld%c%ld%c%s%c%d%c%d%c%s\n", 0,
		 (int)a->id_len, a->id, 0, (int)a->addr_len, a->addr, 0,
		 a->status, 0, a->bytes, 0, a->ms, 0, proc, 0, a->port, 0,
		 rel, 0, deny);
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
	buf_release(&c->out);
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
					      &rl->st.bad, &c->out);

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
