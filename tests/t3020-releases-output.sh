#!/bin/bash
# Each deploy's output is kept (ROOT/apps/NAME/deploys/): every line the
# pusher saw, failed builds and failed deploys included, bounded, pruned
# with old releases, root's only; "releases:output APP [N]" prints it
# (locally and over ssh, with the access rules of "releases") and follows
# a deploy still running.
. "$(dirname "$0")/test-lib.sh"
. "$TEST_DIR/lib-daemon.sh"
. "$TEST_DIR/lib-ssh.sh"
. "$TEST_DIR/lib-pipeline.sh"

# remote_lines OUT: the lines a push showed from the server, "remote: "
# and git's trailing spaces taken off
remote_lines() {
	sed -n "s/^remote: //p" "$1" | sed "s/ *$//"
}
# same_lines A B: B holds A's lines, in order (trailing spaces aside)
same_lines() {
	sed "s/ *$//" "$2" >"$2.trimmed" &&
	test_cmp "$1" "$2.trimmed"
}

test_expect_success 'engine and push key' '
	BERTH_YAML="keep_releases: 2" &&
	start_berth &&
	setup_push_key
'

test_expect_success 'a push: its output kept, line for line what the pusher saw' '
	new_app_repo outapp &&
	add_web_app outapp v1 &&
	printf "web: python3 web.py\nrelease: echo release phase says hi\n" >outapp/Procfile &&
	commit_all outapp one &&
	push outapp >out &&
	test_grep "Release 1 of outapp is live" out &&
	remote_lines out >seen &&
	test_grep "Building outapp" seen &&
	berth releases:output outapp >kept &&
	same_lines seen kept &&
	berth releases:output outapp 1 >kept1 &&
	test_cmp kept kept1 &&
	test_grep "^       release phase says hi$" kept &&
	test_grep "^-----> Deploying release 1 of outapp" kept &&
	test_grep "Release 1 of outapp is live" kept &&
	berth releases:output outapp --list >list &&
	test_grep "^1 *v1 *succeeded *push " list
'

test_expect_success 'the record is root'"'"'s: 0600 in a 0700 folder' '
	d="$BERTH_ROOT/apps/outapp/deploys" &&
	test "$(stat -c %a "$d")" = 700 &&
	test "$(stat -c %a "$d/1")" = 600 &&
	test "$(stat -c %a "$d/1.meta")" = 600 &&
	test "$(stat -c %u "$d/1")" = "$(id -u)"
'

test_expect_success 'as root, the app'"'"'s own user can neither read nor rewrite it' '
	if [ "$(id -u)" != 0 ]; then
		say "not root: no per-app user" &&
		return 0
	fi &&
	user=$(stat -c %U /proc/$(app_pid outapp)) &&
	test "$user" != root &&
	test_must_fail setpriv --reuid="$user" --regid="$user" --clear-groups \
		cat "$BERTH_ROOT/apps/outapp/deploys/1" &&
	test_must_fail setpriv --reuid="$user" --regid="$user" --clear-groups \
		sh -c "echo forged >>$BERTH_ROOT/apps/outapp/deploys/1" &&
	test_grep_not forged "$BERTH_ROOT/apps/outapp/deploys/1"
'

test_expect_success 'a failed build leaves no release; its output is the newest' '
	echo "web: python3 web.py" >outapp/Procfile &&
	mkdir -p outapp/.berth/hooks &&
	printf "#!/bin/sh\necho lint says no >&2\nexit 3\n" >outapp/.berth/hooks/pre-build &&
	chmod +x outapp/.berth/hooks/pre-build &&
	commit_all outapp broken &&
	test_must_fail push outapp >out 2>/dev/null &&
	remote_lines out >seen &&
	berth releases:output outapp >kept &&
	same_lines seen kept &&
	test_grep "push rejected" kept &&
	berth releases:output outapp --list >list &&
	test_grep "^2 *- *failed *push " list &&
	berth releases outapp >rels &&
	test_grep_not "^v2" rels
'

test_expect_success 'a failed deploy: its release record links to its output' '
	git -C outapp rm -q -r .berth &&
	printf "web: python3 web.py\nrelease: echo migration failed; exit 2\n" >outapp/Procfile &&
	commit_all outapp failing-release &&
	test_must_fail push outapp >out 2>/dev/null &&
	berth releases outapp >rels &&
	test_grep "^v2 *failed" rels &&
	berth releases:output outapp 2 >kept &&
	test_grep "migration failed" kept &&
	test_grep "push rejected" kept &&
	berth releases:output outapp --list >list &&
	test_grep "^3 *v2 *failed *push " list
'

test_expect_success 'rollback and config changes are deploys too' '
	berth config outapp set GREETING=hi >out &&
	berth releases:output outapp >kept &&
	test_grep "Deploying release 3 of outapp" kept &&
	berth releases:output outapp --list >list &&
	test_grep "^4 *v3 *succeeded *config " list &&
	berth rollback outapp 1 >out &&
	berth releases:output outapp >kept &&
	same_lines out kept &&
	test_grep "^5 *v4 *succeeded *rollback " <(berth releases:output outapp --list)
'

test_expect_success 'bad input: one clear line, nothing changed' '
	test_must_fail berth releases:output outapp 99 2>err &&
	test_grep "has no release 99" err &&
	test_must_fail berth releases:output outapp x 2>err &&
	test_grep "usage: releases:output NAME \[N\]" err &&
	test_must_fail berth releases:output nosuchapp 2>err &&
	test_grep "does not exist" err &&
	berth create emptyapp >/dev/null &&
	test_must_fail berth releases:output emptyapp 2>err &&
	test_grep "no deploy output kept yet" err
'

test_expect_success 'old outputs go with old releases (keep_releases: 2)' '
	echo "web: python3 web.py" >outapp/Procfile &&
	for v in a b c; do
		echo "$v" >outapp/VERSION &&
		commit_all outapp "$v" &&
		push outapp >out || return 1
	done &&
	berth releases outapp >rels &&
	test_grep_not "^v1 " rels &&
	test_must_fail berth releases:output outapp 1 2>err &&
	test_grep "has no release 1" err &&
	ls "$BERTH_ROOT/apps/outapp/deploys" >files &&
	test "$(grep -c "\.meta$" files)" -le 4 &&
	berth releases:output outapp --list >list &&
	test_grep "^8 " list
'

test_expect_success 'over ssh: the key that reaches the app reads it, another key does not' '
	make_key bob &&
	berth keys add --name bob "$TRASH/bob.pub" >/dev/null &&
	ssh_berth push-key releases:output outapp >kept &&
	test_grep "Release .* of outapp is live" kept &&
	test_must_fail ssh_berth bob releases:output outapp >out 2>err &&
	test_grep "no access to app" err &&
	! test -s out
'

test_expect_success 'a deploy in progress: its output comes as it runs, and the record agrees' '
	gate=/run/berth-t3020-$$ &&
	rm -f "$gate" &&
	test_atexit "rm -f $gate" &&
	test_when_finished "touch $gate" &&
	printf "web: python3 web.py\nrelease: echo waiting for the gate; while ! test -e $gate; do sleep 0.1; done; echo gate open\n" >outapp/Procfile &&
	commit_all outapp gated &&
	{ push outapp >pushout 2>&1 & ppid=$!; } &&
	retry_until 60 eval "berth releases:output outapp --no-follow | grep -q \"waiting for the gate\"" &&
	{ berth releases:output outapp >live 2>&1 & pid=$!; } &&
	retry_until 30 grep -q "waiting for the gate" live &&
	test_grep_not "^       gate open" live &&
	touch "$gate" &&
	wait $pid &&
	test_grep "^       gate open" live &&
	test_grep "is live" live &&
	wait $ppid &&
	test_grep "is live" pushout &&
	berth releases:output outapp >kept &&
	test_cmp kept live
'

test_expect_success 'an engine killed mid-deploy: the record says interrupted, and why' '
	gate=/run/berth-t3020-crash-$$ &&
	rm -f "$gate" &&
	test_atexit "rm -f $gate" &&
	test_when_finished "touch $gate" &&
	printf "web: python3 web.py\nrelease: echo held; while ! test -e $gate; do sleep 0.1; done\n" >outapp/Procfile &&
	commit_all outapp held &&
	{ push outapp >pushout2 2>&1 & ppid=$!; } &&
	retry_until 60 eval "berth releases:output outapp --no-follow | grep -q \"^       held\"" &&
	d=$(berth releases:output outapp --list | sed -n 2p | cut -d" " -f1) &&
	crash_berth &&
	start_berth &&
	berth releases:output outapp --deploy "$d" >kept &&
	test "$(tail -n 1 kept)" = " !     the engine stopped before this deploy ended" &&
	berth releases:output outapp --list >list &&
	test_grep "^$d .* interrupted *push " list &&
	touch "$gate" &&
	{ wait $ppid || true; }
'

test_expect_success 'a huge build output is cut at 1 MiB, and says so; the end is kept' '
	printf "web: python3 web.py\n" >outapp/Procfile &&
	retry_until 60 apps_line_matches "^outapp +running " &&
	mkdir -p outapp/.berth/hooks &&
	printf "#!/bin/sh\nseq 1 200000 | sed s/^/noise-/\necho the-very-end\n" >outapp/.berth/hooks/pre-build &&
	chmod +x outapp/.berth/hooks/pre-build &&
	commit_all outapp loud &&
	push outapp >out &&
	berth releases:output outapp >kept &&
	test "$(wc -c <kept)" -lt 1200000 &&
	test_grep "output truncated: .* lines left out after the first 1024 KiB" kept &&
	test_grep "is live" kept &&
	test_grep "noise-1$" kept
'

test_done
