/*  array_math.c - lp.array arithmetic on the engines (issue 14;
    docs/engine.md "lp.array"): a typed array scattered from C is summed,
    its min and max found, scaled and added to in place on each engine,
    and what comes back is checked against the same arithmetic done here:
      - xs:sum () of each engine's f64 chunk equals the in-order C sum of
        that chunk exactly, min and max (value, 1-based index) match;
      - xs:scale (2):add (1) then gather gives 2x + 1 for every element;
      - an engine whose chunk is empty gets sum 0.0 and min nil;
      - a NaN makes sum, min and max NaN (index of the first NaN);
      - an i32 result out of range is an error and the array is unchanged.
*/
#include "lp_testlib.h"

#define S_COUNT  1000003                //  not a multiple of 4 engines

int
main (int argc, char **argv)
{
    lp_client_t *client = lpt_connect (argc, argv);
    lp_view_t *all = lp_client_view (client, NULL, 0);
    CHECK (all, "view: %s", lp_client_error (client));

    //  Values with fractions and both signs, the minimum and maximum
    //  placed in the middle of the array
    lp_value_t *xs = lp_value_typed (LP_DTYPE_F64, S_COUNT);
    double *x = (double *) lp_value_typed_data (xs);
    for (size_t i = 0; i < S_COUNT; i++)
        x [i] = ((double) ((i * 7919) % 10007) - 5003.0) * 0.37 / (1.0 + (double) (i % 7));
    double *copy = (double *) malloc (S_COUNT * sizeof (double));
    CHECK (copy, "out of memory");
    memcpy (copy, x, S_COUNT * sizeof (double));
    lp_result_t *r = lp_view_scatter (all, "xs", xs);
    LPT_WAIT_OK (r, "scatter");
    lp_result_destroy (&r);

    r = lp_view_execute (all, "local lo, i = xs:min () local hi, j = xs:max () "
                              "return {#xs, xs:sum (), lo, i, hi, j}");
    LPT_WAIT_OK (r, "sum, min, max");
    size_t start = 0;
    for (int e = 0; e < lp_result_count (r); e++) {
        const lp_value_t *v = lp_result_value (r, e);
        CHECK (v && lp_value_type (v) == LP_ARRAY && lp_value_len (v) == 6,
               "engine %d: not a list of 6", lp_result_engine (r, e));
        size_t n = (size_t) lp_value_as_int (lp_value_at (v, 0));
        double sum = 0, lo = copy [start], hi = copy [start];
        int64_t lo_at = 1, hi_at = 1;
        for (size_t k = 0; k < n; k++) {
            double y = copy [start + k];
            sum += y;
            if (y < lo) { lo = y; lo_at = (int64_t) k + 1; }
            if (y > hi) { hi = y; hi_at = (int64_t) k + 1; }
        }
        CHECK (lp_value_as_number (lp_value_at (v, 1)) == sum,
               "engine %d: xs:sum () = %.17g, the in-order sum here is %.17g",
               lp_result_engine (r, e), lp_value_as_number (lp_value_at (v, 1)), sum);
        CHECK (lp_value_as_number (lp_value_at (v, 2)) == lo
               && lp_value_as_int (lp_value_at (v, 3)) == lo_at,
               "engine %d: xs:min () = %g at %lld, expected %g at %lld", lp_result_engine (r, e),
               lp_value_as_number (lp_value_at (v, 2)), (long long) lp_value_as_int (lp_value_at (v, 3)),
               lo, (long long) lo_at);
        CHECK (lp_value_as_number (lp_value_at (v, 4)) == hi
               && lp_value_as_int (lp_value_at (v, 5)) == hi_at,
               "engine %d: xs:max () = %g at %lld, expected %g at %lld", lp_result_engine (r, e),
               lp_value_as_number (lp_value_at (v, 4)), (long long) lp_value_as_int (lp_value_at (v, 5)),
               hi, (long long) hi_at);
        start += n;
    }
    CHECK (start == S_COUNT, "the chunks hold %zu elements, not %d", start, S_COUNT);
    lp_result_destroy (&r);

    //  In place: scale and add, then gather
    r = lpt_exec (all, "xs:scale (2):add (1) return true");
    lp_result_destroy (&r);
    r = lp_view_gather (all, "xs");
    LPT_WAIT_OK (r, "gather");
    const lp_value_t *back = lp_result_get (r);
    CHECK (back && lp_value_type (back) == LP_TYPED && lp_value_len (back) == S_COUNT,
           "gather did not give %d typed elements", S_COUNT);
    const double *y = (const double *) lp_value_typed_data (back);
    for (size_t i = 0; i < S_COUNT; i++)
        CHECK (y [i] == copy [i] * 2 + 1, "element %zu: %.17g, expected %.17g",
               i, y [i], copy [i] * 2 + 1);
    lp_result_destroy (&r);
    free (copy);

    //  Empty chunks: 3 elements over 4 engines
    lp_value_t *three = lp_value_typed (LP_DTYPE_F64, 3);
    r = lp_view_scatter (all, "few", three);
    LPT_WAIT_OK (r, "scatter of 3");
    lp_result_destroy (&r);
    r = lpt_exec (all, "return {#few, few:sum (), few:min () == nil, few:max () == nil}");
    int empty = 0;
    for (int e = 0; e < lp_result_count (r); e++) {
        const lp_value_t *v = lp_result_value (r, e);
        if (lp_value_as_int (lp_value_at (v, 0)) != 0)
            continue;
        empty++;
        CHECK (lp_value_type (lp_value_at (v, 1)) == LP_NUMBER
               && lp_value_as_number (lp_value_at (v, 1)) == 0.0,
               "engine %d: sum of an empty f64 array is not 0.0", lp_result_engine (r, e));
        CHECK (lp_value_as_bool (lp_value_at (v, 2)) && lp_value_as_bool (lp_value_at (v, 3)),
               "engine %d: min/max of an empty array are not nil", lp_result_engine (r, e));
    }
    CHECK (empty == lp_result_count (r) - 3, "%d engines got an empty chunk", empty);
    lp_result_destroy (&r);

    //  NaN and integer range, on one engine
    int ids [1];
    CHECK (lp_client_ids (client, ids, 1) >= 1, "no engine");
    lp_view_t *one = lp_client_view (client, ids, 1);
    r = lpt_exec (one, "local a = lp.array ('f64', {1, 0/0, -3}) local lo, i = a:min () "
                       "local hi, j = a:max () return {a:sum () ~= a:sum (), lo ~= lo, i, hi ~= hi, j}");
    lp_value_t *expect = lp_value_array ();
    lp_value_append (expect, lp_value_bool (true));
    lp_value_append (expect, lp_value_bool (true));
    lp_value_append (expect, lp_value_int (2));
    lp_value_append (expect, lp_value_bool (true));
    lp_value_append (expect, lp_value_int (2));
    CHECK (lp_value_equal (lp_result_value (r, 0), expect), "NaN: %s",
           lpt_show (lp_result_value (r, 0)));
    lp_value_destroy (&expect);
    lp_result_destroy (&r);
    r = lp_view_execute (one, "n = lp.array ('i32', {2, 2000000000}) n:scale (2)");
    LPT_WAIT (r, "i32 overflow");
    CHECK (lp_result_failed (r) == 1 && strstr (lp_result_evalue (r, 0), "out of range"),
           "i32 scale past the range: %s", lpt_errors (r));
    lp_result_destroy (&r);
    r = lpt_exec (one, "return n[1] + n[2]");
    LPT_EXPECT_INT (r, 0, 2000000002, "the i32 array after the failed scale");
    lp_result_destroy (&r);

    lp_view_destroy (&one);
    lp_view_destroy (&all);
    lp_client_destroy (&client);
    printf ("array_math: OK\n");
    return 0;
}
