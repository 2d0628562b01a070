/*
 * Fuzz target: packscan, which reads the pack a client pushes to find
 * where it ends.  The first byte picks the size of each feed.  The
 * scanner must never take more than it is given, and once done, nothing.
 */
#include <stdint.h>
#include <stdlib.h>

#include "packscan.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct packscan s;
	size_t chunk = 1, off = 0;

	if (size > 0) {
		chunk = (size_t)data[0] * 7 + 1;
		data++;
		size--;
	}
	packscan_init(&s);
	while (off < size) {
		size_t n = size - off < chunk ? size - off : chunk;
		ssize_t r = packscan_feed(&s, data + off, n);

		if (r < 0)
			break;
		if ((size_t)r > n || (s.done && r == 0 && off < size &&
				      packscan_feed(&s, data, 1) != 0))
			abort();
		if ((size_t)r < n && !s.done)
			abort();
		off += n;
		if (s.done)
			break;
	}
	packscan_release(&s);
	return 0;
}
