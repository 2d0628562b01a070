/* fuzz-routerlog: router log records from nginx's workers.  Every line
 * the parser hands out names a valid app and holds printable ASCII only,
 * and it never uses more than it was given. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "routerlog.h"
#include "util.h"
#include "banned.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct routerlog_line lines[16];
	struct buf out = BUF_INIT;
	unsigned long bad = 0;
	size_t off = 0, n, i, k;

	while (off < size) {
		size_t used = routerlog_parse((const char *)data + off,
					      size - off, lines,
					      ARRAY_SIZE(lines), &n, &bad,
					      &out);

		if (used > size - off)
			abort();
		for (i = 0; i < n; i++) {
			if (!app_name_valid(lines[i].app) ||
			    strlen(lines[i].text) != lines[i].len)
				abort();
			for (k = 0; k < lines[i].len; k++)
				if ((unsigned char)lines[i].text[k] < 0x20 ||
				    (unsigned char)lines[i].text[k] > 0x7e)
					abort();
		}
		if (!used)
			break;
		off += used;
	}
	buf_release(&out);
	return 0;
}
