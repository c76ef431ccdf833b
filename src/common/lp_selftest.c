/*  =========================================================================
    lp_selftest - runs the self-tests of the src/common and src/lua classes
    and of the classes elsewhere that need no other process (policy: the
    scheduler's decisions; zap: CURVE keys and the ZAP handler, over
    loopback inside this process; both src/controller)

    Usage: lp_selftest [--list] [--test NAME] [--verbose]
    Without --test every class runs, in dependency order. An unknown name
    or option exits with status 1. Each test asserts, so a failure aborts.
    =========================================================================
*/

#include "lp_proto.h"
#include "lp_util.h"
#include "lp_value.h"
#include "lp_codec.h"
#include "lp_msg.h"
#include "lp_guard.h"
#include "lp_wire.h"
#include "lp_conn.h"
#include "lp_luavalue.h"
#include "lp_policy.h"                  //  the scheduler's pure decisions
#include "lp_zap.h"                     //  CURVE keys and the ZAP handler
//  Contracts and self-tests assert in release builds too, as in czmq
#undef NDEBUG
#include <assert.h>

//  The controller's task store (built into this program, see CMakeLists.txt)
void lp_store_test (bool verbose);
//  The controller's launcher scripts (src/controller/lp_remote.c)
void lp_remote_test (bool verbose);
//  The controller's dashboard (lp_dashboard.c: HTTP on loopback)
void lp_dashboard_test (bool verbose);

typedef struct {
    const char *name;                   //  class name
    void (*test) (bool verbose);        //  its self-test
} s_test_t;

static const s_test_t s_tests [] = {
    { "util",     lp_util_test },
    { "proto",    lp_proto_test },
    { "value",    lp_value_test },
    { "codec",    lp_codec_test },
    { "msg",      lp_msg_test },
    { "guard",    lp_guard_test },
    { "wire",     lp_wire_test },
    { "conn",     lp_conn_test },
    { "luavalue", lp_luavalue_test },
    { "policy",   lp_policy_test },
    { "zap",      lp_zap_test },
    { "store",    lp_store_test },      //  src/controller/lp_store.c
    { "remote",   lp_remote_test },     //  src/controller/lp_remote.c
    { "dashboard", lp_dashboard_test }, //  src/controller/lp_dashboard.c
    { NULL, NULL }
};

static void
s_usage (FILE *out)
{
    fprintf (out, "usage: lp_selftest [--list] [--test NAME] [--verbose]\n");
}

int
main (int argc, char *argv [])
{
    bool verbose = false;
    bool list = false;
    const char *only = NULL;
    for (int argn = 1; argn < argc; argn++) {
        const char *arg = argv [argn];
        if (streq (arg, "--verbose") || streq (arg, "-v"))
            verbose = true;
        else
        if (streq (arg, "--list") || streq (arg, "-l"))
            list = true;
        else
        if ((streq (arg, "--test") || streq (arg, "-t")) && argn + 1 < argc)
            only = argv [++argn];
        else
        if (streq (arg, "--help") || streq (arg, "-h")) {
            s_usage (stdout);
            return 0;
        }
        else {
            fprintf (stderr, "lp_selftest: unknown argument '%s'\n", arg);
            s_usage (stderr);
            return 1;
        }
    }
    if (list) {
        for (const s_test_t *t = s_tests; t->name; t++)
            printf ("%s\n", t->name);
        return 0;
    }
    if (only) {
        const s_test_t *t = s_tests;
        while (t->name && !streq (t->name, only))
            t++;
        if (!t->name) {
            fprintf (stderr, "lp_selftest: unknown test '%s' (try --list)\n", only);
            return 1;
        }
    }
    //  Tests open sockets; keep czmq from eating Ctrl-C silently
    zsys_init ();
    printf ("Running luaparallel selftests...\n");
    for (const s_test_t *t = s_tests; t->name; t++)
        if (!only || streq (only, t->name))
            t->test (verbose);
    printf ("Tests passed OK\n");
    return 0;
}
