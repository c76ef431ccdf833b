/*  =========================================================================
    lp_conn - a connection file (JSON through jansson)

    {"version":"1.0","kind":"engine"|"client","signature_scheme":
     "blake2b-256","key":"<hex>","location":"127.0.0.1",
     "endpoints":{"registration":"tcp://127.0.0.1:40001", ...},
     "curve":{"server_key":"<Z85>","public_key":"<Z85>","secret_key":"<Z85>"}}
    ("curve" only for a secure cluster: the controller's public key and
    this role's own key pair, 40 Z85 characters each.)

    Self-test: lp_conn_test, run by lp_selftest.
    =========================================================================
*/
#ifndef LP_CONN_H_INCLUDED
#define LP_CONN_H_INCLUDED

#include "lp_prelude.h"

typedef struct _lp_conn_t lp_conn_t;

lp_conn_t  *lp_conn_new (const char *kind);
void        lp_conn_destroy (lp_conn_t **self_p);
//  Loads and checks a file; on failure NULL and err = "<path>: <problem>".
lp_conn_t  *lp_conn_load (const char *path, char *err, size_t errlen);
//  Writes atomically (temporary file + rename), mode 0600. 0 / -1 + err.
int         lp_conn_save (lp_conn_t *self, const char *path, char *err, size_t errlen);
const char *lp_conn_kind (lp_conn_t *self);
const char *lp_conn_endpoint (lp_conn_t *self, const char *channel);  //  NULL if absent
void        lp_conn_set_endpoint (lp_conn_t *self, const char *channel, const char *endpoint);
const uint8_t *lp_conn_key (lp_conn_t *self, size_t *len_p);
void        lp_conn_set_key (lp_conn_t *self, const uint8_t *key, size_t len);
const char *lp_conn_location (lp_conn_t *self);
void        lp_conn_set_location (lp_conn_t *self, const char *location);
//  CURVE (a secure cluster): the controller's public key and the role's
//  key pair, Z85 (40 characters each). lp_conn_secure is false when the
//  file has no "curve" object (an insecure, loopback cluster).
bool        lp_conn_secure (lp_conn_t *self);
void        lp_conn_set_curve (lp_conn_t *self, const char *server_key,
                               const char *public_key, const char *secret_key);
//  Makes sock a CURVE client of the controller with the file's keys (call
//  before zsock_connect); does nothing for an insecure file.
void        lp_conn_apply_curve (lp_conn_t *self, zsock_t *sock);
void        lp_conn_test (bool verbose);

#endif
