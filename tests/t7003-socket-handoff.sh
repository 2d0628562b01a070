#!/bin/bash
# Socket hand-off for apps under the engine (issue #16): berth binds each
# web process's listening socket before the process starts and hands it
# over at fd 3, as SERVER_STARTER_PORT and as LISTEN_FDS/LISTEN_PID, with
# PORT as always.  Real servers from Debian take it: Starlet (through
# SERVER_STARTER_PORT) and gunicorn (through LISTEN_FDS).  Each is shown
# to serve on the very socket the engine bound (the listening socket's
# inode is in the engine's descriptor table, and the app's processes
# hold no listening socket of their own), and each is redeployed under
# wrk through berth's nginx with no failed request.  An app that binds
# $PORT itself works unchanged, and the "socket:" setting of app.yaml
# (auto, inherit, none) does what docs/manifest.md says.
. "$(dirname "$0")/test-lib.sh"
. "$TEST_DIR/lib-daemon.sh"

for need in wrk curl ss plackup; do
	command -v $need >/dev/null || { test_skip "$need is not installed"; test_done; }
done
/usr/bin/python3 -c "import gunicorn" 2>/dev/null ||
	{ test_skip "python3-gunicorn is not installed"; test_done; }
/usr/bin/perl -MPlack::Handler::Starlet -e1 2>/dev/null ||
	{ test_skip "starlet is not installed"; test_done; }

# psgi_bundle OUT VERSION [PROCFILE-LINE [APP.YAML-TEXT]]
psgi_bundle() {
	local dir
	dir=$(mktemp -d "$TRASH/b.XXXXXX") &&
	cat >"$dir/app.psgi" <<-EOF &&
	sub { [200, ["Content-Type" => "text/plain"], ["hello $2\n"]] }
	EOF
	echo "${3:-web: plackup -s Starlet -E deployment --max-workers=4 app.psgi}" \
		>"$dir/Procfile" &&
	if [ -n "${4:-}" ]; then printf '%s\n' "$4" >"$dir/app.yaml"; fi &&
	tar -C "$dir" -czf "$1" . && rm -rf "$dir"
}

# wsgi_bundle OUT VERSION [PROCFILE-LINE]
wsgi_bundle() {
	local dir
	dir=$(mktemp -d "$TRASH/b.XXXXXX") &&
	cat >"$dir/wsgi.py" <<-EOF &&
	def app(environ, start_response):
	    start_response("200 OK", [("Content-Type", "text/plain")])
	    return [b"hello $2\n"]
	EOF
	echo "${3:-web: /usr/bin/python3 -m gunicorn -w 2 --graceful-timeout 5 wsgi:app}" >"$dir/Procfile" &&
	tar -C "$dir" -czf "$1" . && rm -rf "$dir"
}

# served_port APP: the port "berth ps" says web.1 answers on
served_port() {
	berth ps "$1" | awk '$1 == "web.1" { print $3 }'
}

# env_of PID NAME: a variable of a running process
env_of() {
	tr '\0' '\n' <"/proc/$1/environ" | sed -n "s/^$2=//p"
}

# listen_inode PORT: the inode of the socket listening on 127.0.0.1:PORT
listen_inode() {
	ss -Hltne "sport = :$1" 2>/dev/null | sed -n 's/.* ino:\([0-9]*\).*/\1/p'
}

# holds PID INODE: PID has the socket INODE among its descriptors
holds() {
	ls -l "/proc/$1/fd" 2>/dev/null | grep -q "socket:\[$2\]"
}

# took_socket APP: web.1 serves on the socket berth bound and handed over,
# and bound no port of its own
took_socket() {
	local pid port sport ino p i n=0
	pid=$(app_pid "$1") && port=$(served_port "$1") &&
	sport=$(env_of "$pid" SERVER_STARTER_PORT) &&
	say "$1: web.1 pid $pid serves on $port; PORT=$(env_of "$pid" PORT)," \
		"SERVER_STARTER_PORT=$sport, LISTEN_FDS=$(env_of "$pid" LISTEN_FDS)" &&
	test "$sport" = "127.0.0.1:$port=3" &&
	test "$(env_of "$pid" LISTEN_FDS)" = 1 &&
	test "$(env_of "$pid" LISTEN_PID)" = "$pid" &&
	test "$(env_of "$pid" PORT)" != "$port" &&
	ss -Hltne >listening 2>/dev/null &&
	ino=$(sed -n "s/.*127.0.0.1:$port .* ino:\([0-9]*\).*/\1/p" listening) &&
	test -n "$ino" &&
	# bound by the engine, before the app ran
	holds "$BERTH_PID" "$ino" &&
	holds "$pid" "$ino" &&
	# nothing listens on PORT
	! grep -q ":$(env_of "$pid" PORT) " listening &&
	# and no process of the app holds a listening socket but that one
	for p in $(ps -e -o pid=,pgid= | awk -v g="$pid" '$2 == g { print $1 }'); do
		for i in $(ls -l "/proc/$p/fd" 2>/dev/null | sed -n "s/.*socket:\[\([0-9]*\)\]$/\1/p"); do
			if grep -q " ino:$i " listening; then
				test "$i" = "$ino" || { echo "pid $p listens on socket $i"; return 1; }
				n=$((n + 1))
			fi
		done
	done &&
	test "$n" -ge 2	# the master and its workers
}

wrk_clean() {
	cat "$1" &&
	test_grep "requests in" "$1" &&
	test_grep_not "Socket errors" "$1" &&
	test_grep_not "Non-2xx" "$1"
}

# redeploy_under_wrk APP ROUNDS BUNDLE-FN
redeploy_under_wrk() {
	local app=$1 rounds=$2 mk=$3 i wrk_pid
	for i in $(seq 2 $((rounds + 1))); do
		$mk "$TRASH/$app-$i.tar.gz" "v$i" || return 1
	done &&
	{ wrk -t2 -c8 -d600s --timeout 30s -H "Host: $app.localhost" \
		"http://127.0.0.1:$HTTP_PORT/" >"wrk-$app.out" 2>&1 & } &&
	wrk_pid=$! &&
	retry_until 10 connected_to $HTTP_PORT &&
	for i in $(seq 2 $((rounds + 1))); do
		berth deploy "$app" "$TRASH/$app-$i.tar.gz" >"deploy-$app.out" &&
		test "$(through_nginx "$app")" = "hello v$i" &&
		took_socket "$app" >/dev/null || { cat "deploy-$app.out"; kill -INT $wrk_pid; return 1; }
	done &&
	kill -INT $wrk_pid &&
	{ wait $wrk_pid || :; } &&
	wrk_clean "wrk-$app.out" &&
	say "$app: $rounds redeploys, $(sed -n "s/^ *\([0-9]*\) requests in.*/\1/p" "wrk-$app.out") requests, none failed"
}

test_expect_success 'setup' '
	start_berth
'

test_expect_success 'Starlet deploys and takes its socket from SERVER_STARTER_PORT' '
	psgi_bundle "$TRASH/starlet-1.tar.gz" v1 &&
	berth deploy starlet "$TRASH/starlet-1.tar.gz" >out &&
	cat out &&
	test_grep "Starting web.1 on port [0-9]+ \(or its socket on port [0-9]+\)" out &&
	test "$(through_nginx starlet)" = "hello v1" &&
	took_socket starlet
'

test_expect_success 'gunicorn deploys and takes its socket from LISTEN_FDS' '
	wsgi_bundle "$TRASH/gunicorn-1.tar.gz" v1 &&
	berth deploy gunicorn "$TRASH/gunicorn-1.tar.gz" >out &&
	test "$(through_nginx gunicorn)" = "hello v1" &&
	took_socket gunicorn
'

test_expect_success 'Starlet: 8 redeploys under wrk -t2 -c8, no failed request' '
	redeploy_under_wrk starlet 8 psgi_bundle
'

test_expect_success 'gunicorn: 5 redeploys under wrk -t2 -c8, no failed request' '
	redeploy_under_wrk gunicorn 5 wsgi_bundle
'

test_expect_success 'a crashed Starlet comes back on the same socket' '
	port=$(served_port starlet) && pid=$(app_pid starlet) &&
	ino=$(listen_inode "$port") &&
	kill -KILL -- "-$pid" &&
	retry_until 20 eval "test -n \"\$(app_pid starlet)\" && test \"\$(app_pid starlet)\" != $pid" &&
	retry_until 20 through_nginx starlet &&
	test "$(served_port starlet)" = "$port" &&
	test "$(listen_inode "$port")" = "$ino" &&
	took_socket starlet
'

test_expect_success 'an app that binds $PORT itself works unchanged' '
	make_web_bundle "$TRASH/py.tar.gz" v1 &&
	berth deploy py "$TRASH/py.tar.gz" >out &&
	retry_until 10 through_nginx py &&
	pid=$(app_pid py) && port=$(served_port py) &&
	test "$(env_of "$pid" PORT)" = "$port" &&
	ino=$(listen_inode "$port") && test -n "$ino" &&
	holds "$pid" "$ino" &&
	! holds "$BERTH_PID" "$ino" &&
	# the socket berth had bound for it is closed in the engine
	sport=$(env_of "$pid" SERVER_STARTER_PORT) &&
	sport=${sport#127.0.0.1:} && sport=${sport%=3} &&
	ino2=$(listen_inode "$sport") &&
	{ test -z "$ino2" || ! holds "$BERTH_PID" "$ino2"; }
'

test_expect_success 'socket: inherit hands the socket on PORT itself' '
	psgi_bundle "$TRASH/inherit.tar.gz" inherit "" "socket: inherit" &&
	berth deploy starlet "$TRASH/inherit.tar.gz" >out &&
	test_grep "Starting web.1 on port [0-9]+$" out &&
	test "$(through_nginx starlet)" = "hello inherit" &&
	pid=$(app_pid starlet) &&
	test "$(env_of "$pid" PORT)" = "$(served_port starlet)" &&
	test "$(env_of "$pid" SERVER_STARTER_PORT)" = "127.0.0.1:$(served_port starlet)=3" &&
	holds "$BERTH_PID" "$(listen_inode "$(served_port starlet)")"
'

test_expect_success 'socket: none hands nothing; Starlet binds PORT' '
	psgi_bundle "$TRASH/none.tar.gz" none \
		"web: plackup -s Starlet -E deployment --port \$PORT app.psgi" \
		"socket: none" &&
	berth deploy starlet "$TRASH/none.tar.gz" >out &&
	test "$(through_nginx starlet)" = "hello none" &&
	pid=$(app_pid starlet) &&
	test -z "$(env_of "$pid" SERVER_STARTER_PORT)" &&
	test -z "$(env_of "$pid" LISTEN_FDS)" &&
	test "$(env_of "$pid" PORT)" = "$(served_port starlet)" &&
	! holds "$BERTH_PID" "$(listen_inode "$(served_port starlet)")"
'

test_expect_success 'a bad socket: value is refused, the app keeps serving' '
	psgi_bundle "$TRASH/bad.tar.gz" bad "" "socket: systemd" &&
	test_must_fail berth deploy starlet "$TRASH/bad.tar.gz" >out 2>err &&
	test_grep "socket.* must be auto, inherit or none" err &&
	test "$(through_nginx starlet)" = "hello none"
'

test_expect_success 'a LISTEN_FDS from the config does not reach a process' '
	berth config py set LISTEN_FDS=7 SERVER_STARTER_PORT=1=7 >/dev/null &&
	retry_until 10 through_nginx py &&
	pid=$(app_pid py) &&
	test "$(env_of "$pid" LISTEN_FDS)" = 1 &&
	test "$(env_of "$pid" SERVER_STARTER_PORT)" != "1=7"
'

test_done
