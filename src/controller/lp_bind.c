/*  lp_bind.c - the controller's listening sockets, see lp_bind.h */
#include "lp_bind.h"
#include "lp_wire.h"

int
lp_bind_tcp (zsock_t *sock, const char *ip, char *endpoint, size_t size)
{
    if (!sock)
        return -1;
    lp_wire_tune_socket (sock);
    //  Hundreds of engines connect at once when a big cluster starts: a
    //  short listen queue makes the kernel drop their connection attempts.
    zsock_set_backlog (sock, LP_LISTEN_BACKLOG);
    if (*endpoint) {
        //  The endpoint of the connection files (--restore)
        char wanted [256];
        snprintf (wanted, sizeof wanted, "%s", endpoint);
        return zsock_bind (sock, "%s", wanted) < 0? -1: 0;
    }
    int port = zsock_bind (sock, "tcp://%s:*", ip);
    if (port < 0)
        return -1;
    snprintf (endpoint, size, "tcp://%s:%d", ip, port);
    return 0;
}
