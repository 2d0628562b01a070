/* sshd: see sshd.h. */
#include "sshd.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <pty.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <libssh/callbacks.h>
#include <libssh/libssh.h>
#include <libssh/server.h>

#include "access.h"
#include "backup.h"
#include "oneoff.h"
#include "certs.h"
#include "config.h"
#include "commands.h"
#include "control.h"
#include "export.h"
#include "gitserve.h"
#include "keys.h"
#include "log.h"
#include "loop.h"
#include "reaper.h"
#include "spawn.h"
#include "util.h"
#include "hostkeys.h"
#include "banned.h"

extern char **environ;

#define DEFAULT_LISTEN "0.0.0.0:2222"

/* ---------------------------------------------------------------- engine */

/*
 * The door (OpenSSH's MaxStartups and PerSourceMaxStartups).  Each session
 * has a socketpair to the engine (its fd 4) and says where it is: 'k' once
 * the key exchange is done, then, authenticated and with its command, 'a'
 * (a session) or 'f' (a follower, "logs -f"), which the engine answers
 * 'y' or 'n' (max_sessions and ssh_max_followers are full).
 *
 * Unauthenticated connections are capped: from START on a new one is
 * dropped with a chance that grows from RATE % to 100 % at FULL, and at
 * most ssh_per_source_max_startups come from one address.  Before a new
 * connection is dropped, the oldest one that has not even finished the
 * key exchange (from that address, for the per-source limit) is closed
 * instead: connections that sit idle cost an attacker nothing, and must
 * never lock a real user out until the grace time ends them.
 */
enum sess_state {
	SESS_WAITING,		/* accepted, no process yet: the client is silent */
	SESS_PREKEX,		/* connected, key exchange not done */
	SESS_UNAUTH,		/* key exchange done, not authenticated */
	SESS_AUTH,		/* running a command */
	SESS_FOLLOWER,		/* running "logs -f" */
	SESS_GONE,		/* killed or refused, not reaped yet */
};

struct sess {
	pid_t pid;		/* 0 while waiting */
	int conn;		/* the connection while waiting, else -1 */
	int watched;		/* conn is in the loop */
	enum sess_state state;
	int status_fd;		/* our end of its socketpair, or -1 */
	int64_t started;
	char ip[INET6_ADDRSTRLEN];
};

struct sshd {
	struct loop *loop;
	const struct config *cfg;	/* live: SIGHUP changes the limits */
	char *root;
	char *self_exe;
	int fd;
	struct sess *sess;	/* live session processes */
	size_t nsess, alloc;
	int64_t last_drop_log;
	char last_drop[160];	/* what it said then (cut) */
	int drop_logs;		/* lines in the second from last_drop_log */
	uint64_t wait_timer;	/* for waiting connections, or 0 */
};

#define STATUS_FD 4		/* the session's end of its socketpair */
/* A client speaks first (its version line); one that stays silent this
 * long gets its session anyway, for clients that wait for ours. */
#define SILENT_WAIT_MS 1000

/* "ADDR:PORT", "[V6]:PORT", ":PORT" or "PORT": host (NULL: any), port. */
static int split_listen(const char *spec, char **host, char **port)
{
	const char *colon;
	long p;

	*host = NULL;
	*port = NULL;
	if (spec[0] == '[') {
		const char *close = strchr(spec, ']');

		if (!close || close[1] != ':')
			goto bad;
		*host = xstrndup(spec + 1, (size_t)(close - spec - 1));
		colon = close + 1;
	} else {
		colon = strrchr(spec, ':');
		if (colon && colon != spec)
			*host = xstrndup(spec, (size_t)(colon - spec));
	}
	*port = xstrdup(colon ? colon + 1 : spec);
	p = parse_long(*port, 65535);
	if (p < 0)
		goto bad;
	return 0;
bad:
	FREE_AND_NULL(*host);
	FREE_AND_NULL(*port);
	return error_set("bad listen address '%s' (want ADDR:PORT)", spec);
}

static int listen_on(const char *spec)
{
	struct addrinfo hints, *res = NULL;
	char *host = NULL, *port = NULL;
	int fd = -1, one = 1, r;

	if (split_listen(spec, &host, &port) < 0)
		return -1;
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_PASSIVE | AI_NUMERICHOST | AI_NUMERICSERV;
	r = getaddrinfo(host, port, &hints, &res);
	if (r) {
		error_set("bad listen address '%s': %s", spec, gai_strerror(r));
		goto out;
	}
	fd = socket(res->ai_family,
		    res->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0) {
		error_setsys("cannot listen on '%s'", spec);
		goto out;
	}
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
	    bind(fd, res->ai_addr, res->ai_addrlen) < 0 ||
	    listen(fd, 128) < 0) {
		error_setsys("cannot listen on '%s'", spec);
		close(fd);
		fd = -1;
		goto out;
	}
out:
	if (res)
		freeaddrinfo(res);
	free(host);
	free(port);
	return fd;
}

/*
 * Made once, before we listen, so that no session races to create it.
 * Written to a temporary name under umask 077 and renamed: a crash never
 * leaves a half-written key that every later session would choke on.
 */
static int host_key_ensure(const char *root, const char *file,
			   enum ssh_keytypes_e type, int bits)
{
	char *dir = xasprintf("%s/host", root);
	char *path = xasprintf("%s/%s", root, file);
	char *tmp = xasprintf("%s.new", path);
	ssh_key key = NULL;
	mode_t old;
	int ret = -1, r;

	if (mkdir_p(dir, 0700) < 0)
		goto out;
	if (path_exists(path)) {
		if (ssh_pki_import_privkey_file(path, NULL, NULL, NULL,
						&key) != SSH_OK) {
			error_set("cannot read host key '%s'", path);
			goto out;
		}
		ret = 0;
		goto out;
	}
	if (ssh_pki_generate(type, bits, &key) != SSH_OK) {
		error_set("cannot generate a host key");
		goto out;
	}
	unlink(tmp);
	old = umask(077);
	r = ssh_pki_export_privkey_file(key, NULL, NULL, NULL, tmp);
	umask(old);
	if (r != SSH_OK) {
		error_set("cannot write host key '%s'", tmp);
		goto out;
	}
	if (chmod(tmp, 0600) < 0 || rename(tmp, path) < 0) {
		error_setsys("cannot install host key '%s'", path);
		unlink(tmp);
		goto out;
	}
	log_info("made host key %s", path);
	ret = 0;
out:
	/* for users to check on their first connection (docs/ssh.md) */
	if (ret == 0) {
		char *fp = NULL;

		if (keys_fingerprint(key, &fp) == 0)
			log_info("host key %s %s", ssh_key_type_to_char(
					 ssh_key_type(key)), fp);
		free(fp);
	}
	if (key)
		ssh_key_free(key);
	free(dir);
	free(path);
	free(tmp);
	return ret;
}

static struct sess *sess_by_fd(struct sshd *s, int fd)
{
	size_t i;

	for (i = 0; i < s->nsess; i++)
		if (s->sess[i].status_fd == fd)
			return &s->sess[i];
	return NULL;
}

static size_t count_state(const struct sshd *s, enum sess_state st)
{
	size_t i, n = 0;

	for (i = 0; i < s->nsess; i++)
		n += s->sess[i].state == st;
	return n;
}

static void sess_close_status(struct sshd *s, struct sess *x)
{
	if (x->status_fd < 0)
		return;
	loop_del_fd(s->loop, x->status_fd);
	close(x->status_fd);
	x->status_fd = -1;
}

/*
 * A flood must not fill the log: a line said again within a second is
 * not repeated, and at most five lines go out a second; a different
 * event (a refusal, then an idle connection closed) is still said.
 */
static void door_log(struct sshd *s, const char *ip, const char *what)
{
	int64_t now = now_ms();
	char line[sizeof(s->last_drop)];

	snprintf(line, sizeof(line), "%s: %s", ip, what);
	if (now - s->last_drop_log < 1000) {
		if (!strcmp(line, s->last_drop) || s->drop_logs >= 5)
			return;
		s->drop_logs++;
	} else {
		s->last_drop_log = now;
		s->drop_logs = 1;
	}
	memcpy(s->last_drop, line, sizeof(line));
	log_warnx("%s", line);
}

/* 'y' lets the session go on; 'n' makes it say so and close. */
static void sess_reply(struct sshd *s, struct sess *x, int yes)
{
	char c = yes ? 'y' : 'n';

	if (write(x->status_fd, &c, 1) != 1) {
		log_debug("session %d: status: %s", (int)x->pid,
			  strerror(errno));
		sess_close_status(s, x);
	}
}

static void on_session_status(struct loop *l, int fd, unsigned events,
			      void *arg)
{
	struct sshd *s = arg;
	struct sess *x = sess_by_fd(s, fd);
	char buf[16];
	ssize_t n, k;

	(void)l;
	(void)events;
	if (!x) {
		loop_del_fd(s->loop, fd);	/* not ours any more */
		return;
	}
	n = read(fd, buf, sizeof(buf));
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n <= 0) {
		sess_close_status(s, x);
		return;
	}
	for (k = 0; k < n && x->status_fd >= 0; k++) {
		switch (buf[k]) {
		case 'k':
			if (x->state == SESS_PREKEX)
				x->state = SESS_UNAUTH;
			break;
		case 'a':
			if (x->state != SESS_PREKEX && x->state != SESS_UNAUTH)
				break;
			if (count_state(s, SESS_AUTH) >=
			    (size_t)s->cfg->max_sessions) {
				door_log(s, x->ip, "max_sessions sessions running, session refused");
				x->state = SESS_GONE;
				sess_reply(s, x, 0);
				break;
			}
			x->state = SESS_AUTH;
			sess_reply(s, x, 1);
			break;
		case 'f':
			if (x->state != SESS_PREKEX && x->state != SESS_UNAUTH)
				break;
			if (s->cfg->ssh_max_followers > 0 &&
			    count_state(s, SESS_FOLLOWER) >=
			    (size_t)s->cfg->ssh_max_followers) {
				door_log(s, x->ip, "ssh_max_followers followers (logs -f) running, session refused");
				x->state = SESS_GONE;
				sess_reply(s, x, 0);
				break;
			}
			x->state = SESS_FOLLOWER;
			sess_reply(s, x, 1);
			break;
		default:
			break;
		}
	}
}

static void session_exited(pid_t pid, int status, void *arg)
{
	struct sshd *s = arg;
	size_t i;

	for (i = 0; i < s->nsess; i++) {
		if (s->sess[i].pid == pid) {
			sess_close_status(s, &s->sess[i]);
			s->sess[i] = s->sess[--s->nsess];
			break;
		}
	}
	if (!WIFEXITED(status) && !(WIFSIGNALED(status) &&
				    WTERMSIG(status) == SIGKILL)) {
		char how[64];

		log_warnx("session %d %s", (int)pid,
			  spawn_describe_status(status, how, sizeof(how)));
	}
}

static void sess_remove(struct sshd *s, struct sess *x)
{
	if (x->conn >= 0) {
		loop_del_fd(s->loop, x->conn);
		close(x->conn);
		x->conn = -1;
	}
	sess_close_status(s, x);
	*x = s->sess[--s->nsess];
}

/* The waiting connection x gets its session process (or is closed). */
static void start_session(struct sshd *s, struct sess *x)
{
	char *argv[] = { s->self_exe, "session", "--root", s->root, NULL };
	struct spawn sp;
	int sv[2], fds[2];

	loop_del_fd(s->loop, x->conn);
	x->watched = 0;
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0) {
		log_warn("cannot start a session: socketpair");
		sess_remove(s, x);
		return;
	}
	fds[0] = x->conn;	/* fd 3 */
	fds[1] = sv[1];		/* fd 4, STATUS_FD */
	spawn_init(&sp);
	sp.argv = argv;
	sp.envp = environ;
	sp.in = -1;
	sp.out = -1;
	sp.err = 2;
	sp.extra_fds = fds;
	sp.n_extra_fds = 2;
	if (spawn_start(&sp) < 0) {
		log_warnx("cannot start a session: %s", error_last());
		close(sv[0]);
		close(sv[1]);
		sess_remove(s, x);
		return;
	}
	close(sv[1]);
	close(x->conn);
	x->conn = -1;
	x->pid = sp.pid;
	x->state = SESS_PREKEX;
	x->status_fd = sv[0];
	if (set_nonblock(sv[0]) < 0 ||
	    loop_add_fd(s->loop, sv[0], LOOP_READ, on_session_status, s) < 0) {
		close(sv[0]);
		x->status_fd = -1;
	}
	reaper_watch(sp.pid, session_exited, s);
}

static struct sess *sess_by_conn(struct sshd *s, int fd)
{
	size_t i;

	for (i = 0; i < s->nsess; i++)
		if (s->sess[i].state == SESS_WAITING && s->sess[i].conn == fd)
			return &s->sess[i];
	return NULL;
}

/* 1 if the client has sent something, 0 if not yet, -1 if it hung up. */
static int client_spoke(int fd)
{
	char c;
	ssize_t n = recv(fd, &c, 1, MSG_PEEK | MSG_DONTWAIT);

	if (n > 0)
		return 1;
	if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK ||
		      errno == EINTR))
		return 0;
	return -1;
}

/* A waiting client spoke: its session starts (one that hung up is
 * forgotten). */
static void on_waiting_readable(struct loop *l, int fd, unsigned events,
				void *arg)
{
	struct sshd *s = arg;
	struct sess *x = sess_by_conn(s, fd);
	int r;

	(void)events;
	if (!x) {
		loop_del_fd(l, fd);
		return;
	}
	r = client_spoke(fd);
	if (r < 0)
		sess_remove(s, x);
	else if (r > 0)
		start_session(s, x);
}

static void arm_wait_timer(struct sshd *s);

/* Silent for SILENT_WAIT_MS: their sessions start anyway. */
static void on_wait_timer(struct loop *l, void *arg)
{
	struct sshd *s = arg;
	int64_t now = now_ms();
	size_t i = 0;

	(void)l;
	s->wait_timer = 0;
	while (i < s->nsess) {
		struct sess *x = &s->sess[i];
		size_t before = s->nsess;

		if (x->state == SESS_WAITING &&
		    now - x->started >= SILENT_WAIT_MS) {
			start_session(s, x);
			if (s->nsess < before)
				continue;	/* removed: i holds another */
		}
		i++;
	}
	arm_wait_timer(s);
}

static void arm_wait_timer(struct sshd *s)
{
	int64_t oldest = 0;
	size_t i;

	if (s->wait_timer)
		return;
	for (i = 0; i < s->nsess; i++)
		if (s->sess[i].state == SESS_WAITING &&
		    (!oldest || s->sess[i].started < oldest))
			oldest = s->sess[i].started;
	if (!oldest)
		return;
	s->wait_timer = loop_add_timer(s->loop, oldest + SILENT_WAIT_MS -
				       now_ms(), on_wait_timer, s);
}

/*
 * The oldest connection (from ip, or from anywhere when ip is NULL) that
 * has not finished its key exchange, or NULL: one still waiting for its
 * client's first word before one whose process waits for it.
 */
static struct sess *oldest_idle(struct sshd *s, const char *ip)
{
	struct sess *best = NULL;
	size_t i;

	for (i = 0; i < s->nsess; i++) {
		struct sess *x = &s->sess[i];

		if ((x->state != SESS_WAITING && x->state != SESS_PREKEX) ||
		    (ip && strcmp(x->ip, ip)))
			continue;
		if (!best || x->state < best->state ||
		    (x->state == best->state && x->started < best->started))
			best = x;
	}
	return best;
}

/* Close an idle connection to make room for a new one: 1 if one was. */
static int make_room(struct sshd *s, const char *ip, const char *why)
{
	struct sess *x = oldest_idle(s, ip);
	char *msg;

	if (!x)
		return 0;
	msg = xasprintf("%s: closed the oldest connection still before its key exchange (from %s)",
			why, x->ip);
	door_log(s, ip ? ip : x->ip, msg);
	free(msg);
	if (x->state == SESS_WAITING) {
		sess_remove(s, x);
		return 1;
	}
	kill(x->pid, SIGKILL);
	x->state = SESS_GONE;
	sess_close_status(s, x);
	return 1;
}

/* May a new connection from ip come in?  NULL, or why not. */
static const char *door_refuses(struct sshd *s, const char *ip)
{
	static const char *per_source =
		"too many unauthenticated connections from one address";
	const struct config *c = s->cfg;
	size_t i, unauth = 0, same = 0;
	int start, rate, full;

	if (config_parse_startups(c->ssh_max_startups, &start, &rate,
				  &full) < 0) {
		start = 10;
		rate = 30;
		full = 100;
	}
	for (i = 0; i < s->nsess; i++) {
		const struct sess *x = &s->sess[i];

		if (x->state != SESS_WAITING && x->state != SESS_PREKEX &&
		    x->state != SESS_UNAUTH)
			continue;
		unauth++;
		if (!strcmp(x->ip, ip))
			same++;
	}
	if (c->ssh_per_source_max_startups > 0 &&
	    same >= (size_t)c->ssh_per_source_max_startups) {
		if (!make_room(s, ip, per_source))
			return per_source;
		unauth--;
	}
	if (unauth >= (size_t)full) {
		if (!make_room(s, NULL, "too many unauthenticated connections"))
			return "too many unauthenticated connections";
	} else if (unauth >= (size_t)start) {
		int span = full - start;
		int p = rate + (100 - rate) * (int)(unauth - (size_t)start) /
			(span > 0 ? span : 1);

		if (random() % 100 < p &&
		    !make_room(s, NULL, "too many unauthenticated connections"))
			return "too many unauthenticated connections (random early drop)";
	}
	return NULL;
}

static void peer_ip_of(const struct sockaddr_storage *ss, char *out,
		       size_t len)
{
	const struct sockaddr_in6 *s6 = (const void *)ss;
	const struct sockaddr_in *s4 = (const void *)ss;

	snprintf(out, len, "?");
	if (ss->ss_family == AF_INET) {
		if (!inet_ntop(AF_INET, &s4->sin_addr, out, (socklen_t)len))
			snprintf(out, len, "?");
	} else if (ss->ss_family == AF_INET6) {
		if (IN6_IS_ADDR_V4MAPPED(&s6->sin6_addr)) {
			if (!inet_ntop(AF_INET, &s6->sin6_addr.s6_addr[12],
				       out, (socklen_t)len))
				snprintf(out, len, "?");
		} else if (!inet_ntop(AF_INET6, &s6->sin6_addr, out,
				      (socklen_t)len)) {
			snprintf(out, len, "?");
		}
	}
}

/* A new connection waits, without a process, for its client's first
 * word: idle connections then cost a descriptor, not a process. */
static void add_waiting(struct sshd *s, int conn, const char *ip)
{
	struct sess *x;

	if (s->nsess == s->alloc) {
		s->alloc = s->alloc ? 2 * s->alloc : 64;
		s->sess = xrealloc(s->sess, s->alloc * sizeof(*s->sess));
	}
	x = &s->sess[s->nsess++];
	memset(x, 0, sizeof(*x));
	x->conn = conn;
	x->status_fd = -1;
	x->state = SESS_WAITING;
	x->started = now_ms();
	snprintf(x->ip, sizeof(x->ip), "%s", ip);
}

static void sshd_accept(struct loop *l, int fd, unsigned events, void *arg)
{
	struct sshd *s = arg;
	size_t i;
	int conn;

	(void)l;
	(void)events;
	/* take in the whole backlog first, so that a flood queued in it is
	 * cut down before any process starts and a user behind it gets in */
	for (;;) {
		struct sockaddr_storage ss;
		socklen_t sl = sizeof(ss);
		char ip[INET6_ADDRSTRLEN];
		const char *why;

		memset(&ss, 0, sizeof(ss));
		/* blocking: the session process does blocking I/O on it */
		conn = accept4(fd, (struct sockaddr *)&ss, &sl, SOCK_CLOEXEC);
		if (conn < 0) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			if (errno != EAGAIN && errno != EWOULDBLOCK)
				log_warn("accept");
			break;
		}
		peer_ip_of(&ss, ip, sizeof(ip));
		why = door_refuses(s, ip);
		if (why) {
			char *msg = xasprintf("%s, connection dropped", why);

			door_log(s, ip, msg);
			free(msg);
			close(conn);
			continue;
		}
		add_waiting(s, conn, ip);
	}
	/* clients that spoke start now; the others when they do */
	i = 0;
	while (i < s->nsess) {
		struct sess *x = &s->sess[i];
		size_t before = s->nsess;
		int r;

		if (x->state != SESS_WAITING || x->watched) {
			i++;
			continue;
		}
		r = client_spoke(x->conn);
		if (r < 0) {
			sess_remove(s, x);
			continue;
		}
		if (r > 0) {
			start_session(s, x);
			if (s->nsess < before)
				continue;
		} else if (loop_add_fd(s->loop, x->conn, LOOP_READ,
				       on_waiting_readable, s) < 0) {
			start_session(s, x);
			if (s->nsess < before)
				continue;
		} else {
			x->watched = 1;
		}
		i++;
	}
	arm_wait_timer(s);
}

int sshd_start(struct sshd **out, const struct config *cfg, struct loop *l,
	       const char *self_exe)
{
	struct sshd *s = NULL;
	const char *spec = cfg->ssh_listen && cfg->ssh_listen[0] ?
		cfg->ssh_listen : DEFAULT_LISTEN;
	int fd = -1;

	size_t i;

	*out = NULL;
	for (i = 0; i < ARRAY_SIZE(host_keys); i++)
		if (host_key_ensure(cfg->root, host_keys[i].path,
				    host_keys[i].type, host_keys[i].bits) < 0)
			return -1;
	fd = listen_on(spec);
	if (fd < 0)
		return -1;
	s = xcalloc(1, sizeof(*s));
	s->loop = l;
	s->cfg = cfg;
	s->root = xstrdup(cfg->root);
	s->self_exe = xstrdup(self_exe);
	s->fd = fd;
	srandom((unsigned)now_ms() ^ (unsigned)getpid());
	if (loop_add_fd(l, fd, LOOP_READ, sshd_accept, s) < 0) {
		sshd_stop(s);
		return -1;
	}
	log_info("ssh listening on %s", spec);
	*out = s;
	return 0;
}

void sshd_stop(struct sshd *s)
{
	size_t i;

	if (!s)
		return;
	loop_del_fd(s->loop, s->fd);
	close(s->fd);
	/* sessions outlive us: their exits must not call into freed memory */
	loop_del_timer(s->loop, s->wait_timer);
	for (i = 0; i < s->nsess; i++) {
		struct sess *x = &s->sess[i];

		if (x->pid)
			reaper_forget(x->pid);
		if (x->conn >= 0) {
			loop_del_fd(s->loop, x->conn);
			close(x->conn);
		}
		sess_close_status(s, x);
	}
	free(s->sess);
	free(s->root);
	free(s->self_exe);
	free(s);
}
