/*
 * oidset: a set of git object ids, each with an int of the caller's (a
 * depth, a flag word).  Open addressing, grown at half full; the caller
 * owns the struct, oidset_release() frees what it holds.  For the git
 * services' walks over commits and trees (receive.c, upload.c).
 */
#ifndef BERTH_OIDSET_H
#define BERTH_OIDSET_H

#include <stddef.h>

#include <git2.h>

struct oidset_slot {
	git_oid id;
	int value;
	int used;
};

struct oidset {
	struct oidset_slot *slots;
	size_t n, cap;
};

#define OIDSET_INIT { NULL, 0, 0 }

/*
 * Add id.  Returns 1 if it was new (its value 0), 0 if it was there.
 * With value not NULL, *value points at the id's int, valid until the
 * next insert.
 */
int oidset_insert(struct oidset *s, const git_oid *id, int **value);

/* 1 if id is in the set. */
int oidset_contains(const struct oidset *s, const git_oid *id);

/* The id's int, or NULL if id is not in the set (valid until an insert). */
int *oidset_value(const struct oidset *s, const git_oid *id);

/* Free the table; the set is empty after and may be used again. */
void oidset_release(struct oidset *s);

/* A growable array of ids, the walks' stacks and lists. */
struct oidvec {
	git_oid *v;
	size_t n, alloc;
};

#define OIDVEC_INIT { NULL, 0, 0 }

void oidvec_push(struct oidvec *v, const git_oid *id);
void oidvec_release(struct oidvec *v);

#endif
