# lib-postgres.sh: tests of an app's database on the embedded cluster
# (ROOT/postgres).  Source after test-lib.sh; brings lib-daemon.sh.
#
#   pg_pid                  the postmaster's pid (its postmaster.pid)
#   pid_running PID         a live process (a zombie nobody reaped yet
#                           counts as gone)
#   pg_pid_is_new OLD       a live postmaster, not OLD
#
# Sourcing it skips the test (test_skip) when PostgreSQL, psql or curl
# are missing.

if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 &&
   ! command -v initdb >/dev/null; then
	test_skip 'PostgreSQL is not installed'
	test_done
fi
if ! command -v psql >/dev/null || ! command -v curl >/dev/null; then
	test_skip 'psql or curl missing'
	test_done
fi
. "$TEST_DIR/lib-daemon.sh"

pg_pid() { head -n 1 "$BERTH_ROOT/postgres/data/postmaster.pid" 2>/dev/null; }
pid_running() {
	[ -r "/proc/$1/stat" ] && ! grep -q "^[0-9]* (.*) Z" "/proc/$1/stat"
}
pg_pid_is_new() {
	local p
	p=$(pg_pid) && [ -n "$p" ] && [ "$p" != "$1" ] && pid_running "$p"
}
