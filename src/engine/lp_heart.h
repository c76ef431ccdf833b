/*  =========================================================================
    lp_heart.h - the engine's heartbeat and control actor

    A czmq actor with its own thread, so it answers while Lua runs:
    - SUB on hb_ping, DEALER on hb_pong: echoes every 12-byte ping at once;
    - DEALER on control: interrupt_request, abort_request, shutdown_request;
    - watches the controller: no ping for 2 x max_misses periods -> "LOST";
    - enforces time limits, and ends the process (LP_EXIT_STUCK) when a
      request stays stuck in C past LP_STUCK_GRACE_MSEC after being stopped.
    Messages it sends up the pipe: "LOST <ms silent>", "LOST", "SHUTDOWN".
    =========================================================================
*/
#ifndef LP_HEART_H_INCLUDED
#define LP_HEART_H_INCLUDED

#include <signal.h>
#include <sys/stat.h>
#include "lp_prelude.h"
#include "lp_engine.h"
#include "lp_conn.h"

//  Everything the actor needs; read only while zactor_new runs, except
//  engine and stop, which must outlive the actor.
typedef struct {
    lp_engine_t *engine;                //  to interrupt
    const volatile sig_atomic_t *stop;  //  set by a signal: interrupt Lua
    const char *hb_ping;                //  endpoints
    const char *hb_pong;
    const char *control;
    const char *uuid;                   //  socket identity
    const uint8_t *key;                 //  signing key
    size_t key_len;
    lp_conn_t *conn;                    //  CURVE keys (a secure cluster)
    int id;                             //  engine id
    int heartbeat_msec;                 //  ping period
    int max_misses;                     //  pings missed before "LOST"
    const char *conn_path;              //  the connection file, and the
    ino_t conn_ino;                     //  version of it in use: rewritten
    struct timespec conn_mtime;         //  while pings are missing = a new
                                        //  controller ("LOST" at once)
    int rc;                             //  out: 0, or -1 when setup failed
} lp_heart_config_t;

//  zactor_new (lp_heart_actor, &config); then check config.rc.
void lp_heart_actor (zsock_t *pipe, void *args);

#endif
