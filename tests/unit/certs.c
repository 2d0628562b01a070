/* certs.c's certs_renew_at: when an auto certificate is asked for again. */
#include <time.h>

#include "tap.h"
#include "certs.h"
#include "banned.h"

#define DAY 86400L

int main(void)
{
	time_t t0 = 1800000000;

	ok(certs_renew_at(t0, t0 + 90 * DAY) == t0 + 60 * DAY,
	   "a 90-day certificate is renewed 30 days before it expires");
	ok(certs_renew_at(t0, t0 + 30 * DAY + 25) == t0 + 25,
	   "a certificate of 30 days and 25 s (pebble's) after 25 s");
	ok(certs_renew_at(t0, t0 + 6 * DAY) == t0 + 4 * DAY,
	   "a 6-day certificate when a third of its life is left");
	ok(certs_renew_at(t0, t0 + 30 * DAY) == t0 + 20 * DAY,
	   "exactly 30 days: a third left, not at once");
	ok(certs_renew_at(t0, t0) == t0 - 30 * DAY,
	   "a certificate with no lifetime is due at once");
	ok(certs_renew_at(t0 + DAY, t0) == t0 - 30 * DAY,
	   "not_before after not_after: due at once");
	return tap_done();
}
