-- dashboard_load.lua FILE N MSEC: a load-balanced map of N tasks of MSEC
-- ms each (lp.sleep), task 7 failing with "dashboard test error", through
-- the Lua module; prints "map done: <ok> ok, <failed> failed" at the end.
-- Used by the dashboard tests (tests/shell/dashboard_*.sh).
local lp = require "luaparallel"
local file, n, msec = arg [1], tonumber (arg [2]), tonumber (arg [3])
local rc = assert (lp.connect (file, 10000))
assert (rc:wait_for_engines (1, 30000))
local lb = rc:balanced ()
lb.block = false
local seq = {}
for i = 1, n do seq [i] = i end
local r = lb:map ("function (x) lp.sleep (" .. msec / 1000 .. ")"
                  .. " if x == 7 then error ('dashboard test error') end return x end", seq)
assert (r:wait (120000), "map not done in 120 s")
print (string.format ("map done: %d ok, %d failed", r:count () - r:failed (), r:failed ()))
rc:close ()
