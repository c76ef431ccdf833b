/*  engine_restart.c - a local engine that ends itself with LP_EXIT_STUCK
    is restarted by the controller under the same id (issue 8, contract 10)

    An engine ends its own process with exit status 75 (LP_EXIT_STUCK) when
    a request stayed stuck in a C call past its time limit plus a grace.
    Here the request does it directly (os.exit(75)), which is what the
    controller sees in that case. The request must end with TimeLimit,
    saying the engine was restarted and its state lost; an engine with the
    same id but a new process must come back (its globals gone) and serve.
    Before the change the request ended with EngineError and the engine
    never came back.
*/
#include "lp_testlib.h"

int
main (int argc, char **argv)
{
    lp_client_t *client = lpt_connect (argc, argv);
    int ids [16];
    int n = lp_client_ids (client, ids, 16);
    CHECK (n >= 2, "need 2 engines, have %d", n);
    int victim = ids [0];
    lp_view_t *view = lp_client_view (client, &victim, 1);
    CHECK (view, "lp_client_view: %s", lp_client_error (client));
    lp_result_t *r = lpt_exec (view, "x = 42 return x");
    LPT_EXPECT_INT (r, 0, 42, "x = 42");
    lp_result_destroy (&r);
    long pid = lpt_engine_pid (client, victim);

    //  The engine ends itself as a stuck one would
    r = lp_view_execute (view, "os.exit(75)");
    CHECK (r, "lp_view_execute: %s", lp_client_error (client));
    int rc = lp_result_wait (r, LPT_DEADLINE_MS);
    CHECK (rc == LP_OK, "the request whose engine exited 75 got no reply within %d ms",
           LPT_DEADLINE_MS);
    CHECK (lp_result_failed (r) == 1, "the request whose engine exited 75 did not fail");
    const char *ename = lp_result_ename (r, 0);
    const char *err = lp_result_error (r, 0);
    lpt_say ("engine %d (pid %ld) exited 75: %s: %s", victim, pid, ename ? ename : "(NULL)",
             err ? err : "(NULL)");
    CHECK (ename && strcmp (ename, "TimeLimit") == 0, "ename is '%s', expected TimeLimit",
           ename ? ename : "(NULL)");
    CHECK (err && strstr (err, "engine restarted, its state was lost"),
           "error does not say the engine was restarted: %s", err ? err : "(NULL)");
    lp_result_destroy (&r);

    //  The same id comes back, in a new process
    double t0 = lpt_now_ms ();
    long new_pid = -1;
    while (lpt_now_ms () - t0 < LPT_DEADLINE_MS) {
        lp_value_t *status = lp_client_status (client, 5000);
        const lp_value_t *row = lpt_status_row (status, victim);
        const lp_value_t *p = row ? lp_value_get (row, "pid") : NULL;
        const lp_value_t *state = row ? lp_value_get (row, "state") : NULL;
        if (p && lp_value_as_int (p) != pid && state) {
            new_pid = (long) lp_value_as_int (p);
            lp_value_destroy (&status);
            break;
        }
        lp_value_destroy (&status);
        lp_client_poll (client, 50);
    }
    CHECK (new_pid > 0, "engine %d did not come back in a new process within %d ms", victim,
           LPT_DEADLINE_MS);
    lpt_say ("engine %d is back as pid %ld after %.0f ms", victim, new_pid, lpt_now_ms () - t0);
    //  Requests to it work again (the client may need a moment to hear of
    //  the registration), and its state was lost
    t0 = lpt_now_ms ();
    while (true) {
        r = lp_view_execute (view, "return x == nil and 1 or 2");
        if (r && lp_result_wait (r, LPT_DEADLINE_MS) == LP_OK && lp_result_failed (r) == 0)
            break;
        CHECK (lpt_now_ms () - t0 < LPT_DEADLINE_MS, "the restarted engine %d does not serve: %s",
               victim, r ? lpt_errors (r) : lp_client_error (client));
        lp_result_destroy (&r);
        lp_client_poll (client, 100);
    }
    LPT_EXPECT_INT (r, 0, 1, "x after the restart (state lost)");
    lp_result_destroy (&r);
    r = lpt_exec (view, "return 6 * 7");
    LPT_EXPECT_INT (r, 0, 42, "6 * 7 on the restarted engine");
    lp_result_destroy (&r);
    CHECK (lp_client_ids (client, ids, 16) == n, "engine count changed from %d", n);
    lp_view_destroy (&view);
    lp_client_destroy (&client);
    printf ("engine_restart: OK\n");
    return 0;
}
