/*  store_fetch - results by msg_id from the task store (issue 11)

    Client A submits tasks (and a direct request, and a slow task) and
    goes away without waiting. Client B, connected afterwards, fetches
    every result by msg_id: the slow one is still pending when fetched
    and completes normally. `sqlite3 <profile>/db/tasks.sqlite3 "select
    count(*) from requests"` counts them; history lists them; a resubmit
    runs a task again under a new msg_id; purge removes the ended ones.
    Fails when the store (or fetch) is missing: every fetch returns NULL.
*/
#include "lp_testlib.h"

#define TASKS 20
#define streq(a, b) (strcmp ((a) ? (a) : "", (b)) == 0)

static long
s_sqlite_count (const char *sql)
{
    const char *dir = getenv ("LP_PROFILE_DIR");
    CHECK (dir, "LP_PROFILE_DIR is not set (run through run_with_cluster.sh)");
    char command [2048];
    snprintf (command, sizeof command, "sqlite3 '%s/db/tasks.sqlite3' \"%s\"", dir, sql);
    FILE *pipe = popen (command, "r");
    CHECK (pipe, "cannot run %s", command);
    long count = -1;
    if (fscanf (pipe, "%ld", &count) != 1)
        count = -1;
    int rc = pclose (pipe);
    CHECK (rc == 0 && count >= 0, "%s failed (status %d)", command, rc);
    return count;
}

int
main (int argc, char **argv)
{
    //  1. Client A submits and leaves
    lp_client_t *a = lpt_connect (argc, argv);
    lp_view_t *lb = lp_client_balanced (a);
    char ids [TASKS][64], slow_id [64], direct_id [64], big_id [64], huge_id [64];
    for (int i = 0; i < TASKS; i++) {
        char code [64];
        snprintf (code, sizeof code, "return %d * %d", i, i);
        lp_result_t *r = lp_view_execute (lb, code);
        CHECK (r, "execute: %s", lp_client_error (a));
        snprintf (ids [i], sizeof ids [i], "%s", lp_result_msg_id (r, 0));
        lp_result_destroy (&r);
    }
    lp_result_t *slow = lp_view_execute (lb, "lp.sleep (3) print ('slept') return 'late'");
    CHECK (slow, "execute: %s", lp_client_error (a));
    lp_value_t *msg_ids = lp_result_msg_ids (slow);
    CHECK (msg_ids && lp_value_len (msg_ids) == 1, "lp_result_msg_ids: one id");
    snprintf (slow_id, sizeof slow_id, "%s", lp_value_as_string (lp_value_at (msg_ids, 0), NULL));
    lp_value_destroy (&msg_ids);
    lp_result_destroy (&slow);
    //  A value that travels out of band (kept: under 1 MiB), and one over
    //  the store's cap (--db-max-result, default 1 MiB)
    lp_result_t *big = lp_view_execute (lb, "return string.rep ('b', 300000)");
    lp_result_t *huge = lp_view_execute (lb, "return string.rep ('h', 2 * 1024 * 1024)");
    CHECK (big && huge, "execute: %s", lp_client_error (a));
    snprintf (big_id, sizeof big_id, "%s", lp_result_msg_id (big, 0));
    snprintf (huge_id, sizeof huge_id, "%s", lp_result_msg_id (huge, 0));
    LPT_WAIT_OK (big, "300 kB value");
    LPT_WAIT_OK (huge, "2 MiB value");
    lp_result_destroy (&big);
    lp_result_destroy (&huge);
    int zero = 0;
    lp_view_t *dv = lp_client_view (a, &zero, 1);
    lp_result_t *direct = lp_view_execute (dv, "return 'direct ' .. lp.id");
    CHECK (direct, "direct execute: %s", lp_client_error (a));
    snprintf (direct_id, sizeof direct_id, "%s", lp_result_msg_id (direct, 0));
    lp_result_destroy (&direct);
    lp_view_destroy (&dv);
    lp_view_destroy (&lb);
    lp_client_destroy (&a);
    lpt_say ("client A sent %d tasks, a slow one and a direct request, and left", TASKS);

    //  2. Client B fetches them by msg_id
    lp_client_t *b = lpt_connect (argc, argv);
    lp_result_t *late = lp_client_fetch (b, slow_id, LPT_DEADLINE_MS);
    CHECK (late, "fetch of the slow task: %s", lp_client_error (b));
    CHECK (!lp_result_ready (late), "the slow task (3 s) is already complete when fetched");
    for (int i = 0; i < TASKS; i++) {
        lp_result_t *r = lp_client_fetch (b, ids [i], LPT_DEADLINE_MS);
        CHECK (r, "fetch %s: %s", ids [i], lp_client_error (b));
        LPT_WAIT_OK (r, "fetched task");
        LPT_EXPECT_INT (r, 0, (int64_t) i * i, "fetched task value");
        lp_result_destroy (&r);
    }
    lpt_say ("client B fetched the %d task results by msg_id", TASKS);
    lp_result_t *r = lp_client_fetch (b, direct_id, LPT_DEADLINE_MS);
    CHECK (r, "fetch of the direct request: %s", lp_client_error (b));
    LPT_WAIT_OK (r, "fetched direct request");
    CHECK (lp_result_count (r) == 1 && lp_result_engine (r, 0) == 0,
           "direct request: %d replies, engine %d", lp_result_count (r), lp_result_engine (r, 0));
    CHECK (streq (lp_value_as_string (lp_result_value (r, 0), NULL), "direct 0"),
           "direct value %s", lpt_show (lp_result_value (r, 0)));
    lp_result_destroy (&r);

    //  Out-of-band buffers come back whole; too large: a clear error
    r = lp_client_fetch (b, big_id, LPT_DEADLINE_MS);
    CHECK (r, "fetch of the 300 kB value: %s", lp_client_error (b));
    LPT_WAIT_OK (r, "fetched 300 kB value");
    size_t len = 0;
    const char *text = lp_value_as_string (lp_result_value (r, 0), &len);
    CHECK (text && len == 300000 && text [0] == 'b' && text [len - 1] == 'b',
           "fetched 300 kB value: %zu bytes", len);
    lp_result_destroy (&r);
    r = lp_client_fetch (b, huge_id, LPT_DEADLINE_MS);
    CHECK (r, "fetch of the 2 MiB value: %s", lp_client_error (b));
    LPT_WAIT (r, "fetched 2 MiB value");
    CHECK (lp_result_ename (r, 0) && streq (lp_result_ename (r, 0), "ResultTooLarge"),
           "2 MiB value fetched: %s", lpt_errors (r));
    lp_result_destroy (&r);
    lpt_say ("a 300 kB value came back from the store; a 2 MiB one is 'too large to keep'");

    //  The pending one completes normally
    LPT_WAIT_OK (late, "the slow task fetched while pending");
    CHECK (streq (lp_value_as_string (lp_result_value (late, 0), NULL), "late"),
           "slow task value %s", lpt_show (lp_result_value (late, 0)));
    CHECK (strstr (lp_result_stdout (late, 0), "slept"), "slow task stdout '%s'",
           lp_result_stdout (late, 0));
    lp_result_destroy (&late);
    lpt_say ("the slow task, fetched while pending, completed with its value and output");

    //  An unknown id: NULL, LP_EINVAL
    r = lp_client_fetch (b, "no-such-msg-id", LPT_DEADLINE_MS);
    CHECK (!r && lp_client_errcode (b) == LP_EINVAL, "fetch of an unknown id: %s",
           lp_client_error (b));

    //  The sqlite3 command counts them
    long count = s_sqlite_count ("select count(*) from requests");
    CHECK (count >= TASKS + 4, "sqlite3 counts %ld requests, expected at least %d", count, TASKS + 4);
    lpt_say ("sqlite3: %ld rows in requests", count);

    //  History
    lp_value_t *query = lp_value_map ();
    lp_value_set (query, "status", lp_value_string ("ok"));
    lp_value_set (query, "limit", lp_value_int (1000));
    lp_value_t *records = lp_client_history (b, query, LPT_DEADLINE_MS);
    CHECK (records, "history: %s", lp_client_error (b));
    CHECK ((long) lp_value_len (records) >= TASKS + 4, "history lists %zu ok records",
           lp_value_len (records));
    const lp_value_t *newest = lp_value_at (records, 0);
    CHECK (newest && lp_value_get (newest, "msg_id") && lp_value_get (newest, "submitted"),
           "a history record has msg_id and submitted");
    lp_value_destroy (&records);
    lp_value_set (query, "limit", lp_value_int (3));
    records = lp_client_history (b, query, LPT_DEADLINE_MS);
    CHECK (records && lp_value_len (records) == 3, "history limit 3");
    lp_value_destroy (&records);
    lp_value_destroy (&query);

    //  Resubmit: a new msg_id, the same work
    r = lp_client_resubmit (b, ids [3], LPT_DEADLINE_MS);
    CHECK (r, "resubmit: %s", lp_client_error (b));
    LPT_WAIT_OK (r, "resubmitted task");
    LPT_EXPECT_INT (r, 0, 9, "resubmitted task value");
    CHECK (!streq (lp_result_msg_id (r, 0), ids [3]), "resubmit kept the msg_id");
    lp_result_destroy (&r);
    lpt_say ("resubmitted a task under a new msg_id");

    //  Purge: every ended request goes
    int64_t removed = lp_client_purge (b, NULL, LPT_DEADLINE_MS);
    CHECK (removed >= TASKS + 5, "purge removed %lld", (long long) removed);
    CHECK (s_sqlite_count ("select count(*) from requests") == 0, "rows left after purge");
    r = lp_client_fetch (b, ids [0], LPT_DEADLINE_MS);
    CHECK (!r, "a purged request can still be fetched");
    lpt_say ("purge removed %lld records", (long long) removed);
    lp_client_destroy (&b);
    printf ("store_fetch: OK\n");
    return 0;
}
