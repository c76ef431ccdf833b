/*  engine_oversize.c - a result over the frame cap ends with an error
    (issue 8, observation 4)

    A result larger than the 128 MiB frame cap (a table of 3*10^7 numbers,
    integers and floats mixed, about 210 MB of msgpack: a sequence of only
    integers or only floats would travel out of band as a typed array) ends quickly with a SerializationError naming
    the cap, for execute and for pull, and the engine keeps serving direct
    requests afterwards. Before the fix the reply never arrived (the
    controller cut the engine's mux connection, which never reconnected,
    so every later direct request to that engine failed too).
*/
#include "lp_testlib.h"

//  Runs code on view and expects a SerializationError naming the cap,
//  within 60 s.
static void
s_expect_too_big (lp_view_t *view, const char *code, const char *what)
{
    double t0 = lpt_now_ms ();
    lp_result_t *r = lp_view_execute (view, code);
    CHECK (r, "%s: execute returned NULL", what);
    int rc = lp_result_wait (r, 60000);
    CHECK (rc == 0, "%s: no reply within 60 s (a result over the frame cap must end "
           "with a SerializationError)", what);
    const char *ename = lp_result_ename (r, 0);
    const char *evalue = lp_result_evalue (r, 0);
    CHECK (ename && strcmp (ename, "SerializationError") == 0,
           "%s: ename %s (%s), expected SerializationError", what, ename? ename: "(none)",
           evalue? evalue: "");
    CHECK (evalue && strstr (evalue, "exceeds the 128 MiB frame cap"),
           "%s: evalue '%s' does not name the frame cap", what, evalue? evalue: "");
    lpt_say ("%s -> %s: %s (%.1f s)", what, ename, evalue, (lpt_now_ms () - t0) / 1000);
    lp_result_destroy (&r);
}

int
main (int argc, char **argv)
{
    printf ("engine_oversize:\n");
    lp_client_t *client = lpt_connect (argc, argv);
    int ids[64];
    int n = lp_client_ids (client, ids, 64);
    CHECK (n >= 1, "no engines");

    //  Observation 4: results over the frame cap
    lp_view_t *view = lp_client_view (client, &ids[0], 1);
    CHECK (view, "no view: %s", lp_client_error (client));
    s_expect_too_big (view,
        "local t = {} for i = 1, 3 * 10^7 do t[i] = i % 2 == 0 and i or i + 0.5 end return t",
        "return a table of 3*10^7 mixed numbers");
    lp_result_t *r = lpt_exec (view, "big = {} for i = 1, 3 * 10^7 do big[i] = i % 2 == 0 and i or i + 0.5 end");
    lp_result_destroy (&r);
    r = lp_view_pull (view, "big");
    CHECK (r && lp_result_wait (r, 60000) == 0, "pull of a 210 MB table: no reply within 60 s");
    CHECK (lp_result_ename (r, 0) && strcmp (lp_result_ename (r, 0), "SerializationError") == 0,
           "pull of a 210 MB table: ename %s, expected SerializationError",
           lp_result_ename (r, 0)? lp_result_ename (r, 0): "(none)");
    lpt_say ("pull of a 210 MB table -> %s: %s", lp_result_ename (r, 0), lp_result_evalue (r, 0));
    lp_result_destroy (&r);
    r = lpt_exec (view, "big = nil return 6 * 7");
    LPT_EXPECT_INT (r, 0, 42, "a direct request after the oversize results");
    lp_result_destroy (&r);
    lpt_say ("engine %d still serves direct requests", ids[0]);
    lp_view_destroy (&view);

    lp_client_destroy (&client);
    printf ("engine_oversize: OK\n");
    return 0;
}
