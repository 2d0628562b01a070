#!/bin/bash
# One-off processes, as Heroku's, Dokku's and Piku's users run migrations
# and consoles: "run APP CMD..." over ssh and locally runs in the live
# release's environment and folder, with stdin, stdout, stderr and the
# exit status passed through and a terminal when ssh -t asks for one;
# "run:detached" runs in the background with its output in logs as
# run.N and shows in ps while it runs.  A client that hangs up stops its
# run.
. "$(dirname "$0")/test-lib.sh"
. "$TEST_DIR/lib-ssh.sh"
. "$TEST_DIR/lib-pipeline.sh"

# run_ssh ARGS...: ssh to berth with the push key
run_ssh() { ssh_berth push-key "$@"; }

test_expect_success 'engine, key and a pushed app with a config var' '
	start_berth &&
	setup_push_key &&
	new_app_repo one &&
	add_web_app one v1 &&
	echo "web: python3 web.py" >one/Procfile &&
	commit_all one first &&
	push one >out &&
	test_grep "Release 1 of one is live" out &&
	berth config one set GREETING=hello "DATABASE_URL=postgres://u:p@db.invalid/one" >/dev/null &&
	retry_until 30 ps_line_matches one "^web\.1 .* up "
'

test_expect_success 'run over ssh: config vars, DATABASE_URL, the release folder, run.N' '
	run_ssh run one sh -c "'\''echo \$GREETING \$DATABASE_URL \$DYNO; pwd'\''" >out 2>err &&
	test_grep "^hello postgres://u:p@db.invalid/one run\.[0-9]+$" out &&
	web=$(app_pid one) &&
	test "$(sed -n 2p out)" = "$(readlink /proc/$web/cwd)" &&
	test ! -s err
'

test_expect_success 'run over ssh: stdin in, stdout and stderr apart, the exit status back' '
	printf "line one\nline two\n" | run_ssh run one cat >out &&
	printf "line one\nline two\n" >expect &&
	test_cmp expect out &&
	test_expect_code 7 run_ssh run one \
		sh -c "'\''echo to-out; echo to-err >&2; exit 7'\''" \
		</dev/null >out 2>err &&
	test "$(cat out)" = to-out &&
	test "$(cat err)" = to-err
'

test_expect_success 'run: one quoted word is a shell command, as Heroku takes it' '
	run_ssh "run one '\''echo \$GREETING && echo twice'\''" </dev/null >out &&
	printf "hello\ntwice\n" >expect &&
	test_cmp expect out
'

test_expect_success 'run locally: the same, with berth run' '
	echo piped | test_expect_code 3 \
		berth run one sh -c "read x; echo \$x \$GREETING; echo e >&2; exit 3" >out 2>err &&
	test "$(cat out)" = "piped hello" &&
	test "$(cat err)" = e &&
	berth run one true &&
	berth run one printf "%s|" a "b c" --root --help >out &&
	test "$(cat out)" = "a|b c|--root|--help|"
'

test_expect_success 'ssh -t run: a terminal (controlling), and the exit status' '
	printf "tty; test -t 0 && echo IS-A-TTY; echo \$TERM; exit 5\n" |
		test_expect_code 5 run_ssh -tt run one sh >tty.out 2>tty.err &&
	tr -d "\r" <tty.out >out.txt &&
	test_grep "/dev/pts/[0-9]+$" out.txt &&
	test_grep "IS-A-TTY$" out.txt
'

# pty-run.py CMD...: CMD on a terminal of 33x101, with TERM=xterm-256color,
# as a user's ssh -t runs; it types lines to an interactive shell, changes
# the window to 44x120 once the shell is up, and types "stty size" until
# the new size shows (the change reaches the process), then "exit 3".
cat >pty-run.py <<'EOF'
import fcntl, os, pty, re, select, struct, sys, termios, time

def size(fd, rows, cols):
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))

pid, fd = pty.fork()
if pid == 0:
    size(0, 33, 101)
    os.environ["TERM"] = "xterm-256color"
    os.execvp(sys.argv[1], sys.argv[1:])
out = b""
# what the shell prints for a terminal (bracketed paste and such) aside
def plain():
    return re.sub(rb"\x1b\[[0-9;?]*[a-zA-Z]", b"", out)

def wait_for(pattern, seconds, retype=None):
    global out
    end = time.time() + seconds
    next_type = 0
    while time.time() < end:
        if re.search(pattern, plain()):
            return True
        if retype and time.time() >= next_type:
            os.write(fd, retype)
            next_type = time.time() + 1
        r, _, _ = select.select([fd], [], [], 0.2)
        if r:
            try:
                data = os.read(fd, 4096)
            except OSError:
                data = b""
            if not data:
                return bool(re.search(pattern, plain()))
            out += data
    return False

os.write(fd, b'echo "T=$TERM"; stty size; echo "R""EADY"\n')
ok = wait_for(rb"READY\r*\n", 60)
if ok:
    size(fd, 44, 120)
    ok = wait_for(rb"44 120\r*\n", 60, retype=b"stty size\n")
os.write(fd, b"exit 3\n")
_, status = os.waitpid(pid, 0)
try:
    while True:
        data = os.read(fd, 4096)
        if not data:
            break
        out += data
except OSError:
    pass
sys.stdout.write(plain().decode(errors="replace").replace("\r", ""))
sys.exit(os.WEXITSTATUS(status) if ok else 99)
EOF

test_expect_success 'ssh -t run APP bash: the client'"'"'s TERM and window size, and its changes, reach the process' '
	ssh_args push-key &&
	test_expect_code 3 python3 pty-run.py ssh -t "${SSH_ARGS[@]}" run one bash >pty.out &&
	test_grep "^T=xterm-256color$" pty.out &&
	test_grep "^33 101$" pty.out &&
	test_grep "^44 120$" pty.out
'

test_expect_success 'berth run on a terminal: the same, locally' '
	test_expect_code 3 python3 pty-run.py "$BERTH" --root "$BERTH_ROOT" run one bash >pty.out &&
	test_grep "^T=xterm-256color$" pty.out &&
	test_grep "^33 101$" pty.out &&
	test_grep "^44 120$" pty.out
'

test_expect_success 'a key whose line says no-pty (or restrict) gets no terminal' '
	ssh-keygen -q -t ed25519 -N "" -C nopty -f "$TRASH/nopty" &&
	printf "no-pty %s\n" "$(cat "$TRASH/nopty.pub")" >nopty.line &&
	berth keys add --admin nopty.line >/dev/null &&
	printf "test -t 0 && echo IS-A-TTY; echo done; exit 3\n" |
		test_expect_code 3 ssh_berth nopty -tt run one sh >tty.out 2>tty.err &&
	tr -d "\r" <tty.out >out.txt &&
	test_grep "^done$" out.txt &&
	test_grep_not "IS-A-TTY" out.txt
'

test_expect_success 'run:detached: in the background, in ps while it runs, output in logs as run.N' '
	new_shared_dir &&
	run_ssh run:detached one sh -c "'\''echo detached-start; while [ ! -e $SHARED/gate ]; do sleep 0.1; done; echo detached-end \$GREETING'\''" >out &&
	test_grep "Started run\.[0-9]+" out &&
	n=$(sed -n "s/.*Started \(run\.[0-9]*\).*/\1/p" out) &&
	retry_until 20 ps_line_matches one "^$n +[0-9]+ +- +up" &&
	retry_until 20 eval "berth logs one -p $n | grep -q detached-start" &&
	touch "$SHARED/gate" &&
	retry_until 20 eval "berth logs one -p $n | grep -q \"detached-end hello\"" &&
	retry_until 20 eval "! ps_line_matches one \"^$n \"" &&
	berth logs one --source run >runlog &&
	test_grep "detached-end hello" runlog &&
	test_grep_not "web\.1" runlog &&
	berth run:detached one echo local-detached >out &&
	test_grep "Started run\.[0-9]+" out &&
	retry_until 20 eval "berth logs one --source run | grep -q local-detached"
'

test_expect_success 'a client that hangs up stops its run' '
	ssh_args push-key || return 1
	ssh "${SSH_ARGS[@]}" run one sleep 300 </dev/null >/dev/null 2>&1 &
	client=$! &&
	retry_until 20 ps_line_matches one "^run\.[0-9]+ .* up .*" &&
	pid=$(berth ps one | awk "/^run\\./ && \$4 == \"up\" { print \$2 }") &&
	is_pid "$pid" &&
	kill "$client" &&
	retry_until 20 eval "! proc_alive $pid" &&
	retry_until 20 eval "! ps_line_matches one \"^run\\.\""
'

test_expect_success 'bad runs: a clear error, nothing started' '
	test_must_fail run_ssh run nosuch true </dev/null 2>err &&
	test_grep "app .nosuch. does not exist" err &&
	test_must_fail run_ssh run one </dev/null 2>err &&
	test_grep "usage: run NAME COMMAND" err &&
	test_must_fail berth run one 2>err &&
	test_grep "usage: berth run NAME COMMAND" err &&
	berth create empty >/dev/null &&
	test_must_fail berth run empty true 2>err &&
	test_grep "has no live release yet" err &&
	test_must_fail run_ssh run:detached empty true </dev/null 2>err &&
	test_grep "has no live release yet" err &&
	test_must_fail berth run one /no/such/program 2>err &&
	test_grep "no/such/program" err &&
	retry_until 20 ps_line_matches one "^web\.1 .* up " &&
	test_must_fail run_ssh -tt logs one </dev/null >out 2>err &&
	test_grep "only for pg:psql and run" err
'

test_expect_success 'help lists run and run:detached' '
	berth help >out &&
	test_grep "^  run NAME COMMAND" out &&
	test_grep "^  run:detached NAME COMMAND" out
'

test_done
