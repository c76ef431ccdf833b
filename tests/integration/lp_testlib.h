/*  lp_testlib.h - tiny header-only helpers for the integration tests

    Every integration test is its own program, run by run_with_cluster.sh
    with the client connection file in argv[1]. CHECK (tests/lp_check.h)
    fails loudly (file, line, message) and exits 1, SKIP exits 77; nothing
    waits without a deadline. The
    deadlines are generous because the test machine has 2 noisy cores.
*/
#ifndef LP_TESTLIB_H_INCLUDED
#define LP_TESTLIB_H_INCLUDED

#include "lp_check.h"          //  CHECK, FAIL, SKIP
#include <luaparallel.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define LPT_DEADLINE_MS  30000      //  generous deadline for any one event
#define LPT_ENGINES      4

static inline void
lpt_say (const char *fmt, ...)
{
    va_list ap;
    va_start (ap, fmt);
    printf ("  ");
    vprintf (fmt, ap);
    printf ("\n");
    fflush (stdout);
    va_end (ap);
}

//  Monotonic milliseconds.
static inline double
lpt_now_ms (void)
{
    struct timespec ts;
    clock_gettime (CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000.0 + ts.tv_nsec / 1e6;
}

//  Connects with the file in argv[1] and waits for n engines.
static inline lp_client_t *
lpt_connect_n (int argc, char **argv, int n)
{
    CHECK (argc >= 2, "usage: %s lp-client.json (run through tests/run_with_cluster.sh)", argv[0]);
    lp_client_t *client = lp_client_connect (argv[1], LPT_DEADLINE_MS);
    CHECK (client, "cannot connect with %s: %s", argv[1], lp_last_error ());
    int rc = lp_client_wait_for_engines (client, n, LPT_DEADLINE_MS);
    int ids[64];
    int count = lp_client_ids (client, ids, 64);
    CHECK (rc == 0, "only %d of %d engines registered within %d ms: %s",
           count, n, LPT_DEADLINE_MS, lp_client_error (client));
    CHECK (count >= n, "lp_client_ids lists %d engines after waiting for %d", count, n);
    return client;
}

static inline lp_client_t *
lpt_connect (int argc, char **argv)
{
    return lpt_connect_n (argc, argv, LPT_ENGINES);
}

//  Text of all errors of a result (static buffer, for messages).
static inline const char *
lpt_errors (lp_result_t *r)
{
    static char buf[8192];
    buf[0] = 0;
    size_t used = 0;
    for (int i = 0; i < lp_result_count (r) && used < sizeof buf - 1; i++) {
        const char *e = lp_result_error (r, i);
        if (e)
            used += snprintf (buf + used, sizeof buf - used, "[reply %d] %s\n", i, e);
    }
    if (used == 0)
        snprintf (buf, sizeof buf, "(no error text)");
    return buf;
}

//  Waits for r (deadline), asserting it completes.
#define LPT_WAIT(r, what) do { \
    CHECK ((r) != NULL, "%s: call returned NULL", (what)); \
    int lpt_rc_ = lp_result_wait ((r), LPT_DEADLINE_MS); \
    CHECK (lpt_rc_ == LP_OK, "%s: no complete result within %d ms (%s; %d of %d replies failed): %s", \
           (what), LPT_DEADLINE_MS, lp_strerror (lpt_rc_), lp_result_failed (r), lp_result_count (r), lpt_errors (r)); \
} while (0)

//  Waits for r and asserts every reply succeeded.
#define LPT_WAIT_OK(r, what) do { \
    LPT_WAIT ((r), (what)); \
    CHECK (lp_result_failed (r) == 0, "%s: %d of %d replies failed:\n%s", \
           (what), lp_result_failed (r), lp_result_count (r), lpt_errors (r)); \
} while (0)

//  Waits up to ms for r and checks that every reply succeeded; returns r.
static inline lp_result_t *
lpt_wait_ok_ms (lp_result_t *r, int ms, const char *what)
{
    CHECK (r, "%s: call failed at once", what);
    int rc = lp_result_wait (r, ms);
    CHECK (rc == LP_OK, "%s: %s within %d ms", what, lp_strerror (rc), ms);
    CHECK (lp_result_failed (r) == 0, "%s: %s", what, lpt_errors (r));
    return r;
}

//  A "kB" field of /proc/<pid>/status (field "VmRSS", "VmHWM", ...), -1
//  when unreadable.
static inline long
lpt_proc_kb (long pid, const char *field)
{
    char path[64];
    snprintf (path, sizeof path, "/proc/%ld/status", pid);
    FILE *file = fopen (path, "r");
    if (!file)
        return -1;
    char line[256];
    size_t len = strlen (field);
    long kb = -1;
    while (fgets (line, sizeof line, file))
        if (strncmp (line, field, len) == 0 && line[len] == ':')
            kb = atol (line + len + 1);
    fclose (file);
    return kb;
}

//  Printed form of a value (static buffer, for messages).
static inline const char *
lpt_show (const lp_value_t *v)
{
    static char buf[4][512];
    static int which = 0;
    which = (which + 1) % 4;
    if (!v)
        return "(NULL)";
    char *text = lp_value_print (v);
    snprintf (buf[which], sizeof buf[which], "%s", text ? text : "(unprintable)");
    if (text && strlen (text) >= sizeof buf[which])
        strcpy (buf[which] + sizeof buf[which] - 5, "...");
    free (text);
    return buf[which];
}

//  Runs code on the view, asserts success, returns the result (caller destroys).
static inline lp_result_t *
lpt_exec (lp_view_t *view, const char *code)
{
    lp_result_t *r = lp_view_execute (view, code);
    LPT_WAIT_OK (r, code);
    return r;
}

//  Asserts that reply i of r is the integer expect.
#define LPT_EXPECT_INT(r, i, expect, what) do { \
    const lp_value_t *lpt_v_ = lp_result_value ((r), (i)); \
    CHECK (lpt_v_ && lp_value_type (lpt_v_) == LP_INT && lp_value_as_int (lpt_v_) == (expect), \
           "%s: reply %d (engine %d) is %s, expected integer %lld", (what), (i), \
           lp_result_engine ((r), (i)), lpt_show (lpt_v_), (long long) (expect)); \
} while (0)

//  The status row (map) of engine id in a status array, or NULL.
static inline const lp_value_t *
lpt_status_row (const lp_value_t *status, int id)
{
    if (!status || lp_value_type (status) != LP_ARRAY)
        return NULL;
    for (size_t i = 0; i < lp_value_len (status); i++) {
        const lp_value_t *row = lp_value_at (status, i);
        const lp_value_t *rid = row ? lp_value_get (row, "id") : NULL;
        if (rid && lp_value_as_int (rid) == id)
            return row;
    }
    return NULL;
}

//  Queue count of engine id from a fresh status (-1 when not listed).
static inline int64_t
lpt_queue (lp_client_t *client, int id)
{
    lp_value_t *status = lp_client_status (client, LPT_DEADLINE_MS);
    CHECK (status, "status: %s", lp_client_error (client));
    const lp_value_t *row = lpt_status_row (status, id);
    int64_t queue = row ? lp_value_as_int (lp_value_get (row, "queue")) : -1;
    lp_value_destroy (&status);
    return queue;
}

//  Polls lp_client_status until engine id shows state "busy"; returns the
//  elapsed ms. Fails after the deadline.
static inline double
lpt_wait_busy (lp_client_t *client, int id)
{
    double t0 = lpt_now_ms ();
    char last[256] = "(no status)";
    while (lpt_now_ms () - t0 < LPT_DEADLINE_MS) {
        lp_value_t *status = lp_client_status (client, 5000);
        const lp_value_t *row = lpt_status_row (status, id);
        const lp_value_t *state = row ? lp_value_get (row, "state") : NULL;
        const char *text = state ? lp_value_as_string (state, NULL) : NULL;
        if (text && strcmp (text, "busy") == 0) {
            lp_value_destroy (&status);
            return lpt_now_ms () - t0;
        }
        if (status) {
            char *p = lp_value_print (row ? row : status);
            snprintf (last, sizeof last, "%s", p ? p : "?");
            free (p);
        }
        else
            snprintf (last, sizeof last, "lp_client_status failed: %s", lp_client_error (client));
        lp_value_destroy (&status);
        lp_client_poll (client, 50);
    }
    CHECK (0, "engine %d never showed state \"busy\" within %d ms; last status: %s",
           id, LPT_DEADLINE_MS, last);
    return -1;
}

//  Pid of engine id from lp_client_status, or -1.
static inline long
lpt_engine_pid (lp_client_t *client, int id)
{
    lp_value_t *status = lp_client_status (client, LPT_DEADLINE_MS);
    CHECK (status, "lp_client_status failed: %s", lp_client_error (client));
    const lp_value_t *row = lpt_status_row (status, id);
    CHECK (row, "engine %d not in status %s", id, lpt_show (status));
    const lp_value_t *pid = lp_value_get (row, "pid");
    CHECK (pid && lp_value_type (pid) == LP_INT && lp_value_as_int (pid) > 1,
           "engine %d status row has no usable pid: %s", id, lpt_show (row));
    long result = (long) lp_value_as_int (pid);
    lp_value_destroy (&status);
    return result;
}

//  Prints the peak RSS (VmHWM) of engines ids[0..n) and of this client.
static inline void
lpt_say_peak_rss (lp_client_t *client, const int *ids, int n)
{
    for (int i = 0; i < n; i++) {
        long pid = lpt_engine_pid (client, ids [i]);
        lpt_say ("engine %d: peak RSS (VmHWM) %.0f MB", ids [i], lpt_proc_kb (pid, "VmHWM") / 1024.0);
    }
    lpt_say ("client: peak RSS (VmHWM) %.0f MB", lpt_proc_kb ((long) getpid (), "VmHWM") / 1024.0);
}

//  True when ids lists id.
static inline bool
lpt_has_id (lp_client_t *client, int id)
{
    int ids[256];
    int n = lp_client_ids (client, ids, 256);
    for (int i = 0; i < n; i++)
        if (ids[i] == id)
            return true;
    return false;
}

//  Deep comparison where maps compare regardless of key order (a Lua
//  table has none) and integers/numbers must keep their type.
static inline bool
lpt_same (const lp_value_t *a, const lp_value_t *b)
{
    if (!a || !b)
        return a == b;
    if (lp_value_type (a) != lp_value_type (b))
        return false;
    size_t n = lp_value_len (a);
    switch (lp_value_type (a)) {
        case LP_ARRAY:
            if (n != lp_value_len (b))
                return false;
            for (size_t i = 0; i < n; i++)
                if (!lpt_same (lp_value_at (a, i), lp_value_at (b, i)))
                    return false;
            return true;
        case LP_MAP:
            if (n != lp_value_len (b))
                return false;
            for (size_t i = 0; i < n; i++) {
                const lp_value_t *found = NULL;
                for (size_t j = 0; j < n && !found; j++)
                    if (lp_value_equal (lp_value_key_at (a, i), lp_value_key_at (b, j)))
                        found = lp_value_value_at (b, j);
                if (!found || !lpt_same (lp_value_value_at (a, i), found))
                    return false;
            }
            return true;
        default:
            return lp_value_equal (a, b);
    }
}

#endif
