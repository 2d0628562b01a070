/* cron: schedules parsed and refused, and when they fire next, in UTC and
 * in local time across daylight-saving changes (New York, Lord Howe's
 * half hour, Sao Paulo's midnight). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cron.h"
#include "util.h"
#include "tap.h"
#include "banned.h"

static struct cron_expr e;

static void zone(const char *tz)
{
	setenv("TZ", tz, 1);
	tzset();
}

/* "2024-03-10T07:00:00Z" to time_t. */
static time_t at(const char *iso)
{
	struct tm tm;

	memset(&tm, 0, sizeof(tm));
	if (!strptime(iso, "%Y-%m-%dT%H:%M:%SZ", &tm))
		abort();
	return timegm(&tm);
}

static const char *iso(time_t t, char *out, size_t n)
{
	struct tm tm;

	gmtime_r(&t, &tm);
	strftime(out, n, "%Y-%m-%dT%H:%M:%SZ", &tm);
	return out;
}

/* cron_next of 'sched' after 'from' is 'want' ("none": ERR_NOTFOUND). */
static void next_is(const char *sched, enum cron_zone z, const char *from,
		    const char *want, const char *what)
{
	time_t n = 0;
	char got[32];
	int r;

	if (cron_parse(&e, sched) < 0) {
		ok(0, "%s: '%s' does not parse: %s", what, sched, error_last());
		return;
	}
	r = cron_next(&n, &e, at(from), z);
	if (!strcmp(want, "none")) {
		ok(r == ERR_NOTFOUND, "%s: never (got %d %s)", what, r,
		   r == 0 ? iso(n, got, sizeof(got)) : "");
		return;
	}
	ok(r == 0 && n == at(want), "%s: %s after %s is %s (got %s)", what,
	   sched, from, want, r == 0 ? iso(n, got, sizeof(got)) : error_last());
}

static void bad(const char *sched, const char *msg)
{
	int r = cron_parse(&e, sched);

	ok(r == ERR_INVALID && !strcmp(error_last(), msg),
	   "'%s' refused: want '%s', got '%s'", sched, msg,
	   r < 0 ? error_last() : "success");
}

static void test_parse(void)
{
	ok(cron_parse(&e, "*/15 9-17 * * mon-fri") == 0 &&
	   e.minutes == ((1ULL << 0) | (1ULL << 15) | (1ULL << 30) |
			 (1ULL << 45)) &&
	   e.hours == 0x3fe00 && e.wdays == 0x3e &&
	   (e.flags & CRON_DOM_STAR) && !(e.flags & CRON_DOW_STAR) &&
	   (e.flags & CRON_WILDCARD), "steps, ranges, day names");
	ok(cron_parse(&e, "  0 0 1,15 JAN-Mar,dec 7\t") == 0 &&
	   e.mdays == ((1U << 1) | (1U << 15)) &&
	   e.months == 0x100e && e.wdays == 1 &&
	   !(e.flags & CRON_WILDCARD), "lists, month names, 7 is Sunday");
	ok(cron_parse(&e, "0-30/10 */6 */2 * 0-7") == 0 &&
	   e.minutes == ((1ULL << 0) | (1ULL << 10) | (1ULL << 20) |
			 (1ULL << 30)) &&
	   e.hours == ((1U << 0) | (1U << 6) | (1U << 12) | (1U << 18)) &&
	   e.wdays == 0x7f && (e.flags & CRON_DOM_STAR),
	   "range with a step, 0-7 days");
	ok(cron_parse(&e, "@hourly") == 0 && e.minutes == 1 &&
	   e.hours == 0xffffff && (e.flags & CRON_WILDCARD), "@hourly");
	ok(cron_parse(&e, "@Daily") == 0 && e.hours == 1 &&
	   !(e.flags & CRON_WILDCARD), "@daily, any case");
	ok(cron_parse(&e, "@weekly") == 0 && e.wdays == 1, "@weekly");
	ok(cron_parse(&e, "@yearly") == 0 && e.months == 2 && e.mdays == 2,
	   "@yearly");
	bad("60 * * * *", "minute '60' is out of range (0-59)");
	bad("* 24 * * *", "hour '24' is out of range (0-23)");
	bad("* * 0 * *", "day of month '0' is out of range (1-31)");
	bad("* * * 13 *", "month '13' is out of range (1-12)");
	bad("* * * * 8", "day of week '8' is out of range (0-7)");
	bad("* * * * fry", "day of week 'fry' is not a number or a name");
	bad("x * * * *", "minute 'x' is not a number");
	bad("*/0 * * * *", "minute '*/0' has a step out of range");
	bad("5/15 * * * *", "minute '5/15' needs a range before its step "
	    "(like 0-59/15 or */15)");
	bad("30-10 * * * *", "minute '30-10' runs backwards");
	bad("1,,2 * * * *", "minute has an empty item");
	bad("* * * *", "a schedule has 5 fields (minute hour day month "
	    "weekday), not 4");
	bad("* * * * * *", "a schedule has 5 fields (minute hour day month "
	    "weekday), not more");
	bad("0 0 ? * MON", "day of month '?': '?' is not crontab syntax");
	bad("0 0 L * *", "day of month 'L': 'L' is not crontab syntax");
	bad("@reboot", "@reboot is not a schedule (run it as a process)");
	bad("@often", "unknown schedule '@often' (use @hourly, @daily, "
	    "@weekly, @monthly or @yearly)");
	bad("@daily 5", "'@daily' takes no fields after it");
	bad("", "a schedule has 5 fields (minute hour day month weekday), "
	    "not 0");
}

static void test_split(void)
{
	char *s = NULL, *c = NULL;

	ok(cron_split(&e, &s, &c, " */5  * * * *   python3 batch.py --x \r")
	   == 0 && !strcmp(s, "*/5  * * * *") &&
	   !strcmp(c, "python3 batch.py --x"), "Piku cron line: '%s' '%s'",
	   s ? s : "", c ? c : "");
	free(s);
	free(c);
	s = c = NULL;
	ok(cron_split(&e, &s, &c, "@daily ./cleanup") == 0 &&
	   !strcmp(s, "@daily") && !strcmp(c, "./cleanup"), "@daily line");
	free(s);
	free(c);
	s = c = NULL;
	ok(cron_split(&e, &s, &c, "bundle exec clockwork") == ERR_NOTFOUND &&
	   !s && !c, "an ordinary command is not a schedule");
	ok(cron_split(&e, &s, &c, "echo 'a # b'") == ERR_NOTFOUND,
	   "echo is not a schedule");
	ok(cron_split(&e, &s, &c, "0 0 * * *") == ERR_INVALID &&
	   !strcmp(error_last(), "a schedule but no command"),
	   "schedule without a command: %s", error_last());
	ok(cron_split(&e, &s, &c, "*/5 * * * python3 x.py") == ERR_INVALID &&
	   !strcmp(error_last(), "day of week 'python3' is not a number or "
		   "a name"), "four fields and a command: %s", error_last());
	ok(!s && !c, "nothing set on failure");
}

static void test_utc(void)
{
	zone("America/New_York");	/* must not matter */
	next_is("*/5 * * * *", CRON_UTC, "2024-05-01T12:03:10Z",
		"2024-05-01T12:05:00Z", "every 5 minutes");
	next_is("*/5 * * * *", CRON_UTC, "2024-05-01T12:05:00Z",
		"2024-05-01T12:10:00Z", "strictly after");
	next_is("0 0 29 2 *", CRON_UTC, "2023-03-01T00:00:00Z",
		"2024-02-29T00:00:00Z", "leap day");
	next_is("0 0 31 * *", CRON_UTC, "2024-04-01T00:00:00Z",
		"2024-05-31T00:00:00Z", "31st skips April");
	next_is("0 12 13 * 5", CRON_UTC, "2024-09-01T00:00:00Z",
		"2024-09-06T12:00:00Z", "13th or a Friday: Friday 6th");
	next_is("0 12 13 * 5", CRON_UTC, "2024-09-12T00:00:00Z",
		"2024-09-13T12:00:00Z", "13th or a Friday: Friday 13th");
	next_is("0 12 */2 * 5", CRON_UTC, "2024-09-01T00:00:00Z",
		"2024-09-13T12:00:00Z", "*/2 days and Friday: both");
	next_is("0 9 * * mon-fri", CRON_UTC, "2024-09-06T10:00:00Z",
		"2024-09-09T09:00:00Z", "weekdays skip the weekend");
	next_is("@yearly", CRON_UTC, "2024-12-31T23:59:59Z",
		"2025-01-01T00:00:00Z", "new year");
	next_is("0 0 30 2 *", CRON_UTC, "2024-01-01T00:00:00Z", "none",
		"February 30th never comes");
	next_is("0 0 29 2 1", CRON_UTC, "2024-03-01T00:00:00Z",
		"2025-02-03T00:00:00Z", "29 Feb or a February Monday");
}

static void test_new_york(void)
{
	zone("America/New_York");
	/* 2024-03-10: 02:00 EST (07:00Z) becomes 03:00 EDT */
	next_is("30 2 * * *", CRON_LOCAL, "2024-03-10T06:00:00Z",
		"2024-03-10T07:00:00Z", "fixed job in the skipped hour runs "
		"right after the jump");
	next_is("30 2 * * *", CRON_LOCAL, "2024-03-10T07:00:00Z",
		"2024-03-11T06:30:00Z", "and then next day at 02:30 EDT");
	next_is("30 2 * * *", CRON_LOCAL, "2024-03-09T00:00:00Z",
		"2024-03-09T07:30:00Z", "the day before, EST");
	next_is("*/15 * * * *", CRON_LOCAL, "2024-03-10T06:50:00Z",
		"2024-03-10T07:00:00Z", "wildcard: 03:00 EDT comes next");
	next_is("30 * * * *", CRON_LOCAL, "2024-03-10T06:40:00Z",
		"2024-03-10T07:30:00Z", "hourly job: no 02:30, then 03:30");
	next_is("0 3 * * *", CRON_LOCAL, "2024-03-10T06:59:00Z",
		"2024-03-10T07:00:00Z", "03:00 itself");
	/* 2024-11-03: 02:00 EDT (06:00Z) becomes 01:00 EST */
	next_is("30 1 * * *", CRON_LOCAL, "2024-11-03T04:00:00Z",
		"2024-11-03T05:30:00Z", "fixed job, first 01:30");
	next_is("30 1 * * *", CRON_LOCAL, "2024-11-03T05:30:00Z",
		"2024-11-04T06:30:00Z", "not again in the repeated hour");
	next_is("30 1 * * *", CRON_LOCAL, "2024-11-03T06:10:00Z",
		"2024-11-04T06:30:00Z", "from inside the repeated hour");
	next_is("*/20 * * * *", CRON_LOCAL, "2024-11-03T05:50:00Z",
		"2024-11-03T06:00:00Z", "wildcard runs in the second 01:00");
	next_is("*/20 * * * *", CRON_LOCAL, "2024-11-03T06:00:00Z",
		"2024-11-03T06:20:00Z", "and on through it");
	next_is("@hourly", CRON_LOCAL, "2024-11-03T05:30:00Z",
		"2024-11-03T06:00:00Z", "@hourly: each real hour");
	next_is("0 2 * * *", CRON_LOCAL, "2024-11-03T05:30:00Z",
		"2024-11-03T07:00:00Z", "02:00 EST after the repeated hour");
	next_is("0 12 * * *", CRON_LOCAL, "2024-06-01T00:00:00Z",
		"2024-06-01T16:00:00Z", "noon EDT is 16:00Z");
	next_is("0 12 * * *", CRON_LOCAL, "2024-12-01T00:00:00Z",
		"2024-12-01T17:00:00Z", "noon EST is 17:00Z");
	next_is("0 0 1 1 *", CRON_LOCAL, "2024-01-02T00:00:00Z",
		"2025-01-01T05:00:00Z", "a year ahead, across both changes");
}

static void test_odd_zones(void)
{
	/* Lord Howe: +10:30, and +11 in summer; 2024-04-07 02:00 +11
	 * (15:00Z the day before) becomes 01:30 +10:30 */
	zone("Australia/Lord_Howe");
	next_is("45 1 * * *", CRON_LOCAL, "2024-04-06T14:00:00Z",
		"2024-04-06T14:45:00Z", "Lord Howe: first 01:45");
	next_is("45 1 * * *", CRON_LOCAL, "2024-04-06T14:45:00Z",
		"2024-04-07T15:15:00Z", "Lord Howe: not the second 01:45");
	next_is("*/15 * * * *", CRON_LOCAL, "2024-04-06T14:50:00Z",
		"2024-04-06T15:00:00Z", "Lord Howe: 01:30 again, wildcard");
	/* 2024-10-06 02:00 +10:30 (15:30Z) becomes 02:30 +11 */
	next_is("10 2 * * *", CRON_LOCAL, "2024-10-05T15:00:00Z",
		"2024-10-05T15:30:00Z", "Lord Howe: skipped half hour");
	/* Sao Paulo 2018-11-04: midnight -03 (03:00Z) became 01:00 -02 */
	zone("America/Sao_Paulo");
	next_is("0 0 * * *", CRON_LOCAL, "2018-11-03T12:00:00Z",
		"2018-11-04T03:00:00Z", "Sao Paulo: the missing midnight");
	next_is("0 0 * * *", CRON_LOCAL, "2018-11-04T03:00:00Z",
		"2018-11-05T02:00:00Z", "Sao Paulo: then midnight -02");
	zone("UTC");
	next_is("30 2 * * *", CRON_LOCAL, "2024-03-10T00:00:00Z",
		"2024-03-10T02:30:00Z", "local time in UTC");
}

int main(void)
{
	test_parse();
	test_split();
	test_utc();
	test_new_york();
	test_odd_zones();
	return tap_done();
}
