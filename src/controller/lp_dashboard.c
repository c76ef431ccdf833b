/*  =========================================================================
    lp_dashboard - the controller's web dashboard, see lp_dashboard.h

    Threads:
      - the collector (a zactor): reads the hub's snapshots from its PULL
        socket, reads the task store's new replies on its own SQLite
        connection, and builds two JSON texts: `status` (the snapshot as
        it is, /api/status) and `state` (everything the page draws,
        /api/state and /api/events). It swaps them in under `lock` and
        wakes the event streams (`changed`).
      - libmicrohttpd's listening thread and one thread per connection
        (at most LP_DASHBOARD_CONNECTIONS): each request copies a text
        under `lock`; an event stream's reader blocks on `changed` (with
        a keep-alive every LP_DASHBOARD_KEEPALIVE_SEC), which is how
        MHD's thread-per-connection mode wants a stream fed.
    Neither waits on the hub nor the hub on them: the hub drops a snapshot
    when the collector's queue is full.

    Throughput is the growth of the engines' replies (tasks_done +
    direct_done of every engine) between snapshots, per second. Task
    stream and errors come from the store's `replies` rows written since
    the dashboard started (rowid grows: each look reads the rows after
    the last one seen, at most LP_DASHBOARD_ROWS_MAX).
    =========================================================================
*/
#include "lp_dashboard.h"
#include "lp_codec.h"
#include "lp_store.h"
#include "lp_util.h"

#include <jansson.h>
#include <microhttpd.h>
#include <arpa/inet.h>
#include <netdb.h>
#include <pthread.h>
#include <sodium.h>
#include <sqlite3.h>
#include <sys/stat.h>

#define LP_DASHBOARD_TAG        0x1b0c0021
#define S_COOKIE                "lp_dashboard_token"

//  The files of src/controller/dashboard/, embedded (lp_dashboard_files.c,
//  written at build time by cmake/embed.cmake).
typedef struct {
    const char *path;                   //  "/index.html"
    const char *type;                   //  its Content-Type
    const unsigned char *data;
    size_t size;
} lp_dashboard_file_t;
extern const lp_dashboard_file_t lp_dashboard_files [];
extern const size_t lp_dashboard_nfiles;

typedef struct {
    double time;                        //  wall clock, seconds
    double rate;                        //  replies per second
    int64_t unassigned;                 //  scheduler's waiting tasks
    int64_t busy;                       //  busy engines
} s_point_t;

typedef struct {
    int engine;
    double started, completed;          //  seconds since the epoch (engine's clock)
    bool ok;
    char type [24];                     //  its request's msg_type
} s_task_t;

struct _lp_dashboard_t {
    uint32_t tag;                       //  LP_DASHBOARD_TAG
    struct MHD_Daemon *daemon;          //  the HTTP server
    zactor_t *collector;                //  snapshot and store reader
    char endpoint [64];                 //  inproc of the collector's PULL
    char url [300];                     //  as bound
    bool loopback;                      //  address is loopback
    char token [2 * LP_DASHBOARD_TOKEN_BYTES + 1];  //  "" = none asked
    char *store_path;                   //  NULL without a store
    pthread_mutex_t lock;               //  guards the four below
    pthread_cond_t changed;             //  a new state, or stopping
    char *status;                       //  JSON of the last snapshot, or NULL
    char *state;                        //  JSON of the page's state, or NULL
    uint64_t generation;                //  state number, 0 = none yet
    bool stopping;                      //  event streams end
};

//  --------------------------------------------------------------------
//  lp_value_t -> JSON (jansson). Integers stay integers; bytes and
//  strings that are not UTF-8 become null, as do typed arrays.

static json_t *
s_json (const lp_value_t *value)
{
    if (!value)
        return json_null ();
    switch (lp_value_type (value)) {
        case LP_BOOL:
            return json_boolean (lp_value_as_bool (value));
        case LP_INT:
            return json_integer (lp_value_as_int (value));
        case LP_NUMBER: {
            double d = lp_value_as_number (value);
            return isfinite (d)? json_real (d): json_null ();
        }
        case LP_STRING: {
            size_t len;
            const char *s = lp_value_as_string (value, &len);
            json_t *text = s? json_stringn (s, len): NULL;
            return text? text: json_null ();
        }
        case LP_ARRAY: {
            json_t *array = json_array ();
            for (size_t i = 0; array && i < lp_value_len (value); i++)
                if (json_array_append_new (array, s_json (lp_value_at (value, i))) != 0) {
                    json_decref (array);
                    return NULL;
                }
            return array;
        }
        case LP_MAP: {
            json_t *object = json_object ();
            for (size_t i = 0; object && i < lp_value_len (value); i++) {
                const lp_value_t *key = lp_value_key_at (value, i);
                const char *name = key && lp_value_type (key) == LP_STRING
                                 ? lp_value_as_string (key, NULL): NULL;
                if (name && json_object_set_new (object, name,
                                                 s_json (lp_value_value_at (value, i))) != 0) {
                    json_decref (object);
                    return NULL;
                }
            }
            return object;
        }
        default:
            return json_null ();
    }
}

//  --------------------------------------------------------------------
//  The collector

typedef struct {
    lp_dashboard_t *owner;              //  where the texts go
    zsock_t *pipe;                      //  $TERM
    zsock_t *pull;                      //  the hub's snapshots
    sqlite3 *db;                        //  the store, read only; NULL: none
    sqlite3_stmt *rows;                 //  replies after a rowid
    sqlite3_stmt *newest;               //  the largest rowid of replies
    int64_t last_row;                   //  newest replies rowid seen
    bool db_failed;                     //  a read failed (logged once)
    s_point_t points [LP_DASHBOARD_HISTORY];    //  ring
    size_t npoints, next_point;
    s_task_t tasks [LP_DASHBOARD_TASKS];        //  ring
    size_t ntasks, next_task;
    json_t *errors;                     //  array, newest last
    json_t *failed;                     //  {"id": count}
    int64_t done_before;                //  replies at the last snapshot, -1 none
    double time_before;                 //  its time
} s_collector_t;

static double
s_seconds (const char *iso)
{
    int64_t usec;
    return iso && lp_util_iso_parse (iso, &usec) == 0? (double) usec / 1e6: 0;
}

static double
s_now (void)
{
    return (double) lp_util_wall_usec () / 1e6;
}

//  The largest rowid of replies (0 when empty or unreadable).
static int64_t
s_newest_row (s_collector_t *self)
{
    sqlite3_reset (self->newest);
    int64_t newest = sqlite3_step (self->newest) == SQLITE_ROW
                   ? sqlite3_column_int64 (self->newest, 0): 0;
    sqlite3_reset (self->newest);
    return newest;
}

//  The store's read connection, positioned after its newest reply.
static void
s_store_open (s_collector_t *self, const char *path)
{
    if (!path)
        return;
    if (sqlite3_open_v2 (path, &self->db, SQLITE_OPEN_READWRITE, NULL) != SQLITE_OK
    ||  sqlite3_exec (self->db, "PRAGMA query_only = 1", NULL, NULL, NULL) != SQLITE_OK
    ||  sqlite3_busy_timeout (self->db, 200) != SQLITE_OK
    ||  sqlite3_prepare_v2 (self->db,
            "SELECT p.rowid, p.engine, p.status, p.started, p.completed, p.ename, p.evalue,"
            " r.msg_type, p.msg_id, CASE WHEN p.status = 'error' THEN p.frames END"
            " FROM replies p LEFT JOIN requests r ON r.rowid = p.request"
            " WHERE p.rowid > ?1 ORDER BY p.rowid LIMIT ?2", -1, &self->rows, NULL) != SQLITE_OK
    ||  sqlite3_prepare_v2 (self->db, "SELECT coalesce (max (rowid), 0) FROM replies",
                            -1, &self->newest, NULL) != SQLITE_OK) {
        zsys_warning ("dashboard: cannot read the task store %s: %s", path,
                      self->db? sqlite3_errmsg (self->db): "out of memory");
        sqlite3_finalize (self->rows);
        sqlite3_finalize (self->newest);
        self->rows = self->newest = NULL;
        sqlite3_close (self->db);
        self->db = NULL;
        return;
    }
    self->last_row = s_newest_row (self);
}

static const char *
s_column (sqlite3_stmt *stmt, int i)
{
    return (const char *) sqlite3_column_text (stmt, i);
}

//  An error reply: kept with its traceback (decoded from the stored reply).
static void
s_add_error (s_collector_t *self, sqlite3_stmt *stmt, int engine, double when)
{
    json_t *error = json_object ();
    if (!error)
        return;
    const char *type = s_column (stmt, 7);
    json_object_set_new (error, "time", json_real (when));
    json_object_set_new (error, "engine", json_integer (engine));
    json_object_set_new (error, "msg_id", json_string (s_column (stmt, 8)? s_column (stmt, 8): ""));
    json_object_set_new (error, "type", json_string (type? type: "?"));
    json_object_set_new (error, "ename", json_string (s_column (stmt, 5)? s_column (stmt, 5): "Error"));
    json_object_set_new (error, "evalue", json_string (s_column (stmt, 6)? s_column (stmt, 6): ""));
    const void *blob = sqlite3_column_blob (stmt, 9);
    lp_value_t *content = blob? lp_store_blob_content (blob, (size_t) sqlite3_column_bytes (stmt, 9))
                              : NULL;
    const lp_value_t *traceback = content? lp_value_get (content, LP_CONTENT_TRACEBACK): NULL;
    const char *text = traceback? lp_value_as_string (traceback, NULL): NULL;
    json_t *value = text? json_string (text): NULL;
    json_object_set_new (error, "traceback", value? value: json_string (""));
    lp_value_destroy (&content);
    if (json_array_append_new (self->errors, error) == 0
    &&  json_array_size (self->errors) > LP_DASHBOARD_ERRORS)
        json_array_remove (self->errors, 0);
}

//  The replies written since the last look.
static void
s_read_store (s_collector_t *self)
{
    if (!self->db)
        return;
    //  A purge that took the newest rows lets SQLite hand out their
    //  rowids again: follow it down, or new replies would be missed
    int64_t newest = s_newest_row (self);
    if (newest < self->last_row)
        self->last_row = newest;
    sqlite3_reset (self->rows);
    sqlite3_bind_int64 (self->rows, 1, self->last_row);
    sqlite3_bind_int (self->rows, 2, LP_DASHBOARD_ROWS_MAX);
    int rc;
    while ((rc = sqlite3_step (self->rows)) == SQLITE_ROW) {
        self->last_row = sqlite3_column_int64 (self->rows, 0);
        int engine = sqlite3_column_int (self->rows, 1);
        const char *status = s_column (self->rows, 2);
        bool ok = status && streq (status, "ok");
        double completed = s_seconds (s_column (self->rows, 4));
        double started = s_seconds (s_column (self->rows, 3));
        if (completed == 0)
            completed = s_now ();
        if (started == 0 || started > completed)
            started = completed;
        if (!ok) {
            char key [24];
            snprintf (key, sizeof key, "%d", engine);
            json_t *count = json_object_get (self->failed, key);
            json_object_set_new (self->failed, key,
                                 json_integer ((count? json_integer_value (count): 0) + 1));
            s_add_error (self, self->rows, engine, completed);
        }
        if (engine < 0)
            continue;                   //  the controller's own error: no engine ran it
        s_task_t *task = &self->tasks [self->next_task];
        self->next_task = (self->next_task + 1) % LP_DASHBOARD_TASKS;
        if (self->ntasks < LP_DASHBOARD_TASKS)
            self->ntasks++;
        task->engine = engine;
        task->started = started;
        task->completed = completed;
        task->ok = ok;
        const char *type = s_column (self->rows, 7);
        snprintf (task->type, sizeof task->type, "%s", type? type: "?");
    }
    if (rc != SQLITE_DONE && rc != SQLITE_BUSY && !self->db_failed) {
        self->db_failed = true;
        zsys_warning ("dashboard: task store read: %s", sqlite3_errmsg (self->db));
    }
}

//  The throughput point of a snapshot; sums its engines' replies.
static void
s_add_point (s_collector_t *self, json_t *status, double now)
{
    int64_t done = 0, busy = 0;
    size_t i;
    json_t *row;
    json_array_foreach (json_object_get (status, "engines"), i, row) {
        done += json_integer_value (json_object_get (row, "tasks_done"))
              + json_integer_value (json_object_get (row, "direct_done"));
        const char *state = json_string_value (json_object_get (row, "state"));
        busy += state && streq (state, "busy");
    }
    double rate = 0;
    if (self->done_before >= 0 && now > self->time_before && done >= self->done_before)
        rate = (double) (done - self->done_before) / (now - self->time_before);
    self->done_before = done;
    self->time_before = now;
    s_point_t *point = &self->points [self->next_point];
    self->next_point = (self->next_point + 1) % LP_DASHBOARD_HISTORY;
    if (self->npoints < LP_DASHBOARD_HISTORY)
        self->npoints++;
    point->time = now;
    point->rate = rate;
    point->unassigned = json_integer_value (json_object_get (status, "unassigned"));
    point->busy = busy;
}

//  The page's document: {time, status, store, throughput: [[t, rate,
//  unassigned, busy]...], tasks: [{engine, start, end, ok, type}...],
//  errors: [...], failed: {id: n}}. Takes status.
static json_t *
s_state (s_collector_t *self, json_t *status, double now)
{
    json_t *state = json_object ();
    json_t *points = json_array ();
    json_t *tasks = json_array ();
    if (!state || !points || !tasks) {
        json_decref (state);
        json_decref (points);
        json_decref (tasks);
        json_decref (status);
        return NULL;
    }
    json_object_set_new (state, "time", json_real (now));
    json_object_set_new (state, "status", status);
    json_object_set_new (state, "store", json_boolean (self->db != NULL));
    size_t first = (self->next_point + LP_DASHBOARD_HISTORY - self->npoints) % LP_DASHBOARD_HISTORY;
    for (size_t i = 0; i < self->npoints; i++) {
        s_point_t *p = &self->points [(first + i) % LP_DASHBOARD_HISTORY];
        json_array_append_new (points, json_pack ("[f,f,I,I]", p->time, p->rate,
                                                  (json_int_t) p->unassigned,
                                                  (json_int_t) p->busy));
    }
    first = (self->next_task + LP_DASHBOARD_TASKS - self->ntasks) % LP_DASHBOARD_TASKS;
    for (size_t i = 0; i < self->ntasks; i++) {
        s_task_t *t = &self->tasks [(first + i) % LP_DASHBOARD_TASKS];
        json_array_append_new (tasks, json_pack ("{s:i,s:f,s:f,s:b,s:s}", "engine", t->engine,
                                                 "start", t->started, "end", t->completed,
                                                 "ok", t->ok, "type", t->type));
    }
    json_object_set_new (state, "throughput", points);
    json_object_set_new (state, "tasks", tasks);
    json_object_set_new (state, "errors", json_incref (self->errors));
    json_object_set_new (state, "failed", json_incref (self->failed));
    return state;
}

//  A snapshot from the hub: new texts for the HTTP threads.
static void
s_collect (s_collector_t *self, zframe_t *frame)
{
    char err [128];
    lp_value_t *value = lp_codec_decode (zframe_data (frame), zframe_size (frame), NULL, 0,
                                         err, sizeof err);
    json_t *status = value? s_json (value): NULL;
    lp_value_destroy (&value);
    if (!status || !json_is_object (status)) {
        json_decref (status);
        return;
    }
    double now = s_now ();
    s_read_store (self);
    s_add_point (self, status, now);
    char *status_text = json_dumps (status, JSON_COMPACT);
    json_t *state = s_state (self, status, now);
    char *state_text = state? json_dumps (state, JSON_COMPACT): NULL;
    json_decref (state);
    if (!status_text || !state_text) {
        free (status_text);
        free (state_text);
        return;
    }
    lp_dashboard_t *owner = self->owner;
    pthread_mutex_lock (&owner->lock);
    free (owner->status);
    free (owner->state);
    owner->status = status_text;
    owner->state = state_text;
    owner->generation++;
    pthread_cond_broadcast (&owner->changed);
    pthread_mutex_unlock (&owner->lock);
}

static void
s_collector_actor (zsock_t *pipe, void *arg)
{
    lp_dashboard_t *owner = (lp_dashboard_t *) arg;
    s_collector_t *self = (s_collector_t *) zmalloc (sizeof (s_collector_t));
    self->owner = owner;
    self->pipe = pipe;
    self->done_before = -1;
    self->errors = json_array ();
    self->failed = json_object ();
    self->pull = zsock_new (ZMQ_PULL);
    zpoller_t *poller = NULL;
    if (self->pull) {
        zsock_set_rcvhwm (self->pull, LP_DASHBOARD_HWM);
        if (zsock_bind (self->pull, "%s", owner->endpoint) != 0)
            zsock_destroy (&self->pull);
    }
    if (self->pull && self->errors && self->failed)
        poller = zpoller_new (pipe, self->pull, NULL);
    s_store_open (self, owner->store_path);
    zsock_signal (pipe, poller? 0: 1);
    while (poller) {
        void *which = zpoller_wait (poller, -1);
        if (which == pipe || !which) {
            char *command = zstr_recv (pipe);
            bool term = !command || streq (command, "$TERM");
            free (command);
            if (term)
                break;
        }
        else {
            zframe_t *frame = zframe_recv (self->pull);
            if (frame)
                s_collect (self, frame);
            zframe_destroy (&frame);
        }
    }
    zpoller_destroy (&poller);
    zsock_destroy (&self->pull);
    sqlite3_finalize (self->rows);
    sqlite3_finalize (self->newest);
    sqlite3_close (self->db);
    json_decref (self->errors);
    json_decref (self->failed);
    free (self);
}

//  --------------------------------------------------------------------
//  HTTP

//  An event stream's reader state (one per /api/events connection).
typedef struct {
    lp_dashboard_t *owner;
    uint64_t seen;                      //  generation last sent
    char *text;                         //  what is being sent
    size_t size, at;
} s_stream_t;

static void
s_stream_free (void *arg)
{
    s_stream_t *self = (s_stream_t *) arg;
    if (self) {
        free (self->text);
        free (self);
    }
}

//  MHD content reader: blocks until the next state (thread per
//  connection), then hands it out as "data: <json>\n\n".
static ssize_t
s_stream_read (void *arg, uint64_t pos, char *buf, size_t max)
{
    (void) pos;
    s_stream_t *self = (s_stream_t *) arg;
    lp_dashboard_t *owner = self->owner;
    if (self->at == self->size) {
        free (self->text);
        self->text = NULL;
        self->size = self->at = 0;
        pthread_mutex_lock (&owner->lock);
        struct timespec until;
        clock_gettime (CLOCK_REALTIME, &until);
        until.tv_sec += LP_DASHBOARD_KEEPALIVE_SEC;
        int rc = 0;
        while (!owner->stopping && owner->generation == self->seen && rc == 0)
            rc = pthread_cond_timedwait (&owner->changed, &owner->lock, &until);
        bool stopping = owner->stopping;
        if (!stopping && owner->generation != self->seen && owner->state) {
            self->seen = owner->generation;
            self->size = strlen (owner->state) + 8;
            self->text = (char *) malloc (self->size + 1);
            if (self->text)
                snprintf (self->text, self->size + 1, "data: %s\n\n", owner->state);
        }
        pthread_mutex_unlock (&owner->lock);
        if (stopping)
            return MHD_CONTENT_READER_END_OF_STREAM;
        if (!self->text) {
            //  Nothing new (or no memory): a comment keeps the line alive
            self->text = strdup (": keep-alive\n\n");
            if (!self->text)
                return MHD_CONTENT_READER_END_WITH_ERROR;
        }
        self->size = strlen (self->text);
    }
    size_t n = self->size - self->at < max? self->size - self->at: max;
    memcpy (buf, self->text + self->at, n);
    self->at += n;
    return (ssize_t) n;
}

static enum MHD_Result
s_send (struct MHD_Connection *connection, unsigned int code, const char *type,
        const void *data, size_t size, enum MHD_ResponseMemoryMode mode, const char *cookie)
{
    struct MHD_Response *response = MHD_create_response_from_buffer (size, (void *) (uintptr_t) data,
                                                                      mode);
    if (!response)
        return MHD_NO;
    MHD_add_response_header (response, MHD_HTTP_HEADER_CONTENT_TYPE, type);
    MHD_add_response_header (response, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
    MHD_add_response_header (response, "X-Content-Type-Options", "nosniff");
    MHD_add_response_header (response, "Content-Security-Policy",
                             "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'");
    if (cookie)
        MHD_add_response_header (response, MHD_HTTP_HEADER_SET_COOKIE, cookie);
    if (code == MHD_HTTP_UNAUTHORIZED)
        MHD_add_response_header (response, MHD_HTTP_HEADER_WWW_AUTHENTICATE, "Bearer");
    enum MHD_Result rc = MHD_queue_response (connection, code, response);
    MHD_destroy_response (response);
    return rc;
}

static enum MHD_Result
s_send_text (struct MHD_Connection *connection, unsigned int code, const char *text)
{
    return s_send (connection, code, "text/plain; charset=utf-8", text, strlen (text),
                   MHD_RESPMEM_MUST_COPY, NULL);
}

//  A copy of the text under lock (status or state), or a 503.
static enum MHD_Result
s_send_json (lp_dashboard_t *self, struct MHD_Connection *connection, bool state,
             const char *cookie)
{
    pthread_mutex_lock (&self->lock);
    const char *text = state? self->state: self->status;
    char *copy = text? strdup (text): NULL;
    pthread_mutex_unlock (&self->lock);
    if (!copy)
        return s_send_text (connection, MHD_HTTP_SERVICE_UNAVAILABLE,
                            "no status from the hub yet: try again in a second\n");
    return s_send (connection, MHD_HTTP_OK, "application/json", copy, strlen (copy),
                   MHD_RESPMEM_MUST_FREE, cookie);
}

static bool
s_token_matches (lp_dashboard_t *self, const char *given)
{
    size_t len = strlen (self->token);
    return given && strlen (given) == len && sodium_memcmp (given, self->token, len) == 0;
}

//  0: allowed (*from_query when the token came as ?token=), -1: not.
static int
s_authorize (lp_dashboard_t *self, struct MHD_Connection *connection, bool *from_query)
{
    *from_query = false;
    if (!*self->token)
        return 0;
    const char *header = MHD_lookup_connection_value (connection, MHD_HEADER_KIND,
                                                      MHD_HTTP_HEADER_AUTHORIZATION);
    if (header && strncmp (header, "Bearer ", 7) == 0 && s_token_matches (self, header + 7))
        return 0;
    if (s_token_matches (self, MHD_lookup_connection_value (connection, MHD_COOKIE_KIND,
                                                            S_COOKIE)))
        return 0;
    if (s_token_matches (self, MHD_lookup_connection_value (connection, MHD_GET_ARGUMENT_KIND,
                                                            "token"))) {
        *from_query = true;
        return 0;
    }
    return -1;
}

//  A dashboard on loopback answers only requests addressed to a loopback
//  name or an IP literal: a web page whose domain is made to resolve to
//  127.0.0.1 (DNS rebinding) names its own domain in Host, and is refused.
static bool
s_host_allowed (lp_dashboard_t *self, const char *host)
{
    if (!self->loopback)
        return true;
    if (!host)
        return false;
    char name [256];
    if (*host == '[') {                 //  [v6]:port
        const char *end = strchr (host, ']');
        return end && end - host - 1 < (long) sizeof name;
    }
    size_t len = strcspn (host, ":");
    if (len == 0 || len >= sizeof name)
        return false;
    memcpy (name, host, len);
    name [len] = 0;
    struct in_addr ip;
    return streq (name, "localhost") || inet_pton (AF_INET, name, &ip) == 1;
}

static enum MHD_Result
s_on_request (void *arg, struct MHD_Connection *connection, const char *url,
              const char *method, const char *version, const char *upload_data,
              size_t *upload_data_size, void **request_arg)
{
    (void) version; (void) upload_data; (void) upload_data_size; (void) request_arg;
    lp_dashboard_t *self = (lp_dashboard_t *) arg;
    if (!streq (method, MHD_HTTP_METHOD_GET) && !streq (method, MHD_HTTP_METHOD_HEAD))
        return s_send_text (connection, MHD_HTTP_METHOD_NOT_ALLOWED, "GET only\n");
    if (!s_host_allowed (self, MHD_lookup_connection_value (connection, MHD_HEADER_KIND,
                                                            MHD_HTTP_HEADER_HOST)))
        return s_send_text (connection, MHD_HTTP_FORBIDDEN,
                            "this dashboard answers http://127.0.0.1:PORT/ or "
                            "http://localhost:PORT/ only\n");
    bool from_query;
    if (s_authorize (self, connection, &from_query) != 0) {
        static const char page [] =
            "<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>luaparallel dashboard"
            "</title></head><body><h1>401: token needed</h1><p>This controller is secure: "
            "open the dashboard with <code>?token=</code> followed by the contents of "
            "<code>&lt;profile&gt;/security/dashboard.token</code>, or send "
            "<code>Authorization: Bearer TOKEN</code>.</p></body></html>\n";
        return s_send (connection, MHD_HTTP_UNAUTHORIZED, "text/html; charset=utf-8", page,
                       sizeof page - 1, MHD_RESPMEM_PERSISTENT, NULL);
    }
    //  A token given in the address becomes a cookie, for the page's own
    //  requests (its script and event stream)
    char cookie [160] = "";
    if (from_query)
        snprintf (cookie, sizeof cookie, S_COOKIE "=%s; Path=/; HttpOnly; SameSite=Strict",
                  self->token);
    const char *set_cookie = from_query? cookie: NULL;
    if (streq (url, "/api/status"))
        return s_send_json (self, connection, false, set_cookie);
    if (streq (url, "/api/state"))
        return s_send_json (self, connection, true, set_cookie);
    if (streq (url, "/api/events")) {
        s_stream_t *stream = (s_stream_t *) calloc (1, sizeof (s_stream_t));
        struct MHD_Response *response = stream
            ? MHD_create_response_from_callback (MHD_SIZE_UNKNOWN, 16 * 1024, s_stream_read,
                                                 stream, s_stream_free): NULL;
        if (!response) {
            free (stream);
            return MHD_NO;
        }
        stream->owner = self;
        MHD_add_response_header (response, MHD_HTTP_HEADER_CONTENT_TYPE, "text/event-stream");
        MHD_add_response_header (response, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
        if (set_cookie)
            MHD_add_response_header (response, MHD_HTTP_HEADER_SET_COOKIE, set_cookie);
        enum MHD_Result rc = MHD_queue_response (connection, MHD_HTTP_OK, response);
        MHD_destroy_response (response);
        return rc;
    }
    const char *path = streq (url, "/")? "/index.html": url;
    for (size_t i = 0; i < lp_dashboard_nfiles; i++)
        if (streq (path, lp_dashboard_files [i].path))
            return s_send (connection, MHD_HTTP_OK, lp_dashboard_files [i].type,
                           lp_dashboard_files [i].data, lp_dashboard_files [i].size,
                           MHD_RESPMEM_PERSISTENT, set_cookie);
    return s_send_text (connection, MHD_HTTP_NOT_FOUND, "not found\n");
}

static void
s_mhd_log (void *arg, const char *format, va_list args)
{
    (void) arg;
    char text [512];
    vsnprintf (text, sizeof text, format, args);
    size_t len = strlen (text);
    if (len && text [len - 1] == '\n')
        text [len - 1] = 0;
    zsys_warning ("dashboard: %s", text);
}

//  --------------------------------------------------------------------
//  Address and token

//  "[ADDR:]PORT" -> host and port; 0 / -1.
static int
s_parse_address (const char *address, char *host, size_t host_size, int *port)
{
    const char *colon = strrchr (address, ':');
    const char *port_text = colon? colon + 1: address;
    char *end;
    long number = strtol (port_text, &end, 10);
    if (!*port_text || *end || number < 0 || number > 65535)
        return -1;
    *port = (int) number;
    size_t len = colon? (size_t) (colon - address): 0;
    const char *start = address;
    if (len >= 2 && address [0] == '[' && address [len - 1] == ']') {
        start++;                        //  [::1]:8080
        len -= 2;
    }
    if (!colon) {
        start = "127.0.0.1";
        len = strlen (start);
    }
    if (len == 0 || len >= host_size)
        return -1;
    memcpy (host, start, len);
    host [len] = 0;
    return 0;
}

//  The token of path: read when it holds one, else a fresh one written
//  (mode 0600 whatever the umask). 0 / -1 with err.
static int
s_load_token (const char *path, char *token, size_t size, char *err, size_t errlen)
{
    size_t want = 2 * LP_DASHBOARD_TOKEN_BYTES;
    assert (size > want);
    FILE *file = fopen (path, "re");
    if (file) {
        char line [256] = "";
        bool got = fgets (line, sizeof line, file) != NULL;
        struct stat st;
        bool mode_ok = fstat (fileno (file), &st) == 0 && (st.st_mode & 077) == 0;
        fclose (file);
        line [strcspn (line, "\r\n")] = 0;
        if (got && strlen (line) == want && strspn (line, "0123456789abcdef") == want) {
            if (!mode_ok && chmod (path, 0600) != 0) {
                snprintf (err, errlen, "%s: cannot make it mode 0600: %s", path, strerror (errno));
                return -1;
            }
            snprintf (token, size, "%s", line);
            return 0;
        }
    }
    uint8_t bytes [LP_DASHBOARD_TOKEN_BYTES];
    randombytes_buf (bytes, sizeof bytes);
    sodium_bin2hex (token, size, bytes, sizeof bytes);
    char tmp [1200];
    snprintf (tmp, sizeof tmp, "%s.tmp", path);
    int fd = open (tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    bool ok = fd >= 0 && fchmod (fd, 0600) == 0 && write (fd, token, want) == (ssize_t) want
           && write (fd, "\n", 1) == 1;
    if (fd >= 0 && close (fd) != 0)
        ok = false;
    if (!ok || rename (tmp, path) != 0) {
        snprintf (err, errlen, "cannot write the dashboard token %s: %s", path, strerror (errno));
        unlink (tmp);
        return -1;
    }
    return 0;
}

//  --------------------------------------------------------------------

lp_dashboard_t *
lp_dashboard_new (const lp_dashboard_config_t *config, char *err, size_t errlen)
{
    assert (config && config->address);
    char host [256];
    int port;
    if (s_parse_address (config->address, host, sizeof host, &port) != 0) {
        snprintf (err, errlen, "--dashboard %s: not [ADDR:]PORT", config->address);
        return NULL;
    }
    struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
                              .ai_flags = AI_PASSIVE }, *found = NULL;
    char port_text [16];
    snprintf (port_text, sizeof port_text, "%d", port);
    int gai = getaddrinfo (host, port_text, &hints, &found);
    if (gai != 0 || !found) {
        snprintf (err, errlen, "--dashboard %s: %s", config->address, gai_strerror (gai));
        return NULL;
    }
    lp_dashboard_t *self = (lp_dashboard_t *) zmalloc (sizeof (lp_dashboard_t));
    self->tag = LP_DASHBOARD_TAG;
    pthread_mutex_init (&self->lock, NULL);
    pthread_cond_init (&self->changed, NULL);
    snprintf (self->endpoint, sizeof self->endpoint, "inproc://lp-dashboard-%p", (void *) self);
    if (found->ai_family == AF_INET)
        self->loopback = ntohl (((struct sockaddr_in *) found->ai_addr)->sin_addr.s_addr) >> 24
                      == 127;
    else
    if (found->ai_family == AF_INET6)
        self->loopback = IN6_IS_ADDR_LOOPBACK (&((struct sockaddr_in6 *) found->ai_addr)->sin6_addr);
    if (config->store_path)
        self->store_path = strdup (config->store_path);
    if (config->token_path
    &&  s_load_token (config->token_path, self->token, sizeof self->token, err, errlen) != 0) {
        freeaddrinfo (found);
        lp_dashboard_destroy (&self);
        return NULL;
    }
    self->collector = zactor_new (s_collector_actor, self);
    if (!self->collector) {
        snprintf (err, errlen, "cannot start the dashboard's collector");
        freeaddrinfo (found);
        lp_dashboard_destroy (&self);
        return NULL;
    }
    unsigned int flags = MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD
                       | MHD_USE_ERROR_LOG | (found->ai_family == AF_INET6? MHD_USE_IPv6: 0);
    self->daemon = MHD_start_daemon (flags, (uint16_t) port, NULL, NULL, s_on_request, self,
                                     MHD_OPTION_EXTERNAL_LOGGER, s_mhd_log, NULL,
                                     MHD_OPTION_SOCK_ADDR, found->ai_addr,
                                     MHD_OPTION_CONNECTION_LIMIT,
                                     (unsigned int) LP_DASHBOARD_CONNECTIONS,
                                     MHD_OPTION_CONNECTION_TIMEOUT,
                                     (unsigned int) LP_DASHBOARD_IDLE_SEC,
                                     MHD_OPTION_END);
    freeaddrinfo (found);
    const union MHD_DaemonInfo *info = self->daemon
        ? MHD_get_daemon_info (self->daemon, MHD_DAEMON_INFO_BIND_PORT): NULL;
    if (!info) {
        snprintf (err, errlen, "--dashboard %s: cannot listen there (in use? see the log)",
                  config->address);
        lp_dashboard_destroy (&self);
        return NULL;
    }
    bool v6 = strchr (host, ':') != NULL;
    snprintf (self->url, sizeof self->url, "http://%s%s%s:%u/", v6? "[": "", host, v6? "]": "",
              (unsigned) info->port);
    return self;
}

void
lp_dashboard_destroy (lp_dashboard_t **self_p)
{
    assert (self_p);
    lp_dashboard_t *self = *self_p;
    if (!self)
        return;
    assert (self->tag == LP_DASHBOARD_TAG);
    //  Open event streams end first, so that MHD can join their threads
    pthread_mutex_lock (&self->lock);
    self->stopping = true;
    pthread_cond_broadcast (&self->changed);
    pthread_mutex_unlock (&self->lock);
    if (self->daemon)
        MHD_stop_daemon (self->daemon);
    zactor_destroy (&self->collector);
    free (self->status);
    free (self->state);
    free (self->store_path);
    sodium_memzero (self->token, sizeof self->token);
    pthread_cond_destroy (&self->changed);
    pthread_mutex_destroy (&self->lock);
    self->tag = 0xDeadBeef;
    free (self);
    *self_p = NULL;
}

const char *
lp_dashboard_endpoint (lp_dashboard_t *self)
{
    assert (self);
    return self->endpoint;
}

const char *
lp_dashboard_url (lp_dashboard_t *self)
{
    assert (self);
    return self->url;
}

bool
lp_dashboard_is_loopback (lp_dashboard_t *self)
{
    assert (self);
    return self->loopback;
}

void
lp_dashboard_test (bool verbose)
{
    printf (" * dashboard: ");
    fflush (stdout);
    //  @selftest
    char host [64];
    int port = -1;
    assert (s_parse_address ("8080", host, sizeof host, &port) == 0);
    assert (streq (host, "127.0.0.1") && port == 8080);
    assert (s_parse_address ("0.0.0.0:0", host, sizeof host, &port) == 0);
    assert (streq (host, "0.0.0.0") && port == 0);
    assert (s_parse_address ("[::1]:81", host, sizeof host, &port) == 0);
    assert (streq (host, "::1") && port == 81);
    assert (s_parse_address ("host:x", host, sizeof host, &port) == -1);
    assert (s_parse_address ("70000", host, sizeof host, &port) == -1);
    assert (s_parse_address (":80", host, sizeof host, &port) == -1);
    //  Host names a loopback dashboard answers to
    lp_dashboard_t fake = { .loopback = true };
    assert (s_host_allowed (&fake, "127.0.0.1:8080"));
    assert (s_host_allowed (&fake, "localhost:9000"));
    assert (s_host_allowed (&fake, "[::1]:8080"));
    assert (s_host_allowed (&fake, "10.1.2.3"));
    assert (!s_host_allowed (&fake, "evil.example:8080"));
    assert (!s_host_allowed (&fake, "127.0.0.1.evil.example:8080"));
    assert (!s_host_allowed (&fake, NULL));
    fake.loopback = false;
    assert (s_host_allowed (&fake, "cluster-head:8080"));
    //  Values to JSON: integers stay integers, bad UTF-8 is null
    lp_value_t *map = lp_value_map ();
    lp_value_set (map, "n", lp_value_int (1234567890123LL));
    lp_value_set (map, "x", lp_value_number (0.5));
    lp_value_set (map, "bad", lp_value_lstring ("\xff", 1));
    lp_value_t *list = lp_value_array ();
    lp_value_append (list, lp_value_string ("a"));
    lp_value_set (map, "list", list);
    json_t *json = s_json (map);
    char *text = json_dumps (json, JSON_COMPACT | JSON_SORT_KEYS);
    assert (text && streq (text, "{\"bad\":null,\"list\":[\"a\"],\"n\":1234567890123,\"x\":0.5}"));
    free (text);
    json_decref (json);
    lp_value_destroy (&map);
    //  A dashboard on a free loopback port, with a token file made 0600
    char dir [] = "/tmp/lpdashtest.XXXXXX";
    assert (mkdtemp (dir));
    char path [64];
    snprintf (path, sizeof path, "%s/dashboard.token", dir);
    lp_dashboard_config_t config = { "127.0.0.1:0", NULL, path };
    char err [256];
    lp_dashboard_t *dashboard = lp_dashboard_new (&config, err, sizeof err);
    assert (dashboard);
    assert (strncmp (lp_dashboard_url (dashboard), "http://127.0.0.1:", 17) == 0);
    assert (lp_dashboard_is_loopback (dashboard));
    struct stat st;
    assert (stat (path, &st) == 0 && (st.st_mode & 0777) == 0600);
    char token [2 * LP_DASHBOARD_TOKEN_BYTES + 1];
    snprintf (token, sizeof token, "%s", dashboard->token);
    //  A snapshot pushed as the hub does becomes the status text
    zsock_t *push = zsock_new_push (lp_dashboard_endpoint (dashboard));
    assert (push);
    lp_value_t *status = lp_value_map ();
    lp_value_set (status, "engines", lp_value_array ());
    lp_value_set (status, "unassigned", lp_value_int (3));
    zlist_t *buffers = zlist_new ();
    zframe_t *frame = lp_codec_encode (status, buffers, err, sizeof err);
    lp_value_destroy (&status);
    assert (frame && zlist_size (buffers) == 0 && zframe_send (&frame, push, 0) == 0);
    zlist_destroy (&buffers);
    for (int i = 0; i < 500; i++) {
        pthread_mutex_lock (&dashboard->lock);
        bool got = dashboard->status != NULL;
        pthread_mutex_unlock (&dashboard->lock);
        if (got)
            break;
        zclock_sleep (10);              //  poll with a deadline (5 s)
    }
    assert (dashboard->status && streq (dashboard->status, "{\"engines\":[],\"unassigned\":3}"));
    zsock_destroy (&push);
    lp_dashboard_destroy (&dashboard);
    assert (!dashboard);
    //  The same token next time
    dashboard = lp_dashboard_new (&config, err, sizeof err);
    assert (dashboard && streq (dashboard->token, token));
    lp_dashboard_destroy (&dashboard);
    unlink (path);
    rmdir (dir);
    //  @end
    printf ("%sOK\n", verbose? "\n": "");
}
