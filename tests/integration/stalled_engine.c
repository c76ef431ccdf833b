/*  stalled_engine.c - an engine that stops answering heartbeats is dead

    SIGSTOP freezes an engine (heartbeat thread included) mid-request: the
    controller must declare it dead after max_misses heartbeat periods
    (3 x 1000 ms by default), fail its request, drop it from the ids, and
    keep serving the others. The engine is continued (SIGCONT) afterwards
    and must register again under its old id (the controller tells it, in
    answer to its pongs, that it counts as dead, and it drops the request
    that was already failed for its client).
*/
#include "lp_testlib.h"
#include <signal.h>
#include <sys/types.h>

static long stopped_pid = -1;

static void
s_continue (void)
{
    if (stopped_pid > 0)
        kill ((pid_t) stopped_pid, SIGCONT);
}

int
main (int argc, char **argv)
{
    printf ("stalled_engine:\n");
    lp_client_t *client = lpt_connect (argc, argv);
    int ids[64];
    int n = lp_client_ids (client, ids, 64);
    CHECK (n >= 2, "need 2 engines");
    int victim = ids[n - 1];
    lp_view_t *view = lp_client_view (client, &victim, 1);
    lp_result_t *r = lp_view_execute (view, "local t = os.clock() while os.clock() - t < 60 do end");
    CHECK (r, "lp_view_execute: %s", lp_client_error (client));
    lpt_wait_busy (client, victim);
    long pid = lpt_engine_pid (client, victim);
    char path[64], cmd[512] = "";
    snprintf (path, sizeof path, "/proc/%ld/cmdline", pid);
    FILE *f = fopen (path, "r");
    CHECK (f, "engine pid %ld not running", pid);
    cmd[fread (cmd, 1, sizeof cmd - 1, f)] = 0;
    fclose (f);
    CHECK (strstr (cmd, "lpengine"), "pid %ld is '%s', not an lpengine", pid, cmd);

    atexit (s_continue);
    stopped_pid = pid;
    double t0 = lpt_now_ms ();
    CHECK (kill ((pid_t) pid, SIGSTOP) == 0, "SIGSTOP failed");
    int rc = lp_result_wait (r, LPT_DEADLINE_MS);
    double elapsed = lpt_now_ms () - t0;
    CHECK (rc == LP_OK, "request to the stalled engine %d: no reply within %d ms", victim, LPT_DEADLINE_MS);
    CHECK (lp_result_failed (r) == 1, "request to a stalled engine succeeded?");
    const char *err = lp_result_error (r, 0);
    lpt_say ("engine %d stalled: request failed after %.0f ms: %s", victim, elapsed, err);
    CHECK (err && strstr (err, "died"), "error does not say the engine died: %s", err ? err : "(NULL)");
    CHECK (elapsed >= 1500, "declared dead after only %.0f ms: a few missed heartbeats are expected "
           "first", elapsed);
    CHECK (elapsed < 8000, "declared dead after %.0f ms, expected about 3000 (3 x 1000 ms heartbeats)",
           elapsed);
    lp_result_destroy (&r);
    double t1 = lpt_now_ms ();
    while (lpt_has_id (client, victim) && lpt_now_ms () - t1 < LPT_DEADLINE_MS)
        lp_client_poll (client, 50);
    CHECK (!lpt_has_id (client, victim), "stalled engine %d still listed", victim);

    lp_view_t *all = lp_client_view (client, NULL, 0);
    r = lpt_exec (all, "'fine'");
    CHECK (lp_result_count (r) == n - 1, "%d replies from the %d live engines", lp_result_count (r), n - 1);
    lp_result_destroy (&r);
    lp_view_destroy (&all);
    lpt_say ("the other %d engines still answer", n - 1);

    kill ((pid_t) pid, SIGCONT);
    stopped_pid = -1;
    double t2 = lpt_now_ms ();
    while (!lpt_has_id (client, victim) && lpt_now_ms () - t2 < LPT_DEADLINE_MS) {
        int now[64];
        lp_client_ids (client, now, 64);
        lp_client_poll (client, 100);
    }
    CHECK (lpt_has_id (client, victim), "engine %d did not register again within %d ms of SIGCONT",
           victim, LPT_DEADLINE_MS);
    lpt_say ("%.0f ms after SIGCONT, engine %d is registered again under its old id",
             lpt_now_ms () - t2, victim);
    lp_view_t *back = lp_client_view (client, &victim, 1);
    r = lpt_exec (back, "lp.id");
    CHECK (lp_result_get (r) && lp_value_as_int (lp_result_get (r)) == victim,
           "engine %d after its return: %s", victim, lpt_errors (r));
    lp_result_destroy (&r);
    lp_view_destroy (&back);
    lp_view_destroy (&view);
    lp_client_destroy (&client);
    printf ("stalled_engine: OK\n");
    return 0;
}
