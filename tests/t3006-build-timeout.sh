#!/bin/bash
# build_timeout covers the whole build: at the limit the build's process
# group is killed, the push fails and the live release keeps serving.
. "$(dirname "$0")/test-lib.sh"
. "$TEST_DIR/lib-daemon.sh"
. "$TEST_DIR/lib-pipeline.sh"

# Long enough for a whole build on a loaded machine (each build program
# starts in a mount namespace of its own, whose teardown waits for an RCU
# grace period), short enough to wait for.
test_expect_success 'engine with a 12 s build limit, push key, one release' '
	BERTH_YAML="build_timeout: 12s" &&
	start_berth &&
	setup_push_key &&
	new_app_repo slow &&
	add_web_app slow v1 &&
	echo "web: python3 web.py" >slow/Procfile &&
	commit_all slow one &&
	push slow >out &&
	test_grep "Release 1 of slow is live" out
'

test_expect_success 'a hook that hangs is killed at the limit' '
	mkdir -p slow/.berth/hooks &&
	printf "#!/bin/sh\necho waiting forever\nsleep 600 &\necho \$! >\"%s\"\nsleep 600\n" \
		"$BERTH_ROOT/cache/slow/sleeper.pid" >slow/.berth/hooks/pre-build &&
	chmod +x slow/.berth/hooks/pre-build &&
	commit_all slow two &&
	start=$(date +%s) &&
	test_must_fail push slow >out &&
	test $(( $(date +%s) - start )) -lt 60 &&
	test_grep "remote:        waiting forever" out &&
	test_grep "build timed out" out &&
	pid=$(cat "$BERTH_ROOT/cache/slow/sleeper.pid") &&
	retry_until 5 sh -c "! kill -0 $pid 2>/dev/null || grep -q \"^State:.*zombie\" /proc/$pid/status" &&
	port=$(app_port slow) &&
	get "http://127.0.0.1:$port/" >body &&
	test_grep "^hello v1 release 1 " body
'

test_done
