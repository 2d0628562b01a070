/* listener: see listener.h. */
#include "listener.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>
#include "banned.h"

void listener_init(struct listener *l)
{
	memset(l, 0, sizeof(*l));
	l->want_fd = -1;
	l->fd = -1;
}

void listener_release(struct listener *l)
{
	if (l->fd >= 0)
		close(l->fd);
	free(l->name);
	free(l->host);
	free(l->path);
	listener_init(l);
}

/* Perl's \s, which the original's patterns use. */
static int is_space(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' ||
	       c == '\v';
}

static int is_digit(char c)
{
	return c >= '0' && c <= '9';
}

/* Digits [s, e) as a number, -1 above max. */
static long digits_value(const char *s, const char *e, long max)
{
	long v = 0;

	for (; s < e; s++) {
		v = v * 10 + (*s - '0');
		if (v > max)
			return -1;
	}
	return v;
}

/*
 * The tail both forms share: \s*(u?)(\d+)(?:\s*=(\d+))?\s*$ over [s, e).
 * The port's digits come back in [*ps, *pe), the fd's in [*fs, *fe)
 * (both NULL when absent).
 */
static int parse_tail(const char *s, const char *e, int *udp,
		      const char **ps, const char **pe,
		      const char **fs, const char **fe)
{
	while (s < e && is_space(*s))
		s++;
	*udp = 0;
	if (s < e && *s == 'u') {
		*udp = 1;
		s++;
	}
	*ps = s;
	while (s < e && is_digit(*s))
		s++;
	*pe = s;
	if (*ps == *pe)
		return -1;
	*fs = *fe = NULL;
	{
		const char *t = s;

		while (t < e && is_space(*t))
			t++;
		if (t < e && *t == '=') {
			t++;
			*fs = t;
			while (t < e && is_digit(*t))
				t++;
			*fe = t;
			if (*fs == *fe)
				return -1;
			s = t;
		}
	}
	while (s < e && is_space(*s))
		s++;
	return s == e ? 0 : -1;
}

/*
 * The head of "HOST:PORT": ^\s*(?:\[\s*|)([^\]]*)\s*(?:\]\s*|)$.  The
 * host is greedy, so it keeps spaces before ']' or ':' as the original's
 * pattern does.
 */
static int parse_head(const char *s, const char *e, const char **hs,
		      const char **he)
{
	const char *close;

	while (s < e && is_space(*s))
		s++;
	if (s < e && *s == '[') {
		s++;
		while (s < e && is_space(*s))
			s++;
	}
	*hs = s;
	close = memchr(s, ']', (size_t)(e - s));
	if (!close) {
		*he = e;
		return 0;
	}
	*he = close;
	for (s = close + 1; s < e; s++)
		if (!is_space(*s))
			return -1;
	return 0;
}

int listener_parse_port(struct listener *l, const char *spec)
{
	const char *end = spec + strlen(spec), *colon;
	const char *ps, *pe, *fs, *fe, *hs = NULL, *he = NULL;
	long port, fd = -1;
	int udp;

	if (parse_tail(spec, end, &udp, &ps, &pe, &fs, &fe) == 0) {
		/* "PORT": every IPv4 address, as the original binds */
	} else {
		colon = memrchr(spec, ':', (size_t)(end - spec));
		if (!colon ||
		    parse_tail(colon + 1, end, &udp, &ps, &pe, &fs, &fe) < 0 ||
		    parse_head(spec, colon, &hs, &he) < 0)
			goto invalid;
	}
	port = digits_value(ps, pe, 65535);
	if (port < 0)
		goto invalid;
	if (fs) {
		fd = digits_value(fs, fe, INT_MAX);
		if (fd < 0)
			goto invalid;
	}
	l->kind = udp ? LISTENER_UDP : LISTENER_TCP;
	l->port = (int)port;
	l->want_fd = (int)fd;
	if (!hs) {
		l->name = xstrndup(ps, (size_t)(pe - ps));
		return 0;
	}
	l->host = xstrndup(hs, (size_t)(he - hs));
	l->ipv6 = strchr(l->host, ':') != NULL;
	l->name = xasprintf(l->ipv6 ? "[%s]:%.*s" : "%s:%.*s", l->host,
			    (int)(pe - ps), ps);
	return 0;
invalid:
	error_set("invalid port '%s'", spec);
	return ERR_INVALID;
}

int listener_parse_path(struct listener *l, const char *path)
{
	struct sockaddr_un sun;

	if (!path[0] || strlen(path) >= sizeof(sun.sun_path)) {
		error_set("invalid socket path '%s'", path);
		return ERR_INVALID;
	}
	l->kind = LISTENER_UNIX;
	l->path = xstrdup(path);
	l->name = xstrdup(path);
	return 0;
}

static int resolve(struct listener *l, struct sockaddr_storage *ss,
		   socklen_t *len)
{
	struct addrinfo hints, *res = NULL;
	int rc;

	memset(ss, 0, sizeof(*ss));
	if (!l->host) {
		struct sockaddr_in *sin = (struct sockaddr_in *)ss;

		sin->sin_family = AF_INET;
		sin->sin_addr.s_addr = htonl(INADDR_ANY);
		sin->sin_port = htons((uint16_t)l->port);
		*len = sizeof(*sin);
		return 0;
	}
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = l->ipv6 ? AF_INET6 : AF_INET;
	hints.ai_socktype = l->kind == LISTENER_UDP ? SOCK_DGRAM : SOCK_STREAM;
	/* IPv6 as literals only (zone ids allowed), as the original. */
	if (l->ipv6)
		hints.ai_flags = AI_NUMERICHOST;
	rc = l->host[0] ? getaddrinfo(l->host, NULL, &hints, &res) : EAI_NONAME;
	if (rc != 0 || !res) {
		int e = rc == EAI_SYSTEM ? errno : 0;

		snprintf(l->resolve_why, sizeof(l->resolve_why), "%s",
			 rc == EAI_SYSTEM ? strerror(e) : gai_strerror(rc));
		error_set("cannot resolve '%s': %s", l->host, l->resolve_why);
		if (res)
			freeaddrinfo(res);
		errno = e;
		return LISTENER_ERR_RESOLVE;
	}
	memcpy(ss, res->ai_addr, res->ai_addrlen);
	*len = res->ai_addrlen;
	freeaddrinfo(res);
	if (ss->ss_family == AF_INET6)
		((struct sockaddr_in6 *)ss)->sin6_port = htons((uint16_t)l->port);
	else
		((struct sockaddr_in *)ss)->sin_port = htons((uint16_t)l->port);
	return 0;
}

static int open_unix(struct listener *l, int backlog, int *replaced)
{
	struct sockaddr_un sun;
	struct stat st;
	mode_t old;
	int fd, rc;

	if (lstat(l->path, &st) == 0 && S_ISSOCK(st.st_mode)) {
		if (unlink(l->path) < 0 && errno != ENOENT) {
			error_setsys("cannot remove old socket '%s'", l->path);
			return LISTENER_ERR_STALE;
		}
		*replaced = 1;
	}
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return error_setsys("socket");
	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	memcpy(sun.sun_path, l->path, strlen(l->path) + 1);
	/* Anyone may connect, as under the original: the folder guards it. */
	old = umask(0);
	rc = bind(fd, (struct sockaddr *)&sun, sizeof(sun));
	umask(old);
	if (rc < 0) {
		int e = errno;

		error_set("cannot bind '%s': %s", l->path, strerror(e));
		close(fd);
		errno = e;
		return LISTENER_ERR_BIND;
	}
	if (listen(fd, backlog) < 0) {
		int e = errno;

		error_set("cannot listen on '%s': %s", l->path, strerror(e));
		close(fd);
		unlink(l->path);
		errno = e;
		return LISTENER_ERR_LISTEN;
	}
	l->fd = fd;
	return 0;
}

int listener_open(struct listener *l, int backlog, int *replaced)
{
	struct sockaddr_storage ss;
	socklen_t len;
	int fd, rc, one = 1;
	int type = l->kind == LISTENER_UDP ? SOCK_DGRAM : SOCK_STREAM;

	*replaced = 0;
	if (l->kind == LISTENER_UNIX)
		return open_unix(l, backlog, replaced);
	rc = resolve(l, &ss, &len);
	if (rc < 0)
		return rc;
	fd = socket(ss.ss_family, type | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return error_setsys("socket");
	/* Failures here are harmless: bind says what matters. */
	(void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (ss.ss_family == AF_INET6)
		(void)setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one,
				 sizeof(one));
	if (bind(fd, (struct sockaddr *)&ss, len) < 0) {
		int e = errno;

		error_set("cannot bind '%s': %s", l->name, strerror(e));
		close(fd);
		errno = e;
		return LISTENER_ERR_BIND;
	}
	if (l->kind != LISTENER_UDP && listen(fd, backlog) < 0) {
		int e = errno;

		error_set("cannot listen on '%s': %s", l->name, strerror(e));
		close(fd);
		errno = e;
		return LISTENER_ERR_LISTEN;
	}
	l->fd = fd;
	return 0;
}

int listener_move_to(struct listener *l, int fd)
{
	if (l->fd == fd)
		return listener_set_inherit(l, 1);
	if (dup2(l->fd, fd) < 0)
		return error_setsys("dup2 to fd %d", fd);
	close(l->fd);
	l->fd = fd;
	return 0;
}

int listener_set_inherit(struct listener *l, int inherit)
{
	if (fcntl(l->fd, F_SETFD, inherit ? 0 : FD_CLOEXEC) < 0)
		return error_setsys("fcntl");
	return 0;
}

void listener_format_server_starter(struct buf *out,
				    const struct listener *ls, size_t n,
				    int first)
{
	size_t i;

	for (i = 0; i < n; i++)
		buf_addf(out, "%s%s=%d", i ? ";" : "", ls[i].name,
			 first < 0 ? ls[i].fd : first + (int)i);
}

void listener_format_fdnames(struct buf *out, const struct listener *ls,
			     size_t n)
{
	size_t i, k, len;

	for (i = 0; i < n; i++) {
		if (i)
			buf_addstr(out, ":");
		len = strlen(ls[i].name);
		if (len > 255)
			len = 255;
		for (k = 0; k < len; k++) {
			char c = ls[i].name[k];

			if (c == ':' || (unsigned char)c < 0x20 || c == 0x7f)
				c = '_';
			buf_add(out, &c, 1);
		}
	}
}

int listener_child_place(const int *fds, size_t n, int first)
{
	int tmp[LISTENER_MAX];
	size_t i;

	if (n > LISTENER_MAX) {
		errno = EINVAL;
		return -1;
	}
	/* Out of the target range first, so no dup2 clobbers a socket
	 * that still has to move. */
	for (i = 0; i < n; i++) {
		tmp[i] = fcntl(fds[i], F_DUPFD_CLOEXEC, first + (int)n);
		if (tmp[i] < 0)
			return -1;
	}
	for (i = 0; i < n; i++)
		if (dup2(tmp[i], first + (int)i) < 0)
			return -1;
	for (i = 0; i < n; i++)
		close(tmp[i]);
	return 0;
}

void listener_pid_var(char buf[LISTENER_PID_VAR_LEN], pid_t pid)
{
	static const char prefix[] = "LISTEN_PID=";
	char digits[24];
	size_t n = 0, k = sizeof(prefix) - 1;
	unsigned long v = (unsigned long)pid;

	memcpy(buf, prefix, k);
	do {
		digits[n++] = (char)('0' + v % 10);
		v /= 10;
	} while (v && n < sizeof(digits));
	while (n && k < LISTENER_PID_VAR_LEN - 1)
		buf[k++] = digits[--n];
	buf[k] = '\0';
}
