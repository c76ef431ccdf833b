#!/usr/bin/env bash
#  lpsh_pipe.sh BUILD_DIR
#
#  Issue 4, "done" 1 and 4: a script piped into lpsh (tests/shell/
#  lpsh_pipe.lpsh) pushes and scatters data, runs %px on all engines and
#  with --targets, a %%px cell, %autopx on and off, pulls and gathers, and
#  shows remote errors (one engine, and the summary of all engines) and a
#  local syntax error. The whole transcript must equal lpsh_pipe.expected,
#  and lpsh must exit 1 (the script has errors). Then `lpsh -e` runs one
#  command: exit 0 when it succeeds, 1 after a remote or local error;
#  each -e is one chunk (issue 14); a map prints no progress bar into a
#  pipe.
#  Starts its own cluster (4 engines) and stops it by pid.
set -u
BUILD=${1:?usage: lpsh_pipe.sh BUILD_DIR}
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
. "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
lp_test lpsh_pipe
need_built lpcontroller lpengine lpsh
lp_tmpdir DIR shpipe
start_local_cluster "$DIR" 4
FILE=$DIR/security/lp-client.json

# --- the piped script ------------------------------------------------------
timeout 120 "$BUILD/lpsh" --file "$FILE" --wait 4 < "$HERE/lpsh_pipe.lpsh" > "$DIR/transcript" 2>&1
rc=$?
if ! diff -u "$HERE/lpsh_pipe.expected" "$DIR/transcript"; then
    fail "transcript differs from lpsh_pipe.expected (diff above: - expected, + got)"
fi
[ "$rc" -eq 1 ] || fail "lpsh < script exited $rc, expected 1 (the script has remote and local errors)"

# --- lpsh -e -----------------------------------------------------------------
got=$(timeout 60 "$BUILD/lpsh" --file "$FILE" -e '%px return lp.id * 2' 2>&1); rc=$?
want=$'Out[0:1]: 0\nOut[1:1]: 2\nOut[2:1]: 4\nOut[3:1]: 6'
[ "$rc" -eq 0 ] || fail "lpsh -e '%px return lp.id * 2' exited $rc, expected 0"
[ "$got" = "$want" ] || fail "lpsh -e '%px ...' printed:"$'\n'"$got"$'\n'"expected:"$'\n'"$want"

got=$(timeout 60 "$BUILD/lpsh" --file "$FILE" -e '%px --targets 1 error("bad")' 2>&1); rc=$?
[ "$rc" -eq 1 ] || fail "lpsh -e with a remote error exited $rc, expected 1"
echo "$got" | grep -q '^\[engine 1\] LuaError: <execute>:1: bad$' \
    || fail "remote error not shown as '[engine 1] LuaError: ...': $got"
echo "$got" | grep -q 'stack traceback' || fail "remote error without traceback: $got"

got=$(timeout 60 "$BUILD/lpsh" --file "$FILE" -e 'x = = 1' 2>&1); rc=$?
[ "$rc" -eq 1 ] || fail "lpsh -e with a local syntax error exited $rc, expected 1"
[ "$got" = "[local] SyntaxError: stdin:1: unexpected symbol near '='" ] \
    || fail "local syntax error printed: $got"

got=$(timeout 60 "$BUILD/lpsh" --file "$FILE" --bail -e 'error("first")' -e 'print("not reached")' 2>&1); rc=$?
[ "$rc" -eq 1 ] || fail "--bail: exit $rc, expected 1"
echo "$got" | grep -q 'not reached' && fail "--bail did not stop at the first error: $got"

# -e CODE is one chunk, as `lua -e`: a local lives through the whole CODE,
# not into the next -e; a %px CODE of several lines is one chunk on the
# engines; a %%px CODE takes its next lines as the cell.
got=$(timeout 60 "$BUILD/lpsh" --file "$FILE" -e $'local x = 6\nprint("x*7 = " .. x * 7)' \
      -e 'print("next -e sees x = " .. tostring(x))' 2>&1); rc=$?
[ "$rc" -eq 0 ] || fail "lpsh -e with a local over two lines exited $rc: $got"
[ "$got" = $'x*7 = 42\nnext -e sees x = nil' ] || fail "lpsh -e is not one chunk per -e:"$'\n'"$got"
got=$(timeout 60 "$BUILD/lpsh" --file "$FILE" -e $'%px --targets 1,3 local a = lp.id\nreturn a * 3' \
      -e $'%%px --targets 2\nlocal b = 5\nreturn b + lp.id' 2>&1); rc=$?
[ "$rc" -eq 0 ] || fail "lpsh -e with multi-line magics exited $rc: $got"
[ "$got" = $'Out[1:1]: 3\nOut[3:1]: 9\nOut[2:2]: 7' ] || fail "multi-line %px / %%px -e printed:"$'\n'"$got"
got=$(timeout 60 "$BUILD/lpsh" --file "$FILE" -e $'local y = 1\nerror("at line two")' 2>&1); rc=$?
[ "$rc" -eq 1 ] || fail "lpsh -e with an error on its second line exited $rc"
echo "$got" | grep -q '^\[local\] LuaError: stdin:2: at line two$' \
    || fail "error in a two-line -e not reported at stdin:2: $got"

# No progress bar when stdout is not a terminal: a 2,000-task map prints
# its result alone (no \r, no "N/2000").
got=$(timeout 120 "$BUILD/lpsh" --file "$FILE" -e 'local t = {} for i = 1, 2000 do t[i] = i end local m = rc:balanced ():map ("function (x) local e = os.clock () + 0.001 while os.clock () < e do end return x * 2 end", t) print ("mapped " .. #m .. " " .. m[2000])' 2>&1); rc=$?
[ "$rc" -eq 0 ] || fail "lpsh -e with a 2,000-task map exited $rc"
[ "$got" = "mapped 2000 4000" ] || fail "a map with stdout in a pipe printed more than its result: $(printf %s "$got" | od -c | head -n 5)"

# an unreachable cluster: exit 1 with a message naming the problem
got=$(timeout 60 "$BUILD/lpsh" --file "$DIR/nonexistent.json" -e '1' 2>&1); rc=$?
[ "$rc" -eq 1 ] || fail "lpsh with a missing connection file exited $rc, expected 1"
echo "$got" | grep -q 'nonexistent.json' || fail "missing connection file not named: $got"

stop_local_cluster || fail "the cluster did not stop cleanly"
finish
