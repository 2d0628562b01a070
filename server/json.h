/*
 * json: a small, strict, bounded JSON reader (RFC 8259) for files a
 * pusher sends (app.json).  Every node keeps its 1-based line and column,
 * so a reader that finds a value of the wrong kind can say where:
 * "app.json:4:17: 'formation.web.quantity' must be a whole number".
 *
 * Why our own and not jansson or json-c: neither keeps positions of the
 * values it returns (only of syntax errors), and the manifest's readers
 * report every mistake at its line and column; a tree of a few node
 * kinds under the same caps as ytree (nodes, depth) is 400 lines.
 *
 * Strict: no comments, no trailing commas, no single quotes; strings must
 * be valid UTF-8 (escapes included: a lone surrogate is an error) with no
 * raw control characters; a UTF-8 byte-order mark at the start is
 * skipped.  A key that appears twice in an object is an error (readers
 * could not agree on which one counts).  Columns count characters, not
 * bytes.
 *
 * json_parse() returns the document's root in *out (never NULL on
 * success), which the caller frees with jnode_free().  On error it
 * returns -1 and error_last() is "FNAME:LINE:COL: problem".  Nothing
 * blocks; the caller bounds the input's size.
 */
#ifndef BERTH_JSON_H
#define BERTH_JSON_H

#include <stddef.h>

#define JSON_MAX_NODES 100000
#define JSON_MAX_DEPTH 64

enum jnode_kind {
	JNODE_NULL,
	JNODE_BOOL,
	JNODE_NUMBER,
	JNODE_STRING,
	JNODE_ARRAY,
	JNODE_OBJECT,
};

struct jnode {
	enum jnode_kind kind;
	int line, col;		/* 1-based, where the value starts */
	/* STRING: the decoded text (may hold NUL from \u0000);
	 * NUMBER: the literal as written ("1.5e3").  NUL-terminated. */
	char *str;
	size_t len;
	int boolean;		/* BOOL: 0 or 1 */
	double number;		/* NUMBER: its value */
	/* ARRAY: the items; OBJECT: key, value, key, value, ... (keys are
	 * STRING nodes) */
	struct jnode **kids;
	size_t nkids;
};

int json_parse(struct jnode **out, const char *buf, size_t len,
	       const char *fname);
void jnode_free(struct jnode *n);

/* Object helpers: number of members, i-th key / value (borrowed). */
size_t jnode_obj_len(const struct jnode *obj);
const struct jnode *jnode_obj_key(const struct jnode *obj, size_t i);
const struct jnode *jnode_obj_val(const struct jnode *obj, size_t i);
/* The value for 'key' in an object, or NULL. */
const struct jnode *jnode_obj_get(const struct jnode *obj, const char *key);

/* 1 if n is a string without NUL bytes (a usable C string). */
int jnode_is_str(const struct jnode *n);
/* A whole number from min to max (no fraction, no exponent) into *out:
 * 0, else -1 (nothing set). */
int jnode_int(const struct jnode *n, long min, long max, long *out);
/* A short phrase for messages: "a string", "an object", "null". */
const char *jnode_kind_name(const struct jnode *n);

#endif
