/*  zmq_baseline.c - the physical limit: raw libzmq between processes

    Usage: zmq_baseline [--quick] [--direct-only | --relay-only]

    Plain libzmq over loopback TCP, no framing, no serialisation, no
    signing: what ZeroMQ alone costs on this machine. Two set-ups, each in
    processes forked before any ZeroMQ context exists:

      direct   client DEALER -> server ROUTER (one hop each way)
      relay    client DEALER -> relay ROUTER | relay DEALER -> server
               ROUTER: the relay is zmq_proxy in its own process, the same
               two hops each way as client -> controller -> engine

    The server echoes, acknowledges or answers with N frames (see
    s_server). Prints one "key value" line per figure (read by
    bench/bench.py):

      rtt_median_us, rtt_p99_us   ping-pong of one small frame, 2000 trips
      pipelined_per_s             echoes per second with 1000 in flight
      big_one_frame_mb_s          100 MB sent as one frame, then a 1-byte ack
      big_1mb_frames_mb_s         100 MB sent as 100 messages of 1 MB, then ack
      big_echo_one_frame_mb_s     100 MB echoed back as one frame (bytes / time
                                  of the whole round trip, counting 100 MB)
      relay_rtt_median_us, relay_rtt_p99_us
                                  ping-pong through the relay, 2000 trips
      relay_pipelined_per_s       echoes through the relay, 1000 in flight
      relay_push_mb_s             100 MB as one message of 100 frames of
                                  1 MB through the relay, then a 1-byte ack
      relay_pull_mb_s             a request through the relay answered by
                                  one message of 100 frames of 1 MB
      relay_scatter_s             8 MB (10^6 numbers of 8 bytes) as 4
                                  messages of 2 MB through the relay, each
                                  acknowledged: time until the 4th ack
      relay_gather_s              4 requests through the relay, each
                                  answered with 2 MB: time until the 4th

    Each throughput figure is the best of 3 runs (1 with --quick), the
    relay transfers the best of 5 (they take a fraction of a second each):
    a limit is what the machine can do, and the load of a shared machine
    only ever lowers a figure (medians of 3 swung 3x between runs minutes
    apart). Direct sends of 1 MB messages copy from the caller's buffer
    (zmq_send); the one-frame figures and every relay transfer send
    without copying (zmq_msg_init_data), as a sender lending its buffer.
*/
#include <zmq.h>
#include <assert.h>
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define BIG_BYTES       (100u * 1000u * 1000u)
#define CHUNK_BYTES     (1000u * 1000u)
#define CHUNKS          (BIG_BYTES / CHUNK_BYTES)
#define PART_BYTES      (2u * 1000u * 1000u)    //  10^6 numbers / 4 engines x 8
#define PARTS           4
#define MAX_FRAMES      (CHUNKS + 8)

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

//  The best of count figures: the highest, or the lowest when lowest.
static double
s_best (double *values, int count, int lowest)
{
    qsort (values, count, sizeof (double), s_cmp);
    return lowest? values [0]: values [count - 1];
}

#define RELAY_REPS  5

static void
s_unbounded (void *socket)
{
    int zero = 0;
    zmq_setsockopt (socket, ZMQ_SNDHWM, &zero, sizeof zero);
    zmq_setsockopt (socket, ZMQ_RCVHWM, &zero, sizeof zero);
    zmq_setsockopt (socket, ZMQ_LINGER, &zero, sizeof zero);
}

//  Binds socket to a free loopback port; writes the endpoint to fd.
static void
s_bind_report (void *socket, int fd)
{
    if (zmq_bind (socket, "tcp://127.0.0.1:*"))
        s_die ("zmq_bind");
    char endpoint [256];
    size_t len = sizeof endpoint;
    if (zmq_getsockopt (socket, ZMQ_LAST_ENDPOINT, endpoint, &len))
        s_die ("last endpoint");
    char line [260];
    int n = snprintf (line, sizeof line, "%s\n", endpoint);
    if (write (fd, line, n) != n)
        exit (1);
}

//  Reads one endpoint line from fd.
static void
s_read_endpoint (int fd, char *endpoint, size_t size)
{
    size_t k = 0;
    while (k + 1 < size) {
        char c;
        if (read (fd, &c, 1) != 1) {
            fprintf (stderr, "zmq_baseline: a child died before it bound\n");
            exit (1);
        }
        if (c == '\n')
            break;
        endpoint [k++] = c;
    }
    endpoint [k] = 0;
}

static void
s_free_big (void *data, void *hint)
{
    (void) hint;
    (void) data;    //  the buffer is static for the run; nothing to free
}

//  Sends size bytes at data without copying them (the buffer lives, and
//  never changes, for the whole run).
static void
s_send_zc (void *socket, const void *data, size_t size, int flags)
{
    zmq_msg_t msg;
    if (zmq_msg_init_data (&msg, (void *) (uintptr_t) data, size, s_free_big, NULL))
        s_die ("msg init");
    if (zmq_msg_send (&msg, socket, flags) < 0)
        s_die ("send");
}

//  The server: a ROUTER. A request is [envelope...][op][payload...], the
//  envelope being `envelope` routing frames (1 direct: the client's
//  identity; 2 through the relay: the relay's and the client's). Ops:
//  "E" echoes the whole message, "A" answers "A" once the message is in,
//  "C" takes it silently, "P" + "COUNT SIZE" answers "P" + COUNT frames of
//  SIZE bytes (one message), "Q" quits.
static void
s_server (void *router, int envelope, const char *payload)
{
    zmq_msg_t frames [MAX_FRAMES];
    while (1) {
        int count = 0, more = 1;
        while (more) {
            if (count == MAX_FRAMES) {
                fprintf (stderr, "zmq_baseline: server: too many frames\n");
                exit (1);
            }
            zmq_msg_init (&frames [count]);
            if (zmq_msg_recv (&frames [count], router, 0) < 0)
                s_die ("server recv");
            more = zmq_msg_more (&frames [count]);
            count++;
        }
        if (count <= envelope) {
            fprintf (stderr, "zmq_baseline: server: message without op\n");
            exit (1);
        }
        zmq_msg_t *op = &frames [envelope];
        char code = zmq_msg_size (op) > 0? *(char *) zmq_msg_data (op): '?';
        int sent = 0;                       //  frames consumed by sends
        if (code == 'E') {
            for (int i = 0; i < count; i++)
                if (zmq_msg_send (&frames [i], router, i + 1 < count? ZMQ_SNDMORE: 0) < 0)
                    s_die ("send echo");
            sent = count;
        }
        else
        if (code == 'A' || code == 'P') {
            for (int i = 0; i < envelope; i++)
                if (zmq_msg_send (&frames [i], router, ZMQ_SNDMORE) < 0)
                    s_die ("send envelope");
            sent = envelope;
            if (code == 'A') {
                if (zmq_send (router, "A", 1, 0) < 0)
                    s_die ("send ack");
            }
            else {
                char spec [64] = "";
                if (count > envelope + 1) {
                    size_t len = zmq_msg_size (&frames [envelope + 1]);
                    if (len >= sizeof spec)
                        len = sizeof spec - 1;
                    memcpy (spec, zmq_msg_data (&frames [envelope + 1]), len);
                    spec [len] = 0;
                }
                unsigned frames_out = 0, size = 0;
                if (sscanf (spec, "%u %u", &frames_out, &size) != 2
                ||  size > BIG_BYTES || frames_out > CHUNKS) {
                    fprintf (stderr, "zmq_baseline: server: bad P spec '%s'\n", spec);
                    exit (1);
                }
                if (zmq_send (router, "P", 1, frames_out? ZMQ_SNDMORE: 0) < 0)
                    s_die ("send P");
                for (unsigned i = 0; i < frames_out; i++)
                    s_send_zc (router, payload, size, i + 1 < frames_out? ZMQ_SNDMORE: 0);
            }
        }
        for (int i = sent; i < count; i++)
            zmq_msg_close (&frames [i]);
        if (code == 'Q')
            break;
    }
}

//  Sends [op][data]; data may be NULL for an op alone.
static void
s_send2 (void *dealer, const char *op, const void *data, size_t size)
{
    if (zmq_send (dealer, op, 1, data? ZMQ_SNDMORE: 0) < 0
    ||  (data && zmq_send (dealer, data, size, 0) < 0))
        s_die ("send");
}

//  Receives one whole message; returns its total size in bytes.
static size_t
s_recv_all (void *dealer)
{
    size_t total = 0;
    int more = 1;
    while (more) {
        zmq_msg_t msg;
        zmq_msg_init (&msg);
        if (zmq_msg_recv (&msg, dealer, 0) < 0)
            s_die ("recv");
        total += zmq_msg_size (&msg);
        more = zmq_msg_more (&msg);
        zmq_msg_close (&msg);
    }
    return total;
}

//  Ping-pong: median and p99 in microseconds under prefix.
static void
s_pingpong (void *dealer, const char *prefix)
{
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
    printf ("%srtt_median_us %.1f\n", prefix, rtt [trips / 2]);
    printf ("%srtt_p99_us %.1f\n", prefix, rtt [trips * 99 / 100]);
    free (rtt);
}

//  Pipelined echo: keeps `window` messages in flight; messages per second.
static double
s_pipelined (void *dealer, int total)
{
    int window = 1000, sent = 0, got = 0;
    double t0 = s_now ();
    while (got < total) {
        while (sent < total && sent - got < window) {
            s_send2 (dealer, "E", "ping", 4);
            sent++;
        }
        s_recv_all (dealer);
        got++;
    }
    return total / (s_now () - t0);
}

//  Forks a child that runs fn (arg) with its own context; the child dies
//  with the parent. Returns the child's pid.
static pid_t
s_spawn (void (*fn) (void *ctx, void *arg), void *arg)
{
    fflush (stdout);
    pid_t pid = fork ();
    if (pid < 0) {
        perror ("fork");
        exit (1);
    }
    if (pid == 0) {
        prctl (PR_SET_PDEATHSIG, SIGKILL);
        void *ctx = zmq_ctx_new ();
        if (!ctx)
            s_die ("zmq_ctx_new");
        fn (ctx, arg);
        zmq_ctx_term (ctx);
        _exit (0);
    }
    return pid;
}

typedef struct {
    int fd;                             //  where to write endpoints
    const char *connect;                //  endpoint to connect to, or NULL
    int envelope;                       //  routing frames before the op
    const char *payload;                //  bytes the P op sends
} child_args_t;

static void
s_server_child (void *ctx, void *arg)
{
    child_args_t *args = arg;
    void *router = zmq_socket (ctx, ZMQ_ROUTER);
    if (!router)
        s_die ("zmq_socket");
    s_unbounded (router);
    if (args->connect) {
        if (zmq_connect (router, args->connect))
            s_die ("zmq_connect");
    }
    else
        s_bind_report (router, args->fd);
    s_server (router, args->envelope, args->payload);
    zmq_close (router);
}

//  The relay: ROUTER front, DEALER back, zmq_proxy between them (frames
//  are moved, not copied). Runs until killed.
static void
s_relay_child (void *ctx, void *arg)
{
    child_args_t *args = arg;
    void *front = zmq_socket (ctx, ZMQ_ROUTER);
    void *back = zmq_socket (ctx, ZMQ_DEALER);
    if (!front || !back)
        s_die ("zmq_socket");
    s_unbounded (front);
    s_unbounded (back);
    s_bind_report (front, args->fd);
    s_bind_report (back, args->fd);
    zmq_proxy (front, back, NULL);
    zmq_close (front);
    zmq_close (back);
}

static void *
s_dealer (void *ctx, const char *endpoint)
{
    void *dealer = zmq_socket (ctx, ZMQ_DEALER);
    if (!dealer)
        s_die ("zmq_socket");
    s_unbounded (dealer);
    if (zmq_connect (dealer, endpoint))
        s_die ("zmq_connect");
    return dealer;
}

static void
s_direct (void *dealer, int quick, char *big)
{
    int reps = quick? 1: 3;
    s_pingpong (dealer, "");

    double rates [3];
    for (int r = 0; r < reps; r++)
        rates [r] = s_pipelined (dealer, quick? 200000: 500000);
    printf ("pipelined_per_s %.0f\n", s_best (rates, reps, 0));

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

        //  100 messages of 1 MB, ack on the last
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
    printf ("big_one_frame_mb_s %.0f\n", s_best (one, reps, 0));
    printf ("big_1mb_frames_mb_s %.0f\n", s_best (chunked, reps, 0));
    printf ("big_echo_one_frame_mb_s %.0f\n", s_best (echo, reps, 0));
    fflush (stdout);
}

static void
s_relay (void *dealer, int quick, char *big)
{
    int reps = quick? 1: 3;
    s_pingpong (dealer, "relay_");

    double rates [3];
    for (int r = 0; r < reps; r++)
        rates [r] = s_pipelined (dealer, quick? 100000: 300000);
    printf ("relay_pipelined_per_s %.0f\n", s_best (rates, reps, 0));

    double push [RELAY_REPS], pull [RELAY_REPS], scatter [RELAY_REPS], gather [RELAY_REPS];
    char spec [64];
    for (int r = 0; r < RELAY_REPS; r++) {
        //  Push: one message of 100 frames of 1 MB, then the ack
        double t0 = s_now ();
        if (zmq_send (dealer, "A", 1, ZMQ_SNDMORE) < 0)
            s_die ("send");
        for (unsigned i = 0; i < CHUNKS; i++)
            s_send_zc (dealer, big + i * CHUNK_BYTES, CHUNK_BYTES,
                       i + 1 < CHUNKS? ZMQ_SNDMORE: 0);
        s_recv_all (dealer);
        push [r] = BIG_BYTES / 1e6 / (s_now () - t0);

        //  Pull: a request answered by 100 frames of 1 MB
        t0 = s_now ();
        snprintf (spec, sizeof spec, "%u %u", CHUNKS, CHUNK_BYTES);
        s_send2 (dealer, "P", spec, strlen (spec));
        size_t got = s_recv_all (dealer);
        pull [r] = BIG_BYTES / 1e6 / (s_now () - t0);
        if (got != BIG_BYTES + 1) {
            fprintf (stderr, "zmq_baseline: pulled %zu bytes\n", got);
            exit (1);
        }

        //  Scatter: 4 messages of 2 MB, each acknowledged
        t0 = s_now ();
        for (int i = 0; i < PARTS; i++) {
            if (zmq_send (dealer, "A", 1, ZMQ_SNDMORE) < 0)
                s_die ("send");
            s_send_zc (dealer, big + i * PART_BYTES, PART_BYTES, 0);
        }
        for (int i = 0; i < PARTS; i++)
            s_recv_all (dealer);
        scatter [r] = s_now () - t0;

        //  Gather: 4 requests, each answered with 2 MB
        t0 = s_now ();
        snprintf (spec, sizeof spec, "1 %u", PART_BYTES);
        for (int i = 0; i < PARTS; i++)
            s_send2 (dealer, "P", spec, strlen (spec));
        for (int i = 0; i < PARTS; i++)
            s_recv_all (dealer);
        gather [r] = s_now () - t0;
    }
    printf ("relay_push_mb_s %.0f\n", s_best (push, RELAY_REPS, 0));
    printf ("relay_pull_mb_s %.0f\n", s_best (pull, RELAY_REPS, 0));
    printf ("relay_scatter_s %.5f\n", s_best (scatter, RELAY_REPS, 1));
    printf ("relay_gather_s %.5f\n", s_best (gather, RELAY_REPS, 1));
    fflush (stdout);
}

int
main (int argc, char *argv [])
{
    int quick = 0, direct = 1, relay = 1;
    for (int i = 1; i < argc; i++) {
        if (strcmp (argv [i], "--quick") == 0)
            quick = 1;
        else
        if (strcmp (argv [i], "--direct-only") == 0)
            relay = 0;
        else
        if (strcmp (argv [i], "--relay-only") == 0)
            direct = 0;
        else {
            fprintf (stderr, "usage: zmq_baseline [--quick] [--direct-only | --relay-only]\n");
            return 2;
        }
    }
    //  The payload every process sends, filled before the forks
    char *big = malloc (BIG_BYTES);
    assert (big);
    memset (big, 0x5a, BIG_BYTES);

    //  Children first, while this process has no ZeroMQ context
    int pipe_fd [2];
    if (pipe (pipe_fd)) {
        perror ("pipe");
        return 1;
    }
    child_args_t direct_args = { pipe_fd [1], NULL, 1, big };
    child_args_t relay_args = { pipe_fd [1], NULL, 0, NULL };
    char direct_ep [256] = "", front_ep [256] = "", back_ep [256] = "";
    pid_t direct_pid = 0, relay_pid = 0, server_pid = 0;
    if (direct) {
        direct_pid = s_spawn (s_server_child, &direct_args);
        s_read_endpoint (pipe_fd [0], direct_ep, sizeof direct_ep);
    }
    if (relay) {
        relay_pid = s_spawn (s_relay_child, &relay_args);
        s_read_endpoint (pipe_fd [0], front_ep, sizeof front_ep);
        s_read_endpoint (pipe_fd [0], back_ep, sizeof back_ep);
        child_args_t server_args = { -1, back_ep, 2, big };
        server_pid = s_spawn (s_server_child, &server_args);
    }
    close (pipe_fd [0]);
    close (pipe_fd [1]);

    void *ctx = zmq_ctx_new ();
    if (!ctx)
        s_die ("zmq_ctx_new");
    int status;
    if (direct) {
        void *dealer = s_dealer (ctx, direct_ep);
        s_direct (dealer, quick, big);
        s_send2 (dealer, "Q", NULL, 0);
        waitpid (direct_pid, &status, 0);
        zmq_close (dealer);
    }
    if (relay) {
        void *dealer = s_dealer (ctx, front_ep);
        s_relay (dealer, quick, big);
        s_send2 (dealer, "Q", NULL, 0);
        waitpid (server_pid, &status, 0);
        kill (relay_pid, SIGTERM);          //  zmq_proxy runs until killed
        waitpid (relay_pid, &status, 0);
        zmq_close (dealer);
    }
    zmq_ctx_term (ctx);
    free (big);
    return 0;
}
