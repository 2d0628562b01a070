# lib-ssh.sh: helpers for tests that talk to berth's SSH endpoint with the
# stock OpenSSH client.  Source after test-lib.sh.
#
#   start_berth                 engine on free ports (from lib-daemon.sh)
#   make_key NAME               ssh-keygen an ed25519 key "NAME" (+ NAME.pub)
#   ssh_berth KEY ARGS...       ssh -i KEY git@127.0.0.1 -p $SSH_PORT ARGS
#   berth_local ARGS...         the local CLI on $BERTH_ROOT

if [ -f "$TEST_DIR/lib-daemon.sh" ]; then
	. "$TEST_DIR/lib-daemon.sh"
else
	# Until the shared daemon helper exists: the same contract, smaller.
	start_berth() {
		BERTH_ROOT=$TRASH/root
		SSH_PORT=$(free_port)
		HTTP_PORT=$(free_port)
		export BERTH_ROOT SSH_PORT HTTP_PORT
		mkdir -p "$BERTH_ROOT" &&
		"$BERTH" --root "$BERTH_ROOT" serve \
			--ssh-listen "127.0.0.1:$SSH_PORT" \
			--http-listen "127.0.0.1:$HTTP_PORT" \
			>"$TRASH/berth.out" 2>"$TRASH/berth.log" &
		BERTH_PID=$!
		test_atexit "kill $BERTH_PID; wait $BERTH_PID"
		retry_until 20 grep -q "berth: ready" "$TRASH/berth.out"
	}
fi

make_key() {
	rm -f "$TRASH/$1" "$TRASH/$1.pub" &&
	ssh-keygen -q -t ed25519 -N '' -C "$1" -f "$TRASH/$1" >/dev/null
}

ssh_berth() {
	local key=$1
	shift
	ssh -F /dev/null -o StrictHostKeyChecking=no \
		-o UserKnownHostsFile=/dev/null -o IdentitiesOnly=yes \
		-o IdentityAgent=none -o LogLevel=ERROR -o BatchMode=yes \
		-o ConnectTimeout=10 \
		-i "$TRASH/$key" -p "$SSH_PORT" git@127.0.0.1 "$@"
}

berth_local() {
	"$BERTH" --root "$BERTH_ROOT" "$@"
}
