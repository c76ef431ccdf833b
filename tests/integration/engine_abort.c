/*  engine_abort.c - abort by msg_id on the control channel reaches a
    direct request queued on an engine (issue 8, observation 6, engine part)

    Engine E runs a request that sleeps; a second direct request to E waits
    behind it. An abort_request on the control channel (header.targets =
    [E], content {msg_ids: [running, queued]}), written here from
    docs/protocol.md, is answered by E's heartbeat thread while it is busy:
    aborted = [queued], not_aborted = [running]. The running request then
    finishes normally; the queued one gets an Aborted error reply (normal
    reply type, metadata ename Aborted) and never runs. An id the engine
    has already completed is not_aborted. Before the fix the engine knew
    no abort_request (ProtocolError) and the queued request ran.
*/
#include "lp_testlib.h"
#include "lp_rawwire.h"

typedef struct {
    char status[16];
    char ename[64];
    char evalue[256];
    char msg_type[64];
    int in_aborted;             //  how often the id is in aborted
    int in_not_aborted;         //  ... in not_aborted
    int other_aborted;          //  other ids in aborted / not_aborted
} s_abort_reply_t;

static int
s_count (const msgpack_object *array, const char *id, int *others)
{
    int n = 0;
    if (!array || array->type != MSGPACK_OBJECT_ARRAY)
        return -1;
    for (uint32_t i = 0; i < array->via.array.size; i++) {
        const msgpack_object *o = &array->via.array.ptr[i];
        if (o->type == MSGPACK_OBJECT_STR && o->via.str.size == strlen (id)
            && memcmp (o->via.str.ptr, id, o->via.str.size) == 0)
            n++;
        else
            (*others)++;
    }
    return n;
}

//  Receives the abort_reply to parent_id; counts where id is listed.
static void
s_recv_abort_reply (lpw_t *wire, void *sock, const char *parent_id, const char *id,
                    const char *other, s_abort_reply_t *out)
{
    lpw_msg_t m;
    CHECK (lpw_recv_msg (wire, sock, &m, LPT_DEADLINE_MS), "no abort_reply within %d ms",
           LPT_DEADLINE_MS);
    char parent[64];
    lpw_copy_str (lpw_get (m.parent, "msg_id"), parent, sizeof parent);
    CHECK (strcmp (parent, parent_id) == 0, "abort_reply to '%s', expected '%s'", parent, parent_id);
    memset (out, 0, sizeof *out);
    lpw_copy_str (lpw_get (m.header, "msg_type"), out->msg_type, sizeof out->msg_type);
    const msgpack_object *content = m.content;
    lpw_copy_str (lpw_get (content, "status"), out->status, sizeof out->status);
    lpw_copy_str (lpw_get (content, "ename"), out->ename, sizeof out->ename);
    lpw_copy_str (lpw_get (content, "evalue"), out->evalue, sizeof out->evalue);
    int others = 0;
    out->in_aborted = s_count (lpw_get (content, "aborted"), id, &others);
    out->in_not_aborted = s_count (lpw_get (content, "not_aborted"), other, &others);
    out->other_aborted = others;
    lpw_msg_free (&m);
}

static int s_target;

//  Sends abort_request {msg_ids: [a, b]} to s_target; returns its msg_id in out.
static void
s_send_abort (lpw_t *wire, void *control, const char *a, const char *b, char out[33])
{
    msgpack_sbuffer sb;
    msgpack_packer pk;
    msgpack_sbuffer_init (&sb);
    msgpack_packer_init (&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_map (&pk, 1);
    lpw_pack_str (&pk, "msg_ids");
    msgpack_pack_array (&pk, 2);
    lpw_pack_str (&pk, a);
    lpw_pack_str (&pk, b);
    lpw_frames_t f = { 0 };
    lpw_build_to (wire, &f, out, "abort_request", s_target, sb.data, sb.size, 0, NULL, NULL);
    msgpack_sbuffer_destroy (&sb);
    CHECK (lpw_send (control, &f, 0), "cannot send the abort_request");
    lpw_frames_free (&f);
}

int
main (int argc, char **argv)
{
    printf ("engine_abort:\n");
    lp_client_t *client = lpt_connect (argc, argv);
    int ids[64];
    int n = lp_client_ids (client, ids, 64);
    CHECK (n >= 1, "no engines");
    s_target = ids[n - 1];
    lp_view_t *view = lp_client_view (client, &s_target, 1);
    CHECK (view, "no view: %s", lp_client_error (client));

    lpw_t wire = { 0 };
    char *endpoint = lpw_open (&wire, argv[1], "control");
    void *control = lpw_dealer (&wire, endpoint);

    lp_result_t *running = lp_view_execute (view, "lp.sleep (4) return 1");
    CHECK (running, "execute: %s", lp_client_error (client));
    lpt_wait_busy (client, s_target);
    lp_result_t *queued = lp_view_execute (view, "ran_after_abort = true return 2");
    CHECK (queued, "execute: %s", lp_client_error (client));
    char running_id[64], queued_id[64];
    snprintf (running_id, sizeof running_id, "%s", lp_result_msg_id (running, 0));
    snprintf (queued_id, sizeof queued_id, "%s", lp_result_msg_id (queued, 0));

    char abort_id[33];
    s_send_abort (&wire, control, queued_id, running_id, abort_id);
    s_abort_reply_t reply;
    s_recv_abort_reply (&wire, control, abort_id, queued_id, running_id, &reply);
    CHECK (strcmp (reply.msg_type, "abort_reply") == 0 && strcmp (reply.status, "ok") == 0,
           "abort_request answered %s %s %s: %s, expected abort_reply ok", reply.msg_type,
           reply.status, reply.ename, reply.evalue);
    CHECK (!lp_result_ready (running), "the sleeping request ended before the abort was answered");
    CHECK (reply.in_aborted == 1, "the queued request is listed %d times in aborted", reply.in_aborted);
    CHECK (reply.in_not_aborted == 1, "the running request is listed %d times in not_aborted",
           reply.in_not_aborted);
    CHECK (reply.other_aborted == 0, "abort_reply lists %d other ids", reply.other_aborted);
    lpt_say ("abort_reply: aborted = [queued], not_aborted = [running]");

    LPT_WAIT_OK (running, "the running request (not aborted)");
    LPT_EXPECT_INT (running, 0, 1, "the running request");
    LPT_WAIT (queued, "the aborted request");
    const char *ename = lp_result_ename (queued, 0);
    const char *evalue = lp_result_evalue (queued, 0);
    CHECK (ename && strcmp (ename, "Aborted") == 0, "the aborted request ended with %s: %s",
           ename? ename: "success", evalue? evalue: "");
    CHECK (evalue && strstr (evalue, "aborted before it started"), "Aborted evalue '%s'",
           evalue? evalue: "");
    lpt_say ("queued request -> %s: %s", ename, evalue);

    lp_result_t *r = lp_view_pull (view, "ran_after_abort");
    LPT_WAIT_OK (r, "pull ran_after_abort");
    const lp_value_t *v = lp_result_value (r, 0);
    CHECK (v && lp_value_type (v) == LP_NIL, "the aborted request ran: ran_after_abort = %s",
           lpt_show (v));
    lp_result_destroy (&r);

    //  Completed requests cannot be aborted
    s_send_abort (&wire, control, running_id, queued_id, abort_id);
    s_recv_abort_reply (&wire, control, abort_id, "", running_id, &reply);
    CHECK (strcmp (reply.status, "ok") == 0, "second abort: %s %s", reply.status, reply.evalue);
    CHECK (reply.in_not_aborted == 1, "a completed request is listed %d times in not_aborted",
           reply.in_not_aborted);
    lpt_say ("abort of completed requests: not_aborted");

    r = lpt_exec (view, "return 7");
    LPT_EXPECT_INT (r, 0, 7, "a request after the aborts");
    lp_result_destroy (&r);

    lp_result_destroy (&running);
    lp_result_destroy (&queued);
    lp_view_destroy (&view);
    zmq_close (control);
    zmq_ctx_term (wire.ctx);
    free (endpoint);
    lp_client_destroy (&client);
    printf ("engine_abort: OK\n");
    return 0;
}
