#!/bin/bash
# The dashboard in a real browser (headless Chromium): the login link
# opens the apps page, whose rendered DOM shows the app's status and
# release; the app page follows a live log line the test makes the app
# print, and its rollback button rolls back.  Screenshots are kept in
# build/test-artifacts/t5002/.
. "$(dirname "$0")/test-lib.sh"
. "$TEST_DIR/lib-daemon.sh"

ART="$TOP/build/test-artifacts/t5002"
chromium_run() {
	timeout 120 chromium --headless --no-sandbox --disable-gpu \
		--disable-dev-shm-usage --no-first-run \
		--user-data-dir="$TRASH/profile-$1" --window-size="${SIZE:-1100,700}" \
		"${@:2}" 2>/dev/null
}
link() { berth dashboard | grep "/login?token="; }

test_expect_success 'setup: an app with two releases' '
	command -v chromium >/dev/null &&
	start_berth &&
	make_web_bundle v1.tar.gz v1 &&
	make_web_bundle v2.tar.gz v2 &&
	berth deploy shop "$PWD/v1.tar.gz" >out &&
	berth deploy shop "$PWD/v2.tar.gz" >out &&
	retry_until 20 apps_line_matches "^shop +running +v2 " &&
	rm -rf "$ART" && mkdir -p "$ART"
'

test_expect_success 'the login link opens the apps page: status and release in the DOM' '
	l=$(link) &&
	case "$l" in http://berth.localhost:$HTTP_PORT/login\?token=*) ;; *) false ;; esac &&
	chromium_run dump --dump-dom "$l" >dom.html &&
	cp dom.html "$ART/apps.html" &&
	grep -q "<h1>Apps</h1>" dom.html &&
	grep -qE "<tr data-app=\"shop\"><td class=\"name\"><a href=\"/apps/shop\">shop</a></td><td class=\"status\"><span class=\"badge s-running\">running</span></td><td class=\"release\">v2</td>" dom.html
'

test_expect_success 'the same link a second time shows the login page, not the apps' '
	chromium_run dump2 --dump-dom "$l" >dom2.html &&
	grep -q "login link is unknown, used or expired" dom2.html &&
	! grep -q "data-app=\"shop\"" dom2.html
'

test_expect_success 'the app page: status, live release, processes, releases' '
	chromium_run app --dump-dom "$(link)&next=/apps/shop" >app.html &&
	cp app.html "$ART/app.html" &&
	grep -q "<span id=\"status\" class=\"badge s-running\">running</span>" app.html &&
	grep -q "Live release <b id=\"release\">v2</b>" app.html &&
	grep -qE "<tr><td>web.1</td><td>[0-9]+</td>" app.html &&
	grep -q "id=\"rollback-v1\"" app.html &&
	! grep -q "id=\"rollback-v2\"" app.html
'

test_expect_success 'screenshots of the apps page and the app page' '
	chromium_run shot1 --screenshot="$ART/apps.png" "$(link)" &&
	chromium_run shot2 --screenshot="$ART/app-static.png" "$(link)&next=/apps/shop" &&
	SIZE=390,844 chromium_run shot3 --screenshot="$ART/app-phone.png" "$(link)&next=/apps/shop" &&
	for f in "$ART/apps.png" "$ART/app-static.png" "$ART/app-phone.png"; do
		test "$(head -c 8 "$f" | od -An -tx1 | tr -d " ")" = 89504e470d0a1a0a || return 1
	done
'

test_expect_success 'in one browser session: a live log line, pause, and rollback' '
	mkdir -p b &&
	node "$TEST_DIR/t5002-dashboard-browser.js" "$(link)" shop "$HTTP_PORT" "$PWD/b" >browser.out 2>&1 ||
		{ cat browser.out; false; } &&
	cat browser.out &&
	grep -q "^ok: followed a live log line /marker-browser-" browser.out &&
	grep -q "^ok: pause held the line back (true), resume showed it" browser.out &&
	grep -q "^ok: rollback pressed (rollback-v1): release v2 -> v3" browser.out &&
	grep -q "^flash: -----> Rolling back shop to release 1" browser.out &&
	cp b/app.png "$ART/app.png" && cp b/rollback.png "$ART/rollback.png" &&
	retry_until 20 apps_line_matches "^shop +running +v3 " &&
	through_nginx shop / | grep -q "^hello v1 "
'

test_done
