#!/bin/bash
# What apps bring from Heroku, Dokku and Piku, pushed with stock git: an
# app.json (what berth takes from it said once, what it ignores said
# once, its env as defaults, its health check path used), a bad app.json
# refused at its line and column; Piku's ENV file and cron: process type,
# a Procfile with inline comments, .env read only when asked, a
# Dockerfile said to be ignored.
. "$(dirname "$0")/test-lib.sh"
. "$TEST_DIR/lib-daemon.sh"
. "$TEST_DIR/lib-pipeline.sh"

# env_has APP KEY=VALUE: the app's web.1 has it in its environment
env_has() {
	local port
	port=$(app_port "$1") && [ -n "$port" ] &&
	curl -sf --max-time 5 "http://127.0.0.1:$port/env" | grep -qxF "$2"
}

test_expect_success 'engine and push key' '
	start_berth &&
	setup_push_key
'

test_expect_success 'a Dokku app.json: what berth takes and what it ignores, each said once' '
	new_app_repo dokku &&
	add_web_app dokku v1 &&
	printf "%s\n" "web: python3 web.py" "worker: python3 worker.py" >dokku/Procfile &&
	cp "$TOP/tests/apps/worker.py" dokku/ &&
	cat >dokku/app.json <<-\EOF &&
	{
	  "name": "dokku sample",
	  "addons": ["dokku-postgres"],
	  "env": {"GREETING": {"description": "a default", "value": "from-app-json"},
	          "OTHER": "json"},
	  "scripts": {"dokku": {"predeploy": "echo predeploy-ran",
	                        "postdeploy": "echo postdeploy-ran"}},
	  "healthchecks": {"web": [{"type": "startup", "name": "ready?",
	                            "path": "/ready", "attempts": 5, "port": 5000}]},
	  "formation": {"web": {"quantity": 1}, "worker": {"quantity": 1}},
	  "cron": [{"command": "echo hello", "schedule": "0 1 * * *"}]
	}
	EOF
	commit_all dokku one &&
	push dokku >out &&
	test_grep "remote: -----> app.json: predeploy, postdeploy, health check /ready, formation web=1 worker=1, 1 cron entry, 2 config defaults( |$)" out &&
	test_grep "remote:  !     app.json: berth ignores addons, healthchecks.web\[0\].port( |$)" out &&
	test "$(grep -c "berth ignores" out)" = 1 &&
	test_grep "remote: -----> Cron .0 1 \* \* \*.: echo hello \(app.json cron\[0\]\)" out &&
	test_grep "remote:        predeploy-ran" out &&
	test_grep "remote:        postdeploy-ran" out &&
	test_grep "Release 1 of dokku is live" out
'

test_expect_success 'app.json env: defaults under the app'\''s config' '
	retry_until 10 env_has dokku GREETING=from-app-json &&
	env_has dokku OTHER=json &&
	berth config dokku set GREETING=mine >/dev/null &&
	retry_until 20 env_has dokku GREETING=mine &&
	env_has dokku OTHER=json
'

test_expect_success 'app.json healthchecks.web path is the readiness check' '
	berth logs dokku >logs &&
	test_grep "request GET /ready" logs
'

test_expect_success 'a bad app.json fails the push at its line and column; the release goes on' '
	port=$(app_port dokku) &&
	get "http://127.0.0.1:$port/" >before &&
	cat >dokku/app.json <<-\EOF &&
	{
	  "formation": {"web": {"quantity": "two"}}
	}
	EOF
	commit_all dokku bad &&
	test_must_fail push dokku >out &&
	test_grep "remote:  !     app.json:2:37: .formation.web.quantity. must be a whole number from 0 to 100" out &&
	test_grep "push rejected: the running release is unchanged" out &&
	printf "{\"cron\": [{\"command\": \"x\", \"schedule\": \"0 25 * * *\"}]}\n" >dokku/app.json &&
	commit_all dokku bad2 &&
	test_must_fail push dokku >out &&
	test_grep "remote:  !     app.json:1:40: .cron\[0\].schedule.: hour .25. is out of range \(0-23\)" out &&
	printf "{\"a\": 1,}\n" >dokku/app.json &&
	commit_all dokku bad3 &&
	test_must_fail push dokku >out &&
	test_grep "remote:  !     app.json:1:9: trailing comma in an object" out &&
	ln -sf /etc/shadow dokku/app.json &&
	commit_all dokku link &&
	test_must_fail push dokku >out &&
	test_grep "remote:  !     .app.json. is a symbolic link" out &&
	test_grep_not "root:" out &&
	get "http://127.0.0.1:$port/" >after &&
	test_cmp before after
'

test_expect_success 'a Heroku app.json: required and generated variables are said' '
	new_app_repo heroku &&
	add_web_app heroku v1 &&
	echo "web: python3 web.py" >heroku/Procfile &&
	cat >heroku/app.json <<-\EOF &&
	{"name": "Heroku sample", "repository": "https://example.com/x",
	 "env": {"SECRET_KEY_BASE": {"generator": "secret"},
	         "API_TOKEN": {"description": "needed", "required": true},
	         "OPTIONAL": {"required": false},
	         "WEB_CONCURRENCY": {"value": "2"}},
	 "scripts": {"postdeploy": "bin/seed"},
	 "buildpacks": [{"url": "heroku/python"}],
	 "stack": "heroku-22"}
	EOF
	: >heroku/requirements.txt &&
	mkdir heroku/bin &&
	printf "#!/bin/sh\necho seeded\n" >heroku/bin/seed &&
	chmod +x heroku/bin/seed &&
	commit_all heroku one &&
	push heroku >out &&
	test_grep "remote: -----> app.json: postdeploy on the first deploy, 1 config default, 1 buildpack" out &&
	test_grep "remote:  !     app.json: berth ignores stack( |$)" out &&
	test_grep "remote:  !     app.json: config var API_TOKEN is required and not set" out &&
	test_grep "remote:  !     app.json: config var SECRET_KEY_BASE wants a generated secret" out &&
	test_grep_not "OPTIONAL" out &&
	test_grep "remote: -----> Python app detected" out &&
	test_grep "remote: -----> Running postdeploy command: bin/seed" out &&
	test_grep "remote:        seeded" out &&
	test_grep "Release 1 of heroku is live" out &&
	retry_until 10 env_has heroku WEB_CONCURRENCY=2
'

test_expect_success 'a Piku app: ENV defaults, a cron: type, inline comments, .env and Dockerfile said' '
	new_app_repo piku &&
	add_web_app piku v1 &&
	cat >piku/Procfile <<-\EOF &&
	# Piku and Heroku sample conventions
	web: python3 web.py   # the web server, with an inline comment
	cron: */5 * * * * python3 -c "print(1)"   # every five minutes
	EOF
	cat >piku/ENV <<-\EOF &&
	# variables are global and can be replaced
	SETTING1=True
	SETTING2=${SETTING1}/Maybe
	PORT=9080
	EOF
	echo "DOTENV_SECRET=from-dotenv" >piku/.env &&
	echo "FROM python:3" >piku/Dockerfile &&
	commit_all piku one &&
	push piku >out &&
	test_grep "remote: -----> ENV: 2 settings, defaults under the app.s config" out &&
	test_grep "remote:  !     ENV: PORT is set by berth: ignored" out &&
	test_grep "remote: -----> .env ignored \(set dotenv: true in app.yaml to read it\)" out &&
	test_grep "remote: -----> berth builds with buildpacks, not Docker: Dockerfile ignored" out &&
	test_grep "remote: -----> Cron .\*/5 \* \* \* \*.: python3 -c \"print\(1\)\" \(Procfile .cron.\)" out &&
	test_grep "Release 1 of piku is live" out &&
	berth ps piku >ps &&
	test_grep "^web\.1 " ps &&
	test_grep_not "^cron" ps
'

test_expect_success 'ENV settings are defaults, PORT stays berth'\''s, .env is not read' '
	retry_until 10 env_has piku SETTING2=True/Maybe &&
	port=$(app_port piku) &&
	env_has piku "PORT=$port" &&
	! env_has piku PORT=9080 &&
	! env_has piku DOTENV_SECRET=from-dotenv
'

test_expect_success 'dotenv: true in app.yaml reads .env, under ENV and app.yaml' '
	printf "dotenv: true\nenv:\n  SETTING1: from-app-yaml\n" >piku/app.yaml &&
	printf "DOTENV_SECRET=from-dotenv\nSETTING2=from-dotenv\n" >piku/.env &&
	commit_all piku dotenv &&
	push piku >out &&
	test_grep "remote: -----> .env: 2 settings, defaults under the app.s config \(dotenv: true\)" out &&
	test_grep "Release [0-9]+ of piku is live" out &&
	retry_until 10 env_has piku DOTENV_SECRET=from-dotenv &&
	env_has piku SETTING1=from-app-yaml &&
	env_has piku SETTING2=True/Maybe
'

test_expect_success 'a cron: type with a bad schedule fails the push, naming it' '
	printf "web: python3 web.py\ncron: */5 * * * python3 x.py\n" >piku/Procfile &&
	commit_all piku badcron &&
	test_must_fail push piku >out &&
	test_grep "remote:  !     Procfile: process type .cron.: day of week .python3. is not a number or a name" out
'

test_expect_success 'a broken ENV fails the push at its line' '
	printf "web: python3 web.py\n" >piku/Procfile &&
	printf "GOOD=1\nthis is not a setting\n" >piku/ENV &&
	commit_all piku badenv &&
	test_must_fail push piku >out &&
	test_grep "remote:  !     ENV:2:1: expected NAME=value" out
'

test_done
