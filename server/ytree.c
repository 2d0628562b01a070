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
	case YAML_MAPPING_END_EVENT:
		if (b->depth > 0)
			b->depth--;
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
