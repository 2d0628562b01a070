#!/bin/bash
# A session's git transfer (receive-pack, upload-pack: pack parsing,
# indexing, every write into the repository) runs as berth-ssh, never as
# root; repositories are berth-ssh's with the app's group, 2750; what
# a compromised berth-ssh could plant in a repository never makes root
# read it (docs/security.md).
. "$(dirname "$0")/test-lib.sh"
. "$TEST_DIR/lib-git-ssh.sh"

git_ssh_apps gsep

# The pids of this engine's session processes.
session_pids() {
	pgrep -f -- "session --root $BERTH_ROOT\$"
}

# Processes (any) with a file under $1 open or mapped, one pid a line
# (two commands over all of /proc: a loop of forks is slow on a busy host).
holders_of() {
	{ find /proc/[0-9]*/fd -maxdepth 1 -lname "$1*" 2>/dev/null |
		cut -d/ -f3
	  grep -lF -- "$1" /proc/[0-9]*/maps 2>/dev/null | cut -d/ -f3
	} | sort -u
}

# No process in file $1 runs as root (any of its uids).
none_root() {
	local p
	for p in $(cat "$1"); do
		echo "$p: $(status_field "$p" Uid)" &&
		! status_field "$p" Uid | grep -qw 0 || return 1
	done
}

# A root-only fifo that a writer (root) waits on: whoever opens it for
# reading ends the writer.  detector_untouched NAME: nobody did.
plant_detector() {
	mkdir -p -m 700 "$TRASH/secret" &&
	mkfifo -m 600 "$TRASH/secret/$1" &&
	{ echo "SECRET-$1" >"$TRASH/secret/$1" & } &&
	echo $! >"$TRASH/secret/$1.pid"
}
detector_untouched() {
	kill -0 "$(cat "$TRASH/secret/$1.pid")"
}
drop_detector() {
	kill "$(cat "$TRASH/secret/$1.pid")" 2>/dev/null
	rm -f "$TRASH/secret/$1"
	return 0
}

test_expect_success 'setup: engine, key, git over ssh' '
	git_ssh_setup &&
	new_shared_dir &&
	chmod 1777 "$SHARED" &&
	mkdir -p app/.berth/hooks &&
	printf "#!/bin/sh\n[ -e %s/hold ] || exit 0\ntouch %s/waiting\nwhile [ ! -e %s/go ]; do sleep 0.1; done\n" \
		"$SHARED" "$SHARED" "$SHARED" >app/.berth/hooks/pre-build &&
	chmod +x app/.berth/hooks/pre-build &&
	git -C app add -A &&
	git -C app commit -q -m first &&
	git -C app remote add a "git@127.0.0.1:$A" &&
	git -C app remote add b "git@127.0.0.1:$B"
'
SSH_UID=$(cat ssh-uid 2>/dev/null)

test_expect_success 'during a push, only berth-ssh holds the repository' '
	touch "$SHARED/hold" &&
	test_when_finished "rm -f $SHARED/hold; touch $SHARED/go" &&
	{ git -C app push a main >push.out 2>&1 & } &&
	pid=$! &&
	retry_until 120 test -e "$SHARED/waiting" &&
	holders_of "$REPO_A/" >holders &&
	cat holders &&
	test -s holders &&
	none_root holders &&
	gid_a=$(id -g "berth-$A") &&
	for p in $(cat holders); do
		echo "$p: $(status_field "$p" Gid) / groups $(status_field "$p" Groups) / caps $(status_field "$p" CapEff)" &&
		test "$(status_field "$p" Uid)" = "$SSH_UID	$SSH_UID	$SSH_UID	$SSH_UID" &&
		test "$(status_field "$p" Gid)" = "$gid_a	$gid_a	$gid_a	$gid_a" &&
		test -z "$(status_field "$p" Groups)" &&
		test "$(status_field "$p" CapEff)" = 0000000000000000 || return 1
	done &&
	touch "$SHARED/go" &&
	wait $pid &&
	test_grep "Release 1 of $A is live" push.out
'

test_expect_success 'the repository is berth-ssh'"'"'s, the app'"'"'s group, 2750' '
	test "$(stat -c "%U %G %a" "$REPO_A")" = "berth-ssh berth-$A 2750" &&
	find "$REPO_A" ! -user berth-ssh >not-ssh &&
	! test -s not-ssh &&
	ls "$REPO_A"/objects/pack/*.pack >packs &&
	test -s packs &&
	rm -f "$SHARED/waiting" "$SHARED/go"
'

test_expect_success 'during a clone, the session'"'"'s root half holds no repository file' '
	mkfifo clone-in &&
	exec 9<>clone-in &&
	test_when_finished "exec 9>&-" &&
	{ ssh "${SSH_ARGS[@]}" "git-upload-pack '"'"'$A'"'"'" <clone-in >adv 9>&- & } &&
	pid=$! &&
	retry_until 30 grep -q "refs/heads/main" adv &&
	session_pids >sessions &&
	test "$(wc -l <sessions)" -ge 3 &&
	holders_of "$REPO_A/" >holders &&
	for p in $(cat sessions); do
		if status_field "$p" Uid | grep -qw 0
		then ! grep -qx "$p" holders
		else test "$(status_field "$p" Uid | cut -f1)" = "$SSH_UID"
		fi || return 1
	done &&
	printf 0000 >&9 &&
	exec 9>&- &&
	wait $pid &&
	git clone -q "git@127.0.0.1:$A" clone-a &&
	test -f clone-a/Procfile
'

test_expect_success 'an app'"'"'s user reads its repository, not another app'"'"'s' '
	git -C app push b main >out 2>&1 &&
	uid_a=$(id -u "berth-$A") && gid_a=$(id -g "berth-$A") &&
	setpriv --reuid="$uid_a" --regid="$gid_a" --clear-groups \
		cat "$REPO_A/HEAD" &&
	test_must_fail setpriv --reuid="$uid_a" --regid="$gid_a" \
		--clear-groups cat "$REPO_B/HEAD" &&
	test_must_fail setpriv --reuid="$uid_a" --regid="$gid_a" \
		--clear-groups ls "$REPO_B/objects" &&
	test_must_fail setpriv --reuid=65534 --regid=65534 --clear-groups \
		cat "$REPO_A/HEAD" &&
	: "the network half (berth-ssh without an app group) gets nowhere" &&
	test_must_fail setpriv --reuid="$SSH_UID" --regid="$SSH_UID" \
		--clear-groups cat "$REPO_A/HEAD"
'

test_expect_success 'a pack linked to a root-only file: nobody reads it' '
	plant_detector pack &&
	test_when_finished "drop_detector pack; rm -f $REPO_A/objects/pack/pack-0000000000000000000000000000000000000000.*" &&
	ln -s "$TRASH/secret/pack" "$REPO_A/objects/pack/pack-0000000000000000000000000000000000000000.pack" &&
	ln -s "$TRASH/secret/pack" "$REPO_A/objects/pack/pack-0000000000000000000000000000000000000000.idx" &&
	{ git clone -q "git@127.0.0.1:$A" clone-pack >out 2>&1 || true; } &&
	echo change >>app/Procfile.txt && git -C app add -A &&
	git -C app commit -q -m second &&
	{ git -C app push a main >>out 2>&1 || true; } &&
	cat out &&
	test_grep "error: the repository holds a symbolic link, .objects/pack/pack-0*\.(idx|pack).: refused" out &&
	test_grep_not SECRET out &&
	! grep -rq SECRET clone-pack 2>/dev/null &&
	detector_untouched pack
'

test_expect_success 'a ref linked to a root-only file: nobody reads it' '
	plant_detector ref &&
	test_when_finished "drop_detector ref; rm -f $REPO_A/refs/heads/evil" &&
	ln -s "$TRASH/secret/ref" "$REPO_A/refs/heads/evil" &&
	{ git ls-remote "git@127.0.0.1:$A" >out 2>&1 || true; } &&
	{ git clone -q "git@127.0.0.1:$A" clone-ref >>out 2>&1 || true; } &&
	echo third >>app/Procfile.txt && git -C app add -A &&
	git -C app commit -q -m third &&
	{ git -C app push a main >>out 2>&1 || true; } &&
	cat out &&
	test_grep "error: the repository holds a symbolic link, .refs/heads/evil.: refused" out &&
	test_grep_not SECRET out &&
	detector_untouched ref
'

test_expect_success 'alternates and a ref into another app'"'"'s repository reach nothing' '
	git init -q -b main other &&
	echo "TOP-SECRET-OF-B" >other/secret.txt &&
	echo "worker: python3 worker.py" >other/Procfile &&
	cp "$TOP/tests/apps/worker.py" other/ &&
	git -C other add -A && git -C other commit -q -m b &&
	git -C other push -q --force "git@127.0.0.1:$B" main:main >/dev/null 2>&1 &&
	secret=$(git -C other rev-parse HEAD) &&
	test_when_finished "rm -f $REPO_A/objects/info/alternates $REPO_A/refs/heads/stolen" &&
	mkdir -p "$REPO_A/objects/info" &&
	echo "$REPO_B/objects" >"$REPO_A/objects/info/alternates" &&
	echo "$secret" >"$REPO_A/refs/heads/stolen" &&
	{ git clone -q "git@127.0.0.1:$A" clone-alt >out 2>&1 || true; } &&
	{ git -C clone-alt fetch -q origin stolen >>out 2>&1 || true; } &&
	! grep -rq TOP-SECRET-OF-B clone-alt &&
	git -C other remote add a "git@127.0.0.1:$A" &&
	{ git -C other push a main:main >>out 2>&1 || true; } &&
	cat out &&
	test_grep_not "TOP-SECRET" out &&
	{ git clone -q "git@127.0.0.1:$A" clone-alt2 >/dev/null 2>&1 || true; } &&
	! grep -rq TOP-SECRET-OF-B clone-alt2 2>/dev/null
'

test_expect_success 'a repository of an older berth (root'"'"'s) is handed over, links not followed' '
	echo keep >"$TRASH/secret/owned" &&
	chmod 600 "$TRASH/secret/owned" &&
	chown -R root:root "$REPO_A" &&
	chmod 755 "$REPO_A" &&
	ln -s "$TRASH/secret/owned" "$REPO_A/description.link" &&
	test_when_finished "rm -f $REPO_A/description.link" &&
	git clone -q "git@127.0.0.1:$A" clone-old &&
	test "$(stat -c "%U %G %a" "$REPO_A")" = "berth-ssh berth-$A 2750" &&
	find "$REPO_A" ! -user berth-ssh >not-ssh &&
	! test -s not-ssh &&
	test "$(stat -c %U "$TRASH/secret/owned")" = root &&
	test_grep "handing the repository to berth-ssh" "$TRASH/berth.log"
'

test_expect_success 'a first push that stores nothing leaves no app behind' '
	C=gsepc$$ &&
	{ printf "0000" | ssh "${SSH_ARGS[@]}" "git-receive-pack '"'"'$C'"'"'" >/dev/null 2>&1 || true; } &&
	! test -e "$BERTH_ROOT/apps/$C"
'

test_expect_success 'a state folder closed to berth-ssh: one line naming no path' '
	chmod 0700 "$TRASH" &&
	test_when_finished "chmod 0755 \"$TRASH\"" &&
	echo more >app/NOTE &&
	git -C app add NOTE &&
	git -C app commit -q -am closed &&
	test_must_fail git -C app push -q a main 2>err &&
	test_grep "the server cannot reach its repositories" err &&
	test_grep_not "$TRASH" err &&
	test_grep "berth-ssh cannot reach" "$TRASH/berth.log" &&
	chmod 0755 "$TRASH" &&
	git -C app push -q a main
'

test_done
