/* postgres: placeholder until the real subsystem lands; fails cleanly. */
#include <stdlib.h>

#include "postgres.h"
#include "util.h"

#define NOT_YET(what) error_set("%s is not available yet", what)

int postgres_init(struct postgres **out, const struct config *cfg, struct loop *l) { *out = NULL; return 0; }
int postgres_provision(struct postgres *pg, const char *app, char **url) { return NOT_YET("postgres"); }
int postgres_drop(struct postgres *pg, const char *app) { return NOT_YET("postgres"); }
int postgres_info(struct postgres *pg, const char *app, struct buf *out) { return NOT_YET("postgres"); }
void postgres_shutdown(struct postgres *pg) { }
void postgres_free(struct postgres *pg) { }
