/*  lp_rawwire.h - the wire protocol spoken directly, for tests

    Written from docs/protocol.md alone (raw libzmq, msgpack-c, keyed
    BLAKE2b and Poly1305 from libsodium), so that a test using it also checks that a
    client in another language could be written from the spec. It builds
    signed requests with any header fields (lpw_build; lpw_build_to for
    the common case of one target; lpw_pack_targets for any target list),
    and receives and verifies messages (lpw_recv_msg: every part decoded,
    for tests that judge other fields) and replies (lpw_recv_reply: the
    few fields most tests judge by, metadata engine and ename included).

    Header-only with static functions: each test program includes it once.
    Needs lp_testlib.h (CHECK) first.
*/
#ifndef LP_RAWWIRE_H_INCLUDED
#define LP_RAWWIRE_H_INCLUDED

#include <jansson.h>
#include <msgpack.h>
#include <sodium.h>
#include <zmq.h>

#define LPW_MAXFRAMES 16

typedef struct {
    int nframes;
    size_t size[LPW_MAXFRAMES];
    uint8_t *data[LPW_MAXFRAMES];
} lpw_frames_t;

typedef struct {
    uint8_t key[32];                //  from the connection file
    char session[33];               //  our session id
    void *ctx;                      //  libzmq context
    char scheme[32];                //  signature_scheme of the file
    long date_offset_sec;           //  added to header dates (0: now)
} lpw_t;

//  What a test reads of a reply.
typedef struct {
    char parent_id[64];
    char msg_type[64];
    char status[16];
    char ename[64];
    char evalue[512];
    bool has_value;
    int64_t value;                  //  first of values, when an integer
    int64_t meta_engine;            //  metadata.engine, -1 when absent
    char meta_ename[64];            //  metadata.ename, "" when absent
} lpw_reply_t;

//  A received message, signature verified, its four msgpack parts decoded.
typedef struct {
    lpw_frames_t frames;
    int delim;                      //  index of the <LPMSG> frame
    msgpack_unpacked part[4];
    const msgpack_object *header, *parent, *meta, *content;
} lpw_msg_t;

static void
lpw_frames_free (lpw_frames_t *f)
{
    for (int i = 0; i < f->nframes; i++)
        free (f->data[i]);
    f->nframes = 0;
}

static void
lpw_frames_add (lpw_frames_t *f, const void *data, size_t size)
{
    CHECK (f->nframes < LPW_MAXFRAMES, "too many frames");
    f->data[f->nframes] = malloc (size ? size : 1);
    CHECK (f->data[f->nframes], "out of memory");
    memcpy (f->data[f->nframes], data, size);
    f->size[f->nframes++] = size;
}

static void
lpw_random_hex (char *out, size_t chars)
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

//  Reads the key of a connection file and returns the endpoint of channel
//  (strdup'ed). Fails the test when the file is unusable.
static char *
lpw_open (lpw_t *self, const char *conn_file, const char *channel)
{
    CHECK (sodium_init () >= 0, "sodium_init failed");
    json_error_t jerr;
    json_t *root = json_load_file (conn_file, 0, &jerr);
    CHECK (root, "%s: %s", conn_file, jerr.text);
    const char *hex = json_string_value (json_object_get (root, "key"));
    CHECK (hex && strlen (hex) == 64, "%s: no 64-hex key", conn_file);
    for (int i = 0; i < 32; i++) {
        unsigned byte;
        CHECK (sscanf (hex + 2 * i, "%2x", &byte) == 1, "bad key hex");
        self->key[i] = (uint8_t) byte;
    }
    const char *ep = json_string_value (json_object_get (
        json_object_get (root, "endpoints"), channel));
    CHECK (ep, "%s: no endpoint %s", conn_file, channel);
    const char *scheme = json_string_value (json_object_get (root, "signature_scheme"));
    snprintf (self->scheme, sizeof self->scheme, "%s", scheme ? scheme : "");
    char *endpoint = strdup (ep);
    CHECK (endpoint, "out of memory");
    json_decref (root);
    lpw_random_hex (self->session, 32);
    if (!self->ctx)
        self->ctx = zmq_ctx_new ();
    CHECK (self->ctx, "zmq_ctx_new failed");
    return endpoint;
}

//  A DEALER connected to endpoint.
static void *
lpw_dealer (lpw_t *self, const char *endpoint)
{
    void *sock = zmq_socket (self->ctx, ZMQ_DEALER);
    CHECK (sock, "zmq_socket: %s", zmq_strerror (zmq_errno ()));
    int linger = 0;
    zmq_setsockopt (sock, ZMQ_LINGER, &linger, sizeof linger);
    CHECK (zmq_connect (sock, endpoint) == 0, "connect %s: %s", endpoint,
           zmq_strerror (zmq_errno ()));
    return sock;
}

//  The signature frame of f, whose delimiter is at delim
//  (docs/protocol.md, "Signature"): keyed BLAKE2b-256 over the four maps
//  and, when buffers follow them, the digest block (a 16-byte nonce, then
//  per buffer the Poly1305 tag under the key BLAKE2b-256(key, nonce +
//  index as 8 bytes big-endian, personal "lp-buffer-key")), each item
//  prefixed by its length as 8 bytes big-endian; the frame is the
//  signature's 64 hex characters, then the block's hex. nonce NULL: a
//  random one. Returns the text (malloc'd) and its length in *len.
static void
lpw_sign_item (crypto_generichash_state *st, const uint8_t *data, uint64_t n)
{
    uint8_t len[8];
    for (int b = 0; b < 8; b++)
        len[b] = (uint8_t) (n >> (56 - 8 * b));
    crypto_generichash_update (st, len, 8);
    crypto_generichash_update (st, data, n);
}

static char *
lpw_signature (const lpw_t *self, const lpw_frames_t *f, int delim, const uint8_t *nonce,
               size_t *len)
{
    int nbuf = f->nframes - delim - 6;
    size_t dlen = nbuf > 0? 16 + 16 * (size_t) nbuf: 0;
    uint8_t *block = malloc (dlen + 1);
    CHECK (block, "out of memory");
    if (dlen) {
        if (nonce)
            memcpy (block, nonce, 16);
        else
            randombytes_buf (block, 16);
        for (int i = 0; i < nbuf; i++) {
            uint8_t in[24], key[32], personal[16] = "lp-buffer-key";
            memcpy (in, block, 16);
            for (int b = 0; b < 8; b++)
                in[16 + b] = (uint8_t) ((uint64_t) i >> (56 - 8 * b));
            crypto_generichash_blake2b_salt_personal (key, 32, in, 24, self->key,
                                                      sizeof self->key, NULL, personal);
            crypto_onetimeauth (block + 16 + 16 * i, f->data[delim + 6 + i],
                                f->size[delim + 6 + i], key);
        }
    }
    crypto_generichash_state st;
    crypto_generichash_init (&st, self->key, sizeof self->key, 32);
    for (int i = delim + 2; i < delim + 6; i++) {
        lpw_sign_item (&st, f->data[i], f->size[i]);
    }
    if (dlen)
        lpw_sign_item (&st, block, dlen);
    uint8_t digest[32];
    crypto_generichash_final (&st, digest, 32);
    *len = 64 + 2 * dlen;
    char *text = malloc (*len + 1);
    CHECK (text, "out of memory");
    static const char hex[] = "0123456789abcdef";
    for (size_t i = 0; i < 32 + dlen; i++) {
        uint8_t byte = i < 32? digest[i]: block[i - 32];
        text[2 * i] = hex[byte >> 4];
        text[2 * i + 1] = hex[byte & 15];
    }
    text[*len] = 0;
    free (block);
    return text;
}

static void
lpw_pack_str (msgpack_packer *pk, const char *s)
{
    size_t len = strlen (s);
    msgpack_pack_str (pk, len);
    msgpack_pack_str_body (pk, s, len);
}

//  Header map with the six required fields, plus `extra` already-packed
//  key/value pairs (nextra of them) appended by the caller's callback.
typedef void (lpw_extra_fn) (msgpack_packer *pk, void *arg);

static void
lpw_pack_header (const lpw_t *self, msgpack_sbuffer *sb, const char *msg_id,
                 const char *type, int nextra, lpw_extra_fn *extra, void *arg)
{
    msgpack_packer pk;
    msgpack_packer_init (&pk, sb, msgpack_sbuffer_write);
    msgpack_pack_map (&pk, 6 + nextra);
    lpw_pack_str (&pk, "msg_id");   lpw_pack_str (&pk, msg_id);
    lpw_pack_str (&pk, "msg_type"); lpw_pack_str (&pk, type);
    lpw_pack_str (&pk, "session");  lpw_pack_str (&pk, self->session);
    lpw_pack_str (&pk, "username"); lpw_pack_str (&pk, "tester");
    char date[40];
    struct timespec ts;
    clock_gettime (CLOCK_REALTIME, &ts);
    time_t when = ts.tv_sec + self->date_offset_sec;
    struct tm tm;
    gmtime_r (&when, &tm);
    size_t n = strftime (date, sizeof date, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf (date + n, sizeof date - n, ".%06ldZ", ts.tv_nsec / 1000);
    lpw_pack_str (&pk, "date");     lpw_pack_str (&pk, date);
    lpw_pack_str (&pk, "version");  lpw_pack_str (&pk, "1.0");
    if (extra)
        extra (&pk, arg);
}

//  Header extra "targets": an lpw_extra_fn whose arg is an lpw_targets_t.
typedef struct {
    const int64_t *ids;
    size_t count;
    bool first_as_string;           //  send the first id as a string
} lpw_targets_t;

static void
lpw_pack_targets (msgpack_packer *pk, void *arg)
{
    const lpw_targets_t *t = (const lpw_targets_t *) arg;
    lpw_pack_str (pk, "targets");
    msgpack_pack_array (pk, t->count);
    for (size_t i = 0; i < t->count; i++) {
        if (i == 0 && t->first_as_string)
            lpw_pack_str (pk, "0");
        else
            msgpack_pack_int64 (pk, t->ids[i]);
    }
}

//  Content {code = code} into sb (initialised here; the caller destroys).
static void
lpw_code_content (msgpack_sbuffer *sb, const char *code)
{
    msgpack_packer pk;
    msgpack_sbuffer_init (sb);
    msgpack_packer_init (&pk, sb, msgpack_sbuffer_write);
    msgpack_pack_map (&pk, 1);
    lpw_pack_str (&pk, "code");
    lpw_pack_str (&pk, code);
}

//  A typed array by reference (ext type 1, docs/protocol.md "Values"):
//  u8 dtype | u8 flags | u16 0 | u32 first | u32 pieces | u32 0, big-endian;
//  its data are buffer frames first .. first + pieces - 1.
static void
lpw_pack_typed_ref (msgpack_packer *pk, uint8_t dtype, uint32_t first, uint32_t pieces)
{
    uint8_t ext[16] = { dtype, 0, 0, 0 };
    for (int b = 0; b < 4; b++) {
        ext[4 + b] = (uint8_t) (first >> (24 - 8 * b));
        ext[8 + b] = (uint8_t) (pieces >> (24 - 8 * b));
    }
    msgpack_pack_ext (pk, sizeof ext, 1);
    msgpack_pack_ext_body (pk, ext, sizeof ext);
}

//  Signs f (delimiter at delim) into its signature frame delim + 1.
static void
lpw_resign (const lpw_t *self, lpw_frames_t *f, int delim)
{
    size_t len;
    char *text = lpw_signature (self, f, delim, NULL, &len);
    free (f->data[delim + 1]);
    f->data[delim + 1] = (uint8_t *) text;
    f->size[delim + 1] = len;
}

//  Builds a signed request in f: delimiter, signature, header, {}, {},
//  content, buffers. Fills msg_id with a fresh id.
static void
lpw_build (const lpw_t *self, lpw_frames_t *f, char msg_id[33], const char *type,
           int nextra, lpw_extra_fn *extra, void *arg,
           const void *content, size_t content_len,
           int nbuffers, const void **buffers, const size_t *buffer_len)
{
    lpw_random_hex (msg_id, 32);
    msgpack_sbuffer sb;
    msgpack_sbuffer_init (&sb);
    lpw_pack_header (self, &sb, msg_id, type, nextra, extra, arg);
    f->nframes = 0;
    lpw_frames_add (f, "<LPMSG>", 7);
    lpw_frames_add (f, "", 0);                //  signature, filled below
    lpw_frames_add (f, sb.data, sb.size);
    msgpack_sbuffer_destroy (&sb);
    const uint8_t empty = 0x80;
    lpw_frames_add (f, &empty, 1);
    lpw_frames_add (f, &empty, 1);
    lpw_frames_add (f, content, content_len);
    for (int i = 0; i < nbuffers; i++)
        lpw_frames_add (f, buffers[i], buffer_len[i]);
    lpw_resign (self, f, 0);
}

//  lpw_build with header.targets = [target].
static void
lpw_build_to (const lpw_t *self, lpw_frames_t *f, char msg_id[33], const char *type,
              int64_t target, const void *content, size_t content_len,
              int nbuffers, const void **buffers, const size_t *buffer_len)
{
    lpw_targets_t t = { &target, 1, false };
    lpw_build (self, f, msg_id, type, 1, lpw_pack_targets, &t, content, content_len,
               nbuffers, buffers, buffer_len);
}

//  Sends f on sock (f is kept). false when the send would block.
static bool
lpw_send (void *sock, const lpw_frames_t *f, int flags)
{
    for (int i = 0; i < f->nframes; i++) {
        int more = i < f->nframes - 1 ? ZMQ_SNDMORE : 0;
        if (zmq_send (sock, f->data[i], f->size[i], more | flags) < 0) {
            CHECK (i == 0 && zmq_errno () == EAGAIN, "zmq_send: %s", zmq_strerror (zmq_errno ()));
            return false;
        }
    }
    return true;
}

static const msgpack_object *
lpw_get (const msgpack_object *map, const char *key)
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
lpw_copy_str (const msgpack_object *o, char *out, size_t max)
{
    out[0] = 0;
    if (o && o->type == MSGPACK_OBJECT_STR) {
        size_t n = o->via.str.size < max - 1 ? o->via.str.size : max - 1;
        memcpy (out, o->via.str.ptr, n);
        out[n] = 0;
    }
}

//  Receives one whole message from sock into f (waiting at most
//  timeout_ms). false on timeout; more than LPW_MAXFRAMES frames fail.
static bool
lpw_recv_frames (void *sock, lpw_frames_t *f, int timeout_ms)
{
    zmq_pollitem_t item = { sock, 0, ZMQ_POLLIN, 0 };
    if (zmq_poll (&item, 1, timeout_ms) <= 0)
        return false;
    f->nframes = 0;
    int more = 1;
    while (more) {
        zmq_msg_t msg;
        zmq_msg_init (&msg);
        CHECK (zmq_msg_recv (&msg, sock, 0) >= 0, "zmq_msg_recv: %s", zmq_strerror (zmq_errno ()));
        lpw_frames_add (f, zmq_msg_data (&msg), zmq_msg_size (&msg));
        more = zmq_msg_more (&msg);
        zmq_msg_close (&msg);
    }
    return true;
}

//  Index of the <LPMSG> delimiter of f; fails the test unless there is
//  one with at least six frames from it on.
static int
lpw_delim (const lpw_frames_t *f)
{
    int d = 0;
    while (d < f->nframes && !(f->size[d] == 7 && memcmp (f->data[d], "<LPMSG>", 7) == 0))
        d++;
    CHECK (d < f->nframes, "message without delimiter (%d frames)", f->nframes);
    CHECK (f->nframes - d >= 6, "message with %d frames after the routing frames, expected >= 6",
           f->nframes - d);
    return d;
}

static void
lpw_msg_free (lpw_msg_t *m)
{
    for (int i = 0; i < 4; i++)
        msgpack_unpacked_destroy (&m->part[i]);
    lpw_frames_free (&m->frames);
}

//  Receives one message from sock (waiting at most timeout_ms), verifies
//  its signature with the key of self and decodes header, parent_header,
//  metadata and content (each must decode). false on timeout. The caller
//  frees m with lpw_msg_free.
static bool
lpw_recv_msg (const lpw_t *self, void *sock, lpw_msg_t *m, int timeout_ms)
{
    memset (m, 0, sizeof *m);
    if (!lpw_recv_frames (sock, &m->frames, timeout_ms))
        return false;
    const lpw_frames_t *f = &m->frames;
    int d = m->delim = lpw_delim (f);
    //  The nonce of the digest block (after the signature's 64 hex) when
    //  buffers follow; the whole frame must then be what we compute
    uint8_t nonce[16] = { 0 };
    if (f->nframes > d + 6 && f->size[d + 1] >= 64 + 32)
        sodium_hex2bin (nonce, 16, (const char *) f->data[d + 1] + 64, 32, NULL, NULL, NULL);
    size_t len;
    char *sig = lpw_signature (self, f, d, nonce, &len);
    bool good = f->size[d + 1] == len && memcmp (f->data[d + 1], sig, len) == 0;
    free (sig);
    CHECK (good, "message signature or buffer digests do not verify with the key "
                 "of the connection file");
    static const char *names[4] = { "header", "parent_header", "metadata", "content" };
    for (int i = 0; i < 4; i++) {
        msgpack_unpacked_init (&m->part[i]);
        size_t off = 0;
        CHECK (msgpack_unpack_next (&m->part[i], (const char *) f->data[d + 2 + i],
                                    f->size[d + 2 + i], &off) == MSGPACK_UNPACK_SUCCESS,
               "message %s does not decode", names[i]);
    }
    m->header = &m->part[0].data;
    m->parent = &m->part[1].data;
    m->meta = &m->part[2].data;
    m->content = &m->part[3].data;
    return true;
}

//  Receives one reply from sock (waiting at most timeout_ms), verifies its
//  signature and reads it into reply. false on timeout.
static bool
lpw_recv_reply (const lpw_t *self, void *sock, lpw_reply_t *reply, int timeout_ms)
{
    lpw_msg_t m;
    if (!lpw_recv_msg (self, sock, &m, timeout_ms))
        return false;
    memset (reply, 0, sizeof *reply);
    lpw_copy_str (lpw_get (m.parent, "msg_id"), reply->parent_id, sizeof reply->parent_id);
    lpw_copy_str (lpw_get (m.header, "msg_type"), reply->msg_type, sizeof reply->msg_type);
    lpw_copy_str (lpw_get (m.content, "status"), reply->status, sizeof reply->status);
    lpw_copy_str (lpw_get (m.content, "ename"), reply->ename, sizeof reply->ename);
    lpw_copy_str (lpw_get (m.content, "evalue"), reply->evalue, sizeof reply->evalue);
    lpw_copy_str (lpw_get (m.meta, "ename"), reply->meta_ename, sizeof reply->meta_ename);
    const msgpack_object *e = lpw_get (m.meta, "engine");
    reply->meta_engine = e && e->type == MSGPACK_OBJECT_POSITIVE_INTEGER ? (int64_t) e->via.u64 : -1;
    const msgpack_object *values = lpw_get (m.content, "values");
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
    lpw_msg_free (&m);
    return true;
}

//  So that a test needs no (void) casts for the helpers it does not use.
static inline void
lpw_unused_ (void)
{
    (void) lpw_dealer; (void) lpw_build_to; (void) lpw_code_content; (void) lpw_pack_typed_ref; (void) lpw_send;
    (void) lpw_recv_reply; (void) lpw_recv_msg; (void) lpw_unused_;
}

#endif
