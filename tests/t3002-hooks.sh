#!/bin/bash
# Server-wide and app hooks, app.yaml's pipeline:, and failures that must
# leave the running release serving.
. "$(dirname "$0")/test-lib.sh"
. "$TEST_DIR/lib-daemon.sh"
. "$TEST_DIR/lib-pipeline.sh"

# web_says APP PATTERN: the app's web.1 answers with PATTERN
web_says() {
	local port
	port=$(app_port "$1") &&
	get "http://127.0.0.1:$port/" >body &&
	test_grep "$2" body
}

test_expect_success 'engine, push key, server-wide hooks' '
	start_berth &&
	# as root, server hooks run as the app user in the build'"'"'s own
	# view of the files (no host /tmp): what they record is their output
	setup_push_key &&
	mkdir -p "$BERTH_ROOT/hooks/pre-build.d" "$BERTH_ROOT/hooks/post-deploy.d" &&
	printf "#!/bin/sh\nprintf srv >VERSION\necho server hook for \$BERTH_APP\n" \
		>"$BERTH_ROOT/hooks/pre-build.d/10-stamp" &&
	printf "#!/bin/sh\necho should not run >&2; exit 1\n" \
		>"$BERTH_ROOT/hooks/pre-build.d/20-off.sample" &&
	printf "#!/bin/sh\necho \"record: \$BERTH_APP \$BERTH_RELEASE \$BERTH_COMMIT \$BERTH_STEP \$GREETING.\"\n" \
		>"$BERTH_ROOT/hooks/post-deploy.d/10-record" &&
	chmod +x "$BERTH_ROOT"/hooks/*/*
'

test_expect_success 'server hooks run first, then the app hook, before the build' '
	new_app_repo hookapp &&
	add_web_app hookapp from-repo &&
	echo "web: python3 web.py" >hookapp/Procfile &&
	mkdir -p hookapp/.berth/hooks &&
	printf "#!/bin/sh\necho \"\$(cat VERSION)-app\" >VERSION\necho app hook step \$BERTH_STEP by \$BERTH_PUSHER\n" \
		>hookapp/.berth/hooks/pre-build &&
	chmod +x hookapp/.berth/hooks/pre-build &&
	commit_all hookapp one &&
	push hookapp >out &&
	cp out first.out &&
	test_grep "remote: -----> Running pre-build hook .10-stamp." out &&
	test_grep "remote:        server hook for hookapp" out &&
	test_grep "remote: -----> Running pre-build hook .\.berth/hooks/pre-build." out &&
	test_grep "remote:        app hook step pre-build by " out &&
	test_grep_not "should not run" out &&
	test_grep "Release 1 of hookapp is live" out &&
	web_says hookapp "^hello srv-app release 1"
'

test_expect_success 'post-deploy hooks see the new release number' '
	sha=$(git -C hookapp rev-parse HEAD) &&
	test_grep "record: hookapp 1 $sha post-deploy \. *$" first.out
'

test_expect_success 'hooks get the app config vars' '
	berth config hookapp set GREETING=hi &&
	git -C hookapp commit -q --allow-empty -m two &&
	push hookapp >out &&
	rel=$(live_release out hookapp) &&
	test -n "$rel" &&
	test_grep "record: hookapp $rel [0-9a-f]{40} post-deploy hi\. *$" out
'

test_expect_success 'a failing app hook stops the push; the live release keeps serving' '
	printf "#!/bin/sh\necho checking style\necho \"lint: 3 problems\"\nexit 1\n" \
		>hookapp/.berth/hooks/pre-build &&
	commit_all hookapp three &&
	test_must_fail push hookapp >out &&
	test_grep "remote:        lint: 3 problems" out &&
	test_grep "pre-build hook .\.berth/hooks/pre-build. exited with status 1" out &&
	test_grep "\[remote rejected\]" out &&
	test_grep_not "is live" out &&
	web_says hookapp "release $rel pid" &&
	berth releases hookapp >releases &&
	test_grep_not "^$((rel + 1)) " releases &&
	test_grep_not "record: " out
'

test_expect_success 'a failing build stops the push, showing its last lines' '
	rm hookapp/.berth/hooks/pre-build &&
	printf "all:\n\t@echo compiling main.c\n\t@echo \"main.c:1: error: boom\" >&2\n\t@exit 1\n" \
		>hookapp/Makefile &&
	commit_all hookapp four &&
	test_must_fail push hookapp >out &&
	test_grep "remote: -----> Make app detected" out &&
	test_grep "remote:        main.c:1: error: boom" out &&
	test_grep "step .buildpack. failed: bin/compile exited with status" out &&
	web_says hookapp "release $rel pid" &&
	ls -A "$BERTH_ROOT/tmp" >left &&
	test_grep_not "hookapp" left
'

test_expect_success 'a failing post-deploy hook is a warning: the release is live' '
	git -C hookapp rm -q Makefile &&
	commit_all hookapp five &&
	printf "#!/bin/sh\necho cannot notify; exit 4\n" \
		>"$BERTH_ROOT/hooks/post-deploy.d/20-fail" &&
	chmod +x "$BERTH_ROOT/hooks/post-deploy.d/20-fail" &&
	push hookapp >out &&
	rm "$BERTH_ROOT/hooks/post-deploy.d/20-fail" &&
	rel=$(live_release out hookapp) &&
	test -n "$rel" &&
	test_grep "warning: step .post-deploy. failed: post-deploy hook .20-fail. exited with status 4" out &&
	web_says hookapp "release $rel pid"
'

test_expect_success 'app.yaml pipeline: with a custom hook; unlisted hook steps are skipped' '
	mkdir -p hookapp/.berth/hooks &&
	printf "#!/bin/sh\necho custom >VERSION\n" >hookapp/.berth/hooks/stamp &&
	chmod +x hookapp/.berth/hooks/stamp &&
	echo "pipeline: [hook:stamp, buildpack, pack, deploy]" >hookapp/app.yaml &&
	commit_all hookapp six &&
	push hookapp >out &&
	test_grep "remote: -----> Running custom hook .\.berth/hooks/stamp." out &&
	test_grep_not "10-stamp" out &&
	rel=$(live_release out hookapp) &&
	test -n "$rel" &&
	web_says hookapp "^hello custom release $rel pid" &&
	test_grep_not "record: " out
'

test_expect_success 'a bad pipeline: is refused before anything runs' '
	echo "pipeline: [buildpack, bogus, pack, deploy]" >hookapp/app.yaml &&
	commit_all hookapp seven &&
	test_must_fail push hookapp >out &&
	test_grep "unknown pipeline step .bogus." out &&
	test_grep_not "app detected" out &&
	echo "pipeline: [buildpack, deploy, pack]" >hookapp/app.yaml &&
	commit_all hookapp eight &&
	test_must_fail push hookapp >out &&
	test_grep "needs .pack. before .deploy." out &&
	echo "pipeline: [hook:missing, buildpack, pack, deploy]" >hookapp/app.yaml &&
	commit_all hookapp nine &&
	test_must_fail push hookapp >out &&
	test_grep "no hook .\.berth/hooks/missing. in the app" out &&
	web_says hookapp "release $rel pid"
'

test_done
