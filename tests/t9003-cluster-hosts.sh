#!/bin/bash
# A cluster's hosts answer for the changes made on any of them, and the
# cluster stays whole when hosts or its database misbehave: config set,
# stop, start, restart and scale report each host of the group (done,
# failed and why, down); a change made while PostgreSQL is away waits for
# it, or fails having changed nothing; an app moved to another group
# stops where it was and starts there; a second host with the name of a
# live one is refused; a host taken out with "cluster rm" stays out across
# restarts until "cluster join".
#
# Hosts a and b are in group web, c in group api; each is a network
# namespace on a bridge, PostgreSQL runs in a namespace of its own.
. "$(dirname "$0")/test-lib.sh"
. "$TEST_DIR/lib-ssh.sh"
. "$TEST_DIR/lib-cluster.sh"

# in_background OUT CMD...: CMD's output in OUT, its exit code in OUT.rc
in_background() {
	local out=$1
	shift
	rm -f "$out.rc"
	("$@" >"$out" 2>&1; echo $? >"$out.rc") &
}

test_expect_success 'hosts a and b in group web, c in group api' '
	cluster_net_up a b c e &&
	cluster_pg_start &&
	for h in a b c; do
		write_host_yaml $h &&
		echo "cluster_wait: 20s" >>"$TRASH/host-$h/berth.yaml" || return 1
	done &&
	sed -i "s/^groups: .*/groups: [api]/" "$TRASH/host-c/berth.yaml" &&
	start_hosts a b c &&
	test -s "$TRASH/host-a/cluster/host-id" &&
	make_web_bundle shop1.tar.gz v1 \
		"web: grep -q \"p${CL_ID}\${FAIL_HOST:-none}\" /proc/net/dev && exit 3; exec python3 web.py" &&
	host_berth a deploy shop "$TRASH/shop1.tar.gz" >out 2>&1 &&
	test_grep "^-----> host-b: release 1 of shop is live$" out &&
	serves a v1 && retry_until 90 serves b v1 &&
	! app_on c "^shop "
'

test_expect_success 'config set on B: one line per host of the group as it applies it' '
	host_berth b config shop set GREETING=each >out 2>&1 &&
	test_grep "^-----> host-a: shop has its new config$" out &&
	test_grep "^-----> host-b: shop has its new config$" out &&
	test_grep "^-----> config: done on every host of the group of shop that is up$" out &&
	! grep "host-c" out &&
	has_env a GREETING=each && has_env b GREETING=each
'

test_expect_success 'a config change a live host fails: the command fails and says why' '
	test_must_fail host_berth a config shop set FAIL_HOST=b >out 2>&1 &&
	test_grep "^-----> host-a: shop has its new config$" out &&
	test_grep "^-----> host-b: failed: " out &&
	test_grep "the config of shop failed on host-b: " out &&
	has_env a FAIL_HOST=b &&
	! has_env b FAIL_HOST=b &&
	serves b v1 &&
	host_berth a config shop unset FAIL_HOST >out3 2>&1 &&
	test_grep "^-----> host-b: shop has its new config$" out3 &&
	! has_env b FAIL_HOST=b
'

test_expect_success 'stop, start, restart, scale: each host reports' '
	host_berth a stop shop >out4 2>&1 &&
	test_grep "^-----> host-a: shop is stopped$" out4 &&
	test_grep "^-----> host-b: shop is stopped$" out4 &&
	app_on b "^shop +stopped" &&
	host_berth b start shop >out 2>&1 &&
	test_grep "^-----> host-a: shop is started$" out &&
	test_grep "^-----> host-b: shop is started$" out &&
	serves a v1 && serves b v1 &&
	host_berth a restart shop >out 2>&1 &&
	test_grep "^-----> host-a: shop is restarted$" out &&
	test_grep "^-----> host-b: shop is restarted$" out &&
	test_grep "^-----> restart: done on every host" out &&
	host_berth b scale shop web=2 >out 2>&1 &&
	test_grep "^-----> host-a: shop is scaled$" out &&
	test_grep "^-----> host-b: shop is scaled$" out &&
	host_berth a ps shop >ps &&
	test_grep "^host-b +web\.2 " ps &&
	host_berth b scale shop web=1 >out 2>&1
'

test_expect_success 'a host that is down is said so; it follows when it is back' '
	crash_host b &&
	retry_until 60 is_state b down &&
	host_berth a stop shop >out 2>&1 &&
	test_grep "^-----> host-a: shop is stopped$" out &&
	test_grep "^-----> host-b: down; it follows when it is back$" out &&
	start_host b &&
	retry_until 90 app_on b "^shop +stopped" &&
	host_berth a start shop >out 2>&1 &&
	test_grep "^-----> host-b: shop is started$" out &&
	serves b v1
'

test_expect_success 'a second host named like a live one is refused and takes nothing over' '
	write_host_yaml e &&
	sed -i "s/^host_name: .*/host_name: host-a/" "$TRASH/host-e/berth.yaml" &&
	start_host e &&
	retry_until 60 grep -q "host name .host-a. is held by another live host" "$TRASH/host-e.log" &&
	test_must_fail host_berth e cluster status 2>err &&
	test_grep "host name .host-a. is held by another live host of the cluster: give this host a .host_name:. of its own" err &&
	host_berth b cluster status >status &&
	test_grep "^host-a +up .* $NET.1 " status &&
	test "$(grep -c "^host-a " status)" = 1 &&
	test_must_fail host_berth e deploy shop "$TRASH/shop1.tar.gz" 2>err &&
	test_grep "is held by another live host" err &&
	! app_on e "^shop " &&
	stop_host e &&
	serves a v1
'

test_expect_success 'the same host (its host id file) takes its name back at once' '
	id=$(cat "$TRASH/host-a/cluster/host-id") &&
	crash_host a &&
	start_hosts a &&
	test "$(cat "$TRASH/host-a/cluster/host-id")" = "$id" &&
	! grep "is held by another live host" "$TRASH/host-a.log" &&
	retry_until 60 serves a v1
'

test_expect_success 'a change while the database is away waits for it, then goes through' '
	cluster_pg_halt &&
	retry_until 30 eval "host_berth a cluster status 2>&1 | grep -q \"cannot reach the cluster database\"" &&
	in_background wait.out host_berth a config shop set WAITED=yes &&
	retry_until 30 grep -q "^-----> the cluster database is unreachable (.*): waiting up to 20 s" wait.out &&
	! has_env a WAITED=yes &&
	cluster_pg_run &&
	retry_until 60 test -s wait.out.rc &&
	test "$(cat wait.out.rc)" = 0 &&
	test_grep "^-----> the cluster database answers again$" wait.out &&
	test_grep "^-----> host-b: shop has its new config$" wait.out &&
	has_env a WAITED=yes && has_env b WAITED=yes
'

test_expect_success 'the database away for longer than cluster_wait: a clear error, nothing changed' '
	cluster_pg_halt &&
	test_must_fail host_berth a config shop set NEVER=set >out 2>&1 &&
	test_grep "^-----> still no cluster database" out &&
	test "$(tail -n 1 out | grep -c "cannot reach the cluster database for 20 s (.*): nothing was changed")" = 1 &&
	! has_env a NEVER=set &&
	host_berth a config shop >env &&
	! grep NEVER env &&
	cluster_pg_run &&
	retry_until 60 is_state a up &&
	retry_until 60 is_state b up &&
	serves a v1 && serves b v1
'

# Cut off right after the change went live on A: its store hangs until
# the connection is noticed dead (tcp_user_timeout), then waits for the
# database; A's veth back, it is stored and B takes it.
test_expect_success 'A cut off while storing a change: stored once it is back' '
	test_when_finished "ip link set $(host_veth a) up" &&
	ip link set "$(host_veth a)" down &&
	in_background cut.out host_berth a config shop set CUT=stored &&
	retry_until 90 grep -q "^-----> the cluster database is unreachable" cut.out &&
	ip link set "$(host_veth a)" up &&
	retry_until 90 test -s cut.out.rc &&
	test "$(cat cut.out.rc)" = 0 &&
	test_grep "^-----> host-b: shop has its new config$" cut.out &&
	has_env a CUT=stored && has_env b CUT=stored
'

test_expect_success 'A cut off for longer than cluster_wait: it goes back, nothing changed' '
	test_when_finished "ip link set $(host_veth a) up" &&
	ip link set "$(host_veth a)" down &&
	test_must_fail host_berth a config shop set LOST=1 >out 2>&1 &&
	test_grep "nothing was changed" out &&
	ip link set "$(host_veth a)" up &&
	retry_until 60 eval "! has_env a LOST=1" &&
	has_env a CUT=stored &&
	! has_env b LOST=1 &&
	retry_until 60 is_state a up &&
	host_berth b config shop >env &&
	! grep LOST env &&
	serves a v1
'

test_expect_success 'apps:set-group: the app stops on the old group and starts on the new' '
	host_berth b apps:set-group shop api &&
	retry_until 90 serves c v1 &&
	retry_until 60 app_on a "^shop +stopped" &&
	retry_until 60 app_on b "^shop +stopped" &&
	retry_until 30 eval "! host_berth a cluster status | grep -q \"^host-a .*shop@\"" &&
	has_env c GREETING=each &&
	test_grep "left this host.s groups: stopping it here" "$TRASH/host-a.log"
'

test_expect_success 'cluster rm C: it stays out across a restart until cluster join' '
	host_berth a cluster rm host-c >out 2>&1 &&
	test_grep "host-c stopped its apps and left the cluster" out &&
	app_on c "^shop +stopped" &&
	# A sees the row gone as C commits its delete; C writes the mark
	# once the answer to its delete comes back, a moment later
	retry_until 30 test -f "$TRASH/host-c/cluster/removed" &&
	stop_host c &&
	start_host c &&
	test_grep "removed from the cluster ..cluster rm..: run .cluster join. on it" "$TRASH/host-c.log" &&
	test_must_fail host_berth c cluster status 2>err &&
	test_grep "run .cluster join. on it to join again" err &&
	app_on c "^shop +stopped" &&
	! host_berth a cluster status | grep "^host-c " &&
	test_must_fail host_berth a cluster join 2>err &&
	test_grep "in the cluster already" err &&
	host_berth c cluster join >out 2>&1 &&
	test_grep "Joining the cluster as host-c" out &&
	! test -f "$TRASH/host-c/cluster/removed" &&
	retry_until 60 is_state c up &&
	retry_until 90 serves c v1
'

test_expect_success 'back to group web: a and b start it, c stops it' '
	host_berth c apps:set-group shop web &&
	retry_until 90 serves a v1 &&
	retry_until 90 serves b v1 &&
	retry_until 60 app_on c "^shop +stopped" &&
	has_env a WAITED=yes
'

test_done
