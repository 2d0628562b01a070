#!/bin/bash
# The engine's calls on an app's database (creating it on a deploy,
# apps:rename, rm --drop-database, pg) wait for PostgreSQL off its loop:
# while PostgreSQL holds one up, here on a row lock another session keeps,
# or with its postmaster stopped, the engine answers every other request
# and deploys other apps, and the held command ends as before once
# PostgreSQL goes on.  The holds are gates, not sleeps; the one window is
# PostgreSQL's start-up deadline (30 s) for "apps" and "ps" to answer.
. "$(dirname "$0")/test-lib.sh"
. "$TEST_DIR/lib-postgres.sh"

# admin SQL: as the embedded cluster's superuser
admin() {
	psql "$(cat "$BERTH_ROOT/postgres/admin.conninfo")" -XqtA \
		-v ON_ERROR_STOP=1 -c "$1"
}
# hold SQL: another session runs SQL in a transaction it keeps open (its
# row locks held) until release ends it
hold() {
	touch hold.gate &&
	{
		{
			echo "BEGIN;" &&
			echo "$1" &&
			while [ -e hold.gate ]; do sleep 0.1; done &&
			echo "ROLLBACK;"
		} | psql "$(cat "$BERTH_ROOT/postgres/admin.conninfo") application_name=hold" \
			-Xq -v ON_ERROR_STOP=1 >hold.out 2>&1 &
		echo $! >hold.pid
	} &&
	retry_until 30 holding
}
holding() {
	test "$(admin "SELECT count(*) FROM pg_stat_activity
		WHERE application_name = 'hold' AND backend_xid IS NOT NULL
		AND state = 'idle in transaction'")" = 1
}
release() { rm -f hold.gate && wait "$(cat hold.pid)"; }
# the engine's session waits for the hold's lock
engine_waits() {
	test "$(admin "SELECT count(*) FROM pg_stat_activity
		WHERE application_name = 'berth' AND wait_event_type = 'Lock'")" -ge 1
}
running() { kill -0 "$(cat "$1")" 2>/dev/null; }

test_atexit 'rm -f "$TRASH/hold.gate"; kill -CONT $(cat "$TRASH/stopped.pid" 2>/dev/null) 2>/dev/null'

test_expect_success 'setup: an app with a database, one without' '
	mkdir dbapp &&
	printf "%s\n" "processes:" "  web: python3 web.py" "postgres: true" >dbapp/app.yaml &&
	cp "$TOP/tests/apps/web.py" dbapp/ &&
	echo v1 >dbapp/VERSION &&
	(cd dbapp && tar czf ../dbapp.tar.gz app.yaml web.py VERSION) &&
	make_web_bundle plain1.tar.gz plain1 &&
	make_web_bundle plain2.tar.gz plain2
'
start_berth || exit 1

test_expect_success 'setup: the cluster runs (a first database, dropped again)' '
	berth deploy first "$PWD/dbapp.tar.gz" >first.out 2>&1 &&
	berth rm first --force --drop-database >rm-first.out 2>&1 &&
	test_grep "Dropped the database of first" rm-first.out
'

test_expect_success 'a deploy that creates a database waits for PostgreSQL off the loop' '
	hold "CREATE ROLE berth_dbapp;" &&
	{ berth deploy dbapp "$PWD/dbapp.tar.gz" >deploy.out 2>&1 & echo $! >deploy.pid; } &&
	retry_until 60 engine_waits &&
	apps_line_matches "^dbapp +deploying .*waiting for PostgreSQL" &&
	running deploy.pid
'

test_expect_success 'meanwhile the engine answers and deploys another app to the end' '
	berth apps >apps.out &&
	test_grep "^dbapp +deploying" apps.out &&
	berth deploy plain "$PWD/plain1.tar.gz" >plain.out 2>&1 &&
	test_grep "Release 1 of plain is live" plain.out &&
	get "http://127.0.0.1:$(app_port plain)/" >body &&
	test_grep "^hello plain1 " body &&
	engine_waits &&
	running deploy.pid
'

test_expect_success 'once the lock goes, the deploy gets its database and goes live' '
	release &&
	wait "$(cat deploy.pid)" &&
	test_grep "Creating PostgreSQL database for dbapp" deploy.out &&
	test_grep "Release 1 of dbapp is live" deploy.out &&
	url=$(berth config dbapp get DATABASE_URL) &&
	psql "$url" -XqtAc "SELECT current_database()" >db &&
	test "$(cat db)" = berth_dbapp
'

test_expect_success 'apps:rename waits for its database off the loop' '
	hold "ALTER ROLE berth_dbapp CONNECTION LIMIT -1;" &&
	{ berth apps:rename dbapp dbapp2 >rename.out 2>&1 & echo $! >rename.pid; } &&
	retry_until 60 engine_waits &&
	running rename.pid
'

test_expect_success 'meanwhile the engine answers, and refuses to remove or rename the app again' '
	berth apps >apps.out &&
	test_grep "^dbapp " apps.out &&
	berth pg dbapp >pg.out &&
	test_grep "^database berth_dbapp, " pg.out &&
	test_must_fail berth rm dbapp --force >rm.out 2>&1 &&
	test_grep "dbapp. is being renamed" rm.out &&
	test_must_fail berth apps:rename dbapp dbapp3 >rename2.out 2>&1 &&
	test_grep "dbapp. is being renamed" rename2.out &&
	berth deploy plain "$PWD/plain2.tar.gz" >plain2.out 2>&1 &&
	test_grep "Release 2 of plain is live" plain2.out &&
	engine_waits &&
	running rename.pid
'

test_expect_success 'once the lock goes, the rename ends as before' '
	release &&
	wait "$(cat rename.pid)" &&
	test_grep "Renamed dbapp to dbapp2" rename.out &&
	url=$(berth config dbapp2 get DATABASE_URL) &&
	psql "$url" -XqtAc "SELECT current_database()" >db &&
	test "$(cat db)" = berth_dbapp2
'

test_expect_success 'a postmaster restarted after a crash and stopped: pg waits for it off the loop' '
	old=$(pg_pid) &&
	kill -9 "$old" &&
	retry_until 60 pg_pid_is_new "$old" &&
	pg_pid >stopped.pid &&
	kill -STOP "$(cat stopped.pid)" &&
	{ berth pg dbapp2 >pg2.out 2>&1 & echo $! >pg2.pid; } &&
	berth apps >apps.out &&
	test_grep "^plain " apps.out &&
	berth ps plain >ps.out &&
	test_grep "^web.1 " ps.out &&
	running pg2.pid
'

test_expect_success 'and answers once the postmaster goes on' '
	kill -CONT "$(cat stopped.pid)" &&
	wait "$(cat pg2.pid)" &&
	test_grep "^database berth_dbapp2, " pg2.out
'

test_expect_success 'rm --drop-database waits for the drop off the loop' '
	hold "ALTER ROLE berth_dbapp2 CONNECTION LIMIT -1;" &&
	{ berth rm dbapp2 --force --drop-database >rm2.out 2>&1 & echo $! >rm2.pid; } &&
	retry_until 60 engine_waits &&
	berth apps >apps.out &&
	test_grep "^plain " apps.out &&
	test_grep_not "^dbapp2 " apps.out &&
	engine_waits &&
	running rm2.pid
'

test_expect_success 'once the lock goes, the app and its database are gone' '
	release &&
	wait "$(cat rm2.pid)" &&
	test_grep "Dropped the database of dbapp2" rm2.out &&
	test_grep "Removed" rm2.out &&
	test "$(admin "SELECT count(*) FROM pg_database WHERE datname = '"'"'berth_dbapp2'"'"'")" = 0 &&
	test_must_fail berth ps dbapp2
'

test_done
