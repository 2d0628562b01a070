#!/bin/bash
# Stock git fetching from berth in protocol v0 and v2: shallow clones and
# every way of deepening them (the same shallow boundaries and objects as
# git's own upload-pack gives), ls-refs with ref-prefix, multi_ack
# negotiation; deletes of the current branch; git archive --remote; the
# idle limit on a client that stops sending mid-push.  Through
# "berth git-serve-stdio", which GIT_SSH_COMMAND runs as ssh would.
. "$(dirname "$0")/test-lib.sh"

ROOT="$TRASH/root"
URL="deploy@berth:hist"
export HOME="$TRASH" GIT_CONFIG_NOSYSTEM=1
export GIT_AUTHOR_NAME=A GIT_AUTHOR_EMAIL=a@example.com
export GIT_COMMITTER_NAME=C GIT_COMMITTER_EMAIL=c@example.com
mkdir -p "$ROOT"
# git hands GIT_PROTOCOL to the ssh program it believes is OpenSSH
git config --global ssh.variant ssh

cat >"$TRASH/fake-ssh" <<EOF
#!/bin/sh
for last; do :; done
exec "$BERTH" git-serve-stdio --root "$ROOT" "\$last"
EOF
chmod +x "$TRASH/fake-ssh"
export GIT_SSH_COMMAND="$TRASH/fake-ssh"

# commit_at DIR NAME DAY: a commit adding file NAME, dated DAY days after
# 2020-09-13 12:26:40 UTC
commit_at() {
	echo "$2" >"$1/$2" &&
	git -C "$1" add "$2" &&
	GIT_AUTHOR_DATE="$((1600000000 + $3 * 86400)) +0000" \
	GIT_COMMITTER_DATE="$((1600000000 + $3 * 86400)) +0000" \
		git -C "$1" commit -q -m "$2"
}

test_expect_success 'a history with branches and merges, pushed' '
	git init -q -b main src &&
	commit_at src m1 1 && commit_at src m2 2 && commit_at src m3 3 &&
	git -C src tag -a base -m base &&
	git -C src checkout -q -b side &&
	commit_at src s1 4 && commit_at src s2 5 &&
	git -C src checkout -q main &&
	commit_at src m4 6 &&
	git -C src merge -q --no-ff side -m merge1 &&
	commit_at src m5 8 &&
	git -C src checkout -q side && commit_at src s3 9 &&
	git -C src checkout -q main &&
	git -C src merge -q --no-ff side -m merge2 &&
	commit_at src m6 11 &&
	git -C src tag -a v6 -m v6 &&
	git -C src push -q -o skip-deploy "$URL" main side base v6
'

# deepen_all URL DIR V: a shallow clone deepened in every way; after each
# step the shallow file (sorted) and the objects held go to DIR.log
deepen_all() {
	local url=$1 d=$2 v=$3
	{
		git -c protocol.version=$v clone -q --depth 3 "$url" $d &&
		sort $d/.git/shallow &&
		git -C $d -c protocol.version=$v fetch -q --deepen 2 &&
		sort $d/.git/shallow &&
		git -C $d -c protocol.version=$v fetch -q --shallow-exclude base &&
		sort $d/.git/shallow &&
		git -C $d -c protocol.version=$v fetch -q --depth 1 &&
		sort $d/.git/shallow &&
		git -C $d -c protocol.version=$v fetch -q --shallow-since="2020-09-21 12:00 +0000" &&
		sort $d/.git/shallow &&
		git -C $d rev-list --objects --all | sort &&
		git -C $d -c protocol.version=$v fetch -q --unshallow &&
		test ! -f $d/.git/shallow &&
		git -C $d fsck --strict &&
		git -C $d rev-list --objects --all | sort
	} >$d.log 2>&1
}

for v in 0 2; do
test_expect_success "protocol v$v: shallow clone, --deepen, --shallow-exclude, --depth, --shallow-since, --unshallow as git's upload-pack" '
	deepen_all "file://$TRASH/src" git'$v' '$v' &&
	deepen_all "$URL" berth'$v' '$v' &&
	test_cmp git'$v'.log berth'$v'.log &&
	test "$(git -C berth'$v' rev-parse main)" = "$(git -C src rev-parse main)"
'
done

test_expect_success 'a depth-1 clone holds one commit and its tree, annotated tag included' '
	git clone -q --depth 1 --no-single-branch "$URL" one &&
	test "$(git -C one rev-list --count main)" = 1 &&
	test "$(git -C one cat-file -t v6)" = tag &&
	git -C one fsck --strict 2>&1
'

test_expect_success 'a shallow clone pulls new commits without deepening' '
	commit_at src m7 12 &&
	git -C src push -q -o skip-deploy "$URL" main &&
	git -C one pull -q --ff-only origin main &&
	test "$(git -C one rev-list --count main)" = 2 &&
	git -C one fsck --strict 2>&1
'

test_expect_success 'protocol v2 over ssh: ls-refs answers only the ref-prefix asked for' '
	GIT_TRACE_PACKET="$TRASH/v2.trace" git -C berth2 -c protocol.version=2 fetch -q origin side &&
	test_grep "fetch< version 2" v2.trace &&
	test_grep "fetch> command=ls-refs" v2.trace &&
	test_grep "fetch> ref-prefix refs/heads/side" v2.trace &&
	test_grep "fetch< [0-9a-f]{40} refs/heads/side" v2.trace &&
	test_grep_not "fetch< [0-9a-f]{40} refs/heads/main" v2.trace &&
	git -c protocol.version=2 ls-remote --symref "$URL" >refs &&
	test_grep "^ref: refs/heads/main	HEAD" refs &&
	test_grep "refs/tags/v6\^\{\}$" refs
'

test_expect_success 'protocol v2: a fetch with haves is acknowledged, then ready' '
	commit_at src m8 13 &&
	git -C src push -q -o skip-deploy "$URL" main &&
	GIT_TRACE_PACKET="$TRASH/ack.trace" git -C berth2 -c protocol.version=2 fetch -q origin &&
	test_grep "fetch< acknowledgments" ack.trace &&
	test_grep "fetch< ACK $(git -C berth2 rev-parse HEAD)" ack.trace &&
	test_grep "fetch< ready" ack.trace &&
	test "$(git -C berth2 rev-parse origin/main)" = "$(git -C src rev-parse main)"
'

test_expect_success 'protocol v0: multi_ack_detailed negotiation' '
	GIT_TRACE_PACKET="$TRASH/v0.trace" git -C berth0 -c protocol.version=0 fetch -q origin &&
	test_grep "fetch> want .* multi_ack_detailed" v0.trace &&
	test_grep "fetch< ACK $(git -C berth0 rev-parse HEAD) common" v0.trace &&
	test "$(git -C berth0 rev-parse origin/main)" = "$(git -C src rev-parse main)"
'

test_expect_success 'protocol v0: haves in rounds, ready once the wants are covered' '
	git -C berth0 checkout -q -b local &&
	for i in $(seq 1 40); do
		commit_at berth0 local$i $((i - 50)) || return 1
	done &&
	commit_at src m9 15 &&
	git -C src push -q -o skip-deploy "$URL" main &&
	GIT_TRACE_PACKET="$TRASH/rounds.trace" git -C berth0 -c protocol.version=0 fetch -q origin &&
	test_grep "fetch< ACK [0-9a-f]{40} common" rounds.trace &&
	test_grep "fetch< ACK [0-9a-f]{40} ready" rounds.trace &&
	test "$(git -C berth0 rev-parse origin/main)" = "$(git -C src rev-parse main)" &&
	git -C berth0 fsck --strict 2>&1
'

# pkt LINE: one pkt-line (with LF), to build a request by hand
pkt() { printf "%04x%s\n" $((${#1} + 5)) "$1"; }

test_expect_success 'plain multi_ack: ACK continue for commons, NAK each round, ACK at done' '
	tip=$(git -C src rev-parse main) &&
	old=$(git -C src rev-parse main~3) &&
	{
		pkt "want $tip multi_ack side-band-64k" && printf 0000 &&
		pkt "have 1111111111111111111111111111111111111111" &&
		pkt "have $old" && printf 0000 &&
		pkt "done"
	} >request &&
	"$BERTH" git-serve-stdio --root "$ROOT" "git-upload-pack '\''hist'\''" \
		<request >reply &&
	grep -a -o "ACK $old continue" reply &&
	grep -a -o "NAK" reply &&
	grep -a -q "ACK $old$" reply &&
	grep -a -q PACK reply
'

test_expect_success 'protocol v1: the advertisement says version 1 first' '
	GIT_TRACE_PACKET="$TRASH/v1.trace" git -c protocol.version=1 ls-remote "$URL" >refs &&
	test_grep "ls-remote< version 1" v1.trace &&
	test_grep "refs/heads/main$" refs
'

test_expect_success 'the branch HEAD names cannot be deleted (receive.denyDeleteCurrent)' '
	test_must_fail git -C src push "$URL" :main 2>err &&
	test_grep "\[remote rejected\] main \(deletion of the current branch prohibited\)" err &&
	git --git-dir="$ROOT/apps/hist/repo.git" rev-parse -q --verify main
'

test_expect_success 'receive.denyDeleteCurrent warn lets it go, with a warning' '
	git --git-dir="$ROOT/apps/hist/repo.git" config receive.denyDeleteCurrent warn &&
	git -C src push "$URL" :main 2>err &&
	test_grep "remote: warning: deleting the current branch" err &&
	test_must_fail git --git-dir="$ROOT/apps/hist/repo.git" rev-parse -q --verify main &&
	git -C src push -q -o skip-deploy "$URL" main
'

test_expect_success 'git archive --remote: tar of a branch, the same files as git archive' '
	git archive --remote="$URL" main | tar -t | sort >remote.list &&
	git -C src archive main | tar -t | sort >local.list &&
	test_cmp local.list remote.list &&
	git archive --remote="$URL" main m1 | tar -xO m1 >m1 &&
	echo m1 >expect &&
	test_cmp expect m1
'

test_expect_success 'git archive --remote: zip and tar.gz, with a prefix and a path' '
	git archive --remote="$URL" --format=zip -o out.zip side &&
	python3 -c "import zipfile,sys; print(\"\\n\".join(sorted(zipfile.ZipFile(sys.argv[1]).namelist())))" out.zip >zip.list &&
	test_grep "^s3$" zip.list &&
	git archive --remote="$URL" --format=tar.gz --prefix=app/ v6 s1 | tar -tz >tgz.list &&
	printf "app/s1\n" >expect &&
	test_cmp expect tgz.list
'

test_expect_success 'git archive --remote: a commit id or a missing path is refused, one line' '
	test_must_fail git archive --remote="$URL" "$(git -C src rev-parse main)" >/dev/null 2>err &&
	test_grep "fatal: git archive: NACK no such ref: [0-9a-f]{40}" err &&
	test_must_fail git archive --remote="$URL" main nothere >/dev/null 2>err &&
	test_grep "NACK pathspec .nothere. did not match any files" err &&
	test_must_fail git archive --remote=deploy@berth:nope main >/dev/null 2>err &&
	test_grep "remote error: no app .nope." err
'

test_expect_success 'a client that stops sending mid-push is dropped after git_timeout' '
	echo "git_timeout: 1s" >"$ROOT/berth.yaml" &&
	test_when_finished "rm -f \"$ROOT/berth.yaml\"" &&
	old=$(git --git-dir="$ROOT/apps/hist/repo.git" rev-parse main) &&
	commit_at src big 14 &&
	new=$(git -C src rev-parse main) &&
	printf "%s\n^%s\n" "$new" "$old" | git -C src pack-objects --revs --stdout -q >p.pack &&
	line="$old $new refs/heads/main" &&
	mkfifo feed || return 1
	{ "$BERTH" git-serve-stdio --root "$ROOT" "git-receive-pack '\''hist'\''" \
		<feed >reply 2>stderr; echo $? >rc; } &
	exec 3>feed &&
	{ printf "%04x%s0000" $((${#line} + 4)) "$line" && head -c 30 p.pack; } >&3 &&
	retry_until 20 test -s rc &&
	exec 3>&- &&
	test "$(cat rc)" = 1 &&
	test_grep "timed out waiting for the client" stderr &&
	test "$(git --git-dir="$ROOT/apps/hist/repo.git" rev-parse main)" = "$old" &&
	ls "$ROOT/apps/hist/repo.git/objects" >dirs &&
	test_grep_not incoming dirs
'

test_done
