/* fuzz-keter: any bytes as config/keter.yaml; every exec that parses must
 * resolve inside the release folder. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "manifest.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *dir = "/release";
	struct manifest m;
	size_t i;

	manifest_init(&m);
	if (manifest_parse_keter(&m, (const char *)data, size, "config/keter.yaml",
				 dir) == 0) {
		for (i = 0; i < m.nprocs; i++) {
			const char *exe = m.procs[i].argv.v[0];

			if (!proc_type_valid(m.procs[i].type) || m.procs[i].cmd ||
			    strncmp(exe, "/release/", 9) || strstr(exe, "/../") ||
			    strstr(exe, "/./") || !exe[9])
				abort();
		}
		for (i = 0; i < m.hosts.n; i++)
			if (!host_name_valid(m.hosts.v[i]))
				abort();
		if (m.static_root && (m.static_root[0] == '/' || strstr(m.static_root, "..")))
			abort();
	}
	manifest_release(&m);
	return 0;
}
