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
#include <jansson.h>
#include <msgpack.h>
#include <sodium.h>
#include <zmq.h>

#define MAXFRAMES 16

typedef struct {
    int nframes;
    size_t size[MAXFRAMES];
    uint8_t *data[MAXFRAMES];
} frames_t;

static uint8_t key[32];
static void *mux;
static int engine;
static char session[33];

static void
s_frames_free (frames_t *f)
{
    for (int i = 0; i < f->nframes; i++)
        free (f->data[i]);
    f->nframes = 0;
}

static void
s_frames_add (frames_t *f, const void *data, size_t size)
{
    CHECK (f->nframes < MAXFRAMES, "too many frames");
    f->data[f->nframes] = malloc (size ? size : 1);
    CHECK (f->data[f->nframes], "out of memory");
    memcpy (f->data[f->nframes], data, size);
    f->size[f->nframes++] = size;
}

static void
s_random_hex (char *out, size_t chars)
{
    static const char hex[] = "0123456789abcdef";
    uint8_t bytes[64];
    randombytes_buf (bytes, chars / 2);
    for (size_t i = 0; i < chars / 2; i++) {
        out[2 * i] = hex[bytes[i] >> 4];
        out[2 * i + 1] = hex[bytes[i] & 15];
    }
    out[chars] = 0;
}

//  Keyed BLAKE2b-256 over frames[first..] each prefixed by its length as
//  8 bytes big-endian, as 64 hex characters.
static void
s_sign (const frames_t *f, int first, char out[65])
{
    crypto_generichash_state st;
    crypto_generichash_init (&st, key, sizeof key, 32);
    for (int i = first; i < f->nframes; i++) {
        uint8_t len[8];
        uint64_t n = f->size[i];
        for (int b = 7; b >= 0; b--) {
            len[b] = (uint8_t) (n & 0xff);
            n >>= 8;
        }
        crypto_generichash_update (&st, len, 8);
        crypto_generichash_update (&st, f->data[i], f->size[i]);
    }
    uint8_t digest[32];
    crypto_generichash_final (&st, digest, 32);
    static const char hex[] = "0123456789abcdef";
    for (int i = 0; i < 32; i++) {
        out[2 * i] = hex[digest[i] >> 4];
        out[2 * i + 1] = hex[digest[i] & 15];
    }
    out[64] = 0;
}

//  --- msgpack packing helpers ------------------------------------------

static void
s_pack_str (msgpack_packer *pk, const char *s)
{
    size_t len = strlen (s);
    msgpack_pack_str (pk, len);
    msgpack_pack_str_body (pk, s, len);
}

//  Header map; target < -1000 omits targets.
static void
s_pack_header (msgpack_sbuffer *sb, const char *msg_id, const char *type, int target)
{
    msgpack_packer pk;
    msgpack_packer_init (&pk, sb, msgpack_sbuffer_write);
    msgpack_pack_map (&pk, target < -1000 ? 6 : 7);
    s_pack_str (&pk, "msg_id");   s_pack_str (&pk, msg_id);
    s_pack_str (&pk, "msg_type"); s_pack_str (&pk, type);
    s_pack_str (&pk, "session");  s_pack_str (&pk, session);
    s_pack_str (&pk, "username"); s_pack_str (&pk, "tester");
    char date[40];
    time_t now = time (NULL);
    struct tm tm;
    gmtime_r (&now, &tm);
    strftime (date, sizeof date, "%Y-%m-%dT%H:%M:%S.000000Z", &tm);
    s_pack_str (&pk, "date");     s_pack_str (&pk, date);
    s_pack_str (&pk, "version");  s_pack_str (&pk, "1.0");
    if (target >= -1000) {
        s_pack_str (&pk, "targets");
        msgpack_pack_array (&pk, 1);
        msgpack_pack_int (&pk, target);
    }
}

//  Builds a signed request: delimiter, signature, header, {}, {}, content, buffers.
static void
s_build (frames_t *f, char msg_id[33], const char *type, int target,
         const void *content, size_t content_len, int nbuffers, const void **buffers,
         const size_t *buffer_len)
{
    s_random_hex (msg_id, 32);
    msgpack_sbuffer sb;
    msgpack_sbuffer_init (&sb);
    s_pack_header (&sb, msg_id, type, target);
    f->nframes = 0;
    s_frames_add (f, "<LPMSG>", 7);
    s_frames_add (f, "", 0);                //  signature, filled below
    s_frames_add (f, sb.data, sb.size);
    msgpack_sbuffer_destroy (&sb);
    const uint8_t empty = 0x80;
    s_frames_add (f, &empty, 1);
    s_frames_add (f, &empty, 1);
    s_frames_add (f, content, content_len);
    for (int i = 0; i < nbuffers; i++)
        s_frames_add (f, buffers[i], buffer_len[i]);
    char sig[65];
    s_sign (f, 2, sig);
    free (f->data[1]);
    f->data[1] = malloc (64);
    CHECK (f->data[1], "out of memory");
    memcpy (f->data[1], sig, 64);
    f->size[1] = 64;
}

//  Content {code = code}.
static void
s_code_content (msgpack_sbuffer *sb, const char *code)
{
    msgpack_packer pk;
    msgpack_sbuffer_init (sb);
    msgpack_packer_init (&pk, sb, msgpack_sbuffer_write);
    msgpack_pack_map (&pk, 1);
    s_pack_str (&pk, "code");
    s_pack_str (&pk, code);
}

static void
s_send (const frames_t *f)
{
    for (int i = 0; i < f->nframes; i++)
        CHECK (zmq_send (mux, f->data[i], f->size[i], i < f->nframes - 1 ? ZMQ_SNDMORE : 0) >= 0,
               "zmq_send: %s", zmq_strerror (zmq_errno ()));
}

//  --- replies -------------------------------------------------------------

typedef struct {
    char parent_id[64];
    char msg_type[64];
    char status[16];
    char ename[64];
    char evalue[512];
    bool has_value;
    int64_t value;                  //  first of values, when an integer
    int64_t meta_engine;
} reply_t;

static const msgpack_object *
s_get (const msgpack_object *map, const char *key)
{
    if (!map || map->type != MSGPACK_OBJECT_MAP)
        return NULL;
    for (uint32_t i = 0; i < map->via.map.size; i++) {
        const msgpack_object *k = &map->via.map.ptr[i].key;
        if (k->type == MSGPACK_OBJECT_STR && k->via.str.size == strlen (key)
            && memcmp (k->via.str.ptr, key, k->via.str.size) == 0)
            return &map->via.map.ptr[i].val;
    }
    return NULL;
}

static void
s_copy_str (const msgpack_object *o, char *out, size_t max)
{
    out[0] = 0;
    if (o && o->type == MSGPACK_OBJECT_STR) {
        size_t n = o->via.str.size < max - 1 ? o->via.str.size : max - 1;
        memcpy (out, o->via.str.ptr, n);
        out[n] = 0;
    }
}

//  Receives one reply within timeout_ms; false on timeout.
static bool
s_recv_reply (reply_t *reply, int timeout_ms)
{
    zmq_pollitem_t item = { mux, 0, ZMQ_POLLIN, 0 };
    if (zmq_poll (&item, 1, timeout_ms) <= 0)
        return false;
    frames_t f = { 0 };
    int more = 1;
    while (more) {
        zmq_msg_t msg;
        zmq_msg_init (&msg);
        CHECK (zmq_msg_recv (&msg, mux, 0) >= 0, "zmq_msg_recv: %s", zmq_strerror (zmq_errno ()));
        if (f.nframes < MAXFRAMES)
            s_frames_add (&f, zmq_msg_data (&msg), zmq_msg_size (&msg));
        more = zmq_msg_more (&msg);
        zmq_msg_close (&msg);
    }
    int d = 0;
    while (d < f.nframes && !(f.size[d] == 7 && memcmp (f.data[d], "<LPMSG>", 7) == 0))
        d++;
    CHECK (d < f.nframes, "reply without delimiter (%d frames)", f.nframes);
    CHECK (f.nframes - d >= 6, "reply with %d frames after the routing frames, expected >= 6",
           f.nframes - d);
    char sig[65];
    s_sign (&f, d + 2, sig);
    CHECK (f.size[d + 1] == 64 && memcmp (f.data[d + 1], sig, 64) == 0,
           "reply signature does not verify with the key of the client file");

    msgpack_unpacked parent, meta, content, header;
    msgpack_unpacked_init (&header);
    msgpack_unpacked_init (&parent);
    msgpack_unpacked_init (&meta);
    msgpack_unpacked_init (&content);
    size_t off = 0;
    CHECK (msgpack_unpack_next (&header, (const char *) f.data[d + 2], f.size[d + 2], &off)
           == MSGPACK_UNPACK_SUCCESS, "reply header does not decode");
    off = 0;
    CHECK (msgpack_unpack_next (&parent, (const char *) f.data[d + 3], f.size[d + 3], &off)
           == MSGPACK_UNPACK_SUCCESS, "reply parent_header does not decode");
    off = 0;
    CHECK (msgpack_unpack_next (&meta, (const char *) f.data[d + 4], f.size[d + 4], &off)
           == MSGPACK_UNPACK_SUCCESS, "reply metadata does not decode");
    off = 0;
    CHECK (msgpack_unpack_next (&content, (const char *) f.data[d + 5], f.size[d + 5], &off)
           == MSGPACK_UNPACK_SUCCESS, "reply content does not decode");
    memset (reply, 0, sizeof *reply);
    s_copy_str (s_get (&parent.data, "msg_id"), reply->parent_id, sizeof reply->parent_id);
    s_copy_str (s_get (&header.data, "msg_type"), reply->msg_type, sizeof reply->msg_type);
    s_copy_str (s_get (&content.data, "status"), reply->status, sizeof reply->status);
    s_copy_str (s_get (&content.data, "ename"), reply->ename, sizeof reply->ename);
    s_copy_str (s_get (&content.data, "evalue"), reply->evalue, sizeof reply->evalue);
    const msgpack_object *e = s_get (&meta.data, "engine");
    reply->meta_engine = e && e->type == MSGPACK_OBJECT_POSITIVE_INTEGER ? (int64_t) e->via.u64 : -1;
    const msgpack_object *values = s_get (&content.data, "values");
    if (values && values->type == MSGPACK_OBJECT_ARRAY && values->via.array.size >= 1) {
        const msgpack_object *v = &values->via.array.ptr[0];
        if (v->type == MSGPACK_OBJECT_POSITIVE_INTEGER) {
            reply->has_value = true;
            reply->value = (int64_t) v->via.u64;
        }
        else if (v->type == MSGPACK_OBJECT_NEGATIVE_INTEGER) {
            reply->has_value = true;
            reply->value = v->via.i64;
        }
    }
    msgpack_unpacked_destroy (&header);
    msgpack_unpacked_destroy (&parent);
    msgpack_unpacked_destroy (&meta);
    msgpack_unpacked_destroy (&content);
    s_frames_free (&f);
    return true;
}

//  Sends "return counter" and reads replies until the probe's own reply.
//  Replies to others are stored (up to max) for the caller to judge.
static int
s_probe (reply_t *others, int max, int64_t expect_counter, const char *after)
{
    msgpack_sbuffer sb;
    s_code_content (&sb, "return counter");
    frames_t f = { 0 };
    char id[33];
    s_build (&f, id, "execute_request", engine, sb.data, sb.size, 0, NULL, NULL);
    msgpack_sbuffer_destroy (&sb);
    s_send (&f);
    s_frames_free (&f);
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
    s_frames_free (f);
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
    CHECK (sodium_init () >= 0, "sodium_init failed");
    lp_client_t *client = lpt_connect (argc, argv);
    int ids[64];
    int n = lp_client_ids (client, ids, 64);
    CHECK (n >= 1, "no engines");
    engine = ids[0];

    json_error_t jerr;
    json_t *root = json_load_file (argv[1], 0, &jerr);
    CHECK (root, "cannot read %s: %s", argv[1], jerr.text);
    const char *hexkey = json_string_value (json_object_get (root, "key"));
    CHECK (hexkey && strlen (hexkey) == 64, "client file key is not 64 hex characters");
    size_t keylen = 0;
    CHECK (sodium_hex2bin (key, sizeof key, hexkey, 64, NULL, &keylen, NULL) == 0 && keylen == 32,
           "client file key does not decode");
    const char *scheme = json_string_value (json_object_get (root, "signature_scheme"));
    CHECK (scheme && strcmp (scheme, "blake2b-256") == 0, "signature_scheme is '%s'", scheme ? scheme : "(none)");
    const char *endpoint = json_string_value (json_object_get (json_object_get (root, "endpoints"), "mux"));
    CHECK (endpoint, "client file has no endpoints.mux");
    s_random_hex (session, 32);

    void *ctx = zmq_ctx_new ();
    mux = zmq_socket (ctx, ZMQ_DEALER);
    CHECK (mux, "zmq_socket: %s", zmq_strerror (zmq_errno ()));
    int linger = 0;
    zmq_setsockopt (mux, ZMQ_LINGER, &linger, sizeof linger);
    CHECK (zmq_connect (mux, endpoint) == 0, "zmq_connect %s: %s", endpoint, zmq_strerror (zmq_errno ()));
    json_decref (root);

    //  1. a valid request, signed as the spec says, is answered once
    msgpack_sbuffer sb;
    s_code_content (&sb, "counter = (counter or 0) + 1 return counter");
    frames_t valid = { 0 };
    char valid_id[33];
    s_build (&valid, valid_id, "execute_request", engine, sb.data, sb.size, 0, NULL, NULL);
    msgpack_sbuffer_destroy (&sb);
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
    s_code_content (&sb, "counter = 100");
    s_build (&f, id, "execute_request", engine, sb.data, sb.size, 0, NULL, NULL);
    msgpack_sbuffer_destroy (&sb);
    f.data[1][10] = f.data[1][10] == '0' ? '1' : '0';
    s_must_not_run (&f, id, "bad signature", NULL);

    //  4. tampered content after signing
    s_code_content (&sb, "counter = 100");
    s_build (&f, id, "execute_request", engine, sb.data, sb.size, 0, NULL, NULL);
    msgpack_sbuffer_destroy (&sb);
    f.data[5][f.size[5] - 1] = '9';             //  "counter = 109"
    s_must_not_run (&f, id, "content changed after signing", NULL);

    //  5. signature in upper case / missing signature frame
    s_code_content (&sb, "counter = 100");
    s_build (&f, id, "execute_request", engine, sb.data, sb.size, 0, NULL, NULL);
    msgpack_sbuffer_destroy (&sb);
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

    s_code_content (&sb, "counter = 100");
    msgpack_sbuffer_write (&sb, "\x01\x02", 2);             //  bytes after the object
    s_build (&f, id, "execute_request", engine, sb.data, sb.size, 0, NULL, NULL);
    msgpack_sbuffer_destroy (&sb);
    s_must_not_run (&f, id, "signed content with trailing bytes", NULL);

    //  a typed array whose buffer frames are missing / have a remainder
    {
        msgpack_packer pk;
        msgpack_sbuffer_init (&sb);
        msgpack_packer_init (&pk, &sb, msgpack_sbuffer_write);
        msgpack_pack_map (&pk, 1);
        s_pack_str (&pk, "ns");
        msgpack_pack_map (&pk, 1);
        s_pack_str (&pk, "counter");
        uint8_t ext[16] = { 1, 0, 0, 0,  0, 0, 0, 0,  0, 0, 0, 5,  0, 0, 0, 0 };
        msgpack_pack_ext (&pk, 16, 1);
        msgpack_pack_ext_body (&pk, ext, 16);
        const void *bufs[] = { "1234567" };
        size_t blen[] = { 7 };
        s_build (&f, id, "push_request", engine, sb.data, sb.size, 1, bufs, blen);
        s_must_not_run (&f, id, "push of ext referring to missing buffers", NULL);
        s_build (&f, id, "push_request", engine, sb.data, sb.size, 0, NULL, NULL);
        s_must_not_run (&f, id, "push of ext with no buffer frames", NULL);
        msgpack_sbuffer_destroy (&sb);
        msgpack_sbuffer_init (&sb);
        msgpack_packer_init (&pk, &sb, msgpack_sbuffer_write);
        msgpack_pack_map (&pk, 1);
        s_pack_str (&pk, "ns");
        msgpack_pack_map (&pk, 1);
        s_pack_str (&pk, "counter");
        uint8_t ext1[16] = { 1, 0, 0, 0,  0, 0, 0, 0,  0, 0, 0, 1,  0, 0, 0, 0 };
        msgpack_pack_ext (&pk, 16, 1);
        msgpack_pack_ext_body (&pk, ext1, 16);
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
    s_code_content (&sb, "counter = 100");
    s_build (&f, id, "execute_request", 999, sb.data, sb.size, 0, NULL, NULL);
    msgpack_sbuffer_destroy (&sb);
    CHECK (s_must_not_run (&f, id, "execute_request to engine 999", &err) == 1,
           "a request to an unregistered engine got no error reply");
    CHECK (strcmp (err.ename, "EngineError") == 0, "unknown target: ename '%s', expected EngineError",
           err.ename);

    //  9. no targets, unknown msg_type
    s_code_content (&sb, "counter = 100");
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
    zmq_ctx_term (ctx);
    lp_client_destroy (&client);
    printf ("mux_signed: OK\n");
    return 0;
}
