/*  lp_routes.h - the routing table of a data-path actor (mux, scheduler):
    which engines there are and what each has been sent.

    Each actor keeps its own copy, fed by the hub's ADD and REMOVE
    commands: engines by id (for requests that name targets) and by uuid
    (for replies, which arrive with the engine's routing identity), each
    with the list of request records sent to it and not yet final, in send
    order (the actor matches replies by parent msg_id and removes a record
    from anywhere in the list through the handle zlistx gave it; the list
    size is the engine's queue count). An engine that leaves stays in the
    table, inactive, so late replies can be recognised and a
    re-registration reuses its entry. */
#ifndef LP_ROUTES_H_INCLUDED
#define LP_ROUTES_H_INCLUDED

#include "lp_util.h"

typedef struct {
    int id;                             //  engine id
    char uuid [LP_ID_CHARS + 1];        //  routing identity
    bool active;                        //  may be sent to (change it only
                                        //  through lp_routes_add / _deactivate)
    zlistx_t *sent;                     //  records sent, not yet final, in order
    uint64_t done;                      //  replies seen
    uint64_t last_used;                 //  last assignment stamp (lru)
} lp_route_t;

typedef struct _lp_routes_t lp_routes_t;

//  sent_free destroys records left in the lists when the table goes
//  (NULL: none).
lp_routes_t *lp_routes_new (zlistx_destructor_fn *sent_free);
void          lp_routes_destroy (lp_routes_t **self_p);
//  Makes engine id (uuid) active, reusing its entry when the uuid is
//  known; an engine that held the id before becomes inactive. NULL on a
//  bad id or uuid, or out of memory.
lp_route_t   *lp_routes_add (lp_routes_t *self, int id, const char *uuid);
//  The engine may no longer be sent to.
void          lp_routes_deactivate (lp_routes_t *self, lp_route_t *engine);
lp_route_t   *lp_routes_by_id (lp_routes_t *self, int64_t id);      //  NULL if none
lp_route_t   *lp_routes_by_uuid (lp_routes_t *self, const char *uuid);
//  Ids run 0 .. lp_routes_span - 1 (by_id may return NULL in between).
size_t        lp_routes_span (lp_routes_t *self);
//  Active (registered) engines.
size_t        lp_routes_active (lp_routes_t *self);
//  Targets rule (docs/protocol.md, "Direct requests"): reads the array
//  targets into out (room for lp_routes_active ids), each id once, in
//  first-occurrence order, in O(length of targets). Returns the count;
//  -1 with why filled when an id is not an integer or when, after
//  folding, more ids remain than there are active engines (the request
//  is refused whole).
int64_t       lp_routes_fold (lp_routes_t *self, const lp_value_t *targets,
                               int64_t *out, char *why, size_t whylen);

//  ZMQ_AFFINITY for both sockets of a data-path actor: every connection of
//  the actor on I/O thread `thread` of the process's ZeroMQ context, or 0
//  (any) when the context has fewer threads. Set before binding.
uint64_t      lp_routes_io_affinity (int thread);

#endif
