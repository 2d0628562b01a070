/*
 * ytree: a small tree over libyaml's event parser, for the manifest and
 * berth.yaml readers.  Every node keeps its 1-based line and column, so
 * messages can say "app.yaml:3:8: ...".
 *
 * Scalars are kept as text (YAML's types are decided by the reader that
 * knows the key).  Anchors and aliases are supported; an alias is a copy
 * of its anchor's tree, and the whole document is capped in nodes and
 * depth so that "billion laughs" input fails instead of exploding.
 * Mappings keep their order; a key that appears twice is an error.
 * Keys must be scalars.  YAML merge keys ("<<: *base", or a list of
 * aliases) are resolved: the mapping gets the pairs it lacks, copied.
 *
 * ytree_parse() returns the document's root (NULL for an empty document)
 * in *out, which the caller frees with ynode_free().  On error it returns
 * -1 and error_last() is "FNAME:LINE:COL: problem".
 */
#ifndef BERTH_YTREE_H
#define BERTH_YTREE_H

#include <stddef.h>

enum ynode_kind {
	YNODE_SCALAR,
	YNODE_SEQ,
	YNODE_MAP,
};

#define YTREE_MAX_NODES 100000
#define YTREE_MAX_DEPTH 64

struct ynode {
	enum ynode_kind kind;
	int line, col;		/* 1-based, where the node starts */
	char *value;		/* scalar text, NUL-terminated (may hold NULs) */
	size_t len;		/* scalar length */
	int plain;		/* 1 for an unquoted scalar */
	struct ynode **kids;	/* seq: items; map: key, value, key, value.. */
	size_t nkids;
};

int ytree_parse(struct ynode **out, const char *buf, size_t len,
		const char *fname);
void ynode_free(struct ynode *n);

/* Mapping helpers: number of pairs, i-th key / value (borrowed). */
size_t ynode_map_len(const struct ynode *map);
const struct ynode *ynode_map_key(const struct ynode *map, size_t i);
const struct ynode *ynode_map_val(const struct ynode *map, size_t i);
/* The value for 'key' in a mapping, or NULL. */
const struct ynode *ynode_map_get(const struct ynode *map, const char *key);

/* 1 for a plain "", "~", "null" or "Null"/"NULL" scalar. */
int ynode_is_null(const struct ynode *n);
/* 1 if n is a scalar without NUL bytes (a usable C string). */
int ynode_is_str(const struct ynode *n);
/* YAML 1.1 booleans (true/false/yes/no/on/off, any case): 0/1, -1 if not. */
int ynode_bool(const struct ynode *n);
/* A short word for messages: "a mapping", "a list", "a string". */
const char *ynode_kind_name(const struct ynode *n);

#endif
