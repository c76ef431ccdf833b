/*  lp_actor.h - the skeleton of the controller's data-path actors: the
    mux and control channels (lp_mux.c) and the task
    scheduler (lp_scheduler.c).

    The skeleton owns what those actors share: the wire (signing, with the
    controller's one replay guard), the reactor, a ROUTER facing clients
    and one facing engines, the routing table (lp_routes, fed by the hub),
    the start-up handshake with the hub, the drain loops, the engines'
    hellos and the hub's commands. An actor supplies its handlers.

    Commands on the actor pipe (hub -> actor), each a czmq picture message:
      "ENDPOINTS"        first, once: reply s s (engine side, client side)
      "ADD"     i s      engine id, uuid: route to it from now on
      "REMOVE"  i s s    engine id, reason, ename: its unanswered requests
                         end (handlers.remove; ename EngineError, TimeLimit)
      "QUEUES"  i        queue figures, reply "QUEUES" i i b: the same
                         number, the requests waiting for no particular
                         engine (handlers.waiting), and an array of
                         lp_actor_figures_t, one per routable engine in id
                         order
      anything else      handlers.command (the mux's "SHUTDOWN")
      "$TERM"
    Events (actor -> hub):
      "HELLO"   i s s    engine id, uuid, channel (config.channel)
*/
#ifndef LP_ACTOR_H_INCLUDED
#define LP_ACTOR_H_INCLUDED

#include "lp_wire.h"
#include "lp_routes.h"

//  One engine's figures in a "QUEUES" reply.
typedef struct {
    int64_t id;                         //  engine id
    int64_t outstanding;                //  requests sent there, not yet answered
    int64_t done;                       //  replies it has sent
} lp_actor_figures_t;

//  A reply from an engine, verified (signature, replay) and located.
typedef struct {
    zmsg_t *msg;                        //  [client] <LPMSG> signature header
                                        //  parent ... (the engine's routing
                                        //  frame taken off); the handler's
    size_t delim;                       //  where <LPMSG> is in msg
    const char *uuid;                   //  the engine's identity, "" if none
    lp_route_t *engine;            //  its entry in the table, or NULL
    const char *parent_id;              //  parent_header.msg_id, "" when the
                                        //  engine is unknown or it has none
} lp_actor_reply_t;

typedef struct {
    //  A request from a client, verified (msg starts with the client's
    //  routing identity, <LPMSG> follows it). Takes msg and header.
    void (*client) (void *arg, zmsg_t *msg, lp_value_t *header);
    //  A reply from an engine (hellos are the skeleton's).
    void (*reply) (void *arg, lp_actor_reply_t *reply);
    //  After each batch read from the engines (NULL: nothing).
    void (*engine_drained) (void *arg);
    //  After the engine table made engine id routable (NULL: nothing).
    void (*add) (void *arg, int id, const char *uuid);
    //  The hub says the engine is gone: end what was sent there; why is
    //  "engine <id> <reason>".
    void (*remove) (void *arg, lp_route_t *engine, const char *why, const char *ename);
    //  Requests held for no particular engine (NULL: none).
    size_t (*waiting) (void *arg);
    //  Another command, with the rest of its message (NULL: none).
    void (*command) (void *arg, const char *command, zmsg_t *msg);
} lp_actor_handlers_t;

typedef struct {
    const char *ip;                     //  address to bind
    const char *want [2];               //  engine-side, client-side endpoint
                                        //  to bind again (--restore), or NULL
    const uint8_t *key;                 //  signing key
    size_t key_len;
    lp_guard_t *guard;                  //  the controller's replay guard (shared)
    const char *name;                   //  "controller/<channel>", for logs and the wire
    const char *channel;                //  said in HELLO: "mux", "control", "task"
    int io_thread;                      //  ZeroMQ I/O thread of both sockets, -1 any
    int client_rcvhwm;                  //  client ROUTER's receive HWM, 0 leaves it
    bool answer_refused;                //  answer requests the wire refuses
                                        //  for their date (the scheduler
                                        //  holds tasks; the mux drops them)
    zlistx_destructor_fn *sent_free;    //  destroys records left in the engine lists
    const lp_actor_handlers_t *handlers;
    void *arg;                          //  the handlers' argument
} lp_actor_config_t;

//  The parts are the actor's to use; the skeleton owns and destroys them.
typedef struct {
    zsock_t *pipe;                      //  to the hub
    zloop_t *loop;                      //  the actor's reactor
    lp_wire_t *wire;                    //  verify / sign
    zsock_t *client;                    //  client-facing ROUTER
    zsock_t *engine;                    //  engine-facing ROUTER
    lp_routes_t *engines;              //  engine table (owns the records)
    char endpoints [2][128];            //  engine, client
    char name [32];                     //  config.name
    char channel [16];                  //  config.channel
    lp_actor_handlers_t handlers;       //  copy
    bool answer_refused;                //  config.answer_refused
    void *arg;                          //  handlers' argument
} lp_actor_t;

//  Binds both sockets and registers the readers. NULL on failure (logged).
lp_actor_t *lp_actor_new (zsock_t *pipe, const lp_actor_config_t *config);
void        lp_actor_destroy (lp_actor_t **self_p);
//  The actor's body after its own set-up: signals the hub (1 when self is
//  NULL, and returns), answers "ENDPOINTS", runs the reactor until "$TERM".
void        lp_actor_serve (lp_actor_t *self, zsock_t *pipe);
//  Reads up to LP_DRAIN_BATCH waiting engine messages now (the reader
//  does the same on each wake-up).
void        lp_actor_drain_engines (lp_actor_t *self);

#endif
