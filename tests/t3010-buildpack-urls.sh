#!/bin/bash
# Buildpacks by git URL, pushed with stock git: BUILDPACK_URL and app.yaml's
# buildpack: with #ref (a tag, a branch, a commit), over file:// and over
# HTTP (git http-backend); the clone is cached and fetched again, and
# stands in when its source is gone; several buildpacks in order from
# .buildpacks, app.yaml's buildpacks: and app.json, each one's export
# passed to the next, the last one's process types, every config_vars
# under the app's own config; bad URLs and refs leave the release running.
. "$(dirname "$0")/test-lib.sh"
. "$TEST_DIR/lib-daemon.sh"
. "$TEST_DIR/lib-pipeline.sh"
. "$TEST_DIR/lib-buildpacks.sh"

# env_has APP KEY=VALUE: the app's web.1 has it in its environment
env_has() {
	local port
	port=$(app_port "$1") && [ -n "$port" ] &&
	curl -sf --max-time 5 "http://127.0.0.1:$port/env" | grep -qxF "$2"
}

test_expect_success 'engine, push key, two buildpacks in git, an HTTP git server' '
	start_berth &&
	setup_push_key &&
	make_tool_pack "$TRASH/tool" &&
	git -C "$TRASH/tool" tag v1 &&
	make_app_pack "$TRASH/apppack" &&
	publish_pack "$TRASH/tool" tool &&
	publish_pack "$TRASH/apppack" apppack &&
	start_git_http &&
	TOOL_FILE="file://$TRASH/git/tool.git" &&
	TOOL_HTTP="http://127.0.0.1:$GIT_HTTP_PORT/tool.git" &&
	APP_HTTP="http://127.0.0.1:$GIT_HTTP_PORT/apppack.git"
'

test_expect_success 'a buildpack by file:// URL in app.yaml: cloned, detected, built' '
	new_app_repo one &&
	add_web_app one unused &&
	echo "buildpack: $TOOL_FILE" >one/app.yaml &&
	commit_all one one &&
	push one >out &&
	test_grep "remote: -----> Fetching buildpack file://$TRASH/git/tool.git" out &&
	test_grep "remote:        at [0-9a-f]{7}( |$)" out &&
	test_grep "remote: -----> Tool app detected" out &&
	test_grep "remote: -----> Tool v1 installed" out &&
	test_grep "Release 1 of one is live" out &&
	port=$(app_port one) &&
	get "http://127.0.0.1:$port/env" >env &&
	test_grep "^TOOL_GREETING=from-tool$" env &&
	pid=$(app_pid one) &&
	tr "\0" " " <"/proc/$pid/cmdline" >cmd &&
	test_grep "web.py --tool-wins" cmd
'

test_expect_success 'the clone lives in the app'\''s buildpack cache' '
	ls "$BERTH_ROOT/cache/one.buildpacks" >cached &&
	test_grep "^tool-[0-9a-f]{16}\.git$" cached &&
	berth releases one >rel &&
	test_grep "file://$TRASH/git/tool.git" rel
'

test_expect_success 'over HTTP, #ref: a tag, then the branch with a new commit, then a commit id' '
	echo v2 >"$TRASH/tool/VERSION" &&
	git -C "$TRASH/tool" commit -q -am v2 &&
	publish_pack "$TRASH/tool" tool &&
	v1=$(git -C "$TRASH/tool" rev-parse v1) &&
	echo "buildpack: $TOOL_HTTP#v1" >one/app.yaml &&
	commit_all one tag &&
	push one >out &&
	test_grep "remote: -----> Fetching buildpack $TOOL_HTTP#v1" out &&
	test_grep "remote:        at v1 \(${v1:0:7}\)" out &&
	test_grep "remote: -----> Tool v1 installed" out &&
	test_grep "GET /tool.git/info/refs 200" "$TRASH/git-http.log" &&
	test_grep "POST /tool.git/git-upload-pack 200" "$TRASH/git-http.log" &&
	echo "buildpack: $TOOL_HTTP#main" >one/app.yaml &&
	commit_all one branch &&
	push one >out &&
	test_grep "remote: -----> Tool v2 installed" out &&
	echo "buildpack: $TOOL_HTTP#$v1" >one/app.yaml &&
	commit_all one commit &&
	push one >out &&
	test_grep "remote: -----> Tool v1 installed" out &&
	test_grep "Release [0-9]+ of one is live" out
'

test_expect_success 'BUILDPACK_URL (config) wins over app.yaml, and sees the remote HEAD' '
	berth config one set "BUILDPACK_URL=$TOOL_FILE" >/dev/null &&
	git -C one commit -q --allow-empty -m config &&
	push one >out &&
	test_grep "remote: -----> Buildpacks from config BUILDPACK_URL: 1" out &&
	test_grep "remote: -----> Tool v2 installed" out &&
	berth config one unset BUILDPACK_URL >/dev/null
'

test_expect_success 'a later build fetches again; with the source gone the cached copy stands in' '
	echo v3 >"$TRASH/tool/VERSION" &&
	git -C "$TRASH/tool" commit -q -am v3 &&
	publish_pack "$TRASH/tool" tool &&
	echo "buildpack: $TOOL_HTTP#main" >one/app.yaml &&
	commit_all one v3 &&
	push one >out &&
	test_grep "remote: -----> Tool v3 installed" out &&
	stop_git_http &&
	git -C one commit -q --allow-empty -m offline &&
	push one >out &&
	test_grep "remote:  !     cannot fetch it \(.*\): using the copy fetched before, at [0-9a-f]{7}" out &&
	test_grep "remote: -----> Tool v3 installed" out &&
	test_grep "Release [0-9]+ of one is live" out &&
	start_git_http
'

test_expect_success 'several buildpacks from .buildpacks: export passed on, the last one names the processes' '
	new_app_repo multi &&
	add_web_app multi unused &&
	printf "# tools first, the app last\n%s\n\n%s\n" "$TOOL_FILE" "$APP_HTTP" >multi/.buildpacks &&
	commit_all multi one &&
	push multi >out &&
	test_grep "remote: -----> Buildpacks from .buildpacks: 2" out &&
	test_grep "remote: -----> Tool app detected" out &&
	test_grep "remote: -----> App Pack app detected" out &&
	test_grep "remote: -----> App pack with TOOL_HOME=.tool" out &&
	test_grep "Release 1 of multi is live" out &&
	port=$(app_port multi) &&
	get "http://127.0.0.1:$port/" >body &&
	test_grep "^hello hello from tool v3 release 1" body &&
	pid=$(app_pid multi) &&
	tr "\0" " " <"/proc/$pid/cmdline" >cmd &&
	test_grep "web.py" cmd &&
	test_grep_not "tool-wins" cmd
'

test_expect_success 'config_vars of every buildpack, the later one winning, under the app'\''s config' '
	port=$(app_port multi) &&
	get "http://127.0.0.1:$port/env" >env &&
	test_grep "^TOOL_GREETING=from-tool$" env &&
	test_grep "^SHARED=app$" env &&
	test_grep "^APP_DEFAULT=yes: from the app pack$" env &&
	berth config multi set SHARED=mine >/dev/null &&
	retry_until 20 env_has multi SHARED=mine &&
	berth releases multi >rel &&
	test_grep "$TOOL_FILE,$APP_HTTP" rel
'

test_expect_success 'buildpacks: in app.yaml, and in app.json' '
	new_app_repo listed &&
	add_web_app listed unused &&
	printf "buildpacks:\n  - %s\n  - %s\n" "$TOOL_HTTP" "$APP_HTTP" >listed/app.yaml &&
	commit_all listed one &&
	push listed >out &&
	test_grep "remote: -----> Buildpacks from app.yaml: 2" out &&
	test_grep "remote: -----> App pack with TOOL_HOME=.tool" out &&
	test_grep "Release 1 of listed is live" out &&
	new_app_repo fromjson &&
	add_web_app fromjson unused &&
	printf "{\"buildpacks\": [{\"url\": \"%s\"}, {\"url\": \"%s\"}]}\n" "$TOOL_FILE" "$APP_HTTP" >fromjson/app.json &&
	commit_all fromjson one &&
	push fromjson >out &&
	test_grep "remote: -----> app.json: 2 buildpacks" out &&
	test_grep "remote: -----> Buildpacks from app.json: 2" out &&
	test_grep "remote: -----> App pack with TOOL_HOME=.tool" out &&
	test_grep "Release 1 of fromjson is live" out
'

test_expect_success 'a .buildpacks buildpack that does not apply is refused, naming it' '
	new_app_repo noweb &&
	echo "worker: sleep 1000" >noweb/Procfile &&
	printf "%s\n" "$APP_HTTP" >noweb/.buildpacks &&
	commit_all noweb one &&
	test_must_fail push noweb >out &&
	test_grep "remote:  !     step .buildpack. failed: buildpack .$APP_HTTP. does not apply to this app \(its bin/detect said no\)" out
'

test_expect_success 'bad URLs and refs fail the push; the running release goes on' '
	port=$(app_port one) &&
	get "http://127.0.0.1:$port/" >before &&
	echo "buildpack: ftp://example.com/x.git" >one/app.yaml &&
	commit_all one ftp &&
	test_must_fail push one >out &&
	test_grep "remote:  !     app.yaml:1:12: buildpack .ftp://example.com/x.git. has an unsupported URL" out &&
	echo "buildpack: $TOOL_HTTP#nope" >one/app.yaml &&
	commit_all one nope &&
	test_must_fail push one >out &&
	test_grep "cannot fetch .$TOOL_HTTP.: no branch, tag or commit .nope. there" out &&
	echo "buildpack: http://127.0.0.1:$GIT_HTTP_PORT/missing.git" >one/app.yaml &&
	commit_all one missing &&
	test_must_fail push one >out &&
	test_grep "step .buildpack. failed: cannot fetch .http://127.0.0.1:$GIT_HTTP_PORT/missing.git.:" out &&
	echo "buildpack: file://$BERTH_ROOT/apps/multi/repo.git" >one/app.yaml &&
	commit_all one steal &&
	test_must_fail push one >out &&
	test_grep "is inside berth.s state directory" out &&
	printf "node\nhttps://x/y#--upload-pack=evil\n" >one/.buildpacks &&
	git -C one rm -q app.yaml &&
	commit_all one evil &&
	test_must_fail push one >out &&
	test_grep "remote:  !     .buildpacks:2: buildpack .https://x/y#--upload-pack=evil. has an invalid ref" out &&
	get "http://127.0.0.1:$port/" >after &&
	test_cmp before after
'

test_expect_success 'push -o clean-cache drops the clones too' '
	git -C one rm -q .buildpacks &&
	echo "buildpack: $TOOL_FILE" >one/app.yaml &&
	commit_all one clean &&
	push one -o clean-cache >out &&
	test_grep "remote: -----> Clearing the build cache" out &&
	test_grep "remote: -----> Tool v3 installed" out &&
	ls "$BERTH_ROOT/cache/one.buildpacks" >cached &&
	test "$(wc -l <cached)" = 1
'

test_expect_success 'root writes the Procfile and the config_vars file without following the app'\''s links' '
	new_app_repo links &&
	add_web_app links v1 &&
	echo "buildpack: $TOOL_FILE" >links/app.yaml &&
	echo untouched >"$TRASH/victim" &&
	mkdir "$TRASH/victimdir" &&
	ln -s "$TRASH/victim" links/Procfile.new &&
	commit_all links one &&
	push links >out &&
	test_grep "Release 1 of links is live" out &&
	test "$(cat "$TRASH/victim")" = untouched &&
	ln -s "$TRASH/victimdir" links/.berth &&
	commit_all links two &&
	test_must_fail push links >out &&
	test_grep "remote:  !     step .buildpack. failed: .\.berth. is a symbolic link" out &&
	test -z "$(ls -A "$TRASH/victimdir")"
'

test_expect_success 'nothing of the builds is left in tmp/' '
	ls -A "$BERTH_ROOT/tmp" >left &&
	test_grep_not "buildpacks-" left
'

test_done
