/*  lp_record.h - what the data-path actors (mux, scheduler) read of and
    change in a forwarded message without decoding all of it.

    Forwarders keep a record per request keyed by msg_id (docs/protocol.md,
    "Direct requests": replies are matched by parent_header.msg_id, never
    by position). These helpers decode the parent_header and metadata
    frames of a verified message, replace one signed frame, and sign a
    message again with the cluster key (the scheduler gives each retry its
    own msg_id and restores the original parent_header in the reply).

    Kept here, not in src/common, until the common owner moves them into
    lp_wire / lp_proto (the signature is computed exactly as lp_wire does:
    keyed BLAKE2b-256 over every frame after the signature, each prefixed
    by its length as 8 bytes big-endian, as 64 hex characters). */
#ifndef LP_RECORD_H_INCLUDED
#define LP_RECORD_H_INCLUDED

#include "lp_common.h"

//  Frame index (from 0) of the delimiter of msg + offset; NULL when the
//  message is shorter.
zframe_t   *lp_record_frame (zmsg_t *msg, size_t delim, size_t offset);
//  Decodes the map in frame delim + offset, with the message's buffer
//  frames (from delim + 6) for out-of-band values. NULL when malformed.
lp_value_t *lp_record_decode (zmsg_t *msg, size_t delim, size_t offset);
//  parent_header.msg_id of a verified message into out; 0, or -1 when the
//  parent_header does not decode or has no string msg_id that fits.
int         lp_record_parent_id (zmsg_t *msg, size_t delim, char *out, size_t size);
//  Replaces frame delim + offset with *frame_p (taken). 0 / -1.
int         lp_record_replace (zmsg_t *msg, size_t delim, size_t offset, zframe_t **frame_p);
//  Signs msg again in place (its signature frame, delim + 1). 0 / -1.
int         lp_record_sign (const uint8_t *key, size_t key_len, zmsg_t *msg, size_t delim);

#endif
