/*  =========================================================================
    lpdoctor - check the engines of a running cluster (cluster.sh doctor)

    Usage: lpdoctor [--file lp-client.json | --profile NAME] [--timeout MS]

    A client of libluaparallel (public API only). For each registered
    engine, one at a time, it executes LP_DOCTOR_CODE ("return lp.facts
    ()", src/common/lp_proto.h), which the engine answers with its host,
    pid, user, working directory, Lua release, luaparallel and protocol
    versions, free memory, load average, wall clock and the time of a
    fixed calibration loop. One engine at a time, so that the calibration
    loops do not compete with each other and each clock reading sits in
    a short round trip:

        t0 = our clock; execute on engine k; engine reads clock c; t3 = ours
        offset = c - (t0 + t3) / 2, uncertain by (t3 - t0) / 2

    (NTP's estimate with the engine's processing time folded into the
    round trip). lpdoctor runs on the controller's host (cluster.sh
    doctor), so the offset is against the controller's clock.

    Flags: an engine whose luaparallel, protocol or Lua version differs
    from this client's (lpdoctor is built with the controller); a clock
    offset over LPDOCTOR_SKEW_MSEC beyond the round trip's uncertainty;
    a calibration time over LPDOCTOR_SLOW_FACTOR times the median of the
    engines; an engine that did not answer within the timeout (busy or
    stuck: a request queued behind a long task waits its turn).

    Exit status: 0 nothing flagged, 1 something flagged or no controller,
    2 bad usage.
    =========================================================================
*/
#include <luaparallel.h>
#include "lp_defaults.h"
#include "lp_proto.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <lua.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>

#define streq(a, b) (strcmp ((a), (b)) == 0)

#define LPDOCTOR_TIMEOUT_MSEC   10000   //  per engine, and to connect
#define LPDOCTOR_SKEW_MSEC      1000    //  clock offset flagged past this
#define LPDOCTOR_SLOW_FACTOR    3       //  calibration this many times the median
#define LPDOCTOR_MAX_ENGINES    65536

typedef struct {
    int id;                             //  engine id
    lp_value_t *facts;                  //  its answer (owned), NULL if none
    char error [256];                   //  why there is none
    double offset_ms;                   //  clock offset against ours
    double uncertainty_ms;              //  half the round trip
    int64_t calibration_us;             //  its calibration time
    char flags [512];                   //  what is wrong, "" when nothing
} s_row_t;

static void
s_usage (FILE *out)
{
    fprintf (out,
        "usage: lpdoctor [--file lp-client.json | --profile NAME] [--timeout MS]\n"
        "For every engine of a running controller: host, pid, user, working\n"
        "directory, Lua, luaparallel and protocol versions, free memory, load,\n"
        "clock offset against this host and a calibration loop's time; flags\n"
        "version mismatches, clock skew over %d ms, engines %dx slower than the\n"
        "median, engines that do not answer within --timeout (default %d ms).\n"
        "Exit status 0 when nothing is flagged, 1 otherwise.\n",
        LPDOCTOR_SKEW_MSEC, LPDOCTOR_SLOW_FACTOR, LPDOCTOR_TIMEOUT_MSEC);
}

static int
s_profile_file (const char *profile, char *buf, size_t size)
{
    const char *lp_home = getenv ("LP_HOME");
    const char *home = getenv ("HOME");
    int n = lp_home && *lp_home
          ? snprintf (buf, size, "%s/profile_%s/security/lp-client.json", lp_home, profile)
          : home && *home
          ? snprintf (buf, size, "%s/.luaparallel/profile_%s/security/lp-client.json",
                      home, profile)
          : -1;
    return (n < 0 || (size_t) n >= size)? -1: 0;
}

static int64_t
s_wall_usec (void)
{
    struct timeval tv;
    gettimeofday (&tv, NULL);
    return (int64_t) tv.tv_sec * 1000000 + tv.tv_usec;
}

static const char *
s_string (const lp_value_t *facts, const char *key)
{
    const char *s = lp_value_as_string (lp_value_get (facts, key), NULL);
    return s? s: "?";
}

static int64_t
s_int (const lp_value_t *facts, const char *key)
{
    const lp_value_t *v = lp_value_get (facts, key);
    return v? lp_value_as_int (v): -1;
}

static void
s_flag (s_row_t *row, const char *text)
{
    size_t used = strlen (row->flags);
    snprintf (row->flags + used, sizeof row->flags - used, "%s%s", used? "; ": "", text);
}

//  Asks engine row->id for its facts.
static void
s_ask (lp_client_t *client, s_row_t *row, int timeout_ms)
{
    lp_view_t *view = lp_client_view (client, &row->id, 1);
    if (!view) {
        snprintf (row->error, sizeof row->error, "%s", lp_client_error (client));
        return;
    }
    int64_t t0 = s_wall_usec ();
    lp_result_t *result = lp_view_execute (view, LP_DOCTOR_CODE);
    int rc = result? lp_result_wait (result, timeout_ms): LP_ECLOSED;
    int64_t t3 = s_wall_usec ();
    const lp_value_t *facts = rc == LP_OK? lp_result_value (result, 0): NULL;
    if (rc == LP_ETIMEOUT)
        snprintf (row->error, sizeof row->error, "no answer within %d ms (busy or stuck)",
                  timeout_ms);
    else
    if (!facts || lp_value_type (facts) != LP_MAP)
        snprintf (row->error, sizeof row->error, "%s",
                  result && lp_result_error (result, 0)? lp_result_error (result, 0)
                : result? "no facts in the reply": lp_client_error (client));
    else {
        row->facts = lp_value_dup (facts);
        row->offset_ms = (s_int (facts, LP_FACT_CLOCK) - (t0 + t3) / 2.0) / 1000.0;
        row->uncertainty_ms = (t3 - t0) / 2000.0;
        row->calibration_us = s_int (facts, LP_FACT_CALIBRATION);
    }
    lp_result_destroy (&result);
    lp_view_destroy (&view);
}

static int
s_cmp_int64 (const void *a, const void *b)
{
    int64_t x = *(const int64_t *) a, y = *(const int64_t *) b;
    return (x > y) - (x < y);
}

//  The flags of every row; returns how many rows have any.
static int
s_judge (s_row_t *rows, int count)
{
    int64_t *times = (int64_t *) calloc ((size_t) (count > 0? count: 1), sizeof *times);
    int timed = 0;
    for (int i = 0; i < count; i++)
        if (rows [i].facts && rows [i].calibration_us > 0 && times)
            times [timed++] = rows [i].calibration_us;
    int64_t median = 0;
    if (timed > 0) {
        qsort (times, (size_t) timed, sizeof *times, s_cmp_int64);
        median = times [timed / 2];
    }
    free (times);
    int flagged = 0;
    for (int i = 0; i < count; i++) {
        s_row_t *row = &rows [i];
        char text [200];
        if (!row->facts)
            s_flag (row, row->error);
        else {
            if (!streq (s_string (row->facts, LP_FACT_VERSION), LP_VERSION_STRING)) {
                snprintf (text, sizeof text, "luaparallel %s, not %s",
                          s_string (row->facts, LP_FACT_VERSION), LP_VERSION_STRING);
                s_flag (row, text);
            }
            if (!streq (s_string (row->facts, LP_FACT_PROTOCOL), LP_PROTOCOL_VERSION)) {
                snprintf (text, sizeof text, "protocol %s, not %s",
                          s_string (row->facts, LP_FACT_PROTOCOL), LP_PROTOCOL_VERSION);
                s_flag (row, text);
            }
            if (!streq (s_string (row->facts, LP_FACT_LUA), LUA_RELEASE)) {
                snprintf (text, sizeof text, "%s, not %s",
                          s_string (row->facts, LP_FACT_LUA), LUA_RELEASE);
                s_flag (row, text);
            }
            double beyond = (row->offset_ms < 0? -row->offset_ms: row->offset_ms)
                          - row->uncertainty_ms;
            if (beyond > LPDOCTOR_SKEW_MSEC) {
                snprintf (text, sizeof text, "clock off by %+.0f ms", row->offset_ms);
                s_flag (row, text);
            }
            if (median > 0 && row->calibration_us > LPDOCTOR_SLOW_FACTOR * median) {
                snprintf (text, sizeof text, "slow: calibration %.1fx the median",
                          (double) row->calibration_us / (double) median);
                s_flag (row, text);
            }
        }
        if (*row->flags)
            flagged++;
    }
    return flagged;
}

static void
s_print (s_row_t *rows, int count, int flagged)
{
    printf ("%-4s %-12s %-8s %-8s %-9s %-6s %-5s %9s %5s %9s %8s  %s  %s\n",
            "id", "host", "pid", "user", "lua", "lp", "proto", "free MB", "load",
            "clock ms", "calib ms", "cwd", "flags");
    for (int i = 0; i < count; i++) {
        s_row_t *row = &rows [i];
        if (!row->facts) {
            printf ("%-4d %-12s %-8s %-8s %-9s %-6s %-5s %9s %5s %9s %8s  %s  %s\n",
                    row->id, "?", "?", "?", "?", "?", "?", "?", "?", "?", "?", "?", row->flags);
            continue;
        }
        const lp_value_t *f = row->facts;
        char clock [32];
        snprintf (clock, sizeof clock, "%+.1f", row->offset_ms);
        printf ("%-4d %-12.12s %-8" PRId64 " %-8.8s %-9s %-6s %-5s %9" PRId64 " %5.2f %9s %8.1f  %s  %s\n",
                row->id, s_string (f, LP_FACT_HOST), s_int (f, LP_FACT_PID),
                s_string (f, LP_FACT_USER), s_string (f, LP_FACT_LUA),
                s_string (f, LP_FACT_VERSION), s_string (f, LP_FACT_PROTOCOL),
                s_int (f, LP_FACT_MEM_FREE) / 1024,
                lp_value_as_number (lp_value_get (f, LP_FACT_LOAD)), clock,
                row->calibration_us / 1000.0, s_string (f, LP_FACT_CWD),
                *row->flags? row->flags: "ok");
    }
    if (flagged)
        printf ("%d engine%s, %d flagged\n", count, count == 1? "": "s", flagged);
    else
        printf ("%d engine%s, nothing flagged\n", count, count == 1? "": "s");
}

int
main (int argc, char *argv [])
{
    const char *file = NULL;
    const char *profile = "default";
    int timeout_ms = LPDOCTOR_TIMEOUT_MSEC;
    for (int i = 1; i < argc; i++) {
        const char *arg = argv [i];
        if (streq (arg, "--help") || streq (arg, "-h")) {
            s_usage (stdout);
            return 0;
        }
        if (i + 1 >= argc) {
            fprintf (stderr, "lpdoctor: unknown option or missing value: %s\n", arg);
            s_usage (stderr);
            return 2;
        }
        if (streq (arg, "--file"))
            file = argv [++i];
        else
        if (streq (arg, "--profile"))
            profile = argv [++i];
        else
        if (streq (arg, "--timeout")) {
            char *end = NULL;
            errno = 0;
            long t = strtol (argv [++i], &end, 10);
            if (errno || !end || *end || t <= 0 || t > INT_MAX) {
                fprintf (stderr, "lpdoctor: --timeout wants milliseconds > 0\n");
                return 2;
            }
            timeout_ms = (int) t;
        }
        else {
            fprintf (stderr, "lpdoctor: unknown option: %s\n", arg);
            s_usage (stderr);
            return 2;
        }
    }
    char path [PATH_MAX];
    if (!file) {
        struct stat st;
        if (s_profile_file (profile, path, sizeof path) || stat (path, &st)) {
            printf ("no controller running for profile %s\n", profile);
            return 1;
        }
        file = path;
    }
    lp_client_t *client = lp_client_connect (file, timeout_ms);
    if (!client) {
        fprintf (stderr, "lpdoctor: cannot connect with %s: %s\n", file, lp_last_error ());
        return 1;
    }
    int *ids = (int *) calloc (LPDOCTOR_MAX_ENGINES, sizeof *ids);
    int count = ids? lp_client_ids (client, ids, LPDOCTOR_MAX_ENGINES): -1;
    s_row_t *rows = count > 0? (s_row_t *) calloc ((size_t) count, sizeof *rows): NULL;
    if (count < 0 || (count > 0 && !rows)) {
        fprintf (stderr, "lpdoctor: %s\n", ids? lp_client_error (client): "out of memory");
        free (ids);
        lp_client_destroy (&client);
        return 1;
    }
    for (int i = 0; i < count; i++) {
        rows [i].id = ids [i];
        s_ask (client, &rows [i], timeout_ms);
    }
    int flagged = s_judge (rows, count);
    s_print (rows, count, flagged);
    if (count == 0)
        printf ("no engine registered\n");
    for (int i = 0; i < count; i++)
        lp_value_destroy (&rows [i].facts);
    free (rows);
    free (ids);
    lp_client_destroy (&client);
    return flagged || count == 0? 1: 0;
}
