/*  pi.c - Monte Carlo estimate of pi on every engine of a running cluster

    Usage: pi [lp-client.json [samples]]
    With no file, the default profile is used. Each engine counts how many
    of its share of random points fall inside the unit circle; the client
    adds the counts up.

    Build outside the tree:  cc pi.c $(pkg-config --cflags --libs luaparallel)
*/
#include <luaparallel.h>
#include <stdio.h>
#include <stdlib.h>

//  Seeds from the engine id so every engine draws a different sequence
//  (and the run can be repeated).
static const char *s_count_hits =
    "function (n)\n"
    "  if lp and lp.id then math.randomseed (lp.id * 7919 + 17) end\n"
    "  local random, hits = math.random, 0\n"
    "  for _ = 1, n do\n"
    "    local x, y = random (), random ()\n"
    "    if x * x + y * y <= 1.0 then hits = hits + 1 end\n"
    "  end\n"
    "  return hits\n"
    "end";

int
main (int argc, char *argv [])
{
    const char *file = argc > 1? argv [1]: NULL;
    long long samples = argc > 2? atoll (argv [2]): 4000000;
    if (samples <= 0) {
        fprintf (stderr, "pi: samples must be positive\n");
        return 1;
    }
    lp_client_t *client = lp_client_connect (file, 5000);
    if (!client) {
        fprintf (stderr, "pi: %s\n", lp_last_error ());
        return 1;
    }
    int rc = 1;
    lp_view_t *view = NULL;
    lp_result_t *result = NULL;
    if (lp_client_wait_for_engines (client, 1, 10000)) {
        fprintf (stderr, "pi: %s\n", lp_client_error (client));
        goto done;
    }
    view = lp_client_view (client, NULL, 0);        //  all engines
    int engines = view? lp_view_targets (view, NULL, 0): -1;
    if (engines <= 0) {
        fprintf (stderr, "pi: %s\n", lp_client_error (client));
        goto done;
    }
    long long per_engine = (samples + engines - 1) / engines;
    lp_value_t *args = lp_value_array ();
    lp_value_append (args, lp_value_int (per_engine));
    result = lp_view_apply (view, s_count_hits, args);
    if (!result || lp_result_wait (result, 600000) != LP_OK) {
        fprintf (stderr, "pi: %s\n", lp_client_error (client));
        goto done;
    }
    long long hits = 0;
    int count = lp_result_count (result);
    for (int i = 0; i < count; i++) {
        const char *error = lp_result_error (result, i);
        if (error) {
            fprintf (stderr, "pi: %s\n", error);
            goto done;
        }
        hits += lp_value_as_int (lp_result_value (result, i));
    }
    long long total = per_engine * count;
    printf ("pi ~= %.5f (%lld samples on %d engines)\n",
            4.0 * (double) hits / (double) total, total, count);
    rc = 0;
done:
    lp_result_destroy (&result);
    lp_view_destroy (&view);
    lp_client_destroy (&client);
    return rc;
}
