#!/bin/bash
# The dashboard's host comes from berth.yaml (dashboard_host), can be
# turned off, and a bad value is refused; a login link never redirects
# off the dashboard.
. "$(dirname "$0")/test-lib.sh"
. "$TEST_DIR/lib-daemon.sh"

test_expect_success 'a bad dashboard_host is refused with its line' '
	mkdir -p badroot &&
	printf "dashboard_host: \"bad host!\"\n" >badroot/berth.yaml &&
	test_must_fail "$BERTH" --root "$PWD/badroot" config-check 2>err &&
	test_grep "berth.yaml:1:.*dashboard_host.* must be a host name" err &&
	printf "dashboard_session: 10s\n" >badroot/berth.yaml &&
	test_must_fail "$BERTH" --root "$PWD/badroot" config-check 2>err &&
	test_grep "dashboard_session" err
'

test_expect_success 'dashboard_host names the host nginx routes and the link uses' '
	BERTH_YAML="dashboard_host: ops.example.test
dashboard_session: 90m" &&
	start_berth &&
	berth dashboard >out &&
	test_grep "^http://ops.example.test:$HTTP_PORT/login\?token=" out &&
	link=$(grep login out) &&
	curl -sS -H "Host: ops.example.test" -D hdr -o /dev/null \
		"http://127.0.0.1:$HTTP_PORT/login?${link#*/login?}&next=//evil.example/x" &&
	grep -iE "^set-cookie: berth_session=.*Max-Age=5400;" hdr &&
	grep -iE "^location: /\s*$" hdr &&
	curl -sS -o /dev/null -w "%{http_code}" -H "Host: berth.localhost" \
		"http://127.0.0.1:$HTTP_PORT/api/apps" >code &&
	test "$(cat code)" = 404 &&
	stop_berth
'

test_expect_success 'dashboard_host: off: no link, no route, no socket' '
	printf "dashboard_host: off\n" >>"$BERTH_ROOT/berth.yaml" &&
	sed -i "/^dashboard_host: ops/d" "$BERTH_ROOT/berth.yaml" &&
	start_berth &&
	test_must_fail berth dashboard 2>err &&
	test_grep "^error: the dashboard is off" err &&
	! test -e "$BERTH_ROOT/run/dashboard.sock" &&
	! ls "$BERTH_ROOT"/nginx/conf.d/ | grep -q dashboard &&
	curl -sS -o /dev/null -w "%{http_code}" -H "Host: ops.example.test" \
		"http://127.0.0.1:$HTTP_PORT/login" >code &&
	test "$(cat code)" = 404
'

test_done
