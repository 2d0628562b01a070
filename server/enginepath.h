/*
 * enginepath: what every file of the engine asks of it for paths and
 * users, kept below all of them so that none calls up into engine.c:
 * a path under the state root, and the user app programs run as.  Both
 * read struct engine (engine.h) only; nothing blocks, nothing fails.
 */
#ifndef BERTH_ENGINEPATH_H
#define BERTH_ENGINEPATH_H

struct engine;
struct spawn;

/* A path under the state directory (fresh string, caller frees). */
char *engine_path(const struct engine *e, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* With "user:" set, make s run as that user (apps, release commands). */
void engine_spawn_as_app_user(const struct engine *e, struct spawn *s);

#endif
