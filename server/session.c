/* session: see session.h. */
#include "session.h"

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
#include "gitsep.h"
#include "keys.h"
#include "log.h"
#include "phasetrace.h"
#include "privsep.h"
#include "procguard.h"
#include "appuser.h"
#include "loop.h"
#include "reaper.h"
#include "spawn.h"
#include "util.h"
#include "hostkeys.h"
#include "banned.h"

#define MAX_AUTH_TRIES 10
#define CMD_MAX 8192		/* longest exec command we look at */
#define STDIN_MAX (64 * 1024)	/* most "keys add" reads from stdin */
#define STDIN_TIMEOUT_MS (5 * 60 * 1000)
#define CONFIRM_MAX 256
#define BYE_TIMEOUT_MS 5000	/* wait for the client to hang up */
#define SSH_WAIT_FOREVER (-1)	/* libssh's SSH_TIMEOUT_INFINITE (private) */
#define STATUS_REPLY_MS 10000	/* a session waits this long for 'y'/'n' */

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
	/*
	 * Privilege separation (privsep.h), as root only.  mux is the
	 * socketpair between the two halves (-1 without root).  In the child
	 * (berth-ssh, libssh's side) remote is 0; in the monitor (root) it is
	 * 1 once the command runs there, and the client's channel is the
	 * child's relay: stdin arrives in 'in', output leaves as messages.
	 */
	int mux;
	int remote;
	int mux_gone;		/* the other half ended */
	struct buf in;		/* the client's stdin, not taken yet */
	int in_eof;
};

/*
 * What the client asked for, parsed from its exec request by
 * take_request(): in a split session by the berth-ssh half, which hands
 * it to the monitor as a request message (privsep.h), so the root half
 * never reads a command line.
 */
struct request {
	int git;			/* a git service on app */
	enum gitsvc_service svc;
	char *app;
	struct strv words;		/* else the engine command's words */
	int version;			/* git protocol version */
};

static void request_release(struct request *rq)
{
	free(rq->app);
	rq->app = NULL;
	strv_release(&rq->words);
}

/*
 * Messages between the halves (one type byte, privsep.h):
 *   child -> monitor  'k' "V|N TYPE BASE64"   may this key log in? (V: the
 *                                              client proved it holds it;
 *                                              compared as text, never
 *                                              decoded by the monitor)
 *                     'r' the request, parsed by the child: KIND \0
 *                         VERSION \0 PTY \0 TERM \0 COLS \0 ROWS \0
 *                         ARGS (privsep_parse_request())
 *                     'i' stdin bytes, 'e' stdin ended, 'w' "COLS ROWS"
 *   monitor -> child  'K' "ADMIN NOPTY NAME" yes, 'N' no (to 'k')
 *                     'o' stdout bytes, 'E' stderr bytes, 'x' "STATUS"
 * The monitor believes only what it decided itself: who logged in comes
 * from its own answer to 'k' with V.
 */
#define IN_CAP (256 * 1024)	/* the monitor's stdin buffer takes no more */
static char mux_msg[PRIVSEP_MSG_MAX + 1];

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

/*
 * Is pubkey in authorized_keys, from this address?  As keys_match_opts();
 * in the child of a root session, the monitor reads the file and answers.
 */
static int match_key(struct session *s, struct ssh_key_struct *pubkey,
		     char state, char **name, int *admin, int *no_pty)
{
	char *b64 = NULL, *q, type;
	const char *kt;
	size_t len;
	int r, a, np, off = 0;

	if (s->mux < 0)
		return keys_match_opts(s->cfg->root, pubkey,
				       s->peer_ip[0] ? s->peer_ip : NULL, name,
				       admin, no_pty);
	kt = ssh_key_type_to_char(ssh_key_type(pubkey));
	if (!kt || ssh_pki_export_pubkey_base64(pubkey, &b64) != SSH_OK)
		return ERR_NOTFOUND;
	q = xasprintf("%c %s %s", state == SSH_PUBLICKEY_STATE_VALID ? 'V' : 'N',
		      kt, b64);
	ssh_string_free_char(b64);
	r = privsep_send(s->mux, 'k', q, strlen(q), 0);
	free(q);
	if (r < 0 || privsep_recv(s->mux, &type, mux_msg, &len, -1) <= 0)
		return error_set("the session's monitor is gone");
	if (type != 'K' || sscanf(mux_msg, "%d %d %n", &a, &np, &off) != 2 ||
	    !off || !mux_msg[off])
		return ERR_NOTFOUND;
	*name = xstrdup(mux_msg + off);
	*admin = a;
	*no_pty = np;
	return 0;
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
	r = match_key(s, pubkey, state, &name, &admin, &no_pty);
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
	if (s->mux >= 0) {
		char wh[32];

		/* never blocks: a busy monitor misses one resize at worst */
		snprintf(wh, sizeof(wh), "%d %d", w, h);
		privsep_send(s->mux, 'w', wh, strlen(wh), MSG_DONTWAIT);
	}
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

/*
 * The monitor's side of the channel: take one message from the child
 * (waiting up to timeout_ms).  1 taken, 0 nothing, -1 the child is gone.
 */
static int mux_take(struct session *s, int timeout_ms)
{
	char type;
	size_t len;
	int r, w, h;

	if (s->mux_gone)
		return -1;
	r = privsep_recv(s->mux, &type, mux_msg, &len, timeout_ms);
	if (r < 0) {
		s->mux_gone = 1;
		return -1;
	}
	if (r == 0)
		return 0;
	if (type == 'i')
		buf_add(&s->in, mux_msg, len);
	else if (type == 'e')
		s->in_eof = 1;
	else if (type == 'w' &&
		 privsep_parse_winsize(mux_msg, len, &w, &h) == 0) {
		s->winsize.ws_col = (unsigned short)w;
		s->winsize.ws_row = (unsigned short)h;
		if (s->pty_master >= 0)
			ioctl(s->pty_master, TIOCSWINSZ, &s->winsize);
	}
	return 1;
}

static int session_gone(struct session *s)
{
	if (s->remote)
		return s->mux_gone;
	return (ssh_get_status(s->ssh) & (SSH_CLOSED | SSH_CLOSED_ERROR)) ||
	       !ssh_is_connected(s->ssh);
}

static int client_gone(struct session *s)
{
	if (s->remote)
		return s->mux_gone;
	return session_gone(s) || ssh_channel_is_closed(s->chan);
}

/* What the relay loops poll for the client, and what they call then. */
static int client_fd(struct session *s)
{
	return s->remote ? s->mux : ssh_get_fd(s->ssh);
}

static short client_events(struct session *s)
{
	/* a full buffer waits until the command takes some */
	return s->remote && s->in.len >= IN_CAP ? 0 : POLLIN;
}

static void client_poll(struct session *s)
{
	if (!s->remote) {
		ssh_event_dopoll(s->event, 0);
		return;
	}
	if (s->in.len >= IN_CAP) {
		/* nothing more is taken in, but a hang-up must be seen */
		struct pollfd p = { .fd = s->mux, .events = 0 };

		if (poll(&p, 1, 0) > 0 && (p.revents & (POLLHUP | POLLERR)))
			s->mux_gone = 1;
		return;
	}
	while (s->in.len < IN_CAP && mux_take(s, 0) > 0)
		;
}

/* Up to len bytes of stdin that have arrived; 0 if none (or at EOF). */
static int client_read_nb(struct session *s, void *buf, uint32_t len)
{
	size_t n;

	if (!s->remote)
		return ssh_channel_read_nonblocking(s->chan, buf, len, 0);
	n = s->in.len < len ? s->in.len : len;
	if (n) {
		memcpy(buf, s->in.data, n);
		buf_consume(&s->in, n);
	}
	return (int)n;
}

/* The client's stdin ended and all of it was read. */
static int client_eof(struct session *s)
{
	if (s->remote)
		return s->in_eof && !s->in.len;
	return ssh_channel_is_eof(s->chan);
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
	while (len && s->remote) {
		size_t chunk = len > PRIVSEP_MSG_MAX ? PRIVSEP_MSG_MAX : len;

		if (s->mux_gone ||
		    privsep_send(s->mux, to_stderr ? 'E' : 'o', p, chunk, 0) < 0) {
			s->mux_gone = 1;
			error_set("cannot write to the client: it is gone");
			goto out;
		}
		p += chunk;
		len -= chunk;
	}
	if (s->remote) {
		ret = 0;
		goto out;
	}
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

	while (s->remote) {
		if (s->in.len)
			return client_read_nb(s, buf, want);
		if (s->in_eof || s->mux_gone)
			return 0;
		n = mux_take(s, timeout_ms);
		if (n < 0)
			return 0;
		if (n == 0 && timeout_ms >= 0)
			return error_set("timed out waiting for input");
	}
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
		s->status = 1;	/* control_relay() reads its code */
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
		pfd[1].fd = client_fd(s);
		pfd[1].events = client_events(s);
		pfd[0].revents = pfd[1].revents = 0;
		if (poll(pfd, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			log_warn("poll");
			goto out;
		}
		if (pfd[1].revents) {
			/* window adjusts, stdin (kept in the channel), close */
			client_poll(s);
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
			/* the reader stopped at the last line: its code */
			ret = s->status ? control_error_status(rd.code) : 0;
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

static ssize_t backup_read(void *ctx, void *buf, size_t len);

/* "keys add" with no key in the command reads it from stdin. */
static int read_key_stdin(struct session *s, struct strv *words)
{
	struct backup_io io = { .ctx = s, .read = backup_read };
	struct buf text;
	size_t i;
	int r, ret = -1;

	buf_init(&text, STDIN_MAX);
	/* the berth-ssh half reads the key text: a monitor takes none */
	r = s->remote ? 0 : backup_read_all(&io, &text);
	if (r < 0) {
		say_error(s, "keys add: %s", r == ERR_INVALID ?
			  "key text too long" : error_last());
		goto out;
	}
	if (!text.len || strspn(text.data, " \t\r\n") == text.len) {
		say_error(s, "keys add: no key given (ssh HOST keys add < KEY.pub)");
		goto out;
	}
	/* the engine says so too; a request carries no such byte */
	for (i = 0; i < text.len; i++)
		if (((unsigned char)text.data[i] < 0x20 &&
		     !strchr("\t\r\n", text.data[i])) || text.data[i] == 0x7f) {
			say_error(s, "control character in key line");
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
		"apps", "keys", "version", "help", "dashboard",
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
		       (n = client_read_nb(s, chunk, sizeof(chunk))) > 0)
			if (write_all(s->pty_master, chunk, (size_t)n) < 0)
				return 0;
		if (!input_done && client_eof(s)) {
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
		pfd[1].fd = client_fd(s);
		pfd[1].events = client_events(s);
		pfd[0].revents = pfd[1].revents = 0;
		/* libssh may hold decrypted data the socket no longer shows */
		if (poll(pfd, 2, 200) < 0 && errno != EINTR)
			return -1;
		if (pfd[1].revents)
			client_poll(s);
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
	const char *code;	/* the reader's, of an error line */
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
		rr->status = control_error_status(rr->code);
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
	struct control_reader rd;
	struct run_relay rr = { s, -1, 0, rd.code };
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
		if (client_gone(s)) {
			ret = -1;
			goto out;
		}
		/* the client's input, as far as the process takes it */
		while (!input_done && in_w >= 0 && !pending.len &&
		       (n = client_read_nb(s, chunk, sizeof(chunk))) > 0)
			buf_add(&pending, chunk, (size_t)n);
		if (!input_done && !pending.len && in_w >= 0 &&
		    client_eof(s)) {
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
		pfd[nfd].fd = client_fd(s);
		pfd[nfd++].events = client_events(s);
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
			client_poll(s);
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

static int run_engine_command(struct session *s, struct strv *wordsp)
{
	struct strv words = *wordsp;
	const char *cmd, *claimed = NULL;
	int ret = 1;

	*wordsp = (struct strv)STRV_INIT;
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
	/* the engine's status names the state folder and every app
	 * ("status APP" is the app's ps: its access was checked) */
	if (!strcmp(cmd, "status") && words.n < 2 && !s->admin) {
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
			ret = 100;	/* as the engine's own usage errors */
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

/*
 * The exec request, parsed: 0 with *rq filled (request_release() it), or
 * the exit status after telling the client what is wrong.  In a split
 * session the berth-ssh half does this, "keys add"'s key text from stdin
 * included; the monitor gets the result as a request message.
 */
static int take_request(struct session *s, struct request *rq)
{
	int r;

	memset(rq, 0, sizeof(*rq));
	rq->words = (struct strv)STRV_INIT;
	/* A terminal only makes sense for psql and run; anything else
	 * would run with its output mangled by the client's raw mode. */
	if (s->pty && !command_is(s->command, "pg:psql") &&
	    !command_is(s->command, "run")) {
		say_error(s, "a terminal (ssh -t) is only for pg:psql and run: run this command without -t");
		return 1;
	}
	rq->version = gitsvc_protocol_version(s->git_protocol);
	r = gitsvc_parse_command(s->command, &rq->svc, &rq->app);
	if (r == 0) {
		rq->git = 1;
		return 0;
	}
	if (r != ERR_NOTFOUND) {
		say_error(s, "%s", error_last());
		return 1;
	}
	if (sshd_split_command(&rq->words, s->command) < 0) {
		say_error(s, "%s", error_last());
		request_release(rq);
		return 1;
	}
	if (!rq->words.n) {
		say_error(s, "no command given (try 'help')");
		return 1;
	}
	/* "keys add" without key text reads it from stdin (admins only:
	 * others are told so first, by the monitor) */
	if (s->admin && rq->words.n >= 2 && !strcmp(rq->words.v[0], "keys") &&
	    !strcmp(rq->words.v[1], "add") &&
	    keys_add_words(s, &rq->words) < 0) {
		request_release(rq);
		return 1;
	}
	return 0;
}

static int run_request(struct session *s, struct request *rq)
{
	struct gitsvc_io io;
	int r, ret;

	/* as take_request() checked: a monitor believes no other half */
	if (s->pty && (rq->git || (strcmp(rq->words.v[0], "pg:psql") &&
				   strcmp(rq->words.v[0], "run")))) {
		say_error(s, "a terminal (ssh -t) is only for pg:psql and run: run this command without -t");
		return 1;
	}
	if (!rq->git)
		return run_engine_command(s, &rq->words);
	/* A push to a new app makes this key its owner; anything else
	 * needs access to an app that exists. */
	r = rq->svc == GITSVC_RECEIVE_PACK ?
		access_claim(s->cfg->root, rq->app, s->user, s->admin) :
		access_check(s->cfg->root, rq->app, s->user, s->admin);
	if (r < 0 && r != ERR_NOTFOUND) {
		say_error(s, "%s", error_last());
		return 1;
	}
	io.ctx = s;
	io.read = io_read;
	io.write = io_write;
	/* split in two: the transfer runs as berth-ssh (gitsep.h) */
	ret = (s->mux >= 0 ? gitsep_run : gitserve_run)(s->cfg, rq->svc,
			rq->app, s->user, rq->version, &io);
	if (ret < 0) {
		say_error(s, "%s", error_last()[0] ? error_last() : "failed");
		ret = 1;
	}
	return ret;
}

/* Exit status, EOF, close; then wait for the client to take them. */
static void finish(struct session *s, int status)
{
	int64_t deadline;

	if (s->remote) {
		char st[16];

		snprintf(st, sizeof(st), "%d", status);
		if (!s->mux_gone)
			privsep_send(s->mux, 'x', st, strlen(st), 0);
		return;
	}

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

/* ------------------------------------------------ privilege separation */

/*
 * The monitor's answer to 'k': it reads authorized_keys itself, and
 * compares the key's text with its lines (keys_match_text()): the
 * child's bytes are checked for their form, never decoded here.
 */
static void monitor_key(struct session *s, const char *q, size_t len)
{
	struct privsep_key k;
	char *name = NULL, *reply = NULL;
	int admin = 0, no_pty = 0, r;

	if (privsep_parse_key(q, len, &k) < 0) {
		log_warnx("%s: %s", s->peer, error_last());
		goto no;
	}
	r = keys_match_text(s->cfg->root, k.type, k.b64,
			    s->peer_ip[0] ? s->peer_ip : NULL, &name, &admin,
			    &no_pty);
	if (r < 0) {
		if (r != ERR_NOTFOUND)
			log_warnx("%s: %s", s->peer, error_last());
		goto no;
	}
	/* who logged in is what the monitor found, never the child's word */
	if (k.verified) {
		free(s->user);
		s->user = xstrdup(name);
		s->admin = admin;
		s->no_pty = no_pty;
	}
	reply = xasprintf("%d %d %s", admin, no_pty, name);
	privsep_send(s->mux, 'K', reply, strlen(reply), 0);
	goto out;
no:
	privsep_send(s->mux, 'N', "", 0, 0);
out:
	free(name);
	free(reply);
}

/* 'r': the request the child parsed; 0, or -1 if malformed. */
static int monitor_take_request(struct session *s, const char *m, size_t len,
				struct request *rq)
{
	struct privsep_request c;
	size_t i;

	if (privsep_parse_request(m, len, &c) < 0)
		return -1;
	memset(rq, 0, sizeof(*rq));
	rq->words = (struct strv)STRV_INIT;
	rq->git = c.git;
	rq->svc = (enum gitsvc_service)c.svc;
	rq->app = c.git ? xstrdup(c.app) : NULL;
	for (i = 0; i < c.nwords; i++)
		strv_push(&rq->words, c.words[i]);
	rq->version = c.version;
	/* the key's options are the monitor's own reading of its line */
	s->pty = c.pty && !s->no_pty;
	snprintf(s->term, sizeof(s->term), "%s",
		 oneoff_term_valid(c.term) ? c.term : "");
	s->winsize.ws_col = (unsigned short)(c.cols ? c.cols : 80);
	s->winsize.ws_row = (unsigned short)(c.rows ? c.rows : 24);
	return 0;
}

/*
 * The monitor (root): answer the child's key questions until it sends the
 * command of a key the monitor itself let in, then run that command with
 * the child relaying the channel.  0 when the child is gone or the
 * command ran; -1 at a message it must not believe (nothing was run).
 */
static int monitor_serve(struct session *s)
{
	struct request rq;
	char type;
	size_t len;
	int status, r;

	for (;;) {
		r = privsep_recv(s->mux, &type, mux_msg, &len, -1);
		if (r < 0)
			return -1;	/* gone, or a message too long */
		if (r == 0)
			continue;
		if (type == 'k') {
			monitor_key(s, mux_msg, len);
			continue;
		}
		if (type != 'r')
			continue;
		if (!s->user) {
			log_warnx("%s: the session's child sent a command "
				  "without a key let in: closing", s->peer);
			return -1;
		}
		if (monitor_take_request(s, mux_msg, len, &rq) < 0) {
			log_warnx("%s: %s: closing", s->peer, error_last());
			return -1;
		}
		break;
	}
	alarm(0);
	s->remote = 1;
	buf_init(&s->in, 0);
	status = run_request(s, &rq);
	request_release(&rq);
	if (status >= 0)
		finish(s, status);
	return 0;
}

void session_monitor(const struct config *cfg, int mux, const char *peer,
		     const char *peer_ip)
{
	struct session s;
	char type;
	size_t len;

	memset(&s, 0, sizeof(s));
	s.cfg = cfg;
	s.pty_master = s.pty_slave = -1;
	s.mux = mux;
	buf_init(&s.out, 0);
	buf_init(&s.err, 0);
	snprintf(s.peer_ip, sizeof(s.peer_ip), "%s", peer_ip ? peer_ip : "");
	snprintf(s.peer, sizeof(s.peer), "%s", peer ? peer : "?");
	/* Closing with messages unread would reset the child's end and lose
	 * what it has not read yet (the exit status): wait for its close;
	 * a child that broke the protocol gets nothing more. */
	if (monitor_serve(&s) == 0)
		while (privsep_recv(s.mux, &type, mux_msg, &len, -1) > 0)
			;
	free(s.user);
	free(s.command);
	free(s.git_protocol);
	buf_release(&s.out);
	buf_release(&s.err);
	buf_release(&s.in);
}

/* The client's stdin on its way from libssh to the monitor. */
struct relay_in {
	struct buf pend;	/* taken from libssh, not yet sent */
	int eof_seen, eof_sent;
	int full;		/* the monitor's socket was full */
	unsigned long long bytes, msgs, busy, idle;	/* for phasetrace.h */
};

/*
 * libssh reads its socket 4 KiB per poll: when the socket has data, take
 * up to a message's worth (PRIVSEP_MSG_MAX) of what has arrived, so the
 * monitor is woken for fewer, fuller messages.
 */
static void relay_pull(struct session *s)
{
	int k;

	for (k = 0; k < PRIVSEP_MSG_MAX / 4096; k++)
		if (ssh_event_dopoll(s->event, 0) != SSH_OK)
			break;
}

/*
 * Move what libssh holds of the client's stdin to the monitor, a message
 * (up to PRIVSEP_MSG_MAX) at a time, until libssh holds no more (0) or
 * the monitor's socket is full (1: wait for POLLOUT).  Taking it all each
 * time matters: libssh holds decrypted data that the socket no longer
 * shows, and the client sends more only once we read it (the channel's
 * window), so data left there would wait for the poll's timeout.
 * stdin goes on only as fast as the monitor takes it.  -1 on error.
 */
static int relay_stdin(struct session *s, struct relay_in *st)
{
	static char chunk[PRIVSEP_MSG_MAX];
	int n, r;

	if (st->full)
		return 1;
	for (;;) {
		if (!st->pend.len && !st->eof_seen) {
			n = ssh_channel_read_nonblocking(s->chan, chunk,
							 sizeof(chunk), 0);
			if (n == SSH_ERROR)
				return -1;
			if (n > 0) {
				if (!st->bytes)
					phase_trace("relay: first stdin bytes");
				st->bytes += (unsigned long long)n;
				buf_add(&st->pend, chunk, (size_t)n);
			} else if (ssh_channel_is_eof(s->chan)) {
				st->eof_seen = 1;
			} else {
				return 0;
			}
		}
		if (st->pend.len) {
			r = privsep_send(s->mux, 'i', st->pend.data,
					 st->pend.len, MSG_DONTWAIT);
			if (r == ERR_BUSY) {
				st->busy++;
				st->full = 1;
				return 1;
			}
			if (r < 0)
				return -1;
			buf_reset(&st->pend);
			st->msgs++;
			continue;
		}
		if (!st->eof_seen || st->eof_sent)
			return 0;
		r = privsep_send(s->mux, 'e', "", 0, MSG_DONTWAIT);
		if (r == ERR_BUSY) {
			st->full = 1;
			return 1;
		}
		if (r < 0)
			return -1;
		st->eof_sent = 1;
		phase_trace("relay: stdin ended, %llu bytes in %llu messages, "
			    "monitor full %llu times, %llu idle waits",
			    st->bytes, st->msgs, st->busy, st->idle);
		return 0;
	}
}

/*
 * The child (berth-ssh): hand the command to the monitor, then carry the
 * channel: stdin to the monitor, its output to the client, until it says
 * the exit status (returned) or is gone (-1).
 */
static int relay_to_monitor(struct session *s, const struct request *rq)
{
	struct buf m = BUF_INIT;
	struct relay_in st = { .pend = BUF_INIT };
	struct pollfd pfd[2];
	char type;
	size_t len;
	int n, r, ret = -1, sndbuf = 1 << 20;

	if (privsep_encode_request(&m, rq->git, rq->svc, rq->app,
				   (const char *const *)rq->words.v,
				   rq->words.n, rq->version, s->pty, s->term,
				   s->winsize.ws_col, s->winsize.ws_row) < 0 ||
	    privsep_send(s->mux, 'r', m.data, m.len, 0) < 0) {
		say_error(s, "command too long");
		ret = 1;
		goto out;
	}
	buf_init(&st.pend, 0);
	/* more of a push in flight than the default (the kernel caps it) */
	if (setsockopt(s->mux, SOL_SOCKET, SO_SNDBUF, &sndbuf,
		       sizeof(sndbuf)) < 0)
		log_debug("SO_SNDBUF: %s", strerror(errno));
	for (;;) {
		if (client_gone(s))
			goto out;
		r = relay_stdin(s, &st);
		if (r < 0)
			goto out;
		pfd[0].fd = ssh_get_fd(s->ssh);
		pfd[0].events = POLLIN;
		pfd[1].fd = s->mux;
		pfd[1].events = POLLIN | (r ? POLLOUT : 0);
		pfd[0].revents = pfd[1].revents = 0;
		/* relay_stdin() took all that libssh held: what comes next
		 * shows on a socket; 200 ms is only a backstop */
		n = poll(pfd, 2, 200);
		if (n < 0 && errno != EINTR)
			goto out;
		if (n == 0)
			st.idle++;
		if (pfd[1].revents & POLLOUT)
			st.full = 0;
		if (pfd[0].revents)
			relay_pull(s);
		if (!(pfd[1].revents & (POLLIN | POLLHUP | POLLERR)))
			continue;
		r = privsep_recv(s->mux, &type, mux_msg, &len, 0);
		if (r < 0)
			goto out;
		if (r == 0)
			continue;
		if ((type == 'o' || type == 'E') &&
		    chan_write(s, type == 'E', mux_msg, len) < 0)
			goto out;
		if (type == 'x') {
			phase_trace("relay: exit status; %llu bytes in, "
				    "monitor full %llu times, %llu idle waits",
				    st.bytes, st.busy, st.idle);
			ret = privsep_number(mux_msg);
			if (ret < -1)
				ret = 1;
			goto out;
		}
	}
out:
	buf_release(&m);
	buf_release(&st.pend);
	return ret;
}

/*
 * As root, split in two: the child becomes berth-ssh and returns 0 (it
 * goes on with libssh); the monitor returns 1 after serving it.  -1 if
 * the split cannot be made (the connection is refused: fail closed).
 */
static int split_privileges(struct session *s)
{
	struct appuser u;
	int sv[2];
	pid_t monitor = getpid(), pid;

	if (privsep_user(s->cfg->root, &u) < 0) {
		log_warnx("%s: refused: %s", s->peer, error_last());
		return -1;
	}
	if (privsep_pair(sv) < 0) {
		log_warnx("%s: %s", s->peer, error_last());
		return -1;
	}
	pid = fork();
	if (pid < 0) {
		log_warn("%s: fork", s->peer);
		close(sv[0]);
		close(sv[1]);
		return -1;
	}
	if (pid == 0) {
		close(sv[0]);
		s->mux = sv[1];
		/* it never forks: no child keeps its pid's rights (procguard.h) */
		if (privsep_drop(&u, monitor) < 0 ||
		    procguard_forbid_fork() < 0) {
			log_warnx("%s: %s", s->peer, error_last());
			_exit(1);
		}
		/* the monitor's alarm ends both; this one is a backstop */
		alarm((unsigned)((s->cfg->ssh_login_grace_ms + 999) / 1000) + 1);
		return 0;
	}
	close(sv[1]);
	s->mux = sv[0];
	/* the child alone speaks to the client and to the door */
	ssh_free(s->ssh);
	s->ssh = NULL;
	if (status_fd >= 0) {
		close(status_fd);
		status_fd = -1;
	}
	session_monitor(s->cfg, s->mux, s->peer, s->peer_ip);
	close(s->mux);
	s->mux = -1;
	while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
		;
	return 1;
}

int session_main(const struct config *cfg, int fd, int door_fd)
{
	struct stat st;
	struct session s;
	struct request rq;
	ssh_bind bind = NULL;
	char *hostkey = NULL;
	bool no = false;
	int one = 1, ret = 1, status;
	size_t i;

	memset(&s, 0, sizeof(s));
	s.cfg = cfg;
	s.pty_master = s.pty_slave = -1;
	s.mux = -1;
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
	/* The host keys are in memory now (ssh_bind_accept_fd loads them):
	 * as root, nothing the client sends is read before the drop. */
	if (geteuid() == 0) {
		int r = split_privileges(&s);

		if (r != 0) {
			ret = r < 0 ? 1 : 0;
			goto out;
		}
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
	status = take_request(&s, &rq);
	if (!status)
		status = s.mux >= 0 ? relay_to_monitor(&s, &rq) :
				      run_request(&s, &rq);
	request_release(&rq);
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
	buf_release(&s.in);
	if (s.mux >= 0)
		close(s.mux);
	return ret;
}
