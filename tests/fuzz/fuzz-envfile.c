/* fuzz-envfile: any bytes as Piku's ENV or a .env file; what parses must
 * give only valid names, none of berth's own. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "manifest.h"
#include "banned.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct manifest m;
	struct strv skipped = STRV_INIT;
	size_t i;

	manifest_init(&m);
	if (manifest_parse_env_file(&m, (const char *)data, size, "ENV",
				    &skipped) == 0) {
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
	strv_release(&skipped);
	manifest_release(&m);
	return 0;
}
