/*  =========================================================================
    lp_conn - a connection file (JSON through jansson)

    {"version":"1.0","kind":"engine"|"client","signature_scheme":
     "blake2b-256","key":"<hex>","location":"127.0.0.1",
     "endpoints":{"registration":"tcp://127.0.0.1:40001", ...}}

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
void        lp_conn_test (bool verbose);

#endif
