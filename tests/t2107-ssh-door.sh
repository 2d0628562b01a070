#!/bin/bash
# The SSH door keeps OpenSSH's defences (issue #12): floods of idle
# connections, from one address or from many, never lock a real user out;
# a client that never finishes its login is cut after the grace time; a
# push that stalls is cut after the idle timeout and leaves nothing behind;
# followers (logs -f) have slots of their own.
. "$(dirname "$0")/test-lib.sh"
. "$TEST_DIR/lib-daemon.sh"
. "$TEST_DIR/lib-pipeline.sh"

export HOME="$TRASH"

BERTH_YAML="max_sessions: 3
ssh_max_startups: 10:30:40
ssh_per_source_max_startups: 10
ssh_login_grace_time: 15s
ssh_max_followers: 4
git_idle_timeout: 3s"

session_count() {
	# the engine starts one per connection; as root each has a berth-ssh child
	pgrep -P "$BERTH_PID" -f -- "session --root $BERTH_ROOT\$" | wc -l
}
sessions_at_most() { test "$(session_count)" -le "$1"; }
no_sessions() { test "$(session_count)" = 0; }

# Connections the server still holds from address $1 (its side).
held_from() {
	ss -Htn state established "( sport = :$SSH_PORT )" |
		awk -v a="$1" 'index($4, a ":") == 1' | wc -l
}
held_at_most() {
	local n
	n=$(held_from "$1")
	[ "$n" -le "$2" ] || { echo "$n connections held from $1" >&2; return 1; }
}

# flood NAME COUNT ADDR...: COUNT connections spread over the addresses,
# every other one sending a banner and nothing more; held until killed.
flood() {
	local name=$1 count=$2
	shift 2
	rm -f "$TRASH/$name.ready"
	python3 - "$SSH_PORT" "$TRASH/$name.ready" "$count" "$@" \
		>"$TRASH/$name.out" 2>&1 <<-\EOF &
	import socket, sys, time
	port, ready, count, addrs = int(sys.argv[1]), sys.argv[2], int(sys.argv[3]), sys.argv[4:]
	conns = []
	for i in range(count):
	    s = socket.socket()
	    try:
	        s.bind((addrs[i % len(addrs)], 0))
	        s.connect(("127.0.0.1", port))
	        if i % 2:
	            s.sendall(b"SSH-2.0-idle\r\n")
	    except OSError:
	        pass
	    conns.append(s)
	open(ready, "w").write("%d\n" % len(conns))
	time.sleep(600)
	EOF
	FLOOD_PID=$!
}

test_expect_success 'setup: engine, a key, an app' '
	start_berth &&
	setup_push_key &&
	new_app_repo app doorapp &&
	cp "$TOP/tests/apps/worker.py" app/ &&
	echo "worker: python3 worker.py" >app/Procfile &&
	commit_all app one
'

test_expect_success '200 idle connections from the same address: git push and ssh still get in' '
	flood idle 200 127.0.0.1 &&
	test_when_finished "kill $FLOOD_PID" &&
	retry_until 60 test -s "$TRASH/idle.ready" &&
	# the engine takes in the backlog the kernel queued
	retry_until 60 held_at_most 127.0.0.1 10 &&
	push app >out &&
	test_grep "Release 1 of doorapp is live" out &&
	$GIT_SSH_COMMAND -p "$SSH_PORT" git@127.0.0.1 apps >out &&
	test_grep "^doorapp " out &&
	held_at_most 127.0.0.1 11 &&
	test_grep "127.0.0.1: too many unauthenticated connections from one address: closed the oldest connection still before its key exchange" \
		"$TRASH/berth.log"
'

test_expect_success 'a flood from one address holds at most ssh_per_source_max_startups' '
	retry_until 30 no_sessions &&
	flood one 60 127.0.0.2 &&
	test_when_finished "kill $FLOOD_PID" &&
	retry_until 60 test -s "$TRASH/one.ready" &&
	retry_until 60 held_at_most 127.0.0.2 10 &&
	sessions_at_most 10 &&
	$GIT_SSH_COMMAND -p "$SSH_PORT" git@127.0.0.1 version >out &&
	test_grep "^berth " out
'

test_expect_success 'a flood from many addresses holds at most the ssh_max_startups cap' '
	retry_until 30 no_sessions &&
	flood many 100 127.0.1.1 127.0.1.2 127.0.1.3 127.0.1.4 127.0.1.5 \
		127.0.1.6 127.0.1.7 127.0.1.8 127.0.1.9 127.0.1.10 &&
	test_when_finished "kill $FLOOD_PID" &&
	retry_until 60 test -s "$TRASH/many.ready" &&
	retry_until 60 sessions_at_most 40 &&
	$GIT_SSH_COMMAND -p "$SSH_PORT" git@127.0.0.1 apps >out &&
	test_grep "^doorapp " out &&
	sessions_at_most 40
'

test_expect_success 'a client that never finishes its login is cut after ssh_login_grace_time' '
	retry_until 30 no_sessions &&
	ssh-keygen -q -t ed25519 -N "secret words" -C slow -f "$TRASH/slow-key" &&
	berth keys add "$TRASH/slow-key.pub" >/dev/null &&
	# the passphrase never comes: the client sits in its login, after
	# the key exchange, until the server gives up on it
	printf "#!/bin/sh\necho \$\$ >\"%s\"\nexec sleep 120\n" "$TRASH/askpass.pid" >askpass &&
	chmod +x askpass &&
	{ SSH_ASKPASS="$TRASH/askpass" SSH_ASKPASS_REQUIRE=force \
		setsid ssh -F /dev/null -i "$TRASH/slow-key" -o IdentitiesOnly=yes \
		-o IdentityAgent=none -o StrictHostKeyChecking=no \
		-o UserKnownHostsFile=/dev/null -o LogLevel=ERROR \
		-p "$SSH_PORT" git@127.0.0.1 version >slow.out 2>slow.err & } &&
	slow=$! &&
	test_when_finished "kill $slow; kill \$(cat \"$TRASH/askpass.pid\")" &&
	retry_until 20 test -s "$TRASH/askpass.pid" &&
	test "$(session_count)" = 1 &&
	retry_until 60 no_sessions &&
	test_grep "no authenticated command in time" "$TRASH/berth.log" &&
	test_must_fail test -s slow.out
'

test_expect_success 'a push that stalls mid-pack is cut after git_idle_timeout, nothing half-written' '
	repo="$BERTH_ROOT/apps/doorapp/repo.git" &&
	old=$(git --git-dir="$repo" rev-parse main) &&
	find "$repo" -type f | sort >files.before &&
	echo more >app/more &&
	commit_all app two &&
	new=$(git -C app rev-parse HEAD) &&
	printf "%s\n^%s\n" "$new" "$old" | git -C app pack-objects --revs --stdout -q >p.pack &&
	line="$old $new refs/heads/main" &&
	mkfifo feed || return 1
	{ $GIT_SSH_COMMAND -p "$SSH_PORT" git@127.0.0.1 "git-receive-pack '\''doorapp'\''" \
		<feed >reply 2>stderr; echo $? >rc; } &
	exec 3>feed &&
	{ printf "%04x%s0000" $((${#line} + 4)) "$line" && head -c 30 p.pack; } >&3 &&
	retry_until 60 test -s rc &&
	exec 3>&- &&
	test "$(cat rc)" = 1 &&
	test "$(git --git-dir="$repo" rev-parse main)" = "$old" &&
	find "$repo" -type f | sort >files.after &&
	test_cmp files.before files.after &&
	retry_until 20 no_sessions
'

test_expect_success 'followers (logs -f) have their own slots: pushes and commands still get in' '
	ssh_cmd="$GIT_SSH_COMMAND -p $SSH_PORT git@127.0.0.1" &&
	pids= &&
	for i in 1 2 3 4; do
		{ $ssh_cmd logs doorapp -f >follow.$i 2>&1 & } &&
		pids="$pids $!" || return 1
	done &&
	test_when_finished "kill $pids" &&
	for i in 1 2 3 4; do
		retry_until 30 grep -q tick follow.$i || return 1
	done &&
	test_must_fail $ssh_cmd logs doorapp -f >out 2>err &&
	test_grep "^error: too many sessions running on the server, try again later" err &&
	test_grep "ssh_max_followers followers \(logs -f\) running, session refused" "$TRASH/berth.log" &&
	push app >out &&
	test_grep "Release 2 of doorapp is live" out &&
	$ssh_cmd ps doorapp >out &&
	test_grep "^worker.1 " out &&
	for p in $pids; do
		kill -0 $p || return 1
	done
'

test_done
