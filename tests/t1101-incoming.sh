#!/bin/bash
# The incoming folder: drop a bundle to deploy, replace it to redeploy,
# delete it to remove the app; Keter bundles run as they are.
. "$(dirname "$0")/test-lib.sh"
. "$TEST_DIR/lib-daemon.sh"

app_version() { berth ps "$1" >/dev/null 2>&1 && get "http://127.0.0.1:$(app_port "$1")/" ; }

test_expect_success 'setup' '
	start_berth &&
	make_web_bundle "$TRASH/v1.tar.gz" v1 &&
	make_web_bundle "$TRASH/v2.tar.gz" v2
'

test_expect_success 'a dropped NAME.tar.gz deploys app NAME' '
	cp v1.tar.gz "$BERTH_ROOT/incoming/dropped.tar.gz" &&
	retry_until 20 apps_line_matches "^dropped +running +v1" &&
	app_version dropped | grep -q "hello v1"
'

test_expect_success 'a half-written file is not deployed until it is closed' '
	exec 7>"$BERTH_ROOT/incoming/partial.tar.gz" &&
	head -c 100 v1.tar.gz >&7 &&
	sleep 1 &&
	! berth apps | grep -q "^partial " &&
	tail -c +101 v1.tar.gz >&7 &&
	exec 7>&- &&
	retry_until 20 apps_line_matches "^partial +running"
'

test_expect_success 'a replaced bundle redeploys (also when renamed into place)' '
	cp v2.tar.gz "$BERTH_ROOT/incoming/.tmp-upload" &&
	mv "$BERTH_ROOT/incoming/.tmp-upload" "$BERTH_ROOT/incoming/dropped.tar.gz" &&
	retry_until 20 apps_line_matches "^dropped +running +v2" &&
	app_version dropped | grep -q "hello v2"
'

test_expect_success 'a deleted bundle removes the app' '
	rm "$BERTH_ROOT/incoming/dropped.tar.gz" &&
	retry_until 20 test ! -e "$BERTH_ROOT/apps/dropped" &&
	! apps_line_matches "^dropped "
'

test_expect_success 'a Keter bundle with config/keter.yaml runs as it is' '
	mkdir -p keter/config keter/bin &&
	cp "$TOP/tests/apps/web.py" keter/ &&
	echo vk >keter/VERSION &&
	printf "#!/bin/sh\nexec python3 web.py \"\$@\"\n" >keter/bin/run &&
	chmod +x keter/bin/run &&
	printf "exec: ../bin/run\nargs: []\nhost: keter.example.com\n" >keter/config/keter.yaml &&
	tar -C keter -czf kapp.keter . &&
	cp kapp.keter "$BERTH_ROOT/incoming/kapp.keter" &&
	retry_until 20 apps_line_matches "^kapp +running" &&
	app_version kapp | grep -q "hello vk" &&
	retry_until 10 curl -sf -H "Host: keter.example.com" "http://127.0.0.1:$HTTP_PORT/" &&
	curl -sf -H "Host: keter.example.com" "http://127.0.0.1:$HTTP_PORT/" | grep -q "hello vk"
'

test_expect_success 'a broken bundle dropped in incoming changes nothing' '
	echo "not a tarball" >"$BERTH_ROOT/incoming/kapp.keter" &&
	retry_until 10 grep -q "deploy failed" "$BERTH_ROOT/logs/kapp/app.log" &&
	app_version kapp | grep -q "hello vk"
'

test_done
