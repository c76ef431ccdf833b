/*  many.c - 10,000 load-balanced tasks, handled as they complete, from an
    event loop

    Each task is its own result (lp_view_apply on a load-balanced view);
    at most WINDOW are in flight, a new one going out for each that ends.
    The program sleeps in poll () on the client's descriptor
    (lp_client_fd), and each time it wakes it takes every result that has
    ended with lp_client_wait_any (timeout 0), checks its value, and drains
    the client (lp_client_poll (client, 0) until it handles nothing) as the
    last thing before it sleeps again: the descriptor is edge-triggered,
    like ZMQ_FD (docs/api.md, "Event loops").

        many [lp-client.json [TASKS]]

    Prints how many results were right; exits 1 when any was not.
*/
#include <luaparallel.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#define WINDOW 256                      //  tasks in flight at most

static double
s_now (void)
{
    struct timespec ts;
    clock_gettime (CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

int
main (int argc, char **argv)
{
    const char *file = argc > 1? argv [1]: NULL;   //  NULL: the default profile
    int tasks = argc > 2? atoi (argv [2]): 10000;
    if (tasks <= 0)
        tasks = 10000;
    lp_client_t *client = lp_client_connect (file, 10000);
    if (!client) {
        fprintf (stderr, "many: %s\n", lp_last_error ());
        return 1;
    }
    int fd = lp_client_fd (client);
    lp_view_t *lb = lp_client_balanced (client);
    //  results [0..pending) wait; input [k] is the argument results [k] got
    lp_result_t **results = calloc (WINDOW, sizeof *results);
    long *input = calloc (WINDOW, sizeof *input);
    if (fd < 0 || !lb || !results || !input) {
        fprintf (stderr, "many: %s\n", lp_client_error (client));
        return 1;
    }
    double start = s_now ();
    int pending = 0, submitted = 0;
    int right = 0, wrong = 0, sleeps = 0, wakeups = 0;
    while (submitted < tasks || pending > 0) {
        //  Keep up to WINDOW tasks in flight: memory stays bounded
        while (submitted < tasks && pending < WINDOW) {
            lp_value_t *args = lp_value_array ();
            lp_value_append (args, lp_value_int (submitted));
            results [pending] = lp_view_apply (lb, "function (i) return i * i end", args);
            if (!results [pending]) {
                fprintf (stderr, "many: task %d: %s\n", submitted, lp_client_error (client));
                return 1;
            }
            input [pending++] = submitted++;
        }
        //  Every result that has ended, in any order
        int k;
        while (pending > 0 && (k = lp_client_wait_any (client, results, pending, 0)) >= 0) {
            const lp_value_t *value = lp_result_value (results [k], 0);
            if (value && lp_value_as_int (value) == (int64_t) input [k] * input [k])
                right++;
            else {
                wrong++;
                fprintf (stderr, "many: task %ld: %s\n", input [k],
                         lp_result_error (results [k], 0)? lp_result_error (results [k], 0)
                                                         : "wrong value");
            }
            lp_result_destroy (&results [k]);
            results [k] = results [--pending];      //  order does not matter
            input [k] = input [pending];
        }
        if (pending > 0 && lp_client_errcode (client) != LP_ETIMEOUT) {
            fprintf (stderr, "many: %s\n", lp_client_error (client));
            break;
        }
        //  Drain last: a message taken in here may have ended a result
        int handled, drained = 0;
        while ((handled = lp_client_poll (client, 0)) > 0)
            drained += handled;
        if (handled < 0) {
            fprintf (stderr, "many: %s\n", lp_client_error (client));
            break;
        }
        if (drained > 0 || pending == 0 || (submitted < tasks && pending < WINDOW))
            continue;
        //  Nothing left to read: sleep until the descriptor says so. The
        //  timeout lets the client watch the controller (lost_after / 10).
        struct pollfd item = { fd, POLLIN, 0 };
        sleeps++;
        if (poll (&item, 1, 300) > 0)
            wakeups++;
    }
    double seconds = s_now () - start;
    printf ("many: %d tasks, %d results right, %d wrong, %d left, %.2f s (%.0f tasks/s), "
            "%d sleeps on the descriptor, %d ended by it\n", tasks, right, wrong, pending,
            seconds, tasks / seconds, sleeps, wakeups);
    for (int i = 0; i < pending; i++)
        lp_result_destroy (&results [i]);
    free (results);
    free (input);
    lp_view_destroy (&lb);
    lp_client_destroy (&client);
    return right == tasks? 0: 1;
}
