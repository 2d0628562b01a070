/*
 * memtrim: gives back the memory a long-lived, mostly idle process
 * (the engine) touched once and no longer uses.
 *
 * Most of an idle engine's resident set is clean pages of the shared
 * libraries it maps (libcrypto, gnutls, libcurl, ...), touched while
 * they were loaded and set up, then never again.  Those pages are the
 * files' page cache: dropping them from our page tables
 * (MADV_DONTNEED on a private file mapping that holds no page of our
 * own) loses nothing, and a page that is used again comes back from the
 * page cache on its first touch.  Mappings that hold an anonymous
 * (copied-on-write) page, shared or locked mappings are left alone;
 * free heap goes back with malloc_trim().
 */
#ifndef BERTH_MEMTRIM_H
#define BERTH_MEMTRIM_H

#include <stddef.h>

struct loop;

/* How often the engine trims (ms) once it runs. */
#define MEMTRIM_PERIOD_MS 10000

/*
 * Trim this process now.  *dropped_kb (may be NULL) gets the resident
 * KiB of the file mappings dropped.  0, or -1 (error_last()) when
 * /proc/self/smaps cannot be read; nothing is changed then.
 */
int memtrim_now(size_t *dropped_kb);

/* Trim once soon, then every MEMTRIM_PERIOD_MS, from l's timers. */
void memtrim_start(struct loop *l);

#endif
