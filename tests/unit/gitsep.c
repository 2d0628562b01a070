/* gitsep: the build request from a session's berth-ssh git process. */
#include <string.h>

#include "gitsep.h"
#include "tap.h"
#include "util.h"
#include "banned.h"

#define NEW "0123456789abcdef0123456789abcdef01234567"
#define OLD "0000000000000000000000000000000000000000"

static int parse(const char *m, struct gitsep_deploy *d)
{
	return gitsep_parse_deploy(m, strlen(m), d);
}

int main(void)
{
	struct gitsep_deploy d;
	char big[GITSEP_REF_MAX + 200];

	ok(parse(NEW " " OLD " 0 refs/heads/main", &d) == 0 &&
	   !strcmp(d.commit, NEW) && !strcmp(d.old, OLD) &&
	   d.clean_cache == 0 && !strcmp(d.ref, "refs/heads/main"),
	   "a new branch");
	ok(parse(NEW " " NEW " 1 refs/heads/feature/x-1.2", &d) == 0 &&
	   d.clean_cache == 1 && !strcmp(d.ref, "refs/heads/feature/x-1.2"),
	   "clean-cache, a ref with folders");
	ok(parse(OLD " " NEW " 0 refs/heads/main", &d) == ERR_INVALID,
	   "a delete is no build");
	ok(parse("0123456789ABCDEF0123456789abcdef01234567 " OLD
		 " 0 refs/heads/main", &d) == ERR_INVALID, "upper-case hex");
	ok(parse(NEW " " OLD " 2 refs/heads/main", &d) == ERR_INVALID,
	   "a flag that is not 0 or 1");
	ok(parse(NEW " " OLD " 0 HEAD", &d) == ERR_INVALID, "not under refs/");
	ok(parse(NEW " " OLD " 0 refs/heads/../../x", &d) == ERR_INVALID,
	   "'..' in the ref");
	ok(parse(NEW " " OLD " 0 refs/heads/a b", &d) == ERR_INVALID,
	   "a space in the ref");
	ok(parse(NEW " " OLD " 0 refs/heads/x.lock", &d) == ERR_INVALID,
	   ".lock");
	ok(parse(NEW " " OLD " 0 refs/heads/main\n", &d) == ERR_INVALID,
	   "a newline");
	ok(gitsep_parse_deploy(NEW " " OLD " 0 refs/heads/ma\0in", 91, &d) ==
	   ERR_INVALID, "a NUL inside");
	ok(parse(NEW " " OLD " 0 refs/heads/main extra", &d) == ERR_INVALID,
	   "more words");
	memset(big, 'a', sizeof(big));
	memcpy(big, NEW " " OLD " 0 refs/heads/", 84 + 11);
	big[sizeof(big) - 1] = '\0';
	ok(parse(big, &d) == ERR_INVALID, "a ref too long");
	ok(parse("", &d) == ERR_INVALID && error_last()[0], "empty, said why");
	return tap_done();
}
