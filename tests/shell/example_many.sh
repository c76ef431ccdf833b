#!/usr/bin/env bash
#  example_many.sh BUILD_DIR
#
#  Issue 14: examples/many.c handles 10,000 load-balanced tasks as they
#  complete, from a poll () loop on lp_client_fd with lp_client_wait_any.
#  Against a 4-engine cluster it started, the example must exit 0 and
#  report every one of the 10,000 results right (it checks each value,
#  i * i for task i) with none left pending. Stops the cluster by pid.
set -u
BUILD=${1:?usage: example_many.sh BUILD_DIR}
. "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
lp_test example_many
need_built lpcontroller
[ -x "$BUILD/many" ] || { fail "$BUILD/many not built"; finish; }
lp_tmpdir DIR many

start_local_cluster "$DIR" 4 > /dev/null
OUT=$DIR/many.out
timeout 120 "$BUILD/many" "$DIR/security/lp-client.json" 10000 > "$OUT" 2>&1
RC=$?
tail -n 5 "$OUT"
[ "$RC" -eq 0 ] || fail "many exited with status $RC"
grep -q '^many: 10000 tasks, 10000 results right, 0 wrong, 0 left' "$OUT" \
    || fail "not every result right: $(tail -n 1 "$OUT")"
stop_local_cluster || fail "the cluster did not stop cleanly"
finish
