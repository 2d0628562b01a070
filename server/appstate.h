/*
 * appstate: the format of ROOT/apps/NAME/state, what the engine keeps of
 * an app between runs.  "key value" lines:
 *
 *   release N        the live release (0: none yet)
 *   next N           the last release number handed out
 *   stopped 0|1      stopped by the user
 *   scale TYPE=N     a process count (one line per type; N 0..100)
 *   slot PORT        the app's nginx slot ports, two per web process
 *   result ok|failed the last deploy's outcome
 *   reason TEXT      why it failed (one line), shown by "apps"
 *
 * The file is written by the engine, but a disk, an editor or an older
 * berth can leave anything there: the parser takes all of it or nothing,
 * and says which line it could not use.  Unknown keys are skipped (a
 * newer berth may add some).
 */
#ifndef BERTH_APPSTATE_H
#define BERTH_APPSTATE_H

#include <stddef.h>

#include "util.h"

#define APPSTATE_MAX (1 << 20)	/* bytes of a state file */
#define APPSTATE_MAX_SLOTS 400	/* 2 per web process, 100 processes... twice */

struct appstate {
	int release;
	int next;
	int stopped;
	struct strv scale;	/* "type=N" */
	int *slots;
	size_t nslots;
	char *result;		/* or NULL */
	char *reason;		/* or NULL */
};

void appstate_init(struct appstate *st);
void appstate_release(struct appstate *st);

/* Parse buf into st (which must be fresh).  On error st is released and
 * error_last() names the line: "line 3: bad slot '70000'". */
int appstate_parse(struct appstate *st, const char *buf, size_t len);
/* The file's text for st (appended to out). */
void appstate_render(const struct appstate *st, struct buf *out);

#endif
