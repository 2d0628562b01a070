/* memtrim: clean file pages leave the resident set and come back intact
 * when touched; a private mapping's written pages, the heap and a
 * writable file mapping's changes are never dropped. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "memtrim.h"
#include "util.h"
#include "tap.h"
#include "banned.h"

#define PAGES 64

/* pages of [p, p + len) in our page tables */
static size_t resident(void *p, size_t len)
{
	long ps = sysconf(_SC_PAGESIZE);
	size_t n = len / (size_t)ps, i, in = 0;
	unsigned char *v = xmalloc(n);

	if (mincore(p, len, v) < 0)
		abort();
	for (i = 0; i < n; i++)
		in += v[i] & 1;
	free(v);
	return in;
}

/* mincore() says what the page cache holds; /proc/self/smaps says
 * what this process maps: its Rss for the mapping at p */
static long mapped_kb(void *p)
{
	char want[32], *line = NULL;
	size_t cap = 0;
	long kb = -1;
	int in = 0;
	FILE *f = fopen("/proc/self/smaps", "re");

	if (!f)
		abort();
	snprintf(want, sizeof(want), "%lx-", (unsigned long)p);
	while (getline(&line, &cap, f) > 0) {
		if (!strncmp(line, want, strlen(want)))
			in = 1;
		else if (in && !strncmp(line, "Rss:", 4)) {
			kb = strtol(line + 4, NULL, 10);
			break;
		}
	}
	free(line);
	fclose(f);
	return kb;
}

int main(void)
{
	long ps = sysconf(_SC_PAGESIZE);
	size_t len = (size_t)ps * PAGES, dropped = 0, i;
	char path[] = "/var/tmp/memtrim-unit-XXXXXX";	/* not a tmpfs */
	unsigned char *file, *priv, *heap;
	unsigned char *data = xmalloc(len);
	int fd = mkstemp(path), same;

	if (fd < 0)
		abort();
	for (i = 0; i < len; i++)
		data[i] = (unsigned char)(i * 7 + 3);
	/* written back: a dirty page cache page is never dropped */
	if (write_all(fd, data, len) < 0 || fsync(fd) < 0)
		abort();
	file = mmap(NULL, len, PROT_READ, MAP_PRIVATE, fd, 0);
	priv = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
	if (file == MAP_FAILED || priv == MAP_FAILED)
		abort();
	same = 0;
	for (i = 0; i < len; i++)
		same += file[i] == data[i];
	ok(same == (int)len && mapped_kb(file) > 0,
	   "a read-only private file mapping is resident once read");
	/* one written page makes the whole mapping off limits */
	priv[5] = 0xee;
	heap = xmalloc(1 << 20);
	memset(heap, 0x5a, 1 << 20);

	ok(memtrim_now(&dropped) == 0, "memtrim_now runs");
	ok(dropped > 0, "it dropped clean file pages (%zu KiB)", dropped);
	ok(mapped_kb(file) == 0,
	   "the clean file mapping left our resident set");
	ok(resident(file, len) == PAGES, "its pages stay in the page cache");
	same = 0;
	for (i = 0; i < len; i++)
		same += file[i] == data[i];
	ok(same == (int)len && mapped_kb(file) > 0,
	   "read again, they come back with the file's bytes");
	ok(priv[5] == 0xee && priv[6] == data[6],
	   "a private mapping with a written page keeps it");
	for (i = 0; i < (1 << 20) && heap[i] == 0x5a; i++)
		;
	ok(i == (1 << 20), "the heap in use is untouched");
	free(heap);
	munmap(file, len);
	munmap(priv, len);
	close(fd);
	unlink(path);
	free(data);
	return tap_done();
}
