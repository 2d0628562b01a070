#!/bin/bash
# The router under load, in the nginx berth generates, with real
# upstreams, driven as the engine will drive it (the router helper of
# tests/unit/router.c stands in for the engine):
# - an app that dies at once on TERM, switched 20 times while wrk sends
#   GETs on keep-alive connections and a second client POSTs, each POST
#   appending a line: no failed request, file lines = answered POSTs,
#   each old release stopped only once its requests are done;
# - releases that answer 500, crash, never listen or listen late get no
#   user request while the engine probes them;
# - the watch: a release that crashes after the switch; its requests
#   fall back to the old release until the rollback;
# - a killed nginx master routes from its first request;
# - router log lines, one per request;
# - 300 apps created, switched and removed: no reload.

. "$(dirname "$0")/test-lib.sh"

UNIT_DIR=${BERTH_UNIT_DIR:-$(dirname "$(readlink -f "$BERTH")")/unit}
HELPER=$UNIT_DIR/router

for need in nginx wrk python3 curl; do
	if ! command -v $need >/dev/null && ! [ -x /usr/sbin/$need ]; then
		test_skip "$need is not installed"
		test_done
	fi
done
if ! [ -x "$HELPER" ]; then
	test_skip "build $HELPER first (make units)"
	test_done
fi

HTTP=$(free_port)
ROOT=$TRASH/root
mkdir -p "$ROOT"

# An app that dies at once on TERM (Python's default), does not drain, and
# appends each POST's path to a file.  fail=N: answers 500; crash=S: exits
# S seconds after it starts; crash_served=S: exits S seconds after its first
# user request (a path under /sleep/), however long it took to get there;
# late=S: listens S seconds late.
cat >app.py <<'PY'
import http.server, os, sys, threading, time
port = int(sys.argv[1])
opts = dict(a.split('=', 1) for a in sys.argv[2:])
status = 500 if 'fail' in opts else 200
class H(http.server.BaseHTTPRequestHandler):
    protocol_version = 'HTTP/1.1'
    def reply(self):
        body = ('v %d\n' % port).encode()
        self.send_response(status)
        self.send_header('Content-Length', str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def do_GET(self):
        if self.path.startswith('/sleep/') and 'crash_served' in opts:
            with lock:
                if not timer:
                    timer.append(threading.Timer(float(opts['crash_served']),
                                                 lambda: os._exit(1)))
                    timer[0].start()
        if self.path.startswith('/sleep/'):
            ms = self.path[7:].split('?')[0].split('/')[0]
            time.sleep(int(ms) / 1000.0)
        self.reply()
    def do_POST(self):
        n = int(self.headers.get('Content-Length', 0))
        self.rfile.read(n)
        with open(opts.get('posts', 'posts'), 'a') as f:
            f.write(self.path + '\n')
        self.reply()
    def log_message(self, *a):
        pass
class S(http.server.ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128
lock, timer = threading.Lock(), []
if 'crash' in opts:
    threading.Timer(float(opts['crash']), lambda: os._exit(1)).start()
time.sleep(float(opts.get('late', 0)))
S(('127.0.0.1', port), H).serve_forever()
PY

# start_app PORT [OPTS...]: in the background; its pid in app-PORT.pid
start_app() {
	local port=$1
	shift
	case $port in [0-9]*) ;; *) echo "start_app: bad port '$port'" >&2; return 1 ;; esac
	python3 app.py "$port" "posts=$TRASH/posts" "$@" >/dev/null 2>&1 &
	echo $! >"app-$port.pid"
}
stop_app() {
	local p
	p=$(cat "app-$1.pid") && is_pid "$p" && kill -TERM "$p" 2>/dev/null
	rm -f "app-$1.pid"
}
test_atexit 'for f in "$TRASH"/app-*.pid "$TRASH/loop.pid"; do p=$(cat "$f"); is_pid "$p" && kill -KILL "$p"; done'
answers() { curl -sf --max-time 2 "http://127.0.0.1:$1/" >/dev/null; }
dead() { ! answers "$1"; }
gone() {
	local st
	st=$(sed -n 's/^State:[[:space:]]*\([A-Z]\).*/\1/p' "/proc/$1/status" 2>/dev/null)
	[ -z "$st" ] || [ "$st" = Z ]
}

# more_lines FILE N: FILE has more than N lines
more_lines() { [ "$(wc -l <"$1")" -gt "$2" ]; }
# count_is_at_least N PATTERN FILE
count_is_at_least() { [ "$(grep -c -e "$2" "$3")" -ge "$1" ]; }

# cmd LINE...: one command to the helper; prints its one-line answer
cmd() {
	local n
	n=$(wc -l <helper.out)
	echo "$*" >&9
	retry_until 30 more_lines helper.out "$n" || return 1
	sed -n "$((n + 1))p" helper.out
}
# cmd_ok LINE...: the answer must start with "ok"
cmd_ok() {
	local a
	a=$(cmd "$@") || return 1
	case $a in ok*) echo "$a" ;; *) echo "$* -> $a" >&2; return 1 ;; esac
}

through() { curl -s --max-time 5 -H "Host: ${2:-demo}.localhost" "http://127.0.0.1:$HTTP${1:-/}"; }

test_expect_success 'the router helper starts nginx' '
	mkfifo cmd.fifo &&
	{ "$HELPER" serve "$ROOT" $HTTP <cmd.fifo >helper.out 2>helper.err & } &&
	echo $! >helper.pid &&
	exec 9>cmd.fifo &&
	retry_until 15 grep -q "^ready" helper.out &&
	MASTER=$(cmd master | sed -n "s/^master //p") &&
	is_pid "$MASTER" && kill -0 "$MASTER"
'
test_atexit 'exec 9>&-; p=$(cat "$TRASH/helper.pid"); is_pid "$p" && kill "$p"'

test_expect_success 'router logs go to the engine' '
	cmd_ok logs "$TRASH/router.log"
'

PORT=$(free_port)
test_expect_success 'release 1 of an app that dies at once on TERM serves' '
	start_app $PORT &&
	retry_until 10 answers $PORT &&
	cmd_ok set demo live 1 web.1:$PORT &&
	test "$(through)" = "v $PORT"
'

test_expect_success '20 switches under wrk (GET) and a POST client: nothing fails' '
	echo "wrk.headers[\"Host\"] = \"demo.localhost\"" >wrk.lua &&
	{ wrk -t2 -c8 -d300s --timeout 30s -s wrk.lua "http://127.0.0.1:$HTTP/" >wrk.out 2>&1 & } &&
	wrk_pid=$! &&
	echo $wrk_pid >wrk.pid &&
	: >posts &&
	{
		(
			i=0 &&
			while [ ! -e stop-posts ] && [ $i -lt 2000 ]; do
				i=$((i + 1)) &&
				curl -s -o /dev/null -w "%{http_code}\n" \
					--max-time 10 -H "Host: demo.localhost" \
					--data x "http://127.0.0.1:$HTTP/post/$i/[1-50]"
			done >post-codes
		) &
	} &&
	posts_pid=$! &&
	retry_until 10 test -s posts &&
	rel=1 old=$PORT &&
	for i in $(seq 1 20)
	do
		new=$(free_port) &&
		start_app $new &&
		retry_until 10 answers $new &&
		rel=$((rel + 1)) &&
		cmd_ok switch demo live $rel web.1:$new >>switches &&
		cmd drain demo $((rel - 1)) 5000 >>drains &&
		old_pid=$(cat app-$old.pid) &&
		is_pid "$old_pid" &&
		stop_app $old &&
		retry_until 10 gone $old_pid &&
		old=$new || return 1
	done &&
	PORT=$old &&
	touch stop-posts &&
	wait $posts_pid &&
	kill -INT $wrk_pid &&
	{ wait $wrk_pid || :; } &&
	cat wrk.out &&
	test_grep "requests in" wrk.out &&
	test_grep_not "Socket errors" wrk.out &&
	test_grep_not "Non-2xx" wrk.out &&
	gets=$(sed -n "s/^ *\([0-9]*\) requests in.*/\1/p" wrk.out) &&
	answered=$(grep -c "^200$" post-codes) &&
	failed=$(grep -vc "^200$" post-codes || :) &&
	lines=$(wc -l <posts) &&
	say "$gets GETs, $answered POSTs answered, $failed failed, $lines appended" &&
	test "$failed" = 0 &&
	test "$lines" = "$answered" &&
	test "$answered" -gt 50 &&
	test "$(grep -c "^drained 1 " drains)" = 20 &&
	say "drains: $(sed -n "s/^drained 1 finished \([0-9]*\) left 0 ms \([0-9]*\)$/\1 in \2 ms/p" drains | tr "\n" ",")"
'
test_atexit 'touch "$TRASH/stop-posts"; p=$(cat "$TRASH/wrk.pid"); is_pid "$p" && kill -INT "$p"'

test_expect_success 'the router log has a line for every answered POST' '
	retry_until 10 count_is_at_least "$answered" "^demo at=info method=POST " router.log &&
	test "$(grep -c "^demo at=info method=POST " router.log)" = "$answered" &&
	test_grep "^demo at=info method=GET path=\"/\" host=demo.localhost .* dyno=web.1 port=[0-9]+ release=[0-9]+ service=[0-9]+ms status=200 bytes=[0-9]+ protocol=http$" router.log
'

# nginx writes its lines up to 100 ms late: those of a burst that ended
# just before the switch may come after it, and their end time says so
# (the switch's answer shows how many were read by then; test_switch in
# tests/unit/router.c always switches within the flush)
test_expect_success 'a drain with nothing in flight at the switch counts 0 finished, right after a burst' '
	one=$(free_port) &&
	start_app $one &&
	two=$(free_port) &&
	start_app $two &&
	retry_until 10 answers $one &&
	retry_until 10 answers $two &&
	cmd_ok set quiet live 1 web.1:$one &&
	curl -s -H "Host: quiet.localhost" "http://127.0.0.1:$HTTP/[1-50]" >burst &&
	cmd_ok switch quiet live 2 web.1:$two >quiet-switch &&
	cmd drain quiet 1 5000 >quiet-drain &&
	say "switch: $(cat quiet-switch); $(cat quiet-drain)" &&
	test "$(grep -c "^v $one\$" burst)" = 50 &&
	grep -q "^drained 1 finished 0 left 0 " quiet-drain &&
	retry_until 10 count_is_at_least 50 "^quiet at=info .* release=1 " router.log &&
	cmd_ok remove quiet &&
	stop_app $one &&
	stop_app $two
'

# probe_is PORT STATUS: what the engine's probe through nginx gets from a
# release that is not live
probe_is() {
	test "$(curl -s -o /dev/null -w "%{http_code}" \
		--unix-socket "$ROOT/nginx/sock/probe" -H "Host: demo.localhost" \
		-H "X-Berth-Peer: $1" http://probe/)" = "$2"
}

test_expect_success 'releases that are not switched to get no user request' '
	bad500=$(free_port) crash=$(free_port) never=$(free_port) late=$(free_port) &&
	{ curl -s -H "Host: demo.localhost" "http://127.0.0.1:$HTTP/[1-400]" >seen & } &&
	loop=$! &&
	start_app $bad500 fail=1 &&
	start_app $crash crash=1 &&
	start_app $late late=3 &&
	: the engine probes them through nginx, users never see them &&
	retry_until 10 probe_is $bad500 500 &&
	probe_is $never 502 &&
	retry_until 10 probe_is $late 200 &&
	wait $loop &&
	test "$(grep -c "^v $PORT\$" seen)" = 400 &&
	stop_app $bad500 && stop_app $late
'

test_expect_success 'the watch: a release that crashes after the switch falls back, then rolls back' '
	crash=$(free_port) &&
	start_app $crash crash_served=1 &&
	retry_until 10 answers $crash &&
	cmd_ok switch demo live 100 web.1:$crash fallback 21 web.1:$PORT &&
	{ curl -s -w "%{http_code}\n" -o /dev/null -H "Host: demo.localhost" \
		"http://127.0.0.1:$HTTP/sleep/10?[1-300]" >codes & } &&
	loop=$! &&
	retry_until 10 dead $crash &&
	cmd_ok revert demo &&
	wait $loop &&
	test "$(grep -c "^200$" codes)" = 300 &&
	test "$(through)" = "v $PORT" &&
	grep -q "dyno=web.1 port=$crash release=100 " router.log &&
	grep -q "dyno=web.1 port=$PORT release=21 " router.log
'

new_master() { m=$(cmd master | sed -n "s/^master //p") && is_pid "$m" && [ "$m" != "$MASTER" ]; }
more_codes() { [ "$(wc -l <codes)" -gt "$1" ]; }

test_expect_success 'a killed master: the next one routes from its first request' '
	{ curl -s -w "%{http_code}\n" -o /dev/null --max-time 5 \
		-H "Host: demo.localhost" "http://127.0.0.1:$HTTP/[1-20000]" >codes & } &&
	loop=$! &&
	echo $loop >loop.pid &&
	retry_until 10 more_codes 100 &&
	is_pid "$MASTER" &&
	kill -KILL "$MASTER" &&
	retry_until 15 new_master &&
	n=$(wc -l <codes) &&
	retry_until 15 more_codes $((n + 300)) &&
	kill $loop &&
	{ wait $loop || :; } &&
	sort codes | uniq -c &&
	test_grep_not "^(404|5..)$" codes &&
	MASTER=$(cmd master | sed -n "s/^master //p") &&
	is_pid "$MASTER" &&
	test "$(through)" = "v $PORT"
'

oks() { [ "$(grep -c "^ok" helper.out)" -ge "$1" ]; }

test_expect_success '300 apps created, switched and removed: no reload' '
	n=$(grep -c "^ok" helper.out) &&
	lines=$(wc -l <helper.out) &&
	for i in $(seq 1 300); do echo "set app$i live 1 web.1:$PORT"; done >&9 &&
	for i in $(seq 1 300); do echo "switch app$i live 2 web.1:$PORT"; done >&9 &&
	retry_until 60 oks $((n + 600)) &&
	test "$(through / app300)" = "v $PORT" &&
	for i in $(seq 1 300); do echo "remove app$i"; done >&9 &&
	retry_until 60 oks $((n + 900)) &&
	tail -n +$((lines + 1)) helper.out >answers &&
	test_grep_not "^error" answers &&
	test "$(curl -s -o /dev/null -w "%{http_code}" -H "Host: app1.localhost" "http://127.0.0.1:$HTTP/")" = 404 &&
	test "$(cmd reloads)" = "reloads 0" &&
	test "$(cmd master)" = "master $MASTER"
'

test_expect_success 'nginx logged no error of its own for any of it' '
	test_grep_not "\[(emerg|alert|crit)\]" "$ROOT/nginx/logs/error.log" &&
	test_grep_not "router.sock|lua" "$ROOT/nginx/logs/error.log"
'

test_done
