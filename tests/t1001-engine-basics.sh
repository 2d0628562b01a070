#!/bin/bash
# The engine runs an app from a bundle: deploy, supervise, scale, config,
# logs, rm.
. "$(dirname "$0")/test-lib.sh"
. "$TEST_DIR/lib-daemon.sh"

test_expect_success 'engine starts and answers' '
	start_berth &&
	berth version >out &&
	test_grep "^berth [0-9]" out &&
	test -S "$BERTH_ROOT/run/berth.sock"
'

test_expect_success 'deploy a bundle: the app answers on its port' '
	BUNDLE_APP_JSON=$WORKER_AT_1 make_web_bundle "$TRASH/v1.tar.gz" v1 "web: python3 web.py" "worker: python3 worker.py" &&
	berth deploy myapp "$TRASH/v1.tar.gz" >out &&
	test_grep "Release 1 of myapp is live" out &&
	port=$(app_port myapp) &&
	test -n "$port" &&
	get "http://127.0.0.1:$port/" >body &&
	test_grep "^hello v1 release 1" body
'

test_expect_success 'apps and ps list the app and its processes' '
	berth apps >out &&
	test_grep "^myapp +running +v1 +web.1 worker.1" out &&
	berth ps myapp >out &&
	test_grep "^web.1 +[0-9]+ +[0-9]+ +up" out &&
	test_grep "^worker.1 +[0-9]+ +- +up" out
'

test_expect_success 'the app gets PORT, BERTH_APP and BERTH_RELEASE' '
	port=$(app_port myapp) &&
	get "http://127.0.0.1:$port/env" >env &&
	test_grep "^PORT=$port$" env &&
	test_grep "^BERTH_APP=myapp$" env &&
	test_grep "^BERTH_RELEASE=1$" env
'

test_expect_success 'a crashed process is restarted' '
	port=$(app_port myapp) &&
	pid=$(app_pid myapp) &&
	{ curl -s "http://127.0.0.1:$port/crash" >/dev/null || :; } &&
	retry_until 10 ps_line_matches myapp "^web.1 +[0-9]+ .* up +[0-9]+s +1 " &&
	newpid=$(app_pid myapp) &&
	test "$newpid" != "$pid" &&
	retry_until 10 get "http://127.0.0.1:$port/" &&
	berth logs myapp -n 200 >log &&
	test_grep "web.1 exited with status 3; restarting" log
'

test_expect_success 'logs show the app output, stamped with time and process' '
	berth logs myapp -n 50 >log &&
	test_grep "^20[0-9-]+T[0-9:]+Z web.1 listening on" log &&
	test_grep "^20[0-9-]+T[0-9:]+Z worker.1 tick" log &&
	berth logs myapp -n 3 >short &&
	test $(wc -l <short) -eq 3
'

test_expect_success 'logs -f follows new lines' '
	(berth logs myapp -n 0 -f >follow 2>&1 &
	 echo $! >follow.pid) &&
	retry_until 10 grep -q "worker.1 tick" follow &&
	kill $(cat follow.pid)
'

test_expect_success 'scale web=2 runs two web processes on their own ports' '
	berth scale myapp web=2 >out &&
	berth ps myapp >ps &&
	test_grep "^web.1 " ps &&
	test_grep "^web.2 " ps &&
	p1=$(app_port myapp web.1) && p2=$(app_port myapp web.2) &&
	test "$p1" != "$p2" &&
	get "http://127.0.0.1:$p1/" && get "http://127.0.0.1:$p2/"
'

test_expect_success 'config set reaches the environment, unset removes it' '
	berth config myapp set GREETING=hi "SPACED=a b c" >out &&
	berth config myapp >cfg &&
	test_grep "^GREETING=hi$" cfg &&
	port=$(app_port myapp) &&
	get "http://127.0.0.1:$port/env" >env &&
	test_grep "^GREETING=hi$" env &&
	test_grep "^SPACED=a b c$" env &&
	berth config myapp unset SPACED &&
	port=$(app_port myapp) &&
	get "http://127.0.0.1:$port/env" >env &&
	test_grep_not "^SPACED=" env &&
	test_grep "^GREETING=hi$" env
'

test_expect_success 'a process type removed from the Procfile stops on the next deploy' '
	make_web_bundle "$TRASH/v2.tar.gz" v2 "web: python3 web.py" &&
	berth deploy myapp "$TRASH/v2.tar.gz" &&
	berth ps myapp >ps &&
	test_grep_not "^worker" ps &&
	for p in $(berth_procs); do
		! grep -q worker.py "/proc/$p/cmdline" 2>/dev/null ||
		{ echo "worker $p still runs"; return 1; }
	done
'

test_expect_success 'stop and start' '
	berth stop myapp &&
	berth ps myapp >ps &&
	test_grep_not " up " ps &&
	berth apps >apps &&
	test_grep "^myapp +stopped" apps &&
	berth start myapp &&
	port=$(app_port myapp) &&
	get "http://127.0.0.1:$port/" >body &&
	test_grep "hello v2" body
'

test_expect_success 'rm without --force asks for confirmation and keeps the app' '
	test_must_fail berth rm myapp </dev/null 2>err &&
	test_grep "confirm|--force" err &&
	berth apps >apps &&
	test_grep "^myapp " apps
'

test_expect_success 'rm --force leaves no process, folder or port behind' '
	port=$(app_port myapp) &&
	berth rm myapp --force &&
	berth apps >apps &&
	test_grep_not "^myapp " apps &&
	test ! -e "$BERTH_ROOT/apps/myapp" &&
	test ! -e "$BERTH_ROOT/logs/myapp" &&
	{ test -z "$(ls "$BERTH_ROOT/run" | grep myapp)" || { ls -la "$BERTH_ROOT/run"; false; }; } &&
	{ test -z "$(berth_procs)" || { ps -f $(berth_procs); false; }; } &&
	test_must_fail curl -s "http://127.0.0.1:$port/"
'

test_done
