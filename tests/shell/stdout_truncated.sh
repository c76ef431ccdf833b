#!/usr/bin/env bash
#  stdout_truncated.sh BUILD_DIR
#
#  Issue 11, operations: a reply's stdout beyond its cap ends with a
#  visible "[output truncated: N bytes dropped]" line, and lpsh never
#  drops lines silently. The engine's cap is lowered to 100,000 bytes for
#  the test (LP_ENGINE_STDOUT_MAX, inherited by the local engines; the
#  same as lpengine --stdout-max). An engine prints the numbers 1..60000,
#  one per line (348,894 bytes); lpsh shows them, once at the end and once
#  streamed (%pxconfig --stream): each time the lines shown are 1..K with
#  none missing, then the marker with N = 348,894 - the bytes kept. A
#  print under the cap shows no marker. Starts its own cluster (one
#  engine) and stops it by pid.
set -u
BUILD=${1:?usage: stdout_truncated.sh BUILD_DIR}
. "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
lp_test stdout_truncated
lp_tmpdir DIR stdoutcap

for b in lpcontroller lpengine lpsh; do
    [ -x "$BUILD/$b" ] || { say "FAIL: $BUILD/$b not built"; exit 1; }
done
CAP=100000
LP_ENGINE_STDOUT_MAX=$CAP start_local_cluster "$DIR" 1 > /dev/null
FILE=$DIR/security/lp-client.json
TOTAL=0
for ((i = 1; i <= 60000; i++)); do TOTAL=$((TOTAL + ${#i} + 1)); done

#  check_transcript FILE WHAT: lines "[stdout:0] 1" .. "[stdout:0] K"
#  without a gap, then the marker with the right count, then nothing.
check_transcript() {
    local file=$1 what=$2
    awk -v total="$TOTAL" -v what="$what" '
        BEGIN { expect = 1; kept = 0; marker = 0; bad = "" }
        /^\[stdout:0\] / {
            text = substr($0, 12)
            if (marker) { bad = bad "line after the marker: " $0 "\n"; next }
            if (text ~ /^\[output truncated: [0-9]+ bytes dropped\]$/) {
                marker = 1
                n = text; gsub(/[^0-9]/, "", n)
                if (n + kept != total)
                    bad = bad "marker says " n " bytes dropped; kept " kept " of " total "\n"
                next
            }
            if (text == expect "") { kept += length(text) + 1; expect++; next }
            #  the cut may fall inside the last kept line
            if (index(expect "", text) == 1) { kept += length(text); partial = 1; next }
            bad = bad "expected line " expect ", got: " $0 "\n"
            expect = -1
        }
        END {
            if (!marker) bad = bad "no [output truncated: N bytes dropped] line\n"
            printf "%s: lines 1..%d shown, %d bytes kept, marker %s\n", what, expect - 1, kept, marker ? "shown" : "missing" > "/dev/stderr"
            if (bad != "") { printf "%s", bad; exit 1 }
        }' "$file"
}

#  1. output shown when the reply is in (the default without a terminal)
timeout 120 "$BUILD/lpsh" --file "$FILE" --wait 1 -e '%px for i = 1, 60000 do print(i) end' > "$DIR/t1" 2>&1
rc=$?
[ "$rc" -eq 0 ] || fail "lpsh exited $rc (no-stream)"
problems=$(check_transcript "$DIR/t1" "no-stream" 2>&1) || fail "no-stream transcript: $problems"
echo "$problems" | head -n 3

#  2. streamed as it is printed
printf '%%pxconfig --stream\n%%px for i = 1, 60000 do print(i) end\n' \
    | timeout 120 "$BUILD/lpsh" --file "$FILE" --wait 1 > "$DIR/t2" 2>&1
rc=$?
[ "$rc" -eq 0 ] || fail "lpsh exited $rc (stream)"
grep -v '^%pxconfig' "$DIR/t2" > "$DIR/t2.lines"
problems=$(check_transcript "$DIR/t2.lines" "stream" 2>&1) || fail "stream transcript: $problems"
echo "$problems" | head -n 3

#  3. under the cap: every line, no marker
timeout 60 "$BUILD/lpsh" --file "$FILE" --wait 1 -e '%px for i = 1, 100 do print(i) end' > "$DIR/t3" 2>&1
[ "$(grep -c '^\[stdout:0\] [0-9]*$' "$DIR/t3")" = 100 ] || fail "a print under the cap did not show its 100 lines"
grep -q 'output truncated' "$DIR/t3" && fail "a print under the cap shows a truncation marker"

stop_local_cluster
finish
