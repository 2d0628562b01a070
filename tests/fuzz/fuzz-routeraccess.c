/* fuzz-routeraccess: nginx's access_log lines for the router
 * (ROUTERLOG_ACCESS_FORMAT).  A line that parses has its fields inside
 * the line, sane numbers (its times too), and makes a record that
 * routerlog_parse() takes as exactly one printable line. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "routerlog.h"
#include "util.h"
#include "banned.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void inside(const char *p, size_t n, const char *line, size_t len)
{
	if (p < line || p + n > line + len)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *s = (const char *)data, *end = s + size;
	struct buf rec = BUF_INIT, out = BUF_INIT;

	while (s < end) {
		const char *nl = memchr(s, '\n', (size_t)(end - s));
		size_t len = nl ? (size_t)(nl - s) : (size_t)(end - s);
		struct routerlog_access a;
		struct routerlog_line lines[2];
		unsigned long bad = 0;
		size_t n, used, k;

		if (routerlog_access_parse(s, len, &a) == 0) {
			inside(a.host, a.host_len, s, len);
			inside(a.method, a.method_len, s, len);
			inside(a.id, a.id_len, s, len);
			inside(a.addr, a.addr_len, s, len);
			inside(a.uri, a.uri_len, s, len);
			if (a.status < 0 || a.status > 999 || a.bytes < 0 ||
			    a.ms < 0 || a.end_ms < 0 || a.port < 0 || a.port > 65535 ||
			    a.uri_len == 0)
				abort();
			buf_reset(&rec);
			routerlog_access_record(&a, "app", "web.1", 1, "",
						&rec);
			used = routerlog_parse(rec.data, rec.len, lines,
					       ARRAY_SIZE(lines), &n, &bad,
					       &out);
			if (used != rec.len)
				abort();
			if (rec.len - 1 <= ROUTERLOG_LINE_MAX &&
			    (n != 1 || bad || strcmp(lines[0].app, "app")))
				abort();
			for (k = 0; k < n; k++)
				for (size_t i = 0; i < lines[k].len; i++)
					if ((unsigned char)lines[k].text[i] <
					    0x20 ||
					    (unsigned char)lines[k].text[i] >
					    0x7e)
						abort();
		}
		s += len + 1;
	}
	buf_release(&rec);
	buf_release(&out);
	return 0;
}
