/*
 * treelimits: real repositories made by the test: a plain tree, a tree
 * bomb (10 levels of 8-way trees), a folder chain too deep, paths too
 * long, a 1 GiB blob of zeros (loose, as git writes it) and a packed blob
 * over a small limit.  Each refusal is timed and printed.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <git2.h>

#include "runner.h"
#include "spawn.h"
#include "tap.h"
#include "treelimits.h"
#include "util.h"
#include "banned.h"

static git_repository *repo;
static char *gitdir;

/* The SHA-1 of "blob 1073741824\0" and 2^30 zero bytes. */
#define ZEROS_OID "4fce05a4e4ed8cefef2d99f32c519b2fd7841b74"
#define ZEROS_SIZE (1ULL << 30)

static void blob(git_oid *id, const char *text)
{
	if (git_blob_create_from_buffer(id, repo, text, strlen(text)) < 0)
		abort();
}

static git_treebuilder *tb(void)
{
	git_treebuilder *b = NULL;

	if (git_treebuilder_new(&b, repo, NULL) < 0)
		abort();
	return b;
}

static void add(git_treebuilder *b, const char *name, const git_oid *id,
		git_filemode_t mode)
{
	if (git_treebuilder_insert(NULL, b, name, id, mode) < 0) {
		fprintf(stderr, "insert %s: %s\n", name, git_error_last()->message);
		abort();
	}
}

static void done(git_treebuilder *b, git_oid *id)
{
	if (git_treebuilder_write(id, b) < 0)
		abort();
	git_treebuilder_free(b);
}

static void commit(git_oid *out, const git_oid *tree_id)
{
	git_signature *sig = NULL;
	git_tree *tree = NULL;

	if (git_signature_new(&sig, "t", "t@example.com", 1700000000, 0) < 0 ||
	    git_tree_lookup(&tree, repo, tree_id) < 0 ||
	    git_commit_create(out, repo, NULL, sig, sig, NULL, "t", tree, 0,
			      NULL) < 0)
		abort();
	git_tree_free(tree);
	git_signature_free(sig);
}

/* ---- a 1 GiB blob of zeros, deflated as git would, written fast ---- */

struct bits {
	FILE *f;
	uint64_t acc;
	int n;
};

static void put_bits(struct bits *b, uint32_t v, int n)
{
	b->acc |= (uint64_t)v << b->n;
	b->n += n;
	while (b->n >= 8) {
		fputc((int)(b->acc & 0xff), b->f);
		b->acc >>= 8;
		b->n -= 8;
	}
}

/* deflate sends Huffman codes most significant bit first */
static void put_code(struct bits *b, uint32_t code, int len)
{
	uint32_t r = 0;
	int i;

	for (i = 0; i < len; i++)
		r |= ((code >> i) & 1) << (len - 1 - i);
	put_bits(b, r, len);
}

/*
 * zlib stream of "blob 1073741824\0" and 2^30 zeros: one fixed-Huffman
 * block, a literal 0 and then matches of 258 bytes at distance 1 (13
 * bits each), about 7 MB.  What git's own deflate would make is smaller;
 * what matters is that it is a valid loose object that every reader
 * (git, libgit2) takes for a 1 GiB blob.
 */
static int write_zeros_object(const char *path)
{
	const char hdr[] = "blob 1073741824";
	uint64_t a = 1, bsum = 0, left;
	struct bits b;
	size_t i;

	b.f = fopen(path, "wb");
	if (!b.f)
		return -1;
	b.acc = 0;
	b.n = 0;
	fputc(0x78, b.f);
	fputc(0x01, b.f);
	put_bits(&b, 1, 1);	/* last block */
	put_bits(&b, 1, 2);	/* fixed Huffman */
	for (i = 0; i < sizeof(hdr); i++) {	/* with its NUL */
		unsigned c = (unsigned char)hdr[i];

		put_code(&b, 0x30 + c, 8);
		a = (a + c) % 65521;
		bsum = (bsum + a) % 65521;
	}
	put_code(&b, 0x30, 8);	/* the first zero */
	left = ZEROS_SIZE - 1;
	while (left >= 258) {
		put_code(&b, 0xc0 + 5, 8);	/* length 258: code 285 */
		put_code(&b, 0, 5);		/* distance 1 */
		left -= 258;
	}
	if (left >= 3) {			/* 2^30 - 1 = 258 q + 3 */
		if (left != 3)
			abort();
		put_code(&b, 1, 7);		/* length 3: code 257 */
		put_code(&b, 0, 5);
	} else {
		while (left--)
			put_code(&b, 0x30, 8);
	}
	put_code(&b, 0, 7);			/* end of block */
	if (b.n)
		put_bits(&b, 0, 8 - b.n);
	/* zeros leave a alone and add a to b once each */
	bsum = (bsum + (ZEROS_SIZE % 65521) * a) % 65521;
	fputc((int)(bsum >> 8), b.f);
	fputc((int)(bsum & 0xff), b.f);
	fputc((int)(a >> 8), b.f);
	fputc((int)(a & 0xff), b.f);
	return fclose(b.f);
}

static int run_git(struct buf *out, const char *a1, const char *a2,
		   const char *a3)
{
	char *argv[] = { "git", "--git-dir", gitdir, (char *)(uintptr_t)a1,
			 (char *)(uintptr_t)a2, (char *)(uintptr_t)a3, NULL };
	char *env[] = { "PATH=/usr/local/bin:/usr/bin:/bin", "HOME=/nonexistent",
			NULL };

	buf_reset(out);
	return runner_capture(argv, env, NULL, out, 4096, 120000);
}

static int check(const git_oid *id, const struct treelimits *lim,
		 struct treelimits_usage *u, int64_t *ms)
{
	int64_t t0 = now_ms();
	int r = treelimits_check(repo, id, lim, u);

	*ms = now_ms() - t0;
	return r;
}

int main(void)
{
	char tmpl[] = "/tmp/berth-treelimits-XXXXXX";
	struct treelimits lim, small;
	struct treelimits_usage u;
	git_treebuilder *b;
	git_oid x, y, t, sub, c, big, zeros;
	struct buf out = BUF_INIT;
	char name[300], *path;
	int64_t ms;
	int i, j, r;

	git_libgit2_init();
	if (!mkdtemp(tmpl))
		abort();
	gitdir = xasprintf("%s/repo.git", tmpl);
	if (git_repository_init(&repo, gitdir, 1) < 0)
		abort();
	treelimits_init(&lim);
	ok(lim.max_files == 200000 && lim.max_bytes == 512ULL << 20 &&
	   lim.max_depth == 128, "defaults");

	/* a plain tree */
	blob(&x, "hello\n");
	blob(&y, "web: ./run\n");
	b = tb();
	add(b, "Procfile", &y, GIT_FILEMODE_BLOB);
	add(b, "link", &x, GIT_FILEMODE_LINK);
	done(b, &sub);
	b = tb();
	add(b, "README", &x, GIT_FILEMODE_BLOB);
	add(b, "app", &sub, GIT_FILEMODE_TREE);
	add(b, "vendor-lib", &x, GIT_FILEMODE_COMMIT);	/* a submodule */
	done(b, &t);
	commit(&c, &t);
	r = check(&c, &lim, &u, &ms);
	ok(r == 0 && u.files == 4 && u.bytes == 6 + 11 + 6 && u.depth == 1,
	   "a plain commit fits: %llu files, %llu bytes, depth %u",
	   (unsigned long long)u.files, (unsigned long long)u.bytes, u.depth);
	ok(treelimits_check(repo, &t, &lim, NULL) == 0, "a tree id works too");
	small = lim;
	small.max_files = 3;
	ok(treelimits_check(repo, &c, &small, &u) == ERR_INVALID &&
	   !strcmp(error_last(), "checkout refused: more than 3 files"),
	   "file limit: %s", error_last());
	small = lim;
	small.max_bytes = 20;
	ok(treelimits_check(repo, &c, &small, &u) == ERR_INVALID &&
	   !strcmp(error_last(), "checkout refused: 'app/link' brings the files to 23 bytes, over the limit of 20 bytes"),
	   "byte limit: %s", error_last());
	small = lim;
	small.max_depth = 0;
	small.max_files = 0;
	small.max_bytes = 0;
	ok(treelimits_check(repo, &c, &small, &u) == 0 && u.files == 4,
	   "zero: no limits");

	/* a tree bomb: 8^10 files in 10 small trees */
	blob(&x, "x");
	b = tb();
	for (j = 0; j < 8; j++) {
		snprintf(name, sizeof(name), "f%d", j);
		add(b, name, &x, GIT_FILEMODE_BLOB);
	}
	done(b, &t);
	for (i = 1; i < 10; i++) {
		b = tb();
		for (j = 0; j < 8; j++) {
			snprintf(name, sizeof(name), "d%d", j);
			add(b, name, &t, GIT_FILEMODE_TREE);
		}
		done(b, &t);
	}
	commit(&c, &t);
	r = check(&c, &lim, &u, &ms);
	ok(r == ERR_INVALID &&
	   !strcmp(error_last(), "checkout refused: more than 200000 files"),
	   "tree bomb refused in %lld ms: %s", (long long)ms, error_last());
	ok(u.files == 200001 && u.depth == 9, "it stopped at the limit");

	/* too deep */
	b = tb();
	add(b, "f", &x, GIT_FILEMODE_BLOB);
	done(b, &t);
	for (i = 0; i < 200; i++) {
		b = tb();
		add(b, "d", &t, GIT_FILEMODE_TREE);
		done(b, &t);
	}
	commit(&c, &t);
	r = check(&c, &lim, &u, &ms);
	ok(r == ERR_INVALID && strstr(error_last(), "nested more than 128 folders deep") &&
	   !strncmp(error_last(), "checkout refused: 'd/d/d/", 25),
	   "200 folders deep refused in %lld ms", (long long)ms);

	/* paths too long */
	memset(name, 'n', 250);
	name[250] = '\0';
	b = tb();
	add(b, "f", &x, GIT_FILEMODE_BLOB);
	done(b, &t);
	for (i = 0; i < 20; i++) {
		b = tb();
		add(b, name, &t, GIT_FILEMODE_TREE);
		done(b, &t);
	}
	commit(&c, &t);
	ok(check(&c, &lim, &u, &ms) == ERR_INVALID &&
	   strstr(error_last(), "a path longer than 4095 bytes"),
	   "a 5000-byte path refused");

	/* a 1 GiB blob of zeros */
	path = xasprintf("%s/objects/%.2s", gitdir, ZEROS_OID);
	mkdir(path, 0755);
	free(path);
	path = xasprintf("%s/objects/%.2s/%s", gitdir, ZEROS_OID,
			 ZEROS_OID + 2);
	ok(write_zeros_object(path) == 0, "a 1 GiB blob of zeros written");
	{
		struct stat st;

		ok(stat(path, &st) == 0 && st.st_size < (8 << 20),
		   "in %lld kB on disk", (long long)st.st_size >> 10);
	}
	free(path);
	ok(run_git(&out, "cat-file", "-s", ZEROS_OID) == 0 &&
	   !strcmp(out.data, "1073741824\n"), "git reads it as 1073741824 bytes");
	git_oid_fromstr(&zeros, ZEROS_OID);
	b = tb();
	add(b, "README", &y, GIT_FILEMODE_BLOB);
	done(b, &sub);
	b = tb();
	add(b, "zeros", &zeros, GIT_FILEMODE_BLOB);
	done(b, &t);
	b = tb();
	add(b, "app", &sub, GIT_FILEMODE_TREE);
	add(b, "data", &t, GIT_FILEMODE_TREE);
	done(b, &t);
	commit(&c, &t);
	r = check(&c, &lim, &u, &ms);
	ok(r == ERR_INVALID &&
	   !strcmp(error_last(), "checkout refused: 'data/zeros' brings the files to 1.0 GiB, over the limit of 512 MiB"),
	   "1 GiB blob refused in %lld ms: %s", (long long)ms, error_last());

	/* packed: the size comes from the pack's entry header */
	{
		char *data = xmalloc(2 << 20);
		git_reference *ref = NULL;
		char hex[GIT_OID_HEXSZ + 1];

		for (i = 0; i < (2 << 20); i++)
			data[i] = (char)(i * 7 + i / 4096);
		if (git_blob_create_from_buffer(&big, repo, data, 2 << 20) < 0)
			abort();
		free(data);
		b = tb();
		add(b, "big.bin", &big, GIT_FILEMODE_BLOB);
		add(b, "small", &x, GIT_FILEMODE_BLOB);
		done(b, &t);
		commit(&c, &t);
		if (git_reference_create(&ref, repo, "refs/heads/main", &c, 1,
					 NULL) < 0)
			abort();
		git_reference_free(ref);
		git_oid_tostr(hex, sizeof(hex), &c);
		r = run_git(&out, "repack", "-a", "-d");
		ok(r == 0, "repacked by git");
		r = run_git(&out, "count-objects", "-v", NULL);
		ok(r == 0 && strstr(out.data, "\nin-pack: "),
		   "the objects are in a pack now");
	}
	small = lim;
	small.max_bytes = 1 << 20;
	ok(check(&c, &small, &u, &ms) == ERR_INVALID &&
	   strstr(error_last(), "'big.bin' brings the files to 2 MiB, over the limit of 1 MiB"),
	   "a packed blob over the limit: %s", error_last());
	small.max_bytes = 3 << 20;
	ok(check(&c, &small, &u, &ms) == 0 && u.bytes == (2 << 20) + 1,
	   "under the limit it fits");

	/* a missing object */
	git_oid_fromstr(&x, "0123456789012345678901234567890123456789");
	r = treelimits_check(repo, &x, &lim, &u);
	ok(r == -1 && !strncmp(error_last(), "cannot read object 0123456", 26),
	   "a missing object: %s", error_last());

	git_repository_free(repo);
	rm_rf(tmpl);
	free(gitdir);
	buf_release(&out);
	git_libgit2_shutdown();
	return tap_done();
}
