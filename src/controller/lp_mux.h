/*  lp_mux.h - the direct multiplexer actor of the controller: one per
    channel ("mux" for direct requests, "control" for interrupt, shutdown
    and abort).

    The pipe speaks the data-path actors' common commands and events
    (ENDPOINTS, ADD, REMOVE, QUEUES, HELLO: src/controller/lp_actor.h),
    and one of its own:
      "SHUTDOWN"        ask every engine to exit (control shutdown_request)
*/
#ifndef LP_MUX_H_INCLUDED
#define LP_MUX_H_INCLUDED

#include "lp_guard.h"
#include "lp_store.h"

typedef struct {
    const char *ip;                     //  address to bind
    const uint8_t *key;                 //  signing key
    size_t key_len;
    const char *channel;                //  "mux" or "control"
    lp_guard_t *guard;                  //  the controller's replay guard (shared)
    lp_store_t *store;                  //  the task store (hooks), NULL when off
    const char *want [2];               //  endpoints to bind again (--restore)
} lp_mux_config_t;

//  zactor_new (lp_mux_actor, &config): binds its two sockets (client-facing
//  and engine-facing ROUTER), then signals 0; on a bind failure it signals
//  1 and exits.
void lp_mux_actor (zsock_t *pipe, void *args);

#endif
