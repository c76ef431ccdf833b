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
    lpw_pack_typed_ref (&pk, 1, 0, 1);
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
        if (target)
            lpw_build_to (wire, &f, ids[i], type, *target, sb.data, sb.size, 0, NULL, NULL);
        else
            lpw_build (wire, &f, ids[i], type, 0, NULL, NULL, sb.data, sb.size, 0, NULL, NULL);
        CHECK (lpw_send (sock, &f, 0), "cannot send on %s", channel);
        lpw_frames_free (&f);
    }
    msgpack_sbuffer_destroy (&sb);
    bool seen[S_BAD_TASKS] = { false };
    double t0 = lpt_now_ms ();
    for (int got = 0; got < n; ) {
        int left = LPT_DEADLINE_MS - (int) (lpt_now_ms () - t0);
        lpw_reply_t reply;
        CHECK (left > 0 && lpw_recv_reply (wire, sock, &reply, left),
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
        CHECK (strcmp (reply.meta_ename, "ProtocolError") == 0,
               "%s: error reply metadata ename '%s', expected ProtocolError", channel,
               reply.meta_ename);
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
