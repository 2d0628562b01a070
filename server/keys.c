/* keys: placeholder until the real subsystem lands; fails cleanly. */
#include <stdlib.h>

#include "keys.h"
#include "util.h"

#define NOT_YET(what) error_set("%s is not available yet", what)

int keys_add(const char *root, const char *text, int admin, struct buf *out) { return NOT_YET("keys"); }
int keys_list(const char *root, struct buf *out) { return NOT_YET("keys"); }
int keys_remove(const char *root, const char *name, struct buf *out) { return NOT_YET("keys"); }
