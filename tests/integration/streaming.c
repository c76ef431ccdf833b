/*  streaming.c - output printed by a running request reaches the client
    while the request is still running, and all of it comes with the reply.
*/
#include "lp_testlib.h"

int
main (int argc, char **argv)
{
    printf ("streaming:\n");
    lp_client_t *client = lpt_connect (argc, argv);
    int ids[64];
    int n = lp_client_ids (client, ids, 64);
    CHECK (n >= 1, "no engines");
    int engine = ids[n - 1];
    lp_view_t *view = lp_client_view (client, &engine, 1);
    CHECK (view, "lp_client_view: %s", lp_client_error (client));

    const char *code =
        "print('first line')\n"
        "local t = os.clock()\n"
        "while os.clock() - t < 3 do end\n"
        "io.write('last line\\n')\n"
        "return 'done'";
    double t0 = lpt_now_ms ();
    lp_result_t *r = lp_view_execute (view, code);
    CHECK (r, "lp_view_execute: %s", lp_client_error (client));
    bool seen_early = false;
    double seen_at = 0;
    while (lpt_now_ms () - t0 < LPT_DEADLINE_MS) {
        lp_client_poll (client, 20);
        bool ready = lp_result_ready (r);
        const char *out = lp_result_stdout (r, 0);
        if (out && strstr (out, "first line")) {
            //  the request busy-loops 3 s of CPU after the first print;
            //  seeing the line now proves it was streamed, not sent with the reply
            CHECK (!ready, "'first line' appeared only once the request had completed "
                   "(after %.0f ms): output is not streamed", lpt_now_ms () - t0);
            CHECK (!strstr (out, "last line"), "'last line' already in the streamed output");
            seen_early = true;
            seen_at = lpt_now_ms () - t0;
            break;
        }
        CHECK (!ready, "request completed after %.0f ms but no 'first line' was ever seen "
               "while it ran (stdout so far: '%s')", lpt_now_ms () - t0, out ? out : "(NULL)");
    }
    CHECK (seen_early, "'first line' not seen within %d ms", LPT_DEADLINE_MS);
    lpt_say ("'first line' streamed %.0f ms after the request was sent, while it ran", seen_at);

    LPT_WAIT_OK (r, "the printing request");
    double done_at = lpt_now_ms () - t0;
    const char *out = lp_result_stdout (r, 0);
    CHECK (out, "lp_result_stdout is NULL after completion");
    const char *first = strstr (out, "first line");
    const char *last = strstr (out, "last line");
    CHECK (first && last && first < last, "final stdout should hold both lines in order, is: '%s'", out);
    CHECK (strstr (first + 1, "first line") == NULL,
           "'first line' appears twice in stdout (stream + reply duplicated?): '%s'", out);
    const lp_value_t *v = lp_result_value (r, 0);
    CHECK (v && lp_value_as_string (v, NULL) && strcmp (lp_value_as_string (v, NULL), "done") == 0,
           "request returned %s, expected \"done\"", lpt_show (v));
    lpt_say ("completed after %.0f ms with stdout '%s'", done_at, out);
    lp_result_destroy (&r);

    //  a later request starts with empty output
    r = lpt_exec (view, "1");
    out = lp_result_stdout (r, 0);
    CHECK (out && strlen (out) == 0, "a request that prints nothing has stdout '%s'", out ? out : "(NULL)");
    lp_result_destroy (&r);

    lp_view_destroy (&view);
    lp_client_destroy (&client);
    printf ("streaming: OK\n");
    return 0;
}
