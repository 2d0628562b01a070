#!/bin/bash
# A static folder beside web processes (Keter's static-files next to a
# webapp; app.yaml's static: {root, hosts}), pushed with git: the
# folder's hosts are served from it by nginx, the app's other hosts go to
# its web processes, through the router's table (no nginx reload); a new
# release and a rollback swap both; dotfiles are never served; a static
# host belongs to its app.
. "$(dirname "$0")/test-lib.sh"
. "$TEST_DIR/lib-daemon.sh"
. "$TEST_DIR/lib-pipeline.sh"

ssh_deploy() { $GIT_SSH_COMMAND -p "$SSH_PORT" git@127.0.0.1 "$@"; }
# host_get HOST [PATH]: the body, then the status, nginx answers for HOST
host_get() {
	curl -s --max-time 10 -w "\n%{http_code}\n" -H "Host: $1" \
		"http://127.0.0.1:$HTTP_PORT${2:-/}"
}
# both_at VERSION: the folder and the web processes both answer VERSION
both_at() {
	host_get static.mix.test | grep -q "^files $1\$" &&
	host_get www.mix.test | grep -q "^hello $1 " &&
	host_get mix.localhost | grep -q "^hello $1 "
}
# set_version VERSION: the web app and the folder say VERSION
set_version() {
	echo "$1" >mix/VERSION &&
	echo "files $1" >mix/public/index.html
}

test_expect_success 'setup: an app with web processes and a static folder on its own host' '
	start_berth_for_pushes &&
	new_app_repo mix &&
	add_web_app mix m1 &&
	mkdir -p mix/public/.well-known mix/public/img &&
	printf "%s\n" "processes:" \
		"  web: python3 web.py" \
		"hosts: [www.mix.test]" \
		"static:" \
		"  root: public" \
		"  hosts: [static.mix.test]" >mix/app.yaml &&
	set_version m1 &&
	echo "SECRET=1" >mix/public/.env &&
	echo "ref: refs/heads/main" >mix/public/.git-HEAD &&
	echo "token" >mix/public/.well-known/acme-check &&
	echo "png" >mix/public/img/logo.png &&
	commit_all mix one &&
	workers=$(nginx_workers) &&
	push mix >out &&
	test_grep "Release 1 of mix is live" out
'

test_expect_success 'the static host gets the folder, the others the web processes, no nginx reload' '
	both_at m1 &&
	host_get static.mix.test /img/logo.png >out &&
	test "$(head -n 1 out)" = png &&
	test "$(tail -n 1 out)" = 200 &&
	host_get static.mix.test /web.py >out &&
	test "$(tail -n 1 out)" = 404 &&
	host_get www.mix.test /env >out &&
	test_grep "^PORT=" out &&
	berth domains mix >out &&
	test_grep "^static\.mix\.test +app manifest, static folder$" out &&
	test_grep "^www\.mix\.test +app manifest$" out &&
	test "$(nginx_workers)" = "$workers"
'

test_expect_success 'dotfiles of the folder are never served; .well-known is' '
	for p in /.env /.git-HEAD /img/../.env /.berth/; do
		host_get static.mix.test "$p" >out &&
		test "$(tail -n 1 out)" = 404 &&
		test_grep_not SECRET out &&
		test_grep_not refs/heads out || return 1
	done &&
	host_get static.mix.test /.well-known/acme-check | grep -q "^token$"
'

test_expect_success 'a new release swaps the folder and the web processes together' '
	set_version m2 &&
	commit_all mix two &&
	push mix >out &&
	test_grep "Release 2 of mix is live" out &&
	both_at m2
'

test_expect_success 'a rollback swaps both back' '
	ssh_deploy rollback mix >out 2>&1 &&
	both_at m1
'

test_expect_success 'an engine restart brings both back' '
	stop_berth &&
	start_berth &&
	retry_until 30 both_at m1
'

test_expect_success 'a static host belongs to its app: another app claiming it is refused' '
	new_app_repo thief &&
	add_web_app thief t1 &&
	printf "processes: {web: python3 web.py}\nhosts: [static.mix.test]\n" >thief/app.yaml &&
	commit_all thief one &&
	test_must_fail push thief >out 2>&1 &&
	test_grep "host .static\.mix\.test. belongs to app .mix." out &&
	both_at m1
'

test_expect_success 'a host both the web processes and the folder claim is refused at push' '
	printf "%s\n" "processes: {web: python3 web.py}" \
		"hosts: [www.mix.test]" \
		"static: {root: public, hosts: [www.mix.test]}" >mix/app.yaml &&
	commit_all mix both &&
	test_must_fail push mix >out 2>&1 &&
	test_grep "app.yaml:3:.*host .www\.mix\.test. is the web processes. already" out &&
	both_at m1
'

test_expect_success 'a Keter bundle pushed with git: webapp and static-files, each its hosts' '
	new_app_repo kpush &&
	add_web_app kpush k1 &&
	mkdir -p kpush/config kpush/bin kpush/static &&
	printf "#!/bin/sh\nexec python3 web.py\n" >kpush/bin/run &&
	chmod +x kpush/bin/run &&
	echo "files k1" >kpush/static/index.html &&
	echo "SECRET=k" >kpush/static/.env &&
	printf "%s\n" "stanzas:" \
		"  - type: webapp" \
		"    exec: ../bin/run" \
		"    hosts: [www.kpush.test]" \
		"  - type: static-files" \
		"    root: ../static" \
		"    hosts: [static.kpush.test]" >kpush/config/keter.yaml &&
	commit_all kpush one &&
	push kpush >out &&
	test_grep "Release 1 of kpush is live" out &&
	host_get static.kpush.test | grep -q "^files k1$" &&
	host_get www.kpush.test | grep -q "^hello k1 " &&
	host_get static.kpush.test /.env >out &&
	test "$(tail -n 1 out)" = 404 &&
	test_grep_not SECRET out
'

test_expect_success 'a static site without index.html is valid: ready once nginx serves it' '
	new_app_repo bare &&
	mkdir -p bare/files &&
	echo "body { margin: 0 }" >bare/files/style.css &&
	echo "static: files" >bare/app.yaml &&
	commit_all bare one &&
	push bare >out &&
	test_grep "Release 1 of bare is live" out &&
	host_get bare.localhost /style.css | grep -q "margin: 0" &&
	host_get bare.localhost / >out &&
	code=$(tail -n 1 out) &&
	test "$code" -ge 400 && test "$code" -lt 500 &&
	test_grep_not "no app for this host" out
'

test_done
