#!/bin/bash
# make install with PREFIX and DESTDIR: the installed binary finds its
# buildpacks and takes a push; the systemd unit verifies; make uninstall
# removes what install put there and nothing else.
. "$(dirname "$0")/test-lib.sh"
. "$TEST_DIR/lib-daemon.sh"
. "$TEST_DIR/lib-pipeline.sh"

DEST=$TRASH/dest
# Install the binary under test (build/ or build-asan/), not a fresh build.
real=$(readlink -f "$BERTH")
B=$(dirname "$real")
B=${B#"$TOP"/}

test_expect_success 'make install DESTDIR=... PREFIX=/usr' '
	env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL \
		make -s -C "$TOP" B="$B" DESTDIR="$DEST" PREFIX=/usr install >out 2>&1 &&
	test -x "$DEST/usr/bin/berth" &&
	test "$(readlink "$DEST/usr/bin/start_server")" = berth &&
	test -x "$DEST/usr/share/berth/buildpacks/procfile/bin/compile" &&
	test -x "$DEST/usr/share/berth/buildpacks/python/bin/detect" &&
	test -d "$DEST/usr/share/berth/hooks" &&
	test -f "$DEST/usr/share/doc/berth/README.md" &&
	test -f "$DEST/usr/lib/systemd/system/berth.service" &&
	"$DEST/usr/bin/berth" --version >out &&
	test_grep "^berth [0-9]" out
'

test_expect_success 'the unit runs the installed binary, restarts on failure, stops gracefully' '
	unit=$DEST/usr/lib/systemd/system/berth.service &&
	test_grep "^ExecStart=/usr/bin/berth serve$" "$unit" &&
	test_grep "^Restart=on-failure$" "$unit" &&
	test_grep "^KillMode=mixed$" "$unit" &&
	test_grep "^KillSignal=SIGTERM$" "$unit" &&
	test_grep "^WantedBy=multi-user.target$" "$unit"
'

# systemd-analyze verify checks the syntax and that ExecStart= is an
# executable: point it at the DESTDIR copy of the binary.
if command -v systemd-analyze >/dev/null 2>&1; then
test_expect_success 'systemd-analyze verify accepts berth.service' '
	mkdir -p unit &&
	sed -e "s|/usr/bin/berth|$DEST/usr/bin/berth|" \
		"$DEST/usr/lib/systemd/system/berth.service" >unit/berth.service &&
	SYSTEMD_LOG_LEVEL=notice systemd-analyze verify --man=no \
		"$TRASH/unit/berth.service" >verify.out 2>&1 &&
	test_grep_not "berth.service" verify.out
'
else
	test_skip 'systemd-analyze verify (systemd-analyze not installed)'
fi

BERTH=$DEST/usr/bin/berth
test_expect_success 'a push through the installed binary builds with its buildpacks' '
	start_berth &&
	setup_push_key &&
	new_app_repo myapp &&
	cp "$TOP/tests/apps/worker.py" myapp/ &&
	echo "worker: python3 worker.py" >myapp/Procfile &&
	commit_all myapp first &&
	push myapp >push.out &&
	test_grep_not "cannot find the built-in buildpacks" push.out &&
	test_grep "Release 1 of myapp is live" push.out &&
	berth apps >out &&
	test_grep "^myapp +running" out
'

test_expect_success 'make uninstall removes what install put there, keeps the state' '
	stop_berth &&
	env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL \
		make -s -C "$TOP" B="$B" DESTDIR="$DEST" PREFIX=/usr uninstall >out 2>&1 &&
	find "$DEST" ! -type d >left &&
	test_cmp /dev/null left &&
	test -d "$BERTH_ROOT/apps/myapp" &&
	test -f "$BERTH_ROOT/berth.yaml"
'

test_done
