/*  lpdashcheck.c - the dashboard's /api/status against the client library,
    for tests/shell/dashboard_api.sh

    lpdashcheck FILE URL [TOKEN]

    Connects with the client connection file FILE, waits for 4 engines,
    and loads the cluster so that the figures are not all zeros: three
    direct requests on engine 0 and one on engine 1 (lp.sleep (6)), and
    ten load-balanced tasks (lp.sleep (6) too). Then, until they agree or
    15 s have passed, reads lp_client_queue_status and URL/api/status
    (with curl, with `Authorization: Bearer TOKEN` when given) and compares
    them: the same engine ids, and for each its host, pid, state, queue,
    direct_queue, tasks_queued and tasks_running; the same unassigned,
    scheme and hwm. Prints "agree: ..." with the figures and exits 0, or
    prints the last difference and exits 1. Before it exits it interrupts
    the engines and aborts the held tasks, so the cluster stops promptly.
*/
#include <luaparallel.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double
s_now (void)
{
    struct timespec t;
    clock_gettime (CLOCK_MONOTONIC, &t);
    return (double) t.tv_sec + (double) t.tv_nsec / 1e9;
}

//  GET url with curl: the parsed JSON, or NULL (and why in diff).
static json_t *
s_get (const char *url, const char *token, char *diff, size_t size)
{
    char command [1024];
    snprintf (command, sizeof command, "curl -sS --max-time 5 %s%s%s '%sapi/status'",
              token? "-H 'Authorization: Bearer ": "", token? token: "", token? "'": "", url);
    FILE *pipe = popen (command, "r");
    if (!pipe) {
        snprintf (diff, size, "cannot run curl");
        return NULL;
    }
    json_error_t error;
    json_t *json = json_loadf (pipe, 0, &error);
    int rc = pclose (pipe);
    if (!json || rc != 0) {
        snprintf (diff, size, "GET %sapi/status: curl status %d, %s", url, rc,
                  json? "": error.text);
        json_decref (json);
        return NULL;
    }
    return json;
}

static const char *
s_string (const lp_value_t *map, const char *key)
{
    const lp_value_t *v = lp_value_get (map, key);
    return v && lp_value_type (v) == LP_STRING? lp_value_as_string (v, NULL): "";
}

static int64_t
s_int (const lp_value_t *map, const char *key)
{
    const lp_value_t *v = lp_value_get (map, key);
    return v? lp_value_as_int (v): -1;
}

//  0 when the two agree; else the first difference in diff.
static int
s_compare (const lp_value_t *status, json_t *api, char *diff, size_t size, char *figures,
           size_t fsize)
{
    const char *top_ints [] = { "unassigned", "hwm" };
    for (int i = 0; i < 2; i++)
        if (s_int (status, top_ints [i]) != json_integer_value (json_object_get (api, top_ints [i]))) {
            snprintf (diff, size, "%s: client %lld, api %lld", top_ints [i],
                      (long long) s_int (status, top_ints [i]),
                      (long long) json_integer_value (json_object_get (api, top_ints [i])));
            return -1;
        }
    const char *scheme = json_string_value (json_object_get (api, "scheme"));
    if (!scheme || strcmp (scheme, s_string (status, "scheme")) != 0) {
        snprintf (diff, size, "scheme: client %s, api %s", s_string (status, "scheme"),
                  scheme? scheme: "(none)");
        return -1;
    }
    const lp_value_t *engines = lp_value_get (status, "engines");
    json_t *rows = json_object_get (api, "engines");
    size_t count = engines? lp_value_len (engines): 0;
    if (json_array_size (rows) != count) {
        snprintf (diff, size, "engines: client %zu, api %zu", count, json_array_size (rows));
        return -1;
    }
    snprintf (figures, fsize, "unassigned %lld", (long long) s_int (status, "unassigned"));
    const char *ints [] = { "id", "pid", "queue", "direct_queue", "tasks_queued", "tasks_running" };
    const char *strings [] = { "host", "state" };
    for (size_t i = 0; i < count; i++) {
        const lp_value_t *row = lp_value_at (engines, i);
        json_t *api_row = json_array_get (rows, i);
        for (int k = 0; k < 6; k++) {
            json_t *v = json_object_get (api_row, ints [k]);
            if (!json_is_integer (v) || json_integer_value (v) != s_int (row, ints [k])) {
                snprintf (diff, size, "engine row %zu, %s: client %lld, api %lld", i, ints [k],
                          (long long) s_int (row, ints [k]), (long long) json_integer_value (v));
                return -1;
            }
        }
        for (int k = 0; k < 2; k++) {
            const char *v = json_string_value (json_object_get (api_row, strings [k]));
            if (!v || strcmp (v, s_string (row, strings [k])) != 0) {
                snprintf (diff, size, "engine row %zu, %s: client %s, api %s", i, strings [k],
                          s_string (row, strings [k]), v? v: "(none)");
                return -1;
            }
        }
        size_t used = strlen (figures);
        snprintf (figures + used, fsize - used, "; engine %lld %s queue %lld",
                  (long long) s_int (row, "id"), s_string (row, "state"),
                  (long long) s_int (row, "queue"));
    }
    return 0;
}

int
main (int argc, char **argv)
{
    if (argc < 3) {
        fprintf (stderr, "usage: lpdashcheck FILE URL [TOKEN]\n");
        return 2;
    }
    const char *url = argv [2], *token = argc > 3? argv [3]: NULL;
    lp_client_t *client = lp_client_connect (argv [1], 10000);
    if (!client || lp_client_wait_for_engines (client, 4, 30000) != 0) {
        fprintf (stderr, "lpdashcheck: %s\n", client? lp_client_error (client): "cannot connect");
        lp_client_destroy (&client);
        return 1;
    }
    lp_result_t *held [5] = { NULL };
    int zero = 0, one = 1;
    lp_view_t *first = lp_client_view (client, &zero, 1);
    lp_view_t *second = lp_client_view (client, &one, 1);
    lp_view_t *balanced = lp_client_balanced (client);
    for (int i = 0; i < 3; i++)
        held [i] = lp_view_execute (first, "lp.sleep (6)");
    held [3] = lp_view_execute (second, "lp.sleep (6)");
    lp_value_t *seq = lp_value_int_range (1, 10);
    held [4] = lp_view_map (balanced, "function (x) lp.sleep (6) return x end", seq);
    int rc = 1;
    char diff [1200] = "no comparison made", figures [1024] = "";
    double deadline = s_now () + 15;
    while (s_now () < deadline) {
        lp_value_t *status = lp_client_queue_status (client, 5000);
        json_t *api = s_get (url, token, diff, sizeof diff);
        bool loaded = status && s_int (status, "unassigned") > 0;
        if (status && api && s_compare (status, api, diff, sizeof diff, figures,
                                         sizeof figures) == 0) {
            if (loaded) {
                rc = 0;
                json_decref (api);
                lp_value_destroy (&status);
                break;
            }
            snprintf (diff, sizeof diff, "agree, but the load is not there yet: %.1100s", figures);
        }
        json_decref (api);
        lp_value_destroy (&status);
        lp_client_poll (client, 200);   //  wait slice: the api is refreshed each second
    }
    if (rc == 0)
        printf ("agree: %s\n", figures);
    else
        printf ("differ: %s\n", diff);
    for (int i = 0; i < 5; i++)
        if (held [i])
            lp_result_abort (held [i]);     //  what has not started
    lp_view_t *all = lp_client_view (client, NULL, 0);
    lp_result_t *interrupt = all? lp_view_interrupt (all): NULL;
    if (interrupt)
        lp_result_wait (interrupt, 5000);
    for (int i = 0; i < 5; i++) {
        if (held [i])
            lp_result_wait (held [i], 10000);
        lp_result_destroy (&held [i]);
    }
    lp_result_destroy (&interrupt);
    lp_view_destroy (&all);
    lp_view_destroy (&first);
    lp_view_destroy (&second);
    lp_view_destroy (&balanced);
    lp_client_destroy (&client);
    return rc;
}
