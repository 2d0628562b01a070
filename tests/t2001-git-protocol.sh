#!/bin/bash
# Stock git pushes to and clones from berth's receive-pack and upload-pack,
# reached through "berth git-serve-stdio" standing in for the SSH session
# (GIT_SSH_COMMAND runs it with the command line ssh would send).
. "$(dirname "$0")/test-lib.sh"

ROOT="$TRASH/root"
REPO="$ROOT/apps/myapp/repo.git"
URL="deploy@berth:myapp"
export HOME="$TRASH" GIT_CONFIG_NOSYSTEM=1
export GIT_AUTHOR_NAME=A GIT_AUTHOR_EMAIL=a@example.com
export GIT_COMMITTER_NAME=C GIT_COMMITTER_EMAIL=c@example.com
mkdir -p "$ROOT"
# as root the server's repositories are berth-ssh's: the test's own git
# (root) reads them only if told they are safe
git config --global safe.directory "*"

# ssh stand-in: ignore host and options, serve the last argument
cat >"$TRASH/fake-ssh" <<EOF
#!/bin/sh
for last; do :; done
exec "$BERTH" git-serve-stdio --root "$ROOT" "\$last"
EOF
# the same, but the connection dies after CUT bytes from the client
cat >"$TRASH/cut-ssh" <<EOF
#!/bin/sh
for last; do :; done
head -c "\$CUT" | "$BERTH" git-serve-stdio --root "$ROOT" "\$last"
EOF
chmod +x "$TRASH/fake-ssh" "$TRASH/cut-ssh"
export GIT_SSH_COMMAND="$TRASH/fake-ssh"

# server_state FILE: refs and pack files of the server repository
server_state() {
	{
		git --git-dir="$REPO" for-each-ref --format="%(objectname) %(refname)" &&
		ls "$REPO/objects/pack" &&
		ls "$REPO/objects"
	} >"$1"
}

# undo the server-side settings and locks a step made (cleanup that
# must also run when that step failed half-way)
reset_server() {
	for k in receive.denyNonFastForwards receive.maxInputSize; do
		git --git-dir="$REPO" config --unset-all $k
	done
	rm -f "$REPO/refs/heads/zz.lock"
	return 0
}

commit_file() {
	echo "$2" >"src/$1" &&
	git -C src add "$1" &&
	git -C src commit -q -m "$1: $2"
}

test_expect_success 'first push creates the repository' '
	git init -q -b work src &&
	commit_file a one &&
	test ! -e "$REPO" &&
	git -C src push "$URL" work 2>err &&
	test -f "$REPO/HEAD" &&
	test "$(git --git-dir="$REPO" rev-parse --is-bare-repository)" = true &&
	test "$(git --git-dir="$REPO" rev-parse work)" = "$(git -C src rev-parse work)" &&
	test_grep "\[new branch\] +work -> work" err
'

test_expect_success 'HEAD names the only branch of the first push' '
	test "$(git --git-dir="$REPO" symbolic-ref HEAD)" = refs/heads/work
'

test_expect_success 'second push fast-forwards' '
	commit_file b two &&
	git -C src push "$URL" work 2>err &&
	test "$(git --git-dir="$REPO" rev-parse work)" = "$(git -C src rev-parse work)"
'

test_expect_success 'pushing nothing new is up to date and succeeds' '
	git -C src push "$URL" work 2>err &&
	test_grep "Everything up-to-date" err
'

test_expect_success 'clone returns the same history' '
	git clone -q "$URL" clone &&
	git -C src log --format="%H %s" work >expect &&
	git -C clone log --format="%H %s" >actual &&
	test_cmp expect actual &&
	test "$(git -C clone symbolic-ref HEAD)" = refs/heads/work
'

test_expect_success 'annotated tags travel both ways' '
	git -C src tag -a v1 -m "version 1" &&
	git -C src push "$URL" v1 &&
	git ls-remote "$URL" >refs &&
	test_grep "^$(git -C src rev-parse v1)[[:space:]]+refs/tags/v1$" refs &&
	test_grep "^$(git -C src rev-parse v1^{})[[:space:]]+refs/tags/v1\^\{\}$" refs &&
	git -C clone fetch -q --tags &&
	test "$(git -C clone rev-parse v1)" = "$(git -C src rev-parse v1)" &&
	git -C clone cat-file -t v1 >type &&
	echo tag >expect &&
	test_cmp expect type
'

test_expect_success 'fetch after new pushes negotiates and gets only the rest' '
	commit_file c three &&
	commit_file d four &&
	git -C src push "$URL" work &&
	GIT_TRACE_PACKET="$TRASH/trace" git -C clone fetch --progress origin 2>err &&
	test "$(git -C clone rev-parse origin/work)" = "$(git -C src rev-parse work)" &&
	git -C clone fsck --strict 2>&1 &&
	test_grep "fetch< ACK $(git -C clone rev-parse v1^{})" "$TRASH/trace" &&
	test_grep "remote: Counting objects: 6, done" err
'

test_expect_success 'a non-fast-forward push is refused by the client' '
	git -C src branch keep &&
	git -C src reset -q --hard HEAD~1 &&
	commit_file e diverged &&
	before=$(git --git-dir="$REPO" rev-parse work) &&
	test_must_fail git -C src push "$URL" work 2>err &&
	test_grep "rejected.*non-fast-forward" err &&
	test "$(git --git-dir="$REPO" rev-parse work)" = "$before"
'

test_expect_success 'the same push with --force is accepted' '
	git -C src push --force "$URL" work 2>err &&
	test_grep "forced update" err &&
	test "$(git --git-dir="$REPO" rev-parse work)" = "$(git -C src rev-parse work)"
'

test_expect_success 'receive.denyNonFastForwards refuses even a forced push' '
	git --git-dir="$REPO" config receive.denyNonFastForwards true &&
	before=$(git --git-dir="$REPO" rev-parse work) &&
	test_must_fail git -C src push --force "$URL" keep:work 2>err &&
	test_grep "remote rejected.*non-fast-forward" err &&
	test "$(git --git-dir="$REPO" rev-parse work)" = "$before" &&
	reset_server
'

test_expect_success 'a branch can be created and deleted' '
	git -C src push "$URL" work:feature &&
	git --git-dir="$REPO" rev-parse --verify -q refs/heads/feature &&
	git -C src push "$URL" :feature 2>err &&
	test_grep "\[deleted\] +feature" err &&
	test_must_fail git --git-dir="$REPO" rev-parse --verify -q refs/heads/feature
'

test_expect_success 'deleting a branch that is not there is refused' '
	test_must_fail git -C src push "$URL" :nothere 2>err &&
	test_grep "nothere" err
'

test_expect_success 'atomic push where one ref fails the checks moves none' '
	git --git-dir="$REPO" config receive.denyNonFastForwards true &&
	server_state before &&
	test_must_fail git -C src push --atomic --force "$URL" keep:work work:other 2>err &&
	test_grep "work -> other \(atomic push failure\)" err &&
	test_grep "keep -> work \(non-fast-forward\)" err &&
	server_state after &&
	test_cmp before after &&
	reset_server
'

test_expect_success 'atomic push where a ref fails to move rolls the others back' '
	reset_server &&
	: >"$REPO/refs/heads/zz.lock" &&
	git --git-dir="$REPO" for-each-ref >before &&
	test_must_fail git -C src push --atomic "$URL" work:aa work:zz 2>err &&
	test_grep "work -> aa \(atomic push failure\)" err &&
	test_grep "work -> zz \(failed" err &&
	test_grep_not "/" <(grep "work -> zz" err | sed "s|refs/heads||") &&
	git --git-dir="$REPO" for-each-ref >after &&
	test_cmp before after
'

test_expect_success 'without --atomic the good ref moves and the bad one does not' '
	: >"$REPO/refs/heads/zz.lock" &&
	test_must_fail git -C src push "$URL" work:aa work:zz 2>err &&
	test_grep "\[new branch\] +work -> aa" err &&
	test "$(git --git-dir="$REPO" rev-parse aa)" = "$(git -C src rev-parse work)" &&
	test_must_fail git --git-dir="$REPO" rev-parse --verify -q refs/heads/zz &&
	reset_server &&
	git -C src push "$URL" :aa
'

test_expect_success 'push option skip-deploy: the deploy branch moves, no build runs' '
	git -C src push -o skip-deploy "$URL" work:main 2>err &&
	test_grep "remote: -----> Skipping deploy \(push option skip-deploy\)" err &&
	test "$(git --git-dir="$REPO" rev-parse main)" = "$(git -C src rev-parse work)"
'

test_expect_success 'a failed deploy reports the deploy branch as rejected; it stays' '
	before=$(git --git-dir="$REPO" rev-parse main) &&
	commit_file f deploy-me &&
	test_must_fail git -C src push "$URL" work:main 2>err &&
	test_grep "! \[remote rejected\] +work -> main \(deploy failed: " err &&
	test "$(git --git-dir="$REPO" rev-parse main)" = "$before"
'

test_expect_success 'thin pack: a changed large file is sent as a delta and completed' '
	python3 -c "import random; random.seed(7); print(\"\\n\".join(str(random.random()) for _ in range(50000)))" >src/big.txt &&
	git -C src add big.txt &&
	git -C src commit -q -m big &&
	git -C src push "$URL" work &&
	echo "one more line" >>src/big.txt &&
	git -C src commit -q -a -m "big, changed" &&
	git -C src push --progress "$URL" work 2>err &&
	test_grep "remote: Received .*completed from the repository" err &&
	test "$(git --git-dir="$REPO" rev-parse work)" = "$(git -C src rev-parse work)" &&
	git --git-dir="$REPO" fsck --strict 2>&1 &&
	git --git-dir="$REPO" cat-file -p work:big.txt | tail -n 1 >last &&
	echo "one more line" >expect &&
	test_cmp expect last
'

test_expect_success 'a pack over receive.maxInputSize is refused, nothing stored' '
	reset_server &&
	git --git-dir="$REPO" config receive.maxInputSize 4k &&
	head -c 200000 /dev/urandom >src/random.bin &&
	git -C src add random.bin &&
	git -C src commit -q -m random &&
	server_state before &&
	test_must_fail git -C src push "$URL" work 2>err &&
	test_grep "pack exceeds maximum allowed size" err &&
	server_state after &&
	test_cmp before after &&
	reset_server
'

test_expect_success 'a pack over max_pack_size (berth.yaml) is refused' '
	reset_server &&
	echo "max_pack_size: 2048" >"$ROOT/berth.yaml" &&
	server_state before &&
	test_must_fail git -C src push "$URL" work 2>err &&
	rm "$ROOT/berth.yaml" &&
	test_grep "pack exceeds maximum allowed size \(2048 bytes\)" err &&
	server_state after &&
	test_cmp before after
'

test_expect_success 'deploy_branch (berth.yaml) picks the branch that deploys' '
	reset_server &&
	echo "deploy_branch: production" >"$ROOT/berth.yaml" &&
	held=$(git --git-dir="$REPO" rev-parse work) &&
	git -C src push --force "$URL" $held:refs/heads/main 2>err &&
	test_grep_not "deploy failed" err &&
	test_must_fail git -C src push "$URL" $held:refs/heads/production 2>err &&
	rm "$ROOT/berth.yaml" &&
	test_grep "-> production \(deploy failed: " err &&
	test -z "$(git --git-dir="$REPO" rev-parse --verify -q production)"
'

test_expect_success 'a client that dies mid-pack changes nothing' '
	reset_server &&
	server_state before &&
	test_must_fail env GIT_SSH_COMMAND="$TRASH/cut-ssh" CUT=60000 \
		git -C src push "$URL" work 2>err &&
	server_state after &&
	test_cmp before after
'

test_expect_success 'a truncated pack fed by hand changes nothing' '
	reset_server &&
	old=$(git --git-dir="$REPO" rev-parse work) &&
	new=$(git -C src rev-parse work) &&
	printf "%s\n^%s\n" "$new" "$old" |
		git -C src pack-objects --revs --stdout -q >full.pack &&
	size=$(wc -c <full.pack) &&
	test "$size" -gt 1000 &&
	line="$old $new refs/heads/work" &&
	{ printf "%04x%s0000" $((${#line} + 4)) "$line" &&
	  head -c $((size / 2)) full.pack; } >request &&
	server_state before &&
	test_must_fail "$BERTH" git-serve-stdio --root "$ROOT" \
		"git-receive-pack '\''myapp'\''" <request >reply 2>stderr &&
	server_state after &&
	test_cmp before after &&
	{ printf "%04x%s0000" $((${#line} + 4)) "$line" && cat full.pack; } >request &&
	"$BERTH" git-serve-stdio --root "$ROOT" "git-receive-pack '\''myapp'\''" \
		<request >reply &&
	test "$(git --git-dir="$REPO" rev-parse work)" = "$new"
'

test_expect_success 'a shallow clone can push on top of history we hold' '
	reset_server &&
	git clone -q --depth 2 "file://$TRASH/src" shallow &&
	test -f shallow/.git/shallow &&
	echo more >shallow/more &&
	git -C shallow add more &&
	git -C shallow commit -q -m more &&
	git -C shallow push "$URL" HEAD:from-shallow 2>err &&
	test "$(git --git-dir="$REPO" rev-parse from-shallow)" = "$(git -C shallow rev-parse HEAD)" &&
	test ! -e "$REPO/shallow" &&
	git --git-dir="$REPO" fsck --strict 2>&1
'

test_expect_success 'a shallow clone cannot push a history we lack' '
	test_must_fail git -C shallow push deploy@berth:other HEAD:main 2>err &&
	test_grep "remote rejected.*shallow update not allowed" err &&
	test ! -e "$ROOT/apps/other"
'

test_expect_success 'concurrent first pushes to a new app all land' '
	for i in 1 2 3 4; do
		git -C src push "deploy@berth:racy" work:b$i >race$i.out 2>&1 &
	done &&
	wait &&
	git ls-remote deploy@berth:racy >refs &&
	for i in 1 2 3 4; do
		test_grep "refs/heads/b$i$" refs || return 1
	done &&
	git --git-dir="$ROOT/apps/racy/repo.git" fsck 2>&1
'

test_expect_success 'concurrent pushes to one branch: one wins, the rest are refused' '
	for i in 1 2 3; do
		git clone -q --bare "$ROOT/apps/racy/repo.git" c$i.git &&
		git --git-dir=c$i.git branch -f side b1 &&
		tree=$(git --git-dir=c$i.git rev-parse b1^{tree}) &&
		c=$(echo "racer $i" | git --git-dir=c$i.git commit-tree $tree -p b1) &&
		echo $c >c$i.id || return 1
	done &&
	for i in 1 2 3; do
		{ git --git-dir=c$i.git push deploy@berth:racy \
			$(cat c$i.id):refs/heads/b1 >push$i.out 2>&1; echo $? >push$i.rc; } &
	done &&
	wait &&
	won=0 &&
	for i in 1 2 3; do
		if test "$(cat push$i.rc)" = 0; then
			won=$((won + 1)) &&
			test "$(git --git-dir="$ROOT/apps/racy/repo.git" rev-parse b1)" = "$(cat c$i.id)" || return 1
		else
			test_grep "stale info|failed to lock|non-fast-forward|fetch first" push$i.out || return 1
		fi
	done &&
	test $won = 1
'

test_expect_success 'a bad repository path is refused with one clear line' '
	test_must_fail git -C src push "deploy@berth:../../etc" work 2>err &&
	test_grep "'\''../../etc'\'' is not a valid app name" err &&
	test ! -e "$ROOT/etc" && test ! -e "$ROOT/apps/etc" &&
	test_must_fail "$BERTH" git-serve-stdio --root "$ROOT" "ls -la" 2>err &&
	test_grep "not a git command" err
'

test_expect_success 'cloning an app that does not exist says so' '
	test_must_fail git clone -q deploy@berth:nope nope 2>err &&
	test_grep "remote error: no app '\''nope'\''" err &&
	test ! -e "$ROOT/apps/nope"
'

test_expect_success 'the server repository is sound and has no leftovers' '
	git --git-dir="$REPO" fsck --strict --no-dangling 2>&1 &&
	ls "$REPO/objects" >dirs &&
	test_grep_not "incoming" dirs &&
	ls "$ROOT/apps/myapp" >apps &&
	test_grep_not "new" apps
'

test_done
