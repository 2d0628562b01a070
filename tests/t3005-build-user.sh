#!/bin/bash
# With berth running as root, buildpacks, the app's own hooks and the
# server's hooks run as the app's own user (berth-APP), even with
# berth.yaml's older "user:" set.
. "$(dirname "$0")/test-lib.sh"
. "$TEST_DIR/lib-daemon.sh"
. "$TEST_DIR/lib-pipeline.sh"
. "$TEST_DIR/lib-buildpacks.sh"

if [ "$(id -u)" != 0 ] || ! id nobody >/dev/null 2>&1; then
	test_skip "needs root and a user 'nobody'"
	test_expect_success 'a buildpack by git URL is fetched, copied and run as the build user' '
	make_tool_pack "$TRASH/tool" &&
	publish_pack "$TRASH/tool" tool &&
	new_app_repo urlapp &&
	add_web_app urlapp v1 &&
	echo "buildpack: file://$TRASH/git/tool.git" >urlapp/app.yaml &&
	commit_all urlapp one &&
	push urlapp >out &&
	test_grep "remote: -----> Tool v1 installed" out &&
	test_grep "remote:        compiled by nobody" out &&
	test "$(stat -c %U "$BERTH_ROOT/cache/urlapp.buildpacks")" = nobody &&
	test "$(stat -c %U "$BERTH_ROOT/cache/urlapp.buildpacks"/tool-*.git)" = nobody
'

test_expect_success 'a repository only root can read is out of the build user'\''s reach' '
	mkdir -m 700 "$TRASH/private" &&
	git clone -q --bare "$TRASH/tool" "$TRASH/private/tool.git" &&
	echo "buildpack: file://$TRASH/private/tool.git" >urlapp/app.yaml &&
	commit_all urlapp private &&
	test_must_fail push urlapp >out &&
	test_grep "step .buildpack. failed: cannot fetch .file://$TRASH/private/tool.git.: .*(ermission denied|could not find repository)" out &&
	test_grep_not "Tool v1 installed" out
'

test_done
fi

test_expect_success 'engine with user: nobody, a server hook, push key' '
	BERTH_YAML="user: nobody" &&
	start_berth &&
	setup_push_key &&
	chmod 711 "$TRASH" &&
	mkdir -p "$BERTH_ROOT/hooks/pre-build.d" &&
	printf "#!/bin/sh\necho server hook as \$(id -un)\necho server >stamp\n" \
		>"$BERTH_ROOT/hooks/pre-build.d/10-whoami" &&
	chmod +x "$BERTH_ROOT/hooks/pre-build.d/10-whoami"
'

test_expect_success 'app hooks and the buildpack run as the build user, on files the server hooks made' '
	make_test_buildpack "$TRASH/testpack" &&
	new_app_repo userapp &&
	add_web_app userapp v1 &&
	echo "buildpack: $TRASH/testpack" >userapp/app.yaml &&
	mkdir -p userapp/.berth/hooks &&
	printf "#!/bin/sh\necho app hook as \$(id -un)\necho app >>stamp\n" \
		>userapp/.berth/hooks/pre-build &&
	chmod +x userapp/.berth/hooks/pre-build &&
	commit_all userapp one &&
	push userapp >out &&
	test_grep "remote:        server hook as berth-userapp" out &&
	test_grep "remote:        app hook as berth-userapp" out &&
	test_grep "remote:        compile as berth-userapp" out &&
	test_grep "remote: -----> Test Pack build 1( |$)" out &&
	test "$(stat -c %U "$BERTH_ROOT/cache/userapp/builds")" = berth-userapp &&
	test "$(stat -c %a "$BERTH_ROOT/cache/userapp")" = 700
'

test_expect_success 'a buildpack by git URL is fetched, copied and run as the build user' '
	make_tool_pack "$TRASH/tool" &&
	publish_pack "$TRASH/tool" tool &&
	new_app_repo urlapp &&
	add_web_app urlapp v1 &&
	echo "buildpack: file://$TRASH/git/tool.git" >urlapp/app.yaml &&
	commit_all urlapp one &&
	push urlapp >out &&
	test_grep "remote: -----> Tool v1 installed" out &&
	test_grep "remote:        compiled by berth-urlapp" out &&
	test "$(stat -c %U "$BERTH_ROOT/cache/urlapp.buildpacks")" = berth-urlapp &&
	test "$(stat -c %U "$BERTH_ROOT/cache/urlapp.buildpacks"/tool-*.git)" = berth-urlapp
'

test_expect_success 'a repository only root can read is out of the build user'\''s reach' '
	mkdir -m 700 "$TRASH/private" &&
	git clone -q --bare "$TRASH/tool" "$TRASH/private/tool.git" &&
	echo "buildpack: file://$TRASH/private/tool.git" >urlapp/app.yaml &&
	commit_all urlapp private &&
	test_must_fail push urlapp >out &&
	test_grep "step .buildpack. failed: cannot fetch .file://$TRASH/private/tool.git.: .*(ermission denied|could not find repository)" out &&
	test_grep_not "Tool v1 installed" out
'

test_done
