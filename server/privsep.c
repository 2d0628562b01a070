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

int privsep_parse_command(const char *m, size_t len,
			  struct privsep_command *out)
{
	const char *f[7];
	size_t k = 0, i = 0;

	while (k < ARRAY_SIZE(f) && i <= len) {
		f[k++] = m + i;
		i += strlen(m + i) + 1;
	}
	if (k != ARRAY_SIZE(f) || i != len + 1 ||
	    (strcmp(f[2], "0") && strcmp(f[2], "1")) ||
	    (strcmp(f[3], "0") && strcmp(f[3], "1")) ||
	    strlen(f[4]) >= 64)
		return error_set("malformed command from the other half");
	out->command = f[0];
	out->git_protocol = f[2][0] == '1' ? f[1] : NULL;
	out->pty = f[3][0] == '1';
	out->term = f[4];
	out->cols = privsep_number(f[5]);
	out->rows = privsep_number(f[6]);
	if (out->cols < 0 || out->cols > 9999 || out->rows < 0 ||
	    out->rows > 9999)
		return error_set("malformed command from the other half");
	return 0;
}

int privsep_user(const char *root, struct appuser *u)
{
	struct appuser_sys sys;
	char *dir = xasprintf("%s/users", root);
	int r = appuser_init(&sys, dir);

	free(dir);
	if (r < 0)
		return -1;
	r = appuser_lookup_ssh(&sys, u);
	appuser_release(&sys);
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
