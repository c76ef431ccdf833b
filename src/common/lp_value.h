/*  =========================================================================
    lp_value - the private part of the value API

    Value trees are public (include/luaparallel.h: lp_value_new_*, get,
    set, append, ...). These calls are for the library's own code: taking
    values out of maps and strings into and out of values without copying
    (the codec, the engine's zero-copy strings, lp_luavalue).

    Self-test: lp_value_test, run by lp_selftest.
    =========================================================================
*/
#ifndef LP_VALUE_H_INCLUDED
#define LP_VALUE_H_INCLUDED

#include "lp_prelude.h"

//  Takes the value of key out of a map without copying it (the map keeps
//  nil in its place); NULL when absent or out of memory. Caller owns it.
lp_value_t *lp_value_take (lp_value_t *self, const char *key);
//  Takes element index out of an array without copying it (nil takes its
//  place); NULL when out of range or out of memory. Caller owns it.
lp_value_t *lp_value_take_at (lp_value_t *self, size_t index);

//  String (type LP_STRING) or bytes (LP_BYTES) that takes data, a malloc'd
//  block of at least len + 1 bytes (data[len] is set to 0); data is freed
//  on failure too. NULL when out of memory.
lp_value_t *lp_value_str_take (lp_type_t type, char *data, size_t len);
//  The same for a malloc'd block of at least head + len + 1 bytes whose
//  data starts head bytes in (lp_codec leaves room there for the header
//  of the Lua string that will adopt the block, see lp_lua_push_value_take).
lp_value_t *lp_value_str_take_head (lp_type_t type, char *block, size_t head, size_t len);
//  A string or bytes that borrows data (NUL-terminated at len), for
//  instance a Lua string's bytes: release (arg) is called, from any
//  thread, when the value (or what it was detached into) is done with it.
//  NULL when out of memory (release is not called then).
lp_value_t *lp_value_str_borrow (lp_type_t type, const char *data, size_t len,
                                 void (*release) (void *), void *arg);
//  True for a string or bytes that owns a block starting head bytes
//  before its data (lp_value_str_take_head), not borrowed.
bool        lp_value_str_has_head (const lp_value_t *self, size_t head);
//  True for a string or bytes made by lp_value_str_borrow.
bool        lp_value_str_borrowed (const lp_value_t *self);
//  Gives up what a string, bytes or typed array would free when destroyed
//  and returns it, with the function that frees it in *free_fn_p (when
//  not NULL): a string's malloc'd block (head bytes before the data) and
//  free, a borrowed string's release argument and release, a typed
//  array's buffer and its free function. The value becomes nil. NULL
//  (value unchanged) for other values and typed arrays without one.
void       *lp_value_detach (lp_value_t *self, void (**free_fn_p) (void *));
//  True when the typed array's buffer is freed with free_fn.
bool        lp_value_typed_freed_by (const lp_value_t *self, void (*free_fn) (void *));

//  True when the typed array's buffer is the value's own (lp_value_typed,
//  or lp_value_typed_take with free), so it may be released early.
bool        lp_value_typed_owned (const lp_value_t *self);

//  True when the value nests more than `levels` levels: an array or a map
//  is one level plus the deepest of its items (keys too), a typed array
//  flagged as a sequence one level (a Lua table), anything else none; the
//  rule lp_lua_to_value applies with LP_VALUE_MAX_DEPTH. Looks no deeper
//  than levels + 1, so a hostile depth costs no more.
bool        lp_value_deeper_than (const lp_value_t *self, int levels);

void        lp_value_test (bool verbose);

#endif
