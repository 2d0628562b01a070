#!/bin/bash
# Calls go down: no circle of files calls each other, as nm sees the
# object files of the binary under test (tests/layering.py).
. "$(dirname "$0")/test-lib.sh"

real=$(readlink -f "$BERTH")
OBJ=$(dirname "$real")

test_expect_success 'the object files are there' '
	test -f "$OBJ/engine.o" &&
	test -f "$OBJ/process.o"
'

test_expect_success 'no circle of files at all' '
	python3 "$TEST_DIR/layering.py" --edges "$OBJ" >circles ||
	{ cat circles; return 1; } &&
	test_grep " 0 circles$" circles &&
	test_grep_not "circle:" circles
'

test_expect_success 'the files below the deploy reach it only through callbacks' '
	test_grep "^edge: engine -> applife " circles &&
	test_grep "^edge: applife -> deploy " circles &&
	for f in app runs releases liveroute appstats incoming; do
		test_grep_not "^edge: $f -> (deploy|applife|appcommands|commands|engine) " circles || return 1
	done &&
	for f in app applife appcommands appstats cluster deploy incoming runs; do
		test_grep_not "^edge: $f -> engine " circles || return 1
	done
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
