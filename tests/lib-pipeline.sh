# lib-pipeline.sh: pushing apps to a berth started by lib-daemon.sh, with
# stock git over stock OpenSSH.
#
#   . "$TEST_DIR/lib-daemon.sh"
#   . "$TEST_DIR/lib-pipeline.sh"
#   start_berth && setup_push_key       # top level: both export variables
#   new_app_repo myapp && (cd myapp && ... && git commit ...)
#   push myapp >out 2>&1                # git push deploy HEAD:main

export GIT_AUTHOR_NAME=tester GIT_AUTHOR_EMAIL=tester@example.com
export GIT_COMMITTER_NAME=tester GIT_COMMITTER_EMAIL=tester@example.com
export GIT_CONFIG_NOSYSTEM=1

# A key for this script, made an admin key of the engine.
setup_push_key() {
	ssh-keygen -q -t ed25519 -N "" -C "tester" -f "$TRASH/push-key" &&
	berth keys add --admin "$TRASH/push-key.pub" >/dev/null &&
	GIT_SSH_COMMAND="ssh -F /dev/null -i $TRASH/push-key -o IdentitiesOnly=yes -o IdentityAgent=none -o BatchMode=yes -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR" &&
	export GIT_SSH_COMMAND
}

# new_app_repo DIR [NAME]: a fresh repository whose "deploy" remote is
# app NAME (default DIR) on this engine.
new_app_repo() {
	local dir="$1" name="${2:-$1}"
	git init -q -b main "$dir" &&
	git -C "$dir" remote add deploy "ssh://git@127.0.0.1:$SSH_PORT/$name"
}

# commit_all DIR MESSAGE
commit_all() {
	git -C "$1" add -A &&
	git -C "$1" commit -q -m "$2"
}

# push DIR [GIT-PUSH-ARGS...]: git push deploy HEAD:main, output on
# stdout (and on stderr too when the push fails, for the test's log)
push() {
	local dir="$1" o r
	shift
	o=$(git -C "$dir" push "$@" deploy HEAD:main 2>&1)
	r=$?
	printf '%s\n' "$o"
	[ $r -eq 0 ] || printf 'push failed:\n%s\n' "$o" >&2
	return $r
}

# a web app (tests/apps/web.py) with VERSION in the repository
add_web_app() {
	cp "$TOP/tests/apps/web.py" "$1/web.py" &&
	echo "$2" >"$1/VERSION"
}

# new_web_app DIR VERSION: new_app_repo DIR with the web app and a
# Procfile that runs it (not yet committed)
new_web_app() {
	new_app_repo "$1" &&
	add_web_app "$1" "$2" &&
	echo "web: python3 web.py" >"$1/Procfile"
}

# start_berth_for_pushes: the engine and this script's push key (at the
# top level of a step: both export variables)
start_berth_for_pushes() {
	start_berth &&
	setup_push_key
}

# A test buildpack written to the Heroku classic API: detect names it,
# compile counts its builds in the cache and bakes config var GREETING
# (from ENV_DIR) into VERSION, release gives a default web process.
make_test_buildpack() {
	local d="$1"
	mkdir -p "$d/bin" &&
	cat >"$d/bin/detect" <<-\EOF_DETECT &&
	#!/bin/sh
	echo "Test Pack"
	EOF_DETECT
	cat >"$d/bin/compile" <<-\EOF_COMPILE &&
	#!/bin/sh
	set -e
	build=$1 cache=$2 env=$3
	n=$(cat "$cache/builds" 2>/dev/null || echo 0)
	n=$((n + 1))
	echo $n >"$cache/builds"
	echo "-----> Test Pack build $n"
	echo "compiling for ${BERTH_APP:-?}"
	echo "compile as $(id -un)"
	greeting=$(cat "$env/GREETING" 2>/dev/null || echo none)
	echo "$greeting-build$n" >"$build/VERSION"
	EOF_COMPILE
	cat >"$d/bin/release" <<-\EOF_RELEASE &&
	#!/bin/sh
	cat <<EOF
	---
	addons: []
	default_process_types:
	  web: python3 web.py
	EOF
	EOF_RELEASE
	chmod +x "$d/bin/detect" "$d/bin/compile" "$d/bin/release"
}

# A tiny HTTP listener that appends each POST body (one line) to FILE.
# start_webhook_listener FILE: sets WEBHOOK_PORT
start_webhook_listener() {
	WEBHOOK_PORT=$(free_port)
	export WEBHOOK_PORT
	python3 - "$WEBHOOK_PORT" "$1" >"$TRASH/webhook.log" 2>&1 <<-\EOF_PY &
	import http.server, sys
	port, out = int(sys.argv[1]), sys.argv[2]
	class H(http.server.BaseHTTPRequestHandler):
	    def do_POST(self):
	        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
	        with open(out, "ab") as f:
	            f.write(self.headers.get("Content-Type", "").encode() + b" " + body + b"\n")
	        self.send_response(204)
	        self.end_headers()
	http.server.HTTPServer(("127.0.0.1", port), H).serve_forever()
	EOF_PY
	WEBHOOK_PID=$!
	test_atexit "kill $WEBHOOK_PID"
	retry_until 10 bash -c "exec 3<>/dev/tcp/127.0.0.1/$WEBHOOK_PORT"
}

# live_release OUT APP: the release number a push's output says went live
live_release() {
	sed -n "s/.*-----> Release \([0-9][0-9]*\) of $2 is live.*/\1/p" "$1" | tail -n 1
}

# make_test_wheel DIR: DIR/hello-1.0-py3-none-any.whl, a package with a
# console script "hello", so pip can install offline (--no-index).
make_test_wheel() {
	python3 - "$1" <<-\EOF_PY
	import base64, hashlib, os, sys, zipfile
	files = {
	    "hello.py": 'def main():\n    print("hello from a wheel")\n',
	    "hello-1.0.dist-info/METADATA": "Metadata-Version: 2.1\nName: hello\nVersion: 1.0\n",
	    "hello-1.0.dist-info/WHEEL": "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
	    "hello-1.0.dist-info/entry_points.txt": "[console_scripts]\nhello = hello:main\n",
	}
	rec = []
	with zipfile.ZipFile(os.path.join(sys.argv[1], "hello-1.0-py3-none-any.whl"), "w") as z:
	    for name, text in files.items():
	        data = text.encode()
	        z.writestr(name, data)
	        h = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
	        rec.append("%s,sha256=%s,%d" % (name, h, len(data)))
	    rec.append("hello-1.0.dist-info/RECORD,,")
	    z.writestr("hello-1.0.dist-info/RECORD", "\n".join(rec) + "\n")
	EOF_PY
}
