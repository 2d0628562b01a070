# lib-ssh.sh: helpers for tests that talk to berth's SSH endpoint with the
# stock OpenSSH client.  Source after test-lib.sh; brings lib-daemon.sh.
#
#   make_key NAME               ssh-keygen an ed25519 key "NAME" (+ NAME.pub)
#   ssh_berth KEY ARGS...       ssh -i KEY git@127.0.0.1 -p $SSH_PORT ARGS
#   ssh_args KEY                the same options in the array SSH_ARGS

. "$TEST_DIR/lib-daemon.sh"

# Linux gives outgoing connections ports 32768-60999, and a port that one
# of them left in TIME_WAIT cannot be bound for a minute: on a busy host a
# random port up there is often taken.  Listen below that range.
low_free_port() {
	local p
	while :; do
		p=$(( 10000 + RANDOM % 10000 ))
		if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
			echo "$p"
			return
		fi
	done
}
: "${SSH_PORT:=$(low_free_port)}"
while :; do
	: "${HTTP_PORT:=$(low_free_port)}"
	[ "$HTTP_PORT" != "$SSH_PORT" ] && break
	HTTP_PORT=
done

make_key() {
	rm -f "$TRASH/$1" "$TRASH/$1.pub" &&
	ssh-keygen -q -t ed25519 -N '' -C "$1" -f "$TRASH/$1" >/dev/null
}

# ssh_args KEY: the client's options in the array SSH_ARGS, for "ssh ... &"
# where the test needs the ssh process's own pid.
ssh_args() {
	SSH_ARGS=(-F /dev/null -o StrictHostKeyChecking=no
		-o UserKnownHostsFile=/dev/null -o IdentitiesOnly=yes
		-o IdentityAgent=none -o LogLevel=ERROR -o BatchMode=yes
		-o ConnectTimeout=10
		-i "$TRASH/$1" -p "$SSH_PORT" git@127.0.0.1)
}

ssh_berth() {
	local key=$1
	shift
	ssh_args "$key"
	ssh "${SSH_ARGS[@]}" "$@"
}
