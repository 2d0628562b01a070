#!/bin/bash
# Real servers behind berth start-server: Starlet (which takes its socket
# from SERVER_STARTER_PORT) through 20 HUPs under wrk with no failed
# request, and gunicorn (which reads systemd's LISTEN_FDS) under --systemd.
#
# wrk counts a request answered after its --timeout as an error.  A new
# generation gets --interval (1 s) to start accepting; on a loaded host a
# Perl or Python server may take longer, and requests then wait in the
# listen queue (they are not lost).  So the timeout is 30 s: what counts is
# that every request is answered, and answered well.
. "$(dirname "$0")/test-lib.sh"
. "$TEST_DIR/lib-start-server.sh"

command -v wrk >/dev/null || { test_skip "wrk is not installed"; test_done; }
command -v plackup >/dev/null && /usr/bin/perl -MPlack::Handler::Starlet -e1 2>/dev/null ||
	{ test_skip "starlet is not installed"; test_done; }

# wrk's summary, and whether it saw any failure.
wrk_clean() {
	cat "$1" &&
	test_grep "requests in" "$1" &&
	test_grep_not "Socket errors" "$1" &&
	test_grep_not "Non-2xx" "$1"
}

wrk_requests() {
	sed -n "s/^ *\([0-9]*\) requests in.*/\1/p" "$1"
}

test_expect_success 'setup: a PSGI app and a WSGI app that say their generation' '
	mkdir app &&
	cat >app/app.psgi <<-\EOF &&
	sub { [200, ["Content-Type" => "text/plain"],
	       ["gen $ENV{SERVER_STARTER_GENERATION}\n"]] }
	EOF
	cat >app/wsgi.py <<-\EOF &&
	import os
	def app(environ, start_response):
	    start_response("200 OK", [("Content-Type", "text/plain")])
	    return [("gen %s\n" % os.environ["SERVER_STARTER_GENERATION"]).encode()]
	EOF
	PS=$(free_port) && PG=$(free_port) && PW=$(free_port)
'

test_expect_success 'Starlet takes its socket from SERVER_STARTER_PORT' '
	ss_start berth "$TRASH/starlet" --port=127.0.0.1:$PS --dir="$TRASH/app" \
		-- plackup -s Starlet -E deployment --max-workers=4 app.psgi &&
	ss_wait_gens "$TRASH/starlet" 1 &&
	retry_until 20 curl -sf http://127.0.0.1:$PS/ &&
	test "$(curl -sf http://127.0.0.1:$PS/)" = "gen 1"
'

test_expect_success '20 HUPs of a Starlet pool under wrk -t2 -c8: no failed request' '
	d=$TRASH/starlet &&
	{ wrk -t2 -c8 -d300s --timeout 30s http://127.0.0.1:$PS/ >wrk-starlet.out 2>&1 & } &&
	wrk_pid=$! &&
	test_when_finished "kill -INT $wrk_pid 2>/dev/null" &&
	retry_until 10 connected_to $PS &&
	for i in $(seq 2 21); do
		"$BERTH" start-server --restart --pid-file="$d/pid" \
			--status-file="$d/status" &&
		ss_gens_are "$d" $i &&
		test "$(curl -sf http://127.0.0.1:$PS/)" = "gen $i" ||
		{ echo "restart to generation $i"; return 1; }
	done &&
	kill -INT $wrk_pid &&
	wait $wrk_pid &&
	wrk_clean wrk-starlet.out &&
	test "$(wrk_requests wrk-starlet.out)" -gt 500 &&
	test "$(grep -c "^new worker is now running" "$d/log")" = 20
'

test_expect_success 'gunicorn under --systemd: LISTEN_FDS on TCP and a unix socket' '
	ss_start berth "$TRASH/gunicorn" --systemd --port=127.0.0.1:$PG \
		--path="$TRASH/g.sock" --dir="$TRASH/app" \
		-- /usr/bin/python3 -m gunicorn --workers 2 wsgi:app &&
	ss_wait_gens "$TRASH/gunicorn" 1 &&
	retry_until 20 curl -sf http://127.0.0.1:$PG/ &&
	test "$(curl -sf http://127.0.0.1:$PG/)" = "gen 1" &&
	test "$(curl -sf --unix-socket "$TRASH/g.sock" http://x/)" = "gen 1" &&
	test_grep "Listening at: http://127.0.0.1:$PG" "$TRASH/gunicorn/log"
'

test_expect_success 'gunicorn: HUPs under wrk, no failed request' '
	d=$TRASH/gunicorn &&
	{ wrk -t2 -c8 -d300s --timeout 30s http://127.0.0.1:$PG/ >wrk-gunicorn.out 2>&1 & } &&
	wrk_pid=$! &&
	test_when_finished "kill -INT $wrk_pid 2>/dev/null" &&
	retry_until 10 connected_to $PG &&
	for i in 2 3 4; do
		"$BERTH" start-server --restart --pid-file="$d/pid" \
			--status-file="$d/status" &&
		test "$(curl -sf http://127.0.0.1:$PG/)" = "gen $i" ||
		{ echo "restart to generation $i"; return 1; }
	done &&
	kill -INT $wrk_pid &&
	wait $wrk_pid &&
	wrk_clean wrk-gunicorn.out &&
	"$BERTH" start-server --stop --pid-file="$d/pid" 2>/dev/null &&
	! test -e "$TRASH/g.sock"
'

test_expect_success '--systemd: fds from 3, LISTEN_PID is the worker, names without colons' '
	d=$TRASH/sd &&
	export SS_SYSTEMD=1 SS_SHOW="LISTEN_FDS LISTEN_FDNAMES SERVER_STARTER_PORT" &&
	ss_start berth "$d" --systemd --port=127.0.0.1:$PW --path="$TRASH/w.sock" \
		-- "$SS_WORKER" &&
	ss_wait_gens "$d" 1 &&
	retry_until 20 test -s "$d/out/gen-1.env" &&
	cat >expect <<-EOF &&
	LISTEN_FDS=2
	LISTEN_FDNAMES=127.0.0.1_$PW:$TRASH/w.sock
	SERVER_STARTER_PORT=127.0.0.1:$PW=3;$TRASH/w.sock=4
	EOF
	test_cmp expect "$d/out/gen-1.env" &&
	test "$(ss_ask TCP:127.0.0.1:$PW)" = "gen=1 name=127.0.0.1_$PW" &&
	"$BERTH" start-server --stop --pid-file="$d/pid" 2>/dev/null
'

test_expect_success '--systemd refuses a --port with its own =FD' '
	test_must_fail "$BERTH" start-server --systemd --port=$PW=5 -- true 2>err &&
	test_grep "drop \"=5\"" err
'

test_done
