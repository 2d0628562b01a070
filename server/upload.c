/*
 * upload: git upload-pack (clone and fetch) on libgit2.  See upload.h and
 * docs/git.md.
 *
 * libgit2 has no server side of this, so the protocol is done here after
 * git's own upload-pack.c (Documentation/gitprotocol-pack.txt,
 * gitprotocol-v2.txt):
 *   v0/v1: advertise refs -> want list (with shallow/deepen lines) ->
 *          shallow-info -> haves in rounds, ACK/NAK (multi_ack,
 *          multi_ack_detailed or neither) -> done -> pack;
 *   v2:    advertise capabilities -> commands: ls-refs, fetch (each
 *          request complete in itself: wants, haves, done, deepen...).
 * The pack is written by packwrite.c from a walk of the wants minus what
 * the client has (its bytes copied from the stored packs, deltas reused), is never thin (thin-pack is not advertised), and
 * streams on side-band 1 with progress on band 2.  For a shallow answer
 * the walk is ours (libgit2's revwalk knows no shallow boundaries).
 */
#include "upload.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clonepack.h"
#include "config.h"
#include "gitrefs.h"
#include "log.h"
#include "packwrite.h"
#include "pktline.h"
#include "version.h"
#include "banned.h"

#define MAX_PREFIXES 65		/* ls-refs: more means all refs, as git */
#define MAX_EDGES 256		/* commits whose trees the client has */

/* ---- request parsing ------------------------------------------------ */

void upload_request_init(struct upload_request *req)
{
	memset(req, 0, sizeof(*req));
	req->deepen_not.v = NULL;
}

void upload_request_release(struct upload_request *req)
{
	oidvec_release(&req->wants);
	oidvec_release(&req->haves);
	oidvec_release(&req->shallows);
	strv_release(&req->deepen_not);
	upload_request_init(req);
}

int upload_request_is_shallow(const struct upload_request *req)
{
	return req->depth || req->deepen_since || req->deepen_not.n ||
	       req->shallows.n;
}

/* "ID" or "ID SP rest": 40 lower-case hex digits.  *rest: after the SP. */
static int parse_id(git_oid *out, const char *hex, size_t len,
		    const char **rest)
{
	size_t i;

	if (len < GIT_OID_HEXSZ)
		return -1;
	for (i = 0; i < GIT_OID_HEXSZ; i++)
		if (!((hex[i] >= '0' && hex[i] <= '9') ||
		      (hex[i] >= 'a' && hex[i] <= 'f')))
			return -1;
	if (len > GIT_OID_HEXSZ && (hex[GIT_OID_HEXSZ] != ' ' || !rest))
		return -1;
	if (rest)
		*rest = len > GIT_OID_HEXSZ ? hex + GIT_OID_HEXSZ + 1 : NULL;
	return git_oid_fromstrn(out, hex, GIT_OID_HEXSZ);
}

/* "word REST" with REST not empty: REST, else NULL. */
static const char *after(const char *line, size_t len, const char *word)
{
	size_t n = strlen(word);

	if (len > n + 1 && !memcmp(line, word, n) && line[n] == ' ')
		return line + n + 1;
	return NULL;
}

static void parse_caps(struct upload_request *req, const char *p,
		       const char *end)
{
	static const struct {
		const char *name;
		unsigned flag;
	} known[] = {
		{ "side-band", UPLOAD_SIDE_BAND },
		{ "side-band-64k", UPLOAD_SIDE_BAND_64K },
		{ "no-progress", UPLOAD_NO_PROGRESS },
		{ "multi_ack", UPLOAD_MULTI_ACK },
		{ "multi_ack_detailed", UPLOAD_MULTI_ACK_DETAILED },
		{ "include-tag", UPLOAD_INCLUDE_TAG },
		{ "ofs-delta", UPLOAD_OFS_DELTA },
		{ "thin-pack", UPLOAD_THIN_PACK },
		{ "deepen-relative", UPLOAD_DEEPEN_RELATIVE },
	};

	while (p < end) {
		const char *w = p;
		size_t n, i;

		while (p < end && *p != ' ')
			p++;
		n = (size_t)(p - w);
		while (p < end && *p == ' ')
			p++;
		for (i = 0; i < ARRAY_SIZE(known); i++)
			if (strlen(known[i].name) == n &&
			    !memcmp(known[i].name, w, n))
				req->caps |= known[i].flag;
		/* unknown capabilities (agent=, session-id=) are ignored */
	}
}

static int push_limited(struct oidvec *v, const git_oid *id, size_t max,
			const char *what)
{
	if (v->n >= max)
		return error_set("too many %s", what);
	oidvec_push(v, id);
	return 0;
}

/* The shallow and deepen lines both protocol versions share. */
static int parse_deepen(struct upload_request *req, const char *line,
			size_t len)
{
	const char *arg;
	git_oid id;
	char *end;

	if ((arg = after(line, len, "shallow"))) {
		if (parse_id(&id, arg, len - (size_t)(arg - line), NULL) < 0)
			return error_set("invalid shallow line");
		return push_limited(&req->shallows, &id, UPLOAD_MAX_SHALLOWS,
				    "shallow lines");
	}
	if ((arg = after(line, len, "deepen"))) {
		long d;

		errno = 0;
		d = strtol(arg, &end, 10);
		if (errno || *end || end == arg || d <= 0 ||
		    d > UPLOAD_INFINITE_DEPTH)
			return error_set("invalid deepen: '%.40s'", arg);
		req->depth = (int)d;
		return 0;
	}
	if ((arg = after(line, len, "deepen-since"))) {
		long long t;

		errno = 0;
		t = strtoll(arg, &end, 10);
		if (errno || *end || end == arg || t <= 0)
			return error_set("invalid deepen-since: '%.40s'", arg);
		req->deepen_since = t;
		return 0;
	}
	if ((arg = after(line, len, "deepen-not"))) {
		if (req->deepen_not.n >= UPLOAD_MAX_DEEPEN_NOT)
			return error_set("too many deepen-not lines");
		if (len - (size_t)(arg - line) > 1024 ||
		    memchr(arg, '\0', len - (size_t)(arg - line)))
			return error_set("invalid deepen-not");
		strv_push(&req->deepen_not, arg);
		return 0;
	}
	return 1;
}

int upload_parse_want_line(struct upload_request *req, const char *line,
			   size_t len)
{
	const char *arg, *caps = NULL;
	git_oid id;
	int r;

	r = parse_deepen(req, line, len);
	if (r <= 0)
		return r;
	arg = after(line, len, "want");
	if (!arg || parse_id(&id, arg, len - (size_t)(arg - line), &caps) < 0)
		return error_set("expected a want line");
	if (caps)
		parse_caps(req, caps, line + len);
	return push_limited(&req->wants, &id, UPLOAD_MAX_WANTS, "wants");
}

int upload_parse_fetch_arg(struct upload_request *req, const char *line,
			   size_t len)
{
	static const struct {
		const char *name;
		unsigned flag;
	} flags[] = {
		{ "thin-pack", UPLOAD_THIN_PACK },
		{ "ofs-delta", UPLOAD_OFS_DELTA },
		{ "no-progress", UPLOAD_NO_PROGRESS },
		{ "include-tag", UPLOAD_INCLUDE_TAG },
		{ "wait-for-done", UPLOAD_WAIT_FOR_DONE },
		{ "deepen-relative", UPLOAD_DEEPEN_RELATIVE },
	};
	const char *arg;
	git_oid id;
	size_t i;
	int r;

	for (i = 0; i < ARRAY_SIZE(flags); i++)
		if (strlen(flags[i].name) == len &&
		    !memcmp(flags[i].name, line, len)) {
			req->caps |= flags[i].flag;
			return 0;
		}
	if (len == 4 && !memcmp(line, "done", 4)) {
		req->done = 1;
		return 0;
	}
	r = parse_deepen(req, line, len);
	if (r <= 0)
		return r;
	if ((arg = after(line, len, "want"))) {
		if (parse_id(&id, arg, len - (size_t)(arg - line), NULL) < 0)
			return error_set("invalid want line");
		return push_limited(&req->wants, &id, UPLOAD_MAX_WANTS,
				    "wants");
	}
	if ((arg = after(line, len, "have"))) {
		if (parse_id(&id, arg, len - (size_t)(arg - line), NULL) < 0)
			return error_set("invalid have line");
		return push_limited(&req->haves, &id, UPLOAD_MAX_HAVES,
				    "haves");
	}
	return error_set("unexpected line: '%.*s'", len > 64 ? 64 : (int)len,
			 line);
}

/* ---- the session ---------------------------------------------------- */

struct up {
	const struct config *cfg;
	struct gitsvc_io *io;
	struct pkt_reader *rd;
	git_repository *repo;
	git_odb *odb;
	int version;
	struct gitrefs refs;	/* the refs under refs/, sorted */
	struct oidset adv;	/* what may be wanted: tips, peeled tags */
	int adv_ready;
	struct upload_request req;
	/* negotiation: the haves we have */
	struct oidvec common;	/* commits, in the order they came */
	struct oidset common_set;
	size_t n_have_obj;	/* common objects of any type */
	struct oidset want_ready; /* wants with a common ancestor (value 1) */
	size_t checked;		/* commons tested against every want */
	int ready;
	/* a shallow answer */
	struct oidset boundary;	/* commits sent without their parents */
	struct oidvec extra_wants; /* parents of unshallowed commits */
	struct oidvec extra_nots;  /* unshallowed commits: the client has */
	int sideband;
	int pack_started;	/* errors go on band 3 from here on */
	struct clonepack_writer *keep;	/* the pack kept as it is sent */
	int io_dead;
};

static void up_reset_request(struct up *u)
{
	upload_request_release(&u->req);
	oidvec_release(&u->common);
	oidset_release(&u->common_set);
	oidset_release(&u->want_ready);
	oidset_release(&u->boundary);
	oidvec_release(&u->extra_wants);
	oidvec_release(&u->extra_nots);
	u->n_have_obj = 0;
	u->checked = 0;
	u->ready = 0;
}

/* One pkt-line to the client; failures make it "dead" (pktline.h). */
static int up_line(struct up *u, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static int up_line(struct up *u, const char *fmt, ...)
{
	struct buf b = BUF_INIT;
	char *p;
	va_list ap;
	int ret;

	va_start(ap, fmt);
	p = xvasprintf(fmt, ap);
	va_end(ap);
	ret = pkt_buf_add(&b, p, strlen(p));
	if (ret == 0)
		ret = pkt_send(u->io, &u->io_dead, b.data, b.len);
	free(p);
	buf_release(&b);
	return ret;
}

static void up_progress(struct up *u, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static void up_progress(struct up *u, const char *fmt, ...)
{
	va_list ap;

	if (!u->sideband || (u->req.caps & UPLOAD_NO_PROGRESS))
		return;
	va_start(ap, fmt);
	pkt_send_vbandf(u->io, &u->io_dead, 2, fmt, ap);
	va_end(ap);
}

/* The peeled id of an annotated tag (out), 1; 0 for other objects. */
static int peeled_tag(struct up *u, const git_oid *id, git_oid *out)
{
	git_object *obj = NULL, *peeled = NULL;
	int ret = 0;

	if (git_object_lookup(&obj, u->repo, id, GIT_OBJECT_ANY) == 0 &&
	    git_object_type(obj) == GIT_OBJECT_TAG &&
	    git_object_peel(&peeled, obj, GIT_OBJECT_ANY) == 0) {
		git_oid_cpy(out, git_object_id(peeled));
		ret = 1;
	}
	git_object_free(peeled);
	git_object_free(obj);
	return ret;
}

/* The id HEAD resolves to (1), and its symbolic target if it has one
 * (*target, caller frees; NULL otherwise). */
static int read_head(struct up *u, git_oid *id, char **target)
{
	git_reference *head = NULL;
	int ret;

	*target = NULL;
	if (git_reference_lookup(&head, u->repo, "HEAD") < 0)
		return 0;
	if (git_reference_type(head) == GIT_REFERENCE_SYMBOLIC)
		*target = xstrdup(git_reference_symbolic_target(head));
	ret = git_reference_name_to_id(id, u->repo, "HEAD") == 0;
	git_reference_free(head);
	return ret;
}

/* Load the refs and the set of ids a client may want. */
static int load_refs(struct up *u)
{
	git_oid id, peeled;
	char *target;
	size_t i;

	if (u->adv_ready)
		return 0;
	if (gitrefs_list(&u->refs, u->repo) < 0)
		return -1;
	if (read_head(u, &id, &target))
		oidset_insert(&u->adv, &id, NULL);
	free(target);
	for (i = 0; i < u->refs.n; i++) {
		oidset_insert(&u->adv, &u->refs.v[i].id, NULL);
		if (peeled_tag(u, &u->refs.v[i].id, &peeled))
			oidset_insert(&u->adv, &peeled, NULL);
	}
	u->adv_ready = 1;
	return 0;
}

/*
 * v0: HEAD first, then the refs under refs/ in order, each annotated tag
 * followed by its peeled "^{}" line, as git's upload-pack does.
 */
static int advertise_v0(struct up *u)
{
	static const char caps_fmt[] =
		"multi_ack side-band-64k ofs-delta shallow deepen-since "
		"deepen-not deepen-relative no-progress include-tag "
		"multi_ack_detailed"
		"%s%s object-format=sha1 agent=berth/" BERTH_VERSION;
	struct buf out = BUF_INIT;
	char hex[GIT_OID_HEXSZ + 1], *caps = NULL, *target = NULL;
	git_oid head_id, peeled;
	size_t i;
	int ret = -1, first = 1;

	if (load_refs(u) < 0)
		goto out;
	if (u->version == 1 && pkt_buf_addf(&out, "version 1\n") < 0)
		goto out;
	first = !read_head(u, &head_id, &target);
	caps = xasprintf(caps_fmt, target ? " symref=HEAD:" : "",
			 target ? target : "");
	if (!first && gitrefs_adv_line(&out, &head_id, "HEAD", caps) < 0)
		goto out;
	for (i = 0; i < u->refs.n; i++) {
		struct gitrefs_ref *r = &u->refs.v[i];

		if (gitrefs_adv_line(&out, &r->id, r->name,
				     first ? caps : NULL) < 0)
			goto out;
		first = 0;
		if (peeled_tag(u, &r->id, &peeled)) {
			git_oid_tostr(hex, sizeof(hex), &peeled);
			if (pkt_buf_addf(&out, "%s %s^{}\n", hex, r->name) < 0)
				goto out;
		}
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
	free(caps);
	free(target);
	buf_release(&out);
	return ret;
}

/* Every want must be something we advertised (git's "not our ref"). */
static int check_wants(struct up *u)
{
	char hex[GIT_OID_HEXSZ + 1];
	size_t i;

	for (i = 0; i < u->req.wants.n; i++)
		if (!oidset_contains(&u->adv, &u->req.wants.v[i])) {
			git_oid_tostr(hex, sizeof(hex), &u->req.wants.v[i]);
			return error_set("not our ref %s", hex);
		}
	return 0;
}

/* v0: the want list up to its flush; none: the client only listed refs. */
static int read_wants(struct up *u)
{
	const char *data;
	size_t len;
	int t;

	for (;;) {
		t = pkt_read_line(u->rd, &data, &len,
				  u->req.wants.n == 0, "in the want list");
		if (t < 0)
			return -1;
		if (t == PKT_EOF || t == PKT_FLUSH)
			break;
		if (upload_parse_want_line(&u->req, data, len) < 0)
			return -1;
	}
	if (u->req.caps & UPLOAD_SIDE_BAND_64K)
		u->sideband = 1;
	return check_wants(u);
}

/* ---- commits -------------------------------------------------------- */

/* The commit id is or peels to (1 with *out), 0 if it is no commit. */
static int peel_commit(struct up *u, const git_oid *id, git_oid *out)
{
	git_object *obj = NULL, *c = NULL;
	int ret = 0;

	if (git_object_lookup(&obj, u->repo, id, GIT_OBJECT_ANY) < 0)
		return gitsvc_lg2_error("cannot read object");
	if (git_object_peel(&c, obj, GIT_OBJECT_COMMIT) == 0) {
		git_oid_cpy(out, git_object_id(c));
		ret = 1;
	}
	git_object_free(c);
	git_object_free(obj);
	return ret;
}

/* Append the commit's parents to out; its time in *when if not NULL. */
static int commit_parents(struct up *u, const git_oid *id,
			  struct oidvec *out, int64_t *when)
{
	git_commit *c = NULL;
	unsigned i, n;

	if (git_commit_lookup(&c, u->repo, id) < 0)
		return gitsvc_lg2_error("cannot read commit");
	n = git_commit_parentcount(c);
	for (i = 0; i < n; i++)
		oidvec_push(out, git_commit_parent_id(c, i));
	if (when)
		*when = git_commit_time(c);
	git_commit_free(c);
	return 0;
}

/* ---- negotiation ---------------------------------------------------- */

/*
 * A have we hold: 1 if it is new, 0 if we saw it, -1 if we do not have
 * it.  Commits among them hide their history from the pack.
 */
static int got_have(struct up *u, const git_oid *id)
{
	size_t sz;
	git_object_t type;

	if (git_odb_read_header(&sz, &type, u->odb, id) < 0)
		return -1;
	if (!oidset_insert(&u->common_set, id, NULL))
		return 0;
	u->n_have_obj++;
	if (type == GIT_OBJECT_COMMIT)
		oidvec_push(&u->common, id);
	return 1;
}

/*
 * git's ok_to_give_up(): every wanted commit has a common commit among
 * its ancestors (or is one), so the client may stop sending haves.
 * Incremental: each new common is tested against the wants still open.
 */
static int ok_to_give_up(struct up *u)
{
	size_t i, j;
	int open;

	if (u->ready || u->common.n == 0)
		return u->ready;
	for (; u->checked < u->common.n; u->checked++) {
		const git_oid *c = &u->common.v[u->checked];

		for (j = 0; j < u->req.wants.n; j++) {
			int *done;
			git_oid w;

			oidset_insert(&u->want_ready, &u->req.wants.v[j],
				      &done);
			if (*done)
				continue;
			if (peel_commit(u, &u->req.wants.v[j], &w) != 1 ||
			    !git_oid_cmp(&w, c) ||
			    git_graph_descendant_of(u->repo, &w, c) == 1)
				*done = 1;
		}
	}
	open = 0;
	for (i = 0; i < u->req.wants.n; i++) {
		int *done = oidset_value(&u->want_ready, &u->req.wants.v[i]);

		if (!done || !*done)
			open = 1;
	}
	u->ready = !open;
	return u->ready;
}

/*
 * v0/v1 haves in rounds, answered as git's get_common_commits() does for
 * the client's choice of multi_ack_detailed, multi_ack or neither.
 */
static int negotiate_v0(struct up *u)
{
	int multi = (u->req.caps & UPLOAD_MULTI_ACK_DETAILED) ? 2 :
		    (u->req.caps & UPLOAD_MULTI_ACK) ? 1 : 0;
	int got_common = 0, got_other = 0, acked = 0;
	char last[GIT_OID_HEXSZ + 1] = "", hex[GIT_OID_HEXSZ + 1];
	const char *data, *arg;
	size_t len;
	git_oid id;
	int t;

	for (;;) {
		t = pkt_read_line(u->rd, &data, &len, 0, "during negotiation");
		if (t < 0)
			return -1;
		if (t == PKT_FLUSH) {
			if (multi == 2 && got_common && !got_other &&
			    ok_to_give_up(u) && up_line(u, "ACK %s ready\n",
							last) < 0)
				return -1;
			if ((u->n_have_obj == 0 || multi) &&
			    up_line(u, "NAK\n") < 0)
				return -1;
			got_common = got_other = 0;
			continue;
		}
		if (len == 4 && !memcmp(data, "done", 4)) {
			if (u->n_have_obj > 0) {
				if (multi)
					return up_line(u, "ACK %s\n", last);
				return 0;
			}
			return up_line(u, "NAK\n");
		}
		arg = after(data, len, "have");
		if (!arg || parse_id(&id, arg, len - 5, NULL) < 0)
			return error_set("expected have or done");
		git_oid_tostr(hex, sizeof(hex), &id);
		if (got_have(u, &id) < 0) {
			got_other = 1;
			if (multi && ok_to_give_up(u) &&
			    up_line(u, "ACK %s %s\n", hex,
				    multi == 2 ? "ready" : "continue") < 0)
				return -1;
			continue;
		}
		if (u->n_have_obj > UPLOAD_MAX_HAVES)
			return error_set("too many haves");
		got_common = 1;
		memcpy(last, hex, sizeof(last));
		if (multi == 2) {
			if (up_line(u, "ACK %s common\n", hex) < 0)
				return -1;
		} else if (multi) {
			if (up_line(u, "ACK %s continue\n", hex) < 0)
				return -1;
		} else if (!acked) {
			acked = 1;
			if (up_line(u, "ACK %s\n", hex) < 0)
				return -1;
		}
	}
}

/* ---- shallow -------------------------------------------------------- */

/*
 * git's get_shallow_commits(): walk down from heads; a commit at depth
 * 'depth' is a boundary (result), everything above it is not_shallow.  A
 * commit reached again on a shorter path is walked again from there.
 */
static int shallow_by_depth(struct up *u, const struct oidvec *heads,
			    int depth, struct oidset *not_shallow,
			    struct oidvec *result)
{
	struct oidset depths = OIDSET_INIT;
	struct oidvec stack = OIDVEC_INIT, parents = OIDVEC_INIT;
	git_oid commit;
	size_t i = 0, j;
	int have = 0, cur = 0, ret = -1, r, *slot;

	while (have || i < heads->n || stack.n) {
		if (!have) {
			if (i < heads->n) {
				r = peel_commit(u, &heads->v[i++], &commit);
				if (r < 0)
					goto out;
				if (r == 0)
					continue;
				oidset_insert(&depths, &commit, &slot);
				*slot = 0;
				cur = 0;
			} else {
				git_oid_cpy(&commit, &stack.v[--stack.n]);
				cur = *oidset_value(&depths, &commit);
			}
			have = 1;
		}
		cur++;
		have = 0;
		if (depth != UPLOAD_INFINITE_DEPTH && cur >= depth) {
			oidvec_push(result, &commit);
			continue;
		}
		oidset_insert(not_shallow, &commit, NULL);
		parents.n = 0;
		if (commit_parents(u, &commit, &parents, NULL) < 0)
			goto out;
		for (j = 0; j < parents.n; j++) {
			if (!oidset_insert(&depths, &parents.v[j], &slot) &&
			    cur >= *slot)
				continue;
			*slot = cur;
			if (j + 1 < parents.n) {
				oidvec_push(&stack, &parents.v[j]);
			} else {
				git_oid_cpy(&commit, &parents.v[j]);
				have = 1;
			}
		}
	}
	ret = 0;
out:
	oidset_release(&depths);
	oidvec_release(&stack);
	oidvec_release(&parents);
	return ret;
}

/*
 * git's get_shallow_commits_by_rev_list() for deepen-since and
 * deepen-not: the commits reachable from the wants that are new enough
 * and not reachable from the deepen-not refs; those with a parent
 * outside that set are the boundary (result).
 */
static int shallow_by_rev_list(struct up *u, struct oidset *not_shallow,
			       struct oidvec *result)
{
	struct oidset allowed = OIDSET_INIT, in = OIDSET_INIT;
	struct oidvec todo = OIDVEC_INIT, order = OIDVEC_INIT;
	struct oidvec parents = OIDVEC_INIT;
	git_revwalk *walk = NULL;
	git_oid id;
	size_t i, j;
	int ret = -1, r;

	for (i = 0; i < u->req.wants.n; i++) {
		r = peel_commit(u, &u->req.wants.v[i], &id);
		if (r < 0)
			goto out;
		if (r)
			oidvec_push(&todo, &id);
	}
	if (u->req.deepen_not.n) {
		if (git_revwalk_new(&walk, u->repo) < 0)
			goto lg2;
		for (i = 0; i < todo.n; i++)
			if (git_revwalk_push(walk, &todo.v[i]) < 0)
				goto lg2;
		for (i = 0; i < u->req.deepen_not.n; i++) {
			git_reference *ref = NULL;
			const char *name = u->req.deepen_not.v[i];

			if (git_reference_dwim(&ref, u->repo, name) < 0 ||
			    git_reference_name_to_id(&id, u->repo,
						     git_reference_name(ref))
			    < 0) {
				git_reference_free(ref);
				error_set("deepen-not: no ref '%.100s'", name);
				goto out;
			}
			git_reference_free(ref);
			r = peel_commit(u, &id, &id);
			if (r < 0)
				goto out;
			if (r && git_revwalk_hide(walk, &id) < 0)
				goto lg2;
		}
		while ((r = git_revwalk_next(&id, walk)) == 0)
			oidset_insert(&allowed, &id, NULL);
		if (r != GIT_ITEROVER)
			goto lg2;
	}
	while (todo.n) {
		int64_t when;

		git_oid_cpy(&id, &todo.v[--todo.n]);
		if (oidset_contains(&in, &id))
			continue;
		if (u->req.deepen_not.n && !oidset_contains(&allowed, &id))
			continue;
		parents.n = 0;
		if (commit_parents(u, &id, &parents, &when) < 0)
			goto out;
		if (u->req.deepen_since && when < u->req.deepen_since)
			continue;
		oidset_insert(&in, &id, NULL);
		oidvec_push(&order, &id);
		for (j = 0; j < parents.n; j++)
			oidvec_push(&todo, &parents.v[j]);
	}
	if (order.n == 0) {
		error_set("no commits selected for shallow requests");
		goto out;
	}
	for (i = 0; i < order.n; i++) {
		parents.n = 0;
		if (commit_parents(u, &order.v[i], &parents, NULL) < 0)
			goto out;
		for (j = 0; j < parents.n; j++)
			if (!oidset_contains(&in, &parents.v[j]))
				break;
		if (j < parents.n)
			oidvec_push(result, &order.v[i]);
		else
			oidset_insert(not_shallow, &order.v[i], NULL);
	}
	ret = 0;
	goto out;
lg2:
	gitsvc_lg2_error("cannot walk history");
out:
	git_revwalk_free(walk);
	oidset_release(&allowed);
	oidset_release(&in);
	oidvec_release(&todo);
	oidvec_release(&order);
	oidvec_release(&parents);
	return ret;
}

/*
 * The shallow answer (git's send_shallow_list()): "shallow ID" for each
 * new boundary commit the client does not already have as one, and
 * "unshallow ID" for each of the client's shallow commits that is now
 * inside the history sent; the latter's parents become wants.  Every
 * boundary, old or new, is where the pack's walk stops.  Appends the
 * lines to out; *listed: a deepen was asked (v0 ends the list with a
 * flush then).
 */
static int shallow_answer(struct up *u, struct buf *out, int *listed)
{
	struct oidset not_shallow = OIDSET_INIT, client = OIDSET_INIT;
	struct oidvec result = OIDVEC_INIT, heads = OIDVEC_INIT;
	char hex[GIT_OID_HEXSZ + 1];
	size_t sz, i;
	git_object_t type;
	int ret = -1;

	*listed = 0;
	/* the client's shallow commits that we have (git ignores others) */
	for (i = 0; i < u->req.shallows.n; i++) {
		const git_oid *id = &u->req.shallows.v[i];

		if (git_odb_read_header(&sz, &type, u->odb, id) < 0)
			continue;
		if (type != GIT_OBJECT_COMMIT) {
			git_oid_tostr(hex, sizeof(hex), id);
			error_set("invalid shallow object %s", hex);
			goto out;
		}
		if (oidset_insert(&client, id, NULL))
			oidvec_push(&heads, id);
	}
	if (u->req.depth && (u->req.deepen_since || u->req.deepen_not.n)) {
		error_set("deepen and deepen-since (or deepen-not) cannot be "
			  "used together");
		goto out;
	}
	if (u->req.depth == UPLOAD_INFINITE_DEPTH &&
	    !(u->req.caps & UPLOAD_DEEPEN_RELATIVE)) {
		for (i = 0; i < heads.n; i++)
			oidset_insert(&not_shallow, &heads.v[i], NULL);
		*listed = 1;
	} else if (u->req.depth) {
		if (u->req.caps & UPLOAD_DEEPEN_RELATIVE) {
			int d = u->req.depth == UPLOAD_INFINITE_DEPTH ?
				u->req.depth : u->req.depth + 1;

			if (shallow_by_depth(u, &heads, d, &not_shallow,
					     &result) < 0)
				goto out;
		} else if (shallow_by_depth(u, &u->req.wants, u->req.depth,
					    &not_shallow, &result) < 0) {
			goto out;
		}
		*listed = 1;
	} else if (u->req.deepen_since || u->req.deepen_not.n) {
		if (shallow_by_rev_list(u, &not_shallow, &result) < 0)
			goto out;
		*listed = 1;
	}
	for (i = 0; i < result.n; i++) {
		const git_oid *id = &result.v[i];

		if (oidset_contains(&client, id) ||
		    oidset_contains(&not_shallow, id))
			continue;
		if (!oidset_insert(&u->boundary, id, NULL))
			continue;
		git_oid_tostr(hex, sizeof(hex), id);
		if (pkt_buf_addf(out, "shallow %s\n", hex) < 0)
			goto out;
	}
	for (i = 0; i < heads.n; i++) {
		const git_oid *id = &heads.v[i];

		oidset_insert(&u->boundary, id, NULL);
		if (!oidset_contains(&not_shallow, id))
			continue;
		git_oid_tostr(hex, sizeof(hex), id);
		if (pkt_buf_addf(out, "unshallow %s\n", hex) < 0 ||
		    commit_parents(u, id, &u->extra_wants, NULL) < 0)
			goto out;
		oidvec_push(&u->extra_nots, id);
	}
	ret = 0;
out:
	oidset_release(&not_shallow);
	oidset_release(&client);
	oidvec_release(&result);
	oidvec_release(&heads);
	return ret;
}

/* ---- the pack ------------------------------------------------------- */

static int send_chunk(const void *data, size_t size, void *arg)
{
	struct up *u = arg;

	if (u->sideband)
		return pkt_send_band(u->io, &u->io_dead, 1, data, size);
	return pkt_send(u->io, &u->io_dead, data, size);
}

/* Bytes of the pack, inside band 1 when side-band was agreed. */
static int send_pack_bytes(void *arg, const void *data, size_t size)
{
	struct up *u = arg;

	clonepack_add(u->keep, data, size);
	return send_chunk(data, size, arg);
}

/* An object no stored pack holds (a loose one), for packwrite. */
static int read_loose(void *arg, const unsigned char *id, int *type,
		      unsigned char **data, size_t *len)
{
	struct up *u = arg;
	git_odb_object *obj = NULL;
	git_oid oid;

	git_oid_fromraw(&oid, id);
	if (git_odb_read(&obj, u->odb, &oid) < 0)
		return -1;
	*type = (int)git_odb_object_type(obj);
	*len = git_odb_object_size(obj);
	*data = xmalloc(*len ? *len : 1);
	memcpy(*data, git_odb_object_data(obj), *len);
	git_odb_object_free(obj);
	return 0;
}

/*
 * A tree and what it holds, minus what the client has (held, may be NULL)
 * and what is in the pack already.
 */
static int insert_tree(struct up *u, struct packwrite *pw, const git_oid *id,
		       const struct oidset *held)
{
	git_tree *t = NULL;
	size_t i, n;
	int ret = -1;

	if ((held && oidset_contains(held, id)) || !packwrite_add(pw, id->id))
		return 0;
	if (git_tree_lookup(&t, u->repo, id) < 0)
		return gitsvc_lg2_error("cannot build pack");
	n = git_tree_entrycount(t);
	for (i = 0; i < n; i++) {
		const git_tree_entry *e = git_tree_entry_byindex(t, i);
		const git_oid *eid = git_tree_entry_id(e);

		if (git_tree_entry_type(e) == GIT_OBJECT_TREE) {
			if (insert_tree(u, pw, eid, held) < 0)
				goto out;
		} else if (git_tree_entry_type(e) == GIT_OBJECT_BLOB &&
			   !(held && oidset_contains(held, eid))) {
			packwrite_add(pw, eid->id);
		}
	}
	ret = 0;
out:
	git_tree_free(t);
	return ret;
}

/*
 * A want's own objects: annotated tags (down their chain) and a tree or
 * blob at the end of one go in directly; *commit (1) is where a commit
 * walk starts.
 */
static int insert_want(struct up *u, struct packwrite *pw, const git_oid *want,
		       git_oid *commit)
{
	git_object *obj = NULL;
	git_oid id;
	int ret = -1, depth = 0;

	git_oid_cpy(&id, want);
	for (;;) {
		if (git_object_lookup(&obj, u->repo, &id, GIT_OBJECT_ANY) < 0)
			goto out;
		switch (git_object_type(obj)) {
		case GIT_OBJECT_TAG:
			packwrite_add(pw, id.id);
			if (++depth > 32)
				goto out;
			git_oid_cpy(&id, git_tag_target_id((git_tag *)obj));
			git_object_free(obj);
			obj = NULL;
			continue;
		case GIT_OBJECT_COMMIT:
			git_oid_cpy(commit, &id);
			ret = 1;
			goto out;
		case GIT_OBJECT_TREE:
			if (insert_tree(u, pw, &id, NULL) < 0)
				goto out;
			break;
		default:
			packwrite_add(pw, id.id);
			break;
		}
		break;
	}
	ret = 0;
out:
	git_object_free(obj);
	return ret;
}

/* Mark a tree and all below it as held by the client. */
static int mark_tree(struct up *u, const git_oid *id, struct oidset *held)
{
	git_tree *t = NULL;
	size_t i, n;
	int ret = -1;

	if (!oidset_insert(held, id, NULL))
		return 0;
	if (git_tree_lookup(&t, u->repo, id) < 0)
		return gitsvc_lg2_error("cannot read tree");
	n = git_tree_entrycount(t);
	for (i = 0; i < n; i++) {
		const git_tree_entry *e = git_tree_entry_byindex(t, i);

		if (git_tree_entry_type(e) == GIT_OBJECT_TREE) {
			if (mark_tree(u, git_tree_entry_id(e), held) < 0)
				goto out;
		} else if (git_tree_entry_type(e) == GIT_OBJECT_BLOB) {
			oidset_insert(held, git_tree_entry_id(e), NULL);
		}
	}
	ret = 0;
out:
	git_tree_free(t);
	return ret;
}

/* The trees of the edge commits (the client has them) into held. */
static int mark_edges(struct up *u, const struct oidvec *edges,
		      struct oidset *held)
{
	git_commit *c = NULL;
	size_t i;
	int r;

	for (i = 0; i < edges->n; i++) {
		if (git_commit_lookup(&c, u->repo, &edges->v[i]) < 0)
			return gitsvc_lg2_error("cannot read commit");
		r = mark_tree(u, git_commit_tree_id(c), held);
		git_commit_free(c);
		c = NULL;
		if (r < 0)
			return -1;
	}
	return 0;
}

/* Each commit in order, then its tree, minus what the client has. */
static int insert_commits(struct up *u, struct packwrite *pw,
			  const struct oidvec *order,
			  const struct oidset *held)
{
	git_commit *c = NULL;
	size_t i;
	int r;

	for (i = 0; i < order->n; i++) {
		packwrite_add(pw, order->v[i].id);
		if (git_commit_lookup(&c, u->repo, &order->v[i]) < 0)
			return gitsvc_lg2_error("cannot build pack");
		r = insert_tree(u, pw, git_commit_tree_id(c), held);
		git_commit_free(c);
		c = NULL;
		if (r < 0)
			return -1;
	}
	return 0;
}

/*
 * The usual case: the wants' history minus the commons' (a revwalk),
 * then the trees, minus what the trees of the commons hold.  Commits
 * sent go into sent.
 */
static int add_objects(struct up *u, struct packwrite *pw,
		       struct oidset *sent)
{
	struct oidset held = OIDSET_INIT;
	struct oidvec order = OIDVEC_INIT, edges = OIDVEC_INIT;
	git_revwalk *walk = NULL;
	git_oid id;
	size_t i;
	int r, ret = -1, any = 0;

	if (git_revwalk_new(&walk, u->repo) < 0)
		goto lg2;
	for (i = 0; i < u->req.wants.n; i++) {
		r = insert_want(u, pw, &u->req.wants.v[i], &id);
		if (r < 0 || (r && git_revwalk_push(walk, &id) < 0))
			goto lg2;
		any |= r;
	}
	for (i = 0; i < u->common.n; i++) {
		if (git_revwalk_hide(walk, &u->common.v[i]) < 0)
			goto lg2;
		if (edges.n < MAX_EDGES)
			oidvec_push(&edges, &u->common.v[i]);
	}
	while (any && (r = git_revwalk_next(&id, walk)) == 0) {
		oidset_insert(sent, &id, NULL);
		oidvec_push(&order, &id);
	}
	if (any && r != GIT_ITEROVER)
		goto lg2;
	if (mark_edges(u, &edges, &held) < 0 ||
	    insert_commits(u, pw, &order, &held) < 0)
		goto out;
	ret = 0;
	goto out;
lg2:
	gitsvc_lg2_error("cannot build pack");
out:
	git_revwalk_free(walk);
	oidset_release(&held);
	oidvec_release(&order);
	oidvec_release(&edges);
	return ret;
}

/*
 * A shallow answer's objects, with our own walk: the boundary commits
 * are sent without their parents, and what the client has (the commons
 * and unshallowed commits, and their history down to the client's own
 * boundary) is left out, trees of the edge commits included.
 */
static int add_shallow_objects(struct up *u, struct packwrite *pw,
			       struct oidset *sent)
{
	struct oidset has = OIDSET_INIT, held = OIDSET_INIT;
	struct oidvec todo = OIDVEC_INIT, order = OIDVEC_INIT;
	struct oidvec parents = OIDVEC_INIT, edges = OIDVEC_INIT;
	git_oid id;
	size_t i, j;
	int ret = -1, r;

	/* what the client has: its commons' history, cut at boundaries */
	for (i = 0; i < u->common.n; i++)
		oidvec_push(&todo, &u->common.v[i]);
	for (i = 0; i < u->extra_nots.n; i++)
		oidvec_push(&todo, &u->extra_nots.v[i]);
	for (i = 0; i < todo.n && edges.n < MAX_EDGES; i++)
		oidvec_push(&edges, &todo.v[i]);
	while (todo.n) {
		git_oid_cpy(&id, &todo.v[--todo.n]);
		if (!oidset_insert(&has, &id, NULL) ||
		    oidset_contains(&u->boundary, &id))
			continue;
		if (commit_parents(u, &id, &todo, NULL) < 0)
			goto out;
	}
	/* what to send: the wants' history down to the boundaries */
	for (i = 0; i < u->req.wants.n + u->extra_wants.n; i++) {
		const git_oid *w = i < u->req.wants.n ? &u->req.wants.v[i] :
				   &u->extra_wants.v[i - u->req.wants.n];

		r = insert_want(u, pw, w, &id);
		if (r < 0) {
			gitsvc_lg2_error("cannot build pack");
			goto out;
		}
		if (r)
			oidvec_push(&todo, &id);
	}
	while (todo.n) {
		git_oid_cpy(&id, &todo.v[--todo.n]);
		if (oidset_contains(&has, &id) ||
		    !oidset_insert(sent, &id, NULL))
			continue;
		oidvec_push(&order, &id);
		if (oidset_contains(&u->boundary, &id))
			continue;
		parents.n = 0;
		if (commit_parents(u, &id, &parents, NULL) < 0)
			goto out;
		for (j = 0; j < parents.n; j++) {
			oidvec_push(&todo, &parents.v[j]);
			if (oidset_contains(&has, &parents.v[j]) &&
			    edges.n < MAX_EDGES)
				oidvec_push(&edges, &parents.v[j]);
		}
	}
	/* the client has every object in its edge commits' trees */
	if (mark_edges(u, &edges, &held) < 0 ||
	    insert_commits(u, pw, &order, &held) < 0)
		goto out;
	ret = 0;
out:
	oidset_release(&has);
	oidset_release(&held);
	oidvec_release(&todo);
	oidvec_release(&order);
	oidvec_release(&parents);
	oidvec_release(&edges);
	return ret;
}

/* include-tag: annotated tags whose object goes out go out too. */
static int add_tags(struct up *u, struct packwrite *pw,
		    const struct oidset *sent)
{
	git_oid peeled, c;
	size_t i;

	for (i = 0; i < u->refs.n; i++) {
		const git_oid *id = &u->refs.v[i].id;

		if (strncmp(u->refs.v[i].name, "refs/tags/", 10) ||
		    !peeled_tag(u, id, &peeled) ||
		    peel_commit(u, &peeled, &c) != 1 ||
		    !oidset_contains(sent, &c))
			continue;
		if (insert_want(u, pw, id, &c) < 0)
			return gitsvc_lg2_error("cannot build pack");
	}
	return 0;
}

static int discard_write(void *ctx, const void *buf, size_t len);

/*
 * A request with no common commit and no shallow boundary gets the whole
 * history of its wants: the pack kept for the same wants (clonepack.h)
 * is sent as is.  1 if it was, 0 if there is none (*key then names it,
 * for keeping the pack about to be made), -1 on a failed send.
 */
static int send_kept_pack(struct up *u, char key[41])
{
	unsigned char *ids;
	unsigned flags = 0;
	char buf[65536];
	size_t i, size, left;
	ssize_t n;
	int fd, ret = -1;

	key[0] = '\0';
	if (upload_request_is_shallow(&u->req) || u->common.n ||
	    !u->req.wants.n)
		return 0;
	ids = xmalloc(u->req.wants.n * GIT_OID_RAWSZ);
	for (i = 0; i < u->req.wants.n; i++)
		memcpy(ids + i * GIT_OID_RAWSZ, u->req.wants.v[i].id,
		       GIT_OID_RAWSZ);
	if (u->req.caps & UPLOAD_OFS_DELTA)
		flags |= CLONEPACK_OFS_DELTA;
	if (u->req.caps & UPLOAD_INCLUDE_TAG)
		flags |= CLONEPACK_TAGS;
	clonepack_key(key, ids, u->req.wants.n, flags);
	free(ids);
	fd = clonepack_open(git_repository_path(u->repo), key, &size);
	if (fd < 0)
		return 0;
	if (u->io->write == discard_write) {
		/* upload_keep_clone_pack(): it is kept already */
		close(fd);
		return 1;
	}
	if (u->version == 2 && up_line(u, "packfile\n") < 0)
		goto out;
	u->pack_started = 1;
	up_progress(u, "Sending the kept pack of these tips, %zu bytes\n",
		    size);
	for (left = size; left; left -= (size_t)n) {
		n = read(fd, buf, left < sizeof(buf) ? left : sizeof(buf));
		if (n <= 0) {
			error_setsys("cannot read the kept pack");
			goto out;
		}
		if (send_chunk(buf, (size_t)n, u) < 0) {
			if (u->io_dead)
				error_set("the client hung up during the pack");
			goto out;
		}
	}
	if (u->sideband && pkt_send(u->io, &u->io_dead, "0000", 4) < 0)
		goto out;
	log_debug("pack of %zu bytes sent as kept", size);
	ret = 1;
out:
	close(fd);
	return ret;
}

/* Build the pack for the request and stream it; v2 puts its section
 * header first. */
static int send_pack(struct up *u)
{
	struct packwrite_opts po;
	struct packwrite *pw = NULL;
	struct oidset sent = OIDSET_INIT;
	char *dir = NULL, key[41];
	uint32_t whole, deltas, remade;
	int ret = -1, r;

	r = send_kept_pack(u, key);
	if (r)
		return r < 0 ? -1 : 0;
	dir = xasprintf("%sobjects/pack", git_repository_path(u->repo));
	memset(&po, 0, sizeof(po));
	po.pack_dir = dir;
	po.ofs_delta = !!(u->req.caps & UPLOAD_OFS_DELTA);
	po.read = read_loose;
	po.write = send_pack_bytes;
	po.arg = u;
	if (packwrite_new(&pw, &po) < 0)
		goto out;
	if (upload_request_is_shallow(&u->req) ?
	    add_shallow_objects(u, pw, &sent) < 0 :
	    add_objects(u, pw, &sent) < 0)
		goto out;
	if ((u->req.caps & UPLOAD_INCLUDE_TAG) && add_tags(u, pw, &sent) < 0)
		goto out;
	if (u->version == 2 && up_line(u, "packfile\n") < 0)
		goto out;
	u->pack_started = 1;
	up_progress(u, "Counting objects: %u, done.\n", packwrite_count(pw));
	if (key[0])
		u->keep = clonepack_begin(git_repository_path(u->repo), key);
	if (packwrite_send(pw) < 0) {
		if (u->io_dead)
			error_set("the client hung up during the pack");
		goto out;
	}
	packwrite_stats(pw, &whole, &deltas, &remade);
	log_debug("pack of %u objects: %u copied, %u deltas reused, %u made "
		  "whole", packwrite_count(pw), whole, deltas, remade);
	if (u->sideband && pkt_send(u->io, &u->io_dead, "0000", 4) < 0)
		goto out;
	clonepack_commit(u->keep);
	u->keep = NULL;
	ret = 0;
out:
	clonepack_abort(u->keep);
	u->keep = NULL;
	free(dir);
	oidset_release(&sent);
	packwrite_free(pw);
	return ret;
}

/* ---- protocol v0 / v1 ----------------------------------------------- */

static int serve_v0(struct up *u)
{
	struct buf out = BUF_INIT;
	int listed, ret = -1;

	if (advertise_v0(u) < 0)
		goto out;
	if (read_wants(u) < 0)
		goto out;
	if (u->req.wants.n == 0) {
		ret = 0;
		goto out;
	}
	if (upload_request_is_shallow(&u->req)) {
		if (shallow_answer(u, &out, &listed) < 0)
			goto out;
		if (listed && pkt_buf_flush(&out) < 0)
			goto out;
		if (out.len && pkt_send(u->io, &u->io_dead, out.data,
					out.len) < 0)
			goto out;
	}
	if (negotiate_v0(u) < 0 || send_pack(u) < 0)
		goto out;
	ret = 0;
out:
	buf_release(&out);
	return ret;
}

/* ---- protocol v2 ---------------------------------------------------- */

static int advertise_v2(struct up *u)
{
	struct buf out = BUF_INIT;
	int ret = -1;

	if (pkt_buf_addf(&out, "version 2\n") < 0 ||
	    pkt_buf_addf(&out, "agent=berth/%s\n", BERTH_VERSION) < 0 ||
	    pkt_buf_addf(&out, "ls-refs=unborn\n") < 0 ||
	    pkt_buf_addf(&out, "fetch=shallow wait-for-done\n") < 0 ||
	    pkt_buf_addf(&out, "server-option\n") < 0 ||
	    pkt_buf_addf(&out, "object-format=sha1\n") < 0 ||
	    pkt_buf_flush(&out) < 0 ||
	    pkt_send(u->io, &u->io_dead, out.data, out.len) < 0)
		goto out;
	ret = 0;
out:
	buf_release(&out);
	return ret;
}

/* Whether name starts with one of the prefixes (all do without any). */
static int prefix_match(const struct strv *prefixes, const char *name)
{
	size_t i;

	if (!prefixes->n)
		return 1;
	for (i = 0; i < prefixes->n; i++)
		if (!strncmp(name, prefixes->v[i], strlen(prefixes->v[i])))
			return 1;
	return 0;
}

/* ls-refs: HEAD and the refs matching the prefixes, with symref targets
 * and peeled tags when asked.  args: the request has arguments. */
static int ls_refs(struct up *u, int args)
{
	struct strv prefixes = STRV_INIT;
	struct buf out = BUF_INIT, line = BUF_INIT;
	const char *data, *arg;
	char hex[GIT_OID_HEXSZ + 1], *target = NULL;
	int symrefs = 0, peel = 0, unborn = 0, too_many = 0, t, ret = -1;
	git_oid id, peeled;
	size_t len, k;

	while (args) {
		t = pkt_read_line(u->rd, &data, &len, 0, "in ls-refs");
		if (t < 0)
			goto out;
		if (t == PKT_FLUSH)
			break;
		if (t != PKT_DATA) {
			error_set("expected flush after ls-refs arguments");
			goto out;
		}
		if (len == 7 && !memcmp(data, "symrefs", 7)) {
			symrefs = 1;
		} else if (len == 4 && !memcmp(data, "peel", 4)) {
			peel = 1;
		} else if (len == 6 && !memcmp(data, "unborn", 6)) {
			unborn = 1;
		} else if ((arg = after(data, len, "ref-prefix"))) {
			if (prefixes.n < MAX_PREFIXES)
				strv_push(&prefixes, arg);
			else
				too_many = 1;
		} else {
			error_set("unexpected line: '%.*s'",
				  len > 64 ? 64 : (int)len, data);
			goto out;
		}
	}
	if (too_many)
		strv_release(&prefixes);
	if (load_refs(u) < 0)
		goto out;
	/* HEAD first, even unborn: a clone of an empty app learns main */
	if (prefix_match(&prefixes, "HEAD")) {
		int resolved = read_head(u, &id, &target);

		if (resolved) {
			git_oid_tostr(hex, sizeof(hex), &id);
			buf_addf(&line, "%s HEAD", hex);
		} else if (unborn && symrefs && target) {
			buf_addstr(&line, "unborn HEAD");
		}
		if (line.len && symrefs && target)
			buf_addf(&line, " symref-target:%s", target);
		if (line.len && (buf_addstr(&line, "\n") < 0 ||
				 pkt_buf_add(&out, line.data, line.len) < 0))
			goto out;
	}
	for (k = 0; k < u->refs.n; k++) {
		const struct gitrefs_ref *r = &u->refs.v[k];

		if (!prefix_match(&prefixes, r->name))
			continue;
		buf_reset(&line);
		git_oid_tostr(hex, sizeof(hex), &r->id);
		buf_addf(&line, "%s %s", hex, r->name);
		if (peel && peeled_tag(u, &r->id, &peeled)) {
			git_oid_tostr(hex, sizeof(hex), &peeled);
			buf_addf(&line, " peeled:%s", hex);
		}
		if (buf_addstr(&line, "\n") < 0 ||
		    pkt_buf_add(&out, line.data, line.len) < 0)
			goto out;
	}
	if (pkt_buf_flush(&out) < 0 ||
	    pkt_send(u->io, &u->io_dead, out.data, out.len) < 0)
		goto out;
	ret = 0;
out:
	free(target);
	strv_release(&prefixes);
	buf_release(&out);
	buf_release(&line);
	return ret;
}

/*
 * fetch (git's upload_pack_v2()): each request carries all it needs.
 * Haves without "done" get an acknowledgments section, and the pack only
 * once we are ready; the client then asks again.  args: the request has
 * arguments.
 */
static int fetch_v2(struct up *u, int args)
{
	struct buf out = BUF_INIT, acks = BUF_INIT;
	const char *data;
	size_t len, i;
	char hex[GIT_OID_HEXSZ + 1];
	int t, listed, ret = -1;

	up_reset_request(u);
	while (args) {
		t = pkt_read_line(u->rd, &data, &len, 0, "in fetch");
		if (t < 0)
			goto out;
		if (t == PKT_FLUSH)
			break;
		if (t != PKT_DATA) {
			error_set("expected flush after fetch arguments");
			goto out;
		}
		if (upload_parse_fetch_arg(&u->req, data, len) < 0)
			goto out;
	}
	u->sideband = 1;
	if (load_refs(u) < 0 || check_wants(u) < 0)
		goto out;
	if (u->req.wants.n == 0 && !(u->req.caps & UPLOAD_WAIT_FOR_DONE)) {
		ret = 0;
		goto out;
	}
	for (i = 0; i < u->req.haves.n; i++) {
		if (got_have(u, &u->req.haves.v[i]) < 0)
			continue;
		git_oid_tostr(hex, sizeof(hex), &u->req.haves.v[i]);
		if (pkt_buf_addf(&acks, "ACK %s\n", hex) < 0)
			goto out;
	}
	if (u->req.haves.n && !u->req.done) {
		if (pkt_buf_addf(&out, "acknowledgments\n") < 0 ||
		    (acks.len ? buf_add(&out, acks.data, acks.len)
			      : pkt_buf_addf(&out, "NAK\n")) < 0)
			goto out;
		if ((u->req.caps & UPLOAD_WAIT_FOR_DONE) || !ok_to_give_up(u)) {
			/* not yet: the client sends more haves */
			if (pkt_buf_flush(&out) < 0 ||
			    pkt_send(u->io, &u->io_dead, out.data, out.len) < 0)
				goto out;
			ret = 0;
			goto out;
		}
		if (pkt_buf_addf(&out, "ready\n") < 0 ||
		    pkt_buf_delim(&out) < 0)
			goto out;
	}
	if (upload_request_is_shallow(&u->req)) {
		if (pkt_buf_addf(&out, "shallow-info\n") < 0 ||
		    shallow_answer(u, &out, &listed) < 0 ||
		    pkt_buf_delim(&out) < 0)
			goto out;
	}
	if (out.len && pkt_send(u->io, &u->io_dead, out.data, out.len) < 0)
		goto out;
	if (send_pack(u) < 0)
		goto out;
	ret = 0;
out:
	buf_release(&out);
	buf_release(&acks);
	return ret;
}

/*
 * One command request: "command=NAME", capability lines, then a delim
 * and the arguments (read by the command), or just a flush.  Returns 1
 * when the client is done (EOF or an empty request), 0 after a command,
 * -1 on error.
 */
static int serve_v2_request(struct up *u)
{
	const char *data;
	size_t len;
	char *command = NULL;
	int t, any = 0, ret = -1, args = 0;

	for (;;) {
		t = pkt_read_line(u->rd, &data, &len, !any, "in a request");
		if (t < 0)
			goto out;
		if (t == PKT_EOF || (t == PKT_FLUSH && !any)) {
			ret = 1;
			goto out;
		}
		if (t == PKT_FLUSH)
			break;
		if (t == PKT_DELIM) {
			args = 1;
			break;
		}
		if (t != PKT_DATA) {
			error_set("unexpected packet in a request");
			goto out;
		}
		any = 1;
		if (len > 8 && !memcmp(data, "command=", 8)) {
			if (command) {
				error_set("more than one command");
				goto out;
			}
			command = xstrndup(data + 8, len - 8);
		} else if (len > 14 && !memcmp(data, "object-format=", 14) &&
			   (len != 18 || memcmp(data + 14, "sha1", 4))) {
			error_set("unknown object format '%.*s'",
				  len - 14 > 32 ? 32 : (int)(len - 14),
				  data + 14);
			goto out;
		}
		/* agent=, server-option=, session-id=: nothing to do */
	}
	if (!command) {
		error_set("no command requested");
		goto out;
	}
	if (!strcmp(command, "ls-refs"))
		ret = ls_refs(u, args);
	else if (!strcmp(command, "fetch"))
		ret = fetch_v2(u, args);
	else
		error_set("invalid command '%.64s'", command);
out:
	free(command);
	return ret;
}

static int serve_v2(struct up *u)
{
	int r;

	u->rd->v2 = 1;
	if (advertise_v2(u) < 0)
		return -1;
	while ((r = serve_v2_request(u)) == 0)
		;
	return r < 0 ? -1 : 0;
}

/* ---- entry point ---------------------------------------------------- */

static int discard_write(void *ctx, const void *buf, size_t len)
{
	(void)ctx;
	(void)buf;
	(void)len;
	return 0;
}

int upload_keep_clone_pack(const char *repo_path)
{
	struct gitsvc_io io = { NULL, NULL, discard_write };
	struct config cfg;
	struct up u;
	size_t i;
	int ret = -1, lock;

	/* only for a repository that is cloned: pushes alone write no
	 * copy of the whole history */
	if (!clonepack_any(repo_path))
		return 0;
	lock = clonepack_lock(repo_path);
	if (lock < 0)
		return -1;
	if (git_libgit2_init() < 0) {
		close(lock);
		return gitsvc_lg2_error("cannot start libgit2");
	}
	memset(&cfg, 0, sizeof(cfg));
	memset(&u, 0, sizeof(u));
	u.cfg = &cfg;
	u.io = &io;
	gitrefs_init(&u.refs);
	upload_request_init(&u.req);
	if (git_repository_open_bare(&u.repo, repo_path) < 0 ||
	    git_repository_odb(&u.odb, u.repo) < 0) {
		gitsvc_lg2_error("cannot open the repository");
		goto out;
	}
	if (load_refs(&u) < 0)
		goto out;
	/* what `git clone` asks for: every branch and tag, ofs-deltas,
	 * no include-tag (it wants the tags themselves) */
	for (i = 0; i < u.refs.n; i++)
		if (!strncmp(u.refs.v[i].name, "refs/heads/", 11) ||
		    !strncmp(u.refs.v[i].name, "refs/tags/", 10))
			oidvec_push(&u.req.wants, &u.refs.v[i].id);
	u.req.caps = UPLOAD_OFS_DELTA | UPLOAD_NO_PROGRESS;
	ret = u.req.wants.n ? send_pack(&u) : 0;
out:
	up_reset_request(&u);
	oidset_release(&u.adv);
	gitrefs_release(&u.refs);
	git_odb_free(u.odb);
	git_repository_free(u.repo);
	git_libgit2_shutdown();
	close(lock);
	return ret;
}

int upload_pack(const struct config *cfg, const char *app, int version,
		struct gitsvc_io *io)
{
	struct up u;
	char *path = NULL;
	int lg2 = 0, status = 1, opened;

	memset(&u, 0, sizeof(u));
	u.cfg = cfg;
	u.io = io;
	u.version = version;
	gitrefs_init(&u.refs);
	upload_request_init(&u.req);
	opened = gitsvc_repo_open(&u.repo, &path, cfg, app, io);
	if (opened < 0 && opened != ERR_NOTFOUND)
		goto out;
	lg2 = 1;
	if (opened == ERR_NOTFOUND) {
		error_set("no app '%s' (push to it first)", app);
		pkt_writef(io, "ERR %s\n", error_last());
		goto out;
	}
	if (git_repository_odb(&u.odb, u.repo) < 0) {
		gitsvc_lg2_error("cannot open object database");
		goto fail;
	}
	u.rd = xmalloc(sizeof(*u.rd));
	pkt_reader_init(u.rd, io);
	u.rd->timeout_ms = (int)cfg->git_timeout_ms;
	if ((version == 2 ? serve_v2(&u) : serve_v0(&u)) < 0)
		goto fail;
	status = 0;
	goto out;
fail:
	log_warnx("'%s': upload-pack: %s", app, error_last());
	if (u.sideband && u.pack_started) {
		char *m = xasprintf("error: %s\n", error_last());

		pkt_send_band(io, &u.io_dead, 3, m, strlen(m));
		free(m);
	} else if (!u.io_dead) {
		pkt_writef(io, "ERR %s\n", error_last());
	}
out:
	up_reset_request(&u);
	oidset_release(&u.adv);
	gitrefs_release(&u.refs);
	free(u.rd);
	git_odb_free(u.odb);
	git_repository_free(u.repo);
	free(path);
	if (lg2)
		git_libgit2_shutdown();
	return status;
}
