/*  =========================================================================
    lp_result - the replies to one call

    A result holds one slot per reply it expects: one per target engine for
    a message the controller fans out, one per message for scatter and
    map (one message per engine). The client routes each reply here by its
    parent msg_id; the slot is the one with that msg_id whose engine is the
    reply's metadata.engine. A slot keeps what the reply carried: the
    values array, the error (ename, evalue, traceback and the formatted
    "[engine 2] LuaError: ..." text), and the output, which grows with
    iopub stream messages while the request runs and is replaced by the
    complete text of the reply's metadata.stdout when it ends.

    lp_result_get combines the slots once, lazily: a single value, an
    array of per-engine values, a concatenation (gather, map), or nil
    (push, scatter). Values handed out belong to the result.

    Every slot ends exactly once: with its reply, with ControllerLost when
    the client takes the controller for lost (lp_result_lose), with
    ClientError when the client goes (lp_result_detach). A direct request
    that the controller refuses as a whole is answered once with metadata
    engine -1: that reply ends every pending slot of its msg_id.

    As completed: each slot's index is appended to `ended` when it ends
    (room for it is taken with the slot, so ending never allocates);
    lp_result_next hands them out in that order, and lp_client_wait_any
    looks for the first result of a set whose slots have all ended.

    Abort: lp_result_abort asks the scheduler (task channel) to abort the
    pending task slots, then each engine that holds pending requests
    (control channel). The answers are collected by an internal "raw"
    result, whose slots keep the whole reply content as their value.
    =========================================================================
*/
#include "lp_client_private.h"
#include "lp_proto.h"
#include "lp_util.h"
#include "lp_value.h"
#include "lp_msg.h"

#define LP_RESULT_TAG   0x1b0c0003

typedef enum {
    SLOT_PENDING = 0,
    SLOT_OK,
    SLOT_ERROR
} slot_state_t;

typedef struct {
    char msg_id [LP_ID_CHARS + 1];      //  request this slot answers
    int engine;                         //  engine id, -1 unknown
    slot_state_t state;                 //  pending, ok, error
    lp_value_t *values;                 //  values array of the reply (owned)
    lp_value_t *nil;                    //  owned nil for "no values"
    const lp_value_t *value;            //  single value view (see header)
    char *ename;                        //  error name, NULL when ok
    char *evalue;                       //  error message
    char *traceback;                    //  Lua traceback, may be ""
    char *error;                        //  "[engine N] ename: evalue\n..."
    char *out;                          //  output so far, NUL-terminated
    size_t out_len;                     //  bytes in out
    bool out_gap;                       //  a stream message was lost: the
                                        //  rest of out waits for the reply
    size_t out_cap;                     //  allocated bytes of out
    char submitted [32];                //  ISO date the request was sent
    char started [32];                  //  ISO date the engine started it
    char completed [32];                //  ISO date the engine finished it
    int64_t first_item;                 //  map: position of its first item
                                        //  in the sequence, -1 otherwise
} slot_t;

struct _lp_result_t {
    uint32_t tag;                       //  LP_RESULT_TAG while alive
    lp_client_t *client;                //  NULL once detached
    void *handle;                       //  our entry in the client's list
    lp_combine_t combine;               //  how lp_result_get combines
    slot_t *slots;                      //  one per expected reply
    int nslots;                         //  slots used
    int slots_cap;                      //  slots allocated
    int done;                           //  slots no longer pending
    int failed;                         //  slots that are errors
    bool lost;                          //  client went away while pending
    lp_value_t *combined;               //  lp_result_get's value, lazily
    zhashx_t *index;                    //  msg_id -> first slot index + 1,
                                        //  built once there are many slots
    bool tasks;                         //  load-balanced: combine in slot order
    bool controller_lost;               //  slots ended with ControllerLost
    bool raw;                           //  internal: slot value = reply content
    lp_value_t *not_aborted;            //  after an abort: array of maps
    int *ended;                         //  slot indices in the order they
                                        //  ended (slots_cap allocated)
    int handed;                         //  ended [0..handed) returned by
                                        //  lp_result_next
};

static char *
s_strdup (const char *s)
{
    return strdup (s? s: "");
}

//  --------------------------------------------------------------------------

lp_result_t *
lp_result_new (lp_client_t *client, lp_combine_t combine)
{
    assert (client);
    lp_result_t *self = (lp_result_t *) calloc (1, sizeof (lp_result_t));
    if (!self)
        return NULL;
    self->tag = LP_RESULT_TAG;
    self->client = client;
    self->combine = combine;
    self->handle = lp_client_track_result (client, self);
    if (!self->handle) {
        free (self);
        return NULL;
    }
    return self;
}

//  Position + 1 of the first slot of msg_id, 0 when none. A result of
//  one task or a few engines is searched in place; a hash index (a
//  handful of allocations) pays only for many slots.
static intptr_t
s_first_slot (lp_result_t *self, const char *msg_id)
{
    if (self->index)
        return (intptr_t) zhashx_lookup (self->index, msg_id);
    for (int i = 0; i < self->nslots; i++)
        if (streq (self->slots [i].msg_id, msg_id))
            return i + 1;
    return 0;
}

//  Indexes slot i when it is the first of its msg_id; builds the index
//  when the slots become too many to search. 0 / -1 (out of memory).
static int
s_index_slot (lp_result_t *self, int i)
{
    if (!self->index && i + 1 < LP_RESULT_SEARCH_MAX)
        return 0;
    if (!self->index) {
        self->index = zhashx_new ();
        if (!self->index)
            return -1;
        //  Values are slot positions, not pointers: nothing to free.
        zhashx_set_destructor (self->index, NULL);
        zhashx_set_duplicator (self->index, NULL);
        for (int j = 0; j < i; j++)
            if (!zhashx_lookup (self->index, self->slots [j].msg_id)
            &&  zhashx_insert (self->index, self->slots [j].msg_id,
                               (void *) (intptr_t) (j + 1)) != 0) {
                zhashx_destroy (&self->index);
                return -1;
            }
    }
    const char *msg_id = self->slots [i].msg_id;
    if (!zhashx_lookup (self->index, msg_id)
    &&  zhashx_insert (self->index, msg_id, (void *) (intptr_t) (i + 1)) != 0)
        return -1;
    return 0;
}

static void
s_slot_clear (slot_t *slot)
{
    lp_value_destroy (&slot->values);
    lp_value_destroy (&slot->nil);
    free (slot->ename);
    free (slot->evalue);
    free (slot->traceback);
    free (slot->error);
    free (slot->out);
}

void
lp_result_destroy (lp_result_t **self_p)
{
    assert (self_p);
    lp_result_t *self = *self_p;
    if (!self)
        return;
    assert (self->tag == LP_RESULT_TAG);
    for (int i = 0; i < self->nslots; i++) {
        if (self->client)
            lp_client_unroute (self->client, self->slots [i].msg_id, self);
        s_slot_clear (&self->slots [i]);
    }
    if (self->client)
        lp_client_forget_result (self->client, self, self->handle);
    free (self->slots);
    free (self->ended);
    lp_value_destroy (&self->combined);
    lp_value_destroy (&self->not_aborted);
    zhashx_destroy (&self->index);
    self->tag = 0xDeadBeef;
    free (self);
    *self_p = NULL;
}

int
lp_result_add_slot (lp_result_t *self, const char *msg_id, int engine)
{
    assert (self);
    if (self->nslots == self->slots_cap) {
        int cap = self->slots_cap? self->slots_cap * 2: 4;
        slot_t *slots = (slot_t *) realloc (self->slots, cap * sizeof (slot_t));
        if (!slots)
            return -1;
        self->slots = slots;
        //  Room for every slot's end, taken now: ending never allocates.
        int *ended = (int *) realloc (self->ended, cap * sizeof (int));
        if (!ended)
            return -1;
        self->ended = ended;
        self->slots_cap = cap;
    }
    slot_t *slot = &self->slots [self->nslots];
    memset (slot, 0, sizeof *slot);
    snprintf (slot->msg_id, sizeof slot->msg_id, "%s", msg_id);
    slot->engine = engine;
    slot->first_item = -1;
    //  out stays NULL ("") until the first output arrives.
    //  Slots of one msg_id are added one after another: index the first.
    if (s_index_slot (self, self->nslots) != 0)
        return -1;
    self->nslots++;
    return 0;
}

int
lp_result_add_task_slot (lp_result_t *self, const char *msg_id, const char *submitted)
{
    if (lp_result_add_slot (self, msg_id, -1))
        return -1;
    snprintf (self->slots [self->nslots - 1].submitted, 32, "%s", submitted? submitted: "");
    self->tasks = true;
    return 0;
}

//  --------------------------------------------------------------------------
//  Incoming messages

static int
s_msg_engine (lp_msg_t *msg)
{
    const lp_value_t *engine = lp_value_get (lp_msg_metadata (msg), LP_META_ENGINE);
    if (engine && lp_value_type (engine) == LP_INT)
        return (int) lp_value_as_int (engine);
    return -1;
}

//  The pending slot for this parent msg_id and engine.
static slot_t *
s_find_slot (lp_result_t *self, const char *parent_id, int engine)
{
    slot_t *fallback = NULL;
    intptr_t first = s_first_slot (self, parent_id);
    if (first == 0)
        return NULL;
    for (int i = (int) first - 1; i < self->nslots; i++) {
        slot_t *slot = &self->slots [i];
        if (!streq (slot->msg_id, parent_id))
            break;
        if (slot->state != SLOT_PENDING)
            continue;
        if (slot->engine == engine)
            return slot;
        if (!fallback && (engine == -1 || slot->engine == -1))
            fallback = slot;
    }
    return fallback;
}

static void
s_slot_set_out (slot_t *slot, const char *text, size_t len)
{
    char *out = (char *) malloc (len + 1);
    if (!out)
        return;
    memcpy (out, text, len);
    out [len] = 0;
    free (slot->out);
    slot->out = out;
    slot->out_len = len;
    slot->out_cap = len + 1;
}

static bool
s_slot_append_out (slot_t *slot, const char *text, size_t len)
{
    if (slot->out_len + len + 1 > slot->out_cap) {
        size_t cap = slot->out_cap? slot->out_cap * 2: 64;
        while (cap < slot->out_len + len + 1)
            cap *= 2;
        char *out = (char *) realloc (slot->out, cap);
        if (!out)
            return false;
        slot->out = out;
        slot->out_cap = cap;
    }
    memcpy (slot->out + slot->out_len, text, len);
    slot->out_len += len;
    slot->out [slot->out_len] = 0;
    return true;
}

static void
s_slot_fail (lp_result_t *self, slot_t *slot, const char *ename,
             const char *evalue, const char *traceback)
{
    slot->state = SLOT_ERROR;
    slot->ename = s_strdup (ename);
    slot->evalue = s_strdup (evalue);
    slot->traceback = s_strdup (traceback);
    char engine [32];
    if (slot->engine >= 0)
        snprintf (engine, sizeof engine, "%d", slot->engine);
    else
        snprintf (engine, sizeof engine, "?");
    size_t size = strlen (engine) + strlen (ename) + strlen (evalue)
                + strlen (traceback) + 32;
    slot->error = (char *) malloc (size);
    if (slot->error) {
        if (streq (ename, "ControllerLost"))
            snprintf (slot->error, size, "%s: %s", ename, evalue);
        else
        if (*traceback)
            snprintf (slot->error, size, "[engine %s] %s: %s\n%s",
                      engine, ename, evalue, traceback);
        else
            snprintf (slot->error, size, "[engine %s] %s: %s",
                      engine, ename, evalue);
    }
    self->ended [self->done++] = (int) (slot - self->slots);
    self->failed++;
}

static const char *
s_content_string (lp_value_t *content, const char *key, const char *fallback)
{
    const lp_value_t *v = lp_value_get (content, key);
    if (v && lp_value_type (v) == LP_STRING) {
        const char *s = lp_value_as_string (v, NULL);
        return s? s: fallback;
    }
    return fallback;
}

void
lp_result_handle_reply (lp_result_t *self, lp_msg_t *msg)
{
    assert (self);
    const char *parent_id = lp_msg_parent_id (msg);
    if (!parent_id)
        return;
    int engine = s_msg_engine (msg);
    slot_t *slot = s_find_slot (self, parent_id, engine);
    if (!slot)
        return;                 //  duplicate or unexpected
    lp_value_destroy (&self->combined);
    lp_value_t *content = lp_msg_content (msg);
    const char *status = s_content_string (content, LP_CONTENT_STATUS, "");
    if (engine == -1 && slot->engine != -1 && !streq (status, LP_STATUS_OK)) {
        //  The controller refused a direct request as a whole: one
        //  error for every engine it named.
        intptr_t first = s_first_slot (self, parent_id);
        for (int i = (int) first - 1; first && i < self->nslots; i++) {
            slot_t *each = &self->slots [i];
            if (!streq (each->msg_id, parent_id))
                break;
            if (each->state == SLOT_PENDING)
                s_slot_fail (self, each,
                             s_content_string (content, LP_CONTENT_ENAME, "ProtocolError"),
                             s_content_string (content, LP_CONTENT_EVALUE, "request refused"),
                             s_content_string (content, LP_CONTENT_TRACEBACK, ""));
        }
        return;
    }
    if (slot->engine == -1)
        slot->engine = engine;

    const lp_value_t *when = lp_value_get (lp_msg_metadata (msg), LP_META_STARTED);
    if (when && lp_value_type (when) == LP_STRING)
        snprintf (slot->started, sizeof slot->started, "%s", lp_value_as_string (when, NULL));
    when = lp_value_get (lp_msg_metadata (msg), LP_META_COMPLETED);
    if (when && lp_value_type (when) == LP_STRING)
        snprintf (slot->completed, sizeof slot->completed, "%s", lp_value_as_string (when, NULL));
    const lp_value_t *out = lp_value_get (lp_msg_metadata (msg), LP_META_STDOUT);
    if (out && lp_value_type (out) == LP_STRING) {
        size_t len = 0;
        const char *text = lp_value_as_string (out, &len);
        if (text)
            s_slot_set_out (slot, text, len);
    }
    if (!streq (status, LP_STATUS_OK)) {
        s_slot_fail (self, slot,
                     s_content_string (content, LP_CONTENT_ENAME, "ProtocolError"),
                     s_content_string (content, LP_CONTENT_EVALUE,
                                       "reply without status \"ok\""),
                     s_content_string (content, LP_CONTENT_TRACEBACK, ""));
        return;
    }
    const lp_value_t *values = lp_value_get (content, "values");
    if (self->raw) {
        //  Internal result: the slot's value is the whole content
        slot->values = lp_value_array ();
        lp_value_t *copy = lp_value_dup (content);
        if (!slot->values || !copy || lp_value_append (slot->values, copy)) {
            if (!slot->values)
                lp_value_destroy (&copy);
            s_slot_fail (self, slot, "MemoryError", "out of memory in the client", "");
            return;
        }
    }
    else
    if (values && (lp_value_type (values) == LP_ARRAY
               ||  lp_value_type (values) == LP_TYPED))
        slot->values = lp_value_take (content, "values");   //  no copy
    else {
        slot->values = lp_value_array ();
        const lp_value_t *interrupted = lp_value_get (content, "interrupted");
        if (slot->values && interrupted)
            lp_value_append (slot->values, lp_value_dup (interrupted));
    }
    if (!slot->values) {
        s_slot_fail (self, slot, "MemoryError", "out of memory in the client", "");
        return;
    }
    if (lp_value_type (slot->values) == LP_ARRAY && lp_value_len (slot->values) == 0) {
        slot->nil = lp_value_nil ();
        slot->value = slot->nil;
    }
    else
    if (lp_value_type (slot->values) == LP_ARRAY && lp_value_len (slot->values) == 1)
        slot->value = lp_value_at (slot->values, 0);
    else
        slot->value = slot->values;
    if (!slot->value) {
        s_slot_fail (self, slot, "MemoryError", "out of memory in the client", "");
        return;
    }
    slot->state = SLOT_OK;
    self->ended [self->done++] = (int) (slot - self->slots);
}

void
lp_result_handle_stream (lp_result_t *self, lp_msg_t *msg)
{
    assert (self);
    const char *parent_id = lp_msg_parent_id (msg);
    if (!parent_id)
        return;
    slot_t *slot = s_find_slot (self, parent_id, s_msg_engine (msg));
    if (!slot)
        return;                 //  reply already here: it has the full text
    //  A stream message may be lost on the way (a PUB socket drops what
    //  no subscription has reached yet): its "offset" then differs from
    //  what we hold.
    //  From there on the output waits for the reply's complete text, so
    //  what was shown stays a prefix of it and no line goes missing.
    if (slot->out_gap)
        return;
    const lp_value_t *text = lp_value_get (lp_msg_content (msg), "text");
    const lp_value_t *offset = lp_value_get (lp_msg_content (msg), "offset");
    if (offset && lp_value_type (offset) == LP_INT
    &&  lp_value_as_int (offset) != (int64_t) slot->out_len) {
        slot->out_gap = true;
        return;
    }
    if (text && (lp_value_type (text) == LP_STRING || lp_value_type (text) == LP_BYTES)) {
        size_t len = 0;
        const char *s = lp_value_as_string (text, &len);
        if (s && !s_slot_append_out (slot, s, len))
            slot->out_gap = true;
    }
}

bool
lp_result_waits_for (lp_result_t *self, const char *msg_id)
{
    assert (self);
    intptr_t first = s_first_slot (self, msg_id);
    for (int i = first? (int) first - 1: self->nslots; i < self->nslots; i++) {
        if (!streq (self->slots [i].msg_id, msg_id))
            break;
        if (self->slots [i].state == SLOT_PENDING)
            return true;
    }
    return false;
}

void
lp_result_lose (lp_result_t *self, const char *evalue)
{
    assert (self);
    for (int i = 0; i < self->nslots; i++)
        if (self->slots [i].state == SLOT_PENDING) {
            self->controller_lost = true;
            s_slot_fail (self, &self->slots [i], "ControllerLost", evalue, "");
        }
    if (self->controller_lost)
        lp_value_destroy (&self->combined);
}

void
lp_result_detach (lp_result_t *self)
{
    assert (self);
    self->client = NULL;
    self->handle = NULL;
    for (int i = 0; i < self->nslots; i++)
        if (self->slots [i].state == SLOT_PENDING) {
            self->lost = true;
            s_slot_fail (self, &self->slots [i], "ClientError", "client destroyed", "");
        }
}

//  --------------------------------------------------------------------------
//  Waiting

bool
lp_result_ready (lp_result_t *self)
{
    assert (self);
    if (self->client)
        lp_client_clear_error (self->client);
    if (self->done < self->nslots && self->client)
        lp_client_poll (self->client, 0);
    return self->done >= self->nslots;
}

int
lp_result_done (lp_result_t *self)
{
    assert (self);
    if (self->client)
        lp_client_clear_error (self->client);
    if (self->done < self->nslots && self->client)
        lp_client_poll (self->client, 0);
    return self->done;
}

int
lp_result_wait (lp_result_t *self, int timeout_ms)
{
    assert (self);
    assert (self->tag == LP_RESULT_TAG);
    if (self->client)
        lp_client_clear_error (self->client);
    int64_t deadline = zclock_mono () + (timeout_ms < 0? 0: timeout_ms);
    while (self->done < self->nslots) {
        if (!self->client)
            break;
        int64_t left = deadline - zclock_mono ();
        if (left <= 0) {
            lp_client_fail (self->client, LP_ETIMEOUT, "timed out after %d ms: %d of %d "
                            "replies pending", timeout_ms,
                            self->nslots - self->done, self->nslots);
            return LP_ETIMEOUT;
        }
        if (lp_client_poll (self->client, (int) left) == -1) {
            int code = lp_client_errcode (self->client);
            return code == LP_OK? LP_EINVAL: code;
        }
    }
    if (self->controller_lost) {
        const char *text = "controller lost";
        for (int i = 0; i < self->nslots; i++)
            if (self->slots [i].ename && streq (self->slots [i].ename, "ControllerLost")) {
                text = self->slots [i].evalue;
                break;
            }
        if (self->client)
            lp_client_fail (self->client, LP_ELOST, "%s", text);
        else
            lp_set_last_error ("%s", text);
        return LP_ELOST;
    }
    if (self->lost) {
        lp_set_last_error ("client destroyed");
        return LP_ECLOSED;
    }
    return LP_OK;
}

//  --------------------------------------------------------------------------
//  As completed: slots in the order they ended, results of a set

//  The first result of results [0..n) whose slots have all ended, its
//  position; -1 when none. A NULL entry is skipped.
static int
s_first_ready (lp_result_t *const *results, int n)
{
    for (int i = 0; i < n; i++)
        if (results [i] && results [i]->done >= results [i]->nslots)
            return i;
    return -1;
}

int
lp_client_wait_any (lp_client_t *client, lp_result_t *const *results, int n,
                    int timeout_ms)
{
    assert (client);
    bool any = false;
    for (int i = 0; results && i < n; i++)
        if (results [i]) {
            assert (results [i]->tag == LP_RESULT_TAG);
            //  A result of another client would never end by our polls.
            if (results [i]->client && results [i]->client != client) {
                lp_client_fail (client, LP_EINVAL, "wait_any: result %d belongs to "
                                "another client", i);
                return -1;
            }
            any = true;
        }
    if (!any) {
        lp_client_fail (client, LP_EINVAL, "wait_any: no results");
        return -1;
    }
    int64_t deadline = zclock_mono () + (timeout_ms < 0? 0: timeout_ms);
    while (true) {
        int ready = s_first_ready (results, n);
        if (ready >= 0)
            return ready;
        int64_t left = deadline - zclock_mono ();
        //  Always one look at the sockets, also with a timeout of 0
        int handled = lp_client_poll (client, left > 0? (int) left: 0);
        if (handled == -1)
            return -1;
        ready = s_first_ready (results, n);
        if (ready >= 0)
            return ready;
        if (left <= 0) {
            lp_client_fail (client, LP_ETIMEOUT, "wait_any: none of %d results ended "
                            "within %d ms", n, timeout_ms);
            return -1;
        }
    }
}

int
lp_result_next (lp_result_t *self, int timeout_ms, int *slot_p)
{
    assert (self);
    assert (self->tag == LP_RESULT_TAG);
    assert (slot_p);
    *slot_p = -1;
    if (self->handed == self->nslots)
        return LP_OK;                   //  every slot was handed out
    int64_t deadline = zclock_mono () + (timeout_ms < 0? 0: timeout_ms);
    bool looked = false;
    while (self->handed == self->done && self->client) {
        int64_t left = deadline - zclock_mono ();
        if (left <= 0 && looked) {
            lp_client_fail (self->client, LP_ETIMEOUT, "timed out after %d ms: %d of %d "
                            "replies pending", timeout_ms,
                            self->nslots - self->done, self->nslots);
            return LP_ETIMEOUT;
        }
        looked = true;
        if (lp_client_poll (self->client, left > 0? (int) left: 0) == -1) {
            int code = lp_client_errcode (self->client);
            return code == LP_OK? LP_EINVAL: code;
        }
    }
    if (self->handed == self->done) {
        lp_set_last_error ("client destroyed");
        return LP_ECLOSED;
    }
    *slot_p = self->ended [self->handed++];
    return LP_OK;
}

lp_state_t
lp_result_state (lp_result_t *self, int i)
{
    assert (self);
    if (i < 0 || i >= self->nslots)
        return LP_STATE_PENDING;
    return self->slots [i].state == SLOT_OK? LP_STATE_OK:
           self->slots [i].state == SLOT_ERROR? LP_STATE_ERROR: LP_STATE_PENDING;
}

void
lp_result_set_first_item (lp_result_t *self, int64_t first)
{
    assert (self);
    assert (self->nslots > 0);
    self->slots [self->nslots - 1].first_item = first;
}

int64_t
lp_result_first_item (lp_result_t *self, int i)
{
    assert (self);
    if (i < 0 || i >= self->nslots)
        return -1;
    return self->slots [i].first_item;
}

lp_value_t *
lp_result_take (lp_result_t *self, int i)
{
    assert (self);
    assert (self->tag == LP_RESULT_TAG);
    if (i < 0 || i >= self->nslots || self->slots [i].state != SLOT_OK) {
        if (self->client)
            lp_client_fail (self->client, LP_EINVAL, "take: reply %d is %s", i,
                            i < 0 || i >= self->nslots? "out of range":
                            self->slots [i].state == SLOT_PENDING? "pending": "an error");
        else
            lp_set_last_error ("take: reply %d has no value", i);
        return NULL;
    }
    slot_t *slot = &self->slots [i];
    lp_value_t *taken = NULL;
    if (!slot->nil)
        slot->nil = lp_value_nil ();    //  what the slot holds afterwards
    if (!slot->nil) {
        if (self->client)
            lp_client_fail (self->client, LP_ENOMEM, "out of memory");
        return NULL;
    }
    if (slot->value == slot->nil)
        taken = lp_value_nil ();
    else
    if (slot->value == slot->values) {
        //  Several values, or one typed sequence: the whole array
        lp_value_t *empty = lp_value_array ();
        if (empty) {
            taken = slot->values;
            slot->values = empty;
            slot->value = slot->nil;
        }
    }
    else {
        //  One value, element 0 of values: a nil takes its place there
        taken = lp_value_take_at (slot->values, 0);
        if (taken)
            slot->value = lp_value_at (slot->values, 0);
    }
    if (!taken) {
        if (self->client)
            lp_client_fail (self->client, LP_ENOMEM, "out of memory");
        return NULL;
    }
    lp_value_destroy (&self->combined);
    return taken;
}

//  --------------------------------------------------------------------------
//  Accessors

int
lp_result_count (lp_result_t *self)
{
    assert (self);
    return self->nslots;
}

int
lp_result_failed (lp_result_t *self)
{
    assert (self);
    return self->failed;
}

static slot_t *
s_slot (lp_result_t *self, int i)
{
    assert (self);
    if (i < 0 || i >= self->nslots)
        return NULL;
    return &self->slots [i];
}

const lp_value_t *
lp_result_value (lp_result_t *self, int i)
{
    slot_t *slot = s_slot (self, i);
    return slot && slot->state == SLOT_OK? slot->value: NULL;
}

const lp_value_t *
lp_result_values (lp_result_t *self, int i)
{
    slot_t *slot = s_slot (self, i);
    return slot && slot->state == SLOT_OK? slot->values: NULL;
}

const char *
lp_result_error (lp_result_t *self, int i)
{
    slot_t *slot = s_slot (self, i);
    return slot && slot->state == SLOT_ERROR? slot->error: NULL;
}

const char *
lp_result_ename (lp_result_t *self, int i)
{
    slot_t *slot = s_slot (self, i);
    return slot && slot->state == SLOT_ERROR? slot->ename: NULL;
}

const char *
lp_result_evalue (lp_result_t *self, int i)
{
    slot_t *slot = s_slot (self, i);
    return slot && slot->state == SLOT_ERROR? slot->evalue: NULL;
}

const char *
lp_result_traceback (lp_result_t *self, int i)
{
    slot_t *slot = s_slot (self, i);
    return slot && slot->state == SLOT_ERROR? slot->traceback: NULL;
}

const char *
lp_result_stdout (lp_result_t *self, int i)
{
    slot_t *slot = s_slot (self, i);
    return slot && slot->out? slot->out: "";
}

int
lp_result_engine (lp_result_t *self, int i)
{
    slot_t *slot = s_slot (self, i);
    return slot? slot->engine: -1;
}

lp_value_t *
lp_result_msg_ids (lp_result_t *self)
{
    assert (self);
    lp_value_t *ids = lp_value_array ();
    for (int i = 0; ids && i < self->nslots; i++) {
        const char *id = self->slots [i].msg_id;
        //  Slots of one msg_id are next to each other
        if (i > 0 && streq (self->slots [i - 1].msg_id, id))
            continue;
        if (lp_value_append (ids, lp_value_string (id)) != 0)
            lp_value_destroy (&ids);
    }
    return ids;
}

const char *
lp_result_msg_id (lp_result_t *self, int i)
{
    slot_t *slot = s_slot (self, i);
    return slot? slot->msg_id: NULL;
}

//  Seconds since the epoch of an ISO 8601 UTC date, -1 when not one.
static double
s_iso_seconds (const char *iso)
{
    struct tm tm = { 0 };
    int usec = 0;
    if (!iso || sscanf (iso, "%4d-%2d-%2dT%2d:%2d:%2d.%6dZ", &tm.tm_year, &tm.tm_mon,
                        &tm.tm_mday, &tm.tm_hour, &tm.tm_min, &tm.tm_sec, &usec) != 7)
        return -1;
    tm.tm_year -= 1900;
    tm.tm_mon -= 1;
    return (double) timegm (&tm) + usec / 1e6;
}

double
lp_result_submitted (lp_result_t *self, int i)
{
    slot_t *slot = s_slot (self, i);
    return slot? s_iso_seconds (slot->submitted): -1;
}

double
lp_result_started (lp_result_t *self, int i)
{
    slot_t *slot = s_slot (self, i);
    return slot? s_iso_seconds (slot->started): -1;
}

double
lp_result_completed (lp_result_t *self, int i)
{
    slot_t *slot = s_slot (self, i);
    return slot? s_iso_seconds (slot->completed): -1;
}

//  Appends {msg_id, engine, reason} to self->not_aborted. 0 / -1.
static int
s_not_aborted (lp_result_t *self, const char *msg_id, int engine, const char *reason)
{
    lp_value_t *item = lp_value_map ();
    if (!item
    ||  lp_value_set (item, "msg_id", lp_value_string (msg_id))
    ||  lp_value_set (item, "engine", lp_value_int (engine))
    ||  lp_value_set (item, "reason", lp_value_string (reason))) {
        lp_value_destroy (&item);
        return -1;
    }
    return lp_value_append (self->not_aborted, item);   //  item taken
}

//  The string elements of content[key] (an array), or NULL.
static const lp_value_t *
s_list (const lp_value_t *content, const char *key)
{
    const lp_value_t *list = content? lp_value_get (content, key): NULL;
    return list && lp_value_type (list) == LP_ARRAY? list: NULL;
}

static bool
s_list_has (const lp_value_t *list, const char *msg_id)
{
    for (size_t i = 0; list && i < lp_value_len (list); i++) {
        const char *id = lp_value_as_string (lp_value_at (list, i), NULL);
        if (id && streq (id, msg_id))
            return true;
    }
    return false;
}

//  Per engine: the msg_ids to abort there (map "engine" -> array).
typedef struct {
    int engine;                         //  engine id
    lp_value_t *ids;                    //  array of msg_id strings
} s_target_t;

static int
s_target_add (s_target_t **targets_p, int *ntargets, int engine, const char *msg_id)
{
    s_target_t *targets = *targets_p;
    int k;
    for (k = 0; k < *ntargets; k++)
        if (targets [k].engine == engine)
            break;
    if (k == *ntargets) {
        s_target_t *grown = (s_target_t *) realloc (targets, (k + 1) * sizeof (s_target_t));
        if (!grown)
            return -1;
        *targets_p = targets = grown;
        targets [k].engine = engine;
        targets [k].ids = lp_value_array ();
        if (!targets [k].ids)
            return -1;
        (*ntargets)++;
    }
    if (s_list_has (targets [k].ids, msg_id))
        return 0;
    return lp_value_append (targets [k].ids, lp_value_string (msg_id));
}

//  Sends one abort_request (content {msg_ids}) on channel into raw, one
//  slot: engine (control) or -1 (task). 0 / -1.
static int
s_send_abort (lp_client_t *client, lp_result_t *raw, lp_channel_t channel,
              int engine, lp_value_t *ids)
{
    lp_msg_t *msg = lp_msg_new (LP_ABORT_REQUEST);
    lp_value_t *copy = lp_value_dup (ids);
    if (!msg || !copy || lp_value_set (lp_msg_content (msg), "msg_ids", copy)) {
        if (msg && copy)
            copy = NULL;                //  taken on failure too
        lp_value_destroy (&copy);
        lp_msg_destroy (&msg);
        lp_client_set_error (client, "out of memory");
        return -1;
    }
    if (channel == LP_CHANNEL_CONTROL) {
        lp_value_t *targets = lp_value_array ();
        if (!targets || lp_value_append (targets, lp_value_int (engine))
        ||  lp_value_set (lp_msg_header (msg), LP_HDR_TARGETS, targets)) {
            lp_msg_destroy (&msg);
            lp_client_set_error (client, "out of memory");
            return -1;
        }
    }
    if (lp_result_add_slot (raw, lp_msg_id (msg), engine)) {
        lp_msg_destroy (&msg);
        lp_client_set_error (client, "out of memory");
        return -1;
    }
    char sent [LP_ID_CHARS + 1];
    return lp_client_send (client, channel, &msg, raw, sent);
}

int
lp_result_abort (lp_result_t *self)
{
    assert (self);
    assert (self->tag == LP_RESULT_TAG);
    lp_client_t *client = self->client;
    if (!client) {
        lp_set_last_error ("client destroyed");
        return -1;
    }
    lp_client_poll (client, 0);         //  take in what has ended
    lp_value_destroy (&self->not_aborted);
    self->not_aborted = lp_value_array ();
    lp_value_t *task_ids = lp_value_array ();
    s_target_t *targets = NULL;
    int ntargets = 0;
    lp_result_t *tasks_raw = NULL, *control_raw = NULL;
    int aborted = 0;
    int rc = -1;
    if (!self->not_aborted || !task_ids)
        goto nomem;

    //  Pending slots: tasks go to the scheduler, direct requests to
    //  their engines.
    for (int i = 0; i < self->nslots; i++) {
        slot_t *slot = &self->slots [i];
        if (slot->state != SLOT_PENDING)
            continue;
        if (self->tasks) {
            if (lp_client_unhold (client, slot->msg_id)) {
                s_slot_fail (self, slot, LP_ENAME_ABORTED,
                             "task aborted before it was sent", "");
                aborted++;
                continue;
            }
            if (!s_list_has (task_ids, slot->msg_id)
            &&  lp_value_append (task_ids, lp_value_string (slot->msg_id)))
                goto nomem;
        }
        else
        if (s_target_add (&targets, &ntargets, slot->engine, slot->msg_id))
            goto nomem;
    }
    if (lp_value_len (task_ids) > 0) {
        tasks_raw = lp_result_new (client, LP_COMBINE_EACH);
        if (!tasks_raw)
            goto nomem;
        tasks_raw->raw = true;
        if (s_send_abort (client, tasks_raw, LP_CHANNEL_TASK, -1, task_ids))
            goto done;
        int wrc = lp_result_wait (tasks_raw, LP_CLIENT_ABORT_MSEC);
        if (wrc == LP_ETIMEOUT)
            lp_client_fail (client, LP_ETIMEOUT, "abort: the scheduler did not answer "
                            "within %d ms", LP_CLIENT_ABORT_MSEC);
        if (wrc != LP_OK)
            goto done;                  //  the error is the client's
        if (lp_result_failed (tasks_raw) > 0) {
            lp_client_fail (client, LP_EREMOTE, "abort refused by the scheduler: %s",
                            lp_result_error (tasks_raw, 0));
            goto done;
        }
        const lp_value_t *reply = lp_result_value (tasks_raw, 0);
        const lp_value_t *done_ids = s_list (reply, "aborted");
        const lp_value_t *assigned = reply? lp_value_get (reply, "assigned"): NULL;
        aborted += done_ids? (int) lp_value_len (done_ids): 0;
        for (size_t i = 0; i < lp_value_len (task_ids); i++) {
            const char *id = lp_value_as_string (lp_value_at (task_ids, i), NULL);
            if (s_list_has (done_ids, id))
                continue;
            const lp_value_t *engine = assigned && lp_value_type (assigned) == LP_MAP?
                lp_value_get (assigned, id): NULL;
            if (engine && lp_value_type (engine) == LP_INT) {
                if (s_target_add (&targets, &ntargets, (int) lp_value_as_int (engine), id))
                    goto nomem;
            }
            else
            if (s_not_aborted (self, id, -1, "running or finished"))
                goto nomem;
        }
    }
    if (ntargets > 0) {
        control_raw = lp_result_new (client, LP_COMBINE_EACH);
        if (!control_raw)
            goto nomem;
        control_raw->raw = true;
        for (int k = 0; k < ntargets; k++)
            if (s_send_abort (client, control_raw, LP_CHANNEL_CONTROL,
                              targets [k].engine, targets [k].ids))
                goto done;
        int wrc = lp_result_wait (control_raw, LP_CLIENT_ABORT_MSEC);
        if (wrc == LP_ELOST || wrc == LP_EINTR || wrc == LP_ECLOSED)
            goto done;
        //  Slot k answers for targets [k] (one slot per message).
        for (int k = 0; k < ntargets; k++) {
            const lp_value_t *reply = lp_result_value (control_raw, k);
            const lp_value_t *done_ids = s_list (reply, "aborted");
            char reason [128];
            snprintf (reason, sizeof reason, "engine %d did not answer the abort",
                      targets [k].engine);
            for (size_t i = 0; i < lp_value_len (targets [k].ids); i++) {
                const char *id = lp_value_as_string (lp_value_at (targets [k].ids, i), NULL);
                if (s_list_has (done_ids, id))
                    aborted++;
                else
                if (s_not_aborted (self, id, targets [k].engine,
                                   reply? "running or finished": reason))
                    goto nomem;
            }
        }
    }
    rc = aborted;
    lp_client_clear_error (client);     //  an engine that did not answer is
    goto done;                          //  in not_aborted, not an error
nomem:
    lp_client_fail (client, LP_ENOMEM, "out of memory");
done:
    for (int k = 0; k < ntargets; k++)
        lp_value_destroy (&targets [k].ids);
    free (targets);
    lp_value_destroy (&task_ids);
    lp_result_destroy (&tasks_raw);
    lp_result_destroy (&control_raw);
    return rc;
}

const lp_value_t *
lp_result_not_aborted (lp_result_t *self)
{
    assert (self);
    return self->not_aborted;
}

//  --------------------------------------------------------------------------
//  Combining

//  Appends the elements of a typed array to an array as ints or numbers.
static int
s_append_typed (lp_value_t *array, const lp_value_t *typed)
{
    size_t n = lp_value_len (typed);
    const void *data = lp_value_typed_data (typed);
    lp_dtype_t dtype = lp_value_dtype (typed);
    for (size_t i = 0; i < n; i++) {
        lp_value_t *item = NULL;
        switch (dtype) {
            case LP_DTYPE_F64: item = lp_value_number (((const double *) data) [i]); break;
            case LP_DTYPE_F32: item = lp_value_number (((const float *) data) [i]); break;
            case LP_DTYPE_I64: item = lp_value_int (((const int64_t *) data) [i]); break;
            case LP_DTYPE_I32: item = lp_value_int (((const int32_t *) data) [i]); break;
            case LP_DTYPE_U8:  item = lp_value_int (((const uint8_t *) data) [i]); break;
            default: return -1;
        }
        if (!item || lp_value_append (array, item))
            return -1;
    }
    return 0;
}

//  Concatenation of parts, in order: a typed array when every part is a
//  typed array of one dtype (a sequence when every part is one), else an
//  array (typed parts expanded, other non-array parts appended as one
//  element each).
static lp_value_t *
s_concat (const lp_value_t **parts, int nparts)
{
    bool typed = nparts > 0;
    size_t total = 0;
    for (int i = 0; i < nparts; i++) {
        if (lp_value_type (parts [i]) != LP_TYPED
        ||  lp_value_dtype (parts [i]) != lp_value_dtype (parts [0]))
            typed = false;
        else
            total += lp_value_len (parts [i]);
    }
    if (typed) {
        lp_dtype_t dtype = lp_value_dtype (parts [0]);
        size_t size = lp_dtype_size (dtype);
        lp_value_t *whole = lp_value_typed (dtype, total);
        if (!whole)
            return NULL;
        char *data = (char *) lp_value_typed_data (whole);
        size_t at = 0;
        for (int i = 0; i < nparts; i++) {
            size_t bytes = lp_value_len (parts [i]) * size;
            if (bytes)
                memcpy (data + at, lp_value_typed_data (parts [i]), bytes);
            at += bytes;
        }
        bool sequence = true;
        for (int i = 0; i < nparts; i++)
            sequence = sequence && lp_value_typed_is_sequence (parts [i]);
        lp_value_typed_set_sequence (whole, sequence);
        return whole;
    }
    lp_value_t *whole = lp_value_array ();
    if (!whole)
        return NULL;
    for (int i = 0; i < nparts; i++) {
        const lp_value_t *part = parts [i];
        int rc = 0;
        if (lp_value_type (part) == LP_ARRAY) {
            size_t n = lp_value_len (part);
            for (size_t j = 0; j < n && rc == 0; j++) {
                lp_value_t *item = lp_value_dup (lp_value_at (part, j));
                rc = item? lp_value_append (whole, item): -1;
            }
        }
        else
        if (lp_value_type (part) == LP_TYPED)
            rc = s_append_typed (whole, part);
        else {
            lp_value_t *item = lp_value_dup (part);
            rc = item? lp_value_append (whole, item): -1;
        }
        if (rc) {
            lp_value_destroy (&whole);
            return NULL;
        }
    }
    return whole;
}

//  Slot indices in ascending engine order (stable).
static int *
s_engine_order (lp_result_t *self)
{
    int *order = (int *) malloc ((self->nslots + 1) * sizeof (int));
    if (!order)
        return NULL;
    for (int i = 0; i < self->nslots; i++) {
        int j = i;
        while (j > 0 && self->slots [order [j - 1]].engine > self->slots [i].engine) {
            order [j] = order [j - 1];
            j--;
        }
        order [j] = i;
    }
    return order;
}

const lp_value_t *
lp_result_get (lp_result_t *self)
{
    assert (self);
    if (self->done < self->nslots || self->failed > 0)
        return NULL;
    if (self->combined)
        return self->combined;

    if (self->combine == LP_COMBINE_NONE)
        self->combined = lp_value_nil ();
    else
    if (self->combine == LP_COMBINE_EACH) {
        if (self->nslots == 1)
            return self->slots [0].value;
        self->combined = lp_value_array ();
        for (int i = 0; self->combined && i < self->nslots; i++) {
            lp_value_t *item = lp_value_dup (self->slots [i].value);
            if (!item || lp_value_append (self->combined, item))
                lp_value_destroy (&self->combined);
        }
    }
    else {
        int *order = s_engine_order (self);
        const lp_value_t **parts = (const lp_value_t **)
            malloc ((self->nslots + 1) * sizeof (lp_value_t *));
        if (order && parts) {
            for (int i = 0; i < self->nslots; i++) {
                slot_t *slot = &self->slots [self->tasks? i: order [i]];
                parts [i] = self->combine == LP_COMBINE_CONCAT_VALUES?
                    slot->values: slot->value;
            }
            self->combined = s_concat (parts, self->nslots);
        }
        free (order);
        free (parts);
    }
    return self->combined;
}
