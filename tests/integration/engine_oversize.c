/*  engine_oversize.c - a result past the old 128 MiB frame cap comes back
    (issue 9; was issue 8, observation 4)

    Engines used to refuse a result whose msgpack passed 128 MiB, the old
    frame cap, with a SerializationError. Since every frame is at most
    2 MiB and tables travel out of band in pieces (protocol.md, "Frame
    sizes"), that limit protected nothing: a value of any size that fits
    in memory must come back. This test returns a table of 3*10^6 distinct
    45-character strings (about 141 MB of msgpack, not one string nor a
    typed array, so only the table pieces carry it) from execute and from
    a pull, checks every element, pushes it back and compares it there
    element by element, and checks that the engine keeps serving. Before
    the fix: SerializationError "result of N bytes exceeds the 128 MiB
    frame cap".

    Memory: the peak RSS of the engine and of the client is measured for
    each transfer alone (VmHWM reset through /proc/PID/clear_refs) and
    printed against the table's size in Lua (collectgarbage "count"); the
    test fails past S_RSS_TIMES that (the C value tree costs about 100
    bytes per element on top of the Lua table and the msgpack).
*/
#include "lp_testlib.h"

#define N           3000000             //  strings
#define PAD         "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"    //  30 bytes
#define WAIT_MS     240000              //  hundreds of MB on 2 busy cores
#define OLD_CAP     (128.0 * 1024 * 1024)
#define S_RSS_TIMES 3.5                 //  peak RSS growth / Lua table size

//  Resets the peak RSS (VmHWM) of pid to its current RSS
static void
s_reset_peak (long pid)
{
    char path [64];
    snprintf (path, sizeof path, "/proc/%ld/clear_refs", pid);
    FILE *file = fopen (path, "w");
    CHECK (file && fputs ("5", file) >= 0 && fclose (file) == 0,
           "cannot reset the peak RSS of %ld", pid);
}

//  Peak RSS of pid since the reset, in bytes, less base (its RSS then)
static double
s_peak_growth (long pid, double base)
{
    double peak = lpt_proc_kb (pid, "VmHWM") * 1024.0;
    CHECK (peak > 0, "no VmHWM for %ld", pid);
    return peak - base;
}

//  The table of N strings, made in C
static lp_value_t *
s_make_table (void)
{
    lp_value_t *array = lp_value_array ();
    CHECK (array, "out of memory");
    char text [64];
    for (size_t k = 0; k < N; k++) {
        snprintf (text, sizeof text, "item %09zu " PAD, k + 1);
        CHECK (lp_value_append (array, lp_value_string (text)) == 0, "out of memory");
    }
    return array;
}

//  Lua: the table t of N strings "item %09d <PAD>"
#define LUA_MAKE(t) \
    "local " t " = {} for i = 1, 3000000 do " t "[i] = string.format ('item %09d " PAD "', i) end "

//  Checks that v is the table of N strings
static void
s_check_table (const lp_value_t *v, const char *what)
{
    CHECK (v && lp_value_type (v) == LP_ARRAY && lp_value_len (v) == N,
           "%s: %s (%zu elements), expected an array of %d strings", what,
           lpt_show (v), v? lp_value_len (v): 0, N);
    char expect [64];
    for (size_t k = 0; k < N; k++) {
        snprintf (expect, sizeof expect, "item %09zu " PAD, k + 1);
        size_t len = 0;
        const char *got = lp_value_as_string (lp_value_at (v, k), &len);
        CHECK (got && len == strlen (expect) && memcmp (got, expect, len) == 0,
               "%s: element %zu is %s, expected '%s'", what, k + 1,
               lpt_show (lp_value_at (v, k)), expect);
    }
}

int
main (int argc, char **argv)
{
    printf ("engine_oversize:\n");
    lp_client_t *client = lpt_connect (argc, argv);
    int ids[64];
    int n = lp_client_ids (client, ids, 64);
    CHECK (n >= 1, "no engines");
    lp_view_t *view = lp_client_view (client, &ids[0], 1);
    CHECK (view, "no view: %s", lp_client_error (client));
    long engine = lpt_engine_pid (client, ids[0]);
    long self = (long) getpid ();

    //  The msgpack of the table: array32 header, then str8 of 45 bytes each
    double msgpack = 5 + (double) N * (2 + strlen ("item 000000000 " PAD));
    CHECK (msgpack > OLD_CAP, "the table is %.0f bytes of msgpack, not past the old cap", msgpack);
    //  Its size in Lua
    lp_result_t *r = lpt_wait_ok_ms (lp_view_execute (view,
        "collectgarbage () local before = collectgarbage ('count') " LUA_MAKE ("t")
        "collectgarbage () local size = (collectgarbage ('count') - before) * 1024 "
        "t = nil collectgarbage () return size"), WAIT_MS, "size of the table in Lua");
    double lua = lp_value_as_number (lp_result_get (r));
    lp_result_destroy (&r);
    CHECK (lua > msgpack, "the table is %.0f bytes in Lua", lua);
    lpt_say ("the table: %.0f MB of msgpack, %.0f MB in Lua", msgpack / 1e6, lua / 1e6);

    //  A result past the old cap
    double engine_base = lpt_proc_kb (engine, "VmRSS") * 1024.0;
    double client_base = lpt_proc_kb (self, "VmRSS") * 1024.0;
    s_reset_peak (engine);
    s_reset_peak (self);
    double t0 = lpt_now_ms ();
    r = lpt_wait_ok_ms (lp_view_execute (view, LUA_MAKE ("t") "return t"), WAIT_MS,
                        "execute returning 3*10^6 strings");
    double t_exec = lpt_now_ms () - t0;
    s_check_table (lp_result_get (r), "execute");
    lp_result_destroy (&r);
    double engine_exec = s_peak_growth (engine, engine_base);
    double client_exec = s_peak_growth (self, client_base);
    lpt_say ("execute returned it in %.1f s, every element right; peak RSS growth: "
             "engine %.0f MB (%.1fx the Lua table), client %.0f MB (%.1fx)", t_exec / 1000,
             engine_exec / 1e6, engine_exec / lua, client_exec / 1e6, client_exec / lua);

    //  A pull past the old cap
    r = lpt_wait_ok_ms (lp_view_execute (view, LUA_MAKE ("t") "big = t collectgarbage () return #big"),
                        WAIT_MS, "make big");
    lp_result_destroy (&r);
    engine_base = lpt_proc_kb (engine, "VmRSS") * 1024.0;
    client_base = lpt_proc_kb (self, "VmRSS") * 1024.0;
    s_reset_peak (engine);
    s_reset_peak (self);
    t0 = lpt_now_ms ();
    r = lpt_wait_ok_ms (lp_view_pull (view, "big"), WAIT_MS, "pull of 3*10^6 strings");
    double t_pull = lpt_now_ms () - t0;
    s_check_table (lp_result_get (r), "pull");
    lp_result_destroy (&r);
    double engine_pull = s_peak_growth (engine, engine_base);
    double client_pull = s_peak_growth (self, client_base);
    lpt_say ("pull of it: %.1f s, every element right; peak RSS growth: engine %.0f MB "
             "(%.1fx), client %.0f MB (%.1fx)", t_pull / 1000, engine_pull / 1e6,
             engine_pull / lua, client_pull / 1e6, client_pull / lua);
    r = lpt_exec (view, "big = nil collectgarbage () return true");
    lp_result_destroy (&r);

    //  A push of it, compared element by element on the engine
    lp_value_t *table = s_make_table ();
    engine_base = lpt_proc_kb (engine, "VmRSS") * 1024.0;
    client_base = lpt_proc_kb (self, "VmRSS") * 1024.0;
    s_reset_peak (engine);
    s_reset_peak (self);
    t0 = lpt_now_ms ();
    r = lpt_wait_ok_ms (lp_view_push (view, "back", table), WAIT_MS, "push of 3*10^6 strings");
    double t_push = lpt_now_ms () - t0;
    lp_result_destroy (&r);
    double engine_push = s_peak_growth (engine, engine_base);
    double client_push = s_peak_growth (self, client_base);
    r = lpt_wait_ok_ms (lp_view_execute (view,
        "local same = 0 for i = 1, #back do "
        "if back[i] == string.format ('item %09d " PAD "', i) then same = same + 1 end end "
        "local n = #back back = nil collectgarbage () return same, n"), WAIT_MS,
        "compare on the engine");
    const lp_value_t *got = lp_result_get (r);
    CHECK (got && lp_value_len (got) == 2 && lp_value_as_int (lp_value_at (got, 0)) == N
        && lp_value_as_int (lp_value_at (got, 1)) == N,
           "the pushed table on the engine: {same, #back} = %s, expected {%d, %d}",
           lpt_show (got), N, N);
    lp_result_destroy (&r);
    lpt_say ("push of it: %.1f s, the engine sees every element; peak RSS growth: engine "
             "%.0f MB (%.1fx), client %.0f MB (%.1fx, the C table made before not counted)",
             t_push / 1000, engine_push / 1e6, engine_push / lua, client_push / 1e6,
             client_push / lua);

    r = lpt_exec (view, "return 6 * 7");
    LPT_EXPECT_INT (r, 0, 42, "a direct request after the large results");
    lp_result_destroy (&r);

    double worst = engine_exec;
    double each [] = { client_exec, engine_pull, client_pull, engine_push };
    for (size_t i = 0; i < sizeof each / sizeof each [0]; i++)
        if (each [i] > worst)
            worst = each [i];
#if defined (__SANITIZE_ADDRESS__)
    //  AddressSanitizer's redzones and quarantine inflate RSS: the bound
    //  holds for the release build (checked there), not here.
    lpt_say ("RSS bound not checked under AddressSanitizer");
    worst = 0;
#endif
    CHECK (worst <= S_RSS_TIMES * lua, "a transfer grew a process by %.0f MB, past %.0fx the "
           "%.0f MB table", worst / 1e6, S_RSS_TIMES, lua / 1e6);

    lp_view_destroy (&view);
    lp_client_destroy (&client);
    printf ("engine_oversize: OK\n");
    return 0;
}
