#!/usr/bin/env bash
#  pid_file_mode.sh BUILD_DIR
#
#  Issue 11, operations: the pid files are mode 0600 whatever the umask.
#  Under umask 000, `./cluster.sh start -n 2` writes pid/lpcontroller.pid
#  and pid/engine-<k>.pid; each must be mode 600, and so must the logs and
#  the connection files. A pid file left by an earlier run with mode 666
#  is replaced by one of mode 600. Only processes this test started are
#  signalled, by pid.
set -u
BUILD=${1:?usage: pid_file_mode.sh BUILD_DIR}
. "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
lp_test pid_file_mode
cli_profile pidmode "pidmode$$"
cd "$ROOT" || exit 1

umask 000
#  a stale pid file of another mode (no such process runs)
mkdir -p "$DIR/pid"
echo 999999999 > "$DIR/pid/lpcontroller.pid"
chmod 666 "$DIR/pid/lpcontroller.pid"
out=$(timeout 120 ./cluster.sh start -n 2 --profile "$NAME" --no-build 2>&1)
rc=$?
echo "$out"
[ "$rc" -eq 0 ] || { say "FAIL: ./cluster.sh start exited $rc"; show_logs; exit 1; }
CTRL_PID=$(tr -dc '0-9' < "$DIR/pid/lpcontroller.pid")
ENGINE_PIDS=$(pgrep -P "$CTRL_PID" | tr '\n' ' ')
[ "$CTRL_PID" != 999999999 ] || fail "the stale pid file was not replaced"
n=0
for f in "$DIR"/pid/*.pid "$DIR"/log/*.log "$DIR"/security/*.json; do
    [ -f "$f" ] || continue
    n=$((n + 1))
    mode=$(stat -c %a "$f")
    say "${f#$DIR/}: mode $mode"
    [ "$mode" = 600 ] || fail "${f#$DIR/} has mode $mode under umask 000, expected 600"
done
[ -f "$DIR/pid/engine-0.pid" ] && [ -f "$DIR/pid/engine-1.pid" ] || fail "no engine pid files"

timeout 60 ./cluster.sh stop --profile "$NAME" >/dev/null 2>&1 || fail "./cluster.sh stop failed"
wait_gone "$CTRL_PID" 15 || fail "controller still running after stop"
CTRL_PID=""
finish
