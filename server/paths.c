/*
 * paths: the install layout (see paths.h).
 */
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "paths.h"
#include "util.h"
#include "banned.h"

#ifndef BERTH_DATADIR
#define BERTH_DATADIR "/usr/local/share/berth"
#endif

const char *paths_datadir(void)
{
	return BERTH_DATADIR;
}

void paths_share_dirs(struct strv *out)
{
	char exe[PATH_MAX];
	char *slash;
	int have_exe = 0;

	/* The running binary, wherever it was installed or copied to. */
	if (realpath("/proc/self/exe", exe) && (slash = strrchr(exe, '/'))) {
		*slash = '\0';
		have_exe = 1;
		strv_pushf(out, "%s/../share/berth", exe);
	}
	strv_push(out, BERTH_DATADIR);
	if (have_exe) {
		/* a build tree: build/berth or ./berth next to buildpacks/ */
		strv_push(out, exe);
		strv_pushf(out, "%s/..", exe);
	}
}
