/*  typed_sum.c - scatter a typed array, work on the chunks, gather them back

    Usage: typed_sum [lp-client.json [count]]
    Scatters `count` doubles 0, 1, 2, ... over all engines (each engine gets
    an lp.array chunk, sent as raw frames), doubles every element on the
    engines, gathers the result and checks it; also sums the chunks on the
    engines and adds the partial sums up.

    Build outside the tree:  cc typed_sum.c $(pkg-config --cflags --libs luaparallel)
*/
#include <luaparallel.h>
#include <stdio.h>
#include <stdlib.h>

static const char *s_double_it =
    "for i = 1, #xs do xs[i] = xs[i] * 2 end";
static const char *s_sum_it =
    "local s = 0.0 for i = 1, #xs do s = s + xs[i] end return s";

//  Waits for r, prints its first error; 0 when every reply succeeded.
static int
s_check (lp_client_t *client, lp_result_t *r)
{
    if (!r || lp_result_wait (r, 60000) != LP_OK) {
        fprintf (stderr, "typed_sum: %s\n", lp_client_error (client));
        return -1;
    }
    for (int i = 0; i < lp_result_count (r); i++)
        if (lp_result_error (r, i)) {
            fprintf (stderr, "typed_sum: %s\n", lp_result_error (r, i));
            return -1;
        }
    return 0;
}

int
main (int argc, char *argv [])
{
    const char *file = argc > 1? argv [1]: NULL;
    size_t count = argc > 2? (size_t) atoll (argv [2]): 1000000;
    lp_client_t *client = lp_client_connect (file, 5000);
    if (!client) {
        fprintf (stderr, "typed_sum: %s\n", lp_last_error ());
        return 1;
    }
    int rc = 1;
    lp_view_t *all = lp_client_view (client, NULL, 0);
    lp_result_t *r = NULL;
    if (!all || lp_client_wait_for_engines (client, 1, 10000)) {
        fprintf (stderr, "typed_sum: %s\n", lp_client_error (client));
        goto done;
    }
    lp_value_t *xs = lp_value_typed (LP_DTYPE_F64, count);
    if (!xs)
        goto done;
    double *data = (double *) lp_value_typed_data (xs);
    for (size_t i = 0; i < count; i++)
        data [i] = (double) i;

    r = lp_view_scatter (all, "xs", xs);            //  xs is taken
    if (s_check (client, r))
        goto done;
    lp_result_destroy (&r);
    r = lp_view_execute (all, s_double_it);
    if (s_check (client, r))
        goto done;
    lp_result_destroy (&r);

    r = lp_view_execute (all, s_sum_it);
    if (s_check (client, r))
        goto done;
    double sum = 0;
    for (int i = 0; i < lp_result_count (r); i++)
        sum += lp_value_as_number (lp_result_value (r, i));
    lp_result_destroy (&r);

    r = lp_view_gather (all, "xs");
    if (s_check (client, r))
        goto done;
    const lp_value_t *whole = lp_result_get (r);
    if (!whole || lp_value_type (whole) != LP_TYPED || lp_value_len (whole) != count) {
        fprintf (stderr, "typed_sum: gather did not give %zu doubles\n", count);
        goto done;
    }
    const double *back = (const double *) lp_value_typed_data (whole);
    for (size_t i = 0; i < count; i++)
        if (back [i] != 2.0 * (double) i) {
            fprintf (stderr, "typed_sum: element %zu is %g\n", i, back [i]);
            goto done;
        }
    double expected = (double) count * (double) (count - 1);
    printf ("sum of 2*i for i < %zu = %.0f (expected %.0f) on %d engines\n",
            count, sum, expected, lp_result_count (r));
    rc = sum == expected? 0: 1;
done:
    lp_result_destroy (&r);
    lp_view_destroy (&all);
    lp_client_destroy (&client);
    return rc;
}
