/*  =========================================================================
    lp_mux.c - direct multiplexer: routes requests from clients to the
    engines they name, and replies back.

    One actor per channel: the controller runs one for mux (direct
    requests) and one for control (interrupt, shutdown), each with a ROUTER
    facing clients and a ROUTER facing engines, so each thread polls only
    its own two sockets (on this kind of VM every socket in a poll set
    costs system calls per wake-up):

        client DEALER -> [client] <LPMSG> sig header ...      (client ROUTER)
                      -> [uuid][client] <LPMSG> sig header ... (engine ROUTER)
        engine DEALER <- [client] <LPMSG> ...  and replies the same way back.

    A request is verified (signature, replay) and only its header decoded,
    for `targets`; the frames are forwarded unchanged, so the engine checks
    the same signature the client made. An engine answers in order, so each
    engine keeps a FIFO of unanswered requests per channel: a reply pops the
    head. That FIFO is all the bookkeeping on the data path; it gives the
    queue counts for status, and when the hub says an engine died, every
    request in it gets an EngineError reply at once, so no client waits on a
    dead engine.

    An engine is routable only after the hub says ADD, which it does once
    the engine's hello has arrived on both channels (the hello is how this
    actor learns the engine is connected, so ROUTER_MANDATORY sends to it
    succeed). Engines that are not routable get an immediate error reply.
    =========================================================================
*/
#include "lp_mux.h"
#include "lp_reply.h"
#include "lp_engines.h"


typedef struct {
    zframe_t *client;                   //  client routing identity
    lp_value_t *header;                 //  request header
} s_pending_t;

typedef struct {
    zsock_t *pipe;                      //  to the hub
    zloop_t *loop;                      //  our reactor
    lp_wire_t *wire;                    //  verify / sign
    const char *channel;                //  "mux" or "control"
    zsock_t *client;                    //  client-facing ROUTER
    zsock_t *engine;                    //  engine-facing ROUTER
    lp_engines_t *engines;              //  FIFOs of s_pending_t
    char endpoints [2][128];            //  engine, client
} self_t;


static void
s_pending_destroy (s_pending_t **self_p)
{
    s_pending_t *self = *self_p;
    if (self) {
        zframe_destroy (&self->client);
        lp_value_destroy (&self->header);
        free (self);
        *self_p = NULL;
    }
}

static void
s_pending_free (void **item)
{
    s_pending_destroy ((s_pending_t **) item);
}

//  Binds a socket on ip with a free port; writes its endpoint. 0 / -1.
//  Sends an EngineError reply for a request that cannot reach its engine.
static void
s_reply_error (self_t *self, zframe_t *client,
               lp_value_t *header, int64_t engine_id, const char *evalue)
{
    lp_reply_error (self->wire, self->client, client, header,
                    engine_id, "EngineError", evalue);
}

//  Forwards one copy of msg (starting at the client identity) to engine.
//  msg is taken. Returns 0, or -1 when the engine cannot be reached.
static int
s_forward (self_t *self, lp_engine_ref_t *engine, zmsg_t **msg_p,
           zframe_t *client, lp_value_t *header)
{
    zmsg_t *msg = *msg_p;
    *msg_p = NULL;
    if (zmsg_pushmem (msg, engine->uuid, strlen (engine->uuid)) != 0) {
        zmsg_destroy (&msg);
        return -1;
    }
    if (zmsg_send (&msg, self->engine) != 0) {
        zmsg_destroy (&msg);
        return -1;
    }
    s_pending_t *pending = (s_pending_t *) zmalloc (sizeof (s_pending_t));
    pending->client = zframe_dup (client);
    pending->header = lp_value_dup (header);
    if (!pending->client || !pending->header
    ||  !zlistx_add_end (engine->fifo, pending))
        s_pending_destroy (&pending);
    return 0;
}

//  A request from a client: verify, read targets, fan out.
static int
s_handle_client (self_t *self, zmsg_t *msg)
{
    size_t delim = 0;
    lp_value_t *header = lp_wire_verify (self->wire, msg, &delim);
    if (!header || delim != 1) {
        lp_value_destroy (&header);
        zmsg_destroy (&msg);
        return 0;
    }
    zframe_t *client = zframe_dup (zmsg_first (msg));
    const lp_value_t *targets = lp_value_get (header, "targets");
    if (!targets || lp_value_type (targets) != LP_ARRAY || lp_value_len (targets) == 0) {
        s_reply_error (self, client, header, -1,
                       "request has no targets (header.targets must be a non-empty array of engine ids)");
        goto done;
    }
    size_t ntargets = lp_value_len (targets);
    for (size_t i = 0; i < ntargets; i++) {
        const lp_value_t *t = lp_value_at (targets, i);
        int64_t id = lp_value_type (t) == LP_INT? lp_value_as_int (t): -1;
        lp_engine_ref_t *engine = lp_engines_by_id (self->engines, id);
        char why [160];
        if (!engine || !engine->active) {
            snprintf (why, sizeof why, "engine %lld is not registered",
                      (long long) id);
            s_reply_error (self, client, header, id, why);
            continue;
        }
        zmsg_t *copy = (i + 1 == ntargets)? msg: zmsg_dup (msg);
        if (copy == msg)
            msg = NULL;
        if (!copy || s_forward (self, engine, &copy, client, header) != 0) {
            snprintf (why, sizeof why, "engine %lld is not reachable", (long long) id);
            s_reply_error (self, client, header, id, why);
        }
    }
done:
    zframe_destroy (&client);
    lp_value_destroy (&header);
    zmsg_destroy (&msg);
    return 0;
}

//  A message from an engine: a hello (no client frame) or a reply.
static int
s_handle_engine (self_t *self, zmsg_t *msg)
{
    zframe_t *uuid_frame = zmsg_pop (msg);
    char uuid [LP_ID_CHARS + 1] = "";
    if (uuid_frame && zframe_size (uuid_frame) == LP_ID_CHARS)
        memcpy (uuid, zframe_data (uuid_frame), LP_ID_CHARS);
    zframe_destroy (&uuid_frame);
    zframe_t *next = zmsg_first (msg);
    bool hello = next && zframe_streq (next, LP_DELIMITER);

    if (hello) {
        lp_msg_t *decoded = lp_wire_decode (self->wire, &msg);
        if (decoded && *uuid && streq (lp_msg_type (decoded), "engine_hello")) {
            int64_t id = lp_msg_get_int (decoded, "id", -1);
            zsock_send (self->pipe, "siss", "HELLO", (int) id, uuid,
                        self->channel);
        }
        lp_msg_destroy (&decoded);
        return 0;
    }
    size_t delim = 0;
    lp_value_t *header = lp_wire_verify (self->wire, msg, &delim);
    lp_engine_ref_t *engine = lp_engines_by_uuid (self->engines, uuid);
    if (header && delim == 1 && engine && engine->active) {
        s_pending_t *head = (s_pending_t *) zlistx_first (engine->fifo);
        if (head)
            zlistx_delete (engine->fifo, zlistx_cursor (engine->fifo));
        zmsg_send (&msg, self->client);
    }
    else
    if (header)
        zsys_warning ("controller/mux: dropped a reply from %s engine %s",
                      engine? "inactive": "unknown", *uuid? uuid: "-");
    lp_value_destroy (&header);
    zmsg_destroy (&msg);
    return 0;
}

//  Each wake-up drains up to LP_DRAIN_BATCH messages (the data sockets
//  have a receive timeout of 0): under load one poll serves many messages.
static int
s_on_client (zloop_t *loop, zsock_t *sock, void *arg)
{
    (void) loop;
    zmsg_t *msg;
    for (int n = 0; n < LP_DRAIN_BATCH && (msg = zmsg_recv (sock)); n++)
        s_handle_client ((self_t *) arg, msg);
    return 0;
}

static int
s_on_engine (zloop_t *loop, zsock_t *sock, void *arg)
{
    (void) loop;
    zmsg_t *msg;
    for (int n = 0; n < LP_DRAIN_BATCH && (msg = zmsg_recv (sock)); n++)
        s_handle_engine ((self_t *) arg, msg);
    return 0;
}

//  The hub says the engine is gone: every unanswered request fails now.
static void
s_engine_remove (self_t *self, int id, const char *reason)
{
    lp_engine_ref_t *engine = lp_engines_by_id (self->engines, id);
    if (!engine)
        return;
    engine->active = false;
    char why [256];
    snprintf (why, sizeof why, "engine %d %s", id, reason);
    s_pending_t *pending;
    while ((pending = (s_pending_t *) zlistx_first (engine->fifo))) {
        s_reply_error (self, pending->client, pending->header, id, why);
        zlistx_delete (engine->fifo, zlistx_cursor (engine->fifo));
    }
}

static void
s_send_queues (self_t *self)
{
    size_t span = lp_engines_span (self->engines);
    size_t size = 16 + span * 24;
    char *text = (char *) zmalloc (size);
    size_t used = 0;
    for (size_t id = 0; id < span; id++) {
        lp_engine_ref_t *engine = lp_engines_by_id (self->engines, (int64_t) id);
        if (engine && engine->active)
            used += snprintf (text + used, size - used, "%zu:%zu ", id,
                              zlistx_size (engine->fifo));
    }
    zsock_send (self->pipe, "ss", "QUEUES", text);
    free (text);
}

//  The cluster is shutting down: every engine is asked to exit.
static void
s_shutdown_engines (self_t *self)
{
    for (size_t id = 0; id < lp_engines_span (self->engines); id++) {
        lp_engine_ref_t *engine = lp_engines_by_id (self->engines, (int64_t) id);
        if (!engine || !engine->active)
            continue;
        lp_msg_t *request = lp_msg_new ("shutdown_request");
        zmsg_t *routing = zmsg_new ();
        if (!request || !routing
        ||  zmsg_addmem (routing, engine->uuid, LP_ID_CHARS) != 0
        ||  zmsg_addmem (routing, "controller", 10) != 0) {
            zmsg_destroy (&routing);
            lp_msg_destroy (&request);
            continue;
        }
        lp_msg_set_routing (request, &routing);
        lp_wire_send (self->wire, &request, self->engine);
    }
}

static int
s_handle_pipe (zloop_t *loop, zsock_t *pipe, void *arg)
{
    (void) loop;
    self_t *self = (self_t *) arg;
    char *command = NULL, *text = NULL;
    int id = -1;
    zmsg_t *msg = zmsg_recv (pipe);
    if (!msg)
        return -1;
    command = zmsg_popstr (msg);
    int rc = 0;
    if (!command)
        rc = -1;
    else
    if (streq (command, "$TERM"))
        rc = -1;
    else
    if (streq (command, "ADD") || streq (command, "REMOVE")) {
        char *id_text = zmsg_popstr (msg);
        text = zmsg_popstr (msg);
        id = id_text? atoi (id_text): -1;
        free (id_text);
        if (streq (command, "ADD"))
            lp_engines_add (self->engines, id, text? text: "");
        else
            s_engine_remove (self, id, text? text: "died");
    }
    else
    if (streq (command, "QUEUES"))
        s_send_queues (self);
    else
    if (streq (command, "SHUTDOWN"))
        s_shutdown_engines (self);
    else
        assert (false);                 //  the hub speaks only these
    free (command);
    free (text);
    zmsg_destroy (&msg);
    return rc;
}

static void
s_self_destroy (self_t **self_p)
{
    self_t *self = *self_p;
    if (!self)
        return;
    zloop_destroy (&self->loop);
    zsock_destroy (&self->client);
    zsock_destroy (&self->engine);
    lp_engines_destroy (&self->engines);
    lp_wire_destroy (&self->wire);
    free (self);
    *self_p = NULL;
}

static self_t *
s_self_new (zsock_t *pipe, lp_mux_config_t *config)
{
    self_t *self = (self_t *) zmalloc (sizeof (self_t));
    self->pipe = pipe;
    char name [32];
    snprintf (name, sizeof name, "controller/%s", config->channel);
    self->wire = lp_wire_new (config->key, config->key_len, name);
    self->engines = lp_engines_new (s_pending_free);
    self->loop = zloop_new ();
    if (!self->wire || !self->engines || !self->loop) {
        s_self_destroy (&self);
        return NULL;
    }
    self->channel = config->channel;
    self->engine = zsock_new (ZMQ_ROUTER);
    self->client = zsock_new (ZMQ_ROUTER);
    if (self->engine) {
        zsock_set_router_mandatory (self->engine, 1);
        zsock_set_router_handover (self->engine, 1);
    }
    if (lp_wire_bind (self->engine, config->ip, self->endpoints [0], 128)
    ||  lp_wire_bind (self->client, config->ip, self->endpoints [1], 128)) {
        zsys_error ("controller/%s: cannot bind on %s: %s", self->channel, config->ip,
                    zmq_strerror (zmq_errno ()));
        s_self_destroy (&self);
        return NULL;
    }
    zsock_set_rcvtimeo (self->client, 0);
    zsock_set_rcvtimeo (self->engine, 0);
    zloop_reader (self->loop, pipe, s_handle_pipe, self);
    zloop_reader (self->loop, self->client, s_on_client, self);
    zloop_reader (self->loop, self->engine, s_on_engine, self);
    //  A handler error (EHOSTUNREACH, EAGAIN...) must not end the loop.
    zloop_reader_set_tolerant (self->loop, self->engine);
    zloop_reader_set_tolerant (self->loop, self->client);
    return self;
}

void
lp_mux_actor (zsock_t *pipe, void *args)
{
    self_t *self = s_self_new (pipe, (lp_mux_config_t *) args);
    if (!self) {
        zsock_signal (pipe, 1);
        return;
    }
    zsock_signal (pipe, 0);
    //  The hub asks for the endpoints right after start.
    char *command = zstr_recv (pipe);
    if (command && streq (command, "ENDPOINTS"))
        zsock_send (pipe, "ss", self->endpoints [0], self->endpoints [1]);
    bool go = command && streq (command, "ENDPOINTS");
    free (command);
    if (go)
        zloop_start (self->loop);
    s_self_destroy (&self);
}
