/*  lp_reply.c - error replies made by the controller, see lp_reply.h */
#include "lp_reply.h"
#include "lp_proto.h"
#include "lp_msg.h"
#include "lp_wire.h"

int
lp_reply_error (lp_wire_t *wire, zsock_t *sock, zframe_t *client,
                const lp_value_t *header, int64_t engine,
                const char *ename, const char *evalue)
{
    const lp_value_t *type_v = lp_value_get (header, LP_HDR_MSG_TYPE);
    const char *type = type_v? lp_value_as_string (type_v, NULL): NULL;
    char reply_type [64];
    lp_proto_reply_type (type, reply_type, sizeof reply_type);

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
    ||  lp_value_set (metadata, LP_META_ENGINE, lp_value_int (engine))
    ||  lp_value_set (metadata, LP_META_STATUS, lp_value_string (LP_STATUS_ERROR))
    ||  lp_value_set (metadata, LP_META_ENAME, lp_value_string (ename))
    ||  lp_value_set (content, LP_CONTENT_STATUS, lp_value_string (LP_STATUS_ERROR))
    ||  lp_value_set (content, LP_CONTENT_ENAME, lp_value_string (ename))
    ||  lp_value_set (content, LP_CONTENT_EVALUE, lp_value_string (evalue))
    ||  lp_value_set (content, LP_CONTENT_TRACEBACK, lp_value_string (""))) {
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

//  ---------------------------------------------------------------------
//  Scanning a msgpack map for one str value, without decoding it

//  Bytes of the fixed part of the object at p (type byte and length or
//  value bytes), the bytes of payload that follow it in *extra, and the
//  number of nested objects it contains in *items. -1 for 0xc1 (never
//  used) or when the fixed part runs past end.
static int64_t
s_object_head (const uint8_t *p, const uint8_t *end, uint64_t *extra, uint64_t *items)
{
    uint8_t type = *p;
    *extra = 0;
    *items = 0;
    size_t width = 0;           //  bytes of the big-endian length field
    int64_t head = 1;
    if (type <= 0x7f || type >= 0xe0 || type == 0xc0 || type == 0xc2 || type == 0xc3)
        return 1;
    if (type >= 0x80 && type <= 0x8f) {
        *items = 2 * (uint64_t) (type & 0x0f);
        return 1;
    }
    if (type >= 0x90 && type <= 0x9f) {
        *items = type & 0x0f;
        return 1;
    }
    if (type >= 0xa0 && type <= 0xbf) {
        *extra = type & 0x1f;
        return 1;
    }
    switch (type) {
        case 0xcc: case 0xd0: return 2;
        case 0xcd: case 0xd1: return 3;
        case 0xca: case 0xce: case 0xd2: return 5;
        case 0xcb: case 0xcf: case 0xd3: return 9;
        case 0xd4: return 3;
        case 0xd5: return 4;
        case 0xd6: return 6;
        case 0xd7: return 10;
        case 0xd8: return 18;
        case 0xc4: case 0xd9: width = 1; break;
        case 0xc5: case 0xda: width = 2; break;
        case 0xc6: case 0xdb: width = 4; break;
        case 0xc7: width = 1; head = 1; break;      //  ext: + type byte
        case 0xc8: width = 2; head = 1; break;
        case 0xc9: width = 4; head = 1; break;
        case 0xdc: case 0xde: width = 2; break;
        case 0xdd: case 0xdf: width = 4; break;
        default: return -1;     //  0xc1
    }
    if ((size_t) (end - p) < 1 + width)
        return -1;
    uint64_t n = 0;
    for (size_t i = 0; i < width; i++)
        n = (n << 8) | p [1 + i];
    head += (int64_t) width;
    if (type >= 0xc7 && type <= 0xc9)
        head++;                 //  the ext type byte
    if (type == 0xdc || type == 0xdd)
        *items = n;
    else
    if (type == 0xde || type == 0xdf)
        *items = 2 * n;
    else
        *extra = n;
    return head;
}

//  Skips count objects from *pos; -1 when the data ends first. Iterative
//  (a counter of objects still to skip), so no depth can exhaust a stack.
static int
s_skip (const uint8_t *data, size_t size, size_t *pos, uint64_t count)
{
    const uint8_t *end = data + size;
    while (count > 0) {
        //  Every object takes at least one byte: more objects than bytes
        //  left is malformed, and stops long loops on hostile counts.
        if (*pos >= size || count > size - *pos)
            return -1;
        uint64_t extra, items;
        int64_t head = s_object_head (data + *pos, end, &extra, &items);
        if (head < 0 || (uint64_t) head > size - *pos
        ||  extra > size - *pos - (uint64_t) head)
            return -1;
        *pos += (size_t) head + (size_t) extra;
        count = count - 1 + items;
    }
    return 0;
}

//  The str at *pos: its bytes and length; -1 when the object is no str.
static int
s_str_at (const uint8_t *data, size_t size, size_t pos, const uint8_t **str, size_t *len)
{
    if (pos >= size)
        return -1;
    uint8_t type = data [pos];
    if (!((type >= 0xa0 && type <= 0xbf) || type == 0xd9 || type == 0xda || type == 0xdb))
        return -1;
    uint64_t extra, items;
    int64_t head = s_object_head (data + pos, data + size, &extra, &items);
    if (head < 0 || (uint64_t) head > size - pos || extra > size - pos - (uint64_t) head)
        return -1;
    *str = data + pos + head;
    *len = (size_t) extra;
    return 0;
}

int
lp_reply_map_str (zframe_t *frame, const char *key, char *out, size_t size)
{
    if (!frame)
        return -1;
    return lp_reply_bytes_str (zframe_data (frame), zframe_size (frame), key, out, size);
}

int
lp_reply_bytes_str (const uint8_t *data, size_t bytes, const char *key, char *out, size_t size)
{
    if (!data || size == 0)
        return -1;
    if (bytes == 0)
        return -1;
    uint64_t extra, items;
    int64_t head = s_object_head (data, data + bytes, &extra, &items);
    uint8_t type = data [0];
    bool map = (type >= 0x80 && type <= 0x8f) || type == 0xde || type == 0xdf;
    if (head < 0 || !map)
        return -1;
    size_t pos = (size_t) head;
    size_t key_len = strlen (key);
    for (uint64_t pair = 0; pair < items / 2; pair++) {
        const uint8_t *str;
        size_t len;
        bool match = s_str_at (data, bytes, pos, &str, &len) == 0
                  && len == key_len && memcmp (str, key, len) == 0;
        if (s_skip (data, bytes, &pos, 1) != 0)
            return -1;
        if (match) {
            if (s_str_at (data, bytes, pos, &str, &len) != 0 || len >= size
            ||  memchr (str, 0, len))
                return -1;
            memcpy (out, str, len);
            out [len] = 0;
            return 0;
        }
        if (s_skip (data, bytes, &pos, 1) != 0)
            return -1;
    }
    return -1;
}

void
lp_reply_unmatched (lp_unmatched_t *self, const char *who,
                    const char *uuid, const char *parent_id)
{
    self->count++;
    int64_t now = zclock_mono ();
    if (self->count == 1 || now - self->logged >= LP_DROP_LOG_MSEC) {
        self->logged = now;
        zsys_warning ("%s: dropped a reply from engine %s to %s, which has no "
                      "request recorded there (%llu such replies so far)", who,
                      uuid && *uuid? uuid: "-",
                      parent_id && *parent_id? parent_id: "(no parent msg_id)",
                      (unsigned long long) self->count);
    }
}
