/* Fuzz target: gitsvc_parse_command(), the exec line of git's ssh transport. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "gitsvc.h"
#include "util.h"
#include "banned.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *line = xmalloc(size + 1);
	enum gitsvc_service svc;
	char *app = NULL;

	memcpy(line, data, size);
	line[size] = '\0';
	if (gitsvc_parse_command(line, &svc, &app) == 0) {
		if (!app || !app_name_valid(app))
			abort();
	} else if (app) {
		abort();
	}
	free(app);
	free(line);
	return 0;
}
