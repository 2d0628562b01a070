/* fuzz-envdir: any bytes as the content of an --envdir file; the value
 * is a prefix of the first line, without a newline or a NUL. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "envdir.h"
#include "banned.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *value = NULL;
	int rc = envdir_value(&value, (const char *)data, size);

	if (rc == 0) {
		size_t n = strlen(value);

		if (n > size || n > ENVDIR_VALUE_MAX || memchr(value, '\n', n) ||
		    memcmp(value, data, n))
			abort();
	} else if (value || (rc != ERR_NOTFOUND && rc != ERR_INVALID) ||
		   (rc == ERR_NOTFOUND && size)) {
		abort();
	}
	free(value);
	/* the same bytes as a file name */
	if (size && size < 256 && !memchr(data, '\0', size)) {
		char *name = strndup((const char *)data, size);

		if (name && envdir_name_valid(name) &&
		    (name[0] == '.' || strchr(name, '=')))
			abort();
		free(name);
	}
	return 0;
}
