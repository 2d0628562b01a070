#!/bin/bash
# The two-slot swap through the nginx that berth generates, with no reload:
# wrk keeps eight keep-alive connections busy while the app moves from one
# slot to the other ten times; not one request may fail.  The slot pair is
# how the deploy path still describes an app (nginx_app_set()); the router
# tries the port that answered last and the other on a refusal.

. "$(dirname "$0")/test-lib.sh"

# The nginx unit-test binary doubles as a helper that starts nginx with
# one app (see tests/unit/nginx.c); it sits next to the berth binary.
UNIT_DIR=${BERTH_UNIT_DIR:-$(dirname "$(readlink -f "$BERTH")")/unit}
NGX_HELPER=$UNIT_DIR/nginx

for need in nginx wrk python3 curl; do
	if ! command -v $need >/dev/null && ! [ -x /usr/sbin/$need ]; then
		test_skip "$need is not installed"
		test_done
	fi
done
if ! [ -x "$NGX_HELPER" ]; then
	test_skip "build $NGX_HELPER first (make units)"
	test_done
fi

# Slot ports below the ephemeral range (32768 and up), as berth's own pool
# is: a slot port there could be taken, between two servers, by the local
# end of one of nginx's upstream connections.
free_slot_port() {
	local p
	while :; do
		p=$(( 10000 + RANDOM % 10000 ))
		if ! (exec 3<>/dev/tcp/127.0.0.1/$p) 2>/dev/null; then
			echo $p
			return
		fi
	done
}
HTTP=$(free_slot_port)
SLOT_A=$(free_slot_port)
SLOT_B=$(free_slot_port)
while [ "$SLOT_A" = "$HTTP" ]; do SLOT_A=$(free_slot_port); done
while [ "$SLOT_B" = "$SLOT_A" ] || [ "$SLOT_B" = "$HTTP" ]; do SLOT_B=$(free_slot_port); done
ROOT=$TRASH/root
mkdir -p "$ROOT"

cat >slot.py <<'PY'
import http.server, signal, sys, threading
port = int(sys.argv[1])
class H(http.server.BaseHTTPRequestHandler):
    protocol_version = 'HTTP/1.1'
    def do_GET(self):
        body = ('slot %d\n' % port).encode()
        self.send_response(200)
        self.send_header('Content-Length', str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *a):
        pass
class S(http.server.ThreadingHTTPServer):
    daemon_threads = False
    request_queue_size = 128
srv = S(('127.0.0.1', port), H)
# TERM: stop accepting, finish what was accepted, exit (a drain).  The
# handler only sets an event: starting a thread from a signal handler can
# deadlock when the signal lands inside the server's own Thread.start().
stop = threading.Event()
def stopper():
    stop.wait()
    srv.shutdown()
threading.Thread(target=stopper, daemon=True).start()
signal.signal(signal.SIGTERM, lambda *a: stop.set())
srv.serve_forever()
srv.server_close()
PY

# gone PID: exited (a zombie counts: it no longer listens)
gone() {
	local st
	st=$(sed -n 's/^State:[[:space:]]*\([A-Z]\).*/\1/p' "/proc/$1/status" 2>/dev/null)
	[ -z "$st" ] || [ "$st" = Z ]
}

through_nginx() {
	curl -sS --max-time 5 -H 'Host: demo.localhost' "http://127.0.0.1:$HTTP/"
}

test_expect_success 'nginx starts with the app on two slots' '
	"$NGX_HELPER" serve "$ROOT" $HTTP demo $SLOT_A $SLOT_B \
		>helper.out 2>helper.err &
	echo $! >helper.pid &&
	retry_until 15 grep -q ready helper.out &&
	test_grep "^route demo live 0 web.1:$SLOT_A web.1:$SLOT_B\$" "$ROOT/nginx/routes"
'
test_atexit 'kill $(cat "$TRASH/helper.pid")'

test_expect_success 'slot A serves through nginx' '
	python3 slot.py $SLOT_A &
	echo $! >slot-A.pid &&
	retry_until 10 curl -sf "http://127.0.0.1:$SLOT_A/" &&
	through_nginx >out &&
	test_grep "^slot $SLOT_A\$" out
'
test_atexit 'kill $(cat "$TRASH"/slot-*.pid)'

test_expect_success 'ten swaps under wrk -t2 -c8: no failed request' '
	wrk -t2 -c8 -d120s -H "Host: demo.localhost" "http://127.0.0.1:$HTTP/" \
		>wrk.out 2>&1 &
	wrk_pid=$! &&
	echo $wrk_pid >wrk.pid &&
	retry_until 10 connected_to $HTTP &&
	swaps=0 &&
	live=A && idle=B &&
	for i in 1 2 3 4 5 6 7 8 9 10
	do
		if [ $idle = A ]; then port=$SLOT_A; else port=$SLOT_B; fi &&
		{ python3 slot.py $port & } &&
		echo $! >slot-$idle.pid &&
		retry_until 10 curl -sf "http://127.0.0.1:$port/" &&
		old=$(cat slot-$live.pid) &&
		kill -TERM $old &&
		retry_until 15 gone $old &&
		{ wait $old 2>/dev/null || :; } &&
		rm -f slot-$live.pid &&
		swaps=$((swaps + 1)) &&
		t=$live && live=$idle && idle=$t || return 1
	done &&
	test $swaps = 10 &&
	kill -INT $wrk_pid &&
	{ wait $wrk_pid || :; } &&
	cat wrk.out &&
	test_grep "requests in" wrk.out &&
	test_grep_not "Socket errors" wrk.out &&
	test_grep_not "Non-2xx" wrk.out &&
	n=$(sed -n "s/^ *\([0-9]*\) requests in.*/\1/p" wrk.out) &&
	say "$n requests through $swaps swaps" &&
	test "$n" -gt 200
'
test_atexit 'kill -INT $(cat "$TRASH/wrk.pid")'

test_expect_success 'the app is on slot A again, nginx untouched' '
	through_nginx >out &&
	test_grep "^slot $SLOT_A\$" out &&
	test_grep_not "emerg|alert|crit" "$ROOT/nginx/logs/error.log"
'

test_expect_success 'stopping the engine stops nginx, workers included' '
	master=$(cat "$ROOT/nginx/logs/nginx.pid") &&
	kill -TERM $(cat helper.pid) &&
	retry_until 15 test_must_fail kill -0 $master &&
	retry_until 5 sh -c "! pgrep -g $master nginx" &&
	test_must_fail through_nginx
'

test_done
