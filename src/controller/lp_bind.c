/*  lp_bind.c - the controller's listening sockets, see lp_bind.h */
#include "lp_bind.h"
#include "lp_wire.h"

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
    //  messages) stays; the wire's LP_MAX_FRAME_BYTES is for the others.
    int64_t max_frame = zsock_maxmsgsize (sock);
    lp_wire_tune_socket (sock);
    if (max_frame > 0 && max_frame < LP_MAX_FRAME_BYTES)
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
    int port = zsock_bind (sock, "tcp://%s:*", ip);
    if (port < 0)
        return -1;
    snprintf (endpoint, size, "tcp://%s:%d", ip, port);
    return 0;
}
