/*
 * sandbox: a process started through spawn with sandbox_child_setup sees
 * its release at /app, runs as the app's uid with no way back to root,
 * and cannot list berth's state folder, read the SSH host key or another
 * app's config, see other users' processes or signal another app.
 */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <stdint.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "sandbox.h"
#include "spawn.h"
#include "tap.h"
#include "util.h"
#include "banned.h"

#define APP_UID 65534
#define OTHER_UID 65533

static char root[64];

static char *at(const char *rel)
{
	static char bufs[4][256];
	static int next;
	char *b = bufs[next++ % 4];

	snprintf(b, sizeof(bufs[0]), "%s/%s", root, rel);
	return b;
}

static void put(const char *rel, const char *text, mode_t mode, uid_t uid)
{
	if (write_file_atomic(at(rel), text, strlen(text), mode) < 0 ||
	    chown(at(rel), uid, uid) < 0)
		abort();
}

static void mk(const char *rel, mode_t mode, uid_t uid)
{
	if (mkdir_p(at(rel), mode) < 0 || chmod(at(rel), mode) < 0 ||
	    chown(at(rel), uid, uid) < 0)
		abort();
}

/* Run a shell script in the sandbox; its output in out, status back. */
static int run_in(struct sandbox *sb, const char *script, struct buf *out)
{
	char *argv[] = { "/bin/sh", "-c", (char *)(uintptr_t)script, NULL };
	char *env[] = { "PATH=/usr/bin:/bin", "LANG=C", NULL };
	struct spawn s;
	int pfd[2], st = -1;
	char chunk[4096];
	ssize_t n;

	buf_reset(out);
	if (pipe2(pfd, O_CLOEXEC) < 0)
		return -1;
	spawn_init(&s);
	s.argv = argv;
	s.envp = env;
	s.out = pfd[1];
	s.err = pfd[1];
	s.child_setup = sandbox_child_setup;
	s.child_arg = sb;
	if (spawn_start(&s) < 0) {
		close(pfd[0]);
		close(pfd[1]);
		return -1;
	}
	close(pfd[1]);
	while ((n = read(pfd[0], chunk, sizeof(chunk))) > 0)
		buf_add(out, chunk, (size_t)n);
	close(pfd[0]);
	spawn_wait(&s, &st);
	buf_add(out, "", 0);
	return st;
}

/* A build's program: the view only (sandbox_enter_view), then spawn's
 * own drop to the app's user. */
static const char *view_setup(void *sb)
{
	return sandbox_enter_view(sb);
}

static int run_view(struct sandbox *sb, const char *script, struct buf *out)
{
	char *argv[] = { "/bin/sh", "-c", (char *)(uintptr_t)script, NULL };
	char *env[] = { "PATH=/usr/bin:/bin", "LANG=C", NULL };
	struct spawn s;
	int pfd[2], st = -1;
	char chunk[4096];
	ssize_t n;

	buf_reset(out);
	if (pipe2(pfd, O_CLOEXEC) < 0)
		return -1;
	spawn_init(&s);
	s.argv = argv;
	s.envp = env;
	s.out = pfd[1];
	s.err = pfd[1];
	s.child_setup = view_setup;
	s.child_arg = sb;
	s.flags = SPAWN_DROP_PRIV;
	s.uid = APP_UID;
	s.gid = APP_UID;
	if (spawn_start(&s) < 0) {
		close(pfd[0]);
		close(pfd[1]);
		return -1;
	}
	close(pfd[1]);
	while ((n = read(pfd[0], chunk, sizeof(chunk))) > 0)
		buf_add(out, chunk, (size_t)n);
	close(pfd[0]);
	spawn_wait(&s, &st);
	buf_add(out, "", 0);
	return st;
}

/* the value of "key=" on a line of out */
static const char *val(const struct buf *out, const char *key)
{
	static char v[256];
	const char *p = out->data;
	size_t k = strlen(key);

	while (p && *p) {
		if (!strncmp(p, key, k) && p[k] == '=') {
			size_t n = strcspn(p + k + 1, "\n");

			snprintf(v, sizeof(v), "%.*s", (int)n, p + k + 1);
			return v;
		}
		p = strchr(p, '\n');
		if (p)
			p++;
	}
	return "(none)";
}

int main(void)
{
	char tmpl[] = "/run/berth-sandbox-XXXXXX";
	struct sandbox sb;
	struct buf out = BUF_INIT, key = BUF_INIT;
	struct stat st;
	char *script, *owned[3];
	pid_t other;
	int r;

	if (geteuid() != 0) {
		skip("not root: no mount namespaces to make");
		return tap_done();
	}
	if (!mkdtemp(tmpl))
		abort();
	snprintf(root, sizeof(root), "%s", tmpl);
	chmod(root, 0755);
	/* berth's state folder, as the engine lays it out */
	mk("apps/one", 0755, 0);
	put("apps/one/env", "DATABASE_URL=postgres://one:secret@/one\n", 0644, 0);
	mk("apps/two", 0755, 0);
	put("apps/two/env", "DATABASE_URL=postgres://two:secret@/two\n", 0644, 0);
	mk("host", 0700, 0);
	put("host/ssh_host_ed25519_key", "HOSTKEY\n", 0600, 0);
	mk("run/one/1", 0755, APP_UID);
	put("run/one/1/hello.txt", "hello from release 1\n", 0644, APP_UID);
	mk("run/two/1", 0755, OTHER_UID);
	put("run/two/1/secret.txt", "two's code\n", 0644, OTHER_UID);
	mk("postgres/data", 0700, 0);
	mk("postgres/run", 0755, 0);
	put("postgres/run/socket.txt", "the database socket\n", 0644, 0);

	memset(&sb, 0, sizeof(sb));
	owned[0] = xstrdup(at("run/one/1"));
	owned[1] = xstrdup(at("postgres/run"));
	owned[2] = xstrdup(at("postgres/missing"));
	sb.release = owned[0];
	sb.hide[sb.n_hide++] = root;
	sb.show[sb.n_show++] = owned[1];
	sb.show[sb.n_show++] = owned[2];
	sb.uid = APP_UID;
	sb.gid = APP_UID;
	sb.flags = SANDBOX_PRIVATE_TMP | SANDBOX_HIDE_PIDS;
	r = sandbox_prepare(&sb);
	ok(r == 0 && stat("/app", &st) == 0 && S_ISDIR(st.st_mode) &&
	   st.st_uid == 0, "/app is there%s%s", r ? ": " : "",
	   r ? error_last() : "");

	/* another app's process, outside the sandbox */
	other = fork();
	if (other == 0) {
		alarm(60);
		if (setgroups(0, NULL) < 0 ||
		    setresgid(OTHER_UID, OTHER_UID, OTHER_UID) < 0 ||
		    setresuid(OTHER_UID, OTHER_UID, OTHER_UID) < 0)
			_exit(2);
		for (;;)
			pause();
	}

	script = xasprintf(
		"echo uid=$(id -u) gid=$(id -g)\n"
		"echo groups=$(id -G)\n"
		"echo cwd=$(pwd)\n"
		"echo app=$(cat /app/hello.txt)\n"
		"echo root=$(ls -A %s 2>&1 | grep -c 'Permission denied')\n"
		"echo apps=$(ls %s/apps >/dev/null 2>&1 && echo listed || echo refused)\n"
		"echo hostkey=$(cat %s/host/ssh_host_ed25519_key 2>/dev/null || echo refused)\n"
		"echo env=$(cat %s/apps/two/env 2>/dev/null || echo refused)\n"
		"echo other=$(cat %s/run/two/1/secret.txt 2>/dev/null || echo refused)\n"
		"echo shadow=$(cat /etc/shadow 2>/dev/null | wc -c)\n"
		"echo tmp=$(ls -A /tmp | wc -l)\n"
		"echo tmpw=$(touch /tmp/berth-sandbox-probe && echo yes)\n"
		"echo appw=$(touch /app/new && echo yes)\n"
		"echo pid1=$(cat /proc/1/cmdline 2>/dev/null | wc -c)\n"
		"echo kill=$(kill -0 %ld 2>/dev/null && echo sent || echo refused)\n"
		"echo nnp=$(grep NoNewPrivs /proc/self/status | tr -dc 0-9)\n"
		"echo caps=$(awk '/^CapEff/ { print $2 }' /proc/self/status)\n"
		"echo pg=$(cat %s/postgres/run/socket.txt)\n"
		"echo pgls=$(ls %s/postgres 2>&1 | grep -c 'Permission denied')\n"
		"echo pgdata=$(ls %s/postgres/data >/dev/null 2>&1 && echo listed || echo refused)\n",
		root, root, root, root, root, (long)other, root, root, root);
	r = run_in(&sb, script, &out);
	ok(WIFEXITED(r) && WEXITSTATUS(r) == 0, "the script ran in the sandbox");
	{
		const char *p = out.data ? out.data : "";

		while (*p) {
			size_t n = strcspn(p, "\n");

			printf("#   %.*s\n", (int)n, p);
			p += n + (p[n] ? 1 : 0);
		}
	}
	ok(!strcmp(val(&out, "uid"), "65534 gid=65534"),
	   "runs as the app's uid and gid (%s)", val(&out, "uid"));
	ok(!strcmp(val(&out, "groups"), "65534"), "no other groups (%s)",
	   val(&out, "groups"));
	ok(!strcmp(val(&out, "cwd"), "/app"), "starts in /app");
	ok(!strcmp(val(&out, "app"), "hello from release 1"),
	   "sees its release at /app");
	ok(!strcmp(val(&out, "root"), "1"),
	   "berth's state folder cannot be listed");
	ok(!strcmp(val(&out, "apps"), "refused"), "cannot list ROOT/apps");
	ok(!strcmp(val(&out, "hostkey"), "refused"), "cannot read the host key");
	ok(!strcmp(val(&out, "env"), "refused"),
	   "cannot read another app's config");
	ok(!strcmp(val(&out, "other"), "refused"),
	   "cannot read another app's release");
	ok(!strcmp(val(&out, "shadow"), "0"), "cannot read /etc/shadow");
	ok(!strcmp(val(&out, "tmp"), "0") && !strcmp(val(&out, "tmpw"), "yes"),
	   "a private, empty, writable /tmp");
	ok(!strcmp(val(&out, "appw"), "yes"), "/app is writable by the app");
	ok(!strcmp(val(&out, "pid1"), "0"), "other users' processes hidden");
	ok(!strcmp(val(&out, "kill"), "refused"), "cannot signal another app");
	ok(!strcmp(val(&out, "nnp"), "1"), "no_new_privs set");
	ok(!strcmp(val(&out, "pg"), "the database socket"),
	   "the shown folder is reachable at its own path");
	ok(!strcmp(val(&out, "pgls"), "1") &&
	   !strcmp(val(&out, "pgdata"), "refused"),
	   "the folders on its way cannot be listed, nothing beside it is there");
	ok(!strcmp(val(&out, "caps"), "0000000000000000"),
	   "no capabilities (%s)", val(&out, "caps"));
	free(script);

	/* the host is untouched */
	ok(read_file(&key, at("host/ssh_host_ed25519_key"), 100) == 0 &&
	   !strcmp(key.data, "HOSTKEY\n"), "the host still sees berth's folder");
	ok(access("/app/hello.txt", F_OK) < 0 && access("/tmp/berth-sandbox-probe", F_OK) < 0,
	   "no mount leaked to the host");
	ok(access(at("run/one/1/new"), F_OK) == 0,
	   "what the app wrote in /app is in its release folder");

	/* read-only release */
	sb.flags |= SANDBOX_APP_READONLY;
	r = run_in(&sb, "touch /app/ro 2>/dev/null && echo w=yes || echo w=no",
		   &out);
	ok(!strcmp(val(&out, "w"), "no"), "SANDBOX_APP_READONLY: /app read-only");
	sb.flags &= ~(unsigned)SANDBOX_APP_READONLY;

	/* a build's view: its folders shown back with their own modes */
	{
		struct sandbox bv;
		char *bs;

		mk("tmp/build-one", 0755, APP_UID);
		put("tmp/build-one/run.sh", "#!/bin/sh\necho ran\n", 0755,
		    APP_UID);
		mk("tmp/env-one", 0755, APP_UID);
		put("tmp/env-one/SECRET", "s3cret", 0644, APP_UID);
		put("postgres/run/run.sh", "#!/bin/sh\necho ran\n", 0755, 0);
		mk("tmp/work-one/app", 0755, APP_UID);
		memset(&bv, 0, sizeof(bv));
		bv.release = at("tmp/work-one/app");
		bv.hide[bv.n_hide++] = root;
		bv.show[bv.n_show] = at("tmp/build-one");
		bv.show_flags[bv.n_show++] = SANDBOX_SHOW_EXEC;
		bv.show[bv.n_show] = at("tmp/env-one");
		bv.show_flags[bv.n_show++] = SANDBOX_SHOW_READONLY;
		bv.show[bv.n_show++] = owned[1];
		bv.workdir = at("tmp/build-one");
		bv.uid = bv.gid = APP_UID;
		bv.flags = SANDBOX_PRIVATE_TMP | SANDBOX_HIDE_PIDS;
		bs = xasprintf(
			"echo uid=$(id -u)\n"
			"echo cwd=$(pwd)\n"
			"echo exec=$(./run.sh 2>/dev/null || echo refused)\n"
			"echo buildw=$(touch new && echo yes)\n"
			"echo env=$(cat %s/tmp/env-one/SECRET)\n"
			"echo envw=$(touch %s/tmp/env-one/X 2>/dev/null && echo yes || echo refused)\n"
			"echo pgexec=$(%s/postgres/run/run.sh 2>/dev/null || echo refused)\n"
			"echo appw=$(touch /app/x && echo yes)\n"
			"echo apps=$(ls %s/apps >/dev/null 2>&1 && echo listed || echo refused)\n"
			"echo nnp=$(grep NoNewPrivs /proc/self/status | tr -dc 0-9)\n",
			root, root, root, root);
		r = run_view(&bv, bs, &out);
		ok(WIFEXITED(r) && WEXITSTATUS(r) == 0 &&
		   !strcmp(val(&out, "uid"), "65534"),
		   "view only: spawn drops to the app's user (%s)",
		   val(&out, "uid"));
		ok(!strcmp(val(&out, "cwd"), at("tmp/build-one")),
		   "starts in its workdir, shown at its own path");
		ok(!strcmp(val(&out, "exec"), "ran") &&
		   !strcmp(val(&out, "buildw"), "yes"),
		   "SANDBOX_SHOW_EXEC: programs run from it, it is writable");
		ok(!strcmp(val(&out, "env"), "s3cret") &&
		   !strcmp(val(&out, "envw"), "refused"),
		   "SANDBOX_SHOW_READONLY: read, not written");
		ok(!strcmp(val(&out, "pgexec"), "refused"),
		   "a folder shown without flags runs no program");
		ok(!strcmp(val(&out, "appw"), "yes") &&
		   access(at("tmp/work-one/app/x"), F_OK) == 0,
		   "its /app is the folder given");
		ok(!strcmp(val(&out, "apps"), "refused") &&
		   !strcmp(val(&out, "nnp"), "1"),
		   "the state folder hidden, no_new_privs set");
		free(bs);
	}

	/* never root */
	sb.uid = 0;
	ok(sandbox_prepare(&sb) < 0 &&
	   strstr(error_last(), "refusing to run an app as root"),
	   "prepare refuses uid 0");
	r = run_in(&sb, "id -u", &out);
	ok(r == -1 && strstr(error_last(), "refusing uid or gid 0"),
	   "enter refuses uid 0: %s", error_last());
	sb.uid = APP_UID;
	sb.gid = 0;
	r = run_in(&sb, "id -u", &out);
	ok(r == -1, "and gid 0");
	sb.gid = APP_UID;

	/* a missing release */
	sb.release = at("run/one/2");
	ok(sandbox_prepare(&sb) < 0, "prepare: a missing release");
	r = run_in(&sb, "true", &out);
	ok(r == -1 && strstr(error_last(), "binding the release"),
	   "enter: %s", error_last());

	kill(other, SIGKILL);
	waitpid(other, NULL, 0);
	rm_rf(root);
	buf_release(&out);
	buf_release(&key);
	for (r = 0; r < 3; r++)
		free(owned[r]);
	return tap_done();
}
