#!/usr/bin/env bash
#  curve_rekey.sh BUILD_DIR
#
#  Issue 12, key rotation through ./cluster.sh: a --secure start makes the
#  key pairs (security/*.key*, mode 0600) and they stay the same across a
#  restart; `rekey` refuses while the controller runs; after stop + rekey
#  + start the keys are new: the old keys (put into the new file, whose
#  ports are the current ones) are refused with a clear error, and the new
#  file works.
set -u
BUILD=${1:?usage: curve_rekey.sh BUILD_DIR}
. "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
lp_test curve_rekey
need_built lpcontroller lpengine lpsh
cli_profile rekey "rekey$$"

run_print() {   # FILE -> lpsh's output; status of lpsh
    timeout 30 "$BUILD/lpsh" --file "$1" --timeout 5000 -e 'print("ok " .. 6 * 7)' 2>&1
}

cli_start -n 1 --secure > /dev/null
for f in controller client engine; do
    for g in "$DIR/security/$f.key" "$DIR/security/$f.key_secret"; do
        [ "$(stat -c %a "$g" 2>/dev/null)" = 600 ] || fail "$g: mode $(stat -c %a "$g" 2>/dev/null), not 600"
    done
done
cp "$DIR/security/lp-client.json" "$LP_HOME/old.json"
key1=$(sed -n 's/^ *public-key = //p' "$DIR/security/controller.key")
out=$("$CLI" rekey --profile "$NAME" 2>&1) && fail "rekey ran while the controller runs: $out"
grep -q "stop it first" <<< "$out" || fail "rekey while running does not say to stop first: $out"
"$CLI" stop --profile "$NAME" > /dev/null || fail "stop failed"

cli_start -n 1 --secure > /dev/null
[ "$(sed -n 's/^ *public-key = //p' "$DIR/security/controller.key")" = "$key1" ] \
    || fail "a restart changed the controller's key"
out=$(run_print "$DIR/security/lp-client.json") || fail "the file after a plain restart does not work: $out"
cmp -s <(sed -n '/"curve"/,$p' "$LP_HOME/old.json") <(sed -n '/"curve"/,$p' "$DIR/security/lp-client.json") \
    || fail "a plain restart changed the client's CURVE keys"
"$CLI" stop --profile "$NAME" > /dev/null || fail "stop failed"

"$CLI" rekey --profile "$NAME" || fail "rekey failed"
cli_start -n 1 --secure > /dev/null
key2=$(sed -n 's/^ *public-key = //p' "$DIR/security/controller.key")
[ -n "$key2" ] && [ "$key2" != "$key1" ] || fail "rekey did not make a new controller key ($key1 / $key2)"
#  the new endpoints with the old keys
/usr/bin/python3 - "$DIR/security/lp-client.json" "$LP_HOME/old.json" "$LP_HOME/stale.json" <<'EOF'
import json, sys
new, old = json.load(open(sys.argv[1])), json.load(open(sys.argv[2]))
new["curve"] = old["curve"]
json.dump(new, open(sys.argv[3], "w"))
EOF
chmod 600 "$LP_HOME/stale.json"
out=$(run_print "$LP_HOME/stale.json") && fail "the old keys still get in after rekey: $out"
say "old file after rekey: $out"
grep -q "CURVE" <<< "$out" || fail "the refusal of the old file does not mention CURVE: $out"
out=$(run_print "$DIR/security/lp-client.json") || fail "the new file does not work: $out"
grep -q "ok 42" <<< "$out" || fail "the new file: unexpected output $out"
"$CLI" stop --profile "$NAME" > /dev/null || fail "stop failed"
CTRL_PID=""
ENGINE_PIDS=""
finish
