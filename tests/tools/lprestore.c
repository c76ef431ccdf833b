/*  lprestore - the client of tests/shell/controller_restore.sh (issue 11,
    "Controller restart")

    Usage: lprestore <lp-client.json> <engines> <tasks>

    Connects (lost_after 60 s: it rides out the restart), waits for the
    engines, pushes x = 42 to all of them, then submits <tasks>
    load-balanced tasks k = 1..<tasks>, each of which counts its own run
    on its engine (seen[k] = seen[k] + 1), sleeps 10 ms and returns lp.id;
    the last 100 with retries = 1, so the restored controller resubmits
    them (they are still queued when the controller dies).
    It prints "submitted", then "progress" once 100 results are in (the
    shell kills the controller with SIGKILL then and starts it again with
    --restore), and waits for every result with one 120 s deadline.

    Checks, once all are in:
    - the tasks with retries ended with a value (resubmitted);
    - every result ended: a value (the engine id) or a clear error
      (ControllerRestarted, or UnknownRequest for a task that the dead
      controller never recorded); none hangs;
    - the same engine ids as before are registered, each with x = 42
      (their Lua state outlived the controller);
    - no task ran twice: seen[k] <= 1 on each engine, and no k is on two
      engines; a task that returned a value ran where it said.
    Prints "ok N errors E (ControllerRestarted R, UnknownRequest U)" and
    "OK", exit 0; or what failed, exit 1.
*/
#include "lp_check.h"
#include <luaparallel.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define DEADLINE_MS     120000      //  for all the results together
#define PROGRESS_AT     100         //  results in when "progress" is said
#define MAX_ENGINES     64
#define RETRY_TASKS     100         //  the last ones, sent with retries 1

static long long
s_now_ms (void)
{
    struct timespec ts;
    clock_gettime (CLOCK_MONOTONIC, &ts);
    return (long long) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

//  Runs code on every engine of view, waits; the result
static lp_result_t *
s_all (lp_client_t *client, lp_view_t *view, const char *code)
{
    lp_result_t *r = lp_view_execute (view, code);
    CHECK (r, "execute %s: %s", code, lp_client_error (client));
    CHECK (lp_result_wait (r, 30000) == 0, "execute %s: no answer in 30 s", code);
    for (int i = 0; i < lp_result_count (r); i++)
        CHECK (!lp_result_error (r, i), "execute %s on engine %d: %s", code,
               lp_result_engine (r, i), lp_result_error (r, i));
    return r;
}

int
main (int argc, char **argv)
{
    if (argc != 4) {
        fprintf (stderr, "usage: lprestore <lp-client.json> <engines> <tasks>\n");
        return 2;
    }
    int nengines = atoi (argv [2]);
    int ntasks = atoi (argv [3]);
    CHECK (nengines > 0 && nengines <= MAX_ENGINES && ntasks > PROGRESS_AT, "bad arguments");

    lp_client_t *client = lp_client_connect (argv [1], 30000);
    CHECK (client, "connect: %s", lp_last_error ());
    lp_client_set_lost_after (client, 60000);
    CHECK (lp_client_wait_for_engines (client, nengines, 30000) == 0,
           "engines: %s", lp_client_error (client));
    int before [MAX_ENGINES], after [MAX_ENGINES];
    int count = lp_client_ids (client, before, MAX_ENGINES);
    CHECK (count == nengines, "%d engines registered, expected %d", count, nengines);

    lp_view_t *all = lp_client_view (client, NULL, 0);
    lp_result_t *r = lp_view_push (all, "x", lp_value_int (42));
    CHECK (r && lp_result_wait (r, 30000) == 0, "push x = 42: %s", lp_client_error (client));
    lp_result_destroy (&r);

    lp_view_t *lb = lp_client_balanced (client);
    lp_view_t *lb_retry = lp_client_balanced (client);
    CHECK (lb && lb_retry, "balanced view: %s", lp_client_error (client));
    lp_view_set_retries (lb_retry, 1);
    lp_result_t **tasks = (lp_result_t **) calloc ((size_t) ntasks, sizeof *tasks);
    CHECK (tasks, "out of memory");
    for (int k = 1; k <= ntasks; k++) {
        lp_value_t *args = lp_value_array ();
        lp_value_append (args, lp_value_int (k));
        tasks [k - 1] = lp_view_apply (k > ntasks - RETRY_TASKS? lb_retry: lb, "function (k) seen = seen or {}; "
                                       "seen [k] = (seen [k] or 0) + 1; lp.sleep (0.01); "
                                       "return lp.id end", args);
        CHECK (tasks [k - 1], "task %d: %s", k, lp_client_error (client));
    }
    printf ("submitted %d tasks\n", ntasks);
    fflush (stdout);

    long long deadline = s_now_ms () + DEADLINE_MS;
    int ok = 0, restarted = 0, unknown = 0, other = 0, hung = 0, retried_failed = 0;
    int *ran_on = (int *) calloc ((size_t) ntasks + 1, sizeof (int));
    CHECK (ran_on, "out of memory");
    for (int k = 1; k <= ntasks; k++) {
        lp_result_t *task = tasks [k - 1];
        long long left = deadline - s_now_ms ();
        if (lp_result_wait (task, left > 0? (int) left: 0) != 0) {
            if (hung++ < 5)
                fprintf (stderr, "task %d: no result within %d s\n", k, DEADLINE_MS / 1000);
            continue;
        }
        const char *error = lp_result_error (task, 0);
        if (error && k > ntasks - RETRY_TASKS && retried_failed++ < 5)
            fprintf (stderr, "task %d (retries 1, still queued when the controller died) "
                     "was not resubmitted: %s\n", k, error);
        if (!error) {
            ok++;
            ran_on [k] = (int) lp_value_as_int (lp_result_value (task, 0)) + 1;
        }
        else
        if (strstr (error, "ControllerRestarted"))
            restarted++;
        else
        if (strstr (error, "UnknownRequest"))
            unknown++;
        else
        if (other++ < 5)
            fprintf (stderr, "task %d: unexpected error: %s\n", k, error);
        if (k == PROGRESS_AT) {
            printf ("progress %d\n", k);
            fflush (stdout);
        }
    }
    printf ("ok %d errors %d (ControllerRestarted %d, UnknownRequest %d, other %d), hung %d\n",
            ok, restarted + unknown + other, restarted, unknown, other, hung);
    fflush (stdout);
    CHECK (hung == 0, "%d of %d tasks got no result", hung, ntasks);
    CHECK (retried_failed == 0, "%d tasks with retries left were not resubmitted", retried_failed);
    CHECK (other == 0, "%d tasks ended with an unexpected error", other);
    CHECK (ok + restarted + unknown == ntasks, "results do not add up");

    //  The same engines, with their state
    CHECK (lp_client_wait_for_engines (client, nengines, 30000) == 0,
           "engines after the restart: %s", lp_client_error (client));
    count = lp_client_ids (client, after, MAX_ENGINES);
    CHECK (count == nengines, "%d engines after the restart, expected %d", count, nengines);
    for (int i = 0; i < count; i++)
        CHECK (before [i] == after [i], "engine ids changed: %d is now %d", before [i], after [i]);
    r = s_all (client, all, "x");
    CHECK (lp_result_count (r) == nengines, "x from %d engines", lp_result_count (r));
    for (int i = 0; i < lp_result_count (r); i++)
        CHECK (lp_value_as_int (lp_result_value (r, i)) == 42,
               "engine %d has x = %lld, not 42", lp_result_engine (r, i),
               (long long) lp_value_as_int (lp_result_value (r, i)));
    lp_result_destroy (&r);

    //  No task ran twice
    r = s_all (client, all, "local most = 0; for _, n in pairs (seen or {}) do "
                            "most = math.max (most, n) end; return most");
    for (int i = 0; i < lp_result_count (r); i++)
        CHECK (lp_value_as_int (lp_result_value (r, i)) <= 1,
               "a task ran %lld times on engine %d", (long long) lp_value_as_int (lp_result_value (r, i)),
               lp_result_engine (r, i));
    lp_result_destroy (&r);
    r = s_all (client, all, "local ks = {}; for k in pairs (seen or {}) do ks [#ks + 1] = k end; "
                            "table.sort (ks); return ks");
    int *where = (int *) calloc ((size_t) ntasks + 1, sizeof (int));
    CHECK (where, "out of memory");
    int executed = 0;
    for (int i = 0; i < lp_result_count (r); i++) {
        const lp_value_t *ks = lp_result_value (r, i);
        int engine = lp_result_engine (r, i);
        for (size_t j = 0; j < lp_value_len (ks); j++) {
            int k = (int) lp_value_as_int (lp_value_at (ks, j));
            CHECK (k >= 1 && k <= ntasks, "engine %d ran a task %d that was not sent", engine, k);
            CHECK (!where [k], "task %d ran on engine %d and on engine %d", k, where [k] - 1, engine);
            where [k] = engine + 1;
            executed++;
        }
    }
    for (int k = 1; k <= ntasks; k++)
        CHECK (!ran_on [k] || ran_on [k] == where [k], "task %d returned engine %d but ran on %d",
               k, ran_on [k] - 1, where [k] - 1);
    lp_result_destroy (&r);
    printf ("executed %d tasks, none twice; engines", executed);
    for (int i = 0; i < count; i++)
        printf (" %d", after [i]);
    printf (" back with x = 42\nOK\n");

    for (int k = 0; k < ntasks; k++)
        lp_result_destroy (&tasks [k]);
    free (tasks);
    free (ran_on);
    free (where);
    lp_view_destroy (&lb);
    lp_view_destroy (&lb_retry);
    lp_view_destroy (&all);
    lp_client_destroy (&client);
    return 0;
}
