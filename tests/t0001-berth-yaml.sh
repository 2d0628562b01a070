#!/bin/bash
# berth.yaml: every mistake reported at its line and column, nothing
# started; good settings reach the engine; command-line options win.
. "$(dirname "$0")/test-lib.sh"
. "$TEST_DIR/lib-daemon.sh"

BERTH_ROOT=$TRASH/root
export BERTH_ROOT

# serve_bad: berth serve must refuse to start (a hang counts as a failure:
# timeout's 124 has no expected stderr)
serve_bad() {
	timeout 20 "$BERTH" --root "$BERTH_ROOT" serve \
		--ssh-listen "127.0.0.1:$(free_port)" \
		--http-listen "127.0.0.1:$(free_port)" 2>err
}

test_expect_success 'every error in berth.yaml is listed, then serve stops' '
	mkdir -p "$BERTH_ROOT" &&
	printf "drain: soon\nports: 5-4\nfoo: 1\nmax_sessions: 0\ndomain: \"bad host!\"\n" \
		>"$BERTH_ROOT/berth.yaml" &&
	test_must_fail serve_bad &&
	cat >expect <<-\EOF &&
	berth: berth.yaml:1:8: '"'"'drain'"'"' must be a duration like 2s or 500ms
	berth.yaml:2:8: '"'"'ports'"'"' must be a range like 20000-29999 within 1024-65535
	berth.yaml:3:1: unknown key '"'"'foo'"'"'
	berth.yaml:4:15: '"'"'max_sessions'"'"' must be a number from 1 to 10000
	berth.yaml:5:9: '"'"'domain'"'"' must be a host name like example.com
	EOF
	test_cmp expect err &&
	test ! -e "$BERTH_ROOT/run/berth.sock"
'

test_expect_success 'a YAML syntax error names its line and column' '
	printf "drain: 1s\nports: [20000\n" >"$BERTH_ROOT/berth.yaml" &&
	test_must_fail serve_bad &&
	test_grep "^berth: berth.yaml:3:1: did not find expected .,. or .]." err &&
	test ! -e "$BERTH_ROOT/run/berth.sock"
'

test_expect_success 'a password in a berth.yaml others can read is refused' '
	printf "postgres: host=/nonexistent password=hunter2\n" >"$BERTH_ROOT/berth.yaml" &&
	chmod 644 "$BERTH_ROOT/berth.yaml" &&
	test_must_fail serve_bad &&
	test_grep "^berth: berth.yaml:1:11: .postgres. holds a password but berth.yaml is readable by others" err &&
	test_grep_not hunter2 err
'

test_expect_success 'good settings reach the engine' '
	base=$(( 50000 + (RANDOM % 150) * 100 )) &&  # free_port uses 30000-49999
	cat >"$BERTH_ROOT/berth.yaml" <<-EOF &&
	# server settings
	ports: $base-$((base + 9))
	domain: apps.example.test
	drain: 100ms
	stop_timeout: 2s
	health_timeout: 15s
	keep_releases: 2
	EOF
	start_berth &&
	test_grep "domain apps.example.test" "$TRASH/berth.log" &&
	make_web_bundle "$TRASH/v1.tar.gz" v1 &&
	berth deploy cfg "$TRASH/v1.tar.gz" &&
	port=$(app_port cfg) &&
	test "$port" -ge "$base" && test "$port" -le "$((base + 9))" &&
	get "http://127.0.0.1:$port/" >body &&
	test_grep "hello v1" body
'

test_expect_success 'command-line options win over berth.yaml' '
	stop_berth &&
	start_berth --domain cli.example.test &&
	test_grep "domain cli.example.test" "$TRASH/berth.log"
'

test_expect_success 'a bad command-line value is refused like a bad key' '
	stop_berth &&
	test_must_fail timeout 20 "$BERTH" --root "$BERTH_ROOT" serve --domain "a..b" 2>err &&
	test_grep "^berth serve: .domain. must be a host name like example.com" err
'

test_expect_success 'config-check shows the settings or the errors' '
	"$BERTH" --root "$BERTH_ROOT" config-check >out &&
	test_grep "^configuration OK$" out &&
	test_grep "^drain: " out &&
	cp "$BERTH_ROOT/berth.yaml" saved.yaml &&
	printf "drain: soon\n" >>"$BERTH_ROOT/berth.yaml" &&
	test_must_fail "$BERTH" --root "$BERTH_ROOT" config-check >out 2>err &&
	test_grep "berth.yaml:[0-9]+:[0-9]+: " err &&
	test_grep_not "configuration OK" out &&
	cp saved.yaml "$BERTH_ROOT/berth.yaml"
'

test_expect_success 'cluster settings: groups as a list or a word, bad ones refused' '
	cp "$BERTH_ROOT/berth.yaml" saved.yaml &&
	printf "groups: [web, api-2]\nhost_name: web-1\nadvertise_address: 10.0.0.11\n" >>"$BERTH_ROOT/berth.yaml" &&
	"$BERTH" --root "$BERTH_ROOT" config-check >out &&
	test_grep "^groups: \"web,api-2\"" out &&
	test_grep "^host_name: \"web-1\"" out &&
	cp saved.yaml "$BERTH_ROOT/berth.yaml" &&
	printf "groups: [Web]\n" >>"$BERTH_ROOT/berth.yaml" &&
	test_must_fail "$BERTH" --root "$BERTH_ROOT" config-check 2>err &&
	test_grep "groups. must be a list of up to 16 group names" err &&
	cp saved.yaml "$BERTH_ROOT/berth.yaml" &&
	printf "groups: [[web]]\n" >>"$BERTH_ROOT/berth.yaml" &&
	test_must_fail "$BERTH" --root "$BERTH_ROOT" config-check 2>err &&
	test_grep "groups. must be a list of group names" err &&
	cp saved.yaml "$BERTH_ROOT/berth.yaml" &&
	printf "cluster: \"host=db password=x\"\n" >>"$BERTH_ROOT/berth.yaml" &&
	chmod 644 "$BERTH_ROOT/berth.yaml" &&
	test_must_fail "$BERTH" --root "$BERTH_ROOT" config-check 2>err &&
	test_grep "cluster. holds a password but berth.yaml is readable by others" err &&
	cp saved.yaml "$BERTH_ROOT/berth.yaml"
'

test_expect_success 'rollout: one-by-one by default, parallel, nothing else' '
	cp "$BERTH_ROOT/berth.yaml" saved.yaml &&
	"$BERTH" --root "$BERTH_ROOT" config-check >out &&
	test_grep "^rollout: \"one-by-one\"" out &&
	printf "rollout: parallel\n" >>"$BERTH_ROOT/berth.yaml" &&
	"$BERTH" --root "$BERTH_ROOT" config-check >out &&
	test_grep "^rollout: \"parallel\"" out &&
	cp saved.yaml "$BERTH_ROOT/berth.yaml" &&
	printf "rollout: fast\n" >>"$BERTH_ROOT/berth.yaml" &&
	test_must_fail "$BERTH" --root "$BERTH_ROOT" config-check 2>err &&
	test_grep "rollout. must be one-by-one or parallel" err &&
	cp saved.yaml "$BERTH_ROOT/berth.yaml"
'

test_expect_success 'the SSH door settings: OpenSSH-like values, bad ones refused' '
	cp "$BERTH_ROOT/berth.yaml" saved.yaml &&
	test_when_finished "cp saved.yaml \"$BERTH_ROOT/berth.yaml\"" &&
	"$BERTH" --root "$BERTH_ROOT" config-check >out &&
	test_grep "^ssh_max_startups: \"10:30:100\"$" out &&
	test_grep "^ssh_per_source_max_startups: 10$" out &&
	test_grep "^ssh_login_grace_time: 120000ms$" out &&
	test_grep "^ssh_max_followers: 64$" out &&
	printf "ssh_max_startups: 5\ngit_idle_timeout: 30s\n" >>"$BERTH_ROOT/berth.yaml" &&
	"$BERTH" --root "$BERTH_ROOT" config-check >out &&
	test_grep "^ssh_max_startups: \"5\"$" out &&
	test_grep "^git_timeout: 30000ms$" out &&
	for bad in 10:30 30:10:20 10:101:100 0 x:y:z 10:30:100:1; do
		cp saved.yaml "$BERTH_ROOT/berth.yaml" &&
		echo "ssh_max_startups: \"$bad\"" >>"$BERTH_ROOT/berth.yaml" &&
		test_must_fail "$BERTH" --root "$BERTH_ROOT" config-check >out 2>err &&
		test_grep "ssh_max_startups.* must be START:RATE:FULL like 10:30:100" err || return 1
	done
'

test_done
