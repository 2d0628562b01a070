/* fuzz-gitsep: the build request a session's berth-ssh git process sends
 * its root half (a compromised child may send anything). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "gitsep.h"
#include "privsep.h"
#include "util.h"
#include "banned.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int hex40(const char *p)
{
	size_t i;

	if (strlen(p) != 40)
		return 0;
	for (i = 0; i < 40; i++)
		if (!strchr("0123456789abcdef", p[i]))
			return 0;
	return 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct gitsep_deploy d;
	char *m;

	if (size > PRIVSEP_MSG_MAX)
		return 0;
	m = xmalloc(size + 1);
	memcpy(m, data, size);
	m[size] = '\0';
	if (gitsep_parse_deploy(m, size, &d) == 0) {
		/* what the root half goes on with is what it can trust */
		if (!hex40(d.commit) || !hex40(d.old) ||
		    !strcmp(d.commit, "0000000000000000000000000000000000000000") ||
		    (d.clean_cache != 0 && d.clean_cache != 1) ||
		    strncmp(d.ref, "refs/", 5) ||
		    strlen(d.ref) > GITSEP_REF_MAX || strstr(d.ref, "..") ||
		    strpbrk(d.ref, " \t\n\r~^:?*[\\"))
			abort();
	} else if (!error_last()[0]) {
		abort();
	}
	free(m);
	return 0;
}
