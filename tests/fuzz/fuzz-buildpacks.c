/* fuzz-buildpacks: any bytes as a .buildpacks file (and its first line as
 * one spec); every spec kept must parse again, and a URL's ref must be a
 * plain ref (no "..", no leading '-'), its URL free of spaces. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "buildpack.h"
#include "banned.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_spec(const char *text)
{
	struct buildpack_spec s;

	if (buildpack_spec_parse(&s, text) < 0)
		return;
	switch (s.kind) {
	case BUILDPACK_NAME:
		if (!s.name || !s.name[0] || strchr(s.name, '/'))
			abort();
		break;
	case BUILDPACK_PATH:
		if (!s.name || s.name[0] != '/')
			abort();
		break;
	case BUILDPACK_URL:
		if (!s.url || strpbrk(s.url, " \t\r\n#") ||
		    (s.ref && (s.ref[0] == '-' || strstr(s.ref, "..") ||
			       !s.ref[0])))
			abort();
		break;
	}
	buildpack_spec_release(&s);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct strv list = STRV_INIT;
	char *text = strndup((const char *)data, size);
	size_t i;

	if (!text)
		return 0;
	if (buildpack_list_parse(&list, (const char *)data, size,
				 ".buildpacks") == 0) {
		if (list.n > BUILDPACK_LIST_MAX)
			abort();
		for (i = 0; i < list.n; i++) {
			struct buildpack_spec s;

			if (buildpack_spec_parse(&s, list.v[i]) < 0)
				abort();
			buildpack_spec_release(&s);
		}
	}
	text[strcspn(text, "\n")] = '\0';
	check_spec(text);
	free(text);
	strv_release(&list);
	return 0;
}
