/*  lpcall.c - a tiny command-line client for the shell tests

    lpcall FILE [-n N] [-t MS] execute CODE
    lpcall FILE [-n N] [-t MS] apply FN [INT...]
    lpcall FILE [-n N] [-t MS] ids

    Connects with the client connection file FILE, waits until N engines
    (default 1) are registered (deadline MS, default 30000), runs the call
    on all engines and prints one line per engine: "engine <id>: <value>"
    or "engine <id>: <error>". Exits 0 when every reply succeeded, 1
    otherwise; a connection failure prints one line naming the file and
    the problem.
*/
#include <luaparallel.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int
s_usage (void)
{
    fprintf (stderr, "usage: lpcall FILE [-n N] [-t MS] (execute CODE | apply FN [INT...] | ids)\n");
    return 2;
}

int
main (int argc, char **argv)
{
    if (argc < 2)
        return s_usage ();
    const char *file = argv[1];
    int want = 1, timeout = 30000, arg = 2;
    while (arg + 1 < argc && argv[arg][0] == '-') {
        if (strcmp (argv[arg], "-n") == 0)
            want = atoi (argv[arg + 1]);
        else if (strcmp (argv[arg], "-t") == 0)
            timeout = atoi (argv[arg + 1]);
        else
            return s_usage ();
        arg += 2;
    }
    const char *verb = arg < argc ? argv[arg++] : "ids";

    lp_client_t *client = lp_client_connect (file, timeout);
    if (!client) {
        fprintf (stderr, "lpcall: %s\n", lp_last_error ());
        return 1;
    }
    if (want > 0 && lp_client_wait_for_engines (client, want, timeout) != 0) {
        fprintf (stderr, "lpcall: fewer than %d engines after %d ms: %s\n", want, timeout,
                 lp_client_error (client));
        lp_client_destroy (&client);
        return 1;
    }
    lp_view_t *view = lp_client_view (client, NULL, 0);
    lp_result_t *r = NULL;
    if (strcmp (verb, "ids") == 0) {
        int ids[1024];
        int n = lp_client_ids (client, ids, 1024);
        for (int i = 0; i < n; i++)
            printf ("%d\n", ids[i]);
        lp_view_destroy (&view);
        lp_client_destroy (&client);
        return n >= 0 ? 0 : 1;
    }
    else
    if (strcmp (verb, "execute") == 0 && arg < argc)
        r = lp_view_execute (view, argv[arg]);
    else
    if (strcmp (verb, "apply") == 0 && arg < argc) {
        const char *fn = argv[arg++];
        lp_value_t *args = lp_value_array ();
        for (; arg < argc; arg++)
            lp_value_append (args, lp_value_int (strtoll (argv[arg], NULL, 10)));
        r = lp_view_apply (view, fn, args);
    }
    else {
        lp_view_destroy (&view);
        lp_client_destroy (&client);
        return s_usage ();
    }
    int status = 0;
    if (!r || lp_result_wait (r, timeout) != LP_OK) {
        fprintf (stderr, "lpcall: no result within %d ms: %s\n", timeout, lp_client_error (client));
        status = 1;
    }
    else {
        for (int i = 0; i < lp_result_count (r); i++) {
            const char *err = lp_result_error (r, i);
            if (err) {
                printf ("engine %d: %s\n", lp_result_engine (r, i), err);
                status = 1;
            }
            else {
                char *text = lp_value_print (lp_result_value (r, i));
                printf ("engine %d: %s\n", lp_result_engine (r, i), text ? text : "?");
                free (text);
            }
        }
    }
    lp_result_destroy (&r);
    lp_view_destroy (&view);
    lp_client_destroy (&client);
    return status;
}
