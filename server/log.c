/* log: see log.h. */
#include "log.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "util.h"
#include "banned.h"

static int log_verbose;
static char log_title[32] = "berth";
static log_sink_fn log_sink;
static void *log_sink_arg;
static pid_t log_sink_pid;
static int log_in_sink;

void log_init(int verbose, const char *title)
{
	log_verbose = verbose;
	log_settitle(title);
}

void log_set_sink(log_sink_fn fn, void *arg)
{
	log_sink = fn;
	log_sink_arg = arg;
	log_sink_pid = getpid();
}

void log_settitle(const char *title)
{
	snprintf(log_title, sizeof(log_title), "%s", title);
}

static void vlog(const char *level, int with_errno, const char *fmt,
		 va_list ap)
{
	char msg[2048], stamp[32];
	int saved = errno;
	size_t n;

	vsnprintf(msg, sizeof(msg), fmt, ap);
	if (with_errno) {
		n = strlen(msg);
		snprintf(msg + n, sizeof(msg) - n, ": %s", strerror(saved));
	}
	time_iso(stamp, sizeof(stamp), time(NULL));
	fprintf(stderr, "%s %s[%d]: %s%s\n", stamp, log_title, (int)getpid(),
		level, msg);
	fflush(stderr);
	if (log_sink && !log_in_sink && getpid() == log_sink_pid) {
		char source[64], *line;

		snprintf(source, sizeof(source), "%s[%d]:", log_title,
			 (int)getpid());
		line = xasprintf("%s%s", level, msg);
		log_in_sink = 1;
		log_sink(log_sink_arg, source, line);
		log_in_sink = 0;
		free(line);
	}
	errno = saved;
}

#define LOGFN(name, level, errflag, cond)		\
	void name(const char *fmt, ...)			\
	{						\
		va_list ap;				\
		if (!(cond))				\
			return;				\
		va_start(ap, fmt);			\
		vlog(level, errflag, fmt, ap);		\
		va_end(ap);				\
	}

LOGFN(log_warn, "warning: ", 1, 1)
LOGFN(log_warnx, "warning: ", 0, 1)
LOGFN(log_info, "", 0, 1)
LOGFN(log_debug, "debug: ", 0, log_verbose > 0)

void fatal(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vlog("fatal: ", 1, fmt, ap);
	va_end(ap);
	exit(111);
}

void fatalx(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vlog("fatal: ", 0, fmt, ap);
	va_end(ap);
	exit(111);
}
