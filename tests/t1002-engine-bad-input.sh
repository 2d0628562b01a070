#!/bin/bash
# Bad input gets one clear line and changes nothing.
. "$(dirname "$0")/test-lib.sh"
. "$TEST_DIR/lib-daemon.sh"

state_snapshot() {
	(cd "$BERTH_ROOT" && find apps logs cache -print 2>/dev/null | sort) >"$1"
}

test_expect_success 'setup: a running app' '
	start_berth &&
	make_web_bundle "$TRASH/good.tar.gz" v1 &&
	berth deploy good "$TRASH/good.tar.gz" &&
	mkdir -p "$TRASH/outside" &&
	state_snapshot before
'

# make_evil_bundle OUT KIND: tarballs that try to write outside
make_evil_bundle() {
	python3 - "$1" "$2" "$TRASH/outside" <<-PY
	import io, sys, tarfile
	out, kind, outside = sys.argv[1], sys.argv[2], sys.argv[3]
	t = tarfile.open(out, "w:gz")
	def add(name, data=b"x", **kw):
	    ti = tarfile.TarInfo(name)
	    for k, v in kw.items(): setattr(ti, k, v)
	    ti.size = len(data) if ti.type == tarfile.REGTYPE else 0
	    t.addfile(ti, io.BytesIO(data) if ti.type == tarfile.REGTYPE else None)
	add("Procfile", b"web: python3 web.py\n")
	if kind == "dotdot":
	    add("../../../../../../" + outside.lstrip("/") + "/dotdot")
	elif kind == "absolute":
	    add(outside + "/absolute")
	elif kind == "symlink":
	    add("link", type=tarfile.SYMTYPE, linkname=outside)
	    add("link/through-symlink")
	elif kind == "symlink-abs":
	    add("link2", type=tarfile.SYMTYPE, linkname="../../../../../../../etc/passwd")
	t.close()
	PY
}

for kind in dotdot absolute symlink symlink-abs; do
	test_expect_success "a bundle with a $kind entry is refused, nothing written" '
		make_evil_bundle "$TRASH/evil-'$kind'.tar.gz" '$kind' &&
		test_must_fail berth deploy evil "$TRASH/evil-'$kind'.tar.gz" 2>err &&
		test $(wc -l <err) -eq 1 &&
		test_grep "^error: .*(bundle|entry|leaves|outside|absolute|link)" err &&
		test -z "$(ls -A "$TRASH/outside")" &&
		berth apps >apps &&
		test_grep_not "^evil" apps &&
		state_snapshot after &&
		test_cmp before after
	'
done

test_expect_success 'a broken app.yaml is refused, naming file, line and field' '
	mkdir -p broken &&
	printf "processes:\n  web: python3 web.py\ndrain: [oops\n" >broken/app.yaml &&
	tar -C broken -czf broken.tar.gz . &&
	test_must_fail berth deploy broken "$TRASH/broken.tar.gz" 2>err &&
	test_grep "^error: .*app.yaml:[0-9]+" err &&
	printf "processes:\n  web: python3 web.py\ndrain: soon\n" >broken/app.yaml &&
	tar -C broken -czf broken2.tar.gz . &&
	test_must_fail berth deploy broken "$TRASH/broken2.tar.gz" 2>err &&
	test_grep "^error: .*app.yaml:3:[0-9]+.*drain" err &&
	berth apps >apps && test_grep_not "^broken" apps
'

test_expect_success 'a bundle without a manifest is refused' '
	mkdir -p empty && echo hi >empty/README &&
	tar -C empty -czf empty.tar.gz . &&
	test_must_fail berth deploy empty "$TRASH/empty.tar.gz" 2>err &&
	test_grep "^error: .*(Procfile|app.yaml)" err
'

test_expect_success 'invalid app names are refused before any path is made' '
	for name in "../etc" "UPPER" "a_b" "-lead" "trail-" "a/b" "$(printf "x%.0s" $(seq 64))" "dot.name"; do
		test_must_fail berth deploy "$name" "$TRASH/good.tar.gz" 2>err &&
		test_grep "^error: invalid app name" err || return 1
	done &&
	state_snapshot after &&
	test_cmp before after
'

test_expect_success 'unknown command and missing app' '
	test_must_fail berth frobnicate 2>err &&
	test_grep "^error: unknown command .frobnicate." err &&
	test_must_fail berth ps ghost 2>err &&
	test_grep "^error: app .ghost. does not exist" err &&
	test_must_fail berth logs ghost 2>err &&
	test_grep "does not exist" err &&
	test_must_fail berth rm ghost --force 2>err &&
	test_grep "does not exist" err &&
	test_must_fail berth scale good nosuch=2 2>err &&
	test_grep "no process type .nosuch." err &&
	test_must_fail berth config good set "bad key=1" 2>err &&
	test_grep "invalid config var name" err
'

test_expect_success 'a malformed control request gets an error line' '
	printf "ps %%zz\n" | socat - "UNIX-CONNECT:$BERTH_ROOT/run/berth.sock" >resp &&
	test_grep "^error: bad request" resp &&
	printf "\n" | socat - "UNIX-CONNECT:$BERTH_ROOT/run/berth.sock" >resp &&
	test_grep "^error: " resp
'

# hang_up_after BYTES: a control client that sends BYTES bytes with no
# newline and closes at once, before the engine answers.
hang_up_after() {
	python3 - "$BERTH_ROOT/run/berth.sock" "$1" <<-PY
	import socket, sys
	s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
	s.connect(sys.argv[1])
	s.sendall(b"a" * int(sys.argv[2]))
	s.close()
	PY
}

test_expect_success 'a request too long from a client already gone: the engine stays up' '
	for i in 1 2 3 4 5 6 7 8; do
		hang_up_after 40000 || return 1
	done &&
	berth apps >apps &&
	test_grep "^good " apps
'

test_expect_success 'the good app kept serving through all of it' '
	port=$(app_port good) &&
	get "http://127.0.0.1:$port/" >body &&
	test_grep "hello v1 release 1" body &&
	state_snapshot after &&
	test_cmp before after
'

test_done
