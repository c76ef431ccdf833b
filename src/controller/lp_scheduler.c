/*  =========================================================================
    lp_scheduler.c - the load-balanced task scheduler

    Clients send tasks (apply_request, execute_request, map_request...) on
    the task channel with no engine named; this actor picks one with the
    configured scheme and forwards the frames unchanged, exactly as the mux
    does:   [client] <LPMSG> ...  ->  [uuid][client] <LPMSG> ...
    The decisions themselves (which engine, whether a task's dependencies
    are met) are pure functions in lp_policy.c; this file keeps the
    sockets, the records and the messages, and asks it.

    Scheduling flags travel in the request header (docs/scheduling.md):
        targets     engines allowed (default: any)
        retries     resubmissions after a failure or an engine's death
        timeout     ms to wait for an engine before TimeoutError
        time_limit  ms of running time (enforced by the engine)
        after       msg_ids that must finish first
        follow      msg_ids whose engine this task must run on
        success / failure   which outcomes of after/follow satisfy them
                    (default success = true, failure = false)

    Every task has a record (s_task_t, indexed by the client's msg_id in
    `pending`) from receipt to its final state, and is always in exactly
    one place: the waiting list (unassigned, in arrival order, possibly
    blocked on dependencies) or one engine's list (assigned). Replies are
    matched by parent_header.msg_id and the engine they come from (index
    `attempts`), never by position; a reply with no record is dropped and
    counted. A task leaves only with a reply to its client: the engine's,
    or one made here (EngineError or TimeLimit when its engine died,
    TimeoutError, DependencyError, Aborted), and its record is freed then.
    Tasks with retries keep a copy of their frames for resubmission;
    others are forwarded without a copy.

    Retries: every attempt after the first is a new message (an engine
    that saw the first would drop the same msg_id as a replay): a copy of
    the original header with a fresh msg_id and date and task_id = the
    client's msg_id, signed again with the cluster key. The reply to such
    an attempt gets the original header back as its parent_header, and is
    signed again, so the client only sees the msg_id it sent. An engine
    error with metadata ename "Aborted" is final.

    targets follow the mux's rule (lp_routes_fold): folded, and refused
    with one ProtocolError when they name more engines than are
    registered or an id that is not an integer; they are kept sorted, so
    checking an engine against them is a binary search.

    `hwm` bounds the tasks outstanding on one engine; tasks beyond it wait
    here, where they can still go to whichever engine frees up first.
    Memory is bounded per client: at most LP_CLIENT_TASKS_MAX unfinished
    tasks of one client (counted by routing identity, forgotten at zero);
    more are refused. The scheduler never stops reading its clients.
    Completed task outcomes are remembered (the last LP_TASK_HISTORY) for
    dependencies; a dependency on a task id never seen, or forgotten,
    cannot be met and fails at once.
    =========================================================================
*/
#include "lp_scheduler.h"
#include "lp_actor.h"
#include "lp_reply.h"
#include "lp_proto.h"
#include "lp_util.h"
#include "lp_codec.h"
#include "lp_msg.h"
#include "lp_wire.h"
#include "lp_policy.h"

#include <malloc.h>
#include <sodium.h>

#define LP_OUTCOME_SLOTS     (2 * LP_TASK_HISTORY)  //  index slots (power of 2)

typedef enum { TASK_WAITING, TASK_ASSIGNED } s_where_t;

typedef struct {
    char msg_id [LP_TASK_ID_MAX + 1];   //  the request's msg_id (the client's)
    char attempt [LP_TASK_ID_MAX + 1];  //  msg_id of the attempt on an engine
                                        //  (the client's for the first one)
    int attempts;                       //  attempts sent so far
    s_where_t where;                    //  waiting list or an engine's list
    void *handle;                       //  its place in that list
    lp_route_t *engine;                 //  when assigned
    int64_t submitted;                  //  wall usec: received
    int64_t assigned;                   //  wall usec: last sent to an engine
    zmsg_t *msg;                        //  [client] <LPMSG> ... (for retries)
    zframe_t *client;                   //  client identity
    zframe_t *header;                   //  request header, as sent (decoded
                                        //  only for an error reply)
    int64_t timeout;                    //  ms, from the header
    int retries;                        //  resubmissions left
    int64_t deadline;                   //  start by (mono ms), 0 = none
    int64_t *targets;                   //  allowed engines, NULL = any
    size_t ntargets;
    char **after;                       //  must finish first
    size_t nafter;
    char **follow;                      //  run where these ran
    size_t nfollow;
    bool success_ok;                    //  a dependency's success counts
    bool failure_ok;                    //  a dependency's failure counts
    int avoid;                          //  engine that just failed it, -1
    bool counted;                       //  in its client's task count
} s_task_t;

//  A finished task's outcome, in the history ring; the index of outcomes
//  holds positions in this ring (see s_remember).
typedef struct {
    char msg_id [LP_TASK_ID_MAX + 1];   //  "" when the slot is unused
    bool ok;                            //  succeeded
    int engine;                         //  where it ran
} s_outcome_t;

typedef struct {
    lp_actor_t *actor;                  //  sockets, reactor, engine table
    //  Borrowed from the actor, for brevity:
    zloop_t *loop;                      //  reactor
    lp_wire_t *wire;                    //  verify / sign
    zsock_t *client;                    //  ROUTER facing clients
    zsock_t *engine;                    //  ROUTER facing engines
    //  Our own:
    lp_policy_t policy;                 //  scheme and per-engine bound (hwm)
    lp_policy_engine_t *table;          //  scratch: the engines, for a pick
    size_t table_size;                  //  slots in table
    lp_routes_t *engines;               //  lists of assigned s_task_t (own
                                        //  them; the actor's, borrowed)
    zlistx_t *waiting;                  //  unassigned s_task_t (owns)
    size_t with_deadline;               //  waiting tasks with a timeout
    int timer;                          //  timeout check timer, -1 when off
    zhashx_t *pending;                  //  msg_id -> task, not yet final (the record)
    zhashx_t *attempts;                 //  attempt msg_id -> assigned task
    zhashx_t *clients;                  //  client identity (hex) -> its
                                        //  unfinished tasks (uintptr_t)
    int64_t *fold;                      //  scratch for folded targets
    size_t fold_size;                   //  slots in fold
    lp_unmatched_t unmatched;           //  engine replies with no record
    s_outcome_t *history;               //  ring of outcomes, oldest out
    size_t history_next;
    uint32_t *outcomes;                 //  index of history: position + 1,
                                        //  0 empty (LP_OUTCOME_SLOTS)
    uint8_t outcome_key [crypto_shorthash_KEYBYTES];  //  random per scheduler
    uint64_t stamp;                     //  lru clock
    uint64_t finished;                  //  tasks ended since the last trim
    lp_store_t *store;                  //  task store hooks, NULL when off
} self_t;

int
lp_scheme_from_name (const char *name)
{
    return lp_policy_scheme (name);
}

const char *
lp_scheme_name (int scheme)
{
    return lp_policy_scheme_name (scheme);
}

//  --------------------------------------------------------------------
//  Tasks

static void
s_strings_free (char **list, size_t count)
{
    for (size_t i = 0; i < count; i++)
        free (list [i]);
    free (list);
}

static void
s_task_destroy (s_task_t **self_p)
{
    s_task_t *self = *self_p;
    if (self) {
        zmsg_destroy (&self->msg);
        zframe_destroy (&self->client);
        zframe_destroy (&self->header);
        free (self->targets);
        s_strings_free (self->after, self->nafter);
        s_strings_free (self->follow, self->nfollow);
        free (self);
        *self_p = NULL;
    }
}

//  Reads an array of msg_id strings from the header; -1 when mistyped.
static int
s_read_ids (const lp_value_t *header, const char *key, char ***list_p, size_t *count_p)
{
    const lp_value_t *array = lp_value_get (header, key);
    if (!array || lp_value_type (array) == LP_NIL)
        return 0;
    if (lp_value_type (array) != LP_ARRAY)
        return -1;
    size_t count = lp_value_len (array);
    char **list = (char **) calloc (count? count: 1, sizeof (char *));
    if (!list)
        return -1;
    *list_p = list;
    for (size_t i = 0; i < count; i++) {
        const char *id = lp_value_as_string (lp_value_at (array, i), NULL);
        if (!id || lp_value_type (lp_value_at (array, i)) != LP_STRING)
            return -1;
        list [i] = strdup (id);
        if (!list [i])
            return -1;
        *count_p = i + 1;
    }
    return 0;
}

//  Flags are read only after s_flags_why found them well typed.
static int64_t
s_header_int (const lp_value_t *header, const char *key, int64_t fallback)
{
    const lp_value_t *value = lp_value_get (header, key);
    return value && lp_value_type (value) == LP_INT? lp_value_as_int (value): fallback;
}

static bool
s_header_bool (const lp_value_t *header, const char *key, bool fallback)
{
    const lp_value_t *value = lp_value_get (header, key);
    return value && lp_value_type (value) == LP_BOOL? lp_value_as_bool (value): fallback;
}

//  A flag present with the wrong type is a bad flag: the task is refused,
//  never run with the flag's default (docs/protocol.md). Returns the
//  complaint, or NULL when every flag is well typed.
static const char *
s_flags_why (const lp_value_t *header)
{
    static const struct { const char *key; int type; const char *why; } flags [] = {
        { LP_HDR_RETRIES,    LP_INT,  "bad scheduling flag: retries must be an integer" },
        { LP_HDR_TIMEOUT,    LP_INT,  "bad scheduling flag: timeout must be an integer (ms)" },
        { LP_HDR_TIME_LIMIT, LP_INT,  "bad scheduling flag: time_limit must be an integer (ms)" },
        { LP_HDR_SUCCESS,    LP_BOOL, "bad scheduling flag: success must be a boolean" },
        { LP_HDR_FAILURE,    LP_BOOL, "bad scheduling flag: failure must be a boolean" },
    };
    for (size_t i = 0; i < sizeof flags / sizeof flags [0]; i++) {
        const lp_value_t *value = lp_value_get (header, flags [i].key);
        if (value && (int) lp_value_type (value) != flags [i].type)
            return flags [i].why;
    }
    return NULL;
}

//  Builds a task from a verified request; the message is taken when a
//  task is returned (else left to the caller, for its error reply), the
//  decoded header only read. NULL with why filled when the flags are
//  malformed.
static s_task_t *
s_task_new (self_t *self, zmsg_t **msg_p, const lp_value_t *header, char *why, size_t whylen)
{
    s_task_t *task = (s_task_t *) calloc (1, sizeof (s_task_t));
    if (!task) {
        snprintf (why, whylen, "controller out of memory");
        return NULL;
    }
    zmsg_t *msg = *msg_p;
    task->avoid = -1;
    task->client = zframe_dup (zmsg_first (msg));
    //  [client] <LPMSG> signature header ...: keep the header's bytes.
    zframe_t *frame = lp_wire_frame (msg, 1, LP_FRAME_HEADER);
    task->header = frame? zframe_dup (frame): NULL;
    const char *id = lp_value_as_string (lp_value_get (header, LP_HDR_MSG_ID), NULL);
    if (!id || strlen (id) > LP_TASK_ID_MAX) {
        snprintf (why, whylen, "a task's msg_id must have at most %d characters", LP_TASK_ID_MAX);
        s_task_destroy (&task);
        return NULL;
    }
    const char *bad_flag = s_flags_why (header);
    if (bad_flag) {
        snprintf (why, whylen, "%s", bad_flag);
        s_task_destroy (&task);
        return NULL;
    }
    snprintf (task->msg_id, sizeof task->msg_id, "%s", id);
    snprintf (task->attempt, sizeof task->attempt, "%s", id);
    task->submitted = lp_util_wall_usec ();
    task->retries = (int) s_header_int (header, LP_HDR_RETRIES, 0);
    task->timeout = s_header_int (header, LP_HDR_TIMEOUT, 0);
    task->deadline = task->timeout > 0? zclock_mono () + task->timeout: 0;
    task->success_ok = s_header_bool (header, LP_HDR_SUCCESS, true);
    task->failure_ok = s_header_bool (header, LP_HDR_FAILURE, false);
    const lp_value_t *targets = lp_value_get (header, LP_HDR_TARGETS);
    if (targets && lp_value_type (targets) == LP_ARRAY) {
        //  The targets rule of the mux: folded, refused when longer than
        //  the registered engines; kept sorted for lookups.
        size_t room = lp_routes_active (self->engines) + 1;
        if (room > self->fold_size) {
            int64_t *grown = (int64_t *) realloc (self->fold, room * sizeof *grown);
            if (grown) {
                self->fold = grown;
                self->fold_size = room;
            }
        }
        int64_t count = room <= self->fold_size
                      ? lp_routes_fold (self->engines, targets, self->fold, why, whylen): -1;
        if (count < 0) {
            if (room > self->fold_size)
                snprintf (why, whylen, "controller out of memory");
            s_task_destroy (&task);
            return NULL;
        }
        task->ntargets = (size_t) count;
        task->targets = (int64_t *) malloc ((size_t) (count + 1) * sizeof (int64_t));
        if (!task->targets) {
            //  Without its list the task would be free to go anywhere.
            snprintf (why, whylen, "controller out of memory");
            s_task_destroy (&task);
            return NULL;
        }
        memcpy (task->targets, self->fold, (size_t) count * sizeof (int64_t));
        lp_policy_sort_targets (task->targets, task->ntargets);
    }
    if (!task->client || !task->header || task->retries < 0
    ||  (targets && lp_value_type (targets) != LP_ARRAY && lp_value_type (targets) != LP_NIL)
    ||  s_read_ids (header, LP_HDR_AFTER, &task->after, &task->nafter) != 0
    ||  s_read_ids (header, LP_HDR_FOLLOW, &task->follow, &task->nfollow) != 0) {
        snprintf (why, whylen, "bad scheduling flags: targets must be an array of ids, "
                  "after/follow arrays of msg_ids, retries >= 0");
        s_task_destroy (&task);
        return NULL;
    }
    task->msg = msg;
    *msg_p = NULL;
    return task;
}

static void
s_task_free (void **item)
{
    s_task_destroy ((s_task_t **) item);
}

//  --------------------------------------------------------------------
//  Engines

static size_t
s_load (lp_route_t *engine)
{
    return zlistx_size (engine->sent);
}

//  --------------------------------------------------------------------
//  Outcomes, for dependencies

//  The outcomes are indexed by a fixed open-addressing table of history
//  positions (linear probing, backward-shift delete, at most half full),
//  allocated once with the ring: nothing is allocated per task. A hash
//  table of small entries filled one per task would leave one long-lived
//  allocation every few hundred bytes of the heap, between the tasks'
//  short-lived ones, and so pin the whole heap of a burst (measured: 17
//  of 21 MB free in the scheduler's arena after 10^5 tasks, not given back
//  by malloc_trim). Keyed hash: msg_ids are chosen by clients.

static size_t
s_outcome_home (self_t *self, const char *msg_id)
{
    uint8_t hash [crypto_shorthash_BYTES];
    crypto_shorthash (hash, (const uint8_t *) msg_id, strlen (msg_id), self->outcome_key);
    uint64_t h;
    memcpy (&h, hash, sizeof h);
    return (size_t) (h & (LP_OUTCOME_SLOTS - 1));
}

//  Index slot of msg_id's outcome, or LP_OUTCOME_SLOTS when none.
static size_t
s_outcome_slot (self_t *self, const char *msg_id)
{
    size_t i = s_outcome_home (self, msg_id);
    while (self->outcomes [i]) {
        if (streq (self->history [self->outcomes [i] - 1].msg_id, msg_id))
            return i;
        i = (i + 1) & (LP_OUTCOME_SLOTS - 1);
    }
    return LP_OUTCOME_SLOTS;
}

static s_outcome_t *
s_outcome_find (self_t *self, const char *msg_id)
{
    size_t i = s_outcome_slot (self, msg_id);
    return i < LP_OUTCOME_SLOTS? &self->history [self->outcomes [i] - 1]: NULL;
}

//  Empties index slot i, moving later entries of its probe run back so
//  lookups never stop early.
static void
s_outcome_unindex (self_t *self, size_t i)
{
    size_t mask = LP_OUTCOME_SLOTS - 1;
    self->outcomes [i] = 0;
    size_t j = i;
    while (true) {
        j = (j + 1) & mask;
        if (!self->outcomes [j])
            break;
        size_t k = s_outcome_home (self, self->history [self->outcomes [j] - 1].msg_id);
        //  The entry at j may move to i unless its home lies cyclically in (i, j]
        bool stays = i <= j? (i < k && k <= j): (i < k || k <= j);
        if (!stays) {
            self->outcomes [i] = self->outcomes [j];
            self->outcomes [j] = 0;
            i = j;
        }
    }
}

static void
s_remember (self_t *self, const char *msg_id, bool ok, int engine)
{
    size_t position = self->history_next;
    s_outcome_t *slot = &self->history [position];
    //  The oldest outcome leaves; a task id seen again keeps only its
    //  newest outcome.
    if (*slot->msg_id) {
        size_t i = s_outcome_slot (self, slot->msg_id);
        if (i < LP_OUTCOME_SLOTS && self->outcomes [i] == position + 1)
            s_outcome_unindex (self, i);
    }
    size_t same = s_outcome_slot (self, msg_id);
    if (same < LP_OUTCOME_SLOTS) {
        self->history [self->outcomes [same] - 1].msg_id [0] = 0;
        s_outcome_unindex (self, same);
    }
    snprintf (slot->msg_id, sizeof slot->msg_id, "%s", msg_id);
    slot->ok = ok;
    slot->engine = engine;
    size_t i = s_outcome_home (self, msg_id);
    while (self->outcomes [i])
        i = (i + 1) & (LP_OUTCOME_SLOTS - 1);
    self->outcomes [i] = (uint32_t) position + 1;
    self->history_next = (position + 1) % LP_TASK_HISTORY;
}

//  The key of a client in self->clients: its routing identity as hex.
static void
s_client_key (zframe_t *client, char *out, size_t size)
{
    size_t len = zframe_size (client);
    if (len > (size - 1) / 2)
        len = (size - 1) / 2;
    lp_util_hex_encode (zframe_data (client), len, out);
    out [2 * len] = 0;
}

//  Counts a task of client; -1 when the client already has
//  LP_CLIENT_TASKS_MAX unfinished (or out of memory).
static int
s_client_take (self_t *self, zframe_t *client)
{
    char key [2 * 255 + 1];
    s_client_key (client, key, sizeof key);
    uintptr_t count = (uintptr_t) zhashx_lookup (self->clients, key);
    if (count >= LP_CLIENT_TASKS_MAX)
        return -1;
    if (count == 0)
        return zhashx_insert (self->clients, key, (void *) (uintptr_t) 1);
    zhashx_update (self->clients, key, (void *) (count + 1));
    return 0;
}

//  A task of client has ended; a client with none left is forgotten.
static void
s_client_release (self_t *self, zframe_t *client)
{
    char key [2 * 255 + 1];
    s_client_key (client, key, sizeof key);
    uintptr_t count = (uintptr_t) zhashx_lookup (self->clients, key);
    if (count <= 1)
        zhashx_delete (self->clients, key);
    else
        zhashx_update (self->clients, key, (void *) (count - 1));
}

//  A task ends here: its reply (engine's or ours) has gone to the client.
static void
s_task_finished (self_t *self, s_task_t **task_p, bool ok, int engine)
{
    s_task_t *task = *task_p;
    if (task->counted)
        s_client_release (self, task->client);
    zhashx_delete (self->pending, task->msg_id);
    s_remember (self, task->msg_id, ok, engine);
    s_task_destroy (task_p);
    self->finished++;
}

//  Task store hooks (lp_store.h): what the store records of a task.
static void
s_store_request (self_t *self, s_task_t *task)
{
    if (self->store)
        lp_store_request (self->store, LP_STORE_TASK, task->msg_id, task->msg, 1, NULL, 0);
}

static void
s_store_started (self_t *self, s_task_t *task)
{
    if (self->store)
        lp_store_started (self->store, task->msg_id, task->engine->id);
}

static void
s_store_reply (self_t *self, s_task_t *task, int engine, zmsg_t *msg)
{
    if (self->store)
        lp_store_reply (self->store, task->msg_id, engine, msg, 1);
}

static void
s_store_error (self_t *self, s_task_t *task, int engine, const char *ename, const char *evalue)
{
    if (self->store)
        lp_store_error (self->store, task->msg_id, engine, ename, evalue);
}

static void
s_task_fail (self_t *self, s_task_t **task_p, int engine, const char *ename, const char *evalue)
{
    s_store_error (self, *task_p, engine, ename, evalue);
    s_task_t *task = *task_p;
    char err [128];
    lp_value_t *header = lp_codec_decode (zframe_data (task->header), zframe_size (task->header),
                                          NULL, 0, err, sizeof err);
    if (header)
        lp_reply_error (self->wire, self->client, task->client, header, engine, ename, evalue);
    else
        zsys_error ("scheduler: cannot decode a stored header: %s", err);
    lp_value_destroy (&header);
    s_task_finished (self, task_p, false, engine);
}

//  What the record knows of dependency msg_id, for lp_policy_deps: a
//  remembered outcome, else pending (has a record), else unknown.
static lp_dep_t
s_dep_state (void *arg, const char *msg_id)
{
    self_t *self = (self_t *) arg;
    s_outcome_t *outcome = s_outcome_find (self, msg_id);
    if (outcome)
        return (lp_dep_t) { outcome->ok? LP_DEP_SUCCEEDED: LP_DEP_FAILED, outcome->engine };
    return (lp_dep_t) { zhashx_lookup (self->pending, msg_id)? LP_DEP_PENDING: LP_DEP_UNKNOWN, -1 };
}

static bool
s_engine_alive (void *arg, int id)
{
    lp_route_t *engine = lp_routes_by_id (((self_t *) arg)->engines, id);
    return engine && engine->active;
}

//  Checks after and follow (lp_policy_deps); *where gets the follow
//  engine (or -1).
static lp_deps_t
s_check_deps (self_t *self, s_task_t *task, int *where, char *why, size_t whylen)
{
    lp_policy_deps_t deps = { (const char *const *) task->after, task->nafter,
                              (const char *const *) task->follow, task->nfollow,
                              task->success_ok, task->failure_ok };
    return lp_policy_deps (&deps, s_dep_state, s_engine_alive, self, where, why, whylen);
}

//  --------------------------------------------------------------------
//  Picking an engine

//  The engine that takes task now (lp_policy_pick over the engine table),
//  or NULL; where is its follow engine (or -1).
static lp_route_t *
s_pick (self_t *self, s_task_t *task, int where)
{
    size_t span = lp_routes_span (self->engines);
    if (span > self->table_size) {
        lp_policy_engine_t *grown = (lp_policy_engine_t *) realloc (self->table,
                                                                    span * sizeof *grown);
        if (!grown)
            return NULL;
        self->table = grown;
        self->table_size = span;
    }
    size_t count = 0;
    for (size_t i = 0; i < span; i++) {
        lp_route_t *engine = lp_routes_by_id (self->engines, (int64_t) i);
        if (engine)
            self->table [count++] = (lp_policy_engine_t) {
                engine->id, engine->active, s_load (engine), engine->last_used };
    }
    lp_policy_place_t place = { task->targets, task->ntargets, where, task->avoid };
    int id = lp_policy_pick (&self->policy, self->table, count, &place);
    return id >= 0? lp_routes_by_id (self->engines, id): NULL;
}

static bool
s_any_capacity (self_t *self)
{
    for (size_t i = 0; i < lp_routes_span (self->engines); i++) {
        lp_route_t *engine = lp_routes_by_id (self->engines, (int64_t) i);
        if (engine && engine->active
        &&  lp_policy_has_room (&self->policy, s_load (engine)))
            return true;
    }
    return false;
}

//  Gives an attempt after the first its own identity (docs/protocol.md,
//  "Tasks"): out (the task's frames from <LPMSG> on, after the client
//  frame) gets a copy of the original header with a fresh msg_id and
//  date and task_id = the client's msg_id, and is signed again. The new
//  id goes into task->attempt. 0 / -1.
static int
s_new_attempt (self_t *self, s_task_t *task, zmsg_t *out)
{
    char err [128];
    lp_value_t *header = lp_codec_decode (zframe_data (task->header), zframe_size (task->header),
                                          NULL, 0, err, sizeof err);
    char id [LP_ID_CHARS + 1], date [32];
    lp_util_random_id (id);
    lp_util_iso_now (date);
    int rc = -1;
    if (header
    &&  lp_value_set (header, LP_HDR_MSG_ID, lp_value_string (id)) == 0
    &&  lp_value_set (header, LP_HDR_DATE, lp_value_string (date)) == 0
    &&  lp_value_set (header, LP_HDR_TASK_ID, lp_value_string (task->msg_id)) == 0
    &&  lp_wire_replace (self->wire, out, 1, LP_FRAME_HEADER, header) == 0) {
        snprintf (task->attempt, sizeof task->attempt, "%s", id);
        rc = 0;
    }
    lp_value_destroy (&header);
    return rc;
}

//  Sends the task to engine; the task moves to the engine's list, and its
//  attempt id into the index of attempts. 0, or -1 when the engine cannot
//  be reached (the task stays unassigned, or fails when it was sent
//  without a copy and so is gone).
static int
s_assign (self_t *self, s_task_t **task_p, lp_route_t *engine)
{
    s_task_t *task = *task_p;
    bool keep = task->retries > 0;
    zmsg_t *out = keep? zmsg_dup (task->msg): task->msg;
    if (!out)
        return -1;
    if (!keep)
        task->msg = NULL;               //  zmsg_send consumes it either way
    if (task->attempts > 0 && s_new_attempt (self, task, out) != 0) {
        zmsg_destroy (&out);
        s_task_fail (self, task_p, -1, LP_ENAME_ENGINE,
                     "controller could not build the retry (out of memory)");
        return 0;
    }
    if (zmsg_pushmem (out, engine->uuid, LP_ID_CHARS) != 0
    ||  zmsg_send (&out, self->engine) != 0) {
        zmsg_destroy (&out);
        lp_routes_deactivate (self->engines, engine);
        zsys_warning ("scheduler: engine %d not reachable; not using it", engine->id);
        if (!keep) {
            char why [96];
            snprintf (why, sizeof why, "engine %d is not reachable", engine->id);
            s_task_fail (self, task_p, engine->id, LP_ENAME_ENGINE, why);
        }
        return -1;
    }
    task->attempts++;
    engine->last_used = ++self->stamp;
    task->handle = zlistx_add_end (engine->sent, task);
    if (!task->handle) {
        s_task_fail (self, task_p, engine->id, LP_ENAME_ENGINE, "controller out of memory");
        return 0;
    }
    task->where = TASK_ASSIGNED;
    task->engine = engine;
    task->assigned = lp_util_wall_usec ();
    s_store_started (self, task);
    if (zhashx_insert (self->attempts, task->attempt, task) != 0) {
        zlistx_detach (engine->sent, task->handle);
        s_task_fail (self, task_p, engine->id, LP_ENAME_ENGINE,
                     "controller out of memory: the task was sent but cannot be tracked");
    }
    return 0;
}

//  Takes an assigned task off its engine (it is then in no list).
static void
s_unassign (self_t *self, s_task_t *task)
{
    zhashx_delete (self->attempts, task->attempt);
    zlistx_detach (task->engine->sent, task->handle);
    task->handle = NULL;
    task->engine = NULL;
}

static int s_on_timer (zloop_t *loop, int timer_id, void *arg);

static void
s_enqueue (self_t *self, s_task_t *task, bool front)
{
    task->handle = front? zlistx_add_start (self->waiting, task): zlistx_add_end (self->waiting, task);
    if (!task->handle) {
        s_task_fail (self, &task, -1, LP_ENAME_ENGINE, "controller out of memory");
        return;
    }
    task->where = TASK_WAITING;
    if (task->deadline) {
        self->with_deadline++;
        //  The timeout check runs only while some task has a deadline.
        if (self->timer < 0)
            self->timer = zloop_timer (self->loop, LP_TIMEOUT_CHECK_MSEC, 0, s_on_timer, self);
    }
}

//  Places every waiting task that can go somewhere now, in arrival order.
static void
s_dispatch (self_t *self)
{
    if (!s_any_capacity (self))
        return;
    s_task_t *task = (s_task_t *) zlistx_first (self->waiting);
    while (task) {
        void *cursor = zlistx_cursor (self->waiting);
        char why [256];
        int where = -1;
        lp_deps_t deps = (task->nafter || task->nfollow)
                       ? s_check_deps (self, task, &where, why, sizeof why): LP_DEPS_MET;
        lp_route_t *engine = NULL;
        if (deps == LP_DEPS_IMPOSSIBLE
        ||  (deps == LP_DEPS_MET && (engine = s_pick (self, task, where)))) {
            //  Leaves the waiting list (detach keeps the task alive).
            zlistx_detach (self->waiting, cursor);
            if (task->deadline)
                self->with_deadline--;
            if (deps == LP_DEPS_IMPOSSIBLE)
                s_task_fail (self, &task, -1, LP_ENAME_DEPENDENCY, why);
            else
            if (s_assign (self, &task, engine) != 0) {
                //  The engine is now unused; the task goes back to the head.
                if (task)
                    s_enqueue (self, task, true);
                task = (s_task_t *) zlistx_first (self->waiting);
                continue;
            }
            if (!s_any_capacity (self))
                return;
            task = (s_task_t *) zlistx_first (self->waiting);
            continue;
        }
        task = (s_task_t *) zlistx_next (self->waiting);
    }
}

//  --------------------------------------------------------------------
//  Sockets

static void
s_handle_abort (self_t *self, zmsg_t *msg, lp_value_t *header, size_t delim)
{
    char err [128];
    lp_value_t *content = lp_wire_decode_frame (msg, delim, LP_FRAME_CONTENT, err, sizeof err);
    const lp_value_t *ids = content? lp_value_get (content, "msg_ids"): NULL;
    lp_value_t *aborted = lp_value_array ();
    lp_value_t *not_aborted = lp_value_array ();
    lp_value_t *assigned = lp_value_map ();
    if (ids && lp_value_type (ids) != LP_ARRAY)
        ids = NULL;
    //  One lookup per id in the record: waiting tasks are aborted here;
    //  tasks already on an engine are listed in assigned (msg_id ->
    //  engine), for the client to abort there (control channel).
    for (size_t i = 0; ids && aborted && not_aborted && assigned && i < lp_value_len (ids); i++) {
        const char *id = lp_value_as_string (lp_value_at (ids, i), NULL);
        if (!id || lp_value_type (lp_value_at (ids, i)) != LP_STRING)
            continue;
        s_task_t *task = (s_task_t *) zhashx_lookup (self->pending, id);
        if (task && task->where == TASK_WAITING) {
            zlistx_detach (self->waiting, task->handle);
            if (task->deadline)
                self->with_deadline--;
            s_task_fail (self, &task, -1, LP_ENAME_ABORTED, "task aborted before it started");
            lp_value_append (aborted, lp_value_string (id));
            continue;
        }
        if (task && task->engine)
            lp_value_set (assigned, id, lp_value_int (task->engine->id));
        lp_value_append (not_aborted, lp_value_string (id));
    }
    lp_msg_t *reply = lp_msg_new (LP_ABORT_REPLY);
    zmsg_t *routing = zmsg_new ();
    if (reply && routing && aborted && not_aborted && assigned) {
        zmsg_append (routing, &(zframe_t *) { zframe_dup (zmsg_first (msg)) });
        lp_msg_set_routing (reply, &routing);
        lp_msg_set_parent (reply, header);
        header = NULL;
        lp_value_t *body = lp_msg_content (reply);
        lp_value_set (body, "status", lp_value_string ("ok"));
        lp_value_set (body, "aborted", aborted);
        lp_value_set (body, "not_aborted", not_aborted);
        lp_value_set (body, "assigned", assigned);
        aborted = not_aborted = assigned = NULL;
        lp_wire_send (self->wire, &reply, self->client);
    }
    zmsg_destroy (&routing);
    lp_msg_destroy (&reply);
    lp_value_destroy (&aborted);
    lp_value_destroy (&not_aborted);
    lp_value_destroy (&assigned);
    lp_value_destroy (&header);
    lp_value_destroy (&content);
}

//  A task (verified by the skeleton; one refused for its date, because a
//  client held it too long or its clock is off, or for a full guard was
//  answered there, not left silent).
static void
s_handle_client (void *arg, zmsg_t *msg, lp_value_t *header)
{
    self_t *self = (self_t *) arg;
    size_t delim = 1;                   //  the skeleton's guarantee
    const char *type = lp_value_as_string (lp_value_get (header, LP_HDR_MSG_TYPE), NULL);
    if (type && streq (type, LP_ABORT_REQUEST)) {
        s_handle_abort (self, msg, header, delim);
        zmsg_destroy (&msg);
        return;
    }
    char why [256];
    s_task_t *task = s_task_new (self, &msg, header, why, sizeof why);
    if (!task)
        lp_reply_error (self->wire, self->client, zmsg_first (msg), header, -1,
                        LP_ENAME_PROTOCOL, why);
    else
    if (zhashx_lookup (self->pending, task->msg_id)) {
        lp_reply_error (self->wire, self->client, task->client, header, -1, LP_ENAME_PROTOCOL,
                        "a task with this msg_id is already pending");
        s_task_destroy (&task);
    }
    else {
        int where;
        s_store_request (self, task);
        if ((task->nafter || task->nfollow)
        &&  s_check_deps (self, task, &where, why, sizeof why) == LP_DEPS_IMPOSSIBLE)
            s_task_fail (self, &task, -1, LP_ENAME_DEPENDENCY, why);
        else
        if (s_client_take (self, task->client) != 0) {
            char text [160];
            snprintf (text, sizeof text, "more than %d unfinished tasks from this client: "
                      "keep at most %d in flight (docs/protocol.md, Replays)",
                      LP_CLIENT_TASKS_MAX, LP_CLIENT_TASKS_MAX);
            lp_reply_error (self->wire, self->client, task->client, header, -1,
                            LP_ENAME_PROTOCOL, text);
            s_store_error (self, task, -1, LP_ENAME_PROTOCOL, text);
            s_task_destroy (&task);
        }
        else {
            task->counted = true;
            zhashx_insert (self->pending, task->msg_id, task);
            s_enqueue (self, task, false);
            s_dispatch (self);
        }
    }
    lp_value_destroy (&header);
    zmsg_destroy (&msg);
}

//  Reads metadata.status and metadata.ename of a reply by scanning the
//  frame's bytes (lp_reply_map_str), without decoding the metadata or
//  the content. *final: an engine error that must not be retried (Aborted).
static bool
s_reply_ok (zmsg_t *msg, size_t delim, bool *final)
{
    zframe_t *metadata = lp_wire_frame (msg, delim, LP_FRAME_METADATA);
    char status [16], ename [32];
    bool ok = lp_reply_map_str (metadata, LP_META_STATUS, status, sizeof status) == 0
           && streq (status, LP_STATUS_OK);
    *final = !ok && lp_reply_map_str (metadata, LP_META_ENAME, ename, sizeof ename) == 0
           && streq (ename, LP_ENAME_ABORTED);
    return ok;
}

//  The reply to an attempt goes to the client as the reply to the
//  request it sent: routing frame = the task's client, and for a retry
//  the parent_header = the original header, signed again. 0 / -1.
static int
s_reply_as_original (self_t *self, s_task_t *task, zmsg_t *msg)
{
    zframe_t *routing = zmsg_pop (msg);
    zframe_destroy (&routing);
    routing = zframe_dup (task->client);
    if (!routing || zmsg_prepend (msg, &routing) != 0) {
        zframe_destroy (&routing);
        return -1;
    }
    if (task->attempts > 1) {
        //  [client] <LPMSG> signature header parent ...: the original
        //  header's bytes, verbatim, then a new signature.
        zframe_t *parent = lp_wire_frame (msg, 1, LP_FRAME_PARENT);
        if (!parent)
            return -1;
        zframe_reset (parent, zframe_data (task->header), zframe_size (task->header));
        if (lp_wire_resign (self->wire, msg, 1) != 0)
            return -1;
    }
    return 0;
}

//  A reply from an engine (the skeleton verified it and took the hellos).
//  Matched by parent msg_id (the attempt's) and the engine it was sent
//  to, never by position.
static void
s_handle_reply (void *arg, lp_actor_reply_t *reply)
{
    self_t *self = (self_t *) arg;
    zmsg_t *msg = reply->msg;
    size_t delim = reply->delim;
    lp_route_t *engine = reply->engine;
    s_task_t *task = engine && *reply->parent_id
                   ? (s_task_t *) zhashx_lookup (self->attempts, reply->parent_id): NULL;
    if (!task || task->engine != engine) {
        lp_reply_unmatched (&self->unmatched, "controller/task", reply->uuid, reply->parent_id);
        zmsg_destroy (&msg);
        return;
    }
    s_unassign (self, task);
    engine->done++;
    bool final = false;
    bool ok = s_reply_ok (msg, delim, &final);
    if (!ok && !final && task->retries > 0 && task->msg) {
        //  Failed with retries left: resubmit, preferably elsewhere.
        task->retries--;
        task->avoid = engine->id;
        s_enqueue (self, task, true);
    }
    else
    if (s_reply_as_original (self, task, msg) == 0) {
        s_store_reply (self, task, engine->id, msg);
        zmsg_send (&msg, self->client);
        s_task_finished (self, &task, ok, engine->id);
    }
    else
        s_task_fail (self, &task, engine->id, LP_ENAME_ENGINE,
                     "controller out of memory while passing on the reply");
    s_dispatch (self);
    zmsg_destroy (&msg);
}

//  The skeleton reads up to LP_DRAIN_BATCH messages a wake-up (receive
//  timeout 0). Memory is bounded per client, not by ceasing to read: a
//  client may have at most LP_CLIENT_TASKS_MAX unfinished tasks here
//  (more are refused with ProtocolError; the C library holds its own
//  surplus), so the scheduler always reads, an abort is always heard, a
//  task is verified as it arrives (never aged past the replay window in
//  our socket queue), and one busy client cannot stall the others.
//
//  After a batch of engine replies: a burst of tasks is over, give its
//  memory back to the system, so the controller stays small between
//  bursts (the message buffers were allocated by ZeroMQ's I/O thread and
//  freed here, which leaves free memory in several malloc arenas).
static void
s_engine_drained (void *arg)
{
    self_t *self = (self_t *) arg;
    if (zlistx_size (self->waiting) == 0 && self->finished >= LP_TRIM_AFTER_TASKS) {
        malloc_trim (0);
        self->finished = 0;
    }
}

static int
s_on_timer (zloop_t *loop, int timer_id, void *arg)
{
    (void) loop; (void) timer_id;
    self_t *self = (self_t *) arg;
    if (self->with_deadline == 0) {
        zloop_timer_end (self->loop, self->timer);
        self->timer = -1;
        return 0;
    }
    int64_t now = zclock_mono ();
    s_task_t *task = (s_task_t *) zlistx_first (self->waiting);
    while (task) {
        if (task->deadline && now >= task->deadline) {
            zlistx_detach_cur (self->waiting);
            self->with_deadline--;
            char why [128];
            snprintf (why, sizeof why, "no engine took the task within its timeout of %lld ms",
                      (long long) task->timeout);
            s_task_fail (self, &task, -1, LP_ENAME_TIMEOUT, why);
            task = (s_task_t *) zlistx_first (self->waiting);
            continue;
        }
        task = (s_task_t *) zlistx_next (self->waiting);
    }
    return 0;
}

//  --------------------------------------------------------------------
//  Hub commands

//  (the skeleton added engine id to the table)
static void
s_engine_add (void *arg, int id, const char *uuid)
{
    (void) id; (void) uuid;
    s_dispatch ((self_t *) arg);
}

static void
s_engine_remove (void *arg, lp_route_t *engine, const char *why, const char *ename)
{
    self_t *self = (self_t *) arg;
    int id = engine->id;
    lp_routes_deactivate (self->engines, engine);
    //  Newest first, so that resubmitted tasks keep their order at the head.
    //  Each retry will be a new attempt with its own msg_id.
    s_task_t *task;
    while ((task = (s_task_t *) zlistx_last (engine->sent))) {
        s_unassign (self, task);
        if (task->retries > 0 && task->msg) {
            task->retries--;
            task->avoid = id;
            s_enqueue (self, task, true);
        }
        else
            s_task_fail (self, &task, id, ename, why);
    }
    s_dispatch (self);
}

static size_t
s_waiting (void *arg)
{
    return zlistx_size (((self_t *) arg)->waiting);
}

//  --------------------------------------------------------------------

static void
s_self_destroy (self_t **self_p)
{
    self_t *self = *self_p;
    if (!self)
        return;
    //  Tasks live in the waiting list or in an engine FIFO; both own them
    //  (a task moves between them by detaching).
    //  The indexes borrow their keys from the tasks: they go first.
    zhashx_destroy (&self->pending);
    zhashx_destroy (&self->clients);
    zhashx_destroy (&self->attempts);
    lp_actor_destroy (&self->actor);
    zlistx_destroy (&self->waiting);
    free (self->fold);
    free (self->table);
    free (self->outcomes);
    free (self->history);
    free (self);
    *self_p = NULL;
}

static const lp_actor_handlers_t s_handlers = {
    .client = s_handle_client,
    .reply = s_handle_reply,
    .engine_drained = s_engine_drained,
    .add = s_engine_add,
    .remove = s_engine_remove,
    .waiting = s_waiting
};

static self_t *
s_self_new (zsock_t *pipe, lp_scheduler_config_t *config)
{
    self_t *self = (self_t *) zmalloc (sizeof (self_t));
    self->store = config->store;
    self->policy = (lp_policy_t) { config->scheme, config->hwm, { NULL, NULL } };
    self->timer = -1;
    //  The scheduler on I/O thread 1, the mux on 0 (lp_routes_io_affinity).
    lp_actor_config_t actor = {
        .ip = config->ip, .want = { config->want [0], config->want [1] }, .key = config->key, .key_len = config->key_len,
        .guard = config->guard, .name = "controller/scheduler", .channel = "task",
        .io_thread = 1, .client_rcvhwm = LP_CLIENT_RCVHWM, .answer_refused = true,
        .sent_free = s_task_free, .handlers = &s_handlers, .arg = self };
    self->actor = lp_actor_new (pipe, &actor);
    self->waiting = zlistx_new ();
    self->pending = zhashx_new ();
    self->attempts = zhashx_new ();
    self->clients = zhashx_new ();
    self->outcomes = (uint32_t *) calloc (LP_OUTCOME_SLOTS, sizeof (uint32_t));
    self->history = (s_outcome_t *) calloc (LP_TASK_HISTORY, sizeof (s_outcome_t));
    randombytes_buf (self->outcome_key, sizeof self->outcome_key);
    if (!self->actor || !self->waiting || !self->pending || !self->attempts || !self->clients
    ||  !self->outcomes || !self->history) {
        s_self_destroy (&self);
        return NULL;
    }
    self->loop = self->actor->loop;
    self->wire = self->actor->wire;
    self->client = self->actor->client;
    self->engine = self->actor->engine;
    self->engines = self->actor->engines;
    zlistx_set_destructor (self->waiting, s_task_free);
    //  No key copies (two allocations per task each): pending and
    //  attempts are keyed by the task's own msg_id / attempt strings,
    //  which do not change while the task is indexed there (an attempt id
    //  is renewed only while the task is out of `attempts`).
    zhashx_t *indexes [] = { self->pending, self->attempts };
    for (int i = 0; i < 2; i++) {
        zhashx_set_key_duplicator (indexes [i], NULL);
        zhashx_set_key_destructor (indexes [i], NULL);
    }
    return self;
}

void
lp_scheduler_actor (zsock_t *pipe, void *args)
{
    self_t *self = s_self_new (pipe, (lp_scheduler_config_t *) args);
    lp_actor_serve (self? self->actor: NULL, pipe);
    s_self_destroy (&self);
}
