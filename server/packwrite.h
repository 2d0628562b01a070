/*
 * packwrite: writes a pack of chosen objects out of the repository's
 * stored packs, reusing their bytes as git's pack-objects does with
 * --reuse-object and --reuse-delta: a whole object is copied as it is
 * stored, a delta too when its base goes out before it (its distance to
 * the base rewritten), and only a delta whose base stays behind is made
 * whole again (inflated, deltas applied, deflated).  No delta is searched
 * for, so the cost is a copy.  Objects are written in stored order, pack
 * by pack, which puts every reused base before its deltas.
 *
 * Objects that no pack holds (loose ones) come from the read() callback.
 * Memory: the stored packs' indexes are mapped; about 40 bytes an object.
 */
#ifndef BERTH_PACKWRITE_H
#define BERTH_PACKWRITE_H

#include <stddef.h>
#include <stdint.h>

#include "packfile.h"

struct packwrite;

struct packwrite_opts {
	const char *pack_dir;	/* objects/pack of the repository */
	int ofs_delta;		/* the client takes ofs-deltas */
	uint64_t max_object;	/* largest object made whole again */
	/* a loose object: 0 with *type, *data (malloc'd, we free), *len */
	int (*read)(void *arg, const unsigned char *id, int *type,
		    unsigned char **data, size_t *len);
	/* the pack's bytes, in order: 0, or -1 to stop */
	int (*write)(void *arg, const void *data, size_t len);
	void *arg;
};

/* Open the stored packs (their .idx) of opts->pack_dir.  0 or -1. */
int packwrite_new(struct packwrite **out, const struct packwrite_opts *o);

/* Add an object to the pack; 1 if it was new, 0 if it was in already. */
int packwrite_add(struct packwrite *pw, const unsigned char *id);

/* 1 if id was added. */
int packwrite_has(const struct packwrite *pw, const unsigned char *id);

uint32_t packwrite_count(const struct packwrite *pw);

/*
 * Write the pack: header, objects, trailer, through opts->write.  0, or
 * -1 (a write failed, an object is missing or unreadable).
 */
int packwrite_send(struct packwrite *pw);

/* Objects reused as stored, deltas reused, made whole (after send). */
void packwrite_stats(const struct packwrite *pw, uint32_t *whole,
		     uint32_t *deltas, uint32_t *remade);

void packwrite_free(struct packwrite *pw);

#endif
