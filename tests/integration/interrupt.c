/*  interrupt.c - a runaway loop on an engine can be interrupted

    The running request ends with an Interrupted error within a deadline,
    the engine's globals survive, a loop hidden behind pcall still stops,
    and interrupting an idle engine does not break its next request.
*/
#include "lp_testlib.h"

#define INTERRUPT_DEADLINE_MS 10000

static void
s_interrupt_running (lp_client_t *client, lp_view_t *view, int engine, const char *code)
{
    //  The interrupt must reach the engine once the request runs: its
    //  first output, streamed on iopub, says so. (Status shows "busy" as
    //  soon as the controller has forwarded the request, which may be
    //  before the engine took it up; an interrupt then finds it idle.)
    char marked [256];
    snprintf (marked, sizeof marked, "print('running') %s", code);
    double t_start = lpt_now_ms ();
    lp_result_t *r = lp_view_execute (view, marked);
    CHECK (r, "lp_view_execute: %s", lp_client_error (client));
    while (!strstr (lp_result_stdout (r, 0) ? lp_result_stdout (r, 0) : "", "running")) {
        CHECK (!lp_result_ready (r), "'%s' completed by itself: %s", code, lpt_errors (r));
        CHECK (lpt_now_ms () - t_start < LPT_DEADLINE_MS, "'%s' never started within %d ms",
               code, LPT_DEADLINE_MS);
        lp_client_poll (client, 50);
    }
    double busy_ms = lpt_now_ms () - t_start;

    double t0 = lpt_now_ms ();
    lp_result_t *ir = lp_view_interrupt (view);
    CHECK (ir, "lp_view_interrupt: %s", lp_client_error (client));
    LPT_WAIT_OK (ir, "interrupt request");
    const lp_value_t *iv = lp_result_value (ir, 0);
    lp_result_destroy (&ir);

    int rc = lp_result_wait (r, INTERRUPT_DEADLINE_MS);
    double elapsed = lpt_now_ms () - t0;
    CHECK (rc == LP_OK, "'%s' still running %d ms after the interrupt", code, INTERRUPT_DEADLINE_MS);
    CHECK (lp_result_failed (r) == 1, "interrupted '%s' did not fail: value %s", code,
           lpt_show (lp_result_value (r, 0)));
    const char *ename = lp_result_ename (r, 0);
    CHECK (ename && strcmp (ename, "Interrupted") == 0, "interrupted '%s' ended with '%s', expected "
           "Interrupted (error: %s)", code, ename ? ename : "(NULL)", lpt_errors (r));
    char tag[32];
    snprintf (tag, sizeof tag, "[engine %d]", engine);
    CHECK (strstr (lp_result_error (r, 0), tag), "error does not name the engine: %s",
           lp_result_error (r, 0));
    lpt_say ("'%s': running after %.0f ms, Interrupted %.0f ms after the interrupt", code, busy_ms, elapsed);
    (void) iv;
    lp_result_destroy (&r);
}

static void
s_check_global (lp_view_t *view, const char *when)
{
    lp_result_t *r = lpt_exec (view, "survivor .. '/' .. tostring(count)");
    const lp_value_t *v = lp_result_value (r, 0);
    CHECK (v && lp_value_as_string (v, NULL) && strcmp (lp_value_as_string (v, NULL), "kept/3") == 0,
           "%s: globals read %s, expected \"kept/3\"", when, lpt_show (v));
    lp_result_destroy (&r);
}

int
main (int argc, char **argv)
{
    printf ("interrupt:\n");
    lp_client_t *client = lpt_connect (argc, argv);
    int ids[64];
    int n = lp_client_ids (client, ids, 64);
    CHECK (n >= 3, "need 3 engines, have %d", n);
    int engine = ids[2];
    lp_view_t *view = lp_client_view (client, &engine, 1);
    lp_result_t *r = lpt_exec (view, "survivor = 'kept'; count = 3");
    lp_result_destroy (&r);

    s_interrupt_running (client, view, engine, "while true do end");
    s_check_global (view, "after interrupting a plain loop");

    s_interrupt_running (client, view, engine,
                         "while true do pcall(function() while true do end end) end");
    s_check_global (view, "after interrupting a pcall loop");

    s_interrupt_running (client, view, engine,
                         "local s = 0 while true do s = s + #string.rep('x', 100) end");
    s_check_global (view, "after interrupting a loop calling C functions");

    //  interrupting an idle engine is harmless
    lp_result_t *ir = lp_view_interrupt (view);
    LPT_WAIT_OK (ir, "interrupt of an idle engine");
    lp_result_destroy (&ir);
    r = lpt_exec (view, "local t = os.clock() while os.clock() - t < 0.5 do end return 'not interrupted'");
    const lp_value_t *v = lp_result_value (r, 0);
    CHECK (v && lp_value_as_string (v, NULL) && strcmp (lp_value_as_string (v, NULL), "not interrupted") == 0,
           "request after an idle interrupt gave %s", lpt_show (v));
    lp_result_destroy (&r);
    s_check_global (view, "after an idle interrupt");
    lpt_say ("interrupt of an idle engine leaves the next request alone: ok");

    //  the other engines were never disturbed
    lp_view_t *all = lp_client_view (client, NULL, 0);
    r = lpt_exec (all, "2 + 3");
    for (int i = 0; i < lp_result_count (r); i++)
        LPT_EXPECT_INT (r, i, 5, "2 + 3 on all engines");
    lp_result_destroy (&r);
    lp_view_destroy (&all);
    lp_view_destroy (&view);
    lp_client_destroy (&client);
    printf ("interrupt: OK\n");
    return 0;
}
