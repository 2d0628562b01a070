#!/bin/bash
# Keys reach only their apps: an app belongs to the key whose push created
# it; "sharing" adds and removes collaborators; any other key is refused on
# every command, on push and on clone; key names are unique.
. "$(dirname "$0")/test-lib.sh"
. "$TEST_DIR/lib-ssh.sh"
. "$TEST_DIR/lib-pipeline.sh"

export GIT_AUTHOR_NAME=A GIT_AUTHOR_EMAIL=a@example.com
export GIT_COMMITTER_NAME=C GIT_COMMITTER_EMAIL=c@example.com

# as KEY git ARGS...: git over ssh with that key
as() {
	local key=$1
	shift
	GIT_SSH_COMMAND="ssh -F /dev/null -i $TRASH/$key -o IdentitiesOnly=yes -o IdentityAgent=none -o BatchMode=yes -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR" \
		"$@"
}

test_expect_success 'engine, an admin, alice and bob' '
	start_berth &&
	make_key admin && make_key alice && make_key bob && make_key other &&
	berth keys add --admin "$TRASH/admin.pub" >/dev/null &&
	berth keys add --name alice "$TRASH/alice.pub" >out &&
	test_grep "^added alice " out &&
	berth keys add --name bob "$TRASH/bob.pub" >/dev/null
'

test_expect_success 'keys add --name refuses a name in use' '
	test_must_fail berth keys add --name alice "$TRASH/other.pub" 2>err &&
	test_grep "a key named .alice. already exists" err &&
	test_must_fail ssh_berth admin keys add --name bob "$(cat "$TRASH/other.pub")" 2>err &&
	test_grep "a key named .bob. already exists" err &&
	berth keys >out &&
	test_grep_not "other" out
'

test_expect_success 'the key that creates an app owns it' '
	new_app_repo alpha &&
	add_web_app alpha v1 &&
	echo "web: python3 web.py" >alpha/Procfile &&
	commit_all alpha one &&
	as alice git -C alpha push -q deploy HEAD:main >out 2>&1 &&
	test_grep "Release 1 of alpha is live" out &&
	ssh_berth alice sharing alpha >out &&
	test_grep "^owner alice$" out &&
	ssh_berth alice ps alpha >out &&
	test_grep "^web.1 " out
'

test_expect_success 'another key is refused on every command, push and clone' '
	for cmd in "ps alpha" "logs alpha -n 5" "config alpha" "config alpha set X=1" \
		"config alpha get X" "releases alpha" "rollback alpha 1" "restart alpha" \
		"stop alpha" "start alpha" "scale alpha web=2" "pg alpha" "sharing alpha" \
		"sharing alpha add bob" "rm alpha --force" "destroy alpha --force" \
		"config:set alpha X=1" "ps:scale alpha web=0"; do
		test_must_fail ssh_berth bob $cmd 2>err </dev/null &&
		test_grep "^error: no access to app .alpha.$" err || return 1
	done &&
	test_must_fail as bob git clone -q "ssh://git@127.0.0.1:$SSH_PORT/alpha" stolen 2>err &&
	test_grep "no access to app .alpha." err &&
	test ! -d stolen/.git &&
	echo v2 >alpha/VERSION && commit_all alpha two &&
	test_must_fail as bob git -C alpha push deploy HEAD:main 2>err &&
	test_grep "no access to app .alpha." err &&
	berth config alpha >out &&
	test_grep_not "^X=" out &&
	berth ps alpha >out &&
	test_grep "^web.1 .* up " out
'

test_expect_success 'every other spelling and door is refused too' '
	for cmd in "logs alpha -f" "ps:report alpha" "config:show alpha" \
		"config:get alpha X" "config:unset alpha X" "ps:restart alpha" \
		"ps:stop alpha" "ps:start alpha" "apps:destroy alpha --force" \
		"sharing alpha rm alice" "rollback alpha" "pg:backup alpha -" \
		"pg:restore alpha - --force" "pg:psql alpha" "export alpha -" \
		"export alpha" "import alpha -" "create alpha" "apps:create alpha" \
		"config:set --no-restart alpha X=1" "config:unset --no-restart alpha X" \
		"apps:destroy --force alpha" "ps:scale --x alpha web=0" "url alpha"; do
		test_must_fail ssh_berth bob $cmd >out 2>err </dev/null &&
		test_grep "^error: no access to app .alpha.$" err &&
		test $(wc -l <err) -eq 1 &&
		test ! -s out || { echo "for: $cmd"; return 1; }
	done &&
	test_must_fail as bob git archive --remote="ssh://git@127.0.0.1:$SSH_PORT/alpha" HEAD >tar 2>err &&
	test_grep "no access to app .alpha." err &&
	test ! -s tar &&
	test_must_fail as bob git ls-remote "ssh://git@127.0.0.1:$SSH_PORT/alpha" >out 2>err &&
	test_grep "no access to app .alpha." err &&
	test_grep_not "refs/heads" out &&
	ssh_berth admin sharing alpha >out &&
	test_grep "^owner alice$" out &&
	test_grep_not "collaborator" out &&
	berth ps alpha >out &&
	test_grep "^web.1 .* up " out
'

# help's usage line of a command that takes an app -> that command on
# app alpha with arguments that pass its usage check ("scale alpha web=1")
cat >"$TRASH/usage2cmd.py" <<-\EOF
import re, sys
fill = {"TYPE=N...": "web=1", "K=V...": "X=1", "FILE|-": "-", "FILE": "-",
        "HOST...": "h.example.com", "BUILDPACK...": "python",
        "GROUP": "default", "NEW-NAME": "beta", "COMMAND...": "true",
        "https_redirect|hsts": "hsts", "VALUE": "true", "PROCESS": "web"}
for line in sys.stdin:
    m = re.match(r"  (\S+) (NAME\S*)(.*?)(\s{2,}|$)", line)
    if not m:
        continue
    cmd, rest = m.group(1), re.sub(r"\[[^]]*\]", "", m.group(3)).split()
    args = []
    for w in rest:  # a long usage runs into its description
        if w in fill:
            args.append(fill[w])
        elif re.fullmatch(r"[A-Z][A-Z0-9=.|-]*|--[a-z-]+", w):
            args.append(w if w.startswith("--") else "x")
        else:
            break
    print(" ".join([cmd, "alpha"] + args))
EOF

test_expect_success 'every command of help that takes an app, and every alias, refuses another key' '
	ssh_berth bob help >help &&
	python3 "$TRASH/usage2cmd.py" <help >cmds &&
	cat cmds &&
	# the table: at least what the issue lists, aliases below
	test $(wc -l <cmds) -ge 40 &&
	# the host-only ones say so before any app is looked up
	grep -v "^\(deploy\|import-staged\|certs:add-staged\) " cmds >remote &&
	for alias in "domains:report alpha" "apps:report alpha" \
		"rename alpha beta" "info alpha" "domains:list alpha" \
		"buildpacks:report alpha" "buildpacks:list alpha" \
		"run:term alpha xterm true" "ps:report alpha" \
		"status alpha"; do
		echo "$alias" >>remote || return 1
	done &&
	while read -r cmd; do
		test_must_fail ssh_berth bob $cmd >out 2>err </dev/null &&
		test_grep "^error: no access to app .alpha.$" err &&
		test ! -s out || { echo "for: $cmd"; cat out err; return 1; }
	done <remote &&
	berth ps alpha >out &&
	test_grep "^web.1 .* up " out &&
	berth config alpha >out &&
	test_grep_not "^X=" out
'

test_expect_success 'apps lists only the apps a key reaches; status is for admins' '
	ssh_berth bob apps >out &&
	test_grep "^NAME " out &&
	test_grep_not "^alpha " out &&
	ssh_berth alice apps >out &&
	test_grep "^alpha " out &&
	ssh_berth admin apps >out &&
	test_grep "^alpha " out &&
	test_must_fail ssh_berth bob apps --key alice 2>err &&
	test_grep "^error: usage: apps$" err &&
	test_must_fail ssh_berth bob status >out 2>err &&
	test_grep "only admin keys" err &&
	ssh_berth admin status >out &&
	test_grep "^apps: " out
'

test_expect_success 'create makes the key the owner; an app made at the host is the admins' '
	ssh_berth bob create gamma >out &&
	ssh_berth bob sharing gamma >out &&
	test_grep "^owner bob$" out &&
	test_must_fail ssh_berth alice ps gamma 2>err &&
	test_grep "^error: no access to app .gamma.$" err &&
	test_must_fail ssh_berth alice create gamma 2>err &&
	test_grep "^error: no access to app .gamma.$" err &&
	test_must_fail ssh_berth bob create Bad_Name 2>err &&
	test ! -e "$BERTH_ROOT/access/Bad_Name" &&
	berth create hostapp >/dev/null &&
	test_must_fail ssh_berth bob ps hostapp 2>err &&
	test_grep "^error: no access to app .hostapp.$" err &&
	new_app_repo hostrepo hostapp &&
	add_web_app hostrepo v1 &&
	echo "web: python3 web.py" >hostrepo/Procfile &&
	commit_all hostrepo one &&
	test_must_fail as bob git -C hostrepo push deploy HEAD:main 2>err &&
	test_grep "no access to app .hostapp." err &&
	test ! -e "$BERTH_ROOT/access/hostapp" &&
	ssh_berth admin sharing hostapp >out &&
	test_grep "^owner \(admins only\)$" out
'

test_expect_success 'the dashboard shows a key only the apps it reaches' '
	dash() {
		local path="${!#}" &&
		curl -sS --max-time 20 -H "Host: berth.localhost" \
			"${@:1:$#-1}" "http://127.0.0.1:$HTTP_PORT$path"
	} &&
	ssh_berth bob dashboard >out &&
	link=$(grep login out) &&
	dash -c jar -o /dev/null "/login?${link#*/login?}" &&
	dash -b jar /api/apps >apps.json &&
	grep -q "\"name\":\"gamma\"" apps.json &&
	! grep -q "alpha" apps.json &&
	dash -b jar -o /dev/null -w "%{http_code}" /api/apps/alpha >code &&
	test "$(cat code)" = 403 &&
	dash -b jar -o /dev/null -w "%{http_code}" "/api/apps/alpha/config?key=X" >code &&
	test "$(cat code)" = 403 &&
	dash -b jar -o /dev/null -w "%{http_code}" /api/apps/alpha/logs >code &&
	test "$(cat code)" = 403 &&
	csrf=$(dash -b jar /api/session | sed -n "s/.*\"csrf\":\"\([0-9a-f]*\)\".*/\1/p") &&
	test -n "$csrf" &&
	pid=$(app_pid alpha) &&
	dash -b jar -X POST -H "X-CSRF-Token: $csrf" -o /dev/null -w "%{http_code}" \
		/api/apps/alpha/restart >code &&
	test "$(cat code)" = 403 &&
	test "$(app_pid alpha)" = "$pid" &&
	ssh_berth alice dashboard >out &&
	link=$(grep login out) &&
	dash -c jara -o /dev/null "/login?${link#*/login?}" &&
	dash -b jara /api/apps >apps.json &&
	grep -q "\"name\":\"alpha\"" apps.json
'

test_expect_success 'sharing add lets a collaborator in; only the owner shares' '
	ssh_berth alice sharing alpha add bob >out &&
	test_grep "bob may now reach alpha" out &&
	ssh_berth bob ps alpha >out &&
	test_grep "^web.1 " out &&
	as bob git clone -q "ssh://git@127.0.0.1:$SSH_PORT/alpha" copy &&
	test -f copy/Procfile &&
	as bob git -C alpha push -q deploy HEAD:main >out 2>&1 &&
	test_grep "Release 2 of alpha is live" out &&
	test_must_fail ssh_berth bob sharing alpha add bob 2>err &&
	test_grep "no access to app .alpha." err &&
	test_must_fail ssh_berth alice sharing alpha add nosuchkey 2>err &&
	test_grep "no key named .nosuchkey." err &&
	ssh_berth alice sharing alpha >out &&
	test_grep "^collaborator bob$" out
'

test_expect_success 'a collaborator acts on the app in the dashboard and reads its deploy output' '
	dash -b jar /api/apps >apps.json &&
	grep -q "\"name\":\"alpha\"" apps.json &&
	pid=$(app_pid alpha) &&
	dash -b jar -X POST -H "X-CSRF-Token: $csrf" /api/apps/alpha/restart >r.json &&
	test_grep "\"ok\":true" r.json &&
	test "$(app_pid alpha)" != "$pid" &&
	d=$(ssh_berth bob releases:output alpha --list | awk "\$2 == \"v2\" && \$4 != \"restart\" { print \$1; exit }") &&
	test -n "$d" &&
	dash -b jar "/api/apps/alpha/deploys/$d/output" >o.json &&
	test_grep "Release 2 of alpha is live" o.json &&
	ssh_berth bob releases:output alpha 2 >out &&
	test_grep "Release 2 of alpha is live" out &&
	ssh_berth alice releases:output alpha >out &&
	test_grep "Restarting release 2 of alpha" out
'

test_expect_success 'sharing rm takes the access away; admins always reach' '
	ssh_berth alice sharing alpha rm bob >out &&
	test_grep "bob may no longer reach alpha" out &&
	test_must_fail ssh_berth bob ps alpha 2>err &&
	test_grep "^error: no access to app .alpha.$" err &&
	test_must_fail ssh_berth bob releases:output alpha 2 >out 2>err &&
	test_grep "^error: no access to app .alpha.$" err &&
	! test -s out &&
	dash -b jar -o /dev/null -w "%{http_code}" "/api/apps/alpha/deploys/$d/output" >code &&
	test "$(cat code)" = 403 &&
	dash -b jar -o /dev/null -w "%{http_code}" -X POST -H "X-CSRF-Token: $csrf" \
		/api/apps/alpha/restart >code &&
	test "$(cat code)" = 403 &&
	ssh_berth admin ps alpha >out &&
	test_grep "^web.1 " out &&
	ssh_berth admin sharing alpha >out &&
	test_grep "^owner alice$" out
'

test_expect_success 'a removed app can be created anew by another key' '
	ssh_berth alice rm alpha --force >out &&
	new_app_repo beta alpha &&
	add_web_app beta v1 &&
	echo "web: python3 web.py" >beta/Procfile &&
	commit_all beta one &&
	as bob git -C beta push -q deploy HEAD:main >out 2>&1 &&
	test_grep "Release 1 of alpha is live" out &&
	ssh_berth bob sharing alpha >out &&
	test_grep "^owner bob$" out &&
	test_must_fail ssh_berth alice ps alpha 2>err &&
	test_grep "no access to app .alpha." err
'

test_done
