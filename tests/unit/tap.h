/*
 * tap.h: the smallest TAP producer for C unit tests.
 *   ok(cond, "what");  skip("why");  ...  return tap_done();
 */
#ifndef BERTH_TAP_H
#define BERTH_TAP_H

#include <stdio.h>

static int tap_n, tap_failed;

#define ok(cond, ...) do {						\
		int ok_ = !!(cond);					\
		tap_n++;						\
		printf("%s %d - ", ok_ ? "ok" : "not ok", tap_n);	\
		printf(__VA_ARGS__);					\
		printf("\n");						\
		if (!ok_) {						\
			tap_failed++;					\
			printf("#   failed at %s:%d: %s\n", __FILE__,	\
			       __LINE__, #cond);			\
		}							\
		fflush(stdout);						\
	} while (0)

/* Count a test that cannot run here (not root, say) as passed, saying why. */
#define skip(...) do {							\
		tap_n++;						\
		printf("ok %d # skip ", tap_n);				\
		printf(__VA_ARGS__);					\
		printf("\n");						\
		fflush(stdout);						\
	} while (0)

static inline int tap_done(void)
{
	printf("1..%d\n", tap_n);
	return tap_failed ? 1 : 0;
}

#endif
