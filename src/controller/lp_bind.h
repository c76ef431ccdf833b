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
    A restored controller (lpcontroller --restore) binds the endpoints of
    its connection files again instead: the caller puts them into the
    endpoint buffers before the call.
    =========================================================================
*/
#ifndef LP_BIND_H_INCLUDED
#define LP_BIND_H_INCLUDED

#include "lp_prelude.h"

//  Tunes sock and binds it to a free TCP port on ip; writes
//  "tcp://ip:port" into endpoint. When endpoint already holds an endpoint
//  ("tcp://ip:port", --restore), binds exactly that one and keeps it.
//  0, or -1 (sock NULL or bind failed).
int     lp_bind_tcp (zsock_t *sock, const char *ip, char *endpoint, size_t size);

#endif
