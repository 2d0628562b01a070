#!/bin/bash
# Every session's berth-ssh processes share one uid: none may read,
# trace or signal another session's (procguard: not dumpable, a seccomp
# filter; tests/unit/procguard.c attacks a guarded process from another);
# an imported repository is berth-ssh's before any transfer; and
# "berth git-serve-stdio" run as root transfers as berth-ssh too
# (docs/security.md).
. "$(dirname "$0")/test-lib.sh"
. "$TEST_DIR/lib-git-ssh.sh"

git_ssh_apps gtrust

# A sanitizer build leaves fork allowed (LeakSanitizer clones at exit):
# the network halves have one filter there, two otherwise.
if grep -qa __asan_init "$BERTH"; then HALF_FILTERS=1; else HALF_FILTERS=2; fi

# The session processes of this engine that run as berth-ssh.
ssh_session_pids() {
	local p
	for p in $(pgrep -f -- "session --root $BERTH_ROOT\$"); do
		test "$(status_field "$p" Uid | cut -f1)" = "$SSH_UID" &&
		echo "$p"
	done
	return 0
}

# As berth-ssh, without the guard (any program of that user): what the
# kernel lets it do to process $1.  One line: mem=... environ=...
# fd=... ptrace=... (each "ok" or the errno's name).
probe_as_ssh() {
	setpriv --reuid="$SSH_UID" --regid="$SSH_UID" --clear-groups \
		/usr/bin/python3 -c '
import ctypes, errno, os, sys
pid = int(sys.argv[1])
out = []
for name in ("mem", "environ", "fd/0"):
    try:
        os.close(os.open("/proc/%d/%s" % (pid, name), os.O_RDONLY))
        out.append(name + "=ok")
    except OSError as e:
        out.append(name + "=" + errno.errorcode[e.errno])
libc = ctypes.CDLL(None, use_errno=True)
r = libc.ptrace(16, pid, None, None)   # PTRACE_ATTACH
out.append("ptrace=" + ("ok" if r == 0 else errno.errorcode[ctypes.get_errno()]))
if r == 0:
    libc.ptrace(17, pid, None, None)   # PTRACE_DETACH
print(" ".join(out))
' "$1"
}

test_expect_success 'setup: engine, key, an app pushed over ssh' '
	git_ssh_setup &&
	git -C app add -A &&
	git -C app commit -q -m first &&
	git -C app push -q "git@127.0.0.1:$A" main 2>push.out &&
	test -d "$REPO_A"
'
SSH_UID=$(cat ssh-uid 2>/dev/null)

test_expect_success 'an imported repository is berth-ssh'"'"'s before any transfer' '
	retry_until 60 eval "berth apps | grep -Eq \"^$A +running\"" &&
	berth export "$A" "$TRASH/a.tar.gz" &&
	berth import "$B" "$TRASH/a.tar.gz" >out &&
	test_grep "Imported $B" out &&
	: "no clone or push has touched it yet" &&
	test "$(stat -c "%U %G %a" "$REPO_B")" = "berth-ssh berth-$B 2750" &&
	find "$REPO_B" ! -user berth-ssh >not-ssh &&
	find "$REPO_B" ! -group "berth-$B" >>not-ssh &&
	cat not-ssh &&
	! test -s not-ssh &&
	test_grep_not "handing the repository" "$TRASH/berth.log" &&
	: "and it serves: a clone of it" &&
	git clone -q "git@127.0.0.1:$B" clone-b &&
	test -f clone-b/Procfile
'

test_expect_success 'one session'"'"'s berth-ssh processes cannot be read or traced from another'"'"'s' '
	mkfifo in-a in-b &&
	exec 8<>in-a 9<>in-b &&
	test_when_finished "exec 8>&- 9>&-" &&
	{ ssh "${SSH_ARGS[@]}" "git-upload-pack '"'"'$A'"'"'" <in-a >adv-a 8>&- 9>&- & } &&
	pa=$! &&
	{ ssh "${SSH_ARGS[@]}" "git-upload-pack '"'"'$B'"'"'" <in-b >adv-b 8>&- 9>&- & } &&
	pb=$! &&
	retry_until 30 grep -q "refs/heads/main" adv-a &&
	retry_until 30 grep -q "refs/heads/main" adv-b &&
	ssh_session_pids >victims &&
	cat victims &&
	: "two network halves and two git children at least" &&
	test "$(wc -l <victims)" -ge 4 &&
	for p in $(cat victims); do
		echo "$p: Seccomp $(status_field "$p" Seccomp), NoNewPrivs $(status_field "$p" NoNewPrivs)" &&
		test "$(status_field "$p" Seccomp)" = 2 &&
		test "$(status_field "$p" NoNewPrivs)" = 1 &&
		probe_as_ssh "$p" >probe &&
		cat probe &&
		test "$(cat probe)" = "mem=EACCES environ=EACCES fd/0=EACCES ptrace=EPERM" ||
		return 1
	done &&
	: "the network halves never fork: a second filter each" &&
	for p in $(cat victims); do
		status_field "$p" Seccomp_filters
	done >filters &&
	test "$(grep -cx $HALF_FILTERS filters)" -ge 2 &&
	: "both transfers go on untouched" &&
	printf 0000 >&8 && printf 0000 >&9 &&
	exec 8>&- 9>&- &&
	wait $pa && wait $pb
'

test_expect_success 'git-serve-stdio as root transfers as berth-ssh' '
	cat >fake-ssh <<-EOF &&
	#!/bin/sh
	for last; do :; done
	exec "$BERTH" git-serve-stdio --root "$BERTH_ROOT" "\$last"
	EOF
	chmod +x fake-ssh &&
	mkfifo in-s &&
	exec 7<>in-s &&
	test_when_finished "exec 7>&-" &&
	{ ./fake-ssh x "git-upload-pack '"'"'$A'"'"'" <in-s >adv-s 7>&- & } &&
	ps=$! &&
	retry_until 30 grep -q "refs/heads/main" adv-s &&
	: "the process git-serve-stdio started as, and its child (the same command line)" &&
	serve=$(pgrep -u 0 -f -- "git-serve-stdio --root $BERTH_ROOT") &&
	test "$(status_field "$serve" Uid | cut -f1)" = 0 &&
	kids=$(pgrep -P "$serve") &&
	test -n "$kids" &&
	for p in $kids; do
		echo "$p: $(status_field "$p" Uid) / $(status_field "$p" Gid)" &&
		test "$(status_field "$p" Uid)" = "$SSH_UID	$SSH_UID	$SSH_UID	$SSH_UID" &&
		test "$(status_field "$p" Gid | cut -f1)" = "$(id -g "berth-$A")" &&
		test "$(status_field "$p" Seccomp)" = 2 || return 1
	done &&
	printf 0000 >&7 &&
	exec 7>&- &&
	wait $ps &&
	: "a push through it leaves only berth-ssh files" &&
	echo more >app/NOTE &&
	git -C app add NOTE &&
	git -C app commit -q -m stdio &&
	GIT_SSH_COMMAND="$TRASH/fake-ssh" git -C app push "deploy@berth:$A" main >out 2>&1 &&
	cat out &&
	test "$(git -c safe.directory="*" --git-dir="$REPO_A" rev-parse main)" = "$(git -C app rev-parse main)" &&
	find "$REPO_A" ! -user berth-ssh >not-ssh &&
	cat not-ssh &&
	! test -s not-ssh
'

test_done
