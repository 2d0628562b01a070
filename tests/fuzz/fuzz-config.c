/* fuzz-config: any bytes as berth.yaml; a failed parse changes nothing,
 * a good one leaves every setting within its bounds. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "manifest.h"
#include "banned.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct config c;

	config_init(&c, "/nonexistent");
	if (config_parse(&c, (const char *)data, size, 1) < 0) {
		if (c.port_min != 20000 || c.drain_ms != 2000 || strcmp(c.domain, "localhost"))
			abort();
	} else {
		if (c.port_min < 1024 || c.port_max > 65535 || c.port_min > c.port_max ||
		    c.drain_ms < 0 || !host_name_valid(c.domain) || !c.ssh_listen ||
		    !c.http_listen || !c.nginx || c.keep_releases < 1)
			abort();
	}
	config_release(&c);
	return 0;
}
