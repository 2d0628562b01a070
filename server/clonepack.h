/*
 * clonepack: a repository's last full pack, kept to be sent again as is.
 *
 * A clone asks for the tips and has nothing: the pack it gets depends
 * only on the ids it wants (and on whether it takes ofs-deltas and tags
 * along), since objects never change.  The first such request writes its
 * pack through to REPO/clonepack/KEY.pack while it is sent; the next one
 * that asks for the same ids is sent that file, with no walk and no
 * lookup, so its first byte leaves at once and the client's index-pack
 * starts sooner.  A repository that keeps one has it made again in the
 * background after each push (upload_keep_clone_pack()); one never
 * cloned in full pays nothing.  KEY is the SHA-1 of the sorted wanted ids and the
 * flags.  One pack is kept per repository: a new one removes the
 * others.  Failing to keep a pack never fails the clone.
 */
#ifndef BERTH_CLONEPACK_H
#define BERTH_CLONEPACK_H

#include <stddef.h>

#define CLONEPACK_DIR "clonepack"	/* inside the bare repository */

enum clonepack_flags {
	CLONEPACK_OFS_DELTA = 1 << 0,
	CLONEPACK_TAGS = 1 << 1,	/* include-tag */
};

struct clonepack_writer;

/*
 * Wait for the repository's turn to make a kept pack: an fd to close
 * when done, or -1 (error_last()).
 */
int clonepack_lock(const char *repo_path);

/* 1 if repo_path keeps a pack (of any key), else 0. */
int clonepack_any(const char *repo_path);

/* The key (hex, NUL-terminated) of n 20-byte ids (any order) and flags. */
void clonepack_key(char out[41], const unsigned char *ids, size_t n,
		   unsigned flags);

/*
 * Open the kept pack of repo_path (the repository's folder) for key: an
 * fd (the caller closes it) with *size, or -1 when there is none.
 */
int clonepack_open(const char *repo_path, const char *key, size_t *size);

/* Start keeping a pack under key: NULL when it cannot be kept. */
struct clonepack_writer *clonepack_begin(const char *repo_path,
					 const char *key);
/* The pack's next bytes; a failed write drops the pack quietly. */
void clonepack_add(struct clonepack_writer *w, const void *data, size_t len);
/* The whole pack went out: keep it and remove the other kept packs. */
void clonepack_commit(struct clonepack_writer *w);
/* Drop what was written (NULL is a no-op). */
void clonepack_abort(struct clonepack_writer *w);

#endif
