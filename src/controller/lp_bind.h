/*  =========================================================================
    lp_bind - the controller's listening sockets: tuned, on a free port

    Every socket the controller binds (hub, mux, scheduler, relay) goes
    through lp_bind_tcp: the wire's socket options (lp_wire_tune_socket:
    frame cap, no HWM drops, short linger), a listen backlog of
    LP_LISTEN_BACKLOG, and a free port chosen at random below the kernel's
    ephemeral range (ip_local_port_range: no outgoing connection of any
    program can take it while the controller is down, so --restore finds
    it free), or one the kernel picks when that fails; the endpoint is then
    written into the connection files. Engines and clients only connect.
    In a secure cluster (lp_bind_set_curve) every socket is also a CURVE
    server with the controller's certificate, its handshakes checked by
    the ZAP handler (lp_zap.c) under the domain LP_ZAP_DOMAIN.
    A restored controller (lpcontroller --restore) binds the endpoints of
    its connection files again instead: the caller puts them into the
    endpoint buffers before the call.
    =========================================================================
*/
#ifndef LP_BIND_H_INCLUDED
#define LP_BIND_H_INCLUDED

#include "lp_prelude.h"

//  Tunes sock (keeping a ZMQ_MAXMSGSIZE the caller set lower than the
//  wire's) and binds it to a free TCP port on ip; writes
//  "tcp://ip:port" into endpoint. When endpoint already holds an endpoint
//  ("tcp://ip:port", --restore), binds exactly that one and keeps it.
//  0, or -1 (sock NULL or bind failed).
int     lp_bind_tcp (zsock_t *sock, const char *ip, char *endpoint, size_t size);
//  Every later lp_bind_tcp makes a CURVE server with this certificate
//  (kept by the caller until the sockets are gone). Call before the
//  actors start; NULL (the default) for an insecure cluster.
void    lp_bind_set_curve (zcert_t *server_cert);
bool    lp_bind_secure (void);
//  A socket of the controller that connects to one of its own endpoints
//  (the task store's resubmissions): in a secure cluster, a CURVE client
//  with the controller's own key pair, which the ZAP handler admits too.
//  Call before zsock_connect.
void    lp_bind_connect_self (zsock_t *sock);

#define LP_ZAP_DOMAIN "luaparallel"

#endif
