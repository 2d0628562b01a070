/* keys: see keys.h. */
#include "keys.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "log.h"
#include "banned.h"

/* Walks the lines of a buffer; the last line may lack its newline. */
struct line_iter {
	const char *p;
	const char *end;
	int lineno;
};

static void line_iter_init(struct line_iter *it, const char *data, size_t len)
{
	it->p = data ? data : "";
	it->end = it->p + (data ? len : 0);
	it->lineno = 0;
}

static int line_iter_next(struct line_iter *it, const char **line,
			  size_t *len)
{
	const char *nl;

	if (it->p >= it->end)
		return 0;
	nl = memchr(it->p, '\n', (size_t)(it->end - it->p));
	*line = it->p;
	if (nl) {
		*len = (size_t)(nl - it->p);
		it->p = nl + 1;
	} else {
		*len = (size_t)(it->end - it->p);
		it->p = it->end;
	}
	it->lineno++;
	return 1;
}

static int is_blank(char c)
{
	return c == ' ' || c == '\t';
}

static int name_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	       (c >= '0' && c <= '9') || (c && strchr("._@+-", c));
}

/* A comment usable as a key's name: one safe word. */
static int name_ok(const char *s)
{
	size_t i;

	if (!s || !s[0] || s[0] == '-')
		return 0;
	for (i = 0; s[i]; i++)
		if (i >= KEYS_NAME_MAX || !name_char(s[i]))
			return 0;
	return 1;
}

/* Certificates name a CA, not a key we could list by its own name. */
static int type_supported(enum ssh_keytypes_e t)
{
	switch (t) {
	case SSH_KEYTYPE_RSA:
	case SSH_KEYTYPE_ECDSA_P256:
	case SSH_KEYTYPE_ECDSA_P384:
	case SSH_KEYTYPE_ECDSA_P521:
	case SSH_KEYTYPE_ED25519:
	case SSH_KEYTYPE_SK_ECDSA:
	case SSH_KEYTYPE_SK_ED25519:
		return 1;
	default:
		return 0;
	}
}

int keys_fingerprint(const ssh_key key, char **out)
{
	unsigned char *hash = NULL;
	size_t hlen = 0;
	char *fp;

	if (ssh_get_publickey_hash(key, SSH_PUBLICKEY_HASH_SHA256, &hash,
				   &hlen) < 0)
		return error_set("cannot hash key");
	fp = ssh_get_fingerprint_hash(SSH_PUBLICKEY_HASH_SHA256, hash, hlen);
	ssh_clean_pubkey_hash(&hash);
	if (!fp)
		return error_set("cannot hash key");
	*out = xstrdup(fp);
	ssh_string_free_char(fp);
	return 0;
}

/* "key-" and the first 4 bytes of the SHA-256, in hex. */
static int synth_name(const ssh_key key, char **out)
{
	unsigned char *hash = NULL;
	size_t hlen = 0;

	if (ssh_get_publickey_hash(key, SSH_PUBLICKEY_HASH_SHA256, &hash,
				   &hlen) < 0 || hlen < 4) {
		ssh_clean_pubkey_hash(&hash);
		return error_set("cannot hash key");
	}
	*out = xasprintf("key-%02x%02x%02x%02x", hash[0], hash[1], hash[2],
			 hash[3]);
	ssh_clean_pubkey_hash(&hash);
	return 0;
}

void keys_line_release(struct keys_line *k)
{
	free(k->type);
	free(k->b64);
	free(k->comment);
	free(k->name);
	free(k->fingerprint);
	free(k->options);
	free(k->from);
	if (k->key)
		ssh_key_free(k->key);
	memset(k, 0, sizeof(*k));
}

/*
 * Options run to the first blank outside double quotes; inside quotes a
 * backslash escapes the next character (OpenSSH's auth-options.c rules).
 * Returns the end of the field, or NULL for an unterminated quote.
 */
static char *options_end(char *p)
{
	int quoted = 0;

	for (;; p++) {
		if (quoted) {
			if (!*p)
				return NULL;
			if (*p == '\\' && p[1])
				p++;
			else if (*p == '"')
				quoted = 0;
			continue;
		}
		if (*p == '"') {
			quoted = 1;
			continue;
		}
		if (!*p || is_blank(*p))
			return p;
	}
}

/* ---- from= ---- */

struct addr {
	int af;			/* AF_INET or AF_INET6 */
	unsigned char b[16];
};

/* A numeric address; an IPv4-mapped IPv6 one is taken as IPv4. */
static int addr_parse(const char *s, struct addr *a)
{
	memset(a, 0, sizeof(*a));
	if (inet_pton(AF_INET, s, a->b) == 1) {
		a->af = AF_INET;
		return 0;
	}
	if (inet_pton(AF_INET6, s, a->b) == 1) {
		static const unsigned char mapped[12] = {
			0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };

		a->af = AF_INET6;
		if (!memcmp(a->b, mapped, sizeof(mapped))) {
			memmove(a->b, a->b + 12, 4);
			memset(a->b + 4, 0, 12);
			a->af = AF_INET;
		}
		return 0;
	}
	return -1;
}

static void addr_text(const struct addr *a, char *out, size_t len)
{
	if (!inet_ntop(a->af, a->b, out, (socklen_t)len))
		snprintf(out, len, "?");
}

/* "10.0.0.0/8", "2001:db8::/32" or a plain address; -1 if not one.
 * Bits set past the prefix make it no CIDR block (as OpenSSH). */
static int cidr_parse(const char *pat, struct addr *net, int *bits)
{
	char host[64];
	const char *slash = strchr(pat, '/');
	size_t n = slash ? (size_t)(slash - pat) : strlen(pat);
	int max, i;
	long v;

	if (n >= sizeof(host))
		return -1;
	memcpy(host, pat, n);
	host[n] = '\0';
	memset(net, 0, sizeof(*net));
	if (inet_pton(AF_INET, host, net->b) == 1)
		net->af = AF_INET;
	else if (inet_pton(AF_INET6, host, net->b) == 1)
		net->af = AF_INET6;
	else
		return -1;
	max = net->af == AF_INET ? 32 : 128;
	*bits = max;
	if (slash) {
		v = parse_long(slash + 1, max);
		if (v < 0 || !slash[1])
			return -1;
		*bits = (int)v;
	}
	for (i = *bits; i < max; i++)
		if (net->b[i / 8] & (0x80 >> (i % 8)))
			return -1;
	return 0;
}

static int cidr_match(const struct addr *a, const struct addr *net, int bits)
{
	int i;

	if (a->af != net->af)
		return 0;
	for (i = 0; i < bits; i++)
		if ((a->b[i / 8] ^ net->b[i / 8]) & (0x80 >> (i % 8)))
			return 0;
	return 1;
}

/*
 * '*' any run, '?' one character; case does not matter (OpenSSH).  One
 * backtracking point (the last '*'), so a pattern of many stars costs
 * len(pattern) * len(text), never more.
 */
static int glob_match(const char *p, const char *s)
{
	const char *star = NULL, *after = NULL;

	while (*s) {
		if (*p == '*') {
			star = p++;
			after = s;
		} else if (*p && (*p == '?' || tolower((unsigned char)*p) ==
				  tolower((unsigned char)*s))) {
			p++;
			s++;
		} else if (star) {
			p = star + 1;
			s = ++after;
		} else {
			return 0;
		}
	}
	while (*p == '*')
		p++;
	return !*p;
}

int keys_from_match(const char *patterns, const char *addr)
{
	struct addr a, net;
	char text[64], pat[KEYS_FROM_MAX + 1];
	const char *p = patterns;
	int have_addr = 0, matched = 0, denied = 0, bits;

	if (!patterns || !*patterns || strlen(patterns) > KEYS_FROM_MAX) {
		error_set("bad from= pattern list");
		return ERR_INVALID;
	}
	if (addr && addr_parse(addr, &a) == 0) {
		have_addr = 1;
		addr_text(&a, text, sizeof(text));
	}
	while (*p) {
		size_t n = strcspn(p, ",");
		const char *q;
		int neg = 0, m = 0, glob;

		memcpy(pat, p, n);
		pat[n] = '\0';
		p += n;
		if (*p == ',' && !*++p) {
			error_set("empty pattern in from=");
			return ERR_INVALID;
		}
		q = pat;
		if (*q == '!') {
			neg = 1;
			q++;
		}
		if (!*q) {
			error_set("empty pattern in from=");
			return ERR_INVALID;
		}
		glob = strchr(q, '*') || strchr(q, '?');
		if (glob) {
			/* only address characters: a host name glob could
			 * never match an address, not even a negated one */
			if (q[strspn(q, "0123456789abcdefABCDEF.:*?")]) {
				error_set("from= pattern '%.80s' names hosts; berth matches addresses only",
					  q);
				return ERR_INVALID;
			}
			m = have_addr && glob_match(q, text);
		} else if (cidr_parse(q, &net, &bits) == 0) {
			m = have_addr && cidr_match(&a, &net, bits);
		} else {
			error_set("from= pattern '%.80s' is not an address, a CIDR block or an address glob",
				  q);
			return ERR_INVALID;
		}
		if (m && neg)
			denied = 1;
		else if (m)
			matched = 1;
	}
	return matched && !denied;
}

/* ---- expiry-time= ---- */

static int digits(const char *s, int n)
{
	int v = 0, i;

	for (i = 0; i < n; i++)
		v = v * 10 + (s[i] - '0');
	return v;
}

/* YYYYMMDD[HHMM[SS]][Z]: local time, or UTC with Z (OpenSSH). */
static int parse_expiry(const char *s, time_t *out)
{
	size_t n = strspn(s, "0123456789");
	int utc = 0;
	struct tm tm, check;
	time_t t;

	if (s[n] == 'Z' || s[n] == 'z') {
		utc = 1;
		if (s[n + 1])
			goto bad;
	} else if (s[n]) {
		goto bad;
	}
	if (n != 8 && n != 12 && n != 14)
		goto bad;
	memset(&tm, 0, sizeof(tm));
	tm.tm_year = digits(s, 4) - 1900;
	tm.tm_mon = digits(s + 4, 2) - 1;
	tm.tm_mday = digits(s + 6, 2);
	if (n >= 12) {
		tm.tm_hour = digits(s + 8, 2);
		tm.tm_min = digits(s + 10, 2);
	}
	if (n == 14)
		tm.tm_sec = digits(s + 12, 2);
	if (tm.tm_year < 70 || tm.tm_mon < 0 || tm.tm_mon > 11 ||
	    tm.tm_mday < 1 || tm.tm_mday > 31 || tm.tm_hour > 23 ||
	    tm.tm_min > 59 || tm.tm_sec > 59)
		goto bad;
	check = tm;
	tm.tm_isdst = -1;
	t = utc ? timegm(&tm) : mktime(&tm);
	/* 20250231 comes back as March: no such day */
	if (t == (time_t)-1 || tm.tm_mday != check.tm_mday ||
	    tm.tm_mon != check.tm_mon)
		goto bad;
	*out = t;
	return 0;
bad:
	error_set("bad expiry-time '%.40s' (YYYYMMDD[HHMM[SS]][Z])", s);
	return ERR_INVALID;
}

/* ---- options ---- */

/* Options that change nothing in berth: it offers no pty, no forwarding
 * and no rc files to anyone. */
static const char *const inert_options[] = {
	"no-port-forwarding", "port-forwarding",
	"no-agent-forwarding", "agent-forwarding", "no-x11-forwarding",
	"x11-forwarding", "no-user-rc", "user-rc", "no-touch-required",
};

/* OpenSSH's options berth cannot keep: refusing the key is the only way
 * not to give it more than its line says. */
static const char *const refused_options[] = {
	"command", "environment", "permitopen", "permitlisten", "principals",
	"tunnel", "cert-authority", "verify-required",
};

static int in_list(const char *name, const char *const *list, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (!strcmp(name, list[i]))
			return 1;
	return 0;
}

static int parse_options(struct keys_line *k, const char *opts)
{
	struct buf val = BUF_INIT;
	const char *p = opts;
	int ret = ERR_INVALID;

	while (*p) {
		char name[32];
		size_t n = strcspn(p, ",=\"");
		int has_val = 0;
		size_t i;

		buf_reset(&val);
		if (!n) {
			error_set("bad key options");
			goto out;
		}
		if (n >= sizeof(name)) {
			error_set("unknown key option '%.*s'", 32, p);
			goto out;
		}
		for (i = 0; i < n; i++)
			name[i] = (char)tolower((unsigned char)p[i]);
		name[n] = '\0';
		p += n;
		if (*p == '=') {
			if (*++p != '"') {
				error_set("key option '%s' needs a value in double quotes",
					  name);
				goto out;
			}
			for (p++; *p && *p != '"'; p++) {
				if (*p == '\\' && p[1] == '"')
					p++;
				buf_add(&val, p, 1);
			}
			if (*p != '"') {
				error_set("unterminated quote in key options");
				goto out;
			}
			p++;
			buf_add(&val, "", 0);
			has_val = 1;
		}
		if (*p == ',') {
			if (!*++p) {
				error_set("bad key options");
				goto out;
			}
		} else if (*p) {
			error_set("bad key options");
			goto out;
		}

		if (!strcmp(name, KEYS_ADMIN_OPTION) && !has_val) {
			k->admin = 1;
		} else if ((!strcmp(name, "restrict") ||
			    !strcmp(name, "no-pty")) && !has_val) {
			k->no_pty = 1;
		} else if (!strcmp(name, "pty") && !has_val) {
			k->no_pty = 0;
		} else if (in_list(name, inert_options,
				   ARRAY_SIZE(inert_options)) && !has_val) {
			continue;
		} else if (!strcmp(name, "from") && has_val) {
			if (k->from) {
				error_set("key option 'from' given twice");
				goto out;
			}
			if (keys_from_match(val.data, NULL) < 0)
				goto out;
			k->from = xstrdup(val.data);
		} else if (!strcmp(name, "expiry-time") && has_val) {
			if (k->expiry) {
				error_set("key option 'expiry-time' given twice");
				goto out;
			}
			if (parse_expiry(val.data, &k->expiry) < 0)
				goto out;
		} else if (in_list(name, refused_options,
				   ARRAY_SIZE(refused_options))) {
			error_set("key option '%s' cannot be honoured by berth",
				  name);
			goto out;
		} else {
			error_set("unknown key option '%s'", name);
			goto out;
		}
	}
	ret = 0;
out:
	buf_release(&val);
	return ret;
}

static char *next_word(char **pp)
{
	char *p = *pp, *w;

	while (is_blank(*p))
		p++;
	if (!*p) {
		*pp = p;
		return NULL;
	}
	w = p;
	while (*p && !is_blank(*p))
		p++;
	if (*p)
		*p++ = '\0';
	*pp = p;
	return w;
}

int keys_line_parse(struct keys_line *k, const char *line, size_t len)
{
	char *copy = NULL, *first = NULL, *p, *end, *type, *b64, saved;
	char *exported = NULL;
	enum ssh_keytypes_e t;
	int ret = ERR_INVALID;

	memset(k, 0, sizeof(*k));
	if (len > KEYS_LINE_MAX) {
		error_set("key line too long");
		goto out;
	}
	if (memchr(line, '\0', len)) {
		error_set("NUL byte in key line");
		goto out;
	}
	copy = xstrndup(line, len);
	end = copy + strlen(copy);
	while (end > copy && (is_blank(end[-1]) || end[-1] == '\r'))
		*--end = '\0';
	p = copy;
	while (is_blank(*p))
		p++;
	if (!*p || *p == '#') {
		ret = 1;
		goto out;
	}
	for (end = p; *end; end++) {
		if ((unsigned char)*end < 0x20 && *end != '\t') {
			error_set("control character in key line");
			goto out;
		}
	}

	/* A line starts with options unless its first word is a key type. */
	end = p;
	while (*end && !is_blank(*end))
		end++;
	saved = *end;
	*end = '\0';
	t = ssh_key_type_from_name(p);
	*end = saved;
	if (t == SSH_KEYTYPE_UNKNOWN) {
		end = options_end(p);
		if (!end) {
			error_set("unterminated quote in key options");
			goto out;
		}
		k->has_options = 1;
		first = xstrndup(p, (size_t)(end - p));
		p = end;
	}
	type = next_word(&p);
	b64 = next_word(&p);
	if (!type) {
		error_set("missing key type");
		goto out;
	}
	t = ssh_key_type_from_name(type);
	if (t == SSH_KEYTYPE_UNKNOWN) {
		/* "ssh-foo AAAA..." is a bad type more likely than options */
		if (first && strcasecmp(first, KEYS_ADMIN_OPTION) &&
		    !strchr(first, '='))
			error_set("unknown key type '%.64s'", first);
		else
			error_set("unknown key type '%.64s'", type);
		goto out;
	}
	if (!type_supported(t)) {
		error_set("unsupported key type '%.64s'", type);
		goto out;
	}
	if (!b64) {
		error_set("missing key data after '%s'", type);
		goto out;
	}
	if (ssh_pki_import_pubkey_base64(b64, t, &k->key) != SSH_OK ||
	    !k->key) {
		error_set("bad key data for '%s'", type);
		goto out;
	}
	/* The blob names its own type: it must be the one the line says, and
	 * it must read back as exactly the text given. */
	if (ssh_key_type(k->key) != t ||
	    strcmp(ssh_key_type_to_char(t), type) ||
	    ssh_pki_export_pubkey_base64(k->key, &exported) != SSH_OK ||
	    strcmp(exported, b64)) {
		error_set("bad key data for '%s'", type);
		goto out;
	}
	if (first) {
		if (parse_options(k, first) < 0)
			goto out;
		k->options = xstrdup(first);
	}
	k->type = xstrdup(type);
	k->b64 = xstrdup(b64);
	while (is_blank(*p))
		p++;
	if (*p)
		k->comment = xstrdup(p);
	if (keys_fingerprint(k->key, &k->fingerprint) < 0)
		goto out;
	if (name_ok(k->comment))
		k->name = xstrdup(k->comment);
	else if (synth_name(k->key, &k->name) < 0)
		goto out;
	ret = 0;
out:
	if (exported)
		ssh_string_free_char(exported);
	free(first);
	free(copy);
	if (ret != 0)
		keys_line_release(k);
	return ret;
}

static char *keys_path(const char *root)
{
	return xasprintf("%s/%s", root, KEYS_FILE);
}

/* The file's text; a missing file reads as empty. */
static int read_keys(const char *root, struct buf *data)
{
	char *path = keys_path(root);
	int ret = 0;

	buf_init(data, 0);
	if (!path_exists(path)) {
		buf_addstr(data, "");
		goto out;
	}
	ret = read_file(data, path, KEYS_FILE_MAX);
out:
	free(path);
	return ret;
}

static int write_keys(const char *root, const struct buf *data)
{
	char *dir = xasprintf("%s/keys", root);
	char *path = keys_path(root);
	int ret = -1;

	if (mkdir_p(dir, 0700) < 0)
		goto out;
	ret = write_file_atomic(path, data->data ? data->data : "",
				data->len, 0600);
out:
	free(dir);
	free(path);
	return ret;
}

int keys_line_permits(const struct keys_line *k, const char *addr,
		      time_t now)
{
	char when[32];

	if (k->expiry && now > k->expiry) {
		time_iso(when, sizeof(when), k->expiry);
		error_set("key '%s' expired at %s", k->name, when);
		return ERR_INVALID;
	}
	if (k->from && keys_from_match(k->from, addr) != 1) {
		error_set("key '%s' is not allowed from %.64s", k->name,
			  addr ? addr : "an unknown address");
		return ERR_INVALID;
	}
	return 0;
}

int keys_match_from(const char *root, const ssh_key key, const char *addr,
		    char **user, int *admin)
{
	int no_pty;

	return keys_match_opts(root, key, addr, user, admin, &no_pty);
}

/* The line's key is key, or (key NULL) is type and b64 as text. */
static int line_has_key(const struct keys_line *k, const ssh_key key,
			const char *type, const char *b64)
{
	if (key)
		return !ssh_key_cmp(k->key, key, SSH_KEY_CMP_PUBLIC);
	/* keys_line_parse() took only lines whose text reads back exactly */
	return !strcmp(k->type, type) && !strcmp(k->b64, b64);
}

static int match_key(const char *root, const ssh_key key, const char *type,
		     const char *b64, const char *addr, char **user,
		     int *admin, int *no_pty);

int keys_match_opts(const char *root, const ssh_key key, const char *addr,
		    char **user, int *admin, int *no_pty)
{
	return match_key(root, key, NULL, NULL, addr, user, admin, no_pty);
}

int keys_match_text(const char *root, const char *type, const char *b64,
		    const char *addr, char **user, int *admin, int *no_pty)
{
	return match_key(root, NULL, type, b64, addr, user, admin, no_pty);
}

static int match_key(const char *root, const ssh_key key, const char *type,
		     const char *b64, const char *addr, char **user,
		     int *admin, int *no_pty)
{
	struct buf data = BUF_INIT;
	struct strv names = STRV_INIT;
	struct line_iter it;
	struct keys_line k;
	const char *line;
	size_t len, i;
	int ret = ERR_NOTFOUND, r, dup;

	*user = NULL;
	*admin = 0;
	*no_pty = 0;
	if (read_keys(root, &data) < 0) {
		ret = -1;
		goto out;
	}
	line_iter_init(&it, data.data, data.len);
	while (ret == ERR_NOTFOUND && line_iter_next(&it, &line, &len)) {
		r = keys_line_parse(&k, line, len);
		if (r == 1)
			continue;
		if (r < 0) {
			log_warnx("%s line %d: %s; key refused", KEYS_FILE,
				  it.lineno, error_last());
			continue;
		}
		/* the first line with a name keeps it */
		for (i = 0, dup = 0; i < names.n && !dup; i++)
			dup = !strcmp(names.v[i], k.name);
		if (dup) {
			log_warnx("%s line %d: a key named '%s' is already on an earlier line; key refused",
				  KEYS_FILE, it.lineno, k.name);
			keys_line_release(&k);
			continue;
		}
		strv_push(&names, k.name);
		if (line_has_key(&k, key, type, b64)) {
			if (keys_line_permits(&k, addr, time(NULL)) < 0) {
				ret = ERR_INVALID;
			} else {
				*user = xstrdup(k.name);
				*admin = k.admin;
				*no_pty = k.no_pty;
				ret = 0;
			}
		}
		keys_line_release(&k);
	}
out:
	strv_release(&names);
	buf_release(&data);
	return ret;
}

int keys_match(const char *root, const ssh_key key, char **user, int *admin)
{
	return keys_match_from(root, key, NULL, user, admin);
}

/* The list for people into out, for programs into fields (either may be
 * NULL). */
static int list_keys(const char *root, struct buf *out, struct strv *fields)
{
	struct buf data = BUF_INIT;
	struct line_iter it;
	struct keys_line k;
	const char *line;
	size_t len;
	int ret = -1;

	if (read_keys(root, &data) < 0)
		goto out;
	line_iter_init(&it, data.data, data.len);
	while (line_iter_next(&it, &line, &len)) {
		if (keys_line_parse(&k, line, len) != 0)
			continue;
		if (fields)
			strv_pushf(fields, "key=%s type=%s fingerprint=%s admin=%d from=%d expires=%lld",
				   k.name, k.type, k.fingerprint, k.admin ? 1 : 0,
				   k.from ? 1 : 0, (long long)k.expiry);
		if (!out) {
			keys_line_release(&k);
			continue;
		}
		buf_addf(out, "%s %s %s%s", k.name, k.type, k.fingerprint,
			 k.admin ? " admin" : "");
		if (k.from)
			buf_addf(out, " from=%s", k.from);
		if (k.expiry) {
			char when[32];

			time_iso(when, sizeof(when), k.expiry);
			buf_addf(out, " expires=%s", when);
		}
		buf_addstr(out, "\n");
		keys_line_release(&k);
	}
	ret = 0;
out:
	buf_release(&data);
	return ret;
}

int keys_list(const char *root, struct buf *out)
{
	return list_keys(root, out, NULL);
}

int keys_list_fields(const char *root, struct strv *out)
{
	return list_keys(root, NULL, out);
}

/* Is 'key' among the valid lines of data?  Sets *name to its line's name. */
static int find_key(const char *data, size_t dlen, const ssh_key key,
		    const char **name, struct keys_line *hold)
{
	struct line_iter it;
	const char *line;
	size_t len;

	line_iter_init(&it, data, dlen);
	while (line_iter_next(&it, &line, &len)) {
		if (keys_line_parse(hold, line, len) != 0)
			continue;
		if (!ssh_key_cmp(hold->key, key, SSH_KEY_CMP_PUBLIC)) {
			*name = hold->name;
			return 1;
		}
		keys_line_release(hold);
	}
	return 0;
}

/* The names of the valid lines of data. */
static void names_of(const char *data, size_t dlen, struct strv *names)
{
	struct line_iter it;
	struct keys_line k;
	const char *line;
	size_t len;

	line_iter_init(&it, data, dlen);
	while (line_iter_next(&it, &line, &len)) {
		if (keys_line_parse(&k, line, len) != 0)
			continue;
		strv_push(names, k.name);
		keys_line_release(&k);
	}
}

static int has_name(const struct strv *names, const char *name)
{
	size_t i;

	for (i = 0; i < names->n; i++)
		if (!strcmp(names->v[i], name))
			return 1;
	return 0;
}

int keys_add_named(const char *root, const char *text, const char *name,
		   int admin, struct buf *out)
{
	struct buf data = BUF_INIT, added = BUF_INIT, msgs = BUF_INIT;
	struct strv names = STRV_INIT;
	struct line_iter it;
	struct keys_line k, other;
	const char *line, *dup, *kname;
	size_t len, tlen = strlen(text);
	int ret = -1, r, nlines = 0, nkeys = 0;

	memset(&k, 0, sizeof(k));
	memset(&other, 0, sizeof(other));
	/* Count the key lines first so one key gets no "line 1:" prefix. */
	line_iter_init(&it, text, tlen);
	while (line_iter_next(&it, &line, &len)) {
		size_t i = 0;

		while (i < len && (is_blank(line[i]) || line[i] == '\r'))
			i++;
		if (i < len && line[i] != '#')
			nlines++;
	}
	if (name && !name_ok(name)) {
		error_set("invalid key name '%.80s'", name);
		ret = ERR_INVALID;
		goto out;
	}
	if (name && nlines > 1) {
		error_set("a name is for one key, not %d", nlines);
		ret = ERR_INVALID;
		goto out;
	}
	if (read_keys(root, &data) < 0)
		goto out;
	if (data.len && data.data[data.len - 1] != '\n')
		buf_addstr(&data, "\n");
	names_of(data.data, data.len, &names);

	line_iter_init(&it, text, tlen);
	while (line_iter_next(&it, &line, &len)) {
		r = keys_line_parse(&k, line, len);
		if (r == 1)
			continue;
		kname = name ? name : k.name;
		if (r == 0 && k.admin) {
			error_set("the option '%s' is not accepted (use --admin for an admin key)",
				  KEYS_ADMIN_OPTION);
			r = ERR_INVALID;
		}
		if (r == 0 && (find_key(data.data, data.len, k.key, &dup,
					&other) ||
			       find_key(added.data, added.len, k.key, &dup,
					&other))) {
			error_set("key %s is already present as '%s'",
				  k.fingerprint, dup);
			r = ERR_INVALID;
		}
		if (r == 0 && has_name(&names, kname)) {
			error_set("a key named '%s' already exists", kname);
			r = ERR_EXISTS;
		}
		if (r != 0) {
			if (nlines > 1) {
				char *msg = xstrdup(error_last());

				error_set("line %d: %s", it.lineno, msg);
				free(msg);
			}
			ret = r < 0 ? r : ERR_INVALID;
			goto out;
		}
		strv_push(&names, kname);
		if (admin && k.options)
			buf_addf(&added, "%s,%s ", KEYS_ADMIN_OPTION,
				 k.options);
		else if (admin || k.options)
			buf_addf(&added, "%s ",
				 admin ? KEYS_ADMIN_OPTION : k.options);
		buf_addf(&added, "%s %s %s\n", k.type, k.b64, kname);
		buf_addf(&msgs, "added %s (%s)\n", kname, k.fingerprint);
		nkeys++;
		keys_line_release(&k);
	}
	if (!nkeys) {
		error_set("no key given");
		ret = ERR_INVALID;
		goto out;
	}
	if (data.len + added.len > KEYS_FILE_MAX) {
		error_set("too many keys");
		goto out;
	}
	buf_add(&data, added.data, added.len);
	if (write_keys(root, &data) < 0)
		goto out;
	buf_add(out, msgs.data, msgs.len);
	ret = 0;
out:
	keys_line_release(&k);
	keys_line_release(&other);
	strv_release(&names);
	buf_release(&data);
	buf_release(&added);
	buf_release(&msgs);
	return ret;
}

int keys_add(const char *root, const char *text, int admin, struct buf *out)
{
	return keys_add_named(root, text, NULL, admin, out);
}

int keys_remove(const char *root, const char *name, struct buf *out)
{
	struct buf data = BUF_INIT, kept = BUF_INIT, msgs = BUF_INIT;
	struct line_iter it;
	struct keys_line k;
	const char *line;
	size_t len;
	int ret = -1, removed = 0;

	if (!name_ok(name)) {
		error_set("invalid key name");
		ret = ERR_INVALID;
		goto out;
	}
	if (read_keys(root, &data) < 0)
		goto out;
	line_iter_init(&it, data.data, data.len);
	while (line_iter_next(&it, &line, &len)) {
		if (keys_line_parse(&k, line, len) == 0) {
			int match = !strcmp(k.name, name);

			if (match)
				buf_addf(&msgs, "removed %s (%s)\n", k.name,
					 k.fingerprint);
			keys_line_release(&k);
			if (match) {
				removed++;
				continue;
			}
		}
		buf_add(&kept, line, len);
		buf_addstr(&kept, "\n");
	}
	if (!removed) {
		error_set("no key named '%s'", name);
		ret = ERR_NOTFOUND;
		goto out;
	}
	if (write_keys(root, &kept) < 0)
		goto out;
	buf_add(out, msgs.data, msgs.len);
	ret = 0;
out:
	buf_release(&data);
	buf_release(&kept);
	buf_release(&msgs);
	return ret;
}
