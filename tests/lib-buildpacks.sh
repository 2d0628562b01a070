# lib-buildpacks.sh: buildpacks served from git repositories, for the
# tests of buildpacks given by URL.
#
#   . "$TEST_DIR/lib-buildpacks.sh"
#   make_tool_pack "$TRASH/tool"        # a working tree with a commit
#   publish_pack "$TRASH/tool" tool     # bare $TRASH/git/tool.git
#   start_git_http                      # git http-backend on GIT_HTTP_PORT
#   URL: file://$TRASH/git/tool.git or http://127.0.0.1:$GIT_HTTP_PORT/tool.git

# A buildpack in a new git repository DIR (branch main), from a function
# that writes its bin/ scripts: new_pack DIR WRITER
new_pack() {
	mkdir -p "$1/bin" &&
	"$2" "$1" &&
	chmod +x "$1"/bin/* &&
	git init -q -b main "$1" &&
	git -C "$1" add -A &&
	git -C "$1" commit -q -m "$2"
}

# "tool": installs a program "hello" into BUILD/.tool/bin and, as Heroku's
# multi-buildpack contract has it, leaves an "export" file in its own
# folder for the buildpacks after it.  Its release gives a web process
# that must lose to the last buildpack's, and config_vars.
write_tool_pack() {
	cat >"$1/bin/detect" <<-\EOF &&
	#!/bin/sh
	echo "Tool"
	EOF
	cat >"$1/bin/compile" <<-\EOF &&
	#!/bin/sh
	set -e
	build=$1
	bp_dir=$(cd "$(dirname "$0")/.." && pwd)
	mkdir -p "$build/.tool/bin"
	printf '#!/bin/sh\necho "hello from tool %s"\n' "$(cat "$bp_dir/VERSION")" >"$build/.tool/bin/hello"
	chmod +x "$build/.tool/bin/hello"
	echo "-----> Tool $(cat "$bp_dir/VERSION") installed"
	echo "compiled by $(id -un)"
	printf 'export TOOL_HOME="%s/.tool"\nexport PATH="%s/.tool/bin:$PATH"\n' "$build" "$build" >"$bp_dir/export"
	EOF
	cat >"$1/bin/release" <<-\EOF &&
	#!/bin/sh
	cat <<YAML
	---
	config_vars:
	  TOOL_GREETING: from-tool
	  SHARED: tool
	default_process_types:
	  web: python3 web.py --tool-wins
	YAML
	EOF
	echo v1 >"$1/VERSION"
}

# "app": needs what the tool's export set, bakes "hello" into VERSION,
# gives the web process and config_vars of its own.
write_app_pack() {
	cat >"$1/bin/detect" <<-\EOF &&
	#!/bin/sh
	[ -f "$1/web.py" ] && echo "App Pack" && exit 0
	exit 1
	EOF
	cat >"$1/bin/compile" <<-\EOF &&
	#!/bin/sh
	set -e
	build=$1
	[ -n "$TOOL_HOME" ] || { echo " !     no TOOL_HOME: the export was not passed on"; exit 1; }
	echo "-----> App pack with TOOL_HOME=${TOOL_HOME#$build/}"
	hello >"$build/VERSION"
	EOF
	cat >"$1/bin/release" <<-\EOF
	#!/bin/sh
	cat <<YAML
	---
	config_vars:
	  SHARED: app
	  APP_DEFAULT: "yes: from the app pack"
	default_process_types:
	  web: python3 web.py
	YAML
	EOF
}

make_tool_pack() { new_pack "$1" write_tool_pack; }
make_app_pack() { new_pack "$1" write_app_pack; }

# publish_pack DIR NAME: (re)publish DIR's branches and tags as the bare
# repository $TRASH/git/NAME.git
publish_pack() {
	mkdir -p "$TRASH/git" &&
	if [ -d "$TRASH/git/$2.git" ]; then
		git -C "$1" push -q --force --tags "$TRASH/git/$2.git" "refs/heads/*:refs/heads/*"
	else
		git clone -q --bare "$1" "$TRASH/git/$2.git"
	fi
}

# A tiny HTTP git server: git http-backend (smart HTTP, from Debian's git)
# run as a CGI program by Python's standard library, serving $TRASH/git.
# Each request is logged to $TRASH/git-http.log.  Sets GIT_HTTP_PORT (and
# keeps it when started again after stop_git_http).
start_git_http() {
	[ -n "${GIT_HTTP_PORT:-}" ] || GIT_HTTP_PORT=$(free_port)
	export GIT_HTTP_PORT
	python3 - "$TRASH/git" "$GIT_HTTP_PORT" "$TRASH/git-http.log" \
		>"$TRASH/git-http.out" 2>&1 <<-\EOF_PY &
	import http.server, subprocess, sys
	root, port, log = sys.argv[1], int(sys.argv[2]), sys.argv[3]
	class H(http.server.BaseHTTPRequestHandler):
	    def body(self):
	        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
	            data = b""
	            while True:
	                n = int(self.rfile.readline().strip().split(b";")[0], 16)
	                if n == 0:
	                    self.rfile.readline()
	                    return data
	                data += self.rfile.read(n)
	                self.rfile.readline()
	        return self.rfile.read(int(self.headers.get("Content-Length") or 0))
	    def cgi(self):
	        path, _, query = self.path.partition("?")
	        data = self.body()
	        env = {"PATH": "/usr/bin:/bin", "GIT_PROJECT_ROOT": root,
	               "GIT_HTTP_EXPORT_ALL": "1", "PATH_INFO": path,
	               "QUERY_STRING": query, "REQUEST_METHOD": self.command,
	               "CONTENT_TYPE": self.headers.get("Content-Type", ""),
	               "CONTENT_LENGTH": str(len(data)), "REMOTE_ADDR": "127.0.0.1"}
	        for h, e in (("Content-Encoding", "HTTP_CONTENT_ENCODING"),
	                     ("Git-Protocol", "GIT_PROTOCOL")):
	            if self.headers.get(h):
	                env[e] = self.headers.get(h)
	        out = subprocess.run(["git", "http-backend"], input=data, env=env,
	                             capture_output=True).stdout
	        head, _, rest = out.partition(b"\r\n\r\n")
	        status, headers = 200, []
	        for line in head.split(b"\r\n"):
	            k, _, v = line.decode().partition(":")
	            if k.lower() == "status":
	                status = int(v.split()[0])
	            elif k:
	                headers.append((k, v.strip()))
	        self.send_response(status)
	        for k, v in headers:
	            self.send_header(k, v)
	        self.send_header("Content-Length", str(len(rest)))
	        self.end_headers()
	        self.wfile.write(rest)
	        with open(log, "a") as f:
	            f.write("%s %s %d\n" % (self.command, path, status))
	    do_GET = do_POST = cgi
	    def log_message(self, *a):
	        pass
	http.server.ThreadingHTTPServer(("127.0.0.1", port), H).serve_forever()
	EOF_PY
	GIT_HTTP_PID=$!
	test_atexit "kill $GIT_HTTP_PID"
	retry_until 10 bash -c "exec 3<>/dev/tcp/127.0.0.1/$GIT_HTTP_PORT"
}

stop_git_http() {
	kill "$GIT_HTTP_PID" 2>/dev/null
	wait "$GIT_HTTP_PID" 2>/dev/null
	return 0
}
