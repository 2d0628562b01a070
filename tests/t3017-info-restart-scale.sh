#!/bin/bash
# apps:info (one app at a glance), ps:restart APP PROC (one type or one
# process, the others untouched) and scale before the first deploy (kept,
# and the first push starts with it), over ssh and locally, with apps
# pushed by stock git.
. "$(dirname "$0")/test-lib.sh"
. "$TEST_DIR/lib-ssh.sh"
. "$TEST_DIR/lib-pipeline.sh"

answers() {
	test "$(curl -s -o /dev/null -w "%{http_code}" --max-time 10 \
		-H "Host: $1" "http://127.0.0.1:$HTTP_PORT/")" = "$2"
}

test_expect_success 'scale before the first deploy: kept, and the first push starts with it' '
	start_berth &&
	setup_push_key &&
	berth create shop >/dev/null &&
	ssh_berth push-key ps:scale shop worker=2 clock=0 >out &&
	test_grep "worker=2: kept for the first deploy of shop" out &&
	test_must_fail berth scale shop "bad type=1" 2>err &&
	test_grep "invalid process type" err &&
	test_must_fail berth scale shop worker=-1 2>err &&
	new_app_repo shop &&
	add_web_app shop v1 &&
	cp "$TOP/tests/apps/worker.py" shop/ &&
	printf "%s\n" "web: python3 web.py" "worker: python3 worker.py" \
		"clock: python3 worker.py" >shop/Procfile &&
	echo "{\"formation\": {\"clock\": {\"quantity\": 1}}}" >shop/app.json &&
	commit_all shop first &&
	push shop >out &&
	test_grep "Release 1 of shop is live" out &&
	berth ps shop >ps &&
	test_grep "^worker\.1 .* up " ps &&
	test_grep "^worker\.2 .* up " ps &&
	test_grep_not "^clock" ps
'

test_expect_success 'ps:restart APP TYPE restarts only that type' '
	web=$(app_pid shop web.1) &&
	w1=$(app_pid shop worker.1) &&
	w2=$(app_pid shop worker.2) &&
	ssh_berth push-key ps:restart shop worker >out &&
	test_grep "Restarted worker" out &&
	test "$(app_pid shop web.1)" = "$web" &&
	n1=$(app_pid shop worker.1) && n2=$(app_pid shop worker.2) &&
	is_pid "$n1" && is_pid "$n2" &&
	test "$n1" != "$w1" && test "$n2" != "$w2" &&
	berth releases shop >rel &&
	test $(grep -c "^ *v\?[0-9]" rel) -le 2
'

test_expect_success 'ps:restart APP PROCESS restarts that one process' '
	web=$(app_pid shop web.1) &&
	w1=$(app_pid shop worker.1) &&
	w2=$(app_pid shop worker.2) &&
	berth restart shop worker.2 >out &&
	test "$(app_pid shop worker.1)" = "$w1" &&
	test "$(app_pid shop web.1)" = "$web" &&
	n2=$(app_pid shop worker.2) &&
	is_pid "$n2" && test "$n2" != "$w2"
'

test_expect_success 'ps:restart of every web process: the zero-downtime restart' '
	web=$(app_pid shop web.1) &&
	berth restart shop web >out &&
	test_grep "restarting the app with no downtime" out &&
	test "$(app_pid shop web.1)" != "$web" &&
	answers shop.localhost 200
'

test_expect_success 'ps:restart of what does not exist: a clear error, nothing restarted' '
	w1=$(app_pid shop worker.1) &&
	test_must_fail ssh_berth push-key ps:restart shop nosuch 2>err &&
	test_grep "has no process .nosuch." err &&
	test_must_fail berth restart shop worker.9 2>err &&
	test_grep "has no process .worker\.9." err &&
	test_must_fail berth restart shop "a;b" 2>err &&
	test_grep "invalid process" err &&
	test "$(app_pid shop worker.1)" = "$w1"
'

test_expect_success 'apps:info: URL, hosts, release, buildpack, processes, database, disk' '
	berth domains:add shop www.shop.test >/dev/null &&
	ssh_berth push-key apps:info shop >info &&
	test_grep "^=====> shop$" info &&
	test_grep "^URL: +http://shop\.localhost:$HTTP_PORT/$" info &&
	test_grep "^Hosts: +shop\.localhost www\.shop\.test$" info &&
	test_grep "^Status: +running$" info &&
	test_grep "^Types: +web worker clock \(scale set: worker=2 clock=0\)$" info &&
	test_grep "^Release: +v1, commit [0-9a-f]{12}, by tester" info &&
	test_grep "^Buildpack: " info &&
	test_grep "^Processes: +web\.1 \(pid [0-9]+\), worker\.1 \(pid [0-9]+\), worker\.2" info &&
	test_grep "^Database: +none$" info &&
	test_grep "^Disk: +repository [0-9.]+ [KMG]?i?B, releases .*in all" info &&
	berth apps:report shop >info2 &&
	test_grep "^URL: " info2 &&
	test_must_fail berth apps:info nosuch 2>err &&
	test_grep "app .nosuch. does not exist" err
'

test_expect_success 'ps:stop and ps:start over ssh and locally; ps:restart APP locally' '
	ssh_berth push-key ps:stop shop >out &&
	retry_until 30 apps_line_matches "^shop +stopped" &&
	test_must_fail answers shop.localhost 200 &&
	berth ps:start shop >out &&
	retry_until 30 answers shop.localhost 200 &&
	berth ps:stop shop >out &&
	retry_until 30 apps_line_matches "^shop +stopped" &&
	ssh_berth push-key ps:start shop >out &&
	retry_until 30 answers shop.localhost 200 &&
	web=$(app_pid shop web.1) &&
	berth ps:restart shop >out &&
	test "$(app_pid shop web.1)" != "$web" &&
	answers shop.localhost 200
'

test_done
