/*  api_complete.c - the C API's completeness calls (issue 14), as a C
    user of ipyparallel's as_completed / wait (FIRST_COMPLETED) writes them

    - lp_result_state and lp_result_next: the replies of one result in
      the order they end (one engine is held until the other has ended),
      with their states;
    - lp_client_wait_any over several results, with its timeout;
    - lp_client_fd in a poll () loop: a result completes only through
      lp_client_poll calls made when the descriptor said readable;
    - lp_view_dup: a flag set on the copy (time limit) applies to the copy's
      call alone;
    - lp_view_clear: globals gone, the engine serves on;
    - lp_view_map_n (direct and load-balanced, stopping at the shortest
      sequence) and the unordered map: lp_result_next + lp_result_first_item;
    - lp_client_restart_engine (same id, new process, fresh state; an
      unknown id refused) and lp_client_shutdown_engine (gone from the
      engine table).

    An engine is held by a request that waits for a file the test creates
    (polling every 10 ms on the engine): the order of completion is the
    test's doing, not a matter of timing.
*/
#include "lp_testlib.h"
#include <errno.h>
#include <poll.h>

static char s_dir [512];

//  Lua code that waits (up to the deadline) for file `name` in s_dir, then
//  returns value.
static const char *
s_held (const char *name, const char *value)
{
    static char code [2][1024];
    static int which;
    which ^= 1;
    snprintf (code [which], sizeof code [which],
              "local t = os.time () "
              "while not io.open ('%s/%s') and os.time () - t < 60 do lp.sleep (0.01) end "
              "return %s", s_dir, name, value);
    return code [which];
}

static void
s_release (const char *name)
{
    char path [600];
    snprintf (path, sizeof path, "%s/%s", s_dir, name);
    FILE *file = fopen (path, "w");
    CHECK (file, "cannot create %s", path);
    fclose (file);
}

static void
s_as_completed (lp_client_t *client, const int *ids)
{
    int two [] = { ids [0], ids [1] };
    lp_view_t *view = lp_client_view (client, two, 2);
    char code [1400];
    snprintf (code, sizeof code, "if lp.id == %d then %s end return lp.id", ids [0],
              s_held ("first", "'held'"));
    lp_result_t *r = lp_view_execute (view, code);
    CHECK (r, "execute: %s", lp_client_error (client));
    CHECK (lp_result_count (r) == 2, "2 replies expected, %d", lp_result_count (r));
    int slot = -2;
    int rc = lp_result_next (r, LPT_DEADLINE_MS, &slot);
    CHECK (rc == LP_OK && slot >= 0, "next: %s", lp_strerror (rc));
    CHECK (lp_result_engine (r, slot) == ids [1], "first reply to end is engine %d's, "
           "expected %d's (engine %d is held)", lp_result_engine (r, slot), ids [1], ids [0]);
    CHECK (lp_result_state (r, slot) == LP_STATE_OK, "state of the ended reply: %d",
           lp_result_state (r, slot));
    CHECK (lp_result_state (r, 1 - slot) == LP_STATE_PENDING, "state of the held reply: %d",
           lp_result_state (r, 1 - slot));
    CHECK (lp_result_state (r, 7) == LP_STATE_PENDING, "state out of range");
    rc = lp_result_next (r, 200, &slot);
    CHECK (rc == LP_ETIMEOUT && slot == -1, "next while held: %s, slot %d",
           lp_strerror (rc), slot);
    s_release ("first");
    rc = lp_result_next (r, LPT_DEADLINE_MS, &slot);
    CHECK (rc == LP_OK && slot >= 0 && lp_result_engine (r, slot) == ids [0],
           "second next: %s, slot %d", lp_strerror (rc), slot);
    CHECK (lp_result_state (r, slot) == LP_STATE_OK, "released reply state");
    rc = lp_result_next (r, 0, &slot);
    CHECK (rc == LP_OK && slot == -1, "next after all: %s, slot %d", lp_strerror (rc), slot);
    lp_result_destroy (&r);

    //  An error reply is handed out too, with its state
    r = lp_view_execute (view, "error ('boom')");
    int errors = 0;
    for (int k = 0; k < 2; k++) {
        CHECK (lp_result_next (r, LPT_DEADLINE_MS, &slot) == LP_OK && slot >= 0, "next (error)");
        errors += lp_result_state (r, slot) == LP_STATE_ERROR;
    }
    CHECK (errors == 2, "%d of 2 replies in the error state", errors);
    lp_result_destroy (&r);
    lp_view_destroy (&view);
    lpt_say ("as completed: the free engine's reply first, then the held one; errors too");
}

static void
s_wait_any (lp_client_t *client, const int *ids)
{
    lp_view_t *a = lp_client_view (client, &ids [0], 1);
    lp_view_t *b = lp_client_view (client, &ids [1], 1);
    lp_result_t *rs [3];
    rs [0] = lp_view_execute (a, s_held ("second", "'held'"));
    rs [1] = NULL;
    rs [2] = lp_view_execute (b, "return 'quick'");
    CHECK (rs [0] && rs [2], "execute: %s", lp_client_error (client));
    int which = lp_client_wait_any (client, rs, 3, LPT_DEADLINE_MS);
    CHECK (which == 2, "wait_any gave %d, expected 2: %s", which, lp_client_error (client));
    lp_result_destroy (&rs [2]);
    which = lp_client_wait_any (client, rs, 3, 200);
    CHECK (which == -1 && lp_client_errcode (client) == LP_ETIMEOUT,
           "wait_any while held: %d (%s)", which, lp_client_error (client));
    s_release ("second");
    which = lp_client_wait_any (client, rs, 3, LPT_DEADLINE_MS);
    CHECK (which == 0, "wait_any after release: %d (%s)", which, lp_client_error (client));
    CHECK (strcmp (lp_value_as_string (lp_result_value (rs [0], 0), NULL), "held") == 0,
           "value of the held request");
    lp_result_destroy (&rs [0]);
    which = lp_client_wait_any (client, rs, 3, 0);
    CHECK (which == -1 && lp_client_errcode (client) == LP_EINVAL,
           "wait_any on no results: %d (%s)", which, lp_client_error (client));
    lp_view_destroy (&a);
    lp_view_destroy (&b);
    lpt_say ("wait_any: the quick result first, a timeout while the other is held, then it");
}

//  Replies not ended yet, as taken in so far (lp_result_state: no polling).
static int
s_pending (lp_result_t *r)
{
    int pending = 0;
    for (int i = 0; i < lp_result_count (r); i++)
        pending += lp_result_state (r, i) == LP_STATE_PENDING;
    return pending;
}

static void
s_fd (lp_client_t *client)
{
    int fd = lp_client_fd (client);
    CHECK (fd >= 0, "lp_client_fd: %s", lp_client_error (client));
    CHECK (lp_client_fd (client) == fd, "lp_client_fd changed");
    lp_view_t *all = lp_client_view (client, NULL, 0);
    lp_result_t *r = lp_view_execute (all, s_held ("fd", "lp.id * 2"));
    CHECK (r, "execute: %s", lp_client_error (client));
    //  After a send: drain, then sleep on the descriptor. The replies can
    //  only come after the release, and only the drains after a wake-up
    //  take them in, so the result ends through the descriptor or not at all.
    while (lp_client_poll (client, 0) > 0)
        ;
    CHECK (s_pending (r) == lp_result_count (r), "replies before the release");
    s_release ("fd");
    int wakeups = 0;
    double t0 = lpt_now_ms ();
    while (s_pending (r) > 0) {
        CHECK (lpt_now_ms () - t0 < LPT_DEADLINE_MS, "no result through the fd within %d ms "
               "(%d wake-ups, %d replies pending)", LPT_DEADLINE_MS, wakeups, s_pending (r));
        struct pollfd item = { fd, POLLIN, 0 };
        int n = poll (&item, 1, 1000);
        CHECK (n >= 0, "poll: %s", strerror (errno));
        if (n == 0)
            continue;
        wakeups++;
        while (lp_client_poll (client, 0) > 0)
            ;
    }
    CHECK (wakeups > 0, "the result ended without the fd ever being readable");
    CHECK (lp_result_failed (r) == 0, "%s", lpt_errors (r));
    for (int i = 0; i < lp_result_count (r); i++)
        LPT_EXPECT_INT (r, i, lp_result_engine (r, i) * 2, "lp.id * 2");
    lp_result_destroy (&r);
    lp_view_destroy (&all);
    //  Idle, drained: the descriptor is not readable (only the controller's
    //  heartbeats, about one a second, wake it), so a loop sleeps instead
    //  of spinning
    int readable = 0, quiet = 0;
    for (int k = 0; k < 20; k++) {
        while (lp_client_poll (client, 0) > 0)
            ;
        struct pollfd item = { fd, POLLIN, 0 };
        if (poll (&item, 1, 50) > 0)
            readable++;
        else
            quiet++;
    }
    CHECK (quiet >= 10, "idle and drained, the descriptor was readable %d times of 20: "
           "an event loop would spin", readable);
    lpt_say ("fd: %d replies through a poll () loop, %d wake-ups; idle: %d of 20 sleeps "
             "quiet", LPT_ENGINES, wakeups, quiet);
}

static void
s_dup (lp_client_t *client)
{
    lp_view_t *lb = lp_client_balanced (client);
    lp_view_t *once = lp_view_dup (lb);
    CHECK (once && lp_view_is_balanced (once), "lp_view_dup: %s", lp_client_error (client));
    lp_view_set_time_limit (once, 100);
    lp_result_t *limited = lp_view_execute (once, "lp.sleep (3) return 1");
    lp_view_destroy (&once);
    lp_result_t *free_run = lp_view_execute (lb, "lp.sleep (0.5) return 2");
    LPT_WAIT (limited, "task with the copy's time limit");
    CHECK (lp_result_ename (limited, 0) && strcmp (lp_result_ename (limited, 0), "TimeLimit") == 0,
           "the copy's task did not end with TimeLimit: %s", lpt_errors (limited));
    LPT_WAIT_OK (free_run, "task of the original view");
    LPT_EXPECT_INT (free_run, 0, 2, "original view's task");
    lp_result_destroy (&limited);
    lp_result_destroy (&free_run);
    lp_view_destroy (&lb);
    lpt_say ("dup: the copy's time limit ended its task; the original has none");
}

static void
s_clear (lp_client_t *client)
{
    lp_view_t *all = lp_client_view (client, NULL, 0);
    lp_result_t *r = lp_view_push (all, "kept", lp_value_int (42));
    LPT_WAIT_OK (r, "push");
    lp_result_destroy (&r);
    r = lpt_exec (all, "kept");
    LPT_EXPECT_INT (r, 0, 42, "kept before clear");
    lp_result_destroy (&r);
    r = lp_view_clear (all);
    LPT_WAIT_OK (r, "clear");
    lp_result_destroy (&r);
    r = lpt_exec (all, "return kept == nil, lp.id");
    for (int i = 0; i < lp_result_count (r); i++) {
        const lp_value_t *values = lp_result_values (r, i);
        CHECK (lp_value_as_bool (lp_value_at (values, 0)), "engine %d still has `kept` after "
               "clear", lp_result_engine (r, i));
        CHECK (lp_value_as_int (lp_value_at (values, 1)) == lp_result_engine (r, i),
               "lp.id after clear");
    }
    lp_result_destroy (&r);
    lp_view_t *lb = lp_client_balanced (client);
    CHECK (lp_view_clear (lb) == NULL, "clear on a load-balanced view was accepted");
    lp_view_destroy (&lb);
    lp_view_destroy (&all);
    lpt_say ("clear: globals gone on every engine, lp still there");
}

static void
s_map_n (lp_client_t *client)
{
    const char *fn = "function (a, b, c) return a * b + c end";
    for (int balanced = 0; balanced < 2; balanced++) {
        lp_view_t *view = balanced? lp_client_balanced (client): lp_client_view (client, NULL, 0);
        if (balanced)
            lp_view_set_chunksize (view, 3);
        lp_value_t *b = lp_value_typed (LP_DTYPE_F64, 12);
        double *data = lp_value_typed_data (b);
        for (int i = 0; i < 12; i++)
            data [i] = 0.5 * i;
        lp_value_t *seqs [] = { lp_value_int_range (1, 10), b, lp_value_int_range (101, 111) };
        lp_result_t *r = lp_view_map_n (view, fn, seqs, 3);
        LPT_WAIT_OK (r, "map_n");
        const lp_value_t *all = lp_result_get (r);
        CHECK (all && lp_value_len (all) == 10, "map_n gave %s (10 items expected: the "
               "shortest sequence)", lpt_show (all));
        for (int i = 0; i < 10; i++) {
            double expect = (i + 1) * 0.5 * i + 101 + i;
            double got = lp_value_as_number (lp_value_at (all, i));
            CHECK (got == expect, "map_n item %d: %g, expected %g", i, got, expect);
        }
        lp_result_destroy (&r);
        lp_view_destroy (&view);
    }
    //  Unordered: slots as they end, each knowing its items' positions
    lp_view_t *lb = lp_client_balanced (client);
    lp_view_set_chunksize (lb, 7);
    lp_result_t *r = lp_view_map (lb, "function (x) lp.sleep ((x % 5) / 100) return x * x end",
                                  lp_value_int_range (0, 99));
    CHECK (r, "map: %s", lp_client_error (client));
    int seen [100] = { 0 };
    int slot, slots = 0;
    while (lp_result_next (r, LPT_DEADLINE_MS, &slot) == LP_OK && slot >= 0) {
        slots++;
        CHECK (lp_result_state (r, slot) == LP_STATE_OK, "%s", lpt_errors (r));
        int64_t first = lp_result_first_item (r, slot);
        const lp_value_t *values = lp_result_values (r, slot);
        for (size_t k = 0; k < lp_value_len (values); k++) {
            int64_t x = first + (int64_t) k;
            CHECK (x >= 0 && x < 100 && !seen [x], "item %lld twice or out of range", (long long) x);
            seen [x] = 1;
            CHECK (lp_value_as_int (lp_value_at (values, k)) == x * x, "item %lld: %s",
                   (long long) x, lpt_show (lp_value_at (values, k)));
        }
    }
    CHECK (slots == 15, "%d of 15 tasks handed out", slots);
    for (int x = 0; x < 100; x++)
        CHECK (seen [x], "item %d never came", x);
    lp_result_destroy (&r);
    lp_view_destroy (&lb);
    lpt_say ("map_n: direct and load-balanced, shortest wins; unordered map: 100 items "
             "in 15 tasks as they ended");
}

static int64_t
s_pid (lp_client_t *client, int id)
{
    lp_value_t *status = lp_client_status (client, LPT_DEADLINE_MS);
    CHECK (status, "status: %s", lp_client_error (client));
    const lp_value_t *row = lpt_status_row (status, id);
    int64_t pid = row? lp_value_as_int (lp_value_get (row, "pid")): 0;
    lp_value_destroy (&status);
    return pid;
}

static void
s_restart_shutdown (lp_client_t *client, const int *ids)
{
    int victim = ids [1];
    lp_view_t *one = lp_client_view (client, &victim, 1);
    lp_result_t *r = lp_view_push (one, "state", lp_value_int (7));
    LPT_WAIT_OK (r, "push");
    lp_result_destroy (&r);
    int64_t pid = s_pid (client, victim);
    CHECK (pid > 0, "engine %d has no pid", victim);
    lp_result_t *busy = lp_view_execute (one, "lp.sleep (60) return 1");
    CHECK (busy, "execute: %s", lp_client_error (client));
    lp_result_t *queued = lp_view_execute (one, "return 2");
    CHECK (queued, "execute: %s", lp_client_error (client));
    lpt_wait_busy (client, victim);
    CHECK (lp_client_restart_engine (client, victim, LPT_DEADLINE_MS) == 0,
           "restart of engine %d: %s", victim, lp_client_error (client));
    LPT_WAIT (busy, "the request running when its engine was restarted");
    const char *why = lp_result_error (busy, 0);
    lpt_say ("running request: %s", why? why: "(no error)");
    //  Interrupted when the engine's reply reaches the controller before
    //  its unregistration, EngineError the other way round (two sockets:
    //  no order between them; api.md says so). Either names the engine.
    const char *bename = lp_result_ename (busy, 0);
    CHECK (bename && (strcmp (bename, "Interrupted") == 0 || strcmp (bename, "EngineError") == 0)
           && lp_result_engine (busy, 0) == victim,
           "the running request did not end Interrupted or EngineError on engine %d: %s",
           victim, why? why: "(none)");
    lp_result_destroy (&busy);
    LPT_WAIT (queued, "the request queued when its engine was restarted");
    why = lp_result_error (queued, 0);
    lpt_say ("queued request: %s", why? why: "(no error)");
    CHECK (lp_result_ename (queued, 0) && strcmp (lp_result_ename (queued, 0), "EngineError") == 0,
           "the queued request did not end with EngineError: %s", why? why: "(none)");
    lp_result_destroy (&queued);
    int64_t new_pid = s_pid (client, victim);
    CHECK (new_pid > 0 && new_pid != pid, "engine %d: pid %lld before, %lld after restart",
           victim, (long long) pid, (long long) new_pid);
    r = lpt_exec (one, "return state == nil, lp.id");
    CHECK (lp_value_as_bool (lp_value_at (lp_result_values (r, 0), 0)),
           "the restarted engine kept its globals");
    CHECK (lp_value_as_int (lp_value_at (lp_result_values (r, 0), 1)) == victim,
           "the restarted engine's lp.id is not %d", victim);
    lp_result_destroy (&r);
    CHECK (lp_client_restart_engine (client, 999, 5000) == -1
           && lp_client_errcode (client) == LP_EREMOTE
           && strstr (lp_client_error (client), "no engine 999"),
           "restart of an unknown engine: %s", lp_client_error (client));
    lpt_say ("restart: engine %d pid %lld -> %lld, fresh state; unknown id refused (%s)",
             victim, (long long) pid, (long long) new_pid, lp_client_error (client));

    int gone = ids [2];
    CHECK (lp_client_shutdown_engine (client, gone, LPT_DEADLINE_MS) == 0,
           "shutdown of engine %d: %s", gone, lp_client_error (client));
    int now [16];
    int n = lp_client_ids (client, now, 16);
    CHECK (n == LPT_ENGINES - 1, "%d engines after one shutdown", n);
    for (int i = 0; i < n; i++)
        CHECK (now [i] != gone, "engine %d still listed after its shutdown", gone);
    lp_view_destroy (&one);
    lpt_say ("shutdown: engine %d gone, %d left", gone, n);
}

int
main (int argc, char **argv)
{
    lp_client_t *client = lpt_connect (argc, argv);
    snprintf (s_dir, sizeof s_dir, "%s", getenv ("LP_PROFILE_DIR")? getenv ("LP_PROFILE_DIR"): "/tmp");
    int ids [16];
    CHECK (lp_client_ids (client, ids, 16) >= 3, "3 engines needed");
    s_as_completed (client, ids);
    s_wait_any (client, ids);
    s_fd (client);
    s_dup (client);
    s_clear (client);
    s_map_n (client);
    s_restart_shutdown (client, ids);
    lp_client_destroy (&client);
    printf ("api_complete: ok\n");
    return 0;
}
