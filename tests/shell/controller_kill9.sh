#!/usr/bin/env bash
#  controller_kill9.sh BUILD_DIR
#
#  Issue 8, observation 5 (second half): the controller is killed with
#  SIGKILL (it cannot stop its engines), then the user runs
#  `./cluster.sh stop`. Afterwards no engine of that cluster may be left
#  running, and no stale pid or connection file may stay behind. (Before
#  the fix, stop removed the controller's pid file and left the engines
#  running, retrying their controller forever.)
#  Then, with --restart-engines, an engine killed with SIGKILL comes back
#  under its id, and stop still leaves nothing.
set -u
BUILD=${1:?usage: controller_kill9.sh BUILD_DIR}
. "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
lp_test controller_kill9
cli_profile kill9 "kill9test$$"

start_cluster() {   # extra start options...
    cli_start -n 2 "$@"
    [ -n "$ENGINE_PIDS" ] || { fail "no engine children of controller $CTRL_PID"; exit 1; }
}

check_nothing_left() {   # what happened
    local p
    for p in $ENGINE_PIDS; do
        # stop returns when it has stopped them; allow for reaping only
        if ! wait_gone "$p" 3; then
            fail "engine pid $p still running after $1"
        fi
    done
    for p in $(strays "$LP_HOME"); do
        alive "$p" && fail "pid $p ($(tr '\0' ' ' < /proc/$p/cmdline 2>/dev/null)) still running after $1"
    done
    local f
    for f in "$DIR"/pid/* "$DIR"/security/lp-client.json "$DIR"/security/lp-engine.json; do
        [ -e "$f" ] && fail "stale file $f left after $1"
    done
}

#  check_engine_args ARGS...: every engine's command line has them
check_engine_args() {
    local p cmdline
    for p in $ENGINE_PIDS; do
        cmdline=$(tr '\0' ' ' < "/proc/$p/cmdline" 2>/dev/null)
        case " $cmdline " in
            *" $* "*) ;;
            *) fail "engine $p runs '$cmdline', expected '$*' in it" ;;
        esac
    done
}

# 1. kill -9 the controller, then cluster.sh stop
start_cluster
for p in $ENGINE_PIDS; do
    alive "$p" || fail "engine $p not running after start"
done
# local engines get a memory cap (50 % of physical memory / 2 engines)
# and give up on a lost controller after 60 s (--engine-wait)
MEM_KB=$(awk '/^MemTotal:/ { print $2 }' /proc/meminfo)
PAGES=$(getconf _PHYS_PAGES) PAGE=$(getconf PAGESIZE)
DEFAULT_MB=$(( PAGES * PAGE / 100 * 50 / 2 / 1048576 ))
check_engine_args --memory-limit "$DEFAULT_MB" --lost-exit 60000
say "engines capped at $DEFAULT_MB MB each (MemTotal $MEM_KB kB)"
kill -9 "$CTRL_PID"
wait_gone "$CTRL_PID" 10 || fail "controller $CTRL_PID survives SIGKILL"
OUT=$("$CLI" stop --profile "$NAME" 2>&1)
echo "$OUT"
check_nothing_left "kill -9 of the controller and cluster.sh stop"
# the engines were stopped by stop, not by themselves (--lost-exit is 60 s)
# and stop said so
echo "$OUT" | grep -q "local engine(s) left by the controller stopped" \
    || fail "cluster.sh stop did not report stopping the controller's engines"

# 2. --restart-engines: an engine killed -9 is started again under its id
#    (and --engine-memory sets the engines' cap)
start_cluster --restart-engines --engine-memory 64
check_engine_args --memory-limit 64 --lost-exit 60000
VICTIM=${ENGINE_PIDS%% *}
VICTIM_SLOT=""
for f in "$DIR"/pid/engine-*.pid; do
    [ "$(tr -dc '0-9' < "$f")" = "$VICTIM" ] && VICTIM_SLOT=$f
done
[ -n "$VICTIM_SLOT" ] || fail "no pid/engine-<k>.pid holds engine pid $VICTIM"
kill -9 "$VICTIM"
wait_gone "$VICTIM" 10 || fail "engine $VICTIM survives SIGKILL"
NEW=""
deadline=$((SECONDS + 30))
while [ "$SECONDS" -lt "$deadline" ]; do
    if [ -n "$VICTIM_SLOT" ] && [ -f "$VICTIM_SLOT" ]; then
        NEW=$( { tr -dc "0-9" < "$VICTIM_SLOT"; } 2>/dev/null)
        [ -n "$NEW" ] && [ "$NEW" != "$VICTIM" ] && alive "$NEW" && break
    fi
    NEW=""
    sleep 0.05          # poll interval, not synchronisation
done
if [ -z "$NEW" ]; then
    fail "the killed engine was not restarted within 30 s"
    show_logs
else
    say "engine $VICTIM killed, restarted as pid $NEW"
    ENGINE_PIDS="$ENGINE_PIDS $NEW"
    # it registers again, under the same id: status lists 2 engines
    deadline=$((SECONDS + 30))
    until "$CLI" status --profile "$NAME" --no-build 2>/dev/null | grep -qw "$NEW"; do
        if [ "$SECONDS" -ge "$deadline" ]; then
            fail "restarted engine $NEW not listed by status within 30 s"
            "$CLI" status --profile "$NAME" --no-build
            break
        fi
        sleep 0.1       # poll interval, not synchronisation
    done
    grep -q "engine restarted, its state was lost" "$DIR/log/lpcontroller.log" \
        || fail "the controller's log does not say the engine was restarted"
fi
"$CLI" stop --profile "$NAME"
check_nothing_left "cluster.sh stop"
finish
