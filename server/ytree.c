/* ytree: see ytree.h.  Built on libyaml's event parser rather than its
 * document loader so that we control aliases (copied under a budget) and
 * keep the start mark of every node. */
#include "ytree.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <yaml.h>

#include "util.h"
#include "banned.h"

/* More pairs than this in one mapping is refused: keeps the duplicate-key
 * check (quadratic) cheap on hostile input. */
#define YTREE_MAX_PAIRS 4096

struct anchor {
	char *name;
	struct ynode *node;
};

struct builder {
	const char *fname;
	struct ynode *root;
	struct ynode *stack[YTREE_MAX_DEPTH + 1];
	int depth;
	size_t nnodes;
	struct anchor *anchors;
	size_t nanchors;
	struct ynode **dead;	/* merge sources: anchors may point into them */
	size_t ndead;
	int done;		/* the first document has ended */
};

static struct ynode *node_new(struct builder *b, enum ynode_kind kind,
			      const yaml_mark_t *mark)
{
	struct ynode *n = xcalloc(1, sizeof(*n));

	n->kind = kind;
	n->line = (int)mark->line + 1;
	n->col = (int)mark->column + 1;
	b->nnodes++;
	return n;
}

void ynode_free(struct ynode *n)
{
	size_t i;

	if (!n)
		return;
	for (i = 0; i < n->nkids; i++)
		ynode_free(n->kids[i]);
	free(n->kids);
	free(n->value);
	free(n);
}

static void kid_add(struct ynode *parent, struct ynode *kid)
{
	/* grow by doubling: nkids is a power of two exactly when full */
	if (!parent->nkids || !(parent->nkids & (parent->nkids - 1)))
		parent->kids = xrealloc(parent->kids, 2 * (parent->nkids ? parent->nkids : 1) *
					sizeof(*parent->kids));
	parent->kids[parent->nkids++] = kid;
}

static int at_error(const struct builder *b, const struct ynode *n,
		    const char *msg)
{
	return error_set("%s:%d:%d: %s", b->fname, n->line, n->col, msg);
}

/* Hand a finished (or just opened) node to its parent. Takes n. */
static int attach(struct builder *b, struct ynode *n)
{
	struct ynode *parent;
	size_t i;

	if (b->nnodes > YTREE_MAX_NODES) {
		at_error(b, n, "document too large");
		ynode_free(n);
		return -1;
	}
	if (!b->depth) {
		b->root = n;
		return 0;
	}
	parent = b->stack[b->depth - 1];
	if (parent->kind == YNODE_MAP && !(parent->nkids % 2)) {
		if (n->kind != YNODE_SCALAR) {
			at_error(b, n, "mapping keys must be strings");
			ynode_free(n);
			return -1;
		}
		if (parent->nkids / 2 >= YTREE_MAX_PAIRS) {
			at_error(b, n, "too many keys in one mapping");
			ynode_free(n);
			return -1;
		}
		for (i = 0; i < parent->nkids; i += 2) {
			const struct ynode *k = parent->kids[i];

			if (k->len == n->len && !memcmp(k->value, n->value, n->len)) {
				error_set("%s:%d:%d: duplicate key '%s'", b->fname,
					  n->line, n->col, n->value);
				ynode_free(n);
				return -1;
			}
		}
	}
	kid_add(parent, n);
	return 0;
}

static void anchor_add(struct builder *b, const yaml_char_t *name,
		       struct ynode *n)
{
	if (!name)
		return;
	b->anchors = xrealloc(b->anchors, (b->nanchors + 1) * sizeof(*b->anchors));
	b->anchors[b->nanchors].name = xstrdup((const char *)name);
	b->anchors[b->nanchors].node = n;
	b->nanchors++;
}

static int copy_tree(struct builder *b, struct ynode **out,
		     const struct ynode *src, int depth)
{
	struct ynode *n;
	size_t i;

	*out = NULL;
	if (depth > YTREE_MAX_DEPTH)
		return error_set("too deeply nested");
	if (++b->nnodes > YTREE_MAX_NODES)
		return error_set("document too large");
	n = xcalloc(1, sizeof(*n));
	*n = *src;
	n->kids = NULL;
	n->nkids = 0;
	if (src->value) {
		n->value = xmalloc(src->len + 1);
		memcpy(n->value, src->value, src->len + 1);
	}
	for (i = 0; i < src->nkids; i++) {
		struct ynode *k;

		if (copy_tree(b, &k, src->kids[i], depth + 1) < 0) {
			ynode_free(n);
			return -1;
		}
		kid_add(n, k);
	}
	*out = n;
	return 0;
}

static int on_alias(struct builder *b, const yaml_event_t *ev)
{
	const char *name = (const char *)ev->data.alias.anchor;
	struct ynode *src = NULL, *copy;
	size_t i;
	int d;

	/* the latest anchor of that name wins, as in YAML */
	for (i = b->nanchors; i-- > 0;) {
		if (!strcmp(b->anchors[i].name, name)) {
			src = b->anchors[i].node;
			break;
		}
	}
	if (!src)
		return error_set("%s:%zu:%zu: unknown alias '%s'", b->fname,
				 ev->start_mark.line + 1,
				 ev->start_mark.column + 1, name);
	for (d = 0; d < b->depth; d++)
		if (b->stack[d] == src)
			return error_set("%s:%zu:%zu: alias '%s' refers to itself",
					 b->fname, ev->start_mark.line + 1,
					 ev->start_mark.column + 1, name);
	if (copy_tree(b, &copy, src, b->depth) < 0) {
		char why[128];

		snprintf(why, sizeof(why), "%s", error_last());
		return error_set("%s:%zu:%zu: %s", b->fname,
				 ev->start_mark.line + 1,
				 ev->start_mark.column + 1, why);
	}
	/* a copy points at the alias, not at the anchor */
	copy->line = (int)ev->start_mark.line + 1;
	copy->col = (int)ev->start_mark.column + 1;
	return attach(b, copy);
}

static int has_key(const struct ynode *map, const struct ynode *key)
{
	size_t i;

	for (i = 0; i < map->nkids; i += 2)
		if (map->kids[i]->len == key->len &&
		    !memcmp(map->kids[i]->value, key->value, key->len))
			return 1;
	return 0;
}

static int is_merge_key(const struct ynode *k)
{
	return k->plain && k->len == 2 && !memcmp(k->value, "<<", 2);
}

/*
 * YAML's merge key: "<<: *base" (or a list of them) adds the pairs of
 * those mappings whose keys the mapping does not have itself; earlier
 * sources win over later ones.  Merged nodes keep their own positions.
 */
static int merge_keys(struct builder *b, struct ynode *map)
{
	struct ynode **old = map->kids, *src;
	size_t n = map->nkids, i, j, k, nsrc;
	int ret = 0;

	for (i = 0; i < n; i += 2)
		if (is_merge_key(old[i]))
			break;
	if (i == n)
		return 0;
	/* keep the explicit pairs, then add from each source */
	map->kids = NULL;
	map->nkids = 0;
	for (i = 0; i < n; i += 2) {
		if (is_merge_key(old[i]))
			continue;
		kid_add(map, old[i]);
		kid_add(map, old[i + 1]);
		old[i] = old[i + 1] = NULL;
	}
	for (i = 0; i < n && !ret; i += 2) {
		const struct ynode *v;

		if (!old[i])
			continue;
		v = old[i + 1];
		nsrc = v->kind == YNODE_SEQ ? v->nkids : 1;
		for (j = 0; j < nsrc && !ret; j++) {
			src = v->kind == YNODE_SEQ ? v->kids[j] : old[i + 1];
			if (src->kind != YNODE_MAP) {
				ret = at_error(b, src, "'<<' needs a mapping or a list of mappings");
				break;
			}
			for (k = 0; k + 1 < src->nkids; k += 2) {
				struct ynode *ck = NULL, *cv = NULL;

				if (has_key(map, src->kids[k]))
					continue;
				if (map->nkids / 2 >= YTREE_MAX_PAIRS) {
					ret = at_error(b, src, "too many keys in one mapping");
					break;
				}
				if (copy_tree(b, &ck, src->kids[k], b->depth + 1) < 0 ||
				    copy_tree(b, &cv, src->kids[k + 1], b->depth + 1) < 0) {
					char why[128];

					if (ck)
						ynode_free(ck);
					snprintf(why, sizeof(why), "%s", error_last());
					ret = at_error(b, src, why);
					break;
				}
				kid_add(map, ck);
				kid_add(map, cv);
			}
		}
	}
	/* freed with the builder: an anchor may live inside them */
	for (i = 0; i < n; i++) {
		if (!old[i])
			continue;
		b->dead = xrealloc(b->dead, (b->ndead + 1) * sizeof(*b->dead));
		b->dead[b->ndead++] = old[i];
	}
	free(old);
	return ret;
}

static int on_event(struct builder *b, const yaml_event_t *ev)
{
	struct ynode *n;

	switch (ev->type) {
	case YAML_STREAM_START_EVENT:
	case YAML_STREAM_END_EVENT:
	case YAML_NO_EVENT:
		return 0;
	case YAML_DOCUMENT_START_EVENT:
		if (b->done)
			return error_set("%s:%zu:%zu: only one YAML document is allowed",
					 b->fname, ev->start_mark.line + 1,
					 ev->start_mark.column + 1);
		return 0;
	case YAML_DOCUMENT_END_EVENT:
		b->done = 1;
		return 0;
	case YAML_ALIAS_EVENT:
		return on_alias(b, ev);
	case YAML_SCALAR_EVENT:
		n = node_new(b, YNODE_SCALAR, &ev->start_mark);
		n->len = ev->data.scalar.length;
		n->value = xmalloc(n->len + 1);
		memcpy(n->value, ev->data.scalar.value, n->len);
		n->value[n->len] = '\0';
		n->plain = ev->data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
		anchor_add(b, ev->data.scalar.anchor, n);
		return attach(b, n);
	case YAML_SEQUENCE_START_EVENT:
	case YAML_MAPPING_START_EVENT:
		n = node_new(b, ev->type == YAML_SEQUENCE_START_EVENT ?
			     YNODE_SEQ : YNODE_MAP, &ev->start_mark);
		if (b->depth >= YTREE_MAX_DEPTH) {
			at_error(b, n, "too deeply nested");
			ynode_free(n);
			return -1;
		}
		anchor_add(b, ev->type == YAML_SEQUENCE_START_EVENT ?
			   ev->data.sequence_start.anchor :
			   ev->data.mapping_start.anchor, n);
		if (attach(b, n) < 0)
			return -1;
		b->stack[b->depth++] = n;
		return 0;
	case YAML_SEQUENCE_END_EVENT:
		if (b->depth > 0)
			b->depth--;
		return 0;
	case YAML_MAPPING_END_EVENT:
		if (b->depth > 0) {
			b->depth--;
			return merge_keys(b, b->stack[b->depth]);
		}
		return 0;
	}
	return 0;
}

static int parser_error(const yaml_parser_t *p, const char *fname)
{
	const yaml_mark_t *m = &p->problem_mark;
	const char *problem = p->problem ? p->problem : "invalid YAML";

	if (p->error == YAML_READER_ERROR)
		m = &p->mark;
	if (p->error == YAML_MEMORY_ERROR)
		return error_set("%s: out of memory parsing YAML", fname);
	if (p->context)
		return error_set("%s:%zu:%zu: %s %s", fname, m->line + 1,
				 m->column + 1, problem, p->context);
	return error_set("%s:%zu:%zu: %s", fname, m->line + 1, m->column + 1,
			 problem);
}

int ytree_parse(struct ynode **out, const char *buf, size_t len,
		const char *fname)
{
	yaml_parser_t parser;
	yaml_event_t ev;
	struct builder b;
	int ret = -1, more = 1;
	size_t i;

	*out = NULL;
	memset(&b, 0, sizeof(b));
	b.fname = fname;
	if (!yaml_parser_initialize(&parser))
		return error_set("%s: cannot initialise the YAML parser", fname);
	yaml_parser_set_input_string(&parser, (const unsigned char *)buf, len);
	while (more) {
		if (!yaml_parser_parse(&parser, &ev)) {
			parser_error(&parser, fname);
			goto out;
		}
		more = ev.type != YAML_STREAM_END_EVENT;
		if (on_event(&b, &ev) < 0) {
			yaml_event_delete(&ev);
			goto out;
		}
		yaml_event_delete(&ev);
	}
	*out = b.root;
	b.root = NULL;
	ret = 0;
out:
	ynode_free(b.root);
	for (i = 0; i < b.nanchors; i++)
		free(b.anchors[i].name);
	free(b.anchors);
	for (i = 0; i < b.ndead; i++)
		ynode_free(b.dead[i]);
	free(b.dead);
	yaml_parser_delete(&parser);
	return ret;
}

size_t ynode_map_len(const struct ynode *map)
{
	return map && map->kind == YNODE_MAP ? map->nkids / 2 : 0;
}

const struct ynode *ynode_map_key(const struct ynode *map, size_t i)
{
	return map->kids[2 * i];
}

const struct ynode *ynode_map_val(const struct ynode *map, size_t i)
{
	return map->kids[2 * i + 1];
}

const struct ynode *ynode_map_get(const struct ynode *map, const char *key)
{
	size_t i, n = ynode_map_len(map);

	for (i = 0; i < n; i++)
		if (!strcmp(ynode_map_key(map, i)->value, key))
			return ynode_map_val(map, i);
	return NULL;
}

int ynode_is_null(const struct ynode *n)
{
	if (!n || n->kind != YNODE_SCALAR || !n->plain)
		return 0;
	return !strcmp(n->value, "") || !strcmp(n->value, "~") ||
	       !strcmp(n->value, "null") || !strcmp(n->value, "Null") ||
	       !strcmp(n->value, "NULL");
}

int ynode_is_str(const struct ynode *n)
{
	return n && n->kind == YNODE_SCALAR && strlen(n->value) == n->len;
}

int ynode_bool(const struct ynode *n)
{
	static const char *const yes[] = { "true", "yes", "on", "y" };
	static const char *const no[] = { "false", "no", "off", "n" };
	size_t i;

	if (!ynode_is_str(n))
		return -1;
	for (i = 0; i < ARRAY_SIZE(yes); i++)
		if (!strcasecmp(n->value, yes[i]))
			return 1;
	for (i = 0; i < ARRAY_SIZE(no); i++)
		if (!strcasecmp(n->value, no[i]))
			return 0;
	return -1;
}

const char *ynode_kind_name(const struct ynode *n)
{
	if (!n)
		return "nothing";
	switch (n->kind) {
	case YNODE_SCALAR:
		return "a string";
	case YNODE_SEQ:
		return "a list";
	case YNODE_MAP:
		return "a mapping";
	}
	return "a node";
}
