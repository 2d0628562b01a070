/* json: see json.h.  A recursive-descent reader; the depth cap bounds
 * the recursion. */
#include "json.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"
#include "banned.h"

struct jp {
	const char *buf;
	size_t len, pos;
	int line, col;
	const char *fname;
	size_t nodes;
};

static int jp_error(const struct jp *p, int line, int col, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
static int jp_error(const struct jp *p, int line, int col, const char *fmt, ...)
{
	char msg[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	return error_set("%s:%d:%d: %s", p->fname, line, col, msg);
}

#define here_error(p, ...) jp_error(p, (p)->line, (p)->col, __VA_ARGS__)

/* Move one byte on, keeping line and column (characters, not bytes). */
static void advance(struct jp *p)
{
	unsigned char c = (unsigned char)p->buf[p->pos++];

	if (c == '\n') {
		p->line++;
		p->col = 1;
	} else if ((c & 0xc0) != 0x80) {
		p->col++;
	}
}

static int peek(const struct jp *p)
{
	return p->pos < p->len ? (unsigned char)p->buf[p->pos] : -1;
}

static void skip_ws(struct jp *p)
{
	int c;

	while ((c = peek(p)) == ' ' || c == '\t' || c == '\n' || c == '\r')
		advance(p);
}

/* A short, printable name for the byte at the cursor, for messages. */
static const char *what_here(const struct jp *p, char *out, size_t n)
{
	int c = peek(p);

	if (c < 0)
		snprintf(out, n, "the end of the file");
	else if (c >= 0x21 && c < 0x7f)
		snprintf(out, n, "'%c'", c);
	else
		snprintf(out, n, "byte 0x%02x", (unsigned)c);
	return out;
}

static struct jnode *node_new(struct jp *p, enum jnode_kind kind, int line,
			      int col)
{
	struct jnode *n;

	if (++p->nodes > JSON_MAX_NODES) {
		jp_error(p, line, col, "too many values (more than %d)",
			 JSON_MAX_NODES);
		return NULL;
	}
	n = xcalloc(1, sizeof(*n));
	n->kind = kind;
	n->line = line;
	n->col = col;
	return n;
}

static void kid_add(struct jnode *n, struct jnode *kid, size_t *alloc)
{
	if (n->nkids == *alloc) {
		*alloc = *alloc ? *alloc * 2 : 4;
		n->kids = xrealloc(n->kids, *alloc * sizeof(*n->kids));
	}
	n->kids[n->nkids++] = kid;
}

void jnode_free(struct jnode *n)
{
	size_t i;

	if (!n)
		return;
	for (i = 0; i < n->nkids; i++)
		jnode_free(n->kids[i]);
	free(n->kids);
	free(n->str);
	free(n);
}

static int hex4(const struct jp *p, size_t at, unsigned *out)
{
	unsigned v = 0;
	size_t i;

	if (at + 4 > p->len)
		return -1;
	for (i = 0; i < 4; i++) {
		int h = hex_value(p->buf[at + i]);

		if (h < 0)
			return -1;
		v = v << 4 | (unsigned)h;
	}
	*out = v;
	return 0;
}

static void put_utf8(struct buf *b, unsigned cp)
{
	char u[4];
	size_t n;

	if (cp < 0x80) {
		u[0] = (char)cp;
		n = 1;
	} else if (cp < 0x800) {
		u[0] = (char)(0xc0 | cp >> 6);
		u[1] = (char)(0x80 | (cp & 0x3f));
		n = 2;
	} else if (cp < 0x10000) {
		u[0] = (char)(0xe0 | cp >> 12);
		u[1] = (char)(0x80 | (cp >> 6 & 0x3f));
		u[2] = (char)(0x80 | (cp & 0x3f));
		n = 3;
	} else {
		u[0] = (char)(0xf0 | cp >> 18);
		u[1] = (char)(0x80 | (cp >> 12 & 0x3f));
		u[2] = (char)(0x80 | (cp >> 6 & 0x3f));
		u[3] = (char)(0x80 | (cp & 0x3f));
		n = 4;
	}
	buf_add(b, u, n);
}

/* Length of the valid UTF-8 sequence at s (at most 'left' bytes), 0 if
 * it is not one (overlong forms and surrogates included). */
static size_t utf8_len(const unsigned char *s, size_t left)
{
	unsigned cp;
	size_t n, i;

	if (s[0] < 0x80)
		return 1;
	if (s[0] >= 0xc2 && s[0] <= 0xdf) {
		n = 2;
		cp = s[0] & 0x1f;
	} else if (s[0] >= 0xe0 && s[0] <= 0xef) {
		n = 3;
		cp = s[0] & 0x0f;
	} else if (s[0] >= 0xf0 && s[0] <= 0xf4) {
		n = 4;
		cp = s[0] & 0x07;
	} else {
		return 0;
	}
	if (n > left)
		return 0;
	for (i = 1; i < n; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = cp << 6 | (s[i] & 0x3f);
	}
	if ((n == 3 && cp < 0x800) || (n == 4 && (cp < 0x10000 ||
						  cp > 0x10ffff)) ||
	    (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return n;
}

/* A string at the cursor (on its opening quote) into a fresh node. */
static struct jnode *parse_string(struct jp *p)
{
	struct jnode *n = node_new(p, JNODE_STRING, p->line, p->col);
	struct buf b = BUF_INIT;
	int sline = p->line, scol = p->col;

	if (!n)
		return NULL;
	advance(p);	/* the quote */
	for (;;) {
		int c = peek(p);
		size_t u;

		if (c < 0) {
			jp_error(p, sline, scol, "string is not closed");
			goto fail;
		}
		if (c == '"') {
			advance(p);
			break;
		}
		if (c < 0x20) {
			here_error(p, "control character 0x%02x in a string "
				   "(write it as \\u%04x)", (unsigned)c,
				   (unsigned)c);
			goto fail;
		}
		if (c == '\\') {
			unsigned cp, lo;
			int eline = p->line, ecol = p->col;

			advance(p);
			c = peek(p);
			switch (c) {
			case '"': case '\\': case '/':
				buf_add(&b, (char[]){ (char)c }, 1);
				advance(p);
				continue;
			case 'b': buf_addstr(&b, "\b"); advance(p); continue;
			case 'f': buf_addstr(&b, "\f"); advance(p); continue;
			case 'n': buf_addstr(&b, "\n"); advance(p); continue;
			case 'r': buf_addstr(&b, "\r"); advance(p); continue;
			case 't': buf_addstr(&b, "\t"); advance(p); continue;
			case 'u':
				break;
			default:
				jp_error(p, eline, ecol, "unknown escape in a "
					 "string");
				goto fail;
			}
			if (hex4(p, p->pos + 1, &cp) < 0) {
				jp_error(p, eline, ecol, "\\u needs 4 hex "
					 "digits");
				goto fail;
			}
			advance(p);
			for (u = 0; u < 4; u++)
				advance(p);
			if (cp >= 0xdc00 && cp <= 0xdfff) {
				jp_error(p, eline, ecol, "lone low surrogate "
					 "\\u%04x", cp);
				goto fail;
			}
			if (cp >= 0xd800 && cp <= 0xdbff) {
				if (p->pos + 6 > p->len ||
				    p->buf[p->pos] != '\\' ||
				    p->buf[p->pos + 1] != 'u' ||
				    hex4(p, p->pos + 2, &lo) < 0 ||
				    lo < 0xdc00 || lo > 0xdfff) {
					jp_error(p, eline, ecol, "lone high "
						 "surrogate \\u%04x", cp);
					goto fail;
				}
				for (u = 0; u < 6; u++)
					advance(p);
				cp = 0x10000 + ((cp - 0xd800) << 10) +
				     (lo - 0xdc00);
			}
			put_utf8(&b, cp);
			continue;
		}
		u = utf8_len((const unsigned char *)p->buf + p->pos,
			     p->len - p->pos);
		if (!u) {
			here_error(p, "invalid UTF-8 in a string");
			goto fail;
		}
		buf_add(&b, p->buf + p->pos, u);
		while (u--)
			advance(p);
	}
	if (!b.data)
		buf_add(&b, "", 0);
	n->len = b.len;
	n->str = buf_detach(&b);
	return n;
fail:
	buf_release(&b);
	jnode_free(n);
	return NULL;
}

static int is_digit(int c)
{
	return c >= '0' && c <= '9';
}

static struct jnode *parse_number(struct jp *p)
{
	struct jnode *n;
	size_t start = p->pos;
	int line = p->line, col = p->col;

	if (peek(p) == '-')
		advance(p);
	if (peek(p) == '0') {
		advance(p);
	} else if (is_digit(peek(p))) {
		while (is_digit(peek(p)))
			advance(p);
	} else {
		jp_error(p, line, col, "invalid number");
		return NULL;
	}
	if (peek(p) == '.') {
		advance(p);
		if (!is_digit(peek(p))) {
			here_error(p, "a digit must follow '.'");
			return NULL;
		}
		while (is_digit(peek(p)))
			advance(p);
	}
	if (peek(p) == 'e' || peek(p) == 'E') {
		advance(p);
		if (peek(p) == '+' || peek(p) == '-')
			advance(p);
		if (!is_digit(peek(p))) {
			here_error(p, "a digit must follow the exponent");
			return NULL;
		}
		while (is_digit(peek(p)))
			advance(p);
	}
	if (is_digit(peek(p))) {
		here_error(p, "numbers may not have leading zeros");
		return NULL;
	}
	n = node_new(p, JNODE_NUMBER, line, col);
	if (!n)
		return NULL;
	n->str = xstrndup(p->buf + start, p->pos - start);
	n->len = p->pos - start;
	/* out of range gives HUGE_VAL or 0: readers bound what they take */
	n->number = strtod(n->str, NULL);
	return n;
}

static struct jnode *parse_value(struct jp *p, int depth);

static struct jnode *parse_array(struct jp *p, int depth)
{
	struct jnode *n = node_new(p, JNODE_ARRAY, p->line, p->col), *kid;
	size_t alloc = 0;
	char w[32];

	if (!n)
		return NULL;
	advance(p);
	skip_ws(p);
	if (peek(p) == ']') {
		advance(p);
		return n;
	}
	for (;;) {
		kid = parse_value(p, depth + 1);
		if (!kid)
			goto fail;
		kid_add(n, kid, &alloc);
		skip_ws(p);
		if (peek(p) == ',') {
			advance(p);
			skip_ws(p);
			if (peek(p) == ']') {
				here_error(p, "trailing comma in a list");
				goto fail;
			}
			continue;
		}
		if (peek(p) == ']') {
			advance(p);
			return n;
		}
		here_error(p, "expected ',' or ']' in a list, found %s",
			   what_here(p, w, sizeof(w)));
		goto fail;
	}
fail:
	jnode_free(n);
	return NULL;
}

static struct jnode *parse_object(struct jp *p, int depth)
{
	struct jnode *n = node_new(p, JNODE_OBJECT, p->line, p->col);
	struct jnode *key, *val;
	size_t alloc = 0, i;
	char w[32];

	if (!n)
		return NULL;
	advance(p);
	skip_ws(p);
	if (peek(p) == '}') {
		advance(p);
		return n;
	}
	for (;;) {
		if (peek(p) != '"') {
			here_error(p, "expected a key in double quotes, found "
				   "%s", what_here(p, w, sizeof(w)));
			goto fail;
		}
		key = parse_string(p);
		if (!key)
			goto fail;
		for (i = 0; i < n->nkids; i += 2) {
			const struct jnode *k = n->kids[i];

			if (k->len == key->len &&
			    !memcmp(k->str, key->str, k->len)) {
				jp_error(p, key->line, key->col,
					 "key '%.60s' appears twice (first at "
					 "line %d)", jnode_is_str(key) ?
					 key->str : "?", k->line);
				jnode_free(key);
				goto fail;
			}
		}
		kid_add(n, key, &alloc);
		skip_ws(p);
		if (peek(p) != ':') {
			here_error(p, "expected ':' after a key, found %s",
				   what_here(p, w, sizeof(w)));
			goto fail;
		}
		advance(p);
		val = parse_value(p, depth + 1);
		if (!val)
			goto fail;
		kid_add(n, val, &alloc);
		skip_ws(p);
		if (peek(p) == ',') {
			advance(p);
			skip_ws(p);
			if (peek(p) == '}') {
				here_error(p, "trailing comma in an object");
				goto fail;
			}
			continue;
		}
		if (peek(p) == '}') {
			advance(p);
			return n;
		}
		here_error(p, "expected ',' or '}' in an object, found %s",
			   what_here(p, w, sizeof(w)));
		goto fail;
	}
fail:
	jnode_free(n);
	return NULL;
}

static struct jnode *parse_word(struct jp *p, const char *word,
				enum jnode_kind kind, int value)
{
	size_t n = strlen(word), i;
	int line = p->line, col = p->col;
	struct jnode *node;

	if (p->len - p->pos < n || memcmp(p->buf + p->pos, word, n)) {
		char w[32];

		here_error(p, "expected a value, found %s",
			   what_here(p, w, sizeof(w)));
		return NULL;
	}
	for (i = 0; i < n; i++)
		advance(p);
	node = node_new(p, kind, line, col);
	if (node)
		node->boolean = value;
	return node;
}

static struct jnode *parse_value(struct jp *p, int depth)
{
	char w[32];
	int c;

	skip_ws(p);
	if (depth > JSON_MAX_DEPTH) {
		here_error(p, "nested deeper than %d levels", JSON_MAX_DEPTH);
		return NULL;
	}
	c = peek(p);
	switch (c) {
	case '{':
		return parse_object(p, depth);
	case '[':
		return parse_array(p, depth);
	case '"':
		return parse_string(p);
	case 't':
		return parse_word(p, "true", JNODE_BOOL, 1);
	case 'f':
		return parse_word(p, "false", JNODE_BOOL, 0);
	case 'n':
		return parse_word(p, "null", JNODE_NULL, 0);
	default:
		if (c == '-' || is_digit(c))
			return parse_number(p);
		here_error(p, "expected a value, found %s",
			   what_here(p, w, sizeof(w)));
		return NULL;
	}
}

int json_parse(struct jnode **out, const char *buf, size_t len,
	       const char *fname)
{
	struct jp p;
	struct jnode *root;
	char w[32];

	*out = NULL;
	memset(&p, 0, sizeof(p));
	p.buf = buf ? buf : "";
	p.len = buf ? len : 0;
	p.line = p.col = 1;
	p.fname = fname;
	if (p.len >= 3 && !memcmp(p.buf, "\xef\xbb\xbf", 3))
		p.pos = 3;
	skip_ws(&p);
	if (p.pos == p.len)
		return here_error(&p, "empty file (expected a JSON object)");
	root = parse_value(&p, 1);
	if (!root)
		return -1;
	skip_ws(&p);
	if (p.pos != p.len) {
		here_error(&p, "unexpected %s after the end of the document",
			   what_here(&p, w, sizeof(w)));
		jnode_free(root);
		return -1;
	}
	*out = root;
	return 0;
}

size_t jnode_obj_len(const struct jnode *obj)
{
	return obj && obj->kind == JNODE_OBJECT ? obj->nkids / 2 : 0;
}

const struct jnode *jnode_obj_key(const struct jnode *obj, size_t i)
{
	return obj->kids[2 * i];
}

const struct jnode *jnode_obj_val(const struct jnode *obj, size_t i)
{
	return obj->kids[2 * i + 1];
}

const struct jnode *jnode_obj_get(const struct jnode *obj, const char *key)
{
	size_t i, n = jnode_obj_len(obj), klen = strlen(key);

	for (i = 0; i < n; i++) {
		const struct jnode *k = jnode_obj_key(obj, i);

		if (k->len == klen && !memcmp(k->str, key, klen))
			return jnode_obj_val(obj, i);
	}
	return NULL;
}

int jnode_is_str(const struct jnode *n)
{
	return n && n->kind == JNODE_STRING && strlen(n->str) == n->len;
}

int jnode_int(const struct jnode *n, long min, long max, long *out)
{
	long v;

	if (!n || n->kind != JNODE_NUMBER)
		return -1;
	/* the literal itself: "2" yes, "2.0" and "2e0" no */
	if (strpbrk(n->str, ".eE"))
		return -1;
	if (n->str[0] == '-') {
		v = parse_long(n->str + 1, 1L << 40);
		if (v < 0)
			return -1;
		v = -v;
	} else {
		v = parse_long(n->str, 1L << 40);
		if (v < 0)
			return -1;
	}
	if (v < min || v > max)
		return -1;
	*out = v;
	return 0;
}

const char *jnode_kind_name(const struct jnode *n)
{
	switch (n ? n->kind : JNODE_NULL) {
	case JNODE_NULL:
		return "null";
	case JNODE_BOOL:
		return "a boolean";
	case JNODE_NUMBER:
		return "a number";
	case JNODE_STRING:
		return "a string";
	case JNODE_ARRAY:
		return "a list";
	case JNODE_OBJECT:
		return "an object";
	}
	return "a value";
}
