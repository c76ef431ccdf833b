/*  =========================================================================
    lp_luamod - the Lua module "luaparallel", a binding over libluaparallel

        local lp = require "luaparallel"
        local rc = lp.connect ([file] [, timeout_ms])   -- lp-client.json
        rc:ids ()                       --> {0, 1, 2, 3}
        rc:wait_for_engines (n, timeout_ms)  --> true | nil, message
        rc:status ()                    --> {{id=, host=, pid=, state=, queue=}, ...}
        rc:view ([targets])             --> direct view: nil/"all" = every
                                        --  engine at each call, an id or a
                                        --  list of ids
        rc[2]                           --> rc:view (2)
        rc:balanced ()                  --> load-balanced view
        rc:shutdown ([timeout_ms]), rc:close ()
        rc:shutdown_engine (id [, ms]), rc:restart_engine (id [, ms])
                                        --  raise on error (default 30 s)
        rc:wait_any ({r1, r2, ...} [, ms])  --> first ended result, its
                                        --  position | nil, reason
        rc:fd (), rc:poll ([ms])        --  event loops: lp_client_fd and
                                        --  lp_client_poll (default 0 ms)

        view:execute (code)             --  Lua source run on every target
        view:apply (f, ...)             --  f: Lua function, source text
                                        --  "function(x) ... end" or a
                                        --  global name "math.sqrt"
        view:map (f, seq [, seq2, ...]) --  f over the elements of seq;
                                        --  several: f (seq[i], seq2[i], ...)
                                        --  up to the shortest
        view:clear ()                   --  fresh Lua states (direct views)
        view:dup ()                     --> a copy, for per-call flags
        view:push {name = value, ...}   --  or view:push (name, value)
        view:pull (name)                --  dotted paths allowed
        view.name, view["name"]         --  pull; view.name = v pushes
        view:scatter (name, seq), view:gather (name)
        view:interrupt ()
        view:targets ()                 --> ids addressed now
        view.block (default true)
        view.wait_timeout               --  ms a blocking call (and r:get,
                                        --  r:wait without argument) waits;
                                        --  default $LP_WAIT_MS or 3600000
                                        --  (1 hour); nil restores it
        rc:set_lost_after (ms)          --  see lp_client_set_lost_after

    View flags (lp_view_set_*), for the calls made after they are set;
    reading one gives what was set:
        view.targets = {0, 2} | 3 | nil direct: engines addressed;
                                        --  load-balanced: engines a task
                                        --  may run on (nil: any)
        view.time_limit = ms            --  both views (nil: none)
        lb.retries = n                  --  load-balanced views only:
        lb.timeout = ms                 --  longest wait for an engine
        lb.chunksize = n                --  items per map task
        lb.after = r | {r1, r2} | nil   --  results that must end first
        lb.follow = r | {r1, ...} | nil --  ... and whose engine to use
        lb.success, lb.failure          --  which dependency outcomes count
    These names are never pushed: view:push {retries = 1} sets a global
    of that name. Balanced-only flags on a direct view raise an error.

    Blocking calls (view.block true) wait and return the combined value
    (lp_result_get: one engine -> its value, several -> a list in target
    order, gather / map -> the concatenation, push / scatter -> nil).
    Non-blocking calls return a result object:

        r:get ([timeout_ms])  r:ready ()  r:wait ([timeout_ms]) --> bool
        r:count ()  r:failed ()  r:engine (i)  r:stdout (i [, from])  r:value (i)
        r:values (i) (all returned values, a list)  r:state (i)
        ("pending", "ok", "error")  r:error (i) (error object or nil)
        r:msg_id (i)  r:submitted (i)  r:started (i)  r:completed (i)
        (seconds since the epoch or nil)
        r:abort () --> number aborted, list of {msg_id, engine, reason}
        not aborted (running or finished)
        r:done () --> replies in so far, without blocking
        r:next ([ms]) --> i of the next reply to end; nil once all were
        handed out; false, reason on timeout or signal
        -- i counts replies from 1

    Progress: lp.progress (fn) (nil: none; returns the previous one).
    While a blocking call, r:get () or r:wait () (no timeout given) waits
    for a result of more than one reply, fn (done, total, elapsed_ms) is
    called about every 100 ms once the wait has lasted 300 ms, and
    fn (done, total, elapsed_ms, true) once at the end if it was called.
    lpsh draws its progress bar with it.

    A remote error is raised as an error object: a table with fields
    engine, ename, evalue, traceback, message, and errors (the error
    objects of every failed reply); tostring gives
    "[engine 2] LuaError: msg\ntraceback".

    Functions passed to apply / map travel as source text. The source is
    found through debug.getinfo (f, "S"): its source (the chunk string, or
    "@file" which is read again) and linedefined..lastlinedefined; in
    those lines the function expression is cut out and recompiled to check
    that it has the same shape (line span, parameters). Upvalues are NOT
    sent: a function with an upvalue other than _ENV is refused with an
    error naming it (pass the value as an argument or push it as a
    global). C functions and chunks loaded with a "=name" have no source
    and are refused too.

    Waiting: a blocking call waits at most view.wait_timeout ms (default
    one hour), and never longer than it takes to notice a lost controller
    (lp_client_set_lost_after, default 3 s): then the call raises an error
    object with ename "ControllerLost" whose message names the controller
    ("ControllerLost: controller at tcp://... lost: nothing heard for
    3000 ms"). A signal (Ctrl-C) that interrupts the wait sends an
    interrupt to the view's engines and keeps waiting for their replies
    (which come back as Interrupted errors); a second one abandons the
    wait.
    =========================================================================
*/
#include "lp_luavalue.h"
#include <lauxlib.h>
#include <lualib.h>
#include <string.h>

#define CLIENT_MT   "lp.Client"
#define VIEW_MT     "lp.View"
#define RESULT_MT   "lp.Result"
#define ERROR_MT    "lp.RemoteError"

typedef struct {
    lp_client_t *client;                //  NULL once closed
} l_client_t;

typedef struct {
    lp_view_t *view;                    //  NULL once collected
    bool block;                         //  blocking calls
    int wait_timeout;                   //  blocking deadline, ms
    bool balanced;                      //  load-balanced view
} l_view_t;

typedef struct {
    lp_result_t *result;                //  NULL once collected
} l_result_t;

//  Registry key of the function-source helper (Lua code below).
static char s_fnsource_key;
//  Registry key of the progress function (lp.progress).
static char s_progress_key;

//  Cuts a function's source text out of its chunk; see the header.
static const char *s_fnsource_lua =
"local getinfo, getupvalue = debug.getinfo, debug.getupvalue\n"
"local function lines_of (src)\n"
"  local c = src:sub (1, 1)\n"
"  if c == '=' then return nil, 'its source is not available (chunk ' .. src:sub (2) .. ')' end\n"
"  if c == '@' then\n"
"    local f = io.open (src:sub (2), 'rb')\n"
"    if not f then return nil, 'cannot read its source file ' .. src:sub (2) end\n"
"    src = f:read ('a'); f:close ()\n"
"  end\n"
"  local t = {}\n"
"  for line in (src .. '\\n'):gmatch ('([^\\n]*)\\n') do t [#t + 1] = line end\n"
"  return t\n"
"end\n"
"local function shape (g)\n"
"  local i = getinfo (g, 'Su')\n"
"  return i.lastlinedefined - i.linedefined, i.nparams, i.isvararg\n"
"end\n"
"return function (f)\n"
"  local info = getinfo (f, 'Su')\n"
"  if info.what == 'C' then\n"
"    error ('cannot send a C function: pass Lua source text or a global name', 0)\n"
"  end\n"
"  if info.what == 'main' then error ('cannot send a main chunk', 0) end\n"
"  local where = info.short_src .. ':' .. info.linedefined\n"
"  for i = 1, info.nups do\n"
"    local name = getupvalue (f, i)\n"
"    if name ~= '_ENV' then\n"
"      error (('cannot send the function at %s: it has upvalue \\'%s\\' and upvalues are '\n"
"          .. 'not sent (pass it as an argument or push it as a global)'):format (where, name), 0)\n"
"    end\n"
"  end\n"
"  local lines, err = lines_of (info.source)\n"
"  local first, last = info.linedefined, info.lastlinedefined\n"
"  if lines and last > #lines then lines, err = nil, 'its source changed' end\n"
"  if not lines then error ('cannot send the function at ' .. where .. ': ' .. err, 0) end\n"
"  local text = table.concat (lines, '\\n', first, last)\n"
"  local firstlen, lastoff = #lines [first], #text - #lines [last]\n"
"  local span, np, va = last - first, info.nparams, info.isvararg\n"
"  local pos = 1\n"
"  while true do\n"
"    local s, e = text:find ('%f[%w_]function%f[^%w_]', pos)\n"
"    if not s or s > firstlen then break end\n"
"    local name, p = text:match ('^%s*([%w_%.:]*)%s*()%(', e + 1)\n"
"    if p then\n"
"      local q = math.max (lastoff + 1, p)\n"
"      while true do\n"
"        local _, ee = text:find ('%f[%w_]end%f[^%w_]', q)\n"
"        if not ee then break end\n"
"        local body = text:sub (p, ee)\n"
"        if name:find (':', 1, true) then\n"
"          if body:match ('^%(%s*%)') then body = body:gsub ('^%(%s*%)', '(self)', 1)\n"
"          else body = body:gsub ('^%(', '(self, ', 1) end\n"
"        end\n"
"        local src = 'function' .. body\n"
"        local chunk = load ('return ' .. src, '=fnsource', 't', {})\n"
"        if chunk then\n"
"          local ok, g = pcall (chunk)\n"
"          if ok and type (g) == 'function' then\n"
"            local gs, gn, gv = shape (g)\n"
"            if gs == span and gn == np and gv == va then return src end\n"
"          end\n"
"        end\n"
"        q = ee + 1\n"
"      end\n"
"    end\n"
"    pos = e + 1\n"
"  end\n"
"  error ('cannot send the function at ' .. where .. ': its source text could not be found', 0)\n"
"end\n";

//  ---------------------------------------------------------------------
//  Helpers

static l_client_t *
s_client_ud (lua_State *L, int idx)
{
    return (l_client_t *) luaL_checkudata (L, idx, CLIENT_MT);
}

static lp_client_t *
s_client (lua_State *L, int idx)
{
    l_client_t *ud = s_client_ud (L, idx);
    if (!ud->client)
        luaL_error (L, "luaparallel: client is closed");
    return ud->client;
}

static l_view_t *
s_view_ud (lua_State *L, int idx)
{
    l_view_t *ud = (l_view_t *) luaL_checkudata (L, idx, VIEW_MT);
    if (!ud->view)
        luaL_error (L, "luaparallel: view is gone");
    return ud;
}

static lp_result_t *
s_result (lua_State *L, int idx)
{
    l_result_t *ud = (l_result_t *) luaL_checkudata (L, idx, RESULT_MT);
    if (!ud->result)
        luaL_error (L, "luaparallel: result is gone");
    return ud->result;
}

//  Converts the Lua value at idx; raises a Lua error when it cannot be
//  sent (nothing is left allocated then).
static lp_value_t *
s_to_value (lua_State *L, int idx, const char *root)
{
    char err [256];
    lp_value_t *value = lp_lua_to_value (L, idx, root, err, sizeof err);
    if (!value)
        luaL_error (L, "SerializationError: %s", err);
    return value;
}

//  Pushes a value; nil when the pointer is NULL.
static void
s_push_value (lua_State *L, const lp_value_t *value)
{
    if (value)
        lp_lua_push_value (L, value);
    else
        lua_pushnil (L);
}

//  Pushes the error object of reply i (0-based).
static void
s_push_error (lua_State *L, lp_result_t *r, int i)
{
    lua_createtable (L, 0, 6);
    lua_pushinteger (L, lp_result_engine (r, i));
    lua_setfield (L, -2, "engine");
    const char *ename = lp_result_ename (r, i);
    lua_pushstring (L, ename? ename: "Error");
    lua_setfield (L, -2, "ename");
    const char *evalue = lp_result_evalue (r, i);
    lua_pushstring (L, evalue? evalue: "");
    lua_setfield (L, -2, "evalue");
    const char *traceback = lp_result_traceback (r, i);
    lua_pushstring (L, traceback? traceback: "");
    lua_setfield (L, -2, "traceback");
    const char *message = lp_result_error (r, i);
    lua_pushstring (L, message? message: "");
    lua_setfield (L, -2, "message");
    luaL_setmetatable (L, ERROR_MT);
}

//  Raises the error of the first failed reply (in engine order), with
//  .errors listing every failed reply.
static int
s_raise_remote (lua_State *L, lp_result_t *r)
{
    int count = lp_result_count (r);
    int first = -1;
    lua_newtable (L);                   //  errors
    int nerrors = 0;
    for (int i = 0; i < count; i++)
        if (lp_result_error (r, i)) {
            if (first == -1 || lp_result_engine (r, i) < lp_result_engine (r, first))
                first = i;
            s_push_error (L, r, i);
            lua_rawseti (L, -2, ++nerrors);
        }
    if (first == -1)
        first = 0;
    //  A lost controller is the news: raise that (the others are in .errors)
    for (int i = 0; i < count; i++) {
        const char *ename = lp_result_ename (r, i);
        if (ename && streq (ename, "ControllerLost")) {
            first = i;
            break;
        }
    }
    s_push_error (L, r, first);
    lua_insert (L, -2);
    lua_setfield (L, -2, "errors");
    return lua_error (L);
}

//  Wraps a new result into a userdata whose uservalue is the client
//  (at client_idx), so the client outlives it.
static void
s_push_result (lua_State *L, lp_result_t *r, int client_idx)
{
    client_idx = lua_absindex (L, client_idx);
    l_result_t *ud = (l_result_t *) lua_newuserdatauv (L, sizeof (l_result_t), 1);
    ud->result = NULL;
    luaL_setmetatable (L, RESULT_MT);
    ud->result = r;
    lua_pushvalue (L, client_idx);
    lua_setiuservalue (L, -2, 1);
}

//  Replies still pending in r.
static int
s_pending (lp_result_t *r)
{
    int pending = 0;
    for (int i = 0; i < lp_result_count (r); i++)
        if (!lp_result_error (r, i) && !lp_result_values (r, i))
            pending++;
    return pending;
}

//  Default deadline of blocking calls: $LP_WAIT_MS, else LP_LUA_WAIT_MSEC.
static int
s_default_wait (void)
{
    const char *env = getenv ("LP_WAIT_MS");
    if (env && *env) {
        char *end = NULL;
        long value = strtol (env, &end, 10);
        if (end && *end == 0 && value > 0 && value <= INT32_MAX)
            return (int) value;
    }
    return LP_LUA_WAIT_MSEC;
}

//  Waits for r up to timeout_ms; returns an lp_err_t: LP_OK (every reply
//  ended), LP_ELOST (the controller was lost: the pending replies ended
//  with ControllerLost), LP_ETIMEOUT, LP_EINTR, LP_ECLOSED. When a signal
//  breaks the wait and interrupt is set, the view's engines are
//  interrupted once and the wait goes on; a second signal gives up.
//  With progress, the function set by lp.progress (if any) is called
//  as fn (done, total, elapsed_ms) between slices once the wait has
//  lasted LP_LUA_PROGRESS_MSEC, and fn (done, total, elapsed_ms, true) at
//  the end when it was called before; only for results of more than one
//  reply. It runs protected: an error in it stops the calls for this
//  wait and is otherwise ignored (it must not unwind through intr).
static bool
s_progress (lua_State *L, lp_result_t *r, int64_t start, bool final)
{
    lua_rawgetp (L, LUA_REGISTRYINDEX, &s_progress_key);
    if (!lua_isfunction (L, -1)) {
        lua_pop (L, 1);
        return false;
    }
    lua_pushinteger (L, lp_result_done (r));
    lua_pushinteger (L, lp_result_count (r));
    lua_pushinteger (L, (lua_Integer) (zclock_mono () - start));
    if (final)
        lua_pushboolean (L, 1);
    bool ok = lua_pcall (L, final? 4: 3, 0, 0) == LUA_OK;
    if (!ok)
        lua_pop (L, 1);
    return ok;
}

static int
s_wait (lua_State *L, lp_result_t *r, lp_view_t *interrupt, int timeout_ms, bool progress)
{
    int64_t start = zclock_mono ();
    int64_t deadline = start + (timeout_ms < 0? 0: timeout_ms);
    int signals = 0;
    lp_result_t *intr = NULL;
    int rc = LP_ETIMEOUT;
    progress = progress && lp_result_count (r) > 1;
    bool drawn = false;                 //  fn was called during this wait
    while (true) {
        if (progress && zclock_mono () - start >= LP_LUA_PROGRESS_MSEC) {
            progress = s_progress (L, r, start, false);
            drawn = drawn || progress;
        }
        int64_t left = deadline - zclock_mono ();
        if (left <= 0) {
            rc = lp_result_ready (r)? LP_OK: LP_ETIMEOUT;
            break;
        }
        rc = lp_result_wait (r, left < LP_LUA_POLL_MSEC? (int) left: LP_LUA_POLL_MSEC);
        if (rc == LP_OK || rc == LP_ELOST || rc == LP_ECLOSED)
            break;
        if (rc == LP_EINTR) {
            signals++;
            if (signals == 1 && interrupt && !intr)
                intr = lp_view_interrupt (interrupt);
            else
                break;
        }
        else
        if (rc != LP_ETIMEOUT)
            break;
    }
    lp_result_destroy (&intr);
    if (drawn)
        s_progress (L, r, start, true);
    return rc;
}

//  Raises the error for a wait that did not end with every reply in.
static int
s_raise_wait (lua_State *L, lp_result_t *r, int rc, int timeout_ms)
{
    if (rc == LP_ELOST || (rc == LP_OK && lp_result_failed (r) > 0))
        return s_raise_remote (L, r);   //  ControllerLost errors name it
    if (rc == LP_ETIMEOUT)
        return luaL_error (L, "luaparallel: timed out after %d ms (%d of %d replies "
                           "pending; see view.wait_timeout)", timeout_ms,
                           s_pending (r),
                           lp_result_count (r));
    if (rc == LP_EINTR)
        return luaL_error (L, "luaparallel: wait abandoned (interrupted)");
    return luaL_error (L, "luaparallel: %s", lp_strerror (rc));
}

//  Pushes the client userdata that owns view at idx (its uservalue).
static void
s_push_owner (lua_State *L, int idx)
{
    lua_getiuservalue (L, idx, 1);
}

//  Ends a view call: NULL result raises the client's error; blocking
//  views wait and push the combined value; non-blocking push the result.
static int
s_finish_as (lua_State *L, int view_idx, lp_result_t *r, bool block)
{
    l_view_t *vud = s_view_ud (L, view_idx);
    s_push_owner (L, view_idx);
    l_client_t *cud = (l_client_t *) lua_touserdata (L, -1);
    if (!r)
        return luaL_error (L, "luaparallel: %s",
                           cud && cud->client? lp_client_error (cud->client): lp_last_error ());
    s_push_result (L, r, -1);
    if (!block)
        return 1;
    int rc = s_wait (L, r, vud->view, vud->wait_timeout, true);
    if (rc != LP_OK || lp_result_failed (r) > 0)
        return s_raise_wait (L, r, rc, vud->wait_timeout);
    s_push_value (L, lp_result_get (r));
    return 1;
}

static int
s_finish (lua_State *L, int view_idx, lp_result_t *r)
{
    return s_finish_as (L, view_idx, r, s_view_ud (L, view_idx)->block);
}

//  For calls with no value (push, scatter): blocking returns nothing.
static int
s_finish_novalue (lua_State *L, int view_idx, lp_result_t *r)
{
    bool block = s_view_ud (L, view_idx)->block;
    int n = s_finish_as (L, view_idx, r, block);
    return block? 0: n;
}

//  Function argument -> source text or global name (a new Lua string on
//  the stack, returned).
static const char *
s_fn_arg (lua_State *L, int idx)
{
    idx = lua_absindex (L, idx);
    if (lua_type (L, idx) == LUA_TSTRING) {
        lua_pushvalue (L, idx);
        return lua_tostring (L, -1);
    }
    luaL_checktype (L, idx, LUA_TFUNCTION);
    lua_rawgetp (L, LUA_REGISTRYINDEX, &s_fnsource_key);
    lua_pushvalue (L, idx);
    lua_call (L, 1, 1);
    return luaL_checkstring (L, -1);
}

//  ---------------------------------------------------------------------
//  Module functions

//  lp.progress (fn | nil) --> the previous function. See s_wait.
static int
l_progress (lua_State *L)
{
    if (!lua_isnoneornil (L, 1))
        luaL_checktype (L, 1, LUA_TFUNCTION);
    lua_settop (L, 1);
    lua_rawgetp (L, LUA_REGISTRYINDEX, &s_progress_key);
    lua_pushvalue (L, 1);
    lua_rawsetp (L, LUA_REGISTRYINDEX, &s_progress_key);
    return 1;
}

static int
l_connect (lua_State *L)
{
    const char *file = luaL_optstring (L, 1, NULL);
    int timeout = (int) luaL_optinteger (L, 2, LP_CONNECT_TIMEOUT_MSEC);
    l_client_t *ud = (l_client_t *) lua_newuserdatauv (L, sizeof (l_client_t), 0);
    ud->client = NULL;
    luaL_setmetatable (L, CLIENT_MT);
    ud->client = lp_client_connect (file, timeout);
    if (!ud->client)
        return luaL_error (L, "luaparallel: %s", lp_last_error ());
    return 1;
}

//  ---------------------------------------------------------------------
//  Client

static int
l_client_gc (lua_State *L)
{
    l_client_t *ud = s_client_ud (L, 1);
    lp_client_destroy (&ud->client);
    return 0;
}

static int
l_client_tostring (lua_State *L)
{
    l_client_t *ud = s_client_ud (L, 1);
    lua_pushfstring (L, "lp.Client (%s)", ud->client? "connected": "closed");
    return 1;
}

static int
l_client_ids (lua_State *L)
{
    lp_client_t *client = s_client (L, 1);
    int ids [4096];
    int n = lp_client_ids (client, ids, 4096);
    if (n < 0)
        return luaL_error (L, "luaparallel: %s", lp_client_error (client));
    lua_createtable (L, n, 0);
    for (int i = 0; i < n && i < 4096; i++) {
        lua_pushinteger (L, ids [i]);
        lua_rawseti (L, -2, i + 1);
    }
    return 1;
}

static int
l_client_wait_for_engines (lua_State *L)
{
    lp_client_t *client = s_client (L, 1);
    int n = (int) luaL_checkinteger (L, 2);
    int timeout = (int) luaL_optinteger (L, 3, 30000);
    if (lp_client_wait_for_engines (client, n, timeout) == 0) {
        lua_pushboolean (L, 1);
        return 1;
    }
    lua_pushnil (L);
    lua_pushfstring (L, "fewer than %d engines after %d ms: %s", n, timeout,
                     lp_client_error (client));
    return 2;
}

static int
l_client_status (lua_State *L)
{
    lp_client_t *client = s_client (L, 1);
    int timeout = (int) luaL_optinteger (L, 2, LP_CONNECT_TIMEOUT_MSEC);
    lp_value_t *status = lp_client_status (client, timeout);
    if (!status)
        return luaL_error (L, "luaparallel: %s", lp_client_error (client));
    //  lp_lua_push_value may raise on memory: keep the value in a
    //  collectable box first? It only raises on out of memory; accept.
    lp_lua_push_value (L, status);
    lp_value_destroy (&status);
    return 1;
}

static void
s_new_view (lua_State *L, lp_view_t *view)
{
    l_view_t *ud = (l_view_t *) lua_newuserdatauv (L, sizeof (l_view_t), 2);
    ud->view = view;
    ud->block = true;
    ud->wait_timeout = s_default_wait ();
    ud->balanced = lp_view_is_balanced (view);
    luaL_setmetatable (L, VIEW_MT);
    lua_pushvalue (L, 1);               //  the client
    lua_setiuservalue (L, -2, 1);
    lua_newtable (L);                   //  flag values as set, for reading
    lua_setiuservalue (L, -2, 2);
}

static int
l_client_view (lua_State *L)
{
    lp_client_t *client = s_client (L, 1);
    int *targets = NULL;
    int ntargets = 0;
    int type = lua_type (L, 2);
    if (type == LUA_TNUMBER) {
        targets = (int *) lua_newuserdatauv (L, sizeof (int), 0);
        targets [0] = (int) luaL_checkinteger (L, 2);
        ntargets = 1;
    }
    else
    if (type == LUA_TTABLE) {
        ntargets = (int) luaL_len (L, 2);
        if (ntargets == 0)
            return luaL_argerror (L, 2, "empty list of targets");
        targets = (int *) lua_newuserdatauv (L, sizeof (int) * ntargets, 0);
        for (int i = 0; i < ntargets; i++) {
            lua_geti (L, 2, i + 1);
            int isnum;
            lua_Integer id = lua_tointegerx (L, -1, &isnum);
            if (!isnum || id < 0)
                return luaL_argerror (L, 2, "targets must be engine ids");
            targets [i] = (int) id;
            lua_pop (L, 1);
        }
    }
    else
    if (type == LUA_TSTRING) {
        if (!streq (lua_tostring (L, 2), "all"))
            return luaL_argerror (L, 2, "targets: \"all\", an id or a list of ids");
    }
    else
    if (type != LUA_TNONE && type != LUA_TNIL)
        return luaL_argerror (L, 2, "targets: \"all\", an id or a list of ids");
    lp_view_t *view = lp_client_view (client, targets, ntargets);
    if (!view)
        return luaL_error (L, "luaparallel: %s", lp_client_error (client));
    s_new_view (L, view);
    return 1;
}

static int
l_client_balanced (lua_State *L)
{
    lp_client_t *client = s_client (L, 1);
    lp_view_t *view = lp_client_balanced (client);
    if (!view)
        return luaL_error (L, "luaparallel: %s", lp_client_error (client));
    s_new_view (L, view);
    return 1;
}

static int
l_client_shutdown (lua_State *L)
{
    lp_client_t *client = s_client (L, 1);
    int timeout = (int) luaL_optinteger (L, 2, LP_CONNECT_TIMEOUT_MSEC);
    if (lp_client_shutdown_cluster (client, timeout))
        return luaL_error (L, "luaparallel: %s", lp_client_error (client));
    return 0;
}

static int
l_client_set_lost_after (lua_State *L)
{
    lp_client_t *client = s_client (L, 1);
    lua_Integer ms = luaL_checkinteger (L, 2);
    lp_client_set_lost_after (client, ms > INT32_MAX? INT32_MAX: (int) ms);
    return 0;
}

static int
l_client_close (lua_State *L)
{
    l_client_t *ud = s_client_ud (L, 1);
    lp_client_destroy (&ud->client);
    return 0;
}

//  ---------------------------------------------------------------------
//  Task store (docs/api.md, "Task store")

//  rc:fetch (msg_id [, ms]) --> result (pending until the request ends)
static int
l_client_fetch (lua_State *L)
{
    lp_client_t *client = s_client (L, 1);
    const char *msg_id = luaL_checkstring (L, 2);
    int timeout = (int) luaL_optinteger (L, 3, LP_CONNECT_TIMEOUT_MSEC);
    lp_result_t *r = lp_client_fetch (client, msg_id, timeout);
    if (!r)
        return luaL_error (L, "luaparallel: %s", lp_client_error (client));
    s_push_result (L, r, 1);
    return 1;
}

//  rc:resubmit (msg_id [, ms]) --> result of the new request
static int
l_client_resubmit (lua_State *L)
{
    lp_client_t *client = s_client (L, 1);
    const char *msg_id = luaL_checkstring (L, 2);
    int timeout = (int) luaL_optinteger (L, 3, LP_CONNECT_TIMEOUT_MSEC);
    lp_result_t *r = lp_client_resubmit (client, msg_id, timeout);
    if (!r)
        return luaL_error (L, "luaparallel: %s", lp_client_error (client));
    s_push_result (L, r, 1);
    return 1;
}

//  rc:history {status=, engine=, since=, until=, limit=} --> list of records
static int
l_client_history (lua_State *L)
{
    lp_client_t *client = s_client (L, 1);
    lp_value_t *query = lp_value_map ();
    if (!query)
        return luaL_error (L, "luaparallel: out of memory");
    if (!lua_isnoneornil (L, 2)) {
        luaL_checktype (L, 2, LUA_TTABLE);
        static const char *text [] = { "status", "since", "until" };
        for (int i = 0; i < 3; i++) {
            if (lua_getfield (L, 2, text [i]) != LUA_TNIL)
                lp_value_set (query, text [i], lp_value_string (luaL_checkstring (L, -1)));
            lua_pop (L, 1);
        }
        static const char *ints [] = { "engine", "limit" };
        for (int i = 0; i < 2; i++) {
            if (lua_getfield (L, 2, ints [i]) != LUA_TNIL)
                lp_value_set (query, ints [i], lp_value_int (luaL_checkinteger (L, -1)));
            lua_pop (L, 1);
        }
    }
    lp_value_t *records = lp_client_history (client, query, LP_CONNECT_TIMEOUT_MSEC);
    lp_value_destroy (&query);
    if (!records)
        return luaL_error (L, "luaparallel: %s", lp_client_error (client));
    lp_lua_push_value (L, records);
    lp_value_destroy (&records);
    return 1;
}

//  rc:purge ([before]) --> number of records removed (before: ISO date;
//  none: every ended request)
static int
l_client_purge (lua_State *L)
{
    lp_client_t *client = s_client (L, 1);
    const char *before = luaL_optstring (L, 2, NULL);
    int64_t removed = lp_client_purge (client, before, LP_CONNECT_TIMEOUT_MSEC);
    if (removed < 0)
        return luaL_error (L, "luaparallel: %s", lp_client_error (client));
    lua_pushinteger (L, (lua_Integer) removed);
    return 1;
}

//  ---------------------------------------------------------------------
//  Engines and event loops

//  rc:shutdown_engine (id [, ms]): engine id leaves the cluster; raises
//  on error or timeout (lp_client_shutdown_engine)
static int
l_client_shutdown_engine (lua_State *L)
{
    lp_client_t *client = s_client (L, 1);
    lua_Integer id = luaL_checkinteger (L, 2);
    luaL_argcheck (L, id >= 0 && id <= INT32_MAX, 2, "engine ids are non-negative integers");
    int timeout = (int) luaL_optinteger (L, 3, LP_LUA_ENGINE_MSEC);
    if (lp_client_shutdown_engine (client, (int) id, timeout))
        return luaL_error (L, "luaparallel: %s", lp_client_error (client));
    return 0;
}

//  rc:restart_engine (id [, ms]): a new process under the same id, once
//  registered; raises on error or timeout (lp_client_restart_engine)
static int
l_client_restart_engine (lua_State *L)
{
    lp_client_t *client = s_client (L, 1);
    lua_Integer id = luaL_checkinteger (L, 2);
    luaL_argcheck (L, id >= 0 && id <= INT32_MAX, 2, "engine ids are non-negative integers");
    int timeout = (int) luaL_optinteger (L, 3, LP_LUA_ENGINE_MSEC);
    if (lp_client_restart_engine (client, (int) id, timeout))
        return luaL_error (L, "luaparallel: %s", lp_client_error (client));
    return 0;
}

//  rc:fd () --> the descriptor for event loops (lp_client_fd); use it
//  with rc:poll (0), see docs/lpsh.md
static int
l_client_fd (lua_State *L)
{
    lp_client_t *client = s_client (L, 1);
    int fd = lp_client_fd (client);
    if (fd < 0)
        return luaL_error (L, "luaparallel: %s", lp_client_error (client));
    lua_pushinteger (L, fd);
    return 1;
}

//  rc:poll ([ms]) --> messages handled (default ms 0: only what is
//  there), or nil, "interrupted" (lp_client_poll)
static int
l_client_poll (lua_State *L)
{
    lp_client_t *client = s_client (L, 1);
    lua_Integer ms = luaL_optinteger (L, 2, 0);
    int n = lp_client_poll (client, ms < 0? 0: ms > INT32_MAX? INT32_MAX: (int) ms);
    if (n < 0) {
        lua_pushnil (L);
        lua_pushliteral (L, "interrupted");
        return 2;
    }
    lua_pushinteger (L, n);
    return 1;
}

//  rc:wait_any ({r1, r2, ...} [, ms]) --> the first result of the list
//  (in list order) whose replies have all ended, and its position; nil,
//  reason on timeout or signal. false entries are skipped.
static int
l_client_wait_any (lua_State *L)
{
    lp_client_t *client = s_client (L, 1);
    luaL_checktype (L, 2, LUA_TTABLE);
    int timeout = (int) luaL_optinteger (L, 3, s_default_wait ());
    int n = (int) luaL_len (L, 2);
    luaL_argcheck (L, n > 0, 2, "a list of results");
    lp_result_t **list = (lp_result_t **) lua_newuserdatauv (L, sizeof (lp_result_t *) * n, 0);
    for (int i = 0; i < n; i++) {
        lua_geti (L, 2, i + 1);
        if (lua_toboolean (L, -1) == 0)
            list [i] = NULL;            //  false (or a hole): skipped
        else {
            if (!luaL_testudata (L, -1, RESULT_MT))
                return luaL_argerror (L, 2, lua_pushfstring (L, "entry %d is not a result", i + 1));
            list [i] = s_result (L, -1);
        }
        lua_pop (L, 1);
    }
    int k = lp_client_wait_any (client, list, n, timeout < 0? 0: timeout);
    if (k < 0) {
        int rc = lp_client_errcode (client);
        if (rc != LP_ETIMEOUT && rc != LP_EINTR)
            return luaL_error (L, "luaparallel: %s", lp_client_error (client));
        lua_pushnil (L);
        lua_pushstring (L, lp_strerror (rc));
        return 2;
    }
    lua_geti (L, 2, k + 1);
    lua_pushinteger (L, k + 1);
    return 2;
}

static const luaL_Reg s_client_methods [] = {
    { "fetch", l_client_fetch },
    { "resubmit", l_client_resubmit },
    { "history", l_client_history },
    { "purge", l_client_purge },
    { "ids", l_client_ids },
    { "wait_for_engines", l_client_wait_for_engines },
    { "status", l_client_status },
    { "view", l_client_view },
    { "balanced", l_client_balanced },
    { "shutdown", l_client_shutdown },
    { "set_lost_after", l_client_set_lost_after },
    { "close", l_client_close },
    { "shutdown_engine", l_client_shutdown_engine },
    { "restart_engine", l_client_restart_engine },
    { "fd", l_client_fd },
    { "poll", l_client_poll },
    { "wait_any", l_client_wait_any },
    { NULL, NULL }
};

static int
l_client_index (lua_State *L)
{
    if (lua_type (L, 2) == LUA_TNUMBER) {
        lua_settop (L, 2);
        return l_client_view (L);
    }
    lua_getmetatable (L, 1);
    lua_getfield (L, -1, "methods");
    lua_pushvalue (L, 2);
    lua_rawget (L, -2);
    return 1;
}

//  ---------------------------------------------------------------------
//  View

static int
l_view_gc (lua_State *L)
{
    l_view_t *ud = (l_view_t *) luaL_checkudata (L, 1, VIEW_MT);
    lp_view_destroy (&ud->view);
    return 0;
}

static int
l_view_execute (lua_State *L)
{
    l_view_t *ud = s_view_ud (L, 1);
    const char *code = luaL_checkstring (L, 2);
    return s_finish (L, 1, lp_view_execute (ud->view, code));
}

static lp_value_t *
s_args (lua_State *L, int first, int last)
{
    lp_value_t *args = lp_value_array ();
    if (!args)
        luaL_error (L, "luaparallel: out of memory");
    for (int i = first; i <= last; i++) {
        char err [256];
        char root [32];
        snprintf (root, sizeof root, "arg%d", i - first + 1);
        lp_value_t *v = lp_lua_to_value (L, i, root, err, sizeof err);
        if (!v) {
            lp_value_destroy (&args);
            luaL_error (L, "SerializationError: %s", err);
        }
        if (lp_value_append (args, v)) {
            lp_value_destroy (&args);
            luaL_error (L, "luaparallel: out of memory");
        }
    }
    return args;
}

static int
l_view_apply (lua_State *L)
{
    l_view_t *ud = s_view_ud (L, 1);
    int top = lua_gettop (L);
    const char *fn = s_fn_arg (L, 2);
    lp_value_t *args = s_args (L, 3, top);
    return s_finish (L, 1, lp_view_apply (ud->view, fn, args));
}

//  view:map (f, seq [, seq2, ...]): f over the elements of seq; with
//  several sequences f (seq [i], seq2 [i], ...), up to the shortest
//  (lp_view_map_n)
static int
l_view_map (lua_State *L)
{
    l_view_t *ud = s_view_ud (L, 1);
    luaL_checkany (L, 3);
    int nseqs = lua_gettop (L) - 2;
    const char *fn = s_fn_arg (L, 2);
    if (nseqs == 1) {
        lp_value_t *seq = s_to_value (L, 3, "seq");
        return s_finish (L, 1, lp_view_map (ud->view, fn, seq));
    }
    lp_value_t **seqs = (lp_value_t **) lua_newuserdatauv (L, sizeof (lp_value_t *) * nseqs, 0);
    for (int k = 0; k < nseqs; k++) {
        char err [256];
        char root [32];
        snprintf (root, sizeof root, "seq%d", k + 1);
        seqs [k] = lp_lua_to_value (L, 3 + k, root, err, sizeof err);
        if (!seqs [k]) {
            while (k-- > 0)
                lp_value_destroy (&seqs [k]);
            return luaL_error (L, "SerializationError: %s", err);
        }
    }
    return s_finish (L, 1, lp_view_map_n (ud->view, fn, seqs, nseqs));
}

static int
l_view_push (lua_State *L)
{
    l_view_t *ud = s_view_ud (L, 1);
    if (lua_type (L, 2) == LUA_TSTRING) {
        const char *name = lua_tostring (L, 2);
        luaL_checkany (L, 3);
        lp_value_t *value = s_to_value (L, 3, name);
        return s_finish_novalue (L, 1, lp_view_push (ud->view, name, value));
    }
    //  A table of name = value: each value is converted on its own, so
    //  it may nest as deep as a value pushed by name (LP_VALUE_MAX_DEPTH).
    luaL_checktype (L, 2, LUA_TTABLE);
    lua_pushnil (L);
    while (lua_next (L, 2)) {
        if (lua_type (L, -2) != LUA_TSTRING)
            return luaL_argerror (L, 2, "a table of name = value (names are strings)");
        lua_pop (L, 1);
    }
    lp_value_t *ns = lp_value_map ();
    if (!ns)
        return luaL_error (L, "luaparallel: out of memory");
    char err [256];
    const char *failure = NULL;
    lua_pushnil (L);
    while (lua_next (L, 2)) {
        const char *name = lua_tostring (L, -2);
        lp_value_t *value = lp_lua_to_value (L, -1, name, err, sizeof err);
        lua_pop (L, 1);
        if (!value)
            failure = err;
        else
        if (lp_value_set (ns, name, value))
            failure = "out of memory";
        if (failure) {
            lua_pop (L, 1);
            break;
        }
    }
    if (failure || lp_value_len (ns) == 0) {
        lp_value_destroy (&ns);
        if (failure == err)
            return luaL_error (L, "SerializationError: %s", err);
        if (failure)
            return luaL_error (L, "luaparallel: %s", failure);
        return luaL_argerror (L, 2, "a table of name = value");
    }
    return s_finish_novalue (L, 1, lp_view_push_map (ud->view, ns));
}

static int
l_view_pull (lua_State *L)
{
    l_view_t *ud = s_view_ud (L, 1);
    const char *name = luaL_checkstring (L, 2);
    return s_finish (L, 1, lp_view_pull (ud->view, name));
}

static int
l_view_scatter (lua_State *L)
{
    l_view_t *ud = s_view_ud (L, 1);
    const char *name = luaL_checkstring (L, 2);
    luaL_checkany (L, 3);
    lp_value_t *seq = s_to_value (L, 3, name);
    return s_finish_novalue (L, 1, lp_view_scatter (ud->view, name, seq));
}

static int
l_view_gather (lua_State *L)
{
    l_view_t *ud = s_view_ud (L, 1);
    const char *name = luaL_checkstring (L, 2);
    return s_finish (L, 1, lp_view_gather (ud->view, name));
}

static int
l_view_interrupt (lua_State *L)
{
    l_view_t *ud = s_view_ud (L, 1);
    return s_finish (L, 1, lp_view_interrupt (ud->view));
}

static int
l_view_targets (lua_State *L)
{
    l_view_t *ud = s_view_ud (L, 1);
    int ids [4096];
    int n = lp_view_targets (ud->view, ids, 4096);
    if (n < 0)
        n = 0;
    lua_createtable (L, n, 0);
    for (int i = 0; i < n && i < 4096; i++) {
        lua_pushinteger (L, ids [i]);
        lua_rawseti (L, -2, i + 1);
    }
    return 1;
}

//  view:clear (): every target's Lua state reset (direct views only)
static int
l_view_clear (lua_State *L)
{
    l_view_t *ud = s_view_ud (L, 1);
    return s_finish_novalue (L, 1, lp_view_clear (ud->view));
}

//  view:dup () --> a copy (same client, targets, flags, block and
//  wait_timeout) whose flags are its own (lp_view_dup)
static int
l_view_dup (lua_State *L)
{
    l_view_t *ud = s_view_ud (L, 1);
    l_view_t *copy = (l_view_t *) lua_newuserdatauv (L, sizeof (l_view_t), 2);
    copy->view = NULL;
    luaL_setmetatable (L, VIEW_MT);
    copy->view = lp_view_dup (ud->view);
    if (!copy->view) {
        s_push_owner (L, 1);
        l_client_t *cud = (l_client_t *) lua_touserdata (L, -1);
        return luaL_error (L, "luaparallel: %s",
                           cud && cud->client? lp_client_error (cud->client): lp_last_error ());
    }
    copy->block = ud->block;
    copy->wait_timeout = ud->wait_timeout;
    copy->balanced = ud->balanced;
    s_push_owner (L, 1);
    lua_setiuservalue (L, -2, 1);
    lua_newtable (L);                   //  the flag values as set, copied
    lua_getiuservalue (L, 1, 2);
    lua_pushnil (L);
    while (lua_next (L, -2)) {
        lua_pushvalue (L, -2);
        lua_insert (L, -2);
        lua_settable (L, -5);
    }
    lua_pop (L, 1);
    lua_setiuservalue (L, -2, 2);
    return 1;
}

static int
l_view_tostring (lua_State *L)
{
    l_view_t *ud = (l_view_t *) luaL_checkudata (L, 1, VIEW_MT);
    lua_pushfstring (L, "lp.View (%s)", ud->block? "blocking": "non-blocking");
    return 1;
}

static const luaL_Reg s_view_methods [] = {
    { "execute", l_view_execute },
    { "apply", l_view_apply },
    { "map", l_view_map },
    { "push", l_view_push },
    { "pull", l_view_pull },
    { "scatter", l_view_scatter },
    { "gather", l_view_gather },
    { "interrupt", l_view_interrupt },
    { "targets", l_view_targets },
    { "clear", l_view_clear },
    { "dup", l_view_dup },
    { NULL, NULL }
};

//  View flags settable from Lua (besides block and wait_timeout);
//  balanced: only on load-balanced views.
static const struct {
    const char *name;
    bool balanced;
} s_flags [] = {
    { "targets", false }, { "time_limit", false }, { "retries", true },
    { "timeout", true }, { "chunksize", true }, { "after", true },
    { "follow", true }, { "success", true }, { "failure", true },
    { NULL, false }
};

static int
s_flag (const char *key)
{
    for (int i = 0; s_flags [i].name; i++)
        if (streq (key, s_flags [i].name))
            return i;
    return -1;
}

//  Non-negative integer flag value (nil = 0).
static int
s_flag_int (lua_State *L, int idx, const char *name)
{
    if (lua_isnil (L, idx))
        return 0;
    int isnum;
    lua_Integer n = lua_tointegerx (L, idx, &isnum);
    if (!isnum || n < 0 || n > INT32_MAX)
        luaL_error (L, "luaparallel: view.%s must be a non-negative integer or nil", name);
    return (int) n;
}

//  Results (a result, a list of results, or nil) as a C array in a
//  Lua userdata left on the stack; returns the count.
static int
s_flag_results (lua_State *L, int idx, const char *name, lp_result_t ***list_p)
{
    idx = lua_absindex (L, idx);
    *list_p = NULL;
    if (lua_isnil (L, idx)) {
        lua_pushnil (L);
        return 0;
    }
    if (luaL_testudata (L, idx, RESULT_MT)) {
        lp_result_t **list = (lp_result_t **) lua_newuserdatauv (L, sizeof (lp_result_t *), 0);
        list [0] = s_result (L, idx);
        *list_p = list;
        return 1;
    }
    if (!lua_istable (L, idx))
        luaL_error (L, "luaparallel: view.%s must be a result, a list of results or nil", name);
    int n = (int) luaL_len (L, idx);
    lp_result_t **list = (lp_result_t **) lua_newuserdatauv (L, sizeof (lp_result_t *) * (n + 1), 0);
    for (int i = 0; i < n; i++) {
        lua_geti (L, idx, i + 1);
        if (!luaL_testudata (L, -1, RESULT_MT))
            luaL_error (L, "luaparallel: view.%s[%d] is not a result", name, i + 1);
        list [i] = s_result (L, -1);
        lua_pop (L, 1);
    }
    *list_p = list;
    return n;
}

//  Targets (an id, a list of ids, "all" or nil) in a userdata on the
//  stack; returns the count (0 = all / any).
static int
s_flag_targets (lua_State *L, int idx, int **ids_p)
{
    idx = lua_absindex (L, idx);
    *ids_p = NULL;
    if (lua_isnil (L, idx) || (lua_type (L, idx) == LUA_TSTRING
                               && streq (lua_tostring (L, idx), "all"))) {
        lua_pushnil (L);
        return 0;
    }
    int isnum;
    if (lua_type (L, idx) == LUA_TNUMBER) {
        lua_Integer id = lua_tointegerx (L, idx, &isnum);
        if (!isnum || id < 0 || id > INT32_MAX)
            luaL_error (L, "luaparallel: view.targets: engine ids are non-negative integers");
        int *ids = (int *) lua_newuserdatauv (L, sizeof (int), 0);
        ids [0] = (int) id;
        *ids_p = ids;
        return 1;
    }
    if (!lua_istable (L, idx))
        luaL_error (L, "luaparallel: view.targets: an id, a list of ids, \"all\" or nil");
    int n = (int) luaL_len (L, idx);
    int *ids = (int *) lua_newuserdatauv (L, sizeof (int) * (n + 1), 0);
    for (int i = 0; i < n; i++) {
        lua_geti (L, idx, i + 1);
        lua_Integer id = lua_tointegerx (L, -1, &isnum);
        if (!isnum || id < 0 || id > INT32_MAX)
            luaL_error (L, "luaparallel: view.targets: engine ids are non-negative integers");
        ids [i] = (int) id;
        lua_pop (L, 1);
    }
    *ids_p = ids;
    return n;
}

//  view.<flag> = value (value at 3). Remembers the value for reading.
static void
s_set_flag (lua_State *L, l_view_t *ud, int flag)
{
    const char *name = s_flags [flag].name;
    if (s_flags [flag].balanced && !ud->balanced)
        luaL_error (L, "luaparallel: %s is a load-balanced view flag (use view:push "
                    "to set a global named %s)", name, name);
    lp_view_t *view = ud->view;
    if (streq (name, "targets")) {
        int *ids;
        int n = s_flag_targets (L, 3, &ids);
        if (!ud->balanced && n == 0 && !lua_isnil (L, 3) && lua_type (L, 3) != LUA_TSTRING)
            luaL_error (L, "luaparallel: view.targets: empty list of targets");
        if (lp_view_set_targets (view, ids, n))
            luaL_error (L, "luaparallel: view.targets: invalid engine id or out of memory");
    }
    else
    if (streq (name, "time_limit"))
        lp_view_set_time_limit (view, s_flag_int (L, 3, name));
    else
    if (streq (name, "retries"))
        lp_view_set_retries (view, s_flag_int (L, 3, name));
    else
    if (streq (name, "timeout"))
        lp_view_set_timeout (view, s_flag_int (L, 3, name));
    else
    if (streq (name, "chunksize"))
        lp_view_set_chunksize (view, lua_isnil (L, 3)? 1: s_flag_int (L, 3, name));
    else
    if (streq (name, "after") || streq (name, "follow")) {
        lp_result_t **list;
        int n = s_flag_results (L, 3, name, &list);
        int rc = streq (name, "after")? lp_view_set_after (view, list, n)
                                      : lp_view_set_follow (view, list, n);
        if (rc)
            luaL_error (L, "luaparallel: view.%s: out of memory", name);
    }
    else {
        //  success / failure
        lua_getiuservalue (L, 1, 2);
        lua_getfield (L, -1, "success");
        bool success = lua_isnil (L, -1)? true: lua_toboolean (L, -1);
        lua_getfield (L, -2, "failure");
        bool failure = lua_toboolean (L, -1);
        lua_pop (L, 3);
        if (streq (name, "success"))
            success = lua_isnil (L, 3)? true: lua_toboolean (L, 3);
        else
            failure = lua_toboolean (L, 3);
        lp_view_set_dependency_flags (view, success, failure);
    }
    lua_getiuservalue (L, 1, 2);
    lua_pushvalue (L, 3);
    lua_setfield (L, -2, name);
    lua_pop (L, 1);
}

//  view.block, view.wait_timeout, flags, methods, else a blocking pull.
static int
l_view_index (lua_State *L)
{
    l_view_t *ud = s_view_ud (L, 1);
    const char *key = luaL_checkstring (L, 2);
    if (streq (key, "block")) {
        lua_pushboolean (L, ud->block);
        return 1;
    }
    if (streq (key, "wait_timeout")) {
        lua_pushinteger (L, ud->wait_timeout);
        return 1;
    }
    int flag = s_flag (key);
    if (flag >= 0 && !streq (key, "targets")) {
        lua_getiuservalue (L, 1, 2);
        lua_getfield (L, -1, key);
        if (lua_isnil (L, -1)) {
            lua_pop (L, 1);
            if (streq (key, "chunksize"))
                lua_pushinteger (L, 1);
            else
            if (streq (key, "success"))
                lua_pushboolean (L, 1);
            else
            if (streq (key, "failure"))
                lua_pushboolean (L, 0);
            else
            if (streq (key, "retries"))
                lua_pushinteger (L, 0);
            else
                lua_pushnil (L);
        }
        return 1;
    }
    lua_getmetatable (L, 1);
    lua_getfield (L, -1, "methods");
    lua_getfield (L, -1, key);
    if (!lua_isnil (L, -1))
        return 1;
    lua_settop (L, 2);
    return s_finish_as (L, 1, lp_view_pull (ud->view, key), true);
}

static int
l_view_newindex (lua_State *L)
{
    l_view_t *ud = s_view_ud (L, 1);
    const char *key = luaL_checkstring (L, 2);
    if (streq (key, "block")) {
        ud->block = lua_toboolean (L, 3);
        return 0;
    }
    if (streq (key, "wait_timeout")) {
        if (lua_isnil (L, 3))
            ud->wait_timeout = s_default_wait ();
        else {
            lua_Integer ms = luaL_checkinteger (L, 3);
            if (ms <= 0 || ms > INT32_MAX)
                return luaL_error (L, "luaparallel: view.wait_timeout must be a positive "
                                   "number of ms (nil: the default)");
            ud->wait_timeout = (int) ms;
        }
        return 0;
    }
    int flag = s_flag (key);
    if (flag >= 0) {
        lua_settop (L, 3);
        s_set_flag (L, ud, flag);
        return 0;
    }
    lp_value_t *value = s_to_value (L, 3, key);
    lua_settop (L, 3);
    s_finish_as (L, 1, lp_view_push (ud->view, key, value), true);
    return 0;
}

//  ---------------------------------------------------------------------
//  Result

static int
l_result_gc (lua_State *L)
{
    l_result_t *ud = (l_result_t *) luaL_checkudata (L, 1, RESULT_MT);
    lp_result_destroy (&ud->result);
    return 0;
}

static lp_client_t *
s_result_client (lua_State *L, int idx)
{
    lua_getiuservalue (L, idx, 1);
    l_client_t *cud = (l_client_t *) lua_touserdata (L, -1);
    lua_pop (L, 1);
    return cud? cud->client: NULL;
}

//  r:wait ([ms]) --> true when every reply ended (values, errors or
//  ControllerLost), else false, reason ("timed out", "interrupted").
static int
l_result_wait (lua_State *L)
{
    lp_result_t *r = s_result (L, 1);
    int timeout = (int) luaL_optinteger (L, 2, s_default_wait ());
    int rc = s_wait (L, r, NULL, timeout, lua_isnoneornil (L, 2));
    bool done = rc == LP_OK || rc == LP_ELOST || rc == LP_ECLOSED;
    lua_pushboolean (L, done);
    if (done)
        return 1;
    lua_pushstring (L, lp_strerror (rc));
    return 2;
}

static int
l_result_get (lua_State *L)
{
    lp_result_t *r = s_result (L, 1);
    int timeout = (int) luaL_optinteger (L, 2, s_default_wait ());
    int rc = s_wait (L, r, NULL, timeout, true);
    if (rc != LP_OK || lp_result_failed (r) > 0)
        return s_raise_wait (L, r, rc, timeout);
    s_push_value (L, lp_result_get (r));
    return 1;
}

//  r:abort () --> number aborted, list of {msg_id, engine, reason}
static int
l_result_abort (lua_State *L)
{
    lp_result_t *r = s_result (L, 1);
    lp_client_t *client = s_result_client (L, 1);
    int n = lp_result_abort (r);
    if (n < 0)
        return luaL_error (L, "luaparallel: abort failed: %s",
                           client? lp_client_error (client): lp_last_error ());
    lua_pushinteger (L, n);
    const lp_value_t *rest = lp_result_not_aborted (r);
    if (rest && lp_value_len (rest) > 0)
        lp_lua_push_value (L, rest);
    else
        lua_newtable (L);
    return 2;
}

//  r:submitted (i), r:started (i), r:completed (i): seconds or nil
static int
s_push_time (lua_State *L, double seconds)
{
    if (seconds < 0)
        lua_pushnil (L);
    else
        lua_pushnumber (L, seconds);
    return 1;
}

static int
l_result_ready (lua_State *L)
{
    lua_pushboolean (L, lp_result_ready (s_result (L, 1)));
    return 1;
}

static int
l_result_count (lua_State *L)
{
    lua_pushinteger (L, lp_result_count (s_result (L, 1)));
    return 1;
}

//  r:done () --> replies in so far (values and errors), without blocking
static int
l_result_done (lua_State *L)
{
    lua_pushinteger (L, lp_result_done (s_result (L, 1)));
    return 1;
}

static int
l_result_failed (lua_State *L)
{
    lua_pushinteger (L, lp_result_failed (s_result (L, 1)));
    return 1;
}

//  Reply index argument (1-based in Lua) -> 0-based.
static int
s_index (lua_State *L, lp_result_t *r)
{
    lua_Integer i = luaL_checkinteger (L, 2);
    luaL_argcheck (L, i >= 1 && i <= lp_result_count (r), 2, "reply index out of range");
    return (int) i - 1;
}

static int
l_result_engine (lua_State *L)
{
    lp_result_t *r = s_result (L, 1);
    lua_pushinteger (L, lp_result_engine (r, s_index (L, r)));
    return 1;
}

//  r:stdout (i [, from]): the text from byte `from` on (default 1), so a
//  reader that shows it as it grows copies only what is new
static int
l_result_stdout (lua_State *L)
{
    lp_result_t *r = s_result (L, 1);
    const char *out = lp_result_stdout (r, s_index (L, r));
    lua_Integer from = luaL_optinteger (L, 3, 1);
    size_t len = out? strlen (out): 0;
    if (from < 1)
        from = 1;
    if ((size_t) (from - 1) >= len)
        lua_pushliteral (L, "");
    else
        lua_pushlstring (L, out + from - 1, len - (size_t) (from - 1));
    return 1;
}

static int
l_result_value (lua_State *L)
{
    lp_result_t *r = s_result (L, 1);
    s_push_value (L, lp_result_value (r, s_index (L, r)));
    return 1;
}

static int
l_result_values (lua_State *L)
{
    lp_result_t *r = s_result (L, 1);
    const lp_value_t *values = lp_result_values (r, s_index (L, r));
    if (!values)
        lua_pushnil (L);
    else
    if (lp_value_type (values) == LP_ARRAY && lp_value_len (values) == 0)
        lua_newtable (L);
    else
        lp_lua_push_value (L, values);
    return 1;
}

//  r:state (i) --> "pending", "ok" or "error" (takes in what arrived)
static int
l_result_state (lua_State *L)
{
    lp_result_t *r = s_result (L, 1);
    int i = s_index (L, r);
    lp_result_done (r);                 //  takes in what arrived
    switch (lp_result_state (r, i)) {
        case LP_STATE_OK:    lua_pushliteral (L, "ok"); break;
        case LP_STATE_ERROR: lua_pushliteral (L, "error"); break;
        default:             lua_pushliteral (L, "pending"); break;
    }
    return 1;
}

//  r:next ([ms]) --> i of the next reply to end (each once, in the order
//  they ended); nil once every reply has been handed out; false, reason
//  when none ended within ms (default: the default wait) or on a signal
//  (lp_result_next)
static int
l_result_next (lua_State *L)
{
    lp_result_t *r = s_result (L, 1);
    lua_Integer ms = luaL_optinteger (L, 2, s_default_wait ());
    int slot = -1;
    int rc = lp_result_next (r, ms < 0? 0: ms > INT32_MAX? INT32_MAX: (int) ms, &slot);
    if (rc == LP_OK && slot < 0) {
        lua_pushnil (L);
        return 1;
    }
    if (rc == LP_OK) {
        lua_pushinteger (L, slot + 1);
        return 1;
    }
    lua_pushboolean (L, 0);
    lua_pushstring (L, lp_strerror (rc));
    return 2;
}

static int
l_result_error (lua_State *L)
{
    lp_result_t *r = s_result (L, 1);
    int i = s_index (L, r);
    if (lp_result_error (r, i))
        s_push_error (L, r, i);
    else
        lua_pushnil (L);
    return 1;
}

static int s_index (lua_State *L, lp_result_t *r);

static int
l_result_submitted (lua_State *L)
{
    lp_result_t *r = s_result (L, 1);
    return s_push_time (L, lp_result_submitted (r, s_index (L, r)));
}

static int
l_result_started (lua_State *L)
{
    lp_result_t *r = s_result (L, 1);
    return s_push_time (L, lp_result_started (r, s_index (L, r)));
}

static int
l_result_completed (lua_State *L)
{
    lp_result_t *r = s_result (L, 1);
    return s_push_time (L, lp_result_completed (r, s_index (L, r)));
}

static int
l_result_msg_id (lua_State *L)
{
    lp_result_t *r = s_result (L, 1);
    const char *id = lp_result_msg_id (r, s_index (L, r));
    lua_pushstring (L, id? id: "");
    return 1;
}

//  r:msg_ids () --> list of the distinct msg_ids of its requests
static int
l_result_msg_ids (lua_State *L)
{
    lp_result_t *r = s_result (L, 1);
    lp_value_t *ids = lp_result_msg_ids (r);
    if (!ids)
        return luaL_error (L, "luaparallel: out of memory");
    lp_lua_push_value (L, ids);
    lp_value_destroy (&ids);
    return 1;
}

static int
l_result_tostring (lua_State *L)
{
    l_result_t *ud = (l_result_t *) luaL_checkudata (L, 1, RESULT_MT);
    if (!ud->result)
        lua_pushliteral (L, "lp.Result (gone)");
    else
        lua_pushfstring (L, "lp.Result (%d replies, %s)", lp_result_count (ud->result),
                         lp_result_ready (ud->result)? "ready": "pending");
    return 1;
}

static const luaL_Reg s_result_methods [] = {
    { "get", l_result_get },
    { "wait", l_result_wait },
    { "ready", l_result_ready },
    { "count", l_result_count },
    { "done", l_result_done },
    { "failed", l_result_failed },
    { "engine", l_result_engine },
    { "stdout", l_result_stdout },
    { "value", l_result_value },
    { "values", l_result_values },
    { "state", l_result_state },
    { "next", l_result_next },
    { "error", l_result_error },
    { "msg_id", l_result_msg_id },
    { "msg_ids", l_result_msg_ids },
    { "abort", l_result_abort },
    { "submitted", l_result_submitted },
    { "started", l_result_started },
    { "completed", l_result_completed },
    { NULL, NULL }
};

//  ---------------------------------------------------------------------
//  Remote error object

static int
l_error_tostring (lua_State *L)
{
    lua_getfield (L, 1, "message");
    if (!lua_isstring (L, -1)) {
        lua_pop (L, 1);
        lua_pushliteral (L, "remote error");
    }
    return 1;
}

//  ---------------------------------------------------------------------
//  Opener

static void
s_new_class (lua_State *L, const char *name, const luaL_Reg *methods,
             lua_CFunction gc, lua_CFunction tostring, lua_CFunction index,
             lua_CFunction newindex)
{
    luaL_newmetatable (L, name);
    lua_newtable (L);
    luaL_setfuncs (L, methods, 0);
    if (!index) {
        lua_pushvalue (L, -1);
        lua_setfield (L, -3, "__index");
    }
    lua_setfield (L, -2, "methods");
    if (index) {
        lua_pushcfunction (L, index);
        lua_setfield (L, -2, "__index");
    }
    if (newindex) {
        lua_pushcfunction (L, newindex);
        lua_setfield (L, -2, "__newindex");
    }
    lua_pushcfunction (L, gc);
    lua_setfield (L, -2, "__gc");
    lua_pushcfunction (L, tostring);
    lua_setfield (L, -2, "__tostring");
    lua_pop (L, 1);
}

int luaopen_luaparallel (lua_State *L);

int
luaopen_luaparallel (lua_State *L)
{
    luaL_checkversion (L);
    s_new_class (L, CLIENT_MT, s_client_methods, l_client_gc, l_client_tostring,
                 l_client_index, NULL);
    s_new_class (L, VIEW_MT, s_view_methods, l_view_gc, l_view_tostring,
                 l_view_index, l_view_newindex);
    s_new_class (L, RESULT_MT, s_result_methods, l_result_gc, l_result_tostring,
                 NULL, NULL);
    luaL_newmetatable (L, ERROR_MT);
    lua_pushcfunction (L, l_error_tostring);
    lua_setfield (L, -2, "__tostring");
    lua_pop (L, 1);

    if (luaL_loadbuffer (L, s_fnsource_lua, strlen (s_fnsource_lua), "=luaparallel.fnsource"))
        return lua_error (L);
    lua_call (L, 0, 1);
    lua_rawsetp (L, LUA_REGISTRYINDEX, &s_fnsource_key);

    lua_newtable (L);
    lua_pushcfunction (L, l_connect);
    lua_setfield (L, -2, "connect");
    lua_pushcfunction (L, l_progress);
    lua_setfield (L, -2, "progress");
    //  lp.fnsource (f): the source text apply would send for f
    lua_rawgetp (L, LUA_REGISTRYINDEX, &s_fnsource_key);
    lua_setfield (L, -2, "fnsource");
    lp_lua_open_array (L);
    lua_setfield (L, -2, "array");
    lua_pushliteral (L, LP_VERSION_STRING);
    lua_setfield (L, -2, "version");
    luaL_getmetatable (L, ERROR_MT);
    lua_setfield (L, -2, "RemoteError");
    return 1;
}
