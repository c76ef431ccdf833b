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
#include "lp_bind.h"
#include "lp_reply.h"
#include "lp_routes.h"
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
    zsock_t *pipe;                      //  to the hub
    zloop_t *loop;                      //  our reactor
    lp_wire_t *wire;                    //  verify / sign
    const char *channel;                //  "mux" or "control"
    char name [32];                     //  "controller/<channel>", for logs
    zsock_t *client;                    //  client-facing ROUTER
    zsock_t *engine;                    //  engine-facing ROUTER
    lp_routes_t *engines;               //  record lists (own the records)
    zhashx_t *records;                  //  key -> s_record_t (borrowed)
    int64_t *targets;                   //  scratch for folded targets
    size_t targets_size;                //  slots in targets
    lp_unmatched_t unmatched;           //  engine replies with no record
    char endpoints [2][128];            //  engine, client
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

//  Sends an error reply from the controller for a request.
static void
s_reply_error (self_t *self, zframe_t *client, lp_value_t *header,
               int64_t engine_id, const char *ename, const char *evalue)
{
    lp_reply_error (self->wire, self->client, client, header, engine_id, ename, evalue);
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
        zframe_t *bytes = lp_reply_frame (msg, 1, LP_FRAME_HEADER);
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
static int
s_handle_client (self_t *self, zmsg_t *msg)
{
    size_t delim = 0;
    lp_value_t *header = lp_wire_verify (self->wire, msg, &delim);
    //  A request refused for its date is dropped here (docs/protocol.md,
    //  "Replays"); unlike the scheduler, the mux holds nothing back, so a
    //  stale date is the sender's clock or a captured message.
    if (!header || delim != 1) {
        lp_value_destroy (&header);
        zmsg_destroy (&msg);
        return 0;
    }
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
        if (decoded && *uuid && streq (lp_msg_type (decoded), LP_ENGINE_HELLO)) {
            int64_t id = lp_msg_get_int (decoded, "id", -1);
            zsock_send (self->pipe, "siss", "HELLO", (int) id, uuid,
                        self->channel);
        }
        lp_msg_destroy (&decoded);
        return 0;
    }
    size_t delim = 0;
    lp_value_t *header = lp_wire_verify_reply (self->wire, msg, &delim);
    if (!header || delim != 1) {
        lp_value_destroy (&header);
        zmsg_destroy (&msg);
        return 0;
    }
    //  Only parent_header.msg_id is read, from the frame's bytes.
    char parent_id [LP_RECORD_KEY_CHARS] = "";
    lp_route_t *engine = lp_routes_by_uuid (self->engines, uuid);
    s_record_t *record = NULL;
    if (engine
    &&  lp_reply_map_str (lp_reply_frame (msg, delim, LP_FRAME_PARENT), LP_HDR_MSG_ID,
                          parent_id, sizeof parent_id) != 0)
        parent_id [0] = 0;
    if (engine && *parent_id) {
        char key [LP_RECORD_KEY_CHARS];
        s_record_key (key, parent_id, engine->id);
        record = (s_record_t *) zhashx_lookup (self->records, key);
    }
    if (record) {
        //  The reply goes to the client that sent the request, whatever
        //  routing frame the engine put in front.
        zframe_t *routing = zmsg_pop (msg);
        zframe_destroy (&routing);
        routing = zframe_dup (record->client);
        if (routing && zmsg_prepend (msg, &routing) == 0)
            zmsg_send (&msg, self->client);
        zframe_destroy (&routing);
        engine->done++;
        s_record_final (self, record);
    }
    else
    if (!zframe_streq (zmsg_first (msg), "controller"))
        lp_reply_unmatched (&self->unmatched, self->name, uuid, parent_id);
    //  (else: an engine's answer to our own shutdown_request, expected)
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

//  The hub says the engine is gone: every request recorded on it fails
//  now, with ename (EngineError, or TimeLimit).
static void
s_engine_remove (self_t *self, int id, const char *reason, const char *ename)
{
    lp_route_t *engine = lp_routes_by_id (self->engines, id);
    if (!engine)
        return;
    //  Replies the engine sent before it left may wait in our socket (an
    //  engine answers shutdown_request, then unregisters on another
    //  connection, which the hub may read first): they end their requests
    //  before the rest fail.
    zmsg_t *msg;
    for (int n = 0; n < LP_DRAIN_BATCH && (msg = zmsg_recv (self->engine)); n++)
        s_handle_engine (self, msg);
    lp_routes_deactivate (self->engines, engine);
    char why [256];
    snprintf (why, sizeof why, "engine %d %s", id, reason);
    s_record_t *record;
    while ((record = (s_record_t *) zlistx_first (engine->sent))) {
        s_record_error (self, record, id, ename, why);
        s_record_final (self, record);
    }
}

static void
s_send_queues (self_t *self)
{
    size_t span = lp_routes_span (self->engines);
    size_t size = 16 + span * 24;
    char *text = (char *) zmalloc (size);
    size_t used = 0;
    for (size_t id = 0; id < span; id++) {
        lp_route_t *engine = lp_routes_by_id (self->engines, (int64_t) id);
        if (engine && engine->active)
            used += snprintf (text + used, size - used, "%zu:%zu ", id,
                              zlistx_size (engine->sent));
    }
    zsock_send (self->pipe, "ss", "QUEUES", text);
    free (text);
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
        char *ename = zmsg_popstr (msg);    //  REMOVE only
        id = id_text? atoi (id_text): -1;
        free (id_text);
        if (streq (command, "ADD"))
            lp_routes_add (self->engines, id, text? text: "");
        else
            s_engine_remove (self, id, text? text: "died",
                             ename && *ename? ename: LP_ENAME_ENGINE);
        free (ename);
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
    //  Records are owned by the engine lists; the index only points.
    zhashx_destroy (&self->records);
    lp_routes_destroy (&self->engines);
    free (self->targets);
    lp_wire_destroy (&self->wire);
    free (self);
    *self_p = NULL;
}

static self_t *
s_self_new (zsock_t *pipe, lp_mux_config_t *config)
{
    self_t *self = (self_t *) zmalloc (sizeof (self_t));
    self->pipe = pipe;
    snprintf (self->name, sizeof self->name, "controller/%s", config->channel);
    self->wire = lp_wire_new (config->key, config->key_len, self->name);
    if (self->wire && config->guard)
        lp_wire_set_guard (self->wire, config->guard);
    self->engines = lp_routes_new (s_record_free);
    self->records = zhashx_new ();
    self->loop = zloop_new ();
    if (!self->wire || !self->engines || !self->records || !self->loop) {
        s_self_destroy (&self);
        return NULL;
    }
    //  Keys are the records' own key strings (no copy per request); an
    //  entry leaves the index before its record is freed.
    zhashx_set_key_duplicator (self->records, NULL);
    zhashx_set_key_destructor (self->records, NULL);
    self->channel = config->channel;
    self->engine = zsock_new (ZMQ_ROUTER);
    self->client = zsock_new (ZMQ_ROUTER);
    if (self->engine) {
        zsock_set_router_mandatory (self->engine, 1);
        zsock_set_router_handover (self->engine, 1);
    }
    //  The mux on I/O thread 0, the scheduler on 1 (lp_routes_io_affinity);
    //  the control channel anywhere.
    uint64_t affinity = streq (self->channel, "mux")? lp_routes_io_affinity (0): 0;
    if (self->engine)
        zsock_set_affinity (self->engine, (int) affinity);
    if (self->client)
        zsock_set_affinity (self->client, (int) affinity);
    if (lp_bind_tcp (self->engine, config->ip, self->endpoints [0], 128)
    ||  lp_bind_tcp (self->client, config->ip, self->endpoints [1], 128)) {
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
