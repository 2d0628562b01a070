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

# make_crash_bundle OUT: web.1 writes four lines (one of them a message of
# two lines from Python) on stdout and stderr, then exits 1
make_crash_bundle() {
	local dir
	dir=$(mktemp -d "$TRASH/crash.XXXXXX")
	cat >"$dir/crash.sh" <<-'EOF'
	echo one
	echo two >&2
	echo three
	exec python3 -c 'import sys; sys.exit("multi\nline")'
	EOF
	echo "web: sh crash.sh" >"$dir/Procfile"
	tar -C "$dir" -czf "$1" . && rm -rf "$dir"
}

test_expect_success 'a crash at start: the header, then the last lines in order' '
	make_crash_bundle "$TRASH/crash2.tar.gz" &&
	test_must_fail berth deploy good "$TRASH/crash2.tar.gz" >out 2>err &&
	cat out err &&
	grep -n "" out >numbered &&
	header=$(sed -n "s/^\([0-9]*\): !     web.1 exited with status 1 while starting, last output:$/\1/p" numbered) &&
	test -n "$header" &&
	sed -n "$((header + 1)),\$p" out >tail &&
	printf "       %s\n" one two three multi line >expect &&
	test_cmp expect tail &&
	test_grep "^error: web.1 exited with status 1 while starting$" err &&
	test_grep_not "x0a" out &&
	berth logs good -n 30 >log &&
	test_grep_not "x0a" log &&
	test_grep "berth deploy failed: web.1 exited with status 1 while starting$" log &&
	nothing_left_of 5
'

test_expect_success 'a web process that ignores PORT gets a hint, then the timeout' '
	make_web_bundle "$TRASH/deaf.tar.gz" v6 "web: sleep 600" &&
	test_must_fail berth deploy good "$TRASH/deaf.tar.gz" >out 2>err &&
	test_grep "^ !     web.1 is not listening on PORT=[0-9]+ yet: does it read [$]PORT[?]$" out &&
	test_grep "^error: not ready after" err &&
	nothing_left_of 6
'

test_expect_success 'one that listens in time gets no hint' '
	# the hint comes at half the health timeout, at most 5 s: the
	# engine setting of 3 s puts it at 1.5 s, which python may need on a
	# loaded machine; the app setting of 30 s puts it at 5 s
	BUNDLE_APP_YAML="healthcheck: {timeout: 30s}" \
		make_web_bundle "$TRASH/good-hint.tar.gz" v7 &&
	berth deploy good "$TRASH/good-hint.tar.gz" >out &&
	test_grep_not "is not listening" out
'

test_expect_success 'the good release is still the live one' '
	berth apps >apps &&
	test_grep "^good +running +v7 " apps
'

test_done
