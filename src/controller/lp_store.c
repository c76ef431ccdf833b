/*  =========================================================================
    lp_store - the task store, see lp_store.h

    Threads: the hooks run on the data-path actors' threads and only copy
    the frames into one blob and queue a record under `lock`; the writer
    thread (s_writer, nice LP_STORE_NICE) gathers for LP_STORE_LINGER_USEC,
    takes the whole queue at once, reads the fields it needs from each
    blob (scanning the msgpack bytes; decoding only flags, long text and
    errors: never on the data path) and writes the batch in one
    transaction on its own connection. Rows are addressed by rowid
    (requests: the writer's own msg_id -> rowid map; replies and
    request_frames keyed by the request's rowid), so a task costs appends,
    not updates of random index pages. The hub reads and purges on a
    second connection (WAL: readers do not block the writer, and a purge
    waits for the writer's transaction at most LP_STORE_BUSY_MSEC).

    The queue is bounded by bytes (LP_STORE_QUEUE_BYTES): past it, records
    keep their row but lose their frames (counted, logged once a minute),
    so memory stays bounded when the disk is slower than the cluster.
    =========================================================================
*/
#include "lp_store.h"
#include <malloc.h>
#include "lp_codec.h"
#include "lp_msg.h"
#include "lp_proto.h"
#include "lp_reply.h"

#include <pthread.h>
#include <sqlite3.h>
#include <sys/resource.h>

#define LP_STORE_TAG            0x1b0c0011
#define LP_STORE_ID_MAX         64          //  longer msg_ids are not stored
#define LP_STORE_CODE_MAX       4096        //  code / function text kept
#define LP_STORE_STDOUT_MAX     65536       //  stdout kept per reply
#define LP_STORE_SMALL_FRAME    65536       //  content kept for its text when
                                            //  the whole message is too large
#define LP_STORE_QUEUE_BYTES    (256 * 1024 * 1024)
#define LP_STORE_BUSY_MSEC      5000
#define LP_STORE_LINGER_USEC    20000       //  gather a batch after a wake-up
#define LP_STORE_NICE           19          //  the writer yields to the data path
#define LP_STORE_CACHE_KIB      "2048"      //  SQLite page cache (PRAGMA cache_size)
#define LP_STORE_TRIM_RECORDS   10000       //  records written between malloc_trim

typedef enum { REC_REQUEST, REC_STARTED, REC_REPLY, REC_ERROR } s_rec_type_t;

typedef struct _s_rec_t {
    struct _s_rec_t *next;              //  queue order
    s_rec_type_t type;                  //  what happened
    int kind;                           //  lp_store_kind_t (REQUEST)
    int engine;                         //  engine id, -1 none / whole request
    int64_t when;                       //  wall clock, usec
    char msg_id [LP_STORE_ID_MAX + 1];  //  the client's msg_id
    uint8_t *blob;                      //  copies of the frames from the
                                        //  delimiter on (s_copy_blob)
    size_t blob_size;
    zmsg_t *frames;                     //  the blob as frames (writer)
    bool complete;                      //  frames are the whole message
    size_t size;                        //  bytes of the whole message
    char *targets;                      //  "0,1,2" (direct REQUEST)
    size_t nengines;                    //  replies that end it (direct), 0: one
    char *ename;                        //  REC_ERROR
    char *evalue;                       //  REC_ERROR
} s_rec_t;

//  A request not final yet (the in-memory part of the record)
typedef struct {
    int kind;                           //  lp_store_kind_t
    int64_t *engines;                   //  direct: where it went
    size_t nengines;
    size_t done;                        //  replies written
    bool failed;                        //  some reply was an error
    bool aborted;                       //  ... ename Aborted
    bool watched;                       //  announce DONE when it leaves
    char msg_id [LP_STORE_ID_MAX + 1];  //  its key in `pending` (not copied)
} s_pending_t;

struct _lp_store_t {
    uint32_t tag;                       //  LP_STORE_TAG
    char *path;                         //  the database file
    size_t max_result;                  //  bytes of a reply we keep
    sqlite3 *db;                        //  the writer's connection
    sqlite3 *reader;                    //  the hub's connection
    pthread_t thread;                   //  the writer
    bool started;                       //  thread runs
    pthread_mutex_t lock;               //  guards all below
    pthread_cond_t wake;                //  queue not empty, or stop
    pthread_cond_t synced;              //  a batch was committed
    s_rec_t *head, *tail;               //  the queue
    size_t queued_bytes;                //  frame bytes in the queue
    uint64_t queued;                    //  records queued ever
    uint64_t written;                   //  records committed ever
    uint64_t stripped;                  //  records that lost their frames
    int64_t stripped_logged;            //  zclock_mono of the last log line
    bool stop;                          //  destroy asked
    zhashx_t *pending;                  //  msg_id -> s_pending_t
    zlist_t *restored;                  //  lp_store_restore: "q"/"r" + msg_id
                                        //  of tasks to resubmit
    zhashx_t *rowids;                   //  msg_id -> rowid, writer only
    zsock_t *events_out;                //  PAIR, writer's end
    zsock_t *events_in;                 //  PAIR, hub's end
    //  The writer's statements, prepared once (writer thread only)
    sqlite3_stmt *st_request;           //  INSERT a request
    sqlite3_stmt *st_started;           //  a task went to an engine
    sqlite3_stmt *st_reply;             //  INSERT a reply
    sqlite3_stmt *st_update;            //  the request after a reply
    sqlite3_stmt *st_orphan;            //  a reply without a request row
    sqlite3_stmt *st_rowid;             //  a request's rowid by msg_id
    sqlite3_stmt *st_frames;            //  INSERT a request's frames
    char scratch [LP_STORE_STDOUT_MAX + 1];  //  writer's text buffer
};

//  The statement in *stmt_p, prepared on first use; NULL when SQLite
//  refuses it (logged).
static sqlite3_stmt *
s_stmt (lp_store_t *self, sqlite3_stmt **stmt_p, const char *sql)
{
    if (!*stmt_p && sqlite3_prepare_v2 (self->db, sql, -1, stmt_p, NULL) != SQLITE_OK) {
        zsys_error ("store: %s: %s", self->path, sqlite3_errmsg (self->db));
        *stmt_p = NULL;
    }
    return *stmt_p;
}

static void
s_rec_destroy (s_rec_t **self_p)
{
    s_rec_t *self = *self_p;
    if (self) {
        zmsg_destroy (&self->frames);
        free (self->blob);
        free (self->targets);
        free (self->ename);
        free (self->evalue);
        free (self);
        *self_p = NULL;
    }
}

static void
s_pending_free (void **item)
{
    s_pending_t *self = (s_pending_t *) *item;
    if (self) {
        free (self->engines);
        free (self);
        *item = NULL;
    }
}

static void
s_wstate_free (void **item)
{
    free (*item);
    *item = NULL;
}

static void
s_iso (int64_t usec, char out [32])
{
    time_t secs = (time_t) (usec / 1000000);
    struct tm tm;
    gmtime_r (&secs, &tm);
    size_t n = strftime (out, 32, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf (out + n, 32 - n, ".%06dZ", (int) (usec % 1000000));
}

//  --------------------------------------------------------------------
//  Frames <-> blob: per frame a 4-byte big-endian length, then the bytes

static zmsg_t *
s_blob_frames (const uint8_t *blob, size_t size)
{
    zmsg_t *msg = zmsg_new ();
    size_t at = 0;
    while (msg && at < size) {
        if (size - at < 4) {
            zmsg_destroy (&msg);
            break;
        }
        size_t len = ((size_t) blob [at] << 24) | ((size_t) blob [at + 1] << 16)
                   | ((size_t) blob [at + 2] << 8) | blob [at + 3];
        at += 4;
        if (len > size - at || zmsg_addmem (msg, blob + at, len) != 0) {
            zmsg_destroy (&msg);
            break;
        }
        at += len;
    }
    return msg;
}

lp_value_t *
lp_store_blob_content (const void *blob, size_t size)
{
    zmsg_t *frames = blob? s_blob_frames ((const uint8_t *) blob, size): NULL;
    zframe_t *f = frames? zmsg_first (frames): NULL;
    for (size_t i = 0; f && i < LP_FRAME_CONTENT; i++)
        f = zmsg_next (frames);
    lp_value_t *content = NULL;
    if (f) {
        zframe_t *buffers [64];
        size_t nbuffers = 0;
        for (zframe_t *b = zmsg_next (frames); b && nbuffers < 64; b = zmsg_next (frames))
            buffers [nbuffers++] = b;
        char err [128];
        content = lp_codec_decode (zframe_data (f), zframe_size (f), nbuffers? buffers: NULL,
                                   nbuffers, err, sizeof err);
    }
    //  Strings of the content may point into the frames' buffers: copied
    lp_value_t *copy = content? lp_value_dup (content): NULL;
    lp_value_destroy (&content);
    zmsg_destroy (&frames);
    return copy;
}

//  Copies frames delim.. of msg into one blob (the format above): all
//  when the whole is at most max bytes, else the small maps only (header
//  .. metadata, content when small). One allocation on the data path;
//  the writer makes frames of it again.
static uint8_t *
s_copy_blob (zmsg_t *msg, size_t delim, size_t max, bool *complete, size_t *size_p,
             size_t *blob_size_p)
{
    size_t size = 0, index = 0;
    for (zframe_t *f = zmsg_first (msg); f; f = zmsg_next (msg), index++)
        if (index >= delim)
            size += zframe_size (f);
    *size_p = size;
    *complete = size <= max;
    size_t blob_size = 0;
    index = 0;
    for (zframe_t *f = zmsg_first (msg); f; f = zmsg_next (msg), index++) {
        size_t which = index - delim;
        if (index < delim)
            continue;
        if (!*complete && (which > LP_FRAME_CONTENT
                           || (which == LP_FRAME_CONTENT && zframe_size (f) > LP_STORE_SMALL_FRAME)))
            break;
        blob_size += 4 + zframe_size (f);
    }
    uint8_t *blob = (uint8_t *) malloc (blob_size? blob_size: 1);
    if (!blob)
        return NULL;
    uint8_t *p = blob;
    index = 0;
    for (zframe_t *f = zmsg_first (msg); f && (size_t) (p - blob) < blob_size;
         f = zmsg_next (msg), index++) {
        if (index < delim)
            continue;
        uint32_t len = (uint32_t) zframe_size (f);
        p [0] = (uint8_t) (len >> 24); p [1] = (uint8_t) (len >> 16);
        p [2] = (uint8_t) (len >> 8);  p [3] = (uint8_t) len;
        memcpy (p + 4, zframe_data (f), len);
        p += 4 + len;
    }
    *blob_size_p = blob_size;
    return blob;
}

//  --------------------------------------------------------------------
//  Hooks (data path)

//  Queues rec for the writer (lock held).
static void
s_enqueue_locked (lp_store_t *self, s_rec_t *rec)
{
    size_t bytes = rec->blob? rec->blob_size: 0;
    if (self->queued_bytes + bytes > LP_STORE_QUEUE_BYTES && rec->blob) {
        //  The disk cannot keep up: the row stays, its frames go.
        free (rec->blob);
        rec->blob = NULL;
        rec->complete = false;
        bytes = 0;
        self->stripped++;
        if (zclock_mono () - self->stripped_logged > 60000) {
            self->stripped_logged = zclock_mono ();
            zsys_warning ("store: the writer is behind; %llu records kept without their "
                          "frames so far", (unsigned long long) self->stripped);
        }
    }
    bool was_empty = self->head == NULL;
    if (self->tail)
        self->tail->next = rec;
    else
        self->head = rec;
    self->tail = rec;
    self->queued_bytes += bytes;
    self->queued++;
    if (was_empty)
        pthread_cond_signal (&self->wake);
}

static void
s_enqueue (lp_store_t *self, s_rec_t *rec)
{
    pthread_mutex_lock (&self->lock);
    s_enqueue_locked (self, rec);
    pthread_mutex_unlock (&self->lock);
}

static s_rec_t *
s_rec_new (s_rec_type_t type, const char *msg_id, int engine)
{
    if (!msg_id || strlen (msg_id) > LP_STORE_ID_MAX)
        return NULL;
    s_rec_t *rec = (s_rec_t *) calloc (1, sizeof (s_rec_t));
    if (!rec)
        return NULL;
    rec->type = type;
    rec->engine = engine;
    rec->when = lp_util_wall_usec ();
    snprintf (rec->msg_id, sizeof rec->msg_id, "%s", msg_id);
    return rec;
}

//  A pending entry for msg_id, created when absent (lock held).
static s_pending_t *
s_pending_touch (lp_store_t *self, const char *msg_id, int kind)
{
    s_pending_t *entry = (s_pending_t *) zhashx_lookup (self->pending, msg_id);
    if (!entry) {
        entry = (s_pending_t *) calloc (1, sizeof (s_pending_t));
        if (!entry)
            return NULL;
        entry->kind = kind;
        snprintf (entry->msg_id, sizeof entry->msg_id, "%s", msg_id);
        if (zhashx_insert (self->pending, entry->msg_id, entry) != 0) {
            free (entry);
            return NULL;
        }
    }
    return entry;
}

void
lp_store_request (lp_store_t *self, lp_store_kind_t kind, const char *msg_id,
                  zmsg_t *msg, size_t delim, const int64_t *engines, size_t nengines)
{
    if (!self)
        return;
    s_rec_t *rec = s_rec_new (REC_REQUEST, msg_id, -1);
    if (!rec)
        return;
    rec->kind = kind;
    rec->nengines = nengines;
    if (msg)
        rec->blob = s_copy_blob (msg, delim, self->max_result, &rec->complete, &rec->size,
                                 &rec->blob_size);
    int64_t *copy = NULL;
    if (nengines) {
        copy = (int64_t *) malloc (nengines * sizeof (int64_t));
        rec->targets = (char *) malloc (nengines * 21 + 1);
        if (copy)
            memcpy (copy, engines, nengines * sizeof (int64_t));
        if (rec->targets) {
            size_t used = 0;
            rec->targets [0] = 0;
            for (size_t i = 0; i < nengines; i++)
                used += snprintf (rec->targets + used, 21, "%s%lld", i? ",": "",
                                  (long long) engines [i]);
        }
    }
    pthread_mutex_lock (&self->lock);
    s_pending_t *entry = s_pending_touch (self, msg_id, kind);
    if (entry && !entry->engines) {
        entry->kind = kind;
        entry->engines = copy;
        entry->nengines = copy? nengines: 0;
        copy = NULL;
    }
    s_enqueue_locked (self, rec);
    pthread_mutex_unlock (&self->lock);
    free (copy);
}

void
lp_store_started (lp_store_t *self, const char *msg_id, int engine)
{
    if (!self)
        return;
    s_rec_t *rec = s_rec_new (REC_STARTED, msg_id, engine);
    if (rec)
        s_enqueue (self, rec);
}

void
lp_store_reply (lp_store_t *self, const char *msg_id, int engine, zmsg_t *msg, size_t delim)
{
    if (!self)
        return;
    s_rec_t *rec = s_rec_new (REC_REPLY, msg_id, engine);
    if (!rec)
        return;
    rec->blob = s_copy_blob (msg, delim, self->max_result, &rec->complete, &rec->size,
                             &rec->blob_size);
    s_enqueue (self, rec);
}

void
lp_store_error (lp_store_t *self, const char *msg_id, int engine,
                const char *ename, const char *evalue)
{
    if (!self)
        return;
    s_rec_t *rec = s_rec_new (REC_ERROR, msg_id, engine);
    if (!rec)
        return;
    rec->ename = strdup (ename? ename: "Error");
    rec->evalue = strdup (evalue? evalue: "");
    s_enqueue (self, rec);
}

void
lp_store_expect (lp_store_t *self, const char *msg_id)
{
    if (!self)
        return;
    pthread_mutex_lock (&self->lock);
    s_pending_touch (self, msg_id, LP_STORE_TASK);
    pthread_mutex_unlock (&self->lock);
}

//  --------------------------------------------------------------------
//  The writer

static const char *s_kinds [] = { "direct", "task", "control" };

static const char *s_schema =
    "CREATE TABLE IF NOT EXISTS requests ("
    " msg_id TEXT PRIMARY KEY, session TEXT, kind TEXT, msg_type TEXT,"
    " code TEXT, targets TEXT, flags TEXT, status TEXT, engine INTEGER,"
    " submitted TEXT, started TEXT, completed TEXT, stdout TEXT,"
    " ename TEXT, evalue TEXT, replies INTEGER NOT NULL DEFAULT 0,"
    " size INTEGER);"
    //  The request's signed frames, apart: a row of requests is updated
    //  when replies come, and SQLite rewrites a whole row (its blobs too)
    //  on every update. complete: all the frames (it can be resubmitted),
    //  else only header .. metadata (content when small).
    "CREATE TABLE IF NOT EXISTS request_frames ("
    " request INTEGER PRIMARY KEY, complete INTEGER NOT NULL, frames BLOB);"
    //  Replies are keyed by their request's rowid, which grows: their
    //  index is appended to, not updated at random places as an index of
    //  random msg_ids would be (that cost a page read and write per task).
    "CREATE TABLE IF NOT EXISTS replies ("
    " request INTEGER NOT NULL, engine INTEGER NOT NULL, msg_id TEXT NOT NULL,"
    " status TEXT, ename TEXT, evalue TEXT, started TEXT, completed TEXT, stdout TEXT,"
    " too_large INTEGER NOT NULL DEFAULT 0, size INTEGER, frames BLOB,"
    " UNIQUE (request, engine));"
    "CREATE INDEX IF NOT EXISTS requests_submitted ON requests (submitted);";

//  Binds text, or NULL when s is NULL.
static void
s_bind_text (sqlite3_stmt *stmt, int i, const char *s, size_t cap)
{
    if (!s)
        sqlite3_bind_null (stmt, i);
    else {
        size_t len = strlen (s);
        if (len > cap) {
            //  Cut at a UTF-8 character boundary.
            len = cap;
            while (len > 0 && ((unsigned char) s [len] & 0xc0) == 0x80)
                len--;
        }
        sqlite3_bind_text (stmt, i, s, (int) len, SQLITE_TRANSIENT);
    }
}

//  Frame `which` (from the delimiter) of a record's blob: its bytes, or
//  false when the copy does not have it. No allocation.
static bool
s_frame_bytes (s_rec_t *rec, size_t which, const uint8_t **data, size_t *len)
{
    size_t at = 0;
    for (size_t i = 0; rec->blob && at + 4 <= rec->blob_size; i++) {
        const uint8_t *p = rec->blob + at;
        size_t size = ((size_t) p [0] << 24) | ((size_t) p [1] << 16)
                    | ((size_t) p [2] << 8) | p [3];
        if (size > rec->blob_size - at - 4)
            return false;
        if (i == which) {
            *data = p + 4;
            *len = size;
            return true;
        }
        at += 4 + size;
    }
    return false;
}

//  Decodes map frame `which` (the rare cases: flags, long text, errors);
//  the content with the copy's buffers, which it may refer to.
static lp_value_t *
s_decode (s_rec_t *rec, size_t which)
{
    if (!rec->frames && rec->blob)
        rec->frames = s_blob_frames (rec->blob, rec->blob_size);
    zmsg_t *frames = rec->frames;
    if (!frames)
        return NULL;
    zframe_t *f = zmsg_first (frames);
    for (size_t i = 0; f && i < which; i++)
        f = zmsg_next (frames);
    if (!f)
        return NULL;
    zframe_t *buffers [64];
    size_t nbuffers = 0;
    if (which == LP_FRAME_CONTENT) {
        for (zframe_t *b = zmsg_next (frames); b && nbuffers < 64; b = zmsg_next (frames))
            buffers [nbuffers++] = b;
    }
    char err [128];
    return lp_codec_decode (zframe_data (f), zframe_size (f), nbuffers? buffers: NULL,
                            nbuffers, err, sizeof err);
}

//  The str at key of a map frame, scanned from its bytes (no decoding:
//  the writer's common case); out must hold size bytes. NULL when absent,
//  not a str or too long.
static const char *
s_scan (s_rec_t *rec, size_t which, const char *key, char *out, size_t size)
{
    const uint8_t *data;
    size_t len;
    return s_frame_bytes (rec, which, &data, &len)
        && lp_reply_bytes_str (data, len, key, out, size) == 0? out: NULL;
}

//  True when the map frame's bytes contain key as a msgpack fixstr (it
//  may be a key of the map: worth decoding).
static bool
s_has_key (s_rec_t *rec, size_t which, const char *key)
{
    const uint8_t *data;
    size_t len, key_len = strlen (key);
    if (key_len > 31 || !s_frame_bytes (rec, which, &data, &len))
        return false;
    char pattern [32];
    pattern [0] = (char) (0xa0 | key_len);
    memcpy (pattern + 1, key, key_len);
    return memmem (data, len, pattern, key_len + 1) != NULL;
}

static const char *
s_str (const lp_value_t *map, const char *key)
{
    const lp_value_t *v = map? lp_value_get (map, key): NULL;
    return v && lp_value_type (v) == LP_STRING? lp_value_as_string (v, NULL): NULL;
}

//  "retries=2 timeout=100 after=a,b" from the header's scheduling flags
static void
s_flags (const lp_value_t *header, char *out, size_t size)
{
    static const char *keys [] = { LP_HDR_RETRIES, LP_HDR_TIMEOUT, LP_HDR_TIME_LIMIT,
                                   LP_HDR_AFTER, LP_HDR_FOLLOW, LP_HDR_SUCCESS, LP_HDR_FAILURE };
    size_t used = 0;
    out [0] = 0;
    for (size_t k = 0; k < sizeof keys / sizeof keys [0] && used < size; k++) {
        const lp_value_t *v = lp_value_get (header, keys [k]);
        if (!v || lp_value_type (v) == LP_NIL)
            continue;
        used += snprintf (out + used, size - used, "%s%s=", used? " ": "", keys [k]);
        if (used >= size)
            break;
        if (lp_value_type (v) == LP_ARRAY)
            for (size_t i = 0; i < lp_value_len (v) && used < size; i++) {
                const char *id = lp_value_as_string (lp_value_at (v, i), NULL);
                used += snprintf (out + used, size - used, "%s%s", i? ",": "", id? id: "?");
            }
        else
        if (lp_value_type (v) == LP_BOOL)
            used += snprintf (out + used, size - used, "%s", lp_value_as_bool (v)? "true": "false");
        else
            used += snprintf (out + used, size - used, "%lld", (long long) lp_value_as_int (v));
    }
    if (used >= size)
        out [size - 1] = 0;
}

static int
s_exec (sqlite3_stmt *stmt)
{
    int rc = sqlite3_step (stmt);
    sqlite3_reset (stmt);
    sqlite3_clear_bindings (stmt);
    return rc == SQLITE_DONE || rc == SQLITE_ROW? 0: -1;
}

//  The writer's own state of a request not final yet (map `rowids`, no
//  lock: only the writer uses it, so its work never holds up the data
//  path's hooks): the row, and the replies that end it.
typedef struct {
    int64_t rowid;                      //  in requests, 0 unknown
    size_t expected;                    //  replies that end it
    size_t done;                        //  replies written
    bool failed;                        //  one was an error
    bool aborted;                       //  ... Aborted
} s_wstate_t;

static s_wstate_t *
s_wstate (lp_store_t *self, const char *msg_id)
{
    s_wstate_t *state = (s_wstate_t *) zhashx_lookup (self->rowids, msg_id);
    if (!state) {
        state = (s_wstate_t *) calloc (1, sizeof (s_wstate_t));
        if (!state)
            return NULL;
        state->expected = 1;
        if (zhashx_insert (self->rowids, msg_id, state) != 0) {
            free (state);
            return NULL;
        }
    }
    return state;
}

static void
s_set_rowid (lp_store_t *self, const char *msg_id, int64_t rowid)
{
    s_wstate_t *state = s_wstate (self, msg_id);
    if (state)
        state->rowid = rowid;
}

//  The rowid of msg_id's request row: from memory, else looked up; 0
//  when there is none.
static int64_t
s_rowid (lp_store_t *self, const char *msg_id)
{
    s_wstate_t *state = (s_wstate_t *) zhashx_lookup (self->rowids, msg_id);
    int64_t rowid = state? state->rowid: 0;
    sqlite3_stmt *stmt;
    if (rowid == 0
    &&  (stmt = s_stmt (self, &self->st_rowid, "SELECT rowid FROM requests WHERE msg_id = ?1"))) {
        sqlite3_bind_text (stmt, 1, msg_id, -1, SQLITE_STATIC);
        if (sqlite3_step (stmt) == SQLITE_ROW)
            rowid = sqlite3_column_int64 (stmt, 0);
        sqlite3_reset (stmt);
        sqlite3_clear_bindings (stmt);
    }
    return rowid;
}

static void
s_write_request (lp_store_t *self, s_rec_t *rec)
{
    //  The common fields are scanned from the bytes; the header is
    //  decoded only when it carries flags or targets, the content only
    //  when its code is too long to scan.
    static const char *keys [] = { LP_HDR_TARGETS, LP_HDR_RETRIES, LP_HDR_TIMEOUT,
                                   LP_HDR_TIME_LIMIT, LP_HDR_AFTER, LP_HDR_FOLLOW,
                                   LP_HDR_SUCCESS, LP_HDR_FAILURE };
    bool decode = false;
    for (size_t k = 0; k < sizeof keys / sizeof keys [0] && !decode; k++)
        decode = s_has_key (rec, LP_FRAME_HEADER, keys [k]);
    lp_value_t *header = decode? s_decode (rec, LP_FRAME_HEADER): NULL;
    lp_value_t *content = NULL;
    char session [LP_STORE_ID_MAX * 2 + 1], msg_type [64];
    const char *code = s_scan (rec, LP_FRAME_CONTENT, "code", self->scratch,
                               LP_STORE_CODE_MAX + 1);
    if (!code)
        code = s_scan (rec, LP_FRAME_CONTENT, "fn", self->scratch, LP_STORE_CODE_MAX + 1);
    if (!code && (s_has_key (rec, LP_FRAME_CONTENT, "code")
              ||  s_has_key (rec, LP_FRAME_CONTENT, "fn"))) {
        content = s_decode (rec, LP_FRAME_CONTENT);
        code = s_str (content, "code");
        if (!code)
            code = s_str (content, "fn");
    }
    char flags [512] = "", targets [1024] = "";
    if (header)
        s_flags (header, flags, sizeof flags);
    const lp_value_t *t = header? lp_value_get (header, LP_HDR_TARGETS): NULL;
    if (!rec->targets && t && lp_value_type (t) == LP_ARRAY) {
        size_t used = 0;
        for (size_t i = 0; i < lp_value_len (t) && used < sizeof targets; i++)
            used += snprintf (targets + used, sizeof targets - used, "%s%lld", i? ",": "",
                              (long long) lp_value_as_int (lp_value_at (t, i)));
    }
    char submitted [32];
    s_iso (rec->when, submitted);
    sqlite3_stmt *stmt = s_stmt (self, &self->st_request,
        "INSERT OR IGNORE INTO requests (msg_id, session, kind, msg_type, code, targets,"
        " flags, status, submitted, size)"
        " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)");
    if (stmt) {
        sqlite3_bind_text (stmt, 1, rec->msg_id, -1, SQLITE_STATIC);
        s_bind_text (stmt, 2, s_scan (rec, LP_FRAME_HEADER, LP_HDR_SESSION,
                                      session, sizeof session), 256);
        sqlite3_bind_text (stmt, 3, s_kinds [rec->kind], -1, SQLITE_STATIC);
        s_bind_text (stmt, 4, s_scan (rec, LP_FRAME_HEADER, LP_HDR_MSG_TYPE,
                                      msg_type, sizeof msg_type), 64);
        s_bind_text (stmt, 5, code, LP_STORE_CODE_MAX);
        s_bind_text (stmt, 6, rec->targets? rec->targets: *targets? targets: NULL, 1 << 20);
        s_bind_text (stmt, 7, *flags? flags: NULL, sizeof flags);
        sqlite3_bind_text (stmt, 8, rec->kind == LP_STORE_TASK? "queued": "running", -1,
                           SQLITE_STATIC);
        sqlite3_bind_text (stmt, 9, submitted, -1, SQLITE_TRANSIENT);
        sqlite3_bind_int64 (stmt, 10, (sqlite3_int64) rec->size);
        int64_t rowid = 0;
        if (s_exec (stmt) != 0)
            zsys_warning ("store: %s: %s", self->path, sqlite3_errmsg (self->db));
        else
        if (sqlite3_changes (self->db) == 1)
            rowid = sqlite3_last_insert_rowid (self->db);
        s_wstate_t *state = s_wstate (self, rec->msg_id);
        if (state) {
            if (rowid)
                state->rowid = rowid;
            state->expected = rec->nengines? rec->nengines: 1;
        }
        stmt = rowid && rec->blob? s_stmt (self, &self->st_frames,
            "INSERT OR REPLACE INTO request_frames (request, complete, frames)"
            " VALUES (?1, ?2, ?3)"): NULL;
        if (stmt) {
            sqlite3_bind_int64 (stmt, 1, rowid);
            sqlite3_bind_int (stmt, 2, rec->complete);
            sqlite3_bind_blob (stmt, 3, rec->blob, (int) rec->blob_size, free);
            rec->blob = NULL;           //  SQLite's now
            s_exec (stmt);
        }
    }
    lp_value_destroy (&header);
    lp_value_destroy (&content);
}

static void
s_write_started (lp_store_t *self, s_rec_t *rec)
{
    char started [32];
    s_iso (rec->when, started);
    int64_t rowid = s_rowid (self, rec->msg_id);
    sqlite3_stmt *stmt = rowid? s_stmt (self, &self->st_started,
            "UPDATE requests SET status = 'running', engine = ?1, started = ?2"
            " WHERE rowid = ?3 AND status IN ('queued', 'running')"): NULL;
    if (stmt) {
        sqlite3_bind_int (stmt, 1, rec->engine);
        sqlite3_bind_text (stmt, 2, started, -1, SQLITE_TRANSIENT);
        sqlite3_bind_int64 (stmt, 3, rowid);
        s_exec (stmt);
    }
}

//  A reply (engine's or the controller's error): its row in replies, and
//  the request's status. Returns true when the request is final now.
static bool
s_write_reply (lp_store_t *self, s_rec_t *rec)
{
    lp_value_t *metadata = NULL, *content = NULL;
    const char *status = LP_STATUS_ERROR, *ename = rec->ename, *evalue = rec->evalue;
    const char *stdout_text = NULL, *started = NULL, *completed = NULL;
    char now [32];
    s_iso (rec->when, now);
    char state_text [16], started_text [40], completed_text [40];
    if (rec->type == REC_REPLY) {
        //  Scanned from the bytes; decoded only for a long stdout or an error
        const char *s = s_scan (rec, LP_FRAME_METADATA, LP_META_STATUS,
                                state_text, sizeof state_text);
        status = s && streq (s, LP_STATUS_OK)? LP_STATUS_OK: LP_STATUS_ERROR;
        stdout_text = s_scan (rec, LP_FRAME_METADATA, LP_META_STDOUT, self->scratch,
                              LP_STORE_STDOUT_MAX + 1);
        started = s_scan (rec, LP_FRAME_METADATA, LP_META_STARTED,
                          started_text, sizeof started_text);
        completed = s_scan (rec, LP_FRAME_METADATA, LP_META_COMPLETED,
                            completed_text, sizeof completed_text);
        if (!stdout_text && s_has_key (rec, LP_FRAME_METADATA, LP_META_STDOUT)) {
            metadata = s_decode (rec, LP_FRAME_METADATA);
            stdout_text = s_str (metadata, LP_META_STDOUT);
        }
        if (!streq (status, LP_STATUS_OK)) {
            if (!metadata)
                metadata = s_decode (rec, LP_FRAME_METADATA);
            content = s_decode (rec, LP_FRAME_CONTENT);
            ename = s_str (content, LP_CONTENT_ENAME);
            if (!ename)
                ename = s_str (metadata, LP_META_ENAME);
            evalue = s_str (content, LP_CONTENT_EVALUE);
        }
    }
    if (!completed)
        completed = now;
    bool keep = rec->type == REC_REPLY && rec->complete && rec->blob;
    //  The request's state, in memory
    bool final = true, failed = !streq (status, LP_STATUS_OK);
    bool aborted = ename && streq (ename, LP_ENAME_ABORTED);
    s_wstate_t *entry = (s_wstate_t *) zhashx_lookup (self->rowids, rec->msg_id);
    if (entry) {
        entry->done++;
        entry->failed |= failed;
        entry->aborted |= aborted;
        failed = entry->failed;
        aborted = entry->aborted;
        final = rec->engine == -1 || entry->done >= entry->expected;
    }

    const char *state = !final? "running": aborted? "aborted": failed? "error": "ok";
    int64_t rowid = s_rowid (self, rec->msg_id);
    sqlite3_stmt *stmt;
    if (rowid == 0
    &&  (stmt = s_stmt (self, &self->st_orphan,
            "INSERT OR IGNORE INTO requests (msg_id, kind, status, engine, submitted, completed,"
            " ename, evalue) VALUES (?1, ?2, ?3, ?4, ?5, ?5, ?6, ?7)"))) {
        //  A reply with no request row (its request was not recorded)
        sqlite3_bind_text (stmt, 1, rec->msg_id, -1, SQLITE_STATIC);
        pthread_mutex_lock (&self->lock);
        s_pending_t *pending = (s_pending_t *) zhashx_lookup (self->pending, rec->msg_id);
        int kind = pending? pending->kind: LP_STORE_TASK;
        pthread_mutex_unlock (&self->lock);
        sqlite3_bind_text (stmt, 2, s_kinds [kind], -1, SQLITE_STATIC);
        sqlite3_bind_text (stmt, 3, state, -1, SQLITE_STATIC);
        sqlite3_bind_int (stmt, 4, rec->engine);
        sqlite3_bind_text (stmt, 5, completed, -1, SQLITE_TRANSIENT);
        s_bind_text (stmt, 6, ename, 256);
        s_bind_text (stmt, 7, evalue, LP_STORE_CODE_MAX);
        if (s_exec (stmt) == 0 && sqlite3_changes (self->db) == 1) {
            rowid = sqlite3_last_insert_rowid (self->db);
            s_set_rowid (self, rec->msg_id, rowid);
        }
    }
    stmt = s_stmt (self, &self->st_reply,
            "INSERT OR REPLACE INTO replies (request, engine, status, ename, evalue, started,"
            " completed, stdout, too_large, size, frames, msg_id)"
            " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)");
    if (stmt && rowid) {
        sqlite3_bind_int64 (stmt, 1, rowid);
        sqlite3_bind_text (stmt, 12, rec->msg_id, -1, SQLITE_STATIC);
        sqlite3_bind_int (stmt, 2, rec->engine);
        sqlite3_bind_text (stmt, 3, status, -1, SQLITE_STATIC);
        s_bind_text (stmt, 4, ename, 256);
        s_bind_text (stmt, 5, evalue, LP_STORE_CODE_MAX);
        s_bind_text (stmt, 6, started, 40);
        s_bind_text (stmt, 7, completed, 40);
        s_bind_text (stmt, 8, stdout_text, LP_STORE_STDOUT_MAX);
        sqlite3_bind_int (stmt, 9, rec->type == REC_REPLY && !keep);
        sqlite3_bind_int64 (stmt, 10, (sqlite3_int64) rec->size);
        if (keep && rec->blob) {
            sqlite3_bind_blob (stmt, 11, rec->blob, (int) rec->blob_size, free);
            rec->blob = NULL;           //  SQLite's now
        }
        if (s_exec (stmt) != 0)
            zsys_warning ("store: %s: %s", self->path, sqlite3_errmsg (self->db));
    }
    stmt = s_stmt (self, &self->st_update,
            "UPDATE requests SET replies = replies + 1, status = ?1, engine = ?2,"
            " started = COALESCE (started, ?3), completed = ?4,"
            " stdout = COALESCE (?5, stdout), ename = COALESCE (?6, ename),"
            " evalue = COALESCE (?7, evalue) WHERE rowid = ?8");
    if (stmt && rowid) {
        sqlite3_bind_text (stmt, 1, state, -1, SQLITE_STATIC);
        sqlite3_bind_int (stmt, 2, rec->engine);
        s_bind_text (stmt, 3, started, 40);
        s_bind_text (stmt, 4, final? completed: NULL, 40);
        s_bind_text (stmt, 5, stdout_text, LP_STORE_STDOUT_MAX);
        s_bind_text (stmt, 6, ename, 256);
        s_bind_text (stmt, 7, evalue, LP_STORE_CODE_MAX);
        sqlite3_bind_int64 (stmt, 8, rowid);
        s_exec (stmt);
    }
    lp_value_destroy (&metadata);
    lp_value_destroy (&content);
    return final;
}

static void *
s_writer (void *arg)
{
    lp_store_t *self = (lp_store_t *) arg;
    pthread_setname_np (pthread_self (), "lp-store");
    //  Below the data path: when the CPUs are busy, forwarding goes first
    //  and the writer catches up in the gaps (its queue absorbs bursts).
    if (setpriority (PRIO_PROCESS, (id_t) gettid (), LP_STORE_NICE) != 0)
        zsys_warning ("store: cannot lower the writer's priority: %s", strerror (errno));
    uint64_t since_trim = 0;            //  records written since malloc_trim
    pthread_mutex_lock (&self->lock);
    while (true) {
        while (!self->head && !self->stop)
            pthread_cond_wait (&self->wake, &self->lock);
        if (!self->head && self->stop)
            break;
        if (!self->stop) {
            //  Let a burst gather into one transaction.
            pthread_mutex_unlock (&self->lock);
            usleep (LP_STORE_LINGER_USEC);
            pthread_mutex_lock (&self->lock);
        }
        s_rec_t *batch = self->head;
        self->head = self->tail = NULL;
        self->queued_bytes = 0;
        pthread_mutex_unlock (&self->lock);

        zlist_t *finals = zlist_new ();
        zlist_autofree (finals);
        uint64_t count = 0;
        //  A task that started and ended within the batch needs no
        //  'running' row: its reply sets the final state.
        zhashx_t *ended = zhashx_new ();
        if (ended) {
            zhashx_set_key_duplicator (ended, NULL);
            zhashx_set_key_destructor (ended, NULL);
            for (s_rec_t *rec = batch; rec; rec = rec->next)
                if (rec->type == REC_REPLY || rec->type == REC_ERROR)
                    zhashx_insert (ended, rec->msg_id, rec);
        }
        sqlite3_exec (self->db, "BEGIN", NULL, NULL, NULL);
        for (s_rec_t *rec = batch; rec; rec = rec->next, count++) {
            if (rec->type == REC_REQUEST)
                s_write_request (self, rec);
            else
            if (rec->type == REC_STARTED) {
                if (!ended || !zhashx_lookup (ended, rec->msg_id))
                    s_write_started (self, rec);
            }
            else
            if (s_write_reply (self, rec) && finals)
                zlist_append (finals, rec->msg_id);
        }
        zhashx_destroy (&ended);
        char *errmsg = NULL;
        if (sqlite3_exec (self->db, "COMMIT", NULL, NULL, &errmsg) != SQLITE_OK) {
            zsys_error ("store: %s: cannot commit: %s", self->path, errmsg? errmsg: "?");
            sqlite3_exec (self->db, "ROLLBACK", NULL, NULL, NULL);
        }
        sqlite3_free (errmsg);
        while (batch) {
            s_rec_t *next = batch->next;
            s_rec_destroy (&batch);
            batch = next;
        }
        //  Final requests leave the pending index once their rows are
        //  committed; the watched ones are announced to the hub.
        zlist_t *done = zlist_new ();
        zlist_autofree (done);
        pthread_mutex_lock (&self->lock);
        size_t held = 0;
        for (char *id = finals? (char *) zlist_first (finals): NULL; id; id = (char *) zlist_next (finals)) {
            s_pending_t *entry = (s_pending_t *) zhashx_lookup (self->pending, id);
            if (entry) {
                if (entry->watched && done)
                    zlist_append (done, id);
                zhashx_delete (self->pending, id);
                s_pending_free ((void **) &entry);
            }
            //  Never hold the data path's hooks up for long (this thread
            //  runs at a low priority: it may be preempted holding it).
            if (++held % 64 == 0) {
                pthread_mutex_unlock (&self->lock);
                pthread_mutex_lock (&self->lock);
            }
        }
        self->written += count;
        for (char *id = finals? (char *) zlist_first (finals): NULL; id; id = (char *) zlist_next (finals))
            zhashx_delete (self->rowids, id);
        pthread_cond_broadcast (&self->synced);
        pthread_mutex_unlock (&self->lock);
        for (char *id = done? (char *) zlist_first (done): NULL; id; id = (char *) zlist_next (done))
            zsock_send (self->events_out, "ss", "DONE", id);
        zlist_destroy (&done);
        zlist_destroy (&finals);
        //  After a burst, once the queue is empty, the records' memory
        //  (freed by this thread, allocated by the data path's) goes back
        //  to the kernel: the controller shrinks again after 10^5 tasks.
        since_trim += count;
        pthread_mutex_lock (&self->lock);
        if (!self->head && since_trim >= LP_STORE_TRIM_RECORDS) {
            pthread_mutex_unlock (&self->lock);
            malloc_trim (0);
            since_trim = 0;
            pthread_mutex_lock (&self->lock);
        }
    }
    pthread_mutex_unlock (&self->lock);
    sqlite3_stmt **stmts [] = { &self->st_request, &self->st_started, &self->st_reply,
                                &self->st_update, &self->st_orphan, &self->st_rowid,
                                &self->st_frames };
    for (size_t i = 0; i < sizeof stmts / sizeof stmts [0]; i++) {
        sqlite3_finalize (*stmts [i]);
        *stmts [i] = NULL;
    }
    return NULL;
}

//  --------------------------------------------------------------------

static sqlite3 *
s_open (const char *path, char *err, size_t errlen)
{
    sqlite3 *db = NULL;
    int rc = sqlite3_open_v2 (path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE
                                       | SQLITE_OPEN_NOMUTEX, NULL);
    char *errmsg = NULL;
    if (rc == SQLITE_OK) {
        sqlite3_busy_timeout (db, LP_STORE_BUSY_MSEC);
        //  journal_mode reads the file: a corrupt one fails here.
        rc = sqlite3_exec (db, "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL;"
                           " PRAGMA cache_size = -" LP_STORE_CACHE_KIB "; PRAGMA wal_autocheckpoint = 4000;", NULL, NULL, &errmsg);
    }
    if (rc == SQLITE_OK)
        rc = sqlite3_exec (db, s_schema, NULL, NULL, &errmsg);
    if (rc == SQLITE_OK) {
        sqlite3_stmt *stmt = NULL;
        //  A database that opens but is not ours (or damaged)
        rc = sqlite3_prepare_v2 (db, "SELECT count(*) FROM requests", -1, &stmt, NULL);
        if (rc == SQLITE_OK) {
            int step = sqlite3_step (stmt);
            rc = step == SQLITE_ROW? SQLITE_OK: step;
        }
        sqlite3_finalize (stmt);
    }
    if (rc != SQLITE_OK) {
        int error = db? sqlite3_system_errno (db): 0;
        const char *why = errmsg? errmsg: db? sqlite3_errmsg (db): sqlite3_errstr (rc);
        //  SQLite's own errno may be of its last fallback (a read-only
        //  open of a file it could not create): the folder says more.
        char folder [1024];
        snprintf (folder, sizeof folder, "%s", path);
        char *slash = strrchr (folder, '/');
        if (slash)
            *slash = 0;
        if (rc == SQLITE_CANTOPEN && slash && access (folder, W_OK | X_OK) != 0)
            snprintf (err, errlen, "task store %s: %s (cannot write to %s: %s)", path, why,
                      folder, strerror (errno));
        else
        if (rc == SQLITE_CANTOPEN && error)
            snprintf (err, errlen, "task store %s: %s (%s)", path, why, strerror (error));
        else
            snprintf (err, errlen, "task store %s: %s", path, why);
        sqlite3_free (errmsg);
        sqlite3_close (db);
        return NULL;
    }
    return db;
}

lp_store_t *
lp_store_new (const char *path, size_t max_result, char *err, size_t errlen)
{
    assert (path);
    lp_store_t *self = (lp_store_t *) zmalloc (sizeof (lp_store_t));
    self->tag = LP_STORE_TAG;
    self->path = strdup (path);
    self->max_result = max_result;
    pthread_mutex_init (&self->lock, NULL);
    pthread_cond_init (&self->wake, NULL);
    pthread_cond_init (&self->synced, NULL);
    self->pending = zhashx_new ();
    self->rowids = zhashx_new ();
    if (self->rowids)
        zhashx_set_destructor (self->rowids, s_wstate_free);
    //  Keys are the entries' own msg_id; entries are freed by hand after
    //  they leave the index (s_pending_free).
    if (self->pending) {
        zhashx_set_key_duplicator (self->pending, NULL);
        zhashx_set_key_destructor (self->pending, NULL);
    }
    self->db = s_open (path, err, errlen);
    if (self->db)
        self->reader = s_open (path, err, errlen);
    char endpoint [64];
    snprintf (endpoint, sizeof endpoint, "inproc://lp-store-%p", (void *) self);
    if (self->db && self->reader) {
        self->events_out = zsock_new (ZMQ_PAIR);
        self->events_in = zsock_new (ZMQ_PAIR);
        //  The writer never blocks on the hub: the announcements are
        //  bounded by the hub's waiters, not by a queue limit.
        if (self->events_out && self->events_in) {
            zsock_set_sndhwm (self->events_out, 0);
            zsock_set_sndtimeo (self->events_out, 0);
            zsock_set_rcvhwm (self->events_in, 0);
            if (zsock_bind (self->events_out, "%s", endpoint) != 0
            ||  zsock_connect (self->events_in, "%s", endpoint) != 0)
                zsock_destroy (&self->events_in);
        }
    }
    if (!self->path || !self->pending || !self->rowids || !self->db || !self->reader
    ||  !self->events_out || !self->events_in) {
        if (self->db && self->reader)
            snprintf (err, errlen, "task store %s: out of memory", path);
        lp_store_destroy (&self);
        return NULL;
    }
    if (pthread_create (&self->thread, NULL, s_writer, self) != 0) {
        snprintf (err, errlen, "task store %s: cannot start its writer thread", path);
        lp_store_destroy (&self);
        return NULL;
    }
    self->started = true;
    return self;
}

void
lp_store_destroy (lp_store_t **self_p)
{
    assert (self_p);
    lp_store_t *self = *self_p;
    if (!self)
        return;
    assert (self->tag == LP_STORE_TAG);
    if (self->started) {
        pthread_mutex_lock (&self->lock);
        self->stop = true;
        pthread_cond_signal (&self->wake);
        pthread_mutex_unlock (&self->lock);
        pthread_join (self->thread, NULL);
    }
    while (self->head) {
        s_rec_t *next = self->head->next;
        s_rec_destroy (&self->head);
        self->head = next;
    }
    zsock_destroy (&self->events_in);
    zsock_destroy (&self->events_out);
    sqlite3_close (self->reader);
    sqlite3_close (self->db);
    if (self->pending) {
        for (void *entry = zhashx_first (self->pending); entry; entry = zhashx_next (self->pending))
            s_pending_free (&entry);
        zhashx_destroy (&self->pending);
        zlist_destroy (&self->restored);
    }
    zhashx_destroy (&self->rowids);
    pthread_cond_destroy (&self->wake);
    pthread_cond_destroy (&self->synced);
    pthread_mutex_destroy (&self->lock);
    free (self->path);
    self->tag = 0xDeadBeef;
    free (self);
    *self_p = NULL;
}

zsock_t *
lp_store_events (lp_store_t *self)
{
    assert (self);
    return self->events_in;
}

uint64_t
lp_store_written (lp_store_t *self)
{
    assert (self);
    pthread_mutex_lock (&self->lock);
    uint64_t written = self->written;
    pthread_mutex_unlock (&self->lock);
    return written;
}

void
lp_store_sync (lp_store_t *self)
{
    assert (self);
    pthread_mutex_lock (&self->lock);
    uint64_t target = self->queued;
    while (self->written < target)
        pthread_cond_wait (&self->synced, &self->lock);
    pthread_mutex_unlock (&self->lock);
}

//  --------------------------------------------------------------------
//  Queries (the hub's thread, its own connection)

static lp_value_t *
s_engines_value (const int64_t *engines, size_t count)
{
    lp_value_t *list = lp_value_array ();
    for (size_t i = 0; list && i < count; i++)
        lp_value_append (list, lp_value_int (engines [i]));
    if (list && count == 0)
        lp_value_append (list, lp_value_int (-1));
    return list;
}

lp_value_t *
lp_store_lookup (lp_store_t *self, const char *msg_id, bool watch)
{
    assert (self);
    lp_value_t *info = lp_value_map ();
    if (!info || !msg_id)
        goto none;
    pthread_mutex_lock (&self->lock);
    s_pending_t *entry = (s_pending_t *) zhashx_lookup (self->pending, msg_id);
    if (entry) {
        if (watch)
            entry->watched = true;
        lp_value_set (info, "msg_id", lp_value_string (msg_id));
        lp_value_set (info, "kind", lp_value_string (s_kinds [entry->kind]));
        lp_value_set (info, "state", lp_value_string ("pending"));
        lp_value_set (info, "engines", s_engines_value (entry->engines, entry->nengines));
        pthread_mutex_unlock (&self->lock);
        return info;
    }
    pthread_mutex_unlock (&self->lock);
    //  Final (or unknown): the committed rows say.
    sqlite3_stmt *stmt = NULL;
    bool found = false;
    if (sqlite3_prepare_v2 (self->reader, "SELECT kind, status FROM requests WHERE msg_id = ?1",
                            -1, &stmt, NULL) == SQLITE_OK) {
        sqlite3_bind_text (stmt, 1, msg_id, -1, SQLITE_STATIC);
        if (sqlite3_step (stmt) == SQLITE_ROW) {
            const char *kind = (const char *) sqlite3_column_text (stmt, 0);
            const char *status = (const char *) sqlite3_column_text (stmt, 1);
            lp_value_set (info, "msg_id", lp_value_string (msg_id));
            lp_value_set (info, "kind", lp_value_string (kind? kind: "task"));
            lp_value_set (info, "status", lp_value_string (status? status: "?"));
            found = true;
        }
        sqlite3_finalize (stmt);
    }
    if (!found)
        goto none;
    //  A request of a controller that died before its end: its replies
    //  never come; it is final as it is.
    lp_value_t *engines = lp_value_array ();
    if (sqlite3_prepare_v2 (self->reader, "SELECT engine FROM replies WHERE request ="
                            " (SELECT rowid FROM requests WHERE msg_id = ?1) ORDER BY rowid", -1, &stmt, NULL) == SQLITE_OK) {
        sqlite3_bind_text (stmt, 1, msg_id, -1, SQLITE_STATIC);
        while (engines && sqlite3_step (stmt) == SQLITE_ROW)
            lp_value_append (engines, lp_value_int (sqlite3_column_int (stmt, 0)));
        sqlite3_finalize (stmt);
    }
    lp_value_set (info, "state", lp_value_string ("done"));
    lp_value_set (info, "engines", engines);
    return info;
none:
    lp_value_destroy (&info);
    return NULL;
}

//  An error reply to the request whose header is parent (taken).
static zmsg_t *
s_error_reply (lp_wire_t *wire, lp_value_t *parent, int engine,
               const char *ename, const char *evalue)
{
    char reply_type [64];
    lp_proto_reply_type (s_str (parent, LP_HDR_MSG_TYPE), reply_type, sizeof reply_type);
    lp_msg_t *msg = lp_msg_new (reply_type);
    if (!msg) {
        lp_value_destroy (&parent);
        return NULL;
    }
    lp_msg_set_parent (msg, parent);
    lp_value_t *metadata = lp_msg_metadata (msg);
    lp_value_t *content = lp_msg_content (msg);
    lp_value_set (metadata, LP_META_ENGINE, lp_value_int (engine));
    lp_value_set (metadata, LP_META_STATUS, lp_value_string (LP_STATUS_ERROR));
    lp_value_set (metadata, LP_META_ENAME, lp_value_string (ename));
    lp_value_set (content, LP_CONTENT_STATUS, lp_value_string (LP_STATUS_ERROR));
    lp_value_set (content, LP_CONTENT_ENAME, lp_value_string (ename));
    lp_value_set (content, LP_CONTENT_EVALUE, lp_value_string (evalue));
    lp_value_set (content, LP_CONTENT_TRACEBACK, lp_value_string (""));
    char err [128];
    return lp_wire_encode (wire, &msg, err, sizeof err);
}

zlist_t *
lp_store_replies (lp_store_t *self, const char *msg_id, lp_wire_t *wire)
{
    assert (self);
    zlist_t *list = zlist_new ();
    if (!list)
        return NULL;
    //  The request's header, for the parent of replies made here
    lp_value_t *header = NULL;
    sqlite3_stmt *stmt = NULL;
    if (sqlite3_prepare_v2 (self->reader, "SELECT frames FROM request_frames WHERE request ="
                            " (SELECT rowid FROM requests WHERE msg_id = ?1)",
                            -1, &stmt, NULL) == SQLITE_OK) {
        sqlite3_bind_text (stmt, 1, msg_id, -1, SQLITE_STATIC);
        if (sqlite3_step (stmt) == SQLITE_ROW && sqlite3_column_bytes (stmt, 0) > 0) {
            zmsg_t *frames = s_blob_frames ((const uint8_t *) sqlite3_column_blob (stmt, 0),
                                            (size_t) sqlite3_column_bytes (stmt, 0));
            char err [128];
            header = frames? lp_wire_decode_frame (frames, 0, LP_FRAME_HEADER, err, sizeof err)
                           : NULL;
            zmsg_destroy (&frames);
        }
        sqlite3_finalize (stmt);
    }
    if (!header) {
        header = lp_value_map ();
        if (header)
            lp_value_set (header, LP_HDR_MSG_ID, lp_value_string (msg_id));
    }
    if (sqlite3_prepare_v2 (self->reader,
            "SELECT engine, status, ename, evalue, too_large, size, frames FROM replies"
            " WHERE request = (SELECT rowid FROM requests WHERE msg_id = ?1) ORDER BY rowid", -1, &stmt, NULL) == SQLITE_OK) {
        sqlite3_bind_text (stmt, 1, msg_id, -1, SQLITE_STATIC);
        while (header && sqlite3_step (stmt) == SQLITE_ROW) {
            int engine = sqlite3_column_int (stmt, 0);
            const char *status = (const char *) sqlite3_column_text (stmt, 1);
            const char *ename = (const char *) sqlite3_column_text (stmt, 2);
            const char *evalue = (const char *) sqlite3_column_text (stmt, 3);
            bool too_large = sqlite3_column_int (stmt, 4) != 0;
            long long size = sqlite3_column_int64 (stmt, 5);
            zmsg_t *reply = NULL;
            if (sqlite3_column_bytes (stmt, 6) > 0) {
                reply = s_blob_frames ((const uint8_t *) sqlite3_column_blob (stmt, 6),
                                       (size_t) sqlite3_column_bytes (stmt, 6));
                //  A fresh header (msg_id, date), signed again.
                char err [128], id [LP_ID_CHARS + 1], date [32];
                lp_value_t *fresh = reply? lp_wire_decode_frame (reply, 0, LP_FRAME_HEADER,
                                                                 err, sizeof err): NULL;
                lp_util_random_id (id);
                lp_util_iso_now (date);
                if (!fresh
                ||  lp_value_set (fresh, LP_HDR_MSG_ID, lp_value_string (id))
                ||  lp_value_set (fresh, LP_HDR_DATE, lp_value_string (date))
                ||  lp_wire_replace (wire, reply, 0, LP_FRAME_HEADER, fresh) != 0)
                    zmsg_destroy (&reply);
                lp_value_destroy (&fresh);
            }
            else {
                char why [300];
                if (too_large && status && streq (status, LP_STATUS_OK)) {
                    if (size >= 0 && (size_t) size <= self->max_result)
                        snprintf (why, sizeof why, "the result (%lld bytes) was not kept: the "
                                  "task store's writer was behind (its queue was full)", size);
                    else
                        snprintf (why, sizeof why, "the result (%lld bytes) was too large to "
                                  "keep in the task store (lpcontroller --db-max-result)", size);
                    ename = "ResultTooLarge";
                    evalue = why;
                }
                reply = s_error_reply (wire, lp_value_dup (header), engine,
                                       ename? ename: "Error", evalue? evalue: "");
            }
            if (reply)
                zlist_append (list, reply);
        }
        sqlite3_finalize (stmt);
    }
    lp_value_destroy (&header);
    return list;
}

//  date in the stored form into out; NULL when date is NULL or no date
static const char *
s_iso_normal (const char *date, char out [32])
{
    int64_t usec;
    if (!date || lp_util_iso_parse (date, &usec) != 0)
        return NULL;
    s_iso (usec, out);
    return out;
}

lp_value_t *
lp_store_history (lp_store_t *self, const lp_value_t *query, char *err, size_t errlen)
{
    assert (self);
    const char *status = s_str (query, "status");
    //  Dates compared as text in the stored form (microseconds, "Z"):
    //  "...T20:00:00Z" would sort after "...T20:00:00.5Z".
    char since_text [32], until_text [32];
    const char *since = s_iso_normal (s_str (query, "since"), since_text);
    const char *until = s_iso_normal (s_str (query, "until"), until_text);
    if ((s_str (query, "since") && !since) || (s_str (query, "until") && !until)) {
        snprintf (err, errlen, "since and until must be ISO 8601 UTC dates");
        return NULL;
    }
    const lp_value_t *engine = query? lp_value_get (query, "engine"): NULL;
    const lp_value_t *limit = query? lp_value_get (query, "limit"): NULL;
    const char *sql =
        "SELECT msg_id, session, kind, msg_type, code, targets, flags, status, engine,"
        " submitted, started, completed, stdout, ename, evalue, replies FROM requests"
        " WHERE (?1 IS NULL OR status = ?1"
        "        OR (?1 = 'pending' AND status IN ('queued', 'running'))"
        "        OR (?1 = 'done' AND status NOT IN ('queued', 'running')))"
        " AND (?2 IS NULL OR engine = ?2 OR rowid IN"
        "      (SELECT request FROM replies WHERE engine = ?2))"
        " AND (?3 IS NULL OR submitted >= ?3) AND (?4 IS NULL OR submitted < ?4)"
        " ORDER BY submitted DESC, rowid DESC LIMIT ?5";
    sqlite3_stmt *stmt = NULL;
    if (sqlite3_prepare_v2 (self->reader, sql, -1, &stmt, NULL) != SQLITE_OK) {
        snprintf (err, errlen, "%s", sqlite3_errmsg (self->reader));
        return NULL;
    }
    s_bind_text (stmt, 1, status, 32);
    if (engine && lp_value_type (engine) == LP_INT)
        sqlite3_bind_int64 (stmt, 2, lp_value_as_int (engine));
    s_bind_text (stmt, 3, since, 40);
    s_bind_text (stmt, 4, until, 40);
    sqlite3_bind_int64 (stmt, 5, limit && lp_value_type (limit) == LP_INT
                                 && lp_value_as_int (limit) > 0? lp_value_as_int (limit): 100);
    lp_value_t *records = lp_value_array ();
    static const char *names [] = { "msg_id", "session", "kind", "msg_type", "code", "targets",
                                    "flags", "status", "engine", "submitted", "started",
                                    "completed", "stdout", "ename", "evalue", "replies" };
    int rc;
    while (records && (rc = sqlite3_step (stmt)) == SQLITE_ROW) {
        lp_value_t *row = lp_value_map ();
        for (int i = 0; row && i < 16; i++) {
            int type = sqlite3_column_type (stmt, i);
            if (type == SQLITE_NULL)
                continue;
            if (type == SQLITE_INTEGER)
                lp_value_set (row, names [i], lp_value_int (sqlite3_column_int64 (stmt, i)));
            else
                lp_value_set (row, names [i],
                              lp_value_string ((const char *) sqlite3_column_text (stmt, i)));
        }
        if (!row || lp_value_append (records, row) != 0) {
            lp_value_destroy (&records);
            break;
        }
    }
    sqlite3_finalize (stmt);
    if (!records)
        snprintf (err, errlen, "out of memory");
    return records;
}

int64_t
lp_store_purge (lp_store_t *self, const char *before, char *err, size_t errlen)
{
    assert (self);
    const char *where =
        "SELECT rowid FROM requests WHERE status NOT IN ('queued', 'running')"
        " AND (?1 IS NULL OR completed < ?1)";
    char sql [512], before_text [32];
    if (before && !(before = s_iso_normal (before, before_text))) {
        snprintf (err, errlen, "before must be an ISO 8601 UTC date");
        return -1;
    }
    sqlite3_stmt *stmt = NULL;
    int64_t count = -1;
    if (sqlite3_exec (self->reader, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK) {
        snprintf (err, errlen, "%s", sqlite3_errmsg (self->reader));
        return -1;
    }
    for (int table = 0; table < 2; table++) {
        snprintf (sql, sizeof sql, "DELETE FROM %s WHERE request IN (%s)",
                  table? "request_frames": "replies", where);
        count = -1;
        if (sqlite3_prepare_v2 (self->reader, sql, -1, &stmt, NULL) == SQLITE_OK) {
            s_bind_text (stmt, 1, before, 40);
            if (s_exec (stmt) == 0)
                count = 0;
            sqlite3_finalize (stmt);
        }
        if (count < 0)
            break;
    }
    snprintf (sql, sizeof sql, "DELETE FROM requests WHERE rowid IN (%s)", where);
    if (count == 0 && sqlite3_prepare_v2 (self->reader, sql, -1, &stmt, NULL) == SQLITE_OK) {
        s_bind_text (stmt, 1, before, 40);
        count = s_exec (stmt) == 0? sqlite3_changes (self->reader): -1;
        sqlite3_finalize (stmt);
    }
    if (count < 0) {
        snprintf (err, errlen, "%s", sqlite3_errmsg (self->reader));
        sqlite3_exec (self->reader, "ROLLBACK", NULL, NULL, NULL);
        return -1;
    }
    if (sqlite3_exec (self->reader, "COMMIT", NULL, NULL, NULL) != SQLITE_OK) {
        snprintf (err, errlen, "%s", sqlite3_errmsg (self->reader));
        sqlite3_exec (self->reader, "ROLLBACK", NULL, NULL, NULL);
        return -1;
    }
    return count;
}

zmsg_t *
lp_store_request_frames (lp_store_t *self, const char *msg_id, int *kind_p)
{
    assert (self);
    sqlite3_stmt *stmt = NULL;
    zmsg_t *frames = NULL;
    if (sqlite3_prepare_v2 (self->reader, "SELECT r.kind, f.frames FROM requests r"
                            " JOIN request_frames f ON f.request = r.rowid"
                            " WHERE r.msg_id = ?1 AND f.complete = 1",
                            -1, &stmt, NULL) == SQLITE_OK) {
        sqlite3_bind_text (stmt, 1, msg_id, -1, SQLITE_STATIC);
        if (sqlite3_step (stmt) == SQLITE_ROW && sqlite3_column_bytes (stmt, 1) > 0) {
            const char *kind = (const char *) sqlite3_column_text (stmt, 0);
            if (kind_p)
                *kind_p = kind && streq (kind, "direct")? LP_STORE_DIRECT:
                          kind && streq (kind, "control")? LP_STORE_CONTROL: LP_STORE_TASK;
            frames = s_blob_frames ((const uint8_t *) sqlite3_column_blob (stmt, 1),
                                    (size_t) sqlite3_column_bytes (stmt, 1));
        }
        sqlite3_finalize (stmt);
    }
    return frames;
}

//  The retries a stored task asked for (its header's), 0 when none or
//  when its frames are not kept
static int64_t
s_stored_retries (lp_store_t *self, const char *msg_id)
{
    int kind = LP_STORE_DIRECT;
    zmsg_t *frames = lp_store_request_frames (self, msg_id, &kind);
    char err [128];
    lp_value_t *header = frames && kind == LP_STORE_TASK
                       ? lp_wire_decode_frame (frames, 0, LP_FRAME_HEADER, err, sizeof err): NULL;
    const lp_value_t *value = header? lp_value_get (header, LP_HDR_RETRIES): NULL;
    int64_t retries = value && lp_value_type (value) == LP_INT? lp_value_as_int (value): 0;
    lp_value_destroy (&header);
    zmsg_destroy (&frames);
    return retries;
}

int64_t
lp_store_restore (lp_store_t *self, const char *ename, const char *evalue,
                  int64_t *resubmit_p)
{
    assert (self);
    sqlite3_stmt *stmt = NULL;
    int64_t count = 0, resubmit = 0;
    zlist_t *unfinished = zlist_new ();
    if (!unfinished)
        return -1;
    zlist_autofree (unfinished);
    if (sqlite3_prepare_v2 (self->reader, "SELECT msg_id, status FROM requests"
                            " WHERE status IN ('queued', 'running') ORDER BY rowid",
                            -1, &stmt, NULL) != SQLITE_OK) {
        zlist_destroy (&unfinished);
        return -1;
    }
    while (sqlite3_step (stmt) == SQLITE_ROW) {
        const char *msg_id = (const char *) sqlite3_column_text (stmt, 0);
        const char *status = (const char *) sqlite3_column_text (stmt, 1);
        char item [LP_STORE_ID_MAX * 2 + 2];
        if (msg_id && strlen (msg_id) <= LP_STORE_ID_MAX * 2) {
            snprintf (item, sizeof item, "%c%s", status && streq (status, "running")? 'r': 'q',
                      msg_id);
            zlist_append (unfinished, item);
        }
    }
    sqlite3_finalize (stmt);
    if (!self->restored) {
        self->restored = zlist_new ();
        if (self->restored)
            zlist_autofree (self->restored);
    }
    for (char *item = (char *) zlist_first (unfinished); item;
               item = (char *) zlist_next (unfinished)) {
        const char *msg_id = item + 1;
        if (self->restored && s_stored_retries (self, msg_id) > 0
        &&  zlist_append (self->restored, item) == 0) {
            //  Pending from now: a client asking for it waits for its end
            lp_store_expect (self, msg_id);
            resubmit++;
            continue;
        }
        lp_store_error (self, msg_id, -1, ename, evalue);
        count++;
    }
    zlist_destroy (&unfinished);
    lp_store_sync (self);
    if (resubmit_p)
        *resubmit_p = resubmit;
    return count;
}

char *
lp_store_restored_next (lp_store_t *self, bool *running_p)
{
    assert (self);
    char *item = self->restored? (char *) zlist_pop (self->restored): NULL;
    if (!item)
        return NULL;
    if (running_p)
        *running_p = item [0] == 'r';
    memmove (item, item + 1, strlen (item));
    return item;
}

//  --------------------------------------------------------------------
//  Self-test

void
lp_store_test (bool verbose)
{
    (void) verbose;
    printf (" * store: ");
    char dir [] = "/tmp/lp_store_test_XXXXXX";
    assert (mkdtemp (dir));
    char path [128], err [512];
    snprintf (path, sizeof path, "%s/tasks.sqlite3", dir);
    uint8_t key [32] = { 1, 2, 3 };
    lp_wire_t *wire = lp_wire_new (key, sizeof key, "store-test");
    assert (wire);

    //  @selftest
    lp_store_t *store = lp_store_new (path, 1024 * 1024, err, sizeof err);
    assert (store);
    //  A task: request, started, reply, as the scheduler reports them
    lp_msg_t *request = lp_msg_new (LP_EXECUTE_REQUEST);
    lp_value_set (lp_msg_content (request), "code", lp_value_string ("return 6 * 7"));
    lp_value_set (lp_msg_header (request), LP_HDR_RETRIES, lp_value_int (2));
    char id [LP_ID_CHARS + 1];
    snprintf (id, sizeof id, "%s", lp_msg_id (request));
    lp_msg_t *reply = lp_msg_new_reply (request, LP_EXECUTE_REPLY);
    lp_value_set (lp_msg_metadata (reply), LP_META_STATUS, lp_value_string (LP_STATUS_OK));
    lp_value_set (lp_msg_metadata (reply), LP_META_STDOUT, lp_value_string ("hello\n"));
    lp_value_set (lp_msg_content (reply), LP_CONTENT_STATUS, lp_value_string (LP_STATUS_OK));
    zmsg_t *zrequest = lp_wire_encode (wire, &request, err, sizeof err);
    zmsg_t *zreply = lp_wire_encode (wire, &reply, err, sizeof err);
    assert (zrequest && zreply);
    lp_store_request (store, LP_STORE_TASK, id, zrequest, 0, NULL, 0);
    lp_value_t *info = lp_store_lookup (store, id, true);
    assert (info && streq (s_str (info, "state"), "pending"));
    lp_value_destroy (&info);
    lp_store_started (store, id, 3);
    lp_store_reply (store, id, 3, zreply, 0);
    lp_store_sync (store);
    //  Watched: announced once final
    char *command = NULL, *done_id = NULL;
    assert (zsock_recv (lp_store_events (store), "ss", &command, &done_id) == 0);
    assert (streq (command, "DONE") && streq (done_id, id));
    zstr_free (&command);
    zstr_free (&done_id);
    info = lp_store_lookup (store, id, false);
    assert (info && streq (s_str (info, "state"), "done"));
    assert (lp_value_len (lp_value_get (info, "engines")) == 1);
    lp_value_destroy (&info);
    zlist_t *replies = lp_store_replies (store, id, wire);
    assert (replies && zlist_size (replies) == 1);
    zmsg_t *again = (zmsg_t *) zlist_pop (replies);
    lp_msg_t *decoded = lp_wire_decode (wire, &again);
    assert (decoded && streq (lp_msg_parent_id (decoded), id));
    assert (streq (lp_msg_get_string (decoded, LP_CONTENT_STATUS), LP_STATUS_OK));
    lp_msg_destroy (&decoded);
    zlist_destroy (&replies);
    //  A direct request to two engines, one refused by the controller
    int64_t engines [2] = { 0, 1 };
    lp_store_request (store, LP_STORE_DIRECT, "direct-1", zrequest, 0, engines, 2);
    lp_store_reply (store, "direct-1", 0, zreply, 0);
    lp_store_error (store, "direct-1", 1, LP_ENAME_ENGINE, "engine 1 is not registered");
    lp_store_sync (store);
    lp_value_t *query = lp_value_map ();
    lp_value_set (query, "status", lp_value_string ("error"));
    lp_value_t *records = lp_store_history (store, query, err, sizeof err);
    assert (records && lp_value_len (records) == 1);
    const lp_value_t *row = lp_value_at (records, 0);
    assert (streq (s_str (row, "msg_id"), "direct-1"));
    assert (streq (s_str (row, "targets"), "0,1"));
    assert (lp_value_as_int (lp_value_get (row, "replies")) == 2);
    lp_value_destroy (&records);
    lp_value_destroy (&query);
    records = lp_store_history (store, NULL, err, sizeof err);
    assert (records && lp_value_len (records) == 2);
    //  Dates in any ISO form: "...T20:00:00Z" is before "...T20:00:00.5Z"
    char oldest [32];
    snprintf (oldest, sizeof oldest, "%s",
              s_str (lp_value_at (records, 1), "submitted"));
    strcpy (oldest + 19, "Z");
    lp_value_destroy (&records);
    query = lp_value_map ();
    lp_value_set (query, "since", lp_value_string (oldest));
    records = lp_store_history (store, query, err, sizeof err);
    assert (records && lp_value_len (records) == 2);
    lp_value_destroy (&records);
    lp_value_set (query, "until", lp_value_string (oldest));
    records = lp_store_history (store, query, err, sizeof err);
    assert (records && lp_value_len (records) == 0);
    lp_value_destroy (&records);
    lp_value_set (query, "since", lp_value_string ("yesterday"));
    assert (lp_store_history (store, query, err, sizeof err) == NULL);
    lp_value_destroy (&query);
    //  Resubmittable: the request's frames were kept
    int kind = -1;
    zmsg_t *frames = lp_store_request_frames (store, id, &kind);
    assert (frames && kind == LP_STORE_TASK && zmsg_size (frames) == zmsg_size (zrequest));
    zmsg_destroy (&frames);
    assert (lp_store_purge (store, NULL, err, sizeof err) == 2);
    assert (lp_store_lookup (store, id, false) == NULL);
    zmsg_destroy (&zrequest);
    zmsg_destroy (&zreply);
    lp_store_destroy (&store);
    //  @end

    //  A file that is not a database: a clear error, no store
    FILE *file = fopen (path, "w");
    assert (file);
    fprintf (file, "this is not an SQLite database, just text that is long enough.........\n");
    fclose (file);
    char wal [160];
    snprintf (wal, sizeof wal, "%s-wal", path);
    unlink (wal);
    snprintf (wal, sizeof wal, "%s-shm", path);
    unlink (wal);
    store = lp_store_new (path, 1024, err, sizeof err);
    assert (!store);
    assert (strstr (err, path) && strstr (err, "not a database"));
    unlink (path);
    rmdir (dir);
    lp_wire_destroy (&wire);
    printf ("OK\n");
}
