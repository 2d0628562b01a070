#!/bin/bash
# A WebSocket open through the router keeps working across a deploy until
# the old release's drain ends (issue #11): the router counts the upgraded
# connection as a request of the old release in flight, so the old
# release is stopped only after the drain time, and new connections go to
# the new release at once.
. "$(dirname "$0")/test-lib.sh"
. "$TEST_DIR/lib-daemon.sh"

if ! command -v python3 >/dev/null; then
	test_skip "python3 is not installed"
	test_done
fi

# The app: GET / answers its version; GET /ws with Upgrade: websocket
# answers 101 and then echoes every line it gets, prefixed by its version
# (the framing of RFC 6455 does not matter to nginx, which relays bytes).
mkdir -p app && chmod 755 app
cat >app/app.py <<'PY'
import http.server, os
port = int(os.environ['PORT'])
version = open('VERSION').read().strip()
class H(http.server.BaseHTTPRequestHandler):
    protocol_version = 'HTTP/1.1'
    def do_GET(self):
        if self.path == '/ws' and self.headers.get('Upgrade', '').lower() == 'websocket':
            self.send_response(101)
            self.send_header('Upgrade', 'websocket')
            self.send_header('Connection', 'Upgrade')
            self.end_headers()
            self.wfile.flush()
            for line in self.rfile:
                self.wfile.write(b'%s %s' % (version.encode(), line))
                self.wfile.flush()
            self.close_connection = True
            return
        body = ('hello %s\n' % version).encode()
        self.send_response(200)
        self.send_header('Content-Length', str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *a):
        pass
class S(http.server.ThreadingHTTPServer):
    daemon_threads = True
S(('127.0.0.1', port), H).serve_forever()
PY
bundle() {
	local dir
	dir=$(mktemp -d "$TRASH/b.XXXXXX") &&
	cp app/app.py "$dir/" && echo "$2" >"$dir/VERSION" &&
	echo "web: python3 app.py" >"$dir/Procfile" &&
	tar -C "$dir" -czf "$1" . && rm -rf "$dir"
}

# The client: opens /ws through nginx, then sends "ping N" every 100 ms
# and writes each echo, with the time, to its output until the connection
# closes or a gate file appears.
cat >ws.py <<'PY'
import socket, sys, time, os
port, gate = int(sys.argv[1]), sys.argv[2]
s = socket.create_connection(('127.0.0.1', port), timeout=10)
s.sendall(b'GET /ws HTTP/1.1\r\nHost: demo.localhost\r\nUpgrade: websocket\r\n'
          b'Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\n'
          b'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n')
f = s.makefile('rb')
status = f.readline().decode().strip()
print(status, flush=True)
while f.readline() not in (b'\r\n', b'\n', b''):
    pass
n = 0
while not os.path.exists(gate):
    n += 1
    try:
        s.sendall(b'ping %d\n' % n)
        line = f.readline()
    except OSError as e:
        print('closed %.3f %s' % (time.time(), e), flush=True)
        break
    if not line:
        print('closed %.3f eof' % time.time(), flush=True)
        break
    print('%.3f %s' % (time.time(), line.decode().strip()), flush=True)
    time.sleep(0.1)
PY

test_expect_success 'setup: release 1 serves, drain 3 s' '
	BERTH_YAML="drain: 3s
watch: 0s" &&
	start_berth &&
	bundle v1.tar.gz v1 &&
	berth deploy demo "$TRASH/v1.tar.gz" >out &&
	test "$(through_nginx demo)" = "hello v1"
'

test_expect_success 'a WebSocket to release 1 is upgraded through the router' '
	{ python3 ws.py "$HTTP_PORT" "$TRASH/stop-ws" >ws.out 2>ws.err & } &&
	ws_pid=$! &&
	test_atexit "touch \"$TRASH/stop-ws\"" &&
	retry_until 10 grep -q "v1 ping 3$" ws.out &&
	test_grep "^HTTP/1.1 101" ws.out
'

test_expect_success 'it keeps working during the drain of a deploy, new requests go to release 2' '
	bundle v2.tar.gz v2 &&
	started=$(date +%s.%N) &&
	berth deploy demo "$TRASH/v2.tar.gz" >out &&
	cat out &&
	test "$(through_nginx demo)" = "hello v2" &&
	test_grep "Drain time of release 1 ran out after [0-9]+ ms \(.*1 still running\)" out &&
	retry_until 10 grep -q "^closed" ws.out &&
	wait $ws_pid &&
	cat ws.out &&
	n=$(grep -c " v1 ping " ws.out) &&
	test "$n" -gt 10 &&
	test_grep_not " v2 ping " ws.out
'

test_expect_success 'it was answered by release 1 for the whole drain (3 s after the switch)' '
	sed -n "s/^\([0-9.]*\) v1 ping.*/\1/p" ws.out >times &&
	last=$(tail -1 times) &&
	ready=$(sed -n "s/.*Healthy after \([0-9]*\) ms.*/\1/p" out) &&
	say "the last echo of release 1 came $(awk -v a=$started -v b=$last "BEGIN { printf \"%.1f\", b - a }") s after the deploy started (healthy after $ready ms, drain 3 s)" &&
	awk -v a=$started -v b=$last -v r=$ready "BEGIN { exit !(b - a > r / 1000 + 2.5) }"
'

test_done
