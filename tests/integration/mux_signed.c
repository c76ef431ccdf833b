/*  mux_signed.c - bad, replayed and hostile signed requests through the mux

    Speaks the wire protocol directly (raw libzmq DEALER to the client mux,
    msgpack-c, keyed BLAKE2b from libsodium over length-prefixed frames, as
    docs/protocol.md says), so it also checks that a client written from
    the spec alone works. A valid request is answered once; its replay,
    a bad signature, tampered frames and hostile but correctly signed
    msgpack are never executed; requests lacking fields get ProtocolError,
    an unknown target EngineError; and the engine keeps serving.

    Each hostile message is followed by a probe request to the same engine;
    engines answer in order, so every reply the hostile message could have
    caused arrives before the probe's reply: no sleeping, no guessing.
*/
#include "lp_testlib.h"
#include "lp_rawwire.h"

static lpw_t wire;
static void *mux;
static int engine;

typedef lpw_frames_t frames_t;
typedef lpw_reply_t reply_t;

//  Builds a signed request; target < -1000 omits header.targets.
static void
s_build (frames_t *f, char msg_id[33], const char *type, int target,
         const void *content, size_t content_len, int nbuffers, const void **buffers,
         const size_t *buffer_len)
{
    if (target < -1000)
        lpw_build (&wire, f, msg_id, type, 0, NULL, NULL, content, content_len,
                   nbuffers, buffers, buffer_len);
    else
        lpw_build_to (&wire, f, msg_id, type, target, content, content_len,
                      nbuffers, buffers, buffer_len);
}

//  An execute_request {code = code} to target.
static void
s_build_code (frames_t *f, char msg_id[33], int target, const char *code)
{
    msgpack_sbuffer sb;
    lpw_code_content (&sb, code);
    s_build (f, msg_id, "execute_request", target, sb.data, sb.size, 0, NULL, NULL);
    msgpack_sbuffer_destroy (&sb);
}

static void
s_send (const frames_t *f)
{
    CHECK (lpw_send (mux, f, 0), "zmq_send: %s", zmq_strerror (zmq_errno ()));
}

static bool
s_recv_reply (reply_t *reply, int timeout_ms)
{
    return lpw_recv_reply (&wire, mux, reply, timeout_ms);
}

//  push_request content {ns = {counter = <f64 typed array in buffer
//  frames 0 .. pieces-1>}} into sb (the caller destroys it).
static void
s_push_typed_content (msgpack_sbuffer *sb, uint32_t pieces)
{
    msgpack_packer pk;
    msgpack_sbuffer_init (sb);
    msgpack_packer_init (&pk, sb, msgpack_sbuffer_write);
    msgpack_pack_map (&pk, 1);
    lpw_pack_str (&pk, "ns");
    msgpack_pack_map (&pk, 1);
    lpw_pack_str (&pk, "counter");
    lpw_pack_typed_ref (&pk, 1, 0, pieces);
}

//  Sends "return counter" and reads replies until the probe's own reply.
//  Replies to others are stored (up to max) for the caller to judge.
static int
s_probe (reply_t *others, int max, int64_t expect_counter, const char *after)
{
    frames_t f = { 0 };
    char id[33];
    s_build_code (&f, id, engine, "return counter");
    s_send (&f);
    lpw_frames_free (&f);
    int count = 0;
    double t0 = lpt_now_ms ();
    while (true) {
        int left = LPT_DEADLINE_MS - (int) (lpt_now_ms () - t0);
        reply_t reply;
        CHECK (left > 0 && s_recv_reply (&reply, left), "after %s: no reply to the probe within %d ms "
               "(engine or controller stuck?)", after, LPT_DEADLINE_MS);
        if (strcmp (reply.parent_id, id) == 0) {
            CHECK (strcmp (reply.status, "ok") == 0, "after %s: probe failed: %s %s", after,
                   reply.ename, reply.evalue);
            CHECK (reply.has_value && reply.value == expect_counter,
                   "after %s: counter is %lld, expected %lld (a rejected request was executed)",
                   after, reply.has_value ? (long long) reply.value : -1LL, (long long) expect_counter);
            return count;
        }
        if (count < max)
            others[count] = reply;
        count++;
    }
}

//  Sends f (consumed), probes, and fails if any reply to it says "ok".
//  Returns the number of error replies to it.
static int
s_must_not_run (frames_t *f, const char *msg_id, const char *what, reply_t *first_error)
{
    s_send (f);
    lpw_frames_free (f);
    reply_t others[8];
    int n = s_probe (others, 8, 1, what);
    int errors = 0;
    for (int i = 0; i < n && i < 8; i++) {
        CHECK (strcmp (others[i].parent_id, msg_id) == 0 || others[i].parent_id[0] == 0,
               "after %s: stray reply to msg_id '%s'", what, others[i].parent_id);
        CHECK (strcmp (others[i].status, "ok") != 0, "%s was accepted and answered ok", what);
        if (errors == 0 && first_error)
            *first_error = others[i];
        errors++;
    }
    CHECK (n <= 1, "%s got %d replies", what, n);
    if (errors)
        lpt_say ("%-40s -> error reply %s: %s", what, others[0].ename, others[0].evalue);
    else
        lpt_say ("%-40s -> dropped", what);
    return errors;
}

int
main (int argc, char **argv)
{
    printf ("mux_signed:\n");
    lp_client_t *client = lpt_connect (argc, argv);
    int ids[64];
    int n = lp_client_ids (client, ids, 64);
    CHECK (n >= 1, "no engines");
    engine = ids[0];

    char *endpoint = lpw_open (&wire, argv[1], "mux");
    CHECK (strcmp (wire.scheme, "blake2b-256") == 0, "signature_scheme is '%s'",
           wire.scheme[0] ? wire.scheme : "(none)");
    mux = lpw_dealer (&wire, endpoint);
    free (endpoint);

    //  1. a valid request, signed as the spec says, is answered once
    msgpack_sbuffer sb;
    frames_t valid = { 0 };
    char valid_id[33];
    s_build_code (&valid, valid_id, engine, "counter = (counter or 0) + 1 return counter");
    s_send (&valid);
    reply_t reply;
    CHECK (s_recv_reply (&reply, LPT_DEADLINE_MS), "no reply to a valid hand-made request within %d ms",
           LPT_DEADLINE_MS);
    CHECK (strcmp (reply.parent_id, valid_id) == 0, "reply's parent msg_id '%s', expected '%s'",
           reply.parent_id, valid_id);
    CHECK (strcmp (reply.msg_type, "execute_reply") == 0, "reply msg_type '%s'", reply.msg_type);
    CHECK (strcmp (reply.status, "ok") == 0, "valid request failed: %s: %s", reply.ename, reply.evalue);
    CHECK (reply.has_value && reply.value == 1, "valid request returned %lld, expected 1",
           (long long) reply.value);
    CHECK (reply.meta_engine == engine, "reply metadata engine %lld, expected %d",
           (long long) reply.meta_engine, engine);
    lpt_say ("hand-made signed execute_request answered: ok");

    //  2. the same frames again: a replay
    s_must_not_run (&valid, valid_id, "replay of the valid request", NULL);

    //  3. bad signature (one hex digit changed)
    frames_t f = { 0 };
    char id[33];
    s_build_code (&f, id, engine, "counter = 100");
    f.data[1][10] = f.data[1][10] == '0' ? '1' : '0';
    s_must_not_run (&f, id, "bad signature", NULL);

    //  4. tampered content after signing
    s_build_code (&f, id, engine, "counter = 100");
    f.data[5][f.size[5] - 1] = '9';             //  "counter = 109"
    s_must_not_run (&f, id, "content changed after signing", NULL);

    //  5. signature in upper case / missing signature frame
    s_build_code (&f, id, engine, "counter = 100");
    free (f.data[1]);
    f.data[1] = malloc (1);
    f.size[1] = 0;
    s_must_not_run (&f, id, "empty signature", NULL);

    //  6. correctly signed hostile msgpack
    static const uint8_t huge_map[] = { 0xdf, 0xff, 0xff, 0xff, 0xff };
    s_build (&f, id, "execute_request", engine, huge_map, sizeof huge_map, 0, NULL, NULL);
    s_must_not_run (&f, id, "signed content map32 of 4 G entries", NULL);

    static const uint8_t huge_str[] = { 0x81, 0xa4, 'c', 'o', 'd', 'e', 0xdb, 0x7f, 0xff, 0xff, 0xff, 'x' };
    s_build (&f, id, "execute_request", engine, huge_str, sizeof huge_str, 0, NULL, NULL);
    s_must_not_run (&f, id, "signed code str32 of 2 GB", NULL);

    uint8_t deep[200];
    size_t dl = 0;
    deep[dl++] = 0x82;
    deep[dl++] = 0xa4; memcpy (deep + dl, "code", 4); dl += 4;
    deep[dl++] = 0xa8; memcpy (deep + dl, "counter=", 8); dl += 8;   //  not executed either way
    deep[dl++] = 0xa4; memcpy (deep + dl, "deep", 4); dl += 4;
    for (int i = 0; i < 60; i++)
        deep[dl++] = 0x91;
    deep[dl++] = 0xc0;
    s_build (&f, id, "execute_request", engine, deep, dl, 0, NULL, NULL);
    s_must_not_run (&f, id, "signed content nested 60 deep", NULL);

    lpw_code_content (&sb, "counter = 100");
    msgpack_sbuffer_write (&sb, "\x01\x02", 2);             //  bytes after the object
    s_build (&f, id, "execute_request", engine, sb.data, sb.size, 0, NULL, NULL);
    msgpack_sbuffer_destroy (&sb);
    s_must_not_run (&f, id, "signed content with trailing bytes", NULL);

    //  a typed array whose buffer frames are missing / have a remainder
    {
        const void *bufs[] = { "1234567" };
        size_t blen[] = { 7 };
        s_push_typed_content (&sb, 5);
        s_build (&f, id, "push_request", engine, sb.data, sb.size, 1, bufs, blen);
        s_must_not_run (&f, id, "push of ext referring to missing buffers", NULL);
        s_build (&f, id, "push_request", engine, sb.data, sb.size, 0, NULL, NULL);
        s_must_not_run (&f, id, "push of ext with no buffer frames", NULL);
        msgpack_sbuffer_destroy (&sb);
        s_push_typed_content (&sb, 1);
        s_build (&f, id, "push_request", engine, sb.data, sb.size, 1, bufs, blen);
        s_must_not_run (&f, id, "push of f64 array of 7 bytes", NULL);
        msgpack_sbuffer_destroy (&sb);
    }

    //  7. signed requests lacking a field / with a wrong type: ProtocolError
    reply_t err;
    static const uint8_t no_code[] = { 0x81, 0xa3, 'c', 'o', 'x', 0x01 };
    s_build (&f, id, "execute_request", engine, no_code, sizeof no_code, 0, NULL, NULL);
    CHECK (s_must_not_run (&f, id, "execute_request without code", &err) == 1,
           "execute_request without code got no error reply (protocol: requests lacking a field "
           "get an error reply)");
    CHECK (strcmp (err.ename, "ProtocolError") == 0, "missing code: ename '%s', expected ProtocolError",
           err.ename);
    static const uint8_t int_code[] = { 0x81, 0xa4, 'c', 'o', 'd', 'e', 0x2a };
    s_build (&f, id, "execute_request", engine, int_code, sizeof int_code, 0, NULL, NULL);
    CHECK (s_must_not_run (&f, id, "execute_request with code = 42", &err) == 1,
           "execute_request with an integer code got no error reply");
    CHECK (strcmp (err.ename, "ProtocolError") == 0, "integer code: ename '%s', expected ProtocolError",
           err.ename);

    //  8. an unknown target: EngineError from the controller at once
    s_build_code (&f, id, 999, "counter = 100");
    CHECK (s_must_not_run (&f, id, "execute_request to engine 999", &err) == 1,
           "a request to an unregistered engine got no error reply");
    CHECK (strcmp (err.ename, "EngineError") == 0, "unknown target: ename '%s', expected EngineError",
           err.ename);

    //  9. no targets, unknown msg_type
    lpw_code_content (&sb, "counter = 100");
    s_build (&f, id, "execute_request", -2000, sb.data, sb.size, 0, NULL, NULL);
    s_must_not_run (&f, id, "execute_request without targets", NULL);
    s_build (&f, id, "frobnicate_request", engine, sb.data, sb.size, 0, NULL, NULL);
    s_must_not_run (&f, id, "unknown msg_type", NULL);
    msgpack_sbuffer_destroy (&sb);

    //  the engine answers through the library too, with state intact
    lp_view_t *view = lp_client_view (client, &engine, 1);
    lp_result_t *r = lpt_exec (view, "counter");
    LPT_EXPECT_INT (r, 0, 1, "counter through the library");
    lp_result_destroy (&r);
    lp_view_destroy (&view);
    CHECK (lp_client_ids (client, ids, 64) == n, "engine count changed");

    zmq_close (mux);
    zmq_ctx_term (wire.ctx);
    lp_client_destroy (&client);
    printf ("mux_signed: OK\n");
    return 0;
}
