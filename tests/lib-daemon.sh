# lib-daemon.sh: start a berth engine for one test script.
#
#   . "$TEST_DIR/lib-daemon.sh"
#   start_berth            # exports BERTH_ROOT SSH_PORT HTTP_PORT BERTH_PID
#   berth apps             # the CLI against that engine
#   stop_berth             # also runs at exit
#
# Each engine gets its own state directory, free ports and its own block of
# app ports.  Settings for berth.yaml can be given in BERTH_YAML before
# start_berth (appended to the file).

berth() { "$BERTH" --root "$BERTH_ROOT" "$@"; }

write_berth_yaml() {
	local base=$(( 20000 + (RANDOM % 120) * 100 ))  # free_port uses 12000-19999
	local key line
	mkdir -p "$BERTH_ROOT"
	{
		# test defaults, unless BERTH_YAML sets the key itself
		for line in "port_min: $base" "port_max: $((base + 99))" \
			    "drain: 200ms" "watch: 300ms" "stop_timeout: 3s" "health_timeout: 15s"; do
			key=${line%%:*}
			printf '%s\n' "${BERTH_YAML:-}" | grep -q "^$key:" || echo "$line"
		done
		[ -n "${BERTH_YAML:-}" ] && printf '%s\n' "$BERTH_YAML"
	} >"$BERTH_ROOT/berth.yaml"
}

start_berth() {
	: "${BERTH_ROOT:=$TRASH/root}"
	export BERTH_ROOT
	[ -n "${SSH_PORT:-}" ] || SSH_PORT=$(free_port)
	[ -n "${HTTP_PORT:-}" ] || HTTP_PORT=$(free_port)
	# free_port only knows that nobody listens yet: it can name one port twice
	while [ "$HTTP_PORT" = "$SSH_PORT" ]; do HTTP_PORT=$(free_port); done
	export SSH_PORT HTTP_PORT
	[ -f "$BERTH_ROOT/berth.yaml" ] || write_berth_yaml
	: >"$TRASH/berth.out"
	"$BERTH" --root "$BERTH_ROOT" serve --ssh-listen "127.0.0.1:$SSH_PORT" \
		--http-listen "127.0.0.1:$HTTP_PORT" "$@" \
		>>"$TRASH/berth.out" 2>>"$TRASH/berth.log" &
	BERTH_PID=$!
	export BERTH_PID
	test_atexit "stop_berth"
	if ! retry_until 30 grep -q "^berth: ready" "$TRASH/berth.out"; then
		echo "berth did not become ready; its log:" >&2
		tail -n 30 "$TRASH/berth.log" >&2
		return 1
	fi
}

# Stop the engine (TERM, then KILL) and anything it left behind.
stop_berth() {
	[ -n "${BERTH_PID:-}" ] || return 0
	kill -TERM "$BERTH_PID" 2>/dev/null
	local i=0
	while kill -0 "$BERTH_PID" 2>/dev/null && [ $i -lt 150 ]; do
		sleep 0.1
		i=$((i + 1))
	done
	kill -KILL "$BERTH_PID" 2>/dev/null
	wait "$BERTH_PID" 2>/dev/null
	BERTH_PID=
	kill_leftovers
}

# kill -9 the engine, as a crash would.
crash_berth() {
	kill -KILL "$BERTH_PID" 2>/dev/null
	wait "$BERTH_PID" 2>/dev/null
	BERTH_PID=
}

# nginx_workers: the pids of our nginx's workers, sorted; the same list
# before and after means nginx was not reloaded.
nginx_workers() {
	local m
	m=$(cat "$BERTH_ROOT/nginx/logs/nginx.pid") && is_pid "$m" &&
	tr ' ' '\n' <"/proc/$m/task/$m/children" | sort | tr '\n' ' '
}

# App processes: those whose working directory is a release under run/,
# and (as root) those in the engine's cgroups, which see their release at /app.
berth_procs() { procs_under "$BERTH_ROOT/run/"; cgroup_procs; }

# cgroup_procs: every process in the cgroups listed in run/cgroups
cgroup_procs() {
	local d
	[ -f "$BERTH_ROOT/run/cgroups" ] || return 0
	while read -r d; do
		[ -d "$d" ] && find "$d" -mindepth 2 -name cgroup.procs -exec cat {} + 2>/dev/null
	done <"$BERTH_ROOT/run/cgroups" | sort -u
	return 0
}

# procs_under DIR: processes whose working directory is in DIR
# (one find, not a readlink per process: hosts under load run thousands)
procs_under() {
	find /proc -mindepth 2 -maxdepth 2 -name cwd \
		\( -lname "${1%/}" -o -lname "$1*" \) 2>/dev/null |
		sed -n 's,^/proc/\([0-9]*\)/cwd$,\1,p'
}

kill_leftovers() {
	local p
	for p in $(procs_under "$BERTH_ROOT/") $(cgroup_procs); do
		kill -KILL "$p" 2>/dev/null
	done
	if [ -f "$BERTH_ROOT/nginx/logs/nginx.pid" ]; then
		kill -KILL "$(cat "$BERTH_ROOT/nginx/logs/nginx.pid")" 2>/dev/null
	fi
	return 0
}

# With a web type, Procfile types other than web start at scale 0 (as on
# Heroku and Dokku); BUNDLE_APP_JSON=$WORKER_AT_1 make_web_bundle ... puts
# an app.json whose formation starts worker too.
WORKER_AT_1='{"formation": {"worker": {"quantity": 1}}}'

# make_web_bundle OUT VERSION [PROCFILE-LINES...]: a bundle of tests/apps/web.py
# (and BUNDLE_APP_JSON as its app.json when set)
make_web_bundle() {
	local out="$1" version="$2" dir
	shift 2
	dir=$(mktemp -d "$TRASH/bundle.XXXXXX")
	cp "$TOP/tests/apps/web.py" "$TOP/tests/apps/worker.py" "$dir/"
	echo "$version" >"$dir/VERSION"
	if [ $# -gt 0 ]; then
		printf '%s\n' "$@" >"$dir/Procfile"
	else
		echo "web: python3 web.py" >"$dir/Procfile"
	fi
	if [ -n "${BUNDLE_APP_JSON:-}" ]; then
		printf '%s\n' "$BUNDLE_APP_JSON" >"$dir/app.json"
	fi
	if [ -n "${BUNDLE_APP_YAML:-}" ]; then
		printf '%s\n' "$BUNDLE_APP_YAML" >"$dir/app.yaml"
	fi
	tar -C "$dir" -czf "$out" . && rm -rf "$dir"
}

# app_port NAME [PROCESS]: the port berth gave a process (default web.1)
app_port() {
	berth ps "$1" | awk -v p="${2:-web.1}" '$1 == p { print $3 }'
}

# app_pid NAME [PROCESS]
app_pid() {
	berth ps "$1" | awk -v p="${2:-web.1}" '$1 == p { print $2 }'
}

# get URL: body on stdout, fails on non-2xx
get() { curl -sSf --max-time 10 "$@"; }

# through_nginx NAME [PATH]: a request routed by host through berth's nginx
through_nginx() {
	curl -sSf --max-time 10 -H "Host: $1.localhost" "http://127.0.0.1:$HTTP_PORT${2:-/}"
}

# apps_line_matches REGEX: a line of "berth apps" matches (for retry_until)
apps_line_matches() { berth apps | grep -qE "$1"; }
# ps_line_matches NAME REGEX: a line of "berth ps NAME" matches
ps_line_matches() { berth ps "$1" | grep -qE "$2"; }

# proc_alive PID: the process exists and is not a zombie
proc_alive() {
	local st
	st=$(sed -n 's/^State:[[:space:]]*\([A-Z]\).*/\1/p' "/proc/$1/status" 2>/dev/null) || return 1
	[ -n "$st" ] && [ "$st" != Z ] && [ "$st" != X ]
}

# Load through nginx while the test changes things.  wrk cannot be stopped
# early from a script (its SIGINT may land on a worker thread while the main
# one sleeps out the duration), so it runs in short back-to-back rounds until
# wrk_stop.  A request is lost if it fails or gets no answer in 10 s (slower
# answers on a loaded host are not losses).
# wrk_start HOST: start the rounds (output appended to wrk.out)
wrk_start() {
	rm -f wrk.out wrk.done &&
	test_when_finished "touch $PWD/wrk.done" &&
	(
		while test ! -e wrk.done; do
			wrk -t2 -c8 -d3s --timeout 10s -H "Host: $1" \
				"http://127.0.0.1:$HTTP_PORT/" >>wrk.out 2>&1 || exit 1
		done
	) &
	wrk_pid=$!
}

# wrk_stop_and_check MIN APP: end the rounds; no error in any round and more
# than MIN requests in all (APP's router lines that were not 2xx are shown)
wrk_stop_and_check() {
	touch wrk.done &&
	wait $wrk_pid &&
	grep -E "requests in|errors|Non-2xx" wrk.out &&
	{
		! grep -qE "Socket errors|Non-2xx" wrk.out ||
		{ berth logs "$2" -n 5000 --source router | grep -v " status=2" | tail -20; false; }
	} &&
	reqs=$(sed -n "s/^ *\([0-9]*\) requests in.*/\1/p" wrk.out |
		awk "{ n += \$1 } END { print n + 0 }") &&
	say "$reqs requests in $(grep -c "requests in" wrk.out) wrk rounds" &&
	test "$reqs" -gt "$1"
}
