/*  large_table - a table of 5*10^7 numbers moves both ways (issue 9)

    A Lua sequence of more than 4096 numbers, all integers or all floats,
    travels as a typed array flagged "sequence" (docs/protocol.md,
    "Values"): it reads in C as an i64 / f64 typed array with
    lp_value_typed_is_sequence true, and arrives in Lua as a plain table.
    So 5*10^7 numbers are 400 MB on the wire, in 1 MiB frames, where the
    msgpack form (up to 450 MB) could never pass the 128 MiB frame cap.

    Covered: push of 5*10^7 integers from C (a flagged typed array) that
    the engine sees as a table (type, length, elements, sum computed in
    Lua), pull of it, a direct apply returning 5*10^7 floats, a
    load-balanced task returning 5*10^7 integers, scatter of 5*10^7
    integers over the engines (each sees a table) and gather of them.
*/
#include "lp_testlib.h"
#include <stdint.h>

#define N           50000000            //  5*10^7
#define WAIT_MS     300000              //  GBs over loopback on 2 busy cores

//  Element k (0-based) of the integer test sequence
static inline int64_t
s_int (size_t k)
{
    return (int64_t) k * 3 - 1000000;
}

//  Element k (0-based) of the float sequence the engine makes
static inline double
s_float (size_t k)
{
    return (double) (k + 1) * 0.5;
}

//  The integer test sequence, N elements, as a typed array flagged as a
//  sequence
static lp_value_t *
s_int_sequence (void)
{
    lp_value_t *seq = lp_value_typed (LP_DTYPE_I64, N);
    CHECK (seq, "out of memory");
    int64_t *data = (int64_t *) lp_value_typed_data (seq);
    for (size_t k = 0; k < N; k++)
        data [k] = s_int (k);
    lp_value_typed_set_sequence (seq, true);
    return seq;
}

static lp_result_t *
s_wait_ok (lp_result_t *r, const char *what)
{
    return lpt_wait_ok_ms (r, WAIT_MS, what);
}

//  Checks that v is the integer sequence elements [first, first+n)
static void
s_check_ints (const lp_value_t *v, size_t first, size_t n, const char *what)
{
    CHECK (v && lp_value_type (v) == LP_TYPED && lp_value_dtype (v) == LP_DTYPE_I64,
           "%s: %s, expected an i64 typed array", what, lpt_show (v));
    CHECK (lp_value_typed_is_sequence (v), "%s: typed array not flagged as a sequence", what);
    CHECK (lp_value_len (v) == n, "%s: %zu elements, expected %zu", what, lp_value_len (v), n);
    const int64_t *data = (const int64_t *) lp_value_typed_data (v);
    for (size_t k = 0; k < n; k++)
        CHECK (data [k] == s_int (first + k), "%s: element %zu is %lld, expected %lld",
               what, k + 1, (long long) data [k], (long long) s_int (first + k));
}

//  Sum of the integer sequence [first, first+n), wrapping as Lua does
static int64_t
s_sum (size_t first, size_t n)
{
    uint64_t sum = 0;
    for (size_t k = first; k < first + n; k++)
        sum += (uint64_t) s_int (k);
    return (int64_t) sum;
}

//  In Lua: type, length, a few elements and the sum of table t
#define LUA_CHECK(t) \
    "local s = 0 for i = 1, #" t " do s = s + " t "[i] end " \
    "return type (" t "), #" t ", " t "[1], " t "[#" t "], math.type (" t "[1]), s"

static void
s_check_on_engine (lp_result_t *r, int i, size_t first, size_t n, const char *what)
{
    const lp_value_t *got = lp_result_values (r, i);
    CHECK (got && lp_value_len (got) == 6, "%s: engine %d gave %s", what,
           lp_result_engine (r, i), lpt_show (got));
    const char *type = lp_value_as_string (lp_value_at (got, 0), NULL);
    CHECK (type && strcmp (type, "table") == 0
        && lp_value_as_int (lp_value_at (got, 1)) == (int64_t) n
        && lp_value_as_int (lp_value_at (got, 2)) == s_int (first)
        && lp_value_as_int (lp_value_at (got, 3)) == s_int (first + n - 1)
        && strcmp (lp_value_as_string (lp_value_at (got, 4), NULL), "integer") == 0
        && lp_value_as_int (lp_value_at (got, 5)) == s_sum (first, n),
           "%s: engine %d sees %s, expected {\"table\", %zu, %lld, %lld, \"integer\", %lld}",
           what, lp_result_engine (r, i), lpt_show (got), n, (long long) s_int (first),
           (long long) s_int (first + n - 1), (long long) s_sum (first, n));
}

int
main (int argc, char **argv)
{
    printf ("large_table:\n");
    lp_client_t *client = lpt_connect (argc, argv);
    int ids [64];
    int n = lp_client_ids (client, ids, 64);
    CHECK (n >= LPT_ENGINES, "%d engines", n);
    lp_view_t *one = lp_client_view (client, &ids [0], 1);
    lp_view_t *all = lp_client_view (client, ids, LPT_ENGINES);
    lp_view_t *lb = lp_client_balanced (client);
    CHECK (one && all && lb, "views: %s", lp_client_error (client));

    //  Push from C: a typed array flagged as a sequence
    lp_value_t *seq = s_int_sequence ();
    double t0 = lpt_now_ms ();
    lp_result_t *r = s_wait_ok (lp_view_push (one, "t", seq), "push of 5*10^7 integers");
    lp_result_destroy (&r);
    double t_push = lpt_now_ms () - t0;
    r = s_wait_ok (lp_view_execute (one, LUA_CHECK ("t")), "check on the engine");
    s_check_on_engine (r, 0, 0, N, "push");
    lp_result_destroy (&r);
    lpt_say ("push of 5*10^7 integers: %.1f s; the engine sees a table, sum right",
             t_push / 1000);

    //  Pull it back
    t0 = lpt_now_ms ();
    r = s_wait_ok (lp_view_pull (one, "t"), "pull of 5*10^7 integers");
    double t_pull = lpt_now_ms () - t0;
    s_check_ints (lp_result_get (r), 0, N, "pull");
    lp_result_destroy (&r);
    r = s_wait_ok (lp_view_execute (one, "t = nil collectgarbage () return true"), "free t");
    lp_result_destroy (&r);
    lpt_say ("pull of 5*10^7 integers: %.1f s, every element right", t_pull / 1000);

    //  A direct apply returning 5*10^7 floats
    lp_value_t *args = lp_value_array ();
    lp_value_append (args, lp_value_int (N));
    t0 = lpt_now_ms ();
    r = s_wait_ok (lp_view_apply (one,
        "function (n) local t = {} for i = 1, n do t[i] = i * 0.5 end return t end",
        args), "apply returning 5*10^7 floats");
    double t_apply = lpt_now_ms () - t0;
    const lp_value_t *v = lp_result_get (r);
    CHECK (v && lp_value_type (v) == LP_TYPED && lp_value_dtype (v) == LP_DTYPE_F64
        && lp_value_typed_is_sequence (v) && lp_value_len (v) == N,
           "apply returned %s (%zu elements), expected a sequence of %d f64",
           lpt_show (v), v? lp_value_len (v): 0, N);
    const double *d = (const double *) lp_value_typed_data (v);
    for (size_t k = 0; k < N; k++)
        CHECK (d [k] == s_float (k), "apply: element %zu is %g, expected %g",
               k + 1, d [k], s_float (k));
    lp_result_destroy (&r);
    lpt_say ("direct apply returning 5*10^7 floats: %.1f s (making them included)",
             t_apply / 1000);

    //  A load-balanced task returning 5*10^7 integers
    args = lp_value_array ();
    lp_value_append (args, lp_value_int (N));
    t0 = lpt_now_ms ();
    r = s_wait_ok (lp_view_apply (lb,
        "function (n) local t = {} for i = 1, n do t[i] = (i - 1) * 3 - 1000000 end return t end",
        args), "load-balanced task returning 5*10^7 integers");
    double t_task = lpt_now_ms () - t0;
    s_check_ints (lp_result_get (r), 0, N, "load-balanced task");
    lp_result_destroy (&r);
    lpt_say ("load-balanced task returning 5*10^7 integers: %.1f s", t_task / 1000);

    //  Scatter over the engines: each sees a table of its chunk
    seq = s_int_sequence ();
    t0 = lpt_now_ms ();
    r = s_wait_ok (lp_view_scatter (all, "part", seq), "scatter of 5*10^7 integers");
    lp_result_destroy (&r);
    double t_scatter = lpt_now_ms () - t0;
    r = s_wait_ok (lp_view_execute (all, LUA_CHECK ("part")), "check the scattered parts");
    size_t first = 0;
    for (int i = 0; i < LPT_ENGINES; i++) {
        size_t chunk = N / LPT_ENGINES + ((size_t) i < N % LPT_ENGINES? 1: 0);
        s_check_on_engine (r, i, first, chunk, "scatter");
        first += chunk;
    }
    lp_result_destroy (&r);
    t0 = lpt_now_ms ();
    r = s_wait_ok (lp_view_gather (all, "part"), "gather of 5*10^7 integers");
    double t_gather = lpt_now_ms () - t0;
    s_check_ints (lp_result_get (r), 0, N, "gather");
    lp_result_destroy (&r);
    r = s_wait_ok (lp_view_execute (all, "part = nil collectgarbage () return true"), "free");
    lp_result_destroy (&r);
    lpt_say ("scatter / gather of 5*10^7 integers over %d engines: %.1f / %.1f s",
             LPT_ENGINES, t_scatter / 1000, t_gather / 1000);

    lpt_say_peak_rss (client, ids, LPT_ENGINES);

    lp_view_destroy (&one);
    lp_view_destroy (&all);
    lp_view_destroy (&lb);
    lp_client_destroy (&client);
    printf ("large_table: OK\n");
    return 0;
}
