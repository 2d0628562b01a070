/* Unit tests for deployout.c: records, their meta, the size cap, finding
 * the record of a release, and pruning. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "deployout.h"
#include "tap.h"
#include "banned.h"

static char *make_release(const char *appdir, int n)
{
	char *p = xasprintf("%s/releases/%d", appdir, n);

	mkdir_p(p, 0750);
	return p;
}

int main(void)
{
	char tmpl[] = "/tmp/deployout-unit.XXXXXX";
	char *root = mkdtemp(tmpl), *appdir, *p;
	struct deployout *o = NULL, *o2 = NULL;
	struct deployout_info in;
	struct buf b = BUF_INIT;
	struct stat st;
	int d, i, *nums;
	size_t n;

	if (!root)
		return 1;
	appdir = xasprintf("%s/apps/shop", root);
	mkdir_p(appdir, 0750);
	free(make_release(appdir, 1));

	ok(deployout_find(appdir, 0, &d) == ERR_NOTFOUND,
	   "no record yet: the newest is not found");
	ok(deployout_open(&o, appdir, "push", NULL, 2) == 0 &&
	   deployout_number(o) == 1, "the first record is number 1");
	ok(deployout_find_open(appdir, 1) == o, "it is open");
	p = "-----> Building shop\n       part";
	deployout_add(o, p, strlen(p));
	deployout_add(o, "ial line\n", 9);
	deployout_addf(o, "bell\a and %s", "escape\x1b[2J");
	deployout_set_release(o, 1);
	deployout_set_commit(o, "0123456789abcdef0123456789abcdef01234567");
	ok(deployout_info_read(appdir, 1, &in) == 0 &&
	   !strcmp(in.status, "running") && in.release == 1 &&
	   !strcmp(in.kind, "push"),
	   "meta while it runs: running, release 1, push");
	deployout_set_status(o, "succeeded");
	deployout_unref(o);
	ok(deployout_find_open(appdir, 1) == NULL, "ended: not open");
	ok(deployout_read(appdir, 1, &b) == 0 &&
	   !strcmp(b.data, "-----> Building shop\n       partial line\n"
		   "bell? and escape?[2J\n"),
	   "lines as written, pieces joined, control characters as '?'");
	ok(deployout_info_read(appdir, 1, &in) == 0 &&
	   !strcmp(in.status, "succeeded") &&
	   !strcmp(in.commit, "0123456789abcdef0123456789abcdef01234567"),
	   "meta at the end: succeeded, its commit");
	p = xasprintf("%s/deploys/1", appdir);
	ok(stat(p, &st) == 0 && (st.st_mode & 0777) == 0600, "the file is 0600");
	free(p);
	p = xasprintf("%s/deploys", appdir);
	ok(stat(p, &st) == 0 && (st.st_mode & 0777) == 0700,
	   "the folder is 0700");
	free(p);

	/* a record dropped while running ends failed */
	ok(deployout_open(&o, appdir, "push", NULL, 2) == 0 &&
	   deployout_number(o) == 2, "the next is number 2");
	deployout_ref(o);
	deployout_unref(o);
	ok(deployout_find_open(appdir, 2) == o, "still open with a reference");
	deployout_unref(o);
	ok(deployout_info_read(appdir, 2, &in) == 0 &&
	   !strcmp(in.status, "failed") && in.release == 0,
	   "dropped while running: failed, no release");
	ok(deployout_find(appdir, 0, &d) == 0 && d == 2,
	   "the newest is a failed build's");
	ok(deployout_find(appdir, 1, &d) == 0 && d == 1,
	   "release 1's is the record that made it");

	/* past the cap: a note and the last lines */
	buf_reset(&b);
	ok(deployout_open(&o, appdir, "cli", NULL, 2) == 0, "a loud one");
	deployout_set_release(o, 2);
	for (i = 0; i < 40000; i++)
		deployout_addf(o, "noise line %06d ....................", i);
	deployout_addf(o, "the end");
	deployout_unref(o);
	ok(deployout_read(appdir, 3, &b) == 0 &&
	   b.len <= DEPLOYOUT_MAX + 8192, "kept within the cap: %zu bytes",
	   b.len);
	ok(strstr(b.data, " !     output truncated: ") &&
	   strstr(b.data, "after the first 1024 KiB; the last 50 follow"),
	   "it says the output was truncated");
	ok(b.len > 9 && !strcmp(b.data + b.len - 8, "the end\n") &&
	   strstr(b.data, "noise line 039951") &&
	   !strstr(b.data, "noise line 039950"),
	   "the last lines are kept");
	ok(!!strstr(b.data, "noise line 000000"), "and the first");

	/* a concurrent record gets its own number */
	ok(deployout_open(&o, appdir, "restart", NULL, 2) == 0 &&
	   deployout_open(&o2, appdir, "config", NULL, 2) == 0 &&
	   deployout_number(o) == 4 && deployout_number(o2) == 5,
	   "two open at once: 4 and 5");
	deployout_set_release(o, 1);
	deployout_set_release(o2, 9);
	deployout_unref(o);
	ok(deployout_find(appdir, 1, &d) == 0 && d == 1,
	   "a restart of release 1 is not the record that made it");

	/* pruning, keep 2: records of releases on disk stay, of the
	 * others the newest 2; open ones always */
	deployout_prune(appdir, 2);
	n = deployout_list(appdir, &nums);
	ok(n == 4 && nums[0] == 1 && nums[1] == 3 && nums[2] == 4 &&
	   nums[3] == 5,
	   "kept: 1 (release 1 on disk), 3 and 4 (newest others), 5 (open)");
	free(nums);
	deployout_unref(o2);
	n = deployout_list(appdir, &nums);
	ok(n == 3 && nums[0] == 1 && nums[1] == 4 && nums[2] == 5,
	   "once 5 ends: 1, then the newest two others");
	free(nums);
	p = xasprintf("%s/deploys/3.meta", appdir);
	ok(stat(p, &st) < 0, "a pruned record's meta goes too");
	free(p);

	/* an engine that died left one running */
	p = xasprintf("%s/deploys/7.meta", appdir);
	write_file_atomic(p, "deploy 7\nkind push\nrelease 0\nstatus running\n"
			  "time 2026-11-30T09:00:00Z\ncommit -\n", 79, 0600);
	free(p);
	p = xasprintf("%s/deploys/7", appdir);
	write_file_atomic(p, "-----> Building shop\n", 21, 0600);
	free(p);
	ok(deployout_mark_interrupted(appdir) == 1, "one left running");
	ok(deployout_info_read(appdir, 7, &in) == 0 &&
	   !strcmp(in.status, "interrupted") &&
	   !strcmp(in.time, "2026-11-30T09:00:00Z"),
	   "it is interrupted now, its time as it was");
	buf_reset(&b);
	ok(deployout_read(appdir, 7, &b) == 0 &&
	   !strcmp(b.data, "-----> Building shop\n !     the engine stopped "
		   "before this deploy ended\n"), "and says so");
	ok(deployout_mark_interrupted(appdir) == 0, "once");

	buf_release(&b);
	rm_rf(root);
	free(appdir);
	return tap_done();
}
