#!/bin/bash
# Session processes drop to berth-ssh before they read what a client
# sends: an attacker who breaks libssh's key exchange or authentication
# gets an unprivileged user, not root (docs/security.md).
. "$(dirname "$0")/test-lib.sh"
. "$TEST_DIR/lib-ssh.sh"

# The pids of this engine's session processes (each: a root monitor and
# its berth-ssh child, same command line).
session_pids() {
	pgrep -f -- "session --root $BERTH_ROOT\$"
}

# Does process $1 hold a TCP socket (an SSH client's connection)?
holds_tcp() {
	local socks
	socks=$(ls -l "/proc/$1/fd" 2>/dev/null |
		sed -n "s/.*socket:\[\([0-9]*\)\].*/\1/p" | sort -u)
	[ -n "$socks" ] &&
	awk "NR > 1 { print \$10 }" /proc/net/tcp /proc/net/tcp6 | sort -u |
		comm -12 - <(echo "$socks") | grep -q .
}

# The session processes holding a client's connection, into file $1.
connection_holders() {
	local p
	: >"$1"
	for p in $(session_pids); do
		holds_tcp "$p" && echo "$p" >>"$1"
	done
	test -s "$1"
}

status_field() { sed -n "s/^$2:[[:space:]]*//p" "/proc/$1/status"; }

# Every process in file $1 runs as berth-ssh: all uids, gids, no
# supplementary groups, no capabilities.
all_berth_ssh() {
	local p
	for p in $(cat "$1"); do
		echo "$p: $(status_field "$p" Uid) / $(status_field "$p" Gid) / groups '$(status_field "$p" Groups)' / caps $(status_field "$p" CapEff)" &&
		test "$(status_field "$p" Uid)" = "$SSH_UID	$SSH_UID	$SSH_UID	$SSH_UID" &&
		test "$(status_field "$p" Gid)" = "$SSH_GID	$SSH_GID	$SSH_GID	$SSH_GID" &&
		test -z "$(status_field "$p" Groups)" &&
		test "$(status_field "$p" CapEff)" = 0000000000000000 || return 1
	done
}

# The connection's holders once the session is set up: the root process
# that accepted it hands it to its berth-ssh child and closes its own copy
# (it reads nothing from it meanwhile), so wait for that hand-over.
settled_holders() { connection_holders "$1" && all_berth_ssh "$1" >/dev/null; }

start_berth

test_expect_success 'the engine makes berth-ssh, a system user of its own' '
	make_key alice &&
	berth keys add --admin "$TRASH/alice.pub" &&
	getent passwd berth-ssh >pw &&
	IFS=: read -r name x SSH_UID SSH_GID gecos home shell <pw &&
	test "$gecos" = "berth SSH sessions" &&
	test "$SSH_UID" -ge 70000 && test "$SSH_UID" = "$SSH_GID" &&
	test "$shell" = /usr/sbin/nologin &&
	echo "$SSH_UID" >ssh-uid
'
SSH_UID=$(cat ssh-uid 2>/dev/null)
SSH_GID=$SSH_UID

test_expect_success 'a connection that sent only a banner is read by berth-ssh, not root' '
	exec 7<>"/dev/tcp/127.0.0.1/$SSH_PORT" &&
	test_when_finished "exec 7>&-" &&
	printf "SSH-2.0-probe_1.0\r\n" >&7 &&
	retry_until 30 settled_holders holders &&
	session_pids >all &&
	test "$(wc -l <all)" -ge 2 &&
	for p in $(cat all); do
		grep -qx "$p" holders ||
		{ test "$(status_field "$p" Uid | cut -f1)" = 0 &&
		  test_must_fail holds_tcp "$p"; } || return 1
	done
'

test_expect_success 'the berth-ssh half can read neither the host key nor authorized_keys' '
	test "$(stat -c %u "$BERTH_ROOT/host/ssh_host_ed25519_key")" = 0 &&
	test "$(stat -c %a "$BERTH_ROOT/host/ssh_host_ed25519_key")" = 600 &&
	test_must_fail setpriv --reuid="$SSH_UID" --regid="$SSH_GID" \
		--clear-groups cat "$BERTH_ROOT/host/ssh_host_ed25519_key" &&
	test_must_fail setpriv --reuid="$SSH_UID" --regid="$SSH_GID" \
		--clear-groups cat "$BERTH_ROOT/keys/authorized_keys"
'

test_expect_success 'after authentication the connection is still berth-ssh'"'"'s' '
	mkfifo in &&
	exec 8<>in &&
	test_when_finished "exec 8>&-" &&
	{ ssh_berth alice keys add <in 8>&- >out 2>err & } &&
	pid=$! &&
	retry_until 30 grep -q "alice runs .keys add." "$TRASH/berth.log" &&
	retry_until 30 connection_holders holders &&
	all_berth_ssh holders &&
	exec 8>&- &&
	{ wait $pid; true; } &&
	test_grep "error: " err
'

test_expect_success 'commands and refusals work through the two halves' '
	ssh_berth alice version >out &&
	test_grep "^berth " out &&
	test_expect_code 1 ssh_berth alice "logs; id" 2>err &&
	test_grep "unsupported character" err
'

test_done
