#!/bin/bash
# A pushed app with submodules deploys: the commit is checked out into a
# real work tree and each submodule is fetched from its url and checked
# out at the commit the app records (nested ones too).  A submodule that
# cannot be fetched fails the build with one line naming it, and the
# running release keeps serving.
. "$(dirname "$0")/test-lib.sh"
. "$TEST_DIR/lib-daemon.sh"
. "$TEST_DIR/lib-pipeline.sh"

export HOME="$TRASH"
# stock git refuses local submodule urls by default since 2.38.1
git config --global protocol.file.allow always

# make_lib NAME TEXT: a repository NAME (work tree) and its bare copy
# NAME.git, with greeting.txt holding TEXT
make_lib() {
	git init -q -b main "$1" &&
	echo "$2" >"$1/greeting.txt" &&
	commit_all "$1" "$2" &&
	git clone -q --bare "$1" "$1.git"
}

# lib_update NAME TEXT: a new commit on NAME, pushed to NAME.git
lib_update() {
	echo "$2" >"$1/greeting.txt" &&
	commit_all "$1" "$2" &&
	git -C "$1" push -q "$TRASH/$1.git" main
}

test_expect_success 'engine and push key' '
	start_berth &&
	setup_push_key
'

test_expect_success 'submodules from a local path and a file:// url deploy at their recorded commits' '
	make_lib lib "from-lib-v1" &&
	make_lib theme "theme-v1" &&
	new_app_repo app subapp &&
	add_web_app app v0 &&
	echo "web: cat lib/greeting.txt theme/greeting.txt >VERSION && exec python3 web.py" \
		>app/Procfile &&
	git -C app submodule add -q "$TRASH/lib.git" lib &&
	git -C app submodule add -q "file://$TRASH/theme.git" theme &&
	commit_all app "with submodules" &&
	lib_update lib "from-lib-v2" &&
	push app >out &&
	test_grep "remote: -----> Fetching submodule lib from $TRASH/lib.git" out &&
	test_grep "remote: -----> Fetching submodule theme from file://$TRASH/theme.git" out &&
	test_grep "remote:        lib at [0-9a-f]{7}" out &&
	test_grep "Release 1 of subapp is live" out &&
	get "http://127.0.0.1:$(app_port subapp)/" >body &&
	test_grep "^hello from-lib-v1" body &&
	test_grep "theme-v1" body
'

test_expect_success 'moving a submodule to a new commit deploys that commit' '
	git -C app/lib pull -q origin main &&
	git -C app add lib &&
	commit_all app "lib v2" &&
	push app >out &&
	test_grep "Release 2 of subapp is live" out &&
	get "http://127.0.0.1:$(app_port subapp)/" >body &&
	test_grep "^hello from-lib-v2" body
'

test_expect_success 'a nested submodule with a url relative to its parent deploys' '
	make_lib inner "inner-v1" &&
	git init -q -b main outer &&
	echo outer >outer/readme &&
	git -C outer submodule add -q ../inner.git inner &&
	commit_all outer "outer with inner" &&
	git clone -q --bare outer outer.git &&
	git -C app submodule add -q "$TRASH/outer.git" outer &&
	echo "web: cat outer/inner/greeting.txt >VERSION && exec python3 web.py" \
		>app/Procfile &&
	commit_all app "nested" &&
	push app >out &&
	test_grep "remote: -----> Fetching submodule outer/inner from $TRASH/inner.git" out &&
	test_grep "Release 3 of subapp is live" out &&
	get "http://127.0.0.1:$(app_port subapp)/" >body &&
	test_grep "^hello inner-v1" body
'

# push_fails PATTERN: the push is refused with that reason, release 3
# serves (forced: the steps rewind the branch)
push_fails() {
	test_must_fail git -C app push --force deploy HEAD:main >out 2>&1 &&
	test_grep "! \[remote rejected\] +HEAD -> main \(deploy failed: $1" out &&
	get "http://127.0.0.1:$(app_port subapp)/" >body &&
	test_grep "^hello inner-v1 release 3" body
}

test_expect_success 'a submodule that cannot be fetched fails the build, naming it' '
	git -C app config -f .gitmodules submodule.theme.url "file://$TRASH/gone.git" &&
	commit_all app "theme moved away" &&
	push_fails "submodule .theme. \(file://$TRASH/gone.git\): " &&
	test $(grep -c "deploy failed" out) = 1 &&
	test_grep "remote:  !     submodule .theme." out
'

test_expect_success 'a submodule commit that is on no branch of its url fails, naming it' '
	git -C app config -f .gitmodules submodule.theme.url "$TRASH/theme.git" &&
	git -C app/theme commit -q --allow-empty -m "never pushed" &&
	git -C app add theme .gitmodules &&
	commit_all app "unpublished theme commit" &&
	push_fails "submodule .theme. \($TRASH/theme.git\): commit [0-9a-f]{7} is not on any branch or tag there" &&
	git -C app/theme reset -q --hard HEAD~1
'

test_expect_success 'a relative url at the top level is refused with the reason' '
	git -C app reset -q --hard HEAD~2 &&
	git -C app config -f .gitmodules submodule.theme.url ../theme.git &&
	commit_all app "relative url" &&
	push_fails "submodule .theme. \(\.\./theme\.git\): a relative url cannot be resolved on the server"
'

test_expect_success 'a url inside the state directory (another app) is refused' '
	git -C app reset -q --hard HEAD~1 &&
	git -C app config -f .gitmodules submodule.theme.url "$BERTH_ROOT/apps/subapp/repo.git" &&
	commit_all app "our own repository" &&
	push_fails "submodule .theme. .*inside berth.s state directory"
'

test_expect_success 'a gitlink without a url in .gitmodules is refused' '
	git -C app reset -q --hard HEAD~1 &&
	git -C app config -f .gitmodules --remove-section submodule.theme &&
	commit_all app "no url for theme" &&
	push_fails "submodule .theme.: no url in .gitmodules"
'

test_expect_success 'nothing is left behind in the state directory' '
	ls "$BERTH_ROOT/tmp" >left &&
	test_grep_not "modules-" left
'

if [ "$(id -u)" = 0 ] && id nobody >/dev/null 2>&1; then
test_expect_success 'with user: set, submodules are fetched with the build user'"'"'s rights' '
	stop_berth &&
	echo "user: nobody" >>"$BERTH_ROOT/berth.yaml" &&
	start_berth &&
	git -C app reset -q --hard HEAD~1 &&
	git -C app config -f .gitmodules submodule.theme.url "$TRASH/private/theme.git" &&
	mkdir -m 700 private &&
	cp -a theme.git private/ &&
	commit_all app "theme root may read, nobody may not" &&
	push_fails "submodule .theme. \($TRASH/private/theme.git\): cannot open" &&
	chmod 755 private &&
	git -C app commit -q --allow-empty -m "again, readable" &&
	push app --force >out &&
	test_grep "Release 4 of subapp is live" out &&
	test "$(stat -c %U "$TRASH/root/tmp")" = root
'
fi

test_done
