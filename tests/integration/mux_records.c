/*  mux_records.c - the controller matches an engine's replies by parent
    msg_id, not by queue position (issue 8, observation 1)

    A fake engine, written with raw libzmq from docs/protocol.md, registers
    (registration, hellos on mux/control/task, heartbeat echo in a thread)
    and then misbehaves on purpose: of three direct requests A, B, C it
    answers C first, then sends a reply to a msg_id nobody asked for, then
    answers A, and drops B. A raw client checks that

      - C's and A's replies reach the requests they answer (values 3, 1);
      - the reply to the unknown msg_id is dropped, never passed on;
      - status shows exactly one request outstanding on the fake engine;
      - when the fake engine leaves, exactly B gets an EngineError (not an
        already answered request), and the queue is empty again.

    Before the fix the controller popped the oldest queued request for any
    reply: the stray reply was forwarded, and the engine's departure
    failed nothing (or the wrong request) while B waited forever.
*/
#include "lp_testlib.h"
#include "lp_rawwire.h"
#include <pthread.h>
#include <libgen.h>
#include <unistd.h>

static lpw_t wire;                      //  key, session, context
static char uuid [33];                  //  the fake engine's identity
static volatile int hb_stop;            //  heartbeat thread: stop
static char hb_ping_ep [256], hb_pong_ep [256];

//  String field key of the msgpack map in frame index of f.
static void
s_field (const lpw_frames_t *f, int index, const char *key, char *out, size_t size)
{
    msgpack_unpacked u;
    msgpack_unpacked_init (&u);
    size_t off = 0;
    CHECK (msgpack_unpack_next (&u, (const char *) f->data[index], f->size[index], &off)
           == MSGPACK_UNPACK_SUCCESS, "frame %d does not decode", index);
    lpw_copy_str (lpw_get (&u.data, key), out, size);
    msgpack_unpacked_destroy (&u);
}

static int64_t
s_int_field (const lpw_frames_t *f, int index, const char *key)
{
    msgpack_unpacked u;
    msgpack_unpacked_init (&u);
    size_t off = 0;
    CHECK (msgpack_unpack_next (&u, (const char *) f->data[index], f->size[index], &off)
           == MSGPACK_UNPACK_SUCCESS, "frame %d does not decode", index);
    const msgpack_object *o = lpw_get (&u.data, key);
    int64_t value = o && o->type == MSGPACK_OBJECT_POSITIVE_INTEGER ? (int64_t) o->via.u64 : -1;
    msgpack_unpacked_destroy (&u);
    return value;
}

//  A DEALER with the fake engine's identity.
static void *
s_engine_socket (int type, const char *endpoint)
{
    void *sock = zmq_socket (wire.ctx, type);
    CHECK (sock, "zmq_socket: %s", zmq_strerror (zmq_errno ()));
    int linger = 0;
    zmq_setsockopt (sock, ZMQ_LINGER, &linger, sizeof linger);
    if (type == ZMQ_DEALER)
        zmq_setsockopt (sock, ZMQ_ROUTING_ID, uuid, 32);
    CHECK (zmq_connect (sock, endpoint) == 0, "connect %s", endpoint);
    return sock;
}

//  Echoes the controller's pings, as an engine's heart thread does.
static void *
s_heart (void *arg)
{
    (void) arg;
    void *sub = zmq_socket (wire.ctx, ZMQ_SUB);
    zmq_setsockopt (sub, ZMQ_SUBSCRIBE, "", 0);
    int linger = 0;
    zmq_setsockopt (sub, ZMQ_LINGER, &linger, sizeof linger);
    zmq_connect (sub, hb_ping_ep);
    void *pong = s_engine_socket (ZMQ_DEALER, hb_pong_ep);
    while (!hb_stop) {
        zmq_pollitem_t item = { sub, 0, ZMQ_POLLIN, 0 };
        if (zmq_poll (&item, 1, 100) > 0) {
            char ping[64];
            int n = zmq_recv (sub, ping, sizeof ping, 0);
            if (n == 12)
                zmq_send (pong, ping, 12, 0);
        }
    }
    zmq_close (sub);
    zmq_close (pong);
    return NULL;
}

//  Packs a map of string keys from a printf-free spec: used for small contents.
static void
s_engine_send (void *sock, const char *type, const void *parent, size_t parent_len,
               const msgpack_sbuffer *content, const void *routing, size_t routing_len,
               int engine_id)
{
    lpw_frames_t f = { 0 };
    if (routing)
        lpw_frames_add (&f, routing, routing_len);
    int d = f.nframes;
    lpw_frames_add (&f, "<LPMSG>", 7);
    lpw_frames_add (&f, "", 0);
    char id[33];
    lpw_random_hex (id, 32);
    msgpack_sbuffer sb;
    msgpack_sbuffer_init (&sb);
    lpw_pack_header (&wire, &sb, id, type, 0, NULL, NULL);
    lpw_frames_add (&f, sb.data, sb.size);
    msgpack_sbuffer_destroy (&sb);
    const uint8_t empty = 0x80;
    lpw_frames_add (&f, parent ? parent : &empty, parent ? parent_len : 1);
    msgpack_sbuffer_init (&sb);
    msgpack_packer pk;
    msgpack_packer_init (&pk, &sb, msgpack_sbuffer_write);
    if (engine_id >= 0) {
        msgpack_pack_map (&pk, 2);
        lpw_pack_str (&pk, "engine"); msgpack_pack_int (&pk, engine_id);
        lpw_pack_str (&pk, "status"); lpw_pack_str (&pk, "ok");
    }
    else
        msgpack_pack_map (&pk, 0);
    lpw_frames_add (&f, sb.data, sb.size);
    msgpack_sbuffer_destroy (&sb);
    lpw_frames_add (&f, content->data, content->size);
    lpw_resign (&wire, &f, d);
    lpw_send (sock, &f, 0);
    lpw_frames_free (&f);
}

//  execute_reply content {status "ok", values [value]}
static void
s_values_content (msgpack_sbuffer *sb, int value)
{
    msgpack_sbuffer_init (sb);
    msgpack_packer pk;
    msgpack_packer_init (&pk, sb, msgpack_sbuffer_write);
    msgpack_pack_map (&pk, 2);
    lpw_pack_str (&pk, "status"); lpw_pack_str (&pk, "ok");
    lpw_pack_str (&pk, "values"); msgpack_pack_array (&pk, 1); msgpack_pack_int (&pk, value);
}

//  {"id": id}
static void
s_id_content (msgpack_sbuffer *sb, int id)
{
    msgpack_sbuffer_init (sb);
    msgpack_packer pk;
    msgpack_packer_init (&pk, sb, msgpack_sbuffer_write);
    msgpack_pack_map (&pk, 1);
    lpw_pack_str (&pk, "id"); msgpack_pack_int (&pk, id);
}

int
main (int argc, char **argv)
{
    printf ("mux_records:\n");
    lp_client_t *client = lpt_connect (argc, argv);

    //  The engine connection file sits next to the client's.
    char path[1024];
    snprintf (path, sizeof path, "%s", argv[1]);
    char engine_file[1100];
    snprintf (engine_file, sizeof engine_file, "%s/lp-engine.json", dirname (path));
    char *ep_reg = lpw_open (&wire, engine_file, "registration");
    char *ep_mux = lpw_open (&wire, engine_file, "mux");
    char *ep_control = lpw_open (&wire, engine_file, "control");
    char *ep_task = lpw_open (&wire, engine_file, "task");
    char *ep = lpw_open (&wire, engine_file, "hb_ping");
    snprintf (hb_ping_ep, sizeof hb_ping_ep, "%s", ep);
    free (ep);
    ep = lpw_open (&wire, engine_file, "hb_pong");
    snprintf (hb_pong_ep, sizeof hb_pong_ep, "%s", ep);
    free (ep);
    lpw_random_hex (uuid, 32);

    //  --- the fake engine registers
    void *reg = s_engine_socket (ZMQ_DEALER, ep_reg);
    void *mux = s_engine_socket (ZMQ_DEALER, ep_mux);
    void *control = s_engine_socket (ZMQ_DEALER, ep_control);
    void *task = s_engine_socket (ZMQ_DEALER, ep_task);
    pthread_t heart;
    CHECK (pthread_create (&heart, NULL, s_heart, NULL) == 0, "pthread_create");
    {
        msgpack_sbuffer sb;
        msgpack_sbuffer_init (&sb);
        msgpack_packer pk;
        msgpack_packer_init (&pk, &sb, msgpack_sbuffer_write);
        msgpack_pack_map (&pk, 7);
        lpw_pack_str (&pk, "uuid"); lpw_pack_str (&pk, uuid);
        lpw_pack_str (&pk, "id"); msgpack_pack_int (&pk, -1);
        lpw_pack_str (&pk, "host"); lpw_pack_str (&pk, "fake");
        lpw_pack_str (&pk, "pid"); msgpack_pack_int (&pk, 1);
        lpw_pack_str (&pk, "user"); lpw_pack_str (&pk, "tester");
        lpw_pack_str (&pk, "cwd"); lpw_pack_str (&pk, "/");
        lpw_pack_str (&pk, "lua_version"); lpw_pack_str (&pk, "Lua 5.4");
        s_engine_send (reg, "registration_request", NULL, 0, &sb, NULL, 0, -1);
        msgpack_sbuffer_destroy (&sb);
    }
    lpw_frames_t f = { 0 };
    CHECK (lpw_recv_frames (reg, &f, LPT_DEADLINE_MS), "no registration_reply");
    int d = lpw_delim (&f);
    int engine = (int) s_int_field (&f, d + 5, "id");
    CHECK (engine >= 0, "registration refused");
    lpw_frames_free (&f);
    msgpack_sbuffer hello;
    s_id_content (&hello, engine);
    s_engine_send (mux, "engine_hello", NULL, 0, &hello, NULL, 0, -1);
    s_engine_send (control, "engine_hello", NULL, 0, &hello, NULL, 0, -1);
    s_engine_send (task, "engine_hello", NULL, 0, &hello, NULL, 0, -1);
    msgpack_sbuffer_destroy (&hello);
    CHECK (lp_client_wait_for_engines (client, LPT_ENGINES + 1, LPT_DEADLINE_MS) == 0,
           "the fake engine did not become registered: %s", lp_client_error (client));
    lpt_say ("fake engine registered as engine %d", engine);

    //  --- a raw client sends A, B, C to it
    lpw_t cwire = { 0 };
    char *ep_client = lpw_open (&cwire, argv[1], "mux");
    void *csock = lpw_dealer (&cwire, ep_client);
    char ids[3][33];
    int64_t engine64 = engine;
    lpw_targets_t targ = { &engine64, 1, false };
    for (int i = 0; i < 3; i++) {
        msgpack_sbuffer sb;
        lpw_code_content (&sb, "return 0");
        lpw_frames_t req = { 0 };
        lpw_build_to (&cwire, &req, ids[i], "execute_request", engine, sb.data, sb.size,
                      0, NULL, NULL);
        msgpack_sbuffer_destroy (&sb);
        lpw_send (csock, &req, 0);
        lpw_frames_free (&req);
    }

    //  --- the fake engine receives them, in order
    lpw_frames_t got[3] = { { 0 } };
    for (int i = 0; i < 3; i++) {
        CHECK (lpw_recv_frames (mux, &got[i], LPT_DEADLINE_MS), "fake engine: request %d never arrived", i);
        int gd = lpw_delim (&got[i]);
        char id[64];
        s_field (&got[i], gd + 2, "msg_id", id, sizeof id);
        CHECK (strcmp (id, ids[i]) == 0, "fake engine got %s as request %d, expected %s", id, i, ids[i]);
    }
    //  C first, then a stray reply, then A; B is dropped.
    int order[2] = { 2, 0 };
    for (int k = 0; k < 2; k++) {
        if (k == 1) {
            //  A reply to a request nobody sent (a copied header, new msg_id).
            char stray[33];
            lpw_random_hex (stray, 32);
            msgpack_sbuffer ph;
            msgpack_sbuffer_init (&ph);
            lpw_pack_header (&cwire, &ph, stray, "execute_request", 1, lpw_pack_targets, &targ);
            msgpack_sbuffer content;
            s_values_content (&content, 99);
            int gd = lpw_delim (&got[0]);
            s_engine_send (mux, "execute_reply", ph.data, ph.size, &content,
                           gd > 0 ? got[0].data[0] : NULL, gd > 0 ? got[0].size[0] : 0, engine);
            msgpack_sbuffer_destroy (&ph);
            msgpack_sbuffer_destroy (&content);
        }
        int i = order[k];
        int gd = lpw_delim (&got[i]);
        msgpack_sbuffer content;
        s_values_content (&content, i + 1);
        s_engine_send (mux, "execute_reply", got[i].data[gd + 2], got[i].size[gd + 2], &content,
                       gd > 0 ? got[i].data[0] : NULL, gd > 0 ? got[i].size[0] : 0, engine);
        msgpack_sbuffer_destroy (&content);
    }

    //  --- the client gets C's and A's replies, nothing else
    for (int k = 0; k < 2; k++) {
        lpw_reply_t reply;
        CHECK (lpw_recv_reply (&cwire, csock, &reply, LPT_DEADLINE_MS), "reply %d never came", k);
        int i = order[k];
        CHECK (strcmp (reply.parent_id, ids[i]) == 0,
               "reply %d answers %s (value %lld), expected request %c %s (a stray reply was "
               "passed on, or replies are matched by position)", k, reply.parent_id,
               (long long) reply.value, 'A' + i, ids[i]);
        CHECK (strcmp (reply.status, "ok") == 0 && reply.has_value && reply.value == i + 1,
               "request %c got %s %s value %lld, expected %d", 'A' + i, reply.status, reply.ename,
               (long long) reply.value, i + 1);
    }
    lpt_say ("out-of-order replies reached their requests; the stray reply was dropped");
    int64_t queue = lpt_queue (client, engine);
    CHECK (queue == 1, "status shows queue %lld on the fake engine, expected 1 (request B)",
           (long long) queue);

    //  --- the fake engine leaves: B, and only B, fails
    msgpack_sbuffer bye;
    s_id_content (&bye, engine);
    s_engine_send (reg, "unregistration_request", NULL, 0, &bye, NULL, 0, -1);
    msgpack_sbuffer_destroy (&bye);
    lpw_reply_t reply;
    CHECK (lpw_recv_reply (&cwire, csock, &reply, LPT_DEADLINE_MS),
           "no error reply for the dropped request B within %d ms of its engine leaving",
           LPT_DEADLINE_MS);
    CHECK (strcmp (reply.parent_id, ids[1]) == 0,
           "the engine's departure failed %s, expected request B %s", reply.parent_id, ids[1]);
    CHECK (strcmp (reply.ename, "EngineError") == 0 && reply.meta_engine == engine,
           "B ended with ename '%s' engine %lld", reply.ename, (long long) reply.meta_engine);
    CHECK (!lpw_recv_reply (&cwire, csock, &reply, 500),
           "an extra reply after the engine left: %s for %s", reply.ename, reply.parent_id);
    lpt_say ("engine %d left: request B got EngineError (%s)", engine, reply.evalue);

    hb_stop = 1;
    pthread_join (heart, NULL);
    for (int i = 0; i < 3; i++)
        lpw_frames_free (&got[i]);
    zmq_close (reg);
    zmq_close (mux);
    zmq_close (control);
    zmq_close (task);
    zmq_close (csock);
    free (ep_reg); free (ep_mux); free (ep_control); free (ep_task); free (ep_client);
    zmq_ctx_term (wire.ctx);
    zmq_ctx_term (cwire.ctx);
    lp_client_destroy (&client);
    printf ("mux_records: OK\n");
    return 0;
}
