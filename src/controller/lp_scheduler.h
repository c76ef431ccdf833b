/*  lp_scheduler.h - the load-balanced task scheduler actor.

    The pipe speaks the data-path actors' common commands and events
    (ENDPOINTS, ADD, REMOVE, QUEUES, HELLO with channel "task":
    src/controller/lp_actor.h). REMOVE resubmits the engine's tasks that
    have retries left and fails the others; QUEUES counts the tasks
    waiting for an engine as waiting.
*/
#ifndef LP_SCHEDULER_H_INCLUDED
#define LP_SCHEDULER_H_INCLUDED

#include "lp_guard.h"
#include "lp_store.h"

typedef struct {
    const char *ip;                     //  address to bind
    const uint8_t *key;                 //  signing key
    size_t key_len;
    int scheme;                         //  how to pick an engine: an index
                                        //  in the scheme table (lp_policy.h)
    int hwm;                            //  most tasks outstanding per engine, 0 = no limit
    lp_guard_t *guard;                  //  the controller's replay guard (shared)
    lp_store_t *store;                  //  the task store (hooks), NULL when off
    const char *want [2];               //  endpoints to bind again (--restore)
} lp_scheduler_config_t;

//  Scheme by name ("leastload", "lru", "plainrandom", "weighted",
//  "twobin": the table in lp_policy.c); -1 when unknown.
int  lp_scheme_from_name (const char *name);
const char *lp_scheme_name (int scheme);

//  zactor_new (lp_scheduler_actor, &config): binds, then signals 0 (or 1
//  on failure, and exits).
void lp_scheduler_actor (zsock_t *pipe, void *args);

#endif
