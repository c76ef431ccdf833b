/*  abort_queued - lp_result_abort reaches requests queued on engines

    Issue 8, observation 6: lp_result_abort left tasks already queued on
    an engine (within hwm) running, and direct requests could not be
    aborted at all. Now the client asks the scheduler (task channel), then
    each engine that holds pending requests (control channel, the engines
    of the scheduler's `assigned` and the targets of direct slots).

    1. Direct: engine E runs a 2 s request; three more wait in its queue.
       Aborting those three: 3 aborted, each ends with Aborted; aborting
       the running one: 0 aborted, lp_result_not_aborted names it; it
       ends with its value.
    2. Load-balanced, targets {E}: task 1 runs, task 2 sits queued on E
       (hwm 2), tasks 3..4 wait in the scheduler. Aborting 2..4 aborts all
       three (the one on the engine too); task 1 ends with its value.
*/
#include "lp_testlib.h"

#define streq(a,b) (strcmp ((a), (b)) == 0)

static void
s_check_aborted (lp_result_t *r, const char *what)
{
    int rc = lp_result_wait (r, LPT_DEADLINE_MS);
    CHECK (rc == LP_OK, "%s: %s", what, lp_strerror (rc));
    for (int i = 0; i < lp_result_count (r); i++)
        CHECK (lp_result_ename (r, i) && streq (lp_result_ename (r, i), "Aborted"),
               "%s: reply %d is not Aborted: %s", what, i,
               lp_result_error (r, i)? lp_result_error (r, i): lpt_show (lp_result_value (r, i)));
}

//  Waits until engine id has `running` tasks running and `queued` tasks queued
//  (load-balanced), per the queue status.
static void
s_wait_engine_tasks (lp_client_t *client, int id, int running, int queued)
{
    double until = lpt_now_ms () + LPT_DEADLINE_MS;
    while (true) {
        lp_value_t *status = lp_client_queue_status (client, LPT_DEADLINE_MS);
        CHECK (status, "queue status: %s", lp_client_error (client));
        const lp_value_t *engines = lp_value_get (status, "engines");
        bool ok = false;
        for (size_t i = 0; engines && i < lp_value_len (engines); i++) {
            const lp_value_t *row = lp_value_at (engines, i);
            if (lp_value_as_int (lp_value_get (row, "id")) == id)
                ok = lp_value_as_int (lp_value_get (row, "tasks_running")) == running
                  && lp_value_as_int (lp_value_get (row, "tasks_queued")) == queued;
        }
        lp_value_destroy (&status);
        if (ok)
            return;
        CHECK (lpt_now_ms () < until, "engine %d never had %d running + %d queued tasks",
               id, running, queued);
        lp_client_poll (client, 50);
    }
}

int
main (int argc, char **argv)
{
    lp_client_t *client = lpt_connect (argc, argv);
    int ids [8];
    CHECK (lp_client_ids (client, ids, 8) >= 2, "engines");
    int e = ids [1];

    //  1. Direct requests queued on one engine
    lp_view_t *dv = lp_client_view (client, &e, 1);
    lp_result_t *running = lp_view_execute (dv, "lp.sleep (2) return 'slept'");
    lp_result_t *queued = NULL;
    lp_result_t *more [2] = { NULL, NULL };
    CHECK (running, "execute: %s", lp_client_error (client));
    //  Wait until it runs (the engine reports busy), then queue three more
    double until = lpt_now_ms () + LPT_DEADLINE_MS;
    while (true) {
        lp_value_t *engines = lp_client_status (client, LPT_DEADLINE_MS);
        CHECK (engines, "status: %s", lp_client_error (client));
        bool busy = false;
        for (size_t i = 0; i < lp_value_len (engines); i++) {
            const lp_value_t *row = lp_value_at (engines, i);
            const lp_value_t *state = lp_value_get (row, "state");
            if (lp_value_as_int (lp_value_get (row, "id")) == e && state
            &&  streq (lp_value_as_string (state, NULL), "busy"))
                busy = true;
        }
        lp_value_destroy (&engines);
        if (busy)
            break;
        CHECK (lpt_now_ms () < until, "engine %d never busy", e);
        lp_client_poll (client, 20);
    }
    queued = lp_view_execute (dv, "return 'ran 1'");
    more [0] = lp_view_execute (dv, "return 'ran 2'");
    more [1] = lp_view_execute (dv, "return 'ran 3'");
    CHECK (queued && more [0] && more [1], "execute: %s", lp_client_error (client));
    int n = lp_result_abort (queued);
    CHECK (n == 1, "abort of a direct request queued on engine %d: %d aborted (%s)",
           e, n, n < 0? lp_client_error (client): lpt_show (lp_result_not_aborted (queued)));
    for (int k = 0; k < 2; k++) {
        n = lp_result_abort (more [k]);
        CHECK (n == 1, "abort of queued request %d: %d aborted", k + 2, n);
    }
    //  (the Aborted replies come when the engine reaches them, after the
    //  running request: abort that one first)
    n = lp_result_abort (running);
    CHECK (n == 0, "the running request was aborted (%d)", n);
    const lp_value_t *rest = lp_result_not_aborted (running);
    CHECK (rest && lp_value_len (rest) == 1
        && streq (lp_value_as_string (lp_value_get (lp_value_at (rest, 0), "msg_id"), NULL),
                  lp_result_msg_id (running, 0)),
           "not_aborted: %s", lpt_show (rest));
    s_check_aborted (queued, "queued direct request");
    s_check_aborted (more [0], "queued direct request 2");
    s_check_aborted (more [1], "queued direct request 3");
    LPT_WAIT_OK (running, "the running request");
    CHECK (streq (lp_value_as_string (lp_result_get (running), NULL), "slept"), "running request value");
    lpt_say ("direct: 3 queued requests on engine %d aborted, the running one not (%s)",
             e, lpt_show (rest));
    lp_result_destroy (&running);
    lp_result_destroy (&queued);
    lp_result_destroy (&more [0]);
    lp_result_destroy (&more [1]);

    //  2. Tasks: one running and one queued on the engine, two in the scheduler
    lp_view_t *lb = lp_client_balanced (client);
    CHECK (lb && lp_view_set_targets (lb, &e, 1) == 0, "balanced view");
    lp_result_t *first = lp_view_execute (lb, "lp.sleep (2) return 'first'");
    CHECK (first, "task: %s", lp_client_error (client));
    lp_view_set_chunksize (lb, 1);
    lp_result_t *rest_tasks = lp_view_map (lb, "function (x) return x end", lp_value_int_range (2, 4));
    CHECK (rest_tasks && lp_result_count (rest_tasks) == 3, "map: %s", lp_client_error (client));
    s_wait_engine_tasks (client, e, 1, 1);
    n = lp_result_abort (rest_tasks);
    CHECK (n == 3, "abort of 3 tasks (1 queued on engine %d, 2 in the scheduler): %d aborted (%s)",
           e, n, n < 0? lp_client_error (client): lpt_show (lp_result_not_aborted (rest_tasks)));
    s_check_aborted (rest_tasks, "tasks");
    LPT_WAIT_OK (first, "the running task");
    CHECK (streq (lp_value_as_string (lp_result_get (first), NULL), "first"), "first task value");
    lpt_say ("tasks: the one queued on engine %d and the two in the scheduler aborted", e);
    lp_result_destroy (&first);
    lp_result_destroy (&rest_tasks);

    //  The engine is idle with an empty queue afterwards
    lp_result_t *r = lp_view_execute (dv, "return 1");
    LPT_WAIT_OK (r, "execute after the aborts");
    lp_result_destroy (&r);

    lp_view_destroy (&lb);
    lp_view_destroy (&dv);
    lp_client_destroy (&client);
    printf ("abort_queued: OK\n");
    return 0;
}
