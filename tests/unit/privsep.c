/*
 * privsep: a hostile berth-ssh half against the root half of a session.
 * The test plays the child over a real socketpair with the real monitor
 * (session_monitor()) in a process of its own, and a listening control
 * socket stands in for the engine: whatever the monitor refuses must
 * reach neither the engine nor an answer, and what it accepts must be
 * exactly what a well-behaved child sends.
 */
#include <errno.h>
#include <stdarg.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <libssh/libssh.h>

#include "config.h"
#include "control.h"
#include "keys.h"
#include "privsep.h"
#include "session.h"
#include "tap.h"
#include "util.h"
#include "banned.h"

static struct config cfg;
static int engine = -1;		/* the stand-in engine's listening socket */
static char msg[PRIVSEP_MSG_MAX + 1];

static char *new_key_b64(void)
{
	ssh_key key = NULL;
	char *b64 = NULL, *copy;

	if (ssh_pki_generate(SSH_KEYTYPE_ED25519, 0, &key) != SSH_OK ||
	    ssh_pki_export_pubkey_base64(key, &b64) != SSH_OK)
		abort();
	copy = xstrdup(b64);
	ssh_string_free_char(b64);
	ssh_key_free(key);
	return copy;
}

/* A monitor in a child process; *fd is the test's end (the hostile half). */
static pid_t start_monitor(int *fd, const char *ip)
{
	int sv[2];
	pid_t pid;

	if (privsep_pair(sv) < 0)
		abort();
	pid = fork();
	if (pid < 0)
		abort();
	if (pid == 0) {
		close(sv[0]);
		alarm(20);
		session_monitor(&cfg, sv[1], "test", ip);
		_exit(0);
	}
	close(sv[1]);
	*fd = sv[0];
	return pid;
}

/* Close our end and reap the monitor: 1 if it ended cleanly. */
static int stop_monitor(int fd, pid_t pid)
{
	int st;

	close(fd);
	while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
		;
	return WIFEXITED(st) && WEXITSTATUS(st) == 0;
}

static int send_msg(int fd, char type, const void *p, size_t len)
{
	return privsep_send(fd, type, p, len, 0);
}

/* The monitor's next message: its type, 0 if it closed, -1 if silent. */
static int next(int fd, size_t *len)
{
	char type;
	size_t l = 0;
	int r = privsep_recv(fd, &type, msg, &l, 10000);

	if (len)
		*len = l;
	if (r < 0)
		return 0;
	if (r == 0)
		return -1;
	return type;
}

/*
 * What the monitor says until its exit status: its stderr into err, the
 * status returned (-1: it closed or fell silent first).
 */
static int outcome(int fd, struct buf *err)
{
	int t;

	buf_reset(err);
	for (;;) {
		t = next(fd, NULL);
		if (t == 'E')
			buf_addstr(err, msg);
		else if (t == 'x')
			return privsep_number(msg);
		else if (t != 'o')
			return -1;
	}
}

/* Did a request reach the stand-in engine since the last call? */
static int engine_reached(void)
{
	int c = accept4(engine, NULL, NULL, SOCK_CLOEXEC);

	if (c < 0)
		return 0;
	close(c);
	return 1;
}

/* The key question; the monitor's answer type. */
static int ask_key(int fd, const char *text)
{
	if (send_msg(fd, 'k', text, strlen(text)) < 0)
		return 0;
	return next(fd, NULL);
}

/* A request built as the child builds it. */
static void request(struct buf *b, int pty, const char *term, int n, ...)
{
	const char *w[8];
	va_list ap;
	int i;

	va_start(ap, n);
	for (i = 0; i < n; i++)
		w[i] = va_arg(ap, const char *);
	va_end(ap);
	buf_reset(b);
	if (privsep_encode_request(b, 0, 0, NULL, w, (size_t)n, 0, pty, term,
				   80, 24) < 0)
		abort();
}

/* a literal and its length, NUL bytes inside included */
#define LIT(s) s, sizeof(s) - 1

/*
 * Log a key in (V), send payload as the request, and say whether the
 * monitor hung up on it without an answer and without reaching the engine.
 */
static int refused_request(const char *vkey, const void *p, size_t len)
{
	int fd, t, reached;
	pid_t pid = start_monitor(&fd, "192.0.2.1");

	if (ask_key(fd, vkey) != 'K')
		return 0;
	send_msg(fd, 'r', p, len);
	t = next(fd, NULL);
	reached = engine_reached();
	if (!stop_monitor(fd, pid))
		return 0;
	if (t != 0 || reached)
		printf("# answered %d, engine reached %d\n", t, reached);
	return t == 0 && !reached;
}

static void test_parsers(void)
{
	struct privsep_request rq;
	struct privsep_key k;
	struct buf b = BUF_INIT;
	const char *words[] = { "config:set", "myapp", "A=b c" };
	const char *bad_word[] = { "apps", "a\001b" };
	const char *empty_word[] = { "apps", "" };
	char *big;

	ok(privsep_encode_request(&b, 0, 0, NULL, words, 3, 2, 0, "", 0, 0) == 0 &&
	   privsep_parse_request(b.data, b.len, &rq) == 0 && !rq.git &&
	   rq.nwords == 3 && !strcmp(rq.words[2], "A=b c") && rq.version == 2,
	   "a request's words go through whole");
	buf_reset(&b);
	ok(privsep_encode_request(&b, 1, 1, "myapp", NULL, 0, 0, 0, "", 0, 0) == 0 &&
	   privsep_parse_request(b.data, b.len, &rq) == 0 && rq.git &&
	   rq.svc == 1 && !strcmp(rq.app, "myapp"), "a git request");
	buf_reset(&b);
	ok(privsep_encode_request(&b, 1, 1, "../etc", NULL, 0, 0, 0, "", 0, 0) < 0 &&
	   privsep_encode_request(&b, 0, 0, NULL, bad_word, 2, 0, 0, "", 0, 0) < 0 &&
	   privsep_encode_request(&b, 0, 0, NULL, empty_word, 2, 0, 0, "", 0, 0) < 0 &&
	   privsep_encode_request(&b, 0, 0, NULL, words, 0, 0, 0, "", 0, 0) < 0,
	   "a request that would not parse is not built");
	big = xmalloc(PRIVSEP_MSG_MAX + 2);
	memset(big, 'a', PRIVSEP_MSG_MAX + 1);
	big[PRIVSEP_MSG_MAX + 1] = '\0';
	bad_word[1] = big;
	ok(privsep_encode_request(&b, 0, 0, NULL, bad_word, 2, 0, 0, "", 0, 0) < 0 &&
	   !strcmp(error_last(), "command too long") && b.len == 0,
	   "too long: 'command too long', nothing built");
	free(big);

	ok(privsep_parse_key("V ssh-ed25519 AAAA", 18, &k) == 0 && k.verified &&
	   !strcmp(k.type, "ssh-ed25519") && !strcmp(k.b64, "AAAA"),
	   "a key question");
	ok(privsep_parse_key("V ssh-ed25519 AAAA BBBB", 23, &k) < 0 &&
	   privsep_parse_key("V ssh-ed25519 AA=A", 18, &k) < 0 &&
	   privsep_parse_key("V ssh-ed25519 AAA", 17, &k) < 0 &&
	   privsep_parse_key("V SSH-ED25519 AAAA", 18, &k) < 0 &&
	   privsep_parse_key("X ssh-ed25519 AAAA", 18, &k) < 0 &&
	   privsep_parse_key("V  AAAA", 7, &k) < 0,
	   "malformed key questions refused");
	{
		int w = 0, h = 0;

		ok(privsep_parse_winsize("80 24", 5, &w, &h) == 0 && w == 80 &&
		   h == 24, "a window size");
		ok(privsep_parse_winsize("0 24", 4, &w, &h) < 0 &&
		   privsep_parse_winsize("80  24", 6, &w, &h) < 0 &&
		   privsep_parse_winsize("080 24", 6, &w, &h) < 0 &&
		   privsep_parse_winsize("10000 24", 8, &w, &h) < 0 &&
		   privsep_parse_winsize("-1 24", 5, &w, &h) < 0 &&
		   privsep_parse_winsize("80 24 1", 7, &w, &h) < 0 &&
		   privsep_parse_winsize("80", 2, &w, &h) < 0,
		   "malformed window sizes refused");
	}
	buf_release(&b);
}

int main(void)
{
	char tmpl[] = "/tmp/berth-privsep-XXXXXX";
	struct sockaddr_un sa;
	struct buf b = BUF_INIT, err = BUF_INIT;
	char *root, *dir, *keys, *a, *adm, *other, *q, *vkey, *vadm;
	int fd, t;
	pid_t pid;

	signal(SIGPIPE, SIG_IGN);
	test_parsers();

	root = mkdtemp(tmpl);
	if (!root)
		abort();
	config_init(&cfg, root);
	dir = xasprintf("%s/keys", root);
	mkdir(dir, 0700);
	free(dir);
	dir = xasprintf("%s/run", root);
	mkdir(dir, 0700);
	free(dir);
	a = new_key_b64();
	adm = new_key_b64();
	other = new_key_b64();
	keys = xasprintf("ssh-ed25519 %s alice\n"
			 "from=\"10.0.0.0/8\" ssh-ed25519 %s far\n"
			 KEYS_ADMIN_OPTION " ssh-ed25519 %s root-key\n",
			 a, other, adm);
	dir = xasprintf("%s/%s", root, KEYS_FILE);
	if (write_file_atomic(dir, keys, strlen(keys), 0600) < 0)
		abort();
	free(dir);

	/* the stand-in engine */
	memset(&sa, 0, sizeof(sa));
	sa.sun_family = AF_UNIX;
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s/%s", root,
		 CONTROL_SOCKET);
	engine = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (engine < 0 || bind(engine, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
	    listen(engine, 8) < 0)
		abort();

	vkey = xasprintf("V ssh-ed25519 %s", a);
	vadm = xasprintf("V ssh-ed25519 %s", adm);

	/* who may log in: the monitor's own reading of authorized_keys */
	pid = start_monitor(&fd, "192.0.2.1");
	ok(ask_key(fd, vkey) == 'K' && !strcmp(msg, "0 0 alice"),
	   "a listed key is let in, named by the monitor");
	q = xasprintf("V ssh-ed25519 %s", other);
	ok(ask_key(fd, q) == 'N', "a key with from= elsewhere is refused");
	free(q);
	q = xasprintf("V ssh-rsa %s", a);
	ok(ask_key(fd, q) == 'N', "the right blob under another type is refused");
	free(q);
	q = xasprintf("V ssh-ed25519 %s", a);
	q[strlen(q) - 5] ^= 1;	/* one bit of the blob */
	ok(ask_key(fd, q) == 'N', "a blob one bit off is refused");
	free(q);
	ok(ask_key(fd, "V ssh-ed25519 AAAA\n") == 'N' &&
	   ask_key(fd, "V ssh-ed25519 !!!!") == 'N' &&
	   ask_key(fd, "garbage") == 'N' && ask_key(fd, "") == 'N',
	   "malformed key questions get no");
	ok(stop_monitor(fd, pid), "the monitor ends with its other half");

	/* a request before a key proved itself */
	request(&b, 0, "", 1, "version");
	pid = start_monitor(&fd, "192.0.2.1");
	send_msg(fd, 'r', b.data, b.len);
	ok(next(fd, NULL) == 0 && !engine_reached() && stop_monitor(fd, pid),
	   "a request before any key: closed, nothing run");
	pid = start_monitor(&fd, "192.0.2.1");
	q = xasprintf("N ssh-ed25519 %s", a);
	t = ask_key(fd, q);
	free(q);
	send_msg(fd, 'r', b.data, b.len);
	ok(t == 'K' && next(fd, NULL) == 0 && !engine_reached() &&
	   stop_monitor(fd, pid),
	   "a key only asked about (no signature checked): closed, nothing run");
	pid = start_monitor(&fd, "192.0.2.1");
	q = xasprintf("V ssh-ed25519 %s", other);
	t = ask_key(fd, q);
	free(q);
	send_msg(fd, 'r', b.data, b.len);
	ok(t == 'N' && next(fd, NULL) == 0 && !engine_reached() &&
	   stop_monitor(fd, pid), "a refused key's request: closed, nothing run");

	/* malformed requests of a key that is in */
	ok(refused_request(vkey, LIT("cmd\0" "0\0" "0\0\0" "80\0" "24")), "no words: refused");
	ok(refused_request(vkey, LIT("cmd\0" "0\0" "0\0\0" "80\0" "24\0" "apps\0")), "an empty word: refused");
	ok(refused_request(vkey, LIT("cmd\0" "0\0" "0\0\0" "80\0" "24\0" "ap\001ps")), "a control byte in a word: refused");
	ok(refused_request(vkey, LIT("sh\0" "0\0" "0\0\0" "80\0" "24\0" "apps")), "an unknown kind: refused");
	ok(refused_request(vkey, LIT("cmd\0" "3\0" "0\0\0" "80\0" "24\0" "apps")), "a protocol version of 3: refused");
	ok(refused_request(vkey, LIT("cmd\0" "0\0" "0\0\0" "080\0" "24\0" "apps")), "cols with a leading zero: refused");
	ok(refused_request(vkey, LIT("cmd\0" "0\0" "1\0" "x;y\0" "80\0" "24\0" "run")), "a terminal type with ';': refused");
	ok(refused_request(vkey, LIT("git\0" "0\0" "0\0\0" "80\0" "24\0"
			   "git-receive-pack\0" "../x")),
	   "a git request for '../x': refused");
	ok(refused_request(vkey, LIT("git\0" "0\0" "0\0\0" "80\0" "24\0"
			   "git-upload-pack\0" "app\0" "more")),
	   "a git request with a word more: refused");
	ok(refused_request(vkey, LIT("git\0" "0\0" "0\0\0" "80\0" "24\0"
			   "sh\0" "app")), "a git request for another program: refused");
	ok(refused_request(vkey, LIT("version")), "a command line as of old: refused");
	{
		/* more than a message: the monitor takes none of it */
		size_t n = PRIVSEP_MSG_MAX + 10;
		char *huge = xmalloc(n);
		int sv[2];

		memset(huge, 'a', n);
		pid = start_monitor(&fd, "192.0.2.1");
		t = ask_key(fd, vkey);
		/* privsep_send() refuses it: send it raw */
		sv[0] = (int)send(fd, huge, n, 0);
		ok(t == 'K' && (sv[0] < 0 || next(fd, NULL) == 0) &&
		   !engine_reached() && stop_monitor(fd, pid),
		   "an oversized request: closed, nothing run");
		free(huge);
	}

	/* a terminal only for pg:psql and run, whatever the other half says */
	pid = start_monitor(&fd, "192.0.2.1");
	request(&b, 1, "xterm", 1, "apps");
	t = ask_key(fd, vkey);
	send_msg(fd, 'r', b.data, b.len);
	ok(t == 'K' && outcome(fd, &err) == 1 &&
	   strstr(err.data, "a terminal (ssh -t) is only for pg:psql and run") &&
	   !engine_reached() && stop_monitor(fd, pid),
	   "a terminal for apps: refused, nothing run");

	/* keys add: the monitor reads no key text from the channel */
	pid = start_monitor(&fd, "192.0.2.1");
	request(&b, 0, "", 2, "keys", "add");
	t = ask_key(fd, vadm);
	ok(t == 'K' && !strcmp(msg, "1 0 root-key"), "an admin key is let in");
	send_msg(fd, 'r', b.data, b.len);
	ok(outcome(fd, &err) == 1 && strstr(err.data, "keys add: no key given") &&
	   !engine_reached() && stop_monitor(fd, pid),
	   "keys add without key text: refused without reading stdin");
	pid = start_monitor(&fd, "192.0.2.1");
	request(&b, 0, "", 3, "keys", "add", "ssh-ed25519 AAAA x");
	t = ask_key(fd, vkey);
	send_msg(fd, 'r', b.data, b.len);
	ok(t == 'K' && outcome(fd, &err) == 1 &&
	   strstr(err.data, "keys: only admin keys may manage keys") &&
	   !engine_reached() && stop_monitor(fd, pid),
	   "keys add from a key the monitor knows is not admin: refused");

	/* what a well-behaved half sends is run */
	pid = start_monitor(&fd, "192.0.2.1");
	request(&b, 0, "", 1, "version");
	t = ask_key(fd, vkey);
	send_msg(fd, 'r', b.data, b.len);
	{
		struct pollfd p = { .fd = engine, .events = POLLIN };
		int c = -1;

		if (poll(&p, 1, 10000) == 1)
			c = accept4(engine, NULL, NULL, SOCK_CLOEXEC);
		if (c >= 0)
			close(c);	/* the engine hangs up */
		ok(c >= 0, "a well-formed request reaches the engine");
	}
	ok(t == 'K' && outcome(fd, &err) == 1 &&
	   strstr(err.data, "the engine closed the connection early") &&
	   stop_monitor(fd, pid), "and its answer goes back");

	close(engine);
	rm_rf(root);
	free(keys);
	free(a);
	free(adm);
	free(other);
	free(vkey);
	free(vadm);
	buf_release(&b);
	buf_release(&err);
	return tap_done();
}
