/*  zmq_baseline.c - the physical limit: raw libzmq between two processes

    Usage: zmq_baseline [--quick]

    Forks one child that binds a ROUTER on a loopback TCP port and echoes
    (or acknowledges) whatever a DEALER in the parent sends; no framing,
    no serialisation, no signing: what ZeroMQ alone costs on this machine.
    Prints one "key value" line per figure (read by bench/bench.py):

      rtt_median_us, rtt_p99_us   ping-pong of one small frame, 2000 trips
      pipelined_per_s             echoes per second with 1000 in flight
      big_one_frame_mb_s          100 MB sent as one frame, then a 1-byte ack
      big_1mb_frames_mb_s         100 MB sent as 100 frames of 1 MB, then ack
      big_echo_one_frame_mb_s     100 MB echoed back as one frame (bytes / time
                                  of the whole round trip, counting 100 MB)

    Each transfer figure is the median of 3 runs (1 with --quick).
*/
#include <zmq.h>
#include <assert.h>
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define BIG_BYTES   (100u * 1000u * 1000u)
#define CHUNK_BYTES (1000u * 1000u)

static double
s_now (void)
{
    struct timespec ts;
    clock_gettime (CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void
s_die (const char *what)
{
    fprintf (stderr, "zmq_baseline: %s: %s\n", what, zmq_strerror (zmq_errno ()));
    exit (1);
}

static int
s_cmp (const void *a, const void *b)
{
    double x = *(const double *) a, y = *(const double *) b;
    return (x > y) - (x < y);
}

//  Child: ROUTER echo server. A message is [identity][op][payload...];
//  op "E" echoes the payload, "A" answers a 1-byte ack once the frame
//  carrying "last" arrives (op "C" is a chunk without ack), "Q" quits.
static void
s_server (void *ctx, const char *endpoint)
{
    void *router = zmq_socket (ctx, ZMQ_ROUTER);
    if (!router)
        s_die ("zmq_socket");
    int zero = 0;
    zmq_setsockopt (router, ZMQ_SNDHWM, &zero, sizeof zero);
    zmq_setsockopt (router, ZMQ_RCVHWM, &zero, sizeof zero);
    if (zmq_connect (router, endpoint))
        s_die ("zmq_connect");
    while (1) {
        zmq_msg_t id, op, body;
        zmq_msg_init (&id);
        zmq_msg_init (&op);
        zmq_msg_init (&body);
        if (zmq_msg_recv (&id, router, 0) < 0)
            s_die ("recv id");
        if (zmq_msg_recv (&op, router, 0) < 0)
            s_die ("recv op");
        char code = zmq_msg_size (&op) > 0? *(char *) zmq_msg_data (&op): '?';
        if (zmq_msg_more (&op) && zmq_msg_recv (&body, router, 0) < 0)
            s_die ("recv body");
        if (code == 'Q') {
            zmq_msg_close (&id);
            zmq_msg_close (&op);
            zmq_msg_close (&body);
            break;
        }
        if (code == 'E') {
            if (zmq_msg_send (&id, router, ZMQ_SNDMORE) < 0
            ||  zmq_msg_send (&op, router, ZMQ_SNDMORE) < 0
            ||  zmq_msg_send (&body, router, 0) < 0)
                s_die ("send echo");
        }
        else
        if (code == 'A') {
            if (zmq_msg_send (&id, router, ZMQ_SNDMORE) < 0
            ||  zmq_send (router, "A", 1, 0) < 0)
                s_die ("send ack");
            zmq_msg_close (&op);
        }
        else {
            zmq_msg_close (&id);
            zmq_msg_close (&op);
        }
        zmq_msg_close (&body);
    }
    zmq_close (router);
}

static void
s_send2 (void *dealer, const char *op, const void *data, size_t size)
{
    if (zmq_send (dealer, op, 1, ZMQ_SNDMORE) < 0
    ||  zmq_send (dealer, data, size, 0) < 0)
        s_die ("send");
}

//  Receives one whole message; returns the size of its last frame.
static size_t
s_recv_all (void *dealer)
{
    size_t last = 0;
    int more = 1;
    while (more) {
        zmq_msg_t msg;
        zmq_msg_init (&msg);
        if (zmq_msg_recv (&msg, dealer, 0) < 0)
            s_die ("recv");
        last = zmq_msg_size (&msg);
        more = zmq_msg_more (&msg);
        zmq_msg_close (&msg);
    }
    return last;
}

static void
s_free_big (void *data, void *hint)
{
    (void) hint;
    (void) data;    //  the buffer is static for the run; nothing to free
}

int
main (int argc, char *argv [])
{
    int quick = argc > 1 && strcmp (argv [1], "--quick") == 0;
    int reps = quick? 1: 3;
    void *ctx = zmq_ctx_new ();
    if (!ctx)
        s_die ("zmq_ctx_new");
    void *dealer = zmq_socket (ctx, ZMQ_DEALER);
    if (!dealer)
        s_die ("zmq_socket");
    int zero = 0;
    zmq_setsockopt (dealer, ZMQ_SNDHWM, &zero, sizeof zero);
    zmq_setsockopt (dealer, ZMQ_RCVHWM, &zero, sizeof zero);
    if (zmq_bind (dealer, "tcp://127.0.0.1:*"))
        s_die ("zmq_bind");
    char endpoint [256];
    size_t len = sizeof endpoint;
    if (zmq_getsockopt (dealer, ZMQ_LAST_ENDPOINT, endpoint, &len))
        s_die ("last endpoint");

    //  The child must not inherit a live context: fork before using it
    //  further, and make a fresh context there.
    fflush (stdout);
    pid_t pid = fork ();
    if (pid < 0) {
        perror ("fork");
        return 1;
    }
    if (pid == 0) {
        void *child_ctx = zmq_ctx_new ();
        s_server (child_ctx, endpoint);
        zmq_ctx_term (child_ctx);
        _exit (0);
    }
    //  1. Ping-pong
    int trips = 2000;
    double *rtt = malloc (trips * sizeof (double));
    assert (rtt);
    for (int i = 0; i < 200; i++) {         //  warm up (and connect)
        s_send2 (dealer, "E", "ping", 4);
        s_recv_all (dealer);
    }
    for (int i = 0; i < trips; i++) {
        double t0 = s_now ();
        s_send2 (dealer, "E", "ping", 4);
        s_recv_all (dealer);
        rtt [i] = (s_now () - t0) * 1e6;
    }
    qsort (rtt, trips, sizeof (double), s_cmp);
    printf ("rtt_median_us %.1f\n", rtt [trips / 2]);
    printf ("rtt_p99_us %.1f\n", rtt [trips * 99 / 100]);
    free (rtt);

    //  2. Pipelined echo: keep `window` messages in flight
    double rates [3];
    for (int r = 0; r < reps; r++) {
        int total = quick? 200000: 500000, window = 1000, sent = 0, got = 0;
        double t0 = s_now ();
        while (got < total) {
            while (sent < total && sent - got < window) {
                s_send2 (dealer, "E", "ping", 4);
                sent++;
            }
            s_recv_all (dealer);
            got++;
        }
        rates [r] = total / (s_now () - t0);
    }
    qsort (rates, reps, sizeof (double), s_cmp);
    printf ("pipelined_per_s %.0f\n", rates [reps / 2]);

    //  3. Bulk transfers
    char *big = malloc (BIG_BYTES);
    assert (big);
    memset (big, 0x5a, BIG_BYTES);
    double one [3], chunked [3], echo [3];
    for (int r = 0; r < reps; r++) {
        //  One frame, zero-copy from our buffer, then an ack
        double t0 = s_now ();
        zmq_msg_t msg;
        if (zmq_msg_init_data (&msg, big, BIG_BYTES, s_free_big, NULL))
            s_die ("msg init");
        if (zmq_send (dealer, "A", 1, ZMQ_SNDMORE) < 0
        ||  zmq_msg_send (&msg, dealer, 0) < 0)
            s_die ("send big");
        s_recv_all (dealer);
        one [r] = BIG_BYTES / 1e6 / (s_now () - t0);

        //  100 frames of 1 MB, ack on the last
        t0 = s_now ();
        for (unsigned off = 0; off < BIG_BYTES; off += CHUNK_BYTES)
            s_send2 (dealer, off + CHUNK_BYTES >= BIG_BYTES? "A": "C",
                     big + off, CHUNK_BYTES);
        s_recv_all (dealer);
        chunked [r] = BIG_BYTES / 1e6 / (s_now () - t0);

        //  One frame there and back
        t0 = s_now ();
        if (zmq_msg_init_data (&msg, big, BIG_BYTES, s_free_big, NULL))
            s_die ("msg init");
        if (zmq_send (dealer, "E", 1, ZMQ_SNDMORE) < 0
        ||  zmq_msg_send (&msg, dealer, 0) < 0)
            s_die ("send big");
        s_recv_all (dealer);
        echo [r] = BIG_BYTES / 1e6 / (s_now () - t0);
    }
    qsort (one, reps, sizeof (double), s_cmp);
    qsort (chunked, reps, sizeof (double), s_cmp);
    qsort (echo, reps, sizeof (double), s_cmp);
    printf ("big_one_frame_mb_s %.0f\n", one [reps / 2]);
    printf ("big_1mb_frames_mb_s %.0f\n", chunked [reps / 2]);
    printf ("big_echo_one_frame_mb_s %.0f\n", echo [reps / 2]);
    fflush (stdout);

    s_send2 (dealer, "Q", "", 0);
    int status;
    waitpid (pid, &status, 0);
    free (big);
    zmq_close (dealer);
    zmq_ctx_term (ctx);
    return 0;
}
