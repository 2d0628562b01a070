/*
 * Fuzz target: what a fetching client sends upload-pack and
 * upload-archive, read as pkt-lines (the first byte picks the read size):
 * v0 want-list lines, v2 fetch arguments, archive arguments.
 */
#include <stdint.h>
#include <stdlib.h>

#include "gitarchive.h"
#include "pktline.h"
#include "upload.h"
#include "util.h"
#include "banned.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct gitsvc_io io;
	struct pkt_memio m;
	struct pkt_reader *r = xmalloc(sizeof(*r));
	struct upload_request want, fetch;
	struct archive_request ar;
	struct strv args = STRV_INIT;
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
	archive_request_init(&ar);
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
		if (args.n < ARCHIVE_MAX_ARGS)
			strv_push(&args, d);
	}
	(void)upload_request_is_shallow(&want);
	(void)archive_request_parse(&ar, args.v, args.n);
	archive_request_release(&ar);
	upload_request_release(&want);
	upload_request_release(&fetch);
	strv_release(&args);
	free(r);
	return 0;
}
