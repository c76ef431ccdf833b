/*  lp_relay.c - the iopub relay actor, see lp_relay.h */
#include "lp_relay.h"
#include "lp_bind.h"
#include "lp_wire.h"

void
lp_relay_actor (zsock_t *pipe, void *args)
{
    const lp_relay_config_t *config = (const lp_relay_config_t *) args;
    const char *ip = config->ip;
    zsock_t *from_engines = zsock_new (ZMQ_XSUB);
    zsock_t *to_clients = zsock_new (ZMQ_XPUB);
    char endpoints [2][128];
    //  Clients only send subscriptions here: small frames
    if (to_clients)
        zsock_set_maxmsgsize (to_clients, LP_SMALL_MAX_FRAME);
    for (int i = 0; i < 2; i++)
        snprintf (endpoints [i], 128, "%s", config->want [i]? config->want [i]: "");
    if (lp_bind_tcp (from_engines, ip, endpoints [0], 128)
    ||  lp_bind_tcp (to_clients, ip, endpoints [1], 128)) {
        zsys_error ("controller/iopub: cannot bind on %s: %s", ip,
                    zmq_strerror (zmq_errno ()));
        zsock_destroy (&from_engines);
        zsock_destroy (&to_clients);
        zsock_signal (pipe, 1);
        return;
    }
    zsock_signal (pipe, 0);
    char *command = zstr_recv (pipe);
    if (command && streq (command, "ENDPOINTS")) {
        zsock_send (pipe, "ss", endpoints [0], endpoints [1]);
        //  Runs until "TERMINATE" arrives on the pipe.
        zmq_proxy_steerable (zsock_resolve (from_engines), zsock_resolve (to_clients),
                             NULL, zsock_resolve (pipe));
    }
    free (command);
    zsock_destroy (&from_engines);
    zsock_destroy (&to_clients);
}
