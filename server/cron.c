/* cron: see cron.h. */
#include "cron.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "util.h"
#include "banned.h"

#define DST_JUMP_MAX (3 * 3600)	/* Debian cron's limit for DST handling */
#define HORIZON (3660L * 86400)	/* ten years and then some */
#define TIME_MAX_OK 253370764800LL	/* 9999-01-01: gmtime's comfort */

struct field {
	const char *name;	/* for messages */
	int min, max;
	const char *const *names;	/* index + names_base = value */
	int names_base;
};

static const char *const month_names[] = {
	"jan", "feb", "mar", "apr", "may", "jun",
	"jul", "aug", "sep", "oct", "nov", "dec", NULL,
};
static const char *const day_names[] = {
	"sun", "mon", "tue", "wed", "thu", "fri", "sat", NULL,
};

static const struct field fields[5] = {
	{ "minute", 0, 59, NULL, 0 },
	{ "hour", 0, 23, NULL, 0 },
	{ "day of month", 1, 31, NULL, 0 },
	{ "month", 1, 12, month_names, 1 },
	{ "day of week", 0, 7, day_names, 0 },
};

static const struct {
	const char *name;
	const char *fields;
} macros[] = {
	{ "@yearly", "0 0 1 1 *" },
	{ "@annually", "0 0 1 1 *" },
	{ "@monthly", "0 0 1 * *" },
	{ "@weekly", "0 0 * * 0" },
	{ "@daily", "0 0 * * *" },
	{ "@midnight", "0 0 * * *" },
	{ "@hourly", "0 * * * *" },
};

/* A value of field f at s..e: a number or a name.  -1 if neither. */
static int field_value(const struct field *f, const char *s, size_t n)
{
	int i;
	long v;
	char tmp[16];

	if (!n || n >= sizeof(tmp))
		return -1;
	memcpy(tmp, s, n);
	tmp[n] = '\0';
	if (isdigit((unsigned char)tmp[0])) {
		v = parse_long(tmp, 1000);
		return v < 0 ? -1 : (int)v;
	}
	for (i = 0; f->names && f->names[i]; i++)
		if (!strcasecmp(tmp, f->names[i]))
			return i + f->names_base;
	return -1;
}

static int item_error(const struct field *f, const char *s, size_t n,
		      const char *why)
{
	return error_set("%s '%.*s' %s", f->name, (int)(n > 40 ? 40 : n), s,
			 why), ERR_INVALID;
}

/* One comma-separated item of field f into *mask. */
static int parse_item(const struct field *f, const char *s, size_t n,
		      uint64_t *mask)
{
	const char *slash = memchr(s, '/', n), *dash;
	size_t rn = slash ? (size_t)(slash - s) : n;
	int lo, hi, step = 1, v;
	char range[48];

	if (!n)
		return error_set("%s has an empty item", f->name), ERR_INVALID;
	if (slash) {
		long st;
		char tmp[16];
		size_t sn = n - rn - 1;

		if (!sn || sn >= sizeof(tmp))
			return item_error(f, s, n, "has a bad step");
		memcpy(tmp, slash + 1, sn);
		tmp[sn] = '\0';
		st = parse_long(tmp, 1000);
		if (st < 1 || st > f->max - f->min + 1)
			return item_error(f, s, n, "has a step out of range");
		step = (int)st;
	}
	if (rn == 1 && s[0] == '*') {
		lo = f->min;
		hi = f->max == 7 ? 6 : f->max;	/* '*' days: 0-6 */
	} else {
		dash = memchr(s, '-', rn);
		if (dash) {
			lo = field_value(f, s, (size_t)(dash - s));
			hi = field_value(f, dash + 1,
					 rn - (size_t)(dash - s) - 1);
		} else {
			lo = hi = field_value(f, s, rn);
			if (slash)
				return item_error(f, s, n, "needs a range "
						  "before its step (like "
						  "0-59/15 or */15)");
		}
		if (lo < 0 || hi < 0) {
			snprintf(range, sizeof(range), "is not a number%s",
				 f->names ? " or a name" : "");
			return item_error(f, s, n, range);
		}
		if (lo < f->min || hi > f->max || hi < f->min) {
			snprintf(range, sizeof(range),
				 "is out of range (%d-%d)", f->min, f->max);
			return item_error(f, s, n, range);
		}
		if (lo > hi)
			return item_error(f, s, n, "runs backwards");
	}
	for (v = lo; v <= hi; v += step)
		*mask |= (uint64_t)1 << (f->max == 7 && v == 7 ? 0 : v);
	return 0;
}

static int parse_field(const struct field *f, const char *s, size_t n,
		       uint64_t *mask)
{
	size_t i = 0;

	*mask = 0;
	while (i <= n) {
		const char *c = memchr(s + i, ',', n - i);
		size_t len = c ? (size_t)(c - (s + i)) : n - i;
		int r = parse_item(f, s + i, len, mask);

		if (r < 0)
			return r;
		i += len + 1;
	}
	return 0;
}

static int is_sep(char c)
{
	return c == ' ' || c == '\t';
}

int cron_parse(struct cron_expr *e, const char *schedule)
{
	struct cron_expr x;
	const char *p = schedule, *start[5];
	size_t len[5], i, n = 0;
	uint64_t mask;
	int r;

	if (!schedule)
		return error_set("no schedule"), ERR_INVALID;
	if (strlen(schedule) > CRON_SCHEDULE_MAX)
		return error_set("schedule is too long"), ERR_INVALID;
	while (is_sep(*p))
		p++;
	if (*p == '@') {
		size_t wn = strcspn(p, " \t");
		const char *rest = p + wn;

		while (is_sep(*rest))
			rest++;
		if (*rest)
			return error_set("'%.*s' takes no fields after it",
					 (int)(wn > 20 ? 20 : wn), p),
			       ERR_INVALID;
		for (i = 0; i < ARRAY_SIZE(macros); i++)
			if (strlen(macros[i].name) == wn &&
			    !strncasecmp(p, macros[i].name, wn))
				return cron_parse(e, macros[i].fields);
		if (wn == 7 && !strncasecmp(p, "@reboot", 7))
			return error_set("@reboot is not a schedule (run it "
					 "as a process)"), ERR_INVALID;
		return error_set("unknown schedule '%.*s' (use @hourly, "
				 "@daily, @weekly, @monthly or @yearly)",
				 (int)(wn > 20 ? 20 : wn), p), ERR_INVALID;
	}
	while (*p) {
		size_t wn = strcspn(p, " \t");

		if (n == 5)
			return error_set("a schedule has 5 fields (minute "
					 "hour day month weekday), not more"),
			       ERR_INVALID;
		start[n] = p;
		len[n++] = wn;
		p += wn;
		while (is_sep(*p))
			p++;
	}
	if (n != 5)
		return error_set("a schedule has 5 fields (minute hour day "
				 "month weekday), not %zu", n), ERR_INVALID;
	memset(&x, 0, sizeof(x));
	for (i = 0; i < 5; i++) {
		size_t j;

		for (j = 0; j < len[i]; j++) {
			char c = start[i][j];

			if (c == '?' || c == '#' ||
			    ((c == 'L' || c == 'W') && i != 3 && i != 4))
			{
				int shown = len[i] > 40 ? 40 : (int)len[i];

				return error_set("%s '%.*s': '%c' is not "
						 "crontab syntax",
						 fields[i].name, shown,
						 start[i], c), ERR_INVALID;
			}
		}
		r = parse_field(&fields[i], start[i], len[i], &mask);
		if (r < 0)
			return r;
		switch (i) {
		case 0: x.minutes = mask; break;
		case 1: x.hours = (uint32_t)mask; break;
		case 2: x.mdays = (uint32_t)mask; break;
		case 3: x.months = (uint32_t)mask; break;
		case 4: x.wdays = (uint32_t)mask; break;
		}
	}
	if (start[0][0] == '*' || start[1][0] == '*')
		x.flags |= CRON_WILDCARD;
	if (start[2][0] == '*')
		x.flags |= CRON_DOM_STAR;
	if (start[4][0] == '*')
		x.flags |= CRON_DOW_STAR;
	*e = x;
	return 0;
}

/* The first word could be a cron field or an @name: a schedule is meant. */
static int looks_like_schedule(const char *w, size_t n)
{
	size_t i;

	if (n && w[0] == '@')
		return 1;
	for (i = 0; i < n; i++)
		if (!isdigit((unsigned char)w[i]) && !strchr("*/,-", w[i]))
			return 0;
	return n > 0;
}

int cron_split(struct cron_expr *e, char **schedule, char **command,
	       const char *line)
{
	const char *p = line, *sched_start, *sched_end, *cmd;
	size_t words = 0, n;
	struct cron_expr x;
	char *text;
	int r;

	while (is_sep(*p))
		p++;
	n = strcspn(p, " \t");
	if (!looks_like_schedule(p, n))
		return ERR_NOTFOUND;
	sched_start = p;
	sched_end = p;
	while (*p && words < (*sched_start == '@' ? 1u : 5u)) {
		n = strcspn(p, " \t");
		p += n;
		sched_end = p;
		words++;
		while (is_sep(*p))
			p++;
	}
	cmd = p;
	if ((size_t)(sched_end - sched_start) > CRON_SCHEDULE_MAX)
		return error_set("schedule is too long"), ERR_INVALID;
	text = xstrndup(sched_start, (size_t)(sched_end - sched_start));
	r = cron_parse(&x, text);
	if (r < 0) {
		free(text);
		return r;
	}
	n = strlen(cmd);
	while (n && (is_sep(cmd[n - 1]) || cmd[n - 1] == '\r' ||
		     cmd[n - 1] == '\n'))
		n--;
	if (!n) {
		free(text);
		return error_set("a schedule but no command"), ERR_INVALID;
	}
	*command = xstrndup(cmd, n);
	*schedule = text;
	*e = x;
	return 0;
}

/* ---- matching ---- */

static int day_matches(const struct cron_expr *e, int mday, int wday)
{
	int dom = (int)(e->mdays >> mday & 1);
	int dow = (int)(e->wdays >> wday & 1);

	if (e->flags & (CRON_DOM_STAR | CRON_DOW_STAR))
		return dom && dow;
	return dom || dow;
}

int cron_matches(const struct cron_expr *e, const struct tm *tm)
{
	struct tm t = *tm;
	time_t s;

	t.tm_sec = 0;
	s = timegm(&t);		/* for the weekday */
	if (s == (time_t)-1 && t.tm_year != 69)
		return 0;
	gmtime_r(&s, &t);
	return (e->months >> (t.tm_mon + 1) & 1) &&
	       day_matches(e, t.tm_mday, t.tm_wday) &&
	       (e->hours >> t.tm_hour & 1) &&
	       (e->minutes >> t.tm_min & 1);
}

/*
 * The first civil minute >= from (seconds counted as if UTC, minute
 * aligned) that e matches, no later than limit; -1 if none.
 */
static int64_t next_civil(const struct cron_expr *e, int64_t from,
			  int64_t limit)
{
	int64_t t = from;
	struct tm tm;

	while (t <= limit) {
		time_t tt = (time_t)t;

		if (!gmtime_r(&tt, &tm))
			return -1;
		tm.tm_sec = 0;
		if (!(e->months >> (tm.tm_mon + 1) & 1)) {
			tm.tm_mon++;
			tm.tm_mday = 1;
			tm.tm_hour = tm.tm_min = 0;
		} else if (!day_matches(e, tm.tm_mday, tm.tm_wday)) {
			tm.tm_mday++;
			tm.tm_hour = tm.tm_min = 0;
		} else if (!(e->hours >> tm.tm_hour & 1)) {
			tm.tm_hour++;
			tm.tm_min = 0;
		} else if (!(e->minutes >> tm.tm_min & 1)) {
			tm.tm_min++;
		} else {
			return t;
		}
		t = (int64_t)timegm(&tm);
	}
	return -1;
}

static int64_t floor_div(int64_t a, int64_t b)
{
	return a >= 0 ? a / b : -((-a + b - 1) / b);
}

/* The next minute boundary strictly after civil second c. */
static int64_t minute_after(int64_t c)
{
	return floor_div(c, 60) * 60 + 60;
}

/* ... at or after c. */
static int64_t minute_from(int64_t c)
{
	return floor_div(c + 59, 60) * 60;
}

static long offset_at(int64_t t)
{
	time_t tt = (time_t)t;
	struct tm tm;

	if (!localtime_r(&tt, &tm))
		return 0;
	return tm.tm_gmtoff;
}

/*
 * The first instant in (lo, hi] whose UTC offset is not 'off', probing a
 * day at a time, then halving: 1 with *at set, 0 if none is seen.  (Two
 * changes within one day that cancel out are not seen; no zone in use
 * has them.)
 */
static int find_change(int64_t lo, int64_t hi, long off, int64_t *at)
{
	int64_t a = lo, b;

	while (a < hi) {
		b = hi - a > 86400 ? a + 86400 : hi;
		if (offset_at(b) != off) {
			while (b - a > 1) {
				int64_t mid = a + (b - a) / 2;

				if (offset_at(mid) != off)
					b = mid;
				else
					a = mid;
			}
			*at = b;
			return 1;
		}
		a = b;
	}
	return 0;
}

static int next_local(time_t *next, const struct cron_expr *e, int64_t after)
{
	long off = offset_at(after);
	int64_t lo = after, min_civ, limit, c, cand, t;
	int64_t rep_lo = 0, rep_hi = 0;	/* repeated civil range, if any */
	int fixed = !(e->flags & CRON_WILDCARD), i;

	min_civ = minute_after(after + off);
	limit = after + off + HORIZON;
	/* Just after the clock went back: in the repeated hour already? */
	if (offset_at(after - 86400) != off) {
		int64_t a = after - 86400, b = after;

		while (b - a > 1) {
			int64_t mid = a + (b - a) / 2;

			if (offset_at(mid) == off)
				b = mid;
			else
				a = mid;
		}
		t = offset_at(b - 1);
		if (t > off && t - off < DST_JUMP_MAX) {
			rep_lo = b + off;
			rep_hi = b + t;
		}
	}
	for (i = 0; i < 100000; i++) {
		c = next_civil(e, min_civ, limit);
		if (c < 0)
			return ERR_NOTFOUND;
		cand = c - off;
		if (find_change(lo, cand, off, &t)) {
			long off2 = offset_at(t);

			if (off2 > off && c < t + off2 && fixed &&
			    off2 - off < DST_JUMP_MAX) {
				/* skipped by the jump: run right after it */
				*next = (time_t)t;
				return 0;
			}
			rep_lo = rep_hi = 0;
			if (off2 < off && off - off2 < DST_JUMP_MAX) {
				rep_lo = t + off2;
				rep_hi = t + off;
			}
			lo = t;
			off = off2;
			min_civ = minute_from(t + off);
			continue;
		}
		if (fixed && c >= rep_lo && c < rep_hi) {
			/* ran in the first pass of the repeated hour */
			min_civ = c + 60;
			continue;
		}
		*next = (time_t)cand;
		return 0;
	}
	return ERR_NOTFOUND;
}

int cron_next(time_t *next, const struct cron_expr *e, time_t after,
	      enum cron_zone zone)
{
	int64_t a = (int64_t)after, c;

	if (a < 0 || a > TIME_MAX_OK - 2 * HORIZON)
		return ERR_NOTFOUND;
	if (zone == CRON_LOCAL)
		return next_local(next, e, a);
	c = next_civil(e, minute_after(a), a + HORIZON);
	if (c < 0)
		return ERR_NOTFOUND;
	*next = (time_t)c;
	return 0;
}
