#!/bin/bash
# nginx's control listener hangs (its workers stopped with SIGSTOP, the
# master left alone): the engine's loop does not wait for it.  Commands
# answer while a request to nginx is under way, a host added meanwhile
# answers once nginx runs again, and a rollback during the watch waits
# for nginx in its own state ("switching traffic back"), at most the 2 s
# deadline, before it stops the new release; nginx gets the whole table
# once it runs again.  stop sends TERM only once nginx has the stopped
# route (a request meanwhile gets the process or the 503 page, never a
# 502), or after the deadline, saying so; certs:add waits in the same
# queue, the engine answering others meanwhile.
. "$(dirname "$0")/test-lib.sh"
. "$TEST_DIR/lib-daemon.sh"

# The workers of our own nginx: children of the master named in its pid
# file (never a pattern over every process of the host).
stop_workers() {
	workers=$(nginx_workers) && test -n "$workers" &&
	for w in $workers; do is_pid "$w" && kill -STOP "$w" || return 1; done
}
cont_workers() {
	for w in ${workers:-}; do is_pid "$w" && kill -CONT "$w"; done
	return 0
}
# the deploy's exit status lands in deploy.rc
deploy_in_background() {
	berth deploy stall "$1" >deploy.out 2>&1
	echo $? >deploy.rc
}
status_says() { berth status | grep -qE "^routing table: .*$1"; }
host_answers() {
	curl -sSf --max-time 5 -H "Host: $1" "http://127.0.0.1:$HTTP_PORT/" | grep -q "$2"
}

test_expect_success 'setup: an app behind the engine'"'"'s nginx' '
	start_berth &&
	make_web_bundle "$TRASH/v1.tar.gz" v1 &&
	make_web_bundle "$TRASH/v2.tar.gz" v2 &&
	# a long watch: the rollback below happens during it
	BUNDLE_APP_YAML="watch: 60s" make_web_bundle "$TRASH/v2w.tar.gz" v2 &&
	berth deploy stall "$TRASH/v1.tar.gz" &&
	retry_until 10 through_nginx stall &&
	retry_until 10 status_says "nginx has it"
'

# a request a user sends meanwhile: nginx's master queues its connection
held_request() {
	curl -sS --max-time 60 -H "Host: stall.localhost" \
		"http://127.0.0.1:$HTTP_PORT/" >held.out 2>held.err
	echo $? >held.rc
}

test_atexit cont_workers
test_expect_success 'nginx'"'"'s workers stop' '
	rm -f held.rc &&
	stop_workers
'

test_expect_success 'domains:add while nginx hangs: the engine answers, nginx follows once it runs' '
	held_request &
	test_when_finished cont_workers &&
	berth domains:add stall extra.stall.test >out &&
	berth domains stall >hosts &&
	test_grep "^extra.stall.test +domains:add" hosts &&
	# the engine answers while its request to nginx waits: a loop that
	# waited for nginx could not say so
	berth status >status &&
	test_grep "^routing table: .*(under way|nginx is behind)" status &&
	berth apps >apps &&
	test_grep "^stall +running" apps &&
	berth ps stall >ps &&
	test_grep "^web.1 " ps &&
	# past the deadline (2 s): nginx is behind, and the engine says so
	retry_until 30 status_says "nginx is behind" &&
	test_grep "routing table: nginx.s router does not answer \(2000 ms\)" "$TRASH/berth.log" &&
	cont_workers &&
	retry_until 15 host_answers extra.stall.test "hello v1" &&
	retry_until 15 status_says "nginx has it" &&
	through_nginx stall | grep -q "hello v1" &&
	# the user who asked while nginx hung got the answer: none lost
	retry_until 60 test -s held.rc &&
	test "$(cat held.rc)" = 0 &&
	test_grep "hello v1" held.out
'

test_expect_success 'a rollback while nginx hangs waits in "switching traffic back", then v1 serves' '
	deploy_in_background "$TRASH/v2w.tar.gz" &
	test_when_finished cont_workers &&
	retry_until 60 apps_line_matches "^stall .*watching release 2" &&
	new=$(app_pid stall) && is_pid "$new" &&
	stop_workers &&
	kill -KILL "$new" &&
	# the revert goes to nginx, which does not answer: the deploy waits
	retry_until 10 ps_line_matches stall "switching traffic back" &&
	berth apps >apps &&
	test_grep "^stall .*switching traffic back" apps &&
	# nginx does not answer by the deadline: the deploy fails all the
	# same, and nginx gets the table (back on release 1) when it runs
	retry_until 30 test -s deploy.rc &&
	test_grep "stall: cannot switch back: nginx.s router does not answer" "$TRASH/berth.log" &&
	cont_workers &&
	test "$(cat deploy.rc)" != 0 &&
	test_grep "Switched traffic back to release 1" deploy.out &&
	test_grep "rolled back: web.1" deploy.out &&
	retry_until 15 status_says "nginx has it" &&
	through_nginx stall | grep -q "hello v1" &&
	host_answers extra.stall.test "hello v1"
'

test_expect_success 'a deploy after nginx came back goes live as usual' '
	berth deploy stall "$TRASH/v2.tar.gz" >out 2>&1 &&
	test_grep "Switched traffic to release" out &&
	retry_until 10 through_nginx stall &&
	through_nginx stall | grep -q "hello v2" &&
	status_says "nginx has it"
'

# a request a user sends while the app stops: its status and body
stop_request() {
	curl -sS --max-time 60 -o stopreq.out -w "%{http_code}\n" \
		-H "Host: stall.localhost" \
		"http://127.0.0.1:$HTTP_PORT/" >stopreq.code 2>stopreq.err
	echo $? >stopreq.rc
}
# stop_in_background NAME: its output in NAME.out, its status in NAME.rc
stop_in_background() {
	berth stop stall >"$1.out" 2>&1
	echo $? >"$1.rc"
}
status_pending() { status_says "(under way|nginx is behind)"; }
# a user's request, then stop, both in the background
stop_with_request() {
	stop_request &
	stop_in_background stop
	wait
}

test_expect_success 'nginx'"'"'s workers stop again, with the app running' '
	pid=$(app_pid stall) && is_pid "$pid" &&
	rm -f stop.rc stopreq.rc &&
	stop_workers
'

test_expect_success 'stop while nginx hangs: TERM only once nginx answers; a request meanwhile gets no 502' '
	stop_with_request &
	test_when_finished cont_workers &&
	# the stopped route is on its way to nginx; the engine answers
	retry_until 10 status_pending &&
	berth apps >apps &&
	test_grep "^stall +stopped" apps &&
	cont_workers &&
	retry_until 30 test -s stop.rc &&
	test "$(cat stop.rc)" = 0 &&
	test_grep "Stopping 1 process of stall" stop.out &&
	retry_until 30 test -s stopreq.rc &&
	test "$(cat stopreq.rc)" = 0 &&
	if grep -q "did not take the stopped route" stop.out
	then
		# the machine was slow: nginx resumed after the 2 s deadline,
		# so the TERM went out before nginx had the route (as the
		# contract says); a 502 is possible then and not checked
		say "nginx answered after the deadline: 502 not checked"
	else
		# nginx took the route before any TERM: the request got the
		# old process or the stopped page, never a 502
		code=$(cat stopreq.code) &&
		{ { test "$code" = 200 && test_grep "hello v2" stopreq.out; } ||
		  { test "$code" = 503 && test_grep "app is stopped" stopreq.out; }; }
	fi &&
	retry_until 15 status_says "nginx has it" &&
	! proc_alive "$pid" &&
	curl -sS --max-time 10 -H "Host: stall.localhost" \
		"http://127.0.0.1:$HTTP_PORT/" >page &&
	test_grep "app is stopped" page
'

test_expect_success 'started again; nginx'"'"'s workers stop' '
	berth start stall >out 2>&1 &&
	retry_until 30 through_nginx stall &&
	retry_until 15 status_says "nginx has it" &&
	pid=$(app_pid stall) && is_pid "$pid" &&
	rm -f stopd.rc &&
	stop_workers
'

test_expect_success 'stop while nginx hangs past the deadline: the processes stop all the same, after it, and the client is told' '
	stop_in_background stopd &
	test_when_finished cont_workers &&
	retry_until 10 status_pending &&
	# the workers stay stopped: the 2 s deadline passes
	retry_until 30 test -s stopd.rc &&
	test "$(cat stopd.rc)" = 0 &&
	# the TERM went out after the deadline: the client heard why first
	warn=$(grep -n "nginx did not take the stopped route (nginx.s router does not answer (2000 ms)); stopping anyway" stopd.out | cut -d: -f1) &&
	stopping=$(grep -n "Stopping 1 process of stall" stopd.out | cut -d: -f1) &&
	test -n "$warn" && test -n "$stopping" && test "$warn" -lt "$stopping" &&
	! proc_alive "$pid" &&
	cont_workers &&
	retry_until 15 status_says "nginx has it" &&
	curl -sS --max-time 10 -H "Host: stall.localhost" \
		"http://127.0.0.1:$HTTP_PORT/" >page &&
	test_grep "app is stopped" page
'

certs_add_in_background() {
	berth certs:add stall server.crt server.key >certs.out 2>&1
	echo $? >certs.rc
}

test_expect_success 'nginx'"'"'s workers stop; a routing change waits for them' '
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
		-days 60 -subj /CN=stall.localhost -keyout server.key \
		-out server.crt -addext "subjectAltName=DNS:stall.localhost" \
		2>/dev/null &&
	rm -f certs.rc &&
	stop_workers &&
	# a routing change first, then the certificates behind it in the
	# queue: nginx hears them in that order
	berth domains:add stall certs.stall.test >out
'

test_expect_success 'certs:add while nginx hangs: the engine answers meanwhile; certs:add gets nginx'"'"'s outcome' '
	certs_add_in_background &
	test_when_finished cont_workers &&
	retry_until 10 status_pending &&
	berth apps >apps &&
	test_grep "^stall +stopped" apps &&
	# nginx never answers: certs:add gets the same error as before
	retry_until 30 test -s certs.rc &&
	test "$(cat certs.rc)" != 0 &&
	test_grep "nginx.s router does not answer \(2000 ms\)" certs.out &&
	cont_workers &&
	retry_until 15 status_says "nginx has it" &&
	# with nginx running, it takes it
	berth certs:add stall server.crt server.key >out &&
	test_grep "Installed the certificate of .stall." out &&
	berth certs stall >out &&
	test_grep "certificate added by hand" out
'

restart_in_background() {
	berth restart stall web.2 >restart.out 2>&1
	echo $? >restart.rc
}

test_expect_success 'two web processes; nginx'"'"'s workers stop' '
	berth start stall >out 2>&1 &&
	berth scale stall web=2 >out 2>&1 &&
	retry_until 30 ps_line_matches stall "^web.2 " &&
	retry_until 15 status_says "nginx has it" &&
	old2=$(app_pid stall web.2) && is_pid "$old2" &&
	rm -f restart.rc &&
	stop_workers
'

test_expect_success 'restart of one web process while nginx hangs: out of the route first, TERM once nginx has it' '
	restart_in_background &
	test_when_finished cont_workers &&
	retry_until 10 status_pending &&
	berth apps >apps &&
	test_grep "^stall +" apps &&
	cont_workers &&
	retry_until 30 test -s restart.rc &&
	test "$(cat restart.rc)" = 0 &&
	test_grep "Restarted web.2" restart.out &&
	! proc_alive "$old2" &&
	retry_until 15 status_says "nginx has it" &&
	through_nginx stall | grep -q "hello v2"
'

# two stops at once, each in the background; back when both answered
stop_twice() {
	stop_in_background s1 &
	stop_in_background s2
	wait $!		# not the engine's: it is a job of this shell too
}

test_expect_success 'two stops at once: both answer, the processes stop once' '
	pid=$(app_pid stall) && is_pid "$pid" &&
	rm -f s1.rc s2.rc &&
	stop_twice &&
	test "$(cat s1.rc)" = 0 &&
	test "$(cat s2.rc)" = 0 &&
	! proc_alive "$pid" &&
	curl -sS --max-time 10 -H "Host: stall.localhost" \
		"http://127.0.0.1:$HTTP_PORT/" >page &&
	test_grep "app is stopped" page
'

test_done
