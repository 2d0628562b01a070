/* fuzz-privsep: the command message a session's berth-ssh half sends its
 * root half (a compromised child may send anything). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "privsep.h"
#include "util.h"
#include "banned.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct privsep_command c;
	char *m;

	if (size > PRIVSEP_MSG_MAX)
		return 0;
	m = xmalloc(size + 1);
	memcpy(m, data, size);
	m[size] = '\0';
	if (privsep_parse_command(m, size, &c) == 0) {
		/* every field lies inside the message */
		if (c.command < m || c.command > m + size ||
		    c.term < m || c.term > m + size ||
		    strlen(c.term) >= 64 || c.cols < 0 || c.cols > 9999 ||
		    c.rows < 0 || c.rows > 9999 || (c.pty != 0 && c.pty != 1))
			abort();
	} else if (!error_last()[0]) {
		abort();
	}
	privsep_number((const char *)m);
	free(m);
	return 0;
}
