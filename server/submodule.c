/* submodule: see submodule.h. */
#include "submodule.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <git2.h>

#include "gitsvc.h"
#include "log.h"
#include "runner.h"
#include "util.h"
#include "banned.h"

#define GITMODULES_MAX (1024 * 1024)

struct gitlink {
	char *path;		/* in the work tree, "lib/core" */
	git_oid id;
};

struct links {
	struct gitlink *v;
	size_t n, alloc;
};

struct sm {
	const struct submodule_opts *o;
	char *root_real;	/* realpath of the state directory */
	int n_repos;		/* fetched repositories so far */
};

static int lg2_fail(const char *what)
{
	const git_error *e = git_error_last();

	return error_set("%s: %s", what,
			 e && e->message ? e->message : "unknown error");
}

/* Put "submodule 'NAME' (URL): " in front of the error already set. */
static int fail(const char *name, const char *url)
{
	char *why = xstrdup(error_last());

	if (url)
		error_set("submodule '%s' (%s): %s", name, url, why);
	else
		error_set("submodule '%s': %s", name, why);
	free(why);
	return -1;
}

static void say(const struct sm *s, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static void say(const struct sm *s, const char *fmt, ...)
{
	char *line;
	va_list ap;

	va_start(ap, fmt);
	line = xvasprintf(fmt, ap);
	va_end(ap);
	if (write_all(s->o->out, line, strlen(line)) < 0 ||
	    write_all(s->o->out, "\n", 1) < 0)
		log_debug("%s: the pusher is gone", __func__);
	free(line);
}

static int is_scheme(const char *url, const char *scheme)
{
	return !strncmp(url, scheme, strlen(scheme));
}

int submodule_url_check(const char *url)
{
	static const char *const schemes[] = {
		"file://", "http://", "https://", "ssh://", "git://",
		"git+ssh://", "ssh+git://",
	};
	const char *p, *colon, *slash;
	size_t i;

	if (!*url)
		return error_set("no url");
	for (p = url; *p; p++)
		if ((unsigned char)*p <= ' ' || *p == 0x7f)
			return error_set("url with a space or control "
					 "character");
	if (url[0] == '-')
		return error_set("url starts with '-'");
	if (!strncmp(url, "./", 2) || !strncmp(url, "../", 3))
		return error_set("a relative url cannot be resolved on the "
				 "server (give an absolute url)");
	if (url[0] == '/')
		return 0;
	for (i = 0; i < ARRAY_SIZE(schemes); i++)
		if (is_scheme(url, schemes[i]))
			return 0;
	/* scp-like "user@host:path": a colon before any slash, no "::" */
	colon = strchr(url, ':');
	slash = strchr(url, '/');
	if (colon && colon != url && (!slash || colon < slash) &&
	    colon[1] != ':' && !strstr(url, "://"))
		return 0;
	return error_set("unsupported url (use a path, file://, http(s)://, "
			 "ssh:// or git://)");
}

/*
 * A relative url of a nested submodule, against the url of the
 * repository that holds it (git's relative_url()): each "../" drops one
 * component of base.  Returns a fresh string, or NULL when base runs out.
 */
static char *resolve_relative(const char *base, const char *rel)
{
	struct buf b = BUF_INIT;
	size_t n = strlen(base);

	while (n > 1 && base[n - 1] == '/')
		n--;
	for (;;) {
		if (!strncmp(rel, "./", 2)) {
			rel += 2;
		} else if (!strncmp(rel, "../", 3)) {
			while (n > 0 && base[n - 1] != '/' &&
			       base[n - 1] != ':')
				n--;
			if (n == 0)
				return NULL;
			n--;	/* the separator */
			rel += 3;
		} else {
			break;
		}
	}
	if (n == 0)
		return NULL;
	buf_add(&b, base, n);
	buf_addf(&b, "%s%s", base[n] == ':' ? ":" : "/", rel);
	return buf_detach(&b);
}

/* A local url's path: "/x" or "file:///x"; NULL for remote urls. */
static const char *local_path(const char *url)
{
	if (url[0] == '/')
		return url;
	if (is_scheme(url, "file://"))
		return url + 7;
	return NULL;
}

/* The path must exist and lie outside the state directory. */
static int check_local(struct sm *s, const char *path)
{
	char real[PATH_MAX];
	size_t n = strlen(s->root_real);

	if (!realpath(path, real))
		return error_setsys("cannot open '%s'", path);
	if (!strncmp(real, s->root_real, n) &&
	    (real[n] == '/' || real[n] == '\0'))
		return error_set("'%s' is inside berth's state directory",
				 path);
	return 0;
}

/* Open dir/rel without following any symlink on the way (the work tree
 * is the pusher's): 0 if it is a real directory. */
static int real_dir(const char *dir, const char *rel)
{
	char *copy = xstrdup(rel), *p, *next;
	int fd, ret = -1;

	fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0) {
		error_setsys("cannot open '%s'", dir);
		goto out;
	}
	for (p = copy; p && *p; p = next) {
		int sub;

		next = strchr(p, '/');
		if (next)
			*next++ = '\0';
		if (!*p || !strcmp(p, ".") || !strcmp(p, "..")) {
			error_set("bad path '%s'", rel);
			goto out;
		}
		sub = openat(fd, p, O_RDONLY | O_DIRECTORY | O_NOFOLLOW |
			     O_CLOEXEC);
		if (sub < 0) {
			error_setsys("'%s' is not a folder", rel);
			goto out;
		}
		close(fd);
		fd = sub;
	}
	ret = 0;
out:
	if (fd >= 0)
		close(fd);
	free(copy);
	return ret;
}

static int collect_link(const char *root, const git_tree_entry *e,
			void *arg)
{
	struct links *l = arg;

	if (git_tree_entry_type(e) != GIT_OBJECT_COMMIT)
		return 0;
	if (l->n == l->alloc) {
		l->alloc = l->alloc ? l->alloc * 2 : 8;
		l->v = xrealloc(l->v, l->alloc * sizeof(*l->v));
	}
	l->v[l->n].path = xasprintf("%s%s", root, git_tree_entry_name(e));
	git_oid_cpy(&l->v[l->n].id, git_tree_entry_id(e));
	l->n++;
	return 0;
}

static void links_release(struct links *l)
{
	size_t i;

	for (i = 0; i < l->n; i++)
		free(l->v[i].path);
	free(l->v);
	memset(l, 0, sizeof(*l));
}

/* The gitlinks of commit's tree (repo open), in tree order. */
static int find_links(git_repository *repo, const git_oid *commit,
		      git_tree **tree, struct links *out)
{
	git_commit *c = NULL;
	int ret = -1;

	if (git_commit_lookup(&c, repo, commit) < 0 ||
	    git_commit_tree(tree, c) < 0) {
		lg2_fail("cannot read the commit");
		goto out;
	}
	if (git_tree_walk(*tree, GIT_TREEWALK_PRE, collect_link, out) < 0) {
		lg2_fail("cannot read the tree");
		goto out;
	}
	ret = 0;
out:
	git_commit_free(c);
	return ret;
}

/*
 * The tree's .gitmodules, parsed by libgit2 from a private copy (the
 * blob, never the work tree's file: that one could be a symlink).
 * *cfg NULL when there is none.
 */
static int read_gitmodules(git_repository *repo, git_tree *tree,
			   const char *copy, git_config **cfg)
{
	const git_tree_entry *e = git_tree_entry_byname(tree, ".gitmodules");
	git_blob *blob = NULL;
	git_filemode_t mode;
	int fd = -1, ret = -1;

	*cfg = NULL;
	if (!e)
		return 0;
	mode = git_tree_entry_filemode(e);
	if (mode != GIT_FILEMODE_BLOB && mode != GIT_FILEMODE_BLOB_EXECUTABLE)
		return error_set(".gitmodules is not a regular file");
	if (git_blob_lookup(&blob, repo, git_tree_entry_id(e)) < 0) {
		lg2_fail("cannot read .gitmodules");
		goto out;
	}
	if (git_blob_rawsize(blob) > GITMODULES_MAX) {
		error_set(".gitmodules is too large");
		goto out;
	}
	fd = open(copy, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0 || write_all(fd, git_blob_rawcontent(blob),
				(size_t)git_blob_rawsize(blob)) < 0) {
		error_setsys("cannot write '%s'", copy);
		goto out;
	}
	if (git_config_open_ondisk(cfg, copy) < 0) {
		lg2_fail("bad .gitmodules");
		goto out;
	}
	ret = 0;
out:
	if (fd >= 0)
		close(fd);
	git_blob_free(blob);
	return ret;
}

struct find_name {
	const char *path;
	char *name;
};

static int match_path(const git_config_entry *e, void *arg)
{
	struct find_name *f = arg;
	size_t n = strlen(e->name);

	/* "submodule.NAME.path" */
	if (f->name || strcmp(e->value, f->path) || n < 16)
		return 0;
	f->name = xstrndup(e->name + 10, n - 15);
	return 0;
}

/* submodule.NAME.KEY for the submodule at path; fresh string or NULL. */
static char *module_value(git_config *cfg, const char *path, const char *key)
{
	struct find_name f = { path, NULL };
	git_buf v = GIT_BUF_INIT;
	char *k, *ret = NULL;

	if (git_config_foreach_match(cfg, "^submodule\\..*\\.path$",
				     match_path, &f) < 0 || !f.name)
		goto out;
	k = xasprintf("submodule.%s.%s", f.name, key);
	if (git_config_get_string_buf(&v, cfg, k) == 0)
		ret = xstrdup(v.ptr);
	free(k);
out:
	git_buf_dispose(&v);
	free(f.name);
	return ret;
}

/* Fetch url's branches and tags into a fresh bare repository. */
static int fetch(struct sm *s, const char *url, git_repository **out)
{
	git_fetch_options fo;
	git_remote *remote = NULL;
	char *refspecs[] = { "+refs/heads/*:refs/heads/*",
			     "+refs/tags/*:refs/tags/*" };
	git_strarray specs = { refspecs, 2 };
	char *path;
	int ret = -1;

	*out = NULL;
	path = xasprintf("%s/%d.git", s->o->tmp, s->n_repos++);
	if (git_repository_init(out, path, 1) < 0) {
		lg2_fail("cannot make a repository");
		goto out;
	}
	if (git_fetch_options_init(&fo, GIT_FETCH_OPTIONS_VERSION) < 0 ||
	    git_remote_create_anonymous(&remote, *out, url) < 0) {
		lg2_fail("cannot fetch");
		goto out;
	}
	fo.download_tags = GIT_REMOTE_DOWNLOAD_TAGS_NONE;
	fo.update_fetchhead = 0;
	if (git_remote_fetch(remote, &specs, &fo, NULL) < 0) {
		lg2_fail("cannot fetch");
		goto out;
	}
	ret = 0;
out:
	git_remote_free(remote);
	if (ret < 0) {
		git_repository_free(*out);
		*out = NULL;
	}
	free(path);
	return ret;
}

/* Check out commit of repo into the (existing, empty) folder dir. */
static int checkout(git_repository *repo, const git_oid *commit,
		    const char *dir)
{
	git_checkout_options co;
	git_commit *c = NULL;
	git_tree *t = NULL;
	int ret = -1;

	if (git_checkout_options_init(&co, GIT_CHECKOUT_OPTIONS_VERSION) < 0 ||
	    git_commit_lookup(&c, repo, commit) < 0 ||
	    git_commit_tree(&t, c) < 0) {
		lg2_fail("cannot read the commit");
		goto out;
	}
	/* a work tree, so gitlinks inside become empty folders */
	if (git_repository_set_workdir(repo, dir, 0) < 0) {
		lg2_fail("cannot check out");
		goto out;
	}
	co.checkout_strategy = GIT_CHECKOUT_FORCE |
			       GIT_CHECKOUT_DONT_UPDATE_INDEX;
	co.target_directory = dir;
	if (git_checkout_tree(repo, (git_object *)t, &co) < 0) {
		lg2_fail("cannot check out");
		goto out;
	}
	ret = 0;
out:
	git_tree_free(t);
	git_commit_free(c);
	return ret;
}

static int update_tree(struct sm *s, git_repository *repo,
		       const git_oid *commit, const char *dir,
		       const char *prefix, const char *base_url, int depth);

/* One gitlink: find its url, fetch, check out, recurse. */
static int update_one(struct sm *s, git_config *mods, const struct gitlink *l,
		      const char *dir, const char *prefix,
		      const char *base_url, int depth)
{
	git_repository *sub = NULL;
	git_commit *c = NULL;
	char *url = NULL, *update = NULL, *shown = NULL, *subdir = NULL;
	char hex[GIT_OID_HEXSZ + 1];
	const char *local;
	int ret = -1;

	shown = xasprintf("%s%s", prefix, l->path);
	git_oid_tostr(hex, sizeof(hex), &l->id);
	url = mods ? module_value(mods, l->path, "url") : NULL;
	if (!url) {
		error_set("submodule '%s': no url in .gitmodules", shown);
		goto out;
	}
	update = module_value(mods, l->path, "update");
	if (update && !strcmp(update, "none")) {
		say(s, "       submodule %s: update = none, left empty", shown);
		ret = 0;
		goto out;
	}
	if (base_url && (!strncmp(url, "./", 2) || !strncmp(url, "../", 3))) {
		char *abs = resolve_relative(base_url, url);

		if (abs) {
			free(url);
			url = abs;
		}
	}
	if (submodule_url_check(url) < 0) {
		fail(shown, url);
		goto out;
	}
	local = local_path(url);
	if (local && check_local(s, local) < 0) {
		fail(shown, url);
		goto out;
	}
	say(s, "-----> Fetching submodule %s from %s", shown, url);
	if (fetch(s, url, &sub) < 0) {
		fail(shown, url);
		goto out;
	}
	if (git_commit_lookup(&c, sub, &l->id) < 0) {
		error_set("submodule '%s' (%s): commit %.7s is not on any "
			  "branch or tag there", shown, url, hex);
		goto out;
	}
	if (real_dir(dir, l->path) < 0) {
		fail(shown, NULL);
		goto out;
	}
	subdir = xasprintf("%s/%s", dir, l->path);
	if (checkout(sub, &l->id, subdir) < 0) {
		fail(shown, NULL);
		goto out;
	}
	say(s, "       %s at %.7s", shown, hex);
	free(shown);
	shown = xasprintf("%s%s/", prefix, l->path);
	ret = update_tree(s, sub, &l->id, subdir, shown, url, depth + 1);
out:
	git_commit_free(c);
	git_repository_free(sub);
	free(url);
	free(update);
	free(shown);
	free(subdir);
	return ret;
}

/* Every gitlink of commit (in repo), checked out under dir. */
static int update_tree(struct sm *s, git_repository *repo,
		       const git_oid *commit, const char *dir,
		       const char *prefix, const char *base_url, int depth)
{
	struct links links = { NULL, 0, 0 };
	git_tree *tree = NULL;
	git_config *mods = NULL;
	char *copy = NULL;
	size_t i;
	int ret = -1;

	if (find_links(repo, commit, &tree, &links) < 0)
		goto out;
	if (links.n == 0) {
		ret = 0;
		goto out;
	}
	if (depth > SUBMODULE_MAX_DEPTH) {
		error_set("submodule '%s%s': nested more than %d deep", prefix,
			  links.v[0].path, SUBMODULE_MAX_DEPTH);
		goto out;
	}
	copy = xasprintf("%s/gitmodules-%d", s->o->tmp, s->n_repos);
	if (read_gitmodules(repo, tree, copy, &mods) < 0) {
		char *name = xasprintf("%s%s", prefix, links.v[0].path);

		fail(name, NULL);
		free(name);
		goto out;
	}
	for (i = 0; i < links.n; i++)
		if (update_one(s, mods, &links.v[i], dir, prefix, base_url,
			       depth) < 0)
			goto out;
	ret = 0;
out:
	git_config_free(mods);
	git_tree_free(tree);
	links_release(&links);
	free(copy);
	return ret;
}

/* The child's whole work; 0 or -1 with error_last(). */
static int update_all(const struct submodule_opts *o)
{
	struct sm s;
	git_repository *repo = NULL;
	char real[PATH_MAX];
	git_oid id;
	int ret = -1;

	memset(&s, 0, sizeof(s));
	s.o = o;
	if (!realpath(o->state_root, real))
		return error_setsys("cannot open '%s'", o->state_root);
	s.root_real = real;
	if (git_libgit2_init() < 0)
		return lg2_fail("cannot initialise libgit2");
	/* the pusher's urls are opened with the build user's rights only */
	git_libgit2_opts(GIT_OPT_SET_OWNER_VALIDATION, 0);
	if (git_repository_open_bare(&repo, o->repo) < 0) {
		lg2_fail("cannot open repository");
		goto out;
	}
	if (git_oid_fromstr(&id, o->commit) < 0) {
		error_set("invalid commit id '%s'", o->commit);
		goto out;
	}
	ret = update_tree(&s, repo, &id, o->dir, "", NULL, 1);
out:
	git_repository_free(repo);
	git_libgit2_shutdown();
	return ret;
}

/* Any gitlink at all in the commit's tree (cheap, in our process). */
static int has_links(const struct submodule_opts *o)
{
	git_repository *repo = NULL;
	git_tree *tree = NULL;
	struct links links = { NULL, 0, 0 };
	git_oid id;
	int ret = -1;

	if (git_libgit2_init() < 0)
		return lg2_fail("cannot initialise libgit2");
	/* the repository is berth-ssh's (gitsep.h), read by the build user */
	gitsvc_lg2_repo_only();
	if (git_repository_open_bare(&repo, o->repo) < 0) {
		lg2_fail("cannot open repository");
		goto out;
	}
	if (git_oid_fromstr(&id, o->commit) < 0) {
		error_set("invalid commit id '%s'", o->commit);
		goto out;
	}
	if (find_links(repo, &id, &tree, &links) < 0)
		goto out;
	ret = links.n > 0;
out:
	links_release(&links);
	git_tree_free(tree);
	git_repository_free(repo);
	git_libgit2_shutdown();
	return ret;
}

/* submodule_update()'s child, as the build's user. */
static int update_as_user(void *arg)
{
	const struct submodule_opts *co = arg;
	int r = has_links(co);

	return r == 0 || (r > 0 && update_all(co) == 0) ? 0 : -1;
}

int submodule_update(const struct submodule_opts *o)
{
	struct submodule_opts co = *o;
	struct runner_call call = {
		.fn = update_as_user, .arg = &co,
		.setup = o->child_setup,
		.setup_msg = "cannot join the build's cgroup or become its user",
		.uid = o->uid, .gid = o->gid,
		.timeout_msg = "build timed out",
		.what = "submodules: the fetch",
	};
	char *tmp = NULL;
	int r, ret = -1;

	/* as root the repository is read by the build user only (gitsep.h):
	 * the child looks for gitlinks itself */
	r = o->uid >= 0 && geteuid() == 0 ? 1 : has_links(o);
	if (r <= 0)
		return r;
	tmp = xasprintf("%s/modules-XXXXXX", o->tmp);
	if (!mkdtemp(tmp)) {
		error_setsys("cannot create '%s'", tmp);
		FREE_AND_NULL(tmp);
		goto out;
	}
	if (o->uid >= 0 && chown(tmp, (uid_t)o->uid, (gid_t)o->gid) < 0) {
		error_setsys("cannot hand '%s' over", tmp);
		goto out;
	}
	co.tmp = tmp;
	if (o->deadline) {
		int64_t left = o->deadline - now_ms();

		call.timeout_ms = left > 1000 ? (long)left : 1000;
	}
	ret = runner_call_as(&call);
out:
	if (tmp && rm_rf(tmp) < 0)
		log_warnx("%s: %s", __func__, error_last());
	free(tmp);
	return ret;
}
