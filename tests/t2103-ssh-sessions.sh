#!/bin/bash
# SSH sessions against a running app: streaming, hang-up, confirmation,
# the cap on concurrent sessions and the login grace time.
. "$(dirname "$0")/test-lib.sh"
. "$TEST_DIR/lib-ssh.sh"

BERTH_YAML="max_sessions: 3
ssh_login_grace_time: 5s"

session_count() {
	# the engine starts one per connection; as root each has a berth-ssh child
	pgrep -P "$BERTH_PID" -f -- "session --root $BERTH_ROOT\$" | wc -l
}
sessions_are() { test "$(session_count)" = "$1"; }
no_sessions() { sessions_are 0; }

test_expect_success 'setup: engine, a key, an app' '
	start_berth &&
	make_key alice &&
	berth keys add "$TRASH/alice.pub" >/dev/null &&
	make_web_bundle "$TRASH/v1.tar.gz" v1 "worker: python3 worker.py" &&
	berth deploy myapp "$TRASH/v1.tar.gz" >out &&
	test_grep "Release 1 of myapp is live" out &&
	berth sharing myapp add alice >/dev/null
'

test_expect_success 'commands stream the engine output and status' '
	ssh_berth alice ps myapp >out &&
	test_grep "^worker.1 +[0-9]+ +- +up" out &&
	ssh_berth alice "config myapp set '\''GREETING=hello world'\''" >out &&
	ssh_berth alice config myapp >out &&
	test_grep "^GREETING=hello world$" out
'

ticks_above() { test "$(grep -c tick follow.out)" -gt "$1"; }

test_expect_success 'logs -f streams until the client hangs up' '
	ssh_args alice &&
	{ ssh "${SSH_ARGS[@]}" logs myapp -f >follow.out 2>follow.err & } &&
	pid=$! &&
	test_when_finished "kill $pid" &&
	retry_until 10 sessions_are 1 &&
	retry_until 10 grep -q "tick" follow.out &&
	n=$(grep -c tick follow.out) &&
	retry_until 10 ticks_above "$n" &&
	kill $pid &&
	{ wait $pid; true; } &&
	retry_until 10 no_sessions
'

test_expect_success 'the engine is still fine after the hang-up' '
	ssh_berth alice logs myapp -n 5 >out &&
	test_grep "tick" out &&
	ssh_berth alice version >out
'

test_expect_success 'rm without confirmation keeps the app' '
	test_expect_code 1 ssh_berth alice rm myapp </dev/null >out 2>err &&
	test_grep "^error: rm: confirm with --force or type the app name$" err &&
	echo myap | test_expect_code 1 ssh_berth alice rm myapp >out 2>err &&
	berth apps >out &&
	test_grep "^myapp +running" out
'

test_expect_success 'rm with the name typed back removes the app' '
	pid=$(app_pid myapp worker.1) &&
	test -n "$pid" &&
	echo myapp | ssh_berth alice rm myapp >out 2>err &&
	test_grep "To remove myapp, type its name:" err &&
	berth apps >out &&
	test_grep_not "^myapp " out &&
	retry_until 10 test_must_fail kill -0 "$pid"
'

# Connections that never speak SSH each hold a session process until the
# login grace time ends it, or a newer connection needs the room.
open_conns() {
	local i
	for i in $(seq "$1"); do
		exec {fd}<>"/dev/tcp/127.0.0.1/$SSH_PORT" || return 1
		conns="$conns $fd"
	done
}
close_conns() {
	local fd
	for fd in $conns; do
		exec {fd}>&-
	done
	conns=
}

test_expect_success 'at most max_sessions authenticated sessions; another is told so' '
	conns= &&
	test_when_finished close_conns &&
	retry_until 10 no_sessions &&
	ssh_args alice &&
	for i in 1 2 3; do
		mkfifo wait.$i &&
		{ ssh "${SSH_ARGS[@]}" rm myapp <wait.$i >rm.$i.out 2>rm.$i.err & } &&
		exec {fd}>wait.$i &&
		conns="$conns $fd" || return 1
	done &&
	for i in 1 2 3; do
		retry_until 20 grep -q "type its name" rm.$i.err || return 1
	done &&
	test_must_fail ssh_berth alice version >out 2>err &&
	test_grep "^error: too many sessions running on the server, try again later" err &&
	test_must_fail test -s out &&
	test_grep "max_sessions sessions running, session refused" "$TRASH/berth.log" &&
	# the refused session has told its client and is still exiting
	retry_until 10 sessions_are 3 &&
	close_conns &&
	retry_until 10 no_sessions &&
	ssh_berth alice version >out &&
	test_grep "^berth " out
'

test_expect_success 'idle connections never lock a user out' '
	conns= &&
	test_when_finished close_conns &&
	retry_until 10 no_sessions &&
	open_conns 12 &&
	ssh_berth alice version >out &&
	test_grep "^berth " out &&
	retry_until 10 grep -q "closed the oldest connection still before its key exchange" "$TRASH/berth.log"
'

test_expect_success 'a connection that does not authenticate is dropped after ssh_login_grace_time' '
	close_conns &&
	retry_until 20 no_sessions &&
	exec {idle}<>"/dev/tcp/127.0.0.1/$SSH_PORT" &&
	test_when_finished "exec {idle}>&-" &&
	retry_until 10 sessions_are 1 &&
	ssh_berth alice version >out &&
	retry_until 45 no_sessions &&
	test_grep "no authenticated command in time" "$TRASH/berth.log" &&
	IFS= read -r -t 5 banner <&$idle &&
	case "$banner" in SSH-2.0-*) ;; *) false ;; esac &&
	timeout 5 cat <&$idle >/dev/null	# EOF: the server closed it
'

test_done
