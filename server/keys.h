/*
 * keys: ROOT/keys/authorized_keys, in OpenSSH's line format (options,
 * type, base64 key, comment).  The comment names the user.  A key whose
 * options include berth's own "berth-admin" marker may manage keys over
 * SSH; the local CLI (root on the host) always may.  Every change is
 * written atomically.
 */
#ifndef BERTH_KEYS_H
#define BERTH_KEYS_H

#include "util.h"

/* Add keys from 'text' (one or more lines); 'admin' marks them admins.
 * Prints "added KEY-NAME (FINGERPRINT)" lines into out. A malformed line or
 * a key already present is an error and nothing is written. */
int keys_add(const char *root, const char *text, int admin, struct buf *out);
/* One line per key: name, type, fingerprint, admin. */
int keys_list(const char *root, struct buf *out);
/* Remove every key whose name (comment) is 'name'; ERR_NOTFOUND if none. */
int keys_remove(const char *root, const char *name, struct buf *out);

#endif
