#!/bin/bash
# A cluster on one machine: each host is a network namespace on a bridge,
# with its own berth engine, state folder, nginx and ports; one PostgreSQL
# (in a namespace of its own, with a password) is the cluster's source of
# truth.  A release deployed on A runs on A, B and C; a config change on B
# reaches all; C killed with -9 shows down while A and B keep serving, and
# catches up when it comes back; a fourth host joins by itself; a release
# that fails on B stops the rollout and A goes back (the push reports each
# host); B cut off the database during a config change converges once it
# is back; "rollout: parallel" does not wait host by host.
. "$(dirname "$0")/test-lib.sh"
. "$TEST_DIR/lib-ssh.sh"
. "$TEST_DIR/lib-cluster.sh"

test_expect_success 'three hosts and a database on a bridge' '
	cluster_net_up a b c &&
	in_ns a ip route get $DB_ADDR >route &&
	test_grep "dev p${CL_ID}a" route
'

test_expect_success 'PostgreSQL with a password, on the bridge only' '
	cluster_pg_start &&
	! in_ns a env PGPASSWORD=wrong psql -XqtA -h $DB_ADDR -U berth \
		-d berth_cluster -c "SELECT 1" 2>err &&
	test_grep "password authentication failed" err
'

test_expect_success 'berth.yaml refuses a cluster password others can read' '
	write_host_yaml a &&
	chmod 644 "$TRASH/host-a/berth.yaml" &&
	test_must_fail "$BERTH" --root "$TRASH/host-a" config-check 2>err &&
	test_grep "cluster.*holds a password.*chmod 600" err &&
	chmod 600 "$TRASH/host-a/berth.yaml" &&
	"$BERTH" --root "$TRASH/host-a" config-check >out &&
	test_grep "^cluster: \(hidden" out &&
	test_grep "^groups: \"web\"" out
'

test_expect_success 'three hosts join; cluster status shows them up' '
	for h in a b c; do
		write_host_yaml $h || return 1
	done &&
	start_hosts a b c &&
	host_berth b cluster status >out &&
	test_grep "^HOST +STATE +HEARTBEAT +VERSION +GROUPS +ADDRESS +APPS" out &&
	test_grep "^host-b +up +[0-9]+s ago +[^ ]+ +web +$NET.2 " out
'

test_expect_success 'a deploy on A runs on A, B and C' '
	make_web_bundle shop1.tar.gz v1 &&
	host_berth a deploy shop "$TRASH/shop1.tar.gz" >out 2>&1 &&
	test_grep "Release 1 of shop is live" out &&
	test_grep "^-----> Cluster release 1 of shop: rolling out to the hosts of group web .one host at a time.$" out &&
	test_grep "^-----> host-b: release 1 of shop is live$" out &&
	test_grep "^-----> host-c: release 1 of shop is live$" out &&
	test_grep "^-----> release 1 of shop is on every host of its group that is up$" out &&
	serves a v1 &&
	retry_until 90 serves b v1 &&
	retry_until 90 serves c v1 &&
	retry_until 30 eval "host_berth a cluster status | grep -q \"^host-c .*shop@1\""
'

test_expect_success 'config set on B reaches every host' '
	host_berth b config shop set GREETING=hello-cluster >out 2>&1 &&
	has_env b GREETING=hello-cluster &&
	retry_until 90 has_env a GREETING=hello-cluster &&
	retry_until 90 has_env c GREETING=hello-cluster &&
	host_berth c config shop get GREETING >val &&
	test "$(cat val)" = hello-cluster
'

test_expect_success 'apps:set-group: clear errors' '
	test_must_fail host_berth a apps:set-group nosuchapp web 2>err &&
	test_grep "app .nosuchapp. does not exist" err &&
	test_must_fail host_berth a apps:set-group shop "Bad Group" 2>err &&
	test_grep "invalid group" err &&
	host_berth a apps:set-group shop web
'

# over SSH to host A (its sshd listens on 127.0.0.1:2222 in its namespace)
ssh_a() {
	local key=$1
	shift
	SSH_PORT=2222 ssh_args "$key"
	in_ns a ssh "${SSH_ARGS[@]}" "$@"
}

test_expect_success 'over ssh: admins see the cluster, other keys may not' '
	make_key admin && make_key dev &&
	host_berth a keys add --admin "$TRASH/admin.pub" >/dev/null &&
	host_berth a keys add "$TRASH/dev.pub" >/dev/null &&
	ssh_a admin cluster status >out &&
	test_grep "^host-c +up" out &&
	test_must_fail ssh_a dev cluster status >out 2>err &&
	test_grep "only admin keys may see or change the cluster" err &&
	test_must_fail ssh_a dev apps:set-group shop default 2>err &&
	test_grep "no access to app .shop.|only admin keys" err &&
	host_berth a cluster status >out &&
	test_grep "^host-a .* shop@1" out
'

test_expect_success 'C killed with -9: shown down, A and B keep serving' '
	crash_host c &&
	retry_until 60 is_state c down &&
	is_state a up &&
	serves a v1 && serves b v1
'

test_expect_success 'a release while C is down goes to A and B' '
	make_web_bundle shop2.tar.gz v2 &&
	host_berth a deploy shop "$TRASH/shop2.tar.gz" >out 2>&1 &&
	test_grep "^-----> host-b: release 2 of shop is live$" out &&
	test_grep "^-----> host-c: down; it takes release 2 when it is back$" out &&
	serves a v2 &&
	retry_until 90 serves b v2 &&
	has_env b GREETING=hello-cluster
'

# What the killed engine left runs on: its apps and its nginx.  Its
# nginx master is killed too and its pid file removed (an orphaned master
# that no init reaps stays a zombie, which the pid file cannot tell from
# a live one): the new engine finds the workers that still hold
# 127.0.0.1:8080 by the log they keep open, stops them, and starts.
test_expect_success 'C catches up on restart, past what its killed engine left' '
	pid=$(cat "$TRASH/host-c/nginx/logs/nginx.pid") &&
	kill -KILL "$pid" &&
	rm "$TRASH/host-c/nginx/logs/nginx.pid" &&
	start_host c &&
	test_grep "stopping stale nginx workers .group $pid, found by its open log" \
		"$TRASH/host-c.log" &&
	retry_until 60 is_state c up &&
	retry_until 90 serves c v2 &&
	has_env c GREETING=hello-cluster
'

test_expect_success 'a fourth host joins and runs the group'\''s apps' '
	add_ns d &&
	write_host_yaml d &&
	echo "rollout: parallel" >>"$TRASH/host-d/berth.yaml" &&
	start_hosts d &&
	retry_until 90 serves d v2 &&
	has_env d GREETING=hello-cluster
'

test_expect_success 'a release that fails on B stops the rollout; A goes back' '
	make_web_bundle shop3.tar.gz v3 \
		"web: grep -q p${CL_ID}b /proc/net/dev && exit 3; exec python3 web.py" &&
	test_must_fail host_berth a deploy shop "$TRASH/shop3.tar.gz" >out 2>&1 &&
	test_grep "Release [0-9]* of shop is live" out &&
	test_grep "^-----> host-b: release 3 of shop failed here; the rollout stops$" out &&
	test_grep "^-----> host-a: went back to the release before$" out &&
	test_grep "release 3 of shop failed on host-b: the rollout stopped" out &&
	! grep "host-[cd]: release 3 of shop is live" out &&
	host_berth a cluster status >status &&
	test_grep "^host-b .*failed 3" status &&
	serves a v2 &&
	serves b v2 && serves c v2 && serves d v2 &&
	has_env a GREETING=hello-cluster
'

test_expect_success 'B cut off the database during a config change converges' '
	test_when_finished "ip link set v${CL_ID}b up" &&
	ip link set "v${CL_ID}b" down &&
	host_berth a config shop set CUT=while-away >out 2>&1 &&
	retry_until 90 has_env c CUT=while-away &&
	retry_until 90 has_env d CUT=while-away &&
	retry_until 60 is_state b down &&
	! has_env b CUT=while-away &&
	ip link set "v${CL_ID}b" up &&
	retry_until 90 is_state b up &&
	retry_until 90 has_env b CUT=while-away &&
	serves b v2
'

# D publishes with "rollout: parallel": B and C do not wait for A, which
# never gets healthy; A's failure still brings every host back.
test_expect_success 'rollout: parallel; a failure still brings every host back' '
	make_web_bundle shop4.tar.gz v4 \
		"web: grep -q p${CL_ID}a /proc/net/dev && exec sleep 600; exec python3 web.py" &&
	test_must_fail host_berth d deploy shop "$TRASH/shop4.tar.gz" >out 2>&1 &&
	test_grep "^-----> Cluster release 4 of shop: rolling out to the hosts of group web .all at once.$" out &&
	test_grep "^-----> host-b: release 4 of shop is live$" out &&
	test_grep "^-----> host-a: release 4 of shop failed here; the rollout stops$" out &&
	test_grep "^-----> host-b: went back to the release before$" out &&
	test_grep "^-----> host-d: went back to the release before$" out &&
	serves a v2 && serves b v2 && serves c v2 && serves d v2
'

# ps_on HOST REGEX: that host's line of "ps shop" (asked on that host)
# matches
ps_on() { host_berth "$1" ps shop | grep -qE "^host-$1 +$2"; }
# said_on HOST TEXT: the app's log on that host has the line
said_on() { grep -q "$2" "$TRASH/host-$1/logs/shop/app.log"; }

test_expect_success 'stop on C stops the app on every host; start on B starts it' '
	host_berth c stop shop >out 2>&1 &&
	app_on c "^shop +stopped" &&
	retry_until 60 app_on a "^shop +stopped" &&
	retry_until 60 app_on b "^shop +stopped" &&
	retry_until 60 app_on d "^shop +stopped" &&
	! get a / &&
	host_berth b start shop >out 2>&1 &&
	serves b v2 &&
	retry_until 60 serves a v2 &&
	retry_until 60 serves c v2 &&
	retry_until 60 serves d v2
'

test_expect_success 'scale on B reaches every host' '
	host_berth b scale shop web=2 >out 2>&1 &&
	ps_on b "web\.2 " &&
	retry_until 90 ps_on a "web\.2 " &&
	retry_until 90 ps_on c "web\.2 " &&
	retry_until 90 ps_on d "web\.2 "
'

test_expect_success 'restart on A restarts the app on every host, host by host' '
	host_berth a restart shop >out 2>&1 &&
	retry_until 90 said_on b "cluster: restarting, as the cluster says" &&
	retry_until 90 said_on c "cluster: restarting, as the cluster says" &&
	retry_until 90 said_on d "cluster: restarting, as the cluster says" &&
	! said_on a "cluster: restarting, as the cluster says" &&
	for h in b c d; do
		grep "restarting .shop., as the cluster says" "$TRASH/host-$h.log" |
			cut -c 1-20 || return 1
	done >times &&
	test "$(wc -l <times)" = 3 &&
	sort -c times &&
	serves a v2 && serves b v2 && serves c v2 && serves d v2 &&
	ps_on c "web\.2 "
'

test_expect_success 'ps, status and logs on any host: every host, with its name' '
	host_berth c ps shop >ps &&
	test_grep "^HOST +PROCESS +PID +PORT +STATE +UPTIME +RESTARTS$" ps &&
	for h in a b c d; do
		test_grep "^host-$h +web\.1 +[0-9]+ +[0-9]+ +up +[0-9]+s +[0-9]+$" ps &&
		test_grep "^host-$h +web\.2 " ps || return 1
	done &&
	host_berth d status shop >status &&
	test_grep "^HOST +PROCESS +PID +PORT +STATE +UPTIME +RESTARTS$" status &&
	for h in a b c d; do
		test_grep "^host-$h +web\.1 +[0-9]+ +[0-9]+ +up " status || return 1
	done &&
	host_berth b logs shop -n 200 >logs &&
	for h in a b c d; do
		test_grep "^[0-9T:-]+Z host-$h " logs || return 1
	done &&
	cut -d " " -f 1 logs >times &&
	sort -c times &&
	test_grep "^[0-9T:-]+Z host-d berth cluster: restarting, as the cluster says" logs
'

test_expect_success 'git push to A: the pusher hears each host of the group' '
	git init -q -b main blog &&
	cp "$TOP/tests/apps/web.py" blog/ &&
	echo b1 >blog/VERSION &&
	echo "web: python3 web.py" >blog/Procfile &&
	git -C blog add -A &&
	git -C blog commit -q -m first &&
	in_ns a env GIT_SSH_COMMAND="ssh -F /dev/null -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o IdentitiesOnly=yes -o IdentityAgent=none -o LogLevel=ERROR -o BatchMode=yes -i $TRASH/admin -p 2222" \
		git -C blog push git@127.0.0.1:blog main >out 2>&1 &&
	test_grep "Release 1 of blog is live" out &&
	test_grep "^remote: -----> Cluster release 1 of blog: rolling out to the hosts of group web" out &&
	for h in b c d; do
		test_grep "^remote: -----> host-$h: release 1 of blog is live" out || return 1
	done &&
	test_grep "^remote: -----> release 1 of blog is on every host of its group that is up" out &&
	for h in a b c d; do
		host_get $h blog / | grep -q "^hello b1 " || return 1
	done
'

test_expect_success 'cluster rm: D stops its apps there first, then leaves' '
	test_must_fail host_berth a cluster rm nosuchhost 2>err &&
	test_grep "no host .nosuchhost. in the cluster" err &&
	test_must_fail host_berth a cluster rm host-a 2>err &&
	test_grep "is the host that answers" err &&
	host_berth a cluster rm host-d >out 2>&1 &&
	test_grep "^-----> host-d stopped its apps and left the cluster$" out &&
	app_on d "^shop +stopped" &&
	! get d / &&
	host_berth a cluster status >status &&
	! grep "^host-d " status &&
	test_grep "removed from the cluster" "$TRASH/host-d.log" &&
	test_must_fail host_berth d cluster status 2>err &&
	test_grep "removed from the cluster" err &&
	serves a v2 && serves b v2 && serves c v2
'

test_done
