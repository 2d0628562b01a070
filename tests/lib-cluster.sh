# lib-cluster.sh: hosts of a berth cluster on one machine (root only).
#
#   . "$TEST_DIR/lib-daemon.sh"; . "$TEST_DIR/lib-cluster.sh"
#   cluster_net_up a b c       # a bridge, one namespace per host and "db"
#   cluster_pg_start           # PostgreSQL in "db", password auth; CONNINFO
#   write_host_yaml a; start_host a; host_berth a cluster status
#   start_hosts a b c          # their engines, each waited for until up
#
# Sourcing it skips the test (test_skip) when not root, or when
# PostgreSQL, iproute2, nsenter or curl are missing.
#
# Each host is a network namespace on a bridge, with a private address
# ($NET.N, inside the namespaces only), its own engine, state folder
# ($TRASH/host-H), nginx on 127.0.0.1:8080 and ports.  Names carry this
# shell's pid, so parallel runs do not collide; cluster_cleanup (an exit
# hook) removes namespaces and the bridge even after a failure.

if [ "$(id -u)" != 0 ]; then
	test_skip 'network namespaces need root'
	test_done
fi
if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 ||
   ! command -v nsenter >/dev/null || ! command -v ip >/dev/null ||
   ! command -v curl >/dev/null; then
	test_skip 'needs PostgreSQL, iproute2, nsenter and curl'
	test_done
fi

CL_ID=$(printf '%x' $$)
NET=10.231.$(( $$ % 200 + 20 ))
CL_BR="bk$CL_ID"
DB_ADDR=$NET.10
CL_HOSTS=""
PGBIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)

ns() { echo "bk$CL_ID-$1"; }
addr_of() {
	case $1 in
	a) echo $NET.1 ;; b) echo $NET.2 ;; c) echo $NET.3 ;; d) echo $NET.4 ;;
	e) echo $NET.5 ;; db) echo $DB_ADDR ;;
	esac
}
# host_veth HOST: the host side of its veth (on the bridge)
host_veth() { echo "v$CL_ID$1"; }

# in_ns HOST CMD...: CMD in that host's network namespace only (mounts
# stay ours: cgroups and the state folders are the same)
in_ns() {
	local n=$1
	shift
	nsenter --net="/run/netns/$(ns "$n")" "$@"
}

cluster_cleanup() {
	local h
	for h in $CL_HOSTS; do
		ip netns del "$(ns "$h")" 2>/dev/null
	done
	ip link del "$CL_BR" 2>/dev/null
	return 0
}

# add_ns HOST: a namespace with lo up and a veth on the bridge
add_ns() {
	local n
	n=$(ns "$1")
	CL_HOSTS="$CL_HOSTS $1"
	ip netns add "$n" &&
	ip link add "v$CL_ID$1" type veth peer name "p$CL_ID$1" &&
	ip link set "p$CL_ID$1" netns "$n" &&
	ip link set "v$CL_ID$1" master "$CL_BR" up &&
	ip -n "$n" link set lo up &&
	ip -n "$n" addr add "$(addr_of "$1")/24" dev "p$CL_ID$1" &&
	ip -n "$n" link set "p$CL_ID$1" up
}

# cluster_net_up HOST...: the bridge, "db" and each host
cluster_net_up() {
	local h
	test_atexit cluster_cleanup
	ip link add "$CL_BR" type bridge &&
	ip link set "$CL_BR" up &&
	add_ns db || return 1
	for h in "$@"; do
		add_ns "$h" || return 1
	done
}

cluster_pg_stop() {
	[ -f "$TRASH/pg/data/postmaster.pid" ] &&
	kill -INT "$(head -n 1 "$TRASH/pg/data/postmaster.pid")" 2>/dev/null
	return 0
}

# cluster_pg_run: start the PostgreSQL cluster_pg_start made (again, after
# cluster_pg_halt) and wait until it answers
cluster_pg_run() {
	(in_ns db runuser -u nobody -- "$PGBIN/postgres" -D "$TRASH/pg/data" \
		-c listen_addresses="$DB_ADDR" -c port=5432 \
		-c unix_socket_directories="$TRASH/pg/run" \
		>>"$TRASH/pg/log" 2>&1 &) &&
	retry_until 60 in_ns db pg_isready -q -h "$DB_ADDR" -p 5432
}

# cluster_pg_halt: stop it (fast shutdown: connections are cut) and wait
# until it is gone
cluster_pg_halt() {
	local pid
	pid=$(head -n 1 "$TRASH/pg/data/postmaster.pid") &&
	kill -INT "$pid" &&
	retry_until 60 eval "! kill -0 $pid 2>/dev/null"
}

# cluster_pg_start: initdb as nobody, listen on $DB_ADDR only with
# scram-sha-256, database berth_cluster; sets CONNINFO
cluster_pg_start() {
	PG_PASSWORD=$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')
	CONNINFO="host=$DB_ADDR port=5432 dbname=berth_cluster user=berth password=$PG_PASSWORD connect_timeout=5"
	mkdir -p "$TRASH/pg/run" &&
	printf '%s\n' "$PG_PASSWORD" >"$TRASH/pg/pw" &&
	chown -R nobody "$TRASH/pg" &&
	runuser -u nobody -- "$PGBIN/initdb" -D "$TRASH/pg/data" -U berth \
		--pwfile="$TRASH/pg/pw" --auth-local=trust \
		--auth-host=scram-sha-256 >"$TRASH/pg/initdb.log" 2>&1 &&
	echo "host all all $NET.0/24 scram-sha-256" >>"$TRASH/pg/data/pg_hba.conf" &&
	test_atexit cluster_pg_stop &&
	cluster_pg_run &&
	runuser -u nobody -- psql -XqtA -h "$TRASH/pg/run" -U berth \
		-d postgres -c "CREATE DATABASE berth_cluster" >/dev/null
}

# host_berth HOST ARGS...: the CLI against that host's engine (a unix
# socket in its state folder, reachable from here)
host_berth() {
	local h=$1
	shift
	"$BERTH" --root "$TRASH/host-$h" "$@"
}

# write_host_yaml HOST: its berth.yaml (test timings, cluster, groups web)
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
	advertise_address: $(addr_of "$h")
	EOF
	chmod 600 "$root/berth.yaml"
}

# start_host HOST: its engine, in its namespace; pid in $TRASH/host-H.pid
start_host() { start_host_through "$1"; }

# start_host_through HOST CMD...: start_host, with the engine run through
# CMD... (a command that ends by exec'ing its arguments)
start_host_through() {
	local h=$1
	local root="$TRASH/host-$h"
	shift
	: >"$TRASH/host-$h.out"
	test_atexit "stop_host $h"
	# nsenter and CMD exec berth: $! is the engine itself
	nsenter --net="/run/netns/$(ns "$h")" "$@" \
		"$BERTH" --root "$root" serve --ssh-listen 127.0.0.1:2222 \
		--http-listen 127.0.0.1:8080 \
		>>"$TRASH/host-$h.out" 2>>"$TRASH/host-$h.log" &
	echo "$!" >"$TRASH/host-$h.pid"
	retry_until 60 grep -q "^berth: ready" "$TRASH/host-$h.out" || {
		tail -n 30 "$TRASH/host-$h.log" >&2
		return 1
	}
}

stop_host() {
	local h=$1 pid i=0 clean=
	pid=$(cat "$TRASH/host-$h.pid" 2>/dev/null)
	if is_pid "$pid"; then
		kill -TERM "$pid" 2>/dev/null
		while kill -0 "$pid" 2>/dev/null && [ $i -lt 150 ]; do
			sleep 0.1
			i=$((i + 1))
		done
		kill -0 "$pid" 2>/dev/null || clean=1
		kill -KILL "$pid" 2>/dev/null
	fi
	rm -f "$TRASH/host-$h.pid"
	# an engine that stopped stopped its apps and nginx; what a crashed
	# or killed one left goes here (a slow walk over /proc)
	[ -n "$clean" ] || [ ! -d "$TRASH/host-$h" ] ||
		BERTH_ROOT="$TRASH/host-$h" kill_leftovers
	return 0
}

# crash_host HOST: kill -9 its engine (its apps and nginx stay, as after a
# crash)
crash_host() {
	local pid
	pid=$(cat "$TRASH/host-$1.pid") && is_pid "$pid" &&
	kill -KILL "$pid" && rm -f "$TRASH/host-$1.pid"
}

# host_get HOST APP PATH: the app through that host's nginx
host_get() {
	in_ns "$1" curl -sf --max-time 5 -H "Host: $2.localhost" \
		"http://127.0.0.1:8080$3"
}

# get HOST PATH [APP], serves HOST VERSION [APP], has_env HOST LINE [APP]:
# the app (by default "shop") through that host's nginx; it answers
# "hello VERSION ..."; a line of its /env
get() { host_get "$1" "${3:-shop}" "$2"; }
serves() { get "$1" / "$3" | grep -q "^hello $2 "; }
has_env() { get "$1" /env "$3" | grep -qx "$2"; }

# status_of HOST: its STATE in "cluster status", asked on another host (a,
# or b for a itself)
status_of() {
	local ask=a
	[ "$1" != a ] || ask=b
	host_berth $ask cluster status | awk -v h="host-$1" '$1 == h { print $2 }'
}
is_state() { test "$(status_of "$1")" = "$2"; }

# start_hosts HOST...: start_host each one, then wait until the cluster
# shows each one up
start_hosts() {
	local h
	for h in "$@"; do
		start_host "$h" || return 1
	done
	for h in "$@"; do
		retry_until 60 is_state "$h" up || return 1
	done
}

# app_on HOST REGEX: a line of "apps" on that host matches
app_on() { host_berth "$1" apps | grep -qE "$2"; }
