#!/bin/bash
# domains, domains:add, domains:remove (Dokku's spellings) and
# maintenance:on/off, over ssh and locally, with an app pushed by git:
# applied at once through the router's table (no redeploy, no nginx
# reload, the same processes), validated (host name rules, a host of
# another app refused naming it), shown in domains and url, and kept
# across an engine restart.
. "$(dirname "$0")/test-lib.sh"
. "$TEST_DIR/lib-ssh.sh"
. "$TEST_DIR/lib-pipeline.sh"

# status_of HOST [PATH]: the HTTP status of a request for HOST via nginx
status_of() {
	curl -s -o /dev/null -w "%{http_code}" --max-time 10 \
		-H "Host: $1" "http://127.0.0.1:$HTTP_PORT${2:-/}"
}
# body_of HOST: the body nginx answers for HOST
body_of() {
	curl -s --max-time 10 -H "Host: $1" "http://127.0.0.1:$HTTP_PORT/"
}
answers() { test "$(status_of "$1")" = "$2"; }

test_expect_success 'engine, key, two pushed apps' '
	start_berth &&
	setup_push_key &&
	for app in shop blog; do
		new_app_repo $app &&
		add_web_app $app "$app-v1" &&
		echo "web: python3 web.py" >$app/Procfile &&
		commit_all $app first &&
		push $app >out &&
		test_grep "Release 1 of $app is live" out || return 1
	done &&
	retry_until 30 answers shop.localhost 200 &&
	test "$(status_of www.shop.test)" = 404
'

test_expect_success 'domains:add over ssh: the host answers at once, no redeploy, no nginx reload' '
	workers=$(nginx_workers) &&
	web=$(app_pid shop) &&
	berth releases shop >before &&
	ssh_berth push-key domains:add shop www.Shop.test >out &&
	test_grep "Added www\.shop\.test: http://www\.shop\.test:$HTTP_PORT/" out &&
	test "$(status_of www.shop.test)" = 200 &&
	body_of www.shop.test | grep -q "hello shop-v1" &&
	test "$(status_of shop.localhost)" = 200 &&
	test "$(nginx_workers)" = "$workers" &&
	test "$(app_pid shop)" = "$web" &&
	berth releases shop >after &&
	test_cmp before after
'

test_expect_success 'domains and url show it; locally too' '
	berth domains shop >out &&
	test_grep "^shop\.localhost +default" out &&
	test_grep "^www\.shop\.test +domains:add" out &&
	ssh_berth push-key domains:report shop >out2 &&
	test_cmp out out2 &&
	berth url shop >urls &&
	test "$(sed -n 1p urls)" = "http://shop.localhost:$HTTP_PORT/" &&
	test_grep "^http://www\.shop\.test:$HTTP_PORT/$" urls &&
	ssh_berth push-key url shop >urls2 &&
	test_cmp urls urls2 &&
	ssh_berth push-key domains shop >out3 &&
	test_cmp out out3 &&
	berth domains:add shop api.shop.test "*.cdn.shop.test" >out &&
	test "$(status_of api.shop.test)" = 200 &&
	test "$(status_of img.cdn.shop.test)" = 200 &&
	berth domains:add shop api.shop.test >out &&
	test_grep "Nothing to add" out
'

test_expect_success 'a host another app has is refused, naming it; nothing changes' '
	cp "$BERTH_ROOT/apps/blog/domains" blog-domains 2>/dev/null || : >blog-domains &&
	test_must_fail ssh_berth push-key domains:add blog ok.blog.test www.shop.test 2>err &&
	test $(wc -l <err) -eq 1 &&
	test_grep "host .www\.shop\.test. belongs to app .shop." err &&
	test "$(status_of ok.blog.test)" = 404 &&
	body_of www.shop.test | grep -q "hello shop-v1" &&
	test_must_fail berth domains:add blog shop.localhost 2>err &&
	test_grep "belongs to app .shop." err
'

test_expect_success 'bad hosts: one clear line each, nothing changes' '
	cp "$BERTH_ROOT/apps/shop/domains" keep &&
	for h in "bad_host.test" "x.test:8080" "-a.test" "a-.test" "a..test" \
		 "nodot" "http://x.test/" "a.test." "$(printf "%070d" 0).test"; do
		test_must_fail berth domains:add shop "$h" 2>err || return 1
		test_grep "invalid host" err || return 1
		test $(wc -l <err) -eq 1 || return 1
	done &&
	test_cmp keep "$BERTH_ROOT/apps/shop/domains" &&
	test_must_fail ssh_berth push-key domains:add nosuch a.test 2>err &&
	test_grep "app .nosuch. does not exist" err &&
	test_must_fail ssh_berth push-key domains:add shop 2>err &&
	test_grep "usage: domains:add NAME HOST" err &&
	test_must_fail berth domains:remove shop never.shop.test 2>err &&
	test_grep "has no host .never\.shop\.test." err
'

test_expect_success 'maintenance:on: a 503 page on every host at once; processes and release stay' '
	workers=$(nginx_workers) &&
	web=$(app_pid shop) &&
	berth releases shop >before &&
	ssh_berth push-key maintenance:on shop >out &&
	test_grep "Maintenance on for shop" out &&
	test "$(status_of shop.localhost)" = 503 &&
	test "$(status_of www.shop.test)" = 503 &&
	body_of shop.localhost | grep -q "maintenance" &&
	test "$(status_of blog.localhost)" = 200 &&
	test "$(nginx_workers)" = "$workers" &&
	test "$(app_pid shop)" = "$web" &&
	berth releases shop >after &&
	test_cmp before after &&
	berth domains shop >out &&
	test_grep "maintenance is on" out
'

test_expect_success 'a push during maintenance deploys behind the page' '
	echo shop-v2 >shop/VERSION &&
	commit_all shop second &&
	push shop >out &&
	test_grep "Release 2 of shop is live" out &&
	test "$(status_of shop.localhost)" = 503
'

test_expect_success 'domains and maintenance survive an engine restart' '
	stop_berth &&
	start_berth &&
	retry_until 30 ps_line_matches shop "^web\.1 .* up " &&
	retry_until 30 answers blog.localhost 200 &&
	test "$(status_of shop.localhost)" = 503 &&
	test "$(status_of www.shop.test)" = 503 &&
	berth maintenance:off shop >out &&
	test_grep "Maintenance off for shop" out &&
	retry_until 30 answers www.shop.test 200 &&
	body_of www.shop.test | grep -q "hello shop-v2" &&
	test "$(status_of api.shop.test)" = 200
'

test_expect_success 'domains:remove: the host stops answering at once; the rest stay' '
	ssh_berth push-key domains:remove shop www.shop.test api.shop.test >out &&
	test_grep "Removed 2 hosts from shop" out &&
	test "$(status_of www.shop.test)" = 404 &&
	test "$(status_of img.cdn.shop.test)" = 200 &&
	test "$(status_of shop.localhost)" = 200 &&
	berth domains:add blog www.shop.test >out &&
	body_of www.shop.test | grep -q "hello blog-v1" &&
	berth domains:clear shop >out &&
	test "$(status_of img.cdn.shop.test)" = 404 &&
	test ! -e "$BERTH_ROOT/apps/shop/domains"
'

test_expect_success 'maintenance:on locally, maintenance:off over ssh' '
	berth maintenance:on shop >out &&
	test_grep "Maintenance on for shop" out &&
	test "$(status_of shop.localhost)" = 503 &&
	ssh_berth push-key maintenance:off shop >out &&
	test_grep "Maintenance off for shop" out &&
	retry_until 30 answers shop.localhost 200
'

test_expect_success 'help lists the commands' '
	berth help >out &&
	for c in "domains NAME" "domains:add NAME HOST" "domains:remove NAME HOST" \
		 "maintenance:on NAME" "maintenance:off NAME"; do
		test_grep "^  $c" out || return 1
	done
'

test_done
