/*  =========================================================================
    lp_actor.c - the skeleton of the controller's data-path actors, see
    lp_actor.h

    Each wake-up drains up to LP_DRAIN_BATCH messages (the data sockets
    have a receive timeout of 0): under load one poll serves many
    messages. A handler error (EHOSTUNREACH, EAGAIN...) must not end the
    loop, so both data readers are tolerant.
    =========================================================================
*/
#include "lp_actor.h"
#include "lp_bind.h"
#include "lp_proto.h"
#include "lp_msg.h"
#include "lp_reply.h"

#define LP_PARENT_ID_MAX 300            //  longer parent msg_ids match nothing

static int
s_on_client (zloop_t *loop, zsock_t *sock, void *arg)
{
    (void) loop;
    lp_actor_t *self = (lp_actor_t *) arg;
    zmsg_t *msg;
    for (int n = 0; n < LP_DRAIN_BATCH && (msg = zmsg_recv (sock)); n++) {
        size_t delim = 0;
        lp_value_t *header = lp_wire_verify (self->wire, msg, &delim);
        //  A request refused for its date (docs/protocol.md, "Replays")
        //  or for a full guard is answered, not left silent, where the
        //  actor holds requests back; else a stale date is the sender's
        //  clock or a captured message, and it is dropped.
        if (!header && self->answer_refused)
            lp_reply_refused (self->wire, self->client, msg);
        if (!header || delim != 1) {
            lp_value_destroy (&header);
            zmsg_destroy (&msg);
            continue;
        }
        self->handlers.client (self->arg, msg, header);
    }
    return 0;
}

//  A reply: verified, and its engine and parent found for the handler.
//  Only parent_header.msg_id is read, from the frame's bytes.
static void
s_reply (lp_actor_t *self, const char *uuid, zmsg_t *msg)
{
    lp_actor_reply_t reply = { msg, 0, uuid, NULL, "" };
    lp_value_t *header = lp_wire_verify_reply (self->wire, msg, &reply.delim);
    bool verified = header && reply.delim == 1;
    lp_value_destroy (&header);
    if (!verified) {
        zmsg_destroy (&msg);
        return;
    }
    char parent_id [LP_PARENT_ID_MAX] = "";
    reply.engine = lp_routes_by_uuid (self->engines, uuid);
    if (reply.engine
    &&  lp_reply_map_str (lp_wire_frame (msg, reply.delim, LP_FRAME_PARENT), LP_HDR_MSG_ID,
                          parent_id, sizeof parent_id) == 0)
        reply.parent_id = parent_id;
    self->handlers.reply (self->arg, &reply);
}

//  An engine's hello (no client frame, just the signed message) tells the
//  hub the engine is connected on this channel.
static void
s_hello (lp_actor_t *self, const char *uuid, zmsg_t **msg_p)
{
    lp_msg_t *hello = lp_wire_decode (self->wire, msg_p);
    if (hello && *uuid && streq (lp_msg_type (hello), LP_ENGINE_HELLO))
        zsock_send (self->pipe, "siss", "HELLO", (int) lp_msg_get_int (hello, "id", -1),
                    uuid, self->channel);
    lp_msg_destroy (&hello);
}

void
lp_actor_drain_engines (lp_actor_t *self)
{
    zmsg_t *msg;
    for (int n = 0; n < LP_DRAIN_BATCH && (msg = zmsg_recv (self->engine)); n++) {
        zframe_t *uuid_frame = zmsg_pop (msg);
        char uuid [LP_ID_CHARS + 1] = "";
        if (uuid_frame && zframe_size (uuid_frame) == LP_ID_CHARS)
            memcpy (uuid, zframe_data (uuid_frame), LP_ID_CHARS);
        zframe_destroy (&uuid_frame);
        zframe_t *next = zmsg_first (msg);
        if (next && zframe_streq (next, LP_DELIMITER))
            s_hello (self, uuid, &msg);
        else
            s_reply (self, uuid, msg);
    }
}

static int
s_on_engine (zloop_t *loop, zsock_t *sock, void *arg)
{
    (void) loop; (void) sock;
    lp_actor_t *self = (lp_actor_t *) arg;
    lp_actor_drain_engines (self);
    if (self->handlers.engine_drained)
        self->handlers.engine_drained (self->arg);
    return 0;
}

//  "QUEUES" seq: the figures of every routable engine, in id order.
static void
s_send_queues (lp_actor_t *self, int seq)
{
    size_t span = lp_routes_span (self->engines);
    lp_actor_figures_t *rows = (lp_actor_figures_t *) calloc (span + 1, sizeof *rows);
    size_t count = 0;
    for (size_t id = 0; rows && id < span; id++) {
        lp_route_t *engine = lp_routes_by_id (self->engines, (int64_t) id);
        if (engine && engine->active)
            rows [count++] = (lp_actor_figures_t) { engine->id,
                                                    (int64_t) zlistx_size (engine->sent),
                                                    (int64_t) engine->done };
    }
    int waiting = self->handlers.waiting? (int) self->handlers.waiting (self->arg): 0;
    //  Out of memory: an answer with no rows, so the hub is not kept waiting.
    zsock_send (self->pipe, "siib", "QUEUES", seq, waiting, rows, count * sizeof *rows);
    free (rows);
}

static int
s_on_pipe (zloop_t *loop, zsock_t *pipe, void *arg)
{
    (void) loop;
    lp_actor_t *self = (lp_actor_t *) arg;
    zmsg_t *msg = zmsg_recv (pipe);
    char *command = msg? zmsg_popstr (msg): NULL;
    int rc = 0;
    if (!command || streq (command, "$TERM"))
        rc = -1;
    else
    if (streq (command, "ADD") || streq (command, "REMOVE")) {
        char *id_text = zmsg_popstr (msg);
        char *text = zmsg_popstr (msg);
        char *ename = zmsg_popstr (msg);    //  REMOVE only
        int id = id_text? atoi (id_text): -1;
        if (streq (command, "REMOVE")) {
            lp_route_t *engine = lp_routes_by_id (self->engines, id);
            char why [256];
            snprintf (why, sizeof why, "engine %d %s", id, text? text: "died");
            if (engine)
                self->handlers.remove (self->arg, engine, why,
                                       ename && *ename? ename: LP_ENAME_ENGINE);
        }
        else {
            lp_routes_add (self->engines, id, text? text: "");
            if (self->handlers.add)
                self->handlers.add (self->arg, id, text? text: "");
        }
        free (id_text);
        free (text);
        free (ename);
    }
    else
    if (streq (command, "QUEUES")) {
        char *seq = zmsg_popstr (msg);
        s_send_queues (self, seq? atoi (seq): 0);
        free (seq);
    }
    else
    if (self->handlers.command)
        self->handlers.command (self->arg, command, msg);
    else
        zsys_error ("%s: unknown command '%s' from the hub", self->name, command);
    free (command);
    zmsg_destroy (&msg);
    return rc;
}

void
lp_actor_destroy (lp_actor_t **self_p)
{
    lp_actor_t *self = *self_p;
    if (!self)
        return;
    zloop_destroy (&self->loop);
    zsock_destroy (&self->client);
    zsock_destroy (&self->engine);
    lp_routes_destroy (&self->engines);
    lp_wire_destroy (&self->wire);
    free (self);
    *self_p = NULL;
}

lp_actor_t *
lp_actor_new (zsock_t *pipe, const lp_actor_config_t *config)
{
    lp_actor_t *self = (lp_actor_t *) zmalloc (sizeof (lp_actor_t));
    self->pipe = pipe;
    self->handlers = *config->handlers;
    self->arg = config->arg;
    self->answer_refused = config->answer_refused;
    snprintf (self->name, sizeof self->name, "%s", config->name);
    snprintf (self->channel, sizeof self->channel, "%s", config->channel);
    self->wire = lp_wire_new (config->key, config->key_len, self->name);
    if (self->wire && config->guard)
        lp_wire_set_guard (self->wire, config->guard);
    self->engines = lp_routes_new (config->sent_free);
    self->loop = zloop_new ();
    self->engine = zsock_new (ZMQ_ROUTER);
    self->client = zsock_new (ZMQ_ROUTER);
    if (!self->wire || !self->engines || !self->loop || !self->engine || !self->client) {
        zsys_error ("%s: out of memory", self->name);
        lp_actor_destroy (&self);
        return NULL;
    }
    zsock_set_router_mandatory (self->engine, 1);
    zsock_set_router_handover (self->engine, 1);
    //  The mux on I/O thread 0, the scheduler on 1 (lp_routes_io_affinity).
    uint64_t affinity = config->io_thread >= 0? lp_routes_io_affinity (config->io_thread): 0;
    zsock_set_affinity (self->engine, (int) affinity);
    zsock_set_affinity (self->client, (int) affinity);
    for (int i = 0; i < 2; i++)
        if (config->want [i])
            snprintf (self->endpoints [i], 128, "%s", config->want [i]);
    if (lp_bind_tcp (self->engine, config->ip, self->endpoints [0], 128)
    ||  lp_bind_tcp (self->client, config->ip, self->endpoints [1], 128)) {
        zsys_error ("%s: cannot bind on %s: %s", self->name, config->ip,
                    zmq_strerror (zmq_errno ()));
        lp_actor_destroy (&self);
        return NULL;
    }
    zsock_set_rcvtimeo (self->client, 0);
    zsock_set_rcvtimeo (self->engine, 0);
    //  Set after lp_bind_tcp's tuning (HWM 0); applies to new connections.
    if (config->client_rcvhwm > 0)
        zsock_set_rcvhwm (self->client, config->client_rcvhwm);
    zloop_reader (self->loop, pipe, s_on_pipe, self);
    zloop_reader (self->loop, self->client, s_on_client, self);
    zloop_reader (self->loop, self->engine, s_on_engine, self);
    zloop_reader_set_tolerant (self->loop, self->engine);
    zloop_reader_set_tolerant (self->loop, self->client);
    return self;
}

void
lp_actor_serve (lp_actor_t *self, zsock_t *pipe)
{
    if (!self) {
        zsock_signal (pipe, 1);
        return;
    }
    zsock_signal (pipe, 0);
    //  The hub asks for the endpoints right after start.
    char *command = zstr_recv (pipe);
    bool go = command && streq (command, "ENDPOINTS");
    if (go)
        zsock_send (pipe, "ss", self->endpoints [0], self->endpoints [1]);
    free (command);
    if (go)
        zloop_start (self->loop);
}
