/* fuzz-bundle-path: input is "NAME\0TARGET".  A name that passes
 * bundle_entry_path_ok() must be clean and relative; a symlink that passes
 * bundle_symlink_ok() must resolve (lexically, from its own folder)
 * inside the bundle. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "bundle.h"
#include "util.h"
#include "banned.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Depth after walking 'path' from depth 'depth'; -1 once above the root. */
static long walk(const char *path, long depth)
{
	const char *p = path, *e;

	for (; *p; p = *e ? e + 1 : e) {
		size_t n;

		e = strchrnul(p, '/');
		n = (size_t)(e - p);
		if (!n || (n == 1 && p[0] == '.'))
			continue;
		if (n == 2 && p[0] == '.' && p[1] == '.') {
			if (--depth < 0)
				return -1;
		} else {
			depth++;
		}
	}
	return depth;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *name = xstrndup((const char *)data, size);
	const char *target = NULL, *p;
	char clean[BUNDLE_PATH_MAX];
	size_t nlen = strlen(name);
	long depth;

	if (nlen < size)
		target = (const char *)data + nlen + 1;
	if (bundle_entry_path_ok(name, clean, sizeof(clean)) == 0) {
		if (clean[0] == '/' || strstr(clean, "//") ||
		    walk(clean, 0) < 0 || (clean[0] && clean[strlen(clean) - 1] == '/'))
			abort();
		for (p = clean; *p; p++)
			if (p[0] == '.' && (p == clean || p[-1] == '/') &&
			    (p[1] == '/' || !p[1] || (p[1] == '.' && (p[2] == '/' || !p[2]))))
				abort();	/* "." or ".." left in */
		if (target && clean[0]) {
			char *t = xstrndup(target, size - nlen - 1);

			if (bundle_symlink_ok(clean, t) == 0) {
				/* the link's folder is its path minus the last part */
				depth = walk(clean, 0) - 1;
				if (t[0] == '/' || walk(t, depth) < 0)
					abort();
			}
			free(t);
		}
	}
	free(name);
	return 0;
}
