#!/usr/bin/env bash
#  run_with_cluster.sh BINDIR PROGRAM [ARGS...]
#
#  Starts a controller with 4 local engines in a temporary profile, runs
#  PROGRAM <profile>/security/lp-client.json [ARGS...] with LP_PROFILE_DIR
#  and LP_BINDIR in its environment, then stops the cluster and checks that
#  nothing it started is left running. Exits with PROGRAM's status, or 1
#  when the cluster could not be started or stopped cleanly.
#
#  Only processes this script started are signalled, always by pid.

set -u

BINDIR=${1:?usage: run_with_cluster.sh BINDIR PROGRAM [ARGS...]}
PROGRAM=${2:?usage: run_with_cluster.sh BINDIR PROGRAM [ARGS...]}
shift 2
NENGINES=${LP_TEST_ENGINES:-4}

DIR=$(mktemp -d "${TMPDIR:-/tmp}/lptest.XXXXXX") || { echo "FAIL: mktemp -d"; exit 1; }
CTRL_PID=""
ENGINE_PIDS=""
STOPPED=0

log() { echo "run_with_cluster: $*"; }
say() { log "$@"; }
# alive, wait_gone, strays, show_logs
. "$(dirname "${BASH_SOURCE[0]}")/shell/lib/cluster.sh"

stop_cluster() {    # returns 0 when everything stopped cleanly
    local rc=0
    [ "$STOPPED" = 1 ] && return 0
    STOPPED=1
    if [ -z "$CTRL_PID" ] && [ -f "$DIR/pid/lpcontroller.pid" ]; then
        CTRL_PID=$(tr -dc '0-9' < "$DIR/pid/lpcontroller.pid")
    fi
    if [ -n "$CTRL_PID" ] && alive "$CTRL_PID"; then
        [ -z "$ENGINE_PIDS" ] && ENGINE_PIDS=$(pgrep -P "$CTRL_PID" | tr '\n' ' ')
        kill -TERM "$CTRL_PID" 2>/dev/null
        if ! wait_gone "$CTRL_PID" 15; then
            log "FAIL: controller pid $CTRL_PID still running 15 s after SIGTERM; sending SIGKILL"
            kill -9 "$CTRL_PID" 2>/dev/null
            wait_gone "$CTRL_PID" 5
            rc=1
        fi
    elif [ -n "$CTRL_PID" ]; then
        log "FAIL: controller pid $CTRL_PID was not running any more at the end of the test"
        rc=1
    fi
    local p deadline=$((SECONDS + 10))
    for p in $ENGINE_PIDS; do
        if ! wait_gone "$p" $((deadline > SECONDS ? deadline - SECONDS : 0)); then
            log "FAIL: engine pid $p still running after the controller stopped; sending SIGKILL"
            kill -9 "$p" 2>/dev/null
            rc=1
        fi
    done
    if [ -e "$DIR/pid/lpcontroller.pid" ]; then
        log "FAIL: controller left its pid file $DIR/pid/lpcontroller.pid behind"
        rc=1
    fi
    for f in lp-client.json lp-engine.json; do
        if [ -e "$DIR/security/$f" ]; then
            log "FAIL: controller left its connection file security/$f behind"
            rc=1
        fi
    done
    return $rc
}

cleanup() {
    stop_cluster >/dev/null 2>&1
    local p
    for p in $(strays "$DIR"); do
        if alive "$p"; then
            log "FAIL: pid $p ($(tr '\0' ' ' < /proc/$p/cmdline 2>/dev/null)) left running; killing it"
            kill -9 "$p" 2>/dev/null
        fi
    done
    rm -rf "$DIR"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

if [ ! -x "$BINDIR/lpcontroller" ]; then
    log "FAIL: $BINDIR/lpcontroller not found"
    exit 1
fi

# LP_TEST_CONTROLLER_ARGS: extra lpcontroller options (e.g. --scheduler lru).
# shellcheck disable=SC2086
START_OUT=$("$BINDIR/lpcontroller" --profile-dir "$DIR" -n "$NENGINES" --daemon ${LP_TEST_CONTROLLER_ARGS:-} 2>&1)
START_RC=$?
echo "$START_OUT"
if [ "$START_RC" -ne 0 ]; then
    log "FAIL: lpcontroller --daemon exited with status $START_RC"
    show_logs 30
    for p in $(strays "$DIR"); do
        alive "$p" && log "FAIL: the failed start left pid $p running"
    done
    exit 1
fi
if [ ! -f "$DIR/pid/lpcontroller.pid" ]; then
    log "FAIL: lpcontroller --daemon returned 0 but wrote no $DIR/pid/lpcontroller.pid"
    exit 1
fi
CTRL_PID=$(tr -dc '0-9' < "$DIR/pid/lpcontroller.pid")
if [ -z "$CTRL_PID" ] || ! alive "$CTRL_PID"; then
    log "FAIL: controller pid '$CTRL_PID' from the pid file is not running"
    show_logs 30
    exit 1
fi
ENGINE_PIDS=$(pgrep -P "$CTRL_PID" | tr '\n' ' ')
log "controller pid $CTRL_PID, engine pids: $ENGINE_PIDS"
if [ ! -f "$DIR/security/lp-client.json" ]; then
    log "FAIL: no $DIR/security/lp-client.json"
    exit 1
fi

LP_PROFILE_DIR="$DIR" LP_BINDIR="$BINDIR" "$PROGRAM" "$DIR/security/lp-client.json" "$@"
PROG_RC=$?
if [ "$PROG_RC" -ne 0 ]; then
    log "test program exited with status $PROG_RC"
    show_logs 30
fi

# Engines killed by the test itself are gone already; only check the rest.
ALIVE=""
for p in $ENGINE_PIDS; do alive "$p" && ALIVE="$ALIVE $p"; done
ENGINE_PIDS=$ALIVE

STOP_RC=0
stop_cluster || STOP_RC=1
# The controller and engines run detached: in a sanitizer build their
# reports (leaks at exit, undefined behaviour) land in their logs.
if grep -l -E 'ERROR: (Leak|Address)Sanitizer|runtime error:' "$DIR"/log/*.log >/dev/null 2>&1; then
    log "FAIL: sanitizer report in the cluster's logs"
    grep -h -A 20 -E 'ERROR: (Leak|Address)Sanitizer|runtime error:' "$DIR"/log/*.log | head -n 80
    STOP_RC=1
fi
[ "$STOP_RC" -ne 0 ] && show_logs 30
if [ "$PROG_RC" -ne 0 ]; then exit "$PROG_RC"; fi
exit "$STOP_RC"
