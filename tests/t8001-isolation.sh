#!/bin/bash
# Trust boundaries, tried as an attacker would, through real git pushes
# over SSH: a probe app reports who it is and tries to reach the host,
# berth's state and another app; it leaves a setsid()'d process behind;
# a memory hog and a fork bomb meet their limits while another app keeps
# answering; a symlinked Procfile, an LD_PRELOAD config var seen by a
# server hook, a tree bomb and a 1 GiB blob are refused or contained.
. "$(dirname "$0")/test-lib.sh"
. "$TEST_DIR/lib-daemon.sh"
. "$TEST_DIR/lib-pipeline.sh"

if [ "$(id -u)" != 0 ]; then
	test_skip "isolation needs root"
	test_done
fi

uid_of() { sed -n 's/^Uid:[[:space:]]*\([0-9]*\).*/\1/p' "/proc/$1/status"; }
gone() { ! proc_alive "$1"; }

# answer APP [PATH]: the body of the app's web.1 at PATH
answer() { get "http://127.0.0.1:$(app_port "$1")${2:-/}"; }

test_expect_success 'engine and push key' '
	BERTH_YAML="privileged_hooks: pre-build.d/20-priv" &&
	start_berth &&
	setup_push_key
'

test_expect_success 'a victim app, pushed' '
	new_app_repo victim &&
	add_web_app victim v1 &&
	echo "web: python3 web.py" >victim/Procfile &&
	commit_all victim one &&
	push victim >out &&
	test_grep "Release 1 of victim is live" out &&
	berth config victim set SECRET=victim-secret-1234 >/dev/null &&
	retry_until 20 ps_line_matches victim "^web.1 .* up " &&
	answer victim >/dev/null
'

test_expect_success 'the probe app runs as its own user, not root' '
	vpid=$(app_pid victim) &&
	# the port nginx sends the victim'"'"'s requests to
	vport=$(sed -n "s/^route victim live [0-9]* web\.1:\([0-9]*\).*/\1/p" "$BERTH_ROOT/nginx/routes") &&
	test -n "$vport" &&
	new_app_repo probe &&
	cat >probe/targets <<-EOF &&
	vpid=$vpid
	vport=$vport
	hostkey=$BERTH_ROOT/host/ssh_host_ed25519_key
	keys=$BERTH_ROOT/keys/authorized_keys
	apps=$BERTH_ROOT/apps
	venv=$BERTH_ROOT/apps/victim/env
	vrun=$BERTH_ROOT/run
	probesock=$BERTH_ROOT/nginx/sock/probe
	EOF
	cat >probe/probe.py <<-\EOF &&
	import http.server, os, socket, subprocess
	tg = dict(l.split("=", 1) for l in open("targets").read().split())
	res = []
	def t(name, f):
	    try:
	        res.append("%s: %s" % (name, f()))
	    except Exception as e:
	        res.append("%s: denied %s" % (name, type(e).__name__))
	t("uid", os.getuid)
	t("gid", os.getgid)
	t("cwd", os.getcwd)
	t("shadow", lambda: open("/etc/shadow").read() and "READ")
	t("hostkey", lambda: open(tg["hostkey"]).read() and "READ")
	t("keys", lambda: open(tg["keys"]).read() and "READ")
	t("apps", lambda: "LISTED %s" % os.listdir(tg["apps"]))
	t("venv", lambda: open(tg["venv"]).read() and "READ")
	t("vrun", lambda: "LISTED %s" % os.listdir(tg["vrun"]))
	t("vproc", lambda: open("/proc/%s/environ" % tg["vpid"], "rb").read() and "READ")
	t("vsignal", lambda: os.kill(int(tg["vpid"]), 0) or "SENT")
	t("setuid", lambda: os.setuid(0) or "ROOT")
	def steal(host):
	    s = socket.socket()
	    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
	    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
	    s.bind((host, int(tg["vport"])))
	    s.listen()
	    return "BOUND"
	t("vbind", lambda: steal("127.0.0.1"))
	t("vbindany", lambda: steal("0.0.0.0"))
	t("nnp", lambda: [l.split()[1] for l in open("/proc/self/status") if l.startswith("NoNewPrivs")][0])
	t("app", lambda: "LISTED %s" % sorted(os.listdir("/app")))
	def probe():
	    s = socket.socket(socket.AF_UNIX)
	    s.connect(tg["probesock"])
	    s.sendall(b"GET / HTTP/1.0\r\nHost: victim.localhost\r\nX-Berth-Probe: 1\r\n\r\n")
	    return "ANSWERED %r" % s.recv(200)
	t("probesock", probe)
	s = subprocess.Popen(["setsid", "sleep", "1000"])
	t("survivor", lambda: s.pid)
	body = "\n".join(res) + "\n"
	class H(http.server.BaseHTTPRequestHandler):
	    def do_GET(self):
	        self.send_response(200)
	        self.send_header("Content-Length", str(len(body)))
	        self.end_headers()
	        self.wfile.write(body.encode())
	    def log_message(self, *a):
	        pass
	http.server.HTTPServer(("127.0.0.1", int(os.environ["PORT"])), H).serve_forever()
	EOF
	echo "web: python3 probe.py" >probe/Procfile &&
	commit_all probe one &&
	push probe >out &&
	test_grep "Release 1 of probe is live" out &&
	answer probe >report &&
	cat report &&
	ppid=$(app_pid probe) &&
	test "$(uid_of $ppid)" = "$(id -u berth-probe)" &&
	test "$(id -u berth-probe)" -ge 70000 &&
	test "$(id -u berth-probe)" != "$(id -u berth-victim)" &&
	test_grep "^uid: $(id -u berth-probe)$" report &&
	test_grep "^cwd: /app$" report &&
	test_grep "^app: LISTED .*probe.py" report &&
	test_grep "^nnp: 1$" report
'

test_expect_success 'the probe reaches nothing outside its app' '
	test_grep "^shadow: denied" report &&
	test_grep "^hostkey: denied" report &&
	test_grep "^keys: denied" report &&
	test_grep "^apps: denied" report &&
	test_grep "^venv: denied" report &&
	test_grep "^vrun: denied" report &&
	test_grep "^vproc: denied" report &&
	test_grep "^vsignal: denied" report &&
	test_grep "^setuid: denied" report &&
	test_grep "^vbind: denied" report &&
	test_grep "^vbindany: denied" report &&
	# the probe listener of the engine (it says which release answers)
	test -S "$BERTH_ROOT/nginx/sock/probe" &&
	test_grep "^probesock: denied" report &&
	through_nginx victim >body &&
	test_grep "^hello v1 " body &&
	test_grep_not "victim-secret" report
'

test_expect_success 'ps shows memory and CPU of each process' '
	berth ps probe >ps &&
	test_grep "MEMORY +CPU" ps &&
	test_grep "^web.1 .* up .* [0-9.]+M +[0-9.]+s$" ps
'

test_expect_success 'a redeploy kills what the old release started with setsid' '
	old_survivor=$(sed -n "s/^survivor: //p" report) &&
	test -n "$old_survivor" && proc_alive "$old_survivor" &&
	test "$(uid_of $old_survivor)" = "$(id -u berth-probe)" &&
	echo "# two" >>probe/probe.py &&
	commit_all probe two &&
	push probe >out &&
	test_grep "Release 2 of probe is live" out &&
	retry_until 20 gone "$old_survivor" &&
	answer probe >report &&
	survivor=$(sed -n "s/^survivor: //p" report) &&
	test "$survivor" != "$old_survivor" &&
	proc_alive "$survivor"
'

test_expect_success 'rm kills what the app started with setsid, and its user' '
	survivor=$(sed -n "s/^survivor: //p" report) &&
	test -n "$survivor" && proc_alive "$survivor" &&
	test "$(uid_of $survivor)" = "$(id -u berth-probe)" &&
	berth rm probe --force >out &&
	retry_until 10 gone "$survivor" &&
	test_must_fail id berth-probe &&
	answer victim >/dev/null
'

test_expect_success 'a memory hog and a fork bomb stay in their limits' '
	new_app_repo hog &&
	cat >hog/hog.py <<-\EOF &&
	import http.server, os, sys, threading
	def hog():
	    x = []
	    while True:
	        x.append(bytearray(8 << 20))
	def forks():
	    n = 0
	    for i in range(300):
	        try:
	            if os.fork() == 0:
	                import time
	                time.sleep(60)
	                os._exit(0)
	            n += 1
	        except OSError:
	            break
	    return n
	class H(http.server.BaseHTTPRequestHandler):
	    def do_GET(self):
	        if self.path == "/forks":
	            body = "forked %d\n" % forks()
	        else:
	            body = "ok\n"
	            if self.path == "/hog":
	                threading.Thread(target=hog, daemon=True).start()
	        self.send_response(200)
	        self.send_header("Content-Length", str(len(body)))
	        self.end_headers()
	        self.wfile.write(body.encode())
	    def log_message(self, *a):
	        pass
	http.server.HTTPServer(("127.0.0.1", int(os.environ["PORT"])), H).serve_forever()
	EOF
	cat >hog/app.yaml <<-\EOF &&
	processes:
	  web: python3 hog.py
	resources:
	  memory: 64M
	  processes: 40
	EOF
	commit_all hog one &&
	push hog >out &&
	test_grep "Release 1 of hog is live" out &&
	answer hog /hog &&
	retry_until 30 ps_line_matches hog "^web.1 +[0-9]+ +[0-9]+ +up +[0-9]+s +[1-9]" &&
	test_grep "hog web.1: killed at its memory limit" "$TRASH/berth.log" &&
	answer victim >/dev/null &&
	answer hog /forks >forks &&
	cat forks &&
	n=$(sed -n "s/^forked //p" forks) &&
	test "$n" -lt 40 &&
	answer victim >/dev/null
'

test_expect_success 'a Procfile linked to /etc/shadow is refused, never read' '
	new_app_repo linky &&
	add_web_app linky v1 &&
	ln -s /etc/shadow linky/Procfile &&
	commit_all linky one &&
	test_must_fail push linky >out 2>&1 &&
	test_grep "Procfile. (is a symbolic link|links outside the bundle)" out &&
	test_grep_not "root:" out &&
	test_grep_not "$BERTH_ROOT" out
'

test_expect_success 'server hooks run as the app user, privileged ones with a fixed env' '
	mkdir -p "$BERTH_ROOT/hooks/pre-build.d" &&
	printf "#!/bin/sh\necho hook-uid=\$(id -u)\ncat /etc/shadow >/dev/null 2>&1 && echo SHADOW-READ\nexit 0\n" \
		>"$BERTH_ROOT/hooks/pre-build.d/10-who" &&
	chmod +x "$BERTH_ROOT/hooks/pre-build.d/10-who" &&
	printf "#!/bin/sh\necho priv-uid=\$(id -u) preload=\${LD_PRELOAD:-none} secret=\${SECRET:-none} app=\$BERTH_APP\n" \
		>"$BERTH_ROOT/hooks/pre-build.d/20-priv" &&
	chmod +x "$BERTH_ROOT/hooks/pre-build.d/20-priv" &&
	berth config victim set LD_PRELOAD=/nonexistent/evil.so >/dev/null &&
	echo v2 >victim/VERSION &&
	commit_all victim two &&
	push victim >out &&
	test_grep "hook-uid=$(id -u berth-victim)" out &&
	test_grep_not "SHADOW-READ" out &&
	test_grep "priv-uid=0 preload=none secret=none app=victim" out &&
	rm -rf "$BERTH_ROOT/hooks"
'

test_expect_success 'the root chown walk gives away no file through a swapped link' '
	mkdir -m 700 "$TRASH/secret" &&
	echo root-only >"$TRASH/secret/file" &&
	chmod 711 "$TRASH" &&
	mkdir -p "$BERTH_ROOT/hooks/post-build.d" &&
	printf "#!/bin/sh\nexit 0\n" >"$BERTH_ROOT/hooks/post-build.d/10-noop" &&
	chmod +x "$BERTH_ROOT/hooks/post-build.d/10-noop" &&
	new_app_repo racy &&
	add_web_app racy v1 &&
	echo "web: python3 web.py" >racy/Procfile &&
	mkdir -p racy/.berth/hooks racy/d/sub &&
	echo x >racy/d/sub/f &&
	ln -s "$TRASH/secret" racy/l &&
	cat >racy/racer.py <<-\EOF &&
	import ctypes, os, sys
	libc = ctypes.CDLL(None, use_errno=True)
	open(sys.argv[1], "w").write("%d\n" % os.getpid())
	while True:
	    libc.renameat2(-100, b"d", -100, b"l", 2)
	EOF
	# the build sees its cache at its own path (its /tmp is private)
	printf "#!/bin/sh\nsetsid python3 racer.py \"\$BERTH_CACHE_DIR/racer.pid\" </dev/null >/dev/null 2>&1 &\nwhile [ ! -s \"\$BERTH_CACHE_DIR/racer.pid\" ]; do sleep 0.1; done\n" \
		>racy/.berth/hooks/pre-build &&
	chmod +x racy/.berth/hooks/pre-build &&
	commit_all racy one &&
	{ push racy >out 2>&1 || :; } &&
	racer=$(cat "$BERTH_ROOT/cache/racy/racer.pid" 2>/dev/null) &&
	test -n "$racer" &&
	# the build killed it when it ended (with its cgroup), else now
	{ kill -KILL "$racer" 2>/dev/null; true; } &&
	cat out &&
	test "$(stat -c %u "$TRASH/secret")" = 0 &&
	test "$(stat -c %u "$TRASH/secret/file")" = 0 &&
	test "$(cat "$TRASH/secret/file")" = root-only &&
	rm -rf "$BERTH_ROOT/hooks"
'

test_expect_success 'a tree bomb is refused before checkout, nothing left' '
	new_app_repo bomb &&
	(
		cd bomb &&
		blob=$(echo x | git hash-object -w --stdin) &&
		t=$(for i in 0 1 2 3 4 5 6 7; do printf "100644 blob %s\tf%s\n" $blob $i; done | git mktree) &&
		for level in 1 2 3 4 5 6 7 8 9; do
			t=$(for i in 0 1 2 3 4 5 6 7; do printf "040000 tree %s\td%s\n" $t $i; done | git mktree)
		done &&
		c=$(git commit-tree $t -m bomb) &&
		git update-ref refs/heads/main $c
	) &&
	test_must_fail push bomb >out 2>&1 &&
	test_grep "checkout refused: more than 200000 files" out &&
	test -z "$(ls "$BERTH_ROOT/tmp" | grep "^build-bomb")"
'

test_expect_success 'a 1 GiB blob of zeros is refused before checkout' '
	new_app_repo zeros &&
	add_web_app zeros v1 &&
	echo "web: python3 web.py" >zeros/Procfile &&
	head -c 1073741824 /dev/zero >zeros/zeros &&
	commit_all zeros one &&
	rm zeros/zeros &&
	test_must_fail push zeros >out 2>&1 &&
	test_grep "checkout refused: .zeros. brings the files to 1.0 GiB" out &&
	test -z "$(ls "$BERTH_ROOT/tmp" | grep "^build-zeros")"
'

test_expect_success 'a program of another user that takes the slot port gets no request' '
	new_app_repo slot &&
	add_web_app slot v1 &&
	echo "web: python3 web.py" >slot/Procfile &&
	commit_all slot one &&
	push slot >out &&
	test_grep "Release 1 of slot is live" out &&
	through_nginx slot >body &&
	test_grep "^hello v1 " body &&
	# v2 binds its PORT only once someone else listens there, and keeps
	# trying: the order is fixed, not a race against the thief
	cat >slot/web.py <<-\EOF &&
	import http.server, os, socket, time
	port = int(os.environ["PORT"])
	while True:
	    try:
	        socket.create_connection(("127.0.0.1", port), 1).close()
	        break
	    except OSError:
	        time.sleep(0.1)
	class H(http.server.BaseHTTPRequestHandler):
	    def do_GET(self):
	        self.send_response(200)
	        self.end_headers()
	        self.wfile.write(b"hello v2\n")
	while True:
	    try:
	        s = http.server.HTTPServer(("127.0.0.1", port), H)
	        break
	    except OSError:
	        time.sleep(0.2)
	s.serve_forever()
	EOF
	cat >thief.py <<-\EOF &&
	import http.server, sys
	class H(http.server.BaseHTTPRequestHandler):
	    def do_GET(self):
	        self.send_response(200)
	        self.end_headers()
	        self.wfile.write(b"stolen\n")
	    def log_message(self, *a):
	        pass
	http.server.HTTPServer(("127.0.0.1", int(sys.argv[1])), H).serve_forever()
	EOF
	chmod 644 thief.py &&
	commit_all slot two &&
	rm -f push.rc &&
	{ { git -C slot push deploy HEAD:main >push.out 2>&1; echo $? >push.rc; } & } &&
	retry_until 60 grep -q "Starting web.1 on port" push.out &&
	port=$(sed -n "s/.*Starting web.1 on port \([0-9]*\).*/\1/p" push.out) &&
	# nobody, with the system python (not a shim only root may run)
	{ setpriv --reuid=65534 --regid=65534 --clear-groups /usr/bin/python3 \
		"$TRASH/thief.py" "$port" >thief.out 2>&1 & } &&
	thief=$! &&
	test_when_finished "kill $thief 2>/dev/null; true" &&
	retry_until 120 test -s push.rc &&
	cat push.out thief.out &&
	test "$(cat push.rc)" != 0 &&
	test_grep "web.1: port $port is held by a program of another user \(uid 65534\), not by slot" push.out &&
	test_grep_not "Release 2 of slot is live" push.out &&
	through_nginx slot >body &&
	test_grep "^hello v1 " body &&
	berth releases slot >out &&
	test_grep_not "stolen" body
'

test_expect_success 'a static site is served from a copy the app cannot swap for /etc' '
	new_app_repo site &&
	mkdir site/public &&
	echo "<p>site v1</p>" >site/public/index.html &&
	echo "static: public" >site/app.yaml &&
	# a worker of the same release rewrites a page of the live site,
	# then replaces public/ with a link to /etc
	cat >site/swap.py <<-\EOF &&
	import os, time
	open("public/index.html", "w").write("<p>changed by the app</p>")
	os.rename("public", "public.old")
	os.symlink("/etc", "public")
	open("swapped", "w").write("yes")
	time.sleep(1000)
	EOF
	echo "worker: python3 swap.py" >site/Procfile &&
	commit_all site one &&
	push site >out &&
	test_grep "Release 1 of site is live" out &&
	retry_until 20 sh -c "test -f $BERTH_ROOT/run/site-1-*/swapped" &&
	ln -s "$(dirname "$(echo "$BERTH_ROOT"/run/site-1-*/swapped)")" site.release &&
	test_grep "changed by the app" site.release/public.old/index.html &&
	through_nginx site / >body &&
	test_grep "site v1" body &&
	test_grep_not "changed" body &&
	code=$(curl -s -o body -w "%{http_code}" -H "Host: site.localhost" \
		"http://127.0.0.1:$HTTP_PORT/shadow") &&
	test "$code" = 404 &&
	test_grep_not "root:" body &&
	www=$(readlink "$BERTH_ROOT/run/site.static") &&
	case "$www" in *.www) ;; *) false ;; esac &&
	test "$(stat -c %u "$www")" = 0 &&
	test "$(stat -c %u "$www/index.html")" = 0
'

test_expect_success 'a static site holding a link is refused, the old one serves' '
	# a link within the bundle (one out of it the bundle itself refuses)
	ln -s index.html site/public/alias &&
	commit_all site two &&
	test_must_fail push site >out 2>&1 &&
	test_grep "static site .public.: .[a-z/]*alias. is a symbolic link" out &&
	through_nginx site / >body &&
	test_grep "site v1" body
'

test_expect_success 'nginx workers run as berth-www, never root' '
	www=$(id -u berth-www) &&
	test "$www" != 0 &&
	test "$(id -g berth-www)" = "$www" &&
	master=$(cat "$BERTH_ROOT/nginx/logs/nginx.pid") &&
	test "$(uid_of $master)" = 0 &&
	workers=$(cat /proc/$master/task/$master/children) &&
	test -n "$workers" &&
	for w in $workers; do
		echo "worker $w: $(grep -E "^(Uid|Gid|Groups):" /proc/$w/status | tr -s "\t\n" "  ")" &&
		test "$(sed -n "s/^Uid:[[:space:]]*//p" /proc/$w/status | tr -s "\t " " ")" = "$www $www $www $www" &&
		test "$(sed -n "s/^Gid:[[:space:]]*//p" /proc/$w/status | tr -s "\t " " ")" = "$www $www $www $www" || return 1
	done &&
	grep -q "^user berth-www berth-www;" "$BERTH_ROOT/nginx/nginx.conf"
'

# as_www CMD...: run CMD as nginx's worker user
as_www() { setpriv --reuid=berth-www --regid=berth-www --clear-groups "$@"; }

test_expect_success 'nginx worker user reads its sites and nothing of berth or the apps' '
	# what it needs: the static copy, the challenge folder, its sockets
	as_www cat "$(readlink "$BERTH_ROOT/run/site.static")/index.html" >page &&
	test_grep "site v1" page &&
	as_www ls "$BERTH_ROOT/acme/.well-known/acme-challenge" &&
	as_www test -w "$BERTH_ROOT/nginx/router.sock" &&
	# what it must not reach: a compromised worker reads none of these
	for f in "$BERTH_ROOT/apps/victim/env" \
		"$BERTH_ROOT/host/ssh_host_ed25519_key" \
		"$BERTH_ROOT/keys/authorized_keys" \
		"$BERTH_ROOT/access/victim" \
		"$(ls "$BERTH_ROOT"/run/victim-*/web.py | head -n 1)" \
		"$BERTH_ROOT/run/berth.sock" \
		"$BERTH_ROOT/users/next-uid"; do
		test -e "$f" &&
		test_must_fail as_www cat "$f" </dev/null >/dev/null 2>&1 ||
		{ echo "berth-www reached $f"; return 1; }
	done &&
	# and nothing else: every file it can read is one of these
	{ as_www find "$BERTH_ROOT" -type f -readable 2>/dev/null >readable; true; } &&
	cat readable &&
	test_grep "\.www/index.html" readable &&
	{ grep -v -E "^$BERTH_ROOT/(berth\.yaml|state-format|hooks/.*|nginx/(nginx\.conf|check\.pid|logs/nginx\.pid|routes|lua/[a-z]+\.lua|logs/error\.log)|run/cgroups|run/[a-z0-9-]+-[0-9]+-[0-9]+-[0-9]+\.www/.*|acme/\.well-known/.*)\$" readable >unexpected; true; } &&
	test_must_fail test -s unexpected &&
	test_must_fail as_www ls "$BERTH_ROOT/nginx/sock" &&
	test_must_fail as_www ls "$BERTH_ROOT/apps" &&
	test_must_fail as_www ls "$BERTH_ROOT/logs"
'

test_expect_success 'stopping the engine leaves no app process or cgroup' '
	stop_berth &&
	test -z "$(berth_procs)" &&
	while read -r d; do
		test -z "$(find "$d" -mindepth 1 -type d)" || exit 1
	done <"$BERTH_ROOT/run/cgroups"
'

test_done
