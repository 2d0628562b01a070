#!/bin/bash
# berth start-server next to Perl's start_server (Server::Starter): each
# scenario runs against both, on the same ports and paths, and what the
# workers got (environment, sockets, signals) and what the superdaemon
# wrote (messages, status file, exit status) must be the same.
. "$(dirname "$0")/test-lib.sh"
. "$TEST_DIR/lib-start-server.sh"

test -x "$PERL_START_SERVER" || { test_skip "libserver-starter-perl is not installed"; test_done; }
command -v socat >/dev/null || { test_skip "socat is not installed"; test_done; }

# Perl's messages end in " at FILE line N." (or have it on a line of its
# own); the rest must match.
strip_perl_at() {
	sed -e 's/ at \/[^ ]* line [0-9]*\.$//' -e '/^ *at \/[^ ]* line [0-9]*\.$/d' \
		-e '/^$/d' |
		perl -pe 's/\(pid:\d+\)/(pid:N)/g'
}

test_expect_success 'setup: ports, and whether this host has IPv6 loopback' '
	PA1=$(free_port) && PA2=$(free_port) && PA3=$(free_port) &&
	PB=$(free_port) && PC=$(free_port) && PD=$(free_port) && PE=$(free_port) &&
	PU=$(free_port) &&
	if /usr/bin/python3 -c "import socket; socket.socket(socket.AF_INET6).bind((\"::1\", 0))" 2>/dev/null
	then V6="--port=[::1]:$PA3"; else V6=; fi &&
	mkdir -p run wd
'

test_expect_success 'command-line errors: same messages and exit statuses' '
	for args in "" "--bogus --worse -- true" "--interval=abc -- true" \
		"--restart" "--stop" "--daemonize -- true" "--p=80 -- true" \
		"--st" "--restart=1" "--port" "--port= x" "--port=abc -- true" \
		"--stop --pid-file=nonexistent" \
		"--restart --pid-file=nonexistent --status-file=x" \
		"--port=$PD --port=$PD -- true"
	do
		for impl in perl berth; do
			{ ss_cmd $impl $args >out.$impl 2>&1; echo "exit $?" >>out.$impl; } &&
			strip_perl_at <out.$impl >norm.$impl || return 1
		done &&
		test_cmp norm.perl norm.berth || { echo "with: $args"; return 1; }
	done
'

test_expect_success '--help and --version' '
	"$BERTH" start-server --help >help.out &&
	test_grep "^  --port=" help.out && test_grep "systemd" help.out &&
	"$BERTH" start-server --version >version.out &&
	test_grep "^0\.35 \(berth" version.out &&
	ln -s "$BERTH" start_server &&
	./start_server --version >version2.out &&
	test_cmp version.out version2.out
'

# Scenario A: TCP on every IPv4 address, on one address and on IPv6, and a
# unix socket; the status file across a HUP whose old worker lingers;
# --signal-on-hup and --signal-on-term; --restart and --stop.
scenario_a() {
	local impl=$1
	local d=$TRASH/a-$impl
	export SS_SHOW="SERVER_STARTER_PORT SERVER_STARTER_GENERATION"
	SS_CWD=$TRASH/run ss_start $impl "$d" --port=$PA1 --port=127.0.0.1:$PA2 $V6 \
		--path="$TRASH/a.sock" --signal-on-hup=sigusr1 \
		--signal-on-term=USR2 -- "$SS_WORKER" &&
	ss_wait_gens "$d" 1 &&
	retry_until 20 test -s "$d/out/gen-1.env" &&
	{
		ss_ask TCP:127.0.0.1:$PA1 &&
		ss_ask TCP:127.0.0.1:$PA2 &&
		if test -n "$V6"; then ss_ask "TCP6:[::1]:$PA3"; fi &&
		ss_ask "UNIX-CONNECT:$TRASH/a.sock"
	} >"$d/answers" &&
	stat -c %A "$TRASH/a.sock" >"$d/sockmode" &&
	: >"$d/out/hold" &&
	kill -HUP "$(cat "$d/pid")" &&
	ss_wait_gens "$d" "1 2" &&
	retry_until 20 grep -q "gen=1 USR1" "$d/out/signals" &&
	ss_gens "$d" >"$d/gens-overlap" &&
	rm "$d/out/hold" &&
	ss_wait_gens "$d" 2 &&
	ss_cmd $impl --restart --pid-file="$d/pid" --status-file="$d/status" &&
	ss_gens "$d" >"$d/gens-restarted" &&
	ss_cmd $impl --stop --pid-file="$d/pid" 2>"$d/stop.err" &&
	! test -e "$d/pid" &&
	# (the original unlocks the pid file before it removes the rest)
	retry_until 10 ss_none "$d/status" "$TRASH/a.sock" &&
	retry_until 10 test_must_fail ss_ask TCP:127.0.0.1:$PA1 &&
	cut -d" " -f1-2 "$d/out/signals" >"$d/signals"
}

test_expect_success 'scenario A under Perl start_server' 'scenario_a perl'
test_expect_success 'scenario A under berth start-server' 'scenario_a berth'

test_expect_success 'A: same SERVER_STARTER_PORT, sockets, mode, status and signals' '
	for f in out/gen-1.env out/gen-2.env out/gen-3.env answers sockmode \
		gens-overlap gens-restarted signals; do
		test_cmp "a-perl/$f" "a-berth/$f" || return 1
	done &&
	test_grep "^SERVER_STARTER_PORT=$PA1=[0-9]+;127.0.0.1:$PA2=[0-9]+;" a-berth/out/gen-1.env &&
	test_grep "^gen=1 name=$PA1\$" a-berth/answers &&
	test_grep "^gen=1 name=$TRASH/a.sock\$" a-berth/answers &&
	test_grep "^srwxrwxrwx" a-berth/sockmode &&
	test "$(cat a-berth/gens-overlap)" = "1 2" &&
	test "$(cat a-berth/gens-restarted)" = 3 &&
	printf "gen=1 USR1\ngen=2 USR1\ngen=3 USR2\n" >expect &&
	test_cmp expect a-berth/signals
'

test_expect_success 'A: same messages, and --stop says the same' '
	ss_norm a-perl/log >log.perl && ss_norm a-berth/log >log.berth &&
	test_cmp log.perl log.berth &&
	test_grep "sending USR1 to old workers:P2" log.berth &&
	test_grep "received TERM, sending USR2 to all workers:P4" log.berth &&
	ss_norm a-perl/stop.err >stop.perl && ss_norm a-berth/stop.err >stop.berth &&
	test_cmp stop.perl stop.berth
'

# Scenario B: a new generation that fails to start 3 times (the old one
# keeps serving, the start is retried), --envdir read at each restart,
# and a worker that dies.
scenario_b() {
	local impl=$1
	local d=$TRASH/b-$impl
	rm -rf "$TRASH/envdir" && mkdir "$TRASH/envdir" &&
	echo one >"$TRASH/envdir/FOO" &&
	export SS_SHOW="FOO BAR ENVDIR SERVER_STARTER_GENERATION"
	SS_CWD=$TRASH/run ss_start $impl "$d" --port=$PB --envdir="$TRASH/envdir" \
		-- "$SS_WORKER" &&
	ss_wait_gens "$d" 1 &&
	ss_ask TCP:127.0.0.1:$PB >"$d/answer-1" &&
	echo 3 >"$d/out/fail" &&
	echo two >"$TRASH/envdir/FOO" && echo bar >"$TRASH/envdir/BAR" &&
	kill -HUP "$(cat "$d/pid")" &&
	retry_until 20 grep -q "seems to have failed" "$d/log" &&
	ss_ask TCP:127.0.0.1:$PB >"$d/answer-while-failing" &&
	ss_wait_gens "$d" 5 &&
	rm "$TRASH/envdir/FOO" "$TRASH/envdir/BAR" &&
	kill -HUP "$(cat "$d/pid")" &&
	ss_wait_gens "$d" 6 &&
	# the status file can name gen 6 before it wrote down its
	# environment: a loaded host showed it killed that early
	retry_until 20 test -s "$d/out/gen-6.env" &&
	kill -KILL "$(sed -n "s/^6://p" "$d/status")" &&
	ss_wait_gens "$d" 7 &&
	retry_until 20 test -s "$d/out/gen-7.env" &&
	ss_cmd $impl --stop --pid-file="$d/pid" 2>/dev/null
}

test_expect_success 'scenario B under Perl start_server' 'scenario_b perl'
test_expect_success 'scenario B under berth start-server' 'scenario_b berth'

test_expect_success 'B: old generation served while the new one failed; envdir as the original' '
	for f in answer-1 answer-while-failing out/gen-1.env out/gen-5.env \
		out/gen-6.env out/gen-7.env; do
		test_cmp "b-perl/$f" "b-berth/$f" || return 1
	done &&
	test_grep "^gen=1 " b-berth/answer-while-failing &&
	test_grep "^FOO=two" b-berth/out/gen-5.env &&
	test_grep "^BAR=bar" b-berth/out/gen-5.env &&
	test_grep "^FOO=one" b-berth/out/gen-6.env &&
	test_grep "^BAR=<unset>" b-berth/out/gen-6.env &&
	test_grep "^ENVDIR=$TRASH/envdir\$" b-berth/out/gen-1.env &&
	! test -e b-berth/out/gen-2.env && ! test -e b-berth/out/gen-4.env
'

test_expect_success 'B: same messages' '
	ss_norm b-perl/log >log.perl && ss_norm b-berth/log >log.berth &&
	test_cmp log.perl log.berth &&
	test "$(grep -c "seems to have failed to start, exit status:256" log.berth)" = 3 &&
	test_grep "died unexpectedly with status:9, restarting" log.berth
'

# Scenario C: restarts on a timer, and --kill-old-delay.
scenario_c() {
	local impl=$1
	local d=$TRASH/c-$impl
	export SS_SHOW="ENABLE_AUTO_RESTART AUTO_RESTART_INTERVAL KILL_OLD_DELAY"
	ss_start $impl "$d" --port=$PC --enable-auto-restart \
		--auto-restart-interval=1 --kill-old-delay=2 -- "$SS_WORKER" &&
	retry_until 30 grep -q "^gen=1 TERM" "$d/out/signals" &&
	ss_cmd $impl --stop --pid-file="$d/pid" 2>/dev/null &&
	sed -n "1,/^killing old workers/p" "$d/log" >"$d/log-first"
}

test_expect_success 'scenario C under Perl start_server' 'scenario_c perl'
test_expect_success 'scenario C under berth start-server' 'scenario_c berth'

test_expect_success 'C: same auto-restart, and the old worker is signalled after the delay' '
	test_cmp c-perl/out/gen-1.env c-berth/out/gen-1.env &&
	test_grep "^AUTO_RESTART_INTERVAL=1" c-berth/out/gen-1.env &&
	ss_norm c-perl/log-first >log.perl && ss_norm c-berth/log-first >log.berth &&
	test_cmp log.perl log.berth &&
	test_grep "^autorestart triggered \(interval=1\)" log.berth &&
	test_grep "^sleeping 2 secs before killing old workers" log.berth &&
	for impl in perl berth; do
		started=$(cat c-$impl/out/gen-2.started) &&
		killed=$(sed -n "s/^gen=1 TERM //p" c-$impl/out/signals) &&
		perl -e "exit !($killed - $started >= 2)" ||
		{ echo "$impl: gen 2 started $started, gen 1 signalled $killed"; return 1; }
	done
'

# Scenario D: --log-file through a pipe, --port=PORT=FD, a UDP port,
# --dir, --backlog, then --daemonize with a log file.
scenario_d() {
	local impl=$1
	local d=$TRASH/d-$impl
	export SS_SHOW="SERVER_STARTER_PORT cwd"
	ss_start $impl "$d" --port=$PD=9 --port=u$PU --dir="$TRASH/wd" --backlog=7 \
		--log-file="| cat >>'"$d"'/piped.log" -- "$SS_WORKER" &&
	ss_wait_gens "$d" 1 &&
	retry_until 20 test -s "$d/out/gen-1.env" &&
	ss_ask TCP:127.0.0.1:$PD >"$d/answer" &&
	ss -ltnH "sport = :$PD" | awk "{ print \$3 }" >"$d/backlog" &&
	ss_cmd $impl --stop --pid-file="$d/pid" 2>/dev/null &&
	retry_until 20 grep -q "^exiting" "$d/piped.log" &&
	test_atexit "ss_kill_pidfile '$d/dpid'" &&
	(
		mkdir "$d/dout" && export SS_OUT="$d/dout" &&
		ss_cmd $impl --daemonize --log-file="$d/daemon.log" --port=$PE \
			--pid-file="$d/dpid" --status-file="$d/dstatus" \
			-- "$SS_WORKER" >"$d/daemonize.out" 2>&1 </dev/null
	) &&
	retry_until 20 grep -q "^1:" "$d/dstatus" &&
	ss_ask TCP:127.0.0.1:$PE >"$d/answer-daemon" &&
	ss_cmd $impl --stop --pid-file="$d/dpid" 2>/dev/null &&
	! test -e "$d/dpid"
}

test_expect_success 'scenario D under Perl start_server' 'scenario_d perl'
test_expect_success 'scenario D under berth start-server' 'scenario_d berth'

test_expect_success 'D: same fds, folder, backlog, answers and logs' '
	for f in out/gen-1.env answer answer-daemon backlog; do
		test_cmp "d-perl/$f" "d-berth/$f" || return 1
	done &&
	test "$(cat d-berth/backlog)" = 7 &&
	test_grep "^SERVER_STARTER_PORT=$PD=9;$PU=[0-9]+\$" d-berth/out/gen-1.env &&
	ss_norm d-perl/daemonize.out >out.perl &&
	ss_norm d-berth/daemonize.out >out.berth &&
	test_cmp out.perl out.berth &&
	test_grep "^cwd=$TRASH/wd\$" d-berth/out/gen-1.env &&
	ss_norm d-perl/log >log.perl && ss_norm d-berth/log >log.berth &&
	test_cmp log.perl log.berth &&
	test_grep "^socket is duplicated to file descriptor 9" log.berth &&
	ss_norm d-perl/piped.log >log.perl && ss_norm d-berth/piped.log >log.berth &&
	test_cmp log.perl log.berth &&
	ss_norm d-perl/daemon.log >log.perl && ss_norm d-berth/daemon.log >log.berth &&
	test_cmp log.perl log.berth
'

test_done
