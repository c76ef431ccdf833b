/*  lp_routes.c - the routing table of a data-path actor, see lp_routes.h */
#include "lp_routes.h"
#include "lp_util.h"

struct _lp_routes_t {
    zhashx_t *by_uuid;                  //  uuid -> lp_route_t (owns)
    lp_route_t **by_id;                 //  id -> engine (borrowed)
    size_t span;                        //  slots in by_id
    size_t active;                      //  engines with active set
    zlistx_destructor_fn *sent_free;    //  for records left in the lists
    uint64_t *marks;                    //  per id slot: fold generation seen
    size_t marks_size;                  //  slots in marks
    uint64_t generation;                //  of the current fold
};

static void
s_engine_free (void **item)
{
    lp_route_t *engine = (lp_route_t *) *item;
    if (engine) {
        zlistx_destroy (&engine->sent);
        free (engine);
        *item = NULL;
    }
}

lp_routes_t *
lp_routes_new (zlistx_destructor_fn *sent_free)
{
    lp_routes_t *self = (lp_routes_t *) calloc (1, sizeof (lp_routes_t));
    if (!self)
        return NULL;
    self->by_uuid = zhashx_new ();
    if (!self->by_uuid) {
        free (self);
        return NULL;
    }
    zhashx_set_destructor (self->by_uuid, s_engine_free);
    self->sent_free = sent_free;
    return self;
}

void
lp_routes_destroy (lp_routes_t **self_p)
{
    lp_routes_t *self = *self_p;
    if (self) {
        zhashx_destroy (&self->by_uuid);
        free (self->by_id);
        free (self->marks);
        free (self);
        *self_p = NULL;
    }
}

void
lp_routes_deactivate (lp_routes_t *self, lp_route_t *engine)
{
    if (engine && engine->active) {
        engine->active = false;
        self->active--;
    }
}

lp_route_t *
lp_routes_add (lp_routes_t *self, int id, const char *uuid)
{
    if (id < 0 || strlen (uuid) != LP_ID_CHARS)
        return NULL;
    if ((size_t) id >= self->span) {
        size_t span = (size_t) id * 2 + 16;
        lp_route_t **grown = (lp_route_t **) realloc (self->by_id, span * sizeof *grown);
        if (!grown)
            return NULL;
        memset (grown + self->span, 0, (span - self->span) * sizeof *grown);
        self->by_id = grown;
        self->span = span;
    }
    lp_route_t *engine = (lp_route_t *) zhashx_lookup (self->by_uuid, uuid);
    if (!engine) {
        engine = (lp_route_t *) calloc (1, sizeof (lp_route_t));
        if (!engine)
            return NULL;
        memcpy (engine->uuid, uuid, LP_ID_CHARS + 1);
        engine->sent = zlistx_new ();
        if (!engine->sent || zhashx_insert (self->by_uuid, uuid, engine) != 0) {
            zlistx_destroy (&engine->sent);
            free (engine);
            return NULL;
        }
        if (self->sent_free)
            zlistx_set_destructor (engine->sent, self->sent_free);
    }
    if (self->by_id [id] && self->by_id [id] != engine)
        lp_routes_deactivate (self, self->by_id [id]);
    //  The entry may have been under another id before.
    if (engine->active && engine->id != id && self->by_id [engine->id] == engine)
        self->by_id [engine->id] = NULL;
    engine->id = id;
    if (!engine->active) {
        engine->active = true;
        self->active++;
    }
    self->by_id [id] = engine;
    return engine;
}

lp_route_t *
lp_routes_by_id (lp_routes_t *self, int64_t id)
{
    return id >= 0 && (size_t) id < self->span? self->by_id [id]: NULL;
}

lp_route_t *
lp_routes_by_uuid (lp_routes_t *self, const char *uuid)
{
    return *uuid? (lp_route_t *) zhashx_lookup (self->by_uuid, uuid): NULL;
}

size_t
lp_routes_span (lp_routes_t *self)
{
    return self->span;
}

size_t
lp_routes_active (lp_routes_t *self)
{
    return self->active;
}

int64_t
lp_routes_fold (lp_routes_t *self, const lp_value_t *targets,
                 int64_t *out, char *why, size_t whylen)
{
    size_t length = lp_value_len (targets);
    //  One id is always allowed, so that with no engine registered a
    //  request still gets "engine N is not registered" rather than a refusal.
    size_t limit = self->active > 0? self->active: 1;
    //  Duplicates are found with a mark per id slot (ids below the span)
    //  and a small hash for the others (never registered, so at most
    //  `limit` of them get this far): O(1) per id either way.
    if (self->marks_size < self->span) {
        uint64_t *grown = (uint64_t *) realloc (self->marks, self->span * sizeof *grown);
        if (!grown) {
            snprintf (why, whylen, "controller out of memory");
            return -1;
        }
        memset (grown + self->marks_size, 0, (self->span - self->marks_size) * sizeof *grown);
        self->marks = grown;
        self->marks_size = self->span;
    }
    self->generation++;
    zhashx_t *others = NULL;
    int64_t count = 0;
    for (size_t i = 0; i < length; i++) {
        const lp_value_t *item = lp_value_at (targets, i);
        if (lp_value_type (item) != LP_INT) {
            snprintf (why, whylen, "header.targets[%zu] is %s, not an engine id (integer)",
                      i + 1, lp_type_name (lp_value_type (item)));
            count = -1;
            break;
        }
        int64_t id = lp_value_as_int (item);
        if (id >= 0 && (size_t) id < self->marks_size) {
            if (self->marks [id] == self->generation)
                continue;
            self->marks [id] = self->generation;
        }
        else {
            char key [24];
            snprintf (key, sizeof key, "%lld", (long long) id);
            if (!others && !(others = zhashx_new ())) {
                snprintf (why, whylen, "controller out of memory");
                count = -1;
                break;
            }
            if (zhashx_lookup (others, key))
                continue;
            zhashx_insert (others, key, (void *) 1);
        }
        if ((size_t) count == limit) {
            snprintf (why, whylen, "header.targets names more engines than the %zu registered "
                      "(each engine at most once)", limit);
            count = -1;
            break;
        }
        out [count++] = id;
    }
    zhashx_destroy (&others);
    return count;
}

uint64_t
lp_routes_io_affinity (int thread)
{
    //  A message forwarded from one socket to the other then stays on one
    //  I/O thread: the thread that just received it is often still awake
    //  when the actor sends, where two threads would both be woken.
    //  Measured on 2 CPUs, 20,000 load-balanced no-op tasks: controller
    //  context switches per task 1.95-3.19 -> 1.15-1.63, CPU per task
    //  (median) 40.5 -> 36 us.
    int threads = zmq_ctx_get (zsys_init (), ZMQ_IO_THREADS);
    return thread >= 0 && thread < 64 && threads > thread && threads > 1
         ? (uint64_t) 1 << thread: 0;
}
