#!/bin/bash
# A process of an app whose host user is missing (removed by hand, say)
# waits for the user to be made again: useradd runs in a child, the
# process is "starting" meanwhile and the engine answers, and it comes
# back as the new user (its release folder given to it).  A user that
# cannot be made fails the start with one line in the app's log and the
# restart back-off.  A process that crashes while apps:rename changes the
# app's user (usermod, in a child) restarts once that is done, under the
# same user and number.  The users' lock is held to keep each child
# waiting; app names are this run's own (host users are the host's).
. "$(dirname "$0")/test-lib.sh"
. "$TEST_DIR/lib-daemon.sh"

if [ "$(id -u)" != 0 ]; then
	test_skip "app users need root"
	test_done
fi

made=umade-$$-$RANDOM
orig=uname-$$-$RANDOM
renamed=urenamed-$$-$RANDOM

# hold_users_lock TAG: flock the users' lock in the background until
# TAG.release exists; TAG.held exists while it is held
hold_users_lock() {
	rm -f "$TRASH/$1.held" "$TRASH/$1.release" &&
	{ flock "$BERTH_ROOT/users/lock" sh -c \
		"touch '$TRASH/$1.held'; while ! test -e '$TRASH/$1.release'; do sleep 0.05; done" & } &&
	retry_until 20 test -e "$TRASH/$1.held"
}
# lock_waited: someone waits for the users' lock (/proc/locks: "->")
lock_waited() {
	grep -q -- "-> FLOCK .*:$(stat -c %i "$BERTH_ROOT/users/lock") " /proc/locks
}
# rename_in_background: apps:rename $orig $renamed, output in mv.out,
# status in mv.rc
rename_in_background() {
	{ berth apps:rename "$orig" "$renamed" >mv.out 2>&1; echo $? >mv.rc; } &
	return 0
}
# berth_soon ARGS...: the CLI, given up after 20 s (an engine whose loop
# waited for a tool would never answer)
berth_soon() { timeout 20 "$BERTH" --root "$BERTH_ROOT" "$@"; }
# ps_soon NAME REGEX: a line of "berth ps NAME" matches, answered in time
ps_soon() { berth_soon ps "$1" | grep -qE "$2"; }
uid_of() { sed -n 's/^Uid:[[:space:]]*\([0-9]*\).*/\1/p' "/proc/$1/status"; }
# web_up APP: web.1 is up with a pid other than $old_pid
web_up() {
	local pid
	pid=$(app_pid "$1") &&
	test -n "$pid" && test "$pid" != 0 && test "$pid" != "$old_pid" &&
	ps_line_matches "$1" "^web\.1 .* up "
}
# drop_user NAME: the host user and group berth-NAME removed by hand,
# with its process still running (-f)
drop_user() {
	userdel -f "berth-$1" &&
	{ ! getent group "berth-$1" >/dev/null || groupdel "berth-$1"; }
}
test_atexit "touch '$TRASH/mk1.release' '$TRASH/mv1.release'
userdel -f 'berth-$made' 2>/dev/null; groupdel 'berth-$made' 2>/dev/null
userdel -f 'berth-$orig' 2>/dev/null; groupdel 'berth-$orig' 2>/dev/null
userdel -f 'berth-$renamed' 2>/dev/null; groupdel 'berth-$renamed' 2>/dev/null"

test_expect_success 'an app with a user of its own' '
	start_berth &&
	make_web_bundle "$TRASH/v1.tar.gz" v1 &&
	berth deploy "$made" "$TRASH/v1.tar.gz" >out &&
	test_grep "Release 1 of $made is live" out &&
	first_uid=$(id -u "berth-$made") &&
	old_pid=$(app_pid "$made") &&
	test "$(uid_of "$old_pid")" = "$first_uid"
'

test_expect_success 'its user removed by hand: the engine answers while useradd waits' '
	hold_users_lock mk1 &&
	drop_user "$made" &&
	test_must_fail id "berth-$made" &&
	kill -KILL "$old_pid" &&
	# restarted after its back-off: waits for its user, made in a child
	# that waits for the lock (not the engine: it answers)
	retry_until 30 lock_waited &&
	berth_soon ps "$made" >ps.out &&
	test_grep "^web\.1 .* starting" ps.out &&
	berth_soon apps >apps.out &&
	test_grep "^$made " apps.out &&
	berth_soon status >/dev/null &&
	test_must_fail id "berth-$made"
'

test_expect_success 'and the process comes back as the user made again' '
	touch "$TRASH/mk1.release" &&
	retry_until 60 web_up "$made" &&
	new_uid=$(id -u "berth-$made") &&
	test "$new_uid" != "$first_uid" &&
	pid=$(app_pid "$made") &&
	test "$(uid_of "$pid")" = "$new_uid" &&
	get "http://127.0.0.1:$(app_port "$made")/" >body &&
	test_grep v1 body
'

test_expect_success 'a user that cannot be made: one line in the log, and the back-off' '
	old_pid=$(app_pid "$made") &&
	drop_user "$made" &&
	# a user of that name that is not berth'"'"'s: refused, never adopted
	useradd --system --no-create-home --shell /usr/sbin/nologin \
		--comment "someone else" "berth-$made" &&
	kill -KILL "$old_pid" &&
	retry_until 60 eval "berth logs \"\$made\" | grep -q \"cannot start web\\.1: .*not berth.*; trying again in\"" &&
	berth logs "$made" >log.out &&
	grep "cannot start web\.1" log.out >start.lines &&
	test_grep "user .berth-$made. exists and is not berth.s" start.lines &&
	retry_until 30 ps_line_matches "$made" "^web\.1 .* (restarting|starting)" &&
	berth apps >apps.out &&
	test_grep "^$made " apps.out &&
	# the other user goes: the next try makes berth'"'"'s
	userdel -f "berth-$made" &&
	{ ! getent group "berth-$made" >/dev/null || groupdel "berth-$made"; } &&
	retry_until 120 web_up "$made" &&
	pid=$(app_pid "$made") &&
	test "$(uid_of "$pid")" = "$(id -u "berth-$made")" &&
	test "$(getent passwd "berth-$made" | cut -d: -f5)" = "berth app $made"
'

test_expect_success 'a process that crashes during apps:rename'"'"'s usermod' '
	berth deploy "$orig" "$TRASH/v1.tar.gz" >out &&
	test_grep "Release 1 of $orig is live" out &&
	orig_uid=$(id -u "berth-$orig") &&
	old_pid=$(app_pid "$orig") &&
	hold_users_lock mv1 &&
	rename_in_background &&
	retry_until 30 lock_waited &&
	kill -KILL "$old_pid" &&
	# its restart waits for the rename: no user looked up half renamed
	retry_until 30 ps_soon "$orig" "^web\.1 .* starting" &&
	berth_soon apps >apps.out &&
	test_grep "^$orig " apps.out &&
	# a deploy asked for meanwhile is refused, and changes nothing
	test_must_fail berth_soon deploy "$orig" "$TRASH/v1.tar.gz" >dep.out 2>&1 &&
	test_grep "is being renamed; deploy again when that is done" dep.out &&
	test ! -s mv.rc &&
	touch "$TRASH/mv1.release" &&
	retry_until 30 test -s mv.rc &&
	test "$(cat mv.rc)" = 0 &&
	test_grep "Renamed $orig to $renamed" mv.out &&
	retry_until 60 web_up "$renamed" &&
	pid=$(app_pid "$renamed") &&
	test "$(uid_of "$pid")" = "$orig_uid" &&
	test "$(getent passwd "$orig_uid" | cut -d: -f5)" = "berth app $renamed" &&
	get "http://127.0.0.1:$(app_port "$renamed")/" >body &&
	test_grep v1 body
'

test_expect_success 'the apps and their users go' '
	berth rm "$made" --force >out &&
	test_grep "Removed app" out &&
	berth rm "$renamed" --force >out &&
	test_grep "Removed app" out &&
	test_must_fail id "berth-$made" &&
	test_must_fail getent passwd "$orig_uid"
'

test_done
