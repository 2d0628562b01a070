/* sshd: placeholder until the real subsystem lands; fails cleanly. */
#include <stdlib.h>

#include "sshd.h"
#include "util.h"

#define NOT_YET(what) error_set("%s is not available yet", what)

int sshd_start(struct sshd **out, const struct config *cfg, struct loop *l, const char *self_exe) { *out = NULL; return 0; }
void sshd_stop(struct sshd *s) { }
int session_main(const struct config *cfg, int fd) { return 1; }
