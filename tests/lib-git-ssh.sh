# lib-git-ssh.sh: tests of git over ssh through berth's sessions, whose
# transfers run as berth-ssh.  Source after test-lib.sh; brings
# lib-ssh.sh.  Sets git's identity and a HOME of the test's own, and
# BERTH_ROOT ($TRASH/root).
#
#   git_ssh_apps PREFIX     two app names of this run, A (PREFIXa$$) and
#                           B (PREFIXb$$), and their repositories
#                           REPO_A and REPO_B
#   git_ssh_setup           in a setup step: the engine, alice's admin
#                           key, git over ssh (GIT_SSH_COMMAND),
#                           berth-ssh's uid in SSH_UID (and ./ssh-uid),
#                           and ./app, a repository with a worker process
#                           and a Procfile, nothing committed yet
#   status_field PID FIELD  FIELD of /proc/PID/status

. "$TEST_DIR/lib-ssh.sh"

export HOME="$TRASH" GIT_CONFIG_NOSYSTEM=1
export GIT_AUTHOR_NAME=A GIT_AUTHOR_EMAIL=a@example.com
export GIT_COMMITTER_NAME=C GIT_COMMITTER_EMAIL=c@example.com
unset GIT_SSH SSH_AUTH_SOCK

BERTH_ROOT=$TRASH/root

git_ssh_apps() {
	A=$1a$$
	B=$1b$$
	REPO_A="$BERTH_ROOT/apps/$A/repo.git"
	REPO_B="$BERTH_ROOT/apps/$B/repo.git"
}

git_ssh_setup() {
	start_berth &&
	make_key alice &&
	berth keys add --admin "$TRASH/alice.pub" &&
	ssh_args alice &&
	export GIT_SSH_COMMAND="ssh ${SSH_ARGS[*]:0:$((${#SSH_ARGS[@]} - 1))}" &&
	getent passwd berth-ssh >pw &&
	IFS=: read -r name x SSH_UID rest <pw &&
	echo "$SSH_UID" >ssh-uid &&
	git init -q -b main app &&
	cp "$TOP/tests/apps/worker.py" app/ &&
	echo "worker: python3 worker.py" >app/Procfile
}

status_field() { sed -n "s/^$2:[[:space:]]*//p" "/proc/$1/status"; }
