/*
 * treelimits: bound what a checkout would write, before it writes it.
 *
 * A pushed commit is small on the wire and may be huge on disk: ten
 * levels of eight-way trees name a billion files in a few kB, and a 1 GiB
 * file of zeros packs into 1 MB.  treelimits_check() walks the commit's
 * trees through libgit2's objects, counting files (blobs, links and
 * submodules, each time a tree names them), their bytes (from each blob's
 * object header: git_odb_read_header, so no blob is inflated), folder
 * depth and path length, and stops at the first limit passed.  A tree or
 * blob that is named many times is looked up once.  Time and memory are
 * bounded by the limits, not by what the commit claims.
 *
 * Blocks on the object database (local files); not thread-safe per repo.
 */
#ifndef BERTH_TREELIMITS_H
#define BERTH_TREELIMITS_H

#include <stdint.h>

#include <git2.h>

/* Generous: a large web app with its dependencies committed fits. */
#define TREELIMITS_FILES 200000
#define TREELIMITS_BYTES (512ULL << 20)
#define TREELIMITS_DEPTH 128
#define TREELIMITS_PATH_MAX 4095	/* longest path in a checkout */

struct treelimits {
	uint64_t max_files;	/* 0: no limit */
	uint64_t max_bytes;	/* 0: no limit */
	unsigned max_depth;	/* 0: no limit */
};

struct treelimits_usage {
	uint64_t files;
	uint64_t bytes;
	unsigned depth;		/* deepest folder nesting seen */
};

/* The defaults above. */
void treelimits_init(struct treelimits *lim);

/*
 * Check the tree of 'id' (a commit or a tree) against lim.  0 when it
 * fits, with *used (may be NULL) filled.  ERR_INVALID when a limit is
 * passed, with one line for the pusher such as "checkout refused: more
 * than 200000 files" or "checkout refused: 'data/zeros' brings the files
 * to 1.0 GiB, over the limit of 512 MiB"; *used then holds the counts
 * up to that point.  -1 if an object cannot be read (error_last() says
 * which, with libgit2's words).
 */
int treelimits_check(git_repository *repo, const git_oid *id,
		     const struct treelimits *lim,
		     struct treelimits_usage *used);

/*
 * The same for the commit 'commit' (40 hex digits) of the bare repository
 * at 'repo_path', with the limits of berth.yaml ('checkout:'): 0, or -1
 * with the one line for the pusher in error_last().
 */
struct config;
int treelimits_check_commit(const char *repo_path, const char *commit,
			    const struct config *cfg);

/* "1.0 GiB", "512 MiB", "12 kB", "100 bytes" into out. */
void treelimits_human_size(char *out, size_t len, uint64_t bytes);

#endif
