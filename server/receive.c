/*
 * receive: git receive-pack on libgit2.  See receive.h and docs/git.md.
 *
 * Order of a push, each step only if the one before succeeded:
 *   advertise refs -> read commands and options -> index the pack into a
 *   quarantine directory -> check every new tip is complete -> move the
 *   pack into objects/pack -> move refs (all-or-nothing under atomic) ->
 *   deploy the deploy branch -> report-status -> final flush.
 * A refused or broken push leaves no pack behind and moves no ref.
 */
#include "receive.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <git2.h>
#include <git2/sys/odb_backend.h>

#include "config.h"
#include "gitrefs.h"
#include "gitsvc.h"
#include "log.h"
#include "gitrepack.h"
#include "phasetrace.h"
#include "indexpack.h"
#include "pipeline.h"
#include "pktline.h"
#include "version.h"
#include "runner.h"
#include "safefs.h"
#include "spawn.h"
#include "banned.h"

#define KEEPALIVE_MS 5000	/* empty band-1 packet while a build runs */
#define REASON_MAX 1024		/* the deploy's reason for failing */

static const char receive_caps[] =
	"report-status report-status-v2 delete-refs side-band-64k quiet "
	"atomic ofs-delta push-options object-format=sha1 "
	"agent=berth/" BERTH_VERSION;

static const unsigned char zero_id[20];

/* ---- request parsing ------------------------------------------------ */

void push_request_init(struct push_request *req)
{
	memset(req, 0, sizeof(*req));
	req->options.v = NULL;
}

void push_request_release(struct push_request *req)
{
	size_t i;

	for (i = 0; i < req->n; i++) {
		free(req->cmds[i].ref);
		free(req->cmds[i].error_owned);
	}
	free(req->cmds);
	free(req->agent);
	strv_release(&req->options);
	memset(req, 0, sizeof(*req));
}

int push_id_is_zero(const unsigned char *id)
{
	return !memcmp(id, zero_id, sizeof(zero_id));
}

void push_cmd_fail(struct push_cmd *cmd, const char *fmt, ...)
{
	va_list ap;
	char *p;

	if (cmd->error)
		return;
	va_start(ap, fmt);
	if (vasprintf(&p, fmt, ap) < 0)
		p = NULL;
	va_end(ap);
	if (!p)
		p = xstrdup("failed");
	gitsvc_oneline(p);
	free(cmd->error_owned);
	cmd->error_owned = p;
	cmd->error = p;
}

static int hex_to_id(unsigned char *out, const char *hex)
{
	int i;

	for (i = 0; i < 40; i++) {
		char c = hex[i];
		int v;

		if (c >= '0' && c <= '9')
			v = c - '0';
		else if (c >= 'a' && c <= 'f')
			v = c - 'a' + 10;
		else
			return -1;
		if (i % 2)
			out[i / 2] |= (unsigned char)v;
		else
			out[i / 2] = (unsigned char)(v << 4);
	}
	return 0;
}

static void parse_caps(struct push_request *req, const char *caps, size_t len)
{
	static const struct {
		const char *name;
		unsigned flag;
	} known[] = {
		{ "report-status", PUSH_REPORT_STATUS },
		{ "report-status-v2", PUSH_REPORT_STATUS_V2 },
		{ "side-band-64k", PUSH_SIDE_BAND_64K },
		{ "quiet", PUSH_QUIET },
		{ "atomic", PUSH_ATOMIC },
		{ "push-options", PUSH_OPTIONS },
		{ "delete-refs", PUSH_DELETE_REFS },
		{ "ofs-delta", PUSH_OFS_DELTA },
	};
	const char *p = caps, *end = caps + len;

	while (p < end) {
		const char *w = p;
		size_t n, i;

		while (p < end && *p != ' ')
			p++;
		n = (size_t)(p - w);
		if (p < end)
			p++;
		if (n == 0)
			continue;
		for (i = 0; i < ARRAY_SIZE(known); i++)
			if (strlen(known[i].name) == n &&
			    !memcmp(known[i].name, w, n))
				req->caps |= known[i].flag;
		if (n > 6 && !memcmp(w, "agent=", 6) && !req->agent) {
			req->agent = xstrndup(w + 6, n - 6 > 256 ? 256 : n - 6);
			gitsvc_oneline(req->agent);
		}
		/* unknown capabilities are ignored, as git does */
	}
}

int push_parse_command(struct push_request *req, struct push_cmd *cmd,
		       const char *line, size_t len, int first)
{
	const char *nul, *ref;
	size_t reflen, i;

	memset(cmd, 0, sizeof(*cmd));
	nul = memchr(line, '\0', len);
	reflen = (nul ? (size_t)(nul - line) : len);
	if (reflen < 83 || line[40] != ' ' || line[81] != ' ' ||
	    hex_to_id(cmd->old_id, line) < 0 ||
	    hex_to_id(cmd->new_id, line + 41) < 0)
		return error_set("malformed ref update line");
	ref = line + 82;
	reflen -= 82;
	if (reflen > PUSH_REF_MAX)
		return error_set("ref name too long (%zu bytes)", reflen);
	for (i = 0; i < reflen; i++)
		if ((unsigned char)ref[i] < 0x20 || ref[i] == 0x7f ||
		    ref[i] == ' ')
			return error_set("malformed ref name in update line");
	if (nul) {
		if (!first)
			return error_set("capabilities after the first "
					 "update line");
		parse_caps(req, nul + 1, len - (size_t)(nul + 1 - line));
	}
	cmd->ref = xstrndup(ref, reflen);
	return 0;
}

int push_request_read(struct push_request *req, struct pkt_reader *r)
{
	const char *data;
	size_t len;
	int t;

	for (;;) {
		struct push_cmd cmd;

		t = pkt_read_line(r, &data, &len, req->n == 0,
				  "in the command list");
		if (t < 0)
			return -1;
		if (t == PKT_EOF)
			return 0;
		if (t == PKT_FLUSH)
			break;
		/*
		 * A push from a shallow clone first lists its shallow commits.
		 * We never make our repository shallow: the push is accepted
		 * only if we hold the history below them already.
		 */
		if (req->n == 0 && len == 48 && !memcmp(data, "shallow ", 8)) {
			unsigned char id[20];

			if (hex_to_id(id, data + 8) < 0)
				return error_set("malformed shallow line");
			if (++req->n_shallow > PUSH_MAX_COMMANDS * 100)
				return error_set("too many shallow lines");
			continue;
		}
		if (req->n >= PUSH_MAX_COMMANDS)
			return error_set("too many ref updates (over %d)",
					 PUSH_MAX_COMMANDS);
		if (push_parse_command(req, &cmd, data, len, req->n == 0) < 0)
			return -1;
		if (req->n == req->alloc) {
			req->alloc = req->alloc ? req->alloc * 2 : 8;
			req->cmds = xrealloc(req->cmds,
					     req->alloc * sizeof(*req->cmds));
		}
		req->cmds[req->n++] = cmd;
	}
	if (req->n == 0 || !(req->caps & PUSH_OPTIONS))
		return 0;
	for (;;) {
		t = pkt_read_line(r, &data, &len, 0, "in the push options");
		if (t < 0)
			return -1;
		if (t == PKT_FLUSH)
			break;
		if (req->options.n >= PUSH_MAX_OPTIONS)
			return error_set("too many push options (over %d)",
					 PUSH_MAX_OPTIONS);
		if (len > PUSH_OPTION_MAX || memchr(data, '\0', len))
			return error_set("malformed push option");
		strv_push(&req->options, data);
		req->options.v[req->options.n - 1][len] = '\0';
	}
	return 0;
}

/* ---- the session ---------------------------------------------------- */

struct rp {
	const struct config *cfg;
	const char *app;
	const char *pusher;
	struct gitsvc_io *io;
	struct pkt_reader *rd;
	struct push_request req;
	char *repo_path;
	git_repository *repo;
	int sideband;
	int quiet;
	int io_dead;		/* the client is gone: write nothing more */
	char *quarantine;	/* objects/incoming-XXXXXX, or NULL */
	char *pack_name;	/* "pack-HEX" in quarantine/pack, or NULL */
	struct indexpack *ip;	/* the pushed pack, indexed */
	git_odb *odb;		/* the repository's, for the indexer */
	int progress_done;
	int pack_installed;	/* a new pack went into objects/pack */
	unsigned int pack_objects;
	int64_t progress_at;
	char *unpack_error;	/* NULL: "unpack ok" */
	int created;		/* this push made the repository */
	int in_place;		/* ... in a folder made for it (gitsep.h) */
	int version;		/* 1: say so first */
};

/* Bytes for the person pushing: band 2 ("remote: ..."), if we have one. */
static void rp_band2(struct rp *rp, const void *data, size_t len)
{
	if (rp->sideband)
		pkt_send_band(rp->io, &rp->io_dead, 2, data, len);
}

static void rp_say(struct rp *rp, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static void rp_say(struct rp *rp, const char *fmt, ...)
{
	va_list ap;

	if (!rp->sideband)
		return;
	va_start(ap, fmt);
	pkt_send_vbandf(rp->io, &rp->io_dead, 2, fmt, ap);
	va_end(ap);
}

static void rp_keepalive(struct rp *rp)
{
	if (rp->sideband)
		pkt_send_band(rp->io, &rp->io_dead, 1, "", 0);
}

/* ---- advertisement -------------------------------------------------- */

static int advertise(struct rp *rp)
{
	struct buf out = BUF_INIT;
	struct gitrefs refs;
	size_t i;
	int ret = -1;

	gitrefs_init(&refs);
	if (rp->repo && gitrefs_list(&refs, rp->repo) < 0)
		goto out;
	if (rp->version == 1 && pkt_buf_addf(&out, "version 1\n") < 0)
		goto out;
	if (refs.n == 0 &&
	    gitrefs_adv_line(&out, NULL, "capabilities^{}", receive_caps) < 0)
		goto out;
	for (i = 0; i < refs.n; i++)
		if (gitrefs_adv_line(&out, &refs.v[i].id, refs.v[i].name,
				     i == 0 ? receive_caps : NULL) < 0)
			goto out;
	if (pkt_buf_flush(&out) < 0 ||
	    pkt_send(rp->io, &rp->io_dead, out.data, out.len) < 0)
		goto out;
	ret = 0;
out:
	gitrefs_release(&refs);
	buf_release(&out);
	return ret;
}

/* ---- repository ----------------------------------------------------- */

static const char *deploy_ref(const struct config *cfg, char *tmp, size_t len)
{
	const char *b = cfg->deploy_branch;

	if (!b || !*b)
		return NULL;
	if (!strncmp(b, "refs/", 5))
		return b;
	snprintf(tmp, len, "refs/heads/%s", b);
	return tmp;
}

/*
 * First push: make the bare repository under a temporary name and rename
 * it into place, so a concurrent first push or a crash never leaves a
 * half-made repository where the engine looks.
 */
static void init_options(struct rp *rp, git_repository_init_options *opts,
			 char *head, size_t len)
{
	const char *dref = deploy_ref(rp->cfg, head, len);

	git_repository_init_options_init(opts,
					 GIT_REPOSITORY_INIT_OPTIONS_VERSION);
	opts->flags = GIT_REPOSITORY_INIT_BARE | GIT_REPOSITORY_INIT_MKPATH |
		      GIT_REPOSITORY_INIT_NO_REINIT;
	opts->initial_head = dref ? dref : "main";
}

/*
 * First push into the empty folder the session's root half made for it
 * (gitsep.h: this process may not write the app's folder): made under a
 * lock of that folder, so a concurrent first push waits and uses ours.
 */
static int repo_create_in_place(struct rp *rp)
{
	git_repository_init_options opts;
	git_repository *r = NULL;
	char head[256];
	int fd, ret = -1;

	fd = open(rp->repo_path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW |
		  O_CLOEXEC);
	if (fd < 0)
		return error_setsys("cannot open the repository");
	if (flock(fd, LOCK_EX) < 0) {
		error_setsys("cannot lock the repository");
		goto out;
	}
	if (faccessat(fd, "HEAD", F_OK, AT_SYMLINK_NOFOLLOW) < 0) {
		init_options(rp, &opts, head, sizeof(head));
		if (git_repository_init_ext(&r, rp->repo_path, &opts) < 0) {
			gitsvc_lg2_error("cannot create repository");
			goto out;
		}
		git_repository_free(r);
		rp->created = 1;
		rp->in_place = 1;
	}
	if (git_repository_open_bare(&rp->repo, rp->repo_path) < 0) {
		gitsvc_lg2_error("cannot open repository");
		goto out;
	}
	ret = 0;
out:
	close(fd);	/* and the lock */
	return ret;
}

static int repo_create(struct rp *rp)
{
	git_repository_init_options opts;
	git_repository *r = NULL;
	char *dir = NULL, *tmp = NULL;
	char head[256];
	int ret = -1;

	if (path_exists(rp->repo_path))
		return repo_create_in_place(rp);
	dir = xasprintf("%s/apps/%s", rp->cfg->root, rp->app);
	tmp = xasprintf("%s/repo.git.new-%ld", dir, (long)getpid());
	if (mkdir_p(dir, 0755) < 0 || rm_rf(tmp) < 0)
		goto out;
	init_options(rp, &opts, head, sizeof(head));
	if (git_repository_init_ext(&r, tmp, &opts) < 0) {
		gitsvc_lg2_error("cannot create repository");
		goto out;
	}
	git_repository_free(r);
	r = NULL;
	if (rename(tmp, rp->repo_path) < 0) {
		if (errno != EEXIST && errno != ENOTEMPTY) {
			error_setsys("cannot create '%s'", rp->repo_path);
			goto out;
		}
		/* someone else's first push won the race: use theirs */
		rm_rf(tmp);
	} else {
		rp->created = 1;
	}
	if (git_repository_open_bare(&rp->repo, rp->repo_path) < 0) {
		gitsvc_lg2_error("cannot open repository");
		goto out;
	}
	log_debug("created repository for '%s'", rp->app);
	ret = 0;
out:
	if (ret < 0 && tmp)
		rm_rf(tmp);
	free(dir);
	free(tmp);
	return ret;
}

/* A first push that moved no ref leaves no app behind either. */
static void forget_new_repo(struct rp *rp)
{
	git_reference_iterator *it = NULL;
	git_reference *ref = NULL;
	char *dir;
	size_t i;
	int any;

	for (i = 0; i < rp->req.n; i++)
		if (rp->req.cmds[i].applied)
			return;
	/* a concurrent first push may have used our repository: keep it then */
	if (git_reference_iterator_new(&it, rp->repo) < 0)
		return;
	any = git_reference_next(&ref, it) != GIT_ITEROVER;
	git_reference_free(ref);
	git_reference_iterator_free(it);
	if (any)
		return;
	git_repository_free(rp->repo);
	rp->repo = NULL;
	if (rp->in_place) {
		/* emptied; the root half removes the folder it made */
		int fd = safefs_open_top(rp->repo_path);

		if (fd < 0 || safefs_remove_tree(fd, ".") < 0)
			log_warnx("%s: %s", __func__, error_last());
		if (fd >= 0)
			close(fd);
		return;
	}
	if (rm_rf(rp->repo_path) < 0)
		log_warnx("%s: %s", __func__, error_last());
	dir = xasprintf("%s/apps/%s", rp->cfg->root, rp->app);
	rmdir(dir);	/* only if nothing else is there */
	free(dir);
}

/* ---- receiving the pack --------------------------------------------- */

/* What the indexer tells the person pushing, at most every 250 ms. */
static void index_progress(void *arg, const struct indexpack_progress *st)
{
	struct rp *rp = arg;
	int64_t now;
	int end;

	if (rp->quiet || !rp->sideband || st->deltas == 0 ||
	    st->received < st->objects)
		return;
	end = st->resolved == st->deltas;
	now = now_ms();
	if (!end && now - rp->progress_at < 250)
		return;
	if (end && rp->progress_done)
		return;
	rp->progress_done = end;
	rp->progress_at = now;
	rp_say(rp, "Resolving deltas: %3u%% (%u/%u)%s",
	       (unsigned)((uint64_t)st->resolved * 100 / st->deltas),
	       st->resolved, st->deltas, end ? ", done.\n" : "\r");
}

/* A thin pack's base, from the repository (indexpack.h). */
static int index_read_base(void *arg, const unsigned char *id, int *type,
			   unsigned char **data, size_t *len)
{
	struct rp *rp = arg;
	git_odb_object *obj = NULL;
	git_oid oid;

	git_oid_fromraw(&oid, id);
	if (git_odb_read(&obj, rp->odb, &oid) < 0)
		return -1;
	*type = (int)git_odb_object_type(obj);
	*len = git_odb_object_size(obj);
	*data = xmalloc(*len ? *len : 1);
	memcpy(*data, git_odb_object_data(obj), *len);
	git_odb_object_free(obj);
	return 0;
}

/*
 * Objects the repository holds end the closure check: they came in
 * through an earlier checked push.  Most ids asked about are new, so they
 * miss, and by default every miss makes libgit2 rescan objects/pack: skip
 * that (a concurrent push only adds objects we would take as a shortcut).
 */
static int have_object(git_odb *odb, const git_oid *id)
{
	return git_odb_exists_ext(odb, id, GIT_ODB_LOOKUP_NO_REFRESH);
}

static int index_have(void *arg, const unsigned char *id)
{
	struct rp *rp = arg;
	git_oid oid;

	git_oid_fromraw(&oid, id);
	return have_object(rp->odb, &oid);
}

static void drop_quarantine(struct rp *rp)
{
	indexpack_free(rp->ip);
	rp->ip = NULL;
	if (rp->quarantine) {
		if (rm_rf(rp->quarantine) < 0)
			log_warnx("%s: %s", __func__, error_last());
		FREE_AND_NULL(rp->quarantine);
	}
	FREE_AND_NULL(rp->pack_name);
}

/*
 * Read the raw pack up to its trailer into berth's own indexer
 * (indexpack.h), which completes thin packs from the repository's odb and
 * writes into a quarantine directory inside objects/ (same filesystem for
 * the final rename, invisible to readers until then).
 */
static int receive_pack_data(struct rp *rp)
{
	struct indexpack_opts opts;
	char *packdir = NULL, hex[41];
	static char chunk[65536];
	uint64_t total = 0, max = (uint64_t)rp->cfg->max_pack_bytes;
	git_config *gcfg = NULL;
	int64_t repo_max = 0;
	int ret = -1;

	/* git's own receive.maxInputSize in the repository may lower it */
	if (git_repository_config_snapshot(&gcfg, rp->repo) == 0 &&
	    git_config_get_int64(&repo_max, gcfg,
				 "receive.maxInputSize") == 0 &&
	    repo_max > 0 && (!max || (uint64_t)repo_max < max))
		max = (uint64_t)repo_max;
	git_config_free(gcfg);

	rp->quarantine = xasprintf("%s/objects/incoming-XXXXXX", rp->repo_path);
	if (!mkdtemp(rp->quarantine)) {
		error_setsys("cannot create '%s'", rp->quarantine);
		FREE_AND_NULL(rp->quarantine);
		goto out;
	}
	packdir = xasprintf("%s/pack", rp->quarantine);
	if (mkdir(packdir, 0755) < 0) {
		error_setsys("cannot create '%s'", packdir);
		goto out;
	}
	if (!rp->odb && git_repository_odb(&rp->odb, rp->repo) < 0) {
		gitsvc_lg2_error("cannot open object database");
		goto out;
	}
	memset(&opts, 0, sizeof(opts));
	opts.dir = packdir;
	/* a compressible object may inflate to far more than its pack */
	opts.max_object = PUSH_MAX_OBJECT;
	opts.read_base = index_read_base;
	opts.have = index_have;
	opts.progress = index_progress;
	opts.arg = rp;
	if (indexpack_new(&rp->ip, &opts) < 0)
		goto out;
	phase_trace("receive: pack intake starts");
	/*
	 * The client keeps its side open for our report: the pack's own
	 * framing says where it ends, never EOF.
	 */
	while (!indexpack_done(rp->ip)) {
		ssize_t n = pkt_read_raw(rp->rd, chunk, sizeof(chunk)), used;

		if (n < 0)
			goto out;
		if (n == 0) {
			error_set("bad pack: the stream ended inside the pack");
			goto out;
		}
		if (!total)
			phase_trace("receive: first pack bytes");
		used = indexpack_feed(rp->ip, chunk, (size_t)n);
		if (used < 0)
			goto out;
		total += (uint64_t)used;
		if (max && total > max) {
			error_set("pack exceeds maximum allowed size "
				  "(%llu bytes)",
				  (unsigned long long)max);
			goto out;
		}
	}
	phase_trace("receive: pack received (%llu bytes)",
		    (unsigned long long)total);
	if (indexpack_finish(rp->ip, hex) < 0)
		goto out;
	phase_trace("receive: pack indexed");
	rp->pack_objects = indexpack_count(rp->ip);
	rp->pack_name = xasprintf("pack-%s", hex);
	if (!rp->quiet && rp->pack_objects)
		rp_say(rp, "Received %u objects (%llu KiB)%s\n",
		       rp->pack_objects, (unsigned long long)(total / 1024),
		       indexpack_stats(rp->ip)->local
			       ? ", completed from the repository" : "");
	log_debug("'%s': pack of %u objects, %llu bytes", rp->app,
		  rp->pack_objects, (unsigned long long)total);
	ret = 0;
out:
	free(packdir);
	return ret;
}

/* Move the checked pack from quarantine into objects/pack: .pack, then
 * .idx (a pack is only used once its index is there). */
static int install_pack(struct rp *rp)
{
	static const char *const exts[] = { ".pack", ".idx" };
	char *from = NULL, *to = NULL, *dir = NULL;
	git_odb *odb = NULL;
	size_t i;
	int fd, ret = -1;

	if (!rp->pack_name || rp->pack_objects == 0)
		return 0;
	dir = xasprintf("%s/objects/pack", rp->repo_path);
	if (mkdir_p(dir, 0755) < 0)
		goto out;
	for (i = 0; i < ARRAY_SIZE(exts); i++) {
		free(from);
		free(to);
		from = xasprintf("%s/pack/%s%s", rp->quarantine, rp->pack_name,
				 exts[i]);
		to = xasprintf("%s/%s%s", dir, rp->pack_name, exts[i]);
		if (rename(from, to) < 0) {
			error_setsys("cannot move pack into '%s'", dir);
			goto out;
		}
	}
	fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd >= 0) {
		if (fsync(fd) < 0)
			log_warn("%s: fsync '%s'", __func__, dir);
		close(fd);
	}
	rp->pack_installed = 1;
	if (git_repository_odb(&odb, rp->repo) < 0 ||
	    git_odb_refresh(odb) < 0) {
		gitsvc_lg2_error("cannot refresh object database");
		goto out;
	}
	ret = 0;
out:
	git_odb_free(odb);
	free(from);
	free(to);
	free(dir);
	return ret;
}

/* ---- checks --------------------------------------------------------- */

static int repo_config_bool(git_repository *repo, const char *key, int def)
{
	git_config *cfg = NULL;
	int v = def;

	if (git_repository_config_snapshot(&cfg, repo) == 0 &&
	    git_config_get_bool(&v, cfg, key) < 0)
		v = def;
	git_config_free(cfg);
	return v;
}

/*
 * receive.denyDeleteCurrent, as git reads it: "ignore" or false allow
 * deleting the branch HEAD names, "warn" allows it with a warning, and
 * "refuse", true or unset refuse it.
 */
enum deny_action { DENY_IGNORE, DENY_WARN, DENY_REFUSE };

static enum deny_action deny_delete_current(git_repository *repo)
{
	git_config *cfg = NULL;
	git_buf v = GIT_BUF_INIT;
	enum deny_action a = DENY_REFUSE;
	int b;

	if (git_repository_config_snapshot(&cfg, repo) < 0)
		return a;
	if (git_config_get_string_buf(&v, cfg,
				      "receive.denyDeleteCurrent") == 0) {
		if (!strcmp(v.ptr, "ignore"))
			a = DENY_IGNORE;
		else if (!strcmp(v.ptr, "warn"))
			a = DENY_WARN;
		else if (git_config_parse_bool(&b, v.ptr) == 0 && !b)
			a = DENY_IGNORE;
	}
	git_buf_dispose(&v);
	git_config_free(cfg);
	return a;
}

/* 1 if ref is the branch HEAD points to. */
static int is_head_branch(git_repository *repo, const char *ref)
{
	git_reference *head = NULL;
	int ret = 0;

	if (git_reference_lookup(&head, repo, "HEAD") == 0 &&
	    git_reference_type(head) == GIT_REFERENCE_SYMBOLIC)
		ret = !strcmp(git_reference_symbolic_target(head), ref);
	git_reference_free(head);
	return ret;
}

/*
 * A delete, as git's receive-pack judges it: a ref that is not there is
 * "deleted" already (ok, with a warning), unless the client named an old
 * value we know, which means it saw another state than ours; an existing
 * one must hold the old value the client saw (a zero old id means the
 * client does not care), and may be protected by receive.denyDeletes or
 * be the branch HEAD names (receive.denyDeleteCurrent).  cur: the ref's
 * value, NULL if it does not exist.  'old' is the odb without this push.
 */
static void check_delete(struct rp *rp, struct push_cmd *c,
			 const git_oid *cur, git_odb *old, int deny_deletes)
{
	git_oid oid;

	git_oid_fromraw(&oid, c->old_id);
	if (!cur) {
		if (!push_id_is_zero(c->old_id) && have_object(old, &oid))
			push_cmd_fail(c, "stale info");
		else
			c->missing = 1;
		return;
	}
	if (!push_id_is_zero(c->old_id) && git_oid_cmp(cur, &oid)) {
		push_cmd_fail(c, "stale info");
		return;
	}
	if (deny_deletes && !strncmp(c->ref, "refs/heads/", 11)) {
		push_cmd_fail(c, "deletion prohibited");
		return;
	}
	if (is_head_branch(rp->repo, c->ref)) {
		switch (deny_delete_current(rp->repo)) {
		case DENY_IGNORE:
			break;
		case DENY_WARN:
			c->warning = "deleting the current branch";
			break;
		case DENY_REFUSE:
			push_cmd_fail(c, "deletion of the current branch "
				      "prohibited");
			break;
		}
	}
	/* a zero old id: delete whatever is there, guarded by what we saw */
	memcpy(c->old_id, cur->id, sizeof(c->old_id));
}

/*
 * The new tip and everything it reaches exist: the tip is in the pack,
 * whose closure the indexer checked (each link is in the pack or in the
 * repository), or in the repository, which is closed already.
 */
static int tip_complete(struct rp *rp, git_odb *old, const git_oid *tip)
{
	const unsigned char *m;
	char hex[GIT_OID_HEXSZ + 1];

	if (!rp->ip || !indexpack_lookup(rp->ip, tip->id)) {
		if (have_object(old, tip))
			return 0;
		git_oid_tostr(hex, sizeof(hex), tip);
		return error_set("missing necessary objects (%s)", hex);
	}
	m = indexpack_missing(rp->ip);
	if (m) {
		pack_id_hex(hex, m);
		return error_set("missing necessary objects (%s)", hex);
	}
	return 0;
}

/*
 * Per-command checks before anything moves: ref name, expected old value,
 * the new tip is complete, branch tips are commits, and (if the repository
 * sets receive.denyNonFastForwards / receive.denyDeletes) history rules.
 */
static int check_commands(struct rp *rp)
{
	git_repository *check = NULL;
	git_odb *old = NULL, *codb = NULL;
	git_odb_backend *be = NULL;
	char *idxpath = NULL;
	int deny_nonff, deny_deletes, ret = -1;
	size_t i;

	deny_nonff = repo_config_bool(rp->repo,
				      "receive.denyNonFastForwards", 0);
	deny_deletes = repo_config_bool(rp->repo, "receive.denyDeletes", 0);
	if (git_repository_odb(&old, rp->repo) < 0 ||
	    git_repository_open_bare(&check, rp->repo_path) < 0 ||
	    git_repository_odb(&codb, check) < 0) {
		gitsvc_lg2_error("cannot open repository");
		goto out;
	}
	if (rp->pack_name && rp->pack_objects) {
		idxpath = xasprintf("%s/pack/%s.idx", rp->quarantine,
				    rp->pack_name);
		if (git_odb_backend_one_pack(&be, idxpath) < 0 ||
		    git_odb_add_backend(codb, be, 1) < 0) {
			gitsvc_lg2_error("cannot open received pack");
			if (be)
				be->free(be);
			goto out;
		}
	}
	for (i = 0; i < rp->req.n; i++) {
		struct push_cmd *c = &rp->req.cmds[i];
		git_oid cur, nid, oid;
		int exists, err, valid = 0;

		if (c->error)
			continue;
		if (strncmp(c->ref, "refs/", 5) ||
		    git_reference_name_is_valid(&valid, c->ref) < 0 || !valid) {
			push_cmd_fail(c, "funny refname");
			continue;
		}
		err = git_reference_name_to_id(&cur, rp->repo, c->ref);
		if (err < 0 && err != GIT_ENOTFOUND) {
			gitsvc_lg2_error("cannot read ref");
			push_cmd_fail(c, "%s", error_last());
			continue;
		}
		exists = err == 0;
		if (push_id_is_zero(c->new_id)) {
			check_delete(rp, c, exists ? &cur : NULL, old,
				     deny_deletes);
			continue;
		}
		git_oid_fromraw(&oid, c->old_id);
		if (exists ? git_oid_cmp(&cur, &oid) != 0
			   : !push_id_is_zero(c->old_id)) {
			push_cmd_fail(c, "stale info");
			continue;
		}
		git_oid_fromraw(&nid, c->new_id);
		if (tip_complete(rp, old, &nid) < 0) {
			/* git's words when a shallow clone lacks our history */
			if (rp->req.n_shallow)
				push_cmd_fail(c, "shallow update not allowed");
			push_cmd_fail(c, "%s", error_last());
			continue;
		}
		if (!strncmp(c->ref, "refs/heads/", 11)) {
			git_object *o = NULL;

			if (git_object_lookup(&o, check, &nid,
					      GIT_OBJECT_COMMIT) < 0) {
				push_cmd_fail(c, "not a commit");
				continue;
			}
			git_object_free(o);
			if (deny_nonff && exists &&
			    git_graph_descendant_of(check, &nid, &cur) != 1) {
				push_cmd_fail(c, "non-fast-forward");
				continue;
			}
		}
	}
	ret = 0;
out:
	git_odb_free(codb);
	git_odb_free(old);
	git_repository_free(check);
	free(idxpath);
	return ret;
}

/* ---- moving refs ---------------------------------------------------- */

static const char reflog_msg[] = "push";

/* Set ref to 'to' if it holds 'from' (zero id: absent / delete). */
static int ref_move(git_repository *repo, const char *name,
		    const unsigned char *from, const unsigned char *to)
{
	git_reference *ref = NULL, *out = NULL;
	git_oid f, t;
	int ret = -1, err;

	git_oid_fromraw(&f, from);
	git_oid_fromraw(&t, to);
	if (push_id_is_zero(to)) {
		if (git_reference_lookup(&ref, repo, name) < 0) {
			error_set("no such ref");
			goto out;
		}
		if (git_reference_type(ref) != GIT_REFERENCE_DIRECT ||
		    git_oid_cmp(git_reference_target(ref), &f)) {
			error_set("stale info");
			goto out;
		}
		/* fails with GIT_EMODIFIED if it moved since the lookup */
		err = git_reference_delete(ref);
	} else {
		err = git_reference_create_matching(&out, repo, name, &t, 1,
						    &f, reflog_msg);
	}
	if (err < 0) {
		/* details (paths) go to our log, a short reason to the user */
		gitsvc_lg2_error(name);
		log_warnx("cannot move ref %s", error_last());
		if (err == GIT_EMODIFIED)
			error_set("stale info");
		else if (err == GIT_ELOCKED)
			error_set("failed to lock");
		else
			error_set("failed to update ref");
		goto out;
	}
	ret = 0;
out:
	git_reference_free(ref);
	git_reference_free(out);
	return ret;
}

/*
 * Move every accepted ref.  libgit2's transactions lock several refs but
 * still apply them one by one, so atomic pushes roll back by hand: each
 * applied ref is moved back, guarded by the value we just gave it.
 */
static void apply_updates(struct rp *rp)
{
	int atomic = rp->req.caps & PUSH_ATOMIC;
	size_t i, j;

	for (i = 0; i < rp->req.n; i++) {
		struct push_cmd *c = &rp->req.cmds[i];

		if (c->error)
			continue;
		if (c->missing) {
			rp_say(rp, "warning: deleting a non-existent ref "
			       "(%s)\n", c->ref);
			continue;
		}
		if (c->warning)
			rp_say(rp, "warning: %s (%s)\n", c->warning, c->ref);
		if (ref_move(rp->repo, c->ref, c->old_id, c->new_id) == 0) {
			c->applied = 1;
			continue;
		}
		push_cmd_fail(c, "%s", error_last());
		if (!atomic)
			continue;
		for (j = i; j-- > 0;) {
			struct push_cmd *a = &rp->req.cmds[j];

			if (!a->applied)
				continue;
			if (ref_move(rp->repo, a->ref, a->new_id,
				     a->old_id) < 0)
				log_warnx("'%s': cannot roll back '%s': %s",
					  rp->app, a->ref, error_last());
			a->applied = 0;
		}
		for (j = 0; j < rp->req.n; j++)
			push_cmd_fail(&rp->req.cmds[j], "atomic push failure");
		return;
	}
}

/* A new repository's HEAD names main (or the deploy branch); if the first
 * push brought only some other branch, point HEAD at it so clones work. */
static void fix_head(struct rp *rp)
{
	static const char *const pref[] = { "refs/heads/main",
					    "refs/heads/master" };
	git_reference *head = NULL;
	git_oid id;
	size_t i;

	if (git_repository_head_unborn(rp->repo) != 1)
		return;
	if (git_reference_lookup(&head, rp->repo, "HEAD") == 0 &&
	    git_reference_type(head) == GIT_REFERENCE_SYMBOLIC) {
		const char *target = git_reference_symbolic_target(head);

		if (git_reference_name_to_id(&id, rp->repo, target) == 0) {
			git_reference_free(head);
			return;
		}
	}
	git_reference_free(head);
	for (i = 0; i < ARRAY_SIZE(pref); i++)
		if (git_reference_name_to_id(&id, rp->repo, pref[i]) == 0)
			goto set;
	for (i = 0; i < rp->req.n; i++) {
		struct push_cmd *c = &rp->req.cmds[i];

		if (c->applied && !push_id_is_zero(c->new_id) &&
		    !strncmp(c->ref, "refs/heads/", 11)) {
			if (git_repository_set_head(rp->repo, c->ref) < 0)
				log_warnx("'%s': cannot set HEAD", rp->app);
			return;
		}
	}
	return;
set:
	if (git_repository_set_head(rp->repo, pref[i]) < 0)
		log_warnx("'%s': cannot set HEAD", rp->app);
}

/* ---- deploy --------------------------------------------------------- */

/*
 * The push's command for the deploy branch, if it is to move that branch
 * to a commit (refs have not moved yet): cfg->deploy_branch, else main,
 * else (in a repository where main neither is nor comes) master.
 */
static struct push_cmd *deploy_cmd(struct rp *rp)
{
	char tmp[256];
	const char *want = deploy_ref(rp->cfg, tmp, sizeof(tmp));
	git_oid id;
	size_t i;

	if (!want) {
		want = git_reference_name_to_id(&id, rp->repo,
						"refs/heads/main") == 0
			? "refs/heads/main" : "refs/heads/master";
		for (i = 0; i < rp->req.n; i++)
			if (!strcmp(rp->req.cmds[i].ref, "refs/heads/main") &&
			    !push_id_is_zero(rp->req.cmds[i].new_id))
				want = "refs/heads/main";
	}
	for (i = 0; i < rp->req.n; i++) {
		struct push_cmd *c = &rp->req.cmds[i];

		if (!strcmp(c->ref, want))
			return !c->error && !push_id_is_zero(c->new_id)
				? c : NULL;
	}
	return NULL;
}

static int has_option(struct rp *rp, const char *opt)
{
	size_t i;

	for (i = 0; i < rp->req.options.n; i++)
		if (!strcmp(rp->req.options.v[i], opt))
			return 1;
	return 0;
}

struct deploy_child {
	const struct config *cfg;
	const char *app;
	const char *pusher;
	const char *commit;
	int clean_cache;
};

/* In the build child: build and deploy; the reason for a failure, one
 * line, goes to err. */
static int deploy_child_main(void *arg, int out, int err)
{
	struct deploy_child *dc = arg;
	struct pipeline_opts o;
	const char *msg;
	char *repo;
	int null, ret;

	signal(SIGPIPE, SIG_DFL);
	/* stdin/stdout may be the git stream: keep builds off it */
	null = open("/dev/null", O_RDWR | O_CLOEXEC);
	if (null < 0 || dup2(null, 0) < 0 || dup2(null, 1) < 0)
		return 2;
	repo = gitsvc_repo_path(dc->cfg, dc->app);
	memset(&o, 0, sizeof(o));
	o.cfg = dc->cfg;
	o.app = dc->app;
	o.repo = repo;
	o.commit = dc->commit;
	o.pusher = dc->pusher;
	o.skip_deploy = 0;
	o.clean_cache = dc->clean_cache;
	o.out = out;
	error_clear();
	ret = pipeline_run(&o);
	free(repo);
	if (ret == 0)
		return 0;
	msg = error_last();
	if (!*msg)
		msg = "build failed";
	if (write_all(err, msg, strlen(msg)) < 0)
		return 2;
	return 1;
}

/* A line of the build's output, to the caller's sink. */
static void deploy_child_line(void *arg, enum runner_stream stream,
			      const char *line, size_t len)
{
	const struct receive_build_out *o = arg;

	(void)stream;
	o->line(o->arg, line, len);
}

static void deploy_child_tick(void *arg)
{
	const struct receive_build_out *o = arg;

	o->tick(o->arg);
}

int receive_build(const struct config *cfg, const char *app,
		  const char *pusher, const char *commit, int clean_cache,
		  const struct receive_build_out *out, char **reason)
{
	struct buf why = BUF_INIT;
	struct deploy_child dc = { cfg, app, pusher, commit, clean_cache };
	struct receive_build_out sink = *out;
	struct runner r;

	*reason = NULL;
	runner_init(&r);
	r.child_main = deploy_child_main;
	r.child_arg = &dc;
	r.on_line = deploy_child_line;
	r.arg = &sink;
	r.line_streams = 1u << RUNNER_OUT;
	r.capture[RUNNER_ERR] = &why;
	r.capture_max = REASON_MAX;
	r.tick_ms = KEEPALIVE_MS;
	r.on_tick = deploy_child_tick;
	if (cfg->build_timeout_ms > 0) {
		/* the build's own deadline comes first; this is the net */
		r.timeout_ms = cfg->build_timeout_ms + 60000;
		r.timeout_msg = "build timed out";
	}
	if (runner_run(&r) < 0 && !r.timed_out) {
		buf_release(&why);
		return -1;
	}
	if (!r.timed_out && WIFEXITED(r.status) && WEXITSTATUS(r.status) == 0) {
		buf_release(&why);
		return 0;
	}
	if (r.timed_out) {
		buf_reset(&why);
		buf_addstr(&why, "build timed out");
	} else if (why.len == 0) {
		char desc[64];

		buf_addf(&why, "build %s",
			 spawn_describe_status(r.status, desc, sizeof(desc)));
	}
	*reason = buf_detach(&why);
	gitsvc_oneline(*reason);
	return 1;
}

static receive_builder_fn builder;
static void *builder_ctx;

void receive_set_builder(receive_builder_fn fn, void *ctx)
{
	builder = fn;
	builder_ctx = ctx;
}

/* The build's output, as band 2 to the client. */
static void rp_build_line(void *arg, const char *line, size_t len)
{
	struct rp *rp = arg;
	struct buf b = BUF_INIT;

	buf_add(&b, line, len);
	buf_add(&b, "\n", 1);
	rp_band2(rp, b.data, b.len);
	buf_release(&b);
}

static void rp_build_tick(void *arg)
{
	rp_keepalive(arg);
}

/*
 * Build and deploy (pipeline_run() may take minutes and must not share
 * our stack with libgit2 state or the transport): receive_build() here,
 * or the builder the front end set (a session split in two builds in its
 * root half).  Its output goes out as band 2, keepalives while it is
 * quiet, so neither the client nor a proxy gives up on a long build.  If
 * the client hangs up, the deploy still runs to its end, and the ref
 * moves if it went live.  0 when it went live, 1 with *reason when it
 * failed, -1 when it could not run.
 */
static int run_deploy(struct rp *rp, struct push_cmd *c, char **reason)
{
	struct receive_build_out out = { rp_build_line, rp_build_tick, rp };
	char hex[GIT_OID_HEXSZ + 1], old[GIT_OID_HEXSZ + 1];
	int clean = has_option(rp, "clean-cache");
	git_oid id;

	git_oid_fromraw(&id, c->new_id);
	git_oid_tostr(hex, sizeof(hex), &id);
	git_oid_fromraw(&id, c->old_id);
	git_oid_tostr(old, sizeof(old), &id);
	if (builder)
		return builder(builder_ctx, c->ref, old, hex, clean, &out,
			       reason);
	return receive_build(rp->cfg, rp->app, rp->pusher, hex, clean, &out,
			     reason);
}

/*
 * Our release is live, so the branch is to name it, even if a push that
 * overlapped ours moved it meanwhile (builds run one at a time: ours went
 * live last), as long as ours descends from what it names now.
 */
static void follow_live(struct rp *rp, struct push_cmd *d)
{
	git_oid now, next;

	if (git_reference_name_to_id(&now, rp->repo, d->ref) < 0 ||
	    !memcmp(now.id, d->old_id, sizeof(d->old_id)))
		return;
	git_oid_fromraw(&next, d->new_id);
	if (git_graph_descendant_of(rp->repo, &next, &now) == 1)
		memcpy(d->old_id, now.id, sizeof(d->old_id));
}

/*
 * Build and deploy the deploy branch's new commit before any ref moves
 * (its objects are in the repository already, with nothing pointing at
 * them): a push whose build or deploy fails leaves the branch where it
 * was, "deploy failed: ..." tells the client why, and pushing the same
 * commit again builds again, as Dokku's pre-receive hook does.  1 if a
 * build was tried.
 */
static int deploy_before_update(struct rp *rp)
{
	struct push_cmd *d = deploy_cmd(rp);
	char *reason = NULL;
	size_t i;
	int r;

	if (!d)
		return 0;
	if (has_option(rp, "skip-deploy")) {
		rp_say(rp, "-----> Skipping deploy (push option skip-deploy)\n");
		return 0;
	}
	r = run_deploy(rp, d, &reason);
	if (r < 0)
		push_cmd_fail(d, "deploy failed: %s", error_last());
	else if (r > 0)
		push_cmd_fail(d, "deploy failed: %s", reason);
	else
		follow_live(rp, d);
	free(reason);
	if (r != 0 && (rp->req.caps & PUSH_ATOMIC))
		for (i = 0; i < rp->req.n; i++)
			if (!rp->req.cmds[i].error)
				push_cmd_fail(&rp->req.cmds[i],
					      "atomic push failure");
	return 1;
}

/* ---- report ------------------------------------------------------- */

static void send_report(struct rp *rp)
{
	struct buf out = BUF_INIT;
	size_t i;
	int err = 0;

	if (!(rp->req.caps & (PUSH_REPORT_STATUS | PUSH_REPORT_STATUS_V2)))
		return;
	err |= pkt_buf_addf(&out, "unpack %s\n",
			    rp->unpack_error ? rp->unpack_error : "ok");
	for (i = 0; i < rp->req.n; i++) {
		struct push_cmd *c = &rp->req.cmds[i];

		if (c->error)
			err |= pkt_buf_addf(&out, "ng %s %s\n", c->ref,
					    c->error);
		else
			err |= pkt_buf_addf(&out, "ok %s\n", c->ref);
	}
	err |= pkt_buf_flush(&out);
	if (err == 0) {
		if (rp->sideband)
			pkt_send_band(rp->io, &rp->io_dead, 1, out.data,
				      out.len);
		else
			pkt_send(rp->io, &rp->io_dead, out.data, out.len);
	}
	buf_release(&out);
}

/* ---- entry point ---------------------------------------------------- */

int receive_pack(const struct config *cfg, const char *app,
		 const char *pusher, int version, struct gitsvc_io *io,
		 int (*after_repack)(const char *repo_path))
{
	struct rp rp;
	int need_pack = 0, status = 1, lg2 = 0, any_ok = 0, opened;
	int deploy_tried = 0;
	char *after_push = NULL;
	size_t i;

	memset(&rp, 0, sizeof(rp));
	rp.cfg = cfg;
	rp.app = app;
	rp.pusher = pusher ? pusher : "unknown";
	rp.io = io;
	rp.version = version == 1 ? 1 : 0;
	push_request_init(&rp.req);
	opened = gitsvc_repo_open(&rp.repo, &rp.repo_path, cfg, app, io);
	if (opened < 0 && opened != ERR_NOTFOUND)
		goto out;
	lg2 = 1;
	rp.rd = xmalloc(sizeof(*rp.rd));
	pkt_reader_init(rp.rd, io);
	rp.rd->timeout_ms = (int)cfg->git_timeout_ms;
	phase_trace("receive: starts");
	if (advertise(&rp) < 0)
		goto out;
	if (push_request_read(&rp.req, rp.rd) < 0) {
		log_warnx("'%s': push: %s", app, error_last());
		if (rp.req.caps & PUSH_SIDE_BAND_64K) {
			char *m = xasprintf("error: %s\n", error_last());

			pkt_send_band(io, &rp.io_dead, 3, m, strlen(m));
			free(m);
		}
		goto out;
	}
	if (rp.req.n == 0) {
		/* nothing to push (the client said "Everything up-to-date") */
		status = 0;
		goto out;
	}
	rp.sideband = !!(rp.req.caps & PUSH_SIDE_BAND_64K);
	rp.quiet = !!(rp.req.caps & PUSH_QUIET);
	for (i = 0; i < rp.req.n; i++)
		if (!push_id_is_zero(rp.req.cmds[i].new_id))
			need_pack = 1;
	if (!rp.repo && need_pack && repo_create(&rp) < 0) {
		rp.unpack_error = xstrdup(error_last());
	} else if (!rp.repo) {
		/* only deletes, of refs that cannot be there (git: ok) */
		for (i = 0; i < rp.req.n; i++) {
			rp.req.cmds[i].missing = 1;
			rp_say(&rp, "warning: deleting a non-existent ref "
			       "(%s)\n", rp.req.cmds[i].ref);
		}
	} else if (need_pack && receive_pack_data(&rp) < 0) {
		rp.unpack_error = xstrdup(error_last());
	}
	if (rp.unpack_error) {
		gitsvc_oneline(rp.unpack_error);
		log_warnx("'%s': push refused: %s", app, rp.unpack_error);
		for (i = 0; i < rp.req.n; i++)
			push_cmd_fail(&rp.req.cmds[i], "unpacker error");
	} else if (rp.repo) {
		phase_trace("receive: checks");
		if (check_commands(&rp) < 0) {
			for (i = 0; i < rp.req.n; i++)
				push_cmd_fail(&rp.req.cmds[i], "%s",
					      error_last());
		}
		if (rp.req.caps & PUSH_ATOMIC) {
			for (i = 0; i < rp.req.n; i++)
				if (rp.req.cmds[i].error)
					break;
			if (i < rp.req.n)
				for (i = 0; i < rp.req.n; i++)
					push_cmd_fail(&rp.req.cmds[i],
						      "atomic push failure");
		}
		for (i = 0; i < rp.req.n; i++)
			if (!rp.req.cmds[i].error)
				any_ok = 1;
		if (any_ok && install_pack(&rp) < 0) {
			rp.unpack_error = xstrdup(error_last());
			gitsvc_oneline(rp.unpack_error);
			for (i = 0; i < rp.req.n; i++)
				push_cmd_fail(&rp.req.cmds[i],
					      "unpacker error");
			any_ok = 0;
		}
		if (any_ok) {
			phase_trace("receive: pack installed");
			deploy_tried = deploy_before_update(&rp);
			phase_trace("receive: deploy step done");
			apply_updates(&rp);
			fix_head(&rp);
			phase_trace("receive: refs updated");
		}
	}
	drop_quarantine(&rp);
	/* A first push whose build failed keeps its repository: the app
	 * exists from its first build on ("apps" lists it as new). */
	if (rp.created && !deploy_tried)
		forget_new_repo(&rp);
	for (i = 0; i < rp.req.n; i++) {
		struct push_cmd *c = &rp.req.cmds[i];
		char hex[GIT_OID_HEXSZ + 1];
		git_oid id;

		git_oid_fromraw(&id, c->new_id);
		git_oid_tostr(hex, sizeof(hex), &id);
		if (c->applied)
			log_debug("'%s': %s %s by %s", app, c->ref,
				 push_id_is_zero(c->new_id) ? "deleted" : hex,
				 rp.pusher);
		else
			log_debug("'%s': %s refused: %s", app, c->ref,
				 c->error ? c->error : "unknown");
	}
	send_report(&rp);
	if (rp.sideband)
		pkt_send(io, &rp.io_dead, "0000", 4);
	phase_trace("receive: report sent");
	/* the client has its answer: fold the packs if there are many,
	 * and have the next clone's pack ready (below, once libgit2 has
	 * let go of the packs: its cache of them is process-wide, and the
	 * child closes their fds) */
	if (rp.repo && rp.pack_installed)
		after_push = xstrdup(rp.repo_path);
	status = rp.unpack_error ? 1 : 0;
	for (i = 0; i < rp.req.n; i++)
		if (rp.req.cmds[i].error)
			status = 1;
out:
	drop_quarantine(&rp);
	free(rp.unpack_error);
	push_request_release(&rp.req);
	git_odb_free(rp.odb);
	git_repository_free(rp.repo);
	free(rp.repo_path);
	free(rp.rd);
	if (lg2)
		git_libgit2_shutdown();
	if (after_push)
		gitrepack_after_push(after_push, after_repack);
	free(after_push);
	phase_trace("receive: ends");
	return status;
}
