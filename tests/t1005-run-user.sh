#!/bin/bash
# With the engine running as root, app processes and release commands run
# as the app's own user (berth-APP), in a folder it owns seen at /app, even
# with berth.yaml's older "user:" set.
. "$(dirname "$0")/test-lib.sh"
. "$TEST_DIR/lib-daemon.sh"

if [ "$(id -u)" != 0 ] || ! id nobody >/dev/null 2>&1; then
	test_skip "needs root and a user 'nobody'"
	test_done
fi

uid_of() { sed -n 's/^Uid:[[:space:]]*\([0-9]*\).*/\1/p' "/proc/$1/status"; }

test_expect_success 'apps run as their own user, never the configured one' '
	BERTH_YAML="user: nobody" &&
	start_berth &&
	make_web_bundle "$TRASH/u.tar.gz" u1 "web: python3 web.py" "release: id -un >release-user" &&
	berth deploy ua "$TRASH/u.tar.gz" >out &&
	pid=$(app_pid ua) &&
	test "$(uid_of $pid)" = "$(id -u berth-ua)" &&
	test "$(readlink /proc/$pid/cwd)" = /app &&
	dir=/proc/$pid/root/app &&
	test "$(stat -c %U "$dir")" = berth-ua &&
	test "$(cat "$dir/release-user")" = berth-ua
'

test_expect_success 'an unknown user stops the engine from starting, with a clear error' '
	stop_berth &&
	BERTH_ROOT=$TRASH/root2 &&
	mkdir -p "$BERTH_ROOT" &&
	echo "user: no-such-user-here" >"$BERTH_ROOT/berth.yaml" &&
	test_must_fail timeout 20 "$BERTH" --root "$BERTH_ROOT" serve \
		--ssh-listen 127.0.0.1:$(free_port) --http-listen 127.0.0.1:$(free_port) 2>err &&
	test_grep "user .no-such-user-here." err
'

test_done
