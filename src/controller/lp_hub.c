/*  =========================================================================
    lp_hub.c - the hub of the controller

    The hub owns the engine table and decides who is alive. It is an
    actor of the controller (lpcontroller.c starts it, writes the
    connection files from the endpoints it reports, and tells it which
    local engine processes exited), with its own reactor (zloop) on its
    own thread. It starts the actors that carry the data path, each on its
    own thread: a mux for direct requests and one for control (lp_mux.c),
    the task scheduler (lp_scheduler.c) and the iopub relay (lp_relay.c).
    They talk only through actor pipes.

    Registration is two exchanges, not a heartbeat cycle:
        engine  registration_request  ->  hub     (id assigned, reply)
        engine  engine_hello on mux and control -> mux -> hub "HELLO"
    When both hellos have arrived the engine is routable: the hub tells the
    mux ADD, announces engine_registered and counts it for status. A uuid
    seen before gets its old id back; a restarted engine may ask for its
    previous id and gets it when no live engine holds it.

    Liveness: the hub publishes "LPHB"+seq every heartbeat period; each
    engine's heart thread echoes it on hb_pong. An engine silent for
    max_misses periods is dead (checked every period/4, so death is seen
    between max_misses and max_misses + 1/4 periods), provided half of
    the engines answered max_misses pings it did not: a controller starved
    of CPU reads every engine's pongs late, and that is not their death.
    Silent LP_HEARTBEAT_SILENT_FACTOR times that long, it is dead anyway
    (most engines lost at once).
    The pongs have a ZeroMQ I/O thread of their own (LP_HEARTBEAT_IO_THREAD).
    Local engines are also child processes of the controller: their exit
    is reported on the pipe (EXITED, DEAD) at once. A dead engine's unanswered requests are
    failed by the data-path actors (REMOVE id reason ename: EngineError, or
    TimeLimit for an engine that ended itself over a stuck request), and
    engine_unregistered is published.

    Clients: every heartbeat period the hub also publishes a signed
    controller_heartbeat (topic "controller") on the notification PUB, so
    that a client can tell a quiet controller from a lost one. The hub owns
    the controller's one replay guard (lp_guard), shared by its own wire
    and every actor's.

    Queries: a client's status_request needs the queue figures of the mux
    and the scheduler. The hub asks both ("QUEUES" with a number, see
    lp_actor.h), keeps the request, and answers it when both structured
    replies have come back through its reactor, so it never waits on an
    actor: heartbeats and registrations go on meanwhile. An actor that
    does not answer within LP_STATUS_WAIT_MSEC counts as all zeros.

    Dashboard (lpcontroller --dashboard, lp_dashboard.c): every
    LP_DASHBOARD_MSEC the hub runs the same status query for itself and
    pushes the answer, encoded, to the dashboard's inproc PULL socket
    (DONTWAIT, a queue of one or two: a slow dashboard misses snapshots,
    the hub never waits on it, nor on any HTTP client).
    =========================================================================
*/
#include "lp_hub.h"
#include "lp_actor.h"
#include "lp_bind.h"
#include "lp_mux.h"
#include "lp_scheduler.h"
#include "lp_relay.h"
#include "lp_proto.h"
#include "lp_util.h"
#include "lp_msg.h"
#include "lp_guard.h"
#include "lp_wire.h"
#include "lp_fetch.h"
#include "lp_routes.h"
#include "lp_codec.h"

#include <sodium.h>

//  Longest wait for the actors' queue figures before a status reply goes
//  out without them.
#define LP_STATUS_WAIT_MSEC 2000

typedef struct _lp_hub_t lp_hub_t;

typedef enum { ENGINE_REGISTERING, ENGINE_READY, ENGINE_DEAD } s_state_t;

typedef struct {
    int id;                             //  engine id
    char uuid [LP_ID_CHARS + 1];        //  its identity on every socket
    char *host;                         //  where it runs
    int64_t pid;                        //  its process id there
    char *user;                         //  who runs it
    char *cwd;                          //  its working directory
    char *lua_version;                  //  _VERSION
    char registered [32];               //  ISO date of registration
    s_state_t state;                    //  see above
    bool hello [3];                     //  hello seen on mux, control, task
    bool exited;                        //  its local process has exited (the
                                        //  controller said EXITED, DEAD follows)
    int64_t last_seen;                  //  zclock_mono of the last pong
    uint64_t pong_seq;                  //  newest ping it answered (or the
                                        //  last sent when it registered)
    uint64_t rss;                       //  its RSS in bytes, told in its
                                        //  pongs (0: not told)
} s_engine_t;

struct _lp_hub_t {
    lp_hub_config_t config;             //  copy: endpoints; no ip, no key
    zsock_t *pipe;                      //  to the controller
    bool terminated;                    //  $TERM seen
    uint8_t key [LP_KEY_BYTES];         //  the controller's key
    lp_wire_t *wire;                    //  signing on our sockets
    lp_guard_t *guard;                  //  THE replay guard of the controller,
                                        //  shared by every actor's wire
    zloop_t *loop;                      //  the reactor
    zsock_t *registration;              //  ROUTER: engines and clients
    zsock_t *hb_ping;                   //  PUB
    zsock_t *hb_pong;                   //  ROUTER
    zsock_t *notify;                    //  PUB
    zactor_t *mux;                      //  data path: direct requests
    zactor_t *control;                  //  data path: interrupt, shutdown
    zactor_t *scheduler;                //  data path: load-balanced tasks
    zactor_t *relay;                    //  data path: iopub
    lp_fetch_t *fetch;                  //  task store queries (lp_fetch.c)
    s_engine_t **engines;               //  by id, NULL for holes (owns)
    size_t engines_size;                //  slots in engines
    int next_id;                        //  next fresh id
    int ready;                          //  engines in ENGINE_READY (kept, not
                                        //  counted: O(1) per registration)
    zhashx_t *by_uuid;                  //  uuid -> engine (borrowed)
    uint64_t ping_seq;                  //  last ping sent
    uint64_t pong_newest;               //  newest ping any engine answered
                                        //  (s_pong_median's fallback)
    int expect_count;                   //  EXPECT: engines to wait for
    bool expecting;                     //  READY not yet sent
    zlistx_t *statuses;                 //  s_status_t waiting for figures (owns)
    zlistx_t *restarts;                 //  restart_requests waiting for the
                                        //  controller's RESTARTING (owns)
    int status_seq;                     //  last QUEUES number
    char hostname [256];                //  this host, for local pids
    zsock_t *dashboard;                 //  PUSH to the dashboard, or NULL

};


static void
s_engine_destroy (s_engine_t **self_p)
{
    s_engine_t *self = *self_p;
    if (self) {
        free (self->host);
        free (self->user);
        free (self->cwd);
        free (self->lua_version);
        free (self);
        *self_p = NULL;
    }
}

static void
s_notify (lp_hub_t *self, const char *type, s_engine_t *engine, const char *reason)
{
    lp_msg_t *msg = lp_msg_new (type);
    if (!msg)
        return;
    lp_value_t *content = lp_msg_content (msg);
    lp_value_set (content, "id", lp_value_int (engine->id));
    if (reason)
        lp_value_set (content, "reason", lp_value_string (reason));
    else {
        lp_value_set (content, "uuid", lp_value_string (engine->uuid));
        lp_value_set (content, "host", lp_value_string (engine->host));
        lp_value_set (content, "pid", lp_value_int (engine->pid));
    }
    zmsg_t *routing = zmsg_new ();
    if (routing) {
        zmsg_addstr (routing, "engine");
        lp_msg_set_routing (msg, &routing);
    }
    lp_wire_send (self->wire, &msg, self->notify);
}

//  Every change of an engine's state goes through here, so that the
//  number of ready engines is kept rather than counted.
static void
s_engine_set_state (lp_hub_t *self, s_engine_t *engine, s_state_t state)
{
    if (engine->state == ENGINE_READY && state != ENGINE_READY)
        self->ready--;
    else
    if (engine->state != ENGINE_READY && state == ENGINE_READY)
        self->ready++;
    engine->state = state;
}

static int
s_engines_ready (lp_hub_t *self)
{
    return self->ready;
}

//  EXITED: the id of the engine of this host whose process has (or had)
//  that pid, a live one first; -1 when none. The controller restarts a
//  local engine under its old id. Its live engines are marked exited.
static int
s_process_exited (lp_hub_t *self, int pid)
{
    int id = -1;
    bool live = false;
    for (size_t i = 0; i < self->engines_size; i++) {
        s_engine_t *engine = self->engines [i];
        if (engine && engine->pid == pid && streq (engine->host, self->hostname)) {
            if (!live)
                id = engine->id;
            if (engine->state != ENGINE_DEAD) {
                live = true;
                engine->exited = true;
            }
        }
    }
    return id;
}

static void
s_check_ready (lp_hub_t *self)
{
    int count = s_engines_ready (self);
    if (self->expecting && count >= self->expect_count) {
        self->expecting = false;
        zsock_send (self->pipe, "si", "READY", count);
    }
    else
    if (self->expecting)
        zsock_send (self->pipe, "si", "PROGRESS", count);
}

//  Tells the data-path actors that engine id is gone: each fails (or, the
//  scheduler, resubmits) what it had sent there, with ename.
static void
s_remove_everywhere (lp_hub_t *self, int id, const char *reason, const char *ename)
{
    zsock_send (self->mux, "siss", "REMOVE", id, reason, ename);
    zsock_send (self->control, "siss", "REMOVE", id, reason, ename);
    zsock_send (self->scheduler, "siss", "REMOVE", id, reason, ename);
}

static void
s_engine_dead (lp_hub_t *self, s_engine_t *engine, const char *reason, const char *ename)
{
    if (engine->state == ENGINE_DEAD)
        return;
    bool was_ready = engine->state == ENGINE_READY;
    s_engine_set_state (self, engine, ENGINE_DEAD);
    zsys_warning ("hub: engine %d (pid %lld on %s) %s", engine->id,
                  (long long) engine->pid, engine->host, reason);
    s_remove_everywhere (self, engine->id, reason, ename);
    if (was_ready)
        s_notify (self, LP_ENGINE_UNREGISTERED, engine, reason);
}

//  --------------------------------------------------------------------
//  Registration channel

static void
s_reply (lp_hub_t *self, lp_msg_t *request, const char *type, lp_value_t *content)
{
    lp_msg_t *reply = lp_msg_new_reply (request, type);
    if (!reply) {
        lp_value_destroy (&content);
        return;
    }
    lp_msg_set_content (reply, content);
    lp_wire_send (self->wire, &reply, self->registration);
}

static void
s_reply_error (lp_hub_t *self, lp_msg_t *request, const char *type, const char *evalue)
{
    lp_value_t *content = lp_value_map ();
    if (!content)
        return;
    lp_value_set (content, "status", lp_value_string ("error"));
    lp_value_set (content, "ename", lp_value_string ("RegistrationError"));
    lp_value_set (content, "evalue", lp_value_string (evalue));
    lp_value_set (content, "traceback", lp_value_string (""));
    s_reply (self, request, type, content);
}

static bool
s_id_in_use (lp_hub_t *self, int64_t id)
{
    return id >= 0 && (size_t) id < self->engines_size && self->engines [id]
        && self->engines [id]->state != ENGINE_DEAD;
}

static int
s_engines_grow (lp_hub_t *self, size_t id)
{
    if (id < self->engines_size)
        return 0;
    size_t size = id * 2 + 16;
    s_engine_t **grown = (s_engine_t **) realloc (self->engines, size * sizeof *grown);
    if (!grown)
        return -1;
    memset (grown + self->engines_size, 0, (size - self->engines_size) * sizeof *grown);
    self->engines = grown;
    self->engines_size = size;
    return 0;
}

static char *
s_strdup_field (lp_msg_t *msg, const char *key)
{
    const char *value = lp_msg_get_string (msg, key);
    return strdup (value? value: "?");
}

static void
s_handle_registration (lp_hub_t *self, lp_msg_t *msg)
{
    const char *uuid = lp_msg_get_string (msg, "uuid");
    if (!uuid || strlen (uuid) != LP_ID_CHARS) {
        s_reply_error (self, msg, LP_REGISTRATION_REPLY, "uuid must be 32 hex characters");
        return;
    }
    s_engine_t *engine = (s_engine_t *) zhashx_lookup (self->by_uuid, uuid);
    if (engine) {
        //  Known identity: same id again; a live one re-registers afresh.
        if (engine->state == ENGINE_READY)
            s_remove_everywhere (self, engine->id, "re-registered", "EngineError");
    }
    else {
        int64_t wanted = lp_msg_get_int (msg, "id", -1);
        //  A restarted engine asks for the id of the one whose process
        //  exited; the controller says DEAD right after starting it, but
        //  should the registration come first, that engine dies now.
        if (wanted >= 0 && (size_t) wanted < self->engines_size && self->engines [wanted]
        &&  self->engines [wanted]->exited)
            s_engine_dead (self, self->engines [wanted], "died: process exited", "EngineError");
        int64_t id = (wanted >= 0 && wanted < 1000000 && !s_id_in_use (self, wanted))
                   ? wanted: self->next_id;
        if (s_engines_grow (self, (size_t) id) != 0) {
            s_reply_error (self, msg, LP_REGISTRATION_REPLY, "controller out of memory");
            return;
        }
        //  A dead engine's slot is taken over by the newcomer.
        if (self->engines [id]) {
            zhashx_delete (self->by_uuid, self->engines [id]->uuid);
            s_engine_destroy (&self->engines [id]);
        }
        engine = (s_engine_t *) zmalloc (sizeof (s_engine_t));
        engine->id = (int) id;
        memcpy (engine->uuid, uuid, LP_ID_CHARS + 1);
        self->engines [id] = engine;
        zhashx_insert (self->by_uuid, uuid, engine);
        if (id >= self->next_id)
            self->next_id = (int) id + 1;
    }
    free (engine->host); engine->host = s_strdup_field (msg, "host");
    free (engine->user); engine->user = s_strdup_field (msg, "user");
    free (engine->cwd); engine->cwd = s_strdup_field (msg, "cwd");
    free (engine->lua_version); engine->lua_version = s_strdup_field (msg, "lua_version");
    engine->pid = lp_msg_get_int (msg, "pid", -1);
    s_engine_set_state (self, engine, ENGINE_REGISTERING);
    engine->hello [0] = engine->hello [1] = engine->hello [2] = false;
    engine->exited = false;
    engine->last_seen = zclock_mono ();
    engine->pong_seq = self->ping_seq;
    lp_util_iso_now (engine->registered);

    lp_value_t *content = lp_value_map ();
    if (!content)
        return;
    lp_value_set (content, "status", lp_value_string ("ok"));
    lp_value_set (content, "id", lp_value_int (engine->id));
    lp_value_set (content, "heartbeat_msec", lp_value_int (self->config.heartbeat_msec));
    lp_value_set (content, "max_misses", lp_value_int (self->config.max_misses));
    s_reply (self, msg, LP_REGISTRATION_REPLY, content);
    zsys_info ("hub: engine %d registering (pid %lld on %s)", engine->id,
               (long long) engine->pid, engine->host);
}

static void
s_handle_unregistration (lp_hub_t *self, lp_msg_t *msg)
{
    zframe_t *peer = zmsg_first (lp_msg_routing (msg));
    char uuid [LP_ID_CHARS + 1] = "";
    if (peer && zframe_size (peer) == LP_ID_CHARS)
        memcpy (uuid, zframe_data (peer), LP_ID_CHARS);
    s_engine_t *engine = (s_engine_t *) zhashx_lookup (self->by_uuid, uuid);
    if (engine)
        s_engine_dead (self, engine, "shutdown", "EngineError");
}

//  --------------------------------------------------------------------
//  Status: a client's status_request waits here for the queue figures of
//  the mux and the scheduler (lp_actor.h, "QUEUES").

typedef struct {
    lp_msg_t *request;                  //  the client's request; NULL: a
                                        //  snapshot for the dashboard
    int seq;                            //  the number its QUEUES carried
    int64_t deadline;                   //  zclock_mono: answer by then
    zframe_t *figures [2];              //  mux, scheduler: lp_actor_figures_t
                                        //  rows in id order; NULL until told
    int waiting;                        //  the scheduler's unassigned tasks
} s_status_t;

static void
s_status_destroy (s_status_t **self_p)
{
    s_status_t *self = *self_p;
    if (self) {
        lp_msg_destroy (&self->request);
        zframe_destroy (&self->figures [0]);
        zframe_destroy (&self->figures [1]);
        free (self);
        *self_p = NULL;
    }
}

static void
s_status_free (void **item)
{
    s_status_destroy ((s_status_t **) item);
}

//  The figures of engine id in rows (ascending ids, read from *at on:
//  the hub asks in ascending order too), zeros when it has none.
static lp_actor_figures_t
s_figures_of (zframe_t *rows, size_t *at, int id)
{
    lp_actor_figures_t row = { id, 0, 0 };
    size_t count = rows? zframe_size (rows) / sizeof row: 0;
    for (; *at < count; (*at)++) {
        lp_actor_figures_t next;
        //  Copied out: a frame's bytes need not be aligned.
        memcpy (&next, zframe_data (rows) + *at * sizeof next, sizeof next);
        if (next.id > id)
            break;
        if (next.id == id)
            return next;
    }
    return row;
}

static void
s_status_answer (lp_hub_t *self, s_status_t *status)
{
    lp_value_t *content = lp_value_map ();
    lp_value_t *list = lp_value_array ();
    if (!content || !list) {
        lp_value_destroy (&content);
        lp_value_destroy (&list);
        return;
    }
    size_t at [2] = { 0, 0 };
    int64_t now = zclock_mono ();
    for (size_t i = 0; i < self->engines_size; i++) {
        s_engine_t *engine = self->engines [i];
        if (!engine || engine->state != ENGINE_READY)
            continue;
        lp_actor_figures_t direct = s_figures_of (status->figures [0], &at [0], engine->id);
        lp_actor_figures_t tasks = s_figures_of (status->figures [1], &at [1], engine->id);
        int64_t queue = direct.outstanding;
        //  An engine runs one task at a time: the oldest sent there.
        int64_t tasks_running = tasks.outstanding > 0? 1: 0;
        int64_t tasks_queued = tasks.outstanding - tasks_running;
        lp_value_t *row = lp_value_map ();
        if (!row)
            break;
        lp_value_set (row, "id", lp_value_int (engine->id));
        lp_value_set (row, "uuid", lp_value_string (engine->uuid));
        lp_value_set (row, "host", lp_value_string (engine->host));
        lp_value_set (row, "pid", lp_value_int (engine->pid));
        lp_value_set (row, "user", lp_value_string (engine->user));
        lp_value_set (row, "cwd", lp_value_string (engine->cwd));
        lp_value_set (row, "lua_version", lp_value_string (engine->lua_version));
        lp_value_set (row, "state", lp_value_string (queue + tasks_running > 0? "busy": "idle"));
        lp_value_set (row, "queue", lp_value_int (queue + tasks_queued + tasks_running));
        lp_value_set (row, "direct_queue", lp_value_int (queue));
        lp_value_set (row, "tasks_queued", lp_value_int (tasks_queued));
        lp_value_set (row, "tasks_running", lp_value_int (tasks_running));
        lp_value_set (row, "tasks_done", lp_value_int (tasks.done));
        lp_value_set (row, "direct_done", lp_value_int (direct.done));
        lp_value_set (row, "registered", lp_value_string (engine->registered));
        lp_value_set (row, "heartbeat_age_msec", lp_value_int (now - engine->last_seen));
        if (engine->rss)
            lp_value_set (row, "rss", lp_value_int ((int64_t) engine->rss));
        lp_value_append (list, row);
    }
    lp_value_set (content, "unassigned", lp_value_int (status->waiting));
    lp_value_set (content, "status", lp_value_string ("ok"));
    lp_value_set (content, "scheme", lp_value_string (lp_scheme_name (self->config.scheme)));
    lp_value_set (content, "hwm", lp_value_int (self->config.hwm));
    lp_value_set (content, "engines", list);
    if (status->request)
        s_reply (self, status->request, LP_STATUS_REPLY, content);
    else {
        //  Names and numbers only, one frame: inline (a table of many
        //  engines would otherwise go out of band, lp_codec)
        char err [128];
        zframe_t *frame = lp_codec_encode_inline (content, err, sizeof err);
        lp_value_destroy (&content);
        if (frame && zframe_send (&frame, self->dashboard, ZFRAME_DONTWAIT) == 0)
            frame = NULL;
        zframe_destroy (&frame);        //  not sent: the dashboard is behind
    }
}

//  Takes the request; it is answered when the figures are in. NULL: a
//  snapshot for the dashboard.
static void
s_handle_status (lp_hub_t *self, lp_msg_t **msg_p)
{
    s_status_t *status = (s_status_t *) calloc (1, sizeof (s_status_t));
    if (!status)
        return;
    if (msg_p) {
        status->request = *msg_p;
        *msg_p = NULL;
    }
    status->seq = ++self->status_seq;
    status->deadline = zclock_mono () + LP_STATUS_WAIT_MSEC;
    if (!zlistx_add_end (self->statuses, status)) {
        s_status_destroy (&status);
        return;
    }
    zsock_send (self->mux, "si", "QUEUES", status->seq);
    zsock_send (self->scheduler, "si", "QUEUES", status->seq);
}

//  An actor's "QUEUES" seq waiting rows: which == 0 the mux, 1 the
//  scheduler. A status with both is answered.
static void
s_handle_queues (lp_hub_t *self, int which, zmsg_t *msg)
{
    char *seq = zmsg_popstr (msg);
    char *waiting = zmsg_popstr (msg);
    zframe_t *rows = zmsg_pop (msg);
    int number = seq? atoi (seq): -1;
    s_status_t *status = (s_status_t *) zlistx_first (self->statuses);
    while (status && status->seq != number)
        status = (s_status_t *) zlistx_next (self->statuses);
    if (status && rows && !status->figures [which]) {
        status->figures [which] = rows;
        rows = NULL;
        if (which == 1)
            status->waiting = waiting? atoi (waiting): 0;
        if (status->figures [0] && status->figures [1]) {
            s_status_answer (self, status);
            zlistx_delete (self->statuses, zlistx_cursor (self->statuses));
        }
    }
    zframe_destroy (&rows);
    free (seq);
    free (waiting);
}

//  Statuses whose figures did not all come in time go out as they are.
static void
s_statuses_overdue (lp_hub_t *self)
{
    int64_t now = zclock_mono ();
    s_status_t *status = (s_status_t *) zlistx_first (self->statuses);
    while (status) {
        if (now >= status->deadline) {
            s_status_answer (self, status);
            zlistx_delete (self->statuses, zlistx_cursor (self->statuses));
            status = (s_status_t *) zlistx_first (self->statuses);
        }
        else
            status = (s_status_t *) zlistx_next (self->statuses);
    }
}

static void
s_msg_free (void **item)
{
    lp_msg_destroy ((lp_msg_t **) item);
}

//  A client's restart_request {id}: a registered engine of this host is
//  handed to the controller ("RESTART" id pid), which alone knows whether
//  it started that process; the request is answered on its RESTARTING.
static void
s_handle_restart (lp_hub_t *self, lp_msg_t **msg_p)
{
    int64_t id = lp_msg_get_int (*msg_p, "id", -1);
    s_engine_t *engine = id >= 0 && (size_t) id < self->engines_size? self->engines [id]: NULL;
    char why [512] = "";
    if (!engine || engine->state != ENGINE_READY)
        snprintf (why, sizeof why, "no engine %lld is registered", (long long) id);
    else
    if (!streq (engine->host, self->hostname))
        snprintf (why, sizeof why, "engine %lld runs on %.200s, not on the controller's host: "
                  "only engines the controller started can be restarted", (long long) id,
                  engine->host);
    else
    if (!zlistx_add_end (self->restarts, *msg_p))
        snprintf (why, sizeof why, "out of memory");
    if (*why) {
        s_reply_error (self, *msg_p, LP_RESTART_REPLY, why);
        return;
    }
    *msg_p = NULL;                      //  kept until RESTARTING
    zsock_send (self->pipe, "sii", "RESTART", (int) id, (int) engine->pid);
}

//  The controller's answer to RESTART: "" when the engine is being
//  restarted, else why not.
static void
s_restarting (lp_hub_t *self, int id, int pid, const char *why)
{
    lp_msg_t *request = (lp_msg_t *) zlistx_first (self->restarts);
    while (request && lp_msg_get_int (request, "id", -1) != id)
        request = (lp_msg_t *) zlistx_next (self->restarts);
    if (!request)
        return;
    if (why && *why)
        s_reply_error (self, request, LP_RESTART_REPLY, why);
    else {
        lp_value_t *content = lp_value_map ();
        if (content
        && (lp_value_set (content, LP_CONTENT_STATUS, lp_value_string (LP_STATUS_OK))
        ||  lp_value_set (content, "id", lp_value_int (id))
        ||  lp_value_set (content, "pid", lp_value_int (pid))))
            lp_value_destroy (&content);
        if (content)
            s_reply (self, request, LP_RESTART_REPLY, content);
    }
    zlistx_delete (self->restarts, zlistx_cursor (self->restarts));
}

//  One message on the registration channel; -1 asks the loop to end.
static int
s_handle_registration_msg (lp_hub_t *self, lp_msg_t *msg)
{
    const char *type = lp_msg_type (msg);
    int rc = 0;
    if (streq (type, LP_REGISTRATION_REQUEST))
        s_handle_registration (self, msg);
    else
    if (streq (type, LP_UNREGISTRATION_REQUEST))
        s_handle_unregistration (self, msg);
    else
    if (streq (type, LP_STATUS_REQUEST))
        s_handle_status (self, &msg);
    else
    if (streq (type, LP_RESTART_REQUEST))
        s_handle_restart (self, &msg);
    else
    if (streq (type, LP_SHUTDOWN_REQUEST)) {
        lp_value_t *content = lp_value_map ();
        if (content) {
            lp_value_set (content, "status", lp_value_string ("ok"));
            s_reply (self, msg, LP_SHUTDOWN_REPLY, content);
        }
        zsys_info ("hub: shutdown requested by a client");
        zstr_send (self->control, "SHUTDOWN");
        zstr_send (self->pipe, "SHUTDOWN");
        rc = -1;
    }
    else
    if (lp_fetch_handle (self->fetch, msg))
        ;                               //  fetch, result, history, purge, resubmit
    else {
        char why [160];
        snprintf (why, sizeof why, "unknown message type '%.100s' on the registration channel", type);
        s_reply_error (self, msg, LP_ERROR_REPLY, why);
    }
    lp_msg_destroy (&msg);
    return rc;
}

//  Registration storms (hundreds of engines at once) are read in batches:
//  the socket has a receive timeout of 0.
static int
s_on_registration (zloop_t *loop, zsock_t *sock, void *arg)
{
    (void) loop;
    lp_hub_t *self = (lp_hub_t *) arg;
    for (int n = 0; n < LP_DRAIN_BATCH; n++) {
        zmsg_t *zmsg = zmsg_recv (sock);
        if (!zmsg)
            break;
        lp_msg_t *msg = lp_wire_decode (self->wire, &zmsg);
        if (msg && s_handle_registration_msg (self, msg) != 0)
            return -1;
    }
    return 0;
}

//  --------------------------------------------------------------------
//  Hellos from the mux

static void
s_handle_hello (lp_hub_t *self, int id, const char *uuid, const char *channel)
{
    if (id < 0 || (size_t) id >= self->engines_size || !self->engines [id])
        return;
    s_engine_t *engine = self->engines [id];
    if (!streq (engine->uuid, uuid) || engine->state != ENGINE_REGISTERING)
        return;
    engine->hello [streq (channel, "mux")? 0: streq (channel, "control")? 1: 2] = true;
    if (engine->hello [0] && engine->hello [1] && engine->hello [2]) {
        s_engine_set_state (self, engine, ENGINE_READY);
        engine->last_seen = zclock_mono ();
        engine->pong_seq = self->ping_seq;
        zsock_send (self->mux, "sis", "ADD", engine->id, engine->uuid);
        zsock_send (self->control, "sis", "ADD", engine->id, engine->uuid);
        zsock_send (self->scheduler, "sis", "ADD", engine->id, engine->uuid);
        s_notify (self, LP_ENGINE_REGISTERED, engine, NULL);
        zsys_info ("hub: engine %d registered (pid %lld on %s)", engine->id,
                   (long long) engine->pid, engine->host);
        s_check_ready (self);
    }
}

//  Events from the data-path actors: hellos, queue figures.
static int
s_on_actor (zloop_t *loop, zsock_t *sock, void *arg)
{
    (void) loop;
    lp_hub_t *self = (lp_hub_t *) arg;
    zmsg_t *msg = zmsg_recv (sock);
    char *command = msg? zmsg_popstr (msg): NULL;
    if (command && streq (command, "HELLO")) {
        char *id = zmsg_popstr (msg), *uuid = zmsg_popstr (msg),
             *channel = zmsg_popstr (msg);
        if (id && uuid && channel)
            s_handle_hello (self, atoi (id), uuid, channel);
        free (id); free (uuid); free (channel);
    }
    else
    if (command && streq (command, "QUEUES"))
        s_handle_queues (self, sock == zactor_sock (self->mux)? 0: 1, msg);
    free (command);
    zmsg_destroy (&msg);
    return 0;
}

//  --------------------------------------------------------------------
//  Heartbeat

//  Tells clients the controller lives: on the notification PUB, topic
//  "controller", msg_type controller_heartbeat, content {seq,
//  heartbeat_msec} (docs/protocol.md, "Notification channel").
static void
s_controller_heartbeat (lp_hub_t *self, uint64_t seq)
{
    lp_msg_t *msg = lp_msg_new (LP_CONTROLLER_HEARTBEAT);
    zmsg_t *routing = zmsg_new ();
    if (!msg || !routing || zmsg_addstr (routing, "controller") != 0) {
        zmsg_destroy (&routing);
        lp_msg_destroy (&msg);
        return;
    }
    lp_msg_set_routing (msg, &routing);
    lp_value_t *content = lp_msg_content (msg);
    if (lp_value_set (content, "seq", lp_value_int ((int64_t) seq))
    ||  lp_value_set (content, "heartbeat_msec", lp_value_int (self->config.heartbeat_msec))) {
        lp_msg_destroy (&msg);
        return;
    }
    lp_wire_send (self->wire, &msg, self->notify);
}

//  The notification PUB is only written to. ZeroMQ handles a socket's
//  internal commands (among them "this peer's pipe has terminated") only
//  when the application calls into that socket; a PUB that sends rarely
//  kept every departed client's pipe and its 16 KB message queue chunk
//  (issue 8, observation 11: ~17 KB per client connect/disconnect, never
//  returned). Polling it (this reader never fires: a PUB has no input)
//  makes zmq_poll process those commands as soon as they arrive.
static int
s_on_notify (zloop_t *loop, zsock_t *sock, void *arg)
{
    (void) loop; (void) sock; (void) arg;
    return 0;
}

static int
s_on_ping_timer (zloop_t *loop, int timer_id, void *arg)
{
    (void) loop; (void) timer_id;
    lp_hub_t *self = (lp_hub_t *) arg;
    uint8_t ping [LP_HB_BYTES];
    uint64_t seq = ++self->ping_seq;
    lp_proto_ping_encode (ping, seq);
    zframe_t *frame = zframe_new (ping, sizeof ping);
    if (frame && zframe_send (&frame, self->hb_ping, 0) != 0)
        zframe_destroy (&frame);
    s_controller_heartbeat (self, seq);
    return 0;
}

static void
s_handle_pong (lp_hub_t *self, zsock_t *sock, zmsg_t *msg)
{
    zframe_t *peer = zmsg_first (msg);
    zframe_t *pong = zmsg_next (msg);
    uint64_t seq = 0, rss = 0;
    if (peer && pong && zmsg_size (msg) == 2
    &&  zframe_size (peer) == LP_ID_CHARS
    &&  lp_proto_pong_decode (zframe_data (pong), zframe_size (pong), &seq, &rss)) {
        char uuid [LP_ID_CHARS + 1];
        memcpy (uuid, zframe_data (peer), LP_ID_CHARS);
        uuid [LP_ID_CHARS] = 0;
        s_engine_t *engine = (s_engine_t *) zhashx_lookup (self->by_uuid, uuid);
        if (engine && engine->state != ENGINE_DEAD
        &&  seq <= self->ping_seq && seq + 2 * (uint64_t) self->config.max_misses >= self->ping_seq) {
            engine->last_seen = zclock_mono ();
            if (seq > engine->pong_seq)
                engine->pong_seq = seq;
            if (seq > self->pong_newest)
                self->pong_newest = seq;
            if (rss)
                engine->rss = rss;
        }
        else
        if (engine && engine->state == ENGINE_DEAD) {
            //  A dead engine that answers again (it was stalled): tell it
            //  to register anew; it keeps its id and its Lua state.
            zmsg_t *nudge = zmsg_new ();
            if (nudge && zmsg_addmem (nudge, uuid, LP_ID_CHARS) == 0
            &&  zmsg_addmem (nudge, "LPRE", 4) == 0)
                zmsg_send (&nudge, sock);
            zmsg_destroy (&nudge);
        }
    }
    zmsg_destroy (&msg);
}

//  Reads every pong waiting (receive timeout 0).
static int
s_drain_pongs (lp_hub_t *self)
{
    zmsg_t *msg;
    int count = 0;
    while ((msg = zmsg_recv (self->hb_pong))) {
        s_handle_pong (self, self->hb_pong, msg);
        count++;
    }
    return count;
}

static int
s_on_pong (zloop_t *loop, zsock_t *sock, void *arg)
{
    (void) loop; (void) sock;
    s_drain_pongs ((lp_hub_t *) arg);
    return 0;
}

static int
s_cmp_seq (const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *) a, y = *(const uint64_t *) b;
    return (x > y) - (x < y);
}

//  The newest ping that at least half of the live engines answered
//  (O(n log n) per check: 1024 engines, 4 checks a second); the newest
//  answered by any when out of memory.
static uint64_t
s_pong_median (lp_hub_t *self)
{
    uint64_t *seqs = (uint64_t *) malloc (self->engines_size * sizeof *seqs);
    if (!seqs)
        return self->pong_newest;
    size_t count = 0;
    for (size_t i = 0; i < self->engines_size; i++)
        if (self->engines [i] && self->engines [i]->state == ENGINE_READY)
            seqs [count++] = self->engines [i]->pong_seq;
    uint64_t median = self->pong_newest;
    if (count > 0) {
        qsort (seqs, count, sizeof *seqs, s_cmp_seq);
        median = seqs [count / 2];
    }
    free (seqs);
    return median;
}

static int
s_on_check_timer (zloop_t *loop, int timer_id, void *arg)
{
    (void) loop; (void) timer_id;
    lp_hub_t *self = (lp_hub_t *) arg;
    //  Pongs that arrived while this thread was busy (or starved of CPU,
    //  while hundreds of engines start) count before anyone is judged.
    s_drain_pongs (self);
    int64_t limit = (int64_t) self->config.heartbeat_msec * self->config.max_misses;
    int64_t now = zclock_mono ();
    uint64_t misses = (uint64_t) self->config.max_misses;
    //  With other engines, the newest ping answered by half of them is
    //  the yardstick, not the newest sent: when the controller's own
    //  threads are starved of CPU (1024 engines spinning on 2 CPUs), pongs
    //  wait unread in its sockets, and they wait for every engine alike.
    //  An engine is dead when most others answered max_misses pings it
    //  did not, or when it stayed silent LP_HEARTBEAT_SILENT_FACTOR times
    //  longer than that: should most engines fall silent at once (the
    //  host of most remote engines lost, most engines stopped), they are
    //  still named, later, and their requests end.
    uint64_t answered = self->ready > 1? s_pong_median (self): self->ping_seq;
    for (size_t i = 0; i < self->engines_size; i++) {
        s_engine_t *engine = self->engines [i];
        //  Dead: silent for max_misses periods AND max_misses pings really
        //  went out and were answered by others meanwhile (if this thread
        //  was held up and sent none, the silence is ours, not the
        //  engine's).
        //  One that registered but is not ready yet (its heart may not
        //  beat yet: hundreds of engines starting on 2 CPUs) has longer.
        int64_t allowed = engine && engine->state == ENGINE_REGISTERING
                        && limit < LP_HELLO_WAIT_MSEC? LP_HELLO_WAIT_MSEC: limit;
        if (engine && engine->state != ENGINE_DEAD && now - engine->last_seen > allowed
        &&  self->ping_seq - engine->pong_seq >= misses
        &&  (answered >= engine->pong_seq + misses
             || now - engine->last_seen > allowed * LP_HEARTBEAT_SILENT_FACTOR)) {
            char reason [96];
            snprintf (reason, sizeof reason, "died: no heartbeat for %lld ms",
                      (long long) (now - engine->last_seen));
            s_engine_dead (self, engine, reason, "EngineError");
        }
    }
    s_statuses_overdue (self);
    return 0;
}

//  --------------------------------------------------------------------

//  DEAD: the local process pid has exited; its engine is dead.
static void
s_process_dead (lp_hub_t *self, int pid, const char *reason, const char *ename)
{
    for (size_t i = 0; i < self->engines_size; i++) {
        s_engine_t *engine = self->engines [i];
        if (engine && engine->pid == pid && engine->state != ENGINE_DEAD
        &&  streq (engine->host, self->hostname)) {
            char text [160];
            snprintf (text, sizeof text, "died: %s", reason);
            s_engine_dead (self, engine, text, ename? ename: "EngineError");
        }
    }
}

static int
s_on_dashboard_timer (zloop_t *loop, int timer_id, void *arg)
{
    (void) loop; (void) timer_id;
    s_handle_status ((lp_hub_t *) arg, NULL);
    return 0;
}

//  Starts an actor that answers "ENDPOINTS" with its engine-side and
//  client-side endpoints. 0 / -1.
static int
s_start_actor (zactor_t **actor_p, zactor_fn *fn, void *args, char endpoints [2][128])
{
    zactor_t *actor = zactor_new (fn, args);
    char *eps [2] = { NULL, NULL };
    int rc = -1;
    if (actor && zstr_send (actor, "ENDPOINTS") == 0
    &&  zsock_recv (actor, "ss", &eps [0], &eps [1]) == 0 && eps [0] && eps [1]) {
        for (int i = 0; i < 2; i++)
            snprintf (endpoints [i], 128, "%s", eps [i]);
        rc = 0;
    }
    free (eps [0]);
    free (eps [1]);
    *actor_p = actor;
    return rc;
}

static void s_hub_destroy (lp_hub_t **self_p);
static int s_on_pipe (zloop_t *loop, zsock_t *pipe, void *arg);


//  Before the binds (libzmq copies socket options into each connection):
//  the notification PUB only reads subscriptions, so a stranger who sends
//  it a larger frame is cut off at LP_SMALL_MAX_FRAME. The registration
//  socket keeps the data channels' LP_DATA_MAX_FRAME (lp_bind_tcp's
//  default): its queries carry up to 10,000 msg_ids (~340 KB, in pieces).
static void
s_limit_frames (lp_hub_t *self)
{
    if (self->notify)
        zsock_set_maxmsgsize (self->notify, LP_SMALL_MAX_FRAME);
}

//  Binds, starts the data-path actors, fills self->config.endpoints.
//  NULL with err on failure.
static lp_hub_t *
s_hub_new (zsock_t *pipe, const lp_hub_config_t *config, char *err, size_t errlen)
{
    lp_hub_t *self = (lp_hub_t *) zmalloc (sizeof (lp_hub_t));
    self->config = *config;
    self->config.ip = NULL;
    self->config.key = NULL;
    self->pipe = pipe;
    if (gethostname (self->hostname, sizeof self->hostname - 1) != 0)
        strcpy (self->hostname, "localhost");
    if (config->key_len != sizeof self->key) {
        snprintf (err, errlen, "the hub wants a key of %d bytes", LP_KEY_BYTES);
        s_hub_destroy (&self);
        return NULL;
    }
    memcpy (self->key, config->key, sizeof self->key);
    self->wire = lp_wire_new (self->key, sizeof self->key, "controller/hub");
    //  One replay guard for the whole controller (docs/protocol.md,
    //  "Replays"): a msg_id seen on any channel is a replay.
    self->guard = lp_guard_new (lp_guard_window_default (), LP_REPLAY_MAX_IDS);
    if (self->wire && self->guard)
        lp_wire_set_guard (self->wire, self->guard);
    self->by_uuid = zhashx_new ();
    self->statuses = zlistx_new ();
    if (self->statuses)
        zlistx_set_destructor (self->statuses, s_status_free);
    self->restarts = zlistx_new ();
    if (self->restarts)
        zlistx_set_destructor (self->restarts, s_msg_free);
    self->loop = zloop_new ();
    self->registration = zsock_new (ZMQ_ROUTER);
    self->hb_ping = zsock_new (ZMQ_PUB);
    self->hb_pong = zsock_new (ZMQ_ROUTER);
    //  An engine that reconnects with its uuid replaces its old connection.
    if (self->registration)
        zsock_set_router_handover (self->registration, 1);
    if (self->hb_pong)
        zsock_set_router_handover (self->hb_pong, 1);
    self->notify = zsock_new (ZMQ_PUB);
    if (!self->wire || !self->guard || !self->by_uuid || !self->statuses || !self->restarts
    ||  !self->loop) {
        snprintf (err, errlen, "out of memory");
        s_hub_destroy (&self);
        return NULL;
    }
    s_limit_frames (self);
    //  Heartbeats (the engines', and the clients' controller_heartbeat on
    //  notify) on an I/O thread of their own (before the binds: a
    //  connection takes its socket's affinity when it is made)
    uint64_t affinity = lp_routes_io_affinity (LP_HEARTBEAT_IO_THREAD);
    zsock_set_affinity (self->hb_ping, (int) affinity);
    zsock_set_affinity (self->hb_pong, (int) affinity);
    zsock_set_affinity (self->notify, (int) affinity);
    char (*endpoints) [128] = self->config.endpoints;
    if (lp_bind_tcp (self->registration, config->ip, endpoints [LP_HUB_REGISTRATION], 128)
    ||  lp_bind_tcp (self->hb_ping, config->ip, endpoints [LP_HUB_HB_PING], 128)
    ||  lp_bind_tcp (self->hb_pong, config->ip, endpoints [LP_HUB_HB_PONG], 128)
    ||  lp_bind_tcp (self->notify, config->ip, endpoints [LP_HUB_NOTIFICATION], 128)) {
        snprintf (err, errlen, "cannot listen on %s: %s", config->ip,
                  zmq_strerror (zmq_errno ()));
        s_hub_destroy (&self);
        return NULL;
    }
    //  Endpoints that came filled in (--restore) are bound again
    lp_mux_config_t mux_config = { config->ip, self->key, sizeof self->key, "mux",
                                   self->guard, config->store,
                                   { endpoints [LP_HUB_MUX_ENGINE], endpoints [LP_HUB_MUX_CLIENT] } };
    lp_mux_config_t control_config = { config->ip, self->key, sizeof self->key, "control",
                                       self->guard, config->store,
                                       { endpoints [LP_HUB_CONTROL_ENGINE],
                                         endpoints [LP_HUB_CONTROL_CLIENT] } };
    lp_scheduler_config_t scheduler_config = { config->ip, self->key, sizeof self->key,
                                               config->scheme, config->hwm, self->guard,
                                               config->store,
                                               { endpoints [LP_HUB_TASK_ENGINE],
                                                 endpoints [LP_HUB_TASK_CLIENT] } };
    lp_relay_config_t relay_config = { config->ip, { endpoints [LP_HUB_IOPUB_ENGINE],
                                                     endpoints [LP_HUB_IOPUB_CLIENT] } };
    if (s_start_actor (&self->mux, lp_mux_actor, &mux_config, endpoints + LP_HUB_MUX_ENGINE)
    ||  s_start_actor (&self->control, lp_mux_actor, &control_config,
                       endpoints + LP_HUB_CONTROL_ENGINE)
    ||  s_start_actor (&self->scheduler, lp_scheduler_actor, &scheduler_config,
                       endpoints + LP_HUB_TASK_ENGINE)
    ||  s_start_actor (&self->relay, lp_relay_actor, &relay_config,
                       endpoints + LP_HUB_IOPUB_ENGINE)) {
        snprintf (err, errlen, "cannot start the data path on %s", config->ip);
        s_hub_destroy (&self);
        return NULL;
    }
    //  The task store's queries (results by id, history, purge, resubmit)
    self->fetch = lp_fetch_new (config->store, self->wire, self->registration, self->loop,
                                endpoints [LP_HUB_TASK_CLIENT], endpoints [LP_HUB_MUX_CLIENT]);
    if (!self->fetch) {
        snprintf (err, errlen, "cannot start the task store's queries");
        s_hub_destroy (&self);
        return NULL;
    }
    zsock_set_rcvtimeo (self->registration, 0);
    zsock_set_rcvtimeo (self->hb_pong, 0);
    //  Heartbeat sockets carry 12-byte frames: a peer that sends a larger
    //  one (junk) is disconnected by ZeroMQ before it reads the rest, so a
    //  flood there cannot hold up the pongs of real engines.
    zsock_set_maxmsgsize (self->hb_pong, LP_HEARTBEAT_MAX_FRAME);
    zsock_set_maxmsgsize (self->hb_ping, LP_HEARTBEAT_MAX_FRAME);
    zloop_reader (self->loop, self->registration, s_on_registration, self);
    zloop_reader (self->loop, self->hb_pong, s_on_pong, self);
    zloop_reader (self->loop, self->notify, s_on_notify, self);
    zloop_reader (self->loop, zactor_sock (self->mux), s_on_actor, self);
    zloop_reader (self->loop, zactor_sock (self->control), s_on_actor, self);
    zloop_reader (self->loop, zactor_sock (self->scheduler), s_on_actor, self);
    zloop_reader (self->loop, pipe, s_on_pipe, self);
    zloop_timer (self->loop, (size_t) config->heartbeat_msec, 0, s_on_ping_timer, self);
    int check = config->heartbeat_msec / LP_HEARTBEAT_CHECK_DIV;
    zloop_timer (self->loop, (size_t) (check > 0? check: 1), 0, s_on_check_timer, self);
    if (config->dashboard) {
        self->dashboard = zsock_new (ZMQ_PUSH);
        if (self->dashboard) {
            zsock_set_sndhwm (self->dashboard, LP_DASHBOARD_HWM);
            if (zsock_connect (self->dashboard, "%s", config->dashboard) != 0)
                zsock_destroy (&self->dashboard);
        }
        if (!self->dashboard) {
            snprintf (err, errlen, "cannot reach the dashboard at %s", config->dashboard);
            s_hub_destroy (&self);
            return NULL;
        }
        zloop_timer (self->loop, LP_DASHBOARD_MSEC, 0, s_on_dashboard_timer, self);
    }
    return self;
}

static void
s_hub_destroy (lp_hub_t **self_p)
{
    lp_hub_t *self = *self_p;
    if (!self)
        return;
    zactor_destroy (&self->scheduler);
    zactor_destroy (&self->mux);
    zactor_destroy (&self->control);
    if (self->relay)
        zstr_send (self->relay, "TERMINATE");
    zactor_destroy (&self->relay);
    lp_fetch_destroy (&self->fetch);
    zloop_destroy (&self->loop);
    zsock_destroy (&self->registration);
    zsock_destroy (&self->hb_ping);
    zsock_destroy (&self->hb_pong);
    zsock_destroy (&self->notify);
    zsock_destroy (&self->dashboard);
    for (size_t i = 0; i < self->engines_size; i++)
        s_engine_destroy (&self->engines [i]);
    free (self->engines);
    zhashx_destroy (&self->by_uuid);
    zlistx_destroy (&self->statuses);
    zlistx_destroy (&self->restarts);
    lp_wire_destroy (&self->wire);
    //  After every wire that uses it (the actors' went with the actors).
    lp_guard_destroy (&self->guard);
    sodium_memzero (self->key, sizeof self->key);
    free (self);
    *self_p = NULL;
}

//  Controller commands (lp_hub.h). -1 ends the reactor: on $TERM, and on
//  STOP (the hub serves no one any more, but still answers the pipe).
static int
s_on_pipe (zloop_t *loop, zsock_t *pipe, void *arg)
{
    (void) loop;
    lp_hub_t *self = (lp_hub_t *) arg;
    zmsg_t *msg = zmsg_recv (pipe);
    char *command = msg? zmsg_popstr (msg): NULL;
    char *first = msg? zmsg_popstr (msg): NULL;
    int number = first? atoi (first): -1;
    int rc = 0;
    if (!command || streq (command, "$TERM")) {
        self->terminated = true;
        rc = -1;
    }
    else
    if (streq (command, "EXPECT")) {
        self->expect_count = number;
        self->expecting = true;
        s_check_ready (self);
    }
    else
    if (streq (command, "EXITED"))
        zsock_send (pipe, "si", "EXITED", s_process_exited (self, number));
    else
    if (streq (command, "DEAD")) {
        char *reason = zmsg_popstr (msg);
        char *ename = zmsg_popstr (msg);
        s_process_dead (self, number, reason? reason: "exited", ename);
        free (reason);
        free (ename);
    }
    else
    if (streq (command, "ENGINES"))
        zsock_send (pipe, "si", "ENGINES", s_engines_ready (self));
    else
    if (streq (command, "RESTARTING")) {
        char *pid = zmsg_popstr (msg);
        char *why = zmsg_popstr (msg);
        s_restarting (self, number, pid? atoi (pid): 0, why);
        free (pid);
        free (why);
    }
    else
    if (streq (command, "STOP"))
        rc = -1;
    else
        zsys_error ("hub: unknown command '%s' from the controller", command);
    free (command);
    free (first);
    zmsg_destroy (&msg);
    return rc;
}

void
lp_hub_actor (zsock_t *pipe, void *args)
{
    lp_hub_config_t *config = (lp_hub_config_t *) args;
    lp_hub_t *self = s_hub_new (pipe, config, config->error, sizeof config->error);
    config->ok = self != NULL;
    if (self)
        memcpy (config->endpoints, self->config.endpoints, sizeof config->endpoints);
    zsock_signal (pipe, self? 0: 1);
    if (!self)
        return;
    //  Until $TERM, STOP, or a client's shutdown_request.
    zloop_start (self->loop);
    //  Stopped: the controller may still ask (EXITED, ENGINES) until $TERM.
    while (!self->terminated)
        s_on_pipe (NULL, pipe, self);
    s_hub_destroy (&self);
}
