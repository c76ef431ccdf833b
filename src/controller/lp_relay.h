/*  lp_relay.h - the iopub relay actor: engines' PUBs connect to its XSUB,
    clients' SUBs to its XPUB; zmq_proxy forwards output one way and
    subscriptions the other, on its own thread, untouched (clients verify
    the signatures).
    Pipe: "ENDPOINTS" -> s s (engine side, client side), then the pipe is
    the proxy's control socket: send "TERMINATE" before zactor_destroy. */
#ifndef LP_RELAY_H_INCLUDED
#define LP_RELAY_H_INCLUDED

#include "lp_prelude.h"

typedef struct {
    const char *ip;                     //  address to bind
    const char *want [2];               //  endpoints to bind again (--restore)
} lp_relay_config_t;

//  zactor_new (lp_relay_actor, &config)
void lp_relay_actor (zsock_t *pipe, void *config);

#endif
