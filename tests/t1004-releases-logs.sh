#!/bin/bash
# Releases: listing, rollback without a build, pruning; logs rotate by size
# and survive an engine restart; rm asks for the name.
. "$(dirname "$0")/test-lib.sh"
. "$TEST_DIR/lib-daemon.sh"

version() { get "http://127.0.0.1:$(app_port rel)/" | sed -n 's/^hello \([^ ]*\) .*/\1/p'; }

test_expect_success 'setup: three releases' '
	BERTH_YAML="keep_releases: 4
log_max_size: 4096" &&
	start_berth &&
	for v in 1 2 3; do
		BUNDLE_APP_JSON=$WORKER_AT_1 make_web_bundle "$TRASH/r$v.tar.gz" "r$v" "web: python3 web.py" "worker: python3 worker.py" &&
		berth deploy rel "$TRASH/r$v.tar.gz" >/dev/null || return 1
	done &&
	test "$(version)" = r3
'

test_expect_success 'releases lists them, newest first, the live one marked' '
	berth releases rel >out &&
	test_grep "^v3\* +live" out &&
	test_grep "^v2 +deployed" out &&
	test_grep "^v1 +deployed" out &&
	test "$(sed -n 2p out | cut -c1-3)" = "v3*"
'

test_expect_success 'rollback brings the previous release back as a new one' '
	berth rollback rel >out &&
	test_grep "Rolling back rel to release 2" out &&
	test_grep "Release 4 of rel is live" out &&
	test "$(version)" = r2 &&
	berth releases rel >rels &&
	test_grep "^v4\* +live .* rollback$" rels
'

test_expect_success 'rollback N picks that release; a missing one is an error' '
	berth rollback rel 1 >out &&
	test "$(version)" = r1 &&
	test_must_fail berth rollback rel 99 2>err &&
	test_grep "^error: release 99 of .rel. does not exist" err &&
	test_must_fail berth rollback rel abc 2>err &&
	test_grep "^error: bad release number" err &&
	test "$(version)" = r1
'

test_expect_success 'old releases are pruned beyond keep_releases, never the live one' '
	berth deploy rel "$TRASH/r3.tar.gz" >/dev/null &&
	berth deploy rel "$TRASH/r2.tar.gz" >/dev/null &&
	test "$(ls "$BERTH_ROOT/apps/rel/releases" | wc -l)" -eq 4 &&
	test ! -e "$BERTH_ROOT/apps/rel/releases/1" &&
	test -e "$BERTH_ROOT/apps/rel/releases/7/bundle.tar.gz"
'

test_expect_success 'the log rotates by size' '
	retry_until 30 test -e "$BERTH_ROOT/logs/rel/app.log.1" &&
	test $(stat -c %s "$BERTH_ROOT/logs/rel/app.log") -le 8192 &&
	berth logs rel -n 5 >out &&
	test $(wc -l <out) -eq 5
'

# The newest line before the stop: with a 4 KiB log_max_size the oldest
# ones may rightly be rotated out by what the restart itself logs.
test_expect_success 'the log survives an engine restart' '
	berth logs rel -n 1000 | tail -n 1 >first &&
	test -s first &&
	stop_berth &&
	start_berth &&
	retry_until 20 apps_line_matches "^rel +running" &&
	berth logs rel -n 100000 >all &&
	grep -qF "$(cat first)" all
'

test_expect_success 'rm asks for the name: a wrong or missing answer keeps the app' '
	test_must_fail berth rm rel </dev/null 2>err &&
	test_grep "confirmation" err &&
	echo other | test_must_fail berth rm rel 2>err &&
	test_grep "does not match" err &&
	apps_line_matches "^rel " &&
	echo rel | berth rm rel &&
	! apps_line_matches "^rel "
'

test_done
