#!/bin/bash
# The engine never looks up a database's host name on its loop: a child
# does (libpq would call getaddrinfo() inside the loop, for as long as DNS
# takes).  A host whose /etc/hosts and /etc/resolv.conf are its own (a
# mount namespace over its network namespace) reaches an outside
# PostgreSQL by a name its hosts file gives, and the cluster database by a
# name its DNS server answers only once (so libpq connects to the address
# the child got, and never asks again on the loop); with
# a name that only a DNS server which never answers could give, the
# engine starts and answers apps, ps, stats and status while the lookup
# hangs, keeps serving, and says once the lookup's deadline passes
# "cannot resolve 'NAME': no answer within 10 s", retrying as before (a
# change waits cluster_wait, then fails with that reason); a
# name the DNS server says does not exist gives a clear error at once.
. "$(dirname "$0")/test-lib.sh"
. "$TEST_DIR/lib-daemon.sh"
. "$TEST_DIR/lib-cluster.sh"

if ! command -v python3 >/dev/null || ! command -v unshare >/dev/null; then
	test_skip 'needs python3 and unshare'
	test_done
fi

ETC="$TRASH/etc"

# start_host_etc HOST: start_host, with $ETC/hosts and $ETC/resolv.conf
# as its /etc/hosts and /etc/resolv.conf (bind mounts in a mount namespace
# of its own; the other mounts are the same)
start_host_etc() {
	start_host_through "$1" unshare --mount --propagation slave \
		sh -c 'mount --bind "$1" /etc/hosts &&
			mount --bind "$2" /etc/resolv.conf &&
			shift 2 && exec "$@"' sh "$ETC/hosts" "$ETC/resolv.conf"
}

# a DNS server on 127.0.0.1:53 in the host's namespace: it logs each
# question ("NAME TYPE" in dns.log), says NXDOMAIN for names that begin
# with "nx.", answers a name that begins with "once." once (A: the
# database's address, AAAA: none) and never again, and never answers the
# others
cat >"$TRASH/dns.py" <<'EOF'
import socket
import sys

answered = set()

log = open(sys.argv[1], 'a', buffering=1)
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(('127.0.0.1', 53))
open(sys.argv[2], 'w').close()
while True:
    data, peer = s.recvfrom(4096)
    i, labels = 12, []
    while i < len(data) and data[i]:
        n = data[i]
        labels.append(data[i + 1:i + 1 + n].decode('ascii', 'replace'))
        i += 1 + n
    name = '.'.join(labels)
    qtype = int.from_bytes(data[i + 1:i + 3], 'big')
    log.write('%s %d\n' % (name, qtype))
    rd = (data[2] & 1) << 8
    question = data[12:i + 5]
    if name.startswith('nx.'):
        s.sendto(data[:2] + (0x8083 | rd).to_bytes(2, 'big') +
                 b'\0\1' + bytes(6) + question, peer)
    elif name.startswith('once.') and (name, qtype) not in answered:
        answered.add((name, qtype))
        answer = b''
        if qtype == 1:
            answer = (b'\xc0\x0c\0\1\0\1\0\0\0\0\0\4' +
                      socket.inet_aton(sys.argv[3]))
        s.sendto(data[:2] + (0x8080 | rd).to_bytes(2, 'big') + b'\0\1' +
                 (1 if answer else 0).to_bytes(2, 'big') + bytes(4) +
                 question + answer, peer)
EOF

# asked DNS NAME: how many questions for NAME the server got
asked() { grep -c "^$1 " "$TRASH/dns.log" 2>/dev/null; }
asked_more() { test "$(asked "$1")" -gt "$2"; }
logged() { grep -q "$1" "$TRASH/host-a.log"; }
a_is_up() { host_berth a cluster status | grep -q "^host-a  *up "; }
db_size_shown() {
	host_berth a stats shop | grep -q "^database berth_shop [0-9][0-9]*$"
}

test_expect_success 'a host with its own hosts file and a DNS server' '
	cluster_net_up a &&
	cluster_pg_start &&
	mkdir -p "$ETC" &&
	printf "%s\n" "127.0.0.1 localhost" "::1 localhost" \
		"$DB_ADDR pgdb.berth-test" >"$ETC/hosts" &&
	# glibc waits 30 s for each of 5 tries: a lookup that hangs
	printf "%s\n" "nameserver 127.0.0.1" "options timeout:30 attempts:5" \
		>"$ETC/resolv.conf" &&
	: >"$TRASH/dns.log" &&
	{ nsenter --net="/run/netns/$(ns a)" python3 "$TRASH/dns.py" \
		"$TRASH/dns.log" "$TRASH/dns.up" "$DB_ADDR" \
		>"$TRASH/dns.err" 2>&1 & } &&
	# nsenter execs python3: $! is the server (the trash is gone at exit)
	test_atexit "kill $! 2>/dev/null" &&
	retry_until 30 test -e "$TRASH/dns.up"
'

# The cluster database by a name DNS gives once: the engine joins, so it
# connected to the address its child got (libpq asking again would hang
# the engine); PostgreSQL by a name of /etc/hosts
test_expect_success 'the databases by names DNS and /etc/hosts give' '
	PG_CONNINFO=$(echo "$CONNINFO" | sed "s/host=$DB_ADDR /host=pgdb.berth-test /") &&
	CONNINFO=$(echo "$CONNINFO" | sed "s/host=$DB_ADDR /host=once.berth-test /") &&
	case $CONNINFO in *"host=once.berth-test "*) ;; *) false ;; esac &&
	write_host_yaml a &&
	echo "postgres: $PG_CONNINFO" >>"$TRASH/host-a/berth.yaml" &&
	start_host_etc a &&
	retry_until 60 a_is_up &&
	test "$(asked once.berth-test)" -ge 1 &&
	test_grep_not "cannot resolve" "$TRASH/host-a.log"
'

test_expect_success 'an app database there; stats tells its size' '
	BUNDLE_APP_YAML="postgres: true" make_web_bundle "$TRASH/shop.tar.gz" v1 &&
	host_berth a deploy shop "$TRASH/shop.tar.gz" >out 2>&1 &&
	test_grep "Release 1 of shop is live" out &&
	host_berth a config shop >config &&
	test_grep "^DATABASE_URL=postgres(ql)?://berth_shop:[^@]*@pgdb.berth-test(:5432)?/" config &&
	retry_until 60 db_size_shown &&
	# the hosts file answered: no DNS question for the name
	test "$(asked pgdb.berth-test)" = 0
'

test_expect_success 'while the name hangs in DNS, the engine answers and serves' '
	stop_host a &&
	sed -i -e "s/host=pgdb.berth-test /host=stall.berth-test /" \
		-e "s/host=once.berth-test /host=stall.berth-test /" \
		"$TRASH/host-a/berth.yaml" &&
	echo "cluster_wait: 2s" >>"$TRASH/host-a/berth.yaml" &&
	: >"$TRASH/host-a.log" &&
	# the engine gets ready while the lookup hangs
	start_host_etc a &&
	retry_until 60 asked_more stall.berth-test 0 &&
	# the app comes back with the engine, the lookup or not
	retry_until 60 serves a v1 &&
	timeout 20 "$BERTH" --root "$TRASH/host-a" apps >apps.out &&
	test_grep "^shop " apps.out &&
	timeout 20 "$BERTH" --root "$TRASH/host-a" ps shop >ps.out &&
	test_grep "^web.1 " ps.out &&
	timeout 20 "$BERTH" --root "$TRASH/host-a" stats shop >stats.out &&
	test_grep "^database berth_shop " stats.out &&
	timeout 20 "$BERTH" --root "$TRASH/host-a" status >/dev/null
'

test_expect_success 'then a one-line error naming the host, and it tries again' '
	msg="cannot resolve '"'"'stall.berth-test'"'"': no answer within 10 s" &&
	retry_until 60 logged "cluster: $msg (retrying)" &&
	test_must_fail host_berth a cluster status 2>err &&
	test_grep "cannot reach the cluster database: $msg" err &&
	test $(wc -l <err) = 1 &&
	# a change waits cluster_wait for the database, as when it is down
	test_must_fail host_berth a config shop set GREETING=meanwhile >out 2>&1 &&
	test_grep "cannot reach the cluster database for 2 s \($msg\): nothing was changed" out &&
	host_berth a config shop >config &&
	test_grep_not GREETING config &&
	n=$(asked stall.berth-test) &&
	retry_until 60 asked_more stall.berth-test $n &&
	serves a v1
'

test_expect_success 'a name DNS says does not exist: that error at once' '
	stop_host a &&
	sed -i "s/host=stall.berth-test /host=nx.berth-test /" \
		"$TRASH/host-a/berth.yaml" &&
	: >"$TRASH/host-a.log" &&
	start_host_etc a &&
	retry_until 60 logged "cluster: cannot resolve '"'"'nx.berth-test'"'"': Name or service not known (retrying)" &&
	test_must_fail host_berth a cluster status 2>err &&
	test_grep "cannot resolve '"'"'nx.berth-test'"'"': Name or service not known" err
'

test_done
