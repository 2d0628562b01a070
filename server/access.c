/* access: see access.h. */
#include "access.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "keys.h"
#include "util.h"
#include "banned.h"

#define ACCESS_FILE_MAX (256 * 1024)

struct acl {
	char *owner;		/* NULL: none */
	struct strv collab;
};

static void acl_release(struct acl *a)
{
	free(a->owner);
	strv_release(&a->collab);
	memset(a, 0, sizeof(*a));
}

static char *acl_path(const char *root, const char *app)
{
	return xasprintf("%s/%s/%s", root, ACCESS_DIR, app);
}

/* 0 read, ERR_NOTFOUND no file, -1 error. */
static int acl_load(const char *root, const char *app, struct acl *a)
{
	struct buf b = BUF_INIT;
	char *path = acl_path(root, app), *line, *save = NULL;
	int ret = -1;

	memset(a, 0, sizeof(*a));
	if (!path_exists(path)) {
		ret = ERR_NOTFOUND;
		goto out;
	}
	if (read_file(&b, path, ACCESS_FILE_MAX) < 0)
		goto out;
	for (save = b.data ? b.data : "", line = str_token(&save, "\n"); line;
	     line = str_token(&save, "\n")) {
		if (!strncmp(line, "owner ", 6) && !a->owner)
			a->owner = xstrdup(line + 6);
		else if (!strncmp(line, "collaborator ", 13))
			strv_push(&a->collab, line + 13);
	}
	ret = 0;
out:
	buf_release(&b);
	free(path);
	return ret;
}

static int acl_save(const char *root, const char *app, const struct acl *a)
{
	struct buf b = BUF_INIT;
	char *dir = xasprintf("%s/%s", root, ACCESS_DIR);
	char *path = acl_path(root, app);
	size_t i;
	int ret = -1;

	if (mkdir_p(dir, 0700) < 0)
		goto out;
	if (a->owner)
		buf_addf(&b, "owner %s\n", a->owner);
	for (i = 0; i < a->collab.n; i++)
		buf_addf(&b, "collaborator %s\n", a->collab.v[i]);
	ret = write_file_atomic(path, b.data ? b.data : "", b.len, 0600);
out:
	buf_release(&b);
	free(dir);
	free(path);
	return ret;
}

static long find(const struct strv *sv, const char *s)
{
	size_t i;

	for (i = 0; i < sv->n; i++)
		if (!strcmp(sv->v[i], s))
			return (long)i;
	return -1;
}

static int app_exists(const char *root, const char *app)
{
	char *p = xasprintf("%s/apps/%s", root, app);
	int r = path_exists(p);

	free(p);
	return r;
}

static int denied(const char *app)
{
	error_set("no access to app '%s'", app);
	return ERR_INVALID;
}

static int check(const char *root, const char *app, const char *user,
		 int admin, int owner_only)
{
	struct acl a;
	size_t i;
	int r;

	if (!app_name_valid(app))
		return error_set("invalid app name '%.80s'", app), ERR_INVALID;
	r = acl_load(root, app, &a);
	if (r == ERR_NOTFOUND && !app_exists(root, app))
		return ERR_NOTFOUND;
	if (r == -1)
		return -1;
	if (admin) {
		acl_release(&a);
		return 0;
	}
	r = denied(app);
	if (user && a.owner && !strcmp(a.owner, user))
		r = 0;
	for (i = 0; !owner_only && user && r && i < a.collab.n; i++)
		if (!strcmp(a.collab.v[i], user))
			r = 0;
	acl_release(&a);
	return r;
}

int access_check(const char *root, const char *app, const char *user,
		 int admin)
{
	return check(root, app, user, admin, 0);
}

int access_check_owner(const char *root, const char *app, const char *user,
		       int admin)
{
	return check(root, app, user, admin, 1);
}

int access_claim(const char *root, const char *app, const char *user,
		 int admin)
{
	char *dir = xasprintf("%s/%s", root, ACCESS_DIR);
	char *path = acl_path(root, app);
	char *line = NULL;
	int fd = -1, ret = -1;

	if (!app_name_valid(app) || !user) {
		ret = error_set("invalid app name '%.80s'", app);
		goto out;
	}
	/* An app made without a key (berth deploy, incoming/, import at
	 * the host) has no owner file: it stays the admins' until one of
	 * them shares it, never the first key to push to it. */
	if (app_exists(root, app) && !path_exists(path)) {
		ret = access_check(root, app, user, admin);
		goto out;
	}
	if (mkdir_p(dir, 0700) < 0)
		goto out;
	/* O_EXCL: of two keys creating one app at once, one owns it. */
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0 && errno == EEXIST) {
		ret = access_check(root, app, user, admin);
		goto out;
	}
	if (fd < 0) {
		error_setsys("cannot record the owner of '%s'", app);
		goto out;
	}
	line = xasprintf("owner %s\n", user);
	if (write_all(fd, line, strlen(line)) < 0 || fsync(fd) < 0) {
		error_setsys("cannot record the owner of '%s'", app);
		unlink(path);
		goto out;
	}
	ret = 0;
out:
	if (fd >= 0)
		close(fd);
	free(line);
	free(path);
	free(dir);
	return ret;
}

void access_forget(const char *root, const char *app)
{
	char *path;

	if (!app_name_valid(app))
		return;
	path = acl_path(root, app);
	unlink(path);
	free(path);
}

void access_unclaim(const char *root, const char *app)
{
	if (app_name_valid(app) && !app_exists(root, app))
		access_forget(root, app);
}

/* Is there a key named 'name' in authorized_keys? */
static int key_exists(const char *root, const char *name)
{
	struct buf b = BUF_INIT;
	char *path = xasprintf("%s/%s", root, KEYS_FILE);
	char *line, *save = NULL;
	int found = 0;

	if (read_file(&b, path, KEYS_FILE_MAX) == 0)
		for (save = b.data ? b.data : "", line = str_token(&save, "\n");
		     line && !found; line = str_token(&save, "\n")) {
			struct keys_line k;

			if (keys_line_parse(&k, line, strlen(line)) != 0)
				continue;
			found = !strcmp(k.name, name);
			keys_line_release(&k);
		}
	buf_release(&b);
	free(path);
	return found;
}

int access_sharing(const char *root, const char *app, int argc,
		   char *const *argv, struct buf *out)
{
	struct acl a;
	const char *name;
	size_t i;
	int r, ret = -1;

	if (argc != 2 && argc != 4)
		return error_set("usage: sharing APP [add KEYNAME | rm KEYNAME]"),
			ERR_USAGE;
	r = acl_load(root, app, &a);
	if (r == -1)
		return -1;
	if (argc == 2) {
		buf_addf(out, "owner %s\n", a.owner ? a.owner : "(admins only)");
		for (i = 0; i < a.collab.n; i++)
			buf_addf(out, "collaborator %s\n", a.collab.v[i]);
		ret = 0;
		goto out;
	}
	name = argv[3];
	if (!strcmp(argv[2], "add")) {
		if (!key_exists(root, name)) {
			ret = error_set("no key named '%.80s'", name);
			ret = ERR_INVALID;
			goto out;
		}
		if (a.owner && !strcmp(a.owner, name)) {
			ret = error_set("'%s' owns '%s'", name, app);
			ret = ERR_INVALID;
			goto out;
		}
		if (find(&a.collab, name) < 0)
			strv_push(&a.collab, name);
		if (acl_save(root, app, &a) < 0)
			goto out;
		buf_addf(out, "-----> %s may now reach %s\n", name, app);
		ret = 0;
	} else if (!strcmp(argv[2], "rm")) {
		long at = find(&a.collab, name);

		if (at < 0) {
			error_set("'%.80s' is not a collaborator on '%s'", name,
				  app);
			ret = ERR_NOTFOUND;
			goto out;
		}
		free(a.collab.v[at]);
		memmove(&a.collab.v[at], &a.collab.v[at + 1],
			(a.collab.n - (size_t)at) * sizeof(char *));
		/* the vector's NULL end moved down with the rest */
		a.collab.n--;
		if (acl_save(root, app, &a) < 0)
			goto out;
		buf_addf(out, "-----> %s may no longer reach %s\n", name, app);
		ret = 0;
	} else {
		ret = error_set("usage: sharing APP [add KEYNAME | rm KEYNAME]");
		ret = ERR_USAGE;
	}
out:
	acl_release(&a);
	return ret;
}
