#!/bin/bash
# The node buildpack builds as Heroku's does: devDependencies installed
# for "npm run build" (or heroku-postbuild instead, with heroku-prebuild
# and heroku-cleanup around), then pruned; engines.node is reported and
# checked against the host's node; npm's update and funding notices are
# off when the app runs.  Offline: the only dependency is a local tarball.
. "$(dirname "$0")/test-lib.sh"
. "$TEST_DIR/lib-daemon.sh"
. "$TEST_DIR/lib-pipeline.sh"

if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
	test_skip "node and npm are not installed"
	test_done
fi

# a node app: serves built.txt at / and its environment at /env
make_node_app() {
	new_app_repo "$1" &&
	mkdir -p "$TRASH/tool/bin" &&
	cat >"$TRASH/tool/package.json" <<-\EOF &&
	{"name": "buildtool", "version": "1.0.0",
	 "bin": {"buildtool": "bin/buildtool.js"}}
	EOF
	cat >"$TRASH/tool/bin/buildtool.js" <<-\EOF &&
	#!/usr/bin/env node
	const fs = require("fs");
	fs.writeFileSync("built.txt", "built by " + process.argv[2] + "\n");
	EOF
	chmod +x "$TRASH/tool/bin/buildtool.js" &&
	(cd "$TRASH/tool" && npm pack --silent >/dev/null) &&
	cp "$TRASH/tool/buildtool-1.0.0.tgz" "$1/" &&
	cat >"$1/server.js" <<-\EOF
	const fs = require("fs");
	require("http").createServer((req, res) => {
	  if (req.url === "/env")
	    return res.end(Object.keys(process.env).sort()
	      .map((k) => k + "=" + process.env[k] + "\n").join(""));
	  res.end(fs.existsSync("built.txt") ? fs.readFileSync("built.txt") : "not built\n");
	}).listen(process.env.PORT, "127.0.0.1");
	EOF
}

test_expect_success 'engine and push key' '
	start_berth &&
	setup_push_key
'

test_expect_success 'npm run build with devDependencies, then pruned; engines.node reported' '
	make_node_app built &&
	cat >built/package.json <<-\EOF &&
	{"name": "built", "version": "1.0.0", "engines": {"node": ">=12"},
	 "scripts": {"build": "buildtool build", "start": "node server.js"},
	 "devDependencies": {"buildtool": "file:buildtool-1.0.0.tgz"}}
	EOF
	commit_all built one &&
	push built >out &&
	test_grep "remote: -----> Using node v[0-9.]+ \(package.json engines.node: .>=12.\)" out &&
	test_grep_not "does not satisfy" out &&
	test_grep "remote: -----> Installing dependencies with npm install" out &&
	test_grep "remote: -----> Running build" out &&
	test_grep "remote: -----> Pruning devDependencies" out &&
	test_grep "Release 1 of built is live" out &&
	port=$(app_port built) &&
	get "http://127.0.0.1:$port/" >body &&
	test_grep "^built by build$" body &&
	pid=$(app_pid built) &&
	rel=/proc/$pid/cwd &&	# its /app, whatever the mount namespace
	test -f "$rel/package.json" &&
	test ! -e "$rel/node_modules/buildtool"
'

test_expect_success 'npm notices are off when the app runs' '
	port=$(app_port built) &&
	get "http://127.0.0.1:$port/env" >env &&
	test_grep "^NPM_CONFIG_UPDATE_NOTIFIER=false$" env &&
	test_grep "^NPM_CONFIG_FUND=false$" env &&
	test_grep "^NODE_ENV=production$" env
'

test_expect_success 'heroku-postbuild runs instead of build, between heroku-prebuild and heroku-cleanup' '
	make_node_app hooks &&
	cat >hooks/package.json <<-\EOF &&
	{"name": "hooks", "version": "1.0.0",
	 "scripts": {"heroku-prebuild": "echo prebuild-ran",
	             "build": "buildtool build",
	             "heroku-postbuild": "buildtool heroku-postbuild",
	             "heroku-cleanup": "echo cleanup-ran",
	             "start": "node server.js"},
	 "devDependencies": {"buildtool": "file:buildtool-1.0.0.tgz"}}
	EOF
	commit_all hooks one &&
	push hooks >out &&
	test_grep "remote: -----> Running heroku-prebuild" out &&
	test_grep "remote: -----> Running heroku-postbuild" out &&
	test_grep_not "Running build" out &&
	test_grep "remote: -----> Running heroku-cleanup" out &&
	test_grep "prebuild-ran" out &&
	test_grep "cleanup-ran" out &&
	port=$(app_port hooks) &&
	get "http://127.0.0.1:$port/" >body &&
	test_grep "^built by heroku-postbuild$" body
'

test_expect_success 'an engines.node the host cannot satisfy is said, and the build goes on' '
	cat >hooks/package.json <<-\EOF &&
	{"name": "hooks", "version": "1.0.0", "engines": {"node": "0.10.x"},
	 "scripts": {"start": "node server.js"}}
	EOF
	commit_all hooks two &&
	push hooks >out &&
	test_grep "remote:  !     this host.s node v[0-9.]+ does not satisfy .0.10.x.:" out &&
	test_grep "remote:        No dependencies to install|remote: -----> Installing" out &&
	test_grep "Release 2 of hooks is live" out
'

test_expect_success 'a failing build script fails the push' '
	cat >hooks/package.json <<-\EOF &&
	{"name": "hooks", "version": "1.0.0",
	 "scripts": {"build": "exit 3", "start": "node server.js"}}
	EOF
	commit_all hooks three &&
	test_must_fail push hooks >out &&
	test_grep "step .buildpack. failed: bin/compile exited with status" out
'

test_done
