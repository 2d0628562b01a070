#!/bin/bash
# The dashboard in a real browser (headless Chromium): the login link
# opens the apps page, whose rendered DOM shows the app's status and
# release; the app page follows a live log line the test makes the app
# print, filters it by source and text, pauses it, shows each deploy's
# kept output without a reload (a running one live), fits a phone's
# width, and its rollback button rolls back.  Screenshots are kept in
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
# requests_at_least N: the router counted N requests of shop this hour
requests_at_least() {
	test "$(berth stats shop | awk '$1 == "requests" { for (i = 2; i <= NF; i++) s += $i } END { print s + 0 }')" -ge "$1"
}

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

test_expect_success 'the plots and the numbers: inline SVG drawn in the page' '
	for i in 1 2 3 4 5 6; do
		through_nginx shop /plot-$i >/dev/null || return 1
	done &&
	retry_until 20 requests_at_least 6 &&
	chromium_run plots --dump-dom "$(link)&next=/apps/shop" >plots.html &&
	cp plots.html "$ART/plots.html" &&
	grep -qE "<svg id=\"plot-requests\" class=\"plot\" [^>]*data-points=\"[1-9]" plots.html &&
	grep -qE "<svg id=\"plot-errors\" " plots.html &&
	grep -qE "<svg id=\"plot-p95\" [^>]*data-points=\"[1-9]" plots.html &&
	grep -qE "<svg id=\"plot-mem-web\.1\" [^>]*data-points=\"[1-9]" plots.html &&
	grep -qE "<td class=\"mem\" data-proc=\"web.1\">[0-9.]+ [KM]iB</td>" plots.html &&
	grep -qE "<td class=\"host\">shop\.localhost</td>" plots.html &&
	chromium_run plots2 --dump-dom "$(link)" >apps2.html &&
	grep -qE "<td class=\"rps\">[0-9.]+</td><td class=\"errors\">[0-9.]+%</td><td class=\"mem\">[0-9.]+ [KM]iB</td>" apps2.html
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
	grep -q "^ok: filters: router only true, app only true, web only true, search only true, all back true" browser.out &&
	grep -q "^ok: phone width 390: fits true; Actions, Last hour, Processes, Releases, Hosts and database, Config, Logs, Deploys" browser.out &&
	grep -q "^ok: the newest deploy.s output shown: Deploy #2" browser.out &&
	grep -q "^ok: release v1.s output without a reload: still here: Deploy #1: -----> Deploying release 1 of shop" browser.out &&
	grep -q "^ok: a deploy in progress showed its lines live: -----> Restarting release" browser.out &&
	grep -qE "^ok: its row: #3v2(running|succeeded)restart" browser.out &&
	grep -q "^ok: rollback pressed (rollback-v1): release v2 -> v3" browser.out &&
	grep -q "^flash: -----> Rolling back shop to release 1" browser.out &&
	cp b/app.png "$ART/app.png" && cp b/rollback.png "$ART/rollback.png" &&
	cp b/phone.png "$ART/phone.png" && cp b/deploys.png "$ART/deploys.png" &&
	retry_until 20 apps_line_matches "^shop +running +v3 " &&
	through_nginx shop / | grep -q "^hello v1 "
'

test_done
