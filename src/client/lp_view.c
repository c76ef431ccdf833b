/*  =========================================================================
    lp_view - direct views: build requests and send them

    Views are made by lp_client_view and lp_client_balanced (lp_client.c,
    on lp_view_new). A direct view addresses a fixed list of engines, or all engines
    registered at the time of each call (the client's id cache, kept up to
    date by notifications; lp_client_ids refreshes it).

    One message reaches many engines: header.targets lists them and the
    controller fans the message out, so execute / apply / push / pull /
    gather / interrupt send one message and expect one reply per target.
    scatter and map send one message per engine, each with its own chunk:
    contiguous chunks in ascending engine order whose sizes differ by at
    most one, the larger ones first (as ipyparallel does). Typed arrays
    are cut into typed chunks, so they stay raw frames on the wire.

    A load-balanced view sends each call as one task on the task channel;
    the controller's scheduler picks the engine. Its flags (retries,
    timeout, time_limit, targets, after / follow with success / failure)
    go into the request header and apply to calls made after they are
    set (lp_view_dup gives a copy to set them on for one call). map splits
    the sequence into chunks of `chunksize` items, one task each; the
    result's slots are the tasks in order, so lp_result_get concatenates
    them back in order. Each map slot records the position of its first
    item, for callers that take the slots as they complete.

    map_n zips several sequences into one of argument arrays and sends it
    as a map whose content says `star`: the engine unpacks each item into
    the call's arguments.
    =========================================================================
*/
#include "lp_client_private.h"
#include "lp_proto.h"
#include "lp_util.h"
#include "lp_msg.h"
#include "lp_value.h"

#define LP_VIEW_TAG     0x1b0c0002

struct _lp_view_t {
    uint32_t tag;                       //  LP_VIEW_TAG while alive
    lp_client_t *client;                //  NULL once the client is gone
    void *handle;                       //  our entry in the client's list
    int *targets;                       //  fixed targets, NULL = all
    int ntargets;                       //  number of fixed targets
    bool balanced;                      //  tasks through the scheduler
    int retries;                        //  task resubmissions
    int timeout_ms;                     //  unassigned task deadline, 0 none
    int time_limit_ms;                  //  running time limit, 0 none
    int chunksize;                      //  balanced map items per task
    lp_value_t *after;                  //  msg_ids (array) or NULL
    lp_value_t *follow;                 //  msg_ids (array) or NULL
    bool success;                       //  dependency success counts
    bool failure;                       //  dependency failure counts
};

static int
s_int_cmp (const void *a, const void *b)
{
    int x = *(const int *) a, y = *(const int *) b;
    return (x > y) - (x < y);
}

//  --------------------------------------------------------------------------

lp_view_t *
lp_view_new (lp_client_t *client, const int *targets, int ntargets, bool balanced)
{
    assert (client);
    lp_view_t *self = (lp_view_t *) calloc (1, sizeof (lp_view_t));
    if (!self) {
        lp_client_set_error (client, "out of memory");
        return NULL;
    }
    self->tag = LP_VIEW_TAG;
    self->client = client;
    self->chunksize = 1;
    self->success = true;
    self->balanced = balanced;
    if (targets && ntargets > 0) {
        self->targets = (int *) malloc (ntargets * sizeof (int));
        if (!self->targets) {
            free (self);
            lp_client_set_error (client, "out of memory");
            return NULL;
        }
        //  Keep the caller's order, drop duplicates
        for (int i = 0; i < ntargets; i++) {
            if (targets [i] < 0) {
                lp_client_set_error (client, "invalid engine id %d", targets [i]);
                free (self->targets);
                free (self);
                return NULL;
            }
            bool seen = false;
            for (int j = 0; j < self->ntargets; j++)
                if (self->targets [j] == targets [i])
                    seen = true;
            if (!seen)
                self->targets [self->ntargets++] = targets [i];
        }
    }
    self->handle = lp_client_track_view (client, self);
    if (!self->handle) {
        free (self->targets);
        free (self);
        lp_client_set_error (client, "out of memory");
        return NULL;
    }
    return self;
}

int
lp_view_set_targets (lp_view_t *self, const int *targets, int ntargets)
{
    assert (self);
    int *copy = NULL;
    int n = 0;
    if (targets && ntargets > 0) {
        copy = (int *) malloc (ntargets * sizeof (int));
        if (!copy) {
            if (self->client)
                lp_client_set_error (self->client, "out of memory");
            return -1;
        }
        //  Fold duplicates (each engine once, first occurrence order):
        //  the controller sends one message per engine named.
        for (int i = 0; i < ntargets; i++) {
            if (targets [i] < 0) {
                free (copy);
                if (self->client)
                    lp_client_set_error (self->client, "invalid engine id %d", targets [i]);
                return -1;
            }
            bool seen = false;
            for (int j = 0; j < n && !seen; j++)
                seen = copy [j] == targets [i];
            if (!seen)
                copy [n++] = targets [i];
        }
    }
    free (self->targets);
    self->targets = copy;
    self->ntargets = n;
    return 0;
}

void lp_view_set_retries (lp_view_t *self, int retries) { assert (self); self->retries = retries > 0? retries: 0; }
void lp_view_set_timeout (lp_view_t *self, int timeout_ms) { assert (self); self->timeout_ms = timeout_ms > 0? timeout_ms: 0; }
void lp_view_set_time_limit (lp_view_t *self, int time_limit_ms) { assert (self); self->time_limit_ms = time_limit_ms > 0? time_limit_ms: 0; }
void lp_view_set_chunksize (lp_view_t *self, int chunksize) { assert (self); self->chunksize = chunksize > 0? chunksize: 1; }
void lp_view_set_dependency_flags (lp_view_t *self, bool success, bool failure)
{
    assert (self);
    self->success = success;
    self->failure = failure;
}

//  The msg_ids of every slot of the given results, as an array value.
static int
s_set_deps (lp_view_t *self, lp_value_t **list_p, lp_result_t *const *deps, int ndeps)
{
    lp_value_t *list = NULL;
    if (deps && ndeps > 0) {
        list = lp_value_array ();
        for (int i = 0; list && i < ndeps; i++)
            for (int j = 0; list && deps [i] && j < lp_result_count (deps [i]); j++)
                if (lp_value_append (list, lp_value_string (lp_result_msg_id (deps [i], j))))
                    lp_value_destroy (&list);
        if (!list) {
            if (self->client)
                lp_client_set_error (self->client, "out of memory");
            return -1;
        }
    }
    lp_value_destroy (list_p);
    *list_p = list;
    return 0;
}

int
lp_view_set_after (lp_view_t *self, lp_result_t *const *deps, int ndeps)
{
    assert (self);
    return s_set_deps (self, &self->after, deps, ndeps);
}

int
lp_view_set_follow (lp_view_t *self, lp_result_t *const *deps, int ndeps)
{
    assert (self);
    return s_set_deps (self, &self->follow, deps, ndeps);
}

lp_view_t *
lp_view_dup (lp_view_t *self)
{
    assert (self);
    assert (self->tag == LP_VIEW_TAG);
    if (!self->client) {
        lp_set_last_error ("client destroyed");
        return NULL;
    }
    lp_view_t *copy = lp_view_new (self->client, self->targets, self->ntargets,
                                   self->balanced);
    if (!copy)
        return NULL;
    copy->retries = self->retries;
    copy->timeout_ms = self->timeout_ms;
    copy->time_limit_ms = self->time_limit_ms;
    copy->chunksize = self->chunksize;
    copy->success = self->success;
    copy->failure = self->failure;
    copy->after = self->after? lp_value_dup (self->after): NULL;
    copy->follow = self->follow? lp_value_dup (self->follow): NULL;
    if ((self->after && !copy->after) || (self->follow && !copy->follow)) {
        lp_view_destroy (&copy);
        lp_client_set_error (self->client, "out of memory");
        return NULL;
    }
    return copy;
}

bool
lp_view_is_balanced (lp_view_t *self)
{
    assert (self);
    return self->balanced;
}

//  Writes the view's flags into a request header. 0 / -1.
static int
s_set_flags (lp_view_t *self, lp_value_t *header)
{
    if (self->time_limit_ms && lp_value_set (header, LP_HDR_TIME_LIMIT, lp_value_int (self->time_limit_ms)))
        return -1;
    if (!self->balanced)
        return 0;
    if ((self->retries && lp_value_set (header, LP_HDR_RETRIES, lp_value_int (self->retries)))
    ||  (self->timeout_ms && lp_value_set (header, LP_HDR_TIMEOUT, lp_value_int (self->timeout_ms)))
    ||  (self->after && lp_value_set (header, LP_HDR_AFTER, lp_value_dup (self->after)))
    ||  (self->follow && lp_value_set (header, LP_HDR_FOLLOW, lp_value_dup (self->follow))))
        return -1;
    if ((self->after || self->follow)
    &&  (lp_value_set (header, LP_HDR_SUCCESS, lp_value_bool (self->success))
    ||   lp_value_set (header, LP_HDR_FAILURE, lp_value_bool (self->failure))))
        return -1;
    if (self->targets) {
        lp_value_t *array = lp_value_array ();
        for (int i = 0; array && i < self->ntargets; i++)
            if (lp_value_append (array, lp_value_int (self->targets [i])))
                lp_value_destroy (&array);
        if (!array || lp_value_set (header, LP_HDR_TARGETS, array))
            return -1;
    }
    return 0;
}

//  One task (content taken) on the task channel, one slot in result.
static int
s_send_task (lp_view_t *self, lp_result_t *result, const char *msg_type, lp_value_t *content)
{
    lp_client_t *client = self->client;
    lp_msg_t *msg = lp_msg_new (msg_type);
    if (!msg || !content || s_set_flags (self, lp_msg_header (msg))) {
        lp_msg_destroy (&msg);
        lp_value_destroy (&content);
        lp_client_set_error (client, "out of memory");
        return -1;
    }
    lp_msg_set_content (msg, content);
    const lp_value_t *date = lp_value_get (lp_msg_header (msg), "date");
    if (lp_result_add_task_slot (result, lp_msg_id (msg), date? lp_value_as_string (date, NULL): NULL)) {
        lp_msg_destroy (&msg);
        lp_client_set_error (client, "out of memory");
        return -1;
    }
    char sent_id [LP_ID_CHARS + 1];
    return lp_client_send (client, LP_CHANNEL_TASK, &msg, result, sent_id);
}

void
lp_view_destroy (lp_view_t **self_p)
{
    assert (self_p);
    lp_view_t *self = *self_p;
    if (!self)
        return;
    assert (self->tag == LP_VIEW_TAG);
    if (self->client)
        lp_client_forget_view (self->client, self->handle);
    free (self->targets);
    lp_value_destroy (&self->after);
    lp_value_destroy (&self->follow);
    self->tag = 0xDeadBeef;
    free (self);
    *self_p = NULL;
}

void
lp_view_detach (lp_view_t *self)
{
    assert (self);
    self->client = NULL;
    self->handle = NULL;
}

//  --------------------------------------------------------------------------
//  Targets of this call: a fresh array (caller frees), sorted when asked.
//  Returns the count, or -1 with the error set (also when there are none).

static int
s_targets (lp_view_t *self, int **targets_p, bool sorted)
{
    *targets_p = NULL;
    if (!self->client) {
        lp_set_last_error ("client destroyed");
        return -1;
    }
    const int *ids = self->targets;
    int n = self->ntargets;
    if (!ids) {
        lp_client_poll (self->client, 0);   //  take in notifications
        n = lp_client_cached_ids (self->client, &ids);
    }
    if (n <= 0) {
        lp_client_set_error (self->client, "no engines registered");
        return -1;
    }
    int *copy = (int *) malloc (n * sizeof (int));
    if (!copy) {
        lp_client_set_error (self->client, "out of memory");
        return -1;
    }
    memcpy (copy, ids, n * sizeof (int));
    if (sorted)
        qsort (copy, n, sizeof (int), s_int_cmp);
    *targets_p = copy;
    return n;
}

int
lp_view_targets (lp_view_t *self, int *ids, int max)
{
    assert (self);
    int *targets;
    int n = s_targets (self, &targets, false);
    if (n < 0)
        return self->client && !self->targets? 0: -1;
    for (int i = 0; ids && i < n && i < max; i++)
        ids [i] = targets [i];
    free (targets);
    return n;
}

//  --------------------------------------------------------------------------
//  Sends one request (content taken) to targets, adding one slot per
//  target to result. 0 / -1 with the error set.

static int
s_send (lp_view_t *self, lp_result_t *result, lp_channel_t channel,
        const char *msg_type, lp_value_t *content, const int *targets, int n)
{
    lp_client_t *client = self->client;
    lp_msg_t *msg = lp_msg_new (msg_type);
    lp_value_t *array = lp_value_array ();
    if (!msg || !array || !content) {
        lp_msg_destroy (&msg);
        lp_value_destroy (&array);
        lp_value_destroy (&content);
        lp_client_set_error (client, "out of memory");
        return -1;
    }
    for (int i = 0; i < n; i++)
        if (lp_value_append (array, lp_value_int (targets [i]))) {
            lp_msg_destroy (&msg);
            lp_value_destroy (&array);
            lp_value_destroy (&content);
            lp_client_set_error (client, "out of memory");
            return -1;
        }
    if (lp_value_set (lp_msg_header (msg), LP_HDR_TARGETS, array)
    ||  s_set_flags (self, lp_msg_header (msg))) {
        lp_msg_destroy (&msg);
        lp_value_destroy (&content);
        lp_client_set_error (client, "out of memory");
        return -1;
    }
    lp_msg_set_content (msg, content);
    const char *msg_id = lp_msg_id (msg);
    for (int i = 0; i < n; i++)
        if (lp_result_add_slot (result, msg_id, targets [i])) {
            lp_msg_destroy (&msg);
            lp_client_set_error (client, "out of memory");
            return -1;
        }
    char sent_id [LP_ID_CHARS + 1];
    return lp_client_send (client, channel, &msg, result, sent_id);
}

//  One message to every target of the view. content is taken.
static lp_result_t *
s_request (lp_view_t *self, lp_channel_t channel, const char *msg_type,
           lp_value_t *content, lp_combine_t combine, bool sorted)
{
    if (self->balanced) {
        if (channel != LP_CHANNEL_MUX) {
            lp_client_set_error (self->client, "%s is not available on a load-balanced view "
                                 "(use a direct view)", msg_type);
            lp_value_destroy (&content);
            return NULL;
        }
        lp_result_t *result = lp_result_new (self->client, combine);
        if (!result) {
            lp_client_set_error (self->client, "out of memory");
            lp_value_destroy (&content);
            return NULL;
        }
        if (s_send_task (self, result, msg_type, content))
            lp_result_destroy (&result);
        return result;
    }
    int *targets = NULL;
    int n = s_targets (self, &targets, sorted);
    if (n < 0) {
        lp_value_destroy (&content);
        return NULL;
    }
    lp_result_t *result = lp_result_new (self->client, combine);
    if (!result) {
        lp_client_set_error (self->client, "out of memory");
        lp_value_destroy (&content);
        free (targets);
        return NULL;
    }
    if (s_send (self, result, channel, msg_type, content, targets, n))
        lp_result_destroy (&result);
    free (targets);
    return result;
}

//  A content map {key = value}; value taken. NULL when out of memory.
static lp_value_t *
s_content (const char *key, lp_value_t *value)
{
    lp_value_t *content = lp_value_map ();
    if (!content || !value || lp_value_set (content, key, value)) {
        if (!content)
            lp_value_destroy (&value);
        lp_value_destroy (&content);
        return NULL;
    }
    return content;
}

static bool
s_check (lp_view_t *self, const char *what, const char *arg)
{
    assert (self);
    assert (self->tag == LP_VIEW_TAG);
    if (!self->client) {
        lp_set_last_error ("client destroyed");
        return false;
    }
    if (!arg) {
        lp_client_set_error (self->client, "%s: missing argument", what);
        return false;
    }
    return true;
}

//  False (with the client's error) when value nests deeper than
//  LP_VALUE_MAX_DEPTH levels: the limit lp_lua_to_value sets for Lua, so
//  C and Lua senders agree (docs/api.md, "Values").
static bool
s_depth_ok (lp_view_t *self, const char *what, const lp_value_t *value, const char *where)
{
    if (!lp_value_deeper_than (value, LP_VALUE_MAX_DEPTH))
        return true;
    lp_client_fail (self->client, LP_EINVAL, "%s: value nests deeper than %d levels (%s)",
                    what, LP_VALUE_MAX_DEPTH, where);
    return false;
}

//  --------------------------------------------------------------------------
//  Calls

lp_result_t *
lp_view_execute (lp_view_t *self, const char *code)
{
    if (!s_check (self, "execute", code))
        return NULL;
    return s_request (self, LP_CHANNEL_MUX, LP_EXECUTE_REQUEST,
                      s_content ("code", lp_value_string (code)),
                      LP_COMBINE_EACH, false);
}

lp_result_t *
lp_view_apply (lp_view_t *self, const char *fn, lp_value_t *args)
{
    if (!s_check (self, "apply", fn)) {
        lp_value_destroy (&args);
        return NULL;
    }
    if (!args)
        args = lp_value_array ();
    else
    if (lp_value_type (args) != LP_ARRAY) {
        lp_client_set_error (self->client, "apply: args must be an array, not %s",
                             lp_type_name (lp_value_type (args)));
        lp_value_destroy (&args);
        return NULL;
    }
    for (size_t k = 0; args && k < lp_value_len (args); k++) {
        char where [32];
        snprintf (where, sizeof where, "argument %zu", k + 1);
        if (!s_depth_ok (self, "apply", lp_value_at (args, k), where)) {
            lp_value_destroy (&args);
            return NULL;
        }
    }
    lp_value_t *content = s_content ("fn", lp_value_string (fn));
    if (content && lp_value_set (content, "args", args))
        lp_value_destroy (&content);
    else
    if (!content)
        lp_value_destroy (&args);
    return s_request (self, LP_CHANNEL_MUX, LP_APPLY_REQUEST, content,
                      LP_COMBINE_EACH, false);
}

//  Calls that address every engine make no sense load-balanced.
static bool
s_direct_only (lp_view_t *self, const char *what)
{
    if (self->client && self->balanced) {
        lp_client_set_error (self->client, "%s is not available on a load-balanced view "
                             "(use a direct view)", what);
        return false;
    }
    return true;
}

lp_result_t *
lp_view_push_map (lp_view_t *self, lp_value_t *ns)
{
    if (!s_check (self, "push", ns? "": NULL) || !s_direct_only (self, "push")) {
        lp_value_destroy (&ns);
        return NULL;
    }
    if (lp_value_type (ns) != LP_MAP) {
        lp_client_set_error (self->client, "push: namespace must be a map, not %s",
                             lp_type_name (lp_value_type (ns)));
        lp_value_destroy (&ns);
        return NULL;
    }
    for (size_t k = 0; k < lp_value_len (ns); k++) {
        const char *key = lp_value_as_string (lp_value_key_at (ns, k), NULL);
        if (!s_depth_ok (self, "push", lp_value_value_at (ns, k), key? key: "a value")) {
            lp_value_destroy (&ns);
            return NULL;
        }
    }
    return s_request (self, LP_CHANNEL_MUX, LP_PUSH_REQUEST, s_content ("ns", ns),
                      LP_COMBINE_NONE, false);
}

lp_result_t *
lp_view_push (lp_view_t *self, const char *name, lp_value_t *value)
{
    if (!s_check (self, "push", name) || !value) {
        if (self->client && !value)
            lp_client_set_error (self->client, "push: missing value");
        lp_value_destroy (&value);
        return NULL;
    }
    lp_value_t *ns = lp_value_map ();
    if (!ns || lp_value_set (ns, name, value)) {
        if (!ns)
            lp_value_destroy (&value);
        lp_value_destroy (&ns);
        lp_client_set_error (self->client, "out of memory");
        return NULL;
    }
    return lp_view_push_map (self, ns);
}

static lp_value_t *
s_names (const char *name)
{
    lp_value_t *names = lp_value_array ();
    if (names && lp_value_append (names, lp_value_string (name)))
        lp_value_destroy (&names);
    return s_content ("names", names);
}

lp_result_t *
lp_view_pull (lp_view_t *self, const char *name)
{
    if (!s_check (self, "pull", name) || !s_direct_only (self, "pull"))
        return NULL;
    return s_request (self, LP_CHANNEL_MUX, LP_PULL_REQUEST, s_names (name),
                      LP_COMBINE_EACH, false);
}

lp_result_t *
lp_view_gather (lp_view_t *self, const char *name)
{
    if (!s_check (self, "gather", name) || !s_direct_only (self, "gather"))
        return NULL;
    return s_request (self, LP_CHANNEL_MUX, LP_PULL_REQUEST, s_names (name),
                      LP_COMBINE_CONCAT, true);
}

lp_result_t *
lp_view_control (lp_view_t *self, const char *msg_type)
{
    if (!s_check (self, msg_type, "") || !s_direct_only (self, msg_type))
        return NULL;
    return s_request (self, LP_CHANNEL_CONTROL, msg_type,
                      lp_value_map (), LP_COMBINE_EACH, false);
}

lp_result_t *
lp_view_interrupt (lp_view_t *self)
{
    return lp_view_control (self, LP_INTERRUPT_REQUEST);
}

lp_result_t *
lp_view_clear (lp_view_t *self)
{
    if (!s_check (self, "clear", "") || !s_direct_only (self, "clear"))
        return NULL;
    return s_request (self, LP_CHANNEL_MUX, LP_CLEAR_REQUEST, lp_value_map (),
                      LP_COMBINE_NONE, false);
}

//  --------------------------------------------------------------------------
//  Partitioned calls: scatter and map

//  Elements [start, start+len) of an array or typed array, as a new value.
static lp_value_t *
s_chunk (const lp_value_t *seq, size_t start, size_t len)
{
    if (lp_value_type (seq) == LP_TYPED) {
        lp_dtype_t dtype = lp_value_dtype (seq);
        size_t size = lp_dtype_size (dtype);
        lp_value_t *chunk = lp_value_typed (dtype, len);
        if (chunk && len)
            memcpy (lp_value_typed_data (chunk),
                    (const char *) lp_value_typed_data (seq) + start * size,
                    len * size);
        //  A chunk of a sequence arrives as a table too
        if (chunk)
            lp_value_typed_set_sequence (chunk, lp_value_typed_is_sequence (seq));
        return chunk;
    }
    //  A long run of integers only (floats only) goes as a typed sequence,
    //  as the engines send Lua sequences (docs/protocol.md, "Values"):
    //  one buffer instead of a value per element, and the engine builds
    //  its table straight from it
    if (len > LP_SEQUENCE_TYPED_MIN) {
        lp_type_t type = lp_value_type (lp_value_at (seq, start));
        bool uniform = type == LP_INT || type == LP_NUMBER;
        for (size_t i = 1; uniform && i < len; i++)
            uniform = lp_value_type (lp_value_at (seq, start + i)) == type;
        if (uniform) {
            lp_value_t *chunk = lp_value_typed (type == LP_INT? LP_DTYPE_I64: LP_DTYPE_F64, len);
            if (!chunk)
                return NULL;
            lp_value_typed_set_sequence (chunk, true);
            if (type == LP_INT) {
                int64_t *data = (int64_t *) lp_value_typed_data (chunk);
                for (size_t i = 0; i < len; i++)
                    data [i] = lp_value_as_int (lp_value_at (seq, start + i));
            }
            else {
                double *data = (double *) lp_value_typed_data (chunk);
                for (size_t i = 0; i < len; i++)
                    data [i] = lp_value_as_number (lp_value_at (seq, start + i));
            }
            return chunk;
        }
    }
    lp_value_t *chunk = lp_value_array ();
    for (size_t i = 0; chunk && i < len; i++) {
        lp_value_t *item = lp_value_dup (lp_value_at (seq, start + i));
        if (!item || lp_value_append (chunk, item))
            lp_value_destroy (&chunk);
    }
    return chunk;
}

//  A map_request's content {fn, items = chunk (taken), star}. NULL when
//  out of memory.
static lp_value_t *
s_map_content (const char *fn, lp_value_t *chunk, bool star)
{
    lp_value_t *content = s_content ("items", chunk);
    if (content && (lp_value_set (content, "fn", lp_value_string (fn))
                ||  (star && lp_value_set (content, LP_MAP_STAR, lp_value_bool (true)))))
        lp_value_destroy (&content);
    return content;
}

//  seq is taken. For scatter, content is {ns = {name = chunk}}; for map
//  {fn = fn, items = chunk}. Empty chunks are sent for scatter (the name
//  is set on every engine) and skipped for map.
static lp_result_t *
s_partitioned (lp_view_t *self, const char *what, const char *name_or_fn,
               lp_value_t *seq, bool is_map, bool star)
{
    if (!s_check (self, what, name_or_fn) || !seq) {
        if (self->client && !seq)
            lp_client_set_error (self->client, "%s: missing sequence", what);
        lp_value_destroy (&seq);
        return NULL;
    }
    if (lp_value_type (seq) != LP_ARRAY && lp_value_type (seq) != LP_TYPED) {
        lp_client_set_error (self->client, "%s: needs an array or typed array, not %s",
                             what, lp_type_name (lp_value_type (seq)));
        lp_value_destroy (&seq);
        return NULL;
    }
    if (!s_depth_ok (self, what, seq, "the sequence")) {
        lp_value_destroy (&seq);
        return NULL;
    }
    int *targets = NULL;
    int n = s_targets (self, &targets, true);
    if (n < 0) {
        lp_value_destroy (&seq);
        return NULL;
    }
    lp_result_t *result = lp_result_new (self->client,
        is_map? LP_COMBINE_CONCAT_VALUES: LP_COMBINE_NONE);
    if (!result) {
        lp_client_set_error (self->client, "out of memory");
        lp_value_destroy (&seq);
        free (targets);
        return NULL;
    }
    size_t total = lp_value_len (seq);
    size_t base = total / n, extra = total % n, start = 0;
    for (int i = 0; i < n; i++) {
        size_t len = base + ((size_t) i < extra? 1: 0);
        if (is_map && len == 0)
            continue;
        lp_value_t *chunk = s_chunk (seq, start, len);
        start += len;
        lp_value_t *content = NULL;
        if (is_map)
            content = s_map_content (name_or_fn, chunk, star);
        else
            content = s_content ("ns", s_content (name_or_fn, chunk));
        if (s_send (self, result, LP_CHANNEL_MUX,
                    is_map? LP_MAP_REQUEST: LP_PUSH_REQUEST, content, &targets [i], 1)) {
            lp_result_destroy (&result);
            break;
        }
        if (is_map)
            lp_result_set_first_item (result, (int64_t) (start - len));
    }
    free (targets);
    lp_value_destroy (&seq);
    return result;
}

lp_result_t *
lp_view_scatter (lp_view_t *self, const char *name, lp_value_t *seq)
{
    if (!s_direct_only (self, "scatter")) {
        lp_value_destroy (&seq);
        return NULL;
    }
    return s_partitioned (self, "scatter", name, seq, false, false);
}

//  Load-balanced map: one map_request task per chunk of chunksize items.
static lp_result_t *
s_balanced_map (lp_view_t *self, const char *fn, lp_value_t *seq, bool star)
{
    if (!s_check (self, "map", fn) || !seq) {
        if (self->client && !seq)
            lp_client_set_error (self->client, "map: missing sequence");
        lp_value_destroy (&seq);
        return NULL;
    }
    if (lp_value_type (seq) != LP_ARRAY && lp_value_type (seq) != LP_TYPED) {
        lp_client_set_error (self->client, "map: needs an array or typed array, not %s",
                             lp_type_name (lp_value_type (seq)));
        lp_value_destroy (&seq);
        return NULL;
    }
    if (!s_depth_ok (self, "map", seq, "the sequence")) {
        lp_value_destroy (&seq);
        return NULL;
    }
    lp_result_t *result = lp_result_new (self->client, LP_COMBINE_CONCAT_VALUES);
    if (!result) {
        lp_client_set_error (self->client, "out of memory");
        lp_value_destroy (&seq);
        return NULL;
    }
    size_t total = lp_value_len (seq);
    size_t chunk = (size_t) self->chunksize;
    for (size_t start = 0; start < total; start += chunk) {
        size_t len = total - start < chunk? total - start: chunk;
        lp_value_t *content = s_map_content (fn, s_chunk (seq, start, len), star);
        if (s_send_task (self, result, LP_MAP_REQUEST, content)) {
            lp_result_destroy (&result);
            break;
        }
        lp_result_set_first_item (result, (int64_t) start);
        //  Take in replies as we go, so sockets and memory stay small.
        if ((start / chunk) % 256 == 255)
            lp_client_poll (self->client, 0);
    }
    lp_value_destroy (&seq);
    return result;
}

static lp_result_t *
s_map (lp_view_t *self, const char *fn, lp_value_t *seq, bool star)
{
    if (self->balanced)
        return s_balanced_map (self, fn, seq, star);
    return s_partitioned (self, "map", fn, seq, true, star);
}

lp_result_t *
lp_view_map (lp_view_t *self, const char *fn, lp_value_t *seq)
{
    return s_map (self, fn, seq, false);
}

//  Element i of an array or typed array, as a new value.
static lp_value_t *
s_element (const lp_value_t *seq, size_t i)
{
    if (lp_value_type (seq) != LP_TYPED)
        return lp_value_dup (lp_value_at (seq, i));
    const void *data = lp_value_typed_data (seq);
    switch (lp_value_dtype (seq)) {
        case LP_DTYPE_F64: return lp_value_number (((const double *) data) [i]);
        case LP_DTYPE_F32: return lp_value_number (((const float *) data) [i]);
        case LP_DTYPE_I64: return lp_value_int (((const int64_t *) data) [i]);
        case LP_DTYPE_I32: return lp_value_int (((const int32_t *) data) [i]);
        case LP_DTYPE_U8:  return lp_value_int (((const uint8_t *) data) [i]);
        default:           return NULL;
    }
}

//  The items of a map over several sequences: item i is the array
//  {seqs [0][i], seqs [1][i], ...}, as many as the shortest has. NULL
//  when out of memory.
static lp_value_t *
s_zip (lp_value_t *const *seqs, int nseqs)
{
    size_t len = SIZE_MAX;
    for (int k = 0; k < nseqs; k++)
        if (lp_value_len (seqs [k]) < len)
            len = lp_value_len (seqs [k]);
    lp_value_t *items = lp_value_array ();
    for (size_t i = 0; items && i < len; i++) {
        lp_value_t *args = lp_value_array ();
        for (int k = 0; args && k < nseqs; k++)
            if (lp_value_append (args, s_element (seqs [k], i)))
                lp_value_destroy (&args);
        if (!args || lp_value_append (items, args))
            lp_value_destroy (&items);
    }
    return items;
}

lp_result_t *
lp_view_map_n (lp_view_t *self, const char *fn, lp_value_t *const *seqs, int nseqs)
{
    assert (self);
    bool valid = seqs && nseqs > 0;
    for (int k = 0; valid && k < nseqs; k++)
        valid = seqs [k] && (lp_value_type (seqs [k]) == LP_ARRAY
                          || lp_value_type (seqs [k]) == LP_TYPED);
    lp_value_t *items = valid && s_check (self, "map", fn)? s_zip (seqs, nseqs): NULL;
    for (int k = 0; seqs && k < nseqs; k++) {
        lp_value_t *seq = seqs [k];
        lp_value_destroy (&seq);        //  taken, also on failure
    }
    if (!items) {
        if (self->client && !valid)
            lp_client_set_error (self->client, "map: needs one or more arrays or typed arrays");
        else
        if (self->client && fn)
            lp_client_set_error (self->client, "out of memory");
        return NULL;
    }
    return s_map (self, fn, items, true);
}
