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
#include "banned.h"

extern char **environ;

/* under the state directory: ed25519, and ECDSA P-256 for clients
 * without ed25519 (JSch in JGit and Eclipse) */
static const struct {
	const char *path;
	enum ssh_keytypes_e type;
	int bits;
} host_keys[] = {
	{ "host/ssh_host_ed25519_key", SSH_KEYTYPE_ED25519, 0 },
	{ "host/ssh_host_ecdsa_key", SSH_KEYTYPE_ECDSA_P256, 256 },
};
#define DEFAULT_LISTEN "0.0.0.0:2222"
#define MAX_AUTH_TRIES 10
#define CMD_MAX 8192		/* longest exec command we look at */
#define STDIN_MAX (64 * 1024)	/* most "keys add" reads from stdin */
#define STDIN_TIMEOUT_MS (5 * 60 * 1000)
#define CONFIRM_MAX 256
#define BYE_TIMEOUT_MS 5000	/* wait for the client to hang up */
#define SSH_WAIT_FOREVER (-1)	/* libssh's SSH_TIMEOUT_INFINITE (private) */

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
#define STATUS_REPLY_MS 10000	/* a session waits this long for 'y'/'n' */
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

/* ---------------------------------------------------------- word splitter */

static int unsupported(char c)
{
	if (c == '\n')
		return error_set("unsupported character '\\n' in command");
	if ((unsigned char)c < 0x20 || c == 0x7f)
		return error_set("unsupported character '\\x%02x' in command",
				 (unsigned char)c);
	return error_set("unsupported character '%c' in command", c);
}

static int is_ctl(char c)
{
	return ((unsigned char)c < 0x20 && c != '\t') || c == 0x7f;
}

int sshd_split_command(struct strv *out, const char *cmd)
{
	struct buf w = BUF_INIT;
	const char *p = cmd;
	int in_word = 0, ret = ERR_INVALID;

	if (strlen(cmd) > CMD_MAX) {
		error_set("command too long");
		goto out;
	}
	for (;;) {
		char c = *p;

		if (!c || c == ' ' || c == '\t') {
			if (in_word) {
				if (!w.len) {
					error_set("empty argument in command");
					goto out;
				}
				if (out->n >= CONTROL_MAX_WORDS) {
					error_set("too many words in command");
					goto out;
				}
				strv_push(out, w.data);
				buf_reset(&w);
				in_word = 0;
			}
			if (!c)
				break;
			p++;
			continue;
		}
		in_word = 1;
		if (c == '\'') {
			for (p++; *p && *p != '\''; p++) {
				if (is_ctl(*p)) {
					unsupported(*p);
					goto out;
				}
				buf_add(&w, p, 1);
			}
			if (!*p) {
				error_set("unterminated quote in command");
				goto out;
			}
			p++;
			continue;
		}
		if (c == '"') {
			for (p++; *p && *p != '"'; p++) {
				/* a shell would expand these even inside "" */
				if (*p == '$' || *p == '`' || is_ctl(*p)) {
					unsupported(*p);
					goto out;
				}
				if (*p == '\\' && p[1] && strchr("\"\\$`", p[1]))
					p++;
				buf_add(&w, p, 1);
			}
			if (!*p) {
				error_set("unterminated quote in command");
				goto out;
			}
			p++;
			continue;
		}
		if (c == '\\') {
			p++;
			if (!*p) {
				error_set("trailing backslash in command");
				goto out;
			}
			if (is_ctl(*p)) {
				unsupported(*p);
				goto out;
			}
			buf_add(&w, p, 1);
			p++;
			continue;
		}
		if (strchr(";|&$`<>", c) || is_ctl(c)) {
			unsupported(c);
			goto out;
		}
		buf_add(&w, p, 1);
		p++;
	}
	ret = 0;
out:
	buf_release(&w);
	return ret;
}

/* --------------------------------------------------------------- session */

struct session {
	const struct config *cfg;
	ssh_session ssh;
	ssh_event event;
	ssh_channel chan;
	struct ssh_server_callbacks_struct scb;
	struct ssh_channel_callbacks_struct ccb;
	char *user;		/* the key's name, once authenticated */
	int admin;
	int no_pty;		/* its line says restrict or no-pty */
	int auth_failures;
	char *command;		/* the exec request */
	char *git_protocol;	/* the GIT_PROTOCOL env request, or NULL */
	int shell;		/* a shell was asked for instead */
	char peer[INET6_ADDRSTRLEN + 8];
	char peer_ip[INET6_ADDRSTRLEN];	/* for from= in authorized_keys */
	/* control response being relayed */
	struct buf out, err;
	int status;		/* -1 until the engine's last line */
	/* a terminal, for run and pg:psql (checked at exec time) */
	int pty;
	char term[64];
	struct winsize winsize;
	int pty_master, pty_slave;	/* while psql runs, else -1 */
};

/*
 * SIGALRM ends the session: before a command, the login grace time; while
 * a write to the client is blocked (it stopped reading), the idle timeout.
 */
static volatile sig_atomic_t alarm_phase;	/* 0: login, 1: write */

static void on_alarm(int sig)
{
	static const char login[] =
		"berth: session: no authenticated command in time, closing\n";
	static const char idle[] =
		"berth: session: the client took no output for git_idle_timeout, closing\n";

	(void)sig;
	if (alarm_phase) {
		if (write(2, idle, sizeof(idle) - 1) < 0)
			_exit(1);
	} else if (write(2, login, sizeof(login) - 1) < 0) {
		_exit(1);
	}
	_exit(1);
}

/* The engine's end of the door (sshd.c's engine side), or -1. */
static int status_fd = -1;

static void tell_engine(char what)
{
	if (status_fd >= 0 && write(status_fd, &what, 1) != 1)
		log_debug("status: %s", strerror(errno));
}

/* 'a' or 'f', then the engine's answer: 1 to go on, 0 if refused. */
static int ask_engine(char what)
{
	struct pollfd pfd;
	char c;

	if (status_fd < 0)
		return 1;
	if (write(status_fd, &what, 1) != 1)
		return 1;	/* no engine to count: nothing to enforce */
	pfd.fd = status_fd;
	pfd.events = POLLIN;
	for (;;) {
		int r = poll(&pfd, 1, STATUS_REPLY_MS);

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return 1;
		break;
	}
	if (read(status_fd, &c, 1) != 1)
		return 1;
	return c != 'n';
}

static int auth_pubkey(ssh_session ssh, const char *user,
		       struct ssh_key_struct *pubkey, char state, void *arg)
{
	struct session *s = arg;
	char *name = NULL;
	int admin = 0, no_pty = 0, r;

	if (state != SSH_PUBLICKEY_STATE_NONE &&
	    state != SSH_PUBLICKEY_STATE_VALID)
		goto denied;
	r = keys_match_opts(s->cfg->root, pubkey,
			    s->peer_ip[0] ? s->peer_ip : NULL, &name, &admin,
			    &no_pty);
	if (r < 0) {
		if (r != ERR_NOTFOUND)
			log_warnx("%s: %s", s->peer, error_last());
		goto denied;
	}
	/* NONE is the client asking whether this key would do: it has not
	 * proved it holds the private half yet. */
	if (state == SSH_PUBLICKEY_STATE_VALID) {
		free(s->user);
		s->user = name;
		s->admin = admin;
		s->no_pty = no_pty;
	} else {
		free(name);
	}
	return SSH_AUTH_SUCCESS;
denied:
	if (++s->auth_failures >= MAX_AUTH_TRIES) {
		log_info("%s: too many authentication failures", s->peer);
		ssh_disconnect(ssh);
	}
	return SSH_AUTH_DENIED;
}

static int chan_pty(ssh_session ssh, ssh_channel chan, const char *term,
		    int w, int h, int pw, int ph, void *arg)
{
	struct session *s = arg;

	/* the key's line says restrict or no-pty: the command runs on pipes
	 * (the request is not refused: clients differ on what they do then) */
	s->pty = !s->no_pty;
	snprintf(s->term, sizeof(s->term), "%s",
		 oneoff_term_valid(term) ? term : "");
	s->winsize.ws_col = (unsigned short)(w > 0 && w < 10000 ? w : 80);
	s->winsize.ws_row = (unsigned short)(h > 0 && h < 10000 ? h : 24);
	return 0;
}

static int chan_pty_resize(ssh_session ssh, ssh_channel chan, int w, int h,
			   int pw, int ph, void *arg)
{
	struct session *s = arg;

	if (w <= 0 || w >= 10000 || h <= 0 || h >= 10000)
		return -1;
	s->winsize.ws_col = (unsigned short)w;
	s->winsize.ws_row = (unsigned short)h;
	if (s->pty_master >= 0)
		ioctl(s->pty_master, TIOCSWINSZ, &s->winsize);
	return 0;
}

static int chan_shell(ssh_session ssh, ssh_channel chan, void *arg)
{
	struct session *s = arg;

	if (s->command || s->shell)
		return 1;
	/* accepted only to say so on the channel, as git hosts do */
	s->shell = 1;
	return 0;
}

static int chan_exec(ssh_session ssh, ssh_channel chan, const char *command,
		     void *arg)
{
	struct session *s = arg;

	if (s->command || s->shell)
		return 1;
	s->command = xstrdup(command);
	return 0;
}

static int chan_env(ssh_session ssh, ssh_channel chan, const char *name,
		    const char *value, void *arg)
{
	struct session *s = arg;

	/* git asks for protocol v2 this way; no other variable is taken */
	if (strcmp(name, "GIT_PROTOCOL") || strlen(value) > 256 ||
	    s->git_protocol)
		return -1;
	s->git_protocol = xstrdup(value);
	return 0;
}

static int chan_subsystem(ssh_session ssh, ssh_channel chan,
			  const char *subsystem, void *arg)
{
	return 1;
}

static ssh_channel open_session_channel(ssh_session ssh, void *arg)
{
	struct session *s = arg;

	if (s->chan || !s->user)
		return NULL;
	s->chan = ssh_channel_new(ssh);
	if (!s->chan)
		return NULL;
	memset(&s->ccb, 0, sizeof(s->ccb));
	s->ccb.userdata = s;
	s->ccb.channel_pty_request_function = chan_pty;
	s->ccb.channel_pty_window_change_function = chan_pty_resize;
	s->ccb.channel_shell_request_function = chan_shell;
	s->ccb.channel_exec_request_function = chan_exec;
	s->ccb.channel_env_request_function = chan_env;
	s->ccb.channel_subsystem_request_function = chan_subsystem;
	ssh_callbacks_init(&s->ccb);
	ssh_set_channel_callbacks(s->chan, &s->ccb);
	return s->chan;
}

static int session_gone(struct session *s)
{
	return (ssh_get_status(s->ssh) & (SSH_CLOSED | SSH_CLOSED_ERROR)) ||
	       !ssh_is_connected(s->ssh);
}

static int client_gone(struct session *s)
{
	return session_gone(s) || ssh_channel_is_closed(s->chan);
}

/* Blocking writes; a client that went away makes them fail. */
static int chan_write(struct session *s, int to_stderr, const void *data,
		      size_t len)
{
	const char *p = data;
	int n, ret = -1;
	unsigned idle_s = (unsigned)((s->cfg->git_timeout_ms + 999) / 1000);

	/* a client that stopped reading must not hold its slot forever */
	alarm_phase = 1;
	alarm(idle_s ? idle_s : 1);
	while (len) {
		uint32_t chunk = len > 65536 ? 65536 : (uint32_t)len;

		n = to_stderr ? ssh_channel_write_stderr(s->chan, p, chunk) :
			ssh_channel_write(s->chan, p, chunk);
		if (n < 0 || (n == 0 && client_gone(s))) {
			error_set("cannot write to the client: %s",
				  ssh_get_error(s->ssh));
			goto out;
		}
		p += n;
		len -= (size_t)n;
	}
	/* output waiting in libssh would stall behind a long build */
	if (ssh_blocking_flush(s->ssh, SSH_WAIT_FOREVER) == SSH_ERROR) {
		error_set("cannot write to the client: %s",
			  ssh_get_error(s->ssh));
		goto out;
	}
	ret = 0;
out:
	alarm(0);
	return ret;
}

static void say_error(struct session *s, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* "error: MESSAGE" on the client's stderr, for people and scripts alike. */
static void say_error(struct session *s, const char *fmt, ...)
{
	va_list ap;
	char *msg;

	va_start(ap, fmt);
	if (vasprintf(&msg, fmt, ap) < 0)
		msg = NULL;
	va_end(ap);
	if (!msg)
		return;
	chan_write(s, 1, "error: ", 7);
	chan_write(s, 1, msg, strlen(msg));
	chan_write(s, 1, "\n", 1);
	free(msg);
}

/* Up to len bytes of the client's stdin; 0 at EOF, -1 on error/timeout. */
static ssize_t chan_read(struct session *s, void *buf, size_t len,
			 int timeout_ms)
{
	uint32_t want = len > 65536 ? 65536 : (uint32_t)len;
	int n;

	for (;;) {
		if (timeout_ms >= 0)
			n = ssh_channel_read_timeout(s->chan, buf, want, 0,
						     timeout_ms);
		else
			n = ssh_channel_read(s->chan, buf, want, 0);
		if (n == SSH_ERROR || n < 0)
			return error_set("cannot read from the client: %s",
					 ssh_get_error(s->ssh));
		if (n > 0)
			return n;
		if (ssh_channel_is_eof(s->chan) || client_gone(s))
			return 0;
		if (timeout_ms >= 0)
			return error_set("timed out waiting for input");
	}
}

static ssize_t io_read(void *ctx, void *buf, size_t len, int timeout_ms)
{
	return chan_read(ctx, buf, len, timeout_ms);
}

static int io_write(void *ctx, const void *buf, size_t len)
{
	return chan_write(ctx, 0, buf, len);
}

/* ---- engine commands over the control socket ---- */

static int relay_line(void *arg, enum control_kind kind, const char *text)
{
	struct session *s = arg;

	switch (kind) {
	case CONTROL_DATA:
		buf_addstr(&s->out, text);
		buf_addstr(&s->out, "\n");
		return 0;
	case CONTROL_OK:
		s->status = 0;
		return 1;
	case CONTROL_ERROR:
		buf_addf(&s->err, "error: %s\n", text);
		s->status = control_error_is_usage(text) ? 100 : 1;
		return 1;
	case CONTROL_FIELDS:
		return 0;
	}
	return 0;
}

static int flush_relay(struct session *s)
{
	int ret = 0;

	if (s->out.len && chan_write(s, 0, s->out.data, s->out.len) < 0)
		ret = -1;
	if (s->err.len && chan_write(s, 1, s->err.data, s->err.len) < 0)
		ret = -1;
	buf_reset(&s->out);
	buf_reset(&s->err);
	return ret;
}

/*
 * Send one request and relay the answer as it comes, watching the client
 * too: when it hangs up (ctrl-c on "logs -f") we close the control socket,
 * which tells the engine to stop.  Returns the exit status, or -1 when
 * the client is gone and no status can be delivered.
 */
static int control_relay(struct session *s, const struct strv *words)
{
	struct buf req = BUF_INIT;
	struct control_reader rd;
	struct pollfd pfd[2];
	char chunk[16384];
	ssize_t n;
	int fd = -1, ret = 1, r;

	control_reader_init(&rd);
	s->status = -1;
	fd = control_connect(s->cfg->root);
	if (fd < 0) {
		log_warnx("%s", error_last());
		say_error(s, "the server is not running (cannot reach the engine)");
		ret = 111;
		goto out;
	}
	control_encode_request(&req, (int)words->n, words->v);
	if (req.len > CONTROL_LINE_MAX + 1) {
		say_error(s, "command too long");
		goto out;
	}
	if (write_all(fd, req.data, req.len) < 0) {
		log_warn("cannot send request");
		say_error(s, "the engine closed the connection early");
		goto out;
	}
	for (;;) {
		/* a flush may have taken in the client's close already */
		if (client_gone(s)) {
			ret = -1;
			goto out;
		}
		pfd[0].fd = fd;
		pfd[0].events = POLLIN;
		pfd[1].fd = ssh_get_fd(s->ssh);
		pfd[1].events = POLLIN;
		pfd[0].revents = pfd[1].revents = 0;
		if (poll(pfd, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			log_warn("poll");
			goto out;
		}
		if (pfd[1].revents) {
			/* window adjusts, stdin (kept in the channel), close */
			ssh_event_dopoll(s->event, 0);
			if (client_gone(s)) {
				ret = -1;
				goto out;
			}
		}
		if (!pfd[0].revents)
			continue;
		n = read(fd, chunk, sizeof(chunk));
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			say_error(s, "the engine closed the connection early");
			goto out;
		}
		r = control_reader_feed(&rd, chunk, (size_t)n, relay_line, s);
		if (flush_relay(s) < 0) {
			ret = -1;
			goto out;
		}
		if (r < 0) {
			say_error(s, "bad answer from the engine: %s",
				  error_last());
			goto out;
		}
		if (s->status >= 0) {
			ret = s->status;
			goto out;
		}
	}
out:
	if (fd >= 0)
		close(fd);
	buf_release(&req);
	control_reader_release(&rd);
	return ret;
}

static int has_word(const struct strv *w, size_t from, const char *word)
{
	size_t i;

	for (i = from; i < w->n; i++)
		if (!strcmp(w->v[i], word))
			return 1;
	return 0;
}

/* "rm NAME" without --force: the client must type the name back. */
static int confirm_rm(struct session *s, struct strv *words)
{
	const char *name = words->v[1];
	char *prompt = NULL;
	struct buf line = BUF_INIT;
	char c;
	ssize_t n;
	int ret = -1;

	prompt = xasprintf("To remove %s, type its name: ", name);
	if (chan_write(s, 1, prompt, strlen(prompt)) < 0)
		goto out;
	for (;;) {
		n = chan_read(s, &c, 1, STDIN_TIMEOUT_MS);
		if (n < 0)
			goto refuse;
		if (n == 0 || c == '\n')
			break;
		if (c != '\r' && buf_add(&line, &c, 1) < 0)
			goto refuse;
		if (line.len > CONFIRM_MAX)
			goto refuse;
	}
	if (!line.len) {
		chan_write(s, 1, "\n", 1);
		say_error(s, "rm: confirm with --force or type the app name");
		goto out;
	}
	if (strcmp(line.data, name)) {
		say_error(s, "rm: the name typed does not match '%s', nothing removed",
			  name);
		goto out;
	}
	strv_push(words, "--force");
	ret = 0;
	goto out;
refuse:
	chan_write(s, 1, "\n", 1);
	say_error(s, "rm: confirm with --force or type the app name");
out:
	free(prompt);
	buf_release(&line);
	return ret;
}

/* "keys add" with no key in the command reads it from stdin. */
static int read_key_stdin(struct session *s, struct strv *words)
{
	struct buf text;
	char chunk[4096];
	ssize_t n;
	int ret = -1;

	buf_init(&text, STDIN_MAX);
	for (;;) {
		n = chan_read(s, chunk, sizeof(chunk), STDIN_TIMEOUT_MS);
		if (n < 0) {
			say_error(s, "keys add: %s", error_last());
			goto out;
		}
		if (n == 0)
			break;
		if (buf_add(&text, chunk, (size_t)n) < 0) {
			say_error(s, "keys add: key text too long");
			goto out;
		}
	}
	if (!text.len || strspn(text.data, " \t\r\n") == text.len) {
		say_error(s, "keys add: no key given (ssh HOST keys add < KEY.pub)");
		goto out;
	}
	strv_push(words, text.data);
	ret = 0;
out:
	buf_release(&text);
	return ret;
}

/*
 * "keys add [--admin] [KEY TEXT...]": the engine wants the key as one
 * word, and "ssh HOST keys add $(cat id.pub)" arrives split in three.
 */
static int keys_add_words(struct session *s, struct strv *words)
{
	struct strv req = STRV_INIT;
	struct buf text = BUF_INIT;
	size_t i;

	strv_push(&req, "keys");
	strv_push(&req, "add");
	for (i = 2; i < words->n; i++) {
		if (!strcmp(words->v[i], "--admin")) {
			strv_push(&req, "--admin");
			continue;
		}
		if (!strcmp(words->v[i], "--name") && i + 1 < words->n &&
		    !text.len) {
			strv_push(&req, "--name");
			strv_push(&req, words->v[++i]);
			continue;
		}
		if (text.len)
			buf_addstr(&text, " ");
		buf_addstr(&text, words->v[i]);
	}
	if (text.len) {
		strv_push(&req, text.data);
	} else if (read_key_stdin(s, &req) < 0) {
		strv_release(&req);
		buf_release(&text);
		return -1;
	}
	strv_release(words);
	*words = req;
	buf_release(&text);
	return 0;
}

/*
 * Every command but these names an app as its first word: only the app's
 * owner, its collaborators and admins may run it (access.h); "sharing
 * APP add|rm" is the owner's (or an admin's).
 */
static int gate_app_command(struct session *s, struct strv *words)
{
	static const char *const appless[] = {
		"apps", "keys", "version", "help", "status", "dashboard",
	};
	struct strv ex = STRV_INIT;
	const char *cmd;
	size_t i;
	int r = 0;

	/* the app is the word the engine will take: aliases moved their
	 * flags after it (config:set --no-restart APP) */
	commands_expand((int)words->n, words->v, &ex);
	cmd = ex.v[0];
	if (ex.n < 2)
		goto out;
	for (i = 0; i < ARRAY_SIZE(appless); i++)
		if (!strcmp(cmd, appless[i]))
			goto out;
	if (!app_name_valid(ex.v[1]))
		goto out;	/* the engine says what is wrong */
	if (!strcmp(cmd, "sharing") && ex.n > 2)
		r = access_check_owner(s->cfg->root, ex.v[1], s->user,
				       s->admin);
	else
		r = access_check(s->cfg->root, ex.v[1], s->user, s->admin);
	if (r == ERR_NOTFOUND)
		r = 0;
	if (r < 0)
		say_error(s, "%s", error_last());
out:
	strv_release(&ex);
	return r < 0 ? -1 : 0;
}

static ssize_t backup_read(void *ctx, void *buf, size_t len)
{
	return chan_read(ctx, buf, len, STDIN_TIMEOUT_MS);
}

static void backup_error(void *ctx, const char *msg)
{
	say_error(ctx, "%s", msg);
}

/*
 * "ssh -t HOST pg:psql APP": psql on a pseudo-terminal, relayed both ways
 * until it exits (the master reads EIO once every slave is closed).
 * Returns -1 when the client went away first (psql is then stopped).
 */
static int pty_relay(void *ctx)
{
	struct session *s = ctx;
	struct pollfd pfd[2];
	char chunk[16384];
	int n;
	ssize_t got;

	int input_done = 0;

	close(s->pty_slave);
	s->pty_slave = -1;
	for (;;) {
		while (!input_done &&
		       (n = ssh_channel_read_nonblocking(s->chan, chunk,
							 sizeof(chunk), 0)) > 0)
			if (write_all(s->pty_master, chunk, (size_t)n) < 0)
				return 0;
		if (!input_done && ssh_channel_is_eof(s->chan)) {
			/* the client's input ended: ^D, as a terminal would */
			input_done = 1;
			if (write_all(s->pty_master, "\x04", 1) < 0)
				return 0;
		} else if (!input_done && n < 0 && n != SSH_AGAIN) {
			return -1;
		}
		if (session_gone(s))
			return -1;
		pfd[0].fd = s->pty_master;
		pfd[0].events = POLLIN;
		pfd[1].fd = ssh_get_fd(s->ssh);
		pfd[1].events = POLLIN;
		pfd[0].revents = pfd[1].revents = 0;
		/* libssh may hold decrypted data the socket no longer shows */
		if (poll(pfd, 2, 200) < 0 && errno != EINTR)
			return -1;
		if (pfd[1].revents)
			ssh_event_dopoll(s->event, 0);
		if (pfd[0].revents) {
			got = read(s->pty_master, chunk, sizeof(chunk));
			if (got < 0 && errno == EINTR)
				continue;
			if (got <= 0)
				return 0;	/* psql is gone */
			if (chan_write(s, 0, chunk, (size_t)got) < 0)
				return -1;
		}
	}
}

/* pg:backup, pg:restore, pg:psql, export and import run here,
 * streaming over the channel. */
static int run_backup_command(struct session *s, struct strv *words)
{
	struct backup_io io = {
		.ctx = s, .read = backup_read, .write = io_write,
		.error = backup_error, .local = 0,
		.in_fd = -1, .out_fd = -1, .err_fd = -1,
	};
	int ret;

	if (export_is_command(words->v[0]))
		return export_command(s->cfg->root, (int)words->n, words->v,
				      &io);
	if (!strcmp(words->v[0], "certs:add"))
		return certs_add_command(s->cfg->root, (int)words->n,
					 words->v, &io);
	if (s->pty) {
		if (openpty(&s->pty_master, &s->pty_slave, NULL, NULL,
			    &s->winsize) < 0) {
			say_error(s, "cannot make a terminal: %s",
				  strerror(errno));
			return 1;
		}
		set_cloexec(s->pty_master);
		set_cloexec(s->pty_slave);
		io.in_fd = io.out_fd = io.err_fd = s->pty_slave;
		io.tty_relay = pty_relay;
		io.term = s->term[0] ? s->term : NULL;
	}
	ret = backup_command(s->cfg->root, (int)words->n, words->v, &io);
	if (s->pty_slave >= 0)
		close(s->pty_slave);
	if (s->pty_master >= 0)
		close(s->pty_master);
	s->pty_master = s->pty_slave = -1;
	return ret;
}

/* ---- run: a one-off process on this channel ---- */

struct run_relay {
	struct session *s;
	int status;		/* from "ok exit-status=N"; -1 until then */
	int done;		/* the engine's last line came */
};

static int run_line(void *arg, enum control_kind kind, const char *text)
{
	struct run_relay *rr = arg;

	switch (kind) {
	case CONTROL_DATA:
		buf_addf(&rr->s->err, "%s\n", text);
		return 0;
	case CONTROL_FIELDS:
		return 0;
	case CONTROL_OK: {
		long st = control_field_long(text, "exit-status");

		rr->done = 1;
		rr->status = st >= 0 && st <= 255 ? (int)st : 1;
		return 1;
	}
	case CONTROL_ERROR:
		rr->done = 1;
		buf_addf(&rr->s->err, "error: %s\n", text);
		rr->status = control_error_is_usage(text) ? 100 : 1;
		return 1;
	}
	return 0;
}

static void close_fd(int *fd)
{
	if (*fd >= 0)
		close(*fd);
	*fd = -1;
}

/*
 * "run APP CMD...": the engine starts the process on descriptors made
 * here (three pipes, or with ssh -t one terminal), passed with the
 * request; this relays them to and from the channel until the process
 * is gone and the engine has said how it ended.  The client hanging up
 * closes the control socket, which stops the process.
 */
static int run_oneoff(struct session *s, struct strv *words)
{
	struct run_relay rr = { s, -1, 0 };
	struct control_reader rd;
	struct buf pending = BUF_INIT;	/* client input not yet taken */
	int in_w = -1, out_r = -1, err_r = -1, ctl = -1;
	int child[3] = { -1, -1, -1 }, p[2];
	int input_done = 0, ret = 1, i, n;
	struct pollfd pfd[5];
	char chunk[16384];
	ssize_t got;

	control_reader_init(&rd);
	if (s->pty) {
		if (openpty(&s->pty_master, &s->pty_slave, NULL, NULL,
			    &s->winsize) < 0) {
			say_error(s, "cannot make a terminal: %s",
				  strerror(errno));
			goto out;
		}
		set_cloexec(s->pty_master);
		set_cloexec(s->pty_slave);
		in_w = out_r = s->pty_master;
		for (i = 0; i < 3; i++)
			child[i] = s->pty_slave;
	} else {
		if (pipe2(p, O_CLOEXEC) < 0)
			goto pipe_failed;
		child[0] = p[0], in_w = p[1];
		if (pipe2(p, O_CLOEXEC) < 0)
			goto pipe_failed;
		out_r = p[0], child[1] = p[1];
		if (pipe2(p, O_CLOEXEC) < 0)
			goto pipe_failed;
		err_r = p[0], child[2] = p[1];
	}
	set_nonblock(in_w);
	ctl = control_connect(s->cfg->root);
	if (ctl < 0) {
		log_warnx("%s", error_last());
		say_error(s, "the server is not running (cannot reach the engine)");
		ret = 111;
		goto out;
	}
	/* the process's terminal is the client's: so is its type */
	if (s->pty && s->term[0] && words->n >= 3) {
		struct strv t = STRV_INIT;
		size_t k;

		strv_push(&t, "run:term");
		strv_push(&t, words->v[1]);
		strv_push(&t, s->term);
		for (k = 2; k < words->n; k++)
			strv_push(&t, words->v[k]);
		strv_release(words);
		*words = t;
	}
	if (control_send_request(ctl, (int)words->n, words->v, child, 3) < 0) {
		say_error(s, "%s", error_last());
		goto out;
	}
	/* only the process holds them now: their ends show when it ends */
	if (s->pty) {
		close_fd(&s->pty_slave);
	} else {
		for (i = 0; i < 3; i++)
			close_fd(&child[i]);
	}
	for (;;) {
		int nfd = 0, ix_ctl = -1, ix_out = -1, ix_err = -1, ix_in = -1;

		if (rr.done && out_r < 0 && err_r < 0)
			break;
		if (session_gone(s) || ssh_channel_is_closed(s->chan)) {
			ret = -1;
			goto out;
		}
		/* the client's input, as far as the process takes it */
		while (!input_done && in_w >= 0 && !pending.len &&
		       (n = ssh_channel_read_nonblocking(s->chan, chunk,
							 sizeof(chunk), 0)) > 0)
			buf_add(&pending, chunk, (size_t)n);
		if (!input_done && !pending.len && in_w >= 0 &&
		    ssh_channel_is_eof(s->chan)) {
			input_done = 1;
			if (s->pty) {
				/* ^D, as a terminal would */
				if (write(in_w, "\x04", 1) < 0)
					log_debug("pty: %s", strerror(errno));
			} else {
				close_fd(&in_w);
			}
		}
		if (pending.len && in_w >= 0) {
			got = write(in_w, pending.data, pending.len);
			if (got > 0)
				buf_consume(&pending, (size_t)got);
			else if (got < 0 && errno != EAGAIN && errno != EINTR) {
				/* the process closed its stdin */
				buf_reset(&pending);
				if (!s->pty)
					close_fd(&in_w);
				input_done = 1;
			}
		}
		pfd[nfd].fd = ssh_get_fd(s->ssh);
		pfd[nfd++].events = POLLIN;
		if (ctl >= 0) {
			ix_ctl = nfd;
			pfd[nfd].fd = ctl;
			pfd[nfd++].events = POLLIN;
		}
		if (out_r >= 0) {
			ix_out = nfd;
			pfd[nfd].fd = out_r;
			pfd[nfd++].events = POLLIN;
		}
		if (err_r >= 0) {
			ix_err = nfd;
			pfd[nfd].fd = err_r;
			pfd[nfd++].events = POLLIN;
		}
		if (pending.len && in_w >= 0 && in_w != out_r) {
			ix_in = nfd;
			pfd[nfd].fd = in_w;
			pfd[nfd++].events = POLLOUT;
		} else if (pending.len && in_w >= 0) {
			pfd[ix_out].events |= POLLOUT;
		}
		for (i = 0; i < nfd; i++)
			pfd[i].revents = 0;
		/* libssh may hold decrypted data the socket no longer shows */
		if (poll(pfd, (nfds_t)nfd, 200) < 0 && errno != EINTR) {
			log_warn("poll");
			goto out;
		}
		(void)ix_in;
		if (pfd[0].revents)
			ssh_event_dopoll(s->event, 0);
		if (ix_out >= 0 && (pfd[ix_out].revents & ~POLLOUT)) {
			got = read(out_r, chunk, sizeof(chunk));
			if (got > 0) {
				if (chan_write(s, 0, chunk, (size_t)got) < 0) {
					ret = -1;
					goto out;
				}
			} else if (got == 0 || (errno != EINTR && errno != EAGAIN)) {
				/* a terminal reads EIO once the process is gone */
				if (s->pty)
					in_w = -1;
				if (out_r == s->pty_master)
					close_fd(&s->pty_master);
				else
					close_fd(&out_r);
				out_r = -1;
			}
		}
		if (ix_err >= 0 && pfd[ix_err].revents) {
			got = read(err_r, chunk, sizeof(chunk));
			if (got > 0) {
				if (chan_write(s, 1, chunk, (size_t)got) < 0) {
					ret = -1;
					goto out;
				}
			} else if (got == 0 || (errno != EINTR && errno != EAGAIN)) {
				close_fd(&err_r);
			}
		}
		if (ix_ctl >= 0 && pfd[ix_ctl].revents) {
			got = read(ctl, chunk, sizeof(chunk));
			if (got < 0 && errno == EINTR)
				continue;
			if (got <= 0) {
				say_error(s, "the engine closed the connection early");
				goto out;
			}
			if (control_reader_feed(&rd, chunk, (size_t)got, run_line,
						&rr) < 0) {
				say_error(s, "bad answer from the engine: %s",
					  error_last());
				goto out;
			}
			if (flush_relay(s) < 0) {
				ret = -1;
				goto out;
			}
			if (rr.done)
				close_fd(&ctl);
		}
	}
	ret = rr.status < 0 ? 1 : rr.status;
	goto out;
pipe_failed:
	say_error(s, "cannot make pipes: %s", strerror(errno));
out:
	flush_relay(s);
	if (s->pty) {
		close_fd(&s->pty_slave);
		close_fd(&s->pty_master);
	} else {
		for (i = 0; i < 3; i++)
			close_fd(&child[i]);
		close_fd(&in_w);
		close_fd(&out_r);
		close_fd(&err_r);
	}
	close_fd(&ctl);
	buf_release(&pending);
	control_reader_release(&rd);
	return ret;
}

static int run_engine_command(struct session *s)
{
	struct strv words = STRV_INIT;
	const char *cmd, *claimed = NULL;
	int ret = 1;

	if (sshd_split_command(&words, s->command) < 0) {
		say_error(s, "%s", error_last());
		goto out;
	}
	if (!words.n) {
		say_error(s, "no command given (try 'help')");
		goto out;
	}
	cmd = words.v[0];
	/* a path on this host is not the remote user's to name (git push),
	 * nor are the engine's own requests */
	if (!strcmp(cmd, "deploy")) {
		say_error(s, "deploy is not available over ssh (push with git instead)");
		goto out;
	}
	if (commands_local_only(cmd)) {
		say_error(s, "unknown command '%.80s' (try 'help')", cmd);
		ret = 100;
		goto out;
	}
	if (!strcmp(cmd, "keys")) {
		if (!s->admin) {
			say_error(s, "keys: only admin keys may manage keys");
			goto out;
		}
		if (words.n >= 2 && !strcmp(words.v[1], "add") &&
		    keys_add_words(s, &words) < 0)
			goto out;
		cmd = words.v[0];	/* the vector was replaced */
	}
	if (gate_app_command(s, &words) < 0)
		goto out;
	/* a key lists only the apps it reaches (the engine asks access.h) */
	if (!strcmp(cmd, "apps") || !strcmp(cmd, "apps:list")) {
		if (words.n > 1) {
			say_error(s, "usage: apps");
			ret = 100;
			goto out;
		}
		if (!s->admin) {
			strv_push(&words, "--key");
			strv_push(&words, s->user);
		}
	}
	/* the engine's status names the state folder and every app */
	if (!strcmp(cmd, "status") && !s->admin) {
		say_error(s, "status: only admin keys may see the engine's status");
		goto out;
	}
	/* the cluster's hosts and placement are the admins' (an app of
	 * another host is not in this host's access lists) */
	if ((!strcmp(cmd, "cluster") || !strcmp(cmd, "apps:set-group")) &&
	    !s->admin) {
		say_error(s, "%s: only admin keys may see or change the cluster",
			  cmd);
		goto out;
	}
	/* an app made by this key is this key's, as a first push's is */
	if ((!strcmp(cmd, "create") || !strcmp(cmd, "apps:create") ||
	     !strcmp(cmd, "import")) && words.n >= 2 &&
	    app_name_valid(words.v[1])) {
		if (access_claim(s->cfg->root, words.v[1], s->user,
				 s->admin) < 0) {
			say_error(s, "%s", error_last());
			goto out;
		}
		claimed = words.v[1];
	}
	/* the dashboard's login is for this key: the user names no key */
	if (!strcmp(cmd, "dashboard")) {
		if (words.n > 2 || (words.n == 2 &&
				    strcmp(words.v[1], "--revoke"))) {
			say_error(s, "usage: dashboard [--revoke]");
			goto out;
		}
		strv_push(&words, "--key");
		strv_push(&words, s->user);
		if (s->admin)
			strv_push(&words, "--admin");
	}
	/* the engine's log speaks of every app and every pusher */
	if (!strcmp(cmd, "logs") && has_word(&words, 1, "--server") &&
	    !s->admin) {
		say_error(s, "logs --server: only admin keys may read the engine's log");
		goto out;
	}
	if (!strcmp(cmd, "rm") && words.n >= 2) {
		if (!app_name_valid(words.v[1])) {
			say_error(s, "rm: invalid app name '%.80s'", words.v[1]);
			goto out;
		}
		if (!has_word(&words, 2, "--force") &&
		    confirm_rm(s, &words) < 0)
			goto out;
	}
	if (!strcmp(cmd, "import-staged")) {
		say_error(s, "import-staged is not available over ssh (use import)");
		goto out;
	}
	if (backup_is_command(cmd) || export_is_command(cmd) ||
	    !strcmp(cmd, "certs:add"))
		ret = run_backup_command(s, &words);
	else if (!strcmp(cmd, "run"))
		ret = run_oneoff(s, &words);
	else
		ret = control_relay(s, &words);
	if (claimed && ret)
		access_unclaim(s->cfg->root, claimed);
out:
	strv_release(&words);
	return ret;
}

/* 1 if the exec request starts with the word name. */
static int command_is(const char *command, const char *name)
{
	size_t k = strlen(name);

	return !strncmp(command, name, k) &&
	       (!command[k] || command[k] == ' ' || command[k] == '\t');
}

static int run_command(struct session *s)
{
	enum gitsvc_service svc;
	struct gitsvc_io io;
	char *app = NULL;
	int r, ret;

	/* A terminal only makes sense for psql and run; anything else
	 * would run with its output mangled by the client's raw mode. */
	if (s->pty && !command_is(s->command, "pg:psql") &&
	    !command_is(s->command, "run")) {
		say_error(s, "a terminal (ssh -t) is only for pg:psql and run: run this command without -t");
		return 1;
	}
	r = gitsvc_parse_command(s->command, &svc, &app);
	if (r == ERR_NOTFOUND)
		return run_engine_command(s);
	if (r < 0) {
		say_error(s, "%s", error_last());
		return 1;
	}
	/* A push to a new app makes this key its owner; anything else
	 * needs access to an app that exists. */
	r = svc == GITSVC_RECEIVE_PACK ?
		access_claim(s->cfg->root, app, s->user, s->admin) :
		access_check(s->cfg->root, app, s->user, s->admin);
	if (r < 0 && r != ERR_NOTFOUND) {
		say_error(s, "%s", error_last());
		free(app);
		return 1;
	}
	io.ctx = s;
	io.read = io_read;
	io.write = io_write;
	ret = gitserve_run(s->cfg, svc, app, s->user,
			   gitsvc_protocol_version(s->git_protocol), &io);
	if (ret < 0) {
		say_error(s, "%s", error_last()[0] ? error_last() : "failed");
		ret = 1;
	}
	free(app);
	return ret;
}

/* Exit status, EOF, close; then wait for the client to take them. */
static void finish(struct session *s, int status)
{
	int64_t deadline;

	if (!client_gone(s)) {
		ssh_channel_request_send_exit_status(s->chan, status);
		ssh_channel_send_eof(s->chan);
		ssh_channel_close(s->chan);
		ssh_blocking_flush(s->ssh, BYE_TIMEOUT_MS);
	}
	deadline = now_ms() + BYE_TIMEOUT_MS;
	while (!session_gone(s) && now_ms() < deadline)
		if (ssh_event_dopoll(s->event, 100) == SSH_ERROR)
			break;
}

/*
 * A client whose network vanished never sends FIN: without probes a
 * "logs -f" session would wait for it forever.  About two minutes.
 */
static void keepalive(int fd)
{
	int one = 1, idle = 60, intvl = 15, cnt = 4;

	if (setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof(one)) < 0 ||
	    setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof(idle)) < 0 ||
	    setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &intvl,
		       sizeof(intvl)) < 0 ||
	    setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &cnt, sizeof(cnt)) < 0)
		log_warn("TCP keepalive");
}

static void peer_name(int fd, char *out, size_t len, char *ip, size_t iplen)
{
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	char host[INET6_ADDRSTRLEN], port[8];

	snprintf(out, len, "?");
	ip[0] = '\0';
	if (getpeername(fd, (struct sockaddr *)&ss, &sl) < 0 ||
	    getnameinfo((struct sockaddr *)&ss, sl, host, sizeof(host), port,
			sizeof(port), NI_NUMERICHOST | NI_NUMERICSERV))
		return;
	snprintf(out, len, strchr(host, ':') ? "[%s]:%s" : "%s:%s", host, port);
	snprintf(ip, iplen, "%s", host);
}

/*
 * The client's KEX_ECDH_INIT waits (Nagle) for our ACK of its KEXINIT,
 * which Linux delays 40 ms because we spoke first: run the exchange in
 * steps and ACK at once after each read (TCP_QUICKACK does not stick).
 */
static int key_exchange(struct session *s, int fd)
{
	struct pollfd pfd;
	int one = 1, r;

	ssh_set_blocking(s->ssh, 0);
	for (;;) {
		r = ssh_handle_key_exchange(s->ssh);
		setsockopt(fd, IPPROTO_TCP, TCP_QUICKACK, &one, sizeof(one));
		if (r == SSH_OK)
			break;
		if (r != SSH_AGAIN) {
			log_debug("%s: key exchange: %s", s->peer,
				  ssh_get_error(s->ssh));
			return -1;
		}
		pfd.fd = fd;
		pfd.events = POLLIN;
		if (ssh_get_poll_flags(s->ssh) & SSH_WRITE_PENDING)
			pfd.events |= POLLOUT;
		if (poll(&pfd, 1, -1) < 0 && errno != EINTR)
			return -1;
	}
	ssh_set_blocking(s->ssh, 1);
	return 0;
}

/* One audit line; the command is the client's, so no control bytes. */
static void log_command(const struct session *s)
{
	char shown[201];
	size_t i;

	for (i = 0; s->command[i] && i < sizeof(shown) - 1; i++)
		shown[i] = is_ctl(s->command[i]) ? '?' : s->command[i];
	shown[i] = '\0';
	log_info("%s: %s runs '%s'%s", s->peer, s->user, shown,
		 s->command[i] ? "..." : "");
}

/* Is this exec request "logs APP -f" (or an alias of it)? */
static int is_follower(const char *command)
{
	static const char *const follow[] = { "-f", "--follow", "-t", "--tail" };
	struct strv words = STRV_INIT, ex = STRV_INIT;
	size_t i;
	int ret = 0;

	if (sshd_split_command(&words, command) < 0 || !words.n)
		goto out;
	commands_expand((int)words.n, words.v, &ex);
	if (!ex.n || strcmp(ex.v[0], "logs"))
		goto out;
	for (i = 0; i < ARRAY_SIZE(follow); i++)
		if (has_word(&ex, 1, follow[i]))
			ret = 1;
out:
	strv_release(&words);
	strv_release(&ex);
	return ret;
}

int session_main(const struct config *cfg, int fd, int door_fd)
{
	struct stat st;
	struct session s;
	ssh_bind bind = NULL;
	char *hostkey = NULL;
	bool no = false;
	int one = 1, ret = 1, status;
	size_t i;

	memset(&s, 0, sizeof(s));
	s.cfg = cfg;
	s.pty_master = s.pty_slave = -1;
	buf_init(&s.out, 0);
	buf_init(&s.err, 0);
	log_settitle("session");
	signal(SIGPIPE, SIG_IGN);
	signal(SIGALRM, on_alarm);
	alarm_phase = 0;
	alarm((unsigned)((cfg->ssh_login_grace_ms + 999) / 1000));
	if (door_fd >= 0 && fstat(door_fd, &st) == 0 && S_ISSOCK(st.st_mode)) {
		status_fd = door_fd;
		set_cloexec(status_fd);
	}
	peer_name(fd, s.peer, sizeof(s.peer), s.peer_ip, sizeof(s.peer_ip));
	/* three 40 ms delayed-ACK stalls per session without it */
	if (setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) < 0)
		log_warn("TCP_NODELAY");
	keepalive(fd);

	bind = ssh_bind_new();
	s.ssh = ssh_new();
	if (!bind || !s.ssh) {
		log_warnx("out of memory");
		close(fd);
		goto out;
	}
	if (ssh_bind_options_set(bind, SSH_BIND_OPTIONS_PROCESS_CONFIG,
				 &no) < 0) {
		log_warnx("cannot set up the session: %s", ssh_get_error(bind));
		close(fd);
		goto out;
	}
	for (i = 0; i < ARRAY_SIZE(host_keys); i++) {
		free(hostkey);
		hostkey = xasprintf("%s/%s", cfg->root, host_keys[i].path);
		/* a key made by an older berth may be all there is */
		if (i > 0 && !path_exists(hostkey))
			continue;
		if (ssh_bind_options_set(bind, SSH_BIND_OPTIONS_HOSTKEY,
					 hostkey) < 0) {
			log_warnx("cannot load host key '%s': %s", hostkey,
				  ssh_get_error(bind));
			close(fd);
			goto out;
		}
	}
	if (ssh_bind_accept_fd(bind, s.ssh, fd) != SSH_OK) {
		log_warnx("%s: %s", s.peer, ssh_get_error(bind));
		close(fd);
		goto out;
	}
	memset(&s.scb, 0, sizeof(s.scb));
	s.scb.userdata = &s;
	s.scb.auth_pubkey_function = auth_pubkey;
	s.scb.channel_open_request_session_function = open_session_channel;
	ssh_callbacks_init(&s.scb);
	ssh_set_server_callbacks(s.ssh, &s.scb);
	ssh_set_auth_methods(s.ssh, SSH_AUTH_METHOD_PUBLICKEY);
	if (key_exchange(&s, fd) < 0)
		goto out;
	tell_engine('k');
	s.event = ssh_event_new();
	if (!s.event || ssh_event_add_session(s.event, s.ssh) != SSH_OK) {
		log_warnx("cannot poll the session");
		goto out;
	}
	while (!(s.user && s.chan && (s.command || s.shell))) {
		if (ssh_event_dopoll(s.event, -1) == SSH_ERROR ||
		    session_gone(&s)) {
			log_debug("%s: gone before a command", s.peer);
			goto out;
		}
	}
	alarm(0);
	if (!ask_engine(!s.shell && is_follower(s.command) ? 'f' : 'a')) {
		log_info("%s: %s refused: the server is at its limit of sessions",
			 s.peer, s.user);
		say_error(&s, "too many sessions running on the server, try again later");
		finish(&s, 1);
		ret = 0;
		goto out;
	}
	if (s.shell) {
		log_info("%s: %s asked for a shell", s.peer, s.user);
		say_error(&s, "no shell here: run a command, e.g. 'ssh HOST help'");
		finish(&s, 1);
		ret = 0;
		goto out;
	}
	log_command(&s);
	status = run_command(&s);
	if (status >= 0)
		finish(&s, status);
	ret = 0;
out:
	if (s.event) {
		ssh_event_remove_session(s.event, s.ssh);
		ssh_event_free(s.event);
	}
	if (s.chan)
		ssh_channel_free(s.chan);
	if (s.ssh) {
		ssh_disconnect(s.ssh);
		ssh_free(s.ssh);
	}
	if (bind)
		ssh_bind_free(bind);
	free(hostkey);
	free(s.user);
	free(s.command);
	free(s.git_protocol);
	buf_release(&s.out);
	buf_release(&s.err);
	return ret;
}
