/*  scheduling.c - the load-balanced view against a 4-engine cluster
    (default scheduler leastload, hwm 2): ordered map, skewed work, retries
    after kill -9, dependencies, targets, timeout and time_limit.
    The per-scheme behaviours are in tests/shell/schedulers.sh. */
#include "lp_testlib.h"
#include <signal.h>

#define streq(a, b) (strcmp ((a), (b)) == 0)

//  Waits with a deadline; fails the test when it passes.
static void
s_wait (lp_result_t *r, int ms, const char *what)
{
    CHECK (lp_result_wait (r, ms) == LP_OK, "%s: no result within %d ms", what, ms);
}

static int64_t
s_engine_pid (lp_client_t *client, int id)
{
    lp_value_t *status = lp_client_status (client, LPT_DEADLINE_MS);
    CHECK (status, "status: %s", lp_client_error (client));
    int64_t pid = -1;
    for (size_t i = 0; i < lp_value_len (status); i++) {
        const lp_value_t *row = lp_value_at (status, i);
        if (lp_value_as_int (lp_value_get (row, "id")) == id)
            pid = lp_value_as_int (lp_value_get (row, "pid"));
    }
    lp_value_destroy (&status);
    CHECK (pid > 0, "engine %d not in status", id);
    return pid;
}

//  Number of slots of r that have a reply (value or error).
static int
s_done (lp_result_t *r)
{
    int done = 0;
    for (int i = 0; i < lp_result_count (r); i++)
        if (lp_result_value (r, i) || lp_result_error (r, i))
            done++;
    return done;
}

static void
test_ordered_map (lp_client_t *client)
{
    lp_view_t *lb = lp_client_balanced (client);
    CHECK (lb, "balanced view: %s", lp_client_error (client));
    lp_view_set_chunksize (lb, 100);
    lp_result_t *r = lp_view_map (lb, "function(x) return x*x end", lp_value_int_range (1, 100000));
    CHECK (r, "map: %s", lp_client_error (client));
    s_wait (r, 120000, "map of 100000 squares");
    const lp_value_t *v = lp_result_get (r);
    CHECK (v, "map failed: %s", lpt_errors (r));
    CHECK (lp_value_len (v) == 100000, "map gave %zu results", lp_value_len (v));
    for (size_t i = 0; i < 100000; i++) {
        int64_t x = (int64_t) i + 1;
        CHECK (lp_value_as_int (lp_value_at (v, i)) == x * x, "result %zu is %lld, not %lld",
               i, (long long) lp_value_as_int (lp_value_at (v, i)), (long long) (x * x));
    }
    lp_result_destroy (&r);

    //  chunksize 1 (one task per item) keeps the order too
    lp_view_set_chunksize (lb, 1);
    r = lp_view_map (lb, "function(x) return x*x end", lp_value_int_range (1, 2000));
    CHECK (r, "map: %s", lp_client_error (client));
    s_wait (r, 120000, "map of 2000 squares, one task each");
    v = lp_result_get (r);
    CHECK (v && lp_value_len (v) == 2000, "map of 2000 failed: %s", lpt_errors (r));
    for (size_t i = 0; i < 2000; i++)
        CHECK (lp_value_as_int (lp_value_at (v, i)) == (int64_t) ((i + 1) * (i + 1)),
               "task map result %zu wrong", i);
    int engines_used [LPT_ENGINES] = { 0 };
    for (int i = 0; i < lp_result_count (r); i++) {
        int e = lp_result_engine (r, i);
        CHECK (e >= 0 && e < LPT_ENGINES, "task %d ran on engine %d", i, e);
        engines_used [e] = 1;
        CHECK (lp_result_started (r, i) >= lp_result_submitted (r, i) - 1.0
            && lp_result_completed (r, i) >= lp_result_started (r, i),
               "task %d timestamps out of order", i);
    }
    for (int e = 0; e < LPT_ENGINES; e++)
        CHECK (engines_used [e], "engine %d got none of 2000 tasks", e);
    lpt_say ("map of 100000 squares in order; 2000 single tasks on all engines");
    lp_result_destroy (&r);
    lp_view_destroy (&lb);
}

static void
test_skewed (lp_client_t *client)
{
    //  200 tasks sleeping 0..20 ms (deterministic pseudo-random lengths)
    lp_value_t *lengths = lp_value_array ();
    double total = 0;
    uint32_t seed = 12345;
    for (int i = 0; i < 200; i++) {
        seed = seed * 1103515245 + 12345;
        double ms = (seed >> 16) % 21;
        total += ms;
        lp_value_append (lengths, lp_value_number (ms / 1000.0));
    }
    lp_view_t *lb = lp_client_balanced (client);
    double t0 = lpt_now_ms ();
    lp_result_t *r = lp_view_map (lb, "function(s) lp.sleep(s) return s end", lengths);
    CHECK (r, "map: %s", lp_client_error (client));
    s_wait (r, 60000, "skewed work");
    double elapsed = lpt_now_ms () - t0;
    CHECK (lp_result_get (r), "skewed work failed: %s", lpt_errors (r));
    double ideal = total / LPT_ENGINES;
    lpt_say ("skewed work: %.0f ms of sleeps over 4 engines took %.0f ms (ideal %.0f ms, %.2fx)",
             total, elapsed, ideal, elapsed / ideal);
    CHECK (elapsed < ideal * 2.0 + 1000, "skewed work took %.0f ms, ideal %.0f ms", elapsed, ideal);
    lp_result_destroy (&r);
    lp_view_destroy (&lb);
}

//  kill -9 of engine `victim` during a 10000-task map.
static void
test_kill_during_map (lp_client_t *client, int victim, int retries)
{
    int64_t pid = s_engine_pid (client, victim);
    lp_view_t *lb = lp_client_balanced (client);
    lp_view_set_retries (lb, retries);
    lp_result_t *r = lp_view_map (lb, "function(x) lp.sleep(0.001) return x + 1 end",
                                  lp_value_int_range (1, 10000));
    CHECK (r, "map: %s", lp_client_error (client));
    double deadline = lpt_now_ms () + LPT_DEADLINE_MS;
    while (s_done (r) < 1000 && lpt_now_ms () < deadline)
        lp_result_wait (r, 20);
    CHECK (s_done (r) >= 1000 && !lp_result_ready (r), "map finished before the kill (%d done)", s_done (r));
    CHECK (kill ((pid_t) pid, SIGKILL) == 0, "cannot kill engine %d (pid %lld)", victim, (long long) pid);
    s_wait (r, 120000, "map with a killed engine");
    int failed = 0;
    for (int i = 0; i < 10000; i++) {
        const lp_value_t *v = lp_result_value (r, i);
        if (v)
            CHECK (lp_value_as_int (v) == i + 2, "task %d returned %lld", i, (long long) lp_value_as_int (v));
        else {
            failed++;
            CHECK (lp_result_ename (r, i) && streq (lp_result_ename (r, i), "EngineError")
                && lp_result_engine (r, i) == victim
                //  the hub's death notice, or the scheduler's own finding
                //  that the engine's socket is gone, whichever comes first
                && (strstr (lp_result_evalue (r, i), "died")
                    || strstr (lp_result_evalue (r, i), "not reachable")),
                   "task %d failed otherwise: %s", i, lp_result_error (r, i));
        }
    }
    if (retries > 0)
        CHECK (failed == 0, "%d tasks failed despite retries=%d", failed, retries);
    else
        CHECK (failed > 0 && failed <= 2, "%d tasks failed (only those on engine %d may, at most hwm = 2)",
               failed, victim);
    lpt_say ("kill -9 of engine %d during 10000 tasks, retries=%d: %d failed, %d results correct",
             victim, retries, failed, 10000 - failed);
    lp_result_destroy (&r);
    lp_view_destroy (&lb);
}

static void
test_dependencies (lp_client_t *client)
{
    lp_view_t *lb = lp_client_balanced (client);
    lp_result_t *a = lp_view_apply (lb, "function() lp.sleep(0.5) return lp.id end", NULL);
    CHECK (a, "apply: %s", lp_client_error (client));
    lp_view_set_after (lb, &a, 1);
    lp_result_t *b = lp_view_apply (lb, "function() return lp.clock() end", NULL);
    lp_view_set_after (lb, NULL, 0);
    lp_view_set_follow (lb, &a, 1);
    lp_result_t *c = lp_view_apply (lb, "function() return lp.id end", NULL);
    lp_view_set_follow (lb, NULL, 0);
    CHECK (b && c, "apply: %s", lp_client_error (client));
    s_wait (b, LPT_DEADLINE_MS, "after");
    s_wait (c, LPT_DEADLINE_MS, "follow");
    CHECK (lp_result_get (a) && lp_result_get (b) && lp_result_get (c), "dependency tasks failed: %s %s",
           lpt_errors (b), lpt_errors (c));
    CHECK (lp_result_started (b, 0) >= lp_result_completed (a, 0),
           "after: B started at %.6f, before A completed at %.6f",
           lp_result_started (b, 0), lp_result_completed (a, 0));
    CHECK (lp_value_as_int (lp_result_get (c)) == lp_value_as_int (lp_result_get (a)),
           "follow: C ran on engine %lld, A on %lld",
           (long long) lp_value_as_int (lp_result_get (c)), (long long) lp_value_as_int (lp_result_get (a)));

    //  depending on a failed task fails at once with a dependency error
    lp_result_t *bad = lp_view_apply (lb, "function() error('boom') end", NULL);
    s_wait (bad, LPT_DEADLINE_MS, "failing task");
    CHECK (lp_result_failed (bad) == 1, "the failing task did not fail");
    lp_view_set_after (lb, &bad, 1);
    lp_result_t *d = lp_view_apply (lb, "function() return 1 end", NULL);
    s_wait (d, LPT_DEADLINE_MS, "task after a failed one");
    CHECK (lp_result_ename (d, 0) && streq (lp_result_ename (d, 0), "DependencyError"),
           "depending on a failed task gave: %s", lpt_errors (d));
    //  ... unless failure is accepted
    lp_view_set_dependency_flags (lb, false, true);
    lp_result_t *e = lp_view_apply (lb, "function() return 2 end", NULL);
    s_wait (e, LPT_DEADLINE_MS, "task accepting a failed dependency");
    CHECK (lp_result_get (e) && lp_value_as_int (lp_result_get (e)) == 2,
           "failure=true dependency: %s", lpt_errors (e));
    lp_view_set_dependency_flags (lb, true, false);
    lp_view_set_after (lb, NULL, 0);

    //  targets = {2}
    int two = 2;
    lp_view_set_targets (lb, &two, 1);
    lp_result_t *t = lp_view_map (lb, "function(x) return lp.id end", lp_value_int_range (1, 40));
    s_wait (t, LPT_DEADLINE_MS, "targets");
    const lp_value_t *ids = lp_result_get (t);
    CHECK (ids && lp_value_len (ids) == 40, "targets map failed: %s", lpt_errors (t));
    for (size_t i = 0; i < 40; i++)
        CHECK (lp_value_as_int (lp_value_at (ids, i)) == 2, "task %zu ran on engine %lld, not 2",
               i, (long long) lp_value_as_int (lp_value_at (ids, i)));
    lp_view_set_targets (lb, NULL, 0);
    lpt_say ("after, follow, failed dependency, failure=true and targets={2} behave");
    lp_result_t *all [] = { a, b, c, bad, d, e, t };
    for (int i = 0; i < 7; i++)
        lp_result_destroy (&all [i]);
    lp_view_destroy (&lb);
}

static void
test_timeouts (lp_client_t *client)
{
    lp_view_t *lb = lp_client_balanced (client);
    //  Fill every engine to its hwm (2) with 1.5 s tasks; the next waits.
    lp_result_t *busy = lp_view_map (lb, "function(x) lp.sleep(1.5) return x end",
                                     lp_value_int_range (1, 2 * LPT_ENGINES));
    lp_view_set_timeout (lb, 300);
    lp_result_t *late = lp_view_apply (lb, "function() return 1 end", NULL);
    lp_view_set_timeout (lb, 0);
    s_wait (late, LPT_DEADLINE_MS, "queued task with timeout");
    CHECK (lp_result_ename (late, 0) && streq (lp_result_ename (late, 0), "TimeoutError"),
           "a queued task past its timeout gave: %s", lpt_errors (late));
    s_wait (busy, LPT_DEADLINE_MS, "busy tasks");
    CHECK (lp_result_get (busy), "busy tasks failed: %s", lpt_errors (busy));

    //  time_limit stops a runaway task; its engine answers the next one
    lp_view_set_time_limit (lb, 500);
    lp_result_t *runaway = lp_view_apply (lb, "function() while true do end end", NULL);
    lp_view_set_time_limit (lb, 0);
    double t0 = lpt_now_ms ();
    s_wait (runaway, LPT_DEADLINE_MS, "runaway task with time_limit");
    CHECK (lp_result_ename (runaway, 0) && streq (lp_result_ename (runaway, 0), "TimeLimit"),
           "a runaway task gave: %s", lpt_errors (runaway));
    lpt_say ("runaway task stopped by time_limit=500 ms after %.0f ms", lpt_now_ms () - t0);
    int victim = lp_result_engine (runaway, 0);
    lp_view_set_targets (lb, &victim, 1);
    lp_result_t *next = lp_view_apply (lb, "function() return lp.id end", NULL);
    s_wait (next, LPT_DEADLINE_MS, "task after a time limit");
    CHECK (lp_result_get (next) && lp_value_as_int (lp_result_get (next)) == victim,
           "engine %d after its time limit: %s", victim, lpt_errors (next));
    lpt_say ("TimeoutError for a queued task; TimeLimit for a runaway; engine %d answers after", victim);
    lp_result_destroy (&busy);
    lp_result_destroy (&late);
    lp_result_destroy (&runaway);
    lp_result_destroy (&next);
    lp_view_destroy (&lb);
}

static void
test_abort (lp_client_t *client)
{
    lp_view_t *lb = lp_client_balanced (client);
    lp_result_t *busy = lp_view_map (lb, "function(x) lp.sleep(1) return x end",
                                     lp_value_int_range (1, 2 * LPT_ENGINES));
    lp_result_t *queued = lp_view_map (lb, "function(x) return x end", lp_value_int_range (1, 10));
    //  Queue status: 2 tasks on each engine (1 running, 1 queued), 10 unassigned
    //  (the tasks and the status query travel on different sockets: poll
    //  until the scheduler has taken all 18)
    lp_value_t *status = NULL;
    double until = lpt_now_ms () + LPT_DEADLINE_MS;
    do {
        lp_value_destroy (&status);
        status = lp_client_queue_status (client, LPT_DEADLINE_MS);
        CHECK (status, "queue status: %s", lp_client_error (client));
    } while (lp_value_as_int (lp_value_get (status, "unassigned")) < 10 && lpt_now_ms () < until);
    CHECK (lp_value_as_int (lp_value_get (status, "unassigned")) == 10,
           "unassigned tasks: %lld, expected 10", (long long) lp_value_as_int (lp_value_get (status, "unassigned")));
    const lp_value_t *engines = lp_value_get (status, "engines");
    for (size_t i = 0; engines && i < lp_value_len (engines); i++) {
        const lp_value_t *row = lp_value_at (engines, i);
        CHECK (lp_value_as_int (lp_value_get (row, "tasks_running")) == 1
            && lp_value_as_int (lp_value_get (row, "tasks_queued")) == 1,
               "engine %lld: %lld running, %lld queued (expected 1 and 1 with hwm 2)",
               (long long) lp_value_as_int (lp_value_get (row, "id")),
               (long long) lp_value_as_int (lp_value_get (row, "tasks_running")),
               (long long) lp_value_as_int (lp_value_get (row, "tasks_queued")));
    }
    lp_value_destroy (&status);
    int aborted = lp_result_abort (queued);
    CHECK (aborted == 10, "abort: %d aborted, expected the 10 unassigned: %s",
           aborted, aborted < 0? lp_client_error (client): "");
    s_wait (queued, LPT_DEADLINE_MS, "aborted tasks");
    for (int i = 0; i < 10; i++)
        CHECK (lp_result_ename (queued, i) && streq (lp_result_ename (queued, i), "Aborted"),
               "queued task %d was not aborted: %s", i, lpt_errors (queued));
    s_wait (busy, LPT_DEADLINE_MS, "busy tasks");
    CHECK (lp_result_get (busy), "running tasks suffered from the abort: %s", lpt_errors (busy));
    lpt_say ("queue status showed 1 running + 1 queued per engine and 10 unassigned; those 10 aborted");
    lp_result_destroy (&busy);
    lp_result_destroy (&queued);
    lp_view_destroy (&lb);
}

int
main (int argc, char **argv)
{
    lp_client_t *client = lpt_connect (argc, argv);
    test_ordered_map (client);
    test_skewed (client);
    test_dependencies (client);
    test_timeouts (client);
    test_abort (client);
    test_kill_during_map (client, 1, 1);
    test_kill_during_map (client, 2, 0);
    lp_client_destroy (&client);
    printf ("scheduling: OK\n");
    return 0;
}
