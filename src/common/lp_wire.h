/*  =========================================================================
    lp_wire - signed multipart messages: encode, verify, decode, forward

    Turns messages into signed multipart ZeroMQ messages and back.
    One instance per thread (not thread-safe). Drops are counted and
    logged through zsys_warning at most once per peer per LP_DROP_LOG_MSEC.

    Self-test: lp_wire_test, run by lp_selftest.
    =========================================================================
*/
#ifndef LP_WIRE_H_INCLUDED
#define LP_WIRE_H_INCLUDED

#include "lp_prelude.h"
#include "lp_proto.h"               //  LP_FRAME_* positions
#include "lp_msg.h"
#include "lp_guard.h"

typedef struct _lp_wire_t lp_wire_t;

//  name appears in log lines ("controller/mux", "engine 3").
lp_wire_t  *lp_wire_new (const uint8_t *key, size_t key_len, const char *name);
void        lp_wire_destroy (lp_wire_t **self_p);
//  Session id stamped into headers of messages this wire sends.
const char *lp_wire_session (lp_wire_t *self);
//  Signed multipart message; the msg is destroyed; NULL on encoding error
//  (err filled).
zmsg_t     *lp_wire_encode (lp_wire_t *self, lp_msg_t **msg_p, char *err, size_t errlen);
//  The same, with the message's large buffers not copied but referred to
//  (taken from the msg's values, freed once ZeroMQ has sent them), for a
//  message sent at once with lp_wire_out_send; NULL on encoding error.
typedef struct _lp_wire_out_t lp_wire_out_t;
lp_wire_out_t *lp_wire_encode_out (lp_wire_t *self, lp_msg_t **msg_p,
                                   char *err, size_t errlen);
//  Size of its biggest map or buffer frame in bytes (at most
//  LP_DATA_MAX_FRAME: the encoder refuses larger).
size_t      lp_wire_out_largest (lp_wire_out_t *self);
//  Sends it on sock (zero-copy for the buffers) and destroys it; 0, or -1
//  when ZeroMQ refused it (errno set; nothing sent: only the first frame
//  of a message can be refused).
int         lp_wire_out_send (lp_wire_out_t **self_p, zsock_t *sock);
void        lp_wire_out_destroy (lp_wire_out_t **self_p);
//  Encodes and sends (as lp_wire_out_send); 0, or -1 (msg destroyed in
//  both cases).
int         lp_wire_send (lp_wire_t *self, lp_msg_t **msg_p, zsock_t *sock);
//  Verifies, checks replay, decodes. The zmsg is destroyed. NULL when the
//  message was dropped (see lp_wire_dropped / lp_wire_last_error).
lp_msg_t   *lp_wire_decode (lp_wire_t *self, zmsg_t **zmsg_p);
//  Receives one message from sock and decodes it; NULL when dropped or
//  interrupted.
lp_msg_t   *lp_wire_recv (lp_wire_t *self, zsock_t *sock);
//  A receiver that answers every request whose header verified (the
//  engine, "always answer" in protocol.md): as lp_wire_decode, except that
//  once the header is verified and its msg_id admitted, buffers or maps
//  that fail do not drop the message: they come back as empty maps and
//  problem says why ("" for a message that decoded whole).
lp_msg_t   *lp_wire_decode_request (lp_wire_t *self, zmsg_t **zmsg_p,
                                    char *problem, size_t size);
lp_msg_t   *lp_wire_recv_request (lp_wire_t *self, zsock_t *sock,
                                  char *problem, size_t size);
//  For forwarders: verifies the signature of zmsg in place (nothing
//  decoded but the header) and checks replay. Returns the decoded header
//  (caller destroys) and sets *delim_p to the delimiter's frame index; NULL
//  when dropped.
lp_value_t *lp_wire_verify (lp_wire_t *self, zmsg_t *zmsg, size_t *delim_p);
//  The same without the replay guard, for replies a forwarder matches to
//  its request record (a replayed reply finds no record and is dropped):
//  the guard then holds only requests, not twice as many ids.
lp_value_t *lp_wire_verify_reply (lp_wire_t *self, zmsg_t *zmsg, size_t *delim_p);
uint64_t    lp_wire_dropped (lp_wire_t *self);
//  Why the last message was dropped, for forwarders that answer what they
//  refuse (Invariant 1: a request whose signed header was read ends with a
//  reply). A signed request refused for its date (it may have waited in a
//  queue past the window) or because the guard is full is not a replay:
//  its sender should get an error reply. After such a drop,
//  lp_wire_take_refused returns its verified header (caller destroys; NULL
//  after any other drop or when taken) and *delim_p its delimiter index;
//  the zmsg given to lp_wire_verify is still the caller's, for routing.
typedef enum {
    LP_DROP_NONE = 0,                   //  nothing dropped yet
    LP_DROP_MALFORMED,                  //  framing, header, maps
    LP_DROP_SIGNATURE,                  //  bad or missing signature
    LP_DROP_REPLAY,                     //  msg_id seen before
    LP_DROP_DATE,                       //  date outside the replay window
    LP_DROP_FULL                        //  replay guard full
} lp_drop_t;
lp_drop_t   lp_wire_last_drop (lp_wire_t *self);
lp_value_t *lp_wire_take_refused (lp_wire_t *self, size_t *delim_p);
//  Replay guard: each wire has its own (by count, no date check). The
//  controller sets its one shared guard by time on every actor's wire;
//  guard is not taken and must outlive the wire. NULL: back to the own.
void        lp_wire_set_guard (lp_wire_t *self, lp_guard_t *guard);
lp_guard_t *lp_wire_guard (lp_wire_t *self);            //  the one in use
//  Forwarders. zmsg is a whole message whose delimiter is frame delim
//  (from lp_wire_verify); frames are named by LP_FRAME_* (lp_proto.h).
//  Recomputes the signature frame over every frame after it (after the
//  caller changed header, parent, metadata, content or buffers). 0, or -1
//  when delim is not the delimiter, too few frames, or out of memory.
//  The frame `which` (LP_FRAME_*) of a message whose delimiter is frame
//  delim; NULL when delim is not the delimiter or the message is short.
zframe_t   *lp_wire_frame (zmsg_t *zmsg, size_t delim, size_t which);
int         lp_wire_resign (lp_wire_t *self, zmsg_t *zmsg, size_t delim);
//  Decodes one map frame (LP_FRAME_HEADER .. LP_FRAME_CONTENT) with the
//  same checks as lp_wire_decode. NULL and err filled when malformed.
lp_value_t *lp_wire_decode_frame (zmsg_t *zmsg, size_t delim, size_t which,
                                  char *err, size_t errlen);
//  The parent_header map (for matching a reply by its parent msg_id:
//  lp_wire_map_string (parent, LP_HDR_MSG_ID)); caller destroys; NULL and
//  err filled when malformed.
lp_value_t *lp_wire_parent (zmsg_t *zmsg, size_t delim, char *err, size_t errlen);
//  The string at key of a map, NULL when absent, not a string or no map.
const char *lp_wire_map_string (const lp_value_t *map, const char *key);
//  Replaces map frame `which` by map encoded inline (nothing out of band:
//  as headers and parents are sent) and re-signs. 0, or -1 when it does
//  not encode or exceeds LP_DATA_MAX_FRAME (nothing changed unless the
//  re-signing ran out of memory).
int         lp_wire_replace (lp_wire_t *self, zmsg_t *zmsg, size_t delim, size_t which,
                             const lp_value_t *map);
const char *lp_wire_last_error (lp_wire_t *self);        //  why the last drop
//  Sets ZMQ_MAXMSGSIZE (LP_DATA_MAX_FRAME), no HWM and linger on a
//  socket this process owns.
void        lp_wire_tune_socket (zsock_t *sock);
void        lp_wire_test (bool verbose);

#endif
