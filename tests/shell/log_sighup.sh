#!/usr/bin/env bash
#  log_sighup.sh BUILD_DIR
#
#  Issue 11, operations: SIGHUP reopens the log files, as logrotate
#  expects. A cluster of one engine (./cluster.sh start); its controller
#  log and engine log are renamed (what logrotate does), SIGHUP goes to the
#  controller: it keeps running, writes a new lpcontroller.log, the
#  engine's next output goes to a new engine-0.log, and a client round
#  trip works afterwards. Only processes this test started are signalled,
#  by pid.
set -u
BUILD=${1:?usage: log_sighup.sh BUILD_DIR}
. "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
lp_test log_sighup
cli_profile hup "hup$$"
cd "$ROOT" || exit 1

out=$(timeout 120 ./cluster.sh start -n 1 --profile "$NAME" --no-build 2>&1)
rc=$?
echo "$out"
[ "$rc" -eq 0 ] || { say "FAIL: ./cluster.sh start exited $rc"; show_logs; exit 1; }
CTRL_PID=$(tr -dc '0-9' < "$DIR/pid/lpcontroller.pid")
ENGINE_PIDS=$(pgrep -P "$CTRL_PID" | tr '\n' ' ')
FILE=$DIR/security/lp-client.json

mv "$DIR/log/lpcontroller.log" "$DIR/log/lpcontroller.log.old"
mv "$DIR/log/engine-0.log" "$DIR/log/engine-0.log.old"
kill -HUP "$CTRL_PID"
wait_for 20 test -s "$DIR/log/lpcontroller.log" \
    || fail "no new lpcontroller.log with content within 20 s of SIGHUP"
alive "$CTRL_PID" || { say "FAIL: the controller died of SIGHUP"; exit 1; }
grep -q 'reopen' "$DIR/log/lpcontroller.log" 2>/dev/null \
    || fail "the new lpcontroller.log does not say the logs were reopened"
say "after SIGHUP: $(cat "$DIR/log/lpcontroller.log" 2>/dev/null)"

got=$(timeout 60 "$BUILD/lpcall" "$FILE" execute 'io.stderr:write("after-hup-line\n") return 6 * 7' 2>&1) \
    || fail "no client round trip after SIGHUP: $got"
echo "$got" | grep -q '42' || fail "round trip after SIGHUP answered: $got"
wait_for 20 grep -q 'after-hup-line' "$DIR/log/engine-0.log" \
    || fail "the engine's output after SIGHUP is not in the new engine-0.log"
grep -q 'after-hup-line' "$DIR/log/engine-0.log.old" 2>/dev/null \
    && fail "the engine's output after SIGHUP went to the renamed file"

timeout 60 ./cluster.sh stop --profile "$NAME" >/dev/null 2>&1 || fail "./cluster.sh stop failed"
wait_gone "$CTRL_PID" 15 || fail "controller still running after stop"
CTRL_PID=""
finish
