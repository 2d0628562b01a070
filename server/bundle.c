/* bundle: placeholder until the real subsystem lands; fails cleanly. */
#include <stdlib.h>

#include "bundle.h"
#include "util.h"

#define NOT_YET(what) error_set("%s is not available yet", what)

int bundle_unpack(const char *tarball, const char *dest) { return NOT_YET("bundle_unpack"); }
int bundle_pack(const char *srcdir, const char *tarball) { return NOT_YET("bundle_pack"); }
