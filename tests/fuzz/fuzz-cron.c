/* fuzz-cron: any bytes as a schedule (and as a Piku "cron:" command
 * line); what parses must fire strictly later, on a matching minute of
 * its clock or (local time only) at the end of a skipped interval. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cron.h"
#include "util.h"
#include "banned.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const time_t starts[] = {
	1710050400,	/* 2024-03-10T06:00:00Z, New York springs forward */
	1730606400,	/* 2024-11-03T04:00:00Z, and falls back */
	1704067199,	/* 2023-12-31T23:59:59Z */
};

static void check(const struct cron_expr *e)
{
	struct tm tm;
	time_t n, prev;
	size_t i;
	int k;

	for (i = 0; i < sizeof(starts) / sizeof(starts[0]); i++) {
		if (cron_next(&n, e, starts[i], CRON_UTC) == 0) {
			gmtime_r(&n, &tm);
			if (n <= starts[i] || tm.tm_sec || !cron_matches(e, &tm))
				abort();
		}
		prev = starts[i];
		for (k = 0; k < 3; k++) {
			if (cron_next(&n, e, prev, CRON_LOCAL) != 0)
				break;
			localtime_r(&n, &tm);
			/* off a matching minute only right after a jump */
			if (n <= prev || (!cron_matches(e, &tm) &&
					  (tm.tm_min != 0 || tm.tm_sec)))
				abort();
			prev = n;
		}
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int zoned;
	struct cron_expr e;
	char *text, *sched = NULL, *cmd = NULL;

	if (!zoned) {
		setenv("TZ", "America/New_York", 1);
		tzset();
		zoned = 1;
	}
	if (size > 512)
		return 0;
	text = xstrndup((const char *)data, size);
	if (cron_parse(&e, text) == 0)
		check(&e);
	if (cron_split(&e, &sched, &cmd, text) == 0) {
		if (!*cmd || !*sched)
			abort();
		check(&e);
	} else if (sched || cmd) {
		abort();
	}
	free(sched);
	free(cmd);
	free(text);
	return 0;
}
