/* phasetrace: silent unless BERTH_TRACE_PHASES=1; then one line per call
 * on stderr with the wall clock, the pid and this process's CPU time. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "phasetrace.h"
#include "util.h"
#include "tap.h"
#include "banned.h"

/* What a child that calls phase_trace() with env (NULL: unset) writes
 * on stderr; the state is read once per process, hence the fork. */
static char *traced(const char *env)
{
	static char out[1024];
	int p[2], status;
	ssize_t n, got = 0;
	pid_t pid;

	if (pipe(p) < 0)
		abort();
	pid = fork();
	if (pid < 0)
		abort();
	if (pid == 0) {
		dup2(p[1], 2);
		close(p[0]);
		if (env)
			setenv("BERTH_TRACE_PHASES", env, 1);
		else
			unsetenv("BERTH_TRACE_PHASES");
		phase_trace("receive: pack received (%d bytes)", 42);
		_exit(0);
	}
	close(p[1]);
	while ((n = read(p[0], out + got, sizeof(out) - 1 - (size_t)got)) > 0)
		got += n;
	close(p[0]);
	out[got] = '\0';
	if (waitpid(pid, &status, 0) < 0 || !WIFEXITED(status))
		abort();
	return out;
}

int main(void)
{
	char *s, want[64];
	long long t;
	int pid, u, sys;

	ok(strcmp(traced(NULL), "") == 0, "unset: nothing is written");
	ok(strcmp(traced("0"), "") == 0, "BERTH_TRACE_PHASES=0: nothing");
	ok(strcmp(traced("yes"), "") == 0, "only 1 turns it on");
	s = traced("1");
	ok(sscanf(s, "phase %lld.%*3d pid=%d cpu=%d+%d: ", &t, &pid, &u,
		  &sys) == 4 && t > 1000000000 && pid > 0 && u >= 0 &&
	   sys >= 0, "BERTH_TRACE_PHASES=1: time, pid and CPU (%s)", s);
	snprintf(want, sizeof(want), ": receive: pack received (42 bytes)\n");
	ok(strstr(s, want) != NULL && s[strlen(s) - 1] == '\n' &&
	   !strchr(s, '\n')[1], "then the formatted phase, one line");
	return tap_done();
}
