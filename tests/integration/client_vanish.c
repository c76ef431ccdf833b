/*  client_vanish.c - a client that dies mid-request harms nobody

    A child process connects, sends a 2 s request to an engine and a batch
    of quick ones to all engines, and is killed (SIGKILL) while they run.
    The engine finishes, its replies for the vanished client are dropped,
    and the next client's requests to the same engine are answered.
*/
#include "lp_testlib.h"
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

int
main (int argc, char **argv)
{
    printf ("client_vanish:\n");
    CHECK (argc >= 2, "usage: %s lp-client.json", argv[0]);
    int pipefd[2];
    CHECK (pipe (pipefd) == 0, "pipe failed");
    pid_t child = fork ();
    CHECK (child >= 0, "fork failed");
    if (child == 0) {
        close (pipefd[0]);
        lp_client_t *c = lp_client_connect (argv[1], LPT_DEADLINE_MS);
        if (!c || lp_client_wait_for_engines (c, LPT_ENGINES, LPT_DEADLINE_MS) != 0)
            _exit (2);
        int ids[64];
        lp_client_ids (c, ids, 64);
        lp_view_t *one = lp_client_view (c, &ids[0], 1);
        lp_view_t *all = lp_client_view (c, NULL, 0);
        lp_result_t *slow = lp_view_execute (one,
            "vanished = 'yes' local t = os.clock() while os.clock() - t < 2 do end return 1");
        for (int i = 0; i < 20; i++) {
            lp_result_t *r = lp_view_execute (all, "print('to nobody') return string.rep('x', 100000)");
            (void) r;               //  left pending on purpose
        }
        (void) slow;
        lpt_wait_busy (c, ids[0]);
        if (write (pipefd[1], "s", 1) != 1)
            _exit (3);
        pause ();                   //  killed here, results pending
        _exit (4);
    }
    close (pipefd[1]);
    char ch;
    ssize_t got = read (pipefd[0], &ch, 1);     //  blocks until the child's request runs
    if (got != 1) {
        int status;
        waitpid (child, &status, 0);
        CHECK (0, "the child client failed before sending its requests (exit %d)",
               WIFEXITED (status) ? WEXITSTATUS (status) : -1);
    }
    close (pipefd[0]);
    CHECK (kill (child, SIGKILL) == 0, "kill of the child client failed");
    int status;
    CHECK (waitpid (child, &status, 0) == child, "waitpid failed");
    lpt_say ("client pid %d killed with its requests pending", (int) child);

    lp_client_t *client = lpt_connect (argc, argv);
    int ids[64];
    int n = lp_client_ids (client, ids, 64);
    CHECK (n == LPT_ENGINES, "%d engines after the client vanished, expected %d", n, LPT_ENGINES);
    lp_view_t *one = lp_client_view (client, &ids[0], 1);
    double t0 = lpt_now_ms ();
    lp_result_t *r = lpt_exec (one, "vanished");
    const lp_value_t *v = lp_result_value (r, 0);
    CHECK (v && lp_value_as_string (v, NULL) && strcmp (lp_value_as_string (v, NULL), "yes") == 0,
           "the vanished client's request did not run to completion: 'vanished' is %s", lpt_show (v));
    CHECK (strlen (lp_result_stdout (r, 0)) == 0, "the new client's request got someone else's "
           "output: '%s'", lp_result_stdout (r, 0));
    lpt_say ("engine %d finished the dead client's work and answered the new client after %.0f ms",
             ids[0], lpt_now_ms () - t0);
    lp_result_destroy (&r);
    lp_view_t *all = lp_client_view (client, NULL, 0);
    r = lpt_exec (all, "7 * 6");
    for (int i = 0; i < n; i++)
        LPT_EXPECT_INT (r, i, 42, "7 * 6 on all engines");
    lp_result_destroy (&r);
    //  queues drain: every engine idle with nothing queued
    double t1 = lpt_now_ms ();
    bool idle = false;
    char last[512] = "";
    while (!idle && lpt_now_ms () - t1 < LPT_DEADLINE_MS) {
        lp_value_t *status_v = lp_client_status (client, 5000);
        idle = status_v != NULL;
        for (int i = 0; idle && i < n; i++) {
            const lp_value_t *row = lpt_status_row (status_v, ids[i]);
            const lp_value_t *q = row ? lp_value_get (row, "queue") : NULL;
            if (!q || lp_value_as_int (q) != 0)
                idle = false;
        }
        snprintf (last, sizeof last, "%s", lpt_show (status_v));
        lp_value_destroy (&status_v);
        if (!idle)
            lp_client_poll (client, 100);
    }
    CHECK (idle, "queues never drained after the client vanished; status: %s", last);
    lpt_say ("all queues back to 0");
    lp_view_destroy (&all);
    lp_view_destroy (&one);
    lp_client_destroy (&client);
    printf ("client_vanish: OK\n");
    return 0;
}
