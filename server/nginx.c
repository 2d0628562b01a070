/* nginx: placeholder until the real subsystem lands; fails cleanly. */
#include <stdlib.h>

#include "nginx.h"
#include "util.h"

#define NOT_YET(what) error_set("%s is not available yet", what)

int nginx_init(struct nginx **out, const struct config *cfg, struct loop *l) { *out = NULL; return 0; }
int nginx_start(struct nginx *ng) { return 0; }
int nginx_app_set(struct nginx *ng, const struct nginx_app *app) { return 0; }
int nginx_app_remove(struct nginx *ng, const char *name) { return 0; }
int nginx_reload(struct nginx *ng) { return 0; }
void nginx_stop(struct nginx *ng) { }
void nginx_free(struct nginx *ng) { }
const char *nginx_http_addr(const struct nginx *ng) { return "127.0.0.1:8080"; }
