/* Unit tests: Server::Starter port specs, unix paths, binding, the two
 * hand-off formats, placing sockets in a child; and the envdir reader. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "envdir.h"
#include "listener.h"
#include "tap.h"
#include "util.h"
#include "banned.h"

static void parses(const char *spec, const char *name, int kind,
		   const char *host, int ipv6, int port, int want_fd)
{
	struct listener l;
	int rc;

	listener_init(&l);
	rc = listener_parse_port(&l, spec);
	ok(rc == 0 && !strcmp(l.name, name) && (int)l.kind == kind &&
	   (host ? l.host && !strcmp(l.host, host) : !l.host) &&
	   l.ipv6 == ipv6 && l.port == port && l.want_fd == want_fd,
	   "port '%s' is %s (host '%s', port %d, fd %d)", spec, name,
	   host ? host : "(any)", port, want_fd);
	listener_release(&l);
}

static void refuses(const char *spec)
{
	struct listener l;

	listener_init(&l);
	ok(listener_parse_port(&l, spec) == ERR_INVALID &&
	   strstr(error_last(), "invalid port"),
	   "port '%s' is refused", spec);
	listener_release(&l);
}

static void test_parse(void)
{
	parses("8000", "8000", LISTENER_TCP, NULL, 0, 8000, -1);
	parses(" 8000 ", "8000", LISTENER_TCP, NULL, 0, 8000, -1);
	parses("08000", "08000", LISTENER_TCP, NULL, 0, 8000, -1);
	parses("u53", "53", LISTENER_UDP, NULL, 0, 53, -1);
	parses("8000=5", "8000", LISTENER_TCP, NULL, 0, 8000, 5);
	parses("8000 =0 ", "8000", LISTENER_TCP, NULL, 0, 8000, 0);
	parses("127.0.0.1:8000", "127.0.0.1:8000", LISTENER_TCP, "127.0.0.1",
	       0, 8000, -1);
	parses("localhost:u53=7", "localhost:53", LISTENER_UDP, "localhost", 0,
	       53, 7);
	parses("[::1]:8000", "[::1]:8000", LISTENER_TCP, "::1", 1, 8000, -1);
	parses("::1:8000", "[::1]:8000", LISTENER_TCP, "::1", 1, 8000, -1);
	parses("[::]:80=4", "[::]:80", LISTENER_TCP, "::", 1, 80, 4);
	/* the original's pattern keeps spaces inside the brackets */
	parses("[ ::1 ]:80", "[::1 ]:80", LISTENER_TCP, "::1 ", 1, 80, -1);
	parses(":80", ":80", LISTENER_TCP, "", 0, 80, -1);
	parses("0", "0", LISTENER_TCP, NULL, 0, 0, -1);
	parses("65535", "65535", LISTENER_TCP, NULL, 0, 65535, -1);
	refuses("");
	refuses("abc");
	refuses("80:");
	refuses(":");
	refuses("65536");
	refuses("80=");
	refuses("80=x");
	refuses("8000=99999999999");
	refuses("[::1]x:80");
	refuses("a]b]:80");
	refuses("u");
	refuses("uu80");
	refuses("80 80");
	refuses("8000 = 0");
	refuses("host:80:");
}

static void test_path(void)
{
	struct listener l;
	char longp[200];

	listener_init(&l);
	ok(listener_parse_path(&l, "/run/app.sock") == 0 &&
	   l.kind == LISTENER_UNIX && !strcmp(l.name, "/run/app.sock"),
	   "a unix socket path");
	listener_release(&l);
	memset(longp, 'a', sizeof(longp) - 1);
	longp[sizeof(longp) - 1] = '\0';
	ok(listener_parse_path(&l, longp) == ERR_INVALID,
	   "a path too long for sun_path is refused");
	listener_release(&l);
	ok(listener_parse_path(&l, "") == ERR_INVALID, "an empty path is refused");
	listener_release(&l);
}

static void test_formats(void)
{
	struct listener ls[3];
	struct buf b = BUF_INIT;
	int i;

	for (i = 0; i < 3; i++)
		listener_init(&ls[i]);
	listener_parse_port(&ls[0], "8000");
	listener_parse_port(&ls[1], "127.0.0.1:8001");
	listener_parse_path(&ls[2], "/run/a:b.sock");
	ls[0].fd = 4;
	ls[1].fd = 5;
	ls[2].fd = 9;
	listener_format_server_starter(&b, ls, 3, -1);
	ok(!strcmp(b.data, "8000=4;127.0.0.1:8001=5;/run/a:b.sock=9"),
	   "SERVER_STARTER_PORT names each socket's fd: %s", b.data);
	buf_reset(&b);
	listener_format_server_starter(&b, ls, 3, 3);
	ok(!strcmp(b.data, "8000=3;127.0.0.1:8001=4;/run/a:b.sock=5"),
	   "or the fds they will have from 3 on: %s", b.data);
	buf_reset(&b);
	listener_format_fdnames(&b, ls, 3);
	ok(!strcmp(b.data, "8000:127.0.0.1_8001:/run/a_b.sock"),
	   "LISTEN_FDNAMES has no ':' inside a name: %s", b.data);
	buf_release(&b);
	for (i = 0; i < 3; i++) {
		ls[i].fd = -1;
		listener_release(&ls[i]);
	}
}

static void test_open(const char *dir)
{
	struct listener l, l2;
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	char *path = xasprintf("%s/s.sock", dir), *file = xasprintf("%s/f", dir);
	struct stat st;
	int replaced = -1, fd;

	listener_init(&l);
	listener_parse_port(&l, "127.0.0.1:0");
	ok(listener_open(&l, 16, &replaced) == 0 && l.fd >= 0 &&
	   (fcntl(l.fd, F_GETFD) & FD_CLOEXEC) && replaced == 0 &&
	   getsockname(l.fd, (struct sockaddr *)&ss, &len) == 0,
	   "binds 127.0.0.1, CLOEXEC until asked");
	ok(listener_set_inherit(&l, 1) == 0 &&
	   !(fcntl(l.fd, F_GETFD) & FD_CLOEXEC), "inheritable on request");
	ok(listener_move_to(&l, 40) == 0 && l.fd == 40 &&
	   fcntl(40, F_GETFD) == 0, "moved to fd 40");
	listener_release(&l);

	/* (neither asks a DNS server) */
	listener_init(&l);
	listener_parse_port(&l, "[zz]:80");
	ok(listener_open(&l, 16, &replaced) == LISTENER_ERR_RESOLVE,
	   "IPv6 must be an address: %s", error_last());
	/* the reason alone, for callers that word the error themselves */
	ok(l.resolve_why[0] && strlen(error_last()) > strlen(l.resolve_why) &&
	   !strcmp(error_last() + strlen(error_last()) -
		   strlen(l.resolve_why), l.resolve_why) &&
	   !strstr(l.resolve_why, "zz"),
	   "the resolver's reason alone: '%s'", l.resolve_why);
	listener_release(&l);
	listener_init(&l);
	listener_parse_port(&l, ":80");
	ok(listener_open(&l, 16, &replaced) == LISTENER_ERR_RESOLVE,
	   "an empty host does not resolve: %s", error_last());
	listener_release(&l);

	listener_init(&l);
	listener_parse_path(&l, path);
	ok(listener_open(&l, 16, &replaced) == 0 && replaced == 0 &&
	   stat(path, &st) == 0 && S_ISSOCK(st.st_mode) &&
	   (st.st_mode & 0777) == 0777, "a unix socket, mode 0777");
	listener_init(&l2);
	listener_parse_path(&l2, path);
	ok(listener_open(&l2, 16, &replaced) == 0 && replaced == 1,
	   "an old socket at the path is replaced");
	listener_release(&l2);
	listener_release(&l);

	fd = open(file, O_WRONLY | O_CREAT, 0644);
	close(fd);
	listener_init(&l);
	listener_parse_path(&l, file);
	ok(listener_open(&l, 16, &replaced) == LISTENER_ERR_BIND &&
	   errno == EADDRINUSE && replaced == 0 && stat(file, &st) == 0 &&
	   S_ISREG(st.st_mode), "a regular file at the path is left alone");
	listener_release(&l);
	unlink(file);
	unlink(path);
	free(path);
	free(file);
}

static void test_child_place(void)
{
	char var[LISTENER_PID_VAR_LEN];
	int a[2], b[2], fds[2], status = -1;
	struct stat sa, sb;
	pid_t pid;

	listener_pid_var(var, 1234567);
	ok(!strcmp(var, "LISTEN_PID=1234567"), "LISTEN_PID variable: %s", var);
	listener_pid_var(var, 1);
	ok(!strcmp(var, "LISTEN_PID=1"), "LISTEN_PID variable: %s", var);

	/* the second socket sits where the first must go */
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, a) < 0 ||
	    socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, b) < 0)
		abort();
	dup2(b[0], 30);
	dup2(a[0], 31);
	fds[0] = 31;
	fds[1] = 30;
	fstat(a[0], &sa);
	fstat(b[0], &sb);
	pid = fork();
	if (pid == 0) {
		struct stat s3, s4;

		if (listener_child_place(fds, 2, 30) < 0 ||
		    fstat(30, &s3) < 0 || fstat(31, &s4) < 0)
			_exit(1);
		if (s3.st_ino != sa.st_ino || s4.st_ino != sb.st_ino)
			_exit(2);
		if (fcntl(30, F_GETFD) != 0 || fcntl(31, F_GETFD) != 0)
			_exit(3);
		_exit(0);
	}
	waitpid(pid, &status, 0);
	ok(WIFEXITED(status) && WEXITSTATUS(status) == 0,
	   "sockets placed at 30 and 31 in order, even when they overlap (%d)",
	   status);
	close(30);
	close(31);
	close(a[0]);
	close(a[1]);
	close(b[0]);
	close(b[1]);
}

static void write_file(const char *dir, const char *name, const char *data,
		       size_t len)
{
	char *p = xasprintf("%s/%s", dir, name);
	int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0644);

	if (fd < 0 || write(fd, data, len) != (ssize_t)len)
		abort();
	close(fd);
	free(p);
}

static int warnings;

static void count_warning(void *arg, const char *msg)
{
	warnings++;
}

static void test_envdir(const char *dir)
{
	struct strv env = STRV_INIT;
	char *edir = xasprintf("%s/env", dir), *sub, *big;
	char *value = NULL;

	ok(envdir_value(&value, "a\nb", 3) == 0 && !strcmp(value, "a"),
	   "the first line is the value");
	free(value);
	ok(envdir_value(&value, "", 0) == ERR_NOTFOUND && !value,
	   "an empty file sets nothing");
	ok(envdir_value(&value, "\n", 1) == 0 && !strcmp(value, ""),
	   "a lone newline sets an empty value");
	free(value);
	ok(envdir_value(&value, "x\0y\n", 4) == 0 && !strcmp(value, "x"),
	   "a NUL ends the value");
	free(value);
	ok(envdir_value(&value, "a\r\n", 3) == 0 && !strcmp(value, "a\r"),
	   "only the newline is taken off, as Perl's chomp does");
	free(value);
	ok(envdir_name_valid("FOO") && !envdir_name_valid(".FOO") &&
	   !envdir_name_valid("A=B") && !envdir_name_valid(""),
	   "names: no leading dot, no '='");

	mkdir(edir, 0755);
	write_file(edir, "FOO", "bar\nignored\n", 12);
	write_file(edir, "EMPTY", "", 0);
	write_file(edir, "ALPHA", "1", 1);
	write_file(edir, ".hidden", "x\n", 2);
	sub = xasprintf("%s/DIR", edir);
	mkdir(sub, 0755);
	big = xmalloc(ENVDIR_VALUE_MAX + 10);
	memset(big, 'v', ENVDIR_VALUE_MAX + 10);
	write_file(edir, "BIG", big, ENVDIR_VALUE_MAX + 10);
	ok(envdir_read(&env, edir, count_warning, NULL) == 0 && env.n == 2 &&
	   !strcmp(env.v[0], "ALPHA=1") && !strcmp(env.v[1], "FOO=bar") &&
	   warnings == 1,
	   "a folder: sorted, hidden/empty/folders skipped, an oversized value refused");
	strv_release(&env);
	ok(envdir_read(&env, "/nonexistent/env", NULL, NULL) == 0 && env.n == 0,
	   "a missing folder sets nothing");
	strv_release(&env);
	free(big);
	free(sub);
	free(edir);
}

int main(void)
{
	char tmpl[] = "/tmp/berth-unit-listener.XXXXXX";
	char *dir = mkdtemp(tmpl);

	if (!dir)
		abort();
	test_parse();
	test_path();
	test_formats();
	test_open(dir);
	test_child_place();
	test_envdir(dir);
	rm_rf(dir);
	return tap_done();
}
