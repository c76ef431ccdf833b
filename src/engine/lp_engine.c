/*  =========================================================================
    lp_engine.c - the engine's Lua state

    Every request runs as one outer lua_pcall of a C function (s_job_run)
    so that our own marshalling (pushing arguments, converting results) is
    protected too: a memory error anywhere becomes a MemoryError reply and
    the state lives on. User code runs in an inner lua_pcall whose message
    handler (the pattern of lua.c's msghandler) keeps the message as the
    error value and stashes luaL_traceback in the registry.

    Memory cap: the lua_Alloc counts live bytes and refuses growth past the
    cap (never a free or a shrink); Lua then raises its memory error. After
    a MemoryError the request's garbage is collected at once (full cycle)
    and malloc_trim gives the pages back, so the process shrinks again.
    Every request starts with lua_gc (LUA_GCRESTART): a user's
    collectgarbage ("stop") ends with its request.

    Results of any size are converted: the wire carries tables and long
    strings in pieces (lp_codec, ext 1-3), so no encoded size is refused
    here; only memory bounds a result (a failed conversion is a
    MemoryError or SerializationError reply).

    Abort by msg_id: the session tells the engine which msg_id it serves
    (lp_engine_begin_request / end_request); the heart marks ids with
    lp_engine_abort. Running id, a ring of completed ids and the marks
    live under the same mutex as the interrupt state.

    Interrupt: the heart thread calls lp_engine_interrupt, which (under a
    mutex shared with request start/end) records the running request's
    sequence number and installs a count hook with lua_sethook, which Lua
    documents as safe to call asynchronously. The hook raises "interrupted"
    while the recorded number matches the running request, on every
    instruction, so a user pcall cannot swallow it; otherwise it removes
    itself. The main thread removes the hook after each request. No hook is
    ever on in normal operation (Lua 5.4 with a hook runs about 2x slower).

    Walltime: an engine started by a batch system knows when its job ends
    (lp_engine_walltime_left, lp.walltime_left () in Lua); the session
    refuses a request whose time_limit would outlast it (WalltimeExceeded)
    instead of starting work the batch system will kill.

    print and io.write (and io.stdout:write) are captured: each call goes
    to the output callback at once (published on iopub by the session) and
    is accumulated for the reply's metadata "stdout".
    =========================================================================
*/
#include "lp_engine.h"
#include "lp_proto.h"
#include "lp_util.h"
#include "lp_luavalue.h"
#include <lauxlib.h>
#include <lualib.h>
#include <inttypes.h>
#include <libgen.h>
#include <limits.h>
#include <malloc.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/resource.h>
#include <unistd.h>

//  Under AddressSanitizer freed memory sits in its quarantine, which
//  malloc_trim does not reach; the sanitizer's own call returns it.
#if defined (__SANITIZE_ADDRESS__)
#   define S_ASAN 1
#elif defined (__has_feature)
#   if __has_feature (address_sanitizer)
#       define S_ASAN 1
#   endif
#endif
#ifdef S_ASAN
void __sanitizer_purge_allocator (void);
#endif

//  Where the engine's Lua files are (CMake sets all three): installed in
//  LP_LUA_INSTALL_DIR (<prefix>/share/luaparallel/lua), or in the source
//  tree's lua/ for an engine run from the build folder LP_BUILD_DIR.
#ifndef LP_LUA_INSTALL_DIR
#   define LP_LUA_INSTALL_DIR "/usr/local/share/luaparallel/lua"
#endif
#ifndef LP_LUA_SOURCE_DIR
#   define LP_LUA_SOURCE_DIR "lua"
#endif
#ifndef LP_BUILD_DIR
#   define LP_BUILD_DIR ""
#endif

//  Registry keys: addresses of static chars
static char s_traceback_key;
static char s_cache_key;
static char s_stdout_key;
static char s_write_key;

//  A Lua string lent to a value being sent (lp_lua_set_borrower): Lua's
//  free of its block is deferred until the senders are done with it
typedef struct _s_pin_t {
    struct _s_pin_t *next;              //  engine's list (Lua thread only)
    void *block;                        //  the string's allocation
    atomic_int refs;                    //  1 for Lua while in the list,
                                        //  plus one per value lent
} s_pin_t;

struct _lp_engine_t {
    lua_State *L;                       //  the state; main thread only
    size_t memory_limit;                //  bytes, 0 = none
    size_t memory_used;                 //  bytes held by L
    int id;                             //  engine id for lp.id, -1 unset
    int rank;                           //  MPI rank for lp.rank, -1 none
    int size;                           //  MPI world size for lp.size, -1 none
    int nice;                           //  niceness increment for requests
    bool niced;                         //  applied (at the first request)
    size_t cache_count;                 //  entries in the function cache
    lp_engine_output_fn *output_fn;     //  print sink, or NULL
    void *output_arg;                   //  its argument
    char *out;                          //  captured stdout of this request
    size_t out_len;                     //  bytes in out
    size_t out_cap;                     //  bytes allocated
    bool out_truncated;                 //  capture hit out_max
    size_t out_max;                     //  capture cap, bytes
    uint64_t out_dropped;               //  bytes past the cap this request
    bool out_marked;                    //  truncation marker appended
    pthread_mutex_t lock;               //  guards L swaps, hook, running
    uint64_t seq;                       //  request counter
    _Atomic uint64_t running;           //  seq of the running request, 0 none
    _Atomic uint64_t interrupt;         //  seq asked to stop
    _Atomic int64_t deadline;           //  zclock_mono ms the running request
                                        //  must end by, 0 = none
    _Atomic bool timed_out;             //  the interrupt was the time limit
    int64_t time_limit;                 //  ms, for the next request only
    bool hooked;                        //  hook installed (under lock)
    _Atomic int64_t interrupt_at;       //  zclock_mono when `interrupt` was
                                        //  asked, for the stuck watch
    char *current;                      //  msg_id being served, or NULL
                                        //  (this and below: under lock)
    char *done [LP_ENGINE_DONE_IDS];    //  ring of completed msg_ids
    size_t done_next;                   //  slot the next one goes to
    zhashx_t *done_set;                 //  the same ids, for lookups
    zhashx_t *marks;                    //  aborted msg_id -> int64_t
    int64_t marks_first;                //  no mark expires before this
                                        //  zclock_mono when it expires
    s_pin_t *pins;                      //  lent strings Lua still has
};

//  What one request does and what it produced
typedef enum { S_EXECUTE, S_APPLY, S_MAP, S_MAP_STAR, S_PUSH, S_PULL } s_op_t;

typedef struct {
    lp_engine_t *self;                  //  the engine
    s_op_t op;                          //  what to do
    const char *text;                   //  code or fn
    const lp_value_t *arg;              //  args, items, ns or names
    lp_value_t *values;                 //  results (array), when ok
    const char *ename;                  //  error name, NULL when ok
    char *evalue;                       //  error message (heap)
    char *traceback;                    //  traceback (heap) or NULL
} s_job_t;

//  --------------------------------------------------------------------------
//  Allocator with a cap. Lua assumes shrinking never fails: when realloc
//  cannot shrink we keep the old block.

static void *
s_alloc (void *ud, void *ptr, size_t osize, size_t nsize)
{
    lp_engine_t *self = (lp_engine_t *) ud;
    if (ptr && osize == 0 && nsize > 0) {
        //  lp_lua_push_value_take hands over a malloc'd block of nsize
        //  bytes (never a call Lua makes): count it, keep it where it is
        if (self->memory_limit && self->memory_used + nsize > self->memory_limit)
            return NULL;
        self->memory_used += nsize;
        return ptr;
    }
    size_t old = ptr ? osize : 0;
    if (nsize == 0 && ptr && self->pins) {
        //  A lent string's block waits for its last sender
        for (s_pin_t **link = &self->pins; *link; link = &(*link)->next) {
            s_pin_t *pin = *link;
            if (pin->block == ptr) {
                *link = pin->next;
                self->memory_used -= old;
                if (atomic_fetch_sub (&pin->refs, 1) == 1) {
                    free (pin->block);
                    free (pin);
                }
                return NULL;
            }
        }
    }
    if (nsize == 0) {
        free (ptr);
        self->memory_used -= old;
        return NULL;
    }
    if (self->memory_limit && nsize > old
    &&  self->memory_used - old + nsize > self->memory_limit)
        return NULL;
    void *block = realloc (ptr, nsize);
    if (!block)
        return nsize <= old? ptr: NULL;
    self->memory_used = self->memory_used - old + nsize;
    return block;
}

//  A sender is done with a lent string (any thread)
static void
s_pin_release (void *arg)
{
    s_pin_t *pin = (s_pin_t *) arg;
    if (atomic_fetch_sub (&pin->refs, 1) == 1) {
        free (pin->block);
        free (pin);
    }
}

//  Forgets pins no sender holds any more (Lua thread)
static void
s_pins_sweep (lp_engine_t *self)
{
    s_pin_t **link = &self->pins;
    while (*link) {
        s_pin_t *pin = *link;
        if (atomic_load (&pin->refs) == 1) {
            *link = pin->next;
            free (pin);
        }
        else
            link = &pin->next;
    }
}

//  lp_lua_borrow_fn: a large string of the state goes out from its own
//  bytes; its block is pinned until the reply carrying it has been sent
static bool
s_borrow (void *ud, const char *data, size_t len,
          void (**release_p) (void *), void **arg_p)
{
    (void) len;
    lp_engine_t *self = (lp_engine_t *) ud;
    size_t head = lp_lua_string_head ();
    if (head == 0)
        return false;
    void *block = LP_UNCONST (char *, data) - head;
    s_pin_t *pin = self->pins;
    while (pin && pin->block != block)
        pin = pin->next;
    if (!pin) {
        pin = (s_pin_t *) malloc (sizeof (s_pin_t));
        if (!pin)
            return false;
        pin->block = block;
        atomic_init (&pin->refs, 1);
        pin->next = self->pins;
        self->pins = pin;
    }
    atomic_fetch_add (&pin->refs, 1);
    *release_p = s_pin_release;
    *arg_p = pin;
    return true;
}

static void
s_mark_destroy (void **item_p)
{
    free (*item_p);
    *item_p = NULL;
}

static lp_engine_t *
s_self (lua_State *L)
{
    return *(lp_engine_t **) lua_getextraspace (L);
}

//  --------------------------------------------------------------------------
//  Output capture

//  The capture keeps the first out_max bytes of a request's output and
//  counts the rest; the reply's stdout then ends with a marker that says
//  how many bytes were dropped (lp_engine_stdout). Only what is kept is
//  streamed, so the streamed text is always a prefix of the reply's.
static bool
s_out_grow (lp_engine_t *self, size_t need)
{
    if (need <= self->out_cap)
        return true;
    size_t cap = self->out_cap? self->out_cap: 256;
    while (cap < need)
        cap *= 2;
    char *out = (char *) realloc (self->out, cap);
    if (!out)
        return false;
    self->out = out;
    self->out_cap = cap;
    return true;
}

static void
s_output (lp_engine_t *self, const char *text, size_t len)
{
    if (len == 0)
        return;
    if (self->out_truncated) {
        self->out_dropped += len;
        return;
    }
    size_t kept = len;
    if (self->out_len + len > self->out_max) {
        //  keep what fits, then nothing more
        self->out_truncated = true;
        kept = self->out_max - self->out_len;
    }
    if (kept > 0 && !s_out_grow (self, self->out_len + kept + 1)) {
        self->out_truncated = true;
        kept = 0;
    }
    if (kept == 0) {
        self->out_dropped += len;
        return;
    }
    //  Streamed before it is appended: the stream's offset is out_len
    //  (and out_dropped is still 0: lp_engine_stdout adds no marker yet)
    if (self->output_fn)
        self->output_fn (self->output_arg, text, kept);
    memcpy (self->out + self->out_len, text, kept);
    self->out_len += kept;
    self->out [self->out_len] = 0;
    self->out_dropped += len - kept;
}

//  print: tostring of each argument, tabs between, newline at the end
static int
l_print (lua_State *L)
{
    int n = lua_gettop (L);
    luaL_Buffer b;
    luaL_buffinit (L, &b);
    for (int i = 1; i <= n; i++) {
        luaL_tolstring (L, i, NULL);
        if (i > 1)
            luaL_addchar (&b, '\t');
        //  luaL_tolstring pushed the string; addvalue pops it
        luaL_addvalue (&b);
    }
    luaL_addchar (&b, '\n');
    luaL_pushresult (&b);
    size_t len;
    const char *text = lua_tolstring (L, -1, &len);
    s_output (s_self (L), text, len);
    return 0;
}

//  Writes arguments first..top as io.write does (strings and numbers)
static void
s_write_args (lua_State *L, int first)
{
    int n = lua_gettop (L);
    for (int i = first; i <= n; i++) {
        size_t len;
        char num [64];
        const char *text;
        if (lua_type (L, i) == LUA_TNUMBER) {
            if (lua_isinteger (L, i))
                snprintf (num, sizeof num, LUA_INTEGER_FMT, (LUAI_UACINT) lua_tointeger (L, i));
            else
                snprintf (num, sizeof num, LUA_NUMBER_FMT, (LUAI_UACNUMBER) lua_tonumber (L, i));
            text = num;
            len = strlen (num);
        }
        else
            text = luaL_checklstring (L, i, &len);
        s_output (s_self (L), text, len);
    }
}

//  io.write: captured; returns io.stdout as the original does
static int
l_io_write (lua_State *L)
{
    s_write_args (L, 1);
    lua_rawgetp (L, LUA_REGISTRYINDEX, &s_stdout_key);
    return 1;
}

//  file:write: captured when the file is the original io.stdout
static int
l_file_write (lua_State *L)
{
    lua_rawgetp (L, LUA_REGISTRYINDEX, &s_stdout_key);
    bool is_stdout = !lua_isnil (L, -1) && lua_rawequal (L, 1, -1);
    lua_pop (L, 1);
    if (is_stdout) {
        s_write_args (L, 2);
        lua_settop (L, 1);
        return 1;
    }
    lua_rawgetp (L, LUA_REGISTRYINDEX, &s_write_key);
    lua_insert (L, 1);
    lua_call (L, lua_gettop (L) - 1, LUA_MULTRET);
    return lua_gettop (L);
}

//  --------------------------------------------------------------------------
//  State setup, in protected mode

//  lp.sleep (seconds): sleeps without using the CPU, in short slices so
//  that an interrupt or a time limit still stops it promptly.
static int
l_sleep (lua_State *L)
{
    lp_engine_t *self = s_self (L);
    double seconds = luaL_checknumber (L, 1);
    int64_t until = zclock_mono () + (int64_t) (seconds * 1000);
    while (zclock_mono () < until) {
        uint64_t running = atomic_load (&self->running);
        if (running && atomic_load (&self->interrupt) == running)
            return luaL_error (L, "interrupted");
        int64_t left = until - zclock_mono ();
        zclock_sleep (left < 10? (int) left: 10);
    }
    return 0;
}

//  lp.clock (): wall-clock seconds since the epoch, with microseconds.
static int
l_clock (lua_State *L)
{
    lua_pushnumber (L, (double) lp_util_wall_usec () / 1e6);
    return 1;
}

//  An epoch-seconds variable: true with *value when set to a positive
//  number and nothing else
static bool
s_env_epoch (const char *name, double *value)
{
    const char *text = getenv (name);
    if (!text || !*text)
        return false;
    char *end;
    double v = strtod (text, &end);
    while (*end == ' ' || *end == '\n')
        end++;
    if (*end || !(v > 0) || v > 1e12)
        return false;
    *value = v;
    return true;
}

int
lp_engine_walltime_left (double *left)
{
    assert (left);
    double end;
    if (!s_env_epoch ("SLURM_JOB_END_TIME", &end)
    &&  !s_env_epoch ("LP_WALLTIME_END", &end))
        return -1;
    double now = (double) lp_util_wall_usec () / 1e6;
    *left = end > now? end - now: 0;
    return 0;
}

//  lp.walltime_left (): seconds until the batch job ends, nil when unknown
static int
l_walltime_left (lua_State *L)
{
    double left;
    if (lp_engine_walltime_left (&left) == 0)
        lua_pushnumber (L, left);
    else
        lua_pushnil (L);
    return 1;
}

//  The engine's Lua folder: the source tree's lua/ when this executable
//  is the one in the build folder; else <bindir>/../share/luaparallel/lua
//  when it exists (an install moved as a whole, `cmake --install --prefix`);
//  else the compiled-in install folder.
static void
s_lua_dir (char *out, size_t size)
{
    char exe [PATH_MAX];
    ssize_t n = readlink ("/proc/self/exe", exe, sizeof exe - 1);
    if (n > 0) {
        exe [n] = 0;
        const char *bindir = dirname (exe);
        char build [PATH_MAX];
        if (*LP_BUILD_DIR && realpath (LP_BUILD_DIR, build) && streq (bindir, build)) {
            snprintf (out, size, "%s", LP_LUA_SOURCE_DIR);
            return;
        }
        char share [PATH_MAX];
        snprintf (share, sizeof share, "%s/../share/luaparallel/lua", bindir);
        if (zsys_file_exists (share)) {
            snprintf (out, size, "%s", share);
            return;
        }
    }
    snprintf (out, size, "%s", LP_LUA_INSTALL_DIR);
}

//  lp.id, lp.rank, lp.size into the table on top (rank and size: nil
//  when the engine does not run under MPI)
static void
s_set_place (lua_State *L, lp_engine_t *self)
{
    lua_pushinteger (L, self->id);
    lua_setfield (L, -2, "id");
    if (self->rank >= 0)
        lua_pushinteger (L, self->rank);
    else
        lua_pushnil (L);
    lua_setfield (L, -2, "rank");
    if (self->size >= 0)
        lua_pushinteger (L, self->size);
    else
        lua_pushnil (L);
    lua_setfield (L, -2, "size");
}

//  lp.facts (): what this engine tells ./cluster.sh doctor about itself
//  (lp_proto_facts: host, pid, user, cwd, versions, free memory, load,
//  clock, calibration), with its id and Lua release.
static int
l_facts (lua_State *L)
{
    lp_engine_t *self = s_self (L);
    lp_value_t *facts = lp_proto_facts ();
    if (!facts
    ||  lp_value_set (facts, LP_FACT_ID, lp_value_int (self->id))
    ||  lp_value_set (facts, LP_FACT_LUA, lp_value_string (LUA_RELEASE))) {
        lp_value_destroy (&facts);
        return luaL_error (L, "not enough memory");
    }
    lp_lua_push_value_take (L, facts);
    return 1;
}

static int
s_setup (lua_State *L)
{
    lp_engine_t *self = (lp_engine_t *) lua_touserdata (L, 1);
    *(lp_engine_t **) lua_getextraspace (L) = self;
    luaL_openlibs (L);
    //  Large pushed strings and lp.arrays become Lua objects in place;
    //  large strings sent back are lent, not copied
    lp_lua_enable_adoption (L);
    lp_lua_set_borrower (L, s_borrow, self);

    lua_pushcfunction (L, l_print);
    lua_setglobal (L, "print");

    //  io.write, io.stdout:write
    lua_getglobal (L, "io");
    lua_getfield (L, -1, "stdout");
    lua_rawsetp (L, LUA_REGISTRYINDEX, &s_stdout_key);
    lua_pushcfunction (L, l_io_write);
    lua_setfield (L, -2, "write");
    lua_getfield (L, -1, "stdout");
    if (lua_getmetatable (L, -1)) {
        if (lua_getfield (L, -1, "__index") == LUA_TTABLE) {
            lua_getfield (L, -1, "write");
            lua_rawsetp (L, LUA_REGISTRYINDEX, &s_write_key);
            lua_pushcfunction (L, l_file_write);
            lua_setfield (L, -2, "write");
        }
        lua_pop (L, 2);
    }
    lua_pop (L, 2);

    //  package.path gets the engine's Lua folder first
    char dir [PATH_MAX];
    s_lua_dir (dir, sizeof dir);
    lua_getglobal (L, "package");
    lua_pushfstring (L, "%s/?.lua;", dir);
    lua_getfield (L, -2, "path");
    lua_concat (L, 2);
    lua_setfield (L, -2, "path");

    //  module lp
    lua_newtable (L);
    s_set_place (L, self);
    lp_lua_open_array (L);
    lua_setfield (L, -2, "array");
    lua_pushcfunction (L, l_sleep);
    lua_setfield (L, -2, "sleep");
    lua_pushcfunction (L, l_clock);
    lua_setfield (L, -2, "clock");
    lua_pushcfunction (L, l_facts);
    lua_setfield (L, -2, "facts");
    lua_pushcfunction (L, l_walltime_left);
    lua_setfield (L, -2, "walltime_left");
    lua_getfield (L, -2, "loaded");
    lua_pushvalue (L, -2);
    lua_setfield (L, -2, "lp");
    lua_pop (L, 1);
    lua_setglobal (L, "lp");
    lua_pop (L, 1);

    lua_newtable (L);
    lua_rawsetp (L, LUA_REGISTRYINDEX, &s_cache_key);
    return 0;
}

static int
s_panic (lua_State *L)
{
    zsys_error ("Lua panic: %s", lua_tostring (L, -1));
    abort ();
}

//  Opens a fresh state; 0 or -1
static int
s_state_open (lp_engine_t *self)
{
    assert (self->L == NULL);
    lua_State *L = lua_newstate (s_alloc, self);
    if (!L) {
        zsys_error ("cannot create a Lua state (memory limit %zu bytes)", self->memory_limit);
        return -1;
    }
    lua_atpanic (L, s_panic);
    lua_pushcfunction (L, s_setup);
    lua_pushlightuserdata (L, self);
    if (lua_pcall (L, 1, 0, 0) != LUA_OK) {
        zsys_error ("cannot set up the Lua state: %s", lua_tostring (L, -1));
        lua_close (L);
        return -1;
    }
    self->cache_count = 0;
    pthread_mutex_lock (&self->lock);
    self->L = L;
    pthread_mutex_unlock (&self->lock);
    return 0;
}

static void
s_state_close (lp_engine_t *self)
{
    pthread_mutex_lock (&self->lock);
    lua_State *L = self->L;
    self->L = NULL;
    self->hooked = false;
    pthread_mutex_unlock (&self->lock);
    if (L)
        lua_close (L);
}

//  --------------------------------------------------------------------------
//  Constructor, destructor

lp_engine_t *
lp_engine_new (size_t memory_limit)
{
    lp_engine_t *self = (lp_engine_t *) calloc (1, sizeof (lp_engine_t));
    if (!self)
        return NULL;
    self->memory_limit = memory_limit;
    self->out_max = LP_ENGINE_STDOUT_MAX;
    self->id = -1;
    self->rank = -1;
    self->size = -1;
    pthread_mutex_init (&self->lock, NULL);
    atomic_init (&self->running, 0);
    atomic_init (&self->interrupt, 0);
    self->done_set = zhashx_new ();
    self->marks = zhashx_new ();
    if (self->marks)
        zhashx_set_destructor (self->marks, s_mark_destroy);
    if (!self->done_set || !self->marks || s_state_open (self)) {
        zhashx_destroy (&self->done_set);
        zhashx_destroy (&self->marks);
        pthread_mutex_destroy (&self->lock);
        free (self);
        return NULL;
    }
    return self;
}

void
lp_engine_destroy (lp_engine_t **self_p)
{
    assert (self_p);
    lp_engine_t *self = *self_p;
    if (self) {
        s_state_close (self);
        pthread_mutex_destroy (&self->lock);
        free (self->current);
        for (size_t i = 0; i < LP_ENGINE_DONE_IDS; i++)
            free (self->done [i]);
        zhashx_destroy (&self->done_set);
        zhashx_destroy (&self->marks);
        free (self->out);
        free (self);
        *self_p = NULL;
    }
}

static int
s_update_place (lua_State *L)
{
    lp_engine_t *self = s_self (L);
    if (lua_getglobal (L, "lp") == LUA_TTABLE)
        s_set_place (L, self);
    return 0;
}

//  Rewrites lp.id, lp.rank, lp.size in the live state
static void
s_place_changed (lp_engine_t *self)
{
    if (self->L) {
        lua_pushcfunction (self->L, s_update_place);
        if (lua_pcall (self->L, 0, 0, 0) != LUA_OK)
            zsys_warning ("cannot set lp.id, lp.rank, lp.size: %s", lua_tostring (self->L, -1));
        lua_settop (self->L, 0);
    }
}

void
lp_engine_set_id (lp_engine_t *self, int id)
{
    assert (self);
    self->id = id;
    s_place_changed (self);
}

void
lp_engine_set_rank (lp_engine_t *self, int rank, int size)
{
    assert (self);
    self->rank = rank >= 0? rank: -1;
    self->size = size > 0? size: -1;
    s_place_changed (self);
}

void
lp_engine_set_output (lp_engine_t *self, lp_engine_output_fn *fn, void *arg)
{
    assert (self);
    self->output_fn = fn;
    self->output_arg = arg;
}

void
lp_engine_set_nice (lp_engine_t *self, int increment)
{
    assert (self);
    self->nice = increment;
}

//  Linux keeps a niceness per thread: this one, the thread running Lua,
//  is lowered; the heart thread and ZeroMQ's I/O threads are not.
static void
s_lower_priority (lp_engine_t *self)
{
    if (self->niced || self->nice <= 0)
        return;
    self->niced = true;
    id_t thread = (id_t) gettid ();
    errno = 0;
    int now = getpriority (PRIO_PROCESS, thread);
    if (errno == 0 && setpriority (PRIO_PROCESS, thread, now + self->nice) != 0)
        zsys_warning ("cannot lower the priority of requests by %d: %s", self->nice,
                      strerror (errno));
}

void
lp_engine_set_stdout_max (lp_engine_t *self, size_t bytes)
{
    assert (self);
    self->out_max = bytes;
}

const char *
lp_engine_stdout (lp_engine_t *self, size_t *len_p)
{
    assert (self);
    if (self->out_dropped && !self->out_marked) {
        char marker [96];
        bool newline = self->out_len == 0 || self->out [self->out_len - 1] == '\n';
        int size = snprintf (marker, sizeof marker, "%s[output truncated: %llu bytes dropped]\n",
                             newline? "": "\n", (unsigned long long) self->out_dropped);
        if (s_out_grow (self, self->out_len + (size_t) size + 1)) {
            memcpy (self->out + self->out_len, marker, (size_t) size + 1);
            self->out_len += (size_t) size;
        }
        self->out_marked = true;
    }
    if (len_p)
        *len_p = self->out_len;
    return self->out? self->out: "";
}

//  --------------------------------------------------------------------------
//  Interrupt

static int s_msghandler (lua_State *L);

static void
s_hook (lua_State *L, lua_Debug *ar)
{
    lp_engine_t *self = s_self (L);
    uint64_t running = atomic_load (&self->running);
    if (running == 0 || atomic_load (&self->interrupt) != running) {
        lua_sethook (L, NULL, 0, 0);
        return;
    }
    //  Let our own message handler run, so the reply has a traceback
    if (ar->event == LUA_HOOKCALL && lua_getinfo (L, "f", ar)) {
        bool ours = lua_tocfunction (L, -1) == s_msghandler;
        lua_pop (L, 1);
        if (ours)
            return;
    }
    lua_pushliteral (L, "interrupted");
    lua_error (L);
}

void
lp_engine_set_time_limit (lp_engine_t *self, int64_t msec)
{
    assert (self);
    self->time_limit = msec > 0? msec: 0;
}

int64_t
lp_engine_deadline (lp_engine_t *self)
{
    return atomic_load (&self->deadline);
}

bool
lp_engine_check_deadline (lp_engine_t *self)
{
    assert (self);
    int64_t deadline = atomic_load (&self->deadline);
    if (deadline == 0 || zclock_mono () < deadline)
        return false;
    atomic_store (&self->deadline, 0);
    atomic_store (&self->timed_out, true);
    return lp_engine_interrupt (self);
}

bool
lp_engine_interrupt (lp_engine_t *self)
{
    assert (self);
    pthread_mutex_lock (&self->lock);
    uint64_t running = atomic_load (&self->running);
    if (running && self->L) {
        if (atomic_load (&self->interrupt) != running)
            atomic_store (&self->interrupt_at, zclock_mono ());
        atomic_store (&self->interrupt, running);
        lua_sethook (self->L, s_hook,
                     LUA_MASKCALL | LUA_MASKRET | LUA_MASKLINE | LUA_MASKCOUNT, 1);
        self->hooked = true;
    }
    pthread_mutex_unlock (&self->lock);
    return running != 0;
}

int64_t
lp_engine_stuck_msec (lp_engine_t *self)
{
    assert (self);
    uint64_t running = atomic_load (&self->running);
    if (running == 0 || atomic_load (&self->interrupt) != running)
        return 0;
    int64_t since = zclock_mono () - atomic_load (&self->interrupt_at);
    return since > 0? since: 1;
}

//  --------------------------------------------------------------------------
//  Abort by msg_id. Everything below runs under the lock; the tables are
//  small (a linear scan costs microseconds) and bounded.

//  Drops expired marks; under lock. Called only when the table is full,
//  and walks it only once a mark can have expired (marks_first): a full
//  table of live marks answers the next ids at once. (Walking it for each
//  of 5000 ids took the heart thread seconds, and its engine was declared
//  dead for missed heartbeats.)
static void
s_marks_expire (lp_engine_t *self, int64_t now)
{
    if (now < self->marks_first)
        return;
    zlistx_t *keys = zhashx_keys (self->marks);
    if (!keys)
        return;
    int64_t first = INT64_MAX;
    for (const char *key = (const char *) zlistx_first (keys); key;
         key = (const char *) zlistx_next (keys)) {
        int64_t *expires = (int64_t *) zhashx_lookup (self->marks, key);
        if (expires && *expires <= now)
            zhashx_delete (self->marks, key);
        else
        if (expires && *expires < first)
            first = *expires;
    }
    self->marks_first = first;
    zlistx_destroy (&keys);
}

bool
lp_engine_begin_request (lp_engine_t *self, const char *msg_id)
{
    assert (self);
    assert (msg_id);
    bool aborted = false;
    s_lower_priority (self);
    pthread_mutex_lock (&self->lock);
    int64_t *expires = (int64_t *) zhashx_lookup (self->marks, msg_id);
    if (expires) {
        aborted = *expires > zclock_mono ();
        zhashx_delete (self->marks, msg_id);
    }
    free (self->current);
    self->current = aborted? NULL: strdup (msg_id);
    pthread_mutex_unlock (&self->lock);
    return aborted;
}

void
lp_engine_end_request (lp_engine_t *self)
{
    assert (self);
    pthread_mutex_lock (&self->lock);
    if (self->current) {
        char **slot = &self->done [self->done_next];
        if (*slot) {
            zhashx_delete (self->done_set, *slot);
            free (*slot);
        }
        *slot = self->current;
        self->current = NULL;
        if (zhashx_insert (self->done_set, *slot, *slot)) {
            free (*slot);               //  out of memory: forget it
            *slot = NULL;
        }
        self->done_next = (self->done_next + 1) % LP_ENGINE_DONE_IDS;
    }
    pthread_mutex_unlock (&self->lock);
}

int
lp_engine_abort (lp_engine_t *self, const char *msg_id)
{
    assert (self);
    assert (msg_id);
    int rc = 1;
    pthread_mutex_lock (&self->lock);
    int64_t now = zclock_mono ();
    if ((self->current && streq (self->current, msg_id))
    ||  zhashx_lookup (self->done_set, msg_id))
        rc = 0;
    else {
        int64_t *expires = (int64_t *) zhashx_lookup (self->marks, msg_id);
        if (!expires && zhashx_size (self->marks) >= LP_ENGINE_ABORT_MARKS)
            s_marks_expire (self, now);
        if (!expires && zhashx_size (self->marks) < LP_ENGINE_ABORT_MARKS) {
            expires = (int64_t *) malloc (sizeof (int64_t));
            if (expires && zhashx_insert (self->marks, msg_id, expires)) {
                free (expires);
                expires = NULL;
            }
        }
        if (expires) {
            *expires = now + LP_REPLAY_WINDOW_MSEC;
            if (*expires < self->marks_first)
                self->marks_first = *expires;
        }
        else
            rc = -1;                    //  table full (or out of memory)
    }
    pthread_mutex_unlock (&self->lock);
    return rc;
}

//  --------------------------------------------------------------------------
//  Errors

static int
s_msghandler (lua_State *L)
{
    const char *msg = lua_tostring (L, 1);
    if (msg == NULL) {
        if (!(luaL_callmeta (L, 1, "__tostring") && lua_type (L, -1) == LUA_TSTRING))
            lua_pushfstring (L, "(error object is a %s value)", luaL_typename (L, 1));
    }
    luaL_traceback (L, L, NULL, 1);
    lua_rawsetp (L, LUA_REGISTRYINDEX, &s_traceback_key);
    return 1;
}

static char *
s_strdup_or (const char *s, const char *fallback)
{
    char *copy = strdup (s? s: fallback);
    return copy;
}

static void
s_job_fail (s_job_t *job, const char *ename, const char *evalue, const char *traceback)
{
    if (job->ename)
        return;                 //  the first error wins
    job->ename = ename;
    job->evalue = s_strdup_or (evalue, "");
    job->traceback = s_strdup_or (traceback, "");
}

//  Calls the function below nargs arguments with the message handler.
//  Returns the lua_pcall status; on failure the error is recorded in job
//  and the stack holds nothing of the call.
static int
s_call (lua_State *L, s_job_t *job, int nargs, int nresults)
{
    lua_pushnil (L);
    lua_rawsetp (L, LUA_REGISTRYINDEX, &s_traceback_key);
    int base = lua_gettop (L) - nargs;
    lua_pushcfunction (L, s_msghandler);
    lua_insert (L, base);
    int status = lua_pcall (L, nargs, nresults, base);
    lua_remove (L, base);
    if (status != LUA_OK) {
        const char *msg = lua_tostring (L, -1);
        lua_rawgetp (L, LUA_REGISTRYINDEX, &s_traceback_key);
        const char *tb = lua_tostring (L, -1);
        if (status == LUA_ERRMEM)
            s_job_fail (job, LP_ENAME_MEMORY, "not enough memory", "");
        else
            s_job_fail (job, "LuaError", msg? msg: "error", tb);
        lua_pop (L, 2);
    }
    return status;
}

//  Loads text (mode "t") with the given chunk name; on failure records a
//  SyntaxError (or MemoryError) and returns -1.
static int
s_load (lua_State *L, s_job_t *job, const char *code, size_t len, const char *name)
{
    int status = luaL_loadbufferx (L, code, len, name, "t");
    if (status == LUA_OK)
        return 0;
    if (status == LUA_ERRMEM)
        s_job_fail (job, LP_ENAME_MEMORY, "not enough memory", "");
    else
        s_job_fail (job, "SyntaxError", lua_tostring (L, -1), "");
    lua_pop (L, 1);
    return -1;
}

//  --------------------------------------------------------------------------
//  Paths: "a.b.c" from the globals

static bool
s_is_name (const char *s)
{
    bool start = true;
    if (!*s)
        return false;
    for (; *s; s++) {
        char c = *s;
        if (c == '.') {
            if (start)
                return false;
            start = true;
        }
        else
        if (c == '_' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'))
            start = false;
        else
        if (c >= '0' && c <= '9') {
            if (start)
                return false;
        }
        else
            return false;
    }
    return !start;
}

//  Pushes the value at path (nil when any step is missing or not a table)
static void
s_push_path (lua_State *L, const char *path)
{
    lua_pushglobaltable (L);
    const char *p = path;
    while (true) {
        const char *dot = strchr (p, '.');
        size_t len = dot? (size_t) (dot - p): strlen (p);
        if (!lua_istable (L, -1)) {
            lua_pop (L, 1);
            lua_pushnil (L);
            return;
        }
        lua_pushlstring (L, p, len);
        lua_gettable (L, -2);
        lua_remove (L, -2);
        if (!dot)
            return;
        p = dot + 1;
    }
}

//  Sets path to the value on top (popped), creating missing tables
static void
s_set_path (lua_State *L, const char *path)
{
    int value = lua_gettop (L);
    lua_pushglobaltable (L);
    const char *p = path;
    while (true) {
        const char *dot = strchr (p, '.');
        size_t len = dot? (size_t) (dot - p): strlen (p);
        lua_pushlstring (L, p, len);
        if (!dot) {
            lua_pushvalue (L, value);
            lua_settable (L, -3);
            break;
        }
        lua_pushvalue (L, -1);
        lua_gettable (L, -3);
        if (lua_isnil (L, -1)) {
            lua_pop (L, 1);
            lua_newtable (L);
            lua_pushvalue (L, -2);          //  key
            lua_pushvalue (L, -2);          //  new table
            lua_settable (L, -5);
        }
        else
        if (!lua_istable (L, -1))
            luaL_error (L, "cannot set '%s': '%s' is not a table",
                        path, lua_tostring (L, -2));
        lua_remove (L, -2);                 //  key
        lua_remove (L, -2);                 //  parent
        p = dot + 1;
    }
    lua_settop (L, value - 1);
}

static bool
s_callable (lua_State *L, int idx)
{
    if (lua_type (L, idx) == LUA_TFUNCTION)
        return true;
    bool callable = luaL_getmetafield (L, idx, "__call") != LUA_TNIL;
    if (callable)
        lua_pop (L, 1);
    return callable;
}

//  Pushes the function named or written by fn; -1 with the job failed
static int
s_push_function (lua_State *L, s_job_t *job, const char *fn)
{
    if (s_is_name (fn)) {
        s_push_path (L, fn);
        if (!s_callable (L, -1)) {
            char msg [256];
            snprintf (msg, sizeof msg, "'%.200s' is not a function (a %s value)",
                      fn, luaL_typename (L, -1));
            lua_pop (L, 1);
            s_job_fail (job, "NameError", msg, "");
            return -1;
        }
        return 0;
    }
    lp_engine_t *self = job->self;
    lua_rawgetp (L, LUA_REGISTRYINDEX, &s_cache_key);
    if (lua_getfield (L, -1, fn) != LUA_TNIL) {
        lua_remove (L, -2);
        return 0;
    }
    lua_pop (L, 2);
    lua_pushfstring (L, "return %s", fn);
    size_t len;
    const char *code = lua_tolstring (L, -1, &len);
    int rc = s_load (L, job, code, len, "=<apply>");
    lua_remove (L, rc == 0? -2: -1);
    if (rc)
        return -1;
    if (s_call (L, job, 0, 1) != LUA_OK)
        return -1;
    if (!s_callable (L, -1)) {
        char msg [128];
        snprintf (msg, sizeof msg, "fn is not a function (a %s value)", luaL_typename (L, -1));
        lua_pop (L, 1);
        s_job_fail (job, "LuaError", msg, "");
        return -1;
    }
    lua_rawgetp (L, LUA_REGISTRYINDEX, &s_cache_key);
    if (self->cache_count >= LP_ENGINE_CACHE_MAX) {
        lua_pop (L, 1);
        lua_newtable (L);
        lua_pushvalue (L, -1);
        lua_rawsetp (L, LUA_REGISTRYINDEX, &s_cache_key);
        self->cache_count = 0;
    }
    lua_pushvalue (L, -2);
    lua_setfield (L, -2, fn);
    lua_pop (L, 1);
    self->cache_count++;
    return 0;
}

//  Converts the value at idx and appends it to job->values; -1 on failure
static int
s_collect (lua_State *L, s_job_t *job, int idx, const char *root)
{
    char err [512];
    err [0] = 0;
    lp_value_t *value = lp_lua_to_value (L, idx, root, err, sizeof err);
    if (!value) {
        s_job_fail (job, LP_ENAME_SERIALIZATION, err [0]? err: "cannot send value", "");
        return -1;
    }
    if (lp_value_append (job->values, value)) {
        s_job_fail (job, LP_ENAME_MEMORY, "out of memory", "");
        return -1;
    }
    return 0;
}

//  Converts stack values first..top as result[1], result[2]...
static void
s_collect_results (lua_State *L, s_job_t *job, int first)
{
    int top = lua_gettop (L);
    for (int i = first; i <= top; i++) {
        char root [32];
        snprintf (root, sizeof root, "result[%d]", i - first + 1);
        if (s_collect (L, job, i, root))
            return;
    }
}

static void
s_push_typed_item (lua_State *L, const lp_value_t *items, size_t i)
{
    const uint8_t *data = (const uint8_t *) lp_value_typed_data (items);
    switch (lp_value_dtype (items)) {
        case LP_DTYPE_F64: { double d; memcpy (&d, data + 8 * i, 8); lua_pushnumber (L, d); break; }
        case LP_DTYPE_F32: { float f; memcpy (&f, data + 4 * i, 4); lua_pushnumber (L, f); break; }
        case LP_DTYPE_I64: { int64_t v; memcpy (&v, data + 8 * i, 8); lua_pushinteger (L, v); break; }
        case LP_DTYPE_I32: { int32_t v; memcpy (&v, data + 4 * i, 4); lua_pushinteger (L, v); break; }
        case LP_DTYPE_U8: lua_pushinteger (L, data [i]); break;
        default: lua_pushnil (L);
    }
}

//  --------------------------------------------------------------------------
//  The job, run under the outer lua_pcall

static int
s_job_run (lua_State *L)
{
    s_job_t *job = (s_job_t *) lua_touserdata (L, 1);
    lua_settop (L, 0);
    switch (job->op) {
        case S_EXECUTE: {
            size_t len = strlen (job->text);
            lua_pushfstring (L, "return %s;", job->text);
            size_t rlen;
            const char *ret = lua_tolstring (L, -1, &rlen);
            if (luaL_loadbufferx (L, ret, rlen, "=<execute>", "t") == LUA_OK)
                lua_remove (L, 1);
            else {
                lua_settop (L, 0);
                if (s_load (L, job, job->text, len, "=<execute>"))
                    return 0;
            }
            if (s_call (L, job, 0, LUA_MULTRET) != LUA_OK)
                return 0;
            s_collect_results (L, job, 1);
            break;
        }
        case S_APPLY: {
            if (s_push_function (L, job, job->text))
                return 0;
            size_t nargs = job->arg? lp_value_len (job->arg): 0;
            luaL_checkstack (L, (int) (nargs < 1000000? nargs: 1000000) + LUA_MINSTACK,
                             "too many arguments");
            //  Arguments are read once: large ones are adopted, not copied
            for (size_t i = 0; i < nargs; i++)
                lp_lua_push_value_take (L, LP_UNCONST (lp_value_t *, lp_value_at (job->arg, i)));
            if (s_call (L, job, (int) nargs, LUA_MULTRET) != LUA_OK)
                return 0;
            s_collect_results (L, job, 1);
            break;
        }
        case S_MAP:
        case S_MAP_STAR: {
            if (s_push_function (L, job, job->text))
                return 0;
            bool typed = lp_value_type (job->arg) == LP_TYPED;
            size_t n = lp_value_len (job->arg);
            for (size_t i = 0; i < n; i++) {
                lua_pushvalue (L, 1);
                int nargs = 1;
                if (typed)
                    s_push_typed_item (L, job->arg, i);
                else
                if (job->op == S_MAP_STAR) {
                    //  A map over several sequences: item i holds the
                    //  arguments of call i
                    const lp_value_t *args = lp_value_at (job->arg, i);
                    if (lp_value_type (args) != LP_ARRAY) {
                        s_job_fail (job, LP_ENAME_PROTOCOL, LP_MAP_REQUEST ": " LP_MAP_STAR
                                    " items must be arrays", "");
                        return 0;
                    }
                    nargs = (int) lp_value_len (args);
                    luaL_checkstack (L, nargs + LUA_MINSTACK, "too many arguments");
                    for (int k = 0; k < nargs; k++)
                        lp_lua_push_value (L, lp_value_at (args, (size_t) k));
                }
                else
                    lp_lua_push_value (L, lp_value_at (job->arg, i));
                if (s_call (L, job, nargs, 1) != LUA_OK)
                    return 0;
                char root [40];
                snprintf (root, sizeof root, "result[%zu]", i + 1);
                if (s_collect (L, job, 2, root))
                    return 0;
                lua_settop (L, 1);
            }
            break;
        }
        case S_PUSH: {
            size_t n = lp_value_len (job->arg);
            for (size_t i = 0; i < n; i++) {
                const lp_value_t *key = lp_value_key_at (job->arg, i);
                const char *name = lp_value_as_string (key, NULL);
                if (lp_value_type (key) != LP_STRING || !name || !*name) {
                    s_job_fail (job, LP_ENAME_PROTOCOL, LP_PUSH_REQUEST ": ns keys must be non-empty strings", "");
                    return 0;
                }
                lp_lua_push_value_take (L, LP_UNCONST (lp_value_t *, lp_value_value_at (job->arg, i)));
                s_set_path (L, name);
            }
            break;
        }
        case S_PULL: {
            size_t n = lp_value_len (job->arg);
            for (size_t i = 0; i < n; i++) {
                const lp_value_t *item = lp_value_at (job->arg, i);
                const char *name = lp_value_as_string (item, NULL);
                if (lp_value_type (item) != LP_STRING || !name) {
                    s_job_fail (job, LP_ENAME_PROTOCOL, LP_PULL_REQUEST ": names must be strings", "");
                    return 0;
                }
                s_push_path (L, name);
                if (s_collect (L, job, lua_gettop (L), name))
                    return 0;
                lua_pop (L, 1);
            }
            break;
        }
    }
    return 0;
}

//  Error texts must be msgpack str, so valid UTF-8: a Lua message may
//  quote any bytes; when it is not valid, bytes >= 0x80 become '?'.
static lp_value_t *
s_text (const char *text)
{
    size_t len = strlen (text);
    if (lp_util_utf8_valid (text, len))
        return lp_value_lstring (text, len);
    char *copy = strdup (text);
    if (!copy)
        return NULL;
    for (size_t i = 0; i < len; i++)
        if ((unsigned char) copy [i] >= 0x80)
            copy [i] = '?';
    lp_value_t *value = lp_value_lstring (copy, len);
    free (copy);
    return value;
}

lp_value_t *
lp_engine_error_content (const char *ename, const char *evalue, const char *traceback)
{
    lp_value_t *content = lp_value_map ();
    if (!content)
        return NULL;
    if (lp_value_set (content, LP_CONTENT_STATUS, lp_value_string (LP_STATUS_ERROR))
    ||  lp_value_set (content, LP_CONTENT_ENAME, lp_value_string (ename))
    ||  lp_value_set (content, LP_CONTENT_EVALUE, s_text (evalue? evalue: ""))
    ||  lp_value_set (content, LP_CONTENT_TRACEBACK, s_text (traceback? traceback: "")))
        lp_value_destroy (&content);
    return content;
}

void
lp_engine_clear_stdout (lp_engine_t *self)
{
    assert (self);
    self->out_len = 0;
    self->out_truncated = false;
    self->out_dropped = 0;
    self->out_marked = false;
    if (self->out)
        self->out [0] = 0;
}

static void
s_begin (lp_engine_t *self)
{
    lp_engine_clear_stdout (self);
    pthread_mutex_lock (&self->lock);
    atomic_store (&self->timed_out, false);
    atomic_store (&self->deadline, self->time_limit > 0? zclock_mono () + self->time_limit: 0);
    self->time_limit = 0;
    atomic_store (&self->running, ++self->seq);
    pthread_mutex_unlock (&self->lock);
}

//  Returns true when the request was interrupted
static bool
s_end (lp_engine_t *self)
{
    pthread_mutex_lock (&self->lock);
    bool interrupted = atomic_load (&self->interrupt) == self->seq;
    atomic_store (&self->running, 0);
    atomic_store (&self->deadline, 0);
    if (self->hooked && self->L)
        lua_sethook (self->L, NULL, 0, 0);
    self->hooked = false;
    pthread_mutex_unlock (&self->lock);
    return interrupted;
}

static lp_value_t *
s_run (lp_engine_t *self, s_op_t op, const char *text, const lp_value_t *arg)
{
    s_job_t job = { .self = self, .op = op, .text = text, .arg = arg };
    job.values = lp_value_array ();
    if (!job.values)
        return NULL;
    s_begin (self);
    s_pins_sweep (self);
    if (!self->L && s_state_open (self))
        s_job_fail (&job, LP_ENAME_MEMORY, "the Lua state cannot be created", "");
    else {
        lua_State *L = self->L;
        lua_settop (L, 0);
        //  collectgarbage ("stop") of an earlier request ends here
        lua_gc (L, LUA_GCRESTART);
        lua_pushcfunction (L, s_job_run);
        lua_pushlightuserdata (L, &job);
        int status = lua_pcall (L, 1, 0, 0);
        if (status == LUA_ERRMEM)
            s_job_fail (&job, LP_ENAME_MEMORY, "not enough memory", "");
        else
        if (status != LUA_OK)
            s_job_fail (&job, "LuaError", lua_tostring (L, -1), "");
        lua_settop (L, 0);
    }
    bool interrupted = s_end (self);
    if (job.ename && streq (job.ename, LP_ENAME_MEMORY) && self->L) {
        //  Give back what the request took: to Lua (full cycle, the stack
        //  is empty) and to the system (malloc_trim returns the freed
        //  pages of glibc's heaps; large blocks were mmapped and are gone).
        //  A cycle halves Lua's string table at most once (checkSizes),
        //  and a bomb of short strings (a million numbers as keys or
        //  concatenated) leaves megabytes of empty buckets: collect until
        //  the count stops falling.
        int kb = lua_gc (self->L, LUA_GCCOUNT);
        for (int i = 0; i < 24; i++) {
            lua_gc (self->L, LUA_GCCOLLECT);
            int now = lua_gc (self->L, LUA_GCCOUNT);
            if (now >= kb)
                break;
            kb = now;
        }
        lp_value_destroy (&job.values);
        malloc_trim (0);
#ifdef S_ASAN
        __sanitizer_purge_allocator ();
#endif
        zsys_info ("MemoryError: Lua holds %zu bytes after a full collection",
                   self->memory_used);
    }
    if (interrupted && job.ename) {
        free (job.evalue);
        if (atomic_load (&self->timed_out)) {
            job.evalue = strdup ("the task ran past its time limit and was stopped");
            job.ename = LP_ENAME_TIME_LIMIT;
        }
        else {
            job.evalue = strdup ("interrupted");
            job.ename = LP_ENAME_INTERRUPTED;
        }
    }
    lp_value_t *content;
    if (job.ename) {
        content = lp_engine_error_content (job.ename, job.evalue, job.traceback);
        lp_value_destroy (&job.values);
    }
    else {
        content = lp_value_map ();
        if (content
        && (lp_value_set (content, LP_CONTENT_STATUS, lp_value_string (LP_STATUS_OK))
        ||  lp_value_set (content, "values", job.values)))
            lp_value_destroy (&content);
        if (!content)
            lp_value_destroy (&job.values);
        job.values = NULL;
    }
    free (job.evalue);
    free (job.traceback);
    return content;
}

lp_value_t *
lp_engine_execute (lp_engine_t *self, const char *code)
{
    assert (self);
    assert (code);
    return s_run (self, S_EXECUTE, code, NULL);
}

lp_value_t *
lp_engine_apply (lp_engine_t *self, const char *fn, const lp_value_t *args)
{
    assert (self);
    assert (fn);
    return s_run (self, S_APPLY, fn, args);
}

lp_value_t *
lp_engine_map (lp_engine_t *self, const char *fn, const lp_value_t *items, bool star)
{
    assert (self);
    assert (fn);
    assert (items);
    return s_run (self, star? S_MAP_STAR: S_MAP, fn, items);
}

lp_value_t *
lp_engine_push (lp_engine_t *self, const lp_value_t *ns)
{
    assert (self);
    assert (ns);
    lp_value_t *content = s_run (self, S_PUSH, "", ns);
    lp_value_t *values = content? LP_UNCONST (lp_value_t *, lp_value_get (content, "values")): NULL;
    //  push_reply carries only status
    if (values) {
        lp_value_t *ok = lp_value_map ();
        lp_value_destroy (&content);
        if (ok && lp_value_set (ok, LP_CONTENT_STATUS, lp_value_string (LP_STATUS_OK)))
            lp_value_destroy (&ok);
        content = ok;
    }
    return content;
}

lp_value_t *
lp_engine_pull (lp_engine_t *self, const lp_value_t *names)
{
    assert (self);
    assert (names);
    return s_run (self, S_PULL, "", names);
}

lp_value_t *
lp_engine_clear (lp_engine_t *self)
{
    assert (self);
    s_begin (self);
    s_state_close (self);
    int rc = s_state_open (self);
    s_end (self);
    if (rc)
        return lp_engine_error_content (LP_ENAME_MEMORY, "the Lua state cannot be created", "");
    lp_value_t *content = lp_value_map ();
    if (content && lp_value_set (content, LP_CONTENT_STATUS, lp_value_string (LP_STATUS_OK)))
        lp_value_destroy (&content);
    return content;
}
