#  tests/lib.sh - what the shell tests (tests/shell/*.sh) and
#  tests/run_with_cluster.sh share: messages and verdicts, skips, temporary
#  folders, starting and stopping a local cluster, polling with deadlines,
#  and a cleanup on exit. Sourced, not a test itself.
#
#  A test starts with
#
#      BUILD=${1:?usage: NAME.sh BUILD_DIR}
#      . "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
#      lp_test NAME             # say, fail, skip, finish; cleanup on exit
#      lp_tmpdir DIR TAG        # DIR=a new folder, removed on exit
#      start_local_cluster "$DIR" 4
#      ...checks, each failing one calls fail "what"...
#      finish                   # exit 0, or 1 after any fail
#
#  Only processes the test started are signalled, always by pid: the
#  controller of start_local_cluster (CTRL_PID) and its engines
#  (ENGINE_PIDS), the pids given to lp_track, and, as a last resort,
#  processes whose command line names one of the test's own temporary
#  folders. Never pkill or killall.
#
#  A skip exits with status 77, which CMake declares as SKIP_RETURN_CODE
#  for every shell test (tests/CMakeLists.txt): ctest reports "Skipped",
#  never "Passed", and the reason is printed.

LP_TEST_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
LP_TEST_NAME=${LP_TEST_NAME:-test}
LP_TMPDIRS=""
LP_TRACKED=""
CTRL_PID=${CTRL_PID:-}
ENGINE_PIDS=${ENGINE_PIDS:-}
FAILS=0

say() { echo "$LP_TEST_NAME: $*"; }
fail() { say "FAIL: $*"; FAILS=$((FAILS + 1)); }

#  lp_test NAME: names the messages, makes BUILD absolute (when set) and
#  installs the cleanup (EXIT) and an exit on INT/TERM. A test with more to
#  undo defines test_cleanup (), which runs first.
lp_test() {
    LP_TEST_NAME=$1
    if [ -n "${BUILD:-}" ]; then
        BUILD=$(cd "$BUILD" && pwd) || { say "FAIL: no build folder '$BUILD'"; exit 1; }
    fi
    trap lp_cleanup EXIT
    trap 'exit 130' INT TERM
}

#  skip REASON: the test cannot run here (missing root, tool, permission);
#  prints the reason and exits 77 (ctest: Skipped).
skip() {
    say "SKIP: $*"
    exit 77
}

#  finish: the verdict. Shows the logs of $DIR (when it is a profile) and
#  exits 1 after any fail, says OK and exits 0 otherwise.
finish() {
    if [ "$FAILS" -gt 0 ]; then
        show_logs
        say "$FAILS failure(s)"
        exit 1
    fi
    say "OK"
    exit 0
}

#  need_built NAMES...: each is an executable of $BUILD, or the test fails.
need_built() {
    local b
    for b in "$@"; do
        [ -x "$BUILD/$b" ] || { say "FAIL: $BUILD/$b not built"; exit 1; }
    done
}

#  lp_tmpdir VAR TAG: a new temporary folder lpTAG.XXXXXX in VAR, removed
#  (with any process naming it) on exit.
lp_tmpdir() {
    local d
    d=$(mktemp -d "${TMPDIR:-/tmp}/lp$2.XXXXXX") || { say "FAIL: mktemp -d"; exit 1; }
    LP_TMPDIRS="$LP_TMPDIRS $d"
    printf -v "$1" '%s' "$d"
}

#  lp_track PIDS...: processes the test started itself (engines, clients
#  run in the background); the cleanup ends those still running.
lp_track() { LP_TRACKED="$LP_TRACKED $*"; }

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
    [ -n "$d" ] || return 0
    for p in $(pgrep -f -- "$d/" 2>/dev/null); do
        [ "$p" != "$$" ] && [ "$p" != "$BASHPID" ] && echo "$p"
    done
}

#  kill_pids PIDS...: SIGKILL to those still running, then waits (10 s
#  each at most) until they are gone. Quiet: for tests that kill on purpose.
kill_pids() {
    local p
    for p in "$@"; do alive "$p" && kill -9 "$p" 2>/dev/null; done
    for p in "$@"; do wait_gone "$p" 10; done
    return 0
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
        wait_gone "$pid" 5
        return 1
    fi
    return 0
}

#  show_logs [LINES]: the last LINES (20) lines of each log of the profile
#  folder $DIR (LP_CLUSTER_DIR after start_local_cluster).
show_logs() {
    local f n=${1:-20} d=${LP_CLUSTER_DIR:-${DIR:-}}
    [ -n "$d" ] || return 0
    for f in "$d"/log/*.log; do
        [ -f "$f" ] || continue
        echo "----- $(basename "$f") (last $n lines) -----"
        tail -n "$n" "$f"
    done
}

#  read_cluster_pids PROFILE_DIR: CTRL_PID from the profile's pid file and
#  ENGINE_PIDS, the controller's children. 1 (and a message) when the
#  controller is not running.
read_cluster_pids() {
    local dir=$1
    CTRL_PID=$( { tr -dc '0-9' < "$dir/pid/lpcontroller.pid"; } 2>/dev/null)
    if [ -z "$CTRL_PID" ]; then
        say "FAIL: no controller pid in $dir/pid/lpcontroller.pid" >&2
        return 1
    fi
    if ! alive "$CTRL_PID"; then
        say "FAIL: controller pid '$CTRL_PID' from $dir/pid is not running" >&2
        return 1
    fi
    ENGINE_PIDS=$(pgrep -P "$CTRL_PID" | tr '\n' ' ')
}

#  start_local_cluster PROFILE_DIR N [LPCONTROLLER OPTIONS...]: a daemon
#  controller with N local engines from $BUILD; sets CTRL_PID, ENGINE_PIDS
#  and LP_CLUSTER_DIR. Ends the test (status 1) when it does not start,
#  saying why on stderr (the caller may silence the controller's stdout).
start_local_cluster() {
    local dir=$1 n=$2 p
    shift 2
    LP_CLUSTER_DIR=$dir
    if ! timeout 60 "$BUILD/lpcontroller" --profile-dir "$dir" -n "$n" --daemon "$@"; then
        say "FAIL: cluster did not start (lpcontroller --daemon failed)" >&2
        show_logs 30 >&2
        for p in $(strays "$dir"); do
            say "FAIL: the failed start left pid $p running" >&2
        done
        exit 1
    fi
    read_cluster_pids "$dir" || { show_logs 30 >&2; exit 1; }
    if [ "$n" -gt 0 ] && [ -z "$ENGINE_PIDS" ]; then
        say "FAIL: no engine children of controller $CTRL_PID" >&2; exit 1
    fi
    if [ ! -f "$dir/security/lp-client.json" ]; then
        say "FAIL: no $dir/security/lp-client.json" >&2; exit 1
    fi
}

#  stop_local_cluster: SIGTERM to CTRL_PID (it stops its engines), SIGKILL
#  after 15 s; then the engines of ENGINE_PIDS still running get 10 s to
#  go before SIGKILL. Clears CTRL_PID and ENGINE_PIDS. Returns 1 when it
#  had to kill, when the controller was gone already, or when it left its
#  pid file or connection files in LP_CLUSTER_DIR behind.
stop_local_cluster() {
    local rc=0 p f deadline
    if [ -n "$CTRL_PID" ]; then
        if alive "$CTRL_PID"; then
            stop_pid "$CTRL_PID" controller || rc=1
        else
            say "FAIL: controller pid $CTRL_PID was not running any more at the end of the test"
            rc=1
        fi
    fi
    deadline=$((SECONDS + 10))
    for p in $ENGINE_PIDS; do
        if ! wait_gone "$p" $((deadline > SECONDS ? deadline - SECONDS : 0)); then
            say "FAIL: engine pid $p still running after the controller stopped; sending SIGKILL"
            kill -9 "$p" 2>/dev/null
            rc=1
        fi
    done
    if [ -n "$CTRL_PID" ] && [ -n "${LP_CLUSTER_DIR:-}" ]; then
        if [ -e "$LP_CLUSTER_DIR/pid/lpcontroller.pid" ]; then
            say "FAIL: controller left its pid file $LP_CLUSTER_DIR/pid/lpcontroller.pid behind"
            rc=1
        fi
        for f in lp-client.json lp-engine.json; do
            if [ -e "$LP_CLUSTER_DIR/security/$f" ]; then
                say "FAIL: controller left its connection file security/$f behind"
                rc=1
            fi
        done
    fi
    CTRL_PID=""
    ENGINE_PIDS=""
    return $rc
}

#  lp_cleanup (EXIT trap of lp_test): test_cleanup () when defined, the
#  cluster, the tracked pids, strays of the test's folders, the folders.
lp_cleanup() {
    local d
    declare -F test_cleanup >/dev/null && test_cleanup
    if [ -n "$CTRL_PID" ] || [ -n "$ENGINE_PIDS" ]; then
        stop_local_cluster >/dev/null 2>&1
    fi
    kill_leftovers $LP_TRACKED
    for d in $LP_TMPDIRS; do
        kill_leftovers $(strays "$d")
    done
    for d in $LP_TMPDIRS; do
        chmod -R u+rwx "$d" 2>/dev/null
        rm -rf "$d"
    done
}

#  cli_profile TAG NAME: for tests of ./cluster.sh, a profile NAME in a
#  temporary LP_HOME of its own (folder lpTAG.XXXXXX). Sets ROOT, CLI,
#  LP_HOME, NAME, DIR (the profile folder), LP_CLUSTER_DIR; exports
#  LP_HOME, LP_BUILD_DIR ($BUILD) and LP_SKIP_DEPS=1. What the test started
#  and the CLI failed to stop is killed on exit (CTRL_PID, ENGINE_PIDS,
#  processes naming LP_HOME), and LP_HOME removed.
cli_profile() {
    ROOT=$LP_TEST_ROOT
    CLI=$ROOT/cluster.sh
    export LP_HOME
    lp_tmpdir LP_HOME "$1"
    export LP_BUILD_DIR=$BUILD LP_SKIP_DEPS=1
    NAME=$2
    DIR=$LP_HOME/profile_$NAME
    LP_CLUSTER_DIR=$DIR
    [ -x "$CLI" ] || { say "FAIL: $CLI not found or not executable"; exit 1; }
}

#  cli_start ARGS...: ./cluster.sh start ARGS --profile NAME --no-build
#  (within 120 s), its output shown; then CTRL_PID and ENGINE_PIDS. Ends
#  the test when it fails.
cli_start() {
    local out rc
    out=$(timeout 120 "$CLI" start "$@" --profile "$NAME" --no-build 2>&1)
    rc=$?
    echo "$out"
    if [ "$rc" -ne 0 ]; then
        say "FAIL: ./cluster.sh start exited $rc"
        show_logs
        exit 1
    fi
    CLI_OUT=$out
    read_cluster_pids "$DIR" || exit 1
    say "controller pid $CTRL_PID, engine pids: $ENGINE_PIDS"
}

#  lua_setup: sets LUA (the interpreter) and PRELOAD (the ASan runtime a
#  sanitizer build's module needs loaded first in the uninstrumented
#  interpreter); ends the test when lua5.4 or the module is missing.
lua_setup() {
    LUA=$(command -v lua5.4) || { say "FAIL: lua5.4 not installed (Debian package lua5.4)"; exit 1; }
    [ -f "$BUILD/lua/luaparallel.so" ] || { say "FAIL: $BUILD/lua/luaparallel.so not built"; exit 1; }
    PRELOAD=""
    if grep -q '^LP_SANITIZE:BOOL=ON' "$BUILD/CMakeCache.txt" 2>/dev/null; then
        PRELOAD=$(gcc -print-file-name=libasan.so)
    fi
}

#  run_lua CPATH SECONDS SCRIPT ARGS...: lua5.4 SCRIPT ARGS in $DIR with
#  LUA_CPATH=CPATH, for at most SECONDS; its status. With PRELOAD, leak
#  checking is off for lua5.4 itself, whose own allocations ASan cannot
#  account for.
run_lua() {
    local cpath=$1 seconds=$2
    shift 2
    if [ -n "$PRELOAD" ]; then
        (cd "$DIR" && LD_PRELOAD="$PRELOAD" ASAN_OPTIONS=detect_leaks=0 LUA_CPATH="$cpath" \
            timeout "$seconds" "$LUA" "$@")
    else
        (cd "$DIR" && LUA_CPATH="$cpath" timeout "$seconds" "$LUA" "$@")
    fi
}
