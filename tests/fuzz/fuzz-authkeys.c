/*
 * fuzz-authkeys: the authorized_keys line parser on arbitrary lines, its
 * options (from=, expiry-time=, ...) included, and from= matching on each
 * line taken as a pattern list.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "keys.h"
#include "util.h"
#include "banned.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *p = (const char *)data, *end = p + size, *nl;
	struct keys_line k;

	while (p < end) {
		nl = memchr(p, '\n', (size_t)(end - p));
		if (!nl)
			nl = end;
		char *text = xstrndup(p, (size_t)(nl - p));

		if (keys_line_parse(&k, p, (size_t)(nl - p)) == 0) {
			/* a parsed line has every field a caller reads */
			if (!k.type || !k.b64 || !k.name || !k.fingerprint ||
			    !k.key || (k.has_options && !k.options))
				abort();
			/* its from= was checked when it was parsed */
			if (k.from && keys_from_match(k.from, "10.1.2.3") < 0)
				abort();
			keys_line_permits(&k, "10.1.2.3", 0);
			keys_line_permits(&k, "::ffff:127.0.0.1", 2000000000);
			keys_line_permits(&k, "2001:db8::1", 1);
			keys_line_permits(&k, NULL, 0);
			keys_line_release(&k);
		}
		keys_from_match(text, "192.168.1.7");
		keys_from_match(text, "2001:db8::7");
		keys_from_match(text, NULL);
		free(text);
		p = nl + 1;
	}
	return 0;
}
