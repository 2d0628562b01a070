/* safefs: see safefs.h. */
#include "safefs.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>
#include "banned.h"

#define DIR_ENTRIES_MAX (1024 * 1024)
#define REMOVE_ROUNDS_MAX 100000
#define REMOVE_STUCK_MAX 1000

/* 1: try openat2; 0: tests asked for the walk; -1: the kernel lacks it. */
static int openat2_state = 1;

int safefs_set_openat2(int on)
{
	int was = openat2_state > 0;

	if (openat2_state >= 0)
		openat2_state = on ? 1 : 0;
	return was;
}

/* ---- paths ---- */

/* Relative, no "..", no empty component; "." alone is the dir itself. */
static int path_check(const char *path)
{
	const char *p = path;

	if (!path || !*path) {
		error_set("empty path");
		return ERR_INVALID;
	}
	if (*path == '/') {
		error_set("'%.200s' is not a path inside the tree", path);
		return ERR_INVALID;
	}
	if (strlen(path) >= PATH_MAX) {
		error_set("path too long");
		return ERR_INVALID;
	}
	if (!strcmp(path, "."))
		return 0;
	while (*p) {
		size_t n = strcspn(p, "/");

		if (n == 0 || (n == 2 && p[0] == '.' && p[1] == '.') ||
		    (n == 1 && p[0] == '.')) {
			error_set("'%.200s' is not a path inside the tree", path);
			return ERR_INVALID;
		}
		p += n;
		if (*p == '/') {
			p++;
			if (!*p) {
				error_set("'%.200s' is not a path inside the tree",
					  path);
				return ERR_INVALID;
			}
		}
	}
	return 0;
}

static int link_error(const char *path, size_t len)
{
	error_set("'%.*s' is a symbolic link", (int)len, path);
	return ERR_INVALID;
}

/*
 * One component at a time, O_NOFOLLOW, each opened relative to the last
 * fd: a link on the way is met as a link.  Also what gives openat2's
 * refusals a precise message.
 */
static int walk_open(int dirfd, const char *path, int flags, mode_t mode)
{
	struct stat top, st;
	const char *p = path;
	int cur = dirfd, fd = -1, ret = -1;

	if (!strcmp(path, "."))
		return openat(dirfd, ".", flags | O_CLOEXEC, mode);
	if (fstat(dirfd, &top) < 0)
		return error_setsys("cannot stat the tree");
	for (;;) {
		size_t n = strcspn(p, "/");
		char comp[NAME_MAX + 1];
		int last = p[n] == '\0';

		if (n > NAME_MAX) {
			errno = ENAMETOOLONG;
			error_setsys("cannot open '%s'", path);
			goto out;
		}
		memcpy(comp, p, n);
		comp[n] = '\0';
		if (last)
			fd = openat(cur, comp, flags | O_CLOEXEC | O_NOFOLLOW,
				    mode);
		else
			fd = openat(cur, comp, O_PATH | O_DIRECTORY |
				    O_NOFOLLOW | O_CLOEXEC);
		if (fd < 0) {
			int e = errno;

			if ((e == ELOOP || e == ENOTDIR) &&
			    fstatat(cur, comp, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
			    S_ISLNK(st.st_mode)) {
				ret = link_error(path, (size_t)(p - path) + n);
			} else if (e == ENOENT) {
				error_set("no '%s'", path);
				ret = ERR_NOTFOUND;
			} else if (e == ENOTDIR) {
				error_set("'%.*s' is not a folder",
					  (int)((size_t)(p - path) + n), path);
				ret = ERR_INVALID;
			} else {
				errno = e;
				error_setsys("cannot open '%s'", path);
			}
			goto out;
		}
		if (fstat(fd, &st) < 0) {
			error_setsys("cannot stat '%s'", path);
			goto out;
		}
		if (S_ISLNK(st.st_mode)) {	/* O_PATH | O_NOFOLLOW */
			ret = link_error(path, (size_t)(p - path) + n);
			goto out;
		}
		if (st.st_dev != top.st_dev) {
			error_set("'%.*s' is a mount point",
				  (int)((size_t)(p - path) + n), path);
			ret = ERR_INVALID;
			goto out;
		}
		if (last) {
			ret = fd;
			fd = -1;
			goto out;
		}
		if (cur != dirfd)
			close(cur);
		cur = fd;
		fd = -1;
		p += n + 1;
	}
out:
	if (fd >= 0)
		close(fd);
	if (cur != dirfd)
		close(cur);
	return ret;
}

static long sys_openat2(int dirfd, const char *path, struct open_how *how)
{
#ifdef SYS_openat2
	return syscall(SYS_openat2, dirfd, path, how, sizeof(*how));
#else
	errno = ENOSYS;
	return -1;
#endif
}

int safefs_openat(int dirfd, const char *path, int flags, mode_t mode)
{
	struct open_how how;
	struct stat st;
	int r, tries, fd = -1;

	r = path_check(path);
	if (r < 0)
		return r;
	if (openat2_state <= 0)
		return walk_open(dirfd, path, flags, mode);
	memset(&how, 0, sizeof(how));
	how.flags = (uint64_t)(flags | O_CLOEXEC | O_NOFOLLOW);
	how.mode = (flags & (O_CREAT | O_TMPFILE)) ? mode : 0;
	how.resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS |
		RESOLVE_NO_MAGICLINKS | RESOLVE_NO_XDEV;
	/* EAGAIN: a rename raced the lookup; the kernel asks us to retry */
	for (tries = 0; tries < 64; tries++) {
		fd = (int)sys_openat2(dirfd, path, &how);
		if (fd >= 0 || errno != EAGAIN)
			break;
	}
	if (fd < 0 && errno == ENOSYS) {
		openat2_state = -1;
		return walk_open(dirfd, path, flags, mode);
	}
	if (fd >= 0) {
		/* O_PATH | O_NOFOLLOW hands back the link itself */
		if ((flags & O_PATH) && fstat(fd, &st) == 0 &&
		    S_ISLNK(st.st_mode)) {
			close(fd);
			return link_error(path, strlen(path));
		}
		return fd;
	}
	if (errno == ENOENT) {
		error_set("no '%s'", path);
		return ERR_NOTFOUND;
	}
	if (errno == ELOOP || errno == EXDEV || errno == ENOTDIR) {
		/* name the link, mount point or file on the way */
		r = walk_open(dirfd, path, flags, mode);
		if (r >= 0) {
			close(r);
			error_set("'%s' goes through a link or mount point",
				  path);
			return ERR_INVALID;
		}
		return r;
	}
	return error_setsys("cannot open '%s'", path);
}

int safefs_open_top(const char *path)
{
	int fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);

	if (fd < 0)
		return error_setsys("cannot open '%s'", path);
	return fd;
}

int safefs_read(struct buf *out, int dirfd, const char *path, size_t max)
{
	struct stat st;
	char chunk[65536];
	int fd, ret = -1;
	ssize_t n;

	buf_reset(out);
	/* O_NONBLOCK: a fifo opens at once, and is then refused */
	fd = safefs_openat(dirfd, path, O_RDONLY | O_NONBLOCK | O_NOCTTY, 0);
	if (fd < 0)
		return fd;
	if (fstat(fd, &st) < 0) {
		error_setsys("cannot stat '%s'", path);
		goto out;
	}
	if (!S_ISREG(st.st_mode)) {
		error_set("'%s' is not a regular file", path);
		ret = ERR_INVALID;
		goto out;
	}
	if ((uint64_t)st.st_size > max)
		goto too_big;
	for (;;) {
		n = read(fd, chunk, sizeof(chunk));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			error_setsys("cannot read '%s'", path);
			goto out;
		}
		if (n == 0)
			break;
		if (out->len + (size_t)n > max)	/* it grew meanwhile */
			goto too_big;
		buf_add(out, chunk, (size_t)n);
	}
	buf_add(out, "", 0);
	ret = 0;
	goto out;
too_big:
	error_set("'%s' is larger than %zu bytes", path, max);
	ret = ERR_TOOBIG;
out:
	if (ret != 0)
		buf_reset(out);
	close(fd);
	return ret;
}

/* ---- walking ---- */

struct names {
	char **v;
	size_t n, alloc;
};

static void names_release(struct names *ns)
{
	size_t i;

	for (i = 0; i < ns->n; i++)
		free(ns->v[i]);
	free(ns->v);
	memset(ns, 0, sizeof(*ns));
}

static int name_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The names in the folder dfd, read through a fd of its own. */
static int list_dir(int dfd, struct names *ns, int sorted, const char *path)
{
	struct dirent *de;
	DIR *d;
	int fd;

	memset(ns, 0, sizeof(*ns));
	fd = openat(dfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return error_setsys("cannot read '%s'", *path ? path : ".");
	d = fdopendir(fd);
	if (!d) {
		close(fd);
		return error_setsys("cannot read '%s'", *path ? path : ".");
	}
	errno = 0;
	while ((de = readdir(d))) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		if (ns->n >= DIR_ENTRIES_MAX) {
			closedir(d);
			names_release(ns);
			error_set("'%s' holds too many entries",
				  *path ? path : ".");
			return ERR_INVALID;
		}
		if (ns->n == ns->alloc) {
			ns->alloc = ns->alloc ? ns->alloc * 2 : 32;
			ns->v = xrealloc(ns->v, ns->alloc * sizeof(*ns->v));
		}
		ns->v[ns->n++] = xstrdup(de->d_name);
	}
	closedir(d);
	if (sorted && ns->n)
		qsort(ns->v, ns->n, sizeof(*ns->v), name_cmp);
	return 0;
}

/* The path of the entry being looked at, relative to the tree, for
 * messages and for walk callbacks. */
struct rel {
	char p[PATH_MAX];
	size_t len;
};

static void rel_init(struct rel *r, const char *path)
{
	r->len = 0;
	r->p[0] = '\0';
	if (strcmp(path, ".")) {
		r->len = strlen(path);
		memcpy(r->p, path, r->len + 1);
	}
}

static int rel_push(struct rel *r, const char *name, size_t *saved)
{
	size_t n = strlen(name), need = r->len + (r->len ? 1 : 0) + n;

	*saved = r->len;
	if (need >= sizeof(r->p)) {
		error_set("path too long in '%.100s'", r->p);
		return ERR_INVALID;
	}
	if (r->len)
		r->p[r->len++] = '/';
	memcpy(r->p + r->len, name, n + 1);
	r->len += n;
	return 0;
}

static void rel_pop(struct rel *r, size_t saved)
{
	r->len = saved;
	r->p[saved] = '\0';
}

/* ---- chown ---- */

struct chown_ctx {
	struct rel rel;
	dev_t dev;
	uid_t uid;
	gid_t gid;
};

static int chown_fd(int fd, struct chown_ctx *c)
{
	if (fchownat(fd, "", c->uid, c->gid, AT_EMPTY_PATH |
		     AT_SYMLINK_NOFOLLOW) < 0)
		return error_setsys("cannot chown '%s'",
				    c->rel.len ? c->rel.p : ".");
	return 0;
}

static int chown_dir(int dfd, struct chown_ctx *c, int depth)
{
	struct names ns;
	size_t i, saved;
	int ret = 0;

	if (list_dir(dfd, &ns, 0, c->rel.p) < 0)
		return -1;
	for (i = 0; i < ns.n && ret == 0; i++) {
		struct stat st;
		int efd, sub;

		ret = rel_push(&c->rel, ns.v[i], &saved);
		if (ret < 0)
			break;
		/* What we hold from here on is one inode, whatever is
		 * renamed over the name meanwhile. */
		efd = openat(dfd, ns.v[i], O_PATH | O_NOFOLLOW | O_CLOEXEC);
		if (efd < 0) {
			if (errno != ENOENT)	/* gone meanwhile: fine */
				ret = error_setsys("cannot open '%s'",
						   c->rel.p);
			rel_pop(&c->rel, saved);
			continue;
		}
		if (fstat(efd, &st) < 0) {
			ret = error_setsys("cannot stat '%s'", c->rel.p);
		} else if (S_ISDIR(st.st_mode)) {
			if (st.st_dev != c->dev) {
				error_set("'%s' is a mount point", c->rel.p);
				ret = ERR_INVALID;
			} else if (depth + 1 > SAFEFS_DEPTH_MAX) {
				error_set("'%s' is nested too deep", c->rel.p);
				ret = ERR_INVALID;
			} else if ((ret = chown_fd(efd, c)) == 0) {
				sub = openat(efd, ".", O_RDONLY | O_DIRECTORY |
					     O_CLOEXEC);
				if (sub < 0) {
					ret = error_setsys("cannot open '%s'",
							   c->rel.p);
				} else {
					ret = chown_dir(sub, c, depth + 1);
					close(sub);
				}
			}
		} else if (S_ISCHR(st.st_mode) || S_ISBLK(st.st_mode)) {
			error_set("'%s' is a device", c->rel.p);
			ret = ERR_INVALID;
		} else if (!S_ISLNK(st.st_mode) && st.st_nlink > 1 &&
			   (st.st_uid != c->uid || st.st_gid != c->gid)) {
			/* one of its names may be outside the tree */
			error_set("'%s' has other hard links", c->rel.p);
			ret = ERR_INVALID;
		} else {
			ret = chown_fd(efd, c);
		}
		close(efd);
		rel_pop(&c->rel, saved);
	}
	names_release(&ns);
	return ret;
}

int safefs_chown_tree(int dirfd, const char *path, uid_t uid, gid_t gid)
{
	struct chown_ctx c;
	struct stat st;
	int fd, ret;

	fd = safefs_openat(dirfd, path, O_RDONLY | O_DIRECTORY, 0);
	if (fd < 0)
		return fd;
	rel_init(&c.rel, path);
	c.uid = uid;
	c.gid = gid;
	if (fstat(fd, &st) < 0) {
		ret = error_setsys("cannot stat '%s'", path);
		goto out;
	}
	c.dev = st.st_dev;
	ret = chown_fd(fd, &c);
	if (ret == 0)
		ret = chown_dir(fd, &c, 0);
out:
	close(fd);
	return ret;
}

/* ---- remove ---- */

struct rm_ctx {
	struct rel rel;
	dev_t dev;
	int top;		/* where too-deep folders are moved */
	unsigned long moved;
};

static int rm_contents(int dfd, struct rm_ctx *c, int depth);

/* Remove one entry of dfd; *progress is set when something went. */
static int rm_entry(int dfd, const char *name, struct rm_ctx *c, int depth,
		    int *progress)
{
	struct stat st;
	int sub, r;

	if (fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return errno == ENOENT ? 0 :
			error_setsys("cannot stat '%s'", c->rel.p);
	if (!S_ISDIR(st.st_mode)) {
		if (unlinkat(dfd, name, 0) < 0 && errno != ENOENT) {
			if (errno == EISDIR)	/* swapped meanwhile */
				return 0;
			return error_setsys("cannot remove '%s'", c->rel.p);
		}
		*progress = 1;
		return 0;
	}
	if (st.st_dev != c->dev) {
		error_set("'%s' is a mount point", c->rel.p);
		return ERR_INVALID;
	}
	if (depth + 1 > SAFEFS_DEPTH_MAX) {
		/* move it up to the top, to be removed from there */
		char tmp[64];

		for (;;) {
			snprintf(tmp, sizeof(tmp), ".safefs-deep-%lu",
				 c->moved++);
			if (renameat(dfd, name, c->top, tmp) == 0)
				break;
			if (errno != EEXIST && errno != ENOTEMPTY)
				return error_setsys("cannot move '%s'",
						    c->rel.p);
		}
		*progress = 1;
		return 0;
	}
	sub = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW |
		     O_CLOEXEC);
	if (sub < 0) {
		if (errno == ENOENT)
			return 0;
		if (errno == ELOOP || errno == ENOTDIR)	/* swapped */
			return 0;	/* the next round sees what it is */
		return error_setsys("cannot open '%s'", c->rel.p);
	}
	r = rm_contents(sub, c, depth + 1);
	close(sub);
	if (r < 0)
		return r;
	if (unlinkat(dfd, name, AT_REMOVEDIR) < 0) {
		/* refilled or swapped meanwhile: the next round */
		if (errno == ENOENT || errno == ENOTEMPTY ||
		    errno == EEXIST || errno == ENOTDIR)
			return 0;
		return error_setsys("cannot remove '%s'", c->rel.p);
	}
	*progress = 1;
	return 0;
}

static int rm_contents(int dfd, struct rm_ctx *c, int depth)
{
	unsigned long rounds, stuck = 0;

	for (rounds = 0; rounds < REMOVE_ROUNDS_MAX; rounds++) {
		struct names ns;
		size_t i, saved;
		int r = 0, progress = 0;

		if (list_dir(dfd, &ns, 0, c->rel.p) < 0)
			return -1;
		if (!ns.n) {
			names_release(&ns);
			return 0;
		}
		for (i = 0; i < ns.n && r == 0; i++) {
			r = rel_push(&c->rel, ns.v[i], &saved);
			if (r < 0)
				break;
			r = rm_entry(dfd, ns.v[i], c, depth, &progress);
			rel_pop(&c->rel, saved);
		}
		names_release(&ns);
		if (r < 0)
			return r;
		/* Someone renaming things around as we go can make a round
		 * find nothing to do; only a long run of those is an error. */
		if (progress)
			stuck = 0;
		else if (++stuck > REMOVE_STUCK_MAX)
			break;
	}
	error_set("cannot empty '%s'", c->rel.len ? c->rel.p : ".");
	return -1;
}

/* Split "a/b/c" into an fd on "a/b" beneath dirfd and "c". */
static int open_parent(int dirfd, const char *path, char *last, size_t len)
{
	const char *slash = strrchr(path, '/');
	char *parent;
	int fd;

	if (!slash) {
		if (strlen(path) >= len)
			return error_set("path too long");
		memcpy(last, path, strlen(path) + 1);
		fd = fcntl(dirfd, F_DUPFD_CLOEXEC, 3);
		return fd < 0 ? error_setsys("dup") : fd;
	}
	if (strlen(slash + 1) >= len)
		return error_set("path too long");
	memcpy(last, slash + 1, strlen(slash + 1) + 1);
	parent = xstrndup(path, (size_t)(slash - path));
	fd = safefs_openat(dirfd, parent, O_PATH | O_DIRECTORY, 0);
	free(parent);
	return fd;
}

int safefs_remove_tree(int dirfd, const char *path)
{
	struct rm_ctx c;
	struct stat st;
	char last[NAME_MAX + 1];
	int pfd = -1, fd = -1, ret, r;

	ret = path_check(path);
	if (ret < 0)
		return ret;
	rel_init(&c.rel, path);
	c.moved = 0;
	if (!strcmp(path, ".")) {
		if (fstat(dirfd, &st) < 0)
			return error_setsys("cannot stat the tree");
		c.dev = st.st_dev;
		c.top = dirfd;
		return rm_contents(dirfd, &c, 0);
	}
	pfd = open_parent(dirfd, path, last, sizeof(last));
	if (pfd < 0)
		return pfd == ERR_NOTFOUND ? 0 : pfd;
	if (fstatat(pfd, last, &st, AT_SYMLINK_NOFOLLOW) < 0) {
		ret = errno == ENOENT ? 0 : error_setsys("cannot stat '%s'",
							 path);
		goto out;
	}
	if (!S_ISDIR(st.st_mode)) {
		ret = 0;
		if (unlinkat(pfd, last, 0) < 0 && errno != ENOENT)
			ret = error_setsys("cannot remove '%s'", path);
		goto out;
	}
	fd = openat(pfd, last, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0) {
		ret = error_setsys("cannot open '%s'", path);
		goto out;
	}
	if (fstat(fd, &st) < 0) {
		ret = error_setsys("cannot stat '%s'", path);
		goto out;
	}
	c.dev = st.st_dev;
	c.top = fd;
	for (r = 0; r < 8; r++) {
		ret = rm_contents(fd, &c, 0);
		if (ret < 0)
			goto out;
		if (unlinkat(pfd, last, AT_REMOVEDIR) == 0 || errno == ENOENT)
			goto out;
		if (errno != ENOTEMPTY && errno != EEXIST) {
			ret = error_setsys("cannot remove '%s'", path);
			goto out;
		}
	}
	ret = error_set("cannot empty '%s'", path);
out:
	if (fd >= 0)
		close(fd);
	if (pfd >= 0)
		close(pfd);
	return ret;
}

/* ---- copy ---- */

struct copy_ctx {
	struct rel rel;
	dev_t dev;
	const struct safefs_limits *lim;
	uint64_t files, bytes;
};

static int copy_file_fd(int in, int out, struct copy_ctx *c)
{
	char chunk[65536];
	ssize_t n;

	for (;;) {
		n = read(in, chunk, sizeof(chunk));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return error_setsys("cannot read '%s'", c->rel.p);
		if (n == 0)
			return 0;
		c->bytes += (uint64_t)n;
		if (c->lim && c->lim->max_bytes && c->bytes > c->lim->max_bytes) {
			error_set("more than %llu bytes in '%s'",
				  (unsigned long long)c->lim->max_bytes,
				  c->rel.p);
			return ERR_INVALID;
		}
		if (write_all(out, chunk, (size_t)n) < 0)
			return error_setsys("cannot write a copy of '%s'",
					    c->rel.p);
	}
}

static int copy_entry(int sfd, int dfd, const char *name, struct copy_ctx *c,
		      int depth);

static int copy_dir(int sfd, int dfd, struct copy_ctx *c, int depth)
{
	struct names ns;
	size_t i, saved;
	int ret = 0;

	if (list_dir(sfd, &ns, 1, c->rel.p) < 0)
		return -1;
	for (i = 0; i < ns.n && ret == 0; i++) {
		ret = rel_push(&c->rel, ns.v[i], &saved);
		if (ret < 0)
			break;
		ret = copy_entry(sfd, dfd, ns.v[i], c, depth);
		rel_pop(&c->rel, saved);
	}
	names_release(&ns);
	return ret;
}

static int copy_entry(int sfd, int dfd, const char *name, struct copy_ctx *c,
		      int depth)
{
	struct stat st, st2;
	struct timespec times[2];
	int in = -1, out = -1, ret = -1;

	if (fstatat(sfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
		error_setsys("cannot stat '%s'", c->rel.p);
		goto out;
	}
	if (S_ISLNK(st.st_mode)) {
		ret = link_error(c->rel.p, c->rel.len);
		goto out;
	}
	if (!S_ISDIR(st.st_mode) && !S_ISREG(st.st_mode)) {
		error_set("'%s' is not a regular file or folder", c->rel.p);
		ret = ERR_INVALID;
		goto out;
	}
	if (c->lim && c->lim->max_files && ++c->files > c->lim->max_files) {
		error_set("more than %llu files in the copy",
			  (unsigned long long)c->lim->max_files);
		ret = ERR_INVALID;
		goto out;
	}
	if (S_ISDIR(st.st_mode)) {
		if (st.st_dev != c->dev) {
			error_set("'%s' is a mount point", c->rel.p);
			ret = ERR_INVALID;
			goto out;
		}
		if (depth + 1 > SAFEFS_DEPTH_MAX) {
			error_set("'%s' is nested too deep", c->rel.p);
			ret = ERR_INVALID;
			goto out;
		}
		in = openat(sfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW |
			    O_CLOEXEC);
	} else {
		in = openat(sfd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK |
			    O_NOCTTY | O_CLOEXEC);
	}
	if (in < 0) {
		/* a link renamed over it since the stat */
		if (errno == ELOOP || errno == ENOTDIR)
			ret = link_error(c->rel.p, c->rel.len);
		else
			error_setsys("cannot open '%s'", c->rel.p);
		goto out;
	}
	if (fstat(in, &st2) < 0) {
		error_setsys("cannot stat '%s'", c->rel.p);
		goto out;
	}
	if ((st2.st_mode & S_IFMT) != (st.st_mode & S_IFMT) ||
	    st2.st_dev != c->dev) {
		error_set("'%s' changed during the copy", c->rel.p);
		ret = ERR_INVALID;
		goto out;
	}
	if (S_ISDIR(st2.st_mode)) {
		if (mkdirat(dfd, name, 0755) < 0) {
			error_setsys("cannot make a copy of '%s'", c->rel.p);
			goto out;
		}
		out = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW |
			     O_CLOEXEC);
		if (out < 0 || fchmod(out, 0755) < 0) {
			error_setsys("cannot make a copy of '%s'", c->rel.p);
			goto out;
		}
		ret = copy_dir(in, out, c, depth + 1);
		goto out;
	}
	out = openat(dfd, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW |
		     O_CLOEXEC, 0644);
	if (out < 0 || fchmod(out, 0644) < 0) {
		error_setsys("cannot make a copy of '%s'", c->rel.p);
		goto out;
	}
	ret = copy_file_fd(in, out, c);
	if (ret < 0)
		goto out;
	/* same Last-Modified (and ETag) for the same file across deploys */
	times[0] = st2.st_atim;
	times[1] = st2.st_mtim;
	if (futimens(out, times) < 0) {
		ret = error_setsys("cannot set the time of '%s'", c->rel.p);
		goto out;
	}
	ret = 0;
out:
	if (in >= 0)
		close(in);
	if (out >= 0 && close(out) < 0 && ret == 0)
		ret = error_setsys("cannot write a copy of '%s'", c->rel.p);
	return ret;
}

int safefs_copy_tree(int srcdir, const char *src, int dstdir, const char *dst,
		     const struct safefs_limits *lim)
{
	struct copy_ctx c;
	struct stat st;
	char last[NAME_MAX + 1];
	int sfd = -1, pfd = -1, dfd = -1, ret = -1, made = 0;

	memset(&c, 0, sizeof(c));
	c.lim = lim;
	ret = path_check(dst);
	if (ret < 0)
		return ret;
	if (!strcmp(dst, ".")) {
		error_set("copy needs a new folder");
		return ERR_INVALID;
	}
	sfd = safefs_openat(srcdir, src, O_RDONLY | O_DIRECTORY, 0);
	if (sfd < 0)
		return sfd;
	rel_init(&c.rel, src);
	if (fstat(sfd, &st) < 0) {
		ret = error_setsys("cannot stat '%s'", src);
		goto out;
	}
	c.dev = st.st_dev;
	pfd = open_parent(dstdir, dst, last, sizeof(last));
	if (pfd < 0) {
		ret = pfd;
		goto out;
	}
	if (mkdirat(pfd, last, 0755) < 0) {
		ret = error_setsys("cannot make '%s'", dst);
		goto out;
	}
	made = 1;
	dfd = openat(pfd, last, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (dfd < 0 || fchmod(dfd, 0755) < 0) {
		ret = error_setsys("cannot open '%s'", dst);
		goto out;
	}
	ret = copy_dir(sfd, dfd, &c, 0);
out:
	if (dfd >= 0)
		close(dfd);
	if (ret < 0 && made) {
		char *msg = xstrdup(error_last());

		safefs_remove_tree(pfd, last);
		error_set("%s", msg);
		free(msg);
	}
	if (pfd >= 0)
		close(pfd);
	if (sfd >= 0)
		close(sfd);
	return ret;
}

/* ---- walk ---- */

struct walk_ctx {
	struct rel rel;
	dev_t dev;
	int (*fn)(const struct safefs_entry *e, void *arg);
	void *arg;
};

static int walk_dir(int dfd, struct walk_ctx *c, int depth)
{
	struct names ns;
	size_t i, saved;
	int ret = 0;

	if (list_dir(dfd, &ns, 1, c->rel.p) < 0)
		return -1;
	for (i = 0; i < ns.n && ret == 0; i++) {
		struct safefs_entry e;
		char target[PATH_MAX];
		struct stat st2;
		int efd, sub;
		ssize_t n;

		ret = rel_push(&c->rel, ns.v[i], &saved);
		if (ret < 0)
			break;
		memset(&e, 0, sizeof(e));
		e.path = c->rel.p;
		e.fd = -1;
		efd = openat(dfd, ns.v[i], O_PATH | O_NOFOLLOW | O_CLOEXEC);
		if (efd < 0) {
			if (errno != ENOENT)
				ret = error_setsys("cannot open '%s'", c->rel.p);
			rel_pop(&c->rel, saved);
			continue;
		}
		if (fstat(efd, &e.st) < 0) {
			ret = error_setsys("cannot stat '%s'", c->rel.p);
			goto next;
		}
		if (S_ISLNK(e.st.st_mode)) {
			n = readlinkat(efd, "", target, sizeof(target) - 1);
			if (n < 0) {
				ret = error_setsys("cannot read link '%s'",
						   c->rel.p);
				goto next;
			}
			target[n] = '\0';
			e.link = target;
			ret = c->fn(&e, c->arg);
		} else if (S_ISREG(e.st.st_mode)) {
			/* the inode we stat'ed, or a refusal */
			e.fd = openat(dfd, ns.v[i], O_RDONLY | O_NOFOLLOW |
				      O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
			if (e.fd < 0 || fstat(e.fd, &st2) < 0 ||
			    st2.st_ino != e.st.st_ino ||
			    st2.st_dev != e.st.st_dev) {
				error_set("'%s' changed during the walk",
					  c->rel.p);
				ret = ERR_INVALID;
				goto next;
			}
			ret = c->fn(&e, c->arg);
		} else if (S_ISDIR(e.st.st_mode)) {
			if (e.st.st_dev != c->dev) {
				error_set("'%s' is a mount point", c->rel.p);
				ret = ERR_INVALID;
				goto next;
			}
			if (depth + 1 > SAFEFS_DEPTH_MAX) {
				error_set("'%s' is nested too deep", c->rel.p);
				ret = ERR_INVALID;
				goto next;
			}
			ret = c->fn(&e, c->arg);
			if (ret < 0)
				goto next;
			sub = openat(efd, ".", O_RDONLY | O_DIRECTORY |
				     O_CLOEXEC);
			if (sub < 0) {
				ret = error_setsys("cannot open '%s'",
						   c->rel.p);
				goto next;
			}
			ret = walk_dir(sub, c, depth + 1);
			close(sub);
		} else {
			ret = c->fn(&e, c->arg);
		}
next:
		if (e.fd >= 0)
			close(e.fd);
		close(efd);
		rel_pop(&c->rel, saved);
	}
	names_release(&ns);
	return ret;
}

int safefs_walk(int dirfd, const char *path,
		int (*fn)(const struct safefs_entry *e, void *arg), void *arg)
{
	struct walk_ctx c;
	struct stat st;
	int fd, ret;

	fd = safefs_openat(dirfd, path, O_RDONLY | O_DIRECTORY, 0);
	if (fd < 0)
		return fd;
	rel_init(&c.rel, ".");
	c.fn = fn;
	c.arg = arg;
	if (fstat(fd, &st) < 0) {
		ret = error_setsys("cannot stat '%s'", path);
	} else {
		c.dev = st.st_dev;
		ret = walk_dir(fd, &c, 0);
	}
	close(fd);
	return ret;
}

int safefs_read_in(struct buf *out, const char *top, const char *path,
		   size_t max)
{
	int fd = safefs_open_top(top), r;

	if (fd < 0)
		return -1;
	r = safefs_read(out, fd, path, max);
	close(fd);
	return r;
}
