#!/bin/bash
# Keys: managed locally and, by admin keys only, over SSH.
. "$(dirname "$0")/test-lib.sh"
. "$TEST_DIR/lib-ssh.sh"

start_berth
AK=$BERTH_ROOT/keys/authorized_keys

fingerprint() { ssh-keygen -lf "$TRASH/$1.pub" | cut -d" " -f2; }

test_expect_success 'setup: keys for an admin and two users' '
	test -S "$BERTH_ROOT/run/berth.sock" &&
	make_key root-admin &&
	make_key alice &&
	make_key bob &&
	make_key carol
'

test_expect_success 'local add: reports the name and ssh-keygen fingerprint' '
	berth keys add --admin "$TRASH/root-admin.pub" >out &&
	echo "added root-admin ($(fingerprint root-admin))" >expect &&
	test_cmp expect out &&
	berth keys add "$TRASH/alice.pub" >out &&
	echo "added alice ($(fingerprint alice))" >expect &&
	test_cmp expect out
'

test_expect_success 'the file is private and holds OpenSSH lines' '
	test "$(stat -c %a "$AK")" = 600 &&
	test "$(stat -c %a "$BERTH_ROOT/keys")" = 700 &&
	grep "^berth-admin ssh-ed25519 " "$AK" >admin-lines &&
	test "$(wc -l <admin-lines)" = 1 &&
	ssh-keygen -lf "$AK" >/dev/null
'

test_expect_success 'local list: name, type, fingerprint, admin' '
	berth keys >out &&
	cat >expect <<-EOT &&
	root-admin ssh-ed25519 $(fingerprint root-admin) admin
	alice ssh-ed25519 $(fingerprint alice)
	EOT
	test_cmp expect out
'

test_expect_success 'a duplicate or malformed key is refused and changes nothing' '
	cp "$AK" before &&
	test_must_fail berth keys add "$TRASH/alice.pub" 2>err &&
	test_grep "already present as .alice." err &&
	echo "ssh-ed25519 AAAAnotakey x" >bad.pub &&
	test_must_fail berth keys add bad.pub 2>err &&
	test_grep "bad key data for .ssh-ed25519." err &&
	echo "ssh-foo AAAA x" >bad.pub &&
	test_must_fail berth keys add bad.pub 2>err &&
	test_grep "unknown key type .ssh-foo." err &&
	{ cat "$TRASH/bob.pub"; echo "garbage"; } >mixed.pub &&
	test_must_fail berth keys add mixed.pub 2>err &&
	test_grep "line 2: " err &&
	test_cmp before "$AK"
'

test_expect_success 'over ssh, a non-admin key may not manage keys' '
	cp "$AK" before &&
	for cmd in "keys" "keys rm root-admin" "keys add --admin"; do
		test_expect_code 1 ssh_berth alice $cmd <"$TRASH/alice.pub" >out 2>err || return 1
		test_grep "^error: keys: only admin keys may manage keys$" err ||
			return 1
		test_must_fail test -s out || return 1
	done &&
	test_cmp before "$AK"
'

test_expect_success 'over ssh, an admin lists keys' '
	ssh_berth root-admin keys >out &&
	berth keys >expect &&
	test_cmp expect out
'

test_expect_success 'over ssh, an admin adds a key from stdin; it then works' '
	test_must_fail ssh_berth bob version 2>err &&
	ssh_berth root-admin keys add <"$TRASH/bob.pub" >out &&
	echo "added bob ($(fingerprint bob))" >expect &&
	test_cmp expect out &&
	ssh_berth bob version >out &&
	test_grep "^berth " out &&
	test_expect_code 1 ssh_berth bob keys 2>err &&
	test_grep "only admin keys" err
'

test_expect_success 'over ssh, an admin adds an admin key given as words' '
	ssh_berth root-admin keys add --admin $(cat "$TRASH/carol.pub") >out &&
	echo "added carol ($(fingerprint carol))" >expect &&
	test_cmp expect out &&
	ssh_berth carol keys >out &&
	test_grep "^carol ssh-ed25519 .* admin$" out
'

test_expect_success 'over ssh, keys add with empty stdin is refused' '
	cp "$AK" before &&
	test_expect_code 1 ssh_berth root-admin keys add </dev/null >out 2>err &&
	test_grep "^error: keys add: no key given" err &&
	test_cmp before "$AK"
'

test_expect_success 'over ssh, a bad key is refused with the reason' '
	cp "$AK" before &&
	echo "ssh-ed25519 AAAAnotakey x" |
		test_expect_code 1 ssh_berth root-admin keys add >out 2>err &&
	test_grep "^error: bad key data for .ssh-ed25519.$" err &&
	test_cmp before "$AK"
'

test_expect_success 'over ssh, an admin removes a key; it no longer works' '
	ssh_berth carol keys rm bob >out &&
	echo "removed bob ($(fingerprint bob))" >expect &&
	test_cmp expect out &&
	test_must_fail ssh_berth bob version 2>err &&
	test_grep "Permission denied" err &&
	test_expect_code 1 ssh_berth carol keys rm nobody 2>err &&
	test_grep "^error: no key named .nobody.$" err
'

test_expect_success 'local remove' '
	berth keys rm carol >out &&
	test_grep "^removed carol " out &&
	test_must_fail ssh_berth carol version 2>err &&
	berth keys >out &&
	test_grep_not "^carol " out
'

test_done
