/* fuzz-authkeys: the authorized_keys line parser on arbitrary lines. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "keys.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *p = (const char *)data, *end = p + size, *nl;
	struct keys_line k;

	while (p < end) {
		nl = memchr(p, '\n', (size_t)(end - p));
		if (!nl)
			nl = end;
		if (keys_line_parse(&k, p, (size_t)(nl - p)) == 0) {
			/* a parsed line has every field a caller reads */
			if (!k.type || !k.b64 || !k.name || !k.fingerprint ||
			    !k.key)
				abort();
			keys_line_release(&k);
		}
		p = nl + 1;
	}
	return 0;
}
