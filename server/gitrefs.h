/*
 * gitrefs: the ref advertisement both git services open with
 * (gitprotocol-pack, "Reference Discovery"): listing a repository's refs
 * and writing them as pkt-lines.  For receive.c and upload.c, which add
 * what differs between them (upload-pack's HEAD and peeled tags, each
 * one's capabilities).
 */
#ifndef BERTH_GITREFS_H
#define BERTH_GITREFS_H

#include <stddef.h>

#include <git2.h>

#include "util.h"

struct gitrefs_ref {
	char *name;		/* full name, "refs/heads/main" */
	git_oid id;		/* what it resolves to (not peeled) */
};

struct gitrefs {
	struct gitrefs_ref *v;
	size_t n, alloc;
};

void gitrefs_init(struct gitrefs *refs);

/*
 * Append to refs (after gitrefs_init()) every ref of repo under "refs/"
 * that resolves to an object id, with that id, then sort all of refs by
 * name (strcmp).  Refs that do not resolve are skipped, as git skips
 * broken refs.  0, or -1 with "cannot list refs: ..." (error_last());
 * either way the caller releases refs.
 */
int gitrefs_list(struct gitrefs *refs, git_repository *repo);

/* Free the names and the array; refs is empty (initialised) after. */
void gitrefs_release(struct gitrefs *refs);

/*
 * Append one advertisement packet to out: "ID NAME\n", or on the first
 * line (caps not NULL) "ID NAME\0CAPS\n".  id NULL stands for the zero
 * id (the "capabilities^{}" line of a repository without refs).
 * 0 or -1 (error_last()).
 */
int gitrefs_adv_line(struct buf *out, const git_oid *id, const char *name,
		     const char *caps);

#endif
