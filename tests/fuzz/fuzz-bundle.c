/* fuzz-bundle: any bytes as a bundle (plain tar works too, which lets the
 * fuzzer reach tar headers).  Whatever happens, nothing may appear beside
 * the destination, a failure must leave no destination, and every symlink
 * of a good unpack must resolve inside it. */
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bundle.h"
#include "util.h"
#include "banned.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char base[64], box[96], dest[128], tarball[128];

static int count(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	int n = 0;

	if (!d)
		abort();
	while ((de = readdir(d)))
		if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
			n++;
	closedir(d);
	return n;
}

/* Every link under dir that resolves must resolve under root. */
static void check_links(const char *dir, const char *root)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	char path[PATH_MAX], real[PATH_MAX];
	struct stat st;

	if (!d)
		return;
	while ((de = readdir(d))) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		if (lstat(path, &st) < 0)
			continue;
		if (S_ISLNK(st.st_mode)) {
			if (realpath(path, real) &&
			    strncmp(real, root, strlen(root)))
				abort();
		} else if (S_ISDIR(st.st_mode)) {
			check_links(path, root);
		}
	}
	closedir(d);
}

static void cleanup(void)
{
	rm_rf(base);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char real[PATH_MAX];

	if (!base[0]) {
		snprintf(base, sizeof(base), "/tmp/fuzz-bundle-%d", (int)getpid());
		snprintf(box, sizeof(box), "%s/box", base);
		snprintf(dest, sizeof(dest), "%s/box/dest", base);
		snprintf(tarball, sizeof(tarball), "%s/in.tar", base);
		rm_rf(base);
		if (mkdir_p(box, 0755) < 0)
			abort();
		atexit(cleanup);
	}
	{
		/* no fsync: thousands of runs a second */
		FILE *f = fopen(tarball, "wb");

		if (!f || fwrite(data, 1, size, f) != size || fclose(f) != 0)
			abort();
	}
	if (bundle_unpack(tarball, dest) == 0) {
		if (!realpath(dest, real))
			abort();
		check_links(dest, real);
		if (count(box) != 1)
			abort();
		rm_rf(dest);
	} else if (count(box) != 0) {
		abort();	/* a failure leaves nothing behind */
	}
	if (count(base) != 2)
		abort();	/* box and in.tar: nothing climbed out */
	return 0;
}
