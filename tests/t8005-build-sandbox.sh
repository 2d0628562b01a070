#!/bin/bash
# A build sees no more of the host than an app does, tried as an attacker
# would: the app's own build hook, its buildpack and a server-wide hook
# (each run as the app's user) try to list berth's state folder, another
# app's release folder and repository, read its config, the host key and
# /etc/shadow, and report what they saw into the build output.  Each runs
# in a mount namespace of its own: the state folder is covered, /tmp is
# private, and only the build folder, its cache, ENV_DIR (read-only), the
# build's /app and the buildpacks are there; the network still is.
. "$(dirname "$0")/test-lib.sh"
. "$TEST_DIR/lib-daemon.sh"
. "$TEST_DIR/lib-pipeline.sh"

if [ "$(id -u)" != 0 ]; then
	test_skip "build namespaces need root"
	test_done
fi

# limits PID: the limits of the cgroup a process is in, "KIND VALUE" a
# line (memory in bytes, cpu as quota/period, pids), v1 or v2 files
limits() {
	python3 - "$1" <<-\EOF
	import os, sys
	files = {"memory": ("memory.limit_in_bytes", "memory.max"),
	         "pids": ("pids.max", "pids.max"),
	         "cpu": ("cpu.cfs_quota_us", "cpu.max")}
	seen = {}
	for line in open("/proc/%s/cgroup" % sys.argv[1]):
	    hid, ctrls, path = line.strip().split(":", 2)
	    for kind, (v1, v2) in files.items():
	        if hid != "0" and kind in ctrls.split(","):
	            p = "/sys/fs/cgroup/%s%s/%s" % (kind, path, v1)
	        elif hid == "0":
	            p = "/sys/fs/cgroup%s/%s" % (path, v2)
	        else:
	            continue
	        if kind not in seen and os.path.exists(p):
	            seen[kind] = open(p).read().split()[0]
	for kind in sorted(seen):
	    print(kind, seen[kind])
	EOF
}

test_expect_success 'engine, push key, a victim app' '
	BERTH_YAML="resources:
  memory: 96M
  cpu: 0.25
  processes: 77" &&
	start_berth &&
	setup_push_key &&
	# the buildpack folder below is copied by the app user
	chmod 755 "$TRASH" &&
	new_web_app victim v1 &&
	commit_all victim one &&
	push victim >out &&
	test_grep "Release 1 of victim is live" out &&
	berth config victim set SECRET=victim-secret-1234 >/dev/null &&
	vrel=$(find "$BERTH_ROOT/run" -maxdepth 1 -type d -name "victim-*" ! -name "*.www" | head -n 1) &&
	test -n "$vrel" &&
	test -d "$BERTH_ROOT/apps/victim/repo.git" &&
	echo "$vrel" >vrel &&
	# a file of the host'"'"'s /tmp any user may read
	echo host-tmp >"$TRASH/host-tmp-mark" &&
	chmod 644 "$TRASH/host-tmp-mark"
'

test_expect_success 'berth.yaml'"'"'s resources are the limits of an app without its own' '
	pid=$(app_pid victim) &&
	test -n "$pid" &&
	limits "$pid" >lim &&
	cat lim &&
	test_grep "^memory 100663296$" lim &&
	test_grep "^pids 77$" lim &&
	test_grep "^cpu 25000$" lim
'

# spy.py WHO: what one program of the build sees, a line each, "spy WHO
# NAME: ..."; "LISTED", "READ" and "WROTE" mean it got through
test_expect_success 'the spy app: a hook, a buildpack and a server hook' '
	new_app_repo spy &&
	add_web_app spy s1 &&
	echo "web: python3 web.py" >spy/Procfile &&
	cat >spy/targets <<-EOF &&
	root=$BERTH_ROOT
	apps=$BERTH_ROOT/apps
	vrel=$(cat vrel)
	vrepo=$BERTH_ROOT/apps/victim/repo.git
	vhead=$BERTH_ROOT/apps/victim/repo.git/HEAD
	venv=$BERTH_ROOT/apps/victim/env
	hostkey=$BERTH_ROOT/host/ssh_host_ed25519_key
	keys=$BERTH_ROOT/keys/authorized_keys
	hosttmp=$TRASH/host-tmp-mark
	sshport=$SSH_PORT
	EOF
	cat >spy/spy.py <<-\EOF &&
	import os, socket, sys
	who = sys.argv[1]
	build = os.environ["BERTH_BUILD_DIR"]
	tg = dict(l.split("=", 1) for l in open(os.path.join(build, "targets")).read().split())
	env_dir = sys.argv[2] if len(sys.argv) > 2 else None
	def t(name, f):
	    try:
	        r = f()
	    except Exception as e:
	        r = "denied %s" % type(e).__name__
	    print("spy %s %s: %s" % (who, name, r))
	def ls(p):
	    return "LISTED %d" % len(os.listdir(p))
	def rd(p):
	    open(p, "rb").read()
	    return "READ"
	def wr(p):
	    open(p, "w").write("x")
	    return "WROTE"
	def connect():
	    s = socket.create_connection(("127.0.0.1", int(tg["sshport"])), 5)
	    s.close()
	    return "connected"
	t("uid", os.getuid)
	t("root", lambda: ls(tg["root"]))
	t("apps", lambda: ls(tg["apps"]))
	t("vrel", lambda: ls(tg["vrel"]))
	t("vrepo", lambda: ls(tg["vrepo"]))
	t("vhead", lambda: rd(tg["vhead"]))
	t("venv", lambda: rd(tg["venv"]))
	t("hostkey", lambda: rd(tg["hostkey"]))
	t("keys", lambda: rd(tg["keys"]))
	t("shadow", lambda: rd("/etc/shadow"))
	t("hosttmp", lambda: rd(tg["hosttmp"]))
	t("build", lambda: "sees %s" % ("spy.py" in os.listdir(build)))
	t("cache", lambda: wr(os.path.join(os.environ["BERTH_CACHE_DIR"], "spy-" + who)))
	t("app", lambda: wr("/app/spy-" + who))
	t("tmp", lambda: wr("/tmp/spy-" + who))
	t("nnp", lambda: [l.split()[1] for l in open("/proc/self/status") if l.startswith("NoNewPrivs")][0])
	t("pid1", lambda: rd("/proc/1/environ"))
	t("net", connect)
	if env_dir:
	    t("envdir", lambda: "SECRET=%s" % open(os.path.join(env_dir, "SPYVAR")).read())
	    t("envwrite", lambda: wr(os.path.join(env_dir, "SPYVAR")))
	EOF
	mkdir -p spy/.berth/hooks &&
	printf "#!/bin/sh\nexec python3 \"\$BERTH_BUILD_DIR/spy.py\" hook\n" >spy/.berth/hooks/pre-build &&
	chmod +x spy/.berth/hooks/pre-build &&
	make_test_buildpack "$TRASH/spypack" &&
	cat >"$TRASH/spypack/bin/compile" <<-\EOF &&
	#!/bin/sh
	exec python3 "$1/spy.py" buildpack "$3"
	EOF
	chmod -R a+rX "$TRASH/spypack" &&
	chmod +x "$TRASH/spypack/bin/"* &&
	echo "buildpack: $TRASH/spypack" >spy/app.yaml &&
	mkdir -p "$BERTH_ROOT/hooks/pre-build.d" &&
	printf "#!/bin/sh\nexec python3 \"\$BERTH_BUILD_DIR/spy.py\" server-hook\n" >"$BERTH_ROOT/hooks/pre-build.d/10-spy" &&
	chmod 755 "$BERTH_ROOT/hooks" "$BERTH_ROOT/hooks/pre-build.d" "$BERTH_ROOT/hooks/pre-build.d/10-spy" &&
	test_when_finished "rm -rf \"$BERTH_ROOT/hooks/pre-build.d\"" &&
	berth create spy >/dev/null &&
	berth config spy set SPYVAR=spy-value >/dev/null &&
	commit_all spy one &&
	push spy >out &&
	cat out &&
	test_grep "Release 1 of spy is live" out &&
	for who in hook buildpack server-hook
	do
		test_grep "spy $who uid: $(id -u berth-spy) *$" out &&
		test_grep "spy $who build: sees True" out &&
		test_grep "spy $who cache: WROTE" out &&
		test_grep "spy $who app: WROTE" out &&
		test_grep "spy $who tmp: WROTE" out &&
		test_grep "spy $who nnp: 1 *$" out &&
		test_grep "spy $who net: connected" out &&
		for what in root apps vrel vrepo vhead venv hostkey keys shadow hosttmp pid1
		do
			test_grep "spy $who $what: denied [A-Za-z]*Error *$" out || return 1
		done || return 1
	done &&
	test_grep "spy buildpack envdir: SECRET=spy-value" out &&
	test_grep "spy buildpack envwrite: denied OSError" out &&
	test_grep_not "LISTED|READ *$" out &&
	# the host saw none of their private files
	test ! -e /tmp/spy-hook &&
	test ! -e /app/spy-hook &&
	# what they wrote to the cache stays; the scratch is gone
	test -f "$BERTH_ROOT/cache/spy/spy-hook" &&
	test -f "$BERTH_ROOT/cache/spy/spy-buildpack" &&
	test -z "$(find "$BERTH_ROOT/tmp" -maxdepth 1 -name "work-spy-*")"
'

# a failed build'"'"'s reason, as the pusher reads it
refused() {
	test_must_fail push spy >out 2>&1 &&
	cat out &&
	test_grep "push rejected" out &&
	test_grep_not "$BERTH_ROOT" out
}

test_expect_success 'a pusher reads no absolute path of the server in errors' '
	rm -f spy/app.yaml &&
	printf "#!/nonexistent/interpreter\n" >spy/.berth/hooks/pre-build &&
	commit_all spy bad-interpreter &&
	refused &&
	test_grep "cannot run .berth/hooks/pre-build" out &&
	rm spy/.berth/hooks/pre-build &&
	mkdir -p "$TRASH/nodetect/bin" &&
	cp "$TRASH/spypack/bin/compile" "$TRASH/nodetect/bin/compile" &&
	chmod -R a+rX "$TRASH/nodetect" &&
	echo "buildpack: $TRASH/nodetect" >spy/app.yaml &&
	commit_all spy no-detect &&
	refused &&
	test_grep "buildpack .$TRASH/nodetect. has no executable bin/detect" out &&
	printf "#!/bin/sh\necho Spy\n" >"$TRASH/nodetect/bin/detect" &&
	printf "#!/nonexistent/interpreter\n" >"$TRASH/nodetect/bin/compile" &&
	chmod a+rx "$TRASH/nodetect/bin/detect" &&
	git -C spy commit -q --allow-empty -m bad-compile &&
	refused &&
	test_grep "cannot run .*bin/compile" out
'

test_expect_success 'the host'"'"'s mounts are untouched' '
	! grep -q " /app " /proc/self/mountinfo &&
	! grep -q "$BERTH_ROOT" /proc/self/mountinfo
'

test_done
