/*  =========================================================================
    lp_codec - lp_value_t <-> msgpack, large payloads as separate frames

    Encoding packs a value with msgpack-c into an sbuffer and copies it into
    one zframe. Integers go out as int64 (msgpack picks the shortest form),
    numbers as float64, short strings as str, short bytes as bin. Strings
    and bytes longer than LP_INLINE_MAX_BYTES and every typed array go out
    of band: the msgpack holds an ext (type 1 typed, type 2 bytes) with a
    16-byte big-endian payload

        u8 dtype | u8 flags | u16 0 | u32 first | u32 pieces | u32 0

    and the data follows as `pieces` frames of at most LP_PIECE_BYTES,
    appended to the caller's buffer list (see docs/protocol.md, "Values").
    Flag bit 0 (LP_EXT_FLAG_PLAIN) marks a typed array that stands for a
    plain Lua sequence, and bytes that are UTF-8 text (a str). A string of
    1 GB is a 18-byte ext plus 1024 frames of 1 MiB.

    Tables go out of band too (ext type 3, LP_EXT_MSGPACK): an array or
    map is packed in place, and when its msgpack turns out longer than
    LP_INLINE_MAX_BYTES (the value as a whole: LP_PIECE_BYTES) those bytes
    are cut from the sbuffer into pieces and an ext referring to them
    takes their place (s_cut). Its own large children were cut before it,
    so each byte is copied out once, and a table of 10^6 short strings is
    a few bytes in the frame plus ~10 pieces. So no frame exceeds
    LP_PIECE_BYTES but a map of many small fields (protocol maps have a
    few), and the frame cap of the data channels (LP_DATA_MAX_FRAME) is a
    few MiB whatever the value. The receiver joins the pieces (or reads a
    single one in place) and decodes them like a frame, with its nesting
    counted from where the ext sits; the ext must hold an array or map,
    so chains of them are bounded by the depth limit.
    lp_codec_encode_inline puts nothing out of band, for headers, which
    forwarders decode without the message's buffers.

    Decoding treats the frame as hostile. Before msgpack-c sees it, an
    iterative pre-walk checks every header: a str/bin/ext length must fit
    in the bytes left, an array of n needs at least n bytes left and a map
    of n at least 2n (so msgpack-c never allocates more than a small
    multiple of the frame), nesting stays within LP_CODEC_MAX_DEPTH, and
    exactly one object fills the frame. Then msgpack_unpack_next parses it
    and the object tree is converted. Ext references are checked against
    the message's buffer frames: in range, each frame used once, piece
    sizes summed with overflow checks, typed lengths a multiple of the
    element size; the pieces are reassembled into one malloc'd buffer that
    the value takes (one copy from the frames, none after).

    lp_codec_encode_consume is for a value that is destroyed right after
    (lp_wire_encode's message): as each piece is copied into its frame,
    the pages of the value's own buffer behind it are given back to the
    kernel (MADV_DONTNEED), so a 1 GB value and its 1 GB of frames never
    coexist: encoding costs about one piece of memory, not the value's
    size. Only buffers the value owns are released (strings, bytes, typed
    arrays made by lp_value_typed or taken with free), never a caller's.

    The encoder refuses values nested deeper than LP_CODEC_MAX_DEPTH, the
    same limit the decoder (and msgpack-c's parser stack) accepts, so
    whatever encodes also decodes. User values are limited to
    LP_VALUE_MAX_DEPTH by lp_lua_to_value; the rest is headroom for the
    message maps around them.
    =========================================================================
*/

#include "lp_codec.h"
#include "lp_value.h"
#include "lp_util.h"
#include <msgpack.h>
//  Contracts and self-tests assert in release builds too, as in czmq
#undef NDEBUG
#include <assert.h>
#include <stdatomic.h>
#include <sys/mman.h>
#include <unistd.h>

#define LP_CODEC_MAX_DEPTH  32          //  whole frame, = msgpack-c's stack
#define LP_EXT_PAYLOAD      16          //  bytes of an ext payload
#define LP_EXT_FLAG_PLAIN   0x01        //  typed: a sequence; bytes: a str

//  ---------------------------------------------------------------------
//  Big-endian helpers

static void
s_put_u32 (uint8_t *p, uint32_t v)
{
    p [0] = (uint8_t) (v >> 24);
    p [1] = (uint8_t) (v >> 16);
    p [2] = (uint8_t) (v >> 8);
    p [3] = (uint8_t) v;
}

static uint32_t
s_get_u32 (const uint8_t *p)
{
    return (uint32_t) p [0] << 24 | (uint32_t) p [1] << 16
         | (uint32_t) p [2] << 8 | (uint32_t) p [3];
}

static uint64_t
s_get_be (const uint8_t *p, size_t n)
{
    uint64_t v = 0;
    for (size_t k = 0; k < n; k++)
        v = v << 8 | p [k];
    return v;
}

//  ---------------------------------------------------------------------
//  Encoding

//  A buffer that pieces (lp_piece_t) refer to, freed with the last one
struct _lp_hold_t {
    atomic_size_t refs;                 //  pieces alive
    void *block;                        //  what to free
    void (*free_fn) (void *);           //  and how
};

static void
s_hold_release (lp_hold_t *hold)
{
    if (hold && atomic_fetch_sub (&hold->refs, 1) == 1) {
        if (hold->free_fn)
            hold->free_fn (hold->block);
        free (hold);
    }
}

void
lp_piece_free (void *data, void *hint)
{
    (void) data;
    s_hold_release ((lp_hold_t *) hint);
}

void
lp_piece_destroy (lp_piece_t **self_p)
{
    assert (self_p);
    lp_piece_t *self = *self_p;
    if (self) {
        s_hold_release (self->hold);
        free (self);
        *self_p = NULL;
    }
}

typedef struct {
    msgpack_packer pk;                  //  writes into sbuf
    msgpack_sbuffer *sbuf;              //  the frame's bytes so far
    zlist_t *buffers;                   //  out-of-band frames go here
    bool consume;                       //  release buffers once copied
    bool refer;                         //  buffers holds lp_piece_t
    bool inline_only;                   //  nothing out of band (headers)
    char *err;                          //  error text
    size_t errlen;                      //  its size
} s_encoder_t;

static int
s_oom (s_encoder_t *enc)
{
    snprintf (enc->err, enc->errlen, "out of memory while encoding a value");
    return -1;
}

//  Appends pieces of at most LP_PIECE_BYTES that refer to len bytes at
//  data, kept alive by hold; takes the caller's reference to hold.
static int
s_hold_pieces (s_encoder_t *enc, lp_hold_t *hold, const uint8_t *data, size_t len)
{
    int rc = 0;
    for (size_t offset = 0; offset < len; offset += LP_PIECE_BYTES) {
        size_t size = len - offset < LP_PIECE_BYTES? len - offset: LP_PIECE_BYTES;
        lp_piece_t *piece = (lp_piece_t *) malloc (sizeof (lp_piece_t));
        if (!piece) {
            rc = s_oom (enc);
            break;
        }
        piece->data = data + offset;
        piece->size = size;
        piece->hold = hold;
        atomic_fetch_add (&hold->refs, 1);
        if (zlist_append (enc->buffers, piece)) {
            lp_piece_destroy (&piece);
            rc = s_oom (enc);
            break;
        }
    }
    s_hold_release (hold);
    return rc;
}

//  Appends len bytes at data as pieces that refer to them (enc->refer):
//  the buffer is taken from value (which becomes nil) and freed with the
//  last piece; a buffer the value does not own is copied once.
static int
s_refer_pieces (s_encoder_t *enc, const uint8_t *data, size_t len, lp_value_t *value)
{
    if (len == 0)
        return 0;
    lp_hold_t *hold = (lp_hold_t *) calloc (1, sizeof (lp_hold_t));
    if (!hold)
        return s_oom (enc);
    atomic_init (&hold->refs, 1);       //  ours until the pieces exist
    bool is_typed = lp_value_type (value) == LP_TYPED;
    void (*typed_free) (void *) = NULL;
    if (is_typed) {
        //  The free function goes with the buffer
        if (lp_value_typed_freed_by (value, free))
            typed_free = free;
        else
        if (lp_value_typed_freed_by (value, lp_codec_free_typed_block))
            typed_free = lp_codec_free_typed_block;
    }
    if (!is_typed || typed_free) {
        //  A string's block and free, or a borrowed one's release
        hold->block = lp_value_detach (value, &hold->free_fn);
        assert (hold->free_fn);
    }
    else {
        //  A caller's buffer (or one with a free function of its own)
        uint8_t *copy = (uint8_t *) malloc (len);
        if (!copy) {
            free (hold);
            return s_oom (enc);
        }
        memcpy (copy, data, len);
        data = copy;
        hold->block = copy;
        hold->free_fn = free;
    }
    return s_hold_pieces (enc, hold, data, len);
}

//  Appends data as pieces; packs the ext that refers to them. value is
//  the string or typed array the data belongs to.
static int
s_pack_out_of_band (s_encoder_t *enc, int8_t ext_type, uint8_t dtype,
                    uint8_t flags, const void *data, size_t len, bool owned,
                    lp_value_t *value)
{
    size_t first = zlist_size (enc->buffers);
    size_t pieces = len / LP_PIECE_BYTES + (len % LP_PIECE_BYTES? 1: 0);
    if (first > UINT32_MAX || pieces > UINT32_MAX - first) {
        snprintf (enc->err, enc->errlen, "value has too many buffer frames");
        return -1;
    }
    uint8_t payload [LP_EXT_PAYLOAD] = { 0 };
    payload [0] = dtype;
    payload [1] = flags;
    s_put_u32 (payload + 4, (uint32_t) first);
    s_put_u32 (payload + 8, (uint32_t) pieces);
    if (msgpack_pack_ext_with_body (&enc->pk, payload, sizeof payload, ext_type))
        return s_oom (enc);
    const uint8_t *bytes = (const uint8_t *) data;
    if (enc->refer)
        return s_refer_pieces (enc, bytes, len, value);
    //  Whole pages of the buffer, and how far they were released
    uintptr_t page = (uintptr_t) sysconf (_SC_PAGESIZE);
    uintptr_t released = ((uintptr_t) bytes + page - 1) & ~(page - 1);
    bool release = enc->consume && owned && len >= 2 * LP_PIECE_BYTES;
    for (size_t offset = 0; offset < len; offset += LP_PIECE_BYTES) {
        size_t size = len - offset < LP_PIECE_BYTES? len - offset: LP_PIECE_BYTES;
        zframe_t *frame = zframe_new (bytes + offset, size);
        if (!frame)
            return s_oom (enc);
        if (zlist_append (enc->buffers, frame)) {
            zframe_destroy (&frame);
            return s_oom (enc);
        }
        if (release) {
            uintptr_t upto = ((uintptr_t) bytes + offset + size) & ~(page - 1);
            if (upto > released) {
                //  Advice only: on failure the pages stay until the free
                madvise ((void *) released, upto - released, MADV_DONTNEED);
                released = upto;
            }
        }
    }
    return 0;
}

//  A container nested in a value goes out of band past LP_INLINE_MAX_BYTES
//  of msgpack, as strings do; the value itself (the frame) only past
//  LP_PIECE_BYTES, so that a protocol map keeps its fields readable in
//  the frame and only its large values move.
static size_t
s_cut_above (int depth)
{
    return depth > 0? LP_INLINE_MAX_BYTES: LP_PIECE_BYTES;
}

//  Moves the bytes packed since mark (one array or map) out of band and
//  packs in their place the ext that refers to them (ext type 3, see the
//  top of the file): the frame keeps 18 bytes of a large container.
static int
s_cut (s_encoder_t *enc, size_t mark)
{
    const uint8_t *bytes = (const uint8_t *) enc->sbuf->data + mark;
    size_t len = enc->sbuf->size - mark;
    size_t first = zlist_size (enc->buffers);
    size_t pieces = len / LP_PIECE_BYTES + (len % LP_PIECE_BYTES? 1: 0);
    if (first > UINT32_MAX || pieces > UINT32_MAX - first) {
        snprintf (enc->err, enc->errlen, "value has too many buffer frames");
        return -1;
    }
    if (enc->refer) {
        //  The sbuffer is written over next: the pieces get a copy
        lp_hold_t *hold = (lp_hold_t *) calloc (1, sizeof (lp_hold_t));
        uint8_t *copy = (uint8_t *) malloc (len);
        if (!hold || !copy) {
            free (hold);
            free (copy);
            return s_oom (enc);
        }
        memcpy (copy, bytes, len);
        atomic_init (&hold->refs, 1);
        hold->block = copy;
        hold->free_fn = free;
        if (s_hold_pieces (enc, hold, copy, len))
            return -1;
    }
    else
        for (size_t offset = 0; offset < len; offset += LP_PIECE_BYTES) {
            size_t size = len - offset < LP_PIECE_BYTES? len - offset: LP_PIECE_BYTES;
            zframe_t *frame = zframe_new (bytes + offset, size);
            if (!frame)
                return s_oom (enc);
            if (zlist_append (enc->buffers, frame)) {
                zframe_destroy (&frame);
                return s_oom (enc);
            }
        }
    enc->sbuf->size = mark;
    uint8_t payload [LP_EXT_PAYLOAD] = { 0 };
    s_put_u32 (payload + 4, (uint32_t) first);
    s_put_u32 (payload + 8, (uint32_t) pieces);
    if (msgpack_pack_ext_with_body (&enc->pk, payload, sizeof payload, LP_EXT_MSGPACK))
        return s_oom (enc);
    return 0;
}

static int
s_pack (s_encoder_t *enc, const lp_value_t *value, int depth)
{
    msgpack_packer *pk = &enc->pk;
    lp_type_t type = lp_value_type (value);
    if ((type == LP_ARRAY || type == LP_MAP) && depth >= LP_CODEC_MAX_DEPTH) {
        snprintf (enc->err, enc->errlen,
                  "value nests deeper than %d levels", LP_CODEC_MAX_DEPTH);
        return -1;
    }
    int rc = 0;
    switch (type) {
        case LP_NIL:
            rc = msgpack_pack_nil (pk);
            break;
        case LP_BOOL:
            rc = lp_value_as_bool (value)? msgpack_pack_true (pk): msgpack_pack_false (pk);
            break;
        case LP_INT:
            rc = msgpack_pack_int64 (pk, lp_value_as_int (value));
            break;
        case LP_NUMBER:
            rc = msgpack_pack_double (pk, lp_value_as_number (value));
            break;
        case LP_STRING: {
            size_t len;
            const char *s = lp_value_as_string (value, &len);
            if (len > LP_INLINE_MAX_BYTES && !enc->inline_only)
                return s_pack_out_of_band (enc, LP_EXT_BYTES, 0,
                                           LP_EXT_FLAG_PLAIN, s, len,
                                           !lp_value_str_borrowed (value),
                                           LP_UNCONST (lp_value_t *, value));
            rc = msgpack_pack_str_with_body (pk, s, len);
            break;
        }
        case LP_BYTES: {
            size_t len;
            const char *s = lp_value_as_string (value, &len);
            if (len > LP_INLINE_MAX_BYTES && !enc->inline_only)
                return s_pack_out_of_band (enc, LP_EXT_BYTES, 0, 0, s, len,
                                           !lp_value_str_borrowed (value),
                                           LP_UNCONST (lp_value_t *, value));
            rc = msgpack_pack_bin_with_body (pk, s, len);
            break;
        }
        case LP_ARRAY: {
            size_t len = lp_value_len (value);
            if (len > UINT32_MAX) {
                snprintf (enc->err, enc->errlen, "array too long to encode");
                return -1;
            }
            size_t mark = enc->sbuf->size;
            if (msgpack_pack_array (pk, len))
                return s_oom (enc);
            for (size_t k = 0; k < len; k++)
                if (s_pack (enc, lp_value_at (value, k), depth + 1))
                    return -1;
            if (!enc->inline_only && enc->sbuf->size - mark > s_cut_above (depth))
                return s_cut (enc, mark);
            break;
        }
        case LP_MAP: {
            size_t len = lp_value_len (value);
            if (len > UINT32_MAX) {
                snprintf (enc->err, enc->errlen, "map too long to encode");
                return -1;
            }
            size_t mark = enc->sbuf->size;
            if (msgpack_pack_map (pk, len))
                return s_oom (enc);
            for (size_t k = 0; k < len; k++)
                if (s_pack (enc, lp_value_key_at (value, k), depth + 1)
                ||  s_pack (enc, lp_value_value_at (value, k), depth + 1))
                    return -1;
            if (!enc->inline_only && enc->sbuf->size - mark > s_cut_above (depth))
                return s_cut (enc, mark);
            break;
        }
        case LP_TYPED: {
            if (enc->inline_only) {
                snprintf (enc->err, enc->errlen, "a typed array cannot be sent inline");
                return -1;
            }
            lp_dtype_t dtype = lp_value_dtype (value);
            size_t count = lp_value_len (value);
            uint8_t flags = lp_value_typed_is_sequence (value)? LP_EXT_FLAG_PLAIN: 0;
            return s_pack_out_of_band (enc, LP_EXT_TYPED, (uint8_t) dtype, flags,
                                       lp_value_typed_data (value),
                                       count * lp_dtype_size (dtype),
                                       lp_value_typed_owned (value),
                                       LP_UNCONST (lp_value_t *, value));
        }
    }
    return rc? s_oom (enc): 0;
}

static zframe_t *
s_encode (const lp_value_t *value, zlist_t *buffers, bool consume, bool refer,
          bool inline_only, char *err, size_t errlen)
{
    assert (value);
    assert (buffers);
    char dummy [8];
    if (!err || errlen == 0) {
        err = dummy;
        errlen = sizeof dummy;
    }
    *err = 0;
    size_t initial = zlist_size (buffers);
    msgpack_sbuffer sbuf;
    msgpack_sbuffer_init (&sbuf);
    s_encoder_t enc;
    msgpack_packer_init (&enc.pk, &sbuf, msgpack_sbuffer_write);
    enc.sbuf = &sbuf;
    enc.inline_only = inline_only;
    enc.buffers = buffers;
    enc.consume = consume;
    enc.refer = refer;
    enc.err = err;
    enc.errlen = errlen;

    zframe_t *frame = NULL;
    if (s_pack (&enc, value, 0) == 0) {
        frame = zframe_new (sbuf.data, sbuf.size);
        if (!frame)
            s_oom (&enc);
    }
    msgpack_sbuffer_destroy (&sbuf);
    if (!frame) {
        //  Take back the pieces this call appended
        while (zlist_size (buffers) > initial) {
            void *item = zlist_tail (buffers);
            zlist_remove (buffers, item);
            if (refer) {
                lp_piece_t *piece = (lp_piece_t *) item;
                lp_piece_destroy (&piece);
            }
            else {
                zframe_t *piece = (zframe_t *) item;
                zframe_destroy (&piece);
            }
        }
    }
    return frame;
}

zframe_t *
lp_codec_encode (const lp_value_t *value, zlist_t *buffers, char *err, size_t errlen)
{
    return s_encode (value, buffers, false, false, false, err, errlen);
}

zframe_t *
lp_codec_encode_inline (const lp_value_t *value, char *err, size_t errlen)
{
    zlist_t *none = zlist_new ();
    if (!none) {
        if (err && errlen)
            snprintf (err, errlen, "out of memory while encoding a value");
        return NULL;
    }
    zframe_t *frame = s_encode (value, none, false, false, true, err, errlen);
    assert (zlist_size (none) == 0);
    zlist_destroy (&none);
    return frame;
}

zframe_t *
lp_codec_encode_consume (lp_value_t *value, zlist_t *buffers, char *err, size_t errlen)
{
    return s_encode (value, buffers, true, false, false, err, errlen);
}

zframe_t *
lp_codec_encode_refer (lp_value_t *value, zlist_t *pieces, char *err, size_t errlen)
{
    return s_encode (value, pieces, false, true, false, err, errlen);
}

//  ---------------------------------------------------------------------
//  Decoding, step 1: pre-walk the bytes without allocating

static int
s_prewalk (const uint8_t *p, size_t size, int base, char *err, size_t errlen)
{
    uint64_t stack [LP_CODEC_MAX_DEPTH];  //  children left per open container
    int depth = base;                   //  containers open around the object
    size_t pos = 0;
    while (true) {
        if (pos >= size) {
            snprintf (err, errlen, "msgpack truncated at byte %zu", pos);
            return -1;
        }
        uint8_t c = p [pos++];
        size_t left = size - pos;
        uint64_t children = 0;          //  for arrays and maps
        uint64_t payload = 0;           //  bytes after the header
        size_t header = 0;              //  length bytes to read
        bool container = false;
        bool is_map = false;
        int ext_extra = 0;              //  ext type byte

        if (c <= 0x7f || c >= 0xe0 || c == 0xc0 || c == 0xc2 || c == 0xc3)
            ;                           //  fixint, nil, bool
        else
        if (c >= 0x80 && c <= 0x8f) {
            container = is_map = true;
            children = c & 0x0f;
        }
        else
        if (c >= 0x90 && c <= 0x9f) {
            container = true;
            children = c & 0x0f;
        }
        else
        if (c >= 0xa0 && c <= 0xbf)
            payload = c & 0x1f;
        else
        switch (c) {
            case 0xc4: case 0xd9: header = 1; break;            //  bin8, str8
            case 0xc5: case 0xda: header = 2; break;            //  bin16, str16
            case 0xc6: case 0xdb: header = 4; break;            //  bin32, str32
            case 0xc7: header = 1; ext_extra = 1; break;        //  ext8
            case 0xc8: header = 2; ext_extra = 1; break;        //  ext16
            case 0xc9: header = 4; ext_extra = 1; break;        //  ext32
            case 0xca: payload = 4; break;                      //  float32
            case 0xcb: payload = 8; break;                      //  float64
            case 0xcc: case 0xd0: payload = 1; break;
            case 0xcd: case 0xd1: payload = 2; break;
            case 0xce: case 0xd2: payload = 4; break;
            case 0xcf: case 0xd3: payload = 8; break;
            case 0xd4: payload = 2; break;                      //  fixext 1
            case 0xd5: payload = 3; break;
            case 0xd6: payload = 5; break;
            case 0xd7: payload = 9; break;
            case 0xd8: payload = 17; break;
            case 0xdc: header = 2; container = true; break;     //  array16
            case 0xdd: header = 4; container = true; break;     //  array32
            case 0xde: header = 2; container = is_map = true; break;
            case 0xdf: header = 4; container = is_map = true; break;
            default:
                snprintf (err, errlen, "invalid msgpack byte 0x%02x at %zu", c, pos - 1);
                return -1;
        }
        if (header) {
            if (left < header) {
                snprintf (err, errlen, "msgpack truncated at byte %zu", pos);
                return -1;
            }
            uint64_t n = s_get_be (p + pos, header);
            pos += header;
            left -= header;
            if (container)
                children = n;
            else
                payload = n + (uint64_t) ext_extra;
        }
        if (container) {
            uint64_t need = is_map? children * 2: children;
            if (need > left) {
                snprintf (err, errlen, "msgpack %s declares %" PRIu64
                          " elements but only %zu bytes follow",
                          is_map? "map": "array", children, left);
                return -1;
            }
            if (children > 0) {
                if (depth >= LP_CODEC_MAX_DEPTH) {
                    snprintf (err, errlen, "msgpack nests deeper than %d levels",
                              LP_CODEC_MAX_DEPTH);
                    return -1;
                }
                stack [depth++] = need;
                continue;
            }
        }
        else
        if (payload > left) {
            snprintf (err, errlen, "msgpack length %" PRIu64
                      " exceeds the %zu bytes left", payload, left);
            return -1;
        }
        else
            pos += (size_t) payload;

        //  One object complete: close every container it completes
        while (depth > base) {
            if (--stack [depth - 1] > 0)
                break;
            depth--;
        }
        if (depth == base)
            break;
    }
    if (pos != size) {
        snprintf (err, errlen, "%zu bytes after the msgpack object", size - pos);
        return -1;
    }
    return 0;
}

//  ---------------------------------------------------------------------
//  Decoding, step 2: msgpack_object -> lp_value_t

//  Room left before out-of-band data (lp_codec_set_headroom): set once by
//  an engine before it decodes anything, 0 elsewhere.
static size_t s_str_head;
static size_t s_typed_head;

void
lp_codec_set_headroom (size_t str_head, size_t typed_head)
{
    s_str_head = str_head;
    s_typed_head = typed_head;
}

void
lp_codec_free_typed_block (void *data)
{
    free ((char *) data - s_typed_head);
}

typedef struct {
    zframe_t **buffers;                 //  message's buffer frames
    size_t nbuffers;                    //  how many
    bool *used;                         //  buffer already referenced
    char *err;                          //  error text
    size_t errlen;                      //  its size
} s_decoder_t;

static lp_value_t *
s_dec_oom (s_decoder_t *dec)
{
    snprintf (dec->err, dec->errlen, "out of memory while decoding a value");
    return NULL;
}

//  value, or NULL with the out-of-memory error when it is NULL
static lp_value_t *
s_dec_made (s_decoder_t *dec, lp_value_t *value)
{
    return value? value: s_dec_oom (dec);
}

static lp_value_t *s_convert (s_decoder_t *dec, const msgpack_object *obj, int depth);

//  An array or map in pieces (ext type 3) at depth (containers around
//  it): its msgpack is checked and decoded as a frame is, its nesting
//  counted from depth, and it must be an array or map, so a chain of
//  such exts is as deep as the containers in it.
static lp_value_t *
s_convert_msgpack (s_decoder_t *dec, const uint8_t *data, size_t size, int depth)
{
    uint8_t c = data [0];
    if (!((c >= 0x80 && c <= 0x9f) || (c >= 0xdc && c <= 0xdf))) {
        snprintf (dec->err, dec->errlen, "ext 3 holds msgpack byte 0x%02x, not an array or map", c);
        return NULL;
    }
    if (s_prewalk (data, size, depth, dec->err, dec->errlen))
        return NULL;
    msgpack_unpacked unpacked;
    msgpack_unpacked_init (&unpacked);
    size_t offset = 0;
    msgpack_unpack_return rc = msgpack_unpack_next (&unpacked, (const char *) data,
                                                    size, &offset);
    lp_value_t *value = NULL;
    if (rc == MSGPACK_UNPACK_SUCCESS && offset == size)
        value = s_convert (dec, &unpacked.data, depth);
    else
    if (rc == MSGPACK_UNPACK_NOMEM_ERROR)
        snprintf (dec->err, dec->errlen, "out of memory while parsing msgpack");
    else
        snprintf (dec->err, dec->errlen, "malformed msgpack in ext 3 (parser said %d)", (int) rc);
    msgpack_unpacked_destroy (&unpacked);
    return value;
}

static lp_value_t *
s_convert_ext (s_decoder_t *dec, const msgpack_object_ext *ext, int depth)
{
    if (ext->type != LP_EXT_TYPED && ext->type != LP_EXT_BYTES && ext->type != LP_EXT_MSGPACK) {
        snprintf (dec->err, dec->errlen, "unknown msgpack ext type %d", ext->type);
        return NULL;
    }
    if (ext->size != LP_EXT_PAYLOAD) {
        snprintf (dec->err, dec->errlen, "ext payload of %u bytes, expected %d",
                  ext->size, LP_EXT_PAYLOAD);
        return NULL;
    }
    const uint8_t *payload = (const uint8_t *) ext->ptr;
    uint8_t dtype = payload [0];
    uint8_t flags = payload [1];
    if ((flags & ~LP_EXT_FLAG_PLAIN) || payload [2] || payload [3]
    ||  s_get_u32 (payload + 12)) {
        snprintf (dec->err, dec->errlen, "ext payload has non-zero reserved bytes");
        return NULL;
    }
    size_t elem = 1;
    if (ext->type == LP_EXT_TYPED) {
        elem = lp_dtype_size ((lp_dtype_t) dtype);
        if (elem == 0) {
            snprintf (dec->err, dec->errlen, "unknown typed array dtype %u", dtype);
            return NULL;
        }
    }
    else
    if (dtype != 0 || (ext->type == LP_EXT_MSGPACK && flags)) {
        snprintf (dec->err, dec->errlen, "ext %d with dtype %u, flags %u",
                  ext->type, dtype, flags);
        return NULL;
    }
    uint64_t first = s_get_u32 (payload + 4);
    uint64_t pieces = s_get_u32 (payload + 8);
    if (first + pieces > dec->nbuffers) {
        snprintf (dec->err, dec->errlen, "ext refers to buffers %" PRIu64 "..%" PRIu64
                  " but the message has %zu", first, first + pieces, dec->nbuffers);
        return NULL;
    }
    if (pieces && !dec->used) {
        dec->used = (bool *) calloc (dec->nbuffers, sizeof (bool));
        if (!dec->used)
            return s_dec_oom (dec);
    }
    size_t total = 0;
    for (size_t k = (size_t) first; k < first + pieces; k++) {
        if (dec->used [k]) {
            snprintf (dec->err, dec->errlen, "buffer %zu referenced twice", k);
            return NULL;
        }
        dec->used [k] = true;
        size_t size = zframe_size (dec->buffers [k]);
        if (size > SIZE_MAX - total) {
            snprintf (dec->err, dec->errlen, "buffer sizes overflow");
            return NULL;
        }
        total += size;
    }
    if (total % elem) {
        snprintf (dec->err, dec->errlen, "typed array of %zu bytes is not a "
                  "multiple of %zu", total, elem);
        return NULL;
    }
    if (ext->type == LP_EXT_MSGPACK) {
        if (total == 0) {
            snprintf (dec->err, dec->errlen, "ext 3 with no data");
            return NULL;
        }
        if (pieces == 1)                //  decoded where it lies
            return s_convert_msgpack (dec, zframe_data (dec->buffers [first]), total, depth);
        uint8_t *joined = (uint8_t *) malloc (total);
        if (!joined)
            return s_dec_oom (dec);
        size_t at = 0;
        for (size_t k = (size_t) first; k < first + pieces; k++) {
            memcpy (joined + at, zframe_data (dec->buffers [k]), zframe_size (dec->buffers [k]));
            at += zframe_size (dec->buffers [k]);
        }
        //  Strings are copied out of it, so it goes right after
        lp_value_t *value = s_convert_msgpack (dec, joined, total, depth);
        free (joined);
        return value;
    }
    //  One spare byte: a string's terminating NUL. Room before the data
    //  for the Lua object that may adopt the block (lp_codec_set_headroom;
    //  typed sequences become tables, so their buffer is never adopted).
    size_t head = 0;
    if (total > 0)
        head = ext->type == LP_EXT_BYTES? s_str_head:
               (flags & LP_EXT_FLAG_PLAIN)? 0: s_typed_head;
    if (total >= SIZE_MAX - head)
        return s_dec_oom (dec);
    uint8_t *block = (uint8_t *) malloc (head + total + 1);
    if (!block)
        return s_dec_oom (dec);
    lp_util_advise_huge (block, head + total + 1);
    uint8_t *data = block + head;
    size_t offset = 0;
    for (size_t k = (size_t) first; k < first + pieces; k++) {
        size_t size = zframe_size (dec->buffers [k]);
        if (size)
            memcpy (data + offset, zframe_data (dec->buffers [k]), size);
        offset += size;
    }
    lp_value_t *value;
    if (ext->type == LP_EXT_TYPED) {
        value = lp_value_typed_take ((lp_dtype_t) dtype, data, total / elem,
                                     head? lp_codec_free_typed_block: free);
        if (value && (flags & LP_EXT_FLAG_PLAIN))
            lp_value_typed_set_sequence (value, true);
    }
    else
        value = lp_value_str_take_head ((flags & LP_EXT_FLAG_PLAIN)? LP_STRING: LP_BYTES,
                                        (char *) block, head, total);
    return value? value: s_dec_oom (dec);
}

static lp_value_t *
s_convert (s_decoder_t *dec, const msgpack_object *obj, int depth)
{
    switch (obj->type) {
        case MSGPACK_OBJECT_NIL:
            return s_dec_made (dec, lp_value_nil ());
        case MSGPACK_OBJECT_BOOLEAN:
            return s_dec_made (dec, lp_value_bool (obj->via.boolean));
        case MSGPACK_OBJECT_POSITIVE_INTEGER:
            if (obj->via.u64 > INT64_MAX)   //  only representable as a number
                return s_dec_made (dec, lp_value_number ((double) obj->via.u64));
            return s_dec_made (dec, lp_value_int ((int64_t) obj->via.u64));
        case MSGPACK_OBJECT_NEGATIVE_INTEGER:
            return s_dec_made (dec, lp_value_int (obj->via.i64));
        case MSGPACK_OBJECT_FLOAT32:
        case MSGPACK_OBJECT_FLOAT64:
            return s_dec_made (dec, lp_value_number (obj->via.f64));
        case MSGPACK_OBJECT_STR:
            return s_dec_made (dec, lp_value_lstring (obj->via.str.ptr, obj->via.str.size));
        case MSGPACK_OBJECT_BIN:
            return s_dec_made (dec, lp_value_bytes (obj->via.bin.ptr, obj->via.bin.size));
        case MSGPACK_OBJECT_EXT:
            return s_convert_ext (dec, &obj->via.ext, depth);
        case MSGPACK_OBJECT_ARRAY: {
            lp_value_t *array = lp_value_array ();
            if (!array)
                return s_dec_oom (dec);
            for (uint32_t k = 0; k < obj->via.array.size; k++) {
                lp_value_t *item = s_convert (dec, &obj->via.array.ptr [k], depth + 1);
                if (!item || lp_value_append (array, item)) {
                    if (item)
                        s_dec_oom (dec);
                    lp_value_destroy (&array);
                    return NULL;
                }
            }
            return array;
        }
        case MSGPACK_OBJECT_MAP: {
            lp_value_t *map = lp_value_map ();
            if (!map)
                return s_dec_oom (dec);
            for (uint32_t k = 0; k < obj->via.map.size; k++) {
                lp_value_t *key = s_convert (dec, &obj->via.map.ptr [k].key, depth + 1);
                lp_value_t *val = key? s_convert (dec, &obj->via.map.ptr [k].val, depth + 1): NULL;
                if (!val) {
                    lp_value_destroy (&key);
                    lp_value_destroy (&map);
                    return NULL;
                }
                if (lp_value_set_key (map, key, val)) {
                    lp_value_destroy (&map);
                    return s_dec_oom (dec);
                }
            }
            return map;
        }
    }
    snprintf (dec->err, dec->errlen, "unsupported msgpack type %d", (int) obj->type);
    return NULL;
}

lp_value_t *
lp_codec_decode (const void *data, size_t size, zframe_t **buffers, size_t nbuffers,
                 char *err, size_t errlen)
{
    char dummy [8];
    if (!err || errlen == 0) {
        err = dummy;
        errlen = sizeof dummy;
    }
    *err = 0;
    if (!data || size == 0) {
        snprintf (err, errlen, "empty msgpack frame");
        return NULL;
    }
    if (nbuffers && !buffers) {
        snprintf (err, errlen, "buffer frames missing");
        return NULL;
    }
    if (s_prewalk ((const uint8_t *) data, size, 0, err, errlen))
        return NULL;

    msgpack_unpacked unpacked;
    msgpack_unpacked_init (&unpacked);
    size_t offset = 0;
    msgpack_unpack_return rc = msgpack_unpack_next (&unpacked, (const char *) data,
                                                    size, &offset);
    lp_value_t *value = NULL;
    if (rc == MSGPACK_UNPACK_SUCCESS && offset == size) {
        s_decoder_t dec = { buffers, nbuffers, NULL, err, errlen };
        value = s_convert (&dec, &unpacked.data, 0);
        free (dec.used);
    }
    else
    if (rc == MSGPACK_UNPACK_NOMEM_ERROR)
        snprintf (err, errlen, "out of memory while parsing msgpack");
    else
        snprintf (err, errlen, "malformed msgpack (parser said %d)", (int) rc);
    msgpack_unpacked_destroy (&unpacked);
    return value;
}

//  ---------------------------------------------------------------------
//  Self-test helpers

//  Encodes and decodes v; returns the copy (asserts on failure)
static lp_value_t *
s_roundtrip (const lp_value_t *v, size_t *nbuffers_p)
{
    zlist_t *buffers = zlist_new ();
    assert (buffers);
    char err [256];
    zframe_t *frame = lp_codec_encode (v, buffers, err, sizeof err);
    assert (frame);
    size_t nbuffers = zlist_size (buffers);
    zframe_t **array = (zframe_t **) calloc (nbuffers + 1, sizeof (zframe_t *));
    assert (array);
    size_t k = 0;
    for (zframe_t *f = (zframe_t *) zlist_first (buffers); f;
         f = (zframe_t *) zlist_next (buffers))
        array [k++] = f;
    lp_value_t *copy = lp_codec_decode (zframe_data (frame), zframe_size (frame),
                                        array, nbuffers, err, sizeof err);
    if (!copy)
        fprintf (stderr, "decode failed: %s\n", err);
    assert (copy);
    assert (lp_value_equal (v, copy));
    for (k = 0; k < nbuffers; k++)
        zframe_destroy (&array [k]);
    free (array);
    zlist_destroy (&buffers);
    zframe_destroy (&frame);
    if (nbuffers_p)
        *nbuffers_p = nbuffers;
    return copy;
}

static lp_value_t *
s_decode_raw (const void *data, size_t size, char *err, size_t errlen)
{
    return lp_codec_decode (data, size, NULL, 0, err, errlen);
}

static lp_value_t *
s_nest (int levels)
{
    lp_value_t *v = lp_value_int (7);
    for (int k = 0; k < levels; k++) {
        lp_value_t *outer = lp_value_array ();
        assert (outer);
        assert (lp_value_append (outer, v) == 0);
        v = outer;
    }
    return v;
}

void
lp_codec_test (bool verbose)
{
    printf (" * codec: ");
    char err [256];

    //  @selftest
    //  Every type round-trips
    lp_value_t *all = lp_value_map ();
    lp_value_set (all, "nil", lp_value_nil ());
    lp_value_set (all, "t", lp_value_bool (true));
    lp_value_set (all, "f", lp_value_bool (false));
    lp_value_set (all, "zero", lp_value_int (0));
    lp_value_set (all, "neg", lp_value_int (-33));
    lp_value_set (all, "min", lp_value_int (INT64_MIN));
    lp_value_set (all, "max", lp_value_int (INT64_MAX));
    lp_value_set (all, "pi", lp_value_number (3.14159));
    lp_value_set (all, "whole", lp_value_number (2.0));
    lp_value_set (all, "inf", lp_value_number (-INFINITY));
    lp_value_set (all, "nan", lp_value_number (NAN));
    lp_value_set (all, "empty", lp_value_string (""));
    lp_value_set (all, "text", lp_value_string ("h\xc3\xa9llo"));
    lp_value_set (all, "bytes", lp_value_bytes ("\x00\x01\xff", 3));
    lp_value_set (all, "list", lp_value_int_range (1, 20));
    lp_value_set (all, "nolist", lp_value_array ());
    lp_value_set (all, "nomap", lp_value_map ());
    lp_value_set_key (all, lp_value_int (5), lp_value_string ("int key"));
    lp_value_set_key (all, lp_value_number (0.5), lp_value_string ("number key"));
    lp_value_set_key (all, lp_value_bool (true), lp_value_string ("bool key"));
    lp_value_set_key (all, lp_value_bytes ("k\xff", 2), lp_value_string ("bytes key"));
    lp_dtype_t dtypes [] = { LP_DTYPE_F64, LP_DTYPE_F32, LP_DTYPE_I64,
                             LP_DTYPE_I32, LP_DTYPE_U8 };
    for (int d = 0; d < 5; d++) {
        lp_value_t *typed = lp_value_typed (dtypes [d], 5);
        uint8_t *bytes = (uint8_t *) lp_value_typed_data (typed);
        for (size_t k = 0; k < 5 * lp_dtype_size (dtypes [d]); k++)
            bytes [k] = (uint8_t) (k * 37 + d);
        lp_value_set (all, lp_dtype_name (dtypes [d]), typed);
    }
    lp_value_set (all, "typed0", lp_value_typed (LP_DTYPE_I32, 0));
    size_t nbuffers;
    lp_value_t *copy = s_roundtrip (all, &nbuffers);
    assert (nbuffers == 5);             //  empty typed array has no pieces
    assert (lp_value_type (lp_value_get (copy, "f32")) == LP_TYPED);
    assert (lp_value_type (lp_value_get (copy, "bytes")) == LP_BYTES);
    assert (lp_value_type (lp_value_get (copy, "whole")) == LP_NUMBER);
    assert (lp_value_type (lp_value_get (copy, "zero")) == LP_INT);
    lp_value_destroy (&copy);

    //  Scalars at the top level
    lp_value_t *v = lp_value_nil ();
    copy = s_roundtrip (v, NULL);
    lp_value_destroy (&copy);
    lp_value_destroy (&v);
    v = lp_value_string ("top");
    copy = s_roundtrip (v, NULL);
    lp_value_destroy (&copy);
    lp_value_destroy (&v);

    //  Buffer indices continue from the list's size
    zlist_t *buffers = zlist_new ();
    zframe_t *first = zframe_new ("x", 1);
    zlist_append (buffers, first);
    v = lp_value_typed (LP_DTYPE_U8, 3);
    zframe_t *frame = lp_codec_encode (v, buffers, err, sizeof err);
    assert (frame);
    assert (zlist_size (buffers) == 2);
    zframe_t *array2 [2] = { first, (zframe_t *) zlist_tail (buffers) };
    lp_value_t *back = lp_codec_decode (zframe_data (frame), zframe_size (frame),
                                        array2, 2, err, sizeof err);
    assert (back && lp_value_equal (back, v));
    lp_value_destroy (&back);
    //  ... and decoding with too few buffers fails cleanly
    back = lp_codec_decode (zframe_data (frame), zframe_size (frame),
                            array2, 1, err, sizeof err);
    assert (!back && strstr (err, "buffers"));
    zframe_destroy (&frame);
    lp_value_destroy (&v);
    zframe_destroy (&array2 [1]);
    zframe_destroy (&first);
    zlist_destroy (&buffers);

    //  10 MB typed array, bit for bit, in 1 MiB pieces
    size_t count = 10 * 1024 * 1024 / 8 + 3;
    v = lp_value_typed (LP_DTYPE_F64, count);
    double *d = (double *) lp_value_typed_data (v);
    for (size_t k = 0; k < count; k++)
        d [k] = (double) k * 0.25 - 1e6;
    d [7] = NAN;
    int64_t start = zclock_mono ();
    copy = s_roundtrip (v, &nbuffers);
    assert (nbuffers == 11);
    assert (memcmp (lp_value_typed_data (copy), d, count * 8) == 0);
    if (verbose)
        printf ("(10 MB typed round trip %d ms) ", (int) (zclock_mono () - start));
    lp_value_destroy (&copy);
    lp_value_destroy (&v);

    //  Bytes: inline up to LP_INLINE_MAX_BYTES, out of band above
    uint8_t *blob = (uint8_t *) malloc (2500 * 1024);
    assert (blob);
    for (size_t k = 0; k < 2500 * 1024; k++)
        blob [k] = (uint8_t) (k * 7 + (k >> 11));
    v = lp_value_bytes (blob, LP_INLINE_MAX_BYTES);
    copy = s_roundtrip (v, &nbuffers);
    assert (nbuffers == 0);
    lp_value_destroy (&copy);
    lp_value_destroy (&v);
    v = lp_value_bytes (blob, 200 * 1024);
    copy = s_roundtrip (v, &nbuffers);
    assert (nbuffers == 1);
    assert (lp_value_type (copy) == LP_BYTES);
    lp_value_destroy (&copy);
    lp_value_destroy (&v);
    v = lp_value_bytes (blob, 2500 * 1024);
    copy = s_roundtrip (v, &nbuffers);
    assert (nbuffers == 3);
    lp_value_destroy (&copy);
    lp_value_destroy (&v);
    //  Strings too: out of band above LP_INLINE_MAX_BYTES, and still str
    memset (blob, 'a', 2500 * 1024);
    v = lp_value_lstring ((char *) blob, LP_INLINE_MAX_BYTES);
    copy = s_roundtrip (v, &nbuffers);
    assert (nbuffers == 0);
    lp_value_destroy (&copy);
    lp_value_destroy (&v);
    v = lp_value_lstring ((char *) blob, 2500 * 1024);
    copy = s_roundtrip (v, &nbuffers);
    assert (nbuffers == 3);
    assert (lp_value_type (copy) == LP_STRING);
    assert (lp_value_as_string (copy, NULL) [2500 * 1024] == 0);
    lp_value_destroy (&copy);
    lp_value_destroy (&v);
    free (blob);

    //  Consuming encode: same frames; the value's own buffer is released,
    //  a caller's buffer (not freed by the value) is left alone
    count = 5 * LP_PIECE_BYTES / 8 + 7;
    v = lp_value_typed (LP_DTYPE_I64, count);
    int64_t *ints = (int64_t *) lp_value_typed_data (v);
    for (size_t k = 0; k < count; k++)
        ints [k] = (int64_t) k * 977;
    lp_value_t *expect = lp_value_dup (v);
    int64_t *mine = (int64_t *) malloc (count * 8);
    assert (mine);
    memcpy (mine, ints, count * 8);
    lp_value_t *theirs = lp_value_typed_take (LP_DTYPE_I64, mine, count, NULL);
    for (int round = 0; round < 2; round++) {
        lp_value_t *source = round? theirs: v;
        buffers = zlist_new ();
        frame = lp_codec_encode_consume (source, buffers, err, sizeof err);
        assert (frame && zlist_size (buffers) == 6);
        zframe_t *pieces [6];
        for (int k = 0; k < 6; k++)
            pieces [k] = (zframe_t *) zlist_pop (buffers);
        copy = lp_codec_decode (zframe_data (frame), zframe_size (frame), pieces, 6,
                                err, sizeof err);
        assert (copy && lp_value_equal (copy, expect));
        lp_value_destroy (&copy);
        for (int k = 0; k < 6; k++)
            zframe_destroy (&pieces [k]);
        zframe_destroy (&frame);
        zlist_destroy (&buffers);
    }
    assert (memcmp (mine, lp_value_typed_data (expect), count * 8) == 0);
    lp_value_destroy (&theirs);
    free (mine);
    lp_value_destroy (&v);
    lp_value_destroy (&expect);

    //  Tables out of band (ext 3). A table of 10^6 short distinct
    //  strings (~11 MB of msgpack): a lone ext in the frame, pieces of at
    //  most LP_PIECE_BYTES that join into the table again
    {
        v = lp_value_array ();
        assert (v);
        for (int k = 0; k < 1000000; k++) {
            char text [16];
            snprintf (text, sizeof text, "str%07d", k);
            assert (lp_value_append (v, lp_value_string (text)) == 0);
        }
        buffers = zlist_new ();
        assert (buffers);
        frame = lp_codec_encode (v, buffers, err, sizeof err);
        assert (frame && zframe_size (frame) == 18);
        size_t pieces = zlist_size (buffers);
        assert (pieces >= 10 && pieces <= 12);
        zframe_t **array = (zframe_t **) calloc (pieces, sizeof (zframe_t *));
        assert (array);
        for (size_t k = 0; k < pieces; k++) {
            array [k] = (zframe_t *) zlist_pop (buffers);
            assert (zframe_size (array [k]) <= LP_PIECE_BYTES);
        }
        copy = lp_codec_decode (zframe_data (frame), zframe_size (frame), array, pieces,
                                err, sizeof err);
        assert (copy && lp_value_equal (copy, v));
        lp_value_destroy (&copy);
        //  One piece short, or a piece changed into garbage: refused
        assert (!lp_codec_decode (zframe_data (frame), zframe_size (frame), array,
                                  pieces - 1, err, sizeof err));
        zframe_t *garbled = zframe_new ("\x92\x01", 2);
        zframe_t *kept = array [pieces - 1];
        array [pieces - 1] = garbled;
        assert (!lp_codec_decode (zframe_data (frame), zframe_size (frame), array, pieces,
                                  err, sizeof err));
        array [pieces - 1] = kept;
        zframe_destroy (&garbled);
        for (size_t k = 0; k < pieces; k++)
            zframe_destroy (&array [k]);
        free (array);
        zframe_destroy (&frame);
        //  The same referred to (zero-copy sends): pieces with their own copy
        frame = lp_codec_encode_refer (v, buffers, err, sizeof err);
        assert (frame && zlist_size (buffers) == pieces);
        zframe_t **joined = (zframe_t **) calloc (pieces, sizeof (zframe_t *));
        assert (joined);
        for (size_t k = 0; k < pieces; k++) {
            lp_piece_t *piece = (lp_piece_t *) zlist_pop (buffers);
            joined [k] = zframe_new (piece->data, piece->size);
            lp_piece_destroy (&piece);
        }
        copy = lp_codec_decode (zframe_data (frame), zframe_size (frame), joined, pieces,
                                err, sizeof err);
        assert (copy && lp_value_equal (copy, v));
        lp_value_destroy (&copy);
        for (size_t k = 0; k < pieces; k++)
            zframe_destroy (&joined [k]);
        free (joined);
        zframe_destroy (&frame);
        zlist_destroy (&buffers);
        lp_value_destroy (&v);
    }
    //  A map keeps its small fields in the frame; nested tables over
    //  LP_INLINE_MAX_BYTES move out, those under stay; a map that is
    //  itself over LP_PIECE_BYTES (40 strings of 60 KiB) moves whole
    {
        char *text = (char *) malloc (60 * 1024);
        assert (text);
        memset (text, 'x', 60 * 1024);
        v = lp_value_map ();
        lp_value_set (v, "code", lp_value_string ("return 1"));
        lp_value_t *big = lp_value_array ();
        lp_value_t *small = lp_value_array ();
        for (int k = 0; k < 20000; k++)
            lp_value_append (big, lp_value_int (k * 1000));
        for (int k = 0; k < 100; k++)
            lp_value_append (small, lp_value_int (k));
        lp_value_t *nested = lp_value_array ();
        for (int k = 0; k < 3; k++)
            lp_value_append (nested, lp_value_dup (big));
        lp_value_set (v, "big", big);
        lp_value_set (v, "small", small);
        lp_value_set (v, "nested", nested);
        copy = s_roundtrip (v, &nbuffers);
        assert (nbuffers == 4);         //  big, the 3 in nested (nested: 3 exts)
        lp_value_destroy (&copy);
        buffers = zlist_new ();
        frame = lp_codec_encode (v, buffers, err, sizeof err);
        assert (frame && zframe_size (frame) < 1024);
        assert (memmem (zframe_data (frame), zframe_size (frame), "\xa4" "code", 5));
        zframe_destroy (&frame);
        while (zlist_size (buffers)) {
            zframe_t *piece = (zframe_t *) zlist_pop (buffers);
            zframe_destroy (&piece);
        }
        lp_value_destroy (&v);
        v = lp_value_map ();
        for (int k = 0; k < 40; k++) {
            char key [8];
            snprintf (key, sizeof key, "k%d", k);
            lp_value_set (v, key, lp_value_lstring (text, 60 * 1024));
        }
        frame = lp_codec_encode (v, buffers, err, sizeof err);
        assert (frame && zframe_size (frame) == 18 && zlist_size (buffers) == 3);
        zframe_destroy (&frame);
        while (zlist_size (buffers)) {
            zframe_t *piece = (zframe_t *) zlist_pop (buffers);
            zframe_destroy (&piece);
        }
        copy = s_roundtrip (v, &nbuffers);
        assert (nbuffers == 3);
        lp_value_destroy (&copy);
        //  Inline: nothing out of band, whatever the size; typed refused
        frame = lp_codec_encode_inline (v, err, sizeof err);
        assert (frame && zframe_size (frame) > 40 * 60 * 1024);
        copy = s_decode_raw (zframe_data (frame), zframe_size (frame), err, sizeof err);
        assert (copy && lp_value_equal (copy, v));
        lp_value_destroy (&copy);
        zframe_destroy (&frame);
        lp_value_set (v, "typed", lp_value_typed (LP_DTYPE_U8, 4));
        assert (!lp_codec_encode_inline (v, err, sizeof err));
        assert (strstr (err, "inline"));
        lp_value_destroy (&v);
        zlist_destroy (&buffers);
        free (text);
    }
    //  Depth counts across ext 3: 32 levels with large tables at several
    //  of them still decode; the limit holds for what ext 3 holds
    {
        lp_value_t *leaf = lp_value_array ();
        for (int k = 0; k < 20000; k++)
            lp_value_append (leaf, lp_value_int (k * 1000));
        v = leaf;
        for (int level = 1; level < LP_CODEC_MAX_DEPTH; level++) {
            lp_value_t *outer = lp_value_array ();
            lp_value_append (outer, v);
            if (level % 8 == 0)
                lp_value_append (outer, lp_value_dup (leaf));
            v = outer;
        }
        copy = s_roundtrip (v, &nbuffers);
        assert (nbuffers == 4);         //  the leaf and its 3 copies
        lp_value_destroy (&copy);
        lp_value_destroy (&v);
    }
    //  Hostile ext 3: what it holds must be one array or map that fills
    //  it, nested within the limit from where the ext sits
    {
        uint8_t ext3 [18] = { 0xd8, LP_EXT_MSGPACK };
        ext3 [13] = 1;                  //  first 0, pieces 1
        zframe_t *piece = zframe_new ("\x92\x01\x02", 3);
        v = lp_codec_decode (ext3, sizeof ext3, &piece, 1, err, sizeof err);
        assert (v && lp_value_type (v) == LP_ARRAY && lp_value_len (v) == 2);
        lp_value_destroy (&v);
        zframe_reset (piece, "\x01", 1);                       //  not a table
        assert (!lp_codec_decode (ext3, sizeof ext3, &piece, 1, err, sizeof err));
        assert (strstr (err, "not an array or map"));
        zframe_reset (piece, ext3, sizeof ext3);                //  an ext in an ext
        assert (!lp_codec_decode (ext3, sizeof ext3, &piece, 1, err, sizeof err));
        zframe_reset (piece, "\x92\x01\x02\x03", 4);           //  bytes after it
        assert (!lp_codec_decode (ext3, sizeof ext3, &piece, 1, err, sizeof err));
        zframe_reset (piece, "\x93\x01\x02", 3);               //  truncated
        assert (!lp_codec_decode (ext3, sizeof ext3, &piece, 1, err, sizeof err));
        zframe_reset (piece, "\xdd\xff\xff\xff\xff", 5);       //  allocation bomb
        assert (!lp_codec_decode (ext3, sizeof ext3, &piece, 1, err, sizeof err));
        ext3 [3] = 1;                   //  flags must be 0
        zframe_reset (piece, "\x90", 1);
        assert (!lp_codec_decode (ext3, sizeof ext3, &piece, 1, err, sizeof err));
        ext3 [3] = 0;
        v = lp_codec_decode (ext3, sizeof ext3, &piece, 1, err, sizeof err);
        assert (v && lp_value_len (v) == 0);
        lp_value_destroy (&v);
        //  Depth: an ext at depth 31 may hold [], [1], not [[1]]
        uint8_t deep3 [LP_CODEC_MAX_DEPTH + 17];
        memset (deep3, 0x91, LP_CODEC_MAX_DEPTH - 1);
        memcpy (deep3 + LP_CODEC_MAX_DEPTH - 1, ext3, 18);
        zframe_reset (piece, "\x90", 1);
        v = lp_codec_decode (deep3, LP_CODEC_MAX_DEPTH + 17, &piece, 1, err, sizeof err);
        assert (v);
        lp_value_destroy (&v);
        zframe_reset (piece, "\x91\x01", 2);
        v = lp_codec_decode (deep3, LP_CODEC_MAX_DEPTH + 17, &piece, 1, err, sizeof err);
        assert (v);
        lp_value_destroy (&v);
        zframe_reset (piece, "\x91\x91\x01", 3);
        assert (!lp_codec_decode (deep3, LP_CODEC_MAX_DEPTH + 17, &piece, 1, err, sizeof err));
        assert (strstr (err, "nests deeper"));
        ext3 [13] = 0;                  //  no pieces
        assert (!lp_codec_decode (ext3, sizeof ext3, &piece, 1, err, sizeof err));
        zframe_destroy (&piece);
    }

    //  A typed array flagged as a sequence keeps its flag
    v = lp_value_typed (LP_DTYPE_I64, 5000);
    lp_value_typed_set_sequence (v, true);
    copy = s_roundtrip (v, &nbuffers);
    assert (nbuffers == 1);
    assert (lp_value_typed_is_sequence (copy));
    lp_value_destroy (&copy);
    lp_value_typed_set_sequence (v, false);
    copy = s_roundtrip (v, NULL);
    assert (!lp_value_typed_is_sequence (copy));
    lp_value_destroy (&copy);
    lp_value_destroy (&v);

    //  Nesting: 32 levels encode and decode, 33 do not encode
    v = s_nest (LP_CODEC_MAX_DEPTH);
    copy = s_roundtrip (v, NULL);
    lp_value_destroy (&copy);
    lp_value_destroy (&v);
    v = s_nest (LP_CODEC_MAX_DEPTH + 1);
    buffers = zlist_new ();
    frame = lp_codec_encode (v, buffers, err, sizeof err);
    assert (!frame);
    assert (strstr (err, "nests deeper"));
    lp_value_destroy (&v);
    //  A failed encode leaves the buffer list as it was
    v = lp_value_array ();
    lp_value_append (v, lp_value_typed (LP_DTYPE_U8, 10));
    lp_value_append (v, s_nest (LP_CODEC_MAX_DEPTH));
    frame = lp_codec_encode (v, buffers, err, sizeof err);
    assert (!frame);
    assert (zlist_size (buffers) == 0);
    lp_value_destroy (&v);
    zlist_destroy (&buffers);
    //  Hand-made deep input: 33 levels, and 100000 levels
    uint8_t deep [100001];
    memset (deep, 0x91, sizeof deep);
    deep [LP_CODEC_MAX_DEPTH] = 0xc0;
    v = s_decode_raw (deep, LP_CODEC_MAX_DEPTH + 1, err, sizeof err);
    assert (v);
    lp_value_destroy (&v);
    deep [LP_CODEC_MAX_DEPTH] = 0x91;
    deep [LP_CODEC_MAX_DEPTH + 1] = 0xc0;
    v = s_decode_raw (deep, LP_CODEC_MAX_DEPTH + 2, err, sizeof err);
    assert (!v && strstr (err, "nests deeper"));
    deep [100000] = 0xc0;
    v = s_decode_raw (deep, sizeof deep, err, sizeof err);
    assert (!v);

    //  Allocation bombs
    uint8_t bomb [] = { 0xdd, 0xff, 0xff, 0xff, 0xff };
    v = s_decode_raw (bomb, sizeof bomb, err, sizeof err);
    assert (!v && strstr (err, "elements"));
    uint8_t mapbomb [] = { 0xdf, 0xff, 0xff, 0xff, 0xff, 0xc0, 0xc0 };
    v = s_decode_raw (mapbomb, sizeof mapbomb, err, sizeof err);
    assert (!v);
    uint8_t map2 [] = { 0x82, 0x01, 0x02 };     //  map of 2 needs 4 bytes
    v = s_decode_raw (map2, sizeof map2, err, sizeof err);
    assert (!v && strstr (err, "map"));
    uint8_t strbomb [] = { 0xdb, 0x7f, 0xff, 0xff, 0xff, 'a' };
    v = s_decode_raw (strbomb, sizeof strbomb, err, sizeof err);
    assert (!v);
    uint8_t binbomb [] = { 0xc6, 0xff, 0xff, 0xff, 0xff };
    v = s_decode_raw (binbomb, sizeof binbomb, err, sizeof err);
    assert (!v);
    uint8_t extbomb [] = { 0xc9, 0xff, 0xff, 0xff, 0xff, 0x01 };
    v = s_decode_raw (extbomb, sizeof extbomb, err, sizeof err);
    assert (!v);

    //  Trailing bytes, empty frame, reserved byte
    uint8_t trailing [] = { 0x01, 0x02 };
    assert (!s_decode_raw (trailing, 2, err, sizeof err));
    assert (strstr (err, "after"));
    assert (!s_decode_raw (trailing, 0, err, sizeof err));
    uint8_t reserved [] = { 0xc1 };
    assert (!s_decode_raw (reserved, 1, err, sizeof err));

    //  float32 arrives as a number
    uint8_t f32 [] = { 0xca, 0x3f, 0xc0, 0x00, 0x00 };   //  1.5f
    v = s_decode_raw (f32, sizeof f32, err, sizeof err);
    assert (v && lp_value_type (v) == LP_NUMBER && lp_value_as_number (v) == 1.5);
    lp_value_destroy (&v);
    //  uint64 beyond int64 arrives as a number
    uint8_t u64 [] = { 0xcf, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff };
    v = s_decode_raw (u64, sizeof u64, err, sizeof err);
    assert (v && lp_value_type (v) == LP_NUMBER);
    lp_value_destroy (&v);

    //  Hostile ext references
    uint8_t ext [18] = { 0xd8, LP_EXT_TYPED, LP_DTYPE_F64 };
    ext [13] = 1;                       //  first 0, pieces 1
    zframe_t *seven = zframe_new ("1234567", 7);
    zframe_t *eight = zframe_new ("12345678", 8);
    zframe_t *frames [2] = { eight, seven };
    v = lp_codec_decode (ext, sizeof ext, frames, 2, err, sizeof err);
    assert (v && lp_value_len (v) == 1);
    lp_value_destroy (&v);
    frames [0] = seven;                 //  7 bytes are not whole f64s
    v = lp_codec_decode (ext, sizeof ext, frames, 2, err, sizeof err);
    assert (!v && strstr (err, "multiple"));
    v = lp_codec_decode (ext, sizeof ext, NULL, 0, err, sizeof err);
    assert (!v);
    ext [2] = 9;                        //  unknown dtype
    assert (!lp_codec_decode (ext, sizeof ext, frames, 2, err, sizeof err));
    ext [2] = LP_DTYPE_U8;
    ext [1] = 5;                        //  unknown ext type
    assert (!lp_codec_decode (ext, sizeof ext, frames, 2, err, sizeof err));
    assert (strstr (err, "ext type"));
    ext [1] = LP_EXT_TYPED;
    ext [9] = 0xff;                     //  first = 255
    assert (!lp_codec_decode (ext, sizeof ext, frames, 2, err, sizeof err));
    ext [9] = 0;
    ext [10] = 0xff;                    //  pieces huge
    assert (!lp_codec_decode (ext, sizeof ext, frames, 2, err, sizeof err));
    ext [10] = 0;
    ext [17] = 1;                       //  reserved byte set
    assert (!lp_codec_decode (ext, sizeof ext, frames, 2, err, sizeof err));
    ext [17] = 0;
    ext [3] = 2;                        //  unknown flag bit
    assert (!lp_codec_decode (ext, sizeof ext, frames, 2, err, sizeof err));
    ext [3] = LP_EXT_FLAG_PLAIN;        //  sequence flag
    frames [0] = eight;
    v = lp_codec_decode (ext, sizeof ext, frames, 2, err, sizeof err);
    assert (v && lp_value_typed_is_sequence (v));
    lp_value_destroy (&v);
    ext [3] = 0;
    //  Same buffer twice
    uint8_t twice [1 + 2 * 18] = { 0x92 };
    memcpy (twice + 1, ext, 18);
    memcpy (twice + 19, ext, 18);
    assert (!lp_codec_decode (twice, sizeof twice, frames, 2, err, sizeof err));
    assert (strstr (err, "twice"));
    //  Wrong payload size (fixext 8)
    uint8_t small [] = { 0xd7, LP_EXT_TYPED, 1, 0, 0, 0, 0, 0, 0, 0 };
    assert (!lp_codec_decode (small, sizeof small, frames, 2, err, sizeof err));
    zframe_destroy (&seven);
    zframe_destroy (&eight);

    //  Every proper prefix of a valid encoding is rejected
    buffers = zlist_new ();
    lp_value_t *sample = lp_value_map ();
    lp_value_set (sample, "a", lp_value_int_range (1, 5));
    lp_value_set (sample, "b", lp_value_string ("some text here"));
    lp_value_set (sample, "c", lp_value_number (1.25));
    lp_value_set (sample, "d", lp_value_int (-1234567890123));
    lp_value_set (sample, "e", lp_value_typed (LP_DTYPE_I32, 2));
    lp_value_set_key (sample, lp_value_int (1), lp_value_bytes ("\xff\xfe", 2));
    frame = lp_codec_encode (sample, buffers, err, sizeof err);
    assert (frame);
    zframe_t *piece = (zframe_t *) zlist_first (buffers);
    byte *bytes = zframe_data (frame);
    size_t size = zframe_size (frame);
    for (size_t k = 0; k < size; k++) {
        uint8_t *prefix = (uint8_t *) malloc (k + 1);
        assert (prefix);
        memcpy (prefix, bytes, k);
        v = lp_codec_decode (prefix, k, &piece, 1, err, sizeof err);
        assert (!v);
        free (prefix);
    }
    v = lp_codec_decode (bytes, size, &piece, 1, err, sizeof err);
    assert (v && lp_value_equal (v, sample));
    lp_value_destroy (&v);

    //  Random garbage, and random mutations of a valid frame
    uint8_t garbage [256];
    int decoded = 0;
    for (int round = 0; round < 20000; round++) {
        size_t len = 1 + (size_t) (rand () % (int) sizeof garbage);
        if (round % 2) {
            for (size_t k = 0; k < len; k++)
                garbage [k] = (uint8_t) rand ();
        }
        else {
            len = size < sizeof garbage? size: sizeof garbage;
            memcpy (garbage, bytes, len);
            int flips = 1 + rand () % 4;
            for (int f = 0; f < flips; f++)
                garbage [rand () % (int) len] = (uint8_t) rand ();
        }
        //  Exact-size heap copy so ASan sees any overread
        uint8_t *copy_bytes = (uint8_t *) malloc (len);
        assert (copy_bytes);
        memcpy (copy_bytes, garbage, len);
        v = lp_codec_decode (copy_bytes, len, &piece, 1, err, sizeof err);
        if (v)
            decoded++;
        lp_value_destroy (&v);
        free (copy_bytes);
    }
    if (verbose)
        printf ("(%d of 20000 random frames decoded) ", decoded);
    zframe_destroy (&frame);
    zframe_destroy (&piece);
    zlist_destroy (&buffers);
    lp_value_destroy (&sample);
    lp_value_destroy (&all);
    //  @end
    printf ("OK\n");
}
