#!/bin/bash
# Upgrades: stop, install the new binary, start; every app comes back.  The
# state folder keeps its format version: state from before the version was
# kept (format 0) is read and upgraded, a newer format is refused.
. "$(dirname "$0")/test-lib.sh"
. "$TEST_DIR/lib-daemon.sh"

test_expect_success 'an engine with two apps, one stopped' '
	start_berth &&
	test "$(cat "$BERTH_ROOT/state-format")" = 1 &&
	make_web_bundle "$TRASH/v1.tar.gz" v1 "web: python3 web.py" &&
	make_web_bundle "$TRASH/v2.tar.gz" v2 "web: python3 web.py" &&
	berth deploy web "$TRASH/v1.tar.gz" >/dev/null &&
	berth deploy web "$TRASH/v2.tar.gz" >/dev/null &&
	berth config web set GREETING=hi >/dev/null &&
	berth deploy off "$TRASH/v1.tar.gz" >/dev/null &&
	berth stop off >/dev/null &&
	stop_berth
'

test_expect_success 'state written before the format was kept (format 0) is read' '
	rm "$BERTH_ROOT/state-format" &&
	start_berth &&
	test "$(cat "$BERTH_ROOT/state-format")" = 1 &&
	test_grep "upgrading format 0 to 1" "$TRASH/berth.log" &&
	retry_until 30 eval "berth apps | grep -Eq \"^web +running +v3 \"" &&
	berth apps >out &&
	test_grep "^off +stopped" out &&
	port=$(app_port web) &&
	retry_until 15 get "http://127.0.0.1:$port/" &&
	get "http://127.0.0.1:$port/" >body &&
	test_grep "^hello v2 release 3" body &&
	berth config web get GREETING >out &&
	test_grep "^hi$" out &&
	berth releases web >out &&
	test_grep "^ *v?1 " out &&
	stop_berth
'

test_expect_success 'a state folder from a newer berth is refused, nothing changed' '
	echo 99 >"$BERTH_ROOT/state-format" &&
	(cd "$BERTH_ROOT" && find . -type f ! -path "./logs/*" -exec md5sum {} + | sort) >sums.before &&
	test_must_fail "$BERTH" --root "$BERTH_ROOT" serve --ssh-listen 127.0.0.1:$(free_port) \
		--http-listen 127.0.0.1:$(free_port) >serve.out 2>serve.err &&
	test_grep "state in .* is format 99, newer than this berth" serve.err &&
	test $(grep -c "format 99" serve.err) -eq 1 &&
	(cd "$BERTH_ROOT" && find . -type f ! -path "./logs/*" -exec md5sum {} + | sort) >sums.after &&
	test_cmp sums.before sums.after &&
	test_must_fail berth apps 2>err
'

test_expect_success 'a state-format file that is not a number is refused' '
	echo "one" >"$BERTH_ROOT/state-format" &&
	test_must_fail "$BERTH" --root "$BERTH_ROOT" serve --ssh-listen 127.0.0.1:$(free_port) \
		--http-listen 127.0.0.1:$(free_port) >serve.out 2>serve.err &&
	test_grep "does not hold a state format number" serve.err
'

test_expect_success 'back at format 1, every app comes back' '
	echo 1 >"$BERTH_ROOT/state-format" &&
	start_berth &&
	retry_until 30 eval "berth apps | grep -Eq \"^web +running +v3 \"" &&
	berth apps >out &&
	test_grep "^off +stopped" out
'

test_done
