/*
 * pipeline: output formatting, ENV_DIR, buildpack lookup, checkout, and
 * each built-in buildpack (detect, compile, release) on small apps in a
 * temporary state directory.  Runs from the top of the source tree (as
 * `make test` does), where buildpacks/ lives.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "pipeline.h"
#include "runner.h"
#include "spawn.h"
#include "util.h"
#include "tap.h"
#include "banned.h"

static char root[PATH_MAX];
static char srcpacks[PATH_MAX];
static int napp;

static void put(const char *dir, const char *name, const char *text, int mode)
{
	char *path = xasprintf("%s/%s", dir, name);
	char *slash = strrchr(path, '/');

	*slash = '\0';
	mkdir_p(path, 0755);
	*slash = '/';
	if (write_file_atomic(path, text, strlen(text), (mode_t)mode) < 0)
		printf("# cannot write %s: %s\n", path, error_last());
	free(path);
}

static char *slurp(const char *path)
{
	struct buf b = BUF_INIT;

	if (read_file(&b, path, 1 << 20) < 0) {
		buf_release(&b);
		return xstrdup("");
	}
	return buf_detach(&b);
}

static int contains(const char *path, const char *needle)
{
	char *s = slurp(path);
	int r = strstr(s, needle) != NULL;

	if (!r)
		printf("# '%s' not in %s:\n# %s\n", needle, path, s);
	free(s);
	return r;
}

static int is_regular(const char *path)
{
	struct stat st;

	return lstat(path, &st) == 0 && S_ISREG(st.st_mode);
}

/* A fresh app folder, cache and output file. */
struct fixture {
	char *app, *cache, *envdir, *outpath;
	int out;
};

static void fixture_init(struct fixture *f)
{
	napp++;
	f->app = xasprintf("%s/app%d", root, napp);
	f->cache = xasprintf("%s/cache%d", root, napp);
	f->envdir = xasprintf("%s/env%d", root, napp);
	f->outpath = xasprintf("%s/out%d", root, napp);
	mkdir_p(f->app, 0755);
	mkdir_p(f->cache, 0755);
	mkdir_p(f->envdir, 0755);
	f->out = open(f->outpath, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
}

static void fixture_release(struct fixture *f)
{
	close(f->out);
	free(f->app);
	free(f->cache);
	free(f->envdir);
	free(f->outpath);
}

static char *envv[] = {
	"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
	"STACK=berth", NULL,
};

static int build(struct fixture *f, const char *force, struct pipeline_build *b,
		 long timeout_ms)
{
	pipeline_build_init(b);
	b->root = root;
	b->build_dir = f->app;
	b->cache_dir = f->cache;
	b->env_dir = f->envdir;
	b->env = envv;
	b->force = force;
	b->out = f->out;
	b->deadline = timeout_ms ? now_ms() + timeout_ms : 0;
	return pipeline_buildpack(b);
}

static void test_format(void)
{
	struct buf b = BUF_INIT;

	pipeline_format_line(&b, "-----> Installing", 17);
	pipeline_format_line(&b, "plain text", 10);
	pipeline_format_line(&b, "       already", 14);
	pipeline_format_line(&b, " !     warning", 14);
	pipeline_format_line(&b, "dos\r", 4);
	ok(!strcmp(b.data, "-----> Installing\n       plain text\n"
		   "       already\n !     warning\n       dos\n"),
	   "output lines: headings as is, others indented by 7");
	buf_release(&b);
}

static void test_env_dir(void)
{
	char *dir = xasprintf("%s/envtest", root);
	char *p;
	char *good[] = { "DATABASE_URL=postgres://x/y", "EMPTY=", "MULTI=a=b", NULL };
	char *bad[] = { "../x=1", NULL };

	mkdir_p(dir, 0755);
	ok(pipeline_write_env_dir(dir, good) == 0, "env dir written");
	p = xasprintf("%s/DATABASE_URL", dir);
	ok(contains(p, "postgres://x/y"), "one file per var, value as content");
	free(p);
	p = xasprintf("%s/MULTI", dir);
	{
		char *s = slurp(p);

		ok(!strcmp(s, "a=b"), "value keeps its own '=' and no newline");
		free(s);
	}
	free(p);
	ok(pipeline_write_env_dir(dir, bad) < 0 &&
	   strstr(error_last(), "invalid config var name"),
	   "a bad var name is refused: %s", error_last());
	free(dir);
}

static void test_find(void)
{
	char *d = NULL;
	char *mine;

	ok(pipeline_buildpack_find(&d, root, "python") == 0 && d &&
	   strstr(d, "buildpacks/python"), "built-in python found: %s",
	   d ? d : error_last());
	free(d);
	d = NULL;
	ok(pipeline_buildpack_find(&d, root, "nope") == ERR_NOTFOUND &&
	   !d && strstr(error_last(), "no buildpack named 'nope'"),
	   "unknown name: %s", error_last());
	ok(pipeline_buildpack_find(&d, root, "../python") == ERR_INVALID,
	   "a name with a path is refused: %s", error_last());
	ok(pipeline_buildpack_find(&d, root, "/nonexistent/pack") == ERR_NOTFOUND,
	   "a path without bin/compile is refused: %s", error_last());
	/* ROOT/buildpacks/NAME comes before the built-in of that name. */
	mine = xasprintf("%s/buildpacks/local/static", root);
	put(mine, "bin/compile", "#!/bin/sh\necho mine\n", 0755);
	put(mine, "bin/detect", "#!/bin/sh\nexit 1\n", 0755);
	free(mine);
	ok(pipeline_buildpack_find(&d, root, "local") == ERR_NOTFOUND,
	   "ROOT/buildpacks/local is not a buildpack (no bin/compile)");
	mine = xasprintf("%s/buildpacks/local", root);
	put(mine, "bin/compile", "#!/bin/sh\necho mine\n", 0755);
	ok(pipeline_buildpack_find(&d, root, "local") == 0 && d &&
	   !strcmp(d, mine), "ROOT/buildpacks/NAME found");
	free(d);
	free(mine);
}

static int sh(const char *dir, const char *script)
{
	char *argv[] = { "/bin/sh", "-c", (char *)0, NULL };
	struct buf out = BUF_INIT;
	char *env[] = { "PATH=/usr/bin:/bin", "HOME=/nonexistent",
			"GIT_CONFIG_NOSYSTEM=1", "GIT_AUTHOR_NAME=t",
			"GIT_AUTHOR_EMAIL=t@example.com", "GIT_COMMITTER_NAME=t",
			"GIT_COMMITTER_EMAIL=t@example.com", NULL };
	char *copy = xstrdup(script);
	int r;

	argv[2] = copy;
	r = runner_capture(argv, env, dir, &out, 65536, 30000);
	if (r != 0)
		printf("# sh failed (%d): %s\n# %s\n", r, script, out.data ? out.data : "");
	free(copy);
	buf_release(&out);
	return r;
}

static void test_checkout(void)
{
	char *work = xasprintf("%s/work", root);
	char *bare = xasprintf("%s/bare.git", root);
	char *dest = xasprintf("%s/checkout", root);
	char *p;
	char commit[41] = "";
	struct stat st;
	int r;

	mkdir_p(work, 0755);
	mkdir_p(dest, 0755);
	r = sh(work, "git init -q -b main . && mkdir -p sub .berth/hooks && "
	       "echo hello >sub/file.txt && printf '#!/bin/sh\\n' >.berth/hooks/pre-build && "
	       "chmod +x .berth/hooks/pre-build && git add -A && "
	       "git commit -q -m one && git init -q --bare ../bare.git && "
	       "git push -q ../bare.git main && git rev-parse HEAD >../commit");
	ok(r == 0, "a bare repository with one commit");
	p = xasprintf("%s/commit", root);
	{
		char *s = slurp(p);

		snprintf(commit, sizeof(commit), "%.40s", s);
		free(s);
	}
	free(p);
	error_clear();
	ok(pipeline_checkout(bare, commit, dest) == 0, "checkout %s",
	   error_last());
	p = xasprintf("%s/sub/file.txt", dest);
	ok(contains(p, "hello"), "files are checked out");
	free(p);
	p = xasprintf("%s/.berth/hooks/pre-build", dest);
	ok(stat(p, &st) == 0 && (st.st_mode & 0100), "the executable bit is kept");
	free(p);
	p = xasprintf("%s/.git", dest);
	ok(!path_exists(p), "no .git in the build folder");
	free(p);
	ok(pipeline_checkout(bare, "0123456789012345678901234567890123456789",
			     dest) < 0 && strstr(error_last(), "no commit"),
	   "unknown commit: %s", error_last());
	ok(pipeline_checkout(bare, "HEAD", dest) < 0 &&
	   strstr(error_last(), "invalid commit id 'HEAD'"),
	   "only full hex ids: %s", error_last());
	free(work);
	free(bare);
	free(dest);
}

static void test_procfile_pack(void)
{
	struct fixture f;
	struct pipeline_build b;
	char *p;

	fixture_init(&f);
	put(f.app, "Procfile", "web: ./serve\n", 0644);
	put(f.app, "index.html", "<p>hi</p>\n", 0644);
	ok(build(&f, NULL, &b, 0) == 0 && b.pack && !strcmp(b.pack, "procfile") &&
	   !strcmp(b.detected, "Procfile"),
	   "a Procfile app picks procfile, not static: %s",
	   b.pack ? b.pack : error_last());
	ok(contains(f.outpath, "-----> Procfile app detected\n"),
	   "the user sees the detected name");
	ok(contains(f.outpath, "       Nothing to build\n"),
	   "compile output is indented");
	p = xasprintf("%s/Procfile", f.app);
	{
		char *s = slurp(p);

		ok(!strcmp(s, "web: ./serve\n"), "the Procfile is untouched");
		free(s);
	}
	free(p);
	pipeline_build_release(&b);
	fixture_release(&f);
}

static void test_static_pack(void)
{
	struct fixture f;
	struct pipeline_build b;
	char *p;

	fixture_init(&f);
	put(f.app, "index.html", "<p>hi</p>\n", 0644);
	ok(build(&f, NULL, &b, 0) == 0 && b.pack && !strcmp(b.pack, "static"),
	   "index.html alone: static: %s", b.pack ? b.pack : error_last());
	p = xasprintf("%s/app.yaml", f.app);
	ok(contains(p, "static: .\n"), "app.yaml serves the root");
	free(p);
	pipeline_build_release(&b);
	fixture_release(&f);

	fixture_init(&f);
	put(f.app, "public/index.html", "<p>hi</p>\n", 0644);
	put(f.app, "app.yaml", "hosts: [www.example.com]", 0644);
	ok(build(&f, NULL, &b, 0) == 0 && b.pack && !strcmp(b.pack, "static"),
	   "public/index.html: static: %s", b.pack ? b.pack : error_last());
	p = xasprintf("%s/app.yaml", f.app);
	{
		char *s = slurp(p);

		ok(!strcmp(s, "hosts: [www.example.com]\nstatic: public\n"),
		   "app.yaml keeps its keys and gains 'static: public': %s", s);
		free(s);
	}
	free(p);
	pipeline_build_release(&b);
	fixture_release(&f);
}

static void test_make_pack(void)
{
	struct fixture f;
	struct pipeline_build b;
	char *p;

	fixture_init(&f);
	put(f.app, "Makefile", "all:\n\techo built >out.txt\n", 0644);
	put(f.app, "Procfile", "web: cat out.txt\n", 0644);
	ok(build(&f, NULL, &b, 0) == 0 && b.pack && !strcmp(b.pack, "make"),
	   "a Makefile: make: %s", b.pack ? b.pack : error_last());
	p = xasprintf("%s/out.txt", f.app);
	ok(contains(p, "built"), "make ran in the build folder");
	free(p);
	pipeline_build_release(&b);
	fixture_release(&f);

	fixture_init(&f);
	put(f.app, "Makefile", "all:\n\t@echo compiling; echo 'error: boom' >&2; exit 3\n", 0644);
	ok(build(&f, NULL, &b, 0) < 0 &&
	   strstr(error_last(), "bin/compile exited with status"),
	   "a failing make fails the step: %s", error_last());
	ok(contains(f.outpath, "       compiling\n") &&
	   contains(f.outpath, "       error: boom\n"),
	   "the user sees the failing build's output");
	ok(b.pack == NULL, "no buildpack reported on failure");
	pipeline_build_release(&b);
	fixture_release(&f);
}

/* Builds hello-1.0-py3-none-any.whl in the current folder. */
#define WHEEL_SCRIPT \
	"python3 - <<'PY'\n" \
	"import base64, hashlib, zipfile\n" \
	"files = {\n" \
	"  'hello.py': 'def main():\\n    print(\"hello from a wheel\")\\n',\n" \
	"  'hello-1.0.dist-info/METADATA': 'Metadata-Version: 2.1\\nName: hello\\nVersion: 1.0\\n',\n" \
	"  'hello-1.0.dist-info/WHEEL': 'Wheel-Version: 1.0\\nGenerator: test\\nRoot-Is-Purelib: true\\nTag: py3-none-any\\n',\n" \
	"  'hello-1.0.dist-info/entry_points.txt': '[console_scripts]\\nhello = hello:main\\n',\n" \
	"}\n" \
	"rec = []\n" \
	"with zipfile.ZipFile('hello-1.0-py3-none-any.whl', 'w') as z:\n" \
	"    for name, text in files.items():\n" \
	"        data = text.encode()\n" \
	"        z.writestr(name, data)\n" \
	"        h = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b'=').decode()\n" \
	"        rec.append('%s,sha256=%s,%d' % (name, h, len(data)))\n" \
	"    rec.append('hello-1.0.dist-info/RECORD,,')\n" \
	"    z.writestr('hello-1.0.dist-info/RECORD', '\\n'.join(rec) + '\\n')\n" \
	"PY\n"

static void test_python_pack(void)
{
	struct fixture f;
	struct pipeline_build b;
	char *p;

	fixture_init(&f);
	put(f.app, "requirements.txt", "# nothing yet\n\n", 0644);
	put(f.app, "Procfile", "web: python3 -m http.server $PORT\n", 0644);
	ok(build(&f, NULL, &b, 0) == 0 && b.pack && !strcmp(b.pack, "python"),
	   "requirements.txt with only comments: python: %s",
	   b.pack ? b.pack : error_last());
	ok(contains(f.outpath, "-----> Python app detected") &&
	   contains(f.outpath, "No requirements to install"),
	   "no pip call for empty requirements");
	p = xasprintf("%s/.venv", f.app);
	ok(!path_exists(p), "and no virtualenv: the host's python3 runs it");
	free(p);
	p = xasprintf("%s/.profile.d/python.sh", f.app);
	ok(contains(p, "$HOME/.venv/bin"), ".profile.d puts .venv/bin on PATH");
	free(p);
	p = xasprintf("%s/Procfile", f.app);
	{
		char *s = slurp(p);

		ok(!strcmp(s, "web: python3 -m http.server $PORT\n"),
		   "the app's Procfile wins: %s", s);
		free(s);
	}
	free(p);
	pipeline_build_release(&b);
	fixture_release(&f);

	/* pip from a local wheel (no index in tests), then the app run
	 * from another folder, as a release is. */
	fixture_init(&f);
	put(f.app, "requirements.txt", "--no-index\n./hello-1.0-py3-none-any.whl\n", 0644);
	put(f.app, "Procfile", "web: hello\n", 0644);
	ok(sh(f.app, WHEEL_SCRIPT) == 0, "a local wheel with a console script");
	ok(build(&f, NULL, &b, 120000) == 0 && b.pack && !strcmp(b.pack, "python"),
	   "requirements installed with pip: %s", b.pack ? b.pack : error_last());
	ok(contains(f.outpath, "-----> Installing with pip install -r requirements.txt"),
	   "the user sees the pip step");
	p = xasprintf("%s/.venv/bin/python3", f.app);
	ok(is_regular(p), "the virtualenv holds its own python (no symlink out)");
	free(p);
	p = xasprintf("%s/.venv/bin/hello", f.app);
	ok(contains(p, "#!/usr/bin/env python3\n"),
	   "console scripts no longer name the build folder");
	free(p);
	{
		char *moved = xasprintf("%s-moved", f.app);
		char *cmd = xasprintf("cd '%s' && HOME='%s' && . ./.profile.d/python.sh && "
				      "hello >ran.txt", moved, moved);
		char *ran = xasprintf("%s/ran.txt", moved);

		ok(rename(f.app, moved) == 0 && sh(moved, cmd) == 0 &&
		   contains(ran, "hello from a wheel"),
		   "the app's console script runs from another folder");
		rename(moved, f.app);
		free(ran);
		free(cmd);
		free(moved);
	}
	pipeline_build_release(&b);
	fixture_release(&f);

	fixture_init(&f);
	put(f.app, "requirements.txt", "", 0644);
	put(f.app, "app.py", "print('hi')\n", 0644);
	ok(build(&f, NULL, &b, 0) == 0 && b.pack && !strcmp(b.pack, "python"),
	   "empty requirements.txt and app.py: %s", b.pack ? b.pack : error_last());
	p = xasprintf("%s/Procfile", f.app);
	ok(contains(p, "web: python3 app.py\n"),
	   "default web process written to the Procfile");
	free(p);
	pipeline_build_release(&b);
	fixture_release(&f);
}

static void test_node_pack(void)
{
	struct fixture f;
	struct pipeline_build b;
	char *p, *node = spawn_which("node");

	if (!node) {
		ok(1, "# SKIP node is not installed");
		return;
	}
	free(node);
	fixture_init(&f);
	put(f.app, "package.json",
	    "{\"name\":\"t\",\"version\":\"1.0.0\",\"scripts\":{\"start\":\"node index.js\"}}\n",
	    0644);
	put(f.app, "requirements.txt", "", 0644);
	ok(build(&f, NULL, &b, 0) == 0 && b.pack && !strcmp(b.pack, "node"),
	   "package.json wins over requirements.txt: %s",
	   b.pack ? b.pack : error_last());
	ok(contains(f.outpath, "No dependencies to install"),
	   "no npm call without dependencies");
	p = xasprintf("%s/Procfile", f.app);
	ok(contains(p, "web: npm start\n"), "default web is npm start");
	free(p);
	pipeline_build_release(&b);
	fixture_release(&f);
}

/* A buildpack written to the Heroku API by someone else, forced by path. */
static void test_custom_pack(void)
{
	struct fixture f;
	struct pipeline_build b;
	char *pack = xasprintf("%s/testpack", root);
	char *p;
	char *force_env[] = { "FOO=from env dir", NULL };

	put(pack, "bin/detect", "#!/bin/sh\necho 'Test Pack'\n", 0755);
	put(pack, "bin/compile",
	    "#!/bin/sh\nset -e\n"
	    "n=$(cat \"$2/count\" 2>/dev/null || echo 0); n=$((n+1)); echo $n >\"$2/count\"\n"
	    "echo \"-----> Compiling (build $n)\"\n"
	    "cp \"$3/FOO\" \"$1/foo.txt\"\n"
	    "echo \"FOO in env: ${FOO:-unset}\"\n", 0755);
	put(pack, "bin/release",
	    "#!/bin/sh\ncat <<EOF\n---\naddons: []\ndefault_process_types:\n"
	    "  web: ./run-web\n  worker: ./run-worker\nEOF\n", 0755);
	fixture_init(&f);
	pipeline_write_env_dir(f.envdir, force_env);
	put(f.app, "Procfile", "web: ./mine # inline comment\n", 0644);
	ok(build(&f, pack, &b, 0) == 0 && b.pack && !strcmp(b.pack, pack) &&
	   !strcmp(b.detected, "Test Pack"), "forced by path: %s",
	   b.pack ? b.pack : error_last());
	ok(contains(f.outpath, "-----> Test Pack app detected\n") &&
	   contains(f.outpath, "-----> Compiling (build 1)\n"),
	   "heading lines are shown as they are");
	ok(contains(f.outpath, "       FOO in env: unset\n"),
	   "config vars reach compile only through ENV_DIR");
	p = xasprintf("%s/foo.txt", f.app);
	ok(contains(p, "from env dir"), "ENV_DIR holds the config var");
	free(p);
	p = xasprintf("%s/Procfile", f.app);
	{
		char *s = slurp(p);

		ok(strstr(s, "web: ./mine # inline comment\n") &&
		   !strstr(s, "run-web") && strstr(s, "worker: ./run-worker\n"),
		   "Procfile types win, missing ones come from release: %s", s);
		free(s);
	}
	free(p);
	pipeline_build_release(&b);
	/* Same cache again: the count goes up. */
	ok(build(&f, pack, &b, 0) == 0 &&
	   contains(f.outpath, "-----> Compiling (build 2)\n"),
	   "the cache survives between builds");
	pipeline_build_release(&b);
	fixture_release(&f);

	/* A forced pack whose detect says no. */
	put(pack, "bin/detect", "#!/bin/sh\nexit 1\n", 0755);
	fixture_init(&f);
	ok(build(&f, pack, &b, 0) < 0 && strstr(error_last(), "does not apply"),
	   "forced pack that does not apply: %s", error_last());
	fixture_release(&f);
	free(pack);
}

static void test_timeout(void)
{
	struct fixture f;
	struct pipeline_build b;
	char *pack = xasprintf("%s/slowpack", root);
	char *pidfile;
	char *s;
	int64_t t0;
	long pid;

	fixture_init(&f);
	pidfile = xasprintf("%s/bg.pid", f.app);
	put(pack, "bin/detect", "#!/bin/sh\necho Slow\n", 0755);
	put(pack, "bin/compile",
	    "#!/bin/sh\nsleep 60 &\necho $! >\"$1/bg.pid\"\necho started\nsleep 60\n",
	    0755);
	t0 = now_ms();
	ok(build(&f, pack, &b, 700) < 0 && strstr(error_last(), "timed out"),
	   "the build's time limit: %s", error_last());
	ok(now_ms() - t0 < 5000, "stopped at the limit, not at the end");
	s = slurp(pidfile);
	pid = strtol(s, NULL, 10);
	free(s);
	{
		/* Killed, then reaped by init: poll a little for that. */
		int gone = 0, i;

		for (i = 0; i < 50 && pid > 0 && !gone; i++) {
			char *stat = xasprintf("/proc/%ld/stat", pid);
			char *st = slurp(stat);
			char *rp = strrchr(st, ')');

			gone = !*st || (rp && rp[1] == ' ' && rp[2] == 'Z');
			free(st);
			free(stat);
			if (!gone)
				usleep(100000);
		}
		ok(pid > 0 && gone, "the whole process group is killed");
	}
	ok(contains(f.outpath, "       started\n"), "output before the limit is shown");
	pipeline_build_release(&b);
	fixture_release(&f);
	free(pidfile);

	/* A compile that leaves a daemon behind does not hold the build. */
	fixture_init(&f);
	put(pack, "bin/compile",
	    "#!/bin/sh\n(sleep 60; echo late) &\necho done\n", 0755);
	t0 = now_ms();
	ok(build(&f, pack, &b, 20000) == 0 && now_ms() - t0 < 5000,
	   "leftover processes are cleaned up when compile exits: %s",
	   b.pack ? "ok" : error_last());
	pipeline_build_release(&b);
	fixture_release(&f);
	free(pack);
}

static void test_nothing_detected(void)
{
	struct fixture f;
	struct pipeline_build b;

	fixture_init(&f);
	put(f.app, "README", "nothing here\n", 0644);
	ok(build(&f, NULL, &b, 0) < 0 &&
	   strstr(error_last(), "no buildpack applies"),
	   "nothing to run: %s", error_last());
	ok(build(&f, "no-such-pack", &b, 0) == ERR_NOTFOUND ||
	   strstr(error_last(), "no buildpack named 'no-such-pack'"),
	   "unknown forced name: %s", error_last());
	fixture_release(&f);
}

int main(void)
{
	char tmpl[] = "/tmp/berth-unit-pipeline.XXXXXX";
	char *link;

	if (!mkdtemp(tmpl) || !realpath(tmpl, root) ||
	    !realpath("buildpacks", srcpacks)) {
		printf("Bail out! run me from the top of the source tree\n");
		return 1;
	}
	/* The unit binary does not live next to the buildpacks: install
	 * them the way an operator can, under ROOT/buildpacks. */
	link = xasprintf("%s/buildpacks", root);
	mkdir_p(link, 0755);
	free(link);
	{
		const char *const *n;

		for (n = pipeline_builtin_buildpacks; *n; n++) {
			char *from = xasprintf("%s/%s", srcpacks, *n);
			char *to = xasprintf("%s/buildpacks/%s", root, *n);

			if (symlink(from, to) < 0)
				printf("# symlink %s: %s\n", to, strerror(errno));
			free(from);
			free(to);
		}
	}
	test_format();
	test_env_dir();
	test_find();
	test_checkout();
	test_procfile_pack();
	test_static_pack();
	test_make_pack();
	test_python_pack();
	test_node_pack();
	test_custom_pack();
	test_timeout();
	test_nothing_detected();
	rm_rf(root);
	return tap_done();
}
