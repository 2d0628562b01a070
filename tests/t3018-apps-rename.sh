#!/bin/bash
# apps:rename OLD NEW (and Dokku's spelling) over ssh and locally, with an
# app pushed by stock git: repository, releases, logs and hosts follow,
# the processes keep running (no restart), pushes go to the new name, an
# engine restart brings it back as NEW; bad renames change nothing.  An
# app with a certificate (certs:add, a self-signed one made here) keeps it
# and its HTTPS settings, with no handshake missing it; an app with a
# PostgreSQL database (the embedded cluster) keeps its rows under the new
# database name, and its processes move onto the new DATABASE_URL with
# every request answered; a session of someone else in the database makes
# the rename fail and change nothing.
. "$(dirname "$0")/test-lib.sh"
. "$TEST_DIR/lib-ssh.sh"
. "$TEST_DIR/lib-pipeline.sh"

# app names of this run: host users (berth-NAME) outlive a run
S=$(printf "%04x" $((RANDOM)))
OLD=old$S FRESH=fresh$S OTHER=other$S AGAIN=again$S BLOCKED=blocked$S
PGOLD=pgold$S PGNEW=pgnew$S PGTHIRD=pgthird$S TLSAPP=tls$S
HTTPS_PORT=$(free_port)
BERTH_YAML="https_listen: 127.0.0.1:$HTTPS_PORT"
have_pg=
if { ls /usr/lib/postgresql/*/bin/initdb || command -v initdb; } >/dev/null 2>&1 &&
   command -v psql >/dev/null; then
	have_pg=1
fi

status_of() {
	curl -s -o /dev/null -w "%{http_code}" --max-time 10 \
		-H "Host: $1" "http://127.0.0.1:$HTTP_PORT/"
}
answers() { test "$(status_of "$1")" = "$2"; }
# https_get HOST [PATH]: over HTTPS, trusting only the test's certificate
https_get() {
	curl -sS --max-time 10 --cacert "$TRASH/tls.crt" \
		--resolve "$1:$HTTPS_PORT:127.0.0.1" "https://$1:$HTTPS_PORT${2:-/}"
}
# load_until GATE HOST PATH OUT: requests one after another until GATE
# exists, each one's status (000: no answer) a line of OUT
load_until() {
	while [ ! -e "$1" ]; do
		curl -s -o /dev/null -w "%{http_code}\n" --max-time 10 \
			-H "Host: $2" "http://127.0.0.1:$HTTP_PORT$3" >>"$4"
	done
}
# tls_until GATE HOST OUT: full handshakes one after another until GATE
# exists, "ok" when the certificate verified, else curl's status
tls_until() {
	while [ ! -e "$1" ]; do
		if https_get "$2" >/dev/null 2>&1; then
			echo ok
		else
			echo "failed $?"
		fi >>"$3"
	done
}

test_expect_success 'engine, key, two pushed apps' '
	start_berth &&
	setup_push_key &&
	for app in $OLD $OTHER; do
		new_app_repo $app &&
		add_web_app $app "$app-v1" &&
		echo "web: python3 web.py" >$app/Procfile &&
		commit_all $app first &&
		push $app >out &&
		test_grep "Release 1 of $app is live" out || return 1
	done &&
	berth domains:add $OLD www.old.test >/dev/null &&
	retry_until 30 answers $OLD.localhost 200
'

test_expect_success 'apps:rename over ssh: folders, route and hosts follow; the processes stay' '
	web=$(app_pid $OLD) &&
	berth releases $OLD >rel-before &&
	ssh_berth push-key apps:rename $OLD $FRESH >out &&
	test_grep "Renamed $OLD to $FRESH: http://$FRESH\.localhost:$HTTP_PORT/" out &&
	test "$(app_pid $FRESH)" = "$web" &&
	test "$(status_of $FRESH.localhost)" = 200 &&
	test "$(status_of www.old.test)" = 200 &&
	test "$(status_of $OLD.localhost)" = 404 &&
	berth releases $FRESH >rel-after &&
	test_cmp rel-before rel-after &&
	berth logs $FRESH -n 1000 >log &&
	test_grep "renamed from $OLD" log &&
	test_grep "domains: added www\.old\.test" log &&
	berth apps >apps &&
	test_grep "^$FRESH " apps &&
	test_grep_not "^$OLD " apps &&
	test ! -e "$BERTH_ROOT/apps/$OLD" &&
	test -d "$BERTH_ROOT/apps/$FRESH/repo.git" &&
	test_must_fail berth ps $OLD 2>err &&
	test_grep "app .$OLD. does not exist" err
'

# As root each app runs as its own user: the user follows the name (same
# number, so the running processes and their files stay the app's), the
# owner follows it too, and a new app of the old name gets a user of its own.
if [ "$(id -u)" = 0 ]; then
test_expect_success 'the app user and owner follow the name; the old name is free' '
	uid=$(stat -c %u /proc/$(app_pid $FRESH)) &&
	echo "$uid" >renamed.uid &&
	getent passwd "$uid" | cut -d: -f1,3,5 >renamed.pw &&
	test "$(getent passwd berth-$OLD | cut -d: -f3,5)" = "$uid:berth app $FRESH" &&
	ssh_berth push-key sharing $FRESH >out &&
	test_grep "^owner tester$" out &&
	test ! -e "$BERTH_ROOT/access/$OLD" &&
	new_app_repo again-old $OLD &&
	add_web_app again-old "new-old-v1" &&
	echo "web: python3 web.py" >again-old/Procfile &&
	commit_all again-old first &&
	push again-old >out &&
	test_grep "Release 1 of $OLD is live" out &&
	test "$(stat -c %u /proc/$(app_pid $OLD))" != "$uid" &&
	test "$(getent passwd | grep -c ":berth app $OLD:")" = 1 &&
	test "$(getent passwd | grep ":berth app $OLD:" | cut -d: -f3)" != "$uid" &&
	berth rm $OLD --force >/dev/null
'
fi

test_expect_success 'a push to the new name deploys it' '
	git -C $OLD remote set-url deploy "ssh://git@127.0.0.1:$SSH_PORT/$FRESH" &&
	echo fresh-v2 >$OLD/VERSION &&
	commit_all $OLD second &&
	push $OLD >out &&
	test_grep "Release 2 of $FRESH is live" out &&
	curl -s --max-time 10 -H "Host: $FRESH.localhost" "http://127.0.0.1:$HTTP_PORT/" | grep -q "hello fresh-v2"
'

test_expect_success 'bad renames: a clear error, nothing changes' '
	test_must_fail ssh_berth push-key apps:rename $FRESH $OTHER 2>err &&
	test_grep "app .$OTHER. already exists" err &&
	test_must_fail berth apps:rename $FRESH "Bad Name" 2>err &&
	test_grep "invalid app name" err &&
	test_must_fail berth apps:rename nosuch x 2>err &&
	test_grep "app .nosuch. does not exist" err &&
	test_must_fail berth apps:rename $FRESH 2>err &&
	test_grep "usage: berth apps:rename NAME NEW-NAME" err &&
	mkdir -p "$BERTH_ROOT/logs/$BLOCKED" &&
	test_must_fail berth apps:rename $FRESH $BLOCKED 2>err &&
	test_grep "in the way of the new name" err &&
	test "$(status_of $FRESH.localhost)" = 200 &&
	test "$(status_of $OTHER.localhost)" = 200
'

test_expect_success 'an app with a certificate: it follows, with its HTTPS settings, no handshake misses it' '
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
		-days 60 -subj /CN=www.other.test -keyout tls.key \
		-out tls.crt -addext "subjectAltName=DNS:www.other.test" \
		2>/dev/null &&
	berth domains:add $OTHER www.other.test >/dev/null &&
	berth certs:add $OTHER tls.crt tls.key >out &&
	test_grep "Installed the certificate of .$OTHER." out &&
	berth certs:set $OTHER hsts 600 >/dev/null &&
	retry_until 30 eval "https_get www.other.test | grep -q \"hello $OTHER-v1\"" &&
	rm -f gate tls.log || return 1
	tls_until gate www.other.test tls.log &
	loader=$! &&
	test_when_finished "touch gate" &&
	retry_until 30 test -s tls.log &&
	ssh_berth push-key apps:rename $OTHER $TLSAPP >out &&
	test_grep "Renamed $OTHER to $TLSAPP" out &&
	n=$(wc -l <tls.log) &&
	retry_until 30 eval "test \$(wc -l <tls.log) -gt \$((n + 3))" &&
	touch gate &&
	wait $loader &&
	sort tls.log | uniq -c >tls.count &&
	test "$(grep -vc "^ *[0-9]* ok$" tls.count)" = 0 &&
	https_get www.other.test >body &&
	test_grep "hello $OTHER-v1" body &&
	curl -sS -D hdr -o /dev/null --cacert tls.crt \
		--resolve "www.other.test:$HTTPS_PORT:127.0.0.1" \
		"https://www.other.test:$HTTPS_PORT/" &&
	grep -qi "^strict-transport-security: max-age=600" hdr &&
	curl -s -o /dev/null -w "%{http_code} %{redirect_url}\n" \
		-H "Host: www.other.test" "http://127.0.0.1:$HTTP_PORT/x" >redir &&
	test_grep "^301 https://www.other.test:$HTTPS_PORT/x$" redir &&
	berth certs $TLSAPP >out &&
	test_grep "^$TLSAPP: certificate added by hand" out &&
	test_grep "hsts: +max-age=600" out &&
	test ! -e "$BERTH_ROOT/certs/$OTHER" &&
	test -s "$BERTH_ROOT/certs/$TLSAPP/cert.pem" &&
	test_must_fail berth certs $OTHER 2>err &&
	test_grep "app .$OTHER. does not exist" err
'

if [ -n "$have_pg" ]; then
cat >pgapp.py <<'EOF'
# /hit stores a row, /count reads them back, /health asks the database,
# /ping never does; psql reads DATABASE_URL.
import http.server, os, subprocess

SQL = {
    "/health": "SELECT 1",
    "/hit": "CREATE TABLE IF NOT EXISTS hits (n serial);"
            "INSERT INTO hits DEFAULT VALUES;"
            "SELECT count(*) FROM hits",
    "/count": "SELECT count(*) FROM hits",
}

class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        if self.path == "/ping":
            code, body = 200, "pong\n"
        elif self.path == "/db":
            code, body = 200, os.environ.get("PGDATABASE", "-") + "\n"
        elif self.path in SQL:
            r = subprocess.run(["psql", os.environ["DATABASE_URL"], "-qtA",
                                "-v", "ON_ERROR_STOP=1",
                                "-c", SQL[self.path]],
                               capture_output=True, text=True, timeout=10)
            code = 200 if r.returncode == 0 else 500
            body = r.stdout if code == 200 else r.stderr
        else:
            code, body = 404, "no\n"
        data = body.encode()
        self.send_response(code)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass

http.server.ThreadingHTTPServer(("127.0.0.1", int(os.environ["PORT"])),
                                H).serve_forever()
EOF
test_expect_success 'an app with a database, pushed with git' '
	new_app_repo $PGOLD &&
	cp pgapp.py $PGOLD/app.py &&
	printf "processes:\n  web: python3 app.py\npostgres: true\nhealthcheck:\n  path: /health\n" >$PGOLD/app.yaml &&
	commit_all $PGOLD first &&
	push $PGOLD >out &&
	test_grep "Release 1 of $PGOLD is live" out &&
	berth domains:add $PGOLD db.example.test >/dev/null &&
	retry_until 30 eval "curl -sf -H \"Host: db.example.test\" \"http://127.0.0.1:\$HTTP_PORT/ping\"" &&
	curl -sf -H "Host: db.example.test" "http://127.0.0.1:$HTTP_PORT/hit" &&
	curl -sf -H "Host: db.example.test" "http://127.0.0.1:$HTTP_PORT/hit" >n &&
	test "$(cat n)" = 2
'

test_expect_success 'someone else in the database: the rename says so and changes nothing' '
	admin=$(cat "$BERTH_ROOT/postgres/admin.conninfo") || return 1
	psql "$admin dbname=berth_$PGOLD" -qtA -c "SELECT pg_sleep(120)" >/dev/null 2>&1 &
	echo $! >psql.pid &&
	test_when_finished "kill \$(cat psql.pid) 2>/dev/null" &&
	retry_until 30 eval "psql \"\$admin\" -qtA -c \"SELECT 1 FROM pg_stat_activity WHERE datname = '"'"'berth_$PGOLD'"'"' AND usename = '"'"'postgres'"'"'\" | grep -q 1" &&
	web=$(app_pid $PGOLD) &&
	test_must_fail berth apps:rename $PGOLD $PGNEW 2>err &&
	test_grep "cannot rename the database of .$PGOLD.: database .berth_$PGOLD. is in use by psql \(pid [0-9]+\): rename when they are done; nothing renamed" err &&
	test "$(wc -l <err)" = 1 &&
	berth apps >apps &&
	test_grep "^$PGOLD " apps &&
	test "$(app_pid $PGOLD)" = "$web" &&
	berth config $PGOLD get DATABASE_URL | grep -q "/berth_$PGOLD?" &&
	psql "$admin" -qtA -c "SELECT rolcanlogin FROM pg_roles WHERE rolname = '"'"'berth_$PGOLD'"'"'" >login &&
	test "$(cat login)" = t &&
	curl -sf -H "Host: db.example.test" "http://127.0.0.1:$HTTP_PORT/count" >n &&
	test "$(cat n)" = 2 &&
	psql "$admin" -qtA -c "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '"'"'berth_$PGOLD'"'"' AND usename = '"'"'postgres'"'"'" >/dev/null &&
	retry_until 30 eval "! kill -0 \$(cat psql.pid)"
'

test_expect_success 'apps:rename with a database: rows, role and DATABASE_URL follow; every request answered' '
	web=$(app_pid $PGOLD) &&
	rm -f gate load.log || return 1
	load_until gate db.example.test /ping load.log &
	loader=$! &&
	test_when_finished "touch gate" &&
	retry_until 30 test -s load.log &&
	ssh_berth push-key apps:rename $PGOLD $PGNEW >out &&
	test_grep "Renaming the database of $PGOLD to berth_$PGNEW" out &&
	test_grep "Renamed $PGOLD to $PGNEW" out &&
	test_grep "Moving the processes of $PGNEW onto the new DATABASE_URL" out &&
	test_grep "Release 2 of $PGNEW is live" out &&
	n=$(wc -l <load.log) &&
	retry_until 30 eval "test \$(wc -l <load.log) -gt \$((n + 3))" &&
	touch gate &&
	wait $loader &&
	sort load.log | uniq -c >load.count &&
	test "$(grep -vc "^ *[0-9]* 200$" load.count)" = 0 &&
	test "$(app_pid $PGNEW)" != "$web" &&
	curl -sf -H "Host: db.example.test" "http://127.0.0.1:$HTTP_PORT/count" >n &&
	test "$(cat n)" = 2 &&
	curl -sf -H "Host: $PGNEW.localhost" "http://127.0.0.1:$HTTP_PORT/db" >db &&
	test "$(cat db)" = berth_$PGNEW &&
	berth config $PGNEW get DATABASE_URL >url &&
	test_grep "^postgresql://berth_$PGNEW:[0-9a-f]{64}@/berth_$PGNEW\?host=" url &&
	test -s "$BERTH_ROOT/postgres/apps/$PGNEW.url" &&
	test ! -e "$BERTH_ROOT/postgres/apps/$PGOLD.url" &&
	berth pg $PGNEW >pg &&
	test_grep "^database berth_$PGNEW, " pg &&
	psql "$admin" -qtA -c "SELECT count(*) FROM pg_database WHERE datname = '"'"'berth_$PGOLD'"'"'" >olddb &&
	test "$(cat olddb)" = 0 &&
	psql "$admin" -qtA -c "SELECT count(*) FROM pg_roles WHERE rolname = '"'"'berth_$PGOLD'"'"'" >oldrole &&
	test "$(cat oldrole)" = 0 &&
	berth releases $PGNEW >rel &&
	test_grep "^v2\* +live .*config: .*DATABASE_URL" rel &&
	berth run $PGNEW sh -c "psql \"\$DATABASE_URL\" -qtA -c \"SELECT count(*) FROM hits\"" >n &&
	test "$(cat n)" = 2
'

test_expect_success 'a stopped app with a database: renamed, the new URL applies when it starts' '
	berth stop $PGNEW >/dev/null &&
	berth apps:rename $PGNEW $PGTHIRD >out &&
	test_grep "DATABASE_URL changed; it applies when $PGTHIRD starts" out &&
	berth start $PGTHIRD >/dev/null &&
	retry_until 30 eval "curl -sf -H \"Host: db.example.test\" \"http://127.0.0.1:\$HTTP_PORT/count\" | grep -qx 2" &&
	curl -sf -H "Host: $PGTHIRD.localhost" "http://127.0.0.1:$HTTP_PORT/db" >db &&
	test "$(cat db)" = berth_$PGTHIRD
'
else
	test_skip 'PostgreSQL is not installed (scripts/install-deps)'
fi

test_expect_success 'an engine restart brings the app back under its new name' '
	stop_berth &&
	start_berth &&
	retry_until 30 answers $FRESH.localhost 200 &&
	answers www.old.test 200 &&
	retry_until 30 eval "https_get www.other.test | grep -q \"hello $OTHER-v1\"" &&
	if [ -n "$have_pg" ]; then
		retry_until 30 eval "curl -sf -H \"Host: db.example.test\" \"http://127.0.0.1:\$HTTP_PORT/count\" | grep -qx 2"
	fi &&
	berth rename $FRESH $AGAIN >out &&
	test_grep "Renamed $FRESH to $AGAIN" out &&
	answers $AGAIN.localhost 200
'

test_expect_success 'rm of a renamed app removes its user' '
	berth rm $AGAIN --force >/dev/null &&
	berth rm $TLSAPP --force >/dev/null &&
	test ! -e "$BERTH_ROOT/certs/$TLSAPP" &&
	if [ -n "$have_pg" ]; then
		berth rm $PGTHIRD --force --drop-database >/dev/null
	fi &&
	if [ "$(id -u)" = 0 ]; then
		# (users are the host'"'"'s: another test may have an app "again",
		# and another state folder may have given the number out again)
		test "$(getent passwd "$(cat renamed.uid)" | cut -d: -f1,3,5)" != "$(cat renamed.pw)"
	fi
'

test_done
