/*
 * phasetrace: one line on stderr per phase of a long operation (a push:
 * the transfer, the indexer's phases, the ref update), with the wall
 * clock and this process's CPU time, so that where the time goes can be
 * measured on a live server.  Off unless the environment has
 * BERTH_TRACE_PHASES=1 when the process first asks (sessions inherit the
 * engine's environment); when off, a call costs one branch.
 * Lines: "phase T_MS pid=PID cpu=USER_MS+SYS_MS: WHAT".
 */
#ifndef BERTH_PHASETRACE_H
#define BERTH_PHASETRACE_H

/* 1 when tracing is on. */
int phase_trace_on(void);

void phase_trace(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
