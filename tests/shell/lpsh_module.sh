#!/usr/bin/env bash
#  lpsh_module.sh BUILD_DIR
#
#  Issue 4, "done" 3: a plain Lua 5.4 script does require "luaparallel"
#  (package.cpath set to BUILD/lua/?.so, and then to the installed
#  module after `cmake --install` into a temporary prefix) and computes pi
#  on all engines: apply of a local Lua function (sent as source) with
#  per-engine arguments, map, push/pull, scatter/gather, a remote error
#  raised as a Lua error value, and a function with an upvalue refused.
#  Needs the lua5.4 interpreter (Debian package lua5.4).
set -u
BUILD=${1:?usage: lpsh_module.sh BUILD_DIR}
. "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
lp_test lpsh_module
lp_tmpdir DIR shmod
lua_setup
start_local_cluster "$DIR" 4
FILE=$DIR/security/lp-client.json

cat > "$DIR/pi.lua" <<'LUA'
local lp = require "luaparallel"
local rc = lp.connect (arg [1])
assert (rc:wait_for_engines (4, 30000))
local ids = rc:ids ()
local dv = rc:view ()

-- midpoint rule for the integral of 4 / (1 + x^2) over [0, 1],
-- the steps split over the engines
local function part (first, last, n)
    local h, s = 1.0 / n, 0.0
    for i = first, last do
        local x = (i + 0.5) * h
        s = s + 4.0 / (1.0 + x * x)
    end
    return s * h
end
local N = 2000000
local per = N // #ids
local views, results = {}, {}
for k, id in ipairs (ids) do
    views [k] = rc:view (id)
    views [k].block = false
    local last = (k == #ids) and N - 1 or k * per - 1
    results [k] = views [k]:apply (part, (k - 1) * per, last, N)
end
local pi = 0.0
for k = 1, #ids do pi = pi + results [k]:get (60000) end
print (("pi %.8f from %d engines"):format (pi, #ids))
assert (math.abs (pi - math.pi) < 1e-8, "pi is off: " .. pi)

-- the same with map and a blocking view
local sums = dv:map (function (k) return 4 * (k % 2 == 0 and 1 or -1) / (2 * k + 1) end,
                     {0, 1, 2, 3, 4, 5, 6, 7})
assert (#sums == 8 and sums [1] == 4.0, "map")
dv:push {scale = 2}
assert (#dv:pull ("scale") == 4 and dv.scale [4] == 2, "pull")
dv:scatter ("part", {1, 2, 3, 4, 5, 6, 7, 8})
assert (table.concat (dv:gather ("part"), ",") == "1,2,3,4,5,6,7,8", "gather")
local ids2 = rc [ids [1]]:execute ("return lp.id")
assert (ids2 == ids [1], "execute on one engine")

-- remote errors are Lua errors carrying engine, kind, message, traceback
local ok, e = pcall (rc [ids [2]].execute, rc [ids [2]], "error ('bad')")
assert (not ok and type (e) == "table", "remote error is a table")
assert (e.engine == ids [2] and e.ename == "LuaError" and e.evalue:find ("bad"), "error fields")
assert (tostring (e):find ("^%[engine " .. ids [2] .. "%] LuaError: "), "error text: " .. tostring (e))
assert (e.traceback:find ("stack traceback"), "traceback")

-- upvalues are not sent: refused with a message naming the upvalue
local offset = 1
ok, e = pcall (dv.apply, dv, function () return offset end)
assert (not ok and tostring (e):find ("upvalue 'offset'"), "upvalue refused: " .. tostring (e))
ok, e = pcall (dv.apply, dv, print)
assert (not ok and tostring (e):find ("C function"), "C function refused")
print ("module ok")
rc:close ()
LUA

run_pi() {   # run_pi CPATH LABEL
    local out rc
    out=$(run_lua "$1" 120 pi.lua "$FILE" 2>&1); rc=$?
    echo "$out"
    [ "$rc" -eq 0 ] || { fail "$2: lua5.4 pi.lua exited $rc"; return; }
    echo "$out" | grep -q '^pi 3\.14159265 from 4 engines$' || fail "$2: no 'pi 3.14159265 from 4 engines'"
    echo "$out" | grep -q '^module ok$' || fail "$2: module checks did not finish"
}
run_pi "$BUILD/lua/?.so" "build tree"

# --- installed: module in <prefix>/lib*/lua/5.4, lpsh finds its Lua code ----
if timeout 120 cmake --install "$BUILD" --prefix "$DIR/inst" > "$DIR/install.log" 2>&1; then
    MOD=$(find "$DIR/inst" -name luaparallel.so -path '*lua/5.4*' | head -n 1)
    if [ -z "$MOD" ]; then
        fail "cmake --install put no luaparallel.so under <prefix>/lib*/lua/5.4"
    else
        run_pi "$(dirname "$MOD")/?.so" "installed"
    fi
    got=$(LPSH_LUA_DIR= timeout 60 "$DIR/inst/bin/lpsh" --file "$FILE" -e '%px --targets 0 return "installed"' 2>&1)
    [ "$got" = 'Out[0:1]: "installed"' ] || fail "installed lpsh printed: $got"
else
    tail -n 20 "$DIR/install.log"
    fail "cmake --install failed"
fi

stop_local_cluster || fail "the cluster did not stop cleanly"
finish
