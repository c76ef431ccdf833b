#!/usr/bin/env bash
#  engine_wait.sh BUILD_DIR
#
#  Issue 11: engines wait for a lost controller for a configurable time.
#  `./cluster.sh start -n 1` gives its engine --lost-exit 60000 (60 s, long
#  enough to start the controller again); `--engine-wait 3` gives 3000.
#  With --engine-wait 3, after kill -9 of the controller the orphaned
#  engine exits by itself (it notices the loss after max-misses heartbeats,
#  then waits 3 s): within 20 s, and its last words are in its log (it
#  writes the log itself once the controller's end of its output pipe is
#  gone, lpengine --pipe-log). `./cluster.sh engines --engine-wait S`
#  passes the same to remote engines (checked on its command line), and
#  engine_wait_sec in the profile's lpcontroller_config.lua sets it too. Only
#  processes this test started are signalled, by pid.
set -u
BUILD=${1:?usage: engine_wait.sh BUILD_DIR}
. "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
lp_test engine_wait
cli_profile ewait "ewait$$"
cd "$ROOT" || exit 1

start() {
    out=$(timeout 120 ./cluster.sh start -n 1 --profile "$NAME" --no-build "$@" 2>&1)
    rc=$?
    echo "$out"
    [ "$rc" -eq 0 ] || { say "FAIL: ./cluster.sh start $* exited $rc"; show_logs; exit 1; }
    CTRL_PID=$(tr -dc '0-9' < "$DIR/pid/lpcontroller.pid")
    ENGINE_PIDS=$(pgrep -P "$CTRL_PID" | tr '\n' ' ')
}
cmdline() { tr '\0' ' ' < "/proc/$1/cmdline" 2>/dev/null; }

#  1. the default: 60 s
start
E=$(echo $ENGINE_PIDS)
cmdline "$E" | grep -q -- '--lost-exit 60000 ' || fail "default engine command line: $(cmdline "$E")"
timeout 60 ./cluster.sh stop --profile "$NAME" >/dev/null 2>&1 || fail "./cluster.sh stop failed"
wait_gone "$CTRL_PID" 15 || fail "controller still running after stop"

#  1b. from the profile's config file (options win over it)
printf 'engine_wait_sec = 4\nlog_keep = 1\n' > "$DIR/lpcontroller_config.lua"
start
E=$(echo $ENGINE_PIDS)
cmdline "$E" | grep -q -- '--lost-exit 4000 ' || fail "engine_wait_sec = 4 in the config file: $(cmdline "$E")"
timeout 60 ./cluster.sh stop --profile "$NAME" >/dev/null 2>&1 || fail "./cluster.sh stop failed"
wait_gone "$CTRL_PID" 15 || fail "controller still running after stop"

#  2. --engine-wait 3, then the controller is killed
start --engine-wait 3
E=$(echo $ENGINE_PIDS)
cmdline "$E" | grep -q -- '--lost-exit 3000 ' || fail "--engine-wait 3: engine command line: $(cmdline "$E")"
kill -9 "$CTRL_PID"
wait_gone "$CTRL_PID" 15 || fail "controller survived SIGKILL"
T0=$SECONDS
if wait_gone "$E" 20; then
    say "orphaned engine exited by itself $((SECONDS - T0)) s after the controller was killed"
else
    fail "engine with --engine-wait 3 still runs 20 s after its controller was killed"
fi
#  Its output went through the killed controller: it then writes its log
#  itself (--pipe-log), so its last words are there
grep -q 'writing .*engine-0.log directly' "$DIR/log/engine-0.log" 2>/dev/null \
    || fail "the orphaned engine did not take over its log"
grep -q 'lost-exit 3000' "$DIR/log/engine-0.log" 2>/dev/null \
    || fail "the orphaned engine's last words (--lost-exit) are not in its log"
tail -n 3 "$DIR/log/engine-0.log"
CTRL_PID=""
./cluster.sh stop --profile "$NAME" >/dev/null 2>&1

#  3. ./cluster.sh engines passes it on (stopped at once by --stop)
timeout 120 ./cluster.sh start -n 0 --profile "$NAME" --no-build >/dev/null 2>&1 || fail "start -n 0 failed"
CTRL_PID=$(tr -dc '0-9' < "$DIR/pid/lpcontroller.pid" 2>/dev/null)
out=$(timeout 60 ./cluster.sh engines -n 1 --profile "$NAME" --no-build --engine-wait 7 2>&1) || fail "engines: $out"
SUP=$(echo "$out" | sed -n 's/.*supervisor pid \([0-9]*\).*/\1/p')
lp_track "$SUP" $(pgrep -P "$SUP" 2>/dev/null)
cmdline "$SUP" | grep -q -- '--lost-exit 7000' || fail "cluster.sh engines --engine-wait 7: $(cmdline "$SUP")"
timeout 60 ./cluster.sh stop --profile "$NAME" >/dev/null 2>&1 || fail "./cluster.sh stop failed"
wait_gone "$CTRL_PID" 15 || fail "controller still running after stop"
wait_gone "$SUP" 15 || fail "engines of cluster.sh engines still running after stop"
CTRL_PID=""
finish
