#!/bin/bash
# berth's own pack machinery with stock git: the indexer (pushes, thin
# pushes, a pack whose objects lack their links, a pack with deltas on
# deltas in any order), the pack writer (clones and fetches reuse the
# stored deltas), and the background repack that folds many packs into
# one.  git fsck and git verify-pack check what berth wrote.
. "$(dirname "$0")/test-lib.sh"

ROOT="$TRASH/root"
REPO="$ROOT/apps/big/repo.git"
URL="deploy@berth:big"
export HOME="$TRASH" GIT_CONFIG_NOSYSTEM=1
export GIT_AUTHOR_NAME=A GIT_AUTHOR_EMAIL=a@example.com
export GIT_COMMITTER_NAME=C GIT_COMMITTER_EMAIL=c@example.com
mkdir -p "$ROOT"
cat >"$TRASH/fake-ssh" <<EOF
#!/bin/sh
for last; do :; done
exec "$BERTH" git-serve-stdio --root "$ROOT" "\$last"
EOF
chmod +x "$TRASH/fake-ssh"
export GIT_SSH_COMMAND="$TRASH/fake-ssh"

packs_at_most() {
	test "$(ls "$REPO"/objects/pack/pack-*.idx | wc -l)" -le "$1"
}

# a history with deltas: 40 files, 30 commits changing lines in a few
make_history() {
	git init -q -b main src &&
	for f in $(seq 1 40); do
		seq 1 400 | sed "s/^/file $f line /" >src/f$f.txt || return 1
	done &&
	git -C src add . && git -C src commit -q -m c0 &&
	for c in $(seq 1 30); do
		for f in $((c % 40 + 1)) $((c * 7 % 40 + 1)); do
			sed -i "$((c * 13 % 400 + 1))s/\$/ changed $c/" src/f$f.txt || return 1
		done &&
		git -C src commit -q -a -m "c$c" || return 1
	done &&
	git -C src repack -adfq --depth=20
}

test_expect_success 'a first push of a history with deltas: pack and idx are git'"'"'s' '
	make_history &&
	git -C src push -q -o skip-deploy "$URL" main 2>err &&
	test "$(git --git-dir="$REPO" rev-parse main)" = "$(git -C src rev-parse main)" &&
	git --git-dir="$REPO" fsck --strict &&
	for idx in "$REPO"/objects/pack/pack-*.idx; do
		git verify-pack "$idx" || return 1
	done &&
	git --git-dir="$REPO" count-objects -v >count &&
	test_grep "^in-pack: $(git -C src count-objects -v | sed -n "s/in-pack: //p")\$" count
'

test_expect_success 'thin pushes are completed from the repository' '
	for c in 1 2 3; do
		echo "more $c" >>src/f1.txt &&
		git -C src commit -q -a -m "more $c" &&
		git -C src push --progress -o skip-deploy "$URL" main 2>err ||
			return 1
	done &&
	test_grep "completed from the repository" err &&
	git --git-dir="$REPO" fsck --strict &&
	for idx in "$REPO"/objects/pack/pack-*.idx; do
		git verify-pack "$idx" || return 1
	done
'

test_expect_success 'a pack whose commit lacks its tree is refused, nothing moves' '
	git --git-dir="$REPO" for-each-ref >before &&
	ls "$REPO/objects/pack" >>before &&
	tree=$(git -C src rev-parse HEAD^{tree}) &&
	# a commit on a tree we never send (an empty subtree added)
	sub=$(printf "100644 blob %s\tnew\n" $(echo new | git -C src hash-object -w --stdin) |
		git -C src mktree) &&
	top=$( { git -C src ls-tree HEAD; printf "040000 tree %s\tsub\n" "$sub"; } | git -C src mktree) &&
	c=$(git -C src commit-tree "$top" -p HEAD -m lacking) &&
	old=$(git --git-dir="$REPO" rev-parse main) &&
	echo "$c" | git -C src pack-objects --stdout -q >one.pack &&
	line="$old $c refs/heads/main" &&
	{ printf "%04x%s\0report-status0000" $((${#line} + 4 + 14)) "$line" &&
	  cat one.pack; } >request &&
	test_must_fail "$BERTH" git-serve-stdio --root "$ROOT" \
		"git-receive-pack '\''big'\''" <request >reply 2>stderr &&
	test_grep "missing necessary objects" reply &&
	git --git-dir="$REPO" for-each-ref >after &&
	ls "$REPO/objects/pack" >>after &&
	test_cmp before after
'

test_expect_success 'a full clone reuses the stored pack and fscks' '
	# pushes alone keep no copy of the history
	test "$(ls "$REPO"/clonepack/*.pack 2>/dev/null | wc -l)" = 0 &&
	git clone -q --bare "$URL" clone.git &&
	test "$(git --git-dir=clone.git rev-parse main)" = "$(git -C src rev-parse main)" &&
	git --git-dir=clone.git fsck --strict &&
	git --git-dir=clone.git count-objects -v >count &&
	test_grep "^in-pack: $(git --git-dir="$REPO" rev-list --objects --all | wc -l)\$" count
'

test_expect_success 'a fetch of a few commits is right when bases stay behind' '
	git clone -q "$URL" fetcher &&
	for c in 4 5 6; do
		echo "later $c" >>src/f2.txt &&
		git -C src commit -q -a -m "later $c" || return 1
	done &&
	git -C src push -q -o skip-deploy "$URL" main &&
	git -C fetcher fetch -q origin &&
	test "$(git -C fetcher rev-parse origin/main)" = "$(git -C src rev-parse main)" &&
	git -C fetcher fsck --strict
'

kept_packs() { ls "$REPO"/clonepack/*.pack 2>/dev/null | wc -l; }
# the kept pack for what `git clone` asks now: every branch and tag, with
# ofs-deltas (server/clonepack.c: SHA-1 of a tag, the flags, the sorted ids)
kept_pack() {
	echo "$REPO/clonepack/$(git --git-dir="$REPO" for-each-ref \
		--format="%(objectname)" refs/heads refs/tags | sort -u |
		perl -ne "BEGIN { print qq(berth clonepack 1\n), chr(1) }
			chomp; print pack(q(H*), \$_)" | sha1sum | cut -d" " -f1).pack"
}

test_expect_success 'after a push the next clone is sent the kept pack as is' '
	echo kept >>src/f5.txt &&
	git -C src commit -q -a -m kept &&
	git -C src push -q -o skip-deploy "$URL" main &&
	# made in the background once the push has ended
	retry_until 60 test -e "$(kept_pack)" &&
	git clone --progress --bare "$URL" kept.git 2>err &&
	test_grep "Sending the kept pack" err &&
	test "$(git --git-dir=kept.git rev-parse main)" = "$(git -C src rev-parse main)" &&
	git --git-dir=kept.git fsck --strict &&
	cmp kept.git/objects/pack/pack-*.pack "$(kept_pack)" &&
	# a fetch that has some of it is not sent the whole history
	git -C fetcher fetch --progress origin 2>err &&
	test_grep_not "kept pack" err &&
	git -C fetcher fsck --strict
'

test_expect_success 'a clone of other tips keeps its own pack, one at a time' '
	git -C src tag -a -m v1 v1 main~1 &&
	git -C src push -q -o skip-deploy "$URL" v1 &&
	retry_until 60 test -e "$(kept_pack)" &&
	retry_until 60 test "$(kept_packs)" = 1 &&
	git clone --progress --bare "$URL" tagged.git 2>err &&
	test_grep "Sending the kept pack" err &&
	git --git-dir=tagged.git fsck --strict &&
	test "$(git --git-dir=tagged.git rev-parse v1)" = "$(git -C src rev-parse v1)" &&
	# a kept pack cut short is never sent: it is not a pack
	kept=$(kept_pack) &&
	chmod u+w "$kept" && : >"$kept" &&
	git clone --progress --bare "$URL" cut.git 2>err &&
	test_grep_not "Sending the kept pack" err &&
	git --git-dir=cut.git fsck --strict
'

test_expect_success 'past 8 packs a push folds them into one in the background' '
	for c in $(seq 1 9); do
		echo "again $c" >>src/f3.txt &&
		git -C src commit -q -a -m "again $c" &&
		git -C src push -q -o skip-deploy "$URL" main || return 1
	done &&
	# 14 pushes made 14 packs: some were folded (the repack runs after
	# the push has ended: wait for it)
	retry_until 60 packs_at_most 8 &&
	retry_until 60 test ! -e "$REPO/objects/pack/repack.lock" &&
	git --git-dir="$REPO" fsck --strict &&
	git verify-pack "$REPO"/objects/pack/pack-*.idx &&
	git clone -q --bare "$URL" after.git &&
	test "$(git --git-dir=after.git rev-parse main)" = "$(git -C src rev-parse main)" &&
	git --git-dir=after.git fsck --strict
'

test_done
