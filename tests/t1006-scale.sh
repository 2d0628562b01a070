#!/bin/bash
# Scaling: web and worker types up and down in any order, under keep-alive
# load, with no failed request; the engine stays up; a scale whose deploy
# fails changes nothing; a restart brings back the scale last made live.
. "$(dirname "$0")/test-lib.sh"
. "$TEST_DIR/lib-daemon.sh"

command -v wrk >/dev/null || { test_skip "wrk is not installed"; test_done; }

# block_port PORT: listen on it from another program (pid in $blocker)
block_port() {
	rm -f blocker.ready
	python3 -c "import socket, time
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((\"127.0.0.1\", $1))
s.listen(1)
open(\"blocker.ready\", \"w\").close()
time.sleep(600)" &
	blocker=$!
	retry_until 10 test -e blocker.ready
}

# procs_are LIST: "berth apps" shows exactly these processes for app sc
# (a failed deploy's reason may follow, in parentheses)
procs_are() { berth apps | grep -qE "^sc +running +v1 +$1(  \(.*\))?\$"; }

test_expect_success 'setup: web and worker behind nginx' '
	start_berth &&
	BUNDLE_APP_JSON=$WORKER_AT_1 make_web_bundle "$TRASH/sc.tar.gz" s1 "web: python3 web.py" "worker: python3 worker.py" &&
	berth deploy sc "$TRASH/sc.tar.gz" >/dev/null &&
	retry_until 10 through_nginx sc
'

test_expect_success 'scale web=2 then web=1: the engine stays up' '
	berth scale sc web=2 >out &&
	test_grep "Release 1 of sc is live" out &&
	procs_are "web.1 web.2 worker.1" &&
	berth scale sc web=1 >out &&
	test_grep "Release 1 of sc is live" out &&
	kill -0 $BERTH_PID &&
	procs_are "web.1 worker.1" &&
	through_nginx sc | grep -q "hello s1"
'

test_expect_success 'scaling up and down never reloads nginx' '
	before=$(nginx_workers) && test -n "$before" &&
	berth scale sc web=3 >/dev/null &&
	procs_are "web.1 web.2 web.3 worker.1" &&
	berth scale sc web=1 >/dev/null &&
	procs_are "web.1 worker.1" &&
	test "$(nginx_workers)" = "$before"
'

test_expect_success 'web and worker up and down in any order under wrk: no error' '
	wrk_start sc.localhost &&
	retry_until 10 test -s "$BERTH_ROOT/logs/sc/app.log" &&
	for s in web=2 worker=2 web=1 worker=0 web=3 worker=1 "web=2 worker=3" \
		 web=1 "worker=1 web=3" web=1; do
		berth scale sc $s >/dev/null || { echo "scale $s"; return 1; }
		kill -0 $BERTH_PID || { echo "engine died after scale $s"; return 1; }
	done &&
	procs_are "web.1 worker.1" &&
	wrk_stop_and_check 200 sc
'

test_expect_success 'a scale whose deploy fails keeps the scale that was live' '
	# more web processes than the port range holds: the deploy fails
	test_must_fail berth scale sc web=80 worker=2 >out 2>&1 &&
	test_grep "no free port" out &&
	procs_are "web.1 worker.1" &&
	test_grep "^scale web=1$" "$BERTH_ROOT/apps/sc/state" &&
	test_grep "^scale worker=1$" "$BERTH_ROOT/apps/sc/state" &&
	through_nginx sc | grep -q "hello s1"
'

test_expect_success 'scale changes refused before any deploy change nothing' '
	test_must_fail berth scale sc web=-1 &&
	test_must_fail berth scale sc nosuch=2 &&
	test_must_fail berth scale sc web &&
	procs_are "web.1 worker.1"
'

test_expect_success 'a restarted engine brings back the scale last made live' '
	berth scale sc worker=2 >/dev/null &&
	procs_are "web.1 worker.1 worker.2" &&
	stop_berth &&
	start_berth &&
	retry_until 20 procs_are "web.1 worker.1 worker.2" &&
	through_nginx sc | grep -q "hello s1"
'

test_expect_success 'after kill -9 too, and the engine survives its own state' '
	berth scale sc web=2 >/dev/null &&
	berth scale sc web=1 >/dev/null &&
	crash_berth &&
	start_berth &&
	retry_until 20 procs_are "web.1 worker.1 worker.2" &&
	berth apps >/dev/null &&
	kill -0 $BERTH_PID
'

test_done
