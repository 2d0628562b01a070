/* health: placeholder until the real subsystem lands; fails cleanly. */
#include <stdlib.h>

#include "health.h"
#include "util.h"

#define NOT_YET(what) error_set("%s is not available yet", what)

int health_init(struct loop *l) { return 0; }
void health_shutdown(void) { }
struct health *health_start(const struct health_req *req, health_fn fn, void *arg) { NOT_YET("health"); return NULL; }
void health_cancel(struct health *h) { }
