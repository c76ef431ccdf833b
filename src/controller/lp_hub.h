/*  lp_hub.h - the hub: registration, engine table, heartbeat monitor,
    notifications and queries. It runs the controller's main reactor and
    starts the data-path actors (lp_mux.c, lp_scheduler.c, lp_relay.c). */
#ifndef LP_HUB_H_INCLUDED
#define LP_HUB_H_INCLUDED

#include "lp_prelude.h"

typedef struct _lp_hub_t lp_hub_t;

typedef struct {
    const char *ip;                     //  where to bind
    const char *location;               //  address written into the files
    int heartbeat_msec;                 //  ping period
    int max_misses;                     //  pings missed before dead
    int scheme;                         //  lp_scheme_t of the task scheduler
    int hwm;                            //  tasks outstanding per engine, 0 = any
} lp_hub_config_t;

//  Binds every socket and starts the mux. NULL with err on failure.
lp_hub_t *lp_hub_new (const lp_hub_config_t *config, char *err, size_t errlen);
void      lp_hub_destroy (lp_hub_t **self_p);
//  Writes lp-client.json and lp-engine.json into folder. 0 / -1 with err.
int       lp_hub_write_files (lp_hub_t *self, const char *folder, char *err, size_t errlen);
//  The reactor, for the controller's own readers (signals).
zloop_t  *lp_hub_loop (lp_hub_t *self);
//  Called once when `count` engines are registered; or with count -1 and
//  a reason when the hub cannot get there (set by lp_hub_expect).
typedef void (lp_hub_ready_fn) (int count, const char *reason, void *arg);
void      lp_hub_expect (lp_hub_t *self, int count, lp_hub_ready_fn *fn, void *arg);
//  A local engine process exited: the engine with that pid is dead now.
void      lp_hub_process_exited (lp_hub_t *self, int pid, const char *reason);
//  The same, with the ename its unanswered requests fail with
//  ("EngineError", or "TimeLimit" when the engine ended itself because a
//  request was stuck past its time limit, docs/protocol.md).
void      lp_hub_process_exited_ename (lp_hub_t *self, int pid, const char *reason,
                                       const char *ename);
//  The id of the engine of this host whose process has (or had) that pid,
//  a live one first; -1 when none. The launcher restarts a local engine
//  under its old id.
int       lp_hub_engine_id (lp_hub_t *self, int pid);
//  Runs until a reader of the loop returns -1 (the controller's signal
//  reader does) or a client asks for shutdown.
void      lp_hub_run (lp_hub_t *self);
//  Registered (live) engine count.
int       lp_hub_engines (lp_hub_t *self);

#endif
