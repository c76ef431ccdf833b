/*  =========================================================================
    lp_value - value trees: nil, boolean, integer, number, string, bytes,
    array, map and typed numeric array (public API in luaparallel.h)

    A value is one tagged node. Strings and bytes own a NUL-terminated copy.
    Arrays and maps are growing vectors (append is amortised O(1)); a map
    keeps its pairs in insertion order and, once it holds more than
    LP_MAP_INDEX_MIN keys, an open-addressing index (hash of key type and
    content -> pair position) so lookups stay O(1) for big maps. Keys are
    values, compared by type and content (integer 1 and number 1.0 are
    different keys). Typed arrays hold one contiguous buffer plus a free
    function, so a decoded buffer or a caller's array can be taken without
    copying; strings and bytes can take a malloc'd buffer too
    (lp_value_str_take), so a decoder assembles a large string once. A
    typed array may carry the "sequence" flag: it stands for a plain Lua
    sequence of numbers (a table, not an lp.array) that travels in the
    typed form (docs/protocol.md, "Values").

    lp_value_print writes Lua-literal text; long arrays, maps and typed
    arrays are cut after LP_PRINT_MAX_ITEMS elements with "...", so printing
    a huge value is cheap.
    =========================================================================
*/

#include "lp_value.h"
#include "lp_util.h"
//  Contracts and self-tests assert in release builds too, as in czmq
#undef NDEBUG
#include <assert.h>
#include <math.h>
#include <inttypes.h>

struct _lp_value_t {
    lp_type_t type;                     //  what the union holds
    union {
        bool b;                         //  LP_BOOL
        int64_t i;                      //  LP_INT
        double d;                       //  LP_NUMBER
        struct {
            char *data;                 //  NUL-terminated copy
            size_t len;                 //  byte length
            size_t head;                //  malloc'd block starts head
                                        //  bytes before data
            void (*release) (void *);   //  borrowed: called instead of
            void *release_arg;          //  freeing data, with this
        } str;                          //  LP_STRING, LP_BYTES
        struct {
            lp_value_t **items;         //  items[0..len-1]
            size_t len;                 //  items in use
            size_t cap;                 //  items allocated
        } arr;                          //  LP_ARRAY
        struct {
            lp_value_t **keys;          //  keys[0..len-1], insertion order
            lp_value_t **vals;          //  vals[i] belongs to keys[i]
            size_t len;                 //  pairs in use
            size_t cap;                 //  pairs allocated
            size_t *index;              //  open addressing: pos+1, 0 = empty
            size_t index_cap;           //  slots, power of two, or 0
        } map;                          //  LP_MAP
        struct {
            lp_dtype_t dtype;           //  element type
            void *data;                 //  count * size bytes
            size_t count;               //  elements
            void (*free_fn) (void *);   //  frees data, may be NULL
            bool sequence;              //  stands for a plain Lua sequence
        } typed;                        //  LP_TYPED
    } u;
};

//  ---------------------------------------------------------------------
//  Constructors

static lp_value_t *
s_new (lp_type_t type)
{
    lp_value_t *self = (lp_value_t *) calloc (1, sizeof (lp_value_t));
    if (self)
        self->type = type;
    return self;
}

lp_value_t *
lp_value_nil (void)
{
    return s_new (LP_NIL);
}

lp_value_t *
lp_value_bool (bool b)
{
    lp_value_t *self = s_new (LP_BOOL);
    if (self)
        self->u.b = b;
    return self;
}

lp_value_t *
lp_value_int (int64_t i)
{
    lp_value_t *self = s_new (LP_INT);
    if (self)
        self->u.i = i;
    return self;
}

lp_value_t *
lp_value_number (double d)
{
    lp_value_t *self = s_new (LP_NUMBER);
    if (self)
        self->u.d = d;
    return self;
}

static lp_value_t *
s_new_str (lp_type_t type, const void *data, size_t len)
{
    if (len == SIZE_MAX)
        return NULL;
    lp_value_t *self = s_new (type);
    if (!self)
        return NULL;
    self->u.str.data = (char *) malloc (len + 1);
    if (!self->u.str.data) {
        free (self);
        return NULL;
    }
    if (len)
        memcpy (self->u.str.data, data, len);
    self->u.str.data [len] = 0;
    self->u.str.len = len;
    return self;
}

lp_value_t *
lp_value_string (const char *s)
{
    assert (s);
    return s_new_str (LP_STRING, s, strlen (s));
}

lp_value_t *
lp_value_lstring (const char *s, size_t len)
{
    assert (s || len == 0);
    return s_new_str (LP_STRING, s, len);
}

lp_value_t *
lp_value_bytes (const void *data, size_t len)
{
    assert (data || len == 0);
    return s_new_str (LP_BYTES, data, len);
}

lp_value_t *
lp_value_str_take (lp_type_t type, char *data, size_t len)
{
    assert (type == LP_STRING || type == LP_BYTES);
    assert (data);
    lp_value_t *self = s_new (type);
    if (!self) {
        free (data);
        return NULL;
    }
    data [len] = 0;
    self->u.str.data = data;
    self->u.str.len = len;
    return self;
}

lp_value_t *
lp_value_str_take_head (lp_type_t type, char *block, size_t head, size_t len)
{
    assert (type == LP_STRING || type == LP_BYTES);
    assert (block);
    lp_value_t *self = s_new (type);
    if (!self) {
        free (block);
        return NULL;
    }
    self->u.str.data = block + head;
    self->u.str.data [len] = 0;
    self->u.str.len = len;
    self->u.str.head = head;
    return self;
}

lp_value_t *
lp_value_str_borrow (lp_type_t type, const char *data, size_t len,
                     void (*release) (void *), void *arg)
{
    assert (type == LP_STRING || type == LP_BYTES);
    assert (data && data [len] == 0);
    assert (release);
    lp_value_t *self = s_new (type);
    if (!self)
        return NULL;
    self->u.str.data = LP_UNCONST (char *, data);
    self->u.str.len = len;
    self->u.str.release = release;
    self->u.str.release_arg = arg;
    return self;
}

bool
lp_value_str_borrowed (const lp_value_t *self)
{
    assert (self);
    return (self->type == LP_STRING || self->type == LP_BYTES) && self->u.str.release;
}

bool
lp_value_str_has_head (const lp_value_t *self, size_t head)
{
    assert (self);
    return (self->type == LP_STRING || self->type == LP_BYTES)
        && !self->u.str.release && self->u.str.head == head;
}

void *
lp_value_detach (lp_value_t *self, void (**free_fn_p) (void *))
{
    assert (self);
    void *block = NULL;
    void (*free_fn) (void *) = NULL;
    if ((self->type == LP_STRING || self->type == LP_BYTES) && self->u.str.release) {
        block = self->u.str.release_arg;
        free_fn = self->u.str.release;
    }
    else
    if (self->type == LP_STRING || self->type == LP_BYTES) {
        block = self->u.str.data - self->u.str.head;
        free_fn = free;
    }
    else
    if (self->type == LP_TYPED && self->u.typed.free_fn) {
        block = self->u.typed.data;
        free_fn = self->u.typed.free_fn;
    }
    else
        return NULL;
    if (free_fn_p)
        *free_fn_p = free_fn;
    memset (&self->u, 0, sizeof self->u);
    self->type = LP_NIL;
    return block;
}

lp_value_t *
lp_value_array (void)
{
    return s_new (LP_ARRAY);
}

lp_value_t *
lp_value_map (void)
{
    return s_new (LP_MAP);
}

size_t
lp_dtype_size (lp_dtype_t dtype)
{
    switch (dtype) {
        case LP_DTYPE_F64: return 8;
        case LP_DTYPE_F32: return 4;
        case LP_DTYPE_I64: return 8;
        case LP_DTYPE_I32: return 4;
        case LP_DTYPE_U8:  return 1;
    }
    return 0;
}

const char *
lp_dtype_name (lp_dtype_t dtype)
{
    switch (dtype) {
        case LP_DTYPE_F64: return "f64";
        case LP_DTYPE_F32: return "f32";
        case LP_DTYPE_I64: return "i64";
        case LP_DTYPE_I32: return "i32";
        case LP_DTYPE_U8:  return "u8";
    }
    return "?";
}

lp_value_t *
lp_value_typed (lp_dtype_t dtype, size_t count)
{
    size_t size = lp_dtype_size (dtype);
    assert (size);
    if (count > SIZE_MAX / size)
        return NULL;
    //  Never a zero-sized allocation, so data is never NULL
    void *data = calloc (count ? count : 1, size);
    if (!data)
        return NULL;
    lp_value_t *self = lp_value_typed_take (dtype, data, count, free);
    return self;
}

lp_value_t *
lp_value_typed_take (lp_dtype_t dtype, void *data, size_t count,
                     void (*free_fn) (void *data))
{
    assert (lp_dtype_size (dtype));
    assert (data || count == 0);
    lp_value_t *self = s_new (LP_TYPED);
    if (!self) {
        if (free_fn && data)
            free_fn (data);
        return NULL;
    }
    self->u.typed.dtype = dtype;
    self->u.typed.data = data;
    self->u.typed.count = count;
    self->u.typed.free_fn = free_fn;
    return self;
}

lp_value_t *
lp_value_int_range (int64_t first, int64_t last)
{
    lp_value_t *self = lp_value_array ();
    if (!self)
        return NULL;
    if (last >= first) {
        uint64_t span = (uint64_t) last - (uint64_t) first;
        if (span >= SIZE_MAX / sizeof (lp_value_t *) - 1) {
            lp_value_destroy (&self);
            return NULL;
        }
        size_t n = (size_t) span + 1;
        self->u.arr.items = (lp_value_t **) malloc (n * sizeof (lp_value_t *));
        if (!self->u.arr.items) {
            lp_value_destroy (&self);
            return NULL;
        }
        self->u.arr.cap = n;
        for (size_t k = 0; k < n; k++) {
            lp_value_t *item = lp_value_int ((int64_t) ((uint64_t) first + k));
            if (!item) {
                lp_value_destroy (&self);
                return NULL;
            }
            self->u.arr.items [self->u.arr.len++] = item;
        }
    }
    return self;
}

//  ---------------------------------------------------------------------
//  Destructor (iterative over arrays, recursive only through nesting)

void
lp_value_destroy (lp_value_t **self_p)
{
    assert (self_p);
    lp_value_t *self = *self_p;
    if (!self)
        return;
    switch (self->type) {
        case LP_STRING:
        case LP_BYTES:
            if (self->u.str.release)
                self->u.str.release (self->u.str.release_arg);
            else
                free (self->u.str.data - self->u.str.head);
            break;
        case LP_ARRAY:
            for (size_t k = 0; k < self->u.arr.len; k++)
                lp_value_destroy (&self->u.arr.items [k]);
            free (self->u.arr.items);
            break;
        case LP_MAP:
            for (size_t k = 0; k < self->u.map.len; k++) {
                lp_value_destroy (&self->u.map.keys [k]);
                lp_value_destroy (&self->u.map.vals [k]);
            }
            free (self->u.map.keys);
            free (self->u.map.vals);
            free (self->u.map.index);
            break;
        case LP_TYPED:
            if (self->u.typed.free_fn && self->u.typed.data)
                self->u.typed.free_fn (self->u.typed.data);
            break;
        default:
            break;
    }
    free (self);
    *self_p = NULL;
}

//  ---------------------------------------------------------------------
//  Accessors

lp_type_t
lp_value_type (const lp_value_t *self)
{
    assert (self);
    return self->type;
}

const char *
lp_type_name (lp_type_t type)
{
    switch (type) {
        case LP_NIL:    return "nil";
        case LP_BOOL:   return "boolean";
        case LP_INT:    return "integer";
        case LP_NUMBER: return "number";
        case LP_STRING: return "string";
        case LP_BYTES:  return "bytes";
        case LP_ARRAY:  return "array";
        case LP_MAP:    return "map";
        case LP_TYPED:  return "typed array";
    }
    return "unknown";
}

bool
lp_value_as_bool (const lp_value_t *self)
{
    assert (self);
    if (self->type == LP_NIL)
        return false;
    if (self->type == LP_BOOL)
        return self->u.b;
    return true;
}

int64_t
lp_value_as_int (const lp_value_t *self)
{
    assert (self);
    if (self->type == LP_INT)
        return self->u.i;
    if (self->type == LP_NUMBER) {
        double d = self->u.d;
        if (isnan (d))
            return 0;
        if (d >= 9223372036854775807.0)
            return INT64_MAX;
        if (d <= -9223372036854775808.0)
            return INT64_MIN;
        return (int64_t) d;
    }
    return 0;
}

double
lp_value_as_number (const lp_value_t *self)
{
    assert (self);
    if (self->type == LP_NUMBER)
        return self->u.d;
    if (self->type == LP_INT)
        return (double) self->u.i;
    return 0;
}

const char *
lp_value_as_string (const lp_value_t *self, size_t *len_p)
{
    assert (self);
    if (self->type == LP_STRING || self->type == LP_BYTES) {
        if (len_p)
            *len_p = self->u.str.len;
        return self->u.str.data;
    }
    if (len_p)
        *len_p = 0;
    return NULL;
}

size_t
lp_value_len (const lp_value_t *self)
{
    assert (self);
    switch (self->type) {
        case LP_STRING:
        case LP_BYTES: return self->u.str.len;
        case LP_ARRAY: return self->u.arr.len;
        case LP_MAP:   return self->u.map.len;
        case LP_TYPED: return self->u.typed.count;
        default:       return 0;
    }
}

//  ---------------------------------------------------------------------
//  Arrays

int
lp_value_append (lp_value_t *self, lp_value_t *item)
{
    assert (self);
    if (!item)
        return -1;
    if (self->type != LP_ARRAY) {
        lp_value_destroy (&item);
        return -1;
    }
    if (self->u.arr.len == self->u.arr.cap) {
        size_t cap = self->u.arr.cap ? self->u.arr.cap * 2 : 4;
        if (cap > SIZE_MAX / sizeof (lp_value_t *)) {
            lp_value_destroy (&item);
            return -1;
        }
        lp_value_t **items = (lp_value_t **)
            realloc (self->u.arr.items, cap * sizeof (lp_value_t *));
        if (!items) {
            lp_value_destroy (&item);
            return -1;
        }
        self->u.arr.items = items;
        self->u.arr.cap = cap;
    }
    self->u.arr.items [self->u.arr.len++] = item;
    return 0;
}

const lp_value_t *
lp_value_at (const lp_value_t *self, size_t index)
{
    assert (self);
    if (self->type != LP_ARRAY || index >= self->u.arr.len)
        return NULL;
    return self->u.arr.items [index];
}

//  ---------------------------------------------------------------------
//  Maps: hashing and equality of keys

static uint64_t
s_hash_bytes (uint64_t h, const void *data, size_t len)
{
    //  FNV-1a
    const unsigned char *p = (const unsigned char *) data;
    for (size_t k = 0; k < len; k++) {
        h ^= p [k];
        h *= 1099511628211ULL;
    }
    return h;
}

static uint64_t
s_hash_key (const lp_value_t *key)
{
    uint64_t h = 14695981039346656037ULL;
    unsigned char t = (unsigned char) key->type;
    h = s_hash_bytes (h, &t, 1);
    switch (key->type) {
        case LP_BOOL: {
            unsigned char b = key->u.b;
            h = s_hash_bytes (h, &b, 1);
            break;
        }
        case LP_INT:
            h = s_hash_bytes (h, &key->u.i, sizeof (int64_t));
            break;
        case LP_NUMBER: {
            double d = key->u.d == 0? 0.0: key->u.d;     //  -0.0 == 0.0
            h = s_hash_bytes (h, &d, sizeof (double));
            break;
        }
        case LP_STRING:
        case LP_BYTES:
            h = s_hash_bytes (h, key->u.str.data, key->u.str.len);
            break;
        default: {
            size_t len = lp_value_len (key);
            h = s_hash_bytes (h, &len, sizeof (len));
            break;
        }
    }
    //  Final mix so low bits depend on every byte
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdULL;
    h ^= h >> 33;
    return h;
}

static bool
s_key_is_string (const lp_value_t *key, const char *s, size_t len)
{
    return key->type == LP_STRING && key->u.str.len == len
        && memcmp (key->u.str.data, s, len) == 0;
}

//  Rebuilds the index with index_cap slots (power of two)
static int
s_map_reindex (lp_value_t *self, size_t index_cap)
{
    size_t *index = (size_t *) calloc (index_cap, sizeof (size_t));
    if (!index)
        return -1;
    for (size_t k = 0; k < self->u.map.len; k++) {
        size_t slot = (size_t) s_hash_key (self->u.map.keys [k]) & (index_cap - 1);
        while (index [slot])
            slot = (slot + 1) & (index_cap - 1);
        index [slot] = k + 1;
    }
    free (self->u.map.index);
    self->u.map.index = index;
    self->u.map.index_cap = index_cap;
    return 0;
}

//  Position of key in the map, or -1
static ssize_t
s_map_find (const lp_value_t *self, const lp_value_t *key)
{
    if (self->u.map.index) {
        size_t mask = self->u.map.index_cap - 1;
        size_t slot = (size_t) s_hash_key (key) & mask;
        while (self->u.map.index [slot]) {
            size_t pos = self->u.map.index [slot] - 1;
            if (lp_value_equal (self->u.map.keys [pos], key))
                return (ssize_t) pos;
            slot = (slot + 1) & mask;
        }
        return -1;
    }
    for (size_t k = 0; k < self->u.map.len; k++)
        if (lp_value_equal (self->u.map.keys [k], key))
            return (ssize_t) k;
    return -1;
}

int
lp_value_set_key (lp_value_t *self, lp_value_t *key, lp_value_t *item)
{
    assert (self);
    if (!key || !item || self->type != LP_MAP) {
        lp_value_destroy (&key);
        lp_value_destroy (&item);
        return -1;
    }
    ssize_t pos = s_map_find (self, key);
    if (pos >= 0) {
        lp_value_destroy (&self->u.map.vals [pos]);
        self->u.map.vals [pos] = item;
        lp_value_destroy (&key);
        return 0;
    }
    if (self->u.map.len == self->u.map.cap) {
        size_t cap = self->u.map.cap ? self->u.map.cap * 2 : 4;
        if (cap > SIZE_MAX / sizeof (lp_value_t *))
            goto fail;
        lp_value_t **keys = (lp_value_t **)
            realloc (self->u.map.keys, cap * sizeof (lp_value_t *));
        if (!keys)
            goto fail;
        self->u.map.keys = keys;
        lp_value_t **vals = (lp_value_t **)
            realloc (self->u.map.vals, cap * sizeof (lp_value_t *));
        if (!vals)
            goto fail;
        self->u.map.vals = vals;
        self->u.map.cap = cap;
    }
    size_t n = self->u.map.len + 1;
    if (n > LP_MAP_INDEX_MIN && n * 2 > self->u.map.index_cap) {
        //  Keep the index at most half full
        size_t index_cap = self->u.map.index_cap ? self->u.map.index_cap * 2 : 64;
        while (n * 2 > index_cap)
            index_cap *= 2;
        if (s_map_reindex (self, index_cap))
            goto fail;
    }
    self->u.map.keys [self->u.map.len] = key;
    self->u.map.vals [self->u.map.len] = item;
    self->u.map.len++;
    if (self->u.map.index) {
        size_t mask = self->u.map.index_cap - 1;
        size_t slot = (size_t) s_hash_key (key) & mask;
        while (self->u.map.index [slot])
            slot = (slot + 1) & mask;
        self->u.map.index [slot] = self->u.map.len;
    }
    return 0;
fail:
    lp_value_destroy (&key);
    lp_value_destroy (&item);
    return -1;
}

int
lp_value_set (lp_value_t *self, const char *key, lp_value_t *item)
{
    assert (self);
    assert (key);
    lp_value_t *k = lp_value_string (key);
    if (!k) {
        lp_value_destroy (&item);
        return -1;
    }
    return lp_value_set_key (self, k, item);
}

const lp_value_t *
lp_value_get (const lp_value_t *self, const char *key)
{
    assert (self);
    assert (key);
    if (self->type != LP_MAP)
        return NULL;
    size_t len = strlen (key);
    if (self->u.map.index) {
        lp_value_t probe;
        probe.type = LP_STRING;
        probe.u.str.data = LP_UNCONST (char *, key);
        probe.u.str.len = len;
        ssize_t pos = s_map_find (self, &probe);
        return pos >= 0? self->u.map.vals [pos]: NULL;
    }
    for (size_t k = 0; k < self->u.map.len; k++)
        if (s_key_is_string (self->u.map.keys [k], key, len))
            return self->u.map.vals [k];
    return NULL;
}

lp_value_t *
lp_value_take (lp_value_t *self, const char *key)
{
    assert (self);
    assert (key);
    const lp_value_t *found = lp_value_get (self, key);
    if (!found)
        return NULL;
    lp_value_t *nil = lp_value_nil ();
    if (!nil)
        return NULL;
    for (size_t k = 0; k < self->u.map.len; k++)
        if (self->u.map.vals [k] == found) {
            self->u.map.vals [k] = nil;
            return LP_UNCONST (lp_value_t *, found);
        }
    lp_value_destroy (&nil);
    return NULL;
}

lp_value_t *
lp_value_take_at (lp_value_t *self, size_t index)
{
    assert (self);
    if (self->type != LP_ARRAY || index >= self->u.arr.len)
        return NULL;
    lp_value_t *nil = lp_value_nil ();
    if (!nil)
        return NULL;
    lp_value_t *item = self->u.arr.items [index];
    self->u.arr.items [index] = nil;
    return item;
}

void *
lp_value_typed_release (lp_value_t *self, void (**free_fn_p) (void *data))
{
    if (!self || !free_fn_p || self->type != LP_TYPED || !self->u.typed.free_fn)
        return NULL;
    //  The buffer as it is (a decoded frame's block, or the caller's):
    //  no copy; the value keeps nothing to free.
    return lp_value_detach (self, free_fn_p);
}

const lp_value_t *
lp_value_key_at (const lp_value_t *self, size_t index)
{
    assert (self);
    if (self->type != LP_MAP || index >= self->u.map.len)
        return NULL;
    return self->u.map.keys [index];
}

const lp_value_t *
lp_value_value_at (const lp_value_t *self, size_t index)
{
    assert (self);
    if (self->type != LP_MAP || index >= self->u.map.len)
        return NULL;
    return self->u.map.vals [index];
}

//  ---------------------------------------------------------------------
//  Typed arrays

lp_dtype_t
lp_value_dtype (const lp_value_t *self)
{
    assert (self);
    return self->type == LP_TYPED? self->u.typed.dtype: (lp_dtype_t) 0;
}

bool
lp_value_typed_is_sequence (const lp_value_t *self)
{
    assert (self);
    return self->type == LP_TYPED && self->u.typed.sequence;
}

bool
lp_value_deeper_than (const lp_value_t *self, int levels)
{
    assert (self);
    if (self->type == LP_TYPED)
        return self->u.typed.sequence && levels < 1;
    if (self->type != LP_ARRAY && self->type != LP_MAP)
        return false;
    if (levels < 1)
        return true;
    if (self->type == LP_ARRAY) {
        for (size_t k = 0; k < self->u.arr.len; k++)
            if (lp_value_deeper_than (self->u.arr.items [k], levels - 1))
                return true;
        return false;
    }
    for (size_t k = 0; k < self->u.map.len; k++)
        if (lp_value_deeper_than (self->u.map.keys [k], levels - 1)
        ||  lp_value_deeper_than (self->u.map.vals [k], levels - 1))
            return true;
    return false;
}

int
lp_value_typed_set_sequence (lp_value_t *self, bool sequence)
{
    assert (self);
    if (self->type != LP_TYPED)
        return -1;
    self->u.typed.sequence = sequence;
    return 0;
}

bool
lp_value_typed_freed_by (const lp_value_t *self, void (*free_fn) (void *))
{
    assert (self);
    return self->type == LP_TYPED && self->u.typed.free_fn == free_fn;
}

bool
lp_value_typed_owned (const lp_value_t *self)
{
    assert (self);
    return self->type == LP_TYPED && self->u.typed.free_fn == free;
}

void *
lp_value_typed_data (const lp_value_t *self)
{
    assert (self);
    return self->type == LP_TYPED? self->u.typed.data: NULL;
}

//  ---------------------------------------------------------------------
//  Deep copy

lp_value_t *
lp_value_dup (const lp_value_t *self)
{
    assert (self);
    switch (self->type) {
        case LP_NIL:    return lp_value_nil ();
        case LP_BOOL:   return lp_value_bool (self->u.b);
        case LP_INT:    return lp_value_int (self->u.i);
        case LP_NUMBER: return lp_value_number (self->u.d);
        case LP_STRING:
        case LP_BYTES:
            return s_new_str (self->type, self->u.str.data, self->u.str.len);
        case LP_ARRAY: {
            lp_value_t *copy = lp_value_array ();
            if (!copy)
                return NULL;
            if (self->u.arr.len) {
                copy->u.arr.items = (lp_value_t **)
                    malloc (self->u.arr.len * sizeof (lp_value_t *));
                if (!copy->u.arr.items) {
                    lp_value_destroy (&copy);
                    return NULL;
                }
                copy->u.arr.cap = self->u.arr.len;
            }
            for (size_t k = 0; k < self->u.arr.len; k++) {
                lp_value_t *item = lp_value_dup (self->u.arr.items [k]);
                if (!item) {
                    lp_value_destroy (&copy);
                    return NULL;
                }
                copy->u.arr.items [copy->u.arr.len++] = item;
            }
            return copy;
        }
        case LP_MAP: {
            lp_value_t *copy = lp_value_map ();
            if (!copy)
                return NULL;
            for (size_t k = 0; k < self->u.map.len; k++) {
                lp_value_t *key = lp_value_dup (self->u.map.keys [k]);
                lp_value_t *val = key? lp_value_dup (self->u.map.vals [k]): NULL;
                if (!val || lp_value_set_key (copy, key, val)) {
                    if (!val)
                        lp_value_destroy (&key);
                    lp_value_destroy (&copy);
                    return NULL;
                }
            }
            return copy;
        }
        case LP_TYPED: {
            lp_value_t *copy = lp_value_typed (self->u.typed.dtype, self->u.typed.count);
            if (copy && self->u.typed.count)
                memcpy (copy->u.typed.data, self->u.typed.data,
                        self->u.typed.count * lp_dtype_size (self->u.typed.dtype));
            if (copy)
                copy->u.typed.sequence = self->u.typed.sequence;
            return copy;
        }
    }
    return NULL;
}

//  ---------------------------------------------------------------------
//  Equality: by type and content; maps regardless of order

bool
lp_value_equal (const lp_value_t *a, const lp_value_t *b)
{
    assert (a);
    assert (b);
    if (a == b)
        return true;
    if (a->type != b->type)
        return false;
    switch (a->type) {
        case LP_NIL:    return true;
        case LP_BOOL:   return a->u.b == b->u.b;
        case LP_INT:    return a->u.i == b->u.i;
        case LP_NUMBER:
            return a->u.d == b->u.d || (isnan (a->u.d) && isnan (b->u.d));
        case LP_STRING:
        case LP_BYTES:
            return a->u.str.len == b->u.str.len
                && memcmp (a->u.str.data, b->u.str.data, a->u.str.len) == 0;
        case LP_ARRAY:
            if (a->u.arr.len != b->u.arr.len)
                return false;
            for (size_t k = 0; k < a->u.arr.len; k++)
                if (!lp_value_equal (a->u.arr.items [k], b->u.arr.items [k]))
                    return false;
            return true;
        case LP_MAP:
            if (a->u.map.len != b->u.map.len)
                return false;
            for (size_t k = 0; k < a->u.map.len; k++) {
                ssize_t pos = s_map_find (b, a->u.map.keys [k]);
                if (pos < 0 || !lp_value_equal (a->u.map.vals [k], b->u.map.vals [pos]))
                    return false;
            }
            return true;
        case LP_TYPED:
            return a->u.typed.dtype == b->u.typed.dtype
                && a->u.typed.count == b->u.typed.count
                && a->u.typed.sequence == b->u.typed.sequence
                && (a->u.typed.count == 0
                    || memcmp (a->u.typed.data, b->u.typed.data,
                               a->u.typed.count * lp_dtype_size (a->u.typed.dtype)) == 0);
    }
    return false;
}

//  ---------------------------------------------------------------------
//  Printing as Lua literal text

typedef struct {
    char *data;                         //  text so far, NUL-terminated
    size_t len;                         //  chars used
    size_t cap;                         //  chars allocated
    bool failed;                        //  out of memory seen
} s_buf_t;

static void
s_buf_add (s_buf_t *buf, const char *s, size_t len)
{
    if (buf->failed)
        return;
    if (buf->len + len + 1 > buf->cap) {
        size_t cap = buf->cap? buf->cap: 64;
        while (buf->len + len + 1 > cap)
            cap *= 2;
        char *data = (char *) realloc (buf->data, cap);
        if (!data) {
            buf->failed = true;
            return;
        }
        buf->data = data;
        buf->cap = cap;
    }
    memcpy (buf->data + buf->len, s, len);
    buf->len += len;
    buf->data [buf->len] = 0;
}

static void
s_buf_str (s_buf_t *buf, const char *s)
{
    s_buf_add (buf, s, strlen (s));
}

static void
s_buf_number (s_buf_t *buf, double d)
{
    char tmp [40];
    if (isnan (d))
        snprintf (tmp, sizeof tmp, "0/0");
    else
    if (isinf (d))
        snprintf (tmp, sizeof tmp, d > 0? "math.huge": "-math.huge");
    else {
        //  Shortest text that reads back as the same double
        for (int prec = 15; prec <= 17; prec++) {
            snprintf (tmp, sizeof tmp, "%.*g", prec, d);
            if (strtod (tmp, NULL) == d)
                break;
        }
        if (strspn (tmp, "-0123456789") == strlen (tmp))
            strcat (tmp, ".0");
    }
    s_buf_str (buf, tmp);
}

static void
s_buf_quoted (s_buf_t *buf, const char *s, size_t len)
{
    s_buf_add (buf, "\"", 1);
    size_t start = 0;
    for (size_t k = 0; k < len; k++) {
        unsigned char c = (unsigned char) s [k];
        const char *esc = NULL;
        char tmp [8];
        if (c == '"')       esc = "\\\"";
        else if (c == '\\') esc = "\\\\";
        else if (c == '\n') esc = "\\n";
        else if (c == '\r') esc = "\\r";
        else if (c == '\t') esc = "\\t";
        else if (c < 32 || c == 127) {
            snprintf (tmp, sizeof tmp, "\\%03u", c);
            esc = tmp;
        }
        if (esc) {
            s_buf_add (buf, s + start, k - start);
            s_buf_str (buf, esc);
            start = k + 1;
        }
    }
    s_buf_add (buf, s + start, len - start);
    s_buf_add (buf, "\"", 1);
}

static bool
s_is_identifier (const lp_value_t *key)
{
    return key->type == LP_STRING
        && lp_util_lua_name (key->u.str.data, key->u.str.len);
}

static void
s_print (s_buf_t *buf, const lp_value_t *self)
{
    char tmp [48];
    switch (self->type) {
        case LP_NIL:
            s_buf_str (buf, "nil");
            break;
        case LP_BOOL:
            s_buf_str (buf, self->u.b? "true": "false");
            break;
        case LP_INT:
            snprintf (tmp, sizeof tmp, "%" PRId64, self->u.i);
            s_buf_str (buf, tmp);
            break;
        case LP_NUMBER:
            s_buf_number (buf, self->u.d);
            break;
        case LP_STRING:
        case LP_BYTES:
            s_buf_quoted (buf, self->u.str.data, self->u.str.len);
            break;
        case LP_ARRAY:
            s_buf_str (buf, "{");
            for (size_t k = 0; k < self->u.arr.len; k++) {
                if (k)
                    s_buf_str (buf, ", ");
                if (k == LP_PRINT_MAX_ITEMS) {
                    s_buf_str (buf, "...");
                    break;
                }
                s_print (buf, self->u.arr.items [k]);
            }
            s_buf_str (buf, "}");
            break;
        case LP_MAP: {
            s_buf_str (buf, "{");
            int64_t next_pos = 1;       //  1, 2, ... print positionally
            for (size_t k = 0; k < self->u.map.len; k++) {
                if (k)
                    s_buf_str (buf, ", ");
                if (k == LP_PRINT_MAX_ITEMS) {
                    s_buf_str (buf, "...");
                    break;
                }
                const lp_value_t *key = self->u.map.keys [k];
                if (next_pos && key->type == LP_INT && key->u.i == next_pos)
                    next_pos++;
                else {
                    next_pos = 0;
                    if (s_is_identifier (key))
                        s_buf_str (buf, key->u.str.data);
                    else {
                        s_buf_str (buf, "[");
                        s_print (buf, key);
                        s_buf_str (buf, "]");
                    }
                    s_buf_str (buf, " = ");
                }
                s_print (buf, self->u.map.vals [k]);
            }
            s_buf_str (buf, "}");
            break;
        }
        case LP_TYPED: {
            lp_dtype_t dtype = self->u.typed.dtype;
            //  A sequence prints as the table it stands for
            if (self->u.typed.sequence)
                s_buf_str (buf, "{");
            else {
                snprintf (tmp, sizeof tmp, "lp.array(%s, %zu){",
                          lp_dtype_name (dtype), self->u.typed.count);
                s_buf_str (buf, tmp);
            }
            for (size_t k = 0; k < self->u.typed.count; k++) {
                if (k)
                    s_buf_str (buf, ", ");
                if (k == LP_PRINT_MAX_ITEMS) {
                    s_buf_str (buf, "...");
                    break;
                }
                const char *data = (const char *) self->u.typed.data;
                if (dtype == LP_DTYPE_F64) {
                    double d;
                    memcpy (&d, data + k * 8, 8);
                    s_buf_number (buf, d);
                }
                else
                if (dtype == LP_DTYPE_F32) {
                    float f;
                    memcpy (&f, data + k * 4, 4);
                    s_buf_number (buf, (double) f);
                }
                else {
                    int64_t i = 0;
                    if (dtype == LP_DTYPE_I64)
                        memcpy (&i, data + k * 8, 8);
                    else
                    if (dtype == LP_DTYPE_I32) {
                        int32_t i32;
                        memcpy (&i32, data + k * 4, 4);
                        i = i32;
                    }
                    else
                        i = ((const uint8_t *) data) [k];
                    snprintf (tmp, sizeof tmp, "%" PRId64, i);
                    s_buf_str (buf, tmp);
                }
            }
            s_buf_str (buf, "}");
            break;
        }
    }
}

char *
lp_value_print (const lp_value_t *self)
{
    assert (self);
    s_buf_t buf = { NULL, 0, 0, false };
    s_print (&buf, self);
    if (buf.failed) {
        free (buf.data);
        return NULL;
    }
    return buf.data;
}

//  ---------------------------------------------------------------------
//  Self-test

static int s_freed;
static void
s_free_probe (void *data)
{
    s_freed++;
    free (data);
}

static void
s_check_print (const lp_value_t *v, const char *expected)
{
    char *text = lp_value_print (v);
    assert (text);
    if (strcmp (text, expected) != 0) {
        fprintf (stderr, "lp_value_print: got %s, expected %s\n", text, expected);
        assert (false);
    }
    free (text);
}

void
lp_value_test (bool verbose)
{
    printf (" * value: ");

    //  Nesting levels (lp_value_deeper_than): a scalar none, {} one,
    //  {{1}} two; a map's keys count; a sequence-flagged typed array is
    //  a table (one level), a plain one none.
    {
        lp_value_t *scalar = lp_value_int (1);
        assert (!lp_value_deeper_than (scalar, 0));
        lp_value_t *nest = lp_value_array ();
        assert (lp_value_deeper_than (nest, 0) && !lp_value_deeper_than (nest, 1));
        for (int level = 2; level <= LP_VALUE_MAX_DEPTH + 1; level++) {
            lp_value_t *outer = lp_value_array ();
            assert (outer && lp_value_append (outer, nest) == 0);
            nest = outer;
            assert (lp_value_deeper_than (nest, level - 1));
            assert (!lp_value_deeper_than (nest, level));
        }
        lp_value_destroy (&nest);
        lp_value_t *map = lp_value_map ();
        lp_value_t *inner = lp_value_map ();
        assert (lp_value_set (inner, "x", lp_value_array ()) == 0);
        assert (lp_value_set (map, "m", inner) == 0);
        assert (lp_value_deeper_than (map, 2) && !lp_value_deeper_than (map, 3));
        lp_value_destroy (&map);
        lp_value_t *typed = lp_value_typed (LP_DTYPE_F64, 3);
        assert (!lp_value_deeper_than (typed, 0));
        lp_value_typed_set_sequence (typed, true);
        assert (lp_value_deeper_than (typed, 0) && !lp_value_deeper_than (typed, 1));
        lp_value_destroy (&typed);
        lp_value_destroy (&scalar);
    }

    //  @selftest
    //  Scalars
    lp_value_t *v = lp_value_nil ();
    assert (lp_value_type (v) == LP_NIL);
    assert (!lp_value_as_bool (v));
    s_check_print (v, "nil");
    lp_value_destroy (&v);
    assert (v == NULL);
    lp_value_destroy (&v);              //  idempotent

    v = lp_value_bool (false);
    assert (!lp_value_as_bool (v));
    lp_value_destroy (&v);
    v = lp_value_int (0);
    assert (lp_value_as_bool (v));      //  0 is true, as in Lua
    assert (lp_value_as_int (v) == 0);
    lp_value_destroy (&v);
    v = lp_value_int (INT64_MIN);
    assert (lp_value_as_int (v) == INT64_MIN);
    assert (lp_value_as_number (v) == (double) INT64_MIN);
    s_check_print (v, "-9223372036854775808");
    lp_value_destroy (&v);
    v = lp_value_number (-2.75);
    assert (lp_value_as_int (v) == -2);
    assert (lp_value_as_number (v) == -2.75);
    s_check_print (v, "-2.75");
    lp_value_destroy (&v);

    //  Taking out without copying: an array element, a typed buffer
    v = lp_value_int_range (1, 3);
    lp_value_t *two = lp_value_take_at (v, 1);
    assert (two && lp_value_as_int (two) == 2);
    assert (lp_value_type (lp_value_at (v, 1)) == LP_NIL);
    assert (lp_value_len (v) == 3);
    assert (lp_value_take_at (v, 3) == NULL);
    lp_value_destroy (&two);
    lp_value_destroy (&v);
    v = lp_value_typed (LP_DTYPE_I32, 4);
    void *block = lp_value_typed_data (v);
    void (*release) (void *) = NULL;
    assert (lp_value_typed_release (v, NULL) == NULL);
    assert (lp_value_typed_release (v, &release) == block);
    assert (release == free && lp_value_type (v) == LP_NIL);
    assert (lp_value_typed_release (v, &release) == NULL);
    release (block);
    lp_value_destroy (&v);
    v = lp_value_number (1e300);
    assert (lp_value_as_int (v) == INT64_MAX);
    lp_value_destroy (&v);
    v = lp_value_number (NAN);
    assert (lp_value_as_int (v) == 0);
    s_check_print (v, "0/0");
    lp_value_t *v2 = lp_value_number (NAN);
    assert (lp_value_equal (v, v2));
    lp_value_destroy (&v2);
    lp_value_destroy (&v);
    v = lp_value_number (0.1);
    s_check_print (v, "0.1");
    lp_value_destroy (&v);
    v = lp_value_number (3);
    s_check_print (v, "3.0");
    lp_value_destroy (&v);

    //  Strings and bytes
    v = lp_value_string ("héllo");
    size_t len;
    assert (streq (lp_value_as_string (v, &len), "héllo"));
    assert (len == 6 && lp_value_len (v) == 6);
    lp_value_destroy (&v);
    v = lp_value_lstring ("a\0b\"\n", 5);
    assert (lp_value_len (v) == 5);
    s_check_print (v, "\"a\\000b\\\"\\n\"");
    lp_value_destroy (&v);
    v = lp_value_bytes ("\x00\xff", 2);
    assert (lp_value_type (v) == LP_BYTES);
    assert (memcmp (lp_value_as_string (v, &len), "\x00\xff", 2) == 0 && len == 2);
    v2 = lp_value_lstring ("\x00\xff", 2);
    assert (!lp_value_equal (v, v2));   //  type differs
    lp_value_destroy (&v2);
    lp_value_destroy (&v);
    v = lp_value_bytes (NULL, 0);
    assert (lp_value_len (v) == 0);
    lp_value_destroy (&v);
    v = lp_value_int (5);
    assert (lp_value_as_string (v, &len) == NULL && len == 0);
    lp_value_destroy (&v);

    //  Arrays
    lp_value_t *array = lp_value_array ();
    assert (lp_value_len (array) == 0);
    s_check_print (array, "{}");
    assert (lp_value_append (array, lp_value_int (1)) == 0);
    assert (lp_value_append (array, lp_value_string ("two")) == 0);
    assert (lp_value_append (array, lp_value_bool (true)) == 0);
    assert (lp_value_append (array, NULL) == -1);
    assert (lp_value_len (array) == 3);
    assert (lp_value_as_int (lp_value_at (array, 0)) == 1);
    assert (lp_value_at (array, 3) == NULL);
    s_check_print (array, "{1, \"two\", true}");
    lp_value_t *copy = lp_value_dup (array);
    assert (lp_value_equal (array, copy));
    assert (lp_value_append (copy, lp_value_nil ()) == 0);
    assert (!lp_value_equal (array, copy));
    lp_value_destroy (&copy);
    lp_value_destroy (&array);

    array = lp_value_int_range (1, 100000);
    assert (lp_value_len (array) == 100000);
    assert (lp_value_as_int (lp_value_at (array, 99999)) == 100000);
    char *text = lp_value_print (array);
    assert (text && strlen (text) < 200);
    assert (strstr (text, "{1, 2, 3, ") == text);
    assert (strstr (text, ", ...}"));
    free (text);
    lp_value_destroy (&array);
    array = lp_value_int_range (3, 2);
    assert (lp_value_len (array) == 0);
    lp_value_destroy (&array);

    //  Maps
    lp_value_t *map = lp_value_map ();
    assert (lp_value_set_key (map, lp_value_int (1), lp_value_int (1)) == 0);
    assert (lp_value_set_key (map, lp_value_int (2), lp_value_int (2)) == 0);
    assert (lp_value_set (map, "x", lp_value_string ("y")) == 0);
    assert (lp_value_set_key (map, lp_value_int (5), lp_value_bool (true)) == 0);
    assert (lp_value_set_key (map, lp_value_number (1.0), lp_value_string ("f")) == 0);
    assert (lp_value_set (map, "end", lp_value_nil ()) == 0);
    assert (lp_value_len (map) == 6);
    s_check_print (map, "{1, 2, x = \"y\", [5] = true, [1.0] = \"f\", [\"end\"] = nil}");
    assert (streq (lp_value_as_string (lp_value_get (map, "x"), NULL), "y"));
    assert (lp_value_get (map, "nope") == NULL);
    assert (lp_value_set (map, "x", lp_value_int (7)) == 0);    //  replaces
    assert (lp_value_len (map) == 6);
    assert (lp_value_as_int (lp_value_get (map, "x")) == 7);
    assert (lp_value_as_int (lp_value_key_at (map, 3)) == 5);
    assert (lp_value_as_bool (lp_value_value_at (map, 3)));
    assert (lp_value_key_at (map, 6) == NULL);
    assert (lp_value_append (map, lp_value_int (1)) == -1);     //  not an array
    copy = lp_value_dup (map);
    assert (lp_value_equal (map, copy));
    lp_value_destroy (&copy);
    //  Order-insensitive equality
    lp_value_t *m1 = lp_value_map ();
    lp_value_t *m2 = lp_value_map ();
    lp_value_set (m1, "a", lp_value_int (1));
    lp_value_set (m1, "b", lp_value_int (2));
    lp_value_set (m2, "b", lp_value_int (2));
    lp_value_set (m2, "a", lp_value_int (1));
    assert (lp_value_equal (m1, m2));
    lp_value_set (m2, "a", lp_value_int (3));
    assert (!lp_value_equal (m1, m2));
    lp_value_destroy (&m1);
    lp_value_destroy (&m2);
    lp_value_destroy (&map);

    //  Big map: hash index
    map = lp_value_map ();
    int64_t start = zclock_mono ();
    char key [32];
    for (int k = 0; k < 100000; k++) {
        snprintf (key, sizeof key, "key%d", k);
        assert (lp_value_set (map, key, lp_value_int (k)) == 0);
    }
    for (int k = 0; k < 100000; k += 7) {
        snprintf (key, sizeof key, "key%d", k);
        assert (lp_value_as_int (lp_value_get (map, key)) == k);
    }
    for (int k = 0; k < 1000; k++)
        assert (lp_value_set_key (map, lp_value_int (k), lp_value_int (-k)) == 0);
    assert (lp_value_len (map) == 101000);
    assert (lp_value_get (map, "key100000") == NULL);
    snprintf (key, sizeof key, "key%d", 4242);
    assert (lp_value_set (map, key, lp_value_int (-1)) == 0);
    assert (lp_value_len (map) == 101000);
    assert (lp_value_as_int (lp_value_get (map, key)) == -1);
    copy = lp_value_dup (map);
    assert (lp_value_equal (copy, map));
    lp_value_destroy (&copy);
    text = lp_value_print (map);
    assert (text && strlen (text) < 400);
    free (text);
    if (verbose)
        printf ("(101000 map keys in %d ms) ", (int) (zclock_mono () - start));
    lp_value_destroy (&map);

    //  Typed arrays
    lp_value_t *typed = lp_value_typed (LP_DTYPE_F64, 3);
    assert (lp_value_type (typed) == LP_TYPED);
    assert (lp_value_dtype (typed) == LP_DTYPE_F64);
    assert (lp_value_len (typed) == 3);
    double *d = (double *) lp_value_typed_data (typed);
    assert (d [0] == 0 && d [2] == 0);
    d [0] = 1; d [1] = 2.5; d [2] = 3;
    s_check_print (typed, "lp.array(f64, 3){1.0, 2.5, 3.0}");
    copy = lp_value_dup (typed);
    assert (lp_value_equal (typed, copy));
    ((double *) lp_value_typed_data (copy)) [1] = 2.25;
    assert (!lp_value_equal (typed, copy));
    lp_value_destroy (&copy);
    //  Flagged as a sequence: prints as the table it stands for, the flag
    //  is copied and compared
    assert (!lp_value_typed_is_sequence (typed));
    assert (lp_value_typed_set_sequence (typed, true) == 0);
    assert (lp_value_typed_is_sequence (typed));
    s_check_print (typed, "{1.0, 2.5, 3.0}");
    copy = lp_value_dup (typed);
    assert (lp_value_typed_is_sequence (copy) && lp_value_equal (typed, copy));
    lp_value_typed_set_sequence (copy, false);
    assert (!lp_value_equal (typed, copy));
    lp_value_destroy (&copy);
    lp_value_typed_set_sequence (typed, false);
    lp_value_t *not_typed = lp_value_int (1);
    assert (lp_value_typed_set_sequence (not_typed, true) == -1);
    assert (!lp_value_typed_is_sequence (not_typed));
    lp_value_destroy (&not_typed);
    //  A string that takes its buffer
    char *buffer = (char *) malloc (6);
    assert (buffer);
    memcpy (buffer, "taken!", 6);
    lp_value_t *taken = lp_value_str_take (LP_STRING, buffer, 5);
    assert (taken && lp_value_len (taken) == 5);
    assert (streq (lp_value_as_string (taken, NULL), "taken"));
    lp_value_destroy (&taken);
    lp_value_destroy (&typed);

    int32_t *ints = (int32_t *) malloc (4 * sizeof (int32_t));
    assert (ints);
    for (int k = 0; k < 4; k++)
        ints [k] = -k;
    s_freed = 0;
    typed = lp_value_typed_take (LP_DTYPE_I32, ints, 4, s_free_probe);
    assert (lp_value_typed_data (typed) == ints);
    s_check_print (typed, "lp.array(i32, 4){0, -1, -2, -3}");
    lp_value_t *other = lp_value_typed (LP_DTYPE_I64, 4);
    assert (!lp_value_equal (typed, other));        //  dtype differs
    lp_value_destroy (&other);
    lp_value_destroy (&typed);
    assert (s_freed == 1);

    typed = lp_value_typed (LP_DTYPE_U8, 0);
    assert (lp_value_len (typed) == 0);
    s_check_print (typed, "lp.array(u8, 0){}");
    lp_value_destroy (&typed);

    typed = lp_value_typed (LP_DTYPE_F32, 1000000);
    start = zclock_mono ();
    text = lp_value_print (typed);
    assert (text && strlen (text) < 200);
    assert (strstr (text, "lp.array(f32, 1000000){0.0, 0.0, "));
    free (text);
    assert (zclock_mono () - start < 1000);
    lp_value_destroy (&typed);

    assert (lp_dtype_size (LP_DTYPE_F64) == 8 && lp_dtype_size (LP_DTYPE_U8) == 1);
    assert (lp_dtype_size ((lp_dtype_t) 9) == 0);
    assert (streq (lp_dtype_name (LP_DTYPE_I32), "i32"));
    assert (streq (lp_type_name (LP_MAP), "map"));
    assert (streq (lp_type_name (LP_BOOL), "boolean"));

    //  Nested printing
    map = lp_value_map ();
    lp_value_t *inner = lp_value_int_range (1, 2);
    lp_value_set (map, "list", inner);
    lp_value_set_key (map, lp_value_string ("with space"), lp_value_number (0.5));
    s_check_print (map, "{list = {1, 2}, [\"with space\"] = 0.5}");
    lp_value_destroy (&map);
    //  @end
    //  lp_value_take: out of the map without a copy, nil left behind
    {
        lp_value_t *holder = lp_value_map ();
        assert (lp_value_set (holder, "values", lp_value_string ("big")) == 0);
        lp_value_t *took = lp_value_take (holder, "values");
        assert (took && lp_value_type (took) == LP_STRING);
        assert (lp_value_type (lp_value_get (holder, "values")) == LP_NIL);
        assert (lp_value_take (holder, "absent") == NULL);
        lp_value_destroy (&took);
        lp_value_destroy (&holder);
    }
    printf ("OK\n");
}
