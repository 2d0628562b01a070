#!/bin/bash
# The engine's deploys go through the router (issue #11), measured the way
# the issue measured the defects it names:
# - a release that answers 500, and one that never listens, serve no user
#   request (a request loop sees only the old release);
# - a release that crashes 1 s after passing its check is switched back
#   within the watch, and the deploy fails with the reason;
# - so is one that starts failing its health check after going live: no
#   user request reaches it once the deploy has failed;
# - a release that listens 5 s late gets no request until it is live, and
#   the switch is atomic (the loop sees the old release, then the new);
# - an app that exits at once on TERM, redeployed 20 times under wrk
#   (GET, keep-alive) and a POST loop that appends a line per POST:
#   0 failed GETs, 0 failed POSTs, lines = answered POSTs;
# - a new app, scale and removal: nginx's workers are never replaced
#   (no reload);
# - hosts: a host another app owns is refused naming the owner; unknown
#   host 404; a stopped app 503; X-Berth-Probe tells the public nothing.
. "$(dirname "$0")/test-lib.sh"
. "$TEST_DIR/lib-daemon.sh"

for need in wrk python3 curl; do
	if ! command -v $need >/dev/null; then
		test_skip "$need is not installed"
		test_done
	fi
done

# An app that dies at once on TERM (Python's default) and does not
# drain.  MODE=fail answers 500 to everything; MODE=crash exits 1 one
# second after its first request (the health check); MODE=live-crash
# exits 1 one second after its first request from a user, that is once
# it is live, however long the check took on a loaded host; MODE=sick answers
# 500 "sick" to everything from 2 s after its first request on;
# MODE=late listens 5 s after it started; a POST writes its path to the
# app's log before it answers (the app runs as its own user with a
# private /tmp when berth is root: the test's folder is not its to write).
mkdir -p app && chmod 755 app
cat >app/app.py <<'PY'
import http.server, os, threading, time
port = int(os.environ['PORT'])
mode = os.environ.get('MODE', '')
version = open('VERSION').read().strip()
first = threading.Event()
sick_at = [0]
class H(http.server.BaseHTTPRequestHandler):
    protocol_version = 'HTTP/1.1'
    def reply(self):
        if (mode == 'crash' or (mode == 'live-crash' and
                self.headers.get('User-Agent') != 'berth-health')) \
                and not first.is_set():
            first.set()
            threading.Timer(1.0, lambda: os._exit(1)).start()
        if mode == 'sick' and not sick_at[0]:
            sick_at[0] = time.time() + 2
        if mode == 'sick' and time.time() >= sick_at[0]:
            body = b'sick\n'
            self.send_response(500)
            self.send_header('Content-Length', str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return
        body = ('hello %s\n' % version).encode()
        self.send_response(500 if mode == 'fail' else 200)
        self.send_header('Content-Length', str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def do_GET(self):
        self.reply()
    def do_POST(self):
        self.rfile.read(int(self.headers.get('Content-Length', 0)))
        print('POST %s' % self.path, flush=True)
        self.reply()
    def log_message(self, *a):
        pass
class S(http.server.ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128
if mode == 'late':
    time.sleep(5)
S(('127.0.0.1', port), H).serve_forever()
PY

# bundle OUT VERSION [PROCFILE-LINE [APP.YAML-TEXT]]
bundle() {
	local dir
	dir=$(mktemp -d "$TRASH/b.XXXXXX") &&
	cp app/app.py "$dir/" &&
	echo "$2" >"$dir/VERSION" &&
	echo "${3:-web: python3 app.py}" >"$dir/Procfile" &&
	if [ -n "${4:-}" ]; then printf '%s\n' "$4" >"$dir/app.yaml"; fi &&
	tar -C "$dir" -czf "$1" . && rm -rf "$dir"
}

status_of() {
	curl -s -o /dev/null -w "%{http_code}" --max-time 10 \
		-H "Host: $1" "http://127.0.0.1:$HTTP_PORT/"
}

# posts_logged: the POST lines in the app's log (kept whole: log_max_size)
posts_logged() {
	cat "$BERTH_ROOT"/logs/demo/* 2>/dev/null |
	grep -cE "^[^ ]+ web\.[0-9]+ POST /post/"
	true
}
# posts_reach N: at least N (the engine writes what the app said shortly
# after the app answered)
posts_reach() { test "$(posts_logged)" -ge "$1"; }

test_expect_success 'setup: release 1 serves' '
	BERTH_YAML="health_timeout: 3s
log_max_size: 1G" &&
	start_berth &&
	bundle v1.tar.gz v1 &&
	berth deploy demo "$TRASH/v1.tar.gz" >out &&
	test "$(through_nginx demo)" = "hello v1" &&
	WORKERS=$(nginx_workers) &&
	test -n "$WORKERS"
'

# only_ok FILE VERSIONS: every answer in FILE is 200 from VERSIONS
only_ok() {
	if grep -vqE "^(hello $2|200)$" "$1"; then
		grep -vE "^(hello $2|200)$" "$1" | sort | uniq -c >&2
		return 1
	fi
}

# loop N: N GETs through nginx in the background, answers in seen
start_loop() {
	{ curl -s --max-time 10 -w "%{http_code}\n" -H "Host: demo.localhost" \
		"http://127.0.0.1:$HTTP_PORT/?[1-$1]" >seen & } &&
	loop=$!
}

test_expect_success 'a release that answers 500 serves no user request' '
	bundle fail.tar.gz bad "web: MODE=fail python3 app.py" &&
	start_loop 20000 &&
	test_must_fail berth deploy demo "$TRASH/fail.tar.gz" >out 2>err &&
	{ kill $loop; wait $loop; true; } &&
	test_grep "^error: not ready after" err &&
	n=$(grep -c "^hello v1$" seen) &&
	say "$n requests during the deploy, $(grep -c "bad" seen) to the 500 release" &&
	test "$n" -gt 10 &&
	only_ok seen v1
'

test_expect_success 'a release that never listens serves no user request' '
	bundle never.tar.gz never "web: sleep 600" &&
	start_loop 20000 &&
	test_must_fail berth deploy demo "$TRASH/never.tar.gz" >out 2>err &&
	{ kill $loop; wait $loop; true; } &&
	test_grep "^error: not ready after" err &&
	test "$(grep -c "^hello v1$" seen)" -gt 10 &&
	only_ok seen v1
'

test_expect_success 'a release that crashes 1 s after going live is switched back' '
	bundle crash.tar.gz crash "web: MODE=live-crash python3 app.py" "watch: 8s" &&
	start_loop 20000 &&
	test_must_fail berth deploy demo "$TRASH/crash.tar.gz" >out 2>err &&
	{ kill $loop; wait $loop; true; } &&
	cat out err &&
	test_grep "^error: rolled back: web.1 exited with status 1, [0-9.]+ s after going live" err &&
	test_grep "Switched traffic back to release 1" out &&
	say "$(grep -c "^hello crash$" seen) answers from the crashing release, $(grep -c "^hello v1$" seen) from release 1" &&
	only_ok seen "(v1|crash)" &&
	test "$(through_nginx demo)" = "hello v1" &&
	berth apps >apps &&
	test_grep "^demo +running +v1 " apps
'

# whole_lines FILE: FILE without a last line cut short (curl's output is
# buffered, and the loop was killed)
whole_lines() {
	if [ -n "$(tail -c1 "$1")" ]; then sed '$d' "$1"; else cat "$1"; fi
}

test_expect_success 'a release that fails its health check during the watch is switched back' '
	bundle sick.tar.gz sick "web: MODE=sick python3 app.py" "watch: 10s" &&
	start_loop 20000 &&
	test_must_fail berth deploy demo "$TRASH/sick.tar.gz" >out 2>err &&
	curl -s --max-time 10 -w "%{http_code}\n" -H "Host: demo.localhost" \
		"http://127.0.0.1:$HTTP_PORT/?[1-200]" >after &&
	{ kill $loop; wait $loop; true; } &&
	cat out err &&
	test_grep "^error: rolled back: web.1 failed its health check \(HTTP status 500\), [0-9.]+ s after going live" err &&
	test_grep "Switched traffic back to release 1" out &&
	say "$(grep -c "^sick$" seen) answers from the sick release before the rollback, $(grep -c "^hello sick$" seen) healthy ones" &&
	whole_lines seen >seen.whole &&
	! grep -vqE "^(hello v1|hello sick|sick|200|500)$" seen.whole &&
	test "$(grep -c "^hello v1$" after)" = 200 &&
	only_ok after v1 &&
	test "$(through_nginx demo)" = "hello v1" &&
	berth apps >apps &&
	test_grep "^demo +running +v1 " apps
'

# in_order FILE A B: FILE is answers of A, then answers of B, all 200
in_order() {
	whole_lines "$1" >"$1.whole" &&
	grep -v "^200$" "$1.whole" | uniq >runs &&
	printf "hello %s\nhello %s\n" "$2" "$3" >want &&
	test_cmp want runs &&
	only_ok "$1.whole" "($2|$3)"
}

test_expect_success 'a release that listens 5 s late gets no request until it is live' '
	bundle late.tar.gz late "web: MODE=late python3 app.py" \
		"healthcheck: { timeout: 30s }" &&
	start_loop 20000 &&
	berth deploy demo "$TRASH/late.tar.gz" >out 2>err &&
	retry_until 30 grep -q "^hello late$" seen &&
	{ kill $loop; wait $loop; true; } &&
	test_grep "Healthy after [0-9]+ ms" out &&
	ms=$(sed -n "s/.*Healthy after \([0-9]*\) ms.*/\1/p" out) &&
	test "$ms" -ge 5000 &&
	say "healthy after $ms ms; $(grep -c "^hello v1$" seen) answers from release 1, then $(grep -c "^hello late$" seen) from the late one" &&
	test "$(grep -c "^hello v1$" seen)" -gt 10 &&
	in_order seen v1 late
'

test_expect_success '20 redeploys of an app that exits at once on TERM: no GET nor POST fails' '
	echo "wrk.headers[\"Host\"] = \"demo.localhost\"" >wrk.lua &&
	before=$(posts_logged) &&
	{ wrk -t2 -c8 -d300s -s wrk.lua "http://127.0.0.1:$HTTP_PORT/" >wrk.out 2>&1 & } &&
	wrk_pid=$! &&
	{
		(
			i=0 &&
			while [ ! -e stop-posts ] && [ $i -lt 2000 ]; do
				i=$((i + 1)) &&
				curl -s -o /dev/null -w "%{http_code}\n" \
					--max-time 10 -H "Host: demo.localhost" \
					--data x "http://127.0.0.1:$HTTP_PORT/post/$i/[1-50]"
			done >post-codes
		) &
	} &&
	posts_pid=$! &&
	retry_until 10 posts_reach $((before + 1)) &&
	for i in $(seq 2 21)
	do
		bundle r$i.tar.gz r$i &&
		berth deploy demo "$TRASH/r$i.tar.gz" >>deploys || return 1
	done &&
	touch stop-posts &&
	wait $posts_pid &&
	kill -INT $wrk_pid &&
	{ wait $wrk_pid; true; } &&
	cat wrk.out &&
	test_grep "requests in" wrk.out &&
	test_grep_not "Socket errors" wrk.out &&
	test_grep_not "Non-2xx" wrk.out &&
	gets=$(sed -n "s/^ *\([0-9]*\) requests in.*/\1/p" wrk.out) &&
	answered=$(grep -c "^200$" post-codes) &&
	failed=$(grep -vc "^200$" post-codes || :) &&
	{ retry_until 10 posts_reach $((before + answered)); true; } &&
	lines=$(( $(posts_logged) - before )) &&
	say "$gets GETs, $answered POSTs answered, $failed failed, $lines appended" &&
	say "$(grep -c "Drained release" deploys) of 20 old releases drained: $(sed -n "s/.*Drained release [0-9]* (\(.*\))/\1/p" deploys | head -5 | tr "\n" ";")" &&
	test "$failed" = 0 &&
	test "$lines" = "$answered" &&
	test "$answered" -gt 50 &&
	test "$(through_nginx demo)" = "hello r21"
'
test_atexit 'touch "$TRASH/stop-posts"'

test_expect_success 'a new app, scale and removal do not reload nginx' '
	bundle other.tar.gz other &&
	berth deploy other "$TRASH/other.tar.gz" >out &&
	test "$(through_nginx other)" = "hello other" &&
	berth scale other web=2 >out &&
	retry_until 10 ps_line_matches other "^web\.2 " &&
	berth rm other --force >out &&
	test "$(status_of other.localhost)" = 404 &&
	test "$(nginx_workers)" = "$WORKERS"
'

test_expect_success 'a host another app owns is refused, naming the owner' '
	bundle h1.tar.gz h1 "web: python3 app.py" "hosts: [shop.example.com]" &&
	berth deploy hosta "$TRASH/h1.tar.gz" >out &&
	test "$(status_of shop.example.com)" = 200 &&
	test_must_fail berth deploy hostb "$TRASH/h1.tar.gz" >out 2>err &&
	test_grep "^error: .*shop.example.com.*hosta" err &&
	test "$(wc -l <err)" = 1 &&
	test "$(status_of shop.example.com)" = 200
'

test_expect_success 'unknown host 404, stopped app 503 "app is stopped"' '
	test "$(status_of nobody.localhost)" = 404 &&
	berth stop hosta >out &&
	test "$(status_of hosta.localhost)" = 503 &&
	curl -s -H "Host: hosta.localhost" "http://127.0.0.1:$HTTP_PORT/" | grep -q "app is stopped" &&
	berth start hosta >out &&
	test "$(status_of hosta.localhost)" = 200
'

crashing_503() {
	curl -s -D h503 -o b503 -H "Host: looper.localhost" "http://127.0.0.1:$HTTP_PORT/" &&
	grep -q "^HTTP/1.1 503" h503 && grep -qi "^Retry-After: [0-9]" h503 &&
	grep -q "app is crashing" b503
}

test_expect_success 'a crash-looping app answers 503 with Retry-After' '
	bundle looper.tar.gz looper "web: MODE=crash python3 app.py" &&
	berth deploy looper "$TRASH/looper.tar.gz" >out &&
	retry_until 20 crashing_503 &&
	berth rm looper --force >out
'

test_expect_success 'X-Berth-Probe tells the public nothing' '
	curl -s -D headers -o /dev/null -H "Host: demo.localhost" \
		-H "X-Berth-Probe: 1" "http://127.0.0.1:$HTTP_PORT/" &&
	! grep -iE "x-berth|127\.0\.0\.1:[0-9]" headers
'

logs_have() { berth logs demo -n 5 --source router >rlog && grep -q "$1" rlog; }

test_expect_success 'router lines in the app log, by --source router' '
	curl -s -o /dev/null -H "Host: demo.localhost" "http://127.0.0.1:$HTTP_PORT/router-line?x=1" &&
	retry_until 10 logs_have "router-line" &&
	test_grep " router at=info method=GET path=\"/router-line\?x=1\" host=demo.localhost request_id=[0-9a-f]+ fwd=\"127.0.0.1\" dyno=web.1 port=[0-9]+ release=[0-9]+ service=[0-9]+ms status=200 bytes=[0-9]+ protocol=http$" rlog &&
	test_grep_not " (web\.1|berth) " rlog &&
	berth logs demo -n 3 --source router >r3 &&
	test "$(wc -l <r3)" = 3 &&
	test "$(grep -c "^[^ ]* router at=" r3)" = 3 &&
	berth logs demo -n 50 --source app >alog &&
	test_grep_not " (router|berth) " alog &&
	test_must_fail berth logs demo --source "a b" 2>err &&
	test_grep "^error: bad source" err
'

test_expect_success 'nginx did not reload during any of it' '
	test "$(nginx_workers)" = "$WORKERS"
'

test_expect_success 'nginx error log: real errors only, not a line per request' '
	log=$BERTH_ROOT/nginx/logs/error.log &&
	n=$(wc -l <"$log") &&
	say "$n lines in nginx error log after $gets GETs and $answered POSTs" &&
	test "$n" -lt 20 &&
	test_grep_not "\[(emerg|alert|crit)\]|lua|router.sock" "$log"
'

test_done
