#!/usr/bin/env bash
#  lpsh_tmux.sh BUILD_DIR
#
#  Issue 4, "done" 2: lpsh in a terminal (a tmux server of its own, -L
#  with a unique socket name): banner and prompt, line editing (Ctrl-A,
#  insert), history recall with the up arrow, Ctrl-C at the prompt drops
#  the line, a multi-line %%px cell, a %px loop printing every ~100 ms
#  whose lines show while it still runs (capture-pane before it ends),
#  Ctrl-C stopping a remote infinite loop after which the next %px works,
#  the history file in the profile, Ctrl-D exiting with status 0. Issue
#  14: the progress bar of a 2,000-task load-balanced map and of a %px on
#  4 engines while they run, erased after; none when stdout is a file.
#  Waits poll the pane with deadlines; only this test's tmux server and
#  cluster are stopped, by socket name and pid.
set -u
BUILD=${1:?usage: lpsh_tmux.sh BUILD_DIR}
. "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
lp_test lpsh_tmux
SOCK=lpshtest$$_$RANDOM
TMUX_STARTED=0
# this test's own tmux server, by its socket name
test_cleanup() { [ "$TMUX_STARTED" = 1 ] && tmux -L "$SOCK" kill-server 2>/dev/null; }

command -v tmux > /dev/null || { say "FAIL: tmux not installed"; exit 1; }
need_built lpcontroller lpengine lpsh lpstatus
lp_tmpdir DIR shtmux
start_local_cluster "$DIR" 4
FILE=$DIR/security/lp-client.json

pane() { tmux -L "$SOCK" capture-pane -p -J -S -2000 2>/dev/null | sed 's/[[:space:]]*$//'; }
keys() { tmux -L "$SOCK" send-keys "$@"; }
#  wait_pane REGEX SECONDS [COUNT]: until the pane has COUNT (default 1)
#  lines matching REGEX
wait_pane() {
    local re=$1 deadline=$((SECONDS + $2)) want=${3:-1} n
    while true; do
        n=$(pane | grep -cE -- "$re")
        [ "$n" -ge "$want" ] && return 0
        [ "$SECONDS" -ge "$deadline" ] && return 1
        sleep 0.1
    done
}
show() { say "pane:"; pane | grep -v '^$' | tail -n 40; }
#  the last non-empty pane line is the prompt
wait_prompt() {
    local deadline=$((SECONDS + $1))
    while [ "$(pane | grep -v '^$' | tail -n 1)" != ">" ]; do
        [ "$SECONDS" -ge "$deadline" ] && return 1
        sleep 0.1
    done
}

tmux -L "$SOCK" -f /dev/null new-session -d -x 200 -y 50 \
    "cd '$DIR' && '$BUILD/lpsh' --file '$FILE' --wait 4; echo LPSH-EXIT=\$?; sleep 600" \
    || { say "FAIL: tmux new-session"; exit 1; }
TMUX_STARTED=1

# --- banner and prompt ----------------------------------------------------------
wait_pane '^lpsh .*4 engines' 30 || { show; fail "no banner naming 4 engines"; }
wait_prompt 10 || { show; fail "no '> ' prompt"; }

# --- line editing: type the end first, go to the start, insert --------------------
keys 'rint("edited-" .. 6 * 7)' C-a 'p' Enter
wait_pane '^edited-42$' 10 || { show; fail "line editing (Ctrl-A, insert) did not give edited-42"; }
wait_prompt 10
# --- history: the up arrow recalls the line -----------------------------------
keys Up Enter
wait_pane '^edited-42$' 10 2 || { show; fail "up arrow did not recall the last line"; }
wait_prompt 10
# --- Ctrl-C at the prompt drops the line --------------------------------------
keys 'this is not lua' C-c
wait_prompt 10 || { show; fail "no fresh prompt after Ctrl-C at the prompt"; }
keys 'print("clean")' Enter
wait_pane '^clean$' 10 || { show; fail "line after Ctrl-C did not run"; }
pane | grep -q 'SyntaxError' && { show; fail "the line dropped with Ctrl-C was run"; }
wait_prompt 10

# --- a multi-line %%px cell ---------------------------------------------------------
keys '%%px --targets 0,2' Enter
wait_pane '^\.\.\.:$' 10 || { show; fail "no cell prompt '...: ' after %%px"; }
keys 'local q = 3' Enter 'return q * q + lp.id' Enter Enter
wait_pane '^Out\[2:1\]: 11$' 30 || { show; fail "%%px cell: no Out[2:1]: 11"; }
pane | grep -q '^Out\[0:1\]: 9$' || { show; fail "%%px cell: no Out[0:1]: 9"; }
wait_prompt 10

# --- streaming: lines show while the loop still runs --------------------------
keys '%px for i = 1, 30 do print("tick-" .. i) local t = os.clock() + 0.1 while os.clock() < t do end end' Enter
if wait_pane '^\[stdout:[0-3]\] tick-3$' 30; then
    if pane | grep -q 'tick-30$'; then
        fail "tick-30 was already there when tick-3 first showed: output not streamed"
    fi
    [ "$(pane | grep -v '^$' | tail -n 1)" = ">" ] && fail "prompt back before the loop ended"
else
    show; fail "no streamed [stdout:N] tick-3 line"
fi
wait_pane '^\[stdout:[0-3]\] tick-30$' 60 4 || { show; fail "not all engines printed tick-30"; }
wait_prompt 10 || { show; fail "no prompt after the loop"; }

# --- Ctrl-C stops a remote infinite loop --------------------------------------
keys '%px while true do end' Enter
deadline=$((SECONDS + 30))
until [ "$("$BUILD/lpstatus" --file "$FILE" 2>/dev/null | grep -c ' busy ')" -ge 4 ]; do
    [ "$SECONDS" -ge "$deadline" ] && { fail "engines never busy with the loop"; break; }
    sleep 0.1
done
keys C-c
wait_pane '^\[engines 0-3\] Interrupted' 30 || { show; fail "Ctrl-C: no '[engines 0-3] Interrupted' summary"; }
wait_prompt 10 || { show; fail "no prompt after Ctrl-C"; }
keys '%px return "after-" .. lp.id' Enter
wait_pane '^Out\[3:[0-9]+\]: "after-3"$' 30 || { show; fail "%px after the interrupt did not work"; }
wait_prompt 10

# --- Ctrl-C stops a local infinite loop (as lua does) ---------------------------
keys 'while true do end' Enter
SH_PID=$(tmux -L "$SOCK" display-message -p '#{pane_pid}')
LPSH_PID=$(pgrep -P "$SH_PID" lpsh | head -n 1)
deadline=$((SECONDS + 20))
until [ -n "$LPSH_PID" ] && [ "$(awk '{print $3}' "/proc/$LPSH_PID/stat" 2>/dev/null)" = R ]; do
    [ "$SECONDS" -ge "$deadline" ] && { fail "lpsh never ran the local loop"; break; }
    sleep 0.05
done
keys C-c
wait_pane '^\[local\] LuaError: interrupted!$' 20 || { show; fail "Ctrl-C did not stop the local loop"; }
wait_prompt 10 || { show; fail "no prompt after stopping the local loop"; }

# --- progress bar: a 2,000-task load-balanced map, then %px on 4 engines ------
# (issue 14) Each task spins 4 ms, so the map lasts seconds and the bar,
# drawn once a wait passes 300 ms, is seen while it runs; it is erased at
# the end (no bar line left on the screen).
BAR_RE='^\[[=> ]+\] [0-9]+/2000 +[0-9]+%  [0-9.]+/s  elapsed [0-9.]+s  ETA ([0-9.]+s|[0-9]+m[0-9]+s|\?)$'
keys 'lb = rc:balanced () t = {} for i = 1, 2000 do t[i] = i end' Enter
wait_prompt 10
keys 'm = lb:map ("function (x) local e = os.clock () + 0.004 while os.clock () < e do end return x * 2 end", t) print ("map-done " .. #m .. " " .. m[2000])' Enter
if wait_pane "$BAR_RE" 60; then
    first=$(pane | grep -E "$BAR_RE" | sed -E 's|.*\] ([0-9]+)/2000.*|\1|')
    [ "$first" -lt 2000 ] || fail "the first bar seen already said 2000/2000"
else
    show; fail "no progress bar 'N/2000 ... elapsed ... ETA' while the map ran"
fi
wait_pane '^map-done 2000 4000$' 120 || { show; fail "the 2,000-task map did not finish"; }
wait_prompt 10 || { show; fail "no prompt after the map"; }
pane | grep -qE '[0-9]+/2000 ' && { show; fail "the progress bar was not erased after the map"; }
keys '%px local e = os.clock () + 1 while os.clock () < e do end return "px-" .. lp.id' Enter
wait_pane '^\[[=> ]+\] [0-4]/4 ' 30 || { show; fail "no progress bar 'N/4' during a %px on 4 engines"; }
wait_pane '^Out\[3:[0-9]+\]: "px-3"$' 60 || { show; fail "%px after the bar did not finish"; }
wait_prompt 10
pane | grep -qE '^\[[=> ]+\] [0-4]/4 ' && { show; fail "the %px progress bar was not erased"; }

# --- no bar when stdout is not a terminal (stdin still is) ----------------------
tmux -L "$SOCK" new-window -d "'$BUILD/lpsh' --file '$FILE' -e 'local t = {} for i = 1, 2000 do t[i] = i end local m = rc:balanced ():map (\"function (x) local e = os.clock () + 0.001 while os.clock () < e do end return x end\", t) print (\"piped \" .. #m)' > '$DIR/piped' 2>&1; echo \$? > '$DIR/piped.rc'"
deadline=$((SECONDS + 120))
until [ -s "$DIR/piped.rc" ]; do
    [ "$SECONDS" -ge "$deadline" ] && { fail "lpsh with stdout to a file did not end"; break; }
    sleep 0.1
done
[ "$(cat "$DIR/piped.rc" 2>/dev/null)" = 0 ] || fail "lpsh with stdout to a file exited $(cat "$DIR/piped.rc" 2>/dev/null)"
[ "$(cat "$DIR/piped")" = "piped 2000" ] \
    || fail "stdout to a file (stdin a terminal) got more than the output: $(od -c "$DIR/piped" | head -n 5)"

# --- history file and exit ----------------------------------------------------
grep -q 'edited-' "$DIR/lpsh_history" 2>/dev/null || fail "no $DIR/lpsh_history with the typed lines"
keys C-d
wait_pane '^LPSH-EXIT=0$' 15 || { show; fail "Ctrl-D did not exit lpsh with status 0"; }

tmux -L "$SOCK" kill-server 2>/dev/null
TMUX_STARTED=0
stop_local_cluster || fail "the cluster did not stop cleanly"
finish
