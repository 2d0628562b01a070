/* buildpack: see buildpack.h. */
#include "buildpack.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <git2.h>

#include "log.h"
#include "safefs.h"
#include "runner.h"
#include "spawn.h"
#include "banned.h"

#define REASON_MAX 1024
#define REF_MAX 200

void buildpack_spec_init(struct buildpack_spec *s)
{
	memset(s, 0, sizeof(*s));
}

void buildpack_spec_release(struct buildpack_spec *s)
{
	free(s->text);
	free(s->name);
	free(s->url);
	free(s->ref);
	memset(s, 0, sizeof(*s));
}

static int name_valid(const char *s, size_t n)
{
	size_t i;

	if (!n || n > APP_NAME_MAX || s[0] == '-' || s[n - 1] == '-')
		return 0;
	for (i = 0; i < n; i++)
		if (!islower((unsigned char)s[i]) &&
		    !isdigit((unsigned char)s[i]) && s[i] != '-')
			return 0;
	return 1;
}

/* A branch, tag or commit: git's ref rules, the common subset. */
static int ref_valid(const char *r)
{
	size_t i, n = strlen(r);

	if (!n || n > REF_MAX || r[0] == '-' || r[0] == '/' || r[0] == '.' ||
	    r[n - 1] == '/' || r[n - 1] == '.' || strstr(r, "..") ||
	    strstr(r, "//") || strstr(r, "@{") || strstr(r, "/.") ||
	    (n >= 5 && !strcmp(r + n - 5, ".lock")))
		return 0;
	for (i = 0; i < n; i++)
		if (!isalnum((unsigned char)r[i]) && !strchr("._/-+", r[i]))
			return 0;
	return 1;
}

static int has_scheme(const char *s, const char *scheme)
{
	return !strncmp(s, scheme, strlen(scheme));
}

static int spec_error(const char *text, const char *why)
{
	char shown[80];
	size_t i;

	for (i = 0; text[i] && i + 4 < sizeof(shown); i++)
		shown[i] = (unsigned char)text[i] < 0x20 || text[i] == 0x7f ?
			   '?' : text[i];
	if (text[i]) {
		memcpy(shown + i, "...", 3);
		i += 3;
	}
	shown[i] = '\0';
	return error_set("buildpack '%s' %s", shown, why), ERR_INVALID;
}

int buildpack_spec_parse(struct buildpack_spec *s, const char *text)
{
	static const char *const schemes[] = {
		"https://", "http://", "git://", "ssh://", "file://",
	};
	const char *hash, *host;
	size_t i, n = text ? strlen(text) : 0;

	if (!n)
		return error_set("empty buildpack name"), ERR_INVALID;
	if (n > BUILDPACK_SPEC_MAX)
		return spec_error(text, "is too long");
	for (i = 0; i < n; i++)
		if ((unsigned char)text[i] <= 0x20 || text[i] == 0x7f)
			return spec_error(text, "has a space or a control "
					  "character");
	if (text[0] == '/') {
		if (strstr(text, "/../") || (n >= 3 &&
					     !strcmp(text + n - 3, "/..")))
			return spec_error(text, "is a path with '..'");
		buildpack_spec_init(s);
		s->kind = BUILDPACK_PATH;
		s->text = xstrdup(text);
		s->name = xstrdup(text);
		return 0;
	}
	if (!strncmp(text, "heroku/", 7) && name_valid(text + 7, n - 7)) {
		buildpack_spec_init(s);
		s->text = xstrdup(text);
		if (!strcmp(text + 7, "nodejs") ||
		    !strcmp(text + 7, "python")) {
			s->kind = BUILDPACK_NAME;
			s->name = xstrdup(!strcmp(text + 7, "nodejs") ? "node" :
					  "python");
		} else {
			s->kind = BUILDPACK_URL;
			s->url = xasprintf("https://github.com/heroku/"
					   "heroku-buildpack-%s.git", text + 7);
		}
		return 0;
	}
	if (!strstr(text, "://")) {
		if (!name_valid(text, n))
			return spec_error(text, "is not a name ([a-z0-9-]), "
					  "an absolute path or a git URL");
		buildpack_spec_init(s);
		s->kind = BUILDPACK_NAME;
		s->text = xstrdup(text);
		s->name = xstrdup(text);
		return 0;
	}
	for (i = 0; i < ARRAY_SIZE(schemes); i++)
		if (has_scheme(text, schemes[i]))
			break;
	if (i == ARRAY_SIZE(schemes))
		return spec_error(text, "has an unsupported URL (use https://, "
				  "http://, git://, ssh:// or file://)");
	host = text + strlen(schemes[i]);
	hash = strchr(text, '#');
	if ((hash ? (size_t)(hash - host) : strlen(host)) == 0)
		return spec_error(text, "has no host or path in its URL");
	if (has_scheme(text, "file://") && host[0] != '/')
		return spec_error(text, "needs an absolute path after file://");
	if (hash && !ref_valid(hash + 1))
		return spec_error(text, "has an invalid ref after '#' (a "
				  "branch, tag or commit)");
	buildpack_spec_init(s);
	s->kind = BUILDPACK_URL;
	s->text = xstrdup(text);
	s->url = hash ? xstrndup(text, (size_t)(hash - text)) : xstrdup(text);
	s->ref = hash ? xstrdup(hash + 1) : NULL;
	return 0;
}

int buildpack_list_parse(struct strv *out, const char *buf, size_t len,
			 const char *fname)
{
	size_t pos = 0;
	int lineno = 0;

	while (pos < len) {
		const char *line = buf + pos;
		const char *nl = memchr(line, '\n', len - pos);
		size_t l = nl ? (size_t)(nl - line) : len - pos, a = 0;
		struct buildpack_spec s;
		char *text;
		int r;

		pos += l + (nl ? 1 : 0);
		lineno++;
		if (memchr(line, '\0', l))
			return error_set("%s:%d: NUL byte in line", fname,
					 lineno), ERR_INVALID;
		while (a < l && isspace((unsigned char)line[a]))
			a++;
		while (l > a && isspace((unsigned char)line[l - 1]))
			l--;
		if (a == l || line[a] == '#')
			continue;
		if (out->n >= BUILDPACK_LIST_MAX)
			return error_set("%s:%d: more than %d buildpacks",
					 fname, lineno, BUILDPACK_LIST_MAX),
			       ERR_INVALID;
		text = xstrndup(line + a, l - a);
		r = buildpack_spec_parse(&s, text);
		if (r < 0) {
			char *why = xstrdup(error_last());

			error_set("%s:%d: %s", fname, lineno, why);
			free(why);
			free(text);
			return r;
		}
		buildpack_spec_release(&s);
		strv_push(out, text);
		free(text);
	}
	return 0;
}

char *buildpack_cache_name(const char *url)
{
	uint64_t h = 1469598103934665603ULL;	/* FNV-1a */
	const char *p, *base, *end;
	struct buf b = BUF_INIT;
	size_t n;

	for (p = url; *p; p++) {
		h ^= (unsigned char)*p;
		h *= 1099511628211ULL;
	}
	/* the last path component, for people reading the folder */
	end = url + strlen(url);
	while (end > url && end[-1] == '/')
		end--;
	if (end - url > 4 && !strncmp(end - 4, ".git", 4))
		end -= 4;
	for (base = end; base > url && base[-1] != '/' && base[-1] != ':';
	     base--)
		;
	for (n = 0, p = base; p < end && n < 48; p++, n++)
		buf_add(&b, isalnum((unsigned char)*p) || *p == '-' ||
			*p == '_' ? p : "-", 1);
	buf_addf(&b, "%s%016llx", b.len ? "-" : "", (unsigned long long)h);
	return buf_detach(&b);
}

/* ---- fetching, in a child process ---- */

static int lg2_fail(const char *what)
{
	const git_error *e = git_error_last();

	return error_set("%s: %s", what, e && e->message ? e->message :
			 "unknown error");
}

/* libgit2's own words for what went wrong. */
static int lg2_why(void)
{
	const git_error *e = git_error_last();

	return error_set("%s", e && e->message ? e->message : "unknown error");
}

/* A local URL's path ("file:///x"), else NULL. */
static const char *local_path(const char *url)
{
	return has_scheme(url, "file://") ? url + 7 : NULL;
}

static int outside_state(const char *path, const char *state_root)
{
	char real[PATH_MAX], root[PATH_MAX];
	size_t n;

	if (!realpath(state_root, root))
		return error_setsys("cannot open '%s'", state_root);
	if (!realpath(path, real))
		return error_setsys("cannot open '%s'", path);
	n = strlen(root);
	if (!strncmp(real, root, n) && (real[n] == '/' || real[n] == '\0'))
		return error_set("'%s' is inside berth's state directory",
				 path);
	return 0;
}

/* path with "//" and "/./" taken out; -1 for a ".." part or no room */
static int clean_path(char *out, size_t len, const char *path)
{
	size_t o = 0;
	const char *p = path;

	while (*p) {
		size_t seg;

		if (*p == '/') {
			p++;
			continue;
		}
		seg = strcspn(p, "/");
		if (seg == 1 && p[0] == '.') {
			p += seg;
			continue;
		}
		if (seg == 2 && p[0] == '.' && p[1] == '.')
			return -1;
		if (o + seg + 2 > len)
			return -1;
		out[o++] = '/';
		memcpy(out + o, p, seg);
		o += seg;
		p += seg;
	}
	if (!o)
		out[o++] = '/';
	out[o] = '\0';
	return 0;
}

/* Does path name something under root, as written ("//" and "/./" taken
 * out)?  For a path the build user cannot resolve. */
static int under_lexically(const char *path, const char *root)
{
	char a[PATH_MAX], b[PATH_MAX];
	size_t n;

	if (clean_path(a, sizeof(a), path) < 0 ||
	    clean_path(b, sizeof(b), root) < 0)
		return 0;
	n = strlen(b);
	return !strncmp(a, b, n) && (a[n] == '/' || a[n] == '\0' ||
				     n == 1);
}

/* ref (or HEAD when NULL) as a commit of repo: 0, ERR_NOTFOUND, -1. */
static int resolve(git_repository *repo, const char *ref, git_oid *out)
{
	static const char *const prefixes[] = { "refs/heads/", "refs/tags/" };
	git_object *obj = NULL, *peeled = NULL;
	git_reference *r = NULL;
	size_t i, n;
	int ret = ERR_NOTFOUND;

	if (!ref) {
		if (git_reference_lookup(&r, repo, "refs/berth/HEAD") < 0 ||
		    git_reference_peel(&peeled, r, GIT_OBJECT_COMMIT) < 0)
			goto out;
		git_oid_cpy(out, git_object_id(peeled));
		ret = 0;
		goto out;
	}
	for (i = 0; i < ARRAY_SIZE(prefixes); i++) {
		char *name = xasprintf("%s%s", prefixes[i], ref);
		int found = git_reference_lookup(&r, repo, name) == 0;

		free(name);
		if (!found)
			continue;
		if (git_reference_peel(&peeled, r, GIT_OBJECT_COMMIT) < 0) {
			lg2_fail("cannot read the ref");
			ret = -1;
			goto out;
		}
		git_oid_cpy(out, git_object_id(peeled));
		ret = 0;
		goto out;
	}
	n = strlen(ref);
	if (n >= 4 && n <= GIT_OID_HEXSZ &&
	    strspn(ref, "0123456789abcdef") == n) {
		git_oid prefix;

		if (git_oid_fromstrn(&prefix, ref, n) == 0 &&
		    git_object_lookup_prefix(&obj, repo, &prefix, n,
					     GIT_OBJECT_ANY) == 0 &&
		    git_object_peel(&peeled, obj, GIT_OBJECT_COMMIT) == 0) {
			git_oid_cpy(out, git_object_id(peeled));
			ret = 0;
		}
	}
out:
	git_object_free(peeled);
	git_object_free(obj);
	git_reference_free(r);
	return ret;
}

/* Fetch branches and tags of url, and note its HEAD as refs/berth/HEAD. */
static int fetch(git_repository *repo, const char *url)
{
	char *refspecs[] = { "+refs/heads/*:refs/heads/*",
			     "+refs/tags/*:refs/tags/*" };
	git_strarray specs = { refspecs, 2 };
	git_remote *remote = NULL;
	git_remote_callbacks cb;
	git_fetch_options fo;
	const git_remote_head **heads;
	size_t nheads, i;
	int ret = -1, connected = 0;

	if (git_remote_init_callbacks(&cb, GIT_REMOTE_CALLBACKS_VERSION) < 0 ||
	    git_fetch_options_init(&fo, GIT_FETCH_OPTIONS_VERSION) < 0 ||
	    git_remote_create_anonymous(&remote, repo, url) < 0) {
		lg2_why();
		goto out;
	}
	if (git_remote_connect(remote, GIT_DIRECTION_FETCH, &cb, NULL,
			       NULL) < 0) {
		lg2_why();
		goto out;
	}
	connected = 1;
	if (git_remote_ls(&heads, &nheads, remote) < 0) {
		lg2_fail("cannot list its refs");
		goto out;
	}
	fo.download_tags = GIT_REMOTE_DOWNLOAD_TAGS_NONE;
	fo.update_fetchhead = 0;
	if (git_remote_download(remote, &specs, &fo) < 0 ||
	    git_remote_update_tips(remote, &cb, 0,
				   GIT_REMOTE_DOWNLOAD_TAGS_NONE, NULL) < 0) {
		lg2_why();
		goto out;
	}
	/* heads stay valid while connected */
	if (git_remote_ls(&heads, &nheads, remote) < 0) {
		lg2_fail("cannot list its refs");
		goto out;
	}
	for (i = 0; i < nheads; i++) {
		git_reference *r = NULL;

		if (strcmp(heads[i]->name, "HEAD"))
			continue;
		if (git_reference_create(&r, repo, "refs/berth/HEAD",
					 &heads[i]->oid, 1, NULL) < 0) {
			lg2_fail("cannot note the default branch");
			goto out;
		}
		git_reference_free(r);
	}
	ret = 0;
out:
	if (connected)
		git_remote_disconnect(remote);
	git_remote_free(remote);
	return ret;
}

static int checkout(git_repository *repo, const git_oid *id, const char *dir)
{
	git_checkout_options co;
	git_commit *c = NULL;
	git_tree *t = NULL;
	int ret = -1;

	if (git_checkout_options_init(&co, GIT_CHECKOUT_OPTIONS_VERSION) < 0 ||
	    git_commit_lookup(&c, repo, id) < 0 ||
	    git_commit_tree(&t, c) < 0) {
		lg2_fail("cannot read the commit");
		goto out;
	}
	co.checkout_strategy = GIT_CHECKOUT_FORCE |
			       GIT_CHECKOUT_DONT_UPDATE_INDEX;
	co.target_directory = dir;
	if (git_checkout_tree(repo, (git_object *)t, &co) < 0) {
		lg2_fail("cannot check out");
		goto out;
	}
	ret = 0;
out:
	git_tree_free(t);
	git_commit_free(c);
	return ret;
}

/* One line of the child's report: its kind, then text on one line. */
static void report_line(int fd, char kind, const char *text)
{
	struct buf b = BUF_INIT;
	size_t i;

	buf_add(&b, &kind, 1);
	for (i = 0; text[i] && i < REASON_MAX; i++)
		buf_add(&b, text[i] == '\n' || text[i] == '\r' ? " " : text + i,
			1);
	buf_addstr(&b, "\n");
	(void)write_all(fd, b.data, b.len);
	buf_release(&b);
}

/* The child's whole work.  Writes "C<hex>\n" (and "S<why>\n" when the
 * cache stood in for a failed fetch) to fd; 0 or -1 with error_last(). */
static int fetch_all(const struct buildpack_fetch *f, int fd)
{
	git_repository *repo = NULL;
	char *name = NULL, *path = NULL, *stale = NULL;
	const char *local = local_path(f->url);
	char hex[GIT_OID_HEXSZ + 1];
	git_oid id;
	int r, ret = -1, pinned;

	if (git_libgit2_init() < 0)
		return lg2_fail("cannot start libgit2");
	/* a file:// source owned by someone else is fine to read */
	git_libgit2_opts(GIT_OPT_SET_OWNER_VALIDATION, 0);
	/* no one's git config (url rewrites, credential helpers, root's
	 * HOME the build user cannot read): only the repository's own */
	git_libgit2_opts(GIT_OPT_SET_SEARCH_PATH, GIT_CONFIG_LEVEL_SYSTEM, "");
	git_libgit2_opts(GIT_OPT_SET_SEARCH_PATH, GIT_CONFIG_LEVEL_XDG, "");
	git_libgit2_opts(GIT_OPT_SET_SEARCH_PATH, GIT_CONFIG_LEVEL_GLOBAL, "");
	git_libgit2_opts(GIT_OPT_SET_SEARCH_PATH, GIT_CONFIG_LEVEL_PROGRAMDATA,
			 "");
	/* (a source that is gone fails to fetch below; the cache may do);
	 * a path the build user may not even look at is judged by its text */
	if (local && (under_lexically(local, f->state_root) ||
		      (path_exists(local) &&
		       outside_state(local, f->state_root) < 0))) {
		if (under_lexically(local, f->state_root))
			error_set("'%s' is inside berth's state directory",
				  local);
		goto out;
	}
	name = buildpack_cache_name(f->url);
	path = xasprintf("%s/%s.git", f->cache, name);
	if (git_repository_open_bare(&repo, path) < 0 &&
	    git_repository_init(&repo, path, 1) < 0) {
		lg2_fail("cannot make the cache repository");
		goto out;
	}
	/* a full commit id already here never changes: no fetch */
	pinned = f->ref && strlen(f->ref) == GIT_OID_HEXSZ &&
		 resolve(repo, f->ref, &id) == 0;
	if (!pinned && fetch(repo, f->url) < 0) {
		stale = xstrdup(error_last());
		if (resolve(repo, f->ref, &id) != 0) {
			error_set("%s", stale);
			goto out;
		}
	}
	r = resolve(repo, f->ref, &id);
	if (r == ERR_NOTFOUND) {
		if (f->ref)
			error_set("no branch, tag or commit '%s' there",
				  f->ref);
		else
			error_set("it has no default branch (HEAD): give one "
				  "after '#'");
		goto out;
	}
	if (r < 0)
		goto out;
	if (checkout(repo, &id, f->dest) < 0)
		goto out;
	git_oid_tostr(hex, sizeof(hex), &id);
	if (stale)
		report_line(fd, 'S', stale);
	report_line(fd, 'C', hex);
	ret = 0;
out:
	git_repository_free(repo);
	git_libgit2_shutdown();
	free(name);
	free(path);
	free(stale);
	return ret;
}

void buildpack_fetch_init(struct buildpack_fetch *f)
{
	memset(f, 0, sizeof(*f));
	f->uid = f->gid = -1;
}

void buildpack_fetch_release(struct buildpack_fetch *f)
{
	FREE_AND_NULL(f->stale);
}

/* Make dir (mode 0700) if missing and give it, with what is in it, to
 * uid:gid (the build user may have changed since the last build), never
 * through a link: its parent is berth's own. */
static int own_dir(const char *dir, long uid, long gid)
{
	char *parent = xstrdup(dir), *slash = strrchr(parent, '/');
	struct stat st;
	int fd = -1, ret = -1;

	if (mkdir(dir, 0700) < 0 && errno != EEXIST) {
		error_setsys("cannot create '%s'", dir);
		goto out;
	}
	if (lstat(dir, &st) < 0) {
		error_setsys("cannot stat '%s'", dir);
		goto out;
	}
	if (!S_ISDIR(st.st_mode)) {
		error_set("'%s' is not a folder", dir);
		goto out;
	}
	if (uid < 0 || !slash || slash == parent) {
		ret = 0;
		goto out;
	}
	*slash = '\0';
	fd = safefs_open_top(parent);
	if (fd < 0)
		goto out;
	ret = safefs_chown_tree(fd, slash + 1, (uid_t)uid, (gid_t)gid);
out:
	if (fd >= 0)
		close(fd);
	free(parent);
	return ret;
}

/* Run fn in a child as uid:gid (when >= 0) under the deadline; its
 * report (lines) comes back in *report.  0, or -1 with error_last(). */
static int in_child(int (*fn)(const void *arg, int fd), const void *arg,
		    int (*setup)(void), long uid, long gid, int64_t deadline,
		    struct buf *report)
{
	int pfd[2] = { -1, -1 }, status = 0, ret = -1;
	char chunk[512];
	pid_t pid;
	ssize_t n;

	if (pipe2(pfd, O_CLOEXEC) < 0)
		return error_setsys("cannot make a pipe");
	pid = fork();
	if (pid < 0) {
		error_setsys("cannot fork");
		goto out;
	}
	if (pid == 0) {
		int64_t left = deadline ? deadline - now_ms() : 0;

		close(pfd[0]);
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		signal(SIGALRM, SIG_DFL);
		signal(SIGPIPE, SIG_DFL);
		if (deadline)
			alarm(left > 1000 ? (unsigned)(left / 1000) : 1);
		if (setup && setup() != 0) {
			report_line(pfd[1], 'E', "cannot join the build's cgroup");
			_exit(1);
		}
		if (uid >= 0 &&
		    (setgroups(0, NULL) < 0 ||
		     setresgid((gid_t)gid, (gid_t)gid, (gid_t)gid) < 0 ||
		     setresuid((uid_t)uid, (uid_t)uid, (uid_t)uid) < 0))
			_exit(3);
		umask(022);
		error_clear();
		if (fn(arg, pfd[1]) == 0)
			_exit(0);
		report_line(pfd[1], 'E', error_last());
		_exit(1);
	}
	close(pfd[1]);
	pfd[1] = -1;
	while ((n = read(pfd[0], chunk, sizeof(chunk))) != 0) {
		if (n < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		if (report->len + (size_t)n <= 64 * 1024)
			buf_add(report, chunk, (size_t)n);
	}
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
		ret = 0;
	} else if (WIFSIGNALED(status) && WTERMSIG(status) == SIGALRM) {
		error_set("build timed out");
	} else if (WIFEXITED(status) && WEXITSTATUS(status) == 3) {
		error_set("cannot switch to the build user");
	} else {
		const char *p, *e = NULL;

		/* the child's own reason, on its "E" line */
		for (p = report->data; p && *p; p += strcspn(p, "\n") + 1) {
			if (*p == 'E')
				e = p + 1;
			if (!p[strcspn(p, "\n")])
				break;
		}
		if (e) {
			size_t l = strcspn(e, "\n");

			error_set("%.*s",
				  (int)(l > REASON_MAX ? REASON_MAX : l), e);
		} else {
			char desc[64];

			error_set("the fetch %s", spawn_describe_status(
					  status, desc, sizeof(desc)));
		}
	}
out:
	if (pfd[0] >= 0)
		close(pfd[0]);
	if (pfd[1] >= 0)
		close(pfd[1]);
	return ret;
}

static int fetch_child(const void *arg, int fd)
{
	return fetch_all(arg, fd);
}

int buildpack_fetch(struct buildpack_fetch *f)
{
	struct buf report = BUF_INIT;
	const char *p;
	size_t l;
	int ret = -1;

	FREE_AND_NULL(f->stale);
	f->commit[0] = '\0';
	if (own_dir(f->cache, f->uid, f->gid) < 0)
		goto out;
	if (f->uid >= 0 && chown(f->dest, (uid_t)f->uid, (gid_t)f->gid) < 0) {
		error_setsys("cannot hand '%s' over", f->dest);
		goto out;
	}
	if (in_child(fetch_child, f, f->child_setup, f->uid, f->gid,
		     f->deadline, &report) < 0) {
		char *why = xstrdup(error_last());

		error_set("cannot fetch '%s': %s", f->url, why);
		free(why);
		goto out;
	}
	for (p = report.data; p && *p; p += l + (p[l] ? 1 : 0)) {
		l = strcspn(p, "\n");

		if (p[0] == 'C' && l == GIT_OID_HEXSZ + 1) {
			memcpy(f->commit, p + 1, GIT_OID_HEXSZ);
			f->commit[GIT_OID_HEXSZ] = '\0';
		} else if (p[0] == 'S' && !f->stale) {
			f->stale = xstrndup(p + 1, l - 1 > REASON_MAX ?
					    REASON_MAX : l - 1);
		}
	}
	if (!f->commit[0]) {
		error_set("cannot fetch '%s': no commit came back", f->url);
		goto out;
	}
	ret = 0;
out:
	buf_release(&report);
	return ret;
}

int buildpack_copy(const char *src, const char *dest, long uid, long gid,
		   int64_t deadline)
{
	char *argv[] = { "cp", "-R", "-P", "--", (char *)(uintptr_t)src,
			 (char *)(uintptr_t)dest, NULL };
	char *envp[] = { "PATH=/usr/bin:/bin", "LC_ALL=C", NULL };
	struct buf out = BUF_INIT;
	struct runner r;
	int ret = -1;

	runner_init(&r);
	r.spawn.argv = argv;
	r.spawn.envp = envp;
	r.spawn.flags = SPAWN_DIE_WITH_PARENT;
	if (uid >= 0) {
		r.spawn.flags |= SPAWN_DROP_PRIV;
		r.spawn.uid = (uid_t)uid;
		r.spawn.gid = (gid_t)gid;
	}
	r.capture[RUNNER_OUT] = &out;
	r.capture_max = 1024;
	r.merge = 1;
	/* cp of a buildpack is quick; the deadline still bounds it */
	if (deadline) {
		int64_t left = deadline - now_ms();

		r.timeout_ms = left > 0 ? (long)left : 1;
		r.timeout_msg = "build timed out";
	}
	if (runner_run(&r) < 0)
		goto out;
	if (!WIFEXITED(r.status) || WEXITSTATUS(r.status) != 0) {
		size_t l = strcspn(out.data, "\n");

		error_set("cannot copy buildpack '%s': %.*s", src,
			  (int)(l > 300 ? 300 : l), l ? out.data : "cp failed");
		goto out;
	}
	ret = 0;
out:
	buf_release(&out);
	return ret;
}
