/*
 * replay: runs a libFuzzer target on every file of its committed corpus
 * (tests/fuzz/corpus/TARGET/), as a TAP test, so `make test` (and
 * `make asan`) exercise each parser without clang's fuzzer runtime.
 */
#include <dirent.h>
#include <libgen.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "banned.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static unsigned char *slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	unsigned char *p = NULL;
	size_t n = 0, a = 0, r;

	if (!f)
		return NULL;
	for (;;) {
		if (n == a) {
			a = a ? a * 2 : 4096;
			p = realloc(p, a);
			if (!p)
				abort();
		}
		r = fread(p + n, 1, a - n, f);
		if (r == 0)
			break;
		n += r;
	}
	fclose(f);
	*len = n;
	return p;
}

int main(int argc, char **argv)
{
	char dir[4096], path[8192];
	const char *name, *top = getenv("TOP");
	DIR *d;
	struct dirent *de;
	int n = 0;
	char *self = strdup(argv[0]);

	(void)argc;
	name = basename(self);
	snprintf(dir, sizeof(dir), "%s/tests/fuzz/corpus/%s", top ? top : ".",
		 name);
	d = opendir(dir);
	if (!d) {
		printf("not ok 1 - corpus %s exists\n1..1\n", dir);
		return 1;
	}
	while ((de = readdir(d))) {
		unsigned char *data;
		size_t len = 0;

		if (de->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		data = slurp(path, &len);
		if (!data)
			continue;
		LLVMFuzzerTestOneInput(data, len);
		free(data);
		n++;
	}
	closedir(d);
	/* reaching here means no input crashed, leaked or tripped a sanitizer */
	printf("%s 1 - %s replayed %d corpus inputs\n1..1\n",
	       n > 0 ? "ok" : "not ok", name, n);
	free(self);
	return n > 0 ? 0 : 1;
}
