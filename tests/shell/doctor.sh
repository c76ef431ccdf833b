#!/usr/bin/env bash
#  doctor.sh BUILD_DIR
#
#  ./cluster.sh doctor as a user meets it (issue 13):
#  - a healthy cluster of 2 engines: exit 0, both engines listed with
#    their pids, "nothing flagged";
#  - a third engine whose clock is 5 s ahead (libfaketime preloaded, as
#    the faketime command does, so that the pid is the engine's: it
#    shifts the clock the engine process reads; nothing in luaparallel
#    is told): exit 1, its line (found by its pid) says "clock off";
#  - a third engine made slow for real: niced to 19 and pinned to CPU 0
#    beside a busy loop pinned there too, so it gets a sliver of one CPU:
#    exit 1, its line says "slow".
#  Under 30 s on 2 noisy cores.
set -u
BUILD=${1:?usage: doctor.sh BUILD_DIR}
. "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
lp_test doctor
FAKETIME_LIB=$(ls /usr/lib/*/faketime/libfaketimeMT.so.1 2>/dev/null | head -n 1)
[ -n "$FAKETIME_LIB" ] || skip "libfaketime is not installed (./cluster.sh test installs faketime: DEPS_TEST)"
command -v taskset >/dev/null || skip "taskset (util-linux) is not installed"
cli_profile doctor "doctortest$$"
need_built lpcontroller lpengine lpdoctor lpstatus
cd "$ROOT" || exit 1

HOG=""
test_cleanup() {
    [ -n "$HOG" ] && kill "$HOG" 2>/dev/null
}

doctor() {
    OUT=$(timeout 120 "$CLI" doctor --profile "$NAME" --no-build 2>&1)
    RC=$?
    echo "$OUT"
}

engines_listed() {      # engines_listed N: lpstatus says N engines
    "$BUILD/lpstatus" --file "$DIR/security/lp-client.json" 2>/dev/null | grep -qx "$1 engines"
}

#  line_of PID: doctor's row of the engine with that pid
line_of() { echo "$OUT" | grep -E "^[0-9]+ +[^ ]+ +$1 "; }

# --- healthy ----------------------------------------------------------------
cli_start -n 2
doctor
[ "$RC" -eq 0 ] || fail "doctor on a healthy 2-engine cluster exited $RC, expected 0"
for p in $ENGINE_PIDS; do
    [ "$(line_of "$p" | wc -l)" -eq 1 ] || fail "doctor does not list engine pid $p on one line"
    line_of "$p" | grep -q "Lua 5.4" || fail "engine $p: no Lua version in its line"
done
echo "$OUT" | grep -q "2 engines, nothing flagged" || fail "doctor does not say '2 engines, nothing flagged'"

# --- an engine whose clock is 5 s ahead -----------------------------------------
#  (ASan, in a sanitizer build, wants to come first: it is told not to mind)
LD_PRELOAD=$FAKETIME_LIB FAKETIME="+5s" ASAN_OPTIONS=verify_asan_link_order=0 \
    "$BUILD/lpengine" --file "$DIR/security/lp-engine.json" > "$LP_HOME/skewed.log" 2>&1 &
SKEWED=$!
lp_track "$SKEWED"
wait_for 60 engines_listed 3 || fail "the faketime engine did not register within 60 s"
doctor
[ "$RC" -eq 1 ] || fail "doctor with a skewed engine exited $RC, expected 1"
line_of "$SKEWED" | grep -qE "clock off by \+(4[89]|5[01])[0-9][0-9] ms" \
    || fail "doctor does not flag the skewed engine (pid $SKEWED) as clock off by about +5000 ms"
for p in $ENGINE_PIDS; do
    line_of "$p" | grep -q " ok$" || fail "healthy engine $p flagged beside the skewed one"
done
kill "$SKEWED"
wait_gone "$SKEWED" 30 || fail "the skewed engine did not stop on SIGTERM"
wait_for 30 engines_listed 2 || fail "the skewed engine is still listed after it stopped"

# --- a slow engine ----------------------------------------------------------------
taskset -c 0 nice -n 19 "$BUILD/lpengine" --file "$DIR/security/lp-engine.json" \
    > "$LP_HOME/slow.log" 2>&1 &
SLOW=$!
lp_track "$SLOW"
wait_for 60 engines_listed 3 || fail "the slow engine did not register within 60 s"
taskset -c 0 bash -c 'while :; do :; done' &
HOG=$!
lp_track "$HOG"
doctor
kill "$HOG"
HOG=""
[ "$RC" -eq 1 ] || fail "doctor with a slow engine exited $RC, expected 1"
line_of "$SLOW" | grep -q "slow: calibration" \
    || fail "doctor does not flag the slow engine (pid $SLOW) as slow"
kill "$SLOW"
wait_gone "$SLOW" 30 || fail "the slow engine did not stop on SIGTERM"

# --- stop ---------------------------------------------------------------------------
out=$(timeout 60 "$CLI" stop --profile "$NAME" 2>&1) || fail "./cluster.sh stop failed: $out"
wait_gone "$CTRL_PID" 15 || fail "controller still running after stop"
CTRL_PID=""
ENGINE_PIDS=""
finish
