#!/bin/bash
# A cluster's single-writer jobs, group routing and logs across hosts:
# three hosts as network namespaces on a bridge, one PostgreSQL.  A cron
# entry runs on one host of the group only (an advisory lock), and moves
# to another host when that host's engine is killed; with "route: group"
# host B's nginx passes requests to the other hosts' route listeners, so
# an app whose processes run only on C still answers on B (and host A,
# routing locally, does not); "logs -f" on A shows the lines of B and C
# as they come; a host that stops heartbeating leaves B's route.
. "$(dirname "$0")/test-lib.sh"
. "$TEST_DIR/lib-ssh.sh"
. "$TEST_DIR/lib-cluster.sh"

test_expect_success 'three hosts, B routes group-wide' '
	cluster_net_up a b c &&
	cluster_pg_start &&
	for h in a b c; do
		write_host_yaml $h || return 1
	done &&
	echo "route: group" >>"$TRASH/host-b/berth.yaml" &&
	start_hosts a b c &&
	grep -q "listen $NET.2:7080;" "$TRASH/host-b/nginx/nginx.conf"
'

test_expect_success 'route: must be local or group' '
	mkdir -p "$TRASH/badroute" &&
	printf "route: everywhere\n" >"$TRASH/badroute/berth.yaml" &&
	test_must_fail "$BERTH" --root "$TRASH/badroute" config-check 2>err &&
	test_grep "route.* must be local or group" err
'

# runs HOST: how many times cron.1 of "jobs" started on that host
runs() {
	local n
	n=$(grep -c "berth cron\.1: running" \
		"$TRASH/host-$1/logs/jobs/app.log" 2>/dev/null)
	echo "${n:-0}"
}
total_runs() { echo $(( $(runs a) + $(runs b) + $(runs c) )); }
runs_at_least() { [ "$(total_runs)" -ge "$1" ]; }
# runners: the hosts that ran it, e.g. "b"
runners() {
	local h
	for h in a b c; do
		[ "$(runs $h)" -gt 0 ] && printf %s $h
	done
	return 0
}
# took HOST: that host said it holds the entry's lock
took() {
	grep -q "cluster: cron\.1 (.\* \* \* \* \*.) runs on this host" \
		"$TRASH/host-$1/logs/jobs/app.log" 2>/dev/null
}
# took_over OWNER: the other hosts that took the entry, one a line
took_over() {
	local h
	for h in a b c; do
		[ $h != "$1" ] && took $h && echo $h
	done
	return 0
}
moved_from() { [ -n "$(took_over "$1")" ]; }
# ran_more HOST: it ran the entry since "counts" was written
ran_more() { [ "$(runs $1)" -gt "$(awk -v h=$1 '$1 == h { print $2 }' counts)" ]; }
ran_same() { [ "$(runs $1)" = "$(awk -v h=$1 '$1 == h { print $2 }' counts)" ]; }

test_expect_success 'a cron entry runs on one host of the group only' '
	make_web_bundle jobs1.tar.gz j1 "web: python3 web.py" \
		"cron: * * * * * echo cron-ran" &&
	host_berth a deploy jobs "$TRASH/jobs1.tar.gz" >out 2>&1 &&
	test_grep "^-----> release 1 of jobs is on every host of its group that is up$" out &&
	retry_until 200 runs_at_least 2 &&
	test "$(runners | wc -c)" = 1 &&
	owner=$(runners) &&
	echo "$owner" >owner &&
	took $owner &&
	test -z "$(took_over $owner)"
'

test_expect_success 'the engine that runs it is killed: another host takes it' '
	owner=$(cat owner) &&
	crash_host $owner &&
	for h in a b c; do
		echo "$h $(runs $h)" || return 1
	done >counts &&
	retry_until 60 moved_from $owner &&
	new=$(took_over $owner) &&
	test "$(echo "$new" | wc -l)" = 1 &&
	retry_until 150 ran_more $new &&
	for h in a b c; do
		[ $h = $new ] || ran_same $h || return 1
	done &&
	start_hosts $owner
'

# web.py with the host it runs on in its environment (ON_HOST=p<id>X);
# it exits at once on a host whose namespace has the gate interface
# (the app sees its host's /proc/net/dev, not the test's files)
where_bundle() {
	make_web_bundle where.tar.gz w1 \
		"web: grep -q \"g${CL_ID}:\" /proc/net/dev && exit 3; ON_HOST=\$(grep -o \"p${CL_ID}[a-d]\" /proc/net/dev) exec python3 web.py"
}
# gate HOST: its web processes of "where" exit at their next start
gate() { ip -n "$(ns "$1")" link add "g$CL_ID" type veth peer name "h$CL_ID"; }
answered_by() { host_get "$1" where /env | grep -qx "ON_HOST=p${CL_ID}$2"; }
pid_on() { host_berth "$1" ps where | awk -v h="host-$1" '$1 == h && $2 == "web.1" { print $3 }'; }
# crashing_on HOST: its nginx answers "app is crashing" for "where"
crashing_on() { grep -q "^route where crashing" "$TRASH/host-$1/nginx/routes"; }
# c_only: B routes "where" to C alone
c_only() { grep -q "^route where live [0-9]* host-c@$NET.3:7080$" "$TRASH/host-b/nginx/routes"; }

test_expect_success 'route: group: B sends requests to the other hosts too' '
	where_bundle &&
	host_berth a deploy where "$TRASH/where.tar.gz" >out 2>&1 &&
	test_grep "^-----> release 1 of where is on every host of its group that is up$" out &&
	retry_until 60 grep -q "^route where live [0-9]* .*host-a@$NET.1:7080 host-c@$NET.3:7080" \
		"$TRASH/host-b/nginx/routes" &&
	! grep -q "@" "$TRASH/host-a/nginx/routes" &&
	! grep -q "@" "$TRASH/host-c/nginx/routes" &&
	: >seen &&
	saw_all() {
		host_get b where /env | grep "^ON_HOST=" >>seen &&
		grep -q "p${CL_ID}a" seen && grep -q "p${CL_ID}b" seen &&
		grep -q "p${CL_ID}c" seen
	} &&
	retry_until 60 saw_all
'

test_expect_success 'an app whose processes run on C only answers on B' '
	gate a && gate b &&
	kill -KILL "$(pid_on a)" "$(pid_on b)" &&
	retry_until 60 crashing_on a &&
	retry_until 60 c_only &&
	for i in 1 2 3 4 5 6; do
		answered_by b c || return 1
	done &&
	test_must_fail host_get a where / &&
	in_ns a curl -s -H "Host: where.localhost" http://127.0.0.1:8080/ >page &&
	test_grep "app is crashing" page
'

test_expect_success 'logs -f on A follows the lines of B and C' '
	{ host_berth a logs jobs -f -n 0 >follow 2>&1 & } &&
	echo $! >follow.pid &&
	test_when_finished "kill \$(cat follow.pid) 2>/dev/null; true" &&
	# a request on B and one on C: their lines (router lines come in
	# batches) reach the follower on A
	followed() {
		host_get b jobs / >/dev/null && host_get c jobs / >/dev/null &&
		grep -q "^[0-9T:.-]*Z host-b " follow &&
		grep -q "^[0-9T:.-]*Z host-c router " follow
	} &&
	retry_until 30 followed &&
	! grep -qv "^[0-9T:.-]*Z host-[abc] " follow
'

test_expect_success 'a host that stops heartbeating leaves B'\''s route' '
	crash_host c &&
	retry_until 60 is_state c down &&
	retry_until 30 eval "! grep -q host-c@ \"$TRASH/host-b/nginx/routes\"" &&
	grep -q "^route jobs live [0-9]* [^ ]*:[0-9]* host-a@$NET.1:7080$" \
		"$TRASH/host-b/nginx/routes"
'


# psql_db SQL: as the database's owner, over its local socket
psql_db() {
	runuser -u nobody -- psql -XqtA -h "$TRASH/pg/run" -U berth \
		-d berth_cluster -c "$1"
}
# rollout_locked: a session holds the rollout lock of "jobs"
rollout_locked() {
	test "$(psql_db "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND classid = 1919251572 AND objid = hashtext('jobs')::oid AND granted")" = 1
}

# Another host's rollout of "jobs" is played by a session that holds
# the app's rollout lock.
test_expect_success 'a push while another host rolls the app out is refused' '
	{ psql_db "SELECT pg_advisory_lock(1919251572, hashtext('\''jobs'\'')), pg_sleep(300)" >/dev/null 2>&1 & } &&
	echo $! >locker.pid &&
	test_when_finished "kill \$(cat locker.pid) 2>/dev/null; true" &&
	retry_until 30 rollout_locked &&
	make_web_bundle jobs2.tar.gz j2 "web: python3 web.py" &&
	test_must_fail host_berth b deploy jobs "$TRASH/jobs2.tar.gz" >out 2>&1 &&
	test_grep "Release [0-9]* of jobs is live" out &&
	test_grep "a rollout of jobs from another host is under way: release [0-9]* is live on this host only" out &&
	! grep -q "Cluster release" out &&
	test_grep "cluster: release [0-9]* is live on this host only: a rollout from another host is under way" \
		"$TRASH/host-b/logs/jobs/app.log" &&
	psql_db "SELECT pg_terminate_backend(pid) FROM pg_locks WHERE locktype = '\''advisory'\'' AND classid = 1919251572" >/dev/null &&
	retry_until 30 eval "! rollout_locked" &&
	host_berth b deploy jobs "$TRASH/jobs2.tar.gz" >out 2>&1 &&
	test_grep "^-----> Cluster release 2 of jobs: rolling out" out &&
	retry_until 60 serves a j2 jobs &&
	retry_until 30 eval "! rollout_locked"
'

test_done
