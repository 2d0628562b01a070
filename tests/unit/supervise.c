/* supervise.c's back-off: doubling, its cap, the start over after a
 * stable run, and failed starts that do not start over. */
#include "supervise.h"
#include "tap.h"
#include "util.h"
#include "banned.h"

int main(void)
{
	struct restart_backoff b;
	int64_t now = now_ms();

	backoff_init(&b, 1000, 5000, 30000);
	ok(backoff_exited(&b, now) == 1000, "first quick death: min");
	ok(backoff_exited(&b, now) == 2000, "then doubling");
	ok(backoff_exited(&b, now) == 4000, "and again");
	ok(backoff_exited(&b, now) == 5000, "up to max");
	ok(backoff_exited(&b, now) == 5000, "and stays there");
	ok(backoff_exited(&b, now - 31000) == 1000,
	   "a run that lasted stable_ms starts over");
	ok(backoff_failed(&b) == 2000 && backoff_failed(&b) == 4000,
	   "failed starts keep doubling");
	ok(b.next_ms == 5000, "next_ms says the next delay (%ld)", b.next_ms);
	return tap_done();
}
