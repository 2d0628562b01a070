/* treelimits: see treelimits.h. */
#include "treelimits.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "util.h"
#include "banned.h"

/* Blob sizes already read, by id: a tree bomb names one blob a billion
 * times.  Open addressing; when full, later blobs are just read again. */
#define CACHE_SLOTS (1u << 16)

struct size_slot {
	git_oid id;
	uint64_t size;
	int used;
};

struct walk {
	git_repository *repo;
	git_odb *odb;
	const struct treelimits *lim;
	struct treelimits_usage *u;
	struct size_slot *cache;
	size_t cached;
	char path[TREELIMITS_PATH_MAX + 1];
	size_t plen;
};

void treelimits_init(struct treelimits *lim)
{
	lim->max_files = TREELIMITS_FILES;
	lim->max_bytes = TREELIMITS_BYTES;
	lim->max_depth = TREELIMITS_DEPTH;
}

void treelimits_human_size(char *out, size_t len, uint64_t b)
{
	if (b >= (1ULL << 30))
		snprintf(out, len, "%.1f GiB", (double)b / (1ULL << 30));
	else if (b >= (1ULL << 20))
		snprintf(out, len, "%llu MiB", (unsigned long long)(b >> 20));
	else if (b >= (1ULL << 10))
		snprintf(out, len, "%llu kB", (unsigned long long)(b >> 10));
	else
		snprintf(out, len, "%llu bytes", (unsigned long long)b);
}

static int git_fail(const char *what, const git_oid *id)
{
	const git_error *e = git_error_last();
	char hex[GIT_OID_HEXSZ + 1];

	git_oid_tostr(hex, sizeof(hex), id);
	return error_set("cannot read %s %s: %s", what, hex,
			 e && e->message ? e->message : "unknown error");
}

static size_t slot_of(const git_oid *id)
{
	size_t h;

	memcpy(&h, id->id, sizeof(h));	/* a hash already */
	return h & (CACHE_SLOTS - 1);
}

static int blob_size(struct walk *w, const git_oid *id, uint64_t *size)
{
	size_t i = slot_of(id), n;
	git_object_t type;
	size_t len;

	for (n = 0; n < CACHE_SLOTS && w->cache[i].used; n++) {
		if (!git_oid_cmp(&w->cache[i].id, id)) {
			*size = w->cache[i].size;
			return 0;
		}
		i = (i + 1) & (CACHE_SLOTS - 1);
	}
	if (git_odb_read_header(&len, &type, w->odb, id) < 0)
		return git_fail("blob", id);
	if (type != GIT_OBJECT_BLOB) {
		char hex[GIT_OID_HEXSZ + 1];

		git_oid_tostr(hex, sizeof(hex), id);
		return error_set("object %s is not a blob", hex);
	}
	*size = len;
	/* keep the table at most three quarters full */
	if (w->cached < CACHE_SLOTS / 4 * 3 && n < CACHE_SLOTS &&
	    !w->cache[i].used) {
		git_oid_cpy(&w->cache[i].id, id);
		w->cache[i].size = len;
		w->cache[i].used = 1;
		w->cached++;
	}
	return 0;
}

static int push_name(struct walk *w, const char *name, size_t *saved)
{
	size_t n = strlen(name), need = w->plen + (w->plen ? 1 : 0) + n;

	*saved = w->plen;
	if (need > TREELIMITS_PATH_MAX) {
		error_set("checkout refused: a path longer than %d bytes ('%.60s...')",
			  TREELIMITS_PATH_MAX, w->path);
		return ERR_INVALID;
	}
	if (w->plen)
		w->path[w->plen++] = '/';
	memcpy(w->path + w->plen, name, n + 1);
	w->plen += n;
	return 0;
}

static void pop_name(struct walk *w, size_t saved)
{
	w->plen = saved;
	w->path[saved] = '\0';
}

static int count_file(struct walk *w)
{
	if (w->lim->max_files && ++w->u->files > w->lim->max_files) {
		error_set("checkout refused: more than %llu files",
			  (unsigned long long)w->lim->max_files);
		return ERR_INVALID;
	}
	if (!w->lim->max_files)
		w->u->files++;
	return 0;
}

static int walk_tree(struct walk *w, const git_tree *tree, unsigned depth)
{
	size_t i, n = git_tree_entrycount(tree), saved;
	int r = 0;

	if (depth > w->u->depth)
		w->u->depth = depth;
	for (i = 0; i < n && r == 0; i++) {
		const git_tree_entry *e = git_tree_entry_byindex(tree, i);
		const git_oid *id = git_tree_entry_id(e);
		git_object_t type = git_tree_entry_type(e);

		r = push_name(w, git_tree_entry_name(e), &saved);
		if (r < 0)
			break;
		if (type == GIT_OBJECT_TREE) {
			git_tree *sub = NULL;

			if (w->lim->max_depth && depth + 1 > w->lim->max_depth) {
				error_set("checkout refused: '%.200s' is nested more than %u folders deep",
					  w->path, w->lim->max_depth);
				r = ERR_INVALID;
			} else if (git_tree_lookup(&sub, w->repo, id) < 0) {
				r = git_fail("tree", id);
			} else {
				r = walk_tree(w, sub, depth + 1);
				git_tree_free(sub);
			}
		} else if (type == GIT_OBJECT_BLOB) {
			uint64_t size = 0;

			r = count_file(w);
			if (r == 0)
				r = blob_size(w, id, &size);
			if (r == 0) {
				w->u->bytes += size;
				if (w->lim->max_bytes &&
				    w->u->bytes > w->lim->max_bytes) {
					char total[32], max[32];

					treelimits_human_size(total,
						sizeof(total), w->u->bytes);
					treelimits_human_size(max, sizeof(max),
						w->lim->max_bytes);
					error_set("checkout refused: '%.200s' brings the files to %s, over the limit of %s",
						  w->path, total, max);
					r = ERR_INVALID;
				}
			}
		} else {
			r = count_file(w);	/* a submodule: a folder */
		}
		pop_name(w, saved);
	}
	return r;
}

int treelimits_check(git_repository *repo, const git_oid *id,
		     const struct treelimits *lim,
		     struct treelimits_usage *used)
{
	struct treelimits_usage local;
	struct walk w;
	git_object *obj = NULL;
	git_tree *tree = NULL;
	int ret = -1;

	memset(&w, 0, sizeof(w));
	w.repo = repo;
	w.lim = lim;
	w.u = used ? used : &local;
	memset(w.u, 0, sizeof(*w.u));
	if (git_repository_odb(&w.odb, repo) < 0) {
		ret = error_set("cannot open the object database: %s",
				git_error_last() ? git_error_last()->message :
				"unknown error");
		goto out;
	}
	if (git_object_lookup(&obj, repo, id, GIT_OBJECT_ANY) < 0) {
		ret = git_fail("object", id);
		goto out;
	}
	if (git_object_peel((git_object **)&tree, obj, GIT_OBJECT_TREE) < 0) {
		ret = git_fail("tree of", id);
		goto out;
	}
	w.cache = xcalloc(CACHE_SLOTS, sizeof(*w.cache));
	ret = walk_tree(&w, tree, 0);
out:
	free(w.cache);
	git_tree_free(tree);
	git_object_free(obj);
	git_odb_free(w.odb);
	return ret;
}

int treelimits_check_commit(const char *repo_path, const char *commit,
			    const struct config *cfg)
{
	git_repository *repo = NULL;
	struct treelimits lim;
	git_oid id;
	int ret = -1;

	treelimits_init(&lim);
	if (cfg) {
		lim.max_files = (uint64_t)cfg->checkout_max_files;
		lim.max_bytes = (uint64_t)cfg->checkout_max_bytes;
		lim.max_depth = (unsigned)cfg->checkout_max_depth;
	}
	git_libgit2_init();
	if (git_oid_fromstr(&id, commit) < 0) {
		error_set("invalid commit id '%s'", commit);
		goto out;
	}
	if (git_repository_open_bare(&repo, repo_path) < 0) {
		error_set("cannot open the repository");
		goto out;
	}
	ret = treelimits_check(repo, &id, &lim, NULL) < 0 ? -1 : 0;
out:
	git_repository_free(repo);
	git_libgit2_shutdown();
	return ret;
}
