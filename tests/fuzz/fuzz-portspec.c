/* fuzz-portspec: any bytes as a start_server --port value; what parses
 * must have a name, a port in range and a name that formats cleanly. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "listener.h"
#include "banned.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct listener l;
	struct buf b = BUF_INIT;
	char *spec = malloc(size + 1);

	if (!spec)
		return 0;
	memcpy(spec, data, size);
	spec[size] = '\0';
	listener_init(&l);
	if (listener_parse_port(&l, spec) == 0) {
		if (!l.name || !l.name[0] || l.port < 0 || l.port > 65535 ||
		    l.want_fd < -1 || (l.host && l.ipv6 != !!strchr(l.host, ':')))
			abort();
		l.fd = 3;
		listener_format_server_starter(&b, &l, 1, -1);
		if (strncmp(b.data, l.name, strlen(l.name)))
			abort();
		buf_reset(&b);
		listener_format_fdnames(&b, &l, 1);
		if (b.data && strchr(b.data, ':'))
			abort();
		l.fd = -1;
	}
	listener_release(&l);
	listener_init(&l);
	if (listener_parse_path(&l, spec) == 0 && strcmp(l.path, spec))
		abort();
	listener_release(&l);
	buf_release(&b);
	free(spec);
	return 0;
}
