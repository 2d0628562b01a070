/*
 * envdir: environment variables kept as files in a folder, the way
 * Server::Starter's --envdir reads them (after daemontools' envdir):
 * each file NAME whose name does not start with '.' sets NAME to the
 * file's first line, without its newline.  An empty file sets nothing.
 * A value stops at a NUL byte, as an environment string must.
 */
#ifndef BERTH_ENVDIR_H
#define BERTH_ENVDIR_H

#include <stddef.h>

#include "util.h"

/* A first line longer than this is refused (the kernel's limit for one
 * environment string is 128 KiB). */
#define ENVDIR_VALUE_MAX (64 * 1024)
/* Files read from one folder at most. */
#define ENVDIR_FILES_MAX 4096

/* Called with a one-line message for each file that is skipped. */
typedef void envdir_warn_fn(void *arg, const char *msg);

/*
 * Append "NAME=VALUE" for each variable in dir to out, sorted by name.
 * A folder that is missing or unreadable gives no variables (0), as in
 * the original; unreadable files are skipped silently, oversized ones
 * with a warning.  Blocks on the file system.
 */
int envdir_read(struct strv *out, const char *dir, envdir_warn_fn *warn,
		void *arg);

/*
 * The value a file's bytes give: its first line, cut at a NUL.  0 with
 * *out (the caller frees); ERR_NOTFOUND for an empty file (no value);
 * ERR_INVALID if the line passes ENVDIR_VALUE_MAX.
 */
int envdir_value(char **out, const char *data, size_t len);
/* 1 if a file of that name sets a variable: not empty, no leading '.',
 * no '='. */
int envdir_name_valid(const char *name);

#endif
