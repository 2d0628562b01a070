#!/bin/bash
# The users' guide set-up, exactly as docs/ssh.md writes it: a "Host deploy"
# block in ~/.ssh/config, then git push / git clone / ssh commands.
. "$(dirname "$0")/test-lib.sh"
. "$TEST_DIR/lib-daemon.sh"

export HOME="$TRASH" GIT_CONFIG_NOSYSTEM=1
export GIT_AUTHOR_NAME=A GIT_AUTHOR_EMAIL=a@example.com
export GIT_COMMITTER_NAME=C GIT_COMMITTER_EMAIL=c@example.com
unset GIT_SSH SSH_AUTH_SOCK
# OpenSSH finds ~ in the password database, not in $HOME: point it at this
# script's config, and spell out the paths it would take from ~.
export GIT_SSH_COMMAND="ssh -F $HOME/.ssh/config"
ssh() { command ssh -F "$HOME/.ssh/config" "$@"; }

test_expect_success 'setup: engine, key, ~/.ssh/config as documented' '
	start_berth &&
	mkdir -m 700 "$HOME/.ssh" &&
	ssh-keygen -q -t ed25519 -N "" -C me@laptop -f "$HOME/.ssh/id_ed25519" &&
	berth keys add "$HOME/.ssh/id_ed25519.pub" >out &&
	test_grep "^added me@laptop " out &&
	cat >"$HOME/.ssh/config" <<-EOF &&
	Host deploy
	    HostName 127.0.0.1
	    Port $SSH_PORT
	    User git
	    IdentityFile $HOME/.ssh/id_ed25519
	    IdentitiesOnly yes
	    UserKnownHostsFile $HOME/.ssh/known_hosts
	EOF
	chmod 600 "$HOME/.ssh/config" &&
	echo "[127.0.0.1]:$SSH_PORT $(ssh-keygen -y -f "$BERTH_ROOT/host/ssh_host_ed25519_key")" \
		>"$HOME/.ssh/known_hosts"
'

test_expect_success 'ssh deploy runs a command, host key checked' '
	ssh -o BatchMode=yes deploy version >out &&
	test_grep "^berth [0-9]" out
'

test_expect_success 'a changed host key is noticed by the client' '
	cp "$HOME/.ssh/known_hosts" known_hosts.good &&
	ssh-keygen -q -t ed25519 -N "" -f other-host &&
	echo "[127.0.0.1]:$SSH_PORT $(cat other-host.pub)" >"$HOME/.ssh/known_hosts" &&
	test_must_fail ssh -o BatchMode=yes deploy version 2>err &&
	test_grep "HOST IDENTIFICATION HAS CHANGED|Host key verification failed" err &&
	cp known_hosts.good "$HOME/.ssh/known_hosts"
'

test_expect_success 'git push deploy main deploys the app' '
	git init -q -b main app &&
	cp "$TOP/tests/apps/worker.py" app/ &&
	echo "worker: python3 worker.py" >app/Procfile &&
	git -C app add -A &&
	git -C app commit -q -m first &&
	git -C app remote add deploy deploy:myapp &&
	git -C app push deploy main >out 2>&1 &&
	test_grep "Release 1 of myapp is live" out &&
	berth apps >out &&
	test_grep "^myapp +running" out
'

test_expect_success 'ssh deploy logs myapp shows the app output' '
	retry_until 10 eval "ssh deploy logs myapp | grep -q tick"
'

test_expect_success 'git clone deploy:myapp gets the pushed commit' '
	git clone -q deploy:myapp clone &&
	test "$(git -C clone rev-parse HEAD)" = "$(git -C app rev-parse HEAD)"
'

test_expect_success 'a push to a bad name fails with the reason' '
	test_must_fail git -C app push deploy:Bad_Name main >out 2>&1 &&
	test_grep "Bad_Name|invalid|app name" out &&
	test_must_fail test -e "$BERTH_ROOT/apps/Bad_Name"
'

test_expect_success 'an unregistered key cannot push' '
	ssh-keygen -q -t ed25519 -N "" -C stranger -f stranger &&
	test_must_fail env GIT_SSH_COMMAND="ssh -F /dev/null -i $TRASH/stranger -o IdentitiesOnly=yes -o BatchMode=yes -o UserKnownHostsFile=$HOME/.ssh/known_hosts" \
		git -C app push "ssh://git@127.0.0.1:$SSH_PORT/myapp" main >out 2>&1 &&
	test_grep "Permission denied \(publickey\)" out
'

test_done
