/*  engine_stuck.c - a request stuck inside one C call past its time limit
    (issue 8, observation 9)

    string.find with a pattern that backtracks exponentially (40 "a*"
    against 40 a's and no match: about 10^23 steps) is one C call that no
    Lua hook interrupts. With time_limit 1000 ms the engine's heart thread
    waits LP_STUCK_GRACE_MSEC (5 s) more, then ends the process (exit
    status LP_EXIT_STUCK); the controller answers the request with an
    error. The test asserts that the request ends with an error within 15 s,
    that the stuck engine's process is gone, and that the cluster keeps
    serving on the other engines. The same for an interrupt (no time
    limit) that a C call ignores (os.execute of a child that sleeps; the
    child announces itself in a file, so the interrupt is sent only once
    the engine is inside the call). The controller sees the engine's exit
    status and ends the request with TimeLimit.
    Before the fix the engine stayed busy forever.
*/
#include "lp_testlib.h"
#include <errno.h>
#include <signal.h>

//  True while pid runs (a zombie counts as gone)
static bool
s_alive (long pid)
{
    char path[64], stat[512];
    snprintf (path, sizeof path, "/proc/%ld/stat", pid);
    FILE *f = fopen (path, "r");
    if (!f)
        return false;
    size_t n = fread (stat, 1, sizeof stat - 1, f);
    fclose (f);
    stat[n] = 0;
    const char *close = strrchr (stat, ')');
    return close && close[1] == ' ' && close[2] != 'Z' && close[2] != 'X';
}

int
main (int argc, char **argv)
{
    printf ("engine_stuck:\n");
    lp_client_t *client = lpt_connect (argc, argv);
    int ids[64];
    int n = lp_client_ids (client, ids, 64);
    CHECK (n >= 2, "need two engines, have %d", n);
    int stuck = ids[n - 1];
    long pid = lpt_engine_pid (client, stuck);
    lp_view_t *view = lp_client_view (client, &stuck, 1);
    CHECK (view, "no view: %s", lp_client_error (client));
    lp_view_set_time_limit (view, 1000);

    double t0 = lpt_now_ms ();
    lp_result_t *r = lp_view_execute (view,
        "return string.find (string.rep ('a', 40) .. 'b', string.rep ('a*', 40) .. 'c')");
    CHECK (r, "execute: %s", lp_client_error (client));
    int rc = lp_result_wait (r, 20000);
    double elapsed = (lpt_now_ms () - t0) / 1000;
    CHECK (rc == LP_OK, "a request stuck in string.find with time_limit 1000 ms has not ended "
           "after %.1f s", elapsed);
    const char *ename = lp_result_ename (r, 0);
    CHECK (ename && strcmp (ename, "TimeLimit") == 0,
           "the stuck request ended with %s (%s), expected TimeLimit", ename? ename: "a value",
           lp_result_evalue (r, 0)? lp_result_evalue (r, 0): "");
    CHECK (elapsed < 15, "the stuck request took %.1f s to end (time limit 1 s + 5 s grace)", elapsed);
    lpt_say ("stuck request -> %s: %s (%.1f s)", ename, lp_result_evalue (r, 0), elapsed);
    lp_result_destroy (&r);
    lp_view_destroy (&view);

    double t1 = lpt_now_ms ();
    while (s_alive (pid) && lpt_now_ms () - t1 < LPT_DEADLINE_MS)
        lp_client_poll (client, 50);
    CHECK (!s_alive (pid), "the stuck engine's process %ld still runs", pid);
    lpt_say ("engine %d (pid %ld) ended itself", stuck, pid);

    //  An interrupt that a C call ignores: no time limit. os.execute
    //  blocks inside system () until its child ends; the child writes its
    //  pid to a file first, so once the file exists the engine is inside
    //  that one C call (no window where a Lua hook could still stop it).
    //  The test ends the child by that pid after the engine is gone.
    CHECK (n >= 3, "need three engines, have %d", n);
    int second = ids[n - 2];
    long pid2 = lpt_engine_pid (client, second);
    char dir[] = "/tmp/lp_stuck.XXXXXX";
    CHECK (mkdtemp (dir), "mkdtemp: %s", strerror (errno));
    char marker[64], code[256];
    snprintf (marker, sizeof marker, "%s/child.pid", dir);
    snprintf (code, sizeof code, "return os.execute ('echo $$ > %s.tmp && mv %s.tmp %s && exec sleep 60')",
              marker, marker, marker);
    view = lp_client_view (client, &second, 1);
    CHECK (view, "no view: %s", lp_client_error (client));
    r = lp_view_execute (view, code);
    CHECK (r, "execute: %s", lp_client_error (client));
    t1 = lpt_now_ms ();
    long child = 0;
    while (!child) {
        FILE *f = fopen (marker, "r");
        if (f) {
            CHECK (fscanf (f, "%ld", &child) == 1 && child > 0, "no pid in %s", marker);
            fclose (f);
            break;
        }
        CHECK (lpt_now_ms () - t1 < LPT_DEADLINE_MS && !lp_result_ready (r),
               "the stuck request did not start its child within %d ms", LPT_DEADLINE_MS);
        lp_client_poll (client, 20);
    }
    t0 = lpt_now_ms ();
    lp_result_t *ir = lp_view_interrupt (view);
    LPT_WAIT_OK (ir, "interrupt of a request stuck in C");
    lp_result_destroy (&ir);
    rc = lp_result_wait (r, 20000);
    elapsed = (lpt_now_ms () - t0) / 1000;
    kill ((pid_t) child, SIGKILL);
    unlink (marker);
    rmdir (dir);
    CHECK (rc == LP_OK, "a request stuck in os.execute has not ended %.1f s after an interrupt",
           elapsed);
    ename = lp_result_ename (r, 0);
    CHECK (ename && strcmp (ename, "TimeLimit") == 0,
           "the interrupted stuck request ended with %s (%s)", ename? ename: "a value",
           lp_result_evalue (r, 0)? lp_result_evalue (r, 0): "");
    CHECK (elapsed < 15, "the interrupted stuck request took %.1f s to end (5 s grace)", elapsed);
    lpt_say ("interrupted stuck request -> %s: %s (%.1f s)", ename, lp_result_evalue (r, 0), elapsed);
    lp_result_destroy (&r);
    lp_view_destroy (&view);
    t1 = lpt_now_ms ();
    while (s_alive (pid2) && lpt_now_ms () - t1 < LPT_DEADLINE_MS)
        lp_client_poll (client, 50);
    CHECK (!s_alive (pid2), "the second stuck engine's process %ld still runs", pid2);

    //  The others keep serving, directly and through the scheduler
    lp_view_t *others = lp_client_view (client, ids, n - 2);
    CHECK (others, "no view: %s", lp_client_error (client));
    r = lpt_exec (others, "return lp.id");
    for (int i = 0; i < n - 2; i++)
        LPT_EXPECT_INT (r, i, lp_result_engine (r, i), "lp.id of another engine");
    lp_result_destroy (&r);
    lp_view_destroy (&others);
    lp_view_t *lb = lp_client_balanced (client);
    CHECK (lb, "no load-balanced view: %s", lp_client_error (client));
    for (int i = 0; i < n; i++) {
        r = lp_view_execute (lb, "return 6 * 7");
        LPT_WAIT_OK (r, "a task after the stuck engine ended");
        LPT_EXPECT_INT (r, 0, 42, "a task after the stuck engine ended");
        lp_result_destroy (&r);
    }
    lp_view_destroy (&lb);
    lpt_say ("the other engines keep serving");

    lp_client_destroy (&client);
    printf ("engine_stuck: OK\n");
    return 0;
}
