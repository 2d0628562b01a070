/* keys: authorized_keys parsing, matching and atomic edits. */
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "keys.h"
#include "tap.h"
#include "util.h"

static char *pub_b64(ssh_key *keyp)
{
	ssh_key key = NULL;
	char *b64 = NULL, *copy;

	if (ssh_pki_generate(SSH_KEYTYPE_ED25519, 0, &key) != SSH_OK ||
	    ssh_pki_export_pubkey_base64(key, &b64) != SSH_OK)
		abort();
	copy = xstrdup(b64);
	ssh_string_free_char(b64);
	*keyp = key;
	return copy;
}

static int parse(struct keys_line *k, const char *s)
{
	return keys_line_parse(k, s, strlen(s));
}

static mode_t mode_of(const char *path)
{
	struct stat st;

	if (stat(path, &st) < 0)
		return (mode_t)-1;
	return st.st_mode & 07777;
}

int main(void)
{
	struct keys_line k;
	ssh_key ka, kb, kc;
	char *a = pub_b64(&ka), *b = pub_b64(&kb), *c = pub_b64(&kc);
	char tmpl[] = "/tmp/berth-keys-XXXXXX";
	char *root, *line, *user = NULL, *path, *before;
	struct buf out = BUF_INIT, file = BUF_INIT;
	int admin = -1, r;

	/* parsing */
	line = xasprintf("ssh-ed25519 %s alice@laptop", a);
	ok(parse(&k, line) == 0, "plain line parses");
	ok(k.name && !strcmp(k.name, "alice@laptop"), "comment is the name");
	ok(k.type && !strcmp(k.type, "ssh-ed25519"), "type kept");
	ok(k.fingerprint && !strncmp(k.fingerprint, "SHA256:", 7) &&
	   strlen(k.fingerprint) == 50, "fingerprint as ssh-keygen -l");
	ok(!k.admin && !k.has_options, "no options, not admin");
	keys_line_release(&k);
	free(line);

	ok(parse(&k, "") == 1, "empty line skipped");
	ok(parse(&k, "   \t ") == 1, "blank line skipped");
	ok(parse(&k, "  # a comment") == 1, "comment line skipped");

	line = xasprintf("berth-admin ssh-ed25519 %s bob", a);
	ok(parse(&k, line) == 0 && k.admin && k.has_options, "admin marker");
	keys_line_release(&k);
	free(line);

	line = xasprintf("command=\"echo a, b\",berth-admin,no-pty ssh-ed25519 %s bob\r", a);
	ok(parse(&k, line) == 0 && k.admin && !strcmp(k.name, "bob"),
	   "quoted options with blanks and commas; CR dropped");
	keys_line_release(&k);
	free(line);

	line = xasprintf("no-pty,berth-admins ssh-ed25519 %s bob", a);
	ok(parse(&k, line) == 0 && !k.admin, "marker must match exactly");
	keys_line_release(&k);
	free(line);

	line = xasprintf("command=\"x ssh-ed25519 %s bob", a);
	ok(parse(&k, line) == ERR_INVALID &&
	   strstr(error_last(), "unterminated quote"), "unterminated quote");
	free(line);

	line = xasprintf("ssh-ed25519 %s John Smith's laptop", a);
	ok(parse(&k, line) == 0 && !strncmp(k.name, "key-", 4) &&
	   strlen(k.name) == 12 && !strcmp(k.comment, "John Smith's laptop"),
	   "multi-word comment gets a made-up name (%s)", k.name);
	keys_line_release(&k);
	free(line);

	line = xasprintf("ssh-ed25519 %s", a);
	ok(parse(&k, line) == 0 && !k.comment && !strncmp(k.name, "key-", 4),
	   "no comment gets a made-up name");
	keys_line_release(&k);
	free(line);

	ok(parse(&k, "ssh-foo AAAA bob") == ERR_INVALID &&
	   !strcmp(error_last(), "unknown key type 'ssh-foo'"),
	   "unknown type: %s", error_last());
	ok(parse(&k, "ssh-ed25519") == ERR_INVALID &&
	   strstr(error_last(), "missing key data"), "missing data");
	ok(parse(&k, "ssh-ed25519 !!!notbase64 bob") == ERR_INVALID &&
	   !strcmp(error_last(), "bad key data for 'ssh-ed25519'"),
	   "bad base64");
	line = xasprintf("ssh-rsa %s bob", a);
	ok(parse(&k, line) == ERR_INVALID, "type must match the blob");
	free(line);
	line = xasprintf("ssh-ed25519 %sAAAA bob", a);
	ok(parse(&k, line) == ERR_INVALID, "trailing data refused");
	free(line);
	line = xasprintf("ssh-ed25519-cert-v01@openssh.com %s bob", a);
	ok(parse(&k, line) == ERR_INVALID &&
	   strstr(error_last(), "unsupported key type"), "certificates refused");
	free(line);
	ok(keys_line_parse(&k, "ssh-ed25519 A\0B", 15) == ERR_INVALID,
	   "NUL byte refused");

	/* the file */
	root = mkdtemp(tmpl);
	ok(root != NULL, "temp root");
	path = xasprintf("%s/%s", root, KEYS_FILE);
	ok(keys_list(root, &out) == 0 && out.len == 0, "no file lists nothing");
	ok(keys_match(root, ka, &user, &admin) == ERR_NOTFOUND,
	   "no file matches nothing");

	line = xasprintf("ssh-ed25519 %s alice\n\n# ignored\nssh-ed25519 %s bob@host\n", a, b);
	buf_reset(&out);
	r = keys_add(root, line, 0, &out);
	ok(r == 0, "add two keys: %s", r ? error_last() : "");
	free(line);
	ok(out.data && strstr(out.data, "added alice (SHA256:") &&
	   strstr(out.data, "added bob@host (SHA256:"), "add reports each key");
	ok(mode_of(path) == 0600, "file mode 0600");
	before = xasprintf("%s/keys", root);
	ok(mode_of(before) == 0700, "dir mode 0700");
	free(before);

	line = xasprintf("ssh-ed25519 %s carol", c);
	buf_reset(&out);
	ok(keys_add(root, line, 1, &out) == 0, "add admin key");
	free(line);
	buf_reset(&out);
	ok(keys_list(root, &out) == 0 && out.data &&
	   strstr(out.data, "alice ssh-ed25519 SHA256:") &&
	   strstr(out.data, "carol ssh-ed25519 SHA256:") &&
	   strstr(out.data, " admin\n"), "list shows names, types, admin");
	ok(keys_match(root, ka, &user, &admin) == 0 && user &&
	   !strcmp(user, "alice") && admin == 0, "match alice, not admin");
	FREE_AND_NULL(user);
	ok(keys_match(root, kc, &user, &admin) == 0 && user &&
	   !strcmp(user, "carol") && admin == 1, "match carol, admin");
	FREE_AND_NULL(user);

	/* refusals change nothing */
	buf_init(&file, 0);
	ok(read_file(&file, path, 1 << 20) == 0, "read file");
	before = buf_detach(&file);
	line = xasprintf("ssh-ed25519 %s again", a);
	buf_reset(&out);
	ok(keys_add(root, line, 0, &out) == ERR_INVALID &&
	   strstr(error_last(), "already present as 'alice'"),
	   "duplicate refused: %s", error_last());
	free(line);
	line = xasprintf("berth-admin ssh-ed25519 %s x", a);
	ok(keys_add(root, line, 0, &out) == ERR_INVALID &&
	   strstr(error_last(), "options"), "options refused");
	free(line);
	ok(keys_add(root, "\n# nothing\n", 0, &out) == ERR_INVALID &&
	   !strcmp(error_last(), "no key given"), "empty input refused");
	ok(keys_add(root, "ssh-ed25519 AAAA x\nfoo\n", 0, &out) == ERR_INVALID &&
	   !strncmp(error_last(), "line 1: ", 8), "several lines: line number");
	ok(keys_remove(root, "nobody", &out) == ERR_NOTFOUND &&
	   !strcmp(error_last(), "no key named 'nobody'"), "remove unknown");
	ok(keys_remove(root, "a b\n", &out) == ERR_INVALID, "bad name refused");
	ok(read_file(&file, path, 1 << 20) == 0 && !strcmp(file.data, before),
	   "file unchanged after refusals");
	free(before);
	buf_release(&file);

	buf_reset(&out);
	ok(keys_remove(root, "alice", &out) == 0 && out.data &&
	   !strncmp(out.data, "removed alice (SHA256:", 22), "remove alice");
	ok(keys_match(root, ka, &user, &admin) == ERR_NOTFOUND,
	   "alice no longer matches");
	ok(keys_match(root, kb, &user, &admin) == 0 && user &&
	   !strcmp(user, "bob@host"), "bob still matches");
	FREE_AND_NULL(user);
	ok(mode_of(path) == 0600, "file mode still 0600");

	rm_rf(root);
	free(path);
	buf_release(&out);
	free(a);
	free(b);
	free(c);
	ssh_key_free(ka);
	ssh_key_free(kb);
	ssh_key_free(kc);
	return tap_done();
}
