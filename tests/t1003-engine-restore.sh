#!/bin/bash
# After kill -9 of the engine, a new engine brings every app back on its
# release, with its scale and config, and no old process survives.
. "$(dirname "$0")/test-lib.sh"
. "$TEST_DIR/lib-daemon.sh"

test_expect_success 'setup: two apps, one scaled and configured' '
	start_berth &&
	make_web_bundle "$TRASH/a1.tar.gz" a1 &&
	BUNDLE_APP_JSON=$WORKER_AT_1 make_web_bundle "$TRASH/a2.tar.gz" a2 "web: python3 web.py" "worker: python3 worker.py" &&
	berth deploy alpha "$TRASH/a1.tar.gz" &&
	berth deploy alpha "$TRASH/a2.tar.gz" &&
	berth deploy beta "$TRASH/a1.tar.gz" &&
	berth scale alpha web=2 &&
	berth config alpha set MOOD=calm &&
	berth ps alpha >ps-before &&
	berth_procs | sort >procs-before &&
	test -s procs-before
'

test_expect_success 'kill -9 of the engine, then a new engine restores all' '
	crash_berth &&
	start_berth &&
	retry_until 20 apps_line_matches "^alpha +running" &&
	retry_until 20 apps_line_matches "^beta +running" &&
	berth apps >apps &&
	test_grep "^alpha +running +v3 +web.1 web.2 worker.1" apps &&
	port=$(app_port alpha) &&
	get "http://127.0.0.1:$port/env" >env &&
	test_grep "^MOOD=calm$" env &&
	test_grep "^BERTH_RELEASE=3$" env &&
	get "http://127.0.0.1:$(app_port alpha web.2)/" >body &&
	test_grep "hello a2" body
'

test_expect_success 'no process of the old engine is left running' '
	for p in $(cat procs-before); do
		! proc_alive $p || { echo "old process $p still runs"; return 1; }
	done
'

test_done
