/*
 * privenv: the environment of a program that runs as root.
 *
 * Anything berth starts as root on an app's behalf (a server-wide hook
 * that berth.yaml marks privileged, and the like) gets a fixed,
 * allow-listed environment, as sudo's env_reset gives: the dynamic
 * loader's and libc's variables (LD_*, GCONV_PATH, LOCPATH, MALLOC_*,
 * GLIBC_TUNABLES, ...), the shell's (BASH_ENV, ENV, SHELLOPTS, PS4,
 * BASH_FUNC_*, IFS, ...) and every interpreter's (PERL5OPT, PYTHONPATH,
 * NODE_OPTIONS, RUBYOPT, ...) never get through, because nothing gets
 * through that is not on the list.  App config vars are not on it: a
 * privileged program that needs them reads the app's env file as data.
 *
 * Pure functions, no allocation beyond the strv they fill.
 */
#ifndef BERTH_PRIVENV_H
#define BERTH_PRIVENV_H

#include "util.h"

/* The fixed part; these names cannot be given other values. */
#define PRIVENV_PATH "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
#define PRIVENV_HOME "/root"
#define PRIVENV_LANG "C.UTF-8"
#define PRIVENV_SHELL "/bin/sh"

/*
 * 1 if 'name' (a variable name, without '=') is one berth passes on to a
 * privileged program from the environment it built for the app's
 * unprivileged steps: berth's own BERTH_APP, BERTH_COMMIT, BERTH_PUSHER,
 * BERTH_STEP, BERTH_RELEASE, BERTH_BUILD_DIR, BERTH_CACHE_DIR and the
 * buildpack API's SOURCE_VERSION and STACK (exact names, no prefixes);
 * else 0.
 */
int privenv_name_allowed(const char *name);

/*
 * Fill 'out' (empty or not: it is released first) with PATH, HOME, LANG,
 * SHELL, USER=root and LOGNAME=root set to the fixed values above, then
 * every "NAME=VALUE" of 'from' (may be NULL) whose NAME is allowed and
 * whose value has no newline, in the order given; a later duplicate
 * replaces an earlier one.  Everything else in 'from' is dropped without
 * a word (the caller's own environment is never consulted).
 */
void privenv_build(struct strv *out, char *const *from);

/*
 * Is the server hook STEP.d/NAME in 'list' (berth.yaml's privileged_hooks:
 * words "STEP.d/NAME" separated by spaces or commas; NULL: none)?  1 or 0.
 */
int privenv_hook_listed(const char *list, const char *step, const char *name);

#endif
