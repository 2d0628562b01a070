/* fuzz-release-yaml: what a buildpack hands back, as YAML: its bin/release
 * output, and the config_vars file the pipeline keeps of it
 * (.berth/buildpack-config.yaml, in a bundle that may come from outside).
 * The first byte picks which (bit 0), and whether the app already has a
 * web type of its own (bit 1), which must win.  What parses must give
 * only valid process types with a command, and valid names, none of
 * berth's own. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "manifest.h"
#include "banned.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char own_web[] = "web: ./own-web\n";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct manifest m;
	const struct proc_spec *web;
	unsigned int how;
	size_t i;
	int r;

	if (size < 1)
		return 0;
	how = data[0];
	data++;
	size--;
	manifest_init(&m);
	if ((how & 2) && manifest_parse_procfile(&m, own_web,
						 sizeof(own_web) - 1,
						 "Procfile") < 0)
		abort();
	if (how & 1)
		r = manifest_parse_buildpack_config(&m, (const char *)data,
						    size, MANIFEST_BUILDPACK_CONFIG);
	else
		r = manifest_parse_release_yaml(&m, (const char *)data, size);
	if (r == 0) {
		for (i = 0; i < m.nprocs; i++)
			if (!proc_type_valid(m.procs[i].type) ||
			    !m.procs[i].cmd || !m.procs[i].cmd[0])
				abort();
		web = manifest_proc(&m, "web");
		if ((how & 2) && (!web || strcmp(web->cmd, "./own-web")))
			abort();
		if ((how & 1) && m.nprocs != ((how & 2) ? 1 : 0))
			abort();
		for (i = 0; i < m.env.n; i++) {
			char *eq = strchr(m.env.v[i], '=');
			char *k;

			if (!eq)
				abort();
			k = strndup(m.env.v[i], (size_t)(eq - m.env.v[i]));
			if (!k || !env_key_valid(k) || manifest_env_reserved(k))
				abort();
			free(k);
		}
	}
	manifest_release(&m);
	return 0;
}
