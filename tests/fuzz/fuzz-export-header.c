/* fuzz-export-header: the berth-export file of an import.  A header that
 * parses names a positive release, and every scale line kept is
 * "scale " and a plain TYPE=N word. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "export.h"
#include "util.h"
#include "banned.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct buf scale = BUF_INIT;
	long release = -1;
	char *line, *save = NULL;

	if (export_parse_header((const char *)data, size, &release,
				&scale) == 0) {
		if (release <= 0)
			abort();
		if (scale.len)
			for (save = scale.data, line = str_token(&save, "\n"); line;
			     line = str_token(&save, "\n"))
				if (strncmp(line, "scale ", 6) ||
				    strpbrk(line + 6, " /.\t"))
					abort();
	}
	buf_release(&scale);
	return 0;
}
