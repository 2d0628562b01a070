/*
 * packfile: git's pack and pack index formats (gitformat-pack(5)), below
 * the indexer (indexpack.h) and the pack writer (packwrite.h): object
 * headers, deltas, object ids, the links a commit, tree or tag holds, and
 * reading a stored pack through its version 2 .idx.
 *
 * Nothing here calls libgit2 or keeps global state: every function may
 * run on any thread.  Sizes that come from a pack are checked against the
 * caller's limits before anything is allocated.
 */
#ifndef BERTH_PACKFILE_H
#define BERTH_PACKFILE_H

#include <stddef.h>
#include <stdint.h>

#include <zlib.h>

enum pack_obj_type {
	PACK_COMMIT = 1,
	PACK_TREE = 2,
	PACK_BLOB = 3,
	PACK_TAG = 4,
	PACK_OFS_DELTA = 6,
	PACK_REF_DELTA = 7,
};

#define PACK_ID_LEN 20
#define PACK_HDR_MAX 32	/* an object header with its base: enough */

/* "commit", "tree", "blob", "tag", or NULL. */
const char *pack_type_name(int type);

/* ---- object ids (SHA-1) --------------------------------------------- */

/* SHA-1 of "TYPE SIZE\0" and the data: the object's id. */
struct pack_hash {
	unsigned char ctx[96];	/* SHA_CTX, kept opaque */
};
void pack_hash_init(struct pack_hash *h);
/* Begin an object's id: the "TYPE SIZE\0" header. */
void pack_hash_object(struct pack_hash *h, int type, uint64_t size);
void pack_hash_update(struct pack_hash *h, const void *data, size_t len);
void pack_hash_final(struct pack_hash *h, unsigned char out[PACK_ID_LEN]);
void pack_object_id(unsigned char out[PACK_ID_LEN], int type,
		    const void *data, size_t len);

void pack_id_hex(char out[41], const unsigned char id[PACK_ID_LEN]);

/* ---- headers and deltas --------------------------------------------- */

/* Encode an object header (type, inflated size); returns its length. */
size_t pack_encode_header(unsigned char *out, int type, uint64_t size);
/* Encode an ofs-delta's distance back to its base; returns its length. */
size_t pack_encode_ofs(unsigned char *out, uint64_t distance);

/*
 * Parse the object header at p (avail bytes): type, inflated size and, for
 * deltas, the base (*base_dist for ofs, base_id for ref).  *hdr_len is
 * where the zlib data starts.  0, or -1 on a malformed or short header.
 */
int pack_parse_header(const unsigned char *p, size_t avail, int *type,
		      uint64_t *size, uint64_t *base_dist,
		      unsigned char base_id[PACK_ID_LEN], size_t *hdr_len);

/*
 * Apply a delta to base.  The result's size comes from the delta header
 * and must be at most max; the base size it names must be base_len and
 * the instructions must fill the result exactly.  *out (caller frees).
 * 0, or -1 with error_last() ("bad delta: ...").
 */
int pack_apply_delta(unsigned char **out, size_t *out_len,
		     const unsigned char *base, size_t base_len,
		     const unsigned char *delta, size_t delta_len,
		     uint64_t max);

/*
 * Inflate one zlib stream from in (at most in_len bytes) into exactly
 * out_len bytes of out; z is the caller's (initialised) stream, reset
 * here.  *used: compressed bytes the stream took.  0, or -1 when the
 * stream is corrupt, ends early or inflates past out_len.
 */
int pack_inflate(z_stream *z, const unsigned char *in, size_t in_len,
		 void *out, size_t out_len, size_t *used);

/*
 * The ids a commit (tree, parents), tree (entries but submodules) or tag
 * (its object) links to, each passed to fn.  Blobs link to nothing.
 * 0, or -1 when the object is malformed (error_last()).
 */
int pack_object_links(int type, const unsigned char *data, size_t len,
		      void (*fn)(void *arg, const unsigned char *id),
		      void *arg);

/* ---- pack index, version 2 ------------------------------------------ */

struct pack_idx_entry {
	unsigned char id[PACK_ID_LEN];
	uint32_t crc;
	uint64_t offset;
};

/*
 * Write a version 2 .idx for entries (sorted by id, unique) of a pack
 * whose trailer is pack_sum, to path (through path.tmp and a rename).
 */
int pack_write_idx(const char *path, struct pack_idx_entry *const *sorted,
		   size_t n, const unsigned char pack_sum[PACK_ID_LEN]);

/* A stored pack, read through its .idx; both files mapped read-only. */
struct pack_reader {
	const unsigned char *idx, *pack;
	size_t idx_len, pack_len;
	uint32_t n;
	const uint32_t *fanout;		/* 256, big-endian */
	const unsigned char *ids;	/* n * 20 */
	const uint32_t *crcs;		/* n, big-endian */
	const uint32_t *offs;		/* n, big-endian */
	const uint64_t *offs64;		/* big-endian */
	size_t n_offs64;
	uint64_t *sorted_offs;	/* n + 1: object ends (the trailer last) */
	uint32_t *order;	/* index of each sorted_offs entry, or NULL */
	char *name;		/* path of the .pack */
};

/* Open PATH.idx and PATH.pack (path without the extension).  0 or -1. */
int pack_reader_open(struct pack_reader **out, const char *path);
void pack_reader_free(struct pack_reader *r);

/* The position of id in the index (0..n-1), or -1. */
int64_t pack_reader_find(const struct pack_reader *r,
			 const unsigned char id[PACK_ID_LEN]);
uint64_t pack_reader_offset(const struct pack_reader *r, uint32_t pos);
/* Where the object at offset ends (the next one starts): a built table
 * (pack_reader_index_ends) makes this a binary search.  0 if unknown. */
int pack_reader_index_ends(struct pack_reader *r);
uint64_t pack_reader_end(const struct pack_reader *r, uint64_t offset);
/* The index position of the object at offset, or -1 (needs the ends). */
int64_t pack_reader_pos_at(const struct pack_reader *r, uint64_t offset);

/*
 * The whole object at offset, deltas applied (bases in this pack, ref
 * bases looked up in its index): *type, *data (caller frees), *len.
 * At most max bytes for the object and each base.  0 or -1.
 */
int pack_reader_read(const struct pack_reader *r, z_stream *z,
		     uint64_t offset, int *type, unsigned char **data,
		     size_t *len, uint64_t max);

#endif
