#!/bin/bash
# rollback over SSH brings an earlier pushed version back without a build;
# releases shows the commits.
. "$(dirname "$0")/test-lib.sh"
. "$TEST_DIR/lib-daemon.sh"
. "$TEST_DIR/lib-pipeline.sh"

ssh_deploy() { $GIT_SSH_COMMAND -p "$SSH_PORT" git@127.0.0.1 "$@"; }
version() { through_nginx rb / | sed -n 's/^hello \([^ ]*\) .*/\1/p'; }

test_expect_success 'setup: two pushed versions' '
	start_berth &&
	setup_push_key &&
	new_app_repo rb &&
	add_web_app rb v1 &&
	echo "web: python3 web.py" >rb/Procfile &&
	commit_all rb one &&
	push rb >out &&
	c1=$(git -C rb rev-parse HEAD) &&
	echo v2 >rb/VERSION &&
	commit_all rb two &&
	push rb >out &&
	test "$(version)" = v2
'

test_expect_success 'releases shows each push with its commit and buildpack' '
	ssh_deploy releases rb >rels &&
	test_grep "^v2\* +live +$(git -C rb rev-parse --short=10 HEAD) .* procfile +push" rels &&
	test_grep "^v1 +deployed +${c1:0:10} " rels
'

test_expect_success 'rollback: the previous version, no build' '
	ssh_deploy rollback rb >out 2>&1 &&
	test_grep "Rolling back rb to release 1" out &&
	test_grep "Release 3 of rb is live" out &&
	test_grep_not "detected|Building|Packing" out &&
	test "$(version)" = v1
'

test_expect_success 'rollback to a release that does not exist fails and changes nothing' '
	test_must_fail ssh_deploy rollback rb 42 2>err &&
	test_grep "^error: release 42 of .rb. does not exist" err &&
	test "$(version)" = v1
'

test_done
