#!/bin/bash
# The embedded PostgreSQL runs as the system user "berth", made on its
# first use when berth runs as root.  That useradd runs in a child: while
# it waits, the engine answers, and the deploy that asked for a database
# goes on once the user is made.
#
# The engine runs in a mount namespace of its own with a copy of /etc in
# which "berth" does not exist, so the host's users stay as they are; the
# useradd of "berth" there passes a gate (a wrapper bound over
# /usr/sbin/useradd inside that namespace only) the test opens.
. "$(dirname "$0")/test-lib.sh"
. "$TEST_DIR/lib-postgres.sh"

if [ "$(id -u)" != 0 ] || ! command -v unshare >/dev/null; then
	test_skip "needs root and unshare"
	test_done
fi

test_atexit 'touch "$TRASH/ua.go"'

test_expect_success 'setup: a copy of /etc without the user berth; a gated useradd' '
	cp -a /etc "$TRASH/etc" &&
	for f in passwd shadow group gshadow; do
		sed -i "/^berth:/d" "$TRASH/etc/$f" || return 1
	done &&
	! grep -q "^berth:" "$TRASH/etc/passwd" &&
	cp /usr/sbin/useradd "$TRASH/useradd.real" &&
	cat >"$TRASH/useradd-gate" <<-EOF &&
	#!/bin/sh
	# the user of PostgreSQL waits for the test; app users go through
	for a in "\$@"; do last=\$a; done
	if [ "\$last" = berth ]; then
		touch "$TRASH/ua.started"
		while [ ! -e "$TRASH/ua.go" ]; do sleep 0.05; done
	fi
	exec "$TRASH/useradd.real" "\$@"
	EOF
	chmod 755 "$TRASH/useradd-gate" &&
	cat >"$TRASH/berth-ns" <<-EOF &&
	#!/bin/sh
	exec unshare -m --propagation private sh -c '\''
		mount --bind "$TRASH/etc" /etc &&
		mount --bind "$TRASH/useradd-gate" /usr/sbin/useradd &&
		exec "\$0" "\$@"'\'' "$BERTH" "\$@"
	EOF
	chmod 755 "$TRASH/berth-ns" &&
	mkdir dbapp &&
	printf "%s\n" "processes:" "  web: python3 web.py" "postgres: true" >dbapp/app.yaml &&
	cp "$TOP/tests/apps/web.py" dbapp/ &&
	echo v1 >dbapp/VERSION &&
	(cd dbapp && tar czf ../dbapp.tar.gz app.yaml web.py VERSION)
'

real_berth=$BERTH
BERTH="$TRASH/berth-ns" start_berth || exit 1
BERTH=$real_berth

test_expect_success 'the first database: useradd waits in a child, the engine answers' '
	{ berth deploy dbapp "$PWD/dbapp.tar.gz" >deploy.out 2>&1; echo $? >deploy.rc; } &
	retry_until 120 test -e "$TRASH/ua.started" &&
	timeout 20 "$BERTH" --root "$BERTH_ROOT" apps >apps.out &&
	test_grep "^dbapp +deploying" apps.out &&
	timeout 20 "$BERTH" --root "$BERTH_ROOT" status >status.out &&
	test ! -s deploy.rc
'

test_expect_success 'once the user is made, the deploy goes on with its database' '
	touch "$TRASH/ua.go" &&
	retry_until 180 test -s deploy.rc &&
	test "$(cat deploy.rc)" = 0 &&
	test_grep "Release 1 of dbapp is live" deploy.out &&
	grep -q "^berth:" "$TRASH/etc/passwd" &&
	test_grep "created system user .berth. for PostgreSQL" "$TRASH/berth.log" &&
	berth config dbapp >config &&
	url=$(sed -n "s/^DATABASE_URL=//p" config) &&
	test -n "$url" &&
	test "$(psql "$url" -XqtAc "SELECT 1")" = 1
'

test_expect_success 'the app and its database go' '
	berth rm dbapp --force --drop-database >rm.out 2>&1 &&
	test_grep "Dropped the database of dbapp" rm.out
'

test_done
