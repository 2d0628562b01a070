#!/bin/bash
# The Procfile's release: command runs once per release, before the new
# processes start; when it fails the old release keeps serving.
. "$(dirname "$0")/test-lib.sh"
. "$TEST_DIR/lib-daemon.sh"
. "$TEST_DIR/lib-pipeline.sh"

test_expect_success 'engine and push key' '
	start_berth_for_pushes
'

test_expect_success 'release: runs in the new release, before it goes live' '
	new_web_app relapp v1 &&
	commit_all relapp one &&
	push relapp >out &&
	test_grep "Release 1 of relapp is live" out &&
	berth config relapp set "MARKER=marker" &&
	printf "web: python3 web.py\nrelease: echo \"migrated \$(cat VERSION) for \$BERTH_APP\" >>\"\$MARKER\"\n" \
		>relapp/Procfile &&
	echo v2 >relapp/VERSION &&
	commit_all relapp two &&
	push relapp >out &&
	test_grep "remote: -----> Running release command" out &&
	rel=$(live_release out relapp) &&
	test -n "$rel" &&
	pid=$(app_pid relapp) &&
	if [ "$(id -u)" = 0 ]; then
		marker=/proc/$pid/root/app/marker
	else
		marker=$(readlink /proc/$pid/cwd)/marker
	fi &&
	test_grep "^migrated v2 for relapp$" "$marker"
'

test_expect_success 'a failing release command keeps the old release serving' '
	printf "web: python3 web.py\nrelease: echo migration failed; exit 2\n" >relapp/Procfile &&
	echo v3 >relapp/VERSION &&
	commit_all relapp three &&
	test_must_fail push relapp >out &&
	test_grep "migration failed" out &&
	test_grep_not "is live" out &&
	port=$(app_port relapp) &&
	get "http://127.0.0.1:$port/" >body &&
	test_grep "^hello v2 release $rel " body
'

test_done
