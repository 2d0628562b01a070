/* fuzz-appyaml: any bytes as app.yaml; what parses must be clean: valid
 * hosts and types, a static folder inside the bundle. */
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
	struct manifest m;
	size_t i;

	manifest_init(&m);
	if (manifest_parse_app_yaml(&m, (const char *)data, size, "app.yaml") == 0) {
		for (i = 0; i < m.nprocs; i++)
			if (!proc_type_valid(m.procs[i].type) || !m.procs[i].cmd ||
			    m.procs[i].scale < 0)
				abort();
		for (i = 0; i < m.hosts.n; i++)
			if (!host_name_valid(m.hosts.v[i]))
				abort();
		if (m.static_root && (m.static_root[0] == '/' ||
				      has_dotdot(m.static_root) ||
				      strpbrk(m.static_root, " ;{}$\"'\\")))
			abort();
		if (!m.health_path || m.health_path[0] != '/' ||
		    strpbrk(m.health_path, " \r\n"))
			abort();
	}
	manifest_release(&m);
	return 0;
}
