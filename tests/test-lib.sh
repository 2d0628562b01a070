# test-lib.sh: TAP test helpers in the style of git's t/test-lib.sh.
#
#   . "$(dirname "$0")/test-lib.sh"
#   test_expect_success 'what it checks' '
#       cmd1 &&
#       cmd2
#   '
#   test_done
#
# Each script runs in its own trash directory ($TRASH, removed at the end
# unless BERTH_TEST_KEEP=1).  Steps are &&-chained; a step fails when its
# body returns non-zero.  test_when_finished registers cleanup for a step.

set -u
TEST_DIR=$(cd "$(dirname "$0")" && pwd)
TOP=$(cd "$TEST_DIR/.." && pwd)
: "${BERTH:=$TOP/berth}"
export BERTH TOP TEST_DIR
TEST_NAME=$(basename "$0" .sh)
TRASH=$(mktemp -d "${TMPDIR:-/tmp}/berth-test.$TEST_NAME.XXXXXX")
chmod 755 "$TRASH"
export TRASH
cd "$TRASH" || exit 1
test_count=0
test_failed=0
test_cleanup_cmds=""
test_exit_hooks=""

say() { printf '# %s\n' "$*"; }

# Register a command to run at the end of the script (daemons and such).
test_atexit() { test_exit_hooks="$1
$test_exit_hooks"; }

test_when_finished() { test_cleanup_cmds="$1
$test_cleanup_cmds"; }

test_run_exit_hooks() {
	[ -n "$test_exit_hooks" ] && eval "$test_exit_hooks" >/dev/null 2>&1
	test_exit_hooks=""
}
trap 'test_run_exit_hooks' EXIT

test_eval_() { eval "$1"; }

# The chain-lint (git's idea, t/chainlint): a body whose &&-chain is
# broken would let a failing command pass unseen, so it is refused before
# it runs, and the script stops there.  BERTH_TEST_CHAIN_LINT=0 turns it
# off (tests/chainlint.awk says what it checks).
test_chain_lint_() {
	[ "${BERTH_TEST_CHAIN_LINT:-1}" = 0 ] && return 0
	printf '%s\n' "$1" | awk -f "$TEST_DIR/chainlint.awk"
}

# test_run_body_ BODY OUT: run a step's body with its output in OUT, then
# its test_when_finished commands; the body's status.  In this shell, as
# git's test-lib does, so steps can set variables for later ones
# (start_berth exports the engine's ports).
test_run_body_() {
	local ret
	test_cleanup_cmds=""
	set +u
	test_eval_ "$1" >"$2" 2>&1 </dev/null
	ret=$?
	set -u
	cd "$TRASH" 2>/dev/null || true
	if [ -n "$test_cleanup_cmds" ]; then
		eval "$test_cleanup_cmds" >/dev/null 2>&1
	fi
	return $ret
}

test_expect_success() {
	local desc="$1" body="$2" out ret lint
	test_count=$((test_count + 1))
	if ! lint=$(test_chain_lint_ "$body"); then
		echo "not ok $test_count - $desc"
		printf '# broken &&-chain in this test body:\n%s\n' "$lint" |
			sed -e '2,$s/^/#   /' | tee /dev/stderr
		test_failed=$((test_failed + 1))
		echo "1..$test_count"
		say "trash directory kept: $TRASH"
		exit 1
	fi
	out="$TRASH/.step-$test_count.out"
	test_run_body_ "$body" "$out"
	ret=$?
	if [ $ret -eq 0 ]; then
		echo "ok $test_count - $desc"
	else
		echo "not ok $test_count - $desc"
		test_failed=$((test_failed + 1))
		# on stderr too, so prove shows why
		why=$(sed -e 's/^/#   /' "$out" | tail -n 60)
		printf '%s\n' "$why"
		printf '%s\n' "$why" >&2
	fi
}

# A known breakage (git's test_expect_failure): the step runs and is
# reported as TODO, so prove shows it and it fails no run; one that
# passes is shown as fixed.  Each use says in a comment what is broken.
test_expect_failure() {
	local desc="$1" body="$2"
	test_count=$((test_count + 1))
	if test_run_body_ "$body" "$TRASH/.step-$test_count.out"; then
		echo "ok $test_count - $desc # TODO known breakage vanished"
	else
		echo "not ok $test_count - $desc # TODO known breakage"
	fi
}

# A step that needs something this machine lacks is skipped, never passed.
test_skip() {
	test_count=$((test_count + 1))
	echo "ok $test_count # skip $1"
}

test_must_fail() {
	"$@"
	local ret=$?
	if [ $ret -eq 0 ]; then
		echo "test_must_fail: command succeeded: $*" >&2
		return 1
	elif [ $ret -gt 128 ] && [ $ret -lt 255 ]; then
		echo "test_must_fail: killed by signal: $*" >&2
		return 1
	fi
	return 0
}

# test_expect_code N CMD...: CMD exits with status N (git's helper).
test_expect_code() {
	local want=$1 ret
	shift
	"$@"
	ret=$?
	if [ "$ret" != "$want" ]; then
		echo "test_expect_code: exit status $ret, not $want: $*" >&2
		return 1
	fi
}

test_cmp() { diff -u "$1" "$2"; }

# test_grep PATTERN FILE: like grep -q, but shows the file when it fails.
test_grep() {
	if ! grep -q -E -e "$1" "$2"; then
		echo "test_grep: no '$1' in $2:" >&2
		sed -e 's/^/| /' "$2" | tail -n 40 >&2
		return 1
	fi
}
test_grep_not() {
	if grep -q -E -e "$1" "$2"; then
		echo "test_grep_not: found '$1' in $2:" >&2
		grep -E -e "$1" "$2" | head -n 10 >&2
		return 1
	fi
}

# new_shared_dir: SHARED becomes a folder under /run (removed at the end)
# that app processes see too: as root each app has a private /tmp, so
# $TRASH is out of its sight (gate files an app waits for go here).
new_shared_dir() {
	SHARED=$(mktemp -d "/run/berth-test.$TEST_NAME.XXXXXX") &&
	chmod 755 "$SHARED" &&
	test_atexit "rm -rf '$SHARED'"
}

# retry_until SECONDS CMD...: run CMD every 0.1 s until it succeeds.
# is_pid N: a plain number above 1 (kill -1 would reach every process)
is_pid() { case $1 in ''|*[!0-9]*|0|1) return 1 ;; esac; }

retry_until() {
	local limit=$(( $1 * 10 )) i=0
	shift
	while [ $i -lt $limit ]; do
		"$@" >/dev/null 2>&1 && return 0
		sleep 0.1
		i=$((i + 1))
	done
	echo "retry_until: gave up on: $*" >&2
	return 1
}

# connected_to PORT: some client holds an open TCP connection to PORT
# (wrk has started its load)
connected_to() {
	ss -Htn state established "( dport = :$1 )" | grep -q .
}

# A TCP port nobody listens on, below the kernel's ephemeral range
# (32768+), where outgoing connections take theirs.
free_port() {
	local p
	while :; do
		p=$(( 12000 + (RANDOM * 32768 + RANDOM) % 8000 ))
		if ! (exec 3<>/dev/tcp/127.0.0.1/$p) 2>/dev/null; then
			echo $p
			return
		fi
	done
}

# Under "make asan" a sanitizer report can land in any file a test keeps:
# an engine's log (berth.log, host-H.log of the cluster tests), a step's
# output (.step-N.out: a CLI that tripped one, even under
# test_must_fail), a file a step sent stderr to, the log of a
# "berth start-server" a test runs (DIR/log) or of an app the engine runs
# (root/logs/APP/app.log).  So every file at the top of $TRASH and every
# log-like file below it is searched.  A sanitizer that stops a process
# aborts it (abort_on_error), so a CLI that trips one is "killed by
# signal", never a plain failure.
SANITIZER_REPORT_RE='ERROR: (Address|Leak)Sanitizer|SUMMARY: UndefinedBehaviorSanitizer|\.[ch]:[0-9]+:[0-9]+: runtime error:'
export ASAN_OPTIONS="abort_on_error=1${ASAN_OPTIONS:+:$ASAN_OPTIONS}"
export UBSAN_OPTIONS="abort_on_error=1:print_stacktrace=1${UBSAN_OPTIONS:+:$UBSAN_OPTIONS}"

# the files with a report, one a line
test_sanitizer_reports_() {
	{
		find "$TRASH" -maxdepth 1 -type f -print0
		find "$TRASH" -mindepth 2 -maxdepth 5 -type f \( -name '*.log' \
			-o -name log -o -name '*.out' -o -name '*.err' \) -print0
	} 2>/dev/null | xargs -0 -r grep -l -s -E "$SANITIZER_REPORT_RE"
	return 0
}

test_done() {
	local reports f
	test_run_exit_hooks
	reports=$(test_sanitizer_reports_)
	if [ -n "$reports" ]; then
		test_count=$((test_count + 1))
		echo "not ok $test_count - no sanitizer report in the logs"
		printf '%s\n' "$reports" | while read -r f; do
			echo "# in $f:"
			grep -E -A20 "$SANITIZER_REPORT_RE" "$f" | head -60 | sed 's/^/#   /'
		done | tee /dev/stderr
		test_failed=$((test_failed + 1))
	elif [ -f "$TRASH/berth.log" ]; then
		test_count=$((test_count + 1))
		echo "ok $test_count - no sanitizer report in the logs"
	fi
	echo "1..$test_count"
	if [ $test_failed -eq 0 ] && [ "${BERTH_TEST_KEEP:-0}" != 1 ]; then
		cd / && rm -rf "$TRASH"
	else
		say "trash directory kept: $TRASH"
	fi
	[ $test_failed -eq 0 ]
	exit $?
}
