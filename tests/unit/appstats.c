/* Unit tests for appstats.c: the minute ring, 5xx counts, p95 and the
 * memory samples, with a clock the test sets. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "appstats.h"
#include "tap.h"
#include "banned.h"

#define T0 (60LL * 29000000)	/* a minute's start, unix seconds */

int main(void)
{
	struct appstats *st = appstats_new();
	struct appstats_minute m[APPSTATS_MINUTES];
	uint64_t kib[APPSTATS_MINUTES];
	double cpu;
	int i;

	appstats_minutes(st, "none", T0, m);
	ok(m[APPSTATS_MINUTES - 1].requests == 0 &&
	   m[APPSTATS_MINUTES - 1].p95_ms == -1 &&
	   m[APPSTATS_MINUTES - 1].minute == T0 / 60,
	   "an app with no request: zeros, no p95, minutes still named");

	/* 100 requests in one minute: 94 fast, 6 slow; 3 are 5xx */
	for (i = 0; i < 100; i++)
		appstats_request(st, "shop", i < 3 ? 503 : 200,
				 i < 94 ? 4 : 800, T0 + i % 60);
	appstats_request(st, "shop", 499, 1, T0 + 5);
	appstats_minutes(st, "shop", T0 + 59, m);
	ok(m[APPSTATS_MINUTES - 1].requests == 101, "101 requests counted: %lu",
	   m[APPSTATS_MINUTES - 1].requests);
	ok(m[APPSTATS_MINUTES - 1].errors == 3,
	   "only 5xx are errors: %lu", m[APPSTATS_MINUTES - 1].errors);
	ok(m[APPSTATS_MINUTES - 1].p95_ms == 1000,
	   "p95 falls among the slow ones, the bin edge above 800 ms: %ld",
	   m[APPSTATS_MINUTES - 1].p95_ms);
	ok(m[APPSTATS_MINUTES - 2].requests == 0,
	   "the minute before has none");

	appstats_request(st, "shop", 200, 12, T0 + 60);
	appstats_minutes(st, "shop", T0 + 60, m);
	ok(m[APPSTATS_MINUTES - 1].requests == 1 &&
	   m[APPSTATS_MINUTES - 1].p95_ms == 15 &&
	   m[APPSTATS_MINUTES - 2].requests == 101,
	   "a new minute starts its own bucket, the last one stays");

	/* an hour later the old minute's slot is reused, not added to */
	appstats_request(st, "shop", 500, 100000, T0 + 3600);
	appstats_minutes(st, "shop", T0 + 3600, m);
	ok(m[APPSTATS_MINUTES - 1].requests == 1 &&
	   m[APPSTATS_MINUTES - 1].errors == 1 &&
	   m[APPSTATS_MINUTES - 1].p95_ms == 60001,
	   "a slot an hour old starts over; beyond the last edge: %ld",
	   m[APPSTATS_MINUTES - 1].p95_ms);
	ok(m[0].requests == 1 && m[0].minute == T0 / 60 + 1,
	   "the window is 60 minutes: the oldest is the 2nd minute");

	appstats_mem_sample(st, "shop", "web.1", 100, 50 << 20, 1000000,
			    T0 * 1000, &cpu);
	ok(cpu < 0, "no CPU figure from a first sample");
	appstats_mem_sample(st, "shop", "web.1", 100, 60 << 20, 1500000,
			    T0 * 1000 + 10000, &cpu);
	ok(cpu > 4.99 && cpu < 5.01, "0.5 s of CPU in 10 s is 5%%: %.2f", cpu);
	appstats_mem_sample(st, "shop", "web.1", 101, 70 << 20, 10,
			    T0 * 1000 + 70000, &cpu);
	ok(cpu < 0, "a new pid starts the CPU figure over");
	appstats_mem_minutes(st, "shop", "web.1", T0 + 70, kib);
	ok(kib[APPSTATS_MINUTES - 1] == 70 << 10 &&
	   kib[APPSTATS_MINUTES - 2] == 60 << 10 &&
	   kib[APPSTATS_MINUTES - 3] == 0,
	   "memory per minute, the last sample of each minute, in KiB");
	appstats_mem_minutes(st, "shop", "web.2", T0 + 70, kib);
	ok(kib[APPSTATS_MINUTES - 1] == 0, "an unknown process has none");

	appstats_rename(st, "shop", "store");
	appstats_minutes(st, "store", T0 + 3600, m);
	ok(m[APPSTATS_MINUTES - 1].requests == 1, "rename: the minutes follow");
	appstats_minutes(st, "shop", T0 + 3600, m);
	ok(m[APPSTATS_MINUTES - 1].requests == 0,
	   "and the old name has none (a new app of it starts afresh)");
	appstats_rename(st, "store", "shop");
	appstats_forget(st, "shop");
	appstats_minutes(st, "shop", T0 + 3600, m);
	ok(m[APPSTATS_MINUTES - 1].requests == 0, "forget drops an app");
	appstats_free(st);
	appstats_free(NULL);
	return tap_done();
}
