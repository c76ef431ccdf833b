/*  =========================================================================
    lp_heart.c - the engine's heartbeat and control actor

    Runs on its own thread (a czmq zactor) so that pings and control
    requests are answered while the main thread is inside Lua:

        hb_ping  SUB    --"LPHB"+u64-->  answered at once on hb_pong DEALER
                                         with the same bytes + the process's
                                         RSS (lp_proto_pong_encode)
        control  DEALER --interrupt_request--> lp_engine_interrupt, reply
                        --abort_request------> lp_engine_abort per msg_id
                                               (marks the ones not running
                                               nor completed), abort_reply
                        --shutdown_request---> reply, interrupt, "SHUTDOWN"
        pipe     <--"LOST <ms silent>" when no ping came for 2 x max_misses
                    periods, or for 1.5 periods when the connection file
                    was rewritten meanwhile (a controller restarted with
                    --restore); "LOST" alone after an LPRE

    Control requests are received in two steps (lp_wire_decode_request), so one whose
    content does not decode still gets a ProtocolError reply. Every check
    period the heart also enforces the running request's time limit and
    watches for a request stuck inside one C call: asked to stop (time
    limit, interrupt) and still running LP_STUCK_GRACE_MSEC later, it ends
    the process with _exit (LP_EXIT_STUCK) -- the main thread cannot be
    stopped any other way, and the controller restarts local engines.
    The control DEALER reconnects by itself; hb sockets never do.

    The actor has its own lp_wire_t (one per thread). It sends the control
    engine_hello itself during setup, before it signals the creator, and
    reports setup failure through config->rc (zactor_new waits for the
    signal, so the creator sees it).
    =========================================================================
*/
#include "lp_heart.h"
#include "lp_session.h"
#include "lp_proto.h"
#include "lp_msg.h"
#include "lp_wire.h"
#include <inttypes.h>
#include <unistd.h>


typedef struct {
    zsock_t *pipe;                      //  to the main thread
    zsock_t *sub;                       //  hb_ping
    zsock_t *pong;                      //  hb_pong
    zsock_t *control;                   //  control DEALER
    zpoller_t *poller;                  //  all of the above
    lp_wire_t *wire;                    //  signing for control
    lp_engine_t *engine;                //  to interrupt
    const volatile sig_atomic_t *stop;  //  signal flag of the process
    bool stop_seen;                     //  interrupted once for stop
    int id;                             //  engine id
    int heartbeat_msec;                 //  ping period
    int max_misses;                     //  misses before lost
    int64_t last_ping;                  //  zclock_mono of the last ping
    char *conn_path;                    //  the connection file, NULL if unknown
    ino_t conn_ino;                     //  its version in use
    struct timespec conn_mtime;
    int64_t conn_checked;               //  zclock_mono of the last look at it
    bool lost;                          //  "LOST" sent
    bool terminated;                    //  $TERM received
} self_t;

//  True when the connection file is another version than ours (looked
//  at once per heartbeat period at most)
static bool
s_conn_rewritten (self_t *self)
{
    int64_t now = zclock_mono ();
    if (!self->conn_path || now - self->conn_checked < self->heartbeat_msec)
        return false;
    self->conn_checked = now;
    struct stat st;
    if (stat (self->conn_path, &st) != 0)
        return false;
    return st.st_ino != self->conn_ino
        || st.st_mtim.tv_sec != self->conn_mtime.tv_sec
        || st.st_mtim.tv_nsec != self->conn_mtime.tv_nsec;
}

static void
s_self_destroy (self_t **self_p)
{
    self_t *self = *self_p;
    if (self) {
        zpoller_destroy (&self->poller);
        zsock_destroy (&self->sub);
        zsock_destroy (&self->pong);
        zsock_destroy (&self->control);
        lp_wire_destroy (&self->wire);
        free (self->conn_path);
        free (self);
        *self_p = NULL;
    }
}

//  reconnect: the control channel re-opens by itself, the heartbeat
//  socket never does (see lp_session.c)
static zsock_t *
s_dealer (lp_conn_t *conn, const char *endpoint, const char *uuid, bool reconnect)
{
    zsock_t *sock = zsock_new (ZMQ_DEALER);
    if (!sock)
        return NULL;
    zsock_set_identity (sock, uuid);
    lp_wire_tune_socket (sock);
    if (conn)
        lp_conn_apply_curve (conn, sock);
    if (reconnect) {
        zsock_set_reconnect_ivl (sock, LP_ENGINE_RECONNECT_IVL_MSEC);
        zsock_set_reconnect_ivl_max (sock, LP_ENGINE_RECONNECT_IVL_MAX_MSEC);
    }
    else
        zsock_set_reconnect_ivl (sock, -1);
    zsock_set_sndtimeo (sock, LP_ENGINE_SEND_TIMEOUT_MSEC);
    if (zsock_connect (sock, "%s", endpoint)) {
        zsys_error ("cannot connect to %s", endpoint);
        zsock_destroy (&sock);
    }
    return sock;
}

static self_t *
s_self_new (zsock_t *pipe, lp_heart_config_t *config)
{
    self_t *self = (self_t *) calloc (1, sizeof (self_t));
    if (!self)
        return NULL;
    self->pipe = pipe;
    self->engine = config->engine;
    self->stop = config->stop;
    self->id = config->id;
    self->heartbeat_msec = config->heartbeat_msec > 0? config->heartbeat_msec: LP_HEARTBEAT_MSEC;
    self->max_misses = config->max_misses > 0? config->max_misses: LP_HEARTBEAT_MAX_MISSES;
    self->last_ping = zclock_mono ();
    self->conn_path = config->conn_path? strdup (config->conn_path): NULL;
    self->conn_ino = config->conn_ino;
    self->conn_mtime = config->conn_mtime;
    self->wire = lp_wire_new (config->key, config->key_len, "engine/control");
    self->sub = zsock_new (ZMQ_SUB);
    if (self->sub) {
        lp_wire_tune_socket (self->sub);
        if (config->conn)
            lp_conn_apply_curve (config->conn, self->sub);
        zsock_set_reconnect_ivl (self->sub, -1);
        zsock_set_subscribe (self->sub, "");
        if (zsock_connect (self->sub, "%s", config->hb_ping)) {
            zsys_error ("cannot connect to %s", config->hb_ping);
            zsock_destroy (&self->sub);
        }
    }
    self->pong = s_dealer (config->conn, config->hb_pong, config->uuid, false);
    self->control = s_dealer (config->conn, config->control, config->uuid, true);
    if (self->wire && self->sub && self->pong && self->control)
        self->poller = zpoller_new (pipe, self->sub, self->control, self->pong, NULL);
    if (!self->poller) {
        s_self_destroy (&self);
        return NULL;
    }
    return self;
}

//  abort_request {msg_ids}: marks each id not running nor completed
static lp_value_t *
s_abort (self_t *self, lp_msg_t *request)
{
    const lp_value_t *ids = lp_value_get (lp_msg_content (request), "msg_ids");
    if (!ids || lp_value_type (ids) != LP_ARRAY)
        return lp_engine_error_content (LP_ENAME_PROTOCOL,
                                        LP_ABORT_REQUEST ": missing or mistyped field 'msg_ids'", "");
    lp_value_t *aborted = lp_value_array ();
    lp_value_t *not_aborted = lp_value_array ();
    lp_value_t *content = lp_value_map ();
    if (!aborted || !not_aborted || !content)
        goto nomem;
    size_t count = lp_value_len (ids);
    for (size_t i = 0; i < count; i++) {
        const lp_value_t *id = lp_value_at (ids, i);
        const char *text = lp_value_as_string (id, NULL);
        if (lp_value_type (id) != LP_STRING || !text) {
            lp_value_destroy (&aborted);
            lp_value_destroy (&not_aborted);
            lp_value_destroy (&content);
            return lp_engine_error_content (LP_ENAME_PROTOCOL,
                                            LP_ABORT_REQUEST ": msg_ids must be strings", "");
        }
        int rc = lp_engine_abort (self->engine, text);
        if (lp_value_append (rc == 1? aborted: not_aborted, lp_value_string (text)))
            goto nomem;
    }
    zsys_info (LP_ABORT_REQUEST ": %zu aborted, %zu not (running or done)",
               lp_value_len (aborted), lp_value_len (not_aborted));
    if (lp_value_set (content, LP_CONTENT_STATUS, lp_value_string (LP_STATUS_OK)))
        goto nomem;
    if (lp_value_set (content, "aborted", aborted)) {
        aborted = NULL;
        goto nomem;
    }
    aborted = NULL;
    if (lp_value_set (content, "not_aborted", not_aborted)) {
        not_aborted = NULL;
        goto nomem;
    }
    return content;
nomem:
    lp_value_destroy (&aborted);
    lp_value_destroy (&not_aborted);
    lp_value_destroy (&content);
    return NULL;
}

static void
s_handle_control (self_t *self)
{
    char problem [256];
    lp_msg_t *request = lp_wire_recv_request (self->wire, self->control, problem, sizeof problem);
    if (!request)
        return;
    const char *type = lp_msg_type (request);
    char reply_buf [80];
    const char *reply_type = lp_proto_reply_type (type, reply_buf, sizeof reply_buf);
    lp_value_t *content = NULL;
    bool shutdown = false;
    if (*problem) {
        char evalue [400];
        snprintf (evalue, sizeof evalue, "%.64s: %.255s", type? type: "", problem);
        content = lp_engine_error_content (LP_ENAME_PROTOCOL, evalue, "");
        zsys_warning ("control: %s", evalue);
    }
    else
    if (type && streq (type, LP_INTERRUPT_REQUEST)) {
        bool interrupted = lp_engine_interrupt (self->engine);
        content = lp_value_map ();
        if (content
        && (lp_value_set (content, LP_CONTENT_STATUS, lp_value_string (LP_STATUS_OK))
        ||  lp_value_set (content, "interrupted", lp_value_bool (interrupted))))
            lp_value_destroy (&content);
        zsys_info (LP_INTERRUPT_REQUEST ": %s", interrupted? "interrupted": "idle");
    }
    else
    if (type && streq (type, LP_ABORT_REQUEST))
        content = s_abort (self, request);
    else
    if (type && streq (type, LP_SHUTDOWN_REQUEST)) {
        content = lp_value_map ();
        if (content && lp_value_set (content, LP_CONTENT_STATUS, lp_value_string (LP_STATUS_OK)))
            lp_value_destroy (&content);
        shutdown = true;
    }
    else {
        char evalue [128];
        snprintf (evalue, sizeof evalue, "unknown control msg_type '%.64s'", type? type: "");
        content = lp_engine_error_content (LP_ENAME_PROTOCOL, evalue, "");
    }
    lp_msg_t *reply = content? lp_msg_new_reply (request, reply_type): NULL;
    if (reply) {
        const lp_value_t *ename = lp_value_get (content, LP_CONTENT_ENAME);
        const char *ename_text = ename? lp_value_as_string (ename, NULL): NULL;
        lp_value_t *metadata = lp_msg_metadata (reply);
        bool ok = lp_value_set (metadata, LP_META_ENGINE, lp_value_int (self->id)) == 0
               && lp_value_set (metadata, LP_META_STATUS, lp_value_string (ename_text? LP_STATUS_ERROR: LP_STATUS_OK)) == 0
               && (!ename_text || lp_value_set (metadata, LP_META_ENAME, lp_value_string (ename_text)) == 0);
        lp_msg_set_content (reply, content);
        content = NULL;
        if (ok)
            lp_wire_send (self->wire, &reply, self->control);
        lp_msg_destroy (&reply);
    }
    else
        zsys_error ("control: out of memory replying to a %s", type? type: "request");
    lp_value_destroy (&content);
    lp_msg_destroy (&request);
    if (shutdown) {
        zsys_info (LP_SHUTDOWN_REQUEST ": stopping");
        lp_engine_interrupt (self->engine);
        zstr_send (self->pipe, "SHUTDOWN");
    }
}

//  Resident set size of this process in bytes (/proc/self/statm, in
//  pages), for the controller's status and dashboard; 0 when unknown.
//  Read once per ping: one small read, off the Lua thread.
static uint64_t
s_rss (void)
{
    FILE *file = fopen ("/proc/self/statm", "re");
    unsigned long long size = 0, resident = 0;
    int got = file? fscanf (file, "%llu %llu", &size, &resident): 0;
    if (file)
        fclose (file);
    long page = sysconf (_SC_PAGESIZE);
    return got == 2 && page > 0? (uint64_t) resident * (uint64_t) page: 0;
}

static void
s_handle_ping (self_t *self)
{
    zframe_t *frame = zframe_recv (self->sub);
    if (!frame)
        return;
    uint64_t seq;
    if (lp_proto_ping_decode (zframe_data (frame), zframe_size (frame), &seq)) {
        self->last_ping = zclock_mono ();
        uint8_t pong [LP_PONG_BYTES];
        lp_proto_pong_encode (pong, seq, s_rss ());
        //  A full queue (controller gone) drops the pong: DONTWAIT
        zmq_send (zsock_resolve (self->pong), pong, sizeof pong, ZMQ_DONTWAIT);
    }
    zframe_destroy (&frame);
}

void
lp_heart_actor (zsock_t *pipe, void *args)
{
    lp_heart_config_t *config = (lp_heart_config_t *) args;
    self_t *self = s_self_new (pipe, config);
    if (self) {
        //  engine_hello on control
        lp_msg_t *hello = lp_msg_new (LP_ENGINE_HELLO);
        lp_value_t *content = lp_value_map ();
        if (hello && content && lp_value_set (content, "id", lp_value_int (config->id)) == 0) {
            lp_msg_set_content (hello, content);
            content = NULL;
            if (lp_wire_send (self->wire, &hello, self->control))
                s_self_destroy (&self);
        }
        else
            s_self_destroy (&self);
        lp_value_destroy (&content);
        lp_msg_destroy (&hello);
    }
    config->rc = self? 0: -1;
    zsock_signal (pipe, 0);
    if (!self)
        return;

    int check_msec = self->heartbeat_msec / LP_HEARTBEAT_CHECK_DIV;
    if (check_msec < 1)
        check_msec = 1;
    while (!self->terminated) {
        //  Sleep less while a request with a time limit runs (it may have
        //  started during a long sleep: the limit is then late by at most
        //  one check period).
        int wait = check_msec;
        int64_t deadline = lp_engine_deadline (self->engine);
        if (deadline) {
            int64_t left = deadline - zclock_mono ();
            wait = left < 1? 1: left < wait? (int) left: wait;
        }
        void *which = zpoller_wait (self->poller, wait);
        if (which == pipe) {
            char *command = zstr_recv (pipe);
            if (!command || streq (command, "$TERM"))
                self->terminated = true;
            zstr_free (&command);
        }
        else
        if (which == self->sub)
            s_handle_ping (self);
        else
        if (which == self->pong) {
            //  "LPRE": the controller counts us as dead (we were stalled,
            //  say, while it declared us dead): register again.
            zframe_t *frame = zframe_recv (self->pong);
            if (frame && zframe_size (frame) == 4 && memcmp (zframe_data (frame), "LPRE", 4) == 0
            &&  !self->lost) {
                self->lost = true;
                zsys_warning ("the controller counts this engine as dead: registering again");
                //  What runs now was already failed for its client.
                lp_engine_interrupt (self->engine);
                zstr_send (pipe, "LOST");
            }
            zframe_destroy (&frame);
        }
        else
        if (which == self->control)
            s_handle_control (self);

        lp_engine_check_deadline (self->engine);
        //  A request told to stop (time limit, interrupt, signal, lost
        //  controller) that has not stopped within the grace is inside one
        //  C call that never checks (a pattern match that backtracks for
        //  hours, say): only ending the process frees the engine. The
        //  controller's launcher sees LP_EXIT_STUCK and says why.
        int64_t stuck = lp_engine_stuck_msec (self->engine);
        if (stuck > LP_STUCK_GRACE_MSEC) {
            zsys_error ("the running request ignored its time limit or interrupt for %d ms "
                        "(stuck inside a C call): exiting with status %d",
                        (int) stuck, LP_EXIT_STUCK);
            fflush (stdout);
            fflush (stderr);
            _exit (LP_EXIT_STUCK);
        }
        if (self->stop && *self->stop && !self->stop_seen) {
            self->stop_seen = true;
            lp_engine_interrupt (self->engine);
        }
        //  The engine waits twice as long as the controller does before it
        //  gives up on the other side: a controller busy for a moment
        //  (a flood of junk, a loaded machine) must not make every engine
        //  drop its connection; a truly lost controller is still noticed
        //  within seconds.
        int64_t lost_after = 2 * (int64_t) self->max_misses * self->heartbeat_msec;
        int64_t silent = zclock_mono () - self->last_ping;
        //  A controller restarted on the same ports (lpcontroller
        //  --restore) rewrites the connection file: once a ping is
        //  missing, a new version of the file says the controller we knew
        //  is gone, so we register again now rather than after lost_after.
        if (!self->lost && silent > self->heartbeat_msec * 3 / 2 && s_conn_rewritten (self))
            lost_after = 0;
        if (!self->lost && silent > lost_after) {
            //  Pings may be waiting (this process was stopped, say): take
            //  them first, they answer the question.
            while (zsock_events (self->sub) & ZMQ_POLLIN)
                s_handle_ping (self);
            silent = zclock_mono () - self->last_ping;
        }
        if (!self->lost && silent > lost_after) {
            self->lost = true;
            zsys_warning ("no heartbeat for %d ms: controller lost", (int) silent);
            //  Whatever runs now cannot reach its client any more.
            lp_engine_interrupt (self->engine);
            zstr_sendf (pipe, "LOST %" PRId64, silent);
        }
    }
    s_self_destroy (&self);
}
