/*  lp_engines.h - the engine table of a data-path actor (mux, scheduler).

    Each actor keeps its own copy, fed by the hub's ADD and REMOVE
    commands: engines by id (for requests that name targets) and by uuid
    (for replies, which arrive with the engine's routing identity), each
    with the FIFO of what was sent to it and not yet answered. An engine
    that leaves stays in the table, inactive, so late replies can be
    recognised and a re-registration reuses its entry. */
#ifndef LP_ENGINES_H_INCLUDED
#define LP_ENGINES_H_INCLUDED

#include "lp_common.h"

typedef struct {
    int id;                             //  engine id
    char uuid [LP_ID_CHARS + 1];        //  routing identity
    bool active;                        //  may be sent to
    zlistx_t *fifo;                     //  sent, not yet answered, in order
    uint64_t done;                      //  replies seen
    uint64_t last_used;                 //  last assignment stamp (lru)
} lp_engine_ref_t;

typedef struct _lp_engines_t lp_engines_t;

//  fifo_free destroys FIFO items left when the table goes (NULL: none).
lp_engines_t *lp_engines_new (zlistx_destructor_fn *fifo_free);
void          lp_engines_destroy (lp_engines_t **self_p);
//  Makes engine id (uuid) active, reusing its entry when the uuid is
//  known; an engine that held the id before becomes inactive. NULL on a
//  bad id or uuid, or out of memory.
lp_engine_ref_t  *lp_engines_add (lp_engines_t *self, int id, const char *uuid);
lp_engine_ref_t  *lp_engines_by_id (lp_engines_t *self, int64_t id);      //  NULL if none
lp_engine_ref_t  *lp_engines_by_uuid (lp_engines_t *self, const char *uuid);
//  Ids run 0 .. lp_engines_span - 1 (by_id may return NULL in between).
size_t        lp_engines_span (lp_engines_t *self);

#endif
