/* manifest: placeholder until the real subsystem lands; fails cleanly. */
#include <stdlib.h>

#include "manifest.h"
#include "util.h"

#define NOT_YET(what) error_set("%s is not available yet", what)

void manifest_init(struct manifest *m) { (void)m; }
void manifest_release(struct manifest *m) { (void)m; }
int manifest_load(struct manifest *m, const char *dir) { return NOT_YET("manifest_load"); }
int manifest_parse_procfile(struct manifest *m, const char *buf, size_t len, const char *fname) { return NOT_YET("procfile"); }
int manifest_parse_app_yaml(struct manifest *m, const char *buf, size_t len, const char *fname) { return NOT_YET("app.yaml"); }
int manifest_parse_keter(struct manifest *m, const char *buf, size_t len, const char *fname, const char *dir) { return NOT_YET("keter"); }
int manifest_parse_release_yaml(struct manifest *m, const char *buf, size_t len) { return NOT_YET("release yaml"); }
const struct proc_spec *manifest_proc(const struct manifest *m, const char *type) { return NULL; }
int proc_type_valid(const char *type) { return 0; }
int host_name_valid(const char *host) { return 0; }
