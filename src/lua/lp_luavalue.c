/*  =========================================================================
    lp_luavalue - Lua values <-> lp_value_t, and the lp.array userdata

    Lua -> value (lp_lua_to_value), as docs/protocol.md "Values" says:
    integer -> LP_INT, float -> LP_NUMBER, string -> LP_STRING when valid
    UTF-8 else LP_BYTES, a table whose keys are exactly 1..n (n >= 1) ->
    LP_ARRAY, any other non-empty table -> LP_MAP (keys converted too), an
    empty table -> empty LP_ARRAY, lp.array userdata -> LP_TYPED (copied).
    A sequence of more than LP_SEQUENCE_TYPED_MIN elements that are all
    integers (or all floats) becomes an i64 (f64) LP_TYPED flagged as a
    sequence, filled straight from the table with no value node per
    element; lp_lua_push_value turns such a value back into a table. So a
    table of 5*10^7 numbers costs 400 MB on its way, in one buffer that the
    codec sends out of band.
    Functions, other userdata, threads, cyclic tables and nesting deeper
    than LP_VALUE_MAX_DEPTH fail with a message naming the key path, e.g.
    "cannot send a function (at x.handlers[2])".

    The conversion never raises: it reads tables with raw access only
    (lua_next, lua_rawgeti: no metamethods, no allocation in Lua), keeps
    the ancestors of the current table in a C array to see cycles (a table
    shared by two branches is copied twice; only a table inside itself is
    a cycle), and builds the lp_value tree with malloc, so nothing can
    longjmp out and leak a partial tree. The key path is rendered only on
    failure, from the keys still on the Lua stack.

    Value -> Lua (lp_lua_push_value) may raise a memory error, but it only
    reads the value and creates Lua objects, so nothing leaks either.

    lp.array is a full userdata (metatable LP_ARRAY_MT = "lp.array")
    holding dtype, count and the elements inline, so its memory counts
    against the Lua state's allocator (and an engine's memory cap):

        local a = lp.array("f64", 1000)        -- zero-filled
        local b = lp.array("i32", {1, 2, 3})   -- from a sequence
        a[1] = 2.5; print(a[1], #a, a:dtype()) -- 2.5  1000  f64
        local t = b:totable()                  -- {1, 2, 3}
        print(a)                               -- lp.array(f64, 1000)

    dtypes are "f64", "f32", "i64", "i32", "u8". Indices are 1-based;
    reading outside 1..#a gives nil (so ipairs works), writing outside is
    an error, as is writing a non-number, a float into an integer array,
    or an integer out of the element type's range.

    Arithmetic in C: a:sum (), a:min (), a:max () (value and index),
    a:scale (k) and a:add (b | x) (in place, return a); the rules are in
    the section "lp.array arithmetic" below and in docs/engine.md.

    lp_lua_open_array pushes the constructor: a table {new = f, from = f,
    dtypes = {...}} whose metatable has __call, so both lp.array(dtype, n)
    and lp.array.new(dtype, n) work. Store it as lp.array.
    =========================================================================
*/

#include "lp_luavalue.h"
#include "lp_util.h"
#include "lp_value.h"
#include "lp_codec.h"
//  Contracts and self-tests assert in release builds too, as in czmq
#undef NDEBUG
#include <assert.h>
#include <lauxlib.h>
#include <lualib.h>
#include <stddef.h>
#include <math.h>

#define LP_STR_(x) #x
#define LP_STR(x) LP_STR_(x)

//  ---------------------------------------------------------------------
//  lp.array userdata

typedef struct {
    lp_dtype_t dtype;                   //  element type
    size_t count;                       //  elements
    max_align_t data [];                //  count * size bytes follow
} s_array_t;

static char s_array_mt_key;             //  registry[&key] = the metatable

static const char *s_dtype_names [] = { "f64", "f32", "i64", "i32", "u8", NULL };
static const lp_dtype_t s_dtype_values [] = {
    LP_DTYPE_F64, LP_DTYPE_F32, LP_DTYPE_I64, LP_DTYPE_I32, LP_DTYPE_U8
};

static void s_ensure_metatable (lua_State *L);

//  Pushes a new zero-filled array; raises on memory errors
static s_array_t *
s_array_new (lua_State *L, lp_dtype_t dtype, size_t count)
{
    size_t size = lp_dtype_size (dtype);
    assert (size);
    if (count > (SIZE_MAX - sizeof (s_array_t)) / size)
        luaL_error (L, "lp.array of %zu elements is too large", count);
    s_array_t *self = (s_array_t *)
        lua_newuserdatauv (L, sizeof (s_array_t) + count * size, 0);
    self->dtype = dtype;
    self->count = count;
    memset (self->data, 0, count * size);
    s_ensure_metatable (L);
    lua_setmetatable (L, -2);
    return self;
}

//  Pushes element k (0-based) of data, an array of dtype
static void
s_push_elem (lua_State *L, lp_dtype_t dtype, const uint8_t *data, size_t k)
{
    switch (dtype) {
        case LP_DTYPE_F64: {
            double d;
            memcpy (&d, data + k * 8, 8);
            lua_pushnumber (L, d);
            break;
        }
        case LP_DTYPE_F32: {
            float f;
            memcpy (&f, data + k * 4, 4);
            lua_pushnumber (L, (lua_Number) f);
            break;
        }
        case LP_DTYPE_I64: {
            int64_t i;
            memcpy (&i, data + k * 8, 8);
            lua_pushinteger (L, (lua_Integer) i);
            break;
        }
        case LP_DTYPE_I32: {
            int32_t i;
            memcpy (&i, data + k * 4, 4);
            lua_pushinteger (L, i);
            break;
        }
        case LP_DTYPE_U8:
            lua_pushinteger (L, data [k]);
            break;
    }
}

//  Pushes element k (0-based)
static void
s_array_push_elem (lua_State *L, const s_array_t *self, size_t k)
{
    s_push_elem (L, self->dtype, (const uint8_t *) self->data, k);
}

//  Stores the value at idx as element k (0-based); raises on a bad value
static void
s_array_set_elem (lua_State *L, s_array_t *self, size_t k, int idx, lua_Integer where)
{
    uint8_t *data = (uint8_t *) self->data;
    const char *dname = lp_dtype_name (self->dtype);
    if (self->dtype == LP_DTYPE_F64 || self->dtype == LP_DTYPE_F32) {
        int isnum;
        lua_Number n = lua_tonumberx (L, idx, &isnum);
        if (!isnum || lua_type (L, idx) != LUA_TNUMBER)
            luaL_error (L, "lp.array(%s)[%I]: number expected, got %s",
                        dname, where, luaL_typename (L, idx));
        if (self->dtype == LP_DTYPE_F64) {
            double d = (double) n;
            memcpy (data + k * 8, &d, 8);
        }
        else {
            float f = (float) n;
            memcpy (data + k * 4, &f, 4);
        }
        return;
    }
    int isnum;
    lua_Integer i = lua_tointegerx (L, idx, &isnum);
    if (!isnum || lua_type (L, idx) != LUA_TNUMBER)
        luaL_error (L, "lp.array(%s)[%I]: integer expected, got %s",
                    dname, where, lua_type (L, idx) == LUA_TNUMBER
                    ? "a float with a fraction": luaL_typename (L, idx));
    if (self->dtype == LP_DTYPE_I64) {
        int64_t v = (int64_t) i;
        memcpy (data + k * 8, &v, 8);
    }
    else
    if (self->dtype == LP_DTYPE_I32) {
        if (i < INT32_MIN || i > INT32_MAX)
            luaL_error (L, "lp.array(i32)[%I]: %I is out of range", where, i);
        int32_t v = (int32_t) i;
        memcpy (data + k * 4, &v, 4);
    }
    else {
        if (i < 0 || i > 255)
            luaL_error (L, "lp.array(u8)[%I]: %I is out of range", where, i);
        data [k] = (uint8_t) i;
    }
}

static lp_dtype_t
s_check_dtype (lua_State *L, int arg)
{
    int k = luaL_checkoption (L, arg, NULL, s_dtype_names);
    return s_dtype_values [k];
}

//  lp.array(dtype, n | table)
static int
l_array_new (lua_State *L)
{
    lp_dtype_t dtype = s_check_dtype (L, 1);
    if (lua_type (L, 2) == LUA_TTABLE) {
        lua_Integer n = (lua_Integer) lua_rawlen (L, 2);
        s_array_t *self = s_array_new (L, dtype, (size_t) n);
        for (lua_Integer i = 1; i <= n; i++) {
            lua_rawgeti (L, 2, i);
            s_array_set_elem (L, self, (size_t) (i - 1), -1, i);
            lua_pop (L, 1);
        }
        return 1;
    }
    if (luaL_testudata (L, 2, LP_ARRAY_MT)) {
        //  Conversion from another array, element by element
        s_array_t *from = (s_array_t *) lua_touserdata (L, 2);
        s_array_t *self = s_array_new (L, dtype, from->count);
        for (size_t k = 0; k < from->count; k++) {
            s_array_push_elem (L, from, k);
            if (lua_isinteger (L, -1) == 0 && dtype != LP_DTYPE_F64
            &&  dtype != LP_DTYPE_F32) {
                //  Floats into integer arrays truncate toward zero
                lua_Number d = lua_tonumber (L, -1);
                lua_pop (L, 1);
                lua_Integer i;
                if (!lua_numbertointeger (d < 0? ceil (d): floor (d), &i))
                    return luaL_error (L, "lp.array: %f does not fit %s",
                                       d, lp_dtype_name (dtype));
                lua_pushinteger (L, i);
            }
            s_array_set_elem (L, self, k, -1, (lua_Integer) k + 1);
            lua_pop (L, 1);
        }
        return 1;
    }
    lua_Integer n = luaL_checkinteger (L, 2);
    luaL_argcheck (L, n >= 0, 2, "size must not be negative");
    s_array_new (L, dtype, (size_t) n);
    return 1;
}

//  __call of the constructor table: drops the table argument
static int
l_array_call (lua_State *L)
{
    lua_remove (L, 1);
    return l_array_new (L);
}

//  The integer key at stack index 2 of an __index / __newindex call
static lua_Integer
s_array_key (lua_State *L)
{
    int isnum;
    lua_Integer i = lua_tointegerx (L, 2, &isnum);
    if (!isnum)
        luaL_error (L, "lp.array index must be an integer, got %s", luaL_typename (L, 2));
    return i;
}

static int
l_array_index (lua_State *L)
{
    s_array_t *self = (s_array_t *) luaL_checkudata (L, 1, LP_ARRAY_MT);
    if (lua_type (L, 2) == LUA_TSTRING) {
        lua_pushvalue (L, 2);
        lua_rawget (L, lua_upvalueindex (1));       //  methods
        return 1;
    }
    lua_Integer i = s_array_key (L);
    if (i < 1 || (lua_Unsigned) i > self->count)
        lua_pushnil (L);
    else
        s_array_push_elem (L, self, (size_t) (i - 1));
    return 1;
}

static int
l_array_newindex (lua_State *L)
{
    s_array_t *self = (s_array_t *) luaL_checkudata (L, 1, LP_ARRAY_MT);
    lua_Integer i = s_array_key (L);
    if (i < 1 || (lua_Unsigned) i > self->count)
        return luaL_error (L, "lp.array index %I out of range 1..%I",
                           i, (lua_Integer) self->count);
    s_array_set_elem (L, self, (size_t) (i - 1), 3, i);
    return 0;
}

static int
l_array_len (lua_State *L)
{
    s_array_t *self = (s_array_t *) luaL_checkudata (L, 1, LP_ARRAY_MT);
    lua_pushinteger (L, (lua_Integer) self->count);
    return 1;
}

static int
l_array_tostring (lua_State *L)
{
    s_array_t *self = (s_array_t *) luaL_checkudata (L, 1, LP_ARRAY_MT);
    lua_pushfstring (L, "lp.array(%s, %I)", lp_dtype_name (self->dtype),
                     (lua_Integer) self->count);
    return 1;
}

static int
l_array_eq (lua_State *L)
{
    s_array_t *a = (s_array_t *) luaL_checkudata (L, 1, LP_ARRAY_MT);
    s_array_t *b = (s_array_t *) luaL_checkudata (L, 2, LP_ARRAY_MT);
    lua_pushboolean (L, a->dtype == b->dtype && a->count == b->count
                     && memcmp (a->data, b->data, a->count * lp_dtype_size (a->dtype)) == 0);
    return 1;
}

static int
l_array_totable (lua_State *L)
{
    s_array_t *self = (s_array_t *) luaL_checkudata (L, 1, LP_ARRAY_MT);
    if (self->count > INT_MAX)
        return luaL_error (L, "lp.array too large for a table");
    lua_createtable (L, (int) self->count, 0);
    for (size_t k = 0; k < self->count; k++) {
        s_array_push_elem (L, self, k);
        lua_rawseti (L, -2, (lua_Integer) k + 1);
    }
    return 1;
}

static int
l_array_dtype (lua_State *L)
{
    s_array_t *self = (s_array_t *) luaL_checkudata (L, 1, LP_ARRAY_MT);
    lua_pushstring (L, lp_dtype_name (self->dtype));
    return 1;
}

//  ---------------------------------------------------------------------
//  lp.array arithmetic, in C (docs/engine.md, "lp.array"): a:sum (),
//  a:min (), a:max () read; a:scale (k) and a:add (b | x) change a in
//  place and return it. Floats are computed in double, in index order
//  (so a:sum () of an f64 array equals the Lua loop s = s + a[i]); a NaN
//  makes sum, min and max NaN. Integers are computed as Lua computes
//  them: i64 wraps around; a result outside an i32 or u8 element's range
//  is an error and leaves the array unchanged.

static bool
s_is_float (lp_dtype_t dtype)
{
    return dtype == LP_DTYPE_F64 || dtype == LP_DTYPE_F32;
}

//  Element k as a double (any dtype)
static double
s_get_f (const s_array_t *self, size_t k)
{
    const uint8_t *data = (const uint8_t *) self->data;
    switch (self->dtype) {
        case LP_DTYPE_F64: { double d; memcpy (&d, data + k * 8, 8); return d; }
        case LP_DTYPE_F32: { float f; memcpy (&f, data + k * 4, 4); return f; }
        case LP_DTYPE_I64: { int64_t i; memcpy (&i, data + k * 8, 8); return (double) i; }
        case LP_DTYPE_I32: { int32_t i; memcpy (&i, data + k * 4, 4); return i; }
        case LP_DTYPE_U8:  return data [k];
    }
    return 0;
}

//  Element k as an int64 (integer dtypes)
static int64_t
s_get_i (const s_array_t *self, size_t k)
{
    const uint8_t *data = (const uint8_t *) self->data;
    switch (self->dtype) {
        case LP_DTYPE_I64: { int64_t i; memcpy (&i, data + k * 8, 8); return i; }
        case LP_DTYPE_I32: { int32_t i; memcpy (&i, data + k * 4, 4); return i; }
        case LP_DTYPE_U8:  return data [k];
        default:           return (int64_t) s_get_f (self, k);
    }
}

static void
s_put_f (s_array_t *self, size_t k, double d)
{
    uint8_t *data = (uint8_t *) self->data;
    if (self->dtype == LP_DTYPE_F64)
        memcpy (data + k * 8, &d, 8);
    else {
        float f = (float) d;
        memcpy (data + k * 4, &f, 4);
    }
}

static void
s_put_i (s_array_t *self, size_t k, int64_t i)
{
    uint8_t *data = (uint8_t *) self->data;
    if (self->dtype == LP_DTYPE_I64)
        memcpy (data + k * 8, &i, 8);
    else
    if (self->dtype == LP_DTYPE_I32) {
        int32_t v = (int32_t) i;
        memcpy (data + k * 4, &v, 4);
    }
    else
        data [k] = (uint8_t) i;
}

//  Lua's integer arithmetic: wraps around
static int64_t
s_wrap_add (int64_t a, int64_t b)
{
    return (int64_t) ((uint64_t) a + (uint64_t) b);
}

static int64_t
s_wrap_mul (int64_t a, int64_t b)
{
    return (int64_t) ((uint64_t) a * (uint64_t) b);
}

//  a:sum () --> the sum (0 or 0.0 for an empty array)
static int
l_array_sum (lua_State *L)
{
    s_array_t *self = (s_array_t *) luaL_checkudata (L, 1, LP_ARRAY_MT);
    if (s_is_float (self->dtype)) {
        double sum = 0;
        if (self->dtype == LP_DTYPE_F64) {
            const double *x = (const double *) self->data;
            for (size_t k = 0; k < self->count; k++)
                sum += x [k];
        }
        else {
            const float *x = (const float *) self->data;
            for (size_t k = 0; k < self->count; k++)
                sum += x [k];
        }
        lua_pushnumber (L, sum);
    }
    else {
        int64_t sum = 0;
        for (size_t k = 0; k < self->count; k++)
            sum = s_wrap_add (sum, s_get_i (self, k));
        lua_pushinteger (L, (lua_Integer) sum);
    }
    return 1;
}

//  a:min () / a:max () --> value, index of its first occurrence; nil for
//  an empty array; NaN and its index when an element is NaN.
static int
s_array_extreme (lua_State *L, bool want_max)
{
    s_array_t *self = (s_array_t *) luaL_checkudata (L, 1, LP_ARRAY_MT);
    if (self->count == 0) {
        lua_pushnil (L);
        return 1;
    }
    size_t best = 0;
    if (s_is_float (self->dtype)) {
        double value = s_get_f (self, 0);
        for (size_t k = 0; k < self->count && !isnan (value); k++) {
            double x = s_get_f (self, k);
            if (isnan (x) || (want_max? x > value: x < value)) {
                value = x;
                best = k;
            }
        }
        lua_pushnumber (L, value);
    }
    else {
        int64_t value = s_get_i (self, 0);
        for (size_t k = 1; k < self->count; k++) {
            int64_t x = s_get_i (self, k);
            if (want_max? x > value: x < value) {
                value = x;
                best = k;
            }
        }
        lua_pushinteger (L, (lua_Integer) value);
    }
    lua_pushinteger (L, (lua_Integer) best + 1);
    return 2;
}

static int
l_array_min (lua_State *L)
{
    return s_array_extreme (L, false);
}

static int
l_array_max (lua_State *L)
{
    return s_array_extreme (L, true);
}

//  Range of an integer dtype's elements
static void
s_int_range (lp_dtype_t dtype, int64_t *lo, int64_t *hi)
{
    *lo = dtype == LP_DTYPE_I32? INT32_MIN: dtype == LP_DTYPE_U8? 0: INT64_MIN;
    *hi = dtype == LP_DTYPE_I32? INT32_MAX: dtype == LP_DTYPE_U8? 255: INT64_MAX;
}

//  a:scale (k) --> a, every element multiplied by k (an integer for an
//  integer array)
static int
l_array_scale (lua_State *L)
{
    s_array_t *self = (s_array_t *) luaL_checkudata (L, 1, LP_ARRAY_MT);
    if (s_is_float (self->dtype)) {
        double factor = luaL_checknumber (L, 2);
        if (self->dtype == LP_DTYPE_F64) {     //  the common case, vectorised
            double *x = (double *) self->data;
            for (size_t k = 0; k < self->count; k++)
                x [k] *= factor;
        }
        else
        for (size_t k = 0; k < self->count; k++)
            s_put_f (self, k, s_get_f (self, k) * factor);
        lua_settop (L, 1);
        return 1;
    }
    if (!lua_isinteger (L, 2)) {
        luaL_checknumber (L, 2);
        return luaL_error (L, "lp.array(%s):scale: an integer factor expected, got %s "
                           "(convert first: lp.array ('f64', a))",
                           lp_dtype_name (self->dtype), lua_tostring (L, 2));
    }
    int64_t factor = (int64_t) lua_tointeger (L, 2);
    if (self->dtype != LP_DTYPE_I64) {
        int64_t lo, hi;
        s_int_range (self->dtype, &lo, &hi);
        for (size_t k = 0; k < self->count; k++) {
            int64_t x = s_get_i (self, k), y;
            if (__builtin_mul_overflow (x, factor, &y) || y < lo || y > hi)
                return luaL_error (L, "lp.array(%s):scale: element %I times %I is out of "
                                   "range", lp_dtype_name (self->dtype),
                                   (lua_Integer) k + 1, (lua_Integer) factor);
        }
    }
    for (size_t k = 0; k < self->count; k++)
        s_put_i (self, k, s_wrap_mul (s_get_i (self, k), factor));
    lua_settop (L, 1);
    return 1;
}

//  a:add (b) --> a, with b added: b an lp.array of the same length (any
//  dtype; an integer one for an integer a) or a number (added to every
//  element; an integer for an integer a)
static int
l_array_add (lua_State *L)
{
    s_array_t *self = (s_array_t *) luaL_checkudata (L, 1, LP_ARRAY_MT);
    const char *dname = lp_dtype_name (self->dtype);
    s_array_t *other = (s_array_t *) luaL_testudata (L, 2, LP_ARRAY_MT);
    if (other && other->count != self->count)
        return luaL_error (L, "lp.array(%s):add: lengths differ (%I and %I)", dname,
                           (lua_Integer) self->count, (lua_Integer) other->count);
    if (!other)
        luaL_checknumber (L, 2);
    if (s_is_float (self->dtype)) {
        double x = other? 0: lua_tonumber (L, 2);
        double *d = (double *) self->data;
        if (self->dtype == LP_DTYPE_F64 && !other)
            for (size_t k = 0; k < self->count; k++)
                d [k] += x;
        else
        if (self->dtype == LP_DTYPE_F64 && other->dtype == LP_DTYPE_F64) {
            const double *y = (const double *) other->data;
            for (size_t k = 0; k < self->count; k++)
                d [k] += y [k];
        }
        else
        for (size_t k = 0; k < self->count; k++)
            s_put_f (self, k, s_get_f (self, k) + (other? s_get_f (other, k): x));
        lua_settop (L, 1);
        return 1;
    }
    if (other? s_is_float (other->dtype): !lua_isinteger (L, 2))
        return luaL_error (L, "lp.array(%s):add: integers expected, got %s (convert "
                           "first: lp.array ('f64', a))", dname,
                           other? lp_dtype_name (other->dtype): "a float");
    int64_t x = other? 0: (int64_t) lua_tointeger (L, 2);
    if (self->dtype != LP_DTYPE_I64) {
        int64_t lo, hi;
        s_int_range (self->dtype, &lo, &hi);
        for (size_t k = 0; k < self->count; k++) {
            int64_t y;
            if (__builtin_add_overflow (s_get_i (self, k), other? s_get_i (other, k): x, &y)
            ||  y < lo || y > hi)
                return luaL_error (L, "lp.array(%s):add: element %I is out of range",
                                   dname, (lua_Integer) k + 1);
        }
    }
    for (size_t k = 0; k < self->count; k++)
        s_put_i (self, k, s_wrap_add (s_get_i (self, k), other? s_get_i (other, k): x));
    lua_settop (L, 1);
    return 1;
}

static void
s_ensure_metatable (lua_State *L)
{
    if (luaL_newmetatable (L, LP_ARRAY_MT)) {
        static const luaL_Reg methods [] = {
            { "totable", l_array_totable },
            { "dtype",   l_array_dtype },
            { "len",     l_array_len },
            { "sum",     l_array_sum },
            { "min",     l_array_min },
            { "max",     l_array_max },
            { "scale",   l_array_scale },
            { "add",     l_array_add },
            { NULL, NULL }
        };
        luaL_newlib (L, methods);
        lua_pushcclosure (L, l_array_index, 1);
        lua_setfield (L, -2, "__index");
        lua_pushcfunction (L, l_array_newindex);
        lua_setfield (L, -2, "__newindex");
        lua_pushcfunction (L, l_array_len);
        lua_setfield (L, -2, "__len");
        lua_pushcfunction (L, l_array_tostring);
        lua_setfield (L, -2, "__tostring");
        lua_pushcfunction (L, l_array_eq);
        lua_setfield (L, -2, "__eq");
        lua_pushvalue (L, -1);
        lua_rawsetp (L, LUA_REGISTRYINDEX, &s_array_mt_key);
    }
}

int
lp_lua_open_array (lua_State *L)
{
    s_ensure_metatable (L);
    lua_pop (L, 1);
    lua_createtable (L, 0, 3);
    lua_pushcfunction (L, l_array_new);
    lua_setfield (L, -2, "new");
    lua_pushcfunction (L, l_array_new);
    lua_setfield (L, -2, "from");
    lua_createtable (L, 5, 0);
    for (int k = 0; s_dtype_names [k]; k++) {
        lua_pushstring (L, s_dtype_names [k]);
        lua_rawseti (L, -2, k + 1);
    }
    lua_setfield (L, -2, "dtypes");
    lua_createtable (L, 0, 1);
    lua_pushcfunction (L, l_array_call);
    lua_setfield (L, -2, "__call");
    lua_setmetatable (L, -2);
    return 1;
}

//  True when the value at idx is an lp.array (no allocation, no raise)
static s_array_t *
s_test_array (lua_State *L, int idx)
{
    if (lua_type (L, idx) != LUA_TUSERDATA || !lua_getmetatable (L, idx))
        return NULL;
    lua_rawgetp (L, LUA_REGISTRYINDEX, &s_array_mt_key);
    bool same = lua_rawequal (L, -1, -2);
    lua_pop (L, 2);
    return same? (s_array_t *) lua_touserdata (L, idx): NULL;
}

//  ---------------------------------------------------------------------
//  lp_value -> Lua

//  Pushes a typed array flagged as a sequence as a plain table
static void
s_push_sequence (lua_State *L, const lp_value_t *v)
{
    size_t len = lp_value_len (v);
    if (len > INT_MAX)
        luaL_error (L, "a sequence of %I numbers is too long for a Lua table",
                    (lua_Integer) len);
    lua_createtable (L, (int) len, 0);
    const uint8_t *data = (const uint8_t *) lp_value_typed_data (v);
    lp_dtype_t dtype = lp_value_dtype (v);
    for (size_t k = 0; k < len; k++) {
        s_push_elem (L, dtype, data, k);
        lua_rawseti (L, -2, (lua_Integer) k + 1);
    }
}

//  ---------------------------------------------------------------------
//  Adoption: a large string or lp.array made from a decoded block without
//  copying it. lp_codec leaves s_str_head (s_typed_head) bytes before the
//  data of an out-of-band value, exactly the room Lua 5.4 puts before the
//  bytes of a long string (an lp.array's elements) in the one allocation
//  that holds the object. While such an object is created, the state's
//  allocator is wrapped: the allocation of that tag and exact size is
//  answered with the block itself, handed to the real allocator as
//  (block, osize 0, nsize) so it counts the memory (lp_engine's allocator
//  adopts such a call: ptr with osize 0 never comes from Lua). Lua then
//  copies the bytes onto themselves, which memcpy does for free. Room
//  sizes are measured once on the state (lp_lua_enable_adoption), not
//  taken from Lua's private headers; 0 disables adoption.

static size_t s_str_head;               //  0: adoption off
static size_t s_typed_head;

//  Borrowing (lp_lua_set_borrower): large strings that lp_lua_to_value
//  meets become values that point into the Lua string. The borrower is
//  the state's: registry[&s_borrow_key] = userdata s_borrower_t.
static char s_borrow_key;

typedef struct {
    lp_lua_borrow_fn *fn;
    void *ud;
} s_borrower_t;

void
lp_lua_set_borrower (lua_State *L, lp_lua_borrow_fn *fn, void *ud)
{
    s_borrower_t *borrower = (s_borrower_t *) lua_newuserdatauv (L, sizeof *borrower, 0);
    borrower->fn = fn;
    borrower->ud = ud;
    lua_rawsetp (L, LUA_REGISTRYINDEX, &s_borrow_key);
}

//  The state's borrower, or NULL; never raises
static s_borrower_t *
s_borrower (lua_State *L)
{
    if (!lua_checkstack (L, 1))
        return NULL;
    lua_rawgetp (L, LUA_REGISTRYINDEX, &s_borrow_key);
    s_borrower_t *borrower = (s_borrower_t *) lua_touserdata (L, -1);
    lua_pop (L, 1);
    return borrower && borrower->fn? borrower: NULL;
}

size_t
lp_lua_string_head (void)
{
    return s_str_head;
}

typedef struct {
    lua_Alloc f;                        //  the state's allocator
    void *ud;                           //  and its data
    int tag;                            //  LUA_TSTRING or LUA_TUSERDATA
    size_t size;                        //  allocation to answer
    char *block;                        //  with this block (NULL: spy)
    char *seen;                         //  spy: what the allocation got
    size_t seen_size;                   //  and its size
    bool taken;                         //  block handed over
    const char *str;                    //  string to push
    size_t len;                         //  its length
    lp_dtype_t dtype;                   //  lp.array to push
    size_t count;                       //  its elements
} s_adopt_t;

static void *
s_adopt_alloc (void *ud, void *ptr, size_t osize, size_t nsize)
{
    s_adopt_t *a = (s_adopt_t *) ud;
    if (!ptr && osize == (size_t) a->tag && nsize > 0) {
        if (!a->block) {
            void *got = a->f (a->ud, ptr, osize, nsize);
            if (got && !a->seen) {
                a->seen = (char *) got;
                a->seen_size = nsize;
            }
            return got;
        }
        if (!a->taken && nsize == a->size) {
            void *got = a->f (a->ud, a->block, 0, nsize);
            if (got == a->block)
                a->taken = true;
            else
                assert (!got);          //  over the memory cap: Lua raises
            return got;
        }
    }
    return a->f (a->ud, ptr, osize, nsize);
}

//  Pushes a long string, or an lp.array whose elements are not
//  initialised; runs protected, under s_adopt_alloc.
static int
s_adopt_push (lua_State *L)
{
    s_adopt_t *a = (s_adopt_t *) lua_touserdata (L, 1);
    if (a->tag == LUA_TSTRING)
        lua_pushlstring (L, a->str, a->len);
    else {
        size_t size = lp_dtype_size (a->dtype);
        s_array_t *array = (s_array_t *)
            lua_newuserdatauv (L, sizeof (s_array_t) + a->count * size, 0);
        array->dtype = a->dtype;
        array->count = a->count;
        if (a->str && a->str != (const char *) array->data)
            memcpy (array->data, a->str, a->count * size);
        s_ensure_metatable (L);
        lua_setmetatable (L, -2);
    }
    return 1;
}

//  Runs s_adopt_push under the wrapped allocator; re-raises its error
//  once the allocator is restored.
static void
s_adopt_run (lua_State *L, s_adopt_t *a)
{
    a->f = lua_getallocf (L, &a->ud);
    lua_pushcfunction (L, s_adopt_push);
    lua_pushlightuserdata (L, a);
    lua_setallocf (L, s_adopt_alloc, a);
    int rc = lua_pcall (L, 1, 1, 0);
    lua_setallocf (L, a->f, a->ud);
    if (rc != LUA_OK)
        lua_error (L);
}

int
lp_lua_enable_adoption (lua_State *L)
{
    assert (L);
    static bool measured = false;       //  the layout is the library's
    if (measured)
        return 0;
    if (!lua_checkstack (L, 4))
        return -1;
    //  A long string of 100 bytes: where its bytes lie in its allocation
    char probe [100];
    memset (probe, 'a', sizeof probe);
    s_adopt_t a = { .tag = LUA_TSTRING, .str = probe, .len = sizeof probe };
    s_adopt_run (L, &a);
    const char *data = lua_tostring (L, -1);
    size_t str_head = a.seen? (size_t) (data - a.seen): 0;
    bool str_ok = a.seen && data > a.seen && str_head < 256
               && a.seen_size == str_head + sizeof probe + 1;
    lua_pop (L, 1);
    //  An lp.array of 100 bytes: where its elements lie
    s_adopt_t b = { .tag = LUA_TUSERDATA, .dtype = LP_DTYPE_U8, .count = 100 };
    s_ensure_metatable (L);             //  its allocations are not the probe's
    lua_pop (L, 1);
    s_adopt_run (L, &b);
    s_array_t *array = (s_array_t *) lua_touserdata (L, -1);
    size_t typed_head = b.seen? (size_t) ((char *) array->data - b.seen): 0;
    bool typed_ok = b.seen && (char *) array->data > b.seen && typed_head < 256
                 && b.seen_size == typed_head + 100
                 && sizeof (s_array_t) == offsetof (s_array_t, data);
    lua_pop (L, 1);
    s_str_head = str_ok? str_head: 0;
    s_typed_head = typed_ok? typed_head: 0;
    lp_codec_set_headroom (s_str_head, s_typed_head);
    measured = true;
    return 0;
}

static void s_push (lua_State *L, lp_value_t *v, bool take);

void
lp_lua_push_value (lua_State *L, const lp_value_t *v)
{
    s_push (L, LP_UNCONST (lp_value_t *, v), false);
}

void
lp_lua_push_value_take (lua_State *L, lp_value_t *v)
{
    s_push (L, v, true);
}

static void
s_push (lua_State *L, lp_value_t *v, bool take)
{
    assert (v);
    luaL_checkstack (L, 3, "value nests too deeply");
    size_t len;
    const char *s;
    switch (lp_value_type (v)) {
        case LP_NIL:
            lua_pushnil (L);
            break;
        case LP_BOOL:
            lua_pushboolean (L, lp_value_as_bool (v));
            break;
        case LP_INT:
            lua_pushinteger (L, (lua_Integer) lp_value_as_int (v));
            break;
        case LP_NUMBER:
            lua_pushnumber (L, lp_value_as_number (v));
            break;
        case LP_STRING:
        case LP_BYTES:
            s = lp_value_as_string (v, &len);
            if (take && s_str_head && len > LP_INLINE_MAX_BYTES
            &&  lp_value_str_has_head (v, s_str_head)) {
                //  A block from lp_codec has s_str_head bytes before s
                s_adopt_t a = { .tag = LUA_TSTRING, .str = s, .len = len,
                                .block = LP_UNCONST (char *, s) - s_str_head,
                                .size = s_str_head + len + 1 };
                s_adopt_run (L, &a);
                if (a.taken)
                    lp_value_detach (v, NULL);
            }
            else
                lua_pushlstring (L, s, len);
            break;
        case LP_ARRAY: {
            len = lp_value_len (v);
            lua_createtable (L, len > INT_MAX? INT_MAX: (int) len, 0);
            for (size_t k = 0; k < len; k++) {
                s_push (L, LP_UNCONST (lp_value_t *, lp_value_at (v, k)), take);
                lua_rawseti (L, -2, (lua_Integer) k + 1);
            }
            break;
        }
        case LP_MAP: {
            len = lp_value_len (v);
            lua_createtable (L, 0, len > INT_MAX? INT_MAX: (int) len);
            for (size_t k = 0; k < len; k++) {
                const lp_value_t *key = lp_value_key_at (v, k);
                //  nil and NaN cannot be table keys
                if (lp_value_type (key) == LP_NIL
                || (lp_value_type (key) == LP_NUMBER && isnan (lp_value_as_number (key))))
                    continue;
                lp_lua_push_value (L, key);
                s_push (L, LP_UNCONST (lp_value_t *, lp_value_value_at (v, k)), take);
                lua_rawset (L, -3);
            }
            break;
        }
        case LP_TYPED: {
            lp_dtype_t dtype = lp_value_dtype (v);
            len = lp_value_len (v);
            if (lp_value_typed_is_sequence (v)) {
                s_push_sequence (L, v);
                break;
            }
            const char *data = (const char *) lp_value_typed_data (v);
            if (take && s_typed_head && len
            &&  lp_value_typed_freed_by (v, lp_codec_free_typed_block)) {
                //  A block from lp_codec has s_typed_head bytes before data
                size_t bytes = len * lp_dtype_size (dtype);
                s_adopt_t a = { .tag = LUA_TUSERDATA, .str = data,
                                .dtype = dtype, .count = len,
                                .block = LP_UNCONST (char *, data) - s_typed_head,
                                .size = s_typed_head + bytes };
                s_adopt_run (L, &a);
                if (a.taken)
                    lp_value_detach (v, NULL);
                break;
            }
            s_array_t *array = s_array_new (L, dtype, len);
            if (len)
                memcpy (array->data, data, len * lp_dtype_size (dtype));
            break;
        }
    }
}

//  ---------------------------------------------------------------------
//  Lua -> lp_value

typedef struct {
    lua_State *L;                       //  the state
    const char *root;                   //  name of the whole value
    char *err;                          //  error text
    size_t errlen;                      //  its size
    const void *tables [LP_VALUE_MAX_DEPTH + 1];   //  ancestors, for cycles
    struct {
        bool is_key;                    //  converting a key of this table
        bool by_index;                  //  array element: index below
        lua_Integer index;              //  element index (1-based)
        int key_idx;                    //  else: stack index of the key
    } path [LP_VALUE_MAX_DEPTH + 2];    //  how we got to each level
} s_conv_t;


//  Fills err with "<what> (at <path>)" for a failure at depth
static lp_value_t *
s_fail (s_conv_t *c, int depth, const char *what)
{
    lua_State *L = c->L;
    char path [256];
    size_t used = 0;
    bool as_key = false;
#define S_APPEND(...) do { \
        if (used < sizeof path) { \
            int n_ = snprintf (path + used, sizeof path - used, __VA_ARGS__); \
            if (n_ > 0) used += (size_t) n_; \
        } } while (0)
    S_APPEND ("%s", c->root);
    for (int k = 0; k < depth; k++) {
        if (c->path [k].is_key) {
            as_key = true;
            break;
        }
        if (c->path [k].by_index) {
            S_APPEND ("[%lld]", (long long) c->path [k].index);
            continue;
        }
        int idx = c->path [k].key_idx;
        switch (lua_type (L, idx)) {
            case LUA_TSTRING: {
                size_t len;
                const char *s = lua_tolstring (L, idx, &len);
                if (lp_util_lua_name (s, len))
                    S_APPEND (".%s", s);
                else
                    S_APPEND ("[\"%.40s\"]", s);
                break;
            }
            case LUA_TNUMBER:
                if (lua_isinteger (L, idx))
                    S_APPEND ("[%lld]", (long long) lua_tointeger (L, idx));
                else
                    S_APPEND ("[%.14g]", (double) lua_tonumber (L, idx));
                break;
            case LUA_TBOOLEAN:
                S_APPEND ("[%s]", lua_toboolean (L, idx)? "true": "false");
                break;
            default:
                S_APPEND ("[<%s>]", lua_typename (L, lua_type (L, idx)));
                break;
        }
    }
#undef S_APPEND
    if (used >= sizeof path)
        strcpy (path + sizeof path - 4, "...");
    snprintf (c->err, c->errlen, "%s (%s %s)", what,
              as_key? "as a key in": "at", path);
    return NULL;
}

static lp_value_t *
s_oom (s_conv_t *c)
{
    snprintf (c->err, c->errlen, "out of memory while converting %s", c->root);
    return NULL;
}

//  value, or NULL with the out-of-memory error when it is NULL
static lp_value_t *
s_made (s_conv_t *c, lp_value_t *value)
{
    return value? value: s_oom (c);
}

static lp_value_t *s_to_value (s_conv_t *c, int idx, int depth);

//  Sequence of n numbers, all integers (else all floats), as a typed array
//  flagged as a sequence: one buffer, no node per element
static lp_value_t *
s_sequence_to_typed (s_conv_t *c, int idx, size_t n, bool integers)
{
    lua_State *L = c->L;
    lp_value_t *typed = lp_value_typed (integers? LP_DTYPE_I64: LP_DTYPE_F64, n);
    if (!typed)
        return s_oom (c);
    lp_value_typed_set_sequence (typed, true);
    if (integers) {
        int64_t *data = (int64_t *) lp_value_typed_data (typed);
        for (size_t k = 0; k < n; k++) {
            lua_rawgeti (L, idx, (lua_Integer) k + 1);
            data [k] = (int64_t) lua_tointeger (L, -1);
            lua_pop (L, 1);
        }
    }
    else {
        double *data = (double *) lp_value_typed_data (typed);
        for (size_t k = 0; k < n; k++) {
            lua_rawgeti (L, idx, (lua_Integer) k + 1);
            data [k] = (double) lua_tonumber (L, -1);
            lua_pop (L, 1);
        }
    }
    return typed;
}

static lp_value_t *
s_table_to_value (s_conv_t *c, int idx, int depth)
{
    lua_State *L = c->L;
    if (depth >= LP_VALUE_MAX_DEPTH) {
        char what [64];
        snprintf (what, sizeof what, "value nests deeper than %d levels",
                  LP_VALUE_MAX_DEPTH);
        return s_fail (c, depth, what);
    }
    const void *self = lua_topointer (L, idx);
    for (int k = 0; k < depth; k++)
        if (c->tables [k] == self)
            return s_fail (c, depth, "cannot send a cyclic table");
    c->tables [depth] = self;
    if (!lua_checkstack (L, 4))
        return s_fail (c, depth, "Lua stack overflow while converting");

    //  Array when the keys are exactly 1..n
    lua_Unsigned n = lua_rawlen (L, idx);
    lua_Unsigned keys = 0;
    bool sequence = true;
    bool all_int = true;                //  every value an integer
    bool all_float = true;              //  every value a float
    lua_pushnil (L);
    while (lua_next (L, idx)) {
        keys++;
        if (lua_type (L, -1) != LUA_TNUMBER)
            all_int = all_float = false;
        else
        if (lua_isinteger (L, -1))
            all_float = false;
        else
            all_int = false;
        if (sequence) {
            if (!lua_isinteger (L, -2))
                sequence = false;
            else {
                lua_Integer i = lua_tointeger (L, -2);
                if (i < 1 || (lua_Unsigned) i > n)
                    sequence = false;
            }
        }
        lua_pop (L, 1);
    }
    if (keys == 0)
        return s_made (c, lp_value_array ());

    if (sequence && keys == n && n > LP_SEQUENCE_TYPED_MIN && (all_int || all_float))
        return s_sequence_to_typed (c, idx, (size_t) n, all_int);
    if (sequence && keys == n) {
        lp_value_t *array = lp_value_array ();
        if (!array)
            return s_oom (c);
        c->path [depth].is_key = false;
        c->path [depth].by_index = true;
        for (lua_Unsigned i = 1; i <= n; i++) {
            c->path [depth].index = (lua_Integer) i;
            lua_rawgeti (L, idx, (lua_Integer) i);
            lp_value_t *item = s_to_value (c, lua_gettop (L), depth + 1);
            lua_pop (L, 1);
            if (!item) {
                lp_value_destroy (&array);
                return NULL;
            }
            if (lp_value_append (array, item)) {
                lp_value_destroy (&array);
                return s_oom (c);
            }
        }
        return array;
    }
    lp_value_t *map = lp_value_map ();
    if (!map)
        return s_oom (c);
    lua_pushnil (L);
    while (lua_next (L, idx)) {
        int top = lua_gettop (L);
        c->path [depth].by_index = false;
        c->path [depth].key_idx = top - 1;
        c->path [depth].is_key = true;
        lp_value_t *key = s_to_value (c, top - 1, depth + 1);
        c->path [depth].is_key = false;
        lp_value_t *val = key? s_to_value (c, top, depth + 1): NULL;
        lua_pop (L, 1);
        if (!val) {
            lua_pop (L, 1);             //  the key
            lp_value_destroy (&key);
            lp_value_destroy (&map);
            return NULL;
        }
        if (lp_value_set_key (map, key, val)) {
            lua_pop (L, 1);
            lp_value_destroy (&map);
            return s_oom (c);
        }
    }
    return map;
}

static lp_value_t *
s_to_value (s_conv_t *c, int idx, int depth)
{
    lua_State *L = c->L;
    switch (lua_type (L, idx)) {
        case LUA_TNIL:
            return s_made (c, lp_value_nil ());
        case LUA_TBOOLEAN:
            return s_made (c, lp_value_bool (lua_toboolean (L, idx)));
        case LUA_TNUMBER:
            if (lua_isinteger (L, idx))
                return s_made (c, lp_value_int ((int64_t) lua_tointeger (L, idx)));
            return s_made (c, lp_value_number ((double) lua_tonumber (L, idx)));
        case LUA_TSTRING: {
            size_t len;
            const char *s = lua_tolstring (L, idx, &len);
            lp_type_t type = lp_util_utf8_valid (s, len)? LP_STRING: LP_BYTES;
            void (*release) (void *) = NULL;
            void *arg = NULL;
            //  A large string is borrowed when the state allows it
            s_borrower_t *borrower = len > LP_INLINE_MAX_BYTES? s_borrower (L): NULL;
            if (borrower && borrower->fn (borrower->ud, s, len, &release, &arg)) {
                lp_value_t *v = lp_value_str_borrow (type, s, len, release, arg);
                if (!v)
                    release (arg);
                return v? v: s_oom (c);
            }
            lp_value_t *v = type == LP_STRING
                ? lp_value_lstring (s, len): lp_value_bytes (s, len);
            return v? v: s_oom (c);
        }
        case LUA_TTABLE:
            return s_table_to_value (c, idx, depth);
        case LUA_TUSERDATA: {
            s_array_t *array = s_test_array (L, idx);
            if (!array)
                return s_fail (c, depth, "cannot send a userdata");
            lp_value_t *v = lp_value_typed (array->dtype, array->count);
            if (!v)
                return s_oom (c);
            if (array->count)
                memcpy (lp_value_typed_data (v), array->data,
                        array->count * lp_dtype_size (array->dtype));
            return v;
        }
        case LUA_TLIGHTUSERDATA:
            return s_fail (c, depth, "cannot send a userdata");
        case LUA_TFUNCTION:
            return s_fail (c, depth, "cannot send a function");
        case LUA_TTHREAD:
            return s_fail (c, depth, "cannot send a thread");
    }
    return s_fail (c, depth, "cannot send this value");
}

lp_dtype_t
lp_lua_sequence_dtype (lua_State *L, int idx)
{
    if (lua_type (L, idx) != LUA_TTABLE || !lua_checkstack (L, 2))
        return (lp_dtype_t) 0;
    idx = lua_absindex (L, idx);
    lua_Unsigned n = lua_rawlen (L, idx);
    if (n <= LP_SEQUENCE_TYPED_MIN)
        return (lp_dtype_t) 0;
    lua_Unsigned keys = 0;
    int kind = -1;                      //  1 integers, 0 floats
    lua_pushnil (L);
    while (lua_next (L, idx)) {
        lua_Integer i = lua_isinteger (L, -2)? lua_tointeger (L, -2): 0;
        int this_kind = lua_type (L, -1) != LUA_TNUMBER? -2: lua_isinteger (L, -1);
        if (i < 1 || (lua_Unsigned) i > n || this_kind == -2
        ||  (kind != -1 && this_kind != kind)) {
            lua_pop (L, 2);
            return (lp_dtype_t) 0;
        }
        kind = this_kind;
        keys++;
        lua_pop (L, 1);
    }
    if (keys != n)
        return (lp_dtype_t) 0;
    return kind? LP_DTYPE_I64: LP_DTYPE_F64;
}

lp_value_t *
lp_lua_to_value (lua_State *L, int idx, const char *path_root, char *err, size_t errlen)
{
    assert (L);
    char dummy [8];
    if (!err || errlen == 0) {
        err = dummy;
        errlen = sizeof dummy;
    }
    *err = 0;
    s_conv_t c;
    c.L = L;
    c.root = path_root? path_root: "value";
    c.err = err;
    c.errlen = errlen;
    int top = lua_gettop (L);
    lp_value_t *v = s_to_value (&c, lua_absindex (L, idx), 0);
    lua_settop (L, top);
    return v;
}

//  ---------------------------------------------------------------------
//  Self-test

//  Runs code (which returns one value) and converts the result
static lp_value_t *
s_eval (lua_State *L, const char *code, char *err, size_t errlen)
{
    if (luaL_dostring (L, code)) {
        fprintf (stderr, "lua error: %s\n", lua_tostring (L, -1));
        assert (false);
    }
    lp_value_t *v = lp_lua_to_value (L, -1, "x", err, errlen);
    lua_pop (L, 1);
    return v;
}

static void
s_expect_print (lua_State *L, const char *code, const char *expected)
{
    char err [256];
    lp_value_t *v = s_eval (L, code, err, sizeof err);
    if (!v)
        fprintf (stderr, "%s: %s\n", code, err);
    assert (v);
    char *text = lp_value_print (v);
    assert (text);
    if (strcmp (text, expected)) {
        fprintf (stderr, "%s -> %s, expected %s\n", code, text, expected);
        assert (false);
    }
    free (text);
    lp_value_destroy (&v);
}

static void
s_expect_error (lua_State *L, const char *code, const char *expected)
{
    char err [256];
    lp_value_t *v = s_eval (L, code, err, sizeof err);
    assert (v == NULL);
    if (!strstr (err, expected)) {
        fprintf (stderr, "%s -> '%s', expected '%s'\n", code, err, expected);
        assert (false);
    }
}

static void
s_run (lua_State *L, const char *code)
{
    if (luaL_dostring (L, code)) {
        fprintf (stderr, "lua error: %s\n", lua_tostring (L, -1));
        assert (false);
    }
    lua_settop (L, 0);
}

//  Allocator with a cap, to see that memory errors leak nothing
static size_t s_alloc_used;
static size_t s_alloc_cap;

static void *
s_capped_alloc (void *ud, void *ptr, size_t osize, size_t nsize)
{
    (void) ud;
    if (ptr && osize == 0 && nsize > 0) {
        //  adoption (lp_lua_push_value_take), as lp_engine's allocator
        if (s_alloc_used + nsize > s_alloc_cap)
            return NULL;
        s_alloc_used += nsize;
        return ptr;
    }
    size_t old = ptr? osize: 0;
    if (nsize == 0) {
        free (ptr);
        s_alloc_used -= old;
        return NULL;
    }
    if (nsize > old && s_alloc_used + (nsize - old) > s_alloc_cap)
        return NULL;
    void *block = realloc (ptr, nsize);
    if (block)
        s_alloc_used = s_alloc_used - old + nsize;
    return block;
}

//  A borrower that counts what is lent
static int s_borrowed;
static void
s_test_release (void *arg)
{
    (*(int *) arg)--;
}

static bool
s_test_borrow (void *ud, const char *data, size_t len,
               void (**release_p) (void *), void **arg_p)
{
    (void) data;
    (void) len;
    (*(int *) ud)++;
    *release_p = s_test_release;
    *arg_p = ud;
    return true;
}

static int
s_push_take_protected (lua_State *L)
{
    lp_lua_push_value_take (L, (lp_value_t *) lua_touserdata (L, 1));
    return 1;
}

static int
s_push_protected (lua_State *L)
{
    const lp_value_t *v = (const lp_value_t *) lua_touserdata (L, 1);
    lp_lua_push_value (L, v);
    return 1;
}

void
lp_luavalue_test (bool verbose)
{
    printf (" * luavalue: ");
    char err [256];

    //  @selftest
    lua_State *L = luaL_newstate ();
    assert (L);
    luaL_openlibs (L);
    lua_newtable (L);
    lp_lua_open_array (L);
    lua_setfield (L, -2, "array");
    lua_setglobal (L, "lp");

    //  Lua -> value
    s_expect_print (L, "return nil", "nil");
    s_expect_print (L, "return 42", "42");
    s_expect_print (L, "return 42.0", "42.0");
    s_expect_print (L, "return 'h\\u{e9}'", "\"h\xc3\xa9\"");
    s_expect_print (L, "return {1, 2, 3}", "{1, 2, 3}");
    s_expect_print (L, "return {}", "{}");
    s_expect_print (L, "return {1, nil, 3}", "{1, [3] = 3}");
    s_expect_print (L, "return {x = {y = true}}", "{x = {y = true}}");
    s_expect_print (L, "return {[{1}] = 2}", "{[{1}] = 2}");
    s_expect_print (L, "return lp.array('f64', {1, 2.5, 3})",
                    "lp.array(f64, 3){1.0, 2.5, 3.0}");

    //  lp.array arithmetic: values, empty arrays, NaN, integer rules
    s_run (L,
        "local function eq (a, b) assert (a == b and math.type (a) == math.type (b), "
        "  tostring (a) .. ' ~= ' .. tostring (b)) end\n"
        "local f = lp.array ('f64', {1.5, -2, 4, 0.25})\n"
        "eq (f:sum (), 3.75)\n"
        "local v, i = f:min () eq (v, -2.0) eq (i, 2)\n"
        "v, i = f:max () eq (v, 4.0) eq (i, 3)\n"
        "local g = lp.array ('f64', 1000) local s = 0\n"
        "for k = 1, #g do g[k] = 1 / k s = s + g[k] end\n"
        "eq (g:sum (), s)\n"                            //  the Lua loop, exactly
        "local n = lp.array ('i32', {3, -7, 12, 12, -7})\n"
        "eq (n:sum (), 13)\n"
        "v, i = n:min () eq (v, -7) eq (i, 2)\n"
        "v, i = n:max () eq (v, 12) eq (i, 3)\n"
        "eq (lp.array ('u8', {200, 100}):sum (), 300)\n"
        "eq (lp.array ('i64', {math.maxinteger, 1}):sum (), math.mininteger)\n"
        //  empty
        "eq (lp.array ('f64', 0):sum (), 0.0) eq (lp.array ('i64', 0):sum (), 0)\n"
        "assert (lp.array ('f32', 0):min () == nil and lp.array ('u8', 0):max () == nil)\n"
        "assert (select ('#', lp.array ('i32', 0):min ()) == 1)\n"
        //  NaN: sum, min and max are NaN, at the first NaN's index
        "local nan = lp.array ('f64', {1, 0/0, -5, 0/0})\n"
        "assert (nan:sum () ~= nan:sum ())\n"
        "v, i = nan:min () assert (v ~= v) eq (i, 2)\n"
        "v, i = nan:max () assert (v ~= v) eq (i, 2)\n"
        "v, i = lp.array ('f32', {0/0}):min () assert (v ~= v) eq (i, 1)\n"
        //  scale and add: in place, return the array
        "local a = lp.array ('f32', {1, 2, 3})\n"
        "assert (a:scale (0.5) == a) eq (a[1], 0.5) eq (a[3], 1.5)\n"
        "assert (a:add (lp.array ('i32', {1, 1, 1})) == a) eq (a[2], 2.0)\n"
        "a:add (10) eq (a[1], 11.5)\n"
        "local b = lp.array ('i32', {1, -2, 3})\n"
        "b:scale (3) eq (b[1], 3) eq (b[2], -6)\n"
        "b:add (b) eq (b[3], 18)\n"
        "b:add (-1) eq (b[1], 5)\n"
        "eq (lp.array ('f64', 0):scale (2):add (1):sum (), 0.0)\n"
        "local w = lp.array ('i64', {math.maxinteger}) w:add (1) eq (w[1], math.mininteger)\n"
        //  errors leave the array unchanged
        "local u = lp.array ('u8', {100, 200})\n"
        "local ok, e = pcall (u.scale, u, 2) assert (not ok and e:find ('out of range'), e)\n"
        "eq (u[1], 100) eq (u[2], 200)\n"
        "ok, e = pcall (u.add, u, 56) assert (not ok and e:find ('element 2 is out of range'), e)\n"
        "eq (u[2], 200)\n"
        "ok, e = pcall (b.scale, b, 0.5) assert (not ok and e:find ('integer factor'), e)\n"
        "ok, e = pcall (b.add, b, lp.array ('f64', 3)) assert (not ok and e:find ('integers expected'), e)\n"
        "ok, e = pcall (b.add, b, lp.array ('i32', 2)) assert (not ok and e:find ('lengths differ'), e)\n"
        "ok, e = pcall (f.add, f, 'x') assert (not ok, 'add of a string')\n");
    lp_value_t *v = s_eval (L, "return '\\xff\\xfe'", err, sizeof err);
    assert (v && lp_value_type (v) == LP_BYTES);
    lp_value_destroy (&v);
    v = s_eval (L, "return 'ok'", err, sizeof err);
    assert (v && lp_value_type (v) == LP_STRING);
    lp_value_destroy (&v);
    v = s_eval (L, "return {1, 2, x = 'y', [5] = true}", err, sizeof err);
    assert (v && lp_value_type (v) == LP_MAP && lp_value_len (v) == 4);
    assert (streq (lp_value_as_string (lp_value_get (v, "x"), NULL), "y"));
    lp_value_destroy (&v);
    //  A table shared by two branches is no cycle
    v = s_eval (L, "local s = {1}; return {a = s, b = s}", err, sizeof err);
    assert (v && lp_value_len (v) == 2);
    lp_value_destroy (&v);

    //  What cannot be sent, with the key path
    s_expect_error (L, "return {handlers = {1, function () end}}",
                    "cannot send a function (at x.handlers[2])");
    s_expect_error (L, "return print", "cannot send a function (at x)");
    s_expect_error (L, "return {['a b'] = {io.stdout}}",
                    "cannot send a userdata (at x[\"a b\"][1])");
    s_expect_error (L, "return {co = coroutine.create (print)}",
                    "cannot send a thread (at x.co)");
    s_expect_error (L, "local t = {}; t.me = t; return {t}",
                    "cannot send a cyclic table (at x[1].me)");
    s_expect_error (L, "return {[print] = 1}", "cannot send a function (as a key in x)");
    s_expect_error (L, "return {[2.5] = {[true] = print}}",
                    "cannot send a function (at x[2.5][true])");
    //  Nesting: 24 levels pass, 25 do not
    v = s_eval (L, "local t = 1; for i = 1, 24 do t = {t} end; return t",
                err, sizeof err);
    assert (v);
    lp_value_destroy (&v);
    s_expect_error (L, "local t = 1; for i = 1, 25 do t = {t} end; return t",
                    "nests deeper than 24");

    //  value -> Lua -> value
    lp_value_t *all = lp_value_map ();
    lp_value_set (all, "i", lp_value_int (-7));
    lp_value_set (all, "n", lp_value_number (0.5));
    lp_value_set (all, "s", lp_value_string ("text"));
    lp_value_set (all, "b", lp_value_bytes ("\x00\xff", 2));
    lp_value_set (all, "t", lp_value_bool (true));
    lp_value_set (all, "list", lp_value_int_range (1, 10));
    lp_value_set_key (all, lp_value_int (3), lp_value_string ("three"));
    lp_dtype_t dtypes [] = { LP_DTYPE_F64, LP_DTYPE_F32, LP_DTYPE_I64,
                             LP_DTYPE_I32, LP_DTYPE_U8 };
    for (int d = 0; d < 5; d++) {
        lp_value_t *typed = lp_value_typed (dtypes [d], 4);
        uint8_t *bytes = (uint8_t *) lp_value_typed_data (typed);
        for (size_t k = 0; k < 4 * lp_dtype_size (dtypes [d]); k++)
            bytes [k] = (uint8_t) (k * 13 + 1);
        lp_value_set (all, lp_dtype_name (dtypes [d]), typed);
    }
    lp_lua_push_value (L, all);
    lp_value_t *back = lp_lua_to_value (L, -1, "all", err, sizeof err);
    assert (back);
    assert (lp_value_equal (all, back));
    lua_setglobal (L, "all");
    s_run (L, "assert(all.s == 'text' and all.b == '\\0\\xff' and all[3] == 'three')\n"
              "assert(math.type(all.i) == 'integer' and all.n == 0.5)\n"
              "assert(#all.list == 10 and all.list[10] == 10)\n"
              "assert(tostring(all.f64) == 'lp.array(f64, 4)')");
    lp_value_destroy (&back);
    lp_value_destroy (&all);
    //  Empty map arrives as {}, nil key is skipped
    v = lp_value_map ();
    lp_lua_push_value (L, v);
    assert (lua_istable (L, -1));
    lua_pop (L, 1);
    lp_value_set_key (v, lp_value_nil (), lp_value_int (1));
    lp_lua_push_value (L, v);
    lua_pushnil (L);
    assert (lua_next (L, -2) == 0);
    lua_pop (L, 1);
    lp_value_destroy (&v);

    //  lp.array in Lua
    s_run (L,
        "local a = lp.array('f64', 3)\n"
        "assert(#a == 3 and a[1] == 0.0 and a[3] == 0.0)\n"
        "a[1] = 2.5; a[2] = 7\n"
        "assert(a[1] == 2.5 and a[2] == 7.0 and math.type(a[2]) == 'float')\n"
        "assert(a[0] == nil and a[4] == nil)\n"
        "assert(tostring(a) == 'lp.array(f64, 3)')\n"
        "assert(a:dtype() == 'f64')\n"
        "assert(not pcall(function () a[4] = 1 end))\n"
        "assert(not pcall(function () a[0] = 1 end))\n"
        "assert(not pcall(function () a[1] = 'x' end))\n"
        "assert(not pcall(function () return a.x.y end))\n"
        "local b = lp.array('i32', {1, 2, 3})\n"
        "assert(b[3] == 3 and math.type(b[3]) == 'integer')\n"
        "local ok, msg = pcall(function () b[1] = 1.5 end)\n"
        "assert(not ok and msg:find('integer expected'))\n"
        "assert(not pcall(function () b[1] = 2^40 end))\n"
        "b[1] = 2.0; assert(b[1] == 2)\n"
        "local t = b:totable()\n"
        "assert(#t == 3 and t[1] == 2 and t[3] == 3)\n"
        "local sum = 0; for i, x in ipairs(b) do sum = sum + x end\n"
        "assert(sum == 7)\n"
        "local u = lp.array.new('u8', 2)\n"
        "u[1] = 255; assert(u[1] == 255)\n"
        "assert(not pcall(function () u[2] = 256 end))\n"
        "assert(not pcall(function () u[2] = -1 end))\n"
        "assert(not pcall(lp.array, 'f16', 3))\n"
        "assert(not pcall(lp.array, 'f64', -1))\n"
        "assert(not pcall(lp.array, 'i64', {1, 'x'}))\n"
        "local f = lp.array('f32', {0.5, 1.5})\n"
        "assert(f[2] == 1.5)\n"
        "local i = lp.array('i64', {math.maxinteger, math.mininteger})\n"
        "assert(i[1] == math.maxinteger and i[2] == math.mininteger)\n"
        "assert(lp.array('i64', {1, 2}) == lp.array('i64', {1, 2}))\n"
        "local c = lp.array('i32', lp.array('f64', {1.7, -2.7}))\n"
        "assert(c[1] == 1 and c[2] == -2)\n"
        "assert(#lp.array('f64', 0) == 0)\n");

    //  A big typed array crosses cheaply both ways
    v = lp_value_typed (LP_DTYPE_F64, 1000000);
    double *d = (double *) lp_value_typed_data (v);
    for (int k = 0; k < 1000000; k++)
        d [k] = k * 0.5;
    int64_t start = zclock_mono ();
    lp_lua_push_value (L, v);
    back = lp_lua_to_value (L, -1, "big", err, sizeof err);
    assert (back && lp_value_equal (v, back));
    lua_setglobal (L, "big");
    s_run (L, "assert(big[1000000] == 999999 * 0.5)");
    if (verbose)
        printf ("(1e6 f64 both ways %d ms) ", (int) (zclock_mono () - start));
    lp_value_destroy (&back);
    lp_value_destroy (&v);

    //  Long sequences of numbers go typed, flagged, and come back as tables
    char code [200];
    snprintf (code, sizeof code, "local t = {}; for i = 1, %d do t[i] = i * 3 end; return t",
              LP_SEQUENCE_TYPED_MIN + 1);
    v = s_eval (L, code, err, sizeof err);
    assert (v && lp_value_type (v) == LP_TYPED && lp_value_dtype (v) == LP_DTYPE_I64);
    assert (lp_value_typed_is_sequence (v) && lp_value_len (v) == LP_SEQUENCE_TYPED_MIN + 1);
    assert (((int64_t *) lp_value_typed_data (v)) [LP_SEQUENCE_TYPED_MIN] == 3 * (LP_SEQUENCE_TYPED_MIN + 1));
    lp_lua_push_value (L, v);
    lua_setglobal (L, "seq");
    s_run (L, "assert(type(seq) == 'table' and #seq == " LP_STR (LP_SEQUENCE_TYPED_MIN) " + 1)\n"
              "assert(seq[2] == 6 and math.type(seq[2]) == 'integer')");
    lp_value_destroy (&v);
    snprintf (code, sizeof code, "local t = {}; for i = 1, %d do t[i] = i / 2 end; return t",
              LP_SEQUENCE_TYPED_MIN + 1);
    v = s_eval (L, code, err, sizeof err);
    assert (v && lp_value_type (v) == LP_TYPED && lp_value_dtype (v) == LP_DTYPE_F64);
    assert (lp_value_typed_is_sequence (v));
    lp_lua_push_value (L, v);
    lua_setglobal (L, "seq");
    s_run (L, "assert(seq[2] == 1.0 and math.type(seq[2]) == 'float')");
    lp_value_destroy (&v);
    lua_getglobal (L, "seq");
    assert (lp_lua_sequence_dtype (L, -1) == LP_DTYPE_F64);
    lua_pop (L, 1);
    //  ... not at the threshold, not mixed, not with a string in it
    snprintf (code, sizeof code, "local t = {}; for i = 1, %d do t[i] = i end; return t",
              LP_SEQUENCE_TYPED_MIN);
    v = s_eval (L, code, err, sizeof err);
    assert (v && lp_value_type (v) == LP_ARRAY);
    lp_value_destroy (&v);
    snprintf (code, sizeof code, "local t = {}; for i = 1, %d do t[i] = i end; t[7] = 0.5; return t",
              LP_SEQUENCE_TYPED_MIN * 2);
    v = s_eval (L, code, err, sizeof err);
    assert (v && lp_value_type (v) == LP_ARRAY);
    lp_value_destroy (&v);
    snprintf (code, sizeof code, "local t = {}; for i = 1, %d do t[i] = i end; t[7] = 'x'; return t",
              LP_SEQUENCE_TYPED_MIN * 2);
    v = s_eval (L, code, err, sizeof err);
    assert (v && lp_value_type (v) == LP_ARRAY);
    lp_value_destroy (&v);
    //  A C typed array of another dtype flagged as a sequence arrives as a table
    v = lp_value_typed (LP_DTYPE_U8, 3);
    ((uint8_t *) lp_value_typed_data (v)) [2] = 200;
    lp_value_typed_set_sequence (v, true);
    lp_lua_push_value (L, v);
    lua_setglobal (L, "seq");
    s_run (L, "assert(type(seq) == 'table' and seq[3] == 200 and seq[1] == 0)");
    lp_value_destroy (&v);
    s_run (L, "seq = nil");

    //  A large plain table converts too
    v = s_eval (L, "local t = {}; for i = 1, 100000 do t[i] = i end; return t",
                err, sizeof err);
    assert (v && lp_value_len (v) == 100000);
    lp_value_destroy (&v);
    v = s_eval (L, "local t = {}; for i = 1, 100000 do t['k' .. i] = i end; return t",
                err, sizeof err);
    assert (v && lp_value_len (v) == 100000);
    assert (lp_value_as_int (lp_value_get (v, "k777")) == 777);
    lp_value_destroy (&v);

    assert (lua_gettop (L) == 0);
    lua_close (L);

    //  Memory errors while pushing or constructing leak nothing
    v = lp_value_array ();
    for (int k = 0; k < 2000; k++) {
        lp_value_t *item = lp_value_map ();
        lp_value_set (item, "name", lp_value_string ("a string of some length"));
        lp_value_set (item, "data", lp_value_typed (LP_DTYPE_F64, 100));
        lp_value_append (v, item);
    }
    s_alloc_used = 0;
    s_alloc_cap = SIZE_MAX;
    L = lua_newstate (s_capped_alloc, NULL);
    assert (L);
    luaL_openlibs (L);
    lua_newtable (L);
    lp_lua_open_array (L);
    lua_setfield (L, -2, "array");
    lua_setglobal (L, "lp");
    lua_gc (L, LUA_GCCOLLECT);
    s_alloc_cap = s_alloc_used + 256 * 1024;
    lua_pushcfunction (L, s_push_protected);
    lua_pushlightuserdata (L, v);
    assert (lua_pcall (L, 1, 1, 0) == LUA_ERRMEM);
    lua_settop (L, 0);
    assert (luaL_dostring (L, "local t = {}; for i = 1, 1e6 do t[i] = i end;"
                              "return lp.array('f64', t)") != LUA_OK);
    lua_settop (L, 0);
    lua_close (L);
    lp_value_destroy (&v);

    //  Adoption: decoded out-of-band values become Lua objects in place
    s_alloc_used = 0;
    s_alloc_cap = SIZE_MAX;
    L = lua_newstate (s_capped_alloc, NULL);
    assert (L);
    luaL_openlibs (L);
    assert (lp_lua_enable_adoption (L) == 0);
    assert (s_str_head > 0 && s_typed_head > 0);
    size_t big = 3 * LP_PIECE_BYTES / 2 + 7;
    char *text = (char *) malloc (big);
    assert (text);
    for (size_t k = 0; k < big; k++)
        text [k] = (char) ('a' + k % 26);
    v = lp_value_map ();
    lp_value_set (v, "s", lp_value_lstring (text, big));
    text [5] = (char) 0xff;
    lp_value_set (v, "b", lp_value_bytes (text, big));
    lp_value_t *typed = lp_value_typed (LP_DTYPE_F64, 200000);
    for (size_t k = 0; k < 200000; k++)
        ((double *) lp_value_typed_data (typed)) [k] = (double) k / 4;
    lp_value_set (v, "a", typed);
    for (int round = 0; round < 2; round++) {
        zlist_t *pieces = zlist_new ();
        zframe_t *frame = lp_codec_encode (v, pieces, err, sizeof err);
        assert (frame);
        size_t n = zlist_size (pieces);
        zframe_t **array = (zframe_t **) calloc (n, sizeof (zframe_t *));
        assert (array);
        for (size_t k = 0; k < n; k++)
            array [k] = (zframe_t *) zlist_pop (pieces);
        lp_value_t *copy = lp_codec_decode (zframe_data (frame), zframe_size (frame),
                                            array, n, err, sizeof err);
        assert (copy && lp_value_equal (copy, v));
        lua_gc (L, LUA_GCCOLLECT);
        size_t before = s_alloc_used;
        //  Round 1: the cap leaves no room, Lua raises and copy keeps all
        s_alloc_cap = round == 0? before + 1024: SIZE_MAX;
        lua_pushcfunction (L, s_push_take_protected);
        lua_pushlightuserdata (L, copy);
        int rc = lua_pcall (L, 1, 1, 0);
        s_alloc_cap = SIZE_MAX;
        if (round == 0) {
            assert (rc == LUA_ERRMEM);
            assert (lp_value_equal (copy, v));
        }
        else {
            assert (rc == LUA_OK);
            //  The three were adopted (the value holds nil in their place)
            assert (lp_value_type (lp_value_get (copy, "s")) == LP_NIL);
            assert (lp_value_type (lp_value_get (copy, "b")) == LP_NIL);
            assert (lp_value_type (lp_value_get (copy, "a")) == LP_NIL);
            assert (s_alloc_used - before >= 2 * big + 200000 * 8);
            lua_setglobal (L, "t");
            s_run (L, "assert (#t.s == " LP_STR (3 * 1024 * 1024 / 2 + 7) ")");
            s_run (L, "assert (t.s:sub (1, 3) == 'abc' and t.s:byte (6) == 102)");
            s_run (L, "assert (t.b:byte (6) == 255 and t.b:sub (7) == t.s:sub (7))");
            s_run (L, "assert (#t.a == 200000 and t.a[1] == 0 and t.a[200000] == 199999 / 4)");
            s_run (L, "t.a[3] = 9; assert (t.a[3] == 9 and tostring (t.a) == 'lp.array(f64, 200000)')");
            //  Lua frees what it adopted through its allocator
            s_run (L, "t = nil");
            lua_gc (L, LUA_GCCOLLECT);
            assert (s_alloc_used < before + 4096);
        }
        lua_settop (L, 0);
        lp_value_destroy (&copy);
        for (size_t k = 0; k < n; k++)
            zframe_destroy (&array [k]);
        free (array);
        zframe_destroy (&frame);
        zlist_destroy (&pieces);
    }
    lp_value_destroy (&v);
    free (text);

    //  Borrowing: a large string's value points into the Lua string,
    //  released when the value goes (also through lp_codec_encode_refer)
    lua_pushstring (L, "x");
    lua_setglobal (L, "small");
    s_run (L, "big = string.rep ('ab', 100000); bin = string.rep ('\\255', 70000)");
    for (int round = 0; round < 2; round++) {
        if (round == 1)
            lp_lua_set_borrower (L, s_test_borrow, &s_borrowed);
        s_borrowed = 0;
        lua_getglobal (L, "big");
        lua_getglobal (L, "bin");
        lua_getglobal (L, "small");
        lp_value_t *a = lp_lua_to_value (L, -3, "big", err, sizeof err);
        lp_value_t *b = lp_lua_to_value (L, -2, "bin", err, sizeof err);
        lp_value_t *c = lp_lua_to_value (L, -1, "small", err, sizeof err);
        assert (a && b && c);
        assert (lp_value_type (a) == LP_STRING && lp_value_type (b) == LP_BYTES);
        assert (lp_value_len (a) == 200000 && lp_value_len (b) == 70000);
        bool lent = lp_value_as_string (a, NULL) == lua_tostring (L, -3);
        assert (lent == (round == 1));
        assert ((lp_value_as_string (b, NULL) == lua_tostring (L, -2)) == (round == 1));
        assert (lp_value_as_string (c, NULL) != lua_tostring (L, -1));
        assert (s_borrowed == (round == 1? 2: 0));
        lp_value_destroy (&a);
        assert (s_borrowed == (round == 1? 1: 0));
        //  Sent by reference: released when the last piece goes
        zlist_t *pieces = zlist_new ();
        zframe_t *frame = lp_codec_encode_refer (b, pieces, err, sizeof err);
        assert (frame && zlist_size (pieces) == 1);
        assert (lp_value_type (b) == LP_NIL);
        lp_value_destroy (&b);
        assert (s_borrowed == (round == 1? 1: 0));
        lp_piece_t *piece = (lp_piece_t *) zlist_pop (pieces);
        if (round == 1)
            assert (piece->data == (const void *) lua_tostring (L, -2));
        lp_piece_destroy (&piece);
        assert (s_borrowed == 0);
        zframe_destroy (&frame);
        zlist_destroy (&pieces);
        lp_value_destroy (&c);
        lua_settop (L, 0);
    }
    lua_close (L);
    //  @end
    printf ("OK\n");
}
