/* stateformat: see stateformat.h. */
#include "stateformat.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "util.h"
#include "version.h"
#include "banned.h"

#define FORMAT_FILE "state-format"

/* ERR_NOTFOUND when the file is missing. */
static int read_format(const char *root, long *format)
{
	char *path = xasprintf("%s/%s", root, FORMAT_FILE);
	struct buf b = BUF_INIT;
	int ret = -1;

	if (read_file(&b, path, 64) < 0) {
		ret = path_exists(path) ? -1 : ERR_NOTFOUND;
		goto out;
	}
	if (b.len && b.data[b.len - 1] == '\n')
		b.data[--b.len] = '\0';
	*format = parse_long(b.data, 1L << 20);
	if (*format < 0) {
		error_set("'%s' does not hold a state format number", path);
		goto out;
	}
	ret = 0;
out:
	buf_release(&b);
	free(path);
	return ret;
}

int stateformat_read(const char *root)
{
	long format = 0;
	int r = read_format(root, &format);

	if (r == ERR_NOTFOUND)
		return 0;
	return r < 0 ? -1 : (int)format;
}

int stateformat_check(const char *root, int *found)
{
	char *apps = xasprintf("%s/apps", root);
	char *path = xasprintf("%s/%s", root, FORMAT_FILE);
	char text[32];
	long format = STATE_FORMAT;
	int r, ret = -1;

	r = read_format(root, &format);
	if (r == ERR_NOTFOUND)
		format = path_exists(apps) ? 0 : STATE_FORMAT;
	else if (r < 0)
		goto out;
	if (found)
		*found = (int)format;
	if (format > STATE_FORMAT) {
		error_set("the state in '%s' is format %ld, newer than this "
			  "berth (%s) reads (%d): install a berth as new as "
			  "the one that wrote it", root, format, BERTH_VERSION,
			  STATE_FORMAT);
		goto out;
	}
	/*
	 * Upgrade steps, oldest first.  0 -> 1: no file changes, the
	 * version file itself is new.  A later format adds its step here.
	 */
	if (format < STATE_FORMAT)
		log_info("state in '%s': upgrading format %ld to %d", root,
			 format, STATE_FORMAT);
	if (r == 0 && format == STATE_FORMAT) {
		ret = 0;
		goto out;
	}
	if (mkdir_p(root, 0755) < 0)
		goto out;
	snprintf(text, sizeof(text), "%d\n", STATE_FORMAT);
	if (write_file_atomic(path, text, strlen(text), 0644) < 0)
		goto out;
	ret = 0;
out:
	free(apps);
	free(path);
	return ret;
}
