/* privsep: see privsep.h. */
#include "privsep.h"

#include <errno.h>
#include <grp.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "appuser.h"
#include "log.h"
#include "procguard.h"
#include "runner.h"
#include "util.h"
#include "banned.h"

int privsep_pair(int sv[2])
{
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
		return error_setsys("socketpair");
	return 0;
}

int privsep_send(int fd, char type, const void *data, size_t len, int flags)
{
	struct iovec iov[2];
	struct msghdr mh;
	union { const void *c; void *v; } d = { .c = data };
	ssize_t n;

	if (len > PRIVSEP_MSG_MAX)
		return error_set("message too long");
	iov[0].iov_base = &type;
	iov[0].iov_len = 1;
	iov[1].iov_base = d.v;
	iov[1].iov_len = len;
	memset(&mh, 0, sizeof(mh));
	mh.msg_iov = iov;
	mh.msg_iovlen = 2;
	do
		n = sendmsg(fd, &mh, flags | MSG_NOSIGNAL);
	while (n < 0 && errno == EINTR);
	if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
		return ERR_BUSY;
	if (n < 0)
		return error_setsys("the other half of the session");
	return 0;
}

int privsep_recv(int fd, char *type, char *buf, size_t *len, int timeout_ms)
{
	struct pollfd pfd;
	struct iovec iov[2];
	struct msghdr mh;
	ssize_t n;
	int r;

	pfd.fd = fd;
	pfd.events = POLLIN;
	do
		r = poll(&pfd, 1, timeout_ms);
	while (r < 0 && errno == EINTR);
	if (r < 0)
		return error_setsys("poll");
	if (r == 0)
		return 0;
	iov[0].iov_base = type;
	iov[0].iov_len = 1;
	iov[1].iov_base = buf;
	iov[1].iov_len = PRIVSEP_MSG_MAX;
	memset(&mh, 0, sizeof(mh));
	mh.msg_iov = iov;
	mh.msg_iovlen = 2;
	do
		n = recvmsg(fd, &mh, MSG_DONTWAIT);
	while (n < 0 && errno == EINTR);
	if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
		return 0;
	if (n < 0)
		return error_setsys("the other half of the session");
	if (n == 0)
		return error_set("the other half of the session ended");
	if (mh.msg_flags & MSG_TRUNC)
		return error_set("message too long from the other half");
	*len = (size_t)n - 1;
	buf[*len] = '\0';
	return 1;
}

int privsep_number(const char *p)
{
	long v;
	char *end;

	errno = 0;
	v = strtol(p, &end, 10);
	if (errno || end == p || *end || v < -1 || v > 100000)
		return -2;
	return (int)v;
}

static const char *const git_services[] = {
	NULL, "git-receive-pack", "git-upload-pack", "git-upload-archive",
};

/* A terminal type: what oneoff_term_valid() could take, or empty. */
static int term_ok(const char *t)
{
	return strlen(t) < 64 &&
	       strspn(t, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
		      "0123456789._+-") == strlen(t);
}

/* 0 .. 9999 in plain digits, or -1. */
static int dim(const char *p)
{
	size_t n = strlen(p);

	int v = 0;

	if (!n || n > 4 || strspn(p, "0123456789") != n ||
	    (p[0] == '0' && n > 1))
		return -1;
	for (; *p; p++)
		v = v * 10 + (*p - '0');
	return v;
}

/* A word of a command: non-empty, no control byte but \t \n \r. */
static int word_ok(const char *w)
{
	const unsigned char *p = (const unsigned char *)w;

	if (!*p)
		return 0;
	for (; *p; p++)
		if ((*p < 0x20 && *p != '\t' && *p != '\n' && *p != '\r') ||
		    *p == 0x7f)
			return 0;
	return 1;
}

int privsep_encode_request(struct buf *out, int git, int svc,
			   const char *app, const char *const *words,
			   size_t nwords, int version, int pty,
			   const char *term, int cols, int rows)
{
	char num[16];
	size_t i, start = out->len;

	if (version < 0 || version > 2 ||
	    (git ? (svc < 1 || svc >= (int)ARRAY_SIZE(git_services) ||
		   !app_name_valid(app)) :
		  (!nwords || nwords > PRIVSEP_WORDS_MAX)))
		return error_set("malformed request");
	buf_addstr(out, git ? "git" : "cmd");
	buf_add(out, "", 1);
	snprintf(num, sizeof(num), "%d", version);
	buf_addstr(out, num);
	buf_add(out, "", 1);
	buf_addstr(out, pty ? "1" : "0");
	buf_add(out, "", 1);
	buf_addstr(out, term_ok(term) ? term : "");
	buf_add(out, "", 1);
	snprintf(num, sizeof(num), "%d", cols >= 0 && cols <= 9999 ? cols : 0);
	buf_addstr(out, num);
	buf_add(out, "", 1);
	snprintf(num, sizeof(num), "%d", rows >= 0 && rows <= 9999 ? rows : 0);
	buf_addstr(out, num);
	if (git) {
		buf_add(out, "", 1);
		buf_addstr(out, git_services[svc]);
		buf_add(out, "", 1);
		buf_addstr(out, app);
	}
	for (i = 0; !git && i < nwords; i++) {
		if (!word_ok(words[i])) {
			out->len = start;
			return error_set("malformed request");
		}
		buf_add(out, "", 1);
		buf_addstr(out, words[i]);
	}
	if (out->len - start > PRIVSEP_MSG_MAX) {
		out->len = start;
		return error_set("command too long");
	}
	return 0;
}

int privsep_parse_request(const char *m, size_t len,
			  struct privsep_request *out)
{
	const char *f[6 + PRIVSEP_WORDS_MAX];
	size_t k = 0, i = 0, j;

	memset(out, 0, sizeof(*out));
	if (len > PRIVSEP_MSG_MAX)
		goto bad;
	while (i <= len) {
		if (k == ARRAY_SIZE(f))
			goto bad;
		f[k++] = m + i;
		i += strlen(m + i) + 1;
	}
	if (k < 7 || i != len + 1 ||
	    (strcmp(f[0], "git") && strcmp(f[0], "cmd")) ||
	    (strcmp(f[1], "0") && strcmp(f[1], "1") && strcmp(f[1], "2")) ||
	    (strcmp(f[2], "0") && strcmp(f[2], "1")) || !term_ok(f[3]))
		goto bad;
	out->version = f[1][0] - '0';
	out->pty = f[2][0] == '1';
	out->term = f[3];
	out->cols = dim(f[4]);
	out->rows = dim(f[5]);
	if (out->cols < 0 || out->cols > 9999 || out->rows < 0 ||
	    out->rows > 9999)
		goto bad;
	if (!strcmp(f[0], "git")) {
		if (k != 8)
			goto bad;
		for (j = 1; j < ARRAY_SIZE(git_services); j++)
			if (!strcmp(f[6], git_services[j]))
				out->svc = (int)j;
		if (!out->svc || !app_name_valid(f[7]))
			goto bad;
		out->git = 1;
		out->app = f[7];
		return 0;
	}
	for (j = 6; j < k; j++) {
		if (!word_ok(f[j]))
			goto bad;
		out->words[out->nwords++] = f[j];
	}
	return 0;
bad:
	memset(out, 0, sizeof(*out));
	return error_set("malformed request from the other half");
}

int privsep_parse_winsize(const char *m, size_t len, int *cols, int *rows)
{
	char w[8], h[8];
	const char *sp = memchr(m, ' ', len);
	size_t wl;

	if (!sp || strlen(m) != len)
		goto bad;
	wl = (size_t)(sp - m);
	if (wl >= sizeof(w) || len - wl - 1 >= sizeof(h))
		goto bad;
	memcpy(w, m, wl);
	w[wl] = '\0';
	memcpy(h, sp + 1, len - wl - 1);
	h[len - wl - 1] = '\0';
	*cols = dim(w);
	*rows = dim(h);
	if (*cols > 0 && *rows > 0)
		return 0;
bad:
	return error_set("malformed window size from the other half");
}

int privsep_parse_key(const char *m, size_t len, struct privsep_key *out)
{
	static const char type_chars[] =
		"abcdefghijklmnopqrstuvwxyz0123456789@.-";
	static const char b64_chars[] =
		"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
		"0123456789+/";
	const char *sp, *b;
	size_t tl, bl, n;

	memset(out, 0, sizeof(*out));
	if (len < 5 || strlen(m) != len || (m[0] != 'V' && m[0] != 'N') ||
	    m[1] != ' ')
		goto bad;
	sp = strchr(m + 2, ' ');
	if (!sp)
		goto bad;
	tl = (size_t)(sp - (m + 2));
	if (!tl || tl >= sizeof(out->type) ||
	    strspn(m + 2, type_chars) != tl)
		goto bad;
	b = sp + 1;
	bl = strlen(b);
	n = strspn(b, b64_chars);
	if (!n || bl > PRIVSEP_KEY_B64_MAX || bl - n > 2 ||
	    strspn(b + n, "=") != bl - n || bl % 4)
		goto bad;
	out->verified = m[0] == 'V';
	memcpy(out->type, m + 2, tl);
	out->type[tl] = '\0';
	out->b64 = b;
	return 0;
bad:
	memset(out, 0, sizeof(*out));
	return error_set("malformed key from the other half");
}

int privsep_user(const char *root, struct appuser *u)
{
	int r = appuser_call(root, appuser_lookup_ssh, u);

	if (r == ERR_NOTFOUND)
		return error_set("no user '%s' (the engine makes it at start)",
				 APPUSER_SSH);
	if (r == 0 && (!u->isolated || u->uid == 0 || u->gid == 0))
		return error_set("user '%s' is not berth's", APPUSER_SSH);
	return r < 0 ? -1 : 0;
}

int privsep_drop(const struct appuser *u, pid_t monitor_pid)
{
	uid_t ru, eu, su;
	gid_t rg, eg, sg;
	int r;

	if (setgroups(0, NULL) < 0 ||
	    setresgid(u->gid, u->gid, u->gid) < 0 ||
	    setresuid(u->uid, u->uid, u->uid) < 0)
		return error_setsys("cannot become '%s'", u->name);
	if (getresuid(&ru, &eu, &su) < 0 || getresgid(&rg, &eg, &sg) < 0 ||
	    ru != u->uid || eu != u->uid || su != u->uid ||
	    rg != u->gid || eg != u->gid || sg != u->gid ||
	    setuid(0) == 0)
		return error_set("still privileged after dropping to '%s'",
				 u->name);
	/* cleared by the uid change: set it now, then check for a race */
	if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0)
		return error_setsys("prctl");
	/* every session's berth-ssh processes share the uid: keep apart */
	r = procguard_install();
	if (r == ERR_NOTFOUND)
		log_warnx("%s", error_last());
	else if (r < 0)
		return -1;
	if (getppid() != monitor_pid)
		return error_set("the session's monitor is gone");
	return 0;
}

struct jailed {
	const struct appuser *u;
	pid_t monitor;
	int (*fn)(void *arg);
	void *arg;
	const char *start_msg;
};

/* In the jail, still root: drop, then the caller's function. */
static int jailed_child(void *arg)
{
	const struct jailed *j = arg;

	if (privsep_drop(j->u, j->monitor) < 0)
		return error_set("%s", j->start_msg);
	return j->fn(j->arg);
}

int privsep_call_jailed(const struct appuser *u, const char *jail,
			int (*fn)(void *arg), void *arg, const char *what,
			const char *start_msg)
{
	struct jailed j = {
		.u = u, .monitor = getpid(), .fn = fn, .arg = arg,
		.start_msg = start_msg,
	};
	struct runner_call call = {
		.fn = jailed_child, .arg = &j,
		.setup_msg = start_msg, .uid = -1, .gid = -1,
		.what = what, .jail = jail, .one_line = 1,
	};

	return runner_call_as(&call);
}
