#!/bin/bash
# System mode (issue #11): berth's router inside an nginx the admin runs.
# A stand-in "system" nginx with its own prefix plays the host's (the
# host's own nginx is never touched): its nginx.conf loads the Lua module
# and includes a conf dir, as docs/nginx.md tells the admin to; berth runs
# with "nginx: system" and reaches it through a wrapper that adds -p and
# -c.  Deploys, a switch, a refused release and a removal route through
# it with no reload; the admin's own site keeps serving.
. "$(dirname "$0")/test-lib.sh"
. "$TEST_DIR/lib-daemon.sh"

NGINX=$(command -v nginx || echo /usr/sbin/nginx)
MODDIR=/usr/lib/nginx/modules
for need in python3 curl; do
	if ! command -v $need >/dev/null; then
		test_skip "$need is not installed"
		test_done
	fi
done
if [ ! -x "$NGINX" ] || [ ! -f "$MODDIR/ngx_http_lua_module.so" ]; then
	test_skip "nginx with ngx_http_lua_module is not installed"
	test_done
fi

SYS=$TRASH/sys
HTTP_PORT=$(free_port)

# The admin's nginx: what they add for berth is the two load_module lines
# (Debian's package puts them in modules-enabled/) and the include.
start_system_nginx() {
	mkdir -p "$SYS/conf.d" "$SYS/logs" "$SYS/tmp" &&
	cat >"$SYS/nginx.conf" <<-EOF &&
	load_module $MODDIR/ndk_http_module.so;
	load_module $MODDIR/ngx_http_lua_module.so;
	daemon off;
	worker_processes 2;
	pid $SYS/logs/nginx.pid;
	error_log $SYS/logs/error.log;
	$( [ "$(id -u)" = 0 ] && echo "user root root;" )
	events {}
	http {
		access_log off;
		client_body_temp_path $SYS/tmp/body;
		proxy_temp_path $SYS/tmp/proxy;
		fastcgi_temp_path $SYS/tmp/fastcgi;
		uwsgi_temp_path $SYS/tmp/uwsgi;
		scgi_temp_path $SYS/tmp/scgi;
		server {
			listen 127.0.0.1:$HTTP_PORT;
			server_name own.sys.test;
			return 200 "the admin's own site\n";
		}
		include $SYS/conf.d/*.conf;
	}
	EOF
	printf '#!/bin/sh\nexec %s -p %s -c %s/nginx.conf "$@"\n' \
		"$NGINX" "$SYS" "$SYS" >"$SYS/nginx.sh" &&
	chmod 755 "$SYS/nginx.sh" &&
	{ "$SYS/nginx.sh" >"$SYS/nginx.out" 2>&1 & } &&
	SYS_MASTER=$! &&
	test_atexit 'is_pid "$SYS_MASTER" && kill -QUIT "$SYS_MASTER"' &&
	retry_until 10 own_site
}
own_site() {
	curl -sf --max-time 5 -H "Host: own.sys.test" "http://127.0.0.1:$HTTP_PORT/" |
		grep -q "the admin's own site"
}
sys_workers() {
	tr ' ' '\n' <"/proc/$SYS_MASTER/task/$SYS_MASTER/children" | sort | tr '\n' ' '
}

mkdir -p app && chmod 755 app
cat >app/app.py <<'PY'
import http.server, os
port = int(os.environ['PORT'])
version = open('VERSION').read().strip()
code = 500 if version.startswith('bad') else 200
class H(http.server.BaseHTTPRequestHandler):
    protocol_version = 'HTTP/1.1'
    def do_GET(self):
        body = ('hello %s\n' % version).encode()
        self.send_response(code)
        self.send_header('Content-Length', str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *a):
        pass
http.server.ThreadingHTTPServer(('127.0.0.1', port), H).serve_forever()
PY
bundle() {
	local dir
	dir=$(mktemp -d "$TRASH/b.XXXXXX") &&
	cp app/app.py "$dir/" && echo "$2" >"$dir/VERSION" &&
	echo "web: python3 app.py" >"$dir/Procfile" &&
	tar -C "$dir" -czf "$1" . && rm -rf "$dir"
}

test_expect_success 'setup: a stand-in system nginx, berth in system mode' '
	start_system_nginx &&
	BERTH_YAML="nginx: system
nginx_conf_dir: $SYS/conf.d
nginx_bin: $SYS/nginx.sh
health_timeout: 3s" &&
	start_berth &&
	test_grep "init_by_lua_block" "$SYS/conf.d/berth.conf" &&
	test_grep "balancer_by_lua_block" "$SYS/conf.d/berth.conf" &&
	# the router code is in it: a berth with new code reloads once
	test_grep "^# router code [0-9a-f]{16}$" "$SYS/conf.d/berth.conf" &&
	own_site &&
	WORKERS=$(sys_workers) &&
	test -n "$WORKERS"
'

test_expect_success 'a new app is routed through the system nginx' '
	bundle v1.tar.gz v1 &&
	berth deploy demo "$TRASH/v1.tar.gz" >out &&
	test "$(through_nginx demo)" = "hello v1" &&
	own_site
'

test_expect_success 'a redeploy switches without a reload' '
	bundle v2.tar.gz v2 &&
	berth deploy demo "$TRASH/v2.tar.gz" >out &&
	test_grep "Switched traffic to release 2" out &&
	test "$(through_nginx demo)" = "hello v2"
'

test_expect_success 'a release that answers 500 gets no user request' '
	bundle bad.tar.gz bad &&
	{ curl -s --max-time 10 -H "Host: demo.localhost" \
		"http://127.0.0.1:$HTTP_PORT/?[1-20000]" >seen & } &&
	loop=$! &&
	test_must_fail berth deploy demo "$TRASH/bad.tar.gz" >out 2>err &&
	{ kill $loop; wait $loop; true; } &&
	test_grep "^error: not ready after" err &&
	test "$(grep -c "^hello v2$" seen)" -gt 10 &&
	test_grep_not "hello bad" seen
'

test_expect_success 'unknown host 404, a stopped app 503, removal 404' '
	test "$(curl -s -o /dev/null -w "%{http_code}" -H "Host: nobody.localhost" "http://127.0.0.1:$HTTP_PORT/")" = 404 &&
	berth stop demo >out &&
	test "$(curl -s -o /dev/null -w "%{http_code}" -H "Host: demo.localhost" "http://127.0.0.1:$HTTP_PORT/")" = 503 &&
	berth start demo >out &&
	test "$(through_nginx demo)" = "hello v2" &&
	berth rm demo --force >out &&
	test "$(curl -s -o /dev/null -w "%{http_code}" -H "Host: demo.localhost" "http://127.0.0.1:$HTTP_PORT/")" = 404
'

test_expect_success 'the system nginx was not reloaded, and its own site serves' '
	test "$(sys_workers)" = "$WORKERS" &&
	own_site
'

test_expect_success 'an engine restart with berth.conf unchanged does not reload it' '
	bundle v3.tar.gz v3 &&
	berth deploy again "$TRASH/v3.tar.gz" >out &&
	stop_berth &&
	start_berth &&
	retry_until 20 through_nginx again &&
	test "$(through_nginx again)" = "hello v3" &&
	test "$(sys_workers)" = "$WORKERS"
'

test_expect_success 'berth leaves the system nginx running' '
	stop_berth &&
	kill -0 "$SYS_MASTER" &&
	own_site
'

test_done
