/*  =========================================================================
    lp_session.c - the engine's connection to a controller

    Life of a session (protocol.md, "Registration channel"):

        reload conn file -> registration DEALER -> registration_request
          <- registration_reply {id, heartbeat_msec, max_misses}
        heart actor (hb SUB/DEALER, control DEALER + engine_hello)
        mux and task DEALERs + engine_hello, iopub PUB (connects to the XSUB)
        serve requests one at a time until:
          "LOST" from the heart   -> close sockets, backoff, register again
                                     asking for the old id (Lua state kept)
          "SHUTDOWN" / a signal   -> unregistration_request, exit

    Backoff: LP_RECONNECT_MIN_MSEC doubling to LP_RECONNECT_MAX_MSEC, plus
    up to half again of random jitter so a crowd of engines spreads out.
    While it waits for a registration_reply, a connection file newer than
    the one it loaded (a restarted controller) makes it register again at
    once, with no backoff.
    Every DEALER uses the engine uuid as its identity, kept across
    reconnects. The registration and heartbeat sockets never reconnect by
    themselves (ZMQ_RECONNECT_IVL -1): once the controller is gone its
    ports may be bound by another cluster's controller, whose pings must
    not keep us "alive"; the heart then hears silence and we rebuild from
    the connection file. The mux, task, control and iopub sockets do
    reconnect (ZeroMQ's own, every LP_ENGINE_RECONNECT_IVL_MSEC): the
    controller closes a connection that sent it an oversize frame, and
    the engine must stay reachable; the same identity is routable again.

    Always answer: a request whose signature and header verified gets one
    reply (lp_wire_decode_request: content that does not decode -> ProtocolError;
    s_reply: a reply that cannot be encoded or has a frame over the cap
    -> SerializationError). Aborted requests (lp_engine_abort, by the
    heart) are answered Aborted without running.

    --lost-exit: when the controller has been lost (no ping) for longer
    than that, the engine stops trying to register again and exits.

    The main thread owns one lp_wire_t for its sockets; the
    heart has its own.
    =========================================================================
*/
#include "lp_session.h"
#include "lp_heart.h"
#include "lp_proto.h"
#include "lp_util.h"
#include "lp_msg.h"
#include "lp_wire.h"
#include "lp_conn.h"
#include <lua.h>
#include <sys/stat.h>
#include <sodium.h>
#include <unistd.h>

typedef enum { S_LOST, S_SHUTDOWN, S_STOP } s_end_t;

struct _lp_session_t {
    char *conn_path;                    //  engine connection file
    lp_conn_t *conn;                    //  its last good contents
    lp_engine_t *engine;                //  the Lua state (not owned)
    char uuid [LP_ID_CHARS + 1];        //  identity of every DEALER
    int id;                             //  engine id, -1 before the first
    int heartbeat_msec;                 //  from registration_reply
    int max_misses;                     //  from registration_reply
    lp_wire_t *wire;                    //  main thread's signer
    zsock_t *registration;              //  DEALER
    zsock_t *mux;                       //  DEALER, direct requests
    zsock_t *task;                      //  DEALER, load-balanced tasks
    zsock_t *iopub;                     //  PUB, connects to the XSUB
    zactor_t *heart;                    //  heartbeat + control actor
    lp_msg_t *request;                  //  request being served, or NULL
    char topic [32];                    //  "engine.<id>.stream"
    const volatile sig_atomic_t *stop;  //  set by SIGTERM / SIGINT
    struct timespec conn_mtime;         //  of the file we loaded
    ino_t conn_ino;                     //  of the file we loaded
    int64_t lost_exit;                  //  --lost-exit ms, 0 = never
    int64_t lost_since;                 //  zclock_mono since when no
                                        //  controller, 0 = registered
    char *pend;                         //  output batched for iopub
    size_t pend_len;                    //  bytes in pend
    size_t pend_cap;                    //  bytes allocated
    size_t pend_offset;                 //  its offset in the output
    int64_t window_start;               //  zclock_mono of the window
    int window_msgs;                    //  stream messages sent in it
};

//  --------------------------------------------------------------------------

lp_session_t *
lp_session_new (const char *conn_path, lp_conn_t **conn_p, lp_engine_t *engine)
{
    assert (conn_path);
    assert (conn_p && *conn_p);
    assert (engine);
    lp_session_t *self = (lp_session_t *) calloc (1, sizeof (lp_session_t));
    if (!self)
        return NULL;
    self->conn_path = strdup (conn_path);
    if (!self->conn_path) {
        free (self);
        return NULL;
    }
    self->conn = *conn_p;
    *conn_p = NULL;
    self->engine = engine;
    self->id = -1;
    self->lost_since = zclock_mono ();
    lp_util_random_id (self->uuid);
    return self;
}

void
lp_session_set_lost_exit (lp_session_t *self, int64_t msec)
{
    assert (self);
    self->lost_exit = msec > 0? msec: 0;
}

void
lp_session_set_id (lp_session_t *self, int id)
{
    assert (self);
    self->id = id >= 0? id: -1;
}

//  True when --lost-exit says to give up
static bool
s_lost_too_long (lp_session_t *self)
{
    return self->lost_exit && self->lost_since
        && zclock_mono () - self->lost_since > self->lost_exit;
}

static void
s_disconnect (lp_session_t *self)
{
    zactor_destroy (&self->heart);
    zsock_destroy (&self->registration);
    zsock_destroy (&self->mux);
    zsock_destroy (&self->task);
    zsock_destroy (&self->iopub);
    lp_wire_destroy (&self->wire);
}

void
lp_session_destroy (lp_session_t **self_p)
{
    assert (self_p);
    lp_session_t *self = *self_p;
    if (self) {
        s_disconnect (self);
        lp_conn_destroy (&self->conn);
        free (self->conn_path);
        free (self->pend);
        free (self);
        *self_p = NULL;
    }
}

//  --------------------------------------------------------------------------
//  Helpers

static zsock_t *
s_socket (lp_session_t *self, int type, const char *channel)
{
    const char *endpoint = lp_conn_endpoint (self->conn, channel);
    if (!endpoint) {
        zsys_error ("connection file has no '%s' endpoint", channel);
        return NULL;
    }
    zsock_t *sock = zsock_new (type);
    if (!sock) {
        zsys_error ("cannot create the %s socket: %s", channel, zmq_strerror (zmq_errno ()));
        return NULL;
    }
    if (type == ZMQ_DEALER)
        zsock_set_identity (sock, self->uuid);
    lp_wire_tune_socket (sock);
    lp_conn_apply_curve (self->conn, sock);     //  a secure cluster's keys
    //  The registration socket never reconnects by itself: a dead
    //  controller's ports may be taken by another cluster; we rebuild every
    //  socket on reconnect. The data channels do (protocol.md: a channel
    //  the controller closed, after an oversize frame say, is re-opened);
    //  liveness is the heart's business, on sockets that never reconnect.
    if (streq (channel, "registration"))
        zsock_set_reconnect_ivl (sock, -1);
    else {
        zsock_set_reconnect_ivl (sock, LP_ENGINE_RECONNECT_IVL_MSEC);
        zsock_set_reconnect_ivl_max (sock, LP_ENGINE_RECONNECT_IVL_MAX_MSEC);
    }
    //  With no peer (the controller gone) a DEALER send would block
    zsock_set_sndtimeo (sock, LP_ENGINE_SEND_TIMEOUT_MSEC);
    if (zsock_connect (sock, "%s", endpoint)) {
        zsys_error ("cannot connect %s to %s: %s", channel, endpoint, zmq_strerror (zmq_errno ()));
        zsock_destroy (&sock);
    }
    return sock;
}

//  Remembers which version of the connection file we use
static void
s_conn_stamp (lp_session_t *self)
{
    struct stat st;
    if (stat (self->conn_path, &st) == 0) {
        self->conn_mtime = st.st_mtim;
        self->conn_ino = st.st_ino;
    }
}

//  True when a controller has written a new connection file since we
//  loaded ours (another inode or modification time).
static bool
s_conn_changed (lp_session_t *self)
{
    struct stat st;
    if (stat (self->conn_path, &st))
        return false;
    return st.st_ino != self->conn_ino
        || st.st_mtim.tv_sec != self->conn_mtime.tv_sec
        || st.st_mtim.tv_nsec != self->conn_mtime.tv_nsec;
}

static lp_value_t *
s_text_value (const char *text, size_t len)
{
    if (lp_util_utf8_valid (text, len))
        return lp_value_lstring (text, len);
    return lp_value_bytes (text, len);
}

//  Sends a message with content built by the caller (taken)
static int
s_send (lp_session_t *self, zsock_t *sock, const char *type, lp_value_t *content)
{
    lp_msg_t *msg = lp_msg_new (type);
    if (!msg || !content) {
        lp_msg_destroy (&msg);
        lp_value_destroy (&content);
        return -1;
    }
    lp_msg_set_content (msg, content);
    return lp_wire_send (self->wire, &msg, sock);
}

//  One stream message on iopub: text at offset in the request's output
//  (so a client can tell a lost message: protocol.md, Output)
static void
s_publish (lp_session_t *self, const char *text, size_t len, size_t offset)
{
    //  One print longer than 64 MiB (the default capture cap) publishes
    //  its start only: a bound on subscribers' memory (the wire itself
    //  would carry it in pieces)
    if (len > LP_ENGINE_STDOUT_MAX)
        len = LP_ENGINE_STDOUT_MAX;
    self->window_msgs++;
    lp_msg_t *msg = lp_msg_new_reply (self->request, LP_STREAM);
    zmsg_t *routing = zmsg_new ();
    lp_value_t *content = lp_value_map ();
    if (!msg || !routing || !content
    ||  zmsg_addstr (routing, self->topic)
    ||  lp_value_set (content, "name", lp_value_string ("stdout"))
    ||  lp_value_set (content, "text", s_text_value (text, len))
    ||  lp_value_set (content, "offset", lp_value_int ((int64_t) offset))
    ||  lp_value_set (lp_msg_metadata (msg), LP_META_ENGINE, lp_value_int (self->id))) {
        lp_msg_destroy (&msg);
        zmsg_destroy (&routing);
        lp_value_destroy (&content);
        return;
    }
    lp_msg_set_routing (msg, &routing);
    lp_msg_set_content (msg, content);
    lp_wire_send (self->wire, &msg, self->iopub);
}

static void
s_stream_flush (lp_session_t *self)
{
    if (self->pend_len && self->iopub && self->request)
        s_publish (self, self->pend, self->pend_len, self->pend_offset);
    self->pend_len = 0;
}

//  print / io.write from Lua: published at once on iopub, one message per
//  call, up to LP_STREAM_WINDOW_MSGS messages per LP_STREAM_WINDOW_MSEC;
//  past that (a loop printing millions of lines) calls are batched into
//  messages of up to LP_STREAM_BATCH_BYTES, sent when full, at the first
//  call of a new window, or when the request ends. Every queue on the way
//  is unbounded (a full queue blocks, it never drops): one message per
//  line of a 10^7-line loop held gigabytes in the controller and client.
static void
s_output (void *arg, const char *text, size_t len)
{
    lp_session_t *self = (lp_session_t *) arg;
    if (!self->iopub || !self->request)
        return;
    //  offset: where text starts in the request's output (the capture
    //  has not appended it yet)
    size_t offset = 0;
    lp_engine_stdout (self->engine, &offset);
    int64_t now = zclock_mono ();
    bool new_window = now - self->window_start >= LP_STREAM_WINDOW_MSEC;
    if (new_window) {
        s_stream_flush (self);
        self->window_start = now;
        self->window_msgs = 0;
    }
    if (self->pend_len == 0 && self->window_msgs < LP_STREAM_WINDOW_MSGS) {
        s_publish (self, text, len, offset);
        return;
    }
    if (self->pend_len + len > self->pend_cap) {
        size_t cap = self->pend_cap? self->pend_cap: LP_STREAM_BATCH_BYTES;
        while (cap < self->pend_len + len)
            cap *= 2;
        char *pend = (char *) realloc (self->pend, cap);
        if (!pend) {
            s_stream_flush (self);
            s_publish (self, text, len, offset);
            return;
        }
        self->pend = pend;
        self->pend_cap = cap;
    }
    if (self->pend_len == 0)
        self->pend_offset = offset;
    memcpy (self->pend + self->pend_len, text, len);
    self->pend_len += len;
    if (self->pend_len >= LP_STREAM_BATCH_BYTES)
        s_stream_flush (self);
}

//  --------------------------------------------------------------------------
//  Registration

static lp_value_t *
s_registration_content (lp_session_t *self)
{
    lp_value_t *content = lp_value_map ();
    if (content
    && (lp_value_set (content, "uuid", lp_value_string (self->uuid))
    ||  lp_value_set (content, "id", lp_value_int (self->id))
    ||  lp_proto_set_place (content)
    ||  lp_value_set (content, "lua_version", lp_value_string (LUA_RELEASE))))
        lp_value_destroy (&content);
    return content;
}

//  Waits for the registration_reply to msg_id; 0 when registered, 1 when
//  the connection file changed meanwhile, -1 otherwise
static int
s_await_reply (lp_session_t *self, const char *msg_id)
{
    zpoller_t *poller = zpoller_new (self->registration, NULL);
    if (!poller)
        return -1;
    int64_t deadline = zclock_mono () + LP_REGISTER_TIMEOUT_MSEC;
    int rc = -1;
    while (!*self->stop && !s_lost_too_long (self)) {
        int64_t left = deadline - zclock_mono ();
        if (left <= 0) {
            zsys_warning ("no " LP_REGISTRATION_REPLY " within %d ms", LP_REGISTER_TIMEOUT_MSEC);
            break;
        }
        if (s_conn_changed (self)) {
            zsys_info ("connection file changed: registering again");
            rc = 1;
            break;
        }
        if (zpoller_wait (poller, left < LP_ENGINE_POLL_MSEC? (int) left: LP_ENGINE_POLL_MSEC)
            != self->registration)
            continue;
        lp_msg_t *reply = lp_wire_recv (self->wire, self->registration);
        if (!reply)
            continue;
        const char *parent = lp_msg_parent_id (reply);
        if (!streq (lp_msg_type (reply), LP_REGISTRATION_REPLY) || !parent || !streq (parent, msg_id)) {
            lp_msg_destroy (&reply);
            continue;
        }
        const char *status = lp_msg_get_string (reply, LP_CONTENT_STATUS);
        int64_t id = lp_msg_get_int (reply, "id", -1);
        if (!status || !streq (status, LP_STATUS_OK) || id < 0 || id > INT32_MAX) {
            const char *ename = lp_msg_get_string (reply, LP_CONTENT_ENAME);
            const char *evalue = lp_msg_get_string (reply, LP_CONTENT_EVALUE);
            zsys_error ("registration refused: %s: %s",
                        ename? ename: "?", evalue? evalue: "(no message)");
        }
        else {
            self->id = (int) id;
            self->heartbeat_msec = (int) lp_msg_get_int (reply, "heartbeat_msec", LP_HEARTBEAT_MSEC);
            self->max_misses = (int) lp_msg_get_int (reply, "max_misses", LP_HEARTBEAT_MAX_MISSES);
            if (self->heartbeat_msec <= 0)
                self->heartbeat_msec = LP_HEARTBEAT_MSEC;
            if (self->max_misses <= 0)
                self->max_misses = LP_HEARTBEAT_MAX_MISSES;
            rc = 0;
        }
        lp_msg_destroy (&reply);
        break;
    }
    zpoller_destroy (&poller);
    return rc;
}

static int
s_register (lp_session_t *self)
{
    char err [512];
    lp_conn_t *conn = lp_conn_load (self->conn_path, err, sizeof err);
    if (conn) {
        lp_conn_destroy (&self->conn);
        self->conn = conn;
        s_conn_stamp (self);
    }
    else
        zsys_warning ("%s (using the last good copy)", err);

    size_t key_len;
    const uint8_t *key = lp_conn_key (self->conn, &key_len);
    self->wire = lp_wire_new (key, key_len, "engine");
    if (!self->wire)
        return -1;
    self->registration = s_socket (self, ZMQ_DEALER, "registration");
    if (!self->registration)
        return -1;

    lp_msg_t *request = lp_msg_new (LP_REGISTRATION_REQUEST);
    lp_value_t *content = s_registration_content (self);
    if (!request || !content) {
        lp_msg_destroy (&request);
        lp_value_destroy (&content);
        return -1;
    }
    lp_msg_set_content (request, content);
    char msg_id [LP_ID_CHARS + 1];
    snprintf (msg_id, sizeof msg_id, "%s", lp_msg_id (request));
    if (lp_wire_send (self->wire, &request, self->registration))
        return -1;
    int old_id = self->id;
    int rc = s_await_reply (self, msg_id);
    if (rc)
        return rc;

    char ident [32];
    snprintf (ident, sizeof ident, "lpengine[%d]", self->id);
    zsys_set_logident (ident);
    snprintf (self->topic, sizeof self->topic, "engine.%d.stream", self->id);
    lp_engine_set_id (self->engine, self->id);
    if (old_id >= 0 && old_id != self->id)
        zsys_warning ("re-registered with id %d (was %d)", self->id, old_id);

    //  Heart first: it says hello on control before zactor_new returns
    lp_heart_config_t config = {
        .engine = self->engine, .stop = self->stop,
        .hb_ping = lp_conn_endpoint (self->conn, "hb_ping"),
        .hb_pong = lp_conn_endpoint (self->conn, "hb_pong"),
        .control = lp_conn_endpoint (self->conn, "control"),
        .uuid = self->uuid, .key = key, .key_len = key_len,
        .conn = self->conn, .id = self->id, .heartbeat_msec = self->heartbeat_msec,
        .max_misses = self->max_misses, .conn_path = self->conn_path,
        .conn_ino = self->conn_ino, .conn_mtime = self->conn_mtime, .rc = -1
    };
    if (!config.hb_ping || !config.hb_pong || !config.control) {
        zsys_error ("connection file lacks hb_ping, hb_pong or control");
        return -1;
    }
    //  The heart thread must not take our signals
    sigset_t block, old;
    sigemptyset (&block);
    sigaddset (&block, SIGTERM);
    sigaddset (&block, SIGINT);
    pthread_sigmask (SIG_BLOCK, &block, &old);
    self->heart = zactor_new (lp_heart_actor, &config);
    pthread_sigmask (SIG_SETMASK, &old, NULL);
    if (!self->heart || config.rc) {
        zsys_error ("cannot start the heartbeat thread");
        return -1;
    }
    self->mux = s_socket (self, ZMQ_DEALER, "mux");
    self->task = s_socket (self, ZMQ_DEALER, "task");
    self->iopub = s_socket (self, ZMQ_PUB, "iopub");
    if (!self->mux || !self->task || !self->iopub)
        return -1;
    zsock_t *hello_sockets [] = { self->mux, self->task };
    for (int i = 0; i < 2; i++) {
        lp_value_t *hello = lp_value_map ();
        if (!hello || lp_value_set (hello, "id", lp_value_int (self->id))) {
            lp_value_destroy (&hello);
            return -1;
        }
        if (s_send (self, hello_sockets [i], LP_ENGINE_HELLO, hello))
            return -1;
    }
    zsys_info ("registered as engine %d (uuid %s, pid %d)", self->id, self->uuid, (int) getpid ());
    return 0;
}

static void
s_unregister (lp_session_t *self)
{
    if (!self->registration || !self->wire || self->id < 0)
        return;
    lp_value_t *content = lp_value_map ();
    if (content && lp_value_set (content, "id", lp_value_int (self->id)))
        lp_value_destroy (&content);
    if (s_send (self, self->registration, LP_UNREGISTRATION_REQUEST, content) == 0)
        zsys_info ("unregistered");
}

//  --------------------------------------------------------------------------
//  Requests

static lp_value_t *
s_protocol_error (const char *type, const char *field)
{
    char evalue [160];
    snprintf (evalue, sizeof evalue, "%.64s: missing or mistyped field '%s'", type, field);
    return lp_engine_error_content (LP_ENAME_PROTOCOL, evalue, "");
}

static const lp_value_t *
s_field (lp_msg_t *request, const char *key, lp_type_t type, lp_type_t alt)
{
    const lp_value_t *value = lp_value_get (lp_msg_content (request), key);
    if (value && (lp_value_type (value) == type || lp_value_type (value) == alt))
        return value;
    return NULL;
}

static lp_value_t *
s_dispatch (lp_session_t *self, lp_msg_t *request, const char *type)
{
    if (streq (type, LP_EXECUTE_REQUEST)) {
        const char *code = lp_msg_get_string (request, "code");
        return code? lp_engine_execute (self->engine, code): s_protocol_error (type, "code");
    }
    if (streq (type, LP_APPLY_REQUEST) || streq (type, LP_MAP_REQUEST)) {
        const char *fn = lp_msg_get_string (request, "fn");
        if (!fn)
            return s_protocol_error (type, "fn");
        if (streq (type, LP_MAP_REQUEST)) {
            const lp_value_t *items = s_field (request, "items", LP_ARRAY, LP_TYPED);
            const lp_value_t *star = lp_value_get (lp_msg_content (request), LP_MAP_STAR);
            return items? lp_engine_map (self->engine, fn, items, star && lp_value_as_bool (star))
                        : s_protocol_error (type, "items");
        }
        const lp_value_t *args = NULL;
        if (lp_value_get (lp_msg_content (request), "args")) {
            args = s_field (request, "args", LP_ARRAY, LP_ARRAY);
            if (!args)
                return s_protocol_error (type, "args");
        }
        return lp_engine_apply (self->engine, fn, args);
    }
    if (streq (type, LP_PUSH_REQUEST)) {
        const lp_value_t *ns = s_field (request, "ns", LP_MAP, LP_MAP);
        //  an empty map may arrive as an empty array
        if (!ns) {
            const lp_value_t *empty = s_field (request, "ns", LP_ARRAY, LP_ARRAY);
            if (empty && lp_value_len (empty) == 0) {
                lp_value_t *content = lp_value_map ();
                if (content && lp_value_set (content, LP_CONTENT_STATUS, lp_value_string (LP_STATUS_OK)))
                    lp_value_destroy (&content);
                return content;
            }
        }
        return ns? lp_engine_push (self->engine, ns): s_protocol_error (type, "ns");
    }
    if (streq (type, LP_PULL_REQUEST)) {
        const lp_value_t *names = s_field (request, "names", LP_ARRAY, LP_ARRAY);
        return names? lp_engine_pull (self->engine, names): s_protocol_error (type, "names");
    }
    if (streq (type, LP_CLEAR_REQUEST))
        return lp_engine_clear (self->engine);

    char evalue [128];
    snprintf (evalue, sizeof evalue, "unknown msg_type '%.64s'", type);
    return lp_engine_error_content (LP_ENAME_PROTOCOL, evalue, "");
}

//  Sends the reply to request (content taken) on origin. Every request
//  whose header verified gets exactly one reply: when the reply cannot be
//  encoded, or a frame of it would exceed the frame cap (the controller's
//  ZMQ_MAXMSGSIZE would cut this connection and nobody would hear of the
//  request), a SerializationError reply goes instead.
static void
s_reply (lp_session_t *self, lp_msg_t *request, zsock_t *origin, const char *reply_type,
         lp_value_t *content, const char *started, const char *completed)
{
    for (int attempt = 0; attempt < 2 && content; attempt++) {
        lp_msg_t *reply = lp_msg_new_reply (request, reply_type);
        if (!reply) {
            lp_value_destroy (&content);
            break;
        }
        const lp_value_t *status = lp_value_get (content, LP_CONTENT_STATUS);
        const char *status_text = status? lp_value_as_string (status, NULL): NULL;
        if (!status_text || !streq (status_text, LP_STATUS_OK))
            status_text = LP_STATUS_ERROR;
        const lp_value_t *ename = lp_value_get (content, LP_CONTENT_ENAME);
        const char *ename_text = ename? lp_value_as_string (ename, NULL): NULL;
        lp_msg_set_content (reply, content);
        content = NULL;
        size_t out_len;
        const char *out = lp_engine_stdout (self->engine, &out_len);
        lp_value_t *metadata = lp_msg_metadata (reply);
        if (lp_value_set (metadata, LP_META_ENGINE, lp_value_int (self->id))
        ||  lp_value_set (metadata, LP_META_STATUS, lp_value_string (status_text))
        ||  (streq (status_text, LP_STATUS_ERROR)
             && lp_value_set (metadata, LP_META_ENAME, lp_value_string (ename_text? ename_text: LP_ENAME_ENGINE)))
        ||  lp_value_set (metadata, LP_META_STARTED, lp_value_string (started))
        ||  lp_value_set (metadata, LP_META_COMPLETED, lp_value_string (completed))
        ||  lp_value_set (metadata, LP_META_STDOUT, s_text_value (out, out_len))) {
            lp_msg_destroy (&reply);
            zsys_error ("out of memory building the %s", reply_type);
            break;
        }
        char err [256] = "";
        //  Large results go out from their own buffers (zero-copy)
        lp_wire_out_t *wire_out = lp_wire_encode_out (self->wire, &reply, err, sizeof err);
        if (wire_out) {
            if (lp_wire_out_send (&wire_out, origin))
                zsys_warning ("cannot send the %s: %s", reply_type, zmq_strerror (zmq_errno ()));
            break;
        }
        lp_wire_out_destroy (&wire_out);
        if (attempt > 0) {
            zsys_error ("cannot send even an error %s: %s", reply_type, err);
            break;
        }
        char evalue [400];
        snprintf (evalue, sizeof evalue, "cannot encode the reply: %.255s", err);
        zsys_warning ("%s: %s", reply_type, evalue);
        content = lp_engine_error_content (LP_ENAME_SERIALIZATION, evalue, "");
    }
    lp_value_destroy (&content);
}

//  A request whose time_limit is longer than the walltime left of this
//  engine's batch job is refused before it runs (it would be killed with
//  its job): the WalltimeExceeded error content, or NULL to run it.
static lp_value_t *
s_walltime_refusal (lp_session_t *self, lp_msg_t *request)
{
    const lp_value_t *limit = lp_value_get (lp_msg_header (request), LP_HDR_TIME_LIMIT);
    double left;
    if (!limit || lp_value_as_int (limit) <= 0 || lp_engine_walltime_left (&left) != 0)
        return NULL;
    double wanted = (double) lp_value_as_int (limit) / 1000.0;
    if (wanted <= left)
        return NULL;
    char evalue [160];
    snprintf (evalue, sizeof evalue,
              "time_limit of %.0f s exceeds the %.0f s of walltime left (engine %d)",
              wanted, left, self->id);
    lp_value_t *content = lp_engine_error_content (LP_ENAME_WALLTIME, evalue, "");
    //  NULL here means no memory: the caller's own check says so
    return content? content: lp_engine_error_content (LP_ENAME_MEMORY, "out of memory", "");
}

//  Serves one request and replies on the socket it came from. problem is
//  non-empty when the request's content did not decode: it is answered
//  with a ProtocolError and not run.
static void
s_handle_request (lp_session_t *self, lp_msg_t *request, zsock_t *origin, const char *problem)
{
    const char *type = lp_msg_type (request);
    if (!type)
        type = "";
    char reply_buf [80];
    const char *reply_type = lp_proto_reply_type (type, reply_buf, sizeof reply_buf);

    char started [32], completed [32];
    lp_util_iso_now (started);
    lp_value_t *content = NULL;
    //  What this request prints, and nothing of the previous one's
    lp_engine_clear_stdout (self->engine);
    //  Aborts name the id the client knows: a retry attempt of a task has
    //  its own msg_id and carries the client's as task_id.
    const char *msg_id = lp_msg_id (request);
    const lp_value_t *task_id = lp_value_get (lp_msg_header (request), LP_HDR_TASK_ID);
    if (task_id && lp_value_type (task_id) == LP_STRING)
        msg_id = lp_value_as_string (task_id, NULL);
    if (lp_engine_begin_request (self->engine, msg_id? msg_id: "")) {
        char evalue [80];
        snprintf (evalue, sizeof evalue, "aborted before it started (engine %d)", self->id);
        content = lp_engine_error_content (LP_ENAME_ABORTED, evalue, "");
        zsys_info ("%s %s: aborted before it started", type, msg_id);
    }
    else
    if (problem && *problem) {
        char evalue [400];
        snprintf (evalue, sizeof evalue, "%.64s: %.255s", type, problem);
        content = lp_engine_error_content (LP_ENAME_PROTOCOL, evalue, "");
    }
    else
    if (lp_value_get (lp_msg_header (request), LP_HDR_TIME_LIMIT)
    &&  lp_value_type (lp_value_get (lp_msg_header (request), LP_HDR_TIME_LIMIT)) != LP_INT) {
        //  A mistyped limit is refused, never read as "no limit".
        content = lp_engine_error_content (LP_ENAME_PROTOCOL,
                                           "time_limit must be an integer (ms)", "");
    }
    else
    if ((content = s_walltime_refusal (self, request)) != NULL) {
        zsys_info ("%s %s: %s", type, msg_id,
                   lp_value_as_string (lp_value_get (content, LP_CONTENT_EVALUE), NULL));
    }
    else {
        const lp_value_t *limit = lp_value_get (lp_msg_header (request), LP_HDR_TIME_LIMIT);
        if (limit)
            lp_engine_set_time_limit (self->engine, lp_value_as_int (limit));
        self->request = request;
        self->window_start = 0;         //  its first prints go out at once
        content = s_dispatch (self, request, type);
        s_stream_flush (self);          //  before the reply
        self->request = NULL;
        //  A request refused before it ran must not pass its limit on
        lp_engine_set_time_limit (self->engine, 0);
    }
    lp_util_iso_now (completed);
    if (!content) {
        zsys_error ("out of memory building the %s", reply_type);
        content = lp_engine_error_content (LP_ENAME_MEMORY, "out of memory", "");
    }
    if (content && lp_value_get (content, LP_CONTENT_ENAME)) {
        const char *ename = lp_value_as_string (lp_value_get (content, LP_CONTENT_ENAME), NULL);
        if (ename && streq (ename, LP_ENAME_PROTOCOL))
            zsys_warning ("%s: %s", type,
                          lp_value_as_string (lp_value_get (content, LP_CONTENT_EVALUE), NULL));
    }
    s_reply (self, request, origin, reply_type, content, started, completed);
    lp_engine_end_request (self->engine);
}

static s_end_t
s_serve (lp_session_t *self)
{
    zsock_t *pipe = zactor_sock (self->heart);
    //  Every socket in the poll set costs system calls per wake-up; the
    //  registration socket carries nothing after the handshake. The pipe
    //  comes first: zpoller_wait returns the first ready socket, and a
    //  SHUTDOWN or LOST from the heart must not wait behind queued work.
    zpoller_t *poller = zpoller_new (pipe, self->mux, self->task, NULL);
    if (!poller)
        return S_LOST;
    s_end_t end = S_STOP;
    while (!*self->stop) {
        void *which = zpoller_wait (poller, LP_ENGINE_POLL_MSEC);
        if (which == self->mux || which == self->task) {
            char problem [256];
            lp_msg_t *request = lp_wire_recv_request (self->wire, (zsock_t *) which,
                                                 problem, sizeof problem);
            if (request) {
                s_handle_request (self, request, (zsock_t *) which, problem);
                lp_msg_destroy (&request);
            }
        }
        else
        if (which == pipe) {
            char *command = zstr_recv (pipe);
            //  "LOST <ms of silence>"
            bool lost = command && strncmp (command, "LOST", 4) == 0;
            if (lost) {
                long silent = atol (command + 4);
                self->lost_since = zclock_mono () - (silent > 0? silent: 0);
            }
            bool shutdown = command && streq (command, "SHUTDOWN");
            zstr_free (&command);
            if (lost) {
                end = S_LOST;
                break;
            }
            if (shutdown) {
                end = S_SHUTDOWN;
                break;
            }
        }
    }
    zpoller_destroy (&poller);
    return end;
}

//  --------------------------------------------------------------------------

int
lp_session_run (lp_session_t *self, const volatile sig_atomic_t *stop)
{
    assert (self);
    assert (stop);
    self->stop = stop;
    lp_engine_set_output (self->engine, s_output, self);
    int backoff = LP_RECONNECT_MIN_MSEC;
    while (!*stop) {
        int rc = s_register (self);
        if (rc == 0) {
            self->lost_since = 0;
            backoff = LP_RECONNECT_MIN_MSEC;
            s_end_t end = s_serve (self);
            if (end != S_LOST) {
                zsys_info ("%s: exiting", end == S_SHUTDOWN? "shutdown requested": "signal");
                s_unregister (self);
                s_disconnect (self);
                lp_engine_set_output (self->engine, NULL, NULL);
                return 0;
            }
        }
        s_disconnect (self);
        if (*stop)
            break;
        if (s_lost_too_long (self)) {
            zsys_error ("no controller for %d ms (--lost-exit %d): exiting",
                        (int) (zclock_mono () - self->lost_since), (int) self->lost_exit);
            lp_engine_set_output (self->engine, NULL, NULL);
            return 1;
        }
        if (rc == 1) {                  //  new connection file: at once
            backoff = LP_RECONNECT_MIN_MSEC;
            continue;
        }
        int delay = backoff + (int) randombytes_uniform ((uint32_t) backoff / 2 + 1);
        zsys_info ("reconnecting in %d ms", delay);
        int64_t until = zclock_mono () + delay;
        while (!*stop && zclock_mono () < until && !s_lost_too_long (self)) {
            int64_t left = until - zclock_mono ();
            zclock_sleep (left < LP_ENGINE_POLL_MSEC? (int) left: LP_ENGINE_POLL_MSEC);
        }
        backoff = backoff * 2 > LP_RECONNECT_MAX_MSEC? LP_RECONNECT_MAX_MSEC: backoff * 2;
    }
    zsys_info ("signal: exiting");
    s_disconnect (self);
    lp_engine_set_output (self->engine, NULL, NULL);
    return 0;
}
