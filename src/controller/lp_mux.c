/*  =========================================================================
    lp_mux.c - direct multiplexer: routes requests from clients to the
    engines they name, and replies back.

    One actor per channel: the controller runs one for mux (direct
    requests) and one for control (interrupt, shutdown, abort), each with a
    ROUTER facing clients and a ROUTER facing engines, so each thread polls
    only its own two sockets (on this kind of VM every socket in a poll set
    costs system calls per wake-up):

        client DEALER -> [client] <LPMSG> sig header ...      (client ROUTER)
                      -> [uuid][client] <LPMSG> sig header ... (engine ROUTER)
        engine DEALER <- [client] <LPMSG> ...  and replies the same way back.

    A request is verified (signature, replay) and only its header decoded,
    for `targets`; the frames are forwarded unchanged, so the engine checks
    the same signature the client made.

    Every forwarded copy gets a record, keyed by "<msg_id>/<engine id>",
    from the moment it is sent until its reply arrives or its engine goes
    (docs/protocol.md, "Direct requests"). A reply is matched by its
    parent_header.msg_id and the engine it came from, never by position:
    an engine that drops a request, or answers out of order, leaves no
    stale entry and no reply goes to the wrong request. A reply with no
    record is dropped and counted. The records of an engine (a list in
    send order, lp_routes) give the queue counts for status, and when the
    hub says the engine died every one of them gets an error reply at once
    (ename from the hub: EngineError, or TimeLimit), so no client waits on
    a dead engine. Records are freed when final: memory is bounded by the
    requests in flight.

    targets: duplicates are folded (each engine once, first occurrence
    order); a list naming more engines than are registered, or an id that
    is not an integer, is refused whole with one ProtocolError reply
    (metadata engine -1) before anything is forwarded. Work per request is
    O(number of targets).

    An engine is routable only after the hub says ADD, which it does once
    the engine's hello has arrived on every channel (the hello is how this
    actor learns the engine is connected, so ROUTER_MANDATORY sends to it
    succeed). Engines that are not routable get an immediate error reply.
    =========================================================================
*/
#include "lp_mux.h"
#include "lp_actor.h"
#include "lp_reply.h"
#include "lp_proto.h"
#include "lp_util.h"
#include "lp_codec.h"
#include "lp_msg.h"
#include "lp_wire.h"

#define LP_RECORD_KEY_CHARS  300        //  "<msg_id>/<engine id>"

//  One forwarded copy of a request, from send to reply (or engine death).
typedef struct {
    char key [LP_RECORD_KEY_CHARS];     //  "<msg_id>/<engine id>"
    zframe_t *client;                   //  client routing identity
    zframe_t *header;                   //  request header as sent (decoded
                                        //  only for an error reply)
    lp_route_t *engine;                 //  where it went (the table outlives it)
    void *handle;                       //  its place in engine->sent
    int64_t sent_at;                    //  wall clock, usec
} s_record_t;

typedef struct {
    lp_actor_t *actor;                  //  sockets, reactor, engine table
    //  Borrowed from the actor, for brevity:
    lp_wire_t *wire;                    //  verify / sign
    const char *channel;                //  "mux" or "control"
    const char *name;                   //  "controller/<channel>", for logs
    zsock_t *client;                    //  client-facing ROUTER
    zsock_t *engine;                    //  engine-facing ROUTER
    lp_routes_t *engines;               //  record lists (own the records)
    //  Our own:
    zhashx_t *records;                  //  key -> s_record_t (borrowed)
    int64_t *targets;                   //  scratch for folded targets
    size_t targets_size;                //  slots in targets
    lp_unmatched_t unmatched;           //  engine replies with no record
    lp_store_t *store;                  //  task store hooks, NULL when off
} self_t;


static void
s_record_destroy (s_record_t **self_p)
{
    s_record_t *self = *self_p;
    if (self) {
        zframe_destroy (&self->client);
        zframe_destroy (&self->header);
        free (self);
        *self_p = NULL;
    }
}

static void
s_record_free (void **item)
{
    s_record_destroy ((s_record_t **) item);
}

static void
s_record_key (char *key, const char *msg_id, int engine_id)
{
    snprintf (key, LP_RECORD_KEY_CHARS, "%s/%d", msg_id, engine_id);
}

//  The record is final: out of the index and its engine's list (freed).
static void
s_record_final (self_t *self, s_record_t *record)
{
    zhashx_delete (self->records, record->key);
    zlistx_delete (record->engine->sent, record->handle);
}

//  Task store hooks (lp_store.h): what the store records of a request.
static void
s_store_request (self_t *self, zmsg_t *msg, const char *msg_id,
                 const int64_t *targets, int64_t ntargets)
{
    if (self->store)
        lp_store_request (self->store, streq (self->channel, "mux")? LP_STORE_DIRECT
                          : LP_STORE_CONTROL, msg_id, msg, 1, targets, (size_t) ntargets);
}

static void
s_store_reply (self_t *self, const char *msg_id, int engine, zmsg_t *msg)
{
    if (self->store)
        lp_store_reply (self->store, msg_id, engine, msg, 1);
}

static void
s_store_error (self_t *self, const lp_value_t *header, int64_t engine,
               const char *ename, const char *evalue)
{
    const char *msg_id = lp_value_as_string (lp_value_get (header, LP_HDR_MSG_ID), NULL);
    if (!self->store)
        return;
    if (engine == -1)                   //  refused as a whole: never recorded yet
        s_store_request (self, NULL, msg_id, NULL, 0);
    lp_store_error (self->store, msg_id, (int) engine, ename, evalue);
}

//  Sends an error reply from the controller for a request.
static void
s_reply_error (self_t *self, zframe_t *client, lp_value_t *header,
               int64_t engine_id, const char *ename, const char *evalue)
{
    lp_reply_error (self->wire, self->client, client, header, engine_id, ename, evalue);
    s_store_error (self, header, engine_id, ename, evalue);
}

//  The same for a recorded request, whose header is kept as bytes.
static void
s_record_error (self_t *self, s_record_t *record, int64_t engine_id,
                const char *ename, const char *evalue)
{
    char err [128];
    lp_value_t *header = lp_codec_decode (zframe_data (record->header),
                                          zframe_size (record->header),
                                          NULL, 0, err, sizeof err);
    if (header)
        s_reply_error (self, record->client, header, engine_id, ename, evalue);
    else
        zsys_error ("controller/%s: cannot decode a stored header: %s", self->channel, err);
    lp_value_destroy (&header);
}

//  Forwards one copy of msg (starting at the client identity) to engine
//  and records it. msg is taken. Returns 0, or -1 when the engine cannot
//  be reached.
static int
s_forward (self_t *self, lp_route_t *engine, zmsg_t **msg_p,
           zframe_t *client, lp_value_t *header, const char *msg_id)
{
    zmsg_t *msg = *msg_p;
    *msg_p = NULL;
    s_record_t *record = (s_record_t *) calloc (1, sizeof (s_record_t));
    if (record) {
        s_record_key (record->key, msg_id, engine->id);
        record->client = zframe_dup (client);
        //  [client] <LPMSG> signature header: the bytes, not a decoded
        //  copy (a tree of allocations per request, needed only when the
        //  engine dies first).
        zframe_t *bytes = lp_wire_frame (msg, 1, LP_FRAME_HEADER);
        record->header = bytes? zframe_dup (bytes): NULL;
        record->engine = engine;
        record->sent_at = lp_util_wall_usec ();
    }
    if (!record || !record->client || !record->header
    ||  zhashx_lookup (self->records, record->key)
    ||  zmsg_pushmem (msg, engine->uuid, strlen (engine->uuid)) != 0) {
        s_record_destroy (&record);
        zmsg_destroy (&msg);
        return -1;
    }
    if (zmsg_send (&msg, self->engine) != 0) {
        zmsg_destroy (&msg);
        s_record_destroy (&record);
        return -1;
    }
    record->handle = zlistx_add_end (engine->sent, record);
    if (!record->handle || zhashx_insert (self->records, record->key, record) != 0) {
        //  Sent but cannot be tracked: its reply will be dropped as
        //  unmatched, so the client gets this error instead.
        if (record->handle)
            zlistx_detach (engine->sent, record->handle);
        s_reply_error (self, client, header, engine->id, "EngineError",
                       "controller out of memory: the request was sent but cannot be tracked");
        s_record_destroy (&record);
    }
    return 0;
}

//  A request from a client: verify, fold targets, fan out.
static void
s_handle_client (void *arg, zmsg_t *msg, lp_value_t *header)
{
    self_t *self = (self_t *) arg;
    zframe_t *client = zframe_dup (zmsg_first (msg));
    const char *msg_id = lp_value_as_string (lp_value_get (header, LP_HDR_MSG_ID), NULL);
    const lp_value_t *targets = lp_value_get (header, LP_HDR_TARGETS);
    char why [256];
    if (!targets || lp_value_type (targets) != LP_ARRAY || lp_value_len (targets) == 0) {
        s_reply_error (self, client, header, -1, LP_ENAME_PROTOCOL,
                       "request has no targets (header.targets must be a non-empty array of engine ids)");
        goto done;
    }
    size_t room = lp_routes_active (self->engines) + 1;
    if (room > self->targets_size) {
        int64_t *grown = (int64_t *) realloc (self->targets, room * sizeof *grown);
        if (!grown) {
            s_reply_error (self, client, header, -1, LP_ENAME_ENGINE, "controller out of memory");
            goto done;
        }
        self->targets = grown;
        self->targets_size = room;
    }
    int64_t ntargets = lp_routes_fold (self->engines, targets, self->targets, why, sizeof why);
    if (ntargets < 0) {
        s_reply_error (self, client, header, -1, LP_ENAME_PROTOCOL, why);
        goto done;
    }
    s_store_request (self, msg, msg_id, self->targets, ntargets);
    for (int64_t i = 0; i < ntargets; i++) {
        int64_t id = self->targets [i];
        lp_route_t *engine = lp_routes_by_id (self->engines, id);
        if (!engine || !engine->active) {
            snprintf (why, sizeof why, "engine %lld is not registered", (long long) id);
            s_reply_error (self, client, header, id, LP_ENAME_ENGINE, why);
            continue;
        }
        char key [LP_RECORD_KEY_CHARS];
        s_record_key (key, msg_id, engine->id);
        if (zhashx_lookup (self->records, key)) {
            s_reply_error (self, client, header, id, LP_ENAME_PROTOCOL,
                           "a request with this msg_id is already pending on this engine");
            continue;
        }
        zmsg_t *copy = (i + 1 == ntargets)? msg: zmsg_dup (msg);
        if (copy == msg)
            msg = NULL;
        if (!copy || s_forward (self, engine, &copy, client, header, msg_id) != 0) {
            snprintf (why, sizeof why, "engine %lld is not reachable", (long long) id);
            s_reply_error (self, client, header, id, LP_ENAME_ENGINE, why);
        }
    }
done:
    zframe_destroy (&client);
    lp_value_destroy (&header);
    zmsg_destroy (&msg);
}

//  A reply from an engine (the skeleton verified it and took the hellos).
static void
s_handle_reply (void *arg, lp_actor_reply_t *reply)
{
    self_t *self = (self_t *) arg;
    zmsg_t *msg = reply->msg;
    lp_route_t *engine = reply->engine;
    s_record_t *record = NULL;
    if (engine && *reply->parent_id) {
        char key [LP_RECORD_KEY_CHARS];
        s_record_key (key, reply->parent_id, engine->id);
        record = (s_record_t *) zhashx_lookup (self->records, key);
    }
    if (record) {
        //  The reply goes to the client that sent the request, whatever
        //  routing frame the engine put in front.
        zframe_t *routing = zmsg_pop (msg);
        zframe_destroy (&routing);
        routing = zframe_dup (record->client);
        if (routing && zmsg_prepend (msg, &routing) == 0) {
            s_store_reply (self, reply->parent_id, engine->id, msg);
            zmsg_send (&msg, self->client);
        }
        zframe_destroy (&routing);
        engine->done++;
        s_record_final (self, record);
    }
    else
    if (!zframe_streq (zmsg_first (msg), "controller"))
        lp_reply_unmatched (&self->unmatched, self->name, reply->uuid, reply->parent_id);
    //  (else: an engine's answer to our own shutdown_request, expected)
    zmsg_destroy (&msg);
}

//  The hub says the engine is gone: every request recorded on it fails
//  now, with ename (EngineError, or TimeLimit).
static void
s_engine_remove (void *arg, lp_route_t *engine, const char *why, const char *ename)
{
    self_t *self = (self_t *) arg;
    //  Replies the engine sent before it left may wait in our socket (an
    //  engine answers shutdown_request, then unregisters on another
    //  connection, which the hub may read first): they end their requests
    //  before the rest fail.
    lp_actor_drain_engines (self->actor);
    lp_routes_deactivate (self->engines, engine);
    s_record_t *record;
    while ((record = (s_record_t *) zlistx_first (engine->sent))) {
        s_record_error (self, record, engine->id, ename, why);
        s_record_final (self, record);
    }
}

//  The cluster is shutting down: every engine is asked to exit.
static void
s_shutdown_engines (self_t *self)
{
    for (size_t id = 0; id < lp_routes_span (self->engines); id++) {
        lp_route_t *engine = lp_routes_by_id (self->engines, (int64_t) id);
        if (!engine || !engine->active)
            continue;
        lp_msg_t *request = lp_msg_new (LP_SHUTDOWN_REQUEST);
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

//  "SHUTDOWN" is the mux's own command; the skeleton takes the rest.
static void
s_handle_command (void *arg, const char *command, zmsg_t *msg)
{
    (void) msg;
    self_t *self = (self_t *) arg;
    if (streq (command, "SHUTDOWN"))
        s_shutdown_engines (self);
    else
        zsys_error ("%s: unknown command '%s' from the hub", self->name, command);
}

static void
s_self_destroy (self_t **self_p)
{
    self_t *self = *self_p;
    if (!self)
        return;
    //  Records are owned by the engine lists; the index only points.
    zhashx_destroy (&self->records);
    lp_actor_destroy (&self->actor);
    free (self->targets);
    free (self);
    *self_p = NULL;
}

static const lp_actor_handlers_t s_handlers = {
    .client = s_handle_client,
    .reply = s_handle_reply,
    .remove = s_engine_remove,
    .command = s_handle_command
};

static self_t *
s_self_new (zsock_t *pipe, lp_mux_config_t *config)
{
    self_t *self = (self_t *) zmalloc (sizeof (self_t));
    char name [32];
    snprintf (name, sizeof name, "controller/%s", config->channel);
    //  The mux on I/O thread 0, the scheduler on 1; the control channel
    //  anywhere.
    lp_actor_config_t actor = {
        .ip = config->ip, .want = { config->want [0], config->want [1] }, .key = config->key, .key_len = config->key_len,
        .guard = config->guard, .name = name, .channel = config->channel,
        .io_thread = streq (config->channel, "mux")? 0: -1,
        .sent_free = s_record_free, .handlers = &s_handlers, .arg = self };
    self->actor = lp_actor_new (pipe, &actor);
    self->records = zhashx_new ();
    if (!self->actor || !self->records) {
        s_self_destroy (&self);
        return NULL;
    }
    //  Keys are the records' own key strings (no copy per request); an
    //  entry leaves the index before its record is freed.
    zhashx_set_key_duplicator (self->records, NULL);
    zhashx_set_key_destructor (self->records, NULL);
    self->wire = self->actor->wire;
    self->channel = self->actor->channel;
    self->name = self->actor->name;
    self->client = self->actor->client;
    self->engine = self->actor->engine;
    self->engines = self->actor->engines;
    self->store = config->store;
    return self;
}

void
lp_mux_actor (zsock_t *pipe, void *args)
{
    self_t *self = s_self_new (pipe, (lp_mux_config_t *) args);
    lp_actor_serve (self? self->actor: NULL, pipe);
    s_self_destroy (&self);
}
