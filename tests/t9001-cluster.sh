#!/bin/bash
# A cluster of three hosts on one machine: each host is a network
# namespace on a bridge, with its own berth engine, state folder, nginx and
# ports; one PostgreSQL (in a fourth namespace, with a password) is the
# cluster's source of truth.  A release deployed on A runs on A, B and C;
# a config change on B reaches all; C killed with -9 shows down while A
# and B keep serving, and catches up when it comes back.
. "$(dirname "$0")/test-lib.sh"

if [ "$(id -u)" != 0 ]; then
	test_skip 'network namespaces need root'
	test_done
fi
PGBIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
if [ -z "$PGBIN" ] || ! command -v nsenter >/dev/null ||
   ! command -v ip >/dev/null || ! command -v curl >/dev/null; then
	test_skip 'needs PostgreSQL, iproute2, nsenter and curl'
	test_done
fi
. "$TEST_DIR/lib-daemon.sh"

# Names unlikely to collide with another run: pid-based, 15 bytes at most.
ID=$(printf '%x' $$)
NET=10.231.$(( $$ % 200 + 20 ))
BR="bk$ID"
HOSTS="a b c"
DB_ADDR=$NET.10
PG_PASSWORD=$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')

ns() { echo "bk$ID-$1"; }
addr_of() { case $1 in a) echo $NET.1 ;; b) echo $NET.2 ;; c) echo $NET.3 ;; esac; }
# in_ns HOST CMD...: run CMD in that host's network namespace only (its
# mounts stay ours: cgroups and the state folders are the same)
in_ns() {
	local n=$1
	shift
	nsenter --net="/run/netns/$(ns "$n")" "$@"
}

cleanup_net() {
	local h
	for h in $HOSTS db; do
		ip netns del "$(ns "$h")" 2>/dev/null
	done
	ip link del "$BR" 2>/dev/null
	return 0
}
test_atexit cleanup_net

# add_ns NAME ADDR: a namespace with lo up and a veth on the bridge
add_ns() {
	local n=$(ns "$1")
	ip netns add "$n" &&
	ip link add "v$ID$1" type veth peer name "p$ID$1" &&
	ip link set "p$ID$1" netns "$n" &&
	ip link set "v$ID$1" master "$BR" up &&
	ip -n "$n" link set lo up &&
	ip -n "$n" addr add "$2/24" dev "p$ID$1" &&
	ip -n "$n" link set "p$ID$1" up
}

# host_berth HOST ARGS...: the CLI against that host's engine (a unix
# socket in its state folder, reachable from here)
host_berth() {
	local h=$1
	shift
	"$BERTH" --root "$TRASH/host-$h" "$@"
}

# start_host HOST: its engine, in its namespace; pid in $TRASH/host-H.pid
start_host() {
	local h=$1
	local root="$TRASH/host-$h" pid
	: >"$TRASH/host-$h.out"
	# nsenter execs berth: $! is the engine itself
	nsenter --net="/run/netns/$(ns "$h")" \
		"$BERTH" --root "$root" serve --ssh-listen 127.0.0.1:2222 \
		--http-listen 127.0.0.1:8080 \
		>>"$TRASH/host-$h.out" 2>>"$TRASH/host-$h.log" &
	pid=$!
	echo "$pid" >"$TRASH/host-$h.pid"
	retry_until 60 grep -q "^berth: ready" "$TRASH/host-$h.out" || {
		tail -n 30 "$TRASH/host-$h.log" >&2
		return 1
	}
}

stop_host() {
	local h=$1 pid i=0
	pid=$(cat "$TRASH/host-$h.pid" 2>/dev/null) && is_pid "$pid" || return 0
	kill -TERM "$pid" 2>/dev/null
	while kill -0 "$pid" 2>/dev/null && [ $i -lt 150 ]; do
		sleep 0.1
		i=$((i + 1))
	done
	kill -KILL "$pid" 2>/dev/null
	rm -f "$TRASH/host-$h.pid"
	BERTH_ROOT="$TRASH/host-$h" kill_leftovers
}

stop_pg() {
	[ -f "$TRASH/pg/data/postmaster.pid" ] &&
	kill -INT "$(head -n 1 "$TRASH/pg/data/postmaster.pid")" 2>/dev/null
	return 0
}

# get HOST PATH: the app "shop" through that host's nginx
get() {
	in_ns "$1" curl -sf --max-time 5 -H "Host: shop.localhost" \
		"http://127.0.0.1:8080$2"
}
serves() { get "$1" / | grep -q "^hello $2 "; }
has_env() { get "$1" /env | grep -qx "$2"; }

# up_count: hosts "cluster status" on A shows up
status_of() { host_berth a cluster status | awk -v h="host-$1" '$1 == h { print $2 }'; }
is_state() { test "$(status_of "$1")" = "$2"; }

test_expect_success 'three hosts and a database on a bridge' '
	ip link add "$BR" type bridge &&
	ip link set "$BR" up &&
	add_ns a $NET.1 && add_ns b $NET.2 && add_ns c $NET.3 &&
	add_ns db $DB_ADDR &&
	in_ns a ip route get $DB_ADDR >route &&
	test_grep "dev p${ID}a" route
'

test_expect_success 'PostgreSQL with a password, on the bridge only' '
	mkdir -p pg/run &&
	printf "%s\n" "$PG_PASSWORD" >pg/pw &&
	chown -R nobody pg &&
	runuser -u nobody -- "$PGBIN/initdb" -D pg/data -U berth \
		--pwfile=pg/pw --auth-local=trust --auth-host=scram-sha-256 \
		>pg/initdb.log 2>&1 &&
	echo "host all all $NET.0/24 scram-sha-256" >>pg/data/pg_hba.conf &&
	test_atexit stop_pg &&
	(in_ns db runuser -u nobody -- "$PGBIN/postgres" -D "$TRASH/pg/data" \
		-c listen_addresses=$DB_ADDR -c port=5432 \
		-c unix_socket_directories="$TRASH/pg/run" \
		>pg/log 2>&1 &) &&
	retry_until 60 in_ns a pg_isready -q -h $DB_ADDR -p 5432 &&
	runuser -u nobody -- psql -XqtA -h "$TRASH/pg/run" -U berth -d postgres \
		-c "CREATE DATABASE berth_cluster" &&
	! in_ns a env PGPASSWORD=wrong psql -XqtA -h $DB_ADDR -U berth \
		-d berth_cluster -c "SELECT 1" 2>err
'

CONNINFO="host=$DB_ADDR port=5432 dbname=berth_cluster user=berth password=$PG_PASSWORD connect_timeout=5"

write_host_yaml() {
	local h=$1
	local root="$TRASH/host-$h" base=$(( 20000 + (RANDOM % 120) * 100 ))
	mkdir -p "$root" &&
	cat >"$root/berth.yaml" <<-EOF &&
	port_min: $base
	port_max: $((base + 99))
	drain: 200ms
	watch: 300ms
	stop_timeout: 3s
	health_timeout: 30s
	cluster: $CONNINFO
	groups: [web]
	host_name: host-$h
	advertise_address: $2
	EOF
	chmod 600 "$root/berth.yaml"
}

test_expect_success 'berth.yaml refuses a cluster password others can read' '
	write_host_yaml a $NET.1 &&
	chmod 644 "$TRASH/host-a/berth.yaml" &&
	test_must_fail "$BERTH" --root "$TRASH/host-a" config-check 2>err &&
	test_grep "cluster.*holds a password.*chmod 600" err &&
	chmod 600 "$TRASH/host-a/berth.yaml" &&
	"$BERTH" --root "$TRASH/host-a" config-check >out &&
	test_grep "^cluster: \(hidden" out &&
	test_grep "^groups: \"web\"" out
'

test_expect_success 'three hosts join; cluster status shows them up' '
	for h in $HOSTS; do
		test_atexit "stop_host $h" &&
		write_host_yaml $h "$(addr_of $h)" &&
		start_host $h || return 1
	done &&
	retry_until 60 is_state a up &&
	retry_until 60 is_state b up &&
	retry_until 60 is_state c up &&
	host_berth b cluster status >out &&
	test_grep "^HOST +STATE +HEARTBEAT +VERSION +GROUPS +ADDRESS +APPS" out &&
	test_grep "^host-b +up +[0-9]+s ago +[^ ]+ +web +$NET.2 " out
'

test_expect_success 'a deploy on A runs on A, B and C' '
	make_web_bundle shop1.tar.gz v1 &&
	host_berth a deploy shop "$TRASH/shop1.tar.gz" >out 2>&1 &&
	test_grep "Release 1 of shop is live" out &&
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

test_expect_success 'C killed with -9: shown down, A and B keep serving' '
	kill -KILL "$(cat "$TRASH/host-c.pid")" &&
	retry_until 60 is_state c down &&
	is_state a up &&
	serves a v1 && serves b v1
'

test_expect_success 'a release while C is down goes to A and B' '
	make_web_bundle shop2.tar.gz v2 &&
	host_berth a deploy shop "$TRASH/shop2.tar.gz" >out 2>&1 &&
	serves a v2 &&
	retry_until 90 serves b v2 &&
	has_env b GREETING=hello-cluster
'

test_expect_success 'C catches up on restart' '
	BERTH_ROOT="$TRASH/host-c" kill_leftovers &&
	start_host c &&
	retry_until 60 is_state c up &&
	retry_until 90 serves c v2 &&
	has_env c GREETING=hello-cluster
'

test_done
