#!/bin/bash
# The git service behind berth's own SSH server, with stock git and
# OpenSSH: push, clone, fetch, refusals, exit statuses.  (t2001 covers the
# protocol in depth through git-serve-stdio.)
. "$(dirname "$0")/test-lib.sh"
. "$TEST_DIR/lib-daemon.sh"
. "$TEST_DIR/lib-pipeline.sh"

export HOME="$TRASH"

test_expect_success 'engine and push key' '
	start_berth &&
	setup_push_key
'

test_expect_success 'first push over ssh creates the app repository' '
	new_app_repo src gitapp &&
	echo one >src/a &&
	commit_all src one &&
	git -C src push -o skip-deploy deploy HEAD:main 2>err &&
	test_grep "remote: -----> Skipping deploy" err &&
	test "$(git --git-dir="$BERTH_ROOT/apps/gitapp/repo.git" rev-parse main)" = \
		"$(git -C src rev-parse HEAD)"
'

test_expect_success 'clone over ssh returns the same history' '
	echo two >src/b &&
	commit_all src two &&
	git -C src tag -a v1 -m v1 &&
	git -C src push -o skip-deploy --follow-tags deploy HEAD:main &&
	git clone -q "ssh://git@127.0.0.1:$SSH_PORT/gitapp" clone &&
	git -C src log --format="%H %s" >expect &&
	git -C clone log --format="%H %s" >actual &&
	test_cmp expect actual &&
	test "$(git -C clone rev-parse v1)" = "$(git -C src rev-parse v1)"
'

test_expect_success 'fetch over ssh after another push' '
	echo three >src/c &&
	commit_all src three &&
	git -C src push -o skip-deploy deploy HEAD:main &&
	git -C clone pull -q --ff-only &&
	test "$(git -C clone rev-parse HEAD)" = "$(git -C src rev-parse HEAD)"
'

test_expect_success 'non-fast-forward refused by the client, --force accepted' '
	git -C src reset -q --hard HEAD~1 &&
	echo other >src/d &&
	commit_all src diverged &&
	test_must_fail git -C src push -o skip-deploy deploy HEAD:main 2>err &&
	test_grep "non-fast-forward" err &&
	git -C src push -o skip-deploy --force deploy HEAD:main 2>err &&
	test_grep "forced update" err
'

test_expect_success 'a ref the server rejects fails the push over ssh' '
	repo="$BERTH_ROOT/apps/gitapp/repo.git" &&
	git --git-dir="$repo" config receive.denyNonFastForwards true &&
	before=$(git --git-dir="$repo" rev-parse main) &&
	test_must_fail git -C src push -o skip-deploy --force deploy HEAD~1:main 2>err &&
	git --git-dir="$repo" config --unset receive.denyNonFastForwards &&
	test_grep "remote rejected.*non-fast-forward" err &&
	test "$(git --git-dir="$repo" rev-parse main)" = "$before"
'

test_expect_success 'a failed deploy fails the push over ssh, the ref stays' '
	before=$(git --git-dir="$BERTH_ROOT/apps/gitapp/repo.git" rev-parse main) &&
	echo four >src/e &&
	commit_all src "no app here" &&
	test_must_fail git -C src push deploy HEAD:main 2>err &&
	test_grep "\[remote rejected\].*-> main \(deploy failed: " err &&
	test "$(git --git-dir="$BERTH_ROOT/apps/gitapp/repo.git" rev-parse main)" = "$before"
'

test_expect_success 'a push to main builds and deploys, and succeeds once live' '
	new_app_repo web webapp &&
	add_web_app web v1 &&
	echo "web: python3 web.py" >web/Procfile &&
	commit_all web one &&
	git -C web push deploy HEAD:main 2>err &&
	test_grep "remote: -----> Release 1 of webapp is live" err &&
	test_grep "\[new branch\] +HEAD -> main" err &&
	get "http://127.0.0.1:$(app_port webapp)/" >body &&
	test_grep "v1" body
'

test_expect_success 'keepalives flow while a build is quiet for a long time' '
	mkdir -p slowpack/bin &&
	printf "#!/bin/sh\necho Slow\n" >slowpack/bin/detect &&
	printf "#!/bin/sh\necho \"-----> sleeping\"\nsleep 7\necho \"-----> awake\"\n" >slowpack/bin/compile &&
	printf "#!/bin/sh\necho \"---\"\n" >slowpack/bin/release &&
	chmod +x slowpack/bin/* &&
	berth config webapp set "BUILDPACK=$TRASH/slowpack" >/dev/null &&
	git -C web commit -q --allow-empty -m two &&
	GIT_TRACE_PACKET="$TRASH/trace" git -C web push deploy HEAD:main 2>err &&
	test_grep "remote: -----> awake" err &&
	test_grep "Release [0-9]+ of webapp is live" err &&
	test_grep "sideband< \\\\1$" "$TRASH/trace"
'

test_expect_success 'a bad repository path is refused over ssh' '
	test_must_fail git clone -q "ssh://git@127.0.0.1:$SSH_PORT/../../etc" bad 2>err &&
	test_grep "not a valid app name" err &&
	test ! -e bad
'

test_expect_success 'a client that stalls mid-push is dropped after git_timeout, over ssh too' '
	repo="$BERTH_ROOT/apps/gitapp/repo.git" &&
	echo "git_timeout: 1s" >>"$BERTH_ROOT/berth.yaml" &&
	test_when_finished "sed -i /^git_timeout/d \"$BERTH_ROOT/berth.yaml\"" &&
	old=$(git --git-dir="$repo" rev-parse main) &&
	echo five >src/f &&
	commit_all src five &&
	new=$(git -C src rev-parse HEAD) &&
	printf "%s\n^%s\n" "$new" "$old" | git -C src pack-objects --revs --stdout -q >p.pack &&
	line="$old $new refs/heads/main" &&
	mkfifo feed || return 1
	{ $GIT_SSH_COMMAND -p "$SSH_PORT" git@127.0.0.1 "git-receive-pack '\''gitapp'\''" \
		<feed >reply 2>stderr; echo $? >rc; } &
	exec 3>feed &&
	{ printf "%04x%s0000" $((${#line} + 4)) "$line" && head -c 30 p.pack; } >&3 &&
	retry_until 30 test -s rc &&
	exec 3>&- &&
	test "$(cat rc)" = 1 &&
	test "$(git --git-dir="$repo" rev-parse main)" = "$old" &&
	grep "timed out waiting" "$TRASH/berth.log"
'

test_expect_success 'the server repository is sound' '
	git --git-dir="$BERTH_ROOT/apps/gitapp/repo.git" fsck --strict 2>&1 &&
	ls "$BERTH_ROOT/apps/gitapp/repo.git/objects" >dirs &&
	test_grep_not incoming dirs
'

test_done
