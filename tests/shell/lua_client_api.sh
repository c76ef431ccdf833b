#!/usr/bin/env bash
#  lua_client_api.sh BUILD_DIR
#
#  The C calls of the client API have Lua equivalents (DESIGN: the client
#  API is exposed to Lua), and each does what its C call does. A lua5.4
#  script (require "luaparallel" from BUILD/lua) against 4 local engines:
#  r:state (i) and r:next (ms) over replies that end in a known order
#  (engines sleep 2, 0 and 1 s), rc:wait_any picking the result that
#  ended, view:map over two sequences (zipped up to the shortest, direct
#  and load-balanced), view:dup carrying a time limit for one call only,
#  view:clear dropping every global, rc:restart_engine (same id, new pid,
#  fresh state), rc:shutdown_engine (the id leaves the cluster), and
#  rc:fd / rc:poll driving a result to the end without a wait.
set -u
BUILD=${1:?usage: lua_client_api.sh BUILD_DIR}
. "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
lp_test lua_client_api
lp_tmpdir DIR capi
lua_setup
start_local_cluster "$DIR" 4 >/dev/null
FILE=$DIR/security/lp-client.json

cat > "$DIR/capi.lua" <<'LUA'
local lp = require "luaparallel"
local rc = lp.connect (arg [1])
assert (rc:wait_for_engines (4, 30000))
local ids = rc:ids ()
local DEADLINE = 60000
local function check (cond, ...)
    if not cond then error (string.format (...), 2) end
end

-- r:state and r:next: engines ids[1..3] sleep 2, 0 and 1 s
local three = rc:view {ids [1], ids [2], ids [3]}
three:scatter ("delay", {2, 0, 1})
three.block = false
local r = three:execute ("lp.sleep (delay [1]) if delay [1] == 1 then error ('one') end return delay [1]")
local order = {}
local i, why
while true do
    i, why = r:next (DEADLINE)
    check (i ~= false, "r:next timed out: %s", tostring (why))
    if i == nil then break end
    order [#order + 1] = i
    if #order == 1 then
        check (r:state (1) == "pending", "reply 1 (2 s) is %s when reply %d ended", r:state (1), i)
    end
end
check (table.concat (order, ",") == "2,3,1", "replies ended in the order %s, not 2,3,1",
       table.concat (order, ","))
check (r:state (1) == "ok" and r:state (2) == "ok" and r:state (3) == "error",
       "states %s %s %s", r:state (1), r:state (2), r:state (3))
check (r:next (0) == nil, "every reply was handed out")
print ("next: replies in the order they ended (2, 3, 1); state ok, ok, error")

-- rc:wait_any: the first result of the list that has ended
local slow, fast = rc:view (ids [1]), rc:view (ids [2])
slow.block, fast.block = false, false
local r1 = slow:execute ("lp.sleep (2) return 'slow'")
i, why = r1:next (0)
check (i == false and why == "timed out", "r:next (0) on a running result: %s, %s", tostring (i), tostring (why))
local got, k = rc:wait_any ({r1}, 0)
check (got == nil and k, "wait_any ({running}, 0): %s, %s", tostring (got), tostring (k))
local r2 = fast:execute ("return 'fast'")
got, k = rc:wait_any ({r1, r2}, DEADLINE)
check (got == r2 and k == 2 and r2:get () == "fast", "wait_any gave position %s", tostring (k))
got, k = rc:wait_any ({r1, false}, DEADLINE)
check (got == r1 and k == 1 and r1:get () == "slow", "wait_any then gave position %s", tostring (k))
print ("wait_any: the fast result first, then the slow one")

-- map over several sequences: zipped up to the shortest
local dv = rc:view ()
local sums = dv:map (function (a, b) return a + b end, {1, 2, 3, 4, 5}, {10, 20, 30, 40, 50, 60})
check (#sums == 5 and sums [1] == 11 and sums [5] == 55, "direct map_n: %d values", #sums)
local lb = rc:balanced ()
lb.chunksize = 2
local three_args = lb:map (function (a, b, c) return a .. b .. c end, {"a", "b", "c"}, {1, 2, 3}, {"x", "y"})
check (#three_args == 2 and three_args [1] == "a1x" and three_args [2] == "b2y",
       "balanced map over 3 sequences: %s", table.concat (three_args, ","))
check (lb:map ("math.abs", {-3, 4}) [1] == 3, "map over one sequence")
print ("map: several sequences zipped")

-- dup: a time limit for one call; the original keeps none
local once = lb:dup ()
check (once.chunksize == 2, "the copy has the chunksize: %s", tostring (once.chunksize))
once.time_limit = 300
local ok, e = pcall (once.apply, once, "function () while true do end end")
check (not ok and type (e) == "table" and e.ename == "TimeLimit", "dup time limit: %s", tostring (e))
check (lb.time_limit == nil, "the original's time_limit is %s", tostring (lb.time_limit))
check (lb:apply ("function () local t = os.clock () while os.clock () - t < 0.5 do end return 'long' end")
       == "long", "the original has no time limit")
print ("dup: flags of the copy only")

-- clear: globals gone on every target; refused on a load-balanced view
dv.marker = 7
check (dv:pull ("marker") [4] == 7, "pushed marker")
dv:clear ()
local after = dv:pull ("marker")
check (#rc:ids () == 4 and after [1] == nil and after [4] == nil, "marker survived clear")
check (dv:execute ("return lp.id") [1] == ids [1], "engines serve after clear")
ok, e = pcall (lb.clear, lb)
check (not ok, "clear on a load-balanced view")
print ("clear: globals gone")

-- restart_engine: same id, new process, fresh state
local function pid_of (id)
    for _, e in ipairs (rc:status ()) do if e.id == id then return e.pid end end
end
local victim = ids [3]
local old_pid = pid_of (victim)
rc [victim].kept = 1
rc:restart_engine (victim)
local new_pid = pid_of (victim)
check (new_pid and new_pid ~= old_pid, "engine %d pid %s -> %s", victim, tostring (old_pid), tostring (new_pid))
check (rc [victim]:pull ("kept") == nil, "the restarted engine kept its globals")
ok, e = pcall (rc.restart_engine, rc, 999, 5000)
check (not ok and tostring (e):find ("no engine 999"), "restart of 999: %s", tostring (e))
print ("restart_engine: engine " .. victim .. " has a new pid and fresh state")

-- shutdown_engine: the id leaves the cluster
local leaving = ids [4]
rc:shutdown_engine (leaving)
for _, id in ipairs (rc:ids ()) do check (id ~= leaving, "engine %d still listed", id) end
check (#rc:ids () == 3, "%d engines left", #rc:ids ())
print ("shutdown_engine: engine " .. leaving .. " left")

-- fd / poll: a descriptor (an epoll set), and rc:poll (0) takes replies in
local fd = rc:fd ()
check (math.type (fd) == "integer" and fd >= 0 and rc:fd () == fd, "rc:fd () = %s", tostring (fd))
local link = io.popen ("readlink /proc/$PPID/fd/" .. fd):read ("l")
check (link and link:find ("eventpoll"), "fd %d is %s", fd, tostring (link))
local rp = rc:view (ids [1])
rp.block = false
local pr = rp:execute ("return 6 * 7")
local t0 = os.time ()
while not pr:ready () do
    local n = rc:poll (0)
    check (n, "poll interrupted")
    check (os.time () - t0 < 60, "rc:poll (0) never took the reply in")
end
check (pr:state (1) == "ok" and pr:value (1) == 42, "polled reply: %s", pr:state (1))
print ("fd: " .. link)
print ("client api ok")
rc:close ()
LUA

#  (the script's readlink runs under io.popen's sh: its $PPID is lua5.4)
out=$(run_lua "$BUILD/lua/?.so" 120 capi.lua "$FILE" 2>&1); rc=$?
echo "$out"
if [ "$rc" -ne 0 ] || ! echo "$out" | grep -q '^client api ok$'; then
    fail "the client API checks did not all pass (status $rc)"
fi
stop_local_cluster || fail "the cluster did not stop cleanly"
finish
