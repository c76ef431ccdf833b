/*  =========================================================================
    lp_session.h - the engine's connection to a controller

    Owns the main-thread sockets (registration, mux, iopub), the heart
    actor, the registration handshake, the request loop and reconnects.
    =========================================================================
*/
#ifndef LP_SESSION_H_INCLUDED
#define LP_SESSION_H_INCLUDED

#include <signal.h>
#include "lp_conn.h"
#include "lp_engine.h"

typedef struct _lp_session_t lp_session_t;

//  conn_path is re-read before every registration attempt (conn is the
//  copy loaded at start and is taken). engine is not taken.
lp_session_t *lp_session_new (const char *conn_path, lp_conn_t **conn_p,
                              lp_engine_t *engine);
void        lp_session_destroy (lp_session_t **self_p);
//  --lost-exit: run returns 1 once no controller has been heard for msec
//  (0, the default: keep trying forever).
void        lp_session_set_lost_exit (lp_session_t *self, int64_t msec);
//  --id: the id to ask for at the first registration (a controller
//  restarting a local engine asks for the old one). -1: any.
void        lp_session_set_id (lp_session_t *self, int id);
//  Registers, serves requests, reconnects when the controller is lost,
//  until *stop is set or a shutdown_request comes; then unregisters.
//  Returns the process exit code.
int         lp_session_run (lp_session_t *self, const volatile sig_atomic_t *stop);

#endif
