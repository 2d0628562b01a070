#!/bin/bash
# A session's root half reads no client content: the berth-ssh half
# parses the command and keys add's key text (tests/unit/privsep.c plays a
# hostile berth-ssh half against the real root half), and an import's
# tarball is unpacked by berth-ssh in a jail, then taken by root through
# descriptors that never follow a link; certs:add's PEM or tar is untarred
# and split by berth-ssh in a jail too (docs/security.md).
. "$(dirname "$0")/test-lib.sh"
. "$TEST_DIR/lib-ssh.sh"

start_berth || exit 1
make_key admin
make_key other
berth keys add --admin "$TRASH/admin.pub" >/dev/null

test_expect_success 'the berth-ssh half splits the command: same words, same refusals' '
	test_must_fail ssh_berth admin "config:set nosuch \"A=b c\"" 2>err &&
	test_grep "nosuch" err &&
	test_must_fail ssh_berth admin "apps; id" 2>err &&
	test_grep "^error: unsupported character .;. in command" err &&
	test_must_fail ssh_berth admin "apps \"unterminated" 2>err &&
	test_grep "^error: unterminated quote in command" err &&
	test_must_fail ssh_berth admin "" 2>err &&
	test_grep "^error: (no command given|no shell here)" err &&
	test_must_fail ssh_berth admin -tt apps </dev/null >err 2>&1 &&
	test_grep "a terminal \\(ssh -t\\) is only for pg:psql and run" err
'

test_expect_success 'keys add reads its key text in the berth-ssh half' '
	ssh_berth admin keys add --name other <"$TRASH/other.pub" >out &&
	test_grep "added other" out &&
	ssh_berth other apps >/dev/null &&
	printf "ssh-ed25519 AAAA\001x\n" >bad.pub &&
	test_must_fail ssh_berth admin keys add <bad.pub 2>err &&
	test_grep "^error: control character in key line" err &&
	test_must_fail ssh_berth admin keys add </dev/null 2>err &&
	test_grep "^error: keys add: no key given" err &&
	test_must_fail ssh_berth other keys add <"$TRASH/admin.pub" 2>err &&
	test_grep "^error: keys: only admin keys may manage keys" err
'

test_expect_success 'an import that is not a tarball: the error names no server path' '
	echo "not an archive" >junk.tar.gz &&
	test_must_fail ssh_berth admin import junk - <junk.tar.gz 2>err &&
	test_grep "^error: not a berth export" err &&
	test_grep_not "$BERTH_ROOT" err &&
	test $(wc -l <err) -eq 1 &&
	test ! -e "$BERTH_ROOT/apps/junk"
'

test_expect_success 'an export whose berth-export is a link is refused, not followed' '
	mkdir -p linked/releases/1 &&
	printf "berth-export 1\nrelease 1\n" >linked/env &&
	ln -s env linked/berth-export &&
	tar czf linked.tar.gz -C linked . &&
	test_must_fail ssh_berth admin import linked - <linked.tar.gz 2>err &&
	test_grep "^error: not a berth export \(no .berth-export 1. line" err &&
	test ! -e "$BERTH_ROOT/apps/linked" &&
	test -z "$(ls "$BERTH_ROOT/tmp" | grep import)"
'

test_expect_success 'an export with a link leading out of it is refused' '
	mkdir -p escape/releases/1 &&
	printf "berth-export 1\nrelease 1\n" >escape/berth-export &&
	ln -s /etc/shadow escape/env &&
	tar czf escape.tar.gz -C escape . &&
	test_must_fail ssh_berth admin import escape - <escape.tar.gz 2>err &&
	test_grep "^error: not a berth export: .*links outside" err &&
	test ! -e "$BERTH_ROOT/apps/escape"
'

test_expect_success 'an imported tree is root'"'"'s, none of it berth-ssh'"'"'s but its repository' '
	mkdir -p good/releases/1 good/repo.git &&
	printf "berth-export 1\nrelease 1\n" >good/berth-export &&
	echo "A=b" >good/env &&
	echo bundle >good/releases/1/bundle.tar.gz &&
	tar czf good.tar.gz -C good . &&
	{ ssh_berth admin import good - <good.tar.gz >out 2>err || :; } &&
	test -d "$BERTH_ROOT/apps/good" &&
	test -z "$(find "$BERTH_ROOT/apps/good" -path "$BERTH_ROOT/apps/good/repo.git" -prune -o -user berth-ssh -print)" &&
	test -z "$(find "$BERTH_ROOT/apps/good/repo.git" ! -user berth-ssh)" &&
	test -z "$(ls "$BERTH_ROOT/tmp" | grep import)"
'

test_expect_success 'certs:add: berth-ssh untars and splits it in a jail; one error line, nothing left' '
	echo "not a certificate" >junk.pem &&
	test_must_fail ssh_berth admin certs:add web <junk.pem 2>err &&
	test_grep "^error: certs:add: not PEM text nor a tar" err &&
	test_grep_not "$BERTH_ROOT" err &&
	test $(wc -l <err) -eq 1 &&
	mkdir -p bomb &&
	head -c 3000000 /dev/zero >bomb/server.crt &&
	tar czf bomb.tar.gz -C bomb server.crt &&
	test_must_fail ssh_berth admin certs:add web <bomb.tar.gz 2>err &&
	test_grep "^error: certs:add: the tar holds too much$" err &&
	mkdir -p linked &&
	ln -sf /etc/shadow linked/server.key &&
	tar cf linked.tar -C linked server.key &&
	test_must_fail ssh_berth admin certs:add web <linked.tar 2>err &&
	test_grep "^error: certs:add: " err &&
	test_grep_not "root:" err &&
	test $(wc -l <err) -eq 1 &&
	test -z "$(ls "$BERTH_ROOT/tmp" | grep certs)"
'

test_done
