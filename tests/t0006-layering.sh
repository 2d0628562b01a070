#!/bin/bash
# Calls go down: no circle of files calls each other, as nm sees the
# object files of the binary under test (tests/layering.py).
. "$(dirname "$0")/test-lib.sh"

real=$(readlink -f "$BERTH")
OBJ=$(dirname "$real")

# Still calling each other, to be taken apart (issue #10: the command
# handlers and the app registry, appjson and the manifest).  These may
# only shrink: a circle with any other file fails.
# cluster.c joined it when it was merged beside this test (it reads and
# deploys apps, and the engine starts it): its calls up go next.
# appcommands, deploy, releases and runs are app.c's old code, split out
# of it, and incoming engine.c's: the same circle, in more files.
KNOWN_APP="app appcommands appinfo apprename appstats certs cluster commands deploy domains engine export incoming liveroute releases runs serverlog status"
KNOWN_MANIFEST="appjson manifest"

test_expect_success 'the object files are there' '
	test -f "$OBJ/engine.o" &&
	test -f "$OBJ/process.o"
'

test_expect_success 'no circle of files beyond the known ones' '
	python3 "$TEST_DIR/layering.py" "$OBJ" "$KNOWN_APP" "$KNOWN_MANIFEST" >circles ||
	{ cat circles; return 1; }
'

test_expect_success 'process, logger, client and the git services call only down' '
	for f in process logger client control gitsvc gitserve receive upload gitrefs pipeline; do
		test_grep_not "circle: (.* )?$f( |$)" circles || return 1
	done
'

test_expect_success 'a file that calls up is caught' '
	mkdir objs &&
	printf "void low(void);\nvoid high(void);\nvoid low(void) { high(); }\n" >low.c &&
	printf "void low(void);\nvoid high(void);\nvoid high(void) { low(); }\n" >high.c &&
	cc -c -o objs/low.o low.c &&
	cc -c -o objs/high.o high.c &&
	test_expect_code 1 python3 "$TEST_DIR/layering.py" objs >out &&
	test_grep "^circle: high low$" out &&
	test_grep "low -> high \(high\)" out
'

test_done
