/*  =========================================================================
    lp_fetch - the task store's queries on the hub's thread, see lp_fetch.h

    result_request: a final request's stored replies go out at once; for a
    pending one the asking client (its routing identity) is remembered in
    `waiters` and the store announces the end ("DONE" on its events
    socket, after the final row is committed), which sends them then.
    Waiters are bounded (LP_FETCH_WAITERS_MAX); a client that went away
    meanwhile is simply not there for the ROUTER to send to.

    resubmit: the stored signed frames of the request get a fresh msg_id
    and date (task_id removed), are signed again and sent to the task
    scheduler (or the mux, for a direct request) through this module's own
    DEALER, exactly as a client sends; the store records the new request
    under its new id, and its replies, which come back to the DEALER, are
    dropped here (any client fetches them by the new id).
    =========================================================================
*/
#include "lp_fetch.h"
#include "lp_proto.h"
#include "lp_codec.h"
#include "lp_bind.h"

#define LP_FETCH_WAITERS_MAX    65536   //  clients waiting for pending results
#define LP_FETCH_IDS_MAX        10000   //  msg_ids per request

struct _lp_fetch_t {
    lp_store_t *store;                  //  NULL: the store is off
    lp_wire_t *wire;                    //  the hub's (signing)
    zsock_t *registration;              //  the hub's ROUTER (we only send)
    zloop_t *loop;                      //  the hub's reactor
    zsock_t *task;                      //  DEALER to the scheduler (resubmit)
    zsock_t *mux;                       //  DEALER to the mux (resubmit)
    zhashx_t *waiters;                  //  msg_id -> zlist of zframe_t (client)
    size_t nwaiters;                    //  clients waiting, all ids
};

static void
s_waiters_free (void **item)
{
    zlist_t *list = (zlist_t *) *item;
    if (list) {
        zframe_t *frame;
        while ((frame = (zframe_t *) zlist_pop (list)))
            zframe_destroy (&frame);
        zlist_destroy (&list);
        *item = NULL;
    }
}

//  Sends a stored reply (frames from the delimiter) to client. reply taken.
static void
s_send_to (lp_fetch_t *self, zframe_t *client, zmsg_t **reply_p)
{
    zframe_t *routing = zframe_dup (client);
    if (routing && zmsg_prepend (*reply_p, &routing) == 0)
        zmsg_send (reply_p, self->registration);
    zframe_destroy (&routing);
    zmsg_destroy (reply_p);
}

static void
s_send_replies (lp_fetch_t *self, const char *msg_id, zframe_t *client)
{
    zlist_t *replies = lp_store_replies (self->store, msg_id, self->wire);
    zmsg_t *reply;
    while (replies && (reply = (zmsg_t *) zlist_pop (replies)))
        s_send_to (self, client, &reply);
    zlist_destroy (&replies);
}

//  An error reply to msg_id (the whole request: engine -1), to client.
static void
s_send_unknown (lp_fetch_t *self, const char *msg_id, zframe_t *client, const char *why)
{
    lp_msg_t *msg = lp_msg_new (LP_RESULT_REPLY);
    lp_value_t *parent = lp_value_map ();
    zmsg_t *routing = zmsg_new ();
    zframe_t *copy = zframe_dup (client);
    if (!msg || !parent || !routing || !copy
    ||  lp_value_set (parent, LP_HDR_MSG_ID, lp_value_string (msg_id))
    ||  lp_value_set (parent, LP_HDR_MSG_TYPE, lp_value_string (LP_RESULT_REQUEST))) {
        lp_msg_destroy (&msg);
        lp_value_destroy (&parent);
        zmsg_destroy (&routing);
        zframe_destroy (&copy);
        return;
    }
    lp_msg_set_parent (msg, parent);
    zmsg_append (routing, &copy);
    lp_msg_set_routing (msg, &routing);
    lp_value_t *metadata = lp_msg_metadata (msg);
    lp_value_t *content = lp_msg_content (msg);
    lp_value_set (metadata, LP_META_ENGINE, lp_value_int (-1));
    lp_value_set (metadata, LP_META_STATUS, lp_value_string (LP_STATUS_ERROR));
    lp_value_set (metadata, LP_META_ENAME, lp_value_string (LP_ENAME_UNKNOWN_REQUEST));
    lp_value_set (content, LP_CONTENT_STATUS, lp_value_string (LP_STATUS_ERROR));
    lp_value_set (content, LP_CONTENT_ENAME, lp_value_string (LP_ENAME_UNKNOWN_REQUEST));
    lp_value_set (content, LP_CONTENT_EVALUE, lp_value_string (why));
    lp_value_set (content, LP_CONTENT_TRACEBACK, lp_value_string (""));
    lp_wire_send (self->wire, &msg, self->registration);
}

//  The store says msg_id is final: its waiters get its replies.
static int
s_on_store (zloop_t *loop, zsock_t *sock, void *arg)
{
    (void) loop;
    lp_fetch_t *self = (lp_fetch_t *) arg;
    char *command = NULL, *msg_id = NULL;
    if (zsock_recv (sock, "ss", &command, &msg_id) == 0 && command && msg_id
    &&  streq (command, "DONE")) {
        zlist_t *clients = (zlist_t *) zhashx_lookup (self->waiters, msg_id);
        for (zframe_t *client = clients? (zframe_t *) zlist_first (clients): NULL; client;
             client = (zframe_t *) zlist_next (clients)) {
            s_send_replies (self, msg_id, client);
            self->nwaiters--;
        }
        zhashx_delete (self->waiters, msg_id);
    }
    zstr_free (&command);
    zstr_free (&msg_id);
    return 0;
}

//  Replies that come back for resubmitted requests: the store has them.
static int
s_on_dealer (zloop_t *loop, zsock_t *sock, void *arg)
{
    (void) loop; (void) arg;
    zmsg_t *msg;
    while ((msg = zmsg_recv (sock)))
        zmsg_destroy (&msg);
    return 0;
}

//  lpcontroller --restore: the tasks with retries left that the dead
//  controller left unfinished go to the scheduler again under their own
//  msg_id (pending in the store already, so their clients' result_request
//  waits for them), with a fresh date, a fresh signature, and one retry
//  less when they were running (that attempt is spent). Their replies
//  come to our DEALER (dropped) and, through the store, to their clients.
static void
s_resubmit_restored (lp_fetch_t *self)
{
    bool running = false;
    char *msg_id;
    while ((msg_id = lp_store_restored_next (self->store, &running))) {
        int kind = LP_STORE_TASK;
        zmsg_t *frames = lp_store_request_frames (self->store, msg_id, &kind);
        char err [128], date [32];
        lp_value_t *header = frames? lp_wire_decode_frame (frames, 0, LP_FRAME_HEADER,
                                                           err, sizeof err): NULL;
        const lp_value_t *value = header? lp_value_get (header, LP_HDR_RETRIES): NULL;
        int64_t retries = value && lp_value_type (value) == LP_INT? lp_value_as_int (value): 0;
        lp_util_iso_now (date);
        int rc = -1;
        if (header
        &&  lp_value_set (header, LP_HDR_DATE, lp_value_string (date)) == 0
        &&  lp_value_set (header, LP_HDR_RETRIES,
                          lp_value_int (running && retries > 0? retries - 1: retries)) == 0) {
            lp_value_t *gone = lp_value_take (header, LP_HDR_TASK_ID);
            lp_value_destroy (&gone);
            if (lp_wire_replace (self->wire, frames, 0, LP_FRAME_HEADER, header) == 0
            &&  zmsg_send (&frames, self->task) == 0)
                rc = 0;
        }
        if (rc != 0)
            lp_store_error (self->store, msg_id, -1, LP_ENAME_CONTROLLER_RESTARTED,
                            "the controller stopped before this task ended, and the "
                            "restored one could not resubmit it");
        lp_value_destroy (&header);
        zmsg_destroy (&frames);
        free (msg_id);
    }
}

lp_fetch_t *
lp_fetch_new (lp_store_t *store, lp_wire_t *wire, zsock_t *registration,
              zloop_t *loop, const char *task_endpoint, const char *mux_endpoint)
{
    lp_fetch_t *self = (lp_fetch_t *) zmalloc (sizeof (lp_fetch_t));
    self->store = store;
    self->wire = wire;
    self->registration = registration;
    self->loop = loop;
    self->waiters = zhashx_new ();
    if (!self->waiters) {
        free (self);
        return NULL;
    }
    zhashx_set_destructor (self->waiters, s_waiters_free);
    if (store) {
        self->task = zsock_new (ZMQ_DEALER);
        self->mux = zsock_new (ZMQ_DEALER);
        if (self->task && self->mux) {
            lp_bind_connect_self (self->task);      //  CURVE keys (a secure cluster)
            lp_bind_connect_self (self->mux);
        }
        if (!self->task || !self->mux
        ||  zsock_connect (self->task, "%s", task_endpoint) != 0
        ||  zsock_connect (self->mux, "%s", mux_endpoint) != 0) {
            lp_fetch_destroy (&self);
            return NULL;
        }
        lp_wire_tune_socket (self->task);
        lp_wire_tune_socket (self->mux);
        zsock_set_rcvtimeo (self->task, 0);
        zsock_set_rcvtimeo (self->mux, 0);
        zloop_reader (loop, lp_store_events (store), s_on_store, self);
        zloop_reader (loop, self->task, s_on_dealer, self);
        zloop_reader (loop, self->mux, s_on_dealer, self);
        s_resubmit_restored (self);
    }
    return self;
}

void
lp_fetch_destroy (lp_fetch_t **self_p)
{
    lp_fetch_t *self = *self_p;
    if (!self)
        return;
    if (self->loop && self->store) {
        zloop_reader_end (self->loop, lp_store_events (self->store));
        if (self->task)
            zloop_reader_end (self->loop, self->task);
        if (self->mux)
            zloop_reader_end (self->loop, self->mux);
    }
    zsock_destroy (&self->task);
    zsock_destroy (&self->mux);
    zhashx_destroy (&self->waiters);
    free (self);
    *self_p = NULL;
}

//  --------------------------------------------------------------------

static void
s_answer (lp_fetch_t *self, lp_msg_t *request, const char *type, lp_value_t *content)
{
    lp_msg_t *reply = content? lp_msg_new_reply (request, type): NULL;
    if (!reply) {
        lp_value_destroy (&content);
        return;
    }
    lp_msg_set_content (reply, content);
    lp_wire_send (self->wire, &reply, self->registration);
}

static void
s_answer_error (lp_fetch_t *self, lp_msg_t *request, const char *type,
                const char *ename, const char *evalue)
{
    lp_value_t *content = lp_value_map ();
    if (content) {
        lp_value_set (content, LP_CONTENT_STATUS, lp_value_string (LP_STATUS_ERROR));
        lp_value_set (content, LP_CONTENT_ENAME, lp_value_string (ename));
        lp_value_set (content, LP_CONTENT_EVALUE, lp_value_string (evalue));
        lp_value_set (content, LP_CONTENT_TRACEBACK, lp_value_string (""));
    }
    s_answer (self, request, type, content);
}

//  content.msg_ids: an array of strings (else NULL, answered with an error)
static const lp_value_t *
s_ids (lp_fetch_t *self, lp_msg_t *msg, const char *reply_type)
{
    const lp_value_t *ids = lp_value_get (lp_msg_content (msg), "msg_ids");
    bool ok = ids && lp_value_type (ids) == LP_ARRAY && lp_value_len (ids) <= LP_FETCH_IDS_MAX;
    for (size_t i = 0; ok && i < lp_value_len (ids); i++)
        ok = lp_value_type (lp_value_at (ids, i)) == LP_STRING;
    if (!ok) {
        char why [128];
        snprintf (why, sizeof why, "content.msg_ids must be an array of at most %d strings",
                  LP_FETCH_IDS_MAX);
        s_answer_error (self, msg, reply_type, LP_ENAME_PROTOCOL, why);
        return NULL;
    }
    return ids;
}

static void
s_fetch (lp_fetch_t *self, lp_msg_t *msg)
{
    const lp_value_t *ids = s_ids (self, msg, LP_FETCH_REPLY);
    if (!ids)
        return;
    lp_value_t *content = lp_value_map ();
    lp_value_t *records = lp_value_array ();
    for (size_t i = 0; content && records && i < lp_value_len (ids); i++) {
        const char *id = lp_value_as_string (lp_value_at (ids, i), NULL);
        lp_value_t *info = lp_store_lookup (self->store, id, false);
        if (!info) {
            info = lp_value_map ();
            if (info) {
                lp_value_set (info, "msg_id", lp_value_string (id));
                lp_value_set (info, "state", lp_value_string ("unknown"));
            }
        }
        if (info)
            lp_value_append (records, info);
    }
    if (content && records) {
        lp_value_set (content, LP_CONTENT_STATUS, lp_value_string (LP_STATUS_OK));
        lp_value_set (content, "records", records);
        records = NULL;
    }
    lp_value_destroy (&records);
    s_answer (self, msg, LP_FETCH_REPLY, content);
}

static void
s_result (lp_fetch_t *self, lp_msg_t *msg)
{
    const lp_value_t *ids = s_ids (self, msg, LP_RESULT_REPLY);
    zframe_t *client = zmsg_first (lp_msg_routing (msg));
    if (!ids || !client)
        return;
    lp_value_t *pending = lp_value_array ();
    lp_value_t *unknown = lp_value_array ();
    for (size_t i = 0; pending && unknown && i < lp_value_len (ids); i++) {
        const char *id = lp_value_as_string (lp_value_at (ids, i), NULL);
        bool room = self->nwaiters < LP_FETCH_WAITERS_MAX;
        lp_value_t *info = lp_store_lookup (self->store, id, room);
        const char *state = info? lp_wire_map_string (info, "state"): NULL;
        if (!state) {
            s_send_unknown (self, id, client, "no record of this msg_id in the task store");
            lp_value_append (unknown, lp_value_string (id));
        }
        else
        if (streq (state, "pending")) {
            zlist_t *clients = (zlist_t *) zhashx_lookup (self->waiters, id);
            if (!clients && room) {
                clients = zlist_new ();
                if (clients && zhashx_insert (self->waiters, id, clients) != 0)
                    zlist_destroy (&clients);
            }
            zframe_t *copy = clients? zframe_dup (client): NULL;
            if (copy && zlist_append (clients, copy) == 0) {
                self->nwaiters++;
                lp_value_append (pending, lp_value_string (id));
            }
            else {
                zframe_destroy (&copy);
                s_send_unknown (self, id, client, "too many clients wait for pending results");
            }
        }
        else
            s_send_replies (self, id, client);
        lp_value_destroy (&info);
    }
    lp_value_t *content = lp_value_map ();
    if (content && pending && unknown) {
        lp_value_set (content, LP_CONTENT_STATUS, lp_value_string (LP_STATUS_OK));
        lp_value_set (content, "pending", pending);
        lp_value_set (content, "unknown", unknown);
        pending = unknown = NULL;
    }
    lp_value_destroy (&pending);
    lp_value_destroy (&unknown);
    s_answer (self, msg, LP_RESULT_REPLY, content);
}

static void
s_history (lp_fetch_t *self, lp_msg_t *msg)
{
    char err [256];
    lp_value_t *records = lp_store_history (self->store, lp_msg_content (msg), err, sizeof err);
    if (!records) {
        s_answer_error (self, msg, LP_HISTORY_REPLY, LP_ENAME_STORE, err);
        return;
    }
    lp_value_t *content = lp_value_map ();
    if (content) {
        lp_value_set (content, LP_CONTENT_STATUS, lp_value_string (LP_STATUS_OK));
        lp_value_set (content, "records", records);
    }
    else
        lp_value_destroy (&records);
    s_answer (self, msg, LP_HISTORY_REPLY, content);
}

static void
s_purge (lp_fetch_t *self, lp_msg_t *msg)
{
    const lp_value_t *before = lp_value_get (lp_msg_content (msg), "before");
    int64_t usec;
    if (before && lp_value_type (before) != LP_NIL
    &&  (lp_value_type (before) != LP_STRING
         || lp_util_iso_parse (lp_value_as_string (before, NULL), &usec) != 0)) {
        s_answer_error (self, msg, LP_PURGE_REPLY, LP_ENAME_PROTOCOL,
                        "content.before must be an ISO 8601 UTC date");
        return;
    }
    char err [256];
    int64_t removed = lp_store_purge (self->store,
                                      before && lp_value_type (before) == LP_STRING
                                      ? lp_value_as_string (before, NULL): NULL,
                                      err, sizeof err);
    if (removed < 0) {
        s_answer_error (self, msg, LP_PURGE_REPLY, LP_ENAME_STORE, err);
        return;
    }
    lp_value_t *content = lp_value_map ();
    if (content) {
        lp_value_set (content, LP_CONTENT_STATUS, lp_value_string (LP_STATUS_OK));
        lp_value_set (content, "removed", lp_value_int (removed));
    }
    s_answer (self, msg, LP_PURGE_REPLY, content);
}

//  Sends the stored request msg_id again under a new id (into new_id).
//  0, or -1 with why.
static int
s_resubmit_one (lp_fetch_t *self, const char *msg_id, char new_id [LP_ID_CHARS + 1],
                char *why, size_t whylen)
{
    int kind = LP_STORE_TASK;
    zmsg_t *frames = lp_store_request_frames (self->store, msg_id, &kind);
    if (!frames) {
        snprintf (why, whylen, "no stored request %s (unknown, purged, or larger than "
                  "the store keeps)", msg_id);
        return -1;
    }
    if (kind == LP_STORE_CONTROL) {
        zmsg_destroy (&frames);
        snprintf (why, whylen, "%s is a control request: not resubmitted", msg_id);
        return -1;
    }
    char err [128], date [32];
    lp_value_t *header = lp_wire_decode_frame (frames, 0, LP_FRAME_HEADER, err, sizeof err);
    lp_util_random_id (new_id);
    lp_util_iso_now (date);
    int rc = -1;
    if (header
    &&  lp_value_set (header, LP_HDR_MSG_ID, lp_value_string (new_id)) == 0
    &&  lp_value_set (header, LP_HDR_DATE, lp_value_string (date)) == 0) {
        lp_value_t *gone = lp_value_take (header, LP_HDR_TASK_ID);
        lp_value_destroy (&gone);
        if (lp_wire_replace (self->wire, frames, 0, LP_FRAME_HEADER, header) == 0) {
            //  Known as pending before the scheduler has even read it, so
            //  that a fetch of the new id right away finds it.
            lp_store_expect (self->store, new_id);
            zsock_t *sock = kind == LP_STORE_DIRECT? self->mux: self->task;
            if (zmsg_send (&frames, sock) == 0)
                rc = 0;
            else
                lp_store_error (self->store, new_id, -1, LP_ENAME_ENGINE,
                                "the controller could not resubmit the request");
        }
    }
    if (rc != 0)
        snprintf (why, whylen, "cannot resubmit %s: %s", msg_id,
                  header? "signing failed": err);
    lp_value_destroy (&header);
    zmsg_destroy (&frames);
    return rc;
}

static void
s_resubmit (lp_fetch_t *self, lp_msg_t *msg)
{
    const lp_value_t *ids = s_ids (self, msg, LP_RESUBMIT_REPLY);
    if (!ids)
        return;
    lp_value_t *fresh = lp_value_array ();
    lp_value_t *errors = lp_value_map ();
    for (size_t i = 0; fresh && errors && i < lp_value_len (ids); i++) {
        const char *id = lp_value_as_string (lp_value_at (ids, i), NULL);
        char new_id [LP_ID_CHARS + 1], why [256];
        if (s_resubmit_one (self, id, new_id, why, sizeof why) == 0)
            lp_value_append (fresh, lp_value_string (new_id));
        else {
            lp_value_append (fresh, lp_value_nil ());
            lp_value_set (errors, id, lp_value_string (why));
        }
    }
    lp_value_t *content = lp_value_map ();
    if (content && fresh && errors) {
        lp_value_set (content, LP_CONTENT_STATUS, lp_value_string (LP_STATUS_OK));
        lp_value_set (content, "msg_ids", fresh);
        lp_value_set (content, "errors", errors);
        fresh = errors = NULL;
    }
    lp_value_destroy (&fresh);
    lp_value_destroy (&errors);
    s_answer (self, msg, LP_RESUBMIT_REPLY, content);
}

bool
lp_fetch_handle (lp_fetch_t *self, lp_msg_t *msg)
{
    assert (self);
    const char *type = lp_msg_type (msg);
    static const char *types [][2] = {
        { LP_FETCH_REQUEST, LP_FETCH_REPLY }, { LP_RESULT_REQUEST, LP_RESULT_REPLY },
        { LP_HISTORY_REQUEST, LP_HISTORY_REPLY }, { LP_PURGE_REQUEST, LP_PURGE_REPLY },
        { LP_RESUBMIT_REQUEST, LP_RESUBMIT_REPLY } };
    int which = -1;
    for (int i = 0; i < 5 && which < 0; i++)
        if (streq (type, types [i][0]))
            which = i;
    if (which < 0)
        return false;
    if (!self->store) {
        s_answer_error (self, msg, types [which][1], LP_ENAME_STORE,
                        "the task store is off (lpcontroller --no-db)");
        return true;
    }
    switch (which) {
        case 0: s_fetch (self, msg); break;
        case 1: s_result (self, msg); break;
        case 2: s_history (self, msg); break;
        case 3: s_purge (self, msg); break;
        default: s_resubmit (self, msg); break;
    }
    return true;
}
