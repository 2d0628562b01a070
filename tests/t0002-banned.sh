#!/bin/bash
# server/banned.h turns the calls that have no place in berth's C into
# compile errors, and every C file includes it after its other headers.
. "$(dirname "$0")/test-lib.sh"

test_expect_success 'every C file includes banned.h, after its other headers' '
	for f in "$TOP"/server/*.c "$TOP"/tests/unit/*.c "$TOP"/tests/fuzz/*.c; do
		last=$(grep "^#include" "$f" | tail -n 1) &&
		test "$last" = "#include \"banned.h\"" ||
		{ echo "${f#$TOP/}: last include is: $last"; return 1; }
	done
'

# banned CALL: a file that makes CALL does not compile, and says why
banned() {
	name=${1%%(*} &&
	printf "#include <stdio.h>\n#include <stdlib.h>\n#include <string.h>\n#include <time.h>\n#include \"banned.h\"\nvoid f(char *d, const char *s, char **p, const time_t *t);\nvoid f(char *d, const char *s, char **p, const time_t *t)\n{\n\t(void)d; (void)s; (void)p; (void)t;\n\t(void)%s;\n}\n" "$1" >bad.c &&
	test_must_fail cc -std=c11 -D_GNU_SOURCE -Wall -Werror -I"$TOP/server" \
		-c -o bad.o bad.c 2>err &&
	test_grep "sorry_${name}_is_a_banned_function" err
}

test_expect_success 'a banned call is a compile error that names it' '
	for call in "sprintf(d, \"%%s\", s)" "strcpy(d, s)" "strcat(d, s)" \
		"strncpy(d, s, 1)" "strncat(d, s, 1)" "strtok(d, s)" \
		"strtok_r(d, s, p)" "atoi(s)" "atol(s)" "atoll(s)" "system(s)" \
		"popen(s, s)" "gmtime(t)" "localtime(t)" "ctime(t)" "mktemp(d)"
	do
		banned "$call" || { echo "not refused: $call"; return 1; }
	done
'

test_expect_success 'the allowed forms compile' '
	printf "#include <stdio.h>\n#include <string.h>\n#include \"banned.h\"\nint f(char *d, size_t n, const char *s);\nint f(char *d, size_t n, const char *s)\n{\n\treturn snprintf(d, n, \"%%s\", s);\n}\n" >good.c &&
	cc -std=c11 -D_GNU_SOURCE -Wall -Werror -I"$TOP/server" -c -o good.o good.c
'

test_done
