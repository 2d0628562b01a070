#!/bin/bash
# The webhook output plugin: a JSON POST after each push, deployed or
# failed; a dead webhook never fails a deploy.
. "$(dirname "$0")/test-lib.sh"
. "$TEST_DIR/lib-daemon.sh"
. "$TEST_DIR/lib-pipeline.sh"

test_expect_success 'listener, engine with a server-wide webhook, push key' '
	start_webhook_listener "$TRASH/hooks.log" &&
	BERTH_YAML="webhook: http://127.0.0.1:$WEBHOOK_PORT/deployed" &&
	start_berth &&
	setup_push_key
'

test_expect_success 'a deploy posts app, release, commit, status and duration' '
	new_app_repo whapp &&
	add_web_app whapp v1 &&
	echo "web: python3 web.py" >whapp/Procfile &&
	commit_all whapp one &&
	push whapp >out &&
	test_grep "Release 1 of whapp is live" out &&
	sha=$(git -C whapp rev-parse HEAD) &&
	retry_until 10 test -s "$TRASH/hooks.log" &&
	test_grep "^application/json \{\"app\":\"whapp\",\"release\":1,\"commit\":\"$sha\",\"status\":\"deployed\",\"duration_ms\":[0-9]+\}$" \
		"$TRASH/hooks.log"
'

test_expect_success 'a failed push posts status failed' '
	echo "all:; @exit 1" >whapp/Makefile &&
	commit_all whapp two &&
	test_must_fail push whapp >out &&
	sha=$(git -C whapp rev-parse HEAD) &&
	retry_until 10 grep -q "\"status\":\"failed\"" "$TRASH/hooks.log" &&
	test_grep "\{\"app\":\"whapp\",\"release\":null,\"commit\":\"$sha\",\"status\":\"failed\"" \
		"$TRASH/hooks.log"
'

test_expect_success 'a dead app webhook is a warning; the deploy goes on' '
	dead=$(free_port) &&
	git -C whapp rm -q Makefile &&
	echo "webhook: http://127.0.0.1:$dead/nobody" >whapp/app.yaml &&
	commit_all whapp three &&
	push whapp >out &&
	rel=$(live_release out whapp) &&
	test -n "$rel" &&
	test_grep "remote:  !     warning: webhook .http://127.0.0.1:$dead/nobody. failed" out &&
	test $(grep -c "\"release\":$rel," "$TRASH/hooks.log") = 1
'

test_done
