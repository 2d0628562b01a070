/*
 * paths: where an installed berth finds the files it ships with (the
 * built-in buildpacks, the example hooks).  An install keeps them in
 * PREFIX/share/berth; a build tree keeps them next to the source.
 *
 * paths_share_dirs() fills out with the folders to try, best first:
 * BINDIR/../share/berth of the running binary (so a relocated or
 * DESTDIR install works), the prefix compiled in (BERTH_DATADIR, from
 * the Makefile's PREFIX), then the build tree (the binary's own folder
 * and its parent).  Fresh strings, caller releases out.  Never fails;
 * folders that do not exist are left in, callers test what they need.
 */
#ifndef BERTH_PATHS_H
#define BERTH_PATHS_H

#include "util.h"

void paths_share_dirs(struct strv *out);
/* The compiled-in data folder, e.g. "/usr/share/berth". */
const char *paths_datadir(void);

#endif
