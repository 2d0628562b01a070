#!/bin/bash
# The SSH endpoint: who gets in, what a command may contain, exit statuses.
. "$(dirname "$0")/test-lib.sh"
. "$TEST_DIR/lib-ssh.sh"

start_berth

test_expect_success 'start the engine and register a key locally' '
	test -S "$BERTH_ROOT/run/berth.sock" &&
	make_key alice &&
	make_key mallory &&
	berth keys add "$TRASH/alice.pub" >out &&
	test_grep "^added alice \(SHA256:" out &&
	test -f "$BERTH_ROOT/host/ssh_host_ed25519_key" &&
	test "$(stat -c %a "$BERTH_ROOT/host/ssh_host_ed25519_key")" = 600
'

test_expect_success 'a registered key runs a command' '
	ssh_berth alice version >out 2>err &&
	test_grep "^berth [0-9]" out &&
	test_must_fail test -s err
'

test_expect_success 'the host key stays the same across connections' '
	ssh-keyscan -t ed25519 -p "$SSH_PORT" 127.0.0.1 2>/dev/null |
		cut -d" " -f2- >scan1 &&
	ssh-keyscan -t ed25519 -p "$SSH_PORT" 127.0.0.1 2>/dev/null |
		cut -d" " -f2- >scan2 &&
	test -s scan1 &&
	test_cmp scan1 scan2 &&
	ssh-keygen -y -f "$BERTH_ROOT/host/ssh_host_ed25519_key" |
		cut -d" " -f1-2 >host.pub &&
	test_cmp host.pub scan1
'

test_expect_success 'the host key survives a restart of the engine' '
	stop_berth &&
	start_berth &&
	ssh-keyscan -t ed25519 -p "$SSH_PORT" 127.0.0.1 2>/dev/null |
		cut -d" " -f2- >scan3 &&
	test_cmp scan1 scan3
'

test_expect_success 'any user name is accepted' '
	ssh -F /dev/null -o StrictHostKeyChecking=no \
		-o UserKnownHostsFile=/dev/null -o IdentitiesOnly=yes \
		-o IdentityAgent=none -o BatchMode=yes -i "$TRASH/alice" \
		-p "$SSH_PORT" deploy@127.0.0.1 version >out &&
	test_grep "^berth " out
'

test_expect_success 'an unregistered key is refused' '
	test_must_fail ssh_berth mallory version >out 2>err &&
	test_grep "Permission denied \(publickey\)" err &&
	test_must_fail test -s out
'

test_expect_success 'password and keyboard-interactive are refused, only publickey offered' '
	test_must_fail ssh_berth alice -v -o PreferredAuthentications=password \
		-o PasswordAuthentication=yes version >out 2>err &&
	tr -d "\r" <err >err.lf &&
	test_grep "Authentications that can continue: publickey$" err.lf &&
	test_grep "Permission denied \(publickey\)" err &&
	test_must_fail ssh_berth alice \
		-o PreferredAuthentications=keyboard-interactive,password \
		version 2>err &&
	test_grep "Permission denied \(publickey\)" err
'

test_expect_success 'no shell: plain ssh and ssh -t get one error line, status 1' '
	test_expect_code 1 ssh_berth alice </dev/null >out 2>err &&
	test_grep "^error: no shell here" err &&
	test "$(wc -l <err)" = 1 &&
	test_expect_code 1 ssh_berth alice -t </dev/null >out 2>err &&
	test_grep "^error: no shell here" err
'

test_expect_success 'a terminal is for pg:psql alone: ssh -t COMMAND is refused' '
	test_must_fail ssh_berth alice -tt version </dev/null >out 2>err &&
	test_grep "a terminal \(ssh -t\) is only for pg:psql" err &&
	test_must_fail grep -q "^berth [0-9]" out
'

test_expect_success 'unknown command: one line on stderr, status 100 (usage)' '
	test_expect_code 100 ssh_berth alice frobnicate now >out 2>err &&
	test_grep "^error: unknown command .frobnicate." err &&
	test "$(wc -l <err)" = 1 &&
	test_must_fail test -s out
'

test_expect_success 'exit status of commands reaches the client' '
	ssh_berth alice apps >out &&
	test_expect_code 1 ssh_berth alice logs nosuchapp 2>err &&
	test_grep "^error: .*nosuchapp" err
'

check_refused() {
	# check_refused CMD PATTERN: refused before anything runs
	ssh_berth alice "$1" >out 2>err
	ret=$?
	test $ret = 1 || { echo "status $ret for: $1"; return 1; }
	test_grep "$2" err &&
	test "$(wc -l <err)" = 1 &&
	test_must_fail test -s out
}

test_expect_success 'shell syntax is refused with a clear error' '
	check_refused "logs; id" "^error: unsupported character .;. in command$" &&
	check_refused "logs myapp | id" "^error: unsupported character .\|. in command$" &&
	check_refused "logs myapp && id" "^error: unsupported character .&. in command$" &&
	check_refused "logs \$(id)" "^error: unsupported character .\\$. in command$" &&
	check_refused "logs \`id\`" "^error: unsupported character .\`. in command$" &&
	check_refused "logs \"\$(id)\"" "^error: unsupported character .\\$. in command$" &&
	check_refused "logs myapp > /tmp/x" "^error: unsupported character .>. in command$" &&
	check_refused "logs < /etc/passwd" "^error: unsupported character .<. in command$" &&
	check_refused "logs '\''unterminated" "^error: unterminated quote in command$" &&
	check_refused "logs '\'\''" "^error: empty argument in command$"
'

test_expect_success 'nothing ran for the refused commands' '
	test_grep_not "uid=" out &&
	test_must_fail test -e /tmp/x.berth-should-not-exist
'

test_expect_success 'rm of a path-like name is refused and removes nothing' '
	test_expect_code 1 ssh_berth alice "rm ../../etc" >out 2>err &&
	test_grep "^error: rm: invalid app name" err &&
	test -d /etc &&
	test_expect_code 1 ssh_berth alice "rm ../../etc --force" 2>err &&
	test -d "$BERTH_ROOT/apps"
'

test_expect_success 'deploy of a server path is refused over ssh' '
	cp /etc/hostname hostname.before &&
	test_expect_code 1 ssh_berth alice deploy myapp /etc/hostname --move >out 2>err &&
	test_grep "^error: deploy is not available over ssh" err &&
	test_cmp hostname.before /etc/hostname &&
	berth apps >out &&
	test_grep_not "^myapp " out
'

test_expect_success 'quotes and backslashes group words, nothing is expanded' '
	test_expect_code 1 ssh_berth alice "logs '\''my app'\''" 2>err &&
	test_grep "my app" err &&
	test_expect_code 1 ssh_berth alice "logs my\\ app" 2>err2 &&
	test_cmp err err2
'

test_expect_success 'rm without --force asks, and stdin at EOF refuses' '
	test_expect_code 1 ssh_berth alice rm myapp </dev/null >out 2>err &&
	test_grep "To remove myapp, type its name:" err &&
	test_grep "^error: rm: confirm with --force or type the app name$" err &&
	echo wrong | test_expect_code 1 ssh_berth alice rm myapp >out 2>err &&
	test_grep "does not match .myapp., nothing removed" err
'

test_expect_success 'rm with the name typed back reaches the engine' '
	echo myapp | test_expect_code 1 ssh_berth alice rm myapp >out 2>err &&
	test_grep "app .myapp. does not exist" err
'

test_expect_success 'port forwarding is refused' '
	test_must_fail ssh_berth alice -W "127.0.0.1:$SSH_PORT" </dev/null \
		>out 2>err &&
	test_grep "forwarding failed" err &&
	test_must_fail test -s out &&
	port=$(free_port) &&
	test_must_fail ssh_berth alice -N -o ExitOnForwardFailure=yes \
		-R "127.0.0.1:$port:127.0.0.1:22" 2>err &&
	test_grep "forwarding failed" err
'

test_expect_success 'a removed key no longer gets in' '
	berth keys rm alice >out &&
	test_grep "^removed alice" out &&
	test_must_fail ssh_berth alice version 2>err &&
	test_grep "Permission denied" err
'

test_done
