/*  oversize_request - a request past the frame cap fails at once

    Issue 8, observation 4 (client part): a client pushing a 180 MB table
    hung: the controller refuses frames over LP_MAX_FRAME_BYTES (128 MiB)
    by closing the connection, and the request was never answered. Now
    the client checks the encoded frames before sending: the call fails
    at once with LP_ETOOBIG and "request of N bytes exceeds the 128 MiB
    frame cap" (or, should the codec send such values out of band in
    small frames, the request simply succeeds). Either way it ends well
    within the deadline, and the client stays usable.
*/
#include "lp_testlib.h"

#define BIG_STRINGS     180             //  strings of 1 MiB: ~180 MB of msgpack
#define BIG_STRING      (1024 * 1024)
#define QUICK_MS        20000           //  "at once", on a busy machine

//  A table (array) of 180 strings of 1 MiB each.
static lp_value_t *
s_big_table (void)
{
    char *text = (char *) malloc (BIG_STRING);
    CHECK (text, "out of memory");
    memset (text, 'x', BIG_STRING);
    lp_value_t *array = lp_value_array ();
    CHECK (array, "out of memory");
    for (int i = 0; i < BIG_STRINGS; i++)
        CHECK (lp_value_append (array, lp_value_lstring (text, BIG_STRING)) == 0, "out of memory");
    free (text);
    return array;
}

//  r is the call's result (NULL when it failed at once). Checks it ended
//  within QUICK_MS since t0 as LP_ETOOBIG or as a success.
static void
s_check_ends (lp_client_t *client, lp_result_t *r, double t0, const char *what)
{
    if (!r) {
        CHECK (lp_client_errcode (client) == LP_ETOOBIG,
               "%s failed with %d (%s): %s, expected LP_ETOOBIG", what,
               lp_client_errcode (client), lp_strerror (lp_client_errcode (client)),
               lp_client_error (client));
        CHECK (strstr (lp_client_error (client), "exceeds the 128 MiB frame cap")
            && strstr (lp_client_error (client), "request of "),
               "%s: unclear error: %s", what, lp_client_error (client));
        CHECK (lpt_now_ms () - t0 < QUICK_MS, "%s took %.0f ms to fail", what, lpt_now_ms () - t0);
        lpt_say ("%s: failed at once: %s", what, lp_client_error (client));
        return;
    }
    int rc = lp_result_wait (r, LPT_DEADLINE_MS);
    CHECK (rc == LP_OK, "%s: %s after %.0f ms (the request hangs): %s", what,
           lp_strerror (rc), lpt_now_ms () - t0, lp_client_error (client));
    CHECK (lp_result_failed (r) == 0, "%s: %s", what, lpt_errors (r));
    lpt_say ("%s: sent out of band and succeeded in %.0f ms", what, lpt_now_ms () - t0);
    lp_result_destroy (&r);
}

int
main (int argc, char **argv)
{
    lp_client_t *client = lpt_connect (argc, argv);
    int target = 0;
    CHECK (lp_client_ids (client, &target, 1) >= 1, "no engine");
    lp_view_t *dv = lp_client_view (client, &target, 1);
    lp_view_t *lb = lp_client_balanced (client);
    CHECK (dv && lb, "views: %s", lp_client_error (client));

    double t0 = lpt_now_ms ();
    s_check_ends (client, lp_view_push (dv, "big", s_big_table ()), t0, "push of a 180 MB table");

    lp_value_t *args = lp_value_array ();
    CHECK (args && lp_value_append (args, s_big_table ()) == 0, "out of memory");
    t0 = lpt_now_ms ();
    s_check_ends (client, lp_view_apply (lb, "function (t) return #t end", args), t0,
                  "load-balanced apply with a 180 MB argument");

    //  The client and the controller connection still work
    lp_result_t *r = lp_view_execute (dv, "return 6 * 7");
    LPT_WAIT_OK (r, "execute after the oversize requests");
    CHECK (lp_value_as_int (lp_result_get (r)) == 42, "6 * 7 gave %s", lpt_show (lp_result_get (r)));
    lp_result_destroy (&r);
    lpt_say ("the connection still works");

    lp_view_destroy (&dv);
    lp_view_destroy (&lb);
    lp_client_destroy (&client);
    printf ("oversize_request: OK\n");
    return 0;
}
