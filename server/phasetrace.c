/* phasetrace: see phasetrace.h. */
#include "phasetrace.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "banned.h"

static int trace_state = -1;	/* -1: not looked yet */

int phase_trace_on(void)
{
	if (trace_state < 0) {
		const char *v = getenv("BERTH_TRACE_PHASES");

		trace_state = v && !strcmp(v, "1");
	}
	return trace_state;
}

void phase_trace(const char *fmt, ...)
{
	struct timespec ts;
	struct rusage ru;
	char msg[512];
	va_list ap;
	int saved = errno;

	if (!phase_trace_on())
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	clock_gettime(CLOCK_REALTIME, &ts);
	if (getrusage(RUSAGE_SELF, &ru) < 0)
		memset(&ru, 0, sizeof(ru));
	fprintf(stderr, "phase %lld.%03ld pid=%d cpu=%ld+%ld: %s\n",
		(long long)ts.tv_sec, ts.tv_nsec / 1000000, (int)getpid(),
		(long)(ru.ru_utime.tv_sec * 1000 + ru.ru_utime.tv_usec / 1000),
		(long)(ru.ru_stime.tv_sec * 1000 + ru.ru_stime.tv_usec / 1000),
		msg);
	fflush(stderr);
	errno = saved;
}
