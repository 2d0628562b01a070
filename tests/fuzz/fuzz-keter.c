/* fuzz-keter: any bytes as config/keter.yaml; every exec that parses must
 * resolve inside the release folder. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "manifest.h"
#include "banned.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* 1 if some '/'-separated part of p is "..". */
static int has_dotdot(const char *p)
{
	const char *e;

	for (; *p; p = *e ? e + 1 : e) {
		e = strchrnul(p, '/');
		if (e - p == 2 && p[0] == '.' && p[1] == '.')
			return 1;
	}
	return 0;
}

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
			    strncmp(exe, "/release/", 9) || has_dotdot(exe) ||
			    strstr(exe, "/./") || !exe[9])
				abort();
		}
		for (i = 0; i < m.hosts.n; i++)
			if (!host_name_valid(m.hosts.v[i]))
				abort();
		if (m.static_root && (m.static_root[0] == '/' || has_dotdot(m.static_root)))
			abort();
	}
	manifest_release(&m);
	return 0;
}
