#!/bin/sh
# ss-worker.sh: fails fast while $SS_OUT/fail holds a count above 0 (one
# failure per start, counted down), else runs ss-worker.py.  In sh, so a
# failure is quick even on a loaded machine, and gen-G.started (when the
# worker started) is close to the superdaemon's fork.
date +%s.%N >"$SS_OUT/gen-$SERVER_STARTER_GENERATION.started"
if [ -s "$SS_OUT/fail" ]; then
	n=$(cat "$SS_OUT/fail")
	if [ "$n" -gt 0 ]; then
		echo $((n - 1)) >"$SS_OUT/fail"
		exit 1
	fi
fi
exec /usr/bin/python3 "$(dirname "$0")/ss-worker.py"
