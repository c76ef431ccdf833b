#!/usr/bin/env bash
#  schedulers.sh BUILD - the defining behaviour of each load-balancing
#  scheme (see tests/tools/lpsched.c), each against its own 4-engine
#  cluster started with `--scheduler SCHEME --hwm 0`.
set -u
BUILD=${1:?usage: schedulers.sh BUILD}
HERE=$(cd "$(dirname "$0")" && pwd)
rc=0
for scheme in leastload lru plainrandom weighted twobin; do
    echo "== $scheme"
    if ! LP_TEST_CONTROLLER_ARGS="--scheduler $scheme --hwm 0" \
         "$HERE/../run_with_cluster.sh" "$BUILD" "$BUILD/lpsched" "$scheme" >"$BUILD/schedulers-$scheme.log" 2>&1; then
        echo "FAIL: $scheme (log below)"
        grep -v '^I: ' "$BUILD/schedulers-$scheme.log" | tail -n 40
        rc=1
    else
        grep -E '^(leastload|lru|plainrandom|weighted|twobin):' "$BUILD/schedulers-$scheme.log"
    fi
done
exit $rc
