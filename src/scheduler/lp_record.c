/*  lp_record.c - reading and re-signing forwarded messages, see lp_record.h */
#include "lp_record.h"
#include <sodium.h>

zframe_t *
lp_record_frame (zmsg_t *msg, size_t delim, size_t offset)
{
    size_t index = delim + offset;
    zframe_t *frame = zmsg_first (msg);
    for (size_t i = 0; frame && i < index; i++)
        frame = zmsg_next (msg);
    return frame;
}

lp_value_t *
lp_record_decode (zmsg_t *msg, size_t delim, size_t offset)
{
    size_t count = zmsg_size (msg);
    if (count < delim + LP_FRAMES_MIN || offset >= LP_FRAMES_MIN)
        return NULL;
    zframe_t **frames = (zframe_t **) malloc (count * sizeof (zframe_t *));
    if (!frames)
        return NULL;
    size_t i = 0;
    for (zframe_t *frame = zmsg_first (msg); frame; frame = zmsg_next (msg))
        frames [i++] = frame;
    zframe_t *frame = frames [delim + offset];
    size_t first = delim + LP_FRAME_BUFFERS;
    char err [128];
    lp_value_t *value = lp_codec_decode (zframe_data (frame), zframe_size (frame),
                                         frames + first, count - first, err, sizeof err);
    free (frames);
    if (value && lp_value_type (value) != LP_MAP)
        lp_value_destroy (&value);
    return value;
}

int
lp_record_parent_id (zmsg_t *msg, size_t delim, char *out, size_t size)
{
    lp_value_t *parent = lp_record_decode (msg, delim, LP_FRAME_PARENT);
    const lp_value_t *id = parent? lp_value_get (parent, LP_HDR_MSG_ID): NULL;
    const char *text = id && lp_value_type (id) == LP_STRING? lp_value_as_string (id, NULL): NULL;
    int rc = -1;
    if (text && strlen (text) < size) {
        memcpy (out, text, strlen (text) + 1);
        rc = 0;
    }
    lp_value_destroy (&parent);
    return rc;
}

int
lp_record_replace (zmsg_t *msg, size_t delim, size_t offset, zframe_t **frame_p)
{
    size_t index = delim + offset;
    size_t count = zmsg_size (msg);
    if (index >= count) {
        zframe_destroy (frame_p);
        return -1;
    }
    //  zmsg has no in-place replace: rotate every frame once through the
    //  message, swapping the one at index (frames are moved, not copied).
    for (size_t i = 0; i < count; i++) {
        zframe_t *frame = zmsg_pop (msg);
        if (i == index) {
            zframe_destroy (&frame);
            frame = *frame_p;
            *frame_p = NULL;
        }
        if (zmsg_append (msg, &frame) != 0) {
            zframe_destroy (&frame);
            return -1;
        }
    }
    return 0;
}

int
lp_record_sign (const uint8_t *key, size_t key_len, zmsg_t *msg, size_t delim)
{
    if (zmsg_size (msg) < delim + LP_FRAMES_MIN)
        return -1;
    crypto_generichash_state state;
    if (crypto_generichash_init (&state, key, key_len, crypto_generichash_BYTES) != 0)
        return -1;
    zframe_t *signature = lp_record_frame (msg, delim, LP_FRAME_SIGNATURE);
    for (zframe_t *frame = zmsg_next (msg); frame; frame = zmsg_next (msg)) {
        uint64_t size = zframe_size (frame);
        uint8_t prefix [8];
        for (int b = 0; b < 8; b++)
            prefix [b] = (uint8_t) (size >> (56 - 8 * b));
        crypto_generichash_update (&state, prefix, sizeof prefix);
        crypto_generichash_update (&state, zframe_data (frame), size);
    }
    uint8_t digest [crypto_generichash_BYTES];
    crypto_generichash_final (&state, digest, sizeof digest);
    char hex [LP_SIGNATURE_HEX_CHARS + 1];
    sodium_bin2hex (hex, sizeof hex, digest, sizeof digest);
    zframe_reset (signature, hex, LP_SIGNATURE_HEX_CHARS);
    return 0;
}
