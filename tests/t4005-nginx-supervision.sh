#!/bin/bash
# The engine's own nginx: restarted when it dies, taken over after the
# engine itself was killed, and gone, workers included, when it stops.
. "$(dirname "$0")/test-lib.sh"
. "$TEST_DIR/lib-daemon.sh"

master_pid() { cat "$BERTH_ROOT/nginx/logs/nginx.pid"; }
# nginx processes of one process group (the master leads its own)
group_count() { pgrep -g "$1" -x nginx | wc -l; }
master_is_new() { p=$(master_pid) && [ -n "$p" ] && [ "$p" != "$1" ]; }
no_group() { [ "$(group_count "$1")" = 0 ]; }

test_expect_success 'setup: an app behind the engine'"'"'s nginx' '
	start_berth &&
	make_web_bundle "$TRASH/b1.tar.gz" v1 &&
	berth deploy sup "$TRASH/b1.tar.gz" &&
	retry_until 10 through_nginx sup &&
	test_grep "daemon off;" "$BERTH_ROOT/nginx/nginx.conf" &&
	test_grep "^host sup.localhost sup\$" "$BERTH_ROOT/nginx/routes"
'

test_expect_success 'an unknown host gets the default 404' '
	curl -s -o out -w "%{http_code}" -H "Host: nope.localhost" \
		"http://127.0.0.1:$HTTP_PORT/" >code &&
	test "$(cat code)" = 404 &&
	test_grep "no app for this host" out
'

test_expect_success 'a killed nginx is restarted and serves again' '
	old=$(master_pid) &&
	kill -KILL "$old" &&
	retry_until 15 master_is_new "$old" &&
	retry_until 10 through_nginx sup &&
	retry_until 5 no_group "$old" &&
	test_grep "nginx \(pid $old\) killed by signal 9; restarting" "$TRASH/berth.log"
'

test_expect_success 'after a kill -9 of the engine, the next one takes nginx over' '
	old=$(master_pid) &&
	crash_berth &&
	kill -0 "$old" &&
	start_berth &&
	retry_until 10 master_is_new "$old" &&
	retry_until 10 no_group "$old" &&
	test_grep "stopping stale nginx \(pid $old\)" "$TRASH/berth.log" &&
	retry_until 15 through_nginx sup
'

test_expect_success 'stopping the engine stops nginx, workers included' '
	old=$(master_pid) &&
	kill -TERM "$BERTH_PID" &&
	{ wait "$BERTH_PID" || :; } &&
	BERTH_PID= &&
	no_group "$old" &&
	test ! -e "$BERTH_ROOT/nginx/logs/nginx.pid" &&
	test_must_fail through_nginx sup
'

test_done
