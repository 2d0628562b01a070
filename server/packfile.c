/* packfile: see packfile.h.  The formats: gitformat-pack(5). */
#define OPENSSL_SUPPRESS_DEPRECATED	/* SHA1_*: the fastest way in */
#include "packfile.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/sha.h>

#include "util.h"
#include "banned.h"

_Static_assert(sizeof(SHA_CTX) <= sizeof(((struct pack_hash *)0)->ctx),
	       "SHA_CTX fits");

const char *pack_type_name(int type)
{
	switch (type) {
	case PACK_COMMIT:
		return "commit";
	case PACK_TREE:
		return "tree";
	case PACK_BLOB:
		return "blob";
	case PACK_TAG:
		return "tag";
	}
	return NULL;
}

/* ---- ids -------------------------------------------------------------- */

void pack_hash_init(struct pack_hash *h)
{
	SHA1_Init((SHA_CTX *)(void *)h->ctx);
}

void pack_hash_object(struct pack_hash *h, int type, uint64_t size)
{
	char hdr[64];
	int n = snprintf(hdr, sizeof(hdr), "%s %llu", pack_type_name(type),
			 (unsigned long long)size);

	pack_hash_init(h);
	pack_hash_update(h, hdr, (size_t)n + 1);
}

void pack_hash_update(struct pack_hash *h, const void *data, size_t len)
{
	SHA1_Update((SHA_CTX *)(void *)h->ctx, data, len);
}

void pack_hash_final(struct pack_hash *h, unsigned char out[PACK_ID_LEN])
{
	SHA1_Final(out, (SHA_CTX *)(void *)h->ctx);
}

void pack_object_id(unsigned char out[PACK_ID_LEN], int type,
		    const void *data, size_t len)
{
	struct pack_hash h;

	pack_hash_object(&h, type, len);
	pack_hash_update(&h, data, len);
	pack_hash_final(&h, out);
}

void pack_id_hex(char out[41], const unsigned char id[PACK_ID_LEN])
{
	static const char hex[] = "0123456789abcdef";
	int i;

	for (i = 0; i < PACK_ID_LEN; i++) {
		out[2 * i] = hex[id[i] >> 4];
		out[2 * i + 1] = hex[id[i] & 15];
	}
	out[40] = '\0';
}

/* ---- headers ---------------------------------------------------------- */

size_t pack_encode_header(unsigned char *out, int type, uint64_t size)
{
	size_t n = 0;
	unsigned char c = (unsigned char)(type << 4 | (size & 15));

	size >>= 4;
	while (size) {
		out[n++] = c | 0x80;
		c = size & 0x7f;
		size >>= 7;
	}
	out[n++] = c;
	return n;
}

size_t pack_encode_ofs(unsigned char *out, uint64_t dist)
{
	unsigned char tmp[16];
	size_t pos = sizeof(tmp) - 1;

	tmp[pos] = dist & 0x7f;
	while (dist >>= 7)
		tmp[--pos] = 0x80 | (--dist & 0x7f);
	memcpy(out, tmp + pos, sizeof(tmp) - pos);
	return sizeof(tmp) - pos;
}

int pack_parse_header(const unsigned char *p, size_t avail, int *type,
		      uint64_t *size, uint64_t *base_dist,
		      unsigned char base_id[PACK_ID_LEN], size_t *hdr_len)
{
	size_t i = 0;
	unsigned shift = 4;
	unsigned char c;
	uint64_t sz;

	if (avail < 1)
		return -1;
	c = p[i++];
	*type = (c >> 4) & 7;
	sz = c & 15;
	while (c & 0x80) {
		if (i >= avail || shift > 64 - 7)
			return -1;
		c = p[i++];
		sz |= (uint64_t)(c & 0x7f) << shift;
		shift += 7;
	}
	*size = sz;
	if (*type == PACK_OFS_DELTA) {
		uint64_t d;

		if (i >= avail)
			return -1;
		c = p[i++];
		d = c & 0x7f;
		while (c & 0x80) {
			if (i >= avail || d > (UINT64_MAX >> 8))
				return -1;
			c = p[i++];
			d = ((d + 1) << 7) | (c & 0x7f);
		}
		*base_dist = d;
	} else if (*type == PACK_REF_DELTA) {
		if (avail - i < PACK_ID_LEN)
			return -1;
		memcpy(base_id, p + i, PACK_ID_LEN);
		i += PACK_ID_LEN;
	} else if (*type < PACK_COMMIT || *type > PACK_TAG) {
		return -1;
	}
	*hdr_len = i;
	return 0;
}

/* ---- deltas ----------------------------------------------------------- */

static int delta_varint(const unsigned char **p, const unsigned char *end,
			uint64_t *out)
{
	uint64_t v = 0;
	unsigned shift = 0;
	unsigned char c;

	do {
		if (*p >= end || shift > 63)
			return -1;
		c = *(*p)++;
		v |= (uint64_t)(c & 0x7f) << shift;
		shift += 7;
	} while (c & 0x80);
	*out = v;
	return 0;
}

int pack_apply_delta(unsigned char **out, size_t *out_len,
		     const unsigned char *base, size_t base_len,
		     const unsigned char *delta, size_t delta_len,
		     uint64_t max)
{
	const unsigned char *p = delta, *end = delta + delta_len;
	unsigned char *res = NULL, *w, *wend;
	uint64_t bsize, rsize;

	*out = NULL;
	if (delta_varint(&p, end, &bsize) < 0 ||
	    delta_varint(&p, end, &rsize) < 0)
		return error_set("bad delta: truncated header");
	if (bsize != base_len)
		return error_set("bad delta: base is %zu bytes, delta says "
				 "%llu", base_len, (unsigned long long)bsize);
	if (rsize > max || rsize > SIZE_MAX - 1)
		return error_set("bad delta: result of %llu bytes is over "
				 "the limit", (unsigned long long)rsize);
	res = xmalloc(rsize ? rsize : 1);
	w = res;
	wend = res + rsize;
	while (p < end) {
		unsigned char cmd = *p++;

		if (cmd & 0x80) {
			uint64_t off = 0, len = 0;
			int i;

			for (i = 0; i < 4; i++)
				if (cmd & (1 << i)) {
					if (p >= end)
						goto bad;
					off |= (uint64_t)*p++ << (8 * i);
				}
			for (i = 0; i < 3; i++)
				if (cmd & (0x10 << i)) {
					if (p >= end)
						goto bad;
					len |= (uint64_t)*p++ << (8 * i);
				}
			if (len == 0)
				len = 0x10000;
			if (off > base_len || len > base_len - off ||
			    len > (uint64_t)(wend - w))
				goto bad;
			memcpy(w, base + off, len);
			w += len;
		} else if (cmd) {
			if (cmd > end - p || cmd > wend - w)
				goto bad;
			memcpy(w, p, cmd);
			w += cmd;
			p += cmd;
		} else {
			goto bad;
		}
	}
	if (w != wend) {
		size_t got = (size_t)(w - res);

		free(res);
		return error_set("bad delta: result is %zu bytes, not the "
				 "%llu it says", got, (unsigned long long)rsize);
	}
	*out = res;
	*out_len = rsize;
	return 0;
bad:
	free(res);
	return error_set("bad delta: an instruction is out of bounds");
}

int pack_inflate(z_stream *z, const unsigned char *in, size_t in_len,
		 void *out, size_t out_len, size_t *used)
{
	unsigned char *o = out, extra;
	size_t in_off = 0, out_off = 0;
	int r, past = 0;

	if (inflateReset(z) != Z_OK)
		return error_set("bad pack: zlib reset failed");
	z->avail_in = 0;
	z->avail_out = 0;
	for (;;) {
		if (z->avail_in == 0 && in_off < in_len) {
			size_t n = in_len - in_off;

			z->next_in = (unsigned char *)(uintptr_t)(in + in_off);
			z->avail_in = n > UINT32_MAX ? UINT32_MAX : (uInt)n;
			in_off += z->avail_in;
		}
		if (z->avail_out == 0) {
			if (past)
				return error_set("bad pack: object inflates "
						 "past its size");
			if (out_off < out_len) {
				size_t n = out_len - out_off;

				z->next_out = o + out_off;
				z->avail_out = n > UINT32_MAX ? UINT32_MAX
							      : (uInt)n;
				out_off += z->avail_out;
			} else {
				/* full: the stream must end with no more */
				z->next_out = &extra;
				z->avail_out = 1;
				past = 1;
			}
		}
		r = inflate(z, Z_NO_FLUSH);
		if (r == Z_STREAM_END)
			break;
		if (r == Z_OK)
			continue;
		if (r == Z_BUF_ERROR && z->avail_in == 0 && in_off == in_len)
			return error_set("bad pack: object data is cut short");
		if (r != Z_BUF_ERROR)
			return error_set("bad pack: corrupt object data");
	}
	if ((past && z->avail_out == 0) || (!past && z->avail_out != 0) ||
	    (!past && out_off != out_len))
		return error_set("bad pack: object inflates to the wrong size");
	*used = in_off - z->avail_in;
	return 0;
}

/* ---- links -------------------------------------------------------------- */

static int hex_id(unsigned char *out, const unsigned char *p)
{
	int i;

	for (i = 0; i < 40; i++) {
		int v = hex_value((char)p[i]);

		if (v < 0)
			return -1;
		if (i % 2)
			out[i / 2] |= (unsigned char)v;
		else
			out[i / 2] = (unsigned char)(v << 4);
	}
	return 0;
}

/* "WORD HEX40\n" at *p: the id; advances *p. */
static int header_id(const unsigned char **p, const unsigned char *end,
		     const char *word, unsigned char *id)
{
	size_t wl = strlen(word);

	if ((size_t)(end - *p) < wl + 42 || memcmp(*p, word, wl) ||
	    (*p)[wl] != ' ' || (*p)[wl + 41] != '\n' ||
	    hex_id(id, *p + wl + 1) < 0)
		return -1;
	*p += wl + 42;
	return 0;
}

int pack_object_links(int type, const unsigned char *data, size_t len,
		      void (*fn)(void *arg, const unsigned char *id),
		      void *arg)
{
	const unsigned char *p = data, *end = data + len;
	unsigned char id[PACK_ID_LEN];

	switch (type) {
	case PACK_COMMIT:
		if (header_id(&p, end, "tree", id) < 0)
			return error_set("bad pack: a commit without a tree");
		fn(arg, id);
		while (header_id(&p, end, "parent", id) == 0)
			fn(arg, id);
		return 0;
	case PACK_TAG:
		if (header_id(&p, end, "object", id) < 0)
			return error_set("bad pack: a tag without an object");
		fn(arg, id);
		return 0;
	case PACK_TREE:
		while (p < end) {
			const unsigned char *mode = p, *nul;
			int gitlink;

			while (p < end && *p >= '0' && *p <= '7')
				p++;
			if (p == mode || p >= end || *p != ' ')
				goto bad_tree;
			gitlink = p - mode == 6 && !memcmp(mode, "160000", 6);
			nul = memchr(p, '\0', (size_t)(end - p));
			if (!nul || nul == p + 1 ||
			    (size_t)(end - nul) < 1 + PACK_ID_LEN)
				goto bad_tree;
			if (!gitlink)
				fn(arg, nul + 1);
			p = nul + 1 + PACK_ID_LEN;
		}
		return 0;
bad_tree:
		return error_set("bad pack: a malformed tree");
	}
	return 0;
}

/* ---- idx writing ------------------------------------------------------ */

static void put32(unsigned char *p, uint32_t v)
{
	p[0] = (unsigned char)(v >> 24);
	p[1] = (unsigned char)(v >> 16);
	p[2] = (unsigned char)(v >> 8);
	p[3] = (unsigned char)v;
}

struct idx_out {
	int fd;
	SHA_CTX sha;
	unsigned char buf[65536];
	size_t len;
	int err;
};

static void idx_put(struct idx_out *o, const void *data, size_t len)
{
	const unsigned char *p = data;

	SHA1_Update(&o->sha, data, len);
	while (len && !o->err) {
		size_t n = sizeof(o->buf) - o->len;

		if (n > len)
			n = len;
		memcpy(o->buf + o->len, p, n);
		o->len += n;
		p += n;
		len -= n;
		if (o->len == sizeof(o->buf)) {
			if (write_all(o->fd, o->buf, o->len) < 0)
				o->err = 1;
			o->len = 0;
		}
	}
}

int pack_write_idx(const char *path, struct pack_idx_entry *const *sorted,
		   size_t n, const unsigned char pack_sum[PACK_ID_LEN])
{
	static const unsigned char magic[8] = { 0xff, 't', 'O', 'c',
						0, 0, 0, 2 };
	struct idx_out *o = xcalloc(1, sizeof(*o));
	unsigned char b[8], sum[PACK_ID_LEN];
	char *tmp = xasprintf("%s.tmp", path);
	uint32_t fan[256], n64 = 0;
	size_t i;
	int ret = -1;

	o->fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0444);
	if (o->fd < 0) {
		error_setsys("cannot create '%s'", tmp);
		goto out;
	}
	SHA1_Init(&o->sha);
	memset(fan, 0, sizeof(fan));
	for (i = 0; i < n; i++)
		fan[sorted[i]->id[0]]++;
	for (i = 1; i < 256; i++)
		fan[i] += fan[i - 1];
	idx_put(o, magic, sizeof(magic));
	for (i = 0; i < 256; i++) {
		put32(b, fan[i]);
		idx_put(o, b, 4);
	}
	for (i = 0; i < n; i++)
		idx_put(o, sorted[i]->id, PACK_ID_LEN);
	for (i = 0; i < n; i++) {
		put32(b, sorted[i]->crc);
		idx_put(o, b, 4);
	}
	for (i = 0; i < n; i++) {
		uint64_t off = sorted[i]->offset;

		put32(b, off < 0x80000000u ? (uint32_t)off
					   : 0x80000000u | n64++);
		idx_put(o, b, 4);
	}
	for (i = 0; i < n; i++) {
		uint64_t off = sorted[i]->offset;

		if (off < 0x80000000u)
			continue;
		put32(b, (uint32_t)(off >> 32));
		put32(b + 4, (uint32_t)off);
		idx_put(o, b, 8);
	}
	idx_put(o, pack_sum, PACK_ID_LEN);
	SHA1_Final(sum, &o->sha);
	if (o->err || write_all(o->fd, o->buf, o->len) < 0 ||
	    write_all(o->fd, sum, sizeof(sum)) < 0) {
		error_setsys("cannot write '%s'", tmp);
		goto out;
	}
	if (close(o->fd) < 0) {
		o->fd = -1;
		error_setsys("cannot write '%s'", tmp);
		goto out;
	}
	o->fd = -1;
	if (rename(tmp, path) < 0) {
		error_setsys("cannot rename '%s'", tmp);
		goto out;
	}
	ret = 0;
out:
	if (o->fd >= 0)
		close(o->fd);
	if (ret < 0)
		unlink(tmp);
	free(tmp);
	free(o);
	return ret;
}

/* ---- reading a stored pack ------------------------------------------- */

static uint32_t get32(const void *p)
{
	const unsigned char *c = p;

	return (uint32_t)c[0] << 24 | (uint32_t)c[1] << 16 |
	       (uint32_t)c[2] << 8 | c[3];
}

static int map_file(const char *path, const unsigned char **data,
		    size_t *len)
{
	struct stat st;
	void *m;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return error_setsys("cannot open '%s'", path);
	if (fstat(fd, &st) < 0 || st.st_size <= 0) {
		close(fd);
		return error_set("cannot read '%s'", path);
	}
	m = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
	close(fd);
	if (m == MAP_FAILED)
		return error_setsys("cannot map '%s'", path);
	*data = m;
	*len = (size_t)st.st_size;
	return 0;
}

void pack_reader_free(struct pack_reader *r)
{
	if (!r)
		return;
	if (r->idx)
		munmap((void *)(uintptr_t)r->idx, r->idx_len);
	if (r->pack)
		munmap((void *)(uintptr_t)r->pack, r->pack_len);
	free(r->sorted_offs);
	free(r->order);
	free(r->name);
	free(r);
}

int pack_reader_open(struct pack_reader **out, const char *path)
{
	struct pack_reader *r = xcalloc(1, sizeof(*r));
	char *p = NULL;
	size_t need;
	uint32_t i;

	*out = NULL;
	p = xasprintf("%s.idx", path);
	if (map_file(p, &r->idx, &r->idx_len) < 0)
		goto fail;
	free(p);
	p = xasprintf("%s.pack", path);
	if (map_file(p, &r->pack, &r->pack_len) < 0)
		goto fail;
	r->name = p;
	p = NULL;
	if (r->idx_len < 8 + 1024 + 40 ||
	    memcmp(r->idx, "\377tOc\0\0\0\2", 8) || r->pack_len < 32 ||
	    memcmp(r->pack, "PACK", 4)) {
		error_set("'%s' is not a pack with a version 2 index",
			  r->name);
		goto fail;
	}
	r->fanout = (const uint32_t *)(const void *)(r->idx + 8);
	r->n = get32(&r->fanout[255]);
	need = 8 + 1024 + (size_t)r->n * 28 + 40;
	if (r->idx_len < need || get32(r->pack + 8) != r->n) {
		error_set("'%s': index and pack disagree", r->name);
		goto fail;
	}
	for (i = 1; i < 256; i++)
		if (get32(&r->fanout[i]) < get32(&r->fanout[i - 1])) {
			error_set("'%s': bad index", r->name);
			goto fail;
		}
	r->ids = r->idx + 8 + 1024;
	r->crcs = (const uint32_t *)(const void *)(r->ids +
						   (size_t)r->n * 20);
	r->offs = r->crcs + r->n;
	r->offs64 = (const uint64_t *)(const void *)(r->offs + r->n);
	r->n_offs64 = (r->idx_len - need) / 8;
	*out = r;
	return 0;
fail:
	free(p);
	pack_reader_free(r);
	return -1;
}

int64_t pack_reader_find(const struct pack_reader *r,
			 const unsigned char id[PACK_ID_LEN])
{
	uint32_t lo = id[0] ? get32(&r->fanout[id[0] - 1]) : 0;
	uint32_t hi = get32(&r->fanout[id[0]]);

	while (lo < hi) {
		uint32_t mid = lo + (hi - lo) / 2;
		int c = memcmp(r->ids + (size_t)mid * 20, id, PACK_ID_LEN);

		if (c == 0)
			return mid;
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return -1;
}

uint64_t pack_reader_offset(const struct pack_reader *r, uint32_t pos)
{
	uint32_t o = get32(&r->offs[pos]);

	if (o & 0x80000000u) {
		uint32_t k = o & 0x7fffffffu;
		const unsigned char *q;

		if (k >= r->n_offs64)
			return 0;
		q = (const unsigned char *)&r->offs64[k];
		return (uint64_t)get32(q) << 32 | get32(q + 4);
	}
	return o;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

int pack_reader_index_ends(struct pack_reader *r)
{
	uint64_t *v;
	uint32_t i;

	if (r->sorted_offs)
		return 0;
	/* pairs (offset << 32 would not fit): sort offsets, then map */
	v = xmalloc(((size_t)r->n + 1) * sizeof(*v));
	for (i = 0; i < r->n; i++)
		v[i] = pack_reader_offset(r, i);
	v[r->n] = r->pack_len - PACK_ID_LEN;
	qsort(v, r->n, sizeof(*v), cmp_u64);
	for (i = 0; i < r->n; i++)
		if (v[i] < 12 || v[i] >= v[i + 1]) {
			free(v);
			return error_set("'%s': bad offsets in its index",
					 r->name);
		}
	r->sorted_offs = v;
	/* the index position of each offset, for pack_reader_pos_at() */
	r->order = xmalloc((size_t)r->n * sizeof(*r->order) + 1);
	for (i = 0; i < r->n; i++) {
		uint64_t off = pack_reader_offset(r, i);
		size_t lo = 0, hi = r->n;

		while (lo < hi) {
			size_t mid = lo + (hi - lo) / 2;

			if (v[mid] < off)
				lo = mid + 1;
			else
				hi = mid;
		}
		r->order[lo] = i;
	}
	return 0;
}

static int64_t sorted_pos(const struct pack_reader *r, uint64_t offset)
{
	size_t lo = 0, hi = r->n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (r->sorted_offs[mid] < offset)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo < r->n && r->sorted_offs[lo] == offset)
		return (int64_t)lo;
	return -1;
}

uint64_t pack_reader_end(const struct pack_reader *r, uint64_t offset)
{
	int64_t k;

	if (!r->sorted_offs)
		return 0;
	k = sorted_pos(r, offset);
	return k < 0 ? 0 : r->sorted_offs[k + 1];
}

int64_t pack_reader_pos_at(const struct pack_reader *r, uint64_t offset)
{
	int64_t k;

	if (!r->sorted_offs)
		return -1;
	k = sorted_pos(r, offset);
	return k < 0 ? -1 : (int64_t)r->order[k];
}

#define READ_MAX_DEPTH 10000

int pack_reader_read(const struct pack_reader *r, z_stream *z,
		     uint64_t offset, int *type, unsigned char **data,
		     size_t *len, uint64_t max)
{
	uint64_t chain[64], *deep = NULL, *ch = chain;
	size_t n = 0, cap = 64, dlen, used;
	unsigned char *base = NULL, *delta = NULL, *res;
	size_t base_len = 0;
	int t = 0, ret = -1;

	*data = NULL;
	/* down to a whole object, noting each delta's offset */
	for (;;) {
		uint64_t size, dist = 0, end = r->pack_len - PACK_ID_LEN;
		unsigned char bid[PACK_ID_LEN];
		size_t hl;

		if (offset < 12 || offset >= end ||
		    pack_parse_header(r->pack + offset, end - offset, &t,
				      &size, &dist, bid, &hl) < 0) {
			error_set("'%s': bad object at %llu", r->name,
				  (unsigned long long)offset);
			goto out;
		}
		if (n == cap) {
			if (cap >= READ_MAX_DEPTH) {
				error_set("'%s': delta chain too deep",
					  r->name);
				goto out;
			}
			cap *= 2;
			deep = xrealloc(ch == chain ? NULL : deep,
					cap * sizeof(*deep));
			if (ch == chain)
				memcpy(deep, chain, sizeof(chain));
			ch = deep;
		}
		ch[n++] = offset;
		if (t == PACK_OFS_DELTA) {
			if (dist == 0 || dist > offset) {
				error_set("'%s': bad delta base", r->name);
				goto out;
			}
			offset -= dist;
		} else if (t == PACK_REF_DELTA) {
			int64_t pos = pack_reader_find(r, bid);

			if (pos < 0) {
				error_set("'%s': delta base not in the pack",
					  r->name);
				goto out;
			}
			offset = pack_reader_offset(r, (uint32_t)pos);
		} else {
			if (size > max) {
				error_set("'%s': object too large", r->name);
				goto out;
			}
			base_len = size;
			base = xmalloc(size ? size : 1);
			if (pack_inflate(z, r->pack + offset + hl,
					 end - offset - hl, base, size,
					 &used) < 0)
				goto out;
			n--;
			break;
		}
	}
	/* then back up, applying each delta */
	while (n) {
		uint64_t size, dist, off = ch[--n];
		uint64_t end = r->pack_len - PACK_ID_LEN;
		unsigned char bid[PACK_ID_LEN];
		int dt;
		size_t hl;

		if (pack_parse_header(r->pack + off, end - off, &dt, &size,
				      &dist, bid, &hl) < 0 || size > max) {
			error_set("'%s': bad delta at %llu", r->name,
				  (unsigned long long)off);
			goto out;
		}
		dlen = size;
		delta = xmalloc(dlen ? dlen : 1);
		if (pack_inflate(z, r->pack + off + hl, end - off - hl, delta,
				 dlen, &used) < 0 ||
		    pack_apply_delta(&res, &base_len, base, base_len, delta,
				     dlen, max) < 0)
			goto out;
		free(delta);
		delta = NULL;
		free(base);
		base = res;
	}
	*type = t;
	*data = base;
	*len = base_len;
	base = NULL;
	ret = 0;
out:
	free(base);
	free(delta);
	if (ch != chain)
		free(ch);
	return ret;
}
