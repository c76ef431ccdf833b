/*  engine_death.c - a killed engine is noticed at once, a busy one is not

    kill -9 of an engine mid-request: the request ends with an error naming
    the death within 4 s, the engine leaves the id list, the others keep
    working, and requests to the dead id fail at once. An engine busy for
    10 s in a Lua loop is alive and is never declared dead.
*/
#include "lp_testlib.h"
#include <signal.h>
#include <sys/types.h>

//  Safety: only kill a process that really is an lpengine.
static void
s_check_is_engine (long pid)
{
    char path[64], cmd[4096] = "";
    snprintf (path, sizeof path, "/proc/%ld/cmdline", pid);
    FILE *f = fopen (path, "r");
    CHECK (f, "engine pid %ld: cannot open %s (no such process?)", pid, path);
    size_t got = fread (cmd, 1, sizeof cmd - 1, f);
    fclose (f);
    cmd[got] = 0;
    CHECK (strstr (cmd, "lpengine"), "pid %ld reported for the engine is '%s', not an lpengine; "
           "refusing to kill it", pid, cmd);
}

static void
s_kill_mid_request (lp_client_t *client, int victim, int *ids, int n)
{
    lp_view_t *view = lp_client_view (client, &victim, 1);
    lp_result_t *r = lp_view_execute (view,
        "local t = os.clock() while os.clock() - t < 60 do end return 'finished?'");
    CHECK (r, "lp_view_execute: %s", lp_client_error (client));
    lpt_wait_busy (client, victim);
    long pid = lpt_engine_pid (client, victim);
    s_check_is_engine (pid);

    double t0 = lpt_now_ms ();
    CHECK (kill ((pid_t) pid, SIGKILL) == 0, "kill(%ld, SIGKILL) failed", pid);
    int rc = lp_result_wait (r, LPT_DEADLINE_MS);
    double elapsed = lpt_now_ms () - t0;
    CHECK (rc == LP_OK, "the request to killed engine %d got no reply within %d ms", victim, LPT_DEADLINE_MS);
    CHECK (lp_result_failed (r) == 1, "the request to killed engine %d did not fail (value %s)",
           victim, lpt_show (lp_result_value (r, 0)));
    const char *err = lp_result_error (r, 0);
    lpt_say ("engine %d (pid %ld) killed: request failed after %.0f ms with: %s", victim, pid, elapsed, err);
    CHECK (elapsed < 4500, "the death of engine %d was reported after %.0f ms, expected < 4000 ms "
           "(4500 with noise)", victim, elapsed);
    CHECK (err && strstr (err, "died"), "error does not say the engine died: %s", err ? err : "(NULL)");
    const char *ename = lp_result_ename (r, 0);
    CHECK (ename && strcmp (ename, "EngineError") == 0, "ename is '%s', expected EngineError",
           ename ? ename : "(NULL)");
    lp_result_destroy (&r);

    //  the id list drops it
    double t1 = lpt_now_ms ();
    while (lpt_has_id (client, victim) && lpt_now_ms () - t1 < LPT_DEADLINE_MS)
        lp_client_poll (client, 50);
    CHECK (!lpt_has_id (client, victim), "engine %d still listed by lp_client_ids %.0f ms after its death",
           victim, lpt_now_ms () - t1);
    lp_value_t *status = lp_client_status (client, LPT_DEADLINE_MS);
    CHECK (status, "lp_client_status: %s", lp_client_error (client));
    CHECK (lpt_status_row (status, victim) == NULL, "dead engine %d still in status: %s",
           victim, lpt_show (status));
    lp_value_destroy (&status);

    //  requests to the dead id fail at once
    double t2 = lpt_now_ms ();
    r = lp_view_execute (view, "1");
    if (r) {
        rc = lp_result_wait (r, LPT_DEADLINE_MS);
        CHECK (rc == LP_OK, "a request to dead engine %d got no reply within %d ms", victim, LPT_DEADLINE_MS);
        CHECK (lp_result_failed (r) == 1, "a request to dead engine %d succeeded", victim);
        lpt_say ("request to dead engine %d: %s (%.0f ms)", victim, lp_result_error (r, 0),
                 lpt_now_ms () - t2);
        lp_result_destroy (&r);
    }
    else
        lpt_say ("request to dead engine %d refused by the client: %s", victim, lp_client_error (client));
    lp_view_destroy (&view);

    //  the others still answer
    int others[64], m = 0;
    for (int i = 0; i < n; i++)
        if (ids[i] != victim)
            others[m++] = ids[i];
    lp_view_t *rest = lp_client_view (client, others, m);
    r = lpt_exec (rest, "10 * 10");
    CHECK (lp_result_count (r) == m, "%d replies from %d surviving engines", lp_result_count (r), m);
    for (int i = 0; i < m; i++)
        LPT_EXPECT_INT (r, i, 100, "10 * 10 on the surviving engines");
    lp_result_destroy (&r);
    lp_view_destroy (&rest);
    lp_view_t *all = lp_client_view (client, NULL, 0);
    CHECK (lp_view_targets (all, others, 64) == m, "view on all engines targets %d, expected %d",
           lp_view_targets (all, others, 64), m);
    r = lpt_exec (all, "'still here'");
    CHECK (lp_result_count (r) == m, "view on all after the death: %d replies, expected %d",
           lp_result_count (r), m);
    lp_result_destroy (&r);
    lp_view_destroy (&all);
    lpt_say ("the %d other engines still answer: ok", m);
}

static void
s_busy_is_alive (lp_client_t *client, int engine)
{
    lp_view_t *view = lp_client_view (client, &engine, 1);
    double t0 = lpt_now_ms ();
    lp_result_t *r = lp_view_execute (view,
        "local t = os.clock() while os.clock() - t < 10 do end return 'survived'");
    CHECK (r, "lp_view_execute: %s", lp_client_error (client));
    int rc = lp_result_wait (r, 90000);
    CHECK (rc == LP_OK, "10 s busy loop on engine %d: no reply within 90 s", engine);
    CHECK (lp_result_failed (r) == 0, "engine %d busy for 10 s in Lua failed: %s (a busy engine "
           "must not be declared dead)", engine, lpt_errors (r));
    const lp_value_t *v = lp_result_value (r, 0);
    CHECK (v && lp_value_as_string (v, NULL) && strcmp (lp_value_as_string (v, NULL), "survived") == 0,
           "busy loop returned %s", lpt_show (v));
    CHECK (lpt_has_id (client, engine), "engine %d vanished from the ids while busy", engine);
    lp_result_destroy (&r);
    r = lpt_exec (view, "'alive'");
    lp_result_destroy (&r);
    lp_view_destroy (&view);
    lpt_say ("engine %d busy for 10 s of CPU (%.0f ms wall) stayed registered and answered", engine,
             lpt_now_ms () - t0);
}

int
main (int argc, char **argv)
{
    printf ("engine_death:\n");
    lp_client_t *client = lpt_connect (argc, argv);
    int ids[64];
    int n = lp_client_ids (client, ids, 64);
    CHECK (n >= 3, "need 3 engines, have %d", n);
    s_busy_is_alive (client, ids[2]);
    s_kill_mid_request (client, ids[1], ids, n);
    lp_client_destroy (&client);
    printf ("engine_death: OK\n");
    return 0;
}
