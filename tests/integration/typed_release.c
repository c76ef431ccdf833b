/*  typed_release.c - a received typed array changes hands without a copy
    (lp_result_take, lp_value_typed_release; issue 14)

    An engine returns an lp.array of 8 * 2^20 doubles (64 MiB). The client
    takes the value out of the result and the buffer out of the value: the
    pointer it gets is the very buffer the library decoded the reply into
    (no copy), and it stays valid after the value and the result are
    destroyed, until the caller frees it with the function it was given.
    Under ASan (LP_SANITIZE) a buffer freed too early, or twice, or never,
    is a report. Memory: the client's peak RSS grows by about one copy
    of the array (the decoded reply), not two.
*/
#include "lp_testlib.h"

#define N (8u << 20)

int
main (int argc, char **argv)
{
    lp_client_t *client = lpt_connect_n (argc, argv, 1);
    int ids [16];
    CHECK (lp_client_ids (client, ids, 16) >= 1, "no engine");
    lp_view_t *one = lp_client_view (client, &ids [0], 1);
    char code [256];
    snprintf (code, sizeof code,
              "local a = lp.array ('f64', %u) for i = 1, %u do a [i] = i * 0.5 end return a",
              N, N);
    lp_result_t *r = lp_view_execute (one, code);
    r = lpt_wait_ok_ms (r, 120000, "64 MiB lp.array");
    const lp_value_t *v = lp_result_value (r, 0);
    CHECK (v && lp_value_type (v) == LP_TYPED && lp_value_len (v) == N
           && lp_value_dtype (v) == LP_DTYPE_F64, "reply is %s", lpt_show (v));
    const void *decoded = lp_value_typed_data (v);
    long rss_before = lpt_proc_kb ((long) getpid (), "VmRSS");

    lp_value_t *own = lp_result_take (r, 0);
    CHECK (own && lp_value_typed_data (own) == decoded, "lp_result_take copied the value");
    CHECK (lp_value_type (lp_result_value (r, 0)) == LP_NIL, "the reply does not hold nil "
           "after the take");
    CHECK (lp_result_take (r, 5) == NULL && lp_client_errcode (client) == LP_EINVAL,
           "take of a reply out of range");
    size_t count = lp_value_len (own);
    void (*free_fn) (void *) = NULL;
    CHECK (lp_value_typed_release (own, NULL) == NULL, "release without free_fn_p");
    double *data = (double *) lp_value_typed_release (own, &free_fn);
    CHECK (data == decoded, "lp_value_typed_release gave %p, the decoded buffer is %p",
           (void *) data, decoded);
    CHECK (free_fn != NULL, "no free function");
    CHECK (lp_value_type (own) == LP_NIL, "the released value is not nil");
    CHECK (lp_value_typed_release (own, &free_fn) == NULL, "a second release gave a buffer");
    lp_value_destroy (&own);
    lp_result_destroy (&r);                 //  the buffer outlives both
    long rss_after = lpt_proc_kb ((long) getpid (), "VmRSS");
    for (size_t i = 0; i < count; i++)
        CHECK (data [i] == (i + 1) * 0.5, "element %zu is %g", i, data [i]);
    free_fn (data);

    //  A buffer the caller lent without a free function cannot be given
    double lent [4] = { 1, 2, 3, 4 };
    lp_value_t *borrowed = lp_value_typed_take (LP_DTYPE_F64, lent, 4, NULL);
    CHECK (lp_value_typed_release (borrowed, &free_fn) == NULL, "a borrowed buffer was released");
    lp_value_destroy (&borrowed);
    lp_value_t *nottyped = lp_value_int (3);
    CHECK (lp_value_typed_release (nottyped, &free_fn) == NULL, "an integer was released");
    lp_value_destroy (&nottyped);

    lpt_say ("%zu doubles (%zu MiB) taken without a copy; client RSS %ld kB with the reply, "
             "%ld kB after the result went (the buffer is the caller's)", count,
             count * 8 >> 20, rss_before, rss_after);
    CHECK (rss_after > rss_before - 16 * 1024, "the buffer's pages went with the result "
           "(RSS %ld -> %ld kB)", rss_before, rss_after);
    lp_view_destroy (&one);
    lp_client_destroy (&client);
    printf ("typed_release: ok\n");
    return 0;
}
