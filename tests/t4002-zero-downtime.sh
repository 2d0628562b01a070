#!/bin/bash
# No request is lost while an app is redeployed, restarted and reconfigured
# again and again, as counted by wrk over keep-alive connections.
. "$(dirname "$0")/test-lib.sh"
. "$TEST_DIR/lib-daemon.sh"

command -v wrk >/dev/null || { test_skip "wrk is not installed"; test_done; }

version_through_nginx() {
	through_nginx zd / | sed -n 's/^hello \([^ ]*\) .*/\1/p'
}

test_expect_success 'setup: app v0 behind nginx' '
	start_berth &&
	make_web_bundle "$TRASH/b0.tar.gz" v0 &&
	berth deploy zd "$TRASH/b0.tar.gz" &&
	retry_until 10 through_nginx zd &&
	test "$(version_through_nginx)" = v0 &&
	for i in $(seq 1 20); do
		make_web_bundle "$TRASH/b$i.tar.gz" v$i || return 1
	done
'

# wrk cannot be stopped early from here (its SIGINT may land on a worker
# thread while the main one sleeps out the duration), so it runs in short
# back-to-back rounds until the last change is done; every round is checked.
test_expect_success '20 deploys, 5 restarts, 5 config changes under wrk: no error' '
	rm -f wrk.out wrk.done &&
	test_when_finished "touch $PWD/wrk.done" &&
	{
		while test ! -e wrk.done; do
			wrk -t2 -c8 -d3s -H "Host: zd.localhost" \
				"http://127.0.0.1:$HTTP_PORT/" >>wrk.out 2>&1 || exit 1
		done &
	} &&
	wrk_pid=$! &&
	retry_until 10 connected_to $HTTP_PORT &&
	for i in $(seq 1 20); do
		berth deploy zd "$TRASH/b$i.tar.gz" >/dev/null &&
		test "$(version_through_nginx)" = "v$i" || { echo "deploy $i"; return 1; }
	done &&
	for i in 1 2 3 4 5; do
		pid=$(app_pid zd) &&
		berth restart zd >/dev/null &&
		test "$(app_pid zd)" != "$pid" || { echo "restart $i"; return 1; }
	done &&
	for i in 1 2 3 4 5; do
		berth config zd set ROUND=$i >/dev/null &&
		through_nginx zd /env | grep -q "^ROUND=$i$" || { echo "config $i"; return 1; }
	done &&
	touch wrk.done &&
	wait $wrk_pid &&
	cat wrk.out &&
	test_grep "requests in" wrk.out &&
	test_grep_not "Socket errors" wrk.out &&
	test_grep_not "Non-2xx" wrk.out &&
	reqs=$(sed -n "s/^ *\([0-9]*\) requests in.*/\1/p" wrk.out |
		awk "{ n += \$1 } END { print n + 0 }") &&
	say "$reqs requests in $(grep -c "requests in" wrk.out) wrk rounds" &&
	test "$reqs" -gt 1000
'

test_done
