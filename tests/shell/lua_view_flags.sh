#!/usr/bin/env bash
#  lua_view_flags.sh BUILD_DIR
#
#  Issue 8, observation 12: every view flag of the C API is settable from
#  Lua, and has its effect. A lua5.4 script (require "luaparallel" from
#  BUILD/lua) sets on a load-balanced view lb.targets, lb.chunksize,
#  lb.retries, lb.timeout, lb.time_limit, lb.after, lb.follow,
#  lb.success / lb.failure and lb.wait_timeout, and checks what each does
#  (engine of each task, number of tasks, a retried failure that succeeds,
#  TimeoutError, TimeLimit, start after the dependency ended, same engine,
#  DependencyError or not), reads them back, aborts a queued task with
#  r:abort (), and sees a balanced-only flag refused on a direct view. On
#  the old code `lb.retries = 1` raised "push is not available on a
#  load-balanced view".
set -u
BUILD=${1:?usage: lua_view_flags.sh BUILD_DIR}
. "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
lp_test lua_view_flags
lp_tmpdir DIR flags
lua_setup
start_local_cluster "$DIR" 4 >/dev/null
FILE=$DIR/security/lp-client.json

cat > "$DIR/flags.lua" <<'LUA'
local lp = require "luaparallel"
local rc = lp.connect (arg [1])
local tmp = arg [2]
assert (rc:wait_for_engines (4, 30000))
local ids = rc:ids ()
local DEADLINE = 60000
local function check (cond, ...)
    if not cond then error (string.format (...), 2) end
end
-- expects r to fail with ename; returns the error object
local function fails (r, ename)
    local ok, e = pcall (r.get, r, DEADLINE)
    check (not ok, "expected %s, got a value", ename)
    check (type (e) == "table" and e.ename == ename, "expected %s, got %s", ename, tostring (e))
    return e
end

local lb = rc:balanced ()
lb.block = false

-- targets: every task on the engine named
lb.targets = {ids [2], ids [2]}
local r = lb:map (function (x) return x * 2 end, {1, 2, 3, 4, 5, 6})
check (#r:get (DEADLINE) == 6, "map over 6 items")
for i = 1, r:count () do
    check (r:engine (i) == ids [2], "task %d ran on engine %d, not on %d", i, r:engine (i), ids [2])
end
lb.targets = nil
print ("targets: 6 tasks on engine " .. ids [2])

-- chunksize: 7 items in tasks of 3
lb.chunksize = 3
check (lb.chunksize == 3, "chunksize reads back %s", tostring (lb.chunksize))
r = lb:map (function (x) return x + 1 end, {1, 2, 3, 4, 5, 6, 7})
local v = r:get (DEADLINE)
check (r:count () == 3 and #v == 7 and v [7] == 8, "chunksize 3: %d tasks, %d values", r:count (), #v)
lb.chunksize = nil
print ("chunksize: 7 items in 3 tasks")

-- retries: fails on the first attempt (a marker file tells), succeeds on the retry
local flaky = "function (p) local f = io.open (p) if f then f:close () return 'second' end " ..
              "f = io.open (p, 'w') f:write ('x') f:close () error ('first attempt') end"
fails (lb:apply (flaky, tmp .. "/marker0"), "LuaError")          -- retries = 0: the error
lb.retries = 1
check (lb.retries == 1, "retries reads back %s", tostring (lb.retries))
check (lb:apply (flaky, tmp .. "/marker1"):get (DEADLINE) == "second", "retried task")
lb.retries = 0
print ("retries: the failed attempt was retried")

-- time_limit: a runaway task ends with TimeLimit
lb.time_limit = 300
fails (lb:apply ("function () while true do end end"), "TimeLimit")
lb.time_limit = nil
print ("time_limit: TimeLimit")

-- timeout: engine busy (hwm filled by tasks held there), the next task
-- waits longer than its timeout
lb.targets = ids [1]
local busy = {}
for k = 1, 2 do busy [k] = lb:apply ("function () lp.sleep (2) return 1 end") end
lb.timeout = 300
check (lb.timeout == 300, "timeout reads back %s", tostring (lb.timeout))
fails (lb:apply ("function () return 1 end"), "TimeoutError")
lb.timeout = nil
-- abort: a task waiting for that busy engine is aborted
local queued = lb:apply ("function () return 'ran' end")
local n, rest = queued:abort ()
check (n == 1 and #rest == 0, "abort: %s aborted, %d not aborted", tostring (n), #rest)
fails (queued, "Aborted")
for k = 1, 2 do busy [k]:get (DEADLINE) end
lb.targets = nil
print ("timeout: TimeoutError; abort: Aborted")

-- after: starts once the dependency ended; follow: on its engine
local first = lb:apply ("function () lp.sleep (0.5) return lp.id end")
lb.after = first
local second = lb:apply ("function () return lp.id end")
second:get (DEADLINE)
check (second:started (1) >= first:completed (1), "after: started %.3f before the dependency ended %.3f",
       second:started (1), first:completed (1))
lb.after = nil
lb.follow = {first}
for k = 1, 3 do
    local f = lb:apply ("function () return lp.id end"):get (DEADLINE)
    check (f == first:get (), "follow: ran on %d, not on %d", f, first:get ())
end
lb.follow = nil
print ("after, follow: order and engine kept")

-- success / failure: a failed dependency counts only with failure = true
local bad = lb:apply ("function () error ('no') end")
pcall (bad.get, bad, DEADLINE)
lb.after = bad
fails (lb:apply ("function () return 1 end"), "DependencyError")
lb.success, lb.failure = false, true
check (lb.failure == true and lb.success == false, "flags read back")
check (lb:apply ("function () return 'ran' end"):get (DEADLINE) == "ran", "failure = true")
lb.after, lb.success, lb.failure = nil, nil, nil
print ("success / failure: DependencyError, then run")

-- wait_timeout: the deadline of a blocking call
lb.block = true
lb.wait_timeout = 300
local ok, e = pcall (lb.apply, lb, "function () lp.sleep (2) end")
check (not ok and tostring (e):find ("timed out after 300 ms"), "wait_timeout: %s", tostring (e))
lb.wait_timeout = nil
check (lb.wait_timeout > 300, "wait_timeout default")
print ("wait_timeout: timed out")

-- balanced-only flags are refused on a direct view; pushing still works
local dv = rc:view ()
ok, e = pcall (function () dv.retries = 1 end)
check (not ok and tostring (e):find ("load%-balanced view flag"), "dv.retries: %s", tostring (e))
dv.time_limit = 5000
dv.answer = 42
check (dv:pull ("answer") [1] == 42, "push through a direct view")
print ("flags ok")
rc:close ()
LUA

out=$(run_lua "$BUILD/lua/?.so" 180 flags.lua "$FILE" "$DIR" 2>&1); rc=$?
echo "$out"
if [ "$rc" -ne 0 ] || ! echo "$out" | grep -q '^flags ok$'; then
    fail "the flag checks did not all pass (status $rc)"
fi
stop_local_cluster || fail "the cluster did not stop cleanly"
finish
