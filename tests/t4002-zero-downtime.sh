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

test_expect_success '20 deploys, 5 restarts, 5 config changes under wrk: no error' '
	wrk_start zd.localhost &&
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
	wrk_stop_and_check 1000 zd
'

test_done
