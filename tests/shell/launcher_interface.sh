#!/usr/bin/env bash
#  launcher_interface.sh BUILD_DIR
#
#  The launcher interface (--engines KIND, docs/operations.md "Launchers")
#  with a launcher kind of the test's own: a script lp-launch-fake in a
#  folder named by LP_LAUNCHER_DIR, which starts local lpengines the way a
#  remote launcher would (from LP_ENGINE, LP_ENGINE_FILE, LP_ENGINE_ARGS,
#  LP_FIRST_ID), records their pids in LP_STATE_DIR and stops them by pid.
#  Through ./cluster.sh, as a user would:
#  - start --engines fake -n 3 --launcher-opt color=blue: 3 engines
#    register, the script saw the documented environment, ids 0..2 answer;
#    stop runs the script's stop (no engine left, its record removed);
#  - a launcher that fails (exit 3, a message on stderr) fails the start
#    with that message and the launcher's name, and leaves nothing running;
#  - engines that do not register within --ready-timeout fail the start,
#    quoting the launcher; --restore after a kill -9 takes the launcher's
#    engines over without starting them again;
#  - engines = "fake" and launcher = { ... } in lpcontroller_config.lua;
#    the controller killed -9: ./cluster.sh stop runs the script's stop;
#  - an unknown kind is refused by name; --engines local still works.
set -u
BUILD=${1:?usage: launcher_interface.sh BUILD_DIR}
. "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
lp_test launcher_interface
cli_profile launch "launch$$"
need_built lpcontroller lpengine lpcall
lp_tmpdir KINDS kinds
export LP_LAUNCHER_DIR=$KINDS
cd "$ROOT" || exit 1

cat > "$KINDS/lp-launch-fake" <<'EOF'
#!/usr/bin/env bash
#  A launcher for the test: local engines, recorded and stopped by pid.
set -u
case $1 in
start)
    env | grep '^LP_' | sort > "$LP_STATE_DIR/env.seen"
    if [ -n "${LP_OPT_FAIL:-}" ]; then
        echo "lp-launch-fake: cannot reach host bogus-host-$LP_OPT_FAIL" >&2
        exit 3
    fi
    #  short=K: K engines fewer than asked (they never register)
    for (( i = 0; i < LP_N - ${LP_OPT_SHORT:-0}; i++ )); do
        # shellcheck disable=SC2086  # LP_ENGINE_ARGS is a list of words
        "$LP_ENGINE" --file "$LP_ENGINE_FILE" --id $(( LP_FIRST_ID + i )) $LP_ENGINE_ARGS \
            </dev/null >> "$LP_LOG_DIR/fake-engine-$i.log" 2>&1 &
        echo $! >> "$LP_STATE_DIR/pids"
    done
    echo "lp-launch-fake: started $(( LP_N - ${LP_OPT_SHORT:-0} )) engines"
    ;;
stop)
    env | grep '^LP_' | sort > "$LP_STATE_DIR/env.stop"
    [ -f "$LP_STATE_DIR/pids" ] || exit 0
    while read -r pid; do kill -TERM "$pid" 2>/dev/null; done < "$LP_STATE_DIR/pids"
    while read -r pid; do
        for (( t = 0; t < 200; t++ )); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.05      # poll interval
        done
        kill -KILL "$pid" 2>/dev/null
    done < "$LP_STATE_DIR/pids"
    rm -f "$LP_STATE_DIR/pids"
    echo "lp-launch-fake: stopped"
    ;;
esac
EOF
chmod 755 "$KINDS/lp-launch-fake"

#  the engine pids the fake launcher recorded
fake_pids() { cat "$DIR/launcher/pids" 2>/dev/null | tr '\n' ' '; }

# --- a launcher's engines ----------------------------------------------------
t0=$(date +%s%N)
cli_start --engines fake -n 3 --launcher-opt color=blue
say "start --engines fake -n 3: $(( ($(date +%s%N) - t0) / 1000000 )) ms"
echo "$CLI_OUT" | grep -qE '\b3 engines registered' || fail "start did not say 3 engines registered"
seen=$DIR/launcher/env.seen
for want in LP_N=3 LP_FIRST_ID=0 LP_OPT_COLOR=blue "LP_ENGINE=$BUILD/lpengine" \
            "LP_ENGINE_FILE=$DIR/security/lp-engine.json" "LP_PROFILE_DIR=$DIR" \
            "LP_STATE_DIR=$DIR/launcher" "LP_LOG_DIR=$DIR/log"; do
    grep -qxF "$want" "$seen" || fail "the launcher did not get $want: $(cat "$seen")"
done
grep -qE '^LP_ENGINE_ARGS=.*--lost-exit [0-9]+' "$seen" || fail "LP_ENGINE_ARGS lacks --lost-exit"
[ "$(stat -c %a "$DIR/launcher")" = 700 ] || fail "LP_STATE_DIR is not mode 700"
[ -f "$DIR/launcher/launcher.env" ] || fail "no launcher record launcher/launcher.env"
grep -q 'lp-launch-fake: started 3 engines' "$DIR/log/launcher.log" \
    || fail "the launcher's output is not in log/launcher.log"
PIDS=$(fake_pids)
lp_track $PIDS
[ "$(echo $PIDS | wc -w)" -eq 3 ] || fail "the launcher recorded '$PIDS', expected 3 pids"
out=$("$BUILD/lpcall" "$DIR/security/lp-client.json" -n 3 execute 'return lp.id' 2>&1) \
    || fail "execute on the launcher's engines failed: $out"
echo "$out"
[ "$(echo "$out" | sort)" = "$(printf 'engine 0: 0\nengine 1: 1\nengine 2: 2')" ] \
    || fail "expected engines 0, 1, 2 answering their ids, got: $out"

out=$(timeout 90 "$CLI" stop --profile "$NAME" 2>&1) || fail "stop exited $?: $out"
echo "$out"
for p in $CTRL_PID $PIDS; do
    wait_gone "$p" 15 || fail "pid $p still running after ./cluster.sh stop"
done
CTRL_PID=""; ENGINE_PIDS=""
grep -q 'lp-launch-fake: stopped' "$DIR/log/launcher.log" || fail "the launcher's stop did not run"
[ -f "$DIR/launcher/launcher.env" ] && fail "launcher.env left after a clean stop"

# --- a launcher that fails --------------------------------------------------
out=$(timeout 90 "$CLI" start --engines fake -n 2 --launcher-opt fail=7 --profile "$NAME" \
      --no-build 2>&1)
rc=$?
echo "$out"
[ "$rc" -ne 0 ] || fail "start succeeded although the launcher failed"
echo "$out" | grep -q 'launcher fake' || fail "the error does not name the launcher: $out"
echo "$out" | grep -q 'bogus-host-7' || fail "the error does not quote what the launcher printed: $out"
pid=$( { tr -dc '0-9' < "$DIR/pid/lpcontroller.pid"; } 2>/dev/null)
#  (the daemon reports at once, then stops its launcher and exits)
if [ -n "$pid" ]; then
    lp_track "$pid"
    wait_gone "$pid" 30 || fail "the controller still runs 30 s after its failed start"
fi

# --- engines that do not register within --ready-timeout ------------------------
out=$(timeout 90 "$CLI" start --engines fake -n 2 --launcher-opt short=1 --ready-timeout 3 \
      --profile "$NAME" --no-build 2>&1)
rc=$?
echo "$out"
[ "$rc" -ne 0 ] || fail "start succeeded with 1 of 2 engines"
echo "$out" | grep -q 'only 1 of 2 engines registered within 3 s; launcher fake said: lp-launch-fake: started 1 engines' \
    || fail "the timeout error does not say how many registered and what the launcher said: $out"
pid=$( { tr -dc '0-9' < "$DIR/pid/lpcontroller.pid"; } 2>/dev/null)
if [ -n "$pid" ]; then
    lp_track "$pid"
    wait_gone "$pid" 30 || fail "the controller still runs 30 s after its failed start"
fi
[ -f "$DIR/launcher/pids" ] && fail "the launcher's stop did not run after the timeout"

# --- the controller killed: --restore takes its launcher's engines over ---------
cli_start --engines fake -n 2 --launcher-opt color=red
PIDS=$(fake_pids)
lp_track $PIDS
starts=$(grep -c 'lp-launch-fake start$' "$DIR/log/launcher.log")
kill -9 "$CTRL_PID"
wait_gone "$CTRL_PID" 10 || fail "controller survived kill -9"
#  the kind, count and options come from the dead controller's record
cli_start --restore
echo "$CLI_OUT" | grep -qE '\b2 engines registered' || fail "--restore: the 2 engines did not register again"
[ "$(grep -c 'lp-launch-fake start$' "$DIR/log/launcher.log")" -eq "$starts" ] \
    || fail "--restore ran the launcher's start again (engines started twice)"
[ "$(fake_pids)" = "$PIDS" ] || fail "--restore: engine pids $(fake_pids), expected the same $PIDS"
out=$(timeout 90 "$CLI" stop --profile "$NAME" 2>&1) || fail "stop exited $?: $out"
for p in $CTRL_PID $PIDS; do wait_gone "$p" 15 || fail "pid $p left after stop"; done
grep -qxF LP_OPT_COLOR=red "$DIR/launcher/env.stop" \
    || fail "the restored controller's stop lacked the recorded option color=red: $(cat "$DIR/launcher/env.stop")"
CTRL_PID=""; ENGINE_PIDS=""

# --- config file, and stop after the controller was killed -------------------
cat > "$DIR/lpcontroller_config.lua" <<'EOF'
engines = "fake"
launcher = { color = "green", size = 2 }
EOF
cli_start -n 2
grep -qxF LP_OPT_COLOR=green "$DIR/launcher/env.seen" || fail "config file's launcher.color not given"
grep -qxF LP_OPT_SIZE=2 "$DIR/launcher/env.seen" || fail "config file's launcher.size not given"
PIDS=$(fake_pids)
lp_track $PIDS
kill -9 "$CTRL_PID"
wait_gone "$CTRL_PID" 10 || fail "controller survived kill -9"
for p in $PIDS; do alive "$p" || fail "engine $p ended with its controller (it should not)"; done
out=$(timeout 90 "$CLI" stop --profile "$NAME" 2>&1) || fail "stop after kill -9 exited $?: $out"
echo "$out"
echo "$out" | grep -q 'launcher fake' || fail "stop did not say it ran the launcher's stop: $out"
for p in $PIDS; do wait_gone "$p" 15 || fail "engine $p still running after stop"; done
CTRL_PID=""; ENGINE_PIDS=""
rm -f "$DIR/lpcontroller_config.lua"

# --- a config file that says nonsense is refused, naming the key -------------
for bad in 'engines = {}' 'launcher = "hosts=a"' 'launcher = { hosts = true }'; do
    printf '%s\n' "$bad" > "$DIR/lpcontroller_config.lua"
    out=$(timeout 60 "$CLI" start --profile "$NAME" --no-build 2>&1) \
        && fail "config '$bad' was accepted"
    key=${bad%% *}
    echo "$out" | grep -q "lpcontroller_config.lua: $key must be" \
        || fail "config '$bad': the error does not name $key: $out"
done
rm -f "$DIR/lpcontroller_config.lua"

# --- unknown kind; local ------------------------------------------------------
out=$(timeout 60 "$CLI" start --engines nosuch -n 1 --profile "$NAME" --no-build 2>&1) \
    && fail "an unknown launcher was accepted"
echo "$out"
echo "$out" | grep -q "unknown launcher 'nosuch'" || fail "unclear error for an unknown kind: $out"
cli_start --engines local -n 2
echo "$CLI_OUT" | grep -qE '\b2 engines registered' || fail "--engines local -n 2 did not register 2"
[ "$(echo $ENGINE_PIDS | wc -w)" -eq 2 ] || fail "--engines local: not 2 engine children"
out=$(timeout 60 "$CLI" stop --profile "$NAME" 2>&1) || fail "stop exited $?: $out"
for p in $CTRL_PID $ENGINE_PIDS; do wait_gone "$p" 15 || fail "pid $p left after stop"; done
CTRL_PID=""; ENGINE_PIDS=""
finish
