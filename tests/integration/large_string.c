/*  large_string - a 1 GB string moves both ways (issue 9, values of any size)

    A string of 2^30 bytes of UTF-8 text is pushed to one engine, pulled
    back, returned by apply (direct and load-balanced), and an array of
    four 256 MiB strings (1 GB in all) is scattered over the engines and
    gathered back. The engine checks length and a checksum of the string
    (a sum of every 4099th byte, computed in Lua); the client checks
    length, the checksum and every byte. Before issue 9 a string over the
    128 MiB frame cap could not move at all (the push failed with
    LP_ETOOBIG, results with a SerializationError).

    At the end the engines' peak memory (VmHWM) is printed: moving a 1 GB
    string should cost an engine about 2 GB, not six copies.
*/
#include "lp_testlib.h"
#include <stdint.h>

#define GIB         ((size_t) 1 << 30)
#define QUARTER     (GIB / 4)
#define STEP        4099                //  checksum stride
#define WAIT_MS     300000              //  a few GB over loopback on 2 busy cores

//  Byte k of the test text: letters, so valid UTF-8
static inline char
s_byte (size_t k, int seed)
{
    return (char) ('a' + (k * 7 + k / 1000 + (size_t) seed) % 26);
}

static char *
s_text (size_t len, int seed)
{
    char *text = (char *) malloc (len);
    CHECK (text, "out of memory for %zu bytes", len);
    for (size_t k = 0; k < len; k++)
        text [k] = s_byte (k, seed);
    return text;
}

static lp_value_t *
s_text_value (size_t len, int seed)
{
    char *text = s_text (len, seed);
    lp_value_t *value = lp_value_lstring (text, len);
    free (text);
    CHECK (value, "out of memory for a %zu-byte string", len);
    return value;
}

static long long
s_checksum (const char *s, size_t len)
{
    long long sum = 0;
    for (size_t k = 0; k < len; k += STEP)
        sum += (unsigned char) s [k];
    return sum;
}

//  The same checksum in Lua, for the engine
#define LUA_CHECKSUM \
    "local function checksum (s) local sum = 0 " \
    "for k = 1, #s, 4099 do sum = sum + s:byte (k) end return sum end "

//  Byte k of the text the engine makes: a 1000-byte block repeated
static inline char
s_rep_byte (size_t k, int seed)
{
    return (char) ('a' + ((k % 1000) * 7 + (size_t) seed) % 26);
}

//  Checks that v is the string of len bytes made with seed, byte for byte
//  (rep: as the engine makes it, else as s_byte)
static void
s_check (const lp_value_t *v, size_t len, int seed, bool rep, const char *what)
{
    CHECK (v, "%s: no value", what);
    CHECK (lp_value_type (v) == LP_STRING, "%s: a %s, expected a string", what,
           lp_type_name (lp_value_type (v)));
    size_t got;
    const char *s = lp_value_as_string (v, &got);
    CHECK (got == len, "%s: %zu bytes, expected %zu", what, got, len);
    for (size_t k = 0; k < len; k++) {
        char expect = rep? s_rep_byte (k, seed): s_byte (k, seed);
        CHECK (s [k] == expect, "%s: byte %zu is %d, expected %d", what, k, s [k], expect);
    }
}

#define s_check_text(v, len, seed, what) s_check ((v), (len), (seed), false, (what))
#define s_check_rep(v, len, seed, what) s_check ((v), (len), (seed), true, (what))

static lp_result_t *
s_wait_ok (lp_result_t *r, const char *what)
{
    return lpt_wait_ok_ms (r, WAIT_MS, what);
}

int
main (int argc, char **argv)
{
    printf ("large_string:\n");
    lp_client_t *client = lpt_connect (argc, argv);
    int ids [64];
    int n = lp_client_ids (client, ids, 64);
    CHECK (n >= LPT_ENGINES, "%d engines", n);
    lp_view_t *one = lp_client_view (client, &ids [0], 1);
    lp_view_t *all = lp_client_view (client, ids, LPT_ENGINES);
    lp_view_t *lb = lp_client_balanced (client);
    CHECK (one && all && lb, "views: %s", lp_client_error (client));
    long long expected;
    {
        char *text = s_text (GIB, 1);
        expected = s_checksum (text, GIB);
        free (text);
    }

    //  Push, then check on the engine
    double t0 = lpt_now_ms ();
    lp_result_t *r = s_wait_ok (lp_view_push (one, "s", s_text_value (GIB, 1)), "push of 1 GB");
    lp_result_destroy (&r);
    double t_push = lpt_now_ms () - t0;
    r = s_wait_ok (lp_view_execute (one, LUA_CHECKSUM "return #s, checksum (s)"),
                   "checksum on the engine");
    const lp_value_t *values = lp_result_values (r, 0);
    CHECK (lp_value_as_int (lp_value_at (values, 0)) == (int64_t) GIB
        && lp_value_as_int (lp_value_at (values, 1)) == expected,
           "engine sees %s, expected {%zu, %lld}", lpt_show (values), GIB, expected);
    lp_result_destroy (&r);
    lpt_say ("push of a 1 GB string: %.1f s, length and checksum right on the engine",
             t_push / 1000);

    //  Pull it back
    t0 = lpt_now_ms ();
    r = s_wait_ok (lp_view_pull (one, "s"), "pull of 1 GB");
    double t_pull = lpt_now_ms () - t0;
    s_check_text (lp_result_get (r), GIB, 1, "pull of 1 GB");
    lp_result_destroy (&r);
    r = s_wait_ok (lp_view_execute (one, "s = nil collectgarbage () return true"), "free s");
    lp_result_destroy (&r);
    lpt_say ("pull of a 1 GB string: %.1f s, every byte right", t_pull / 1000);

    //  Apply results, direct and load-balanced: the engine makes the text
    //  (a 1000-byte block of letters repeated, as s_rep_byte)
    const char *make =
        "function (n, seed) "
        "  local bytes = {} "
        "  for j = 0, 999 do bytes [j + 1] = 97 + (j * 7 + seed) % 26 end "
        "  return string.rep (string.char (table.unpack (bytes)), n // 1000) "
        "end";
    size_t len = GIB / 1000 * 1000;
    lp_value_t *args = lp_value_array ();
    lp_value_append (args, lp_value_int ((int64_t) len));
    lp_value_append (args, lp_value_int (2));
    t0 = lpt_now_ms ();
    r = s_wait_ok (lp_view_apply (one, make, lp_value_dup (args)), "apply returning 1 GB");
    double t_apply = lpt_now_ms () - t0;
    s_check_rep (lp_result_get (r), len, 2, "apply returning 1 GB");
    lp_result_destroy (&r);
    lpt_say ("direct apply returning a %zu-byte string: %.1f s (making it included)",
             len, t_apply / 1000);
    t0 = lpt_now_ms ();
    r = s_wait_ok (lp_view_apply (lb, make, args), "load-balanced apply returning 1 GB");
    double t_task = lpt_now_ms () - t0;
    s_check_rep (lp_result_get (r), len, 2, "load-balanced apply returning 1 GB");
    lp_result_destroy (&r);
    lpt_say ("load-balanced task returning a %zu-byte string: %.1f s", len, t_task / 1000);

    //  Scatter four 256 MiB strings, one per engine, and gather them
    lp_value_t *parts = lp_value_array ();
    for (int i = 0; i < LPT_ENGINES; i++)
        CHECK (lp_value_append (parts, s_text_value (QUARTER, 10 + i)) == 0, "out of memory");
    t0 = lpt_now_ms ();
    r = s_wait_ok (lp_view_scatter (all, "q", parts), "scatter of 4 x 256 MiB");
    lp_result_destroy (&r);
    double t_scatter = lpt_now_ms () - t0;
    r = s_wait_ok (lp_view_execute (all, LUA_CHECKSUM "return #q, #q[1], checksum (q[1])"),
                   "checksum of the scattered parts");
    for (int i = 0; i < LPT_ENGINES; i++) {
        char *text = s_text (QUARTER, 10 + i);
        long long sum = s_checksum (text, QUARTER);
        free (text);
        const lp_value_t *got = lp_result_values (r, i);
        CHECK (lp_value_as_int (lp_value_at (got, 0)) == 1
            && lp_value_as_int (lp_value_at (got, 1)) == (int64_t) QUARTER
            && lp_value_as_int (lp_value_at (got, 2)) == sum,
               "engine %d got %s, expected {1, %zu, %lld}", lp_result_engine (r, i),
               lpt_show (got), QUARTER, sum);
    }
    lp_result_destroy (&r);
    t0 = lpt_now_ms ();
    r = s_wait_ok (lp_view_gather (all, "q"), "gather of 4 x 256 MiB");
    double t_gather = lpt_now_ms () - t0;
    const lp_value_t *whole = lp_result_get (r);
    CHECK (whole && lp_value_type (whole) == LP_ARRAY && lp_value_len (whole) == LPT_ENGINES,
           "gather gave %s", lpt_show (whole));
    for (int i = 0; i < LPT_ENGINES; i++)
        s_check_text (lp_value_at (whole, (size_t) i), QUARTER, 10 + i, "gathered part");
    lp_result_destroy (&r);
    r = s_wait_ok (lp_view_execute (all, "q = nil collectgarbage () return true"), "free q");
    lp_result_destroy (&r);
    lpt_say ("scatter / gather of 4 x 256 MiB strings: %.1f / %.1f s",
             t_scatter / 1000, t_gather / 1000);

    lpt_say_peak_rss (client, ids, LPT_ENGINES);

    lp_view_destroy (&one);
    lp_view_destroy (&all);
    lp_view_destroy (&lb);
    lp_client_destroy (&client);
    printf ("large_string: OK\n");
    return 0;
}
