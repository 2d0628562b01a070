/* enginepath: see enginepath.h. */
#include "enginepath.h"

#include <stdarg.h>
#include <stdlib.h>

#include "engine.h"
#include "spawn.h"
#include "util.h"
#include "banned.h"

char *engine_path(const struct engine *e, const char *fmt, ...)
{
	va_list ap;
	char *rel, *p;

	va_start(ap, fmt);
	rel = xvasprintf(fmt, ap);
	va_end(ap);
	p = xasprintf("%s/%s", e->cfg->root, rel);
	free(rel);
	return p;
}

void engine_spawn_as_app_user(const struct engine *e, struct spawn *s)
{
	if (!e->drop_priv)
		return;
	s->flags |= SPAWN_DROP_PRIV;
	s->uid = e->run_uid;
	s->gid = e->run_gid;
}
