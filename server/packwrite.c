/* packwrite: see packwrite.h. */
#define OPENSSL_SUPPRESS_DEPRECATED
#include "packwrite.h"

#include <dirent.h>
#include <stdlib.h>
#include <string.h>

#include "oidset.h"
#include "util.h"
#include "banned.h"

#define OUTBUF 65515	/* one side-band packet's payload */

struct pw_obj {
	unsigned char id[PACK_ID_LEN];
	uint64_t offset;	/* in its stored pack */
	uint64_t out;		/* where it starts in ours */
	int32_t pack;		/* index in packs, -1: loose */
	uint8_t written;
};

struct packwrite {
	struct packwrite_opts o;
	char *dir;
	struct pack_reader **packs;
	size_t n_packs;
	struct pw_obj *objs;
	uint32_t n, alloc;
	struct oidset index;	/* id -> position in objs */
	struct pack_hash sum;
	unsigned char *buf;
	size_t len;
	uint64_t written;
	z_stream z;
	int z_live;
	uint32_t n_whole, n_delta, n_remade;
};

static int cmp_name(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

int packwrite_new(struct packwrite **out, const struct packwrite_opts *o)
{
	struct packwrite *pw = xcalloc(1, sizeof(*pw));
	struct strv names = { NULL, 0, 0 };
	struct dirent *de;
	DIR *d;
	size_t i;

	*out = NULL;
	pw->o = *o;
	pw->dir = xstrdup(o->pack_dir);
	pw->o.pack_dir = pw->dir;
	if (!pw->o.max_object)
		pw->o.max_object = (uint64_t)1 << 32;
	pw->buf = xmalloc(OUTBUF);
	d = opendir(pw->dir);
	if (d) {
		while ((de = readdir(d))) {
			size_t l = strlen(de->d_name);

			if (l > 4 && !strcmp(de->d_name + l - 4, ".idx") &&
			    !strncmp(de->d_name, "pack-", 5))
				strv_push(&names, de->d_name);
		}
		closedir(d);
	}
	/* newest data is not known from names: any order works */
	if (names.n)
		qsort(names.v, names.n, sizeof(*names.v), cmp_name);
	pw->packs = xcalloc(names.n + 1, sizeof(*pw->packs));
	for (i = 0; i < names.n; i++) {
		char *base = xasprintf("%s/%.*s", pw->dir,
				       (int)(strlen(names.v[i]) - 4),
				       names.v[i]);
		struct pack_reader *r;

		/* a pack removed meanwhile (a repack): its objects are
		 * in the new one, or are read loose */
		if (pack_reader_open(&r, base) == 0)
			pw->packs[pw->n_packs++] = r;
		free(base);
	}
	strv_release(&names);
	*out = pw;
	return 0;
}

int packwrite_add(struct packwrite *pw, const unsigned char *id)
{
	git_oid oid;
	int *v;

	memcpy(oid.id, id, PACK_ID_LEN);
	if (!oidset_insert(&pw->index, &oid, &v))
		return 0;
	if (pw->n == pw->alloc) {
		pw->alloc = pw->alloc ? pw->alloc * 2 : 1024;
		pw->objs = xrealloc(pw->objs,
				    (size_t)pw->alloc * sizeof(*pw->objs));
	}
	*v = (int)pw->n;
	memset(&pw->objs[pw->n], 0, sizeof(pw->objs[0]));
	memcpy(pw->objs[pw->n].id, id, PACK_ID_LEN);
	pw->objs[pw->n].pack = -1;
	pw->n++;
	return 1;
}

int packwrite_has(const struct packwrite *pw, const unsigned char *id)
{
	git_oid oid;

	memcpy(oid.id, id, PACK_ID_LEN);
	return oidset_contains(&pw->index, &oid);
}

uint32_t packwrite_count(const struct packwrite *pw)
{
	return pw->n;
}

void packwrite_stats(const struct packwrite *pw, uint32_t *whole,
		     uint32_t *deltas, uint32_t *remade)
{
	*whole = pw->n_whole;
	*deltas = pw->n_delta;
	*remade = pw->n_remade;
}

/* ---- output ----------------------------------------------------------- */

static int flush(struct packwrite *pw)
{
	int r = 0;

	if (pw->len)
		r = pw->o.write(pw->o.arg, pw->buf, pw->len);
	pw->len = 0;
	return r;
}

static int put(struct packwrite *pw, const void *data, size_t len)
{
	const unsigned char *p = data;

	pack_hash_update(&pw->sum, data, len);
	pw->written += len;
	while (len) {
		size_t n = OUTBUF - pw->len;

		if (n > len)
			n = len;
		memcpy(pw->buf + pw->len, p, n);
		pw->len += n;
		p += n;
		len -= n;
		if (pw->len == OUTBUF && flush(pw) < 0)
			return -1;
	}
	return 0;
}

/* A whole object, deflated here. */
static int put_whole(struct packwrite *pw, int type, const unsigned char *data,
		     size_t len)
{
	unsigned char hdr[PACK_HDR_MAX], *z;
	uLongf zlen = compressBound((uLong)len);
	size_t hl = pack_encode_header(hdr, type, len);
	int r;

	z = xmalloc(zlen);
	/* speed over size: this runs while the client waits */
	if (compress2(z, &zlen, data, (uLong)len, 1) != Z_OK) {
		free(z);
		return error_set("cannot compress an object");
	}
	r = put(pw, hdr, hl) < 0 || put(pw, z, zlen) < 0 ? -1 : 0;
	free(z);
	return r;
}

/* ---- writing ---------------------------------------------------------- */

static const struct pw_obj *sort_objs;

static int cmp_stored(const void *a, const void *b)
{
	const struct pw_obj *x = &sort_objs[*(const uint32_t *)a];
	const struct pw_obj *y = &sort_objs[*(const uint32_t *)b];

	/* loose objects last */
	if (x->pack != y->pack)
		return (uint32_t)x->pack < (uint32_t)y->pack ? -1 : 1;
	return x->offset < y->offset ? -1 : x->offset > y->offset;
}

/* The written object with this id, or NULL. */
static const struct pw_obj *written_obj(const struct packwrite *pw,
					const unsigned char *id)
{
	git_oid oid;
	const int *v;

	memcpy(oid.id, id, PACK_ID_LEN);
	v = oidset_value(&pw->index, &oid);
	if (!v || !pw->objs[*v].written)
		return NULL;
	return &pw->objs[*v];
}

static int write_loose(struct packwrite *pw, struct pw_obj *o)
{
	unsigned char *data = NULL;
	size_t len = 0;
	char hex[41];
	int type, r;

	pack_id_hex(hex, o->id);
	if (!pw->o.read || pw->o.read(pw->o.arg, o->id, &type, &data,
				      &len) < 0 || !pack_type_name(type)) {
		free(data);
		return error_set("object %s is missing", hex);
	}
	r = put_whole(pw, type, data, len);
	free(data);
	pw->n_remade++;
	return r;
}

static int write_stored(struct packwrite *pw, struct pw_obj *o)
{
	const struct pack_reader *r = pw->packs[o->pack];
	const unsigned char *p = r->pack + o->offset;
	const struct pw_obj *base = NULL;
	unsigned char bid[PACK_ID_LEN], hdr[PACK_HDR_MAX];
	uint64_t size, dist = 0, end = pack_reader_end(r, o->offset);
	size_t hl, n;
	int type;

	if (!end || pack_parse_header(p, end - o->offset, &type, &size,
				      &dist, bid, &hl) < 0)
		return error_set("'%s': bad object at %llu", r->name,
				 (unsigned long long)o->offset);
	if (type < PACK_OFS_DELTA) {
		pw->n_whole++;
		return put(pw, p, end - o->offset);
	}
	if (type == PACK_OFS_DELTA) {
		int64_t pos = dist <= o->offset
			? pack_reader_pos_at(r, o->offset - dist) : -1;

		if (pos >= 0)
			base = written_obj(pw, r->ids + (size_t)pos * 20);
	} else {
		base = written_obj(pw, bid);
	}
	if (base) {
		n = pack_encode_header(hdr, pw->o.ofs_delta ? PACK_OFS_DELTA
							    : PACK_REF_DELTA,
				       size);
		if (pw->o.ofs_delta) {
			n += pack_encode_ofs(hdr + n, pw->written - base->out);
		} else {
			memcpy(hdr + n, base->id, PACK_ID_LEN);
			n += PACK_ID_LEN;
		}
		pw->n_delta++;
		if (put(pw, hdr, n) < 0)
			return -1;
		return put(pw, p + hl, end - o->offset - hl);
	} else {
		/* its base stays behind: send it whole */
		unsigned char *data = NULL;
		size_t len;
		int ret;

		if (pack_reader_read(r, &pw->z, o->offset, &type, &data, &len,
				     pw->o.max_object) < 0)
			return -1;
		ret = put_whole(pw, type, data, len);
		free(data);
		pw->n_remade++;
		return ret;
	}
}

int packwrite_send(struct packwrite *pw)
{
	unsigned char hdr[12], sum[PACK_ID_LEN];
	uint32_t *order = NULL, i;
	size_t k;
	int ret = -1;

	if (!pw->z_live) {
		if (inflateInit(&pw->z) != Z_OK)
			return error_set("out of memory");
		pw->z_live = 1;
	}
	for (k = 0; k < pw->n_packs; k++)
		if (pack_reader_index_ends(pw->packs[k]) < 0)
			return -1;
	/* where each object is stored: the first pack that has it */
	for (i = 0; i < pw->n; i++) {
		struct pw_obj *o = &pw->objs[i];

		for (k = 0; k < pw->n_packs; k++) {
			int64_t pos = pack_reader_find(pw->packs[k], o->id);

			if (pos >= 0) {
				o->pack = (int32_t)k;
				o->offset = pack_reader_offset(pw->packs[k],
							       (uint32_t)pos);
				break;
			}
		}
	}
	order = xmalloc(((size_t)pw->n + 1) * sizeof(*order));
	for (i = 0; i < pw->n; i++)
		order[i] = i;
	sort_objs = pw->objs;
	qsort(order, pw->n, sizeof(*order), cmp_stored);
	sort_objs = NULL;
	pack_hash_init(&pw->sum);
	memcpy(hdr, "PACK\0\0\0\2", 8);
	hdr[8] = (unsigned char)(pw->n >> 24);
	hdr[9] = (unsigned char)(pw->n >> 16);
	hdr[10] = (unsigned char)(pw->n >> 8);
	hdr[11] = (unsigned char)pw->n;
	if (put(pw, hdr, sizeof(hdr)) < 0)
		goto out;
	for (i = 0; i < pw->n; i++) {
		struct pw_obj *o = &pw->objs[order[i]];

		o->out = pw->written;
		if ((o->pack < 0 ? write_loose(pw, o) : write_stored(pw, o)) < 0)
			goto out;
		o->written = 1;
	}
	pack_hash_final(&pw->sum, sum);
	if (flush(pw) < 0 || pw->o.write(pw->o.arg, sum, sizeof(sum)) < 0)
		goto out;
	ret = 0;
out:
	free(order);
	return ret;
}

void packwrite_free(struct packwrite *pw)
{
	size_t k;

	if (!pw)
		return;
	for (k = 0; k < pw->n_packs; k++)
		pack_reader_free(pw->packs[k]);
	free(pw->packs);
	free(pw->objs);
	oidset_release(&pw->index);
	if (pw->z_live)
		inflateEnd(&pw->z);
	free(pw->buf);
	free(pw->dir);
	free(pw);
}
