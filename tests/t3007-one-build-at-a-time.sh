#!/bin/bash
# Two pushes of one app build one after the other (they share the build
# cache); the second says it waits, and both go live in order.
. "$(dirname "$0")/test-lib.sh"
. "$TEST_DIR/lib-daemon.sh"
. "$TEST_DIR/lib-pipeline.sh"

test_expect_success 'engine and push key' '
	start_berth_for_pushes
'

test_expect_success 'a second push waits for the first build' '
	new_web_app lockapp v1 &&
	mkdir -p lockapp/.berth/hooks &&
	# the first build holds until the test lets it go
	printf "#!/bin/sh\ntouch \"%s\"\nwhile [ ! -e \"%s\" ]; do sleep 0.1; done\n" \
		"$BERTH_ROOT/cache/lockapp/first-started" "$BERTH_ROOT/cache/lockapp/let-go" >lockapp/.berth/hooks/pre-build &&
	chmod +x lockapp/.berth/hooks/pre-build &&
	commit_all lockapp one &&
	{ (git -C lockapp push deploy HEAD:main >first.out 2>&1; echo $? >first.rc) & } &&
	retry_until 30 test -e "$BERTH_ROOT/cache/lockapp/first-started" &&
	git clone -q "$TRASH/lockapp" second &&
	git -C second remote add deploy "ssh://git@127.0.0.1:$SSH_PORT/lockapp" &&
	rm second/.berth/hooks/pre-build &&
	echo v2 >second/VERSION &&
	commit_all second two &&
	{ (git -C second push -f deploy HEAD:main >second.out 2>&1; echo $? >second.rc) & } &&
	retry_until 30 grep -q "Waiting for another build of lockapp" second.out &&
	test_grep_not "is live" second.out &&
	touch "$BERTH_ROOT/cache/lockapp/let-go" &&
	retry_until 60 test -s first.rc &&
	retry_until 60 test -s second.rc &&
	test "$(cat first.rc)" = 0 &&
	test "$(cat second.rc)" = 0 &&
	test_grep "Release 1 of lockapp is live" first.out &&
	test_grep "Release 2 of lockapp is live" second.out &&
	port=$(app_port lockapp) &&
	get "http://127.0.0.1:$port/" >body &&
	test_grep "^hello v2 release 2 " body
'

test_done
