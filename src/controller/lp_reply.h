/*  lp_reply.h - error replies made by the controller itself (not by an
    engine): for a request that cannot reach an engine, whose engine died,
    that timed out in a queue, was aborted, or whose dependencies can never
    be met. Shared by the mux and the task scheduler. */
#ifndef LP_REPLY_H_INCLUDED
#define LP_REPLY_H_INCLUDED

#include "lp_wire.h"

//  Sends "<type>_reply" (type from header.msg_type, "_request" replaced)
//  to client through sock, with parent = header, metadata {engine,
//  status "error"}, content {status "error", ename, evalue, traceback ""}.
//  Returns 0 / -1.
int lp_reply_error (lp_wire_t *wire, zsock_t *sock, zframe_t *client,
                    const lp_value_t *header, int64_t engine,
                    const char *ename, const char *evalue);

//  After lp_wire_verify returned NULL: when the wire refused a signed
//  request for its date or because the replay guard is full (not a
//  replay: its sender should hear why), answers it with a ProtocolError
//  (engine -1) through sock, to the client in the first frame of zmsg.
//  Nothing for other drops.
void lp_reply_refused (lp_wire_t *wire, zsock_t *sock, zmsg_t *zmsg);

//  Finds key in the msgpack map frame (a parent_header or metadata of a
//  message that lp_wire_verify accepted) and, when its value is a str of
//  fewer than size bytes, copies it NUL-terminated into out. 0 found, -1
//  not (absent, another type, too long, malformed). The routing fields
//  (parent msg_id, status, ename) are all the controller reads of a
//  reply, so it scans the bytes instead of decoding the map into values:
//  no allocation, no out-of-band buffer is touched.
int lp_reply_map_str (zframe_t *frame, const char *key, char *out, size_t size);
//  The same on bytes (a map frame kept elsewhere: the task store's copies).
int lp_reply_bytes_str (const uint8_t *data, size_t bytes, const char *key,
                        char *out, size_t size);


//  Engine replies that match no record: counted, logged at most once a
//  minute (the first at once). who names the actor in the log line.
typedef struct {
    uint64_t count;                     //  replies dropped: no record
    int64_t logged;                     //  zclock_mono of the last log line
} lp_unmatched_t;

void lp_reply_unmatched (lp_unmatched_t *self, const char *who,
                         const char *uuid, const char *parent_id);

#endif
