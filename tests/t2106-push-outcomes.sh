#!/bin/bash
# A failed push changes nothing: the branch stays where it was, so the
# same commit pushed again builds again.  An app whose first push failed
# exists (new), shows its build in "logs" and takes config and rm.  A push
# that loses the engine says what became of its release.  A new engine
# leaves the files of a build still running alone.
. "$(dirname "$0")/test-lib.sh"
. "$TEST_DIR/lib-daemon.sh"
. "$TEST_DIR/lib-pipeline.sh"

repo_ref() { git --git-dir="$BERTH_ROOT/apps/$1/repo.git" rev-parse --verify -q "$2"; }

# push_in_background DIR OUT: output in OUT.out, status in OUT.rc
push_in_background() {
	rm -f "$2.rc"
	{ git -C "$1" push deploy HEAD:main >"$2.out" 2>&1; echo $? >"$2.rc"; } &
	return 0
}

test_expect_success 'setup: engine and push key' '
	BERTH_YAML="health_timeout: 5s" &&
	start_berth &&
	setup_push_key
'

test_expect_success 'a first push that does not build: rejected, the app is new' '
	new_app_repo first &&
	cp "$TOP/tests/apps/web.py" first/web.py &&
	echo v1 >first/VERSION &&
	commit_all first one &&
	test_must_fail push first >out 2>&1 &&
	test_grep "! \[remote rejected\] +HEAD -> main \(deploy failed: " out &&
	test -z "$(repo_ref first refs/heads/main)" &&
	berth apps >apps &&
	test_grep "^first +new +- +-$" apps
'

test_expect_success 'logs shows its build output, config set and a re-push build it' '
	berth logs first >log &&
	test_grep "build -----> Building first \(commit [0-9a-f]{7}\)" log &&
	test_grep "build  !     .*buildpack" log &&
	make_test_buildpack "$TRASH/pack" &&
	berth config first set BUILDPACK="$TRASH/pack" >out &&
	test_grep "applies at the next deploy" out &&
	push first >out 2>&1 &&
	test_grep_not "Everything up-to-date" out &&
	test_grep "Test Pack build 1" out &&
	test_grep "Release 1 of first is live" out &&
	test "$(repo_ref first refs/heads/main)" = "$(git -C first rev-parse HEAD)" &&
	through_nginx first | grep -q "hello none-build1"
'

test_expect_success 'a push whose deploy fails leaves the branch; the same commit builds again' '
	before=$(repo_ref first refs/heads/main) &&
	echo "web: echo bad start; exit 3" >first/Procfile &&
	commit_all first broken &&
	test_must_fail push first >out 2>&1 &&
	test_grep "! \[remote rejected\] +HEAD -> main \(deploy failed: web.1 exited with status 3 while starting\)" out &&
	test "$(repo_ref first refs/heads/main)" = "$before" &&
	test_must_fail push first >out 2>&1 &&
	test_grep_not "Everything up-to-date" out &&
	test_grep "Building first" out &&
	test_grep "remote rejected" out &&
	through_nginx first | grep -q "hello none-build1" &&
	berth releases first >rels &&
	test_grep "^v1\* +live" rels
'

test_expect_success 'skip-deploy still stores the commit without a build' '
	git -C first push -o skip-deploy deploy HEAD:main >out 2>&1 &&
	test_grep "Skipping deploy" out &&
	test_grep_not "Building first" out &&
	test "$(repo_ref first refs/heads/main)" = "$(git -C first rev-parse HEAD)"
'

test_expect_success 'rm works on an app whose only push failed' '
	new_app_repo second &&
	echo hello >second/README &&
	commit_all second one &&
	test_must_fail push second >out 2>&1 &&
	apps_line_matches "^second +new" &&
	berth rm second --force >out &&
	! apps_line_matches "^second " &&
	test ! -e "$BERTH_ROOT/apps/second"
'

test_expect_success 'an engine killed during a build: its files stay, the push goes through' '
	# a build sees its own cache at its usual path (not the host'"'"'s /tmp):
	# its marks go there
	new_app_repo slow &&
	add_web_app slow v1 &&
	echo "web: python3 web.py" >slow/Procfile &&
	mkdir -p slow/.berth/hooks &&
	printf "#!/bin/sh\ntouch \"%s\"\nwhile [ ! -e \"%s\" ]; do sleep 0.1; done\n" \
		"$BERTH_ROOT/cache/slow/build-started" "$BERTH_ROOT/cache/slow/build-go" >slow/.berth/hooks/pre-build &&
	chmod +x slow/.berth/hooks/pre-build &&
	commit_all slow one &&
	push_in_background slow slow &&
	retry_until 30 test -e "$BERTH_ROOT/cache/slow/build-started" &&
	ls "$BERTH_ROOT/tmp" >tmp-before &&
	test_grep "^build-slow-" tmp-before &&
	crash_berth &&
	start_berth &&
	ls "$BERTH_ROOT/tmp" >tmp-after &&
	test_cmp tmp-before tmp-after &&
	test_grep "keeping .tmp/build-slow-.*: a build of .slow. is running" "$TRASH/berth.log" &&
	touch "$BERTH_ROOT/cache/slow/build-go" &&
	retry_until 60 test -s slow.rc &&
	cat slow.out &&
	test "$(cat slow.rc)" = 0 &&
	test_grep "Release 1 of slow is live" slow.out &&
	test -z "$(ls "$BERTH_ROOT/tmp")"
'

test_expect_success 'the engine dies after the swap: the push asks what became of it' '
	stop_berth &&
	sed -i "s/^drain: .*/drain: 30s/" "$BERTH_ROOT/berth.yaml" &&
	start_berth &&
	retry_until 20 apps_line_matches "^slow +running +v1" &&
	echo v2 >slow/VERSION &&
	rm slow/.berth/hooks/pre-build &&
	commit_all slow two &&
	push_in_background slow swap &&
	retry_until 60 grep -q "Switched traffic" swap.out &&
	crash_berth &&
	start_berth &&
	retry_until 90 test -s swap.rc &&
	cat swap.out &&
	test "$(cat swap.rc)" = 0 &&
	test_grep "lost the engine during the deploy" swap.out &&
	test_grep "The engine came back with release 2 of slow live" swap.out &&
	test_grep_not "running release is unchanged" swap.out &&
	test "$(repo_ref slow refs/heads/main)" = "$(git -C slow rev-parse HEAD)" &&
	retry_until 20 apps_line_matches "^slow +running +v2"
'

test_expect_success 'the engine dies before the swap: the push says what runs' '
	echo "web: sleep 600" >slow/Procfile &&
	commit_all slow deaf &&
	before=$(repo_ref slow refs/heads/main) &&
	push_in_background slow deaf &&
	retry_until 60 grep -q "Starting web.1" deaf.out &&
	crash_berth &&
	start_berth &&
	retry_until 90 test -s deaf.rc &&
	cat deaf.out &&
	test "$(cat deaf.rc)" = 1 &&
	test_grep "release 3 is interrupted, release 2 of slow is live" deaf.out &&
	test_grep_not "running release is unchanged" deaf.out &&
	test "$(repo_ref slow refs/heads/main)" = "$before"
'

test_done
