#!/bin/bash
# The git service's files call only down (issue #10): the front end
# (gitserve) calls the services, the services call what they share, and
# nothing below calls back up.  Read from the symbols of the objects the
# tested binary was built from (nm).
. "$(dirname "$0")/test-lib.sh"

OBJ=$(dirname "$(readlink -f "$BERTH")")
if ! command -v nm >/dev/null || [ ! -f "$OBJ/gitsvc.o" ]; then
	test_skip "needs nm and the objects next to $BERTH"
	test_done
fi

# rank of each file: a file may only use symbols of lower ranks
rank() {
	case $1 in
	pktline|oidset|packfile) echo 1 ;;
	indexpack|packwrite) echo 2 ;;
	gitrepack) echo 3 ;;
	gitsvc) echo 3 ;;
	gitrefs) echo 4 ;;
	receive|upload|gitarchive) echo 5 ;;
	gitserve) echo 6 ;;
	*) echo 9 ;;
	esac
}
FILES="pktline oidset packfile indexpack packwrite gitrepack gitsvc gitrefs receive upload gitarchive gitserve"

test_expect_success 'which file defines each symbol' '
	for f in $FILES; do
		nm --defined-only "$OBJ/$f.o" | awk -v f=$f "\$2 ~ /^[TDBR]$/ { print \$3, f }" || return 1
	done | sort >defs &&
	test -s defs
'

test_expect_success 'calls among them go down only' '
	: >bad &&
	for f in $FILES; do
		nm --undefined-only "$OBJ/$f.o" | awk "{ print \$2 }" | sort |
			join - defs | while read -r sym to; do
				if [ "$(rank "$to")" -ge "$(rank "$f")" ]; then
					echo "$f -> $to ($sym)" >>bad
				fi
			done || return 1
	done &&
	test_cmp /dev/null bad
'

test_expect_success 'sshd and main reach the services only through gitserve' '
	for f in sshd main; do
		nm --undefined-only "$OBJ/$f.o" | awk "{ print \$2 }" | sort |
			join - defs || return 1
	done | awk "{ print \$2 }" | sort -u >used &&
	test_grep_not "^(receive|upload|gitarchive)$" used
'

test_done
