/*
 * packscan: finds where a git pack stream ends, from the pack itself, as
 * git's index-pack does: the header's object count, each object's
 * compressed data (zlib says where it ends), then the 20-byte trailer.
 * A client that pushes keeps its side open and waits for our report, so
 * "read to EOF" would wait forever; this tells the reader when to stop.
 *
 * The scanner owns no I/O: feed it the bytes as they arrive.  It checks
 * the framing only (versions 2 and 3, object types, varints, that each
 * object inflates to the size its header gives); the checksum and the
 * objects themselves are for the indexer.  Memory: one zlib stream.
 */
#ifndef BERTH_PACKSCAN_H
#define BERTH_PACKSCAN_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <zlib.h>

#define PACKSCAN_TRAILER 20	/* SHA-1 of everything before it */

struct packscan {
	int state;		/* where in the stream we are (packscan.c) */
	unsigned char hdr[20];	/* bytes of the part being parsed */
	size_t hdr_len, need;
	uint32_t n_objects;	/* from the pack header */
	uint32_t done_objects;	/* objects whose data has ended */
	uint64_t obj_size;	/* inflated size the object header gives */
	uint64_t inflated;	/* inflated so far for this object */
	uint64_t offset;	/* bytes of the pack consumed */
	int obj_type;		/* 1-4 (commit, tree, blob, tag), 6, 7 */
	int shift;
	z_stream z;
	int z_live;
	int done;		/* the trailer was read: the pack ended */
};

void packscan_init(struct packscan *s);

/*
 * Take up to len bytes of the stream.  Returns how many of them belong to
 * the pack (len, unless the pack ended inside them: then s->done is set
 * and the rest is not the pack's), or -1 on a malformed stream
 * ("bad pack: ..." in error_last()).  After done it returns 0.
 */
ssize_t packscan_feed(struct packscan *s, const void *data, size_t len);

/* Free the zlib state; s may be fed again only after packscan_init(). */
void packscan_release(struct packscan *s);

#endif
