/*  =========================================================================
    lp_msg - one protocol message (header, parent, metadata, content, routing)

    The header is built by lp_msg_new: {msg_id, msg_type, session,
    username, date, version}. Content fields are read through the
    shorthands lp_msg_get_string / lp_msg_get_int.

    Self-test: lp_msg_test, run by lp_selftest.
    =========================================================================
*/
#ifndef LP_MSG_H_INCLUDED
#define LP_MSG_H_INCLUDED

#include "lp_prelude.h"
#include "lp_value.h"
#include "lp_proto.h"               //  message type and field names

typedef struct _lp_msg_t lp_msg_t;

lp_msg_t   *lp_msg_new (const char *msg_type);
//  New message whose parent_header is a copy of request's header and
//  whose routing envelope is a copy of request's.
lp_msg_t   *lp_msg_new_reply (const lp_msg_t *request, const char *msg_type);
//  Message with an empty header map (for decoders that set the header).
lp_msg_t   *lp_msg_new_empty (void);
void        lp_msg_destroy (lp_msg_t **self_p);
const char *lp_msg_type (const lp_msg_t *self);
const char *lp_msg_id (const lp_msg_t *self);
const char *lp_msg_parent_id (const lp_msg_t *self);      //  NULL when none
lp_value_t *lp_msg_header (lp_msg_t *self);               //  maps, never NULL,
lp_value_t *lp_msg_parent (lp_msg_t *self);               //  owned by the msg,
lp_value_t *lp_msg_metadata (lp_msg_t *self);             //  may be modified
lp_value_t *lp_msg_content (lp_msg_t *self);
void        lp_msg_set_content (lp_msg_t *self, lp_value_t *content);  //  taken
void        lp_msg_set_header (lp_msg_t *self, lp_value_t *header);    //  taken
void        lp_msg_set_parent (lp_msg_t *self, lp_value_t *parent);    //  taken
void        lp_msg_set_metadata (lp_msg_t *self, lp_value_t *metadata);//  taken
//  Routing envelope (identity frames before the delimiter); never NULL.
zmsg_t     *lp_msg_routing (lp_msg_t *self);
void        lp_msg_set_routing (lp_msg_t *self, zmsg_t **routing_p);  //  taken
//  Shorthands for content fields; NULL / fallback when absent or mistyped.
const char *lp_msg_get_string (lp_msg_t *self, const char *key);
int64_t     lp_msg_get_int (lp_msg_t *self, const char *key, int64_t fallback);
void        lp_msg_test (bool verbose);

#endif
