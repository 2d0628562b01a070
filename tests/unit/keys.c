/* keys: authorized_keys parsing, matching and atomic edits. */
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "keys.h"
#include "tap.h"
#include "util.h"
#include "banned.h"

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
	ssh_key ka, kb, kc, kd, ke, kf, kg, kh;
	char *a = pub_b64(&ka), *b = pub_b64(&kb), *c = pub_b64(&kc);
	char *d = pub_b64(&kd), *e = pub_b64(&ke), *f = pub_b64(&kf);
	char *g = pub_b64(&kg), *h = pub_b64(&kh);
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

	line = xasprintf("command=\"echo a, b\",no-pty ssh-ed25519 %s bob\r", a);
	ok(parse(&k, line) == ERR_INVALID &&
	   !strcmp(error_last(), "key option 'command' cannot be honoured by berth"),
	   "quoted options with blanks and commas; command= refused: %s",
	   error_last());
	free(line);

	line = xasprintf("from=\"10.0.0.0/8,192.168.1.*\",berth-admin,no-pty ssh-ed25519 %s bob\r", a);
	ok(parse(&k, line) == 0 && k.admin && !strcmp(k.name, "bob") &&
	   k.from && !strcmp(k.from, "10.0.0.0/8,192.168.1.*") &&
	   k.options && !strcmp(k.options,
	   "from=\"10.0.0.0/8,192.168.1.*\",berth-admin,no-pty"),
	   "from= and the admin marker; CR dropped");
	keys_line_release(&k);
	free(line);

	line = xasprintf("no-pty,berth-admins ssh-ed25519 %s bob", a);
	ok(parse(&k, line) == ERR_INVALID &&
	   !strcmp(error_last(), "unknown key option 'berth-admins'"),
	   "marker must match exactly; an unknown option refuses the line");
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

	/* options */
	{
		static const char *const refused[] = {
			"command=\"ls\"", "environment=\"A=b\"",
			"permitopen=\"localhost:80\"",
			"permitlisten=\"8080\"", "principals=\"root\"",
			"tunnel=\"0\"", "cert-authority", "verify-required",
			"no-pty,Command=\"ls\"",
		};
		static const char *const honoured[] = {
			"restrict", "no-pty,no-port-forwarding,no-agent-forwarding,no-X11-forwarding,no-user-rc",
			"restrict,pty,port-forwarding,agent-forwarding,X11-forwarding,user-rc",
			"no-touch-required", "FROM=\"1.2.3.4\"",
			"expiry-time=\"20991231\"", "expiry-time=\"209912312359Z\"",
			"expiry-time=\"20991231235959\"",
			"from=\"!10.0.0.1,10.0.0.0/8,2001:db8::/32,::1\"",
		};
		static const char *const bad[] = {
			"from=1.2.3.4", "from=\"\"", "from=\"1.2.3.4,\"",
			"from=\"!\"", "from=\"host.example.com\"",
			"from=\"*.example.com\"", "from=\"10.0.0.1/8\"",
			"from=\"10.0.0.0/33\"", "from=\"1.2.3.4 \"",
			"from=\"1.2.3.4\",from=\"5.6.7.8\"",
			"expiry-time=\"20250231\"", "expiry-time=\"2025\"",
			"expiry-time=\"20251301\"", "expiry-time=\"20250101X\"",
			"frobnicate", "no-pty,,restrict", "restrict,",
			"from=\"1.2.3.4\"x",
		};
		size_t i;
		int all = 1;

		for (i = 0; i < ARRAY_SIZE(refused); i++) {
			line = xasprintf("%s ssh-ed25519 %s x", refused[i], a);
			if (parse(&k, line) != ERR_INVALID ||
			    !strstr(error_last(), "cannot be honoured by berth")) {
				printf("# not refused: %s\n", refused[i]);
				all = 0;
			}
			free(line);
		}
		ok(all, "options berth cannot honour refuse the line");
		all = 1;
		for (i = 0; i < ARRAY_SIZE(honoured); i++) {
			line = xasprintf("%s ssh-ed25519 %s x", honoured[i], a);
			if (parse(&k, line) != 0) {
				printf("# refused: %s: %s\n", honoured[i],
				       error_last());
				all = 0;
			} else {
				keys_line_release(&k);
			}
			free(line);
		}
		ok(all, "options berth honours are accepted");
		all = 1;
		for (i = 0; i < ARRAY_SIZE(bad); i++) {
			line = xasprintf("%s ssh-ed25519 %s x", bad[i], a);
			if (parse(&k, line) != ERR_INVALID) {
				printf("# accepted: %s\n", bad[i]);
				keys_line_release(&k);
				all = 0;
			}
			free(line);
		}
		ok(all, "malformed options refused");
	}
	line = xasprintf("from=\"*.example.com\" ssh-ed25519 %s x", a);
	ok(parse(&k, line) == ERR_INVALID && strstr(error_last(), "names hosts"),
	   "host names: %s", error_last());
	free(line);
	line = xasprintf("expiry-time=\"20200101Z\" ssh-ed25519 %s x", a);
	ok(parse(&k, line) == 0 && k.expiry == 1577836800,
	   "expiry-time in UTC");
	ok(keys_line_permits(&k, "1.2.3.4", 1577836799) == 0,
	   "a second before: permitted");
	ok(keys_line_permits(&k, "1.2.3.4", 1577836801) == ERR_INVALID &&
	   !strcmp(error_last(), "key 'x' expired at 2020-01-01T00:00:00Z"),
	   "after: %s", error_last());
	keys_line_release(&k);
	free(line);
	line = xasprintf("from=\"10.0.0.0/8\" ssh-ed25519 %s x", a);
	ok(parse(&k, line) == 0 && keys_line_permits(&k, "10.1.2.3", 0) == 0,
	   "from=: an address inside");
	ok(keys_line_permits(&k, "11.1.2.3", 0) == ERR_INVALID &&
	   !strcmp(error_last(), "key 'x' is not allowed from 11.1.2.3"),
	   "from=: outside: %s", error_last());
	ok(keys_line_permits(&k, NULL, 0) == ERR_INVALID &&
	   strstr(error_last(), "an unknown address"),
	   "from=: no address known: refused");
	keys_line_release(&k);
	free(line);

	/* from= matching, as OpenSSH with UseDNS off */
	ok(keys_from_match("10.0.0.0/8", "10.2.3.4") == 1 &&
	   keys_from_match("10.0.0.0/8", "11.0.0.1") == 0, "CIDR");
	ok(keys_from_match("10.0.0.0/8,!10.1.2.3", "10.1.2.3") == 0 &&
	   keys_from_match("10.0.0.0/8,!10.1.2.3", "10.1.2.4") == 1 &&
	   keys_from_match("!10.1.2.3,10.0.0.0/8", "10.1.2.3") == 0,
	   "a negated match refuses, in any order");
	ok(keys_from_match("!10.1.2.3", "10.9.9.9") == 0,
	   "only negations: nothing matches");
	ok(keys_from_match("192.168.1.*", "192.168.1.77") == 1 &&
	   keys_from_match("192.168.1.?", "192.168.1.77") == 0 &&
	   keys_from_match("192.168.1.??", "192.168.1.77") == 1 &&
	   keys_from_match("*", "2001:db8::1") == 1, "globs on the address");
	ok(keys_from_match("2001:db8::/32", "2001:db8:1::5") == 1 &&
	   keys_from_match("2001:db8::/32", "2001:db9::1") == 0 &&
	   keys_from_match("::1", "::1") == 1 &&
	   keys_from_match("2001:DB8::1", "2001:db8::1") == 1, "IPv6");
	ok(keys_from_match("127.0.0.1", "::ffff:127.0.0.1") == 1 &&
	   keys_from_match("127.0.0.0/8", "::ffff:127.0.0.5") == 1 &&
	   keys_from_match("127.0.0.*", "::ffff:127.0.0.5") == 1,
	   "IPv4-mapped IPv6 addresses are IPv4");
	ok(keys_from_match("0.0.0.0/0", "8.8.8.8") == 1 &&
	   keys_from_match("::/0", "8.8.8.8") == 0, "zero-length prefixes");
	ok(keys_from_match("10.0.0.0/8", NULL) == 0 &&
	   keys_from_match("10.0.0.0/8", "not-an-address") == 0,
	   "no address, no match");
	ok(keys_from_match("10.0.0.0/8,foo", "10.1.1.1") == ERR_INVALID,
	   "a bad pattern spoils the list");

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
	{
		struct strv tf = STRV_INIT;
		size_t i, seen = 0;

		ok(keys_list_fields(root, &tf) == 0 && tf.n == 3,
		   "one typed line a key");
		for (i = 0; i < tf.n; i++)
			if (!strncmp(tf.v[i], "key=alice type=ssh-ed25519 fingerprint=SHA256:", 46) &&
			    strstr(tf.v[i], " admin=0 from=0 expires=0"))
				seen |= 1;
			else if (!strncmp(tf.v[i], "key=carol ", 10) &&
				 strstr(tf.v[i], " admin=1 "))
				seen |= 2;
		ok(seen == 3, "typed lines: name, type, fingerprint, admin");
		strv_release(&tf);
	}
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
	   strstr(error_last(), "use --admin"), "the admin marker refused: %s",
	   error_last());
	free(line);
	line = xasprintf("command=\"ls\" ssh-ed25519 %s dave", d);
	ok(keys_add(root, line, 0, &out) == ERR_INVALID &&
	   !strcmp(error_last(), "key option 'command' cannot be honoured by berth"),
	   "command= refused: %s", error_last());
	free(line);
	line = xasprintf("ssh-ed25519 %s alice", d);
	ok(keys_add(root, line, 0, &out) == ERR_EXISTS &&
	   !strcmp(error_last(), "a key named 'alice' already exists"),
	   "a name in use refused: %s", error_last());
	free(line);
	line = xasprintf("ssh-ed25519 %s whatever", d);
	ok(keys_add_named(root, line, "alice", 0, &out) == ERR_EXISTS,
	   "a name in use refused with a name given too");
	ok(keys_add_named(root, line, "a b", 0, &out) == ERR_INVALID &&
	   strstr(error_last(), "invalid key name"), "a bad name refused");
	free(line);
	line = xasprintf("ssh-ed25519 %s x1\nssh-ed25519 %s x2\n", d, e);
	ok(keys_add_named(root, line, "dave", 0, &out) == ERR_INVALID &&
	   !strcmp(error_last(), "a name is for one key, not 2"),
	   "one name, two keys: refused");
	free(line);
	line = xasprintf("ssh-ed25519 %s same\nssh-ed25519 %s same\n", d, e);
	ok(keys_add(root, line, 0, &out) == ERR_EXISTS &&
	   !strcmp(error_last(), "line 2: a key named 'same' already exists"),
	   "two new keys, one name: %s", error_last());
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

	/* names given, options kept */
	line = xasprintf("ssh-ed25519 %s John's laptop", d);
	buf_reset(&out);
	ok(keys_add_named(root, line, "dave", 0, &out) == 0 && out.data &&
	   !strncmp(out.data, "added dave (SHA256:", 19), "add with a name");
	free(line);
	ok(keys_match(root, kd, &user, &admin) == 0 && !strcmp(user, "dave"),
	   "it matches by that name");
	FREE_AND_NULL(user);
	line = xasprintf("from=\"127.0.0.0/8\",expiry-time=\"20991231Z\" ssh-ed25519 %s erin", e);
	buf_reset(&out);
	ok(keys_add(root, line, 1, &out) == 0, "add an admin key with options");
	free(line);
	ok(read_file(&file, path, 1 << 20) == 0 &&
	   strstr(file.data, "\nberth-admin,from=\"127.0.0.0/8\",expiry-time=\"20991231Z\" ssh-ed25519 "),
	   "written with the admin marker before its options");
	buf_release(&file);
	buf_reset(&out);
	ok(keys_list(root, &out) == 0 && out.data &&
	   strstr(out.data, " admin from=127.0.0.0/8 expires=2099-12-31T00:00:00Z\n"),
	   "list shows from= and the expiry");
	ok(keys_match_from(root, ke, "127.0.0.1", &user, &admin) == 0 &&
	   admin == 1 && !strcmp(user, "erin"), "erin from 127.0.0.1");
	FREE_AND_NULL(user);
	ok(keys_match_from(root, ke, "::ffff:127.0.0.1", &user, &admin) == 0,
	   "and from its IPv4-mapped form");
	FREE_AND_NULL(user);
	ok(keys_match_from(root, ke, "10.0.0.1", &user, &admin) == ERR_INVALID &&
	   !user && !strcmp(error_last(), "key 'erin' is not allowed from 10.0.0.1"),
	   "not from 10.0.0.1: %s", error_last());
	ok(keys_match(root, ke, &user, &admin) == ERR_INVALID && !user,
	   "nor from an unknown address");

	/* lines edited by hand: refused options, repeated names, expired */
	buf_init(&file, 0);
	ok(read_file(&file, path, 1 << 20) == 0, "read file");
	before = xasprintf("%scommand=\"ls\" ssh-ed25519 %s frank\n"
			   "ssh-ed25519 %s dave\n"
			   "expiry-time=\"20200101\" ssh-ed25519 %s harry\n",
			   file.data, f, g, h);
	ok(write_file_atomic(path, before, strlen(before), 0600) == 0,
	   "append lines by hand");
	free(before);
	buf_release(&file);
	ok(keys_match_from(root, kf, "127.0.0.1", &user, &admin) == ERR_NOTFOUND,
	   "a key with command= never matches");
	ok(keys_match_from(root, kg, "127.0.0.1", &user, &admin) == ERR_NOTFOUND,
	   "a second key named dave never matches");
	ok(keys_match_from(root, kd, "127.0.0.1", &user, &admin) == 0 &&
	   !strcmp(user, "dave"), "the first dave still does");
	FREE_AND_NULL(user);
	ok(keys_match_from(root, kh, "127.0.0.1", &user, &admin) == ERR_INVALID &&
	   strstr(error_last(), "key 'harry' expired at 2020-01-0"),
	   "an expired key: %s", error_last());
	buf_reset(&out);
	ok(keys_list(root, &out) == 0 && !strstr(out.data, "frank") &&
	   strstr(out.data, "harry"), "list skips the refused line");

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
	free(d);
	free(e);
	free(f);
	free(g);
	free(h);
	ssh_key_free(kd);
	ssh_key_free(ke);
	ssh_key_free(kf);
	ssh_key_free(kg);
	ssh_key_free(kh);
	ssh_key_free(ka);
	ssh_key_free(kb);
	ssh_key_free(kc);
	return tap_done();
}
