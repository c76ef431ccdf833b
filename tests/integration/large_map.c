/*  large_map - tables whose msgpack is far over a frame move both ways
    (issue 12)

    The data channels cap frames at LP_DATA_MAX_FRAME (2 MiB): a table
    that is no typed array (10^6 short distinct strings: ~11 MB of
    msgpack) travels as an ext 3 whose pieces hold its msgpack
    (docs/protocol.md, "Frame sizes"). Covered: push of such a table
    from C, which the engine sees whole (length, first and last
    elements, a checksum computed in Lua); pull of it; a direct execute
    returning it; a load-balanced apply returning a table of 10^5 small
    tables built on the engine; and a map of 2*10^5 string keys. Each
    comes back equal, element by element, and the task store still
    records the code of a request whose arguments went in pieces.
*/
#include "lp_testlib.h"
#include <string.h>

#define streq(a, b) (strcmp ((a), (b)) == 0)

#define N           1000000
#define KEYS        200000              //  the map: 2*10^5 keys (~2.6 MB of msgpack)
#define WAIT_MS     120000              //  tens of MB over loopback on 2 busy cores

//  The table of N distinct strings "v0000000" ...
static lp_value_t *
s_strings (void)
{
    lp_value_t *t = lp_value_array ();
    CHECK (t, "out of memory");
    for (int k = 0; k < N; k++) {
        char text [16];
        snprintf (text, sizeof text, "v%07d", k);
        CHECK (lp_value_append (t, lp_value_string (text)) == 0, "out of memory");
    }
    return t;
}

//  Checks that v is the table of s_strings
static void
s_check_strings (const lp_value_t *v, const char *what)
{
    CHECK (v && lp_value_type (v) == LP_ARRAY && lp_value_len (v) == N,
           "%s: got %s (%zu elements), expected an array of %d strings",
           what, lpt_show (v), v? lp_value_len (v): 0, N);
    for (int k = 0; k < N; k++) {
        char text [16];
        snprintf (text, sizeof text, "v%07d", k);
        const char *got = lp_value_as_string (lp_value_at (v, (size_t) k), NULL);
        CHECK (got && streq (got, text), "%s: element %d is %s, expected %s",
               what, k + 1, got? got: "not a string", text);
    }
}

static lp_result_t *
s_wait_ok (lp_result_t *r, const char *what)
{
    return lpt_wait_ok_ms (r, WAIT_MS, what);
}

int
main (int argc, char **argv)
{
    printf ("large_map:\n");
    lp_client_t *client = lpt_connect (argc, argv);
    int ids [64];
    int n = lp_client_ids (client, ids, 64);
    CHECK (n >= 1, "%d engines", n);
    lp_view_t *one = lp_client_view (client, &ids [0], 1);
    lp_view_t *lb = lp_client_balanced (client);
    CHECK (one && lb, "views: %s", lp_client_error (client));

    //  Push from C; the engine sees every string
    double t0 = lpt_now_ms ();
    lp_result_t *r = s_wait_ok (lp_view_push (one, "t", s_strings ()), "push of 10^6 strings");
    lp_result_destroy (&r);
    double t_push = lpt_now_ms () - t0;
    r = s_wait_ok (lp_view_execute (one,
        "local sum = 0 for i = 1, #t do sum = sum + tonumber (t[i]:sub (2)) end "
        "return #t, t[1], t[#t], sum"), "check on the engine");
    const lp_value_t *v = lp_result_get (r);
    CHECK (v && lp_value_type (v) == LP_ARRAY && lp_value_len (v) == 4
        && lp_value_as_int (lp_value_at (v, 0)) == N
        && streq (lp_value_as_string (lp_value_at (v, 1), NULL), "v0000000")
        && streq (lp_value_as_string (lp_value_at (v, 2), NULL), "v0999999")
        && lp_value_as_int (lp_value_at (v, 3)) == (int64_t) N * (N - 1) / 2,
           "the engine sees %s", lpt_show (v));
    lp_result_destroy (&r);
    lpt_say ("push of 10^6 strings (~10 MB of msgpack): %.1f s; the engine sees them all",
             t_push / 1000);

    //  Pull it back, and as the result of an execute
    t0 = lpt_now_ms ();
    r = s_wait_ok (lp_view_pull (one, "t"), "pull of 10^6 strings");
    double t_pull = lpt_now_ms () - t0;
    s_check_strings (lp_result_get (r), "pull");
    lp_result_destroy (&r);
    r = s_wait_ok (lp_view_execute (one, "return t"), "execute returning 10^6 strings");
    s_check_strings (lp_result_get (r), "execute");
    lp_result_destroy (&r);
    lpt_say ("pull of 10^6 strings: %.1f s; an execute returning them, every element right",
             t_pull / 1000);

    //  A load-balanced apply returning 10^5 small tables made on the engine
    lp_value_t *args = lp_value_array ();
    lp_value_append (args, lp_value_int (N / 10));
    r = s_wait_ok (lp_view_apply (lb,
        "function (n) local t = {} for i = 1, n do t[i] = { k = i, s = 'x' .. i } end "
        "return t end", args), "task returning 10^5 tables");
    v = lp_result_get (r);
    CHECK (v && lp_value_type (v) == LP_ARRAY && lp_value_len (v) == N / 10,
           "task returned %s", lpt_show (v));
    for (size_t k = 0; k < N / 10; k++) {
        const lp_value_t *item = lp_value_at (v, k);
        char text [16];
        snprintf (text, sizeof text, "x%zu", k + 1);
        const lp_value_t *key = lp_value_get (item, "k");
        const lp_value_t *s = lp_value_get (item, "s");
        CHECK (key && lp_value_as_int (key) == (int64_t) k + 1
            && s && streq (lp_value_as_string (s, NULL), text),
               "task: element %zu is %s", k + 1, lpt_show (item));
    }
    lp_result_destroy (&r);
    lpt_say ("a load-balanced task returned 10^5 tables, every element right");

    //  A map of 2*10^5 string keys, pushed and pulled; the apply that
    //  counts it (its argument in pieces) keeps its code in the store
    lp_value_t *map = lp_value_map ();
    CHECK (map, "out of memory");
    for (int k = 0; k < KEYS; k++) {
        char key [16];
        snprintf (key, sizeof key, "k%07d", k);
        CHECK (lp_value_set (map, key, lp_value_int (k)) == 0, "out of memory");
    }
    lp_value_t *copy = lp_value_dup (map);
    CHECK (copy, "out of memory");
    r = s_wait_ok (lp_view_push (one, "m", map), "push of a map of 2*10^5 keys");
    lp_result_destroy (&r);
    r = s_wait_ok (lp_view_pull (one, "m"), "pull of a map of 2*10^5 keys");
    v = lp_result_get (r);
    CHECK (v && lp_value_type (v) == LP_MAP && lp_value_len (v) == KEYS,
           "pull of the map gave %s", lpt_show (v));
    for (int k = 0; k < KEYS; k++) {
        char key [16];
        snprintf (key, sizeof key, "k%07d", k);
        const lp_value_t *got = lp_value_get (v, key);
        CHECK (got && lp_value_type (got) == LP_INT && lp_value_as_int (got) == k,
               "pull of the map: m.%s is %s, expected %d", key, lpt_show (got), k);
    }
    lp_result_destroy (&r);
    args = lp_value_array ();
    lp_value_append (args, copy);
    const char *counter =
        "function (m) local n = 0 for _ in pairs (m) do n = n + 1 end return n end";
    r = s_wait_ok (lp_view_apply (lb, counter, args), "apply counting the map");
    v = lp_result_get (r);
    CHECK (v && lp_value_as_int (v) == KEYS, "apply counted %s", lpt_show (v));
    lp_result_destroy (&r);
    //  The store writes behind: wait for the record (newest first)
    bool recorded = false;
    double deadline = lpt_now_ms () + LPT_DEADLINE_MS;
    while (!recorded && lpt_now_ms () < deadline) {
        lp_value_t *records = lp_client_history (client, NULL, LPT_DEADLINE_MS);
        CHECK (records, "history: %s", lp_client_error (client));
        for (size_t k = 0; k < lp_value_len (records) && !recorded; k++) {
            const lp_value_t *code = lp_value_get (lp_value_at (records, k), "code");
            const char *text = code? lp_value_as_string (code, NULL): NULL;
            recorded = text && streq (text, counter);
        }
        lp_value_destroy (&records);
    }
    CHECK (recorded, "the store has no record with the code of the apply whose argument "
                     "went in pieces");
    lpt_say ("a map of 2*10^5 keys pushed, pulled and counted: right; "
             "the store recorded the apply's code");

    lp_view_destroy (&one);
    lp_view_destroy (&lb);
    lp_client_destroy (&client);
    printf ("large_map: OK\n");
    return 0;
}
