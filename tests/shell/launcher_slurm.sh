#!/usr/bin/env bash
#  launcher_slurm.sh BUILD_DIR
#
#  Issue 13: --engines slurm against the real Slurm. The test starts its
#  own one-node Slurm cluster (munged, slurmctld, slurmd from Debian's
#  packages, configured in a temporary folder: tests/slurm_daemons.sh),
#  then, as a user would:
#  - ./cluster.sh start --engines slurm -n 4 --slurm-time 5 submits a job
#    array (lp-launch-slurm) and returns once the 4 engines registered;
#    squeue lists the job's 4 tasks running;
#  - the engines run inside Slurm: each sees SLURM_ARRAY_JOB_ID = the job
#    the launcher recorded and SLURM_ARRAY_TASK_ID = its lp.id;
#  - a load-balanced map of 40 items runs and is spread over the engines;
#  - lp.walltime_left () is in (0, 300] s (a 5-minute job); a task with a
#    10-minute time_limit is refused with WalltimeExceeded naming its
#    engine, one with a 10 s limit runs;
#  - ./cluster.sh stop cancels the job: squeue lists nothing, the engines
#    and the controller are gone;
#  - a partition Slurm does not know fails the start with sbatch's words;
#  - slurm_mode=srun: one job whose step srun starts 2 engines (ids from
#    SLURM_PROCID); the controller is killed -9 and ./cluster.sh stop
#    still cancels the job;
#  - the daemons are stopped by pid at the end, and are gone.
#  Exits 77 only when not run as root (slurmd starts jobs as their user);
#  a daemon that does not start fails the test, with its logs.
set -u
BUILD=${1:?usage: launcher_slurm.sh BUILD_DIR}
. "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
. "$(dirname "${BASH_SOURCE[0]}")/../slurm_daemons.sh"
lp_test launcher_slurm
need_built lpcontroller lpengine
lua_setup
cli_profile slurm "slurm$$"
lp_tmpdir SD slurmd
cd "$ROOT" || exit 1

#  the cluster first (its stop needs slurmctld), then the daemons
test_cleanup() {
    if [ -n "$CTRL_PID" ] && alive "$CTRL_PID"; then
        timeout 90 "$CLI" stop --profile "$NAME" >/dev/null 2>&1
    fi
    slurm_stop
}
show_slurm() { show_logs; slurm_logs; }

slurm_start "$SD"

#  1. start: submitted, 4 engines registered
T0=$SECONDS
cli_start --engines slurm -n 4 --slurm-time 5
say "./cluster.sh start --engines slurm -n 4 returned after $((SECONDS - T0)) s"
JOB=$(tr -dc '0-9' < "$DIR/launcher/slurm.jobid" 2>/dev/null)
[ -n "$JOB" ] || { fail "no job id in $DIR/launcher/slurm.jobid"; show_slurm; finish; }
grep -q "submitted batch job $JOB" "$DIR/log/launcher.log" 2>/dev/null \
    || fail "log/launcher.log does not say the job was submitted: $(cat "$DIR/log/launcher.log" 2>&1)"
running=$(squeue -h -j "$JOB" -t R -o %i | sort | tr '\n' ' ')
[ "$running" = "${JOB}_0 ${JOB}_1 ${JOB}_2 ${JOB}_3 " ] \
    || fail "squeue: running tasks of job $JOB are '$running', not ${JOB}_0..3"

#  2.-4. inside Slurm, a map, the walltime
cat > "$DIR/slurm.lua" <<'LUA'
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
local where = all:execute ("return os.getenv ('SLURM_ARRAY_JOB_ID') .. ' ' .. os.getenv ('SLURM_ARRAY_TASK_ID') .. ' ' .. lp.id")
for i, w in ipairs (where) do
    local j, task, id = w:match ("^(%d+) (%d+) (%d+)$")
    check (j == job and task == id, "engine %d: SLURM_ARRAY_JOB_ID/TASK_ID/lp.id = %s (job %s)", ids [i], w, job)
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
local used = {}
for i = 1, r:count () do used [r:engine (i)] = true end
local n = 0
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
check (tostring (e.evalue):find ("engine %d+%)"), "evalue names no engine: %s", tostring (e.evalue))
print ("refused: " .. e.evalue)
lb.time_limit = 10000
check (lb:apply ("function () return 7 end"):get (D) == 7, "a 10 s task did not run")
LUA
if ! run_lua "$BUILD/lua/?.so" 120 "$DIR/slurm.lua" "$DIR/security/lp-client.json" "$JOB" > "$DIR/slurm.out" 2>&1; then
    fail "client script: $(cat "$DIR/slurm.out")"
else
    sed "s/^/$LP_TEST_NAME: /" "$DIR/slurm.out"
fi

#  the engines' pids, to see them gone
EPIDS=""
for t in 0 1 2 3; do
    p=$(pgrep -f -- "--id $t --log $DIR/log/engine-$t.log" | head -n 1)
    [ -n "$p" ] && EPIDS="$EPIDS $p"
done
[ "$(echo $EPIDS | wc -w)" = 4 ] || fail "found engine pids '$EPIDS', not 4"
lp_track $EPIDS

#  5. stop cancels the job
T0=$SECONDS
out=$(timeout 120 "$CLI" stop --profile "$NAME" 2>&1)
rc=$?
[ "$rc" -eq 0 ] || fail "./cluster.sh stop exited $rc: $out"
say "./cluster.sh stop returned after $((SECONDS - T0)) s"
left=$(squeue -h -o %i 2>&1)
[ -z "$left" ] || fail "squeue still lists: $left"
grep -q "job $JOB cancelled" "$DIR/log/launcher.log" || fail "launcher.log does not say the job was cancelled"
wait_gone "$CTRL_PID" 15 || fail "controller $CTRL_PID still running after stop"
for p in $EPIDS; do
    wait_gone "$p" 15 || fail "engine pid $p still running after stop"
done
[ -e "$DIR/launcher/slurm.jobid" ] && fail "launcher/slurm.jobid left behind"
CTRL_PID=""

#  6. a partition Slurm does not have: the start fails with sbatch's words,
#  and leaves no controller and no job
out=$(timeout 120 "$CLI" start --engines slurm -n 2 --slurm-partition nosuch \
          --profile "$NAME" --no-build 2>&1) && fail "start with --slurm-partition nosuch succeeded"
grep -qi "invalid partition" <<< "$out" || fail "start with a bad partition does not say why: $out"
for p in $(strays "$LP_HOME"); do fail "the failed start left pid $p running"; done
[ -z "$(slurm_jobs)" ] || fail "the failed start left jobs: $(slurm_jobs | tr '\n' ' ')"
say "a bad partition: the start failed saying '$(grep -io 'invalid partition[^|]*' <<< "$out" | head -n 1)'"

#  7. slurm_mode=srun: one job of 2 tasks that srun starts (the node has
#  fewer CPUs than tasks: --overcommit); the controller killed -9, and
#  ./cluster.sh stop still cancels the job (from launcher/launcher.env)
cli_start --engines slurm -n 2 --launcher-opt slurm_mode=srun --launcher-opt sbatch_extra=--overcommit
JOB=$(tr -dc '0-9' < "$DIR/launcher/slurm.jobid" 2>/dev/null)
steps=$(squeue -h -s -j "$JOB" -o %i 2>&1 | grep -c "^$JOB\.0$")
[ "$steps" = 1 ] || fail "srun mode: no step $JOB.0 in squeue -s: $(squeue -h -s -j "$JOB" 2>&1)"
cat > "$DIR/srun.lua" <<'LUA'
local rc = require ("luaparallel").connect (arg [1])
assert (rc:wait_for_engines (2, 60000))
local ids = rc:ids ()
local v = rc:view (ids):execute ("return lp.id .. ':' .. os.getenv ('SLURM_PROCID') .. '/' .. os.getenv ('SLURM_JOB_ID')")
print (table.concat (v, " "))
LUA
procs=$(run_lua "$BUILD/lua/?.so" 60 "$DIR/srun.lua" "$DIR/security/lp-client.json" 2>&1)
[ "$procs" = "0:0/$JOB 1:1/$JOB" ] \
    || fail "srun mode: engines' id:SLURM_PROCID/SLURM_JOB_ID are '$procs', not 0:0/$JOB 1:1/$JOB"
kill -9 "$CTRL_PID"
wait_gone "$CTRL_PID" 15 || fail "controller survived SIGKILL"
out=$(timeout 120 "$CLI" stop --profile "$NAME" 2>&1) || fail "./cluster.sh stop after kill -9: $out"
[ -z "$(slurm_jobs)" ] || fail "after kill -9 and stop, squeue lists: $(slurm_jobs | tr '\n' ' ')"
CTRL_PID=""
say "srun mode: step $JOB.0 ran engines 0 and 1; after kill -9 of the controller, stop cancelled it"

#  8. the daemons, stopped by pid
[ "$FAILS" -eq 0 ] || slurm_logs
D1=$MUNGED_PID D2=$SLURMCTLD_PID D3=$SLURMD_PID
slurm_stop || fail "the daemons did not stop cleanly"
for p in $D1 $D2 $D3; do alive "$p" && fail "daemon pid $p still running"; done
finish
