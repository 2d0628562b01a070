/* fuzz-control: a request line that parses must encode back to a line
 * that parses to the same words. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "control.h"
#include "util.h"
#include "banned.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct strv argv = STRV_INIT, again = STRV_INIT;
	struct buf line = BUF_INIT;
	size_t i;

	if (control_parse_request(&argv, (const char *)data, size) == 0) {
		control_encode_request(&line, (int)argv.n, argv.v);
		if (!line.len || line.data[line.len - 1] != '\n' ||
		    memchr(line.data, '\n', line.len - 1))
			abort();
		if (control_parse_request(&again, line.data, line.len - 1) < 0)
			abort();
		if (again.n != argv.n)
			abort();
		for (i = 0; i < argv.n; i++)
			if (strcmp(argv.v[i], again.v[i]))
				abort();
	}
	strv_release(&argv);
	strv_release(&again);
	buf_release(&line);
	return 0;
}
