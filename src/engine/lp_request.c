/*  =========================================================================
    lp_request.c - receive a request in two steps (see lp_request.h)

    lp_wire_verify does the delimiter, frame count, signature, header and
    replay steps and remembers the msg_id (so a bad request replayed is
    dropped as a replay, not answered twice). The three other maps are
    then decoded one by one with lp_wire_decode_frame (frame positions
    from lp_proto.h), which checks them as lp_wire_decode would.
    =========================================================================
*/
#include "lp_request.h"
#include "lp_proto.h"
#include "lp_msg.h"
#include "lp_wire.h"

lp_msg_t *
lp_request_decode (lp_wire_t *wire, zmsg_t **zmsg_p, char *problem, size_t size)
{
    assert (wire);
    assert (zmsg_p);
    assert (problem && size > 0);
    problem [0] = 0;
    zmsg_t *zmsg = *zmsg_p;
    if (!zmsg)
        return NULL;
    size_t delim = 0;
    lp_value_t *header = lp_wire_verify (wire, zmsg, &delim);
    if (!header) {
        zmsg_destroy (zmsg_p);
        return NULL;
    }
    lp_msg_t *msg = lp_msg_new_empty ();
    zmsg_t *routing = zmsg_new ();
    if (!msg || !routing) {
        zsys_error ("out of memory receiving a request");
        lp_msg_destroy (&msg);
        zmsg_destroy (&routing);
        lp_value_destroy (&header);
        zmsg_destroy (zmsg_p);
        return NULL;
    }
    static const char *names [3] = { "parent_header", "metadata", "content" };
    lp_value_t *maps [3] = { NULL, NULL, NULL };
    for (int i = 0; i < 3; i++) {
        char reason [200] = "";
        maps [i] = lp_wire_decode_frame (zmsg, delim, LP_FRAME_PARENT + (size_t) i,
                                         reason, sizeof reason);
        if (!maps [i]) {
            snprintf (problem, size, "malformed %s: %s", names [i], reason);
            for (int k = 0; k < 3; k++)
                lp_value_destroy (&maps [k]);
            break;
        }
    }
    //  The routing envelope goes with the request, for the reply
    for (size_t i = 0; i < delim; i++) {
        zframe_t *frame = zmsg_pop (zmsg);
        if (zmsg_append (routing, &frame))
            zframe_destroy (&frame);
    }
    zmsg_destroy (zmsg_p);
    lp_msg_set_routing (msg, &routing);
    lp_msg_set_header (msg, header);
    for (int i = 0; i < 3; i++)
        if (!maps [i])
            maps [i] = lp_value_map ();
    if (!maps [0] || !maps [1] || !maps [2]) {
        for (int k = 0; k < 3; k++)
            lp_value_destroy (&maps [k]);
        lp_msg_destroy (&msg);
        return NULL;
    }
    lp_msg_set_parent (msg, maps [0]);
    lp_msg_set_metadata (msg, maps [1]);
    lp_msg_set_content (msg, maps [2]);
    return msg;
}

lp_msg_t *
lp_request_recv (lp_wire_t *wire, zsock_t *sock, char *problem, size_t size)
{
    assert (sock);
    zmsg_t *zmsg = zmsg_recv (sock);
    if (!zmsg) {
        problem [0] = 0;
        return NULL;
    }
    return lp_request_decode (wire, &zmsg, problem, size);
}
