/*  task_retry.c - a retried task is a new attempt with its own msg_id
    (issue 8, observation 2)

    An engine drops a msg_id it has seen (replay guard). Before the fix the
    scheduler resent a failed task with the same msg_id: with targets {0}
    and retries = 1, `error("boom")` failed once, was resent to engine 0,
    dropped there as a replay, and the result never completed. Now every
    attempt after the first has a fresh msg_id (and task_id = the
    client's), and the client still sees the reply as the answer to the
    msg_id it sent.

    Checks: the failing task ends with its LuaError; a task that fails on
    its first attempt and succeeds on the second returns its value from
    the same engine; a task with retries on a healthy path runs once; the
    engine's queue returns to 0.
*/
#include "lp_testlib.h"

#define RETRY_DEADLINE_MS 20000

static int64_t
s_field (lp_client_t *client, int id, const char *key)
{
    lp_value_t *status = lp_client_status (client, LPT_DEADLINE_MS);
    CHECK (status, "status: %s", lp_client_error (client));
    const lp_value_t *row = lpt_status_row (status, id);
    const lp_value_t *v = row ? lp_value_get (row, key) : NULL;
    int64_t value = v ? lp_value_as_int (v) : -1;
    lp_value_destroy (&status);
    return value;
}

int
main (int argc, char **argv)
{
    printf ("task_retry:\n");
    lp_client_t *client = lpt_connect (argc, argv);
    int ids [64];
    CHECK (lp_client_ids (client, ids, 64) >= 1, "no engines");
    int target = ids [0];
    lp_view_t *lb = lp_client_balanced (client);
    CHECK (lb, "balanced view: %s", lp_client_error (client));
    CHECK (lp_view_set_targets (lb, &target, 1) == 0, "set_targets: %s", lp_client_error (client));
    lp_view_set_retries (lb, 1);

    //  1. fails on every attempt: ends with the error of the last one
    lp_result_t *r = lp_view_execute (lb, "error('boom')");
    CHECK (r, "execute: %s", lp_client_error (client));
    int rc = lp_result_wait (r, RETRY_DEADLINE_MS);
    CHECK (rc == 0, "targets {%d}, retries 1, error('boom'): no result within %d ms (rc %d: "
           "the retry was dropped as a replay?)", target, RETRY_DEADLINE_MS, rc);
    const char *error = lp_result_error (r, 0);
    CHECK (error && strstr (error, "boom"), "expected the task's error 'boom', got %s",
           error ? error : "(a value)");
    lpt_say ("retries 1, error('boom') -> %s", error);
    lp_result_destroy (&r);

    //  2. fails once, then succeeds: the second attempt really runs
    r = lp_view_execute (lb, "if not retried_once then retried_once = true error('first') end "
                             "return 42");
    CHECK (r, "execute: %s", lp_client_error (client));
    CHECK (lp_result_wait (r, RETRY_DEADLINE_MS) == 0, "fail-then-succeed task: no result");
    LPT_EXPECT_INT (r, 0, 42, "fail-then-succeed task");
    CHECK (lp_result_engine (r, 0) == target, "ran on engine %d, expected %d",
           lp_result_engine (r, 0), target);
    lpt_say ("failed once, retried on engine %d -> 42", target);
    lp_result_destroy (&r);

    //  3. success at once: one attempt (the counter moves by one)
    r = lp_view_execute (lb, "runs = (runs or 0) + 1 return runs");
    CHECK (r, "execute: %s", lp_client_error (client));
    CHECK (lp_result_wait (r, RETRY_DEADLINE_MS) == 0, "healthy task: no result");
    LPT_EXPECT_INT (r, 0, 1, "healthy task with retries");
    lp_result_destroy (&r);

    //  4. nothing left behind
    double t0 = lpt_now_ms ();
    int64_t queue = -1;
    while (lpt_now_ms () - t0 < LPT_DEADLINE_MS && (queue = s_field (client, target, "queue")) != 0)
        lp_client_poll (client, 50);
    CHECK (queue == 0, "engine %d queue is %lld after every task ended", target, (long long) queue);

    lp_view_destroy (&lb);
    lp_client_destroy (&client);
    printf ("task_retry: OK\n");
    return 0;
}
