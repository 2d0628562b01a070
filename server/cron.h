/*
 * cron: crontab schedules and when they next fire.
 *
 * A schedule is five fields, "minute hour day-of-month month day-of-week"
 * (crontab(5)): '*', numbers, ranges "1-5", lists "1,3,5", steps over
 * '*' or a range ("0-30/10"), names for months (jan..dec) and days
 * (sun..sat, any case), 0 or 7 for Sunday; or one of @yearly @annually
 * @monthly @weekly @daily @midnight @hourly.  When both day fields are restricted (neither
 * starts with '*'), a day matches if either does, as Vixie cron does.
 * Refused, each with a one-line reason: @reboot (use a process), Quartz
 * extensions ('?', 'L', 'W', '#', a sixth field), "5/15" without a range,
 * ranges that run backwards, steps of 0.
 *
 * Piku's Procfile form "cron: 0 * * * * python3 job.py" puts the
 * schedule and the command on one line: cron_split() takes it apart.
 *
 * When a schedule fires next (cron_next) is computed in UTC, or in local
 * time (the process's TZ, as localtime_r() sees it), where daylight
 * saving time is handled as Debian's cron does: when the clock jumps
 * forward by less than 3 hours, a job with a fixed time (no '*' in its
 * minute or hour field, not @hourly) that falls in the skipped hour runs
 * right after the jump; when the clock goes back by less than 3 hours,
 * such a job does not run again in the repeated hour.  Jobs with '*' in
 * the minute or hour run on the clock as it reads (each real hour).
 *
 * Everything here is pure computation: nothing allocates but
 * cron_split(), nothing blocks.
 */
#ifndef BERTH_CRON_H
#define BERTH_CRON_H

#include <stdint.h>
#include <time.h>

enum cron_flags {
	CRON_DOM_STAR = 1 << 0,	/* day-of-month field starts with '*' */
	CRON_DOW_STAR = 1 << 1,	/* day-of-week field starts with '*' */
	CRON_WILDCARD = 1 << 2,	/* '*' starts the minute or hour field */
};

struct cron_expr {
	uint64_t minutes;	/* bit m: minute m, 0-59 */
	uint32_t hours;		/* bit h: 0-23 */
	uint32_t mdays;		/* bit d: 1-31 */
	uint32_t months;	/* bit m: 1-12 */
	uint32_t wdays;		/* bit d: 0-6, Sunday is 0 */
	unsigned flags;		/* enum cron_flags */
};

enum cron_zone {
	CRON_UTC,
	CRON_LOCAL,		/* the process's TZ */
};

/* Longest schedule text accepted. */
#define CRON_SCHEDULE_MAX 256

/*
 * Parse a schedule (five fields or an @name; spaces and tabs separate
 * fields, leading and trailing ones are fine).  0, or ERR_INVALID with
 * error_last() saying what is wrong, e.g. "hour '24' is out of range
 * (0-23)".  *e is only written on success.
 */
int cron_parse(struct cron_expr *e, const char *schedule);

/*
 * Split "SCHEDULE COMMAND" (Piku's cron: lines): the five fields (or the
 * @name), then the rest, trimmed.  *schedule and *command are fresh
 * strings the caller frees, set only on success.  ERR_NOTFOUND (nothing
 * set, no error text) when the line does not start with a schedule, so
 * the caller can treat it as an ordinary command; ERR_INVALID when it
 * does but there is no command, with error_last() saying so.
 */
int cron_split(struct cron_expr *e, char **schedule, char **command,
	       const char *line);

/*
 * The first time strictly after 'after' at which e fires (a whole minute
 * of the zone's clock, or the end of a skipped interval, see above), in
 * *next.  ERR_NOTFOUND if it never fires within the next 10 years ("0 0
 * 30 2 *").  Never fails otherwise.
 */
int cron_next(time_t *next, const struct cron_expr *e, time_t after,
	      enum cron_zone zone);

/* 1 if e matches the civil time tm (its year, month, day, hour, minute;
 * the weekday is computed, tm_wday is ignored). */
int cron_matches(const struct cron_expr *e, const struct tm *tm);

#endif
