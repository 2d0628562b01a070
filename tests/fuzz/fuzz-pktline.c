/*
 * Fuzz target: the pkt-line reader and receive-pack's command-list and
 * push-option parser, over input arriving in odd-sized reads.  The first
 * byte picks the read size; the rest is what a client would send.
 */
#include <stdint.h>
#include <stdlib.h>

#include "pktline.h"
#include "receive.h"
#include "util.h"
#include "banned.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct gitsvc_io io;
	struct pkt_memio m;
	struct pkt_reader *r;
	struct push_request req;
	size_t chunk = 0;
	const char *d;
	size_t len;
	char raw[4096];
	int i;

	if (size > 0) {
		chunk = data[0];
		data++;
		size--;
	}
	r = xmalloc(sizeof(*r));
	pkt_memio_init(&io, &m, data, size, chunk, NULL);
	pkt_reader_init(r, &io);
	push_request_init(&req);
	if (push_request_read(&req, r) == 0) {
		/* what follows is the pack: drain it raw */
		while (pkt_read_raw(r, raw, sizeof(raw)) > 0)
			;
	}
	push_request_release(&req);

	/* the same bytes as a plain packet stream (upload-pack's reader) */
	pkt_memio_init(&io, &m, data, size, chunk, NULL);
	pkt_reader_init(r, &io);
	for (i = 0; i < 100000; i++) {
		int t = pkt_read(r, &d, &len);

		if (t < 0 || t == PKT_EOF)
			break;
		if (t == PKT_DATA)
			(void)pkt_chomp(d, len);
	}
	free(r);
	return 0;
}
