#!/bin/bash
# HTTPS against a real ACME server: pebble (Let's Encrypt's test server)
# on loopback with its own TLS certificate, and pebble-challtestsrv as its
# DNS, which answers 127.0.0.1 for every name, so that pebble's http-01
# check reaches berth's nginx.  Pebble issues certificates valid 30 days
# and 25 seconds: the engine renews them 30 days before expiry, so after
# about 25 seconds.
# - certs:auto: a certificate is issued and served for the app's host
#   (curl trusting pebble's root), HTTP redirects to HTTPS;
# - renewal on the engine's timer, served at once; status lists expiry;
# - a failed challenge (the host resolves where nothing answers): one
#   clear error line, the app keeps serving plain HTTP;
# - acme: true: every app gets one on the timer;
# - certs:add (files, PEM and tar on stdin, ssh), certs, certs:remove; bad
#   input changes nothing; attacks: a staged folder not made by certs:add,
#   paths over ssh;
# - not one nginx reload through all of it (the same worker pids).

. "$(dirname "$0")/test-lib.sh"

for need in nginx pebble pebble-challtestsrv lego openssl curl python3; do
	if ! command -v $need >/dev/null && ! [ -x /usr/sbin/$need ]; then
		test_skip "$need is not installed (scripts/install-deps)"
		test_done
	fi
done

PEB=$TRASH/pebble
mkdir -p "$PEB"
HTTP_PORT=$(free_port)
HTTPS_PORT=$(free_port)
ACME_PORT=$(free_port)
MGMT_PORT=$(free_port)
DNS_PORT=$(free_port)
CHALL_PORT=$(free_port)
export HTTP_PORT
. "$TEST_DIR/lib-ssh.sh"

# s_client_serial HOST: the serial of the certificate served for HOST
served_serial() {
	openssl s_client -connect "127.0.0.1:$HTTPS_PORT" -servername "$1" \
		</dev/null 2>/dev/null | openssl x509 -noout -serial
}
# https HOST [PATH]: through berth's HTTPS listener, trusting pebble's root
https() {
	curl -sSf --max-time 10 --cacert "$PEB/roots.pem" \
		--resolve "$1:$HTTPS_PORT:127.0.0.1" "https://$1:$HTTPS_PORT${2:-/}"
}

test_expect_success 'berth.yaml: bad HTTPS settings are refused at their line' '
	mkdir -p cfg &&
	printf "acme_email: not-an-address\nacme: maybe\nhttps_listen: nowhere\nacme_directory: ftp://x\nacme_ca: relative.pem\n" \
		>cfg/berth.yaml &&
	test_must_fail "$BERTH" --root "$TRASH/cfg" config-check 2>err &&
	test_grep "berth.yaml:1:13: .acme_email. must be an email address" err &&
	test_grep "berth.yaml:2:7: .acme. must be true or false" err &&
	test_grep "berth.yaml:3:15: .https_listen. must be ADDRESS:PORT" err &&
	test_grep "berth.yaml:4:17: .acme_directory. must be an http:// or https:// URL" err &&
	test_grep "berth.yaml:5:10: .acme_ca. must be an absolute path" err &&
	printf "acme_email: ops@example.test\nhttps_listen: \"off\"\n" >cfg/berth.yaml &&
	"$BERTH" --root "$TRASH/cfg" config-check >out &&
	test_grep "^acme_directory: \"https://acme-v02.api.letsencrypt.org/directory\"" out &&
	test_grep "^https_listen: \"off\"" out
'

# the expiry line of "certs web" is no longer the one in exp.1
renewed() { ! berth certs web | grep -qF "$(cat exp.1)"; }
serial_changed() { ! served_serial web.example.test | cmp -s - serial.1; }

test_expect_success 'pebble and its DNS run on loopback' '
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
		-days 2 -subj /CN=localhost -keyout "$PEB/key.pem" \
		-out "$PEB/cert.pem" \
		-addext "subjectAltName=DNS:localhost,IP:127.0.0.1" 2>/dev/null &&
	cat >"$PEB/config.json" <<-EOF &&
	{ "pebble": {
		"listenAddress": "127.0.0.1:$ACME_PORT",
		"managementListenAddress": "127.0.0.1:$MGMT_PORT",
		"certificate": "$PEB/cert.pem",
		"privateKey": "$PEB/key.pem",
		"httpPort": $HTTP_PORT,
		"tlsPort": $(free_port),
		"ocspResponderURL": "",
		"externalAccountBindingRequired": false,
		"certificateValidityPeriod": 2592025
	} }
	EOF
	{ pebble-challtestsrv -defaultIPv4 127.0.0.1 -defaultIPv6 "" \
		-dns01 "127.0.0.1:$DNS_PORT" -http01 "" -https01 "" \
		-tlsalpn01 "" -management "127.0.0.1:$CHALL_PORT" \
		>"$PEB/chall.log" 2>&1 & } &&
	echo $! >"$PEB/chall.pid" &&
	{ PEBBLE_VA_NOSLEEP=1 PEBBLE_WFE_NONCEREJECT=0 PEBBLE_AUTHZREUSE=0 \
		pebble -config "$PEB/config.json" \
		-dnsserver "127.0.0.1:$DNS_PORT" >"$PEB/pebble.log" 2>&1 & } &&
	echo $! >"$PEB/pebble.pid" &&
	test_atexit "kill \$(cat $PEB/pebble.pid) \$(cat $PEB/chall.pid) 2>/dev/null" &&
	retry_until 30 curl -sf --cacert "$PEB/cert.pem" \
		"https://127.0.0.1:$MGMT_PORT/roots/0" -o "$PEB/roots.pem" &&
	curl -sf --cacert "$PEB/cert.pem" \
		"https://127.0.0.1:$MGMT_PORT/intermediates/0" >>"$PEB/roots.pem" &&
	test_grep "BEGIN CERTIFICATE" "$PEB/roots.pem"
'

test_expect_success 'berth starts with https_listen and pebble as its ACME server' '
	BERTH_YAML="domain: example.test
https_listen: 127.0.0.1:$HTTPS_PORT
acme_email: ops@example.test
acme_directory: https://127.0.0.1:$ACME_PORT/dir
acme_ca: $PEB/cert.pem" &&
	start_berth &&
	make_web_bundle "$TRASH/v1.tar.gz" v1 &&
	berth deploy web "$TRASH/v1.tar.gz" &&
	berth deploy bad "$TRASH/v1.tar.gz" &&
	berth deploy manual "$TRASH/v1.tar.gz" &&
	curl -sSf -H "Host: web.example.test" "http://127.0.0.1:$HTTP_PORT/" >out &&
	test_grep "hello v1" out &&
	nginx_workers >"$TRASH/workers.before" &&
	test -s "$TRASH/workers.before" &&
	berth certs web >out &&
	test_grep "no certificate" out &&
	berth status >out &&
	test_grep "^certificates: 0 \(https 127.0.0.1:$HTTPS_PORT\)" out
'

test_expect_success 'certs:auto: pebble checks http-01 through berth, the certificate is served' '
	berth certs:auto web >out 2>err &&
	test_grep "Asking https://127.0.0.1:$ACME_PORT/dir" out &&
	test_grep "hosts: web.example.test" out &&
	test_grep "Certificate installed: Pebble Intermediate" out &&
	https web.example.test >body &&
	test_grep "hello v1" body &&
	berth certs web >out &&
	test_grep "certificate from ACME" out &&
	test_grep "hosts: +web.example.test" out &&
	test_grep "issuer: +Pebble Intermediate" out &&
	test_grep "expires: .* \(in 30 days\)" out &&
	berth status >out &&
	test_grep "^  web expires [0-9-]+T.* \(acme, Pebble" out
'

test_expect_success 'the key stays with root: 0600 in a 0700 folder' '
	test "$(stat -c %a "$BERTH_ROOT/certs")" = 700 &&
	test "$(stat -c %a "$BERTH_ROOT/certs/web/key.pem")" = 600 &&
	test "$(stat -c %a "$BERTH_ROOT/nginx/certs")" = 600
'

test_expect_success 'HTTP redirects to HTTPS once the app has a certificate' '
	curl -s -o /dev/null -w "%{http_code} %{redirect_url}\n" \
		-H "Host: web.example.test" \
		"http://127.0.0.1:$HTTP_PORT/a/b?c=d" >out &&
	test_grep "^301 https://web.example.test:$HTTPS_PORT/a/b\?c=d$" out &&
	curl -s -o /dev/null -w "%{http_code}\n" -X POST \
		-H "Host: web.example.test" "http://127.0.0.1:$HTTP_PORT/p" >out &&
	test_grep "^308$" out &&
	curl -sSf -H "Host: bad.example.test" "http://127.0.0.1:$HTTP_PORT/" >out &&
	test_grep "hello v1" out
'

test_expect_success 'https_redirect off serves both; hsts on adds the header' '
	berth certs:set web https_redirect false &&
	curl -sSf -H "Host: web.example.test" "http://127.0.0.1:$HTTP_PORT/" >out &&
	test_grep "hello v1" out &&
	curl -sSI --cacert "$PEB/roots.pem" \
		--resolve "web.example.test:$HTTPS_PORT:127.0.0.1" \
		"https://web.example.test:$HTTPS_PORT/" >hdr &&
	test_grep_not "Strict-Transport-Security" hdr &&
	berth certs:set web hsts true &&
	curl -sSI --cacert "$PEB/roots.pem" \
		--resolve "web.example.test:$HTTPS_PORT:127.0.0.1" \
		"https://web.example.test:$HTTPS_PORT/" >hdr &&
	test_grep "Strict-Transport-Security: max-age=31536000" hdr &&
	test_must_fail berth certs:set web hsts sometimes 2>err &&
	test_grep "hsts must be true, false or a max-age" err &&
	berth certs:set web hsts false &&
	berth certs:set web https_redirect true
'

test_expect_success 'the engine renews 30 days before expiry, served at once' '
	served_serial web.example.test >serial.1 &&
	test_grep "serial=" serial.1 &&
	berth certs web | grep expires: >exp.1 &&
	retry_until 90 renewed &&
	retry_until 10 serial_changed &&
	https web.example.test >body &&
	test_grep "hello v1" body &&
	grep -q "certs: .web. has a new certificate" "$TRASH/berth.log"
'

test_expect_success 'a failed challenge: one clear error, the app stays on plain HTTP' '
	curl -sSf -X POST -d "{\"host\":\"bad.example.test\",\"addresses\":[\"127.0.0.2\"]}" \
		"http://127.0.0.1:$CHALL_PORT/add-a" &&
	test_must_fail berth certs:auto bad >out 2>err &&
	test_grep "^error: ACME failed for .bad. \(it keeps what it served\): .*bad.example.test" err &&
	test $(wc -l <err) = 1 &&
	curl -sSf -H "Host: bad.example.test" "http://127.0.0.1:$HTTP_PORT/" >body &&
	test_grep "hello v1" body &&
	test_must_fail curl -sf --cacert "$PEB/roots.pem" \
		--resolve "bad.example.test:$HTTPS_PORT:127.0.0.1" \
		"https://bad.example.test:$HTTPS_PORT/" &&
	berth certs bad >out &&
	test_grep "no certificate" out &&
	test_grep "last ACME error: .*bad.example.test" out &&
	berth status >out &&
	test_grep "^  bad none; last ACME error" out
'

test_expect_success 'certs:add from files: served, shown as added by hand' '
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
		-days 60 -subj /CN=manual.example.test -keyout server.key \
		-out server.crt -addext "subjectAltName=DNS:manual.example.test" \
		2>/dev/null &&
	berth certs:add manual server.crt server.key >out &&
	test_grep "Installed the certificate of .manual." out &&
	curl -sSf --cacert server.crt --resolve "manual.example.test:$HTTPS_PORT:127.0.0.1" \
		"https://manual.example.test:$HTTPS_PORT/" >body &&
	test_grep "hello v1" body &&
	berth certs manual >out &&
	test_grep "certificate added by hand" out &&
	test_grep "issuer: +manual.example.test" out &&
	test_grep "expires: .*\(in (59|60) days\)" out
'

test_expect_success 'the dashboard shows the certificate beside its host' '
	berth dashboard >link &&
	path="/login?$(sed -n "s/.*login?//p" link)" &&
	dhost=$(sed -n "s|^http://\([^:/]*\).*|\1|p" link) &&
	curl -sS -c jar -o /dev/null -H "Host: $dhost" \
		"http://127.0.0.1:$HTTP_PORT$path" &&
	curl -sS -b jar -H "Host: $dhost" \
		"http://127.0.0.1:$HTTP_PORT/api/apps/manual" >app.json &&
	test_grep "\"certificates\":\[\{\"hosts\":\"manual.example.test\",\"issuer\":\"manual.example.test\",\"expires\":\"[^\"]+\"\}\]" app.json &&
	curl -sS -b jar -H "Host: $dhost" \
		"http://127.0.0.1:$HTTP_PORT/apps/manual" >app.html &&
	test_grep "<td class=\"cert\">HTTPS, expires " app.html
'

test_expect_success 'certs:add from stdin: PEM text, or a tar as Dokku takes it' '
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
		-days 90 -subj /CN=manual.example.test -keyout k2.pem \
		-out c2.pem -addext "subjectAltName=DNS:manual.example.test" \
		2>/dev/null &&
	cat k2.pem c2.pem | berth certs:add manual >out &&
	test_grep "Installed" out &&
	curl -sSf --cacert c2.pem --resolve "manual.example.test:$HTTPS_PORT:127.0.0.1" \
		"https://manual.example.test:$HTTPS_PORT/" &&
	tar cf cert-key.tar server.crt server.key &&
	berth certs:add manual <cert-key.tar >out &&
	curl -sSf --cacert server.crt --resolve "manual.example.test:$HTTPS_PORT:127.0.0.1" \
		"https://manual.example.test:$HTTPS_PORT/"
'

test_expect_success 'over ssh: certs:add reads stdin; paths on the host are refused' '
	make_key pusher && berth keys add "$TRASH/pusher.pub" >/dev/null &&
	make_key stranger && berth keys add "$TRASH/stranger.pub" >/dev/null &&
	test_must_fail ssh_berth pusher certs:add manual <cert-key.tar 2>err &&
	test_grep "no access to app .manual." err &&
	berth sharing manual add pusher >/dev/null &&
	ssh_berth pusher certs:add manual <cert-key.tar >out &&
	test_grep "Installed the certificate of .manual." out &&
	ssh_berth pusher certs manual >out &&
	test_grep "certificate added by hand" out &&
	test_must_fail ssh_berth pusher certs:add manual "$BERTH_ROOT/certs/web/cert.pem" \
		"$BERTH_ROOT/certs/web/key.pem" 2>err &&
	test_grep "certs:add over ssh reads stdin" err &&
	test_must_fail ssh_berth pusher certs:add-staged web "$BERTH_ROOT/tmp/certs.AAAAAA" 2>err &&
	test_grep "unknown command" err &&
	for c in "certs manual" "certs:remove manual" "certs:auto manual" \
		 "certs:set manual hsts true" "certs:add manual"; do
		test_must_fail ssh_berth stranger $c </dev/null 2>err &&
		test_grep "no access to app .manual." err || return 1
	done &&
	curl -sSf --cacert server.crt --resolve "manual.example.test:$HTTPS_PORT:127.0.0.1" \
		"https://manual.example.test:$HTTPS_PORT/"
'

test_expect_success 'bad certs:add input: one error line, the old certificate stays' '
	test_must_fail berth certs:add manual server.crt k2.pem 2>err &&
	test_grep "^error: certs:add: the key does not match the certificate$" err &&
	echo "not a certificate" | test_must_fail berth certs:add manual 2>err &&
	test_grep "^error: certs:add: not PEM text nor a tar" err &&
	test_must_fail berth certs:add manual server.crt 2>err &&
	test_must_fail berth certs:add manual /nonexistent server.key 2>err &&
	test_grep "nonexistent" err &&
	test_must_fail berth certs:add nosuchapp server.crt server.key 2>err &&
	test_grep "does not exist" err &&
	curl -sSf --cacert server.crt --resolve "manual.example.test:$HTTPS_PORT:127.0.0.1" \
		"https://manual.example.test:$HTTPS_PORT/"
'

test_expect_success 'attack: the engine takes only folders certs:add staged' '
	mkdir -p "$BERTH_ROOT/tmp/evil" && cp server.crt "$BERTH_ROOT/tmp/evil/cert.pem" &&
	cp server.key "$BERTH_ROOT/tmp/evil/key.pem" &&
	test_must_fail berth certs:add-staged web "$BERTH_ROOT/tmp/evil" 2>err &&
	test_grep "takes only folders that certs:add made" err &&
	test_must_fail berth certs:add-staged web "$BERTH_ROOT/tmp/certs.AAAAAA/../evil" 2>err &&
	https web.example.test >/dev/null
'

test_expect_success 'certs:remove: back to plain HTTP, no redirect' '
	berth certs:remove manual >out &&
	test_grep "Removed the certificate of .manual." out &&
	test_must_fail curl -sf --cacert server.crt \
		--resolve "manual.example.test:$HTTPS_PORT:127.0.0.1" \
		"https://manual.example.test:$HTTPS_PORT/" &&
	curl -sSf -H "Host: manual.example.test" "http://127.0.0.1:$HTTP_PORT/" >body &&
	test_grep "hello v1" body &&
	test_must_fail berth certs:remove manual 2>err &&
	test_grep "has no certificate" err &&
	https web.example.test >/dev/null
'

test_expect_success 'a restarted engine (and nginx) serves the certificates from its first request' '
	nginx_workers >"$TRASH/workers.mid" &&
	test_cmp "$TRASH/workers.before" "$TRASH/workers.mid" &&
	stop_berth &&
	echo "acme: true" >>"$BERTH_ROOT/berth.yaml" &&
	start_berth &&
	curl -s --cacert "$PEB/roots.pem" -o /dev/null \
		--resolve "web.example.test:$HTTPS_PORT:127.0.0.1" \
		"https://web.example.test:$HTTPS_PORT/" &&
	retry_until 30 https web.example.test &&
	https web.example.test >body &&
	test_grep "hello v1" body &&
	nginx_workers >"$TRASH/workers.before"
'

test_expect_success 'acme: true gives every app a certificate, on the timer' '
	retry_until 60 sh -c "\"$BERTH\" --root \"$BERTH_ROOT\" certs manual | grep -q \"certificate from ACME\"" &&
	berth certs manual >out &&
	test_grep "auto: +yes \(acme: true\)" out &&
	https manual.example.test >body &&
	test_grep "hello v1" body
'

test_expect_success 'rm takes the certificate with the app (no later app of that name inherits it)' '
	make_web_bundle "$TRASH/v2.tar.gz" v2 &&
	berth deploy gone "$TRASH/v2.tar.gz" &&
	retry_until 60 sh -c "\"$BERTH\" --root \"$BERTH_ROOT\" certs gone | grep -q \"certificate from ACME\"" &&
	grep -q "^cert gone " "$BERTH_ROOT/nginx/certs" &&
	berth rm gone --force &&
	test ! -e "$BERTH_ROOT/certs/gone" &&
	! grep -q "^cert gone " "$BERTH_ROOT/nginx/certs"
'

# unless_renewing CMD...: CMD, again while it says a renewal of the app is
# running (pebble's certificates are due again every 25 s: the renewals of
# acme: true never stop in this test, and a command on the app that meets
# one is told to try again)
unless_renewing() {
	for i in $(seq 1 30); do
		"$@" 2>renewing.err && return 0
		grep -q "is being asked for: try again" renewing.err || break
		sleep 1
	done
	cat renewing.err >&2
	return 1
}

test_expect_success 'no nginx reload through any of it' '
	berth certs:set web hsts 600 &&
	unless_renewing berth certs:add manual server.crt server.key &&
	unless_renewing berth certs:remove manual >out &&
	test_grep "acme: true in berth.yaml asks for a new one" out &&
	nginx_workers >"$TRASH/workers.after" &&
	test_cmp "$TRASH/workers.before" "$TRASH/workers.after"
'

test_done
