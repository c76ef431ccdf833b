#!/usr/bin/env bash
#  launcher_mpi.sh BUILD_DIR
#
#  The MPI launcher against the real Open MPI (Debian's openmpi-bin):
#  `./cluster.sh start --engines mpi -n 4` in a profile of its own. What a
#  user checks:
#    - the controller's child is mpiexec, whose 4 children are the engines
#      (no oversubscription error on 2 cores, no refusal as root);
#    - each engine's default memory cap is shared by the 4 ranks;
#    - the engines registered with ids 0..3, each id equal to its lp.rank,
#      lp.size == 4, and each engine's pid is one of mpiexec's children;
#    - a load-balanced map runs on all four and gives the right values;
#    - one engine killed (kill -9) leaves the other three running and
#      answering (keep_going, the launcher's default);
#    - engines started by hand: outside MPI lp.rank and lp.size are nil;
#      with PMI_RANK/PMI_SIZE (MPICH, Intel MPI) and LP_FIRST_ID the
#      engine asks for id LP_FIRST_ID + rank;
#    - `./cluster.sh stop` leaves no mpiexec, no engine, no Open MPI
#      session folder that the test started (checked by pid);
#    - `--hosts localhost:2` without -n: 2 engines, mpiexec --host; the
#      controller then killed -9: `./cluster.sh stop` still ends mpiexec
#      and its engines (the launcher's stop, by its record);
#    - 3 engines on 2 slots with oversubscribe=0: the start fails and says
#      why (Open MPI's message), leaving nothing running.
#  Open MPI must be installed (`./cluster.sh test` installs openmpi-bin):
#  without it the test fails, it does not skip.
set -u
BUILD=${1:?usage: launcher_mpi.sh BUILD_DIR}
. "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
lp_test launcher_mpi
cli_profile mpi "mpitest$$"
need_built lpcontroller lpengine lpcall
lua_setup
MPIEXEC=$(command -v mpiexec) \
    || { say "FAIL: mpiexec not found (Debian package openmpi-bin; ./cluster.sh test installs it)"; exit 1; }
"$MPIEXEC" --version 2>/dev/null | grep -qE 'Open MPI|OpenRTE' \
    || { say "FAIL: $MPIEXEC is not Open MPI's: $("$MPIEXEC" --version 2>&1 | head -n 1)"; exit 1; }
say "$("$MPIEXEC" --version 2>/dev/null | head -n 1)"
cd "$ROOT" || exit 1
#  Open MPI's session folder goes under our own TMPDIR, checked after stop
lp_tmpdir MPITMP mpitmp
HAND_PIDS=""

#  the launcher's log: mpiexec's and the engines' output
show_logs() {
    local f
    for f in "$DIR"/log/lpcontroller.log "$DIR"/log/launcher.log; do
        [ -f "$f" ] || continue
        echo "----- $(basename "$f") (last 30 lines) -----"
        tail -n 30 "$f"
    done
}

die() { say "FAIL: $*"; show_logs; exit 1; }

#  find_mpiexec N: MPI_PID, the controller's child that is mpiexec, and
#  RANK_PIDS, its N children (tracked: killed on exit if still running)
find_mpiexec() {
    local p
    MPI_PID=""
    for p in $ENGINE_PIDS; do
        [ "$(cat "/proc/$p/comm" 2>/dev/null)" = mpiexec ] && MPI_PID=$p
    done
    [ -n "$MPI_PID" ] || die "no mpiexec among the controller's children ($ENGINE_PIDS)"
    RANK_PIDS=$(pgrep -P "$MPI_PID" | tr '\n' ' ')
    lp_track $MPI_PID $RANK_PIDS
    say "mpiexec pid $MPI_PID, its children: $RANK_PIDS"
    [ "$(echo $RANK_PIDS | wc -w)" -eq "$1" ] \
        || die "mpiexec has $(echo $RANK_PIDS | wc -w) children, expected $1 engines"
}

# --- start -------------------------------------------------------------------
t0=$(date +%s%N)
TMPDIR=$MPITMP cli_start --engines mpi -n 4
say "started in $(( ($(date +%s%N) - t0) / 1000000 )) ms"
find_mpiexec 4
#  mpiexec keeps a session folder under TMPDIR while it runs (checked gone after stop)
[ -n "$(find "$MPITMP" -mindepth 2 -maxdepth 2 -name "pid.$MPI_PID")" ] \
    || fail "no Open MPI session folder pid.$MPI_PID under TMPDIR=$MPITMP while mpiexec runs"
for p in $RANK_PIDS; do
    [ "$(cat "/proc/$p/comm" 2>/dev/null)" = lpengine ] \
        || fail "mpiexec's child $p is '$(cat "/proc/$p/comm" 2>/dev/null)', not lpengine"
done

#  no --engine-memory: each rank's cap is 50 % of physical memory shared
#  by the 4 ranks of this host (OMPI_COMM_WORLD_LOCAL_SIZE), not 50 % each
phys=$(( $(getconf _PHYS_PAGES) * $(getconf PAGESIZE) ))
cap=$(( phys / 100 * 50 / 4 / 1048576 ))
wait_for 30 sh -c "[ \$(grep -c 'Lua memory cap $cap MB' '$DIR/log/launcher.log') -eq 4 ]" \
    || fail "launcher.log does not show 4 engines with a cap of $cap MB (50 % / 4 ranks): $(grep 'memory cap' "$DIR/log/launcher.log" | head -n 4)"

# --- ranks, ids, a load-balanced map ------------------------------------------
cat > "$DIR/mpi.lua" <<'LUA'
local luaparallel = require "luaparallel"
local rc = luaparallel.connect (arg [1])
assert (rc:wait_for_engines (4, 60000), "4 engines did not register")
local ids = rc:ids ()
table.sort (ids)
print ("ids " .. table.concat (ids, " "))
local dv = rc:view ()
dv.wait_timeout = 60000
local function place ()
    local f = io.open ("/proc/self/stat")
    local pid = f:read ("n")
    f:close ()
    return {lp.id, lp.rank == nil and "nil" or lp.rank, lp.size == nil and "nil" or lp.size, pid}
end
for _, row in ipairs (dv:apply (place)) do
    print ("engine " .. table.concat (row, " "))
end
local lb = rc:balanced ()
lb.wait_timeout = 60000
lb.block = false
local items = {}
for i = 1, 16 do items [i] = i end
local r = lb:map (function (x) lp.sleep (0.05) return x * x end, items)
local values = r:get ()
local used, sum = {}, 0
for i = 1, r:count () do used [r:engine (i)] = true end
for _, v in ipairs (values) do sum = sum + v end
local engines = {}
for id in pairs (used) do engines [#engines + 1] = id end
table.sort (engines)
print ("map " .. #values .. " values, sum " .. sum .. ", engines " .. table.concat (engines, " "))
LUA
out=$(run_lua "$BUILD/lua/?.so" 120 "$DIR/mpi.lua" "$DIR/security/lp-client.json" 2>&1)
rc=$?
echo "$out"
[ "$rc" -eq 0 ] || die "the Lua client failed (status $rc)"
echo "$out" | grep -qx 'ids 0 1 2 3' || fail "engine ids are not 0 1 2 3"
for k in 0 1 2 3; do
    row=$(echo "$out" | grep -E "^engine $k " | head -n 1)
    set -- $row
    [ "${3:-}" = "$k" ] || fail "engine $k: lp.rank is '${3:-}', expected $k"
    [ "${4:-}" = 4 ] || fail "engine $k: lp.size is '${4:-}', expected 4"
    case " $RANK_PIDS " in
        *" ${5:-none} "*) ;;
        *) fail "engine $k runs as pid '${5:-}', not one of mpiexec's children ($RANK_PIDS)" ;;
    esac
done
#  16 squares: 1496; 16 tasks of 50 ms given out at once reach all four
echo "$out" | grep -qx 'map 16 values, sum 1496, engines 0 1 2 3' \
    || fail "the load-balanced map did not give 16 squares (sum 1496) from engines 0 1 2 3"

# --- one engine dies: the others go on ----------------------------------------
pid3=$(echo "$out" | awk '$1 == "engine" && $2 == 3 {print $5}')
kill -9 "$pid3" 2>/dev/null
wait_gone "$pid3" 10 || fail "engine 3 (pid $pid3) did not die on SIGKILL"
#  the controller notices (heartbeat) and lists 3 engines, which all answer
wait_for 30 sh -c "\"$BUILD/lpcall\" \"$DIR/security/lp-client.json\" -n 0 ids | grep -c . | grep -qx 3" \
    || fail "the controller does not list 3 engines 30 s after engine 3 was killed"
out=$("$BUILD/lpcall" "$DIR/security/lp-client.json" -n 3 execute 'lp.rank' 2>&1) \
    || fail "the 3 remaining engines do not answer: $out"
echo "$out"
[ "$(echo "$out" | grep -cE '^engine ([0-2]): \1$')" -eq 3 ] \
    || fail "expected engines 0, 1, 2 to answer their rank, got: $out"
alive "$MPI_PID" || fail "mpiexec ended when one engine died (keep_going should be the default)"

# --- engines by hand: no MPI, and PMI_* with LP_FIRST_ID ------------------------
EFILE=$DIR/security/lp-engine.json
env -u OMPI_COMM_WORLD_RANK -u PMIX_RANK -u PMI_RANK "$BUILD/lpengine" --file "$EFILE" \
    > "$MPITMP/plain.log" 2>&1 &
HAND_PIDS="$HAND_PIDS $!"
env -u OMPI_COMM_WORLD_RANK -u PMIX_RANK PMI_RANK=2 PMI_SIZE=8 LP_FIRST_ID=20 \
    "$BUILD/lpengine" --file "$EFILE" > "$MPITMP/pmi.log" 2>&1 &
HAND_PIDS="$HAND_PIDS $!"
lp_track $HAND_PIDS
out=$("$BUILD/lpcall" "$DIR/security/lp-client.json" -n 5 execute \
      'tostring (lp.rank) .. " " .. tostring (lp.size)' 2>&1) \
    || fail "engines started by hand do not answer: $out"
echo "$out"
echo "$out" | grep -qx 'engine 22: "2 8"' || fail "PMI_RANK=2 PMI_SIZE=8 LP_FIRST_ID=20: expected engine 22 with rank 2 of 8"
echo "$out" | grep -qE '^engine [0-9]+: "nil nil"$' \
    || fail "an engine outside MPI should have lp.rank and lp.size nil"
for p in $HAND_PIDS; do stop_pid "$p" lpengine || fail "hand-started engine $p did not stop on SIGTERM"; done

# --- stop ---------------------------------------------------------------------
t0=$(date +%s%N)
out=$(timeout 60 "$CLI" stop --profile "$NAME" 2>&1)
rc=$?
echo "$out"
say "stopped in $(( ($(date +%s%N) - t0) / 1000000 )) ms"
[ "$rc" -eq 0 ] || fail "./cluster.sh stop exited $rc"
echo "$out" | grep -qi 'killed' && fail "stop had to kill the controller: $out"
for p in $CTRL_PID $MPI_PID $RANK_PIDS; do
    wait_gone "$p" 15 || fail "pid $p ($(tr '\0' ' ' < "/proc/$p/cmdline" 2>/dev/null)) still running after ./cluster.sh stop"
done
left=$(strays "$LP_HOME" | tr '\n' ' ')
[ -z "$left" ] || fail "processes naming the profile still run after stop: $left"
#  the 3 engines left ended cleanly (unregistered), none with a sanitizer report
n=$(grep -cE 'lpengine\[[0-2]\]\).* unregistered$' "$DIR/log/launcher.log")
[ "$n" -eq 3 ] || fail "$n of the 3 remaining engines logged 'unregistered' on stop"
grep -qE 'Sanitizer|runtime error' "$DIR/log/launcher.log" && fail "a sanitizer report in launcher.log"
session=$(find "$MPITMP" -mindepth 1 -maxdepth 2 -name 'pid.*' 2>/dev/null)
[ -z "$session" ] || fail "Open MPI's session folder is left behind: $session"
CTRL_PID=""
ENGINE_PIDS=""

# --- hosts: the count from --hosts, passed to Open MPI as --host ----------------
cli_start --engines mpi --hosts localhost:2
find_mpiexec 2
grep -q -- '--host localhost:2' "$DIR/log/launcher.log" || fail "launcher.log does not show mpiexec --host localhost:2"
out=$("$BUILD/lpcall" "$DIR/security/lp-client.json" -n 2 execute 'lp.rank .. "/" .. lp.size' 2>&1) \
    || fail "--hosts localhost:2: the engines do not answer: $out"
echo "$out"
[ "$out" = "$(printf 'engine 0: "0/2"\nengine 1: "1/2"')" ] || fail "--hosts localhost:2: expected engines 0 and 1 of 2"
#  the controller killed -9: ./cluster.sh stop runs the launcher's stop
#  itself (from launcher/launcher.env), which ends mpiexec by its record
kill -9 "$CTRL_PID"
wait_gone "$CTRL_PID" 15 || fail "controller $CTRL_PID did not die on SIGKILL"
alive "$MPI_PID" || fail "mpiexec ended with its controller (it should wait for stop)"
out=$(timeout 60 "$CLI" stop --profile "$NAME" 2>&1) || fail "stop after kill -9 failed: $out"
echo "$out"
for p in $MPI_PID $RANK_PIDS; do
    wait_gone "$p" 15 || fail "pid $p still running after ./cluster.sh stop (controller killed -9)"
done
[ -e "$DIR/launcher/mpiexec.pid" ] && fail "the launcher's stop left its record launcher/mpiexec.pid"
CTRL_PID=""
ENGINE_PIDS=""

# --- an mpiexec that refuses: the start fails with Open MPI's reason ------------
out=$(timeout 120 "$CLI" start --engines mpi -n 3 --hosts localhost:2 --launcher-opt oversubscribe=0 \
      --profile "$NAME" --no-build 2>&1)
rc=$?
echo "$out" | tail -n 5
[ "$rc" -ne 0 ] || fail "3 engines on 2 slots without oversubscribe started"
# the cause, not the advice that ends Open MPI's message (--oversubscribe)
echo "$out" | grep -qi 'not enough slots available' \
    || fail "the failed start does not pass on Open MPI's reason (not enough slots): $out"
left=$(strays "$LP_HOME" | tr '\n' ' ')
[ -z "$left" ] || fail "the failed start left processes running: $left"
finish
