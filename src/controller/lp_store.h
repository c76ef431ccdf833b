/*  =========================================================================
    lp_store - the task store: the controller's request record in SQLite

    <profile>/db/tasks.sqlite3 (WAL), tables `requests` (one row per
    request a client sent: msg_id, session, kind, msg_type, code, targets,
    flags, status, engine, submitted/started/completed, stdout, ename,
    evalue), `request_frames` (its signed frames: all of them when they
    fit under max_result, so it can be resubmitted) and `replies` (one row
    per reply: one for a task, one per engine for a direct request, with
    the reply's signed frames when they fit under max_result).
    docs/operations.md describes the columns.

    The data-path actors (mux, scheduler) call the hooks below from their
    own threads: each copies what it needs under a mutex and returns; a
    writer thread decodes the copies and writes them in batched
    transactions, so forwarding never waits on disk. The hub reads (fetch,
    history) and purges through its own connection. Requests that are not
    final yet are known in memory (`pending`), so a fetch never misses a
    request that the writer has not written yet; a watched pending request
    is announced as "DONE" <msg_id> on lp_store_events once its final row
    is committed.
    =========================================================================
*/
#ifndef LP_STORE_H_INCLUDED
#define LP_STORE_H_INCLUDED

#include "lp_util.h"
#include "lp_value.h"
#include "lp_wire.h"

typedef struct _lp_store_t lp_store_t;

#define LP_STORE_MAX_RESULT     (1024 * 1024)   //  bytes of a reply kept, default

typedef enum {
    LP_STORE_DIRECT = 0,                //  mux: requests that name engines
    LP_STORE_TASK,                      //  scheduler: load-balanced
    LP_STORE_CONTROL                    //  control channel
} lp_store_kind_t;

//  Opens (creates) the database at path, in WAL mode, with its tables,
//  and starts the writer. Replies whose frames exceed max_result bytes
//  are kept as "too large to keep". NULL with err = "<path>: <reason>".
lp_store_t *lp_store_new (const char *path, size_t max_result, char *err, size_t errlen);
//  Writes what is queued, stops the writer, closes the database.
void        lp_store_destroy (lp_store_t **self_p);

//  Hooks of the data path (any thread; never touch the disk). msg is the
//  whole message with its delimiter at frame delim; it is only read.
//  A request arrived; engines: the engines it went to (direct), or NULL.
void        lp_store_request (lp_store_t *self, lp_store_kind_t kind, const char *msg_id,
                              zmsg_t *msg, size_t delim,
                              const int64_t *engines, size_t nengines);
//  A task was sent to an engine.
void        lp_store_started (lp_store_t *self, const char *msg_id, int engine);
//  The reply from engine went to the client (the final one, for a task).
void        lp_store_reply (lp_store_t *self, const char *msg_id, int engine,
                            zmsg_t *msg, size_t delim);
//  The controller answered the request itself with an error (engine -1:
//  the request as a whole).
void        lp_store_error (lp_store_t *self, const char *msg_id, int engine,
                            const char *ename, const char *evalue);
//  A request the hub is about to send itself (resubmit): pending from now.
void        lp_store_expect (lp_store_t *self, const char *msg_id);

//  Query side (the hub's thread).
//  PAIR socket: "DONE" <msg_id> for watched requests when final.
zsock_t    *lp_store_events (lp_store_t *self);
//  What the store knows of msg_id: a map {msg_id, kind, state "pending"
//  or "done", engines: [ids] (direct) or [-1]}; NULL when unknown. With
//  watch, a pending request is announced on lp_store_events when final.
lp_value_t *lp_store_lookup (lp_store_t *self, const char *msg_id, bool watch);
//  The stored replies of a final request as messages ready to send
//  (frames from the delimiter, signed by wire, fresh header; the parent
//  is the original request): a list of zmsg_t (caller destroys).
zlist_t    *lp_store_replies (lp_store_t *self, const char *msg_id, lp_wire_t *wire);
//  Records matching query {status, engine, since, until, limit, msg_ids}
//  (all optional; since/until ISO dates on submitted), newest first, as
//  an array of maps. NULL with err.
lp_value_t *lp_store_history (lp_store_t *self, const lp_value_t *query,
                              char *err, size_t errlen);
//  Removes final records completed before the ISO date `before` (NULL:
//  all final ones). The count, or -1 with err.
int64_t     lp_store_purge (lp_store_t *self, const char *before, char *err, size_t errlen);
//  The stored signed frames of a request (from its delimiter), NULL when
//  unknown or not kept (over the size cap); *kind_p gets its kind.
zmsg_t     *lp_store_request_frames (lp_store_t *self, const char *msg_id, int *kind_p);
//  lpcontroller --restore, before the data path starts: every request
//  that the dead controller left queued or running ends with the error
//  ename/evalue (its reply row: engine -1), written before this returns,
//  so that a client asking for it (result_request) gets that error;
//  except tasks whose header asked for retries (and whose frames are
//  kept): those are pending again, to be resubmitted under their own
//  msg_id (lp_store_restored_next; lp_fetch does it once the scheduler
//  runs), *resubmit_p gets how many. The count failed, or -1.
int64_t     lp_store_restore (lp_store_t *self, const char *ename, const char *evalue,
                              int64_t *resubmit_p);
//  The next task lp_store_restore left to resubmit: its msg_id (caller
//  frees), *running_p true when it was running (an attempt was spent);
//  NULL when none is left.
char       *lp_store_restored_next (lp_store_t *self, bool *running_p);
//  The content map of a stored message (the `frames` column of replies or
//  request_frames, as read by another connection: the dashboard), NULL
//  when the blob is not such frames or does not decode.
lp_value_t *lp_store_blob_content (const void *blob, size_t size);
//  Records written, dropped (queue over its cap) so far.
uint64_t    lp_store_written (lp_store_t *self);
//  Waits until every record queued so far is committed (tests).
void        lp_store_sync (lp_store_t *self);
void        lp_store_test (bool verbose);

#endif
