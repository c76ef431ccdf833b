#!/usr/bin/env bash
#  controller_restore.sh BUILD_DIR
#
#  Issue 11, "Controller restart", the first "Done means" test:
#  `./cluster.sh start -n 4`, a client (tests/tools/lprestore.c) pushes
#  x = 42 to the 4 engines and submits 1,000 tasks of lp.sleep(0.01); once
#  100 results are in, the controller is killed with SIGKILL and
#  `./cluster.sh start --restore` takes over. Checked here:
#  - a plain `./cluster.sh start` on the profile of the dead controller
#    refuses (exit 1) and names --restore;
#  - start --restore returns within 5 s with the same 4 engine processes
#    (adopted, not started again) registered;
#  - the client (which stayed up) gets every one of its 1,000 results
#    exactly once, a value or a clear error, none hangs; the last 100
#    (sent with retries 1) are resubmitted and end with their value; the
#    same engine ids are back with x = 42; no task ran twice (lprestore
#    checks these);
#  - `./cluster.sh stop` stops the restored controller and the adopted
#    engines (by pid), leaving no pid or connection file.
#  Every process is one this test started, stopped by pid.
set -u
BUILD=${1:?usage: controller_restore.sh BUILD_DIR}
. "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
lp_test controller_restore
need_built lpcontroller lpengine lprestore
cli_profile restore "restoretest$$"

ENGINES=4
TASKS=1000
cli_start -n $ENGINES
OLD_ENGINES=$ENGINE_PIDS
lp_track $OLD_ENGINES
set -- $OLD_ENGINES
[ $# -eq $ENGINES ] || { fail "expected $ENGINES engine children, got '$OLD_ENGINES'"; finish; }

OUT=$DIR/lprestore.out
"$BUILD/lprestore" "$DIR/security/lp-client.json" $ENGINES $TASKS > "$OUT" 2>&1 &
CLIENT=$!
lp_track $CLIENT
if ! wait_for 60 grep -q '^progress' "$OUT"; then
    fail "the client did not get its first 100 results"; cat "$OUT"; finish
fi
OLD_CTRL=$CTRL_PID
kill -9 "$OLD_CTRL"
wait_gone "$OLD_CTRL" 10 || fail "controller $OLD_CTRL survives SIGKILL"
CTRL_PID=""
say "controller $OLD_CTRL killed after $(grep -c . "$OUT") lines of client output"

#  Without --restore: refused, and --restore named
if out=$(timeout 60 "$CLI" start -n $ENGINES --profile "$NAME" --no-build 2>&1); then
    fail "start without --restore on a dead controller's profile succeeded: $out"
    read_cluster_pids "$DIR" && lp_track $CTRL_PID $ENGINE_PIDS
    finish
fi
case $out in
    *--restore*) say "plain start refused: ${out%%$'\n'*}" ;;
    *) fail "plain start did not name --restore: $out" ;;
esac

T0=$(date +%s%N)
cli_start --restore
T1=$(date +%s%N)
MS=$(( (T1 - T0) / 1000000 ))
say "start --restore: the $ENGINES engines back in $MS ms"
[ "$MS" -le 5000 ] || fail "start --restore took $MS ms (> 5000) to get the engines back"
[ -z "$ENGINE_PIDS" ] || fail "start --restore started new engines: $ENGINE_PIDS"
for p in $OLD_ENGINES; do
    alive "$p" || fail "engine $p of the dead controller is gone"
done

if wait_gone "$CLIENT" 150; then
    wait "$CLIENT"; rc=$?
else
    fail "the client still runs 150 s after the restore"; rc=1
fi
cat "$OUT"
[ "$rc" -eq 0 ] || fail "the client failed (exit $rc)"
grep -q '^OK$' "$OUT" || fail "the client did not say OK"

#  stop: the restored controller and the adopted engines
out=$(timeout 60 "$CLI" stop --profile "$NAME" 2>&1) || fail "stop failed: $out"
say "$out"
for p in $OLD_ENGINES; do
    wait_gone "$p" 5 || fail "adopted engine $p still runs after stop"
done
wait_gone "$CTRL_PID" 5 || fail "restored controller $CTRL_PID still runs after stop"
for f in "$DIR"/pid/* "$DIR"/security/lp-client.json "$DIR"/security/lp-engine.json; do
    [ -e "$f" ] && fail "stale file $f after stop"
done
CTRL_PID=""
ENGINE_PIDS=""
finish
