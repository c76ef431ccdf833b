#!/usr/bin/env bash
#  run_with_cluster.sh BINDIR PROGRAM [ARGS...]
#
#  Starts a controller with 4 local engines in a temporary profile, runs
#  PROGRAM <profile>/security/lp-client.json [ARGS...] with LP_PROFILE_DIR
#  and LP_BINDIR in its environment, then stops the cluster and checks that
#  nothing it started is left running. Exits with PROGRAM's status (77, a
#  skip, included), or 1 when the cluster could not be started or stopped
#  cleanly.
#
#  LP_TEST_ENGINES sets the number of engines, LP_TEST_CONTROLLER_ARGS
#  extra lpcontroller options (e.g. --scheduler lru). Starting, stopping
#  and the cleanup are tests/lib.sh's: only processes this script started
#  are signalled, always by pid.
set -u
BUILD=${1:?usage: run_with_cluster.sh BINDIR PROGRAM [ARGS...]}
PROGRAM=${2:?usage: run_with_cluster.sh BINDIR PROGRAM [ARGS...]}
shift 2
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
lp_test run_with_cluster
need_built lpcontroller
lp_tmpdir DIR test

# shellcheck disable=SC2086
start_local_cluster "$DIR" "${LP_TEST_ENGINES:-4}" ${LP_TEST_CONTROLLER_ARGS:-}
say "controller pid $CTRL_PID, engine pids: $ENGINE_PIDS"

LP_PROFILE_DIR="$DIR" LP_BINDIR="$BUILD" "$PROGRAM" "$DIR/security/lp-client.json" "$@"
PROG_RC=$?
if [ "$PROG_RC" -ne 0 ] && [ "$PROG_RC" -ne 77 ]; then
    say "test program exited with status $PROG_RC"
    show_logs 30
fi

# Engines killed by the test itself are gone already; only check the rest.
ALIVE=""
for p in $ENGINE_PIDS; do alive "$p" && ALIVE="$ALIVE $p"; done
ENGINE_PIDS=$ALIVE

STOP_RC=0
stop_local_cluster || STOP_RC=1
# The controller and engines run detached: in a sanitizer build their
# reports (leaks at exit, undefined behaviour) land in their logs.
if grep -l -E 'ERROR: (Leak|Address)Sanitizer|runtime error:' "$DIR"/log/*.log >/dev/null 2>&1; then
    say "FAIL: sanitizer report in the cluster's logs"
    grep -h -A 20 -E 'ERROR: (Leak|Address)Sanitizer|runtime error:' "$DIR"/log/*.log | head -n 80
    STOP_RC=1
fi
[ "$STOP_RC" -ne 0 ] && show_logs 30
if [ "$PROG_RC" -ne 0 ]; then exit "$PROG_RC"; fi
exit "$STOP_RC"
