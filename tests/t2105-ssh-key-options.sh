#!/bin/bash
# authorized_keys options at the real SSH door: from= and expiry-time= are
# honoured, an option berth cannot honour refuses the key (with a log
# line) instead of giving it full rights, and a name is one key's only.
. "$(dirname "$0")/test-lib.sh"
. "$TEST_DIR/lib-ssh.sh"

start_berth
AK=$BERTH_ROOT/keys/authorized_keys

test_expect_success 'setup: keys' '
	for k in admin near far old forced twin named; do
		make_key $k || return 1
	done &&
	berth keys add --admin "$TRASH/admin.pub" >out
'

test_expect_success 'from= lets a key in from its addresses only' '
	echo "from=\"127.0.0.0/8\" $(cat "$TRASH/near.pub")" >near.opt &&
	berth keys add near.opt >out &&
	echo "from=\"10.0.0.0/8,!127.0.0.1\" $(cat "$TRASH/far.pub")" >far.opt &&
	berth keys add far.opt >out &&
	grep "^from=\"10.0.0.0/8,!127.0.0.1\" ssh-ed25519 .* far$" "$AK" &&
	ssh_berth near apps >out &&
	test_must_fail ssh_berth far apps 2>err &&
	retry_until 10 grep -q "key .far. is not allowed from 127.0.0.1" \
		"$TRASH/berth.log"
'

test_expect_success 'keys lists the options' '
	berth keys >out &&
	test_grep "^near ssh-ed25519 SHA256:[^ ]* from=127.0.0.0/8$" out &&
	test_grep "^far ssh-ed25519 SHA256:[^ ]* from=10.0.0.0/8,!127.0.0.1$" out
'

test_expect_success 'an expired key is refused' '
	echo "expiry-time=\"20200101\" $(cat "$TRASH/old.pub")" >old.opt &&
	berth keys add old.opt >out &&
	test_must_fail ssh_berth old apps 2>err &&
	retry_until 10 grep -q "key .old. expired at 20" "$TRASH/berth.log"
'

test_expect_success 'keys add refuses options berth cannot honour' '
	cp "$AK" before &&
	for opt in "command=\"apps\"" "permitopen=\"localhost:80\"" \
		"environment=\"A=b\"" "tunnel=\"1\"" "cert-authority"; do
		echo "$opt $(cat "$TRASH/forced.pub")" >forced.opt &&
		test_must_fail berth keys add forced.opt 2>err &&
		test_grep "cannot be honoured by berth" err || return 1
	done &&
	test_cmp before "$AK"
'

test_expect_success 'a line with command= put in by hand gives no access, and says so' '
	echo "command=\"apps\" $(cat "$TRASH/forced.pub")" >>"$AK" &&
	test_must_fail ssh_berth forced apps 2>err &&
	retry_until 10 grep -q "key option .command. cannot be honoured by berth; key refused" \
		"$TRASH/berth.log"
'

test_expect_success 'a line with permitopen= put in by hand gives no access either' '
	make_key opener &&
	echo "permitopen=\"localhost:80\" $(cat "$TRASH/opener.pub")" >>"$AK" &&
	test_must_fail ssh_berth opener apps 2>err &&
	retry_until 10 grep -q "key option .permitopen. cannot be honoured by berth; key refused" \
		"$TRASH/berth.log"
'

test_expect_success 'restrict is honoured: the key works, but gets no terminal' '
	make_key restricted &&
	echo "restrict $(cat "$TRASH/restricted.pub")" >restricted.opt &&
	berth keys add restricted.opt >out &&
	# a key without options that asks for a terminal gets one, and is
	# told it is for run and pg:psql only
	ssh_args near &&
	test_must_fail ssh -tt "${SSH_ARGS[@]}" version >tty.out 2>&1 &&
	test_grep "a terminal \(ssh -t\) is only for" tty.out &&
	# restrict: the request is refused, the command runs on pipes
	ssh_args restricted &&
	ssh -tt "${SSH_ARGS[@]}" version >notty.out 2>notty.err &&
	test_grep "^berth [0-9]" notty.out &&
	! grep -q "$(printf "\r")" notty.out
'

test_expect_success 'a name is one key only' '
	sed "s/ named\$/ near/" "$TRASH/named.pub" >dup.pub &&
	test_must_fail berth keys add dup.pub 2>err &&
	test_grep "a key named .near. already exists" err &&
	berth keys add "$TRASH/twin.pub" >out &&
	sed "s/ named\$/ twin/" "$TRASH/named.pub" >>"$AK" &&
	ssh_berth twin apps >out &&
	test_must_fail ssh_berth named apps 2>err &&
	retry_until 10 grep -q "a key named .twin. is already on an earlier line; key refused" \
		"$TRASH/berth.log"
'

test_done
