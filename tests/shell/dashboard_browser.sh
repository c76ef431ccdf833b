#!/usr/bin/env bash
#  dashboard_browser.sh BUILD_DIR
#
#  Issue 14, "done" 1: headless Chromium (Debian's chromium, driven over
#  its DevTools protocol by tests/tools/lp_browser.py) opens the dashboard
#  of a running 4-engine cluster (lpcontroller --dashboard 127.0.0.1:0),
#  sees 4 engine rows; a load-balanced map of 400 tasks (20 ms each, one
#  failing) runs through the Lua client module; the page must show the
#  throughput chart rise and change, the task stream draw all 400 tasks,
#  and the failing task's error with its traceback. The screenshot is kept
#  in BUILD/Testing/dashboard_browser/dashboard.png (path printed).
#  Needs chromium and lua5.4 (cluster.sh: DEPS_DASH, DEPS_TEST).
set -u
BUILD=${1:?usage: dashboard_browser.sh BUILD_DIR}
. "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
lp_test dashboard_browser
command -v chromium >/dev/null || skip "chromium not installed (Debian package chromium)"
command -v python3 >/dev/null || skip "python3 not installed"
lua_setup
lp_tmpdir DIR dashb
start_local_cluster "$DIR" 4 --dashboard 127.0.0.1:0
URL=$(cat "$DIR/security/dashboard.url" 2>/dev/null)
[[ $URL == http://127.0.0.1:* ]] || { fail "no dashboard address in security/dashboard.url ('$URL')"; finish; }
say "dashboard at $URL"
OUT=$BUILD/Testing/dashboard_browser
mkdir -p "$OUT"
rm -f "$OUT/dashboard.png"
TASKS=400
#  The load: the Lua module from this build (ASan runtime first when
#  the build is sanitized, as run_lua does)
LOAD=(env LUA_CPATH="$BUILD/lua/?.so" timeout 100 "$LUA" "$LP_TEST_ROOT/tests/shell/dashboard_load.lua"
      "$DIR/security/lp-client.json" "$TASKS" 20)
[ -n "$PRELOAD" ] && LOAD=(env LD_PRELOAD="$PRELOAD" ASAN_OPTIONS=detect_leaks=0 "${LOAD[@]}")
out=$(cd "$DIR" && timeout 150 /usr/bin/python3 "$LP_TEST_ROOT/tests/tools/lp_browser.py" "$URL" \
      "$OUT/dashboard.png" "$TASKS" -- "${LOAD[@]}" 2>&1)
rc=$?
echo "$out"
[ "$rc" -eq 0 ] || fail "lp_browser.py exited $rc"
grep -qx "rows 4" <<< "$out" || fail "the page did not show 4 engine rows"
grep -qx "live live" <<< "$out" || fail "the page's event stream was not live"
grep -qx "before: peak 0 bars 0" <<< "$out" || fail "a fresh cluster's page did not start empty"
grep -q "^peak [0-9]" <<< "$out" || fail "the throughput chart did not rise"
grep -qx "chart changed yes" <<< "$out" || fail "the throughput chart's picture did not change"
grep -qx "bars after $TASKS" <<< "$out" || fail "the task stream did not show the $TASKS tasks"
grep -q "map done: 399 ok, 1 failed" <<< "$out" || fail "the map did not end as it should"
grep -qx "error listed with traceback" <<< "$out" || fail "the failing task's error or traceback is missing"
grep -qx "traceback open yes" <<< "$out" || fail "the opened traceback closed again on the next update"
if [ -s "$OUT/dashboard.png" ] && [ "$(head -c 8 "$OUT/dashboard.png" | od -An -tx1 | tr -d ' ')" = 89504e470d0a1a0a ]; then
    say "screenshot: $OUT/dashboard.png"
else
    fail "no PNG screenshot in $OUT/dashboard.png"
fi
stop_local_cluster || fail "the cluster did not stop cleanly"
if grep -l -E 'ERROR: (Leak|Address)Sanitizer|runtime error:' "$DIR"/log/*.log >/dev/null 2>&1; then
    fail "sanitizer report in the cluster's logs ($DIR/log)"
    grep -h -A 20 -E 'ERROR: (Leak|Address)Sanitizer|runtime error:' "$DIR"/log/*.log | head -n 60
fi
finish
