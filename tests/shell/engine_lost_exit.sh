#!/usr/bin/env bash
#  engine_lost_exit.sh BUILD_DIR
#
#  Issue 8 (contract 13), engine part: `lpengine --lost-exit MSEC` exits by
#  itself, with status 1, once it has heard no controller for longer than
#  MSEC; an engine without the option keeps trying to register again.
#
#  A controller with no local engines (-n 0) runs in a temporary profile;
#  two standalone engines register with it, one with --lost-exit 2000.
#  The controller is killed with SIGKILL. The engine with --lost-exit must
#  be gone within 20 s (it notices the lost controller after 2 x 3
#  heartbeat periods, 6 s), the other must still run; it is then stopped
#  with SIGTERM. Only processes this test started are signalled, by pid.
set -u
BUILD=${1:?usage: engine_lost_exit.sh BUILD_DIR}
. "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
lp_test engine_lost_exit
need_built lpcontroller lpengine
lp_tmpdir TOP lostexit

registered() { grep -q "registered as engine" "$1" 2>/dev/null; }

start_local_cluster "$TOP" 0 >/dev/null
"$BUILD/lpengine" --file "$TOP/security/lp-engine.json" --lost-exit 2000 >"$TOP/e1.log" 2>&1 &
E1=$!
"$BUILD/lpengine" --file "$TOP/security/lp-engine.json" >"$TOP/e2.log" 2>&1 &
E2=$!
lp_track "$E1" "$E2"
if ! wait_for 30 registered "$TOP/e1.log" || ! wait_for 30 registered "$TOP/e2.log"; then
    tail -n 5 "$TOP/e1.log" "$TOP/e2.log"
    fail "the engines did not register within 30 s"
    exit 1
fi
say "two engines registered (pids $E1 with --lost-exit 2000, $E2 without)"

kill -9 "$CTRL_PID"
T0=$SECONDS
if wait_gone "$E1" 20; then
    wait "$E1"
    RC=$?
    say "engine with --lost-exit exited with status $RC, $((SECONDS - T0)) s after the controller was killed"
    [ "$RC" = 1 ] || fail "engine with --lost-exit exited with status $RC, expected 1"
    grep -q "lost-exit" "$TOP/e1.log" || fail "engine log does not say why it exited"
else
    tail -n 5 "$TOP/e1.log"
    fail "engine with --lost-exit 2000 still runs 20 s after the controller was killed"
fi
if alive "$E2"; then
    say "engine without --lost-exit still runs (keeps trying to register)"
else
    fail "engine without --lost-exit exited"
fi
kill -TERM "$E2" 2>/dev/null
wait_gone "$E2" 15 || fail "engine $E2 ignored SIGTERM"

finish
