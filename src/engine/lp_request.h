/*  =========================================================================
    lp_request.h - how an engine receives a request so that it can always
    answer it

    lp_wire_decode drops a message whose content does not decode, so its
    sender would never hear of it. The engine instead verifies the
    signature and the header first (lp_wire_verify: signature, header map
    with msg_id and msg_type, replay guard) and decodes parent_header,
    metadata and content second. When only the second step fails, the
    request is returned with empty maps and a reason, and the caller
    answers it with a ProtocolError (protocol.md, "always answer").
    Implemented here, in the engine, because src/common has no such split.
    =========================================================================
*/
#ifndef LP_REQUEST_H_INCLUDED
#define LP_REQUEST_H_INCLUDED

#include "lp_msg.h"
#include "lp_wire.h"

//  Receives one message from sock. NULL when nothing came or the message
//  was dropped (bad signature, bad header, replay: no reply is possible).
//  Otherwise the request; when its parent_header, metadata or content
//  does not decode, those are empty maps and problem holds why (it is ""
//  for a request that decoded whole).
lp_msg_t *lp_request_recv (lp_wire_t *wire, zsock_t *sock, char *problem, size_t size);

//  Same, from a received multipart message (destroyed).
lp_msg_t *lp_request_decode (lp_wire_t *wire, zmsg_t **zmsg_p, char *problem, size_t size);

#endif
