/*  remote_errors.c - errors raised on an engine come back as remote errors

    Each error names the engine, the kind and the message; runtime errors
    carry Lua's traceback. The engine survives every one of them with its
    globals intact.
*/
#include "lp_testlib.h"

static int engine;

//  Runs code (execute, or apply when fn) and asserts one failed reply of
//  kind ename whose message contains evalue_part.
static void
s_expect_error (lp_view_t *view, const char *code, bool apply,
                const char *ename, const char *evalue_part, bool want_traceback)
{
    lp_result_t *r = apply ? lp_view_apply (view, code, NULL) : lp_view_execute (view, code);
    LPT_WAIT (r, code);
    CHECK (lp_result_count (r) == 1, "%s: %d replies, expected 1", code, lp_result_count (r));
    CHECK (lp_result_failed (r) == 1, "%s succeeded with %s, expected %s", code,
           lpt_show (lp_result_value (r, 0)), ename);
    CHECK (lp_result_value (r, 0) == NULL, "%s: a failed reply still has a value", code);
    CHECK (lp_result_get (r) == NULL, "%s: lp_result_get gives a value for a failed call", code);
    const char *err = lp_result_error (r, 0);
    const char *got_ename = lp_result_ename (r, 0);
    const char *evalue = lp_result_evalue (r, 0);
    const char *tb = lp_result_traceback (r, 0);
    CHECK (err, "%s: lp_result_error is NULL for a failed reply", code);
    char tag[32];
    snprintf (tag, sizeof tag, "[engine %d]", engine);
    CHECK (strstr (err, tag), "%s: error text does not name the engine (%s):\n%s", code, tag, err);
    CHECK (strstr (err, ename), "%s: error text does not name the kind %s:\n%s", code, ename, err);
    CHECK (got_ename && strcmp (got_ename, ename) == 0, "%s: ename is '%s', expected '%s'",
           code, got_ename ? got_ename : "(NULL)", ename);
    CHECK (evalue && strstr (evalue, evalue_part), "%s: evalue '%s' lacks '%s'",
           code, evalue ? evalue : "(NULL)", evalue_part);
    CHECK (strstr (err, evalue_part), "%s: error text lacks the message '%s':\n%s", code, evalue_part, err);
    CHECK (lp_result_engine (r, 0) == engine, "%s: reply says engine %d, sent to %d",
           code, lp_result_engine (r, 0), engine);
    if (want_traceback) {
        CHECK (tb && strstr (tb, "stack traceback"), "%s: traceback lacks 'stack traceback':\n%s",
               code, tb ? tb : "(NULL)");
        CHECK (strstr (err, "stack traceback"), "%s: error text lacks the traceback:\n%s", code, err);
    }
    lpt_say ("%-10s %s -> %s", apply ? "apply" : "execute", code, err);
    lp_result_destroy (&r);
}

int
main (int argc, char **argv)
{
    printf ("remote_errors:\n");
    lp_client_t *client = lpt_connect (argc, argv);
    int ids[64];
    int n = lp_client_ids (client, ids, 64);
    CHECK (n >= 2, "need 2 engines, have %d", n);
    engine = ids[1];
    lp_view_t *view = lp_client_view (client, &engine, 1);
    CHECK (view, "lp_client_view: %s", lp_client_error (client));

    lp_result_t *r = lpt_exec (view, "keep = {answer = 42, name = 'kept'}; counter = 7");
    lp_result_destroy (&r);

    s_expect_error (view, "x = = 1", false, "SyntaxError", "", false);
    s_expect_error (view, "for i = 1 do", false, "SyntaxError", "", false);
    s_expect_error (view,
        "local function inner() error('boom') end\n"
        "local function outer() inner() end\n"
        "outer()", false, "LuaError", "boom", true);
    s_expect_error (view, "local t = nil; return t.field", false, "LuaError", "nil", true);
    s_expect_error (view, "return function() end", false, "SerializationError", "", false);
    s_expect_error (view, "local t = {} t.self = t return t", false, "SerializationError", "self", false);
    s_expect_error (view, "return {ok = 1, nested = {f = print}}", false, "SerializationError", "nested", false);
    s_expect_error (view, "function(x) return x +", true, "SyntaxError", "", false);
    s_expect_error (view, "function() error('from apply') end", true, "LuaError", "from apply", true);
    s_expect_error (view, "no_such_function_anywhere", true, "NameError", "no_such_function_anywhere", false);

    //  the engine still answers and its globals survived
    r = lpt_exec (view, "keep.answer, keep.name, counter + 1");
    const lp_value_t *vals = lp_result_values (r, 0);
    CHECK (vals && lp_value_len (vals) == 3
           && lp_value_as_int (lp_value_at (vals, 0)) == 42
           && lp_value_as_string (lp_value_at (vals, 1), NULL)
           && strcmp (lp_value_as_string (lp_value_at (vals, 1), NULL), "kept") == 0
           && lp_value_as_int (lp_value_at (vals, 2)) == 8,
           "after the errors the globals read %s, expected {42, \"kept\", 8}", lpt_show (vals));
    lp_result_destroy (&r);

    //  errors on several engines: each reply names its own engine
    lp_view_t *all = lp_client_view (client, NULL, 0);
    r = lp_view_execute (all, "error('everywhere')");
    LPT_WAIT (r, "error on all engines");
    CHECK (lp_result_failed (r) == n, "%d of %d replies failed, expected all", lp_result_failed (r), n);
    for (int i = 0; i < n; i++) {
        char tag[32];
        snprintf (tag, sizeof tag, "[engine %d]", lp_result_engine (r, i));
        const char *err = lp_result_error (r, i);
        CHECK (err && strstr (err, tag) && strstr (err, "everywhere"),
               "reply %d from engine %d: error text '%s' lacks %s or the message",
               i, lp_result_engine (r, i), err ? err : "(NULL)", tag);
    }
    lp_result_destroy (&r);
    r = lpt_exec (all, "1 + 1");
    for (int i = 0; i < n; i++)
        LPT_EXPECT_INT (r, i, 2, "1 + 1 after errors");
    lp_result_destroy (&r);
    lp_view_destroy (&all);
    lp_view_destroy (&view);
    lp_client_destroy (&client);
    printf ("remote_errors: OK\n");
    return 0;
}
