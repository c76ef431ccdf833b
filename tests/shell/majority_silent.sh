#!/usr/bin/env bash
#  majority_silent.sh BUILD_DIR
#
#  Liveness when most engines fall silent at once (the host of most remote
#  engines lost, say). The controller judges an engine against the pings
#  that half of the engines answered, so that a controller starved of CPU
#  declares no one dead; but with 3 of 4 engines silent, the median engine
#  is silent too, and that rule alone never named them: their requests
#  waited forever. An engine silent LP_HEARTBEAT_SILENT_FACTOR (10) times
#  the misses' time is dead anyway. Here: --heartbeat 200 --max-misses 3,
#  3 of 4 engines stopped (SIGSTOP, by pid): the controller declares those 3
#  dead (log), their pending request ends with EngineError, and the fourth
#  keeps serving. Only processes this test started are signalled, by pid.
set -u
BUILD=${1:?usage: majority_silent.sh BUILD_DIR}
. "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
lp_test majority_silent
need_built lpcontroller lpengine
lp_tmpdir DIR msilent
STOPPED=""
test_cleanup() {
    local p
    for p in $STOPPED; do kill -CONT "$p" 2>/dev/null; done
}

start_local_cluster "$DIR/p" 4 --heartbeat 200 --max-misses 3 >/dev/null
set -- $ENGINE_PIDS
[ $# -eq 4 ] || { fail "expected 4 engine pids, have '$ENGINE_PIDS'"; finish; }
LOG=$DIR/p/log/lpcontroller.log
LEFT=$4
STOPPED="$1 $2 $3"
for p in $STOPPED; do kill -STOP "$p"; done
say "stopped engines $STOPPED (3 of 4), left $LEFT running"

dead_count() { grep -c "died: no heartbeat" "$LOG" 2>/dev/null; }
three_dead() { [ "$(dead_count)" -ge 3 ]; }
t0=$SECONDS
if wait_for 40 three_dead; then
    say "3 silent engines declared dead after $((SECONDS - t0)) s"
else
    fail "only $(dead_count) of the 3 silent engines declared dead within 40 s"
fi
grep -q "pid $LEFT .*died" "$LOG" && fail "the running engine (pid $LEFT) was declared dead"

#  The running engine still serves: a load-balanced map goes to it alone
out=$(timeout 60 "$BUILD/lpsh" --file "$DIR/p/security/lp-client.json" --timeout 10000 \
      -e 'local t = rc:balanced ():map (function (x) return x * 2 end, {1, 2, 3}) print ("third " .. t[3])' 2>&1)
echo "$out" | grep -q "^third 6" || fail "the running engine does not serve: $out"

for p in $STOPPED; do kill -CONT "$p" 2>/dev/null; done
STOPPED=""
stop_local_cluster || fail "stop"
finish
