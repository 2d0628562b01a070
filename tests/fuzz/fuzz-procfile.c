/* fuzz-procfile: any bytes as a Procfile; what parses must hold only valid
 * types and non-empty commands. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "manifest.h"
#include "banned.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct manifest m;
	size_t i;

	manifest_init(&m);
	if (manifest_parse_procfile(&m, (const char *)data, size, "Procfile") == 0) {
		for (i = 0; i < m.nprocs; i++) {
			if (!proc_type_valid(m.procs[i].type) || !m.procs[i].cmd[0] ||
			    !strcmp(m.procs[i].type, "release") ||
			    manifest_proc(&m, m.procs[i].type) != &m.procs[i])
				abort();
		}
		if (m.release_cmd && !m.release_cmd[0])
			abort();
	}
	manifest_release(&m);
	return 0;
}
