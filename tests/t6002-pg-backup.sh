#!/bin/bash
# pg:backup, pg:restore and pg:psql, locally and over ssh: a round trip
# with row counts, onto the same app and onto another one; every bad input
# is one line of error and changes nothing.
. "$(dirname "$0")/test-lib.sh"

if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 &&
   ! command -v initdb >/dev/null; then
	test_skip 'PostgreSQL is not installed'
	test_done
fi
. "$TEST_DIR/lib-ssh.sh"

mkdir app &&
cat >app/app.yaml <<'EOF' &&
processes:
  web: python3 -m http.server --bind 127.0.0.1 $PORT
postgres: true
EOF
(cd app && tar czf ../app.tar.gz app.yaml) &&
mkdir nodb &&
echo "web: python3 -m http.server --bind 127.0.0.1 \$PORT" >nodb/Procfile &&
(cd nodb && tar czf ../nodb.tar.gz Procfile) || exit 1

# sql APP STATEMENT: run it as the app's role, through its DATABASE_URL
sql() {
	psql "$(berth config "$1" get DATABASE_URL)" -XqtA -v ON_ERROR_STOP=1 -c "$2"
}
rows() { sql "$1" "SELECT count(*) FROM items"; }

start_berth || exit 1
make_key admin
berth keys add --admin "$TRASH/admin.pub" >/dev/null

test_expect_success 'an app with a database and 3 rows' '
	berth deploy shop "$TRASH/app.tar.gz" >out 2>&1 &&
	test_grep "Release 1 of shop is live" out &&
	sql shop "CREATE TABLE items (n int, name text); INSERT INTO items SELECT g, md5(g::text) FROM generate_series(1, 3) g" &&
	test "$(rows shop)" = 3
'

test_expect_success 'pg:backup APP FILE writes a custom-format dump' '
	berth pg:backup shop "$TRASH/shop.dump" &&
	test "$(head -c 5 "$TRASH/shop.dump")" = PGDMP &&
	test "$(stat -c %a "$TRASH/shop.dump")" = 600 &&
	! ls "$TRASH" | grep -q "\.part"
'

test_expect_success 'pg:backup APP over ssh writes it to stdout' '
	ssh_berth admin pg:backup shop >ssh.dump &&
	test "$(head -c 5 ssh.dump)" = PGDMP &&
	ssh_berth admin pg:backup shop - >ssh2.dump &&
	test "$(head -c 5 ssh2.dump)" = PGDMP
'

test_expect_success 'pg:restore refuses a database with tables without --force' '
	sql shop "INSERT INTO items VALUES (4, '\''four'\''), (5, '\''five'\'')" &&
	test_must_fail berth pg:restore shop "$TRASH/shop.dump" 2>err &&
	test_grep "^error: the database has 1 table: add --force" err &&
	test $(wc -l <err) -eq 1 &&
	test "$(rows shop)" = 5
'

test_expect_success 'pg:restore --force brings back the dumped rows' '
	berth pg:restore shop "$TRASH/shop.dump" --force &&
	test "$(rows shop)" = 3 &&
	sql shop "SELECT name FROM items WHERE n = 1" >name &&
	test "$(cat name)" = "$(printf 1 | md5sum | cut -c1-32)"
'

test_expect_success 'pg:restore over ssh from stdin' '
	sql shop "DELETE FROM items WHERE n = 1" &&
	test "$(rows shop)" = 2 &&
	ssh_berth admin pg:restore shop - --force <ssh.dump &&
	test "$(rows shop)" = 3
'

test_expect_success 'a dump restores into another app (empty database, no --force)' '
	berth deploy copy "$TRASH/app.tar.gz" >out 2>&1 &&
	test_grep "Release 1 of copy is live" out &&
	berth pg:restore copy - <"$TRASH/shop.dump" &&
	test "$(rows copy)" = 3 &&
	sql copy "SELECT tableowner FROM pg_tables WHERE tablename = '\''items'\''" >owner &&
	test "$(cat owner)" = berth_copy
'

test_expect_success 'a dump that is not one, or cut short, changes nothing' '
	echo "DROP TABLE items;" >bad.sql &&
	test_must_fail berth pg:restore shop bad.sql --force 2>err &&
	test_grep "^error: not a pg_dump custom-format archive" err &&
	test $(wc -l <err) -eq 1 &&
	head -c 600 "$TRASH/shop.dump" >cut.dump &&
	test_must_fail berth pg:restore shop cut.dump --force 2>err &&
	test $(wc -l <err) -eq 1 &&
	test_grep "^error: " err &&
	test "$(rows shop)" = 3 &&
	test_must_fail ssh_berth admin pg:restore shop - --force <bad.sql 2>err &&
	test_grep "not a pg_dump custom-format archive" err &&
	test "$(rows shop)" = 3
'

test_expect_success 'bad names, apps and paths: one-line errors' '
	test_must_fail berth pg:backup nosuch x.dump 2>err &&
	test_grep "^error: app .nosuch. does not exist" err &&
	test ! -e x.dump &&
	test_must_fail berth pg:backup ../etc x.dump 2>err &&
	test_grep "^error: invalid app name" err &&
	berth deploy nodb "$TRASH/nodb.tar.gz" >/dev/null 2>&1 &&
	test_must_fail berth pg:backup nodb x.dump 2>err &&
	test_grep "^error: .nodb. has no database" err &&
	test_must_fail berth pg:restore shop /nonexistent.dump --force 2>err &&
	test_grep "^error: cannot open ./nonexistent.dump." err &&
	test_must_fail berth pg:backup shop "$TRASH/no/such/dir/x.dump" 2>err &&
	test_grep "^error: cannot create" err &&
	test_must_fail berth pg:restore shop 2>err &&
	test_grep "^error: usage: pg:restore APP FILE" err &&
	test_must_fail berth pg:backup shop a b 2>err &&
	test_grep "^error: usage: pg:backup" err &&
	test_must_fail ssh_berth admin pg:backup shop /tmp/x.dump >out 2>err &&
	test_grep "use .-." err &&
	test ! -e /tmp/x.dump &&
	test_must_fail ssh_berth admin pg:restore shop /etc/passwd --force 2>err &&
	test_grep "use .-." err &&
	test "$(rows shop)" = 3
'

test_expect_success 'pg:psql runs psql as the app role, locally and over ssh' '
	echo "SELECT current_user, count(*) FROM items;" |
		berth pg:psql copy >out &&
	test_grep "berth_copy +\| +3" out &&
	echo "SELECT current_user, count(*) FROM items;" |
		ssh_berth admin pg:psql copy >out &&
	test_grep "berth_copy +\| +3" out
'

test_expect_success 'ssh -t pg:psql: psql on a terminal, as the app role' '
	printf "SELECT current_user || chr(58) || count(*) FROM items;\\n\\\\q\\n" |
		ssh_berth admin -tt pg:psql copy >tty.out 2>tty.err &&
	tr -d "\\r" <tty.out >out.txt &&
	test_grep "^ *berth_copy:3$" out.txt &&
	test_grep "berth_copy=>" out.txt &&
	test_must_fail ssh_berth admin -tt apps </dev/null >out 2>err &&
	test_grep "only for pg:psql" err
'

test_expect_success 'a failed backup leaves an older file whole' '
	cp "$TRASH/shop.dump" keep.dump &&
	url=$(berth config shop get DATABASE_URL) &&
	berth stop shop >/dev/null &&
	berth config shop set "DATABASE_URL=${url/:[0-9a-f]*@/:wrong@}" >/dev/null &&
	test_must_fail berth pg:backup shop keep.dump 2>err &&
	test $(wc -l <err) -eq 1 &&
	test_grep "^error: .*password authentication failed" err &&
	cmp keep.dump "$TRASH/shop.dump" &&
	! ls | grep -q "\.part"
'

test_expect_success 'help lists the commands' '
	berth help >out &&
	test_grep "pg:backup NAME" out &&
	test_grep "pg:restore NAME" out &&
	test_grep "pg:psql NAME" out
'

test_done
