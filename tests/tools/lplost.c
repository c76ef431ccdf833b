/*  lplost - a pending load-balanced map whose controller is killed

    Usage: lplost <lp-client.json> <lpcontroller.pid>

    Issue 8, observation 5 (client part), driven by tests/shell/
    lost_controller.sh. Connects, waits for the engines, sends a
    load-balanced map of 8 tasks that each sleep 60 s on their engine,
    waits until the controller has assigned some of them (queue status),
    then kills the controller with SIGKILL (pid from the pid file) and
    waits for the result with a 60 s deadline. Checks that
    lp_result_wait returns LP_ELOST within lost_after (3 s) plus slack,
    that every slot ended with ename ControllerLost and an evalue that
    names the controller's endpoint, and that a new request then fails at
    once with LP_ELOST. Prints "OK" and exits 0 on success, 1 otherwise.
*/
#include "lp_check.h"
#include <luaparallel.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/types.h>

#define DEADLINE_MS     60000       //  generous deadline for any event
#define LOST_SLACK_MS   4000        //  allowed beyond lost_after (busy machine)

static double
s_now_ms (void)
{
    struct timespec ts;
    clock_gettime (CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000.0 + ts.tv_nsec / 1e6;
}

int
main (int argc, char **argv)
{
    if (argc != 3) {
        fprintf (stderr, "usage: lplost <lp-client.json> <lpcontroller.pid>\n");
        return 2;
    }
    FILE *file = fopen (argv [2], "r");
    long pid = 0;
    if (!file || fscanf (file, "%ld", &pid) != 1 || pid <= 1)
        FAIL ("cannot read a controller pid from %s", argv [2]);
    fclose (file);

    lp_client_t *client = lp_client_connect (argv [1], DEADLINE_MS);
    if (!client)
        FAIL ("connect: %s", lp_last_error ());
    if (lp_client_wait_for_engines (client, 2, DEADLINE_MS))
        FAIL ("engines: %s", lp_client_error (client));

    lp_view_t *lb = lp_client_balanced (client);
    lp_result_t *r = lb? lp_view_map (lb, "function(x) lp.sleep(60) return x end",
                                      lp_value_int_range (1, 8)): NULL;
    if (!r)
        FAIL ("map: %s", lp_client_error (client));

    //  Wait (on the event, with a deadline) until tasks run on engines
    double until = s_now_ms () + DEADLINE_MS;
    long running = 0;
    while (running == 0 && s_now_ms () < until) {
        lp_value_t *status = lp_client_queue_status (client, DEADLINE_MS);
        if (!status)
            FAIL ("queue status: %s", lp_client_error (client));
        const lp_value_t *engines = lp_value_get (status, "engines");
        for (size_t i = 0; engines && i < lp_value_len (engines); i++)
            running += (long) lp_value_as_int (lp_value_get (lp_value_at (engines, i),
                                                             "tasks_running"));
        lp_value_destroy (&status);
        if (running == 0)
            lp_client_poll (client, 50);
    }
    if (running == 0)
        FAIL ("no task started within %d ms", DEADLINE_MS);
    printf ("  %ld tasks running; kill -9 of controller pid %ld\n", running, pid);
    fflush (stdout);

    if (kill ((pid_t) pid, SIGKILL))
        FAIL ("kill -9 %ld: %s", pid, strerror (errno));
    double killed_at = s_now_ms ();
    int rc = lp_result_wait (r, DEADLINE_MS);
    double took = s_now_ms () - killed_at;
    printf ("  lp_result_wait returned %d (%s) after %.0f ms: %s\n",
            rc, lp_strerror (rc), took, lp_client_error (client));
    if (rc != LP_ELOST)
        FAIL ("lp_result_wait returned %d (%s), expected LP_ELOST (%d)",
                rc, lp_strerror (rc), LP_ELOST);
    if (took > 3000 + LOST_SLACK_MS)
        FAIL ("the lost controller was noticed after %.0f ms (lost_after 3000 ms)", took);
    for (int i = 0; i < lp_result_count (r); i++) {
        const char *ename = lp_result_ename (r, i);
        const char *evalue = lp_result_evalue (r, i);
        if (!ename || strcmp (ename, "ControllerLost"))
            FAIL ("slot %d ended with %s, expected ControllerLost", i,
                    ename? ename: "a value");
        if (!evalue || !strstr (evalue, "controller at tcp://")
        ||  !strstr (evalue, "lost"))
            FAIL ("slot %d evalue does not name the controller: %s", i,
                    evalue? evalue: "(null)");
    }
    printf ("  every slot: %s\n", lp_result_error (r, 0));

    //  While lost, new requests fail at once.
    double t0 = s_now_ms ();
    lp_result_t *again = lp_view_execute (lb, "return 1");
    if (again)
        FAIL ("a request while the controller is lost was accepted");
    if (lp_client_errcode (client) != LP_ELOST)
        FAIL ("a request while lost failed with %d (%s): %s, expected LP_ELOST",
                lp_client_errcode (client), lp_strerror (lp_client_errcode (client)),
                lp_client_error (client));
    if (s_now_ms () - t0 > 1000)
        FAIL ("a request while lost took %.0f ms to fail", s_now_ms () - t0);

    lp_result_destroy (&r);
    lp_view_destroy (&lb);
    lp_client_destroy (&client);
    printf ("OK\n");
    return 0;
}
