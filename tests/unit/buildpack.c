/* buildpack: specs and .buildpacks files, the cache folder name, and
 * fetching from a local repository made with the stock git: the default
 * branch, a branch, a tag, a commit, a missing ref, a later fetch that
 * sees new commits, the cache standing in when the source is gone, and
 * berth's own state directory refused. */
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "buildpack.h"
#include "runner.h"
#include "spawn.h"
#include "util.h"
#include "tap.h"
#include "banned.h"

static struct buildpack_spec s;

static int spec(const char *text)
{
	buildpack_spec_release(&s);
	return buildpack_spec_parse(&s, text);
}

#define BAD(call, msg, what) do {					\
		int r_ = (call);					\
		ok(r_ < 0 && !strcmp(error_last(), msg),		\
		   "%s: got '%s'", what, r_ < 0 ? error_last() : "success"); \
	} while (0)

static void test_specs(void)
{
	ok(spec("node") == 0 && s.kind == BUILDPACK_NAME &&
	   !strcmp(s.name, "node"), "a name");
	ok(spec("heroku/nodejs") == 0 && s.kind == BUILDPACK_NAME &&
	   !strcmp(s.name, "node") && !strcmp(s.text, "heroku/nodejs"),
	   "heroku/nodejs is the built-in node");
	ok(spec("heroku/python") == 0 && !strcmp(s.name, "python"),
	   "heroku/python is the built-in python");
	ok(spec("heroku/go") == 0 && s.kind == BUILDPACK_URL &&
	   !strcmp(s.url, "https://github.com/heroku/heroku-buildpack-go.git") &&
	   !s.ref, "other heroku/ names are GitHub URLs");
	ok(spec("/opt/packs/go") == 0 && s.kind == BUILDPACK_PATH &&
	   !strcmp(s.name, "/opt/packs/go"), "a path");
	ok(spec("https://example.com/a/bp.git#v1.2") == 0 &&
	   s.kind == BUILDPACK_URL && !strcmp(s.url, "https://example.com/a/bp.git") &&
	   !strcmp(s.ref, "v1.2"), "a URL with a ref");
	ok(spec("file:///srv/bp.git") == 0 && !s.ref, "file:// without a ref");
	ok(spec("ssh://git@example.com/bp.git#feature/x") == 0 &&
	   !strcmp(s.ref, "feature/x"), "ssh:// with a branch path");
	BAD(spec("ftp://x/y"), "buildpack 'ftp://x/y' has an unsupported URL "
	    "(use https://, http://, git://, ssh:// or file://)", "ftp");
	BAD(spec("https://x/y#-upload-pack=evil"), "buildpack "
	    "'https://x/y#-upload-pack=evil' has an invalid ref after '#' (a "
	    "branch, tag or commit)", "option as a ref");
	BAD(spec("https://x/y#a..b"), "buildpack 'https://x/y#a..b' has an "
	    "invalid ref after '#' (a branch, tag or commit)", "dots");
	BAD(spec("https://"), "buildpack 'https://' has no host or path in its "
	    "URL", "empty URL");
	BAD(spec("file://relative/x"), "buildpack 'file://relative/x' needs an "
	    "absolute path after file://", "relative file://");
	BAD(spec("Node"), "buildpack 'Node' is not a name ([a-z0-9-]), an "
	    "absolute path or a git URL", "capitals");
	BAD(spec("../python"), "buildpack '../python' is not a name "
	    "([a-z0-9-]), an absolute path or a git URL", "relative path");
	BAD(spec("/opt/../etc"), "buildpack '/opt/../etc' is a path with '..'",
	    "path with ..");
	BAD(spec("node js"), "buildpack 'node js' has a space or a control "
	    "character", "space");
	BAD(spec(""), "empty buildpack name", "empty");
	buildpack_spec_release(&s);
}

static void test_list(void)
{
	struct strv l = STRV_INIT;
	const char *text = "# mine\n\n  https://example.com/a.git#v1  \r\n"
			   "heroku/nodejs\n/opt/p\n";

	ok(buildpack_list_parse(&l, text, strlen(text), ".buildpacks") == 0 &&
	   l.n == 3 && !strcmp(l.v[0], "https://example.com/a.git#v1") &&
	   !strcmp(l.v[1], "heroku/nodejs"), ".buildpacks: %s", error_last());
	strv_release(&l);
	BAD(buildpack_list_parse(&l, "node\nftp://x\n", 12, ".buildpacks"),
	    ".buildpacks:2: buildpack 'ftp://x' has an unsupported URL (use "
	    "https://, http://, git://, ssh:// or file://)", "bad line");
	strv_release(&l);
	{
		struct buf many = BUF_INIT;
		int i;

		for (i = 0; i < 17; i++)
			buf_addstr(&many, "node\n");
		BAD(buildpack_list_parse(&l, many.data, many.len, ".buildpacks"),
		    ".buildpacks:17: more than 16 buildpacks", "too many");
		buf_release(&many);
	}
	strv_release(&l);
}

static void test_cache_name(void)
{
	char *a = buildpack_cache_name("https://github.com/heroku/heroku-buildpack-nodejs.git");
	char *b = buildpack_cache_name("https://example.com/heroku-buildpack-nodejs.git");
	char *c = buildpack_cache_name("file:///srv/x y/../p");

	ok(!strncmp(a, "heroku-buildpack-nodejs-", 24) && strlen(a) == 40,
	   "readable and hashed: %s", a);
	ok(strcmp(a, b), "different URLs, different folders");
	ok(!strchr(c, '/') && !strchr(c, ' ') && !strchr(c, '.'),
	   "nothing odd in a name: %s", c);
	free(a);
	free(b);
	free(c);
}

static char top[] = "/tmp/berth-buildpack-XXXXXX";

/* git -C dir ARGS...: the output's first line into out (if given). */
static int git(const char *dir, char *out, size_t n, ...)
{
	struct strv argv = STRV_INIT;
	char *envp[] = { "PATH=/usr/bin:/bin", "HOME=/tmp",
			 "GIT_CONFIG_NOSYSTEM=1", "GIT_AUTHOR_NAME=t",
			 "GIT_AUTHOR_EMAIL=t@example.com",
			 "GIT_COMMITTER_NAME=t",
			 "GIT_COMMITTER_EMAIL=t@example.com", NULL };
	struct buf o = BUF_INIT;
	const char *a;
	va_list ap;
	int r;

	strv_push(&argv, "git");
	strv_push(&argv, "-C");
	strv_push(&argv, dir);
	va_start(ap, n);
	while ((a = va_arg(ap, const char *)))
		strv_push(&argv, a);
	va_end(ap);
	r = runner_capture(argv.v, envp, NULL, &o, 4096, 30000);
	if (out) {
		snprintf(out, n, "%.*s", (int)strcspn(o.data ? o.data : "", "\n"),
			 o.data ? o.data : "");
	}
	if (r != 0)
		printf("# git failed: %s\n", o.data ? o.data : error_last());
	buf_release(&o);
	strv_release(&argv);
	return r;
}

static void put(const char *path, const char *text)
{
	if (write_file_atomic(path, text, strlen(text), 0755) < 0)
		abort();
}

static int fetch_into(struct buildpack_fetch *f, const char *url,
		      const char *ref, const char *state, int n)
{
	char *dest = xasprintf("%s/dest%d", top, n);
	int r;

	mkdir(dest, 0755);
	buildpack_fetch_release(f);
	buildpack_fetch_init(f);
	f->url = url;
	f->ref = ref;
	f->cache = xasprintf("%s/cache", top);
	f->dest = dest;
	f->state_root = state;
	r = buildpack_fetch(f);
	free((char *)(uintptr_t)f->cache);
	free(dest);
	return r;
}

static char *file_in(int n, const char *name)
{
	char *p = xasprintf("%s/dest%d/%s", top, n, name);
	struct buf b = BUF_INIT;

	if (read_file(&b, p, 4096) < 0)
		buf_addstr(&b, "(none)");
	free(p);
	return buf_detach(&b);
}

/* Strings of test_fetch, freed together at its end. */
static char *kept[64];
static size_t n_kept;

static char *K(char *p)
{
	if (n_kept == sizeof(kept) / sizeof(kept[0]))
		abort();
	return kept[n_kept++] = p;
}

static void free_kept(void)
{
	while (n_kept)
		free(kept[--n_kept]);
}

static void test_fetch(void)
{
	struct buildpack_fetch f;
	char *work, *bare, *url, *state, *v, *moved;
	char c1[64], c2[64];

	if (!mkdtemp(top))
		abort();
	work = K(xasprintf("%s/work", top));
	bare = K(xasprintf("%s/pack.git", top));
	url = K(xasprintf("file://%s", bare));
	state = K(xasprintf("%s/state", top));
	mkdir(state, 0755);
	mkdir(work, 0755);
	buildpack_fetch_init(&f);
	if (git(work, NULL, 0, "init", "-q", "-b", "main", NULL) != 0)
		return;
	mkdir(K(xasprintf("%s/bin", work)), 0755);
	put(K(xasprintf("%s/bin/compile", work)), "#!/bin/sh\necho v1\n");
	put(K(xasprintf("%s/VERSION", work)), "one\n");
	git(work, NULL, 0, "add", "-A", NULL);
	git(work, NULL, 0, "commit", "-q", "-m", "one", NULL);
	git(work, NULL, 0, "tag", "v1", NULL);
	git(work, c1, sizeof(c1), "rev-parse", "HEAD", NULL);
	git(work, NULL, 0, "checkout", "-q", "-b", "beta", NULL);
	put(K(xasprintf("%s/VERSION", work)), "beta\n");
	git(work, NULL, 0, "commit", "-q", "-am", "beta", NULL);
	git(work, NULL, 0, "checkout", "-q", "main", NULL);
	git(top, NULL, 0, "clone", "-q", "--bare", work, bare, NULL);

	ok(fetch_into(&f, url, NULL, state, 1) == 0 &&
	   !strcmp(f.commit, c1) && !f.stale, "the default branch");
	v = file_in(1, "VERSION");
	ok(!strcmp(v, "one\n"), "its files");
	free(v);
	v = file_in(1, "bin/compile");
	ok(!strcmp(v, "#!/bin/sh\necho v1\n"), "executables too");
	free(v);
	ok(fetch_into(&f, url, "beta", state, 2) == 0, "a branch");
	v = file_in(2, "VERSION");
	ok(!strcmp(v, "beta\n"), "the branch's files");
	free(v);
	ok(fetch_into(&f, url, "v1", state, 3) == 0 && !strcmp(f.commit, c1),
	   "a tag");
	c1[12] = '\0';
	ok(fetch_into(&f, url, c1, state, 4) == 0 &&
	   !strncmp(f.commit, c1, 12), "an abbreviated commit");
	BAD(fetch_into(&f, url, "nope", state, 5),
	    K(xasprintf("cannot fetch '%s': no branch, tag or commit 'nope' "
		      "there", url)), "a missing ref");

	/* a new commit on main is seen by the next build */
	put(K(xasprintf("%s/VERSION", work)), "two\n");
	git(work, NULL, 0, "commit", "-q", "-am", "two", NULL);
	git(work, c2, sizeof(c2), "rev-parse", "HEAD", NULL);
	git(work, NULL, 0, "push", "-q", bare, "main", NULL);
	ok(fetch_into(&f, url, "main", state, 6) == 0 && !strcmp(f.commit, c2),
	   "fetched again: the new commit");

	/* the source is gone: the cache answers, and says why */
	moved = K(xasprintf("%s/moved.git", top));
	rename(bare, moved);
	ok(fetch_into(&f, url, "main", state, 7) == 0 && !strcmp(f.commit, c2) &&
	   f.stale && strstr(f.stale, "failed to resolve path"),
	   "the cached copy when the fetch fails: %s", f.stale ? f.stale : "");
	BAD(fetch_into(&f, url, "v9", state, 8),
	    K(xasprintf("cannot fetch '%s': failed to resolve path '%s': No such "
		      "file or directory", url, bare)), "no cache for this ref");
	rename(moved, bare);

	/* berth's own state directory is not a source */
	{
		char *inside = (xasprintf("%s/state/apps", top));
		char *iurl = (xasprintf("file://%s", inside));
		char *cmd = (xasprintf("%s/state/apps", top));

		mkdir(cmd, 0755);
		BAD(fetch_into(&f, iurl, NULL, state, 9),
		    K(xasprintf("cannot fetch '%s': '%s' is inside berth's state "
			      "directory", iurl, inside)), "the state directory");
		free(inside);
		free(iurl);
		free(cmd);
	}
	buildpack_fetch_release(&f);
	rm_rf(top);
	free_kept();
}

int main(void)
{
	test_specs();
	test_list();
	test_cache_name();
	test_fetch();
	return tap_done();
}
