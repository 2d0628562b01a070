/* pipeline: placeholder until the real subsystem lands; fails cleanly. */
#include <stdlib.h>

#include "pipeline.h"
#include "util.h"

#define NOT_YET(what) error_set("%s is not available yet", what)

int pipeline_run(const struct pipeline_opts *o) { return NOT_YET("pipeline"); }
