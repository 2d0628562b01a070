#!/bin/bash
# A release is code plus config: a config change whose deploy fails (the
# release command, a crash at start, the health check, a full disk)
# leaves the config as it was, in memory and on disk; crash restarts and
# engine restarts run the live release's config; rollback brings back
# code and config; releases shows what changed; keep_releases counts
# releases that went live.
. "$(dirname "$0")/test-lib.sh"
. "$TEST_DIR/lib-daemon.sh"

# make_picky_bundle OUT: refuses to start with CRASH set, fails its
# release command with NORELEASE set, its health check with HEALTH_FAIL
make_picky_bundle() {
	local dir
	dir=$(mktemp -d "$TRASH/picky.XXXXXX")
	cp "$TOP/tests/apps/web.py" "$dir/"
	echo picky >"$dir/VERSION"
	cat >"$dir/Procfile" <<-'EOF'
	web: if [ -n "$CRASH" ]; then echo "cannot start: CRASH=$CRASH"; echo "second line"; exit 1; fi; exec python3 web.py
	release: test -z "$NORELEASE"
	EOF
	printf 'healthcheck:\n  path: /health\n  timeout: 3s\n' >"$dir/app.yaml"
	tar -C "$dir" -czf "$1" . && rm -rf "$dir"
}

env_of() { get "http://127.0.0.1:$(app_port "$1")/env"; }
config_var() { env_of "$1" | sed -n "s/^$2=//p"; }

# unchanged: the config of app rc is MOOD=calm only, everywhere
unchanged() {
	berth config rc >cfg &&
	test_grep "^MOOD=calm$" cfg &&
	test "$(wc -l <cfg)" -eq 1 &&
	test_cmp cfg "$BERTH_ROOT/apps/rc/env" &&
	test "$(config_var rc MOOD)" = calm &&
	test -z "$(config_var rc CRASH)$(config_var rc NORELEASE)$(config_var rc HEALTH_FAIL)"
}

test_expect_success 'setup: a configured app' '
	BERTH_YAML="keep_releases: 3" &&
	start_berth &&
	make_picky_bundle "$TRASH/picky.tar.gz" &&
	berth deploy rc "$TRASH/picky.tar.gz" >/dev/null &&
	berth config rc set MOOD=calm >out &&
	test_grep "Release 2 of rc is live" out &&
	unchanged
'

test_expect_success 'a config set whose process crashes at start changes nothing' '
	test_must_fail berth config rc set CRASH=1 >out 2>&1 &&
	test_grep "web.1 exited with status 1 while starting" out &&
	test_must_fail berth config rc get CRASH &&
	unchanged &&
	test_grep "^release 2$" "$BERTH_ROOT/apps/rc/state" &&
	test_grep "^CRASH=1$" "$BERTH_ROOT/apps/rc/releases/3/env" &&
	test ! -e "$BERTH_ROOT/apps/rc/releases/3/bundle.tar.gz"
'

test_expect_success 'nor one whose release command fails, nor its health check' '
	test_must_fail berth config rc set NORELEASE=1 >out 2>&1 &&
	test_grep "release command exited with status 1" out &&
	unchanged &&
	berth config rc unset MOOD >out &&
	test_grep "Release 5 of rc is live" out &&
	berth config rc set MOOD=calm >/dev/null &&
	test_must_fail berth config rc set HEALTH_FAIL=1 >out 2>&1 &&
	test_grep "not ready after" out &&
	unchanged
'

test_expect_success 'a crash restart runs the live config, not the refused one' '
	pid=$(app_pid rc) &&
	port=$(app_port rc) &&
	before=$(grep -c "cannot start: CRASH" "$BERTH_ROOT/logs/rc/app.log") &&
	get "http://127.0.0.1:$port/crash" >/dev/null &&
	retry_until 20 ps_line_matches rc "^web.1 .* up +[0-9]+s +1( |$)" &&
	test "$(app_pid rc)" != "$pid" &&
	unchanged &&
	test "$(grep -c "cannot start: CRASH" "$BERTH_ROOT/logs/rc/app.log")" = "$before"
'

test_expect_success 'so does a restarted engine, after a stop or a kill -9' '
	stop_berth &&
	start_berth &&
	retry_until 20 apps_line_matches "^rc +running" &&
	unchanged &&
	crash_berth &&
	start_berth &&
	retry_until 20 apps_line_matches "^rc +running" &&
	unchanged
'

test_expect_success 'releases shows what each release changed in the config' '
	berth releases rc >rels &&
	cat rels &&
	test_grep "^v2 +deployed .* config: \+MOOD$" rels &&
	test_grep "^v3 +failed .* config: \+CRASH$" rels &&
	test_grep "^v5 +deployed .* config: -MOOD$" rels &&
	test_grep "^v7 +failed .* config: \+HEALTH_FAIL$" rels
'

test_expect_success 'rollback brings back the code and the config of a release' '
	berth config rc set MOOD=happy EXTRA=1 >/dev/null &&
	test "$(config_var rc MOOD)" = happy &&
	berth rollback rc 6 >out &&
	test_grep "Release [0-9]+ of rc is live" out &&
	unchanged &&
	berth releases rc >rels &&
	test_grep "^v9\* +live .* rollback +config: \+MOOD -EXTRA$" rels
'

test_expect_success 'config set on a stopped app applies at start, as a new release' '
	berth stop rc >/dev/null &&
	berth config rc set LATER=yes >out &&
	test_grep "applies at the next start" out &&
	test_grep "^LATER=yes$" "$BERTH_ROOT/apps/rc/env" &&
	berth start rc >out &&
	test_grep "Release 10 of rc is live" out &&
	test "$(config_var rc LATER)" = yes &&
	berth config rc unset LATER >/dev/null &&
	unchanged
'

test_expect_success 'keep_releases counts releases that went live' '
	for i in 1 2 3 4 5; do
		test_must_fail berth config rc set CRASH=$i >/dev/null 2>&1 || return 1
	done &&
	ls "$BERTH_ROOT/apps/rc/releases" | sort -n >kept &&
	cat kept &&
	for v in 9 10 11; do
		test_grep "^$v$" kept &&
		test -e "$BERTH_ROOT/apps/rc/releases/$v/bundle.tar.gz" || return 1
	done &&
	test "$(wc -l <kept)" -eq 6 &&
	for v in $(sed -n "4,6p" kept); do
		test_grep "^status failed$" "$BERTH_ROOT/apps/rc/releases/$v/meta" &&
		test ! -e "$BERTH_ROOT/apps/rc/releases/$v/bundle.tar.gz" || return 1
	done &&
	unchanged
'

# A full disk, on a small tmpfs holding one app's folder.
if mkdir -p "$TRASH/probe" && mount -t tmpfs -o size=64k tmpfs "$TRASH/probe" 2>/dev/null; then
	umount "$TRASH/probe"
	test_expect_success 'setup: an app whose folder is a 1 MiB tmpfs' '
		mkdir -p "$BERTH_ROOT/apps/full" &&
		mount -t tmpfs -o size=1m tmpfs "$BERTH_ROOT/apps/full" &&
		test_atexit "umount -l \"$BERTH_ROOT/apps/full\"" &&
		new_shared_dir &&
		gate="$SHARED/gate" &&
		touch "$gate" &&
		dir=$(mktemp -d "$TRASH/gated.XXXXXX") &&
		cp "$TOP/tests/apps/web.py" "$dir/" &&
		echo "web: while [ ! -e $gate ]; do sleep 0.1; done; exec python3 web.py" >"$dir/Procfile" &&
		tar -C "$dir" -czf gated.tar.gz . &&
		berth deploy full "$TRASH/gated.tar.gz" >/dev/null &&
		berth config full set A=1 >/dev/null &&
		test "$(config_var full A)" = 1
	'

	# fill [PAGES]: fill the tmpfs, leaving PAGES pages of 4 KiB free
	fill() {
		local spare="$BERTH_ROOT/apps/full/spare"
		rm -f "$BERTH_ROOT/apps/full/filler" "$spare"
		head -c $(( ${1:-0} * 4096 )) /dev/zero >"$spare" &&
		{ dd if=/dev/zero of="$BERTH_ROOT/apps/full/filler" bs=4k 2>/dev/null; true; } &&
		rm -f "$spare"
	}

	# config_full_is A: app full runs with A and its config says so
	config_full_is() {
		berth config full >cfg &&
		test "$(cat cfg)" = "A=$1" &&
		test_cmp cfg "$BERTH_ROOT/apps/full/env" &&
		test "$(config_var full A)" = "$1" &&
		test_grep "^release 2$" "$BERTH_ROOT/apps/full/state"
	}

	test_expect_success 'a full disk refuses the config change; nothing changes' '
		fill 0 &&
		test_must_fail berth config full set A=2 >out 2>&1 &&
		test_grep "No space left on device" out &&
		config_full_is 1
	'

	# config_in_background A: "config full set A=..." in the background
	# (output in out, status in rc), returning once its web.1 waits
	config_in_background() {
		local n
		n=$(grep -c "Starting web.1" "$BERTH_ROOT/logs/full/app.log")
		rm -f rc "$gate"
		{ berth config full set A=$1 >out 2>&1; echo $? >rc; } &
		retry_until 20 more_starts_than $n
	}
	more_starts_than() {
		test "$(grep -c "Starting web.1" "$BERTH_ROOT/logs/full/app.log")" -gt "$1"
	}

	test_expect_success 'the disk fills up during the deploy: the config file cannot be written' '
		rm -f "$BERTH_ROOT/apps/full/filler" &&
		config_in_background 3 &&
		fill 0 &&
		touch "$gate" &&
		retry_until 30 test -s rc &&
		test "$(cat rc)" = 1 &&
		test_grep "cannot record release [0-9]+ as live" out &&
		config_full_is 1
	'

	test_expect_success 'room for the config file, not for the state: both stay as they were' '
		rm -f "$BERTH_ROOT/apps/full/filler" &&
		config_in_background 4 &&
		fill 1 &&
		touch "$gate" &&
		retry_until 30 test -s rc &&
		test "$(cat rc)" = 1 &&
		test_grep "cannot record release [0-9]+ as live" out &&
		config_full_is 1 &&
		test ! -e "$BERTH_ROOT/apps/full/env.prev"
	'

	test_expect_success 'with room again it goes through, and an engine restart keeps it' '
		rm -f "$BERTH_ROOT/apps/full/filler" &&
		berth config full set A=5 >out &&
		test "$(config_var full A)" = 5 &&
		stop_berth &&
		start_berth &&
		retry_until 20 apps_line_matches "^full +running" &&
		test "$(config_var full A)" = 5
	'
else
	test_skip "cannot mount a tmpfs here (needs root)"
fi

test_done
