/* gitsvc: placeholder until the real subsystem lands; fails cleanly. */
#include <stdlib.h>

#include "gitsvc.h"
#include "util.h"

int git_parse_command(const char *cmdline, enum git_service *svc, char **app) { return ERR_NOTFOUND; }
int git_receive_pack(const struct config *cfg, const char *app, const char *pusher, struct git_io *io) { error_set("receive-pack is not available yet"); return 1; }
int git_upload_pack(const struct config *cfg, const char *app, struct git_io *io) { error_set("upload-pack is not available yet"); return 1; }
int gitsvc_stdio_main(const struct config *cfg, const char *cmdline) { error_set("git service is not available yet"); return 1; }
