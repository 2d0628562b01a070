/*
 * indexpack: see indexpack.h.  Two phases, one pass over the stream:
 *
 *  1. feed: the stream goes to DIR/tmp-pack-XXXXXX as it comes; each
 *     object's header is parsed, its data inflated (that is how its end
 *     is found), whole objects hashed on the way and commits, trees and
 *     tags read for links.  Deltas are only noted: an ofs-delta by its
 *     base's index, a ref-delta by its base's id.
 *  2. finish: the file is mapped and the deltas resolved family by
 *     family: each whole object with deltas on it is a root, and a worker
 *     walks its tree of deltas depth first, applying each delta to the
 *     base it keeps on its stack (older bases are dropped past
 *     INDEXPACK_CACHE and made again if needed).  Workers take roots from
 *     a shared counter; the caller's thread is one of them.  Ref-deltas
 *     still unresolved then name bases from the repository (a thin pack):
 *     those are appended to the pack and resolved in another round.
 */
#include "indexpack.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "oidset.h"
#include "phasetrace.h"
#include "util.h"
#include "banned.h"

enum {
	S_HEADER,	/* "PACK", version, count: 12 bytes */
	S_OBJHDR,	/* type, size, the base of a delta */
	S_DATA,		/* the zlib stream */
	S_TRAILER,	/* 20 bytes */
	S_DONE,
};

#define SCRATCH 65536
#define MAX_THREADS 4

struct ip_obj {
	uint64_t offset;	/* of its header */
	uint64_t size;		/* inflated, as its header says */
	unsigned char id[PACK_ID_LEN];	/* once known */
	uint32_t crc;
	uint32_t base;		/* ofs-delta: the base's index */
	uint8_t type;		/* in the pack: 1-4, 6, 7 */
	uint8_t rtype;		/* the object's own type, once known */
	uint8_t hdr_len;	/* header and base; then the zlib data */
	uint8_t resolved;	/* id known (atomic for deltas) */
};

struct ref_edge {
	unsigned char base[PACK_ID_LEN];
	uint32_t child;
};

struct frame {
	uint32_t obj;
	unsigned char *data;	/* NULL: not made yet, or dropped */
	size_t len;
	uint32_t ofs_next, ofs_end;	/* children by offset */
	uint32_t ref_next, ref_end;	/* children by id */
};

struct worker {
	struct indexpack *ip;
	pthread_t th;
	z_stream z;
	int z_live;
	struct oidset links;
	struct frame *st;
	size_t depth, st_alloc;
	size_t held;
	int failed;
	char err[256];
};

struct indexpack {
	struct indexpack_opts o;
	char *dir, *tmp;
	int fd;
	int state;
	/* phase 1 */
	unsigned char hdr[PACK_HDR_MAX + 8];
	size_t hdr_len, need;
	int hstage;
	uint32_t n_objects;
	uint64_t offset;	/* bytes of the pack taken */
	struct pack_hash pack_sum;
	struct pack_hash obj_sum;
	z_stream z;
	int z_live;
	uint64_t inflated;
	unsigned char *content;	/* commit, tree or tag being read */
	unsigned char trailer[PACK_ID_LEN];
	/* the objects */
	struct ip_obj *objs;
	uint32_t n, alloc;
	struct ref_edge *refs;
	uint32_t n_refs, refs_alloc;
	uint32_t n_deltas;
	/* phase 2 */
	uint32_t *child_start, *children;
	const unsigned char *map;
	size_t map_len;
	uint64_t pack_end;	/* where the trailer starts */
	uint32_t next_root, roots_end;
	uint32_t resolved;
	struct worker w[MAX_THREADS];
	int threads;
	uint32_t *by_id;	/* indexes sorted by id, after finish */
	uint32_t n_by_id;	/* how many: objects appended since are not */
	unsigned char missing[PACK_ID_LEN];
	int has_missing;
	struct indexpack_progress prog;
	int finished;
};

static void report(struct indexpack *ip)
{
	if (ip->o.progress)
		ip->o.progress(ip->o.arg, &ip->prog);
}

int indexpack_new(struct indexpack **out, const struct indexpack_opts *o)
{
	struct indexpack *ip = xcalloc(1, sizeof(*ip));
	long cores;
	int i;

	*out = NULL;
	ip->o = *o;
	ip->dir = xstrdup(o->dir);
	ip->o.dir = ip->dir;
	if (!ip->o.max_object)
		ip->o.max_object = (uint64_t)1 << 32;
	ip->tmp = xasprintf("%s/tmp-pack-XXXXXX", o->dir);
	ip->fd = mkostemp(ip->tmp, O_CLOEXEC);
	if (ip->fd < 0) {
		error_setsys("cannot create '%s'", ip->tmp);
		free(ip->tmp);
		ip->tmp = NULL;
		indexpack_free(ip);
		return -1;
	}
	ip->state = S_HEADER;
	ip->need = 12;
	pack_hash_init(&ip->pack_sum);
	cores = sysconf(_SC_NPROCESSORS_ONLN);
	ip->threads = o->threads > 0 ? o->threads : (int)(cores > 0 ? cores : 1);
	if (ip->threads > MAX_THREADS)
		ip->threads = MAX_THREADS;
	for (i = 0; i < MAX_THREADS; i++)
		ip->w[i].ip = ip;
	*out = ip;
	return 0;
}

int indexpack_done(const struct indexpack *ip)
{
	return ip->state == S_DONE;
}

uint32_t indexpack_count(const struct indexpack *ip)
{
	return ip->n;
}

const struct indexpack_progress *indexpack_stats(const struct indexpack *ip)
{
	return &ip->prog;
}

/* ---- phase 1: the stream -------------------------------------------- */

static struct ip_obj *new_obj(struct indexpack *ip)
{
	if (ip->n == UINT32_MAX - 1) {
		error_set("bad pack: too many objects");
		return NULL;
	}
	if (ip->n == ip->alloc) {
		/* the header's count may lie: grow with what arrives */
		uint32_t a = ip->alloc ? ip->alloc : 1024;

		while (a <= ip->n)
			a = a > UINT32_MAX / 2 ? UINT32_MAX : a * 2;
		ip->objs = xrealloc(ip->objs, (size_t)a * sizeof(*ip->objs));
		ip->alloc = a;
	}
	memset(&ip->objs[ip->n], 0, sizeof(ip->objs[0]));
	return &ip->objs[ip->n++];
}

static void add_ref(struct indexpack *ip, const unsigned char *base,
		    uint32_t child)
{
	if (ip->n_refs == ip->refs_alloc) {
		ip->refs_alloc = ip->refs_alloc ? ip->refs_alloc * 2 : 64;
		ip->refs = xrealloc(ip->refs, (size_t)ip->refs_alloc *
					      sizeof(*ip->refs));
	}
	memcpy(ip->refs[ip->n_refs].base, base, PACK_ID_LEN);
	ip->refs[ip->n_refs].child = child;
	ip->n_refs++;
}

static void note_link(void *arg, const unsigned char *id)
{
	struct worker *w = arg;
	git_oid oid;

	memcpy(oid.id, id, PACK_ID_LEN);
	oidset_insert(&w->links, &oid, NULL);
}

/* The index of the object whose header is at offset, or -1. */
static int64_t obj_at(const struct indexpack *ip, uint64_t offset)
{
	uint32_t lo = 0, hi = ip->n;

	while (lo < hi) {
		uint32_t mid = lo + (hi - lo) / 2;

		if (ip->objs[mid].offset < offset)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo < ip->n && ip->objs[lo].offset == offset)
		return lo;
	return -1;
}

static int parse_pack_header(struct indexpack *ip)
{
	const unsigned char *h = ip->hdr;
	uint32_t version;

	if (memcmp(h, "PACK", 4))
		return error_set("bad pack: no pack signature");
	version = (uint32_t)h[4] << 24 | (uint32_t)h[5] << 16 |
		  (uint32_t)h[6] << 8 | h[7];
	if (version != 2 && version != 3)
		return error_set("bad pack: version %u not supported", version);
	ip->n_objects = (uint32_t)h[8] << 24 | (uint32_t)h[9] << 16 |
			(uint32_t)h[10] << 8 | h[11];
	ip->prog.objects = ip->n_objects;
	ip->hdr_len = 0;
	if (ip->n_objects == 0) {
		ip->state = S_TRAILER;
		ip->need = PACK_ID_LEN;
	} else {
		ip->state = S_OBJHDR;
		ip->hstage = 0;
	}
	return 0;
}

/* The object header is complete in ip->hdr: note the object. */
static int object_begins(struct indexpack *ip)
{
	struct ip_obj *o;
	unsigned char bid[PACK_ID_LEN];
	uint64_t size, dist = 0;
	size_t hl;
	int type;

	if (pack_parse_header(ip->hdr, ip->hdr_len, &type, &size, &dist, bid,
			      &hl) < 0 || hl != ip->hdr_len)
		return error_set("bad pack: object %u has a bad header",
				 ip->n);
	if (size > ip->o.max_object)
		return error_set("bad pack: object %u is too large (%llu "
				 "bytes)", ip->n, (unsigned long long)size);
	o = new_obj(ip);
	if (!o)
		return -1;
	o->offset = ip->offset - ip->hdr_len;
	o->size = size;
	o->type = (uint8_t)type;
	o->hdr_len = (uint8_t)hl;
	o->crc = (uint32_t)crc32(0, ip->hdr, (uInt)hl);
	if (type == PACK_OFS_DELTA) {
		int64_t b;

		if (dist == 0 || dist > o->offset - 12 ||
		    (b = obj_at(ip, o->offset - dist)) < 0)
			return error_set("bad pack: object %u has a bad delta "
					 "base offset", ip->n - 1);
		o->base = (uint32_t)b;
		ip->n_deltas++;
	} else if (type == PACK_REF_DELTA) {
		add_ref(ip, bid, ip->n - 1);
		ip->n_deltas++;
	} else {
		o->rtype = (uint8_t)type;
		pack_hash_object(&ip->obj_sum, type, size);
		if (type != PACK_BLOB)
			ip->content = xmalloc(size ? size : 1);
	}
	if (!ip->z_live) {
		memset(&ip->z, 0, sizeof(ip->z));
		if (inflateInit(&ip->z) != Z_OK)
			return error_set("out of memory");
		ip->z_live = 1;
	} else if (inflateReset(&ip->z) != Z_OK) {
		return error_set("bad pack: zlib reset failed");
	}
	ip->inflated = 0;
	ip->hdr_len = 0;
	ip->state = S_DATA;
	return 0;
}

/* One byte of an object header; 1 when the header is complete. */
static int objhdr_byte(struct indexpack *ip, unsigned char c)
{
	ip->hdr[ip->hdr_len++] = c;
	switch (ip->hstage) {
	case 0:	/* type and size */
		if (ip->hdr_len == 1) {
			int t = (c >> 4) & 7;

			if (t == 0 || t == 5)
				return error_set("bad pack: object %u has "
						 "bad type %d", ip->n, t);
		}
		if (c & 0x80) {
			if (ip->hdr_len >= 10)
				return error_set("bad pack: object %u has a "
						 "bad size", ip->n);
			return 0;
		}
		switch ((ip->hdr[0] >> 4) & 7) {
		case PACK_OFS_DELTA:
			ip->hstage = 1;
			ip->need = ip->hdr_len;
			return 0;
		case PACK_REF_DELTA:
			ip->hstage = 2;
			ip->need = ip->hdr_len + PACK_ID_LEN;
			return 0;
		}
		return 1;
	case 1:	/* ofs-delta distance */
		if (c & 0x80) {
			if (ip->hdr_len - ip->need >= 9)
				return error_set("bad pack: object %u has a "
						 "bad delta offset", ip->n);
			return 0;
		}
		return 1;
	default:	/* ref-delta base id */
		return ip->hdr_len == ip->need;
	}
}

/* The object's zlib stream ended. */
static int object_ends(struct indexpack *ip)
{
	struct ip_obj *o = &ip->objs[ip->n - 1];
	int ret = 0;

	if (ip->inflated != o->size)
		return error_set("bad pack: object %u inflates to the wrong "
				 "size", ip->n - 1);
	if (o->type < PACK_OFS_DELTA) {
		pack_hash_final(&ip->obj_sum, o->id);
		o->resolved = 1;
		if (ip->content) {
			ret = pack_object_links(o->type, ip->content, o->size,
						note_link, &ip->w[0]);
			FREE_AND_NULL(ip->content);
		}
	}
	ip->prog.received = ip->n;
	if (ip->n % 1024 == 0)
		report(ip);
	if (ip->n == ip->n_objects) {
		ip->state = S_TRAILER;
		ip->need = PACK_ID_LEN;
		ip->hdr_len = 0;
		report(ip);
	} else {
		ip->state = S_OBJHDR;
		ip->hstage = 0;
		ip->hdr_len = 0;
	}
	return ret;
}

/* Inflate what we can of the object's data; bytes used, or -1. */
static ssize_t data_bytes(struct indexpack *ip, const unsigned char *p,
			  size_t len)
{
	static _Thread_local unsigned char scratch[SCRATCH];
	struct ip_obj *o = &ip->objs[ip->n - 1];
	size_t used = 0;
	int r;

	while (used < len) {
		uInt in = len - used > UINT32_MAX ? UINT32_MAX
						  : (uInt)(len - used);
		unsigned char *out = scratch;
		size_t room = SCRATCH, got;

		/* commits, trees and tags inflate straight into place */
		if (ip->content) {
			out = ip->content + ip->inflated;
			room = o->size - ip->inflated;
			if (room == 0) {
				out = scratch;
				room = 1;
			} else if (room > UINT32_MAX) {
				room = UINT32_MAX;
			}
		}
		ip->z.next_in = (unsigned char *)(uintptr_t)(p + used);
		ip->z.avail_in = in;
		ip->z.next_out = out;
		ip->z.avail_out = (uInt)room;
		r = inflate(&ip->z, Z_NO_FLUSH);
		used += in - ip->z.avail_in;
		got = room - ip->z.avail_out;
		if (ip->inflated + got > o->size)
			return error_set("bad pack: object %u inflates past "
					 "its size", ip->n - 1);
		if (o->type < PACK_OFS_DELTA)
			pack_hash_update(&ip->obj_sum, out, got);
		ip->inflated += got;
		if (r == Z_STREAM_END) {
			o->crc = (uint32_t)crc32(o->crc, p,
						 (uInt)used);
			if (object_ends(ip) < 0)
				return -1;
			return (ssize_t)used;
		}
		if (r != Z_OK && !(r == Z_BUF_ERROR && ip->z.avail_in == 0))
			return error_set("bad pack: object %u has corrupt "
					 "data", ip->n - 1);
	}
	o->crc = (uint32_t)crc32(o->crc, p, (uInt)used);
	return (ssize_t)used;
}

ssize_t indexpack_feed(struct indexpack *ip, const void *data, size_t len)
{
	const unsigned char *p = data;
	size_t off = 0;

	if (len > UINT32_MAX)
		len = UINT32_MAX;	/* crc32 takes uInt; callers loop */
	while (off < len && ip->state != S_DONE) {
		size_t take, start = off;
		ssize_t n;
		int r;

		switch (ip->state) {
		case S_HEADER:
		case S_TRAILER:
			take = ip->need - ip->hdr_len;
			if (take > len - off)
				take = len - off;
			memcpy(ip->hdr + ip->hdr_len, p + off, take);
			ip->hdr_len += take;
			off += take;
			if (ip->state == S_HEADER)
				pack_hash_update(&ip->pack_sum, p + start,
						 take);
			if (ip->hdr_len < ip->need)
				break;
			if (ip->state == S_HEADER) {
				if (parse_pack_header(ip) < 0)
					return -1;
			} else {
				pack_hash_final(&ip->pack_sum, ip->trailer);
				if (memcmp(ip->trailer, ip->hdr, PACK_ID_LEN))
					return error_set("bad pack: checksum "
							 "mismatch");
				ip->state = S_DONE;
			}
			break;
		case S_OBJHDR:
			off++;
			r = objhdr_byte(ip, p[start]);
			pack_hash_update(&ip->pack_sum, p + start, 1);
			if (r < 0)
				return -1;
			if (r == 1) {
				/* object_begins() wants the offset past it */
				ip->offset++;
				r = object_begins(ip);
				ip->offset--;
				if (r < 0)
					return -1;
			}
			break;
		case S_DATA:
			n = data_bytes(ip, p + off, len - off);
			if (n < 0)
				return -1;
			pack_hash_update(&ip->pack_sum, p + off, (size_t)n);
			off += (size_t)n;
			break;
		}
		ip->offset += off - start;
	}
	if (off && write_all(ip->fd, p, off) < 0)
		return error_setsys("cannot write '%s'", ip->tmp);
	ip->prog.bytes = ip->offset;
	return (ssize_t)off;
}

/* ---- phase 2: deltas -------------------------------------------------- */

static int cmp_ref(const void *a, const void *b)
{
	const struct ref_edge *x = a, *y = b;
	int c = memcmp(x->base, y->base, PACK_ID_LEN);

	if (c)
		return c;
	return x->child < y->child ? -1 : x->child > y->child;
}

/* The ref-deltas on base id: [*lo, *hi) of ip->refs. */
static void ref_range(const struct indexpack *ip, const unsigned char *id,
		      uint32_t *lo_out, uint32_t *hi_out)
{
	uint32_t lo = 0, hi = ip->n_refs, a;

	while (lo < hi) {
		uint32_t mid = lo + (hi - lo) / 2;

		if (memcmp(ip->refs[mid].base, id, PACK_ID_LEN) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	a = lo;
	hi = ip->n_refs;
	while (lo < hi) {
		uint32_t mid = lo + (hi - lo) / 2;

		if (memcmp(ip->refs[mid].base, id, PACK_ID_LEN) <= 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	*lo_out = a;
	*hi_out = lo;
}

static uint64_t obj_end(const struct indexpack *ip, uint32_t i)
{
	return i + 1 < ip->n ? ip->objs[i + 1].offset : ip->pack_end;
}

/* Inflate object i's own data (a whole object or a delta). */
static int inflate_obj(struct worker *w, uint32_t i, unsigned char **out)
{
	struct indexpack *ip = w->ip;
	const struct ip_obj *o = &ip->objs[i];
	uint64_t start = o->offset + o->hdr_len, end = obj_end(ip, i);
	unsigned char *buf;
	size_t used;

	*out = NULL;
	if (start > end || end > ip->map_len)
		return error_set("bad pack: object %u is out of bounds", i);
	buf = xmalloc(o->size ? o->size : 1);
	if (pack_inflate(&w->z, ip->map + start, end - start, buf, o->size,
			 &used) < 0) {
		free(buf);
		return -1;
	}
	*out = buf;
	return 0;
}

static void push_frame(struct worker *w, uint32_t obj, unsigned char *data,
		       size_t len)
{
	struct indexpack *ip = w->ip;
	struct frame *f;

	if (w->depth == w->st_alloc) {
		w->st_alloc = w->st_alloc ? w->st_alloc * 2 : 64;
		w->st = xrealloc(w->st, w->st_alloc * sizeof(*w->st));
	}
	f = &w->st[w->depth++];
	f->obj = obj;
	f->data = data;
	f->len = len;
	f->ofs_next = ip->child_start[obj];
	f->ofs_end = ip->child_start[obj + 1];
	ref_range(ip, ip->objs[obj].id, &f->ref_next, &f->ref_end);
	w->held += data ? len : 0;
	/* over the budget: drop the oldest bases, made again if needed */
	if (w->held > INDEXPACK_CACHE) {
		size_t k;

		for (k = 0; k + 1 < w->depth && w->held > INDEXPACK_CACHE;
		     k++) {
			if (!w->st[k].data)
				continue;
			w->held -= w->st[k].len;
			FREE_AND_NULL(w->st[k].data);
		}
	}
}

/* Make sure frame k has its data: from the nearest frame below that has,
 * or from the root, applying the deltas on the way. */
static int frame_data(struct worker *w, size_t k)
{
	struct indexpack *ip = w->ip;
	unsigned char *cur = NULL, *delta = NULL, *res;
	size_t j, len = 0;
	int own = 1;

	if (w->st[k].data)
		return 0;
	for (j = k; j > 0 && !w->st[j - 1].data; j--)
		;
	/* frames j..k lack data; j - 1 has it, or j is the root (0) */
	if (j == 0) {
		if (inflate_obj(w, w->st[0].obj, &cur) < 0)
			return -1;
		len = ip->objs[w->st[0].obj].size;
		j = 1;
	} else {
		cur = w->st[j - 1].data;
		len = w->st[j - 1].len;
		own = 0;
	}
	for (; j <= k; j++) {
		if (inflate_obj(w, w->st[j].obj, &delta) < 0 ||
		    pack_apply_delta(&res, &len, cur, len, delta,
				     ip->objs[w->st[j].obj].size,
				     ip->o.max_object) < 0)
			goto fail;
		FREE_AND_NULL(delta);
		if (own)
			free(cur);
		cur = res;
		own = 1;
	}
	w->st[k].data = cur;
	w->st[k].len = len;
	w->held += len;
	return 0;
fail:
	free(delta);
	if (own)
		free(cur);
	return -1;
}

static int has_children(const struct indexpack *ip, uint32_t i)
{
	uint32_t lo, hi;

	if (ip->child_start[i] != ip->child_start[i + 1])
		return 1;
	ref_range(ip, ip->objs[i].id, &lo, &hi);
	return lo != hi;
}

/* Resolve every delta on the whole object root, depth first. */
static int resolve_family(struct worker *w, uint32_t root)
{
	struct indexpack *ip = w->ip;
	int ret = -1;

	push_frame(w, root, NULL, 0);
	while (w->depth) {
		struct frame *f = &w->st[w->depth - 1];
		struct ip_obj *c, *b = &ip->objs[f->obj];
		unsigned char *delta = NULL, *res = NULL;
		uint32_t ci;
		size_t len;

		if (f->ofs_next < f->ofs_end) {
			ci = ip->children[f->ofs_next++];
		} else if (f->ref_next < f->ref_end) {
			ci = ip->refs[f->ref_next++].child;
		} else {
			w->held -= f->data ? f->len : 0;
			free(f->data);
			w->depth--;
			continue;
		}
		c = &ip->objs[ci];
		/* a ref-delta's base id may appear twice: first one wins */
		if (__atomic_exchange_n(&c->resolved, 1, __ATOMIC_ACQ_REL))
			continue;
		if (w->depth > INDEXPACK_MAX_DEPTH) {
			error_set("bad pack: delta chain deeper than %d",
				  INDEXPACK_MAX_DEPTH);
			goto out;
		}
		if (frame_data(w, w->depth - 1) < 0)
			goto out;
		f = &w->st[w->depth - 1];
		if (inflate_obj(w, ci, &delta) < 0 ||
		    pack_apply_delta(&res, &len, f->data, f->len, delta,
				     c->size, ip->o.max_object) < 0) {
			char why[256];

			free(delta);
			snprintf(why, sizeof(why), "%s", error_last());
			error_set("bad pack: object %u: %s", ci, why);
			goto out;
		}
		free(delta);
		c->rtype = b->rtype;
		pack_object_id(c->id, c->rtype, res, len);
		if (c->rtype != PACK_BLOB &&
		    pack_object_links(c->rtype, res, len, note_link, w) < 0) {
			free(res);
			goto out;
		}
		__atomic_add_fetch(&ip->resolved, 1, __ATOMIC_RELAXED);
		if (has_children(ip, ci))
			push_frame(w, ci, res, len);
		else
			free(res);
	}
	ret = 0;
out:
	while (w->depth) {
		free(w->st[w->depth - 1].data);
		w->depth--;
	}
	w->held = 0;
	return ret;
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	struct indexpack *ip = w->ip;

	for (;;) {
		uint32_t i = __atomic_fetch_add(&ip->next_root, 1,
						__ATOMIC_RELAXED);

		if (i >= ip->roots_end ||
		    __atomic_load_n(&ip->w[0].failed, __ATOMIC_RELAXED))
			break;
		if (ip->objs[i].type >= PACK_OFS_DELTA ||
		    !has_children(ip, i))
			continue;
		if (resolve_family(w, i) < 0) {
			snprintf(w->err, sizeof(w->err), "%s", error_last());
			__atomic_store_n(&w->failed, 1, __ATOMIC_RELAXED);
			/* tell the others (they look at worker 0) */
			__atomic_store_n(&ip->w[0].failed, 1,
					 __ATOMIC_RELAXED);
			break;
		}
		/* the caller's thread reports progress */
		if (w == &ip->w[0]) {
			ip->prog.resolved = __atomic_load_n(&ip->resolved,
							    __ATOMIC_RELAXED);
			report(ip);
		}
	}
	return NULL;
}

/* Resolve the families whose roots are objects [from, n). */
static int resolve_round(struct indexpack *ip, uint32_t from)
{
	int i, started = 1, ret = 0;

	ip->next_root = from;
	ip->roots_end = ip->n;
	for (i = 0; i < ip->threads; i++) {
		ip->w[i].failed = 0;
		ip->w[i].err[0] = '\0';
	}
	for (i = 1; i < ip->threads; i++) {
		if (pthread_create(&ip->w[i].th, NULL, worker_main,
				   &ip->w[i]) != 0)
			break;
		started++;
	}
	worker_main(&ip->w[0]);
	for (i = 1; i < started; i++)
		pthread_join(ip->w[i].th, NULL);
	for (i = 0; i < started; i++)
		if (ip->w[i].failed && ip->w[i].err[0]) {
			error_set("%s", ip->w[i].err);
			ret = -1;
			break;
		}
	if (ret == 0 && ip->w[0].failed)
		ret = error_set("bad pack: cannot resolve deltas");
	ip->prog.resolved = ip->resolved;
	report(ip);
	return ret;
}

static int map_pack(struct indexpack *ip, size_t len)
{
	void *m;

	if (ip->map)
		munmap((void *)(uintptr_t)ip->map, ip->map_len);
	ip->map = NULL;
	m = mmap(NULL, len, PROT_READ, MAP_SHARED, ip->fd, 0);
	if (m == MAP_FAILED)
		return error_setsys("cannot map '%s'", ip->tmp);
	ip->map = m;
	ip->map_len = len;
	return 0;
}

/* ofs-deltas by base: child_start[i]..child_start[i+1] in children. */
static void index_children(struct indexpack *ip)
{
	uint32_t i, *fill;

	free(ip->child_start);
	free(ip->children);
	ip->child_start = xcalloc((size_t)ip->n + 2,
				  sizeof(*ip->child_start));
	for (i = 0; i < ip->n; i++)
		if (ip->objs[i].type == PACK_OFS_DELTA)
			ip->child_start[ip->objs[i].base + 1]++;
	for (i = 0; i < ip->n; i++)
		ip->child_start[i + 1] += ip->child_start[i];
	ip->child_start[ip->n + 1] = ip->child_start[ip->n];
	ip->children = xmalloc(((size_t)ip->child_start[ip->n] + 1) *
			       sizeof(*ip->children));
	fill = xmalloc(((size_t)ip->n + 1) * sizeof(*fill));
	memcpy(fill, ip->child_start, (size_t)ip->n * sizeof(*fill));
	for (i = 0; i < ip->n; i++)
		if (ip->objs[i].type == PACK_OFS_DELTA)
			ip->children[fill[ip->objs[i].base]++] = i;
	free(fill);
}

static int cmp_by_id(const void *a, const void *b, void *arg)
{
	const struct indexpack *ip = arg;

	return memcmp(ip->objs[*(const uint32_t *)a].id,
		      ip->objs[*(const uint32_t *)b].id, PACK_ID_LEN);
}

static void sort_by_id(struct indexpack *ip)
{
	uint32_t i;

	free(ip->by_id);
	ip->by_id = xmalloc(((size_t)ip->n + 1) * sizeof(*ip->by_id));
	for (i = 0; i < ip->n; i++)
		ip->by_id[i] = i;
	if (ip->n)
		qsort_r(ip->by_id, ip->n, sizeof(*ip->by_id), cmp_by_id, ip);
	ip->n_by_id = ip->n;
}

/* The index of the resolved object id, or -1 (needs by_id). */
static int64_t find_id(const struct indexpack *ip, const unsigned char *id)
{
	/* not ip->n: bases appended since are past the end of by_id */
	uint32_t lo = 0, hi = ip->n_by_id;

	while (lo < hi) {
		uint32_t mid = lo + (hi - lo) / 2;
		int c = memcmp(ip->objs[ip->by_id[mid]].id, id, PACK_ID_LEN);

		if (c == 0)
			return ip->by_id[mid];
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return -1;
}

/* Append a whole object from the repository at the end of the pack. */
static int append_base(struct indexpack *ip, const unsigned char *id)
{
	unsigned char *data = NULL, *zbuf = NULL, hdr[PACK_HDR_MAX];
	unsigned char check[PACK_ID_LEN];
	char hex[41];
	struct ip_obj *o;
	size_t len = 0, hl;
	uLongf zlen;
	int type, ret = -1;

	pack_id_hex(hex, id);
	if (!ip->o.read_base ||
	    ip->o.read_base(ip->o.arg, id, &type, &data, &len) < 0)
		return error_set("bad pack: delta base %s is missing", hex);
	pack_object_id(check, type, data, len);
	if (memcmp(check, id, PACK_ID_LEN) || !pack_type_name(type)) {
		error_set("object %s in the repository is corrupt", hex);
		goto out;
	}
	hl = pack_encode_header(hdr, type, len);
	zlen = compressBound((uLong)len);
	zbuf = xmalloc(zlen);
	if (compress2(zbuf, &zlen, data, (uLong)len, Z_DEFAULT_COMPRESSION) !=
	    Z_OK) {
		error_set("cannot compress object %s", hex);
		goto out;
	}
	o = new_obj(ip);
	if (!o)
		goto out;
	o->offset = ip->pack_end;
	o->size = len;
	o->type = o->rtype = (uint8_t)type;
	o->hdr_len = (uint8_t)hl;
	o->resolved = 1;
	memcpy(o->id, id, PACK_ID_LEN);
	o->crc = (uint32_t)crc32(crc32(0, hdr, (uInt)hl), zbuf, (uInt)zlen);
	if (pwrite(ip->fd, hdr, hl, (off_t)ip->pack_end) != (ssize_t)hl ||
	    pwrite(ip->fd, zbuf, zlen, (off_t)(ip->pack_end + hl)) !=
		    (ssize_t)zlen) {
		error_setsys("cannot write '%s'", ip->tmp);
		goto out;
	}
	ip->pack_end += hl + zlen;
	ip->prog.local++;
	ret = 0;
out:
	free(data);
	free(zbuf);
	return ret;
}

/* A thin pack: the bases its ref-deltas still lack come from the
 * repository; 1 if some were added, 0 if none is needed. */
static int complete_thin(struct indexpack *ip)
{
	uint32_t i, added = 0;

	sort_by_id(ip);
	for (i = 0; i < ip->n_refs; i++) {
		const struct ref_edge *e = &ip->refs[i];

		if (ip->objs[e->child].resolved ||
		    (i > 0 && !memcmp(ip->refs[i - 1].base, e->base,
				      PACK_ID_LEN)))
			continue;
		if (find_id(ip, e->base) >= 0)
			continue;	/* an unresolved delta: see below */
		if (append_base(ip, e->base) < 0)
			return -1;
		added++;
	}
	return added ? 1 : 0;
}

/* After appending bases: the new count in the header, a new trailer. */
static int rewrite_ends(struct indexpack *ip)
{
	unsigned char cnt[4];
	struct pack_hash h;

	cnt[0] = (unsigned char)(ip->n >> 24);
	cnt[1] = (unsigned char)(ip->n >> 16);
	cnt[2] = (unsigned char)(ip->n >> 8);
	cnt[3] = (unsigned char)ip->n;
	if (pwrite(ip->fd, cnt, 4, 8) != 4)
		return error_setsys("cannot write '%s'", ip->tmp);
	if (map_pack(ip, ip->pack_end) < 0)
		return -1;
	pack_hash_init(&h);
	pack_hash_update(&h, ip->map, ip->pack_end);
	pack_hash_final(&h, ip->trailer);
	if (pwrite(ip->fd, ip->trailer, PACK_ID_LEN, (off_t)ip->pack_end) !=
	    PACK_ID_LEN ||
	    ftruncate(ip->fd, (off_t)(ip->pack_end + PACK_ID_LEN)) < 0)
		return error_setsys("cannot write '%s'", ip->tmp);
	return 0;
}

/* Every link of every commit, tree and tag: in the pack or in the
 * repository.  The first that is neither is kept in ip->missing. */
static void check_closure(struct indexpack *ip)
{
	int t;

	for (t = 0; t < MAX_THREADS && !ip->has_missing; t++) {
		struct oidset *s = &ip->w[t].links;
		size_t i;

		for (i = 0; i < s->cap && !ip->has_missing; i++) {
			const unsigned char *id = s->slots[i].id.id;

			if (!s->slots[i].used || find_id(ip, id) >= 0)
				continue;
			if (t > 0 && oidset_contains(&ip->w[0].links,
						     &s->slots[i].id))
				continue;	/* asked already */
			if (ip->o.have && ip->o.have(ip->o.arg, id))
				continue;
			memcpy(ip->missing, id, PACK_ID_LEN);
			ip->has_missing = 1;
		}
		/* set 0 stays: the later sets skip what it held */
		if (t > 0)
			oidset_release(s);
	}
}

int indexpack_finish(struct indexpack *ip, char hex[41])
{
	struct pack_idx_entry **sorted = NULL, *entries = NULL;
	char *path = NULL;
	uint32_t i, first_new;
	int r, ret = -1;

	if (ip->state != S_DONE)
		return error_set("bad pack: the pack is incomplete");
	for (i = 0; i < MAX_THREADS; i++) {
		if (ip->w[i].z_live)
			continue;
		if (inflateInit(&ip->w[i].z) != Z_OK)
			return error_set("out of memory");
		ip->w[i].z_live = 1;
	}
	ip->pack_end = ip->offset - PACK_ID_LEN;
	ip->prog.deltas = ip->n_deltas;
	if (ip->n_refs)	/* qsort() of NULL is undefined, even for 0 */
		qsort(ip->refs, ip->n_refs, sizeof(*ip->refs), cmp_ref);
	index_children(ip);
	if (map_pack(ip, ip->offset) < 0)
		goto out;
	first_new = 0;
	for (;;) {
		if (ip->resolved < ip->n_deltas &&
		    resolve_round(ip, first_new) < 0)
			goto out;
		if (ip->resolved == ip->n_deltas)
			break;
		first_new = ip->n;
		r = complete_thin(ip);
		if (r < 0)
			goto out;
		if (r == 0) {
			error_set("bad pack: %u deltas cannot be resolved",
				  ip->n_deltas - ip->resolved);
			goto out;
		}
		index_children(ip);
		if (map_pack(ip, ip->pack_end) < 0)
			goto out;
	}
	phase_trace("indexpack: %u deltas resolved on %d threads",
		    ip->resolved, ip->threads);
	if (ip->prog.local && rewrite_ends(ip) < 0)
		goto out;
	sort_by_id(ip);
	entries = xmalloc(((size_t)ip->n + 1) * sizeof(*entries));
	sorted = xmalloc(((size_t)ip->n + 1) * sizeof(*sorted));
	for (i = 0; i < ip->n; i++) {
		const struct ip_obj *o = &ip->objs[ip->by_id[i]];

		if (i > 0 && !memcmp(o->id, ip->objs[ip->by_id[i - 1]].id,
				     PACK_ID_LEN)) {
			char h[41];

			pack_id_hex(h, o->id);
			error_set("bad pack: object %s is in it twice", h);
			goto out;
		}
		memcpy(entries[i].id, o->id, PACK_ID_LEN);
		entries[i].crc = o->crc;
		entries[i].offset = o->offset;
		sorted[i] = &entries[i];
	}
	phase_trace("indexpack: sorted");
	check_closure(ip);
	phase_trace("indexpack: closure checked");
	pack_id_hex(hex, ip->trailer);
	path = xasprintf("%s/pack-%s.pack", ip->dir, hex);
	if (fchmod(ip->fd, 0444) < 0 || fsync(ip->fd) < 0 ||
	    rename(ip->tmp, path) < 0) {
		error_setsys("cannot write '%s'", path);
		goto out;
	}
	free(ip->tmp);
	ip->tmp = path;
	path = xasprintf("%s/pack-%s.idx", ip->dir, hex);
	phase_trace("indexpack: pack synced");
	if (pack_write_idx(path, sorted, ip->n, ip->trailer) < 0)
		goto out;
	phase_trace("indexpack: idx written");
	ip->finished = 1;
	ret = 0;
out:
	free(path);
	free(sorted);
	free(entries);
	return ret;
}

int indexpack_lookup(const struct indexpack *ip, const unsigned char *id)
{
	int64_t i;

	if (!ip->finished)
		return 0;
	i = find_id(ip, id);
	return i < 0 ? 0 : ip->objs[i].rtype;
}

const unsigned char *indexpack_missing(const struct indexpack *ip)
{
	return ip->has_missing ? ip->missing : NULL;
}

void indexpack_free(struct indexpack *ip)
{
	int i;

	if (!ip)
		return;
	if (ip->map)
		munmap((void *)(uintptr_t)ip->map, ip->map_len);
	if (ip->fd >= 0)
		close(ip->fd);
	if (ip->tmp && !ip->finished)
		unlink(ip->tmp);
	if (ip->z_live)
		inflateEnd(&ip->z);
	for (i = 0; i < MAX_THREADS; i++) {
		if (ip->w[i].z_live)
			inflateEnd(&ip->w[i].z);
		oidset_release(&ip->w[i].links);
		free(ip->w[i].st);
	}
	free(ip->content);
	free(ip->tmp);
	free(ip->dir);
	free(ip->objs);
	free(ip->refs);
	free(ip->child_start);
	free(ip->children);
	free(ip->by_id);
	free(ip);
}
