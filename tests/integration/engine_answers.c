/*  engine_answers.c - an engine answers every request whose signed header
    it could read (issue 8, observation 3; observation 4 is engine_oversize)

    3. Signed tasks whose content the engine cannot decode (a typed-array
       ext referring to buffer frames the message lacks) each get one
       ProtocolError reply, on the task channel and on the mux; eight of
       them (more than the scheduler's per-engine hwm times the engines)
       do not stall the load-balanced view: an ordinary task after them
       completes.
    Before the fix the undecodable requests got no reply at all: the waits
    below then fail at their deadline.
*/
#include "lp_testlib.h"
#include "lp_rawwire.h"

#define S_BAD_TASKS  8

//  Content {code = "return 1", x = <f64 typed array in buffer 0, 1 piece>}
//  sent with no buffer frame at all.
static void
s_bad_content (msgpack_sbuffer *sb)
{
    msgpack_packer pk;
    msgpack_sbuffer_init (sb);
    msgpack_packer_init (&pk, sb, msgpack_sbuffer_write);
    msgpack_pack_map (&pk, 2);
    lpw_pack_str (&pk, "code");
    lpw_pack_str (&pk, "return 1");
    lpw_pack_str (&pk, "x");
    uint8_t ext[16] = { 1, 0, 0, 0,  0, 0, 0, 0,  0, 0, 0, 1,  0, 0, 0, 0 };
    msgpack_pack_ext (&pk, 16, 1);
    msgpack_pack_ext_body (&pk, ext, 16);
}

//  lpw_recv_reply, plus the reply metadata's ename (protocol.md: error
//  replies carry it for forwarders) into meta_ename.
static bool
s_recv_reply (const lpw_t *wire, void *sock, lpw_reply_t *reply, char meta_ename[64],
              int timeout_ms)
{
    zmq_pollitem_t item = { sock, 0, ZMQ_POLLIN, 0 };
    if (zmq_poll (&item, 1, timeout_ms) <= 0)
        return false;
    lpw_frames_t f = { 0 };
    int more = 1;
    while (more) {
        zmq_msg_t msg;
        zmq_msg_init (&msg);
        CHECK (zmq_msg_recv (&msg, sock, 0) >= 0, "zmq_msg_recv: %s", zmq_strerror (zmq_errno ()));
        if (f.nframes < LPW_MAXFRAMES)
            lpw_frames_add (&f, zmq_msg_data (&msg), zmq_msg_size (&msg));
        more = zmq_msg_more (&msg);
        zmq_msg_close (&msg);
    }
    int d = 0;
    while (d < f.nframes && !(f.size[d] == 7 && memcmp (f.data[d], "<LPMSG>", 7) == 0))
        d++;
    CHECK (d + 6 <= f.nframes, "malformed reply (%d frames)", f.nframes);
    char sig[65];
    lpw_sign (wire, &f, d + 2, sig);
    CHECK (f.size[d + 1] == 64 && memcmp (f.data[d + 1], sig, 64) == 0,
           "reply signature does not verify");
    msgpack_unpacked part[4];
    for (int i = 0; i < 4; i++) {
        msgpack_unpacked_init (&part[i]);
        size_t off = 0;
        CHECK (msgpack_unpack_next (&part[i], (const char *) f.data[d + 2 + i], f.size[d + 2 + i],
                                    &off) == MSGPACK_UNPACK_SUCCESS, "reply frame %d does not decode", i);
    }
    memset (reply, 0, sizeof *reply);
    lpw_copy_str (lpw_get (&part[1].data, "msg_id"), reply->parent_id, sizeof reply->parent_id);
    lpw_copy_str (lpw_get (&part[0].data, "msg_type"), reply->msg_type, sizeof reply->msg_type);
    lpw_copy_str (lpw_get (&part[3].data, "status"), reply->status, sizeof reply->status);
    lpw_copy_str (lpw_get (&part[3].data, "ename"), reply->ename, sizeof reply->ename);
    lpw_copy_str (lpw_get (&part[3].data, "evalue"), reply->evalue, sizeof reply->evalue);
    lpw_copy_str (lpw_get (&part[2].data, "ename"), meta_ename, 64);
    const msgpack_object *e = lpw_get (&part[2].data, "engine");
    reply->meta_engine = e && e->type == MSGPACK_OBJECT_POSITIVE_INTEGER ? (int64_t) e->via.u64 : -1;
    for (int i = 0; i < 4; i++)
        msgpack_unpacked_destroy (&part[i]);
    lpw_frames_free (&f);
    return true;
}

static void
s_pack_targets (msgpack_packer *pk, void *arg)
{
    lpw_pack_str (pk, "targets");
    msgpack_pack_array (pk, 1);
    msgpack_pack_int (pk, *(int *) arg);
}

//  Sends n undecodable requests of type on sock and expects one
//  ProtocolError reply to each, with the ename in its metadata too.
static void
s_expect_protocol_errors (lpw_t *wire, void *sock, int n, int *target, const char *channel,
                          const char *type)
{
    char ids[S_BAD_TASKS][33];
    msgpack_sbuffer sb;
    s_bad_content (&sb);
    for (int i = 0; i < n; i++) {
        lpw_frames_t f = { 0 };
        lpw_build (wire, &f, ids[i], type, target? 1: 0,
                   target? s_pack_targets: NULL, target, sb.data, sb.size, 0, NULL, NULL);
        CHECK (lpw_send (sock, &f, 0), "cannot send on %s", channel);
        lpw_frames_free (&f);
    }
    msgpack_sbuffer_destroy (&sb);
    bool seen[S_BAD_TASKS] = { false };
    double t0 = lpt_now_ms ();
    for (int got = 0; got < n; ) {
        int left = LPT_DEADLINE_MS - (int) (lpt_now_ms () - t0);
        lpw_reply_t reply;
        char meta_ename[64];
        CHECK (left > 0 && s_recv_reply (wire, sock, &reply, meta_ename, left),
               "%s: only %d of %d undecodable requests were answered within %d ms "
               "(the engine must answer a request whose signed header it read)",
               channel, got, n, LPT_DEADLINE_MS);
        int which = -1;
        for (int i = 0; i < n; i++)
            if (strcmp (reply.parent_id, ids[i]) == 0)
                which = i;
        CHECK (which >= 0, "%s: reply to an unknown msg_id '%s'", channel, reply.parent_id);
        CHECK (!seen[which], "%s: two replies to %s", channel, ids[which]);
        seen[which] = true;
        CHECK (strcmp (reply.status, "error") == 0 && strcmp (reply.ename, "ProtocolError") == 0,
               "%s: undecodable request answered %s %s: %s, expected a ProtocolError",
               channel, reply.status, reply.ename, reply.evalue);
        CHECK (reply.meta_engine >= 0, "%s: ProtocolError reply without metadata engine", channel);
        CHECK (strcmp (meta_ename, "ProtocolError") == 0,
               "%s: error reply metadata ename '%s', expected ProtocolError", channel, meta_ename);
        if (got == 0)
            lpt_say ("%s: undecodable request -> %s: %s", channel, reply.ename, reply.evalue);
        got++;
    }
}

int
main (int argc, char **argv)
{
    printf ("engine_answers:\n");
    lp_client_t *client = lpt_connect (argc, argv);
    int ids[64];
    int n = lp_client_ids (client, ids, 64);
    CHECK (n >= 1, "no engines");

    //  Observation 3: undecodable tasks and direct requests
    lpw_t wire = { 0 };
    char *task_ep = lpw_open (&wire, argv[1], "task");
    char *mux_ep = lpw_open (&wire, argv[1], "mux");
    void *task = lpw_dealer (&wire, task_ep);
    void *mux = lpw_dealer (&wire, mux_ep);
    char *control_ep = lpw_open (&wire, argv[1], "control");
    void *control = lpw_dealer (&wire, control_ep);
    s_expect_protocol_errors (&wire, task, S_BAD_TASKS, NULL, "task channel", "execute_request");
    s_expect_protocol_errors (&wire, mux, 2, &ids[0], "mux", "execute_request");
    s_expect_protocol_errors (&wire, control, 1, &ids[0], "control", "interrupt_request");

    lp_view_t *lb = lp_client_balanced (client);
    CHECK (lb, "no load-balanced view: %s", lp_client_error (client));
    for (int i = 0; i < 2 * n; i++) {
        lp_result_t *r = lp_view_execute (lb, "return 40 + 2");
        LPT_WAIT_OK (r, "a task after the undecodable ones");
        LPT_EXPECT_INT (r, 0, 42, "a task after the undecodable ones");
        lp_result_destroy (&r);
    }
    lpt_say ("load-balanced view still serves after %d undecodable tasks", S_BAD_TASKS);
    lp_view_destroy (&lb);

    (void) lpw_recv_reply;
    zmq_close (control);
    free (control_ep);
    zmq_close (task);
    zmq_close (mux);
    zmq_ctx_term (wire.ctx);
    free (task_ep);
    free (mux_ep);
    lp_client_destroy (&client);
    printf ("engine_answers: OK\n");
    return 0;
}
