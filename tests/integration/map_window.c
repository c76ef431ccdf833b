/*  map_window.c - a load-balanced map longer than the replay window

    The controller refuses requests dated more than its replay window ago
    (docs/protocol.md, "Replays"). A map of many tasks used to put them all
    on the wire at once: those that waited in socket queues behind the
    scheduler's backpressure longer than the window were refused with
    ProtocolError. The client now keeps at most a window of tasks in flight
    and signs the others with a fresh date when they go out.

    Run with the controller's replay window cut to 2 s (CMake sets
    LP_TEST_CONTROLLER_ARGS), so that 20,000 one-item tasks of 1 ms take several
    windows: every one must come back with its own value. (With at most
    4096 in flight, no more than the scheduler reads at once, a task is
    verified as it arrives, however long the tasks take.) Then a second
    map is aborted at once: the tasks the client still holds end Aborted
    without ever being sent.
*/
#include "lp_testlib.h"

#define NITEMS 20000

int
main (int argc, char **argv)
{
    lp_client_t *client = lpt_connect (argc, argv);
    lp_view_t *lb = lp_client_balanced (client);
    CHECK (lb, "balanced view: %s", lp_client_error (client));
    lp_view_set_chunksize (lb, 1);
    lp_value_t *items = lp_value_array ();
    CHECK (items, "out of memory");
    for (int i = 0; i < NITEMS; i++)
        CHECK (lp_value_append (items, lp_value_int (i)) == 0, "out of memory");
    double t0 = lpt_now_ms ();
    lp_result_t *r = lp_view_map (lb, "function (x) lp.sleep(0.001) return x * 2 end", items);
    CHECK (r, "map: %s", lp_client_error (client));
    int rc = lp_result_wait (r, 300000);
    CHECK (rc == LP_OK, "map of %d: %s after %.0f ms", NITEMS, lp_strerror (rc),
           lpt_now_ms () - t0);
    CHECK (lp_result_failed (r) == 0, "%d of %d tasks failed, e.g. %s", lp_result_failed (r),
           lp_result_count (r), lpt_errors (r));
    const lp_value_t *values = lp_result_get (r);
    CHECK (values && lp_value_type (values) == LP_ARRAY && lp_value_len (values) == NITEMS,
           "map returned %s", lpt_show (values));
    for (int i = 0; i < NITEMS; i++)
        CHECK (lp_value_as_int (lp_value_at (values, (size_t) i)) == 2 * i,
               "item %d came back as %s", i, lpt_show (lp_value_at (values, (size_t) i)));
    lpt_say ("%d tasks in %.1f s through a 2 s replay window, all answered",
             NITEMS, (lpt_now_ms () - t0) / 1000);
    lp_result_destroy (&r);

    //  Abort of a map whose tail the client still holds: every held task
    //  ends Aborted without being sent, every other one ends once, and
    //  the abort itself is prompt however long the backlog.
    items = lp_value_array ();
    CHECK (items, "out of memory");
    for (int i = 0; i < NITEMS; i++)
        CHECK (lp_value_append (items, lp_value_int (i)) == 0, "out of memory");
    r = lp_view_map (lb, "function (x) lp.sleep(0.01) return x end", items);
    CHECK (r, "map: %s", lp_client_error (client));
    t0 = lpt_now_ms ();
    int aborted = lp_result_abort (r);
    double abort_ms = lpt_now_ms () - t0;
    CHECK (aborted >= NITEMS - 4096 - 1, "abort of a map of %d with at most 4096 in flight "
           "aborted only %d (%s)", NITEMS, aborted, lp_client_error (client));
    rc = lp_result_wait (r, 300000);
    CHECK (rc == LP_OK, "aborted map: %s", lp_strerror (rc));
    int ok = 0, cut = 0;
    for (int i = 0; i < lp_result_count (r); i++) {
        const char *ename = lp_result_ename (r, i);
        if (!ename)
            ok++;
        else {
            CHECK (strcmp (ename, "Aborted") == 0, "task %d of the aborted map: %s", i,
                   lp_result_error (r, i));
            cut++;
        }
    }
    CHECK (cut >= aborted, "%d aborted, but only %d slots say Aborted", aborted, cut);
    lpt_say ("abort of a %d-task map: %d aborted in %.0f ms, %d ran", NITEMS, aborted,
             abort_ms, ok);
    lp_result_destroy (&r);
    lp_view_destroy (&lb);
    lp_client_destroy (&client);
    printf ("map_window: OK\n");
    return 0;
}
