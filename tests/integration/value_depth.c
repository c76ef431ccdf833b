/*  value_depth.c - the nesting limit of values, the same everywhere
    (issue 14; docs/api.md "Values", docs/protocol.md "Values"): a value
    may nest LP_VALUE_MAX_DEPTH = 24 levels (a table is a level, a table
    in it two, ...).
      - C sender: a 24-level value pushed and pulled back is equal; 25
        levels fail at once with LP_EINVAL "value nests deeper than 24
        levels", in push, apply and map alike.
      - Engine (Lua) sender: code returning 24 levels works; 25 levels
        come back as a SerializationError naming the limit.
*/
#include "lp_testlib.h"

//  {{{...{1}...}}}: levels arrays around the integer 1
static lp_value_t *
s_nest (int levels)
{
    lp_value_t *v = lp_value_int (1);
    for (int k = 0; k < levels; k++) {
        lp_value_t *outer = lp_value_array ();
        CHECK (outer && lp_value_append (outer, v) == 0, "out of memory");
        v = outer;
    }
    return v;
}

static void
s_expect_refused (lp_client_t *client, lp_result_t *r, const char *what)
{
    CHECK (!r, "%s of a 25-level value was accepted", what);
    CHECK (lp_client_errcode (client) == LP_EINVAL, "%s: errcode %d, expected LP_EINVAL",
           what, lp_client_errcode (client));
    CHECK (strstr (lp_client_error (client), "value nests deeper than 24 levels"),
           "%s: error \"%s\" does not name the 24-level limit", what, lp_client_error (client));
}

int
main (int argc, char **argv)
{
    lp_client_t *client = lpt_connect (argc, argv);
    int ids [1];
    CHECK (lp_client_ids (client, ids, 1) >= 1, "no engine");
    lp_view_t *one = lp_client_view (client, ids, 1);
    CHECK (one, "view: %s", lp_client_error (client));

    //  C -> engine -> C: 24 levels
    lp_result_t *r = lp_view_push (one, "deep", s_nest (24));
    LPT_WAIT_OK (r, "push of 24 levels");
    lp_result_destroy (&r);
    r = lp_view_pull (one, "deep");
    LPT_WAIT_OK (r, "pull of 24 levels");
    lp_value_t *expect = s_nest (24);
    CHECK (lp_value_equal (lp_result_value (r, 0), expect), "24 levels came back different");
    lp_value_destroy (&expect);
    lp_result_destroy (&r);
    r = lpt_exec (one, "local d, n = deep, 0 while type (d) == 'table' do d, n = d[1], n + 1 end return n");
    LPT_EXPECT_INT (r, 0, 24, "levels seen by the engine");
    lp_result_destroy (&r);

    //  C: 25 levels refused before anything is sent
    s_expect_refused (client, lp_view_push (one, "deeper", s_nest (25)), "push");
    lp_value_t *args = lp_value_array ();
    lp_value_append (args, lp_value_int (0));
    lp_value_append (args, s_nest (25));
    s_expect_refused (client, lp_view_apply (one, "function (a, b) return a end", args), "apply");
    lp_value_t *seq = lp_value_array ();
    lp_value_append (seq, s_nest (24));           //  the sequence is a level
    s_expect_refused (client, lp_view_map (one, "function (x) return x end", seq), "map");
    lp_view_t *lb = lp_client_balanced (client);
    seq = lp_value_array ();
    lp_value_append (seq, s_nest (24));
    s_expect_refused (client, lp_view_map (lb, "function (x) return x end", seq), "balanced map");
    lp_view_destroy (&lb);

    //  Engine -> C: 24 levels returned, 25 refused with SerializationError
    const char *build =
        "local function nest (n) local v = 1 for _ = 1, n do v = {v} end return v end ";
    char code [512];
    snprintf (code, sizeof code, "%sreturn nest (24)", build);
    r = lp_view_execute (one, code);
    LPT_WAIT_OK (r, "returning 24 levels");
    expect = s_nest (24);
    CHECK (lp_value_equal (lp_result_value (r, 0), expect), "24 levels returned differ");
    lp_value_destroy (&expect);
    lp_result_destroy (&r);
    snprintf (code, sizeof code, "%sreturn nest (25)", build);
    r = lp_view_execute (one, code);
    LPT_WAIT (r, "returning 25 levels");
    CHECK (lp_result_failed (r) == 1, "returning 25 levels did not fail");
    CHECK (strcmp (lp_result_ename (r, 0), "SerializationError") == 0,
           "returning 25 levels: %s", lp_result_error (r, 0));
    CHECK (strstr (lp_result_evalue (r, 0), "value nests deeper than 24 levels"),
           "returning 25 levels: %s", lp_result_evalue (r, 0));
    lp_result_destroy (&r);

    lp_view_destroy (&one);
    lp_client_destroy (&client);
    printf ("value_depth: OK\n");
    return 0;
}
