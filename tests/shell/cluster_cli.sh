#!/usr/bin/env bash
#  cluster_cli.sh BUILD_DIR
#
#  What a user does with ./cluster.sh: start 4 engines in a profile of its
#  own (LP_HOME in a temporary folder), see them registered, list them with
#  `status` (id, host, pid, state, queue), and `stop` them: afterwards no
#  process of that cluster is left. Uses BUILD_DIR's binaries (no rebuild).
set -u
BUILD=${1:?usage: cluster_cli.sh BUILD_DIR}
. "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
lp_test cluster_cli
cli_profile cli "clitest$$"
need_built lpcontroller lpengine
cd "$ROOT" || exit 1

# --- start ---------------------------------------------------------------
cli_start -n 4
echo "$CLI_OUT" | grep -qE '\b4 engines registered' || fail "start did not say that 4 engines are registered"
[ "$(echo $ENGINE_PIDS | wc -w)" -eq 4 ] || fail "controller has $(echo $ENGINE_PIDS | wc -w) children, expected 4 engines"
for f in lp-client.json lp-engine.json; do
    [ -f "$DIR/security/$f" ] || fail "no $DIR/security/$f"
    mode=$(stat -c %a "$DIR/security/$f" 2>/dev/null)
    [ "$mode" = 600 ] || fail "security/$f has mode $mode, expected 600"
done

# a second start of the same profile is refused while it runs
if out2=$(timeout 60 ./cluster.sh start -n 1 --profile "$NAME" --no-build 2>&1); then
    fail "a second start of a running profile succeeded: $out2"
else
    echo "$out2" | grep -qi 'already running' || fail "second start: unclear message: $out2"
fi

# --- status ---------------------------------------------------------------
out=$(timeout 60 ./cluster.sh status --profile "$NAME" --no-build 2>&1)
rc=$?
echo "$out"
[ "$rc" -eq 0 ] || fail "./cluster.sh status exited $rc"
header=$(echo "$out" | grep -iE '\bid\b' | grep -iE 'host' | grep -iE 'pid' | grep -iE 'state' | grep -iE 'queue' | head -n 1)
[ -n "$header" ] || fail "status output has no line naming id, host, pid, state and queue"
for p in $ENGINE_PIDS; do
    n=$(echo "$out" | grep -cE "(^|[^0-9])$p([^0-9]|$)")
    [ "$n" -eq 1 ] || fail "status lists engine pid $p on $n lines, expected 1"
done
rows=$(echo "$out" | grep -E '^[[:space:]]*[0-9]+[[:space:]]' | grep -ciE 'idle|busy')
[ "$rows" -eq 4 ] || fail "status has $rows engine rows (id first, state idle/busy), expected 4"

# --- stop -----------------------------------------------------------------
out=$(timeout 60 ./cluster.sh stop --profile "$NAME" 2>&1)
rc=$?
echo "$out"
[ "$rc" -eq 0 ] || fail "./cluster.sh stop exited $rc"
echo "$out" | grep -qi 'killed' && fail "stop had to kill the controller: $out"
deadline=$((SECONDS + 15))
for p in $CTRL_PID $ENGINE_PIDS; do
    while alive "$p" && [ "$SECONDS" -lt "$deadline" ]; do sleep 0.05; done   # poll
    alive "$p" && fail "pid $p still running after ./cluster.sh stop"
done
[ -e "$DIR/pid/lpcontroller.pid" ] && fail "pid file left behind after stop"
[ -e "$DIR/security/lp-client.json" ] && fail "client connection file left behind after stop"

# status of a stopped cluster says so and fails
out=$(timeout 60 ./cluster.sh status --profile "$NAME" --no-build 2>&1) \
    && fail "status of a stopped cluster exited 0: $out"
echo "$out" | grep -qi 'no controller' || fail "status of a stopped cluster: unclear message: $out"
# stopping again is harmless
timeout 60 ./cluster.sh stop --profile "$NAME" >/dev/null 2>&1 || fail "a second stop failed"

finish
