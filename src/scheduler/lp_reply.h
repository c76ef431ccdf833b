/*  lp_reply.h - error replies made by the controller itself (not by an
    engine): for a request that cannot reach an engine, whose engine died,
    that timed out in a queue, was aborted, or whose dependencies can never
    be met. Shared by the mux and the task scheduler. */
#ifndef LP_REPLY_H_INCLUDED
#define LP_REPLY_H_INCLUDED

#include "lp_common.h"

//  Sends "<type>_reply" (type from header.msg_type, "_request" replaced)
//  to client through sock, with parent = header, metadata {engine,
//  status "error"}, content {status "error", ename, evalue, traceback ""}.
//  Returns 0 / -1.
int lp_reply_error (lp_wire_t *wire, zsock_t *sock, zframe_t *client,
                    const lp_value_t *header, int64_t engine,
                    const char *ename, const char *evalue);

#endif
