/*
 * Unit tests: indexpack (berth's index-pack) and packwrite (the pack
 * writer of clones), on packs made here byte by byte: whole objects,
 * ofs- and ref-deltas, thin packs, and hostile ones.  What they write is
 * read back with libgit2 and checked with git verify-pack.
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <git2.h>
#include <git2/sys/odb_backend.h>

#include "indexpack.h"
#include "packfile.h"
#include "packwrite.h"
#include "tap.h"
#include "util.h"
#include "banned.h"

/* ---- making packs ----------------------------------------------------- */

struct mk {
	unsigned char *d;
	size_t len, cap;
	uint32_t n;
};

static void mk_add(struct mk *m, const void *p, size_t n)
{
	if (m->len + n > m->cap) {
		m->cap = (m->len + n) * 2 + 64;
		m->d = xrealloc(m->d, m->cap);
	}
	memcpy(m->d + m->len, p, n);
	m->len += n;
}

static void mk_start(struct mk *m)
{
	memset(m, 0, sizeof(*m));
	mk_add(m, "PACK\0\0\0\2\0\0\0\0", 12);
}

static void mk_zdata(struct mk *m, const void *data, size_t len)
{
	uLongf zl = compressBound((uLong)len);
	unsigned char *z = xmalloc(zl);

	compress2(z, &zl, data, (uLong)len, 6);
	mk_add(m, z, zl);
	free(z);
}

/* A whole object; returns its offset. */
static size_t mk_obj(struct mk *m, int type, const void *data, size_t len)
{
	unsigned char h[PACK_HDR_MAX];
	size_t off = m->len;

	mk_add(m, h, pack_encode_header(h, type, len));
	mk_zdata(m, data, len);
	m->n++;
	return off;
}

static size_t mk_ofs(struct mk *m, size_t base, const void *delta,
		     size_t len)
{
	unsigned char h[PACK_HDR_MAX];
	size_t off = m->len, n = pack_encode_header(h, PACK_OFS_DELTA, len);

	n += pack_encode_ofs(h + n, off - base);
	mk_add(m, h, n);
	mk_zdata(m, delta, len);
	m->n++;
	return off;
}

static size_t mk_ref(struct mk *m, const unsigned char *base,
		     const void *delta, size_t len)
{
	unsigned char h[PACK_HDR_MAX];
	size_t off = m->len, n = pack_encode_header(h, PACK_REF_DELTA, len);

	memcpy(h + n, base, PACK_ID_LEN);
	mk_add(m, h, n + PACK_ID_LEN);
	mk_zdata(m, delta, len);
	m->n++;
	return off;
}

/* The count (or `count` if not ~0) and the trailer. */
static void mk_end(struct mk *m, uint32_t count)
{
	unsigned char sum[PACK_ID_LEN];
	struct pack_hash h;
	uint32_t c = count == ~0u ? m->n : count;

	m->d[8] = (unsigned char)(c >> 24);
	m->d[9] = (unsigned char)(c >> 16);
	m->d[10] = (unsigned char)(c >> 8);
	m->d[11] = (unsigned char)c;
	pack_hash_init(&h);
	pack_hash_update(&h, m->d, m->len);
	pack_hash_final(&h, sum);
	mk_add(m, sum, sizeof(sum));
}

static size_t varint(unsigned char *p, uint64_t v)
{
	size_t n = 0;

	do {
		p[n] = v & 0x7f;
		v >>= 7;
		if (v)
			p[n] |= 0x80;
		n++;
	} while (v);
	return n;
}

/*
 * A delta: copy base[0..keep) then insert ins; the header claims
 * result_len (the true length when 0).  *len its size; caller frees.
 */
static unsigned char *mk_delta(size_t base_len, size_t keep, const char *ins,
			       size_t result_len, size_t *len)
{
	unsigned char *d = xmalloc(64 + keep / 0x10000 * 8 + strlen(ins) * 2);
	size_t n = 0, off = 0, il = strlen(ins);

	n += varint(d + n, base_len);
	n += varint(d + n, result_len ? result_len : keep + il);
	while (keep) {
		size_t c = keep > 0xffff ? 0xffff : keep;

		d[n++] = 0x80 | 0x0f | 0x30;
		d[n++] = off & 0xff;
		d[n++] = (off >> 8) & 0xff;
		d[n++] = (off >> 16) & 0xff;
		d[n++] = (off >> 24) & 0xff;
		d[n++] = c & 0xff;
		d[n++] = (c >> 8) & 0xff;
		off += c;
		keep -= c;
	}
	while (il) {
		size_t c = il > 127 ? 127 : il;

		d[n++] = (unsigned char)c;
		memcpy(d + n, ins, c);
		n += c;
		ins += c;
		il -= c;
	}
	*len = n;
	return d;
}

/* ---- running the indexer ---------------------------------------------- */

struct env {
	char dir[64];
	/* a "repository" for thin bases and the closure: one object */
	unsigned char have_id[PACK_ID_LEN];
	const char *have_data;
	int have_type;
	int asked;
};

static int env_read(void *arg, const unsigned char *id, int *type,
		    unsigned char **data, size_t *len)
{
	struct env *e = arg;

	e->asked++;
	if (!e->have_data || memcmp(id, e->have_id, PACK_ID_LEN))
		return -1;
	*type = e->have_type;
	*len = strlen(e->have_data);
	*data = (unsigned char *)xstrdup(e->have_data);
	return 0;
}

static int env_have(void *arg, const unsigned char *id)
{
	struct env *e = arg;

	return e->have_data && !memcmp(id, e->have_id, PACK_ID_LEN);
}

static void env_init(struct env *e)
{
	memset(e, 0, sizeof(*e));
	snprintf(e->dir, sizeof(e->dir), "/tmp/berth-unit-ip.XXXXXX");
	if (!mkdtemp(e->dir))
		abort();
}

/*
 * Index data fed in chunks of `chunk` bytes.  0 with hex set, or -1
 * (error_last()).  *ipp keeps the indexer when not NULL.
 */
static int run(struct env *e, const unsigned char *data, size_t len,
	       size_t chunk, char hex[41], struct indexpack **ipp)
{
	struct indexpack_opts o;
	struct indexpack *ip = NULL;
	size_t off = 0;
	int ret = -1;

	memset(&o, 0, sizeof(o));
	o.dir = e->dir;
	o.max_object = 64 << 20;
	o.read_base = env_read;
	o.have = env_have;
	o.arg = e;
	if (indexpack_new(&ip, &o) < 0)
		return -1;
	while (off < len && !indexpack_done(ip)) {
		size_t n = len - off < chunk ? len - off : chunk;
		ssize_t r = indexpack_feed(ip, data + off, n);

		if (r < 0)
			goto out;
		off += (size_t)r;
	}
	if (indexpack_finish(ip, hex) < 0)
		goto out;
	ret = 0;
out:
	if (ipp && ret == 0)
		*ipp = ip;
	else
		indexpack_free(ip);
	return ret;
}

static int git_verify(const char *dir, const char *hex)
{
	char *idx = xasprintf("%s/pack-%s.idx", dir, hex);
	char *argv[] = { "git", "verify-pack", idx, NULL };
	pid_t pid;
	int st = -1;

	pid = fork();
	if (pid == 0) {
		int null = open("/dev/null", O_WRONLY);

		dup2(null, 1);
		execvp("git", argv);
		_exit(127);
	}
	if (pid < 0 || waitpid(pid, &st, 0) < 0)
		st = -1;
	free(idx);
	return st == 0 ? 0 : -1;
}

/* libgit2 reads id from the pack and finds data of type type. */
static int lg2_reads(const char *dir, const char *hex, const unsigned char *id,
		     int type, const void *data, size_t len)
{
	char *idx = xasprintf("%s/pack-%s.idx", dir, hex);
	git_odb_backend *be = NULL;
	git_odb *odb = NULL;
	git_odb_object *obj = NULL;
	git_oid oid;
	int ok = 0;

	git_oid_fromraw(&oid, id);
	if (git_odb_new(&odb) == 0 && git_odb_backend_one_pack(&be, idx) == 0 &&
	    git_odb_add_backend(odb, be, 1) == 0) {
		be = NULL;
		if (git_odb_read(&obj, odb, &oid) == 0)
			ok = (int)git_odb_object_type(obj) == type &&
			     git_odb_object_size(obj) == len &&
			     !memcmp(git_odb_object_data(obj), data, len);
	}
	if (be)
		be->free(be);
	git_odb_object_free(obj);
	git_odb_free(odb);
	free(idx);
	return ok;
}

static void clean(struct env *e)
{
	rm_rf(e->dir);
}

/* ---- the tests -------------------------------------------------------- */

static char blob1[] = "hello world, this is the first version of a file\n"
		      "with a second line\n";

static void test_basic(void)
{
	struct env e;
	struct mk m;
	struct indexpack *ip = NULL;
	unsigned char bid[20], tid[20], cid[20], d1id[20], d2id[20];
	unsigned char tree[64], *delta, *d2;
	char commit[256], hex[41], *v2, *v3;
	size_t dl, d2l, tl, boff, chunk;
	int r;

	env_init(&e);
	pack_object_id(bid, PACK_BLOB, blob1, strlen(blob1));
	memcpy(tree, "100644 a\0", 9);
	memcpy(tree + 9, bid, 20);
	tl = 29;
	pack_object_id(tid, PACK_TREE, tree, tl);
	{
		char th[41];

		pack_id_hex(th, tid);
		snprintf(commit, sizeof(commit),
			 "tree %s\nauthor a <a> 1 +0000\n"
			 "committer a <a> 1 +0000\n\nmsg\n", th);
	}
	pack_object_id(cid, PACK_COMMIT, commit, strlen(commit));
	delta = mk_delta(strlen(blob1), 20, "second version\n", 0, &dl);
	v2 = xasprintf("%.20ssecond version\n", blob1);
	pack_object_id(d1id, PACK_BLOB, v2, strlen(v2));
	d2 = mk_delta(strlen(v2), 10, "third\n", 0, &d2l);
	v3 = xasprintf("%.10sthird\n", v2);
	pack_object_id(d2id, PACK_BLOB, v3, strlen(v3));

	mk_start(&m);
	mk_obj(&m, PACK_COMMIT, commit, strlen(commit));
	mk_obj(&m, PACK_TREE, tree, tl);
	boff = mk_obj(&m, PACK_BLOB, blob1, strlen(blob1));
	mk_ofs(&m, boff, delta, dl);	/* v2 on the blob */
	mk_ref(&m, d1id, d2, d2l);	/* v3 on v2, by id */
	mk_end(&m, ~0u);

	for (chunk = 1; chunk <= 4096; chunk *= 64) {
		ip = NULL;
		r = run(&e, m.d, m.len, chunk, hex, &ip);
		ok(r == 0, "a pack of 5 objects, fed %zu bytes at a time: %s",
		   chunk, r ? error_last() : "indexed");
		if (r)
			break;
		ok(indexpack_count(ip) == 5 &&
		   indexpack_lookup(ip, cid) == PACK_COMMIT &&
		   indexpack_lookup(ip, tid) == PACK_TREE &&
		   indexpack_lookup(ip, d1id) == PACK_BLOB &&
		   indexpack_lookup(ip, d2id) == PACK_BLOB,
		   "every object is found with its type (deltas' ids right)");
		ok(!indexpack_missing(ip), "the pack is closed");
		indexpack_free(ip);
	}
	ok(git_verify(e.dir, hex) == 0, "git verify-pack takes the pack and "
	   "its .idx");
	ok(lg2_reads(e.dir, hex, d2id, GIT_OBJECT_BLOB, v3, strlen(v3)) &&
	   lg2_reads(e.dir, hex, cid, GIT_OBJECT_COMMIT, commit,
		     strlen(commit)),
	   "libgit2 reads the objects through the .idx");
	{
		char *base = xasprintf("%s/pack-%s", e.dir, hex);
		struct pack_reader *rd = NULL;
		z_stream z;
		unsigned char *data = NULL;
		size_t len = 0;
		int type = 0;
		int64_t pos;

		memset(&z, 0, sizeof(z));
		inflateInit(&z);
		r = pack_reader_open(&rd, base);
		pos = r == 0 ? pack_reader_find(rd, d2id) : -1;
		ok(pos >= 0 && pack_reader_read(rd, &z,
			pack_reader_offset(rd, (uint32_t)pos), &type, &data,
			&len, 1 << 20) == 0 && type == PACK_BLOB &&
		   len == strlen(v3) && !memcmp(data, v3, len),
		   "pack_reader reads a delta on a delta back");
		free(data);
		inflateEnd(&z);
		pack_reader_free(rd);
		free(base);
	}

	/* the same pack, cut short anywhere: never a finished index */
	{
		size_t cut, bad = 0;

		for (cut = 0; cut < m.len; cut += 7)
			if (run(&e, m.d, cut, 4096, hex, NULL) == 0)
				bad++;
		ok(bad == 0, "a pack cut short is refused at every length");
	}
	/* one bit flipped in each byte of the data: refused or a
	 * different checksum, never indexed as is */
	{
		size_t i, bad = 0;

		for (i = 12; i + 20 < m.len; i += 3) {
			m.d[i] ^= 0x40;
			if (run(&e, m.d, m.len, 4096, hex, NULL) == 0)
				bad++;
			m.d[i] ^= 0x40;
		}
		ok(bad == 0, "a flipped bit anywhere is refused");
	}
	/* the header lies about the count */
	{
		struct mk m2;

		mk_start(&m2);
		mk_obj(&m2, PACK_BLOB, blob1, strlen(blob1));
		mk_obj(&m2, PACK_BLOB, "x", 1);
		mk_end(&m2, 1);
		ok(run(&e, m2.d, m2.len, 4096, hex, NULL) < 0,
		   "a count lower than the objects: refused (%s)",
		   error_last());
		free(m2.d);
		mk_start(&m2);
		mk_obj(&m2, PACK_BLOB, blob1, strlen(blob1));
		mk_end(&m2, 3);
		ok(run(&e, m2.d, m2.len, 4096, hex, NULL) < 0,
		   "a count higher than the objects: refused (%s)",
		   error_last());
		free(m2.d);
		mk_start(&m2);
		mk_end(&m2, 0xfffffffeu);
		ok(run(&e, m2.d, m2.len, 4096, hex, NULL) < 0,
		   "a count of 4 billion in a tiny pack: refused, no huge "
		   "allocation");
		free(m2.d);
	}
	free(m.d);
	free(delta);
	free(d2);
	free(v2);
	free(v3);
	clean(&e);
}

static void test_thin(void)
{
	struct env e;
	struct mk m;
	struct indexpack *ip = NULL;
	unsigned char bid[20], did[20], *delta;
	char hex[41], *v2;
	size_t dl;
	int r;

	env_init(&e);
	pack_object_id(bid, PACK_BLOB, blob1, strlen(blob1));
	delta = mk_delta(strlen(blob1), 30, "thin\n", 0, &dl);
	v2 = xasprintf("%.30sthin\n", blob1);
	pack_object_id(did, PACK_BLOB, v2, strlen(v2));
	mk_start(&m);
	mk_ref(&m, bid, delta, dl);
	mk_end(&m, ~0u);

	ok(run(&e, m.d, m.len, 4096, hex, NULL) < 0 &&
	   strstr(error_last(), "is missing"),
	   "a thin pack whose base we lack: refused (%s)", error_last());
	memcpy(e.have_id, bid, 20);
	e.have_data = blob1;
	e.have_type = PACK_BLOB;
	r = run(&e, m.d, m.len, 4096, hex, &ip);
	ok(r == 0 && indexpack_count(ip) == 2 &&
	   indexpack_stats(ip)->local == 1 &&
	   indexpack_lookup(ip, did) == PACK_BLOB,
	   "a thin pack is completed from the repository: %s",
	   r ? error_last() : "2 objects");
	indexpack_free(ip);
	ok(r == 0 && git_verify(e.dir, hex) == 0,
	   "git verify-pack takes the completed pack (count and trailer "
	   "rewritten)");
	ok(r == 0 && lg2_reads(e.dir, hex, did, GIT_OBJECT_BLOB, v2,
			       strlen(v2)),
	   "libgit2 reads the delta on the appended base");
	free(m.d);
	free(delta);
	free(v2);
	clean(&e);
}

static void test_hostile(void)
{
	struct env e;
	struct mk m;
	struct indexpack *ip = NULL;
	unsigned char bid[20], *delta, tree[64];
	char hex[41], commit[256];
	size_t dl, base, prev, i;

	env_init(&e);
	pack_object_id(bid, PACK_BLOB, blob1, strlen(blob1));

	/* a delta whose header lies about its result's size */
	delta = mk_delta(strlen(blob1), 10, "abc", 50, &dl);
	mk_start(&m);
	base = mk_obj(&m, PACK_BLOB, blob1, strlen(blob1));
	mk_ofs(&m, base, delta, dl);
	mk_end(&m, ~0u);
	ok(run(&e, m.d, m.len, 4096, hex, NULL) < 0 &&
	   strstr(error_last(), "bad delta"),
	   "a delta whose result size lies: refused (%s)", error_last());
	free(m.d);
	free(delta);

	/* a delta that names another base size */
	delta = mk_delta(strlen(blob1) + 1, 10, "abc", 0, &dl);
	mk_start(&m);
	base = mk_obj(&m, PACK_BLOB, blob1, strlen(blob1));
	mk_ofs(&m, base, delta, dl);
	mk_end(&m, ~0u);
	ok(run(&e, m.d, m.len, 4096, hex, NULL) < 0,
	   "a delta for a base of another size: refused (%s)",
	   error_last());
	free(m.d);
	free(delta);

	/* a delta whose result is over the limit (a delta bomb) */
	delta = mk_delta(strlen(blob1), 10, "abc", (size_t)1 << 40, &dl);
	mk_start(&m);
	base = mk_obj(&m, PACK_BLOB, blob1, strlen(blob1));
	mk_ofs(&m, base, delta, dl);
	mk_end(&m, ~0u);
	ok(run(&e, m.d, m.len, 4096, hex, NULL) < 0 &&
	   strstr(error_last(), "over the limit"),
	   "a delta claiming a 1 TiB result: refused before allocating "
	   "(%s)", error_last());
	free(m.d);
	free(delta);

	/* an ofs-delta pointing into the middle of an object */
	delta = mk_delta(strlen(blob1), 10, "abc", 0, &dl);
	mk_start(&m);
	base = mk_obj(&m, PACK_BLOB, blob1, strlen(blob1));
	mk_ofs(&m, base + 1, delta, dl);
	mk_end(&m, ~0u);
	ok(run(&e, m.d, m.len, 4096, hex, NULL) < 0 &&
	   strstr(error_last(), "base offset"),
	   "an ofs-delta whose base is no object: refused (%s)",
	   error_last());
	free(m.d);

	/* a delta chain deeper than we take */
	mk_start(&m);
	prev = mk_obj(&m, PACK_BLOB, blob1, strlen(blob1));
	free(delta);
	delta = mk_delta(strlen(blob1), strlen(blob1), "", 0, &dl);
	for (i = 0; i < INDEXPACK_MAX_DEPTH + 2; i++)
		prev = mk_ofs(&m, prev, delta, dl);
	mk_end(&m, ~0u);
	ok(run(&e, m.d, m.len, 65536, hex, NULL) < 0 &&
	   strstr(error_last(), "deeper"),
	   "a delta chain of %d: refused (%s)", INDEXPACK_MAX_DEPTH + 2,
	   error_last());
	free(m.d);
	free(delta);

	/* two ref-deltas on each other: no base anywhere */
	{
		unsigned char a[20], b[20];

		memset(a, 0xaa, 20);
		memset(b, 0xbb, 20);
		delta = mk_delta(5, 5, "x", 0, &dl);
		mk_start(&m);
		mk_ref(&m, a, delta, dl);
		mk_ref(&m, b, delta, dl);
		mk_end(&m, ~0u);
		ok(run(&e, m.d, m.len, 4096, hex, NULL) < 0,
		   "ref-deltas without a base: refused (%s)", error_last());
		free(m.d);
		free(delta);
	}

	/* an object twice */
	mk_start(&m);
	mk_obj(&m, PACK_BLOB, blob1, strlen(blob1));
	mk_obj(&m, PACK_BLOB, blob1, strlen(blob1));
	mk_end(&m, ~0u);
	ok(run(&e, m.d, m.len, 4096, hex, NULL) < 0 &&
	   strstr(error_last(), "twice"),
	   "an object twice: refused (%s)", error_last());
	free(m.d);

	/* a malformed tree */
	mk_start(&m);
	mk_obj(&m, PACK_TREE, "100644 a", 8);
	mk_end(&m, ~0u);
	ok(run(&e, m.d, m.len, 4096, hex, NULL) < 0,
	   "a malformed tree: refused (%s)", error_last());
	free(m.d);

	/* a commit whose tree is nowhere: indexed, but not closed */
	memcpy(tree, "100644 a\0", 9);
	memcpy(tree + 9, bid, 20);
	snprintf(commit, sizeof(commit), "tree %s\n\nmsg\n",
		 "0123456789012345678901234567890123456789");
	mk_start(&m);
	mk_obj(&m, PACK_COMMIT, commit, strlen(commit));
	mk_obj(&m, PACK_TREE, tree, 29);
	mk_end(&m, ~0u);
	ok(run(&e, m.d, m.len, 4096, hex, &ip) == 0 &&
	   indexpack_missing(ip) != NULL,
	   "links to objects neither in the pack nor in the repository "
	   "are found");
	indexpack_free(ip);
	ip = NULL;
	free(m.d);
	/* the blob the tree names is in the repository: closed */
	memcpy(e.have_id, bid, 20);
	e.have_data = blob1;
	e.have_type = PACK_BLOB;
	mk_start(&m);
	mk_obj(&m, PACK_TREE, tree, 29);
	mk_end(&m, ~0u);
	ok(run(&e, m.d, m.len, 4096, hex, &ip) == 0 &&
	   indexpack_missing(ip) == NULL,
	   "a link to an object of the repository closes the pack");
	indexpack_free(ip);
	free(m.d);
	clean(&e);
}

/* Bases larger than the cache: dropped and made again. */
static void test_big_bases(void)
{
	struct env e;
	struct mk m;
	struct indexpack *ip = NULL;
	/* one base fits in the cache, two do not */
	size_t big = INDEXPACK_CACHE / 8 * 5, dl, b, d1;
	unsigned char *data = xmalloc(big), *delta, id3[20];
	char hex[41], *v3;
	size_t i;
	int r;

	env_init(&e);
	for (i = 0; i < big; i++)
		data[i] = (unsigned char)(i * 2654435761u >> 13);
	mk_start(&m);
	b = mk_obj(&m, PACK_BLOB, data, big);
	delta = mk_delta(big, big - 5, "one\n", 0, &dl);
	d1 = mk_ofs(&m, b, delta, dl);		/* as big, on the base */
	free(delta);
	delta = mk_delta(big - 1, 100, "two\n", 0, &dl);
	mk_ofs(&m, d1, delta, dl);		/* on d1 */
	free(delta);
	delta = mk_delta(big, 50, "three\n", 0, &dl);
	mk_ofs(&m, b, delta, dl);		/* the base again */
	free(delta);
	mk_end(&m, ~0u);
	v3 = xmalloc(56);
	memcpy(v3, data, 50);
	memcpy(v3 + 50, "three\n", 6);
	pack_object_id(id3, PACK_BLOB, v3, 56);
	r = run(&e, m.d, m.len, 65536, hex, &ip);
	ok(r == 0 && indexpack_lookup(ip, id3) == PACK_BLOB,
	   "two bases larger than the cache: the base is made again "
	   "(%s)", r ? error_last() : "ok");
	indexpack_free(ip);
	ok(r == 0 && git_verify(e.dir, hex) == 0, "git verify-pack agrees");
	free(v3);
	free(m.d);
	free(data);
	clean(&e);
}

/* The idx's 64-bit offsets (packs over 2 GiB) without a big pack. */
static void test_idx64(void)
{
	struct pack_idx_entry ent[3], *sorted[3];
	unsigned char sum[20];
	struct pack_reader *r = NULL;
	char dir[] = "/tmp/berth-unit-idx.XXXXXX", *path, *base;
	int i, fine;
	FILE *f;

	if (!mkdtemp(dir))
		abort();
	memset(ent, 0, sizeof(ent));
	for (i = 0; i < 3; i++) {
		memset(ent[i].id, 0x10 * (i + 1), 20);
		ent[i].crc = 0x01020304u * (unsigned)(i + 1);
		sorted[i] = &ent[i];
	}
	ent[0].offset = 12;
	ent[1].offset = (uint64_t)5 << 30;	/* 5 GiB */
	ent[2].offset = 0x80000000u;		/* just past 31 bits */
	memset(sum, 0x5a, sizeof(sum));
	path = xasprintf("%s/pack-x.idx", dir);
	base = xasprintf("%s/pack-x", dir);
	ok(pack_write_idx(path, sorted, 3, sum) == 0, "an idx with offsets "
	   "past 2 GiB is written");
	/* a stand-in pack: only its header is read */
	free(path);
	path = xasprintf("%s/pack-x.pack", dir);
	f = fopen(path, "w");
	fwrite("PACK\0\0\0\2\0\0\0\3", 1, 12, f);
	fwrite(sum, 1, 20, f);
	fwrite(sum, 1, 20, f);
	fclose(f);
	fine = pack_reader_open(&r, base) == 0 && r->n == 3 &&
	       r->n_offs64 == 2;
	for (i = 0; fine && i < 3; i++)
		fine = pack_reader_find(r, ent[i].id) == i &&
		       pack_reader_offset(r, (uint32_t)i) == ent[i].offset;
	ok(fine, "the offsets come back through the 64-bit table");
	pack_reader_free(r);
	free(path);
	free(base);
	rm_rf(dir);
}

/* ---- packwrite --------------------------------------------------------- */

struct sink {
	struct mk m;
};

static int sink_write(void *arg, const void *data, size_t len)
{
	struct sink *s = arg;

	mk_add(&s->m, data, len);
	return 0;
}

static void test_packwrite(void)
{
	struct env e, e2;
	struct mk m;
	struct sink s;
	struct packwrite_opts po;
	struct packwrite *pw = NULL;
	struct indexpack *ip = NULL;
	unsigned char bid[20], d1id[20], d2id[20], *delta, *d2;
	char hex[41], hex2[41], *v2, *v3;
	size_t dl, d2l, boff, d1off;
	uint32_t whole, deltas, remade;
	int r;

	env_init(&e);
	env_init(&e2);
	pack_object_id(bid, PACK_BLOB, blob1, strlen(blob1));
	delta = mk_delta(strlen(blob1), 20, "second version\n", 0, &dl);
	v2 = xasprintf("%.20ssecond version\n", blob1);
	pack_object_id(d1id, PACK_BLOB, v2, strlen(v2));
	d2 = mk_delta(strlen(v2), 10, "third\n", 0, &d2l);
	v3 = xasprintf("%.10sthird\n", v2);
	pack_object_id(d2id, PACK_BLOB, v3, strlen(v3));
	mk_start(&m);
	boff = mk_obj(&m, PACK_BLOB, blob1, strlen(blob1));
	d1off = mk_ofs(&m, boff, delta, dl);
	mk_ofs(&m, d1off, d2, d2l);
	mk_end(&m, ~0u);
	r = run(&e, m.d, m.len, 4096, hex, NULL);
	ok(r == 0, "a stored pack to reuse");

	/* all of it, ofs-deltas */
	memset(&po, 0, sizeof(po));
	memset(&s, 0, sizeof(s));
	po.pack_dir = e.dir;
	po.ofs_delta = 1;
	po.write = sink_write;
	po.arg = &s;
	r = packwrite_new(&pw, &po);
	packwrite_add(pw, d2id);
	packwrite_add(pw, bid);
	packwrite_add(pw, d1id);
	r = r == 0 ? packwrite_send(pw) : -1;
	packwrite_stats(pw, &whole, &deltas, &remade);
	ok(r == 0 && whole == 1 && deltas == 2 && remade == 0,
	   "all three: the whole object copied, both deltas reused");
	packwrite_free(pw);
	ok(run(&e2, s.m.d, s.m.len, 4096, hex2, &ip) == 0 &&
	   indexpack_lookup(ip, d2id) == PACK_BLOB &&
	   git_verify(e2.dir, hex2) == 0,
	   "the written pack indexes and verifies");
	indexpack_free(ip);
	ip = NULL;
	free(s.m.d);
	clean(&e2);
	env_init(&e2);

	/* without the base: the first delta goes whole, ref-deltas */
	memset(&s, 0, sizeof(s));
	po.ofs_delta = 0;
	r = packwrite_new(&pw, &po);
	packwrite_add(pw, d2id);
	packwrite_add(pw, d1id);
	r = r == 0 ? packwrite_send(pw) : -1;
	packwrite_stats(pw, &whole, &deltas, &remade);
	ok(r == 0 && whole == 0 && deltas == 1 && remade == 1,
	   "a delta whose base stays behind is made whole");
	packwrite_free(pw);
	ok(run(&e2, s.m.d, s.m.len, 4096, hex2, &ip) == 0 &&
	   indexpack_count(ip) == 2 && indexpack_stats(ip)->local == 0 &&
	   lg2_reads(e2.dir, hex2, d2id, GIT_OBJECT_BLOB, v3, strlen(v3)),
	   "the pack (a ref-delta) is whole and reads back");
	indexpack_free(ip);
	free(s.m.d);

	/* an object no pack has */
	memset(&s, 0, sizeof(s));
	r = packwrite_new(&pw, &po);
	memset(bid, 0x42, 20);
	packwrite_add(pw, bid);
	ok(r == 0 && packwrite_send(pw) < 0, "a missing object fails the "
	   "pack (%s)", error_last());
	packwrite_free(pw);
	free(s.m.d);

	free(m.d);
	free(delta);
	free(d2);
	free(v2);
	free(v3);
	clean(&e);
	clean(&e2);
}

int main(void)
{
	git_libgit2_init();
	test_basic();
	test_thin();
	test_hostile();
	test_big_bases();
	test_idx64();
	test_packwrite();
	git_libgit2_shutdown();
	return tap_done();
}
