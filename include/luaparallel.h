/*  =========================================================================
    luaparallel.h - public C API of libluaparallel

    A client connects to a luaparallel controller through the client
    connection file (lp-client.json), learns the engine ids, and sends work
    through views: a direct view addresses given engines, a load-balanced
    view lets the controller's scheduler pick one. Every call returns a
    result handle at once; lp_result_wait blocks with a deadline.

    Values travel as lp_value_t trees (nil, boolean, integer, number, string,
    bytes, array, map, typed numeric array). Typed arrays cross the wire as
    raw frames, without per-element work.

    Threading: a client and everything made from it (views, results, values
    it returns) belong to one thread at a time. Results must be destroyed
    before or after their client; a result that outlives its client reports
    "client destroyed" and never blocks.

    Ownership: a function that takes `lp_value_t *` as an argument documented
    "taken" takes ownership (also on failure). A returned `const` pointer
    belongs to the object it came from. A returned `char *` is the caller's
    to free.
    =========================================================================
*/
#ifndef LUAPARALLEL_H_INCLUDED
#define LUAPARALLEL_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define LP_VERSION_MAJOR 0
#define LP_VERSION_MINOR 1
#define LP_VERSION_PATCH 0
#define LP_VERSION_STRING "0.1.0"

//  The library is built with hidden visibility: only what this header
//  declares with LP_EXPORT is exported from libluaparallel.so.
#if defined __GNUC__ && !defined LP_STATIC
#   define LP_EXPORT __attribute__ ((visibility ("default")))
#else
#   define LP_EXPORT
#endif

typedef struct _lp_value_t lp_value_t;
typedef struct _lp_client_t lp_client_t;
typedef struct _lp_view_t lp_view_t;
typedef struct _lp_result_t lp_result_t;

//  ---------------------------------------------------------------------
//  Errors, in the manner of nng: calls that can fail for several reasons
//  say which with one of these; lp_strerror gives a short text and
//  lp_client_error the detailed message of the last failure.

typedef enum {
    LP_OK = 0,          //  done
    LP_ETIMEOUT,        //  the deadline passed first
    LP_ELOST,           //  the controller was lost (nothing heard for
                        //  lost_after ms); pending replies ended with
                        //  ControllerLost
    LP_ECLOSED,         //  the client was destroyed
    LP_EINVAL,          //  invalid argument
    LP_ENOMEM,          //  out of memory
    LP_EREMOTE,         //  the controller or an engine answered with an error
    LP_ETOOBIG,         //  a request's header would exceed the 2 MiB frame cap
                        //  (or it needs more than 65,533 buffer frames)
    LP_EINTR            //  a signal interrupted the wait
} lp_err_t;

//  "timed out", "controller lost", ...; "unknown error" for other numbers.
LP_EXPORT const char  *lp_strerror (int err);

//  ---------------------------------------------------------------------
//  Values

typedef enum {
    LP_NIL = 0,
    LP_BOOL,
    LP_INT,         //  int64_t
    LP_NUMBER,      //  double
    LP_STRING,      //  UTF-8 text (may hold any bytes when read from Lua)
    LP_BYTES,       //  raw bytes
    LP_ARRAY,       //  sequence of values, index 0..len-1
    LP_MAP,         //  key/value pairs in insertion order, keys are values
    LP_TYPED        //  contiguous numeric array, see lp_dtype_t
} lp_type_t;

typedef enum {
    LP_DTYPE_F64 = 1,
    LP_DTYPE_F32 = 2,
    LP_DTYPE_I64 = 3,
    LP_DTYPE_I32 = 4,
    LP_DTYPE_U8  = 5
} lp_dtype_t;

//  Constructors return NULL only when out of memory.
LP_EXPORT lp_value_t *lp_value_nil (void);
LP_EXPORT lp_value_t *lp_value_bool (bool b);
LP_EXPORT lp_value_t *lp_value_int (int64_t i);
LP_EXPORT lp_value_t *lp_value_number (double d);
LP_EXPORT lp_value_t *lp_value_string (const char *s);                 //  NUL-terminated, copied
LP_EXPORT lp_value_t *lp_value_lstring (const char *s, size_t len);    //  copied
LP_EXPORT lp_value_t *lp_value_bytes (const void *data, size_t len);   //  copied
LP_EXPORT lp_value_t *lp_value_array (void);
LP_EXPORT lp_value_t *lp_value_map (void);
//  Typed array of count elements, zero-filled; fill through lp_value_typed_data.
LP_EXPORT lp_value_t *lp_value_typed (lp_dtype_t dtype, size_t count);
//  Typed array that takes `data` without copying; free_fn (may be NULL)
//  is called on data when the value is destroyed.
LP_EXPORT lp_value_t *lp_value_typed_take (lp_dtype_t dtype, void *data, size_t count,
                                 void (*free_fn) (void *data));
//  Array (LP_ARRAY of LP_INT) of the integers first, first + 1, ..., last;
//  empty when last < first; NULL when out of memory. For tests/examples.
LP_EXPORT lp_value_t *lp_value_int_range (int64_t first, int64_t last);

LP_EXPORT void        lp_value_destroy (lp_value_t **self_p);
LP_EXPORT lp_value_t *lp_value_dup (const lp_value_t *self);            //  deep copy

LP_EXPORT lp_type_t   lp_value_type (const lp_value_t *self);
LP_EXPORT const char *lp_type_name (lp_type_t type);                   //  "nil", "boolean", ...
LP_EXPORT bool        lp_value_as_bool (const lp_value_t *self);       //  false for nil/false only
LP_EXPORT int64_t     lp_value_as_int (const lp_value_t *self);        //  ints; numbers truncated; else 0
LP_EXPORT double      lp_value_as_number (const lp_value_t *self);     //  ints and numbers; else 0
LP_EXPORT const char *lp_value_as_string (const lp_value_t *self, size_t *len_p); //  strings, bytes; else NULL
//  Element count of an array, map or typed array; byte length of a string or bytes.
LP_EXPORT size_t      lp_value_len (const lp_value_t *self);

//  Arrays
LP_EXPORT int               lp_value_append (lp_value_t *self, lp_value_t *item);  //  item taken; 0 / -1
LP_EXPORT const lp_value_t *lp_value_at (const lp_value_t *self, size_t index);   //  NULL when out of range
//  Maps (keys compared by type and content)
LP_EXPORT int               lp_value_set (lp_value_t *self, const char *key, lp_value_t *item);    //  item taken
LP_EXPORT int               lp_value_set_key (lp_value_t *self, lp_value_t *key, lp_value_t *item); //  both taken
LP_EXPORT const lp_value_t *lp_value_get (const lp_value_t *self, const char *key);  //  NULL when absent
LP_EXPORT const lp_value_t *lp_value_key_at (const lp_value_t *self, size_t index);
LP_EXPORT const lp_value_t *lp_value_value_at (const lp_value_t *self, size_t index);
//  Typed arrays
LP_EXPORT lp_dtype_t  lp_value_dtype (const lp_value_t *self);
LP_EXPORT void       *lp_value_typed_data (const lp_value_t *self);
//  A typed array flagged "sequence" stands for a plain Lua sequence of
//  numbers: it arrives in Lua as a table, not an lp.array. A Lua table of
//  more than 4096 elements (LP_SEQUENCE_TYPED_MIN), all integers or floats,
//  is sent this way (i64 or f64) and reads in C as such a typed array, so
//  that 5*10^7 numbers cost 400 MB instead of 5*10^7 value nodes (about
//  3 GB); lp_value_at does not apply to it. Flag a typed array of your own
//  to make it arrive in Lua as a table. set returns -1 when self is not a
//  typed array.
LP_EXPORT bool        lp_value_typed_is_sequence (const lp_value_t *self);
LP_EXPORT int         lp_value_typed_set_sequence (lp_value_t *self, bool sequence);
//  Takes a typed array's buffer out of the value without copying it: a
//  received array is handed over as the library decoded it. Returns the
//  data (lp_value_len elements; read the length first) and puts in
//  *free_fn_p the function that frees it: call (*free_fn_p) (data), not
//  free. The value becomes nil (destroy it as usual). NULL, value
//  unchanged, when self is not a typed array, free_fn_p is NULL, or the
//  value does not own its buffer (lp_value_typed_take with a NULL free_fn).
LP_EXPORT void       *lp_value_typed_release (lp_value_t *self, void (**free_fn_p) (void *data));
LP_EXPORT size_t      lp_dtype_size (lp_dtype_t dtype);                //  bytes per element, 0 if unknown
LP_EXPORT const char *lp_dtype_name (lp_dtype_t dtype);                //  "f64", "f32", "i64", "i32", "u8"

LP_EXPORT bool        lp_value_equal (const lp_value_t *a, const lp_value_t *b);
//  Lua-literal text of the value ({1, 2, x = "y"}); caller frees.
LP_EXPORT char       *lp_value_print (const lp_value_t *self);

//  ---------------------------------------------------------------------
//  Client

//  Connects using the client connection file; NULL = the default profile
//  ($LP_HOME or ~/.luaparallel, profile_default/security/lp-client.json).
//  Returns NULL on failure and prints nothing; lp_last_error() says why.
//  A secure cluster's file carries CURVE keys, used on every socket with
//  nothing to set; a refused key fails with "the controller at ENDPOINT
//  refused this client's CURVE key ...", not with a timeout.
LP_EXPORT lp_client_t *lp_client_connect (const char *connection_file, int timeout_ms);
LP_EXPORT void         lp_client_destroy (lp_client_t **self_p);
//  Error text of the last failed call on this thread with no client to hold it.
LP_EXPORT const char  *lp_last_error (void);
//  lp_err_t of the last failed call on this client (LP_OK when none, or
//  after a later call that sent or waited succeeded); the text is
//  lp_client_error. A call that returned NULL or -1 sets both.
LP_EXPORT int          lp_client_errcode (lp_client_t *self);
//  Lost controller: when a wait has heard nothing from the controller on
//  any socket for lost_after_ms (default 3000, or $LP_LOST_AFTER_MS at
//  connect), every pending reply ends with ename "ControllerLost" ("controller
//  at <endpoint> lost: nothing heard for N ms"), lp_result_wait returns
//  LP_ELOST, and new requests fail at once (LP_ELOST) until something is
//  heard again. While waiting the client asks the controller for its status
//  when it has been quiet for half that time, so a live but silent
//  controller is never taken for lost. 0 or less disables the detection.
LP_EXPORT void         lp_client_set_lost_after (lp_client_t *self, int lost_after_ms);
//  True while the controller is taken for lost.
LP_EXPORT bool         lp_client_lost (lp_client_t *self);
//  Ids of registered engines, ascending; returns count (or -1, see error).
LP_EXPORT int          lp_client_ids (lp_client_t *self, int *ids, int max);
//  Waits until at least n engines are registered; 0, or -1 on timeout.
LP_EXPORT int          lp_client_wait_for_engines (lp_client_t *self, int n, int timeout_ms);
//  Last error on this client, human-readable; "" when the last call that
//  sent or waited succeeded (each such call clears it first).
LP_EXPORT const char  *lp_client_error (lp_client_t *self);
//  Engine table as a value: array of maps {id, host, pid, state, queue,
//  direct_queue, tasks_queued, tasks_running, tasks_done, ...}.
LP_EXPORT lp_value_t  *lp_client_status (lp_client_t *self, int timeout_ms);
//  The whole status: map {engines = <as above>, unassigned = tasks waiting
//  in the scheduler, scheme, hwm}.
LP_EXPORT lp_value_t  *lp_client_queue_status (lp_client_t *self, int timeout_ms);
//  Processes incoming messages for up to timeout_ms (0: only what is there);
//  may return sooner (it wakes every lost_after/10 ms to watch the
//  controller). Returns the number handled, -1 when a signal interrupted it.
//  Views and results call this themselves; exposed for event-driven callers.
LP_EXPORT int          lp_client_poll (lp_client_t *self, int timeout_ms);
//  Asks the controller (and its engines) to shut down.
LP_EXPORT int          lp_client_shutdown_cluster (lp_client_t *self, int timeout_ms);
//  Asks engine id to shut down (shutdown_request on the control channel);
//  0 once it answered and the controller no longer lists it, -1 on error
//  or timeout. Its running request ends with Interrupted, its queued ones
//  with EngineError.
LP_EXPORT int          lp_client_shutdown_engine (lp_client_t *self, int id, int timeout_ms);
//  Restarts engine id, a local engine of the controller (lpcontroller
//  started it): a new process under the same id, with a fresh Lua state
//  (what it ran ends as with lp_client_shutdown_engine). 0 once the new
//  process is registered, -1 on error or timeout
//  (LP_EREMOTE when the controller cannot restart it: not its child).
LP_EXPORT int          lp_client_restart_engine (lp_client_t *self, int id, int timeout_ms);
//  A file descriptor for event loops (poll, epoll, libuv...), as ZMQ_FD:
//  it becomes readable when messages may have arrived, and is not
//  readable again until they are processed. Never read or write it. Each
//  time it is readable, and after every call that sends (a view call,
//  abort, any wait), call lp_client_poll (self, 0) until it returns 0:
//  see docs/api.md, "Event loops". -1 on error. Owned by the client:
//  closed by lp_client_destroy (take it out of the loop before).
LP_EXPORT int          lp_client_fd (lp_client_t *self);
//  Waits until one of results [0..n) has ended (all its replies in, as
//  lp_result_ready) and returns its position (the first one, in order,
//  when several have); NULL entries are skipped. -1 with LP_ETIMEOUT
//  when none ended within timeout_ms (0: only look), LP_EINVAL when no
//  result was given or one belongs to another client, LP_EINTR.
LP_EXPORT int          lp_client_wait_any (lp_client_t *self, lp_result_t *const *results,
                                           int n, int timeout_ms);

//  ---------------------------------------------------------------------
//  Task store: results by msg_id from any client (docs/api.md, "Task
//  store"). The controller keeps every request and its replies in
//  <profile>/db/tasks.sqlite3 unless started with --no-db (then these
//  fail with LP_EREMOTE, "the task store is off").

//  The result of the request msg_id (sent by any client, this one or
//  another, even one that has gone): a result like the one its sender
//  got, already complete when the request has ended, else pending until
//  it ends (wait on it as usual). timeout_ms bounds the lookup. NULL when
//  the store has no record of msg_id (LP_EINVAL), or on error.
LP_EXPORT lp_result_t *lp_client_fetch (lp_client_t *self, const char *msg_id, int timeout_ms);
//  Records of the store, newest first: an array of maps {msg_id, session,
//  kind, msg_type, code, targets, flags, status, engine, submitted,
//  started, completed, stdout, ename, evalue, replies}. query (may be
//  NULL; not taken) is a map of optional filters: status ("queued",
//  "running", "ok", "error", "aborted", or "pending" / "done"), engine
//  (id), since / until (ISO 8601 UTC dates of submission), limit (default
//  100). Caller destroys; NULL on error.
LP_EXPORT lp_value_t  *lp_client_history (lp_client_t *self, const lp_value_t *query, int timeout_ms);
//  Removes the records of requests that ended before the ISO 8601 UTC
//  date `before` (NULL: every ended request). Returns how many, or -1.
LP_EXPORT int64_t      lp_client_purge (lp_client_t *self, const char *before, int timeout_ms);
//  Sends the stored request msg_id again under a new msg_id (to the
//  scheduler, or the mux for a direct request), as ipyparallel's
//  resubmit; returns the new request's result (pending), as
//  lp_client_fetch of the new id. NULL when the request is unknown or its
//  frames were too large to keep.
LP_EXPORT lp_result_t *lp_client_resubmit (lp_client_t *self, const char *msg_id, int timeout_ms);

//  ---------------------------------------------------------------------
//  Views

//  Direct view; targets NULL,0 = all engines registered at the time of
//  each call.
LP_EXPORT lp_view_t   *lp_client_view (lp_client_t *self, const int *targets, int ntargets);
//  Load-balanced view (the controller's task scheduler picks engines):
//  execute, apply and map; each call is a task.
LP_EXPORT lp_view_t   *lp_client_balanced (lp_client_t *self);
LP_EXPORT void         lp_view_destroy (lp_view_t **self_p);
//  A copy of the view: same client, targets and flags (set below). Set
//  flags on the copy for one call, then destroy it; the original keeps
//  its own. NULL when out of memory or the client is gone.
LP_EXPORT lp_view_t   *lp_view_dup (lp_view_t *self);

//  Runs Lua code; like the stand-alone lua REPL it tries `return <code>`
//  first. Each reply's value is what the chunk returned (see lp_result_value).
LP_EXPORT lp_result_t *lp_view_execute (lp_view_t *self, const char *code);
//  Calls fn (Lua source "function(x) ... end" or a global name "math.sqrt")
//  with the elements of args (an array, taken; NULL = no arguments).
LP_EXPORT lp_result_t *lp_view_apply   (lp_view_t *self, const char *fn, lp_value_t *args);
//  Calls fn on every element of seq (array, taken). Direct view: seq is
//  split over the engines as scatter does. lp_result_get gives the results
//  in order.
LP_EXPORT lp_result_t *lp_view_map     (lp_view_t *self, const char *fn, lp_value_t *seq);
//  map over several sequences, as Lua's fn (a [i], b [i], ...) or
//  Python's map (f, a, b): seqs [0..nseqs) (arrays or typed arrays, each
//  taken) are zipped, stopping at the shortest, and fn is called with one
//  element of each. Direct or load-balanced as lp_view_map.
LP_EXPORT lp_result_t *lp_view_map_n   (lp_view_t *self, const char *fn,
                                        lp_value_t *const *seqs, int nseqs);
//  Sets global `name` to value (taken) on every target.
LP_EXPORT lp_result_t *lp_view_push    (lp_view_t *self, const char *name, lp_value_t *value);
//  Sets every key of ns (a map with string keys, taken) as a global.
LP_EXPORT lp_result_t *lp_view_push_map (lp_view_t *self, lp_value_t *ns);
//  Reads global `name` (a dotted path is allowed) from every target.
LP_EXPORT lp_result_t *lp_view_pull    (lp_view_t *self, const char *name);
//  Splits seq (array or typed array, taken) into contiguous chunks whose
//  sizes differ by at most 1, in ascending engine order, and sets `name`
//  on each engine to its chunk.
LP_EXPORT lp_result_t *lp_view_scatter (lp_view_t *self, const char *name, lp_value_t *seq);
//  Pulls `name` from every target and concatenates, in ascending engine
//  order; lp_result_get gives the whole.
LP_EXPORT lp_result_t *lp_view_gather  (lp_view_t *self, const char *name);
//  Interrupts what the targets are running (served on the control channel
//  even while an engine is busy).
LP_EXPORT lp_result_t *lp_view_interrupt (lp_view_t *self);
//  Resets every target's Lua state to a fresh one (globals gone), as
//  after a start. Direct views only.
LP_EXPORT lp_result_t *lp_view_clear (lp_view_t *self);
//  Number of targets this view addresses now (all: registered engines).
LP_EXPORT int          lp_view_targets (lp_view_t *self, int *ids, int max);

//  Flags. They apply to the calls made after they are set; for one call,
//  set them on a copy (lp_view_dup). See docs/scheduling.md.
//  Direct view: the engines addressed. Load-balanced view: the engines a
//  task may run on (NULL,0 = any). Duplicate ids are folded (each engine
//  once, in first-occurrence order); a negative id is refused (-1).
LP_EXPORT int          lp_view_set_targets (lp_view_t *self, const int *targets, int ntargets);
//  Both views: longest running time of each request on an engine; past it
//  the request ends with a TimeLimit error and the engine stays usable.
LP_EXPORT void         lp_view_set_time_limit (lp_view_t *self, int time_limit_ms);
//  Load-balanced view only:
//  resubmissions after a failure or an engine's death (default 0);
LP_EXPORT void         lp_view_set_retries (lp_view_t *self, int retries);
//  longest wait for an engine before TimeoutError (0 = none);
LP_EXPORT void         lp_view_set_timeout (lp_view_t *self, int timeout_ms);
//  items per task for lp_view_map (default 1);
LP_EXPORT void         lp_view_set_chunksize (lp_view_t *self, int chunksize);
//  tasks that must finish first (every task of each result); NULL,0 clears;
LP_EXPORT int          lp_view_set_after (lp_view_t *self, lp_result_t *const *deps, int ndeps);
//  tasks whose engine the next tasks must run on (they must finish first);
LP_EXPORT int          lp_view_set_follow (lp_view_t *self, lp_result_t *const *deps, int ndeps);
//  which outcomes of after / follow count as met (default: success only).
//  A dependency that can never be met fails the task with DependencyError.
LP_EXPORT void         lp_view_set_dependency_flags (lp_view_t *self, bool success, bool failure);
LP_EXPORT bool         lp_view_is_balanced (lp_view_t *self);

//  ---------------------------------------------------------------------
//  Results
//
//  A result holds one reply per message sent (one per engine for a direct
//  call, several per engine for scatter). lp_result_get combines them:
//  one engine -> its value; several engines -> array of per-engine values;
//  gather / map -> the concatenation; push / scatter -> nil.

//  Waits until every reply ended (value or error). Returns LP_OK, or
//  LP_ETIMEOUT (deadline passed), LP_ELOST (controller lost: the pending
//  replies ended with ControllerLost), LP_ECLOSED (client destroyed:
//  they ended with ClientError), LP_EINTR (a signal interrupted the wait).
LP_EXPORT int          lp_result_wait  (lp_result_t *self, int timeout_ms);
LP_EXPORT bool         lp_result_ready (lp_result_t *self);
LP_EXPORT int          lp_result_count (lp_result_t *self);                   //  replies expected
//  Replies in so far (values and errors): done == count once ready. Takes
//  what already arrived without blocking, so a loop of lp_result_done and
//  lp_client_poll can draw progress.
LP_EXPORT int          lp_result_done (lp_result_t *self);
LP_EXPORT int          lp_result_failed (lp_result_t *self);                  //  replies that are errors
//  State of reply i as processed so far (no polling: waits, lp_result_done
//  and lp_client_poll take replies in). LP_STATE_PENDING for an index out
//  of range.
typedef enum {
    LP_STATE_PENDING = 0,   //  no reply yet
    LP_STATE_OK,            //  a value (lp_result_value)
    LP_STATE_ERROR          //  an error (lp_result_error)
} lp_state_t;
LP_EXPORT lp_state_t   lp_result_state (lp_result_t *self, int i);
//  As completed: the replies in the order they ended, each once. Waits up
//  to timeout_ms (0: only look) for the next one and puts its index in
//  *slot_p; when every reply has been handed out already, returns LP_OK
//  with *slot_p = -1. Else LP_ETIMEOUT, LP_EINTR, LP_ECLOSED (as
//  lp_result_wait; a lost controller ends the pending replies, which are
//  then handed out as errors).
LP_EXPORT int          lp_result_next (lp_result_t *self, int timeout_ms, int *slot_p);
//  map: the position in the mapped sequence of reply i's first item
//  (reply i holds lp_value_len (lp_result_values (r, i)) items); -1 when
//  the result is not a map's, or i is out of range.
LP_EXPORT int64_t      lp_result_first_item (lp_result_t *self, int i);
//  Takes reply i's value (lp_result_value) out of the result without
//  copying: the caller owns it, and the reply holds nil from then on
//  (what lp_result_get returned before is gone). NULL when reply i is
//  pending or an error, or out of memory.
LP_EXPORT lp_value_t  *lp_result_take (lp_result_t *self, int i);
//  Value of reply i: the single returned value, nil for none, an array
//  when a call returned several values. NULL while pending or on error.
LP_EXPORT const lp_value_t *lp_result_value (lp_result_t *self, int i);
//  All values reply i returned, as an array (execute / apply).
LP_EXPORT const lp_value_t *lp_result_values (lp_result_t *self, int i);
//  Combined value (see above); NULL while pending or when any reply failed.
LP_EXPORT const lp_value_t *lp_result_get (lp_result_t *self);
//  "[engine 2] LuaError: <message>\n<traceback>"; NULL when reply i succeeded.
LP_EXPORT const char  *lp_result_error  (lp_result_t *self, int i);
LP_EXPORT const char  *lp_result_ename  (lp_result_t *self, int i);     //  "LuaError", "SyntaxError", ...
LP_EXPORT const char  *lp_result_evalue (lp_result_t *self, int i);     //  message only
LP_EXPORT const char  *lp_result_traceback (lp_result_t *self, int i);  //  may be ""
//  What reply i printed so far (grows while the request runs; "" if none).
LP_EXPORT const char  *lp_result_stdout (lp_result_t *self, int i);
LP_EXPORT int          lp_result_engine (lp_result_t *self, int i);     //  engine id, -1 unknown
LP_EXPORT const char  *lp_result_msg_id (lp_result_t *self, int i);
//  The distinct msg_ids of this result's requests, in order, as an array
//  of strings (caller destroys): what lp_client_fetch takes.
LP_EXPORT lp_value_t  *lp_result_msg_ids (lp_result_t *self);
//  Seconds since the epoch (UTC) when reply i's request was sent (tasks),
//  started and completed on its engine; -1 when unknown.
LP_EXPORT double       lp_result_submitted (lp_result_t *self, int i);
LP_EXPORT double       lp_result_started (lp_result_t *self, int i);
LP_EXPORT double       lp_result_completed (lp_result_t *self, int i);
//  Aborts this result's requests that have not started: tasks still
//  waiting in the scheduler, tasks already queued on an engine, and direct
//  requests queued on their engines. Each aborted request ends with an
//  Aborted error reply. Sends an abort_request on the task channel for
//  pending task slots, then one on the control channel to each engine that
//  holds pending requests (engines named by the scheduler's `assigned`,
//  targets of pending direct slots), and waits (up to 5 s) for the answers.
//  Returns the number of requests aborted, or -1 (lp_client_errcode says
//  why). The requests that could not be aborted are listed by
//  lp_result_not_aborted.
LP_EXPORT int          lp_result_abort (lp_result_t *self);
//  After lp_result_abort: array of maps {msg_id, engine, reason} for each
//  request that was not aborted (reason "running or finished" or "engine N
//  did not answer the abort"); NULL before any abort.
LP_EXPORT const lp_value_t *lp_result_not_aborted (lp_result_t *self);
LP_EXPORT void         lp_result_destroy (lp_result_t **self_p);

#ifdef __cplusplus
}
#endif

#endif
