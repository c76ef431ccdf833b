/*  lpsched.c - checks the defining behaviour of one scheduling scheme.
    Driven by tests/shell/schedulers.sh, which starts a controller with
    `--scheduler SCHEME --hwm 0` and 4 engines for each scheme.

    usage: lpsched lp-client.json SCHEME
      leastload   preload engines with 3, 2, 1, 0 long tasks (targets), then
                  6 untargeted ones: each engine must end with exactly 3;
                  a task never goes to a more loaded engine than another.
      lru         tasks one at a time to idle engines: every 4 consecutive
                  tasks cover the 4 engines, in the same rotation each time.
      plainrandom 10000 no-op tasks: each engine gets 2500 +- 5 sigma, and
                  not exactly 2500 each (that would be round-robin).
      weighted, twobin  engine 0 busy with 3 long tasks; of 100 quick tasks
                  sent one at a time it must get far less than its uniform
                  share of 25 (both picks must be engine 0 for it to win).
*/
#include "lp_check.h"
#include <luaparallel.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ENGINES 4
#define DEADLINE_MS 60000


static lp_client_t *client;
static lp_view_t *lb;

static lp_result_t *
s_task (const char *fn, int target)
{
    lp_view_set_targets (lb, target >= 0? &target: NULL, target >= 0? 1: 0);
    lp_result_t *r = lp_view_apply (lb, fn, NULL);
    CHECK (r, "apply: %s", lp_client_error (client));
    return r;
}

static void
s_wait (lp_result_t *r)
{
    CHECK (lp_result_wait (r, DEADLINE_MS) == LP_OK, "no result in %d ms", DEADLINE_MS);
    CHECK (lp_result_failed (r) == 0, "task failed: %s", lp_result_error (r, 0));
}

static void
s_counts (lp_result_t *r, int *counts)
{
    memset (counts, 0, ENGINES * sizeof (int));
    for (int i = 0; i < lp_result_count (r); i++) {
        int e = lp_result_engine (r, i);
        CHECK (e >= 0 && e < ENGINES, "task %d ran on engine %d", i, e);
        counts [e]++;
    }
}

static void
s_leastload (void)
{
    lp_result_t *tasks [16];
    int n = 0;
    const char *slow = "function() lp.sleep(1.5) return lp.id end";
    for (int e = 0; e < ENGINES; e++)
        for (int k = 0; k < 3 - e; k++)
            tasks [n++] = s_task (slow, e);
    for (int k = 0; k < 6; k++)
        tasks [n++] = s_task (slow, -1);
    int counts [ENGINES] = { 0 };
    for (int i = 0; i < n; i++) {
        s_wait (tasks [i]);
        counts [lp_result_engine (tasks [i], 0)]++;
        lp_result_destroy (&tasks [i]);
    }
    printf ("leastload: engines ran %d %d %d %d of the 12 tasks\n",
            counts [0], counts [1], counts [2], counts [3]);
    for (int e = 0; e < ENGINES; e++)
        CHECK (counts [e] == 3, "engine %d ran %d tasks: leastload must level 3,2,1,0 to 3 each", e, counts [e]);
}

static void
s_lru (void)
{
    int order [16];
    for (int i = 0; i < 16; i++) {
        lp_result_t *r = s_task ("function() return lp.id end", -1);
        s_wait (r);
        order [i] = lp_result_engine (r, 0);
        lp_result_destroy (&r);
    }
    printf ("lru: engines in order:");
    for (int i = 0; i < 16; i++)
        printf (" %d", order [i]);
    printf ("\n");
    for (int i = 0; i < 16; i++) {
        if (i >= ENGINES)
            CHECK (order [i] == order [i - ENGINES], "task %d went to engine %d, not the least "
                   "recently used engine %d", i, order [i], order [i - ENGINES]);
        for (int j = (i / ENGINES) * ENGINES; j < i; j++)
            CHECK (order [j] != order [i], "engine %d used twice in one round of %d", order [i], ENGINES);
    }
}

static void
s_plainrandom (void)
{
    lp_view_set_chunksize (lb, 1);
    lp_view_set_targets (lb, NULL, 0);
    lp_result_t *r = lp_view_map (lb, "function(x) return x end", lp_value_int_range (1, 10000));
    CHECK (r, "map: %s", lp_client_error (client));
    s_wait (r);
    int counts [ENGINES];
    s_counts (r, counts);
    printf ("plainrandom: 10000 tasks as %d %d %d %d\n", counts [0], counts [1], counts [2], counts [3]);
    double sigma = sqrt (10000 * 0.25 * 0.75);
    bool all_equal = true;
    for (int e = 0; e < ENGINES; e++) {
        CHECK (fabs (counts [e] - 2500.0) < 5 * sigma, "engine %d got %d tasks, outside 2500 +- %.0f",
               e, counts [e], 5 * sigma);
        if (counts [e] != 2500)
            all_equal = false;
    }
    CHECK (!all_equal, "exactly 2500 tasks each: that is round-robin, not random");
    lp_result_destroy (&r);
}

static void
s_favours_idle (const char *scheme)
{
    lp_result_t *busy [3];
    for (int k = 0; k < 3; k++)
        busy [k] = s_task ("function() lp.sleep(6) return lp.id end", 0);
    //  One quick task at a time, so every pick sees engine 0 loaded and
    //  the others idle: a task that does not finish at once is queued
    //  behind the long ones on engine 0; we go on without it.
    lp_result_t *quick [100];
    for (int i = 0; i < 100; i++) {
        quick [i] = s_task ("function() return lp.id end", -1);
        lp_result_wait (quick [i], 300);
    }
    int counts [ENGINES] = { 0 };
    for (int i = 0; i < 100; i++) {
        s_wait (quick [i]);
        counts [lp_result_engine (quick [i], 0)]++;
        lp_result_destroy (&quick [i]);
    }
    printf ("%s: with engine 0 busy (load 3, others 0), 100 quick tasks went %d %d %d %d\n",
            scheme, counts [0], counts [1], counts [2], counts [3]);
    //  twobin: engine 0 only when both picks are it (1/16); weighted: when
    //  both weighted picks are it (about 0.6%). Uniform would give 25.
    CHECK (counts [0] <= 15, "busy engine 0 got %d of 100 quick tasks (uniform: 25)", counts [0]);
    for (int e = 1; e < ENGINES; e++)
        CHECK (counts [e] >= 15, "idle engine %d got only %d of 100", e, counts [e]);
    for (int k = 0; k < 3; k++) {
        s_wait (busy [k]);
        lp_result_destroy (&busy [k]);
    }
}

int
main (int argc, char **argv)
{
    CHECK (argc == 3, "usage: lpsched lp-client.json SCHEME");
    client = lp_client_connect (argv [1], DEADLINE_MS);
    CHECK (client, "connect: %s", lp_last_error ());
    CHECK (lp_client_wait_for_engines (client, ENGINES, DEADLINE_MS) == 0, "%s", lp_client_error (client));
    lp_value_t *status = lp_client_status (client, DEADLINE_MS);
    CHECK (status, "status: %s", lp_client_error (client));
    lp_value_destroy (&status);
    lb = lp_client_balanced (client);
    CHECK (lb, "balanced: %s", lp_client_error (client));
    const char *scheme = argv [2];
    if (strcmp (scheme, "leastload") == 0)
        s_leastload ();
    else
    if (strcmp (scheme, "lru") == 0)
        s_lru ();
    else
    if (strcmp (scheme, "plainrandom") == 0)
        s_plainrandom ();
    else
    if (strcmp (scheme, "weighted") == 0 || strcmp (scheme, "twobin") == 0)
        s_favours_idle (scheme);
    else
        CHECK (0, "unknown scheme %s", scheme);
    lp_view_destroy (&lb);
    lp_client_destroy (&client);
    return 0;
}
