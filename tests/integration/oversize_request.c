/*  oversize_request - large requests go; only a header past the frame
    cap fails, at once, with LP_ETOOBIG

    Issue 8, observation 4 (client part): a client pushing a 180 MB table
    hung. Then the client refused requests over 128 MiB with LP_ETOOBIG;
    now values travel in pieces of at most 1 MiB (protocol.md, "Frame
    sizes") and the client has no size limit of its own (issue 9): a push
    of a 180 MB table and a load-balanced apply with it as argument must
    succeed. What still cannot be sent is a header over the 2 MiB frame
    cap (here: a task after 70,000 others, whose msg_ids it lists): that
    call fails at once with LP_ETOOBIG, "header of N bytes exceeds the
    2 MiB frame cap" (it was LP_EINVAL), and the client stays usable.
*/
#include "lp_testlib.h"

#define BIG_STRINGS     180             //  strings of 1 MiB: ~180 MB of msgpack
#define BIG_STRING      (1024 * 1024)
#define QUICK_MS        20000           //  "at once", on a busy machine
#define AFTER_TASKS     70000           //  msg_ids: ~2.6 MB of header

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

//  r is the call's result: it must succeed within the deadline.
static void
s_check_ok (lp_client_t *client, lp_result_t *r, double t0, const char *what)
{
    CHECK (r, "%s failed at once: %s (%s)", what, lp_strerror (lp_client_errcode (client)),
           lp_client_error (client));
    int rc = lp_result_wait (r, LPT_DEADLINE_MS);
    CHECK (rc == LP_OK, "%s: %s after %.0f ms (the request hangs): %s", what,
           lp_strerror (rc), lpt_now_ms () - t0, lp_client_error (client));
    CHECK (lp_result_failed (r) == 0, "%s: %s", what, lpt_errors (r));
    lpt_say ("%s: succeeded in %.0f ms", what, lpt_now_ms () - t0);
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
    s_check_ok (client, lp_view_push (dv, "big", s_big_table ()), t0, "push of a 180 MB table");
    lp_result_t *r = lp_view_execute (dv, "local n = #big big = nil collectgarbage () return n");
    LPT_WAIT_OK (r, "length of the pushed table");
    LPT_EXPECT_INT (r, 0, BIG_STRINGS, "length of the pushed table");
    lp_result_destroy (&r);

    lp_value_t *args = lp_value_array ();
    CHECK (args && lp_value_append (args, s_big_table ()) == 0, "out of memory");
    t0 = lpt_now_ms ();
    s_check_ok (client, lp_view_apply (lb, "function (t) return #t end", args), t0,
                "load-balanced apply with a 180 MB argument");

    //  A header past the frame cap: a task after AFTER_TASKS others
    lp_value_t *items = lp_value_typed (LP_DTYPE_I64, AFTER_TASKS);
    CHECK (items, "out of memory");
    memset (lp_value_typed_data (items), 0, AFTER_TASKS * sizeof (int64_t));
    lp_result_t *many = lp_view_map (lb, "function (x) return x end", items);
    CHECK (many, "map of %d tasks: %s", AFTER_TASKS, lp_client_error (client));
    lp_view_t *after = lp_view_dup (lb);
    CHECK (after && lp_view_set_after (after, &many, 1) == 0, "after: %s", lp_client_error (client));
    t0 = lpt_now_ms ();
    r = lp_view_execute (after, "return 1");
    CHECK (!r, "a request whose header lists %d msg_ids was sent", AFTER_TASKS);
    CHECK (lp_client_errcode (client) == LP_ETOOBIG,
           "a header past the cap failed with %d (%s): %s, expected LP_ETOOBIG",
           lp_client_errcode (client), lp_strerror (lp_client_errcode (client)),
           lp_client_error (client));
    CHECK (strstr (lp_client_error (client), "header of ")
        && strstr (lp_client_error (client), "exceeds the 2 MiB frame cap"),
           "unclear error: %s", lp_client_error (client));
    CHECK (lpt_now_ms () - t0 < QUICK_MS, "it took %.0f ms to fail", lpt_now_ms () - t0);
    lpt_say ("a task after %d others: failed at once: %s", AFTER_TASKS, lp_client_error (client));
    lp_view_destroy (&after);
    CHECK (lp_result_wait (many, LPT_DEADLINE_MS) == LP_OK && lp_result_failed (many) == 0,
           "the %d tasks: %s", AFTER_TASKS, lpt_errors (many));
    lp_result_destroy (&many);

    //  The client and the controller connection still work
    r = lp_view_execute (dv, "return 6 * 7");
    LPT_WAIT_OK (r, "execute after the large requests");
    CHECK (lp_value_as_int (lp_result_get (r)) == 42, "6 * 7 gave %s", lpt_show (lp_result_get (r)));
    lp_result_destroy (&r);
    lpt_say ("the connection still works");

    lp_view_destroy (&dv);
    lp_view_destroy (&lb);
    lp_client_destroy (&client);
    printf ("oversize_request: OK\n");
    return 0;
}
