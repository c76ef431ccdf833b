#!/usr/bin/env bash
#  log_unwritable.sh BUILD_DIR
#
#  Issue 11, operations: a log folder that cannot be written makes
#  `./cluster.sh start` fail at once, naming the path and the reason, and
#  no daemon keeps the caller's stdout open (`out=$(./cluster.sh start)`
#  once hung for 10 minutes).
#
#  Tests run as root, for whom mode bits do not stop writes: the profile's
#  log/ folder is a read-only tmpfs, mounted in a private mount namespace
#  (unshare -m) around the start, so nothing is left mounted whatever
#  happens. The test first proves that root cannot write there; where
#  unshare or mount is refused it falls back to a log/ that is a regular
#  file (also unwritable for root) and says so.
#
#  Start's output is read through a pipe by a reader whose end is watched:
#  the reader must see end-of-file within 20 s of start's exit, or a
#  process still holds the caller's stdout. The same is checked for a
#  start that succeeds. Only processes this test started are signalled,
#  by pid.
set -u
BUILD=${1:?usage: log_unwritable.sh BUILD_DIR}
. "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
lp_test log_unwritable
cli_profile ro "ro$$"
cd "$ROOT" || exit 1

#  run_start OUT PREFIX_COMMAND...: runs PREFIX_COMMAND... ./cluster.sh
#  start -n 1 with stdout and stderr on a pipe to a reader writing OUT;
#  sets START_RC, START_SECS (until start exited) and EOF_SECS (until the
#  reader saw end-of-file; 999 when it did not within 20 s of that).
run_start() {
    local out=$1 fifo=$LP_HOME/fifo t0 reader starter
    shift
    rm -f "$fifo"; mkfifo "$fifo"
    cat "$fifo" > "$out" &
    reader=$!
    t0=$SECONDS
    "$@" timeout 120 ./cluster.sh start -n 1 --profile "$NAME" --no-build > "$fifo" 2>&1 &
    starter=$!
    wait "$starter"
    START_RC=$?
    START_SECS=$((SECONDS - t0))
    if wait_gone "$reader" 20; then
        EOF_SECS=$((SECONDS - t0))
    else
        EOF_SECS=999
        kill "$reader" 2>/dev/null
    fi
    wait "$reader" 2>/dev/null
}

mkdir -p "$DIR/log"
METHOD=""
if unshare -m --propagation private true 2>/dev/null \
&& unshare -m --propagation private sh -c "mount -t tmpfs -o ro,size=1m lpro '$DIR/log' && ! touch '$DIR/log/probe' 2>/dev/null"; then
    METHOD="read-only tmpfs in a private mount namespace"
    WRAP=(unshare -m --propagation private sh -c "mount -t tmpfs -o ro,size=1m lpro '$DIR/log' && exec \"\$@\"" sh)
    REASON='Read-only file system'
else
    rmdir "$DIR/log"
    echo "not a folder" > "$DIR/log"
    touch "$DIR/log/probe" 2>/dev/null && { say "FAIL: root can write under a regular file?"; exit 1; }
    METHOD="log/ is a regular file (unshare -m or mount refused here)"
    WRAP=(env)
    REASON='Not a directory'
fi
say "unwritable log folder: $METHOD"

run_start "$LP_HOME/out1" "${WRAP[@]}"
OUT=$(cat "$LP_HOME/out1")
echo "$OUT"
say "start exited $START_RC after ${START_SECS} s; its output ended after ${EOF_SECS} s"
[ "$START_RC" -ne 0 ] || fail "start succeeded with an unwritable log folder"
[ "$START_SECS" -le 15 ] || fail "start took ${START_SECS} s to fail (expected at once)"
[ "$EOF_SECS" -le 20 ] || fail "a process kept start's stdout open after start exited"
echo "$OUT" | grep -qF "$DIR/log/lpcontroller.log" || fail "start's message does not name $DIR/log/lpcontroller.log"
echo "$OUT" | grep -qF "$REASON" || fail "start's message does not give the reason ($REASON)"
pid=$( { tr -dc "0-9" < "$DIR/pid/lpcontroller.pid"; } 2>/dev/null)
if [ -n "$pid" ] && alive "$pid"; then
    CTRL_PID=$pid
    fail "a controller (pid $pid) runs after the failed start"
fi
for p in $(strays "$LP_HOME"); do
    fail "process $p ($(tr '\0' ' ' < "/proc/$p/cmdline" 2>/dev/null)) left running"
done

#  A start that works: its output ends when start returns
[ -f "$DIR/log" ] && rm -f "$DIR/log"
run_start "$LP_HOME/out2" env
cat "$LP_HOME/out2"
CTRL_PID=$(tr -dc '0-9' < "$DIR/pid/lpcontroller.pid" 2>/dev/null)
ENGINE_PIDS=$(pgrep -P "$CTRL_PID" 2>/dev/null | tr '\n' ' ')
say "start exited $START_RC after ${START_SECS} s; its output ended after ${EOF_SECS} s"
[ "$START_RC" -eq 0 ] || fail "start with a writable log folder exited $START_RC"
[ "$EOF_SECS" -le 20 ] || fail "the running cluster keeps start's stdout open"
if alive "$CTRL_PID"; then
    for fd in 0 1 2; do
        target=$(readlink "/proc/$CTRL_PID/fd/$fd")
        case $target in
            pipe:*|/dev/pts/*|/dev/tty*) fail "controller's fd $fd is $target (the caller's)";;
        esac
    done
fi
timeout 60 ./cluster.sh stop --profile "$NAME" >/dev/null 2>&1 || fail "./cluster.sh stop failed"
wait_gone "$CTRL_PID" 15 || fail "controller still running after stop"
CTRL_PID=""
finish
