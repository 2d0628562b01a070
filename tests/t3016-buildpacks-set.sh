#!/bin/bash
# buildpacks:set, buildpacks:add, buildpacks:remove, buildpacks:clear and
# buildpacks (Dokku's spellings), over ssh and locally: the list is kept
# per app and the next push (stock git) builds with it, in order, over
# the app's own .buildpacks; bad specs are refused with one line.
. "$(dirname "$0")/test-lib.sh"
. "$TEST_DIR/lib-ssh.sh"
. "$TEST_DIR/lib-pipeline.sh"
. "$TEST_DIR/lib-buildpacks.sh"

test_expect_success 'engine, push key, a buildpack in git, an app' '
	start_berth &&
	setup_push_key &&
	make_tool_pack "$TRASH/tool" &&
	publish_pack "$TRASH/tool" tool &&
	TOOL="file://$TRASH/git/tool.git" &&
	new_app_repo one &&
	add_web_app one v1 &&
	echo "web: python3 web.py" >one/Procfile &&
	commit_all one first &&
	push one >out &&
	test_grep "Release 1 of one is live" out &&
	test_grep_not "Tool app detected" out
'

test_expect_success 'buildpacks:set over ssh: kept, listed, used by the next push' '
	ssh_berth push-key buildpacks:set one "$TOOL" >out &&
	test_grep "^1\. file://$TRASH/git/tool\.git$" out &&
	test_grep "The next push of one builds with these" out &&
	test_grep_not "Release 2" out &&
	berth buildpacks one >list &&
	test_grep "^1\. file://$TRASH/git/tool\.git$" list &&
	echo v2 >one/VERSION &&
	commit_all one second &&
	push one >out &&
	test_grep "remote: -----> Buildpacks from buildpacks:set: 1" out &&
	test_grep "remote: -----> Tool app detected" out &&
	test_grep "Release 2 of one is live" out &&
	berth buildpacks one >list &&
	test_grep "release 2 was built with: .*tool\.git" list
'

test_expect_success 'the set list wins over the app'\''s .buildpacks' '
	echo "nosuch-pack-name" >one/.buildpacks &&
	commit_all one dotbuildpacks &&
	push one >out &&
	test_grep "Buildpacks from buildpacks:set" out &&
	test_grep "Release 3 of one is live" out
'

test_expect_success 'buildpacks:add and buildpacks:remove, locally' '
	berth buildpacks:add one python >out &&
	test_grep "^2\. python$" out &&
	berth buildpacks:remove one python >out &&
	test_grep_not "python" out &&
	test_must_fail berth buildpacks:remove one python 2>err &&
	test_grep "is not set for .one." err
'

test_expect_success 'bad specs: one line, nothing changes' '
	cp "$BERTH_ROOT/apps/one/buildpacks" keep &&
	test_must_fail ssh_berth push-key buildpacks:set one ftp://example.com/x.git 2>err &&
	test_grep "unsupported URL" err &&
	test $(wc -l <err) -eq 1 &&
	test_must_fail ssh_berth push-key buildpacks:set one /usr/share/pack 2>err &&
	test_grep "a path on the server cannot be set" err &&
	test_must_fail berth buildpacks:set one "Bad Name" 2>err &&
	test_must_fail berth buildpacks:set nosuch python 2>err &&
	test_grep "app .nosuch. does not exist" err &&
	test_must_fail berth buildpacks:set one 2>err &&
	test_grep "usage: berth buildpacks:set NAME BUILDPACK" err &&
	test_cmp keep "$BERTH_ROOT/apps/one/buildpacks"
'

test_expect_success 'buildpacks:clear: back to the app'\''s own choice' '
	ssh_berth push-key buildpacks:clear one >out &&
	test_grep "none set" out &&
	test ! -e "$BERTH_ROOT/apps/one/buildpacks" &&
	git -C one rm -q .buildpacks &&
	commit_all one nobuildpacks &&
	push one >out &&
	test_grep_not "Tool app detected" out &&
	test_grep "Release 4 of one is live" out
'

test_done
