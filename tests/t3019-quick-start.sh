#!/bin/bash
# The README's quick start, as written, for a user with no ~/.ssh and no
# key: its lines from "mkdir -p -m 700 ~/.ssh" to the curl are run as a
# script, with only what a test must change: this engine's ports and
# state directory, and (since ssh reads ~ from the password database, not
# $HOME) the home folder spelled out, with the first connection's host
# key accepted as the user would.  The push must end with the app's URL
# and the URL must answer.  Then the same app pushed from a master branch.
. "$(dirname "$0")/test-lib.sh"
. "$TEST_DIR/lib-daemon.sh"

test_expect_success 'engine' '
	start_berth
'

test_expect_success 'the quick start from the README works as written' '
	export HOME="$TRASH/home" &&
	mkdir -p "$HOME" && cd "$HOME" &&
	test ! -e "$HOME/.ssh" &&
	sed -n "/^    mkdir -p -m 700 ~\/.ssh$/,/^    curl http/p" "$TOP/README.md" |
		sed -e "s/^    //" \
		    -e "s/Port 2222/Port $SSH_PORT/" \
		    -e "s/:8080\//:$HTTP_PORT\//" \
		    -e "s#^\./berth #\"\$BERTH\" --root \"\$BERTH_ROOT\" #" \
		    -e "s#~/#$HOME/#g" \
		    -e "s#^curl #curl -sSf --max-time 10 --resolve myapp.localhost:$HTTP_PORT:127.0.0.1 #" \
		    >quick-start.sh &&
	test_grep "ssh-keygen -t ed25519" quick-start.sh &&
	test_grep "git push deploy HEAD:main" quick-start.sh &&
	export GIT_SSH_COMMAND="ssh -F $HOME/.ssh/config -o StrictHostKeyChecking=accept-new -o UserKnownHostsFile=$HOME/.ssh/known_hosts" &&
	bash -e quick-start.sh >out 2>&1 || { cat out; return 1; } &&
	test "$(stat -c %a "$HOME/.ssh")" = 700 &&
	test -f "$HOME/.ssh/id_ed25519" &&
	test_grep "Hello from berth" out &&
	grep "^remote: " out | tail -n 1 >last &&
	test_grep "^remote: +http://myapp\.localhost:$HTTP_PORT/ *$" last
'

test_expect_success 'a repository on master deploys the same way' '
	cd "$HOME" &&
	git init -q -b master old &&
	echo "<h1>from master</h1>" >old/index.html &&
	git -C old add . &&
	git -C old -c user.name=me -c user.email=me@example.com commit -q -m one &&
	git -C old remote add deploy deploy:oldapp &&
	git -C old push deploy master >out 2>&1 &&
	test_grep "Release 1 of oldapp is live" out &&
	curl -sSf --max-time 10 -H "Host: oldapp.localhost" "http://127.0.0.1:$HTTP_PORT/" | grep -q "from master"
'

test_done
