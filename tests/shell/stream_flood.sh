#!/usr/bin/env bash
#  stream_flood.sh BUILD_DIR
#
#  Issue 11, operations: a request that prints 2,000,000 lines in a loop
#  (20 MB) must not make the controller hold its output as millions of
#  queued stream messages (every queue on the way is unbounded: a full one
#  blocks, it never drops). Each print was one iopub message: the
#  controller's peak RSS reached 1.18 GB and the client's 1.35 GB for this
#  loop. Past 100 messages in 20 ms the engine batches prints into 64 KB
#  messages. Checked: the request completes, its reply holds all 2,000,000
#  lines, and the controller's peak RSS (VmHWM) stays under 256 MB. Starts
#  its own cluster (one engine) and stops it by pid.
set -u
BUILD=${1:?usage: stream_flood.sh BUILD_DIR}
. "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
lp_test stream_flood
lp_tmpdir DIR flood

for b in lpcontroller lpengine lpsh; do
    [ -x "$BUILD/$b" ] || { say "FAIL: $BUILD/$b not built"; exit 1; }
done
start_local_cluster "$DIR" 1 > /dev/null
FILE=$DIR/security/lp-client.json
T0=$SECONDS
timeout 200 "$BUILD/lpsh" --file "$FILE" --wait 1 -e '%pxconfig --stream' \
    -e '%px for i = 1, 2000000 do print(string.format("%09d", i)) end' > "$DIR/out" 2>&1
rc=$?
[ "$rc" -eq 0 ] || fail "lpsh exited $rc"
lines=$(grep -c '^\[stdout:0\] [0-9]*$' "$DIR/out")
last=$(tail -n 1 "$DIR/out")
[ "$lines" = 2000000 ] || fail "$lines lines shown, expected 2000000"
[ "$last" = "[stdout:0] 002000000" ] || fail "last line shown: $last"
hwm=$(awk '/^VmHWM:/ { print $2 }' "/proc/$CTRL_PID/status")
say "2,000,000 lines shown in $((SECONDS - T0)) s; controller peak RSS ${hwm} kB"
[ "${hwm:-999999999}" -lt 262144 ] || fail "controller peak RSS ${hwm} kB, more than 256 MB"

stop_local_cluster
finish
