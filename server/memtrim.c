#include "memtrim.h"

#include <malloc.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "log.h"
#include "loop.h"
#include "util.h"
#include "banned.h"

/* one mapping of /proc/self/smaps and what decides whether it goes */
struct vma {
	uintptr_t start, end;
	int file;		/* private mapping of a file (inode != 0) */
	size_t rss, anon, dirty, locked;
};

static int vma_droppable(const struct vma *v)
{
	return v->file && v->rss && !v->anon && !v->dirty && !v->locked;
}

static void keep_if_droppable(struct vma **drop, size_t *n, size_t *cap,
			      const struct vma *v)
{
	if (!vma_droppable(v))
		return;
	if (*n == *cap) {
		*cap = *cap ? *cap * 2 : 64;
		*drop = xrealloc(*drop, *cap * sizeof(**drop));
	}
	(*drop)[(*n)++] = *v;
}

/* "Name:   123 kB" -> 123 into *out if the line is that field */
static int field_kb(const char *line, const char *name, size_t *out)
{
	size_t n = strlen(name);
	unsigned long kb;

	if (strncmp(line, name, n) || line[n] != ':')
		return 0;
	if (sscanf(line + n + 1, "%lu", &kb) == 1)
		*out = kb;
	return 1;
}

static int vma_header(const char *line, struct vma *v)
{
	unsigned long start, end, ino;
	char perms[8];
	int n = 0;

	if (sscanf(line, "%lx-%lx %7s %*x %*x:%*x %lu%n", &start, &end,
		   perms, &ino, &n) != 4 || !n)
		return 0;
	memset(v, 0, sizeof(*v));
	v->start = start;
	v->end = end;
	v->file = ino != 0 && perms[3] == 'p';
	return 1;
}

int memtrim_now(size_t *dropped_kb)
{
	struct vma *drop = NULL, cur;
	size_t ndrop = 0, cap = 0, kb = 0, i;
	char *line = NULL;
	size_t linecap = 0;
	int have = 0, ret = -1;
	FILE *f;

	malloc_trim(0);
	f = fopen("/proc/self/smaps", "re");
	if (!f) {
		error_setsys("cannot open '/proc/self/smaps'");
		goto out;
	}
	/* Read it all first: madvise() while reading would change what
	 * the kernel is listing. */
	while (getline(&line, &linecap, f) > 0) {
		struct vma next;
		size_t dummy;

		if (vma_header(line, &next)) {
			if (have)
				keep_if_droppable(&drop, &ndrop, &cap, &cur);
			cur = next;
			have = 1;
			continue;
		}
		if (!have)
			continue;
		if (field_kb(line, "Rss", &cur.rss) ||
		    field_kb(line, "Anonymous", &cur.anon) ||
		    field_kb(line, "Locked", &cur.locked))
			continue;
		if (field_kb(line, "Private_Dirty", &dummy) ||
		    field_kb(line, "Shared_Dirty", &dummy))
			cur.dirty += dummy;
	}
	if (ferror(f)) {
		error_setsys("cannot read '/proc/self/smaps'");
		goto out;
	}
	if (have)
		keep_if_droppable(&drop, &ndrop, &cap, &cur);
	for (i = 0; i < ndrop; i++)
		if (madvise((void *)drop[i].start, drop[i].end - drop[i].start,
			    MADV_DONTNEED) == 0)
			kb += drop[i].rss;
	if (dropped_kb)
		*dropped_kb = kb;
	ret = 0;
out:
	if (f)
		fclose(f);
	free(line);
	free(drop);
	return ret;
}

static void on_trim(struct loop *l, void *arg)
{
	(void)arg;
	if (memtrim_now(NULL) < 0)
		log_warnx("memtrim: %s", error_last());
	loop_add_timer(l, MEMTRIM_PERIOD_MS, on_trim, NULL);
}

void memtrim_start(struct loop *l)
{
	loop_add_timer(l, 1000, on_trim, NULL);
}
