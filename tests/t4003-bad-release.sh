#!/bin/bash
# A release that never becomes ready, or crashes at start, never replaces
# the one that serves; nothing of it is left behind.
. "$(dirname "$0")/test-lib.sh"
. "$TEST_DIR/lib-daemon.sh"

# Poll the app through nginx in the background; count failures.
start_poller() {
	( ok=0; bad=0
	  while [ ! -f stop-poller ]; do
		if through_nginx good / >/dev/null 2>&1; then ok=$((ok+1)); else bad=$((bad+1)); fi
		echo "$ok $bad" >poller.count
	  done ) &
	poller=$!
}
stop_poller() { touch stop-poller; wait $poller; rm -f stop-poller; }

nothing_left_of() {
	test -z "$(ls "$BERTH_ROOT/run" | grep -E "^good-$1-")" &&
	berth releases good >rel &&
	test_grep "^v$1 +failed" rel
}

test_expect_success 'setup' '
	BERTH_YAML="health_timeout: 3s" &&
	start_berth &&
	make_web_bundle "$TRASH/good.tar.gz" v1 &&
	berth deploy good "$TRASH/good.tar.gz" &&
	retry_until 10 through_nginx good
'

test_expect_success 'a release that never becomes ready fails; v1 keeps serving' '
	make_web_bundle "$TRASH/slow.tar.gz" v2 "web: sleep 600" &&
	start_poller &&
	test_must_fail berth deploy good "$TRASH/slow.tar.gz" >out 2>err &&
	stop_poller &&
	test_grep "^error: not ready after" err &&
	read ok bad <poller.count && test $ok -gt 0 && test $bad -eq 0 &&
	through_nginx good / | grep -q "hello v1" &&
	nothing_left_of 2 &&
	test -z "$(berth_procs | xargs -r -n1 -I{} grep -l "sleep" /proc/{}/cmdline 2>/dev/null)"
'

test_expect_success 'a release whose process crashes at start fails at once' '
	make_web_bundle "$TRASH/crash.tar.gz" v3 "web: echo starting up; echo cannot bind >&2; exit 4" &&
	start_poller &&
	start=$(date +%s) &&
	test_must_fail berth deploy good "$TRASH/crash.tar.gz" >out 2>err &&
	end=$(date +%s) &&
	stop_poller &&
	test $((end - start)) -lt 3 &&
	test_grep "^error: web.1 exited with status 4 while starting" err &&
	cat out err | grep -q "cannot bind" &&
	read ok bad <poller.count && test $bad -eq 0 &&
	through_nginx good / | grep -q "hello v1" &&
	nothing_left_of 3
'

test_expect_success 'a health check that answers 500 is not ready' '
	make_web_bundle "$TRASH/sick.tar.gz" v4 "web: HEALTH_FAIL=1 python3 web.py" &&
	mkdir -p sick && tar -C sick -xzf sick.tar.gz &&
	printf "healthcheck:\n  path: /health\n  timeout: 2s\n" >sick/app.yaml &&
	tar -C sick -czf sick2.tar.gz . &&
	test_must_fail berth deploy good "$TRASH/sick2.tar.gz" 2>err &&
	test_grep "not ready" err &&
	through_nginx good / | grep -q "hello v1" &&
	nothing_left_of 4
'

test_expect_success 'the good release is still the live one' '
	berth apps >apps &&
	test_grep "^good +running +v1 " apps
'

test_done
