#!/bin/bash
# Git clients that do not shell out to git push to, clone from and fetch
# from berth's SSH endpoint: libgit2 (pygit2), dulwich, and JGit with its
# own SSH client (JSch, which needs the ECDSA host key) and through
# GIT_SSH.  These clients keep their side open until the report comes.
. "$(dirname "$0")/test-lib.sh"
. "$TEST_DIR/lib-daemon.sh"
. "$TEST_DIR/lib-pipeline.sh"

export HOME="$TRASH"
# Debian's packages live in the system python, whatever python3 is first
# on PATH
PY=/usr/bin/python3
if ! $PY -c "import pygit2, dulwich" 2>/dev/null || ! command -v jgit >/dev/null; then
	test_skip "needs python3-pygit2, python3-dulwich and jgit-cli (scripts/install-deps)"
	test_done
fi

test_expect_success 'engine and push key' '
	start_berth &&
	setup_push_key &&
	URL="ssh://git@127.0.0.1:$SSH_PORT"
'

# pygit2 ACTION ARGS...: libgit2 through pygit2, with the push key
cat >"$TRASH/lg2.py" <<'EOF'
import os, sys
import pygit2

key = os.environ["TRASH"] + "/push-key"
out = []


class CB(pygit2.RemoteCallbacks):
    def __init__(self):
        super().__init__(credentials=pygit2.Keypair("git", key + ".pub", key, ""))

    def certificate_check(self, cert, valid, host):
        return True

    def sideband_progress(self, text):
        sys.stderr.write(text)

    def push_update_reference(self, ref, message):
        print("%s %s" % (ref, "ok" if message is None else "ng " + message))


action, args = sys.argv[1], sys.argv[2:]
if action == "push":
    repo = pygit2.Repository(args[0])
    if "berth" in repo.remotes.names():
        repo.remotes.delete("berth")
    repo.remotes.create("berth", args[1]).push(args[2:], callbacks=CB())
elif action == "clone":
    repo = pygit2.clone_repository(args[0], args[1], callbacks=CB())
    print(repo.head.target)
elif action == "fetch":
    repo = pygit2.Repository(args[0])
    stats = repo.remotes["origin"].fetch(callbacks=CB())
    print("received %d" % stats.received_objects)
EOF
pygit2() { timeout 120 $PY "$TRASH/lg2.py" "$@"; }

test_expect_success 'libgit2 (pygit2) pushes an app, which is built and deployed' '
	new_app_repo lg lgapp &&
	add_web_app lg v1 &&
	echo "web: python3 web.py" >lg/Procfile &&
	commit_all lg one &&
	pygit2 push lg "$URL/lgapp" refs/heads/main:refs/heads/main >out 2>err &&
	echo "refs/heads/main ok" >expect &&
	test_cmp expect out &&
	test_grep "Release 1 of lgapp is live" err &&
	get "http://127.0.0.1:$(app_port lgapp)/" >body &&
	test_grep "^hello v1" body
'

test_expect_success 'libgit2 pushes a second commit, a tag and a branch at once' '
	echo v2 >lg/VERSION &&
	commit_all lg two &&
	git -C lg tag -a v2 -m v2 &&
	pygit2 push lg "$URL/lgapp" refs/heads/main:refs/heads/main \
		refs/tags/v2:refs/tags/v2 refs/heads/main:refs/heads/side >out 2>err &&
	test_grep "refs/heads/main ok" out &&
	test_grep "refs/tags/v2 ok" out &&
	test_grep "refs/heads/side ok" out &&
	test_grep "Release 2 of lgapp is live" err &&
	test "$(git --git-dir="$BERTH_ROOT/apps/lgapp/repo.git" rev-parse v2)" = \
		"$(git -C lg rev-parse v2)"
'

test_expect_success 'libgit2 deletes a branch, and a ref that is not there is ok with a warning' '
	pygit2 push lg "$URL/lgapp" :refs/heads/side :refs/heads/never >out 2>err &&
	test_grep "refs/heads/side ok" out &&
	test_grep "refs/heads/never ok" out &&
	test_grep "warning: deleting a non-existent ref" err &&
	test_must_fail git --git-dir="$BERTH_ROOT/apps/lgapp/repo.git" \
		rev-parse -q --verify refs/heads/side
'

test_expect_success 'libgit2 may not delete the branch HEAD names' '
	pygit2 push lg "$URL/lgapp" :refs/heads/main >out 2>err &&
	test_grep "refs/heads/main ng deletion of the current branch prohibited" out &&
	git --git-dir="$BERTH_ROOT/apps/lgapp/repo.git" rev-parse -q --verify main
'

test_expect_success 'libgit2 clones, with the annotated tag, and fetches what is new' '
	pygit2 clone "$URL/lgapp" lgclone >out &&
	test "$(cat out)" = "$(git -C lg rev-parse main)" &&
	test "$(git -C lgclone cat-file -t v2)" = tag &&
	echo v3 >lg/VERSION &&
	commit_all lg three &&
	pygit2 push lg "$URL/lgapp" refs/heads/main:refs/heads/main >/dev/null 2>&1 &&
	pygit2 fetch lgclone >out &&
	test "$(git -C lgclone rev-parse origin/main)" = "$(git -C lg rev-parse main)" &&
	test_grep "received [1-9]$" out
'

# dulwich ACTION ARGS...: dulwich's porcelain, over OpenSSH (GIT_SSH_COMMAND)
cat >"$TRASH/dul.py" <<'EOF'
import sys
from dulwich import porcelain
from dulwich.repo import Repo

action, args = sys.argv[1], sys.argv[2:]
if action == "push":
    r = porcelain.push(args[0], args[1], args[2:], errstream=sys.stderr.buffer)
elif action == "clone":
    r = porcelain.clone(args[0], args[1], errstream=sys.stderr.buffer)
    print(r.head().decode())
elif action == "fetch":
    r = porcelain.fetch(args[0], args[1], errstream=sys.stderr.buffer)
    print(r.refs[b"refs/heads/main"].decode())
EOF
dulwich() { timeout 120 $PY "$TRASH/dul.py" "$@"; }

test_expect_success 'dulwich clones (capabilities after its want)' '
	dulwich clone "$URL/lgapp" dclone >out 2>err &&
	test "$(cat out)" = "$(git -C lg rev-parse main)" &&
	test "$(git -C dclone log --format=%s -1)" = three
'

test_expect_success 'dulwich pushes a commit to main, deployed, and to a branch' '
	echo v4 >dclone/VERSION &&
	git -C dclone add VERSION &&
	git -C dclone commit -q -m four &&
	dulwich push dclone "$URL/lgapp" refs/heads/main >out 2>err &&
	test_grep "Release [0-9]+ of lgapp is live" err &&
	dulwich push dclone "$URL/lgapp" refs/heads/main:refs/heads/dul >out 2>err &&
	test "$(git --git-dir="$BERTH_ROOT/apps/lgapp/repo.git" rev-parse dul)" = \
		"$(git -C dclone rev-parse main)" &&
	get "http://127.0.0.1:$(app_port lgapp)/" >body &&
	test_grep "^hello v4" body
'

test_expect_success 'dulwich fetches incrementally (multi_ack_detailed)' '
	git -C lg pull -q --ff-only deploy main &&
	echo v5 >lg/VERSION &&
	commit_all lg five &&
	git -C lg push -q -o skip-deploy deploy HEAD:main &&
	dulwich fetch dclone "$URL/lgapp" >out 2>err &&
	test "$(cat out)" = "$(git -C lg rev-parse main)" &&
	test_grep "Counting objects: 3, done" err
'

# JGit: the Debian launcher misses these jars on its class path, and Java
# takes user.home from the password file, not HOME
J=/usr/share/java
export JGIT_CLASSPATH="$J/org.eclipse.jgit.lfs.jar:$J/org.eclipse.jgit.http.apache.jar:$J/httpclient.jar:$J/httpcore.jar:$J/jsch.jar:$J/slf4j-api.jar:$J/slf4j-nop.jar"
export JAVA_TOOL_OPTIONS="-Duser.home=$TRASH"
jgit() { timeout 180 /usr/bin/jgit "$@"; }

test_expect_success 'JGit (JSch) knows the ECDSA host key and clones with an ECDSA user key' '
	mkdir -p .ssh &&
	ssh-keygen -q -t ecdsa -b 256 -m PEM -N "" -C jgit -f .ssh/id_ecdsa &&
	berth keys add .ssh/id_ecdsa.pub >/dev/null &&
	berth sharing lgapp add jgit >/dev/null &&
	echo "[127.0.0.1]:$SSH_PORT $(ssh-keygen -y -f "$BERTH_ROOT/host/ssh_host_ecdsa_key")" \
		>.ssh/known_hosts &&
	printf "Host berth\n  HostName 127.0.0.1\n  Port %s\n  User git\n  IdentityFile %s\n" \
		"$SSH_PORT" "$TRASH/.ssh/id_ecdsa" >.ssh/config &&
	jgit clone ssh://berth/lgapp jclone >out 2>&1 &&
	test "$(git -C jclone rev-parse HEAD)" = "$(git -C lg rev-parse main)"
'

test_expect_success 'JGit pushes with its own SSH client; the deploy runs' '
	echo v6 >jclone/VERSION &&
	git -C jclone commit -q -a -m six &&
	(cd jclone && jgit push origin main) >out 2>&1 &&
	test_grep "Release [0-9]+ of lgapp is live" out &&
	test "$(git --git-dir="$BERTH_ROOT/apps/lgapp/repo.git" rev-parse main)" = \
		"$(git -C jclone rev-parse HEAD)"
'

test_expect_success 'JSch refuses a host key that is not the one it knows' '
	cp .ssh/known_hosts known_hosts.good &&
	test_when_finished "cp known_hosts.good .ssh/known_hosts" &&
	ssh-keygen -q -t ecdsa -b 256 -N "" -f other &&
	echo "[127.0.0.1]:$SSH_PORT $(cat other.pub)" >.ssh/known_hosts &&
	test_must_fail jgit clone ssh://berth/lgapp jbad >out 2>&1 &&
	test ! -d jbad/.git
'

test_expect_success 'JGit through GIT_SSH (OpenSSH) clones and pushes' '
	printf "#!/bin/sh\nexec ssh -F /dev/null -i %s -o IdentitiesOnly=yes -o IdentityAgent=none -o BatchMode=yes -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR \"\$@\"\n" \
		"$TRASH/push-key" >gitssh &&
	chmod +x gitssh &&
	GIT_SSH="$TRASH/gitssh" jgit clone "$URL/lgapp" jext >out 2>&1 &&
	echo v7 >jext/VERSION &&
	git -C jext commit -q -a -m seven &&
	(cd jext && GIT_SSH="$TRASH/gitssh" jgit push origin main:refs/heads/ext) >out 2>&1 &&
	test "$(git --git-dir="$BERTH_ROOT/apps/lgapp/repo.git" rev-parse ext)" = \
		"$(git -C jext rev-parse HEAD)"
'

test_expect_success 'no session is left behind' '
	retry_until 10 sh -c "! pgrep -f \"[b]erth session --root $BERTH_ROOT\""
'

test_done
