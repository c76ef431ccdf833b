/*  =========================================================================
    lp_luavalue - Lua values <-> lp_value_t, and the lp.array userdata

    Used by the programs that hold a Lua state: the engine, the Lua module
    and lpsh. Not part of libluaparallel, which does not link liblua.

    Self-test: lp_luavalue_test, run by lp_selftest.
    =========================================================================
*/
#ifndef LP_LUAVALUE_H_INCLUDED
#define LP_LUAVALUE_H_INCLUDED

#include "lp_prelude.h"
#include <lua.h>
#include "lp_value.h"

#define LP_ARRAY_MT "lp.array"

//  Pushes v onto L; typed arrays become lp.array userdata (copying the
//  data). May raise a Lua memory error: call in protected mode.
void        lp_lua_push_value (lua_State *L, const lp_value_t *v);
//  The same for a value read once: its large strings and lp.arrays that
//  lp_codec decoded with headroom become Lua objects without a copy (the
//  value keeps nil in their place). Needs lp_lua_enable_adoption.
void        lp_lua_push_value_take (lua_State *L, lp_value_t *v);
//  Measures where Lua 5.4 puts a long string's bytes and an lp.array's
//  elements in their allocations and sets lp_codec_set_headroom to match,
//  so later pushes with _take adopt decoded blocks. The state's allocator
//  must accept (block, osize 0, nsize) as taking over a malloc'd block of
//  nsize bytes and return it unchanged (lp_engine's does). Process-wide;
//  call once, before anything is decoded. 0 (adoption off when the
//  layout is not the expected one), -1 when the stack is full.
int         lp_lua_enable_adoption (lua_State *L);
//  Where a long string's bytes start in its allocation, as measured by
//  lp_lua_enable_adoption (0 before, or when not measurable).
size_t      lp_lua_string_head (void);
//  Borrowing: lp_lua_to_value asks fn about every string over
//  LP_INLINE_MAX_BYTES; when fn returns true the value points into the
//  Lua string instead of copying it, and release (arg), from any thread,
//  says the value is done with it. fn must keep the string's memory valid
//  until then, even if Lua frees it (lp_engine defers such frees in its
//  allocator). Per state (kept in its registry; may raise a memory
//  error); without one (the default) strings are copied.
typedef bool (lp_lua_borrow_fn) (void *ud, const char *data, size_t len,
                                 void (**release_p) (void *), void **arg_p);
void        lp_lua_set_borrower (lua_State *L, lp_lua_borrow_fn *fn, void *ud);
//  Converts the value at idx. On failure returns NULL and err says what and
//  where, e.g. "cannot send a function (at t.handlers[2])". path_root
//  names the value in that message ("result", "x"). Never raises except
//  on memory errors.
lp_value_t *lp_lua_to_value (lua_State *L, int idx, const char *path_root,
                             char *err, size_t errlen);
//  LP_DTYPE_I64 (LP_DTYPE_F64) when the value at idx is a table that
//  lp_lua_to_value sends as a typed sequence: keys exactly 1..n, n greater
//  than LP_SEQUENCE_TYPED_MIN, values all integers (all floats); else 0.
//  Its encoded size is then one ext, whatever n. Never raises.
lp_dtype_t  lp_lua_sequence_dtype (lua_State *L, int idx);
//  Opens the lp.array type; pushes a table {new=, from=, ...}, see
//  docs/api.md (lp.array(dtype, n | table)).
int         lp_lua_open_array (lua_State *L);
void        lp_luavalue_test (bool verbose);

#endif
