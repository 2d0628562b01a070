/* fuzz-privsep: the messages a session's berth-ssh half sends its root
 * half (a compromised child may send anything): the request ('r') and
 * the key question ('k') and the window change ('w').  The first byte
 * picks which. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "privsep.h"
#include "util.h"
#include "banned.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int ctl_free(const char *w, int newlines)
{
	for (; *w; w++)
		if (((unsigned char)*w < 0x20 && *w != '\t' &&
		     !(newlines && (*w == '\n' || *w == '\r'))) || *w == 0x7f)
			return 0;
	return 1;
}

static void check_request(char *m, size_t size)
{
	struct privsep_request c;
	struct buf again = BUF_INIT;
	size_t i;

	if (privsep_parse_request(m, size, &c) < 0) {
		if (!error_last()[0])
			abort();
		return;
	}
	/* every field lies inside the message, and is what it says */
	if (c.term < m || c.term > m + size || strlen(c.term) >= 64 ||
	    !ctl_free(c.term, 0) || c.cols < 0 || c.cols > 9999 ||
	    c.rows < 0 || c.rows > 9999 || (c.pty != 0 && c.pty != 1) ||
	    c.version < 0 || c.version > 2)
		abort();
	if (c.git) {
		if (c.nwords || c.svc < 1 || c.svc > 3 || !c.app ||
		    !app_name_valid(c.app))
			abort();
	} else {
		if (!c.nwords || c.nwords > PRIVSEP_WORDS_MAX || c.app)
			abort();
		for (i = 0; i < c.nwords; i++)
			if (c.words[i] < m || c.words[i] > m + size ||
			    !c.words[i][0] || !ctl_free(c.words[i], 1))
				abort();
	}
	/* what parsed builds again, byte for byte */
	if (privsep_encode_request(&again, c.git, c.svc, c.app, c.words,
				   c.nwords, c.version, c.pty, c.term, c.cols,
				   c.rows) < 0 ||
	    again.len != size || memcmp(again.data, m, size))
		abort();
	buf_release(&again);
}

static void check_key(char *m, size_t size)
{
	struct privsep_key k;
	size_t n;

	if (privsep_parse_key(m, size, &k) < 0) {
		if (!error_last()[0])
			abort();
		return;
	}
	n = strlen(k.b64);
	if (!k.type[0] || strlen(k.type) >= sizeof(k.type) ||
	    strchr(k.type, ' ') || k.b64 < m || k.b64 > m + size || !n ||
	    n > PRIVSEP_KEY_B64_MAX || n % 4 || strchr(k.b64, ' ') ||
	    (k.verified != 0 && k.verified != 1))
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *m;

	if (!size || size - 1 > PRIVSEP_MSG_MAX)
		return 0;
	m = xmalloc(size);
	memcpy(m, data + 1, size - 1);
	m[size - 1] = '\0';
	if (data[0] == 'k') {
		check_key(m, size - 1);
	} else if (data[0] == 'w') {
		int w = -1, h = -1;

		if (privsep_parse_winsize(m, size - 1, &w, &h) == 0 &&
		    (w < 1 || w > 9999 || h < 1 || h > 9999))
			abort();
	} else {
		check_request(m, size - 1);
	}
	free(m);
	return 0;
}
