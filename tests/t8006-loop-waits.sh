#!/bin/bash
# The engine's loop never waits for a slow host tool: while rm removes an
# app's user (userdel and groupdel, held up here by the users' lock,
# which a build making a user holds as long), other commands answer; rm
# answers once the user is gone, also when the engine stops meanwhile;
# its folders, its live release's run folders among them, are moved aside
# at once and deleted by a child, as a retired release's run folders are.
# apps:rename's usermod (held up by the same lock) runs in a child too,
# as the copy of a bundle into its release folder and the deletion of
# pruned releases (their bundles) do, the disk walks of status and
# apps:info, and the reading of a long (or filtered) logs tail, with -f
# too (then followed from where that tail ended: no line lost or
# doubled); an engine that stops gives up such a tail.
. "$(dirname "$0")/test-lib.sh"
. "$TEST_DIR/lib-daemon.sh"

if [ "$(id -u)" != 0 ]; then
	test_skip "app users need root"
	test_done
fi

# the app's name in this run: host users (berth-NAME) outlive a run, and
# another run of this script may hold the same name at the same time
LW=loopwait$(printf "%04x" $((RANDOM)))

# hold_users_lock TAG: flock the users' lock in the background until
# TAG.release exists; TAG.held exists while it is held
hold_users_lock() {
	rm -f "$TRASH/$1.held" "$TRASH/$1.release" &&
	{ flock "$BERTH_ROOT/users/lock" sh -c \
		"touch '$TRASH/$1.held'; while ! test -e '$TRASH/$1.release'; do sleep 0.05; done" & } &&
	retry_until 20 test -e "$TRASH/$1.held"
}

# rm_in_background OUT: "rm loopwait", output in OUT.out, status in OUT.rc
rm_in_background() {
	{ berth rm ${LW} --force >"$1.out" 2>&1; echo $? >"$1.rc"; } &
	rm_pid=$!
	return 0
}

# lock_waited: someone waits for the users' lock (/proc/locks: "->")
lock_waited() {
	grep -q -- "-> FLOCK .*:$(stat -c %i "$BERTH_ROOT/users/lock") " /proc/locks
}
# rename_in_background OUT: "apps:rename loopwait loopwait2", as above
rename_in_background() {
	{ berth apps:rename ${LW} ${LW}2 >"$1.out" 2>&1; echo $? >"$1.rc"; } &
	rename_pid=$!
	return 0
}
running() { kill -0 "$1" 2>/dev/null; }
gone() { ! running "$1"; }
# no_trash APP: the folders rm moved into ROOT/tmp are deleted
no_trash() { ! ls "$BERTH_ROOT/tmp" | grep -q "^removed-$1-"; }
# no_run APP: no run folder of APP is left in ROOT/run
no_run() { ! ls "$BERTH_ROOT/run" | grep -q "^$1-[0-9]"; }
# run_of APP N: release N of APP has a run folder
run_of() { ls "$BERTH_ROOT/run" | grep -q "^$1-$2-"; }
no_run_of() { ! run_of "$@"; }
# a failed test must not leave a holder behind
test_atexit "touch '$TRASH/rm1.release' '$TRASH/rm2.release' '$TRASH/mv1.release'"

test_expect_success 'an app with a user of its own' '
	start_berth &&
	make_web_bundle "$TRASH/v1.tar.gz" v1 &&
	berth deploy ${LW} "$TRASH/v1.tar.gz" >out &&
	test_grep "Release 1 of ${LW} is live" out &&
	id berth-${LW}
'

test_expect_success 'a retired release'"'"'s run folder is deleted aside, by a child' '
	run_of ${LW} 1 &&
	berth deploy ${LW} "$TRASH/v1.tar.gz" >out &&
	test_grep "Release 2 of ${LW} is live" out &&
	retry_until 60 no_run_of ${LW} 1 &&
	run_of ${LW} 2 &&
	retry_until 30 no_trash ${LW}
'

test_expect_success 'a bundle that cannot be copied into place changes nothing' '
	rel="$BERTH_ROOT/apps/${LW}/releases" &&
	mv "$rel/1/bundle.tar.gz" "$TRASH/bundle1" &&
	mkdir "$rel/1/bundle.tar.gz" &&
	test_must_fail berth rollback ${LW} 1 >out 2>err &&
	rmdir "$rel/1/bundle.tar.gz" &&
	mv "$TRASH/bundle1" "$rel/1/bundle.tar.gz" &&
	test $(wc -l <err) -eq 1 &&
	test_grep "^error: " err &&
	test ! -e "$rel/3" &&
	berth apps >apps.out &&
	test_grep "^${LW} .*running" apps.out &&
	berth deploy ${LW} "$TRASH/v1.tar.gz" >out &&
	test_grep "Release 3 of ${LW} is live" out
'

test_expect_success 'pruned releases go aside at once and are deleted by a child' '
	echo "keep_releases: 1" >>"$BERTH_ROOT/berth.yaml" &&
	kill -HUP "$BERTH_PID" &&
	retry_until 30 grep -q "SIGHUP: reloaded berth.yaml" "$TRASH/berth.log" &&
	berth deploy ${LW} "$TRASH/v1.tar.gz" >out &&
	test_grep "Release 4 of ${LW} is live" out &&
	test "$(ls "$BERTH_ROOT/apps/${LW}/releases")" = 4 &&
	retry_until 30 no_trash ${LW} &&
	test_grep_not "cannot delete old releases" "$TRASH/berth.log"
'

# walker_of PID: the pid of a child of engine PID forked without an exec
# (its command line is the engine's), in a group of its own (the disk walk: nothing else of the
# kind runs now), on stdout
walker_of() {
	local c
	for c in $(pgrep -P "$1"); do
		cmp -s "/proc/$c/cmdline" "/proc/$1/cmdline" &&
		[ "$(ps -o pgid= -p "$c" | tr -d " ")" = "$c" ] &&
		echo "$c" && return 0
	done
	return 1
}
# catch_walker: poll often (the walk is short), stop the walker, its pid
# in $walker
catch_walker() {
	local i=0
	while [ $i -lt 3000 ]; do
		walker=$(walker_of "$BERTH_PID") && kill -STOP "$walker" && return 0
		i=$((i + 1))
		sleep 0.01
	done
	return 1
}
# reader_waits: a child of the engine waits to open a FIFO to read
reader_waits() {
	local c
	for c in $(pgrep -P "$BERTH_PID"); do
		grep -qs "^wait_for_partner" "/proc/$c/wchan" && return 0
	done
	return 1
}
status_in_background() {
	{ berth "$@" >"st.out" 2>&1; echo $? >"st.rc"; } &
	return 0
}
test_atexit "test -n \"\${walker:-}\" && kill -CONT \$walker"

test_expect_success 'while status walks the disk, the engine answers' '
	mkdir -p "$BERTH_ROOT/cache/${LW}" &&
	(cd "$BERTH_ROOT/cache/${LW}" &&
	 for d in $(seq 1 40); do mkdir d$d && (cd d$d && touch $(seq 1 500)) || exit 1; done) &&
	rm -f st.rc &&
	status_in_background status &&
	catch_walker &&
	timeout 20 "$BERTH" --root "$BERTH_ROOT" apps >apps.out &&
	test_grep "^${LW} " apps.out &&
	test ! -e st.rc &&
	test_grep_not "^  ${LW} " st.out &&
	kill -CONT "$walker" && walker= &&
	retry_until 60 test -s st.rc &&
	test "$(cat st.rc)" = 0 &&
	test_grep "^  ${LW} [0-9.]+ (KiB|MiB) \(repository .*, cache [0-9.]+ (KiB|MiB)\)" st.out &&
	test_grep "^certificates: " st.out
'

test_expect_success 'while apps:info walks the disk, the engine answers' '
	rm -f st.rc &&
	status_in_background apps:info ${LW} &&
	catch_walker &&
	timeout 20 "$BERTH" --root "$BERTH_ROOT" apps >apps.out &&
	test_grep "^${LW} " apps.out &&
	test ! -e st.rc &&
	test_grep_not "^Disk:" st.out &&
	kill -CONT "$walker" && walker= &&
	retry_until 60 test -s st.rc &&
	test "$(cat st.rc)" = 0 &&
	test_grep "^Disk: +repository .*, build cache [0-9.]+ (KiB|MiB) \(" st.out &&
	test_grep "^Database: " st.out &&
	rm -rf "$BERTH_ROOT/cache/${LW}"
'

# A log file that is a FIFO holds up whoever opens it to read, until
# the test opens it to write: the tail's reader waits there.
test_expect_success 'while a long logs tail is read, the engine answers' '
	log="$BERTH_ROOT/logs/${LW}/app.log" &&
	mv "$log" "$TRASH/app.log.saved" &&
	test_when_finished "rm -f \"$log\" \"$log.1\" && mv \"$TRASH/app.log.saved\" \"$log\"" &&
	seq -f "2026-11-30T00:00:00Z web.1 line %g" 1 5000 >"$log.1" &&
	mkfifo "$log" &&
	rm -f st.rc &&
	status_in_background logs ${LW} -n 3000 &&
	retry_until 30 reader_waits &&
	timeout 20 "$BERTH" --root "$BERTH_ROOT" apps >apps.out &&
	test_grep "^${LW} " apps.out &&
	test ! -e st.rc &&
	: >"$log" &&
	retry_until 60 test -s st.rc &&
	test "$(cat st.rc)" = 0 &&
	test $(wc -l <st.out) -eq 3000 &&
	test "$(tail -n 1 st.out)" = "2026-11-30T00:00:00Z web.1 line 5000" &&
	rm -f st.rc &&
	status_in_background logs ${LW} -n 2 -p web.1 &&
	retry_until 30 reader_waits &&
	timeout 20 "$BERTH" --root "$BERTH_ROOT" apps >apps.out &&
	test ! -e st.rc &&
	: >"$log" &&
	retry_until 60 test -s st.rc &&
	test "$(cat st.rc)" = 0 &&
	test_grep "line 5000" st.out &&
	test $(wc -l <st.out) -eq 2
'

# logs_count WORD: how many lines of fol.out say "request GET /WORD"
logs_count() { grep -c "request GET /$1\$" fol.out; }
test_atexit "test -s '$TRASH/fol.pid' && kill \$(cat '$TRASH/fol.pid')"

# With -f too: the child's tail ends where app.log ended when the child
# opened it (it opens app.log.1 next, a FIFO here, and waits there).  A
# line written meanwhile comes after the tail, from the follow, once; so
# do the lines written after.
test_expect_success 'while a long logs -f tail is read, the engine answers, and no line is lost or doubled' '
	log="$BERTH_ROOT/logs/${LW}/app.log" &&
	port=$(app_port ${LW}) &&
	test -n "$port" &&
	rm -f "$log.1" &&
	mkfifo "$log.1" &&
	test_when_finished "rm -f \"$log.1\"" &&
	get "http://127.0.0.1:$port/before-tail" >/dev/null &&
	retry_until 30 grep -q "request GET /before-tail$" "$log" &&
	test $(wc -l <"$log") -lt 3000 &&
	rm -f fol.out fol.pid &&
	{ "$BERTH" --root "$BERTH_ROOT" logs ${LW} -n 3000 -f >fol.out 2>&1 & } &&
	echo $! >fol.pid &&
	retry_until 30 reader_waits &&
	timeout 20 "$BERTH" --root "$BERTH_ROOT" apps >apps.out &&
	test_grep "^${LW} " apps.out &&
	get "http://127.0.0.1:$port/during-tail" >/dev/null &&
	retry_until 30 grep -q "request GET /during-tail$" "$log" &&
	test_grep_not "before-tail" fol.out &&
	: >"$log.1" &&
	retry_until 60 grep -q "request GET /during-tail$" fol.out &&
	get "http://127.0.0.1:$port/after-tail" >/dev/null &&
	retry_until 60 grep -q "request GET /after-tail$" fol.out &&
	kill $(cat fol.pid) && rm -f fol.pid &&
	test "$(logs_count before-tail)" = 1 &&
	test "$(logs_count during-tail)" = 1 &&
	test "$(logs_count after-tail)" = 1 &&
	test_grep_not "^error" fol.out &&
	grep -n "request GET /[a-z]*-tail$" fol.out >order &&
	sed -n "1p" order | grep -q before-tail &&
	sed -n "2p" order | grep -q during-tail &&
	sed -n "3p" order | grep -q after-tail
'

test_expect_success 'while apps:rename waits for usermod, the engine answers' '
	hold_users_lock mv1 &&
	rename_in_background mv &&
	# its child waits for the lock: nothing moved yet
	retry_until 30 lock_waited &&
	timeout 20 "$BERTH" --root "$BERTH_ROOT" apps >apps.out &&
	test_grep "${LW}" apps.out &&
	timeout 20 "$BERTH" --root "$BERTH_ROOT" status >/dev/null &&
	running $rename_pid &&
	test -e "$BERTH_ROOT/apps/${LW}" &&
	touch "$TRASH/mv1.release" &&
	retry_until 30 test -s mv.rc &&
	test "$(cat mv.rc)" = 0 &&
	test_grep "Renamed ${LW} to ${LW}2" mv.out &&
	test -e "$BERTH_ROOT/apps/${LW}2" &&
	test ! -e "$BERTH_ROOT/apps/${LW}" &&
	berth apps:rename ${LW}2 ${LW} >mv.out &&
	test_grep "Renamed ${LW}2 to ${LW}" mv.out &&
	id berth-${LW}
'

test_expect_success 'while rm waits for the user to go, the engine answers' '
	hold_users_lock rm1 &&
	rm_in_background rm &&
	# its folders go first, in the loop; then the user, in a child
	retry_until 30 test ! -e "$BERTH_ROOT/apps/${LW}" &&
	no_run ${LW} &&
	timeout 20 "$BERTH" --root "$BERTH_ROOT" apps >apps.out &&
	timeout 20 "$BERTH" --root "$BERTH_ROOT" status >/dev/null &&
	running $rm_pid &&
	test_grep_not "Removed" rm.out &&
	id berth-${LW} &&
	touch "$TRASH/rm1.release" &&
	retry_until 30 test -s rm.rc &&
	test "$(cat rm.rc)" = 0 &&
	test_grep "Removed app" rm.out &&
	test_must_fail id berth-${LW} &&
	test ! -e "$BERTH_ROOT/logs/${LW}" &&
	retry_until 30 no_trash ${LW}
'

test_expect_success 'an engine that stops answers the rm it was removing a user for, and a logs tail it was reading' '
	berth deploy ${LW} "$TRASH/v1.tar.gz" >out &&
	test_grep "is live" out &&
	log="$BERTH_ROOT/logs/${LW}/app.log" &&
	rm -f "$log.1" &&
	mkfifo "$log.1" &&
	rm -f lt.rc &&
	{ { berth logs ${LW} -n 3000 >lt.out 2>&1; echo $? >lt.rc; } & } &&
	retry_until 30 reader_waits &&
	hold_users_lock rm2 &&
	rm_in_background rm2 &&
	retry_until 30 test ! -e "$BERTH_ROOT/apps/${LW}" &&
	test_grep_not "Removed" rm2.out &&
	kill -TERM "$BERTH_PID" &&
	retry_until 30 grep -q "stopping (signal" "$TRASH/berth.log" &&
	touch "$TRASH/rm2.release" &&
	retry_until 30 test -s rm2.rc &&
	test "$(cat rm2.rc)" = 0 &&
	test_grep "Removed app" rm2.out &&
	retry_until 30 test -s lt.rc &&
	test "$(cat lt.rc)" != 0 &&
	test_grep "the engine is stopping" lt.out &&
	test_must_fail id berth-${LW} &&
	retry_until 30 gone "$BERTH_PID"
'

test_done
