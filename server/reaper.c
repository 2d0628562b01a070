/* reaper: see reaper.h.  A small open table: tens of children at most
 * per app, and lookups happen once per exit. */
#include "reaper.h"

#include <errno.h>
#include <stdlib.h>
#include <sys/wait.h>

#include "util.h"
#include "banned.h"

struct watch {
	pid_t pid;
	reaper_fn fn;
	void *arg;
};

static struct watch *watches;
static size_t nwatches, awatches;

void reaper_watch(pid_t pid, reaper_fn fn, void *arg)
{
	size_t i;

	for (i = 0; i < nwatches; i++) {
		if (watches[i].pid == pid) {
			watches[i].fn = fn;
			watches[i].arg = arg;
			return;
		}
	}
	if (nwatches == awatches) {
		awatches = awatches ? awatches * 2 : 32;
		watches = xrealloc(watches, awatches * sizeof(*watches));
	}
	watches[nwatches].pid = pid;
	watches[nwatches].fn = fn;
	watches[nwatches].arg = arg;
	nwatches++;
}

void reaper_forget(pid_t pid)
{
	size_t i;

	for (i = 0; i < nwatches; i++) {
		if (watches[i].pid == pid) {
			watches[i] = watches[--nwatches];
			return;
		}
	}
}

void reaper_reap(void)
{
	pid_t pid;
	int status;
	size_t i;

	for (;;) {
		pid = waitpid(-1, &status, WNOHANG);
		if (pid < 0 && errno == EINTR)
			continue;
		if (pid <= 0)
			return;
		for (i = 0; i < nwatches; i++) {
			if (watches[i].pid == pid) {
				struct watch w = watches[i];

				watches[i] = watches[--nwatches];
				w.fn(pid, status, w.arg);
				break;
			}
		}
	}
}
