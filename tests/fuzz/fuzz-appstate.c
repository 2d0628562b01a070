/* fuzz-appstate: any bytes as an app's state file; what parses must
 * render to a text that parses to the same state. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "appstate.h"
#include "banned.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct appstate st, again;
	struct buf b = BUF_INIT, b2 = BUF_INIT;

	appstate_init(&st);
	appstate_init(&again);
	if (size > APPSTATE_MAX)
		return 0;
	if (appstate_parse(&st, (const char *)data, size) == 0) {
		if (st.nslots % 2 || st.next < st.release)
			abort();
		appstate_render(&st, &b);
		if (appstate_parse(&again, b.data, b.len) < 0)
			abort();
		appstate_render(&again, &b2);
		if (b.len != b2.len || memcmp(b.data, b2.data, b.len))
			abort();
	}
	appstate_release(&st);
	appstate_release(&again);
	buf_release(&b);
	buf_release(&b2);
	return 0;
}
