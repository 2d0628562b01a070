/*
 * Fuzz target: what a fetching client sends upload-pack, read as
 * pkt-lines (the first byte picks the read size): v0 want-list lines and
 * v2 fetch arguments.
 */
#include <stdint.h>
#include <stdlib.h>

#include "pktline.h"
#include "upload.h"
#include "util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct gitsvc_io io;
	struct pkt_memio m;
	struct pkt_reader *r = xmalloc(sizeof(*r));
	struct upload_request want, fetch;
	size_t chunk = 0, len;
	const char *d;
	int i, t;

	if (size > 0) {
		chunk = data[0];
		data++;
		size--;
	}
	upload_request_init(&want);
	upload_request_init(&fetch);
	pkt_memio_init(&io, &m, data, size, chunk, NULL);
	pkt_reader_init(r, &io);
	r->v2 = 1;
	for (i = 0; i < 100000; i++) {
		t = pkt_read_line(r, &d, &len, 1, "here");
		if (t < 0 || t == PKT_EOF)
			break;
		if (t != PKT_DATA)
			continue;
		(void)upload_parse_want_line(&want, d, len);
		(void)upload_parse_fetch_arg(&fetch, d, len);
	}
	(void)upload_request_is_shallow(&want);
	upload_request_release(&want);
	upload_request_release(&fetch);
	free(r);
	return 0;
}
