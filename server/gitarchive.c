/*
 * gitarchive: see gitarchive.h.  After git's builtin/upload-archive.c and
 * archive.c (Documentation/git-archive.txt, git-upload-archive.txt).
 */
#include "gitarchive.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <archive.h>
#include <archive_entry.h>
#include <git2.h>

#include "config.h"
#include "log.h"
#include "pktline.h"
#include "banned.h"

#define ARG_MAX_LEN 1024

static const char *const formats[] = { "tar", "tgz", "tar.gz", "zip" };

void archive_request_init(struct archive_request *req)
{
	memset(req, 0, sizeof(*req));
	req->paths.v = NULL;
}

void archive_request_release(struct archive_request *req)
{
	free(req->format);
	free(req->prefix);
	free(req->treeish);
	strv_release(&req->paths);
	archive_request_init(req);
}

static int known_format(const char *f)
{
	size_t i;

	for (i = 0; i < ARRAY_SIZE(formats); i++)
		if (!strcmp(f, formats[i]))
			return 1;
	return 0;
}

/* A path from the client: relative, no "." or ".." parts, no NUL. */
static int path_ok(const char *p)
{
	const char *c = p;

	if (!*p || *p == '/')
		return 0;
	while (*c) {
		size_t n = strcspn(c, "/");

		if ((n == 1 && c[0] == '.') || (n == 2 && !strncmp(c, "..", 2)))
			return 0;
		c += n;
		while (*c == '/')
			c++;
	}
	return 1;
}

int archive_request_parse(struct archive_request *req, char *const *args,
			  size_t n)
{
	size_t i;
	int options = 1;

	for (i = 0; i < n; i++) {
		const char *a = args[i];

		if (strlen(a) > ARG_MAX_LEN)
			return error_set("argument too long");
		if (options && !strcmp(a, "--")) {
			options = 0;
		} else if (options && !strncmp(a, "--format=", 9)) {
			if (!known_format(a + 9))
				return error_set("Unknown archive format "
						 "'%.64s'", a + 9);
			free(req->format);
			req->format = xstrdup(a + 9);
		} else if (options && !strncmp(a, "--prefix=", 9)) {
			free(req->prefix);
			req->prefix = xstrdup(a + 9);
			if (req->prefix[0] && !path_ok(req->prefix))
				return error_set("bad prefix '%.64s'", a + 9);
		} else if (options && (!strcmp(a, "-l") ||
				       !strcmp(a, "--list"))) {
			req->list = 1;
		} else if (options && (!strcmp(a, "-v") ||
				       !strcmp(a, "--verbose") ||
				       !strcmp(a, "--worktree-attributes") ||
				       (a[0] == '-' && a[1] >= '0' &&
					a[1] <= '9' && !a[2]))) {
			/* accepted, no effect here */
		} else if (options && a[0] == '-') {
			return error_set("option '%.64s' is not supported", a);
		} else if (!req->treeish) {
			req->treeish = xstrdup(a);
		} else {
			if (!path_ok(a))
				return error_set("bad path '%.64s'", a);
			strv_push(&req->paths, a);
		}
	}
	if (!req->format)
		req->format = xstrdup("tar");
	if (!req->prefix)
		req->prefix = xstrdup("");
	if (!req->treeish && !req->list)
		return error_set("no tree-ish given (e.g. main)");
	return 0;
}

/* ---- the archive ---------------------------------------------------- */

struct ar {
	git_repository *repo;
	struct gitsvc_io *io;
	struct archive *a;
	struct archive_entry *e;
	const struct archive_request *req;
	time_t mtime;
	int io_dead;
	int fail;
};

static la_ssize_t write_cb(struct archive *a, void *arg, const void *buf,
			   size_t len)
{
	struct ar *x = arg;

	(void)a;
	if (pkt_send_band(x->io, &x->io_dead, 1, buf, len) < 0)
		return -1;
	return (la_ssize_t)len;
}

/* The entry at path is wanted: no paths given, or it is one of them, is
 * inside one, or is a folder leading to one. */
static int wanted(const struct archive_request *req, const char *path,
		  int is_dir)
{
	size_t i, n = strlen(path);

	if (!req->paths.n)
		return 1;
	for (i = 0; i < req->paths.n; i++) {
		const char *p = req->paths.v[i];
		size_t k = strlen(p);

		while (k > 0 && p[k - 1] == '/')
			k--;
		if ((n == k || (n > k && path[k] == '/')) &&
		    !strncmp(path, p, k))
			return 1;
		if (is_dir && k > n && p[n] == '/' && !strncmp(p, path, n))
			return 1;
	}
	return 0;
}

static int add_entry(struct ar *x, const char *path, mode_t type, int perm,
		     const void *data, size_t len, const char *link)
{
	char *name = xasprintf("%s%s%s", x->req->prefix, path,
			       type == AE_IFDIR ? "/" : "");
	int ret = 0;

	archive_entry_clear(x->e);
	archive_entry_set_pathname(x->e, name);
	archive_entry_set_filetype(x->e, type);
	archive_entry_set_perm(x->e, perm);
	archive_entry_set_mtime(x->e, x->mtime, 0);
	archive_entry_set_uname(x->e, "root");
	archive_entry_set_gname(x->e, "root");
	if (link)
		archive_entry_set_symlink(x->e, link);
	archive_entry_set_size(x->e, type == AE_IFREG ? (la_int64_t)len : 0);
	if (archive_write_header(x->a, x->e) != ARCHIVE_OK ||
	    (type == AE_IFREG && len &&
	     archive_write_data(x->a, data, len) != (la_ssize_t)len))
		ret = error_set("cannot write the archive: %s",
				archive_error_string(x->a));
	free(name);
	return ret;
}

static int walk_cb(const char *root, const git_tree_entry *te, void *arg)
{
	struct ar *x = arg;
	git_blob *blob = NULL;
	git_filemode_t mode = git_tree_entry_filemode(te);
	char *path = xasprintf("%s%s", root, git_tree_entry_name(te));
	int ret = 0, dir = mode == GIT_FILEMODE_TREE ||
			   mode == GIT_FILEMODE_COMMIT;

	if (!wanted(x->req, path, dir)) {
		ret = dir ? 1 : 0;	/* 1: skip what is below */
		goto out;
	}
	if (dir) {
		/* a submodule is an empty folder, as git writes it */
		if (add_entry(x, path, AE_IFDIR, 0775, NULL, 0, NULL) < 0)
			goto fail;
		goto out;
	}
	if (git_blob_lookup(&blob, x->repo, git_tree_entry_id(te)) < 0) {
		error_set("cannot read '%s'", path);
		goto fail;
	}
	if (mode == GIT_FILEMODE_LINK) {
		char *target = xstrndup(git_blob_rawcontent(blob),
					(size_t)git_blob_rawsize(blob));

		ret = add_entry(x, path, AE_IFLNK, 0777, NULL, 0, target);
		free(target);
		if (ret < 0)
			goto fail;
	} else if (add_entry(x, path, AE_IFREG,
			     mode == GIT_FILEMODE_BLOB_EXECUTABLE ? 0775 : 0664,
			     git_blob_rawcontent(blob),
			     (size_t)git_blob_rawsize(blob), NULL) < 0) {
		goto fail;
	}
	goto out;
fail:
	x->fail = 1;
	ret = -1;
out:
	git_blob_free(blob);
	free(path);
	return ret;
}

static int write_archive(struct ar *x, git_tree *tree)
{
	int r = ARCHIVE_OK;

	x->a = archive_write_new();
	x->e = archive_entry_new();
	if (!x->a || !x->e)
		return error_set("out of memory");
	if (!strcmp(x->req->format, "zip")) {
		r = archive_write_set_format_zip(x->a);
	} else {
		r = archive_write_set_format_pax_restricted(x->a);
		if (r == ARCHIVE_OK && strcmp(x->req->format, "tar"))
			r = archive_write_add_filter_gzip(x->a);
	}
	if (r != ARCHIVE_OK ||
	    archive_write_open(x->a, x, NULL, write_cb, NULL) != ARCHIVE_OK)
		return error_set("cannot write the archive: %s",
				 archive_error_string(x->a));
	if (git_tree_walk(tree, GIT_TREEWALK_PRE, walk_cb, x) < 0 || x->fail) {
		if (!x->fail)
			error_set("cannot read the tree");
		return -1;
	}
	if (archive_write_close(x->a) != ARCHIVE_OK)
		return error_set("cannot write the archive: %s",
				 archive_error_string(x->a));
	return 0;
}

/*
 * REF[:PATH] as git's upload-archive allows it: the ref part must be a
 * ref (dwim: main, v1, HEAD).  The tree to archive, and the commit time
 * for the entries' mtime (now for a bare tree).
 */
static int resolve(git_repository *repo, const char *treeish,
		   git_tree **tree, time_t *mtime)
{
	const char *colon = strchr(treeish, ':');
	char *name = colon ? xstrndup(treeish, (size_t)(colon - treeish))
			   : xstrdup(treeish);
	git_reference *ref = NULL;
	git_object *obj = NULL, *peeled = NULL;
	git_tree_entry *te = NULL;
	int ret = -1;

	if (git_reference_dwim(&ref, repo, name) < 0 ||
	    git_reference_peel(&obj, ref, GIT_OBJECT_ANY) < 0) {
		error_set("no such ref: %.100s", name);
		goto out;
	}
	*mtime = time(NULL);
	if (git_object_peel(&peeled, obj, GIT_OBJECT_COMMIT) == 0)
		*mtime = (time_t)git_commit_time((git_commit *)peeled);
	git_object_free(peeled);
	peeled = NULL;
	if (git_object_peel(&peeled, obj, GIT_OBJECT_TREE) < 0) {
		error_set("not a tree object: %.100s", name);
		goto out;
	}
	if (colon && colon[1]) {
		if (!path_ok(colon + 1) ||
		    git_tree_entry_bypath(&te, (git_tree *)peeled,
					  colon + 1) < 0 ||
		    git_tree_entry_type(te) != GIT_OBJECT_TREE ||
		    git_tree_lookup(tree, repo, git_tree_entry_id(te)) < 0) {
			error_set("no folder '%.100s' in %.100s", colon + 1,
				  name);
			goto out;
		}
	} else if (git_tree_lookup(tree, repo, git_object_id(peeled)) < 0) {
		error_set("not a tree object: %.100s", name);
		goto out;
	}
	ret = 0;
out:
	git_tree_entry_free(te);
	git_object_free(peeled);
	git_object_free(obj);
	git_reference_free(ref);
	free(name);
	return ret;
}

/* Every path asked for names something in the tree (git: a pathspec
 * that matches nothing is an error). */
static int check_paths(git_tree *tree, const struct strv *paths)
{
	size_t i;

	for (i = 0; i < paths->n; i++) {
		git_tree_entry *te = NULL;
		char *p = xstrdup(paths->v[i]);
		size_t k = strlen(p);
		int r;

		while (k > 0 && p[k - 1] == '/')
			p[--k] = '\0';
		r = git_tree_entry_bypath(&te, tree, p);
		git_tree_entry_free(te);
		free(p);
		if (r < 0)
			return error_set("pathspec '%.100s' did not match any "
					 "files", paths->v[i]);
	}
	return 0;
}

/* The request: "argument ARG" lines up to a flush. */
static int read_args(struct pkt_reader *rd, struct strv *args)
{
	const char *data;
	size_t len;
	int t;

	for (;;) {
		t = pkt_read_line(rd, &data, &len, 0, "in the arguments");
		if (t < 0)
			return -1;
		if (t == PKT_FLUSH)
			return 0;
		if (args->n >= ARCHIVE_MAX_ARGS)
			return error_set("Too many options (>%d)",
					 ARCHIVE_MAX_ARGS - 1);
		if (len < 9 || memcmp(data, "argument ", 9) ||
		    memchr(data, '\0', len))
			return error_set("'argument' token or flush expected");
		strv_push(args, data + 9);
	}
}

int upload_archive(const struct config *cfg, const char *app,
		   struct gitsvc_io *io)
{
	struct archive_request req;
	struct strv args = STRV_INIT;
	struct pkt_reader *rd = NULL;
	struct ar x;
	git_tree *tree = NULL;
	char *path = NULL;
	int lg2 = 0, status = 1, opened, acked = 0;
	size_t i;

	memset(&x, 0, sizeof(x));
	archive_request_init(&req);
	x.io = io;
	x.req = &req;
	opened = gitsvc_repo_open(&x.repo, &path, cfg, app, io);
	if (opened < 0 && opened != ERR_NOTFOUND)
		goto out;
	lg2 = 1;
	if (opened == ERR_NOTFOUND) {
		error_set("no app '%s' (push to it first)", app);
		pkt_writef(io, "ERR %s\n", error_last());
		goto out;
	}
	rd = xmalloc(sizeof(*rd));
	pkt_reader_init(rd, io);
	rd->timeout_ms = (int)cfg->git_timeout_ms;
	if (read_args(rd, &args) < 0 ||
	    archive_request_parse(&req, args.v, args.n) < 0 ||
	    (!req.list && (resolve(x.repo, req.treeish, &tree, &x.mtime) < 0 ||
			   check_paths(tree, &req.paths) < 0)))
		goto nack;
	if (pkt_writef(io, "ACK\n") < 0 || pkt_flush(io) < 0)
		goto out;
	acked = 1;
	if (req.list) {
		for (i = 0; i < ARRAY_SIZE(formats); i++) {
			char *line = xasprintf("%s\n", formats[i]);

			pkt_send_band(io, &x.io_dead, 1, line, strlen(line));
			free(line);
		}
	} else if (write_archive(&x, tree) < 0) {
		goto fail;
	}
	if (pkt_send(io, &x.io_dead, "0000", 4) < 0)
		goto out;
	log_info("'%s': archive of %s (%s)", app,
		 req.list ? "formats" : req.treeish, req.format);
	status = 0;
	goto out;
nack:
	log_warnx("'%s': upload-archive: %s", app, error_last());
	pkt_writef(io, "NACK %s\n", error_last());
	goto out;
fail:
	log_warnx("'%s': upload-archive: %s", app, error_last());
	if (acked) {
		char *m = xasprintf("%s\n", error_last());

		pkt_send_band(io, &x.io_dead, 3, m, strlen(m));
		free(m);
	}
out:
	if (x.a)
		archive_write_free(x.a);
	if (x.e)
		archive_entry_free(x.e);
	git_tree_free(tree);
	git_repository_free(x.repo);
	archive_request_release(&req);
	strv_release(&args);
	free(rd);
	free(path);
	if (lg2)
		git_libgit2_shutdown();
	return status;
}
