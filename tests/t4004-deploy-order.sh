#!/bin/bash
# Deploys of one app queue (the newest waiting one wins), deploys of
# different apps run side by side, workers start in their documented
# order, and a host another app owns is refused without a change.
. "$(dirname "$0")/test-lib.sh"
. "$TEST_DIR/lib-daemon.sh"

new_shared_dir || exit 1	# the gates the slow apps wait for

# gated CMD: a Procfile line that starts web.py once file $SHARED/GATE exists
gated() {
	echo "web: while [ ! -e $SHARED/$1 ]; do sleep 0.1; done; exec python3 web.py"
}

version_of() { through_nginx "$1" / | sed -n 's/^hello \([^ ]*\) .*/\1/p'; }

test_expect_success 'setup' '
	start_berth &&
	make_web_bundle "$TRASH/q1.tar.gz" q1 &&
	make_web_bundle "$TRASH/slow.tar.gz" slow "$(gated slow)" &&
	make_web_bundle "$TRASH/q2.tar.gz" q2 &&
	make_web_bundle "$TRASH/q3.tar.gz" q3 &&
	berth deploy queue "$TRASH/q1.tar.gz" &&
	retry_until 10 through_nginx queue
'

test_expect_success 'a deploy waits for the running one; the newest waiting one wins' '
	{ (berth deploy queue "$TRASH/slow.tar.gz" >slow.out 2>&1; echo $? >slow.rc) & } &&
	retry_until 10 grep -q "Starting web.1" slow.out &&
	{ (berth deploy queue "$TRASH/q2.tar.gz" >q2.out 2>&1; echo $? >q2.rc) & } &&
	retry_until 10 grep -q "Waiting for the running deploy" q2.out &&
	{ (berth deploy queue "$TRASH/q3.tar.gz" >q3.out 2>&1; echo $? >q3.rc) & } &&
	retry_until 10 grep -q "Waiting for the running deploy" q3.out &&
	test_must_fail test -f slow.rc &&
	touch "$SHARED/slow" &&
	retry_until 30 test -s slow.rc &&
	retry_until 30 test -s q2.rc &&
	retry_until 30 test -s q3.rc &&
	test "$(cat slow.rc)" = 0 &&
	test "$(cat q2.rc)" != 0 &&
	test "$(cat q3.rc)" = 0 &&
	test_grep "superseded by a newer deploy" q2.out &&
	test_grep "is live" q3.out &&
	test "$(version_of queue)" = q3
'

test_expect_success 'deploys of different apps run side by side' '
	make_web_bundle "$TRASH/slower.tar.gz" s2 "$(gated slower)" &&
	{ (berth deploy left "$TRASH/slower.tar.gz" >left.out 2>&1; echo $? >left.rc) & } &&
	retry_until 10 grep -q "Starting web.1" left.out &&
	berth deploy right "$TRASH/q1.tar.gz" >right.out 2>&1 &&
	test_grep "is live" right.out &&
	test ! -f left.rc &&
	touch "$SHARED/slower" &&
	retry_until 30 test -s left.rc &&
	test "$(cat left.rc)" = 0
'

# A worker that records its life in a file a config var names (under /run:
# an isolated app does not see the test's /tmp).
make_worker_bundle() {
	local out="$1" order="$2" tag="$3" dir
	dir=$(mktemp -d "$TRASH/wb.XXXXXX")
	cat >"$dir/w.sh" <<-\EOF
	#!/bin/sh
	echo "start $TAG" >>"$LIFE"
	trap 'echo "stop $TAG" >>"$LIFE"; exit 0' TERM
	while :; do sleep 0.1; done
	EOF
	chmod +x "$dir/w.sh"
	printf "processes:\n  worker:\n    command: TAG=%s ./w.sh\n    order: %s\nsettle: 300ms\n" \
		"$tag" "$order" >"$dir/app.yaml"
	tar -C "$dir" -czf "$out" . && rm -rf "$dir"
}

test_expect_success 'a start-first worker overlaps its successor' '
	make_worker_bundle w1.tar.gz start-first a &&
	make_worker_bundle w2.tar.gz start-first b &&
	berth deploy sf "$TRASH/w1.tar.gz" &&
	new_shared_dir &&
	: >"$SHARED/sf.life" && chmod 666 "$SHARED/sf.life" &&
	berth config sf set "LIFE=$SHARED/sf.life" &&
	berth deploy sf "$TRASH/w2.tar.gz" &&
	retry_until 10 grep -q "stop a" "$SHARED/sf.life" &&
	printf "start b\nstop a\n" >expect &&
	grep -v "^start a" "$SHARED/sf.life" >actual &&
	test_cmp expect actual
'

test_expect_success 'a stop-first worker never runs twice' '
	make_worker_bundle w3.tar.gz stop-first c &&
	make_worker_bundle w4.tar.gz stop-first d &&
	berth deploy st "$TRASH/w3.tar.gz" &&
	new_shared_dir &&
	: >"$SHARED/st.life" && chmod 666 "$SHARED/st.life" &&
	berth config st set "LIFE=$SHARED/st.life" &&
	berth deploy st "$TRASH/w4.tar.gz" &&
	retry_until 10 grep -q "start d" "$SHARED/st.life" &&
	printf "stop c\nstart d\n" >expect &&
	grep -v "^start c" "$SHARED/st.life" >actual &&
	test_cmp expect actual
'

test_expect_success 'an invalid host in the manifest is refused; the app keeps serving' '
	mkdir -p hosty && tar -C hosty -xzf q1.tar.gz &&
	printf "hosts:\n  - \"bad host!\"\n" >hosty/app.yaml &&
	tar -C hosty -czf hosty.tar.gz . &&
	test_must_fail berth deploy queue "$TRASH/hosty.tar.gz" 2>err &&
	test_grep "^error: .*app.yaml:2" err &&
	test "$(version_of queue)" = q3
'

test_expect_success 'a host another app owns is refused, naming it; nothing changes' '
	printf "hosts:\n  - www.queue.test\n" >hosty/app.yaml &&
	tar -C hosty -czf hosty2.tar.gz . &&
	berth deploy queue "$TRASH/hosty2.tar.gz" &&
	retry_until 10 through_nginx queue &&
	test "$(curl -s -H "Host: www.queue.test" "http://127.0.0.1:$HTTP_PORT/" |
		sed -n "s/^hello \([^ ]*\) .*/\1/p")" = q1 &&
	cp "$BERTH_ROOT/nginx/routes" before &&
	test_must_fail berth deploy right "$TRASH/hosty2.tar.gz" 2>err &&
	test_grep "^error: .*host .www.queue.test. belongs to app .queue." err &&
	test $(wc -l <err) = 1 &&
	test_cmp before "$BERTH_ROOT/nginx/routes" &&
	berth apps >apps &&
	test_grep "^queue +running" apps &&
	test_grep "^right +running" apps
'

test_done
