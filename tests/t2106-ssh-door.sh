#!/bin/bash
# The SSH door keeps OpenSSH's defences: 200 idle connections that only
# send a banner do not lock a real user out (a per-source limit and a cap
# with random early drop on unauthenticated connections), idle ones are
# dropped after the login grace time, and followers (logs -f) do not take
# the slots of other sessions.
. "$(dirname "$0")/test-lib.sh"
. "$TEST_DIR/lib-ssh.sh"

BERTH_YAML="max_sessions: 2
max_startups: 10:30:60
per_source_max_startups: 5
login_grace_time: 5s
max_followers: 3"

session_count() {
	pgrep -f -- "session --root $BERTH_ROOT\$" | wc -l
}
sessions_at_most() { test "$(session_count)" -le "$1"; }
sessions_are() { test "$(session_count)" = "$1"; }

test_expect_success 'setup: engine, a key, an app' '
	start_berth &&
	make_key alice &&
	berth keys add "$TRASH/alice.pub" >/dev/null &&
	make_web_bundle "$TRASH/v1.tar.gz" v1 "worker: python3 worker.py" &&
	berth deploy myapp "$TRASH/v1.tar.gz" >out &&
	berth sharing myapp add alice >/dev/null
'

test_expect_success '200 idle connections from one address; a user gets in; the grace time ends them' '
	python3 - "$SSH_PORT" "$TRASH/flood.ready" >flood.out 2>&1 <<-\EOF &
	import socket, sys, time
	port, ready = int(sys.argv[1]), sys.argv[2]
	conns = []
	for i in range(200):
	    s = socket.socket()
	    s.bind(("127.0.0.2", 0))
	    try:
	        s.connect(("127.0.0.1", port))
	        s.sendall(b"SSH-2.0-idle\r\n")
	    except OSError:
	        pass
	    conns.append(s)
	open(ready, "w").write("ready\n")
	time.sleep(120)
	EOF
	flood=$! &&
	test_when_finished "kill $flood" &&
	retry_until 60 test -s "$TRASH/flood.ready" &&
	sessions_at_most 5 &&
	ssh_berth alice version >out &&
	test_grep "^berth " out &&
	test_grep "127.0.0.2: too many unauthenticated connections from one address, connection dropped" \
		"$TRASH/berth.log" &&
	# the flood still holds its connections: the grace time ends them
	retry_until 30 sessions_are 0 &&
	test_grep "no authenticated command in time" "$TRASH/berth.log"
'

test_expect_success 'followers do not take the slots of other sessions; they have their own cap' '
	ssh_args alice &&
	pids= &&
	for i in 1 2 3 4; do
		ssh "${SSH_ARGS[@]}" logs myapp -f >follow.$i 2>&1 &
		pids="$pids $!"
	done &&
	test_when_finished "kill $pids 2>/dev/null" &&
	retry_until 20 grep -q "followers (logs -f) running, session closed" "$TRASH/berth.log" &&
	retry_until 20 sessions_are 3 &&
	ssh_berth alice version >out &&
	test_grep "^berth " out &&
	ssh_berth alice ps myapp >out &&
	test_grep "^worker.1 " out
'

test_done
