/* gitrefs: see gitrefs.h. */
#include "gitrefs.h"

#include <stdlib.h>
#include <string.h>

#include "gitsvc.h"
#include "pktline.h"
#include "banned.h"

void gitrefs_init(struct gitrefs *refs)
{
	refs->v = NULL;
	refs->n = 0;
	refs->alloc = 0;
}

static int name_cmp(const void *a, const void *b)
{
	const struct gitrefs_ref *x = a, *y = b;

	return strcmp(x->name, y->name);
}

int gitrefs_list(struct gitrefs *refs, git_repository *repo)
{
	git_reference_iterator *it = NULL;
	git_reference *ref;
	int ret = -1, err;

	if (git_reference_iterator_new(&it, repo) < 0) {
		gitsvc_lg2_error("cannot list refs");
		goto out;
	}
	while ((err = git_reference_next(&ref, it)) == 0) {
		git_reference *res = NULL;
		const char *name = git_reference_name(ref);

		if (!strncmp(name, "refs/", 5) &&
		    git_reference_resolve(&res, ref) == 0) {
			if (refs->n == refs->alloc) {
				refs->alloc = refs->alloc ? refs->alloc * 2 : 16;
				refs->v = xrealloc(refs->v, refs->alloc *
						   sizeof(*refs->v));
			}
			refs->v[refs->n].name = xstrdup(name);
			git_oid_cpy(&refs->v[refs->n].id,
				    git_reference_target(res));
			refs->n++;
		}
		git_reference_free(res);
		git_reference_free(ref);
	}
	if (err != GIT_ITEROVER) {
		gitsvc_lg2_error("cannot list refs");
		goto out;
	}
	if (refs->n > 1)
		qsort(refs->v, refs->n, sizeof(*refs->v), name_cmp);
	ret = 0;
out:
	git_reference_iterator_free(it);
	return ret;
}

void gitrefs_release(struct gitrefs *refs)
{
	size_t i;

	for (i = 0; i < refs->n; i++)
		free(refs->v[i].name);
	free(refs->v);
	gitrefs_init(refs);
}

int gitrefs_adv_line(struct buf *out, const git_oid *id, const char *name,
		     const char *caps)
{
	char hex[GIT_OID_HEXSZ + 1];

	if (id) {
		git_oid_tostr(hex, sizeof(hex), id);
	} else {
		memset(hex, '0', GIT_OID_HEXSZ);
		hex[GIT_OID_HEXSZ] = '\0';
	}
	if (caps)
		return pkt_buf_addf(out, "%s %s%c%s\n", hex, name, '\0', caps);
	return pkt_buf_addf(out, "%s %s\n", hex, name);
}
