#!/bin/bash
# The C sources call none of the banned functions (scripts/checksrc).
. "$(dirname "$0")/test-lib.sh"

test_expect_success 'no sprintf, strcpy, strcat, gets, atoi or system' '
	"$TOP/scripts/checksrc"
'

test_expect_success 'checksrc does catch a banned call' '
	mkdir -p fake/scripts fake/server fake/tests/unit fake/tests/fuzz &&
	cp "$TOP/scripts/checksrc" fake/scripts/ &&
	printf "int f(char *d) { strcpy(d, \\"x\\"); return 0; }\\n" >fake/server/bad.c &&
	touch fake/server/ok.h fake/tests/unit/u.c fake/tests/fuzz/f.c &&
	test_must_fail fake/scripts/checksrc >out &&
	test_grep "server/bad.c:1:" out
'

test_done
