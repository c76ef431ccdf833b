/*  =========================================================================
    lp_codec - lp_value_t <-> msgpack, large payloads as separate frames

    Integers are int64, numbers float64, strings str, bytes bin. Strings
    and bytes longer than LP_INLINE_MAX_BYTES and all typed arrays go out
    of band: the msgpack holds an ext (type 1 typed array, type 2 string)
    whose 16-byte payload is big-endian u8 dtype, u8 flags, u16 0, u32
    first buffer index, u32 piece count, u32 0 -- then the data follows as
    `pieces` frames of at most LP_PIECE_BYTES each. flags bit 0: a typed
    array that is a plain sequence, a string that is text (str). An array
    or map whose msgpack exceeds LP_INLINE_MAX_BYTES inside a value (the
    value itself: LP_PIECE_BYTES) goes out of band the same way, as ext
    type 3 whose pieces hold its msgpack (the receiver joins them and
    decodes that), so no frame is larger than LP_PIECE_BYTES plus what a
    map of small fields holds. See docs/protocol.md.

    Self-test: lp_codec_test, run by lp_selftest.
    =========================================================================
*/
#ifndef LP_CODEC_H_INCLUDED
#define LP_CODEC_H_INCLUDED

#include "lp_prelude.h"
#include "lp_value.h"

#define LP_EXT_TYPED  1
#define LP_EXT_BYTES  2
#define LP_EXT_MSGPACK 3                //  an array or map, its msgpack in pieces

//  Encodes value as one msgpack frame; out-of-band data appended to
//  buffers (zframe_t *, indices continue from zlist_size(buffers)).
//  Returns NULL and fills err on failure (nesting too deep, out of memory).
zframe_t   *lp_codec_encode (const lp_value_t *value, zlist_t *buffers,
                             char *err, size_t errlen);
//  Encodes value as one frame with nothing out of band (headers: a
//  forwarder reads them without buffers): long strings stay inline, a
//  typed array is an error. The caller checks the frame's size.
zframe_t   *lp_codec_encode_inline (const lp_value_t *value, char *err, size_t errlen);
//  Same as lp_codec_encode, for a value the caller destroys right after (and does not read):
//  the pages of its large buffers are released as they are copied into
//  frames, so the value and its frames never both hold the whole data.
zframe_t   *lp_codec_encode_consume (lp_value_t *value, zlist_t *buffers,
                                     char *err, size_t errlen);
//  Same, for a value the caller destroys right after, without copying its
//  large buffers: pieces gets lp_piece_t * that point into them. Each
//  buffer the value owns is taken from it (the value holds nil there) and
//  freed when its last piece is destroyed, from any thread (lp_piece_free
//  is a zmq_free_fn for zmq_msg_init_data, hint = the piece's hold); a
//  buffer the value does not own is copied once.
typedef struct _lp_hold_t lp_hold_t;
typedef struct {
    const void *data;                   //  the piece's bytes
    size_t size;                        //  at most LP_PIECE_BYTES
    lp_hold_t *hold;                    //  keeps them alive
} lp_piece_t;
zframe_t   *lp_codec_encode_refer (lp_value_t *value, zlist_t *pieces,
                                   char *err, size_t errlen);
//  Drops the piece's reference to its buffer and frees the piece.
void        lp_piece_destroy (lp_piece_t **self_p);
//  Drops one reference to hint (an lp_hold_t); data is not used.
void        lp_piece_free (void *data, void *hint);
//  Decodes one frame. buffers/nbuffers are the message's buffer frames.
//  Checks declared counts against the bytes left before msgpack-c
//  allocates, requires exactly one object filling the frame, and a depth
//  of at most 32. Returns NULL and fills err when malformed.
lp_value_t *lp_codec_decode (const void *data, size_t size,
                             zframe_t **buffers, size_t nbuffers,
                             char *err, size_t errlen);
//  Out-of-band strings (typed arrays that are not sequences) are decoded
//  into malloc'd blocks with str_head (typed_head) bytes of room before
//  the data, so that a Lua string (lp.array) can adopt the block as it is
//  (lp_lua_enable_adoption sets this; process-wide, set it before any
//  decoding and never change it afterwards). Default 0 and 0.
void        lp_codec_set_headroom (size_t str_head, size_t typed_head);
//  Frees a typed array's data decoded with typed_head bytes before it.
void        lp_codec_free_typed_block (void *data);
void        lp_codec_test (bool verbose);

#endif
