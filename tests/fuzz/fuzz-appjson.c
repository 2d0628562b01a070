/* fuzz-appjson: any bytes as app.json; what parses must be clean: valid
 * process types and quantities, parsed schedules with commands, variable
 * names berth allows, health paths that start with '/'. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "appjson.h"
#include "manifest.h"
#include "banned.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct manifest m;
	size_t i;

	manifest_init(&m);
	if (appjson_parse(&m, (const char *)data, size, "app.json") == 0) {
		for (i = 0; i < m.nformation; i++)
			if (!proc_type_valid(m.formation[i].type) ||
			    m.formation[i].quantity < 0 ||
			    m.formation[i].quantity > 100)
				abort();
		for (i = 0; i < m.ncrons; i++)
			if (!m.crons[i].cmd || !m.crons[i].cmd[0] ||
			    !m.crons[i].schedule || !m.crons[i].expr.minutes ||
			    !m.crons[i].expr.hours)
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
		if (!m.health_path || m.health_path[0] != '/' ||
		    strpbrk(m.health_path, " \r\n\t"))
			abort();
		if ((m.predeploy_cmd && !m.predeploy_cmd[0]) ||
		    (m.postdeploy_cmd && !m.postdeploy_cmd[0]) ||
		    (m.first_deploy_cmd && !m.first_deploy_cmd[0]))
			abort();
		if (m.ignored.n > 65)
			abort();
	}
	manifest_release(&m);
	return 0;
}
