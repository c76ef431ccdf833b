/*  direct_targets - duplicate and excess targets, as the client sees them

    Issue 8, observation 7 (client part) and contract 9:
    1. Duplicate ids are folded in lp_client_view and lp_view_set_targets:
       {1, 1, 0} addresses engines 1 and 0 (first-occurrence order), one
       reply each; {2, 2, 2} one reply.
    2. A direct request naming more engines than are registered is refused
       by the controller with ONE ProtocolError reply (metadata engine -1);
       the client ends every slot of that request with it, at once.
    3. The engines' queues are back to 0 afterwards.
*/
#include "lp_testlib.h"

#define streq(a,b) (strcmp ((a), (b)) == 0)

int
main (int argc, char **argv)
{
    lp_client_t *client = lpt_connect (argc, argv);

    //  1. Folding
    int dup [] = { 1, 1, 0 };
    lp_view_t *dv = lp_client_view (client, dup, 3);
    CHECK (dv, "view: %s", lp_client_error (client));
    int ids [8];
    int n = lp_view_targets (dv, ids, 8);
    CHECK (n == 2 && ids [0] == 1 && ids [1] == 0, "targets of {1, 1, 0}: %d ids", n);
    lp_result_t *r = lp_view_execute (dv, "return lp.id");
    LPT_WAIT_OK (r, "execute on {1, 1, 0}");
    CHECK (lp_result_count (r) == 2, "{1, 1, 0}: %d replies, expected 2", lp_result_count (r));
    CHECK (streq (lpt_show (lp_result_get (r)), "{1, 0}"), "values %s", lpt_show (lp_result_get (r)));
    lp_result_destroy (&r);

    int three [] = { 2, 2, 2 };
    CHECK (lp_view_set_targets (dv, three, 3) == 0, "set_targets: %s", lp_client_error (client));
    r = lp_view_execute (dv, "return lp.id");
    LPT_WAIT_OK (r, "execute on {2, 2, 2}");
    CHECK (lp_result_count (r) == 1 && lp_value_as_int (lp_result_get (r)) == 2,
           "{2, 2, 2}: %d replies, %s", lp_result_count (r), lpt_show (lp_result_get (r)));
    lp_result_destroy (&r);
    int negative [] = { 0, -1 };
    CHECK (lp_view_set_targets (dv, negative, 2) == -1, "a negative id was accepted");
    lpt_say ("duplicates folded: {1, 1, 0} -> 2 replies, {2, 2, 2} -> 1");

    //  2. More targets than registered engines: refused as a whole
    int many [10];
    for (int i = 0; i < 10; i++)
        many [i] = i;
    CHECK (lp_view_set_targets (dv, many, 10) == 0, "set_targets");
    double t0 = lpt_now_ms ();
    r = lp_view_execute (dv, "return lp.id");
    LPT_WAIT (r, "execute on 10 targets with 4 engines");
    CHECK (lp_result_count (r) == 10, "%d slots", lp_result_count (r));
    for (int i = 0; i < 10; i++)
        CHECK (lp_result_ename (r, i) && streq (lp_result_ename (r, i), "ProtocolError"),
               "slot %d (engine %d): %s, expected the controller's ProtocolError",
               i, lp_result_engine (r, i),
               lp_result_error (r, i)? lp_result_error (r, i): lpt_show (lp_result_value (r, i)));
    lpt_say ("10 targets, 4 engines: every slot ended with '%s' in %.0f ms",
             lp_result_evalue (r, 0), lpt_now_ms () - t0);
    lp_result_destroy (&r);

    //  3. Queues are empty again
    double until = lpt_now_ms () + LPT_DEADLINE_MS;
    while (true) {
        lp_value_t *engines = lp_client_status (client, LPT_DEADLINE_MS);
        CHECK (engines, "status: %s", lp_client_error (client));
        long queued = 0;
        for (size_t i = 0; i < lp_value_len (engines); i++)
            queued += (long) lp_value_as_int (lp_value_get (lp_value_at (engines, i), "queue"));
        lp_value_destroy (&engines);
        if (queued == 0)
            break;
        CHECK (lpt_now_ms () < until, "engines still report %ld queued requests", queued);
        lp_client_poll (client, 50);
    }
    lpt_say ("every engine's queue is 0");
    lp_view_destroy (&dv);
    lp_client_destroy (&client);
    printf ("direct_targets: OK\n");
    return 0;
}
