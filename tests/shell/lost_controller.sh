#!/usr/bin/env bash
#  lost_controller.sh BUILD_DIR
#
#  Issue 8, observation 5 (client part): when the controller dies, pending
#  requests end with ControllerLost and nobody waits forever.
#
#  1. C API (tests/tools/lplost.c): during a pending load-balanced map the
#     controller is killed with SIGKILL (pid from the profile's pid file);
#     lp_result_wait must return LP_ELOST within lost_after (3 s) plus
#     slack, every slot with ename ControllerLost naming the controller,
#     and a new request must fail at once.
#  2. lpsh through a pipe: a blocking `lb:map (...)` of tasks that sleep
#     60 s; once the engines are busy the controller is killed with
#     SIGKILL; lpsh must go on within 3 s plus slack with an error that
#     names the lost controller ("ControllerLost: controller at tcp://...
#     lost"), run the next line, and exit 1; then `./cluster.sh stop`
#     must end the engines the controller left (issue 8, "Done means").
#
#  Each part starts its own cluster (2 engines) in a temporary profile;
#  the engines, left behind by the killed controller, are stopped here by
#  the pids read before the kill. Only processes this test started are
#  signalled, always by pid.
set -u
BUILD=${1:?usage: lost_controller.sh BUILD_DIR}
. "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
lp_test lost_controller
need_built lpcontroller lpengine lpsh lplost lpstatus
lp_tmpdir TOP lost
LPSH_PID=""

#  stop_all: this part's lpsh, controller and engines, by pid (SIGKILL:
#  the controller may be dead already, its engines then run on)
stop_all() {
    kill_pids $LPSH_PID $CTRL_PID $ENGINE_PIDS
    LPSH_PID=""; CTRL_PID=""; ENGINE_PIDS=""
}
test_cleanup() { stop_all; }

# --- 1. C API -------------------------------------------------------------
D1=$TOP/c
start_local_cluster "$D1" 2 >/dev/null
say "C API: controller $CTRL_PID, engines $ENGINE_PIDS"
timeout 120 "$BUILD/lplost" "$D1/security/lp-client.json" "$D1/pid/lpcontroller.pid"
rc=$?
[ "$rc" -eq 0 ] || fail "lplost exited $rc (see above)"
stop_all

# --- 2. lpsh ----------------------------------------------------------------
D2=$TOP/profile_lpsh         # a profile of LP_HOME=$TOP, for cluster.sh stop
start_local_cluster "$D2" 2 >/dev/null
say "lpsh: controller $CTRL_PID, engines $ENGINE_PIDS"
cat > "$TOP/map.lpsh" <<'EOF'
lb = rc:balanced ()
print ("sending the map")
lb:map (function (x) lp.sleep (60) return x end, {1, 2, 3, 4})
print ("after the map")
EOF
"$BUILD/lpsh" --file "$D2/security/lp-client.json" --wait 2 < "$TOP/map.lpsh" > "$TOP/transcript" 2>&1 &
LPSH_PID=$!

# Wait (on the event) until both engines run tasks of the map
deadline=$((SECONDS + 60))
busy=0
while [ "$SECONDS" -lt "$deadline" ]; do
    busy=$("$BUILD/lpstatus" --file "$D2/security/lp-client.json" 2>/dev/null | grep -c busy)
    [ "$busy" -ge 2 ] && break
    alive "$LPSH_PID" || break
    sleep 0.1       # poll interval, not synchronisation
done
[ "$busy" -ge 2 ] || { fail "the map never made both engines busy"; cat "$TOP/transcript"; exit 1; }

kill -9 "$CTRL_PID"
killed=$(date +%s%N)
if wait_gone "$LPSH_PID" 15; then
    took=$(( ($(date +%s%N) - killed) / 1000000 ))
    wait "$LPSH_PID"; rc=$?
    say "lpsh ended ${took} ms after the controller was killed (status $rc)"
    [ "$took" -le 7000 ] || fail "lpsh took $took ms to notice the lost controller (lost_after 3000 ms)"
    [ "$rc" -eq 1 ] || fail "lpsh exited $rc, expected 1 (the map failed)"
else
    fail "lpsh still waits 15 s after the controller was killed (blocking map hangs)"
fi
cat "$TOP/transcript"
grep -q "ControllerLost: controller at tcp://[^ ]* lost" "$TOP/transcript" \
    || fail "lpsh did not report the lost controller by name"
grep -q "^after the map$" "$TOP/transcript" \
    || fail "lpsh did not go on with the next line after the failed map"
# The engines the killed controller left behind: `cluster.sh stop` ends
# them (from the profile's pid files) and leaves no process.
LP_HOME=$TOP LP_BUILD_DIR=$BUILD "$LP_TEST_ROOT/cluster.sh" stop --profile lpsh \
    || fail "cluster.sh stop failed after the controller was killed"
for p in $ENGINE_PIDS; do
    wait_gone "$p" 10 || fail "engine pid $p still runs after cluster.sh stop"
done
stop_all
finish
