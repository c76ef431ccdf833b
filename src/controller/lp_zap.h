/*  =========================================================================
    lp_zap - a secure cluster's keys and its ZAP handler

    `lpcontroller --secure` (the default on a non-loopback address) keeps
    three CURVE certificates in <profile>/security/ (czmq zcert files,
    mode 0600): controller.key, client.key and engine.key, each with its
    _secret twin. They are made on the first secure start and reused after;
    `cluster.sh rekey` removes them (the controller stopped) and the next
    start makes new ones.

    The ZAP handler (RFC 27) is an actor bound on inproc://zeromq.zap.01:
    libzmq asks it about every CURVE handshake on the controller's sockets
    and it allows exactly the client's and the engine's public keys (and
    the controller's own, for its sockets that connect to its endpoints:
    lp_bind_connect_self); a refused key is logged (a warning with the key and the peer's address).
    =========================================================================
*/
#ifndef LP_ZAP_H_INCLUDED
#define LP_ZAP_H_INCLUDED

#include "lp_prelude.h"

typedef struct {
    zcert_t *controller;                //  the CURVE server's key pair
    zcert_t *client;                    //  the roles' key pairs
    zcert_t *engine;
} lp_keys_t;

//  Loads the three certificates from folder, making (and saving, 0600)
//  any that is missing. 0, or -1 with err.
int     lp_keys_load (lp_keys_t *keys, const char *folder, char *err, size_t errlen);
void    lp_keys_destroy (lp_keys_t *keys);

//  zactor_new (lp_zap_actor, keys): the ZAP handler; keys must outlive it.
void    lp_zap_actor (zsock_t *pipe, void *args);

void    lp_zap_test (bool verbose);

#endif
