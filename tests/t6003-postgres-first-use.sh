#!/bin/bash
# The first database of a host makes the embedded cluster (initdb, which
# may take minutes on a slow disk) and starts it: the engine does that on
# its loop, so meanwhile it answers every request and deploys other apps.
# A wrapper initdb (berth.yaml's postgres_bindir) holds initdb open while
# a hold file exists; no sleeps.
. "$(dirname "$0")/test-lib.sh"

real=
for d in /usr/lib/postgresql/*/bin; do
	[ -x "$d/initdb" ] && [ -x "$d/postgres" ] && real=$d
done
if [ -z "$real" ]; then
	test_skip 'PostgreSQL is not installed'
	test_done
fi
if ! command -v psql >/dev/null || ! command -v curl >/dev/null; then
	test_skip 'psql or curl missing'
	test_done
fi
. "$TEST_DIR/lib-ssh.sh"

new_shared_dir || exit 1

# within SECONDS CMD...: CMD must end within SECONDS (a blocked engine
# would hold it until initdb ends, which waits for this test)
within() {
	local limit=$(( $1 * 10 )) i=0 pid
	shift
	"$@" &
	pid=$!
	while kill -0 "$pid" 2>/dev/null; do
		if [ $i -ge $limit ]; then
			kill "$pid"
			echo "within: $* did not end" >&2
			return 1
		fi
		sleep 0.1
		i=$((i + 1))
	done
	wait "$pid"
}
# apps_says REGEX: over SSH, a line of "apps" matches
apps_says() { ssh_berth admin apps | grep -qE "$1"; }
# held: the wrapper waits, and initdb has not made the cluster
held() { test -d "$BERTH_ROOT/postgres/data.new" && test ! -e "$BERTH_ROOT/postgres/data"; }

test_expect_success 'setup: an initdb held by a gate, an app with a database, one without' '
	mkdir "$SHARED/pgbin" &&
	cat >"$SHARED/pgbin/initdb" <<-INITDB &&
	#!/bin/sh
	while [ -e "$SHARED/initdb-hold" ]; do sleep 0.1; done
	exec "$real/initdb" "\$@"
	INITDB
	chmod 755 "$SHARED/pgbin/initdb" &&
	ln -s "$real/postgres" "$SHARED/pgbin/postgres" &&
	touch "$SHARED/initdb-hold" &&
	test_atexit "rm -f $SHARED/initdb-hold" &&
	BERTH_YAML="postgres_bindir: $SHARED/pgbin" &&
	mkdir dbapp &&
	printf "%s\n" "processes:" "  web: python3 web.py" "postgres: true" >dbapp/app.yaml &&
	cp "$TOP/tests/apps/web.py" dbapp/ &&
	echo v1 >dbapp/VERSION &&
	(cd dbapp && tar czf ../dbapp.tar.gz app.yaml web.py VERSION) &&
	make_web_bundle plain.tar.gz plain1
'
start_berth || exit 1

test_expect_success 'setup: an admin key' '
	make_key admin &&
	berth keys add --admin "$TRASH/admin.pub" >out
'

test_expect_success 'the deploy that needs the first database waits for PostgreSQL on the loop' '
	{ berth deploy dbapp "$PWD/dbapp.tar.gz" >deploy.out 2>&1 & echo $! >deploy.pid; } &&
	retry_until 60 apps_says "^dbapp +deploying .*\(deploying: waiting for PostgreSQL \([0-9]+\.[0-9] s\)\)$" &&
	held
'

test_expect_success 'meanwhile the engine answers, over SSH and the CLI' '
	within 30 ssh_berth admin apps >apps.out &&
	test_grep "^dbapp +deploying" apps.out &&
	within 30 berth ps dbapp >ps.out &&
	test_grep "^dbapp: deploying: waiting for PostgreSQL" ps.out &&
	held
'

test_expect_success 'and deploys another app to the end' '
	within 120 berth deploy plain "$PWD/plain.tar.gz" >plain.out 2>&1 &&
	test_grep "Release 1 of plain is live" plain.out &&
	port=$(app_port plain) &&
	get "http://127.0.0.1:$port/" >body &&
	test_grep "^hello plain1 " body &&
	held &&
	apps_says "^dbapp +deploying"
'

test_expect_success 'once initdb may go on, the waiting deploy gets its database and goes live' '
	rm "$SHARED/initdb-hold" &&
	wait "$(cat deploy.pid)" &&
	test_grep "Creating PostgreSQL database for dbapp" deploy.out &&
	test_grep "Release 1 of dbapp is live" deploy.out &&
	test -f "$BERTH_ROOT/postgres/data/PG_VERSION" &&
	test ! -e "$BERTH_ROOT/postgres/data.new" &&
	test ! -e "$BERTH_ROOT/postgres/initdb.pw" &&
	url=$(berth config dbapp get DATABASE_URL) &&
	psql "$url" -XqtAc "SELECT current_database()" >db &&
	test "$(cat db)" = berth_dbapp
'

test_expect_success 'a second app with a database: the cluster is ready, no wait' '
	within 120 berth deploy dbapp2 "$PWD/dbapp.tar.gz" >deploy2.out 2>&1 &&
	test_grep "Release 1 of dbapp2 is live" deploy2.out &&
	berth pg dbapp2 >pg &&
	test_grep "^database berth_dbapp2, " pg
'

# the processes of the wrapper initdb of a state directory
initdb_procs() { pgrep -f "^/bin/sh $SHARED/pgbin/initdb -D $1/postgres/data.new"; }

stop_berth
BERTH_ROOT=$TRASH/root2
start_berth || exit 1

test_expect_success 'an engine stopped during initdb kills it and leaves no half-made cluster' '
	touch "$SHARED/initdb-hold" &&
	{ berth deploy dbapp "$PWD/dbapp.tar.gz" >deploy3.out 2>&1 & echo $! >deploy3.pid; } &&
	retry_until 60 apps_line_matches "^dbapp +deploying .*waiting for PostgreSQL" &&
	retry_until 30 initdb_procs "$BERTH_ROOT" &&
	stop_berth &&
	test_must_fail wait "$(cat deploy3.pid)" &&
	! initdb_procs "$BERTH_ROOT" &&
	test ! -e "$BERTH_ROOT/postgres/data.new" &&
	test ! -e "$BERTH_ROOT/postgres/data" &&
	test ! -e "$BERTH_ROOT/postgres/initdb.pw"
'

test_done
