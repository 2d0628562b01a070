/* packscan: see packscan.h.  The format: gitformat-pack(5). */
#include "packscan.h"

#include <string.h>

#include "util.h"

enum {
	S_HEADER,	/* "PACK", version, object count: 12 bytes */
	S_OBJHDR,	/* type and inflated size, a varint */
	S_OFS,		/* ofs-delta: base offset, a varint */
	S_REF,		/* ref-delta: base id, 20 bytes */
	S_DATA,		/* the zlib stream */
	S_TRAILER,	/* 20 bytes */
	S_DONE,
};

#define OBJ_OFS_DELTA 6
#define OBJ_REF_DELTA 7
#define SCRATCH 16384	/* inflated bytes are counted, then dropped */

void packscan_init(struct packscan *s)
{
	memset(s, 0, sizeof(*s));
	s->state = S_HEADER;
	s->need = 12;
}

void packscan_release(struct packscan *s)
{
	if (s->z_live)
		inflateEnd(&s->z);
	s->z_live = 0;
}

static void next_object(struct packscan *s)
{
	s->done_objects++;
	s->hdr_len = 0;
	if (s->done_objects == s->n_objects) {
		s->state = S_TRAILER;
		s->need = PACKSCAN_TRAILER;
	} else {
		s->state = S_OBJHDR;
	}
}

static int parse_header(struct packscan *s)
{
	uint32_t version;

	if (memcmp(s->hdr, "PACK", 4))
		return error_set("bad pack: no pack signature");
	version = (uint32_t)s->hdr[4] << 24 | (uint32_t)s->hdr[5] << 16 |
		  (uint32_t)s->hdr[6] << 8 | s->hdr[7];
	if (version != 2 && version != 3)
		return error_set("bad pack: version %u not supported", version);
	s->n_objects = (uint32_t)s->hdr[8] << 24 | (uint32_t)s->hdr[9] << 16 |
		       (uint32_t)s->hdr[10] << 8 | s->hdr[11];
	s->hdr_len = 0;
	s->done_objects = 0;
	if (s->n_objects == 0) {
		s->state = S_TRAILER;
		s->need = PACKSCAN_TRAILER;
	} else {
		s->state = S_OBJHDR;
	}
	return 0;
}

/* The object's zlib stream starts. */
static int enter_data(struct packscan *s)
{
	if (!s->z_live) {
		memset(&s->z, 0, sizeof(s->z));
		if (inflateInit(&s->z) != Z_OK)
			return error_set("out of memory");
		s->z_live = 1;
	} else if (inflateReset(&s->z) != Z_OK) {
		return error_set("bad pack: zlib reset failed");
	}
	s->inflated = 0;
	s->hdr_len = 0;
	s->state = S_DATA;
	return 0;
}

/* One byte of an object header: the type and size varint. */
static int objhdr_byte(struct packscan *s, unsigned char c)
{
	if (s->hdr_len == 0) {
		s->obj_type = (c >> 4) & 7;
		s->obj_size = c & 15;
		s->shift = 4;
		if (s->obj_type == 0 || s->obj_type == 5)
			return error_set("bad pack: object %u has bad type %d",
					 s->done_objects, s->obj_type);
	} else {
		if (s->shift > 64 - 7)
			return error_set("bad pack: object %u has a bad size",
					 s->done_objects);
		s->obj_size |= (uint64_t)(c & 0x7f) << s->shift;
		s->shift += 7;
	}
	s->hdr_len++;
	if (c & 0x80)
		return 0;
	s->hdr_len = 0;
	if (s->obj_type == OBJ_OFS_DELTA) {
		s->state = S_OFS;
		s->shift = 0;
	} else if (s->obj_type == OBJ_REF_DELTA) {
		s->state = S_REF;
		s->need = 20;
	} else {
		return enter_data(s);
	}
	return 0;
}

/* One byte of an ofs-delta's base offset (a varint of its own kind). */
static int ofs_byte(struct packscan *s, unsigned char c)
{
	if (++s->hdr_len > 9)
		return error_set("bad pack: object %u has a bad delta offset",
				 s->done_objects);
	if (!(c & 0x80))
		return enter_data(s);
	return 0;
}

/* Inflate what we can of the object's data; how many bytes it used. */
static ssize_t data_bytes(struct packscan *s, const unsigned char *p,
			  size_t len)
{
	unsigned char out[SCRATCH];
	size_t used = 0;
	int r;

	while (used < len) {
		uInt in = len - used > UINT32_MAX ? UINT32_MAX
						  : (uInt)(len - used);

		s->z.next_in = (unsigned char *)(uintptr_t)(p + used);
		s->z.avail_in = in;
		s->z.next_out = out;
		s->z.avail_out = sizeof(out);
		r = inflate(&s->z, Z_NO_FLUSH);
		used += in - s->z.avail_in;
		s->inflated += sizeof(out) - s->z.avail_out;
		if (s->inflated > s->obj_size)
			return error_set("bad pack: object %u inflates past "
					 "its size", s->done_objects);
		if (r == Z_STREAM_END) {
			if (s->inflated != s->obj_size)
				return error_set("bad pack: object %u inflates "
						 "to the wrong size",
						 s->done_objects);
			next_object(s);
			return (ssize_t)used;
		}
		if (r != Z_OK && !(r == Z_BUF_ERROR && s->z.avail_in == 0))
			return error_set("bad pack: object %u has corrupt "
					 "data", s->done_objects);
	}
	return (ssize_t)used;
}

ssize_t packscan_feed(struct packscan *s, const void *data, size_t len)
{
	const unsigned char *p = data;
	size_t off = 0;

	while (off < len && s->state != S_DONE) {
		size_t take;
		ssize_t n;

		switch (s->state) {
		case S_HEADER:
		case S_REF:
		case S_TRAILER:
			take = s->need - s->hdr_len;
			if (take > len - off)
				take = len - off;
			memcpy(s->hdr + s->hdr_len, p + off, take);
			s->hdr_len += take;
			off += take;
			if (s->hdr_len < s->need)
				break;
			if (s->state == S_HEADER) {
				if (parse_header(s) < 0)
					return -1;
			} else if (s->state == S_REF) {
				if (enter_data(s) < 0)
					return -1;
			} else {
				s->state = S_DONE;
				s->done = 1;
			}
			break;
		case S_OBJHDR:
			if (objhdr_byte(s, p[off++]) < 0)
				return -1;
			break;
		case S_OFS:
			if (ofs_byte(s, p[off++]) < 0)
				return -1;
			break;
		case S_DATA:
			n = data_bytes(s, p + off, len - off);
			if (n < 0)
				return -1;
			off += (size_t)n;
			break;
		}
	}
	s->offset += off;
	return (ssize_t)off;
}
