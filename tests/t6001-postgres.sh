#!/bin/bash
# An app with "postgres: true" gets a database from the embedded cluster;
# its rows survive a redeploy, an engine restart and a PostgreSQL crash.
. "$(dirname "$0")/test-lib.sh"
. "$TEST_DIR/lib-postgres.sh"

# GET a path of the app's web process.
app_get() {
	local port
	port=$(app_port pgapp) && [ -n "$port" ] &&
	curl -sf --max-time 10 "http://127.0.0.1:$port$1"
}
# The engine refuses rm while it brings the app back after a restart.
rm_app() { berth rm pgapp --force --drop-database >rm 2>&1; }
count_is() { [ "$(app_get /count)" = "$1" ]; }

mkdir app &&
cat >app/app.yaml <<'EOF' &&
processes:
  web: python3 app.py
postgres: true
healthcheck:
  path: /health
EOF
cat >app/app.py <<'EOF' &&
# Every /hit stores a row; /count reads the number back.  psql reads
# DATABASE_URL; nothing of the request reaches the SQL.
import http.server, os, subprocess

SQL = {
    "/health": "SELECT 1",
    "/hit": "CREATE TABLE IF NOT EXISTS hits (n serial);"
            "INSERT INTO hits DEFAULT VALUES;"
            "SELECT count(*) FROM hits",
    "/count": "SELECT count(*) FROM hits",
    "/env": None,
}

class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        if self.path not in SQL:
            self.send_error(404)
            return
        if SQL[self.path] is None:
            body = " ".join(os.environ.get(k, "-") for k in
                            ("PGUSER", "PGDATABASE", "PGPASS")) + "\n"
            code = 200
        else:
            r = subprocess.run(["psql", os.environ["DATABASE_URL"], "-qtA",
                                "-v", "ON_ERROR_STOP=1",
                                "-c", SQL[self.path]],
                               capture_output=True, text=True, timeout=10)
            code = 200 if r.returncode == 0 else 500
            body = r.stdout if code == 200 else r.stderr
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
(cd app && tar czf ../app.tar.gz app.yaml app.py) || exit 1

start_berth || exit 1

test_expect_success 'deploy of an app that asks for postgres' '
	berth deploy pgapp "$TRASH/app.tar.gz" >deploy1 2>&1 &&
	test_grep "Release 1 of pgapp is live" deploy1
'

test_expect_success 'it got a DATABASE_URL of its own' '
	berth config pgapp >config &&
	test_grep "^DATABASE_URL=postgresql://berth_pgapp:[0-9a-f]{64}@/berth_pgapp\?host=" config
'

test_expect_success 'the cluster belongs to an unprivileged user' '
	owner=$(stat -c %U "$BERTH_ROOT/postgres/data") &&
	test "$owner" != root &&
	test "$(stat -c %a "$BERTH_ROOT/postgres/data")" = 700 &&
	test "$(stat -c %a "$BERTH_ROOT/postgres/admin.conninfo")" = 600
'

test_expect_success 'the app writes rows and reads them back' '
	test "$(app_get /hit)" = 1 &&
	test "$(app_get /hit)" = 2 &&
	count_is 2
'

test_expect_success 'the app sees the PG* variables too' '
	test "$(app_get /env)" = "berth_pgapp berth_pgapp $(sed -n "s/^DATABASE_URL=postgresql:\/\/berth_pgapp:\([0-9a-f]*\)@.*/\1/p" config)"
'

test_expect_success 'berth pg shows the database' '
	berth pg pgapp >pg &&
	test_grep "^database berth_pgapp, [0-9.]+ (bytes|kB|MB)" pg
'

# db_size_shown: "stats pgapp" has the database's size in bytes
db_size_shown() { berth stats pgapp | grep -qE "^database berth_pgapp [1-9][0-9]*$"; }

test_expect_success 'stats asks the size without blocking and shows it next time' '
	berth stats pgapp >stats &&
	test_grep "^database berth_pgapp ([0-9]+|-)$" stats &&
	retry_until 20 db_size_shown
'

# dash [CURL-ARGS...] PATH: the dashboard, through nginx
dash() {
	local path="${!#}"
	curl -sS --max-time 20 -H "Host: berth.localhost" \
		"${@:1:$#-1}" "http://127.0.0.1:$HTTP_PORT$path"
}

test_expect_success 'the dashboard shows the database: name and size' '
	berth dashboard >link &&
	l=$(grep /login link) &&
	dash -c jar -o /dev/null "/login?${l#*/login?}" &&
	dash -b jar /api/apps/pgapp >app.json &&
	test_grep "\"database\":\"berth_pgapp\",\"database_bytes\":[1-9][0-9]*," app.json &&
	dash -b jar /apps/pgapp >app.html &&
	test_grep "<td id=\"database\" colspan=\"2\">berth_pgapp · <span id=\"database-size\">[0-9.]+ [KMG]iB</span>" app.html
'

test_expect_success 'after an engine restart the size comes back too' '
	stop_berth &&
	start_berth &&
	retry_until 60 count_is 2 &&
	retry_until 20 db_size_shown
'

test_expect_success 'no TCP port: the cluster listens on its socket only' '
	test -S "$BERTH_ROOT/postgres/run/.s.PGSQL.5432" &&
	psql "$(cat "$BERTH_ROOT/postgres/admin.conninfo")" -qtA \
		-c "SHOW listen_addresses" >listen &&
	test "$(cat listen)" = ""
'

test_expect_success 'another role cannot reach the app database' '
	url=$(sed -n "s/^DATABASE_URL=//p" config) &&
	psql "$url" -qtAc "SELECT current_database()" >db &&
	test "$(cat db)" = berth_pgapp &&
	test_must_fail psql "${url/berth_pgapp?host/postgres?host}" -qtAc "SELECT 1" 2>err &&
	test_grep "permission denied|CONNECT privilege" err
'

test_expect_success 'a redeploy keeps the data and the URL' '
	berth deploy pgapp "$TRASH/app.tar.gz" >deploy2 2>&1 &&
	test_grep "Release 2 of pgapp is live" deploy2 &&
	berth config pgapp >config2 &&
	test_cmp config config2 &&
	retry_until 10 count_is 2
'

# Engines are started and stopped outside the steps: a step runs in a
# subshell, and BERTH_PID must stay this script's.
pg_pid >pid-before-restart
stop_berth
test_expect_success 'stopping the engine stopped PostgreSQL' '
	old=$(cat pid-before-restart) &&
	test -n "$old" &&
	! pid_running "$old" &&
	test ! -e "$BERTH_ROOT/postgres/data/postmaster.pid"
'
start_berth || exit 1

test_expect_success 'an engine restart keeps the data' '
	retry_until 60 count_is 2 &&
	test "$(app_get /hit)" = 3
'

test_expect_success 'a crashed postmaster comes back by itself' '
	old=$(pg_pid) &&
	kill -9 "$old" &&
	retry_until 60 pg_pid_is_new "$old" &&
	retry_until 60 count_is 3 &&
	test "$(app_get /hit)" = 4
'

pg_pid >pid-before-crash
crash_berth
test_expect_success 'the postmaster outlives a kill -9 of the engine' '
	pid_running "$(cat pid-before-crash)"
'
start_berth || exit 1

test_expect_success 'the next engine stops it and runs its own, once' '
	old=$(cat pid-before-crash) &&
	retry_until 60 pg_pid_is_new "$old" &&
	! pid_running "$old" &&
	new=$(pg_pid) &&
	ppid=$(ps -o ppid= -p "$new" | tr -d " ") &&
	echo "postmaster $new, parent $ppid, engine $BERTH_PID" &&
	test "$ppid" = "$BERTH_PID" &&
	ps -eo pid=,ppid=,args= | grep -F -- "-D $BERTH_ROOT/postgres/data" |
		grep -v grep >procs &&
	# a backend just forked still wears its postmaster'"'"'s command line
	awk "NR == FNR { p[\$1] = 1; next } !(\$2 in p)" procs procs >postmasters &&
	cat postmasters &&
	test $(wc -l <postmasters) = 1 &&
	retry_until 60 count_is 4
'

test_expect_success 'berth pg of an app without a database fails cleanly' '
	test_must_fail berth pg nosuchapp >err 2>&1 &&
	test $(wc -l <err) = 1 &&
	test_grep "nosuchapp" err
'

test_expect_success 'rm --drop-database drops database and role' '
	url=$(sed -n "s/^DATABASE_URL=//p" config) &&
	retry_until 60 rm_app &&
	test_grep "Dropped the database" rm &&
	test_must_fail berth pg pgapp &&
	test_must_fail psql "$url" -qtAc "SELECT 1" 2>err &&
	test_grep "password authentication failed|does not exist" err
'

pg_pid >pid-before-stop
stop_berth
test_expect_success 'stopping the engine stops PostgreSQL' '
	old=$(cat pid-before-stop) &&
	test -n "$old" &&
	! pid_running "$old" &&
	test ! -e "$BERTH_ROOT/postgres/data/postmaster.pid"
'

test_done
