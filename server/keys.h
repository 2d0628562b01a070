/*
 * keys: ROOT/keys/authorized_keys, in OpenSSH's line format (options,
 * type, base64 key, comment).  The comment names the user.  A key whose
 * options include berth's own "berth-admin" marker may manage keys over
 * SSH; the local CLI (root on the host) always may.  Every change is
 * written atomically.
 */
#ifndef BERTH_KEYS_H
#define BERTH_KEYS_H

#include <libssh/libssh.h>

#include "util.h"

#define KEYS_FILE "keys/authorized_keys"	/* under the state directory */
#define KEYS_ADMIN_OPTION "berth-admin"
#define KEYS_LINE_MAX 16384
#define KEYS_FILE_MAX (1024 * 1024)
#define KEYS_NAME_MAX 64

/* Add keys from 'text' (one or more lines); 'admin' marks them admins.
 * Prints "added KEY-NAME (FINGERPRINT)" lines into out. A malformed line or
 * a key already present is an error and nothing is written. */
int keys_add(const char *root, const char *text, int admin, struct buf *out);
/* One line per key: name, type, fingerprint, admin. */
int keys_list(const char *root, struct buf *out);
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
 * Look 'key' up in ROOT/keys/authorized_keys (read afresh each call; bad
 * lines are skipped).  0 on a match with *user (caller frees) the line's
 * name and *admin set; ERR_NOTFOUND if no line has it; -1 if the file
 * cannot be read (a missing file is ERR_NOTFOUND).
 */
int keys_match(const char *root, const ssh_key key, char **user, int *admin);

/* "SHA256:..." of a key into *out (caller frees); -1 on failure. */
int keys_fingerprint(const ssh_key key, char **out);

#endif
