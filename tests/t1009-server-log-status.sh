#!/bin/bash
# The engine's own log (ROOT/logs/berth.log, rotated, "logs --server [-f]")
# and "berth status".
. "$(dirname "$0")/test-lib.sh"
. "$TEST_DIR/lib-ssh.sh"

BERTH_YAML="log_max_size: 4096"

test_expect_success 'the engine logs to ROOT/logs/berth.log as well as stderr' '
	start_berth &&
	test_grep "berth\[$BERTH_PID\]: serving " "$BERTH_ROOT/logs/berth.log" &&
	test_grep "berth\[$BERTH_PID\]: serving " "$TRASH/berth.log"
'

test_expect_success 'logs --server shows it, -n counts lines' '
	berth logs --server >out &&
	test_grep "^20[0-9-]+T[0-9:]+Z berth\[$BERTH_PID\]: serving " out &&
	berth logs --server -n 1 >out &&
	test $(wc -l <out) -eq 1
'

test_expect_success 'logs --server -f follows new lines' '
	(berth logs --server -n 0 -f >follow 2>&1 &
	 echo $! >follow.pid) &&
	test_when_finished "kill \$(cat follow.pid) 2>/dev/null" &&
	retry_until 10 eval "kill -HUP $BERTH_PID; grep -q \"SIGHUP: reloaded\" follow"
'

test_expect_success 'the log rotates by size, logs --server reads across' '
	i=0 &&
	while [ ! -f "$BERTH_ROOT/logs/berth.log.1" ] && [ $i -lt 400 ]; do
		kill -HUP $BERTH_PID && i=$((i + 1)) &&
		retry_until 10 eval "test \$(grep -c \"SIGHUP: reloaded\" \"$TRASH/berth.log\") -ge $i" ||
		return 1
	done &&
	test -f "$BERTH_ROOT/logs/berth.log.1" &&
	test $(stat -c %s "$BERTH_ROOT/logs/berth.log") -le 4096 &&
	cur=$(wc -l <"$BERTH_ROOT/logs/berth.log") &&
	berth logs --server -n $((cur + 2)) >out &&
	test $(wc -l <out) -eq $((cur + 2))
'

test_expect_success 'bad usage: one-line errors' '
	test_must_fail berth logs --server -x 2>err &&
	test_grep "^error: usage: logs NAME\|--server" err &&
	test $(wc -l <err) -eq 1 &&
	test_must_fail berth logs nosuchapp 2>err &&
	test_grep "^error: app .nosuchapp. does not exist" err &&
	test_must_fail berth logs ../x 2>err &&
	test_grep "^error: invalid app name" err &&
	test_must_fail berth status extra 2>err &&
	test_grep "^error: app .extra. does not exist" err &&
	test_must_fail berth status ../x 2>err &&
	test_grep "^error: invalid app name" err &&
	test_must_fail berth status one two 2>err &&
	test_grep "^usage: berth status" err
'

test_expect_success 'status with no apps' '
	berth status >out &&
	test_grep "^berth [0-9]+\.[0-9]+" out &&
	test_grep "^uptime: [0-9]+[smhd]" out &&
	test_grep "^state: $BERTH_ROOT \(format 1\)" out &&
	test_grep "^nginx: running \(pid [0-9]+, http 127.0.0.1:$HTTP_PORT\)" out &&
	test_grep "^postgres: " out &&
	test_grep "^apps: 0 " out &&
	test_grep "^processes: 0" out &&
	test_grep "^certificates: none" out
'

test_expect_success 'status counts apps and processes, disk per app' '
	BUNDLE_APP_JSON=$WORKER_AT_1 make_web_bundle "$TRASH/v1.tar.gz" v1 "web: python3 web.py" "worker: python3 worker.py" &&
	berth deploy one "$TRASH/v1.tar.gz" >/dev/null &&
	berth deploy two "$TRASH/v1.tar.gz" >/dev/null &&
	berth stop two >/dev/null &&
	berth status >out &&
	test_grep "^apps: 2 \(1 running, 1 stopped\)" out &&
	test_grep "^processes: 2$" out &&
	test_grep "^  one [0-9.]+ (B|KiB|MiB) \(repository [0-9.]+ [KMG]?i?B, releases [0-9.]+ [KMG]?i?B, logs" out &&
	test_grep "^  two " out
'

test_expect_success 'status and logs --server over ssh: logs --server for admins only' '
	make_key admin && make_key user &&
	berth keys add --admin "$TRASH/admin.pub" >/dev/null &&
	berth keys add "$TRASH/user.pub" >/dev/null &&
	ssh_berth admin status >out &&
	test_grep "^apps: 2 " out &&
	ssh_berth admin logs --server -n 3 >out &&
	test $(wc -l <out) -eq 3 &&
	test_must_fail ssh_berth user logs --server >out 2>err &&
	test_grep "only admin keys" err &&
	test_must_be_empty() { test ! -s "$1"; } &&
	test_must_be_empty out
'

test_expect_success 'the log names the engine stopping' '
	stop_berth &&
	test_grep "berth\[[0-9]+\]: stopped$" "$BERTH_ROOT/logs/berth.log"
'

test_done
