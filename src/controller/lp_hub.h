/*  lp_hub.h - the hub actor: registration, engine table, heartbeat
    monitor, notifications and queries, on its own thread. It starts and
    owns the data-path actors (mux, control, scheduler, relay).

    zactor_new (lp_hub_actor, &config) binds every socket, starts the
    data-path actors, fills config.endpoints (or config.error) and
    signals; then config is no longer read.

    Commands on the actor pipe (controller -> hub), czmq pictures:
      "EXPECT"  i        send READY once that many engines are registered
      "EXITED"  i        a local engine process with this pid has exited:
                         reply "EXITED" i, the id of its engine (a live
                         one first; -1 when none), which keeps its id
                         for a restart; DEAD follows
      "DEAD"    i s s    pid, reason, ename: that process's engine is dead;
                         its unanswered requests fail with ename
                         (EngineError, or TimeLimit when it ended itself
                         over a request stuck past its time limit)
      "ENGINES"          reply "ENGINES" i: registered engines
      "RESTARTING" i i s answer to RESTART: id, pid, "" when the engine
                         is being restarted, else why not
      "STOP"             stop serving (before the engines are stopped)
      "$TERM"
    Events (hub -> controller):
      "READY"   i        the EXPECTed count of engines is registered
      "SHUTDOWN"         a client asked the cluster to shut down; the hub
                         has stopped serving (as after STOP)
      "RESTART" i i      a client asked to restart engine id (process pid,
                         on this host); the controller answers RESTARTING
*/
#ifndef LP_HUB_H_INCLUDED
#define LP_HUB_H_INCLUDED

#include "lp_prelude.h"
#include "lp_store.h"

//  The controller's endpoints, as the hub's actors bound them.
typedef enum {
    LP_HUB_REGISTRATION,                //  registration / query ROUTER
    LP_HUB_HB_PING,                     //  heartbeat PUB
    LP_HUB_HB_PONG,                     //  heartbeat ROUTER
    LP_HUB_NOTIFICATION,                //  notification PUB
    LP_HUB_MUX_ENGINE, LP_HUB_MUX_CLIENT,
    LP_HUB_CONTROL_ENGINE, LP_HUB_CONTROL_CLIENT,
    LP_HUB_IOPUB_ENGINE, LP_HUB_IOPUB_CLIENT,
    LP_HUB_TASK_ENGINE, LP_HUB_TASK_CLIENT,
    LP_HUB_ENDPOINTS                    //  how many
} lp_hub_endpoint_t;

typedef struct {
    const char *ip;                     //  where to bind
    const uint8_t *key;                 //  signing key (copied)
    size_t key_len;
    int heartbeat_msec;                 //  ping period
    int max_misses;                     //  pings missed before dead
    int scheme;                         //  lp_scheme_t of the task scheduler
    int hwm;                            //  tasks outstanding per engine, 0 = any
    lp_store_t *store;                  //  the task store, NULL when off
    const char *dashboard;              //  inproc endpoint of the dashboard's
                                        //  PULL (lp_dashboard.h), or NULL
    //  Filled by the hub before it signals:
    bool ok;                            //  started
    char error [256];                   //  why not
    //  The endpoints bound; an entry filled in before the start
    //  ("tcp://ip:port", lpcontroller --restore) is bound as it is.
    char endpoints [LP_HUB_ENDPOINTS][128];
} lp_hub_config_t;

void lp_hub_actor (zsock_t *pipe, void *config);

#endif
