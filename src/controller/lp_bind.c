/*  lp_bind.c - the controller's listening sockets, see lp_bind.h */
#include "lp_bind.h"
#include "lp_wire.h"
#include <sodium.h>

//  The kernel's ephemeral range (ports it gives to outgoing connections
//  and to bind(0)): 0 when unknown
static void
s_ephemeral_range (int *low, int *high)
{
    *low = *high = 0;
    FILE *file = fopen ("/proc/sys/net/ipv4/ip_local_port_range", "r");
    if (file) {
        if (fscanf (file, "%d %d", low, high) != 2)
            *low = *high = 0;
        fclose (file);
    }
}

//  A free port below the ephemeral range, chosen at random; -1 when none
//  was found in a few tries (the caller lets the kernel pick)
static int
s_bind_low (zsock_t *sock, const char *ip)
{
    int low, high;
    s_ephemeral_range (&low, &high);
    if (low - 1 - LP_BIND_PORT_MIN < LP_BIND_PORTS_MIN)
        return -1;
    for (int attempt = 0; attempt < LP_BIND_ATTEMPTS; attempt++) {
        int port = LP_BIND_PORT_MIN + (int) randombytes_uniform ((uint32_t) (low - LP_BIND_PORT_MIN));
        if (zsock_bind (sock, "tcp://%s:%d", ip, port) >= 0)
            return port;
    }
    return -1;
}

//  The controller's CURVE certificate, set once by lpcontroller before any
//  actor starts and only read afterwards (NULL: an insecure cluster).
static zcert_t *s_server_cert = NULL;

void
lp_bind_set_curve (zcert_t *server_cert)
{
    s_server_cert = server_cert;
}

void
lp_bind_connect_self (zsock_t *sock)
{
    if (s_server_cert) {
        zcert_apply (s_server_cert, sock);
        zsock_set_curve_serverkey (sock, zcert_public_txt (s_server_cert));
    }
}

bool
lp_bind_secure (void)
{
    return s_server_cert != NULL;
}

int
lp_bind_tcp (zsock_t *sock, const char *ip, char *endpoint, size_t size)
{
    if (!sock)
        return -1;
    //  A smaller frame cap set by the caller (a channel of small
    //  messages) stays; the wire's LP_DATA_MAX_FRAME is for the others.
    int64_t max_frame = zsock_maxmsgsize (sock);
    lp_wire_tune_socket (sock);
    if (max_frame > 0 && max_frame < LP_DATA_MAX_FRAME)
        zsock_set_maxmsgsize (sock, (int) max_frame);
    //  Hundreds of engines connect at once when a big cluster starts: a
    //  short listen queue makes the kernel drop their connection attempts.
    zsock_set_backlog (sock, LP_LISTEN_BACKLOG);
    if (s_server_cert) {
        //  A CURVE server: a peer that does not complete the handshake with
        //  a key our ZAP handler allows (lp_zap.c) never has a frame read;
        //  no handler answering means no entry either.
        zcert_apply (s_server_cert, sock);
        zsock_set_curve_server (sock, 1);
        zsock_set_zap_domain (sock, LP_ZAP_DOMAIN);
        zsock_set_zap_enforce_domain (sock, 1);
    }
    if (*endpoint) {
        //  The endpoint of the connection files (--restore). A connection
        //  attempt to it (a client or engine reconnecting) may hold the
        //  port for a moment: tried again for a while.
        char wanted [256];
        snprintf (wanted, sizeof wanted, "%s", endpoint);
        int64_t deadline = zclock_mono () + LP_RESTORE_BIND_MSEC;
        while (zsock_bind (sock, "%s", wanted) < 0) {
            if (zmq_errno () != EADDRINUSE || zclock_mono () >= deadline)
                return -1;
            zclock_sleep (LP_RESTORE_BIND_RETRY_MSEC);
        }
        return 0;
    }
    //  Below the ephemeral range when it can: no outgoing connection of
    //  any program can take the port, so it is still free should the
    //  controller die and be restored on it (--restore).
    int port = s_bind_low (sock, ip);
    if (port < 0)
        port = zsock_bind (sock, "tcp://%s:*", ip);
    if (port < 0)
        return -1;
    snprintf (endpoint, size, "tcp://%s:%d", ip, port);
    return 0;
}
