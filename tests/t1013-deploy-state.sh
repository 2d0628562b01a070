#!/bin/bash
# A running deploy's state, as apps and ps show it over SSH: which step it
# is in, what it waits for and for how long (the deploy state table,
# docs/architecture.md).  Gate files hold each step open; no sleeps.
. "$(dirname "$0")/test-lib.sh"
. "$TEST_DIR/lib-ssh.sh"

new_shared_dir || exit 1

# apps_says REGEX / ps_says APP REGEX: over SSH, a line matches
apps_says() { ssh_berth admin apps | grep -qE "$1"; }
ps_says() { ssh_berth admin ps "$1" | grep -qE "$2"; }
# state_time APP: the seconds ps gives the deploy's current state
state_time() {
	ssh_berth admin ps "$1" | sed -n '1s/.*(\([0-9]*\.[0-9]\) s), release [0-9]*$/\1/p'
}
# state_time_over APP SECONDS
state_time_over() {
	local t
	t=$(state_time "$1") && test -n "$t" &&
	awk -v t="$t" -v min="$2" 'BEGIN { exit !(t > min) }'
}

test_expect_success 'setup' '
	start_berth &&
	make_key admin &&
	berth keys add --admin "$TRASH/admin.pub" >out &&
	make_web_bundle gated.tar.gz v1 \
		"web: while [ ! -e $SHARED/web-gate ]; do sleep 0.1; done; exec python3 web.py" \
		"release: echo waiting; while [ ! -e $SHARED/release-gate ]; do sleep 0.1; done"
'

test_expect_success 'the release phase: its command, and for how long' '
	test_atexit "touch $SHARED/release-gate $SHARED/web-gate" &&
	{ berth deploy shown "$PWD/gated.tar.gz" >deploy.out 2>&1 & echo $! >deploy.pid; } &&
	retry_until 60 apps_says "^shown +deploying +- +-  \(deploying: release command \([0-9]+\.[0-9] s\)\)$" &&
	ps_says shown "^shown: deploying: release command \([0-9]+\.[0-9] s\), release 0$" &&
	retry_until 30 state_time_over shown 0.5
'

test_expect_success 'a slow health check: the process it waits for' '
	touch "$SHARED/release-gate" &&
	retry_until 60 ps_says shown "^shown: deploying: health check web\.1 \([0-9]+\.[0-9] s\), release 0$" &&
	apps_says "^shown +deploying +- +-  \(deploying: health check web\.1 \([0-9]+\.[0-9] s\)\)$" &&
	retry_until 30 state_time_over shown 0.5
'

test_expect_success 'once live, the state is gone' '
	touch "$SHARED/web-gate" &&
	wait "$(cat deploy.pid)" &&
	test_grep "Release 1 of shown is live" deploy.out &&
	apps_says "^shown +running +v1 +web\.1$" &&
	ps_says shown "^shown: running, release 1$"
'

test_done
