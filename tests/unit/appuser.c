/*
 * appuser: names for every app name, and, as root, real users made,
 * found, refused when someone else's, never reused, removed; a program run
 * as one cannot read a root-only file.
 */
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "appuser.h"
#include "runner.h"
#include "spawn.h"
#include "tap.h"
#include "util.h"
#include "banned.h"

static char tag[32];

static char *app(const char *what)
{
	static char bufs[4][80];
	static int next;
	char *b = bufs[next++ % 4];

	snprintf(b, sizeof(bufs[0]), "%s-%s", tag, what);
	return b;
}

static int run(char **argv)
{
	char *env[] = { "PATH=/usr/sbin:/usr/bin:/sbin:/bin", NULL };
	struct buf out = BUF_INIT;
	int r = runner_capture(argv, env, "/", &out, 4096, 60000);

	buf_release(&out);
	return r;
}

static void test_names(void)
{
	char n[APPUSER_NAME_MAX + 1], m[APPUSER_NAME_MAX + 1];
	char long63[64];

	ok(appuser_name(n, sizeof(n), "myapp") == 0 &&
	   !strcmp(n, "berth-myapp"), "plain name (%s)", n);
	ok(appuser_name(n, sizeof(n), "abcdefghijklmnopqrstuvwxy") == 0 &&
	   !strcmp(n, "berth-abcdefghijklmnopqrstuvwxy") && strlen(n) == 31,
	   "25 characters still plain");
	ok(appuser_name(n, sizeof(n), "abcdefghijklmnopqrstuvwxyz") == 0 &&
	   strlen(n) == 31 && !strncmp(n, "berth-abcdefghijklmnop_", 23),
	   "26 characters hashed (%s)", n);
	memset(long63, 'a', 63);
	long63[63] = '\0';
	ok(appuser_name(n, sizeof(n), long63) == 0 && strlen(n) == 31,
	   "63 characters: 31 (%s)", n);
	long63[62] = 'b';
	ok(appuser_name(m, sizeof(m), long63) == 0 && strcmp(n, m),
	   "same start, different names (%s)", m);
	ok(appuser_name(n, sizeof(n), "www") == 0 &&
	   strcmp(n, APPUSER_WWW) && !strncmp(n, "berth-www_", 10),
	   "an app named www is not berth-www (%s)", n);
	ok(appuser_name(n, sizeof(n), "ssh") == 0 && strchr(n, '_'),
	   "nor ssh");
	ok(appuser_name(n, sizeof(n), "../x") == ERR_INVALID &&
	   appuser_name(n, sizeof(n), "") == ERR_INVALID &&
	   appuser_name(n, sizeof(n), "A") == ERR_INVALID &&
	   appuser_name(n, sizeof(n), "a_b") == ERR_INVALID,
	   "bad app names refused");
	ok(appuser_name(n, 8, "myapp") < 0, "small buffer refused");
}

static void test_unprivileged(void)
{
	pid_t pid = fork();
	int st = -1;

	if (pid == 0) {
		struct appuser_sys sys;
		struct appuser u;

		if (geteuid() == 0 &&
		    (setgroups(0, NULL) < 0 || setresgid(65534, 65534, 65534) ||
		     setresuid(65534, 65534, 65534)))
			_exit(2);
		if (appuser_init(&sys, "/nonexistent/x") < 0 || sys.isolated)
			_exit(3);
		if (appuser_ensure(&sys, "myapp", &u) != 0 || u.isolated ||
		    u.uid != geteuid() || u.gid != getegid())
			_exit(4);
		appuser_release(&sys);
		_exit(0);
	}
	waitpid(pid, &st, 0);
	ok(WIFEXITED(st) && WEXITSTATUS(st) == 0,
	   "not root: not isolated, the current user (%d)",
	   WIFEXITED(st) ? WEXITSTATUS(st) : -1);
}

static void test_real(const char *state)
{
	struct appuser_sys sys;
	struct appuser a, a2, b, c, l, w;
	struct passwd *pw;
	char name[APPUSER_NAME_MAX + 1], id[32], uidtext[32];
	char *idargv[] = { "/usr/bin/id", "-u", NULL };
	char *catargv[] = { "/bin/cat", "/etc/shadow", NULL };
	struct spawn s;
	struct buf out = BUF_INIT;
	int r, st, pfd[2];
	char longapp[80];
	pid_t kids[3];
	int i;

	ok(appuser_init(&sys, state) == 0 && sys.isolated, "root: isolated");
	free(sys.www_name);
	sys.www_name = xasprintf("%s-www", tag);

	r = appuser_ensure(&sys, app("one"), &a);
	ok(r == 0 && a.isolated && a.uid >= APPUSER_UID_MIN &&
	   a.uid <= APPUSER_UID_MAX && a.gid == a.uid,
	   "user made for %s: %s %ld%s%s", app("one"), a.name, (long)a.uid,
	   r ? ": " : "", r ? error_last() : "");
	pw = getpwnam(a.name);
	ok(pw && pw->pw_uid == a.uid && !strcmp(pw->pw_dir, "/nonexistent") &&
	   !strcmp(pw->pw_shell, "/usr/sbin/nologin") &&
	   !strncmp(pw->pw_gecos, "berth app ", 10),
	   "no home, no shell, berth's comment");
	ok(getgrgid(a.gid) && !strcmp(getgrgid(a.gid)->gr_name, a.name),
	   "a group of the same name and number");
	ok(appuser_ensure(&sys, app("one"), &a2) == 0 && a2.uid == a.uid,
	   "ensure again: the same user");
	ok(appuser_lookup(&sys, app("one"), &a2) == 0 && a2.uid == a.uid &&
	   !strcmp(a2.name, a.name), "lookup finds it");
	ok(appuser_lookup(&sys, app("none"), &a2) == ERR_NOTFOUND,
	   "lookup of an app without a user");
	ok(appuser_ensure(&sys, app("two"), &b) == 0 && b.uid > a.uid,
	   "a second app, the next number (%ld)", (long)b.uid);

	/* a program run as the app's user */
	spawn_init(&s);
	ok(pipe(pfd) == 0, "pipe");
	s.argv = idargv;
	s.out = pfd[1];
	s.flags = SPAWN_DROP_PRIV;
	s.uid = a.uid;
	s.gid = a.gid;
	ok(spawn_start(&s) == 0, "run id as %s", a.name);
	close(pfd[1]);
	r = (int)read(pfd[0], uidtext, sizeof(uidtext) - 1);
	uidtext[r > 0 ? r : 0] = '\0';
	close(pfd[0]);
	spawn_wait(&s, &st);
	snprintf(id, sizeof(id), "%ld\n", (long)a.uid);
	ok(!strcmp(uidtext, id), "it runs as %.*s",
	   (int)strcspn(uidtext, "\n"), uidtext);
	s.argv = catargv;
	s.out = -1;
	ok(spawn_start(&s) == 0 && spawn_wait(&s, &st) == 0 &&
	   WIFEXITED(st) && WEXITSTATUS(st) != 0,
	   "and cannot read /etc/shadow");

	/* never reused */
	ok(appuser_remove(&sys, app("two")) == 0 && !getpwnam(b.name) &&
	   !getgrnam(b.name), "removed: user and group gone");
	ok(appuser_remove(&sys, app("two")) == ERR_NOTFOUND,
	   "removing again: not found");
	ok(appuser_ensure(&sys, app("three"), &c) == 0 && c.uid > b.uid,
	   "the next app gets a new number (%ld), not %ld", (long)c.uid,
	   (long)b.uid);
	ok(appuser_ensure(&sys, app("two"), &b) == 0 && b.uid > c.uid,
	   "the same app made again gets a new number too");

	/* long names */
	snprintf(longapp, sizeof(longapp), "%s-%s", tag,
		 "a-rather-long-application-name-for-testing");
	r = appuser_ensure(&sys, longapp, &l);
	ok(r == 0 && strlen(l.name) == APPUSER_NAME_MAX && strchr(l.name, '_'),
	   "a long app name: %s%s%s", l.name, r ? ": " : "",
	   r ? error_last() : "");

	/* someone else's user by that name is refused, never adopted */
	appuser_name(name, sizeof(name), app("squat"));
	{
		char *uadd[] = { "/usr/sbin/useradd", "--system",
				 "--no-create-home", "--comment", "squatter",
				 name, NULL };
		char *udel[] = { "/usr/sbin/userdel", name, NULL };

		ok(run(uadd) == 0, "a squatter takes %s", name);
		ok(appuser_ensure(&sys, app("squat"), &a2) == ERR_EXISTS &&
		   strstr(error_last(), "not berth's"),
		   "ensure refuses it: %s", error_last());
		ok(appuser_remove(&sys, app("squat")) == ERR_EXISTS &&
		   getpwnam(name), "remove leaves it alone");
		run(udel);
		run((char *[]){ "/usr/sbin/groupdel", name, NULL });
	}

	/* a group left by a crash between groupadd and useradd */
	appuser_name(name, sizeof(name), app("left"));
	{
		char *gadd[] = { "/usr/sbin/groupadd", "--system", "--gid",
				 id, name, NULL };

		long free_id = APPUSER_UID_MAX;

		while (getgrgid((gid_t)free_id) || getpwuid((uid_t)free_id))
			free_id--;
		snprintf(id, sizeof(id), "%ld", free_id);
		ok(run(gadd) == 0, "a leftover group %s", name);
		r = appuser_ensure(&sys, app("left"), &a2);
		ok(r == 0 && (long)a2.uid != free_id,
		   "ensure clears it and goes on%s%s", r ? ": " : "",
		   r ? error_last() : "");
		appuser_remove(&sys, app("left"));
	}

	/* busy users are not removed */
	{
		pid_t p = fork();
		int gate[2];
		char ch;

		if (pipe(gate) < 0)
			abort();
		if (p == 0)
			_exit(0);
		waitpid(p, NULL, 0);
		p = fork();
		if (p == 0) {
			close(gate[0]);
			if (setgroups(0, NULL) < 0 ||
			    setresgid(c.gid, c.gid, c.gid) < 0 ||
			    setresuid(c.uid, c.uid, c.uid) < 0)
				_exit(2);
			alarm(60);
			if (write(gate[1], "x", 1) < 0)
				_exit(1);
			pause();
			_exit(0);
		}
		close(gate[1]);
		ok(read(gate[0], &ch, 1) == 1, "a process runs as %s", c.name);
		r = appuser_remove(&sys, app("three"));
		ok(r == ERR_BUSY && getpwnam(c.name),
		   "remove refused while it runs: %s", error_last());
		kill(p, SIGKILL);
		waitpid(p, NULL, 0);
		close(gate[0]);
	}

	/* several at once: the state file's lock */
	for (i = 0; i < 3; i++) {
		char what[16];

		snprintf(what, sizeof(what), "par%d", i);
		kids[i] = fork();
		if (kids[i] == 0) {
			struct appuser u;

			_exit(appuser_ensure(&sys, app(what), &u) == 0 ? 0 : 1);
		}
	}
	r = 0;
	for (i = 0; i < 3; i++) {
		waitpid(kids[i], &st, 0);
		if (!WIFEXITED(st) || WEXITSTATUS(st))
			r = 1;
	}
	{
		struct appuser p0, p1, p2;

		ok(r == 0 && appuser_lookup(&sys, app("par0"), &p0) == 0 &&
		   appuser_lookup(&sys, app("par1"), &p1) == 0 &&
		   appuser_lookup(&sys, app("par2"), &p2) == 0 &&
		   p0.uid != p1.uid && p1.uid != p2.uid && p0.uid != p2.uid,
		   "three made at once, three numbers");
	}

	r = appuser_ensure_www(&sys, &w);
	ok(r == 0 && w.isolated && w.uid >= APPUSER_UID_MIN &&
	   !strcmp(w.name, sys.www_name), "the nginx workers' user%s%s",
	   r ? ": " : "", r ? error_last() : "");
	{
		char *udel[] = { "/usr/sbin/userdel", sys.www_name, NULL };

		run(udel);
		run((char *[]){ "/usr/sbin/groupdel", sys.www_name, NULL });
	}

	r = 0;
	r |= appuser_remove(&sys, app("one"));
	r |= appuser_remove(&sys, app("two"));
	r |= appuser_remove(&sys, app("three"));
	r |= appuser_remove(&sys, app("par0"));
	r |= appuser_remove(&sys, app("par1"));
	r |= appuser_remove(&sys, app("par2"));
	r |= appuser_remove(&sys, longapp);
	ok(r == 0 && !getpwnam(a.name) && !getpwnam(l.name),
	   "every test user removed%s%s", r ? ": " : "", r ? error_last() : "");
	buf_release(&out);
	appuser_release(&sys);
}

static char *seen_dir;

static int seen(const struct appuser_sys *sys, struct appuser *u)
{
	(void)u;
	seen_dir = xstrdup(sys->state_dir);
	return ERR_NOTFOUND;
}

/* appuser_call(): ROOT/users set up for fn, fn's answer passed back. */
static void test_call(const char *root)
{
	struct appuser u;
	char *want = xasprintf("%s/users", root);
	int r = appuser_call(root, seen, &u);

	ok(r == ERR_NOTFOUND && seen_dir && !strcmp(seen_dir, want),
	   "appuser_call: fn on ROOT/users, its answer passed back (%d, %s)",
	   r, seen_dir ? seen_dir : "not called");
	free(seen_dir);
	seen_dir = NULL;
	free(want);
}

int main(void)
{
	char tmpl[] = "/tmp/berth-appuser-XXXXXX";
	char *state;

	snprintf(tag, sizeof(tag), "ut%ld", (long)getpid());
	test_names();
	test_unprivileged();
	if (geteuid() != 0) {
		skip("not root: no users to make");
		return tap_done();
	}
	if (!mkdtemp(tmpl))
		abort();
	test_call(tmpl);
	state = xasprintf("%s/users", tmpl);
	test_real(state);
	free(state);
	rm_rf(tmpl);
	return tap_done();
}
