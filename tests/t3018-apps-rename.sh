#!/bin/bash
# apps:rename OLD NEW (and Dokku's spelling) over ssh and locally, with an
# app pushed by stock git: repository, releases, logs and hosts follow,
# the processes keep running (no restart), pushes go to the new name, an
# engine restart brings it back as NEW; bad renames change nothing.
. "$(dirname "$0")/test-lib.sh"
. "$TEST_DIR/lib-ssh.sh"
. "$TEST_DIR/lib-pipeline.sh"

status_of() {
	curl -s -o /dev/null -w "%{http_code}" --max-time 10 \
		-H "Host: $1" "http://127.0.0.1:$HTTP_PORT/"
}
answers() { test "$(status_of "$1")" = "$2"; }

test_expect_success 'engine, key, two pushed apps' '
	start_berth &&
	setup_push_key &&
	for app in old other; do
		new_app_repo $app &&
		add_web_app $app "$app-v1" &&
		echo "web: python3 web.py" >$app/Procfile &&
		commit_all $app first &&
		push $app >out &&
		test_grep "Release 1 of $app is live" out || return 1
	done &&
	berth domains:add old www.old.test >/dev/null &&
	retry_until 30 answers old.localhost 200
'

test_expect_success 'apps:rename over ssh: folders, route and hosts follow; the processes stay' '
	web=$(app_pid old) &&
	berth releases old >rel-before &&
	ssh_berth push-key apps:rename old fresh >out &&
	test_grep "Renamed old to fresh: http://fresh\.localhost:$HTTP_PORT/" out &&
	test "$(app_pid fresh)" = "$web" &&
	test "$(status_of fresh.localhost)" = 200 &&
	test "$(status_of www.old.test)" = 200 &&
	test "$(status_of old.localhost)" = 404 &&
	berth releases fresh >rel-after &&
	test_cmp rel-before rel-after &&
	berth logs fresh -n 1000 >log &&
	test_grep "renamed from old" log &&
	test_grep "domains: added www\.old\.test" log &&
	berth apps >apps &&
	test_grep "^fresh " apps &&
	test_grep_not "^old " apps &&
	test ! -e "$BERTH_ROOT/apps/old" &&
	test -d "$BERTH_ROOT/apps/fresh/repo.git" &&
	test_must_fail berth ps old 2>err &&
	test_grep "app .old. does not exist" err
'

# As root each app runs as its own user: the user follows the name (same
# number, so the running processes and their files stay the app's), the
# owner follows it too, and a new app of the old name gets a user of its own.
if [ "$(id -u)" = 0 ]; then
test_expect_success 'the app user and owner follow the name; the old name is free' '
	uid=$(stat -c %u /proc/$(app_pid fresh)) &&
	echo "$uid" >renamed.uid &&
	getent passwd "$uid" | cut -d: -f1,3,5 >renamed.pw &&
	test "$(getent passwd berth-old | cut -d: -f3,5)" = "$uid:berth app fresh" &&
	ssh_berth push-key sharing fresh >out &&
	test_grep "^owner tester$" out &&
	test ! -e "$BERTH_ROOT/access/old" &&
	new_app_repo again-old old &&
	add_web_app again-old "new-old-v1" &&
	echo "web: python3 web.py" >again-old/Procfile &&
	commit_all again-old first &&
	push again-old >out &&
	test_grep "Release 1 of old is live" out &&
	test "$(stat -c %u /proc/$(app_pid old))" != "$uid" &&
	test "$(getent passwd | grep -c ":berth app old:")" = 1 &&
	test "$(getent passwd | grep ":berth app old:" | cut -d: -f3)" != "$uid" &&
	berth rm old --force >/dev/null
'
fi

test_expect_success 'a push to the new name deploys it' '
	git -C old remote set-url deploy "ssh://git@127.0.0.1:$SSH_PORT/fresh" &&
	echo fresh-v2 >old/VERSION &&
	commit_all old second &&
	push old >out &&
	test_grep "Release 2 of fresh is live" out &&
	curl -s --max-time 10 -H "Host: fresh.localhost" "http://127.0.0.1:$HTTP_PORT/" | grep -q "hello fresh-v2"
'

test_expect_success 'bad renames: a clear error, nothing changes' '
	test_must_fail ssh_berth push-key apps:rename fresh other 2>err &&
	test_grep "app .other. already exists" err &&
	test_must_fail berth apps:rename fresh "Bad Name" 2>err &&
	test_grep "invalid app name" err &&
	test_must_fail berth apps:rename nosuch x 2>err &&
	test_grep "app .nosuch. does not exist" err &&
	test_must_fail berth apps:rename fresh 2>err &&
	test_grep "usage: berth apps:rename NAME NEW-NAME" err &&
	mkdir -p "$BERTH_ROOT/logs/blocked" &&
	test_must_fail berth apps:rename fresh blocked 2>err &&
	test_grep "in the way of the new name" err &&
	test "$(status_of fresh.localhost)" = 200 &&
	test "$(status_of other.localhost)" = 200
'

test_expect_success 'an engine restart brings the app back under its new name' '
	stop_berth &&
	start_berth &&
	retry_until 30 answers fresh.localhost 200 &&
	answers www.old.test 200 &&
	berth rename fresh again >out &&
	test_grep "Renamed fresh to again" out &&
	answers again.localhost 200
'

test_expect_success 'rm of a renamed app removes its user' '
	berth rm again --force >/dev/null &&
	berth rm other --force >/dev/null &&
	if [ "$(id -u)" = 0 ]; then
		# (users are the host'"'"'s: another test may have an app "again",
		# and another state folder may have given the number out again)
		test "$(getent passwd "$(cat renamed.uid)" | cut -d: -f1,3,5)" != "$(cat renamed.pw)"
	fi
'

test_done
