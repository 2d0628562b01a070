#!/bin/bash
# SIGHUP reads berth.yaml again: timings and limits apply to the next
# deploy; a broken file changes nothing; restart-only keys are named.
. "$(dirname "$0")/test-lib.sh"
. "$TEST_DIR/lib-daemon.sh"

test_expect_success 'setup' '
	start_berth &&
	make_web_bundle "$TRASH/a.tar.gz" a &&
	for i in 1 2 3; do berth deploy hup "$TRASH/a.tar.gz" >/dev/null || return 1; done &&
	test "$(ls "$BERTH_ROOT/apps/hup/releases" | wc -l)" -eq 3
'

test_expect_success 'a new keep_releases applies after SIGHUP' '
	cp "$BERTH_ROOT/berth.yaml" saved.yaml &&
	echo "keep_releases: 1" >>"$BERTH_ROOT/berth.yaml" &&
	kill -HUP "$BERTH_PID" &&
	retry_until 10 grep -q "SIGHUP: reloaded berth.yaml" "$TRASH/berth.log" &&
	berth deploy hup "$TRASH/a.tar.gz" >/dev/null &&
	test "$(ls "$BERTH_ROOT/apps/hup/releases")" = 4
'

test_expect_success 'a broken berth.yaml is not taken; the engine keeps serving' '
	echo "drain: [oops" >>"$BERTH_ROOT/berth.yaml" &&
	kill -HUP "$BERTH_PID" &&
	retry_until 10 grep -q "SIGHUP: berth.yaml not reloaded: berth.yaml:" "$TRASH/berth.log" &&
	berth deploy hup "$TRASH/a.tar.gz" >out &&
	test_grep "Release 5 of hup is live" out &&
	test "$(ls "$BERTH_ROOT/apps/hup/releases")" = 5
'

test_expect_success 'a restart-only key is named, not applied' '
	cp saved.yaml "$BERTH_ROOT/berth.yaml" &&
	echo "domain: elsewhere.test" >>"$BERTH_ROOT/berth.yaml" &&
	kill -HUP "$BERTH_PID" &&
	retry_until 10 grep -q "change only with a restart" "$TRASH/berth.log" &&
	berth deploy hup "$TRASH/a.tar.gz" >/dev/null &&
	through_nginx hup / | grep -q "hello a"
'

test_done
