#!/bin/bash
# The dashboard's JSON API, with curl through berth's nginx: a one-time
# login link, the session cookie, token expiry, CSRF refusal, what a
# session may do, --revoke, and a key removed since login.
. "$(dirname "$0")/test-lib.sh"
. "$TEST_DIR/lib-daemon.sh"
. "$TEST_DIR/lib-pipeline.sh"

ssh_deploy() { $GIT_SSH_COMMAND -p "$SSH_PORT" git@127.0.0.1 "$@"; }
# dash [CURL-ARGS...] PATH: a request to the dashboard host through nginx
dash() {
	local path="${!#}"
	curl -sS --max-time 20 -H "Host: berth.localhost" \
		"${@:1:$#-1}" "http://127.0.0.1:$HTTP_PORT$path"
}
# login JAR LINK: open a login link, keep the cookie in JAR
login() {
	local path="/login?${2#*/login?}"
	dash -c "$1" -o /dev/null -w '%{http_code}' "$path"
}
# sse_data FILE: the data of a stream's events before its end
sse_data() { awk '/^event: end/ { exit } sub(/^data: /, "")' "$1"; }
csrf_of() { dash -b "$1" /api/session | sed -n 's/.*"csrf":"\([0-9a-f]*\)".*/\1/p'; }

test_expect_success 'setup: an app with two releases' '
	start_berth &&
	setup_push_key &&
	make_web_bundle v1.tar.gz v1 &&
	make_web_bundle v2.tar.gz v2 &&
	berth deploy shop "$PWD/v1.tar.gz" >out &&
	berth deploy shop "$PWD/v2.tar.gz" >out &&
	berth config shop set GREETING=secret-hello >out &&
	retry_until 20 apps_line_matches "^shop +running +v[23] "
'

test_expect_success 'nginx routes the dashboard host to the dashboard' '
	dash -o /dev/null -w "%{http_code}" /api/apps >code &&
	test "$(cat code)" = 401
'

test_expect_success 'every API path wants a session' '
	for p in /api/apps /api/apps/shop /api/session \
		 "/api/apps/shop/config?key=GREETING" /api/apps/shop/logs \
		 /api/apps/shop/logs/stream / /apps/shop \
		 /api/apps/shop/deploys/1/output \
		 /api/apps/shop/deploys/1/output/stream /apps/shop/deploys/1; do
		dash -o body -w "%{http_code}" "$p" >code &&
		test "$(cat code)" = 401 || return 1
	done &&
	dash -o /dev/null -w "%{http_code}" -X POST /api/apps/shop/restart >code &&
	test "$(cat code)" = 401 &&
	dash -b "berth_session=$(printf %064d 0)" -o /dev/null -w "%{http_code}" /api/apps >code &&
	test "$(cat code)" = 401
'

test_expect_success 'ssh deploy dashboard prints a one-time link' '
	ssh_deploy dashboard >out &&
	test_grep "^http://berth.localhost:$HTTP_PORT/login\?token=[0-9a-f]{64}$" out &&
	link=$(grep login out) &&
	login jar "$link" >code &&
	test "$(cat code)" = 303 &&
	grep -q "berth_session" jar &&
	login jar2 "$link" >code &&
	test "$(cat code)" = 403
'

test_expect_success 'the session cookie is HttpOnly, SameSite=Strict, Secure over https' '
	berth dashboard >out &&
	link=$(grep login out) &&
	dash -D hdr -o /dev/null "/login?${link#*/login?}" &&
	grep -iE "^set-cookie: berth_session=[0-9a-f]{64}; Path=/; Max-Age=[0-9]+; HttpOnly; SameSite=Strict" hdr &&
	! grep -i "secure" hdr &&
	grep -iE "^location: /" hdr &&
	berth dashboard >out &&
	link=$(grep login out) &&
	# as nginx passes it on when it serves the host over https
	curl -sS --unix-socket "$BERTH_ROOT/run/dashboard.sock" \
		-H "X-Forwarded-Proto: https" -D hdr -o /dev/null \
		"http://berth.localhost/login?${link#*/login?}" &&
	grep -iE "^set-cookie: .*; Secure" hdr
'

test_expect_success 'an unknown or malformed token gets no session' '
	dash -D hdr -o /dev/null "/login?token=$(printf %064d 1)" &&
	test_grep "^HTTP/1.1 403" hdr &&
	! grep -i "set-cookie" hdr &&
	dash -D hdr -o /dev/null "/login?token=../../etc/passwd" &&
	test_grep "^HTTP/1.1 403" hdr
'

test_expect_success 'an expired login link is refused' '
	berth dashboard >out &&
	link=$(grep login out) &&
	f=$(ls "$BERTH_ROOT/run/dashboard/login/" | head -1) &&
	for f in "$BERTH_ROOT"/run/dashboard/login/*; do
		sed -i "s/^expires=.*/expires=1000/" "$f" || return 1
	done &&
	login jarx "$link" >code &&
	test "$(cat code)" = 403 &&
	test_grep_not berth_session jarx
'

test_expect_success 'apps and one app as JSON' '
	dash -b jar /api/apps >apps.json &&
	rel=$(berth apps | sed -n "s/^shop *running *v\([0-9]*\).*/\1/p") &&
	test_grep "\"name\":\"shop\",\"status\":\"running\",\"release\":$rel" apps.json &&
	test_grep "\"processes\":\{\"web\":1\}" apps.json &&
	test_grep "\"url\":\"http://shop.localhost:$HTTP_PORT/\"" apps.json &&
	dash -b jar /api/apps/shop >app.json &&
	test_grep "\"release\":$rel,\"live\":true" app.json &&
	test_grep "\"release\":1,\"live\":false" app.json &&
	test_grep "\"name\":\"web.1\",\"pid\":[0-9]+,\"port\":[1-9][0-9]*,\"state\":\"up\",\"uptime\":\"[0-9]+s\",\"restarts\":0," app.json &&
	dash -b jar /apps/shop >app.html &&
	test_grep "<tr><td>web.1</td><td>[0-9]+</td><td>[0-9]+</td><td>up</td><td>[0-9]+s</td><td>0</td><td class=\"mem\"" app.html &&
	test_grep "\"config\":\[[^]]*\"GREETING\"" app.json &&
	test_grep_not "secret-hello" app.json &&
	dash -b jar -o /dev/null -w "%{http_code}" /api/apps/nope >code &&
	test "$(cat code)" = 404
'

test_expect_success 'a config value only when asked for' '
	dash -b jar "/api/apps/shop/config?key=GREETING" >v.json &&
	test_grep "\"value\":\"secret-hello\"" v.json &&
	dash -b jar -o /dev/null -w "%{http_code}" "/api/apps/shop/config?key=../x" >code &&
	test "$(cat code)" = 400
'

test_expect_success 'a POST without the CSRF token is refused and changes nothing' '
	pid=$(app_pid shop) &&
	dash -b jar -o body -w "%{http_code}" -X POST /api/apps/shop/restart >code &&
	test "$(cat code)" = 403 &&
	test_grep CSRF body &&
	dash -b jar -o body -w "%{http_code}" -X POST \
		-H "X-CSRF-Token: $(printf %064d 0)" /api/apps/shop/restart >code &&
	test "$(cat code)" = 403 &&
	dash -b jar -o body -w "%{http_code}" -X POST \
		--data "csrf=wrong" /apps/shop/stop >code &&
	test "$(cat code)" = 403 &&
	test "$(app_pid shop)" = "$pid" &&
	berth apps | grep -qE "^shop +running"
'

test_expect_success 'restart and rollback with the CSRF token' '
	t=$(csrf_of jar) &&
	test -n "$t" &&
	pid=$(app_pid shop) &&
	dash -b jar -X POST -H "X-CSRF-Token: $t" /api/apps/shop/restart >r.json &&
	test_grep "\"ok\":true" r.json &&
	test "$(app_pid shop)" != "$pid" &&
	dash -b jar -X POST -H "X-CSRF-Token: $t" --data "release=1" \
		/api/apps/shop/rollback >r.json &&
	test_grep "\"ok\":true" r.json &&
	test_grep "Rolling back shop to release 1" r.json &&
	through_nginx shop / | grep -q "^hello v1 "
'

test_expect_success 'scale, stop and start from a form (CSRF as a field)' '
	t=$(csrf_of jar) &&
	dash -b jar -o /dev/null -w "%{http_code}" --data "csrf=$t&scale=web%3D2" /apps/shop/scale >code &&
	test "$(cat code)" = 303 &&
	retry_until 20 ps_line_matches shop "^web.2 " &&
	dash -b jar -o /dev/null --data "csrf=$t" /apps/shop/stop &&
	retry_until 20 apps_line_matches "^shop +stopped" &&
	dash -b jar -o /dev/null --data "csrf=$t" /apps/shop/start &&
	retry_until 20 apps_line_matches "^shop +running"
'

test_expect_success 'a session runs only the dashboard actions' '
	t=$(csrf_of jar) &&
	for a in rm keys deploy config run "../rm" ; do
		dash -b jar -o /dev/null -w "%{http_code}" -X POST \
			-H "X-CSRF-Token: $t" "/api/apps/shop/$a" >code &&
		test "$(cat code)" = 404 || return 1
	done &&
	dash -b jar -o /dev/null -w "%{http_code}" -X POST -H "X-CSRF-Token: $t" \
		--data "scale=web%3D1%3Brm" /api/apps/shop/scale >code &&
	test "$(cat code)" = 400 &&
	berth apps | grep -qE "^shop "
'

test_expect_success 'a session is tied to the key that asked: a non-admin key' '
	ssh-keygen -q -t ed25519 -N "" -C "dev-bob" -f bob-key &&
	berth keys add bob-key.pub >/dev/null &&
	ssh -F /dev/null -i bob-key -o IdentitiesOnly=yes -o IdentityAgent=none \
		-o BatchMode=yes -o StrictHostKeyChecking=no \
		-o UserKnownHostsFile=/dev/null -o LogLevel=ERROR \
		-p "$SSH_PORT" git@127.0.0.1 dashboard >out &&
	login jarb "$(grep login out)" >code &&
	dash -b jarb /api/session >s.json &&
	test_grep "\"key\":\"dev-bob\",\"admin\":false,\"local\":false" s.json &&
	dash -b jar /api/session >s.json &&
	test_grep "\"key\":\"tester\",\"admin\":true" s.json
'

test_expect_success 'ssh dashboard takes no key name from the user' '
	test_expect_code 100 ssh_deploy dashboard --key someone-else 2>err &&
	test_grep "usage: dashboard \[--revoke\]" err
'

test_expect_success 'the live log streams over Server-Sent Events' '
	dash -b jar -N "/api/apps/shop/logs/stream?n=0" >sse &
	spid=$! &&
	test_when_finished "kill $spid 2>/dev/null; true" &&
	retry_until 20 sh -c "through_nginx() { curl -sS -H Host:\ shop.localhost http://127.0.0.1:$HTTP_PORT/marker-sse-1 >/dev/null; }; through_nginx; grep -qE \"web\\.[0-9] .*marker-sse-1\" sse" &&
	test_grep "^data: [0-9T:Z-]+ web\.[0-9] .*marker-sse-1" sse
'

# sum_of LABEL: the sum of the numbers of "berth stats shop"'s LABEL line
sum_of() {
	berth stats shop | awk -v l="$1" '$1 == l { for (i = 2; i <= NF; i++) if ($i != "-") s += $i } END { print s + 0 }'
}
at_least() { test "$(sum_of "$1")" -ge "$2"; }
stats_line_matches() { berth stats shop | grep -qE "$1"; }
crash_then_check() {
	through_nginx shop /crash >/dev/null 2>&1
	stats_line_matches "^status crash-looping$"
}

test_expect_success 'stats: requests, 5xx and p95 per minute from the router lines' '
	for i in 1 2 3 4 5; do
		through_nginx shop /stats-$i >/dev/null || return 1
	done &&
	# a stopped app: the router answers 503 itself
	berth stop shop >out &&
	test_must_fail through_nginx shop /while-stopped >/dev/null &&
	berth start shop >out &&
	retry_until 20 at_least requests 6 &&
	test "$(sum_of errors)" -ge 1 &&
	berth stats shop >stats &&
	test "$(grep -c "^requests " stats)" = 1 &&
	test "$(awk "/^requests / { print NF }" stats)" = 61 &&
	test "$(awk "/^p95 / { print NF }" stats)" = 61 &&
	grep -qE "^p95 .* [0-9]+( -)*$" stats &&
	test_grep "^host shop\.localhost$" stats &&
	test_grep "^release [0-9]+ pusher - config \+GREETING$" stats
'

test_expect_success 'stats: memory and CPU per process, from /proc' '
	retry_until 20 ps_line_matches shop "^web\.1 +[0-9]+ .* up " &&
	berth stats shop >stats &&
	test_grep "^proc web\.1 [0-9]+ up [0-9]+ [1-9][0-9]+ " stats &&
	grep -qE "^mem web\.1 .* [1-9][0-9]*$" stats &&
	test_must_fail berth stats nope 2>err &&
	test_grep "app .nope. does not exist" err &&
	ssh_deploy stats shop >out &&
	test_grep "^proc web\.1 " out
'

test_expect_success 'the app JSON carries the plots, memory, CPU, hosts and release authors' '
	dash -b jar /api/apps/shop >app.json &&
	test_grep "\"stats\":\{\"minute\":[0-9]+,\"requests\":\[(null,|[0-9]+,)*" app.json &&
	test_grep "\"p95_ms\":\[[^]]*[0-9]" app.json &&
	test_grep "\"errors\":\[[^]]*[1-9]" app.json &&
	test_grep "\"name\":\"web\.1\",\"pid\":[0-9]+,.*\"rss_bytes\":[1-9][0-9]*,\"cpu\":[^,]*,\"memory_kib\":\[[^]]*[1-9]" app.json &&
	test_grep "\"hosts\":\[\"shop\.localhost\"\]" app.json &&
	test_grep "\"pusher\":\"-\",\"config_changes\":\"\+GREETING\"" app.json &&
	test_grep "\"database\":null" app.json &&
	dash -b jar /api/apps >apps.json &&
	test_grep "\"name\":\"shop\",\"status\":\"running\",\"release\":[0-9]+,.*\"last_deploy_ago\":\"[^\"]*\",\"step\":\"\",\"rps\":[0-9.]+,\"error_rate\":[0-9.]+,\"memory_bytes\":[1-9][0-9]*" apps.json
'

test_expect_success 'maintenance on and off from the dashboard, with the CSRF token' '
	t=$(csrf_of jar) &&
	dash -b jar /apps/shop >page.html &&
	test_grep "action=\"/apps/shop/maintenance:on\"" page.html &&
	dash -b jar -o /dev/null -w "%{http_code}" -X POST \
		/api/apps/shop/maintenance:on >code &&
	test_grep "^403$" code &&
	dash -b jar -X POST -H "X-CSRF-Token: $t" /api/apps/shop/maintenance:on >r.json &&
	test_grep "\"ok\":true" r.json &&
	curl -sS -o body -w "%{http_code}" -H "Host: shop.localhost" "http://127.0.0.1:$HTTP_PORT/" >code &&
	test_grep "^503$" code &&
	dash -b jar /api/apps/shop >app.json &&
	test_grep "\"maintenance\":true" app.json &&
	dash -b jar /apps/shop >page.html &&
	test_grep "action=\"/apps/shop/maintenance:off\"" page.html &&
	dash -b jar -o /dev/null --data "csrf=$t" /apps/shop/maintenance:off &&
	curl -sS -o body -w "%{http_code}" -H "Host: shop.localhost" "http://127.0.0.1:$HTTP_PORT/" >code &&
	test_grep "^200$" code &&
	dash -b jar /api/apps/shop >app.json &&
	test_grep "\"maintenance\":false" app.json
'

test_expect_success 'the app page draws the plots as inline SVG' '
	dash -b jar /apps/shop >app.html &&
	test_grep "<svg id=\"plot-requests\" class=\"plot\" [^>]*data-points=\"[1-9]" app.html &&
	test_grep "<svg id=\"plot-errors\" " app.html &&
	test_grep "<svg id=\"plot-p95\" [^>]*data-points=\"[1-9]" app.html &&
	test_grep "<svg id=\"plot-mem-web\.1\" [^>]*data-points=\"[1-9]" app.html &&
	test_grep "<polyline points=\"|<circle " app.html &&
	test_grep_not "https?://[^\"]*\.(js|css)" app.html &&
	dash -b jar / >apps.html &&
	test_grep "<td class=\"rps\">[0-9.]+</td><td class=\"errors\">[0-9.]+%</td><td class=\"mem\">[0-9.]+ [KMG]iB</td>" apps.html
'

test_expect_success 'the output of deploys: kept in the log, and live over SSE while one runs' '
	dash -b jar "/api/apps/shop/logs?n=2000&only=deploy" >d.json &&
	test_grep "\"lines\":\[\"[0-9T:Z-]+ berth " d.json &&
	test_grep_not "\"[0-9T:Z-]+ (web\.[0-9]|router) " d.json &&
	{ dash -b jar -N "/api/apps/shop/logs/stream?n=0&only=deploy" >dsse & } &&
	spid=$! &&
	test_when_finished "kill $spid 2>/dev/null; true" &&
	retry_until 20 ps_line_matches shop "^web\.1 .* up " &&
	through_nginx shop /marker-not-a-deploy-line >/dev/null &&
	berth deploy shop "$PWD/v2.tar.gz" >out &&
	retry_until 20 grep -qE "^data: [0-9T:Z-]+ berth " dsse &&
	test_grep_not "marker-not-a-deploy-line" dsse &&
	test_grep_not "^data: [0-9T:Z-]+ (web\.[0-9]|router) " dsse
'

test_expect_success 'each deploy'"'"'s kept output: listed, linked from its release, read, streamed' '
	dash -b jar /api/apps/shop >app.json &&
	test_grep "\"deploys\":\[\{\"deploy\":[0-9]+,\"release\":[0-9]+,\"status\":\"succeeded\",\"kind\":\"cli\"" app.json &&
	test_grep "\{\"release\":1,\"live\":false,.*\"output\":1\}" app.json &&
	berth releases:output shop 1 >kept &&
	test_grep "Deploying release 1 of shop" kept &&
	dash -b jar /api/apps/shop/deploys/1/output >o.json &&
	test_grep "^\{\"deploy\":1,\"lines\":\[\"-----\\\\u003e Deploying release 1 of shop" o.json &&
	dash -b jar -N /api/apps/shop/deploys/1/output/stream >o.sse &&
	sse_data o.sse >streamed &&
	test_cmp kept streamed &&
	test_grep "^event: end" o.sse &&
	dash -b jar /apps/shop/deploys/1 >o.html &&
	test_grep "<pre id=\"deploy-log\" class=\"log deploy\">-----&gt; Deploying release 1 of shop" o.html &&
	dash -b jar /apps/shop >app.html &&
	test_grep "<a class=\"output\" href=\"/apps/shop/deploys/1\" data-deploy=\"1\" id=\"output-1\">Output</a>" app.html &&
	for p in /api/apps/shop/deploys/99/output /api/apps/shop/deploys/x/output \
		 /api/apps/shop/deploys/1/other /api/apps/shop/deploys/1/output/../../2; do
		dash -b jar -o /dev/null -w "%{http_code}" "$p" >code &&
		test "$(cat code)" = 404 || return 1
	done
'

test_expect_success 'the apps row: URL and every host the app answers' '
	berth domains:add shop www.shop.test >out &&
	dash -b jar /api/apps >apps.json &&
	test_grep "\"name\":\"shop\",.*\"url\":\"http://shop.localhost:$HTTP_PORT/\",\"hosts\":\[\"shop.localhost\",\"www.shop.test\"\]" apps.json &&
	dash -b jar / >apps.html &&
	test_grep "<td class=\"url\"><a href=\"http://shop.localhost:$HTTP_PORT/\">http://shop.localhost:$HTTP_PORT/</a> <span class=\"host\">www.shop.test</span></td>" apps.html &&
	berth domains:clear shop >out
'

test_expect_success 'a first push that fails: the app shows as failed, its output says why' '
	new_app_repo broken &&
	cp "$TOP/tests/apps/web.py" broken/ &&
	echo "web: python3 -c \"import sys; sys.exit(7)\"" >broken/Procfile &&
	commit_all broken one &&
	test_must_fail push broken >out 2>/dev/null &&
	dash -b jar /api/apps >apps.json &&
	test_grep "\"name\":\"broken\",\"status\":\"failed\",\"release\":0,\"processes\":\{\}" apps.json &&
	dash -b jar / >apps.html &&
	test_grep "<tr data-app=\"broken\"><td class=\"name\"><a href=\"/apps/broken\">broken</a></td><td class=\"status\"><span class=\"badge s-failed\">failed</span>" apps.html &&
	dash -b jar /api/apps/broken >b.json &&
	test_grep "^\{\"name\":\"broken\",\"status\":\"failed\"" b.json &&
	test_grep "\"deploys\":\[\{\"deploy\":1,\"release\":1,\"status\":\"failed\",\"kind\":\"push\"" b.json &&
	dash -b jar /api/apps/broken/deploys/1/output >o.json &&
	test_grep "push rejected" o.json &&
	sed -n "s/^remote: //p" out | sed "s/ *$//" >seen &&
	berth releases:output broken >kept &&
	test_cmp seen kept
'

test_expect_success 'a key that may not reach the app gets none of its output' '
	for p in /api/apps/shop/deploys/1/output \
		 /api/apps/shop/deploys/1/output/stream /apps/shop/deploys/1; do
		dash -b jarb -o body -w "%{http_code}" "$p" >code &&
		test "$(cat code)" = 403 &&
		test_grep_not "Deploying release" body || return 1
	done
'

test_expect_success 'a deploy in progress: its output streams as it runs, as kept' '
	gate=/run/berth-t5001-$$ &&
	rm -f "$gate" &&
	test_atexit "rm -f $gate" &&
	test_when_finished "touch $gate" &&
	make_web_bundle gated.tar.gz gated "web: python3 web.py" \
		"release: echo waiting for the gate; while ! test -e $gate; do sleep 0.1; done; echo gate open" &&
	{ berth deploy shop "$PWD/gated.tar.gz" >gated.out 2>&1 & dpid=$!; } &&
	retry_until 60 eval "berth releases:output shop --no-follow | grep -q \"^       waiting for the gate\"" &&
	d=$(berth releases:output shop --list | sed -n 2p | cut -d" " -f1) &&
	dash -b jar "/api/apps/shop" | grep -q "\"deploy\":$d,\"release\":[0-9]*,\"status\":\"running\"" &&
	dash -b jar /api/apps >apps.json &&
	test_grep "\"name\":\"shop\",\"status\":\"deploying\",.*\"step\":\"release phase\"" apps.json &&
	dash -b jar / >apps.html &&
	test_grep "<span class=\"badge s-deploying\">deploying: release phase</span>" apps.html &&
	{ dash -b jar -N "/api/apps/shop/deploys/$d/output/stream" >live.sse & spid=$!; } &&
	retry_until 30 grep -q "waiting for the gate" live.sse &&
	test_grep_not "^data:        gate open" live.sse &&
	touch "$gate" &&
	wait $dpid &&
	wait $spid &&
	test_grep "^data:        gate open" live.sse &&
	test_grep "^event: end" live.sse &&
	sse_data live.sse >streamed &&
	berth releases:output shop --deploy "$d" >kept &&
	test_cmp kept streamed
'

test_expect_success 'dashboard --revoke ends the sessions of that key' '
	ssh_deploy dashboard >out &&
	login jar3 "$(grep login out)" >code &&
	dash -b jar3 -o /dev/null -w "%{http_code}" /api/apps >code &&
	test "$(cat code)" = 200 &&
	ssh_deploy dashboard --revoke >out &&
	test_grep "Ended [1-9][0-9]* dashboard session" out &&
	dash -b jar3 -o /dev/null -w "%{http_code}" /api/apps >code &&
	test "$(cat code)" = 401 &&
	dash -b jar -o /dev/null -w "%{http_code}" /api/apps >code &&
	test "$(cat code)" = 401
'

test_expect_success 'a key removed since login loses its session' '
	ssh_deploy dashboard >out &&
	login jar4 "$(grep login out)" >code &&
	dash -b jar4 -o /dev/null -w "%{http_code}" /api/apps >code &&
	test "$(cat code)" = 200 &&
	berth keys rm tester >out &&
	dash -b jar4 -o /dev/null -w "%{http_code}" /api/apps >code &&
	test "$(cat code)" = 401
'

test_expect_success 'berth dashboard --revoke (root) ends every session' '
	berth dashboard >out &&
	login jar5 "$(grep login out)" >code &&
	berth dashboard --revoke >out &&
	dash -b jar5 -o /dev/null -w "%{http_code}" /api/apps >code &&
	test "$(cat code)" = 401
'

test_expect_success 'a session expires' '
	berth dashboard >out &&
	login jar6 "$(grep login out)" >code &&
	for f in "$BERTH_ROOT"/run/dashboard/sessions/*; do
		sed -i "s/^expires=.*/expires=1000/" "$f" || return 1
	done &&
	dash -b jar6 -o /dev/null -w "%{http_code}" /api/apps >code &&
	test "$(cat code)" = 401
'

test_expect_success 'a process that keeps crashing shows as crash-looping' '
	berth dashboard >out &&
	login jar7 "$(grep login out)" >code &&
	berth scale shop web=1 >out &&
	retry_until 20 test_must_fail ps_line_matches shop "^web\.2 " &&
	# crash it whenever it is back, until it shows as crash-looping
	retry_until 60 crash_then_check &&
	dash -b jar7 /api/apps >apps.json &&
	test_grep "\"name\":\"shop\",\"status\":\"crash-looping\"" apps.json
'

test_done
