#!/usr/bin/env bash
#  log_rotation.sh BUILD_DIR
#
#  Issue 11, operations: logs rotate by size. `./cluster.sh start -n 1
#  --log-max 1 --log-keep 2` and an engine that writes about 24 MB to its
#  stderr (io.stderr, which the reply does not capture) in a loop: while it
#  runs and after, no engine-0.log* file exceeds 1 MiB, there are at most
#  keep + 1 = 3 of them, so the engine's logs never pass (keep + 1) x max;
#  the newest lines are in engine-0.log and rotation did happen
#  (engine-0.log.1 exists). The engine answers afterwards. Only processes
#  this test started are signalled, by pid.
set -u
BUILD=${1:?usage: log_rotation.sh BUILD_DIR}
. "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
lp_test log_rotation
cli_profile logrot "logrot$$"
cd "$ROOT" || exit 1
MAX=$((1024 * 1024))
KEEP=2

out=$(timeout 120 ./cluster.sh start -n 1 --profile "$NAME" --no-build --log-max 1 --log-keep $KEEP 2>&1)
rc=$?
echo "$out"
[ "$rc" -eq 0 ] || { say "FAIL: ./cluster.sh start --log-max 1 --log-keep 2 exited $rc"; show_logs; exit 1; }
CTRL_PID=$(tr -dc '0-9' < "$DIR/pid/lpcontroller.pid")
ENGINE_PIDS=$(pgrep -P "$CTRL_PID" | tr '\n' ' ')
FILE=$DIR/security/lp-client.json

#  The engine's logs: biggest file, file count and total, checked often
check_logs() {
    local f size total=0 count=0 biggest=0
    for f in "$DIR"/log/engine-0.log*; do
        [ -f "$f" ] || continue
        size=$(stat -c %s "$f" 2>/dev/null) || continue
        count=$((count + 1)); total=$((total + size))
        [ "$size" -gt "$biggest" ] && biggest=$size
    done
    if [ "$biggest" -gt "$MAX" ]; then
        fail "an engine-0.log file holds $biggest bytes, more than --log-max 1 ($MAX)"; return 1
    fi
    if [ "$count" -gt $((KEEP + 1)) ]; then
        fail "$count engine-0.log files, more than keep + 1 = $((KEEP + 1))"; return 1
    fi
    if [ "$total" -gt $(((KEEP + 1) * MAX)) ]; then
        fail "engine-0.log* hold $total bytes, more than (keep + 1) x max"; return 1
    fi
    PEAK=$((total > PEAK ? total : PEAK))
    return 0
}
PEAK=0

#  24 MB to stderr: 240,000 lines of 100 bytes, numbered
CODE='local pad = string.rep("x", 90) for i = 1, 240000 do io.stderr:write(string.format("%08d ", i), pad, "\n") end return "done"'
timeout 180 "$BUILD/lpcall" "$FILE" -t 170000 execute "$CODE" > "$LP_HOME/call.out" 2>&1 &
CALL=$!
samples=0
while alive "$CALL"; do
    check_logs || break
    samples=$((samples + 1))
    sleep 0.05          # sampling interval, not synchronisation
done
wait "$CALL"
rc=$?
cat "$LP_HOME/call.out"
[ "$rc" -eq 0 ] || fail "the chatty request failed (lpcall exit $rc)"
grep -q 'done' "$LP_HOME/call.out" || fail "the chatty request did not return \"done\""
#  The last line reaches the log (the log thread copies the pipe at once)
wait_for 20 grep -q '^00240000 ' "$DIR/log/engine-0.log" \
    || fail "the engine's last line (00240000) is not in engine-0.log"
check_logs
say "$samples samples while it ran, largest total $PEAK bytes; files: $(cd "$DIR/log" && ls -l engine-0.log* | awk '{print $NF "=" $5}' | tr '\n' ' ')"
[ -f "$DIR/log/engine-0.log.1" ] || fail "no engine-0.log.1: the log was not rotated"
[ -f "$DIR/log/engine-0.log.$((KEEP + 1))" ] && fail "engine-0.log.$((KEEP + 1)) exists: more than --log-keep $KEEP kept"
mode=$(stat -c %a "$DIR/log/engine-0.log")
[ "$mode" = 600 ] || fail "engine-0.log has mode $mode, expected 600"

got=$(timeout 60 "$BUILD/lpcall" "$FILE" execute 'return 6 * 7' 2>&1) || fail "no answer after the flood: $got"
echo "$got" | grep -q '42' || fail "after the flood: $got"

timeout 60 ./cluster.sh stop --profile "$NAME" >/dev/null 2>&1 || fail "./cluster.sh stop failed"
wait_gone "$CTRL_PID" 15 || fail "controller still running after stop"
CTRL_PID=""
finish
