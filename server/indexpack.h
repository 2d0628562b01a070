/*
 * indexpack: berth's own git index-pack.  Takes a pack stream as it
 * arrives (a push), writes it to a file, and finishes with a .pack and a
 * version 2 .idx that git and libgit2 open as their own.
 *
 * One pass over the stream: each object's header, its zlib data (which
 * says where the object ends: so the caller learns where the pack ends,
 * see indexpack_done()), the trailer's checksum.  Whole objects are hashed
 * as they inflate; deltas are resolved at the end, base by base, on
 * several threads, each keeping the bases of its current chain in a
 * bounded cache.  Thin packs are completed from the repository through a
 * callback (the bases are appended, the header and trailer rewritten).
 * Every commit, tree and tag is read for the ids it links to, so that at
 * the end the pack's closure is known: an id neither in the pack nor in
 * the repository (the have() callback) is reported by
 * indexpack_missing().
 *
 * Memory: the object table (about 60 bytes an object), the links not yet
 * found in the pack, one zlib stream, and per thread the cache of bases
 * (INDEXPACK_CACHE bytes, more only for a single object that large).
 * The callbacks are called from the caller's thread only.
 */
#ifndef BERTH_INDEXPACK_H
#define BERTH_INDEXPACK_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "packfile.h"

#define INDEXPACK_CACHE (4u << 20)	/* bases kept per thread */
#define INDEXPACK_MAX_DEPTH 10000	/* longest delta chain taken */

struct indexpack_progress {
	uint32_t objects, received;	/* objects in the pack, seen */
	uint32_t deltas, resolved;	/* deltas, resolved so far */
	uint32_t local;			/* bases added from the repository */
	uint64_t bytes;
};

struct indexpack_opts {
	const char *dir;	/* where the files go (it exists) */
	uint64_t max_object;	/* largest object, deltas' results too */
	int threads;		/* 0: one per core, at most 4 */
	/*
	 * A thin pack's base: 0 with *type, *data (malloc'd, we free) and
	 * *len, or -1 if the repository does not have it.
	 */
	int (*read_base)(void *arg, const unsigned char *id, int *type,
			 unsigned char **data, size_t *len);
	/* 1 if the repository has the object (for the closure), else 0 */
	int (*have)(void *arg, const unsigned char *id);
	/* now and then, and once at the end of each phase */
	void (*progress)(void *arg, const struct indexpack_progress *p);
	void *arg;
};

struct indexpack;

/* A new indexer writing into opts->dir; opts is copied. 0 or -1. */
int indexpack_new(struct indexpack **out, const struct indexpack_opts *o);

/*
 * Take up to len bytes of the stream.  Returns how many belong to the
 * pack (fewer than len only when the pack ended inside them), or -1 on a
 * malformed pack ("bad pack: ..." in error_last()); after the trailer, 0.
 */
ssize_t indexpack_feed(struct indexpack *ip, const void *data, size_t len);

/* 1 once the trailer has been read. */
int indexpack_done(const struct indexpack *ip);

/*
 * After the trailer: resolve the deltas, complete a thin pack, check the
 * closure, and write DIR/pack-HEX.pack and DIR/pack-HEX.idx.  hex gets
 * the name (the pack's checksum).  0 or -1 (nothing is left in dir).
 */
int indexpack_finish(struct indexpack *ip, char hex[41]);

/* The objects in the finished pack. */
uint32_t indexpack_count(const struct indexpack *ip);
const struct indexpack_progress *indexpack_stats(const struct indexpack *ip);

/*
 * After finish: the type (PACK_COMMIT...) of id if it is in the pack,
 * else 0.
 */
int indexpack_lookup(const struct indexpack *ip, const unsigned char *id);

/*
 * After finish: an id some object of the pack links to that is neither
 * in the pack nor in the repository, or NULL when the pack is closed.
 */
const unsigned char *indexpack_missing(const struct indexpack *ip);

/* Free it; an unfinished pack's files are removed. */
void indexpack_free(struct indexpack *ip);

#endif
