/* release: see release.h. */
#include "release.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include "banned.h"

#define META_MAX (1 << 16)

char *release_path(const char *appdir, int n, const char *file)
{
	if (file)
		return xasprintf("%s/releases/%d/%s", appdir, n, file);
	return xasprintf("%s/releases/%d", appdir, n);
}

size_t release_list(const char *appdir, int **out)
{
	char *dir = xasprintf("%s/releases", appdir);
	size_t n = dir_numbers(dir, out);

	free(dir);
	return n;
}

static int meta_save(const char *appdir, int n, const struct buf *b)
{
	char *path = release_path(appdir, n, "meta");
	int ret = write_file_atomic(path, b->data ? b->data : "", b->len, 0640);

	free(path);
	return ret;
}

int release_meta_write(const char *appdir, int n,
		       const struct release_info *ri, const char *status)
{
	struct buf b = BUF_INIT;
	char stamp[32];
	size_t i;
	int ret;

	time_iso(stamp, sizeof(stamp), time(NULL));
	buf_addf(&b, "number %d\ntime %s\nsource %s\n", n, stamp,
		 ri->source ? ri->source : "cli");
	if (ri->commit)
		buf_addf(&b, "commit %s\n", ri->commit);
	if (ri->pusher)
		buf_addf(&b, "pusher %s\n", ri->pusher);
	if (ri->buildpack)
		buf_addf(&b, "buildpack %s\n", ri->buildpack);
	if (ri->from)
		buf_addf(&b, "from %d\n", ri->from);
	if (ri->config && *ri->config)
		buf_addf(&b, "config %s\n", ri->config);
	if (ri->types) {
		buf_addstr(&b, "processes");
		for (i = 0; ri->types[i]; i++)
			buf_addf(&b, " %s", ri->types[i]);
		buf_addstr(&b, "\n");
	}
	buf_addf(&b, "status %s\n", status);
	ret = meta_save(appdir, n, &b);
	buf_release(&b);
	return ret;
}

int release_set_status(const char *appdir, int n, const char *status)
{
	char *path = release_path(appdir, n, "meta");
	struct buf old = BUF_INIT, b = BUF_INIT;
	char *line, *save = NULL;
	int ret;

	if (read_file(&old, path, META_MAX) == 0)
		for (save = old.data, line = str_token(&save, "\n"); line;
		     line = str_token(&save, "\n"))
			if (strncmp(line, "status ", 7))
				buf_addf(&b, "%s\n", line);
	buf_addf(&b, "status %s\n", status);
	ret = meta_save(appdir, n, &b);
	buf_release(&old);
	buf_release(&b);
	free(path);
	return ret;
}

char *release_meta_get(const char *appdir, int n, const char *key)
{
	char *path = release_path(appdir, n, "meta");
	struct buf b = BUF_INIT;
	char *line, *save = NULL, *val = NULL;
	size_t k = strlen(key);

	if (read_file(&b, path, META_MAX) == 0)
		for (save = b.data, line = str_token(&save, "\n"); line;
		     line = str_token(&save, "\n"))
			if (!strncmp(line, key, k) && line[k] == ' ') {
				free(val);
				val = xstrdup(line + k + 1);
			}
	buf_release(&b);
	free(path);
	return val;
}

int release_went_live(const char *appdir, int n)
{
	char *st = release_meta_get(appdir, n, "status");
	/* "retired" was written by no berth, but costs nothing to honour */
	int ok = st && (!strcmp(st, "deployed") || !strcmp(st, "retired"));

	free(st);
	return ok;
}

int env_file_read(const char *path, struct strv *env)
{
	struct buf b = BUF_INIT;
	char *line, *save = NULL;

	if (!path_exists(path))
		return 0;
	if (read_file(&b, path, RELEASE_ENV_MAX) < 0)
		return -1;
	if (b.len)
		for (save = b.data, line = str_token(&save, "\n"); line;
		     line = str_token(&save, "\n"))
			if (strchr(line, '='))
				strv_push(env, line);
	buf_release(&b);
	return 0;
}

int env_file_write(const char *path, const struct strv *env)
{
	struct buf b = BUF_INIT;
	size_t i;
	int ret;

	for (i = 0; i < env->n; i++)
		buf_addf(&b, "%s\n", env->v[i]);
	ret = write_file_atomic(path, b.data ? b.data : "", b.len, 0600);
	buf_release(&b);
	return ret;
}

int release_env_read(const char *appdir, int n, struct strv *env)
{
	char *path = release_path(appdir, n, "env");
	int ret;

	ret = path_exists(path) ? env_file_read(path, env) : ERR_NOTFOUND;
	free(path);
	return ret;
}

int release_env_write(const char *appdir, int n, const struct strv *env)
{
	char *path = release_path(appdir, n, "env");
	int ret = env_file_write(path, env);

	free(path);
	return ret;
}

/* The value of KEY=... in env for the entry "KEY=VALUE" e, or NULL. */
static const char *env_value_of(const struct strv *env, const char *e)
{
	size_t k = strcspn(e, "="), i;

	for (i = 0; i < env->n; i++)
		if (!strncmp(env->v[i], e, k) && env->v[i][k] == '=')
			return env->v[i] + k + 1;
	return NULL;
}

void release_config_change(struct buf *out, const struct strv *from,
			   const struct strv *to)
{
	size_t i, start = out->len;

	for (i = 0; i < to->n; i++) {
		const char *was = env_value_of(from, to->v[i]);
		const char *now = strchr(to->v[i], '=') + 1;

		if (!was || strcmp(was, now))
			buf_addf(out, "%s+%.*s", out->len > start ? " " : "",
				 (int)(now - 1 - to->v[i]), to->v[i]);
	}
	for (i = 0; i < from->n; i++)
		if (!env_value_of(to, from->v[i]))
			buf_addf(out, "%s-%.*s", out->len > start ? " " : "",
				 (int)strcspn(from->v[i], "="), from->v[i]);
}

int env_equal(const struct strv *a, const struct strv *b)
{
	struct buf d = BUF_INIT;
	int same;

	release_config_change(&d, a, b);
	same = d.len == 0;
	buf_release(&d);
	return same;
}

static void drop_path(const char *path, release_drop_fn drop, void *arg)
{
	if (drop)
		drop(arg, path);
	else
		rm_rf(path);	/* what stays is pruned again next time */
}

void release_drop_bundle(const char *appdir, int n, release_drop_fn drop,
			 void *arg)
{
	char *path = release_path(appdir, n, "bundle.tar.gz");

	drop_path(path, drop, arg);
	free(path);
}

int release_mark_interrupted(const char *appdir, int live)
{
	int *nums;
	size_t n = release_list(appdir, &nums), i;
	int marked = 0;

	for (i = 0; i < n; i++) {
		char *st;

		if (nums[i] == live)
			continue;
		st = release_meta_get(appdir, nums[i], "status");
		if (!st || !strcmp(st, "deploying")) {
			release_drop_bundle(appdir, nums[i], NULL, NULL);
			release_set_status(appdir, nums[i], "interrupted");
			marked++;
		}
		free(st);
	}
	free(nums);
	return marked;
}

static void prune_one(const char *appdir, int *num, release_drop_fn drop,
		      void *arg)
{
	char *dir = release_path(appdir, *num, NULL);

	drop_path(dir, drop, arg);
	free(dir);
	*num = 0;
}

void release_prune(const char *appdir, int keep, int live,
		   release_drop_fn drop, void *arg)
{
	int *nums, oldest_kept = 0;
	size_t n = release_list(appdir, &nums), i;
	int others = 0, failed = 0;

	if (keep < 1)
		keep = 1;
	/* Newest first: the live one, then keep-1 more that went live. */
	for (i = n; i-- > 0;) {
		char *st;
		int lived;

		if (nums[i] == live) {
			oldest_kept = nums[i];
			continue;
		}
		st = release_meta_get(appdir, nums[i], "status");
		lived = st && (!strcmp(st, "deployed") || !strcmp(st, "retired"));
		free(st);
		if (!lived)
			continue;
		if (others < keep - (live > 0)) {
			others++;
			oldest_kept = nums[i];
			continue;
		}
		prune_one(appdir, &nums[i], drop, arg);
	}
	/* Failed and interrupted records: the newest few, none older than
	 * the oldest release kept. */
	for (i = n; i-- > 0;) {
		char *st;
		int gone;

		if (!nums[i] || nums[i] == live)
			continue;
		st = release_meta_get(appdir, nums[i], "status");
		gone = !st || (strcmp(st, "deploying") && strcmp(st, "deployed") &&
			       strcmp(st, "retired") &&
			       (nums[i] < oldest_kept || ++failed > keep));
		free(st);
		if (gone)
			prune_one(appdir, &nums[i], drop, arg);
	}
	free(nums);
}
