--[[ lpsh.lua - the REPL of lpsh (the luaparallel shell)

Loaded by src/lpsh/lpsh.c, which gives `lpsh.native` (line input with
libedit, history, SIGINT modes, a monotonic clock) and preloads the Lua
module `luaparallel`. Returns main(options) -> exit status.

A line is, in this order:
  - a magic: %px, %%px (a cell ended by a blank line), %autopx, %pxresult,
    %result, %targets, %pxconfig, %engines, %history, %fetch, %help;
  - in %autopx mode: code for the engines;
  - else local Lua, as in the stand-alone lua: `return <line>` is tried
    first, so an expression prints its value; an incomplete statement
    continues on the next line (prompt ">>").
Incomplete code for the engines continues too; the check is a local
compile (the engines run the same Lua 5.4). A syntax error in a local line
is reported as "[local] SyntaxError: ..." and nothing is sent.

Output of remote code, in the manner of ipyparallel:
  [stdout:2] a line the engine printed
  Out[2:5]: value            (engine 2, %px number 5; strings quoted)
  [engine 2] LuaError: msg   (then the Lua traceback)
  [engines 0-3] LuaError: msg   (one summary when several engines fail
                                  with the same error; traceback of the first)
Streaming (default when stdin is a terminal) prints lines as they arrive,
in arrival order; without streaming (default otherwise, so transcripts are
deterministic) outputs are printed when all engines have answered, grouped
by engine (--group-outputs=engine: stdout and Out of engine 0, then 1...)
or by kind (--group-outputs=order: all stdout, then all Out). Errors come
last in both.

Everything goes to stdout (also errors), flushed at once, so a piped
transcript is one ordered stream. Without a terminal no prompt and no
echo are printed.

When stdout is a terminal, long waits (a %px on several engines, blocking
calls of the module through lp.progress) show a one-line progress bar,
erased before any other output and when the wait ends.

-e CODE (options.exec): each CODE is one command (one chunk or one
magic), not a list of lines.
]]

local native = require "lpsh.native"
local lp = require "luaparallel"

local out_file = io.stdout

-- Progress bar of a long wait (a load-balanced map, %px on several
-- engines), only when stdout is a terminal: one line redrawn in place
-- (\r), erased (\r ESC[K) before anything else is printed and when the
-- wait ends.
--   [=========>          ] 1234/2000  61%  812/s  elapsed 1.5s  ETA 0.9s
local TTY = native.stdout_tty ()
local PROGRESS_AFTER_MSEC = 300     -- quicker waits show no bar
local bar_shown = false

local function bar_clear ()
    if bar_shown then
        out_file:write ("\r\27[K")
        out_file:flush ()
        bar_shown = false
    end
end

local function out (...)
    bar_clear ()
    out_file:write (...)
    out_file:flush ()
end

local function duration (ms)
    local s = ms / 1000
    if s < 60 then return ("%.1fs"):format (s) end
    if s < 3600 then return ("%dm%02ds"):format (s // 60, math.floor (s % 60)) end
    return ("%dh%02dm"):format (s // 3600, math.floor (s % 3600) // 60)
end

local function bar_draw (done, total, elapsed_ms)
    if not TTY or total < 2 then return end
    local rate = elapsed_ms > 0 and done * 1000 / elapsed_ms or 0
    local eta = "?"
    if done >= total then eta = "0.0s"
    elseif rate > 0 then eta = duration ((total - done) / rate * 1000) end
    local tail = ("%d/%d %3d%%  %s/s  elapsed %s  ETA %s"):format (done, total,
        done * 100 // total, rate >= 100 and ("%d"):format (math.floor (rate))
        or (rate >= 1 and "%.1f" or "%.2f"):format (rate), duration (elapsed_ms), eta)
    -- room at the end: the last column would wrap, and so would the "^C"
    -- the terminal echoes after the bar (\r would then erase only that)
    local cols = native.columns () - 4
    local width = cols - #tail - 3
    local line
    if width >= 10 then
        local fill = done * width // total
        local head = fill < width and fill > 0 and ">" or ""
        line = "[" .. ("="):rep (fill - #head) .. head .. (" "):rep (width - fill) .. "] " .. tail
    else
        line = tail:sub (1, math.max (cols, 1))
    end
    out_file:write ("\r", line, "\27[K")
    out_file:flush ()
    bar_shown = true
end

-- The Lua module calls this during blocking calls (lb:map, r:get, ...)
if TTY then
    lp.progress (function (done, total, elapsed_ms, final)
        if final then bar_clear () else bar_draw (done, total, elapsed_ms) end
    end)
end

-- Session state
local S = {
    rc = nil,            -- client
    targets = nil,       -- default targets of %px: nil = all, or a list
    block = true,        -- %pxconfig --block / --noblock
    stream = native.interactive,
    group = "engine",    -- engine | order
    autopx = false,
    count = 0,           -- %px executions so far
    last = nil,          -- last %px record {r, count, view, shown}
    errors = 0,          -- failed commands (exit status)
    bail = false,
    -- deadline of a blocking %px, ms ($LP_WAIT_MS, default one hour); a
    -- lost controller ends the wait sooner (ControllerLost errors)
    wait_timeout = math.tointeger (tonumber (os.getenv ("LP_WAIT_MS") or "")) or 3600000,
}

----------------------------------------------------------------------------
-- Values as text

local function quote (s)
    return (string.format ("%q", s):gsub ("\\\n", "\\n"):gsub ("\r", "\\r"))
end

local key_order = { number = 1, string = 2, boolean = 3 }

local function is_identifier (k)
    return type (k) == "string" and k:match ("^[%a_][%w_]*$") ~= nil
end

local LIST_MAX = 200            -- items shown of a long list

local function repr (v, top, seen, depth)
    local t = type (v)
    if t == "string" then
        return top and v or quote (v)
    elseif t ~= "table" then
        if math.type (v) == "float" and v == math.floor (v) and v > -1e15 and v < 1e15 then
            return string.format ("%.1f", v)
        end
        return tostring (v)
    end
    local mt = getmetatable (v)
    if mt and mt.__tostring then return tostring (v) end
    seen = seen or {}
    depth = depth or 0
    if seen [v] then return "{...}" end
    if depth > 8 then return "{...}" end
    seen [v] = true
    local parts = {}
    local n = #v
    for i = 1, math.min (n, LIST_MAX) do
        parts [#parts + 1] = repr (v [i], false, seen, depth + 1)
    end
    if n > LIST_MAX then parts [#parts + 1] = ("... (%d items)"):format (n) end
    local keys = {}
    for k in pairs (v) do
        if not (math.type (k) == "integer" and k >= 1 and k <= n) then
            keys [#keys + 1] = k
        end
    end
    table.sort (keys, function (a, b)
        local ta, tb = key_order [type (a)] or 9, key_order [type (b)] or 9
        if ta ~= tb then return ta < tb end
        if ta <= 2 then return a < b end
        return tostring (a) < tostring (b)
    end)
    for _, k in ipairs (keys) do
        local ks = is_identifier (k) and k or ("[" .. repr (k, false, seen, depth + 1) .. "]")
        parts [#parts + 1] = ks .. " = " .. repr (v [k], false, seen, depth + 1)
    end
    seen [v] = nil
    return "{" .. table.concat (parts, ", ") .. "}"
end

-- Engine ids as ranges: {0,1,2,3,5} -> "0-3,5"
local function ranges (ids)
    table.sort (ids)
    local parts, i = {}, 1
    while i <= #ids do
        local j = i
        while j < #ids and ids [j + 1] == ids [j] + 1 do j = j + 1 end
        if j - i >= 2 then parts [#parts + 1] = ids [i] .. "-" .. ids [j]
        elseif j > i then parts [#parts + 1] = ids [i] .. "," .. ids [j]
        else parts [#parts + 1] = tostring (ids [i]) end
        i = j + 1
    end
    return table.concat (parts, ",")
end

----------------------------------------------------------------------------
-- Local code

-- Error messages name chunks "stdin" as lua does (the chunk name is the
-- code itself, so that functions defined here can be sent with apply).
local function tidy (msg)
    msg = tostring (msg)
    msg = msg:gsub ('%[string "[^\n]-"%]', "stdin")
    -- drop the shell's own frames from tracebacks
    local lines = {}
    for line in (msg .. "\n"):gmatch ("([^\n]*)\n") do
        if line:find ("lpsh%.lua") or line:find ("in function 'xpcall'")
           or line:find ("%[C%]: in %?") then
            -- skip
        else
            lines [#lines + 1] = line
        end
    end
    while #lines > 0 and (lines [#lines] == ""
            or lines [#lines]:match ("^%s*%[C%]: in function 'pcall'$")) do
        lines [#lines] = nil
    end
    return table.concat (lines, "\n")
end

-- Compiles code as lua.c does: "return <code>" first. Returns fn, or nil,
-- message, incomplete.
local function compile (code)
    local f = load ("return " .. code, "return " .. code, "t")
    if f then return f end
    local f2, err = load (code, code, "t")
    if f2 then return f2 end
    if err:sub (-5) == "<eof>" then return nil, err, true end
    return nil, err, false
end

local function is_complete (code)
    local f, _, incomplete = compile (code)
    return f ~= nil or not incomplete
end

local function msghandler (e)
    if type (e) == "table" and getmetatable (e) and getmetatable (e).__tostring then
        return e
    end
    if type (e) ~= "string" then e = tostring (e) end
    return debug.traceback (e, 2)
end

local function fail ()
    S.errors = S.errors + 1
end

local function run_local (code)
    local f, err = compile (code)
    if not f then
        out ("[local] SyntaxError: ", tidy (err), "\n")
        fail ()
        return
    end
    native.sigints (true)
    native.sigmode (1)
    local res = table.pack (xpcall (f, msghandler))
    native.sigmode (0)
    -- the terminal echoed ^C: start a fresh line
    if native.sigints (true) > 0 and native.interactive then out ("\n") end
    if not res [1] then
        local e = res [2]
        if type (e) == "table" then
            out (tostring (e), "\n")          -- a remote error from dv:...
        else
            out ("[local] LuaError: ", tidy (e), "\n")
        end
        fail ()
        return
    end
    if res.n > 1 then
        local parts = {}
        for i = 2, res.n do parts [#parts + 1] = repr (res [i], true) end
        out (table.concat (parts, "\t"), "\n")
    end
end

----------------------------------------------------------------------------
-- Targets: "all", "0,2", "1:3" (engines 1 and 2: end excluded), "2:", ":3"

local function parse_targets (spec)
    if spec == nil or spec == "" or spec == "all" then return nil end
    local ids, seen = {}, {}
    local function add (id) if not seen [id] then seen [id] = true; ids [#ids + 1] = id end end
    local known
    for item in spec:gmatch ("[^,%s]+") do
        local a, b = item:match ("^(%d*):(%d*)$")
        if a then
            known = known or S.rc:ids ()
            local lo, hi = tonumber (a) or 0, tonumber (b) or math.huge
            for _, id in ipairs (known) do
                if id >= lo and id < hi then add (id) end
            end
        elseif item:match ("^%d+$") then
            add (tonumber (item))
        else
            error (("bad target '%s': use all, 0,2 or 1:3"):format (item), 0)
        end
    end
    if #ids == 0 then error ("no engines in targets '" .. spec .. "'", 0) end
    table.sort (ids)
    return ids
end

local function targets_text (t)
    if not t then return "all" end
    local c = {}
    for i, v in ipairs (t) do c [i] = v end
    return ranges (c)
end

----------------------------------------------------------------------------
-- Remote execution

local WAIT_SLICE_MSEC = 50
local INTERRUPT_GRACE_MSEC = 10000

-- Prints text as lines "[stdout:E] line" (a last line without its
-- newline gets one), about a megabyte at a time: a 64 MiB output costs
-- neither a write nor a string per line.
local OUT_BLOCK = 1 << 20
local function out_lines (e, text)
    bar_clear ()
    local prefix = "[stdout:" .. e .. "] "
    local pos, n = 1, #text
    while pos <= n do
        local stop = n
        if pos + OUT_BLOCK <= n then
            stop = text:find ("\n", pos + OUT_BLOCK, true) or n
        end
        local block = text:sub (pos, stop)
        if block:sub (-1) ~= "\n" then block = block .. "\n" end
        out_file:write ((block:gsub ("([^\n]*)\n", prefix .. "%1\n")))
        pos = stop + 1
    end
    out_file:flush ()
end

-- Prints complete new lines of each reply's output; final = also the
-- unterminated rest. The client keeps what was streamed a prefix of the
-- final text (it stops at a lost stream message until the reply), so
-- showing from the byte reached never skips a line.
local function show_stream (rec, final)
    local r = rec.r
    for i = 1, r:count () do
        local done = rec.shown [i] or 0
        local chunk = r:stdout (i, done + 1)
        if #chunk > 0 then
            local upto = final and #chunk or (chunk:match (".*\n()") or 1) - 1
            if upto > 0 then
                out_lines (r:engine (i), chunk:sub (1, upto))
                rec.shown [i] = done + upto
            end
        end
    end
end

-- Reply indices in engine order
local function engine_order (r)
    local order = {}
    for i = 1, r:count () do order [i] = i end
    table.sort (order, function (a, b) return r:engine (a) < r:engine (b) end)
    return order
end

local function show_stdout (rec, i)
    local r = rec.r
    local text = r:stdout (i, (rec.shown [i] or 0) + 1)
    if text == "" then return end
    out_lines (r:engine (i), text)
end

local function show_out (rec, i)
    local r = rec.r
    if r:state (i) ~= "ok" then return end
    local values = r:values (i)
    if not values or #values == 0 then return end
    local parts = {}
    for k = 1, #values do parts [k] = repr (values [k], false) end
    out ("Out[", r:engine (i), ":", rec.count, "]: ", table.concat (parts, ", "), "\n")
end

-- Errors, one summary per distinct (ename, evalue)
local function show_errors (rec)
    local r = rec.r
    local groups, order = {}, {}
    for _, i in ipairs (engine_order (r)) do
        local e = r:error (i)
        if e then
            local key = e.ename .. "\0" .. e.evalue
            if not groups [key] then
                groups [key] = { first = e, ids = {} }
                order [#order + 1] = key
            end
            table.insert (groups [key].ids, e.engine)
        end
    end
    for _, key in ipairs (order) do
        local g = groups [key]
        local head = #g.ids == 1 and ("[engine " .. g.ids [1] .. "]")
                      or ("[engines " .. ranges (g.ids) .. "]")
        out (head, " ", g.first.ename, ": ", g.first.evalue, "\n")
        if g.first.traceback ~= "" then
            out (g.first.traceback, g.first.traceback:sub (-1) == "\n" and "" or "\n")
        end
    end
    return #order > 0
end

-- Everything of a finished (or abandoned) %px
local function display (rec)
    local r = rec.r
    local order = engine_order (r)
    if S.group == "order" then
        for _, i in ipairs (order) do show_stdout (rec, i) end
        for _, i in ipairs (order) do show_out (rec, i) end
    else
        for _, i in ipairs (order) do
            show_stdout (rec, i)
            show_out (rec, i)
        end
    end
    if show_errors (rec) then fail () end
end

-- Waits for rec.r: streams output when asked; Ctrl-C interrupts the
-- engines, a second Ctrl-C (or no answer within the grace period, or the
-- wait deadline S.wait_timeout) abandons the wait. Returns true when all
-- replies are in (a lost controller ends them with ControllerLost).
local function wait_for (rec, stream)
    local r = rec.r
    native.sigints (true)
    native.sigmode (2)
    local interrupted_at, abandoned
    local start = native.now ()
    local deadline = start + S.wait_timeout
    while true do
        local done = r:wait (WAIT_SLICE_MSEC)
        if stream then show_stream (rec, done) end
        if done then break end
        if native.now () - start >= PROGRESS_AFTER_MSEC then
            bar_draw (r:done (), r:count (), native.now () - start)
        end
        local n = native.sigints ()
        if n >= 1 and not interrupted_at then
            interrupted_at = native.now ()
            out (native.interactive and "\n" or "", "interrupting engines ",
                 targets_text (rec.targets), " (Ctrl-C again to stop waiting)\n")
            rec.view.block = false
            local ok, ir = pcall (rec.view.interrupt, rec.view)
            rec.interrupt = ok and ir or nil
        end
        if n >= 2 or (interrupted_at and native.now () - interrupted_at > INTERRUPT_GRACE_MSEC) then
            abandoned = true
            break
        end
        if native.now () >= deadline then
            out (native.interactive and "\n" or "", ("no complete answer within %d ms "
                 .. "(%%pxconfig --wait-timeout MS)\n"):format (S.wait_timeout))
            abandoned = true
            break
        end
    end
    bar_clear ()
    native.sigmode (0)
    native.sigints (true)
    if abandoned then
        local pending = {}
        for i = 1, r:count () do
            if r:state (i) == "pending" then pending [#pending + 1] = r:engine (i) end
        end
        out (native.interactive and "\n" or "", "stopped waiting; engines ", ranges (pending),
             " have not answered (%pxresult waits again)\n")
        fail ()
        return false
    end
    return true
end

local function px (code, opts)
    opts = opts or {}
    local targets = opts.targets
    if targets == nil then targets = S.targets end
    local block = opts.block
    if block == nil then block = S.block end
    local stream = opts.stream
    if stream == nil then stream = S.stream end
    local view = targets and S.rc:view (targets) or S.rc:view ()
    view.block = false
    local r = view:execute (code)
    S.count = S.count + 1
    local rec = { r = r, count = S.count, view = view, shown = {}, targets = targets }
    S.last = rec
    if opts.run_local then run_local (code) end
    if r:count () == 0 then
        out ("[local] no engines to run on\n")
        fail ()
        return
    end
    if not block then
        out (("<%%px %d sent to engines %s; %%pxresult shows it>\n"):format (
            rec.count, targets_text (targets or view:targets ())))
        return
    end
    if wait_for (rec, stream) then
        if not stream then rec.shown = {} end
        display (rec)
    end
end

----------------------------------------------------------------------------
-- Magics

local HELP = [[
Local lines are Lua (an expression prints its value). rc is the client,
dv a direct view on all engines, lp the luaparallel module.
  %px [options] CODE   run CODE on the engines (default targets)
  %%px [options]       run the following lines (up to a blank line)
      --targets SPEC   all | 0,2 | 1:3 (engines 1 and 2) for this cell
      --block / --noblock     wait for the result, or return at once
      --local          run the code here too
      --stream / --no-stream  print output as it arrives, or at the end
      --group-outputs=engine|order   stdout and Out per engine, or by kind
  %autopx              toggle: every line runs on the engines
  %pxresult            wait for and show the last %px result again
  %result              the last %px's values, here (also stored in _)
  %targets [SPEC]      default targets of %px (no SPEC: show them)
  %pxconfig [--block|--noblock] [--targets SPEC] [--stream|--no-stream]
                       [--group-outputs=engine|order] [--wait-timeout MS]
  %engines             engines with their state and queue
  %history [N] [STATUS]  the last N requests of the task store (default 20),
                       newest first; STATUS: ok, error, aborted, queued,
                       running, pending, done
  %fetch ID            wait for and show the result of request ID (any
                       client's, from the task store)
  %help                this text
Ctrl-C while waiting interrupts the engines; a second Ctrl-C stops waiting.
]]

-- Parses leading --options of a magic; returns opts, rest of the line.
local function parse_options (text, allow_code)
    local opts = {}
    local pos = 1
    while true do
        local s, word, e = text:match ("^%s*()(%-%-[%w%-]+=?)()", pos)
        if not s then break end
        local rest_pos = e
        local function arg ()
            if word:sub (-1) == "=" then
                local v, p = text:match ("^(%S+)()", rest_pos)
                if not v then error ("option " .. word .. " needs a value", 0) end
                rest_pos = p
                return v
            end
            local v, p = text:match ("^%s+(%S+)()", rest_pos)
            if not v then error ("option " .. word .. " needs a value", 0) end
            rest_pos = p
            return v
        end
        local name = word:gsub ("=$", "")
        if name == "--targets" then opts.targets = parse_targets (arg ()); opts.has_targets = true
        elseif name == "--block" then opts.block = true
        elseif name == "--noblock" then opts.block = false
        elseif name == "--local" then opts.run_local = true
        elseif name == "--stream" then opts.stream = true
        elseif name == "--no-stream" then opts.stream = false
        elseif name == "--wait-timeout" then
            local ms = math.tointeger (tonumber (arg ()))
            if not ms or ms <= 0 then error ("--wait-timeout: a positive number of ms", 0) end
            opts.wait_timeout = ms
        elseif name == "--group-outputs" then
            local g = arg ()
            if g ~= "engine" and g ~= "order" then
                error ("--group-outputs: engine or order, not " .. g, 0)
            end
            opts.group = g
        else
            if allow_code then break end
            error ("unknown option " .. word, 0)
        end
        pos = rest_pos
    end
    return opts, text:sub (pos):match ("^%s*(.-)%s*$")
end

local read_more   -- set in main: reads continuation lines

local function with_group (opts, f)
    local saved = S.group
    if opts.group then S.group = opts.group end
    local ok, err = pcall (f)
    S.group = saved
    if not ok then error (err, 0) end
end

local magics = {}

magics ["px"] = function (rest)
    local opts, code = parse_options (rest, true)
    if code == "" then error ("%px needs code", 0) end
    code = read_more (code)
    if code then with_group (opts, function () px (code, opts) end) end
end

magics ["%px"] = function (rest)
    local opts, extra = parse_options (rest, false)
    if extra ~= "" then error ("%%px takes options only; the cell follows on the next lines", 0) end
    local lines = {}
    while true do
        local line = native.readline ("...: ")
        if line == false then return end           -- Ctrl-C drops the cell
        if line == nil or line:match ("^%s*$") then break end
        native.add_history (line)
        lines [#lines + 1] = line
    end
    if #lines == 0 then return end
    with_group (opts, function () px (table.concat (lines, "\n"), opts) end)
end

magics ["autopx"] = function ()
    S.autopx = not S.autopx
    out (S.autopx and "%autopx enabled\n" or "%autopx disabled\n")
end

magics ["pxresult"] = function ()
    local rec = S.last
    if not rec then error ("no %px result yet", 0) end
    if wait_for (rec, false) then
        rec.shown = {}
        display (rec)
    end
end

magics ["result"] = function ()
    local rec = S.last
    if not rec then error ("no %px result yet", 0) end
    if not wait_for (rec, false) then return end
    local r = rec.r
    if r:failed () > 0 then
        rec.shown = {}
        show_errors (rec)
        fail ()
        return
    end
    local v = {}
    for _, i in ipairs (engine_order (r)) do
        v [#v + 1] = r:value (i)
    end
    _G._ = v
    out (repr (v, false), "\n")
end

magics ["targets"] = function (rest)
    if rest == "" then
        out ("%targets ", targets_text (S.targets), "\n")
        return
    end
    S.targets = parse_targets (rest)
end

magics ["pxconfig"] = function (rest)
    local opts = parse_options (rest, false)
    if opts.block ~= nil then S.block = opts.block end
    if opts.has_targets then S.targets = opts.targets end
    if opts.stream ~= nil then S.stream = opts.stream end
    if opts.group then S.group = opts.group end
    if opts.wait_timeout then S.wait_timeout = opts.wait_timeout end
    if rest == "" then
        out (("%%pxconfig targets %s, %s, %s, group-outputs=%s, wait-timeout=%d\n"):format (
            targets_text (S.targets), S.block and "block" or "noblock",
            S.stream and "stream" or "no-stream", S.group, S.wait_timeout))
    end
end

magics ["engines"] = function ()
    local engines = S.rc:status ()
    table.sort (engines, function (a, b) return a.id < b.id end)
    out (("%-4s %-20s %-8s %-6s %s\n"):format ("id", "host", "pid", "state", "queue"))
    for _, e in ipairs (engines) do
        out (("%-4s %-20s %-8s %-6s %s\n"):format (tostring (e.id), tostring (e.host),
            tostring (e.pid), tostring (e.state), tostring (e.queue)))
    end
    out (("%d engine%s\n"):format (#engines, #engines == 1 and "" or "s"))
end

-- One line per request of the task store, newest first
magics ["history"] = function (rest)
    local query = { limit = 20 }
    for word in rest:gmatch ("%S+") do
        if word:match ("^%d+$") then query.limit = tonumber (word)
        else query.status = word end
    end
    local records = S.rc:history (query)
    out (("%-32s %-7s %-8s %-6s %-27s %s\n"):format ("msg_id", "kind", "status", "engine",
         "submitted", "code"))
    for _, rec in ipairs (records) do
        local code = tostring (rec.code or rec.msg_type or ""):gsub ("%s+", " ")
        if #code > 40 then code = code:sub (1, 37) .. "..." end
        out (("%-32s %-7s %-8s %-6s %-27s %s\n"):format (tostring (rec.msg_id),
             tostring (rec.kind), tostring (rec.status), tostring (rec.engine or "-"),
             tostring (rec.submitted), code))
    end
    out (("%d record%s\n"):format (#records, #records == 1 and "" or "s"))
end

-- The result of any request by its msg_id, shown as %px shows its own
magics ["fetch"] = function (rest)
    local id = rest:match ("^(%S+)$")
    if not id then error ("usage: %fetch MSG_ID (%history lists them)", 0) end
    local r = S.rc:fetch (id)
    S.count = S.count + 1
    -- No view to interrupt: Ctrl-C only stops waiting.
    local rec = { r = r, count = S.count, shown = {},
                  view = { interrupt = function () return nil end } }
    S.last = rec
    if wait_for (rec, false) then display (rec) end
end

magics ["help"] = function () out (HELP) end

local function run_magic (line)
    local name, rest = line:match ("^%%(%%?[%a_]+)%s*(.-)%s*$")
    local f = name and magics [name]
    if not f then
        out ("[local] unknown magic ", line:match ("^%S+"), " (%help lists them)\n")
        fail ()
        return
    end
    local ok, err = pcall (f, rest)
    if not ok then
        if type (err) == "table" then out (tostring (err), "\n")
        else out ("[local] ", tidy (err), "\n") end
        fail ()
    end
end

----------------------------------------------------------------------------
-- Main loop

local function handle (line)
    if line:match ("^%s*$") then return end
    if line:match ("^%%") then
        run_magic (line:match ("^%s*(.-)%s*$"))
        return
    end
    local code = read_more (line)
    if not code then return end
    if S.autopx then
        local ok, err = pcall (px, code, {})
        if not ok then out ("[local] ", tidy (err), "\n"); fail () end
    else
        run_local (code)
    end
end

local function main (opts)
    S.bail = opts.bail
    -- -e CODE: each CODE is one command, as `lua -e` runs one chunk: local
    -- Lua (a `local` lives through the whole CODE), or, when it starts
    -- with %, a magic whose argument is the rest (several lines: %px
    -- sends them as one chunk; %%px takes the lines after its own as the
    -- cell). The input lines are those of the current CODE only.
    local execs = opts.exec and #opts.exec > 0 and opts.exec
    local pending = {}
    if execs then
        native.readline = function ()
            return table.remove (pending, 1)
        end
    end
    local getline = native.readline

    -- Continuation: reads lines until code is complete (nil on Ctrl-C or
    -- when the input ends first: then the compile error is reported).
    read_more = function (code)
        while not is_complete (code) do
            local more = getline (">> ")
            if more == false then return nil end
            if more == nil then break end
            if native.interactive then native.add_history (more) end
            code = code .. "\n" .. more
        end
        return code
    end

    local ok, rc = pcall (lp.connect, opts.file, opts.timeout)
    if not ok then
        io.stderr:write ("lpsh: ", tostring (rc), "\n")
        return 1
    end
    S.rc = rc
    if opts.wait and opts.wait > 0 then
        local ready, err = rc:wait_for_engines (opts.wait, opts.timeout)
        if not ready then
            io.stderr:write ("lpsh: ", err, "\n")
            return 1
        end
    end
    _G.lp, _G.rc, _G.dv = lp, rc, rc:view ()

    if native.interactive then
        local ids = rc:ids ()
        out (("lpsh %s (%s): %d engine%s%s; rc is the client, dv a view on all engines. %%help for magics.\n")
            :format (lp.version, _VERSION, #ids, #ids == 1 and "" or "s",
                     #ids > 0 and (" [" .. ranges (ids) .. "]") or ""))
    end

    -- One -e CODE (see above)
    local function run_exec (code)
        local before = S.errors
        pending = {}
        if code:match ("^%s*%%%%") then
            -- %%px [options]: its own line is the magic, the others the cell
            local first, rest = code:match ("^%s*([^\n]*)\n?(.*)$")
            for l in (rest .. "\n"):gmatch ("([^\n]*)\n") do pending [#pending + 1] = l end
            code = first
        end
        local okh, err = pcall (handle, code)
        native.sigmode (0)
        if not okh then
            out ("[local] ", tidy (err), "\n")
            fail ()
        end
        return S.errors > before
    end
    if execs then
        for _, code in ipairs (execs) do
            if run_exec (code) and S.bail then break end
        end
        _G.dv, _G.rc = nil, nil
        S.last = nil
        rc:close ()
        return S.errors > 0 and 1 or 0
    end

    -- One prompt and its command. Everything runs inside pcall, and the
    -- SIGINT mode (and a pending "interrupted!" hook) is reset inside it.
    local function step ()
        native.sigmode (0)
        local prompt = S.autopx and "[px]> " or "> "
        local line = getline (prompt)
        if line == nil then
            if native.interactive then out ("\n") end
            return "eof"
        end
        if line ~= false then
            if native.interactive then native.add_history (line) end
            local before = S.errors
            local okh, err = pcall (handle, line)
            native.sigmode (0)
            if not okh then
                out ("[local] ", tidy (err), "\n")
                fail ()
            end
            if S.bail and S.errors > before and not native.interactive then return "eof" end
        end
    end
    while true do
        local ok, res = pcall (step)
        if not ok then
            native.sigmode (0)
            out ("[local] ", tidy (res), "\n")
            fail ()
            if not native.interactive then break end
        elseif res == "eof" then
            break
        end
    end
    _G.dv, _G.rc = nil, nil
    S.last = nil
    rc:close ()
    return (S.errors > 0 and not native.interactive) and 1 or 0
end

return main
