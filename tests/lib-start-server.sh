# lib-start-server.sh: run Perl's start_server (Server::Starter) and
# "berth start-server" through the same scenarios, for side-by-side
# comparisons.
#
#   ss_start IMPL DIR [OPTIONS] -- COMMAND...   IMPL is perl or berth;
#       runs in the background with stdout+stderr in DIR/log, the
#       worker's files in DIR/out (SS_OUT), --pid-file DIR/pid and
#       --status-file DIR/status added; run in $SS_CWD (else DIR); stopped
#       (TERM) when the script ends.
#   ss_cmd IMPL ARGS...      the command itself (for --restart, --stop)
#   ss_gens DIR              the generations in DIR/status, space-separated
#   ss_wait_gens DIR "2 3"   wait until the status file shows exactly those
#   ss_none FILE...          true when none of the files exists
#   ss_norm FILE             the file with pids written P1, P2, ... in order
#                            of appearance (so two runs compare equal)

SS_WORKER="$TEST_DIR/apps/ss-worker.sh"
PERL_START_SERVER=/usr/bin/start_server

ss_cmd() {
	local impl=$1
	shift
	case $impl in
	perl) "$PERL_START_SERVER" "$@" ;;
	berth) "$BERTH" start-server "$@" ;;
	*) echo "ss_cmd: unknown implementation '$impl'" >&2; return 100 ;;
	esac
}

ss_start() {
	local impl=$1 dir=$2
	shift 2
	mkdir -p "$dir/out" || return 1
	(
		cd "${SS_CWD:-$dir}" || exit 1
		export SS_OUT="$dir/out"
		set -- --pid-file="$dir/pid" --status-file="$dir/status" "$@"
		case $impl in
		perl) exec "$PERL_START_SERVER" "$@" ;;
		*) exec "$BERTH" start-server "$@" ;;
		esac
	) >"$dir/log" 2>&1 </dev/null &
	echo $! >"$dir/daemon.pid"
	test_atexit "ss_kill '$dir'"
	retry_until 20 test -s "$dir/pid"
}

# The superdaemon of DIR, TERMed; its workers end with it.
ss_kill() {
	ss_kill_pidfile "$1/daemon.pid"
}

# The superdaemon whose pid is in FILE (e.g. one that daemonized).
ss_kill_pidfile() {
	local pid
	pid=$(cat "$1" 2>/dev/null) || return 0
	test -n "$pid" || return 0
	kill -TERM "$pid" 2>/dev/null || return 0
	retry_until 20 eval "! kill -0 $pid 2>/dev/null"
	kill -KILL "$pid" 2>/dev/null
	return 0
}

# ss_none FILE...: none of them exists.
ss_none() {
	local f
	for f in "$@"; do
		! test -e "$f" || return 1
	done
}

ss_gens() {
	cut -d: -f1 "$1/status" 2>/dev/null | tr '\n' ' ' | sed 's/ $//'
}

ss_gens_are() {
	test "$(ss_gens "$1")" = "$2"
}

ss_wait_gens() {
	retry_until "${3:-20}" ss_gens_are "$1" "$2"
}

# ss_ask ADDRESS: connect (a socat address) and print the answer.
ss_ask() {
	socat -T5 - "$1" </dev/null
}

ss_norm() {
	perl -pe 's/((?:worker |pid:)|(?:workers:|,)(?=\d))(\d+)/$1.($m{$2} ||= "P" . ++$n)/ge' "$1"
}
