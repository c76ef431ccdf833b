#  tests/shell/lib/cluster.sh - functions the shell tests (and
#  tests/run_with_cluster.sh) share: is a pid alive, wait for it to go,
#  start and stop a local cluster in a profile folder, find and end what a
#  test left running. Sourced, not a test itself (CMake runs only
#  tests/shell/*.sh).
#
#  The sourcing script defines say () for messages. Only processes the test
#  started are signalled, always by pid: its controller (CTRL_PID), the
#  pids it lists, and processes whose command line names its own unique
#  temporary folder.

LP_TEST_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)

#  alive PID: true while pid runs; a zombie counts as gone (a detached
#  controller is reaped by PID 1, which can take a while on these VMs).
alive() {
    local pid=$1 stat state
    [ -n "$pid" ] || return 1
    [ -r "/proc/$pid/stat" ] || return 1
    { read -r stat < "/proc/$pid/stat"; } 2>/dev/null || return 1
    state=${stat##*) }
    state=${state%% *}
    [ "$state" != Z ] && [ "$state" != X ]
}

#  wait_gone PID SECONDS -> 0 when gone (polling, with a deadline)
wait_gone() {
    local pid=$1 deadline=$((SECONDS + $2))
    while alive "$pid"; do
        [ "$SECONDS" -ge "$deadline" ] && return 1
        sleep 0.05      # poll interval, not synchronisation
    done
    return 0
}

#  wait_for SECONDS COMMAND...: polls COMMAND until it succeeds; 1 when
#  the deadline passes first.
wait_for() {
    local deadline=$((SECONDS + $1))
    shift
    until "$@"; do
        [ "$SECONDS" -ge "$deadline" ] && return 1
        sleep 0.1       # poll interval, not synchronisation
    done
}

#  strays DIR: pids of processes whose command line names our unique
#  temporary folder DIR (a controller or engines orphaned by a failed
#  start): a safety net that still only touches what this test started.
strays() {
    local d=$1 p
    for p in $(pgrep -f -- "$d/" 2>/dev/null); do
        [ "$p" != "$$" ] && [ "$p" != "$BASHPID" ] && echo "$p"
    done
}

#  kill_leftovers PIDS...: SIGKILL those of the pids still running, saying
#  which (last resort of a cleanup).
kill_leftovers() {
    local p
    for p in "$@"; do
        if alive "$p"; then
            say "cleanup: pid $p ($(tr '\0' ' ' < "/proc/$p/cmdline" 2>/dev/null)) still running; killing it"
            kill -9 "$p" 2>/dev/null
        fi
    done
}

#  stop_pid PID NAME: SIGTERM, poll up to 15 s, then SIGKILL. 1 when it
#  had to kill.
stop_pid() {
    local pid=$1 name=$2
    [ -n "$pid" ] || return 0
    alive "$pid" || return 0
    kill -TERM "$pid" 2>/dev/null
    if ! wait_gone "$pid" 15; then
        say "$name (pid $pid) still running 15 s after SIGTERM; sending SIGKILL"
        kill -9 "$pid" 2>/dev/null
        return 1
    fi
    return 0
}

#  show_logs [LINES]: the last LINES (20) lines of each log of the profile
#  folder $DIR.
show_logs() {
    local f n=${1:-20}
    for f in "$DIR"/log/*.log; do
        [ -f "$f" ] || continue
        echo "----- $(basename "$f") (last $n lines) -----"
        tail -n "$n" "$f"
    done
}

#  start_local_cluster PROFILE_DIR N [LPCONTROLLER OPTIONS...]: a daemon
#  controller with N local engines from $BUILD; sets CTRL_PID and
#  ENGINE_PIDS. Ends the test (status 1) when it does not start, saying
#  why on stderr (the caller may silence the controller's stdout).
start_local_cluster() {
    local dir=$1 n=$2
    shift 2
    if ! timeout 60 "$BUILD/lpcontroller" --profile-dir "$dir" -n "$n" --daemon "$@"; then
        say "FAIL: cluster did not start" >&2
        tail -n 20 "$dir"/log/*.log >&2 2>/dev/null
        exit 1
    fi
    CTRL_PID=$(tr -dc '0-9' < "$dir/pid/lpcontroller.pid" 2>/dev/null)
    alive "$CTRL_PID" || { say "FAIL: controller pid '$CTRL_PID' from $dir/pid is not running" >&2; exit 1; }
    ENGINE_PIDS=$(pgrep -P "$CTRL_PID" | tr '\n' ' ')
    if [ "$n" -gt 0 ] && [ -z "$ENGINE_PIDS" ]; then
        say "FAIL: no engine children of controller $CTRL_PID" >&2; exit 1
    fi
}

#  stop_local_cluster: SIGTERM to CTRL_PID (it stops its engines), SIGKILL
#  after 15 s; clears CTRL_PID.
stop_local_cluster() {
    stop_pid "$CTRL_PID" controller
    CTRL_PID=""
}

#  cli_profile TAG NAME: for tests of ./cluster.sh, a profile NAME in a
#  temporary LP_HOME of its own (folder lpTAG.XXXXXX). Sets ROOT, CLI,
#  LP_HOME, NAME, DIR (the profile folder); exports LP_HOME, LP_BUILD_DIR
#  ($BUILD) and LP_SKIP_DEPS=1. On exit, by recorded pid only, whatever the
#  test started (CTRL_PID, ENGINE_PIDS, processes naming LP_HOME) and the
#  CLI failed to stop is killed, and LP_HOME removed.
cli_profile() {
    ROOT=$LP_TEST_ROOT
    CLI=$ROOT/cluster.sh
    export LP_HOME
    LP_HOME=$(mktemp -d "${TMPDIR:-/tmp}/lp$1.XXXXXX") || exit 1
    export LP_BUILD_DIR=$BUILD LP_SKIP_DEPS=1
    NAME=$2
    DIR=$LP_HOME/profile_$NAME
    trap cli_profile_cleanup EXIT
    trap 'exit 130' INT TERM
}
cli_profile_cleanup() {
    kill_leftovers $CTRL_PID $ENGINE_PIDS $(strays "$LP_HOME")
    rm -rf "$LP_HOME"
}
