/* fuzz-dashform: any bytes as a dashboard form body (or query string);
 * a value found is NUL-free, fits, and the parser never reads past the
 * body. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "dashboard.h"
#include "banned.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const keys[] = { "csrf", "scale", "release", "" };
	char out[64];
	size_t i, outlen;
	char *body;
	int rc;

	if (!size)
		return 0;
	outlen = 1 + data[0] % sizeof(out);
	/* an exact-size copy, so ASan sees any read past the body */
	body = malloc(size - 1 ? size - 1 : 1);
	if (!body)
		abort();
	memcpy(body, data + 1, size - 1);
	for (i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
		memset(out, 'x', sizeof(out));
		rc = dashboard_form_get(body, size - 1, keys[i], out, outlen);
		if (rc == 0 && strlen(out) >= outlen)
			abort();
		if (rc != 0 && rc != ERR_NOTFOUND && rc != ERR_INVALID)
			abort();
		if (rc != 0 && out[0])
			abort();
	}
	free(body);
	return 0;
}
