/*  controller_alive - a live controller is never taken for lost

    Guards the lost-controller detection of issue 8 against false alarms
    (the kill -9 case is tests/shell/lost_controller.sh):
    1. a direct request that runs 5 s (longer than lost_after, 3 s) while
       the controller is alive ends with its value;
    2. the same with lost_after 1000 ms;
    3. a client that did not poll for 4 s (the program was busy elsewhere)
       is not lost when it waits again;
    4. lp_client_set_lost_after (0) disables the detection;
    5. lp_strerror names every code.
*/
#include "lp_testlib.h"
#include <unistd.h>

#define streq(a,b) (strcmp ((a), (b)) == 0)

static void
s_long_request (lp_client_t *client, lp_view_t *dv, const char *what)
{
    lp_result_t *r = lp_view_execute (dv, "lp.sleep (5) return 'done'");
    CHECK (r, "%s: %s", what, lp_client_error (client));
    int rc = lp_result_wait (r, LPT_DEADLINE_MS);
    CHECK (rc == LP_OK, "%s: lp_result_wait gave %s: %s", what, lp_strerror (rc),
           lp_client_error (client));
    CHECK (lp_result_failed (r) == 0, "%s: %s", what, lpt_errors (r));
    CHECK (!lp_client_lost (client), "%s: client says lost", what);
    lp_result_destroy (&r);
    lpt_say ("%s: ended with its value", what);
}

int
main (int argc, char **argv)
{
    lp_client_t *client = lpt_connect (argc, argv);
    int target = 0;
    CHECK (lp_client_ids (client, &target, 1) >= 1, "no engine");
    lp_view_t *dv = lp_client_view (client, &target, 1);
    CHECK (dv, "view: %s", lp_client_error (client));

    s_long_request (client, dv, "5 s request, lost_after 3000 ms");
    lp_client_set_lost_after (client, 1000);
    s_long_request (client, dv, "5 s request, lost_after 1000 ms");
    lp_client_set_lost_after (client, 3000);

    sleep (4);                          //  the program is busy elsewhere
    lp_result_t *r = lp_view_execute (dv, "return 1");
    LPT_WAIT_OK (r, "request after 4 s without polling");
    lp_result_destroy (&r);
    lpt_say ("a client idle for 4 s is not lost");

    lp_client_set_lost_after (client, 0);
    s_long_request (client, dv, "5 s request, detection off");

    for (int code = LP_OK; code <= LP_EINTR; code++)
        CHECK (lp_strerror (code) && *lp_strerror (code)
            && !streq (lp_strerror (code), "unknown error"), "lp_strerror (%d)", code);
    CHECK (streq (lp_strerror (LP_ELOST), "controller lost"), "lp_strerror (LP_ELOST)");
    CHECK (streq (lp_strerror (-7), "unknown error"), "lp_strerror (-7)");

    lp_view_destroy (&dv);
    lp_client_destroy (&client);
    printf ("controller_alive: OK\n");
    return 0;
}
