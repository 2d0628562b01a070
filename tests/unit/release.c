/* Unit tests for release.c: config changes, env files, pruning. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "release.h"
#include "tap.h"
#include "banned.h"

static char *change(const char *const *from, const char *const *to)
{
	struct strv a = STRV_INIT, b = STRV_INIT;
	struct buf out = BUF_INIT;

	for (; *from; from++)
		strv_push(&a, *from);
	for (; *to; to++)
		strv_push(&b, *to);
	release_config_change(&out, &a, &b);
	strv_release(&a);
	strv_release(&b);
	return out.data ? buf_detach(&out) : xstrdup("");
}

/* A drop hook: moves path to ASIDE/N (N counting up), as the engine
 * moves it into ROOT/tmp for a child to delete. */
struct aside {
	const char *dir;
	int n;
	struct buf names;
};

static void move_aside(void *arg, const char *path)
{
	struct aside *as = arg;
	char *to = xasprintf("%s/%d", as->dir, ++as->n);
	const char *slash = strrchr(path, '/');

	if (rename(path, to) == 0)
		buf_addf(&as->names, "%s%s", as->names.len ? " " : "",
			 slash ? slash + 1 : path);
	free(to);
}

/* A release n with status st (and a bundle) under appdir. */
static void make_release(const char *appdir, int n, const char *st)
{
	struct release_info ri;
	char *dir = release_path(appdir, n, NULL);
	char *bundle = release_path(appdir, n, "bundle.tar.gz");

	memset(&ri, 0, sizeof(ri));
	mkdir_p(dir, 0755);
	write_file_atomic(bundle, "x", 1, 0644);
	release_meta_write(appdir, n, &ri, st);
	free(dir);
	free(bundle);
}

static char *listing(const char *appdir)
{
	int *nums;
	size_t n = release_list(appdir, &nums), i;
	struct buf b = BUF_INIT;

	for (i = 0; i < n; i++)
		buf_addf(&b, "%s%d", i ? " " : "", nums[i]);
	free(nums);
	return b.data ? buf_detach(&b) : xstrdup("");
}

int main(void)
{
	char tmpl[] = "/tmp/berth-unit-release.XXXXXX";
	const char *dir = mkdtemp(tmpl);
	char *s, *path;
	struct strv env = STRV_INIT, back = STRV_INIT;
	int i;

	s = change((const char *[]){ "A=1", "B=2", NULL },
		   (const char *[]){ "A=1", "B=3", "C=4", NULL });
	ok(!strcmp(s, "+B +C"), "a changed and a new value are set: '%s'", s);
	free(s);
	s = change((const char *[]){ "A=1", "B=2", NULL },
		   (const char *[]){ "B=2", NULL });
	ok(!strcmp(s, "-A"), "a removed one: '%s'", s);
	free(s);
	s = change((const char *[]){ "A=1", NULL },
		   (const char *[]){ "A=1", NULL });
	ok(!strcmp(s, ""), "the same config: nothing");
	free(s);
	s = change((const char *[]){ "AB=1", NULL },
		   (const char *[]){ "A=1", NULL });
	ok(!strcmp(s, "+A -AB"), "a key that starts another is another: '%s'", s);
	free(s);

	strv_push(&env, "A=1");
	strv_push(&env, "URL=x=y");
	path = xasprintf("%s/env", dir);
	ok(env_file_write(path, &env) == 0 && env_file_read(path, &back) == 0 &&
	   back.n == 2 && env_equal(&env, &back), "env files read back");
	free(path);
	path = xasprintf("%s/none", dir);
	strv_release(&back);
	ok(env_file_read(path, &back) == 0 && back.n == 0,
	   "a missing env file is an empty config");
	free(path);
	ok(release_env_read(dir, 1, &back) == ERR_NOTFOUND,
	   "a release without env says so");

	/* keep 2: the live one and one more that went live; failed records
	 * newer than the oldest kept, at most 2 of them */
	for (i = 1; i <= 9; i++)
		make_release(dir, i, i == 3 || i == 6 || i == 7 || i == 8 ?
			     "failed" : "deployed");
	release_prune(dir, 2, 5, NULL, NULL);
	s = listing(dir);
	ok(!strcmp(s, "5 7 8 9"), "pruned to the live one, one that went live, the newest failed: '%s'", s);
	free(s);
	make_release(dir, 10, "deploying");
	make_release(dir, 11, "interrupted");
	release_prune(dir, 2, 9, NULL, NULL);
	s = listing(dir);
	ok(!strcmp(s, "5 8 9 10 11"), "a deploying one stays, failed ones are counted: %s", s);
	free(s);
	ok(release_mark_interrupted(dir, 9) == 1, "one left deploying is interrupted");
	s = release_meta_get(dir, 10, "status");
	ok(s && !strcmp(s, "interrupted"), "its status says so");
	free(s);
	s = release_path(dir, 10, "bundle.tar.gz");
	ok(access(s, F_OK) < 0, "its bundle is gone");
	free(s);
	s = release_path(dir, 9, "bundle.tar.gz");
	ok(access(s, F_OK) == 0, "the live one's is not");
	free(s);

	/* with a drop hook: what goes is handed to it, nothing deleted */
	{
		struct aside as = { NULL, 0, BUF_INIT };
		char *aside_dir = xasprintf("%s.aside", dir);

		as.dir = aside_dir;
		mkdir_p(aside_dir, 0755);
		for (i = 12; i <= 14; i++)
			make_release(dir, i, "deployed");
		release_drop_bundle(dir, 11, move_aside, &as);
		release_prune(dir, 2, 14, move_aside, &as);
		s = listing(dir);
		ok(!strcmp(s, "13 14"), "pruned through the hook: %s", s);
		free(s);
		ok(as.names.data &&
		   !strcmp(as.names.data, "bundle.tar.gz 12 9 5 11 10 8"),
		   "the hook got the bundle, then each folder: %s",
		   as.names.data ? as.names.data : "");
		s = xasprintf("%s/2/bundle.tar.gz", aside_dir);
		ok(access(s, F_OK) == 0, "and moved them whole");
		free(s);
		buf_release(&as.names);
		rm_rf(aside_dir);
		free(aside_dir);
	}

	strv_release(&env);
	strv_release(&back);
	rm_rf(dir);
	return tap_done();
}
