/* oneoff: see oneoff.h. */
#include "oneoff.h"

#include <string.h>

#include "util.h"
#include "banned.h"

#define ONEOFF_CMD_MAX 8192

static int word_ok(const char *w)
{
	const unsigned char *p;

	if (!*w)
		return error_set("empty word in the command"), 0;
	for (p = (const unsigned char *)w; *p; p++)
		if ((*p < 0x20 && *p != '\t') || *p == 0x7f)
			return error_set("unsupported character '\\x%02x' in the command",
					 *p), 0;
	return 1;
}

int oneoff_term_valid(const char *term)
{
	size_t n = term ? strlen(term) : 0;

	return n > 0 && n <= ONEOFF_TERM_MAX &&
	       strspn(term, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
		      "0123456789-+._") == n;
}

char *oneoff_command(int argc, char *const *argv)
{
	struct buf b = BUF_INIT;
	const char *q;
	int i;

	if (argc < 1) {
		error_set("no command given");
		return NULL;
	}
	for (i = 0; i < argc; i++)
		if (!word_ok(argv[i]))
			return NULL;
	if (argc == 1) {
		buf_addstr(&b, argv[0]);
	} else {
		for (i = 0; i < argc; i++) {
			if (i)
				buf_addstr(&b, " ");
			buf_addstr(&b, "'");
			for (q = argv[i]; *q; q++) {
				if (*q == '\'')
					buf_addstr(&b, "'\\''");
				else
					buf_add(&b, q, 1);
			}
			buf_addstr(&b, "'");
		}
	}
	if (b.len > ONEOFF_CMD_MAX) {
		buf_release(&b);
		error_set("command too long");
		return NULL;
	}
	return buf_detach(&b);
}
