/*  lp_engines.c - the engine table of a data-path actor, see lp_engines.h */
#include "lp_engines.h"

struct _lp_engines_t {
    zhashx_t *by_uuid;                  //  uuid -> lp_engine_ref_t (owns)
    lp_engine_ref_t **by_id;                //  id -> engine (borrowed)
    size_t span;                        //  slots in by_id
    zlistx_destructor_fn *fifo_free;    //  for FIFO items
};

static void
s_engine_free (void **item)
{
    lp_engine_ref_t *engine = (lp_engine_ref_t *) *item;
    if (engine) {
        zlistx_destroy (&engine->fifo);
        free (engine);
        *item = NULL;
    }
}

lp_engines_t *
lp_engines_new (zlistx_destructor_fn *fifo_free)
{
    lp_engines_t *self = (lp_engines_t *) calloc (1, sizeof (lp_engines_t));
    if (!self)
        return NULL;
    self->by_uuid = zhashx_new ();
    if (!self->by_uuid) {
        free (self);
        return NULL;
    }
    zhashx_set_destructor (self->by_uuid, s_engine_free);
    self->fifo_free = fifo_free;
    return self;
}

void
lp_engines_destroy (lp_engines_t **self_p)
{
    lp_engines_t *self = *self_p;
    if (self) {
        zhashx_destroy (&self->by_uuid);
        free (self->by_id);
        free (self);
        *self_p = NULL;
    }
}

lp_engine_ref_t *
lp_engines_add (lp_engines_t *self, int id, const char *uuid)
{
    if (id < 0 || strlen (uuid) != LP_ID_CHARS)
        return NULL;
    if ((size_t) id >= self->span) {
        size_t span = (size_t) id * 2 + 16;
        lp_engine_ref_t **grown = (lp_engine_ref_t **) realloc (self->by_id, span * sizeof *grown);
        if (!grown)
            return NULL;
        memset (grown + self->span, 0, (span - self->span) * sizeof *grown);
        self->by_id = grown;
        self->span = span;
    }
    lp_engine_ref_t *engine = (lp_engine_ref_t *) zhashx_lookup (self->by_uuid, uuid);
    if (!engine) {
        engine = (lp_engine_ref_t *) calloc (1, sizeof (lp_engine_ref_t));
        if (!engine)
            return NULL;
        memcpy (engine->uuid, uuid, LP_ID_CHARS + 1);
        engine->fifo = zlistx_new ();
        if (!engine->fifo || zhashx_insert (self->by_uuid, uuid, engine) != 0) {
            zlistx_destroy (&engine->fifo);
            free (engine);
            return NULL;
        }
        if (self->fifo_free)
            zlistx_set_destructor (engine->fifo, self->fifo_free);
    }
    if (self->by_id [id] && self->by_id [id] != engine)
        self->by_id [id]->active = false;
    engine->id = id;
    engine->active = true;
    self->by_id [id] = engine;
    return engine;
}

lp_engine_ref_t *
lp_engines_by_id (lp_engines_t *self, int64_t id)
{
    return id >= 0 && (size_t) id < self->span? self->by_id [id]: NULL;
}

lp_engine_ref_t *
lp_engines_by_uuid (lp_engines_t *self, const char *uuid)
{
    return *uuid? (lp_engine_ref_t *) zhashx_lookup (self->by_uuid, uuid): NULL;
}

size_t
lp_engines_span (lp_engines_t *self)
{
    return self->span;
}
