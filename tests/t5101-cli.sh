#!/bin/bash
# The command line as a new user meets it: help, version and COMMAND --help
# without a running engine; exit status 100 for every usage error, locally
# and over SSH; --root DIR after the command; create NAME (apps:create).
. "$(dirname "$0")/test-lib.sh"
. "$TEST_DIR/lib-ssh.sh"

# status CMD...: run it, print its exit status
status() { "$@" >/dev/null 2>&1 </dev/null; echo $?; }

# no_output FILE: the file is empty (shown when it is not)
no_output() {
	test -s "$1" || return 0
	echo "$1 is not empty:" >&2
	cat "$1" >&2
	return 1
}

test_expect_success 'help and version need no engine, nor a state directory' '
	export BERTH_ROOT="$TRASH/nothing-here" &&
	"$BERTH" help >help &&
	test_grep "^usage: berth \\[--root DIR\\] serve" help &&
	test_grep "^  apps " help &&
	test_grep "^  create NAME " help &&
	test_grep "^  rollback NAME \\[N\\] " help &&
	test_grep_not "build-log" help &&
	"$BERTH" version >version &&
	test_grep "^berth [0-9]" version &&
	"$BERTH" --help >help2 &&
	test_cmp help help2 &&
	test ! -e "$TRASH/nothing-here"
'

test_expect_success 'COMMAND --help shows that command, for every command' '
	sed -n "s/^  \\([a-z-]*\\) .*/\\1/p" help >commands &&
	test "$(wc -l <commands)" -ge 15 &&
	for c in $(cat commands); do
		"$BERTH" $c --help >out 2>err || { echo "$c --help failed"; return 1; }
		test_grep "^usage: berth $c" out || return 1
		no_output err || return 1
	done &&
	"$BERTH" logs myapp -h >out &&
	test_grep "^usage: berth logs NAME" out &&
	"$BERTH" config:set --help >out &&
	test_grep "^usage: berth config NAME" out &&
	"$BERTH" help scale >out &&
	test_grep "^usage: berth scale NAME TYPE=N" out &&
	test ! -e "$TRASH/nothing-here"
'

test_expect_success 'usage errors exit 100, with no engine to ask' '
	test "$(status "$BERTH" ps)" = 100 &&
	test_expect_code 100 "$BERTH" ps 2>err &&
	test_grep "^usage: berth ps NAME$" err &&
	test "$(status "$BERTH" logs)" = 100 &&
	test "$(status "$BERTH" scale app)" = 100 &&
	test "$(status "$BERTH" releases a b)" = 100 &&
	test "$(status "$BERTH" nosuch)" = 100 &&
	test_expect_code 100 "$BERTH" nosuch 2>err &&
	test_grep "unknown command .nosuch." err &&
	test "$(status "$BERTH" config-check extra)" = 100 &&
	test "$(status "$BERTH" --bogus apps)" = 100 &&
	test "$(status "$BERTH")" = 100 &&
	test "$(status "$BERTH" apps --root)" = 100 &&
	test "$(status "$BERTH" apps)" = 111 &&
	test ! -e "$TRASH/nothing-here"
'

unset BERTH_ROOT

# serve_root_after DIR: "berth serve --root DIR ..." in the background
serve_root_after() {
	"$BERTH" serve --root "$1" --ssh-listen "127.0.0.1:$(free_port)" \
		--http-listen "127.0.0.1:$(free_port)" >serve.out 2>serve.log &
	serve_pid=$!
}

test_expect_success '--root DIR after the command, for serve as for the rest' '
	root="$TRASH/after" &&
	mkdir -p "$root" &&
	printf "port_min: 21000\nport_max: 21099\n" >"$root/berth.yaml" &&
	"$BERTH" config-check --root "$root" >out &&
	test_grep "configuration OK" out &&
	serve_root_after "$root" &&
	test_atexit "kill $serve_pid" &&
	retry_until 30 grep -q "^berth: ready" serve.out &&
	"$BERTH" apps --root "$root" >apps &&
	test_grep "^NAME +STATUS" apps &&
	"$BERTH" create --root="$root" early >out &&
	test_grep "Created early" out &&
	"$BERTH" apps --root "$root" >apps &&
	test_grep "^early +new +- +-$" apps &&
	kill $serve_pid &&
	wait $serve_pid
'

test_expect_success 'setup: an engine and a key' '
	start_berth &&
	make_key admin &&
	berth keys add --admin "$TRASH/admin.pub" >/dev/null
'

test_expect_success 'create NAME and apps:create NAME make an app with no release' '
	berth create one >out &&
	test_grep "Created one" out &&
	berth apps:create two >/dev/null &&
	berth apps >apps &&
	test_grep "^one +new +- +-$" apps &&
	test_grep "^two +new +- +-$" apps &&
	test_must_fail berth create one 2>err &&
	test_grep "^error: app .one. already exists$" err &&
	test "$(status berth create Bad_Name)" = 1 &&
	berth config one set BUILDPACK=python >out &&
	test_grep "applies at the next deploy" out &&
	test "$(berth config one get BUILDPACK)" = python &&
	berth logs one >log &&
	test_grep "created one" log &&
	berth ps one >ps &&
	test_grep "^one: new, release 0" ps &&
	berth rm two --force >/dev/null &&
	! apps_line_matches "^two " &&
	make_web_bundle "$TRASH/w.tar.gz" v1 &&
	berth deploy one "$TRASH/w.tar.gz" >/dev/null &&
	berth apps >apps &&
	test_grep "^one +running +v1 +web.1$" apps
'

test_expect_success 'usage errors the engine finds exit 100 too' '
	test "$(status berth logs one -x)" = 100 &&
	test "$(status berth scale one web)" = 100 &&
	test "$(status berth rm one --nope)" = 100 &&
	test "$(status berth config one get)" = 100 &&
	test "$(status berth ps nosuchapp)" = 1
'

test_expect_success 'over ssh: 100 for usage errors, create works, internal commands do not' '
	test "$(status ssh_berth admin ps)" = 100 &&
	test "$(status ssh_berth admin nosuch)" = 100 &&
	test "$(status ssh_berth admin scale one web)" = 100 &&
	test "$(status ssh_berth admin ps nosuchapp)" = 1 &&
	ssh_berth admin create three >out &&
	test_grep "Created three" out &&
	ssh_berth admin apps:create four >/dev/null &&
	berth apps >apps &&
	test_grep "^three +new" apps &&
	test_grep "^four +new" apps &&
	test "$(status ssh_berth admin deploy one /etc/passwd)" = 1
'

test_done
