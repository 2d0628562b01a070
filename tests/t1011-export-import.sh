#!/bin/bash
# export APP -> one tar.gz; import NAME FILE on a second engine brings the
# app back: repository, live release, config, releases list.  Locally and
# over ssh; bad inputs change nothing.
. "$(dirname "$0")/test-lib.sh"
. "$TEST_DIR/lib-ssh.sh"
. "$TEST_DIR/lib-pipeline.sh"

BERTH_ROOT=$TRASH/one
start_berth || exit 1
setup_push_key
make_key admin
berth keys add --admin "$TRASH/admin.pub" >/dev/null

test_expect_success 'an app with two pushes and a config change' '
	new_app_repo shop &&
	add_web_app shop v1 &&
	echo "web: python3 web.py" >shop/Procfile &&
	commit_all shop one &&
	push shop >out &&
	test_grep "Release 1 of shop is live" out &&
	add_web_app shop v2 &&
	commit_all shop two &&
	push shop >out &&
	test_grep "Release 2 of shop is live" out &&
	berth config shop set GREETING=hello "NOTE=two words" >out &&
	test_grep "Release 3 of shop is live" out &&
	berth releases shop >releases.one
'

test_expect_success 'export APP FILE writes one tar.gz' '
	berth export shop "$TRASH/shop.tar.gz" &&
	test "$(stat -c %a "$TRASH/shop.tar.gz")" = 600 &&
	tar tzf "$TRASH/shop.tar.gz" >list &&
	test_grep "^(\./)?berth-export$" list &&
	test_grep "^(\./)?env$" list &&
	test_grep "^(\./)?releases/3/bundle.tar.gz$" list &&
	test_grep "^(\./)?releases/1/meta$" list &&
	test_grep "^(\./)?repo.git/HEAD$" list &&
	test_grep_not "^(\./)?releases/1/bundle" list &&
	! ls "$BERTH_ROOT/tmp" | grep -q export
'

test_expect_success 'export over ssh writes it to stdout' '
	ssh_berth admin export shop >ssh.tar.gz &&
	tar tzf ssh.tar.gz | grep -q "berth-export"
'

test_expect_success 'bad exports: one-line errors' '
	test_must_fail berth export nosuch x.tar.gz 2>err &&
	test_grep "^error: app .nosuch. does not exist" err &&
	test ! -e x.tar.gz &&
	test_must_fail berth export ../x x.tar.gz 2>err &&
	test_grep "^error: invalid app name" err &&
	test_must_fail ssh_berth admin export shop /tmp/x.tar.gz 2>err &&
	test_grep "use .-." err &&
	test_must_fail berth export 2>err &&
	test_grep "^error: usage: export APP" err
'

test_expect_success 'a second engine' '
	stop_berth &&
	BERTH_ROOT=$TRASH/two SSH_PORT= HTTP_PORT= &&
	SSH_PORT=$(low_free_port) && HTTP_PORT=$(low_free_port) &&
	start_berth &&
	berth keys add --admin "$TRASH/admin.pub" >/dev/null &&
	berth keys add --admin "$TRASH/push-key.pub" >/dev/null
'

test_expect_success 'import NAME FILE brings the app back on its release' '
	berth import shop "$TRASH/shop.tar.gz" >out &&
	test_grep "shop" out &&
	retry_until 30 eval "berth apps | grep -Eq \"^shop +running +v3 \"" &&
	port=$(app_port shop) &&
	get "http://127.0.0.1:$port/" >body &&
	test_grep "^hello v2 release 3" body &&
	through_nginx shop >body &&
	test_grep "^hello v2 release 3" body &&
	berth config shop get NOTE >out &&
	test "$(cat out)" = "two words" &&
	berth releases shop >releases.two &&
	test_cmp releases.one releases.two
'

test_expect_success 'the repository came along: clone it, push on top' '
	git clone -q "ssh://git@127.0.0.1:$SSH_PORT/shop" clone &&
	test "$(git -C clone rev-parse HEAD)" = "$(git -C shop rev-parse HEAD)" &&
	git -C shop remote set-url deploy "ssh://git@127.0.0.1:$SSH_PORT/shop" &&
	add_web_app shop v3 &&
	commit_all shop three &&
	push shop >out &&
	test_grep "Release 4 of shop is live" out &&
	get "http://127.0.0.1:$(app_port shop)/" >body &&
	test_grep "^hello v3 release 4" body
'

test_expect_success 'import over ssh from stdin, under another name' '
	ssh_berth admin import copy - <ssh.tar.gz >out &&
	retry_until 30 eval "berth apps | grep -Eq \"^copy +running +v3 \"" &&
	get "http://127.0.0.1:$(app_port copy)/" >body &&
	test_grep "^hello v2 release 3" body
'

test_expect_success 'bad imports: one-line errors, nothing changed' '
	berth apps >apps.before &&
	test_must_fail berth import shop "$TRASH/shop.tar.gz" 2>err &&
	test_grep "^error: app .shop. already exists" err &&
	echo "not an archive" >junk.tar.gz &&
	test_must_fail berth import junk junk.tar.gz 2>err &&
	test_grep "^error: not a berth export" err &&
	test $(wc -l <err) -eq 1 &&
	mkdir -p fake && echo hi >fake/README &&
	tar czf fake.tar.gz -C fake README &&
	test_must_fail berth import fake fake.tar.gz 2>err &&
	test_grep "^error: not a berth export" err &&
	test_must_fail berth import ../x "$TRASH/shop.tar.gz" 2>err &&
	test_grep "^error: invalid app name" err &&
	test_must_fail berth import other /nonexistent.tar.gz 2>err &&
	test_grep "^error: cannot read ./nonexistent.tar.gz." err &&
	test_must_fail ssh_berth admin import other /etc/passwd 2>err &&
	test_grep "use .-." err &&
	test_must_fail ssh_berth admin import-staged other "$BERTH_ROOT/tmp" 2>err &&
	test_grep "not available over ssh" err &&
	test_must_fail berth import-staged other /etc 2>err &&
	test_grep "only folders that import made" err &&
	berth apps >apps.after &&
	test_cmp apps.before apps.after &&
	test ! -e "$BERTH_ROOT/apps/junk" &&
	test ! -e "$BERTH_ROOT/apps/other" &&
	test -z "$(ls "$BERTH_ROOT/tmp")"
'

test_expect_success 'the imported apps come back after an engine restart' '
	stop_berth &&
	start_berth &&
	retry_until 30 eval "berth apps | grep -Eq \"^shop +running +v4 \"" &&
	retry_until 30 eval "berth apps | grep -Eq \"^copy +running +v3 \""
'

test_done
