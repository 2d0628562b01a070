#!/bin/bash
# Builds run under the app's limits, tried as an attacker would: the app's
# own build hook forks without end, allocates without end, and leaves a
# setsid()'d daemon behind.  Each build runs as the app's user in a cgroup
# of its own with app.yaml's resources; it fails with one clear line, the
# live release and another app keep serving, and nothing of it is left.
. "$(dirname "$0")/test-lib.sh"
. "$TEST_DIR/lib-daemon.sh"
. "$TEST_DIR/lib-pipeline.sh"

if [ "$(id -u)" != 0 ]; then
	test_skip "build limits need root"
	test_done
fi

# answer APP: the body of the app's web.1
answer() { get "http://127.0.0.1:$(app_port "$1")/"; }

# hook APP <<EOF: the app's pre-build hook, a python3 script
hook() {
	mkdir -p "$1/.berth/hooks" &&
	{ echo "#!/usr/bin/python3"; cat; } >"$1/.berth/hooks/pre-build" &&
	chmod +x "$1/.berth/hooks/pre-build"
}

test_expect_success 'engine, push key, a bystander app' '
	start_berth &&
	setup_push_key &&
	new_app_repo bystander &&
	add_web_app bystander b1 &&
	echo "web: python3 web.py" >bystander/Procfile &&
	commit_all bystander one &&
	push bystander >out &&
	test_grep "Release 1 of bystander is live" out
'

test_expect_success 'a build runs as the app user in a cgroup of its own, with its limits' '
	new_app_repo greedy &&
	add_web_app greedy g1 &&
	echo "web: python3 web.py" >greedy/Procfile &&
	cat >greedy/app.yaml <<-\EOF &&
	resources:
	  memory: 64M
	  processes: 30
	EOF
	hook greedy <<-\EOF &&
	import os
	print("hook uid %d" % os.getuid())
	lim = {}
	v1 = (("pids", "pids.max"), ("memory", "memory.limit_in_bytes"))
	v2 = (("pids", "pids.max"), ("memory", "memory.max"))
	for line in open("/proc/self/cgroup"):
	    hid, ctrls, path = line.strip().split(":", 2)
	    for c, f in v1:
	        if c in ctrls.split(","):
	            lim[c] = open("/sys/fs/cgroup/%s%s/%s" % (c, path, f)).read()
	            print("hook cgroup %s" % path)
	    if hid == "0" and os.path.exists("/sys/fs/cgroup/cgroup.controllers"):
	        for c, f in v2:
	            p = "/sys/fs/cgroup%s/%s" % (path, f)
	            if c not in lim and os.path.exists(p):
	                lim[c] = open(p).read()
	        print("hook cgroup %s" % path)
	for c in sorted(lim):
	    print("hook %s %s" % (c, lim[c].strip()))
	EOF
	commit_all greedy one &&
	push greedy >out &&
	cat out &&
	test_grep "Release 1 of greedy is live" out &&
	test_grep "hook uid $(id -u berth-greedy) *$" out &&
	test_grep "hook cgroup /.*/greedy\\.build-[0-9]+ *$" out &&
	test_grep "hook pids 30 *$" out &&
	test_grep "hook memory 67108864 *$" out &&
	answer greedy >body &&
	test_grep "^hello g1 " body
'

test_expect_success 'a build that forks without end stops at its process limit' '
	hook greedy <<-\EOF &&
	import os, sys, time
	n = 0
	try:
	    for i in range(2000):
	        if os.fork() == 0:
	            time.sleep(300)
	            os._exit(0)
	        n += 1
	except OSError as e:
	    print("forked %d, then %s" % (n, e.strerror))
	    sys.exit(1)
	print("forked all %d" % n)
	EOF
	commit_all greedy fork-bomb &&
	test_must_fail push greedy >out &&
	cat out &&
	test_grep "forked [0-9]+, then Resource temporarily unavailable" out &&
	test_grep_not "forked all" out &&
	test_grep "remote:  !     the build reached its limit of 30 processes \(resources.processes in app.yaml\): step .pre-build. failed" out &&
	test_grep "push rejected: the running release is unchanged" out &&
	answer greedy >body &&
	test_grep "^hello g1 " body &&
	answer bystander >body &&
	test_grep "^hello b1 " body
'

test_expect_success 'a build that allocates without end stops at its memory limit' '
	hook greedy <<-\EOF &&
	import sys
	x = []
	for i in range(128):
	    x.append(bytearray(8 << 20))
	    sys.stdout.write("")
	print("allocated %d MiB" % (8 * len(x)))
	EOF
	commit_all greedy memory-hog &&
	test_must_fail push greedy >out &&
	cat out &&
	test_grep_not "allocated" out &&
	test_grep "remote:  !     the build reached its memory limit \(64 MiB; resources.memory in app.yaml\): step .pre-build. failed" out &&
	answer greedy >body &&
	test_grep "^hello g1 " body &&
	answer bystander >body &&
	test_grep "^hello b1 " body
'

test_expect_success 'what a build leaves running dies with it, setsid or not' '
	hook greedy <<-EOF &&
	import os, sys, time
	if os.fork() == 0:
	    os.setsid()
	    if os.fork() == 0:
	        fd = os.open("/dev/null", os.O_RDWR)
	        for i in (0, 1, 2):
	            os.dup2(fd, i)
	        open("$BERTH_ROOT/cache/greedy/daemon.pid", "w").write("%d\\n" % os.getpid())
	        time.sleep(600)
	    os._exit(0)
	while not os.path.exists("$BERTH_ROOT/cache/greedy/daemon.pid"):
	    time.sleep(0.05)
	print("left a daemon behind")
	EOF
	commit_all greedy daemon &&
	push greedy >out &&
	test_grep "left a daemon behind" out &&
	test_grep "Release [0-9]+ of greedy is live" out &&
	pid=$(cat "$BERTH_ROOT/cache/greedy/daemon.pid") &&
	test -n "$pid" &&
	retry_until 10 sh -c "! kill -0 $pid 2>/dev/null || grep -q \"^State:.*zombie\" /proc/$pid/status" &&
	while read -r d; do
		test -z "$(find "$d" -maxdepth 1 -type d -name "greedy.build-*")" || exit 1
	done <"$BERTH_ROOT/run/cgroups"
'

test_done
