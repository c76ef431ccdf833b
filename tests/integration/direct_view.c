/*  direct_view.c - the direct view does what a user expects on 4 engines

    push/pull of every value kind, scatter/gather order and chunking,
    apply with several results, execute of an expression, execute on a
    subset of engines, a 10 MB typed array bit for bit, and map.
*/
#include "lp_testlib.h"
#include <math.h>

static int ids[64];
static int nids;

//  Index of the reply that came from engine id, or fails.
static int
s_reply_of (lp_result_t *r, int id)
{
    for (int i = 0; i < lp_result_count (r); i++)
        if (lp_result_engine (r, i) == id)
            return i;
    CHECK (0, "no reply from engine %d among %d replies", id, lp_result_count (r));
    return -1;
}

static void
s_push_pull (lp_client_t *client)
{
    lp_view_t *all = lp_client_view (client, NULL, 0);
    CHECK (all, "lp_client_view(all): %s", lp_client_error (client));

    lp_value_t *ns = lp_value_map ();
    lp_value_set (ns, "an_int", lp_value_int (-1234567890123LL));
    lp_value_set (ns, "a_float", lp_value_number (3.25));
    lp_value_set (ns, "a_string", lp_value_string ("héllo, wörld"));
    lp_value_set (ns, "yes", lp_value_bool (true));
    lp_value_set (ns, "no", lp_value_bool (false));
    lp_value_t *inner = lp_value_map ();
    lp_value_set (inner, "name", lp_value_string ("inner"));
    lp_value_set (inner, "list", lp_value_int_range (1, 5));
    lp_value_t *deeper = lp_value_map ();
    lp_value_set (deeper, "pi", lp_value_number (3.14159));
    lp_value_set (deeper, "ok", lp_value_bool (true));
    lp_value_set (inner, "deeper", deeper);
    lp_value_set (ns, "nested", inner);
    lp_value_t *expected = lp_value_dup (ns);
    CHECK (expected, "lp_value_dup failed");

    lp_result_t *r = lp_view_push_map (all, ns);
    LPT_WAIT_OK (r, "push_map");
    CHECK (lp_result_count (r) == nids, "push to all engines: %d replies, expected %d",
           lp_result_count (r), nids);
    lp_result_destroy (&r);

    for (size_t k = 0; k < lp_value_len (expected); k++) {
        const char *name = lp_value_as_string (lp_value_key_at (expected, k), NULL);
        const lp_value_t *want = lp_value_value_at (expected, k);
        r = lp_view_pull (all, name);
        LPT_WAIT_OK (r, name);
        CHECK (lp_result_count (r) == nids, "pull %s: %d replies, expected %d",
               name, lp_result_count (r), nids);
        for (int i = 0; i < nids; i++) {
            const lp_value_t *got = lp_result_value (r, s_reply_of (r, ids[i]));
            CHECK (lpt_same (got, want), "pull %s from engine %d gave %s, pushed %s",
                   name, ids[i], lpt_show (got), lpt_show (want));
        }
        lp_result_destroy (&r);
    }
    //  dotted path
    r = lp_view_pull (all, "nested.deeper.pi");
    LPT_WAIT_OK (r, "pull nested.deeper.pi");
    for (int i = 0; i < nids; i++) {
        const lp_value_t *got = lp_result_value (r, i);
        CHECK (got && lp_value_type (got) == LP_NUMBER && lp_value_as_number (got) == 3.14159,
               "pull nested.deeper.pi gave %s", lpt_show (got));
    }
    lp_result_destroy (&r);
    //  unset name -> nil
    r = lp_view_pull (all, "never_set_anywhere");
    LPT_WAIT_OK (r, "pull never_set_anywhere");
    for (int i = 0; i < nids; i++) {
        const lp_value_t *got = lp_result_value (r, i);
        CHECK (got && lp_value_type (got) == LP_NIL, "pull of an unset global gave %s, expected nil",
               lpt_show (got));
    }
    lp_result_destroy (&r);
    lp_value_destroy (&expected);
    lp_view_destroy (&all);
    lpt_say ("push/pull of int, float, string, booleans, nested tables: ok");
}

static void
s_scatter_gather (lp_client_t *client)
{
    lp_view_t *all = lp_client_view (client, NULL, 0);
    lp_result_t *r = lp_view_scatter (all, "x", lp_value_int_range (1, 1000));
    LPT_WAIT_OK (r, "scatter 1..1000");
    lp_result_destroy (&r);

    r = lp_view_gather (all, "x");
    LPT_WAIT_OK (r, "gather x");
    const lp_value_t *whole = lp_result_get (r);
    CHECK (whole && lp_value_type (whole) == LP_ARRAY, "gather gave %s, expected an array",
           lpt_show (whole));
    CHECK (lp_value_len (whole) == 1000, "gather gave %zu elements, expected 1000", lp_value_len (whole));
    for (size_t i = 0; i < 1000; i++) {
        const lp_value_t *v = lp_value_at (whole, i);
        CHECK (v && lp_value_as_int (v) == (int64_t) i + 1 && lp_value_type (v) == LP_INT,
               "gather element %zu is %s, expected %zu", i, lpt_show (v), i + 1);
    }
    lp_result_destroy (&r);

    //  each engine's chunk: contiguous, ascending engine order, sizes within 1
    r = lp_view_execute (all, "return #x, x[1], x[#x]");
    LPT_WAIT_OK (r, "return #x, x[1], x[#x]");
    int64_t next = 1, minsize = 1000000, maxsize = -1, total = 0;
    for (int e = 0; e < nids; e++) {
        int i = s_reply_of (r, ids[e]);
        const lp_value_t *vals = lp_result_values (r, i);
        CHECK (vals && lp_value_len (vals) == 3, "engine %d: expected 3 values, got %s",
               ids[e], lpt_show (vals));
        int64_t size = lp_value_as_int (lp_value_at (vals, 0));
        int64_t first = lp_value_as_int (lp_value_at (vals, 1));
        int64_t last = lp_value_as_int (lp_value_at (vals, 2));
        lpt_say ("engine %d holds x[1..%lld] = %lld..%lld", ids[e], (long long) size,
                 (long long) first, (long long) last);
        CHECK (size > 0, "engine %d got an empty chunk", ids[e]);
        CHECK (first == next, "engine %d's chunk starts at %lld, expected %lld (not contiguous "
               "in engine order)", ids[e], (long long) first, (long long) next);
        CHECK (last == first + size - 1, "engine %d's chunk %lld..%lld has %lld elements",
               ids[e], (long long) first, (long long) last, (long long) size);
        next = last + 1;
        total += size;
        if (size < minsize) minsize = size;
        if (size > maxsize) maxsize = size;
    }
    CHECK (total == 1000, "chunks hold %lld elements in all, expected 1000", (long long) total);
    CHECK (maxsize - minsize <= 1, "chunk sizes range %lld..%lld, expected to differ by at most 1",
           (long long) minsize, (long long) maxsize);
    lp_result_destroy (&r);
    lp_view_destroy (&all);
    lpt_say ("scatter/gather 1..1000 over %d engines: ok", nids);
}

static void
s_apply_execute (lp_client_t *client)
{
    int one = ids[1];
    lp_view_t *single = lp_client_view (client, &one, 1);
    lp_value_t *args = lp_value_array ();
    lp_value_append (args, lp_value_int (6));
    lp_value_append (args, lp_value_int (7));
    lp_result_t *r = lp_view_apply (single, "function(a, b) return a + b, a * b, 's' end", args);
    LPT_WAIT_OK (r, "apply returning 3 values");
    CHECK (lp_result_count (r) == 1, "apply on one engine: %d replies", lp_result_count (r));
    CHECK (lp_result_engine (r, 0) == one, "reply came from engine %d, sent to %d",
           lp_result_engine (r, 0), one);
    const lp_value_t *vals = lp_result_values (r, 0);
    CHECK (vals && lp_value_type (vals) == LP_ARRAY && lp_value_len (vals) == 3,
           "apply values: %s, expected {13, 42, \"s\"}", lpt_show (vals));
    CHECK (lp_value_as_int (lp_value_at (vals, 0)) == 13
           && lp_value_as_int (lp_value_at (vals, 1)) == 42
           && lp_value_as_string (lp_value_at (vals, 2), NULL)
           && strcmp (lp_value_as_string (lp_value_at (vals, 2), NULL), "s") == 0,
           "apply values: %s, expected {13, 42, \"s\"}", lpt_show (vals));
    lp_result_destroy (&r);

    //  apply of a global name
    args = lp_value_array ();
    lp_value_append (args, lp_value_number (2.25));
    r = lp_view_apply (single, "math.sqrt", args);
    LPT_WAIT_OK (r, "apply math.sqrt");
    const lp_value_t *v = lp_result_value (r, 0);
    CHECK (v && lp_value_as_number (v) == 1.5, "apply math.sqrt(2.25) gave %s", lpt_show (v));
    lp_result_destroy (&r);

    //  execute of an expression returns its value, on every engine
    lp_view_t *all = lp_client_view (client, NULL, 0);
    r = lpt_exec (all, "6 * 7");
    CHECK (lp_result_count (r) == nids, "execute on all: %d replies", lp_result_count (r));
    for (int i = 0; i < nids; i++)
        LPT_EXPECT_INT (r, i, 42, "execute '6 * 7'");
    lp_result_destroy (&r);
    r = lpt_exec (single, "'a' .. 'b'");
    v = lp_result_value (r, 0);
    CHECK (v && lp_value_as_string (v, NULL) && strcmp (lp_value_as_string (v, NULL), "ab") == 0,
           "execute \"'a' .. 'b'\" gave %s", lpt_show (v));
    lp_result_destroy (&r);
    //  a statement returns nothing
    r = lpt_exec (single, "local q = 1");
    v = lp_result_value (r, 0);
    CHECK (v && lp_value_type (v) == LP_NIL, "execute of a statement gave %s, expected nil",
           lpt_show (v));
    lp_result_destroy (&r);
    lp_view_destroy (&all);
    lp_view_destroy (&single);
    lpt_say ("apply (3 results, global name) and execute of expressions: ok");
}

static void
s_subset (lp_client_t *client)
{
    int subset[2] = { ids[0], ids[2] };
    lp_view_t *some = lp_client_view (client, subset, 2);
    int targets[8];
    CHECK (lp_view_targets (some, targets, 8) == 2, "view on {%d,%d} reports %d targets",
           subset[0], subset[1], lp_view_targets (some, targets, 8));
    lp_result_t *r = lpt_exec (some, "marker = 'set here'");
    CHECK (lp_result_count (r) == 2, "execute on 2 engines: %d replies", lp_result_count (r));
    lp_result_destroy (&r);
    lp_view_t *all = lp_client_view (client, NULL, 0);
    r = lp_view_pull (all, "marker");
    LPT_WAIT_OK (r, "pull marker");
    for (int e = 0; e < nids; e++) {
        const lp_value_t *v = lp_result_value (r, s_reply_of (r, ids[e]));
        bool targeted = ids[e] == subset[0] || ids[e] == subset[1];
        if (targeted)
            CHECK (v && lp_value_as_string (v, NULL)
                   && strcmp (lp_value_as_string (v, NULL), "set here") == 0,
                   "engine %d was targeted but marker is %s", ids[e], lpt_show (v));
        else
            CHECK (v && lp_value_type (v) == LP_NIL,
                   "engine %d was NOT targeted but marker is %s", ids[e], lpt_show (v));
    }
    lp_result_destroy (&r);
    lp_view_destroy (&all);
    lp_view_destroy (&some);
    lpt_say ("execute on engines {%d,%d} changed only those: ok", subset[0], subset[1]);
}

static void
s_big_typed (lp_client_t *client)
{
    size_t count = 10 * 1024 * 1024 / sizeof (double);
    lp_value_t *arr = lp_value_typed (LP_DTYPE_F64, count);
    CHECK (arr, "lp_value_typed(%zu) failed", count);
    double *d = lp_value_typed_data (arr);
    uint64_t x = 0x9E3779B97F4A7C15ULL;
    for (size_t i = 0; i < count; i++) {
        x ^= x << 13; x ^= x >> 7; x ^= x << 17;
        d[i] = (double) (int64_t) x / 3.0;
    }
    d[0] = -0.0; d[1] = NAN; d[2] = INFINITY; d[3] = 5e-324; d[count - 1] = 1.0 / 3.0;
    lp_value_t *copy = lp_value_dup (arr);
    CHECK (copy, "lp_value_dup of 10 MB failed");

    lp_view_t *all = lp_client_view (client, NULL, 0);
    double t0 = lpt_now_ms ();
    lp_result_t *r = lp_view_push (all, "big", arr);
    LPT_WAIT_OK (r, "push 10 MB f64");
    lp_result_destroy (&r);
    double t1 = lpt_now_ms ();
    r = lp_view_pull (all, "big");
    LPT_WAIT_OK (r, "pull 10 MB f64");
    double t2 = lpt_now_ms ();
    CHECK (lp_result_count (r) == nids, "pull big: %d replies", lp_result_count (r));
    for (int i = 0; i < nids; i++) {
        const lp_value_t *v = lp_result_value (r, i);
        CHECK (v && lp_value_type (v) == LP_TYPED, "engine %d: pulled big is %s, expected a typed array",
               lp_result_engine (r, i), v ? lp_type_name (lp_value_type (v)) : "NULL");
        CHECK (lp_value_dtype (v) == LP_DTYPE_F64, "engine %d: dtype %s, expected f64",
               lp_result_engine (r, i), lp_dtype_name (lp_value_dtype (v)));
        CHECK (lp_value_len (v) == count, "engine %d: %zu elements, expected %zu",
               lp_result_engine (r, i), lp_value_len (v), count);
        CHECK (memcmp (lp_value_typed_data (v), lp_value_typed_data (copy), count * sizeof (double)) == 0,
               "engine %d: pulled 10 MB differ from what was pushed", lp_result_engine (r, i));
    }
    lp_result_destroy (&r);
    lp_value_destroy (&copy);
    lp_view_destroy (&all);
    lpt_say ("10 MB f64 array to %d engines and back bit for bit: ok (push %.0f ms, pull %.0f ms)",
             nids, t1 - t0, t2 - t1);
}

//  Byte strings (inline and out of band), other typed dtypes, empty tables.
static void
s_blobs (lp_client_t *client)
{
    int one = ids[0];
    lp_view_t *view = lp_client_view (client, &one, 1);
    size_t blen = 200 * 1024;
    uint8_t *bytes = malloc (blen);
    CHECK (bytes, "out of memory");
    for (size_t i = 0; i < blen; i++)
        bytes[i] = (uint8_t) (i * 7 + (i >> 8));       //  not UTF-8
    char *text = malloc (100 * 1024 + 1);
    CHECK (text, "out of memory");
    for (size_t i = 0; i < 100 * 1024; i++)
        text[i] = (char) ('a' + i % 26);
    text[100 * 1024] = 0;
    lp_value_t *i32 = lp_value_typed (LP_DTYPE_I32, 1000);
    int32_t *d = lp_value_typed_data (i32);
    for (int i = 0; i < 1000; i++)
        d[i] = i * 1000 - 77777;

    lp_value_t *ns = lp_value_map ();
    lp_value_set (ns, "blob", lp_value_bytes (bytes, blen));
    lp_value_set (ns, "small_blob", lp_value_bytes ("\xff\x00\xfe", 3));
    lp_value_set (ns, "long_text", lp_value_string (text));
    lp_value_set (ns, "ints32", i32);
    lp_value_set (ns, "empty", lp_value_array ());
    lp_value_t *expected = lp_value_dup (ns);
    lp_result_t *r = lp_view_push_map (view, ns);
    LPT_WAIT_OK (r, "push of blobs");
    lp_result_destroy (&r);

    r = lp_view_pull (view, "blob");
    LPT_WAIT_OK (r, "pull blob");
    const lp_value_t *v = lp_result_value (r, 0);
    size_t len = 0;
    const char *got = v ? lp_value_as_string (v, &len) : NULL;
    CHECK (v && lp_value_type (v) == LP_BYTES, "200 KB of non-UTF-8 bytes came back as %s, expected bytes",
           v ? lp_type_name (lp_value_type (v)) : "NULL");
    CHECK (got && len == blen && memcmp (got, bytes, blen) == 0, "200 KB of bytes came back different "
           "(%zu bytes)", len);
    lp_result_destroy (&r);

    r = lp_view_pull (view, "small_blob");
    LPT_WAIT_OK (r, "pull small_blob");
    v = lp_result_value (r, 0);
    got = v ? lp_value_as_string (v, &len) : NULL;
    CHECK (got && len == 3 && memcmp (got, "\xff\x00\xfe", 3) == 0, "3 bytes with a NUL came back as %s",
           lpt_show (v));
    lp_result_destroy (&r);

    r = lp_view_pull (view, "long_text");
    LPT_WAIT_OK (r, "pull long_text");
    v = lp_result_value (r, 0);
    got = v ? lp_value_as_string (v, &len) : NULL;
    CHECK (got && len == strlen (text) && memcmp (got, text, len) == 0, "100 KB string came back different");
    lp_result_destroy (&r);

    r = lpt_exec (view, "#long_text, #blob, #empty, type(ints32)");
    const lp_value_t *vals = lp_result_values (r, 0);
    CHECK (vals && lp_value_as_int (lp_value_at (vals, 0)) == 100 * 1024
           && lp_value_as_int (lp_value_at (vals, 1)) == (int64_t) blen
           && lp_value_as_int (lp_value_at (vals, 2)) == 0,
           "on the engine, #long_text, #blob, #empty, type(ints32) = %s", lpt_show (vals));
    lp_result_destroy (&r);

    r = lp_view_pull (view, "ints32");
    LPT_WAIT_OK (r, "pull ints32");
    v = lp_result_value (r, 0);
    CHECK (v && lp_value_type (v) == LP_TYPED && lp_value_dtype (v) == LP_DTYPE_I32
           && lp_value_len (v) == 1000
           && memcmp (lp_value_typed_data (v), lp_value_typed_data (lp_value_get (expected, "ints32")),
                      1000 * sizeof (int32_t)) == 0,
           "i32 typed array came back as %s", lpt_show (v));
    lp_result_destroy (&r);

    r = lp_view_pull (view, "empty");
    LPT_WAIT_OK (r, "pull empty");
    v = lp_result_value (r, 0);
    CHECK (v && lp_value_type (v) == LP_ARRAY && lp_value_len (v) == 0,
           "an empty table came back as %s, expected an empty array", lpt_show (v));
    lp_result_destroy (&r);

    lp_value_destroy (&expected);
    free (bytes);
    free (text);
    lp_view_destroy (&view);
    lpt_say ("bytes (3 B, 200 KB), 100 KB text, i32 array, empty table: ok");
}

static void
s_map (lp_client_t *client)
{
    lp_view_t *all = lp_client_view (client, NULL, 0);
    lp_result_t *r = lp_view_map (all, "function(x) return x * x end", lp_value_int_range (1, 1000));
    LPT_WAIT_OK (r, "map x*x over 1..1000");
    const lp_value_t *whole = lp_result_get (r);
    CHECK (whole && lp_value_type (whole) == LP_ARRAY && lp_value_len (whole) == 1000,
           "map gave %s, expected 1000 values", lpt_show (whole));
    for (size_t i = 0; i < 1000; i++) {
        int64_t want = (int64_t) (i + 1) * (int64_t) (i + 1);
        const lp_value_t *v = lp_value_at (whole, i);
        CHECK (v && lp_value_as_int (v) == want, "map element %zu is %s, expected %lld",
               i, lpt_show (v), (long long) want);
    }
    lp_result_destroy (&r);
    lp_view_destroy (&all);
    lpt_say ("map of x*x over 1..1000 in order: ok");
}

int
main (int argc, char **argv)
{
    printf ("direct_view:\n");
    lp_client_t *client = lpt_connect (argc, argv);
    nids = lp_client_ids (client, ids, 64);
    CHECK (nids == LPT_ENGINES, "expected %d engines, lp_client_ids gives %d", LPT_ENGINES, nids);
    for (int i = 1; i < nids; i++)
        CHECK (ids[i] > ids[i - 1], "lp_client_ids not ascending: %d then %d", ids[i - 1], ids[i]);
    s_push_pull (client);
    s_scatter_gather (client);
    s_apply_execute (client);
    s_subset (client);
    s_big_typed (client);
    s_blobs (client);
    s_map (client);
    lp_client_destroy (&client);
    printf ("direct_view: OK\n");
    return 0;
}
