/*
 * keys: ROOT/keys/authorized_keys, in OpenSSH's line format (options,
 * type, base64 key, comment).  The comment names the user; names are
 * unique (a later line with a name already used is refused when loaded).
 * A key whose options include berth's own "berth-admin" marker may manage
 * keys over SSH; the local CLI (root on the host) always may.  Every
 * change is written atomically.
 *
 * Options (names case-insensitive, values in double quotes, as OpenSSH):
 *   from="PATTERNS"     honoured: the client address must match, as
 *                       OpenSSH matches it with UseDNS off: comma-separated
 *                       addresses, CIDR blocks (10.0.0.0/8, 2001:db8::/32),
 *                       globs on the address text (192.168.1.*), each
 *                       negated by a leading '!' (a negated match refuses);
 *                       host names cannot match an address and are refused
 *   expiry-time="T"     honoured: YYYYMMDD[HHMM[SS]], local time, or UTC
 *                       with a trailing Z; the key is refused after it
 *   restrict, no-pty    honoured: no terminal (ssh -t run/pg:psql get
 *                       none); a later "pty" allows it again, as OpenSSH
 *   no-port-forwarding, no-agent-forwarding, no-X11-forwarding,
 *   no-user-rc, and port-forwarding, agent-forwarding, X11-forwarding,
 *   user-rc, no-touch-required:
 *                       honoured as they are: berth offers no forwarding
 *                       of any kind and no rc files, whatever a line says
 *   berth-admin         berth's own admin marker
 * Any other option (command=, environment=, permitopen=, permitlisten=,
 * principals=, tunnel=, cert-authority, verify-required, or an unknown
 * one) refuses the whole line when it is loaded, with a log line: a key
 * never gets more than its line says.
 */
#ifndef BERTH_KEYS_H
#define BERTH_KEYS_H

#include <time.h>

#include <libssh/libssh.h>

#include "util.h"

#define KEYS_FILE "keys/authorized_keys"	/* under the state directory */
#define KEYS_ADMIN_OPTION "berth-admin"
#define KEYS_LINE_MAX 16384
#define KEYS_FILE_MAX (1024 * 1024)
#define KEYS_NAME_MAX 64
#define KEYS_FROM_MAX 1024	/* longest from= pattern list */

/*
 * Add keys from 'text' (one or more lines, each may carry the options
 * above except berth-admin); 'admin' marks them admins.  'name' (may be
 * NULL) names the one key given instead of its comment.  Prints "added
 * KEY-NAME (FINGERPRINT)" lines into out.  A malformed line, an option
 * berth cannot honour, a key already present (ERR_INVALID) or a name
 * already in use (ERR_EXISTS: "a key named 'alice' already exists") is
 * an error and nothing is written.
 */
int keys_add_named(const char *root, const char *text, const char *name,
		   int admin, struct buf *out);
/* keys_add_named() with the names from the comments. */
int keys_add(const char *root, const char *text, int admin, struct buf *out);
/* One line per key: name, type, fingerprint, then "admin",
 * "from=PATTERNS", "expires=TIME" where they apply. */
int keys_list(const char *root, struct buf *out);
/* The same for programs: one "key=NAME type=TYPE fingerprint=FP
 * admin=0|1 from=0|1 expires=EPOCH" a key (expires=0: never; every value
 * is one word), pushed onto out. */
int keys_list_fields(const char *root, struct strv *out);
/* Remove every key whose name (comment) is 'name'; ERR_NOTFOUND if none. */
int keys_remove(const char *root, const char *name, struct buf *out);

/*
 * One parsed authorized_keys line.  'name' is the comment when that is one
 * word of [A-Za-z0-9._@+-] (at most KEYS_NAME_MAX bytes, not starting with
 * '-'), else "key-" and 8 hex digits of the key's SHA-256, so every key
 * has a name that is safe to print and to type in "keys rm NAME".
 * The struct owns everything in it; keys_line_release() frees it.
 */
struct keys_line {
	char *type;		/* "ssh-ed25519" */
	char *b64;		/* the key blob, base64 as in the file */
	char *comment;		/* NULL when the line has none */
	char *name;
	char *fingerprint;	/* "SHA256:..." as ssh-keygen -l prints it */
	int has_options;
	int admin;		/* KEYS_ADMIN_OPTION among the options */
	int no_pty;		/* restrict or no-pty (and no later pty) */
	char *options;		/* the options as written, NULL when none */
	char *from;		/* from= patterns, NULL when none */
	time_t expiry;		/* expiry-time=, 0 when none */
	ssh_key key;
};

/*
 * Parse one line (without its newline).  0 and *k filled; 1 for a blank
 * or '#' line (*k empty); ERR_INVALID for anything else, error_last()
 * says why ("unknown key type 'foo'").  Certificates are refused.
 */
int keys_line_parse(struct keys_line *k, const char *line, size_t len);
void keys_line_release(struct keys_line *k);

/*
 * May the key of line k be used at 'now' by a client at 'addr' (numeric
 * IPv4 or IPv6, IPv4-mapped IPv6 taken as IPv4; NULL when unknown)?  0
 * yes; ERR_INVALID no, with error_last() saying why ("key 'alice' is not
 * allowed from 192.0.2.7", "key 'alice' expired at 2025-01-01T00:00:00Z").
 * A key with from= is refused when the address is unknown.
 */
int keys_line_permits(const struct keys_line *k, const char *addr,
		      time_t now);

/*
 * from= matching on its own: 1 if 'addr' matches some pattern of the list
 * and no negated one, 0 if not (or addr is NULL), ERR_INVALID if the list
 * is malformed (empty patterns, bad CIDR, host names, odd characters).
 */
int keys_from_match(const char *patterns, const char *addr);

/*
 * Look 'key' up in ROOT/keys/authorized_keys (read afresh each call; bad
 * lines, refused options and repeated names are skipped with a log line)
 * for a client at 'addr' (as keys_line_permits).  0 on a match with *user
 * (caller frees) the line's name and *admin set; ERR_NOTFOUND if no line
 * has it; ERR_INVALID if its line does not permit it now or from there
 * (error_last() says why); -1 if the file cannot be read (a missing file
 * is ERR_NOTFOUND).
 */
int keys_match_from(const char *root, const ssh_key key, const char *addr,
		    char **user, int *admin);
/* The same, and *no_pty set when the line forbids a terminal. */
int keys_match_opts(const char *root, const ssh_key key, const char *addr,
		    char **user, int *admin, int *no_pty);
/*
 * keys_match_opts() for a key given as its type name and base64 blob
 * ("ssh-ed25519", "AAAA..."), compared as text with each line's, which
 * keys_line_parse() only takes in its canonical form: the text is never
 * decoded (a session's root half matches what its berth-ssh half sends).
 */
int keys_match_text(const char *root, const char *type, const char *b64,
		    const char *addr, char **user, int *admin, int *no_pty);
/* keys_match_from() with no address known: keys with from= never match. */
int keys_match(const char *root, const ssh_key key, char **user, int *admin);

/* "SHA256:..." of a key into *out (caller frees); -1 on failure. */
int keys_fingerprint(const ssh_key key, char **out);

#endif
