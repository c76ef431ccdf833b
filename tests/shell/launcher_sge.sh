#!/usr/bin/env bash
#  launcher_sge.sh BUILD_DIR
#
#  Issue 13: --engines sge against the real Grid Engine. The test starts
#  its own one-host cell (sge_qmaster, sge_execd from Debian's packages,
#  in a network namespace of its own because they listen on every
#  address: tests/sge_daemons.sh); the cluster and its client run in that
#  namespace too. As a user would:
#  - ./cluster.sh start --engines sge -n 4 --launcher-opt time=300 submits
#    an array job (lp-launch-sge, qsub -terse) and returns once the 4
#    engines registered;
#  - the engines run inside Grid Engine: each sees JOB_ID = the job the
#    launcher recorded and SGE_TASK_ID = lp.id + 1;
#  - a load-balanced map of 40 items runs and is spread over the engines;
#  - lp.walltime_left () is in (0, 300] s (h_rt=300); a 10-minute
#    time_limit is refused with WalltimeExceeded;
#  - ./cluster.sh stop deletes the job (qdel): qstat lists nothing, the
#    engines and the controller are gone;
#  - the daemons are stopped by pid and the namespace removed.
#  Exits 77 only when not run as root or when `ip netns add` is refused;
#  a daemon that does not start fails the test, with its logs.
set -u
BUILD=${1:?usage: launcher_sge.sh BUILD_DIR}
. "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
. "$(dirname "${BASH_SOURCE[0]}")/../sge_daemons.sh"
lp_test launcher_sge
need_built lpcontroller lpengine
lua_setup
cli_profile sge "sge$$"
lp_tmpdir SD sged
cd "$ROOT" || exit 1

#  the cluster first (its stop needs qmaster), then the daemons
test_cleanup() {
    if [ -n "$CTRL_PID" ] && alive "$CTRL_PID"; then
        timeout 90 ip netns exec "$SGE_NS" "$CLI" stop --profile "$NAME" >/dev/null 2>&1
    fi
    sge_stop
}

sge_start "$SD"

#  1. start: submitted, 4 engines registered
T0=$SECONDS
if ! out=$(timeout 120 ip netns exec "$SGE_NS" "$CLI" start --engines sge -n 4 \
               --launcher-opt time=300 --profile "$NAME" --no-build 2>&1); then
    say "FAIL: ./cluster.sh start --engines sge exited: $out"
    show_logs; sge_logs; exit 1
fi
echo "$out"
read_cluster_pids "$DIR" || exit 1
say "./cluster.sh start --engines sge -n 4 returned after $((SECONDS - T0)) s"
JOB=$(tr -dc '0-9' < "$DIR/launcher/sge.jobid" 2>/dev/null)
[ -n "$JOB" ] || { fail "no job id in $DIR/launcher/sge.jobid"; show_logs; sge_logs; finish; }
grep -q "submitted job $JOB" "$DIR/log/launcher.log" 2>/dev/null \
    || fail "log/launcher.log does not say the job was submitted: $(cat "$DIR/log/launcher.log" 2>&1)"
running=$(in_ns qstat -s r 2>/dev/null | awk -v j="$JOB" '$1 == j { print $NF }' | sort | tr '\n' ' ')
[ "$running" = "1 2 3 4 " ] || fail "qstat: running tasks of job $JOB are '$running', not 1..4"

#  2.-4. inside Grid Engine, a map, the walltime
cat > "$DIR/sge.lua" <<'LUA'
local lp = require "luaparallel"
local rc = lp.connect (arg [1])
local job = arg [2]
local D = 60000
local function check (cond, ...)
    if not cond then error (string.format (...), 2) end
end
assert (rc:wait_for_engines (4, D))
local ids = rc:ids ()
check (#ids == 4 and ids [1] == 0 and ids [4] == 3, "ids %s", table.concat (ids, ","))

local all = rc:view ()
local where = all:execute ("return os.getenv ('JOB_ID') .. ' ' .. os.getenv ('SGE_TASK_ID') .. ' ' .. lp.id")
for i, w in ipairs (where) do
    local j, task, id = w:match ("^(%d+) (%d+) (%d+)$")
    check (j == job and tonumber (task) == tonumber (id) + 1,
           "engine %d: JOB_ID/SGE_TASK_ID/lp.id = %s (job %s)", ids [i], w, job)
end
print ("engines inside job " .. job .. ": " .. table.concat (where, ", "))

local lb = rc:balanced ()
lb.block = false
local items = {}
for i = 1, 40 do items [i] = i end
local r = lb:map ("function (x) lp.sleep (0.02) return x * x end", items)
local v = r:get (D)
check (#v == 40, "map gave %d values", #v)
for i = 1, 40 do check (v [i] == i * i, "map item %d: %s", i, tostring (v [i])) end
local used, n = {}, 0
for i = 1, r:count () do used [r:engine (i)] = true end
for _ in pairs (used) do n = n + 1 end
check (n >= 2, "the map ran on %d engine(s) only", n)
print (string.format ("map of 40 items in %d tasks on %d engines", r:count (), n))

local left = all:execute ("return lp.walltime_left ()")
for i, w in ipairs (left) do
    check (type (w) == "number" and w > 0 and w <= 300, "engine %d: walltime_left %s", ids [i], tostring (w))
end
print (string.format ("walltime left: %.0f s", left [1]))
lb.time_limit = 600000
local ok, e = pcall (function () return lb:apply ("function () return 1 end"):get (D) end)
check (not ok and type (e) == "table" and e.ename == "WalltimeExceeded",
       "a 10-minute task in a 5-minute job: %s", tostring (e))
print ("refused: " .. e.evalue)
LUA
if [ -n "$PRELOAD" ]; then
    set -- env LD_PRELOAD="$PRELOAD" ASAN_OPTIONS=detect_leaks=0
else
    set -- env
fi
if ! (cd "$DIR" && in_ns "$@" LUA_CPATH="$BUILD/lua/?.so" timeout 120 "$LUA" "$DIR/sge.lua" \
          "$DIR/security/lp-client.json" "$JOB") > "$DIR/sge.out" 2>&1; then
    fail "client script: $(cat "$DIR/sge.out")"
else
    sed "s/^/$LP_TEST_NAME: /" "$DIR/sge.out"
fi

EPIDS=""
for t in 0 1 2 3; do
    p=$(pgrep -f -- "--id $t --log $DIR/log/engine-$t.log" | head -n 1)
    [ -n "$p" ] && EPIDS="$EPIDS $p"
done
[ "$(echo $EPIDS | wc -w)" = 4 ] || fail "found engine pids '$EPIDS', not 4"
lp_track $EPIDS

#  5. stop deletes the job
T0=$SECONDS
out=$(timeout 120 ip netns exec "$SGE_NS" "$CLI" stop --profile "$NAME" 2>&1)
rc=$?
[ "$rc" -eq 0 ] || fail "./cluster.sh stop exited $rc: $out"
say "./cluster.sh stop returned after $((SECONDS - T0)) s"
left=$(in_ns qstat -u '*' 2>&1)
[ -z "$left" ] || fail "qstat still lists: $left"
grep -q "job $JOB deleted" "$DIR/log/launcher.log" || fail "launcher.log does not say the job was deleted"
wait_gone "$CTRL_PID" 15 || fail "controller $CTRL_PID still running after stop"
for p in $EPIDS; do
    wait_gone "$p" 15 || fail "engine pid $p still running after stop"
done
[ -e "$DIR/launcher/sge.jobid" ] && fail "launcher/sge.jobid left behind"
CTRL_PID=""

#  6. the daemons, stopped by pid; the namespace removed
[ "$FAILS" -eq 0 ] || sge_logs
NS=$SGE_NS D1=$SGE_QMASTER_PID D2=$SGE_EXECD_PID
sge_stop || fail "the daemons did not stop cleanly"
for p in $D1 $D2; do alive "$p" && fail "daemon pid $p still running"; done
ip netns list | grep -qw "$NS" && fail "namespace $NS left behind"
finish
