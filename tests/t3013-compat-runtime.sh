#!/bin/bash
# What Heroku, Dokku and Piku apps expect at run time, pushed with stock
# git: only web starts on the first deploy (other Procfile types at 0
# until scaled or given a formation; a one-shot type never fails a
# deploy); a worker-only app runs its worker; app.json's predeploy and
# postdeploy run in order with their output streamed and fail the deploy
# when they fail; healthchecks.web's content and initialDelay are the
# readiness check; cron entries (app.json's and Piku's cron: type) run on
# their schedule as cron.N, in logs and ps, never twice at once.
. "$(dirname "$0")/test-lib.sh"
. "$TEST_DIR/lib-ssh.sh"
. "$TEST_DIR/lib-pipeline.sh"

test_expect_success 'engine and push key' '
	start_berth &&
	setup_push_key
'

test_expect_success 'the engine prints its host key fingerprints at start' '
	for k in ed25519 ecdsa; do
		fp=$(ssh-keygen -lf "$BERTH_ROOT/host/ssh_host_${k}_key" | cut -d" " -f2) &&
		grep -F "$fp" "$TRASH/berth.log" >fpline &&
		test_grep "host key [a-z0-9-]+ SHA256:" fpline || return 1
	done
'

test_expect_success 'Heroku sample Procfile: only web starts, a one-shot type never fails the deploy' '
	new_app_repo heroku &&
	add_web_app heroku v1 &&
	cp "$TOP/tests/apps/worker.py" heroku/ &&
	cat >heroku/Procfile <<-\EOF &&
	# Heroku sample conventions
	web: python3 web.py          # the web server
	worker: python3 worker.py    # background jobs
	migrate: echo migrated       # a one-shot task: exits at once
	release: echo release-ran >"$HOME/release-mark"
	EOF
	commit_all heroku one &&
	push heroku >out &&
	test_grep "remote: -----> Running release command: " out &&
	test_grep "remote: -----> worker: scale 0, not started \(berth scale heroku worker=1 starts it\)" out &&
	test_grep "remote: -----> migrate: scale 0, not started" out &&
	test_grep "Release 1 of heroku is live" out &&
	url=$(berth url heroku) &&
	test_grep "^http://heroku\.[a-z.]+(:[0-9]+)?/$" - <<<"$url" &&
	grep "^remote: " out | tail -n 1 >last &&
	test_grep "^remote:        $url *$" last &&
	berth ps heroku >ps &&
	test_grep "^web\.1 +[0-9]+ +[0-9]+ +up" ps &&
	test_grep_not "^worker" ps &&
	test_grep_not "^migrate" ps
'

test_expect_success 'scale starts a type that was at 0, and it stays scaled on the next push' '
	berth scale heroku worker=1 >out &&
	berth ps heroku >ps &&
	test_grep "^worker\.1 +[0-9]+ +- +up" ps &&
	echo v2 >heroku/VERSION &&
	commit_all heroku two &&
	push heroku >out &&
	test_grep "Release 2 of heroku is live" out &&
	berth ps heroku >ps &&
	test_grep "^worker\.1 +[0-9]+ +- +up" ps &&
	test_grep_not "^migrate" ps
'

# env_has APP KEY=VALUE: the app's web.1 has it in its environment
env_has() {
	local port
	port=$(app_port "$1") && [ -n "$port" ] &&
	curl -sf --max-time 5 "http://127.0.0.1:$port/env" | grep -qxF "$2"
}

test_expect_success 'config:set --no-restart (Dokku'\''s order) saves, the next restart applies' '
	berth releases heroku >before &&
	berth config:set --no-restart heroku QUIET=1 >out &&
	test_grep "Config of heroku saved; it applies at the next deploy or restart" out &&
	berth config heroku get QUIET >v &&
	test "$(cat v)" = 1 &&
	berth releases heroku >after &&
	test_cmp before after &&
	! env_has heroku QUIET=1 &&
	berth restart heroku >/dev/null &&
	retry_until 20 env_has heroku QUIET=1
'

test_expect_success 'config set --encoded takes base64 values; a bad one changes nothing' '
	val=$(printf "a b=c;\$HOME" | base64) &&
	berth config heroku set --encoded "ODD=$val" >out &&
	retry_until 30 env_has heroku "ODD=a b=c;\$HOME" &&
	test_must_fail berth config heroku set --encoded "BAD=@@@" 2>err &&
	test_grep "the value of .BAD. is not base64 of a text" err &&
	nl=$(printf "one\ntwo" | base64) &&
	test_must_fail berth config:set --encoded heroku "NL=$nl" 2>err &&
	test_grep "multi-line values are not supported yet" err &&
	test_must_fail berth config heroku get BAD &&
	test_must_fail berth config heroku get NL
'

test_expect_success 'config:set --no-restart and --encoded over ssh, in Dokku'"'"'s order' '
	ssh_berth push-key config:set --no-restart heroku VIA=ssh >out &&
	test_grep "Config of heroku saved; it applies at the next deploy or restart" out &&
	! env_has heroku VIA=ssh &&
	val=$(printf "x y" | base64) &&
	ssh_berth push-key config:set --encoded heroku "ENC=$val" >out &&
	retry_until 30 env_has heroku "ENC=x y" &&
	env_has heroku VIA=ssh &&
	ssh_berth push-key config:get heroku ENC >v &&
	test "$(cat v)" = "x y"
'

test_expect_success 'a worker-only app runs its worker' '
	new_app_repo onlyworker &&
	cp "$TOP/tests/apps/worker.py" onlyworker/ &&
	echo "worker: python3 worker.py" >onlyworker/Procfile &&
	commit_all onlyworker one &&
	push onlyworker >out &&
	test_grep "Release 1 of onlyworker is live" out &&
	berth ps onlyworker >ps &&
	test_grep "^worker\.1 +[0-9]+ +- +up" ps
'

test_expect_success 'app.json scripts: predeploy, release, postdeploy in order, streamed and logged' '
	new_app_repo dokku &&
	add_web_app dokku v1 &&
	printf "%s\n" "web: python3 web.py" "release: echo release-ran" >dokku/Procfile &&
	cat >dokku/app.json <<-\EOF &&
	{"scripts": {"dokku": {
	   "predeploy": "echo predeploy-ran in $PWD; test -f web.py",
	   "postdeploy": "echo postdeploy-ran as $BERTH_PROCESS"}}}
	EOF
	commit_all dokku one &&
	push dokku >out &&
	grep -e "^remote:        [a-z]*-ran" -e "Starting web.1" -e "is live" out |
		sed "s/^remote: *//; s/-----> //; s/ on port.*//; s/ in \/.*//; s/ as .*//; s/ (.*//; s/ *$//" >order &&
	printf "%s\n" predeploy-ran release-ran "Starting web.1" postdeploy-ran \
		"Release 1 of dokku is live" >expect &&
	test_cmp expect order &&
	test_grep "remote: -----> Running predeploy command: echo predeploy-ran" out &&
	test_grep "remote:        predeploy-ran in /" out &&
	test_grep "remote:        postdeploy-ran as postdeploy" out &&
	berth logs dokku >logs &&
	test_grep " predeploy predeploy-ran" logs &&
	test_grep " postdeploy postdeploy-ran" logs
'

test_expect_success 'a failing predeploy or postdeploy fails the deploy; the release goes on' '
	port=$(app_port dokku) &&
	get "http://127.0.0.1:$port/" >before &&
	printf "{\"scripts\": {\"dokku\": {\"predeploy\": \"echo no-migrations; exit 3\"}}}\n" >dokku/app.json &&
	echo v2 >dokku/VERSION &&
	commit_all dokku badpre &&
	test_must_fail push dokku >out &&
	test_grep "remote:        no-migrations" out &&
	test_grep "predeploy command exited with status 3" out &&
	test_grep_not "Starting web" out &&
	printf "{\"scripts\": {\"dokku\": {\"postdeploy\": \"exit 4\"}}}\n" >dokku/app.json &&
	commit_all dokku badpost &&
	test_must_fail push dokku >out &&
	test_grep "postdeploy command exited with status 4" out &&
	test_grep_not "is live" out &&
	port=$(app_port dokku) &&
	get "http://127.0.0.1:$port/" >after &&
	test_cmp before after &&
	berth releases dokku >rel &&
	test_grep "failed" rel
'

test_expect_success 'healthchecks.web content: an answer without it fails the deploy' '
	port=$(app_port dokku) &&
	get "http://127.0.0.1:$port/" >before &&
	cat >dokku/app.json <<-\EOF &&
	{"healthchecks": {"web": [{"type": "startup", "path": "/health",
	   "content": "not-in-the-body", "attempts": 3, "timeout": 3, "wait": 1}]}}
	EOF
	commit_all dokku badcontent &&
	test_must_fail push dokku >out &&
	test_grep "not ready after [0-9]+ ms: the answer does not contain .not-in-the-body." out &&
	# attempts: 3 is three tries (a try before the app listens counts),
	# not as many as the time allows
	test "$(grep -c "request GET /health" out)" -le 3 &&
	get "http://127.0.0.1:$port/" >after &&
	test_cmp before after
'

test_expect_success 'healthchecks.web content and initialDelay: the right answer deploys' '
	cat >dokku/app.json <<-\EOF &&
	{"healthchecks": {"web": [{"type": "startup", "path": "/",
	   "content": "hello v2", "initialDelay": 1, "attempts": 5}]}}
	EOF
	commit_all dokku goodcontent &&
	push dokku >out &&
	test_grep "Release [0-9]+ of dokku is live" out &&
	test_grep "remote: -----> Healthy after ([0-9]{4,}) ms" out &&
	port=$(app_port dokku) &&
	get "http://127.0.0.1:$port/" >body &&
	test_grep "^hello v2 " body
'

# cron_ran APP: both entries have run once (their lines in the log)
cron_ran() {
	berth logs "$1" -n 200 >cronlog &&
	grep -q " cron\.1 piku-cron-ran" cronlog &&
	grep -q " cron\.2 json-cron-ran" cronlog
}

test_expect_success 'cron entries run on their schedule, as cron.N, in logs and ps' '
	new_app_repo piku &&
	add_web_app piku v1 &&
	cat >piku/Procfile <<-\EOF &&
	web: python3 web.py
	cron: * * * * * echo piku-cron-ran as $DYNO
	EOF
	cat >piku/app.json <<-\EOF &&
	{"cron": [{"command": "echo json-cron-ran; sleep 100", "schedule": "* * * * *"}]}
	EOF
	commit_all piku one &&
	push piku >out &&
	test_grep "Release 1 of piku is live" out &&
	{ "$BERTH" --root "$BERTH_ROOT" logs piku -n 0 -f -p cron.1 >follow 2>&1 & } &&
	echo $! >follow.pid &&
	retry_until 150 cron_ran piku &&
	test_grep " cron\.1 piku-cron-ran as cron\.1" cronlog &&
	test_grep " berth cron\.1: running .echo piku-cron-ran" cronlog &&
	berth ps piku >ps &&
	test_grep "^cron\.2 +[0-9]+ +- +up" ps
'

test_expect_success 'logs -p PROC, --source and a filtered follow' '
	retry_until 30 grep -q " cron\.1 piku-cron-ran" follow &&
	kill "$(cat follow.pid)" &&
	test_grep_not "^20[0-9T:-]+Z [^c]" follow &&
	berth logs piku -p cron.2 >l &&
	test_grep " cron\.2 json-cron-ran" l &&
	test_grep_not " cron\.1 | web\.1 | berth " l &&
	berth logs piku --source cron >l &&
	test_grep " cron\.1 piku-cron-ran" l &&
	test_grep " cron\.2 json-cron-ran" l &&
	test_grep_not " web\.1 | berth " l &&
	berth logs piku web >l &&
	test_grep_not " cron\.[0-9] | berth " l &&
	berth logs dokku --source release >l &&
	test_grep " predeploy predeploy-ran" l &&
	test_grep " postdeploy postdeploy-ran" l &&
	test_grep " release release-ran" l &&
	test_grep_not " web\.1 " l &&
	berth logs piku --source router >l &&
	test_grep_not " web\.1 | cron\.[0-9] | berth " l &&
	test_must_fail berth logs piku -p "../x" 2>err &&
	test_grep "invalid process" err
'

test_expect_success 'logs -p PROC and --source router|cron|run|release over ssh' '
	ssh_berth push-key logs piku -p cron.2 >l &&
	test_grep " cron\.2 json-cron-ran" l &&
	test_grep_not " cron\.1 | web\.1 | berth " l &&
	ssh_berth push-key logs piku --source cron >l &&
	test_grep " cron\.1 piku-cron-ran" l &&
	test_grep_not " web\.1 | berth " l &&
	ssh_berth push-key logs dokku --source release >l &&
	test_grep " release release-ran" l &&
	test_grep_not " web\.1 " l &&
	berth run:detached piku echo ran-detached >/dev/null &&
	retry_until 30 eval "ssh_berth push-key logs piku --source run | grep -q \" run\.[0-9]* ran-detached\"" &&
	ssh_berth push-key logs piku --source run >l &&
	test_grep_not " web\.1 | cron\.[0-9] " l &&
	ssh_berth push-key logs piku --source router >l &&
	test_grep_not " web\.1 | cron\.[0-9] | berth " l
'

cron_skipped() {
	berth logs "$1" -n 200 >cronlog &&
	grep -q "cron\.2 is still running: this run of .\* \* \* \* \*. is skipped" cronlog
}

test_expect_success 'a run still going when the next is due is not started twice' '
	retry_until 150 cron_skipped piku &&
	test "$(grep -c " cron\.2 json-cron-ran" cronlog)" = 1 &&
	berth ps piku >ps &&
	test "$(grep -c "^cron\.2 " ps)" = 1
'

test_expect_success 'a new release stops the running cron job; a finished run leaves ps' '
	echo v2 >piku/VERSION &&
	commit_all piku two &&
	push piku >out &&
	test_grep "Release 2 of piku is live" out &&
	berth ps piku >ps &&
	test_grep_not "^cron\.2 " ps
'

test_done
