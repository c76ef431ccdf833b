/*  =========================================================================
    lp_wire - signed multipart messages: encode, verify, decode

    On the wire a message is (docs/protocol.md):

        [routing...] | "<LPMSG>" | signature | header | parent | metadata
                     | content | buffer...

    header, parent, metadata and content are one msgpack map each
    (lp_codec); large values inside them go out of band as buffer frames,
    numbered from 0 at the first frame after content. The signature is a
    keyed BLAKE2b-256 (libsodium crypto_generichash) over the four maps
    and, when there are buffers, a digest block (a random nonce and a
    Poly1305 tag per buffer under a key derived from the wire key, the
    nonce and the buffer's index); each item is fed as its length (8
    bytes big-endian) then its bytes. The signature frame is the
    signature's 64 hex characters followed by the digest block in hex.
    Length-prefixing makes the frame boundaries part of what is signed, so
    frames cannot be re-split; the tags bind each buffer to its place.
    A forwarder thus checks a few small frames whatever the message's
    size, and buffers are hashed once more only by their receiver, with
    a MAC (Poly1305, ~4 GB/s here) several times faster than BLAKE2b.

    No frame exceeds LP_DATA_MAX_FRAME, the ZMQ_MAXMSGSIZE of every data
    socket (lp_wire_tune_socket), so a peer can make a receiver hold at
    most that much per connection before anything is verified: metadata
    and content are cut into pieces by lp_codec (large strings, typed
    arrays and tables out of band, no frame over LP_PIECE_BYTES); header
    and parent_header are encoded inline (lp_codec_encode_inline: a
    forwarder reads them without the buffers) and refused past the cap,
    and so is a message with more buffers than a signature frame within
    the cap can carry tags for (S_BUFFERS_MAX, about 64 GiB of data).
    Receivers decode header and parent_header without buffers: an ext in
    them is malformed.

    Receiving is defensive, in this order, and nothing is unpacked before
    the signature checks out (msgpack-c allocates for declared lengths):

        1. find the delimiter; what precedes it is the routing envelope
        2. at least 6 frames from the delimiter on
        3. signature frame sized for the buffer count, signature over the
           maps and digest block compared in constant time (sodium_memcmp)
        4. header decodes to a map with string msg_id and msg_type
        5. replay guard (lp_guard): msg_id not seen before, and for the
           controller's guard a header date within the replay window;
           the id is remembered now
        6. (receivers, lp_wire_decode) each buffer matches its tag
        7. parent, metadata, content decode to maps (lp_wire_decode); a
           message failing 6 or 7 gives its msg_id back to the guard

    A message failing any step is dropped: counted (lp_wire_dropped), its
    reason kept (lp_wire_last_error) and logged with zsys_warning at most
    once per peer per LP_DROP_LOG_MSEC. The peer is the hex of the first
    routing frame, "-" when there is none.

    Each wire has its own replay guard by count (LP_REPLAY_WINDOW ids, no
    date check: engines and clients); the controller sets one shared guard
    by time on all its wires (lp_wire_set_guard), which locks internally.

    Forwarders that pass frames on without decoding them (the controller)
    use lp_wire_verify, lp_wire_decode_frame for the small maps they need
    (parent_header, metadata), lp_wire_replace to swap a map frame, and
    lp_wire_resign after changing any signed frame.

    One wire per thread: nothing here locks (the guard does).
    =========================================================================
*/

#include "lp_wire.h"
#include "lp_codec.h"
#include "lp_guard.h"
#include "lp_msg.h"
#include "lp_proto.h"
#include "lp_util.h"
#include "lp_value.h"
#include <sodium.h>
#include <inttypes.h>

#define LP_WIRE_FRAMES_MIN      LP_FRAMES_MIN
#define LP_WIRE_SIGNED_FIRST    LP_FRAME_HEADER
#define LP_DIGEST_MAPS          (LP_FRAME_BUFFERS - LP_FRAME_HEADER)   //  signed maps
_Static_assert (LP_DIGEST_TAG_BYTES == crypto_onetimeauth_BYTES, "Poly1305 tag size");
//  Buffers whose digest block still fits the signature frame in the cap
#define S_BUFFERS_MAX \
    (((LP_DATA_MAX_FRAME - LP_SIGNATURE_HEX_CHARS) / 2 - LP_DIGEST_NONCE_BYTES) / LP_DIGEST_TAG_BYTES)

struct _lp_wire_t {
    uint8_t key [crypto_generichash_KEYBYTES_MAX]; //  signing key
    size_t key_len;                 //  bytes used in key
    char *name;                     //  for log lines
    char session [LP_ID_CHARS + 1]; //  stamped into sent headers
    lp_guard_t *own_guard;          //  by count, used unless set
    lp_guard_t *guard;              //  the replay guard in use
    zhashx_t *peers;                //  peer hex -> s_peer_t, drop logging
    uint64_t dropped;               //  messages dropped so far
    char last_error [256];          //  why the last drop
    lp_drop_t last_drop;            //  kind of the last drop
    lp_value_t *refused;            //  header of the last date/full refusal
    size_t refused_delim;           //  its delimiter index
    uint8_t *digests;               //  digest block of the last verified message
    size_t digests_room;            //  bytes allocated at digests
    size_t nbuffers;                //  its buffer count
};

//  Drop accounting per peer
typedef struct {
    int64_t logged_at;              //  zclock_mono of the last log line
    uint64_t dropped;               //  drops from this peer
} s_peer_t;

//  ---------------------------------------------------------------------
//  Creates a wire. The key must be 16..64 bytes (crypto_generichash);
//  returns NULL otherwise or when out of memory.

lp_wire_t *
lp_wire_new (const uint8_t *key, size_t key_len, const char *name)
{
    assert (key);
    if (key_len < crypto_generichash_KEYBYTES_MIN
    ||  key_len > crypto_generichash_KEYBYTES_MAX)
        return NULL;
    if (sodium_init () < 0)
        return NULL;
    lp_wire_t *self = (lp_wire_t *) calloc (1, sizeof (lp_wire_t));
    if (!self)
        return NULL;
    memcpy (self->key, key, key_len);
    self->key_len = key_len;
    self->name = strdup (name? name: "wire");
    self->own_guard = lp_guard_new (0, LP_REPLAY_WINDOW);
    self->guard = self->own_guard;
    self->peers = zhashx_new ();
    if (!self->name || !self->own_guard || !self->peers) {
        lp_wire_destroy (&self);
        return NULL;
    }
    zhashx_set_destructor (self->peers, NULL);
    lp_util_random_id (self->session);
    return self;
}

void
lp_wire_destroy (lp_wire_t **self_p)
{
    assert (self_p);
    lp_wire_t *self = *self_p;
    if (self) {
        sodium_memzero (self->key, sizeof (self->key));
        lp_guard_destroy (&self->own_guard);
        lp_value_destroy (&self->refused);
        free (self->digests);
        if (self->peers) {
            s_peer_t *peer = (s_peer_t *) zhashx_first (self->peers);
            while (peer) {
                free (peer);
                peer = (s_peer_t *) zhashx_next (self->peers);
            }
            zhashx_destroy (&self->peers);
        }
        free (self->name);
        free (self);
        *self_p = NULL;
    }
}

const char *
lp_wire_session (lp_wire_t *self)
{
    assert (self);
    return self->session;
}

uint64_t
lp_wire_dropped (lp_wire_t *self)
{
    assert (self);
    return self->dropped;
}

const char *
lp_wire_last_error (lp_wire_t *self)
{
    assert (self);
    return self->last_error;
}

lp_drop_t
lp_wire_last_drop (lp_wire_t *self)
{
    assert (self);
    return self->last_drop;
}

lp_value_t *
lp_wire_take_refused (lp_wire_t *self, size_t *delim_p)
{
    assert (self);
    lp_value_t *header = self->refused;
    self->refused = NULL;
    if (header && delim_p)
        *delim_p = self->refused_delim;
    return header;
}

void
lp_wire_set_guard (lp_wire_t *self, lp_guard_t *guard)
{
    assert (self);
    self->guard = guard? guard: self->own_guard;
}

lp_guard_t *
lp_wire_guard (lp_wire_t *self)
{
    assert (self);
    return self->guard;
}

//  ---------------------------------------------------------------------
//  Signing. The signature covers the four maps and, when the message has
//  buffers, a digest block: a 16-byte random nonce, then one Poly1305 tag
//  per buffer, keyed by BLAKE2b-256 (key = the wire key, personal
//  LP_DIGEST_PERSONAL) of nonce + the buffer's index (8 bytes big-endian).
//  The signature frame carries the signature's hex, then the block's hex.
//  So a forwarder verifies a few small frames and passes buffers on
//  untouched; the receiver checks each buffer's tag before decoding.

//  One item signed: its length (8 bytes big-endian), then its bytes.
static void
s_sign_item (crypto_generichash_state *state, const void *data, uint64_t size)
{
    uint8_t prefix [8];
    for (int b = 0; b < 8; b++)
        prefix [b] = (uint8_t) (size >> (56 - 8 * b));
    crypto_generichash_update (state, prefix, sizeof (prefix));
    crypto_generichash_update (state, (const uint8_t *) data, size);
}

//  Signature hex of the four maps and the digest block (none when dlen 0).
static void
s_signature (lp_wire_t *self, const void *const *data, const size_t *sizes,
             const uint8_t *digests, size_t dlen, char *hex)
{
    crypto_generichash_state state;
    crypto_generichash_init (&state, self->key, self->key_len,
                             crypto_generichash_BYTES);
    for (size_t i = 0; i < LP_DIGEST_MAPS; i++)
        s_sign_item (&state, data [i], sizes [i]);
    if (dlen)
        s_sign_item (&state, digests, dlen);
    uint8_t digest [crypto_generichash_BYTES];
    crypto_generichash_final (&state, digest, sizeof (digest));
    sodium_bin2hex (hex, LP_SIGNATURE_HEX_CHARS + 1, digest, sizeof (digest));
}

//  Tag of one buffer under nonce.
static void
s_buffer_tag (lp_wire_t *self, const uint8_t *nonce, uint64_t index,
              const void *data, size_t size, uint8_t *tag)
{
    uint8_t input [LP_DIGEST_NONCE_BYTES + 8];
    memcpy (input, nonce, LP_DIGEST_NONCE_BYTES);
    for (int b = 0; b < 8; b++)
        input [LP_DIGEST_NONCE_BYTES + b] = (uint8_t) (index >> (56 - 8 * b));
    uint8_t key [crypto_onetimeauth_KEYBYTES];
    uint8_t personal [crypto_generichash_blake2b_PERSONALBYTES] = { 0 };
    memcpy (personal, LP_DIGEST_PERSONAL, strlen (LP_DIGEST_PERSONAL));
    crypto_generichash_blake2b_salt_personal (key, sizeof (key), input, sizeof (input),
                                              self->key, self->key_len, NULL, personal);
    crypto_onetimeauth (tag, (const uint8_t *) data, size, key);
    sodium_memzero (key, sizeof (key));
}

//  Bytes of the digest block for nbuffers buffers (0 for none).
static size_t
s_digests_size (size_t nbuffers)
{
    return nbuffers? LP_DIGEST_NONCE_BYTES + nbuffers * LP_DIGEST_TAG_BYTES: 0;
}

//  A new digest block over the buffers, or NULL when out of memory.
static uint8_t *
s_digests_new (lp_wire_t *self, const void *const *data, const size_t *sizes, size_t nbuffers)
{
    uint8_t *block = (uint8_t *) malloc (s_digests_size (nbuffers));
    if (!block)
        return NULL;
    randombytes_buf (block, LP_DIGEST_NONCE_BYTES);
    for (size_t i = 0; i < nbuffers; i++)
        s_buffer_tag (self, block, i, data [i], sizes [i],
                      block + LP_DIGEST_NONCE_BYTES + i * LP_DIGEST_TAG_BYTES);
    return block;
}

//  Writes the signature frame's text for the maps and digest block into
//  a new frame; NULL when out of memory.
static zframe_t *
s_signature_frame (lp_wire_t *self, const void *const *data, const size_t *sizes,
                   const uint8_t *digests, size_t dlen)
{
    zframe_t *frame = zframe_new (NULL, LP_SIGNATURE_HEX_CHARS + 2 * dlen);
    if (!frame)
        return NULL;
    char *text = (char *) zframe_data (frame);
    char hex [LP_SIGNATURE_HEX_CHARS + 1];
    s_signature (self, data, sizes, digests, dlen, hex);
    memcpy (text, hex, LP_SIGNATURE_HEX_CHARS);
    for (size_t i = 0; i < dlen; i++) {
        static const char digits [] = "0123456789abcdef";
        text [LP_SIGNATURE_HEX_CHARS + 2 * i] = digits [digests [i] >> 4];
        text [LP_SIGNATURE_HEX_CHARS + 2 * i + 1] = digits [digests [i] & 15];
    }
    return frame;
}

//  The digest block a signature frame carries for nbuffers buffers, into
//  block (s_digests_size bytes); 0, or -1 when the frame does not have
//  one of that size in lowercase hex.
static int
s_digests_read (zframe_t *signature, size_t nbuffers, uint8_t *block)
{
    size_t dlen = s_digests_size (nbuffers);
    if (zframe_size (signature) != LP_SIGNATURE_HEX_CHARS + 2 * dlen)
        return -1;
    const char *hex = (const char *) zframe_data (signature) + LP_SIGNATURE_HEX_CHARS;
    size_t written = 0;
    if (dlen && (sodium_hex2bin (block, dlen, hex, 2 * dlen, NULL, &written, NULL) != 0
             ||  written != dlen))
        return -1;
    return 0;
}

//  Signs a whole message in place: frames [delim + 2, delim + 6) are the
//  maps, the rest buffers. The digest block the signature frame carries
//  is kept when it fits the buffers (a re-signed header or map), else
//  made anew. 0, or -1 when out of memory.
static int
s_sign_zmsg (lp_wire_t *self, zmsg_t *zmsg, size_t delim)
{
    size_t nframes = zmsg_size (zmsg);
    assert (nframes >= delim + LP_WIRE_FRAMES_MIN);
    size_t nbuffers = nframes - delim - LP_WIRE_FRAMES_MIN;
    size_t dlen = s_digests_size (nbuffers);
    zframe_t **frames = (zframe_t **) malloc (nframes * sizeof (zframe_t *));
    const void **data = (const void **) malloc (nframes * sizeof (void *));
    size_t *sizes = (size_t *) malloc (nframes * sizeof (size_t));
    uint8_t *digests = dlen? (uint8_t *) malloc (dlen): NULL;
    int rc = -1;
    if (!frames || !data || !sizes || (dlen && !digests))
        goto done;
    size_t n = 0;
    for (zframe_t *f = zmsg_first (zmsg); f; f = zmsg_next (zmsg), n++) {
        frames [n] = f;
        data [n] = zframe_data (f);
        sizes [n] = zframe_size (f);
    }
    zframe_t *signature = frames [delim + LP_FRAME_SIGNATURE];
    const void *const *maps = data + delim + LP_WIRE_SIGNED_FIRST;
    if (dlen && s_digests_read (signature, nbuffers, digests) != 0) {
        free (digests);
        digests = s_digests_new (self, data + delim + LP_FRAME_BUFFERS,
                                 sizes + delim + LP_FRAME_BUFFERS, nbuffers);
        if (!digests)
            goto done;
    }
    zframe_t *fresh = s_signature_frame (self, maps, sizes + delim + LP_WIRE_SIGNED_FIRST,
                                         digests, dlen);
    if (!fresh)
        goto done;
    zframe_reset (signature, zframe_data (fresh), zframe_size (fresh));
    zframe_destroy (&fresh);
    rc = 0;
done:
    free (frames);
    free (data);
    free (sizes);
    free (digests);
    return rc;
}

//  ---------------------------------------------------------------------
//  Stamps our session when the header has none, then encodes the four
//  maps of msg into parts with encode (copying or referring encoder);
//  large data goes to list. 0, or -1 with err filled.

typedef zframe_t *(s_encoder_fn) (lp_value_t *value, zlist_t *list, char *err, size_t errlen);

static int
s_encode_maps (lp_wire_t *self, lp_msg_t *msg, s_encoder_fn *encode, zlist_t *list,
               zframe_t *parts [4], char *err, size_t errlen)
{
    lp_value_t *header = lp_msg_header (msg);
    const lp_value_t *session = lp_value_get (header, LP_HDR_SESSION);
    if (!session || lp_value_type (session) != LP_STRING || lp_value_len (session) == 0) {
        lp_value_t *value = lp_value_string (self->session);
        if (!value || lp_value_set (header, LP_HDR_SESSION, value)) {
            snprintf (err, errlen, "out of memory");
            return -1;
        }
    }
    lp_value_t *maps [4] = {
        header, lp_msg_parent (msg), lp_msg_metadata (msg), lp_msg_content (msg)
    };
    static const char *names [4] = { "header", "parent", "metadata", "content" };
    for (int i = 0; i < 4; i++) {
        char reason [200] = "";
        //  Headers are read by forwarders without buffers: inline, whole
        parts [i] = i < 2? lp_codec_encode_inline (maps [i], reason, sizeof (reason))
                         : encode (maps [i], list, reason, sizeof (reason));
        if (!parts [i]) {
            snprintf (err, errlen, "cannot encode %s: %s", names [i], reason);
            return -1;
        }
        if (zframe_size (parts [i]) > LP_DATA_MAX_FRAME) {
            snprintf (err, errlen, "%s of %zu bytes exceeds the %d MiB frame cap",
                      names [i], zframe_size (parts [i]), LP_DATA_MAX_FRAME / (1024 * 1024));
            return -1;
        }
    }
    return 0;
}

//  0 when a message with nbuffers buffers has a signature frame within
//  the frame cap (about 65,000 buffers: 64 GiB of data), else -1 with
//  err filled.
static int
s_signature_fits (size_t nbuffers, char *err, size_t errlen)
{
    if (nbuffers <= S_BUFFERS_MAX)
        return 0;
    snprintf (err, errlen, "message of %zu buffer frames exceeds the %d frames a "
              "signature frame of the %d MiB cap can cover", nbuffers, (int) S_BUFFERS_MAX,
              LP_DATA_MAX_FRAME / (1024 * 1024));
    return -1;
}

//  ---------------------------------------------------------------------
//  Builds the signed multipart message. Header, parent and metadata share
//  the buffer list with content so that a large string anywhere (a long
//  captured stdout in metadata, say) also goes out of band.

zmsg_t *
lp_wire_encode (lp_wire_t *self, lp_msg_t **msg_p, char *err, size_t errlen)
{
    assert (self);
    assert (msg_p);
    lp_msg_t *msg = *msg_p;
    assert (msg);
    char dummy [8];
    if (!err) {
        err = dummy;
        errlen = sizeof (dummy);
    }
    zmsg_t *zmsg = NULL;
    zlist_t *buffers = zlist_new ();
    zframe_t *parts [4] = { NULL, NULL, NULL, NULL };
    if (!buffers) {
        snprintf (err, errlen, "out of memory");
        goto done;
    }
    //  msg is destroyed below: its large buffers go as they are copied
    if (s_encode_maps (self, msg, lp_codec_encode_consume, buffers, parts, err, errlen))
        goto done;
    zmsg = zmsg_dup (lp_msg_routing (msg));
    if (!zmsg) {
        snprintf (err, errlen, "out of memory");
        goto done;
    }
    size_t delim = zmsg_size (zmsg);
    if (zmsg_addmem (zmsg, LP_DELIMITER, strlen (LP_DELIMITER))
    ||  zmsg_addmem (zmsg, NULL, 0))
        goto nomem;
    for (int i = 0; i < 4; i++)
        if (zmsg_append (zmsg, &parts [i]))
            goto nomem;
    if (s_signature_fits (zlist_size (buffers), err, errlen)) {
        zmsg_destroy (&zmsg);
        goto done;
    }
    zframe_t *buffer = (zframe_t *) zlist_pop (buffers);
    while (buffer) {
        if (zmsg_append (zmsg, &buffer)) {
            zframe_destroy (&buffer);
            goto nomem;
        }
        buffer = (zframe_t *) zlist_pop (buffers);
    }
    if (s_sign_zmsg (self, zmsg, delim))
        goto nomem;
    goto done;

nomem:
    snprintf (err, errlen, "out of memory");
    zmsg_destroy (&zmsg);
done:
    for (int i = 0; i < 4; i++)
        zframe_destroy (&parts [i]);
    if (buffers) {
        zframe_t *frame = (zframe_t *) zlist_pop (buffers);
        while (frame) {
            zframe_destroy (&frame);
            frame = (zframe_t *) zlist_pop (buffers);
        }
        zlist_destroy (&buffers);
    }
    lp_msg_destroy (msg_p);
    return zmsg;
}

//  ---------------------------------------------------------------------
//  The same message with its large buffers referred to, not copied: the
//  frames up to content in a zmsg, then the pieces (lp_codec_encode_refer),
//  which go out with zmq_msg_init_data and are freed by ZeroMQ once sent.

struct _lp_wire_out_t {
    zmsg_t *head;                       //  routing ... content, signed
    lp_piece_t **pieces;                //  buffer frames
    size_t npieces;
    size_t largest;                     //  biggest frame, bytes
};

void
lp_wire_out_destroy (lp_wire_out_t **self_p)
{
    assert (self_p);
    lp_wire_out_t *self = *self_p;
    if (self) {
        zmsg_destroy (&self->head);
        for (size_t i = 0; i < self->npieces; i++)
            lp_piece_destroy (&self->pieces [i]);
        free (self->pieces);
        free (self);
        *self_p = NULL;
    }
}

size_t
lp_wire_out_largest (lp_wire_out_t *self)
{
    assert (self);
    return self->largest;
}

lp_wire_out_t *
lp_wire_encode_out (lp_wire_t *self, lp_msg_t **msg_p, char *err, size_t errlen)
{
    assert (self);
    assert (msg_p);
    lp_msg_t *msg = *msg_p;
    assert (msg);
    char dummy [8];
    if (!err) {
        err = dummy;
        errlen = sizeof (dummy);
    }
    lp_wire_out_t *out = (lp_wire_out_t *) calloc (1, sizeof (lp_wire_out_t));
    zlist_t *pieces = zlist_new ();
    zframe_t *parts [4] = { NULL, NULL, NULL, NULL };
    const void **data = NULL;
    size_t *sizes = NULL;
    uint8_t *digests = NULL;
    if (!out || !pieces)
        goto nomem;
    if (s_encode_maps (self, msg, lp_codec_encode_refer, pieces, parts, err, errlen))
        goto fail;
    if (s_signature_fits (zlist_size (pieces), err, errlen))
        goto fail;
    out->npieces = zlist_size (pieces);
    out->pieces = (lp_piece_t **) calloc (out->npieces + 1, sizeof (lp_piece_t *));
    //  The signed frames: 4 maps, then the pieces
    data = (const void **) malloc ((out->npieces + 4) * sizeof (void *));
    sizes = (size_t *) malloc ((out->npieces + 4) * sizeof (size_t));
    if (!out->pieces || !data || !sizes)
        goto nomem;
    for (size_t i = 0; i < out->npieces; i++) {
        lp_piece_t *piece = (lp_piece_t *) zlist_pop (pieces);
        out->pieces [i] = piece;
        data [4 + i] = piece->data;
        sizes [4 + i] = piece->size;
        if (piece->size > out->largest)
            out->largest = piece->size;
    }
    out->head = zmsg_dup (lp_msg_routing (msg));
    if (!out->head)
        goto nomem;
    if (zmsg_addmem (out->head, LP_DELIMITER, strlen (LP_DELIMITER)))
        goto nomem;
    for (int i = 0; i < 4; i++) {
        data [i] = zframe_data (parts [i]);
        sizes [i] = zframe_size (parts [i]);
        if (sizes [i] > out->largest)
            out->largest = sizes [i];
    }
    if (out->npieces) {
        digests = s_digests_new (self, data + 4, sizes + 4, out->npieces);
        if (!digests)
            goto nomem;
    }
    zframe_t *signature = s_signature_frame (self, data, sizes, digests,
                                             s_digests_size (out->npieces));
    if (!signature || zmsg_append (out->head, &signature)) {
        zframe_destroy (&signature);
        goto nomem;
    }
    for (int i = 0; i < 4; i++)
        if (zmsg_append (out->head, &parts [i]))
            goto nomem;
    goto done;

nomem:
    snprintf (err, errlen, "out of memory");
fail:
    lp_wire_out_destroy (&out);
done:
    free (data);
    free (sizes);
    free (digests);
    for (int i = 0; i < 4; i++)
        zframe_destroy (&parts [i]);
    if (pieces) {
        lp_piece_t *piece = (lp_piece_t *) zlist_pop (pieces);
        while (piece) {
            lp_piece_destroy (&piece);
            piece = (lp_piece_t *) zlist_pop (pieces);
        }
        zlist_destroy (&pieces);
    }
    lp_msg_destroy (msg_p);
    return out;
}

int
lp_wire_out_send (lp_wire_out_t **self_p, zsock_t *sock)
{
    assert (self_p);
    assert (sock);
    lp_wire_out_t *self = *self_p;
    assert (self);
    void *handle = zsock_resolve (sock);
    size_t nhead = zmsg_size (self->head);
    size_t n = 0;
    int rc = 0;
    for (zframe_t *frame = zmsg_first (self->head); frame; frame = zmsg_next (self->head)) {
        bool more = ++n < nhead || self->npieces > 0;
        if (zmq_send (handle, zframe_data (frame), zframe_size (frame),
                      more? ZMQ_SNDMORE: 0) < 0) {
            //  Only the first part can fail (a full queue, a timeout);
            //  the parts after it are always queued
            rc = -1;
            break;
        }
    }
    for (size_t i = 0; rc == 0 && i < self->npieces; i++) {
        lp_piece_t *piece = self->pieces [i];
        zmq_msg_t part;
        //  ZeroMQ frees the piece's reference (lp_piece_free) once sent
        if (zmq_msg_init_data (&part, LP_UNCONST (void *, piece->data), piece->size,
                               lp_piece_free, piece->hold)) {
            rc = -1;
            break;
        }
        piece->hold = NULL;
        if (zmq_msg_send (&part, handle, i + 1 < self->npieces? ZMQ_SNDMORE: 0) < 0) {
            zmq_msg_close (&part);
            rc = -1;
            break;
        }
    }
    int error = errno;
    lp_wire_out_destroy (self_p);
    errno = error;
    return rc;
}

int
lp_wire_send (lp_wire_t *self, lp_msg_t **msg_p, zsock_t *sock)
{
    assert (self);
    assert (sock);
    char err [256] = "";
    lp_wire_out_t *out = lp_wire_encode_out (self, msg_p, err, sizeof (err));
    if (!out) {
        zsys_error ("%s: cannot send message: %s", self->name, err);
        return -1;
    }
    return lp_wire_out_send (&out, sock);
}

//  ---------------------------------------------------------------------
//  Counts a drop, keeps its reason and logs it, at most once per peer per
//  LP_DROP_LOG_MSEC. peer is the first routing frame or NULL.

static void
s_drop (lp_wire_t *self, zframe_t *peer_frame, const char *format, ...)
{
    //  The kind: callers that know better set it after this call
    self->last_drop = LP_DROP_MALFORMED;
    lp_value_destroy (&self->refused);
    va_list args;
    va_start (args, format);
    vsnprintf (self->last_error, sizeof (self->last_error), format, args);
    va_end (args);
    self->dropped++;

    //  The peer's key is the hex of its whole identity; the log shows a
    //  prefix of it.
    char peer [2 * 255 + 1] = "-";
    bool cut = false;
    if (peer_frame && zframe_size (peer_frame) > 0) {
        size_t size = zframe_size (peer_frame);
        if (size > 255)
            size = 255;
        sodium_bin2hex (peer, sizeof (peer), zframe_data (peer_frame), size);
        cut = zframe_size (peer_frame) > LP_PEER_SHOW_BYTES;
    }
    s_peer_t *entry = (s_peer_t *) zhashx_lookup (self->peers, peer);
    if (!entry) {
        if (zhashx_size (self->peers) >= LP_DROP_LOG_PEERS) {
            //  Too many peers (identities are cheap to make): forget them
            s_peer_t *old = (s_peer_t *) zhashx_first (self->peers);
            while (old) {
                free (old);
                old = (s_peer_t *) zhashx_next (self->peers);
            }
            zhashx_purge (self->peers);
        }
        entry = (s_peer_t *) calloc (1, sizeof (s_peer_t));
        if (!entry)
            return;
        entry->logged_at = INT64_MIN;
        if (zhashx_insert (self->peers, peer, entry)) {
            free (entry);
            return;
        }
    }
    entry->dropped++;
    int64_t now = zclock_mono ();
    if (entry->logged_at == INT64_MIN || now - entry->logged_at >= LP_DROP_LOG_MSEC) {
        entry->logged_at = now;
        if (cut)
            peer [2 * LP_PEER_SHOW_BYTES] = 0;
        zsys_warning ("%s: dropped message from %s%s: %s (%" PRIu64 " dropped from this peer)",
                      self->name, peer, cut? "...": "", self->last_error, entry->dropped);
    }
}

//  Room for a digest block of dlen bytes at self->digests; 0 or -1.
static int
s_digests_room (lp_wire_t *self, size_t dlen)
{
    if (dlen <= self->digests_room)
        return 0;
    uint8_t *room = (uint8_t *) realloc (self->digests, dlen);
    if (!room)
        return -1;
    self->digests = room;
    self->digests_room = dlen;
    return 0;
}

//  Checks each buffer of the message last verified (frames from delim)
//  against its tag. Returns the index of the first buffer that does not
//  match, or -1 when all do.
static ssize_t
s_check_buffers (lp_wire_t *self, zframe_t **frames, size_t delim)
{
    for (size_t i = 0; i < self->nbuffers; i++) {
        zframe_t *buffer = frames [delim + LP_FRAME_BUFFERS + i];
        uint8_t tag [LP_DIGEST_TAG_BYTES];
        s_buffer_tag (self, self->digests, i, zframe_data (buffer), zframe_size (buffer), tag);
        if (sodium_memcmp (tag, self->digests + LP_DIGEST_NONCE_BYTES + i * LP_DIGEST_TAG_BYTES,
                           LP_DIGEST_TAG_BYTES) != 0)
            return (ssize_t) i;
    }
    return -1;
}

//  Frames of zmsg as an array, NULL when out of memory or empty.
static zframe_t **
s_frames (zmsg_t *zmsg, size_t *count_p)
{
    size_t count = zmsg_size (zmsg);
    *count_p = count;
    if (count == 0)
        return NULL;
    zframe_t **frames = (zframe_t **) malloc (count * sizeof (zframe_t *));
    if (!frames)
        return NULL;
    size_t n = 0;
    for (zframe_t *f = zmsg_first (zmsg); f; f = zmsg_next (zmsg))
        frames [n++] = f;
    return frames;
}

//  Decodes one frame that must be a map, buffers from delim+6 on; header
//  and parent_header refer to none (they are sent inline: forwarders
//  read them without checking buffers).
static lp_value_t *
s_decode_map (zframe_t **frames, size_t nframes, size_t delim, size_t index,
              char *err, size_t errlen)
{
    size_t first = delim + LP_WIRE_FRAMES_MIN;
    bool inline_only = index < delim + LP_FRAME_METADATA;
    lp_value_t *value = lp_codec_decode (zframe_data (frames [index]),
                                         zframe_size (frames [index]),
                                         inline_only? NULL: frames + first,
                                         inline_only? 0: nframes - first,
                                         err, errlen);
    if (value && lp_value_type (value) != LP_MAP) {
        snprintf (err, errlen, "not a map but %s", lp_type_name (lp_value_type (value)));
        lp_value_destroy (&value);
    }
    return value;
}

//  ---------------------------------------------------------------------
//  Steps 1-5 of the receive path on frames (see the top of the file).
//  Returns the header, or NULL after s_drop.

static lp_value_t *
s_verify (lp_wire_t *self, zframe_t **frames, size_t nframes, size_t *delim_p,
          bool guarded)
{
    if (nframes == 0) {
        s_drop (self, NULL, "empty message");
        return NULL;
    }
    size_t delim = 0;
    size_t delim_len = strlen (LP_DELIMITER);
    while (delim < nframes
       && !(zframe_size (frames [delim]) == delim_len
       &&   memcmp (zframe_data (frames [delim]), LP_DELIMITER, delim_len) == 0))
        delim++;
    if (delim == nframes) {
        s_drop (self, nframes > 1? frames [0]: NULL, "no delimiter (%zu frames)", nframes);
        return NULL;
    }
    zframe_t *peer = delim > 0? frames [0]: NULL;
    if (nframes - delim < LP_WIRE_FRAMES_MIN) {
        s_drop (self, peer, "%zu frames after the routing frames, need at least %d",
                nframes - delim, LP_WIRE_FRAMES_MIN);
        return NULL;
    }
    zframe_t *signature = frames [delim + LP_FRAME_SIGNATURE];
    size_t nbuffers = nframes - delim - LP_WIRE_FRAMES_MIN;
    size_t dlen = s_digests_size (nbuffers);
    if (s_digests_room (self, dlen)) {
        s_drop (self, peer, "out of memory");
        return NULL;
    }
    bool fits = s_digests_read (signature, nbuffers, self->digests) == 0;
    if (fits) {
        const void *maps [LP_DIGEST_MAPS];
        size_t sizes [LP_DIGEST_MAPS];
        for (size_t i = 0; i < LP_DIGEST_MAPS; i++) {
            maps [i] = zframe_data (frames [delim + LP_WIRE_SIGNED_FIRST + i]);
            sizes [i] = zframe_size (frames [delim + LP_WIRE_SIGNED_FIRST + i]);
        }
        char expected [LP_SIGNATURE_HEX_CHARS + 1];
        s_signature (self, maps, sizes, self->digests, dlen, expected);
        fits = sodium_memcmp (zframe_data (signature), expected, LP_SIGNATURE_HEX_CHARS) == 0;
    }
    if (!fits) {
        s_drop (self, peer, zframe_size (signature)? "bad signature": "missing signature");
        self->last_drop = LP_DROP_SIGNATURE;
        return NULL;
    }
    self->nbuffers = nbuffers;
    char reason [200] = "";
    lp_value_t *header = s_decode_map (frames, nframes, delim, delim + LP_FRAME_HEADER,
                                       reason, sizeof (reason));
    if (!header) {
        s_drop (self, peer, "malformed header: %s", reason);
        return NULL;
    }
    const lp_value_t *msg_id = lp_value_get (header, LP_HDR_MSG_ID);
    const lp_value_t *msg_type = lp_value_get (header, LP_HDR_MSG_TYPE);
    if (!msg_id || lp_value_type (msg_id) != LP_STRING
    ||  lp_value_len (msg_id) == 0 || lp_value_len (msg_id) > LP_MSG_ID_MAX_CHARS
    ||  strlen (lp_value_as_string (msg_id, NULL)) != lp_value_len (msg_id)) {
        s_drop (self, peer, "header has no valid msg_id");
        lp_value_destroy (&header);
        return NULL;
    }
    if (!msg_type || lp_value_type (msg_type) != LP_STRING) {
        s_drop (self, peer, "header has no msg_type string");
        lp_value_destroy (&header);
        return NULL;
    }
    const char *id = lp_value_as_string (msg_id, NULL);
    const lp_value_t *date_value = lp_value_get (header, LP_HDR_DATE);
    const char *date = date_value && lp_value_type (date_value) == LP_STRING
                     ? lp_value_as_string (date_value, NULL): NULL;
    int refusal = guarded? lp_guard_admit (self->guard, id, date, reason, sizeof (reason)): 0;
    if (refusal != 0) {
        s_drop (self, peer, "%s", reason);
        if (refusal == LP_GUARD_REPLAY) {
            self->last_drop = LP_DROP_REPLAY;
            lp_value_destroy (&header);
        }
        else {
            //  Signed, not a replay: kept for a forwarder to answer
            self->last_drop = refusal == LP_GUARD_DATE? LP_DROP_DATE: LP_DROP_FULL;
            self->refused = header;
            self->refused_delim = delim;
        }
        return NULL;
    }
    *delim_p = delim;
    return header;
}

static lp_value_t *
s_verify_zmsg (lp_wire_t *self, zmsg_t *zmsg, size_t *delim_p, bool guarded)
{
    assert (self);
    assert (zmsg);
    size_t nframes;
    zframe_t **frames = s_frames (zmsg, &nframes);
    if (!frames && nframes) {
        s_drop (self, NULL, "out of memory");
        return NULL;
    }
    size_t delim = 0;
    lp_value_t *header = s_verify (self, frames, nframes, &delim, guarded);
    free (frames);
    if (header && delim_p)
        *delim_p = delim;
    return header;
}

lp_value_t *
lp_wire_verify (lp_wire_t *self, zmsg_t *zmsg, size_t *delim_p)
{
    return s_verify_zmsg (self, zmsg, delim_p, true);
}

lp_value_t *
lp_wire_verify_reply (lp_wire_t *self, zmsg_t *zmsg, size_t *delim_p)
{
    return s_verify_zmsg (self, zmsg, delim_p, false);
}

//  ---------------------------------------------------------------------
//  Forwarder helpers: frames of a message already verified (or built by
//  this process), addressed relative to its delimiter.

zframe_t *
lp_wire_frame (zmsg_t *zmsg, size_t delim, size_t offset)
{
    size_t nframes = zmsg_size (zmsg);
    if (nframes < delim + LP_WIRE_FRAMES_MIN || nframes <= delim + offset)
        return NULL;
    size_t i = 0;
    zframe_t *frame = zmsg_first (zmsg);
    for (; frame && i < delim; i++)
        frame = zmsg_next (zmsg);
    if (!frame || zframe_size (frame) != strlen (LP_DELIMITER)
    ||  memcmp (zframe_data (frame), LP_DELIMITER, strlen (LP_DELIMITER)) != 0)
        return NULL;
    for (i = 0; frame && i < offset; i++)
        frame = zmsg_next (zmsg);
    return frame;
}

int
lp_wire_resign (lp_wire_t *self, zmsg_t *zmsg, size_t delim)
{
    assert (self);
    assert (zmsg);
    if (!lp_wire_frame (zmsg, delim, LP_FRAME_DELIMITER))
        return -1;
    return s_sign_zmsg (self, zmsg, delim);
}

lp_value_t *
lp_wire_decode_frame (zmsg_t *zmsg, size_t delim, size_t which, char *err, size_t errlen)
{
    assert (zmsg);
    char dummy [8];
    if (!err) {
        err = dummy;
        errlen = sizeof (dummy);
    }
    if (which < LP_FRAME_HEADER || which > LP_FRAME_CONTENT) {
        snprintf (err, errlen, "frame %zu is not a map frame", which);
        return NULL;
    }
    if (!lp_wire_frame (zmsg, delim, which)) {
        snprintf (err, errlen, "no delimiter at frame %zu, or too few frames", delim);
        return NULL;
    }
    size_t nframes;
    zframe_t **frames = s_frames (zmsg, &nframes);
    if (!frames) {
        snprintf (err, errlen, "out of memory");
        return NULL;
    }
    lp_value_t *map = s_decode_map (frames, nframes, delim, delim + which, err, errlen);
    free (frames);
    return map;
}

lp_value_t *
lp_wire_parent (zmsg_t *zmsg, size_t delim, char *err, size_t errlen)
{
    return lp_wire_decode_frame (zmsg, delim, LP_FRAME_PARENT, err, errlen);
}

const char *
lp_wire_map_string (const lp_value_t *map, const char *key)
{
    if (!map || lp_value_type (map) != LP_MAP)
        return NULL;
    const lp_value_t *value = lp_value_get (map, key);
    if (!value || lp_value_type (value) != LP_STRING)
        return NULL;
    return lp_value_as_string (value, NULL);
}

int
lp_wire_replace (lp_wire_t *self, zmsg_t *zmsg, size_t delim, size_t which,
                 const lp_value_t *map)
{
    assert (self);
    assert (zmsg);
    assert (map);
    if (which < LP_FRAME_HEADER || which > LP_FRAME_CONTENT
    ||  lp_value_type (map) != LP_MAP)
        return -1;
    zframe_t *frame = lp_wire_frame (zmsg, delim, which);
    if (!frame)
        return -1;
    char err [200];
    //  Inline: the buffers' indices belong to the message's other frames
    zframe_t *encoded = lp_codec_encode_inline (map, err, sizeof (err));
    bool fits = encoded && zframe_size (encoded) <= LP_DATA_MAX_FRAME;
    if (!fits) {
        zframe_destroy (&encoded);
        return -1;
    }
    zframe_reset (frame, zframe_data (encoded), zframe_size (encoded));
    zframe_destroy (&encoded);
    return s_sign_zmsg (self, zmsg, delim);
}

//  ---------------------------------------------------------------------
//  Verifies, checks the buffers, then decodes everything into an
//  lp_msg_t. Strict (problem NULL): a message failing any step is
//  dropped and its msg_id given back to the guard. Lenient: once the
//  header is verified, a buffer or map that fails fills problem and
//  leaves the maps empty, so that the receiver can answer it.

static lp_msg_t *
s_decode (lp_wire_t *self, zmsg_t **zmsg_p, char *problem, size_t size)
{
    assert (self);
    assert (zmsg_p);
    zmsg_t *zmsg = *zmsg_p;
    if (!zmsg) {
        s_drop (self, NULL, "empty message");
        return NULL;
    }
    lp_msg_t *msg = NULL;
    lp_value_t *maps [3] = { NULL, NULL, NULL };
    size_t nframes;
    zframe_t **frames = s_frames (zmsg, &nframes);
    if (!frames && nframes) {
        s_drop (self, NULL, "out of memory");
        goto done;
    }
    size_t delim = 0;
    lp_value_t *header = s_verify (self, frames, nframes, &delim, true);
    if (!header)
        goto done;
    zframe_t *peer = delim > 0? frames [0]: NULL;
    char reason [200] = "";
    ssize_t bad = s_check_buffers (self, frames, delim);
    if (bad >= 0)
        snprintf (reason, sizeof (reason), "buffer %zd does not match its digest", bad);
    static const char *names [3] = { "parent_header", "metadata", "content" };
    for (int i = 0; i < 3 && bad < 0; i++) {
        char why [160] = "";
        maps [i] = s_decode_map (frames, nframes, delim, delim + LP_FRAME_PARENT + i,
                                 why, sizeof (why));
        if (!maps [i]) {
            snprintf (reason, sizeof (reason), "malformed %s: %s", names [i], why);
            bad = i;
        }
    }
    if (bad >= 0) {
        for (int i = 0; i < 3; i++)
            lp_value_destroy (&maps [i]);
        if (!problem) {
            s_drop (self, peer, "%s", reason);
            lp_guard_forget (self->guard, lp_value_as_string (
                             lp_value_get (header, LP_HDR_MSG_ID), NULL));
            lp_value_destroy (&header);
            goto done;
        }
        snprintf (problem, size, "%s", reason);
        for (int i = 0; i < 3; i++)
            maps [i] = lp_value_map ();
    }
    msg = lp_msg_new_empty ();
    zmsg_t *routing = zmsg_new ();
    if (!msg || !routing || !maps [0] || !maps [1] || !maps [2]) {
        zmsg_destroy (&routing);
        lp_msg_destroy (&msg);
        lp_guard_forget (self->guard, lp_value_as_string (
                         lp_value_get (header, LP_HDR_MSG_ID), NULL));
        lp_value_destroy (&header);
        s_drop (self, peer, "out of memory");
        goto done;
    }
    //  Move the routing frames over; the rest goes with zmsg
    for (size_t i = 0; i < delim; i++) {
        zframe_t *frame = zmsg_pop (zmsg);
        assert (frame == frames [i]);
        if (zmsg_append (routing, &frame))
            zframe_destroy (&frame);
    }
    lp_msg_set_routing (msg, &routing);
    lp_msg_set_header (msg, header);
    lp_msg_set_parent (msg, maps [0]);
    lp_msg_set_metadata (msg, maps [1]);
    lp_msg_set_content (msg, maps [2]);
    maps [0] = maps [1] = maps [2] = NULL;
done:
    for (int i = 0; i < 3; i++)
        lp_value_destroy (&maps [i]);
    free (frames);
    zmsg_destroy (zmsg_p);
    return msg;
}

lp_msg_t *
lp_wire_decode (lp_wire_t *self, zmsg_t **zmsg_p)
{
    return s_decode (self, zmsg_p, NULL, 0);
}

lp_msg_t *
lp_wire_decode_request (lp_wire_t *self, zmsg_t **zmsg_p, char *problem, size_t size)
{
    assert (problem && size > 0);
    problem [0] = 0;
    return s_decode (self, zmsg_p, problem, size);
}

lp_msg_t *
lp_wire_recv (lp_wire_t *self, zsock_t *sock)
{
    assert (self);
    assert (sock);
    zmsg_t *zmsg = zmsg_recv (sock);
    if (!zmsg)
        return NULL;                //  interrupted or timed out
    return lp_wire_decode (self, &zmsg);
}

lp_msg_t *
lp_wire_recv_request (lp_wire_t *self, zsock_t *sock, char *problem, size_t size)
{
    assert (self);
    assert (sock);
    assert (problem && size > 0);
    problem [0] = 0;
    zmsg_t *zmsg = zmsg_recv (sock);
    if (!zmsg)
        return NULL;                //  interrupted or timed out
    return lp_wire_decode_request (self, &zmsg, problem, size);
}

//  ---------------------------------------------------------------------
//  Frame cap against memory bombs, unlimited queues (we never drop
//  silently: a full queue blocks the sender), short linger on close.

void
lp_wire_tune_socket (zsock_t *sock)
{
    assert (sock);
    zsock_set_maxmsgsize (sock, LP_DATA_MAX_FRAME);
    zsock_set_sndhwm (sock, 0);
    zsock_set_rcvhwm (sock, 0);
    zsock_set_linger (sock, LP_LINGER_MSEC);
}

//  ---------------------------------------------------------------------
//  Self-test

//  A request with nested content and a typed array of `count` float64.
static lp_msg_t *
s_test_request (size_t count)
{
    lp_msg_t *msg = lp_msg_new (LP_APPLY_REQUEST);
    assert (msg);
    lp_value_t *content = lp_msg_content (msg);
    assert (lp_value_set (content, "fn", lp_value_string ("function(t) return #t end")) == 0);
    lp_value_t *args = lp_value_array ();
    assert (args);
    lp_value_t *inner = lp_value_map ();
    assert (inner);
    assert (lp_value_set (inner, "name", lp_value_string ("x\xc3\xa9")) == 0);
    assert (lp_value_set (inner, "list", lp_value_int_range (1, 5)) == 0);
    assert (lp_value_set (inner, "pi", lp_value_number (3.25)) == 0);
    assert (lp_value_set (inner, "ok", lp_value_bool (true)) == 0);
    assert (lp_value_set (inner, "none", lp_value_nil ()) == 0);
    assert (lp_value_set (inner, "raw", lp_value_bytes ("\x00\xff", 2)) == 0);
    assert (lp_value_append (args, inner) == 0);
    lp_value_t *typed = lp_value_typed (LP_DTYPE_F64, count);
    assert (typed);
    double *data = (double *) lp_value_typed_data (typed);
    for (size_t i = 0; i < count; i++)
        data [i] = (double) i * 0.5;
    assert (lp_value_append (args, typed) == 0);
    assert (lp_value_set (content, "args", args) == 0);
    assert (lp_value_set (lp_msg_metadata (msg), "engine", lp_value_int (3)) == 0);
    return msg;
}

//  A free function of a caller's own, counted
static int s_test_frees;
static void
s_test_free (void *data)
{
    s_test_frees++;
    free (data);
}

//  Decodes a copy of zmsg and expects a drop whose reason contains `why`.
static void
s_expect_drop (lp_wire_t *wire, zmsg_t *zmsg, const char *why, bool verbose)
{
    uint64_t before = lp_wire_dropped (wire);
    zmsg_t *copy = zmsg_dup (zmsg);
    assert (copy);
    lp_msg_t *msg = lp_wire_decode (wire, &copy);
    assert (copy == NULL);
    if (msg)
        { printf ("\nexpected drop (%s), got a message\n", why); fflush (stdout); }
    assert (msg == NULL);
    assert (lp_wire_dropped (wire) == before + 1);
    if (verbose)
        printf ("\n    dropped: %s", lp_wire_last_error (wire));
    if (!strstr (lp_wire_last_error (wire), why))
        printf ("\nexpected '%s' in '%s'\n", why, lp_wire_last_error (wire));
    assert (strstr (lp_wire_last_error (wire), why));
}

//  70 KiB of filler (a string that goes out of band when not inline)
static const char *
s_filler (void)
{
    static char fill [70 * 1024];
    memset (fill, 'f', sizeof (fill));
    return fill;
}

//  Replaces frame index of zmsg by the given bytes (a new zmsg).
static zmsg_t *
s_with_frame (zmsg_t *zmsg, size_t index, const void *data, size_t size)
{
    zmsg_t *copy = zmsg_new ();
    assert (copy);
    size_t i = 0;
    for (zframe_t *f = zmsg_first (zmsg); f; f = zmsg_next (zmsg), i++) {
        if (i == index)
            assert (zmsg_addmem (copy, data, size) == 0);
        else
            assert (zmsg_addmem (copy, zframe_data (f), zframe_size (f)) == 0);
    }
    return copy;
}

//  A fresh signed message whose content is zero or more raw frames,
//  given as (data, size) pairs for header/parent/metadata/content.
static zmsg_t *
s_signed_raw (lp_wire_t *wire, const void *header, size_t header_size,
              const void *content, size_t content_size)
{
    zmsg_t *zmsg = zmsg_new ();
    assert (zmsg);
    assert (zmsg_addstr (zmsg, "peer") == 0);
    assert (zmsg_addstr (zmsg, LP_DELIMITER) == 0);
    assert (zmsg_addstr (zmsg, "") == 0);
    assert (zmsg_addmem (zmsg, header, header_size) == 0);
    assert (zmsg_addmem (zmsg, "\x80", 1) == 0);
    assert (zmsg_addmem (zmsg, "\x80", 1) == 0);
    assert (zmsg_addmem (zmsg, content, content_size) == 0);
    assert (s_sign_zmsg (wire, zmsg, 1) == 0);
    return zmsg;
}

void
lp_wire_test (bool verbose)
{
    printf (" * wire: ");
    fflush (stdout);
    //  @selftest
    //  Drop log lines go to a file we read back at the end
    FILE *log = tmpfile ();
    assert (log);
    zsys_set_logstream (log);
    uint8_t key [LP_KEY_BYTES];
    for (size_t i = 0; i < sizeof (key); i++)
        key [i] = (uint8_t) i;
    assert (lp_wire_new (key, 4, "short") == NULL);       //  key too short
    lp_wire_t *sender = lp_wire_new (key, sizeof (key), "test/sender");
    lp_wire_t *receiver = lp_wire_new (key, sizeof (key), "test/receiver");
    assert (sender && receiver);
    assert (strlen (lp_wire_session (sender)) == LP_ID_CHARS);
    assert (!streq (lp_wire_session (sender), lp_wire_session (receiver)));
    assert (lp_wire_dropped (receiver) == 0);
    assert (streq (lp_wire_last_error (receiver), ""));

    //  1. Encode / decode a message with nested content and a 5 MB array
    size_t count = 5 * 1024 * 1024 / sizeof (double);
    lp_msg_t *msg = s_test_request (count);
    lp_value_t *content_copy = lp_value_dup (lp_msg_content (msg));
    assert (content_copy);
    char msg_id [LP_ID_CHARS + 1];
    snprintf (msg_id, sizeof (msg_id), "%s", lp_msg_id (msg));
    zmsg_t *routing = zmsg_new ();
    assert (routing);
    assert (zmsg_addstr (routing, "hop-1") == 0);
    assert (zmsg_addstr (routing, "hop-2") == 0);
    lp_msg_set_routing (msg, &routing);
    char err [256] = "";
    zmsg_t *zmsg = lp_wire_encode (sender, &msg, err, sizeof (err));
    assert (zmsg);
    assert (msg == NULL);
    //  routing, delimiter, signature, 4 maps, 5 pieces of 1 MiB
    assert (zmsg_size (zmsg) == 2 + 1 + 1 + 4 + 5);
    zframe_t *frame = zmsg_first (zmsg);
    assert (zframe_streq (frame, "hop-1"));
    frame = zmsg_next (zmsg);
    assert (zframe_streq (frame, "hop-2"));
    frame = zmsg_next (zmsg);
    assert (zframe_streq (frame, LP_DELIMITER));
    frame = zmsg_next (zmsg);
    //  signature, then the digest block of the 5 buffers
    assert (zframe_size (frame) == LP_SIGNATURE_HEX_CHARS + 2 * s_digests_size (5));
    for (size_t i = 0; i < zframe_size (frame); i++) {
        char c = (char) zframe_data (frame) [i];
        assert ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'));
    }
    zmsg_t *good = zmsg_dup (zmsg);      //  kept for the attacks below
    assert (good);

    //  verify() for forwarders: header + delimiter index, message untouched
    lp_wire_t *forwarder = lp_wire_new (key, sizeof (key), "test/forwarder");
    assert (forwarder);
    size_t delim = 0;
    lp_value_t *header = lp_wire_verify (forwarder, zmsg, &delim);
    assert (header);
    assert (delim == 2);
    assert (streq (lp_value_as_string (lp_value_get (header, "msg_id"), NULL), msg_id));
    assert (streq (lp_value_as_string (lp_value_get (header, "session"), NULL),
                   lp_wire_session (sender)));
    assert (zmsg_size (zmsg) == 13);
    lp_value_destroy (&header);
    //  verify() also guards replay
    header = lp_wire_verify (forwarder, zmsg, &delim);
    assert (header == NULL);
    assert (lp_wire_dropped (forwarder) == 1);
    assert (strstr (lp_wire_last_error (forwarder), "replayed"));
    lp_wire_destroy (&forwarder);

    msg = lp_wire_decode (receiver, &zmsg);
    assert (zmsg == NULL);
    assert (msg);
    assert (streq (lp_msg_id (msg), msg_id));
    assert (streq (lp_msg_type (msg), LP_APPLY_REQUEST));
    assert (lp_value_equal (lp_msg_content (msg), content_copy));
    assert (lp_msg_get_int (msg, "nothing", -5) == -5);
    assert (lp_value_as_int (lp_value_get (lp_msg_metadata (msg), "engine")) == 3);
    assert (lp_value_len (lp_msg_parent (msg)) == 0);
    routing = lp_msg_routing (msg);
    assert (zmsg_size (routing) == 2);
    assert (zframe_streq (zmsg_first (routing), "hop-1"));
    assert (zframe_streq (zmsg_next (routing), "hop-2"));
    lp_msg_destroy (&msg);
    assert (lp_wire_dropped (receiver) == 0);

    //  2. Attacks on the good message, each dropped and counted
    lp_wire_t *fresh = lp_wire_new (key, sizeof (key), "test/fresh");
    assert (fresh);
    s_expect_drop (receiver, good, "replayed msg_id", verbose);

    //  Wrong key
    uint8_t other_key [LP_KEY_BYTES];
    memcpy (other_key, key, sizeof (key));
    other_key [0] ^= 1;
    lp_wire_t *stranger = lp_wire_new (other_key, sizeof (other_key), "test/stranger");
    assert (stranger);
    s_expect_drop (stranger, good, "bad signature", verbose);
    assert (lp_wire_last_drop (stranger) == LP_DROP_SIGNATURE);
    lp_wire_destroy (&stranger);

    //  A flipped bit in each frame from the delimiter on (routing frames
    //  are not signed: the next hop rewrites them)
    size_t nframes = zmsg_size (good);
    for (size_t index = 2; index < nframes; index++) {
        size_t i = 0;
        zframe_t *f;
        for (f = zmsg_first (good); i < index; f = zmsg_next (good))
            i++;
        size_t size = zframe_size (f);
        byte *data = (byte *) malloc (size);
        assert (data);
        memcpy (data, zframe_data (f), size);
        for (size_t bit = 0; bit < 3; bit++) {
            size_t at = (size - 1) * bit / 2;       //  first, middle, last byte
            data [at] ^= (byte) (1 << (bit + 1));
            zmsg_t *bad = s_with_frame (good, index, data, size);
            //  A buffer is bound by its tag, not by the signature
            s_expect_drop (fresh, bad, index == 2? "no delimiter"
                                     : index >= 2 + LP_FRAME_BUFFERS? "does not match its digest"
                                     : "bad signature", verbose);
            zmsg_destroy (&bad);
            data [at] ^= (byte) (1 << (bit + 1));
        }
        free (data);
    }
    //  Upper-case hex is not our signature
    {
        zframe_t *f = zmsg_first (good);
        f = zmsg_next (good);
        f = zmsg_next (good);
        f = zmsg_next (good);
        char upper [LP_SIGNATURE_HEX_CHARS];
        memcpy (upper, zframe_data (f), sizeof (upper));
        for (size_t i = 0; i < sizeof (upper); i++)
            upper [i] = (char) toupper ((unsigned char) upper [i]);
        bool has_letter = false;
        for (size_t i = 0; i < sizeof (upper); i++)
            has_letter |= upper [i] >= 'A' && upper [i] <= 'F';
        if (has_letter) {
            zmsg_t *bad = s_with_frame (good, 3, upper, sizeof (upper));
            s_expect_drop (fresh, bad, "bad signature", verbose);
            zmsg_destroy (&bad);
        }
        zmsg_t *bad = s_with_frame (good, 3, "", 0);
        s_expect_drop (fresh, bad, "missing signature", verbose);
        zmsg_destroy (&bad);
    }
    //  Missing frames: drop the last buffer (signature no longer matches),
    //  and cut down to fewer than 6 frames after the routing
    zmsg_t *cut = zmsg_dup (good);
    assert (cut);
    frame = zmsg_last (cut);
    zmsg_remove (cut, frame);
    zframe_destroy (&frame);
    s_expect_drop (fresh, cut, "bad signature", verbose);
    while (zmsg_size (cut) > 2 + 5) {
        frame = zmsg_last (cut);
        zmsg_remove (cut, frame);
        zframe_destroy (&frame);
    }
    s_expect_drop (fresh, cut, "5 frames after the routing frames", verbose);
    zmsg_destroy (&cut);

    //  Empty message, NULL message, garbage
    zmsg_t *empty = zmsg_new ();
    assert (empty);
    s_expect_drop (fresh, empty, "empty message", verbose);
    zmsg_destroy (&empty);
    zmsg_t *none = NULL;
    assert (lp_wire_decode (fresh, &none) == NULL);
    zmsg_t *garbage = zmsg_new ();
    assert (garbage);
    for (int i = 0; i < 8; i++) {
        byte junk [40];
        randombytes_buf (junk, sizeof (junk));
        assert (zmsg_addmem (garbage, junk, (size_t) (i * 5)) == 0);
    }
    s_expect_drop (fresh, garbage, "no delimiter", verbose);
    //  Garbage after a delimiter: 6+ frames, but no valid signature
    assert (zmsg_pushstr (garbage, LP_DELIMITER) == 0);
    assert (zmsg_pushstr (garbage, "peer") == 0);
    s_expect_drop (fresh, garbage, "signature", verbose);
    zmsg_destroy (&garbage);

    //  3. Signed but malformed: truncated msgpack in each map frame
    zmsg_t *valid = zmsg_dup (good);
    assert (valid);
    for (size_t index = 4; index <= 7; index++) {
        size_t i = 0;
        zframe_t *f;
        for (f = zmsg_first (good); i < index; f = zmsg_next (good))
            i++;
        if (zframe_size (f) < 2)
            continue;                       //  0x80: nothing to truncate
        zmsg_t *bad = s_with_frame (good, index, zframe_data (f), zframe_size (f) - 1);
        assert (s_sign_zmsg (sender, bad, 2) == 0);
        s_expect_drop (fresh, bad, index == 4? "malformed header"
                                             : index == 7? "malformed content"
                                             : "malformed", verbose);
        zmsg_destroy (&bad);
    }
    //  A buffer changed under a valid signature: re-signing keeps the
    //  digest block, so the buffer no longer matches its tag
    {
        frame = zmsg_last (good);
        zmsg_t *bad = s_with_frame (good, nframes - 1, zframe_data (frame), zframe_size (frame) - 3);
        assert (s_sign_zmsg (sender, bad, 2) == 0);
        //  A forwarder checks the signature only, and passes it on
        zmsg_t *passed = zmsg_dup (bad);
        assert (passed);
        lp_wire_t *relay = lp_wire_new (key, sizeof (key), "test/relay");
        assert (relay);
        lp_value_t *verified = lp_wire_verify (relay, passed, NULL);
        assert (verified);
        lp_value_destroy (&verified);
        lp_wire_destroy (&relay);
        zmsg_destroy (&passed);
        s_expect_drop (fresh, bad, "buffer 4 does not match its digest", verbose);
        zmsg_destroy (&bad);
        //  The same tampering of a swapped-in byte, decoded leniently:
        //  the request comes back with empty maps and the reason
        bad = s_with_frame (good, nframes - 2, "x", 1);
        assert (s_sign_zmsg (sender, bad, 2) == 0);
        char problem [200];
        lp_wire_t *engine = lp_wire_new (key, sizeof (key), "test/engine");
        assert (engine);
        lp_msg_t *lenient = lp_wire_decode_request (engine, &bad, problem, sizeof (problem));
        lp_wire_destroy (&engine);
        assert (lenient);
        assert (strstr (problem, "buffer 3 does not match its digest"));
        assert (lp_value_len (lp_msg_content (lenient)) == 0);
        lp_msg_destroy (&lenient);
    }
    //  Truncated buffer frame, signed anew: not a whole number of float64s
    {
        frame = zmsg_last (good);
        zmsg_t *bad = s_with_frame (good, nframes - 1, zframe_data (frame), zframe_size (frame) - 3);
        zmsg_t *unsigned_bad = s_with_frame (bad, 3, "", 0);       //  no digests: made anew
        zmsg_destroy (&bad);
        assert (s_sign_zmsg (sender, unsigned_bad, 2) == 0);
        s_expect_drop (fresh, unsigned_bad, "malformed content", verbose);
        zmsg_destroy (&unsigned_bad);
    }
    //  Empty parent frame and metadata that is not a map
    {
        zmsg_t *bad = s_with_frame (good, 5, "", 0);
        assert (s_sign_zmsg (sender, bad, 2) == 0);
        s_expect_drop (fresh, bad, "malformed parent_header", verbose);
        zmsg_destroy (&bad);
        bad = s_with_frame (good, 6, "\x91\x01", 2);           //  [1]
        assert (s_sign_zmsg (sender, bad, 2) == 0);
        s_expect_drop (fresh, bad, "malformed metadata: not a map", verbose);
        zmsg_destroy (&bad);
        bad = s_with_frame (good, 7, "\x80\x80", 2);           //  two objects
        assert (s_sign_zmsg (sender, bad, 2) == 0);
        s_expect_drop (fresh, bad, "malformed content", verbose);
        zmsg_destroy (&bad);
        //  Array header declaring 2^32-1 elements in 5 bytes
        bad = s_with_frame (good, 7, "\xdd\xff\xff\xff\xff", 5);
        assert (s_sign_zmsg (sender, bad, 2) == 0);
        s_expect_drop (fresh, bad, "malformed content", verbose);
        zmsg_destroy (&bad);
    }
    //  Headers without a msg_id / msg_type string
    {
        //  {"msg_type": "x"}
        const char no_id [] = "\x81\xa8msg_type\xa1x";
        zmsg_t *bad = s_signed_raw (sender, no_id, sizeof (no_id) - 1, "\x80", 1);
        s_expect_drop (fresh, bad, "msg_id", verbose);
        zmsg_destroy (&bad);
        //  {"msg_id": 5, "msg_type": "x"}
        const char int_id [] = "\x82\xa6msg_id\x05\xa8msg_type\xa1x";
        bad = s_signed_raw (sender, int_id, sizeof (int_id) - 1, "\x80", 1);
        s_expect_drop (fresh, bad, "msg_id", verbose);
        zmsg_destroy (&bad);
        //  {"msg_id": "abc"}
        const char no_type [] = "\x81\xa6msg_id\xa3" "abc";
        bad = s_signed_raw (sender, no_type, sizeof (no_type) - 1, "\x80", 1);
        s_expect_drop (fresh, bad, "msg_type", verbose);
        zmsg_destroy (&bad);
        //  {"msg_id": "abd", "msg_type": "x"}: accepted, then replayed
        const char minimal [] = "\x82\xa6msg_id\xa3" "abd\xa8msg_type\xa1x";
        zmsg_t *ok = s_signed_raw (sender, minimal, sizeof (minimal) - 1, "\x80", 1);
        zmsg_t *copy = zmsg_dup (ok);
        msg = lp_wire_decode (fresh, &copy);
        assert (msg);
        assert (streq (lp_msg_type (msg), "x"));
        assert (zmsg_size (lp_msg_routing (msg)) == 1);
        lp_msg_destroy (&msg);
        s_expect_drop (fresh, ok, "replayed msg_id abd", verbose);
        zmsg_destroy (&ok);
    }
    //  After all that, the untouched message still decodes on a new wire
    msg = lp_wire_decode (fresh, &valid);
    assert (msg);
    lp_msg_destroy (&msg);
    zmsg_destroy (&good);
    lp_wire_destroy (&fresh);

    //  4. Replay guard by count (engines, clients): ids older than
    //  LP_REPLAY_WINDOW are forgotten
    {
        lp_wire_t *small = lp_wire_new (key, sizeof (key), "test/window");
        assert (small);
        lp_guard_t *guard = lp_wire_guard (small);
        assert (lp_guard_window_msec (guard) == 0);
        char id [LP_ID_CHARS + 1];
        for (size_t i = 0; i < LP_REPLAY_WINDOW; i++) {
            snprintf (id, sizeof (id), "id-%zu", i);
            assert (lp_guard_admit (guard, id, NULL, NULL, 0) == 0);
        }
        assert (lp_guard_admit (guard, "id-0", NULL, NULL, 0) == -1);
        assert (lp_guard_admit (guard, "id-new", NULL, NULL, 0) == 0);   //  evicts id-0
        assert (lp_guard_admit (guard, "id-0", NULL, NULL, 0) == 0);     //  evicts id-1
        assert (lp_guard_admit (guard, "id-2", NULL, NULL, 0) == -1);
        assert (lp_guard_size (guard) == LP_REPLAY_WINDOW);
        lp_wire_destroy (&small);
    }

    //  4b. The controller's shared guard by time: an id seen by one wire
    //  is a replay on another; an old or future date is refused; a
    //  request replayed after more than 65,536 others is still refused
    {
        lp_guard_t *shared = lp_guard_new (60000, LP_REPLAY_MAX_IDS);
        assert (shared);
        lp_wire_t *mux = lp_wire_new (key, sizeof (key), "test/mux");
        lp_wire_t *task = lp_wire_new (key, sizeof (key), "test/task");
        assert (mux && task);
        lp_wire_set_guard (mux, shared);
        lp_wire_set_guard (task, shared);
        assert (lp_wire_guard (task) == shared);
        lp_msg_t *request = lp_msg_new (LP_EXECUTE_REQUEST);
        assert (request);
        zmsg_t *captured = lp_wire_encode (sender, &request, err, sizeof (err));
        assert (captured);
        zmsg_t *copy = zmsg_dup (captured);
        assert (copy);
        lp_value_t *verified = lp_wire_verify (mux, copy, NULL);
        assert (verified);
        lp_value_destroy (&verified);
        zmsg_destroy (&copy);
        s_expect_drop (task, captured, "replayed msg_id", verbose);
        for (int i = 0; i < 70000; i++) {
            lp_msg_t *other = lp_msg_new (LP_EXECUTE_REQUEST);
            assert (other);
            zmsg_t *z = lp_wire_encode (sender, &other, err, sizeof (err));
            assert (z);
            lp_value_t *h = lp_wire_verify (i % 2? mux: task, z, NULL);
            assert (h);
            lp_value_destroy (&h);
            zmsg_destroy (&z);
        }
        s_expect_drop (mux, captured, "replayed msg_id", verbose);
        assert (lp_wire_last_drop (mux) == LP_DROP_REPLAY);
        assert (lp_wire_take_refused (mux, NULL) == NULL);
        zmsg_destroy (&captured);
        //  A request dated 61 s ago, or 61 s ahead, or with no date
        char stamp [32];
        const int64_t offsets [2] = { -61000000, 61000000 };
        for (int i = 0; i < 2; i++) {
            int64_t when = lp_util_wall_usec () + offsets [i];
            time_t secs = (time_t) (when / 1000000);
            struct tm tm;
            gmtime_r (&secs, &tm);
            strftime (stamp, sizeof (stamp), "%Y-%m-%dT%H:%M:%S.000000Z", &tm);
            lp_msg_t *old = lp_msg_new (LP_EXECUTE_REQUEST);
            assert (old);
            assert (lp_value_set (lp_msg_header (old), LP_HDR_DATE, lp_value_string (stamp)) == 0);
            zmsg_t *z = lp_wire_encode (sender, &old, err, sizeof (err));
            assert (z);
            s_expect_drop (mux, z, i == 0? "older than the replay window": "in the future", verbose);
            //  Not a replay: a forwarder gets its header to answer it
            assert (lp_wire_last_drop (mux) == LP_DROP_DATE);
            size_t refused_delim = 99;
            lp_value_t *refused = lp_wire_take_refused (mux, &refused_delim);
            assert (refused);
            assert (refused_delim == 0);
            assert (streq (lp_wire_map_string (refused, LP_HDR_DATE), stamp));
            lp_value_destroy (&refused);
            assert (lp_wire_take_refused (mux, NULL) == NULL);
            //  Engines and clients do not judge dates
            lp_wire_t *engine = lp_wire_new (key, sizeof (key), "test/engine");
            assert (engine);
            lp_msg_t *accepted = lp_wire_decode (engine, &z);
            assert (accepted);
            lp_msg_destroy (&accepted);
            lp_wire_destroy (&engine);
        }
        lp_msg_t *undated = lp_msg_new (LP_EXECUTE_REQUEST);
        assert (undated);
        lp_value_t *bad_date = lp_value_int (5);
        assert (lp_value_set (lp_msg_header (undated), LP_HDR_DATE, bad_date) == 0);
        zmsg_t *z = lp_wire_encode (sender, &undated, err, sizeof (err));
        assert (z);
        s_expect_drop (mux, z, "no valid date", verbose);
        zmsg_destroy (&z);
        //  A malformed message gives its id back to the shared guard
        lp_msg_t *later = lp_msg_new (LP_EXECUTE_REQUEST);
        assert (later);
        z = lp_wire_encode (sender, &later, err, sizeof (err));
        assert (z);
        zmsg_t *broken = s_with_frame (z, LP_FRAME_CONTENT, "\x91", 1);
        assert (s_sign_zmsg (sender, broken, 0) == 0);
        s_expect_drop (task, broken, "malformed content", verbose);
        zmsg_destroy (&broken);
        size_t before = lp_guard_size (shared);
        lp_msg_t *fine = lp_wire_decode (mux, &z);
        assert (fine);
        assert (lp_guard_size (shared) == before + 1);
        lp_msg_destroy (&fine);
        lp_wire_destroy (&mux);
        lp_wire_destroy (&task);
        lp_guard_destroy (&shared);
    }

    //  4c. Forwarder helpers: parent of a reply, metadata, replace and
    //  re-sign (a retry's new header; a reply's parent swapped back)
    {
        lp_msg_t *request = lp_msg_new (LP_APPLY_REQUEST);
        assert (request);
        zmsg_t *route = zmsg_new ();
        assert (route);
        assert (zmsg_addstr (route, "client") == 0);
        lp_msg_set_routing (request, &route);
        lp_msg_t *reply = lp_msg_new_reply (request, LP_APPLY_REPLY);
        assert (reply);
        assert (lp_value_set (lp_msg_metadata (reply), LP_META_ENAME,
                              lp_value_string ("Aborted")) == 0);
        char request_id [LP_ID_CHARS + 1];
        snprintf (request_id, sizeof (request_id), "%s", lp_msg_id (request));
        lp_value_t *original = lp_value_dup (lp_msg_header (request));
        assert (original);
        lp_msg_destroy (&request);
        zmsg_t *z = lp_wire_encode (sender, &reply, err, sizeof (err));
        assert (z);
        lp_value_t *parent = lp_wire_parent (z, 1, err, sizeof (err));
        assert (parent);
        assert (streq (lp_wire_map_string (parent, LP_HDR_MSG_ID), request_id));
        assert (lp_wire_map_string (parent, "nothing") == NULL);
        assert (lp_wire_map_string (NULL, LP_HDR_MSG_ID) == NULL);
        lp_value_t *meta = lp_wire_decode_frame (z, 1, LP_FRAME_METADATA, err, sizeof (err));
        assert (meta);
        assert (streq (lp_wire_map_string (meta, LP_META_ENAME), "Aborted"));
        lp_value_destroy (&meta);
        //  Wrong delimiter index, or a frame that is not a map frame
        assert (lp_wire_parent (z, 0, err, sizeof (err)) == NULL);
        assert (lp_wire_decode_frame (z, 1, LP_FRAME_SIGNATURE, err, sizeof (err)) == NULL);
        assert (lp_wire_resign (sender, z, 0) == -1);
        assert (lp_wire_replace (sender, z, 0, LP_FRAME_PARENT, parent) == -1);
        //  A retry: the parent gets a fresh msg_id, re-signed in place
        assert (lp_value_set (parent, LP_HDR_MSG_ID, lp_value_string ("attempt-2")) == 0);
        assert (lp_wire_replace (sender, z, 1, LP_FRAME_PARENT, parent) == 0);
        lp_value_destroy (&parent);
        zmsg_t *copy = zmsg_dup (z);
        lp_wire_t *check = lp_wire_new (key, sizeof (key), "test/check");
        assert (check);
        lp_msg_t *seen = lp_wire_decode (check, &copy);
        assert (seen);
        assert (streq (lp_msg_parent_id (seen), "attempt-2"));
        lp_msg_destroy (&seen);
        //  ... and the original header put back before the client sees it
        assert (lp_wire_replace (sender, z, 1, LP_FRAME_PARENT, original) == 0);
        //  A changed frame without re-signing is dropped; re-signed passes
        zframe_t *f = zmsg_first (z);
        for (int i = 0; i < 1 + LP_FRAME_METADATA; i++)
            f = zmsg_next (z);
        zframe_reset (f, "\x80", 1);
        lp_wire_t *check2 = lp_wire_new (key, sizeof (key), "test/check2");
        assert (check2);
        s_expect_drop (check2, z, "bad signature", verbose);
        assert (lp_wire_resign (sender, z, 1) == 0);
        seen = lp_wire_decode (check2, &z);
        assert (seen);
        assert (streq (lp_msg_parent_id (seen), request_id));
        assert (lp_value_equal (lp_msg_parent (seen), original));
        assert (lp_value_len (lp_msg_metadata (seen)) == 0);
        lp_msg_destroy (&seen);
        lp_value_destroy (&original);
        lp_wire_destroy (&check);
        lp_wire_destroy (&check2);
    }

    //  Encoding errors: content nested too deep is refused, msg destroyed
    {
        msg = lp_msg_new (LP_EXECUTE_REQUEST);
        assert (msg);
        lp_value_t *deep = lp_value_int (1);
        for (int i = 0; i < 40; i++) {
            lp_value_t *outer = lp_value_array ();
            assert (outer);
            assert (lp_value_append (outer, deep) == 0);
            deep = outer;
        }
        assert (lp_value_set (lp_msg_content (msg), "deep", deep) == 0);
        err [0] = 0;
        assert (lp_wire_encode (sender, &msg, err, sizeof (err)) == NULL);
        assert (msg == NULL);
        assert (strstr (err, "cannot encode content: "));
        if (verbose)
            printf ("\n    encode error: %s", err);
    }

    //  5. Through real sockets: DEALER -> ROUTER and the reply back
    zsock_t *router = zsock_new_router ("@inproc://lp_wire_test");
    assert (router);
    zsock_t *dealer = zsock_new (ZMQ_DEALER);
    assert (dealer);
    zsock_set_identity (dealer, "engine-uuid");
    assert (zsock_connect (dealer, "inproc://lp_wire_test") == 0);
    lp_wire_tune_socket (router);
    lp_wire_tune_socket (dealer);
    assert (zsock_maxmsgsize (router) == LP_DATA_MAX_FRAME);
    assert (zsock_sndhwm (dealer) == 0);
    assert (zsock_linger (dealer) == LP_LINGER_MSEC);
    zsock_set_rcvtimeo (router, 20000);     //  generous: noisy machine
    zsock_set_rcvtimeo (dealer, 20000);

    msg = s_test_request (count);
    snprintf (msg_id, sizeof (msg_id), "%s", lp_msg_id (msg));
    assert (lp_wire_send (sender, &msg, dealer) == 0);
    assert (msg == NULL);
    lp_msg_t *request = lp_wire_recv (receiver, router);
    assert (request);
    assert (streq (lp_msg_id (request), msg_id));
    assert (lp_value_equal (lp_msg_content (request), content_copy));
    routing = lp_msg_routing (request);
    assert (zmsg_size (routing) == 1);
    assert (zframe_streq (zmsg_first (routing), "engine-uuid"));

    lp_msg_t *reply = lp_msg_new_reply (request, LP_APPLY_REPLY);
    assert (reply);
    assert (lp_value_set (lp_msg_content (reply), "status", lp_value_string ("ok")) == 0);
    assert (lp_value_set (lp_msg_content (reply), "values",
                          lp_value_dup (lp_value_get (content_copy, "args"))) == 0);
    assert (lp_wire_send (receiver, &reply, router) == 0);
    lp_msg_t *answer = lp_wire_recv (sender, dealer);
    assert (answer);
    assert (zmsg_size (lp_msg_routing (answer)) == 0);
    assert (streq (lp_msg_type (answer), LP_APPLY_REPLY));
    assert (streq (lp_msg_parent_id (answer), msg_id));
    assert (streq (lp_msg_get_string (answer, "status"), "ok"));
    assert (lp_value_equal (lp_value_get (lp_msg_content (answer), "values"),
                            lp_value_get (content_copy, "args")));
    assert (lp_value_equal (lp_msg_parent (answer), lp_msg_header (request)));
    lp_msg_destroy (&answer);
    lp_msg_destroy (&request);

    //  Zero-copy sends (lp_wire_encode_out): an owned string and typed
    //  array are taken from the value, a caller's buffer and one with a
    //  free function of its own are copied; all arrive whole
    {
        size_t big = 5 * LP_PIECE_BYTES / 2 + 3;
        char *text = (char *) malloc (big);
        assert (text);
        for (size_t k = 0; k < big; k++)
            text [k] = (char) ('a' + k % 26);
        static double borrowed [300000];
        for (size_t k = 0; k < 300000; k++)
            borrowed [k] = (double) k + 0.5;
        double *own = (double *) malloc (200000 * sizeof (double));
        assert (own);
        for (size_t k = 0; k < 200000; k++)
            own [k] = -(double) k;
        s_test_frees = 0;
        msg = lp_msg_new (LP_PUSH_REQUEST);
        assert (msg);
        lp_value_t *ns = lp_value_map ();
        assert (ns);
        assert (lp_value_set (ns, "s", lp_value_lstring (text, big)) == 0);
        assert (lp_value_set (ns, "t", lp_value_typed (LP_DTYPE_I64, 150000)) == 0);
        assert (lp_value_set (ns, "b", lp_value_typed_take (LP_DTYPE_F64, borrowed, 300000, NULL)) == 0);
        assert (lp_value_set (ns, "o", lp_value_typed_take (LP_DTYPE_F64, own, 200000, s_test_free)) == 0);
        assert (lp_value_set (lp_msg_content (msg), "ns", ns) == 0);
        lp_value_t *expected = lp_value_dup (lp_msg_content (msg));
        assert (expected);
        lp_wire_out_t *out = lp_wire_encode_out (sender, &msg, err, sizeof (err));
        assert (out && !msg);
        assert (s_test_frees == 1);         //  "o" was copied, its own freed
        assert (lp_wire_out_largest (out) == LP_PIECE_BYTES);
        assert (lp_wire_out_send (&out, dealer) == 0);
        assert (!out);
        request = lp_wire_recv (receiver, router);
        assert (request);
        assert (lp_value_equal (lp_msg_content (request), expected));
        assert (borrowed [299999] == 299999.5);
        lp_msg_destroy (&request);
        lp_value_destroy (&expected);
        //  Encoding fails (too deep): the taken buffers are freed, no send
        msg = lp_msg_new (LP_PUSH_REQUEST);
        lp_value_t *deep = lp_value_typed (LP_DTYPE_U8, 3 * LP_PIECE_BYTES);
        for (int d = 0; d < 40; d++) {
            lp_value_t *outer = lp_value_array ();
            assert (outer && lp_value_append (outer, deep) == 0);
            deep = outer;
        }
        assert (lp_value_set (lp_msg_content (msg), "x", lp_value_bytes (text, big)) == 0);
        assert (lp_value_set (lp_msg_content (msg), "y", deep) == 0);
        out = lp_wire_encode_out (sender, &msg, err, sizeof (err));
        assert (!out && !msg && strstr (err, "deeper"));
        free (text);
    }

    //  Every frame within LP_DATA_MAX_FRAME (the sockets' cap here): a
    //  push of a table of 10^6 short distinct strings (content ~11 MB of
    //  msgpack) goes as a small content frame and pieces, copied or
    //  referred to, and arrives whole; forwarders read its content too
    {
        lp_value_t *table = lp_value_array ();
        assert (table);
        for (int k = 0; k < 1000000; k++) {
            char text [16];
            snprintf (text, sizeof text, "str%07d", k);
            assert (lp_value_append (table, lp_value_string (text)) == 0);
        }
        lp_value_t *ns = lp_value_map ();
        assert (ns && lp_value_set (ns, "t", table) == 0);
        for (int round = 0; round < 2; round++) {
            msg = lp_msg_new (LP_PUSH_REQUEST);
            assert (msg);
            assert (lp_value_set (lp_msg_content (msg), "ns", lp_value_dup (ns)) == 0);
            if (round == 0) {
                zmsg = lp_wire_encode (sender, &msg, err, sizeof (err));
                assert (zmsg && zmsg_size (zmsg) > 1 + LP_FRAMES_MIN + 8);
                size_t total = 0;
                for (zframe_t *f = zmsg_first (zmsg); f; f = zmsg_next (zmsg)) {
                    assert (zframe_size (f) <= LP_DATA_MAX_FRAME);
                    total += zframe_size (f);
                }
                assert (total > 8 * 1024 * 1024);
                zframe_t *content = lp_wire_frame (zmsg, 0, LP_FRAME_CONTENT);
                assert (content && zframe_size (content) < 64);
                lp_value_t *read = lp_wire_decode_frame (zmsg, 0, LP_FRAME_CONTENT,
                                                         err, sizeof (err));
                assert (read && lp_value_equal (lp_value_get (read, "ns"), ns));
                lp_value_destroy (&read);
                assert (zmsg_send (&zmsg, dealer) == 0);
            }
            else {
                lp_wire_out_t *out = lp_wire_encode_out (sender, &msg, err, sizeof (err));
                assert (out && lp_wire_out_largest (out) <= LP_PIECE_BYTES);
                assert (lp_wire_out_send (&out, dealer) == 0);
            }
            request = lp_wire_recv (receiver, router);
            assert (request);
            assert (lp_value_equal (lp_value_get (lp_msg_content (request), "ns"), ns));
            lp_msg_destroy (&request);
        }
        lp_value_destroy (&ns);
        //  Headers are sent inline (a forwarder reads them without the
        //  buffers): a long string stays in the frame; past the cap the
        //  message is refused; a header referring to a buffer is dropped
        char *text = (char *) malloc (LP_DATA_MAX_FRAME + 1);
        assert (text);
        memset (text, 'h', LP_DATA_MAX_FRAME);
        text [LP_DATA_MAX_FRAME] = 0;
        msg = lp_msg_new (LP_EXECUTE_REQUEST);
        assert (lp_value_set (lp_msg_header (msg), "note",
                              lp_value_lstring (text, 100 * 1024)) == 0);
        zmsg = lp_wire_encode (sender, &msg, err, sizeof (err));
        assert (zmsg && zmsg_size (zmsg) == LP_FRAMES_MIN);
        lp_msg_t *decoded = lp_wire_decode (receiver, &zmsg);
        assert (decoded);
        assert (lp_value_len (lp_value_get (lp_msg_header (decoded), "note")) == 100 * 1024);
        lp_msg_destroy (&decoded);
        msg = lp_msg_new (LP_EXECUTE_REQUEST);
        assert (lp_value_set (lp_msg_header (msg), "note", lp_value_string (text)) == 0);
        assert (!lp_wire_encode (sender, &msg, err, sizeof (err)));
        assert (strstr (err, "header of ") && strstr (err, "frame cap"));
        assert (!msg);
        free (text);
        msg = lp_msg_new (LP_EXECUTE_REQUEST);
        assert (lp_value_set (lp_msg_content (msg), "t",
                              lp_value_typed (LP_DTYPE_U8, 10)) == 0);
        zmsg = lp_wire_encode (sender, &msg, err, sizeof (err));
        assert (zmsg);
        lp_value_t *hdr = lp_wire_decode_frame (zmsg, 0, LP_FRAME_HEADER, err, sizeof (err));
        assert (hdr);
        //  a header with a bytes ext 2 pointing at buffer 0
        zlist_t *list = zlist_new ();
        assert (list);
        lp_value_t *with_ext = lp_value_dup (hdr);
        assert (lp_value_set (with_ext, "note", lp_value_bytes (s_filler (), 70 * 1024)) == 0);
        zframe_t *hdr_frame = lp_codec_encode (with_ext, list, err, sizeof (err));
        assert (hdr_frame && zlist_size (list) == 1);
        zframe_t *extra = (zframe_t *) zlist_pop (list);
        zframe_destroy (&extra);
        zmsg_t *bad = s_with_frame (zmsg, LP_FRAME_HEADER, zframe_data (hdr_frame),
                                    zframe_size (hdr_frame));
        assert (s_sign_zmsg (sender, bad, 0) == 0);
        s_expect_drop (receiver, bad, "malformed header", verbose);
        zmsg_destroy (&bad);
        zframe_destroy (&hdr_frame);
        zlist_destroy (&list);
        lp_value_destroy (&with_ext);
        lp_value_destroy (&hdr);
        zmsg_destroy (&zmsg);
    }

    //  A replayed message over the socket is dropped, nothing else lost
    msg = lp_msg_new (LP_STATUS_REQUEST);
    assert (msg);
    zmsg = lp_wire_encode (sender, &msg, err, sizeof (err));
    assert (zmsg);
    zmsg_t *again = zmsg_dup (zmsg);
    assert (again);
    assert (zmsg_send (&zmsg, dealer) == 0);
    assert (zmsg_send (&again, dealer) == 0);
    msg = lp_msg_new ("after_replay");
    assert (lp_wire_send (sender, &msg, dealer) == 0);
    uint64_t before = lp_wire_dropped (receiver);
    request = lp_wire_recv (receiver, router);
    assert (request && streq (lp_msg_type (request), LP_STATUS_REQUEST));
    lp_msg_destroy (&request);
    assert (lp_wire_recv (receiver, router) == NULL);
    assert (lp_wire_dropped (receiver) == before + 1);
    assert (strstr (lp_wire_last_error (receiver), "replayed"));
    request = lp_wire_recv (receiver, router);
    assert (request && streq (lp_msg_type (request), "after_replay"));
    lp_msg_destroy (&request);

    zsock_destroy (&dealer);
    zsock_destroy (&router);
    lp_value_destroy (&content_copy);
    lp_wire_destroy (&sender);
    lp_wire_destroy (&receiver);
    lp_wire_destroy (&receiver);            //  idempotent

    //  One line per wire and peer: later drops from the same peer within
    //  LP_DROP_LOG_MSEC are counted but not logged
    zsys_set_logstream (stdout);
    rewind (log);
    char line [1024];
    int lines = 0, stranger_lines = 0, fresh_peer_lines = 0;
    while (fgets (line, sizeof (line), log)) {
        if (verbose)
            printf ("\n    log: %s", line);
        lines++;
        if (strstr (line, "test/stranger: dropped message from 686f702d31: "
                          "bad signature (1 dropped from this peer)"))
            stranger_lines++;
        if (strstr (line, "test/fresh: dropped message from 686f702d31: "))
            fresh_peer_lines++;
    }
    fclose (log);
    assert (stranger_lines == 1);
    assert (fresh_peer_lines == 1);
    assert (lines <= 11);

    //  Many peers (each with a long identity): the drop-log table stays
    //  bounded and long identities are shown cut
    log = tmpfile ();
    assert (log);
    zsys_set_logstream (log);
    lp_wire_t *busy = lp_wire_new (key, sizeof (key), "test/busy");
    assert (busy);
    for (int i = 0; i < LP_DROP_LOG_PEERS + 10; i++) {
        zmsg_t *bad = zmsg_new ();
        assert (bad);
        char identity [48];
        snprintf (identity, sizeof (identity), "peer-%040d", i);
        assert (zmsg_addstr (bad, identity) == 0);
        assert (zmsg_addstr (bad, "payload") == 0);
        assert (lp_wire_decode (busy, &bad) == NULL);
        assert (zhashx_size (busy->peers) <= LP_DROP_LOG_PEERS);
    }
    assert (lp_wire_dropped (busy) == LP_DROP_LOG_PEERS + 10);
    lp_wire_destroy (&busy);
    zsys_set_logstream (stdout);
    rewind (log);
    assert (fgets (line, sizeof (line), log));
    assert (strstr (line, "test/busy: dropped message from 706565722d3030"));
    assert (strstr (line, "...: no delimiter (2 frames) (1 dropped from this peer)"));
    fclose (log);
    //  @end
    printf ("%sOK\n", verbose? "\n": "");
}
