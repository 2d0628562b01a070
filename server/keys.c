/* keys: see keys.h. */
#include "keys.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"

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
	if (k->key)
		ssh_key_free(k->key);
	memset(k, 0, sizeof(*k));
}

/*
 * Options run to the first blank outside double quotes; inside quotes a
 * backslash escapes the next character (OpenSSH's auth-options.c rules).
 * Returns the end of the field, or NULL for an unterminated quote.
 */
static char *options_end(char *p, int *admin)
{
	char *opt = p;
	int quoted = 0;

	*admin = 0;
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
		if (*p == ',' || !*p || is_blank(*p)) {
			if ((size_t)(p - opt) == strlen(KEYS_ADMIN_OPTION) &&
			    !memcmp(opt, KEYS_ADMIN_OPTION, (size_t)(p - opt)))
				*admin = 1;
			if (*p != ',')
				return p;
			opt = p + 1;
		}
	}
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
		end = options_end(p, &k->admin);
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
		if (first && !k->admin && !strchr(first, '='))
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

int keys_match(const char *root, const ssh_key key, char **user, int *admin)
{
	struct buf data = BUF_INIT;
	struct line_iter it;
	struct keys_line k;
	const char *line;
	size_t len;
	int ret = ERR_NOTFOUND, r;

	*user = NULL;
	*admin = 0;
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
			log_warnx("%s line %d: %s", KEYS_FILE, it.lineno,
				  error_last());
			continue;
		}
		if (!ssh_key_cmp(k.key, key, SSH_KEY_CMP_PUBLIC)) {
			*user = xstrdup(k.name);
			*admin = k.admin;
			ret = 0;
		}
		keys_line_release(&k);
	}
out:
	buf_release(&data);
	return ret;
}

int keys_list(const char *root, struct buf *out)
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
		buf_addf(out, "%s %s %s%s\n", k.name, k.type, k.fingerprint,
			 k.admin ? " admin" : "");
		keys_line_release(&k);
	}
	ret = 0;
out:
	buf_release(&data);
	return ret;
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

int keys_add(const char *root, const char *text, int admin, struct buf *out)
{
	struct buf data = BUF_INIT, added = BUF_INIT, msgs = BUF_INIT;
	struct line_iter it;
	struct keys_line k, other;
	const char *line, *dup;
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
	if (read_keys(root, &data) < 0)
		goto out;
	if (data.len && data.data[data.len - 1] != '\n')
		buf_addstr(&data, "\n");

	line_iter_init(&it, text, tlen);
	while (line_iter_next(&it, &line, &len)) {
		r = keys_line_parse(&k, line, len);
		if (r == 1)
			continue;
		if (r == 0 && k.has_options) {
			error_set("key options are not accepted (use --admin for an admin key)");
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
		if (r != 0) {
			if (nlines > 1) {
				char *msg = xstrdup(error_last());

				error_set("line %d: %s", it.lineno, msg);
				free(msg);
			}
			ret = r < 0 ? r : ERR_INVALID;
			goto out;
		}
		buf_addf(&added, "%s%s %s %s\n",
			 admin ? KEYS_ADMIN_OPTION " " : "", k.type, k.b64,
			 k.name);
		buf_addf(&msgs, "added %s (%s)\n", k.name, k.fingerprint);
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
	buf_release(&data);
	buf_release(&added);
	buf_release(&msgs);
	return ret;
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
