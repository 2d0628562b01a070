#!/bin/bash
# After kill -9 of the engine, a new engine brings every app back on its
# release, with its scale and config, and no old process survives.
. "$(dirname "$0")/test-lib.sh"
. "$TEST_DIR/lib-daemon.sh"

# deploy_in_background NAME BUNDLE: output in deploy.out, status in deploy.rc
deploy_in_background() {
	rm -f deploy.rc
	{ berth deploy "$1" "$2" >deploy.out 2>&1; echo $? >deploy.rc; } &
	return 0
}

# log_has_after APP FIRST THEN: APP's log has THEN after FIRST
log_has_after() {
	awk -v a="$2" -v b="$3" '$0 ~ a { seen = 1 } seen && $0 ~ b { found = 1 }
		END { exit !found }' "$BERTH_ROOT/logs/$1/app.log"
}

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
	test_atexit "kill $blocker"
	retry_until 10 test -e blocker.ready
}

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

test_expect_success 'kill -9 during a health check: the release is interrupted' '
	dir=$(mktemp -d "$TRASH/deaf.XXXXXX") &&
	echo "web: sleep 1000" >"$dir/Procfile" &&
	tar -C "$dir" -czf deaf.tar.gz . &&
	deploy_in_background beta "$TRASH/deaf.tar.gz" &&
	retry_until 20 grep -q "Deploying release 2 of beta" "$BERTH_ROOT/logs/beta/app.log" &&
	retry_until 20 log_has_after beta "Deploying release 2" "Starting web.1" &&
	test_grep "^status deploying" "$BERTH_ROOT/apps/beta/releases/2/meta" &&
	crash_berth &&
	start_berth &&
	retry_until 20 apps_line_matches "^beta +running +v1" &&
	berth releases beta >rels &&
	test_grep "^v2 +interrupted" rels &&
	test_grep "^v1\* +live" rels &&
	test ! -e "$BERTH_ROOT/apps/beta/releases/2/bundle.tar.gz" &&
	test_grep "app .beta.: 1 deploy interrupted" "$TRASH/berth.log" &&
	berth deploy beta "$TRASH/a2.tar.gz" >out &&
	test_grep "Release 3 of beta is live" out
'

test_expect_success 'a restore that fails is retried with back-off; apps says why' '
	stop_berth &&
	port=$(sed -n "s/^slot //p" "$BERTH_ROOT/apps/alpha/state" | sed -n 1p) &&
	block_port $port &&
	start_berth &&
	retry_until 20 apps_line_matches "^beta +running" &&
	retry_until 20 apps_line_matches "^alpha +down .*restore failed: port $port is taken by another program; next try in [0-9]+ s" &&
	test_grep "restoring release 3 again in" "$BERTH_ROOT/logs/alpha/app.log" &&
	kill $blocker &&
	retry_until 60 apps_line_matches "^alpha +running +v3 +web.1 web.2 worker.1$" &&
	port=$(app_port alpha) &&
	get "http://127.0.0.1:$port/env" >env &&
	test_grep "^MOOD=calm$" env
'

test_expect_success 'a deploy whose port another program took moves to a free one' '
	live=$(app_port alpha) &&
	port=$(sed -n "s/^slot //p" "$BERTH_ROOT/apps/alpha/state" | sed -n 1,2p | grep -vx "$live") &&
	block_port $port &&
	berth deploy alpha "$TRASH/a2.tar.gz" >out &&
	test_grep "Port $port is taken by another program: web.1 moves to port [0-9]*" out &&
	new=$(sed -n "s/.*web.1 moves to port \([0-9]*\).*/\1/p" out) &&
	test "$(app_port alpha)" = "$new" &&
	test_grep "^slot $new$" "$BERTH_ROOT/apps/alpha/state" &&
	test_grep_not "^slot $port$" "$BERTH_ROOT/apps/alpha/state" &&
	kill $blocker
'

test_expect_success 'a state file the engine cannot use fails only that app' '
	stop_berth &&
	cp "$BERTH_ROOT/apps/alpha/state" alpha-state &&
	sed -i "s/^slot .*/slot 70000/" "$BERTH_ROOT/apps/alpha/state" &&
	cp "$BERTH_ROOT/apps/alpha/state" alpha-broken &&
	start_berth &&
	retry_until 20 apps_line_matches "^beta +running" &&
	berth apps >apps &&
	test_grep "^alpha +failed .*cannot use apps/alpha/state: line [0-9]+: bad slot .70000." apps &&
	test_grep "app .alpha.: cannot use apps/alpha/state" "$TRASH/berth.log" &&
	test_must_fail berth restart alpha &&
	test_cmp alpha-broken "$BERTH_ROOT/apps/alpha/state" &&
	kill -0 $BERTH_PID
'

test_expect_success 'garbage of any kind, and the app comes back with a deploy' '
	stop_berth &&
	i=0 &&
	for junk in "scale web=lots" "release -1" "stopped 7" "slot 1" \
		    "$(printf "\001\002\377")"; do
		i=$((i + 1)) &&
		mkdir -p "$BERTH_ROOT/apps/junk$i" &&
		printf "%s\n" "$junk" >"$BERTH_ROOT/apps/junk$i/state" || return 1
	done &&
	start_berth &&
	retry_until 20 apps_line_matches "^beta +running" &&
	berth apps >apps &&
	for i in 1 2 3 4 5; do
		test_grep "^junk$i +failed .*cannot use apps/junk$i/state: " apps || return 1
	done &&
	test_grep "^alpha +failed .*cannot use" apps &&
	berth deploy alpha "$TRASH/a1.tar.gz" >out &&
	test_grep "Release [0-9]+ of alpha is live" out &&
	berth apps >apps &&
	test_grep "^alpha +running" apps &&
	test_grep_not "^alpha .*cannot use" apps &&
	test_grep "^junk5 .*no value in .\?\?\?." apps &&
	stop_berth &&
	start_berth &&
	retry_until 20 apps_line_matches "^alpha +running"
'

test_done
