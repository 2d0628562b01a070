#!/bin/bash
# Pushes with stock git over SSH are built by the built-in buildpacks and
# by a buildpack written to Heroku's API, installed by path.
. "$(dirname "$0")/test-lib.sh"
. "$TEST_DIR/lib-daemon.sh"
. "$TEST_DIR/lib-pipeline.sh"

test_expect_success 'engine and push key' '
	start_berth_for_pushes
'

test_expect_success 'python app without requirements: default web process, release 1' '
	new_app_repo pyapp &&
	cp "$TOP/tests/apps/web.py" pyapp/app.py &&
	echo v1 >pyapp/VERSION &&
	printf "# no dependencies yet\n\n" >pyapp/requirements.txt &&
	commit_all pyapp one &&
	push pyapp >out &&
	test_grep "remote: -----> Building pyapp \(commit [0-9a-f]{7}\)" out &&
	test_grep "remote: -----> Python app detected" out &&
	test_grep "remote:        No requirements to install" out &&
	test_grep "remote: -----> Packing bundle \([0-9.]+ KB\)" out &&
	test_grep "remote: -----> Release 1 of pyapp is live" out &&
	port=$(app_port pyapp) &&
	get "http://127.0.0.1:$port/" >body &&
	test_grep "^hello v1 release 1" body
'

test_expect_success 'python app with requirements: pip (offline, a local wheel) into .venv' '
	make_test_wheel pyapp &&
	printf "%s\n" --no-index ./hello-1.0-py3-none-any.whl >pyapp/requirements.txt &&
	echo v2 >pyapp/VERSION &&
	commit_all pyapp two &&
	push pyapp >out &&
	test_grep "remote: -----> Installing with pip install -r requirements.txt" out &&
	test_grep "Successfully installed hello-1.0" out &&
	test_grep "Release 2 of pyapp is live" out &&
	port=$(app_port pyapp) &&
	get "http://127.0.0.1:$port/" >body &&
	test_grep "^hello v2 release 2" body
'

test_expect_success 'the app runs with its .profile.d: .venv first on PATH' '
	port=$(app_port pyapp) &&
	get "http://127.0.0.1:$port/env" >env &&
	test_grep "^PATH=[^:]*/\.venv/bin:" env &&
	test_grep "^VIRTUAL_ENV=.*/\.venv$" env
'

test_expect_success 'the build leaves nothing in tmp/' '
	ls -A "$BERTH_ROOT/tmp" >left &&
	test_grep_not "pyapp" left
'

test_expect_success 'releases record the commit and the buildpack' '
	berth releases pyapp >rel &&
	test_grep "$(git -C pyapp rev-parse --short=7 HEAD)" rel &&
	test_grep "python" rel
'

test_expect_success 'static site: served by nginx, no process' '
	new_app_repo site &&
	echo "<h1>static hello</h1>" >site/index.html &&
	commit_all site one &&
	push site >out &&
	test_grep "remote: -----> Static app detected" out &&
	test_grep "Release 1 of site is live" out &&
	through_nginx site /index.html >body &&
	test_grep "static hello" body &&
	berth ps site >ps &&
	test_grep_not "^web" ps
'

test_expect_success 'a static site never serves dotfiles' '
	echo "SECRET=hunter2" >site/.env &&
	echo "token" >site/.git-credentials &&
	mkdir -p site/sub/.hidden &&
	echo "inner" >site/sub/.hidden/x.txt &&
	echo "shown" >site/sub/page.txt &&
	mkdir site/.well-known &&
	echo "Contact: a@example.com" >site/.well-known/security.txt &&
	commit_all site dotfiles &&
	push site >out &&
	test_grep "Release [0-9]+ of site is live" out &&
	through_nginx site /sub/page.txt >body &&
	test_grep "shown" body &&
	through_nginx site /.well-known/security.txt >body &&
	test_grep "Contact:" body &&
	for p in /.env /.git-credentials /sub/.hidden/x.txt /.git/config /.berth/ /.profile.d/; do
		code=$(curl -s -o body -w "%{http_code}" --max-time 10 \
			-H "Host: site.localhost" "http://127.0.0.1:$HTTP_PORT$p") &&
		test "$code" = 404 &&
		test_grep_not "hunter2|token|inner" body || return 1
	done
'

if command -v node >/dev/null && command -v npm >/dev/null; then
test_expect_success 'node app without dependencies builds offline' '
	new_app_repo nodeapp &&
	cat >nodeapp/package.json <<-\EOF_PKG &&
	{"name": "nodeapp", "version": "1.0.0", "scripts": {"start": "node server.js"}}
	EOF_PKG
	cat >nodeapp/server.js <<-\EOF_JS &&
	require("http").createServer((req, res) => res.end("node hello\n"))
	  .listen(process.env.PORT, "127.0.0.1");
	EOF_JS
	commit_all nodeapp one &&
	push nodeapp >out &&
	test_grep "remote: -----> Node.js app detected" out &&
	test_grep "remote:        No dependencies to install" out &&
	test_grep "Release 1 of nodeapp is live" out &&
	port=$(app_port nodeapp) &&
	get "http://127.0.0.1:$port/" >body &&
	test_grep "^node hello" body
'
else
	test_skip "node and npm are not installed"
fi

test_expect_success 'make app: make runs, then the Procfile' '
	new_app_repo makeapp &&
	add_web_app makeapp unused &&
	printf "all:\n\techo made-by-make >VERSION\n" >makeapp/Makefile &&
	echo "web: python3 web.py" >makeapp/Procfile &&
	commit_all makeapp one &&
	push makeapp >out &&
	test_grep "remote: -----> Make app detected" out &&
	port=$(app_port makeapp) &&
	get "http://127.0.0.1:$port/" >body &&
	test_grep "^hello made-by-make release 1" body
'

test_expect_success 'a test buildpack set by path through BUILDPACK' '
	make_test_buildpack "$TRASH/testpack" &&
	new_web_app tbp v1 &&
	commit_all tbp one &&
	push tbp >out &&
	test_grep "remote: -----> Procfile app detected" out &&
	# (a config change restarts the app as a new release)
	berth config tbp set "BUILDPACK=$TRASH/testpack" GREETING=howdy &&
	git -C tbp commit -q --allow-empty -m two &&
	push tbp >out &&
	test_grep "remote: -----> Test Pack app detected" out &&
	test_grep "remote: -----> Test Pack build 1( |$)" out &&
	test_grep "remote:        compiling for tbp( |$)" out &&
	test_grep "Release [0-9]+ of tbp is live" out &&
	port=$(app_port tbp) &&
	get "http://127.0.0.1:$port/" >body &&
	test_grep "^hello howdy-build1 release [0-9]" body
'

test_expect_success 'the buildpack cache survives between builds' '
	git -C tbp commit -q --allow-empty -m three &&
	push tbp >out &&
	test_grep "remote: -----> Test Pack build 2( |$)" out &&
	test "$(cat "$BERTH_ROOT/cache/tbp/builds")" = 2
'

test_expect_success 'push option clean-cache empties the cache first' '
	git -C tbp commit -q --allow-empty -m four &&
	push tbp -o clean-cache >out &&
	test_grep "remote: -----> Clearing the build cache" out &&
	test_grep "remote: -----> Test Pack build 1( |$)" out
'

test_expect_success 'buildpack: in app.yaml forces a built-in by name' '
	new_app_repo forced &&
	add_web_app forced v1 &&
	: >forced/requirements.txt &&
	echo "web: python3 web.py" >forced/Procfile &&
	echo "buildpack: procfile" >forced/app.yaml &&
	commit_all forced one &&
	push forced >out &&
	test_grep "remote: -----> Procfile app detected" out &&
	test_grep_not "Python app detected" out &&
	test_grep "Release 1 of forced is live" out
'

test_expect_success 'an app no buildpack accepts is refused and not deployed' '
	new_app_repo nothing &&
	echo "just words" >nothing/README &&
	commit_all nothing one &&
	test_must_fail push nothing >out &&
	test_grep "remote:  !     step .buildpack. failed: no buildpack applies to this app" out &&
	test_grep "\[remote rejected\]" out &&
	berth apps >apps &&
	test_grep "^nothing +new +- +-$" apps
'

test_expect_success 'an unknown forced buildpack is refused' '
	echo "buildpack: cobol" >forced/app.yaml &&
	commit_all forced two &&
	test_must_fail push forced >out &&
	test_grep "no buildpack named .cobol." out &&
	port=$(app_port forced) &&
	get "http://127.0.0.1:$port/" >body &&
	test_grep "release 1" body
'

test_done
