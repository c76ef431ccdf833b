/*  big_mixed - a result of 2*10^7 mixed numbers comes back (issue 9)

    A table that mixes integers and floats is no typed array: it travels
    as msgpack, element by element, cut into table pieces (ext 3). Its
    msgpack here is about 140 MB, past the old 128 MiB cap that engines
    enforced until issue 9 (SerializationError then). The test returns
    t[i] = i (even i) or i + 0.5 (odd i) for i = 1..2*10^7 from execute,
    checks every element's value and kind (integer or float), and prints
    the peak RSS growth of the engine and the client (VmHWM reset through
    /proc/PID/clear_refs) against the table's size in Lua. It fails past
    S_RSS_TIMES that: the C value tree between msgpack and Lua costs about
    72 bytes per element, so such a table costs about 4x its Lua size in
    each process (measured 4.0x engine, 3.9x client), above the 3x aimed
    at; the bound keeps it from getting worse.

    Label slow: over 2 GB per process, about 20 s.
*/
#include "lp_testlib.h"

#define N           20000000            //  2*10^7
#define WAIT_MS     600000              //  GBs of C heap on 2 busy cores
#define S_RSS_TIMES 5.0                 //  peak RSS growth / Lua table size
#define LUA_MAKE \
    "local t = {} for i = 1, 2 * 10^7 do t[i] = i % 2 == 0 and i or i + 0.5 end "

static void
s_reset_peak (long pid)
{
    char path [64];
    snprintf (path, sizeof path, "/proc/%ld/clear_refs", pid);
    FILE *file = fopen (path, "w");
    CHECK (file && fputs ("5", file) >= 0 && fclose (file) == 0,
           "cannot reset the peak RSS of %ld", pid);
}

int
main (int argc, char **argv)
{
    printf ("big_mixed:\n");
    lp_client_t *client = lpt_connect (argc, argv);
    int ids[64];
    CHECK (lp_client_ids (client, ids, 64) >= 1, "no engines");
    lp_view_t *view = lp_client_view (client, &ids[0], 1);
    CHECK (view, "no view: %s", lp_client_error (client));
    long engine = lpt_engine_pid (client, ids[0]);
    long self = (long) getpid ();

    lp_result_t *r = lpt_wait_ok_ms (lp_view_execute (view,
        "collectgarbage () local before = collectgarbage ('count') " LUA_MAKE
        "collectgarbage () local size = (collectgarbage ('count') - before) * 1024 "
        "t = nil collectgarbage () return size"), WAIT_MS, "size of the table in Lua");
    double lua = lp_value_as_number (lp_result_get (r));
    lp_result_destroy (&r);
    CHECK (lua > 16.0 * N, "the table is %.0f bytes in Lua", lua);

    double engine_base = lpt_proc_kb (engine, "VmRSS") * 1024.0;
    double client_base = lpt_proc_kb (self, "VmRSS") * 1024.0;
    s_reset_peak (engine);
    s_reset_peak (self);
    double t0 = lpt_now_ms ();
    r = lpt_wait_ok_ms (lp_view_execute (view, LUA_MAKE "return t"), WAIT_MS,
                        "execute returning 2*10^7 mixed numbers");
    double t_exec = lpt_now_ms () - t0;
    const lp_value_t *v = lp_result_get (r);
    CHECK (v && lp_value_type (v) == LP_ARRAY && lp_value_len (v) == N,
           "execute returned %s (%zu elements), expected an array of %d numbers",
           lpt_show (v), v? lp_value_len (v): 0, N);
    double msgpack = 5;
    for (size_t k = 0; k < N; k++) {
        const lp_value_t *item = lp_value_at (v, k);
        size_t i = k + 1;
        if (i % 2 == 0) {
            CHECK (lp_value_type (item) == LP_INT && lp_value_as_int (item) == (int64_t) i,
                   "element %zu is %s, expected integer %zu", i, lpt_show (item), i);
            msgpack += i < 128? 1: i < 256? 2: i < 65536? 3: 5;
        }
        else {
            CHECK (lp_value_type (item) == LP_NUMBER && lp_value_as_number (item) == i + 0.5,
                   "element %zu is %s, expected %zu.5", i, lpt_show (item), i);
            msgpack += 9;
        }
    }
    lp_result_destroy (&r);
    CHECK (msgpack > 128.0 * 1024 * 1024, "only %.0f bytes of msgpack", msgpack);
    double engine_grew = lpt_proc_kb (engine, "VmHWM") * 1024.0 - engine_base;
    double client_grew = lpt_proc_kb (self, "VmHWM") * 1024.0 - client_base;
    lpt_say ("execute returned 2*10^7 mixed numbers (%.0f MB of msgpack, %.0f MB in Lua) in "
             "%.1f s, every element right; peak RSS growth: engine %.0f MB (%.1fx), client "
             "%.0f MB (%.1fx)", msgpack / 1e6, lua / 1e6, t_exec / 1000, engine_grew / 1e6,
             engine_grew / lua, client_grew / 1e6, client_grew / lua);
    CHECK (engine_grew <= S_RSS_TIMES * lua && client_grew <= S_RSS_TIMES * lua,
           "peak RSS growth past %.0fx the table", S_RSS_TIMES);

    r = lpt_exec (view, "return 6 * 7");
    LPT_EXPECT_INT (r, 0, 42, "a direct request after the large result");
    lp_result_destroy (&r);
    lp_view_destroy (&view);
    lp_client_destroy (&client);
    printf ("big_mixed: OK\n");
    return 0;
}
