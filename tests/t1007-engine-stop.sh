#!/bin/bash
# Stopping the engine (Ctrl-C on "make run", SIGTERM) with log followers
# attached, deploys in every step and followers that vanish mid-write: it
# stops cleanly, says so, and leaves no sanitizer report ("make asan").
. "$(dirname "$0")/test-lib.sh"
. "$TEST_DIR/lib-daemon.sh"

# make_chat_bundle OUT: a worker that writes about a thousand lines a second
make_chat_bundle() {
	local dir
	dir=$(mktemp -d "$TRASH/chat.XXXXXX")
	cat >"$dir/chat.py" <<-'EOF'
	import sys, time
	n = 0
	while True:
	    for i in range(20):
	        print("chatter", n, i)
	    sys.stdout.flush()
	    n += 1
	    time.sleep(0.02)
	EOF
	echo "worker: python3 chat.py" >"$dir/Procfile"
	tar -C "$dir" -czf "$1" . && rm -rf "$dir"
}

# followers N FILE-PREFIX: N "logs -f" clients in the background
followers() {
	local i
	fpids=
	for i in $(seq 1 "$1"); do
		"$BERTH" --root "$BERTH_ROOT" logs chat -f -n 1 >"$2.$i.out" 2>"$2.$i.err" &
		fpids="$fpids $!"
	done
}

# deploy_in_background NAME BUNDLE OUT: output in OUT.out, status in OUT.rc
deploy_in_background() {
	{ berth deploy "$1" "$2" >"$3.out" 2>&1; echo $? >"$3.rc"; } &
	return 0
}

# log_after FIRST THEN: chat's log has a line matching THEN after one
# matching FIRST
log_after() {
	awk -v a="$1" -v b="$2" '$0 ~ a { seen = 1 } seen && $0 ~ b { found = 1 }
		END { exit !found }' "$BERTH_ROOT/logs/chat/app.log"
}

# no_output FILE: the file is empty (shown when it is not)
no_output() {
	test -s "$1" || return 0
	echo "$1 is not empty:" >&2
	cat "$1" >&2
	return 1
}

# wait_followers: each follower has its first lines
wait_followers() {
	local f
	for f in "$@"; do
		retry_until 10 test -s "$f" || return 1
	done
}

test_expect_success 'setup: a chatty app' '
	BERTH_YAML="drain: 30s
health_timeout: 60s" &&
	start_berth &&
	make_chat_bundle "$TRASH/chat.tar.gz" &&
	berth deploy chat "$TRASH/chat.tar.gz" >/dev/null &&
	retry_until 10 grep -q chatter "$BERTH_ROOT/logs/chat/app.log"
'

test_expect_success 'followers killed while lines flow: the engine stays up' '
	for round in 1 2 3 4 5 6; do
		followers 10 kill$round &&
		wait_followers kill$round.1.out kill$round.5.out kill$round.10.out &&
		kill -9 $fpids &&
		{ wait $fpids 2>/dev/null || :; } &&
		kill -0 $BERTH_PID || { echo "engine died in round $round"; return 1; }
	done &&
	berth apps >apps &&
	test_grep "^chat +running" apps
'

test_expect_success 'SIGINT with followers and a deploy in its health check' '
	dir=$(mktemp -d "$TRASH/deaf.XXXXXX") &&
	echo "web: sleep 1000" >"$dir/Procfile" &&
	tar -C "$dir" -czf deaf.tar.gz . &&
	berth deploy deaf "$TRASH/chat.tar.gz" >/dev/null &&
	deploy_in_background deaf "$TRASH/deaf.tar.gz" deploy &&
	retry_until 20 grep -q "Starting web.1" "$BERTH_ROOT/logs/deaf/app.log" &&
	followers 5 int &&
	wait_followers int.1.out int.2.out int.3.out int.4.out int.5.out &&
	kill -INT $BERTH_PID &&
	{ wait $BERTH_PID; echo $? >engine.rc; } &&
	BERTH_PID= &&
	{ wait $fpids || :; } &&
	retry_until 10 test -s deploy.rc &&
	test "$(cat engine.rc)" = 0 &&
	test "$(cat deploy.rc)" = 1 &&
	test_grep "error: .*the engine is stopping" deploy.out &&
	for i in 1 2 3 4 5; do
		test_grep "berth stopping with the engine" int.$i.out &&
		no_output int.$i.err || return 1
	done &&
	test_grep "^status interrupted" "$BERTH_ROOT/apps/deaf/releases/2/meta" &&
	test ! -e "$BERTH_ROOT/apps/deaf/releases/2/bundle.tar.gz" &&
	test_grep "stopped" "$TRASH/berth.log"
'

test_expect_success 'a restarted engine restores; SIGTERM while a deploy drains' '
	start_berth &&
	retry_until 20 apps_line_matches "^chat +running" &&
	retry_until 20 apps_line_matches "^deaf +running +v1" &&
	followers 3 term &&
	wait_followers term.1.out term.2.out term.3.out &&
	deploy_in_background chat "$TRASH/chat.tar.gz" deploy2 &&
	retry_until 20 log_after "Deploying release 2 of chat" "Up for" &&
	kill -TERM $BERTH_PID &&
	{ wait $BERTH_PID; echo $? >engine.rc; } &&
	BERTH_PID= &&
	{ wait $fpids || :; } &&
	retry_until 10 test -s deploy2.rc &&
	test "$(cat engine.rc)" = 0 &&
	test "$(cat deploy2.rc)" = 0 &&
	test_grep "Release 2 of chat is live" deploy2.out &&
	for i in 1 2 3; do
		no_output term.$i.err || return 1
	done &&
	start_berth &&
	retry_until 20 apps_line_matches "^chat +running +v2"
'

test_expect_success 'stop and start again and again with followers attached' '
	for round in 1 2 3; do
		followers 3 again$round &&
		wait_followers again$round.1.out again$round.2.out again$round.3.out &&
		stop_berth &&
		{ wait $fpids || :; } &&
		test_grep "stopping with the engine" again$round.1.out &&
		start_berth &&
		retry_until 20 apps_line_matches "^chat +running" || return 1
	done
'

test_done
