/*
 * safefs: root's access to trees that a pusher or an app controls (a
 * checkout, a build folder, a cache, an unpacked release), by descriptors,
 * never by following a link.
 *
 * Every path given here is relative to a directory fd the caller holds
 * ("Procfile", "public/css/site.css"): not absolute, no "..", no empty
 * components.  Each is resolved beneath that fd with openat2(2) and
 * RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS |
 * RESOLVE_NO_XDEV; where openat2 is missing (before Linux 5.6) the same
 * rules are kept by opening one component at a time with O_NOFOLLOW.  A
 * symbolic link anywhere on the way is refused, as is a mount point; the
 * trees walked here never follow one either, so a link swapped in while a
 * walk runs (renameat2 RENAME_EXCHANGE) is met as a link and not entered.
 *
 * Errors are one line that names the path relative to the tree, never an
 * absolute path of the server: "'Procfile' is a symbolic link".  Refusals
 * of what the tree holds are ERR_INVALID; a missing path is ERR_NOTFOUND;
 * anything else is -1.  All fds made here are CLOEXEC; the caller keeps
 * its own.  Everything blocks (plain file system calls).
 */
#ifndef BERTH_SAFEFS_H
#define BERTH_SAFEFS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/types.h>

#include "util.h"

/* Deepest folder nesting walked (chown, copy, walk); removal has none. */
#define SAFEFS_DEPTH_MAX 256

/*
 * Open the top of a tree by a path that is berth's own (the state folder
 * and below are root's), refusing a link as its last component.  Returns
 * an O_DIRECTORY fd, or -1.
 */
int safefs_open_top(const char *path);

/*
 * Open 'path' beneath dirfd with open(2) 'flags' (O_CLOEXEC and O_NOFOLLOW
 * are added; O_CREAT takes 'mode').  Returns the fd, or ERR_INVALID for a
 * link, an escape or a mount point on the way, ERR_NOTFOUND, or -1.
 * "." is dirfd itself (a new fd).
 */
int safefs_openat(int dirfd, const char *path, int flags, mode_t mode);

/*
 * Read the regular file 'path' beneath dirfd into out (reset first,
 * NUL-terminated), at most 'max' bytes: a larger file is ERR_TOOBIG, a
 * fifo, a device or a folder ERR_INVALID; out is left empty.  Never blocks on a
 * fifo (it is not read).
 */
int safefs_read(struct buf *out, int dirfd, const char *path, size_t max);
/* The same beneath the folder 'top' (berth's own path, opened with
 * safefs_open_top()): safefs_read_in(&b, build_dir, "Procfile", max). */
int safefs_read_in(struct buf *out, const char *top, const char *path,
		   size_t max);

/*
 * Give the tree at 'path' beneath dirfd (path "." for dirfd itself) to
 * uid:gid: every folder, file, fifo and socket, and links themselves
 * (their targets never).  Refused, with nothing more changed past that
 * point: a device node, a regular file with other hard links that is not
 * already uid:gid's, a mount point, nesting past SAFEFS_DEPTH_MAX.  The
 * kernel clears set-user-ID and set-group-ID bits on the way.
 */
int safefs_chown_tree(int dirfd, const char *path, uid_t uid, gid_t gid);

/*
 * Remove the tree at 'path' beneath dirfd (links are removed, never
 * followed), however deep: folders deeper than SAFEFS_DEPTH_MAX are moved
 * up to the tree's top and removed from there.  A missing path is fine.
 * A mount point inside is refused (and left, with what is around it).
 * Removing "." empties dirfd's folder and leaves the folder.
 */
int safefs_remove_tree(int dirfd, const char *path);

struct safefs_limits {
	uint64_t max_files;	/* 0: no limit */
	uint64_t max_bytes;	/* 0: no limit */
};

/*
 * Copy the tree 'src' beneath srcdir into a new folder 'dst' beneath
 * dstdir (which must not exist; its parent must), as the caller's user
 * (root), folders 0755 and files 0644: a copy the app cannot change, for
 * nginx to serve.  A link, a fifo, a socket or a device anywhere in src
 * refuses the copy (ERR_INVALID naming it), as does passing 'lim', and
 * then nothing is left at dst.
 */
int safefs_copy_tree(int srcdir, const char *src, int dstdir, const char *dst,
		     const struct safefs_limits *lim);

/* One entry of a walk, valid only during the callback. */
struct safefs_entry {
	const char *path;	/* relative to the walk's top, "a/b" */
	struct stat st;		/* lstat of the entry */
	int fd;			/* regular files: open O_RDONLY; else -1 */
	const char *link;	/* links: the target text (never followed) */
};

/*
 * Walk the tree at 'path' beneath dirfd depth first, names in byte order
 * in each folder, a folder before what it holds; the top itself is not
 * reported.  For a packer: each regular file comes with an fd that is
 * exactly the inode reported, so a swap during the walk cannot put
 * another file in.  The callback returns 0 to go on, or a negative value
 * that stops the walk and is returned.  Mount points, and nesting past
 * SAFEFS_DEPTH_MAX, are ERR_INVALID.
 */
int safefs_walk(int dirfd, const char *path,
		int (*fn)(const struct safefs_entry *e, void *arg), void *arg);

/* For tests: 0 makes every call use the one-component-at-a-time walk even
 * where openat2 exists; 1 (the default) uses openat2 where the kernel
 * has it.  Returns the previous setting. */
int safefs_set_openat2(int on);

#endif
