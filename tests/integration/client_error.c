/*  client_error.c - lp_client_error and lp_client_errcode after a later
    success (issue 14): a failed call leaves its text and kind; the next
    call that sends or waits and succeeds clears them ("" and LP_OK), so a
    program never reads a stale failure. Also the text of a missing
    connection file, as docs/api.md shows it. Covered: a refused fetch, then a
    successful lp_client_ids; a wait that times out, then a wait that
    completes; a refused call on a view, then a successful call on it.
*/
#include "lp_testlib.h"

static void
s_expect_clear (lp_client_t *client, const char *after)
{
    CHECK (strcmp (lp_client_error (client), "") == 0,
           "after %s, lp_client_error still says \"%s\"", after, lp_client_error (client));
    CHECK (lp_client_errcode (client) == LP_OK,
           "after %s, lp_client_errcode is %d (%s), not LP_OK", after,
           lp_client_errcode (client), lp_strerror (lp_client_errcode (client)));
}

int
main (int argc, char **argv)
{
    //  0. The missing-file text docs/api.md "Connecting" shows
    const char *missing = "/nonexistent-lp-test/security/lp-client.json";
    CHECK (!lp_client_connect (missing, 1000), "connected with a missing file");
    char expect [256];
    snprintf (expect, sizeof expect, "%s: no such file", missing);
    CHECK (strcmp (lp_last_error (), expect) == 0,
           "missing file: \"%s\", docs/api.md says \"%s\"", lp_last_error (), expect);

    lp_client_t *client = lpt_connect (argc, argv);
    s_expect_clear (client, "connecting");

    //  1. A fetch of an unknown msg_id fails (LP_EINVAL), then ids succeeds.
    lp_result_t *none = lp_client_fetch (client, "no-such-request", LPT_DEADLINE_MS);
    CHECK (!none, "fetch of an unknown msg_id returned a result");
    CHECK (lp_client_errcode (client) == LP_EINVAL, "fetch: errcode %d, expected LP_EINVAL",
           lp_client_errcode (client));
    CHECK (strstr (lp_client_error (client), "no-such-request"),
           "fetch: error text does not name the msg_id: %s", lp_client_error (client));
    int ids [8];
    CHECK (lp_client_ids (client, ids, 8) == LPT_ENGINES, "lp_client_ids: %s",
           lp_client_error (client));
    s_expect_clear (client, "a successful lp_client_ids");

    //  2. A wait that times out, then the same result waited to the end.
    lp_view_t *one = lp_client_view (client, ids, 1);
    CHECK (one, "view: %s", lp_client_error (client));
    lp_result_t *r = lp_view_execute (one, "lp.sleep (0.5) return 7");
    CHECK (r, "execute: %s", lp_client_error (client));
    int rc = lp_result_wait (r, 0);
    CHECK (rc == LP_ETIMEOUT, "a 0 ms wait on a 0.5 s request gave %s", lp_strerror (rc));
    CHECK (lp_client_errcode (client) == LP_ETIMEOUT && *lp_client_error (client),
           "after a timed-out wait: errcode %d, text \"%s\"", lp_client_errcode (client),
           lp_client_error (client));
    LPT_WAIT_OK (r, "the sleeping request");
    s_expect_clear (client, "a wait that completed");
    lp_result_destroy (&r);

    //  3. A refused call (push without a value), then a successful execute.
    r = lp_view_push (one, "x", NULL);
    CHECK (!r, "push without a value was accepted");
    CHECK (strstr (lp_client_error (client), "missing value"),
           "push without a value: \"%s\"", lp_client_error (client));
    r = lp_view_execute (one, "return 1");
    CHECK (r, "execute: %s", lp_client_error (client));
    s_expect_clear (client, "a successful execute");
    LPT_WAIT_OK (r, "execute");
    lp_result_destroy (&r);

    lp_view_destroy (&one);
    lp_client_destroy (&client);
    printf ("client_error: OK\n");
    return 0;
}
