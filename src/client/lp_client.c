/*  =========================================================================
    lp_client - a connection to a luaparallel controller

    The client is single-threaded: it owns six sockets (registration,
    mux, control and task DEALERs, iopub and notification SUBs) and
    nothing runs behind the caller's back. Every wait (results, connect, ids,
    status, wait_for_engines) calls lp_client_poll with a deadline, which
    drains the sockets and dispatches each message:

      registration  reply to the one synchronous query in flight (status,
                    shutdown), matched by parent msg_id
      mux, control, reply -> routes[parent msg_id] -> lp_result slot
      task          (a task's reply also frees its in-flight place)
      iopub         stream -> routes[parent msg_id] -> slot stdout
      notification  engine_registered / _unregistered -> id cache;
                    controller_heartbeat (topic "controller") only counts
                    as a sign of life

    Lost controller: every message that verifies (signed with our key)
    on any socket is a sign that the controller lives (heard_at). While a caller waits, the poll
    wakes at least every lost_after/10 ms; when the controller has been
    quiet for lost_after/2 it is asked for its status on the registration
    channel (a probe, at most every lost_after/4), so a live controller
    that publishes no heartbeats still answers; after lost_after ms of
    silence the controller is lost: every pending slot of every result
    ends with ControllerLost, and requests fail at once (LP_ELOST) until
    something is heard again. Detection starts with the first message
    that verifies (connecting waits its own timeout). Silence is measured
    only while someone
    polls: a poll that starts after a long pause (the caller did other
    work) starts a new listening period, so an idle client is never
    declared lost for not having listened.

    Restarted controller (lpcontroller --restore: same ports, same key):
    our sockets reconnect by themselves (ZeroMQ), and the first
    notification or query answer signed by a hub of another session than
    the one that answered before (connecting is a query) says the
    controller is a new one. Nothing in flight will be answered by the old one, so
    the client asks the new one (result_request on the registration
    channel) for every msg_id it still waits for: the task store sends
    each stored reply (a request the dead controller left unfinished
    ended with ControllerRestarted), or the reply once it comes, or
    UnknownRequest for a request the dead controller never recorded.
    Duplicates find no pending slot and are dropped, so each request
    still ends once. This works while the controller is back within
    lost_after (docs/operations.md, "Restarting a controller").

    Event loops: lp_client_fd is an epoll set of the six sockets'
    ZMQ_FDs; a caller polls it and then calls lp_client_poll (0) until
    nothing is handled (docs/api.md, "Event loops").

    A library must not install signal handlers, so czmq's are switched
    off before the first socket. Results and views made from a client are
    kept in lists; destroying the client detaches them, so a result that
    outlives its client reports "client destroyed" and never blocks.
    =========================================================================
*/
#include "lp_client_private.h"
#include <stdatomic.h>
#include "lp_proto.h"
#include "lp_util.h"
#include "lp_msg.h"
#include "lp_wire.h"
#include "lp_conn.h"
#include <pthread.h>
#include <stdarg.h>
#include <sys/epoll.h>

#define LP_CLIENT_TAG           0x1b0c0001

struct _lp_client_t {
    uint32_t tag;                       //  LP_CLIENT_TAG while alive
    lp_conn_t *conn;                    //  the connection file
    lp_wire_t *wire;                    //  signing, decoding, replay guard
    zsock_t *registration;              //  DEALER: status, shutdown
    zsock_t *handshakes;                //  PAIR: registration's handshake events
                                        //  while connecting (secure cluster)
    zsock_t *mux;                       //  DEALER: direct requests
    zsock_t *control;                   //  DEALER: interrupt
    zsock_t *iopub;                     //  SUB: output streams
    zsock_t *notification;              //  SUB: engine (un)registered
    zsock_t *task;                      //  DEALER: load-balanced tasks
    char endpoint [256];                //  registration endpoint, for errors
    int *ids;                           //  cached engine ids, ascending
    size_t nids;                        //  number of cached ids
    size_t ids_cap;                     //  allocated ids
    zhashx_t *routes;                   //  msg_id -> lp_result_t *
    zlistx_t *results;                  //  live results (not owned)
    zlistx_t *views;                    //  live views (not owned)
    char sync_id [LP_ID_CHARS + 1];     //  msg_id of the query in flight
    lp_msg_t *sync_reply;               //  its reply, once here
    char error [1024];                  //  last error, "" when none
    int errcode;                        //  lp_err_t of the last error
    int lost_after;                     //  ms of silence = lost, <= 0 never
    int64_t heard_at;                   //  mono ms: last message received
    int64_t listen_from;                //  mono ms: this listening period began
    int64_t polled_at;                  //  mono ms: last poll ended
    int64_t probe_at;                   //  mono ms: last probe sent, 0 none
    bool lost;                          //  controller taken for lost
    bool heard_ever;                    //  connected: a message verified
    char lost_text [512];               //  "controller at ... lost: ..."
    char hub_session [LP_ID_CHARS + 1]; //  the controller's (its hub's
                                        //  session), "" until heard
    size_t task_inflight;               //  tasks sent, not yet answered
    zlistx_t *backlog;                  //  s_held_t: tasks not sent yet
    zhashx_t *held;                     //  msg_id -> backlog handle (abort)
    int epoll_fd;                       //  lp_client_fd: the six sockets'
                                        //  ZMQ_FDs in one epoll set, -1 none
};

//  A task held in the client until fewer than LP_CLIENT_TASK_WINDOW are
//  in flight. It is encoded (so errors show at once) and signed again with
//  a fresh date when it goes out: the controller refuses dates older than
//  its replay window, and a task may be held longer than that.
typedef struct {
    char msg_id [LP_ID_CHARS + 1];      //  its msg_id (routes key)
    zmsg_t *zmsg;                       //  encoded, as it will be sent
    lp_value_t *header;                 //  its header, for the new date
} s_held_t;

static void
s_held_destroy (s_held_t **self_p)
{
    s_held_t *self = *self_p;
    if (self) {
        zmsg_destroy (&self->zmsg);
        lp_value_destroy (&self->header);
        free (self);
        *self_p = NULL;
    }
}

static void
s_held_free (void **item)
{
    s_held_destroy ((s_held_t **) item);
}

static _Thread_local char s_last_error [1024];
static _Thread_local int s_last_errcode;
static pthread_once_t s_handler_once = PTHREAD_ONCE_INIT;

//  --------------------------------------------------------------------------
//  czmq would otherwise catch SIGINT/SIGTERM in the user's program.

static void
s_disable_handlers (void)
{
    zsys_handler_set (NULL);
}

void
lp_set_last_error (const char *format, ...)
{
    va_list args;
    va_start (args, format);
    vsnprintf (s_last_error, sizeof s_last_error, format, args);
    va_end (args);
    s_last_errcode = strstr (s_last_error, "client destroyed")? LP_ECLOSED:
                     strstr (s_last_error, "out of memory")? LP_ENOMEM: LP_EINVAL;
}

const char *
lp_strerror (int err)
{
    switch (err) {
        case LP_OK:       return "no error";
        case LP_ETIMEOUT: return "timed out";
        case LP_ELOST:    return "controller lost";
        case LP_ECLOSED:  return "client closed";
        case LP_EINVAL:   return "invalid argument";
        case LP_ENOMEM:   return "out of memory";
        case LP_EREMOTE:  return "remote error";
        case LP_ETOOBIG:  return "request exceeds the frame cap";
        case LP_EINTR:    return "interrupted";
        default:          return "unknown error";
    }
}

const char *
lp_last_error (void)
{
    return s_last_error;
}

static void
s_vfail (lp_client_t *self, int code, const char *format, va_list args)
{
    char text [1024];
    vsnprintf (text, sizeof text, format, args);
    if (self) {
        snprintf (self->error, sizeof self->error, "%s", text);
        self->errcode = code;
    }
    snprintf (s_last_error, sizeof s_last_error, "%s", text);
    s_last_errcode = code;
}

void
lp_client_fail (lp_client_t *self, int code, const char *format, ...)
{
    va_list args;
    va_start (args, format);
    s_vfail (self, code, format, args);
    va_end (args);
}

void
lp_client_set_error (lp_client_t *self, const char *format, ...)
{
    //  Callers that know better use lp_client_fail; the rest are either
    //  out of memory or a bad argument.
    int code = streq (format, "out of memory")? LP_ENOMEM: LP_EINVAL;
    va_list args;
    va_start (args, format);
    s_vfail (self, code, format, args);
    va_end (args);
}

void
lp_client_clear_error (lp_client_t *self)
{
    assert (self);
    self->error [0] = 0;
    self->errcode = LP_OK;
}

const char *
lp_client_error (lp_client_t *self)
{
    return self? self->error: s_last_error;
}

int
lp_client_errcode (lp_client_t *self)
{
    return self? self->errcode: s_last_errcode;
}

void
lp_client_set_lost_after (lp_client_t *self, int lost_after_ms)
{
    assert (self);
    self->lost_after = lost_after_ms > 0? lost_after_ms: 0;
    if (!self->lost_after)
        self->lost = false;
}

bool
lp_client_lost (lp_client_t *self)
{
    assert (self);
    return self->lost;
}

//  --------------------------------------------------------------------------
//  Id cache

static int
s_int_cmp (const void *a, const void *b)
{
    int x = *(const int *) a, y = *(const int *) b;
    return (x > y) - (x < y);
}

static int
s_ids_reserve (lp_client_t *self, size_t n)
{
    if (n <= self->ids_cap)
        return 0;
    size_t cap = self->ids_cap? self->ids_cap * 2: 16;
    while (cap < n)
        cap *= 2;
    int *ids = (int *) realloc (self->ids, cap * sizeof (int));
    if (!ids)
        return -1;
    self->ids = ids;
    self->ids_cap = cap;
    return 0;
}

static void
s_ids_add (lp_client_t *self, int id)
{
    for (size_t i = 0; i < self->nids; i++)
        if (self->ids [i] == id)
            return;
    if (s_ids_reserve (self, self->nids + 1))
        return;
    self->ids [self->nids++] = id;
    if (self->nids > 1)
        qsort (self->ids, self->nids, sizeof (int), s_int_cmp);
}

static void
s_ids_remove (lp_client_t *self, int id)
{
    for (size_t i = 0; i < self->nids; i++)
        if (self->ids [i] == id) {
            memmove (self->ids + i, self->ids + i + 1,
                     (self->nids - i - 1) * sizeof (int));
            self->nids--;
            return;
        }
}

//  Replaces the cache with the ids of a status_reply's engines array.
static void
s_ids_from_engines (lp_client_t *self, const lp_value_t *engines)
{
    self->nids = 0;
    if (!engines || lp_value_type (engines) != LP_ARRAY)
        return;
    size_t n = lp_value_len (engines);
    if (s_ids_reserve (self, n))
        return;
    for (size_t i = 0; i < n; i++) {
        const lp_value_t *engine = lp_value_at (engines, i);
        if (!engine || lp_value_type (engine) != LP_MAP)
            continue;
        const lp_value_t *id = lp_value_get (engine, "id");
        if (id && lp_value_type (id) == LP_INT)
            self->ids [self->nids++] = (int) lp_value_as_int (id);
    }
    if (self->nids > 1)
        qsort (self->ids, self->nids, sizeof (int), s_int_cmp);
}

int
lp_client_cached_ids (lp_client_t *self, const int **ids_p)
{
    assert (self);
    *ids_p = self->ids;
    return (int) self->nids;
}

//  --------------------------------------------------------------------------
//  Dispatch of one incoming message

//  After a controller restart: asks the new controller for the replies
//  of every request we still wait for (sent ones; held tasks go later),
//  in result_requests of at most LP_CLIENT_RECOVER_IDS msg_ids.
static void
s_recover (lp_client_t *self)
{
    self->task_inflight = 0;            //  the old controller answers none
    lp_value_t *ids = NULL;
    size_t asked = 0;
    lp_result_t *result = (lp_result_t *) zhashx_first (self->routes);
    while (true) {
        const char *msg_id = result? (const char *) zhashx_cursor (self->routes): NULL;
        if (msg_id && !zhashx_lookup (self->held, msg_id)
        &&  lp_result_waits_for (result, msg_id)) {
            if (!ids)
                ids = lp_value_array ();
            if (ids && lp_value_append (ids, lp_value_string (msg_id)) == 0)
                asked++;
        }
        if (ids && (!msg_id || lp_value_len (ids) >= LP_CLIENT_RECOVER_IDS)) {
            lp_msg_t *msg = lp_msg_new (LP_RESULT_REQUEST);
            lp_value_t *content = lp_value_map ();
            if (msg && content && lp_value_set (content, "msg_ids", ids) == 0) {
                ids = NULL;
                lp_msg_set_content (msg, content);
                content = NULL;
                char sent [LP_ID_CHARS + 1];
                lp_client_send (self, LP_CHANNEL_REGISTRATION, &msg, NULL, sent);
            }
            lp_msg_destroy (&msg);
            lp_value_destroy (&content);
            lp_value_destroy (&ids);
        }
        if (!msg_id)
            break;
        result = (lp_result_t *) zhashx_next (self->routes);
    }
    zsys_info ("lp_client: the controller at %s restarted; asked it for %zu pending "
               "request%s", self->endpoint, asked, asked == 1? "": "s");
}

//  A notification from the hub: a session other than the one we knew is
//  a restarted controller.
static void
s_check_restart (lp_client_t *self, lp_msg_t *msg)
{
    const lp_value_t *value = lp_value_get (lp_msg_header (msg), LP_HDR_SESSION);
    const char *session = value && lp_value_type (value) == LP_STRING
                        ? lp_value_as_string (value, NULL): NULL;
    if (!session || !*session || streq (session, self->hub_session))
        return;
    bool restarted = *self->hub_session != 0;
    snprintf (self->hub_session, sizeof self->hub_session, "%s", session);
    if (restarted)
        s_recover (self);
}

static void
s_dispatch (lp_client_t *self, zsock_t *sock, lp_msg_t *msg)
{
    const char *parent_id = lp_msg_parent_id (msg);
    if (sock == self->task && self->task_inflight > 0
    &&  !streq (lp_msg_type (msg), LP_ABORT_REPLY))
        self->task_inflight--;          //  every task ends with one reply
    if (sock == self->mux || sock == self->control || sock == self->task) {
        lp_result_t *result = parent_id?
            (lp_result_t *) zhashx_lookup (self->routes, parent_id): NULL;
        if (result)
            lp_result_handle_reply (result, msg);
    }
    else
    if (sock == self->iopub) {
        lp_result_t *result = parent_id?
            (lp_result_t *) zhashx_lookup (self->routes, parent_id): NULL;
        if (result && streq (lp_msg_type (msg), LP_STREAM))
            lp_result_handle_stream (result, msg);
    }
    else
    if (sock == self->notification) {
        s_check_restart (self, msg);
        lp_value_t *content = lp_msg_content (msg);
        const lp_value_t *id = lp_value_get (content, "id");
        if (id && lp_value_type (id) == LP_INT) {
            if (streq (lp_msg_type (msg), LP_ENGINE_REGISTERED))
                s_ids_add (self, (int) lp_value_as_int (id));
            else
            if (streq (lp_msg_type (msg), LP_ENGINE_UNREGISTERED))
                s_ids_remove (self, (int) lp_value_as_int (id));
        }
    }
    else
    if (sock == self->registration) {
        //  The hub's own answers (queries, probes) carry its session;
        //  replies fetched from the task store carry their engine's.
        bool query = parent_id && *self->sync_id && streq (parent_id, self->sync_id);
        if (query || streq (lp_msg_type (msg), LP_STATUS_REPLY))
            s_check_restart (self, msg);
        if (query) {
            lp_msg_destroy (&self->sync_reply);
            self->sync_reply = msg;
            self->sync_id [0] = 0;
            return;             //  kept
        }
        //  Replies fetched from the task store (lp_client_fetch)
        lp_result_t *result = parent_id?
            (lp_result_t *) zhashx_lookup (self->routes, parent_id): NULL;
        if (result)
            lp_result_handle_reply (result, msg);
    }
    lp_msg_destroy (&msg);
}

//  Handles what is waiting on one socket, without blocking: every socket
//  has a receive timeout of 0, so a receive on an empty socket returns at
//  once (and one with messages waiting makes no system call).
static int
s_drain_socket (lp_client_t *self, zsock_t *sock)
{
    int count = 0;
    zmsg_t *zmsg;
    while (count < LP_CLIENT_DRAIN_MAX && (zmsg = zmsg_recv (sock))) {
        count++;
        lp_msg_t *msg = lp_wire_decode (self->wire, &zmsg);
        if (msg) {
            //  A message signed with our key is a sign of life. What does
            //  not verify is not: after the controller dies, another
            //  cluster may bind its ports and our sockets reconnect there.
            self->heard_at = zclock_mono ();
            self->lost = false;
            self->heard_ever = true;
            s_dispatch (self, sock, msg);
        }
        //  else dropped: counted and logged by lp_wire
    }
    return count;
}

//  Asks the hub for its status without waiting for the answer: the
//  answer (or anything else) proves the controller lives. Never blocks.
static void
s_probe (lp_client_t *self, int64_t now)
{
    self->probe_at = now;
    lp_msg_t *msg = lp_msg_new (LP_STATUS_REQUEST);
    lp_value_t *content = lp_value_map ();
    if (!msg || !content) {
        lp_msg_destroy (&msg);
        lp_value_destroy (&content);
        return;
    }
    lp_msg_set_content (msg, content);
    zmsg_t *zmsg = lp_wire_encode (self->wire, &msg, NULL, 0);
    if (!zmsg)
        return;
    zsock_set_sndtimeo (self->registration, 0);
    if (zmsg_send (&zmsg, self->registration))
        zmsg_destroy (&zmsg);       //  queue full: the controller is not reading
    zsock_set_sndtimeo (self->registration, LP_CLIENT_SNDTIMEO_MSEC);
}

//  Declares the controller lost: every pending slot ends.
static void
s_lose (lp_client_t *self, int64_t silent)
{
    self->lost = true;
    snprintf (self->lost_text, sizeof self->lost_text,
              "controller at %s lost: nothing heard for %d ms",
              self->endpoint, (int) silent);
    //  Held tasks never left: their slots end below like the others.
    zhashx_purge (self->held);
    zlistx_purge (self->backlog);
    self->task_inflight = 0;
    lp_result_t *result = (lp_result_t *) zlistx_first (self->results);
    while (result) {
        lp_result_lose (result, self->lost_text);
        result = (lp_result_t *) zlistx_next (self->results);
    }
    lp_client_fail (self, LP_ELOST, "%s", self->lost_text);
}

//  Milliseconds the controller has been quiet while we listened.
static int64_t
s_silence (lp_client_t *self, int64_t now)
{
    int64_t since = self->heard_at > self->listen_from? self->heard_at: self->listen_from;
    return now - since;
}

//  Probes and declares the controller lost as its silence requires.
static void
s_check_lost (lp_client_t *self)
{
    //  Before the first answer (connecting) the caller's timeout rules.
    if (self->lost_after <= 0 || !self->heard_ever)
        return;
    int64_t now = zclock_mono ();
    int64_t silent = s_silence (self, now);
    if (silent >= self->lost_after) {
        if (!self->lost)
            s_lose (self, silent);
        else
        if (now - self->probe_at >= self->lost_after / 4)
            s_probe (self, now);    //  keeps asking: a restarted controller answers
    }
    else
    if (silent >= self->lost_after / 2
    &&  now - self->probe_at >= self->lost_after / 4)
        s_probe (self, now);
}

//  Sends held tasks while fewer than LP_CLIENT_TASK_WINDOW are in flight,
//  each with a fresh date and signature; never blocks (a full socket
//  leaves the rest for the next poll).
static void
s_flush_backlog (lp_client_t *self)
{
    s_held_t *held;
    while (self->task_inflight < LP_CLIENT_TASK_WINDOW && !self->lost
    &&     (held = (s_held_t *) zlistx_first (self->backlog))) {
        char date [32];
        lp_util_iso_now (date);
        if (lp_value_set (held->header, LP_HDR_DATE, lp_value_string (date))
        ||  lp_wire_replace (self->wire, held->zmsg, 0, LP_FRAME_HEADER, held->header))
            return;                     //  out of memory: try again later
        zsock_set_sndtimeo (self->task, 0);
        int rc = zmsg_send (&held->zmsg, self->task);
        zsock_set_sndtimeo (self->task, LP_CLIENT_SNDTIMEO_MSEC);
        if (rc != 0)
            return;                     //  kept (zmsg_send left it to us)
        self->task_inflight++;
        zhashx_delete (self->held, held->msg_id);
        zlistx_delete (self->backlog, zlistx_cursor (self->backlog));
    }
}

bool
lp_client_unhold (lp_client_t *self, const char *msg_id)
{
    assert (self);
    void *handle = zhashx_lookup (self->held, msg_id);
    if (!handle)
        return false;
    zhashx_delete (self->held, msg_id);
    zlistx_delete (self->backlog, handle);
    return true;
}

int
lp_client_poll (lp_client_t *self, int timeout_ms)
{
    assert (self);
    lp_client_clear_error (self);
    zsock_t *socks [] = { self->mux, self->task, self->iopub, self->control,
                          self->registration, self->notification };
    zmq_pollitem_t items [6];
    for (int i = 0; i < 6; i++)
        items [i] = (zmq_pollitem_t) { zsock_resolve (socks [i]), 0, ZMQ_POLLIN, 0 };
    if (timeout_ms < 0)
        timeout_ms = 0;
    int64_t now = zclock_mono ();
    if (self->lost_after > 0) {
        //  A poll after a pause starts a new listening period.
        int gap = self->lost_after / 2;
        if (now - self->polled_at > gap)
            self->listen_from = now;
        //  Wake up often enough to probe and to notice a lost controller.
        int tick = self->lost_after / 10;
        if (tick < LP_CLIENT_TICK_MIN_MSEC)
            tick = LP_CLIENT_TICK_MIN_MSEC;
        if (timeout_ms > tick)
            timeout_ms = tick;
    }
    //  zmq_poll looks at every socket's ZMQ_EVENTS before it sleeps, so
    //  messages already queued are seen without waiting.
    int rc = zmq_poll (items, 6, timeout_ms);
    if (rc == -1) {
        self->polled_at = zclock_mono ();
        if (errno == EINTR)
            lp_client_fail (self, LP_EINTR, "interrupted");
        else
            lp_client_fail (self, LP_EINVAL, "poll failed: %s", zmq_strerror (errno));
        return -1;
    }
    int handled = 0;
    for (int i = 0; i < 6; i++)
        if (items [i].revents & ZMQ_POLLIN)
            handled += s_drain_socket (self, socks [i]);
    s_check_lost (self);
    s_flush_backlog (self);
    self->polled_at = zclock_mono ();
    return handled;
}

//  One descriptor for an event loop: an epoll set of the sockets'
//  ZMQ_FDs, level-triggered inside, so it is readable while any of them
//  is. Each ZMQ_FD signals only that a socket's state may have changed
//  (edge-triggered, and cleared by any zmq call on it, a send included):
//  hence the rule of docs/api.md, poll until nothing is handled.
int
lp_client_fd (lp_client_t *self)
{
    assert (self);
    if (self->epoll_fd >= 0)
        return self->epoll_fd;
    int fd = epoll_create1 (EPOLL_CLOEXEC);
    if (fd < 0) {
        lp_client_fail (self, errno == ENOMEM? LP_ENOMEM: LP_EINVAL,
                        "epoll_create1: %s", strerror (errno));
        return -1;
    }
    zsock_t *socks [] = { self->mux, self->task, self->iopub, self->control,
                          self->registration, self->notification };
    for (int i = 0; i < 6; i++) {
        struct epoll_event event = { .events = EPOLLIN, .data.u32 = (uint32_t) i };
        int zfd = zsock_fd (socks [i]);
        if (zfd < 0 || epoll_ctl (fd, EPOLL_CTL_ADD, zfd, &event) != 0) {
            lp_client_fail (self, errno == ENOMEM? LP_ENOMEM: LP_EINVAL,
                            "epoll_ctl: %s", strerror (errno));
            close (fd);
            return -1;
        }
    }
    self->epoll_fd = fd;
    return fd;
}

//  --------------------------------------------------------------------------
//  Sending

int
lp_client_send (lp_client_t *self, lp_channel_t channel, lp_msg_t **msg_p,
                lp_result_t *result, char msg_id [LP_ID_CHARS + 1])
{
    assert (self);
    assert (msg_p && *msg_p);
    lp_client_clear_error (self);
    snprintf (msg_id, LP_ID_CHARS + 1, "%s", lp_msg_id (*msg_p));
    if (self->lost) {
        lp_client_poll (self, 0);       //  heard again?
        if (self->lost) {
            lp_msg_destroy (msg_p);
            lp_client_fail (self, LP_ELOST, "%s", self->lost_text);
            return -1;
        }
    }
    zsock_t *sock = channel == LP_CHANNEL_MUX? self->mux:
                    channel == LP_CHANNEL_CONTROL? self->control:
                    channel == LP_CHANNEL_TASK? self->task:
                    self->registration;
    //  A task beyond the window is held (see s_held_t); so is every task
    //  after a held one, to keep their order. Aborts always go at once.
    bool is_task = channel == LP_CHANNEL_TASK && result
                && !streq (lp_msg_type (*msg_p), LP_ABORT_REQUEST);
    bool hold = is_task
             && (self->task_inflight >= LP_CLIENT_TASK_WINDOW
                 || zlistx_size (self->backlog) > 0);
    lp_value_t *header = hold? lp_value_dup (lp_msg_header (*msg_p)): NULL;
    if (hold && !header) {
        lp_msg_destroy (msg_p);
        lp_client_fail (self, LP_ENOMEM, "cannot send: out of memory");
        return -1;
    }
    char err [256] = "";
    //  A message sent at once leaves from its values' own buffers
    //  (zero-copy); a held one is kept as frames, to be re-signed later.
    zmsg_t *zmsg = NULL;
    lp_wire_out_t *out = NULL;
    if (hold)
        zmsg = lp_wire_encode (self->wire, msg_p, err, sizeof err);
    else
        out = lp_wire_encode_out (self->wire, msg_p, err, sizeof err);
    if (!zmsg && !out) {
        //  Values of any size travel in pieces; what the encoder refuses
        //  for the frame cap is a header over it or more buffers than a
        //  signature frame covers (lp_wire): the controller would drop it
        //  unanswered, so it fails here, as LP_ETOOBIG.
        lp_value_destroy (&header);
        int code = strstr (err, "out of memory")? LP_ENOMEM
                 : strstr (err, "MiB frame cap") || strstr (err, "MiB cap can cover")? LP_ETOOBIG
                 : LP_EINVAL;
        lp_client_fail (self, code, "cannot send: %s", *err? err: "encoding failed");
        return -1;
    }
    if (result && !zhashx_lookup (self->routes, msg_id))
        zhashx_insert (self->routes, msg_id, result);
    if (hold) {
        s_held_t *held = (s_held_t *) zmalloc (sizeof (s_held_t));
        if (held) {
            snprintf (held->msg_id, sizeof held->msg_id, "%s", msg_id);
            held->zmsg = zmsg;
            held->header = header;
        }
        void *handle = held? zlistx_add_end (self->backlog, held): NULL;
        if (handle && zhashx_insert (self->held, held->msg_id, handle)) {
            zlistx_detach (self->backlog, handle);
            handle = NULL;
        }
        if (!handle) {
            if (held) {
                held->zmsg = NULL;      //  both destroyed below
                held->header = NULL;
            }
            s_held_destroy (&held);
            zmsg_destroy (&zmsg);
            lp_value_destroy (&header);
            zhashx_delete (self->routes, msg_id);
            lp_client_fail (self, LP_ENOMEM, "cannot send: out of memory");
            return -1;
        }
        s_flush_backlog (self);
        return 0;
    }
    if (lp_wire_out_send (&out, sock)) {
        int error = errno;
        if (result)
            zhashx_delete (self->routes, msg_id);
        if (error == EAGAIN)
            lp_client_fail (self, LP_ETIMEOUT, "controller not accepting messages at %s "
                            "(send blocked for %d ms)", self->endpoint,
                            LP_CLIENT_SNDTIMEO_MSEC);
        else
            lp_client_fail (self, LP_EINVAL, "send failed: %s", zmq_strerror (error));
        return -1;
    }
    if (is_task)
        self->task_inflight++;
    return 0;
}

void
lp_client_unroute (lp_client_t *self, const char *msg_id, lp_result_t *result)
{
    assert (self);
    if (zhashx_lookup (self->routes, msg_id) == result)
        zhashx_delete (self->routes, msg_id);
}

void *
lp_client_track_result (lp_client_t *self, lp_result_t *result)
{
    assert (self);
    return zlistx_add_end (self->results, result);
}

void
lp_client_forget_result (lp_client_t *self, lp_result_t *result, void *handle)
{
    assert (self);
    (void) result;
    if (handle)
        zlistx_delete (self->results, handle);
}

void *
lp_client_track_view (lp_client_t *self, lp_view_t *view)
{
    assert (self);
    return zlistx_add_end (self->views, view);
}

void
lp_client_forget_view (lp_client_t *self, void *handle)
{
    assert (self);
    if (handle)
        zlistx_delete (self->views, handle);
}

//  --------------------------------------------------------------------------
//  One synchronous query on the registration channel. Returns the reply
//  (caller destroys) or NULL with the error set.

static lp_msg_t *s_query_with (lp_client_t *self, const char *msg_type,
                               lp_value_t *content, int timeout_ms);

static lp_msg_t *
s_query (lp_client_t *self, const char *msg_type, int timeout_ms)
{
    return s_query_with (self, msg_type, lp_value_map (), timeout_ms);
}

//  The same with a content (taken).
static lp_msg_t *
s_query_with (lp_client_t *self, const char *msg_type, lp_value_t *content, int timeout_ms)
{
    lp_msg_t *msg = content? lp_msg_new (msg_type): NULL;
    if (!msg) {
        lp_value_destroy (&content);
        lp_client_set_error (self, "out of memory");
        return NULL;
    }
    lp_msg_set_content (msg, content);
    char msg_id [LP_ID_CHARS + 1];
    if (lp_client_send (self, LP_CHANNEL_REGISTRATION, &msg, NULL, msg_id))
        return NULL;
    snprintf (self->sync_id, sizeof self->sync_id, "%s", msg_id);
    lp_msg_destroy (&self->sync_reply);

    int64_t deadline = zclock_mono () + timeout_ms;
    int64_t start = zclock_mono ();
    while (!self->sync_reply && !self->lost) {
        int64_t left = deadline - zclock_mono ();
        if (left <= 0)
            break;
        if (lp_client_poll (self, (int) left) == -1)
            break;
    }
    lp_msg_t *reply = self->sync_reply;
    self->sync_reply = NULL;
    self->sync_id [0] = 0;
    if (!reply) {
        if (self->lost)
            lp_client_fail (self, LP_ELOST, "%s", self->lost_text);
        else
        if (self->errcode != LP_EINTR || zclock_mono () - start >= timeout_ms)
            lp_client_fail (self, LP_ETIMEOUT, "controller not answering at %s "
                            "(no reply in %d ms)", self->endpoint, timeout_ms);
        return NULL;
    }
    const char *status = lp_msg_get_string (reply, LP_CONTENT_STATUS);
    if (!status || !streq (status, LP_STATUS_OK)) {
        const char *evalue = lp_msg_get_string (reply, "evalue");
        lp_client_fail (self, LP_EREMOTE, "%s failed: %s", msg_type,
                        evalue? evalue: "controller answered with an error");
        lp_msg_destroy (&reply);
        return NULL;
    }
    return reply;
}

//  Refreshes the id cache; returns the engines array (caller destroys)
//  when engines_p is given. 0 / -1.
//  Status query; *engines_p gets the engines array, *whole_p the whole
//  reply content (either may be NULL).
static int
s_status_full (lp_client_t *self, int timeout_ms, lp_value_t **engines_p, lp_value_t **whole_p)
{
    lp_msg_t *reply = s_query (self, LP_STATUS_REQUEST, timeout_ms);
    if (!reply)
        return -1;
    const lp_value_t *engines = lp_value_get (lp_msg_content (reply), "engines");
    if (!engines || lp_value_type (engines) != LP_ARRAY) {
        lp_client_set_error (self, LP_STATUS_REPLY " without an engines array");
        lp_msg_destroy (&reply);
        return -1;
    }
    s_ids_from_engines (self, engines);
    if (whole_p) {
        *whole_p = lp_value_dup (lp_msg_content (reply));
        if (!*whole_p) {
            lp_client_set_error (self, "out of memory");
            lp_msg_destroy (&reply);
            return -1;
        }
    }
    if (engines_p) {
        *engines_p = lp_value_dup (engines);
        if (!*engines_p) {
            lp_client_set_error (self, "out of memory");
            lp_msg_destroy (&reply);
            return -1;
        }
    }
    lp_msg_destroy (&reply);
    return 0;
}

static int
s_status (lp_client_t *self, int timeout_ms, lp_value_t **engines_p)
{
    return s_status_full (self, timeout_ms, engines_p, NULL);
}

//  --------------------------------------------------------------------------
//  Connection

//  A secure cluster: watches the registration socket's CURVE handshake,
//  so that a refused key is told as such rather than as silence.
static void
s_watch_handshake (lp_client_t *self, zsock_t *sock)
{
    //  A new name for each client of the process (an address could be
    //  reused, and a monitor's inproc endpoint outlives it a while)
    static atomic_uint monitors;
    char endpoint [64];
    snprintf (endpoint, sizeof endpoint, "inproc://lp-client-handshake-%u",
              atomic_fetch_add (&monitors, 1));
    if (zmq_socket_monitor (zsock_resolve (sock), endpoint,
                            ZMQ_EVENT_HANDSHAKE_FAILED_AUTH
                          | ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL
                          | ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL) == 0) {
        self->handshakes = zsock_new (ZMQ_PAIR);
        if (self->handshakes && zsock_connect (self->handshakes, "%s", endpoint) != 0)
            zsock_destroy (&self->handshakes);
    }
}

//  The handshake events seen so far: 0 none, else the ZMQ_EVENT_* of the
//  last failure (and its value: the ZAP status code, or an errno).
static int
s_handshake_failure (lp_client_t *self, int *value_p)
{
    int failure = 0;
    while (self->handshakes && zsock_events (self->handshakes) & ZMQ_POLLIN) {
        zmsg_t *event = zmsg_recv (self->handshakes);
        zframe_t *head = event? zmsg_first (event): NULL;
        if (head && zframe_size (head) == 6) {
            uint16_t id;
            uint32_t value;
            memcpy (&id, zframe_data (head), 2);
            memcpy (&value, zframe_data (head) + 2, 4);
            failure = id;
            *value_p = (int) value;
        }
        zmsg_destroy (&event);
        if (!event)
            break;
    }
    return failure;
}

static void
s_unwatch_handshake (lp_client_t *self)
{
    if (self->handshakes) {
        zmq_socket_monitor (zsock_resolve (self->registration), NULL, 0);
        zsock_destroy (&self->handshakes);
    }
}

static zsock_t *
s_socket (lp_client_t *self, int type, const char *channel)
{
    const char *endpoint = lp_conn_endpoint (self->conn, channel);
    if (!endpoint) {
        lp_client_set_error (self, "connection file has no '%s' endpoint", channel);
        return NULL;
    }
    zsock_t *sock = zsock_new (type);
    if (!sock) {
        lp_client_set_error (self, "cannot create a socket for %s", channel);
        return NULL;
    }
    lp_wire_tune_socket (sock);
    lp_conn_apply_curve (self->conn, sock);     //  a secure cluster's keys
    if (streq (channel, "registration") && lp_conn_secure (self->conn))
        s_watch_handshake (self, sock);
    zsock_set_rcvtimeo (sock, 0);       //  see s_drain_socket
    if (type == ZMQ_SUB)
        zsock_set_subscribe (sock, "");
    else
        zsock_set_sndtimeo (sock, LP_CLIENT_SNDTIMEO_MSEC);
    if (zsock_connect (sock, "%s", endpoint)) {
        lp_client_set_error (self, "cannot connect %s to %s: %s", channel,
                             endpoint, zmq_strerror (zmq_errno ()));
        zsock_destroy (&sock);
        return NULL;
    }
    return sock;
}

lp_client_t *
lp_client_connect (const char *connection_file, int timeout_ms)
{
    char path [1024];
    if (connection_file)
        snprintf (path, sizeof path, "%s", connection_file);
    else {
        char dir [900];
        if (lp_util_profile_dir ("default", dir, sizeof dir)) {
            lp_set_last_error ("default profile path too long");
            return NULL;
        }
        snprintf (path, sizeof path, "%s/security/lp-client.json", dir);
    }
    if (timeout_ms <= 0)
        timeout_ms = LP_CONNECT_TIMEOUT_MSEC;

    char err [512] = "";
    lp_conn_t *conn = lp_conn_load (path, err, sizeof err);
    if (!conn) {
        lp_set_last_error ("%s", *err? err: path);
        return NULL;
    }
    const char *kind = lp_conn_kind (conn);
    if (kind && !streq (kind, "client")) {
        lp_set_last_error ("%s: a \"%s\" connection file, not a client one", path, kind);
        lp_conn_destroy (&conn);
        return NULL;
    }
    lp_client_t *self = (lp_client_t *) calloc (1, sizeof (lp_client_t));
    if (!self) {
        lp_conn_destroy (&conn);
        lp_set_last_error ("out of memory");
        return NULL;
    }
    self->tag = LP_CLIENT_TAG;
    self->epoll_fd = -1;
    self->conn = conn;
    self->lost_after = LP_CLIENT_LOST_AFTER_MSEC;
    const char *env = getenv ("LP_LOST_AFTER_MS");
    if (env && *env) {
        char *end = NULL;
        long value = strtol (env, &end, 10);
        if (end && *end == 0 && value >= 0 && value <= INT32_MAX)
            self->lost_after = (int) value;
    }
    self->heard_at = self->listen_from = self->polled_at = zclock_mono ();
    const char *reg = lp_conn_endpoint (conn, "registration");
    snprintf (self->endpoint, sizeof self->endpoint, "%s", reg? reg: "?");

    size_t key_len = 0;
    const uint8_t *key = lp_conn_key (conn, &key_len);
    self->wire = lp_wire_new (key, key_len, "client");
    self->routes = zhashx_new ();
    self->results = zlistx_new ();
    self->views = zlistx_new ();
    self->backlog = zlistx_new ();
    if (self->backlog)
        zlistx_set_destructor (self->backlog, s_held_free);
    self->held = zhashx_new ();
    if (!self->wire || !self->routes || !self->results || !self->views || !self->backlog
    ||  !self->held) {
        lp_client_set_error (self, "out of memory");
        lp_client_destroy (&self);
        return NULL;
    }
    pthread_once (&s_handler_once, s_disable_handlers);
    if (!(self->registration = s_socket (self, ZMQ_DEALER, "registration"))
    ||  !(self->mux = s_socket (self, ZMQ_DEALER, "mux"))
    ||  !(self->control = s_socket (self, ZMQ_DEALER, "control"))
    ||  !(self->iopub = s_socket (self, ZMQ_SUB, "iopub"))
    ||  !(self->notification = s_socket (self, ZMQ_SUB, "notification"))
    ||  !(self->task = s_socket (self, ZMQ_DEALER, "task"))) {
        lp_client_destroy (&self);
        return NULL;
    }
    if (s_status (self, timeout_ms, NULL)) {
        int value = 0;
        int failure = s_handshake_failure (self, &value);
        char text [2600] = "";
        if (failure == ZMQ_EVENT_HANDSHAKE_FAILED_AUTH)
            snprintf (text, sizeof text, "the controller at %s refused this client's CURVE key "
                      "(ZAP status %d): %s does not hold the keys of the cluster running there "
                      "(after `cluster.sh rekey`, use its new lp-client.json)",
                      self->endpoint, value, path);
        else
        if (failure)
            snprintf (text, sizeof text, "no CURVE handshake with the controller at %s (%s): "
                      "the controller there has another key than the one in %s, is not "
                      "secure, or no longer listens on that port (each start picks new "
                      "ports and rewrites the file)", self->endpoint,
                      failure == ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL? "protocol error"
                                                                    : zmq_strerror (value),
                      path);
        lp_client_destroy (&self);
        if (*text)
            lp_set_last_error ("%s", text);
        return NULL;
    }
    s_unwatch_handshake (self);
    return self;
}

void
lp_client_destroy (lp_client_t **self_p)
{
    assert (self_p);
    lp_client_t *self = *self_p;
    if (!self)
        return;
    assert (self->tag == LP_CLIENT_TAG);
    if (self->results) {
        lp_result_t *result = (lp_result_t *) zlistx_first (self->results);
        while (result) {
            lp_result_detach (result);
            result = (lp_result_t *) zlistx_next (self->results);
        }
        zlistx_destroy (&self->results);
    }
    if (self->views) {
        lp_view_t *view = (lp_view_t *) zlistx_first (self->views);
        while (view) {
            lp_view_detach (view);
            view = (lp_view_t *) zlistx_next (self->views);
        }
        zlistx_destroy (&self->views);
    }
    zhashx_destroy (&self->held);
    zlistx_destroy (&self->backlog);
    zhashx_destroy (&self->routes);
    s_unwatch_handshake (self);
    zsock_destroy (&self->registration);
    zsock_destroy (&self->mux);
    zsock_destroy (&self->control);
    zsock_destroy (&self->iopub);
    zsock_destroy (&self->notification);
    zsock_destroy (&self->task);
    if (self->epoll_fd >= 0)
        close (self->epoll_fd);
    lp_msg_destroy (&self->sync_reply);
    lp_wire_destroy (&self->wire);
    lp_conn_destroy (&self->conn);
    free (self->ids);
    self->tag = 0xDeadBeef;
    free (self);
    *self_p = NULL;
}

//  --------------------------------------------------------------------------
//  Views: the client makes them, lp_view.c holds what they do

lp_view_t *
lp_client_view (lp_client_t *self, const int *targets, int ntargets)
{
    assert (self);
    lp_client_clear_error (self);
    return lp_view_new (self, targets, ntargets, false);
}

lp_view_t *
lp_client_balanced (lp_client_t *self)
{
    assert (self);
    lp_client_clear_error (self);
    return lp_view_new (self, NULL, 0, true);
}

//  --------------------------------------------------------------------------
//  Queries

int
lp_client_ids (lp_client_t *self, int *ids, int max)
{
    assert (self);
    if (s_status (self, LP_CONNECT_TIMEOUT_MSEC, NULL))
        return -1;
    for (int i = 0; ids && i < max && i < (int) self->nids; i++)
        ids [i] = self->ids [i];
    return (int) self->nids;
}

lp_value_t *
lp_client_status (lp_client_t *self, int timeout_ms)
{
    assert (self);
    if (timeout_ms <= 0)
        timeout_ms = LP_CONNECT_TIMEOUT_MSEC;
    lp_value_t *engines = NULL;
    if (s_status (self, timeout_ms, &engines))
        return NULL;
    return engines;
}

lp_value_t *
lp_client_queue_status (lp_client_t *self, int timeout_ms)
{
    assert (self);
    if (timeout_ms <= 0)
        timeout_ms = LP_CONNECT_TIMEOUT_MSEC;
    lp_value_t *whole = NULL;
    if (s_status_full (self, timeout_ms, NULL, &whole))
        return NULL;
    return whole;
}

int
lp_client_wait_for_engines (lp_client_t *self, int n, int timeout_ms)
{
    assert (self);
    int64_t start = zclock_mono ();
    int64_t deadline = start + (timeout_ms < 0? 0: timeout_ms);
    int64_t next_status = start;
    while (true) {
        int64_t now = zclock_mono ();
        if (now >= next_status) {
            //  Notifications can be missed (a SUB joins late), so the
            //  status query is the truth; notifications only speed it up.
            int64_t left = deadline - now;
            if (s_status (self, (int) (left > 0? left: 1), NULL)) {
                if ((int) self->nids >= n)
                    return 0;
                return -1;
            }
            next_status = zclock_mono () + LP_CLIENT_RESTATUS_MSEC;
        }
        if ((int) self->nids >= n)
            return 0;
        if (self->lost) {
            lp_client_fail (self, LP_ELOST, "%s", self->lost_text);
            return -1;
        }
        now = zclock_mono ();
        if (now >= deadline) {
            lp_client_fail (self, LP_ETIMEOUT, "only %zu of %d engines registered after %d ms",
                            self->nids, n, timeout_ms);
            return -1;
        }
        int64_t slice = deadline - now;
        if (slice > LP_CLIENT_SLICE_MSEC)
            slice = LP_CLIENT_SLICE_MSEC;
        if (lp_client_poll (self, (int) slice) == -1)
            return -1;
    }
}

int
lp_client_shutdown_cluster (lp_client_t *self, int timeout_ms)
{
    assert (self);
    if (timeout_ms <= 0)
        timeout_ms = LP_CONNECT_TIMEOUT_MSEC;
    lp_msg_t *reply = s_query (self, LP_SHUTDOWN_REQUEST, timeout_ms);
    if (!reply)
        return -1;
    lp_msg_destroy (&reply);
    return 0;
}

//  The pid of engine id in a fresh status, 0 when it is not registered,
//  -1 on error (set).
static int64_t
s_engine_pid (lp_client_t *self, int id, int timeout_ms)
{
    lp_value_t *engines = NULL;
    if (s_status (self, timeout_ms, &engines))
        return -1;
    int64_t pid = 0;
    for (size_t i = 0; i < lp_value_len (engines); i++) {
        const lp_value_t *row = lp_value_at (engines, i);
        if (lp_value_as_int (lp_value_get (row, "id")) == id) {
            pid = lp_value_as_int (lp_value_get (row, "pid"));
            if (pid <= 0)
                pid = 1;                //  registered, pid unknown
            break;
        }
    }
    lp_value_destroy (&engines);
    return pid;
}

//  Waits until engine id is registered in a process other than old_pid
//  (gone: wanted false, until it is not registered at all). 0 / -1.
static int
s_engine_wait (lp_client_t *self, int id, int64_t old_pid, bool wanted, int64_t deadline,
               const char *what)
{
    while (true) {
        int64_t left = deadline - zclock_mono ();
        int64_t pid = s_engine_pid (self, id, (int) (left > 1? left: 1));
        if (pid < 0)
            return -1;
        if (wanted? pid > 0 && pid != old_pid: pid == 0)
            return 0;
        left = deadline - zclock_mono ();
        if (left <= 0) {
            lp_client_fail (self, LP_ETIMEOUT, "%s engine %d: not %s within the timeout",
                            what, id, wanted? "back": "gone");
            return -1;
        }
        //  Notifications come sooner than the next status
        if (lp_client_poll (self, (int) (left < LP_CLIENT_RESTATUS_MSEC? left:
                                                 LP_CLIENT_RESTATUS_MSEC)) == -1)
            return -1;
    }
}

int
lp_client_shutdown_engine (lp_client_t *self, int id, int timeout_ms)
{
    assert (self);
    if (id < 0) {
        lp_client_fail (self, LP_EINVAL, "shutdown: invalid engine id %d", id);
        return -1;
    }
    if (timeout_ms <= 0)
        timeout_ms = LP_CONNECT_TIMEOUT_MSEC;
    int64_t deadline = zclock_mono () + timeout_ms;
    lp_view_t *view = lp_client_view (self, &id, 1);
    lp_result_t *result = view? lp_view_control (view, LP_SHUTDOWN_REQUEST): NULL;
    lp_view_destroy (&view);
    if (!result)
        return -1;
    int rc = lp_result_wait (result, timeout_ms);
    if (rc == LP_OK && lp_result_failed (result) > 0) {
        lp_client_fail (self, LP_EREMOTE, "shutdown of engine %d: %s", id,
                        lp_result_error (result, 0));
        rc = -1;
    }
    lp_result_destroy (&result);
    if (rc != LP_OK)
        return -1;
    return s_engine_wait (self, id, 0, false, deadline, "shutdown of");
}

int
lp_client_restart_engine (lp_client_t *self, int id, int timeout_ms)
{
    assert (self);
    if (id < 0) {
        lp_client_fail (self, LP_EINVAL, "restart: invalid engine id %d", id);
        return -1;
    }
    if (timeout_ms <= 0)
        timeout_ms = LP_CONNECT_TIMEOUT_MSEC;
    int64_t deadline = zclock_mono () + timeout_ms;
    lp_value_t *content = lp_value_map ();
    if (content && lp_value_set (content, "id", lp_value_int (id)))
        lp_value_destroy (&content);
    lp_msg_t *reply = s_query_with (self, LP_RESTART_REQUEST, content, timeout_ms);
    if (!reply)
        return -1;
    int64_t old_pid = lp_msg_get_int (reply, "pid", 0);
    lp_msg_destroy (&reply);
    return s_engine_wait (self, id, old_pid, true, deadline, "restart of");
}

//  --------------------------------------------------------------------------
//  Task store (docs/api.md, "Task store"; docs/protocol.md, "Task store
//  queries")

//  {msg_ids = [msg_id]}
static lp_value_t *
s_ids_content (const char *msg_id)
{
    lp_value_t *content = lp_value_map ();
    lp_value_t *ids = lp_value_array ();
    if (!content || !ids || lp_value_append (ids, lp_value_string (msg_id))
    ||  lp_value_set (content, "msg_ids", ids)) {
        lp_value_destroy (&content);
        return NULL;
    }
    return content;
}

lp_result_t *
lp_client_fetch (lp_client_t *self, const char *msg_id, int timeout_ms)
{
    assert (self);
    if (!msg_id || !*msg_id || strlen (msg_id) > LP_ID_CHARS * 2) {
        lp_client_fail (self, LP_EINVAL, "fetch: no msg_id");
        return NULL;
    }
    lp_result_t *own = (lp_result_t *) zhashx_lookup (self->routes, msg_id);
    if (own && !lp_result_ready (own)) {
        lp_client_fail (self, LP_EINVAL, "fetch: %s is a pending request of this client: "
                        "wait on its own result", msg_id);
        return NULL;
    }
    if (timeout_ms <= 0)
        timeout_ms = LP_CONNECT_TIMEOUT_MSEC;
    //  1. What the store knows: the replies to expect (one per engine of
    //  a direct request, one for a task).
    lp_msg_t *reply = s_query_with (self, LP_FETCH_REQUEST, s_ids_content (msg_id), timeout_ms);
    if (!reply)
        return NULL;
    const lp_value_t *records = lp_value_get (lp_msg_content (reply), "records");
    const lp_value_t *record = records? lp_value_at (records, 0): NULL;
    const char *state = lp_wire_map_string (record, "state");
    const char *kind = lp_wire_map_string (record, "kind");
    const lp_value_t *engines = record? lp_value_get (record, "engines"): NULL;
    if (!state || streq (state, "unknown") || !engines || lp_value_type (engines) != LP_ARRAY) {
        lp_client_fail (self, LP_EINVAL, "fetch: the task store has no record of %s", msg_id);
        lp_msg_destroy (&reply);
        return NULL;
    }
    lp_result_t *result = lp_result_new (self, LP_COMBINE_EACH);
    bool task = kind && streq (kind, "task");
    for (size_t i = 0; result && i < lp_value_len (engines); i++) {
        int engine = (int) lp_value_as_int (lp_value_at (engines, i));
        if ((task? lp_result_add_task_slot (result, msg_id, ""):
                   lp_result_add_slot (result, msg_id, engine)) != 0)
            lp_result_destroy (&result);
    }
    if (result && lp_value_len (engines) == 0 && lp_result_add_slot (result, msg_id, -1) != 0)
        lp_result_destroy (&result);
    lp_msg_destroy (&reply);
    //  A result of this client that has ended gives its route over.
    if (result)
        zhashx_delete (self->routes, msg_id);
    if (!result || zhashx_insert (self->routes, msg_id, result) != 0) {
        lp_result_destroy (&result);
        lp_client_fail (self, LP_ENOMEM, "fetch: out of memory");
        return NULL;
    }
    //  2. The replies: at once when stored, else when the request ends.
    //  They come on the registration channel with the original request as
    //  parent, and are routed to the result like any reply.
    lp_msg_t *msg = lp_msg_new (LP_RESULT_REQUEST);
    lp_value_t *content = s_ids_content (msg_id);
    if (!msg || !content) {
        lp_msg_destroy (&msg);
        lp_value_destroy (&content);
        lp_result_destroy (&result);
        lp_client_fail (self, LP_ENOMEM, "fetch: out of memory");
        return NULL;
    }
    lp_msg_set_content (msg, content);
    char sent [LP_ID_CHARS + 1];
    if (lp_client_send (self, LP_CHANNEL_REGISTRATION, &msg, NULL, sent) != 0) {
        lp_result_destroy (&result);
        return NULL;
    }
    return result;
}

lp_value_t *
lp_client_history (lp_client_t *self, const lp_value_t *query, int timeout_ms)
{
    assert (self);
    if (timeout_ms <= 0)
        timeout_ms = LP_CONNECT_TIMEOUT_MSEC;
    if (query && lp_value_type (query) != LP_MAP) {
        lp_client_fail (self, LP_EINVAL, "history: the query must be a map");
        return NULL;
    }
    lp_value_t *content = query? lp_value_dup (query): lp_value_map ();
    lp_msg_t *reply = s_query_with (self, LP_HISTORY_REQUEST, content, timeout_ms);
    if (!reply)
        return NULL;
    lp_value_t *records = lp_value_take (lp_msg_content (reply), "records");
    lp_msg_destroy (&reply);
    if (!records || lp_value_type (records) != LP_ARRAY) {
        lp_value_destroy (&records);
        lp_client_fail (self, LP_EREMOTE, "%s without records", LP_HISTORY_REPLY);
        return NULL;
    }
    return records;
}

int64_t
lp_client_purge (lp_client_t *self, const char *before, int timeout_ms)
{
    assert (self);
    if (timeout_ms <= 0)
        timeout_ms = LP_CONNECT_TIMEOUT_MSEC;
    lp_value_t *content = lp_value_map ();
    if (content && before)
        lp_value_set (content, "before", lp_value_string (before));
    lp_msg_t *reply = s_query_with (self, LP_PURGE_REQUEST, content, timeout_ms);
    if (!reply)
        return -1;
    int64_t removed = lp_msg_get_int (reply, "removed", -1);
    lp_msg_destroy (&reply);
    if (removed < 0)
        lp_client_fail (self, LP_EREMOTE, "%s without a count", LP_PURGE_REPLY);
    return removed;
}

lp_result_t *
lp_client_resubmit (lp_client_t *self, const char *msg_id, int timeout_ms)
{
    assert (self);
    if (!msg_id || !*msg_id) {
        lp_client_fail (self, LP_EINVAL, "resubmit: no msg_id");
        return NULL;
    }
    if (timeout_ms <= 0)
        timeout_ms = LP_CONNECT_TIMEOUT_MSEC;
    lp_msg_t *reply = s_query_with (self, LP_RESUBMIT_REQUEST, s_ids_content (msg_id), timeout_ms);
    if (!reply)
        return NULL;
    const lp_value_t *ids = lp_value_get (lp_msg_content (reply), "msg_ids");
    const lp_value_t *fresh = ids? lp_value_at (ids, 0): NULL;
    char new_id [LP_ID_CHARS * 2 + 1] = "";
    if (fresh && lp_value_type (fresh) == LP_STRING)
        snprintf (new_id, sizeof new_id, "%s", lp_value_as_string (fresh, NULL));
    if (!*new_id) {
        const char *why = lp_wire_map_string (lp_value_get (lp_msg_content (reply), "errors"),
                                              msg_id);
        lp_client_fail (self, LP_EINVAL, "resubmit: %s", why? why: "refused");
        lp_msg_destroy (&reply);
        return NULL;
    }
    lp_msg_destroy (&reply);
    return lp_client_fetch (self, new_id, timeout_ms);
}
