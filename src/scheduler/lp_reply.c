/*  lp_reply.c - error replies made by the controller, see lp_reply.h */
#include "lp_reply.h"

int
lp_reply_error (lp_wire_t *wire, zsock_t *sock, zframe_t *client,
                const lp_value_t *header, int64_t engine,
                const char *ename, const char *evalue)
{
    const lp_value_t *type_v = lp_value_get (header, "msg_type");
    const char *type = type_v? lp_value_as_string (type_v, NULL): NULL;
    char reply_type [64] = "error_reply";
    const char *suffix = "_request";
    size_t slen = strlen (suffix);
    size_t len = type? strlen (type): 0;
    if (type && len > slen && len - slen + 7 < sizeof reply_type
    &&  streq (type + len - slen, suffix))
        snprintf (reply_type, sizeof reply_type, "%.*s_reply", (int) (len - slen), type);

    lp_msg_t *reply = lp_msg_new (reply_type);
    if (!reply)
        return -1;
    lp_value_t *parent = lp_value_dup (header);
    if (parent)
        lp_msg_set_parent (reply, parent);
    lp_value_t *metadata = lp_msg_metadata (reply);
    lp_value_t *content = lp_msg_content (reply);
    zmsg_t *routing = zmsg_new ();
    zframe_t *copy = client? zframe_dup (client): NULL;
    if (!parent || !routing || (client && !copy)
    ||  lp_value_set (metadata, "engine", lp_value_int (engine))
    ||  lp_value_set (metadata, "status", lp_value_string ("error"))
    ||  lp_value_set (content, "status", lp_value_string ("error"))
    ||  lp_value_set (content, "ename", lp_value_string (ename))
    ||  lp_value_set (content, "evalue", lp_value_string (evalue))
    ||  lp_value_set (content, "traceback", lp_value_string (""))) {
        zframe_destroy (&copy);
        zmsg_destroy (&routing);
        lp_msg_destroy (&reply);
        return -1;
    }
    if (copy)
        zmsg_append (routing, &copy);
    lp_msg_set_routing (reply, &routing);
    return lp_wire_send (wire, &reply, sock);
}

void
lp_reply_refused (lp_wire_t *wire, zsock_t *sock, zmsg_t *zmsg)
{
    lp_drop_t drop = lp_wire_last_drop (wire);
    if (drop != LP_DROP_DATE && drop != LP_DROP_FULL)
        return;
    size_t delim = 0;
    lp_value_t *header = lp_wire_take_refused (wire, &delim);
    if (header && delim == 1) {
        char why [300];
        snprintf (why, sizeof why, "request refused by the controller: %s",
                  lp_wire_last_error (wire));
        lp_reply_error (wire, sock, zmsg_first (zmsg), header, -1, LP_ENAME_PROTOCOL, why);
    }
    lp_value_destroy (&header);
}
