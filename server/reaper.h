/*
 * reaper: who gets told when a child exits.  The engine turns SIGCHLD
 * into an fd event (signalfd) and calls reaper_reap(), which waitpid()s
 * every exited child and calls the callback registered for its pid.
 * Unregistered children are reaped and forgotten.
 */
#ifndef BERTH_REAPER_H
#define BERTH_REAPER_H

#include <sys/types.h>

typedef void (*reaper_fn)(pid_t pid, int status, void *arg);

/* Call fn(pid, status, arg) once when pid exits. Replaces an earlier watch. */
void reaper_watch(pid_t pid, reaper_fn fn, void *arg);
/* Forget pid (its exit will be reaped silently). */
void reaper_forget(pid_t pid);
/* Reap all exited children; call on SIGCHLD. */
void reaper_reap(void);

#endif
