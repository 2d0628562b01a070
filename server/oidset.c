/* oidset: see oidset.h. */
#include "oidset.h"

#include <stdlib.h>
#include <string.h>

#include "util.h"
#include "banned.h"

static size_t slot_of(const struct oidset *s, const git_oid *id)
{
	size_t h;

	/* object ids are hashes already: their first bytes spread well */
	memcpy(&h, id->id, sizeof(h));
	return h & (s->cap - 1);
}

static void grow(struct oidset *s)
{
	struct oidset big;
	size_t i;

	big.cap = s->cap ? s->cap * 2 : 1024;
	big.n = 0;
	big.slots = xcalloc(big.cap, sizeof(*big.slots));
	for (i = 0; i < s->cap; i++) {
		int *v;

		if (!s->slots[i].used)
			continue;
		oidset_insert(&big, &s->slots[i].id, &v);
		*v = s->slots[i].value;
	}
	free(s->slots);
	*s = big;
}

int oidset_insert(struct oidset *s, const git_oid *id, int **value)
{
	size_t i;

	if (2 * (s->n + 1) > s->cap)
		grow(s);
	for (i = slot_of(s, id); s->slots[i].used; i = (i + 1) & (s->cap - 1))
		if (!git_oid_cmp(&s->slots[i].id, id)) {
			if (value)
				*value = &s->slots[i].value;
			return 0;
		}
	s->slots[i].used = 1;
	s->slots[i].value = 0;
	git_oid_cpy(&s->slots[i].id, id);
	s->n++;
	if (value)
		*value = &s->slots[i].value;
	return 1;
}

int *oidset_value(const struct oidset *s, const git_oid *id)
{
	size_t i;

	if (!s->cap)
		return NULL;
	for (i = slot_of(s, id); s->slots[i].used; i = (i + 1) & (s->cap - 1))
		if (!git_oid_cmp(&s->slots[i].id, id))
			return &s->slots[i].value;
	return NULL;
}

int oidset_contains(const struct oidset *s, const git_oid *id)
{
	return oidset_value(s, id) != NULL;
}

void oidset_release(struct oidset *s)
{
	free(s->slots);
	s->slots = NULL;
	s->n = 0;
	s->cap = 0;
}

void oidvec_push(struct oidvec *v, const git_oid *id)
{
	if (v->n == v->alloc) {
		v->alloc = v->alloc ? v->alloc * 2 : 64;
		v->v = xrealloc(v->v, v->alloc * sizeof(*v->v));
	}
	git_oid_cpy(&v->v[v->n++], id);
}

void oidvec_release(struct oidvec *v)
{
	free(v->v);
	v->v = NULL;
	v->n = 0;
	v->alloc = 0;
}
