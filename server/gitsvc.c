/*
 * gitsvc: the exec command parser and the helpers shared by receive.c
 * (push) and upload.c (clone/fetch).
 */
#include "gitsvc.h"

#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <git2.h>

#include "config.h"
#include "pktline.h"
#include "util.h"
#include "banned.h"

#define SVC_PATH_MAX 1024	/* longest repository path we look at */

char *gitsvc_repo_path(const struct config *cfg, const char *app)
{
	return xasprintf("%s/apps/%s/repo.git", cfg->root, app);
}

int gitsvc_lg2_error(const char *what)
{
	const git_error *e = git_error_last();
	char *msg = xstrdup(e && e->message ? e->message : "unknown error");
	int ret;

	gitsvc_oneline(msg);
	ret = error_set("%s: %s", what, msg);
	free(msg);
	return ret;
}

void gitsvc_oneline(char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			*s = ' ';
}

void gitsvc_lg2_repo_only(void)
{
	static const int levels[] = {
		GIT_CONFIG_LEVEL_SYSTEM, GIT_CONFIG_LEVEL_XDG,
		GIT_CONFIG_LEVEL_GLOBAL, GIT_CONFIG_LEVEL_PROGRAMDATA,
	};
	size_t i;

	git_libgit2_opts(GIT_OPT_SET_OWNER_VALIDATION, 0);
	for (i = 0; i < ARRAY_SIZE(levels); i++)
		git_libgit2_opts(GIT_OPT_SET_SEARCH_PATH, levels[i], "");
}

int gitsvc_lg2_init(void)
{
	if (git_libgit2_init() < 0)
		return gitsvc_lg2_error("cannot initialise libgit2");
	/*
	 * The repositories are ours, under the state directory, and a session
	 * may run as another user than the one who made them: git's
	 * safe.directory check would only get in the way, and so would the
	 * HOME of the user who started berth (root's, which berth-ssh may
	 * not even look at).  Packs and refs are fsynced so a push we
	 * reported as done survives a crash.
	 */
	gitsvc_lg2_repo_only();
	git_libgit2_opts(GIT_OPT_ENABLE_FSYNC_GITDIR, 1);
	return 0;
}

static int has_head(const char *repo)
{
	char *head = xasprintf("%s/HEAD", repo);
	struct stat st;
	int r = lstat(head, &st) == 0;

	free(head);
	return r;
}

int gitsvc_repo_open(struct git_repository **repo, char **path,
		     const struct config *cfg, const char *app,
		     struct gitsvc_io *io)
{
	*repo = NULL;
	*path = NULL;
	if (!app_name_valid(app)) {
		error_set("invalid app name '%s'", app ? app : "");
		pkt_writef(io, "ERR %s\n", error_last());
		return -1;
	}
	if (gitsvc_lg2_init() < 0)
		return -1;
	*path = gitsvc_repo_path(cfg, app);
	if (!path_exists(*path))
		return ERR_NOTFOUND;
	/* the folder a first push is to fill (gitsep.h): no repository yet */
	if (!has_head(*path))
		return ERR_NOTFOUND;
	if (git_repository_open_bare(repo, *path) < 0) {
		gitsvc_lg2_error("cannot open repository");
		pkt_writef(io, "ERR %s\n", error_last());
		git_libgit2_shutdown();
		return -1;
	}
	return 0;
}

/*
 * Undo git's sq_quote: 'a'\''b' -> a'b.  Outside quotes only the escapes
 * git itself produces (\' and \!) are accepted, and nothing may follow
 * the quoted word.  Returns a fresh string or NULL.
 */
static char *sq_dequote(const char *s)
{
	struct buf out = BUF_INIT;

	buf_init(&out, SVC_PATH_MAX);
	if (*s != '\'')
		goto bad;
	s++;
	for (;;) {
		while (*s && *s != '\'')
			if (buf_add(&out, s++, 1) < 0)
				goto bad;
		if (*s != '\'')
			goto bad;	/* unterminated */
		s++;
		if (!*s)
			break;
		if (s[0] != '\\' || (s[1] != '\'' && s[1] != '!') ||
		    s[2] != '\'')
			goto bad;
		if (buf_add(&out, s + 1, 1) < 0)
			goto bad;
		s += 3;
	}
	if (out.len == 0)
		goto bad;
	return buf_detach(&out);
bad:
	buf_release(&out);
	return NULL;
}

/* An unquoted path word: only characters no shell would treat specially. */
static char *plain_word(const char *s)
{
	size_t n = strlen(s), i;

	if (n == 0 || n > SVC_PATH_MAX)
		return NULL;
	for (i = 0; i < n; i++) {
		char c = s[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		      (c >= '0' && c <= '9') || c == '-' || c == '_' ||
		      c == '.' || c == '/'))
			return NULL;
	}
	return xstrdup(s);
}

int gitsvc_parse_command(const char *cmdline, enum gitsvc_service *svc,
			 char **app)
{
	static const struct {
		const char *word;
		enum gitsvc_service svc;
	} cmds[] = {
		{ "git-receive-pack", GITSVC_RECEIVE_PACK },
		{ "git receive-pack", GITSVC_RECEIVE_PACK },
		{ "git-upload-pack", GITSVC_UPLOAD_PACK },
		{ "git upload-pack", GITSVC_UPLOAD_PACK },
		{ "git-upload-archive", GITSVC_UPLOAD_ARCHIVE },
		{ "git upload-archive", GITSVC_UPLOAD_ARCHIVE },
	};
	const char *arg = NULL, *name, *space;
	char *path = NULL, *shown;
	size_t i, n;
	int ret = ERR_INVALID;

	*app = NULL;
	if (!cmdline)
		return ERR_NOTFOUND;
	/*
	 * A client told where git lives on its servers sends the program's
	 * path ("/usr/bin/git-upload-pack 'app'", git's --upload-pack,
	 * libgit2's ssh paths): only its last component counts here.
	 */
	space = strchr(cmdline, ' ');
	if (cmdline[0] == '/' && space) {
		const char *p;

		for (p = cmdline; p < space; p++)
			if (*p == '/')
				cmdline = p + 1;
	}
	for (i = 0; i < ARRAY_SIZE(cmds); i++) {
		n = strlen(cmds[i].word);
		if (!strncmp(cmdline, cmds[i].word, n) &&
		    (cmdline[n] == ' ' || cmdline[n] == '\0')) {
			arg = cmdline + n;
			*svc = cmds[i].svc;
			break;
		}
	}
	if (!arg)
		return ERR_NOTFOUND;
	while (*arg == ' ')
		arg++;
	if (!*arg) {
		error_set("'%s' needs a repository path", cmds[i].word);
		return ERR_INVALID;
	}
	path = *arg == '\'' ? sq_dequote(arg) : plain_word(arg);
	if (!path) {
		shown = xstrndup(arg, 64);
		gitsvc_oneline(shown);
		error_set("bad repository path '%s'", shown);
		free(shown);
		goto out;
	}
	/* "/app.git", "app.git/", "~/app", "app": all name the app "app" */
	name = path;
	if (!strncmp(name, "~/", 2))
		name += 2;
	while (*name == '/')
		name++;
	n = strlen(name);
	while (n > 0 && name[n - 1] == '/')
		n--;
	if (n > 4 && !memcmp(name + n - 4, ".git", 4))
		n -= 4;
	shown = xstrndup(name, n);
	if (!app_name_valid(shown)) {
		char *s = xstrndup(path, 64);

		gitsvc_oneline(s);
		error_set("'%s' is not a valid app name", s);
		free(s);
		free(shown);
		goto out;
	}
	*app = shown;
	ret = 0;
out:
	free(path);
	return ret;
}

int gitsvc_protocol_version(const char *gp)
{
	int best = 0;

	while (gp && *gp) {
		const char *end = strchr(gp, ':');
		size_t n = end ? (size_t)(end - gp) : strlen(gp);

		if (n == 9 && !strncmp(gp, "version=", 8) &&
		    (gp[8] == '1' || gp[8] == '2') && gp[8] - '0' > best)
			best = gp[8] - '0';
		gp += n;
		if (*gp == ':')
			gp++;
	}
	return best;
}
