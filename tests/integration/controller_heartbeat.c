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
        zmq_pollitem_t item = { sub, 0, ZMQ_POLLIN, 0 };
        CHECK (left > 0 && zmq_poll (&item, 1, left) > 0,
               "only %d controller_heartbeat messages within %d ms", seen, LPT_DEADLINE_MS);
        lpw_frames_t f = { 0 };
        int more = 1;
        while (more) {
            zmq_msg_t msg;
            zmq_msg_init (&msg);
            CHECK (zmq_msg_recv (&msg, sub, 0) >= 0, "recv: %s", zmq_strerror (zmq_errno ()));
            lpw_frames_add (&f, zmq_msg_data (&msg), zmq_msg_size (&msg));
            more = zmq_msg_more (&msg);
            zmq_msg_close (&msg);
        }
        CHECK (f.nframes >= 7 && f.size[0] == 10 && memcmp (f.data[0], "controller", 10) == 0
               && f.size[1] == 7 && memcmp (f.data[1], "<LPMSG>", 7) == 0,
               "not [controller] <LPMSG> ... (%d frames)", f.nframes);
        char sig[65];
        lpw_sign (&wire, &f, 3, sig);
        CHECK (f.size[2] == 64 && memcmp (f.data[2], sig, 64) == 0, "heartbeat signature is wrong");
        msgpack_unpacked header, content;
        msgpack_unpacked_init (&header);
        msgpack_unpacked_init (&content);
        size_t off = 0;
        CHECK (msgpack_unpack_next (&header, (const char *) f.data[3], f.size[3], &off)
               == MSGPACK_UNPACK_SUCCESS, "header does not decode");
        off = 0;
        CHECK (msgpack_unpack_next (&content, (const char *) f.data[6], f.size[6], &off)
               == MSGPACK_UNPACK_SUCCESS, "content does not decode");
        char type[64];
        lpw_copy_str (lpw_get (&header.data, "msg_type"), type, sizeof type);
        CHECK (strcmp (type, "controller_heartbeat") == 0, "msg_type '%s'", type);
        const msgpack_object *seq = lpw_get (&content.data, "seq");
        const msgpack_object *hb = lpw_get (&content.data, "heartbeat_msec");
        CHECK (seq && seq->type == MSGPACK_OBJECT_POSITIVE_INTEGER && hb
               && hb->type == MSGPACK_OBJECT_POSITIVE_INTEGER, "content lacks seq / heartbeat_msec");
        CHECK ((int64_t) seq->via.u64 > last_seq, "seq %llu after %lld", (unsigned long long) seq->via.u64,
               (long long) last_seq);
        last_seq = (int64_t) seq->via.u64;
        period = (int64_t) hb->via.u64;
        if (seen == 0)
            first_at = lpt_now_ms ();
        seen++;
        msgpack_unpacked_destroy (&header);
        msgpack_unpacked_destroy (&content);
        lpw_frames_free (&f);
    }
    double spacing = (lpt_now_ms () - first_at) / 2;
    lpt_say ("3 controller_heartbeat messages, seq up to %lld, heartbeat_msec %lld, %.0f ms apart",
             (long long) last_seq, (long long) period, spacing);
    CHECK (period > 0 && spacing < 3.0 * period, "heartbeats %.0f ms apart, period %lld ms",
           spacing, (long long) period);
    zmq_close (sub);
    zmq_ctx_term (wire.ctx);
    (void) lpw_dealer; (void) lpw_build; (void) lpw_send; (void) lpw_recv_reply;
    printf ("controller_heartbeat: OK\n");
    return 0;
}
