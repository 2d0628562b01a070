#!/bin/bash
# A web process restarted after a crash gets the same port-owner check as
# at deploy time: while it was down its port was free, and a program of
# another user that took it gets no request; the restarted process is
# killed and tried again with back-off until the port is its own.
. "$(dirname "$0")/test-lib.sh"
. "$TEST_DIR/lib-daemon.sh"
. "$TEST_DIR/lib-pipeline.sh"

if [ "$(id -u)" != 0 ]; then
	test_skip "port owners need users of their own (root)"
	test_expect_success 'a state folder nginx workers cannot reach is named at start' '
	stop_berth &&
	chmod 700 "$TRASH" &&
	test_when_finished "chmod 755 \"$TRASH\"" &&
	start_berth &&
	test_grep "nginx.s workers \(berth-www\) cannot enter .$TRASH. \(mode 0700\)" "$TRASH/berth.log" &&
	stop_berth
'

test_done
fi

test_expect_success 'engine, push key, an app that binds its PORT itself' '
	start_berth &&
	setup_push_key &&
	new_app_repo crashy &&
	# binds PORT itself (not the socket handed at fd 3), retrying while
	# it is taken; /crash frees the port at once, then exits once
	# someone else listens there: the order is fixed, not a race
	cat >crashy/web.py <<-\EOF &&
	import http.server, os, socket, threading, time
	port = int(os.environ["PORT"])
	def crash():
	    srv.socket.close()
	    while True:
	        try:
	            socket.create_connection(("127.0.0.1", port), 1).close()
	            break
	        except OSError:
	            time.sleep(0.1)
	    os._exit(1)
	class H(http.server.BaseHTTPRequestHandler):
	    def do_GET(self):
	        body = b"crashy %d\n" % os.getpid()
	        if self.path == "/crash":
	            body = b"crashing\n"
	            threading.Timer(0.2, crash).start()
	        self.send_response(200)
	        self.send_header("Content-Length", str(len(body)))
	        self.end_headers()
	        self.wfile.write(body)
	    def log_message(self, *a):
	        pass
	while True:
	    try:
	        srv = http.server.HTTPServer(("127.0.0.1", port), H)
	        break
	    except OSError:
	        time.sleep(0.2)
	srv.serve_forever()
	EOF
	echo "web: python3 web.py" >crashy/Procfile &&
	commit_all crashy one &&
	push crashy >out &&
	test_grep "Release 1 of crashy is live" out &&
	through_nginx crashy >body &&
	test_grep "^crashy [0-9]+" body
'

test_expect_success 'a program of another user that takes the port while the process is down gets no request' '
	port=$(app_port crashy) &&
	first=$(through_nginx crashy) &&
	cat >thief.py <<-\EOF &&
	import http.server, sys, time
	class H(http.server.BaseHTTPRequestHandler):
	    def do_GET(self):
	        self.send_response(200)
	        self.end_headers()
	        self.wfile.write(b"stolen\n")
	    def log_message(self, *a):
	        pass
	while True:
	    try:
	        s = http.server.HTTPServer(("127.0.0.1", int(sys.argv[1])), H)
	        break
	    except OSError:
	        time.sleep(0.05)
	print("listening", flush=True)
	s.serve_forever()
	EOF
	chmod 644 thief.py &&
	# nobody, with the system python (not a shim only root may run)
	{ setpriv --reuid=65534 --regid=65534 --clear-groups /usr/bin/python3 \
		"$TRASH/thief.py" "$port" >thief.out 2>&1 & } &&
	thief=$! &&
	test_when_finished "kill $thief 2>/dev/null; true" &&
	through_nginx crashy /crash >body &&
	test_grep "^crashing" body &&
	retry_until 30 grep -q listening thief.out &&
	# the restarted web.1 is found not to own its port, and killed
	retry_until 60 grep -q "crashy web.1: port $port is held by a program of another user (uid 65534), not by crashy" "$TRASH/berth.log" &&
	for i in $(seq 1 20); do
		curl -s --max-time 10 -H "Host: crashy.localhost" \
			"http://127.0.0.1:$HTTP_PORT/" >>answers || return 1
	done &&
	cat answers &&
	test_grep_not "stolen" answers &&
	berth logs crashy -n 200 >log &&
	test_grep "web.1: port $port is held by a program of another user \(uid 65534\), not by crashy; killing it" log
'

test_expect_success 'once the port is free again, the restarted process serves' '
	# (the thief is gone with the step before)
	retry_until 90 sh -c "curl -sf --max-time 5 -H \"Host: crashy.localhost\" http://127.0.0.1:$HTTP_PORT/ >body && grep -q \"^crashy \" body" &&
	test "$(cat body)" != "$first" &&
	test_grep_not "stolen" body
'

test_expect_success 'a state folder nginx workers cannot reach is named at start' '
	stop_berth &&
	chmod 700 "$TRASH" &&
	test_when_finished "chmod 755 \"$TRASH\"" &&
	start_berth &&
	test_grep "nginx.s workers \(berth-www\) cannot enter .$TRASH. \(mode 0700\)" "$TRASH/berth.log" &&
	stop_berth
'

test_done
