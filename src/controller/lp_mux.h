/*  lp_mux.h - the direct multiplexer actor of the controller: one per
    channel ("mux" for direct requests, "control" for interrupt, shutdown
    and abort).

    Commands on the actor pipe (hub -> mux), each a czmq picture message:
      "ADD"     i s     engine id, uuid: route to it from now on
      "REMOVE"  i s s   engine id, reason, ename: fail its unanswered
                        requests with ename (EngineError, TimeLimit)
      "QUEUES"          reply "QUEUES" s: "id:n id:n ..." unanswered per engine
      "ENDPOINTS"       reply s s: engine endpoint, client endpoint
      "SHUTDOWN"        ask every engine to exit (control shutdown_request)
      "$TERM"
    Events (mux -> hub):
      "HELLO"   i s s   engine id, uuid, channel (the actor's)
*/
#ifndef LP_MUX_H_INCLUDED
#define LP_MUX_H_INCLUDED

#include "lp_guard.h"

typedef struct {
    const char *ip;                     //  address to bind
    const uint8_t *key;                 //  signing key
    size_t key_len;
    const char *channel;                //  "mux" or "control"
    lp_guard_t *guard;                  //  the controller's replay guard (shared)
} lp_mux_config_t;

//  zactor_new (lp_mux_actor, &config): binds its two sockets (client-facing
//  and engine-facing ROUTER), then signals.
//  On a bind failure it signals -1 and exits.
void lp_mux_actor (zsock_t *pipe, void *args);

#endif
