#!/bin/bash
# The incoming folder: drop a bundle to deploy, replace it to redeploy,
# delete it to remove the app; Keter bundles run as they are.
. "$(dirname "$0")/test-lib.sh"
. "$TEST_DIR/lib-daemon.sh"

new_shared_dir || exit 1	# the gates the apps wait for

app_version() { berth ps "$1" >/dev/null 2>&1 && get "http://127.0.0.1:$(app_port "$1")/" ; }

test_expect_success 'setup' '
	start_berth &&
	make_web_bundle "$TRASH/v1.tar.gz" v1 &&
	make_web_bundle "$TRASH/v2.tar.gz" v2
'

test_expect_success 'a dropped NAME.tar.gz deploys app NAME' '
	cp v1.tar.gz "$BERTH_ROOT/incoming/dropped.tar.gz" &&
	retry_until 20 apps_line_matches "^dropped +running +v1" &&
	app_version dropped | grep -q "hello v1"
'

test_expect_success 'a half-written file is not deployed until it is closed' '
	exec 7>"$BERTH_ROOT/incoming/partial.tar.gz" &&
	head -c 100 v1.tar.gz >&7 &&
	# the watcher takes events in order: once it has seen a later file,
	# it has seen the half-written one too (and must have let it be)
	cp v1.tar.gz "$BERTH_ROOT/incoming/partial-marker.txt" &&
	retry_until 20 grep -q "ignoring .partial-marker.txt." "$TRASH/berth.log" &&
	test_grep_not "incoming: deploying .partial." "$TRASH/berth.log" &&
	test_must_fail test -e "$BERTH_ROOT/apps/partial" &&
	! berth apps | grep -q "^partial " &&
	tail -c +101 v1.tar.gz >&7 &&
	exec 7>&- &&
	retry_until 20 apps_line_matches "^partial +running"
'

test_expect_success 'a replaced bundle redeploys (also when renamed into place)' '
	cp v2.tar.gz "$BERTH_ROOT/incoming/.tmp-upload" &&
	mv "$BERTH_ROOT/incoming/.tmp-upload" "$BERTH_ROOT/incoming/dropped.tar.gz" &&
	retry_until 20 apps_line_matches "^dropped +running +v2" &&
	app_version dropped | grep -q "hello v2"
'

test_expect_success 'a deleted bundle removes the app' '
	rm "$BERTH_ROOT/incoming/dropped.tar.gz" &&
	retry_until 20 test ! -e "$BERTH_ROOT/apps/dropped" &&
	! apps_line_matches "^dropped "
'

test_expect_success 'a Keter bundle with config/keter.yaml runs as it is' '
	mkdir -p keter/config keter/bin &&
	cp "$TOP/tests/apps/web.py" keter/ &&
	echo vk >keter/VERSION &&
	printf "#!/bin/sh\nexec python3 web.py \"\$@\"\n" >keter/bin/run &&
	chmod +x keter/bin/run &&
	printf "exec: ../bin/run\nargs: []\nhost: keter.example.com\n" >keter/config/keter.yaml &&
	tar -C keter -czf kapp.keter . &&
	cp kapp.keter "$BERTH_ROOT/incoming/kapp.keter" &&
	retry_until 20 apps_line_matches "^kapp +running" &&
	app_version kapp | grep -q "hello vk" &&
	retry_until 10 curl -sf -H "Host: keter.example.com" "http://127.0.0.1:$HTTP_PORT/" &&
	curl -sf -H "Host: keter.example.com" "http://127.0.0.1:$HTTP_PORT/" | grep -q "hello vk"
'

test_expect_success 'a broken bundle dropped in incoming changes nothing' '
	echo "not a tarball" >"$BERTH_ROOT/incoming/kapp.keter" &&
	retry_until 10 grep -q "deploy failed" "$BERTH_ROOT/logs/kapp/app.log" &&
	app_version kapp | grep -q "hello vk" &&
	berth apps >apps &&
	test_grep "^kapp +running .*\(deploy failed: .*\)" apps &&
	test_grep "incoming: deploy of .kapp. failed: " "$TRASH/berth.log"
'

test_expect_success 'a new app whose bundle fails shows as failed, with the reason' '
	echo "not a tarball" >"$BERTH_ROOT/incoming/broken.tar.gz" &&
	retry_until 10 apps_line_matches "^broken +failed " &&
	berth apps >apps &&
	test_grep "^broken +failed +- +-  \(deploy failed: .+\)$" apps &&
	test_grep "incoming: deploy of .broken. failed: " "$TRASH/berth.log" &&
	berth logs broken >log &&
	test_grep "deploy failed" log &&
	cp v1.tar.gz "$BERTH_ROOT/incoming/broken.tar.gz" &&
	retry_until 20 apps_line_matches "^broken +running +v2 +web.1$"
'

test_expect_success 'an invalid app name is what the message says' '
	cp v1.tar.gz "$BERTH_ROOT/incoming/foo_1.keter" &&
	cp v1.tar.gz "$BERTH_ROOT/incoming/notes.txt" &&
	retry_until 10 grep -q "foo_1.keter" "$TRASH/berth.log" &&
	test_grep "incoming: ignoring .foo_1.keter.: invalid app name .foo_1." "$TRASH/berth.log" &&
	test_grep_not "ignoring .foo_1.keter. \(want" "$TRASH/berth.log" &&
	retry_until 10 grep -q "ignoring .notes.txt. (want NAME.tar.gz or NAME.keter)" "$TRASH/berth.log" &&
	! apps_line_matches "^foo"
'

# switched_twice APP: a second release of APP took the traffic
switched_twice() {
	test "$(grep -c "Switched traffic" "$BERTH_ROOT/logs/$1/app.log")" -ge 2
}

# host_get HOST [PATH]: the status and body nginx answers for HOST
host_get() {
	curl -s --max-time 10 -w "\n%{http_code}\n" -H "Host: $1" \
		"http://127.0.0.1:$HTTP_PORT${2:-/}"
}

# make_kmix DIR VERSION: a Keter bundle with a webapp and static-files
make_kmix() {
	rm -rf "$1" &&
	mkdir -p "$1/config" "$1/bin" "$1/static/css" &&
	cp "$TOP/tests/apps/web.py" "$1/" &&
	echo "$2" >"$1/VERSION" &&
	printf "#!/bin/sh\nexec python3 web.py\n" >"$1/bin/run" &&
	chmod +x "$1/bin/run" &&
	echo "files $2" >"$1/static/index.html" &&
	echo "body { color: red }" >"$1/static/css/site.css" &&
	echo "SECRET=$2" >"$1/static/.env" &&
	printf "%s\n" "stanzas:" \
		"  - type: webapp" \
		"    exec: ../bin/run" \
		"    hosts: [www.kmix.example.com]" \
		"  - type: static-files" \
		"    root: ../static" \
		"    directory-listing: false" \
		"    hosts: [static.kmix.example.com]" >"$1/config/keter.yaml" &&
	tar -C "$1" -czf "$1.keter" .
}

test_expect_success 'a Keter webapp beside static-files: the static hosts get the folder, the others the web processes' '
	workers=$(nginx_workers) &&
	make_kmix kmix km1 &&
	cp kmix.keter "$BERTH_ROOT/incoming/kmix.keter" &&
	retry_until 30 apps_line_matches "^kmix +running" &&
	host_get static.kmix.example.com >out &&
	test "$(sed -n 1p out)" = "files km1" &&
	test "$(tail -n 1 out)" = 200 &&
	host_get static.kmix.example.com /css/site.css | grep -q "color: red" &&
	host_get www.kmix.example.com >out &&
	grep -q "^hello km1" out &&
	test "$(tail -n 1 out)" = 200 &&
	host_get kmix.localhost | grep -q "^hello km1" &&
	host_get static.kmix.example.com /nothing-here >out &&
	test "$(tail -n 1 out)" = 404 &&
	test "$(nginx_workers)" = "$workers"
'

test_expect_success 'a dotfile in the static folder is not served; nor is anything from the release beside it' '
	host_get static.kmix.example.com /.env >out &&
	test "$(tail -n 1 out)" = 404 &&
	test_grep_not SECRET out &&
	host_get static.kmix.example.com /../config/keter.yaml >out &&
	test_grep_not stanzas out &&
	host_get static.kmix.example.com /config/keter.yaml >out &&
	test "$(tail -n 1 out)" = 404
'

test_expect_success 'a new Keter bundle swaps the web processes and the folder together' '
	make_kmix kmix km2 &&
	cp kmix.keter "$BERTH_ROOT/incoming/.kmix" &&
	mv "$BERTH_ROOT/incoming/.kmix" "$BERTH_ROOT/incoming/kmix.keter" &&
	retry_until 30 switched_twice kmix &&
	host_get static.kmix.example.com | grep -q "^files km2" &&
	host_get www.kmix.example.com | grep -q "^hello km2" &&
	retry_until 30 apps_line_matches "^kmix +running +v2" &&
	host_get static.kmix.example.com | grep -q "^files km2"
'

# make_gated_bundle OUT GATE: web.py that waits for file GATE before it listens
make_gated_bundle() {
	local dir
	dir=$(mktemp -d "$TRASH/gated.XXXXXX")
	cp "$TOP/tests/apps/web.py" "$dir/"
	echo gated >"$dir/VERSION"
	echo "web: while [ ! -e $2 ]; do sleep 0.1; done; exec python3 web.py" >"$dir/Procfile"
	# the watch keeps the deploy going a while after the switch (the
	# router ends a drain with no request in flight at once)
	printf "drain: 3s\nwatch: 5s\n" >"$dir/app.yaml"
	tar -C "$dir" -czf "$1" . && rm -rf "$dir"
}

test_expect_success 'a bundle deleted while its app deploys removes the app after' '
	make_gated_bundle gated.tar.gz "$SHARED/gate1" &&
	cp gated.tar.gz "$BERTH_ROOT/incoming/slow.tar.gz" &&
	retry_until 20 grep -q "Starting web.1" "$BERTH_ROOT/logs/slow/app.log" &&
	rm "$BERTH_ROOT/incoming/slow.tar.gz" &&
	retry_until 10 grep -q "slow.tar.gz. deleted: app .slow. goes once its deploy ends" "$TRASH/berth.log" &&
	apps_line_matches "^slow +deploying" &&
	touch "$SHARED/gate1" &&
	retry_until 30 test ! -e "$BERTH_ROOT/apps/slow" &&
	! apps_line_matches "^slow "
'

test_expect_success 'and while it drains the old release' '
	touch "$SHARED/gate2" &&
	make_gated_bundle gated2.tar.gz "$SHARED/gate2" &&
	cp gated2.tar.gz "$BERTH_ROOT/incoming/drainy.tar.gz" &&
	retry_until 20 apps_line_matches "^drainy +running +v1" &&
	cp gated2.tar.gz "$BERTH_ROOT/incoming/.drainy" &&
	mv "$BERTH_ROOT/incoming/.drainy" "$BERTH_ROOT/incoming/drainy.tar.gz" &&
	retry_until 20 switched_twice drainy &&
	apps_line_matches "^drainy +deploying" &&
	rm "$BERTH_ROOT/incoming/drainy.tar.gz" &&
	retry_until 30 test ! -e "$BERTH_ROOT/apps/drainy" &&
	! apps_line_matches "^drainy "
'

test_expect_success 'a bundle put back before the deploy ends keeps the app' '
	make_gated_bundle gated3.tar.gz "$SHARED/gate3" &&
	cp gated3.tar.gz "$BERTH_ROOT/incoming/back.tar.gz" &&
	retry_until 20 grep -q "Starting web.1" "$BERTH_ROOT/logs/back/app.log" &&
	rm "$BERTH_ROOT/incoming/back.tar.gz" &&
	retry_until 10 grep -q "back.tar.gz. deleted" "$TRASH/berth.log" &&
	cp v1.tar.gz "$BERTH_ROOT/incoming/back.tar.gz" &&
	retry_until 10 grep -q "back.tar.gz. is back" "$TRASH/berth.log" &&
	touch "$SHARED/gate3" &&
	retry_until 30 apps_line_matches "^back +running +v2" &&
	test -e "$BERTH_ROOT/apps/back"
'

test_done
