/*  engine_memory.c - a memory bomb with default settings (issue 8,
    observation 8)

    With no memory option anywhere, every local engine has a cap (50 % of
    physical memory divided by the local engines, protocol.md). A request
    that allocates without end ends with MemoryError, the engine lives (the
    same process serves the next request) and gives the memory back: its
    resident size (VmRSS of /proc/<pid>/status, pid from the status reply)
    is back under twice its idle size right after the reply. And
    collectgarbage("stop") of one request does not stay in force for the
    next.

    The bomb stops by itself at twice the expected cap, so that on a build
    without a default cap (the baseline) it ends with a value, not with the
    machine's OOM killer; the test then fails for want of a MemoryError.
*/
#include "lp_testlib.h"

//  True when pid runs with AddressSanitizer (its shadow memory for what
//  the bomb touched stays resident: the RSS check means nothing there)
static bool
s_asan (long pid)
{
    char path[64], line[512];
    snprintf (path, sizeof path, "/proc/%ld/maps", pid);
    FILE *f = fopen (path, "r");
    if (!f)
        return false;
    bool found = false;
    while (!found && fgets (line, sizeof line, f))
        found = strstr (line, "libasan") || strstr (line, "clang_rt.asan");
    fclose (f);
    return found;
}

static long long
s_mem_total_bytes (void)
{
    FILE *f = fopen ("/proc/meminfo", "r");
    CHECK (f, "cannot read /proc/meminfo");
    char line[256];
    long long kb = -1;
    while (fgets (line, sizeof line, f))
        if (strncmp (line, "MemTotal:", 9) == 0)
            kb = atoll (line + 9);
    fclose (f);
    CHECK (kb > 0, "no MemTotal in /proc/meminfo");
    return kb * 1024;
}

int
main (int argc, char **argv)
{
    printf ("engine_memory:\n");
    lp_client_t *client = lpt_connect (argc, argv);
    int ids[64];
    int n = lp_client_ids (client, ids, 64);
    CHECK (n >= 1, "no engines");
    int engine = ids[0];
    long pid = lpt_engine_pid (client, engine);
    lp_view_t *view = lp_client_view (client, &engine, 1);
    CHECK (view, "no view: %s", lp_client_error (client));

    //  Idle size, after a first request has run
    lp_result_t *r = lpt_exec (view, "local t = {} for i = 1, 1000 do t[i] = i end return #t");
    lp_result_destroy (&r);
    long idle_kb = lpt_proc_kb (pid, "VmRSS");
    CHECK (idle_kb > 0, "cannot read VmRSS of engine %d (pid %ld)", engine, pid);

    //  The bomb: 1 KB strings until twice the expected default cap
    long long bound = s_mem_total_bytes () / n;
    char code[512];
    snprintf (code, sizeof code,
              "local t, used = {}, 0 "
              "while used < %lld do t[#t + 1] = string.rep ('x', 1000) .. #t used = used + 1100 end "
              "return #t", bound);
    double t0 = lpt_now_ms ();
    r = lp_view_execute (view, code);
    CHECK (r && lp_result_wait (r, 180000) == LP_OK, "the memory bomb did not end within 180 s");
    const char *ename = lp_result_ename (r, 0);
    CHECK (ename && strcmp (ename, "MemoryError") == 0,
           "a request allocating %lld MB (twice the default cap) ended with %s, expected "
           "MemoryError (no default memory cap?)", bound >> 20, ename? ename: "a value");
    lpt_say ("memory bomb -> %s: %s (%.1f s)", ename, lp_result_evalue (r, 0),
             (lpt_now_ms () - t0) / 1000);
    lp_result_destroy (&r);
    long after_kb = lpt_proc_kb (pid, "VmRSS");
    CHECK (after_kb > 0, "engine %d (pid %ld) is gone after the MemoryError", engine, pid);

    r = lpt_exec (view, "return 6 * 7");
    LPT_EXPECT_INT (r, 0, 42, "a request after the MemoryError");
    lp_result_destroy (&r);
    CHECK (lpt_engine_pid (client, engine) == pid, "engine %d was replaced", engine);
    lpt_say ("VmRSS idle %ld kB, after the MemoryError %ld kB", idle_kb, after_kb);
    if (s_asan (pid))
        lpt_say ("AddressSanitizer build: RSS not judged (its shadow memory stays resident)");
    else
        CHECK (after_kb < 2 * idle_kb, "engine keeps %ld kB after the MemoryError, idle it had "
               "%ld kB (should be under twice that)", after_kb, idle_kb);

    //  collectgarbage ("stop") does not outlive its request
    r = lpt_exec (view, "collectgarbage ('stop') return collectgarbage ('isrunning')");
    lp_result_destroy (&r);
    r = lpt_exec (view, "return collectgarbage ('isrunning')");
    const lp_value_t *v = lp_result_value (r, 0);
    CHECK (v && lp_value_type (v) == LP_BOOL && lp_value_as_bool (v),
           "after collectgarbage('stop') in an earlier request the collector is %s",
           lpt_show (v));
    lp_result_destroy (&r);
    lpt_say ("each request starts with the collector running");

    lp_view_destroy (&view);
    lp_client_destroy (&client);
    printf ("engine_memory: OK\n");
    return 0;
}
