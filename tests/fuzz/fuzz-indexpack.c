/*
 * Fuzz target: indexpack, berth's index-pack, which takes the pack a
 * client pushes.  The first byte picks the size of each feed; the rest
 * is the stream.  A pack that ends is finished (deltas resolved, thin
 * bases asked for and refused, the .idx written), so the whole indexer
 * runs.  It must never take more than it is given, nor crash or leak.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "indexpack.h"
#include "util.h"
#include "banned.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int no_base(void *arg, const unsigned char *id, int *type,
		   unsigned char **out, size_t *len)
{
	return -1;
}

static int have_none(void *arg, const unsigned char *id)
{
	return 0;
}

static char dir[64];

static void cleanup(void)
{
	rm_rf(dir);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct indexpack_opts o;
	struct indexpack *ip = NULL;
	size_t chunk = 1, off = 0;
	char hex[41];

	if (!dir[0]) {
		snprintf(dir, sizeof(dir), "/tmp/berth-fuzz-ip.XXXXXX");
		if (!mkdtemp(dir))
			abort();
		atexit(cleanup);
	}
	if (size > 0) {
		chunk = (size_t)data[0] * 7 + 1;
		data++;
		size--;
	}
	memset(&o, 0, sizeof(o));
	o.dir = dir;
	o.max_object = 1 << 20;
	o.threads = 2;
	o.read_base = no_base;
	o.have = have_none;
	if (indexpack_new(&ip, &o) < 0)
		abort();
	while (off < size && !indexpack_done(ip)) {
		size_t n = size - off < chunk ? size - off : chunk;
		ssize_t r = indexpack_feed(ip, data + off, n);

		if (r < 0)
			break;
		if ((size_t)r > n || ((size_t)r < n && !indexpack_done(ip)))
			abort();
		off += (size_t)r;
	}
	if (indexpack_done(ip) && indexpack_finish(ip, hex) == 0) {
		char *p = xasprintf("%s/pack-%s.pack", dir, hex);

		unlink(p);
		free(p);
		p = xasprintf("%s/pack-%s.idx", dir, hex);
		unlink(p);
		free(p);
	}
	indexpack_free(ip);
	return 0;
}
