/*
 * upload: git upload-pack (clone and fetch, protocol v0) on libgit2.
 *
 * libgit2 has no server side of this, so negotiation is done here with
 * the smallest capability set stock git accepts: no multi_ack, so the
 * client sends wants, then haves in rounds; we ACK the first common
 * commit, answer NAK to each flush until then, and after "done" send the
 * pack.  The pack comes from git_packbuilder over a revwalk of the wants
 * minus the haves, is never thin (we do not advertise thin-pack), and
 * streams on side-band 1 with progress on band 2.
 */
#include "upload.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <git2.h>

#include "config.h"
#include "gitrefs.h"
#include "gitsvc.h"
#include "log.h"
#include "pktline.h"
#include "version.h"
#include "util.h"

#define UPLOAD_MAX_WANTS 100000
#define UPLOAD_MAX_HAVES 1000000

struct up {
	struct gitsvc_io *io;
	struct pkt_reader *rd;
	git_repository *repo;
	git_oid *adv;		/* advertised ids (tips and peeled tags) */
	size_t n_adv, alloc_adv;
	git_oid *wants, *haves;
	size_t n_wants, n_haves, alloc_wants, alloc_haves;
	int sideband;
	int no_progress;
	int io_dead;
};

static void oid_push(git_oid **v, size_t *n, size_t *alloc, const git_oid *id)
{
	if (*n == *alloc) {
		*alloc = *alloc ? *alloc * 2 : 64;
		*v = xrealloc(*v, *alloc * sizeof(**v));
	}
	git_oid_cpy(&(*v)[(*n)++], id);
}

static int oid_in(const git_oid *v, size_t n, const git_oid *id)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (!git_oid_cmp(&v[i], id))
			return 1;
	return 0;
}

static void up_progress(struct up *u, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static void up_progress(struct up *u, const char *fmt, ...)
{
	va_list ap;

	if (!u->sideband || u->no_progress)
		return;
	va_start(ap, fmt);
	pkt_send_vbandf(u->io, &u->io_dead, 2, fmt, ap);
	va_end(ap);
}

/*
 * HEAD first, then the refs under refs/ in order, each annotated tag
 * followed by its peeled "^{}" line, as git's upload-pack does.
 */
static int advertise(struct up *u)
{
	static const char caps_fmt[] =
		"side-band-64k no-progress%s%s object-format=sha1 "
		"agent=berth/" BERTH_VERSION;
	struct buf out = BUF_INIT;
	git_reference *head = NULL;
	struct gitrefs refs;
	size_t i;
	char hex[GIT_OID_HEXSZ + 1], *caps = NULL;
	const char *symref = NULL;
	git_oid head_id;
	int has_head = 0, ret = -1, err, first = 1;

	gitrefs_init(&refs);
	if (git_reference_lookup(&head, u->repo, "HEAD") == 0 &&
	    git_reference_name_to_id(&head_id, u->repo, "HEAD") == 0) {
		has_head = 1;
		if (git_reference_type(head) == GIT_REFERENCE_SYMBOLIC)
			symref = git_reference_symbolic_target(head);
	}
	caps = xasprintf(caps_fmt, symref ? " symref=HEAD:" : "",
			 symref ? symref : "");
	if (gitrefs_list(&refs, u->repo) < 0)
		goto out;
	if (has_head) {
		if (gitrefs_adv_line(&out, &head_id, "HEAD", caps) < 0)
			goto out;
		oid_push(&u->adv, &u->n_adv, &u->alloc_adv, &head_id);
		first = 0;
	}
	for (i = 0; i < refs.n; i++) {
		struct gitrefs_ref *r = &refs.v[i];
		git_object *obj = NULL, *peeled = NULL;

		if (gitrefs_adv_line(&out, &r->id, r->name,
				     first ? caps : NULL) < 0)
			goto out;
		first = 0;
		oid_push(&u->adv, &u->n_adv, &u->alloc_adv, &r->id);
		err = 0;
		if (git_object_lookup(&obj, u->repo, &r->id,
				      GIT_OBJECT_ANY) == 0 &&
		    git_object_type(obj) == GIT_OBJECT_TAG &&
		    git_object_peel(&peeled, obj, GIT_OBJECT_ANY) == 0) {
			git_oid_tostr(hex, sizeof(hex), git_object_id(peeled));
			err = pkt_buf_addf(&out, "%s %s^{}\n", hex, r->name);
			oid_push(&u->adv, &u->n_adv, &u->alloc_adv,
				 git_object_id(peeled));
		}
		git_object_free(peeled);
		git_object_free(obj);
		if (err < 0)
			goto out;
	}
	/* an empty repository: clones of it are empty too */
	if (first &&
	    gitrefs_adv_line(&out, NULL, "capabilities^{}", caps) < 0)
		goto out;
	if (pkt_buf_flush(&out) < 0 ||
	    pkt_send(u->io, &u->io_dead, out.data, out.len) < 0)
		goto out;
	ret = 0;
out:
	gitrefs_release(&refs);
	free(caps);
	git_reference_free(head);
	buf_release(&out);
	return ret;
}

static int parse_id(git_oid *out, const char *hex, size_t len)
{
	size_t i;

	if (len < GIT_OID_HEXSZ)
		return -1;
	for (i = 0; i < GIT_OID_HEXSZ; i++)
		if (!((hex[i] >= '0' && hex[i] <= '9') ||
		      (hex[i] >= 'a' && hex[i] <= 'f')))
			return -1;
	if (len > GIT_OID_HEXSZ && hex[GIT_OID_HEXSZ] != ' ')
		return -1;
	return git_oid_fromstrn(out, hex, GIT_OID_HEXSZ);
}

static void parse_want_caps(struct up *u, const char *caps)
{
	const char *p = caps;

	while (*p) {
		const char *w = p;
		size_t n;

		while (*p && *p != ' ')
			p++;
		n = (size_t)(p - w);
		if (n == 13 && !memcmp(w, "side-band-64k", 13))
			u->sideband = 1;
		else if (n == 11 && !memcmp(w, "no-progress", 11))
			u->no_progress = 1;
		while (*p == ' ')
			p++;
	}
}

/* 0 with wants read (none: the client only listed refs), -1 on error. */
static int read_wants(struct up *u)
{
	const char *data;
	size_t len;
	git_oid id;
	char hex[GIT_OID_HEXSZ + 1];
	int t;

	for (;;) {
		t = pkt_read_line(u->rd, &data, &len, u->n_wants == 0,
				  "in the want list");
		if (t < 0)
			return -1;
		if (t == PKT_EOF || t == PKT_FLUSH)
			return 0;
		if (len < 5 || memcmp(data, "want ", 5) ||
		    parse_id(&id, data + 5, len - 5) < 0)
			return error_set("expected a want line");
		if (u->n_wants == 0 && len > 5 + GIT_OID_HEXSZ)
			parse_want_caps(u, data + 5 + GIT_OID_HEXSZ + 1);
		if (!oid_in(u->adv, u->n_adv, &id)) {
			git_oid_tostr(hex, sizeof(hex), &id);
			return error_set("not our ref %s", hex);
		}
		if (u->n_wants >= UPLOAD_MAX_WANTS)
			return error_set("too many wants");
		oid_push(&u->wants, &u->n_wants, &u->alloc_wants, &id);
	}
}

/* Without multi_ack (git's upload-pack get_common_commits): ACK the
 * first common commit, NAK each flush until one is found, stop at done. */
static int negotiate(struct up *u)
{
	git_odb *odb = NULL;
	const char *data;
	char hex[GIT_OID_HEXSZ + 1];
	size_t len;
	int ret = -1, t;

	if (git_repository_odb(&odb, u->repo) < 0) {
		gitsvc_lg2_error("cannot open object database");
		goto out;
	}
	for (;;) {
		git_oid id;
		size_t sz;
		git_object_t type;

		t = pkt_read_line(u->rd, &data, &len, 0, "during negotiation");
		if (t < 0)
			goto out;
		if (t == PKT_FLUSH) {
			if (u->n_haves == 0 && pkt_writef(u->io, "NAK\n") < 0)
				goto out;
			continue;
		}
		if (len == 4 && !memcmp(data, "done", 4)) {
			if (u->n_haves == 0 && pkt_writef(u->io, "NAK\n") < 0)
				goto out;
			break;
		}
		if (len < 5 || memcmp(data, "have ", 5) ||
		    parse_id(&id, data + 5, len - 5) < 0) {
			error_set("expected have or done");
			goto out;
		}
		/* duplicates are harmless: each have only hides history */
		if (git_odb_read_header(&sz, &type, odb, &id) < 0 ||
		    type != GIT_OBJECT_COMMIT)
			continue;
		if (u->n_haves >= UPLOAD_MAX_HAVES) {
			error_set("too many haves");
			goto out;
		}
		oid_push(&u->haves, &u->n_haves, &u->alloc_haves, &id);
		if (u->n_haves == 1) {
			git_oid_tostr(hex, sizeof(hex), &id);
			if (pkt_writef(u->io, "ACK %s\n", hex) < 0)
				goto out;
		}
	}
	ret = 0;
out:
	git_odb_free(odb);
	return ret;
}

static int send_chunk(void *data, size_t size, void *arg)
{
	struct up *u = arg;

	if (u->sideband)
		return pkt_send_band(u->io, &u->io_dead, 1, data, size);
	return pkt_send(u->io, &u->io_dead, data, size);
}

/* Put a want into the pack: tags as themselves plus what they point to. */
static int insert_want(git_packbuilder *pb, git_revwalk *walk,
		       git_repository *repo, const git_oid *want)
{
	git_object *obj = NULL;
	git_oid id;
	int ret = -1, depth = 0;

	git_oid_cpy(&id, want);
	for (;;) {
		if (git_object_lookup(&obj, repo, &id, GIT_OBJECT_ANY) < 0)
			goto out;
		switch (git_object_type(obj)) {
		case GIT_OBJECT_TAG:
			if (git_packbuilder_insert(pb, &id, NULL) < 0 ||
			    ++depth > 32)
				goto out;
			git_oid_cpy(&id, git_tag_target_id((git_tag *)obj));
			git_object_free(obj);
			obj = NULL;
			continue;
		case GIT_OBJECT_COMMIT:
			if (git_revwalk_push(walk, &id) < 0)
				goto out;
			break;
		case GIT_OBJECT_TREE:
			if (git_packbuilder_insert_tree(pb, &id) < 0)
				goto out;
			break;
		default:
			if (git_packbuilder_insert(pb, &id, NULL) < 0)
				goto out;
			break;
		}
		break;
	}
	ret = 0;
out:
	git_object_free(obj);
	return ret;
}

static int send_pack(struct up *u)
{
	git_packbuilder *pb = NULL;
	git_revwalk *walk = NULL;
	size_t i;
	int ret = -1;

	if (git_packbuilder_new(&pb, u->repo) < 0 ||
	    git_revwalk_new(&walk, u->repo) < 0) {
		gitsvc_lg2_error("cannot build pack");
		goto out;
	}
	git_packbuilder_set_threads(pb, 0);
	for (i = 0; i < u->n_wants; i++)
		if (insert_want(pb, walk, u->repo, &u->wants[i]) < 0) {
			gitsvc_lg2_error("cannot build pack");
			goto out;
		}
	for (i = 0; i < u->n_haves; i++)
		if (git_revwalk_hide(walk, &u->haves[i]) < 0) {
			gitsvc_lg2_error("cannot build pack");
			goto out;
		}
	if (git_packbuilder_insert_walk(pb, walk) < 0) {
		gitsvc_lg2_error("cannot build pack");
		goto out;
	}
	up_progress(u, "Counting objects: %zu, done.\n",
		    git_packbuilder_object_count(pb));
	if (git_packbuilder_foreach(pb, send_chunk, u) < 0) {
		if (!u->io_dead)
			gitsvc_lg2_error("cannot send pack");
		else
			error_set("the client hung up during the pack");
		goto out;
	}
	if (u->sideband && pkt_send(u->io, &u->io_dead, "0000", 4) < 0)
		goto out;
	ret = 0;
out:
	git_revwalk_free(walk);
	git_packbuilder_free(pb);
	return ret;
}

int upload_pack(const struct config *cfg, const char *app,
		struct gitsvc_io *io)
{
	struct up u;
	char *path = NULL;
	int lg2 = 0, status = 1, opened;

	memset(&u, 0, sizeof(u));
	u.io = io;
	opened = gitsvc_repo_open(&u.repo, &path, cfg, app, io);
	if (opened < 0 && opened != ERR_NOTFOUND)
		goto out;
	lg2 = 1;
	if (opened == ERR_NOTFOUND) {
		error_set("no app '%s' (push to it first)", app);
		pkt_writef(io, "ERR %s\n", error_last());
		goto out;
	}
	u.rd = xmalloc(sizeof(*u.rd));
	pkt_reader_init(u.rd, io);
	if (advertise(&u) < 0)
		goto out;
	if (read_wants(&u) < 0)
		goto fail;
	if (u.n_wants == 0) {
		status = 0;
		goto out;
	}
	if (negotiate(&u) < 0 || send_pack(&u) < 0)
		goto fail;
	status = 0;
	goto out;
fail:
	log_warnx("'%s': upload-pack: %s", app, error_last());
	if (u.sideband) {
		char *m = xasprintf("error: %s\n", error_last());

		pkt_send_band(io, &u.io_dead, 3, m, strlen(m));
		free(m);
	}
out:
	free(u.adv);
	free(u.wants);
	free(u.haves);
	free(u.rd);
	git_repository_free(u.repo);
	free(path);
	if (lg2)
		git_libgit2_shutdown();
	return status;
}
