/* packset: see packset.h. */
#include "packset.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "app.h"
#include "buildpack.h"
#include "engine.h"
#include "logger.h"
#include "release.h"
#include "banned.h"

static char *packset_path(const char *appdir)
{
	return xasprintf("%s/%s", appdir, PACKSET_FILE);
}

int packset_read(const char *appdir, struct strv *out)
{
	char *path = packset_path(appdir);
	struct buf b = BUF_INIT;
	int ret = 0;

	if (read_file(&b, path, BUILDPACK_LIST_MAX *
		      (BUILDPACK_SPEC_MAX + 2)) < 0) {
		if (errno != ENOENT)
			ret = -1;
		goto out;
	}
	ret = buildpack_list_parse(out, b.data ? b.data : "", b.len,
				   "buildpacks:set");
out:
	free(path);
	buf_release(&b);
	return ret;
}

static int packset_write(const char *appdir, const struct strv *specs)
{
	char *path = packset_path(appdir);
	struct buf b = BUF_INIT;
	size_t i;
	int ret = 0;

	for (i = 0; i < specs->n; i++)
		buf_addf(&b, "%s\n", specs->v[i]);
	if (specs->n)
		ret = write_file_atomic(path, b.data, b.len, 0644);
	else if (unlink(path) < 0 && errno != ENOENT)
		ret = error_setsys("cannot remove '%s'", path);
	free(path);
	buf_release(&b);
	return ret;
}

/* A spec a user may set: a name or a git URL, not a path on the host. */
static int spec_check(const char *text)
{
	struct buildpack_spec s;

	if (buildpack_spec_parse(&s, text) < 0)
		return -1;
	if (s.kind == BUILDPACK_PATH) {
		buildpack_spec_release(&s);
		return error_set("buildpack '%s': a path on the server cannot be set (use a name or a git URL)",
				 text);
	}
	buildpack_spec_release(&s);
	return 0;
}

static int index_of(const struct strv *sv, const char *s)
{
	size_t i;

	for (i = 0; i < sv->n; i++)
		if (!strcmp(sv->v[i], s))
			return (int)i;
	return -1;
}

static void list(struct app *a, const struct strv *specs, struct client *c)
{
	size_t i;
	char *used = a->release ? release_meta_get(a->dir, a->release,
						   "buildpack") : NULL;

	if (!specs->n)
		client_data(c, "(none set: the next push detects one, or takes the app's .buildpacks, app.yaml or app.json)");
	for (i = 0; i < specs->n; i++)
		client_data(c, "%zu. %s", i + 1, specs->v[i]);
	if (used)
		client_data(c, "release %d was built with: %s", a->release,
			    used);
	free(used);
}

void packset_cmd(struct app *a, int argc, char **argv, struct client *c)
{
	const char *sub = strchr(argv[0], ':');
	struct strv specs = STRV_INIT, next = STRV_INIT;
	int i, k;

	if (packset_read(a->dir, &specs) < 0) {
		client_error(c, "%s", error_last());
		goto out;
	}
	if (!sub || !strcmp(sub, ":report") || !strcmp(sub, ":list")) {
		if (argc != 2) {
			client_error_code(c, CONTROL_ERR_USAGE,
					  "usage: buildpacks NAME");
			goto out;
		}
		list(a, &specs, c);
		client_ok(c);
		goto out;
	}
	for (i = 2; i < argc; i++)
		if (spec_check(argv[i]) < 0) {
			client_error(c, "%s", error_last());
			goto out;
		}
	if (!strcmp(sub, ":set")) {
		if (argc < 3) {
			client_error_code(c, CONTROL_ERR_USAGE,
					  "usage: buildpacks:set NAME BUILDPACK...");
			goto out;
		}
		for (i = 2; i < argc; i++)
			if (index_of(&next, argv[i]) < 0)
				strv_push(&next, argv[i]);
	} else if (!strcmp(sub, ":add")) {
		if (argc < 3) {
			client_error_code(c, CONTROL_ERR_USAGE,
					  "usage: buildpacks:add NAME BUILDPACK...");
			goto out;
		}
		for (i = 0; i < (int)specs.n; i++)
			strv_push(&next, specs.v[i]);
		for (i = 2; i < argc; i++)
			if (index_of(&next, argv[i]) < 0)
				strv_push(&next, argv[i]);
	} else if (!strcmp(sub, ":remove")) {
		if (argc < 3) {
			client_error_code(c, CONTROL_ERR_USAGE,
					  "usage: buildpacks:remove NAME BUILDPACK...");
			goto out;
		}
		for (i = 2; i < argc; i++)
			if (index_of(&specs, argv[i]) < 0) {
				client_error(c, "'%s' is not set for '%s' (see buildpacks %s)",
					     argv[i], a->name, a->name);
				goto out;
			}
		for (k = 0; k < (int)specs.n; k++) {
			for (i = 2; i < argc && strcmp(argv[i], specs.v[k]); i++)
				;
			if (i == argc)
				strv_push(&next, specs.v[k]);
		}
	} else if (!strcmp(sub, ":clear")) {
		if (argc != 2) {
			client_error_code(c, CONTROL_ERR_USAGE,
					  "usage: buildpacks:clear NAME");
			goto out;
		}
	} else {
		client_error_code(c, CONTROL_ERR_USAGE,
				  "unknown command '%s' (try 'help')", argv[0]);
		goto out;
	}
	if (next.n > BUILDPACK_LIST_MAX) {
		client_error(c, "too many buildpacks (at most %d)",
			     BUILDPACK_LIST_MAX);
		goto out;
	}
	if (packset_write(a->dir, &next) < 0) {
		client_error(c, "%s", error_last());
		goto out;
	}
	logger_linef(a->log, "berth", "buildpacks: %zu set", next.n);
	list(a, &next, c);
	client_data(c, "-----> The next push of %s builds with %s", a->name,
		    next.n ? "these, in order" : "what it detects");
	client_ok(c);
out:
	strv_release(&specs);
	strv_release(&next);
}
