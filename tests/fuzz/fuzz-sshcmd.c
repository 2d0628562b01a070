/* fuzz-sshcmd: the exec command word splitter on arbitrary commands. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "control.h"
#include "session.h"
#include "util.h"
#include "banned.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct strv words = STRV_INIT;
	char *cmd = xstrndup((const char *)data, size);
	size_t i;

	if (sshd_split_command(&words, cmd) == 0) {
		/* what passes must be safe to send: no empty or control words */
		if (words.n > CONTROL_MAX_WORDS)
			abort();
		for (i = 0; i < words.n; i++) {
			const unsigned char *p = (const unsigned char *)words.v[i];

			if (!*p)
				abort();
			for (; *p; p++)
				if ((*p < 0x20 && *p != '\t') || *p == 0x7f)
					abort();
		}
	} else if (!error_last()[0]) {
		abort();
	}
	strv_release(&words);
	free(cmd);
	return 0;
}
