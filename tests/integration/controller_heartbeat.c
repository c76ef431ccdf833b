/*  controller_heartbeat.c - the controller publishes signs of life for
    clients (issue 8, observation 5; docs/protocol.md, "Notification
    channel")

    A raw SUB on the notification endpoint must receive, every heartbeat
    period, topic "controller" then a signed controller_heartbeat whose
    content {seq, heartbeat_msec} has a growing seq. Before the fix the
    notification channel was silent between engine events, so a client
    could not tell a quiet controller from a dead one.
*/
#include "lp_testlib.h"
#include "lp_rawwire.h"

int
main (int argc, char **argv)
{
    printf ("controller_heartbeat:\n");
    CHECK (argc >= 2, "usage: %s lp-client.json", argv[0]);
    lpw_t wire = { 0 };
    char *endpoint = lpw_open (&wire, argv[1], "notification");
    void *sub = zmq_socket (wire.ctx, ZMQ_SUB);
    CHECK (sub, "zmq_socket: %s", zmq_strerror (zmq_errno ()));
    int linger = 0;
    zmq_setsockopt (sub, ZMQ_LINGER, &linger, sizeof linger);
    CHECK (zmq_setsockopt (sub, ZMQ_SUBSCRIBE, "controller", 10) == 0, "subscribe");
    CHECK (zmq_connect (sub, endpoint) == 0, "connect %s", endpoint);
    free (endpoint);

    int64_t last_seq = -1, period = -1;
    double first_at = 0;
    int seen = 0;
    double t0 = lpt_now_ms ();
    while (seen < 3) {
        int left = LPT_DEADLINE_MS - (int) (lpt_now_ms () - t0);
        lpw_msg_t m;
        CHECK (left > 0 && lpw_recv_msg (&wire, sub, &m, left),
               "only %d controller_heartbeat messages within %d ms", seen, LPT_DEADLINE_MS);
        const lpw_frames_t *f = &m.frames;
        CHECK (m.delim == 1 && f->nframes >= 7 && f->size[0] == 10
               && memcmp (f->data[0], "controller", 10) == 0,
               "not [controller] <LPMSG> ... (%d frames)", f->nframes);
        char type[64];
        lpw_copy_str (lpw_get (m.header, "msg_type"), type, sizeof type);
        CHECK (strcmp (type, "controller_heartbeat") == 0, "msg_type '%s'", type);
        const msgpack_object *seq = lpw_get (m.content, "seq");
        const msgpack_object *hb = lpw_get (m.content, "heartbeat_msec");
        CHECK (seq && seq->type == MSGPACK_OBJECT_POSITIVE_INTEGER && hb
               && hb->type == MSGPACK_OBJECT_POSITIVE_INTEGER, "content lacks seq / heartbeat_msec");
        CHECK ((int64_t) seq->via.u64 > last_seq, "seq %llu after %lld", (unsigned long long) seq->via.u64,
               (long long) last_seq);
        last_seq = (int64_t) seq->via.u64;
        period = (int64_t) hb->via.u64;
        if (seen == 0)
            first_at = lpt_now_ms ();
        seen++;
        lpw_msg_free (&m);
    }
    double spacing = (lpt_now_ms () - first_at) / 2;
    lpt_say ("3 controller_heartbeat messages, seq up to %lld, heartbeat_msec %lld, %.0f ms apart",
             (long long) last_seq, (long long) period, spacing);
    CHECK (period > 0 && spacing < 3.0 * period, "heartbeats %.0f ms apart, period %lld ms",
           spacing, (long long) period);
    zmq_close (sub);
    zmq_ctx_term (wire.ctx);
    printf ("controller_heartbeat: OK\n");
    return 0;
}
